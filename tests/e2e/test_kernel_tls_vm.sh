#!/usr/bin/env bash
# Kernel TLS end to end, in a virtual machine running Debian's own kernel (tests/vm/vm-run.sh): the kernel of the
# machine running the tests may be built without TLS (CONFIG_TLS), and then ringmesh-proxy keeps its records in user
# space, which every other test covers. In the VM:
#   - test_ktls, the library's test of the hand-over (wolfSSL and the kernel open each other's records, record
#     boundaries, KeyUpdate and forged records refused), with RM_REQUIRE_KERNEL_TLS=1 so that nothing is skipped;
#   - tests/vm/guest-kernel-tls.sh: proxy pairs on io_uring and on epoll, both ends in the kernel, and each end
#     paired with a proxy that keeps its records in user space (kernelTls: off); data, half-close, a server-first
#     protocol; the proxies' metrics and logs and the kernel's /proc/net/tls_stat agree on what the kernel carried;
#     and the memory each connection adds to a pair whose records the kernel carries (no TLS session left in either
#     proxy) is within what the 64 MiB target for 10,000 connections allows (the median slope over steps of
#     RM_KTLS_VM_CONNS / 6 connections).
# Size knobs, for the full-size run of bench/RESULTS.md (the defaults are CI's): RM_KTLS_VM_CONNS connections held
# (600; at 10,000 the pair's RSS must also be under 64 MiB), RM_KTLS_VM_STEP (RM_KTLS_VM_CONNS / 6), RM_KTLS_VM_MEM
# the VM's memory in MB (512), RM_KTLS_VM_TIMEOUT seconds (900).
# Certificates are made here with ringmeshctl. Needs: RM_BUILD_DIR, RM_SOURCE_DIR, and what tests/vm/ needs
# (scripts/bootstrap.sh installs it). The VM has no network device; nothing leaves it.
set -u

build=${RM_BUILD_DIR:?}
src=${RM_SOURCE_DIR:?}
conns=${RM_KTLS_VM_CONNS:-600}
step=${RM_KTLS_VM_STEP:-$((conns / 6))}
vm_mem=${RM_KTLS_VM_MEM:-512}
vm_timeout=${RM_KTLS_VM_TIMEOUT:-900}
case "$conns$step" in
*[!0-9]*) echo "FAIL: RM_KTLS_VM_CONNS and RM_KTLS_VM_STEP are numbers of connections, not '$conns' and '$step'"; exit 1 ;;
esac
if [ "$step" -lt 1 ] || [ $((conns / step)) -lt 3 ]; then
    echo "FAIL: RM_KTLS_VM_STEP ($step) must give at least three steps of RM_KTLS_VM_CONNS ($conns)"
    exit 1
fi
ctl=$build/ctl/ringmeshctl
bins=("$build/sidecar/ringmesh-proxy" "$build/tests/tools/e2e_server" "$build/tests/tools/e2e_client"
    "$build/tests/test_ktls" "$build/tests/tools/e2e_load")
for b in "$ctl" "${bins[@]}"; do
    if [ ! -x "$b" ]; then
        echo "FAIL: $b not built"
        exit 1
    fi
done
if ! command -v qemu-system-x86_64 >/dev/null || [ ! -x /bin/busybox ]; then
    echo "SKIP: qemu-system-x86 or busybox-static not installed (scripts/bootstrap.sh installs them)"
    exit 77
fi

work=$(mktemp -d /tmp/rm-e2e-ktls-XXXXXX)
trap 'rm -rf "$work"' EXIT
cfg=$work/cfg
mkdir -p "$cfg"

# the same names the bench uses: spiffe://cluster.local/ns/default/sa/{client,server}
"$ctl" svid issue --ca --trust-domain cluster.local --cert "$cfg/ca.pem" --key "$cfg/ca.key" --ttl 24h >/dev/null &&
    "$ctl" svid issue --ca-cert "$cfg/ca.pem" --ca-key "$cfg/ca.key" --id spiffe://cluster.local/ns/default/sa/client \
        --cert "$cfg/client.pem" --key "$cfg/client.key" --ttl 1h >/dev/null &&
    "$ctl" svid issue --ca-cert "$cfg/ca.pem" --ca-key "$cfg/ca.key" --id spiffe://cluster.local/ns/default/sa/server \
        --cert "$cfg/server.pem" --key "$cfg/server.key" --ttl 1h >/dev/null || {
    echo "FAIL: ringmeshctl svid issue"
    exit 1
}

# config NAME ROLE KERNEL_TLS ADMIN_PORT LISTENER...  (LISTENER: name=listen=target)
config() {
    local name=$1 role=$2 ktls=$3 admin=$4 l n listen target
    shift 4
    {
        printf 'trustDomain: cluster.local\n'
        printf 'tls: {certFile: /rm/%s.pem, keyFile: /rm/%s.key, bundleFile: /rm/ca.pem}\n' "$role" "$role"
        printf 'outbound: {enabled: false}\ninbound: {enabled: false}\n'
        printf 'admin: {enabled: true, listen: "127.0.0.1:%s"}\n' "$admin"
        printf 'kernelTls: %s\nlogLevel: info\nconnectionLog: true\nmaxConnections: %s\n' "$ktls" $((conns + 100))
        # the many-connection step runs 256 handshakes at a time in a VM on a shared host
        printf 'handshakeTimeout: 60s\nlisteners:\n'
        for l in "$@"; do
            IFS== read -r n listen target <<<"$l"
            if [ "$role" = client ]; then
                printf '  - {name: %s, type: upstream, listen: "%s", target: "%s",' "$n" "$listen" "$target"
                printf ' identities: ["spiffe://cluster.local/ns/default/sa/server"]}\n'
            else
                printf '  - {name: %s, type: inbound, listen: "%s", target: "%s", mode: STRICT}\n' "$n" "$listen" \
                    "$target"
            fi
        done
    } >"$cfg/$name.yaml"
}
config out-k client auto 15021 echo=127.0.0.1:15001=127.0.0.1:15006 rae=127.0.0.1:15002=127.0.0.1:15007 \
    banner=127.0.0.1:15003=127.0.0.1:15008 to-user=127.0.0.1:15004=127.0.0.1:15106 http=127.0.0.1:15005=127.0.0.1:15009 \
    mem=127.0.0.1:15010=127.0.0.1:15011
config in-k server auto 15022 echo=127.0.0.1:15006=127.0.0.1:9000 rae=127.0.0.1:15007=127.0.0.1:9001 \
    banner=127.0.0.1:15008=127.0.0.1:9002 mem=127.0.0.1:15011=127.0.0.1:9003
config in-u server off 15023 echo=127.0.0.1:15106=127.0.0.1:9000
config out-u client off 15024 to-kernel=127.0.0.1:15201=127.0.0.1:15006
# in-h: HTTP authorization on plaintext the kernel opened: GET /allowed* from the client's identity, nothing else
config in-h server auto 15025 http=127.0.0.1:15009=127.0.0.1:9080
printf 'authorization: {policyDir: /rm/policies, defaultAction: DENY}\n' >>"$cfg/in-h.yaml"
mkdir -p "$cfg/policies"
cat >"$cfg/policies/allow.yaml" <<'YAML'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: vm-allow, namespace: default}
spec:
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/client"]}}]
    to: [{operation: {methods: ["GET"], paths: ["/allowed*"]}}]
YAML
chmod 0600 "$cfg"/*.key

args=()
for b in "${bins[@]}"; do args+=(--bin "$b"); done
# The kernel's AEAD for the mesh's cipher suite, AES-128-GCM: the guest has no modprobe for the crypto API to load
# its parts on demand, so they are loaded up front (AES-NI, the CTR and GCM templates, GHASH); and ChaCha20-Poly1305.
for m in aesni_intel ctr gcm ghash_generic chacha20poly1305 chacha_x86_64 poly1305_x86_64; do args+=(--module "$m"); done
status=0
bash "$src/tests/vm/vm-run.sh" "${args[@]}" --file "$cfg:/rm" --timeout "$vm_timeout" --mem "$vm_mem" -- \
    "$src/tests/vm/guest-kernel-tls.sh" /rm "$conns" "$step" \
    | tee "$work/console.log" || status=$?
if [ "$status" -ne 0 ]; then
    echo "FAIL: the checks in the VM failed (status $status)"
    exit 1
fi
# the guest's own verdicts, counted here too: a guest that printed nothing would not pass
oks=$(grep -c '^kernel-tls: ok: ' "$work/console.log")
if [ "$oks" -lt 31 ] || ! grep -q '^kernel-tls: all checks passed' "$work/console.log"; then
    echo "FAIL: the VM reported only $oks passed checks"
    exit 1
fi
echo "ok: $oks checks passed in the VM"
exit 0
