#!/usr/bin/env bash
# bench/floor.sh - the cost of two extra hops with no proxy work in them, measured beside the peers in one run of
# ../shared/bench/peer-bench.sh: the candidate is bench/relay-pair.sh (two plain socat relays, no TLS). Its added
# latency is the floor under any proxy pair on this machine that sleeps between requests; see bench/RESULTS.md.
#
#   bench/floor.sh [OUT_PREFIX]        default OUT_PREFIX=bench/out/floor-<UTC date>   (as root)
#
# Exits 0 even though peer-bench reports the relay pair's failed mTLS check (there is no TLS, by design).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
peer_bench=${PEER_BENCH:-$here/../shared/bench/peer-bench.sh}
[ -f "$peer_bench" ] || { echo "floor.sh: $peer_bench not found (set PEER_BENCH)" >&2; exit 1; }
if ! command -v socat >/dev/null; then
    [ "$(id -u)" = 0 ] || { echo "floor.sh: socat is missing (apt-get install socat)" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q socat >/dev/null
fi
out=${1:-$here/bench/out/floor-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$(dirname "$out")"
rc=0
PEER_BENCH_INSTALL=${PEER_BENCH_INSTALL:-1} PAIR_CMD="$here/bench/relay-pair.sh" bash "$peer_bench" "$out.json" |
    tee "$out.md" || rc=$?
# 2 = a configuration failed its mTLS check: the relay pair always does. Anything else is a real failure.
[ "$rc" = 0 ] || [ "$rc" = 2 ] || exit "$rc"
