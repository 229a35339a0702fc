# shellcheck shell=bash
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
# which also deletes every namespace made here and the temporary directory. Every wait is bounded.
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
    for t in e2e_server e2e_client pcap_tls_scan io_uring_probe; do
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
# namespaces, pods, services

rm__ns_add() {
    ip netns add "$1"
    RM_NAMESPACES+=("$1")
    ip -n "$1" link set lo up
}

# rm_ns NAME: the namespace name of pod NAME ("node" is the node)
rm_ns() {
    echo "$RM_NS_PREFIX-$1"
}

# rm_exec POD CMD...: runs CMD inside pod POD's namespace (as root)
rm_exec() {
    local pod=$1
    shift
    ip netns exec "$(rm_ns "$pod")" "$@"
}

# rm_loopback_place N: where a test that needs only loopback runs: a private network namespace "lo" when one can be
# made (root), else the host's loopback. Sets POD (lo, or - for the host) and RM_PORTS to N consecutive ports: from
# 20000 in the namespace, else ports nobody listens on now, from a range outside the usual ephemeral ports.
rm_loopback_place() {
    local n=$1 base=20000 i
    POD=-
    if [ "$(id -u)" = 0 ] && ip netns add "$RM_NS_PREFIX-probe" 2>/dev/null; then
        ip netns del "$RM_NS_PREFIX-probe"
        rm__ns_add "$(rm_ns lo)"
        POD=lo
        rm_log "running in network namespace $(rm_ns lo)"
    else
        for _ in $(seq 1 50); do
            base=$((20000 + RANDOM % 10000))
            [ -z "$(ss -Hltn "( sport >= :$base and sport <= :$((base + n - 1)) )" 2>/dev/null)" ] && break
        done
        rm_log "running on the host's loopback, ports $base-$((base + n - 1))"
    fi
    RM_PORTS=()
    for ((i = 0; i < n; i++)); do RM_PORTS+=($((base + i))); done
}

# rm_metric PORT SERIES: the value of SERIES (name{labels} as /metrics writes it) on the admin port PORT where
# rm_loopback_place put the test; nothing when the series is absent
rm_metric() {
    rm_run curl -s -m 5 "http://127.0.0.1:$1/metrics" | awk -v k="$2" '$1 == k {print $2}'
}

# rm_run CMD...: runs CMD where rm_loopback_place put the test (POD)
rm_run() {
    if [ "$POD" = - ]; then "$@"; else rm_exec "$POD" "$@"; fi
}

# rm_loopback_pair APP IN UP ADMIN_FRONTEND ADMIN_ORDERS: an mTLS pair of explicit listeners where rm_loopback_place
# put the test: proxy "frontend" (an upstream listener on UP to IN, expecting spiffe://cluster.local/ns/shop/sa/orders)
# and proxy "orders" (a STRICT inbound listener on IN to the app on APP), their SVIDs from a new CA "main"; an admin
# port of "-" turns that proxy's admin off; RM_ORDERS_YAML, when set, is added to the end of "orders"'s configuration.
# Returns once both listen and use the requested I/O backend.
rm_loopback_pair() {
    local app=$1 in=$2 up=$3 name line
    local -A admin=([frontend]=$4 [orders]=$5)
    rm_ca_create main cluster.local
    rm_svid_issue frontend main "spiffe://cluster.local/ns/shop/sa/frontend"
    rm_svid_issue orders main "spiffe://cluster.local/ns/shop/sa/orders"
    for name in frontend orders; do
        {
            printf 'tls: {certFile: %s, keyFile: %s, bundleFile: %s}\n' "$RM_TMP/pki/$name.pem" "$RM_TMP/pki/$name.key" \
                "$RM_TMP/pki/ca-main.pem"
            printf 'outbound: {enabled: false}\ninbound: {enabled: false}\n'
            if [ "${admin[$name]}" = - ]; then
                printf 'admin: {enabled: false}\n'
            else
                printf 'admin: {listen: "127.0.0.1:%s"}\n' "${admin[$name]}"
            fi
            printf 'listeners:\n'
            if [ "$name" = orders ]; then
                printf '  - {name: in, type: inbound, listen: "127.0.0.1:%s", target: "127.0.0.1:%s", mode: STRICT}\n' \
                    "$in" "$app"
                printf '%s\n' "${RM_ORDERS_YAML:-}"
            else
                printf '  - {name: up, type: upstream, listen: "127.0.0.1:%s", target: "127.0.0.1:%s",' "$up" "$in"
                printf ' identities: ["spiffe://cluster.local/ns/shop/sa/orders"]}\n'
            fi
        } >"$RM_TMP/$name.yaml"
    done
    for name in orders frontend; do
        rm_bg "proxy-$name" "$POD" "$RM_TMP/logs/proxy-$name.log" "$RM_PROXY_BIN" --config "$RM_TMP/$name.yaml"
        line=$(rm_wait_log "$RM_TMP/logs/proxy-$name.log" '.event == "proxy_started"' 10) ||
            rm_fail "proxy $name did not start: $(cat "$RM_TMP/logs/proxy-$name.log.stderr")"
        rm_check_backend "$line" "proxy $name" >/dev/null
    done
    rm_wait_port "$POD" "$in" 10 proxy-orders
    rm_wait_port "$POD" "$up" 10 proxy-frontend
}

# rm__attach NAME SUBNET_OCTET: namespace NAME joined to the node by a routed /30 (198.18.<octet>.0/30)
rm__attach() {
    local name=$1 octet=$2 ns
    ns=$(rm_ns "$name")
    [[ "$name" =~ ^[a-z0-9]{1,12}$ ]] || rm_fail "pod name '$name' must be 1-12 characters [a-z0-9]"
    rm__ns_add "$ns"
    ip link add "v-$name" netns "$RM_NODE_NS" type veth peer name eth0 netns "$ns"
    ip -n "$RM_NODE_NS" addr add "198.18.$octet.1/30" dev "v-$name"
    ip -n "$RM_NODE_NS" link set "v-$name" up
    ip -n "$ns" addr add "198.18.$octet.2/30" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "198.18.$octet.1"
    RM_POD_IP[$name]="198.18.$octet.2"
    RM_POD_IFACE[$name]="v-$name"
    mkdir -p "$RM_TMP/pods/$name"
}

# rm_pod_create NAME: a pod namespace (198.18.N.2, N = 1, 2, ... in creation order)
rm_pod_create() {
    RM_POD_COUNT=$((RM_POD_COUNT + 1))
    [ $RM_POD_COUNT -lt 200 ] || rm_fail "too many pods"
    rm__attach "$1" "$RM_POD_COUNT"
    rm_log "pod $1: $(rm_ns "$1") ${RM_POD_IP[$1]}"
}

# rm_external_create NAME: a host outside the mesh (198.18.200+N.2); same plumbing, never gets a proxy
rm_external_create() {
    RM_EXT_COUNT=$((RM_EXT_COUNT + 1))
    rm__attach "$1" $((199 + RM_EXT_COUNT))
    rm_log "external host $1: $(rm_ns "$1") ${RM_POD_IP[$1]}"
}

# rm_service VIP:PORT POD:PORT: kube-proxy style DNAT of a service VIP to a pod, in the node namespace
rm_service() {
    local vip=${1%:*} vport=${1##*:} pod=${2%:*} tport=${2##*:}
    [ -n "${RM_POD_IP[$pod]:-}" ] || rm_fail "rm_service: unknown pod $pod"
    ip netns exec "$RM_NODE_NS" iptables -t nat -A PREROUTING -d "$vip/32" -p tcp --dport "$vport" \
        -j DNAT --to-destination "${RM_POD_IP[$pod]}:$tport"
    rm_log "service $vip:$vport -> $pod ${RM_POD_IP[$pod]}:$tport"
}

# ---------------------------------------------------------------------------------------------------------------
# certificates: ringmeshctl svid issue when it is built, else the openssl CLI with the same profile

rm__use_ctl() {
    [ "${RM_E2E_CERT_TOOL:-}" = openssl ] && return 1
    [ -x "$RM_CTL_BIN" ] && "$RM_CTL_BIN" svid issue --help >/dev/null 2>&1
}

# rm_ca_create NAME TRUST_DOMAIN: a root CA in $RM_TMP/pki/ca-NAME.{pem,key}
rm_ca_create() {
    local name=$1 td=$2 dir="$RM_TMP/pki"
    if rm__use_ctl; then
        "$RM_CTL_BIN" svid issue --ca --trust-domain "$td" --cert "$dir/ca-$name.pem" --key "$dir/ca-$name.key" \
            --ttl 24h >"$dir/ca-$name.ctl.log" 2>&1 || {
            cat "$dir/ca-$name.ctl.log" >&2
            rm_fail "ringmeshctl svid issue --ca failed"
        }
    else
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca-$name.key" 2>/dev/null
        openssl req -x509 -new -key "$dir/ca-$name.key" -sha256 -days 1 -subj "/O=ringmesh e2e/CN=$td root $name" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -addext "subjectAltName=URI:spiffe://$td" -addext "subjectKeyIdentifier=hash" \
            -out "$dir/ca-$name.pem" 2>/dev/null
    fi
}

# rm_svid_issue NAME CA SPIFFE_ID [TTL_SECONDS [BACKDATE_SECONDS]]: an SVID in $RM_TMP/pki/NAME.{pem,key}.
# Defaults: valid for an hour, backdated 5 minutes. TTL 3600 with BACKDATE 7200 gives a cert that expired an
# hour ago.
rm_svid_issue() {
    local name=$1 ca=$2 id=$3 ttl=${4:-3600} backdate=${5:-300} dir="$RM_TMP/pki" now
    if rm__use_ctl; then
        "$RM_CTL_BIN" svid issue --ca-cert "$dir/ca-$ca.pem" --ca-key "$dir/ca-$ca.key" --id "$id" \
            --cert "$dir/$name.pem" --key "$dir/$name.key" --ttl "${ttl}s" --backdate "${backdate}s" \
            >"$dir/$name.ctl.log" 2>&1 || {
            cat "$dir/$name.ctl.log" >&2
            rm_fail "ringmeshctl svid issue --id $id failed"
        }
    else
        now=$(date -u +%s)
        [ -f "$dir/ca.cnf" ] || cat >"$dir/ca.cnf" <<'EOF'
[ca]
default_ca = e2e_ca
[e2e_ca]
database = $ENV::RM_CA_DIR/index.txt
new_certs_dir = $ENV::RM_CA_DIR
serial = $ENV::RM_CA_DIR/serial
default_md = sha256
policy = e2e_policy
unique_subject = no
copy_extensions = none
[e2e_policy]
organizationName = optional
commonName = optional
[svid]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = URI:$ENV::RM_SVID_ID
authorityKeyIdentifier = keyid
EOF
        mkdir -p "$dir/ca-$ca.db"
        touch "$dir/ca-$ca.db/index.txt"
        openssl rand -hex 16 >"$dir/ca-$ca.db/serial"
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$name.key" 2>/dev/null
        openssl req -new -key "$dir/$name.key" -subj "/O=ringmesh e2e" -out "$dir/$name.csr" 2>/dev/null
        RM_CA_DIR="$dir/ca-$ca.db" RM_SVID_ID="$id" openssl ca -batch -notext -config "$dir/ca.cnf" \
            -extensions svid -cert "$dir/ca-$ca.pem" -keyfile "$dir/ca-$ca.key" -in "$dir/$name.csr" \
            -out "$dir/$name.pem" -startdate "$(date -u -d "@$((now - backdate))" +%Y%m%d%H%M%SZ)" \
            -enddate "$(date -u -d "@$((now - backdate + ttl))" +%Y%m%d%H%M%SZ)" \
            >"$dir/$name.openssl.log" 2>&1 || {
            cat "$dir/$name.openssl.log" >&2
            rm_fail "openssl ca failed for $id"
        }
    fi
    chmod 0600 "$dir/$name.key"
}

# ---------------------------------------------------------------------------------------------------------------
# the control plane

# rm_control_init: a token signing key and its JWKS ($RM_TMP/control/token-key.pem, jwks.json) and an empty mesh
# configuration directory ($RM_TMP/control/mesh) with a MeshConfig for $RM_TRUST_DOMAIN. Workloads no policy
# selects are allowed unless RM_DEFAULT_ACTION=DENY (the mesh's own default): tests of other features are not
# about authorization.
rm_control_init() {
    [ -x "$RM_CONTROL_BIN" ] || rm_skip "ringmesh-control is not built ($RM_CONTROL_BIN)"
    [ -x "$RM_CTL_BIN" ] || rm_skip "ringmeshctl is not built ($RM_CTL_BIN)"
    mkdir -p "$RM_TMP/control/mesh" "$RM_TMP/control/state"
    "$RM_CTL_BIN" token keygen --key "$RM_TMP/control/token-key.pem" --jwks "$RM_TMP/control/jwks.json" --kid e2e \
        >"$RM_TMP/control/keygen.log" 2>&1 || {
        cat "$RM_TMP/control/keygen.log" >&2
        rm_fail "ringmeshctl token keygen failed"
    }
    cat >"$RM_TMP/control/mesh/mesh.yaml" <<EOF
apiVersion: ringmesh.io/v1alpha1
kind: MeshConfig
metadata: {name: mesh}
spec:
  trustDomain: $RM_TRUST_DOMAIN
  mtls: {mode: STRICT}
  svidTTL: 1h
  authorization: {defaultAction: ${RM_DEFAULT_ACTION:-ALLOW}}
EOF
}

# rm_mesh_service FILE NAME NAMESPACE ADDRESS PORT SERVICE_ACCOUNT: writes a one-address, one-port, in-mesh Service
# served by SERVICE_ACCOUNT into the control plane's configuration directory as FILE
rm_mesh_service() {
    cat >"$RM_TMP/control/mesh/$1" <<EOF
apiVersion: ringmesh.io/v1alpha1
kind: Service
metadata: {name: $2, namespace: $3}
spec:
  addresses: [$4]
  ports: [$5]
  serviceAccounts: [$6]
EOF
}

# rm_token NAMESPACE SA OUTFILE [ringmeshctl token mint args...]: a projected-ServiceAccount-style token
rm_token() {
    local ns=$1 sa=$2 out=$3
    shift 3
    "$RM_CTL_BIN" token mint --key "$RM_TMP/control/token-key.pem" --kid e2e --namespace "$ns" \
        --service-account "$sa" "$@" >"$out" 2>"$out.stderr" || {
        cat "$out.stderr" >&2
        rm_fail "ringmeshctl token mint failed"
    }
}

# rm_service_move VIP:PORT POD:PORT: points the service at another pod (as kube-proxy does when endpoints change):
# removes the VIP's DNAT rules and adds the new one. Connections already tracked keep their old destination.
rm_service_move() {
    local vip=${1%:*} vport=${1##*:} rule
    while rule=$(ip netns exec "$RM_NODE_NS" iptables -t nat -S PREROUTING |
        grep -F -- "-d $vip/32 -p tcp -m tcp --dport $vport " | head -n 1) && [ -n "$rule" ]; do
        # shellcheck disable=SC2086 # the rule is a list of iptables words
        ip netns exec "$RM_NODE_NS" iptables -t nat -D ${rule#-A }
    done
    rm_service "$@"
}

# rm_pod_gateway POD: the node-side address of POD's veth (where a control plane in the node namespace listens)
rm_pod_gateway() {
    echo "${RM_POD_IP[$1]%.2}.1"
}

# rm_wait_ready POD [TIMEOUT_S]: waits until POD's proxy logs proxy_ready (SVID and configuration in place)
rm_wait_ready() {
    rm_expect_log "$(rm_proxy_log "$1")" '.event == "proxy_ready"' "the proxy in pod $1 is ready" "${2:-20}"
}

# rm_control_start NAME POD|- LISTEN [ringmesh-control args...]: starts the control plane (log
# $RM_TMP/logs/control-NAME.log) and waits for control_started
rm_control_start() {
    local name=$1 pod=$2 listen=$3
    shift 3
    rm_bg "control-$name" "$pod" "$RM_TMP/logs/control-$name.log" "$RM_CONTROL_BIN" --listen "$listen" \
        --config-dir "$RM_TMP/control/mesh" --state-dir "$RM_TMP/control/state" --jwks "$RM_TMP/control/jwks.json" \
        --log-level debug "$@"
    rm_wait_log "$RM_TMP/logs/control-$name.log" '.event == "control_started"' 15 >/dev/null || {
        cat "$RM_TMP/logs/control-$name.log" "$RM_TMP/logs/control-$name.log.stderr" >&2 || true
        rm_fail "ringmesh-control $name did not start"
    }
}

# ---------------------------------------------------------------------------------------------------------------
# processes

# rm_bg NAME POD|- LOGFILE CMD...: starts CMD in the background (inside POD's namespace unless POD is "-"), stdout
# to LOGFILE and stderr to LOGFILE.stderr, and records its PID as RM_PID[NAME]. `ip netns exec` and setpriv both
# exec, so the recorded PID is the command's own.
rm_bg() {
    local name=$1 pod=$2 log=$3
    shift 3
    if [ "$pod" = - ]; then
        "$@" >"$log" 2>"$log.stderr" &
    else
        ip netns exec "$(rm_ns "$pod")" "$@" >"$log" 2>"$log.stderr" &
    fi
    RM_PID[$name]=$!
    RM_PID_LIST+=("$!")
}

# rm_alive NAME: true while the process recorded as NAME runs
rm_alive() {
    kill -0 "${RM_PID[$1]}" 2>/dev/null
}

# rm_wait_exit NAME TIMEOUT_S: waits for process NAME to exit (bounded); RM_RC = its exit status, or fails
rm_wait_exit() {
    local pid=${RM_PID[$1]} deadline
    deadline=$(($(rm_now_ms) + $2 * 1000))
    while kill -0 "$pid" 2>/dev/null; do
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "$1 (PID $pid) did not exit within $2 s"
        sleep 0.05
    done
    RM_RC=0
    wait "$pid" || RM_RC=$?
}

# rm_stop NAME [SIGNAL]: signals process NAME by its PID (TERM by default) and waits up to 10 s; RM_RC = status
rm_stop() {
    kill "-${2:-TERM}" "${RM_PID[$1]}" 2>/dev/null || true
    rm_wait_exit "$1" 10
}

# rm_signal NAME SIGNAL: sends SIGNAL to process NAME by its PID
rm_signal() {
    kill "-$2" "${RM_PID[$1]}"
}

# rm_wait_file PATH NAME [TIMEOUT_S]: waits (bounded) until PATH exists; fails early when process NAME has exited
rm_wait_file() {
    local deadline
    deadline=$(($(rm_now_ms) + ${3:-10} * 1000))
    until [ -e "$1" ]; do
        rm_alive "$2" || rm_fail "$2 exited before creating $1"
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "$1 did not appear within ${3:-10} s"
        sleep 0.05
    done
}

# rm_wait_port POD PORT [TIMEOUT_S [NAME]]: waits until something listens on TCP PORT in POD ("-" = this
# namespace); with NAME, fails at once when process NAME exits meanwhile
rm_wait_port() {
    local pod=$1 port=$2 watch=${4:-} deadline out
    deadline=$(($(rm_now_ms) + ${3:-10} * 1000))
    while :; do
        if [ "$pod" = - ]; then
            out=$(ss -Hltn "sport = :$port" 2>/dev/null || true)
        else
            out=$(rm_exec "$pod" ss -Hltn "sport = :$port" 2>/dev/null || true)
        fi
        [ -n "$out" ] && return 0
        if [ -n "$watch" ] && ! rm_alive "$watch"; then
            rm_fail "$watch exited before listening on port $port in $pod"
        fi
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "nothing listens on port $port in $pod after ${3:-10} s"
        sleep 0.05
    done
}

# ---------------------------------------------------------------------------------------------------------------
# JSON-lines logs (jq; lines that are not JSON are ignored)

# jq definitions available in every FILTER below:
#   addr  an "ip:port" string with an IPv4-mapped IPv6 address ("[::ffff:198.18.1.2]:40000") written as IPv4
#         ("198.18.1.2:40000"): a dual-stack listener sees IPv4 peers in the mapped form.
RM_JQ_DEFS='def addr: if type == "string" then sub("^\\[::ffff:(?<ip>[0-9.]+)\\]"; "\(.ip)") else . end;'

# rm_log_select FILE FILTER: prints the lines of FILE for which the jq boolean FILTER holds, one compact object each
rm_log_select() {
    [ -f "$1" ] || return 0
    jq -R -c "$RM_JQ_DEFS fromjson? | objects | select($2)" "$1" || true
}

# rm_log_count FILE FILTER
rm_log_count() {
    rm_log_select "$1" "$2" | wc -l | tr -d ' '
}

# rm_wait_log FILE FILTER [TIMEOUT_S]: waits (bounded) for a line matching FILTER; prints the first; returns 1 on
# timeout
rm_wait_log() {
    local file=$1 filter=$2 deadline line
    deadline=$(($(rm_now_ms) + ${3:-10} * 1000))
    while :; do
        line=$(rm_log_select "$file" "$filter" | head -n 1)
        if [ -n "$line" ]; then
            printf '%s\n' "$line"
            return 0
        fi
        [ "$(rm_now_ms)" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

# rm_expect_log FILE FILTER WHAT [TIMEOUT_S]: like rm_wait_log (default 5 s), but fails the test with WHAT on
# timeout. The matching line is left in RM_LINE.
rm_expect_log() {
    RM_LINE=$(rm_wait_log "$1" "$2" "${4:-5}") || rm_fail "$3: no line matching '$2' in ${1#"$RM_TMP"/}"
    rm_log "ok: $3: $RM_LINE"
}

# rm_expect_log_nth FILE FILTER N WHAT: waits (10 s) for the Nth line matching FILTER, which is left in RM_LINE
rm_expect_log_nth() {
    local deadline=$(($(rm_now_ms) + 10000))
    until [ "$(rm_log_count "$1" "$2")" -ge "$3" ]; do
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "$4: no line number $3 matching '$2' in ${1#"$RM_TMP"/}"
        sleep 0.05
    done
    RM_LINE=$(rm_log_select "$1" "$2" | sed -n "${3}p")
    rm_log "ok: $4: $RM_LINE"
}

# rm_expect_no_log FILE FILTER WHAT: fails if FILE already has a line matching FILTER
rm_expect_no_log() {
    local line
    line=$(rm_log_select "$1" "$2" | head -n 1)
    [ -z "$line" ] || rm_fail "$3: unexpected line in ${1#"$RM_TMP"/}: $line"
    rm_log "ok: $3"
}

# rm_json LINE FILTER: evaluates a jq expression on one JSON line (raw output)
rm_json() {
    printf '%s\n' "$1" | jq -r "$2"
}

# ---------------------------------------------------------------------------------------------------------------
# test programs

# rm_server NAME POD LISTEN MODE [e2e_server args...]: starts e2e_server in POD and waits until it listens. Its log
# (one JSON line per accept/close) is $RM_TMP/logs/server-NAME.log.
rm_server() {
    local name=$1 pod=$2 listen=$3 mode=$4
    shift 4
    rm_bg "server-$name" "$pod" "$RM_TMP/logs/server-$name.log" "$RM_TOOLS/e2e_server" --listen "$listen" \
        --mode "$mode" "$@"
    rm_wait_port "$pod" "${listen##*:}" 10 "server-$name"
}

# rm_server_log NAME: the path of server NAME's log
rm_server_log() {
    echo "$RM_TMP/logs/server-$1.log"
}

# rm_client NAME POD e2e_client-args...: runs e2e_client in POD ("-" = this namespace) in the foreground. Received
# bytes go to $RM_TMP/logs/client-NAME.out, the status line to client-NAME.status; RM_RC = its exit status (0 ok,
# 2 refused, 3 reset, 4 timeout, 5 early EOF). The client bounds every step itself; `timeout` is a second bound.
rm_client() {
    local name=$1 pod=$2
    local -a in_pod=()
    shift 2
    [ "$pod" = - ] || in_pod=(ip netns exec "$(rm_ns "$pod")")
    RM_RC=0
    "${in_pod[@]}" timeout 60 "$RM_TOOLS/e2e_client" --out "$RM_TMP/logs/client-$name.out" \
        --status "$RM_TMP/logs/client-$name.status" "$@" 2>/dev/null || RM_RC=$?
    rm_log "client $name in $pod: exit $RM_RC $(cat "$RM_TMP/logs/client-$name.status" 2>/dev/null || true)"
}

# rm_expect_echo NAME POD ADDR: through ADDR to an echo server, "hello NAME" comes back whole (client exit 0)
rm_expect_echo() {
    rm_client "$1" "$2" --timeout 8000 --connect "$3" "send:hello $1" shutdown readeof
    rm_assert_eq "$RM_RC" 0 "$1: client exit"
    rm_assert_content "$RM_TMP/logs/client-$1.out" "hello $1" "$1: the echo"
}

# rm_client_bg NAME POD e2e_client-args...: rm_client in the background (process name "client-NAME")
rm_client_bg() {
    local name=$1 pod=$2
    shift 2
    rm_bg "client-$name" "$pod" "$RM_TMP/logs/client-$name.log" "$RM_TOOLS/e2e_client" \
        --out "$RM_TMP/logs/client-$name.out" --status "$RM_TMP/logs/client-$name.status" "$@"
}

rm_client_out() {
    echo "$RM_TMP/logs/client-$1.out"
}

rm_client_status() {
    cat "$RM_TMP/logs/client-$1.status"
}

# rm_capture_start NAME POD: tcpdump on POD's veth (node side) into $RM_TMP/logs/NAME.pcap
rm_capture_start() {
    local name=$1 pod=$2 deadline
    rm_bg "capture-$name" - "$RM_TMP/logs/capture-$name.log" ip netns exec "$RM_NODE_NS" \
        tcpdump -i "${RM_POD_IFACE[$pod]}" -n -U --immediate-mode -s 0 -Z root -w "$RM_TMP/logs/$name.pcap" tcp
    deadline=$(($(rm_now_ms) + 10000))
    until grep -q 'listening on' "$RM_TMP/logs/capture-$name.log.stderr" 2>/dev/null; do
        rm_alive "capture-$name" || rm_fail "tcpdump exited: $(cat "$RM_TMP/logs/capture-$name.log.stderr")"
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "tcpdump did not start within 10 s"
        sleep 0.05
    done
}

# rm_capture_stop NAME [TEXT...]: stops the capture (tcpdump flushes on SIGINT) and leaves pcap_tls_scan's JSON
# summary in RM_SCAN (with --find for each TEXT: .found[i] counts TEXT number i)
rm_capture_stop() {
    local name=$1 args=() s
    shift
    sleep 0.2 # let the last segments of the connection reach the capture
    rm_stop "capture-$name" INT
    for s in "$@"; do args+=(--find "$s"); done
    RM_SCAN=$("$RM_TOOLS/pcap_tls_scan" "$RM_TMP/logs/$name.pcap" "${args[@]}") ||
        rm_fail "pcap_tls_scan could not read the capture $name"
    rm_log "capture $name: $RM_SCAN"
}

# ---------------------------------------------------------------------------------------------------------------
# meshed pods

# rm__capture_rules POD: the pod's iptables rules; ringmesh-init when it is built
rm__capture_rules() {
    local pod=$1 ns
    ns=$(rm_ns "$pod")
    if [ -x "$RM_INIT_BIN" ]; then
        ip netns exec "$ns" "$RM_INIT_BIN" --proxy-uid "$RM_PROXY_UID" --proxy-gid "$RM_PROXY_UID" \
            --outbound-port 15001 --inbound-port 15006 --exclude-inbound-ports 22 \
            >"$RM_TMP/pods/$pod/init.log" 2>&1 || {
            cat "$RM_TMP/pods/$pod/init.log" >&2
            rm_fail "ringmesh-init failed in pod $pod"
        }
    else
        rm_log "ringmesh-init is not built: writing the equivalent rules with iptables in pod $pod"
        ip netns exec "$ns" iptables-restore --noflush <<EOF
*nat
:RINGMESH_INBOUND - [0:0]
:RINGMESH_IN_REDIRECT - [0:0]
:RINGMESH_OUTPUT - [0:0]
:RINGMESH_REDIRECT - [0:0]
-A PREROUTING -p tcp -j RINGMESH_INBOUND
-A OUTPUT -p tcp -j RINGMESH_OUTPUT
-A RINGMESH_INBOUND -p tcp --dport 15001 -j RETURN
-A RINGMESH_INBOUND -p tcp --dport 15006 -j RETURN
-A RINGMESH_INBOUND -p tcp --dport 15021 -j RETURN
-A RINGMESH_INBOUND -p tcp --dport 22 -j RETURN
-A RINGMESH_INBOUND -p tcp -j RINGMESH_IN_REDIRECT
-A RINGMESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A RINGMESH_OUTPUT -m owner --uid-owner $RM_PROXY_UID -j RETURN
-A RINGMESH_OUTPUT -m owner --gid-owner $RM_PROXY_UID -j RETURN
-A RINGMESH_OUTPUT -o lo -d 127.0.0.1/32 -j RETURN
-A RINGMESH_OUTPUT -j RINGMESH_REDIRECT
-A RINGMESH_REDIRECT -p tcp -j REDIRECT --to-ports 15001
COMMIT
EOF
    fi
}

# rm__write_config POD: writes $RM_TMP/pods/POD/proxy.yaml from RM_CFG_* (set by rm_pod_mesh)
rm__write_config() {
    local pod=$1 dir="$RM_TMP/pods/$1" d addr ids p first id
    {
        printf 'trustDomain: %s\n' "$RM_CFG_TD"
        if [ -n "$RM_CFG_CONTROL" ]; then
            printf 'control:\n  address: "%s"\n  bootstrapBundleFile: %s/bootstrap-bundle.pem\n' \
                "$RM_CFG_CONTROL" "$dir"
            printf '  tokenFile: %s/token\n  stateDir: %s/state\n  svidTTL: "%s"\n  renewFraction: "%s"\n' \
                "$dir" "$dir" "$RM_CFG_CTL_TTL" "$RM_CFG_CTL_RENEW"
            printf '  node: {id: %s, namespace: %s, serviceAccount: %s, labels: [%s]}\n' "$pod" "$RM_CFG_CTL_NS" \
                "$RM_CFG_CTL_SA" "$RM_CFG_CTL_LABELS"
        else
            printf 'tls:\n  certFile: %s/svid.pem\n  keyFile: %s/svid.key\n  bundleFile: %s/bundle.pem\n' \
                "$dir" "$dir" "$dir"
        fi
        printf 'outbound:\n  listen: "[::]:15001"\n'
        printf 'inbound:\n  listen: "[::]:15006"\n  mode: %s\n' "$RM_CFG_MODE"
        if [ ${#RM_CFG_PERMISSIVE[@]} -gt 0 ]; then
            printf '  portModes:\n'
            for p in "${RM_CFG_PERMISSIVE[@]}"; do
                printf '    - port: %s\n      mode: PERMISSIVE\n' "$p"
            done
        fi
        if [ ${#RM_CFG_DEST[@]} -gt 0 ]; then
            printf 'destinations:\n'
            for d in "${RM_CFG_DEST[@]}"; do
                addr=${d%%=*}
                ids=${d#*=}
                printf '  - address: "%s"\n    identities: [' "$addr"
                first=1
                for id in ${ids//,/ }; do
                    [ $first = 1 ] || printf ', '
                    printf '"%s"' "$id"
                    first=0
                done
                printf ']\n'
            done
        fi
        printf 'admin:\n  listen: 127.0.0.1:15021\n'
        printf 'workers: 1\nioBackend: auto\nconnectTimeout: 5s\nidleTimeout: 1h\ndrainTimeout: %s\n' \
            "$RM_CFG_DRAIN"
        printf 'accessLog: true\n'
    } >"$dir/proxy.yaml"
}

# rm_pod_mesh POD svid=NAME bundle=CA[,CA...] [dest=VIP:PORT=ID[,ID...]]... [permissive=PORT]...
#             [mode=STRICT|PERMISSIVE] [drain=DURATION] [td=TRUST_DOMAIN]
# rm_pod_mesh POD control=ADDR ns=NAMESPACE sa=SERVICE_ACCOUNT [ttl=DURATION] [renew=FRACTION] [labels=k=v,k=v]
#   (identity and destinations from the control plane at ADDR; rm_control_init first)
# Puts the pod's SVID, key and bundle in its directory (owned by 1337, key 0600), writes its proxy.yaml
# (rm_pod_config), installs the capture rules and starts the proxy (rm_proxy_start).
rm_pod_mesh() {
    rm_pod_config "$@"
    rm__capture_rules "$1"
    rm_proxy_start "$1"
}

# rm_pod_config POD ARGS...: only the files and proxy.yaml of rm_pod_mesh (to restart a proxy with new settings)
rm_pod_config() {
    local pod=$1 arg svid="" bundle="" dir="$RM_TMP/pods/$1" ca
    shift
    RM_CFG_DEST=()
    RM_CFG_PERMISSIVE=()
    RM_CFG_MODE=STRICT
    RM_CFG_DRAIN=5s
    RM_CFG_TD=$RM_TRUST_DOMAIN
    RM_CFG_CONTROL=""
    RM_CFG_CTL_NS=""
    RM_CFG_CTL_SA=""
    RM_CFG_CTL_TTL=0
    RM_CFG_CTL_RENEW=0.5
    RM_CFG_CTL_LABELS=""
    for arg in "$@"; do
        case "$arg" in
        control=*) RM_CFG_CONTROL=${arg#control=} ;;
        ns=*) RM_CFG_CTL_NS=${arg#ns=} ;;
        sa=*) RM_CFG_CTL_SA=${arg#sa=} ;;
        ttl=*) RM_CFG_CTL_TTL=${arg#ttl=} ;;
        renew=*) RM_CFG_CTL_RENEW=${arg#renew=} ;;
        labels=*) RM_CFG_CTL_LABELS=${arg#labels=} ;;
        svid=*) svid=${arg#svid=} ;;
        bundle=*) bundle=${arg#bundle=} ;;
        dest=*) RM_CFG_DEST+=("${arg#dest=}") ;;
        permissive=*) RM_CFG_PERMISSIVE+=("${arg#permissive=}") ;;
        mode=*) RM_CFG_MODE=${arg#mode=} ;;
        drain=*) RM_CFG_DRAIN=${arg#drain=} ;;
        td=*) RM_CFG_TD=${arg#td=} ;;
        *) rm_fail "rm_pod_mesh: unknown argument $arg" ;;
        esac
    done
    if [ -n "$RM_CFG_CONTROL" ]; then
        # identity and configuration from the control plane: a token, the bootstrap bundle, a state directory
        [ -n "$RM_CFG_CTL_NS" ] && [ -n "$RM_CFG_CTL_SA" ] || rm_fail "rm_pod_mesh $pod: control= needs ns= and sa="
        rm_token "$RM_CFG_CTL_NS" "$RM_CFG_CTL_SA" "$dir/token" --pod "$pod" --pod-uid "00000000-0000-4000-8000-$(printf '%012d' "$RM_POD_COUNT")"
        cp "$RM_TMP/control/state/trust-bundle.pem" "$dir/bootstrap-bundle.pem"
        mkdir -p "$dir/state"
        rm__write_config "$pod"
        chown -R "$RM_PROXY_UID:$RM_PROXY_UID" "$dir"
        chmod 0700 "$dir" "$dir/state"
        chmod 0600 "$dir/token"
        return 0
    fi
    if [ -z "$svid" ] || [ -z "$bundle" ]; then
        rm_fail "rm_pod_mesh $pod: svid= and bundle= are required"
    fi
    cp "$RM_TMP/pki/$svid.pem" "$dir/svid.pem"
    cp "$RM_TMP/pki/$svid.key" "$dir/svid.key"
    : >"$dir/bundle.pem"
    for ca in ${bundle//,/ }; do
        cat "$RM_TMP/pki/ca-$ca.pem" >>"$dir/bundle.pem"
    done
    rm__write_config "$pod"
    chown -R "$RM_PROXY_UID:$RM_PROXY_UID" "$dir"
    chmod 0700 "$dir"
    chmod 0600 "$dir/svid.key"
    chmod 0644 "$dir/svid.pem" "$dir/bundle.pem" "$dir/proxy.yaml"
}

# rm_proxy_start POD: starts ringmesh-proxy in POD as UID 1337 (process name "proxy-POD"; RM_PROXY_ENV, a list of
# VAR=VALUE words, goes into its environment), stdout to
# $RM_TMP/pods/POD/proxy.N.log (N counts restarts; RM_PROXY_LOG[POD] is the current one). Waits for
# proxy_started and the capture ports, and checks that the requested I/O backend is the one in use.
rm_proxy_start() {
    local pod=$1 n log line backend
    n=$((${RM_PROXY_STARTS[$pod]:-0} + 1))
    RM_PROXY_STARTS[$pod]=$n
    log="$RM_TMP/pods/$pod/proxy.$n.log"
    RM_PROXY_LOG[$pod]=$log
    # shellcheck disable=SC2086 # RM_PROXY_ENV is a list of VAR=VALUE words
    rm_bg "proxy-$pod" "$pod" "$log" setpriv --reuid "$RM_PROXY_UID" --regid "$RM_PROXY_UID" --clear-groups \
        env ${RM_PROXY_ENV:-} "$RM_PROXY_BIN" --config "$RM_TMP/pods/$pod/proxy.yaml"
    if ! line=$(rm_wait_log "$log" '.event == "proxy_started"' 10); then
        rm_alive "proxy-$pod" || rm_fail "the proxy in pod $pod exited before proxy_started: $(cat "$log.stderr")"
        rm_fail "the proxy in pod $pod logged no proxy_started within 10 s"
    fi
    backend=$(rm_check_backend "$line" "proxy in pod $pod")
    rm_wait_port "$pod" 15001 10 "proxy-$pod"
    rm_wait_port "$pod" 15006 10 "proxy-$pod"
    rm_log "proxy in pod $pod started (PID ${RM_PID[proxy-$pod]}, $backend, log ${log#"$RM_TMP"/})"
}

# rm_check_backend PROXY_STARTED_LINE WHO: checks that the proxy uses the I/O backend the test asked for (any
# backend when none was asked for) and prints it
rm_check_backend() {
    local backend
    backend=$(rm_json "$1" '.io_backend')
    case "$RINGMESH_IO_BACKEND" in
    io_uring | epoll) rm_assert_eq "$backend" "$RINGMESH_IO_BACKEND" "$2 uses the requested I/O backend" ;;
    *) [[ "$backend" =~ ^(io_uring|epoll)$ ]] || rm_fail "$2: proxy_started names no known io_backend: $1" ;;
    esac
    echo "$backend"
}

# rm_proxy_log POD: the current proxy log of POD
rm_proxy_log() {
    echo "${RM_PROXY_LOG[$1]}"
}
