#!/usr/bin/env bash
# The documented long fuzzing run: every libFuzzer target of tests/fuzz/ (or the ones named) for at least 10 minutes
# each, one after the other, then a results table for docs/hardening.md.
#
#   scripts/fuzz-long.sh [SECONDS] [TARGET...]        e.g.  scripts/fuzz-long.sh 1800
#
# SECONDS per target: default 600, and never less (use scripts/fuzz.sh for short runs). Each target goes through
# scripts/fuzz.sh (build in build-fuzz/ or $RM_FUZZ_BUILD_DIR, run with the target's dictionary, merge the finds
# into tests/fuzz/corpus/<target>/, crashing inputs copied to tests/fuzz/crashes/<target>/). A failing target does
# not stop the others. Meant for a quiet machine: each target takes one core for SECONDS (RM_FUZZ_ARGS="-fork=N"
# gives it N); with 28 targets at 600 s the run takes about 5 hours.
#
# Writes BUILD/fuzz-long-results.md: the date, the commit, the machine, and one table row per target (seconds,
# executions, executions per second, coverage in edges and features, corpus files before and after, result), ready
# to paste into docs/hardening.md. Exits 0 when no target failed, 1 when one did, 2 on a usage error.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${RM_FUZZ_BUILD_DIR:-$repo_root/build-fuzz}
seconds=${1:-600}
[[ $seconds =~ ^[0-9]+$ ]] || {
    echo "usage: $0 [SECONDS >= 600] [TARGET...]" >&2
    exit 2
}
if [[ $seconds -lt 600 ]]; then
    echo "fuzz-long.sh: a long run is at least 600 s per target (scripts/fuzz.sh TARGET SECONDS for short runs)" >&2
    exit 2
fi
shift || true
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    for f in "$repo_root"/tests/fuzz/fuzz_*.c; do
        f=$(basename "$f" .c)
        targets+=("${f#fuzz_}")
    done
fi
for t in "${targets[@]}"; do
    [[ -f $repo_root/tests/fuzz/fuzz_$t.c ]] || {
        echo "fuzz-long.sh: no target $t (tests/fuzz/fuzz_$t.c)" >&2
        exit 2
    }
done

results=$build_dir/fuzz-long-results.md
mkdir -p "$build_dir"
commit=$(git -C "$repo_root" rev-parse --short HEAD 2>/dev/null || echo unknown)
{
    printf '### Long run of %s, commit %s\n\n' "$(date -u +%Y-%m-%d)" "$commit"
    printf 'Machine: %s CPUs, %s; %s s per target; libFuzzer flags: %s\n\n' "$(nproc)" \
        "$(clang --version 2>/dev/null | head -n 1 || echo 'clang ?')" "$seconds" "${RM_FUZZ_ARGS:-(none)}"
    printf '| target | seconds | executions | exec/s | edges (cov) | features (ft) | corpus before -> after |'
    printf ' result |\n'
    printf '|---|---|---|---|---|---|---|---|\n'
} >"$results"

failed=()
for t in "${targets[@]}"; do
    corpus=$repo_root/tests/fuzz/corpus/$t
    before=$(find "$corpus" -maxdepth 1 -type f ! -name '.*' 2>/dev/null | wc -l)
    status=0
    bash "$repo_root/scripts/fuzz.sh" "$t" "$seconds" || status=$?
    log=$build_dir/fuzz-logs/$t.log
    after=$(find "$corpus" -maxdepth 1 -type f ! -name '.*' | wc -l)
    # libFuzzer's last status line ("#N DONE cov: C ft: F ...") and its final stats
    last=$({ grep -E '^#[0-9]+' "$log" 2>/dev/null || true; } | tail -n 1)
    runs=$(sed -nE 's/^stat::number_of_executed_units: ([0-9]+)/\1/p' "$log" 2>/dev/null | tail -n 1)
    speed=$(sed -nE 's/^stat::average_exec_per_sec: +([0-9]+)/\1/p' "$log" 2>/dev/null | tail -n 1)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    if [[ $status -eq 0 ]]; then
        result="no finding"
    else
        result="FAILED: see tests/fuzz/crashes/$t/ and $log"
        failed+=("$t")
    fi
    printf '| `%s` | %s | %s | %s | %s | %s | %s -> %s | %s |\n' "$t" "$seconds" "${runs:-?}" "${speed:-?}" \
        "${cov:-?}" "${ft:-?}" "$before" "$after" "$result" >>"$results"
done

printf '\nfuzz-long.sh: results in %s\n' "$results"
cat "$results"
if [[ ${#failed[@]} -ne 0 ]]; then
    echo "fuzz-long.sh: failures in: ${failed[*]}" >&2
    exit 1
fi
