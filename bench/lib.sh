# bench/lib.sh - what the pair benchmarks (enforcement.sh, observability.sh) share, sourced after `set -euo pipefail`
# with BENCH_NAME set (the script's name, for messages):
#   bench_init            checks the build, installs nginx and h2load when missing (root), makes $work (removed at
#                         exit) and the cleanup trap that stops every process started here by its PID
#   bench_port            a free TCP port on 127.0.0.1
#   bench_backend         nginx on loopback (one worker, keep-alive, a fixed 1,024-byte body): sets $be (its port)
#   bench_certs           a CA and SVIDs for spiffe://cluster.local/ns/default/sa/{client,server} in $work
#   bench_pair NAME PIDFILE [VAR=VALUE...]
#                         a ringmesh pair (bench/pair.sh) in $work/NAME in front of the backend, with the variables
#                         given in its environment (RM_METRICS=, RM_POLICY_RULES=, OTEL_*=); its PIDs go to PIDFILE
#                         (also stopped at exit); prints the outbound proxy's port
#   bench_wait_200 NAME PORT
#                         waits (20 s at most) until http://127.0.0.1:PORT/ answers 200, else exits naming NAME
#   bench_percentiles LOG prints p50 p90 p99 (µs) of the 200 responses of an h2load --log-file, "- - -" when too few
#   bench_median          the median of the numbers on stdin (separated by blanks or newlines)
#   bench_header          the "### Run of ..." line and the machine's description
# $here is the repository root, $ctl ringmeshctl.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ctl=$here/build/ctl/ringmeshctl
pids=()

bench_init() {
    [ -x "$ctl" ] && [ -x "${RM_PROXY:-$here/build/sidecar/ringmesh-proxy}" ] || {
        echo "$BENCH_NAME: build first (scripts/test.sh or cmake --build build)" >&2
        exit 1
    }
    if ! command -v nginx >/dev/null || ! command -v h2load >/dev/null; then
        apt-get install -y --no-install-recommends nginx-light nghttp2-client >/dev/null
    fi
    work=$(mktemp -d)
    trap bench_cleanup EXIT
}

bench_cleanup() {
    local p f
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for f in "$work"/pids "$work"/*/pids; do
        [ -f "$f" ] || continue
        while read -r p; do kill "$p" 2>/dev/null || true; done <"$f"
    done
    rm -rf "$work"
}

bench_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 20000))
        ss -Hltn "sport = :$p" | grep -q . || break
    done
    echo "$p"
}

bench_backend() {
    local body
    be=$(bench_port)
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
}

bench_certs() {
    "$ctl" svid issue --ca --trust-domain cluster.local --cert "$work/ca.pem" --key "$work/ca.key" >/dev/null
    local id
    for id in client server; do
        "$ctl" svid issue --ca-cert "$work/ca.pem" --ca-key "$work/ca.key" \
            --id "spiffe://cluster.local/ns/default/sa/$id" --cert "$work/$id.pem" --key "$work/$id.key" >/dev/null
    done
}

bench_pair() {
    local name=$1 pidfile=$2 o i
    shift 2
    o=$(bench_port)
    i=$(bench_port)
    mkdir -p "$work/$name"
    env "$@" OUT_LISTEN="$o" IN_LISTEN="$i" BACKEND="127.0.0.1:$be" CA="$work/ca.pem" \
        CERT_CLIENT="$work/client.pem" KEY_CLIENT="$work/client.key" CERT_SERVER="$work/server.pem" \
        KEY_SERVER="$work/server.key" PAIR_WORKDIR="$work/$name" PAIR_PIDFILE="$pidfile" \
        bash "$here/bench/pair.sh" >/dev/null
    echo "$o"
}

bench_wait_200() {
    local name=$1 port=$2 code
    # 20 s at most: on a loaded machine a pair with the exporter takes seconds to be up
    for _ in $(seq 1 400); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/" && break
        sleep 0.05
    done
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/" || true)
    [ "$code" = 200 ] || { echo "$BENCH_NAME: $name does not answer 200 ($code)" >&2; exit 1; }
}

bench_percentiles() {
    awk '$2 == 200 {print $3}' "$1" | sort -n | awk '{a[NR]=$1} END {
        if (NR < 100) { print "- - -"; exit }
        printf "%d %d %d\n", a[int(NR*0.5)], a[int(NR*0.9)], a[int(NR*0.99)] }'
}

bench_median() {
    tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

bench_header() {
    echo "### Run of $(date -u '+%Y-%m-%d %H:%M') UTC, commit $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo
    echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores, kernel $(uname -r)," \
        "load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
}
