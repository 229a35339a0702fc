#!/usr/bin/env bash
#
# Who the workloads are, and the access log, in the namespace mesh configured from the Kubernetes API (the stand-in
# API server and ringmesh-control --source kubernetes in the node namespace; pods with real proxies):
#   - pods of a Deployment (ReplicaSet owner, pod-template-hash), a StatefulSet and a bare pod get Istio's
#     workload name, namespace, app, version and principal pushed in their WorkloadMap: read from each proxy's
#     /config_dump, for itself and for its peers by pod IP;
#   - the mesh leaves the access log off, and the pod annotation ringmesh.io/access-log: "true" turns it on for
#     one workload only: an HTTP request web -> orders writes one "access" line in orders' proxy, and so does a
#     connection of other bytes, as TCP (with the
#     peer's workload, principals, bytes, mTLS, the L4 decision) and none in web's;
#   - changing the annotations through the API moves the access log to the other workload: web's proxy then
#     writes the outbound line (destination service and workload), orders' no longer does.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../k8s/apiserver/lib_apiserver.sh
source "$(dirname "${BASH_SOURCE[0]}")/../k8s/apiserver/lib_apiserver.sh"
rm_require_cmds curl jq openssl /usr/bin/python3
rm_setup
RM_DEFAULT_ACTION=ALLOW rm_control_init

APP=$RM_SOURCE_DIR/tests/e2e/tools/http_app.py
VIP=198.19.0.40
TD=$RM_TRUST_DOMAIN

rm_pod_create orders
rm_pod_create ledger
rm_pod_create web
rm_service "$VIP:8080" orders:8080
rm_bg app-http orders "$RM_TMP/logs/app-http.log" /usr/bin/python3 "$APP" http 8080
rm_wait_port orders 8080 10 app-http

rm_kube_api_start node --service-cidr 198.19.0.0/24
# kapi METHOD PATH [CURL ARG]...: one request as the admin, from the node namespace; fails on an HTTP error
kapi() {
    local method=$1 path=$2
    shift 2
    ip netns exec "$(rm_ns node)" curl -sS -f --max-time 20 --cacert "$RM_KUBE_CA" \
        -H "Authorization: Bearer $RM_KUBE_TOKEN" -X "$method" "$@" "$RM_KUBE_URL$path" ||
        rm_fail "$method $path failed"
}
kpost() {
    kapi POST "$1" -H 'Content-Type: application/json' -d "$2" >/dev/null
}
kmerge() { # PATH JSON: a merge patch
    kapi PATCH "$1" -H 'Content-Type: application/merge-patch+json' -d "$2" >/dev/null
}
# pod NS NAME SA METADATA_EXTRA: creates the pod, then sets its IP through the status subresource, as the kubelet
pod() {
    kpost "/api/v1/namespaces/$1/pods" "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"$2\",
        \"namespace\":\"$1\"$4},\"spec\":{\"serviceAccountName\":\"$3\",
        \"containers\":[{\"name\":\"app\",\"image\":\"registry.example/app:1\"}]}}"
    kmerge "/api/v1/namespaces/$1/pods/$2/status" \
        "{\"status\":{\"phase\":\"Running\",\"podIP\":\"${RM_POD_IP[$2]}\",\"podIPs\":[{\"ip\":\"${RM_POD_IP[$2]}\"}]}}"
}
INJECTED='"ringmesh.io/status":"{\"version\":\"test\"}"'
for ns in shop web; do
    kpost /api/v1/namespaces "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$ns\"}}"
done
# a Deployment's pod (its ReplicaSet is orders-5d8f7b9c4, the template hash 5d8f7b9c4), access log on
pod shop orders orders ",\"labels\":{\"app.kubernetes.io/name\":\"orders\",\"app\":\"orders-legacy\",
    \"version\":\"v2\",\"pod-template-hash\":\"5d8f7b9c4\"},
    \"annotations\":{$INJECTED,\"ringmesh.io/access-log\":\"true\"},
    \"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"orders-5d8f7b9c4\",
    \"uid\":\"6f0c1d1e-0000-4000-8000-000000000001\",\"controller\":true}]"
# a StatefulSet's pod
pod shop ledger ledger ",\"labels\":{\"app\":\"ledger\",\"app.kubernetes.io/version\":\"3.1\"},
    \"annotations\":{$INJECTED},\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"StatefulSet\",
    \"name\":\"ledger\",\"uid\":\"6f0c1d1e-0000-4000-8000-000000000002\",\"controller\":true}]"
# a bare pod, no labels
pod web web frontend ",\"annotations\":{$INJECTED}"
kpost /api/v1/namespaces/shop/services '{"apiVersion":"v1","kind":"Service","metadata":{"name":"orders","namespace":"shop"},
    "spec":{"clusterIP":"'$VIP'","ports":[{"name":"http","port":8080,"protocol":"TCP"}]}}'
kpost /apis/discovery.k8s.io/v1/namespaces/shop/endpointslices '{"apiVersion":"discovery.k8s.io/v1",
    "kind":"EndpointSlice","metadata":{"name":"orders-1","namespace":"shop","labels":{"kubernetes.io/service-name":"orders"}},
    "addressType":"IPv4","endpoints":[{"addresses":["'"${RM_POD_IP[orders]}"'"],"conditions":{"ready":true},
    "targetRef":{"kind":"Pod","name":"orders","namespace":"shop"}}],"ports":[{"name":"http","port":8080,"protocol":"TCP"}]}'

rm_bg control-main node "$RM_TMP/logs/control-main.log" "$RM_CONTROL_BIN" --source kubernetes \
    --kubeconfig "$RM_KUBECONFIG" --mesh-config "$RM_TMP/control/mesh/mesh.yaml" --listen 0.0.0.0:15012 \
    --admin-listen off --state-dir "$RM_TMP/control/state" --jwks "$RM_TMP/control/jwks.json"
CLOG=$RM_TMP/logs/control-main.log
rm_wait_log "$CLOG" '.event == "control_started"' 30 >/dev/null || {
    cat "$CLOG" "$CLOG.stderr" >&2 || true
    rm_fail "ringmesh-control did not start"
}

rm_pod_mesh orders "control=$(rm_pod_gateway orders):15012" ns=shop sa=orders
rm_pod_mesh ledger "control=$(rm_pod_gateway ledger):15012" ns=shop sa=ledger
rm_pod_mesh web "control=$(rm_pod_gateway web):15012" ns=web sa=frontend
rm_wait_ready orders
rm_wait_ready ledger
rm_wait_ready web
OLOG=$(rm_proxy_log orders)
WLOG=$(rm_proxy_log web)
LLOG=$(rm_proxy_log ledger)

# dump POD: the proxy's /config_dump "workloads" section
dump() {
    rm_exec "$1" curl -sS --max-time 5 http://127.0.0.1:15021/config_dump | jq -c .workloads ||
        rm_fail "no /config_dump from pod $1"
}
# expect_self POD NAME NAMESPACE APP VERSION SA ACCESS_LOG
expect_self() {
    local got want
    got=$(dump "$1" | jq -c .self)
    want=$(jq -nc --arg n "$2" --arg ns "$3" --arg a "$4" --arg v "$5" --arg p "spiffe://$TD/ns/$3/sa/$6" \
        --arg l "$7" '{name: $n, namespace: $ns, app: $a, version: $v, principal: $p, access_log: $l}')
    rm_assert_eq "$got" "$want" "pod $1's proxy knows its own workload"
}
# expect_peer POD PEER NAME NAMESPACE APP VERSION SA: POD's proxy knows PEER by its IP
expect_peer() {
    local got want
    got=$(dump "$1" | jq -c --arg ip "${RM_POD_IP[$2]}" '[.peers[] | select(.addresses | index($ip))] | .[0]
        | del(.addresses)')
    want=$(jq -nc --arg n "$3" --arg ns "$4" --arg a "$5" --arg v "$6" --arg p "spiffe://$TD/ns/$4/sa/$7" \
        '{name: $n, namespace: $ns, app: $a, version: $v, principal: $p}')
    rm_assert_eq "$got" "$want" "pod $1's proxy knows pod $2 by its address"
}
# http PATH: one HTTP/1.1 request web -> orders' cluster IP (both proxies observe it: one line per exchange);
# prints the status
http() {
    rm_exec web curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://$VIP:8080$1" || true
}

case_workloads_pushed() {
    expect_self orders orders shop orders v2 orders on
    expect_self ledger ledger shop ledger 3.1 ledger mesh
    expect_self web web web web latest frontend mesh
    expect_peer web orders orders shop orders v2 orders
    expect_peer web ledger ledger shop ledger 3.1 ledger
    expect_peer orders web web web web latest frontend
    rm_assert_eq "$(dump orders | jq '.peers_total')" 3 "every pod with an address is a peer"
}

case_access_log_one_workload() {
    local line
    rm_assert_eq "$(http /first)" 200 "web -> orders"
    rm_expect_log "$OLOG" '.event == "access" and .reporter == "destination"' "orders' proxy logs the connection"
    line=$RM_LINE
    rm_assert_eq "$(rm_json "$line" '[.protocol, .response_flags, .connection_security_policy, .authz_decision,
        .source_workload, .source_namespace, .source_app, .source_version, .source_principal,
        .destination_workload, .destination_namespace, .destination_app, .destination_version,
        .destination_principal] | join(" ")')" \
        "HTTP/1.1 - mutual_tls allow web web web latest spiffe://$TD/ns/web/sa/frontend orders shop orders v2 spiffe://$TD/ns/shop/sa/orders" \
        "the line names both workloads, their principals, mTLS and the decision"
    rm_assert_eq "$(rm_json "$line" '.downstream_remote_address | sub("^\\[::ffff:(?<ip>[0-9.]+)\\]"; "\(.ip)")
        | sub(":[0-9]+$"; "")')" "${RM_POD_IP[web]}" "the downstream is web's pod"
    rm_assert_eq "$(rm_json "$line" '(.bytes_received == 0) and (.bytes_sent > 0) and (.duration >= 0)
        and (.start_time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$"))')" true \
        "body bytes (none in, the response's out), a duration and an RFC 3339 start time"
    rm_assert_eq "$(rm_json "$line" '[.method, .path, .response_code] | join(" ")')" "GET /first 200" \
        "the request's method, path and status"
    rm_assert_eq "$(rm_log_count "$OLOG" '.event == "access"')" 1 "one line for one request"
    # bytes that are not HTTP: the connection is TCP, and its line is the connection's
    rm_exec web sh -c "printf 'ping\r\n' | socat -t 2 - TCP:$VIP:8080" >/dev/null 2>&1 || true
    rm_expect_log "$OLOG" '.event == "access" and .protocol == "TCP"' "a connection of other bytes is logged as TCP"
    rm_assert_eq "$(rm_json "$RM_LINE" '[.source_workload, .destination_workload, .connection_security_policy,
        (.bytes_received == 6)] | join(" ")')" "web orders mutual_tls true" "its line names the workloads and its bytes"
    rm_assert_eq "$(rm_log_count "$OLOG" '.event == "access"')" 2 "one line for that connection"
    rm_expect_no_log "$WLOG" '.event == "access"' "web's proxy (no annotation, mesh off) logs nothing"
    rm_expect_no_log "$LLOG" '.event == "access"' "nor does ledger's"
}

case_annotation_moves() {
    local n no
    n=$(rm_log_count "$WLOG" '.event == "config_accepted" and .type == "workloads"')
    no=$(rm_log_count "$OLOG" '.event == "config_accepted" and .type == "workloads"')
    kmerge /api/v1/namespaces/shop/pods/orders '{"metadata":{"annotations":{"ringmesh.io/access-log":"false"}}}'
    kmerge /api/v1/namespaces/web/pods/web '{"metadata":{"annotations":{"ringmesh.io/access-log":"true"}}}'
    rm_expect_log_nth "$WLOG" '.event == "config_accepted" and .type == "workloads"' $((n + 1)) \
        "web's proxy takes its new WorkloadMap"
    rm_expect_log_nth "$OLOG" '.event == "config_accepted" and .type == "workloads"' $((no + 1)) "orders' too"
    local deadline=$(($(rm_now_ms) + 10000))
    until [ "$(dump orders | jq -r .self.access_log)" = off ]; do
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "orders' proxy never took access_log off"
        sleep 0.1
    done
    rm_assert_eq "$(http /second)" 200 "web -> orders again"
    rm_expect_log "$WLOG" '.event == "access" and .reporter == "source"' "web's proxy now logs it"
    rm_assert_eq "$(rm_json "$RM_LINE" '[.protocol, .destination_service, .destination_workload,
        .destination_principal, .source_workload, .connection_security_policy,
        (.upstream_host | sub(":[0-9]+$"; ""))] | join(" ")')" \
        "HTTP/1.1 orders.shop.svc.cluster.local orders spiffe://$TD/ns/shop/sa/orders web mutual_tls ${RM_POD_IP[orders]}" \
        "the outbound line names the service, its workload and identity, and the endpoint the proxy chose"
    rm_assert_eq "$(rm_log_count "$OLOG" '.event == "access"')" 2 "orders' proxy wrote no new line"
}

rm_case "Deployment, StatefulSet and bare pod workloads are pushed" case_workloads_pushed
rm_case "the annotation turns the access log on for one workload" case_access_log_one_workload
rm_case "the annotation moves through the API" case_annotation_moves
rm_finish
