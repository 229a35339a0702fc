# shellcheck shell=bash
# Starting and driving the stand-in Kubernetes API server (kube_apiserver.py) from a test. Source after
# tests/e2e/lib.sh (rm_bg, rm_wait_file, rm_fail, RM_TMP from rm_setup or rm_setup_no_netns).
#
#   rm_kube_api_start [POD|-] [SERVER OPTION]...
#       makes a test CA and a serving certificate in $RM_TMP/kube (SANs 127.0.0.1, ::1, localhost,
#       kubernetes.default.svc, $RM_KUBE_HOST when it is an address, and $RM_KUBE_EXTRA_SANS, e.g.
#       "DNS:kube.example"), starts the stand-in as process "kube-api" (inside POD's network namespace unless "-",
#       listening on $RM_KUBE_BIND, default $RM_KUBE_HOST) with the admin token, its request log and the port file,
#       waits for the port, and writes a kubeconfig. In the namespace mesh, for example:
#           rm_external_create kapi; RM_KUBE_HOST=${RM_POD_IP[kapi]} rm_kube_api_start kapi
#       Sets:
#         RM_KUBE_DIR   $RM_TMP/kube           RM_KUBE_CA     the CA certificate (PEM)
#         RM_KUBE_TOKEN the admin bearer token RM_KUBE_TOKEN_FILE  a file holding it
#         RM_KUBE_PORT  the port               RM_KUBE_URL    https://HOST:PORT (RM_KUBE_HOST, default 127.0.0.1)
#         RM_KUBECONFIG the kubeconfig         RM_KUBE_LOG    the request log (JSON lines)
#         RM_KUBE_POD   where it runs (POD or -)
#   rm_kube_api METHOD PATH [CURL ARG]...: one request with curl as the admin (from the server's own namespace);
#       prints the body; fails the test on a transport error (not on an HTTP error status: pass -f for that)
#   rm_kube_ctl ARG...: the real kubectl (lib_k8s.sh's RM_KUBECTL) with that kubeconfig and its own cache directory
#       (from the server's own namespace)
#   rm_kube_config TOKEN FILE: a kubeconfig for the stand-in with another of its tokens
#   rm_kube_fault JSON: queues a fault rule (see README.md, "Test control")
#   rm_kube_api_clean: fails when the stand-in logged an internal error

RM_KUBE_API=${RM_KUBE_API:-$RM_SOURCE_DIR/tests/k8s/apiserver/kube_apiserver.py}
RM_KUBE_HOST=${RM_KUBE_HOST:-127.0.0.1}

rm_kube_api_start() {
    local pod=${1:--} host_url=$RM_KUBE_HOST sans
    [ $# -gt 0 ] && shift
    sans="IP:127.0.0.1,IP:::1,DNS:localhost,DNS:kubernetes.default.svc"
    [[ $RM_KUBE_HOST =~ ^[0-9.]+$|: ]] && [[ ",$sans," != *",IP:$RM_KUBE_HOST,"* ]] && sans+=",IP:$RM_KUBE_HOST"
    RM_KUBE_DIR=$RM_TMP/kube
    mkdir -p "$RM_KUBE_DIR"
    RM_KUBE_CA=$RM_KUBE_DIR/ca.pem
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$RM_KUBE_DIR/ca.key" \
        -out "$RM_KUBE_CA" -days 1 -subj /CN=stand-in-kube-ca -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign 2>/dev/null || rm_fail "openssl could not make the test CA"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$RM_KUBE_DIR/api.key" \
        -out "$RM_KUBE_DIR/api.csr" -subj /CN=kube-apiserver 2>/dev/null || rm_fail "openssl: serving key"
    openssl x509 -req -in "$RM_KUBE_DIR/api.csr" -CA "$RM_KUBE_CA" -CAkey "$RM_KUBE_DIR/ca.key" -CAcreateserial \
        -days 1 -out "$RM_KUBE_DIR/api.pem" -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' \
            "$sans${RM_KUBE_EXTRA_SANS:+,$RM_KUBE_EXTRA_SANS}") \
        2>/dev/null || rm_fail "openssl: serving certificate"
    RM_KUBE_TOKEN=admin-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    RM_KUBE_TOKEN_FILE=$RM_KUBE_DIR/token
    printf '%s\n' "$RM_KUBE_TOKEN" >"$RM_KUBE_TOKEN_FILE"
    RM_KUBE_LOG=$RM_KUBE_DIR/requests.jsonl
    RM_KUBE_POD=$pod
    rm_bg kube-api "$pod" "$RM_TMP/logs/kube-api.log" /usr/bin/python3 "$RM_KUBE_API" --cert "$RM_KUBE_DIR/api.pem" \
        --key "$RM_KUBE_DIR/api.key" --token "$RM_KUBE_TOKEN=admin" --port-file "$RM_KUBE_DIR/port" \
        --request-log "$RM_KUBE_LOG" --bind "${RM_KUBE_BIND:-$RM_KUBE_HOST}" "$@"
    rm_wait_file "$RM_KUBE_DIR/port" kube-api 20
    RM_KUBE_PORT=$(cat "$RM_KUBE_DIR/port")
    [[ $host_url == *:* ]] && host_url="[$host_url]"
    RM_KUBE_URL=https://$host_url:$RM_KUBE_PORT
    RM_KUBECONFIG=$RM_KUBE_DIR/kubeconfig
    rm_kube_config "$RM_KUBE_TOKEN" "$RM_KUBECONFIG"
    rm_log "stand-in API server at $RM_KUBE_URL (PID ${RM_PID[kube-api]})"
}

# rm_kube_config TOKEN FILE: writes a kubeconfig for the running stand-in that authenticates with TOKEN (one of its
# --token values: a ServiceAccount's, say, to run a component with the permissions RBAC gives it)
rm_kube_config() {
    cat >"$2" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: stand-in
  cluster: {server: "$RM_KUBE_URL", certificate-authority: "$RM_KUBE_CA"}
users:
- name: user
  user: {token: "$1"}
contexts:
- name: stand-in
  context: {cluster: stand-in, user: user, namespace: default}
current-context: stand-in
EOF
}

rm_kube_api() {
    local method=$1 path=$2 in=()
    shift 2
    [ "$RM_KUBE_POD" = - ] || in=(ip netns exec "$(rm_ns "$RM_KUBE_POD")")
    "${in[@]}" curl -sS --max-time 20 --cacert "$RM_KUBE_CA" -H "Authorization: Bearer $RM_KUBE_TOKEN" -X "$method" "$@" \
        "$RM_KUBE_URL$path" || rm_fail "curl $method $path failed"
}

rm_kube_ctl() {
    local in=()
    [ "$RM_KUBE_POD" = - ] || in=(ip netns exec "$(rm_ns "$RM_KUBE_POD")")
    "${in[@]}" "$RM_KUBECTL" --kubeconfig "$RM_KUBECONFIG" --cache-dir "$RM_KUBE_DIR/kubectl-cache" --request-timeout 20s "$@"
}

rm_kube_fault() {
    rm_kube_api POST /_test/faults -H 'Content-Type: application/json' -d "$1" >/dev/null
}

# rm_kube_api_clean: fails when the stand-in logged an internal error (a Python traceback) during the test
rm_kube_api_clean() {
    if grep -q 'Traceback' "$RM_TMP/logs/kube-api.log.stderr" 2>/dev/null; then
        rm_fail "the stand-in API server hit an internal error: $(cat "$RM_TMP/logs/kube-api.log.stderr")"
    fi
}
