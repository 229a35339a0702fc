#!/usr/bin/env bash
# rm-e2e: both-backends
#
# The authorization table (tests/data/policy/cases.txt): every case is decided twice, by `ringmeshctl policy
# check` and by a real request in the namespace mesh, and both must agree with the table on the enforced
# decision, the decision word of the log, and the policy and rule (or the reason) that decided.
#
# The mesh: ringmesh-control in the node namespace with the table's policies in its directory; orders (namespace
# shop, labels app=orders) runs an HTTP/1.1 app on 8080, a gRPC app on 9090 (Debian's python3-grpcio) and an echo
# server on 7070 behind one VIP; clients web, backend and evil have sidecars, plain has none.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_require_cmds curl jq /usr/bin/python3
/usr/bin/python3 -c 'import grpc' 2>/dev/null || rm_skip "python3-grpcio is not installed"
rm_setup
RM_DEFAULT_ACTION=DENY rm_control_init

TABLE=$RM_SOURCE_DIR/tests/data/policy/cases.txt
POLICIES=$RM_SOURCE_DIR/tests/data/policy/table
APP=$RM_SOURCE_DIR/tests/e2e/tools/http_app.py
MESH=$RM_TMP/control/mesh
VIP=198.19.0.20
TD=$RM_TRUST_DOMAIN

cat >"$MESH/orders.yaml" <<EOF
apiVersion: ringmesh.io/v1alpha1
kind: Service
metadata: {name: orders, namespace: shop}
spec:
  addresses: [$VIP]
  ports: [7070, 8080, 9090]
  serviceAccounts: [orders]
EOF

rm_pod_create orders
rm_pod_create web
rm_pod_create backend
rm_pod_create evil
rm_pod_create plain
for port in 7070 8080 9090; do rm_service "$VIP:$port" "orders:$port"; done
rm_server echo orders 0.0.0.0:7070 echo
rm_bg app-http orders "$RM_TMP/logs/app-http.log" /usr/bin/python3 "$APP" http 8080
rm_bg app-grpc orders "$RM_TMP/logs/app-grpc.log" /usr/bin/python3 "$APP" grpc 9090
rm_wait_port orders 8080 10 app-http
rm_wait_port orders 9090 10 app-grpc

rm_control_start main node 0.0.0.0:15012
CONTROL="control=$(rm_pod_gateway orders):15012"
rm_pod_mesh orders "$CONTROL" ns=shop sa=orders labels=app=orders,version=v1
rm_pod_mesh web "control=$(rm_pod_gateway web):15012" ns=web sa=frontend labels=app=web
rm_pod_mesh backend "control=$(rm_pod_gateway backend):15012" ns=shop sa=backend labels=app=backend
rm_pod_mesh evil "control=$(rm_pod_gateway evil):15012" ns=evil sa=attacker labels=app=evil
for p in orders web backend evil; do rm_wait_ready "$p"; done
OLOG=$(rm_proxy_log orders)
CLOG=$RM_TMP/logs/control-main.log

declare -A ID=([web]="spiffe://$TD/ns/web/sa/frontend" [backend]="spiffe://$TD/ns/shop/sa/backend"
    [evil]="spiffe://$TD/ns/evil/sa/attacker" [plain]="")
ip_of() { echo "${RM_POD_IP[$1]}"; }

# writes the policy files of a set (with the clients' addresses filled in) into DIR
render_set() {
    local files=$1 dir=$2 f
    mkdir -p "$dir"
    rm -f "$dir"/*.yaml
    [ "$files" = - ] && return 0
    for f in ${files//,/ }; do
        sed -e "s/@WEB_IP@/$(ip_of web)/g" -e "s/@EVIL_IP@/$(ip_of evil)/g" -e "s/@BACKEND_IP@/$(ip_of backend)/g" \
            "$POLICIES/$f.yaml" >"$dir/$f.yaml"
    done
}

# the mesh settings and policy versions the control plane last pushed to orders, and those orders' proxy last took
pushed_versions() {
    local t
    for t in mesh_settings workload_policy; do
        rm_log_select "$CLOG" ".event == \"config_pushed\" and .node == \"orders\" and .type == \"$t\"" |
            tail -n 1 | jq -r '.version'
    done | tr '\n' ' '
}
taken_versions() {
    local t
    for t in mesh_settings workload_policy; do
        rm_log_select "$OLOG" ".event == \"config_accepted\" and .type == \"$t\"" | tail -n 1 | jq -r '.version'
    done | tr '\n' ' '
}

# applies a policy set to the control plane and waits until orders' proxy runs it; DEFAULT is "ACTION" or
# "ACTION/PATH_NORMALIZATION"
apply_set() {
    local files=$1 default=${2%%/*} normalization="" n0 f
    [[ $2 == */* ]] && normalization=", pathNormalization: {normalization: ${2#*/}}"
    n0=$(rm_log_count "$OLOG" '.event == "config_accepted" and .type == "workload_policy"')
    rm -f "$MESH"/policy-*.yaml
    render_set "$files" "$RM_TMP/set"
    for f in "$RM_TMP/set"/*.yaml; do
        [ -e "$f" ] && cp "$f" "$MESH/policy-$(basename "$f")"
    done
    # written aside and renamed, so the control plane never reads a half-written mesh.yaml
    cat >"$MESH/.mesh.yaml.new" <<EOF
apiVersion: ringmesh.io/v1alpha1
kind: MeshConfig
metadata: {name: mesh}
spec:
  trustDomain: $TD
  mtls: {mode: STRICT}
  svidTTL: 1h
  authorization: {defaultAction: $default, logAllowed: "true", logAttributes: "true"$normalization}
EOF
    mv -f "$MESH/.mesh.yaml.new" "$MESH/mesh.yaml"
    # The control plane may read the directory between the files' changes and push that state first. Wait until
    # orders' proxy runs what the control plane pushed to it last, and nothing new has been pushed for 0.5 s.
    local deadline=$(($(rm_now_ms) + 15000)) pushed took seen="" since=0 now
    while :; do
        pushed=$(pushed_versions) took=$(taken_versions) now=$(rm_now_ms)
        [ "$pushed" = "$seen" ] || { seen=$pushed since=$now; }
        if [ "$(rm_log_count "$OLOG" '.event == "config_accepted" and .type == "workload_policy"')" -gt "$n0" ] &&
            [ "$pushed" = "$took" ] && [ $((now - since)) -ge 500 ]; then
            break
        fi
        [ "$now" -lt "$deadline" ] || rm_fail "orders' proxy did not take the policies $files within 15 s"
        sleep 0.05
    done
    rm_log "policies in force: $files (defaultAction $2)"
}

# the authz log line orders' proxy writes for the request just made (waits for it)
last_decision() {
    local n0=$1 deadline=$(($(rm_now_ms) + 5000))
    until [ "$(rm_log_count "$OLOG" '.event == "authz"')" -gt "$n0" ]; do
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "orders' proxy logged no decision"
        sleep 0.05
    done
    rm_log_select "$OLOG" '.event == "authz"' | tail -n 1
}

# checks a decision (a log line, or `policy check -o json` output) against the table's columns
check_decided() {
    local what=$1 line=$2 decider=$3 word=$4 miss=
    # "reason:no-allow-match~POLICY#RULE:FIELD=GOT": the closest miss too (GOT "-": the request has no value)
    if [[ $decider == *"~"* ]]; then
        miss=${decider#*"~"}
        decider=${decider%%"~"*}
    fi
    rm_assert_eq "$(rm_json "$line" .decision)" "$word" "$what: log decision"
    if [ -n "$miss" ]; then
        local got=${miss#*=}
        [ "$got" != - ] || got=null
        rm_assert_eq "$(rm_json "$line" '"\(.closest_miss.policy)#\(.closest_miss.rule):\(.closest_miss.field)"')" \
            "${miss%%=*}" "$what: closest miss"
        rm_assert_eq "$(rm_json "$line" .closest_miss.got)" "$got" "$what: the value that failed it"
    fi
    case "$decider" in
    reason:no-allow-match) rm_assert_eq "$(rm_json "$line" .reason)" "no ALLOW policy matched" "$what: reason" ;;
    reason:*) rm_assert_eq "$(rm_json "$line" .reason)" "${decider#reason:}" "$what: reason" ;;
    *)
        rm_assert_eq "$(rm_json "$line" .policy)" "${decider%#*}" "$what: deciding policy"
        rm_assert_eq "$(rm_json "$line" .rule)" "${decider#*#}" "$what: deciding rule"
        ;;
    esac
}

# the mesh's default action, lower-case, of a defaultAction column ("DENY/MERGE_SLASHES" -> deny)
action_of() { local a=${1%%/*}; echo "${a,,}"; }
# the seen=TARGET of a request column, or nothing
seen_of() {
    local w
    for w in $1; do [[ $w == seen=* ]] && echo "${w#seen=}"; done
    return 0
}

# the request through `ringmeshctl policy check`
via_check() {
    local name=$1 files=$2 default=$3 client=$4 port=$5 request=$6 expect=$7 decider=$8 word=$9
    local args=(-f "$RM_TMP/ctl-set" --to-namespace shop --to-labels app=orders,version=v1
        --root-namespace ringmesh-system --default-action "$(action_of "$default")" --port "$port" --source-ip "$(ip_of "$client")" -o json)
    [[ $default == */* ]] && args+=(--path-normalization "${default#*/}")
    # a sidecar sends Istio's server name for the Service; a plaintext client none
    [ -n "${ID[$client]}" ] && args+=(--from "${ID[$client]}" --sni "outbound_.${port}_._.orders.shop.svc.cluster.local")
    read -r -a words <<<"$request"
    case "${words[0]}" in
    http)
        args+=(--method "${words[1]}" --path "${words[2]}")
        for kv in "${words[@]:3}"; do
            case "${kv%%=*}" in
            host) args+=(--host "${kv#host=}") ;;
            seen) ;;
            *) args+=(--header "$kv") ;;
            esac
        done
        ;;
    grpc)
        args+=(--method POST --path "${words[1]}" --header content-type=application/grpc)
        for kv in "${words[@]:2}"; do args+=(--header "$kv"); done
        ;;
    esac
    render_set "$files" "$RM_TMP/ctl-set"
    local out rc=0
    out=$("$RM_CTL_BIN" policy check "${args[@]}" 2>&1) || rc=$?
    rm_assert_eq "$rc" "$([ "$expect" = allow ] && echo 0 || echo 3)" "$name: policy check exit status ($out)"
    check_decided "$name (policy check)" "$out" "$decider" "$word"
    [ -z "$(seen_of "$request")" ] || rm_assert_eq "$(rm_json "$out" .path)" "$(seen_of "$request")" \
        "$name: policy check decided on the normalized path"
}

# the request in the mesh
via_mesh() {
    local name=$1 client=$2 port=$3 request=$4 expect=$5 decider=$6 word=$7 n0 line
    read -r -a words <<<"$request"
    n0=$(rm_log_count "$OLOG" '.event == "authz"')
    case "${words[0]}" in
    tcp)
        local payload="ringmesh-$name-$RANDOM"
        rm_client "$name" "$client" --connect "$VIP:$port" "send:$payload" shutdown readeof || true
        if [ "$expect" = allow ]; then
            rm_assert_eq "$RM_RC" 0 "$name: the connection completes"
            rm_assert_content "$(rm_client_out "$name")" "$payload" "$name: the echo came back"
        else
            [ "$RM_RC" != 0 ] || [ ! -s "$(rm_client_out "$name")" ] || rm_fail "$name: a denied connection got an echo"
            rm_log "ok: $name: the connection was closed without reaching the app (exit $RM_RC)"
        fi
        ;;
    http)
        local hdrs=() body code seen
        seen=$(seen_of "$request")
        for kv in "${words[@]:3}"; do [[ $kv == seen=* ]] || hdrs+=(-H "${kv%%=*}: ${kv#*=}"); done
        body="$RM_TMP/logs/http-$name.body"
        code=$(rm_exec "$client" curl -s --path-as-is -o "$body" -w '%{http_code}' -X "${words[1]}" "${hdrs[@]}" \
            --max-time 10 "http://$VIP:$port${words[2]}") || true
        if [ "$expect" = allow ]; then
            rm_assert_eq "$code" 200 "$name: HTTP status"
            rm_assert_eq "$(cat "$body")" "${words[1]} ${seen:-${words[2]}}" "$name: the app answered the request"
        elif [ "$expect" = bad-request ]; then
            rm_assert_eq "$code" 400 "$name: HTTP status"
        else
            rm_assert_eq "$code" 403 "$name: HTTP status"
            rm_assert_eq "$(cat "$body")" "RBAC: access denied" "$name: the 403 body"
        fi
        ;;
    grpc)
        local out
        out=$(rm_exec "$client" /usr/bin/python3 "$APP" call "$VIP:$port" "${words[1]}" "${words[@]:2}") ||
            rm_fail "$name: grpc call failed: $out"
        rm_assert_eq "$(rm_json "$out" .code)" "$([ "$expect" = allow ] && echo OK || echo PERMISSION_DENIED)" "$name: gRPC status"
        [ "$expect" = allow ] && rm_assert_eq "$(rm_json "$out" .reply)" "echo:ping" "$name: the app answered"
        ;;
    esac
    line=$(last_decision "$n0")
    check_decided "$name (mesh)" "$line" "$decider" "$word"
    # logAttributes, pushed: the workload the policies were selected for, and what the engine read
    rm_assert_eq "$(rm_json "$line" '[.workload_namespace, .workload_labels.app, .attributes.principal,
        .attributes.destination_port, .attributes.method] | map(tostring) | join(" ")')" \
        "shop orders ${ID[$client]:-null} $port $(case "${words[0]}" in tcp) echo null ;; grpc) echo POST ;; *) echo "${words[1]}" ;; esac)" \
        "$name: the line's workload and attributes"
    [ "${words[0]}" != http ] || [ -z "$(seen_of "$request")" ] ||
        rm_assert_eq "$(rm_json "$line" .path)" "$(seen_of "$request")" "$name: the log names the path the app got"
    rm_assert_eq "$(rm_json "$line" .source_principal)" "${ID[$client]:-null}" "$name: the log names the source principal"
    rm_assert_eq "$(rm_json "$line" .destination_port)" "$port" "$name: the log names the destination port"
}

CURRENT=""
NCASES=0
trim() {
    local v=$1
    v=${v#"${v%%[![:space:]]*}"}
    printf '%s' "${v%"${v##*[![:space:]]}"}"
}
while IFS= read -r row; do
    case "$row" in "" | "#"*) continue ;; esac
    IFS='|' read -r name files default client port request expect decider word <<<"$row"
    name=$(trim "$name") files=$(trim "$files") default=$(trim "$default") client=$(trim "$client")
    port=$(trim "$port") request=$(trim "$request") expect=$(trim "$expect") decider=$(trim "$decider")
    word=$(trim "$word")
    if [ "$CURRENT" != "$files/$default" ]; then
        apply_set "$files" "$default"
        CURRENT="$files/$default"
    fi
    rm_log "--- case $name: $client -> :$port $request, expect $expect by $decider ($word)"
    via_check "$name" "$files" "$default" "$client" "$port" "$request" "$expect" "$decider" "$word"
    via_mesh "$name" "$client" "$port" "$request" "$expect" "$decider" "$word"
    NCASES=$((NCASES + 1))
done <"$TABLE"
[ "$NCASES" -ge 72 ] || rm_fail "the table has only $NCASES cases"
rm_log "ok: $NCASES cases agree between policy check, the mesh and the table"

# nothing denied ever reached the apps
rm_expect_no_log "$RM_TMP/logs/app-http.log" '.path == "/shop/admin" or .path == "/private/key" or .method == "DELETE"
    or (.path | startswith("/admin")) or .path == "/ok%00" or .path == "/x/ok" or (.path | startswith("/manage/"))
    or .path == "/store/cart" or .path == "/foo/x/y/bar"' "no denied HTTP request reached the app"
rm_expect_no_log "$RM_TMP/logs/app-grpc.log" '.path == "/ringmesh.test.Echo/Delete"' "no denied gRPC call reached the app"
rm_finish
