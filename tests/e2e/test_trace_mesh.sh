#!/usr/bin/env bash
# One trace across a hop of the namespace mesh, decoded by an independent OTLP decoder (tests/tools/otlp-collector.mjs,
# with the OpenTelemetry project's generated code):
#
#   curl in web --> [web's proxy: CLIENT span] --mTLS--> [orders' proxy: SERVER span] --> app in orders
#                          \------------- OTLP/HTTP ------------/--> collector (node namespace)
#
# For a request with a W3C context, one with B3 multi-header fields, one with a single b3 field and one with none:
# web's proxy records a CLIENT span whose parent is the incoming span (none for a new trace), orders' proxy a SERVER
# span in the same trace whose parent is the CLIENT span, and the app receives the context with the SERVER span as
# its parent (traceparent, and B3 rewritten the same way when the request came with B3).
#
# Both proxies report their requests' exchanges (conn_observe.h) from the HTTP filters, inbound and outbound.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_require_cmds curl jq node /usr/bin/python3
TOOLS=${RM_NPM_TOOLS:-$RM_BUILD_DIR/tools}
[ -f "$TOOLS/node_modules/@opentelemetry/otlp-transformer/build/src/generated/root.js" ] ||
    rm_fail "the OTLP definitions are not installed in $TOOLS (run scripts/test-tools.sh $RM_BUILD_DIR)"
rm_setup
rm_control_init

APP=$RM_SOURCE_DIR/tests/e2e/tools/http_app.py
MESH=$RM_TMP/control/mesh
VIP=198.19.0.40
TRACE=4bf92f3577b34da6a3ce929d0e0e4736
SPAN=00f067aa0ba902b7

rm_mesh_service orders.yaml orders shop "$VIP" 8080 orders
# an HTTP rule, so that orders' proxy decides (and traces) request by request
cat >"$MESH/traced.yaml" <<EOF
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: traced, namespace: shop}
spec:
  selector: {matchLabels: {app: orders}}
  action: ALLOW
  rules: [{to: [{operation: {paths: ["/trace/*"]}}]}]
EOF

rm_pod_create orders
rm_pod_create web
rm_service "$VIP:8080" orders:8080
rm_bg app orders "$RM_TMP/logs/app.log" /usr/bin/python3 "$APP" http 8080
rm_wait_port orders 8080 10 app

COUT=$RM_TMP/collector.jsonl
: >"$COUT"
rm_bg collector node "$RM_TMP/logs/collector.log" node "$RM_SOURCE_DIR/tests/tools/otlp-collector.mjs" \
    --tools "$TOOLS" --listen 0.0.0.0 --port-file "$RM_TMP/collector.port" --out "$COUT" --mode ok
rm_wait_file "$RM_TMP/collector.port" collector 20
until [ -s "$RM_TMP/collector.port" ]; do sleep 0.05; done
CPORT=$(cat "$RM_TMP/collector.port")

rm_control_start main node 0.0.0.0:15012
for p in orders web; do
    RM_PROXY_ENV="OTEL_EXPORTER_OTLP_ENDPOINT=http://$(rm_pod_gateway "$p"):$CPORT OTEL_BSP_SCHEDULE_DELAY=50" \
        rm_pod_mesh "$p" "control=$(rm_pod_gateway "$p"):15012" ns="$( [ "$p" = orders ] && echo shop || echo web)" \
        sa="$( [ "$p" = orders ] && echo orders || echo frontend)" labels="app=$p"
done
for p in orders web; do rm_wait_ready "$p"; done

# spans: every decoded span, one compact object a line, with its resource
spans() {
    jq -c 'select(.request != null) | .request.resource_spans[] | .resource as $r | .scope_spans[] | .spans[]
           | . + {resource: $r}' "$COUT"
}

# trace_of PATH: waits (10 s) for the CLIENT and SERVER spans of the request for PATH; sets CS and SS
trace_of() {
    local deadline=$(($(rm_now_ms) + 10000))
    while :; do
        CS=$(spans | jq -c --arg p "$1" 'select(.kind == "CLIENT" and .attributes["url.path"] == $p)' | head -n 1)
        SS=$(spans | jq -c --arg p "$1" 'select(.kind == "SERVER" and .attributes["url.path"] == $p)' | head -n 1)
        [ -n "$CS" ] && [ -n "$SS" ] && return 0
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "$1: spans decoded: client ${CS:-none}, server ${SS:-none}"
        sleep 0.1
    done
}

# app_trace PATH: the trace fields the app received with the request for PATH
app_trace() {
    rm_expect_log "$RM_TMP/logs/app.log" ".event == \"request\" and .path == \"$1\"" "the app got $1"
    jq -c '.trace // {}' <<<"$RM_LINE"
}

request() {
    local path=$1 code
    shift
    code=$(rm_exec web curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" "http://$VIP:8080$path") || true
    rm_assert_eq "$code" 200 "GET $path through the hop"
}

# the common checks of one hop: one trace, the server span a child of the client span, the app's parent the server
hop() {
    local path=$1 incoming_parent=$2 trace
    trace_of "$path"
    trace=$(jq -r .trace_id <<<"$CS")
    rm_assert_eq "$(jq -r .trace_id <<<"$SS")" "$trace" "$path: client and server spans in one trace"
    rm_assert_eq "$(jq -r .parent_span_id <<<"$SS")" "$(jq -r .span_id <<<"$CS")" "$path: server span's parent"
    rm_assert_eq "$(jq -r .parent_span_id <<<"$CS")" "$incoming_parent" "$path: client span's parent"
    rm_assert_eq "$(jq -r .attributes[\"ringmesh.source_principal\"] <<<"$SS")" \
        "spiffe://$RM_TRUST_DOMAIN/ns/web/sa/frontend" "$path: source principal on the server span"
    rm_assert_eq "$(jq -r .attributes[\"ringmesh.destination_principal\"] <<<"$CS")" \
        "spiffe://$RM_TRUST_DOMAIN/ns/shop/sa/orders" "$path: destination principal on the client span"
    rm_assert_eq "$(jq -r .attributes[\"http.response.status_code\"] <<<"$SS")" 200 "$path: status"
    APP_TRACE=$(app_trace "$path")
    rm_assert_eq "$(jq -r .traceparent <<<"$APP_TRACE")" "00-$trace-$(jq -r .span_id <<<"$SS")-01" \
        "$path: the app's traceparent names the server span"
}

request /trace/w3c -H "traceparent: 00-$TRACE-$SPAN-01" -H "tracestate: rojo=1"
hop /trace/w3c "$SPAN"
rm_assert_eq "$(jq -r .trace_id <<<"$CS")" "$TRACE" "W3C: the incoming trace is continued"
rm_assert_eq "$(jq -r .tracestate <<<"$APP_TRACE")" "rojo=1" "W3C: tracestate reaches the app"

B3T=463ac35c9f6413ad48485a3953bb6124
B3S=a2fb4a1d1a96d312
request /trace/b3multi -H "x-b3-traceid: $B3T" -H "x-b3-spanid: $B3S" -H "x-b3-sampled: 1"
hop /trace/b3multi "$B3S"
rm_assert_eq "$(jq -r .trace_id <<<"$CS")" "$B3T" "B3 multi: the incoming trace is continued"
rm_assert_eq "$(jq -r '."x-b3-traceid" + " " + ."x-b3-spanid" + " " + ."x-b3-parentspanid"' <<<"$APP_TRACE")" \
    "$B3T $(jq -r .span_id <<<"$SS") $(jq -r .span_id <<<"$CS")" "B3 multi: rewritten for the app"

request /trace/b3single -H "b3: $B3T-$B3S-1"
hop /trace/b3single "$B3S"
rm_assert_eq "$(jq -r .b3 <<<"$APP_TRACE")" "$B3T-$(jq -r .span_id <<<"$SS")-1-$(jq -r .span_id <<<"$CS")" \
    "B3 single: rewritten for the app"

request /trace/new
hop /trace/new ""
rm_log "PASS"
