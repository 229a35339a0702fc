#!/usr/bin/env bash
# The stand-in Kubernetes API server's raw protocol and test control, with curl: authentication, /version, the watch
# stream (chunked JSON lines, resourceVersion resume, BOOKMARK, 410 ERROR event after a compaction,
# sendInitialEvents, selector transitions, timeoutSeconds), PATCH of a MutatingWebhookConfiguration's caBundle in the
# three patch types, the status subresource, a CRD served at two versions (Istio's v1 and v1beta1), protobuf bodies
# refused, TokenReview answered from the recorded tables as fake_kube_api.py answers them, faults (errors, stalls,
# closed connections) and the request log.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib_k8s.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib_k8s.sh"
# shellcheck source-path=SCRIPTDIR source=apiserver/lib_apiserver.sh
source "$(dirname "${BASH_SOURCE[0]}")/apiserver/lib_apiserver.sh"
rm_k8s_require_tools
rm_require_cmds curl
rm_setup_no_netns
TR=$RM_SOURCE_DIR/tests/data/tokenreview
rm_kube_api_start - --git-version v1.28.5 --tokenreview-table "$TR/table.json" --bookmark-seconds 600
D=$RM_TMP/c
mkdir -p "$D"
J='Content-Type: application/json'

code_of() { # METHOD PATH [CURL ARG]...: prints the HTTP status only
    rm_kube_api "$@" -o /dev/null -w '%{http_code}'
}
status_of() { # METHOD PATH [CURL ARG]...: prints "code reason" of the answer
    rm_kube_api "$@" | jq -r '"\(.code) \(.reason)"'
}
wait_watches() { # N: until N watches are open
    local i
    for i in $(seq 200); do
        [ "$(rm_kube_api GET /_test/watches | jq '.watches | length')" -ge "$1" ] && return 0
        sleep 0.05
    done
    rm_fail "fewer than $1 watches opened: $(rm_kube_api GET /_test/watches)"
}

# --- authentication and version
got=$(curl -sS --cacert "$RM_KUBE_CA" "$RM_KUBE_URL/api/v1/pods" | jq -c '[.code, .reason]')
rm_assert_eq "$got" '[401,"Unauthorized"]' "no bearer token: the recorded 401 Status"
got=$(curl -sS --cacert "$RM_KUBE_CA" -H 'Authorization: Bearer wrong' "$RM_KUBE_URL/api/v1/pods" | jq -r .code)
rm_assert_eq "$got" 401 "an unknown bearer token"
got=$(curl -sS --cacert "$RM_KUBE_CA" "$RM_KUBE_URL/version" | jq -c '[.major, .minor, .gitVersion]')
rm_assert_eq "$got" '["1","28","v1.28.5"]' "/version follows --git-version"

# --- the watch stream
rm_kube_api POST /api/v1/namespaces -H "$J" -d '{"metadata":{"name":"w"}}' >/dev/null
rv=$(rm_kube_api GET /api/v1/namespaces/w/configmaps | jq -r .metadata.resourceVersion)
rm_bg watch - "$D/watch.out" curl -sS -N -D "$D/watch.headers" --cacert "$RM_KUBE_CA" \
    -H "Authorization: Bearer $RM_KUBE_TOKEN" \
    "$RM_KUBE_URL/api/v1/namespaces/w/configmaps?watch=1&resourceVersion=$rv&allowWatchBookmarks=true&timeoutSeconds=30"
rm_bg sel - "$D/sel.out" curl -sS -N --cacert "$RM_KUBE_CA" -H "Authorization: Bearer $RM_KUBE_TOKEN" \
    "$RM_KUBE_URL/api/v1/namespaces/w/configmaps?watch=true&resourceVersion=$rv&labelSelector=tier%3Dweb&timeoutSeconds=30"
wait_watches 2
rm_kube_api POST /api/v1/namespaces/w/configmaps -H "$J" -d '{"metadata":{"name":"a"},"data":{"k":"1"}}' >/dev/null
rm_kube_api PATCH /api/v1/namespaces/w/configmaps/a -H 'Content-Type: application/merge-patch+json' \
    -d '{"metadata":{"labels":{"tier":"web"}}}' >/dev/null
rm_kube_api PATCH /api/v1/namespaces/w/configmaps/a -H 'Content-Type: application/merge-patch+json' \
    -d '{"metadata":{"labels":{"tier":"db"}}}' >/dev/null
rm_kube_api POST /api/v1/namespaces/default/configmaps -H "$J" -d '{"metadata":{"name":"elsewhere"}}' >/dev/null
rm_kube_api DELETE /api/v1/namespaces/w/configmaps/a >/dev/null
now=$(rm_kube_api GET /api/v1/namespaces | jq -r .metadata.resourceVersion)
rm_assert_eq "$(rm_kube_api POST /_test/bookmark | jq .watches)" 2 "a bookmark asked for on both watches"
rm_assert_eq "$(rm_kube_api POST /_test/drop-watches?mode=close | jq .dropped)" 2 "both watches ended by the server"
rm_wait_exit watch 10
rm_wait_exit sel 10
grep -qi '^transfer-encoding: chunked' "$D/watch.headers" || rm_fail "the watch is not chunked: $(cat "$D/watch.headers")"
got=$(jq -s -c '[.[] | [.type, .object.metadata.name, .object.metadata.labels.tier]]' "$D/watch.out")
rm_assert_eq "$got" '[["ADDED","a",null],["MODIFIED","a","web"],["MODIFIED","a","db"],["DELETED","a","db"],["BOOKMARK",null,null]]' \
    "the watch saw the changes in its namespace only, then a bookmark"
got=$(jq -s -c '[.[] | .object.metadata.resourceVersion | tonumber] | (. == sort) and (.[-1] | tostring) == $now' \
    --arg now "$now" "$D/watch.out")
rm_assert_eq "$got" true "resourceVersions increase; the bookmark carries the server's ($now)"
jq -s -e '.[-1].object | .kind == "ConfigMap" and .apiVersion == "v1" and (.metadata | keys) == ["resourceVersion"]' \
    "$D/watch.out" >/dev/null || rm_fail "the bookmark's object: $(tail -1 "$D/watch.out")"
got=$(jq -s -c '[.[] | [.type, .object.metadata.labels.tier]]' "$D/sel.out")
rm_assert_eq "$got" '[["ADDED","web"],["DELETED","db"]]' "the selector watch: into the selector ADDED, out of it DELETED"
mid=$(jq -s -r '.[1].object.metadata.resourceVersion' "$D/watch.out")
got=$(rm_kube_api GET "/api/v1/namespaces/w/configmaps?watch=1&resourceVersion=$mid&timeoutSeconds=1" |
    jq -s -c '[.[] | .type]')
rm_assert_eq "$got" '["MODIFIED","DELETED"]' "a watch from a resourceVersion replays what came after it"

rm_kube_api POST /api/v1/namespaces/w/configmaps -H "$J" -d '{"metadata":{"name":"b"}}' >/dev/null
rm_kube_api POST /api/v1/namespaces/w/configmaps -H "$J" -d '{"metadata":{"name":"b2"}}' >/dev/null
got=$(rm_kube_api GET "/api/v1/namespaces/w/configmaps/b?watch=1&timeoutSeconds=1" | jq -s -c '[.[] | .object.metadata.name]')
rm_assert_eq "$got" '["b"]' "a watch of one object by its path sees only that object"
rm_kube_api DELETE /api/v1/namespaces/w/configmaps/b2 >/dev/null
got=$(rm_kube_api GET "/api/v1/namespaces/w/configmaps?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1" |
    jq -s -c '[.[] | [.type, .object.metadata.name, .object.metadata.annotations["k8s.io/initial-events-end"]]]')
rm_assert_eq "$got" '[["ADDED","b",null],["BOOKMARK",null,"true"]]' "sendInitialEvents: the state, then the end bookmark"

rm_kube_api POST /_test/compact >/dev/null
got=$(rm_kube_api GET "/api/v1/namespaces/w/configmaps?watch=1&resourceVersion=$rv" |
    jq -s -c '[.[] | [.type, .object.code, .object.reason, (.object.message | test("^too old resource version: [0-9]+ \\([0-9]+\\)$"))]]')
rm_assert_eq "$got" '[["ERROR",410,"Expired",true]]' "a watch from before the compaction: one ERROR event with 410 Expired"
got=$(rm_kube_api GET "/api/v1/namespaces/w/configmaps?resourceVersion=$rv&resourceVersionMatch=Exact" |
    jq -c '[.code, .reason, .message]')
rm_assert_eq "$got" '[410,"Expired","The resourceVersion for the provided list is too old."]' \
    "an Exact list from before the compaction"

# --- the webhook configuration's caBundle, patched three ways
rm_kube_api POST /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations -H "$J" -d @- >/dev/null <<'JSON'
{"apiVersion":"admissionregistration.k8s.io/v1","kind":"MutatingWebhookConfiguration",
 "metadata":{"name":"ringmesh-sidecar-injector"},
 "webhooks":[{"name":"inject.ringmesh.io","admissionReviewVersions":["v1"],"sideEffects":"None","failurePolicy":"Fail",
   "clientConfig":{"service":{"name":"ringmesh-control","namespace":"ringmesh-system","path":"/inject","port":15017}},
   "rules":[{"operations":["CREATE"],"apiGroups":[""],"apiVersions":["v1"],"resources":["pods"]}]}]}
JSON
W=/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/ringmesh-sidecar-injector
rm_kube_api PATCH "$W" -H 'Content-Type: application/json-patch+json' \
    -d '[{"op":"add","path":"/webhooks/0/clientConfig/caBundle","value":"Q0Ex"}]' >/dev/null
rm_kube_api PATCH "$W" -H 'Content-Type: application/strategic-merge-patch+json' \
    -d '{"webhooks":[{"name":"inject.ringmesh.io","clientConfig":{"caBundle":"Q0Ey"}}]}' >/dev/null
got=$(rm_kube_api GET "$W" | jq -c '[.webhooks[0].clientConfig.caBundle, .webhooks[0].clientConfig.service.port, .webhooks[0].failurePolicy, .metadata.generation]')
rm_assert_eq "$got" '["Q0Ey",15017,"Fail",3]' "JSON patch then strategic merge patch (merged by name) of the caBundle"
old_rv=$(rm_kube_api GET "$W" | jq -r .metadata.resourceVersion)
rm_kube_api PATCH "$W" -H 'Content-Type: application/merge-patch+json' \
    -d "{\"metadata\":{\"resourceVersion\":\"$old_rv\"},\"webhooks\":[]}" >/dev/null
got=$(status_of PATCH "$W" -H 'Content-Type: application/merge-patch+json' \
    -d "{\"metadata\":{\"resourceVersion\":\"$old_rv\"},\"webhooks\":[]}")
rm_assert_eq "$got" "409 Conflict" "a merge patch with a stale resourceVersion"
got=$(status_of PATCH "$W" -H 'Content-Type: application/json-patch+json' \
    -d '[{"op":"test","path":"/webhooks/0/name","value":"x"}]')
rm_assert_eq "$got" "422 Invalid" "a failed JSON patch test"
got=$(rm_kube_api PATCH "$W" -H 'Content-Type: application/merge-patch+json' -d '{"webhooks":[{"name":"x"}]}' |
    jq -c '[.code, (.details.causes | map(.field))]')
rm_assert_eq "$got" '[422,["webhooks[0].name","webhooks[0].sideEffects","webhooks[0].admissionReviewVersions","webhooks[0].clientConfig"]]' \
    "an invalid webhook is refused with each cause"

# --- status subresource
rm_kube_api POST /apis/apps/v1/namespaces/w/deployments -H "$J" -d @- >/dev/null <<'JSON'
{"metadata":{"name":"d"},"spec":{"selector":{"matchLabels":{"app":"d"}},
 "template":{"metadata":{"labels":{"app":"d"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}
JSON
rm_kube_api PATCH /apis/apps/v1/namespaces/w/deployments/d/status -H 'Content-Type: application/merge-patch+json' \
    -d '{"status":{"readyReplicas":1},"spec":{"replicas":5}}' >/dev/null
rm_kube_api PATCH /apis/apps/v1/namespaces/w/deployments/d -H 'Content-Type: application/merge-patch+json' \
    -d '{"status":{"readyReplicas":9}}' >/dev/null
got=$(rm_kube_api GET /apis/apps/v1/namespaces/w/deployments/d | jq -c '[.spec.replicas, .status.readyReplicas]')
rm_assert_eq "$got" '[1,1]' "/status changes only the status; the main resource keeps it"

# --- a CRD with two served versions (Istio's AuthorizationPolicy)
rm_kube_api POST /apis/apiextensions.k8s.io/v1/customresourcedefinitions -H "$J" -d @- >/dev/null <<'JSON'
{"metadata":{"name":"authorizationpolicies.security.istio.io"},
 "spec":{"group":"security.istio.io","scope":"Namespaced",
  "names":{"plural":"authorizationpolicies","singular":"authorizationpolicy","kind":"AuthorizationPolicy","listKind":"AuthorizationPolicyList"},
  "versions":[
   {"name":"v1","served":true,"storage":false,"schema":{"openAPIV3Schema":{"type":"object","properties":{"spec":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}}},
   {"name":"v1beta1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","properties":{"spec":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}}}]}}
JSON
got=$(rm_kube_api GET /apis | jq -c '.groups[] | select(.name == "security.istio.io") | [.preferredVersion.version, [.versions[].version]]')
rm_assert_eq "$got" '["v1",["v1","v1beta1"]]' "discovery lists both versions, v1 preferred"
rm_kube_api POST /apis/security.istio.io/v1beta1/namespaces/w/authorizationpolicies -H "$J" \
    -d '{"apiVersion":"security.istio.io/v1beta1","kind":"AuthorizationPolicy","metadata":{"name":"deny"},"spec":{"action":"DENY"}}' >/dev/null
got=$(rm_kube_api GET /apis/security.istio.io/v1/namespaces/w/authorizationpolicies | jq -c '[.kind, .items[0].apiVersion, .items[0].spec.action]')
rm_assert_eq "$got" '["AuthorizationPolicyList","security.istio.io/v1","DENY"]' "created at v1beta1, read at v1"
rm_bg crwatch - "$D/crwatch.out" curl -sS -N --cacert "$RM_KUBE_CA" -H "Authorization: Bearer $RM_KUBE_TOKEN" \
    "$RM_KUBE_URL/apis/security.istio.io/v1/authorizationpolicies?watch=1&timeoutSeconds=30"
for _ in $(seq 200); do
    rm_kube_api GET /_test/watches | jq -e '.watches | index("security.istio.io/authorizationpolicies")' >/dev/null && break
    sleep 0.05
done
rm_kube_api DELETE /apis/apiextensions.k8s.io/v1/customresourcedefinitions/authorizationpolicies.security.istio.io >/dev/null
rm_wait_exit crwatch 10
got=$(jq -s -c '[.[] | [.type, .object.metadata.name]]' "$D/crwatch.out")
rm_assert_eq "$got" '[["ADDED","deny"],["DELETED","deny"]]' "deleting the CRD deletes its objects, then ends their watches"
rm_assert_eq "$(code_of GET /apis/security.istio.io/v1/namespaces/w/authorizationpolicies)" 404 \
    "the custom resource is gone with its CRD"
got=$(rm_kube_api GET /apis | jq -c '[.groups[].name | select(. == "security.istio.io")]')
rm_assert_eq "$got" '[]' "and its group from discovery"

# --- bodies
got=$(status_of POST /api/v1/namespaces/w/configmaps -H 'Content-Type: application/vnd.kubernetes.protobuf' \
    --data-binary 'k8s')
rm_assert_eq "$got" "415 UnsupportedMediaType" "a protobuf body"
got=$(status_of POST /api/v1/namespaces/w/configmaps -H "$J" -d '{"metadata":{"name":"b"}}')
rm_assert_eq "$got" "409 AlreadyExists" "creating an existing name"
got=$(status_of POST /api/v1/namespaces/w/configmaps -H "$J" -d '{"apiVersion":"v2","metadata":{"name":"c"}}')
rm_assert_eq "$got" "400 BadRequest" "a body of another apiVersion"

# --- TokenReview from the recorded tables, as fake_kube_api.py answers
review() { # CALLER TOKEN
    curl -sS --cacert "$RM_KUBE_CA" -H "Authorization: Bearer $1" -H "$J" \
        -d "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\",\"spec\":{\"token\":\"$2\",\"audiences\":[\"ringmesh\"]}}" \
        "$RM_KUBE_URL/apis/authentication.k8s.io/v1/tokenreviews"
}
tok=$(jq -r '.reviews | to_entries[] | select(.value == "authenticated.json") | .key' "$TR/table.json")
got=$(review control-token-a "$tok" | jq -c '[.status.authenticated, .status.user.username, .spec.token == $t]' --arg t "$tok")
rm_assert_eq "$got" '[true,"system:serviceaccount:shop:orders",true]' "a TokenReview answered from the recordings"
rm_assert_eq "$(review control-token-no-rbac "$tok" | jq -r .code)" 403 "a caller without RBAC gets the recorded 403"
rm_assert_eq "$(review nobody "$tok" | jq -r .code)" 401 "an unknown caller gets the recorded 401"
rm_assert_eq "$(review control-token-a not-in-table | jq -r .message)" "kube_apiserver: no recording for this token" \
    "a token without a recording is a 500 naming the problem"

# --- faults and the request log
rm_kube_fault '[{"action":"error","code":500,"count":2,"method":"GET","path":"^/api/v1/namespaces$"},{"action":"error","code":429,"path":"configmaps"}]'
rm_assert_eq "$(status_of GET /api/v1/namespaces)" "500 InternalError" "fault 1 of 2"
rm_assert_eq "$(code_of GET /api/v1/namespaces/w/configmaps)" 429 "the second rule's fault"
rm_assert_eq "$(status_of GET /api/v1/namespaces)" "500 InternalError" "fault 2 of 2"
rm_assert_eq "$(code_of GET /api/v1/namespaces)" 200 "after the faults"
rm_kube_fault '{"action":"stall","seconds":3}'
rc=0
curl -sS --max-time 1 --cacert "$RM_KUBE_CA" -H "Authorization: Bearer $RM_KUBE_TOKEN" "$RM_KUBE_URL/api/v1/pods" \
    >/dev/null 2>&1 || rc=$?
rm_assert_eq "$rc" 28 "a stalled request is not answered (curl timed out)"
rm_kube_fault '{"action":"close"}'
rc=0
curl -sS --max-time 5 --cacert "$RM_KUBE_CA" -H "Authorization: Bearer $RM_KUBE_TOKEN" "$RM_KUBE_URL/api/v1/pods" \
    >/dev/null 2>&1 || rc=$?
[ "$rc" != 0 ] || rm_fail "a closed connection answered"
rm_log "ok: a closed fault drops the connection (curl exit $rc)"
rm_assert_eq "$(code_of GET /api/v1/pods)" 200 "the faults are used up"
got=$(jq -s -c '[.[] | select(.method == "POST" and .path == "/api/v1/namespaces/w/configmaps" and .code == 201)][0] |
    [.user, .content_type, (.body | fromjson | .metadata.name)]' "$RM_KUBE_LOG")
rm_assert_eq "$got" '["admin","application/json","a"]' "the request log holds the client's request"

# --- bad input gets a Status naming the problem, and the server carries on
bad() { # WANT-CODE WHAT METHOD PATH [CURL ARG]...
    local got
    got=$(rm_kube_api "${@:3}" | jq -r '"\(.kind) \(.code): \(.message)"')
    [[ $got == "Status $1: "* ]] || rm_fail "$2: want a $1 Status, got: $got"
    rm_log "ok: $2: $got"
}
bad 400 "limit not a number" GET '/api/v1/pods?limit=abc'
bad 400 "timeoutSeconds not a number" GET '/api/v1/pods?watch=1&timeoutSeconds=soon'
bad 400 "a label selector that does not parse" GET '/api/v1/pods?labelSelector=a%20in%20b'
bad 400 "a field selector that does not parse" GET '/api/v1/pods?fieldSelector=x'
bad 400 "a continue token that is not one" GET '/api/v1/pods?limit=1&continue=garbage'
bad 400 "a body that is not JSON" POST /api/v1/namespaces/w/configmaps -H "$J" -d 'not json'
bad 400 "a body that is a list" POST /api/v1/namespaces/w/configmaps -H "$J" -d '[]'
bad 422 "a name that is a number" POST /api/v1/namespaces/w/configmaps -H "$J" -d '{"metadata":{"name":5}}'
bad 422 "a JSON patch that is not a list" PATCH /api/v1/namespaces/w/configmaps/b \
    -H 'Content-Type: application/json-patch+json' -d '{"op":"add"}'
bad 422 "a merge patch that deletes the object" PATCH /api/v1/namespaces/w/configmaps/b \
    -H 'Content-Type: application/merge-patch+json' -d 'null'
bad 400 "a Secret whose data is not base64" POST /api/v1/namespaces/w/secrets -H "$J" \
    -d '{"metadata":{"name":"s"},"data":{"tls.crt":"not base64!"}}'
bad 422 "a ConfigMap key with a space" POST /api/v1/namespaces/w/configmaps -H "$J" \
    -d '{"metadata":{"name":"k"},"data":{"root cert.pem":"x"}}'
got=$(rm_kube_api POST /api/v1/namespaces/w/configmaps -H "$J" -H 'Transfer-Encoding: chunked' \
    -d '{"metadata":{"name":"chunked"},"data":{"root-cert.pem":"x"}}' | jq -r .metadata.name)
rm_assert_eq "$got" chunked "a body sent in chunks"
bad 400 "a fault rule with a count that is not a number" POST /_test/faults -H "$J" -d '{"count":"many"}'
rm_assert_eq "$(code_of GET /version)" 200 "the server still answers"

rm_kube_api GET /_test/objects -f >"$D/objects.json"
out=$(rm_k8s_validate "$D/objects.json") || rm_fail "an object the stand-in held is not valid: $(grep -v '^ok' <<<"$out")"
rm_kube_api_clean
rm_log PASS
