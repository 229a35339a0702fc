/* Fixtures shared by the TokenReview attestor's tests (test_attest_tokenreview_*.c): a stand-in Kubernetes API
 * (tests/e2e/tools/fake_kube_api.py) over real TLS, started once per test group in a temporary work directory with
 * certificates made by the openssl CLI; answers made from the committed recordings (tests/data/tokenreview/); what
 * the stand-in saw; attestors pointed at it. Helpers fail the running cmocka test on what they do not expect. */
#ifndef RM_TEST_TOKENREVIEW_FIXTURES_H
#define RM_TEST_TOKENREVIEW_FIXTURES_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "attest.h"

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

/** The group's state: the work directory and the stand-in, set up by group_setup(). */
typedef struct st_tokenreview_world_t {
    char dir[64];
    int ready;        /* the stand-in runs */
    char why_not[96]; /* when not: what is missing */
    pid_t pid;
    unsigned port;
    char url[64];
    json_t *table;   /* the committed table */
    json_t *extra;   /* {"reviews": {token: recording}} for answers made here; the stand-in re-reads it */
    size_t nvariant; /* how many answers were made here */
} tokenreview_world_t;

extern tokenreview_world_t T;
/** The work directory's CA bundle, a CA that signed nothing the stand-in shows, and the control plane's token. */
extern char ca_file[256], other_ca_file[256], token_file[256];

/* ---- files and commands */

/** The path of `name` in the work directory. */
void path_of(char *buf, size_t size, const char *name);

/** Writes `text` to `name` in the work directory, atomically (by rename); 0, or -1 on an I/O error. */
int write_text(const char *name, const char *text);

/** The whole file at `path`, NUL-terminated, in memory the caller frees; NULL when it cannot be read. */
char *read_text(const char *path);

/** Runs a shell command in the work directory with its output in the file "out"; returns the exit status. */
int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** A throwaway CA and the stand-in's certificate (for 127.0.0.1 only: no DNS name), and a second CA that signed
 * nothing the stand-in shows. */
int make_certs(void);

/** Prints what the stand-in wrote to stdout and stderr, for a failed start. */
void show_stand_in_log(void);

/** Starts the stand-in on an ephemeral loopback port and waits (at most 20 s) for it to listen; 0 or -1. */
int start_stand_in(void);

/** Stops the stand-in (by its PID) and waits for it; nothing when it does not run. */
void stop_stand_in(void);

/** Skips the running test, saying why, when the stand-in could not run (no python3 or openssl). */
void need_stand_in(void);

/** The token the committed table answers with `recording`. */
const char *token_of(const char *recording);

/** A committed recording, to make an answer from. */
json_t *recording(const char *name);

/** Has the stand-in answer a new token with the file `file` (in the work directory); returns the token. */
const char *answer_with(const char *file, const char *name);

/** An answer made from a recording: `doc` (taken) is written out and a new token answered with it. */
const char *answer_doc(const char *name, json_t *doc);

/** An answer sent byte for byte. */
const char *answer_raw(const char *name, const char *text);

/** authenticated.json with status.user.username set to `username`. */
const char *answer_username(const char *name, const char *username);

/** authenticated.json with status.user.extra's pod name set to `value` (taken; NULL removes it). */
const char *answer_pod_name(const char *name, json_t *value);

/** How many requests the stand-in has logged. */
size_t request_count(void);

/** The stand-in's log entry of the last request, as JSON the caller frees. */
json_t *last_request(void);

/** The string member `key` of `obj`; fails the test when there is none. */
const char *member(const json_t *obj, const char *key);

/** The last request was the TokenReview the API reference documents, for `cred` and `audience`, and carried the
 * bearer token `bearer`: POST to the collection, JSON both ways, a body of exactly apiVersion, kind and a spec of
 * exactly token and audiences. */
void check_last_request(const char *cred, const char *audience, const char *bearer);

/** A TokenReview configuration for the stand-in: its URL, the work directory's CA and token files. */
rm_tokenreview_config_t config(void);

/** A TokenReview attestor made from `cfg`; fails the test when it is refused. */
rm_attestor_t *attestor(const rm_tokenreview_config_t *cfg);

/** Attests `cred` into `out`; fails the test, with the error text, when it is refused. */
void expect_ok(rm_attestor_t *a, const char *cred, rm_attested_t *out);

/** The attestation is refused with `code`; the message is one line that shows neither the token nor its signature,
 * and *out is left alone. */
void expect_refused(rm_attestor_t *a, const char *cred, size_t len, int code, char err[ERRLEN]);

/** expect_refused() of a NUL-terminated credential. */
void refused(rm_attestor_t *a, const char *cred, int code, char err[ERRLEN]);

/** The cmocka group setup: the work directory, the certificates and the stand-in (none, and T.why_not set,
 * without python3 or openssl). */
int group_setup(void **state);

/** The cmocka group teardown: stops the stand-in and removes the work directory. */
int group_teardown(void **state);

#endif
