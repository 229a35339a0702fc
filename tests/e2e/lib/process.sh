# shellcheck shell=bash disable=SC2004,SC2034 # RM_PID, RM_POD_IP, ... are lib.sh's (associative) globals
# Processes: started in the background and recorded by PID, waited for, signalled and stopped by PID; bounded
# waits for files and ports.
# Part of the end-to-end harness: sourced by tests/e2e/lib.sh (never on its own), whose globals it uses.

# rm_bg NAME POD|- LOGFILE CMD...: starts CMD in the background (inside POD's namespace unless POD is "-"), stdout
# to LOGFILE and stderr to LOGFILE.stderr, and records its PID as RM_PID[NAME]. `ip netns exec` and setpriv both
# exec, so the recorded PID is the command's own.
rm_bg() {
    local name=$1 pod=$2 log=$3
    shift 3
    if [ "$pod" = - ]; then
        "$@" >"$log" 2>"$log.stderr" &
    else
        ip netns exec "$(rm_ns "$pod")" "$@" >"$log" 2>"$log.stderr" &
    fi
    RM_PID[$name]=$!
    RM_PID_LIST+=("$!")
    # cases run in subshells (rm_case): the teardown also reads this file, with each process's start time so that a
    # PID the system has reused since is never signalled
    [ -z "${RM_TMP:-}" ] || printf '%s %s\n' "$!" "$(rm__start_time "$!")" >>"$RM_TMP/started.pids"
}

# rm__start_time PID: the process's start time in clock ticks since boot (/proc/PID/stat field 22), or 0
rm__start_time() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    stat=${stat##*) }
    set -- $stat
    echo "${20:-0}"
}

# rm_alive NAME: true while the process recorded as NAME runs
rm_alive() {
    kill -0 "${RM_PID[$1]}" 2>/dev/null
}

# rm_wait_exit NAME TIMEOUT_S: waits for process NAME to exit (bounded); RM_RC = its exit status, or fails
rm_wait_exit() {
    local pid=${RM_PID[$1]} deadline
    deadline=$(($(rm_now_ms) + $2 * 1000))
    while kill -0 "$pid" 2>/dev/null; do
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "$1 (PID $pid) did not exit within $2 s"
        sleep 0.05
    done
    RM_RC=0
    wait "$pid" || RM_RC=$?
}

# rm_stop NAME [SIGNAL]: signals process NAME by its PID (TERM by default) and waits up to 10 s; RM_RC = status
rm_stop() {
    kill "-${2:-TERM}" "${RM_PID[$1]}" 2>/dev/null || true
    rm_wait_exit "$1" 10
}

# rm_signal NAME SIGNAL: sends SIGNAL to process NAME by its PID
rm_signal() {
    kill "-$2" "${RM_PID[$1]}"
}

# rm_wait_file PATH NAME [TIMEOUT_S]: waits (bounded) until PATH exists; fails early when process NAME has exited
rm_wait_file() {
    local deadline
    deadline=$(($(rm_now_ms) + ${3:-10} * 1000))
    until [ -e "$1" ]; do
        rm_alive "$2" || rm_fail "$2 exited before creating $1"
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "$1 did not appear within ${3:-10} s"
        sleep 0.05
    done
}

# rm_wait_port POD PORT [TIMEOUT_S [NAME]]: waits until something listens on TCP PORT in POD ("-" = this
# namespace); with NAME, fails at once when process NAME exits meanwhile
rm_wait_port() {
    local pod=$1 port=$2 watch=${4:-} deadline out
    deadline=$(($(rm_now_ms) + ${3:-10} * 1000))
    while :; do
        if [ "$pod" = - ]; then
            out=$(ss -Hltn "sport = :$port" 2>/dev/null || true)
        else
            out=$(rm_exec "$pod" ss -Hltn "sport = :$port" 2>/dev/null || true)
        fi
        [ -n "$out" ] && return 0
        if [ -n "$watch" ] && ! rm_alive "$watch"; then
            rm_fail "$watch exited before listening on port $port in $pod"
        fi
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "nothing listens on port $port in $pod after ${3:-10} s"
        sleep 0.05
    done
}
