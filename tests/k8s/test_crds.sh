#!/usr/bin/env bash
# The chart's CRDs (charts/ringmesh/crds/) refuse what the policy loader refuses where a schema can say it, and
# accept everything the loader accepts. Every AuthorizationPolicy and PeerAuthentication of tests/data/policy/table
# (the authorization table's policies) and tests/data/policy/crd (edge cases) goes to both:
#   - the loader: `ringmeshctl policy lint` on the document alone;
#   - the schema: tests/tools/crd_check.mjs, ajv with the API server's RE2 patterns, as the API server validates
#     (nulls dropped, unknown fields refused as kubectl's strict field validation does, metadata checked).
# Also: the CRDs are Kubernetes 1.33 CustomResourceDefinitions, their schemas are structural, and they are what
# scripts/gen-crds.py writes.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib_k8s.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib_k8s.sh"
rm_k8s_require_tools
[ -x "$RM_CTL_BIN" ] || rm_fail "$RM_CTL_BIN is missing: build the project first"

crds=("$RM_SOURCE_DIR"/charts/ringmesh/crds/*.yaml)
data=$RM_SOURCE_DIR/tests/data/policy
dir=$(mktemp -d /tmp/ringmesh-k8s-crds.XXXXXX)
trap 'rm -rf "$dir"' EXIT
crd_check() { NODE_PATH=$RM_NPM_TOOLS/node_modules node "$RM_SOURCE_DIR/tests/tools/crd_check.mjs" "$@"; }

out=$(rm_k8s_validate "${crds[@]}") || rm_fail "a CRD is not a valid Kubernetes 1.33 object: $out"
rm_assert_eq "$(grep -c '^ok  CustomResourceDefinition' <<<"$out")" 3 "CRDs valid against Kubernetes 1.33's schema"
out=$(crd_check structural "${crds[@]}") || rm_fail "a CRD schema is not structural: $out"
rm_log "ok: structural schemas, RE2 patterns ($(tr '\n' ' ' <<<"$out"))"

mkdir "$dir/gen"
python3 "$RM_SOURCE_DIR/scripts/gen-crds.py" "$dir/gen"
for f in "${crds[@]}"; do
    cmp -s "$f" "$dir/gen/${f##*/}" || rm_fail "${f#"$RM_SOURCE_DIR"/} differs from scripts/gen-crds.py's output: run it"
done
rm_log "ok: the CRDs are scripts/gen-crds.py's output"

# The authorization table's policies are templates for addresses the e2e test fills in; any address will do here.
mkdir "$dir/table" "$dir/split"
for f in "$data"/table/*.yaml; do
    sed -e 's/@WEB_IP@/198.18.1.2/g' -e 's/@EVIL_IP@/198.18.1.3/g' -e 's/@BACKEND_IP@/198.18.1.4/g' "$f" \
        >"$dir/table/${f##*/}"
done
crd_check validate --crds "${crds[@]}" --split "$dir/split" -- "$dir"/table/*.yaml "$data"/crd/*.yaml >"$dir/schema.txt"

# Each document: the loader's verdict beside the schema's.
n=0 bad=0
while read -r verdict id where rest; do
    n=$((n + 1))
    loader=accept
    "$RM_CTL_BIN" policy lint "$dir/split/$id.yaml" >"$dir/lint.txt" 2>&1 || loader=refuse
    case $where in
    */table/* | */crd/accepted.yaml*) want_loader=accept want_schema=accept ;;
    */crd/refused.yaml*) want_loader=refuse want_schema=refuse ;;
    */crd/schema-gaps.yaml*) want_loader=refuse want_schema=accept ;;
    *) rm_fail "unexpected document $where" ;;
    esac
    if [ "$loader" != "$want_loader" ]; then
        printf 'FAIL: %s: the loader should %s it: %s\n' "$where" "$want_loader" "$(head -3 "$dir/lint.txt")" >&2
        bad=$((bad + 1))
    elif [ "$verdict" != "$want_schema" ]; then
        if [ "$want_schema" = accept ] && [ "$loader" = accept ]; then
            printf 'FAIL: %s: the loader accepts it, the schema refuses it: %s\n' "$where" "$rest" >&2
        elif [ "$want_schema" = accept ]; then
            printf 'FAIL: %s: listed as a schema gap but the schema now refuses it: move it to refused.yaml\n' "$where" >&2
        else
            printf 'FAIL: %s: the loader refuses it (%s), the schema accepts it\n' "$where" "$(head -1 "$dir/lint.txt")" >&2
        fi
        bad=$((bad + 1))
    elif [ "$verdict" = refuse ]; then
        # refused at the field the case is about: the annotation's path starts one of the schema's messages
        expect=${rest##* expect=}
        [ "$expect" != "$rest" ] || rm_fail "$where: refused.yaml cases need the annotation test.ringmesh.io/schema-path"
        if ! grep -qF "$expect: " <<<"$rest"; then
            printf 'FAIL: %s: the schema refuses it, but not at %s: %s\n' "$where" "$expect" "$rest" >&2
            bad=$((bad + 1))
        fi
    fi
done <"$dir/schema.txt"
[ "$bad" = 0 ] || rm_fail "$bad of $n documents: the loader and the CRD schemas disagree"
rm_log "ok: $n documents, loader and schema agree: $(grep -c '^accept .*/\(table/\|crd/accepted.yaml\)' "$dir/schema.txt") accepted by both," \
    "$(grep -c '/crd/refused.yaml' "$dir/schema.txt") refused at the field named," \
    "$(grep -c '/crd/schema-gaps.yaml' "$dir/schema.txt") known gaps (loader-only checks)"
# the data must be there: a glob that matched nothing would make the loop above vacuous
[ "$(grep -c '/table/' "$dir/schema.txt")" -ge 25 ] || rm_fail "the table's policies were not all checked"
[ "$(grep -c '/crd/refused.yaml' "$dir/schema.txt")" -ge 50 ] || rm_fail "the refused cases were not all checked"
rm_log PASS
