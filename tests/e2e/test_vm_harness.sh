#!/usr/bin/env bash
# The virtual-machine harness (tests/vm/vm-run.sh, tests/vm/vm-kernel.sh), end to end: four boots of Debian's kernel
# under qemu's software emulation, which the kernel TLS tests rely on.
#
#   - the guest script's exit status is vm-run.sh's, whatever the script prints (a fake end marker included), and
#     its arguments arrive word for word;
#   - host-built, dynamically linked programs given with --bin run unchanged in the guest (ringmeshctl issues and
#     verifies an SVID there, ringmesh-proxy starts), and files and directories given with --file arrive intact;
#   - the guest kernel offers kernel TLS (tcp_available_ulp lists tls, /proc/net/tls_stat exists), the guest has no
#     network interface but lo, and /init set up what it promises (mounts, hostname, users, VM=1, cwd /tmp);
#   - a guest that never reports makes vm-run.sh exit 125 once --timeout has passed, and the qemu it started (by the
#     PID it records) is gone, as is its temporary directory;
#   - bad usage exits 2, a module the kernel does not have exits 125 before any boot.
#
# Needs root (the first run downloads the kernel with apt), qemu-system-x86, busybox-static and cpio; skips only when
# those are missing or when the kernel cannot be downloaded (vm-kernel.sh exit 3: no network).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rm_require_root
rm_require_cmds qemu-system-x86_64 busybox cpio gzip ldd
rm_setup_no_netns
[ -x "$RM_CTL_BIN" ] || rm_fail "$RM_CTL_BIN is not built"

VM_RUN=$RM_SOURCE_DIR/tests/vm/vm-run.sh
VM_KERNEL=$RM_SOURCE_DIR/tests/vm/vm-kernel.sh
VM_TMPDIR=$RM_TMP/vmtmp # vm-run.sh's and vm-kernel.sh's temporary directories go here, to check they are removed
mkdir -p "$VM_TMPDIR"
chmod 0755 "$VM_TMPDIR" # apt's _apt user downloads into a directory below it

rm_log "fetching (or checking) the guest kernel"
kernel_rc=0
VM_CACHE=$(TMPDIR=$VM_TMPDIR bash "$VM_KERNEL" 2>"$RM_TMP/logs/vm-kernel.stderr") || kernel_rc=$?
case $kernel_rc in
0) ;;
3) rm_skip "Debian's kernel cannot be downloaded: $(tail -n 1 "$RM_TMP/logs/vm-kernel.stderr")" ;;
*) rm_fail "tests/vm/vm-kernel.sh failed (exit $kernel_rc): $(cat "$RM_TMP/logs/vm-kernel.stderr")" ;;
esac
VM_KVER=$(sed -n 's/^kernel=//p' "$VM_CACHE/vm-kernel.stamp")
rm_log "guest kernel $VM_KVER in $VM_CACHE; this machine runs $(uname -r)" \
    "(tcp_available_ulp: $(cat /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null))"

# vm NAME [vm-run.sh options...] -- [ARGS...]: runs $RM_TMP/NAME.sh in the VM; console in $RM_TMP/logs/NAME.log,
# vm-run.sh's messages in NAME.log.stderr; VM_RC = its exit status, VM_MS = how long it took
VM_RC=0
VM_MS=0
vm() {
    local name=$1 t0
    shift
    local opts=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        opts+=("$1")
        shift
    done
    [ $# -gt 0 ] && shift
    t0=$(rm_now_ms)
    VM_RC=0
    TMPDIR=$VM_TMPDIR bash "$VM_RUN" --kernel-cache "$VM_CACHE" "${opts[@]}" -- "$RM_TMP/$name.sh" "$@" \
        >"$RM_TMP/logs/$name.log" 2>"$RM_TMP/logs/$name.log.stderr" || VM_RC=$?
    VM_MS=$(($(rm_now_ms) - t0))
    rm_log "$name: vm-run.sh exited $VM_RC after $VM_MS ms"
}

# check NAME KEY: the value the guest printed as "CHECK KEY=value" (the last one)
check() {
    sed -n "s/^CHECK $2=//p" "$RM_TMP/logs/$1.log" | tail -n 1
}

# no_temporary_left: vm-run.sh removed its temporary directory
no_temporary_left() {
    local left
    left=$(find "$VM_TMPDIR" -mindepth 1 -maxdepth 1 -name 'rm-vm*' | head -n 3)
    [ -z "$left" ] || rm_fail "temporary directories left behind: $left"
    rm_log "ok: no temporary directory left"
}

# ---------------------------------------------------------------------------------------------------------------

case_status() {
    # The script prints a fake end marker (no nonce, then a made-up one) before exiting 3.
    cat >"$RM_TMP/status.sh" <<'EOF'
echo "CHECK argc=$#"
i=0
for a in "$@"; do
    i=$((i + 1))
    echo "CHECK arg$i=[$a]"
done
echo "RM_VM_EXIT=0"
echo "RM_VM_EXIT=0 run=0000000000000000"
exit 3
EOF
    vm status -- "two words" "it's \$HOME" ""
    rm_assert_eq "$VM_RC" 3 "a guest script exiting 3 makes vm-run.sh exit 3"
    rm_assert_eq "$(check status argc)" 3 "argument count in the guest"
    rm_assert_eq "$(check status arg1)" "[two words]" "first argument"
    rm_assert_eq "$(check status arg2)" "[it's \$HOME]" "second argument (quote and dollar kept)"
    rm_assert_eq "$(check status arg3)" "[]" "third argument (empty)"
    grep -q "guest script exited with status 3" "$RM_TMP/logs/status.log.stderr" ||
        rm_fail "vm-run.sh did not report the status: $(cat "$RM_TMP/logs/status.log.stderr")"
    no_temporary_left
}

case_binaries_and_files() {
    local blob=$RM_TMP/blob.bin tree=$RM_TMP/tree id=spiffe://example.org/ns/vm/sa/harness
    head -c 1048576 /dev/urandom >"$blob"
    mkdir -p "$tree/sub/deeper"
    printf 'first\n' >"$tree/a.txt"
    printf 'second\n' >"$tree/sub/deeper/b.txt"
    chmod 0640 "$tree/a.txt"
    cat >"$RM_TMP/bins.sh" <<EOF
set -e
echo "CHECK ctl_path=\$(command -v ringmeshctl)"
ringmeshctl --help >help.txt
grep -q "svid verify" help.txt && echo "CHECK help=lists svid verify"
ringmeshctl svid issue --ca --trust-domain example.org --cert ca.pem --key ca.key --ttl 1h
ringmeshctl svid issue --ca-cert ca.pem --ca-key ca.key --id $id --cert svid.pem --key svid.key
echo "CHECK verified=\$(ringmeshctl svid verify --bundle ca.pem --cert svid.pem --trust-domain example.org)"
rc=0
ringmeshctl svid verify --bundle ca.pem --cert svid.pem --expect spiffe://example.org/other || rc=\$?
echo "CHECK wrong_id_rc=\$rc"
echo "CHECK proxy_usage=\$($RM_PROXY_BIN --help 2>&1 | head -n 1)"
echo "CHECK blob=\$(sha256sum /data/blob.bin | cut -d' ' -f1)"
echo "CHECK tree_a=\$(sha256sum /data/tree/a.txt | cut -d' ' -f1) \$(stat -c %a /data/tree/a.txt)"
echo "CHECK tree_b=\$(sha256sum /data/tree/sub/deeper/b.txt | cut -d' ' -f1)"
echo "CHECK tmp_blob=\$(sha256sum /tmp/seeded/blob.bin | cut -d' ' -f1)"
EOF
    vm bins --bin "$RM_CTL_BIN" --bin "$RM_PROXY_BIN" --file "$blob:/data/blob.bin" --file "$tree:/data/tree" \
        --file "$blob:/tmp/seeded/blob.bin" --
    rm_assert_eq "$VM_RC" 0 "a guest script exiting 0 makes vm-run.sh exit 0"
    rm_assert_eq "$(check bins ctl_path)" "$(realpath -s "$RM_CTL_BIN")" \
        "--bin puts ringmeshctl at its host path, on PATH"
    rm_assert_eq "$(check bins help)" "lists svid verify" "ringmeshctl --help runs in the guest"
    rm_assert_eq "$(check bins verified)" "$id" "ringmeshctl issues and verifies an SVID in the guest"
    rm_assert_eq "$(check bins wrong_id_rc)" 1 "ringmeshctl svid verify rejects another ID in the guest"
    rm_assert_eq "$(check bins proxy_usage | cut -d' ' -f1-2)" "usage: ringmesh-proxy" \
        "ringmesh-proxy (liburing, nghttp2, libcyaml, protobuf-c) starts in the guest"
    rm_assert_eq "$(check bins blob)" "$(sha256sum <"$blob" | cut -d' ' -f1)" "--file: 1 MiB file intact"
    rm_assert_eq "$(check bins tree_a)" "$(sha256sum <"$tree/a.txt" | cut -d' ' -f1) 640" \
        "--file: directory copied, contents and mode kept"
    rm_assert_eq "$(check bins tree_b)" "$(sha256sum <"$tree/sub/deeper/b.txt" | cut -d' ' -f1)" \
        "--file: directory copied recursively"
    rm_assert_eq "$(check bins tmp_blob)" "$(sha256sum <"$blob" | cut -d' ' -f1)" \
        "--file into /tmp survives the tmpfs mounted there"
    no_temporary_left
}

case_kernel_tls() {
    cat >"$RM_TMP/ktls.sh" <<'EOF'
echo "CHECK kernel=$(uname -r)"
echo "CHECK ulp_tls=$(tr ' ' '\n' </proc/sys/net/ipv4/tcp_available_ulp | grep -cx tls)"
[ -e /proc/net/tls_stat ] && echo "CHECK tls_stat=present"
echo "CHECK tls_module=$(grep -c '^tls ' /proc/modules)"
echo "CHECK interfaces=$(ls /sys/class/net | tr '\n' ' ')"
echo "CHECK lo=$(ip -o -4 addr show dev lo | awk '{ print $4 }') $(cat /sys/class/net/lo/operstate)"
echo "CHECK hostname=$(hostname)"
echo "CHECK vm=$VM cwd=$(pwd)"
echo "CHECK mounts=$(awk '$2 ~ /^\/(proc|sys|dev|tmp|run)$/ { print $2 ":" $3 }' /proc/mounts | sort | tr '\n' ' ')"
echo "CHECK proxy_user=$(grep '^ringmesh:' /etc/passwd | cut -d: -f3,4) $(grep '^ringmesh:' /etc/group | cut -d: -f3)"
echo "CHECK as_proxy=$(setpriv --reuid 1337 --regid 1337 --clear-groups id -u)"
EOF
    vm ktls --bin "$(command -v setpriv)" --
    rm_assert_eq "$VM_RC" 0 "kernel TLS guest script exit status"
    rm_assert_eq "$(check ktls kernel)" "$VM_KVER" "the guest runs the cached Debian kernel"
    rm_assert_eq "$(check ktls ulp_tls)" 1 "the guest's tcp_available_ulp lists tls"
    rm_assert_eq "$(check ktls tls_stat)" present "the guest has /proc/net/tls_stat"
    rm_assert_eq "$(check ktls tls_module)" 1 "tls.ko is loaded"
    rm_assert_eq "$(check ktls interfaces)" "lo " "the guest's only network interface is lo"
    rm_assert_eq "$(check ktls lo)" "127.0.0.1/8 unknown" "lo is up with 127.0.0.1"
    rm_assert_eq "$(check ktls hostname)" ringmesh-vm "the guest's hostname"
    rm_assert_eq "$(check ktls vm)" "1 cwd=/tmp" "VM=1 and cwd /tmp"
    rm_assert_eq "$(check ktls mounts)" "/dev:devtmpfs /proc:proc /run:tmpfs /sys:sysfs /tmp:tmpfs " \
        "the guest's mounts"
    rm_assert_eq "$(check ktls proxy_user)" "1337:1337 1337" "the proxy's user and group in /etc/passwd, /etc/group"
    rm_assert_eq "$(check ktls as_proxy)" 1337 "util-linux setpriv (--bin) runs a command as UID 1337"
    no_temporary_left
}

case_timeout() {
    local pid
    cat >"$RM_TMP/hang.sh" <<'EOF'
echo "CHECK started=yes"
sleep 600
EOF
    vm hang --timeout 20 --pid-file "$RM_TMP/hang.pid" --
    rm_assert_eq "$VM_RC" 125 "a guest that never reports makes vm-run.sh exit 125"
    rm_assert_eq "$(check hang started)" yes "the hanging script did start"
    [ "$VM_MS" -ge 20000 ] || rm_fail "vm-run.sh gave up after $VM_MS ms, before the 20 s timeout"
    [ "$VM_MS" -le 45000 ] || rm_fail "vm-run.sh took $VM_MS ms with a 20 s timeout"
    rm_log "ok: gave up after $VM_MS ms (timeout 20 s)"
    grep -q "reported no status within 20 s" "$RM_TMP/logs/hang.log.stderr" ||
        rm_fail "vm-run.sh did not say why: $(cat "$RM_TMP/logs/hang.log.stderr")"
    pid=$(cat "$RM_TMP/hang.pid")
    [[ "$pid" =~ ^[0-9]+$ ]] || rm_fail "--pid-file holds '$pid'"
    grep -q "qemu PID $pid " "$RM_TMP/logs/hang.log.stderr" || rm_fail "vm-run.sh did not print qemu's PID $pid"
    if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q qemu; then
        rm_fail "qemu (PID $pid) is still running"
    fi
    rm_log "ok: qemu (PID $pid) is gone"
    no_temporary_left
}

case_refusals() {
    printf 'exit 0\n' >"$RM_TMP/never.sh"
    vm never --bogus-option --
    rm_assert_eq "$VM_RC" 2 "an unknown option exits 2"
    vm never --timeout 0 --
    rm_assert_eq "$VM_RC" 2 "a zero timeout exits 2"
    vm never --module no_such_module_here --pid-file "$RM_TMP/never.pid" --
    rm_assert_eq "$VM_RC" 125 "a module the guest kernel does not have exits 125"
    grep -q "no module 'no_such_module_here'" "$RM_TMP/logs/never.log.stderr" ||
        rm_fail "vm-run.sh did not name the module: $(cat "$RM_TMP/logs/never.log.stderr")"
    [ ! -e "$RM_TMP/never.pid" ] || rm_fail "qemu was started although the module is missing"
    no_temporary_left
}

rm_case "guest exit status and arguments" case_status
rm_case "host binaries and files in the guest" case_binaries_and_files
rm_case "kernel TLS in the guest" case_kernel_tls
rm_case "timeout" case_timeout
rm_case "refusals before boot" case_refusals
rm_finish
