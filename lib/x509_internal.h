/* Internal to the X.509 files of libringmesh (svid_rules.c, x509_wolfssl.c, x509_issue_wolfssl.c): not part of
 * any module's contract, so nothing outside lib/ includes it. */
#ifndef RINGMESH_X509_INTERNAL_H
#define RINGMESH_X509_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ringmesh/svid.h"

/** One DER certificate cut out of a PEM buffer. `der` is malloc'd. */
typedef struct st_rm__der_cert_t {
    uint8_t *der;
    size_t len;
} rm__der_cert_t;

/** Decodes every "CERTIFICATE" block of `pem` in order into a malloc'd array *out (free with rm__der_certs_free).
 *  Returns 0 (with *num >= 1), RM_ERR_SVID_PARSE when there is no certificate or one does not decode, or
 *  -ENOMEM. */
int rm__pem_to_der_certs(const char *pem, size_t len, rm__der_cert_t **out, size_t *num);

/** Frees what rm__pem_to_der_certs returned. NULL is fine. */
void rm__der_certs_free(rm__der_cert_t *certs, size_t num);

/** Returns 0 when `now` lies within [not_before, not_after], else RM_ERR_SVID_NOT_YET_VALID or _EXPIRED. */
int rm__x509_check_validity(const rm_x509_info_t *cert, time_t now);

/** Returns 1 when the DER certificate's issuer name equals its subject name (a root), 0 otherwise or when it does
 *  not parse. */
int rm__x509_is_self_issued(const uint8_t *der, size_t len);

#endif
