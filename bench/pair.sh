#!/usr/bin/env bash
# bench/pair.sh - a ringmesh proxy pair under the PAIR_CMD contract of shared/bench/peer-bench.sh:
#
#   client --plain--> outbound proxy (explicit upstream listener, 127.0.0.1:$OUT_LISTEN)
#          --mTLS 1.3, ALPN ringmesh/1--> inbound proxy (explicit inbound listener, 127.0.0.1:$IN_LISTEN)
#          --plain--> $BACKEND
#
# Usage (from the repository root, after a build into build/):
#   PAIR_CMD=bench/pair.sh bash ../shared/bench/peer-bench.sh
# The environment (OUT_LISTEN IN_LISTEN BACKEND CA CERT_CLIENT KEY_CLIENT CERT_SERVER KEY_SERVER PAIR_WORKDIR) comes
# from peer-bench.sh. Knobs: RM_PROXY (binary), RM_WORKERS (default 1), RINGMESH_IO_BACKEND (auto|io_uring|epoll),
# RM_POLICY_RULES (authorization rules on the inbound proxy, default none), RM_METRICS (metrics.enabled of both
# proxies: true, the default, or false), RM_MAX_CONNECTIONS (maxConnections of both, default the proxy's 4096),
# RM_ACCESS_LOG (accessLog of both proxies, e.g. "{enabled: true, sampleRate: 0}"; default none), RM_HANDSHAKES
# (handshakes of the inbound proxy, e.g. "{backoffAfterFailures: 0}"; default none: docs/proxy-config.md). Tracing follows the OTEL_* variables of the environment (docs/tracing.md).
# Both proxies start in the background in this session and this script returns; peer-bench stops them by PID.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
proxy=${RM_PROXY:-$here/build/sidecar/ringmesh-proxy}
workers=${RM_WORKERS:-1}
metrics=${RM_METRICS:-true}
maxconns=${RM_MAX_CONNECTIONS:-4096}
access_log=${RM_ACCESS_LOG:-}
work=${PAIR_WORKDIR:-$(mktemp -d)}
: "${OUT_LISTEN:?}" "${IN_LISTEN:?}" "${BACKEND:?}" "${CA:?}" "${CERT_CLIENT:?}" "${KEY_CLIENT:?}" \
  "${CERT_SERVER:?}" "${KEY_SERVER:?}"
[ -x "$proxy" ] || { echo "pair.sh: $proxy not found: build first (scripts/test.sh or cmake --build build)" >&2; exit 1; }

# The bench's certificates name spiffe://cluster.local/ns/default/sa/{client,server}.
cat >"$work/outbound.yaml" <<YAML
trustDomain: cluster.local
tls: {certFile: "$CERT_CLIENT", keyFile: "$KEY_CLIENT", bundleFile: "$CA"}
outbound: {enabled: false}
inbound: {enabled: false}
admin: {enabled: false}
workers: $workers
maxConnections: $maxconns
connectionLog: false
metrics: {enabled: $metrics}
logLevel: warn
listeners:
  - name: bench-upstream
    type: upstream
    listen: "127.0.0.1:$OUT_LISTEN"
    target: "127.0.0.1:$IN_LISTEN"
    identities: ["spiffe://cluster.local/ns/default/sa/server"]
YAML
cat >"$work/inbound.yaml" <<YAML
trustDomain: cluster.local
tls: {certFile: "$CERT_SERVER", keyFile: "$KEY_SERVER", bundleFile: "$CA"}
outbound: {enabled: false}
inbound: {enabled: false}
admin: {enabled: false}
workers: $workers
maxConnections: $maxconns
connectionLog: false
metrics: {enabled: $metrics}
logLevel: warn
listeners:
  - name: bench-inbound
    type: inbound
    listen: "127.0.0.1:$IN_LISTEN"
    target: "$BACKEND"
    mode: STRICT
YAML

if [ -n "${RM_HANDSHAKES:-}" ]; then
    printf 'handshakes: %s\n' "$RM_HANDSHAKES" >>"$work/inbound.yaml"
fi
if [ -n "$access_log" ]; then
    printf 'accessLog: %s\n' "$access_log" | tee -a "$work/outbound.yaml" >>"$work/inbound.yaml"
fi

# RM_POLICY_RULES=N: the inbound proxy enforces N AuthorizationPolicy rules (authorization.policyDir), so the
# pair measures enforcement: a DENY rule on admin paths, N-2 ALLOW rules for other principals, namespaces and paths,
# and the last one allowing the bench client. The rules use HTTP fields, so every HTTP request is parsed and
# decided; the bulk run (iperf3, not HTTP) is decided once per connection.
if [ -n "${RM_POLICY_RULES:-}" ] && [ "$RM_POLICY_RULES" -gt 0 ]; then
    mkdir -p "$work/policies"
    {
        printf 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n'
        printf 'metadata: {name: bench-deny, namespace: default}\nspec:\n  action: DENY\n  rules:\n'
        printf '  - from: [{source: {notNamespaces: ["default"]}}]\n'
        printf '    to: [{operation: {paths: ["/admin/*", "*/.env"], methods: ["DELETE"]}}]\n---\n'
        printf 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n'
        printf 'metadata: {name: bench-allow, namespace: default}\nspec:\n  rules:\n'
        for i in $(seq 1 $((RM_POLICY_RULES - 2))); do
            if [ $((i % 2)) = 0 ]; then
                printf '  - from: [{source: {principals: ["cluster.local/ns/ns%d/sa/sa%d"]}}]\n' "$i" "$i"
                printf '    to: [{operation: {methods: ["GET"], paths: ["/api/v%d/*"]}}]\n' "$i"
            else
                printf '  - from: [{source: {namespaces: ["team%d"]}}]\n' "$i"
                printf '    to: [{operation: {paths: ["/svc%d/*", "*/v%d"]}}]\n' "$i" "$i"
            fi
        done
        printf '  - from: [{source: {principals: ["cluster.local/ns/default/sa/client"]}}]\n'
    } >"$work/policies/bench.yaml"
    printf 'authorization: {policyDir: "%s", defaultAction: DENY}\n' "$work/policies" >>"$work/inbound.yaml"
fi

"$proxy" --config "$work/inbound.yaml" >"$work/inbound.log" 2>&1 &
echo $! >>"${PAIR_PIDFILE:-/dev/null}"
"$proxy" --config "$work/outbound.yaml" >"$work/outbound.log" 2>&1 &
echo $! >>"${PAIR_PIDFILE:-/dev/null}"
