/* The proxy's SVID from Identity.Sign: a key made in memory, a CSR, the SVID taken only if it verifies; renewed
 * before expiry, watched as it nears it. */
#include "control_client_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ringmesh/config.h"
#include "ringmesh/csr.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"
#include "ringmesh/svid.h"
#include "ringmesh/x509_issue.h"
#include "ringmesh/v1/identity.pb-c.h"

#define METHOD_SIGN      "/ringmesh.v1.Identity/Sign"
#define SIGN_DEADLINE_MS 10000

void rm__control_schedule_renewal(rm_control_client_t *cc)
{
    int64_t life = cc->not_after - cc->issued_at, now = (int64_t)time(NULL);
    /* renew at renewFraction of the lifetime, moved by up to 20 % of that either way, so that a fleet started
     * together does not renew together */
    int64_t interval = (int64_t)((double)life * cc->ccfg->renew_fraction);
    int64_t spread = interval / 5;
    int64_t at = cc->issued_at + interval +
                 (spread > 0 ? (int64_t)(rm__control_rand32() % (uint32_t)(2 * spread + 1)) - spread : 0);

    if (at > cc->not_after - 30)
        at = cc->not_after - 30;
    cc->renew_at_ms = rm__control_now_ms() + (at > now ? (uint64_t)(at - now) * 1000 : 0);
    cc->expiring_logged = 0;
}

static int read_token(rm_control_client_t *cc, char **tok, size_t *len)
{
    int ret = rm__control_read_file(cc->ccfg->token_file, tok, len);
    if (ret != 0)
        return ret;
    while (*len > 0 && ((*tok)[*len - 1] == '\n' || (*tok)[*len - 1] == '\r' || (*tok)[*len - 1] == ' '))
        (*tok)[--*len] = '\0';
    return 0;
}

/* One Sign call: new key, CSR, credential. Blocking (bounded by SIGN_DEADLINE_MS). Returns 0 or an error, with the
 * reason in err. */
static int sign_once(rm_control_client_t *cc, char *err, size_t errlen)
{
    Ringmesh__V1__SignRequest req = RINGMESH__V1__SIGN_REQUEST__INIT;
    Ringmesh__V1__SignResponse *resp = NULL;
    char *key = NULL, *csr = NULL, *token = NULL;
    uint8_t *spki = NULL, *packed = NULL, *rdata = NULL;
    size_t key_len = 0, spki_len, csr_len, tok_len = 0, plen, rlen;
    rm_tls_ctx_t *ctx = NULL;
    int status = 0, reused;
    char why[400];
    int ret;

    if ((ret = read_token(cc, &token, &tok_len)) != 0) {
        snprintf(err, errlen, "cannot read the token file %s: %s", cc->ccfg->token_file, rm_strerror(ret));
        goto Exit;
    }
    if ((ret = rm_x509_generate_key(&key, &key_len, &spki, &spki_len)) != 0 ||
        (ret = rm_csr_make(key, key_len, NULL, &csr, &csr_len)) != 0) {
        snprintf(err, errlen, "cannot make a key and CSR: %s", rm_strerror(ret));
        goto Exit;
    }
    req.csr_pem = csr;
    req.credential = token;
    req.requested_ttl_seconds = cc->ccfg->svid_ttl_s;
    plen = ringmesh__v1__sign_request__get_packed_size(&req);
    if ((packed = malloc(plen)) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    ringmesh__v1__sign_request__pack(&req, packed);

    reused = cc->conn != NULL && cc->stream_up;
    if (reused) {
        /* a renewal: over the discovery stream's connection, already authenticated both ways (no new handshake) */
        ret = rm_h2_unary_on(cc->conn, METHOD_SIGN, packed, plen, SIGN_DEADLINE_MS, &rdata, &rlen, &status, why,
                             sizeof(why));
    } else {
        /* the first SVID (or with the control plane away): a new connection, TLS without a client certificate; the
         * credential is the token, and an expired SVID must not stop a proxy from getting a new one */
        if ((ret = rm__control_make_ctx(cc, 0, &ctx, why, sizeof(why))) != 0) {
            snprintf(err, errlen, "%s", why);
            goto Exit;
        }
        ret = rm_h2_unary(cc->ccfg->address, cc->ccfg->server_name, ctx, cc->control_id, METHOD_SIGN, packed, plen,
                          SIGN_DEADLINE_MS, &rdata, &rlen, &status, why, sizeof(why));
    }
    if (ret != 0) {
        snprintf(err, errlen, "Identity.Sign: %s", why);
        goto Exit;
    }
    if (status != 0) {
        snprintf(err, errlen, "Identity.Sign failed: grpc-status %d: %s", status, why);
        ret = status == 16 ? RM_ERR_AUTH_REVIEW : -ECONNREFUSED;
        goto Exit;
    }
    if ((resp = ringmesh__v1__sign_response__unpack(NULL, rlen, rdata)) == NULL) {
        snprintf(err, errlen, "SignResponse does not decode");
        ret = -EPROTO;
        goto Exit;
    }

    /* Take it only if it is a valid SVID of our trust domain for the key we just made. */
    {
        char *old_cert = cc->cert_pem, *old_key = cc->key_pem, *old_bundle = cc->bundle_pem;
        size_t old_cert_len = cc->cert_len, old_key_len = cc->key_len, old_bundle_len = cc->bundle_len;
        char reason[256];
        cc->cert_pem = strdup(resp->cert_chain_pem);
        cc->cert_len = strlen(resp->cert_chain_pem);
        cc->key_pem = key;
        cc->key_len = key_len;
        cc->bundle_pem = strdup(resp->trust_bundle_pem);
        cc->bundle_len = strlen(resp->trust_bundle_pem);
        if (cc->cert_pem == NULL || cc->bundle_pem == NULL ||
            (ret = rm__control_rebuild_tls(cc, NULL, 0, reason, sizeof(reason))) != 0) {
            free(cc->cert_pem);
            free(cc->bundle_pem);
            cc->cert_pem = old_cert;
            cc->cert_len = old_cert_len;
            cc->key_pem = old_key;
            cc->key_len = old_key_len;
            cc->bundle_pem = old_bundle;
            cc->bundle_len = old_bundle_len;
            snprintf(err, errlen, "the control plane's SVID was refused: %s", reason);
            ret = ret != 0 ? ret : -ENOMEM;
            goto Exit; /* key is freed below: it was never taken */
        }
        key = NULL; /* now held by cc */
        rm_file_free(old_key, old_key_len, RM_FILE_SECRET);
        free(old_cert);
        free(old_bundle);
    }
    cc->not_before = resp->not_before;
    cc->not_after = resp->not_after;
    cc->issued_at = (int64_t)time(NULL);
    if (cc->issued_at < cc->not_before || cc->issued_at >= cc->not_after)
        cc->issued_at = cc->not_before; /* clocks apart: fall back to the certificate's own window */
    atomic_store(&cc->proxy->control.svid_not_after, cc->not_after);
    atomic_fetch_add(&cc->proxy->control.svid_renewals, 1);
    atomic_store(&cc->proxy->control.svid_expiring, 0);
    rm__control_save_state(cc, "svid-key.pem", cc->key_pem, cc->key_len, 1);
    rm__control_save_state(cc, "svid.pem", cc->cert_pem, cc->cert_len, 0);
    rm__control_save_state(cc, "bundle.pem", cc->bundle_pem, cc->bundle_len, 0);
    {
        char meta[64];
        int n = snprintf(meta, sizeof(meta), "%lld %lld %lld\n", (long long)cc->not_before, (long long)cc->issued_at,
                         (long long)cc->not_after);
        rm__control_save_state(cc, "svid.validity", meta, (size_t)n, 0);
    }
    {
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_INFO, "svid_issued");
        rm_log_str(&l, "spiffe_id", resp->spiffe_id);
        rm_log_int(&l, "not_before", cc->not_before);
        rm_log_int(&l, "not_after", cc->not_after);
        rm_log_str(&l, "connection", reused ? "discovery" : "new");
        rm_log_end(&l);
    }
    ret = 0;

Exit:
    if (resp != NULL)
        ringmesh__v1__sign_response__free_unpacked(resp, NULL);
    free(rdata);
    rm_tls_ctx_unref(ctx);
    free(packed);
    free(csr);
    free(spki);
    rm_file_free(key, key_len, RM_FILE_SECRET);
    if (token != NULL)
        rm_file_free(token, tok_len, RM_FILE_SECRET);
    return ret;
}

void rm__control_renew(rm_control_client_t *cc)
{
    char err[512];
    int ret = sign_once(cc, err, sizeof(err));

    if (ret == 0) {
        cc->sign_failures = 0;
        cc->expired_published = 0;
        atomic_store(&cc->proxy->svid_expired, 0);
        rm__control_schedule_renewal(cc);
        rm__control_publish(cc);
        return;
    }
    atomic_fetch_add(&cc->proxy->control.svid_failures, 1);
    cc->sign_failures++;
    cc->renew_at_ms = rm__control_now_ms() + rm__control_backoff_ms(cc->sign_failures);
    if (cc->sign_failures == 1 || (cc->sign_failures & (cc->sign_failures - 1)) == 0) {
        /* logged on the 1st, 2nd, 4th, 8th... failure: an outage is visible without flooding the log */
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "svid_request_failed");
        rm_log_str(&l, "control_plane", cc->ccfg->address);
        rm_log_str(&l, "reason", err);
        rm_log_uint(&l, "failures", cc->sign_failures);
        rm_log_uint(&l, "retry_in_ms", cc->renew_at_ms - rm__control_now_ms());
        rm_log_end(&l);
    }
}

/* Warns near expiry; after expiry stops presenting the SVID. */
void rm__control_check_expiry(rm_control_client_t *cc)
{
    int64_t now = (int64_t)time(NULL), life = cc->not_after - cc->issued_at;

    if (cc->client_ctx == NULL)
        return;
    if (now >= cc->not_after) {
        rm_tls_ctx_unref(cc->client_ctx);
        rm_tls_ctx_unref(cc->server_ctx);
        cc->client_ctx = cc->server_ctx = NULL;
        cc->expired_published = 1;
        atomic_store(&cc->proxy->svid_expired, 1);
        atomic_store(&cc->proxy->ready, 0);
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_ERROR, "svid_expired");
        rm_log_int(&l, "not_after", cc->not_after);
        rm_log_str(&l, "msg",
                   "the SVID has expired and the control plane could not renew it: mTLS connections are "
                   "refused until a new SVID arrives");
        rm_log_end(&l);
        rm__control_publish(cc);
        return;
    }
    if (!cc->expiring_logged && now >= cc->not_after - (int64_t)((double)life * RM_SVID_EXPIRY_WARN_FRACTION)) {
        cc->expiring_logged = 1;
        atomic_store(&cc->proxy->control.svid_expiring, 1);
        rm_log_line_t l;
        rm_log_begin(&l, RM_LOG_WARN, "svid_expiring");
        rm_log_int(&l, "not_after", cc->not_after);
        rm_log_int(&l, "seconds_left", cc->not_after - now);
        rm_log_uint(&l, "renewal_failures", cc->sign_failures);
        rm_log_end(&l);
    }
}
