#!/usr/bin/env bash
#
# ringmesh-init --dry-run prints the iptables-restore input it would feed; that output is the whole product of the
# run, so a failure to write it (a full disk, here /dev/full) must fail the run with a log line on stderr, never
# exit 0 with the rules missing. --cleanup --dry-run is not run here: it reads the live nat table.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
rm_setup_no_netns
[ -x "$RM_INIT_BIN" ] || rm_fail "$RM_INIT_BIN is not built"
[ -w /dev/full ] || rm_skip "/dev/full is not available"

# the same flags written to a file: exit 0 and both families' input
rc=0
"$RM_INIT_BIN" --dry-run --ipv6 on >"$RM_TMP/dry" 2>"$RM_TMP/dry.err" || rc=$?
rm_assert_eq "$rc" 0 "--dry-run to a file exits"
grep -q '^# .*iptables-restore input' "$RM_TMP/dry" && grep -q '^# .*ip6tables-restore input' "$RM_TMP/dry" ||
    rm_fail "--dry-run output lacks its v4/v6 header comments: $(head -c 300 "$RM_TMP/dry")"

# the same to a device that refuses every write
rc=0
"$RM_INIT_BIN" --dry-run --ipv6 on >/dev/full 2>"$RM_TMP/full.err" || rc=$?
rm_assert_eq "$rc" 1 "--dry-run to /dev/full exits"
line=$(grep -m1 '"event":"dry_run_output_failed"' "$RM_TMP/full.err") ||
    rm_fail "no dry_run_output_failed line on stderr: $(cat "$RM_TMP/full.err")"
rm_assert_eq "$(jq -r .level <<<"$line")" error "the failure's log level"
rm_assert_eq "$(jq -r .code <<<"$line")" -28 "the failure's code (-ENOSPC, the write error of /dev/full)"
rm_finish
