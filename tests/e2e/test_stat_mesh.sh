#!/usr/bin/env bash
# ringmeshctl stat on a real proxy in the namespace mesh: pod web calls orders (namespace shop) through a service
# VIP over mTLS; a DENY policy answers one path 403 from orders' proxy. `ringmeshctl stat --admin 127.0.0.1:15021
# --once -o json`, run in orders' pod while web makes N allowed and M denied requests between its two scrapes,
# reports exactly those: N + M requests, M/(N+M) of them denied, all over mutual TLS, all successful (a 403 is not
# a server error), and a latency.
# The workloads are named by Workload documents in the control plane's directory (the file source's way of saying
# who a bare host's proxy is, by its node id): the rows are shop/orders.
# It reads the proxy's request metrics (ringmesh_requests_total, ...) labelled with the workloads the control plane
# names.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_require_cmds curl jq /usr/bin/python3
rm_setup
rm_control_init

APP=$RM_SOURCE_DIR/tests/e2e/tools/http_app.py
VIP=198.19.0.40
N=12
M=3
cp "$RM_SOURCE_DIR/tests/data/policy/table/deny-admin-suffix.yaml" "$RM_TMP/control/mesh/deny-admin.yaml"
rm_mesh_service orders.yaml orders shop "$VIP" 8080 orders

rm_pod_create orders
rm_pod_create web
# workload WORKLOAD NAMESPACE SERVICE_ACCOUNT ADDRESS: the pod (node id) WORKLOAD as a Workload document
workload() {
    cat >"$RM_TMP/control/mesh/workload-$1.yaml" <<EOF
apiVersion: ringmesh.io/v1alpha1
kind: Workload
metadata: {name: $1, namespace: $2}
spec: {addresses: [$4], serviceAccount: $3, app: $1, version: v1}
EOF
}
workload orders shop orders "${RM_POD_IP[orders]}"
workload web web frontend "${RM_POD_IP[web]}"
rm_service "$VIP:8080" orders:8080
rm_bg app orders "$RM_TMP/logs/app.log" /usr/bin/python3 "$APP" http 8080
rm_wait_port orders 8080 10 app
rm_control_start main node 0.0.0.0:15012
rm_pod_mesh orders "control=$(rm_pod_gateway orders):15012" ns=shop sa=orders labels=app=orders,version=v1
rm_pod_mesh web "control=$(rm_pod_gateway web):15012" ns=web sa=frontend labels=app=web
rm_wait_ready orders
rm_wait_ready web

# request PATH: web's GET of PATH on orders; prints the status
request() {
    rm_exec web curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://$VIP:8080$1" || true
}
rm_assert_eq "$(request /warmup)" 200 "a first request goes through"

# The command scrapes once, sleeps the interval, scrapes again: the requests go in while it sleeps (its wait
# channel says so), all of them long before the second scrape.
rm_bg stat orders "$RM_TMP/logs/stat.json" "$RM_CTL_BIN" stat --admin 127.0.0.1:15021 -n shop --interval 10s \
    --once -o json
deadline=$(($(rm_now_ms) + 10000))
until [[ $(cat "/proc/${RM_PID[stat]}/wchan" 2>/dev/null) == *nanosleep* ]]; do
    rm_alive stat || rm_fail "ringmeshctl stat exited early: $(cat "$RM_TMP/logs/stat.json.stderr")"
    [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "ringmeshctl stat did not finish its first scrape within 10 s"
    sleep 0.05
done
start=$(rm_now_ms)
for i in $(seq 1 "$N"); do
    rm_assert_eq "$(request "/orders/$i")" 200 "allowed request $i"
done
for i in $(seq 1 "$M"); do
    rm_assert_eq "$(request "/shop/$i/admin")" 403 "denied request $i"
done
rm_log "the $((N + M)) requests took $(($(rm_now_ms) - start)) ms"
rm_alive stat || rm_fail "ringmeshctl stat ended before the requests did: they would not be between its scrapes"
rm_wait_exit stat 30
rm_assert_eq "$RM_RC" 0 "ringmeshctl stat: exit status ($(cat "$RM_TMP/logs/stat.json.stderr"))"
OUT=$(cat "$RM_TMP/logs/stat.json")
rm_log "stat: $(jq -c . <<<"$OUT")"

rm_assert_eq "$(jq 'length' <<<"$OUT")" 1 "one workload in namespace shop"
rm_assert_eq "$(jq -r '.[0].namespace + "/" + .[0].workload' <<<"$OUT")" shop/orders "its name"
rm_assert_eq "$(jq '.[0].requests == '"$((N + M))" <<<"$OUT")" true "requests between the two scrapes ($((N + M)))"
# shellcheck disable=SC2016 # $-names are jq's
jq -e --argjson n "$N" --argjson m "$M" '.[0]
    | (.deny_per_s / .req_per_s - $m / ($n + $m) | fabs) < 1e-9
    and .success == 1 and .mtls == 1 and .p50_ms != null and .p99_ms >= .p50_ms' <<<"$OUT" >/dev/null ||
    rm_fail "denies, successes, mTLS share or latency are not those of the requests made: $OUT"
rm_log "ok: $M of $((N + M)) denied, all successful, all over mTLS, p50 $(jq '.[0].p50_ms' <<<"$OUT") ms"
rm_log PASS
