/* Error numbers shared by every ringmesh module.
 *
 * I/O errors are negative errno values, the same as an io_uring completion's res. TLS, SVID, config and
 * policy errors have their own ranges below -4096 (so they never collide with errno) and are named by
 * rm_strerror(). wolfSSL's codes are converted at the TLS backend's edge and never travel further. */
#ifndef RINGMESH_ERROR_H
#define RINGMESH_ERROR_H

#define RM_ERR_CLASS_TLS    (-0x10000)
#define RM_ERR_CLASS_SVID   (-0x20000)
#define RM_ERR_CLASS_CONFIG (-0x30000)
#define RM_ERR_CLASS_POLICY (-0x40000)
#define RM_ERR_CLASS_AUTH   (-0x50000)

enum {
    /* TLS backend */
    RM_ERR_TLS_WANT_IO = RM_ERR_CLASS_TLS - 1,       /* not an error: the handshake or record needs more I/O */
    RM_ERR_TLS_HANDSHAKE = RM_ERR_CLASS_TLS - 2,     /* handshake failed (protocol or alert) */
    RM_ERR_TLS_NO_PEER_CERT = RM_ERR_CLASS_TLS - 3,  /* peer presented no certificate */
    RM_ERR_TLS_UNTRUSTED = RM_ERR_CLASS_TLS - 4,     /* chain does not lead to the trust bundle */
    RM_ERR_TLS_EXPIRED = RM_ERR_CLASS_TLS - 5,       /* a certificate in the chain has expired */
    RM_ERR_TLS_NOT_YET_VALID = RM_ERR_CLASS_TLS - 6, /* a certificate in the chain is not yet valid */
    RM_ERR_TLS_ALPN = RM_ERR_CLASS_TLS - 7,          /* peer did not speak the mesh ALPN */
    RM_ERR_TLS_CLOSED = RM_ERR_CLASS_TLS - 8,        /* peer sent close_notify */
    RM_ERR_TLS_PROTOCOL = RM_ERR_CLASS_TLS - 9,      /* record layer error after the handshake */
    RM_ERR_TLS_CONFIG = RM_ERR_CLASS_TLS - 10,       /* certificate, key or bundle could not be loaded */
    RM_ERR_TLS_NO_MEMORY = RM_ERR_CLASS_TLS - 11,
    RM_ERR_TLS_VERSION = RM_ERR_CLASS_TLS - 12,          /* peer does not offer TLS 1.3 */
    RM_ERR_TLS_NO_SHARED_CIPHER = RM_ERR_CLASS_TLS - 13, /* no cipher suite in common with the peer */
    RM_ERR_TLS_NO_SHARED_GROUP = RM_ERR_CLASS_TLS - 14,  /* no key exchange group in common with the peer */
    RM_ERR_TLS_PEER_ALERT = RM_ERR_CLASS_TLS - 15,       /* peer sent a fatal alert (it refused us) */
    RM_ERR_TLS_BAD_KEY_SHARE = RM_ERR_CLASS_TLS - 16,    /* peer's key share is not a valid key of its group */

    /* SPIFFE ID syntax and X.509-SVID rules (one code per rule, see svid.h) */
    RM_ERR_SPIFFE_SCHEME = RM_ERR_CLASS_SVID - 1,              /* scheme is not "spiffe://" (lower case) */
    RM_ERR_SPIFFE_EMPTY_TD = RM_ERR_CLASS_SVID - 2,            /* trust domain is empty */
    RM_ERR_SPIFFE_TD_CHARS = RM_ERR_CLASS_SVID - 3,            /* trust domain has a character outside [a-z0-9.-_] */
    RM_ERR_SPIFFE_TD_TOO_LONG = RM_ERR_CLASS_SVID - 4,         /* trust domain longer than 255 bytes */
    RM_ERR_SPIFFE_PATH_CHARS = RM_ERR_CLASS_SVID - 5,          /* path has a character outside [A-Za-z0-9.-_] */
    RM_ERR_SPIFFE_EMPTY_SEGMENT = RM_ERR_CLASS_SVID - 6,       /* path has an empty segment ("//" or trailing "/") */
    RM_ERR_SPIFFE_DOT_SEGMENT = RM_ERR_CLASS_SVID - 7,         /* path has a "." or ".." segment */
    RM_ERR_SPIFFE_QUERY_FRAGMENT = RM_ERR_CLASS_SVID - 8,      /* ID has a query or fragment */
    RM_ERR_SPIFFE_TOO_LONG = RM_ERR_CLASS_SVID - 9,            /* ID longer than 2048 bytes */
    RM_ERR_SPIFFE_USERINFO_PORT = RM_ERR_CLASS_SVID - 10,      /* authority has userinfo or a port */
    RM_ERR_SVID_PARSE = RM_ERR_CLASS_SVID - 20,                /* certificate could not be parsed */
    RM_ERR_SVID_NO_URI_SAN = RM_ERR_CLASS_SVID - 21,           /* leaf has no URI SAN */
    RM_ERR_SVID_MULTIPLE_URI_SANS = RM_ERR_CLASS_SVID - 22,    /* leaf has more than one URI SAN */
    RM_ERR_SVID_LEAF_IS_CA = RM_ERR_CLASS_SVID - 23,           /* leaf has basicConstraints CA:TRUE */
    RM_ERR_SVID_NO_DIGITAL_SIGNATURE = RM_ERR_CLASS_SVID - 24, /* leaf key usage lacks digitalSignature */
    RM_ERR_SVID_KEY_CERT_SIGN = RM_ERR_CLASS_SVID - 25,        /* leaf key usage has keyCertSign */
    RM_ERR_SVID_CRL_SIGN = RM_ERR_CLASS_SVID - 26,             /* leaf key usage has cRLSign */
    RM_ERR_SVID_EXPIRED = RM_ERR_CLASS_SVID - 27,              /* now is after notAfter */
    RM_ERR_SVID_NOT_YET_VALID = RM_ERR_CLASS_SVID - 28,        /* now is before notBefore */
    RM_ERR_SVID_UNTRUSTED = RM_ERR_CLASS_SVID - 29,            /* chain does not verify to the bundle */
    RM_ERR_SVID_TRUST_DOMAIN = RM_ERR_CLASS_SVID - 30,         /* ID's trust domain is not the expected one */
    RM_ERR_SVID_UNEXPECTED_ID = RM_ERR_CLASS_SVID - 31,        /* ID is not one of the expected IDs */
    RM_ERR_SVID_NO_KEY_USAGE = RM_ERR_CLASS_SVID - 32,         /* leaf has no key usage extension */
    RM_ERR_SVID_BAD_SAN_URI = RM_ERR_CLASS_SVID - 33,          /* the URI SAN is not a valid SPIFFE ID */
    RM_ERR_SVID_CA_NOT_CA = RM_ERR_CLASS_SVID - 34,     /* an intermediate/root is not a CA or lacks keyCertSign */
    RM_ERR_SVID_NO_PATH = RM_ERR_CLASS_SVID - 35,       /* leaf's SPIFFE ID has no path (the trust domain's own ID) */
    RM_ERR_SVID_EXT_KEY_USAGE = RM_ERR_CLASS_SVID - 36, /* leaf's extended key usage lacks serverAuth or clientAuth */
    RM_ERR_SVID_ISSUE = RM_ERR_CLASS_SVID - 40,         /* key generation or signing failed */
    RM_ERR_SVID_CA_KEY = RM_ERR_CLASS_SVID - 41,        /* CA key unreadable or not the CA certificate's key */
    RM_ERR_SVID_KEY_TYPE = RM_ERR_CLASS_SVID - 42,      /* key is not an ECDSA P-256 key */
    RM_ERR_CSR_PARSE = RM_ERR_CLASS_SVID - 50,          /* PKCS#10 request could not be parsed */
    RM_ERR_CSR_SIGNATURE = RM_ERR_CLASS_SVID - 51,      /* PKCS#10 request is not signed by its own key */

    /* configuration */
    RM_ERR_CONFIG_PARSE = RM_ERR_CLASS_CONFIG - 1, /* YAML syntax or schema error (message has file/line/field) */
    RM_ERR_CONFIG_VALUE = RM_ERR_CLASS_CONFIG - 2, /* a field has an invalid value */
    RM_ERR_CONFIG_IO = RM_ERR_CLASS_CONFIG - 3,    /* file could not be read */

    /* authorization policy */
    RM_ERR_POLICY_INVALID = RM_ERR_CLASS_POLICY - 1, /* a policy violates the language (message says where) */

    /* credentials (JWT / projected ServiceAccount tokens) and their attestation */
    RM_ERR_JWT_MALFORMED = RM_ERR_CLASS_AUTH - 1,     /* not three base64url parts of JSON */
    RM_ERR_JWT_ALG = RM_ERR_CLASS_AUTH - 2,           /* alg missing, "none" or not one we accept */
    RM_ERR_JWT_UNKNOWN_KEY = RM_ERR_CLASS_AUTH - 3,   /* no key in the JWKS matches kid/alg */
    RM_ERR_JWT_SIGNATURE = RM_ERR_CLASS_AUTH - 4,     /* signature does not verify */
    RM_ERR_JWT_EXPIRED = RM_ERR_CLASS_AUTH - 5,       /* now is at or after exp (+ leeway), or exp missing */
    RM_ERR_JWT_NOT_YET_VALID = RM_ERR_CLASS_AUTH - 6, /* now is before nbf (- leeway) */
    RM_ERR_JWT_ISSUER = RM_ERR_CLASS_AUTH - 7,        /* iss is not the configured issuer */
    RM_ERR_JWT_AUDIENCE = RM_ERR_CLASS_AUTH - 8,      /* aud does not contain the configured audience */
    RM_ERR_JWT_CLAIMS = RM_ERR_CLASS_AUTH - 9,        /* namespace / service account claims missing or invalid */
    RM_ERR_JWKS = RM_ERR_CLASS_AUTH - 10,             /* JWKS document unreadable or has no usable key */
    RM_ERR_AUTH_REVIEW = RM_ERR_CLASS_AUTH - 11,      /* TokenReview call failed or was not authenticated */
};

/** Returns a static, human-readable name for any ringmesh error number (negative errno included). Never NULL. */
const char *rm_strerror(int err);

#endif
