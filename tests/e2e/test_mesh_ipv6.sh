#!/usr/bin/env bash
# rm-e2e: both-backends
#
# The mesh over IPv6. Pods a and b get addresses from the IPv6 benchmarking prefix 2001:2::/48 (RFC 5180, the
# counterpart of 198.18.0.0/15) on their routed veths; ringmesh-init writes the ip6tables rules. A client in pod a
# connects to [2001:2:0:2::2]:8080: pod a's proxy must recover that IPv6 original destination (IP6T_SO_ORIGINAL_DST),
# open mTLS to it, and pod b's proxy must recover it too and hand the connection to the app on [::1]:8080. A second
# destination that is not in the mesh passes through as plain TCP.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_require_cmds ip6tables
rm_setup

ID_CLIENT="spiffe://cluster.local/ns/shop/sa/frontend"
ID_SERVER="spiffe://cluster.local/ns/shop/sa/orders"

rm_ca_create main cluster.local
rm_svid_issue frontend main "$ID_CLIENT"
rm_svid_issue orders main "$ID_SERVER"

rm_pod_create a
rm_pod_create b
rm_external_create ext

# add_v6 NAME SUBNET: IPv6 next to the pod's IPv4 /30, with the node as the gateway (nodad: usable at once)
add_v6() {
    local name=$1 net=$2 ns
    ns=$(rm_ns "$name")
    ip -n "$RM_NODE_NS" addr add "2001:2:0:$net::1/64" dev "v-$name" nodad
    ip -n "$ns" addr add "2001:2:0:$net::2/64" dev eth0 nodad
    ip -n "$ns" -6 route add default via "2001:2:0:$net::1"
}
ip netns exec "$RM_NODE_NS" sysctl -qw net.ipv6.conf.all.forwarding=1
add_v6 a 1
add_v6 b 2
add_v6 ext 3
B6="[2001:2:0:2::2]:8080"
EXT6="[2001:2:0:3::2]:9000"

rm_server echo b "[::]:8080" echo
rm_server plain ext "[::]:9000" echo
rm_pod_mesh b svid=orders bundle=main
rm_pod_mesh a svid=frontend bundle=main "dest=$B6=$ID_SERVER"
LOG_A=${RM_PROXY_LOG[a]}
LOG_B=${RM_PROXY_LOG[b]}

rm_client v6 a --connect "$B6" "send:over-ipv6" shutdown readeof
rm_assert_eq "$RM_RC" 0 "client over IPv6 through the mesh"
rm_assert_content "$(rm_client_out v6)" "over-ipv6" "the echo came back"
rm_expect_log "$LOG_A" ".event == \"connection\" and .mode == \"mtls\" and .dst == \"$B6\"
    and .peer_id == \"$ID_SERVER\" and .tls_version == \"TLSv1.3\"" \
    "pod a's proxy recovered the IPv6 original destination and used mTLS"
rm_expect_log "$LOG_B" ".event == \"connection\" and .direction == \"inbound\" and .mode == \"mtls\"
    and .dst == \"$B6\" and .peer_id == \"$ID_CLIENT\"" \
    "pod b's proxy recovered the IPv6 original destination on the inbound side"
rm_assert_eq "$(rm_log_select "$(rm_server_log echo)" '.event == "accept"' | jq -r '.peer | sub(":[0-9]+$"; "")' |
    head -n 1)" "[::1]" "the app saw the connection from its own proxy on [::1]"

rm_client plain a --connect "$EXT6" "send:not-in-mesh" shutdown readeof
rm_assert_eq "$RM_RC" 0 "client to a non-mesh IPv6 destination"
rm_assert_content "$(rm_client_out plain)" "not-in-mesh" "the echo came back"
rm_expect_log "$LOG_A" ".event == \"connection\" and .mode == \"passthrough\" and .dst == \"$EXT6\"" \
    "the non-mesh IPv6 destination passed through"

rm_finish
