#!/usr/bin/env bash
# The stand-in Kubernetes API server (tests/k8s/apiserver) proven against a client that is not ours: Debian's
# python3-kubernetes. Its watch.Watch list-then-watch loop sees ADDED/MODIFIED/DELETED made by another client,
# resumes after the server ends the watch, relists after 410 Gone and after a cut connection, gets bookmarks; its
# limit/_continue pagination walks a big list from one snapshot and meets an expired continue token
# (tests/k8s/apiserver/check_python_client.py says each check). Then every object the server held is checked against
# Kubernetes 1.33's schema.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib_k8s.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib_k8s.sh"
# shellcheck source-path=SCRIPTDIR source=apiserver/lib_apiserver.sh
source "$(dirname "${BASH_SOURCE[0]}")/apiserver/lib_apiserver.sh"
rm_k8s_require_tools
/usr/bin/python3 -c 'import kubernetes' 2>/dev/null || rm_fail "python3-kubernetes is missing: run scripts/bootstrap.sh"
rm_setup_no_netns

# bookmarks only when the test asks for one (POST /_test/bookmark), so the event order the checks expect is exact
rm_kube_api_start - --bookmark-seconds 600
timeout 180 /usr/bin/python3 "$RM_SOURCE_DIR/tests/k8s/apiserver/check_python_client.py" "$RM_KUBECONFIG" \
    "$RM_KUBE_LOG" || rm_fail "python3-kubernetes against the stand-in failed (see above)"

rm_kube_api GET /_test/objects -f >"$RM_TMP/objects.json"
out=$(rm_k8s_validate "$RM_TMP/objects.json") || rm_fail "an object the stand-in served is not valid: $(grep -v '^ok' <<<"$out")"
rm_log "ok: all $(grep -c '^ok ' <<<"$out") objects the stand-in held validate against Kubernetes 1.33's schema"
rm_kube_api_clean
rm_log PASS
