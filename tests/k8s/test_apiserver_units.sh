#!/usr/bin/env bash
# Unit checks of the stand-in Kubernetes API server's pure parts (tests/k8s/apiserver/unit_checks.py): strategic
# merge patch directives, JSON patch, selector grammar, history snapshots and expiry, custom-resource schemas.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
/usr/bin/python3 "$RM_SOURCE_DIR/tests/k8s/apiserver/unit_checks.py" -v || rm_fail "a unit check of the stand-in failed"
rm_log PASS
