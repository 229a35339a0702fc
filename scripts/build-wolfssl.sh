#!/usr/bin/env bash
# Build the accelerated wolfSSL that ringmesh links by default.
#
#   scripts/build-wolfssl.sh [PREFIX]
#
# PREFIX defaults to ${RM_BUILD_DIR:-<repo>/build}/deps/wolfssl. The result is PREFIX/lib/libwolfssl.a and
# PREFIX/include/wolfssl/..., which CMake picks up through RINGMESH_WOLFSSL_PREFIX.
#
# The sources are Debian's own wolfssl source package, with Debian's patches (the version of the installed
# libwolfssl-dev when there is one). It is configured with ringmesh's own feature set, not Debian's --enable-distro:
# that set serves every program in the archive and forces wolfSSL's OpenSSL-compatible layer on, which costs a proxy
# about 28 KB per TLS connection (an 11 KB WOLFSSL object, and an OpenSSL-style copy of every peer's certificate) and
# 14 % of its CPU per new connection. On top of the features, this build turns on AES-NI, the Intel assembly and the
# single-precision math with assembly, and builds a static, position-independent library. ringmesh's code builds
# against both this library and Debian's libwolfssl-dev (the RINGMESH_SYSTEM_WOLFSSL=ON fallback).
#
# The build is cached: PREFIX/ringmesh-wolfssl.stamp records the source version and the flags; when both match,
# the script does nothing. Delete the stamp (or PREFIX) to force a rebuild.
#
# Needs: dpkg-dev, autoconf, automake, libtool, make, a C compiler (scripts/bootstrap.sh installs them). Adding the
# deb-src entries that `apt-get source` needs requires root; the rest does not.
set -euo pipefail

readonly SOURCE_PACKAGE=wolfssl
readonly FALLBACK_PACKAGE=libwolfssl-dev
readonly DEB_SRC_BASENAME=/etc/apt/sources.list.d/ringmesh-deb-src

# ringmesh's feature set: TLS 1.3 and 1.2 (ECDHE only, no finite-field DH, no PSK, no TLS 1.0/1.1) with ALPN, SNI
# and session tickets (so that it can turn them off); P-256/384/521 and RSA (SP code with assembly), Ed25519 and X25519
# for peers and CAs that use them; X.509 generation of keys, CSRs and extensions for the SVIDs the control plane
# issues; AES-GCM with AES-NI; the public-key callbacks, through which ringmesh remembers ECDSA verifications it has
# already made (lib/tls_wolfssl.c); the atomic-record accessors (ATOMIC_USER), through which a finished TLS 1.3 session's
# traffic keys and record sequence numbers are handed to the kernel (kernel TLS, lib/ktls_linux.c).
readonly CONFIGURE_FLAGS=(
    --enable-static --disable-shared --with-pic --disable-examples --disable-silent-rules
    --enable-aesni --enable-intelasm --enable-sp --enable-sp-asm
    --enable-tls13 --disable-oldtls --enable-alpn --enable-sni --enable-supportedcurves --enable-session-ticket
    --enable-ecc --enable-curve25519 --enable-ed25519
    --enable-certgen --enable-certreq --enable-certext --enable-keygen --enable-pkcallbacks --enable-atomicuser
    --disable-opensslextra --disable-opensslall --disable-fpecc --disable-sessioncerts --disable-psk --disable-dh
)

# Macros added to the compiler flags (and so to options.h):
# - WOLFSSL_GETRANDOM: seeds from getrandom(2) instead of opening, reading and closing /dev/urandom. Every WOLFSSL
#   object seeds its own generator, so that was three system calls and a descriptor per TLS connection (2 % of a
#   proxy's CPU per new connection), and a proxy in a container without /dev could not seed at all.
# - WOLFSSL_ALWAYS_VERIFY_CB: the verify callback runs for the peer's leaf even when its chain verified, which is
#   where ringmesh applies the X509-SVID rules and the expected identities.
# - WOLFSSL_ALT_NAMES: the decoded certificate lists URI subjectAltNames (the SPIFFE ID).
readonly EXTRA_CPPFLAGS=(-DWOLFSSL_GETRANDOM -DWOLFSSL_ALWAYS_VERIFY_CB -DWOLFSSL_ALT_NAMES)

# Macros the installed options.h must define: the acceleration, and the features ringmesh uses.
readonly REQUIRED_DEFINES=(
    WOLFSSL_AESNI USE_INTEL_SPEEDUP WOLFSSL_SP_X86_64_ASM WOLFSSL_HAVE_SP_ECC HAVE_AESGCM
    WOLFSSL_TLS13 HAVE_ALPN HAVE_SNI HAVE_SUPPORTED_CURVES HAVE_SESSION_TICKET
    WOLFSSL_CERT_GEN WOLFSSL_CERT_REQ WOLFSSL_CERT_EXT WOLFSSL_KEY_GEN
    HAVE_ECC WOLFSSL_ALT_NAMES WOLFSSL_ALWAYS_VERIFY_CB WOLFSSL_GETRANDOM NO_DH HAVE_PK_CALLBACKS ATOMIC_USER
)
# Macros that would remove something ringmesh needs, or cost memory it cannot afford:
# - OPENSSL_EXTRA, OPENSSL_ALL and KEEP_PEER_CERT: every connection would keep an OpenSSL-style X509 copy of the
#   peer's certificate, with its public key as BIGNUMs (18 KB, 3 % of a new connection's CPU to make), and a WOLFSSL
#   object of 11 KB instead of 1.2 KB.
# - FP_ECC gives every thread 1.4 MB of thread-local point caches (sp_cache_256..1024), a proxy worker's whole
#   budget; P-256 runs on the SP assembly code without them.
# - SESSION_CERTS keeps a copy of the peer's whole chain in every session object: 37 KB per connection that ringmesh
#   never reads (peers are judged in the verify callback).
readonly FORBIDDEN_DEFINES=(NO_ECC256 WOLFSSL_NO_TLS12 NO_WOLFSSL_CLIENT NO_WOLFSSL_SERVER NO_SESSION_CACHE FP_ECC
    SESSION_CERTS OPENSSL_EXTRA OPENSSL_ALL KEEP_PEER_CERT NO_RSA)

log() { printf 'build-wolfssl: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=${1:-${RM_BUILD_DIR:-$repo_root/build}/deps/wolfssl}
[[ $prefix == /* ]] || prefix=$PWD/$prefix
prefix=${prefix%/}
stamp=$prefix/ringmesh-wolfssl.stamp

case "$(uname -m)" in
x86_64 | amd64) ;;
*) die "AES-NI and the Intel assembly need x86-64 (this is $(uname -m)); configure with -DRINGMESH_SYSTEM_WOLFSSL=ON" ;;
esac

# The source version to build: the one behind the installed libwolfssl-dev, so both libraries have the same API;
# without it, the newest source the deb-src entries offer (decided after they are set up).
installed_source_version() {
    local status
    status=$(dpkg-query -W -f='${db:Status-Abbrev}|${source:Version}' "$FALLBACK_PACKAGE" 2>/dev/null) || return 0
    [[ $status == ii* ]] && printf '%s' "${status#*|}"
    return 0
}

stamp_value() { sed -n "/^$1=/{s/^$1=//p;q}" "$stamp" 2>/dev/null || true; }

wanted_version=$(installed_source_version)
flags_text="${CONFIGURE_FLAGS[*]} ${EXTRA_CPPFLAGS[*]}"

if [[ -n $wanted_version && -f $stamp && -f $prefix/lib/libwolfssl.a && -f $prefix/include/wolfssl/options.h &&
    $(stamp_value version) == "$wanted_version" && $(stamp_value flags) == "$flags_text" ]]; then
    log "up to date: $SOURCE_PACKAGE $wanted_version in $prefix (AES-GCM: $(stamp_value aes_gcm))"
    exit 0
fi

# --- deb-src entries ------------------------------------------------------------------------------------------------

# Prints the repository URIs (with a trailing slash) whose Release file says Origin: Debian. Only those get a deb-src
# twin: a third-party repository may publish no sources, and the package must come from Debian anyway.
debian_repo_uris() {
    # shellcheck disable=SC2016 # $(ORIGIN) is apt's placeholder, not a shell expansion
    apt-get indextargets --format '$(ORIGIN)|$(REPO_URI)' 2>/dev/null | sed -n 's/^Debian|//p' | sort -u
}

is_debian_uri() {
    local uri=${1%/}/ known
    for known in $debian_uris; do
        [[ $uri == "$known" ]] && return 0
    done
    return 1
}

# deb822 stanzas with Types containing "deb" become stanzas with "Types: deb-src" and the same other fields.
derive_deb822() {
    local file=$1
    awk -v debian_uris="$debian_uris" '
        function flush(   i, keep, uris, n, u, known) {
            if (nfields == 0) return
            keep = has_deb && enabled
            if (keep) {
                keep = 0
                n = split(uri_field, uris, /[ \t]+/)
                for (i = 1; i <= n; i++) {
                    u = uris[i]
                    if (u == "") continue
                    sub(/\/*$/, "/", u)
                    if (index(" " debian_uris " ", " " u " ") > 0) keep = 1
                }
            }
            if (keep) {
                printf "%sTypes: deb-src\n", (emitted ? "\n" : "")
                for (i = 1; i <= nfields; i++) print fields[i]
                emitted = 1
            }
            nfields = 0; has_deb = 0; enabled = 1; uri_field = ""; last_key = ""
        }
        BEGIN { gsub(/\n/, " ", debian_uris); nfields = 0; enabled = 1; emitted = 0 }
        /^[ \t]*#/ { next }
        /^[ \t]*$/ { flush(); next }
        /^[ \t]/ {
            if (last_key != "" && last_key != "types") fields[nfields] = fields[nfields] "\n" $0
            if (last_key == "uris") uri_field = uri_field " " $0
            next
        }
        {
            key = tolower(substr($0, 1, index($0, ":") - 1))
            value = substr($0, index($0, ":") + 1)
            last_key = key
            if (key == "types") {
                if (value ~ /(^|[ \t])deb([ \t]|$)/) has_deb = 1
                next
            }
            if (key == "enabled" && value ~ /^[ \t]*(no|false|off)[ \t]*$/) enabled = 0
            if (key == "uris") uri_field = value
            fields[++nfields] = $0
        }
        END { flush() }
    ' "$file"
}

# One-line "deb [options] URI suite components..." entries become "deb-src ..." with the rest unchanged.
derive_one_line() {
    local file=$1 line rest uri
    while IFS= read -r line || [[ -n $line ]]; do
        [[ $line =~ ^[[:space:]]*deb[[:space:]]+(.*)$ ]] || continue
        rest=${BASH_REMATCH[1]}
        if [[ $rest == \[* ]]; then
            uri=${rest#*]}
            uri=${uri#"${uri%%[![:space:]]*}"}
        else
            uri=$rest
        fi
        uri=${uri%%[[:space:]]*}
        is_debian_uri "$uri" && printf 'deb-src %s\n' "$rest"
    done <"$file"
}

have_source_version() {
    local versions
    versions=$(apt-cache showsrc --only-source "$SOURCE_PACKAGE" 2>/dev/null | sed -n 's/^Version: //p') || return 1
    [[ -n $versions ]] || return 1
    [[ -z ${1:-} ]] || grep -qxF -- "$1" <<<"$versions"
}

apt_update_deb_src() {
    # Only the deb-src lists are fetched; the binary lists already on the machine are kept as they are.
    local list
    for list in "$DEB_SRC_BASENAME.sources" "$DEB_SRC_BASENAME.list"; do
        [[ -s $list ]] || continue
        log "apt-get update for $list"
        apt-get -q update -o APT::Get::List-Cleanup=0 -o Dir::Etc::SourceParts=/dev/null \
            -o Dir::Etc::SourceList="$list" >/dev/null
    done
}

ensure_deb_src() {
    have_source_version "$wanted_version" && return 0
    if [[ $(id -u) -ne 0 ]]; then
        die "no deb-src entry offers $SOURCE_PACKAGE ${wanted_version:-(any version)}; run as root once to add one"
    fi

    debian_uris=$(debian_repo_uris)
    if [[ -z $debian_uris ]]; then
        # Fresh machine or container: no Release files yet, so the origins are unknown.
        log "apt-get update (no package lists yet)"
        apt-get -q update >/dev/null
        debian_uris=$(debian_repo_uris)
    fi
    [[ -n $debian_uris ]] || die "no apt source with Origin: Debian is configured"

    local deb822="" one_line="" file
    for file in /etc/apt/sources.list.d/*.sources; do
        [[ -f $file && $file != "$DEB_SRC_BASENAME.sources" ]] || continue
        deb822+=$(derive_deb822 "$file")$'\n'
    done
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $file && $file != "$DEB_SRC_BASENAME.list" ]] || continue
        one_line+=$(derive_one_line "$file")$'\n'
    done
    deb822=$(sed '/./,$!d' <<<"$deb822")
    one_line=$(sed '/^$/d' <<<"$one_line")
    [[ -n $deb822 || -n $one_line ]] || die "found no Debian 'deb' entry in /etc/apt to derive a deb-src entry from"

    local header="# Written by ringmesh scripts/build-wolfssl.sh: source twins of the Debian entries, for apt-get source."
    if [[ -n $deb822 ]]; then
        printf '%s\n%s\n' "$header" "$deb822" >"$DEB_SRC_BASENAME.sources"
    else
        rm -f "$DEB_SRC_BASENAME.sources"
    fi
    if [[ -n $one_line ]]; then
        printf '%s\n%s\n' "$header" "$one_line" >"$DEB_SRC_BASENAME.list"
    else
        rm -f "$DEB_SRC_BASENAME.list"
    fi
    apt_update_deb_src
    have_source_version "$wanted_version" ||
        die "apt offers no source for $SOURCE_PACKAGE ${wanted_version:-(any version)} even with deb-src entries"
}

debian_uris=""
ensure_deb_src
if [[ -z $wanted_version ]]; then
    wanted_version=$(apt-cache showsrc --only-source "$SOURCE_PACKAGE" | sed -n 's/^Version: //p' |
        sort -V | tail -n 1)
    # apt's version order is what counts; sort -V agrees for Debian's wolfssl versions. Re-check the cache now.
    if [[ -f $stamp && -f $prefix/lib/libwolfssl.a && $(stamp_value version) == "$wanted_version" &&
        $(stamp_value flags) == "$flags_text" ]]; then
        log "up to date: $SOURCE_PACKAGE $wanted_version in $prefix (AES-GCM: $(stamp_value aes_gcm))"
        exit 0
    fi
fi

# --- fetch, configure, build ----------------------------------------------------------------------------------------

for tool in dpkg-source dpkg-buildflags autoreconf libtoolize make cc; do
    command -v "$tool" >/dev/null || die "$tool is missing (run scripts/bootstrap.sh)"
done

mkdir -p "$(dirname "$prefix")"
work=$(mktemp -d "$(dirname "$prefix")/wolfssl-build.XXXXXX")
cleanup() { [[ ${RM_KEEP_WOLFSSL_BUILD:-0} == 1 ]] || rm -rf "$work"; }
trap cleanup EXIT

mkdir "$work/src"
# apt downloads as the unprivileged _apt user when it can write the target directory.
if [[ $(id -u) -eq 0 ]] && id _apt >/dev/null 2>&1; then
    chmod 755 "$work"
    chown _apt "$work/src"
fi
log "fetching Debian source $SOURCE_PACKAGE $wanted_version"
# apt checks the files against the signed Sources index; dpkg-source then unpacks and applies Debian's patches.
(cd "$work/src" && apt-get -q source --only-source "$SOURCE_PACKAGE=$wanted_version" >"$work/apt-source.log" 2>&1) ||
    {
        cat "$work/apt-source.log" >&2
        die "apt-get source failed"
    }
srcdir=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d -name "$SOURCE_PACKAGE-*" | head -n 1)
[[ -n $srcdir && -f $srcdir/debian/rules ]] || die "unpacked source has no debian/rules"

log "configure flags: $flags_text"

cd "$srcdir"
# Debian's compiler flags (its rules file asks for hardening=+all), plus one section per function and object so
# that linking with --gc-sections keeps only the wolfSSL code ringmesh calls.
eval "$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)"
export CFLAGS="$CFLAGS -ffunction-sections -fdata-sections"
CFLAGS="$CFLAGS ${EXTRA_CPPFLAGS[*]}"
# dh_autoreconf: the Debian source ships configure.ac only.
log "autoreconf"
autoreconf -f -i >"$work/autoreconf.log" 2>&1 || {
    cat "$work/autoreconf.log" >&2
    die "autoreconf failed"
}
log "configure"
./configure --prefix="$prefix" --disable-dependency-tracking --disable-maintainer-mode \
    "${CONFIGURE_FLAGS[@]}" >"$work/configure.log" 2>&1 || {
    tail -n 40 "$work/configure.log" >&2
    die "configure failed (log: $work/configure.log, kept with RM_KEEP_WOLFSSL_BUILD=1)"
}
grep -q 'AES-NI: *yes' "$work/configure.log" || die "configure did not enable AES-NI"

# Only the library and the benchmark: the test programs (tests/api.c alone is huge) are not needed here.
jobs=$(nproc 2>/dev/null || echo 2)
log "make -j$jobs (library and benchmark)"
make -j"$jobs" src/libwolfssl.la wolfcrypt/benchmark/benchmark >"$work/make.log" 2>&1 || {
    tail -n 40 "$work/make.log" >&2
    die "make failed"
}

# --- check the result -----------------------------------------------------------------------------------------------

options_h=wolfssl/options.h
missing=()
for define in "${REQUIRED_DEFINES[@]}"; do
    grep -Eq "^#define $define( |$)" "$options_h" || missing+=("$define")
done
((${#missing[@]} == 0)) || die "$options_h lacks: ${missing[*]}"
for define in "${FORBIDDEN_DEFINES[@]}"; do
    ! grep -Eq "^#define $define( |$)" "$options_h" || die "$options_h defines $define"
done
[[ -f src/.libs/libwolfssl.a ]] || die "no static library was built"
# The AES-NI GCM code must really be in the archive, not just switched on in a header.
symbols=$(nm src/.libs/libwolfssl.a 2>/dev/null || true)
grep -Eq ' T AES_GCM_encrypt(_aesni)?$' <<<"$symbols" || die "libwolfssl.a has no AES-NI AES-GCM routine"
grep -Eq ' U getrandom$' <<<"$symbols" || die "libwolfssl.a does not seed from getrandom(2)"

[[ -x wolfcrypt/benchmark/benchmark ]] || die "wolfcrypt/benchmark/benchmark was not built"
log "benchmark (AES-GCM)"
bench_out=$(wolfcrypt/benchmark/benchmark -aes-gcm 2>&1) || {
    printf '%s\n' "$bench_out" >&2
    die "benchmark failed"
}
# Lines look like "AES-128-GCM-enc  7200 MiB took 1.000 seconds, 7199.5 MiB/s Cycles per byte = 0.42".
gcm_lines=$(grep -E '^AES-[0-9]+-GCM-(enc|dec) ' <<<"$bench_out" || true)
[[ -n $gcm_lines ]] || {
    printf '%s\n' "$bench_out" >&2
    die "no AES-GCM line in the benchmark output"
}
aes_gcm=$(awk '{
        for (i = 2; i <= NF; i++) if ($i ~ /^[MG]i?B\/s$|^[MG]B\/s$/) { printf "%s%s %s %s", sep, $1, $(i - 1), $i; sep = ", " }
    }' <<<"$gcm_lines")
[[ -n $aes_gcm ]] || aes_gcm=$(tr '\n' ';' <<<"$gcm_lines")
printf '%s\n' "$gcm_lines"

# --- install --------------------------------------------------------------------------------------------------------

stage=$work/stage
# The install targets for what was built (plain "make install" would first build every test program).
make install-libLTLIBRARIES install-includeHEADERS install-nobase_includeHEADERS install-pkgconfigDATA \
    DESTDIR="$stage" >"$work/install.log" 2>&1 || {
    tail -n 40 "$work/install.log" >&2
    die "make install failed"
}
# options.h is generated by configure and not always installed (Debian's libwolfssl-dev.install copies it too).
for header in wolfssl/options.h cyassl/options.h; do
    if [[ -f $header && ! -f $stage$prefix/include/$header ]]; then
        install -D -m 644 "$header" "$stage$prefix/include/$header"
    fi
done
# ringmesh links the static archive only.
rm -f "$stage$prefix"/lib/libwolfssl.so* "$stage$prefix"/lib/libwolfssl.la
[[ -f $stage$prefix/lib/libwolfssl.a && -f $stage$prefix/include/wolfssl/options.h ]] ||
    die "make install did not produce lib/libwolfssl.a and include/wolfssl/options.h"

# Link a program the way CMake links ringmesh (archive, libm, threads; position-independent executable), so a missing
# symbol or a non-PIC object shows up here and not in the project build. The program creates a TLS 1.3 context and
# prints the tag of an AES-256-GCM encryption long enough for the bulk AES-NI/AVX paths, and the SHA-256 of its
# ciphertext. Built once more against Debian's portable libwolfssl it must print the same: the assembly computes right.
cat >"$work/crypto_check.c" <<'CHECK_EOF'
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <stdio.h>
#include <string.h>

#define DATA_LEN (64 * 1024 + 13)

static unsigned char plain[DATA_LEN], cipher[DATA_LEN], decrypted[DATA_LEN];

static void print_hex(const char *label, const unsigned char *p, size_t n)
{
    printf("%s ", label);
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
    printf("\n");
}

int main(void)
{
    unsigned char key[32], iv[12], aad[20], tag[16], digest[WC_SHA256_DIGEST_SIZE];
    Aes aes;
    WOLFSSL_CTX *ctx;
    int ret = 1;

    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (unsigned char)(i * 7 + 1);
    for (size_t i = 0; i < sizeof(iv); i++)
        iv[i] = (unsigned char)(0xa0 + i);
    for (size_t i = 0; i < sizeof(aad); i++)
        aad[i] = (unsigned char)(i * 3);
    for (size_t i = 0; i < DATA_LEN; i++)
        plain[i] = (unsigned char)(i * 31 + 7);

    if (wolfSSL_Init() != WOLFSSL_SUCCESS)
        goto Exit;
    if ((ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method())) == NULL)
        goto Exit;
    wolfSSL_CTX_free(ctx);

    if (wc_AesInit(&aes, NULL, INVALID_DEVID) != 0 || wc_AesGcmSetKey(&aes, key, sizeof(key)) != 0)
        goto Exit;
    if (wc_AesGcmEncrypt(&aes, cipher, plain, DATA_LEN, iv, sizeof(iv), tag, sizeof(tag), aad, sizeof(aad)) != 0)
        goto Exit;
    if (wc_AesGcmDecrypt(&aes, decrypted, cipher, DATA_LEN, iv, sizeof(iv), tag, sizeof(tag), aad, sizeof(aad)) != 0 ||
        memcmp(decrypted, plain, DATA_LEN) != 0)
        goto Exit;
    wc_AesFree(&aes);
    print_hex("aes-256-gcm-tag", tag, sizeof(tag));
    if (wc_Sha256Hash(cipher, DATA_LEN, digest) != 0)
        goto Exit;
    print_hex("sha-256(ciphertext)", digest, sizeof(digest));
    ret = 0;

Exit:
    wolfSSL_Cleanup();
    if (ret != 0)
        printf("failed\n");
    return ret;
}
CHECK_EOF
cc -fPIE -pie -I"$stage$prefix/include" -o "$work/crypto_check" "$work/crypto_check.c" \
    "$stage$prefix/lib/libwolfssl.a" -lm -pthread >"$work/crypto_check.log" 2>&1 || {
    cat "$work/crypto_check.log" >&2
    die "a program cannot be linked against the static libwolfssl.a"
}
accelerated_result=$("$work/crypto_check") || die "the check program failed with the accelerated library"
if pkg-config --exists wolfssl 2>/dev/null; then
    # shellcheck disable=SC2046 # pkg-config prints several flags
    cc -o "$work/crypto_check_debian" "$work/crypto_check.c" $(pkg-config --cflags --libs wolfssl) \
        >>"$work/crypto_check.log" 2>&1 || {
        cat "$work/crypto_check.log" >&2
        die "the check program does not build against Debian's libwolfssl-dev"
    }
    debian_result=$("$work/crypto_check_debian") || die "the check program failed with Debian's libwolfssl"
    [[ $accelerated_result == "$debian_result" ]] ||
        die "AES-GCM/SHA-256 results differ from Debian's libwolfssl: $accelerated_result vs $debian_result"
    log "AES-256-GCM and SHA-256 results match Debian's libwolfssl"
else
    log "warning: Debian's libwolfssl-dev is not installed; results not cross-checked"
fi
{
    printf 'source=%s\n' "$SOURCE_PACKAGE"
    printf 'version=%s\n' "$wanted_version"
    printf 'flags=%s\n' "$flags_text"
    printf 'cflags=%s\n' "$CFLAGS"
    printf 'aes_gcm=%s\n' "$aes_gcm"
    printf 'built=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$stage$prefix/ringmesh-wolfssl.stamp"
rm -rf "$prefix"
mv "$stage$prefix" "$prefix"

log "installed $SOURCE_PACKAGE $wanted_version into $prefix"
log "AES-GCM: $aes_gcm"
