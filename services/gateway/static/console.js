// The imagegen web console: plain JS modules, no build step. It only calls the gateway's HTTP API
// and reads the chosen CSV locally to offer its columns.

import { $, ApiError, api, clearError, describe, showError, state } from "./api.js";
import { decodeSample, formatBytes, parseCsv, sniffDelimiter, textColumn } from "./csv.js";
import { cancel, follow, loadJobs, showDetected, showGallery, updateSubmit } from "./jobs.js";

const SAMPLE_BYTES = 256 * 1024; // enough of the file for the header and the preview rows
const PREVIEW_ROWS = 3;

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

function header() {
  const first = state.rows[0] || [];
  return $("#has-header").checked ? first : first.map((_, i) => "column " + (i + 1));
}

function dataRows() {
  return $("#has-header").checked ? state.rows.slice(1) : state.rows;
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

// --- submitting ---------------------------------------------------------------------------------

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

// --- fonts, health, wiring ---------------------------------------------------------------------

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
