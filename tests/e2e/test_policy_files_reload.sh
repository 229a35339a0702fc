#!/usr/bin/env bash
# A proxy without a control plane reads authorization.policyDir again when it changes on disk. The directory is laid
# out as a Kubernetes ConfigMap volume is: each file a link into "..data", itself a link to a timestamped directory,
# swapped in one rename on every update.
#
#   e2e_client -> [proxy "frontend"] --mTLS--> [proxy "orders": STRICT inbound listener, policies from files,
#              default DENY] -> echo backend
#
# - at start, an ALLOW policy for frontend lets its connections through;
# - an update that does not parse is refused (policies_reload_failed, with file, line and field) and the policies
#   in force stay: frontend is still allowed;
# - an update that allows another identity only is taken (policies_reloaded): frontend is denied, with the decision
#   logged;
# - a second file added to the directory that allows frontend again is read (the directory's files are watched, not
#   only the ones there at start).
#
# Loopback only, in a private network namespace when root, else on free host ports.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup_no_netns
rm_require_cmds curl jq

ID_FRONTEND="spiffe://cluster.local/ns/shop/sa/frontend"
POLICIES="$RM_TMP/policies"
mkdir -p "$POLICIES"

# publish VERSION NAME=CONTENT...: a new timestamped directory with these files, swapped in as a ConfigMap volume
# update does (kubelet's atomic writer): a new "..data" link renamed over the old one, and a link per file into it
publish() {
    local version=$1 kv
    shift
    mkdir "$POLICIES/..$version"
    for kv in "$@"; do printf '%s\n' "${kv#*=}" >"$POLICIES/..$version/${kv%%=*}"; done
    ln -sfn "..$version" "$POLICIES/..data_tmp"
    mv -T "$POLICIES/..data_tmp" "$POLICIES/..data"
    for kv in "$@"; do [ -L "$POLICIES/${kv%%=*}" ] || ln -s "..data/${kv%%=*}" "$POLICIES/${kv%%=*}"; done
}

allow() { # NAME PRINCIPAL: an ALLOW policy for one principal
    printf 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: %s, namespace: shop}\n' "$1"
    printf 'spec:\n  action: ALLOW\n  rules:\n  - from: [{source: {principals: ["%s"]}}]\n' "$2"
}

publish v1 "policy.yaml=$(allow allow-frontend cluster.local/ns/shop/sa/frontend)"

rm_loopback_place 4
read -r P_APP P_IN P_UP P_ADM_O <<<"${RM_PORTS[*]}"
rm_server app "$POD" "127.0.0.1:$P_APP" echo
RM_ORDERS_YAML="authorization: {policyDir: \"$POLICIES\", defaultAction: DENY}" \
    rm_loopback_pair "$P_APP" "$P_IN" "$P_UP" - "$P_ADM_O"
LOG_O="$RM_TMP/logs/proxy-orders.log"

reloads() { # RESULT -> ringmesh_proxy_file_reloads_total{source="policies",result=RESULT}
    rm_metric "$P_ADM_O" "ringmesh_proxy_file_reloads_total{source=\"policies\",result=\"$1\"}"
}

client() { # NAME e2e_client-steps...
    rm_client "$1" "$POD" --timeout 8000 --connect "127.0.0.1:$P_UP" "${@:2}"
}

expect_allowed() { # NAME
    rm_expect_echo "$1" "$POD" "127.0.0.1:$P_UP"
}

expect_denied() {
    client "$1" "send:must not arrive $1" readeof
    [ "$RM_RC" = 0 ] || [ "$RM_RC" = 3 ] || rm_fail "$1: expected close or reset, client exit $RM_RC"
    rm_assert_eq "$(jq -r .received <"$RM_TMP/logs/client-$1.status")" 0 "$1: bytes the client received"
    rm_expect_log "$LOG_O" ".event == \"authz\" and .decision == \"deny\" and .source_principal == \"$ID_FRONTEND\"
        and .reason == \"no ALLOW policy matched\"" "$1: the denial is logged"
    rm_expect_no_log "$(rm_server_log app)" ".event == \"close\" and (.head | startswith(\"must not arrive $1\"))" \
        "$1: the backend received nothing"
}

wait_reloads() { # N: the Nth policies_reloaded line, in RM_LINE
    rm_expect_log_nth "$LOG_O" '.event == "policies_reloaded"' "$1" "policies_reloaded number $1"
}

case_start() {
    rm_expect_log "$LOG_O" ".event == \"policies_loaded\" and .policies == 1 and .default_action == \"DENY\"" \
        "the policies at start"
    expect_allowed first
    sleep 0.5 # several checks of the unchanged directory
    rm_expect_no_log "$LOG_O" '.event == "policies_reloaded" or .event == "policies_reload_failed"' \
        "nothing read again while the directory stays as it is"
}

case_invalid() {
    publish v2 "policy.yaml=$(allow allow-frontend cluster.local/ns/shop/sa/frontend | sed 's/action: ALLOW/acton: ALLOW/')"
    rm_expect_log "$LOG_O" '.event == "policies_reload_failed"' "an update that does not parse is refused" 10
    rm_json "$RM_LINE" .msg | grep -q 'policy.yaml:[0-9]*:[0-9]*: .*acton' ||
        rm_fail "the reason does not give file, line and field: $(rm_json "$RM_LINE" .msg)"
    rm_assert_eq "$(rm_json "$RM_LINE" .outcome)" "the policies in force stay" "outcome"
    expect_allowed after-invalid
    sleep 0.5
    rm_assert_eq "$(rm_log_count "$LOG_O" '.event == "policies_reload_failed"')" 1 "policies_reload_failed lines"
    rm_assert_eq "$(reloads accepted)/$(reloads rejected)" 0/1 "policy reloads accepted/rejected"
}

case_deny() {
    publish v3 "policy.yaml=$(allow allow-payments cluster.local/ns/shop/sa/payments)"
    wait_reloads 1
    rm_assert_eq "$(rm_json "$RM_LINE" .policies)" 1 "policies after the update"
    expect_denied after-update
}

case_added_file() {
    publish v4 "policy.yaml=$(allow allow-payments cluster.local/ns/shop/sa/payments)" \
        "frontend.yaml=$(allow allow-frontend cluster.local/ns/shop/sa/frontend)"
    wait_reloads 2
    rm_assert_eq "$(rm_json "$RM_LINE" .policies)" 2 "policies with the added file"
    rm_assert_eq "$(reloads accepted)/$(reloads rejected)" 2/1 "policy reloads accepted/rejected"
    expect_allowed after-added-file
}

rm_case "policies from the directory at start" case_start
rm_case "an update that does not parse is refused, the policies in force stay" case_invalid
rm_case "an update is taken for new connections" case_deny
rm_case "a file added to the directory is read" case_added_file

rm_stop proxy-orders TERM
rm_assert_eq "$RM_RC" 0 "proxy orders exit status after SIGTERM"
rm_finish
