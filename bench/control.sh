#!/usr/bin/env bash
# bench/control.sh - the control-plane benchmark: ringmesh-control on 127.0.0.1 and bench/control_bench, on the same
# machine. For each N in COUNTS a fresh control plane gets N sidecars (each with its own TCP+TLS connection with
# mTLS and its own Discovery stream), then three configuration changes; then Identity.Sign is measured with fresh
# CSRs, on kept connections (how a proxy renews: on its discovery stream's connection) and with a new connection per
# call (a proxy's first SVID), the latter once with the gRPC C core's client and once with the proxy's own client
# (wolfSSL and nghttp2, sidecar/grpc_h2.c), which is what sidecars run.
#
#   bench/control.sh [OUT_PREFIX]          default OUT_PREFIX=bench/out/control-<UTC date>
#
# Writes OUT_PREFIX.jsonl (control_bench's lines) and OUT_PREFIX.md (the tables, also printed). Settings from the
# environment: COUNTS ("1000 2500 5000"), SERVICES (50 Services in the mesh), SIGN_COUNT (5000),
# SIGN_CONCURRENCY (16), SIGN_NEWCONN_COUNT (1500), BUILD (build/; CONTROL_BIN, CTL_BIN and BENCH_BIN default to
# the binaries in it). Takes about 2 minutes with the default counts. Every process started is stopped by its PID.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$here/build}
CONTROL_BIN=${CONTROL_BIN:-$BUILD/control/ringmesh-control}
CTL_BIN=${CTL_BIN:-$BUILD/ctl/ringmeshctl}
BENCH_BIN=${BENCH_BIN:-$BUILD/bench/control_bench}
COUNTS=${COUNTS:-"1000 2500 5000"}
SERVICES=${SERVICES:-50}
SIGN_COUNT=${SIGN_COUNT:-5000}
SIGN_CONCURRENCY=${SIGN_CONCURRENCY:-16}
SIGN_NEWCONN_COUNT=${SIGN_NEWCONN_COUNT:-1500}
NS=bench
SA=sidecar

die() {
    echo "control.sh: $*" >&2
    exit 1
}

for bin in "$CONTROL_BIN" "$CTL_BIN" "$BENCH_BIN"; do
    [ -x "$bin" ] || die "$bin is not built (cmake --build build)"
done
command -v jq >/dev/null || die "jq is needed"

started=$(date -u '+%Y-%m-%d %H:%M')
out=${1:-$here/bench/out/control-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$(dirname "$out")"
: >"$out.jsonl"

tmp=$(mktemp -d /tmp/ringmesh-control-bench.XXXXXX)
control_pid=
stop_control() {
    [ -n "$control_pid" ] || return 0
    kill -TERM "$control_pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$control_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$control_pid" 2>/dev/null || true
    wait "$control_pid" 2>/dev/null || true
    control_pid=
}
cleanup() {
    stop_control
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Descriptors: each sidecar holds one in the control plane and one in control_bench.
max_n=0
for n in $COUNTS; do
    [ "$n" -gt "$max_n" ] && max_n=$n
done
need=$((2 * max_n + 1024))
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] || [ "$hard" -ge "$need" ] || ulimit -Hn "$need" 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge "$need" ] ||
    die "open files limit $(ulimit -n) is below $need (raise the hard limit, or lower COUNTS)"

# ---- the mesh: token key, MeshConfig, Services ----
mkdir -p "$tmp/mesh" "$tmp/state"
"$CTL_BIN" token keygen --key "$tmp/token-key.pem" --jwks "$tmp/jwks.json" --kid bench >/dev/null
"$CTL_BIN" token mint --key "$tmp/token-key.pem" --kid bench --namespace "$NS" --service-account "$SA" \
    --ttl 2h >"$tmp/token"
cat >"$tmp/mesh/mesh.yaml" <<'EOF'
apiVersion: ringmesh.io/v1alpha1
kind: MeshConfig
metadata: {name: mesh}
spec:
  trustDomain: cluster.local
  mtls: {mode: STRICT}
  svidTTL: 2h
EOF
for i in $(seq 1 "$SERVICES"); do
    cat >"$tmp/mesh/svc-$i.yaml" <<EOF
apiVersion: ringmesh.io/v1alpha1
kind: Service
metadata: {name: svc-$i, namespace: shop}
spec:
  addresses: [198.19.$((i / 250)).$((i % 250 + 1))]
  ports: [8080, 9090]
  serviceAccounts: [svc-$i]
EOF
done

free_port() {
    local port
    for _ in $(seq 50); do
        port=$((20000 + RANDOM % 30000))
        ss -Htln "sport = :$port" | grep -q . || {
            echo "$port"
            return
        }
    done
    die "no free port found"
}

admin_args=()
"$CONTROL_BIN" --help 2>&1 | grep -q -- --admin-listen && admin_args=(--admin-listen off)

# start_control TAG: a fresh ringmesh-control (the CA stays in the state directory), log $tmp/control-TAG.log
start_control() {
    local log=$tmp/control-$1.log
    port=$(free_port)
    target=ipv4:127.0.0.1:$port
    "$CONTROL_BIN" --listen "127.0.0.1:$port" "${admin_args[@]}" --config-dir "$tmp/mesh" \
        --state-dir "$tmp/state" --jwks "$tmp/jwks.json" --log-level info >"$log" 2>"$log.stderr" &
    control_pid=$!
    for _ in $(seq 150); do
        grep -q '"event":"config_serving"' "$log" 2>/dev/null && return 0
        kill -0 "$control_pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$log" "$log.stderr" >&2
    die "ringmesh-control did not start"
}

# bench MODE ARGS...: runs control_bench (bounded), keeps its JSON lines; a run with failures still reports them
bench() {
    local rc=0
    timeout 290 "$BENCH_BIN" "$@" | tee -a "$out.jsonl" >&2 || rc=$?
    [ "$rc" = 0 ] || echo "control.sh: control_bench $1 exited with status $rc" >&2
}

# ---- one SVID for every stream ----
start_control svid
bench svid --target "$target" --bundle "$tmp/state/trust-bundle.pem" --token "$tmp/token" \
    --cert-out "$tmp/svid.pem" --key-out "$tmp/svid-key.pem"
stop_control
[ -s "$tmp/svid.pem" ] || die "no SVID for the streams"

# ---- Discovery streams ----
for n in $COUNTS; do
    start_control "streams-$n"
    bench streams --target "$target" --bundle "$tmp/state/trust-bundle.pem" --cert "$tmp/svid.pem" \
        --key "$tmp/svid-key.pem" --ns "$NS" --sa "$SA" --count "$n" --config-dir "$tmp/mesh" \
        --control-pid "$control_pid" --changes 3
    stop_control
done

# ---- Identity.Sign ----
start_control sign
bench sign --target "$target" --bundle "$tmp/state/trust-bundle.pem" --token "$tmp/token" --count "$SIGN_COUNT" \
    --concurrency "$SIGN_CONCURRENCY" --control-pid "$control_pid"
bench sign --target "$target" --bundle "$tmp/state/trust-bundle.pem" --token "$tmp/token" \
    --count "$SIGN_NEWCONN_COUNT" --concurrency "$SIGN_CONCURRENCY" --new-connection --control-pid "$control_pid"
bench sign --target "$target" --bundle "$tmp/state/trust-bundle.pem" --token "$tmp/token" \
    --count "$SIGN_NEWCONN_COUNT" --concurrency "$SIGN_CONCURRENCY" --new-connection --proxy-client \
    --control-pid "$control_pid"
stop_control

# ---- tables ----
{
    commit=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
    [ -z "$(git -C "$here" status --porcelain -- control lib proto 2>/dev/null)" ] ||
        commit="$commit with uncommitted changes in control/, lib/ or proto/"
    echo "### Run of $started UTC, commit $commit"
    echo
    echo "Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) cores," \
        "$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)." \
        "ringmesh-control and control_bench on the same cores, over loopback; $SERVICES Services in the mesh."
    echo
    echo "Sidecars connecting (200 connecting at a time) and the control plane's memory with all of them connected:"
    echo
    echo "| sidecars | ready / failed | connect all s | sidecars/s | ready p50 / p99 ms | CPU ms per sidecar, control / bench | control RSS idle → connected MiB | RSS per sidecar KB | PSS per sidecar KB |"
    echo "|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    jq -r 'select(.mode == "streams" and .phase == "connect") |
        "| \(.count) | \(.ready) / \(.failed) | \(.connect_all_s * 10 | round / 10) | \(.streams_per_s | round) | " +
        "\(.ready_p50_ms | round) / \(.ready_p99_ms | round) | " +
        "\(.control_cpu_ms / .count * 100 | round / 100) / \(.bench_cpu_ms / .count * 100 | round / 100) | " +
        "\(.control_rss_idle_kb / 1024 | round) → \(.control_rss_kb / 1024 | round) | " +
        "\(.rss_per_stream_kb | round) | \(.pss_per_stream_kb | round) |"' "$out.jsonl"
    echo
    echo "A configuration change (a Service file renamed into the config directory) until each sidecar holds the" \
        "new DestinationMap:"
    echo
    echo "| sidecars | change | received / expected | min ms | p50 ms | p90 ms | p99 ms | max ms | CPU ms, control / bench |"
    echo "|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    jq -r 'select(.mode == "streams" and .phase == "change") |
        "| \(.count) | \(.change) | \(.received) / \(.expected) | \(.min_ms | round) | \(.p50_ms | round) | " +
        "\(.p90_ms | round) | \(.p99_ms | round) | \(.max_ms | round) | \(.control_cpu_ms) / \(.bench_cpu_ms) |"' "$out.jsonl"
    echo
    echo "Identity.Sign, a fresh key and CSR per call:"
    echo
    echo "| connections | calls | in flight | ok / failed | calls/s | p50 ms | p99 ms | control CPU ms per call |"
    echo "|---|--:|--:|--:|--:|--:|--:|--:|"
    jq -r 'select(.mode == "sign") |
        "| \(if .new_connection then "new per call, \(if .client == "proxy" then "proxy client" else "gRPC core client" end)" else "kept" end) | \(.count) | \(.concurrency) | " +
        "\(.ok) / \(.failed) | \(.calls_per_s | round) | \(.p50_ms * 10 | round / 10) | " +
        "\(.p99_ms * 10 | round / 10) | \(.control_cpu_ms_per_call * 100 | round / 100) |"' "$out.jsonl"
    echo
    echo "Against the targets (largest N: $max_n):"
    echo
    jq -rs --argjson n "$max_n" '
        (map(select(.mode == "streams" and .phase == "connect" and .count == $n)) | first) as $c |
        (map(select(.mode == "streams" and .phase == "change" and .count == $n))) as $ch |
        (map(select(.mode == "sign" and .new_connection == false)) | first) as $s |
        (map(select(.mode == "sign" and .new_connection == true and .client != "proxy")) | first) as $sn |
        (map(select(.mode == "sign" and .new_connection == true and .client == "proxy")) | first) as $sp |
        def yn(b): if b then "met" else "not met" end;
        "| target | measured | |",
        "|---|---|---|",
        "| 5,000 connected sidecars | \($c.ready // 0) ready, \($c.failed // 0) failed | \(yn(($c.ready // 0) >= 5000 and ($c.failed // 1) == 0)) |",
        "| change to all, p99 < 1 s | worst p99 \($ch | map(.p99_ms) | max // 0 | round) ms, \($ch | map(.received) | min // 0) of \($ch | map(.expected) | max // 0) received | \(yn(($ch | length) > 0 and ($ch | map(.p99_ms) | max) < 1000 and ($ch | all(.received == .expected)))) |",
        "| < 64 KB per sidecar | RSS \($c.rss_per_stream_kb // 0 | round) KB, PSS \($c.pss_per_stream_kb // 0 | round) KB | \(yn(($c.rss_per_stream_kb // 1e9) < 64 and ($c.pss_per_stream_kb // 1e9) < 64)) |",
        "| 500 CSRs/s | \($s.calls_per_s // 0 | round)/s on kept connections; with a new connection per call \($sp.calls_per_s // 0 | round)/s from the proxy client, \($sn.calls_per_s // 0 | round)/s from the gRPC core client | \(yn(($s.calls_per_s // 0) >= 500)) (kept), \(yn(($sp.calls_per_s // 0) >= 500)) (new, proxy client), \(yn(($sn.calls_per_s // 0) >= 500)) (new, gRPC core client) |"
    ' "$out.jsonl"
} | tee "$out.md"
