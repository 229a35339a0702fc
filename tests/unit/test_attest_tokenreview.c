/* The TokenReview attestor against a stand-in Kubernetes API (tests/e2e/tools/fake_kube_api.py) over real TLS.
 *
 * The stand-in answers from recordings of what a real API server returns (tests/data/tokenreview/, sources in its
 * README.md); answers that differ from a recording in one field are made here from a recording with jansson, so
 * each reason to refuse is tested on its own. The stand-in logs every request, which lets the tests check the body
 * we send against the API reference and which bearer token went out. Certificates are made for each run with the
 * openssl CLI in a temporary directory; without /usr/bin/python3 or openssl every test skips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "attest.h"
#include "ringmesh/error.h"

#ifndef RM_TEST_DATA_DIR
#error RM_TEST_DATA_DIR must point at tests/data
#endif

#define PYTHON      "/usr/bin/python3"
#define STAND_IN    RM_TEST_DATA_DIR "/../e2e/tools/fake_kube_api.py"
#define DATA_DIR    RM_TEST_DATA_DIR "/tokenreview/"
#define REVIEW_PATH "/apis/authentication.k8s.io/v1/tokenreviews"
#define ERRLEN      1024
/* Tokens for answers made here: a compact JWS whose signature part names the case ([a-z0-9-] only). */
#define VARIANT_PREFIX "eyJhbGciOiJSUzI1NiJ9.eyJ2YXJpYW50Ijp0cnVlfQ."

static struct {
    char dir[64];
    int ready;        /* the stand-in runs */
    char why_not[96]; /* when not: what is missing */
    pid_t pid;
    unsigned port;
    char url[64];
    json_t *table;   /* the committed table */
    json_t *extra;   /* {"reviews": {token: recording}} for answers made here; the stand-in re-reads it */
    size_t nvariant; /* how many answers were made here */
} T;

#define assert_code(expr, code)                                                                                        \
    do {                                                                                                               \
        int ret_ = (expr);                                                                                             \
        if (ret_ != (code))                                                                                            \
            fail_msg("%s: got %d (%s), want %d (%s)", #expr, ret_, rm_strerror(ret_), (code), rm_strerror(code));      \
    } while (0)

#define assert_contains(hay, needle)                                                                                   \
    do {                                                                                                               \
        if (strstr((hay), (needle)) == NULL)                                                                           \
            fail_msg("\"%s\" not found in:\n%s", (needle), (hay));                                                     \
    } while (0)

/* ---- files and commands ------------------------------------------------------------------------------------- */

static void path_of(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", T.dir, name);
}

static int write_text(const char *name, const char *text)
{
    char path[256], tmp[280];
    FILE *f;

    path_of(path, sizeof(path), name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if ((f = fopen(tmp, "wb")) == NULL)
        return -1;
    if (fputs(text, f) < 0) {
        fclose(f);
        return -1;
    }
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path); /* the stand-in may be reading it */
}

static char *read_text(const char *path)
{
    FILE *f;
    char *buf;
    long n;

    if ((f = fopen(path, "rb")) == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    if ((buf = malloc((size_t)n + 1)) != NULL) {
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
        }
    }
    fclose(f);
    return buf;
}

/* Runs a shell command in the work directory with its output in the file "out"; returns the exit status. */
static int sh(const char *fmt, ...)
{
    char cmd[2048], full[2200];
    va_list ap;
    int n, status;

    va_start(ap, fmt);
    n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (n <= 0 || (size_t)n >= sizeof(cmd))
        return -1;
    snprintf(full, sizeof(full), "cd '%s' && { %s ; } >out 2>&1", T.dir, cmd);
    status = system(full);
    return status == -1 ? -1 : WEXITSTATUS(status);
}

/* A throwaway CA and the stand-in's certificate (for 127.0.0.1 only: no DNS name), and a second CA that signed
 * nothing the stand-in shows. */
static int make_certs(void)
{
    static const char CA[] = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
                             "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign";

    if (sh("%s -keyout ca.key -out ca.pem -subj /CN=test-kube-ca", CA) != 0 ||
        sh("%s -keyout other-ca.key -out other-ca.pem -subj /CN=test-kube-ca", CA) != 0 ||
        write_text("server.ext", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
                                 "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n") != 0 ||
        sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr "
           "-subj /CN=kube-apiserver") != 0 ||
        sh("openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext "
           "-out server.pem") != 0)
        return -1;
    return 0;
}

static void show_stand_in_log(void)
{
    char path[256], *text;

    path_of(path, sizeof(path), "stand-in.log");
    if ((text = read_text(path)) != NULL) {
        fprintf(stderr, "--- stand-in log ---\n%s--- end ---\n", text);
        free(text);
    }
}

static int start_stand_in(void)
{
    char cert[256], key[256], extra[256], port_file[256], log[256], out[256], *text = NULL;
    struct timespec pause = {0, 50 * 1000 * 1000};
    int i, fd, status;

    path_of(cert, sizeof(cert), "server.pem");
    path_of(key, sizeof(key), "server.key");
    path_of(extra, sizeof(extra), "table-extra.json");
    path_of(port_file, sizeof(port_file), "port");
    path_of(log, sizeof(log), "requests.log");
    path_of(out, sizeof(out), "stand-in.log");
    if ((T.pid = fork()) < 0)
        return -1;
    if (T.pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* a test killed midway (a ctest timeout) takes the stand-in with it */
        if ((fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(PYTHON, PYTHON, STAND_IN, "--cert", cert, "--key", key, "--table", DATA_DIR "table.json", "--table",
              extra, "--port-file", port_file, "--request-log", log, (char *)NULL);
        _exit(127);
    }
    /* wait for it to listen: at most 20 s, so that a slow machine is not mistaken for a broken stand-in */
    for (i = 0; i != 400; ++i) {
        if ((text = read_text(port_file)) != NULL)
            break;
        if (waitpid(T.pid, &status, WNOHANG) == T.pid) {
            T.pid = 0;
            return -1;
        }
        nanosleep(&pause, NULL);
    }
    if (text == NULL || sscanf(text, "%u", &T.port) != 1) {
        free(text);
        return -1;
    }
    free(text);
    snprintf(T.url, sizeof(T.url), "https://127.0.0.1:%u", T.port);
    return 0;
}

static void stop_stand_in(void)
{
    if (T.pid > 0) {
        kill(T.pid, SIGTERM);
        waitpid(T.pid, NULL, 0);
        T.pid = 0;
    }
}

static void need_stand_in(void)
{
    if (!T.ready) {
        fprintf(stderr, "%s: this test is skipped\n", T.why_not);
        skip();
    }
}

/* ---- recordings and answers made from them ------------------------------------------------------------------ */

/* The token the committed table answers with `recording`. */
static const char *token_of(const char *recording)
{
    const char *token;
    json_t *name;

    json_object_foreach(json_object_get(T.table, "reviews"), token, name)
    {
        if (strcmp(json_string_value(name), recording) == 0)
            return token;
    }
    fail_msg("no token for %s in table.json", recording);
    return NULL;
}

/* A committed recording, to make an answer from. */
static json_t *recording(const char *name)
{
    char path[256];
    json_error_t jerr;
    json_t *doc;

    snprintf(path, sizeof(path), DATA_DIR "%s", name);
    if ((doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
        fail_msg("%s: %s", path, jerr.text);
    return doc;
}

/* Has the stand-in answer a new token with the file `file` (in the work directory); returns the token. */
static const char *answer_with(const char *file, const char *name)
{
    static char tokens[128][128];
    char *text, *slot;

    assert_true(T.nvariant < sizeof(tokens) / sizeof(tokens[0]));
    slot = tokens[T.nvariant++];
    snprintf(slot, sizeof(tokens[0]), VARIANT_PREFIX "%s", name);
    assert_int_equal(json_object_set_new(json_object_get(T.extra, "reviews"), slot, json_string(file)), 0);
    assert_non_null(text = json_dumps(T.extra, JSON_INDENT(2)));
    assert_int_equal(write_text("table-extra.json", text), 0);
    free(text);
    return slot;
}

/* An answer made from a recording: `doc` (taken) is written out and a new token answered with it. */
static const char *answer_doc(const char *name, json_t *doc)
{
    char file[128], path[256];

    snprintf(file, sizeof(file), "%s.json", name);
    path_of(path, sizeof(path), file);
    assert_int_equal(json_dump_file(doc, path, JSON_INDENT(2)), 0);
    json_decref(doc);
    return answer_with(file, name);
}

/* An answer sent byte for byte. */
static const char *answer_raw(const char *name, const char *text)
{
    char file[128];

    snprintf(file, sizeof(file), "%s.raw", name);
    assert_int_equal(write_text(file, text), 0);
    return answer_with(file, name);
}

/* authenticated.json with status.user.username set to `username`. */
static const char *answer_username(const char *name, const char *username)
{
    json_t *doc = recording("authenticated.json");
    json_t *user = json_object_get(json_object_get(doc, "status"), "user");

    assert_int_equal(json_object_set_new(user, "username", json_string(username)), 0);
    return answer_doc(name, doc);
}

/* authenticated.json with status.user.extra's pod name set to `value` (taken; NULL removes it). */
static const char *answer_pod_name(const char *name, json_t *value)
{
    json_t *doc = recording("authenticated.json");
    json_t *extra = json_object_get(json_object_get(json_object_get(doc, "status"), "user"), "extra");

    if (value != NULL)
        assert_int_equal(json_object_set_new(extra, "authentication.kubernetes.io/pod-name", value), 0);
    else
        assert_int_equal(json_object_del(extra, "authentication.kubernetes.io/pod-name"), 0);
    return answer_doc(name, doc);
}

/* ---- what the stand-in saw ---------------------------------------------------------------------------------- */

static size_t request_count(void)
{
    char path[256], *text, *p;
    size_t n = 0;

    path_of(path, sizeof(path), "requests.log");
    if ((text = read_text(path)) == NULL)
        return 0;
    for (p = text; *p != '\0'; ++p)
        n += *p == '\n';
    free(text);
    return n;
}

static json_t *last_request(void)
{
    char path[256], *text, *line, *end;
    json_error_t jerr;
    json_t *req;

    path_of(path, sizeof(path), "requests.log");
    assert_non_null(text = read_text(path));
    end = text + strlen(text);
    assert_true(end != text && end[-1] == '\n');
    *--end = '\0';
    line = strrchr(text, '\n') != NULL ? strrchr(text, '\n') + 1 : text;
    if ((req = json_loads(line, 0, &jerr)) == NULL)
        fail_msg("request log: %s", jerr.text);
    free(text);
    return req;
}

static const char *member(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));

    if (s == NULL)
        fail_msg("request log entry has no string %s", key);
    return s;
}

/* The last request was the TokenReview the API reference documents, for `cred` and `audience`, and carried the
 * bearer token `bearer`: POST to the collection, JSON both ways, a body of exactly apiVersion, kind and a spec of
 * exactly token and audiences. */
static void check_last_request(const char *cred, const char *audience, const char *bearer)
{
    char want_auth[128];
    json_t *req = last_request(), *body, *spec, *auds;
    json_error_t jerr;

    snprintf(want_auth, sizeof(want_auth), "Bearer %s", bearer);
    assert_string_equal(member(req, "method"), "POST");
    assert_string_equal(member(req, "path"), REVIEW_PATH);
    assert_string_equal(member(req, "authorization"), want_auth);
    assert_string_equal(member(req, "content_type"), "application/json");
    assert_string_equal(member(req, "accept"), "application/json");
    if ((body = json_loads(member(req, "body"), JSON_REJECT_DUPLICATES, &jerr)) == NULL)
        fail_msg("request body: %s", jerr.text);
    assert_true(json_is_object(body));
    assert_int_equal(json_object_size(body), 3);
    assert_string_equal(json_string_value(json_object_get(body, "apiVersion")), "authentication.k8s.io/v1");
    assert_string_equal(json_string_value(json_object_get(body, "kind")), "TokenReview");
    assert_true(json_is_object(spec = json_object_get(body, "spec")));
    assert_int_equal(json_object_size(spec), 2);
    assert_string_equal(json_string_value(json_object_get(spec, "token")), cred);
    assert_true(json_is_array(auds = json_object_get(spec, "audiences")));
    assert_int_equal(json_array_size(auds), 1);
    assert_string_equal(json_string_value(json_array_get(auds, 0)), audience);
    json_decref(body);
    json_decref(req);
}

/* ---- attestors ---------------------------------------------------------------------------------------------- */

static char ca_file[256], other_ca_file[256], token_file[256];

static rm_tokenreview_config_t config(void)
{
    rm_tokenreview_config_t cfg = {0};

    cfg.api_server = T.url;
    cfg.ca_file = ca_file;
    cfg.token_file = token_file;
    return cfg;
}

static rm_attestor_t *attestor(const rm_tokenreview_config_t *cfg)
{
    char err[ERRLEN] = "";
    rm_attestor_t *a = NULL;
    int ret;

    if ((ret = rm_attestor_tokenreview_create(cfg, &a, err, sizeof(err))) != 0)
        fail_msg("rm_attestor_tokenreview_create: %s: %s", rm_strerror(ret), err);
    assert_non_null(a);
    assert_string_equal(a->ops->name, "token-review");
    return a;
}

static void expect_ok(rm_attestor_t *a, const char *cred, rm_attested_t *out)
{
    char err[ERRLEN] = "";
    int ret;

    memset(out, 0x5a, sizeof(*out));
    if ((ret = a->ops->attest(a, cred, strlen(cred), out, err, sizeof(err))) != 0)
        fail_msg("attest: %s: %s", rm_strerror(ret), err);
}

/* The attestation is refused with `code`; the message is one line that shows neither the token nor its signature,
 * and *out is left alone. */
static void expect_refused(rm_attestor_t *a, const char *cred, size_t len, int code, char err[ERRLEN])
{
    rm_attested_t out, untouched;
    const char *sig;

    memset(&out, 0x5a, sizeof(out));
    memset(&untouched, 0x5a, sizeof(untouched));
    err[0] = '\0';
    assert_code(a->ops->attest(a, cred, len, &out, err, ERRLEN), code);
    assert_memory_equal(&out, &untouched, sizeof(out));
    assert_true(err[0] != '\0');
    assert_null(strchr(err, '\n'));
    if (len != 0 && memchr(cred, '\0', len) == NULL && strlen(cred) == len) {
        assert_null(strstr(err, cred));
        if ((sig = strrchr(cred, '.')) != NULL && strlen(sig + 1) >= 8)
            assert_null(strstr(err, sig + 1));
    }
}

static void refused(rm_attestor_t *a, const char *cred, int code, char err[ERRLEN])
{
    expect_refused(a, cred, strlen(cred), code, err);
}

/* ---- the review's answer ------------------------------------------------------------------------------------ */

static void test_authenticated(void **state)
{
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    rm_attested_t out;
    const char *cred = token_of("authenticated.json");

    need_stand_in();
    cfg = config();
    a = attestor(&cfg);
    expect_ok(a, cred, &out);
    assert_string_equal(out.namespace_, "shop");
    assert_string_equal(out.service_account, "orders");
    assert_string_equal(out.pod_name, "orders-7d9c5b8f6-q4x2m");
    check_last_request(cred, "ringmesh", "control-token-a");
    a->ops->destroy(a);
}

static void test_unbound_token_has_no_pod(void **state)
{
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    rm_attested_t out;

    need_stand_in();
    cfg = config();
    a = attestor(&cfg);
    expect_ok(a, token_of("authenticated-unbound.json"), &out);
    assert_string_equal(out.namespace_, "shop");
    assert_string_equal(out.service_account, "orders");
    assert_string_equal(out.pod_name, "");
    /* the same with no extra at all */
    {
        json_t *doc = recording("authenticated.json");
        json_object_del(json_object_get(json_object_get(doc, "status"), "user"), "extra");
        expect_ok(a, answer_doc("no-extra", doc), &out);
        assert_string_equal(out.pod_name, "");
    }
    a->ops->destroy(a);
}

static void test_not_authenticated(void **state)
{
    char err[ERRLEN];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    json_t *doc;

    need_stand_in();
    cfg = config();
    a = attestor(&cfg);
    refused(a, token_of("unauthenticated-expired.json"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "did not authenticate");
    assert_contains(err, "service account token has expired");
    refused(a, token_of("unauthenticated-audience.json"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "is invalid for the target audiences");

    /* no reason given */
    doc = recording("unauthenticated-expired.json");
    json_object_del(json_object_get(doc, "status"), "error");
    refused(a, answer_doc("unauthenticated-no-reason", doc), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "did not authenticate the token: (it gave no reason)");

    /* authenticated must be JSON true: false, and "true" as a string, are not */
    doc = recording("authenticated.json");
    json_object_set_new(json_object_get(doc, "status"), "authenticated", json_false());
    refused(a, answer_doc("authenticated-false", doc), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "did not authenticate");
    doc = recording("authenticated.json");
    json_object_set_new(json_object_get(doc, "status"), "authenticated", json_string("true"));
    refused(a, answer_doc("authenticated-string", doc), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "did not authenticate");
    a->ops->destroy(a);
}

/* An authenticator may quote what it was given; the message must not. */
static void test_api_text_never_shows_the_token(void **state)
{
    char err[ERRLEN], reason[512];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    json_t *doc;
    const char *cred;

    need_stand_in();
    cfg = config();
    a = attestor(&cfg);
    cred = VARIANT_PREFIX "echoing-authenticator-signature";
    snprintf(reason, sizeof(reason), "[invalid bearer token, webhook: unknown token %s (signature %s)]", cred,
             strrchr(cred, '.') + 1);
    doc = recording("unauthenticated-expired.json");
    json_object_set_new(json_object_get(doc, "status"), "error", json_string(reason));
    assert_string_equal(answer_doc("echoing-authenticator-signature", doc), cred);
    refused(a, cred, RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "webhook: unknown token <token> (signature <signature>)");
    a->ops->destroy(a);
}

static void test_audience_not_granted(void **state)
{
    char err[ERRLEN];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    json_t *doc;

    need_stand_in();
    cfg = config();
    a = attestor(&cfg);
    refused(a, token_of("audience-apiserver.json"), RM_ERR_JWT_AUDIENCE, err);
    assert_contains(err, "does not grant audience 'ringmesh'");
    assert_contains(err, "https://kubernetes.default.svc.cluster.local");
    refused(a, token_of("audience-unaware.json"), RM_ERR_JWT_AUDIENCE, err);
    assert_contains(err, "grants no audience");
    doc = recording("authenticated.json");
    json_object_set_new(json_object_get(doc, "status"), "audiences", json_array());
    refused(a, answer_doc("audiences-empty", doc), RM_ERR_JWT_AUDIENCE, err);
    assert_contains(err, "grants no audience");
    doc = recording("authenticated.json");
    json_object_set_new(json_object_get(doc, "status"), "audiences", json_string("ringmesh"));
    refused(a, answer_doc("audiences-not-a-list", doc), RM_ERR_JWT_AUDIENCE, err);
    a->ops->destroy(a);

    /* another configured audience is asked for, and ringmesh's grant does not count for it */
    cfg.audience = "mesh-b";
    a = attestor(&cfg);
    refused(a, token_of("authenticated.json"), RM_ERR_JWT_AUDIENCE, err);
    assert_contains(err, "does not grant audience 'mesh-b'");
    check_last_request(token_of("authenticated.json"), "mesh-b", "control-token-a");
    a->ops->destroy(a);
}

static void test_user_not_a_service_account(void **state)
{
    char err[ERRLEN];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    json_t *doc;

    need_stand_in();
    cfg = config();
    a = attestor(&cfg);
    refused(a, token_of("not-serviceaccount.json"), RM_ERR_JWT_CLAIMS, err);
    assert_contains(err, "'https://issuer.example.com#jane' is not a service account");
    refused(a, answer_username("user-node", "system:node:worker-2"), RM_ERR_JWT_CLAIMS, err);
    assert_contains(err, "is not a service account");
    refused(a, answer_username("user-sa-prefix-only", "system:serviceaccount:shop"), RM_ERR_JWT_CLAIMS, err);
    assert_contains(err, "has no service account name");
    refused(a, answer_username("user-empty", ""), RM_ERR_JWT_CLAIMS, err);
    assert_contains(err, "names no user");
    doc = recording("authenticated.json");
    json_object_set_new(json_object_get(json_object_get(doc, "status"), "user"), "username",
                        json_stringn("system:serviceaccount:shop:orders\0:admin", 40));
    refused(a, answer_doc("user-nul", doc), RM_ERR_AUTH_REVIEW, err); /* a NUL would cut the name short */
    assert_contains(err, "is not JSON");
    doc = recording("authenticated.json");
    json_object_set_new(json_object_get(doc, "status"), "user", json_object());
    refused(a, answer_doc("user-no-username", doc), RM_ERR_JWT_CLAIMS, err);
    assert_contains(err, "names no user");
    doc = recording("authenticated.json");
    json_object_del(json_object_get(doc, "status"), "user");
    refused(a, answer_doc("user-missing", doc), RM_ERR_JWT_CLAIMS, err);
    assert_contains(err, "names no user");
    a->ops->destroy(a);
}

static void test_names_not_dns1123(void **state)
{
    static const struct {
        const char *name, *username, *says;
    } bad[] = {
        {"ns-upper", "system:serviceaccount:Shop:orders", "namespace"},
        {"ns-underscore", "system:serviceaccount:shop_prod:orders", "namespace"},
        {"ns-dotted", "system:serviceaccount:shop.prod:orders", "namespace"}, /* a subdomain, not a label */
        {"ns-empty", "system:serviceaccount::orders", "namespace"},
        {"ns-dash-end", "system:serviceaccount:shop-:orders", "namespace"},
        {"ns-too-long", "system:serviceaccount:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:orders",
         "namespace"},
        {"sa-upper", "system:serviceaccount:shop:Orders", "service account"},
        {"sa-colon", "system:serviceaccount:shop:orders:admin", "service account"},
        {"sa-empty", "system:serviceaccount:shop:", "service account"},
        {"sa-slash", "system:serviceaccount:shop:orders/x", "service account"},
        {"sa-dash-start", "system:serviceaccount:shop:-orders", "service account"},
        {"sa-empty-part", "system:serviceaccount:shop:orders..v2", "service account"},
    };
    char err[ERRLEN], want[64];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    rm_attested_t out;
    size_t i;

    need_stand_in();
    cfg = config();
    a = attestor(&cfg);
    for (i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        refused(a, answer_username(bad[i].name, bad[i].username), RM_ERR_JWT_CLAIMS, err);
        snprintf(want, sizeof(want), "the %s in the token's user", bad[i].says);
        assert_contains(err, want);
        assert_contains(err, "DNS-1123");
    }
    /* next to them, names that are valid: a 63-byte namespace, a dotted service account name */
    expect_ok(a,
              answer_username("names-ok", "system:serviceaccount:"
                                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:orders.v2"),
              &out);
    assert_int_equal(strlen(out.namespace_), 63);
    assert_string_equal(out.service_account, "orders.v2");
    a->ops->destroy(a);
}

static void test_pod_name_invalid(void **state)
{
    char err[ERRLEN];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    json_t *doc;

    need_stand_in();
    cfg = config();
    a = attestor(&cfg);
    refused(a, answer_pod_name("pod-upper", json_pack("[s]", "Orders-1")), RM_ERR_JWT_CLAIMS, err);
    assert_contains(err, "pod-name");
    refused(a, answer_pod_name("pod-two", json_pack("[ss]", "orders-1", "orders-2")), RM_ERR_JWT_CLAIMS, err);
    assert_contains(err, "pod-name");
    refused(a, answer_pod_name("pod-none", json_array()), RM_ERR_JWT_CLAIMS, err);
    refused(a, answer_pod_name("pod-string", json_string("orders-1")), RM_ERR_JWT_CLAIMS, err);
    refused(a, answer_pod_name("pod-number", json_pack("[i]", 7)), RM_ERR_JWT_CLAIMS, err);
    doc = recording("authenticated.json");
    json_object_set_new(json_object_get(json_object_get(doc, "status"), "user"), "extra", json_string("x"));
    refused(a, answer_doc("extra-not-object", doc), RM_ERR_JWT_CLAIMS, err);
    assert_contains(err, "extra is not an object");
    a->ops->destroy(a);
}

static void test_bad_answers(void **state)
{
    char err[ERRLEN], *big;
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    json_t *doc;
    size_t i;

    need_stand_in();
    cfg = config();
    a = attestor(&cfg);
    refused(a, answer_raw("not-json", "<html><body>503 Service Unavailable</body></html>"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "is not JSON");
    refused(a, answer_raw("empty-body", ""), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "is not JSON");
    /* which of two status members would count is not for a parser to decide */
    refused(a,
            answer_raw("duplicate-status", "{\"kind\":\"TokenReview\",\"apiVersion\":\"authentication.k8s.io/v1\","
                                           "\"status\":{\"user\":{}},\"status\":{\"authenticated\":true,\"user\":{"
                                           "\"username\":\"system:serviceaccount:shop:orders\"},\"audiences\":["
                                           "\"ringmesh\"]}}"),
            RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "is not JSON");
    doc = recording("authenticated.json");
    json_object_set_new(doc, "kind", json_string("TokenRequest"));
    refused(a, answer_doc("kind-other", doc), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "is not a TokenReview");
    doc = recording("authenticated.json");
    json_object_set_new(doc, "apiVersion", json_string("authentication.k8s.io/v1beta1"));
    refused(a, answer_doc("version-other", doc), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "is not a TokenReview");
    doc = recording("authenticated.json");
    json_object_del(doc, "status");
    refused(a, answer_doc("no-status", doc), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "has no status");
    refused(a, answer_raw("array", "[]"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "is not a TokenReview");

    /* more than 1 MiB is not read to the end */
    assert_non_null(big = malloc((2u << 20) + 16));
    big[0] = '"';
    for (i = 1; i != (2u << 20); ++i)
        big[i] = 'a';
    strcpy(big + i, "\"");
    refused(a, answer_raw("too-large", big), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "answered more than 1048576 bytes");
    free(big);

    /* a token the stand-in has no recording for: its 500 Status, quoted */
    refused(a, VARIANT_PREFIX "not-in-any-table", RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "HTTP 500 InternalError: fake_kube_api: no recording for this token");
    a->ops->destroy(a);
}

static void test_malformed_credential(void **state)
{
    static const char *const bad[] = {
        "not-a-jws", "two.parts", ".payload.sig", "header..sig",  "header.payload.", "a.b.c.d",        "a.b.c=",
        "a.b.c d",   "a.b.c\n",   "a.b.c\"",      "a.b.c\\u0000", "a+b.c/d.e",       "eyJ.eyJ.ab\x01",
    };
    char err[ERRLEN], *huge;
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    size_t i, before;

    need_stand_in();
    cfg = config();
    a = attestor(&cfg);
    before = request_count();
    for (i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        refused(a, bad[i], RM_ERR_JWT_MALFORMED, err);
        assert_contains(err, "compact JWS");
    }
    expect_refused(a, "a.b.c\0d", 7, RM_ERR_JWT_MALFORMED, err);
    expect_refused(a, "", 0, RM_ERR_JWT_MALFORMED, err);
    assert_contains(err, "empty");
    expect_refused(a, NULL, 0, RM_ERR_JWT_MALFORMED, err);
    assert_non_null(huge = malloc((16u << 10) + 2));
    memset(huge, 'a', (16u << 10) + 1);
    huge[1] = '.';
    huge[3] = '.';
    huge[(16u << 10) + 1] = '\0';
    refused(a, huge, RM_ERR_JWT_MALFORMED, err);
    assert_contains(err, "longer than 16384 bytes");
    free(huge);
    /* none of these reached the API */
    assert_int_equal(request_count(), before);
    a->ops->destroy(a);
}

/* ---- the control plane's own token -------------------------------------------------------------------------- */

static void test_caller_token_refused_401(void **state)
{
    char err[ERRLEN], file[256];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;

    need_stand_in();
    assert_int_equal(write_text("token-revoked", "control-token-revoked"), 0);
    path_of(file, sizeof(file), "token-revoked");
    cfg = config();
    cfg.token_file = file;
    a = attestor(&cfg);
    refused(a, token_of("authenticated.json"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "HTTP 401 Unauthorized: Unauthorized");
    assert_contains(err, "own token was not accepted");
    assert_null(strstr(err, "control-token-revoked"));
    check_last_request(token_of("authenticated.json"), "ringmesh", "control-token-revoked");
    a->ops->destroy(a);
}

static void test_caller_forbidden_403(void **state)
{
    char err[ERRLEN], file[256];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;

    need_stand_in();
    assert_int_equal(write_text("token-no-rbac", "control-token-no-rbac\n"), 0);
    path_of(file, sizeof(file), "token-no-rbac");
    cfg = config();
    cfg.token_file = file;
    a = attestor(&cfg);
    refused(a, token_of("authenticated.json"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "HTTP 403 Forbidden: tokenreviews.authentication.k8s.io is forbidden");
    assert_contains(err, "cannot create resource");
    a->ops->destroy(a);
}

/* The kubelet rewrites the token file as it rotates the token: each review reads it again. */
static void test_token_file_reread(void **state)
{
    char err[ERRLEN], file[256];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    rm_attested_t out;
    const char *cred = token_of("authenticated.json");
    size_t before;

    need_stand_in();
    assert_int_equal(write_text("token-rotating", "control-token-a"), 0);
    path_of(file, sizeof(file), "token-rotating");
    cfg = config();
    cfg.token_file = file;
    a = attestor(&cfg);
    expect_ok(a, cred, &out);
    check_last_request(cred, "ringmesh", "control-token-a");
    assert_int_equal(write_text("token-rotating", "control-token-b\n"), 0); /* a trailing newline is not sent */
    expect_ok(a, cred, &out);
    check_last_request(cred, "ringmesh", "control-token-b");
    assert_int_equal(write_text("token-rotating", "control-token-revoked"), 0);
    refused(a, cred, RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "HTTP 401");

    /* unreadable, empty or not a bearer token: no request goes out */
    before = request_count();
    assert_int_equal(unlink(file), 0);
    refused(a, cred, RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "cannot read the control plane's token");
    assert_contains(err, file);
    assert_int_equal(write_text("token-rotating", "\n"), 0);
    refused(a, cred, RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "is empty");
    assert_int_equal(write_text("token-rotating", "control token\r\nX-Injected: 1"), 0);
    refused(a, cred, RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "not a bearer token");
    assert_int_equal(request_count(), before);
    a->ops->destroy(a);
}

/* ---- reaching the API --------------------------------------------------------------------------------------- */

static void test_server_certificate_not_trusted(void **state)
{
    char err[ERRLEN];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    size_t before;

    need_stand_in();
    cfg = config();
    cfg.ca_file = other_ca_file;
    a = attestor(&cfg);
    before = request_count();
    refused(a, token_of("authenticated.json"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "TLS with the Kubernetes API at");
    assert_contains(err, other_ca_file);
    assert_int_equal(request_count(), before);
    a->ops->destroy(a);
}

/* The certificate is for 127.0.0.1 only: reached as "localhost", the name does not match. */
static void test_server_name_mismatch(void **state)
{
    struct addrinfo hints = {0}, *res = NULL, *ai;
    char err[ERRLEN], url[64];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    int loopback = 0;
    size_t before;

    need_stand_in();
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo("localhost", NULL, &hints, &res) == 0) {
        for (ai = res; ai != NULL; ai = ai->ai_next)
            loopback |= ((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
        freeaddrinfo(res);
    }
    if (!loopback) {
        fprintf(stderr, "localhost does not resolve to 127.0.0.1 here: this test is skipped\n");
        skip();
    }
    snprintf(url, sizeof(url), "https://localhost:%u", T.port);
    cfg = config();
    cfg.api_server = url;
    a = attestor(&cfg);
    before = request_count();
    refused(a, token_of("authenticated.json"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "TLS with the Kubernetes API at https://localhost:");
    assert_int_equal(request_count(), before);
    a->ops->destroy(a);
}

static int loopback_socket(unsigned *port)
{
    struct sockaddr_in sin = {0};
    socklen_t len = sizeof(sin);
    int fd;

    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

static void test_api_down(void **state)
{
    char err[ERRLEN], url[64];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    unsigned port;
    int fd;

    need_stand_in();
    /* nothing listens */
    fd = loopback_socket(&port);
    close(fd);
    snprintf(url, sizeof(url), "https://127.0.0.1:%u", port);
    cfg = config();
    cfg.api_server = url;
    a = attestor(&cfg);
    refused(a, token_of("authenticated.json"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "cannot reach the Kubernetes API at https://127.0.0.1:");
    a->ops->destroy(a);

    /* the connection is taken but nothing ever answers: the timeout ends the review */
    fd = loopback_socket(&port);
    assert_int_equal(listen(fd, 8), 0);
    snprintf(url, sizeof(url), "https://127.0.0.1:%u", port);
    cfg.api_server = url;
    cfg.timeout_ms = 300;
    a = attestor(&cfg);
    refused(a, token_of("authenticated.json"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "no answer from the Kubernetes API at https://127.0.0.1:");
    assert_contains(err, "within 300 ms");
    a->ops->destroy(a);
    close(fd);

    /* TLS is up and the request is taken, but the answer never comes */
    assert_int_equal(write_text("never.stall", ""), 0);
    cfg = config();
    cfg.timeout_ms = 300;
    a = attestor(&cfg);
    refused(a, answer_with("never.stall", "stalled-answer"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "no answer from the Kubernetes API at https://127.0.0.1:");
    assert_contains(err, "within 300 ms");
    a->ops->destroy(a);
}

/* ---- configuration ------------------------------------------------------------------------------------------ */

static void restore_env(const char *name, char *saved)
{
    if (saved != NULL)
        setenv(name, saved, 1);
    else
        unsetenv(name);
    free(saved);
}

static void test_config(void **state)
{
    char *saved_host = getenv("KUBERNETES_SERVICE_HOST"), *saved_port = getenv("KUBERNETES_SERVICE_PORT");
    char err[ERRLEN], port[16], url[80], missing[256];
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a = NULL;
    rm_attested_t out;

    need_stand_in();
    saved_host = saved_host != NULL ? strdup(saved_host) : NULL;
    saved_port = saved_port != NULL ? strdup(saved_port) : NULL;

    /* the API server from the environment, as a pod sees it */
    snprintf(port, sizeof(port), "%u", T.port);
    setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", port, 1);
    cfg = config();
    cfg.api_server = NULL;
    a = attestor(&cfg);
    expect_ok(a, token_of("authenticated.json"), &out);
    assert_string_equal(out.namespace_, "shop");
    a->ops->destroy(a);
    /* an IPv6 service address goes in brackets (nothing answers there: the message shows the URL) */
    setenv("KUBERNETES_SERVICE_HOST", "fd00:6d65:7368::1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "1", 1);
    cfg.timeout_ms = 200;
    a = attestor(&cfg);
    refused(a, token_of("authenticated.json"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "at https://[fd00:6d65:7368::1]:1");
    a->ops->destroy(a);
    cfg.timeout_ms = 0;
    /* neither set, nor a URL given */
    unsetenv("KUBERNETES_SERVICE_HOST");
    assert_code(rm_attestor_tokenreview_create(&cfg, &a, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_contains(err, "KUBERNETES_SERVICE_HOST");
    setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
    unsetenv("KUBERNETES_SERVICE_PORT");
    assert_code(rm_attestor_tokenreview_create(&cfg, &a, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_contains(err, "KUBERNETES_SERVICE_PORT");
    restore_env("KUBERNETES_SERVICE_HOST", saved_host);
    restore_env("KUBERNETES_SERVICE_PORT", saved_port);

    /* a trailing slash on the URL is not doubled into the path (the stand-in knows one path only) */
    snprintf(url, sizeof(url), "%s/", T.url);
    cfg = config();
    cfg.api_server = url;
    a = attestor(&cfg);
    expect_ok(a, token_of("authenticated.json"), &out);
    a->ops->destroy(a);

    /* a path prefix is kept in front of the API path */
    snprintf(url, sizeof(url), "%s/behind/a/proxy", T.url);
    cfg = config();
    cfg.api_server = url;
    a = attestor(&cfg);
    refused(a, token_of("authenticated.json"), RM_ERR_AUTH_REVIEW, err);
    assert_contains(err, "HTTP 404 NotFound");
    {
        json_t *req = last_request();
        assert_string_equal(member(req, "path"), "/behind/a/proxy" REVIEW_PATH);
        json_decref(req);
    }
    a->ops->destroy(a);

    /* URLs that are refused */
    cfg = config();
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", T.port);
    cfg.api_server = url;
    assert_code(rm_attestor_tokenreview_create(&cfg, &a, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_contains(err, "is not https://");
    cfg.api_server = "https://admin:secret@127.0.0.1:6443";
    assert_code(rm_attestor_tokenreview_create(&cfg, &a, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_contains(err, "no user, query or fragment");
    cfg.api_server = "https://127.0.0.1:6443/?x=1";
    assert_code(rm_attestor_tokenreview_create(&cfg, &a, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    cfg.api_server = "not a url";
    assert_code(rm_attestor_tokenreview_create(&cfg, &a, err, sizeof(err)), RM_ERR_CONFIG_VALUE);

    /* files that cannot be read, named */
    path_of(missing, sizeof(missing), "no-such-file");
    cfg = config();
    cfg.ca_file = missing;
    assert_code(rm_attestor_tokenreview_create(&cfg, &a, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_contains(err, "CA file");
    assert_contains(err, missing);
    cfg = config();
    cfg.token_file = missing;
    assert_code(rm_attestor_tokenreview_create(&cfg, &a, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_contains(err, "token file");
    if (access(RM_TOKENREVIEW_CA_FILE, F_OK) != 0) { /* outside a pod: the default path is the one named */
        cfg = config();
        cfg.ca_file = NULL;
        assert_code(rm_attestor_tokenreview_create(&cfg, &a, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
        assert_contains(err, RM_TOKENREVIEW_CA_FILE);
    }
    if (access(RM_TOKENREVIEW_TOKEN_FILE, F_OK) != 0) {
        cfg = config();
        cfg.token_file = NULL;
        assert_code(rm_attestor_tokenreview_create(&cfg, &a, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
        assert_contains(err, RM_TOKENREVIEW_TOKEN_FILE);
    }
    cfg = config();
    cfg.audience = "";
    assert_code(rm_attestor_tokenreview_create(&cfg, &a, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_contains(err, "audience");
    cfg.audience = "mesh\xff";
    assert_code(rm_attestor_tokenreview_create(&cfg, &a, err, sizeof(err)), RM_ERR_CONFIG_VALUE);
    assert_contains(err, "audience");
}

/* ---- threads ------------------------------------------------------------------------------------------------ */

typedef struct st_worker_t {
    rm_attestor_t *a;
    const char *good, *expired;
    int wrong;
} worker_t;

static void *review_many(void *arg)
{
    worker_t *w = arg;
    rm_attested_t out;
    char err[ERRLEN];
    int i;

    for (i = 0; i != 8; ++i) {
        if (w->a->ops->attest(w->a, w->good, strlen(w->good), &out, err, sizeof(err)) != 0 ||
            strcmp(out.namespace_, "shop") != 0 || strcmp(out.pod_name, "orders-7d9c5b8f6-q4x2m") != 0)
            ++w->wrong;
        if (w->a->ops->attest(w->a, w->expired, strlen(w->expired), &out, err, sizeof(err)) != RM_ERR_AUTH_REVIEW ||
            strstr(err, "service account token has expired") == NULL)
            ++w->wrong;
    }
    return NULL;
}

static void test_concurrent_reviews(void **state)
{
    rm_tokenreview_config_t cfg;
    rm_attestor_t *a;
    pthread_t threads[4];
    worker_t workers[4];
    size_t i;

    need_stand_in();
    cfg = config();
    a = attestor(&cfg);
    for (i = 0; i != 4; ++i) {
        workers[i] = (worker_t){a, token_of("authenticated.json"), token_of("unauthenticated-expired.json"), 0};
        assert_int_equal(pthread_create(&threads[i], NULL, review_many, &workers[i]), 0);
    }
    for (i = 0; i != 4; ++i) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(workers[i].wrong, 0);
    }
    a->ops->destroy(a);
}

/* ---- the stand-in itself: its checks of a request can fail ------------------------------------------------- */

static size_t discard(char *data, size_t size, size_t nmemb, void *ctx)
{
    return size * nmemb;
}

static long post_raw(const char *bearer, const char *content_type, const char *body)
{
    struct curl_slist *headers = NULL;
    char auth[128], ctype[128];
    long status = 0;
    CURL *curl;
    char url[128];

    snprintf(url, sizeof(url), "%s" REVIEW_PATH, T.url);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer);
    snprintf(ctype, sizeof(ctype), "Content-Type: %s", content_type);
    assert_non_null(curl = curl_easy_init());
    headers = curl_slist_append(headers, auth);
    headers = curl_slist_append(headers, ctype);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(curl, CURLOPT_PROXY, "");
    assert_int_equal(curl_easy_perform(curl), CURLE_OK);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return status;
}

static void test_stand_in_checks_requests(void **state)
{
    char body[512];
    const char *cred;

    need_stand_in();
    cred = token_of("authenticated.json");
#define BODY(fmt) (snprintf(body, sizeof(body), fmt, cred), body)
    /* the documented shape passes, with and without audiences and with the metadata and status clients send */
    assert_int_equal(post_raw("control-token-a", "application/json",
                              BODY("{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\","
                                   "\"spec\":{\"token\":\"%s\",\"audiences\":[\"ringmesh\"]}}")),
                     201);
    assert_int_equal(post_raw("control-token-a", "application/json",
                              BODY("{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\","
                                   "\"metadata\":{\"creationTimestamp\":null},\"spec\":{\"token\":\"%s\"},"
                                   "\"status\":{\"user\":{}}}")),
                     201);
    /* anything else does not */
    assert_int_equal(post_raw("control-token-x", "application/json",
                              BODY("{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\","
                                   "\"spec\":{\"token\":\"%s\"}}")),
                     401);
    assert_int_equal(post_raw("control-token-a", "text/plain",
                              BODY("{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\","
                                   "\"spec\":{\"token\":\"%s\"}}")),
                     415);
    assert_int_equal(post_raw("control-token-a", "application/json",
                              BODY("{\"apiVersion\":\"authentication.k8s.io/v1beta1\",\"kind\":\"TokenReview\","
                                   "\"spec\":{\"token\":\"%s\"}}")),
                     400);
    assert_int_equal(post_raw("control-token-a", "application/json",
                              BODY("{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\","
                                   "\"spec\":{\"token\":\"%s\",\"audience\":\"ringmesh\"}}")),
                     400);
    assert_int_equal(post_raw("control-token-a", "application/json",
                              BODY("{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\","
                                   "\"token\":\"%s\"}")),
                     400);
    assert_int_equal(post_raw("control-token-a", "application/json",
                              BODY("{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\","
                                   "\"spec\":{\"token\":\"%s\",\"audiences\":\"ringmesh\"}}")),
                     400);
    assert_int_equal(post_raw("control-token-a", "application/json",
                              "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\","
                              "\"spec\":{\"token\":\"\"}}"),
                     400);
#undef BODY
}

/* ---- fixture ------------------------------------------------------------------------------------------------ */

static int group_setup(void **state)
{
    json_error_t jerr;

    strcpy(T.dir, "/tmp/rm-test-tokenreview-XXXXXX");
    if (mkdtemp(T.dir) == NULL)
        return -1;
    if ((T.table = json_load_file(DATA_DIR "table.json", 0, &jerr)) == NULL) {
        fprintf(stderr, "%s\n", jerr.text);
        return -1;
    }
    T.extra = json_pack("{s:{}}", "reviews");
    path_of(ca_file, sizeof(ca_file), "ca.pem");
    path_of(other_ca_file, sizeof(other_ca_file), "other-ca.pem");
    path_of(token_file, sizeof(token_file), "control-token");
    if (access(PYTHON, X_OK) != 0) {
        snprintf(T.why_not, sizeof(T.why_not), "%s is missing", PYTHON);
        return 0;
    }
    if (system("command -v openssl >/dev/null 2>&1") != 0) {
        snprintf(T.why_not, sizeof(T.why_not), "the openssl binary is missing");
        return 0;
    }
    if (make_certs() != 0 || write_text("control-token", "control-token-a") != 0 ||
        write_text("table-extra.json", "{\"reviews\": {}}\n") != 0 || start_stand_in() != 0) {
        fprintf(stderr, "the stand-in Kubernetes API did not start\n");
        show_stand_in_log();
        stop_stand_in();
        return -1;
    }
    T.ready = 1;
    return 0;
}

static int group_teardown(void **state)
{
    char cmd[128];

    stop_stand_in();
    json_decref(T.table);
    json_decref(T.extra);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", T.dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_authenticated),
        cmocka_unit_test(test_unbound_token_has_no_pod),
        cmocka_unit_test(test_not_authenticated),
        cmocka_unit_test(test_api_text_never_shows_the_token),
        cmocka_unit_test(test_audience_not_granted),
        cmocka_unit_test(test_user_not_a_service_account),
        cmocka_unit_test(test_names_not_dns1123),
        cmocka_unit_test(test_pod_name_invalid),
        cmocka_unit_test(test_bad_answers),
        cmocka_unit_test(test_malformed_credential),
        cmocka_unit_test(test_caller_token_refused_401),
        cmocka_unit_test(test_caller_forbidden_403),
        cmocka_unit_test(test_token_file_reread),
        cmocka_unit_test(test_server_certificate_not_trusted),
        cmocka_unit_test(test_server_name_mismatch),
        cmocka_unit_test(test_api_down),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_concurrent_reviews),
        cmocka_unit_test(test_stand_in_checks_requests),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
