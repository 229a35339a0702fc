#!/usr/bin/env bash
# ringmesh-init end to end, in network namespaces made here: the rules land in the nat table as --dry-run shows
# them, a rerun doubles nothing, outbound and inbound TCP are really redirected (and the exclusions really are
# not), --cleanup leaves nothing behind, and failures exit with the documented codes.
#
# Addresses: 198.18.0.1/24 and 198.18.5.1/24 on an interface of the pod namespace (a veth whose peer stays in the
# pod too, as dummy interfaces are not available everywhere), 198.18.1.1/24 (pod) and 198.18.1.2/24 (peer) on a
# veth pair between pod and peer. Every process started here is stopped by its PID on exit.
set -u

skip() {
    echo "SKIP: $*"
    exit 77
}

[ "$(id -u)" = 0 ] || skip "needs root"
: "${RM_BUILD_DIR:?RM_BUILD_DIR must point at the build directory}"
INIT="$RM_BUILD_DIR/sidecar/ringmesh-init"
[ -x "$INIT" ] || {
    echo "FAIL: $INIT not built"
    exit 1
}
for tool in ip iptables iptables-save ip6tables-save socat setpriv timeout ss; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed"
done

POD="rm-init-pod-$$"
PEER="rm-init-peer-$$"
TMP="$(mktemp -d)"
PIDS=()
FAILURES=0

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    ip netns del "$POD" 2>/dev/null
    ip netns del "$PEER" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

ip netns add "$POD" 2>/dev/null || skip "ip netns is not available"
ip netns add "$PEER" || exit 1

fail() {
    echo "FAIL: $*"
    FAILURES=$((FAILURES + 1))
}

ok() {
    echo "ok: $*"
}

# The network: lo up everywhere, an interface with two local subnets in the pod, a veth pair to the peer.
ip -n "$POD" link set lo up &&
    ip -n "$PEER" link set lo up &&
    ip -n "$POD" link add local0 type veth peer name local1 &&
    ip -n "$POD" addr add 198.18.0.1/24 dev local0 &&
    ip -n "$POD" addr add 198.18.5.1/24 dev local0 &&
    ip -n "$POD" link set local0 up &&
    ip -n "$POD" link set local1 up &&
    ip -n "$POD" link add veth0 type veth peer name veth1 netns "$PEER" &&
    ip -n "$POD" addr add 198.18.1.1/24 dev veth0 &&
    ip -n "$PEER" addr add 198.18.1.2/24 dev veth1 &&
    ip -n "$POD" link set veth0 up &&
    ip -n "$PEER" link set veth1 up || {
    echo "FAIL: could not set up the namespaces"
    exit 1
}

in_pod() {
    ip netns exec "$POD" "$@"
}

# Our rules as iptables-save prints them: lines of our chains and jumps into them, in table order.
our_rules() {
    in_pod "$1" -t nat | grep -E '^-A RINGMESH_|^-A .* -j RINGMESH_'
}

count_ours() {
    in_pod "$1" -t nat | grep -cE 'RINGMESH_'
}

FLAGS=(--exclude-outbound-ports 22,5432 --exclude-outbound-cidrs 198.18.5.0/24,2001:db8::/32
    --exclude-inbound-ports 9000 --ipv6 auto)

# ---- nothing changes on --dry-run or on a bad argument -------------------------------------------------------
in_pod "$INIT" --dry-run "${FLAGS[@]}" >"$TMP/dry" 2>"$TMP/dry.err"
rc=$?
[ "$rc" = 0 ] || fail "--dry-run exited $rc: $(cat "$TMP/dry.err")"
[ "$(count_ours iptables-save)" = 0 ] && [ "$(count_ours ip6tables-save)" = 0 ] &&
    ok "--dry-run changed nothing" || fail "--dry-run changed the tables"
grep -q '^# .*iptables-restore input' "$TMP/dry" && grep -q '^# .*ip6tables-restore input' "$TMP/dry" ||
    fail "--dry-run output lacks its v4/v6 header comments"

in_pod "$INIT" "${FLAGS[@]}" --exclude-outbound-ports 22,70000 >"$TMP/bad" 2>&1
rc=$?
[ "$rc" = 2 ] || fail "invalid port: exit $rc, expected 2"
grep -q '"flag":"--exclude-outbound-ports"' "$TMP/bad" && grep -q '"value":"70000"' "$TMP/bad" &&
    ok "invalid port named with its flag, exit 2" || fail "invalid port error does not name flag and value: $(cat "$TMP/bad")"
[ "$(count_ours iptables-save)" = 0 ] || fail "a rejected command line changed the tables"

# ---- apply ---------------------------------------------------------------------------------------------------
in_pod "$INIT" "${FLAGS[@]}" >"$TMP/apply1" 2>&1
rc=$?
[ "$rc" = 0 ] || fail "ringmesh-init exited $rc: $(cat "$TMP/apply1")"
V6=0
grep -q '"event":"ipv6_mode".*"enabled":true' "$TMP/apply1" && V6=1
echo "IPv6 rules: $V6"

# Lines the rules must hold, whatever the implementation details.
EXPECTED_V4=(
    "-A OUTPUT -p tcp -j RINGMESH_OUTPUT"
    "-A PREROUTING -p tcp -j RINGMESH_INBOUND"
    "-A RINGMESH_OUTPUT -m owner --uid-owner 1337 -j RETURN"
    "-A RINGMESH_OUTPUT -m owner --gid-owner 1337 -j RETURN"
    "-A RINGMESH_OUTPUT -d 127.0.0.1/32 -o lo -j RETURN"
    "-A RINGMESH_OUTPUT -p tcp -m tcp --dport 22 -j RETURN"
    "-A RINGMESH_OUTPUT -p tcp -m tcp --dport 5432 -j RETURN"
    "-A RINGMESH_OUTPUT -d 198.18.5.0/24 -j RETURN"
    "-A RINGMESH_OUTPUT -j RINGMESH_REDIRECT"
    "-A RINGMESH_REDIRECT -p tcp -j REDIRECT --to-ports 15001"
    "-A RINGMESH_INBOUND -p tcp -m tcp --dport 15001 -j RETURN"
    "-A RINGMESH_INBOUND -p tcp -m tcp --dport 15006 -j RETURN"
    "-A RINGMESH_INBOUND -p tcp -m tcp --dport 15021 -j RETURN"
    "-A RINGMESH_INBOUND -p tcp -m tcp --dport 15090 -j RETURN"
    "-A RINGMESH_INBOUND -p tcp -m tcp --dport 9000 -j RETURN"
    "-A RINGMESH_INBOUND -p tcp -j RINGMESH_IN_REDIRECT"
    "-A RINGMESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006"
)
our_rules iptables-save >"$TMP/v4.1"
missing=0
for line in "${EXPECTED_V4[@]}"; do
    grep -qxF -- "$line" "$TMP/v4.1" || {
        fail "IPv4 rule missing: $line"
        missing=1
    }
done
[ "$missing" = 0 ] && ok "IPv4 rules present"
grep -q 2001:db8 "$TMP/v4.1" && fail "an IPv6 CIDR reached the IPv4 rules"

# The saved table holds exactly what --dry-run printed, no more, no less.
sed -n '/(ipv4/,/^COMMIT/p' "$TMP/dry" | grep '^-A ' | sort >"$TMP/dry.v4"
diff <(sort "$TMP/v4.1") "$TMP/dry.v4" >/dev/null && ok "IPv4 table equals --dry-run output" ||
    fail "IPv4 table differs from --dry-run output: $(diff <(sort "$TMP/v4.1") "$TMP/dry.v4")"
n4=$(grep -o '"event":"iptables_applied","family":"ipv4","rules":[0-9]*' "$TMP/apply1" | grep -o '[0-9]*$')
[ -n "$n4" ] && [ "$n4" = "$(wc -l <"$TMP/v4.1")" ] && ok "logged IPv4 rule count $n4 matches the table" ||
    fail "logged IPv4 rule count '${n4}' != $(wc -l <"$TMP/v4.1") rules in the table"

# Kernel TLS: ringmesh-init (with NET_ADMIN) tries the TLS layer once, which loads the tls module where there is one,
# and says what it found; that must be what the kernel offers now.
ktls=$(grep -o '"event":"kernel_tls","available":[a-z]*' "$TMP/apply1" | grep -o '[a-z]*$')
want=false
grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp && want=true
[ "$ktls" = "$want" ] && ok "kernel_tls logged with available $ktls, as tcp_available_ulp says" ||
    fail "kernel_tls logged available '${ktls}', tcp_available_ulp says $want"

if [ "$V6" = 1 ]; then
    our_rules ip6tables-save >"$TMP/v6.1"
    for line in "-A OUTPUT -p tcp -j RINGMESH_OUTPUT" "-A RINGMESH_OUTPUT -d ::1/128 -o lo -j RETURN" \
        "-A RINGMESH_OUTPUT -d 2001:db8::/32 -j RETURN" "-A RINGMESH_OUTPUT -m owner --uid-owner 1337 -j RETURN" \
        "-A RINGMESH_REDIRECT -p tcp -j REDIRECT --to-ports 15001" \
        "-A RINGMESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006"; do
        grep -qxF -- "$line" "$TMP/v6.1" || fail "IPv6 rule missing: $line"
    done
    grep -q 198.18 "$TMP/v6.1" && fail "an IPv4 CIDR reached the IPv6 rules"
    sed -n '/(ipv6/,/^COMMIT/p' "$TMP/dry" | grep '^-A ' | sort >"$TMP/dry.v6"
    diff <(sort "$TMP/v6.1") "$TMP/dry.v6" >/dev/null && ok "IPv6 table equals --dry-run output" ||
        fail "IPv6 table differs from --dry-run output"
fi

# ---- a rerun doubles nothing, and repairs a doubled jump and a foreign rule in our chain -----------------------
in_pod "$INIT" "${FLAGS[@]}" >"$TMP/apply2" 2>&1 || fail "second run failed: $(cat "$TMP/apply2")"
our_rules iptables-save >"$TMP/v4.2"
diff "$TMP/v4.1" "$TMP/v4.2" >/dev/null && ok "second run left the IPv4 rules as they were" ||
    fail "second run changed the IPv4 rules: $(diff "$TMP/v4.1" "$TMP/v4.2")"
[ -z "$(sort "$TMP/v4.2" | uniq -d)" ] || fail "duplicate rules after the second run: $(sort "$TMP/v4.2" | uniq -d)"
if [ "$V6" = 1 ]; then
    our_rules ip6tables-save >"$TMP/v6.2"
    diff "$TMP/v6.1" "$TMP/v6.2" >/dev/null && ok "second run left the IPv6 rules as they were" ||
        fail "second run changed the IPv6 rules"
fi

in_pod iptables -t nat -A OUTPUT -p tcp -j RINGMESH_OUTPUT &&
    in_pod iptables -t nat -A RINGMESH_OUTPUT -p tcp --dport 1 -j RETURN || fail "could not add the test's extra rules"
[ "$(in_pod iptables-save -t nat | grep -cxF -- '-A OUTPUT -p tcp -j RINGMESH_OUTPUT')" = 2 ] ||
    fail "the extra jump was not added"
in_pod "$INIT" "${FLAGS[@]}" >"$TMP/apply3" 2>&1 || fail "third run failed: $(cat "$TMP/apply3")"
our_rules iptables-save >"$TMP/v4.3"
diff "$TMP/v4.1" "$TMP/v4.3" >/dev/null && ok "a rerun removed the doubled jump and the foreign rule" ||
    fail "after a rerun over a doubled jump: $(diff "$TMP/v4.1" "$TMP/v4.3")"

# ---- the redirect works for real ------------------------------------------------------------------------------
# Each listener answers with a banner saying which port the connection landed on.
listen() { # namespace, socat listen address, banner
    ip netns exec "$1" socat "$2,reuseaddr,fork" EXEC:"echo $3" 2>/dev/null &
    PIDS+=($!)
}
listen "$POD" TCP4-LISTEN:15001 outbound-15001
listen "$POD" TCP4-LISTEN:15006 inbound-15006
listen "$POD" TCP4-LISTEN:8080 direct-8080
listen "$POD" TCP4-LISTEN:5432 direct-5432
listen "$POD" TCP4-LISTEN:9000 direct-9000
listen "$POD" TCP4-LISTEN:15021 direct-15021
[ "$V6" = 1 ] && listen "$POD" TCP6-LISTEN:8080,ipv6only=1 direct6-8080
wanted=6
[ "$V6" = 1 ] && wanted=7
for _ in $(seq 1 100); do
    [ "$(in_pod ss -Hltn | grep -cE ':(15001|15006|8080|5432|9000|15021) ')" -ge "$wanted" ] && break
    sleep 0.1
done

# Prints the banner of whatever answered: namespace, address (socat syntax), then optional setpriv arguments.
connect() {
    local ns="$1" addr="$2"
    shift 2
    if [ $# -gt 0 ]; then
        ip netns exec "$ns" setpriv "$@" -- timeout 5 socat -T3 -u "TCP:$addr" STDOUT 2>/dev/null
    else
        ip netns exec "$ns" timeout 5 socat -T3 -u "TCP:$addr" STDOUT 2>/dev/null
    fi
}

expect() { # description, expected banner, namespace, address, [setpriv args]
    local what="$1" want="$2"
    shift 2
    local got
    got="$(connect "$@")"
    [ "$got" = "$want" ] && ok "$what -> $got" || fail "$what: got '${got}', expected '$want'"
}

AS_PROXY=(--reuid 1337 --regid 1337 --clear-groups)
AS_APP=(--reuid 2000 --regid 2000 --clear-groups)
expect "root app to local 198.18.0.1:8080" outbound-15001 "$POD" 198.18.0.1:8080
expect "root app to remote 198.18.0.77:8080" outbound-15001 "$POD" 198.18.0.77:8080
expect "app UID 2000 to 198.18.0.1:8080" outbound-15001 "$POD" 198.18.0.1:8080 "${AS_APP[@]}"
expect "proxy UID/GID 1337 to 198.18.0.1:8080" direct-8080 "$POD" 198.18.0.1:8080 "${AS_PROXY[@]}"
expect "UID 1337 with GID 2000" direct-8080 "$POD" 198.18.0.1:8080 --reuid 1337 --regid 2000 --clear-groups
expect "UID 2000 with GID 1337" direct-8080 "$POD" 198.18.0.1:8080 --reuid 2000 --regid 1337 --clear-groups
expect "excluded port 5432" direct-5432 "$POD" 198.18.0.1:5432
expect "excluded CIDR 198.18.5.0/24" direct-8080 "$POD" 198.18.5.1:8080
expect "loopback 127.0.0.1" direct-8080 "$POD" 127.0.0.1:8080
[ "$V6" = 1 ] && expect "IPv6 loopback ::1" direct6-8080 "$POD" "[::1]:8080"
expect "peer to pod 198.18.1.1:8080 (inbound)" inbound-15006 "$PEER" 198.18.1.1:8080
expect "peer to excluded inbound port 9000" direct-9000 "$PEER" 198.18.1.1:9000
expect "peer to the proxy's admin port 15021" direct-15021 "$PEER" 198.18.1.1:15021
expect "peer to the proxy's outbound port 15001" outbound-15001 "$PEER" 198.18.1.1:15001

# ---- cleanup --------------------------------------------------------------------------------------------------
in_pod "$INIT" --cleanup >"$TMP/clean1" 2>&1 || fail "--cleanup failed: $(cat "$TMP/clean1")"
[ "$(count_ours iptables-save)" = 0 ] && [ "$(count_ours ip6tables-save)" = 0 ] &&
    ok "--cleanup left no RINGMESH chain or jump" || fail "RINGMESH rules left after --cleanup"
grep -q '"event":"iptables_cleaned","family":"ipv4","jumps_removed":2,"chains_removed":4' "$TMP/clean1" ||
    fail "--cleanup did not log what it removed: $(cat "$TMP/clean1")"
in_pod "$INIT" --cleanup >"$TMP/clean2" 2>&1 && ok "second --cleanup succeeds" ||
    fail "second --cleanup failed: $(cat "$TMP/clean2")"
expect "after cleanup, app to 198.18.0.1:8080" direct-8080 "$POD" 198.18.0.1:8080
expect "after cleanup, peer to 198.18.1.1:8080" direct-8080 "$PEER" 198.18.1.1:8080

# ---- --ipv6 off writes IPv4 only -------------------------------------------------------------------------------
in_pod "$INIT" --ipv6 off >"$TMP/v4only" 2>&1 || fail "--ipv6 off failed: $(cat "$TMP/v4only")"
[ "$(count_ours iptables-save)" -gt 0 ] && [ "$(count_ours ip6tables-save)" = 0 ] &&
    ok "--ipv6 off wrote IPv4 rules only" || fail "--ipv6 off: IPv4 $(count_ours iptables-save), IPv6 $(count_ours ip6tables-save) rules"
grep -q '"family":"ipv6"' "$TMP/v4only" && fail "--ipv6 off logged IPv6 work"
in_pod "$INIT" --cleanup --ipv6 off >/dev/null 2>&1 || fail "--cleanup --ipv6 off failed"
[ "$(count_ours iptables-save)" = 0 ] || fail "--cleanup --ipv6 off left IPv4 rules"

# ---- a failing iptables-restore: its stderr is shown, exit 1 ----------------------------------------------------
mkdir -p "$TMP/bin"
printf '#!/bin/sh\ncat >/dev/null\necho "restore refused: line 3 is bad" >&2\nexit 4\n' >"$TMP/bin/iptables-restore"
chmod +x "$TMP/bin/iptables-restore"
in_pod env PATH="$TMP/bin:$PATH" "$INIT" --ipv6 off >"$TMP/fail.out" 2>"$TMP/fail.err"
rc=$?
[ "$rc" = 1 ] || fail "failing iptables-restore: exit $rc, expected 1"
grep -q "restore refused: line 3 is bad" "$TMP/fail.err" && ok "iptables-restore's stderr is printed" ||
    fail "iptables-restore's stderr was not printed: $(cat "$TMP/fail.err")"
grep -q '"event":"iptables_command_failed".*"exit_status":4' "$TMP/fail.out" ||
    fail "no iptables_command_failed log line: $(cat "$TMP/fail.out")"
[ "$(count_ours iptables-save)" = 0 ] || fail "a failed restore left rules behind"

if [ "$FAILURES" -gt 0 ]; then
    echo "$FAILURES check(s) failed"
    exit 1
fi
echo "all checks passed"
exit 0
