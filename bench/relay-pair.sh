#!/usr/bin/env bash
# bench/relay-pair.sh - a PAIR_CMD for ../shared/bench/peer-bench.sh that is not a proxy pair at all: two plain TCP
# relays (socat, no TLS, no checks) in the places of the outbound and inbound proxies. What it adds over the direct
# baseline is what two extra hops cost on this machine with next to no work in them: the kernel's loopback TCP and a
# process wake-up per hop. bench/floor.sh runs it; its peer-bench mTLS check fails by design (no TLS).
set -euo pipefail
: "${OUT_LISTEN:?}" "${IN_LISTEN:?}" "${BACKEND:?}"
lo=127.0.0.1
# One process per connection (socat's fork); the latency and keep-alive runs use long-lived connections.
socat "TCP-LISTEN:$OUT_LISTEN,bind=$lo,reuseaddr,fork,nodelay" "TCP:$lo:$IN_LISTEN,nodelay" &
echo $! >>"${PAIR_PIDFILE:-/dev/null}"
socat "TCP-LISTEN:$IN_LISTEN,bind=$lo,reuseaddr,fork,nodelay" "TCP:$BACKEND,nodelay" &
echo $! >>"${PAIR_PIDFILE:-/dev/null}"
wait
