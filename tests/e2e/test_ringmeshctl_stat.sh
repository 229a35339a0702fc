#!/usr/bin/env bash
# ringmeshctl stat against made-up proxies whose counters grow by known amounts (tests/data/stat/make_fixtures.py,
# served by tests/e2e/tools/metrics_fixture.py):
# - --admin: two scrapes, and every number of `-o json` as worked out by hand (rates, success and mTLS shares,
#   denies, p50/p99 by Prometheus' interpolation, open connections); two proxies added up; Istio's names when a
#   proxy has only those; the table as text;
# - --prometheus: a real Prometheus server (Debian's) scraping a made-up proxy whose counters grow linearly in time,
#   queried through its HTTP API: the same shares and quantiles, the rates within what Prometheus' extrapolation
#   allows;
# - the live view in a real terminal (tmux): drawn, redrawn in place rather than appended, the cursor hidden while
#   it runs and restored by Ctrl-C, which exits 0;
# - errors: an unreachable endpoint, a non-200 answer, a malformed page (its line named), Prometheus' error JSON,
#   usage errors (exit 2).
# Everything listens on loopback inside the test's own network namespace.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_require_cmds /usr/bin/python3 curl prometheus tmux
rm_setup_no_netns
[ -x "$RM_CTL_BIN" ] || rm_skip "ringmeshctl is not built ($RM_CTL_BIN)"

rm_loopback_place 5
P_ORDERS=${RM_PORTS[0]} # proxy-orders, scrape k = the k-th GET since /reset
P_ISTIO=${RM_PORTS[1]}  # proxy-istio, likewise
P_CLOCK=${RM_PORTS[2]}  # proxy-orders growing with the clock, for Prometheus
P_PROM=${RM_PORTS[3]}
P_NOBODY=${RM_PORTS[4]} # nothing listens here
FIXTURE=$RM_SOURCE_DIR/tests/e2e/tools/metrics_fixture.py
/usr/bin/python3 "$RM_SOURCE_DIR/tests/data/stat/make_fixtures.py" "$RM_TMP"

rm_bg fixture-orders "$POD" "$RM_TMP/logs/fixture-orders.log" /usr/bin/python3 "$FIXTURE" "$P_ORDERS" \
    "$RM_TMP/proxy-orders.json" count
rm_bg fixture-istio "$POD" "$RM_TMP/logs/fixture-istio.log" /usr/bin/python3 "$FIXTURE" "$P_ISTIO" \
    "$RM_TMP/proxy-istio.json" count
rm_bg fixture-clock "$POD" "$RM_TMP/logs/fixture-clock.log" /usr/bin/python3 "$FIXTURE" "$P_CLOCK" \
    "$RM_TMP/proxy-orders.json" clock
rm_wait_port "$POD" "$P_ORDERS" 10 fixture-orders
rm_wait_port "$POD" "$P_ISTIO" 10 fixture-istio
rm_wait_port "$POD" "$P_CLOCK" 10 fixture-clock

# A Prometheus server of our own: its storage in the test's directory, scraping the clock fixture every second
# with the samples' own timestamps (exactly linear counters).
mkdir -p "$RM_TMP/prometheus"
cat >"$RM_TMP/prometheus/prometheus.yml" <<EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: ringmesh-proxy
    honor_timestamps: true
    static_configs: [{targets: ["127.0.0.1:$P_CLOCK"]}]
EOF
rm_bg prometheus "$POD" "$RM_TMP/logs/prometheus.log" prometheus \
    --config.file="$RM_TMP/prometheus/prometheus.yml" --storage.tsdb.path="$RM_TMP/prometheus/data" \
    --web.listen-address="127.0.0.1:$P_PROM" --log.level=warn
rm_wait_port "$POD" "$P_PROM" 30 prometheus

stat() {
    RM_RC=0
    RM_OUT=$(rm_run "$RM_CTL_BIN" stat "$@" 2>"$RM_TMP/stat.err") || RM_RC=$?
    RM_ERR=$(cat "$RM_TMP/stat.err")
}

reset() {
    local port
    for port in "$@"; do
        rm_run curl -sf -m 5 -X POST "http://127.0.0.1:$port/reset" >/dev/null || rm_fail "cannot reset the fixture on $port"
    done
}

# expect_rows N: $RM_OUT is a JSON array of N rows
expect_rows() {
    rm_assert_eq "$(jq length <<<"$RM_OUT")" "$1" "rows in the JSON document"
}

# expect_row NS WL EXPR=WANT...: the one row of NS/WL in $RM_OUT gives each jq expression EXPR (.field, or a
# formula of fields) the value of jq expression WANT (numbers to 1e-9 relative: what 15 significant digits keep;
# null as null)
expect_row() {
    local ns=$1 wl=$2 f bad
    shift 2
    for f in "$@"; do
        # shellcheck disable=SC2016 # $-names are jq's
        bad=$(jq -r --arg ns "$ns" --arg wl "$wl" --arg f "${f%%=*}" '
            [.[] | select(.namespace == $ns and .workload == $wl)] as $r
            | if ($r | length) != 1 then "\($r | length) rows"
              else ($r[0] | '"${f%%=*}"') as $got | ('"${f#*=}"') as $want
                | if $got == null or $want == null then (if $got == $want then empty else "\($f) = \($got), want \($want)" end)
                  elif (($got - $want) | fabs) <= 1e-9 * (($want | fabs) + 1) then empty
                  else "\($f) = \($got), want \($want)" end
              end' <<<"$RM_OUT")
        [ -z "$bad" ] || rm_fail "$ns/$wl: $bad; the document: $RM_OUT"
    done
    rm_log "ok: $ns/$wl: $*"
}

# What proxy-orders does in one interval (2 s by its samples' timestamps), for shop/orders: 154 requests; failed:
# 10 HTTP 503 and 10 gRPC PERMISSION_DENIED; denied: 10 HTTP 403 and those 10 gRPC 7; not over mTLS: the 10 403s
# and 4 201s. Durations: 77 up to 5 ms, 77 in (10, 25]: p50 = rank 77, the top of (1,5] = 5; p99 = rank 152.46,
# 10 + 15 * 75.46/77 = 24.7. Connections: opened 10 + 5k, closed 4 + 4k: 7 open at k = 1.
case_admin_json_exact() {
    reset "$P_ORDERS"
    stat --admin "127.0.0.1:$P_ORDERS" --interval 100ms -o json
    rm_assert_eq "$RM_RC" 0 "exit status (stderr: $RM_ERR)"
    expect_rows 2
    expect_row shop orders .requests=154 .req_per_s=77 .success=134/154 .deny_per_s=10 .mtls=140/154 .p50_ms=5 \
        .p99_ms=24.7 .tcp_connections=7
    expect_row web 'front"end\v2' .requests=2 .req_per_s=1 .success=1 .deny_per_s=0 .mtls=1 .p50_ms=null .p99_ms=null \
        .tcp_connections=0
    rm_assert_eq "$(jq -r '.[0].namespace' <<<"$RM_OUT")" shop "rows sorted by namespace"
}

# Two proxies of shop/orders (one with Istio's names): 154 + 46 requests, 46 more successes over mTLS, all up to
# 5 ms. Per second: (0,5] 61.5, (5,10] 0, (10,25] 38.5: p50 = 1 + 4 * 50/61.5, p99 = 10 + 15 * 37.5/38.5.
case_admin_two_proxies() {
    reset "$P_ORDERS" "$P_ISTIO"
    stat --admin "127.0.0.1:$P_ORDERS" --admin "http://127.0.0.1:$P_ISTIO/metrics" -n shop --interval 100ms -o json
    rm_assert_eq "$RM_RC" 0 "exit status (stderr: $RM_ERR)"
    expect_rows 1
    expect_row shop orders .requests=200 .req_per_s=100 .success=0.9 .deny_per_s=10 .mtls=0.93 \
        '.p50_ms=1 + 4 * 50 / 61.5' '.p99_ms=10 + 15 * 37.5 / 38.5' .tcp_connections=7
}

# A proxy with only Istio's names (metrics.istioNames: true) is read with those: 46 requests in 2 s, p50 at rank
# 11.5 of 23/s in (1,5] = 3, p99 = 1 + 4 * 22.77/23.
case_admin_istio_names() {
    reset "$P_ISTIO"
    stat --admin "127.0.0.1:$P_ISTIO" --interval 100ms --once -o json
    rm_assert_eq "$RM_RC" 0 "exit status (stderr: $RM_ERR)"
    expect_rows 1
    expect_row shop orders .requests=46 .req_per_s=23 .success=1 .mtls=1 .p50_ms=3 '.p99_ms=1 + 4 * 22.77 / 23' \
        .tcp_connections=0
}

case_admin_table() {
    reset "$P_ORDERS"
    stat --admin "127.0.0.1:$P_ORDERS" --interval 100ms --once
    rm_assert_eq "$RM_RC" 0 "exit status (stderr: $RM_ERR)"
    printf '%s\n' "$RM_OUT" >"$RM_TMP/table.txt"
    rm_assert_content "$RM_TMP/table.txt" \
        'NAMESPACE  WORKLOAD      REQ/S  SUCCESS     P50     P99  DENY/S  MTLS  TCP CONN
shop       orders         77.0   87.01%  5.00ms  24.7ms    10.0   91%         7
web        front"end\v2    1.0  100.00%       -       -     0.0  100%         0
' "the table, with no terminal codes when stdout is not a terminal"
}

case_errors() {
    stat --admin "127.0.0.1:$P_NOBODY" --once
    rm_assert_eq "$RM_RC" 1 "an unreachable proxy: exit status"
    [[ $RM_ERR == "ringmeshctl stat: http://127.0.0.1:$P_NOBODY/metrics: Failed to connect to 127.0.0.1 port $P_NOBODY"* ]] ||
        rm_fail "an unreachable proxy: the message names the endpoint and why: $RM_ERR"
    stat --admin "127.0.0.1:$P_ORDERS" --admin "http://127.0.0.1:$P_ORDERS/missing" --once -o json
    rm_assert_eq "$RM_RC:$RM_ERR" "1:ringmeshctl stat: http://127.0.0.1:$P_ORDERS/missing: HTTP 404" "a page that is not there"
    rm_assert_eq "$RM_OUT" "" "nothing on stdout after an error"
    stat --admin "http://127.0.0.1:$P_ORDERS/bad" --once
    rm_assert_eq "$RM_RC:$RM_ERR" \
        "1:ringmeshctl stat: http://127.0.0.1:$P_ORDERS/bad: line 3: the value of label 'le' is not closed" \
        "a malformed page: its line and what is wrong"
    stat --prometheus "http://127.0.0.1:$P_ORDERS/prom-error/" --once
    rm_assert_eq "$RM_RC" 1 "Prometheus' error: exit status"
    [[ $RM_ERR == "ringmeshctl stat: http://127.0.0.1:$P_ORDERS/prom-error/api/v1/query: Prometheus answered HTTP 400: bad_data: 1:1: parse error: unexpected end of input (query: "* ]] ||
        rm_fail "Prometheus' error: the message names the endpoint and Prometheus' own words: $RM_ERR"
    stat --prometheus "http://127.0.0.1:$P_ORDERS" -o json
    rm_assert_eq "$RM_RC:$RM_ERR" \
        "1:ringmeshctl stat: http://127.0.0.1:$P_ORDERS/api/v1/query: HTTP 404 (is this Prometheus?)" \
        "a server that is not Prometheus"
    stat --prometheus "http://127.0.0.1:$P_NOBODY" -o json
    rm_assert_eq "$RM_RC" 1 "an unreachable Prometheus: exit status"
    [[ $RM_ERR == "ringmeshctl stat: http://127.0.0.1:$P_NOBODY/api/v1/query: Failed to connect"* ]] ||
        rm_fail "an unreachable Prometheus: $RM_ERR"
}

case_usage() {
    local args
    for args in "" "--admin 127.0.0.1:1 --prometheus http://127.0.0.1:1" "--admin nohost" "--admin 127.0.0.1:0" \
        "--admin 127.0.0.1:1 -o yaml" "--admin 127.0.0.1:1 --window 1m" "--admin 127.0.0.1:1 --interval 0s" \
        "--prometheus 127.0.0.1:9090" "--prometheus http://p:9090 --window 10ms" "--admin 127.0.0.1:1 --bogus"; do
        # shellcheck disable=SC2086 # the arguments are words
        stat $args
        rm_assert_eq "$RM_RC" 2 "usage error for '$args'"
        [[ $RM_ERR == *"ringmeshctl stat"* ]] || rm_fail "usage error for '$args' says nothing useful: $RM_ERR"
    done
    stat --help
    rm_assert_eq "$RM_RC" 0 "--help"
    [[ $RM_OUT == "usage: ringmeshctl stat "* ]] || rm_fail "--help prints the usage: $RM_OUT"
}

# Prometheus, once its storage holds more samples than the window: the clock fixture's counters grow exactly
# linearly (its samples carry their own timestamps), so every series of a scrape has the same samples at the same
# instants and Prometheus extrapolates them all alike: shares and quantiles are exact, and equal to the --admin ones
# above. A rate is exact only when the evaluation falls within 1.1 scrape intervals of both ends of its samples;
# on a loaded machine a late scrape changes Prometheus' extrapolation, so rates are checked to 15 %.
case_prometheus() {
    local deadline n=0
    deadline=$(($(rm_now_ms) + 60000))
    while [ "${n:-0}" -lt 8 ]; do
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "Prometheus has $n samples of the fixture after 60 s"
        sleep 0.5
        n=$(rm_run curl -sf -m 5 "http://127.0.0.1:$P_PROM/api/v1/query" --data-urlencode \
            'query=count_over_time(ringmesh_requests_total{reporter="destination",destination_workload="orders",response_code="200"}[8s])' |
            jq -r '.data.result[0].value[1] // 0') || n=0
    done
    rm_log "Prometheus has $n samples of the fixture in the last 8 s"
    stat --prometheus "http://127.0.0.1:$P_PROM/" --window 5s -o json
    rm_assert_eq "$RM_RC" 0 "exit status (stderr: $RM_ERR)"
    expect_rows 2
    expect_row shop orders .success=134/154 ".deny_per_s / .req_per_s=20/154" .mtls=140/154 .p50_ms=5 .p99_ms=24.7 \
        ".requests / .req_per_s=5"
    expect_row web 'front"end\v2' .success=1 .mtls=1 .p50_ms=null .p99_ms=null
    # shellcheck disable=SC2016 # $-names are jq's
    jq -e '(.[] | select(.workload == "orders") | .req_per_s | . > 77 * 0.85 and . < 77 * 1.15)
        and (.[] | select(.workload == "orders") | .tcp_connections > 7)' <<<"$RM_OUT" >/dev/null ||
        rm_fail "shop/orders: about 77 requests/s and more than 7 open connections: $RM_OUT"
    rm_log "ok: shop/orders: $(jq -c '.[0] | {req_per_s, tcp_connections}' <<<"$RM_OUT")"
    stat --prometheus "http://127.0.0.1:$P_PROM" --window 5s -n web --once
    rm_assert_eq "$RM_RC" 0 "-n web --once: exit status (stderr: $RM_ERR)"
    rm_assert_eq "$(printf '%s\n' "$RM_OUT" | awk '{print $1 " " $2 " " $4 " " $8}' | tr '\n' '|')" \
        'NAMESPACE WORKLOAD SUCCESS MTLS|web front"end\v2 100.00% 100%|' "-n web --once: the table of namespace web"
}

# The live view in a real terminal: tmux on a socket of the test's own, a 160x40 window running the command (in
# the test's namespace) under a shell that then prints its exit status and waits, so that the terminal's state
# after the command can be read (tmux resets a pane whose program has ended). The tmux server is stopped by its PID
# in the teardown (its pane's shell with it).
TMUX_SOCKET="rm$$-stat"
tmux_() { tmux -L "$TMUX_SOCKET" "$@"; }
cat >"$RM_TMP/live.sh" <<'EOF'
trap : INT # Ctrl-C is for the command; the shell goes on when it has exited
"$@"
echo "exit status: $?"
read -r _
EOF
live=("$RM_CTL_BIN" stat --admin "127.0.0.1:$P_ORDERS" --interval 1s)
[ "$POD" = - ] || live=(ip netns exec "$(rm_ns "$POD")" "${live[@]}")
reset "$P_ORDERS"
tmux_ -f /dev/null new-session -d -s stat -x 160 -y 40 "bash $RM_TMP/live.sh ${live[*]}"
RM_PID_LIST+=("$(tmux_ display-message -p '#{pid}')")

# screen: the pane as text, one line a row
screen() { tmux_ capture-pane -p -t stat; }
# open_connections SCREEN: the TCP CONN column of shop/orders
open_connections() { awk '$1 == "shop" && $2 == "orders" {print $NF}' <<<"$1"; }

case_live_view() {
    local first second deadline
    deadline=$(($(rm_now_ms) + 20000))
    until first=$(screen) && [[ $first == *"NAMESPACE"*"shop"*"orders"* ]]; do
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "no table in the terminal after 20 s: $first"
        sleep 0.2
    done
    [[ $(head -n 1 <<<"$first") =~ ^[0-9]{2}:[0-9]{2}:[0-9]{2}\ \ 1\ proxy,\ every\ 1.0s\ \(Ctrl-C\ to\ quit\)$ ]] ||
        rm_fail "the first line of the terminal is the view's header: $first"
    rm_assert_eq "$(tmux_ display-message -p -t stat '#{cursor_flag}')" 0 "the cursor is hidden while the view runs"
    # every scrape opens 5 connections and closes 4: the next redraw shows one more open
    deadline=$(($(rm_now_ms) + 20000))
    until second=$(screen) && [ -n "$(open_connections "$second")" ] &&
        [ "$(open_connections "$second")" -gt "$(open_connections "$first")" ]; do
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "the table was not redrawn within 20 s: $second"
        sleep 0.2
    done
    rm_log "open connections went from $(open_connections "$first") to $(open_connections "$second")"
    rm_assert_eq "$(grep -c NAMESPACE <<<"$second")" 1 "one table on the screen after a redraw (redrawn in place, not appended)"
    rm_assert_eq "$(grep -c '^shop  *orders ' <<<"$second")" 1 "one row of shop/orders on the screen"
    [[ $(head -n 1 <<<"$second") == *"1 proxy, every 1.0s"* ]] || rm_fail "the header is on the first line again: $second"
    tmux_ send-keys -t stat C-c
    deadline=$(($(rm_now_ms) + 10000))
    until second=$(screen) && [[ $second == *"exit status: "* ]]; do
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "Ctrl-C did not end the view within 10 s: $second"
        sleep 0.1
    done
    rm_assert_eq "$(grep -o 'exit status: .*' <<<"$second")" "exit status: 0" "Ctrl-C: the command's exit status"
    rm_assert_eq "$(tmux_ display-message -p -t stat '#{cursor_flag}')" 1 "Ctrl-C: the cursor is back"
    [[ $second == *"shop"*"orders"* ]] || rm_fail "the last table stays on the screen after Ctrl-C: $second"
}

rm_case live_view case_live_view
tmux_ kill-server
rm_case prometheus case_prometheus
rm_case admin_json_exact case_admin_json_exact
rm_case admin_two_proxies case_admin_two_proxies
rm_case admin_istio_names case_admin_istio_names
rm_case admin_table case_admin_table
rm_case errors case_errors
rm_case usage case_usage
rm_finish
