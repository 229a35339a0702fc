// A stand-in OpenTelemetry collector for tests: it receives OTLP/HTTP trace exports (POST /v1/traces, protobuf),
// decodes each with the code the OpenTelemetry project generated from its published OTLP .proto files (shipped in
// @opentelemetry/otlp-transformer, run by protobufjs: nothing of ringmesh's own encoder), and writes one JSON line
// per request it received to --out, whatever it answered. It can be told how to answer:
//
//   node otlp-collector.mjs --tools BUILD/tools --port-file FILE --out FILE [--listen 127.0.0.1] [--port 0]
//                           [--mode ok|503|429|hang|refuse] [--retry-after SECONDS]
//
//   ok       200 with an empty ExportTraceServiceResponse
//   503/429  that status (with Retry-After when given): the exporter should try again later
//   hang     reads the request and never answers (the connection stays open until the client gives up)
//   refuse   resets the connection as soon as the request has arrived
// The mode can be changed while running: POST /mode with the mode as the body. GET /stats answers the counts.
// Each line: {"seq", "ms" (since start), "mode", "content_type", "headers", "bytes", "request" (decoded, ids hex)}
// or "error" when the body does not decode.
import {createRequire} from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const args = {listen: '127.0.0.1', port: '0', mode: 'ok', 'retry-after': ''};
for (let i = 2; i < process.argv.length; i += 2) {
    const k = process.argv[i].replace(/^--/, '');
    if (!(k in args) && !['tools', 'port-file', 'out'].includes(k)) {
        console.error(`otlp-collector: unknown option --${k}`);
        process.exit(2);
    }
    args[k] = process.argv[i + 1];
}
if (!args.tools || !args.out || !args['port-file']) {
    console.error('otlp-collector: --tools, --out and --port-file are required');
    process.exit(2);
}
const modes = ['ok', '503', '429', 'hang', 'refuse'];
if (!modes.includes(args.mode)) {
    console.error(`otlp-collector: --mode must be one of ${modes.join(', ')}`);
    process.exit(2);
}

// The generated module registers itself with protobufjs; load both from the test tools' node_modules.
const req = createRequire(path.join(path.resolve(args.tools), 'node_modules', 'x.js'));
const root = req(path.join(path.resolve(args.tools),
                           'node_modules/@opentelemetry/otlp-transformer/build/src/generated/root.js'));
const Request = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
const Response = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse;

const hex = (b) => (b && b.length ? Buffer.from(b).toString('hex') : '');
function anyValue(v) {
    if (v == null) return null;
    if (v.stringValue != null) return v.stringValue;
    if (v.boolValue != null) return v.boolValue;
    if (v.intValue != null) return Number(v.intValue);
    if (v.doubleValue != null) return v.doubleValue;
    if (v.bytesValue != null) return hex(v.bytesValue);
    if (v.arrayValue != null) return (v.arrayValue.values || []).map(anyValue);
    if (v.kvlistValue != null) return attrs(v.kvlistValue.values);
    return null;
}
function attrs(list) {
    const o = {};
    for (const kv of list || []) o[kv.key] = anyValue(kv.value);
    return o;
}
const kinds = ['UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];
function decode(body) {
    const m = Request.decode(body);
    return {
        resource_spans: (m.resourceSpans || []).map((rs) => ({
            resource: attrs(rs.resource && rs.resource.attributes),
            scope_spans: (rs.scopeSpans || []).map((ss) => ({
                scope: ss.scope ? {name: ss.scope.name, version: ss.scope.version} : null,
                spans: (ss.spans || []).map((s) => ({
                    trace_id: hex(s.traceId),
                    span_id: hex(s.spanId),
                    parent_span_id: hex(s.parentSpanId),
                    trace_state: s.traceState || '',
                    name: s.name,
                    kind: kinds[s.kind] || String(s.kind),
                    start_ns: String(s.startTimeUnixNano),
                    end_ns: String(s.endTimeUnixNano),
                    flags: s.flags || 0,
                    attributes: attrs(s.attributes),
                    status: {code: s.status ? s.status.code || 0 : 0, message: s.status ? s.status.message || '' : ''},
                })),
            })),
        })),
    };
}

const out = fs.openSync(args.out, 'a');
const start = Date.now();
let seq = 0;
const stats = {requests: 0, ok: 0, refused: 0, hung: 0, errors: 0, spans: 0};
const hanging = new Set();

const server = http.createServer((q, r) => {
    const chunks = [];
    q.on('data', (c) => chunks.push(c));
    q.on('end', () => {
        const body = Buffer.concat(chunks);
        if (q.method === 'POST' && q.url === '/mode') {
            const m = body.toString().trim();
            if (!modes.includes(m)) {
                r.writeHead(400).end(`mode must be one of ${modes.join(', ')}\n`);
                return;
            }
            args.mode = m;
            r.writeHead(200).end(`${m}\n`);
            return;
        }
        if (q.method === 'GET' && q.url === '/stats') {
            r.writeHead(200, {'content-type': 'application/json'}).end(JSON.stringify(stats) + '\n');
            return;
        }
        if (q.method !== 'POST' || q.url !== '/v1/traces') {
            r.writeHead(404).end();
            return;
        }
        stats.requests++;
        const line = {seq: ++seq, ms: Date.now() - start, mode: args.mode, content_type: q.headers['content-type'],
                      headers: q.headers, bytes: body.length};
        try {
            line.request = decode(body);
            for (const rs of line.request.resource_spans)
                for (const ss of rs.scope_spans) stats.spans += args.mode === 'ok' ? ss.spans.length : 0;
        } catch (e) {
            line.error = String(e.message || e);
            stats.errors++;
        }
        fs.writeSync(out, JSON.stringify(line) + '\n');
        switch (args.mode) {
        case 'ok':
            if (q.headers['content-type'] !== 'application/x-protobuf') {
                r.writeHead(415).end();
                return;
            }
            stats.ok++;
            r.writeHead(200, {'content-type': 'application/x-protobuf'}).end(Buffer.from(Response.encode({}).finish()));
            return;
        case '503':
        case '429': {
            const h = {'content-type': 'text/plain'};
            if (args['retry-after']) h['retry-after'] = args['retry-after'];
            stats.refused++;
            r.writeHead(Number(args.mode), h).end('try later\n');
            return;
        }
        case 'hang':
            stats.hung++;
            hanging.add(q.socket);
            q.socket.on('close', () => hanging.delete(q.socket));
            return;
        case 'refuse':
            stats.refused++;
            q.socket.resetAndDestroy ? q.socket.resetAndDestroy() : q.socket.destroy();
            return;
        }
    });
});
server.keepAliveTimeout = 60000;
server.requestTimeout = 0;
server.listen(Number(args.port), args.listen, () => {
    fs.writeFileSync(args['port-file'], `${server.address().port}\n`);
});
const stop = () => {
    for (const s of hanging) s.destroy();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
