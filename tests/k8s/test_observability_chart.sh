#!/usr/bin/env bash
# What the chart ships for Prometheus and Grafana, checked with the real tools (helm v4, Debian's promtool):
#   - dashboards.*, prometheusRule.*, alerts.configMap.*, serviceMonitor.* render the objects they name, where they
#     name, with the labels Grafana's sidecar and the Prometheus Operator select on, and nothing when off; every
#     object is valid for Kubernetes 1.33;
#   - `promtool check rules` passes on files/alerts.yaml and on the groups of the rendered PrometheusRule (which are
#     the file's, with runbook links rewritten by alerts.runbookBaseURL); `promtool test rules` passes
#     tests/alerts/*.test.yaml against both, and every alert has a test where it fires and one where it does not;
#   - every alert has severity, summary, description and a runbook_url whose anchor is a section of docs/runbooks.md;
#   - the dashboards are scripts/gen-dashboards.py's output, every panel's query and every template variable's
#     selector parses (as recording rules checked by promtool), and every query uses the ${datasource} variable;
#   - the control plane's pods carry the prometheus.io annotations, and control.podAnnotations wins over them.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib_k8s.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib_k8s.sh"
rm_k8s_require_tools
rm_require_cmds jq python3
command -v promtool >/dev/null || rm_fail "promtool is missing: scripts/bootstrap.sh installs Debian's prometheus"

chart=$RM_SOURCE_DIR/charts/ringmesh
alerts=$chart/files/alerts.yaml
dir=$(mktemp -d /tmp/ringmesh-k8s-obs.XXXXXX)
trap 'rm -rf "$dir"' EXIT
helm() { "$RM_HELM" "$@"; }
yaml2json() { NODE_PATH=$RM_NPM_TOOLS/node_modules node "$RM_SOURCE_DIR/tests/tools/yaml2json.mjs" "$@"; }
OPERATOR_KINDS=(--allow-kind monitoring.coreos.com/v1/PrometheusRule --allow-kind monitoring.coreos.com/v1/ServiceMonitor
    --allow-kind monitoring.coreos.com/v1/PodMonitor)

# render CASE [helm args]: renders the chart into $dir/CASE.{yaml,json}, validates every object
render() {
    local name=$1 out
    shift
    helm template ringmesh "$chart" -n ringmesh-system "$@" >"$dir/$name.yaml" 2>"$dir/$name.err" ||
        rm_fail "$name: helm template: $(cat "$dir/$name.err")"
    out=$(rm_k8s_validate "${OPERATOR_KINDS[@]}" "$dir/$name.yaml") ||
        rm_fail "$name: an object is not valid for Kubernetes 1.33: $(grep '^bad' <<<"$out")"
    yaml2json "$dir/$name.yaml" >"$dir/$name.json"
    rm_log "ok: $name: $(grep -c '^ok ' <<<"$out") objects valid for Kubernetes 1.33"
}
q() { jq -r "$2" "$dir/$1.json"; }
obj() { printf '.[] | select(.kind == "%s" and .metadata.name == "%s")' "$1" "$2"; }
expect() { # CASE JQ WANT WHAT
    local got
    got=$(q "$1" "$2")
    [ "$got" = "$3" ] || rm_fail "$1: $4: got '$got', want '$3'"
}
# kinds CASE: the observability objects rendered, "Kind/name@namespace" sorted
kinds() {
    q "$1" '[.[] | select((.kind | test("^(PrometheusRule|ServiceMonitor|PodMonitor)$")) or
        (.kind == "ConfigMap" and (.metadata.name | test("dashboard|alerts")))) |
        "\(.kind)/\(.metadata.name)@\(.metadata.namespace)"] | sort | join(" ")'
}

# --- the plain rules file and its unit tests
out=$(promtool check rules "$alerts" 2>&1) || rm_fail "promtool check rules $alerts: $out"
rm_log "ok: promtool check rules: $(grep -o '[0-9]* rules found' <<<"$out")"
n=0
for t in "$RM_SOURCE_DIR"/tests/alerts/*.test.yaml; do
    out=$(cd "$(dirname "$t")" && promtool test rules "$(basename "$t")" 2>&1) ||
        rm_fail "promtool test rules $(basename "$t"): $out"
    n=$((n + 1))
done
[ "$n" -gt 0 ] || rm_fail "no tests/alerts/*.test.yaml"
rm_log "ok: promtool test rules: $n test files pass"

# every alert: its labels and annotations, a runbook section, a test that fires it and one that does not
yaml2json "$alerts" | jq -c '.[0].groups[].rules[]' >"$dir/rules.jsonl"
for t in "$RM_SOURCE_DIR"/tests/alerts/*.test.yaml; do yaml2json "$t" | jq -c '.[0].tests[].alert_rule_test[]'; done \
    >"$dir/alert-tests.jsonl"
anchors=$(sed -n 's/^## \(Ringmesh[A-Za-z]*\)$/\1/p' "$RM_SOURCE_DIR/docs/runbooks.md" | tr '[:upper:]' '[:lower:]')
n=0
while read -r rule; do
    name=$(jq -r '.alert // empty' <<<"$rule")
    [ -n "$name" ] || rm_fail "files/alerts.yaml: a rule that is not an alert: $rule"
    n=$((n + 1))
    jq -e '.labels.severity | test("^(critical|warning|info)$")' <<<"$rule" >/dev/null ||
        rm_fail "$name: no severity label (critical, warning or info)"
    jq -e '.annotations.summary and .annotations.description' <<<"$rule" >/dev/null ||
        rm_fail "$name: summary and description annotations are required"
    want="docs/runbooks.md#$(tr '[:upper:]' '[:lower:]' <<<"$name")"
    rm_assert_eq "$(jq -r '.annotations.runbook_url' <<<"$rule")" "$want" "$name: runbook_url"
    grep -qx "${want#*#}" <<<"$anchors" || rm_fail "$name: docs/runbooks.md has no section '## $name'"
    jq -e -s --arg a "$name" 'any(.[]; .alertname == $a and (.exp_alerts | length) > 0)' "$dir/alert-tests.jsonl" \
        >/dev/null || rm_fail "$name: no test in tests/alerts where it fires"
    jq -e -s --arg a "$name" 'any(.[]; .alertname == $a and (.exp_alerts | length) == 0)' "$dir/alert-tests.jsonl" \
        >/dev/null || rm_fail "$name: no test in tests/alerts where it stays quiet"
done <"$dir/rules.jsonl"
[ "$n" -ge 8 ] || rm_fail "files/alerts.yaml has $n alerts, fewer than the 8 kinds the runbooks describe"
rm_log "ok: $n alerts, each with severity, summary, description, a runbook section, and tests firing and quiet"

# --- defaults: the dashboards, nothing for the Operator, the control plane's scrape annotations
render default
rm_assert_eq "$(kinds default)" \
    "ConfigMap/ringmesh-mesh-dashboard@ringmesh-system ConfigMap/ringmesh-workload-dashboard@ringmesh-system" \
    "default: the two dashboards only"
for d in ringmesh-mesh ringmesh-workload; do
    expect default "$(obj ConfigMap "$d-dashboard") | .metadata.labels.grafana_dashboard" 1 "$d: Grafana's label"
    q default "$(obj ConfigMap "$d-dashboard") | .data[\"$d.json\"]" >"$dir/$d.rendered.json"
    cmp -s <(jq -S . "$dir/$d.rendered.json") <(jq -S . "$chart/dashboards/$d.json") ||
        rm_fail "$d: the ConfigMap does not carry dashboards/$d.json"
done
rm_log "ok: default: the dashboards as ConfigMaps labelled grafana_dashboard=1, their data the chart's files"
ann='.spec.template.metadata.annotations'
expect default "$(obj Deployment ringmesh-control) | $ann | [.\"prometheus.io/scrape\", .\"prometheus.io/port\", .\"prometheus.io/path\"] | join(\" \")" \
    "true 15014 /metrics" "the control plane's scrape annotations"
render own-annotations --set-string 'control.podAnnotations.prometheus\.io/scrape=false' \
    --set-string 'control.podAnnotations.prometheus\.io/port=9999'
expect own-annotations "$(obj Deployment ringmesh-control) | $ann | [.\"prometheus.io/scrape\", .\"prometheus.io/port\", .\"prometheus.io/path\"] | join(\" \")" \
    "false 9999 /metrics" "control.podAnnotations win over the scrape annotations"
grep -c 'prometheus.io/scrape' "$dir/own-annotations.yaml" | grep -qx 1 ||
    rm_fail "own-annotations: prometheus.io/scrape is rendered twice"
rm_log "ok: the control plane's pods carry prometheus.io/scrape, port 15014, path /metrics; podAnnotations win"

# --- toggles
render no-dashboards --set dashboards.enabled=false
rm_assert_eq "$(kinds no-dashboards)" "" "dashboards.enabled=false renders nothing"
render dashboards-custom --set dashboards.label=dashboards --set dashboards.labelValue=ringmesh \
    --set dashboards.namespace=monitoring --set-string 'dashboards.annotations.grafana_folder=Service mesh'
expect dashboards-custom "[.[] | select(.kind == \"ConfigMap\" and (.metadata.name | test(\"dashboard\"))) | [.metadata.namespace, .metadata.labels.dashboards, (.metadata.labels.grafana_dashboard // \"none\"), .metadata.annotations.grafana_folder] | join(\",\")] | unique | join(\" \")" \
    "monitoring,ringmesh,none,Service mesh" "the label, its value, the namespace and annotations are the values'"
rm_log "ok: dashboards.enabled, label, labelValue, namespace and annotations"

render alerts-configmap --set alerts.configMap.enabled=true --set alerts.configMap.namespace=monitoring \
    --set alerts.configMap.labels.prometheus=main
rm_assert_eq "$(kinds alerts-configmap)" \
    "ConfigMap/ringmesh-alerts@monitoring ConfigMap/ringmesh-mesh-dashboard@ringmesh-system ConfigMap/ringmesh-workload-dashboard@ringmesh-system" \
    "alerts.configMap.enabled: the rules ConfigMap"
expect alerts-configmap "$(obj ConfigMap ringmesh-alerts) | .metadata.labels.prometheus" main "its extra labels"
jq -j "$(obj ConfigMap ringmesh-alerts) | .data[\"alerts.yaml\"]" "$dir/alerts-configmap.json" >"$dir/cm-alerts.yaml"
cmp -s "$dir/cm-alerts.yaml" "$alerts" || rm_fail "alerts-configmap: alerts.yaml is not files/alerts.yaml as it is"
rm_log "ok: alerts.configMap: ringmesh-alerts carries files/alerts.yaml unchanged"

render operator --set prometheusRule.enabled=true --set prometheusRule.labels.release=kube-prometheus-stack \
    --set alerts.configMap.enabled=true --set serviceMonitor.enabled=true --set serviceMonitor.interval=15s \
    --set serviceMonitor.labels.release=kube-prometheus-stack --set serviceMonitor.namespace=monitoring
rm_assert_eq "$(kinds operator)" \
    "ConfigMap/ringmesh-mesh-dashboard@ringmesh-system ConfigMap/ringmesh-workload-dashboard@ringmesh-system PodMonitor/ringmesh-proxy@monitoring PrometheusRule/ringmesh@ringmesh-system ServiceMonitor/ringmesh-control@monitoring" \
    "operator: PrometheusRule, ServiceMonitor, PodMonitor, and no rules ConfigMap beside the PrometheusRule"
expect operator "[.[] | select(.kind | test(\"^(PrometheusRule|ServiceMonitor|PodMonitor)$\")) | .metadata.labels.release] | unique | join(\" \")" \
    kube-prometheus-stack "the Operator's selector labels"
expect operator "$(obj ServiceMonitor ringmesh-control) | .spec | [(.namespaceSelector.matchNames | join(\",\")), .selector.matchLabels[\"app.kubernetes.io/component\"], .endpoints[0].port, .endpoints[0].path, .endpoints[0].interval, (.endpoints[0].relabelings[] | select(.targetLabel == \"job\") | .replacement)] | join(\" \")" \
    "ringmesh-system control http-metrics /metrics 15s ringmesh-control" "ServiceMonitor: the control plane's Service, job ringmesh-control"
expect operator "$(obj PodMonitor ringmesh-proxy) | .spec | [(.namespaceSelector.any | tostring), .podMetricsEndpoints[0].port, .podMetricsEndpoints[0].path, (.podMetricsEndpoints[0].relabelings[] | select(.targetLabel == \"job\") | .replacement)] | join(\" \")" \
    "true ringmesh-admin /metrics ringmesh-proxy" "PodMonitor: every sidecar's admin port, job ringmesh-proxy"
# the sidecar's port name the PodMonitor selects is the one the injector gives the proxy container
grep -q '"ringmesh-admin"' "$RM_SOURCE_DIR/control/inject/inject.c" ||
    rm_fail "the injector's proxy container has no port named ringmesh-admin (the PodMonitor's port)"

# the PrometheusRule's groups are the file's, and pass promtool's checks and the same unit tests
q operator "{groups: ($(obj PrometheusRule ringmesh) | .spec.groups)}" >"$dir/prometheusrule-rules.yaml"
out=$(promtool check rules "$dir/prometheusrule-rules.yaml" 2>&1) || rm_fail "promtool check rules (PrometheusRule): $out"
cmp -s <(jq -S .groups "$dir/prometheusrule-rules.yaml") <(yaml2json "$alerts" | jq -S '.[0].groups') ||
    rm_fail "the PrometheusRule's groups are not those of files/alerts.yaml"
mkdir -p "$dir/alert-tests"
for t in "$RM_SOURCE_DIR"/tests/alerts/*.test.yaml; do
    sed "s#\.\./\.\./charts/ringmesh/files/alerts\.yaml#$dir/prometheusrule-rules.yaml#" "$t" >"$dir/alert-tests/$(basename "$t")"
    grep -q "$dir/prometheusrule-rules.yaml" "$dir/alert-tests/$(basename "$t")" || rm_fail "$t: no rule_files to point at"
    out=$(promtool test rules "$dir/alert-tests/$(basename "$t")" 2>&1) ||
        rm_fail "promtool test rules $(basename "$t") on the PrometheusRule's groups: $out"
done
rm_log "ok: operator: the PrometheusRule holds files/alerts.yaml's groups; promtool check rules and test rules pass on them"

render runbooks --set prometheusRule.enabled=true --set alerts.runbookBaseURL=https://runbooks.example/ringmesh/runbooks.md
expect runbooks "[$(obj PrometheusRule ringmesh) | .spec.groups[].rules[].annotations.runbook_url | test(\"^https://runbooks.example/ringmesh/runbooks.md#ringmesh[a-z]+$\")] | unique | join(\" \")" \
    true "alerts.runbookBaseURL rewrites every runbook_url"
rm_log "ok: alerts.runbookBaseURL"

# --- values.schema.json refuses bad values, naming them
bad() { # VALUE NAMED: VALUE is refused with a message containing NAMED
    if out=$(helm template ringmesh "$chart" --set "$1" 2>&1); then rm_fail "$1 was accepted"; fi
    grep -qF "$2" <<<"$out" || rm_fail "$1: the error does not name the value ($2): $out"
}
bad 'serviceMonitor.interval=soon' "/serviceMonitor/interval"
bad 'dashboards.labelValue=not a label' "/dashboards/labelValue"
bad 'alerts.runbookBaseURL=runbooks.md#x' "/alerts/runbookBaseURL"
bad 'prometheusRule.unknown=1' "'/prometheusRule': additional properties 'unknown'"
rm_log "ok: values.schema.json refuses bad observability values"

# --- the dashboards
out=$(python3 "$RM_SOURCE_DIR/scripts/gen-dashboards.py" --check 2>&1) || rm_fail "$out"
for d in "$chart"/dashboards/*.json; do
    b=$(basename "$d" .json)
    jq -e '.schemaVersion >= 39 and (.uid | length) > 0 and (.templating.list[0] | .name == "datasource" and
        .type == "datasource" and .query == "prometheus")' "$d" >/dev/null ||
        rm_fail "$b: not a current Grafana dashboard with a \${datasource} variable of type prometheus first"
    # every panel and every query goes through the ${datasource} variable
    jq -e '[.panels[] | select(.type != "row") | .datasource.uid, (.targets[].datasource.uid)] | all(. == "${datasource}")' \
        "$d" >/dev/null || rm_fail "$b: a panel or query does not use the \${datasource} variable"
    jq -e '[.templating.list[] | select(.type == "query") | .query.query | test("^label_values\\(")] | all' "$d" \
        >/dev/null || rm_fail "$b: a template variable is not a label_values() query"
done
# every query and every variable's selector, template variables given values, as recording rules promtool checks
exprs() { # prints one JSON string per line: every panel query, then every label_values() selector
    jq -c '.panels[] | .targets[]?.expr' "$chart"/dashboards/*.json
    jq -c '.templating.list[] | select(.type == "query") | .query.query | capture("^label_values\\((?<s>.*), *[a-z_]+\\)$").s' \
        "$chart"/dashboards/*.json
}
rules_of() { # FILE: a rules file with one recording rule per line of FILE (a JSON string)
    printf 'groups:\n  - name: dashboards\n    rules:\n'
    jq -r --slurp 'to_entries[] | "      - record: dashboard:query_\(.key)\n        expr: \(.value |
        gsub("\\$__rate_interval"; "5m") | gsub("\\$namespace|\\$workload"; ".*") | tojson)"' "$1"
}
exprs >"$dir/exprs.jsonl"
n=$(wc -l <"$dir/exprs.jsonl")
[ "$n" -ge 30 ] || rm_fail "only $n dashboard queries found"
! grep -q 'istio_' "$dir/exprs.jsonl" || rm_fail "a dashboard query uses an istio_ name (they use ringmesh_)"
rules_of "$dir/exprs.jsonl" >"$dir/dashboard-rules.yaml"
out=$(promtool check rules "$dir/dashboard-rules.yaml" 2>&1) || rm_fail "a dashboard query does not parse: $out"
grep -q "SUCCESS: $n rules found" <<<"$out" || rm_fail "promtool did not check every query ($n): $out"
# the check sees a query that does not parse
{
    cat "$dir/exprs.jsonl"
    echo '"sum(rate(ringmesh_requests_total[5m]) by"'
} >"$dir/broken.jsonl"
rules_of "$dir/broken.jsonl" >"$dir/broken-rules.yaml"
if promtool check rules "$dir/broken-rules.yaml" >/dev/null 2>&1; then
    rm_fail "promtool accepted a query that does not parse: the check proves nothing"
fi
rm_log "ok: the dashboards are gen-dashboards.py's, use \${datasource}, and their $n queries and selectors parse"
rm_finish
