// Validates Kubernetes objects against the OpenAPI schema of Kubernetes 1.33, with the validators of the npm
// package kubernetes-models 4.5.1 (generated from that version's OpenAPI document; installed by
// scripts/test-tools.sh).
//
//   node tests/tools/validate.mjs [--allow-kind GROUP/VERSION/KIND]... FILE|-...
//
// Each FILE (or stdin for "-") holds YAML or JSON documents, several per file separated by "---"; a List or a
// kind ending in "List" is checked item by item as well. Every document must have apiVersion and kind; its
// model is looked up by apiVersion and kind, and an object of a kind with no built-in schema is an error unless
// it is named with --allow-kind (for custom resources whose schema is the CRD's own). Empty documents are skipped.
//
// The schemas are the OpenAPI ones: they check types, required fields and enumerations, not unknown fields (the
// OpenAPI document does not forbid them; the API server's strict field validation does).
//
// Prints one line per object ("ok  KIND NAMESPACE/NAME" or "bad KIND NAMESPACE/NAME: what and where") and exits
// 0 when every object is valid, 1 when one is not, 2 on a usage or read error.
//
// Run with NODE_PATH=BUILD_DIR/tools/node_modules (tests do this through tests/e2e/lib.sh's helpers).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.resolve(process.env.NODE_PATH || process.cwd(), "noop.js"));
const YAML = require("yaml");

function usage(msg) {
    process.stderr.write(`validate.mjs: ${msg}\n`);
    process.exit(2);
}

const allowed = new Set();
const files = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--allow-kind") {
        if (i + 1 >= argv.length) usage("--allow-kind needs GROUP/VERSION/KIND");
        allowed.add(argv[++i]);
    } else {
        files.push(argv[i]);
    }
}
if (files.length === 0) usage("usage: validate.mjs [--allow-kind GROUP/VERSION/KIND]... FILE|-...");

// apiVersion "apps/v1" -> module path "kubernetes-models/apps/v1/KIND"; "v1" -> "kubernetes-models/v1/KIND".
function modelFor(apiVersion, kind) {
    if (!/^([a-z0-9.-]+\/)?v[0-9]+((alpha|beta)[0-9]+)?$/.test(apiVersion) || !/^[A-Za-z0-9]+$/.test(kind))
        return null;
    try {
        const mod = require(`kubernetes-models/${apiVersion}/${kind}`);
        return mod[kind] || null;
    } catch (e) {
        if (e && (e.code === "MODULE_NOT_FOUND" || e.code === "ERR_PACKAGE_PATH_NOT_EXPORTED")) return null;
        throw e;
    }
}

function describe(obj) {
    const md = (obj && obj.metadata) || {};
    return `${obj && obj.kind} ${md.namespace ? md.namespace + "/" : ""}${md.name || md.generateName || "(no name)"}`;
}

let bad = 0;
let count = 0;
function check(obj, where) {
    if (obj === null || obj === undefined) return;
    count++;
    if (typeof obj !== "object" || Array.isArray(obj)) {
        console.log(`bad ${where}: a document is not an object`);
        bad++;
        return;
    }
    if (typeof obj.apiVersion !== "string" || typeof obj.kind !== "string") {
        console.log(`bad ${where}: ${describe(obj)}: apiVersion and kind are required`);
        bad++;
        return;
    }
    // v1 List has no schema of its own (the API server never stores one): its items are what is checked
    const Model = obj.apiVersion === "v1" && obj.kind === "List" ? "List" : modelFor(obj.apiVersion, obj.kind);
    if (Model === "List") {
        if (!Array.isArray(obj.items)) {
            console.log(`bad ${where}: List: items must be a list`);
            bad++;
        } else {
            console.log(`ok  List (${obj.items.length} items)`);
        }
    } else if (Model === null) {
        if (allowed.has(`${obj.apiVersion}/${obj.kind}`)) {
            console.log(`ok  ${describe(obj)} (custom kind ${obj.apiVersion}/${obj.kind}, not checked here)`);
        } else {
            console.log(`bad ${where}: ${describe(obj)}: no Kubernetes 1.33 schema for ${obj.apiVersion}/${obj.kind}`);
            bad++;
        }
    } else {
        try {
            new Model(obj).validate();
            console.log(`ok  ${describe(obj)}`);
        } catch (e) {
            const detail = e && e.errors ? JSON.stringify(e.errors) : String(e && e.message ? e.message : e);
            console.log(`bad ${where}: ${describe(obj)}: ${detail}`);
            bad++;
        }
    }
    if (Array.isArray(obj.items) && (obj.kind === "List" || obj.kind.endsWith("List")))
        obj.items.forEach((item, i) => check(item, `${where} items[${i}]`));
}

for (const file of files) {
    let text;
    try {
        text = readFileSync(file === "-" ? 0 : file, "utf8");
    } catch (e) {
        usage(`cannot read ${file}: ${e.message}`);
    }
    const docs = YAML.parseAllDocuments(text);
    docs.forEach((doc, i) => {
        const where = `${file === "-" ? "stdin" : file} document ${i + 1}`;
        if (doc.errors.length > 0) {
            console.log(`bad ${where}: YAML: ${doc.errors[0].message}`);
            count++;
            bad++;
            return;
        }
        check(doc.toJS(), where);
    });
}
if (count === 0) usage("no object to validate");
process.exit(bad === 0 ? 0 : 1);
