#!/usr/bin/env bash
# ringmesh-control's duties towards the cluster, against the stand-in API server with RBAC enforced and the chart's
# own ClusterRole and Role (rendered by the real helm and applied to the stand-in), the control plane running as the
# chart's ServiceAccount:
#   - two replicas started together end with one CA Secret and the same CA: both webhooks' serving certificates
#     verify (openssl s_client) against the one bundle, which is the Secret's ca.crt;
#   - a replica whose read of the Secret misses it (404), and whose create then loses the race (409), uses the
#     Secret the others made;
#   - ringmesh-root-cert appears in every namespace, in a namespace created later, and again after a deletion;
#   - the caBundle of both webhooks of ringmesh-sidecar-injector: patched once the configuration, created late,
#     appears, and again after it was overwritten with an empty one;
#   - a new CA (the Secret deleted, a replica restarted) updates the ConfigMaps and the caBundle;
#   - a user-supplied Secret (chart value ca.existingSecret; RBAC without create): missing, mismatched key, wrong
#     trust domain each refused with the Secret and the key named; a good one used as the mesh's CA;
#   - cert-manager mode (the chart's RBAC without the webhook configuration): the given pair is served, a renewed
#     pair is served after the files change, and the caBundle is left alone; the webhook and CA expiry gauges of
#     /metrics equal the notAfter of the served certificate (following the renewal) and of the CA Secret's.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib_k8s.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib_k8s.sh"
# shellcheck source-path=SCRIPTDIR source=apiserver/lib_apiserver.sh
source "$(dirname "${BASH_SOURCE[0]}")/apiserver/lib_apiserver.sh"
rm_require_cmds jq curl openssl base64
rm_k8s_require_tools
rm_setup_no_netns
rm_control_init

NS=ringmesh-system
SA=system:serviceaccount:$NS:ringmesh-control
SA_TOKEN=sa-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
rm_kube_api_start - --authorize --token "$SA_TOKEN=$SA"
rm_kube_config "$SA_TOKEN" "$RM_TMP/sa.kubeconfig"
D=$RM_TMP/cluster
mkdir -p "$D"

kpost() { rm_kube_api POST "$1" -f -H 'Content-Type: application/json' -d "$2" >/dev/null; }
kdelete() { rm_kube_api DELETE "$1" -f >/dev/null; }
kget() { rm_kube_api GET "$1"; }
yaml2json() { NODE_PATH=$RM_NPM_TOOLS/node_modules node "$RM_SOURCE_DIR/tests/tools/yaml2json.mjs" "$1"; }

# render NAME [helm --set ...]: the chart rendered as a JSON array in $D/NAME.json
render() {
    local name=$1
    shift
    "$RM_HELM" template ringmesh "$RM_SOURCE_DIR/charts/ringmesh" -n "$NS" "$@" >"$D/$name.yaml" ||
        rm_fail "helm template $name failed"
    yaml2json "$D/$name.yaml" >"$D/$name.json"
}
# rbac_apply NAME: replaces the RBAC objects in the stand-in with those of rendering NAME (exactly the chart's)
rbac_apply() {
    local kind path obj
    for kind in ClusterRole ClusterRoleBinding Role RoleBinding; do
        case $kind in
        ClusterRole) path=/apis/rbac.authorization.k8s.io/v1/clusterroles ;;
        ClusterRoleBinding) path=/apis/rbac.authorization.k8s.io/v1/clusterrolebindings ;;
        Role) path=/apis/rbac.authorization.k8s.io/v1/namespaces/$NS/roles ;;
        RoleBinding) path=/apis/rbac.authorization.k8s.io/v1/namespaces/$NS/rolebindings ;;
        esac
        rm_kube_api DELETE "$path/ringmesh-control" >/dev/null
        obj=$(jq -c --arg k "$kind" '[.[] | select(.kind == $k and .metadata.name == "ringmesh-control")] | .[0]' \
            "$D/$1.json")
        [ "$obj" != null ] || rm_fail "$1: no $kind ringmesh-control rendered"
        kpost "$path" "$obj"
    done
}
# wait_until WHAT TIMEOUT_S CMD...: runs CMD until it succeeds (bounded), or fails the test with WHAT
wait_until() {
    local what=$1 deadline
    deadline=$(($(rm_now_ms) + $2 * 1000))
    shift 2
    until "$@"; do
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "$what (waited $(((deadline - $(rm_now_ms)) / -1000 + 0)) s past the bound)"
        sleep 0.1
    done
}

for n in "$NS" shop web; do
    kpost /api/v1/namespaces "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$n\"}}"
done
render default
render existing --set ca.existingSecret=corp-ca
render certmanager --set webhook.certManager.enabled=true --set webhook.certManager.issuerRef.name=ca-issuer
rbac_apply default

BASE=$((20000 + $$ % 12000)) # below the kernel's ephemeral ports (32768-), which a client's connection may hold
# control_start NAME INDEX [ARG...]: a replica as the chart's ServiceAccount (ports BASE+10*INDEX...), in the
# background; does not wait
control_start() {
    local name=$1 p=$((BASE + 10 * $2))
    shift 2
    rm_bg "control-$name" - "$RM_TMP/logs/control-$name.log" "$RM_CONTROL_BIN" --source kubernetes \
        --kubeconfig "$RM_TMP/sa.kubeconfig" --mesh-config "$RM_TMP/control/mesh/mesh.yaml" --kube-timeout 5s \
        --namespace "$NS" --listen "127.0.0.1:$p" --admin-listen "127.0.0.1:$((p + 1))" \
        --webhook-listen "127.0.0.1:$((p + 2))" --state-dir "$RM_TMP/control/state-$name" \
        --jwks "$RM_TMP/control/jwks.json" --cluster-resync 1s "$@"
}
control_wait() {
    rm_wait_log "$RM_TMP/logs/control-$1.log" '.event == "control_started"' 60 >/dev/null || {
        cat "$RM_TMP/logs/control-$1.log" "$RM_TMP/logs/control-$1.log.stderr" >&2 || true
        rm_fail "ringmesh-control $1 did not start"
    }
}
webhook_port() { echo $((BASE + 10 * $1 + 2)); }
# served_fp PORT CAFILE: the SHA-256 fingerprint of the certificate served on PORT, verified against CAFILE
served_fp() {
    local out
    out=$(openssl s_client -connect "127.0.0.1:$1" -CAfile "$2" -verify_return_error </dev/null 2>/dev/null) ||
        return 1
    openssl x509 -noout -fingerprint -sha256 <<<"$out"
}
secret_key() { kget "/api/v1/namespaces/$NS/secrets/$1" | jq -r --arg k "$2" '.data[$k]' | base64 -d; }
MWC=/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/ringmesh-sidecar-injector
# cm_bundle NS: the root-cert ConfigMap's bundle in NS ("" when it does not exist)
cm_bundle() {
    kget "/api/v1/namespaces/$1/configmaps/ringmesh-root-cert" | jq -r '.data["root-cert.pem"] // ""'
}
# all_cms_hold FILE: every namespace (but a terminating one) holds ringmesh-root-cert with FILE's content
all_cms_hold() {
    local want n
    want=$(cat "$1")
    for n in $(kget /api/v1/namespaces | jq -r '.items[] | select(.status.phase != "Terminating") | .metadata.name'); do
        [ "$(cm_bundle "$n")" = "$want" ] || return 1
    done
}
# mwc_holds FILE: both webhooks of the configuration hold FILE, base64, as caBundle
mwc_holds() {
    local want
    want=$(base64 -w0 <"$1")
    [ "$(kget "$MWC" | jq -r --arg b "$want" '[.webhooks[] | .clientConfig.caBundle == $b] | length > 1 and all')" = true ]
}

case_two_replicas_one_ca() {
    local created
    created=$(cat "$RM_TMP/logs/control-a.log" "$RM_TMP/logs/control-b.log" | jq -c 'select(.event == "ca_secret_created")' |
        wc -l)
    [ "$created" = 1 ] || rm_fail "$created replicas created the CA Secret; exactly one should"
    [ "$(kget "/api/v1/namespaces/$NS/secrets" | jq '[.items[] | select(.metadata.name == "ringmesh-ca")] | length')" = 1 ] ||
        rm_fail "not exactly one Secret ringmesh-ca"
    secret_key ringmesh-ca ca.crt >"$D/ca1.pem"
    secret_key ringmesh-ca tls.crt >"$D/ca1.crt"
    secret_key ringmesh-ca tls.key >"$D/ca1.key"
    cmp -s "$RM_TMP/control/state-a/trust-bundle.pem" "$RM_TMP/control/state-b/trust-bundle.pem" ||
        rm_fail "the replicas publish different trust bundles"
    cmp -s "$RM_TMP/control/state-a/trust-bundle.pem" "$D/ca1.pem" || rm_fail "the bundle is not the Secret's ca.crt"
    local fa fb
    fa=$(served_fp "$(webhook_port 0)" "$D/ca1.pem") || rm_fail "replica a's webhook certificate does not verify"
    fb=$(served_fp "$(webhook_port 1)" "$D/ca1.pem") || rm_fail "replica b's webhook certificate does not verify"
    [ "$fa" != "$fb" ] || rm_fail "both replicas serve the same certificate: each should issue its own"
    rm_log "one Secret, one CA; both serving certificates verify against it"
    # the key never reaches a log
    local key
    key=$(kget "/api/v1/namespaces/$NS/secrets/ringmesh-ca" | jq -r '.data["tls.key"]')
    if grep -qF "$key" "$RM_TMP"/logs/control-*.log* || grep -qF "PRIVATE KEY" "$RM_TMP"/logs/control-*.log*; then
        rm_fail "the CA key appears in a log"
    fi
}

case_race_409() {
    rm_expect_log "$RM_TMP/logs/control-c.log" '.event == "ca_secret_race"' "no 409 race seen by replica c"
    rm_expect_no_log "$RM_TMP/logs/control-c.log" '.event == "ca_secret_created"' "replica c created a Secret"
    cmp -s "$RM_TMP/control/state-c/trust-bundle.pem" "$D/ca1.pem" || rm_fail "replica c does not use the shared CA"
    served_fp "$(webhook_port 2)" "$D/ca1.pem" >/dev/null || rm_fail "replica c's certificate does not verify"
    local posts
    posts=$(jq -c "select(.method == \"POST\" and (.path | test(\"/namespaces/$NS/secrets\")))" "$RM_KUBE_LOG" |
        jq -s '[.[] | .code] | sort | map(tostring) | join(",")')
    rm_log "Secret creations and their answers: $posts"
    [[ $posts == *409* ]] || rm_fail "no create answered 409: $posts"
}

case_root_cert_configmaps() {
    wait_until "ringmesh-root-cert is not in every namespace with the CA" 15 all_cms_hold "$D/ca1.pem"
    kdelete /api/v1/namespaces/shop/configmaps/ringmesh-root-cert
    wait_until "the deleted ringmesh-root-cert of shop is not restored" 15 all_cms_hold "$D/ca1.pem"
    kpost /api/v1/namespaces '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"late"}}'
    wait_until "no ringmesh-root-cert in a namespace created later" 15 all_cms_hold "$D/ca1.pem"
    # replicas compare before writing: once in place, quiet rounds write nothing
    local before after
    sleep 2.5
    before=$(jq -c 'select(.method == "PUT" or .method == "POST") | select(.path | test("configmaps"))' "$RM_KUBE_LOG" | wc -l)
    sleep 2.5
    after=$(jq -c 'select(.method == "PUT" or .method == "POST") | select(.path | test("configmaps"))' "$RM_KUBE_LOG" | wc -l)
    [ "$before" = "$after" ] || rm_fail "ConfigMaps rewritten while nothing changed ($before then $after writes)"
}

# the webhook_ca_bundle_patched lines of every replica so far, and whether there are more than $1 now
patches_logged() {
    cat "$RM_TMP/logs/control-a.log" "$RM_TMP/logs/control-b.log" "$RM_TMP/logs/control-c.log" |
        grep -c '"event":"webhook_ca_bundle_patched"' || true
}
more_patches_than() { [ "$(patches_logged)" -gt "$1" ]; }

case_webhook_ca_bundle() {
    rm_expect_log "$RM_TMP/logs/control-a.log" '.event == "webhook_config_missing"' "no word of the missing configuration"
    local mwc
    mwc=$(jq -c '.[] | select(.kind == "MutatingWebhookConfiguration")' "$D/default.json")
    [ "$(jq '.webhooks | length' <<<"$mwc")" = 2 ] || rm_fail "the chart renders $(jq '.webhooks | length' <<<"$mwc") webhooks, not 2"
    kpost /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations "$mwc"
    wait_until "the caBundle of the late configuration is not patched" 15 mwc_holds "$D/ca1.pem"
    wait_until "no patch logged" 5 grep -q '"event":"webhook_ca_bundle_patched"' "$RM_TMP/logs/control-a.log" \
        "$RM_TMP/logs/control-b.log" "$RM_TMP/logs/control-c.log"
    # a helm-like overwrite leaves it empty: patched again. The control plane may put it back before the test can
    # read the emptied one, so what proves it saw the overwrite is one more patch than before it.
    local patched
    patched=$(patches_logged)
    rm_kube_api PATCH "$MWC" -f -H 'Content-Type: application/json-patch+json' \
        -d '[{"op":"replace","path":"/webhooks/0/clientConfig/caBundle","value":""},
             {"op":"replace","path":"/webhooks/1/clientConfig/caBundle","value":""}]' >/dev/null
    wait_until "the emptied caBundle is not patched again" 15 more_patches_than "$patched"
    wait_until "the caBundle is not the CA's after the overwrite" 15 mwc_holds "$D/ca1.pem"
}

case_ca_change() {
    rm_expect_log "$RM_TMP/logs/control-d.log" '.event == "ca_secret_created"' "no new Secret after the deletion"
    secret_key ringmesh-ca ca.crt >"$D/ca2.pem"
    cmp -s "$D/ca1.pem" "$D/ca2.pem" && rm_fail "the new CA is the old one"
    wait_until "the ConfigMaps do not follow the new CA" 15 all_cms_hold "$D/ca2.pem"
    rm_expect_log "$RM_TMP/logs/control-d.log" '.event == "root_cert_published" and .action == "updated"' \
        "no ConfigMap updated in place"
    wait_until "the caBundle does not follow the new CA" 15 mwc_holds "$D/ca2.pem"
}

# a P-256 CA with openssl: corp_ca NAME TRUST_DOMAIN
corp_ca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$D/$1.key" -out "$D/$1.crt" \
        -days 30 -subj "/O=corp/CN=$1" -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign -addext "subjectAltName=URI:spiffe://$2" 2>/dev/null ||
        rm_fail "openssl: CA $1"
}
# put_corp_secret CERT KEY: (re)creates Secret corp-ca
put_corp_secret() {
    rm_kube_api DELETE "/api/v1/namespaces/$NS/secrets/corp-ca" >/dev/null
    kpost "/api/v1/namespaces/$NS/secrets" "$(jq -n --arg c "$(base64 -w0 <"$1")" --arg k "$(base64 -w0 <"$2")" \
        --arg ns "$NS" '{apiVersion:"v1",kind:"Secret",type:"kubernetes.io/tls",metadata:{name:"corp-ca",namespace:$ns},
        data:{"tls.crt":$c,"tls.key":$k,"ca.crt":$c}}')"
}
# refused_run NAME INDEX: a replica with --ca-secret corp-ca, run until it exits (its status in REFUSED_RC[NAME])
declare -A REFUSED_RC
refused_run() {
    control_start "$1" "$2" --ca-secret corp-ca
    rm_wait_exit "control-$1" 60
    REFUSED_RC[$1]=$RM_RC
}
# refused NAME SUBSTRING: that replica exited non-zero, logging SUBSTRING
refused() {
    [ "${REFUSED_RC[$1]}" != 0 ] || rm_fail "$1: the replica started"
    rm_expect_log "$RM_TMP/logs/control-$1.log" '.event == "ca_invalid"' "$1: no ca_invalid" 1
    [[ $(jq -r .msg <<<"$RM_LINE") == *"$2"* ]] || rm_fail "$1: the refusal does not say \"$2\": $RM_LINE"
    rm_log "$1 refused: $(jq -r .msg <<<"$RM_LINE")"
}

user_supplied_run() {
    rbac_apply existing
    refused_run missing 4
    corp_ca corp cluster.local
    corp_ca other cluster.local
    put_corp_secret "$D/corp.crt" "$D/other.key"
    refused_run mismatch 5
    corp_ca foreign other.example
    put_corp_secret "$D/foreign.crt" "$D/foreign.key"
    refused_run foreign 6
    put_corp_secret "$D/corp.crt" "$D/corp.key"
    control_start corp 7 --ca-secret corp-ca
    control_wait corp
}
case_user_supplied_secret() {
    refused missing "Secret $NS/corp-ca does not exist and the control plane may not create it"
    refused mismatch "Secret $NS/corp-ca key tls.key"
    refused foreign "not the mesh's trust domain"
    cmp -s "$RM_TMP/control/state-corp/trust-bundle.pem" "$D/corp.crt" ||
        diff <(openssl x509 -in "$RM_TMP/control/state-corp/trust-bundle.pem" -noout -fingerprint) \
            <(openssl x509 -in "$D/corp.crt" -noout -fingerprint) >/dev/null ||
        rm_fail "the replica's bundle is not the user's CA"
    served_fp "$(webhook_port 7)" "$D/corp.crt" >/dev/null || rm_fail "the webhook's certificate is not from the user's CA"
    rm_expect_no_log "$RM_TMP/logs/control-corp.log" '.event == "ca_secret_created"' "a Secret was created"
    wait_until "the ConfigMaps do not carry the user's CA" 15 all_cms_hold "$RM_TMP/control/state-corp/trust-bundle.pem"
}

# mkpair NAME [DAYS]: a webhook serving pair issued by the corporate CA "issuer", valid DAYS (default 1)
mkpair() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$D/$1.key" -out "$D/$1.csr" \
        -subj "/CN=ringmesh-control.$NS.svc" 2>/dev/null
    openssl x509 -req -in "$D/$1.csr" -CA "$D/issuer.crt" -CAkey "$D/issuer.key" -CAcreateserial -days "${2:-1}" \
        -out "$D/$1.crt" -extfile <(printf 'subjectAltName=DNS:ringmesh-control.%s.svc,IP:127.0.0.1\n' "$NS") \
        2>/dev/null || rm_fail "openssl: pair $1"
}
cert_manager_run() {
    rbac_apply certmanager
    # the pair cert-manager would mount, issued by its own CA
    corp_ca issuer cluster.local
    mkpair first
    mkdir -p "$D/tls"
    cp "$D/first.crt" "$D/tls/tls.crt"
    cp "$D/first.key" "$D/tls/tls.key"
    # the MWC's caBundle as cert-manager's CA injector set it: must stay
    rm_kube_api PATCH "$MWC" -f -H 'Content-Type: application/json-patch+json' \
        -d "[{\"op\":\"replace\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$(base64 -w0 <"$D/issuer.crt")\"},
             {\"op\":\"replace\",\"path\":\"/webhooks/1/clientConfig/caBundle\",\"value\":\"$(base64 -w0 <"$D/issuer.crt")\"}]" >/dev/null
    control_start cm 8 --ca-secret ringmesh-ca --webhook-cert "$D/tls/tls.crt" --webhook-key "$D/tls/tls.key"
    control_wait cm
}
# expiry_metric INDEX NAME: the value of gauge NAME (no labels) on replica INDEX's /metrics
expiry_metric() {
    curl -sf "http://127.0.0.1:$((BASE + 10 * $1 + 1))/metrics" | awk -v k="$2" '$1 == k {print $2}'
}
not_after() { date -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s; }
case_cert_manager() {
    local want got
    want=$(openssl x509 -in "$D/first.crt" -noout -fingerprint -sha256)
    got=$(served_fp "$(webhook_port 8)" "$D/issuer.crt") || rm_fail "the given pair is not served"
    [ "$got" = "$want" ] || rm_fail "served $got, not the given certificate $want"
    rm_assert_eq "$(expiry_metric 8 ringmesh_control_webhook_cert_expiry_timestamp_seconds)" \
        "$(not_after "$D/first.crt")" "the webhook expiry gauge is the given certificate's notAfter"
    secret_key ringmesh-ca tls.crt >"$D/ca-secret.crt"
    rm_assert_eq "$(expiry_metric 8 ringmesh_control_ca_expiry_timestamp_seconds)" "$(not_after "$D/ca-secret.crt")" \
        "the CA expiry gauge is the notAfter of the CA Secret's certificate"
    # renewal: the files change (cert-manager's volume swaps them); new connections get the new pair
    mkpair second 2
    cp "$D/second.key" "$D/tls/.tls.key.new" && mv "$D/tls/.tls.key.new" "$D/tls/tls.key"
    cp "$D/second.crt" "$D/tls/.tls.crt.new" && mv "$D/tls/.tls.crt.new" "$D/tls/tls.crt"
    # the gauge follows the files by itself, before any connection asks for the new pair
    gauge_renewed() {
        [ "$(expiry_metric 8 ringmesh_control_webhook_cert_expiry_timestamp_seconds)" = "$(not_after "$D/second.crt")" ]
    }
    wait_until "the webhook expiry gauge does not follow the renewed files" 10 gauge_renewed
    rm_log "ok: the webhook expiry gauge follows the renewed certificate ($(not_after "$D/second.crt"))"
    want=$(openssl x509 -in "$D/second.crt" -noout -fingerprint -sha256)
    renewed() { [ "$(served_fp "$(webhook_port 8)" "$D/issuer.crt")" = "$want" ]; }
    wait_until "the renewed pair is not served" 10 renewed
    rm_expect_log "$RM_TMP/logs/control-cm.log" '.event == "webhook_certificate_loaded"' "no load logged"
    sleep 2.5 # two resync periods: a replica that patched would have
    mwc_holds "$D/issuer.crt" || rm_fail "cert-manager mode touched the caBundle"
    rm_expect_no_log "$RM_TMP/logs/control-cm.log" '.event == "webhook_ca_bundle_patched" or .event == "webhook_config_missing"' \
        "cert-manager mode looked at the webhook configuration" 0
    rm_stop control-cm
}

# processes start and stop here, outside the cases (a case runs in a subshell), so that teardown stops them all
control_start a 0 --ca-secret ringmesh-ca
control_start b 1 --ca-secret ringmesh-ca
control_wait a
control_wait b
rm_case "two replicas, one CA Secret" case_two_replicas_one_ca
# the late replica's first read misses the Secret: it generates a root, its create answers 409, and it reads and
# uses the Secret the others made
rm_kube_fault "{\"action\":\"error\",\"code\":404,\"count\":1,\"method\":\"GET\",\"path\":\"/secrets/ringmesh-ca\$\"}"
control_start c 2 --ca-secret ringmesh-ca
control_wait c
rm_case "a create that loses the race uses the winner's Secret" case_race_409
rm_case "ringmesh-root-cert in every namespace, restored" case_root_cert_configmaps
rm_case "caBundle of both webhooks, late and after an overwrite" case_webhook_ca_bundle
rm_stop control-a
rm_stop control-b
rm_stop control-c
kdelete "/api/v1/namespaces/$NS/secrets/ringmesh-ca"
control_start d 3 --ca-secret ringmesh-ca
control_wait d
rm_case "a new CA reaches the ConfigMaps and the caBundle" case_ca_change
# a replica still on the old CA (as while a CA change rolls out) disagrees with d about the bundle: they overwrite
# each other's ConfigMaps, but at most once per resync period each, never in a tight loop
control_start old 9 --ca-cert "$D/ca1.crt" --ca-key "$D/ca1.key"
control_wait old
sleep 1
CONTEND_FROM=$(wc -l <"$RM_KUBE_LOG")
sleep 4
CONTEND_TO=$(wc -l <"$RM_KUBE_LOG")
rm_stop control-old
case_contention() {
    local puts nss bound
    puts=$(sed -n "$((CONTEND_FROM + 1)),${CONTEND_TO}p" "$RM_KUBE_LOG" |
        jq -c 'select(.method == "PUT" and (.path | test("configmaps/ringmesh-root-cert")))' | wc -l)
    nss=$(kget /api/v1/namespaces | jq '.items | length')
    # two writers, 4 s, a 1 s resync: at most 5 rounds each over every namespace
    bound=$((2 * nss * 5))
    rm_log "ConfigMap updates in 4 s with two CAs: $puts (bound $bound)"
    [ "$puts" -le "$bound" ] || rm_fail "$puts ConfigMap updates in 4 s: the replicas write in a loop"
    grep -q '"event":"root_cert_contended"' "$RM_TMP/logs/control-d.log" "$RM_TMP/logs/control-old.log" ||
        rm_fail "no root_cert_contended warning"
    wait_until "d does not restore its bundle once the old replica stopped" 15 all_cms_hold "$D/ca2.pem"
}
rm_case "replicas on two CAs do not write in a loop" case_contention
rm_stop control-d
user_supplied_run
rm_case "a user-supplied CA Secret: refusals named, the good one used" case_user_supplied_secret
rm_stop control-corp
cert_manager_run
rm_case "cert-manager mode: the given pair, re-read, caBundle left alone" case_cert_manager
rm_stop control-cm
rm_kube_api GET /_test/objects >"$D/objects.json"
rm_k8s_validate "$D/objects.json" >"$D/validate.out" || {
    cat "$D/validate.out" >&2
    rm_fail "an object the control plane wrote is not valid for Kubernetes 1.33"
}
rm_kube_api_clean
rm_finish
