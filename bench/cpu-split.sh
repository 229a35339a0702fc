#!/usr/bin/env bash
# bench/cpu-split.sh - where a proxy pair's CPU per keep-alive request goes: user space or the kernel. The ringmesh
# pair (bench/pair.sh) and a HAProxy pair configured as in ../shared/bench/peer-bench.sh (mode tcp, one thread
# each, TLS 1.3 with client certificates) relay the same load to the same nginx backend (1 KB responses), in
# alternating rounds of `wrk -t1 -c64`; user and system time come from /proc/PID/stat, as peer-bench reads them.
# The kernel's share is the floor under the pair's CPU per request: loopback TCP, wake-ups and the system calls.
#
#   bench/cpu-split.sh [OUT]        default OUT=bench/out/cpu-split-<UTC date>.md   (as root)
#
# Knobs: ROUNDS (default 3), SECS (seconds per round, default 10), RM_PROXY (default build/sidecar/ringmesh-proxy).
# Needs haproxy, nginx and wrk (bench/peer.sh installs them). Everything listens on 127.0.0.1 ports 18180-18183.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
proxy=${RM_PROXY:-$here/build/sidecar/ringmesh-proxy}
ctl=$here/build/ctl/ringmeshctl
rounds=${ROUNDS:-3}
secs=${SECS:-10}
out=${1:-$here/bench/out/cpu-split-$(date -u +%Y%m%dT%H%M%SZ).md}
for t in haproxy nginx wrk curl; do
    command -v "$t" >/dev/null || { echo "cpu-split.sh: $t is missing (bench/peer.sh installs the peers)" >&2; exit 1; }
done
if [ ! -x "$proxy" ] || [ ! -x "$ctl" ]; then
    echo "cpu-split.sh: build first (scripts/test.sh)" >&2
    exit 1
fi
mkdir -p "$(dirname "$out")"

work=$(mktemp -d /tmp/rm-cpu-split.XXXXXX)
chmod 755 "$work" # nginx's worker (www-data) reads its temp directories here
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

backend=18180 rm_out=18181 rm_in=18182 hp_out=18183 hp_in=18184
"$ctl" svid issue --ca --trust-domain cluster.local --cert "$work/ca.pem" --key "$work/ca.key" --ttl 24h >/dev/null
for who in client server; do
    "$ctl" svid issue --ca-cert "$work/ca.pem" --ca-key "$work/ca.key" \
        --id "spiffe://cluster.local/ns/default/sa/$who" --cert "$work/$who.pem" --key "$work/$who.key" --ttl 2h >/dev/null
    cat "$work/$who.pem" "$work/$who.key" >"$work/$who.haproxy.pem" # HAProxy wants certificate and key in one file
done

mkdir -p "$work/nginx/tmp"
printf -v body '%1024s' ''
body=${body// /x}
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off; keepalive_timeout 65s; keepalive_requests 1000000; default_type text/plain;
    client_body_temp_path $work/nginx/tmp/body; proxy_temp_path $work/nginx/tmp/proxy;
    fastcgi_temp_path $work/nginx/tmp/fcgi; uwsgi_temp_path $work/nginx/tmp/uwsgi; scgi_temp_path $work/nginx/tmp/scgi;
    server { listen 127.0.0.1:$backend backlog=4096; location / { return 200 "$body"; } }
}
EOF
nginx -p "$work/nginx/" -c "$work/nginx/nginx.conf" -g 'daemon off;' >"$work/nginx.log" 2>&1 &
pids+=($!)

OUT_LISTEN=$rm_out IN_LISTEN=$rm_in BACKEND=127.0.0.1:$backend CA=$work/ca.pem \
    CERT_CLIENT=$work/client.pem KEY_CLIENT=$work/client.key CERT_SERVER=$work/server.pem KEY_SERVER=$work/server.key \
    PAIR_WORKDIR=$work PAIR_PIDFILE=$work/ringmesh.pids RM_PROXY=$proxy bash "$here/bench/pair.sh"
mapfile -t rm_pids <"$work/ringmesh.pids"
pids+=("${rm_pids[@]}")

# peer-bench's HAProxy pair, less `verifyhost` (an SVID names a SPIFFE ID, not a host); the keep-alive load makes
# 64 handshakes in all, so verification does not show in the CPU per request
common="global
    nbthread 1
    maxconn 4096
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s"
cat >"$work/haproxy-out.cfg" <<EOF
$common
frontend out
    bind 127.0.0.1:$hp_out
    default_backend to_in
backend to_in
    server in 127.0.0.1:$hp_in ssl verify required ca-file $work/ca.pem crt $work/client.haproxy.pem ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.3 no-ssl-reuse
EOF
cat >"$work/haproxy-in.cfg" <<EOF
$common
frontend in
    bind 127.0.0.1:$hp_in ssl crt $work/server.haproxy.pem ca-file $work/ca.pem verify required ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.3
    default_backend app
backend app
    server app 127.0.0.1:$backend
EOF
haproxy -db -f "$work/haproxy-out.cfg" >"$work/haproxy-out.log" 2>&1 &
hp_pids=($!)
haproxy -db -f "$work/haproxy-in.cfg" >"$work/haproxy-in.log" 2>&1 &
hp_pids+=($!)
pids+=("${hp_pids[@]}")

# both pairs answer before the rounds start (bounded: 50 tries of 0.1 s)
for port in $rm_out $hp_out; do
    ok=0
    for _ in $(seq 1 50); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/")" = 200 ]; then ok=1; break; fi
        sleep 0.1
    done
    [ "$ok" = 1 ] || { echo "cpu-split.sh: nothing answers through 127.0.0.1:$port" >&2; exit 1; }
    wrk -t1 -c64 -d2s "http://127.0.0.1:$port/" >/dev/null # warm-up: connections and handshakes made
done

# utime + stime of a set of processes, in clock ticks
ticks() {
    local u=0 s=0 p rest
    local -a f
    for p in "$@"; do
        read -r rest <"/proc/$p/stat"
        read -ra f <<<"${rest##*) }" # f[11] utime, f[12] stime
        u=$((u + f[11])) s=$((s + f[12]))
    done
    echo "$u $s"
}
hz=$(getconf CLK_TCK)

{
    echo "| round | pair | req/s | pair CPU µs/req | user µs/req | system µs/req | system share |"
    echo "|--:|---|--:|--:|--:|--:|--:|"
} >"$out"
for round in $(seq 1 "$rounds"); do
    for pair in ringmesh haproxy; do
        if [ "$pair" = ringmesh ]; then port=$rm_out procs=("${rm_pids[@]}"); else port=$hp_out procs=("${hp_pids[@]}"); fi
        read -r u0 s0 < <(ticks "${procs[@]}")
        res=$(wrk -t1 -c64 -d"${secs}s" --timeout 5s "http://127.0.0.1:$port/")
        read -r u1 s1 < <(ticks "${procs[@]}")
        req=$(awk '/requests in/ {print $1}' <<<"$res")
        rps=$(awk '/Requests\/sec/ {print $2}' <<<"$res")
        if [ -z "$req" ] || [ "$req" -eq 0 ]; then
            echo "cpu-split.sh: wrk failed through $pair" >&2
            exit 1
        fi
        awk -v n="$round" -v p="$pair" -v rps="$rps" -v r="$req" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$hz" 'BEGIN {
            us = 1e6 / hz / r
            printf "| %d | %s | %.0f | %.1f | %.1f | %.1f | %.0f %% |\n", n, p, rps, (u + s) * us, u * us, s * us, 100 * s / (u + s)
        }' >>"$out"
    done
done
# per round: the ringmesh pair's kernel time alone against the HAProxy pair's whole CPU
summary=$(awk -F'|' -v rounds="$rounds" '/ ringmesh / {sys[$2 + 0] = $7} / haproxy / {all[$2 + 0] = $5} END {
    printf "\nringmesh system time / HAProxy total, by round:"
    for (r = 1; r <= rounds; r++) printf " %.2f", sys[r] / all[r]
    printf "\n"
}' "$out")
echo "$summary" >>"$out"
cat "$out"
