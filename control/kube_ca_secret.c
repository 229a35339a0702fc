/* The signing CA kept in a Secret, and the pieces the cluster duties share (kube_cluster.h). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kube_cluster.h"
#include "ringmesh/config.h"
#include "ringmesh/error.h"
#include "ringmesh/log.h"
#include "ringmesh/x509_issue.h"

#define ROOT_TTL     ((int64_t)10 * 365 * 24 * 3600) /* a generated root, as ca.c's */
#define FETCH_ROUNDS 3                               /* get, create (409), get */
#define WIPE_HEADER  (alignof(max_align_t) > sizeof(size_t) ? alignof(max_align_t) : sizeof(size_t))

/* Zeroes the text of a JSON string in place (jansson keeps it in its own buffer, freed unwiped): called on a
 * Secret's key before the object is released. */
static void wipe_json_string(json_t *v)
{
    if (!json_is_string(v))
        return;
    volatile char *p = (volatile char *)json_string_value(v); /* ours alone: the object is about to be freed */
    for (size_t i = 0, n = json_string_length(v); i < n; i++)
        p[i] = 0;
}

/* ---- base64 ---- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int rm__b64_encode(const char *in, size_t len, char **out, size_t *out_len)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0;
    char *d;

    if ((d = malloc((len + 2) / 3 * 4 + 1)) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < len ? (unsigned)s[i + 1] << 8 : 0) | (i + 2 < len ? s[i + 2] : 0);
        d[o++] = B64[v >> 18 & 63];
        d[o++] = B64[v >> 12 & 63];
        d[o++] = i + 1 < len ? B64[v >> 6 & 63] : '=';
        d[o++] = i + 2 < len ? B64[v & 63] : '=';
    }
    d[o] = '\0';
    *out = d;
    *out_len = o;
    return 0;
}

int rm__b64_decode(const char *in, size_t len, char **out, size_t *out_len)
{
    unsigned acc = 0, bits = 0;
    size_t o = 0;
    char *d;

    while (len > 0 && in[len - 1] == '=')
        --len;
    if (len % 4 == 1)
        return -EINVAL;
    if ((d = malloc(len / 4 * 3 + 3)) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < len; i++) {
        const char *p = in[i] != '\0' ? strchr(B64, in[i]) : NULL;
        if (p == NULL) {
            rm_x509_free_secret(d, len / 4 * 3 + 3);
            return -EINVAL;
        }
        acc = acc << 6 | (unsigned)(p - B64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            d[o++] = (char)(acc >> bits & 0xff);
        }
    }
    d[o] = '\0';
    *out = d;
    *out_len = o;
    return 0;
}

/* ---- the client ---- */

int rm_kube_client_open(const char *kubeconfig, unsigned timeout_ms, rm_kube_client_t **out, char *err, size_t errlen)
{
    rm_kube_config_t kc = {0};
    rm_config_error_t *e = NULL;
    int ret;

    *out = NULL;
    if (kubeconfig != NULL) {
        if ((e = calloc(1, sizeof(*e))) == NULL)
            return -ENOMEM;
        if ((ret = rm_kube_config_load_kubeconfig(kubeconfig, NULL, 0, &kc, e)) != 0) {
            rm_config_error_format(e, err, errlen);
            goto Exit;
        }
    } else if ((ret = rm_kube_config_in_cluster(NULL, &kc, err, errlen)) != 0) {
        goto Exit;
    }
    if ((ret = rm_kube_client_new(&kc, timeout_ms, out, err, errlen)) != 0)
        rm_kube_config_clear(&kc);

Exit:
    free(e);
    return ret;
}

/* ---- the CA Secret ---- */

void rm_kube_ca_secret_clear(rm_kube_ca_secret_t *s)
{
    free(s->cert_pem);
    free(s->roots_pem);
    if (s->key_pem != NULL)
        rm_x509_free_secret(s->key_pem, s->key_len);
    memset(s, 0, sizeof(*s));
}

/* data[key] of a Secret, decoded. `required` 0: a missing key leaves *out NULL. */
static int secret_key(const json_t *data, const char *what, const char *key, int required, char **out, size_t *out_len,
                      char *err, size_t errlen)
{
    const json_t *v = json_object_get(data, key);
    int ret;

    *out = NULL;
    *out_len = 0;
    if (v == NULL || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0)) {
        if (!required)
            return 0;
        return rm_config_fail(err, errlen, RM_ERR_CONFIG_VALUE,
                              "%s: no key %s (a CA Secret holds tls.crt, tls.key "
                              "and optionally ca.crt)",
                              what, key);
    }
    if (!json_is_string(v))
        return rm_config_fail(err, errlen, RM_ERR_CONFIG_VALUE, "%s: key %s is not a string", what, key);
    if ((ret = rm__b64_decode(json_string_value(v), json_string_length(v), out, out_len)) != 0)
        return rm_config_fail(err, errlen, ret == -ENOMEM ? ret : RM_ERR_CONFIG_VALUE, "%s: key %s is not base64 data",
                              what, key);
    return 0;
}

static int read_secret(const json_t *obj, const char *what, rm_kube_ca_secret_t *out, char *err, size_t errlen)
{
    const json_t *data = json_object_get(obj, "data");
    int ret;

    if (!json_is_object(data))
        return rm_config_fail(err, errlen, RM_ERR_CONFIG_VALUE,
                              "%s: no data (a CA Secret holds tls.crt, tls.key and "
                              "optionally ca.crt)",
                              what);
    if ((ret = secret_key(data, what, "tls.crt", 1, &out->cert_pem, &out->cert_len, err, errlen)) != 0 ||
        (ret = secret_key(data, what, "tls.key", 1, &out->key_pem, &out->key_len, err, errlen)) != 0 ||
        (ret = secret_key(data, what, "ca.crt", 0, &out->roots_pem, &out->roots_len, err, errlen)) != 0)
        rm_kube_ca_secret_clear(out);
    return ret;
}

/* POSTs a new Secret holding a freshly generated root. Returns 0 (created, *out filled), the API's status (409:
 * someone else created it), or another error. */
static int create_secret(rm_kube_client_t *c, const char *ns, const char *name, const char *what,
                         const char *trust_domain, rm_kube_ca_secret_t *out, char *err, size_t errlen)
{
    rm_x509_issue_opts_t opts;
    char *cert = NULL, *key = NULL, *b64_cert = NULL, *b64_key = NULL, *body = NULL, path[600];
    size_t cert_len = 0, key_len = 0, n;
    json_t *obj = NULL;
    int ret;

    rm_x509_issue_opts_init(&opts);
    opts.ttl = ROOT_TTL;
    if ((ret = rm_x509_make_root_ca(trust_domain, &opts, &cert, &cert_len, &key, &key_len)) != 0) {
        ret = rm_config_fail(err, errlen, ret, "cannot generate a root CA for %s: %s", trust_domain, rm_strerror(ret));
        goto Exit;
    }
    if ((ret = rm__b64_encode(cert, cert_len, &b64_cert, &n)) != 0 ||
        (ret = rm__b64_encode(key, key_len, &b64_key, &n)) != 0)
        goto Exit;
    obj = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:s, s:{s:s, s:s, s:s}}", "apiVersion", "v1", "kind", "Secret",
                    "metadata", "name", name, "namespace", ns, "labels", "app.kubernetes.io/managed-by",
                    "ringmesh-control", "type", "kubernetes.io/tls", "data", "tls.crt", b64_cert, "tls.key", b64_key,
                    "ca.crt", b64_cert);
    if (obj == NULL || (body = json_dumps(obj, JSON_COMPACT)) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets", ns);
    if ((ret = rm_kube_send(c, "POST", path, "application/json", body, NULL, err, errlen)) != 0) {
        if (ret == 403)
            rm_config_fail(err, errlen, ret,
                           "%s does not exist and the control plane may not create it (403): a CA Secret named with "
                           "ca.existingSecret must exist before the control plane starts",
                           what);
        goto Exit;
    }
    out->cert_pem = cert;
    out->cert_len = cert_len;
    out->key_pem = key;
    out->key_len = key_len;
    out->created = 1;
    cert = key = NULL;
    if ((out->roots_pem = strdup(out->cert_pem)) == NULL) {
        rm_kube_ca_secret_clear(out);
        ret = -ENOMEM;
        goto Exit;
    }
    out->roots_len = out->cert_len;

Exit:
    free(cert);
    if (key != NULL)
        rm_x509_free_secret(key, key_len);
    free(b64_cert);
    if (b64_key != NULL)
        rm_x509_free_secret(b64_key, strlen(b64_key));
    if (body != NULL) {
        size_t bl = strlen(body);
        volatile char *v = body;
        for (size_t i = 0; i < bl; i++)
            v[i] = 0;
        free(body);
    }
    if (obj != NULL)
        wipe_json_string(json_object_get(json_object_get(obj, "data"), "tls.key"));
    json_decref(obj);
    return ret;
}

int rm_kube_ca_secret_fetch(rm_kube_client_t *c, const char *ns, const char *name, const char *trust_domain,
                            rm_kube_ca_secret_t *out, char *err, size_t errlen)
{
    char path[600], what[400];
    json_t *obj = NULL;
    int ret;

    memset(out, 0, sizeof(*out));
    snprintf(what, sizeof(what), "Secret %s/%s", ns, name);
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/%s", ns, name);
    for (int round = 0; round < FETCH_ROUNDS; round++) {
        ret = rm_kube_get(c, path, &obj, err, errlen);
        if (ret == 0) {
            ret = read_secret(obj, what, out, err, errlen);
            wipe_json_string(json_object_get(json_object_get(obj, "data"), "tls.key"));
            json_decref(obj);
            obj = NULL;
            if (ret == 0) {
                rm_log_line_t l;
                rm_log_begin(&l, RM_LOG_INFO, "ca_secret_loaded");
                rm_log_str(&l, "secret", what);
                rm_log_end(&l);
            }
            return ret;
        }
        if (ret != 404) {
            char inner[512];
            snprintf(inner, sizeof(inner), "%s", err);
            return rm_config_fail(err, errlen, ret, "%s: cannot read it: %s", what, inner);
        }
        ret = create_secret(c, ns, name, what, trust_domain, out, err, errlen);
        if (ret == 0) {
            rm_log_line_t l;
            rm_log_begin(&l, RM_LOG_INFO, "ca_secret_created");
            rm_log_str(&l, "secret", what);
            rm_log_str(&l, "trustDomain", trust_domain);
            rm_log_end(&l);
            return 0;
        }
        if (ret != 409)
            return ret;
        /* another replica created it between our get and our create: use theirs */
        rm_log_msg(RM_LOG_INFO, "ca_secret_race", "another replica created the CA Secret first; reading it");
    }
    return rm_config_fail(err, errlen, RM_KUBE_ERR_ANSWER, "%s: neither readable nor creatable after %d attempts", what,
                          FETCH_ROUNDS);
}
