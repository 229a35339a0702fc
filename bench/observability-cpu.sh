#!/usr/bin/env bash
# bench/observability-cpu.sh - the CPU time the pair spends per keep-alive request with observability off, parsing
# only, and on (see observability.sh for the three configurations), for one or two proxy binaries side by side: on a
# machine too busy for rates and latencies to mean much, the CPU time per request still compares configurations and
# binaries. Each round sends N requests (h2load, HTTP/1.1, CONNS connections) through every pair in turn, sampling
# the pair's CPU with perf record (cpu-clock, 2 kHz); reported are the medians over the rounds of the CPU time per
# request of both proxies, in all and in user space (outside the kernel): the kernel's part (sockets, loopback TCP)
# is the same code in every configuration and carries most of what other load on the machine does to the figures.
#
#   bench/observability-cpu.sh [PROXY_A [PROXY_B]]   (as root; default: build/sidecar/ringmesh-proxy)
#
# Settings: ROUNDS (8), N (30000), CONNS (16). Needs perf, nginx and h2load. Everything listens on 127.0.0.1; every
# process started here is stopped by its PID.
set -euo pipefail
BENCH_NAME=observability-cpu.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROUNDS=${ROUNDS:-8}
N=${N:-30000}
CONNS=${CONNS:-16}
bins=("${1:-$here/build/sidecar/ringmesh-proxy}")
[ -n "${2:-}" ] && bins+=("$2")
command -v perf >/dev/null || { echo "$BENCH_NAME: needs perf (linux-perf)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "$BENCH_NAME: run as root (perf record on the proxies)" >&2; exit 1; }
bench_init
bench_backend
bench_certs

col=$(bench_port)
python3 - "$col" <<'PY' >"$work/collector.log" 2>&1 &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
pids+=($!)

declare -A PORT CPU USR
names=()
for b in "${!bins[@]}"; do
    export RM_PROXY=${bins[$b]}
    PORT[off$b]=$(bench_pair "off$b" "$work/off$b/pids" RM_METRICS=false)
    PORT[parse$b]=$(bench_pair "parse$b" "$work/parse$b/pids" RM_METRICS=false \
        RM_ACCESS_LOG="{enabled: true, sampleRate: 0}")
    PORT[on$b]=$(bench_pair "on$b" "$work/on$b/pids" RM_METRICS=true \
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$col" OTEL_TRACES_SAMPLER=parentbased_traceidratio \
        OTEL_TRACES_SAMPLER_ARG=0.01 OTEL_SERVICE_NAME=bench)
    names+=("off$b" "parse$b" "on$b")
done
for c in "${names[@]}"; do bench_wait_200 "$c" "${PORT[$c]}"; done

for r in $(seq 1 "$ROUNDS"); do
    for k in $(seq 0 $((${#names[@]} - 1))); do
        c=${names[$(((r + k) % ${#names[@]}))]}
        perf record -q -F 2000 -p "$(paste -sd, "$work/$c/pids")" -o "$work/perf.data" -- \
            h2load --h1 -c "$CONNS" -n "$N" "http://127.0.0.1:${PORT[$c]}/" >"$work/h2load.$c" 2>/dev/null
        grep -q "$N succeeded" "$work/h2load.$c" || { echo "$BENCH_NAME: $c: requests failed" >&2; exit 1; }
        read -r us usr < <(perf report -i "$work/perf.data" --sort dso --stdio -g none 2>/dev/null | awk -v n="$N" '
            /Event count/ {ev = $NF}
            $1 ~ /%$/ && $2 !~ /kernel/ {sub("%", "", $1); u += $1}
            END {printf "%.2f %.2f\n", ev / 1e3 / n, ev * u / 100 / 1e3 / n}')
        CPU[$c]+="$us " USR[$c]+="$usr "
        echo "$BENCH_NAME: round $r $c: $us µs per request, $usr in user space" >&2
    done
done

ratio() { awk "BEGIN{ if ($2 <= 0) print \"-\"; else printf \"%.3f\", $1/$2 }"; }
bench_header
echo "$ROUNDS rounds of $N requests over $CONNS HTTP/1.1 keep-alive connections per pair, pairs rotated; CPU µs per"
echo "request of both proxies (perf record, cpu-clock), in all and in user space, medians over the rounds."
echo
echo "| binary | off | parse | on | on ÷ off | on ÷ parse | user: off | parse | on | on ÷ off | on ÷ parse | on, user, per round |"
echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
for b in "${!bins[@]}"; do
    o=$(echo "${CPU[off$b]}" | bench_median) p=$(echo "${CPU[parse$b]}" | bench_median)
    n=$(echo "${CPU[on$b]}" | bench_median)
    uo=$(echo "${USR[off$b]}" | bench_median) up=$(echo "${USR[parse$b]}" | bench_median)
    un=$(echo "${USR[on$b]}" | bench_median)
    echo "| ${bins[$b]##*/} | $o | $p | $n | ×$(ratio "$n" "$o") | ×$(ratio "$n" "$p") | $uo | $up | $un |" \
        "×$(ratio "$un" "$uo") | ×$(ratio "$un" "$up") | ${USR[on$b]% } |"
done
