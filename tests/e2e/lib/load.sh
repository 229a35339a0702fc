# shellcheck shell=bash disable=SC2034 # RM_PID, RM_LOAD_LINE are lib.sh's globals and results
# Load and process measurements: e2e_load servers and clients, and what a process holds (descriptors, resident
# memory, CPU time) read from /proc.
# Part of the end-to-end harness: sourced by tests/e2e/lib.sh (never on its own), whose globals it uses.

# rm_proc_fds PID: the number of open descriptors of PID
rm_proc_fds() {
    local n
    n=$(find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    echo "$n"
}

# rm_proc_rss_kb PID: its resident set in KiB (VmRSS)
rm_proc_rss_kb() {
    awk '$1 == "VmRSS:" {print $2}' "/proc/$1/status"
}

# rm_proc_cpu_ticks PID: user + system CPU time of PID (all its threads) in clock ticks (/proc/PID/stat 14 and 15)
rm_proc_cpu_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat")
    stat=${stat##*) }
    # shellcheck disable=SC2086 # the fields after the command name, split on spaces
    set -- $stat
    echo $(("${12}" + "${13}"))
}

# rm_proc_lowest_free_fd PID: the lowest descriptor number PID does not use (where its next open lands)
rm_proc_lowest_free_fd() {
    local n=0
    while [ -e "/proc/$1/fd/$n" ]; do n=$((n + 1)); done
    echo "$n"
}

# rm_load_server NAME POD LISTEN [e2e_load serve args...]: an e2e_load server (echo, or --http SIZE) in POD; waits
# until it listens. Process name "load-NAME".
rm_load_server() {
    local name=$1 pod=$2 listen=$3
    shift 3
    rm_bg "load-$name" "$pod" "$RM_TMP/logs/load-$name.log" "$RM_TOOLS/e2e_load" serve --listen "$listen" "$@"
    rm_wait_port "$pod" "${listen##*:}" 10 "load-$name"
}

# rm_load_hold_bg NAME POD ADDR CONNS [e2e_load hold args...]: N connections through ADDR, each echoed once, then held
# open, in the background (process "hold-NAME", log $RM_TMP/logs/hold-NAME.log). The "held" line comes when every
# connection has echoed or failed (rm_load_wait_held); they close when rm_load_release NAME is called.
rm_load_hold_bg() {
    local name=$1 pod=$2 addr=$3 conns=$4
    shift 4
    rm_bg "hold-$name" "$pod" "$RM_TMP/logs/hold-$name.log" "$RM_TOOLS/e2e_load" hold --connect "$addr" \
        --conns "$conns" --ready "$RM_TMP/logs/hold-$name.ready" --release "$RM_TMP/logs/hold-$name.release" "$@"
}

# rm_load_wait_held NAME [TIMEOUT_S]: waits (bounded) for hold NAME's "held" line, left in RM_LOAD_LINE
rm_load_wait_held() {
    rm_wait_file "$RM_TMP/logs/hold-$1.ready" "hold-$1" "${2:-60}"
    RM_LOAD_LINE=$(rm_log_select "$RM_TMP/logs/hold-$1.log" '.event == "held"' | head -n 1)
    rm_log "hold $1: $RM_LOAD_LINE"
}

# rm_load_release NAME: lets hold NAME close its connections and waits for it to exit; RM_RC = its status
rm_load_release() {
    touch "$RM_TMP/logs/hold-$1.release"
    rm_wait_exit "hold-$1" 30
}

# rm_load_requests NAME POD ADDR CONNS REQUESTS [e2e_load requests args...]: keep-alive exchanges through ADDR in
# the foreground (log $RM_TMP/logs/requests-NAME.log); RM_RC = its exit status (0: none failed), RM_LOAD_LINE = its
# "done" line
rm_load_requests() {
    local name=$1 pod=$2 addr=$3 conns=$4 n=$5
    local -a in_pod=()
    shift 5
    [ "$pod" = - ] || in_pod=(ip netns exec "$(rm_ns "$pod")")
    RM_RC=0
    "${in_pod[@]}" timeout 600 "$RM_TOOLS/e2e_load" requests --connect "$addr" --conns "$conns" --requests "$n" "$@" \
        >"$RM_TMP/logs/requests-$name.log" 2>"$RM_TMP/logs/requests-$name.log.stderr" || RM_RC=$?
    RM_LOAD_LINE=$(rm_log_select "$RM_TMP/logs/requests-$name.log" '.event == "done"' | tail -n 1)
    rm_log "requests $name: exit $RM_RC $RM_LOAD_LINE"
}

# rm_load_requests_bg NAME POD ADDR CONNS REQUESTS [args...]: the same in the background (process "requests-NAME");
# rm_load_requests_wait NAME then waits for it and sets RM_RC and RM_LOAD_LINE
rm_load_requests_bg() {
    local name=$1 pod=$2 addr=$3 conns=$4 n=$5
    shift 5
    rm_bg "requests-$name" "$pod" "$RM_TMP/logs/requests-$name.log" "$RM_TOOLS/e2e_load" requests --connect "$addr" \
        --conns "$conns" --requests "$n" "$@"
}

rm_load_requests_wait() {
    rm_wait_exit "requests-$1" "${2:-300}"
    RM_LOAD_LINE=$(rm_log_select "$RM_TMP/logs/requests-$1.log" '.event == "done"' | tail -n 1)
    rm_log "requests $1: exit $RM_RC $RM_LOAD_LINE"
}

# rm_load_wait_progress NAME N [TIMEOUT_S]: waits (bounded) until requests NAME (run with --sample-every) has
# finished N more requests than when called; fails when it does not or when one of them failed meanwhile
rm_load_wait_progress() {
    local name=$1 more=$2 log="$RM_TMP/logs/requests-$1.log" from now deadline
    from=$(rm_log_select "$log" '.event == "sample"' | tail -n 1 | jq -r '.requests // 0')
    from=${from:-0}
    deadline=$(($(rm_now_ms) + ${3:-30} * 1000))
    while :; do
        now=$(rm_log_select "$log" '.event == "sample"' | tail -n 1 | jq -r '.requests // 0')
        [ "${now:-0}" -ge $((from + more)) ] && break
        rm_alive "requests-$name" || rm_fail "requests $name ended early: $(tail -n 1 "$log")"
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "requests $name made no $more requests in ${3:-30} s (at $now)"
        sleep 0.1
    done
    rm_log "ok: requests $name went on: $from -> $now requests, $(rm_log_select "$log" '.event == "sample"' |
        tail -n 1 | jq -r .failed) failed"
}
