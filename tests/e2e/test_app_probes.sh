#!/usr/bin/env bash
# rm-e2e: both-backends
#
# The kubelet's probes of a meshed pod under STRICT mTLS, rewritten to the proxy's admin port.
#
# Pod "app" runs the app (tools/probe_app.py: HTTP /ready and grpc.health.v1.Health from Debian's python3-grpcio),
# a plain TCP server, an HTTPS server with a self-signed certificate (openssl s_server), and the proxy started as in
# a pod: --config-env RINGMESH_PROXY_CONFIG (admin on 0.0.0.0:15021), RINGMESH_POD_IP, and RINGMESH_APP_PROBERS
# holding the original probes as the injector writes them. The "kubelet" is curl in the node namespace: plaintext,
# no client certificate, to the pod's IP.
#   1. every rewritten probe answers 200 while the app is healthy; the app sees its probes come from the pod's IP
#      with the kubelet's User-Agent and the probe's own headers;
#   2. the app's port itself refuses the plaintext kubelet (STRICT): probes work only through the rewrite;
#   3. the app made unhealthy: HTTP and gRPC probes 503, the TCP probe 503 once its server stops; each failure is
#      logged (app_probe_failed with container, probe, reason), rate-limited; recovery is logged;
#   4. from the pod's IP only health, probes and metrics are served: /config_dump, POST /quitquitquit and POST
#      /drain are 403 and logged with the peer; from loopback they work;
#   5. POST /quitquitquit from loopback stops the proxy promptly with exit 0 (a Job's classic sidecar), even with
#      a probe hanging for a minute;
#      SIGTERM drains and exits 0 (a native sidecar when the Job's container is done);
#   6. --check with --config-env; a bad RINGMESH_APP_PROBERS stops the proxy at start naming the variable and key.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup
rm_require_cmds curl protoc openssl
PY=/usr/bin/python3 # Debian's interpreter, where python3-grpcio lives
"$PY" -c 'import grpc, google.protobuf' 2>/dev/null ||
    rm_skip "Debian's python3-grpcio / python3-protobuf are not installed (scripts/bootstrap.sh installs them)"

ID_APP="spiffe://cluster.local/ns/shop/sa/app"
P_HTTP=8080 P_GRPC=9090 P_TCP=7000 P_TLS=8443 P_SILENT=7001

rm_ca_create main cluster.local
rm_svid_issue app main "$ID_APP"
rm_pod_create app
POD_IP=${RM_POD_IP[app]}

# --- the app
PYOUT="$RM_TMP/py"
mkdir -p "$PYOUT" "$RM_TMP/appstate"
protoc --proto_path="$RM_SOURCE_DIR/tests/e2e/tools/proto" --python_out="$PYOUT" health.proto
rm_bg app app "$RM_TMP/logs/app.log" "$PY" "$RM_SOURCE_DIR/tests/e2e/tools/probe_app.py" "$PYOUT" \
    "$RM_TMP/appstate" "$P_HTTP" "$P_GRPC"
rm_wait_port app "$P_HTTP" 10 app
rm_wait_port app "$P_GRPC" 10 app
rm_server tcp app "0.0.0.0:$P_TCP" echo
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=app.shop.svc" \
    -keyout "$RM_TMP/pki/app-https.key" -out "$RM_TMP/pki/app-https.pem" 2>/dev/null
rm_bg https app "$RM_TMP/logs/https.log" openssl s_server -quiet -accept "$P_TLS" -www \
    -cert "$RM_TMP/pki/app-https.pem" -key "$RM_TMP/pki/app-https.key"
rm_wait_port app "$P_TLS" 10 https
rm_bg silent app "$RM_TMP/logs/silent.log" "$PY" "$RM_SOURCE_DIR/tests/e2e/tools/silent_app.py" tcp "$P_SILENT"
rm_wait_port app "$P_SILENT" 10 silent

# --- the proxy, configured as in a pod
rm_pod_config app svid=app bundle=main
rm__capture_rules app
sed -i 's/^  listen: 127.0.0.1:15021$/  listen: "0.0.0.0:15021"/' "$RM_TMP/pods/app/proxy.yaml"
grep -q '0.0.0.0:15021' "$RM_TMP/pods/app/proxy.yaml" || rm_fail "the admin address was not changed"
PROBERS=$(jq -c -n --argjson http "$P_HTTP" --argjson grpc "$P_GRPC" --argjson tcp "$P_TCP" --argjson tls "$P_TLS" \
    --argjson silent "$P_SILENT" '{
  "/app-health/hang/readyz": {httpGet: {host: "127.0.0.1", path: "/", port: $silent}, timeoutSeconds: 3},
  "/app-health/hang/livez": {httpGet: {host: "127.0.0.1", path: "/", port: $silent}, timeoutSeconds: 60},
  "/app-health/web/readyz": {httpGet: {path: "/ready", port: $http, scheme: "HTTP",
                                       httpHeaders: [{name: "X-Probe", value: "kubelet"}]}, timeoutSeconds: 2},
  "/app-health/web/livez": {tcpSocket: {port: $tcp}, timeoutSeconds: 1},
  "/app-health/web/startupz": {grpc: {port: $grpc, service: "app"}, timeoutSeconds: 2},
  "/app-health/tls/readyz": {httpGet: {path: "/", port: $tls, scheme: "HTTPS"}, timeoutSeconds: 2},
  "/app-health/other/readyz": {grpc: {port: $grpc, service: "nope"}, timeoutSeconds: 2}
}')

start_proxy() { # N: starts the proxy as in a pod (log proxy.N.log)
    local log="$RM_TMP/pods/app/proxy.$1.log"
    RM_PROXY_LOG[app]=$log
    rm_bg proxy-app app "$log" setpriv --reuid "$RM_PROXY_UID" --regid "$RM_PROXY_UID" --clear-groups \
        env "RINGMESH_PROXY_CONFIG=$(cat "$RM_TMP/pods/app/proxy.yaml")" "RINGMESH_POD_IP=$POD_IP" \
        "RINGMESH_APP_PROBERS=$PROBERS" "$RM_PROXY_BIN" --config-env RINGMESH_PROXY_CONFIG
    rm_wait_log "$log" '.event == "proxy_started"' 10 >/dev/null ||
        rm_fail "the proxy did not start: $(cat "$log" "$log.stderr")"
    rm_check_backend "$(rm_log_select "$log" '.event == "proxy_started"' | head -n 1)" "proxy in pod app" >/dev/null
    rm_wait_port app 15021 10 proxy-app
    rm_wait_port app 15006 10 proxy-app
}
start_proxy 1
LOG=$(rm_proxy_log app)
rm_expect_log "$LOG" ".event == \"app_probes_loaded\" and .probes == 7 and .threads == 8 and .target == \"$POD_IP\"" \
    "the probes are loaded and aimed at the pod's IP"

kubelet() { # METHOD PATH -> "STATUS BODY" as the kubelet sees them (from the node, to the pod's IP)
    local out
    out=$(ip netns exec "$RM_NODE_NS" curl -s -m 8 -X "$1" -w ' %{http_code}' "http://$POD_IP:15021$2" || true)
    printf '%s %s' "${out##* }" "${out% *}" | tr -d '\n'
}
local_admin() { # METHOD PATH -> STATUS, from inside the pod on loopback
    rm_exec app curl -s -m 8 -o /dev/null -w '%{http_code}' -X "$1" "http://127.0.0.1:15021$2" || true
}
status_of() { kubelet GET "$1" | cut -d' ' -f1; }

case_healthy() {
    rm_assert_eq "$(kubelet GET /app-health/web/readyz)" "200 HTTP status 200" "httpGet probe, healthy"
    rm_assert_eq "$(kubelet GET /app-health/web/livez)" "200 connected to port $P_TCP" "tcpSocket probe, healthy"
    rm_assert_eq "$(kubelet GET /app-health/web/startupz)" "200 SERVING" "grpc probe, healthy"
    rm_assert_eq "$(kubelet GET /app-health/tls/readyz)" "200 HTTP status 200" \
        "HTTPS probe against a self-signed certificate (not verified, as the kubelet)"
    rm_assert_eq "$(kubelet GET /app-health/other/readyz)" "503 gRPC status 5: unknown service" \
        "grpc probe of a service the app does not know"
    rm_assert_eq "$(status_of /app-health/nope/readyz)" 404 "a probe path not in RINGMESH_APP_PROBERS"
    rm_assert_eq "$(kubelet POST /app-health/web/readyz | cut -d' ' -f1)" 403 "POST to a probe from the network"
    rm_assert_eq "$(status_of /healthz/ready)" 200 "the proxy's own readiness from the network"
    rm_assert_eq "$(status_of /healthz/live)" 200 "the proxy's own liveness from the network"
    rm_expect_log "$RM_TMP/logs/app.log" \
        ".proto == \"http\" and .path == \"/ready\" and .peer == \"$POD_IP\" and .probe_header == \"kubelet\" and
         (.user_agent | startswith(\"kube-probe/\"))" \
        "the app saw the probe from the pod's IP with the kubelet's User-Agent and the probe's header"
    rm_expect_log "$RM_TMP/logs/app.log" '.proto == "grpc" and .service == "app"' "the app saw Health/Check(\"app\")"
}

case_app_port_refused() {
    local before after rc=0
    before=$(ip netns exec "$RM_NODE_NS" curl -s -m 5 "http://$POD_IP:15021/metrics" |
        awk '$1 == "ringmesh_proxy_plaintext_rejected_total" {print $2}')
    [ -n "$before" ] || rm_fail "/metrics from the network has no ringmesh_proxy_plaintext_rejected_total"
    ip netns exec "$RM_NODE_NS" curl -s -m 5 -o /dev/null "http://$POD_IP:$P_HTTP/ready" || rc=$?
    [ "$rc" != 0 ] || rm_fail "the plaintext kubelet reached the app's port directly under STRICT"
    after=$(ip netns exec "$RM_NODE_NS" curl -s -m 5 "http://$POD_IP:15021/metrics" |
        awk '$1 == "ringmesh_proxy_plaintext_rejected_total" {print $2}')
    rm_assert_eq "$((after - before))" 1 "the proxy refused the plaintext connection to the app's port (curl exit $rc)"
    rm_expect_no_log "$RM_TMP/logs/app.log" ".path == \"/ready\" and .peer != \"$POD_IP\"" \
        "no request reached the app other than the proxy's probes"
}

case_unhealthy() {
    touch "$RM_TMP/appstate/sick"
    rm_assert_eq "$(kubelet GET /app-health/web/readyz)" "503 HTTP status 503" "httpGet probe, app sick"
    rm_assert_eq "$(kubelet GET /app-health/web/startupz)" "503 NOT_SERVING" "grpc probe, app sick"
    rm_assert_eq "$(ip netns exec "$RM_NODE_NS" curl -s -m 8 -I -o /dev/null -w '%{http_code}' \
        "http://$POD_IP:15021/app-health/web/startupz" || true)" 503 "HEAD of a probe"
    rm_stop server-tcp
    rm_assert_eq "$(status_of /app-health/web/livez)" 503 "tcpSocket probe, nothing listening"
    rm_expect_log "$LOG" '.event == "app_probe_failed" and .container == "web" and .probe == "readyz" and
        .handler == "httpGet" and .reason == "HTTP status 503"' "the failed httpGet probe is logged"
    rm_expect_log "$LOG" '.event == "app_probe_failed" and .probe == "livez" and (.reason | test("refused"))' \
        "the failed tcpSocket probe is logged with its reason"
    # rate-limited: more failures of the same probe within the interval add no line
    for _ in 1 2 3 4; do rm_assert_eq "$(status_of /app-health/web/readyz)" 503 "httpGet probe, still sick"; done
    rm_assert_eq "$(rm_log_count "$LOG" '.event == "app_probe_failed" and .probe == "readyz" and .container == "web"')" 1 \
        "five failures of one probe within the interval are one log line"
    rm -f "$RM_TMP/appstate/sick"
    rm_assert_eq "$(status_of /app-health/web/readyz)" 200 "httpGet probe, app well again"
    rm_expect_log "$LOG" '.event == "app_probe_passed" and .probe == "readyz" and .failures_not_logged == 4' \
        "the recovery is logged with the failures left out"
}

case_admin_exposure() {
    local path
    sleep 1.1 # past the refusal log's one-line-a-second limit, so that the first refusal here is logged
    rm_assert_eq "$(kubelet GET /config_dump | cut -d' ' -f1)" 403 "/config_dump from the pod's IP"
    rm_assert_eq "$(kubelet GET /nope | cut -d' ' -f1)" 403 "an unknown path from the pod's IP"
    for path in /quitquitquit /drain; do
        rm_assert_eq "$(kubelet POST $path | cut -d' ' -f1)" 403 "POST $path from the pod's IP"
    done
    rm_alive proxy-app || rm_fail "a refused POST stopped the proxy"
    rm_expect_log "$LOG" ".event == \"admin_refused\" and (.peer | addr | startswith(\"${POD_IP%.2}.1:\")) and
        .path == \"/config_dump\"" "the refusal is logged with the peer (the node)"
    sleep 1.1
    rm_assert_eq "$(kubelet GET /config_dump | cut -d' ' -f1)" 403 "/config_dump from the pod's IP, again"
    rm_expect_log "$LOG" '.event == "admin_refused" and .refusals_not_logged == 3' \
        "refusals within a second of a logged one are counted in the next line"
    rm_assert_eq "$(local_admin GET /config_dump)" 200 "/config_dump from loopback"
    rm_assert_eq "$(local_admin GET /app-health/web/readyz)" 200 "a probe from loopback"
    rm_assert_eq "$(status_of /metrics)" 200 "/metrics from the pod's IP (Prometheus)"
}

# A probe that hangs until its timeout (to an app on 127.0.0.1, named by the probe's host) and is asked for 30 times
# at once: two requests wait or run, the others are answered 503 at once; the admin port and the other probes go on.
case_hanging_probes() {
    local i codes
    for i in $(seq 1 30); do
        rm_bg "hang$i" - "$RM_TMP/logs/hang$i.out" ip netns exec "$RM_NODE_NS" \
            curl -s -m 10 -w ' %{http_code}' "http://$POD_IP:15021/app-health/hang/readyz"
    done
    rm_wait_log "$RM_TMP/logs/silent.log" '.event == "accept"' 5 >/dev/null ||
        rm_fail "the hanging probe never reached the app"
    rm_assert_eq "$(status_of /healthz/ready)" 200 "the admin port answers while probes hang"
    rm_assert_eq "$(kubelet GET /app-health/web/readyz)" "200 HTTP status 200" \
        "another probe answers while one hangs"
    for i in $(seq 1 30); do rm_wait_exit "hang$i" 15; done
    codes=$(for i in $(seq 1 30); do tr -d '\n' <"$RM_TMP/logs/hang$i.out"; echo; done)
    rm_log "hanging probes answered: $(printf '%s\n' "$codes" | sort | uniq -c | tr -s ' \n' ' ')"
    [ "$(printf '%s\n' "$codes" | grep -c 'this probe is already running 503')" = 28 ] ||
        rm_fail "30 requests for a hanging probe: want 28 refused at once (two may wait or run)"
    [ "$(printf '%s\n' "$codes" | grep -c '^reading the response: timed out 503')" = 2 ] ||
        rm_fail "want the two hanging probes that ran to fail at their timeout"
    [ "$(printf '%s\n' "$codes" | grep -vc ' 503$')" = 0 ] || rm_fail "a hanging probe was not answered 503: $codes"
    local m
    m=$(ip netns exec "$RM_NODE_NS" curl -s -m 5 "http://$POD_IP:15021/metrics")
    rm_assert_eq "$(printf '%s\n' "$m" | awk '$1 ~ /^ringmesh_proxy_app_probes_total\{container="hang",probe="readyz",handler="httpGet",result="(failed|refused)"\}$/ {print $2}' | tr '\n' ' ')" \
        "2 28 " "/metrics counts the hanging probe's failures and refusals"
}

rm_case "healthy app: every rewritten probe passes" case_healthy
rm_case "hanging probes block neither the admin port nor other probes" case_hanging_probes
rm_case "the app's port refuses the plaintext kubelet" case_app_port_refused
rm_case "unhealthy app: probes fail, failures logged and rate-limited" case_unhealthy
rm_case "admin exposure: only health, probes and metrics from the network" case_admin_exposure
[ ${#RM_FAILED_CASES[@]} = 0 ] || rm_finish

# The stops start processes, so they run at the top level.
rm_log "--- POST /quitquitquit from loopback: the classic sidecar of a finished Job stops"
# a probe that would hang for a minute (an app that never answers) does not hold the exit up
rm_bg hangexit - "$RM_TMP/logs/hangexit.out" ip netns exec "$RM_NODE_NS" \
    curl -s -m 70 "http://$POD_IP:15021/app-health/hang/livez"
sleep 0.3
t0=$(rm_now_ms)
rm_assert_eq "$(local_admin POST /quitquitquit)" 200 "POST /quitquitquit from loopback"
rm_wait_exit proxy-app 5
rm_assert_eq "$RM_RC" 0 "exit status after POST /quitquitquit"
rm_log "ok: the proxy exited $(($(rm_now_ms) - t0)) ms after POST /quitquitquit"
rm_expect_log "$LOG" '.event == "stop_requested"' "the stop is logged"
rm_expect_log "$LOG" '.event == "app_probes_abandoned"' "the probe still running was left to the exit"
rm_wait_exit hangexit 10

rm_log "--- SIGTERM: the native sidecar of a finished Job drains and exits 0"
start_proxy 2
LOG=$(rm_proxy_log app)
rm_assert_eq "$(status_of /app-health/web/readyz)" 200 "probes answer after a restart"
rm_stop proxy-app TERM
rm_assert_eq "$RM_RC" 0 "exit status after SIGTERM"
rm_expect_log "$LOG" '.event == "drain_started" and .signal == "SIGTERM"' "SIGTERM drained"

rm_log "--- --check with --config-env, and a bad RINGMESH_APP_PROBERS"
out=$(env "RINGMESH_PROXY_CONFIG=$(cat "$RM_TMP/pods/app/proxy.yaml")" "RINGMESH_APP_PROBERS=$PROBERS" \
    "$RM_PROXY_BIN" --config-env RINGMESH_PROXY_CONFIG --check) || rm_fail "--check failed: $out"
# shellcheck disable=SC2016 # the variable's name, written as the proxy writes it
rm_assert_eq "$(rm_json "$out" '.event + " " + .file')" 'config_ok $RINGMESH_PROXY_CONFIG' "--check names the variable"
rc=0
out=$(env "RINGMESH_PROXY_CONFIG=$(cat "$RM_TMP/pods/app/proxy.yaml")" \
    'RINGMESH_APP_PROBERS={"/app-health/web/livez": {"tcpSocket": {"port": "http"}}}' \
    "$RM_PROXY_BIN" --config-env RINGMESH_PROXY_CONFIG) || rc=$?
rm_assert_eq "$rc" 1 "a bad RINGMESH_APP_PROBERS stops the proxy at start"
rm_assert_eq "$(rm_json "$out" '.msg')" \
    'RINGMESH_APP_PROBERS: "/app-health/web/livez".tcpSocket: port "http" is a name; want its number' \
    "the message names the variable, the key and the field"
rc=0
out=$(env 'RINGMESH_PROXY_CONFIG=admin: {listen: "0.0.0.0:15021", enabled: maybe}' \
    "$RM_PROXY_BIN" --config-env RINGMESH_PROXY_CONFIG --check) || rc=$?
rm_assert_eq "$rc" 1 "a bad configuration in the variable is refused"
# shellcheck disable=SC2016 # the variable's name, written as the proxy writes it
rm_assert_eq "$(rm_json "$out" '.msg' | cut -d: -f1-4)" '$RINGMESH_PROXY_CONFIG:1:43: admin.enabled' \
    "the message is positioned in the variable and names the field"
rm_finish
