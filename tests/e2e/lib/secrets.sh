# shellcheck shell=bash
# Secrets in logs: every end-to-end test ends by scanning the logs it produced for private-key material and tokens.
# Part of the end-to-end harness: sourced by tests/e2e/lib.sh (never on its own), whose globals it uses.
#
# What counts as a log: every *.log, *.stderr and *.err file under the test's directory (the proxies', the control
# plane's, the init container's and the tools' output, and the captured stderr of ringmeshctl). What is looked for:
#   - a PEM private-key header: "BEGIN PRIVATE KEY", "BEGIN EC PRIVATE KEY", "BEGIN ENCRYPTED PRIVATE KEY", ...;
#   - any 32-character piece of the base64 body of a private key the test made or the control plane wrote (every
#     PEM file under the directory holding "PRIVATE KEY"), taken at every 16th character, so that a key logged as
#     one base64 string, or split differently from its PEM lines, is found too;
#   - a JWT: three base64url parts, the first two JSON objects ("eyJ"), the signature non-empty;
#   - the text of every token file the test wrote (*.jwt, *token*), when at least 16 characters long.
# A finding names the file, the line and the kind of material, never the material itself.

# rm_secrets_scan DIR: prints one line per finding ("FILE:LINE: KIND"); returns 1 when there is one, else 0.
rm_secrets_scan() {
    local dir=$1 pieces found=0 f body i kind
    pieces=$(mktemp)
    # pieces of every private key's body under DIR (key files are not logs: they are read, never scanned)
    while IFS= read -r f; do
        body=$(awk '/-----BEGIN [A-Z ]*PRIVATE KEY-----/ {p = 1; next} /-----END/ {p = 0} p' "$f" | tr -d ' \n\r')
        for ((i = 0; i + 32 <= ${#body}; i += 16)); do
            printf '%s\n' "${body:i:32}"
        done
    done < <(grep -rlsI -- 'PRIVATE KEY-----' "$dir" --exclude='*.log' --exclude='*.stderr' --exclude='*.err' || true) \
        >"$pieces"
    # the tokens the test wrote to files
    while IFS= read -r f; do
        body=$(tr -d ' \n\r' <"$f")
        [ "${#body}" -ge 16 ] && printf '%s\n' "$body" >>"$pieces"
    done < <(find "$dir" -type f \( -name '*.jwt' -o -name '*token*' \) ! -name '*.log' ! -name '*.stderr' \
        ! -name '*.err' 2>/dev/null || true)

    while IFS= read -r f; do
        while IFS=: read -r i kind; do
            printf '%s:%s: %s\n' "${f#"$dir"/}" "$i" "$kind"
            found=1
        done < <(
            grep -naE -- '-----BEGIN [A-Z ]*PRIVATE KEY-----' "$f" | sed -E 's/^([0-9]+):.*/\1:PEM private-key header/'
            grep -naE -- 'eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{8,}' "$f" |
                sed -E 's/^([0-9]+):.*/\1:JWT (header.payload.signature)/'
            if [ -s "$pieces" ]; then
                grep -naF -f "$pieces" -- "$f" | sed -E 's/^([0-9]+):.*/\1:a piece of a private key or token of this test/'
            fi
        )
    done < <(find "$dir" -type f \( -name '*.log' -o -name '*.stderr' -o -name '*.err' \) 2>/dev/null | sort)
    rm -f "$pieces"
    return "$found"
}
