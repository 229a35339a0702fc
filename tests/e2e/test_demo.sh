#!/usr/bin/env bash
# The README's first command: scripts/demo.sh (here with --no-build, on the tree ctest built) runs to its end and
# is clean: it exits 0, the allowed GET is answered 200, the DELETE 403 with the deciding policy named, the impostor
# refused, the demo's own policies pass `ringmeshctl policy lint` with no warning, and certificate times are shown
# as dates, not as seconds since the epoch.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_require_root
rm_require_cmds ip iptables ss jq curl python3
rm_require_netns

out=$(mktemp /tmp/ringmesh-demo-test.XXXXXX)
trap 'rm -f "$out"' EXIT
rc=0
RM_BUILD_DIR="$RM_BUILD_DIR" timeout 240 bash "$RM_SOURCE_DIR/scripts/demo.sh" --no-build >"$out" 2>&1 || rc=$?
[ "$rc" = 0 ] || {
    cat "$out" >&2
    rm_fail "demo.sh exited $rc"
}
expect() {
    grep -qE -- "$1" "$out" || {
        cat "$out" >&2
        rm_fail "the demo's output has no line matching /$1/ ($2)"
    }
    rm_log "ok: $2"
}
expect '^  allowed: HTTP 200' "the GET is allowed"
expect '^  denied: HTTP 403' "the DELETE is denied"
expect '"policy": "shop/no-deletes"' "the deny names its policy"
expect '^  refused: ' "the impostor is refused"
expect '2 AuthorizationPolicy, 0 PeerAuthentication; 0 errors, 0 warnings' "the demo's policies lint clean"
expect '"not_after": "[0-9]{4}-[0-9]{2}-[0-9]{2}T' "notAfter shown as a date"
if grep -qE '"(notAfter|not_after)": [0-9]' "$out"; then
    rm_fail "a certificate time is printed as a number: $(grep -E '"(notAfter|not_after)": [0-9]' "$out" | head -1)"
fi
if grep -qE ': warning:|UNEXPECTED|FAILED' "$out"; then
    cat "$out" >&2
    rm_fail "the demo printed a warning or a failure"
fi
rm_log PASS
