#!/usr/bin/env bash
#
# ringmesh-control with --attestation token-review: each Sign credential is checked by the Kubernetes TokenReview
# API. The API is a stand-in (tests/e2e/tools/fake_kube_api.py) answering with recorded TokenReview responses
# (tests/data/tokenreview/); the gRPC client is python3-grpcio. An authenticated token gets the SVID of the
# reviewed service account; an expired one is refused with the API's reason (and counted on /metrics as
# token_review_failed); and the control plane presented its own bearer token and asked for the ringmesh audience.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PY=/usr/bin/python3
rm_require_cmds protoc
[ -x "$PY" ] && "$PY" -c 'import grpc, google.protobuf' 2>/dev/null ||
    rm_skip "Debian's python3-grpcio / python3-protobuf are not installed (scripts/bootstrap.sh installs them)"
rm_setup_no_netns
rm_control_init

K=$RM_TMP/kube
mkdir -p "$K"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$K/ca.key" -out "$K/ca.pem" -days 1 \
    -subj /CN=kube-ca -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$K/api.key" -out "$K/api.csr" \
    -subj /CN=kube-apiserver 2>/dev/null
openssl x509 -req -in "$K/api.csr" -CA "$K/ca.pem" -CAkey "$K/ca.key" -CAcreateserial -days 1 -out "$K/api.pem" \
    -extfile <(printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n') 2>/dev/null
printf 'control-token-a\n' >"$K/token"
rm_bg kube-api - "$RM_TMP/logs/kube-api.log" "$PY" "$RM_SOURCE_DIR/tests/e2e/tools/fake_kube_api.py" \
    --cert "$K/api.pem" --key "$K/api.key" --table "$RM_SOURCE_DIR/tests/data/tokenreview/table.json" \
    --port-file "$K/port" --request-log "$K/requests.jsonl"
rm_wait_file "$K/port" kube-api
KUBE_PORT=$(cat "$K/port")

PORT=$((20000 + $$ % 12000)) # below the kernel's ephemeral ports (32768-), which a client's connection may hold
ADDR=127.0.0.1:$PORT
ADMIN=127.0.0.1:$((PORT + 1))
rm_bg control-tr - "$RM_TMP/logs/control-tr.log" "$RM_CONTROL_BIN" --listen "$ADDR" --admin-listen "$ADMIN" \
    --config-dir "$RM_TMP/control/mesh" --state-dir "$RM_TMP/control/state" --attestation token-review \
    --kube-api "https://127.0.0.1:$KUBE_PORT" --kube-ca-file "$K/ca.pem" --kube-token-file "$K/token"
rm_wait_log "$RM_TMP/logs/control-tr.log" '.event == "control_started" and .attestation == "token-review"' 15 \
    >/dev/null || rm_fail "ringmesh-control with token-review did not start: $(cat "$RM_TMP/logs/control-tr.log"*)"
CLOG=$RM_TMP/logs/control-tr.log
BUNDLE=$RM_TMP/control/state/trust-bundle.pem

PYOUT=$RM_TMP/py
mkdir -p "$PYOUT"
protoc --proto_path="$RM_SOURCE_DIR/proto" --python_out="$PYOUT" ringmesh/v1/identity.proto ringmesh/v1/route.proto ringmesh/v1/discovery.proto
touch "$PYOUT/ringmesh/__init__.py" "$PYOUT/ringmesh/v1/__init__.py"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$K/key.pem" 2>/dev/null
openssl req -new -key "$K/key.pem" -subj /CN=x -out "$K/csr.pem" 2>/dev/null
token_for() { # token_for RECORDING: the token the table maps to RECORDING
    jq -r --arg r "$1" '.reviews | to_entries[] | select(.value == $r) | .key' \
        "$RM_SOURCE_DIR/tests/data/tokenreview/table.json"
}
token_for authenticated.json >"$K/good"
token_for unauthenticated-expired.json >"$K/expired"

case_authenticated() {
    local line
    line=$("$PY" "$RM_SOURCE_DIR/tests/e2e/tools/grpc_interop.py" "$PYOUT" sign "$ADDR" "$BUNDLE" "$K/good" \
        "$K/csr.pem" "$K/svid")
    rm_assert_eq "$(rm_json "$line" .spiffe_id)" "spiffe://cluster.local/ns/shop/sa/orders" \
        "the SVID names the service account the review returned"
    rm_expect_log "$CLOG" '.event == "svid_issued" and .attestor == "token-review" and (.pod | length > 0)' \
        "issued with the pod the review named"
    local req
    req=$(head -n 1 "$K/requests.jsonl")
    rm_assert_eq "$(rm_json "$req" .authorization)" "Bearer control-token-a" "the control plane's own bearer token"
    rm_assert_eq "$(rm_json "$req" '.body | fromjson | .spec.audiences | join(",")')" ringmesh "the audience asked for"
}

case_expired() {
    local line
    line=$("$PY" "$RM_SOURCE_DIR/tests/e2e/tools/grpc_interop.py" "$PYOUT" sign "$ADDR" "$BUNDLE" "$K/expired" \
        "$K/csr.pem" "$K/expired-svid")
    rm_assert_eq "$(rm_json "$line" .code)" UNAUTHENTICATED "an expired token gets no SVID"
    rm_expect_log "$CLOG" '.event == "sign_refused" and (.reason | test("expired"))' "the API's reason is logged"
    rm_expect_no_log "$CLOG" "(tostring | contains(\"$(cat "$K/expired" | cut -d. -f3)\"))" \
        "the token's signature never reaches the log"
    rm_expect_log "$CLOG" '.event == "sign_refused" and .cause == "token_review_failed"' "the cause is logged"
    rm_assert_eq "$(curl -sf "http://$ADMIN/metrics" |
        awk '$1 == "ringmesh_control_svid_refusals_total{reason=\"token_review_failed\"}" {print $2}')" 1 \
        "/metrics counts the refusal under token_review_failed"
}

rm_case "an authenticated review gives an SVID" case_authenticated
rm_case "an unauthenticated review is refused with its reason" case_expired
rm_finish
