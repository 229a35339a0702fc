#!/usr/bin/env bash
# bench/observability.sh - what metrics and tracing cost the data-plane pair: the same binary in three
# configurations, interleaved round by round in one run:
#   direct    client -> backend
#   off       ringmesh pair (bench/pair.sh) with metrics.enabled false and no tracing: requests are not parsed
#   parse     the floor of observing: metrics off, no tracing, the access log on with a sample rate of 0, so that
#             every request and response is parsed by the HTTP filter and nothing is recorded
#   on        the same pair with Istio's metrics on and OpenTelemetry tracing at a 1 % sample rate
#             (parentbased_traceidratio 0.01), spans exported over OTLP/HTTP to a collector on loopback
# Each round measures, per configuration: the maximum keep-alive requests/s (h2load, HTTP/1.1, CONNS connections,
# SECS seconds), with the CPU time both proxies spent per request meanwhile, and the latency at a fixed RATE req/s
# (p50/p90/p99). Reported: medians over the rounds, the added p50 over direct, and on's ratios to off. The targets: on keeps at least 95 % of off's requests/s, and its added
# p50 is at most 5 % above off's. The proxies' RSS is read after the last round.
#
#   bench/observability.sh [OUT_PREFIX]   default OUT_PREFIX=bench/out/observability-<UTC date>   (as root)
#
# Settings: ROUNDS (6), SECS (5), RATE (1000), CONNS (16), RM_PROXY. Needs nginx, h2load (nghttp2-client) and
# python3: installs nginx and h2load when missing (root). Everything listens on 127.0.0.1; every process started here
# is stopped by its PID.
set -euo pipefail
BENCH_NAME=observability.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROUNDS=${ROUNDS:-6}
SECS=${SECS:-5}
RATE=${RATE:-1000}
CONNS=${CONNS:-16}
out=${1:-$here/bench/out/observability-$(date -u +%Y%m%dT%H%M%SZ)}
bench_init
mkdir -p "$(dirname "$out")"
bench_backend

# the collector: accepts every OTLP/HTTP export and counts the bytes it got
col=$(bench_port)
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
bench_certs

declare -A PORT
PORT[direct]=$be
PORT[off]=$(bench_pair off "$work/off/pids" RM_METRICS=false)
PORT[parse]=$(bench_pair parse "$work/parse/pids" RM_METRICS=false RM_ACCESS_LOG="{enabled: true, sampleRate: 0}")
PORT[on]=$(bench_pair on "$work/on/pids" RM_METRICS=true OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$col" \
    OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.01 OTEL_SERVICE_NAME=bench)
for c in direct off parse on; do bench_wait_200 "$c" "${PORT[$c]}"; done
grep -q 'enabled: false' "$work/off/outbound.yaml" || { echo "observability.sh: metrics are not off on 'off'" >&2; exit 1; }

# CPU time (user + system, in clock ticks) of the pair NAME's proxies so far; 0 for direct
cpu_ticks() {
    local t=0 p
    [ -f "$work/$1/pids" ] || { echo 0; return; }
    while read -r p; do
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done <"$work/$1/pids"
    echo "$t"
}
# the maximum keep-alive rate of configuration NAME on PORT: prints req/s and the pair's CPU µs per request (both
# proxies; "-" for direct), which the machine's other load moves far less than the rate
throughput() {
    local c0 c1 log=$work/h2load.out
    c0=$(cpu_ticks "$1")
    timeout $((SECS + 30)) h2load --h1 -c "$CONNS" -D "$SECS" --warm-up-time 1 "http://127.0.0.1:$2/" >"$log" 2>/dev/null
    c1=$(cpu_ticks "$1")
    awk -v cpu=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v direct="$([ "$1" = direct ] && echo 1 || echo 0)" '
        /^finished in/ {for (i = 1; i <= NF; i++) if ($i == "req/s,") rps = $(i - 1)}
        /^requests:/ {n = $2}
        END {if (direct || n == 0) printf "%d -\n", rps; else printf "%d %.1f\n", rps, cpu / hz * 1e6 / n}' "$log"
}
# the latency at RATE req/s: prints p50 p90 p99 in µs
latency() {
    local log=$work/h2load.log n=$((RATE * SECS))
    rm -f "$log"
    timeout $((SECS + 30)) h2load --h1 -c "$CONNS" --rps "$(awk "BEGIN{print $RATE/$CONNS}")" -n "$n" -r 1 \
        --rate-period 1ms --log-file "$log" "http://127.0.0.1:$1/" >/dev/null
    bench_percentiles "$log"
}

configs=(direct off parse on)
declare -A RPS CPU R50 R90 R99
for r in $(seq 1 "$ROUNDS"); do
    for k in 0 1 2 3; do
        c=${configs[$(((r + k) % 4))]}
        read -r rps cpu < <(throughput "$c" "${PORT[$c]}")
        read -r p50 p90 p99 < <(latency "${PORT[$c]}")
        RPS[$c]+="$rps " CPU[$c]+="$cpu " R50[$c]+="$p50 " R90[$c]+="$p90 " R99[$c]+="$p99 "
        echo "observability.sh: round $r $c: $rps req/s ($cpu µs CPU per request); p50 $p50 p90 $p90 p99 $p99 µs" >&2
    done
done
rss() { # NAME -> the pair's VmRSS in MiB, outbound + inbound
    local t=0 p
    while read -r p; do
        t=$((t + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status")))
    done <"$work/$1/pids"
    awk "BEGIN{printf \"%.1f\", $t/1024}"
}
declare -A M MC M50 M90 M99
for c in "${configs[@]}"; do
    M[$c]=$(echo "${RPS[$c]}" | bench_median)
    MC[$c]=$([ "$c" = direct ] && echo - || echo "${CPU[$c]}" | bench_median)
    M50[$c]=$(echo "${R50[$c]}" | bench_median)
    M90[$c]=$(echo "${R90[$c]}" | bench_median)
    M99[$c]=$(echo "${R99[$c]}" | bench_median)
done
ratio() { awk "BEGIN{ if ($2 <= 0) print \"-\"; else printf \"%.3f\", $1/$2 }"; }
a50off=$((M50[off] - M50[direct])) a50on=$((M50[on] - M50[direct]))
exports=$(cat "$work/collector.count" 2>/dev/null || echo "0 0")
{
    bench_header
    echo "$ROUNDS rounds, configurations rotated; per round and configuration: maximum keep-alive req/s over $CONNS" \
        "HTTP/1.1 connections for $SECS s, then latency at $RATE req/s for $SECS s. Medians over the rounds; latency in µs." \
        "One worker per proxy. The collector took ${exports%% *} exports (${exports##* } bytes)."
    echo
    echo "| config | max req/s | CPU µs/req (pair) | p50 | p90 | p99 | +p50 | RSS MiB (pair) | req/s per round | p50 per round |"
    echo "|---|--:|--:|--:|--:|--:|--:|--:|---|---|"
    for c in "${configs[@]}"; do
        if [ "$c" = direct ]; then a50=- mem=-; else a50=$((M50[$c] - M50[direct])) mem=$(rss "$c"); fi
        echo "| $c | ${M[$c]} | ${MC[$c]} | ${M50[$c]} | ${M90[$c]} | ${M99[$c]} | $a50 | $mem | ${RPS[$c]% } | ${R50[$c]% } |"
    done
    echo
    echo "on against off: max req/s ×$(ratio "${M[on]}" "${M[off]}") (target at least ×0.95), added p50" \
        "×$(ratio "$a50on" "$a50off") (target at most ×1.05), CPU per request ×$(ratio "${MC[on]}" "${MC[off]}")." \
        "Against parse (the parsing floor): max req/s ×$(ratio "${M[on]}" "${M[parse]}"), added p50" \
        "×$(ratio "$a50on" "$((M50[parse] - M50[direct]))"), CPU per request ×$(ratio "${MC[on]}" "${MC[parse]}")."
} | tee "$out.md"
