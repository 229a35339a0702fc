#!/usr/bin/env bash
#
# The namespace mesh configured from the Kubernetes API: the stand-in API server (tests/k8s/apiserver) and
# ringmesh-control --source kubernetes run in the node namespace; pods web and orders run real proxies that get
# their SVIDs and configuration from the control plane. The API holds the Service, its EndpointSlice, the Pods and a
# ringmesh.io AuthorizationPolicy that denies GET requests to workloads labelled tier=locked.
#   - web -> orders' cluster IP is mTLS with the identities the API's pods run as, to the pod of the EndpointSlice;
#   - the EndpointSlice's endpoint made not ready through the API gets no connection (logged), ready again gets them;
#   - the labels policies select on are the API's: orders' proxy claims tier=locked in its own node metadata, and is
#     not denied while the API says tier=open;
#   - relabelling the pod through the API moves it into the policy's selector: its proxy takes the new
#     WorkloadPolicy (the delay is logged, from the API's request log to the proxy's log) and denies; relabelling it back
#     allows again;
#   - a proxy whose pod the API does not know is refused its Discovery stream, with the reason.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../k8s/apiserver/lib_apiserver.sh
source "$(dirname "${BASH_SOURCE[0]}")/../k8s/apiserver/lib_apiserver.sh"
rm_require_cmds curl jq openssl /usr/bin/python3
rm_setup
RM_DEFAULT_ACTION=ALLOW rm_control_init

APP=$RM_SOURCE_DIR/tests/e2e/tools/http_app.py
VIP=198.19.0.30
TD=$RM_TRUST_DOMAIN

rm_pod_create orders
rm_pod_create web
rm_pod_create stranger
rm_service "$VIP:8080" orders:8080
rm_bg app-http orders "$RM_TMP/logs/app-http.log" /usr/bin/python3 "$APP" http 8080
rm_wait_port orders 8080 10 app-http

# the API server lives in the node namespace, beside the control plane
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
pod_json() { # NS NAME SA IP LABELS_JSON
    printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s","namespace":"%s","labels":%s,
        "annotations":{"ringmesh.io/status":"{\\"version\\":\\"test\\"}"}},
        "spec":{"serviceAccountName":"%s","containers":[{"name":"app","image":"registry.example/app:1"}]}}' \
        "$2" "$1" "$5" "$3"
}
for ns in shop web; do
    kpost /api/v1/namespaces "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$ns\"}}"
done
kpost /api/v1/namespaces/shop/pods "$(pod_json shop orders orders "${RM_POD_IP[orders]}" '{"app":"orders","tier":"open"}')"
kpost /api/v1/namespaces/web/pods "$(pod_json web web frontend "${RM_POD_IP[web]}" '{"app":"web"}')"
kpost /api/v1/namespaces/shop/services '{"apiVersion":"v1","kind":"Service","metadata":{"name":"orders","namespace":"shop"},
    "spec":{"clusterIP":"'$VIP'","ports":[{"name":"http","port":8080,"protocol":"TCP"}]}}'
kpost /apis/discovery.k8s.io/v1/namespaces/shop/endpointslices '{"apiVersion":"discovery.k8s.io/v1",
    "kind":"EndpointSlice","metadata":{"name":"orders-1","namespace":"shop","labels":{"kubernetes.io/service-name":"orders"}},
    "addressType":"IPv4","endpoints":[{"addresses":["'"${RM_POD_IP[orders]}"'"],"conditions":{"ready":true},
    "targetRef":{"kind":"Pod","name":"orders","namespace":"shop"}}],"ports":[{"name":"http","port":8080,"protocol":"TCP"}]}'
kpost /apis/apiextensions.k8s.io/v1/customresourcedefinitions '{"apiVersion":"apiextensions.k8s.io/v1",
    "kind":"CustomResourceDefinition","metadata":{"name":"authorizationpolicies.ringmesh.io"},
    "spec":{"group":"ringmesh.io","scope":"Namespaced","names":{"plural":"authorizationpolicies",
    "singular":"authorizationpolicy","kind":"AuthorizationPolicy","listKind":"AuthorizationPolicyList"},
    "versions":[{"name":"v1alpha1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object",
    "properties":{"spec":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}}}]}}'
kpost /apis/ringmesh.io/v1alpha1/namespaces/shop/authorizationpolicies '{"apiVersion":"ringmesh.io/v1alpha1",
    "kind":"AuthorizationPolicy","metadata":{"name":"lock-down","namespace":"shop"},
    "spec":{"selector":{"matchLabels":{"tier":"locked"}},"action":"DENY","rules":[{"to":[{"operation":{"methods":["GET"]}}]}]}}'

rm_bg control-main node "$RM_TMP/logs/control-main.log" "$RM_CONTROL_BIN" --source kubernetes \
    --kubeconfig "$RM_KUBECONFIG" --mesh-config "$RM_TMP/control/mesh/mesh.yaml" --listen 0.0.0.0:15012 \
    --admin-listen off --state-dir "$RM_TMP/control/state" --jwks "$RM_TMP/control/jwks.json" --log-level debug
CLOG=$RM_TMP/logs/control-main.log
rm_wait_log "$CLOG" '.event == "control_started"' 30 >/dev/null || {
    cat "$CLOG" "$CLOG.stderr" >&2 || true
    rm_fail "ringmesh-control did not start"
}
rm_expect_log "$CLOG" '.event == "config_accepted" and .source == "kubernetes" and .policies == 1' \
    "the control plane built the model from the API"

# orders' proxy claims tier=locked for itself: the control plane must not believe it
rm_pod_mesh orders "control=$(rm_pod_gateway orders):15012" ns=shop sa=orders labels=tier=locked
rm_pod_mesh web "control=$(rm_pod_gateway web):15012" ns=web sa=frontend labels=app=web
rm_wait_ready orders
rm_wait_ready web
OLOG=$(rm_proxy_log orders)
URL=http://$VIP:8080

# get PATH: the HTTP status web gets for GET PATH on orders' cluster IP
get() {
    rm_exec web curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$URL$1" || true
}

# relabel TIER: patches pod shop/orders' tier label through the API; prints ms from the API's answer to the next
# WorkloadPolicy orders' proxy accepts
relabel() {
    local n v0 other t_api t_log
    # the WorkloadPolicy in force now; the relabel's is the next one of another version (a push that repeats the
    # version in force, or a late one of an earlier change, is not the relabel's)
    v0=$(rm_log_select "$OLOG" '.event == "config_accepted" and .type == "workload_policy"' | tail -n 1 | jq -r .version)
    other='.event == "config_accepted" and .type == "workload_policy" and .version != "'"$v0"'"'
    n=$(rm_log_count "$OLOG" "$other")
    kapi PATCH /api/v1/namespaces/shop/pods/orders -H 'Content-Type: application/merge-patch+json' \
        -d "{\"metadata\":{\"labels\":{\"tier\":\"$1\"}}}" >/dev/null
    t_api=$(jq -r 'select(.method == "PATCH" and .path == "/api/v1/namespaces/shop/pods/orders") | .time' \
        "$RM_KUBE_LOG" | tail -n 1)
    rm_expect_log_nth "$OLOG" "$other" $((n + 1)) "orders' proxy takes a new WorkloadPolicy after tier=$1" >&2
    t_log=$(rm_json "$RM_LINE" .ts)
    /usr/bin/python3 -c 'import sys, datetime
t = datetime.datetime.strptime(sys.argv[2].rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc)
print(int((t.timestamp() - float(sys.argv[1])) * 1000))' "$t_api" "$t_log"
}

case_mtls_from_api() {
    rm_assert_eq "$(get /hello)" 200 "web -> orders' cluster IP is allowed"
    rm_expect_log "$(rm_proxy_log web)" ".event == \"connection\" and .direction == \"outbound\" and .mode == \"mtls\"
        and .peer_id == \"spiffe://$TD/ns/shop/sa/orders\" and (.dst | addr) == \"$VIP:8080\"" \
        "web's proxy used mTLS to the identity of orders' pod, from its EndpointSlice"
    rm_expect_log "$(rm_proxy_log web)" ".event == \"connection\" and .direction == \"outbound\"
        and (.upstream | addr) == \"${RM_POD_IP[orders]}:8080\"" \
        "web's proxy connected to the pod of the EndpointSlice, not to the cluster IP"
    rm_expect_log "$OLOG" ".event == \"connection\" and .direction == \"inbound\" and .mode == \"mtls\"
        and .peer_id == \"spiffe://$TD/ns/web/sa/frontend\"" "orders' proxy saw web's identity"
}

case_labels_from_api() {
    rm_expect_log "$CLOG" '.event == "stream_opened" and .node == "orders"' "orders' stream is open"
    rm_assert_eq "$(get /claimed)" 200 "the proxy's own claim of tier=locked does not select it"
    rm_expect_no_log "$OLOG" '.event == "authz" and .decision == "deny"' "no denial so far"
}

case_relabel_moves_workload() {
    local ms
    ms=$(relabel locked)
    rm_log "tier=locked reached orders' proxy $ms ms after the API took it"
    rm_expect_log "$CLOG" '.event == "workload_labels_changed" and .node == "orders"' "the control plane saw the new labels"
    rm_assert_eq "$(get /locked)" 403 "now denied"
    rm_expect_log "$OLOG" '.event == "authz" and .decision == "deny" and .policy == "shop/lock-down"
        and .source_principal == "spiffe://'"$TD"'/ns/web/sa/frontend"' "the denial names the policy"
    ms=$(relabel open)
    rm_log "tier=open reached orders' proxy $ms ms after the API took it"
    rm_assert_eq "$(get /open-again)" 200 "allowed again"
}

case_unknown_pod_refused() {
    # a proxy with a valid SVID whose pod the API does not know
    rm_pod_mesh stranger "control=$(rm_pod_gateway stranger):15012" ns=shop sa=orders
    rm_expect_log "$CLOG" '.event == "stream_refused" and .grpcStatus == 7
        and (.reason | test("pod shop/stranger \\(the node id\\) is not known"))' \
        "the stream of an unknown pod is refused, naming the pod" 15
}

# slice_ready true|false: orders' EndpointSlice endpoint made ready or not through the API
slice_ready() {
    kapi PATCH /apis/discovery.k8s.io/v1/namespaces/shop/endpointslices/orders-1 \
        -H 'Content-Type: application/merge-patch+json' -d '{"endpoints":[{"addresses":["'"${RM_POD_IP[orders]}"'"],
        "conditions":{"ready":'"$1"'},"targetRef":{"kind":"Pod","name":"orders","namespace":"shop"}}]}' >/dev/null
}

case_endpoint_readiness_from_api() {
    local wlog n v0
    wlog=$(rm_proxy_log web)
    v0=$(rm_log_select "$wlog" '.event == "config_accepted" and .type == "destinations"' | tail -n 1 | jq -r .version)
    slice_ready false
    rm_expect_log "$wlog" ".event == \"config_accepted\" and .type == \"destinations\" and .version != \"$v0\"" \
        "web's proxy takes the endpoint's new readiness" 15
    rm_assert_eq "$(get /not-ready)" 000 "with its only endpoint not ready, web's connection is refused"
    rm_expect_log "$wlog" '.event == "no_ready_endpoint" and (.dst | addr) == "'"$VIP"':8080"' \
        "web's proxy logs that no endpoint is ready"
    n=$(rm_log_count "$OLOG" '.event == "connection" and .direction == "inbound"')
    local d
    d=$(rm_log_count "$wlog" '.event == "config_accepted" and .type == "destinations"')
    slice_ready true
    rm_expect_log_nth "$wlog" '.event == "config_accepted" and .type == "destinations"' $((d + 1)) \
        "web's proxy takes the endpoint ready again"
    rm_assert_eq "$(get /ready-again)" 200 "ready again: allowed"
    rm_expect_log_nth "$OLOG" '.event == "connection" and .direction == "inbound"' $((n + 1)) \
        "orders' proxy got the connection"
}

rm_case "mTLS with identities from the API" case_mtls_from_api
rm_case "endpoint readiness follows the EndpointSlice" case_endpoint_readiness_from_api
rm_case "policy selection uses the API's labels" case_labels_from_api
rm_case "a relabelled pod moves in and out of a policy" case_relabel_moves_workload
rm_case "an unknown pod is refused" case_unknown_pod_refused
rm_finish
