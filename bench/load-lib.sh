# shellcheck shell=bash disable=SC2034 # LB_* are this file's results, read by the scripts that source it
# bench/load-lib.sh - what bench/conns.sh, bench/soak.sh and bench/handshake-flood.sh share (sourced, never run):
# a work directory removed at exit, free loopback ports, the certificates, an e2e_load app, and ringmesh proxy pairs
# started through bench/pair.sh. Every process started here is stopped by its PID at exit.
#
# Needs a build in build/ (the proxy, ringmeshctl and build/tests/tools/e2e_load). Everything listens on 127.0.0.1.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ctl=$here/build/ctl/ringmeshctl
load=$here/build/tests/tools/e2e_load
for f in "$ctl" "$load" "$here/build/sidecar/ringmesh-proxy"; do
    [ -x "$f" ] || { echo "$(basename "$0"): $f is missing: build first (cmake --build build)" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "$(basename "$0"): needs jq (scripts/bootstrap.sh installs it)" >&2; exit 1; }
work=$(mktemp -d)
lb_pids=()
lb_cleanup() {
    local p
    for p in "${lb_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$work/pids" ] && while read -r p; do kill "$p" 2>/dev/null || true; done <"$work/pids"
    rm -rf "$work"
}
trap lb_cleanup EXIT

# descriptors for many connections: two per connection in each proxy, one in the client and the app
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# lb_port: a free port below the kernel's ephemeral range (32768 and up by default), where no client socket of another
# run holds it, and that no socket of any state uses
lb_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))
        ss -Htan "sport = :$p" | grep -q . || break
    done
    echo "$p"
}

lb_wait_port() {
    local _
    for _ in $(seq 1 200); do
        ss -Hltn "sport = :$1" | grep -q . && return 0
        sleep 0.05
    done
    echo "$(basename "$0"): nothing listens on $1" >&2
    exit 1
}

"$ctl" svid issue --ca --trust-domain cluster.local --cert "$work/ca.pem" --key "$work/ca.key" >/dev/null
for who in client server; do
    "$ctl" svid issue --ca-cert "$work/ca.pem" --ca-key "$work/ca.key" --id "spiffe://cluster.local/ns/default/sa/$who" \
        --cert "$work/$who.pem" --key "$work/$who.key" >/dev/null
done

# lb_app [e2e_load serve args...]: an e2e_load app on a new port; LB_APP = its port
lb_app() {
    LB_APP=$(lb_port)
    "$load" serve --listen "127.0.0.1:$LB_APP" "$@" >"$work/app-$LB_APP.log" 2>&1 &
    lb_pids+=($!)
    lb_wait_port "$LB_APP"
}

# lb_pair NAME BACKEND_PORT: a ringmesh pair (bench/pair.sh; RM_* knobs from the environment) in front of the app;
# LB_OUT = its plain port, LB_IN = the inbound proxy's mTLS port, LB_PIDS = "outbound,inbound" proxy PIDs
lb_pair() {
    local name=$1 be=$2
    LB_OUT=$(lb_port)
    LB_IN=$(lb_port)
    mkdir -p "$work/$name"
    OUT_LISTEN=$LB_OUT IN_LISTEN=$LB_IN BACKEND=127.0.0.1:$be CA=$work/ca.pem CERT_CLIENT=$work/client.pem \
        KEY_CLIENT=$work/client.key CERT_SERVER=$work/server.pem KEY_SERVER=$work/server.key \
        PAIR_WORKDIR=$work/$name PAIR_PIDFILE=$work/$name/pids bash "$here/bench/pair.sh" >/dev/null
    cat "$work/$name/pids" >>"$work/pids"
    lb_wait_port "$LB_OUT"
    lb_wait_port "$LB_IN"
    LB_PIDS=$(tac "$work/$name/pids" | paste -sd,) # pair.sh starts the inbound proxy first
}

# lb_median: the median of the numbers on stdin, one a line
lb_median() {
    sort -n | awk '{a[NR] = $1} END {if (NR == 0) print 0; else if (NR % 2) print a[(NR + 1) / 2];
        else printf "%.0f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}

# lb_header TITLE: the machine and the build, for the section written to RESULTS.md
lb_header() {
    printf '### %s (%s)\n\n' "$1" "$(date -u +%Y-%m-%d)"
    printf 'Machine: %s, %s CPUs, kernel %s; load average at start %s; commit %s.\n\n' \
        "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)" "$(nproc)" "$(uname -r)" \
        "$(cut -d' ' -f1-3 /proc/loadavg)" "$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)"
}
