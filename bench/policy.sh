#!/usr/bin/env bash
# bench/policy.sh - the authorization decision benchmark: bench/policy_bench (the policy engine with 1,000 rules
# read by the YAML loader, three shapes of policy set, four classes of request) pinned to one CPU, run RUNS times.
#
#   bench/policy.sh [OUT_PREFIX]          default OUT_PREFIX=bench/out/policy-<UTC date>
#
# Writes OUT_PREFIX.md (the median of the runs, then each run's table; also printed) and OUT_PREFIX.json (machine,
# commit and every run's JSON summary). Builds nothing: run scripts/test.sh or cmake --build build first. Settings
# from the environment: BUILD (build/), RM_POLICY_BENCH (the benchmark binary, default $BUILD/bench/policy_bench),
# RUNS (3), BATCHES (50000 batches per shape), BATCH (16 decisions timed together), CPU (the CPU to pin to with
# taskset, default the last one; "none" to not pin), NOTE (a remark for the heading). Takes about 30 s per run.
# Results belong in bench/RESULTS.md with the machine and the date; quote medians, the machines are shared.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$here/build}
RM_POLICY_BENCH=${RM_POLICY_BENCH:-$BUILD/bench/policy_bench}
RUNS=${RUNS:-3}
BATCHES=${BATCHES:-50000}
BATCH=${BATCH:-16}
CPU=${CPU:-$(($(nproc) - 1))}
NOTE=${NOTE:-}

die() {
    echo "policy.sh: $*" >&2
    exit 1
}

[ -x "$RM_POLICY_BENCH" ] || die "$RM_POLICY_BENCH is not built (cmake --build build, or set RM_POLICY_BENCH)"
command -v jq >/dev/null || die "jq is needed"

pin=()
pinned="not pinned"
if [ "$CPU" != none ] && command -v taskset >/dev/null; then
    pin=(taskset -c "$CPU")
    pinned="pinned to CPU $CPU with taskset"
fi

started=$(date -u '+%Y-%m-%d %H:%M')
out=${1:-$here/bench/out/policy-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d /tmp/ringmesh-policy-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

commit=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
cpu_model=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -n 1)
machine="${cpu_model:-unknown CPU}, $(nproc) cores, kernel $(uname -r); $pinned"
echo "policy.sh: $machine, commit $commit" >&2

# cpu_ticks: "total steal" jiffies of the CPU the runs use (all CPUs when not pinned), from /proc/stat
cpu_ticks() {
    local line=cpu
    [ ${#pin[@]} -eq 0 ] || line=cpu$CPU
    awk -v c="$line" '$1 == c { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $9 }' /proc/stat
}

steal=()
loads=()
for i in $(seq 1 "$RUNS"); do
    echo "policy.sh: run $i of $RUNS" >&2
    loads+=("$(cut -d' ' -f1 /proc/loadavg)")
    read -r t0 s0 < <(cpu_ticks)
    # a wrong decision makes policy_bench exit 1: then there is nothing to report
    "${pin[@]}" "$RM_POLICY_BENCH" --batches "$BATCHES" --batch "$BATCH" --seed "$i" --json "$tmp/run-$i.json" \
        >"$tmp/run-$i.md" || die "policy_bench run $i failed (status $?)"
    read -r t1 s1 < <(cpu_ticks)
    steal+=("$(awk -v t="$((t1 - t0))" -v s="$((s1 - s0))" 'BEGIN { printf "%.1f", (t > 0 ? 100 * s / t : 0) }')")
done

jq -s --arg started "$started" --arg commit "$commit" --arg machine "$machine" --arg note "$NOTE" \
    '{bench: "policy", started: $started, commit: $commit, machine: $machine, note: $note, runs: .}' \
    "$tmp"/run-*.json >"$out.json"

{
    echo "### Run of $started UTC, commit $commit${NOTE:+ ($NOTE)}"
    echo
    echo "Machine: $machine. policy_bench, $RUNS runs of $BATCHES batches of $BATCH decisions per shape;" \
        "load average before each run: $(IFS=/ && echo "${loads[*]}"); time stolen by the hypervisor from the CPU" \
        "during each run: $(IFS=/ && echo "${steal[*]}") %."
    echo
    # jq: for each shape, $n its name and $ss its results in every run
    per_shape='
        def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
        .runs as $runs | $runs[0].shapes[].name as $n |
        ($runs | map(.shapes[] | select(.name == $n))) as $ss |'
    echo "Median of the runs, ns per decision (p99 of each run in the last column but one):"
    echo
    echo "| shape | class | p50 | p90 | p99 | p99.9 | max | mean | p99 per run | decisions/s |"
    echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"
    jq -r "$per_shape"'
        (["all"] + ($ss[0].classes | keys_unsorted))[] as $c |
        ($ss | map(if $c == "all" then .all else .classes[$c] end)) as $st |
        "| \(if $c == "all" then "\($n) (\($ss[0].rules) rules\(if $ss[0].http then "" else ", TCP" end))" else "" end) | " +
        "\(if $c == "all" then "**mix**" else $c end) | \($st | map(.p50_ns) | median | round) | " +
        "\($st | map(.p90_ns) | median | round) | \($st | map(.p99_ns) | median | round) | " +
        "\($st | map(.p999_ns) | median | round) | \($st | map(.max_ns) | median | round) | " +
        "\($st | map(.mean_ns) | median | round) | \($st | map(.p99_ns | round | tostring) | join(" / ")) | " +
        "\(if $c == "all" then ($ss | map(.decisions_per_s) | median | round) else (1e9 / ($st | map(.mean_ns) | median) | round) end) |"
    ' "$out.json"
    echo
    echo "decisions/s: for the mix, one core deciding the request stream one decision per request in turn; per class," \
        "1 s / mean. Classes: early-allow 30%, late-allow 30%, deny 10%, no-allow-match 30% of the batches."
    echo
    echo "Against the target (a decision costs at most 1 µs at p99 with 1,000 rules), medians of the runs:"
    echo
    echo "| shape | p99 mix ns | worst class | its p99 ns | met? |"
    echo "|---|--:|---|--:|---|"
    jq -r "$per_shape"'
        ($ss | map(.all.p99_ns) | median) as $mix |
        ($ss[0].classes | keys_unsorted | map(. as $c | {c: $c, p99: ($ss | map(.classes[$c].p99_ns) | median)}) |
            max_by(.p99)) as $w |
        "| \($n) | \($mix | round) | \($w.c) | \($w.p99 | round) | \(if $mix <= 1000 and $w.p99 <= 1000 then "met" else "not met" end) |"
    ' "$out.json"
    for i in $(seq 1 "$RUNS"); do
        echo
        echo "#### Run $i"
        echo
        cat "$tmp/run-$i.md"
    done
} | tee "$out.md"
