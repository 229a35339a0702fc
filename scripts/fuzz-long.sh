#!/usr/bin/env bash
# The documented long fuzzing run: every libFuzzer target of tests/fuzz/ (or the ones named) for at least 10 minutes
# each, then a results table for docs/hardening.md.
#
#   scripts/fuzz-long.sh [-p N] [SECONDS] [TARGET...]        e.g.  scripts/fuzz-long.sh 1800
#                                                                   scripts/fuzz-long.sh -p 2 600 kube_watch csr
#
# SECONDS per target: default 600, and never less (use scripts/fuzz.sh for short runs). Each target goes through
# scripts/fuzz.sh (build in build-fuzz/ or $RM_FUZZ_BUILD_DIR, run with the target's dictionary, merge the finds
# into tests/fuzz/corpus/<target>/, crashing inputs copied to tests/fuzz/crashes/<target>/). A failing target does
# not stop the others. Each target takes one core for SECONDS (RM_FUZZ_ARGS="-fork=N" gives it N); with 28 targets
# at 600 s the run takes about 5 hours one after the other.
#
# -p N runs N targets at a time (default 1, one after the other). The binaries of all the targets named are built
# first, once; the runs then share the build directory without building in it (RM_FUZZ_NO_BUILD=1 for fuzz.sh).
# Targets are taken in the order given, each by the next free lane. Two runs never touch the same target's
# corpus, scratch directories or log, and each target's row is written to a file of its own, so a run that is
# stopped keeps the rows of the targets it finished.
#
# Writes BUILD/fuzz-long-results.md (or $RM_FUZZ_RESULTS): the date, the commit, the machine, and one table row per
# target in the order given (seconds, executions, executions per second, coverage in edges and features, corpus
# files before and after, result), ready to paste into docs/hardening.md. The rows are kept in
# BUILD/fuzz-long-rows/<target>.md. Exits 0 when no target failed, 1 when one did, 2 on a usage error.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${RM_FUZZ_BUILD_DIR:-$repo_root/build-fuzz}

usage() {
    echo "usage: $0 [-p N] [SECONDS >= 600] [TARGET...]" >&2
    exit 2
}

lanes=1
if [[ ${1:-} == -p ]]; then
    [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || usage
    lanes=$2
    shift 2
fi
seconds=${1:-600}
[[ $seconds =~ ^[0-9]+$ ]] || usage
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

results=${RM_FUZZ_RESULTS:-$build_dir/fuzz-long-results.md}
rows=$build_dir/fuzz-long-rows
mkdir -p "$build_dir" "$rows"
for t in "${targets[@]}"; do
    rm -f "$rows/$t.md"
done

# Runs one target and writes its row to $rows/<target>.md.
run_target() {
    local t=$1 corpus before after status log last runs speed cov ft result
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
    fi
    # shellcheck disable=SC2016 # the backquotes are Markdown's
    printf '| `%s` | %s | %s | %s | %s | %s | %s -> %s | %s |\n' "$t" "$seconds" "${runs:-?}" "${speed:-?}" \
        "${cov:-?}" "${ft:-?}" "$before" "$after" "$result" >"$rows/$t.md"
    return "$status"
}

if [[ $lanes -gt 1 ]]; then
    # build everything first, once, so that the lanes never build in the same directory at the same time
    for t in "${targets[@]}"; do
        RM_FUZZ_BUILD_ONLY=1 bash "$repo_root/scripts/fuzz.sh" "$t" || {
            echo "fuzz-long.sh: building fuzz_$t failed" >&2
            exit 2
        }
    done
    export RM_FUZZ_NO_BUILD=1
fi

# lanes take the next target of the list; the list's position is shared through a counter file under a lock
next=$rows/.next
echo 0 >"$next"
lane() {
    local i
    while :; do
        i=$(
            {
                flock 9
                read -r n <"$next"
                echo $((n + 1)) >"$next"
                echo "$n"
            } 9>"$next.lock"
        )
        [[ $i -lt ${#targets[@]} ]] || break
        run_target "${targets[$i]}" || true
    done
}
pids=()
for ((l = 0; l < lanes; l++)); do
    lane &
    pids+=($!)
done
for p in "${pids[@]}"; do
    wait "$p" || true
done
rm -f "$next" "$next.lock"

commit=$(git -C "$repo_root" rev-parse --short HEAD 2>/dev/null || echo unknown)
failed=()
{
    printf '### Long run of %s, commit %s\n\n' "$(date -u +%Y-%m-%d)" "$commit"
    printf 'Machine: %s CPUs, %s; %s s per target, %s at a time; libFuzzer flags: %s\n\n' "$(nproc)" \
        "$(clang --version 2>/dev/null | head -n 1 || echo 'clang ?')" "$seconds" "$lanes" "${RM_FUZZ_ARGS:-(none)}"
    printf '| target | seconds | executions | exec/s | edges (cov) | features (ft) | corpus before -> after |'
    printf ' result |\n'
    printf '|---|---|---|---|---|---|---|---|\n'
    for t in "${targets[@]}"; do
        if [[ -f $rows/$t.md ]]; then
            cat "$rows/$t.md"
            grep -q 'FAILED' "$rows/$t.md" && failed+=("$t")
        else
            # shellcheck disable=SC2016 # the backquotes are Markdown's
            printf '| `%s` | not run | | | | | | |\n' "$t"
            failed+=("$t")
        fi
    done
} >"$results"

printf '\nfuzz-long.sh: results in %s\n' "$results"
cat "$results"
if [[ ${#failed[@]} -ne 0 ]]; then
    echo "fuzz-long.sh: failures in: ${failed[*]}" >&2
    exit 1
fi
