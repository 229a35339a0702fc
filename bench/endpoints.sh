#!/usr/bin/env bash
# bench/endpoints.sh - what the outbound proxy's endpoint choice costs (docs/traffic-management.md#endpoints): runs
# build/bench/endpoint_bench, one endpoint choice (power of two choices, two lookups in the worker's load table) and
# its bookkeeping, for services of 3 to 1,000 endpoints, in the thread's CPU time.
#
#   bench/endpoints.sh [OUT_PREFIX]     default OUT_PREFIX=bench/out/endpoints-<UTC date>; ITERATIONS (2,000,000)
#
# Writes OUT_PREFIX.txt (one JSON line per size). Results go in bench/RESULTS.md with the machine and the date.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$here/bench/out/endpoints-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$(dirname "$out")"
bench=$here/build/bench/endpoint_bench
[ -x "$bench" ] || { echo "endpoints.sh: $bench not found: build first" >&2; exit 1; }
"$bench" "${ITERATIONS:-2000000}" | tee "$out.txt"
