// Checks custom resources against the openAPIV3Schema of their CustomResourceDefinition, as the API server would,
// with ajv (a dependency of kubernetes-models, installed by scripts/test-tools.sh) and the RE2 engine the API
// server's patterns run on (re2-wasm, also there).
//
//   node tests/tools/crd_check.mjs structural CRD_FILE...
//       every CRD's schemas are structural (the rules apiextensions.k8s.io/v1 enforces when a CRD is created,
//       those a schema written here could break) and every pattern compiles as RE2; one line per CRD.
//   node tests/tools/crd_check.mjs validate --crds CRD_FILE... --split DIR -- FILE...
//       every AuthorizationPolicy and PeerAuthentication document of FILE... (any apiVersion: Istio's documents
//       are the same language) is validated against the CRD of its kind; its text is written to
//       DIR/NNNN.yaml for the caller to give to the policy loader. Prints per document
//         accept NNNN FILE#DOC KIND NS/NAME
//         refuse NNNN FILE#DOC KIND NS/NAME: PATH: MESSAGE; ...
//       and, when the document has the annotation test.ringmesh.io/schema-path, " expect=PATH" at the end.
//
// What the API server does besides the schema, and this does too: a null field of an object is dropped before
// validation (fields are not nullable); metadata.name is required and metadata.namespace must be a DNS label;
// fields the schema does not name are refused (kubectl's default, strict field validation). Exit status: 0, or 1
// when a CRD is not structural, 2 on a usage or read error. Run with NODE_PATH=BUILD_DIR/tools/node_modules.
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.resolve(process.env.NODE_PATH || process.cwd(), "noop.js"));
const YAML = require("yaml");
const Ajv = require("ajv");
const { RE2 } = require("re2-wasm");

function usage(msg) {
    process.stderr.write(`crd_check.mjs: ${msg}\n`);
    process.exit(2);
}

function readDocs(file) {
    let text;
    try {
        text = readFileSync(file, "utf8");
    } catch (e) {
        usage(`cannot read ${file}: ${e.message}`);
    }
    return { text, docs: YAML.parseAllDocuments(text) };
}

function loadCrds(files) {
    const byKind = new Map();
    for (const f of files) {
        for (const d of readDocs(f).docs) {
            const o = d.toJS();
            if (!o || o.kind !== "CustomResourceDefinition") continue;
            byKind.set(o.spec.names.kind, o);
        }
    }
    return byKind;
}

// --- structural schemas (apiextensions.k8s.io/v1): the rules a hand-written schema can break
const JUNCTORS = ["anyOf", "allOf", "oneOf"];
const NOT_IN_JUNCTORS = ["type", "description", "default", "additionalProperties", "nullable", "title"];
function structural(s, where, inJunctor, errs) {
    if (typeof s !== "object" || s === null) return;
    const ext = s["x-kubernetes-int-or-string"] || s["x-kubernetes-preserve-unknown-fields"];
    if (inJunctor) {
        for (const k of NOT_IN_JUNCTORS) if (k in s) errs.push(`${where}: ${k} is not allowed inside anyOf/allOf/oneOf/not`);
        for (const k of Object.keys(s)) if (k.startsWith("x-kubernetes-")) errs.push(`${where}: ${k} inside a junctor`);
    } else if (!("type" in s) && !ext) {
        errs.push(`${where}: type is missing`);
    }
    if (s["x-kubernetes-int-or-string"] && "type" in s) errs.push(`${where}: x-kubernetes-int-or-string with a type`);
    if ("properties" in s && "additionalProperties" in s) errs.push(`${where}: properties and additionalProperties`);
    if (s.additionalProperties === false) errs.push(`${where}: additionalProperties: false is not allowed`);
    for (const k of ["patternProperties", "dependencies", "$ref", "definitions", "if", "then", "else", "propertyNames"])
        if (k in s) errs.push(`${where}: ${k} is not supported in CRD schemas`);
    if (typeof s.pattern === "string") {
        try {
            new RE2(s.pattern, "u");
        } catch (e) {
            errs.push(`${where}: pattern is not RE2: ${e.message}`);
        }
        try {
            new RegExp(s.pattern, "u");
        } catch (e) {
            errs.push(`${where}: pattern is not ECMAScript: ${e.message}`);
        }
    }
    for (const [k, v] of Object.entries(s.properties || {})) structural(v, `${where}.properties.${k}`, false, errs);
    if (typeof s.additionalProperties === "object") structural(s.additionalProperties, `${where}.additionalProperties`, false, errs);
    if (s.items) structural(s.items, `${where}.items`, false, errs);
    for (const j of JUNCTORS) (s[j] || []).forEach((x, i) => structural(x, `${where}.${j}[${i}]`, true, errs));
    if (s.not) structural(s.not, `${where}.not`, true, errs);
}

function structuralMain(files) {
    const crds = loadCrds(files);
    if (crds.size === 0) usage("no CustomResourceDefinition in the files");
    let bad = 0;
    for (const [kind, crd] of crds) {
        const errs = [];
        for (const v of crd.spec.versions) {
            const root = v.schema && v.schema.openAPIV3Schema;
            if (!root) {
                errs.push(`${v.name}: no openAPIV3Schema`);
                continue;
            }
            structural(root, `${v.name}`, false, errs);
            const md = root.properties && root.properties.metadata;
            if (md) {
                for (const k of Object.keys(md.properties || {}))
                    if (k !== "name" && k !== "generateName") errs.push(`${v.name}.metadata: only name and generateName may be restricted, not ${k}`);
            }
        }
        console.log(errs.length === 0 ? `ok  ${kind}` : `bad ${kind}: ${errs.join("; ")}`);
        if (errs.length) bad++;
    }
    process.exit(bad ? 1 : 0);
}

// --- validation as the API server does it
// A copy of the schema in which objects with named properties refuse other fields (strict field validation; the
// root's metadata stays open: ObjectMeta has many fields), and int-or-string means an integer or a string.
function closed(s, isMetadata) {
    if (typeof s !== "object" || s === null) return s;
    const c = { ...s };
    if (c["x-kubernetes-int-or-string"]) c.type = ["integer", "string"];
    for (const k of Object.keys(c)) if (k.startsWith("x-kubernetes-")) delete c[k];
    if (c.properties) {
        c.properties = Object.fromEntries(
            Object.entries(c.properties).map(([k, v]) => [k, closed(v, false)]),
        );
        if (!isMetadata && !s["x-kubernetes-preserve-unknown-fields"] && !("additionalProperties" in c))
            c.additionalProperties = false;
    }
    if (typeof c.additionalProperties === "object") c.additionalProperties = closed(c.additionalProperties, false);
    if (c.items) c.items = closed(c.items, false);
    for (const j of JUNCTORS) if (c[j]) c[j] = c[j].map((x) => closed(x, false));
    return c;
}

function rootSchema(crd) {
    const v = crd.spec.versions.find((x) => x.storage) || crd.spec.versions[0];
    const root = closed(v.schema.openAPIV3Schema, false);
    root.properties.metadata = closed(v.schema.openAPIV3Schema.properties.metadata || { type: "object" }, true);
    return root;
}

// Null fields of objects are dropped before validation (the API server's rule for fields that are not nullable).
function dropNulls(o) {
    if (Array.isArray(o)) return o.map(dropNulls);
    if (o && typeof o === "object") {
        const r = {};
        for (const [k, v] of Object.entries(o)) if (v !== null) r[k] = dropNulls(v);
        return r;
    }
    return o;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function validateMain(crdFiles, splitDir, files) {
    const crds = loadCrds(crdFiles);
    const ajv = new Ajv({ strict: false, allErrors: true, code: { regExp: (p) => new RE2(p, "u") } });
    const validators = new Map();
    for (const [kind, crd] of crds) validators.set(kind, ajv.compile(rootSchema(crd)));
    let n = 0;
    for (const file of files) {
        const { text, docs } = readDocs(file);
        docs.forEach((doc, i) => {
            if (doc.errors.length > 0) return; // YAML errors are the loader's to report, not a schema question
            const obj = doc.toJS({ maxAliasCount: 100 });
            if (!obj || typeof obj !== "object" || !validators.has(obj.kind)) return;
            const id = String(++n).padStart(4, "0");
            writeFileSync(path.join(splitDir, `${id}.yaml`), text.slice(doc.range[0], doc.range[2]));
            const md = (obj && typeof obj.metadata === "object" && obj.metadata) || {};
            const expect = md.annotations && md.annotations["test.ringmesh.io/schema-path"];
            const what = `${id} ${file}#${i + 1} ${obj.kind} ${md.namespace || "default"}/${md.name}`;
            const errs = [];
            const o = dropNulls(obj);
            if (!validators.get(obj.kind)(o))
                for (const e of validators.get(obj.kind).errors)
                    errs.push(`${e.instancePath || "/"}: ${e.message}${e.params && e.params.additionalProperty ? ` (${e.params.additionalProperty})` : ""}`);
            if (typeof md.name !== "string") errs.push("/metadata/name: required");
            if (md.namespace !== undefined && (typeof md.namespace !== "string" || !DNS_LABEL.test(md.namespace)))
                errs.push("/metadata/namespace: must be a DNS label");
            const tail = expect ? ` expect=${expect}` : "";
            console.log(errs.length === 0 ? `accept ${what}${tail}` : `refuse ${what}: ${errs.join("; ")}${tail}`);
        });
    }
    if (n === 0) usage("no AuthorizationPolicy or PeerAuthentication document in the files");
}

const argv = process.argv.slice(2);
if (argv[0] === "structural" && argv.length > 1) {
    structuralMain(argv.slice(1));
} else if (argv[0] === "validate") {
    const crdFiles = [];
    let splitDir = null;
    let i = 1;
    for (; i < argv.length && argv[i] !== "--"; i++) {
        if (argv[i] === "--crds") continue;
        if (argv[i] === "--split") splitDir = argv[++i];
        else crdFiles.push(argv[i]);
    }
    const files = argv.slice(i + 1);
    if (!splitDir || crdFiles.length === 0 || files.length === 0)
        usage("usage: crd_check.mjs validate --crds CRD_FILE... --split DIR -- FILE...");
    validateMain(crdFiles, splitDir, files);
} else {
    usage("usage: crd_check.mjs structural CRD_FILE... | validate --crds CRD_FILE... --split DIR -- FILE...");
}
