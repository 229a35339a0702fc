#!/usr/bin/env bash
# bench/observability-counts.sh - what observing costs the data-plane pair per keep-alive request, in counts that
# other load on the machine does not move: the configurations of observability.sh (off, parse, on) of one or two
# proxy binaries, each measured with
#   syscalls   perf's tracepoints on both proxies over N requests (h2load, HTTP/1.1, CONNS connections), per
#              request and per proxy: system calls (io_uring_enter, epoll_wait, send/recv calls), io_uring SQEs by
#              operation, sends (system calls or SEND SQEs) and the bytes per send; on both I/O backends (BACKENDS).
#              On a loaded machine perf may lose events: a row with fewer than 2 sends per request and proxy (what a
#              keep-alive request needs) lost some, and is to be measured again
#   callgrind  valgrind's callgrind on both proxies: the instructions each runs in user space per request (the
#              difference between a run of CG_N2 and one of CG_N1 requests over the same CONNS connections, so that
#              handshakes and start-up cancel out), TLS records written (wolfSSL's BuildTls13Message) and allocator
#              calls per request, and the functions that differ most between the configurations
#
#   bench/observability-counts.sh [PROXY_A [PROXY_B]]   (as root; default: build/sidecar/ringmesh-proxy)
#
# Settings: WHAT ("syscalls callgrind"), N (20000), CG_N1 (300), CG_N2 (1300), CONNS (16), BACKENDS
# ("io_uring epoll"), CG_BACKEND (epoll: valgrind 3.19 does not follow io_uring's shared rings), TOP (25: functions listed per configuration), OUT (a directory to keep
# the callgrind files in; default: none kept). Needs perf, valgrind, nginx and h2load. Everything listens on
# 127.0.0.1; every process started here is stopped by its PID.
set -euo pipefail
BENCH_NAME=observability-counts.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
WHAT=${WHAT:-syscalls callgrind}
N=${N:-20000}
CG_N1=${CG_N1:-300}
CG_N2=${CG_N2:-1300}
CONNS=${CONNS:-16}
BACKENDS=${BACKENDS:-io_uring epoll}
CG_BACKEND=${CG_BACKEND:-epoll}
TOP=${TOP:-25}
bins=("${1:-$here/build/sidecar/ringmesh-proxy}")
[ -n "${2:-}" ] && bins+=("$2")
for t in perf valgrind callgrind_annotate callgrind_control; do
    command -v "$t" >/dev/null || { echo "$BENCH_NAME: needs $t (linux-perf, valgrind)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "$BENCH_NAME: run as root (perf on the proxies)" >&2; exit 1; }
bench_init
# every pair started here is stopped by PID at exit, by SIGKILL when SIGTERM does not do (valgrind)
counts_cleanup() {
    local f p
    for f in "$work"/*/pids; do
        [ -f "$f" ] || continue
        while read -r p; do kill -9 "$p" 2>/dev/null || true; done <"$f"
    done
    bench_cleanup
}
trap counts_cleanup EXIT
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

# starts the pairs off, parse and on of binary $1 under the name suffix $2 (environment: RINGMESH_IO_BACKEND and, for
# callgrind, RM_PROXY a wrapper); fills PORT
declare -A PORT
start_pairs() {
    local sfx=$2
    PORT[off$sfx]=$(bench_pair "off$sfx" "$work/off$sfx/pids" RM_METRICS=false)
    PORT[parse$sfx]=$(bench_pair "parse$sfx" "$work/parse$sfx/pids" RM_METRICS=false \
        RM_ACCESS_LOG="{enabled: true, sampleRate: 0}")
    PORT[on$sfx]=$(bench_pair "on$sfx" "$work/on$sfx/pids" RM_METRICS=true \
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$col" OTEL_TRACES_SAMPLER=parentbased_traceidratio \
        OTEL_TRACES_SAMPLER_ARG=0.01 OTEL_SERVICE_NAME=bench)
    local c
    for c in off parse on; do
        for _ in $(seq 1 600); do
            curl -sf -m 5 -o /dev/null "http://127.0.0.1:${PORT[$c$sfx]}/" && break
            sleep 0.1
        done
        bench_wait_200 "$c$sfx" "${PORT[$c$sfx]}"
    done
}
stop_pairs() {
    local c p
    for c in off parse on; do
        while read -r p; do
            kill "$p" 2>/dev/null || true
            for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$p" 2>/dev/null || true # a proxy under valgrind may not stop on SIGTERM
        done <"$work/$c$1/pids"
    done
}
load() { # PORT REQUESTS
    h2load --h1 -c "$CONNS" -n "$2" "http://127.0.0.1:$1/" >"$work/h2load.out" 2>/dev/null
    grep -q "$2 succeeded" "$work/h2load.out" || { echo "$BENCH_NAME: requests failed" >&2; cat "$work/h2load.out" >&2; exit 1; }
}

# ------------------------------------------------------------------ system calls, SQEs and sends
# The pair's pids file lists the inbound proxy first, then the outbound one.
syscall_counts() { # NAME -> one line per proxy: role and the per-request counts
    local c=$1 in out
    in=$(sed -n 1p "$work/$c/pids") out=$(sed -n 2p "$work/$c/pids")
    perf record -q -o "$work/sys.data" -p "$in,$out" \
        -e 'syscalls:sys_enter_io_uring_enter' -e 'syscalls:sys_enter_epoll_wait' \
        -e 'syscalls:sys_enter_epoll_pwait' -e 'syscalls:sys_enter_epoll_ctl' \
        -e 'syscalls:sys_enter_sendto' -e 'syscalls:sys_enter_recvfrom' -e 'syscalls:sys_enter_sendmsg' \
        -e 'syscalls:sys_enter_recvmsg' -e 'syscalls:sys_enter_write' -e 'syscalls:sys_enter_read' \
        -e 'syscalls:sys_enter_writev' -e 'syscalls:sys_enter_readv' -e 'syscalls:sys_exit_sendto' \
        -e 'syscalls:sys_exit_recvfrom' -e 'io_uring:io_uring_submit_req' -e 'io_uring:io_uring_complete' \
        -- h2load --h1 -c "$CONNS" -n "$N" "http://127.0.0.1:${PORT[$c]}/" >"$work/h2load.out" 2>/dev/null
    grep -q "$N succeeded" "$work/h2load.out" || { echo "$BENCH_NAME: $c: requests failed" >&2; exit 1; }
    perf script -i "$work/sys.data" -F pid,event,trace 2>/dev/null |
        python3 "$here/bench/perf-syscall-counts.py" "$N" "$in" "$out"
}

# ------------------------------------------------------------------ callgrind
callgrind_pair() { # NAME -> per proxy: instructions, records, allocations per request and the top functions
    local c=$1 p role k=0 f0 f1
    for p in $(cat "$work/$c/pids"); do callgrind_control -z "$p" >/dev/null; done
    load "${PORT[$c]}" "$CG_N1"
    for p in $(cat "$work/$c/pids"); do callgrind_control -d n1 "$p" >/dev/null; done
    load "${PORT[$c]}" "$CG_N2"
    for p in $(cat "$work/$c/pids"); do callgrind_control -d n2 "$p" >/dev/null; done
    for p in $(cat "$work/$c/pids"); do
        role=$([ $k = 0 ] && echo inbound || echo outbound)
        k=$((k + 1))
        f0=$(ls "$work/cg/$c.$p".[0-9]* | sort -t. -k3n | sed -n 1p)
        f1=$(ls "$work/cg/$c.$p".[0-9]* | sort -t. -k3n | sed -n 2p)
        python3 "$here/bench/callgrind-diff.py" "$((CG_N2 - CG_N1))" "$f0" "$f1" "$TOP" >"$work/cg/$c.$role.txt"
        echo "$c $role $(head -1 "$work/cg/$c.$role.txt")"
        if [ -n "${OUT:-}" ]; then
            mkdir -p "$OUT"
            cp "$f0" "$OUT/$c.$role.n1.callgrind"
            cp "$f1" "$OUT/$c.$role.n2.callgrind"
        fi
    done
}

bench_header
for b in "${!bins[@]}"; do
    bin=${bins[$b]}
    if [[ " $WHAT " == *" syscalls "* ]]; then
        for be_kind in $BACKENDS; do
            export RINGMESH_IO_BACKEND=$be_kind RM_PROXY=$bin
            start_pairs "$bin" "s$b$be_kind"
            echo
            echo "#### ${bin}: system calls per request, $be_kind ($N requests over $CONNS connections)"
            echo
            for c in off parse on; do
                syscall_counts "$c""s$b$be_kind" | sed "s/^/$c /"
            done
            stop_pairs "s$b$be_kind"
        done
    fi
    if [[ " $WHAT " == *" callgrind "* ]]; then
        mkdir -p "$work/cg"
        for c in off parse on; do
            cat >"$work/cg/wrap-$c" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file=$work/cg/$c""c$b.%p --dump-instr=no --collect-systime=no -q "$bin" "\$@"
EOF
            chmod +x "$work/cg/wrap-$c"
        done
        export RINGMESH_IO_BACKEND=$CG_BACKEND
        for c in off parse on; do
            RM_PROXY=$work/cg/wrap-$c
            export RM_PROXY
            case $c in
            off) PORT[offc$b]=$(bench_pair "offc$b" "$work/offc$b/pids" RM_METRICS=false) ;;
            parse) PORT[parsec$b]=$(bench_pair "parsec$b" "$work/parsec$b/pids" RM_METRICS=false \
                RM_ACCESS_LOG="{enabled: true, sampleRate: 0}") ;;
            on) PORT[onc$b]=$(bench_pair "onc$b" "$work/onc$b/pids" RM_METRICS=true \
                OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$col" OTEL_TRACES_SAMPLER=parentbased_traceidratio \
                OTEL_TRACES_SAMPLER_ARG=0.01 OTEL_SERVICE_NAME=bench) ;;
            esac
        done
        for c in off parse on; do
            for _ in $(seq 1 600); do
                curl -sf -m 5 -o /dev/null "http://127.0.0.1:${PORT[$c""c$b]}/" && break
                sleep 0.1
            done
            bench_wait_200 "$c""c$b" "${PORT[$c""c$b]}"
            load "${PORT[$c""c$b]}" 200 # warm-up: the first requests' lazy set-up
        done
        echo
        echo "#### ${bin}: callgrind, $CG_BACKEND, per request ($((CG_N2 - CG_N1)) requests: $CG_N2 minus $CG_N1 over $CONNS connections)"
        echo
        for c in off parse on; do callgrind_pair "$c""c$b"; done
        for c in off parse on; do
            for role in outbound inbound; do
                echo
                echo "$c $role: own instructions and calls per request, by function"
                tail -n +2 "$work/cg/$c""c$b.$role.txt"
            done
        done
        stop_pairs "c$b"
    fi
done
