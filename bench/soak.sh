#!/usr/bin/env bash
# bench/soak.sh - a long run through a ringmesh pair: zero failures and memory flat after warm-up.
#
#   client (e2e_load requests --http) --plain--> outbound proxy --mTLS--> inbound proxy --plain--> app (e2e_load
#   serve --http 1024)
#
# REQUESTS HTTP/1.1 keep-alive requests over CONNS connections, every answer checked (a 200 with a 1,024-byte body).
# Both proxies' RSS and descriptors are sampled every REQUESTS/SAMPLES requests: the table is the curve. Reported:
# failed requests (must be 0), requests/s, p50/p99, and each proxy's RSS growth from the sample at 10 % (after
# warm-up) to the last one.
#
#   bench/soak.sh [OUT_PREFIX]     default OUT_PREFIX=bench/out/soak-<UTC date>
#
# Settings: REQUESTS (1000000), CONNS (16), SAMPLES (20), RM_WORKERS (1), RINGMESH_IO_BACKEND. Writes OUT_PREFIX.md, a
# section for bench/RESULTS.md; the full size belongs on a quiet machine.
# shellcheck source=bench/load-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/load-lib.sh"
REQUESTS=${REQUESTS:-1000000}
CONNS=${CONNS:-16}
SAMPLES=${SAMPLES:-20}
out=${1:-$here/bench/out/soak-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$(dirname "$out")"

lb_app --http 1024
lb_pair soak "$LB_APP"
rc=0
"$load" requests --connect "127.0.0.1:$LB_OUT" --conns "$CONNS" --requests "$REQUESTS" --http --size 1024 \
    --sample-every $((REQUESTS / SAMPLES)) --pids "$LB_PIDS" --timeout 10000 >"$work/soak.log" || rc=$?
done_line=$(jq -c 'select(.event == "done")' "$work/soak.log")
[ -n "$done_line" ] || { echo "soak.sh: the load ended without a result (exit $rc)" >&2; exit 1; }
samples=$(jq -c 'select(.event == "sample")' "$work/soak.log")
growth() { # INDEX -> KiB from the sample at 10 % to the last
    jq -s -r --argjson i "$1" --argjson w $((SAMPLES / 10)) '(.[-1].procs[$i].rss_kb) - (.[$w - 1].procs[$i].rss_kb)' \
        <<<"$samples"
}
{
    lb_header "Soak: $REQUESTS requests through a pair"
    printf 'bench/soak.sh, REQUESTS=%s over %s keep-alive connections, HTTP/1.1, 1,024-byte answers, %s worker(s) per proxy, metrics on.\n\n' \
        "$REQUESTS" "$CONNS" "${RM_WORKERS:-1}"
    printf '| requests | failed | requests/s | p50 | p99 | RSS growth after warm-up (outbound, inbound) |\n|---|---|---|---|---|---|\n'
    printf '| %s | %s | %s | %s us | %s us | %s KiB, %s KiB |\n\n' "$(jq .ok <<<"$done_line")" "$(jq .failed <<<"$done_line")" \
        "$(jq .rps <<<"$done_line")" "$(jq .p50_us <<<"$done_line")" "$(jq .p99_us <<<"$done_line")" "$(growth 0)" \
        "$(growth 1)"
    printf 'RSS and descriptors sampled every %s requests:\n\n| requests | failed so far | outbound RSS | inbound RSS | outbound fds | inbound fds |\n|---|---|---|---|---|---|\n' \
        $((REQUESTS / SAMPLES))
    jq -r '"| \(.requests) | \(.failed) | \(.procs[0].rss_kb) KiB | \(.procs[1].rss_kb) KiB | \(.procs[0].fds) | \(.procs[1].fds) |"' \
        <<<"$samples"
} | tee "$out.md"
[ "$rc" = 0 ]
