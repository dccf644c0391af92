// What every part of the console shares: the page state, DOM helpers, and the gateway's HTTP API
// (the same one any program uses) with its errors shown readably.

export const $ = (selector) => document.querySelector(selector);

export const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
};

export const count = (n) => Number(n).toLocaleString("en-US");

export const state = {
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

export class ApiError extends Error {
  constructor(code, message, field) {
    super(message);
    this.code = code;
    this.field = field;
  }
}

export function withKey(url) {
  // <img> and EventSource cannot send headers: the key travels in the query for them.
  if (!state.apiKey) return url;
  return url + (url.includes("?") ? "&" : "?") + "api_key=" + encodeURIComponent(state.apiKey);
}

export async function api(path, options = {}) {
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

export function describe(err) {
  if (err instanceof ApiError) {
    return { code: err.code || "", field: err.field || "", text: err.message };
  }
  return { code: "", field: "", text: String(err && err.message ? err.message : err) };
}

export function showError(err) {
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

export function clearError() {
  $("#error").hidden = true;
}
