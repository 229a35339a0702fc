#!/usr/bin/env bash
# Spans and their OTLP/HTTP export, checked by an independent decoder: the test collector
# (tests/tools/otlp-collector.mjs) decodes every export with the code the OpenTelemetry project generated from its
# own .proto files, never with ringmesh's.
#
#   trace_span_drive (the proxy's span path and exporter, as a worker drives them) --OTLP/HTTP--> otlp-collector
#   curl -> [proxy "frontend"] --mTLS--> [proxy "orders"] -> app, both proxies exporting to a collector that hangs
#
# Cases: W3C and B3 (multi and single) contexts are continued, the forwarded request names this proxy's span as its
# parent, span ids, attributes and resource arrive as sent; a request without context starts a trace when sampled
# and none when not; a collector answering 503 is retried with growing waits and its spans are then counted as
# dropped, a 429's Retry-After is honoured; a collector that hangs or is down never holds up the requests: a bounded
# loop of requests all complete, the full queue drops and counts, memory stays flat, and stopping is bounded.
# Loopback only, in a private network namespace when root.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup_no_netns
rm_require_cmds curl jq node
TOOLS=${RM_NPM_TOOLS:-$RM_BUILD_DIR/tools}
[ -f "$TOOLS/node_modules/@opentelemetry/otlp-transformer/build/src/generated/root.js" ] ||
    rm_fail "the OTLP definitions are not installed in $TOOLS (run scripts/test-tools.sh $RM_BUILD_DIR)"
DRIVE="$RM_TOOLS/trace_span_drive"
[ -x "$DRIVE" ] || rm_fail "$DRIVE is not built"

rm_loopback_place 4
read -r P_APP P_IN P_UP P_ADM <<<"${RM_PORTS[*]}"

TRACE=4bf92f3577b34da6a3ce929d0e0e4736
SPAN=00f067aa0ba902b7
NCOLL=0

# collector_start MODE [RETRY_AFTER]: a new collector; COLL = its name, CPORT its port, COUT its JSON lines
collector_start() {
    NCOLL=$((NCOLL + 1))
    COLL=collector$NCOLL
    COUT="$RM_TMP/$COLL.jsonl"
    : >"$COUT"
    rm_bg "$COLL" "$POD" "$RM_TMP/logs/$COLL.log" node "$RM_SOURCE_DIR/tests/tools/otlp-collector.mjs" \
        --tools "$TOOLS" --port-file "$RM_TMP/$COLL.port" --out "$COUT" --mode "$1" --retry-after "${2:-}"
    rm_wait_file "$RM_TMP/$COLL.port" "$COLL" 20
    until [ -s "$RM_TMP/$COLL.port" ]; do sleep 0.05; done
    CPORT=$(cat "$RM_TMP/$COLL.port")
}

# drive OUT ENV... -- ARGS...: runs trace_span_drive with the OTEL_* settings ENV, the collector of collector_start
# as endpoint (unless ENV names one), its JSON lines to OUT
drive() {
    local out=$1 envs=()
    shift
    while [ "$1" != -- ]; do
        envs+=("$1")
        shift
    done
    shift
    rm_run env OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$CPORT" OTEL_BSP_SCHEDULE_DELAY=50 "${envs[@]}" \
        timeout 60 "$DRIVE" "$@" >"$out" 2>"$out.stderr" || rm_fail "trace_span_drive failed: $(cat "$out.stderr")"
}

# spans FILE: every span the collector decoded from the requests it accepted, one JSON object a line, with the
# resource beside it
spans() {
    jq -c 'select(.mode == "ok" and .request != null) | .request.resource_spans[] | .resource as $r
           | .scope_spans[] | .scope as $s | .spans[] | . + {resource: $r, scope: $s}' "$1"
}

# wait_spans FILE N: waits (bounded) until the collector has decoded N spans
wait_spans() {
    local deadline=$(($(rm_now_ms) + 10000))
    until [ "$(spans "$1" | wc -l)" -ge "$2" ]; do
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "the collector decoded $(spans "$1" | wc -l) spans, want $2"
        sleep 0.05
    done
}

# metric RESULT_FILE SERIES: a counter from the metrics text the driver printed at the end
metric() {
    jq -r 'select(.metrics) | .metrics' "$1" | awk -v k="$2" '$1 == k {print $2}'
}

case_w3c_continued() {
    collector_start ok
    drive "$RM_TMP/w3c.out" OTEL_SERVICE_NAME=orders-proxy OTEL_RESOURCE_ATTRIBUTES='deployment.environment=e2e,team=a%20b' \
        OTEL_EXPORTER_OTLP_HEADERS='x-api-key=k%3Dv, x-tenant = shop' RINGMESH_POD_NAME=orders-7d4 RINGMESH_POD_NAMESPACE=shop \
        -- --requests 1 --header "traceparent: 00-$TRACE-$SPAN-01" --header "tracestate: rojo=00f067aa0ba902b7,congo=t61"
    wait_spans "$COUT" 1
    local s set
    s=$(spans "$COUT" | head -n 1)
    set=$(jq -c 'select(.set) | .set' "$RM_TMP/w3c.out" | head -n 1)
    rm_assert_eq "$(jq -r .trace_id <<<"$s")" "$TRACE" "the span is in the incoming trace"
    rm_assert_eq "$(jq -r .parent_span_id <<<"$s")" "$SPAN" "its parent is the incoming span"
    rm_assert_eq "$(jq -r .kind <<<"$s")" CLIENT "outbound: a CLIENT span"
    rm_assert_eq "$(jq -r .traceparent <<<"$set")" "00-$TRACE-$(jq -r .span_id <<<"$s")-01" \
        "the forwarded traceparent names this span as parent"
    rm_assert_eq "$(jq -r .tracestate <<<"$set")" "rojo=00f067aa0ba902b7,congo=t61" "tracestate passed on"
    rm_assert_eq "$(jq -r '.name' <<<"$s")" "GET" "span name"
    rm_assert_eq "$(jq -c '.attributes | {m: ."http.request.method", p: ."url.path", q: ."url.query",
        h: ."server.address", port: ."server.port", peer: ."network.peer.address", code: ."http.response.status_code",
        v: ."network.protocol.version", ua: ."user_agent.original", src: ."ringmesh.source_principal",
        dst: ."ringmesh.destination_principal", d: ."ringmesh.authz.decision", pol: ."ringmesh.authz.policy"}' <<<"$s")" \
        '{"m":"GET","p":"/items/7","q":"color=blue","h":"orders.shop","port":8080,"peer":"198.18.0.20","code":200,"v":"1.1","ua":"trace-span-drive/1","src":"spiffe://cluster.local/ns/shop/sa/frontend","dst":"spiffe://cluster.local/ns/shop/sa/orders","d":"allow","pol":"shop.allow-frontend"}' \
        "span attributes"
    rm_assert_eq "$(jq -r '.status.code' <<<"$s")" 0 "status unset for a 200"
    rm_assert_eq "$(jq -c '.resource' <<<"$s")" \
        '{"service.name":"orders-proxy","deployment.environment":"e2e","team":"a b","k8s.pod.name":"orders-7d4","k8s.namespace.name":"shop"}' \
        "resource from OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES and the pod's variables"
    rm_assert_eq "$(jq -r '.scope.name' <<<"$s")" ringmesh-proxy "instrumentation scope"
    local req
    req=$(head -n 1 "$COUT")
    rm_assert_eq "$(jq -r .content_type <<<"$req")" application/x-protobuf "content type"
    rm_assert_eq "$(jq -r '.headers["x-api-key"] + "|" + .headers["x-tenant"]' <<<"$req")" "k=v|shop" \
        "OTEL_EXPORTER_OTLP_HEADERS sent, percent-decoded"
    rm_assert_eq "$(jq -r "select(.set) | .decision_log_trace_id" "$RM_TMP/w3c.out" | head -n 1)" "$TRACE" "trace id for the decision log"
    rm_assert_eq "$(metric "$RM_TMP/w3c.out" ringmesh_proxy_spans_exported_total)" 1 "spans exported"
}

case_b3_continued() {
    collector_start ok
    # multi-header with a 64-bit trace id, inbound: a SERVER span; the app gets B3 rewritten and a traceparent
    drive "$RM_TMP/b3m.out" -- --inbound --requests 1 --status 503 --header "x-b3-traceid: a3ce929d0e0e4736" \
        --header "x-b3-spanid: 05e3ac9a4f6e3b90" --header "x-b3-sampled: 1"
    # single header, sampled; the decision as the authorization step reports it
    drive "$RM_TMP/b3s.out" -- --inbound --noted --requests 1 --header "b3: $TRACE-$SPAN-1"
    wait_spans "$COUT" 2
    local m s setm sets
    m=$(spans "$COUT" | jq -c 'select(.trace_id == "0000000000000000a3ce929d0e0e4736")')
    s=$(spans "$COUT" | jq -c "select(.trace_id == \"$TRACE\")")
    setm=$(jq -c 'select(.set) | .set' "$RM_TMP/b3m.out")
    sets=$(jq -c 'select(.set) | .set' "$RM_TMP/b3s.out")
    [ -n "$m" ] && [ -n "$s" ] || rm_fail "B3 spans missing: $(spans "$COUT")"
    rm_assert_eq "$(jq -r '.kind + " " + .parent_span_id' <<<"$m")" "SERVER 05e3ac9a4f6e3b90" "B3 multi: continued"
    rm_assert_eq "$(jq -r '.status.code' <<<"$m")" 2 "a 503 makes a server span ERROR"
    rm_assert_eq "$(jq -r '.traceparent' <<<"$setm")" "00-0000000000000000a3ce929d0e0e4736-$(jq -r .span_id <<<"$m")-01" \
        "B3 multi: traceparent to the app"
    rm_assert_eq "$(jq -r '."x-b3-spanid" + " " + ."x-b3-parentspanid" + " " + ."x-b3-sampled"' <<<"$setm")" \
        "$(jq -r .span_id <<<"$m") 05e3ac9a4f6e3b90 1" "B3 multi: rewritten for the app"
    rm_assert_eq "$(jq -r '.parent_span_id' <<<"$s")" "$SPAN" "B3 single: continued"
    rm_assert_eq "$(jq -r '.b3' <<<"$sets")" "$TRACE-$(jq -r .span_id <<<"$s")-1-$SPAN" "B3 single: rewritten for the app"
    rm_assert_eq "$(jq -r '.attributes["ringmesh.authz.decision"] + " " + .attributes["ringmesh.authz.policy"]' <<<"$s")" \
        "would-deny shop/dry-run-deny" "the decision and policy the authorization step noted"
}

case_new_trace_sampling() {
    collector_start ok
    drive "$RM_TMP/off.out" OTEL_TRACES_SAMPLER=always_off -- --requests 3
    drive "$RM_TMP/on.out" OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=1 -- --requests 3
    wait_spans "$COUT" 3
    rm_assert_eq "$(spans "$COUT" | wc -l)" 3 "only the sampled requests' spans are exported"
    rm_assert_eq "$(jq -r 'select(.set) | .set.traceparent | test("^00-[0-9a-f]{32}-[0-9a-f]{16}-00$")' "$RM_TMP/off.out" |
        sort -u)" true "not sampled: a new context is still forwarded, flagged not sampled"
    rm_assert_eq "$(spans "$COUT" | jq -r '.parent_span_id' | sort -u)" "" "a new trace's span has no parent"
    local first
    first=$(jq -c 'select(.set)' "$RM_TMP/on.out" | head -n 1)
    rm_assert_eq "$(jq -r .decision_log_trace_id <<<"$first")" "$(jq -r .span_trace_id <<<"$first")" \
        "the decision log's trace id is the new trace's"
    rm_assert_eq "$(spans "$COUT" | jq -r .trace_id | grep -c "$(jq -r .span_trace_id <<<"$first")")" 1 \
        "and the exported span's"
    rm_assert_eq "$(jq -r 'select(.set) | .set | keys | join(",")' "$RM_TMP/on.out" | sort -u)" traceparent \
        "no B3 fields added to a request that had none"
}

case_503_backoff_then_dropped() {
    collector_start 503
    drive "$RM_TMP/503.out" -- --requests 5 --linger-ms 4500
    local times gaps
    times=$(jq -r .ms "$COUT")
    rm_assert_eq "$(wc -l <<<"$times")" 5 "tries of one batch (RM_TRACE_EXPORT_MAX_TRIES)"
    gaps=$(awk 'NR > 1 {print $1 - prev} {prev = $1}' <<<"$times" | tr '\n' ' ')
    rm_log "gaps between tries (ms): $gaps"
    # backoff: [125,250], [250,500], [500,1000], [1000,2000] ms (half jitter), each at least the one before
    awk '{ lo[1]=100; lo[2]=230; lo[3]=480; lo[4]=980; hi[1]=450; hi[2]=750; hi[3]=1300; hi[4]=2400;
           for (i = 1; i <= NF; i++) if ($i < lo[i] || $i > hi[i]) { print "gap " i " is " $i " ms"; exit 1 } }' \
        <<<"$gaps" || rm_fail "the waits between tries do not grow as the backoff says: $gaps"
    rm_assert_eq "$(jq -r 'select(.request) | .request.resource_spans[0].scope_spans[0].spans | length' "$COUT" | sort -u)" 5 \
        "each try carries the batch"
    rm_assert_eq "$(metric "$RM_TMP/503.out" 'ringmesh_proxy_trace_exports_total{result="retry"}')" 4 "retries counted"
    rm_assert_eq "$(metric "$RM_TMP/503.out" 'ringmesh_proxy_trace_exports_total{result="failed"}')" 1 "failure counted"
    rm_assert_eq "$(metric "$RM_TMP/503.out" 'ringmesh_proxy_spans_dropped_total{reason="export_failed"}')" 5 \
        "spans dropped after the last try"
    rm_assert_eq "$(metric "$RM_TMP/503.out" ringmesh_proxy_spans_exported_total)" 0 "nothing exported"
}

case_429_retry_after() {
    collector_start 429 1
    drive "$RM_TMP/429.out" -- --requests 2 --linger-ms 1600
    local times gap
    times=$(jq -r .ms "$COUT")
    [ "$(wc -l <<<"$times")" -ge 2 ] || rm_fail "no second try after a 429 with Retry-After: 1"
    gap=$(awk 'NR == 2 {print $1 - prev} {prev = $1}' <<<"$times")
    [ "$gap" -ge 950 ] || rm_fail "the second try came $gap ms after the first, before Retry-After's 1 s"
    rm_log "ok: Retry-After honoured ($gap ms)"
}

# requests never wait on the collector: a bounded loop of 20000 requests completes whatever the collector does;
# the queue (256 spans) overflows and counts, memory does not grow with the requests, and stopping is bounded
traffic_despite() {
    local name=$1 endpoint=$2 out="$RM_TMP/$1.out" rss_at rss_end stop_ms
    drive "$out" OTEL_EXPORTER_OTLP_ENDPOINT="$endpoint" OTEL_BSP_MAX_QUEUE_SIZE=256 OTEL_BSP_MAX_EXPORT_BATCH_SIZE=64 \
        OTEL_EXPORTER_OTLP_TIMEOUT=400 -- --requests 20000 --rss-at 2000 --linger-ms 600
    rm_assert_eq "$(jq -r 'select(.rss_kb) | "done"' "$out")" done "$name: all 20000 requests went through the span path"
    local full
    full=$(metric "$out" 'ringmesh_proxy_spans_dropped_total{reason="queue_full"}')
    [ "${full:-0}" -gt 10000 ] || rm_fail "$name: spans dropped on a full queue: ${full:-none}"
    rm_log "ok: $name: $full spans dropped on a full queue, counted"
    rss_at=$(jq -r 'select(.rss_kb) | .rss_kb_at' "$out")
    rss_end=$(jq -r 'select(.rss_kb) | .rss_kb' "$out")
    if [[ ${ASAN_OPTIONS:-} == *log_path=* ]]; then
        # the sanitizer stage (scripts/test.sh): AddressSanitizer's quarantine holds freed memory, so RSS grows
        rm_log "$name: RSS from $rss_at kB to $rss_end kB, not bounded under AddressSanitizer"
    else
        [ $((rss_end - rss_at)) -lt 4096 ] || rm_fail "$name: RSS grew from $rss_at kB to $rss_end kB"
    fi
    rm_log "ok: $name: RSS $rss_at kB after 2000 requests, $rss_end kB after 20000"
    stop_ms=$(jq -r 'select(.rss_kb) | .stop_ms' "$out")
    [ "$stop_ms" -le 6000 ] || rm_fail "$name: stopping took $stop_ms ms, more than the 5 s flush bound"
    rm_log "ok: $name: stopped in $stop_ms ms"
}

case_collector_hangs() {
    collector_start hang
    traffic_despite hang "http://127.0.0.1:$CPORT"
    [ "$(wc -l <"$COUT")" -ge 1 ] || rm_fail "the hanging collector saw no export"
    rm_assert_eq "$(metric "$RM_TMP/hang.out" ringmesh_proxy_spans_exported_total)" 0 "nothing exported to a hanging collector"
}

case_collector_down() {
    # a port nothing listens on
    traffic_despite down "http://127.0.0.1:$P_APP"
    local retries
    retries=$(metric "$RM_TMP/down.out" 'ringmesh_proxy_trace_exports_total{result="retry"}')
    [ "${retries:-0}" -ge 1 ] || rm_fail "an unreachable collector is not retried"
    rm_log "ok: unreachable collector retried ($retries)"
}

# The real proxies, exporting to a hanging collector: requests through the pair all succeed, the exporter's metrics
# are on /metrics, and the proxies stop within their bound.
case_proxy_pair_collector_hangs() {
    collector_start hang
    OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$CPORT" OTEL_EXPORTER_OTLP_TIMEOUT=300 OTEL_BSP_SCHEDULE_DELAY=50 \
        rm_loopback_pair "$P_APP" "$P_IN" "$P_UP" "$P_ADM" -
    rm_bg app "$POD" "$RM_TMP/logs/app.log" /usr/bin/python3 "$RM_SOURCE_DIR/tests/e2e/tools/http_app.py" http "$P_APP"
    rm_wait_port "$POD" "$P_APP" 10 app
    rm_expect_log "$RM_TMP/logs/proxy-frontend.log" '.event == "trace_export_config"' "tracing configured from OTEL_*"
    rm_run curl -s -m 60 -o /dev/null -w '%{http_code}\n' -H "traceparent: 00-$TRACE-$SPAN-01" \
        "http://127.0.0.1:$P_UP/r/[1-200]" >"$RM_TMP/pair-codes.txt" || rm_fail "curl through the pair failed"
    rm_assert_eq "$(grep -c '^200$' "$RM_TMP/pair-codes.txt")" 200 "requests answered 200 while the collector hangs"
    rm_assert_eq "$(rm_metric "$P_ADM" 'ringmesh_proxy_spans_dropped_total{reason="queue_full"}')" 0 \
        "the exporter's counters are on /metrics"
    rm_stop proxy-frontend
    rm_stop proxy-orders
}

# each case starts its own collector (a background process: so the cases run in this shell, not as rm_case)
for c in w3c_continued b3_continued new_trace_sampling 503_backoff_then_dropped 429_retry_after collector_hangs \
    collector_down; do
    rm_log "--- case: $c"
    COLL=""
    "case_$c"
    [ -z "$COLL" ] || rm_stop "$COLL"
done
rm_log "--- case: proxy_pair_collector_hangs"
case_proxy_pair_collector_hangs
rm_log "PASS"
