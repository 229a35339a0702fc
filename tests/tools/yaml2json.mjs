// Prints the YAML documents of FILE (or stdin for "-") as one JSON array, empty documents left out; exits 1 on a
// YAML error, naming the document. For tests that check rendered manifests with jq.
//
//   NODE_PATH=BUILD_DIR/tools/node_modules node tests/tools/yaml2json.mjs FILE|-
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.resolve(process.env.NODE_PATH || process.cwd(), "noop.js"));
const YAML = require("yaml");
if (process.argv.length !== 3) {
    process.stderr.write("usage: yaml2json.mjs FILE|-\n");
    process.exit(2);
}
const file = process.argv[2];
const docs = YAML.parseAllDocuments(readFileSync(file === "-" ? 0 : file, "utf8"));
const out = [];
docs.forEach((d, i) => {
    if (d.errors.length > 0) {
        process.stderr.write(`yaml2json.mjs: ${file} document ${i + 1}: ${d.errors[0].message}\n`);
        process.exit(1);
    }
    const o = d.toJS();
    if (o !== null && o !== undefined) out.push(o);
});
process.stdout.write(JSON.stringify(out) + "\n");
