#!/usr/bin/env bash
# The image (Dockerfile at the root), checked without a container engine (none runs here):
#   - its build stage is Debian 12 and runs the bootstrap script CI runs (.ci/run -> scripts/test.sh ->
#     scripts/bootstrap.sh), in --build-only mode, and builds the four binaries;
#   - its runtime stage is Debian 12 slim, installs scripts/runtime-packages.txt, copies the four binaries to
#     /usr/local/bin and sets no USER (each pod sets its own: root for ringmesh-init, 1337 for the proxy);
#   - every shared library each built binary loads (ldd) belongs to a Debian package (dpkg -S) of that list or one
#     they depend on, and so do the programs ringmesh-init runs (iptables-save/-restore, ip6tables-save/-restore);
#   - that check fails when a package is left out of the list;
#   - bootstrap --build-only installs the build packages and wolfSSL only.
# shellcheck disable=SC2016 # the patterns below match shell text literally
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
rm_require_cmds jq ldd dpkg-query python3

src=$RM_SOURCE_DIR
dir=$(mktemp -d /tmp/ringmesh-k8s-dockerfile.XXXXXX)
trap 'rm -rf "$dir"' EXIT
check() { python3 "$src/tests/tools/image_check.py" "$@"; }
bins=("$RM_CONTROL_BIN" "$RM_PROXY_BIN" "$RM_INIT_BIN" "$RM_CTL_BIN")
for b in "${bins[@]}"; do
    [ -x "$b" ] || rm_fail "$b is missing: build the project first"
done

check dockerfile "$src/Dockerfile" >"$dir/stages.json"
stage() { jq -r "$1" "$dir/stages.json"; }
rm_assert_eq "$(stage 'length')" 2 "two stages"
rm_assert_eq "$(stage '.[0] | "\(.from) \(.as)"')" "debian:bookworm build" "build stage: Debian 12"
rm_assert_eq "$(stage '.[-1].from')" "debian:bookworm-slim" "runtime stage: Debian 12 slim"

# The build stage runs bootstrap before anything else is built, and CI runs the same script.
run=$(stage '[.[0].instructions[] | select(.[0] == "RUN") | .[1]] | .[0]')
rm_assert_eq "$run" "bash scripts/bootstrap.sh --build-only /src/build" "the build stage's first RUN is bootstrap"
grep -q '^exec bash scripts/test.sh' "$src/.ci/run" || rm_fail ".ci/run no longer runs scripts/test.sh"
grep -q '^bash scripts/bootstrap.sh "\$build_dir"$' "$src/scripts/test.sh" || rm_fail "scripts/test.sh no longer runs bootstrap"
rm_log "ok: CI runs scripts/bootstrap.sh (.ci/run -> scripts/test.sh); the image's build stage runs it too"
build=$(stage '[.[0].instructions[] | select(.[0] == "RUN") | .[1]] | .[1]')
for target in ringmesh-control ringmesh-proxy ringmesh-init ringmeshctl; do
    grep -q -- "--target .*\b$target\b" <<<"$build" || rm_fail "the build stage does not build $target: $build"
done
grep -q -- '-DRINGMESH_SYSTEM_WOLFSSL=OFF' <<<"$build" || rm_fail "the image must link the accelerated wolfSSL: $build"
rm_log "ok: the build stage builds the four binaries against the accelerated wolfSSL"

# The build context leaves out build directories: the stage's own build/ (with the wolfSSL bootstrap built) is not
# overwritten by the host's.
grep -qx 'build\*/' "$src/.dockerignore" || rm_fail ".dockerignore does not leave out build*/"

# The runtime stage: the package list, the binaries, no USER.
rm_assert_eq "$(stage '[.[-1].instructions[] | select(.[0] == "COPY" and (.[1] | test("runtime-packages.txt")))] | length')" 1 \
    "the runtime stage copies scripts/runtime-packages.txt"
stage '[.[-1].instructions[] | select(.[0] == "RUN") | .[1]] | join(" ")' | grep -q 'runtime-packages.txt .*apt-get install' ||
    rm_fail "the runtime stage does not install scripts/runtime-packages.txt"
copy=$(stage '[.[-1].instructions[] | select(.[0] == "COPY" and (.[1] | startswith("--from=build")))] | .[0][1]')
for b in "${bins[@]}"; do
    grep -q "/out/${b##*/} " <<<"$copy" || rm_fail "the runtime stage does not copy ${b##*/}: $copy"
done
[[ $copy == *" /usr/local/bin/" ]] || rm_fail "the binaries do not go to /usr/local/bin: $copy"
rm_assert_eq "$(stage '[.[-1].instructions[] | select(.[0] == "USER")] | length')" 0 \
    "no USER in the runtime stage (ringmesh-init needs root; the pods set the users)"

# Shared libraries and programs -> Debian packages -> the runtime list.
programs=(--program iptables-save --program iptables-restore --program ip6tables-save --program ip6tables-restore)
bin_args=()
for b in "${bins[@]}"; do bin_args+=(--binary "$b"); done
out=$(check libraries --packages "$src/scripts/runtime-packages.txt" "${bin_args[@]}" "${programs[@]}") ||
    rm_fail "scripts/runtime-packages.txt lacks what the binaries load: $(grep -v '^ok' <<<"$out")"
rm_log "ok: $(grep -c '^ok' <<<"$out") shared libraries and programs, each from a package of scripts/runtime-packages.txt" \
    "or one they depend on ($(awk '{print $NF}' <<<"$out" | sort -u | wc -l) packages)"
grep -q 'ringmesh-control: libgrpc.so.29 libgrpc29' <<<"$out" || rm_fail "the check did not see the control plane's gRPC: $out"

# The same check refuses a list without libcurl4 (what the control plane's Kubernetes client loads) or iptables.
grep -v '^libcurl4$' "$src/scripts/runtime-packages.txt" >"$dir/no-curl.txt"
if out=$(check libraries --packages "$dir/no-curl.txt" "${bin_args[@]}"); then
    rm_fail "a package list without libcurl4 was accepted"
fi
grep -q '^missing ringmesh-control: libcurl.so.4 libcurl4$' <<<"$out" || rm_fail "libcurl4 not named: $out"
grep -v '^iptables$' "$src/scripts/runtime-packages.txt" >"$dir/no-iptables.txt"
if out=$(check libraries --packages "$dir/no-iptables.txt" "${programs[@]}"); then
    rm_fail "a package list without iptables was accepted"
fi
grep -q '^missing program iptables-restore iptables$' <<<"$out" || rm_fail "iptables not named: $out"
rm_log "ok: a list without libcurl4, or without iptables, is refused, naming the library or program"

# bootstrap --build-only: the build packages and wolfSSL, not the test packages or the npm tools.
bash -n "$src/scripts/bootstrap.sh"
sed -n '/^if ((build_only)); then/,/^fi/p' "$src/scripts/bootstrap.sh" >"$dir/selection.sh"
grep -q 'all_packages=("${BUILD_PACKAGES\[@\]}" "${WOLFSSL_BUILD_PACKAGES\[@\]}")$' "$dir/selection.sh" ||
    rm_fail "--build-only does not select the build packages alone: $(cat "$dir/selection.sh")"
# the npm test tools are scripts/test.sh's (the README's test command), never bootstrap's, so neither the image's
# build stage nor the demo fetches them
! grep -q 'scripts/test-tools.sh"* "\$build_dir' "$src/scripts/bootstrap.sh" ||
    rm_fail "bootstrap installs the npm test tools"
grep -q '^bash scripts/test-tools.sh "\$build_dir"' "$src/scripts/test.sh" ||
    rm_fail "scripts/test.sh does not install the npm test tools"
if out=$(bash "$src/scripts/bootstrap.sh" --bogus 2>&1); then
    rm_fail "bootstrap accepted --bogus"
fi
grep -q 'usage: .*\[--build-only\] \[BUILD_DIR\]' <<<"$out" || rm_fail "bootstrap --bogus: no usage message: $out"
# On this machine everything is installed, so --build-only only checks and returns (no apt-get, no npm). It is run
# on a copy of the accelerated wolfSSL this build links, so that nothing outside the test's directory is touched.
prefix=$(sed -n 's/^RINGMESH_WOLFSSL_PREFIX:PATH=//p' "$RM_BUILD_DIR/CMakeCache.txt" 2>/dev/null) || prefix=""
if [ -n "$prefix" ] && [ -f "$prefix/ringmesh-wolfssl.stamp" ]; then
    mkdir -p "$dir/build/deps"
    cp -r "$prefix" "$dir/build/deps/wolfssl"
    out=$(bash "$src/scripts/bootstrap.sh" --build-only "$dir/build" 2>&1) || rm_fail "bootstrap --build-only failed: $out"
    grep -q 'bootstrap: all [0-9]* packages are installed' <<<"$out" || rm_fail "bootstrap --build-only: $out"
    grep -q 'up to date' <<<"$out" || rm_fail "bootstrap --build-only did not check wolfSSL: $out"
    ! grep -q 'test-tools' <<<"$out" || rm_fail "bootstrap --build-only ran the npm test tools: $out"
    [ ! -e "$dir/build/tools" ] || rm_fail "bootstrap --build-only installed $dir/build/tools"
    rm_log "ok: bootstrap --build-only checks $(grep -o 'all [0-9]* packages' <<<"$out") and wolfSSL, not the test tools"
else
    rm_log "this build does not link the accelerated wolfSSL (RINGMESH_SYSTEM_WOLFSSL=ON): bootstrap --build-only not run"
fi
rm_log PASS
