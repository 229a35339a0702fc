# shellcheck shell=bash
# Test programs: servers, clients and packet captures run in the pods.
# Part of the end-to-end harness: sourced by tests/e2e/lib.sh (never on its own), whose globals it uses.

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
