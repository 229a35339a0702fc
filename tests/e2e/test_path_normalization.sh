#!/usr/bin/env bash
# The path the policy judges is the path the app routes. A real web framework (Flask, with its own router, served
# by Hypercorn over HTTP/1.1 and h2c) sits behind the proxy; the only policy allows GET /ok.
#
#   curl -> [proxy "frontend": upstream listener] --mTLS--> [proxy "orders": STRICT inbound listener, policies from
#           files, default DENY] -> Flask: /ok, /admin and /admin/<path>, anything else
#
# Over HTTP/1.1 and HTTP/2 (prior knowledge):
# - /admin/../ok, /admin/%2e%2e/ok and /admin\..\ok are /ok for the policy and reach the app's /ok route with
#   path /ok (before, the policy saw /ok while Flask got the raw target and routed it to /admin);
# - the app gets the query as sent; /ok/%2e%2e/admin is /admin, denied; /admin is denied;
# - /ok%00 is answered 400 and logged with its cause; nothing reaches the app's /admin route, ever;
# - BASE does not merge slashes (//ok is denied); orders restarted with authorization.pathNormalization
#   MERGE_SLASHES lets //ok through to /ok; a mode that is not one of Istio's names is refused with file, line and
#   field.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup_no_netns
rm_require_cmds curl jq /usr/bin/python3
/usr/bin/python3 -c 'import flask, hypercorn, asgiref' 2>/dev/null ||
    rm_skip "python3-flask, python3-hypercorn and python3-asgiref are not installed (scripts/bootstrap.sh)"
curl -V | grep -qw HTTP2 || rm_skip "this curl has no HTTP/2"

POLICIES="$RM_TMP/policies"
mkdir -p "$POLICIES"
cat >"$POLICIES/only-ok.yaml" <<'EOF'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: only-ok, namespace: shop}
spec:
  action: ALLOW
  rules:
  - to: [{operation: {methods: [GET], paths: [/ok]}}]
EOF

rm_loopback_place 4
read -r P_APP P_IN P_UP P_ADM_O <<<"${RM_PORTS[*]}"
APP_LOG="$RM_TMP/logs/app-flask.log"
rm_bg app-flask "$POD" "$APP_LOG" /usr/bin/python3 "$RM_SOURCE_DIR/tests/e2e/tools/flask_app.py" "127.0.0.1:$P_APP"
rm_wait_port "$POD" "$P_APP" 15 app-flask
RM_ORDERS_YAML=$(printf 'authorization:\n  policyDir: "%s"\n  defaultAction: DENY' "$POLICIES") \
    rm_loopback_pair "$P_APP" "$P_IN" "$P_UP" - "$P_ADM_O"
LOG_O="$RM_TMP/logs/proxy-orders.log"
rm_expect_log "$LOG_O" '.event == "policies_loaded" and .path_normalization == "BASE"' "BASE is the default"

# request PROTO TARGET: GET TARGET through frontend (h1: HTTP/1.1, h2: HTTP/2 prior knowledge); sets CODE and BODY
request() {
    local opt=()
    [ "$1" = h2 ] && opt=(--http2-prior-knowledge)
    CODE=$(rm_run curl -s --path-as-is "${opt[@]}" -o "$RM_TMP/body" -w '%{http_code}' --max-time 10 \
        "http://127.0.0.1:$P_UP$2") || true
    BODY=$(cat "$RM_TMP/body" 2>/dev/null || true)
}

# expect PROTO TARGET CODE [BODY]
expect() {
    request "$1" "$2"
    rm_assert_eq "$CODE" "$3" "$1 GET $2: status"
    [ $# -lt 4 ] || rm_assert_eq "$BODY" "$4" "$1 GET $2: what the app routed"
}

routed_ok=0
for proto in h1 h2; do
    rm_log "--- $proto"
    expect "$proto" '/ok?x=1' 200 'route=ok path=/ok query=x=1'
    expect "$proto" /admin 403 'RBAC: access denied'
    # the three requests of the bypass: /ok for the policy and for Flask's router
    expect "$proto" /admin/../ok 200 'route=ok path=/ok query='
    expect "$proto" /admin/%2e%2e/ok 200 'route=ok path=/ok query='
    expect "$proto" '/admin\..\ok' 200 'route=ok path=/ok query='
    # the query goes to the app as sent, never normalized; the fragment never does
    expect "$proto" '/admin/%2E%2e/ok?next=/../admin&q=%2e' 200 'route=ok path=/ok query=next=/../admin&q=%2e'
    routed_ok=$((routed_ok + 5))
    # what normalizes to another path is judged as that path
    expect "$proto" /ok/%2e%2e/admin 403 'RBAC: access denied'
    expect "$proto" /ok/../admin/x 403 'RBAC: access denied'
    expect "$proto" //ok 403 'RBAC: access denied'
    # %00: 400, logged with its cause
    n0=$(rm_log_count "$LOG_O" '.event == "authz" and .reason == "invalid-path"')
    expect "$proto" /ok%00 400
    rm_expect_log_nth "$LOG_O" '.event == "authz" and .reason == "invalid-path" and .decision == "deny"
        and .path == "/ok%00" and .path_error == "the path holds a percent-encoded NUL (%00)"' $((n0 + 1)) \
        "$proto: the 400 is logged with its cause"
    # the decision log names the path the app received
    rm_expect_log "$LOG_O" ".event == \"authz\" and .decision == \"deny\" and .path == \"/admin\"
        and .protocol == \"$([ "$proto" = h2 ] && echo http2 || echo http1)\"" "$proto: denials name the normalized path"
done

rm_assert_eq "$(rm_log_count "$APP_LOG" '.event == "request" and .route == "ok" and .path == "/ok"')" "$routed_ok" \
    "the app's /ok route got every allowed request, with path /ok"
rm_assert_eq "$(rm_log_count "$APP_LOG" '.event == "request" and .proto == "HTTP/2"')" $((routed_ok / 2)) \
    "half of them over HTTP/2"
rm_expect_no_log "$APP_LOG" '.event == "request" and .route != "ok"' "nothing reached another route than /ok"

# MERGE_SLASHES, from the proxy's own file: //ok is /ok
rm_stop proxy-orders
printf '  pathNormalization: {normalization: MERGE_SLASHES}\n' >>"$RM_TMP/orders.yaml"
: >"$LOG_O"
rm_bg proxy-orders "$POD" "$LOG_O" "$RM_PROXY_BIN" --config "$RM_TMP/orders.yaml"
rm_expect_log "$LOG_O" '.event == "policies_loaded" and .path_normalization == "MERGE_SLASHES"' \
    "orders runs with MERGE_SLASHES"
rm_wait_port "$POD" "$P_IN" 10 proxy-orders
rm_assert_eq "$(rm_run curl -s -m 5 "http://127.0.0.1:$P_ADM_O/config_dump" | jq -r .authorization.path_normalization)" \
    MERGE_SLASHES "/config_dump shows the mode in force"
for proto in h1 h2; do
    expect "$proto" '//ok?a=b' 200 'route=ok path=/ok query=a=b'
    expect "$proto" '///ok' 200 'route=ok path=/ok query='
    # dot segments first, then slashes (Envoy's order): /admin//..//ok is /admin/ok
    expect "$proto" '/admin//..//ok' 403 'RBAC: access denied'
done
rm_expect_no_log "$APP_LOG" '.event == "request" and .route == "admin"' "still nothing reached /admin"

# a mode that is not one of Istio's names: refused, with file, line and field
sed 's/normalization: MERGE_SLASHES/normalization: merge_slashes/' "$RM_TMP/orders.yaml" >"$RM_TMP/bad.yaml"
out=$("$RM_PROXY_BIN" --config "$RM_TMP/bad.yaml" --check 2>&1) && rm_fail "a bad pathNormalization was accepted: $out"
line=$(grep -n pathNormalization "$RM_TMP/bad.yaml" | cut -d: -f1)
out=$(rm_json "$(printf '%s\n' "$out" | grep config_invalid)" .msg)
case "$out" in
*"bad.yaml:$line:"*'authorization.pathNormalization.normalization: "merge_slashes" is not BASE, MERGE_SLASHES'*) ;;
*) rm_fail "the refusal does not name file, line, field and modes: $out" ;;
esac
rm_log "ok: refused: $out"
rm_finish
