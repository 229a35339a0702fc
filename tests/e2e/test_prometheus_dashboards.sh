#!/usr/bin/env bash
# The dashboards against a real Prometheus (Debian's prometheus server) scraping the namespace mesh:
#   - ringmesh-control and a proxy pair (web -> orders, both with their admin port on the pod's address, as in a
#     pod), scraped every second by a Prometheus the test starts in the node namespace (its own configuration,
#     storage and port; stopped by PID) with the relabelling of docs/observability.md's scrape configuration: jobs
#     ringmesh-proxy and ringmesh-control, one target per meshed pod, namespace and pod labels;
#   - a bounded amount of traffic: HTTP requests allowed and denied by policy (a dry-run policy would deny the
#     allowed ones), and TCP connections;
#   - every template variable of both dashboards (charts/ringmesh/dashboards/*.json) has options, and every query of
#     every panel, run through Prometheus' HTTP API with the variables substituted, returns data;
#   - sum(ringmesh_requests_total{reporter="destination"}) is the number of HTTP requests made, and the authorization
#     decisions counted are the ones made.
# Every query without data is listed before the test fails, so one run says which panels wait for which metrics.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_require_cmds curl jq prometheus /usr/bin/python3
rm_setup
rm_control_init

DASHBOARDS=$RM_SOURCE_DIR/charts/ringmesh/dashboards
APP=$RM_SOURCE_DIR/tests/e2e/tools/http_app.py
MESH=$RM_TMP/control/mesh
VIP=198.19.0.40
N_ALLOWED=30 # HTTP requests orders' policies allow
N_DENIED=10  # HTTP requests they deny
N_TCP=5      # TCP connections
PROM=127.0.0.1:9090 # in the node namespace, which is the test's own

cat >"$MESH/orders.yaml" <<EOF
apiVersion: ringmesh.io/v1alpha1
kind: Service
metadata: {name: orders, namespace: shop}
spec:
  addresses: [$VIP]
  ports: [8080, 7000]
  serviceAccounts: [orders]
EOF
cat >"$MESH/policies.yaml" <<'EOF'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-all, namespace: shop}
spec:
  selector: {matchLabels: {app: orders}}
  action: ALLOW
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: shop}
spec:
  selector: {matchLabels: {app: orders}}
  action: DENY
  rules:
  - to:
    - operation:
        ports: ["8080"]
        paths: ["/admin*"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: trial-deny-web
  namespace: shop
  annotations: {ringmesh.io/dry-run: "true"}
spec:
  selector: {matchLabels: {app: orders}}
  action: DENY
  rules:
  - from:
    - source:
        namespaces: ["web"]
    to:
    - operation:
        ports: ["8080"]
EOF

rm_pod_create orders
rm_pod_create web
rm_service "$VIP:8080" orders:8080
rm_service "$VIP:7000" orders:7000
rm_bg app-http orders "$RM_TMP/logs/app-http.log" /usr/bin/python3 "$APP" http 8080
rm_wait_port orders 8080 10 app-http
rm_server echo orders 0.0.0.0:7000 echo

# the control plane in the node namespace, with its admin port (/metrics) and the webhook (its certificate's expiry)
rm_control_start main node 0.0.0.0:15012 --admin-listen 0.0.0.0:15014 --webhook-listen 0.0.0.0:15017 \
    --kube-version 1.33
rm_wait_port node 15014 10 control-main

# meshed pods as the injector makes them: the admin port on the pod's address, where Prometheus scrapes it
mesh_pod() { # POD NAMESPACE SA APP
    rm_pod_config "$1" "control=$(rm_pod_gateway "$1"):15012" "ns=$2" "sa=$3" "labels=app=$4"
    sed -i 's/^  listen: 127.0.0.1:15021$/  listen: "0.0.0.0:15021"/' "$RM_TMP/pods/$1/proxy.yaml"
    grep -q '0.0.0.0:15021' "$RM_TMP/pods/$1/proxy.yaml" || rm_fail "$1: the admin address was not changed"
    rm__capture_rules "$1"
    rm_proxy_start "$1"
    rm_wait_port "$1" 15021 10 "proxy-$1"
}
mesh_pod orders shop orders orders
mesh_pod web web frontend web
for p in orders web; do rm_wait_ready "$p"; done

# --- Prometheus, scraping every second with the scrape configuration of docs/observability.md: its relabelling
# as written there; what Kubernetes discovery would give (the meta labels of pods and endpoints) comes from file_sd
# targets, as Debian's Prometheus is built without Kubernetes discovery. Besides the two meshed pods (each seen
# twice, once per container port, as the pod role lists them), a pod without the sidecar and the control plane's
# gRPC port, which the relabelling must leave out.
mkdir -p "$RM_TMP/prometheus/data"
P=$RM_TMP/prometheus
pod_target() { # POD NAMESPACE PORT [MESHED]
    jq -n --arg ip "${RM_POD_IP[$1]}" --arg pod "$1" --arg ns "$2" --arg port "$3" --arg meshed "${4:-true}" '{
        targets: ["\($ip):\($port)"],
        labels: ({__meta_kubernetes_pod_ip: $ip, __meta_kubernetes_pod_name: $pod, __meta_kubernetes_namespace: $ns,
                  __meta_kubernetes_pod_phase: "Running", __meta_kubernetes_pod_container_port_number: $port} +
                 (if $meshed == "true" then {__meta_kubernetes_pod_annotationpresent_ringmesh_io_status: "true"}
                  else {} end))}'
}
{
    pod_target orders shop 8080
    pod_target orders shop 7000
    pod_target web web 15021
    pod_target web web 8080 false
} | jq -s . >"$P/pods.json"
jq -n '[{targets: ["127.0.0.1:15014"], labels: {__meta_kubernetes_namespace: "ringmesh-system",
          __meta_kubernetes_pod_name: "ringmesh-control-0", __meta_kubernetes_service_name: "ringmesh-control",
          __meta_kubernetes_endpoint_port_name: "http-metrics"}},
        {targets: ["127.0.0.1:15012"], labels: {__meta_kubernetes_namespace: "ringmesh-system",
          __meta_kubernetes_pod_name: "ringmesh-control-0", __meta_kubernetes_service_name: "ringmesh-control",
          __meta_kubernetes_endpoint_port_name: "grpc"}}]' >"$P/control.json"
{
    printf 'global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n'
    awk '/^\*\*A scrape configuration with the expected job names\*\*/ { f = 1 }
        f && /^```yaml$/ { p = 1; next } p && /^```$/ { exit } p' "$RM_SOURCE_DIR/docs/observability.md" |
        awk -v pods="$P/pods.json" -v control="$P/control.json" '
            /^    kubernetes_sd_configs:$/ { skip = 1; n++; print "    file_sd_configs:"
                                             print "      - files: [" (n == 1 ? pods : control) "]"; next }
            skip && /^      / { next }
            { skip = 0; print }'
} >"$P/prometheus.yml"
if ! grep -q 'job_name: ringmesh-proxy' "$P/prometheus.yml" || ! grep -q 'job_name: ringmesh-control' "$P/prometheus.yml" ||
    [ "$(grep -c 'file_sd_configs:' "$P/prometheus.yml")" != 2 ]; then
    rm_fail "docs/observability.md's scrape configuration was not found: $(cat "$P/prometheus.yml")"
fi
out=$(promtool check config "$P/prometheus.yml" 2>&1) || rm_fail "promtool check config: $out"
rm_bg prometheus node "$RM_TMP/logs/prometheus.log" prometheus --config.file="$P/prometheus.yml" \
    --storage.tsdb.path="$P/data" --web.listen-address="$PROM" --log.level=warn
rm_wait_port node "${PROM##*:}" 30 prometheus

# api PATH [curl args]: GET from Prometheus' HTTP API in the node namespace; prints the JSON answer
api() {
    local path=$1
    shift
    rm_exec node curl -s -m 10 -G "http://$PROM$path" "$@"
}
# query EXPR: an instant query; prints the answer
query() {
    api /api/v1/query --data-urlencode "query=$1"
}
# wait_value EXPR WANT WHAT [TIMEOUT_S]: waits (bounded) until EXPR's single value is WANT
wait_value() {
    local deadline=$(($(rm_now_ms) + ${4:-20} * 1000)) got=""
    while :; do
        got=$(query "$1" | jq -r 'if .status == "success" and (.data.result | length) == 1 then .data.result[0].value[1] else "none" end')
        [ "$got" = "$2" ] && break
        [ "$(rm_now_ms)" -lt "$deadline" ] || {
            echo "$got"
            return 1
        }
        sleep 0.5
    done
    rm_log "ok: $3 ($1 = $got)"
}
wait_value 'count(up{job="ringmesh-proxy"} == 1)' 2 "Prometheus scrapes both proxies" 30 ||
    rm_fail "Prometheus does not scrape both proxies: $(api /api/v1/targets | jq -c '[.data.activeTargets[] | {scrapeUrl, health, lastError}]')"
wait_value 'count(up{job="ringmesh-control"} == 1)' 1 "Prometheus scrapes the control plane" 30 ||
    rm_fail "Prometheus does not scrape the control plane: $(api /api/v1/targets | jq -c '[.data.activeTargets[] | {scrapeUrl, health, lastError}]')"
# the relabelling keeps one target per meshed pod, at port 15021, and the control plane's metrics port only
targets=$(api /api/v1/targets | jq -c '[.data.activeTargets[] | "\(.labels.job) \(.labels.namespace)/\(.labels.pod) \(.scrapeUrl)"] | sort')
rm_assert_eq "$targets" "$(jq -c -n --arg o "${RM_POD_IP[orders]}" --arg w "${RM_POD_IP[web]}" '[
    "ringmesh-control ringmesh-system/ringmesh-control-0 http://127.0.0.1:15014/metrics",
    "ringmesh-proxy shop/orders http://\($o):15021/metrics", "ringmesh-proxy web/web http://\($w):15021/metrics"] | sort')" \
    "docs/observability.md's relabelling: one target per meshed pod and the control plane's metrics port"

# --- traffic: HTTP requests allowed and denied, TCP connections
traffic_start=$(rm_now_ms)
allowed=0 denied=0
for i in $(seq 1 "$N_ALLOWED"); do
    code=$(rm_exec web curl -s -o /dev/null -w '%{http_code}' -m 10 "http://$VIP:8080/orders/$i") || true
    [ "$code" = 200 ] && allowed=$((allowed + 1))
done
for i in $(seq 1 "$N_DENIED"); do
    code=$(rm_exec web curl -s -o /dev/null -w '%{http_code}' -m 10 "http://$VIP:8080/admin/$i") || true
    [ "$code" = 403 ] && denied=$((denied + 1))
done
rm_assert_eq "$allowed $denied" "$N_ALLOWED $N_DENIED" "HTTP requests answered 200 / denied with 403"
for i in $(seq 1 "$N_TCP"); do
    rm_expect_echo "tcp-$i" web "$VIP:7000"
done

# the counters of this traffic have been scraped: the denials (a metric every proxy has today) first
wait_value 'sum(ringmesh_proxy_authz_decisions_total{namespace="shop", decision="deny", policy="shop/deny-admin"})' \
    "$N_DENIED" "Prometheus has the denials" 20 || rm_fail "Prometheus does not count $N_DENIED denials"
wait_value 'sum(ringmesh_proxy_authz_decisions_total{namespace="shop", decision="would-deny", policy="shop/trial-deny-web"})' \
    "$N_ALLOWED" "and the dry-run policy's would-deny decisions" 20 ||
    rm_fail "Prometheus does not count $N_ALLOWED would-deny decisions"
sleep 2 # two more scrapes: every proxy's and the control plane's counters are past the traffic
# the rate window: the whole traffic, as Grafana's $__rate_interval covers the range it shows
window="$((($(rm_now_ms) - traffic_start) / 1000 + 10))s"
rm_log "traffic done; rate window $window"

# --- every variable and every panel query of both dashboards, as Grafana would run them
missing=()
checked=0
for dash in "$DASHBOARDS"/*.json; do
    dname=$(basename "$dash" .json)
    # variables: each query variable's label_values(SELECTOR, LABEL) must offer values; then "All" (its allValue)
    vars=$(jq -n --arg w "$window" '{__rate_interval: $w}')
    while read -r v; do
        name=$(jq -r .name <<<"$v")
        sel=$(jq -r --argjson vars "$vars" '.sel | reduce ($vars | to_entries[]) as $e (.; gsub("\\$" + $e.key + "\\b"; $e.value))' <<<"$v")
        label=$(jq -r .label <<<"$v")
        values=$(api "/api/v1/label/$label/values" --data-urlencode "match[]=$sel" | jq -c '.data // []')
        checked=$((checked + 1))
        if [ "$(jq length <<<"$values")" = 0 ]; then
            missing+=("$dname: variable \$$name: label_values($sel, $label)")
        else
            rm_log "ok: $dname: variable \$$name offers $values"
        fi
        vars=$(jq -c --arg n "$name" --arg all "$(jq -r .all <<<"$v")" '. + {($n): $all}' <<<"$vars")
    done < <(jq -c '.templating.list[] | select(.type == "query") | {name, all: .allValue,
        sel: (.query.query | capture("^label_values\\((?<s>.*), *(?<l>[a-z_]+)\\)$").s),
        label: (.query.query | capture("^label_values\\((?<s>.*), *(?<l>[a-z_]+)\\)$").l)}' "$dash")
    # panels
    while read -r t; do
        expr=$(jq -r --argjson vars "$vars" '.expr | reduce ($vars | to_entries[]) as $e (.; gsub("\\$" + $e.key + "\\b"; $e.value))' <<<"$t")
        what="$dname: panel \"$(jq -r .title <<<"$t")\" query $(jq -r .ref <<<"$t")"
        ! grep -q '\$' <<<"$expr" || rm_fail "$what: a variable is left in the query: $expr"
        answer=$(query "$expr")
        checked=$((checked + 1))
        [ "$(jq -r .status <<<"$answer")" = success ] || rm_fail "$what: Prometheus refused the query: $answer ($expr)"
        if [ "$(jq '.data.result | length' <<<"$answer")" = 0 ]; then
            missing+=("$what: $expr")
        else
            rm_log "ok: $what: $(jq -c '[.data.result[] | .value[1]] | .[:4]' <<<"$answer")"
        fi
    done < <(jq -c '.panels[] | select(.type != "row") | .title as $title | .targets[] | {title: $title, ref: .refId, expr}' "$dash")
done
rm_log "$checked variables and queries run, $((checked - ${#missing[@]})) with data"

# --- the request count is the number of requests made (the inbound proxy reports each once)
n_requests=$((N_ALLOWED + N_DENIED))
if ! got=$(wait_value 'sum(ringmesh_requests_total{reporter="destination"})' "$n_requests" \
    "ringmesh_requests_total counts the $n_requests requests made" 10); then
    missing+=("sum(ringmesh_requests_total{reporter=\"destination\"}) is $got, want $n_requests")
fi
if ! got=$(wait_value 'sum(ringmesh_requests_total{reporter="destination", response_code="403"})' "$N_DENIED" \
    "of which $N_DENIED answered 403 by the proxy" 5); then
    missing+=("sum(ringmesh_requests_total{reporter=\"destination\", response_code=\"403\"}) is $got, want $N_DENIED")
fi

if [ ${#missing[@]} -gt 0 ]; then
    printf 'no data: %s\n' "${missing[@]}" >&2
    rm_fail "${#missing[@]} of $checked dashboard queries, variables and counts have no data or the wrong value (listed above)"
fi
rm_log "PASS"
