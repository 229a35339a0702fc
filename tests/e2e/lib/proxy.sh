# shellcheck shell=bash disable=SC2004,SC2034 # RM_PID, RM_POD_IP, ... are lib.sh's (associative) globals
# Meshed pods: ringmesh-init's iptables rules, the proxy's configuration, starting and checking the proxy.
# Part of the end-to-end harness: sourced by tests/e2e/lib.sh (never on its own), whose globals it uses.

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
            if [ -n "$RM_CFG_CTL_KEEPALIVE" ]; then
                printf '  keepaliveTime: %s\n  keepaliveTimeout: %s\n' "${RM_CFG_CTL_KEEPALIVE%/*}" \
                    "${RM_CFG_CTL_KEEPALIVE#*/}"
            fi
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
        printf 'workers: 1\nioBackend: auto\nconnectTimeout: 5s\nidleTimeout: %s\ndrainTimeout: %s\n' \
            "$RM_CFG_IDLE" "$RM_CFG_DRAIN"
        printf 'handshakeTimeout: %s\n' "$RM_CFG_HANDSHAKE"
        printf 'connectionLog: true\n'
    } >"$dir/proxy.yaml"
}

# rm_pod_mesh POD svid=NAME bundle=CA[,CA...] [dest=VIP:PORT=ID[,ID...]]... [permissive=PORT]...
#             [mode=STRICT|PERMISSIVE] [drain=DURATION] [idle=DURATION] [handshake=DURATION] [td=TRUST_DOMAIN]
# rm_pod_mesh POD control=ADDR ns=NAMESPACE sa=SERVICE_ACCOUNT [ttl=DURATION] [renew=FRACTION] [labels=k=v,k=v]
#             [keepalive=TIME/TIMEOUT]
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
    RM_CFG_IDLE=1h
    RM_CFG_HANDSHAKE=10s
    RM_CFG_TD=$RM_TRUST_DOMAIN
    RM_CFG_CONTROL=""
    RM_CFG_CTL_NS=""
    RM_CFG_CTL_SA=""
    RM_CFG_CTL_TTL=0
    RM_CFG_CTL_RENEW=0.5
    RM_CFG_CTL_LABELS=""
    RM_CFG_CTL_KEEPALIVE=""
    for arg in "$@"; do
        case "$arg" in
        control=*) RM_CFG_CONTROL=${arg#control=} ;;
        ns=*) RM_CFG_CTL_NS=${arg#ns=} ;;
        sa=*) RM_CFG_CTL_SA=${arg#sa=} ;;
        ttl=*) RM_CFG_CTL_TTL=${arg#ttl=} ;;
        renew=*) RM_CFG_CTL_RENEW=${arg#renew=} ;;
        labels=*) RM_CFG_CTL_LABELS=${arg#labels=} ;;
        keepalive=*) RM_CFG_CTL_KEEPALIVE=${arg#keepalive=} ;;
        svid=*) svid=${arg#svid=} ;;
        bundle=*) bundle=${arg#bundle=} ;;
        dest=*) RM_CFG_DEST+=("${arg#dest=}") ;;
        permissive=*) RM_CFG_PERMISSIVE+=("${arg#permissive=}") ;;
        mode=*) RM_CFG_MODE=${arg#mode=} ;;
        drain=*) RM_CFG_DRAIN=${arg#drain=} ;;
        idle=*) RM_CFG_IDLE=${arg#idle=} ;;
        handshake=*) RM_CFG_HANDSHAKE=${arg#handshake=} ;;
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
