#!/usr/bin/env bash
# bench/conns.sh - many concurrent connections through a ringmesh pair: how much memory the pair holds for them.
#
#   client (e2e_load hold) --plain--> outbound proxy --mTLS--> inbound proxy --plain--> echo app (e2e_load serve)
#
# Each round opens CONNS connections through a new pair (at most 256 connecting at a time), has each echo 8 bytes end
# to end, holds them all open and reads both proxies' RSS and descriptors; then closes them and reads the RSS again
# once the proxies have nothing open. Reported: medians over the rounds of the pair's RSS with every connection open
# (target: under 64 MiB at 10,000), the memory per connection above the idle pair, the time to open them all, and
# connections that failed (must be 0).
#
#   bench/conns.sh [OUT_PREFIX]     default OUT_PREFIX=bench/out/conns-<UTC date>    (as root, for the descriptor limit)
#
# Settings: CONNS (10000), ROUNDS (3), RM_WORKERS (1), RINGMESH_IO_BACKEND. Writes OUT_PREFIX.md, a section for
# bench/RESULTS.md; the full size belongs on a quiet machine.
# shellcheck source=bench/load-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/load-lib.sh"
CONNS=${CONNS:-10000}
ROUNDS=${ROUNDS:-3}
out=${1:-$here/bench/out/conns-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$(dirname "$out")"
export RM_MAX_CONNECTIONS=$((CONNS + 100)) RM_METRICS=${RM_METRICS:-true}

rss_sum() { # PIDS -> KiB
    local p sum=0
    for p in ${1//,/ }; do sum=$((sum + $(awk '$1 == "VmRSS:" {print $2}' "/proc/$p/status"))); done
    echo "$sum"
}

# shellcheck disable=SC2119 # no arguments: an echo app
lb_app
: >"$work/rounds"
for r in $(seq 1 "$ROUNDS"); do
    lb_pair "round$r" "$LB_APP"
    sleep 0.5
    idle=$(rss_sum "$LB_PIDS")
    "$load" hold --connect "127.0.0.1:$LB_OUT" --conns "$CONNS" --timeout 120000 --pids "$LB_PIDS" \
        --ready "$work/held$r" --release "$work/release$r" >"$work/hold$r.log" &
    hold=$!
    for _ in $(seq 1 3000); do [ -e "$work/held$r" ] && break; sleep 0.1; done
    touch "$work/release$r"
    wait "$hold" || true
    line=$(jq -c 'select(.event == "held")' "$work/hold$r.log")
    sleep 1 # the proxies close their sides and give idle buffers back on their next tick
    after=$(rss_sum "$LB_PIDS")
    open_rss=$(jq '[.procs[].rss_kb] | add' <<<"$line")
    printf '%s %s %s %s %s %s\n' "$(jq .held <<<"$line")" "$(jq .failed <<<"$line")" "$idle" "$open_rss" "$after" \
        "$(jq .seconds <<<"$line")" >>"$work/rounds"
    echo "round $r: $(tail -n 1 "$work/rounds") (held failed idle_kb open_kb after_kb open_s)" >&2
    for p in ${LB_PIDS//,/ }; do kill "$p"; done
done

col() { awk -v c="$1" '{print $c}' "$work/rounds" | lb_median; }
held=$(col 1) failed=$(awk '{s += $2} END {print s}' "$work/rounds") idle=$(col 3) open=$(col 4) after=$(col 5)
secs=$(awk '{print $6}' "$work/rounds" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
per=$(awk -v o="$open" -v i="$idle" -v n="$CONNS" 'BEGIN {printf "%.1f", (o - i) / n}')
verdict=$(awk -v o="$open" 'BEGIN {print (o < 65536) ? "met" : "missed"}')
{
    lb_header "Concurrent connections through a pair: $CONNS"
    printf 'bench/conns.sh, CONNS=%s, ROUNDS=%s, %s worker(s) per proxy, metrics on. Medians over the rounds.\n\n' \
        "$CONNS" "$ROUNDS" "${RM_WORKERS:-1}"
    printf '| connections held | failed (all rounds) | pair RSS idle | pair RSS, all open | per connection (pair) | pair RSS after close | time to open all |\n'
    printf '|---|---|---|---|---|---|---|\n'
    printf '| %s | %s | %s KiB | %s KiB | %s KiB | %s KiB | %s s |\n\n' "$held" "$failed" "$idle" "$open" "$per" "$after" \
        "$secs"
    printf 'Target: the pair under 64 MiB (65536 KiB) with all of them open: %s.\n' "$verdict"
} | tee "$out.md"
[ "$failed" = 0 ]
