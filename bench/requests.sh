#!/usr/bin/env bash
# bench/requests.sh - what per-request routing costs and saves (docs/traffic-management.md#tests): in the namespace
# mesh of the end-to-end tests (tests/e2e/lib.sh: pods joined by routed veths to a node namespace, the control plane's
# file source, ringmesh-init's capture, one worker per proxy), nginx in pod s is called three ways, interleaved round
# by round in one run:
#   direct    pod d (no proxy) -> s:22, the one port ringmesh-init leaves uncaptured (same veths and node hop)
#   l4        pod c2 -> Service VIP 198.19.0.90:8080 (endpoints [s]), c2's proxy with traffic.requestBalancing:
#             false: today's L4 pair (the endpoint chosen per connection, one mTLS connection per app connection,
#             ALPN ringmesh/1)
#   request   pod c -> the same VIP, c's proxy as configured by default: the request path (each request over pooled
#             ringmesh/h2 connections) where the proxy has it
# and measures, medians of ROUNDS rounds:
#   keep-alive latency   h2load --h1, RATE req/s over CONNS keep-alive connections (as peer-bench.sh): p50, p99 and
#                        what each pair adds over direct
#   keep-alive req/s     h2load --h1, CONNS keep-alive connections as fast as they go, SECS s
#   new connections/s    wrk, CONNS connections each closed after one request ("Connection: close"), SECS s
# Whether the request path was in use is measured, not assumed: 50 short connections from c must cost c's proxy fewer
# than 50 handshakes (ringmesh_proxy_tls_handshakes_total). A proxy that does not know traffic.requestBalancing (main
# before the request path) runs c2 without it. Either way the table says what the "l4" and "request" rows measured:
# without the request path both are the L4 pair.
# Then, unless PEERS=0, the peers side by side: ../shared/bench/peer-bench.sh with PAIR_CMD=bench/pair.sh (today's
# L4 pair on loopback beside the HAProxy, nginx and stunnel pairs); its table follows, and the ratios of the
# "request" row to "l4" carry over to it.
#
#   bench/requests.sh [OUT_PREFIX]     default OUT_PREFIX=bench/out/requests-<UTC date>   (as root)
#
# Settings: ROUNDS (5), SECS (5), RATE (1000), CONNS (16), PEERS (1), PEER_BENCH (../shared/bench/peer-bench.sh).
# Needs nginx, h2load and wrk (scripts/bootstrap.sh; installed when missing). Writes OUT_PREFIX.md. Every process
# started here is stopped by its PID (lib.sh's teardown), every namespace deleted.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${ROUNDS:-5}
SECS=${SECS:-5}
RATE=${RATE:-1000}
CONNS=${CONNS:-16}
PEERS=${PEERS:-1}
out=${1:-$here/bench/out/requests-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$(dirname "$out")"
export RM_E2E_QUIET=${RM_E2E_QUIET:-1}
if ! command -v nginx >/dev/null || ! command -v h2load >/dev/null || ! command -v wrk >/dev/null; then
    apt-get install -y --no-install-recommends nginx-light nghttp2-client wrk >/dev/null
fi
# shellcheck source-path=SCRIPTDIR/.. source=tests/e2e/lib.sh
source "$here/tests/e2e/lib.sh"
# shellcheck source=tests/e2e/lib/traffic.sh
source "$here/tests/e2e/lib/traffic.sh"
rm_setup
rm_control_init

VIP_REQ=198.19.0.90
rm_pod_create c
rm_pod_create c2
rm_pod_create d
rm_pod_create s
rm_traffic_service req "$VIP_REQ" 8080 orders "$(rm_traffic_ep s)"

# nginx in pod s on 8080 (the meshed port) and 22 (the uncaptured one): one worker, keep-alive, 1,024-byte body
mkdir -p "$RM_TMP/nginx"
body=$(head -c 1024 /dev/zero | tr '\0' x)
cat >"$RM_TMP/nginx/nginx.conf" <<EOF2
worker_processes 1;
pid $RM_TMP/nginx/nginx.pid;
error_log $RM_TMP/nginx/error.log;
events { worker_connections 8192; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $RM_TMP/nginx; proxy_temp_path $RM_TMP/nginx; fastcgi_temp_path $RM_TMP/nginx;
    uwsgi_temp_path $RM_TMP/nginx; scgi_temp_path $RM_TMP/nginx;
    server { listen 0.0.0.0:8080; listen 0.0.0.0:22; location / { default_type text/plain; return 200 "$body"; } }
}
EOF2
rm_bg nginx s "$RM_TMP/nginx/out.log" nginx -p "$RM_TMP/nginx/" -c "$RM_TMP/nginx/nginx.conf" -g 'daemon off;'
rm_wait_port s 8080 10 nginx
rm_traffic_mesh c s
# c2: the same client, its proxy told to keep the L4 pair when it knows how
rm_pod_config c2 "control=$(rm_pod_gateway c2):15012" ns=shop sa=frontend
printf 'traffic: {requestBalancing: false}\n' >>"$RM_TMP/pods/c2/proxy.yaml"
check=$(timeout 20 "$RM_PROXY_BIN" --config "$RM_TMP/pods/c2/proxy.yaml" --check 2>&1 || true)
if [[ "$check" == *'unknown key \"traffic\"'* ]]; then
    sed -i '/^traffic: /d' "$RM_TMP/pods/c2/proxy.yaml"
    l4_note="this proxy has no traffic.requestBalancing: c2 runs its default"
else
    l4_note="c2's proxy runs with traffic.requestBalancing: false"
fi
rm__capture_rules c2
rm_proxy_start c2
rm_wait_ready c2

declare -A URL=([direct]="http://${RM_POD_IP[s]}:22/" [l4]="http://$VIP_REQ:8080/" [request]="http://$VIP_REQ:8080/")
declare -A FROM=([direct]=d [l4]=c2 [request]=c)
for k in direct l4 request; do
    code=$(rm_exec "${FROM[$k]}" curl -s -m 5 -o /dev/null -w '%{http_code}' "${URL[$k]}") || true
    [ "$code" = 200 ] || rm_fail "$k (${URL[$k]} from ${FROM[$k]}) does not answer 200 ($code)"
done

# Is the request path in use? 50 short connections to the request VIP, the client proxy's handshakes counted.
h0=$(rm_traffic_metric c ringmesh_proxy_tls_handshakes_total)
rm_traffic_calls c http-calls "$VIP_REQ:8080" 50 --new-conn >/dev/null
h1=$(rm_traffic_metric c ringmesh_proxy_tls_handshakes_total)
if [ $((h1 - h0)) -lt 50 ]; then
    path_note="request path in use: 50 short app connections cost $((h1 - h0)) handshakes"
else
    path_note="REQUEST PATH ABSENT: 50 short app connections cost $((h1 - h0)) handshakes, so the \"request\" row measures the L4 pair again (per-connection endpoint choice), as the \"l4\" row does"
fi
path_note="$path_note; $l4_note"
echo "requests.sh: $path_note" >&2

# latency URL POD: p50 p99 (µs) at RATE req/s over CONNS keep-alive connections
latency() {
    local log=$RM_TMP/h2load.log n=$((RATE * SECS))
    rm -f "$log"
    rm_exec "$2" timeout $((SECS + 30)) h2load --h1 -c "$CONNS" --rps "$(awk "BEGIN{print $RATE/$CONNS}")" -n "$n" \
        -r 1 --rate-period 1ms --log-file "$log" "$1" >/dev/null 2>&1 || true
    awk '$2 == 200 {print $3}' "$log" | sort -n | awk '{a[NR]=$1} END {
        if (NR < 100) { print "0 0"; exit }
        printf "%d %d\n", a[int(NR*0.5)], a[int(NR*0.99)] }'
}
# keepalive_rps URL POD: requests/s over CONNS keep-alive connections, closed loop
keepalive_rps() {
    rm_exec "$2" timeout $((SECS + 30)) h2load --h1 -c "$CONNS" -D "$SECS" "$1" 2>/dev/null |
        awk '/^finished in/ { for (i = 1; i <= NF; i++) if ($i ~ /req\/s/) { v = $(i-1); gsub(",", "", v); print int(v) } }' |
        head -n 1
}
# newconn_rps URL POD: requests/s (= new app connections/s) with one request per connection
newconn_rps() {
    rm_exec "$2" timeout $((SECS + 30)) wrk -t 1 -c "$CONNS" -d "${SECS}s" -H "Connection: close" "$1" 2>/dev/null |
        awk '/^Requests\/sec/ { print int($2) }'
}

configs=(direct l4 request)
declare -A P50 P99 KA NC
for r in $(seq 1 "$ROUNDS"); do
    for k in 0 1 2; do
        c=${configs[$(((r + k) % 3))]}
        read -r p50 p99 < <(latency "${URL[$c]}" "${FROM[$c]}")
        ka=$(keepalive_rps "${URL[$c]}" "${FROM[$c]}")
        nc=$(newconn_rps "${URL[$c]}" "${FROM[$c]}")
        P50[$c]+="$p50 " P99[$c]+="$p99 " KA[$c]+="${ka:-0} " NC[$c]+="${nc:-0} "
        echo "requests.sh: round $r $c: p50 $p50 p99 $p99 µs, keep-alive ${ka:-0} req/s, new connections ${nc:-0}/s" >&2
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)] + 0}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) print "-"; else printf "%.2f", a / b }'; }
declare -A M50 M99 MKA MNC
for c in "${configs[@]}"; do
    M50[$c]=$(echo "${P50[$c]}" | median) M99[$c]=$(echo "${P99[$c]}" | median)
    MKA[$c]=$(echo "${KA[$c]}" | median) MNC[$c]=$(echo "${NC[$c]}" | median)
done
{
    echo "### Run of $(date -u '+%Y-%m-%d %H:%M') UTC, commit $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo
    echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores, kernel $(uname -r)," \
        "load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
    echo
    echo "bench/requests.sh: pods c, c2 (and d, direct) -> s in the namespace mesh, one worker per proxy; $ROUNDS rounds of $SECS s per" \
        "measurement and configuration, rotated; latency at $RATE req/s over $CONNS HTTP/1.1 keep-alive connections;" \
        "throughput over $CONNS connections (keep-alive: h2load; one request per connection: wrk). Medians of the rounds."
    echo "$path_note."
    echo
    echo "| config | p50 µs | p99 µs | +p50 | +p99 | keep-alive req/s | new conns/s | p50 per round | new conns/s per round |"
    echo "|---|--:|--:|--:|--:|--:|--:|---|---|"
    for c in "${configs[@]}"; do
        if [ "$c" = direct ]; then a50=- a99=-; else
            a50=$((M50[$c] - M50[direct])) a99=$((M99[$c] - M99[direct]))
        fi
        echo "| $c | ${M50[$c]} | ${M99[$c]} | $a50 | $a99 | ${MKA[$c]} | ${MNC[$c]} | ${P50[$c]% } | ${NC[$c]% } |"
    done
    echo
    echo "request / l4: +p50 ×$(ratio $((M50[request] - M50[direct])) $((M50[l4] - M50[direct])))," \
        "+p99 ×$(ratio $((M99[request] - M99[direct])) $((M99[l4] - M99[direct]))), keep-alive req/s" \
        "×$(ratio "${MKA[request]}" "${MKA[l4]}"), new connections/s ×$(ratio "${MNC[request]}" "${MNC[l4]}")." \
        "Targets: added latency and keep-alive req/s within 10 % of l4's; new connections/s far above."
} | tee "$out.md"

if [ "$PEERS" = 1 ]; then
    peer_bench=${PEER_BENCH:-$here/../shared/bench/peer-bench.sh}
    if [ -f "$peer_bench" ]; then
        echo >>"$out.md"
        echo "Peers, same run (loopback, peer-bench.sh; its \"candidate\" is today's L4 pair, bench/pair.sh):" | tee -a "$out.md"
        echo | tee -a "$out.md"
        PEER_BENCH_INSTALL=${PEER_BENCH_INSTALL:-1} PAIR_CMD="$here/bench/pair.sh" bash "$peer_bench" "$out.peers.json" |
            tee -a "$out.md" || echo "requests.sh: peer-bench.sh failed (its table above is partial)" >&2
    else
        echo "requests.sh: $peer_bench not found: no peers (set PEER_BENCH)" | tee -a "$out.md" >&2
    fi
fi
