#!/usr/bin/env bash
# bench/enforcement.sh - what authorization costs the data-plane pair: the same latency measurement as
# ../shared/bench/peer-bench.sh (h2load, HTTP/1.1 keep-alive, a fixed 1,000 req/s over 16 connections, nginx
# backend with a 1,024-byte body), run on three configurations interleaved round by round in one run:
#   direct    client -> backend
#   pair      ringmesh pair (bench/pair.sh), no policy
#   enforced  ringmesh pair whose inbound proxy enforces RULES AuthorizationPolicy rules (RM_POLICY_RULES), with
#             HTTP fields, so every request is parsed and decided
# and reports each one's p50/p90/p99 (medians over the rounds) and the added latency of both pairs over direct:
# the target is enforced's added latency within 10 % of pair's.
#
#   bench/enforcement.sh [OUT_PREFIX]     default OUT_PREFIX=bench/out/enforcement-<UTC date>   (as root)
#
# Settings: RULES (1000), ROUNDS (12), SECS (per configuration and round, 10), RATE (1000), CONNS (16), RM_PROXY.
# Needs nginx and h2load (nghttp2-client): installs them when missing (root). Everything listens on 127.0.0.1;
# every process started here is stopped by its PID.
set -euo pipefail
BENCH_NAME=enforcement.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RULES=${RULES:-1000}
ROUNDS=${ROUNDS:-12}
SECS=${SECS:-10}
RATE=${RATE:-1000}
CONNS=${CONNS:-16}
out=${1:-$here/bench/out/enforcement-$(date -u +%Y%m%dT%H%M%SZ)}
bench_init
mkdir -p "$(dirname "$out")"
bench_backend
bench_certs

declare -A PORT
PORT[direct]=$be
PORT[pair]=$(bench_pair pair "$work/pids")
PORT[enforced]=$(bench_pair enforced "$work/pids" RM_POLICY_RULES="$RULES")
for c in direct pair enforced; do bench_wait_200 "$c" "${PORT[$c]}"; done
grep -q '"policies_loaded"' "$work/enforced/inbound.log" 2>/dev/null ||
    grep -q 'authorization' "$work/enforced/inbound.yaml" || { echo "enforcement.sh: no policy on the enforced pair" >&2; exit 1; }

# one latency measurement: prints p50 p90 p99 in µs
measure() {
    local p=$1 log=$work/h2load.log n=$((RATE * SECS))
    rm -f "$log"
    timeout $((SECS + 30)) h2load --h1 -c "$CONNS" --rps "$(awk "BEGIN{print $RATE/$CONNS}")" -n "$n" -r 1 \
        --rate-period 1ms --log-file "$log" "http://127.0.0.1:$p/" >/dev/null
    bench_percentiles "$log"
}

configs=(direct pair enforced)
declare -A R50 R90 R99
for r in $(seq 1 "$ROUNDS"); do
    for k in 0 1 2; do
        c=${configs[$(((r + k) % 3))]}
        read -r p50 p90 p99 < <(measure "${PORT[$c]}")
        R50[$c]+="$p50 " R90[$c]+="$p90 " R99[$c]+="$p99 "
        echo "enforcement.sh: round $r $c: p50 $p50 p90 $p90 p99 $p99 µs" >&2
    done
done
median() { bench_median; }
# paired per round: enforced's added latency over pair's, each over the same round's direct (rounds see the same
# machine phase, so their ratios vary less than ratios of medians)
per_round_ratios() { # PCT -> one ratio per round
    local -n RD=$1 RP=$2 RE=$3
    paste <(echo "${RD[direct]}" | tr ' ' '\n' | grep -v '^$') <(echo "${RP[pair]}" | tr ' ' '\n' | grep -v '^$') \
        <(echo "${RE[enforced]}" | tr ' ' '\n' | grep -v '^$') |
        awk '$2 > $1 { printf "%.2f ", ($3 - $1) / ($2 - $1) }'
}

declare -A M50 M90 M99
for c in "${configs[@]}"; do
    M50[$c]=$(echo "${R50[$c]}" | median)
    M90[$c]=$(echo "${R90[$c]}" | median)
    M99[$c]=$(echo "${R99[$c]}" | median)
done
add() { echo $(($1 - $2)); }
a50p=$(add "${M50[pair]}" "${M50[direct]}") a99p=$(add "${M99[pair]}" "${M99[direct]}")
a50e=$(add "${M50[enforced]}" "${M50[direct]}") a99e=$(add "${M99[enforced]}" "${M99[direct]}")
ratio() { awk "BEGIN{ if ($2 <= 0) print \"-\"; else printf \"%.2f\", $1/$2 }"; }
{
    bench_header
    echo "$ROUNDS rounds of $SECS s per configuration, rotated; $RATE req/s over $CONNS HTTP/1.1 keep-alive connections;" \
        "enforced: $RULES rules. Medians over the rounds, µs."
    echo
    echo "| config | p50 | p90 | p99 | +p50 | +p99 | p50 per round | p99 per round |"
    echo "|---|--:|--:|--:|--:|--:|---|---|"
    for c in "${configs[@]}"; do
        if [ "$c" = direct ]; then a50=- a99=-; else a50=$(add "${M50[$c]}" "${M50[direct]}") a99=$(add "${M99[$c]}" "${M99[direct]}"); fi
        echo "| $c | ${M50[$c]} | ${M90[$c]} | ${M99[$c]} | $a50 | $a99 | ${R50[$c]% } | ${R99[$c]% } |"
    done
    echo
    q50=$(per_round_ratios R50 R50 R50) q99=$(per_round_ratios R99 R99 R99)
    echo "Enforcement's added latency over the pair's: +p50 ×$(ratio "$a50e" "$a50p"), +p99 ×$(ratio "$a99e" "$a99p")" \
        "(ratios of the medians); per round +p50 ×$(echo "$q50" | median) (${q50% }), +p99 ×$(echo "$q99" | median)" \
        "(${q99% }) (medians of the rounds' ratios). Target: at most ×1.10."
} | tee "$out.md"
