#!/usr/bin/env bash
# rm-e2e: both-backends
#
# A soak through an mTLS pair (explicit listeners on loopback in a private network namespace; bench/soak.sh is the
# full-size run, 1,000,000 requests): 20,000 HTTP/1.1 keep-alive requests over 8 connections to an app answering
# 1,024-byte bodies, each answer checked. Checked: zero failed requests, and each proxy's RSS flat after warm-up: the
# last sample is within 1 MiB of the one taken after the first 4,000 requests (samples every 2,000 requests), and
# its descriptors do not grow.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup_no_netns
rm_require_root
rm_loopback_place 3
APP=${RM_PORTS[0]} IN=${RM_PORTS[1]} UP=${RM_PORTS[2]}
REQUESTS=${RM_SOAK_REQUESTS:-20000}
EVERY=$((REQUESTS / 10))

rm_load_server app "$POD" "127.0.0.1:$APP" --http 1024
rm_loopback_pair "$APP" "$IN" "$UP" - -
PIDS="${RM_PID[proxy-frontend]},${RM_PID[proxy-orders]}"
rm_load_requests soak "$POD" "127.0.0.1:$UP" 8 "$REQUESTS" --http --size 1024 --sample-every "$EVERY" --pids "$PIDS"
SAMPLES=$(rm_log_select "$RM_TMP/logs/requests-soak.log" '.event == "sample"')
rm_log "RSS (KiB) of the two proxies every $EVERY requests: $(jq -r '"\(.requests): \([.procs[].rss_kb] | join("+"))"' <<<"$SAMPLES" | paste -sd ' ')"

case_no_failures() {
    rm_assert_eq "$(rm_json "$RM_LOAD_LINE" .failed)" 0 "failed requests"
    rm_assert_eq "$(rm_json "$RM_LOAD_LINE" .ok)" "$REQUESTS" "requests answered"
    rm_assert_eq "$RM_RC" 0 "e2e_load's status"
}

case_rss_flat() {
    local i warm last
    for i in 0 1; do
        warm=$(jq -s -r ".[1].procs[$i]" <<<"$SAMPLES")
        last=$(jq -s -r ".[-1].procs[$i]" <<<"$SAMPLES")
        rm_log "proxy $(rm_json "$warm" .pid): $(rm_json "$warm" .rss_kb) KiB after warm-up, $(rm_json "$last" .rss_kb) KiB at the end"
        [ "$(rm_json "$last" .rss_kb)" -le $(($(rm_json "$warm" .rss_kb) + 1024)) ] ||
            rm_fail "proxy $(rm_json "$warm" .pid) grew from $(rm_json "$warm" .rss_kb) to $(rm_json "$last" .rss_kb) KiB"
        [ "$(rm_json "$last" .fds)" -le "$(rm_json "$warm" .fds)" ] ||
            rm_fail "proxy $(rm_json "$warm" .pid) went from $(rm_json "$warm" .fds) to $(rm_json "$last" .fds) descriptors"
    done
}

rm_case "no request fails" case_no_failures
rm_case "RSS flat after warm-up" case_rss_flat
rm_finish
