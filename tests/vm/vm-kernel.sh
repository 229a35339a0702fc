#!/usr/bin/env bash
# Fetch the kernel that tests/vm/vm-run.sh boots: Debian's own, which has kernel TLS (CONFIG_TLS=m) whatever the
# kernel of the machine running the tests was built with.
#
#   tests/vm/vm-kernel.sh [CACHE_DIR]
#
# CACHE_DIR defaults to ${RM_BUILD_DIR:-<repo>/build}/deps/vm-kernel. The script prints CACHE_DIR (its only output
# on stdout; progress goes to stderr), which then holds:
#
#   vmlinuz              the kernel image
#   config               the kernel's configuration
#   modules/             the kernel's modules directory (lib/modules/<version>): the subtrees in MODULE_SUBTREES
#                        below, with a modules.dep made by busybox depmod (the package has none: depmod runs when
#                        the package is installed, and it is not installed here)
#   vm-kernel.stamp      package=, version= (of the .deb), kernel= (uname -r in the guest), subtrees=
#
# The package is linux-image-<abi>-amd64, the one the metapackage linux-image-amd64 depends on in the apt lists of
# this machine, fetched with `apt-get download` (nothing is installed). When the stamp names that package, version
# and subtrees, the script does nothing. When the apt lists know no linux-image-amd64 (a fresh machine), it runs
# `apt-get update` once (root only); when the lists still cannot say, a complete cache is used as it is.
# Concurrent runs are serialised with flock on CACHE_DIR/.lock.
#
# Exit status: 0 when CACHE_DIR holds the kernel; 3 when apt could not fetch (apt-get update or apt-get download
# failed: no network, no mirror), so that a test can tell an offline machine from a broken cache; 1 otherwise.
#
# Needs: apt, dpkg-deb, tar, busybox (busybox-static), flock (util-linux); root for apt-get update.
set -euo pipefail

readonly METAPACKAGE=linux-image-amd64
# Which parts of the modules tree are kept (about 40 MB of the 400 MB): kernel TLS, netfilter and everything else
# under net/, the crypto and library modules those depend on with the x86 ones (AES-NI, CLMUL GHASH, ChaCha20 and
# Poly1305 with SIMD), and the virtual interfaces a test may create.
readonly MODULE_SUBTREES=(kernel/net kernel/crypto kernel/lib kernel/arch/x86/crypto kernel/drivers/net/veth.ko
    kernel/drivers/net/dummy.ko)

log() { printf 'vm-kernel: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}
die_fetch() {
    log "error: $*"
    exit 3
}

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache=${1:-${RM_BUILD_DIR:-$repo_root/build}/deps/vm-kernel}
[[ $cache == /* ]] || cache=$PWD/$cache
cache=${cache%/}
stamp=$cache/vm-kernel.stamp

# command -> the Debian package that provides it
require() {
    command -v "$1" >/dev/null 2>&1 ||
        die "'$1' is not installed (install the Debian package $2; scripts/bootstrap.sh does)"
}
require apt-get apt
require apt-cache apt
require dpkg-deb dpkg
require tar tar
require busybox busybox-static
require flock util-linux

case "$(dpkg --print-architecture 2>/dev/null || uname -m)" in
amd64 | x86_64) ;;
*) die "the virtual machine runs Debian's amd64 kernel; this machine is $(uname -m)" ;;
esac

stamp_value() { sed -n "/^$1=/{s/^$1=//p;q}" "$stamp" 2>/dev/null || true; }

cache_complete() {
    [[ -f $stamp && -f $cache/vmlinuz && -f $cache/modules/modules.dep ]] &&
        [[ -n $(find "$cache/modules/kernel/net/tls" -name 'tls.ko*' -print -quit 2>/dev/null) ]]
}

# Prints the linux-image-<abi>-amd64 package the candidate linux-image-amd64 depends on (nothing if unknown).
resolve_package() {
    apt-cache depends "$METAPACKAGE" 2>/dev/null |
        sed -n 's/^ *|\{0,1\}Depends: \(linux-image-[0-9][^ <>]*-amd64\) *$/\1/p' | head -n 1 || true
}

# Prints the candidate version of package $1 (nothing if none).
candidate_version() {
    apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p' | grep -vx '(none)' | head -n 1 || true
}

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock -w 900 9 || die "another vm-kernel.sh has held $cache/.lock for 15 minutes"
rm -rf "$cache"/.staging.* # what a killed run left (the lock is ours)

subtrees_text="${MODULE_SUBTREES[*]}"
package=$(resolve_package)
version=""
[[ -z $package ]] || version=$(candidate_version "$package")
if [[ -z $package || -z $version ]]; then
    if cache_complete && [[ $(stamp_value subtrees) == "$subtrees_text" ]]; then
        log "the apt lists name no $METAPACKAGE; using the cached kernel $(stamp_value kernel) ($(stamp_value version))"
        printf '%s\n' "$cache"
        exit 0
    fi
    [[ $(id -u) == 0 ]] || die "the apt lists know no $METAPACKAGE and only root may run apt-get update"
    log "the apt lists know no $METAPACKAGE: running apt-get update"
    apt-get update >&2 || die_fetch "apt-get update failed"
    package=$(resolve_package)
    [[ -n $package ]] ||
        die "$METAPACKAGE depends on no linux-image-<abi>-amd64 package (apt-cache depends $METAPACKAGE)"
    version=$(candidate_version "$package")
    [[ -n $version ]] || die "no version of $package can be downloaded (apt-cache policy $package)"
fi

if cache_complete && [[ $(stamp_value package) == "$package" && $(stamp_value version) == "$version" &&
    $(stamp_value subtrees) == "$subtrees_text" ]]; then
    log "up to date: $package $version (kernel $(stamp_value kernel)) in $cache"
    printf '%s\n' "$cache"
    exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/rm-vm-kernel.XXXXXX")
staging=""
cleanup() {
    rm -rf "$work"
    [[ -z $staging ]] || rm -rf "$staging"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# apt fetches as the unprivileged _apt user when it can write the directory; otherwise it warns and fetches as root.
if [[ $(id -u) == 0 ]] && id _apt >/dev/null 2>&1; then
    chown _apt "$work"
fi
log "downloading $package $version"
(cd "$work" && apt-get download "$package=$version" >&2) || die_fetch "apt-get download $package=$version failed"
deb=$(find "$work" -maxdepth 1 -name "${package}_*.deb" -print -quit)
[[ -n $deb ]] || die "apt-get download left no ${package}_*.deb"

# The members to extract, by exact name (tar fails on a pattern that matches nothing): the kernel image and its
# config, the modules directory's own files and the kept subtrees. Debian 12 ships ./lib/modules/<v>; a package
# laid out for a merged /usr ships ./usr/lib/modules/<v>: both are accepted.
dpkg-deb -c "$deb" | awk '{ print $NF }' >"$work/members" || die "cannot list $deb"
vmlinuz_member=$(grep -E '^\./boot/vmlinuz-[^/]+$' "$work/members" | head -n 1) || true
[[ -n $vmlinuz_member ]] || die "$deb holds no ./boot/vmlinuz-*"
kernel=${vmlinuz_member#./boot/vmlinuz-}
modules_member=$(grep -E "^\./(usr/)?lib/modules/$kernel/\$" "$work/members" | head -n 1) || true
[[ -n $modules_member ]] || die "$deb holds no lib/modules/$kernel/"
{
    printf '%s\n' "$vmlinuz_member"
    grep -xF "./boot/config-$kernel" "$work/members" || true
    grep -E "^${modules_member//./\\.}modules\.[^/]+$" "$work/members" || true
    for sub in "${MODULE_SUBTREES[@]}"; do
        grep -E "^${modules_member//./\\.}${sub//./\\.}(/.*[^/]|\.[a-z]+)?\$" "$work/members" || true
    done
} >"$work/extract"
grep -qE '/kernel/net/tls/tls\.ko' "$work/extract" || die "$deb holds no kernel/net/tls/tls.ko (no CONFIG_TLS=m)"

staging=$(mktemp -d "$cache/.staging.XXXXXX")
log "extracting kernel $kernel ($(wc -l <"$work/extract") files)"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$staging" --no-same-owner -T "$work/extract" ||
    die "cannot extract $deb"
rm -f "$deb"
mkdir -p "$staging/out"
mv "$staging/boot/vmlinuz-$kernel" "$staging/out/vmlinuz"
[[ ! -f $staging/boot/config-$kernel ]] || mv "$staging/boot/config-$kernel" "$staging/out/config"
# busybox depmod reads BASE/lib/modules/<v>; put the tree there whatever the package's layout.
if [[ ${modules_member#./} == usr/* ]]; then
    mkdir -p "$staging/lib/modules"
    mv "$staging/usr/lib/modules/$kernel" "$staging/lib/modules/$kernel"
fi
busybox depmod -b "$staging" "$kernel" >&2 || die "busybox depmod failed on the modules of $kernel"
mv "$staging/lib/modules/$kernel" "$staging/out/modules"
[[ -f $staging/out/modules/modules.dep ]] || die "busybox depmod wrote no modules.dep"

# Swap the new files in; the stamp goes last, so an interrupted run leaves an incomplete cache that is redone.
rm -f "$stamp"
rm -rf "$cache/vmlinuz" "$cache/config" "$cache/modules"
mv "$staging/out/vmlinuz" "$staging/out/modules" "$cache/"
[[ ! -f $staging/out/config ]] || mv "$staging/out/config" "$cache/"
printf 'package=%s\nversion=%s\nkernel=%s\nsubtrees=%s\n' "$package" "$version" "$kernel" "$subtrees_text" \
    >"$stamp.tmp"
mv "$stamp.tmp" "$stamp"
log "kernel $kernel ($package $version) in $cache"
printf '%s\n' "$cache"
