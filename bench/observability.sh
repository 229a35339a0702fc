#!/usr/bin/env bash
# bench/observability.sh - what metrics and tracing cost the data-plane pair: the same binary in three
# configurations, interleaved round by round in one run:
#   direct    client -> backend
#   off       ringmesh pair (bench/pair.sh) with metrics.enabled false and no tracing: requests are not parsed
#   on        the same pair with Istio's metrics on and OpenTelemetry tracing at a 1 % sample rate
#             (parentbased_traceidratio 0.01), spans exported over OTLP/HTTP to a collector on loopback
# Each round measures, per configuration: the maximum keep-alive requests/s (h2load, HTTP/1.1, CONNS connections,
# SECS seconds) and the latency at a fixed RATE req/s (p50/p90/p99). Reported: medians over the rounds, the added
# p50 over direct, and on's ratios to off. The targets: on keeps at least 95 % of off's requests/s, and its added
# p50 is at most 5 % above off's. The proxies' RSS is read after the last round.
#
#   bench/observability.sh [OUT_PREFIX]   default OUT_PREFIX=bench/out/observability-<UTC date>   (as root)
#
# Settings: ROUNDS (6), SECS (5), RATE (1000), CONNS (16), RM_PROXY. Needs nginx, h2load (nghttp2-client) and
# python3: installs nginx and h2load when missing (root). Everything listens on 127.0.0.1; every process started here
# is stopped by its PID.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${ROUNDS:-6}
SECS=${SECS:-5}
RATE=${RATE:-1000}
CONNS=${CONNS:-16}
ctl=$here/build/ctl/ringmeshctl
out=${1:-$here/bench/out/observability-$(date -u +%Y%m%dT%H%M%SZ)}
[ -x "$ctl" ] && [ -x "$here/build/sidecar/ringmesh-proxy" ] || {
    echo "observability.sh: build first (scripts/test.sh or cmake --build build)" >&2
    exit 1
}
if ! command -v nginx >/dev/null || ! command -v h2load >/dev/null; then
    apt-get install -y --no-install-recommends nginx-light nghttp2-client >/dev/null
fi
mkdir -p "$(dirname "$out")"
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$work/pids" ] && while read -r p; do kill "$p" 2>/dev/null || true; done <"$work/pids"
    rm -rf "$work"
}
trap cleanup EXIT

port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 20000))
        ss -Hltn "sport = :$p" | grep -q . || break
    done
    echo "$p"
}

# backend: nginx, one worker, keep-alive, a fixed 1,024-byte body
be=$(port)
mkdir -p "$work/nginx/logs"
body=$(head -c 1024 /dev/zero | tr '\0' x)
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
    uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
    server { listen 127.0.0.1:$be; location / { default_type text/plain; return 200 "$body"; } }
}
EOF
nginx -p "$work/nginx/" -c "$work/nginx/nginx.conf" -g 'daemon off;' >"$work/nginx/out.log" 2>&1 &
pids+=($!)

# the collector: accepts every OTLP/HTTP export and counts the bytes it got
col=$(port)
python3 - "$col" "$work/collector.count" <<'PY' >"$work/collector.log" 2>&1 &
import http.server, sys
port, count = int(sys.argv[1]), sys.argv[2]
total = [0, 0]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("content-length", "0"))
        self.rfile.read(n)
        total[0] += 1
        total[1] += n
        with open(count, "w") as f:
            f.write("%d %d\n" % (total[0], total[1]))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
pids+=($!)

"$ctl" svid issue --ca --trust-domain cluster.local --cert "$work/ca.pem" --key "$work/ca.key" >/dev/null
"$ctl" svid issue --ca-cert "$work/ca.pem" --ca-key "$work/ca.key" --id spiffe://cluster.local/ns/default/sa/client \
    --cert "$work/client.pem" --key "$work/client.key" >/dev/null
"$ctl" svid issue --ca-cert "$work/ca.pem" --ca-key "$work/ca.key" --id spiffe://cluster.local/ns/default/sa/server \
    --cert "$work/server.pem" --key "$work/server.key" >/dev/null

start_pair() { # NAME METRICS TRACING(0|1) -> prints the outbound port
    local name=$1 metrics=$2 tracing=$3 o i
    o=$(port)
    i=$(port)
    mkdir -p "$work/$name"
    (
        if [ "$tracing" = 1 ]; then
            export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$col OTEL_TRACES_SAMPLER=parentbased_traceidratio
            export OTEL_TRACES_SAMPLER_ARG=0.01 OTEL_SERVICE_NAME=bench
        fi
        OUT_LISTEN=$o IN_LISTEN=$i BACKEND=127.0.0.1:$be CA=$work/ca.pem CERT_CLIENT=$work/client.pem \
            KEY_CLIENT=$work/client.key CERT_SERVER=$work/server.pem KEY_SERVER=$work/server.key \
            PAIR_WORKDIR=$work/$name PAIR_PIDFILE=$work/$name/pids RM_METRICS=$metrics bash "$here/bench/pair.sh" \
            >/dev/null
    )
    cat "$work/$name/pids" >>"$work/pids"
    echo "$o"
}
declare -A PORT
PORT[direct]=$be
PORT[off]=$(start_pair off false 0)
PORT[on]=$(start_pair on true 1)
for c in direct off on; do
    for _ in $(seq 1 100); do
        curl -sf -o /dev/null "http://127.0.0.1:${PORT[$c]}/" && break
        sleep 0.05
    done
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORT[$c]}/")
    [ "$code" = 200 ] || { echo "observability.sh: $c does not answer 200 ($code)" >&2; exit 1; }
done
grep -q 'enabled: false' "$work/off/outbound.yaml" || { echo "observability.sh: metrics are not off on 'off'" >&2; exit 1; }

# the maximum keep-alive rate: prints req/s
throughput() {
    timeout $((SECS + 30)) h2load --h1 -c "$CONNS" -D "$SECS" --warm-up-time 1 "http://127.0.0.1:$1/" 2>/dev/null |
        awk '/^finished in/ {for (i = 1; i <= NF; i++) if ($i == "req/s,") {printf "%d\n", $(i - 1); exit}}'
}
# the latency at RATE req/s: prints p50 p90 p99 in µs
latency() {
    local log=$work/h2load.log n=$((RATE * SECS))
    rm -f "$log"
    timeout $((SECS + 30)) h2load --h1 -c "$CONNS" --rps "$(awk "BEGIN{print $RATE/$CONNS}")" -n "$n" -r 1 \
        --rate-period 1ms --log-file "$log" "http://127.0.0.1:$1/" >/dev/null
    awk '$2 == 200 {print $3}' "$log" | sort -n | awk '{a[NR]=$1} END {
        if (NR < 100) { print "- - -"; exit }
        printf "%d %d %d\n", a[int(NR*0.5)], a[int(NR*0.9)], a[int(NR*0.99)] }'
}

configs=(direct off on)
declare -A RPS R50 R90 R99
for r in $(seq 1 "$ROUNDS"); do
    for k in 0 1 2; do
        c=${configs[$(((r + k) % 3))]}
        rps=$(throughput "${PORT[$c]}")
        read -r p50 p90 p99 < <(latency "${PORT[$c]}")
        RPS[$c]+="$rps " R50[$c]+="$p50 " R90[$c]+="$p90 " R99[$c]+="$p99 "
        echo "observability.sh: round $r $c: $rps req/s; p50 $p50 p90 $p90 p99 $p99 µs" >&2
    done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rss() { # NAME -> the pair's VmRSS in MiB, outbound + inbound
    local t=0 p
    while read -r p; do
        t=$((t + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status")))
    done <"$work/$1/pids"
    awk "BEGIN{printf \"%.1f\", $t/1024}"
}
declare -A M M50 M90 M99
for c in "${configs[@]}"; do
    M[$c]=$(echo "${RPS[$c]}" | median)
    M50[$c]=$(echo "${R50[$c]}" | median)
    M90[$c]=$(echo "${R90[$c]}" | median)
    M99[$c]=$(echo "${R99[$c]}" | median)
done
ratio() { awk "BEGIN{ if ($2 <= 0) print \"-\"; else printf \"%.3f\", $1/$2 }"; }
a50off=$((M50[off] - M50[direct])) a50on=$((M50[on] - M50[direct]))
exports=$(cat "$work/collector.count" 2>/dev/null || echo "0 0")
{
    echo "### Run of $(date -u '+%Y-%m-%d %H:%M') UTC, commit $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo
    echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores, kernel $(uname -r)." \
        "$ROUNDS rounds, configurations rotated; per round and configuration: maximum keep-alive req/s over $CONNS" \
        "HTTP/1.1 connections for $SECS s, then latency at $RATE req/s for $SECS s. Medians over the rounds; latency in µs." \
        "One worker per proxy. The collector took ${exports%% *} exports (${exports##* } bytes)."
    echo
    echo "| config | max req/s | p50 | p90 | p99 | +p50 | RSS MiB (pair) | req/s per round | p50 per round |"
    echo "|---|--:|--:|--:|--:|--:|--:|---|---|"
    for c in "${configs[@]}"; do
        if [ "$c" = direct ]; then a50=- mem=-; else a50=$((M50[$c] - M50[direct])) mem=$(rss "$c"); fi
        echo "| $c | ${M[$c]} | ${M50[$c]} | ${M90[$c]} | ${M99[$c]} | $a50 | $mem | ${RPS[$c]% } | ${R50[$c]% } |"
    done
    echo
    echo "on against off: max req/s ×$(ratio "${M[on]}" "${M[off]}") (target at least ×0.95), added p50" \
        "×$(ratio "$a50on" "$a50off") (target at most ×1.05)."
} | tee "$out.md"
