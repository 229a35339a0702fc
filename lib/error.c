#include "ringmesh/error.h"

#include <string.h>

const char *rm_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case RM_ERR_TLS_WANT_IO:
        return "TLS needs more I/O";
    case RM_ERR_TLS_HANDSHAKE:
        return "TLS handshake failed";
    case RM_ERR_TLS_NO_PEER_CERT:
        return "peer presented no certificate";
    case RM_ERR_TLS_UNTRUSTED:
        return "peer certificate chain does not verify to the trust bundle";
    case RM_ERR_TLS_EXPIRED:
        return "peer certificate has expired";
    case RM_ERR_TLS_NOT_YET_VALID:
        return "peer certificate is not yet valid";
    case RM_ERR_TLS_ALPN:
        return "peer did not negotiate the mesh ALPN (ringmesh/1)";
    case RM_ERR_TLS_CLOSED:
        return "peer closed the TLS session";
    case RM_ERR_TLS_PROTOCOL:
        return "TLS record error";
    case RM_ERR_TLS_CONFIG:
        return "TLS certificate, key or bundle could not be loaded";
    case RM_ERR_TLS_NO_MEMORY:
        return "TLS out of memory";
    case RM_ERR_TLS_VERSION:
        return "peer does not offer TLS 1.3 (protocol version refused)";
    case RM_ERR_TLS_NO_SHARED_CIPHER:
        return "no cipher suite in common with the peer (accepted: TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, "
               "TLS_CHACHA20_POLY1305_SHA256)";
    case RM_ERR_TLS_NO_SHARED_GROUP:
        return "no key exchange group in common with the peer (accepted: P-256, X25519, P-384)";
    case RM_ERR_TLS_PEER_ALERT:
        return "peer ended the session with a fatal alert (peer_alert names it)";
    case RM_ERR_TLS_BAD_KEY_SHARE:
        return "peer's key share is not a valid public key of its group";
    case RM_ERR_SPIFFE_SCHEME:
        return "SPIFFE ID must start with spiffe:// (lower case)";
    case RM_ERR_SPIFFE_EMPTY_TD:
        return "SPIFFE ID trust domain is empty";
    case RM_ERR_SPIFFE_TD_CHARS:
        return "SPIFFE ID trust domain may contain only a-z, 0-9, '.', '-' and '_'";
    case RM_ERR_SPIFFE_TD_TOO_LONG:
        return "SPIFFE ID trust domain is longer than 255 bytes";
    case RM_ERR_SPIFFE_PATH_CHARS:
        return "SPIFFE ID path may contain only A-Z, a-z, 0-9, '.', '-' and '_' between slashes";
    case RM_ERR_SPIFFE_EMPTY_SEGMENT:
        return "SPIFFE ID path has an empty segment";
    case RM_ERR_SPIFFE_DOT_SEGMENT:
        return "SPIFFE ID path has a '.' or '..' segment";
    case RM_ERR_SPIFFE_QUERY_FRAGMENT:
        return "SPIFFE ID must not have a query or fragment";
    case RM_ERR_SPIFFE_TOO_LONG:
        return "SPIFFE ID is longer than 2048 bytes";
    case RM_ERR_SPIFFE_USERINFO_PORT:
        return "SPIFFE ID authority must not have userinfo or a port";
    case RM_ERR_SVID_PARSE:
        return "certificate could not be parsed";
    case RM_ERR_SVID_NO_URI_SAN:
        return "X509-SVID leaf has no URI SAN";
    case RM_ERR_SVID_MULTIPLE_URI_SANS:
        return "X509-SVID leaf must have exactly one URI SAN";
    case RM_ERR_SVID_LEAF_IS_CA:
        return "X509-SVID leaf must not be a CA (basicConstraints cA=true)";
    case RM_ERR_SVID_NO_DIGITAL_SIGNATURE:
        return "X509-SVID leaf key usage must include digitalSignature";
    case RM_ERR_SVID_KEY_CERT_SIGN:
        return "X509-SVID leaf key usage must not include keyCertSign";
    case RM_ERR_SVID_CRL_SIGN:
        return "X509-SVID leaf key usage must not include cRLSign";
    case RM_ERR_SVID_EXPIRED:
        return "X509-SVID has expired (now is after notAfter)";
    case RM_ERR_SVID_NOT_YET_VALID:
        return "X509-SVID is not yet valid (now is before notBefore)";
    case RM_ERR_SVID_UNTRUSTED:
        return "X509-SVID chain does not verify to the trust bundle";
    case RM_ERR_SVID_TRUST_DOMAIN:
        return "SPIFFE ID is not in the expected trust domain";
    case RM_ERR_SVID_UNEXPECTED_ID:
        return "SPIFFE ID is not one of the identities expected for this destination";
    case RM_ERR_SVID_NO_KEY_USAGE:
        return "X509-SVID leaf has no key usage extension";
    case RM_ERR_SVID_BAD_SAN_URI:
        return "X509-SVID URI SAN is not a valid SPIFFE ID";
    case RM_ERR_SVID_NO_PATH:
        return "SPIFFE ID of an X509-SVID leaf must have a path (the trust domain's own ID names no workload)";
    case RM_ERR_SVID_EXT_KEY_USAGE:
        return "X509-SVID leaf extended key usage must include both serverAuth and clientAuth";
    case RM_ERR_SVID_CA_NOT_CA:
        return "signing certificate in the chain is not a CA with keyCertSign";
    case RM_ERR_SVID_ISSUE:
        return "certificate could not be issued (key generation or signing failed)";
    case RM_ERR_SVID_CA_KEY:
        return "CA private key could not be read or does not belong to the CA certificate";
    case RM_ERR_SVID_KEY_TYPE:
        return "key is not an ECDSA P-256 key";
    case RM_ERR_CSR_PARSE:
        return "certificate signing request could not be parsed";
    case RM_ERR_CSR_SIGNATURE:
        return "certificate signing request is not signed by its own key";
    case RM_ERR_JWT_MALFORMED:
        return "token is not a well-formed JWT";
    case RM_ERR_JWT_ALG:
        return "token's signature algorithm is missing or not accepted";
    case RM_ERR_JWT_UNKNOWN_KEY:
        return "token is signed by a key the JWKS does not hold";
    case RM_ERR_JWT_SIGNATURE:
        return "token signature does not verify";
    case RM_ERR_JWT_EXPIRED:
        return "token has expired or has no expiry";
    case RM_ERR_JWT_NOT_YET_VALID:
        return "token is not valid yet (nbf)";
    case RM_ERR_JWT_ISSUER:
        return "token issuer is not the expected one";
    case RM_ERR_JWT_AUDIENCE:
        return "token audience does not include the expected one";
    case RM_ERR_JWT_CLAIMS:
        return "token lacks valid namespace or service account claims";
    case RM_ERR_JWKS:
        return "JWKS document could not be read or holds no usable key";
    case RM_ERR_AUTH_REVIEW:
        return "token review failed or did not authenticate the token";
    case RM_ERR_CONFIG_PARSE:
        return "configuration could not be parsed";
    case RM_ERR_CONFIG_VALUE:
        return "configuration has an invalid value";
    case RM_ERR_CONFIG_IO:
        return "configuration file could not be read";
    case RM_ERR_POLICY_INVALID:
        return "invalid authorization policy";
    }
    if (err < 0 && err > -4096)
        return strerror(-err); /* glibc's strerror returns static text for every valid errno */
    return "unknown error";
}
