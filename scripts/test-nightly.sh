#!/usr/bin/env bash
# The nightly run: scripts/test.sh with the sanitize stage repeating every end-to-end test (CI repeats the ones of
# the untrusted inputs only, to stay within its time; docs/hardening.md). Arguments go to ctest, as for test.sh.
#
#   scripts/test-nightly.sh [CTEST ARGS...]      as root
set -euo pipefail
RM_SANITIZE_E2E=all exec bash "$(dirname "${BASH_SOURCE[0]}")/test.sh" "$@"
