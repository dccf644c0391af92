// The imagegen web console: plain JS, no build step. It only calls the gateway's HTTP API
// (the same one any program uses) and reads the chosen CSV locally to offer its columns.
"use strict";

const $ = (selector) => document.querySelector(selector);
const SAMPLE_BYTES = 256 * 1024; // enough of the file for the header and the preview rows
const PREVIEW_ROWS = 3;
const GALLERY_PAGE = 48; // images per gallery page
const TERMINAL = new Set(["completed", "failed", "cancelled"]);

const state = {
  file: null,
  rows: [],
  apiKey: localStorage.getItem("imagegen.apiKey") || "",
  job: null,
  running: false, // a job followed here has not ended: no second "Render all rows" meanwhile
  estimates: {}, // job id -> rows the file probably holds, until ingest has counted them
  events: null,
  previewAbort: null,
  previewUrls: [],
  galleryPage: 0,
};

// --- talking to the API ------------------------------------------------------------------------

class ApiError extends Error {
  constructor(code, message, field) {
    super(message);
    this.code = code;
    this.field = field;
  }
}

function withKey(url) {
  // <img> and EventSource cannot send headers: the key travels in the query for them.
  if (!state.apiKey) return url;
  return url + (url.includes("?") ? "&" : "?") + "api_key=" + encodeURIComponent(state.apiKey);
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.apiKey) headers["X-API-Key"] = state.apiKey;
  let response;
  try {
    response = await fetch(path, Object.assign({}, options, { headers }));
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "the gateway cannot be reached (" + err.message + ")", null);
  }
  if (!response.ok) {
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON: use the status line */ }
    if (response.status === 401) $("#key-box").hidden = false;
    throw new ApiError(
      (body && body.code) || response.status,
      (body && body.error) || response.statusText || "request failed",
      body && body.field,
    );
  }
  return response;
}

function describe(err) {
  if (err instanceof ApiError) {
    return { code: err.code || "", field: err.field || "", text: err.message };
  }
  return { code: "", field: "", text: String(err && err.message ? err.message : err) };
}

function showError(err) {
  const box = $("#error");
  const { code, field, text } = describe(err);
  box.replaceChildren();
  if (code) box.append(Object.assign(document.createElement("span"), { className: "code", textContent: String(code) }));
  if (field) {
    box.append(Object.assign(document.createElement("span"), { className: "field", textContent: field + ": " }));
  }
  box.append(document.createTextNode(text));
  box.hidden = false;
  box.scrollIntoView({ block: "nearest" });
}

function clearError() {
  $("#error").hidden = true;
}

// --- reading the CSV locally -------------------------------------------------------------------

function decodeSample(buffer) {
  const bytes = new Uint8Array(buffer);
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return new TextDecoder("utf-8").decode(bytes);
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return new TextDecoder("utf-16le").decode(bytes);
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return new TextDecoder("utf-16be").decode(bytes);
  try {
    // stream: true tolerates a character cut by the end of the sample
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes, { stream: true });
  } catch (_) {
    return new TextDecoder("gb18030").decode(bytes, { stream: true }); // what the server also accepts
  }
}

function sniffDelimiter(text) {
  const firstLine = text.split(/\r?\n/, 1)[0];
  let best = ",", bestCount = 0;
  for (const candidate of [",", ";", "\t", "|"]) {
    const count = firstLine.split(candidate).length - 1;
    if (count > bestCount) { best = candidate; bestCount = count; }
  }
  return best;
}

function parseCsv(text, delimiter, complete) {
  // RFC 4180: quotes, doubled quotes, newlines inside quotes.
  const rows = [];
  let row = [], field = "", quoted = false, i = 0;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') { field += '"'; i += 2; continue; }
        quoted = false;
      } else field += c;
    } else if (c === '"' && field === "") quoted = true;
    else if (c === delimiter) { row.push(field); field = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field); rows.push(row); row = []; field = "";
    } else field += c;
    i++;
  }
  if (complete && (field !== "" || row.length)) { row.push(field); rows.push(row); }
  return rows.filter((r) => r.length > 1 || r[0] !== "");
}

async function loadFile(file) {
  clearError();
  state.file = file;
  const sample = await file.slice(0, SAMPLE_BYTES).arrayBuffer();
  const text = decodeSample(sample);
  const complete = file.size <= SAMPLE_BYTES; // otherwise the last line may be cut: drop it
  const rows = parseCsv(text, sniffDelimiter(text), complete);
  // The file's rows, exact when it was read whole, else scaled from the sample's row length.
  state.rowEstimate = complete ? rows.length : Math.round((rows.length * file.size) / sample.byteLength);
  state.rows = rows.slice(0, 50);
  $("#drop").classList.add("loaded");
  $("#drop-text").textContent = file.name + " · " + formatBytes(file.size);
  $("#csv-info").hidden = false;
  fillColumns();
  updateSubmit();
  if (!state.rows.length) showError(new ApiError("", "the file has no rows", "file"));
}

function formatBytes(n) {
  return n < 1024 ? n + " B" : n < 1048576 ? (n / 1024).toFixed(1) + " KB" : (n / 1048576).toFixed(1) + " MB";
}

function header() {
  const first = state.rows[0] || [];
  return $("#has-header").checked ? first : first.map((_, i) => "column " + (i + 1));
}

function dataRows() {
  return $("#has-header").checked ? state.rows.slice(1) : state.rows;
}

// How much a cell reads like text: its letters (any script) less its digits, so codes such as
// `A001` or `SKU-2231` score nothing and a name in Latin or CJK letters scores high.
function textScore(cell) {
  if (!cell) return 0;
  const letters = (cell.match(/\p{L}/gu) || []).length;
  const digits = (cell.match(/\p{Nd}/gu) || []).length;
  return Math.max(letters - digits, 0);
}

// The default text column: the one whose cells hold the most letters (the first on a tie).
function textColumn(width, rows) {
  let best = 0, bestScore = 0;
  for (let i = 0; i < width; i++) {
    const score = rows.reduce((sum, row) => sum + textScore(row[i]), 0);
    if (score > bestScore) { best = i; bestScore = score; }
  }
  return best;
}

function fillColumns() {
  const select = $("#column");
  const previous = select.value;
  select.replaceChildren();
  const names = header();
  names.forEach((name, i) => select.append(new Option(name || "(column " + (i + 1) + ")", String(i))));
  if (previous && Number(previous) < names.length) select.value = previous;
  else select.value = String(textColumn(names.length, dataRows()));
  renderSample();
  schedulePreview();
}

function renderSample() {
  const table = $("#sample");
  table.replaceChildren();
  const col = Number($("#column").value);
  const head = table.insertRow();
  header().forEach((name, i) => {
    const th = document.createElement("th");
    th.textContent = name;
    if (i === col) th.className = "sel";
    head.append(th);
  });
  for (const row of dataRows().slice(0, 5)) {
    const tr = table.insertRow();
    row.forEach((cell, i) => {
      const td = tr.insertCell();
      td.textContent = cell;
      td.title = cell;
      if (i === col) td.className = "sel";
    });
  }
}

// --- style and preview -------------------------------------------------------------------------

function currentStyle() {
  const style = {
    font: $("#font").value || "sans",
    size: Number($("#size-n").value),
    color: $("#color").value,
    background: $("#bg-none").checked ? "transparent" : $("#bg").value,
    padding: Number($("#padding").value || 0),
    align: $("#align").value,
  };
  const wrap = $("#wrap").value;
  if (wrap !== "") style.max_width = Number(wrap);
  return style;
}

let previewTimer = null;
function schedulePreview() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(renderPreview, 250);
}

async function renderPreview() {
  const box = $("#preview");
  const col = Number($("#column").value);
  const texts = dataRows().map((r) => r[col]).filter((t) => t && t.trim()).slice(0, PREVIEW_ROWS);
  if (!texts.length) return;
  if (state.previewAbort) state.previewAbort.abort();
  const abort = new AbortController();
  state.previewAbort = abort;
  const style = currentStyle();
  try {
    const images = await Promise.all(texts.map(async (text) => {
      const response = await api("/preview", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ text, style }),
        signal: abort.signal,
      });
      return { text, url: URL.createObjectURL(await response.blob()) };
    }));
    state.previewUrls.forEach((u) => URL.revokeObjectURL(u));
    state.previewUrls = images.map((i) => i.url);
    box.replaceChildren(...images.map(({ text, url }) => {
      const figure = document.createElement("figure");
      figure.className = "checker";
      figure.append(Object.assign(document.createElement("img"), { src: url, alt: text, title: text }));
      return figure;
    }));
  } catch (err) {
    if (err.name === "AbortError") return;
    const { code, field, text } = describe(err);
    box.replaceChildren(Object.assign(document.createElement("p"), {
      className: "inline-error",
      textContent: (code ? code + " " : "") + (field ? field + ": " : "") + text,
    }));
  }
}

// --- submitting and following a job ------------------------------------------------------------

async function submit() {
  clearError();
  const form = new FormData();
  form.append("file", state.file, state.file.name);
  const col = Number($("#column").value);
  // With a header the column goes by name; without one, digits are its 0-based position.
  form.append("column", $("#has-header").checked ? header()[col] : String(col));
  form.append("has_header", $("#has-header").checked ? "true" : "false");
  form.append("style", JSON.stringify(currentStyle()));
  const estimate = state.rowEstimate - ($("#has-header").checked ? 1 : 0);
  state.running = true;
  updateSubmit();
  try {
    const accepted = await (await api("/generate/csv", { method: "POST", body: form })).json();
    state.estimates[accepted.job_id] = Math.max(estimate, 1);
    follow(accepted.job_id);
    showDetected(accepted.detected || {});
  } catch (err) {
    state.running = false;
    updateSubmit();
    showError(err);
  }
}

function updateSubmit() {
  const button = $("#submit");
  button.disabled = state.running || !state.file || !state.rows.length;
  button.title = state.running ? "a job is running: wait for it or cancel it" : "";
}

function follow(jobId) {
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
function showDetected(detected) {
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

const count = (n) => Number(n).toLocaleString("en-US");

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

const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
};

// One page of the job's images at a time: a 20,000-image job stays a page tall.
async function showGallery(jobId, page = 0) {
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

async function cancel() {
  if (!state.job) return;
  try {
    await api("/jobs/" + encodeURIComponent(state.job) + "/cancel", { method: "POST" });
  } catch (err) {
    showError(err);
  }
}

// --- recent jobs, fonts, health ----------------------------------------------------------------

// The job list: what each job read (file or data source), when, how far it got.
async function loadJobs() {
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

async function loadFonts() {
  try {
    const fonts = await (await api("/fonts")).json();
    const select = $("#font");
    select.replaceChildren(...fonts.map((font) => {
      const scripts = font.scripts && font.scripts.length ? " — " + font.scripts.slice(0, 3).join(", ") : "";
      return new Option(font.name + scripts, font.name);
    }));
    select.value = "sans";
  } catch (err) {
    showError(err);
  }
}

async function checkHealth() {
  const pill = $("#health");
  try {
    const response = await fetch("/health");
    const body = await response.json();
    pill.textContent = response.ok ? "services ready" : body.error || "unavailable";
    pill.className = "pill " + (response.ok ? "ok" : "bad");
    if (body.auth) $("#key-box").hidden = false;
  } catch (_) {
    pill.textContent = "gateway unreachable";
    pill.className = "pill bad";
  }
}

// --- wiring ------------------------------------------------------------------------------------

function init() {
  const drop = $("#drop");
  const input = $("#file");
  input.addEventListener("change", () => input.files[0] && loadFile(input.files[0]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files[0]) loadFile(e.dataTransfer.files[0]);
  });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") input.click(); });
  $("#has-header").addEventListener("change", fillColumns);
  $("#column").addEventListener("change", () => { renderSample(); schedulePreview(); });
  $("#size").addEventListener("input", () => { $("#size-n").value = $("#size").value; schedulePreview(); });
  $("#size-n").addEventListener("input", () => { $("#size").value = $("#size-n").value; schedulePreview(); });
  $("#bg-none").addEventListener("change", () => { $("#bg").disabled = $("#bg-none").checked; schedulePreview(); });
  for (const id of ["#font", "#color", "#bg", "#padding", "#wrap", "#align"]) {
    $(id).addEventListener("input", schedulePreview);
  }
  $("#submit").addEventListener("click", submit);
  $("#cancel").addEventListener("click", cancel);
  $("#refresh").addEventListener("click", loadJobs);
  $("#prev").addEventListener("click", () => showGallery(state.job, state.galleryPage - 1));
  $("#next").addEventListener("click", () => showGallery(state.job, state.galleryPage + 1));
  const key = $("#api-key");
  key.value = state.apiKey;
  key.addEventListener("change", () => {
    state.apiKey = key.value.trim();
    localStorage.setItem("imagegen.apiKey", state.apiKey);
    clearError();
    loadFonts();
    loadJobs();
  });
  checkHealth();
  loadFonts();
  loadJobs();
}

document.addEventListener("DOMContentLoaded", init);
