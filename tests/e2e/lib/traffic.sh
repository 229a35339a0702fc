# shellcheck shell=bash disable=SC2034 # RM_POD_IP, ... are lib.sh's globals
# Helpers of the traffic management tests (tests/e2e/test_traffic_*.sh), sourced after lib.sh: Services with
# spec.endpoints and HTTPRoutes in the control plane's file source, the backends of tools/traffic_app.py (each
# answer names its pod), clients that count per pod, and the proxies' metrics summed over their label sets.

RM_TRAFFIC_APP=$RM_SOURCE_DIR/tests/e2e/tools/traffic_app.py
RM_TRAFFIC_PY=/usr/bin/python3 # Debian's, which has python3-grpcio (scripts/bootstrap.sh)

# rm_traffic_require_grpc: skips when Debian's python has no grpcio
rm_traffic_require_grpc() {
    "$RM_TRAFFIC_PY" -c 'import grpc' 2>/dev/null || rm_skip "python3-grpcio is not installed (scripts/bootstrap.sh)"
}

# rm_traffic_ep POD [ready [serving terminating]]: one spec.endpoints entry (a YAML flow mapping, ServiceAccount
# from RM_TRAFFIC_SA, default orders)
rm_traffic_ep() {
    if [ $# -ge 4 ]; then
        printf '  - {address: %s, serviceAccount: %s, ready: %s, serving: %s, terminating: %s}' "${RM_POD_IP[$1]}" \
            "${RM_TRAFFIC_SA:-orders}" "$2" "$3" "$4"
    else
        printf '  - {address: %s, serviceAccount: %s, ready: %s}' "${RM_POD_IP[$1]}" "${RM_TRAFFIC_SA:-orders}" \
            "${2:-true}"
    fi
}

# rm_traffic_service NAME VIP PORTS SA ENDPOINT_LINE...: writes Service NAME (namespace shop) with addresses [VIP],
# ports [PORTS] (comma-separated), serviceAccounts [SA] and these spec.endpoints entries (rm_traffic_ep) into the
# control plane's mesh directory, replacing the file at once (the control plane never reads half a file)
rm_traffic_service() {
    local name=$1 vip=$2 ports=$3 sa=$4 mesh=$RM_TMP/control/mesh
    shift 4
    {
        printf 'apiVersion: ringmesh.io/v1alpha1\nkind: Service\nmetadata: {name: %s, namespace: shop}\nspec:\n' "$name"
        printf '  addresses: [%s]\n  ports: [%s]\n  serviceAccounts: [%s]\n  endpoints:\n' "$vip" "$ports" "$sa"
        printf '%s\n' "$@"
    } >"$mesh/.$name.tmp"
    mv "$mesh/.$name.tmp" "$mesh/service-$name.yaml"
}

# rm_traffic_route NAME: writes stdin as the mesh directory's route file NAME.yaml (at once)
rm_traffic_route() {
    local mesh=$RM_TMP/control/mesh
    cat >"$mesh/.$1.tmp"
    mv "$mesh/.$1.tmp" "$mesh/$1.yaml"
}

# rm_traffic_http_app POD PORT [traffic_app.py http options...]: the HTTP/1.1 backend naming itself POD, process
# "app-POD", log $RM_TMP/logs/app-POD.log; waits until it listens
rm_traffic_http_app() {
    local pod=$1 port=$2
    shift 2
    rm_bg "app-$pod" "$pod" "$RM_TMP/logs/app-$pod.log" "$RM_TRAFFIC_PY" "$RM_TRAFFIC_APP" http "$port" "$pod" "$@"
    rm_wait_port "$pod" "$port" 10 "app-$pod"
}

# rm_traffic_grpc_app POD PORT: the gRPC backend naming itself POD, process "grpc-POD"
rm_traffic_grpc_app() {
    rm_bg "grpc-$1" "$1" "$RM_TMP/logs/grpc-$1.log" "$RM_TRAFFIC_PY" "$RM_TRAFFIC_APP" grpc "$2" "$1"
    rm_wait_port "$1" "$2" 15 "grpc-$1"
}

# rm_traffic_app_log POD: the HTTP backend's log
rm_traffic_app_log() {
    echo "$RM_TMP/logs/app-$1.log"
}

# rm_traffic_app_count POD FILTER: lines of POD's HTTP backend log matching the jq FILTER
rm_traffic_app_count() {
    rm_log_count "$(rm_traffic_app_log "$1")" "$2"
}

# rm_traffic_calls POD ARGS...: runs traffic_app.py ARGS (http-calls / grpc-calls) in POD in the foreground
# (bounded by timeout) and prints its summary line (the last line)
rm_traffic_calls() {
    local pod=$1 out
    shift
    out=$(rm_exec "$pod" timeout 300 "$RM_TRAFFIC_PY" "$RM_TRAFFIC_APP" "$@") ||
        rm_fail "traffic_app.py $* in pod $pod failed: $out"
    printf '%s\n' "$out" | tail -n 1
}

# rm_traffic_pods SUMMARY: "pod=n pod=n ..." of a client summary, sorted by pod
rm_traffic_pods() {
    rm_json "$1" '.pods | to_entries | sort_by(.key) | map("\(.key)=\(.value)") | join(" ")'
}

# rm_traffic_metric POD NAME: the sum of every series of metric NAME (whatever its labels) on POD's admin port;
# 0 when the proxy has no such series
rm_traffic_metric() {
    rm_exec "$1" curl -sf -m 5 http://127.0.0.1:15021/metrics |
        awk -v k="$2" 'index($1, k) == 1 && (length($1) == length(k) || substr($1, length(k) + 1, 1) == "{") {
            s += $2 } END { printf "%d\n", s }'
}

# rm_traffic_metric_lines POD PATTERN: the metric lines of POD matching the extended regex PATTERN (for messages)
rm_traffic_metric_lines() {
    rm_exec "$1" curl -sf -m 5 http://127.0.0.1:15021/metrics | grep -E "$2" || true
}

# rm_traffic_destinations_version POD: the version of the destinations POD's proxy accepted last
rm_traffic_destinations_version() {
    rm_log_select "$(rm_proxy_log "$1")" '.event == "config_accepted" and .type == "destinations"' | tail -n 1 |
        jq -r .version
}

# rm_traffic_wait_destinations POD BEFORE WHAT: waits (bounded, 15 s) until the LAST destinations version POD's
# proxy accepted is other than BEFORE (an earlier line of the log with another version does not count: that is the
# configuration before BEFORE)
rm_traffic_wait_destinations() {
    local i now=""
    for i in $(seq 1 150); do
        now=$(rm_traffic_destinations_version "$1")
        if [ -n "$now" ] && [ "$now" != "$2" ]; then
            rm_log "ok: $3 (destinations version $2 -> $now)"
            return 0
        fi
        sleep 0.1
    done
    rm_fail "$3: pod $1's proxy still has destinations version '$2' after 15 s"
}

# rm_traffic_wait_routes POD ADDRESS WANT WHAT: polls POD's /config_dump (bounded) until it holds WANT routes
# ("kind namespace/name" joined by commas) for ADDRESS
rm_traffic_wait_routes() {
    local i got=""
    for i in $(seq 1 100); do
        got=$(rm_exec "$1" curl -sf -m 5 http://127.0.0.1:15021/config_dump |
            jq -r "[.destinations[] | select(.address == \"$2\") | .routes // [] | .[] |
                \"\\(.kind) \\(.namespace)/\\(.name)\"] | join(\",\")" 2>/dev/null || true)
        [ "$got" = "$3" ] && break
        sleep 0.1
    done
    rm_assert_eq "$got" "$3" "$4"
}

# rm_traffic_wait_idle POD: waits (bounded, 10 s) until POD's HTTP backend has answered every request it started
rm_traffic_wait_idle() {
    local i s r
    for i in $(seq 1 200); do
        s=$(rm_traffic_app_count "$1" '.event == "start"')
        r=$(rm_traffic_app_count "$1" '.event == "request"')
        [ "$s" = "$r" ] && return 0
        sleep 0.05
    done
    rm_fail "the backend in pod $1 still has $((s - r)) request(s) in progress after 10 s"
}

# rm_traffic_mesh CLIENT SERVER...: starts the control plane (rm_control_init first, Services written), meshes
# SERVER pods as ServiceAccount orders and CLIENT as frontend (namespace shop), and waits until all are ready
rm_traffic_mesh() {
    local client=$1 p
    shift
    rm_control_start main node 0.0.0.0:15012
    for p in "$@"; do
        rm_pod_mesh "$p" "control=$(rm_pod_gateway "$p"):15012" ns=shop sa=orders
    done
    rm_pod_mesh "$client" "control=$(rm_pod_gateway "$client"):15012" ns=shop sa=frontend
    for p in "$client" "$@"; do rm_wait_ready "$p"; done
}

# rm_traffic_at_least SUMMARY MIN POD...: every POD answered at least MIN of the client SUMMARY's requests
rm_traffic_at_least() {
    local summary=$1 min=$2 p n
    shift 2
    for p in "$@"; do
        n=$(rm_json "$summary" ".pods[\"$p\"] // 0")
        [ "$n" -ge "$min" ] || rm_fail "pod $p answered $n requests (want at least $min): $(rm_traffic_pods "$summary")"
    done
    rm_log "ok: each of $* answered at least $min: $(rm_traffic_pods "$summary")"
}
