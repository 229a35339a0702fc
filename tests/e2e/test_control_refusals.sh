#!/usr/bin/env bash
#
# What a proxy does when the control plane refuses it. Pod "forged" holds a token signed by a key the control
# plane does not trust: it gets no SVID, says why (the control plane's own reason, read from the gRPC trailers),
# stays not ready, and refuses mTLS connections until it has one. Pod "liar" has a valid token but claims another
# namespace on the discovery stream: it gets its SVID, but the stream is refused with PERMISSION_DENIED and the
# reason, and it stays not ready. Neither retries in a tight loop.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup
rm_control_init

rm_pod_create forged
rm_pod_create liar
rm_control_start main node 0.0.0.0:15012
CLOG=$RM_TMP/logs/control-main.log

# forged: its token is re-minted with another key after rm_pod_config wrote the good one
rm_pod_config forged "control=$(rm_pod_gateway forged):15012" ns=shop sa=frontend
"$RM_CTL_BIN" token keygen --key "$RM_TMP/other-key.pem" --jwks "$RM_TMP/other.jwks" --kid e2e >/dev/null 2>&1
"$RM_CTL_BIN" token mint --key "$RM_TMP/other-key.pem" --kid e2e --namespace shop --service-account frontend \
    >"$RM_TMP/pods/forged/token" 2>/dev/null
rm_pod_mesh forged "control=$(rm_pod_gateway forged):15012" ns=shop sa=frontend
# rm_pod_mesh wrote a good token again: put the forged one back and restart
"$RM_CTL_BIN" token mint --key "$RM_TMP/other-key.pem" --kid e2e --namespace shop --service-account frontend \
    >"$RM_TMP/pods/forged/token" 2>/dev/null
rm_stop proxy-forged
rm -rf "$RM_TMP/pods/forged/state"/*
rm_proxy_start forged

# liar: node namespace "kube-system" while its token (and so its SVID) says "shop"
rm_pod_config liar "control=$(rm_pod_gateway liar):15012" ns=shop sa=orders
sed -i 's/namespace: shop, serviceAccount: orders/namespace: kube-system, serviceAccount: orders/' \
    "$RM_TMP/pods/liar/proxy.yaml"
rm__capture_rules liar
rm_proxy_start liar

FLOG=$(rm_proxy_log forged)
LLOG=$(rm_proxy_log liar)
rm_expect_log "$FLOG" '.event == "svid_request_failed"' "the forged pod's request fails" 15
rm_expect_log "$LLOG" '.event == "control_plane_unreachable" and .grpc_status == 7' "the liar's stream is refused" 15
sleep 3

case_forged() {
    rm_expect_log "$FLOG" '.event == "svid_request_failed" and (.reason | test("grpc-status 16"))
        and (.reason | test("signature"))' "the proxy logs UNAUTHENTICATED with the control plane's reason"
    rm_expect_log "$CLOG" '.event == "sign_refused"' "the control plane logs the refusal"
    rm_assert_eq "$(rm_exec forged curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:15021/healthz/ready)" 503 \
        "the forged pod is not ready"
    local n
    n=$(rm_log_count "$FLOG" '.event == "svid_request_failed"')
    [ "$n" -le 5 ] || rm_fail "svid_request_failed logged $n times in a few seconds"
    rm_log "ok: $n failure lines (1st, 2nd, 4th... failure only)"
}

case_liar() {
    rm_expect_log "$LLOG" '.event == "svid_issued" and .spiffe_id == "spiffe://cluster.local/ns/shop/sa/orders"' \
        "the liar got the SVID of its token"
    rm_expect_log "$LLOG" '.event == "control_plane_unreachable" and (.details | test("kube-system"))' \
        "the refusal's reason reaches the proxy's log"
    rm_expect_log "$CLOG" '.event == "stream_refused" and .grpcStatus == 7' "the control plane logs it"
    rm_assert_eq "$(rm_exec liar curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:15021/healthz/ready)" 503 \
        "the liar is not ready (no configuration)"
    rm_assert_eq "$(rm_log_count "$LLOG" '.event == "control_plane_unreachable"')" 1 "the refusal is logged once"
}

rm_case "a forged token gets no SVID" case_forged
rm_case "a node that lies about its namespace gets no configuration" case_liar
rm_finish
