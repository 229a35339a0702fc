#!/usr/bin/env bash
# Regenerates the hand-made seeds (seed-* files) of the fuzz targets that make-seeds.sh does not cover:
#   kube_watch      watch streams built from the objects of tests/data/kube/cluster.json (ADDED, MODIFIED,
#                   DELETED, BOOKMARK, an ERROR Status, a list page), with the first byte as the chunk length
#   kubeconfig      kubeconfigs with a token, a token file, client certificates inline and as files, and each form
#                   the loader refuses (exec plugin, auth provider, insecure-skip-tls-verify, plain http)
#   workload_policy WorkloadPolicy messages written in protobuf text format (protoc --encode)
#   inject_config   the InjectorConfig of docs/injection.md and variations of its fields
#   app_probes      RINGMESH_APP_PROBERS values of each probe kind, and refused ones
#   otel_env        OTEL_RESOURCE_ATTRIBUTES / OTEL_EXPORTER_OTLP_HEADERS values
#   first_bytes     the first bytes of HTTP/1.x, HTTP/2 prior-knowledge, TLS and other protocols
#   http1_scan      exchanges in fuzz_http1_filter's chunk script: plain responses the scanner frames, split at
#                   several places, mixed with the framings it leaves to http_parser (1xx, HEAD, chunked, close,
#                   duplicate Content-Length, obs-fold, upgrade, CONNECT, EOF-delimited)
#
#   tests/fuzz/make-seeds-extra.sh [TARGET...]
#
# Needs jq and protoc. Other corpus files (libFuzzer's finds) are left alone.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
corpus=$src/tests/fuzz/corpus
wanted=("$@")

want() {
    local t
    [ ${#wanted[@]} -eq 0 ] && return 0
    for t in "${wanted[@]}"; do
        [ "$t" = "$1" ] && return 0
    done
    return 1
}

# seed TARGET NAME: writes stdin to corpus/TARGET/seed-NAME
seed() {
    if ! want "$1"; then
        cat >/dev/null
        return 0
    fi
    mkdir -p "$corpus/$1"
    cat >"$corpus/$1/seed-$2"
}

# ---- kube_watch ---------------------------------------------------------------------------------------------------

cluster=$src/tests/data/kube/cluster.json
# events TYPE KIND LIST_KEY: one watch event line per object of the list, with its kind filled in
events() {
    jq -c --arg t "$1" --arg k "$2" --arg l "$3" '.[$l][] | {type: $t, object: (. + {kind: $k})}' "$cluster"
}
for chunk in 0 7 63 255; do
    {
        printf "\\x$(printf %02x "$chunk")"
        events ADDED Pod pods
        events ADDED Service services
        events ADDED EndpointSlice endpointSlices
        jq -c '.policies[] | {type: "ADDED", object: .}' "$cluster"
    } | seed kube_watch "all-added-chunk$chunk"
done
{
    printf '\x10'
    events ADDED Pod pods
    events MODIFIED Pod pods | jq -c '.object.status.phase = "Succeeded"'
    events DELETED Pod pods | head -n 1
    printf '{"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"12345"}}}\n'
} | seed kube_watch pods-lifecycle
{
    printf '\x20'
    printf '{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure",'
    printf '"message":"too old resource version: 1 (2)","reason":"Expired","code":410}}\n'
} | seed kube_watch error-expired
{
    printf '\x40'
    events ADDED Service services | head -n 1 | tr -d '\n'
    printf '\r\n\n\n'
    printf 'not json\n{"type":"ADDED"}\n{"type":"ADDED","object":[]}\n{"object":{"kind":"Pod"}}\n'
} | seed kube_watch odd-lines

# ---- kubeconfig ---------------------------------------------------------------------------------------------------

kubeconfig() { # kubeconfig CLUSTER_FIELDS USER_FIELDS
    printf 'apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u, namespace: ringmesh-system}\n'
    printf 'clusters:\n- name: k\n  cluster:\n%s\nusers:\n- name: u\n  user:\n%s\n' "$1" "$2"
}
ca_data=$(printf -- '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n' | base64 -w0)
kubeconfig "    server: https://198.18.0.1:6443
    certificate-authority: ca.pem" "    token: abc.def.ghi" | seed kubeconfig token
kubeconfig "    server: https://kube.example:443/prefix
    certificate-authority-data: $ca_data" "    tokenFile: /var/run/token" | seed kubeconfig token-file
kubeconfig "    server: https://[fd00::1]:6443
    certificate-authority-data: $ca_data" "    client-certificate-data: $ca_data
    client-key-data: $ca_data" | seed kubeconfig client-cert-data
kubeconfig "    server: https://198.18.0.1:6443" "    client-certificate: c.pem
    client-key: k.pem" | seed kubeconfig client-cert-files
kubeconfig "    server: https://198.18.0.1:6443" "    exec: {apiVersion: client.authentication.k8s.io/v1, command: aws}" |
    seed kubeconfig exec-refused
kubeconfig "    server: https://198.18.0.1:6443" "    auth-provider: {name: gcp}" | seed kubeconfig auth-provider-refused
kubeconfig "    server: https://198.18.0.1:6443
    insecure-skip-tls-verify: true" "    token: x" | seed kubeconfig insecure-refused
kubeconfig "    server: http://198.18.0.1:8080" "    token: x" | seed kubeconfig http-refused
printf 'apiVersion: v1\nkind: Config\ncurrent-context: missing\n' | seed kubeconfig no-context
printf -- '- [a\n' | seed kubeconfig not-yaml

# ---- workload_policy ----------------------------------------------------------------------------------------------

encode() { # encode NAME: stdin, a WorkloadPolicy in protobuf text format
    local bin
    bin=$(mktemp)
    protoc --proto_path="$src/proto" --encode=ringmesh.v1.WorkloadPolicy ringmesh/v1/discovery.proto >"$bin"
    seed workload_policy "$1" <"$bin"
    rm -f "$bin"
}
printf '' | encode empty
encode allow-principal <<'PB'
policies { namespace: "shop" name: "orders-allow" action: AUTHZ_ALLOW
  rules { from { principals: "cluster.local/ns/web/sa/default" }
          to { methods: "GET" paths: "/api/*" ports: "8080" } } }
default_action: DEFAULT_DENY
PB
encode deny-and-audit <<'PB'
policies { namespace: "shop" name: "deny" action: AUTHZ_DENY
  rules { from { not_namespaces: "shop" ip_blocks: "198.18.0.0/15" }
          when { key: "source.principal" not_values: "*/sa/admin" } } }
policies { namespace: "shop" name: "audit" action: AUTHZ_AUDIT dry_run: true log_allowed: true rules { } }
default_action: DEFAULT_ALLOW log_allowed: true log_allowed_sample: 0.25
inbound_mode: PERMISSIVE port_modes { port: 8080 mode: STRICT } port_modes { port: 9090 mode: DISABLE }
path_normalization: PATH_NORMALIZATION_DECODE_AND_MERGE_SLASHES
trust_domain: "cluster.local" trust_domain_aliases: "old.example"
PB
encode bad-trust-domain <<'PB'
trust_domain: "Not A Domain!"
PB
encode bad-ip-block <<'PB'
policies { namespace: "shop" name: "x" rules { from { ip_blocks: "300.1.2.3/40" } } }
PB

# ---- inject_config ------------------------------------------------------------------------------------------------

injector() { # injector SPEC_LINES
    printf 'apiVersion: ringmesh.io/v1alpha1\nkind: InjectorConfig\nmetadata: {name: default}\nspec:\n%s\n' "$1"
}
injector "  meshNamespace: ringmesh-system
  controlPlaneAddress: ringmesh-control.ringmesh-system.svc:15012
  trustDomain: cluster.local
  image: ringmesh/ringmesh:0.1.0
  imagePullPolicy: IfNotPresent
  proxy:
    logLevel: info
    uid: 1337
    resources:
      requests: {cpu: 50m, memory: 32Mi}
      limits: {memory: 256Mi}
  init:
    resources:
      requests: {cpu: 10m, memory: 16Mi}
      limits: {memory: 64Mi}
  nativeSidecar: auto
  rewriteAppProbes: true
  tokenExpirationSeconds: 3600
  excludeOutboundIPRanges: [169.254.169.254/32]
  excludeOutboundPorts: [25]
  excludeInboundPorts: [15021]
  failOpenOnInvalidAnnotation: false" | seed inject_config docs-example
injector "  image: r/r:1
  imagePullPolicy: Sometimes" | seed inject_config bad-pull-policy
injector "  proxy: {uid: 0}" | seed inject_config root-uid
injector "  tokenExpirationSeconds: 5" | seed inject_config short-token
injector "  proxy: {resources: {requests: {cpu: lots}}}" | seed inject_config bad-quantity
injector "  nativeSidecar: \"true\"
  excludeOutboundIPRanges: [10.0.0.0/33]" | seed inject_config bad-cidr
printf 'kind: InjectorConfig\nspec: [1, 2]\n' | seed inject_config spec-not-map

# ---- app_probes ---------------------------------------------------------------------------------------------------

printf '%s' '{"/app-health/web/readyz": {"httpGet": {"path": "ready", "port": 8080, "scheme": "HTTPS", "httpHeaders": [{"name": "X-A", "value": "1"}]}, "timeoutSeconds": 3}}' |
    seed app_probes http
printf '%s' '{"/app-health/db/livez": {"tcpSocket": {"port": 5432, "host": "198.18.1.2"}}, "/app-health/db/startupz": {"grpc": {"port": 9000, "service": "health"}}}' |
    seed app_probes tcp-grpc
printf '%s' '{"/app-health/a/readyz": {"tcpSocket": {"port": 1}}, "/app-health/a/readyz": {}}' | seed app_probes duplicate
printf '%s' '{"/app-health/a/livez": {"exec": {"command": ["true"]}}}' | seed app_probes exec-refused
printf '%s' '{"/app-health/a/livez": {"httpGet": {"port": 70000}}}' | seed app_probes bad-port
printf '%s' '[1, 2]' | seed app_probes not-object

# ---- otel_env -----------------------------------------------------------------------------------------------------

printf 'service.name=orders,service.version=1.2.3,k8s.namespace.name=shop' | seed otel_env attributes
printf ' authorization = Bearer%%20x , x-tenant=a%%2Cb ' | seed otel_env headers-escaped
printf 'a=1,,=2,novalue,b=%%zz,c=%%4' | seed otel_env malformed

# ---- first_bytes --------------------------------------------------------------------------------------------------

printf 'GET /api/orders HTTP/1.1\r\nHost: orders\r\n\r\n' | seed first_bytes http1-get
printf 'POST / HTTP/1.0\r\nContent-Length: 0\r\n\r\n' | seed first_bytes http10-post
printf 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00' | seed first_bytes h2-preface
printf 'PRI * HTTP/2.0\r\n\r\nSX' | seed first_bytes h2-almost
printf 'SSH-2.0-OpenSSH_9.2\r\n' | seed first_bytes ssh
printf '\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00' | seed first_bytes tls-record
printf 'CONNECT orders:443 HTTP/1.1\r\n\r\n' | seed first_bytes connect
printf 'get / http/1.1\r\n' | seed first_bytes lowercase

# ---- http1_scan -------------------------------------------------------------------------------------------------
# http1_scan_seed NAME: stdin holds lines "C text" (from the client) or "A text" (from the app), CR and LF written
# as \r and \n; they become fuzz_http1_filter's chunk script
http1_scan_seed() {
    python3 -c '
import sys
out = bytearray(b"\x00\x01")
for line in sys.stdin.read().splitlines():
    who, _, text = line.partition(" ")
    b = text.encode().decode("unicode_escape").encode("latin-1")
    tag = 1 if who == "A" else 0
    if len(b) < 127:
        out += bytes([len(b) << 1 | tag]) + b
    else:
        out += bytes([127 << 1 | tag, len(b) >> 8, len(b) & 255]) + b
sys.stdout.buffer.write(bytes(out))' | seed http1_scan "$1"
}
nginx='HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n'
http1_scan_seed pipelined <<EOF
C GET /a HTTP/1.1\r\nhost: x\r\n\r\nGET /b HTTP/1.1\r\nhost: x\r\n\r\nGET /c HTTP/1.1\r\n\r\n
A ${nginx}hello
A HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\nHTTP/1.1 500 E\r\ncontent-length: 3\r\n\r\nab
A c
EOF
http1_scan_seed split-head <<EOF
C GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n
A HTTP/1.1 200 OK\r\nconte
A nt-length: 2\r\n\r\nhi${nginx}he
A llo
EOF
http1_scan_seed interim-head-chunked <<EOF
C POST /a HTTP/1.1\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\nhiHEAD /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n
A HTTP/1.1 100 Continue\r\n\r\n${nginx}hello
A HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n
A HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n
EOF
http1_scan_seed odd-framing <<EOF
C GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n
A HTTP/1.1 200 OK\r\ncontent-length: 1\r\nconnection: close\r\n\r\nx
A HTTP/1.1 200 OK\r\nx-a: 1\r\n 2\r\ncontent-length: 1\r\n\r\nx
A HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nxy
EOF
http1_scan_seed upgrade-connect <<EOF
C GET /a HTTP/1.1\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\nGET /b HTTP/1.1\r\n\r\n
A ${nginx}hello${nginx}hello
C CONNECT h:443 HTTP/1.1\r\nhost: h:443\r\n\r\nraw
A HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n${nginx}
EOF
http1_scan_seed until-eof <<EOF
C GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n
A ${nginx}hello
A HTTP/1.1 200 OK\r\n\r\nabcdef
EOF
