# Runs inside the virtual machine of tests/e2e/test_kernel_tls_vm.sh (busybox sh, Debian's kernel with the tls
# module): kernel TLS in ringmesh-proxy, end to end.
#
#   sh guest-kernel-tls.sh CONFIG_DIR [CONNS [STEP]]
#
# CONFIG_DIR holds the certificates, five proxy configurations and a policy, all on 127.0.0.1:
#   out-k.yaml  kernelTls: auto   upstream listeners 15001 -> in-k:15006 (echo), 15002 -> in-k:15007
#                                 (reply-after-eof), 15003 -> in-k:15008 (banner), 15004 -> in-u:15106 (echo),
#                                 15005 -> in-h:15009 (HTTP), 15010 -> in-k:15011 (many connections)
#   in-k.yaml   kernelTls: auto   inbound listeners 15006 -> 9000, 15007 -> 9001, 15008 -> 9002, 15011 -> 9003
#   in-u.yaml   kernelTls: off    inbound listener 15106 -> 9000
#   out-u.yaml  kernelTls: off    upstream listener 15201 -> in-k:15006
#   in-h.yaml   kernelTls: auto   inbound listener 15009 -> 9080 (busybox httpd), with an authorization policy
#                                 (policies/): GET /allowed* from the client's SPIFFE ID, everything else denied
# Admin ports: out-k 15021, in-k 15022, in-u 15023, out-u 15024, in-h 15025.
#
# For each I/O backend (io_uring, epoll) it starts the five proxies and checks: data through a pair that both hand
# their records to the kernel, half-close, a server-first protocol, interoperation both ways with a proxy that keeps
# its records in user space, and HTTP requests allowed and denied by policy on what the kernel opened; the metrics and logs say which connections the kernel carried, and the kernel's
# own counters (/proc/net/tls_stat) agree. Then CONNS connections (default 600) are held through out-k and in-k (to an
# e2e_load app on 9003), opened STEP at a time (default CONNS / 6) with a pause between steps: the median of the
# slopes of the pair's RSS from step to step is what each connection costs with both TLS sessions freed, and must be
# within the target's bound, (64 MiB - the idle pair's RSS) / 10,000; at CONNS 10,000 the pair's RSS with all of them
# open must be under 64 MiB. (The median of several steps, not one slope: one step of a few hundred connections in a
# VM on a shared host is noisy.) Every process it starts is stopped by its PID. Exit status 0 when every check
# passed; on a failure, the proxies' logs are printed.
set -u
cfg=$1
CONNS=${2:-600} # held for the memory check; STEP at a time
STEP=${3:-$((CONNS / 6))}
pids=""
failed=0

say() { echo "kernel-tls: $*"; }
fail() {
    say "FAIL: $*"
    failed=1
}
stop_all() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    for p in $pids; do
        i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        kill -9 "$p" 2>/dev/null
    done
    pids=""
}
bg() { # bg LOG CMD...: start in the background, remember the PID
    log=$1
    shift
    "$@" >"$log" 2>&1 &
    pids="$pids $!"
}
wait_log() { # wait_log FILE TEXT
    i=0
    while ! grep -q "$2" "$1" 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt 300 ] && return 1
        sleep 0.1
    done
}
metric() { # metric PORT NAME: the value of an unlabelled sample
    wget -q -O - "http://127.0.0.1:$1/metrics" | sed -n "s/^$2 //p"
}
tls_stat() { sed -n "s/^$1[[:space:]]*//p" /proc/net/tls_stat; }
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }

# hold_mem N STEP PID PID: holds N connections through out-k's 15010, opened STEP at a time (e2e_load hold --step,
# a pause of a tick and more between steps so that the pages the last hand-overs freed are given back); MEM_STEPS =
# "held rss_kb" per step (the pair's RSS, both PIDs summed), MEM_RSS = the pair's RSS with all of them open; then
# releases them, waits (bounded) until both proxies have none open and a tick more: MEM_AFTER = the pair's RSS then
hold_mem() {
    rm -f /tmp/held /tmp/release
    e2e_load hold --connect 127.0.0.1:15010 --conns "$1" --step "$2" --step-pause 1000 --pids "$3,$4" \
        --timeout 1200000 --ready /tmp/held --release /tmp/release >/tmp/hold.out 2>&1 &
    hp=$!
    i=0
    # bounded: the hold's own deadline is 20 minutes and a millisecond a connection
    while [ ! -e /tmp/held ] && [ $i -lt 30000 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    MEM_HELD=$(grep '"event":"held"' /tmp/hold.out | sed -n 's/.*"held":\([0-9]*\).*/\1/p')
    MEM_STEPS=$(grep '"event":"step"' /tmp/hold.out | while read -r line; do
        echo "$line" | sed -n 's/.*"held":\([0-9]*\).*/\1/p' | tr '\n' ' '
        echo "$line" | grep -o '"rss_kb":[0-9]*' | cut -d: -f2 | awk '{s += $1} END {print s}'
    done)
    MEM_RSS=$(echo "$MEM_STEPS" | tail -n 1 | cut -d' ' -f2)
    MEM_BUFS=$(for port in 15021 15022; do
        wget -q -O - "http://127.0.0.1:$port/metrics" | sed -n 's/^ringmesh_proxy_buffer_bytes{size="small",state="in_use"} //p'
    done | tr "\n" /)
    touch /tmp/release
    wait $hp
    i=0
    while [ $i -lt 600 ] && { [ "$(metric 15021 ringmesh_proxy_connections_active)" != 0 ] ||
        [ "$(metric 15022 ringmesh_proxy_connections_active)" != 0 ]; }; do
        sleep 0.1
        i=$((i + 1))
    done
    sleep 0.6 # a tick more: idle buffers and free pages go back
    MEM_AFTER=$(($(rss "$3") + $(rss "$4")))
}

# shellcheck disable=SC3045 # busybox sh has ulimit -n
ulimit -n 65536 2>/dev/null # two descriptors per connection in each proxy

# the library's own test of the hand-over: wolfSSL and the kernel open each other's records
if RM_REQUIRE_KERNEL_TLS=1 test_ktls >/tmp/test_ktls.log 2>&1; then
    say "ok: test_ktls: $(grep -c '^\[       OK \]' /tmp/test_ktls.log) tests passed"
else
    fail "test_ktls"
fi

dd if=/dev/urandom of=/tmp/blob bs=65536 count=64 2>/dev/null # 4 MiB
want=$(sha256sum </tmp/blob | cut -d' ' -f1)

# echo, reply-after-eof and banner servers (tests/e2e/tools)
bg /tmp/echo.log e2e_server --listen 127.0.0.1:9000 --mode echo
bg /tmp/rae.log e2e_server --listen 127.0.0.1:9001 --mode reply-after-eof
bg /tmp/banner.log e2e_server --listen 127.0.0.1:9002 --mode banner --banner "220 ringmesh-vm ready"
mkdir -p /tmp/www
echo "allowed page" >/tmp/www/allowed.txt
echo "secret page" >/tmp/www/denied.txt
bg /tmp/httpd.log httpd -f -p 127.0.0.1:9080 -h /tmp/www
bg /tmp/load-app.log e2e_load serve --listen 127.0.0.1:9003
servers=$pids
pids=""

# through PORT, the blob to the echo server and back, intact
echo_blob() {
    rm -f /tmp/got
    if ! e2e_client --connect "127.0.0.1:$1" --timeout 120000 --out /tmp/got sendfile:/tmp/blob shutdown readeof \
        2>/tmp/client.status; then
        fail "$2: client failed: $(cat /tmp/client.status)"
        return
    fi
    got=$(sha256sum </tmp/got | cut -d' ' -f1)
    [ "$got" = "$want" ] && say "ok: $2: 4 MiB echoed intact" || fail "$2: echoed bytes differ"
}

for backend in io_uring epoll; do
    export RINGMESH_IO_BACKEND=$backend
    t0=$(tls_stat TlsTxSw)
    r0=$(tls_stat TlsRxSw)
    for p in out-k in-k in-u out-u in-h; do
        bg "/tmp/$p.$backend.log" ringmesh-proxy --config "$cfg/$p.yaml"
    done
    for p in out-k in-k in-u out-u in-h; do
        wait_log "/tmp/$p.$backend.log" proxy_started || fail "$backend: $p did not start"
    done
    for p in out-k in-k in-h; do
        grep proxy_started "/tmp/$p.$backend.log" | grep -q '"kernel_tls":"on"' ||
            fail "$backend: $p does not say kernel_tls on"
    done
    for p in in-u out-u; do
        grep proxy_started "/tmp/$p.$backend.log" | grep -q '"kernel_tls":"off"' ||
            fail "$backend: $p does not say kernel_tls off"
    done

    echo_blob 15001 "$backend: kernel to kernel"
    echo_blob 15004 "$backend: kernel (client) to user space (server)"
    echo_blob 15201 "$backend: user space (client) to kernel (server)"

    # half-close: the client's FIN crosses the kernel's record layer as close_notify + FIN, the reply comes back
    head -c 1048576 /tmp/blob >/tmp/mib
    if e2e_client --connect 127.0.0.1:15002 --timeout 60000 --out /tmp/rae.out sendfile:/tmp/mib shutdown readeof \
        2>/tmp/client.status; then
        head -n 1 /tmp/rae.out | grep -qx "received=1048576" &&
            [ "$(tail -c +18 /tmp/rae.out | sha256sum | cut -d' ' -f1)" = "$(sha256sum </tmp/mib | cut -d' ' -f1)" ] &&
            say "ok: $backend: half-close: the server saw EOF after 1 MiB and its answer came back" ||
            fail "$backend: half-close: wrong answer: $(head -c 40 /tmp/rae.out)"
    else
        fail "$backend: half-close: client failed: $(cat /tmp/client.status)"
    fi

    # server-first: the banner arrives before the client sends anything
    if e2e_client --connect 127.0.0.1:15003 --timeout 30000 --out /tmp/banner.out read:21 send:quit shutdown readeof \
        2>/tmp/client.status && [ "$(cat /tmp/banner.out)" = "220 ringmesh-vm readyquit" ]; then
        say "ok: $backend: server-first banner, then the client's bytes echoed"
    else
        fail "$backend: server-first: got '$(cat /tmp/banner.out 2>/dev/null)' $(cat /tmp/client.status)"
    fi

    # HTTP through the policy: the kernel opened the records, the proxy decided on the plaintext
    body=$(wget -q -O - http://127.0.0.1:15005/allowed.txt 2>/dev/null)
    [ "$body" = "allowed page" ] && say "ok: $backend: GET /allowed.txt allowed by policy" ||
        fail "$backend: GET /allowed.txt gave '$body'"
    if out=$(wget -q -O - http://127.0.0.1:15005/denied.txt 2>&1); then
        fail "$backend: GET /denied.txt was not refused: $out"
    elif echo "$out" | grep -q 403 && grep '"event":"authz"' "/tmp/in-h.$backend.log" | grep '"decision":"deny"' |
        grep -q '/denied.txt'; then
        say "ok: $backend: GET /denied.txt answered 403 and logged as denied"
    else
        fail "$backend: GET /denied.txt: '$out', no deny decision logged"
    fi

    # what the proxies report: out-k carried 15001-15005 in the kernel (6 connections), in-k 15001-15003 and 15201,
    # in-h the two HTTP requests
    sleep 0.5
    v=$(metric 15021 ringmesh_proxy_tls_kernel_enabled)
    [ "$v" = 1 ] || fail "$backend: out-k ringmesh_proxy_tls_kernel_enabled is '$v'"
    v=$(metric 15023 ringmesh_proxy_tls_kernel_enabled)
    [ "$v" = 0 ] || fail "$backend: in-u ringmesh_proxy_tls_kernel_enabled is '$v'"
    for pp in "out-k 15021 6" "in-k 15022 4" "in-u 15023 0" "out-u 15024 0" "in-h 15025 2"; do
        set -- $pp
        v=$(metric "$2" ringmesh_proxy_tls_kernel_connections_total)
        [ "$v" = "$3" ] && say "ok: $backend: $1 ringmesh_proxy_tls_kernel_connections_total $v" ||
            fail "$backend: $1 ringmesh_proxy_tls_kernel_connections_total is '$v', want $3"
        v=$(metric "$2" ringmesh_proxy_tls_kernel_failures_total)
        [ "$v" = 0 ] || fail "$backend: $1 ringmesh_proxy_tls_kernel_failures_total is '$v'"
    done
    # the kernel's own count of TLS sockets it set up in software: one per direction per kernel-TLS end (12 ends)
    t1=$(tls_stat TlsTxSw)
    r1=$(tls_stat TlsRxSw)
    [ $((t1 - t0)) -eq 12 ] && [ $((r1 - r0)) -eq 12 ] &&
        say "ok: $backend: /proc/net/tls_stat: 12 more TlsTxSw and 12 more TlsRxSw" ||
        fail "$backend: /proc/net/tls_stat: TlsTxSw +$((t1 - t0)), TlsRxSw +$((r1 - r0)), want +12 each"
    # the access log says which connections the kernel carried
    n=$(grep -h '"event":"connection"' "/tmp/out-k.$backend.log" | grep -c '"kernel_tls":true')
    [ "$n" = 6 ] && say "ok: $backend: out-k logged 6 connections with kernel_tls true" ||
        fail "$backend: out-k logged $n connections with kernel_tls true, want 6"
    n=$(grep -h '"event":"connection"' "/tmp/out-u.$backend.log" | grep -c '"kernel_tls":false')
    [ "$n" = 1 ] || fail "$backend: out-u logged $n connections with kernel_tls false, want 1"
    if grep -h kernel_tls_failed /tmp/*."$backend".log; then
        fail "$backend: a proxy logged kernel_tls_failed"
    fi

    # memory per connection with both ends in the kernel: CONNS held, opened STEP at a time
    # shellcheck disable=SC2086 # the PIDs, split on purpose
    set -- $pids
    pout=$1 pin=$2
    idle=$(($(rss "$pout") + $(rss "$pin")))
    k0=$(metric 15021 ringmesh_proxy_tls_kernel_connections_total)
    hold_mem "$CONNS" "$STEP" "$pout" "$pin"
    k1=$(metric 15021 ringmesh_proxy_tls_kernel_connections_total)
    # the slope between each step and the next, from the first step on (which also takes what the pair takes once
    # for any load: the buffer ring, the allocator's arenas); their median is what a connection adds
    slopes=$(echo "$MEM_STEPS" | awk 'NR > 1 && $1 > h {printf "%.1f\n", ($2 - r) / ($1 - h)} {h = $1; r = $2}')
    per=$(echo "$slopes" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
    # the target's bound: what (64 MiB - the idle pair) leaves each of 10,000 connections
    bound=$(awk -v i="$idle" 'BEGIN {printf "%.1f", (65536 - i) / 10000}')
    say "$backend: memory steps (held, pair RSS KiB): $(echo "$MEM_STEPS" | tr '\n' ';') slopes $(echo "$slopes" | tr '\n' ' ')"
    msg="pair idle $idle KiB, $MEM_RSS KiB with $MEM_HELD open, $MEM_AFTER KiB after close: median $per KiB per connection over the steps (bound $bound; buffer bytes in use $MEM_BUFS)"
    if [ "$MEM_HELD" != "$CONNS" ] || [ $((k1 - k0)) -ne "$CONNS" ] || [ -z "$per" ]; then
        fail "$backend: memory: held '$MEM_HELD', kernel carried $((k1 - k0)) of $CONNS: $(cat /tmp/hold.out)"
    elif awk -v p="$per" -v b="$bound" 'BEGIN {exit !(p <= b)}'; then
        say "ok: $backend: memory with kernel TLS: $msg"
    else
        fail "$backend: memory with kernel TLS: $msg"
    fi
    if [ "$CONNS" -ge 10000 ]; then
        # the target itself, at full size
        [ "$MEM_RSS" -lt 65536 ] && say "ok: $backend: the pair holds $MEM_RSS KiB with $MEM_HELD connections open (target: under 65536)" ||
            fail "$backend: the pair holds $MEM_RSS KiB with $MEM_HELD connections open (target: under 65536)"
    fi

    stop_all
done
pids=$servers
stop_all

if [ $failed -ne 0 ]; then
    for f in /tmp/*.log; do
        echo "== $f"
        cat "$f"
    done
    exit 1
fi
say "all checks passed"
exit 0
