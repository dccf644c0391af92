// Reading a CSV in the browser, before anything is uploaded: its encoding, delimiter, first rows,
// and which column most likely holds the text.

export function decodeSample(buffer) {
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

export function sniffDelimiter(text) {
  const firstLine = text.split(/\r?\n/, 1)[0];
  let best = ",", bestCount = 0;
  for (const candidate of [",", ";", "\t", "|"]) {
    const count = firstLine.split(candidate).length - 1;
    if (count > bestCount) { best = candidate; bestCount = count; }
  }
  return best;
}

export function parseCsv(text, delimiter, complete) {
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

// How much a cell reads like text: its letters (any script) less its digits, so codes such as
// `A001` or `SKU-2231` score nothing and a name in Latin or CJK letters scores high.
function textScore(cell) {
  if (!cell) return 0;
  const letters = (cell.match(/\p{L}/gu) || []).length;
  const digits = (cell.match(/\p{Nd}/gu) || []).length;
  return Math.max(letters - digits, 0);
}

// The default text column: the one whose cells hold the most letters (the first on a tie).
export function textColumn(width, rows) {
  let best = 0, bestScore = 0;
  for (let i = 0; i < width; i++) {
    const score = rows.reduce((sum, row) => sum + textScore(row[i]), 0);
    if (score > bestScore) { best = i; bestScore = score; }
  }
  return best;
}

export function formatBytes(n) {
  return n < 1024 ? n + " B" : n < 1048576 ? (n / 1024).toFixed(1) + " KB" : (n / 1048576).toFixed(1) + " MB";
}
