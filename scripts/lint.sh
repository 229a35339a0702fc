#!/usr/bin/env bash
# Static analysis and formatting check of ringmesh's product code: what CI runs (ctest test lint.static_analysis).
#
#   scripts/lint.sh [BUILD_DIR]
#
# BUILD_DIR (default $RM_BUILD_DIR, else <repo>/build) must be configured: its compile_commands.json gives each
# file's flags. Over the C sources of lib/, sidecar/ (with sidecar/init/), control/ and ctl/ it runs
#   1. clang-format --dry-run -Werror        (.clang-format at the root; headers too)
#   2. cppcheck 2.10                         (options below, suppressions in .cppcheck-suppressions)
#   3. clang-tidy 14, two files at a time    (checks in .clang-tidy; every finding is an error)
# and exits 1 if any of them reports anything, 2 if it cannot run (a tool or the compile database is missing).
# clang-tidy dominates the run time: about 2.5 minutes for the whole tree on two cores. Work files go to
# BUILD_DIR/lint/. Set RM_LINT_JOBS to change the number of parallel clang-tidy processes (default 2).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${1:-${RM_BUILD_DIR:-$repo_root/build}}
[[ $build_dir == /* ]] || build_dir=$PWD/$build_dir
jobs=${RM_LINT_JOBS:-2}

# Files not linted (paths relative to the repository root): none today. A file listed here must say why.
readonly EXCLUDED=()
readonly PRODUCT_DIRS=(lib sidecar control ctl)

log() { printf 'lint: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 2
}

for tool in clang-format cppcheck clang-tidy jq; do
    command -v "$tool" >/dev/null || die "$tool is not installed (scripts/bootstrap.sh installs it)"
done
db=$build_dir/compile_commands.json
[[ -r $db ]] || die "$db not found: configure the build first (cmake -S $repo_root -B $build_dir)"

work=$build_dir/lint
mkdir -p "$work"
excluded_json=$(printf '%s\n' "${EXCLUDED[@]}" | jq -R . | jq -s --arg root "$repo_root/" 'map($root + .)')
dirs_json=$(printf '%s\n' "${PRODUCT_DIRS[@]}" | jq -R . | jq -s .)

# One compile command per product source file (the library is also built with sanitizers for the fuzz replays:
# those duplicates are skipped), without the excluded files. clang-tidy reads it from $work/tidy/. It is analysed
# without _FORTIFY_SOURCE: glibc's fortified printf wrappers make clang 14's va_list checker call every va_list
# handed on to vsnprintf uninitialized.
mkdir -p "$work/tidy" "$work/cppcheck-build"
jq --arg root "$repo_root/" --argjson excluded "$excluded_json" --argjson dirs "$dirs_json" '
    [ .[] | select(.file | startswith($root))
          | select((.file | ltrimstr($root) | split("/")[0]) as $top | $dirs | index($top))
          | select(.command | test("-fsanitize") | not)
          | select(.file as $f | $excluded | index($f) | not) ]
    | unique_by(.file)
    | map(.command |= gsub(" -D_FORTIFY_SOURCE=[0-9]+"; ""))' "$db" >"$work/tidy/compile_commands.json"
mapfile -t sources < <(jq -r '.[].file' "$work/tidy/compile_commands.json")
((${#sources[@]} > 0)) || die "no product sources in $db"

# cppcheck is not given wolfSSL's headers: they decide type sizes from <limits.h>, which cppcheck does not read, and
# stop at an #error. (The generated protobuf-c headers are kept; their version check gets the version below.)
jq 'map(.command |= gsub(" -I[^ ]*/wolfssl/include "; " "))' "$work/tidy/compile_commands.json" >"$work/cppcheck.json"

failed=()
start=$SECONDS

# 1. Formatting: every C file of the product folders, headers included.
mapfile -t format_files < <(cd "$repo_root" &&
    find "${PRODUCT_DIRS[@]}" -type f \( -name '*.c' -o -name '*.h' -o -name '*.cc' \) | sort)
format_list=()
for f in "${format_files[@]}"; do
    skip=0
    for e in "${EXCLUDED[@]}"; do [[ $f == "$e" ]] && skip=1; done
    ((skip)) || format_list+=("$repo_root/$f")
done
log "clang-format: ${#format_list[@]} files"
if ! clang-format --dry-run -Werror "${format_list[@]}"; then
    failed+=(clang-format)
fi

# 2. cppcheck. --cppcheck-build-dir keeps whole-program analysis (ctu*) with -j; warning, style, performance and
# portability are the checks that find defects (unusedFunction cannot work on a library checked file by file).
log "cppcheck: ${#sources[@]} files"
t=$SECONDS
if ! cppcheck --project="$work/cppcheck.json" --cppcheck-build-dir="$work/cppcheck-build" -j"$jobs" \
    --enable=warning,style,performance,portability --inline-suppr --library=posix \
    --suppressions-list="$repo_root/.cppcheck-suppressions" \
    -DPROTOBUF_C_VERSION_NUMBER=1004001 -DPROTOBUF_C_MIN_COMPILER_VERSION=1000000 \
    --error-exitcode=1 --quiet --template='{file}:{line}:{column}: {severity}: {message} [{id}]\n{code}'; then
    failed+=(cppcheck)
fi
log "cppcheck: $((SECONDS - t)) s"

# 3. clang-tidy, one process per file, $jobs at a time; xargs exits non-zero if any of them does.
log "clang-tidy: ${#sources[@]} files, $jobs at a time"
t=$SECONDS
header_filter="^$repo_root/($(IFS='|' && echo "${PRODUCT_DIRS[*]}"))/.*\\.h\$"
if ! printf '%s\0' "${sources[@]}" |
    xargs -0 -P"$jobs" -n1 clang-tidy -p "$work/tidy" --quiet --header-filter="$header_filter" 2> >(
        grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter|^[0-9]+ warnings? treated as errors?$' >&2
    ); then
    failed+=(clang-tidy)
fi
log "clang-tidy: $((SECONDS - t)) s"

if ((${#failed[@]} > 0)); then
    log "FAILED: ${failed[*]} (total $((SECONDS - start)) s)"
    exit 1
fi
log "clean: clang-format, cppcheck, clang-tidy over ${#sources[@]} sources (total $((SECONDS - start)) s)"
