#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest.h"
#include "control_util.h"
#include "ringmesh/error.h"

typedef struct st_attestor_jwt_t {
    rm_attestor_t super;
    rm_jwks_t *jwks;
    char *issuer;
    char *audience;
} attestor_jwt_t;

static int jwt_attest(rm_attestor_t *a, const char *cred, size_t len, rm_attested_t *out, char *err, size_t errlen)
{
    attestor_jwt_t *self = (attestor_jwt_t *)a;
    rm_jwt_verify_opts_t opts;
    rm_jwt_claims_t claims;
    int ret;

    rm_jwt_verify_opts_init(&opts);
    opts.issuer = self->issuer;
    opts.audience = self->audience;
    if ((ret = rm_jwt_verify(self->jwks, cred, len, &opts, &claims, err, errlen)) != 0)
        return ret;
    memcpy(out->namespace_, claims.namespace_, sizeof(out->namespace_));
    memcpy(out->service_account, claims.service_account, sizeof(out->service_account));
    memcpy(out->pod_name, claims.pod_name, sizeof(out->pod_name));
    return 0;
}

static void jwt_destroy(rm_attestor_t *a)
{
    attestor_jwt_t *self = (attestor_jwt_t *)a;

    if (self == NULL)
        return;
    rm_jwks_free(self->jwks);
    free(self->issuer);
    free(self->audience);
    free(self);
}

static const rm_attestor_ops_t jwt_ops = {"jwt", jwt_attest, jwt_destroy};

int rm_attestor_jwt_create(const char *jwks_file, const char *issuer, const char *audience, rm_attestor_t **out,
                           char *err, size_t errlen)
{
    attestor_jwt_t *self;
    char *doc = NULL, msg[256];
    size_t len;
    int ret;

    if (audience == NULL || audience[0] == '\0') {
        snprintf(err, errlen, "attestation.jwt.audience: must be set");
        return -EINVAL;
    }
    if ((ret = rm__control_read_file(jwks_file, &doc, &len)) != 0) {
        snprintf(err, errlen, "%s: cannot read the JWKS: %s", jwks_file, rm_strerror(ret));
        return ret;
    }
    if ((self = calloc(1, sizeof(*self))) == NULL) {
        free(doc);
        return -ENOMEM;
    }
    self->super.ops = &jwt_ops;
    if ((ret = rm_jwks_parse(doc, len, &self->jwks, msg, sizeof(msg))) != 0) {
        snprintf(err, errlen, "%s: %s", jwks_file, msg);
        goto Exit;
    }
    if ((issuer != NULL && (self->issuer = strdup(issuer)) == NULL) || (self->audience = strdup(audience)) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    *out = &self->super;
    self = NULL;
    ret = 0;
Exit:
    free(doc);
    jwt_destroy(self != NULL ? &self->super : NULL);
    return ret;
}
