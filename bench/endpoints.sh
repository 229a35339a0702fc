#!/usr/bin/env bash
# bench/endpoints.sh - what endpoint-aware balancing costs (docs/traffic-management.md#endpoints):
#
#   1. endpoint_bench: one endpoint choice (power of two choices, two lookups in the worker's load table) and its
#      bookkeeping, for services of 3 to 1,000 endpoints (build/bench/endpoint_bench);
#   2. with PAIR=1 (as root, about 2 minutes a round): the pair's new-connection rate with this build's proxy and with
#      the one in BASE_PROXY (default: the main checkout's build), interleaved over ROUNDS rounds of
#      shared/bench/peer-bench.sh (only the pair and direct, short keep-alive and bulk slices), so that a change of
#      the connection path shows up against the same machine minute.
#
#   bench/endpoints.sh [OUT_PREFIX]     default OUT_PREFIX=bench/out/endpoints-<UTC date>
#
# Writes OUT_PREFIX.txt (endpoint_bench's JSON lines, then one line per pair run). Results go in bench/RESULTS.md.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$here/bench/out/endpoints-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$(dirname "$out")"
bench=$here/build/bench/endpoint_bench
[ -x "$bench" ] || { echo "endpoints.sh: $bench not found: build first" >&2; exit 1; }
"$bench" "${ITERATIONS:-2000000}" | tee "$out.txt"
[ "${PAIR:-0}" = 1 ] || exit 0

peer_bench=${PEER_BENCH:-$here/../shared/bench/peer-bench.sh}
base=${BASE_PROXY:-$here/../main/build/sidecar/ringmesh-proxy}
[ -f "$peer_bench" ] || { echo "endpoints.sh: $peer_bench not found (set PEER_BENCH)" >&2; exit 1; }
[ -x "$base" ] || { echo "endpoints.sh: $base not found (set BASE_PROXY)" >&2; exit 1; }
for round in $(seq 1 "${ROUNDS:-2}"); do
    for which in base this; do
        proxy=$here/build/sidecar/ringmesh-proxy
        [ "$which" = this ] || proxy=$base
        json=$out.$which.$round.json
        RM_PROXY=$proxy PAIRS="" LAT_SECS=2 TPUT_SECS=2 BULK_SECS=2 CONN_SECS=${CONN_SECS:-10} ROUNDS=2 \
            PAIR_CMD="$here/bench/pair.sh" bash "$peer_bench" "$json" >"$json.md" 2>"$json.log" || true
        printf '{"round":%s,"proxy":"%s","configs":%s}\n' "$round" "$which" \
            "$(jq -c '[.configs[] | {name, conn: (.conn // .new_conn // .connections)}]' "$json")" | tee -a "$out.txt"
    done
done
