#!/usr/bin/env bash
# bench/peer.sh - the data-plane benchmark: ringmesh's proxy pair side by side with the HAProxy, nginx and stunnel
# pairs and the direct baseline, in one run of shared/bench/peer-bench.sh (see bench/pair.sh for our pair).
#
#   bench/peer.sh [OUT_PREFIX]        default OUT_PREFIX=bench/out/peer-<UTC date>   (as root)
#
# Writes OUT_PREFIX.md (the table) and OUT_PREFIX.json, installs the peers on first use (PEER_BENCH_INSTALL=1),
# and uses the proxy in build/ (run scripts/test.sh or cmake --build build first). Takes about 5 minutes. Results
# belong in bench/RESULTS.md with the machine and the date; quote medians and ratios, the machines are shared.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
peer_bench=${PEER_BENCH:-$here/../shared/bench/peer-bench.sh}
[ -f "$peer_bench" ] || { echo "peer.sh: $peer_bench not found (set PEER_BENCH)" >&2; exit 1; }
[ -x "$here/build/sidecar/ringmesh-proxy" ] || { echo "peer.sh: build first (scripts/test.sh)" >&2; exit 1; }
out=${1:-$here/bench/out/peer-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$(dirname "$out")"
PEER_BENCH_INSTALL=${PEER_BENCH_INSTALL:-1} PAIR_CMD="$here/bench/pair.sh" bash "$peer_bench" "$out.json" | tee "$out.md"
