// Following a job: its progress from the first done item, its gallery page by page, its
// downloads, cancelling it; and the list of recent jobs.

import { $, ApiError, api, count, describe, el, showError, state, withKey } from "./api.js";

const GALLERY_PAGE = 48; // images per gallery page
const TERMINAL = new Set(["completed", "failed", "cancelled"]);

export function updateSubmit() {
  const button = $("#submit");
  button.disabled = state.running || !state.file || !state.rows.length;
  button.title = state.running ? "a job is running: wait for it or cancel it" : "";
}

export function follow(jobId) {
  if (state.events) state.events.close();
  state.job = jobId;
  $("#job").hidden = false;
  $("#zip").hidden = true;
  $("#manifest").hidden = true;
  $("#pager").hidden = true;
  $("#cancel").hidden = false;
  $("#gallery").replaceChildren();
  $("#gallery-note").textContent = "";
  $("#detected").textContent = "";
  state.running = true;
  updateSubmit();
  $("#bar").className = "";
  showProgress({ status: "submitted", total: null, done: 0, failed: 0 }, false);
  setStatus("job " + jobId + " · submitted");
  const source = new EventSource(withKey("/jobs/" + encodeURIComponent(jobId) + "/events"));
  state.events = source;
  for (const kind of ["accepted", "started", "progress", "completed", "failed", "cancelled"]) {
    source.addEventListener(kind, (message) => onEvent(jobId, JSON.parse(message.data)));
  }
  source.onerror = () => {
    // EventSource retries by itself (resuming after the last id); say so instead of failing.
    if (state.job !== jobId) return;
    if (source.readyState !== EventSource.CLOSED) setStatus("job " + jobId + " · reconnecting…");
    else { state.running = false; updateSubmit(); }
  };
}

// What the server found in the file (and will read it as): never a silent guess.
export function showDetected(detected) {
  const parts = [];
  if (detected.encoding) {
    const how = detected.encoding_evidence === "detected" ? ", confidence " + detected.encoding_confidence : "";
    parts.push("read as " + detected.encoding + " (" + (detected.encoding_evidence || "") + how + ")");
  }
  if (detected.delimiter) parts.push("delimiter " + JSON.stringify(detected.delimiter));
  $("#detected").textContent = parts.join(" · ");
}

function setStatus(text) {
  $("#status").textContent = text;
}

// The bar and its numbers. Rendering starts while ingest is still reading the file, so items
// are done before the total is known: the bar then measures against the file's estimated row
// count (striped: not exact yet), or with no estimate (a job opened from the list) shows a
// striped full bar. From the moment the total is known it is exact.
function showProgress(job, ended) {
  const bar = $("#bar");
  const meter = bar.parentElement;
  const finished = job.done + job.failed;
  const estimate = state.estimates[state.job];
  let fraction, exact = false;
  if (job.total) { fraction = finished / job.total; exact = true; }
  else if (job.status === "completed") { fraction = 1; exact = true; }
  else if (estimate) fraction = Math.min(finished / estimate, 0.99);
  else fraction = finished ? 1 : 0;
  // A sliver at least once anything is done: 8 of 20,000 is not nothing.
  bar.style.width = (finished ? Math.max(100 * fraction, 0.5) : 0).toFixed(1) + "%";
  bar.classList.toggle("estimated", !exact && finished > 0);
  bar.classList.toggle("moving", !exact && !ended && finished > 0);
  meter.setAttribute("aria-valuenow", String(finished));
  if (job.total) meter.setAttribute("aria-valuemax", String(job.total));
  else meter.removeAttribute("aria-valuemax");
  let text = count(finished);
  if (job.total) text += " / " + count(job.total) + " (" + Math.floor(100 * fraction) + "%)";
  else if (finished && estimate) text += " done of about " + count(estimate) + (ended ? " (never counted)" : " (still counting rows)");
  else if (finished) text += " done" + (ended ? " (total never counted)" : " (still counting rows)");
  else if (ended) text = "";
  return text;
}

function onEvent(jobId, event) {
  if (state.job !== jobId) return;
  const ended = TERMINAL.has(event.kind);
  const numbers = showProgress(event, ended);
  let text = "job " + jobId + " · " + event.status + (numbers ? " · " + numbers : "");
  if (event.failed) text += " · " + count(event.failed) + " failed";
  if (event.incomplete) text += " · " + count(event.incomplete) + " incomplete (characters no font covers)";
  // A completed job's message is server-side detail (its manifest path): not for this line.
  if (event.message && event.kind !== "completed") text += " · " + event.message;
  setStatus(text);
  if (ended) {
    state.events.close();
    state.running = false;
    updateSubmit();
    $("#cancel").hidden = true;
    const clean = !event.failed && !event.incomplete;
    $("#bar").classList.toggle("done", event.kind === "completed" && clean);
    $("#bar").classList.toggle("failed", event.kind !== "completed");
    // The manifest maps each image back to its row: offered once the job wrote it.
    if (event.manifest) {
      $("#manifest").href = withKey(event.manifest);
      $("#manifest").hidden = false;
    }
    if (event.kind === "failed") showError(new ApiError("", "job failed: " + (event.message || event.status), null));
    showGallery(jobId);
    loadJobs();
  }
}

// One page of the job's images at a time: a 20,000-image job stays a page tall.
export async function showGallery(jobId, page = 0) {
  const id = encodeURIComponent(jobId);
  try {
    const offset = page * GALLERY_PAGE;
    const listing = await (await api("/jobs/" + id + "/files?offset=" + offset + "&limit=" + GALLERY_PAGE)).json();
    if (state.job !== jobId) return;
    $("#gallery").replaceChildren(...listing.files.map((file) => el("figure", {},
      el("a", { href: withKey(file.url), target: "_blank", className: "checker" },
        el("img", { src: withKey(file.url), alt: file.name, loading: "lazy" })),
      el("figcaption", { textContent: file.name }),
    )));
    const pages = Math.ceil(listing.total / GALLERY_PAGE);
    $("#pager").hidden = pages <= 1;
    $("#page-info").textContent = listing.files.length
      ? count(offset + 1) + "–" + count(offset + listing.files.length) + " of " + count(listing.total)
      : "";
    $("#prev").disabled = page === 0;
    $("#next").disabled = page + 1 >= pages;
    state.galleryPage = page;
    const job = await (await api("/jobs/" + id)).json();
    let note = count(listing.total) + " images";
    // The same number as the status line, or both of them.
    if (job.done !== listing.total) note += " · the job counts " + count(job.done) + " done";
    $("#gallery-note").textContent = note;
    const zip = $("#zip");
    zip.href = withKey("/jobs/" + id + "/zip");
    zip.hidden = listing.total === 0;
  } catch (err) {
    showError(err);
  }
}

export async function cancel() {
  if (!state.job) return;
  try {
    await api("/jobs/" + encodeURIComponent(state.job) + "/cancel", { method: "POST" });
  } catch (err) {
    showError(err);
  }
}

// The job list: what each job read (file or data source), when, how far it got.
export async function loadJobs() {
  try {
    const { jobs } = await (await api("/jobs?limit=10")).json();
    $("#jobs").replaceChildren(...jobs.map((job) => {
      const open = el("button", { textContent: "open", className: "secondary", title: "follow job " + job.job_id });
      open.addEventListener("click", () => follow(job.job_id));
      const when = new Date(job.created_at);
      const counts = count(job.done) + (job.total != null ? " / " + count(job.total) : "")
        + (job.failed ? " · " + count(job.failed) + " failed" : "")
        + (job.incomplete ? " · " + count(job.incomplete) + " incomplete" : "");
      return el("li", {},
        open,
        el("span", { className: "job-name", textContent: job.label || job.job_id, title: job.job_id }),
        el("span", { className: "muted", textContent: job.source }),
        el("time", { dateTime: job.created_at, textContent: when.toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) }),
        el("span", { textContent: job.status, className: "status-" + job.status }),
        el("span", { textContent: counts, className: "muted" }),
      );
    }));
  } catch (err) {
    $("#jobs").replaceChildren(el("li", { className: "inline-error", textContent: describe(err).text }));
  }
}
