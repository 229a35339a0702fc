# shellcheck shell=bash
# JSON-lines logs, read with jq (lines that are not JSON are ignored): selecting, counting and waiting for events.
# Part of the end-to-end harness: sourced by tests/e2e/lib.sh (never on its own), whose globals it uses.

# jq definitions available in every FILTER below:
#   addr  an "ip:port" string with an IPv4-mapped IPv6 address ("[::ffff:198.18.1.2]:40000") written as IPv4
#         ("198.18.1.2:40000"): a dual-stack listener sees IPv4 peers in the mapped form.
RM_JQ_DEFS='def addr: if type == "string" then sub("^\\[::ffff:(?<ip>[0-9.]+)\\]"; "\(.ip)") else . end;'

# rm_log_select FILE FILTER: prints the lines of FILE for which the jq boolean FILTER holds, one compact object each
rm_log_select() {
    [ -f "$1" ] || return 0
    jq -R -c "$RM_JQ_DEFS fromjson? | objects | select($2)" "$1" || true
}

# rm_log_count FILE FILTER
rm_log_count() {
    rm_log_select "$1" "$2" | wc -l | tr -d ' '
}

# rm_wait_log FILE FILTER [TIMEOUT_S]: waits (bounded) for a line matching FILTER; prints the first; returns 1 on
# timeout
rm_wait_log() {
    local file=$1 filter=$2 deadline line
    deadline=$(($(rm_now_ms) + ${3:-10} * 1000))
    while :; do
        line=$(rm_log_select "$file" "$filter" | head -n 1)
        if [ -n "$line" ]; then
            printf '%s\n' "$line"
            return 0
        fi
        [ "$(rm_now_ms)" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

# rm_expect_log FILE FILTER WHAT [TIMEOUT_S]: like rm_wait_log (default 5 s), but fails the test with WHAT on
# timeout. The matching line is left in RM_LINE.
rm_expect_log() {
    RM_LINE=$(rm_wait_log "$1" "$2" "${4:-5}") || rm_fail "$3: no line matching '$2' in ${1#"$RM_TMP"/}"
    rm_log "ok: $3: $RM_LINE"
}

# rm_expect_log_nth FILE FILTER N WHAT: waits (10 s) for the Nth line matching FILTER, which is left in RM_LINE
rm_expect_log_nth() {
    local deadline=$(($(rm_now_ms) + 10000))
    until [ "$(rm_log_count "$1" "$2")" -ge "$3" ]; do
        [ "$(rm_now_ms)" -lt "$deadline" ] || rm_fail "$4: no line number $3 matching '$2' in ${1#"$RM_TMP"/}"
        sleep 0.05
    done
    RM_LINE=$(rm_log_select "$1" "$2" | sed -n "${3}p")
    rm_log "ok: $4: $RM_LINE"
}

# rm_expect_no_log FILE FILTER WHAT: fails if FILE already has a line matching FILTER
rm_expect_no_log() {
    local line
    line=$(rm_log_select "$1" "$2" | head -n 1)
    [ -z "$line" ] || rm_fail "$3: unexpected line in ${1#"$RM_TMP"/}: $line"
    rm_log "ok: $3"
}

# rm_json LINE FILTER: evaluates a jq expression on one JSON line (raw output)
rm_json() {
    printf '%s\n' "$1" | jq -r "$2"
}
