#!/usr/bin/env bash
# What a new user meets before anything runs:
#   - the README's two commands started by someone who is not root: each says to run it as root, nothing else;
#   - a machine where network namespaces cannot be entered, made for real: a chroot whose root is not a mount point
#     (as a plain debootstrap directory is), where `ip netns exec` fails with '"mount --make-rslave /" failed'.
#     The harness's skip and the demo's error both quote that failure and say what to do, instead of blaming
#     iptables, and the demo exits 1 (an error), not 77;
#   - a tree in a directory the proxy's UID cannot enter (cloned into /root, mode 0700 on Debian): the demo still
#     runs to its end (the harness runs copies of the binaries from the test's own directory).
# The chroot lives in a private mount namespace (unshare -m) on a tmpfs, with /usr and /etc bound read-only from
# this machine, and the source and build trees bound at their own paths; nothing of it outlives the test.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_require_root
rm_require_cmds unshare chroot setpriv ip
[ -x "$RM_BUILD_DIR/sidecar/ringmesh-proxy" ] || rm_fail "build the tree first ($RM_BUILD_DIR)"

out=$(mktemp /tmp/ringmesh-first-contact.XXXXXX)
trap 'rm -f "$out" "$out.sh"; [ -z "${scripts:-}" ] || rm -rf "$scripts"' EXIT

# as a user who is not root; the scripts are run from copies that user can read, since a tree cloned into /root
# (mode 0700) is out of its reach, and the root check comes before anything else
scripts=$(mktemp -d /tmp/ringmesh-first-contact-scripts.XXXXXX)
chmod 0755 "$scripts"
install -m 0755 "$RM_SOURCE_DIR/scripts/test.sh" "$RM_SOURCE_DIR/scripts/demo.sh" "$scripts/"
rc=0
setpriv --reuid=65534 --regid=65534 --clear-groups bash "$scripts/test.sh" >"$out" 2>&1 || rc=$?
rm_assert_eq "$rc" 2 "test.sh as nobody exits 2"
grep -q '^test.sh: must be run as root' "$out" || rm_fail "test.sh as nobody: $(cat "$out")"
grep -q sudo "$out" && rm_fail "test.sh names sudo, which a minimal Debian has not: $(cat "$out")"
rc=0
setpriv --reuid=65534 --regid=65534 --clear-groups bash "$scripts/demo.sh" >"$out" 2>&1 || rc=$?
rm_assert_eq "$rc" 1 "demo.sh as nobody exits 1"
grep -q 'run it as root' "$out" || rm_fail "demo.sh as nobody: $(cat "$out")"
grep -q sudo "$out" && rm_fail "demo.sh names sudo: $(cat "$out")"

# in a chroot whose root is not a mount point; $1 is the command to run inside
in_chroot() {
    cat >"$out.sh" <<EOF
set -e
d=\$(mktemp -d /tmp/ringmesh-chroot.XXXXXX)
mount -t tmpfs tmpfs "\$d"
r=\$d/root
mkdir -p "\$r/usr" "\$r/etc" "\$r/proc" "\$r/sys" "\$r/dev" "\$r/run" "\$r/tmp" "\$r$RM_SOURCE_DIR" "\$r$RM_BUILD_DIR"
for x in bin sbin lib lib64; do [ -L /\$x ] && ln -s "\$(readlink /\$x)" "\$r/\$x"; done
mount --bind /usr "\$r/usr"
mount -o remount,bind,ro "\$r/usr"
mount --bind /etc "\$r/etc"
mount -o remount,bind,ro "\$r/etc"
mount -t proc proc "\$r/proc"
mount --rbind /sys "\$r/sys"
mount --rbind /dev "\$r/dev"
mount -t tmpfs tmpfs "\$r/run"
mount --bind "$RM_SOURCE_DIR" "\$r$RM_SOURCE_DIR"
mount --bind "$RM_BUILD_DIR" "\$r$RM_BUILD_DIR"
exec chroot "\$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin RM_BUILD_DIR="$RM_BUILD_DIR" \
    RM_SOURCE_DIR="$RM_SOURCE_DIR" /bin/bash -c "\$1"
EOF
    unshare -m --propagation private bash "$out.sh" "$1"
}

rc=0
in_chroot "source $RM_SOURCE_DIR/tests/e2e/lib.sh && rm_require_netns" >"$out" 2>&1 || rc=$?
rm_assert_eq "$rc" 77 "the harness skips where namespaces cannot be entered"
grep -q "^SKIP: cannot enter a network namespace: 'ip netns exec' failed: .*make-rslave" "$out" ||
    rm_fail "the skip does not quote ip netns exec's error: $(cat "$out")"
grep -q "bind-mount the chroot's root onto itself" "$out" || rm_fail "the skip does not say what to do: $(cat "$out")"
grep -qi "iptables" "$out" && rm_fail "the skip blames iptables: $(cat "$out")"

rc=0
in_chroot "bash $RM_SOURCE_DIR/scripts/demo.sh --no-build" >"$out" 2>&1 || rc=$?
rm_assert_eq "$rc" 1 "the demo fails (1, not 77) where namespaces cannot be entered"
grep -q "^demo.sh cannot run on this machine: cannot enter a network namespace: 'ip netns exec' failed: .*make-rslave" \
    "$out" || rm_fail "the demo does not quote ip netns exec's error: $(cat "$out")"
grep -q '^SKIP' "$out" && rm_fail "the demo says SKIP: $(cat "$out")"

# binaries in a directory closed to the proxy's UID, as under /root
closed=$(mktemp -d /tmp/ringmesh-closed.XXXXXX)
chmod 0700 "$closed"
cp "$RM_BUILD_DIR/sidecar/ringmesh-proxy" "$closed/"
cp -r "$RM_BUILD_DIR/tests/tools" "$closed/tools"
rc=0
RM_PROXY_BIN=$closed/ringmesh-proxy RM_TOOLS=$closed/tools timeout 240 \
    bash "$RM_SOURCE_DIR/scripts/demo.sh" --no-build >"$out" 2>&1 || rc=$?
rm -rf "$closed"
[ "$rc" = 0 ] || {
    cat "$out" >&2
    rm_fail "the demo with its binaries in a 0700 directory exited $rc"
}
grep -q '^  denied: HTTP 403' "$out" || rm_fail "the demo from a 0700 directory did not run through: $(cat "$out")"
rm_log "ok: the demo runs with its binaries in a directory closed to UID 1337"
rm_log PASS
