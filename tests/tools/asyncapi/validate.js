// Parse and validate an AsyncAPI document with the official parser; print a JSON verdict.
const { Parser } = require("@asyncapi/parser");
const fs = require("fs");

(async () => {
  const parser = new Parser();
  const { document, diagnostics } = await parser.parse(fs.readFileSync(process.argv[2], "utf8"));
  const problems = diagnostics
    .filter((d) => d.severity <= 1) // errors and warnings
    .map((d) => ({ severity: d.severity, code: d.code, message: d.message, path: d.path }));
  const verdict = {
    parsed: Boolean(document),
    problems,
    channels: document ? document.channels().all().map((c) => c.address()) : [],
    operations: document ? document.operations().length : 0,
  };
  console.log(JSON.stringify(verdict));
  process.exit(document && problems.length === 0 ? 0 : 1);
})();
