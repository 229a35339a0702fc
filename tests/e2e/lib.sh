# shellcheck shell=bash source-path=SCRIPTDIR
# The end-to-end harness: a small cluster made of network namespaces, sourced by tests/e2e/test_*.sh.
#
# Topology (every address in 198.18.0.0/15, nothing leaves these namespaces):
#
#   pod "a" ns            node ns (ip_forward=1, kube-proxy style DNAT)            pod "b" ns
#   eth0 198.18.1.2/30 -- v-a 198.18.1.1/30                 v-b 198.18.2.1/30 -- eth0 198.18.2.2/30
#                         v-ext 198.18.200.1/30 -- eth0 198.18.200.2/30 (external host, not in the mesh)
#   services: VIP 198.19.0.x:port  --DNAT in node PREROUTING-->  pod IP:port
#
# Routed veth pairs, one /30 per pod with the node as gateway (as Calico does), not a bridge: with a plain Linux
# bridge, a reply between two pods on the same bridge is switched without passing the node's IP layer, so the
# node's conntrack never undoes the VIP's DNAT (that needs br_netfilter). With routed pairs every packet between
# pods is forwarded by the node, so DNAT and its reverse always happen there.
#
# Names: namespaces are "rm<PID>-<name>" so parallel or leftover runs never clash; the node-side veth ends are
# created directly inside the node namespace ("v-<name>"), so nothing is added to the host's namespace.
#
# A meshed pod gets ringmesh-init's iptables rules (or, while that binary is not built, the same rules written
# with iptables here) and ringmesh-proxy running as UID 1337 with its stdout in a log file.
#
# Every process started through rm_bg is recorded by PID and stopped by PID in rm_teardown (an EXIT trap),
# which also scans every log of the test for private keys and tokens (lib/secrets.sh: any finding fails the test),
# then deletes every namespace made here and the temporary directory. Every wait is bounded.
#
# Environment: RM_BUILD_DIR, RM_SOURCE_DIR, RINGMESH_IO_BACKEND (io_uring|epoll|default) as ctest sets them;
# RM_PROXY_BIN overrides the proxy binary; RM_E2E_KEEP=1 keeps the temporary directory for inspection;
# RM_E2E_QUIET=1 silences the progress lines (failures are still printed); RM_E2E_CERT_TOOL=openssl makes the
# certificates with the openssl CLI even when ringmeshctl is built (same profile: P-256, CA:FALSE, keyUsage
# critical digitalSignature, extKeyUsage serverAuth+clientAuth, one URI SAN).
#
# Logs are JSON lines checked with jq (scripts/bootstrap.sh installs it), captures use tcpdump.

set -euo pipefail

RM_SOURCE_DIR=${RM_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
RM_BUILD_DIR=${RM_BUILD_DIR:-$RM_SOURCE_DIR/build}
RINGMESH_IO_BACKEND=${RINGMESH_IO_BACKEND:-default}
export RINGMESH_IO_BACKEND
RM_PROXY_BIN=${RM_PROXY_BIN:-$RM_BUILD_DIR/sidecar/ringmesh-proxy}
RM_INIT_BIN=${RM_INIT_BIN:-$RM_BUILD_DIR/sidecar/ringmesh-init}
RM_CTL_BIN=${RM_CTL_BIN:-$RM_BUILD_DIR/ctl/ringmeshctl}
RM_CONTROL_BIN=${RM_CONTROL_BIN:-$RM_BUILD_DIR/control/ringmesh-control}
RM_TOOLS=${RM_TOOLS:-$RM_BUILD_DIR/tests/tools}
RM_PROXY_UID=1337
RM_TRUST_DOMAIN=cluster.local
RM_NS_PREFIX="rm$$"
RM_NODE_NS="$RM_NS_PREFIX-node"
RM_TEST_NAME=$(basename "${0%.sh}")

RM_TMP=""
RM_NAMESPACES=()   # in creation order; deleted in reverse
RM_PID_LIST=()     # every PID started by rm_bg, in start order
declare -A RM_PID=()       # name -> PID
declare -A RM_POD_IP=()    # pod -> its address
declare -A RM_POD_IFACE=() # pod -> node-side veth name
declare -A RM_PROXY_LOG=() # pod -> log of the proxy started last
declare -A RM_PROXY_STARTS=()
RM_POD_COUNT=0
RM_EXT_COUNT=0
RM_RC=0

# ---------------------------------------------------------------------------------------------------------------
# messages, skipping, failing

rm_log() {
    [ "${RM_E2E_QUIET:-0}" = 1 ] && return 0
    printf '[%s %s] %s\n' "$RM_TEST_NAME" "$(date +%H:%M:%S.%3N)" "$*" >&2
}

# rm_skip MESSAGE...: the test cannot run on this machine (exit 77, which ctest counts as skipped). A script that is
# not a test (the demo) sets RM_SKIP_AS_ERROR to the words to print instead of "SKIP", and then exits 1.
rm_skip() {
    if [ -n "${RM_SKIP_AS_ERROR:-}" ]; then
        printf '%s: %s\n' "$RM_SKIP_AS_ERROR" "$*" >&2
        exit 1
    fi
    printf 'SKIP: %s\n' "$*" >&2
    exit 77
}

rm_fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

# rm_assert_eq ACTUAL EXPECTED WHAT
rm_assert_eq() {
    if [ "$1" != "$2" ]; then
        rm_fail "$3: got '$1', expected '$2'"
    fi
    rm_log "ok: $3 ($1)"
}

# rm_case NAME CMD...: runs one independent check (CMD, usually a function) in a subshell so that a failure is
# recorded and the next case still runs; rm_finish then fails the test if any case failed. A case must not start
# background processes (their PIDs would not reach the teardown).
RM_FAILED_CASES=()
rm_case() {
    local name=$1 rc
    shift
    rm_log "--- case: $name"
    set +e
    (
        set -e
        "$@"
    )
    rc=$?
    set -e
    if [ "$rc" != 0 ]; then
        RM_FAILED_CASES+=("$name")
        printf 'FAILED CASE: %s\n' "$name" >&2
    fi
}

# rm_finish: ends a test: fails when a case failed, else logs PASS
rm_finish() {
    if [ ${#RM_FAILED_CASES[@]} -gt 0 ]; then
        rm_fail "${#RM_FAILED_CASES[@]} failed case(s): ${RM_FAILED_CASES[*]}"
    fi
    rm_log "PASS"
}

# rm_assert_content FILE EXPECTED WHAT: FILE must hold exactly the string EXPECTED (trailing newlines included)
rm_assert_content() {
    local want
    want=$(mktemp "$RM_TMP/expected.XXXXXX")
    printf '%s' "$2" >"$want"
    cmp -s "$want" "$1" || rm_fail "$3: got $(jq -R -s . <"$1"), expected $(jq -R -s . <"$want")"
    rm -f "$want"
    rm_log "ok: $3"
}

# rm_now_ms: monotonic enough for the bounded waits and the timings the tests check
rm_now_ms() {
    local t
    t=$(date +%s%N)
    echo $((t / 1000000))
}

# ---------------------------------------------------------------------------------------------------------------
# requirements

rm_require_cmds() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || rm_skip "'$c' is not installed (scripts/bootstrap.sh installs it)"
    done
}

rm_require_root() {
    [ "$(id -u)" = 0 ] || rm_skip "needs root (network namespaces, iptables)"
}

# Creates a probe namespace, runs a command in it and adds a NAT rule there: skips when one of these fails, with
# the command that failed, its own error and what usually fixes it (a test machine without namespaces is a skip, not
# a failure; the demo prints the same text).
rm_require_netns() {
    local probe="$RM_NS_PREFIX-probe" err
    if ! err=$(ip netns add "$probe" 2>&1); then
        rm_skip "cannot create a network namespace: 'ip netns add' failed: ${err:-no message}." \
            "Run as root on a kernel with network namespaces (CONFIG_NET_NS), outside a container that forbids them."
    fi
    if ! err=$(ip netns exec "$probe" true 2>&1); then
        ip netns del "$probe" >/dev/null 2>&1 || true
        rm_skip "cannot enter a network namespace: 'ip netns exec' failed: ${err:-no message}." \
            "'ip netns exec' remounts /sys inside a private mount namespace, which needs / to be a mount point:" \
            "in a chroot, bind-mount the chroot's root onto itself (mount --bind DIR DIR) and mount /proc, /sys," \
            "/dev and /run inside it before entering."
    fi
    if ! err=$(ip netns exec "$probe" iptables -t nat -A OUTPUT -p tcp -d 198.18.0.1 -j RETURN 2>&1); then
        ip netns del "$probe" >/dev/null 2>&1 || true
        rm_skip "iptables' nat table is not usable inside a network namespace: ${err:-no message}." \
            "The kernel needs the nat table (modules nf_nat and iptable_nat, or nf_tables for iptables-nft);" \
            "try 'modprobe iptable_nat' on the host."
    fi
    ip netns del "$probe"
}

rm_require_tools() {
    local t
    for t in e2e_server e2e_client e2e_load pcap_tls_scan io_uring_probe; do
        [ -x "$RM_TOOLS/$t" ] || rm_fail "$RM_TOOLS/$t is not built (build the tree first: cmake --build $RM_BUILD_DIR)"
    done
}

# The proxy is required once its source exists; before that the tests skip instead of failing.
rm_require_proxy() {
    if [ ! -x "$RM_PROXY_BIN" ]; then
        if [ -e "$RM_SOURCE_DIR/sidecar/proxy_main.c" ]; then
            rm_fail "$RM_PROXY_BIN is not built although sidecar/proxy_main.c exists"
        fi
        rm_skip "ringmesh-proxy does not exist yet (no sidecar/proxy_main.c)"
    fi
}

# When a backend is requested, make sure the machine has it: the io_uring variant skips where the proxy's UID
# may not create an io_uring (kernel.io_uring_disabled, seccomp, old kernel).
rm_require_backend() {
    local why
    case "$RINGMESH_IO_BACKEND" in
    io_uring)
        local as=()
        [ "$(id -u)" = 0 ] && as=(setpriv --reuid "$RM_PROXY_UID" --regid "$RM_PROXY_UID" --clear-groups)
        if ! why=$("${as[@]}" "$RM_TOOLS/io_uring_probe" 2>&1); then
            rm_skip "io_uring is not available to the proxy's user here ($why)"
        fi
        ;;
    epoll | default | auto | "") ;;
    *) rm_fail "unknown RINGMESH_IO_BACKEND '$RINGMESH_IO_BACKEND'" ;;
    esac
}

# The proxy runs as UID 1337, which must be able to reach its binary: a tree cloned into root's home (mode 0700, as
# /root is on Debian) or any other directory closed to others is not. Then the proxy and the test tools are copied
# into the test's own directory (readable by all, deleted with it) and run from there.
rm__stage_binaries() {
    [ "$(id -u)" = 0 ] || return 0
    if setpriv --reuid "$RM_PROXY_UID" --regid "$RM_PROXY_UID" --clear-groups test -x "$RM_PROXY_BIN" 2>/dev/null &&
        setpriv --reuid "$RM_PROXY_UID" --regid "$RM_PROXY_UID" --clear-groups test -x "$RM_TOOLS/io_uring_probe" \
            2>/dev/null; then
        return 0
    fi
    mkdir -p "$RM_TMP/bin/tools"
    chmod 0755 "$RM_TMP/bin" "$RM_TMP/bin/tools"
    cp "$RM_PROXY_BIN" "$RM_TMP/bin/ringmesh-proxy"
    cp -r "$RM_TOOLS/." "$RM_TMP/bin/tools/"
    chmod -R a+rX "$RM_TMP/bin"
    rm_log "UID $RM_PROXY_UID cannot reach $RM_PROXY_BIN: running copies from $RM_TMP/bin"
    RM_PROXY_BIN=$RM_TMP/bin/ringmesh-proxy
    RM_TOOLS=$RM_TMP/bin/tools
}

# rm_setup: checks what every test needs, makes the temporary directory, installs the EXIT trap and creates the
# node namespace. rm_setup_no_netns: the same without namespaces (root not required).
rm_setup() {
    rm__setup 1
}

rm_setup_no_netns() {
    rm__setup 0
}

rm__setup() {
    local want_netns=$1
    rm_require_cmds jq openssl setpriv timeout sha256sum
    rm_require_tools
    if [ "$want_netns" = 1 ]; then
        rm_require_root
        rm_require_cmds ip iptables ss
        rm_require_netns
    fi
    rm_require_proxy

    RM_TMP=$(mktemp -d "/tmp/ringmesh-e2e.$RM_TEST_NAME.XXXXXX")
    chmod 0711 "$RM_TMP" # the proxy (UID 1337) must reach its own pod directory below
    mkdir -p "$RM_TMP/pki" "$RM_TMP/pods" "$RM_TMP/logs"
    trap rm_teardown EXIT
    trap 'exit 130' INT TERM HUP
    rm__stage_binaries
    rm_require_backend
    rm_log "temporary directory $RM_TMP, io backend '$RINGMESH_IO_BACKEND'"

    if [ "$want_netns" = 1 ]; then
        rm__ns_add "$RM_NODE_NS"
        ip netns exec "$RM_NODE_NS" sysctl -qw net.ipv4.ip_forward=1
    fi
}

# ---------------------------------------------------------------------------------------------------------------
# teardown

rm__dump_logs() {
    local f
    [ -n "$RM_TMP" ] && [ -d "$RM_TMP" ] || return 0
    while IFS= read -r f; do
        [ -s "$f" ] || continue
        printf '\n----- %s (last 40 lines) -----\n' "${f#"$RM_TMP"/}" >&2
        tail -n 40 "$f" >&2
    done < <(find "$RM_TMP/pods" "$RM_TMP/logs" -type f \( -name '*.log' -o -name '*.stderr' -o -name '*.status' \) \
        2>/dev/null | sort)
}

rm_teardown() {
    local rc=$? pid i deadline
    set +e
    trap - EXIT INT TERM HUP
    if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
        rm__dump_logs
    fi
    # the processes cases started (in their subshells) that are still the ones started
    if [ -n "$RM_TMP" ] && [ -f "$RM_TMP/started.pids" ]; then
        local start
        while read -r pid start; do
            [[ " ${RM_PID_LIST[*]} " == *" $pid "* ]] && continue
            [ "$start" != 0 ] && [ "$(rm__start_time "$pid")" = "$start" ] && RM_PID_LIST+=("$pid")
        done <"$RM_TMP/started.pids"
    fi
    # TERM every recorded process still running, give them 3 s, then KILL what is left.
    for ((i = ${#RM_PID_LIST[@]} - 1; i >= 0; i--)); do
        pid=${RM_PID_LIST[$i]}
        kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
    done
    deadline=$(($(rm_now_ms) + 3000))
    for pid in "${RM_PID_LIST[@]}"; do
        while kill -0 "$pid" 2>/dev/null && [ "$(rm_now_ms)" -lt "$deadline" ]; do
            sleep 0.05
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    for ((i = ${#RM_NAMESPACES[@]} - 1; i >= 0; i--)); do
        ip netns del "${RM_NAMESPACES[$i]}" 2>/dev/null
    done
    # every process has ended, so every log is complete: none may hold a sanitizer report (UndefinedBehaviorSanitizer
    # writes to stderr even when told a log_path, and a daemon's end is not watched) ...
    if [ -n "$RM_TMP" ] && [ -d "$RM_TMP" ] && [ "$rc" != 77 ]; then
        local reports
        reports=$(grep -rlE --include='*.log' --include='*.stderr' --include='*.err' \
            'runtime error: |ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)' "$RM_TMP" || true)
        if [ -n "$reports" ]; then
            # shellcheck disable=SC2086 # one file name a line, none with spaces (all under $RM_TMP)
            printf 'FAIL: sanitizer report in %s\n' $reports >&2
            # shellcheck disable=SC2086
            grep -hE -A8 'runtime error: |ERROR: (Address|Leak|UndefinedBehavior)Sanitizer' $reports | head -n 40 >&2
            rc=1
        fi
    fi
    # ... nor a private key or a token (lib/secrets.sh)
    if [ -n "$RM_TMP" ] && [ -d "$RM_TMP" ] && [ "$rc" != 77 ]; then
        local findings
        if ! findings=$(rm_secrets_scan "$RM_TMP"); then
            printf 'FAIL: secret material in the logs of this test:\n%s\n' "$findings" >&2
            rc=1
        fi
    fi
    if [ -n "$RM_TMP" ] && [ -d "$RM_TMP" ]; then
        if [ "${RM_E2E_KEEP:-0}" = 1 ]; then
            printf 'kept %s\n' "$RM_TMP" >&2
        else
            rm -rf "$RM_TMP"
        fi
    fi
    exit "$rc"
}

# ---------------------------------------------------------------------------------------------------------------
# the rest of the harness, one file per subject in tests/e2e/lib/, in this order

RM_E2E_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib"
# shellcheck source=lib/netns.sh
source "$RM_E2E_LIB_DIR/netns.sh"     # namespaces, pods, services
# shellcheck source=lib/certs.sh
source "$RM_E2E_LIB_DIR/certs.sh"     # CA and SVIDs
# shellcheck source=lib/control.sh
source "$RM_E2E_LIB_DIR/control.sh"   # the control plane
# shellcheck source=lib/process.sh
source "$RM_E2E_LIB_DIR/process.sh"   # background processes, by PID
# shellcheck source=lib/logs.sh
source "$RM_E2E_LIB_DIR/logs.sh"      # JSON-lines logs
# shellcheck source=lib/programs.sh
source "$RM_E2E_LIB_DIR/programs.sh"  # servers, clients, captures
# shellcheck source=lib/proxy.sh
source "$RM_E2E_LIB_DIR/proxy.sh"     # meshed pods and the proxy
# shellcheck source=lib/load.sh
source "$RM_E2E_LIB_DIR/load.sh"      # load (e2e_load) and what a process holds
# shellcheck source=lib/secrets.sh
source "$RM_E2E_LIB_DIR/secrets.sh"   # no private key or token in any log (checked at teardown)
