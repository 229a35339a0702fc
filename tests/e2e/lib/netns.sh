# shellcheck shell=bash disable=SC2004,SC2034 # RM_PID, RM_POD_IP, ... are lib.sh's (associative) globals
# Namespaces, pods and services: the node namespace, routed veth pairs to pods and external hosts, and
# service VIPs DNATed by the node.
# Part of the end-to-end harness: sourced by tests/e2e/lib.sh (never on its own), whose globals it uses.

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
