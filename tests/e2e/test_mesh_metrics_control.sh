#!/usr/bin/env bash
#
# The metrics settings pushed by the control plane. The mesh's MeshConfig says metrics.istioNames: true and a series
# limit of 1; pods a and b get everything from ringmesh-control (MeshSettings fields 20-22). Then:
#   - both proxies name Istio's standard metrics as Istio does (istio_tcp_connections_opened_total, ...) and not
#     ringmesh_*, although their own files say nothing about metrics;
#   - a's connections to the Service's VIP carry destination_service="orders.shop.svc.cluster.local" with its name
#     and namespace, from the destination the control plane pushed;
#   - with one series allowed per metric, a connection to a second Service is a new label set: it is counted in the
#     overflow series and in ringmesh_metrics_series_folded_total{metric="istio_tcp_connections_opened_total"};
#   - promtool check metrics passes on the page.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_require_cmds curl promtool
rm_setup
rm_control_init
cat >>"$RM_TMP/control/mesh/mesh.yaml" <<EOF
  metrics: {istioNames: true, maxSeriesPerMetric: 1}
EOF

VIP=198.19.0.10
VIP2=198.19.0.11
rm_mesh_service orders.yaml orders shop "$VIP" 8080 orders
rm_mesh_service billing.yaml billing shop "$VIP2" 9090 orders

rm_pod_create a
rm_pod_create b
rm_service "$VIP:8080" b:8080
rm_service "$VIP2:9090" b:9090
rm_server echo b 0.0.0.0:8080 echo
rm_server echo2 b 0.0.0.0:9090 echo

rm_control_start main node 0.0.0.0:15012
rm_pod_mesh b "control=$(rm_pod_gateway b):15012" ns=shop sa=orders
rm_pod_mesh a "control=$(rm_pod_gateway a):15012" ns=shop sa=frontend
rm_wait_ready a
rm_wait_ready b

for i in 1 2; do
    rm_client "orders$i" a --connect "$VIP:8080" "send:hello$i" shutdown readeof
    rm_assert_eq "$RM_RC" 0 "connection $i to orders"
done
rm_client billing a --connect "$VIP2:9090" "send:hello" shutdown readeof
rm_assert_eq "$RM_RC" 0 "connection to billing"

# the three connections reported closed on a (bounded wait), then the page
deadline=$(($(rm_now_ms) + 10000))
until rm_exec a curl -s -m 5 http://127.0.0.1:15021/metrics >"$RM_TMP/a.txt" &&
    grep -q '^ringmesh_metrics_series_folded_total{metric="istio_tcp_connections_closed_total"} 1$' "$RM_TMP/a.txt"; do
    [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "a: the connection to billing is not reported closed"
    sleep 0.1
done

case_names() {
    grep -q '^istio_tcp_connections_opened_total{reporter="source",' "$RM_TMP/a.txt" ||
        rm_fail "a: no istio_tcp_connections_opened_total: the pushed istioNames is not in force"
    if grep -q '^ringmesh_tcp_' "$RM_TMP/a.txt"; then rm_fail "a: ringmesh_tcp_* still named so"; fi
    rm_exec b curl -s -m 5 http://127.0.0.1:15021/metrics >"$RM_TMP/b.txt"
    grep -q '^istio_tcp_connections_opened_total{reporter="destination",' "$RM_TMP/b.txt" ||
        rm_fail "b: Istio's names"
    rm_log "ok: both proxies use Istio's names, as the control plane said"
}

case_service_and_fold() {
    local a="$RM_TMP/a.txt"
    grep -q '^istio_tcp_connections_opened_total{reporter="source",.*,destination_principal="spiffe://cluster.local/ns/shop/sa/orders",.*destination_service="orders.shop.svc.cluster.local",destination_service_name="orders",destination_service_namespace="shop",request_protocol="tcp",response_flags="-",connection_security_policy="unknown"} 2$' "$a" ||
        rm_fail "a: the two connections to orders under its Service: $(grep '^istio_tcp_connections_opened_total' "$a")"
    grep -q '^istio_tcp_connections_opened_total{reporter="overflow",.*connection_security_policy="overflow"} 1$' "$a" ||
        rm_fail "a: the connection to billing in the overflow series"
    grep -q '^ringmesh_metrics_series_folded_total{metric="istio_tcp_connections_opened_total"} 1$' "$a" ||
        rm_fail "a: the folded recording counted"
    if grep -q 'billing' "$a"; then rm_fail "a: billing has a series of its own past the limit"; fi
    rm_log "ok: the Service named as Istio does; past the pushed limit of 1 series the next one folds"
}

case_promtool() {
    local out
    out=$(promtool check metrics <"$RM_TMP/a.txt" 2>&1) || rm_fail "promtool check metrics: $out"
    rm_log "ok: promtool check metrics"
}

rm_case "names pushed by the control plane" case_names
rm_case "service labels and the pushed series limit" case_service_and_fold
rm_case "promtool" case_promtool
rm_finish
