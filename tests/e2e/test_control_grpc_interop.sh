#!/usr/bin/env bash
#
# ringmesh-control speaks standard gRPC: a client that is not ours (Debian's python3-grpcio, with messages that
# protoc generates from proto/) gets an SVID from Identity.Sign for a CSR made by the openssl CLI, then opens
# Discovery.Stream with mTLS using that SVID and receives the three resource types, ACKs and NACKs them; the
# control plane logs the NACK. Refusals: a token signed by another key, a CSR whose signature does not verify, a
# Discovery stream without a client certificate, a node that claims another namespace than its SVID, an unknown
# method. Its /metrics (checked by
# Debian's promtool) counts each of these: the refusal by cause, the NACK, the push-to-answer latency of every
# answered push, a connected sidecar, the configuration directory's parse and validation errors, and carries the
# CA's notAfter as openssl reads it.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Debian's interpreter, where python3-grpcio lives (not one earlier in PATH)
PY=/usr/bin/python3
rm_require_cmds protoc promtool openssl jq curl
[ -x "$PY" ] && "$PY" -c 'import grpc, google.protobuf' 2>/dev/null ||
    rm_skip "Debian's python3-grpcio / python3-protobuf are not installed (scripts/bootstrap.sh installs them)"
rm_setup_no_netns
rm_control_init

rm_mesh_service services.yaml orders shop "198.19.0.10" 8080 orders

PORT=$((20000 + $$ % 12000)) # below the kernel's ephemeral ports (32768-), which a client's connection may hold
ADDR=127.0.0.1:$PORT
ADMIN=127.0.0.1:$((PORT + 1))
rm_control_start main - "$ADDR" --admin-listen "$ADMIN"
CLOG=$RM_TMP/logs/control-main.log
BUNDLE=$RM_TMP/control/state/trust-bundle.pem
[ -s "$BUNDLE" ] || rm_fail "the control plane did not publish its trust bundle"

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
# The CSR asks for another identity: the control plane must ignore it and name the attested one.
openssl req -new -key "$W/key.pem" -subj "/CN=not-me" -addext "subjectAltName=URI:spiffe://cluster.local/ns/kube-system/sa/admin" \
    -out "$W/csr.pem" 2>/dev/null
rm_token shop orders "$W/token" --pod orders-7d9f --pod-uid 3f1c2a4e-0000-4000-8000-000000000001 --audience ringmesh

case_sign() {
    local line
    line=$(interop sign "$ADDR" "$BUNDLE" "$W/token" "$W/csr.pem" "$W/svid" 600)
    rm_log "sign: $line"
    rm_assert_eq "$(rm_json "$line" .ok)" true "Identity.Sign succeeds for a valid token"
    rm_assert_eq "$(rm_json "$line" .spiffe_id)" "spiffe://cluster.local/ns/shop/sa/orders" \
        "the SVID names the attested identity, not the CSR's"
    rm_assert_eq "$(($(rm_json "$line" .not_after) - $(rm_json "$line" .not_before)))" 900 \
        "the requested lifetime (600 s from now, NotBefore backdated 300 s)"
    local san
    san=$(openssl x509 -in "$W/svid-chain.pem" -noout -ext subjectAltName | tail -n +2 | tr -d ' ')
    rm_assert_eq "$san" "URI:spiffe://cluster.local/ns/shop/sa/orders" "the certificate's only SAN"
    rm_assert_eq "$(openssl x509 -in "$W/svid-chain.pem" -noout -pubkey | sha256sum)" \
        "$(openssl pkey -in "$W/key.pem" -pubout | sha256sum)" "the SVID certifies the CSR's key"
    openssl verify -CAfile "$W/svid-bundle.pem" "$W/svid-chain.pem" >/dev/null || rm_fail "the SVID does not verify"
    rm_expect_log "$CLOG" '.event == "svid_issued" and .spiffeId == "spiffe://cluster.local/ns/shop/sa/orders"
        and .pod == "orders-7d9f"' "the control plane logs the issuance"
}

case_sign_refused() {
    local line
    "$RM_CTL_BIN" token keygen --key "$W/other-key.pem" --jwks "$W/other.jwks" --kid e2e >/dev/null 2>&1
    "$RM_CTL_BIN" token mint --key "$W/other-key.pem" --kid e2e --namespace shop --service-account orders \
        >"$W/forged" 2>/dev/null
    line=$(interop sign "$ADDR" "$BUNDLE" "$W/forged" "$W/csr.pem" "$W/forged-svid")
    rm_assert_eq "$(rm_json "$line" .ok)" false "a token signed by another key gets no SVID"
    rm_assert_eq "$(rm_json "$line" .code)" UNAUTHENTICATED "grpc-status for a forged token"
    rm_expect_log "$CLOG" '.event == "sign_refused" and (.reason | test("signature"))' \
        "the refusal is logged with its reason"
    [ ! -e "$W/forged-svid-chain.pem" ] || rm_fail "a certificate was written for a forged token"
    # a valid token with a CSR whose signature does not verify (openssl's CSR with one byte of the signature changed)
    openssl req -in "$W/csr.pem" -outform DER -out "$W/csr.der"
    "$PY" -c 'import sys; d = bytearray(open(sys.argv[1], "rb").read()); d[-5] ^= 0x55; open(sys.argv[1], "wb").write(d)' \
        "$W/csr.der"
    openssl base64 -in "$W/csr.der" | sed '1i -----BEGIN CERTIFICATE REQUEST-----' |
        sed '$a -----END CERTIFICATE REQUEST-----' >"$W/bad-csr.pem"
    line=$(interop sign "$ADDR" "$BUNDLE" "$W/token" "$W/bad-csr.pem" "$W/bad-csr-svid")
    rm_assert_eq "$(rm_json "$line" .code)" INVALID_ARGUMENT "a CSR that does not verify is refused"
    rm_expect_log "$CLOG" '.event == "sign_refused" and .cause == "csr_invalid" and (.reason | test("signing request"))
        and .namespace == "shop"' "the CSR refusal is logged with the attested caller and its cause"
}

case_stream() {
    local out
    out=$(interop stream "$ADDR" "$BUNDLE" "$W/svid-chain.pem" "$W/key.pem" shop orders)
    rm_log "stream: $out"
    rm_assert_eq "$(printf '%s\n' "$out" | jq -s 'map(select(.step == "push")) | length')" 3 "three pushes"
    rm_assert_eq "$(printf '%s\n' "$out" | jq -r 'select(.type == "TrustBundle") | .trust_domain')" cluster.local \
        "the trust bundle's domain"
    rm_assert_eq "$(printf '%s\n' "$out" | jq -c 'select(.type == "DestinationMap") | .destinations')" \
        '[{"name":"shop/orders","addresses":["198.19.0.10:8080"],"in_mesh":true,"identities":["spiffe://cluster.local/ns/shop/sa/orders"]}]' \
        "the destination map"
    rm_assert_eq "$(printf '%s\n' "$out" | jq -r 'select(.type == "MeshSettings") | .inbound_mode')" STRICT \
        "the mesh settings"
    rm_assert_eq "$(printf '%s\n' "$out" | jq -r 'select(.step == "stream") | .ok')" true "the stream ends cleanly"
    rm_expect_log "$CLOG" '.event == "config_acked" and .type == "destinations"' "the ACK reaches the control plane"
}

case_nack() {
    local out
    out=$(interop stream "$ADDR" "$BUNDLE" "$W/svid-chain.pem" "$W/key.pem" shop orders nack-destinations)
    rm_expect_log "$CLOG" '.event == "config_nacked" and .type == "destinations"
        and .reason == "interop test rejects this push"' "the NACK is logged with the sidecar's reason"
}

case_stream_refusals() {
    local line
    line=$(interop stream-nocert "$ADDR" "$BUNDLE")
    rm_assert_eq "$(rm_json "$line" .code)" UNAUTHENTICATED "Discovery without a client certificate"
    line=$(interop stream "$ADDR" "$BUNDLE" "$W/svid-chain.pem" "$W/key.pem" kube-system orders | tail -n 1)
    rm_assert_eq "$(rm_json "$line" .code)" PERMISSION_DENIED "a node claiming another namespace than its SVID"
    rm_expect_log "$CLOG" '.event == "stream_refused" and (.reason | test("kube-system"))' \
        "the refusal names the claimed namespace"
    line=$(interop call "$ADDR" "$BUNDLE" /ringmesh.v1.Identity/Nope)
    rm_assert_eq "$(rm_json "$line" .code)" UNIMPLEMENTED "an unknown method"
    rm_expect_log "$CLOG" '.event == "call_refused" and .method == "/ringmesh.v1.Identity/Nope"
        and .grpcStatus == 12 and (.peer | startswith("ipv4:127.0.0.1:"))' "the unknown method is logged with the peer"
}

# metric SERIES: its value on the control plane's /metrics now (name{labels} as the page writes it)
metric() {
    curl -sf "http://$ADMIN/metrics" | awk -v k="$1" '$1 == k {print $2}'
}

# wait_metric SERIES VALUE WHAT: waits (bounded, 10 s) until SERIES has VALUE
wait_metric() {
    local deadline=$(($(rm_now_ms) + 10000)) v
    until v=$(metric "$1") && [ "$v" = "$2" ]; do
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "$3: $1 is '$v', not $2"
        sleep 0.1
    done
    rm_log "ok: $3: $1 $2"
}

# A sidecar that stays connected counts in ringmesh_control_connected_proxies until its stream ends.
case_connected() {
    rm_assert_eq "$(metric ringmesh_control_connected_proxies)" 0 "no sidecar connected before"
    rm_bg held - "$RM_TMP/logs/held.log" "$PY" "$RM_SOURCE_DIR/tests/e2e/tools/grpc_interop.py" "$PYOUT" stream \
        "$ADDR" "$BUNDLE" "$W/svid-chain.pem" "$W/key.pem" shop orders "hold=$W/release"
    wait_metric ringmesh_control_connected_proxies 1 "a connected sidecar is counted"
    rm_assert_eq "$(metric ringmesh_control_discovery_streams)" 1 "its stream is open"
    touch "$W/release"
    rm_wait_exit held 30
    rm_assert_eq "$(jq -r 'select(.step == "stream") | .ok' "$RM_TMP/logs/held.log")" true "the held stream ended cleanly"
    wait_metric ringmesh_control_connected_proxies 0 "a sidecar that left is no longer counted"
}

# A file the configuration directory cannot use counts as a source error of its kind; the last good model stays.
case_source_errors() {
    local dir=$RM_TMP/control/mesh
    rm_assert_eq "$(metric 'ringmesh_control_source_errors_total{source="file",kind="parse"}')" 0 "no parse error yet"
    printf 'apiVersion: ringmesh.io/v1alpha1\nkind: Service\nmetadata: {name: [\n' >"$dir/.broken.tmp"
    mv "$dir/.broken.tmp" "$dir/broken.yaml"
    rm_expect_log "$CLOG" '.event == "config_rejected" and (.file | endswith("broken.yaml"))' "a YAML error is logged"
    wait_metric 'ringmesh_control_source_errors_total{source="file",kind="parse"}' 1 "a YAML error counts as parse"
    rm_mesh_service .broken.tmp broken shop 198.19.0.99 99999 orders
    mv "$dir/.broken.tmp" "$dir/broken.yaml"
    rm_expect_log_nth "$CLOG" '.event == "config_rejected" and (.file | endswith("broken.yaml"))' 2 \
        "an invalid port is logged"
    wait_metric 'ringmesh_control_source_errors_total{source="file",kind="validation"}' 1 \
        "an invalid value counts as validation"
    rm -f "$dir/broken.yaml"
    rm_assert_eq "$(metric 'ringmesh_control_config_objects{kind="Service"}')" 1 "the last good model is served"
}

# /metrics counts what the cases above did; /healthz answers.
case_metrics() {
    local m t acks nacks ca_end
    m=$(curl -sf "http://$ADMIN/metrics") || rm_fail "GET /metrics failed"
    printf '%s\n' "$m" >"$RM_TMP/control-metrics.txt"
    promtool check metrics <"$RM_TMP/control-metrics.txt" || rm_fail "promtool check metrics refuses the page"
    rm_assert_eq "$(grep -c '^# TYPE ringmesh_control_' <<<"$m")" 17 "metric families exposed (no webhook here; jwks_fetch_failures_total included)"
    rm_assert_eq "$(awk '$1 == "ringmesh_control_svids_issued_total" {print $2}' <<<"$m")" 1 "SVIDs issued"
    rm_assert_eq "$(awk '$1 == "ringmesh_control_sign_refused_total" {print $2}' <<<"$m")" 2 "Sign refusals"
    rm_assert_eq "$(awk '$1 == "ringmesh_control_svid_refusals_total{reason=\"token_invalid\"}" {print $2}' <<<"$m")" 1 \
        "the forged token is counted as token_invalid"
    rm_assert_eq "$(awk '$1 == "ringmesh_control_svid_refusals_total{reason=\"csr_invalid\"}" {print $2}' <<<"$m")" 1 \
        "the bad CSR is counted as csr_invalid"
    rm_assert_eq "$(awk '$1 ~ /^ringmesh_control_svid_refusals_total[{]/ {s += $2} END {print s}' <<<"$m")" 2 \
        "and under no other cause"
    rm_assert_eq "$(awk '$1 == "ringmesh_control_nacks_total{type=\"destinations\"}" {print $2}' <<<"$m")" 1 \
        "NACKs of destinations"
    rm_assert_eq "$(awk '$1 == "ringmesh_control_acks_total{type=\"destinations\"}" {print $2}' <<<"$m")" 2 \
        "ACKs of destinations (the plain stream and the held one)"
    for t in trust_bundle destinations mesh_settings; do
        acks=$(awk -v k="ringmesh_control_acks_total{type=\"$t\"}" '$1 == k {print $2}' <<<"$m")
        nacks=$(awk -v k="ringmesh_control_nacks_total{type=\"$t\"}" '$1 == k {print $2}' <<<"$m")
        rm_assert_eq "$(awk -v k="ringmesh_control_push_ack_duration_seconds_count{type=\"$t\"}" '$1 == k {print $2}' \
            <<<"$m")" "$((acks + nacks))" "push-to-answer latencies of $t: one per ACK or NACK"
        rm_assert_eq "$(awk -v k="ringmesh_control_push_ack_duration_seconds_bucket{type=\"$t\",le=\"+Inf\"}" \
            '$1 == k {print $2}' <<<"$m")" "$((acks + nacks))" "the +Inf bucket of $t holds them all"
    done
    awk '$1 == "ringmesh_control_push_ack_duration_seconds_sum{type=\"destinations\"}" {exit !($2 > 0 && $2 < 30)}' \
        <<<"$m" || rm_fail "the push-to-answer time of destinations is not between 0 and 30 s"
    rm_assert_eq "$(awk '$1 == "ringmesh_control_push_ack_duration_seconds_count{type=\"workload_policy\"}" {print $2}' \
        <<<"$m")" 0 "no workload_policy was pushed to this client"
    ca_end=$(date -d "$(openssl x509 -in "$RM_TMP/control/state/ca-cert.pem" -noout -enddate | cut -d= -f2)" +%s)
    rm_assert_eq "$(awk '$1 == "ringmesh_control_ca_expiry_timestamp_seconds" {print $2}' <<<"$m")" "$ca_end" \
        "the CA's expiry is its certificate's notAfter"
    rm_assert_eq "$(grep -c '^ringmesh_control_webhook_cert_expiry' <<<"$m")" 0 "no webhook, no webhook expiry"
    rm_assert_eq "$(awk '$1 == "ringmesh_control_discovery_streams_refused_total" {print $2}' <<<"$m")" 2 \
        "refused streams"
    rm_assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "http://$ADMIN/healthz/ready")" 200 "ready"
    rm_assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "http://$ADMIN/nope")" 404 "unknown path"
    rm_assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$ADMIN/metrics")" 405 "POST refused"
}

rm_case "Identity.Sign from python3-grpcio" case_sign
rm_case "a forged token and a bad CSR are refused" case_sign_refused
rm_case "Discovery.Stream from python3-grpcio" case_stream
rm_case "a NACK is logged" case_nack
rm_case "Discovery refusals" case_stream_refusals
rm_case "a connected sidecar is counted" case_connected
rm_case "source errors are counted by kind" case_source_errors
rm_case "metrics and health" case_metrics
rm_finish
