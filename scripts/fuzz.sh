#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz/ and merges what they find into the committed corpora.
#
#   scripts/fuzz.sh [TARGET|all] [SECONDS]        e.g.  scripts/fuzz.sh tls_sniff 300
#
# Configures build-fuzz/ (or $RM_FUZZ_BUILD_DIR) with CC=clang CXX=clang++ and -DRINGMESH_FUZZ=ON, installing clang and
# its libFuzzer runtime with apt-get when they are missing (root needed then), and builds fuzz_<target>. Each target
# then runs for SECONDS (default 60) with -max_total_time, starting from tests/fuzz/corpus/<target>/ and its dictionary
# tests/fuzz/dict/<target>.dict when there is one. Afterwards the corpus is minimised with -merge=1: the hand-made
# seed-* files always stay, and of everything else (earlier finds and this run's) only inputs that add coverage are
# kept. Inputs that crash are copied to tests/fuzz/crashes/<target>/ (never replayed by ctest) with the command that
# reproduces them. Exits 0 when no target crashed, 1 when one did, 2 on a usage or setup error.
#
# Environment: RM_FUZZ_BUILD_DIR (build directory), RM_FUZZ_ARGS (extra libFuzzer flags, e.g. "-jobs=2 -workers=2"),
# RM_FUZZ_NO_BUILD=1 (the fuzz_<target> binaries are already built: neither configure nor build, so that several runs
# can share one build directory without two builds racing in it; scripts/fuzz-long.sh -p sets it), RM_FUZZ_BUILD_ONLY=1
# (configure and build, then exit 0 without fuzzing).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${RM_FUZZ_BUILD_DIR:-$repo_root/build-fuzz}
fuzz_src=$repo_root/tests/fuzz
target_arg=${1:-all}
seconds=${2:-60}

usage() {
    echo "usage: $0 [TARGET|all] [SECONDS]" >&2
    echo "targets: $(list_targets | tr '\n' ' ')" >&2
    exit 2
}

list_targets() {
    local f
    for f in "$fuzz_src"/fuzz_*.c; do
        f=$(basename "$f" .c)
        echo "${f#fuzz_}"
    done
}

[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || usage
if [[ $target_arg == all ]]; then
    mapfile -t targets < <(list_targets)
elif [[ -f $fuzz_src/fuzz_$target_arg.c ]]; then
    targets=("$target_arg")
else
    usage
fi

# ---- toolchain --------------------------------------------------------------------------------------------------

libfuzzer_links() {
    local dir
    command -v clang >/dev/null || return 1
    dir=$(mktemp -d)
    printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }\n' \
        >"$dir/t.c"
    clang -fsanitize=fuzzer,address,undefined "$dir/t.c" -o "$dir/t" 2>/dev/null
    local status=$?
    rm -rf "$dir"
    return $status
}

if ! libfuzzer_links; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "fuzz.sh: clang with the libFuzzer runtime is missing; run as root to install it, or:" >&2
        echo "fuzz.sh:   apt-get install clang libclang-rt-14-dev" >&2
        exit 2
    fi
    echo "fuzz.sh: installing clang and its libFuzzer runtime" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-14-dev >/dev/null
    if ! libfuzzer_links; then
        echo "fuzz.sh: clang still cannot link -fsanitize=fuzzer" >&2
        exit 2
    fi
fi

# ---- build ------------------------------------------------------------------------------------------------------

# Debian's wolfSSL is the same API; speed does not matter here, and the accelerated build is per build directory.
# The control plane's library has C++ (its gRPC runtime): both compilers must be clang's. A cache made with other
# compilers is dropped (cmake cannot change them in place).
cache=$build_dir/CMakeCache.txt
if [[ ${RM_FUZZ_NO_BUILD:-0} == 1 ]]; then
    for t in "${targets[@]}"; do
        [[ -x $build_dir/fuzz/fuzz_$t ]] || {
            echo "fuzz.sh: RM_FUZZ_NO_BUILD=1 but $build_dir/fuzz/fuzz_$t is not built" >&2
            exit 2
        }
    done
else
    if [[ -f $cache ]] && ! grep -q '^CMAKE_CXX_COMPILER:[A-Z]*=.*clang++' "$cache"; then
        rm -f "$cache"
    fi
    if [[ ! -f $cache ]] || ! grep -q '^RINGMESH_FUZZ:BOOL=ON' "$cache"; then
        CC=clang CXX=clang++ cmake -S "$repo_root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
            -DRINGMESH_FUZZ=ON -DRINGMESH_SYSTEM_WOLFSSL=ON >"$build_dir.configure.log" 2>&1 ||
            { cat "$build_dir.configure.log" >&2; exit 2; }
        rm -f "$build_dir.configure.log"
    fi
    cmake --build "$build_dir" -j"$(nproc)" --target "${targets[@]/#/fuzz_}"
fi
[[ ${RM_FUZZ_BUILD_ONLY:-0} != 1 ]] || exit 0

# ---- fuzz, merge, report -------------------------------------------------------------------------------------------

count_files() {
    find "$1" -maxdepth 1 -type f ! -name '.*' | wc -l
}

corpus_bytes() {
    find "$1" -maxdepth 1 -type f ! -name '.*' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'
}

read -r -a extra_args <<<"${RM_FUZZ_ARGS:-}"
# stack traces for undefined behaviour too; leaks count as failures
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
crashed=()
report=()

for t in "${targets[@]}"; do
    bin=$build_dir/fuzz/fuzz_$t
    corpus=$fuzz_src/corpus/$t
    work=$build_dir/fuzz-work/$t
    merged=$build_dir/fuzz-merge/$t
    artifacts=$build_dir/fuzz-artifacts/$t
    log=$build_dir/fuzz-logs/$t.log
    rm -rf "$work" "$merged" "$merged.rest"
    mkdir -p "$corpus" "$work" "$merged" "$artifacts" "$(dirname "$log")"
    dict=()
    [[ -f $fuzz_src/dict/$t.dict ]] && dict=("-dict=$fuzz_src/dict/$t.dict")
    before_files=$(count_files "$corpus")

    echo "fuzz.sh: $t for ${seconds}s (log: $log)"
    status=0
    # new inputs go to the first directory (scratch); the committed corpus is only read
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "${dict[@]}" "${extra_args[@]}" "$work" "$corpus" >"$log" 2>&1 || status=$?
    # the last status line: "#RUNS DONE cov: ..." (fork mode: "#RUNS: cov: ...")
    stats=$({ grep -E '^#[0-9]+' "$log" || true; } | tail -n 1 | sed -E 's/^#([0-9]+):?[[:space:]]+([A-Z]+[[:space:]]+)?/runs \1 /')
    new_inputs=$(count_files "$work")

    # minimise: seeds first, then whatever else adds coverage; when that is over the file budget, again counting
    # edges only (not how often each is hit), which keeps far fewer inputs
    mkdir -p "$merged.rest"
    find "$corpus" -maxdepth 1 -type f ! -name 'seed-*' ! -name '.*' -exec cp {} "$merged.rest"/ \;
    for counters in 1 0; do
        rm -rf "$merged"
        mkdir -p "$merged"
        find "$corpus" -maxdepth 1 -type f -name 'seed-*' -exec cp {} "$merged"/ \;
        if ! "$bin" -merge=1 -use_counters=$counters -timeout=10 -rss_limit_mb=2048 "$merged" "$merged.rest" "$work" \
            >"$log.merge" 2>&1; then
            echo "fuzz.sh: $t: merge failed, corpus left as it was (see $log.merge)" >&2
            merged=""
            break
        fi
        [[ $(count_files "$merged") -le 200 ]] && break
    done
    if [[ -n $merged ]]; then
        find "$corpus" -maxdepth 1 -type f ! -name 'seed-*' ! -name '.*' -delete
        find "$merged" -maxdepth 1 -type f ! -name 'seed-*' -exec cp {} "$corpus"/ \;
        rm -rf "$merged.rest"
    fi
    after_files=$(count_files "$corpus")
    after_bytes=$(corpus_bytes "$corpus")

    line="$t: ${stats:-no stats}; $new_inputs new inputs; corpus $before_files -> $after_files files, $after_bytes bytes"
    if [[ $after_files -gt 200 || $after_bytes -gt 1048576 ]]; then
        line="$line (over the 200 files / 1 MiB budget: raise -merge pressure or drop inputs by hand)"
    fi
    if [[ $status -ne 0 ]]; then
        mkdir -p "$fuzz_src/crashes/$t"
        # the three smallest (with -fork=1 -ignore_crashes=1 one bug can leave hundreds of artifacts)
        total=$(count_files "$artifacts")
        found=0
        while IFS= read -r a; do
            cp "$a" "$fuzz_src/crashes/$t/"
            found=$((found + 1))
        done < <(find "$artifacts" -maxdepth 1 -type f -printf '%s %p\n' | sort -n | head -n 3 | cut -d' ' -f2-)
        line="$line; FAILED (exit $status, $total artifacts, the $found smallest copied to tests/fuzz/crashes/$t/;"
        line="$line reproduce: $bin FILE, or BUILD/tests/fuzz/replay_$t FILE of any build)"
        crashed+=("$t")
        grep -m 1 -E 'ERROR: |invariant broken|deadly signal|runtime error' "$log" >&2 || true
    fi
    report+=("$line")
    rm -rf "$artifacts"
done

echo
echo "fuzz.sh: report"
printf '  %s\n' "${report[@]}"
if [[ ${#crashed[@]} -ne 0 ]]; then
    echo "fuzz.sh: failures in: ${crashed[*]}" >&2
    exit 1
fi
