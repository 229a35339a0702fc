#!/usr/bin/env bash
#
# The TLS defaults ringmesh-control gives the OpenSSL contexts that gRPC makes (control/openssl_defaults.h): with
# Debian's OpenSSL configuration, a TLS 1.3 handshake with the control plane gets no session tickets (OpenSSL's
# default is two) and the log says so; with an OpenSSL configuration file that sets its own TLS defaults (ssl_conf),
# the administrator's settings stay in force (here: one ticket) and the log says that instead.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_require_cmds openssl jq
rm_setup_no_netns
rm_control_init

BASE_PORT=$((20000 + $$ % 12000)) # below the kernel's ephemeral ports (32768-), which a client's connection may hold

# tickets PORT: how many NewSessionTicket messages a TLS 1.3 client gets (it stays connected for a second to read
# what the server sends after the handshake)
tickets() {
    local out=$RM_TMP/s_client.$1 i
    for i in 1 2 3; do
        if sleep 1 | timeout 10 openssl s_client -connect "127.0.0.1:$1" -tls1_3 -alpn h2 -msg >"$out" 2>&1 &&
            grep -q "Server certificate" "$out"; then
            grep -c "NewSessionTicket" "$out" || true
            return 0
        fi
        sleep 0.5
    done
    cat "$out" >&2
    rm_fail "no TLS 1.3 handshake with the control plane on port $1"
}

# start NAME PORT [env assignments...]
start() {
    local name=$1 port=$2
    shift 2
    rm_bg "control-$name" - "$RM_TMP/logs/control-$name.log" env "$@" "$RM_CONTROL_BIN" --listen "127.0.0.1:$port" \
        --admin-listen off --config-dir "$RM_TMP/control/mesh" --state-dir "$RM_TMP/control/state" \
        --jwks "$RM_TMP/control/jwks.json"
    rm_wait_log "$RM_TMP/logs/control-$name.log" '.event == "control_started"' 15 >/dev/null || {
        cat "$RM_TMP/logs/control-$name.log" "$RM_TMP/logs/control-$name.log.stderr" >&2 || true
        rm_fail "ringmesh-control $name did not start"
    }
}

start default "$BASE_PORT"
DEFAULT_TICKETS=$(tickets "$BASE_PORT")
rm_stop control-default

cat >"$RM_TMP/admin-openssl.cnf" <<'EOF'
openssl_conf = admin_init
[admin_init]
ssl_conf = admin_ssl
[admin_ssl]
system_default = admin_defaults
[admin_defaults]
NumTickets = 1
EOF
start admin $((BASE_PORT + 1)) OPENSSL_CONF="$RM_TMP/admin-openssl.cnf"
ADMIN_TICKETS=$(tickets $((BASE_PORT + 1)))
rm_stop control-admin

case_no_tickets() {
    rm_assert_eq "$DEFAULT_TICKETS" 0 "session tickets sent after a TLS 1.3 handshake"
    rm_assert_eq "$(rm_log_count "$RM_TMP/logs/control-default.log" \
        '.event == "tls_defaults" and (.settings | test("NumTickets = 0"))')" 1 "tls_defaults lines saying tickets are off"
}

case_admin_config_kept() {
    rm_assert_eq "$ADMIN_TICKETS" 1 "session tickets with the administrator's NumTickets = 1"
    rm_assert_eq "$(rm_log_count "$RM_TMP/logs/control-admin.log" \
        '.event == "tls_defaults" and (.settings | test("kept"))')" 1 "tls_defaults lines saying the file's settings are kept"
}

rm_case "no TLS 1.3 session tickets from the control plane" case_no_tickets
rm_case "an OpenSSL configuration that sets TLS defaults is left in force" case_admin_config_kept
rm_finish
