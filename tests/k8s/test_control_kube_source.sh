#!/usr/bin/env bash
# ringmesh-control with --source kubernetes against the stand-in API server (tests/k8s/apiserver):
#   - it builds the model from Services, EndpointSlices and Pods: a Discovery stream (Debian's python3-grpcio, as a
#     pod the API knows) receives the destinations, in the mesh with the service accounts of the injected pods;
#   - it follows a change (the delay is measured from the API's request log to the control plane's log);
#   - it survives history compaction (410 Gone: relist), dropped and cut watches, 500s and a stalled server (backoff,
#     no crash, the last good model still served) and then follows changes again;
#   - a policy resource the loader refuses is logged with its name and reason and skipped; the valid one is used;
#   - /metrics counts each 410, failed watch and refused object in ringmesh_control_source_errors_total, as often as
#     the log names them;
#   - a second replica lists 1,200 pods in pages of 500, restarts its list when a continue token expires, and
#     computes the same version as the first.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib_k8s.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib_k8s.sh"
# shellcheck source-path=SCRIPTDIR source=apiserver/lib_apiserver.sh
source "$(dirname "${BASH_SOURCE[0]}")/apiserver/lib_apiserver.sh"
PY=/usr/bin/python3
rm_require_cmds protoc jq curl openssl
"$PY" -c "import grpc, google.protobuf" 2>/dev/null ||
    rm_fail "Debian's python3-grpcio / python3-protobuf are missing: run scripts/bootstrap.sh"
rm_setup_no_netns
rm_control_init

# no periodic bookmarks: the informers' resourceVersions stay where their last event left them (for the 410 case).
# RBAC is enforced: the admin may do everything; the control plane's ServiceAccount only what its ClusterRole says
# (docs/control-config.md, "The Kubernetes source": the replicas started later run with it).
SA=system:serviceaccount:ringmesh-system:ringmesh-control
SA_TOKEN=sa-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
rm_kube_api_start - --bookmark-seconds 600 --service-cidr 198.19.0.0/24 --authorize --token "$SA_TOKEN=$SA"
rm_kube_config "$SA_TOKEN" "$RM_TMP/sa.kubeconfig"

# kpost PATH JSON: creates an object as the admin; fails the test on an HTTP error
kpost() {
    rm_kube_api POST "$1" -f -H 'Content-Type: application/json' -d "$2" >/dev/null
}
kdelete() {
    rm_kube_api DELETE "$1" -f >/dev/null
}
pod_json() { # NS NAME SA INJECTED LABELS_JSON
    local ann='{}'
    [ "$4" = yes ] && ann='{"ringmesh.io/status": "{\"version\":\"test\"}"}'
    printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s","namespace":"%s","labels":%s,"annotations":%s},
        "spec":{"serviceAccountName":"%s","containers":[{"name":"app","image":"registry.example/app:1"}]}}' \
        "$2" "$1" "$5" "$ann" "$3"
}
service_json() { # NS NAME CLUSTER_IP PORT
    printf '{"apiVersion":"v1","kind":"Service","metadata":{"name":"%s","namespace":"%s"},
        "spec":{"clusterIP":"%s","ports":[{"name":"tcp","port":%s,"protocol":"TCP"}]}}' "$2" "$1" "$3" "$4"
}
slice_json() { # NS SERVICE POD IP
    printf '{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"%s-1","namespace":"%s",
        "labels":{"kubernetes.io/service-name":"%s"}},"addressType":"IPv4",
        "endpoints":[{"addresses":["%s"],"conditions":{"ready":true},"targetRef":{"kind":"Pod","name":"%s",
        "namespace":"%s"}}],"ports":[{"name":"tcp","port":8080,"protocol":"TCP"}]}' "$2" "$1" "$2" "$4" "$3" "$1"
}

kpost /api/v1/namespaces '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop"}}'
kpost /api/v1/namespaces/shop/pods "$(pod_json shop orders-1 orders yes '{"app":"orders"}')"
kpost /api/v1/namespaces/shop/pods "$(pod_json shop interop-client orders yes '{"app":"client"}')"
kpost /api/v1/namespaces/shop/pods "$(pod_json shop legacy-1 legacy no '{"app":"legacy"}')"
kpost /api/v1/namespaces/shop/services "$(service_json shop orders 198.19.0.10 8080)"
kpost /api/v1/namespaces/shop/services "$(service_json shop legacy 198.19.0.11 80)"
kpost /apis/discovery.k8s.io/v1/namespaces/shop/endpointslices "$(slice_json shop orders orders-1 198.18.5.10)"
kpost /apis/discovery.k8s.io/v1/namespaces/shop/endpointslices "$(slice_json shop legacy legacy-1 198.18.5.11)"

# the least privilege the Kubernetes source needs: read the objects it watches, nothing else
kpost /api/v1/namespaces '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"ringmesh-system"}}'
kpost /apis/rbac.authorization.k8s.io/v1/clusterroles '{"apiVersion":"rbac.authorization.k8s.io/v1",
    "kind":"ClusterRole","metadata":{"name":"ringmesh-control"},"rules":[
    {"apiGroups":[""],"resources":["pods","services","namespaces"],"verbs":["get","list","watch"]},
    {"apiGroups":["discovery.k8s.io"],"resources":["endpointslices"],"verbs":["get","list","watch"]},
    {"apiGroups":["apiextensions.k8s.io"],"resources":["customresourcedefinitions"],"verbs":["get","list","watch"]},
    {"apiGroups":["ringmesh.io","security.istio.io"],"resources":["authorizationpolicies","peerauthentications"],
     "verbs":["get","list","watch"]},
    {"apiGroups":["gateway.networking.k8s.io"],"resources":["httproutes","grpcroutes"],"verbs":["get","list","watch"]}]}'
kpost /apis/rbac.authorization.k8s.io/v1/clusterrolebindings '{"apiVersion":"rbac.authorization.k8s.io/v1",
    "kind":"ClusterRoleBinding","metadata":{"name":"ringmesh-control"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io",
    "kind":"ClusterRole","name":"ringmesh-control"},"subjects":[{"kind":"ServiceAccount","name":"ringmesh-control",
    "namespace":"ringmesh-system"}]}'

PORT=$((20000 + $$ % 12000)) # below the kernel's ephemeral ports (32768-), which a client's connection may hold
# control_start NAME PORT [KUBECONFIG]: a replica with the Kubernetes source (a 3 s request timeout, so that a stalled API
# server is noticed quickly); waits for control_started. The ringmesh-root-cert ConfigMaps are not published
# (--no-root-cert): this test's ClusterRole is the source's own least privilege, and test_control_cluster.sh covers
# the publishing with the chart's RBAC
control_start() {
    rm_bg "control-$1" - "$RM_TMP/logs/control-$1.log" "$RM_CONTROL_BIN" --source kubernetes \
        --kubeconfig "${3:-$RM_KUBECONFIG}" --mesh-config "$RM_TMP/control/mesh/mesh.yaml" --kube-timeout 3s \
        --listen "127.0.0.1:$2" --admin-listen "127.0.0.1:$(($2 + 1))" --state-dir "$RM_TMP/control/state-$1" \
        --jwks "$RM_TMP/control/jwks.json" --log-level debug --no-root-cert
    rm_wait_log "$RM_TMP/logs/control-$1.log" '.event == "control_started"' 60 >/dev/null || {
        cat "$RM_TMP/logs/control-$1.log" "$RM_TMP/logs/control-$1.log.stderr" >&2 || true
        rm_fail "ringmesh-control $1 did not start"
    }
}
control_start main "$PORT"
CLOG=$RM_TMP/logs/control-main.log
ADDR=127.0.0.1:$PORT
BUNDLE=$RM_TMP/control/state-main/trust-bundle.pem

PYOUT=$RM_TMP/py
mkdir -p "$PYOUT"
protoc --proto_path="$RM_SOURCE_DIR/proto" --python_out="$PYOUT" ringmesh/v1/identity.proto ringmesh/v1/route.proto ringmesh/v1/discovery.proto
touch "$PYOUT/ringmesh/__init__.py" "$PYOUT/ringmesh/v1/__init__.py"
interop() {
    "$PY" "$RM_SOURCE_DIR/tests/e2e/tools/grpc_interop.py" "$PYOUT" "$@"
}
W=$RM_TMP/w
mkdir -p "$W"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/key.pem" 2>/dev/null
openssl req -new -key "$W/key.pem" -subj /CN=interop -out "$W/csr.pem" 2>/dev/null
rm_token shop orders "$W/token" --pod interop-client --pod-uid 3f1c2a4e-0000-4000-8000-000000000002 --audience ringmesh
line=$(interop sign "$ADDR" "$BUNDLE" "$W/token" "$W/csr.pem" "$W/svid" 3600)
[ "$(rm_json "$line" .ok)" = true ] || rm_fail "no SVID for the Discovery client: $line"

# destinations ADDR: the DestinationMap a Discovery stream receives (as pod shop/interop-client), as JSON
destinations() {
    local out
    out=$(interop stream "$1" "$BUNDLE" "$W/svid-chain.pem" "$W/key.pem" shop orders)
    printf '%s\n' "$out" | jq -c 'select(.step == "push" and .type == "DestinationMap") | .destinations' | tail -n 1
}
dest_of() { # JSON NS/NAME: the destination's JSON
    jq -c --arg n "$2" '.[] | select(.name == $n)' <<<"$1"
}

# latency PATH_REGEX: ms from the API's last request matching PATH_REGEX to the next config_accepted of the main
# replica (both clocks are this host's)
latency() {
    local t_api t_log
    t_api=$(jq -r --arg p "$1" 'select(.path | test($p)) | select(.method != "GET") | .time' "$RM_KUBE_LOG" | tail -n 1)
    rm_wait_log "$CLOG" ".event == \"config_accepted\" and .source == \"kubernetes\" and .services == $2" 10 >/dev/null ||
        rm_fail "no config_accepted with $2 services after the change"
    t_log=$(rm_log_select "$CLOG" ".event == \"config_accepted\" and .services == $2" | tail -n 1 | jq -r .ts)
    "$PY" -c 'import sys, datetime
t = datetime.datetime.strptime(sys.argv[2].rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc)
print(int((t.timestamp() - float(sys.argv[1])) * 1000))' "$t_api" "$t_log"
}

case_builds_model() {
    rm_expect_log "$CLOG" '.event == "config_accepted" and .source == "kubernetes"' "the first model is logged"
    local d o
    d=$(destinations "$ADDR")
    rm_log "destinations: $d"
    o=$(dest_of "$d" shop/orders)
    rm_assert_eq "$(jq -c .addresses <<<"$o")" '["198.19.0.10:8080"]' "orders' cluster IP and TCP port"
    rm_assert_eq "$(jq -r .in_mesh <<<"$o")" true "orders is in the mesh: its pod is injected"
    rm_assert_eq "$(jq -c .identities <<<"$o")" '["spiffe://cluster.local/ns/shop/sa/orders"]' \
        "orders is served by its pod's service account"
    o=$(dest_of "$d" shop/legacy)
    rm_assert_eq "$(jq -r .in_mesh <<<"$o")" false "legacy is not: its pod is not injected"
    rm_expect_log "$CLOG" '.event == "stream_opened" and .node == "interop-client"' \
        "the Discovery node is the pod the API knows"
}

case_follows_changes() {
    local before ms
    before=$(rm_log_select "$CLOG" '.event == "config_accepted"' | tail -n 1 | jq -r .services)
    kpost /api/v1/namespaces/shop/pods "$(pod_json shop payments-1 payments yes '{"app":"payments"}')"
    kpost /api/v1/namespaces/shop/services "$(service_json shop payments 198.19.0.20 9090)"
    ms=$(latency '/services$' $((before + 1)))
    rm_log "a new Service was in the model $ms ms after the API took it"
    rm_assert_eq "$(dest_of "$(destinations "$ADDR")" shop/payments | jq -r .in_mesh)" false \
        "payments is out of the mesh while no pod backs it"
    local n o i
    n=$(rm_log_count "$CLOG" '.event == "config_accepted"')
    kpost /apis/discovery.k8s.io/v1/namespaces/shop/endpointslices "$(slice_json shop payments payments-1 198.18.5.20)"
    rm_expect_log_nth "$CLOG" '.event == "config_accepted"' $((n + 1)) "the EndpointSlice is taken"
    o=$(dest_of "$(destinations "$ADDR")" shop/payments)
    rm_assert_eq "$(jq -c '[.addresses, .in_mesh, .identities]' <<<"$o")" \
        '[["198.19.0.20:9090"],true,["spiffe://cluster.local/ns/shop/sa/payments"]]' \
        "payments is in the mesh once its injected pod backs it"
}

# change_followed NAME IP: a new Service is in the model within 10 s
change_followed() {
    local before
    before=$(rm_log_select "$CLOG" '.event == "config_accepted"' | tail -n 1 | jq -r .services)
    kpost /api/v1/namespaces/shop/services "$(service_json shop "$1" "$2" 80)"
    rm_expect_log "$CLOG" ".event == \"config_accepted\" and .services == $((before + 1))" \
        "service $1 is in the model" 15
}

# source_error KIND: ringmesh_control_source_errors_total{source="kubernetes",kind=KIND} of the main replica
source_error() {
    curl -sf "http://127.0.0.1:$((PORT + 1))/metrics" |
        awk -v k="ringmesh_control_source_errors_total{source=\"kubernetes\",kind=\"$1\"}" '$1 == k {print $2}'
}
# errors_match KIND FILTER WHAT: the KIND counter equals the number of main's log lines matching FILTER (each error
# is counted before it is logged; waits, bounded, for a line still being written)
errors_match() {
    local deadline=$(($(rm_now_ms) + 5000)) n v
    while :; do
        n=$(rm_log_count "$CLOG" "$2")
        v=$(source_error "$1")
        [ "$v" = "$n" ] && break
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "$3: source_errors_total{kind=\"$1\"} is '$v', the log has $n"
        sleep 0.1
    done
    [ "$n" -gt 0 ] || rm_fail "$3: no error of kind $1 at all"
    rm_log "ok: $3: $v"
}

case_410_relist() {
    # a Service moves the global resourceVersion past the Pod informer's; compaction then makes its watch too old
    kpost /api/v1/namespaces/shop/services "$(service_json shop compact-a 198.19.0.30 80)"
    rm_kube_api POST /_test/compact -f >/dev/null
    rm_kube_api POST '/_test/drop-watches?mode=close' -f >/dev/null
    rm_expect_log "$CLOG" '.event == "kube_watch_expired" and .kind == "Pod"' "the Pod watch got 410 Gone" 15
    errors_match relist '.event == "kube_watch_expired" or .event == "kube_list_restarted"' "each 410 is counted"
    change_followed after-410 198.19.0.31
}

case_dropped_watches() {
    local n
    n=$(rm_log_count "$CLOG" '.event == "kube_watch_failed"')
    rm_kube_api POST '/_test/drop-watches?mode=abort' -f >/dev/null
    rm_expect_log_nth "$CLOG" '.event == "kube_watch_failed"' $((n + 1)) "a cut watch is logged and retried"
    change_followed after-drop 198.19.0.32
}

case_server_errors() {
    rm_kube_fault '{"path": "^/api/v1/services\\?watch", "code": 500, "count": 3}'
    rm_kube_api POST '/_test/drop-watches?mode=close&resource=/services' -f >/dev/null
    rm_expect_log "$CLOG" '.event == "kube_watch_failed" and .kind == "Service" and .status == 500
        and (.reason | test("HTTP 500: injected fault"))' "a 500 is logged with the URL and the API's message" 15
    local n
    rm_wait_log "$CLOG" '.event == "kube_watch_failed" and .status == 500' 15 >/dev/null
    sleep 3
    n=$(rm_log_count "$CLOG" '.event == "kube_watch_failed" and .status == 500')
    rm_assert_eq "$n" 3 "each of the 3 failures is retried (then the watch is back)"
    rm_log_select "$CLOG" '.event == "kube_watch_failed" and .status == 500' | jq -r .retryMs |
        while read -r ms; do [ "$ms" -le 10000 ] || rm_fail "a retry waited $ms ms (cap 10000)"; done
    errors_match watch_failed '.event == "kube_watch_failed"' "each failed watch is counted"
    change_followed after-500 198.19.0.33
}

case_stalled_server() {
    local before d n
    before=$(rm_log_count "$CLOG" '.event == "config_accepted"')
    n=$(rm_log_count "$CLOG" '.event == "kube_watch_failed" and (.reason | test("no answer within"))')
    rm_assert_eq "$n" 0 "no watch was given up before the server stalled"
    rm_kube_fault '{"path": "^/api/v1/services\\?watch", "action": "stall", "seconds": 8, "count": 2}'
    rm_kube_api POST '/_test/drop-watches?mode=close&resource=/services' -f >/dev/null
    rm_expect_log "$CLOG" '.event == "kube_watch_failed" and .kind == "Service" and (.reason | test("no answer within 3000 ms"))' \
        "a stalled watch is given up after the request timeout" 15
    # meanwhile the last good model is served
    d=$(destinations "$ADDR")
    rm_assert_eq "$(dest_of "$d" shop/orders | jq -r .in_mesh)" true "the last good model is still served"
    rm_alive control-main || rm_fail "the control plane died"
    rm_assert_eq "$(rm_log_count "$CLOG" '.event == "config_accepted"')" "$before" "no model was built from nothing"
    change_followed after-stall 198.19.0.34
}

case_invalid_policy_skipped() {
    kpost /apis/apiextensions.k8s.io/v1/customresourcedefinitions '{"apiVersion":"apiextensions.k8s.io/v1",
        "kind":"CustomResourceDefinition","metadata":{"name":"authorizationpolicies.ringmesh.io"},
        "spec":{"group":"ringmesh.io","scope":"Namespaced","names":{"plural":"authorizationpolicies",
        "singular":"authorizationpolicy","kind":"AuthorizationPolicy","listKind":"AuthorizationPolicyList"},
        "versions":[{"name":"v1alpha1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object",
        "properties":{"spec":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}}}]}}'
    rm_expect_log "$CLOG" '.event == "kube_watch_started" and .kind == "AuthorizationPolicy" and .group == "ringmesh.io"' \
        "the policy informer starts when its CRD appears" 15
    kpost /apis/ringmesh.io/v1alpha1/namespaces/shop/authorizationpolicies '{"apiVersion":"ringmesh.io/v1alpha1",
        "kind":"AuthorizationPolicy","metadata":{"name":"bad-action","namespace":"shop"},
        "spec":{"action":"PERMIT","rules":[{}]}}'
    kpost /apis/ringmesh.io/v1alpha1/namespaces/shop/authorizationpolicies '{"apiVersion":"ringmesh.io/v1alpha1",
        "kind":"AuthorizationPolicy","metadata":{"name":"orders-allow","namespace":"shop"},
        "spec":{"selector":{"matchLabels":{"app":"orders"}},"action":"ALLOW","rules":[{}]}}'
    rm_expect_log "$CLOG" '.event == "config_rejected" and .source == "kubernetes" and .kind == "AuthorizationPolicy"
        and .namespace == "shop" and .name == "bad-action" and .field == "spec.action" and (.reason | test("PERMIT"))' \
        "the invalid policy is logged with its name, field and reason" 15
    rm_expect_log "$CLOG" '.event == "config_accepted" and .policies == 1' "the valid policy is used" 15
    errors_match object_refused '.event == "config_rejected" and .source == "kubernetes" and .kind != null' \
        "the refused object is counted once"
    rm_assert_eq "$(source_error object_refused)" 1 "one object refused"
    rm_alive control-main || rm_fail "the control plane died"
}

case_crds_come_and_go() {
    # Istio's resource with both versions served: v1 is watched (never both: each object would be read twice)
    kpost /apis/apiextensions.k8s.io/v1/customresourcedefinitions '{"apiVersion":"apiextensions.k8s.io/v1",
        "kind":"CustomResourceDefinition","metadata":{"name":"peerauthentications.security.istio.io"},
        "spec":{"group":"security.istio.io","scope":"Namespaced","names":{"plural":"peerauthentications",
        "singular":"peerauthentication","kind":"PeerAuthentication","listKind":"PeerAuthenticationList"},
        "versions":[{"name":"v1beta1","served":true,"storage":false,"schema":{"openAPIV3Schema":{"type":"object",
        "properties":{"spec":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}}},
        {"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object",
        "properties":{"spec":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}}}]}}'
    rm_expect_log "$CLOG" '.event == "kube_watch_started" and .kind == "PeerAuthentication"
        and .group == "security.istio.io" and .version == "v1"' "Istio's PeerAuthentication is watched at v1" 15
    kpost /apis/security.istio.io/v1/namespaces/shop/peerauthentications '{"apiVersion":"security.istio.io/v1",
        "kind":"PeerAuthentication","metadata":{"name":"default","namespace":"shop"},"spec":{"mtls":{"mode":"STRICT"}}}'
    rm_expect_log "$CLOG" '.event == "config_accepted" and .peerAuthentications == 1' "the PeerAuthentication is used" 15
    rm_assert_eq "$(rm_log_count "$CLOG" '.event == "kube_watch_started" and .version == "v1beta1"')" 0 \
        "v1beta1 is not watched as well"
    # the CRD goes: its informer stops and its objects leave the model
    local n
    n=$(rm_log_count "$CLOG" '.event == "config_accepted"')
    kdelete /apis/apiextensions.k8s.io/v1/customresourcedefinitions/peerauthentications.security.istio.io
    rm_expect_log "$CLOG" '.event == "kube_watch_stopped" and .kind == "PeerAuthentication"' \
        "the informer stops when its CRD goes" 15
    rm_expect_log_nth "$CLOG" '.event == "config_accepted"' $((n + 1)) "a new model after the CRD went"
    rm_assert_eq "$(rm_json "$RM_LINE" '[.peerAuthentications, .policies] | join(" ")')" "0 1" \
        "its objects left the model, the others stay"
}

case_routes() {
    # the Gateway API's HTTPRoute CRD (installed by the user), reduced to what the test API server needs
    kpost /apis/apiextensions.k8s.io/v1/customresourcedefinitions '{"apiVersion":"apiextensions.k8s.io/v1",
        "kind":"CustomResourceDefinition","metadata":{"name":"httproutes.gateway.networking.k8s.io"},
        "spec":{"group":"gateway.networking.k8s.io","scope":"Namespaced","names":{"plural":"httproutes",
        "singular":"httproute","kind":"HTTPRoute","listKind":"HTTPRouteList"},
        "versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object",
        "properties":{"spec":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}}}]}}'
    rm_expect_log "$CLOG" '.event == "kube_watch_started" and .kind == "HTTPRoute"
        and .group == "gateway.networking.k8s.io" and .version == "v1"' "HTTPRoutes are watched once their CRD exists" 15
    kpost /apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes '{"apiVersion":"gateway.networking.k8s.io/v1",
        "kind":"HTTPRoute","metadata":{"name":"orders-canary","namespace":"shop"},"spec":{
        "parentRefs":[{"group":"","kind":"Service","name":"orders","port":8080}],
        "rules":[{"matches":[{"headers":[{"name":"x-canary","value":"true"}]}],
                  "backendRefs":[{"name":"orders","port":8080}]},
                 {"backendRefs":[{"name":"orders","port":8080,"weight":90},{"name":"legacy","port":80,"weight":10}]}]}}'
    kpost /apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes '{"apiVersion":"gateway.networking.k8s.io/v1",
        "kind":"HTTPRoute","metadata":{"name":"via-gateway","namespace":"shop"},"spec":{
        "parentRefs":[{"name":"my-gateway"}],"rules":[{"backendRefs":[{"name":"orders","port":8080}]}]}}'
    rm_expect_log "$CLOG" '.event == "config_rejected" and .source == "kubernetes" and .kind == "HTTPRoute"
        and .namespace == "shop" and .name == "via-gateway" and .field == "spec.parentRefs[0]"
        and (.reason | test("not supported: a parentRef to gateway.networking.k8s.io/Gateway"))' \
        "the route attached to a Gateway is skipped with its name, field and reason" 15
    rm_expect_log "$CLOG" '.event == "config_accepted" and .routes == 1' "the valid route is used" 15
    local o
    o=$(dest_of "$(destinations "$ADDR")" shop/orders)
    rm_assert_eq "$(jq -r '[.routes[] | "\(.namespace)/\(.name) \(.rules | length)"] | join(",")' <<<"$o")" \
        "shop/orders-canary 2" "the route is pushed in orders' Destination"
    rm_assert_eq "$(jq -r '[.routes[0].rules[1].backends[] | "\(.name):\(.weight)"] | join(",")' <<<"$o")" \
        "orders:90,legacy:10" "with its weighted backends"
    rm_assert_eq "$(dest_of "$(destinations "$ADDR")" shop/legacy | jq -r '.routes // [] | length')" 0 \
        "legacy has no route"
}

make_bulk_pods() {
    kpost /api/v1/namespaces '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bulk"}}'
    "$PY" - "$RM_KUBE_URL" "$RM_KUBE_CA" "$RM_KUBE_TOKEN" <<'EOF' || rm_fail "could not create the 1,200 pods"
import http.client, json, ssl, sys, urllib.parse
url, ca, token = sys.argv[1:4]
u = urllib.parse.urlsplit(url)
conn = http.client.HTTPSConnection(u.hostname, u.port, context=ssl.create_default_context(cafile=ca), timeout=30)
for i in range(1200):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bulk-%04d" % i, "namespace": "bulk",
           "labels": {"app": "bulk"}}, "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}}
    conn.request("POST", "/api/v1/namespaces/bulk/pods", json.dumps(pod),
                 {"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    r = conn.getresponse()
    body = r.read()
    if r.status != 201:
        sys.exit("pod %d: HTTP %d %s" % (i, r.status, body[:200]))
EOF
}

case_pagination_and_replicas() {
    local l2=$RM_TMP/logs/control-second.log
    rm_expect_log "$l2" '.event == "kube_list_restarted" and .kind == "Pod"' "an expired continue token restarts the list"
    local pages
    pages=$(tail -n +"$((MARK + 1))" "$RM_KUBE_LOG" | jq -r 'select(.method == "GET" and (.path | test("^/api/v1/pods\\?limit=500"))) | "\(.code) \(.path | test("continue="))"')
    rm_log "pod list requests (status, continued): $(tr '\n' ' ' <<<"$pages")"
    rm_assert_eq "$(grep -c '^200 ' <<<"$pages")" 4 "1 page, then (after the 410) 3 pages of at most 500"
    rm_assert_eq "$(grep -c '^410 true' <<<"$pages")" 1 "one expired continue token"
    # same inputs, same version: the second replica's first model is the one the first replica serves
    local v2 v1
    v2=$(rm_log_select "$l2" '.event == "config_accepted"' | head -n 1 | jq -r .version)
    rm_wait_log "$CLOG" ".event == \"config_accepted\" and .version == \"$v2\"" 15 >/dev/null ||
        rm_wait_log "$CLOG" ".event == \"config_unchanged\" and .version == \"$v2\"" 5 >/dev/null || true
    v1=$(curl -sf "http://127.0.0.1:$((PORT + 1))/metrics" | sed -n 's/^ringmesh_control_config_info{version="\([0-9a-f]*\)".*/\1/p')
    rm_assert_eq "$v1" "$v2" "both replicas serve version $v2"
    # the second replica ran with the ServiceAccount's ClusterRole: it was never refused anything
    local asked refused
    asked=$(jq -c --arg u "$SA" 'select(.user == $u)' "$RM_KUBE_LOG" | wc -l)
    refused=$(jq -c --arg u "$SA" 'select(.user == $u and (.code == 401 or .code == 403))' "$RM_KUBE_LOG" | wc -l)
    [ "$asked" -gt 0 ] || rm_fail "no request of the ServiceAccount in the API's log"
    rm_assert_eq "$refused" 0 "none of the ServiceAccount's $asked requests was refused by the least-privilege ClusterRole"
}

rm_case "the model is built from the API" case_builds_model
rm_case "a change is followed" case_follows_changes
rm_case "410 Gone after compaction: relist" case_410_relist
rm_case "dropped watches are resumed" case_dropped_watches
rm_case "500s: logged, backed off, retried" case_server_errors
rm_case "a stalled server: given up, last good model kept" case_stalled_server
rm_case "an invalid policy is skipped with a reason" case_invalid_policy_skipped
rm_case "policy informers follow their CRDs" case_crds_come_and_go
rm_case "HTTPRoutes from the API are pushed; an invalid one is skipped" case_routes
make_bulk_pods
# the first page's continue token expires once: the list starts again from the beginning
rm_kube_fault '{"path": "^/api/v1/pods\\?limit=500&continue=", "code": 410, "count": 1}'
MARK=$(wc -l <"$RM_KUBE_LOG")
control_start second $((PORT + 2)) "$RM_TMP/sa.kubeconfig"
rm_case "1,200 pods in pages; two replicas agree" case_pagination_and_replicas
rm_stop control-second

# A token file that holds a token the API refuses: the first lists fail with 401 (each one read the file again
# before giving up); once the kubelet-style rotation writes a good token, the next list reads it and succeeds.
printf 'revoked-token\n' >"$RM_TMP/rotating-token"
sed -e "s|token: \"$RM_KUBE_TOKEN\"|tokenFile: \"$RM_TMP/rotating-token\"|" "$RM_KUBECONFIG" >"$RM_TMP/kubeconfig-file-token"
grep -q tokenFile "$RM_TMP/kubeconfig-file-token" || rm_fail "could not write a kubeconfig with a token file"
rm_bg control-rotating - "$RM_TMP/logs/control-rotating.log" "$RM_CONTROL_BIN" --source kubernetes \
    --kubeconfig "$RM_TMP/kubeconfig-file-token" --mesh-config "$RM_TMP/control/mesh/mesh.yaml" --kube-timeout 3s \
    --listen "127.0.0.1:$((PORT + 4))" --admin-listen off --state-dir "$RM_TMP/control/state-rotating" \
    --jwks "$RM_TMP/control/jwks.json"
case_token_rotation() {
    local l=$RM_TMP/logs/control-rotating.log
    rm_expect_log "$l" '.event == "kube_list_failed" and .status == 401 and (.reason | test("HTTP 401"))' \
        "a refused token fails the list with the API's 401" 15
    printf '%s\n' "$RM_KUBE_TOKEN" >"$RM_TMP/rotating-token"
    rm_expect_log "$l" '.event == "control_started"' "the rotated token is read and the control plane starts" 30
    rm_expect_no_log "$l" '(tostring | test("'"$RM_KUBE_TOKEN"'"))' "no token in the log"
}
rm_case "a rotated token file is read again" case_token_rotation
rm_stop control-rotating

# In a pod: no kubeconfig; the API's address from KUBERNETES_SERVICE_HOST/PORT, its CA and the token from
# /var/run/secrets/kubernetes.io/serviceaccount, here a tmpfs over /run in a mount namespace of the process's own.
SA_SRC=$RM_TMP/serviceaccount
mkdir -p "$SA_SRC"
cp "$RM_KUBE_CA" "$SA_SRC/ca.crt"
printf '%s\n' "$SA_TOKEN" >"$SA_SRC/token"
printf 'ringmesh-system\n' >"$SA_SRC/namespace"
# shellcheck disable=SC2016 # the inner script's arguments expand in the inner shell
rm_bg control-incluster - "$RM_TMP/logs/control-incluster.log" env KUBERNETES_SERVICE_HOST=127.0.0.1 \
    KUBERNETES_SERVICE_PORT="$RM_KUBE_PORT" unshare -m --propagation private sh -c \
    'mount -t tmpfs tmpfs /run && mkdir -p /run/secrets/kubernetes.io && cp -r "$1" /run/secrets/kubernetes.io/serviceaccount && shift && exec "$@"' \
    sh "$SA_SRC" "$RM_CONTROL_BIN" --source kubernetes --mesh-config "$RM_TMP/control/mesh/mesh.yaml" \
    --listen "127.0.0.1:$((PORT + 6))" --admin-listen off --state-dir "$RM_TMP/control/state-incluster" \
    --jwks "$RM_TMP/control/jwks.json"
# A kubeconfig naming another CA: the API server's certificate does not verify, and nothing is sent to it
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$RM_TMP/other-ca.key" \
    -out "$RM_TMP/other-ca.pem" -days 1 -subj /CN=other-ca 2>/dev/null || rm_fail "openssl: other CA"
sed -e "s|certificate-authority: \"$RM_KUBE_CA\"|certificate-authority: \"$RM_TMP/other-ca.pem\"|" "$RM_KUBECONFIG" \
    >"$RM_TMP/kubeconfig-other-ca"
grep -q other-ca "$RM_TMP/kubeconfig-other-ca" || rm_fail "could not write a kubeconfig with another CA"
rm_bg control-wrongca - "$RM_TMP/logs/control-wrongca.log" "$RM_CONTROL_BIN" --source kubernetes \
    --kubeconfig "$RM_TMP/kubeconfig-other-ca" --mesh-config "$RM_TMP/control/mesh/mesh.yaml" --kube-timeout 3s \
    --listen "127.0.0.1:$((PORT + 8))" --admin-listen off --state-dir "$RM_TMP/control/state-wrongca" \
    --jwks "$RM_TMP/control/jwks.json"
case_in_cluster() {
    local l=$RM_TMP/logs/control-incluster.log
    rm_expect_log "$l" '.event == "control_started" and .source == "kubernetes"' \
        "the in-cluster configuration reaches the API" 30
    rm_expect_log "$l" '.event == "config_accepted" and .version == "'"$(rm_log_select "$CLOG" '.event == "config_accepted"' | tail -n 1 | jq -r .version)"'"' \
        "and builds the model the other replica serves"
}
case_wrong_ca() {
    local l=$RM_TMP/logs/control-wrongca.log
    rm_expect_log "$l" '.event == "kube_list_failed" and (.reason | test("TLS failed"))
        and (.reason | test("kubeconfig-other-ca"))' "an API server that does not chain to the CA is refused" 15
    rm_expect_no_log "$l" '.event == "control_started"' "and the control plane does not serve without the API"
    # told to stop while it waits for the API, it stops at once
    local t0
    t0=$(rm_now_ms)
    rm_stop control-wrongca
    rm_log "stopped in $(($(rm_now_ms) - t0)) ms while waiting for the API"
    rm_expect_log "$l" '.event == "control_stopping" and (.msg | test("stopped while waiting for the first lists"))' \
        "it says why it stops"
}
rm_case "the in-cluster configuration" case_in_cluster
rm_case "TLS only with the cluster's CA" case_wrong_ca
rm_stop control-incluster
rm_stop control-wrongca 2>/dev/null || true
rm_alive control-main || rm_fail "the control plane died"
rm_finish
