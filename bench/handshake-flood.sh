#!/usr/bin/env bash
# bench/handshake-flood.sh - what a flood of failed handshakes costs established traffic through a ringmesh pair.
#
#   client (e2e_load requests --http, keep-alive) --plain--> outbound proxy --mTLS--> inbound proxy --> app
#   flooder (tests/e2e/tools/handshake_flood.py) --TLS 1.3 without a client certificate--> inbound proxy
#
# The flooder connects from 127.0.0.2, the outbound proxy from 127.0.0.1, as an attacker and a meshed client have
# addresses of their own (the inbound proxy backs off an address whose handshakes keep failing: docs/proxy-config.md).
#
# Each round measures the keep-alive requests/s of the established traffic (REQUESTS requests over CONNS connections,
# closed loop, every answer checked) twice, in turn: alone, and while FLOOD_CONC flooders make certificate-less
# handshakes to the inbound proxy as fast as they can (each costs the proxy its key exchange and a signature before
# the refusal). Reported: medians over the rounds of both rates, their ratio (target: the flood slows established
# traffic by at most 10 %, a ratio of at least 0.90), failed requests (must be 0), and the flood's handshakes/s.
#
#   bench/handshake-flood.sh [OUT_PREFIX]     default OUT_PREFIX=bench/out/handshake-flood-<UTC date>
#
# Settings: ROUNDS (5), REQUESTS (100000), CONNS (16), FLOOD_CONC (4), RM_WORKERS (1), RINGMESH_IO_BACKEND,
# RM_PROXY and RM_HANDSHAKES (bench/pair.sh: the proxy binary, the inbound proxy's handshakes settings), FLOOD_CPUS
# (the CPUs the flooder runs on, `taskset -c` list; default: anywhere). The load, the flood and both proxies share the
# machine's CPUs: on a machine with few cores, the figure mixes the proxy's cost with plain CPU contention (say so
# with the result). To keep the flooder's own CPU out of the figure, pin the rest apart from it:
#     FLOOD_CPUS=1 taskset -c 0 bench/handshake-flood.sh
# Also reported, per measurement under the flood: the CPU time (user + system) of the inbound proxy, of its
# handshake threads (named rm-handshake) and of the flooder, as a share of the measurement's wall time.
# Writes OUT_PREFIX.md, a section for bench/RESULTS.md.
# shellcheck source=bench/load-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/load-lib.sh"
ROUNDS=${ROUNDS:-5}
REQUESTS=${REQUESTS:-100000}
CONNS=${CONNS:-16}
FLOOD_CONC=${FLOOD_CONC:-4}
flood_tool=$here/tests/e2e/tools/handshake_flood.py
out=${1:-$here/bench/out/handshake-flood-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$(dirname "$out")"
command -v python3 >/dev/null || { echo "handshake-flood.sh: needs python3" >&2; exit 1; }

lb_app --http 1024
lb_pair pair "$LB_APP"
in_pid=${LB_PIDS#*,}
# cpu_ticks PID [COMM]: user + system clock ticks of the process, or of its threads named COMM
cpu_ticks() {
    cat /proc/"$1"/task/*/stat 2>/dev/null | awk -v comm="${2:-}" '{
        o = index($0, "("); e = index($0, ") "); if (comm != "" && substr($0, o + 1, e - o - 1) != comm) next
        split(substr($0, e + 2), f, " "); s += f[12] + f[13]} END {print s + 0}'
}
flood_pfx=()
[ -z "${FLOOD_CPUS:-}" ] || flood_pfx=(taskset -c "$FLOOD_CPUS")
measure() { # NAME -> appends "rps failed" to $work/NAME
    local line
    "$load" requests --connect "127.0.0.1:$LB_OUT" --conns "$CONNS" --requests "$REQUESTS" --http --size 1024 \
        --timeout 10000 >"$work/load.log" || true
    line=$(jq -c 'select(.event == "done")' "$work/load.log")
    printf '%s %s\n' "$(jq .rps <<<"$line")" "$(jq .failed <<<"$line")" >>"$work/$1"
}
: >"$work/alone"
: >"$work/flood"
: >"$work/flooder"
: >"$work/cpu"
measure warmup
# What one flood attempt costs, without the established traffic: COST_COUNT attempts, and the CPU time of the inbound
# proxy (all of it, its workers, its handshake threads) and of the flooder over them, in microseconds per attempt.
COST_COUNT=${COST_COUNT:-2000}
hz=$(getconf CLK_TCK)
p0=$(cpu_ticks "$in_pid") w0=$(cpu_ticks "$in_pid" rm-worker) h0=$(cpu_ticks "$in_pid" rm-handshake)
"${flood_pfx[@]}" python3 "$flood_tool" --connect "127.0.0.1:$LB_IN" --source 127.0.0.2 --count "$COST_COUNT" \
    --concurrency "$FLOOD_CONC" \
    >"$work/cost.log" &
flooder=$!
lb_pids+=("$flooder")
f_ticks=0
while kill -0 "$flooder" 2>/dev/null; do
    f_ticks=$(cpu_ticks "$flooder")
    sleep 0.05
done
wait "$flooder" || true
p1=$(cpu_ticks "$in_pid") w1=$(cpu_ticks "$in_pid" rm-worker) h1=$(cpu_ticks "$in_pid" rm-handshake)
cost=$(awk -v n="$COST_COUNT" -v hz="$hz" -v p="$((p1 - p0))" -v w="$((w1 - w0))" -v h="$((h1 - h0))" -v f="$f_ticks" \
    'BEGIN {u = 1e6 / hz / n; printf "%.0f %.0f %.0f %.0f", p * u, w * u, h * u, f * u}')
echo "cost per attempt (us): inbound proxy, its workers, its handshake threads, flooder: $cost; $(cat "$work/cost.log")" >&2
for r in $(seq 1 "$ROUNDS"); do
    measure alone
    rm -f "$work/stop"
    "${flood_pfx[@]}" python3 "$flood_tool" --connect "127.0.0.1:$LB_IN" --source 127.0.0.2 --count 100000000 \
        --concurrency "$FLOOD_CONC" \
        --stop-file "$work/stop" >"$work/flooder.log" &
    flooder=$!
    lb_pids+=("$flooder")
    sleep 1 # the flood is under way
    t0=$(date +%s%N) p0=$(cpu_ticks "$in_pid") h0=$(cpu_ticks "$in_pid" rm-handshake) f0=$(cpu_ticks "$flooder")
    w0=$(cpu_ticks "$in_pid" rm-worker)
    measure flood
    t1=$(date +%s%N) p1=$(cpu_ticks "$in_pid") h1=$(cpu_ticks "$in_pid" rm-handshake) f1=$(cpu_ticks "$flooder")
    w1=$(cpu_ticks "$in_pid" rm-worker)
    touch "$work/stop"
    # shares of one CPU over the measurement, in %
    awk -v t="$(((t1 - t0) / 1000000))" -v hz="$(getconf CLK_TCK)" -v p="$((p1 - p0))" -v h="$((h1 - h0))" \
        -v f="$((f1 - f0))" -v w="$((w1 - w0))" \
        'BEGIN {s = t / 1000 * hz / 100; printf "%.0f %.0f %.0f %.0f\n", p / s, h / s, f / s, w / s}' \
        >>"$work/cpu"
    wait "$flooder" || true
    jq -r '"\(.per_second) \(.accepted)"' "$work/flooder.log" >>"$work/flooder"
    echo "round $r: alone $(tail -n 1 "$work/alone"), under flood $(tail -n 1 "$work/flood"), flood $(tail -n 1 "$work/flooder") (rps failed / handshakes/s accepted), CPU % inbound proxy, its handshake threads, flooder, its workers $(tail -n 1 "$work/cpu")" >&2
done
alone=$(awk '{print $1}' "$work/alone" | lb_median)
flood=$(awk '{print $1}' "$work/flood" | lb_median)
hs=$(awk '{print $1}' "$work/flooder" | lb_median)
failed=$(cat "$work/alone" "$work/flood" | awk '{s += $2} END {print s}')
accepted=$(awk '{s += $2} END {print s}' "$work/flooder")
cpu_in=$(awk '{print $1}' "$work/cpu" | lb_median)
cpu_hs=$(awk '{print $2}' "$work/cpu" | lb_median)
cpu_fl=$(awk '{print $3}' "$work/cpu" | lb_median)
cpu_wk=$(awk '{print $4}' "$work/cpu" | lb_median)
ratio=$(awk -v a="$alone" -v f="$flood" 'BEGIN {printf "%.2f", (a > 0) ? f / a : 0}')
{
    lb_header "Established traffic under a flood of failed handshakes"
    printf 'bench/handshake-flood.sh, ROUNDS=%s, REQUESTS=%s per measurement over %s keep-alive connections (HTTP/1.1, 1,024-byte answers), %s flooders, %s worker(s) per proxy, flooder on CPUs %s, the rest on CPUs %s. Inbound handshakes settings: %s. Medians over the rounds.\n\n' \
        "$ROUNDS" "$REQUESTS" "$CONNS" "$FLOOD_CONC" "${RM_WORKERS:-1}" "${FLOOD_CPUS:-any}" \
        "$(taskset -pc $$ | sed 's/.*: //')" "${RM_HANDSHAKES:-the defaults}"
    printf '| requests/s alone | requests/s under the flood | ratio | failed requests | flood attempts/s (all refused) | flood handshakes accepted | CPU %% under the flood: inbound proxy (its workers, its handshake threads), flooder |\n|---|---|---|---|---|---|---|\n'
    printf '| %s | %s | %s | %s | %s | %s | %s (%s, %s), %s |\n\n' "$alone" "$flood" "$ratio" "$failed" "$hs" \
        "$accepted" "$cpu_in" "$cpu_wk" "$cpu_hs" "$cpu_fl"
    read -r c_p c_w c_h c_f <<<"$cost"
    printf 'CPU per flood attempt, without the established traffic (%s attempts): inbound proxy %s µs (its workers %s, its handshake threads %s), the flooder itself %s µs (thread names rm-worker and rm-handshake; a proxy without them shows 0 there).\n\n' \
        "$COST_COUNT" "$c_p" "$c_w" "$c_h" "$c_f"
    printf 'Target: a ratio of at least 0.90 (at most 10 %% slower): %s.\n' \
        "$(awk -v r="$ratio" 'BEGIN {print (r >= 0.90) ? "met" : "missed"}')"
} | tee "$out.md"
[ "$failed" = 0 ] && [ "$accepted" = 0 ]
