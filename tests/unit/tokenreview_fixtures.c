/* Fixtures shared by the TokenReview attestor's tests: see tokenreview_fixtures.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ringmesh/error.h"
#include "tokenreview_fixtures.h"
#include "unit_asserts.h"

tokenreview_world_t T;
char ca_file[256], other_ca_file[256], token_file[256];

/* ---- files and commands ------------------------------------------------------------------------------------- */

void path_of(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", T.dir, name);
}

int write_text(const char *name, const char *text)
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

char *read_text(const char *path)
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
int sh(const char *fmt, ...)
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
int make_certs(void)
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

void show_stand_in_log(void)
{
    char path[256], *text;

    path_of(path, sizeof(path), "stand-in.log");
    if ((text = read_text(path)) != NULL) {
        fprintf(stderr, "--- stand-in log ---\n%s--- end ---\n", text);
        free(text);
    }
}

int start_stand_in(void)
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

void stop_stand_in(void)
{
    if (T.pid > 0) {
        kill(T.pid, SIGTERM);
        waitpid(T.pid, NULL, 0);
        T.pid = 0;
    }
}

void need_stand_in(void)
{
    if (!T.ready) {
        fprintf(stderr, "%s: this test is skipped\n", T.why_not);
        skip();
    }
}

/* ---- recordings and answers made from them ------------------------------------------------------------------ */

/* The token the committed table answers with `recording`. */
const char *token_of(const char *recording)
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
json_t *recording(const char *name)
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
const char *answer_with(const char *file, const char *name)
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
const char *answer_doc(const char *name, json_t *doc)
{
    char file[128], path[256];

    snprintf(file, sizeof(file), "%s.json", name);
    path_of(path, sizeof(path), file);
    assert_int_equal(json_dump_file(doc, path, JSON_INDENT(2)), 0);
    json_decref(doc);
    return answer_with(file, name);
}

/* An answer sent byte for byte. */
const char *answer_raw(const char *name, const char *text)
{
    char file[128];

    snprintf(file, sizeof(file), "%s.raw", name);
    assert_int_equal(write_text(file, text), 0);
    return answer_with(file, name);
}

/* authenticated.json with status.user.username set to `username`. */
const char *answer_username(const char *name, const char *username)
{
    json_t *doc = recording("authenticated.json");
    json_t *user = json_object_get(json_object_get(doc, "status"), "user");

    assert_int_equal(json_object_set_new(user, "username", json_string(username)), 0);
    return answer_doc(name, doc);
}

/* authenticated.json with status.user.extra's pod name set to `value` (taken; NULL removes it). */
const char *answer_pod_name(const char *name, json_t *value)
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

size_t request_count(void)
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

json_t *last_request(void)
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

const char *member(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));

    if (s == NULL)
        fail_msg("request log entry has no string %s", key);
    return s;
}

/* The last request was the TokenReview the API reference documents, for `cred` and `audience`, and carried the
 * bearer token `bearer`: POST to the collection, JSON both ways, a body of exactly apiVersion, kind and a spec of
 * exactly token and audiences. */
void check_last_request(const char *cred, const char *audience, const char *bearer)
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
rm_tokenreview_config_t config(void)
{
    rm_tokenreview_config_t cfg = {0};

    cfg.api_server = T.url;
    cfg.ca_file = ca_file;
    cfg.token_file = token_file;
    return cfg;
}

rm_attestor_t *attestor(const rm_tokenreview_config_t *cfg)
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

void expect_ok(rm_attestor_t *a, const char *cred, rm_attested_t *out)
{
    char err[ERRLEN] = "";
    int ret;

    memset(out, 0x5a, sizeof(*out));
    if ((ret = a->ops->attest(a, cred, strlen(cred), out, err, sizeof(err))) != 0)
        fail_msg("attest: %s: %s", rm_strerror(ret), err);
}

/* The attestation is refused with `code`; the message is one line that shows neither the token nor its signature,
 * and *out is left alone. */
void expect_refused(rm_attestor_t *a, const char *cred, size_t len, int code, char err[ERRLEN])
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

void refused(rm_attestor_t *a, const char *cred, int code, char err[ERRLEN])
{
    expect_refused(a, cred, strlen(cred), code, err);
}
/* ---- fixture ------------------------------------------------------------------------------------------------ */

int group_setup(void **state)
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

int group_teardown(void **state)
{
    char cmd[128];

    stop_stand_in();
    json_decref(T.table);
    json_decref(T.extra);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", T.dir);
    return system(cmd) == 0 ? 0 : -1;
}
