#!/usr/bin/env bash
# Policies and the mesh's trust domain (Istio's trust-domain migration): a principal naming cluster.local stands
# for the mesh's own trust domain, and MeshConfig trustDomainAliases names the trust domains the mesh was known as,
# so policies written for them keep matching. Every decision is checked twice: by a real connection through the
# namespace mesh (the orders proxy's decision log), and by `ringmeshctl policy check` given the same trust domain
# and aliases.
#
# 1. A control plane for trust domain example.org (its CA signs spiffe://example.org/... SVIDs); orders (ns shop)
#    serves an echo on 7070, clients web (ns web, sa frontend) and evil (ns evil, sa attacker) have sidecars.
#    - ALLOW principals [cluster.local/ns/web/sa/frontend]: web is allowed, evil is not;
#    - ALLOW principals [old.example/ns/web/sa/frontend] with trustDomainAliases [old.example]: web is allowed;
#    - the same without the alias (a pushed MeshConfig change): web is denied.
# 2. A proxy without a control plane (SVIDs from a CA for example.org, trustDomain: example.org,
#    authorization.trustDomainAliases [old.example], a bundle with the old trust domain's CA too) applies the same
#    rule to its policies from files, and accepts peers whose SVIDs are still from old.example: a client holding
#    spiffe://old.example/ns/web/sa/frontend (a plain TLS client with the mesh ALPN, from a pod without a sidecar) is
#    allowed by a policy written for either name, another old.example identity is denied by policy, and an SVID of a
#    trust domain that is not an alias is refused at the handshake.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_require_cmds jq
rm_setup
RM_TRUST_DOMAIN=example.org
TD=$RM_TRUST_DOMAIN
RM_DEFAULT_ACTION=DENY rm_control_init

MESH=$RM_TMP/control/mesh
VIP=198.19.0.40
VIP_FILES=198.19.0.41

# mesh_config ALIAS...: writes the MeshConfig (aside, then renamed: the control plane never reads half a file)
mesh_config() {
    local aliases=""
    [ $# -gt 0 ] && aliases="  trustDomainAliases: [$(
        IFS=,
        echo "$*"
    )]"
    cat >"$MESH/.mesh.yaml.new" <<EOF
apiVersion: ringmesh.io/v1alpha1
kind: MeshConfig
metadata: {name: mesh}
spec:
  trustDomain: $TD
$aliases
  mtls: {mode: STRICT}
  svidTTL: 1h
  authorization: {defaultAction: DENY, logAllowed: "true"}
EOF
    mv -f "$MESH/.mesh.yaml.new" "$MESH/mesh.yaml"
}

# allow_policy NAME PRINCIPAL...: an ALLOW policy for orders, one rule per principal
allow_policy() {
    local name=$1 p
    shift
    printf 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: %s, namespace: shop}\n' "$name"
    printf 'spec:\n  selector: {matchLabels: {app: orders}}\n  rules:\n'
    for p in "$@"; do printf '  - from: [{source: {principals: ["%s"]}}]\n' "$p"; done
}

cat >"$MESH/orders.yaml" <<EOF
apiVersion: ringmesh.io/v1alpha1
kind: Service
metadata: {name: orders, namespace: shop}
spec:
  addresses: [$VIP]
  ports: [7070]
  serviceAccounts: [orders]
EOF
mesh_config old.example
allow_policy allow-frontend "cluster.local/ns/web/sa/frontend" >"$MESH/policy.yaml"

for p in orders web evil; do rm_pod_create "$p"; done
rm_service "$VIP:7070" orders:7070
rm_server echo orders 0.0.0.0:7070 echo
rm_control_start main node 0.0.0.0:15012
rm_pod_mesh orders "control=$(rm_pod_gateway orders):15012" ns=shop sa=orders labels=app=orders
rm_pod_mesh web "control=$(rm_pod_gateway web):15012" ns=web sa=frontend labels=app=web
rm_pod_mesh evil "control=$(rm_pod_gateway evil):15012" ns=evil sa=attacker labels=app=evil
for p in orders web evil; do rm_wait_ready "$p"; done
OLOG=$(rm_proxy_log orders)

# policies_taken N0: waits until orders' proxy has accepted more than N0 WorkloadPolicy pushes
policies_taken() {
    local deadline=$(($(rm_now_ms) + 15000))
    until [ "$(rm_log_count "$OLOG" '.event == "config_accepted" and .type == "workload_policy"')" -gt "$1" ]; do
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "orders' proxy took no new policies within 15 s"
        sleep 0.05
    done
}
accepted() { rm_log_count "$OLOG" '.event == "config_accepted" and .type == "workload_policy"'; }

# connect NAME CLIENT ADDR LOG EXPECT DECIDER: one connection; EXPECT allow|deny; DECIDER "ns/name#rule" or
# "no-allow-match". Checks the connection and the decision the server's proxy logged (decision, policy, rule, the
# client's principal).
connect() {
    local name=$1 client=$2 addr=$3 log=$4 expect=$5 decider=$6 principal=$7 n0 line deadline
    n0=$(rm_log_count "$log" '.event == "authz"')
    rm_client "$name" "$client" --timeout 8000 --connect "$addr" "send:hello $name" shutdown readeof || true
    if [ "$expect" = allow ]; then
        rm_assert_eq "$RM_RC" 0 "$name: client exit"
        rm_assert_content "$(rm_client_out "$name")" "hello $name" "$name: the echo came back"
    else
        [ "$RM_RC" != 0 ] || [ ! -s "$(rm_client_out "$name")" ] || rm_fail "$name: a denied connection got an echo"
    fi
    deadline=$(($(rm_now_ms) + 5000))
    until [ "$(rm_log_count "$log" '.event == "authz"')" -gt "$n0" ]; do
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "$name: no decision logged"
        sleep 0.05
    done
    line=$(rm_log_select "$log" '.event == "authz"' | tail -n 1)
    rm_assert_eq "$(rm_json "$line" .decision)" "$expect" "$name: logged decision"
    rm_assert_eq "$(rm_json "$line" .source_principal)" "$principal" "$name: logged principal"
    if [ "$decider" = no-allow-match ]; then
        rm_assert_eq "$(rm_json "$line" .reason)" "no ALLOW policy matched" "$name: reason"
    else
        rm_assert_eq "$(rm_json "$line" .policy)" "${decider%#*}" "$name: deciding policy"
        rm_assert_eq "$(rm_json "$line" .rule)" "${decider#*#}" "$name: deciding rule"
    fi
}

# check NAME DIR EXPECT DECIDER PRINCIPAL [policy check args...]: the same decision from `ringmeshctl policy check`
check() {
    local name=$1 dir=$2 expect=$3 decider=$4 principal=$5 out rc=0
    shift 5
    out=$("$RM_CTL_BIN" policy check -f "$dir" --to-namespace shop --to-labels app=orders --port 7070 \
        --from "$principal" -o json "$@" 2>&1) || rc=$?
    rm_assert_eq "$rc" "$([ "$expect" = allow ] && echo 0 || echo 3)" "$name (policy check): exit status ($out)"
    if [ "$decider" = no-allow-match ]; then
        rm_assert_eq "$(rm_json "$out" .reason)" "no ALLOW policy matched" "$name (policy check): reason"
    else
        rm_assert_eq "$(rm_json "$out" .policy)" "${decider%#*}" "$name (policy check): deciding policy"
        rm_assert_eq "$(rm_json "$out" .rule)" "${decider#*#}" "$name (policy check): deciding rule"
    fi
}

CHECK_DIR=$RM_TMP/check
mkdir -p "$CHECK_DIR"
WEB="spiffe://$TD/ns/web/sa/frontend"
EVIL="spiffe://$TD/ns/evil/sa/attacker"

# --- 1a. cluster.local in a policy is the mesh's trust domain
allow_policy allow-frontend "cluster.local/ns/web/sa/frontend" >"$CHECK_DIR/policy.yaml"
connect cl-web web "$VIP:7070" "$OLOG" allow "shop/allow-frontend#0" "$WEB"
connect cl-evil evil "$VIP:7070" "$OLOG" deny no-allow-match "$EVIL"
check cl-web "$CHECK_DIR" allow "shop/allow-frontend#0" "$WEB" --trust-domain "$TD"
check cl-evil "$CHECK_DIR" deny no-allow-match "$EVIL" --trust-domain "$TD"
# without the trust domain, policy check reads cluster.local as itself: this peer is another workload
check cl-web-default-td "$CHECK_DIR" deny no-allow-match "$WEB"
check cl-web-as-cluster-local "$CHECK_DIR" allow "shop/allow-frontend#0" "spiffe://cluster.local/ns/web/sa/frontend"

# --- 1b. a policy written for the old trust domain matches through the alias
n0=$(accepted)
allow_policy allow-legacy "old.example/ns/web/sa/frontend" >"$MESH/.policy.yaml.new"
mv -f "$MESH/.policy.yaml.new" "$MESH/policy.yaml"
policies_taken "$n0"
allow_policy allow-legacy "old.example/ns/web/sa/frontend" >"$CHECK_DIR/policy.yaml"
connect alias-web web "$VIP:7070" "$OLOG" allow "shop/allow-legacy#0" "$WEB"
connect alias-evil evil "$VIP:7070" "$OLOG" deny no-allow-match "$EVIL"
check alias-web "$CHECK_DIR" allow "shop/allow-legacy#0" "$WEB" --trust-domain "$TD" --trust-domain-alias old.example
# a peer whose SVID is still from the old trust domain is the same workload
check alias-old-peer "$CHECK_DIR" allow "shop/allow-legacy#0" "spiffe://old.example/ns/web/sa/frontend" \
    --trust-domain "$TD" --trust-domain-alias old.example

# --- 1c. the alias removed from the MeshConfig: the pushed policy no longer matches web
n0=$(accepted)
mesh_config
policies_taken "$n0"
connect no-alias-web web "$VIP:7070" "$OLOG" deny no-allow-match "$WEB"
check no-alias-web "$CHECK_DIR" deny no-allow-match "$WEB" --trust-domain "$TD"

# --- 2. a proxy without a control plane: its own trust domain and authorization.trustDomainAliases
rm_ca_create org "$TD"
rm_ca_create old old.example
rm_svid_issue oldweb old "spiffe://old.example/ns/web/sa/frontend"
rm_svid_issue oldevil old "spiffe://old.example/ns/evil/sa/attacker"
rm_svid_issue stranger old "spiffe://other.example/ns/web/sa/frontend"
rm_svid_issue fserver org "spiffe://$TD/ns/shop/sa/legacy"
rm_svid_issue fweb org "$WEB"
rm_svid_issue fops org "spiffe://$TD/ns/ops/sa/admin"
rm_svid_issue fevil org "$EVIL"
for p in files fweb fops fevil fold; do rm_pod_create "$p"; done
rm_service "$VIP_FILES:7070" files:7070
rm_server files-echo files 0.0.0.0:7070 echo
POLICY_DIR=$RM_TMP/pods/files/policies
mkdir -p "$POLICY_DIR"
allow_policy allow-files "old.example/ns/web/sa/frontend" "cluster.local/ns/ops/sa/admin" >"$POLICY_DIR/policy.yaml"
rm_pod_config files svid=fserver bundle=org,old "td=$TD"
cat >>"$RM_TMP/pods/files/proxy.yaml" <<EOF
authorization:
  policyDir: $POLICY_DIR
  defaultAction: DENY
  logAllowed: "true"
  trustDomainAliases: [old.example]
EOF
chown -R "$RM_PROXY_UID:$RM_PROXY_UID" "$POLICY_DIR"
rm__capture_rules files
rm_proxy_start files
for p in fweb fops fevil; do
    rm_pod_mesh "$p" "svid=$p" bundle=org "td=$TD" "dest=$VIP_FILES:7070=spiffe://$TD/ns/shop/sa/legacy"
done
FLOG=$(rm_proxy_log files)
rm_expect_log "$FLOG" '.event == "policies_loaded"' "the files proxy loaded its policies" 10
connect files-web fweb "$VIP_FILES:7070" "$FLOG" allow "shop/allow-files#0" "$WEB"
connect files-ops fops "$VIP_FILES:7070" "$FLOG" allow "shop/allow-files#1" "spiffe://$TD/ns/ops/sa/admin"
connect files-evil fevil "$VIP_FILES:7070" "$FLOG" deny no-allow-match "$EVIL"

# old_client NAME SVID: from pod fold (no sidecar), mTLS with ALPN ringmesh/1 and the SVID NAME to the files proxy;
# prints what came back ("" when the connection was refused or closed)
old_client() {
    rm_exec fold /usr/bin/python3 - "$VIP_FILES" 7070 "$RM_TMP/pki/$2.pem" "$RM_TMP/pki/$2.key" \
        "$RM_TMP/pki/ca-org.pem" "hello $1" <<'PY'
import socket, ssl, sys
addr, port, cert, key, ca, msg = sys.argv[1:7]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False  # an SVID names a SPIFFE ID, not a host
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.load_verify_locations(ca)
ctx.load_cert_chain(cert, key)
ctx.set_alpn_protocols(["ringmesh/1"])
got = b""
try:
    with ctx.wrap_socket(socket.create_connection((addr, int(port)), timeout=8)) as t:
        t.sendall(msg.encode())
        while len(got) < len(msg):
            d = t.recv(4096)
            if not d:
                break
            got += d
except (OSError, ssl.SSLError):
    pass
print(got.decode(errors="replace"))
PY
}

# connect_old NAME SVID EXPECT DECIDER PRINCIPAL: old_client, then the decision the files proxy logged
connect_old() {
    local name=$1 n0 out line deadline
    n0=$(rm_log_count "$FLOG" '.event == "authz"')
    out=$(old_client "$name" "$2")
    if [ "$3" = allow ]; then
        rm_assert_eq "$out" "hello $name" "$name: the echo came back"
    else
        rm_assert_eq "$out" "" "$name: nothing came back"
    fi
    deadline=$(($(rm_now_ms) + 5000))
    until [ "$(rm_log_count "$FLOG" '.event == "authz"')" -gt "$n0" ]; do
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "$name: no decision logged"
        sleep 0.05
    done
    line=$(rm_log_select "$FLOG" '.event == "authz"' | tail -n 1)
    rm_assert_eq "$(rm_json "$line" .decision)" "$3" "$name: logged decision"
    rm_assert_eq "$(rm_json "$line" .source_principal)" "$5" "$name: logged principal"
    if [ "$4" = no-allow-match ]; then
        rm_assert_eq "$(rm_json "$line" .reason)" "no ALLOW policy matched" "$name: reason"
    else
        rm_assert_eq "$(rm_json "$line" .policy)" "${4%#*}" "$name: deciding policy"
        rm_assert_eq "$(rm_json "$line" .rule)" "${4#*#}" "$name: deciding rule"
    fi
}

connect_old old-peer oldweb allow "shop/allow-files#0" "spiffe://old.example/ns/web/sa/frontend"
connect_old old-evil oldevil deny no-allow-match "spiffe://old.example/ns/evil/sa/attacker"
check old-peer "$POLICY_DIR" allow "shop/allow-files#0" "spiffe://old.example/ns/web/sa/frontend" \
    --trust-domain "$TD" --trust-domain-alias old.example
# a trust domain that is not an alias: refused at the handshake, whatever its CA
n0=$(rm_log_count "$FLOG" '.event == "authz"')
rm_assert_eq "$(old_client stranger stranger)" "" "stranger: nothing came back"
rm_expect_log "$FLOG" '.event == "peer_rejected" and .peer_id == "spiffe://other.example/ns/web/sa/frontend"' \
    "the files proxy refused the SVID of another trust domain" 5
rm_assert_eq "$(rm_log_count "$FLOG" '.event == "authz"')" "$n0" "stranger: no authorization decision was needed"
rm_finish
