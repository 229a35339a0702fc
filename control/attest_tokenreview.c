/* The TokenReview attestor: the Kubernetes API says whose a projected ServiceAccount token is.
 *
 * Each attestation is one POST of an authentication.k8s.io/v1 TokenReview over HTTPS with libcurl, on a handle made
 * for that call (so the op is safe from several threads and no state outlives a review). The API server's
 * certificate must chain to the configured CA file and name the host we dialled; nothing else is trusted, no
 * proxy is used and no redirect is followed. The control plane's own bearer token is read from its file at every
 * review, because the kubelet rewrites that file as it rotates the token.
 *
 * The identity comes from the review only: status.authenticated must be true, status.audiences must include our
 * audience (the API documents that an audience-unaware authenticator answers without it, and such an answer only
 * means the token is good for the API server itself), status.user.username must be
 * "system:serviceaccount:<ns>:<sa>" with DNS-1123 names, and the pod is extra["authentication.kubernetes.io/pod-name"].
 *
 * The API server echoes spec.token back in its answer, so the answer is never quoted whole. Text quoted from it
 * (status.error, a Status message, a username) is cut short, stripped of anything but printable ASCII, and has the
 * reviewed token and its signature blotted out. Buffers that held a token are wiped before they are freed. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "attest.h"
#include "control_util.h"
#include "ringmesh/bytebuf.h"
#include "ringmesh/config.h"
#include "ringmesh/error.h"

#define REVIEW_PATH    "/apis/authentication.k8s.io/v1/tokenreviews"
#define REVIEW_VERSION "authentication.k8s.io/v1"
#define SA_PREFIX      "system:serviceaccount:"
#define POD_NAME_KEY   "authentication.kubernetes.io/pod-name"
#define CRED_MAX       (16u << 10) /* projected ServiceAccount tokens are about 1 KiB */
#define BEARER_MAX     (16u << 10)
#define ANSWER_MAX     (1u << 20)
#define TIMEOUT_MAX    (10u * 60 * 1000)
#define SHOWN_MAX      160 /* bytes of API text quoted in a message */
#define SIG_SHOWN_MIN  8   /* a signature shorter than this is not blotted out (it would match ordinary words) */

typedef struct st_attestor_tokenreview_t {
    rm_attestor_t super;
    char *base;     /* the API server as configured, for messages */
    char *endpoint; /* base + REVIEW_PATH */
    char *ca_file;
    char *token_file;
    char *audience;
    long timeout_ms;
} attestor_tokenreview_t;

/* The credential under review, as far as messages must know it: what to blot out of quoted text. */
typedef struct st_secret_t {
    const char *token;
    size_t len;
    const char *sig; /* the JWS signature part, inside token */
    size_t sig_len;
} secret_t;

/* The answer's body, growing as libcurl hands it over, NUL-terminated. `wipe` is set: it echoes the token. */
typedef struct st_answer_t {
    rm_bytebuf_t body;
    int too_large;
} answer_t;

/* ---- messages ----------------------------------------------------------------------------------------------- */

/* Text from the API fit to quote: at most SHOWN_MAX bytes of printable ASCII (anything else, and the quote, as '?'),
 * with the reviewed token and its signature replaced wherever they occur. `secret` may be NULL. */
static const char *shown(char buf[SHOWN_MAX + 16], const char *s, const secret_t *secret)
{
    static const char TOKEN_MARK[] = "<token>", SIG_MARK[] = "<signature>";
    size_t i = 0, o = 0;

    while (s[i] != '\0' && o < SHOWN_MAX) {
        if (secret != NULL && secret->len != 0 && strncmp(s + i, secret->token, secret->len) == 0) {
            memcpy(buf + o, TOKEN_MARK, sizeof(TOKEN_MARK) - 1);
            o += sizeof(TOKEN_MARK) - 1;
            i += secret->len;
        } else if (secret != NULL && secret->sig_len >= SIG_SHOWN_MIN &&
                   strncmp(s + i, secret->sig, secret->sig_len) == 0) {
            memcpy(buf + o, SIG_MARK, sizeof(SIG_MARK) - 1);
            o += sizeof(SIG_MARK) - 1;
            i += secret->sig_len;
        } else {
            buf[o++] = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\'' ? s[i] : '?';
            ++i;
        }
    }
    if (s[i] != '\0') {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

/* ---- names -------------------------------------------------------------------------------------------------- */

static int is_dns_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* DNS-1123 label, the rule for namespaces: 1 to 63 of [a-z0-9-], starting and ending with [a-z0-9]. */
static int is_dns_label(const char *s, size_t len)
{
    size_t i;

    if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
        return 0;
    for (i = 0; i != len; ++i)
        if (!is_dns_char(s[i]))
            return 0;
    return 1;
}

/* DNS-1123 subdomain, the rule for service account and pod names: at most 253 bytes of dot-separated parts, each
 * a run of [a-z0-9-] that starts and ends with [a-z0-9]. */
static int is_dns_subdomain(const char *s, size_t len)
{
    size_t start = 0, i;

    if (len == 0 || len > 253)
        return 0;
    for (i = 0; i <= len; ++i) {
        if (i != len && s[i] != '.')
            continue;
        if (i == start || s[start] == '-' || s[i - 1] == '-')
            return 0;
        for (; start != i; ++start)
            if (!is_dns_char(s[start]))
                return 0;
        start = i + 1;
    }
    return 1;
}

/* ---- the request -------------------------------------------------------------------------------------------- */

static int is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* A projected ServiceAccount token is a compact JWS: three non-empty base64url parts. Anything else is refused
 * before the API is asked, which also keeps arbitrary bytes out of the request. */
static int check_credential(const char *cred, size_t len, secret_t *secret, char *err, size_t errlen)
{
    size_t i, dots = 0, part = 0;

    if (cred == NULL || len == 0)
        return rm_config_fail(err, errlen, RM_ERR_JWT_MALFORMED, "credential is empty");
    if (len > CRED_MAX)
        return rm_config_fail(err, errlen, RM_ERR_JWT_MALFORMED, "credential is longer than %u bytes", CRED_MAX);
    for (i = 0; i != len; ++i) {
        if (cred[i] == '.') {
            if (i == part || ++dots > 2)
                break;
            part = i + 1;
        } else if (!is_b64url(cred[i])) {
            break;
        }
    }
    if (i != len || dots != 2 || part == len)
        return rm_config_fail(err, errlen, RM_ERR_JWT_MALFORMED,
                              "credential is not a compact JWS (three base64url parts)");
    secret->token = cred;
    secret->len = len;
    secret->sig = cred + part;
    secret->sig_len = len - part;
    return 0;
}

/* Reads the control plane's bearer token (trailing white space dropped) into "Authorization: Bearer <token>". */
static int read_bearer(const attestor_tokenreview_t *self, char **header, char *err, size_t errlen)
{
    static const char PREFIX[] = "Authorization: Bearer ";
    char *data = NULL;
    size_t size, len, i;
    int ret;

    if ((ret = rm__control_read_file(self->token_file, &data, &size)) != 0)
        return rm_config_fail(err, errlen, RM_ERR_AUTH_REVIEW, "cannot read the control plane's token %s: %s",
                              self->token_file, rm_strerror(ret));
    len = size;
    while (len != 0 &&
           (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' ' || data[len - 1] == '\t'))
        --len;
    for (i = 0; i != len && data[i] > 0x20 && data[i] < 0x7f; ++i)
        ;
    if (len == 0 || len > BEARER_MAX || i != len) {
        ret =
            rm_config_fail(err, errlen, RM_ERR_AUTH_REVIEW, "the control plane's token %s is %s", self->token_file,
                           len == 0 ? "empty" : "not a bearer token (printable ASCII without spaces, at most 16 KiB)");
        goto Exit;
    }
    if ((*header = malloc(sizeof(PREFIX) + len)) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    memcpy(*header, PREFIX, sizeof(PREFIX) - 1);
    memcpy(*header + sizeof(PREFIX) - 1, data, len);
    (*header)[sizeof(PREFIX) - 1 + len] = '\0';
    ret = 0;
Exit:
    explicit_bzero(data, size);
    free(data);
    return ret;
}

/* The request body, exactly as the API reference has it: apiVersion, kind, spec.token, spec.audiences. */
static char *make_body(const attestor_tokenreview_t *self, const char *cred, size_t len)
{
    json_t *doc;
    char *body;

    if ((doc = json_pack("{s:s, s:s, s:{s:s%, s:[s]}}", "apiVersion", REVIEW_VERSION, "kind", "TokenReview", "spec",
                         "token", cred, len, "audiences", self->audience)) == NULL)
        return NULL;
    body = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return body;
}

static size_t on_answer(char *data, size_t size, size_t nmemb, void *ctx)
{
    answer_t *a = ctx;
    size_t n = size * nmemb;

    if (n > ANSWER_MAX - a->body.len) {
        a->too_large = 1;
        return 0;
    }
    if (rm_bytebuf_append(&a->body, data, n) != 0 || rm_bytebuf_terminate(&a->body) != 0)
        return 0;
    return n;
}

static int append_header(struct curl_slist **headers, const char *line)
{
    struct curl_slist *grown;

    if ((grown = curl_slist_append(*headers, line)) == NULL)
        return -ENOMEM;
    *headers = grown;
    return 0;
}

#define SETOPT(h, opt, val)                                                                                            \
    do {                                                                                                               \
        if (rc == CURLE_OK)                                                                                            \
            rc = curl_easy_setopt((h), (opt), (val));                                                                  \
    } while (0)

/* Posts the review. Returns 0 with the HTTP status in *status and the body in *answer, RM_ERR_AUTH_REVIEW with
 * what went wrong on the way (nothing here looks at the answer's content), or -ENOMEM. */
static int post_review(const attestor_tokenreview_t *self, const char *bearer, const char *body, answer_t *answer,
                       long *status, char *err, size_t errlen)
{
    char curl_err[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL, *h;
    CURL *curl;
    CURLcode rc = CURLE_OK;
    const char *why;
    int ret;

    if ((curl = curl_easy_init()) == NULL)
        return -ENOMEM;
    if ((ret = append_header(&headers, bearer)) != 0 ||
        (ret = append_header(&headers, "Content-Type: application/json")) != 0 ||
        (ret = append_header(&headers, "Accept: application/json")) != 0)
        goto Exit;
    SETOPT(curl, CURLOPT_ERRORBUFFER, curl_err);
    SETOPT(curl, CURLOPT_URL, self->endpoint);
    SETOPT(curl, CURLOPT_PROTOCOLS_STR, "https");
    SETOPT(curl, CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(curl, CURLOPT_PROXY, ""); /* the API server is dialled directly, whatever *_proxy says */
    SETOPT(curl, CURLOPT_CAINFO, self->ca_file);
    SETOPT(curl, CURLOPT_CAPATH, (char *)NULL); /* only ca_file: not the system's directory of roots */
    SETOPT(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    SETOPT(curl, CURLOPT_NOSIGNAL, 1L);
    SETOPT(curl, CURLOPT_TIMEOUT_MS, self->timeout_ms);
    SETOPT(curl, CURLOPT_CONNECTTIMEOUT_MS, self->timeout_ms);
    SETOPT(curl, CURLOPT_USERAGENT, "ringmesh-control");
    SETOPT(curl, CURLOPT_HTTPHEADER, headers);
    SETOPT(curl, CURLOPT_POST, 1L);
    SETOPT(curl, CURLOPT_POSTFIELDS, body);
    SETOPT(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    SETOPT(curl, CURLOPT_WRITEFUNCTION, on_answer);
    SETOPT(curl, CURLOPT_WRITEDATA, answer);
    if (rc != CURLE_OK) {
        ret = rm_config_fail(err, errlen, RM_ERR_AUTH_REVIEW, "cannot set up the TokenReview request: %s",
                             curl_easy_strerror(rc));
        goto Exit;
    }

    rc = curl_easy_perform(curl);
    why = curl_err[0] != '\0' ? curl_err : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_OK:
        break;
    case CURLE_OPERATION_TIMEDOUT:
        ret = rm_config_fail(err, errlen, RM_ERR_AUTH_REVIEW,
                             "no answer from the Kubernetes API at %s within %ld ms (%s)", self->base, self->timeout_ms,
                             why);
        goto Exit;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
        ret = rm_config_fail(err, errlen, RM_ERR_AUTH_REVIEW, "cannot reach the Kubernetes API at %s: %s", self->base,
                             why);
        goto Exit;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
        ret = rm_config_fail(
            err, errlen, RM_ERR_AUTH_REVIEW,
            "TLS with the Kubernetes API at %s failed: %s (its certificate must chain to %s and name the host)",
            self->base, why, self->ca_file);
        goto Exit;
    default:
        if (answer->too_large)
            ret = rm_config_fail(err, errlen, RM_ERR_AUTH_REVIEW,
                                 "the Kubernetes API at %s answered more than %u bytes", self->base, ANSWER_MAX);
        else
            ret = rm_config_fail(err, errlen, RM_ERR_AUTH_REVIEW, "the TokenReview request to %s failed: %s",
                                 self->base, why);
        goto Exit;
    }
    if (curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status) != CURLE_OK) {
        ret =
            rm_config_fail(err, errlen, RM_ERR_AUTH_REVIEW, "no HTTP status from the Kubernetes API at %s", self->base);
        goto Exit;
    }
    ret = 0;
Exit:
    curl_easy_cleanup(curl);
    for (h = headers; h != NULL; h = h->next) /* the list holds its own copy of the bearer token */
        explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(headers);
    return ret;
}

/* ---- the answer --------------------------------------------------------------------------------------------- */

/* An answer other than 200/201/202: the API's Status object says why, when it is one. */
static int http_refused(const attestor_tokenreview_t *self, long status, const answer_t *answer, const secret_t *secret,
                        char *err, size_t errlen)
{
    char msg_buf[SHOWN_MAX + 16], reason_buf[SHOWN_MAX + 16];
    const char *message = NULL, *reason = NULL, *hint = "";
    json_t *doc = NULL;

    if (answer->body.len != 0 &&
        (doc = json_loadb((const char *)answer->body.base, answer->body.len, 0, NULL)) != NULL && json_is_object(doc)) {
        message = json_string_value(json_object_get(doc, "message"));
        reason = json_string_value(json_object_get(doc, "reason"));
    }
    if (status == 401)
        hint = "; the control plane's own token was not accepted";
    else if (status == 403)
        hint = "; the control plane's service account needs permission to create tokenreviews";
    rm_config_fail(err, errlen, RM_ERR_AUTH_REVIEW,
                   "the Kubernetes API at %s answered the TokenReview with HTTP %ld%s%s%s%s%s", self->base, status,
                   reason != NULL ? " " : "", reason != NULL ? shown(reason_buf, reason, secret) : "",
                   message != NULL ? ": " : "", message != NULL ? shown(msg_buf, message, secret) : "", hint);
    json_decref(doc);
    return RM_ERR_AUTH_REVIEW;
}

static int audience_granted(const json_t *audiences, const char *audience)
{
    size_t i;
    json_t *a;

    json_array_foreach(audiences, i, a)
    {
        if (json_is_string(a) && strcmp(json_string_value(a), audience) == 0)
            return 1;
    }
    return 0;
}

/* Namespace and service account from "system:serviceaccount:<ns>:<sa>". */
static int read_username(const json_t *user, rm_attested_t *out, const secret_t *secret, char *err, size_t errlen)
{
    char buf[SHOWN_MAX + 16];
    const char *username = json_string_value(json_object_get(user, "username")), *ns, *colon, *sa;

    if (username == NULL || username[0] == '\0')
        return rm_config_fail(err, errlen, RM_ERR_JWT_CLAIMS, "the TokenReview names no user (status.user.username)");
    if (strncmp(username, SA_PREFIX, sizeof(SA_PREFIX) - 1) != 0)
        return rm_config_fail(
            err, errlen, RM_ERR_JWT_CLAIMS,
            "the token's user '%s' is not a service account (system:serviceaccount:<namespace>:<name>)",
            shown(buf, username, secret));
    ns = username + sizeof(SA_PREFIX) - 1;
    if ((colon = strchr(ns, ':')) == NULL)
        return rm_config_fail(
            err, errlen, RM_ERR_JWT_CLAIMS,
            "the token's user '%s' has no service account name (system:serviceaccount:<namespace>:<name>)",
            shown(buf, username, secret));
    sa = colon + 1;
    if (!is_dns_label(ns, (size_t)(colon - ns)))
        return rm_config_fail(err, errlen, RM_ERR_JWT_CLAIMS,
                              "the namespace in the token's user '%s' is not a DNS-1123 label",
                              shown(buf, username, secret));
    if (!is_dns_subdomain(sa, strlen(sa)))
        return rm_config_fail(err, errlen, RM_ERR_JWT_CLAIMS,
                              "the service account in the token's user '%s' is not a DNS-1123 subdomain",
                              shown(buf, username, secret));
    memcpy(out->namespace_, ns, (size_t)(colon - ns));
    out->namespace_[colon - ns] = '\0';
    strcpy(out->service_account, sa); /* at most 253 bytes: checked above */
    return 0;
}

/* The pod from extra["authentication.kubernetes.io/pod-name"] (a list of one name), "" when the token is not bound
 * to a pod. */
static int read_pod_name(const json_t *user, rm_attested_t *out, char *err, size_t errlen)
{
    const json_t *extra = json_object_get(user, "extra"), *names, *name;
    const char *s;

    out->pod_name[0] = '\0';
    if (extra == NULL || json_is_null(extra))
        return 0;
    if (!json_is_object(extra))
        return rm_config_fail(err, errlen, RM_ERR_JWT_CLAIMS, "the TokenReview's status.user.extra is not an object");
    if ((names = json_object_get(extra, POD_NAME_KEY)) == NULL)
        return 0;
    if (!json_is_array(names) || json_array_size(names) != 1 || !json_is_string(name = json_array_get(names, 0)) ||
        !is_dns_subdomain(s = json_string_value(name), json_string_length(name)))
        return rm_config_fail(err, errlen, RM_ERR_JWT_CLAIMS,
                              "the TokenReview's status.user.extra[\"" POD_NAME_KEY
                              "\"] is not a list of one DNS-1123 name");
    strcpy(out->pod_name, s);
    return 0;
}

static int read_review(const attestor_tokenreview_t *self, const answer_t *answer, const secret_t *secret,
                       rm_attested_t *out, char *err, size_t errlen)
{
    char buf[SHOWN_MAX + 16];
    json_t *doc;
    const json_t *status, *user, *audiences;
    const char *kind, *version, *reason;
    json_error_t jerr;
    int ret;

    if ((doc = json_loadb(answer->body.base != NULL ? (const char *)answer->body.base : "", answer->body.len,
                          JSON_REJECT_DUPLICATES, &jerr)) == NULL)
        return rm_config_fail(err, errlen, RM_ERR_AUTH_REVIEW,
                              "the Kubernetes API's answer to the TokenReview is not JSON: %s",
                              shown(buf, jerr.text, secret));
    kind = json_string_value(json_object_get(doc, "kind"));
    version = json_string_value(json_object_get(doc, "apiVersion"));
    if (!json_is_object(doc) || kind == NULL || strcmp(kind, "TokenReview") != 0 || version == NULL ||
        strcmp(version, REVIEW_VERSION) != 0) {
        ret = rm_config_fail(
            err, errlen, RM_ERR_AUTH_REVIEW,
            "the Kubernetes API's answer is not a TokenReview (kind TokenReview, apiVersion " REVIEW_VERSION ")");
        goto Exit;
    }
    if (!json_is_object(status = json_object_get(doc, "status"))) {
        ret = rm_config_fail(err, errlen, RM_ERR_AUTH_REVIEW, "the Kubernetes API's TokenReview has no status");
        goto Exit;
    }
    if (!json_is_true(json_object_get(status, "authenticated"))) {
        reason = json_string_value(json_object_get(status, "error"));
        ret = rm_config_fail(err, errlen, RM_ERR_AUTH_REVIEW, "the Kubernetes API did not authenticate the token: %s",
                             reason != NULL && reason[0] != '\0' ? shown(buf, reason, secret) : "(it gave no reason)");
        goto Exit;
    }
    audiences = json_object_get(status, "audiences");
    if (!json_is_array(audiences) || json_array_size(audiences) == 0) {
        ret = rm_config_fail(
            err, errlen, RM_ERR_JWT_AUDIENCE,
            "the TokenReview grants no audience (status.audiences is empty: the token is only known to be good "
            "for the API server itself), '%s' is required",
            self->audience);
        goto Exit;
    }
    if (!audience_granted(audiences, self->audience)) {
        char *list = json_dumps(audiences, JSON_COMPACT);
        ret = rm_config_fail(err, errlen, RM_ERR_JWT_AUDIENCE,
                             "the TokenReview does not grant audience '%s' (status.audiences: %s)", self->audience,
                             list != NULL ? shown(buf, list, secret) : "?");
        free(list);
        goto Exit;
    }
    if (!json_is_object(user = json_object_get(status, "user"))) {
        ret = rm_config_fail(err, errlen, RM_ERR_JWT_CLAIMS, "the TokenReview names no user (status.user)");
        goto Exit;
    }
    if ((ret = read_username(user, out, secret, err, errlen)) != 0 ||
        (ret = read_pod_name(user, out, err, errlen)) != 0)
        goto Exit;
    ret = 0;
Exit:
    json_decref(doc);
    return ret;
}

/* ---- the attestor ------------------------------------------------------------------------------------------- */

static int tokenreview_attest(rm_attestor_t *a, const char *cred, size_t len, rm_attested_t *out, char *err,
                              size_t errlen)
{
    attestor_tokenreview_t *self = (attestor_tokenreview_t *)a;
    answer_t answer = {.body = {.wipe = 1}};
    secret_t secret;
    rm_attested_t found;
    char *bearer = NULL, *body = NULL;
    long status = 0;
    int ret;

    if ((ret = check_credential(cred, len, &secret, err, errlen)) != 0)
        return ret;
    if ((ret = read_bearer(self, &bearer, err, errlen)) != 0)
        goto Exit;
    if ((body = make_body(self, cred, len)) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    if ((ret = post_review(self, bearer, body, &answer, &status, err, errlen)) != 0)
        goto Exit;
    if (status < 200 || status > 202) {
        ret = http_refused(self, status, &answer, &secret, err, errlen);
        goto Exit;
    }
    if ((ret = read_review(self, &answer, &secret, &found, err, errlen)) != 0)
        goto Exit;
    *out = found;
    ret = 0;
Exit:
    if (bearer != NULL) {
        explicit_bzero(bearer, strlen(bearer));
        free(bearer);
    }
    if (body != NULL) {
        explicit_bzero(body, strlen(body));
        free(body);
    }
    rm_bytebuf_free(&answer.body);
    return ret;
}

static void tokenreview_destroy(rm_attestor_t *a)
{
    attestor_tokenreview_t *self = (attestor_tokenreview_t *)a;

    if (self == NULL)
        return;
    free(self->base);
    free(self->endpoint);
    free(self->ca_file);
    free(self->token_file);
    free(self->audience);
    free(self);
    curl_global_cleanup();
}

static const rm_attestor_ops_t tokenreview_ops = {"token-review", tokenreview_attest, tokenreview_destroy};

/* The API server's base URL: the configured one, else https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT
 * (an IPv6 host in brackets). It must be https with a host and no user, query or fragment. Sets self->base and
 * self->endpoint. */
static int set_api_server(attestor_tokenreview_t *self, const char *configured, char *err, size_t errlen)
{
    const char *host, *port;
    char *scheme = NULL, *url_host = NULL, *part = NULL;
    CURLU *u = NULL;
    size_t len;
    int ret;

    if (configured != NULL) {
        self->base = strdup(configured);
    } else {
        host = getenv("KUBERNETES_SERVICE_HOST");
        port = getenv("KUBERNETES_SERVICE_PORT");
        if (host == NULL || host[0] == '\0' || port == NULL || port[0] == '\0')
            return rm_config_fail(err, errlen, RM_ERR_CONFIG_VALUE,
                                  "attestation.tokenreview: no API server given and KUBERNETES_SERVICE_HOST / "
                                  "KUBERNETES_SERVICE_PORT are not set (not running in a pod?)");
        len = strlen(host) + strlen(port) + sizeof("https://[]:");
        if ((self->base = malloc(len)) != NULL)
            snprintf(self->base, len, strchr(host, ':') != NULL ? "https://[%s]:%s" : "https://%s:%s", host, port);
    }
    if (self->base == NULL)
        return -ENOMEM;
    len = strlen(self->base);
    while (len != 0 && self->base[len - 1] == '/')
        self->base[--len] = '\0';

    if ((u = curl_url()) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    if (curl_url_set(u, CURLUPART_URL, self->base, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &url_host, 0) != CURLUE_OK) {
        ret = rm_config_fail(err, errlen, RM_ERR_CONFIG_VALUE, "attestation.tokenreview: API server '%s' is not a URL",
                             self->base);
        goto Exit;
    }
    if (strcmp(scheme, "https") != 0) {
        ret = rm_config_fail(err, errlen, RM_ERR_CONFIG_VALUE,
                             "attestation.tokenreview: API server '%s' is not https://", self->base);
        goto Exit;
    }
    if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_QUERY, &part, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK) {
        ret =
            rm_config_fail(err, errlen, RM_ERR_CONFIG_VALUE,
                           "attestation.tokenreview: API server '%s' must have no user, query or fragment", self->base);
        goto Exit;
    }
    len = strlen(self->base) + sizeof(REVIEW_PATH);
    if ((self->endpoint = malloc(len)) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    snprintf(self->endpoint, len, "%s" REVIEW_PATH, self->base);
    ret = 0;
Exit:
    curl_free(scheme);
    curl_free(url_host);
    curl_free(part);
    curl_url_cleanup(u);
    return ret;
}

/* The audience goes into the request's JSON, which only holds UTF-8. */
static int is_utf8(const char *s)
{
    json_t *str = json_string(s);

    json_decref(str);
    return str != NULL;
}

/* A file the attestor reads later must be readable now, so that a wrong path fails at start, not at each review. */
static int check_readable(const char *what, const char *path, char *err, size_t errlen)
{
    char *data = NULL;
    size_t len = 0;
    int ret;

    if ((ret = rm__control_read_file(path, &data, &len)) != 0)
        return rm_config_fail(err, errlen, RM_ERR_CONFIG_VALUE, "attestation.tokenreview: cannot read the %s %s: %s",
                              what, path, rm_strerror(ret));
    explicit_bzero(data, len);
    free(data);
    return 0;
}

int rm_attestor_tokenreview_create(const rm_tokenreview_config_t *cfg, rm_attestor_t **out, char *err, size_t errlen)
{
    static const rm_tokenreview_config_t defaults = {NULL};
    attestor_tokenreview_t *self;
    int ret;

    if (cfg == NULL)
        cfg = &defaults;
    if (cfg->audience != NULL && (cfg->audience[0] == '\0' || !is_utf8(cfg->audience)))
        return rm_config_fail(err, errlen, RM_ERR_CONFIG_VALUE,
                              "attestation.tokenreview.audience: must be non-empty UTF-8");
    if (cfg->timeout_ms > TIMEOUT_MAX)
        return rm_config_fail(err, errlen, RM_ERR_CONFIG_VALUE, "attestation.tokenreview.timeout: at most %u ms",
                              TIMEOUT_MAX);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return rm_config_fail(err, errlen, RM_ERR_CONFIG_VALUE,
                              "attestation.tokenreview: libcurl cannot be initialised");
    if ((self = calloc(1, sizeof(*self))) == NULL) {
        curl_global_cleanup();
        return -ENOMEM;
    }
    self->super.ops = &tokenreview_ops;
    self->timeout_ms = cfg->timeout_ms != 0 ? (long)cfg->timeout_ms : RM_TOKENREVIEW_TIMEOUT_MS;
    if ((ret = set_api_server(self, cfg->api_server, err, errlen)) != 0)
        goto Exit;
    if ((self->ca_file = strdup(cfg->ca_file != NULL ? cfg->ca_file : RM_TOKENREVIEW_CA_FILE)) == NULL ||
        (self->token_file = strdup(cfg->token_file != NULL ? cfg->token_file : RM_TOKENREVIEW_TOKEN_FILE)) == NULL ||
        (self->audience = strdup(cfg->audience != NULL ? cfg->audience : RM_TOKENREVIEW_AUDIENCE)) == NULL) {
        ret = -ENOMEM;
        goto Exit;
    }
    if ((ret = check_readable("CA file", self->ca_file, err, errlen)) != 0 ||
        (ret = check_readable("token file", self->token_file, err, errlen)) != 0)
        goto Exit;
    *out = &self->super;
    self = NULL;
    ret = 0;
Exit:
    tokenreview_destroy(self != NULL ? &self->super : NULL);
    return ret;
}
