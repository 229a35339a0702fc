/* Unit tests for the injector's core (control/inject/): the decision, what is added to pods shaped like real
 * workloads (a Deployment's pod with probes of each kind, a Job's pod, a pod with its own init containers, a
 * host-network pod, an injected pod), the annotations valid and invalid, the patch made by diff, and the
 * InjectorConfig loader's positioned errors. The AdmissionReview answers and YAML<->JSON are in test_inject_review.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "inject.h"
#include "inject_internal.h"

#include "ringmesh/yaml_json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------------------------------------ */

static void assert_contains(const char *haystack, const char *needle)
{
    if (haystack == NULL || strstr(haystack, needle) == NULL)
        fail_msg("\"%s\"\n  does not contain \"%s\"", haystack != NULL ? haystack : "(null)", needle);
}

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (v == NULL)
        fail_msg("test JSON does not parse: %s (line %d): %s", e.text, e.line, text);
    return v;
}

/* A Deployment's pod: a named port, probes of each kind, env, its own init container. */
static const char DEPLOY_POD[] =
    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"generateName\":\"orders-7d9f-\",\"namespace\":\"shop\","
    "\"labels\":{\"app\":\"orders\"}},\"spec\":{\"serviceAccountName\":\"orders\",\"initContainers\":[{\"name\":"
    "\"migrate\",\"image\":\"orders:1\"}],\"containers\":[{\"name\":\"app\",\"image\":\"orders:1\",\"ports\":[{"
    "\"name\":\"http\",\"containerPort\":8080},{\"name\":\"grpc\",\"containerPort\":9090}],\"livenessProbe\":{"
    "\"httpGet\":{\"path\":\"/live\",\"port\":\"http\",\"httpHeaders\":[{\"name\":\"X-A\",\"value\":\"b\"}]},"
    "\"timeoutSeconds\":3,\"periodSeconds\":7},\"readinessProbe\":{\"tcpSocket\":{\"port\":8080}},"
    "\"startupProbe\":{\"grpc\":{\"port\":9090,\"service\":\"orders\"}}},{\"name\":\"cache\",\"image\":\"redis:7\","
    "\"livenessProbe\":{\"exec\":{\"command\":[\"redis-cli\",\"ping\"]}}}]}}";

/* A Job's pod: one container, restartPolicy Never, no probes. */
static const char JOB_POD[] =
    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"report-x\",\"annotations\":{"
    "\"ringmesh.io/inject\":\"true\"}},\"spec\":{\"restartPolicy\":\"Never\",\"containers\":[{\"name\":\"report\","
    "\"image\":\"report:1\",\"command\":[\"/report\"]}]}}";

typedef struct st_fixture_t {
    rm_inject_config_t cfg;
    json_t *enabled; /* namespace labels with ringmesh.io/inject=enabled */
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(rm_inject_config_defaults(&f->cfg), 0);
    f->enabled = parse("{\"ringmesh.io/inject\":\"enabled\",\"team\":\"shop\"}");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    rm_inject_config_dispose(&f->cfg);
    json_decref(f->enabled);
    free(f);
    return 0;
}

/* Injects `pod_text` (labels: the namespace's, or NULL; version 1.MINOR) and checks the outcome. */
static void run(fixture_t *f, const char *pod_text, const json_t *labels, unsigned minor, rm_inject_outcome_t want,
                rm_inject_result_t *res)
{
    json_t *pod = parse(pod_text);
    rm_inject_env_t env = {.namespace_labels = labels, .kube_major = minor != 0 ? 1 : 0, .kube_minor = minor};
    assert_int_equal(rm_inject_pod(&f->cfg, pod, &env, res), 0);
    if (res->outcome != want)
        fail_msg("outcome %d, want %d (reason: %s)", res->outcome, want, res->reason);
    assert_non_null(res->patch);
    if (want != RM_INJECT_PATCHED)
        assert_int_equal(json_array_size(res->patch), 0);
    json_decref(pod);
}

/* Applies an RFC 6902 patch of add/remove/replace (what rm_inject_diff makes) to a copy of `doc`. */
static json_t *apply_patch(const json_t *doc, const json_t *patch)
{
    json_t *root = json_deep_copy(doc), *op;
    size_t i;
    json_array_foreach(patch, i, op)
    {
        const char *kind = json_string_value(json_object_get(op, "op"));
        char *path = strdup(json_string_value(json_object_get(op, "path"))), *seg, *save = NULL;
        json_t *parent = NULL, *cur = root;
        char last[512] = "";
        for (seg = strtok_r(path + 1, "/", &save); seg != NULL; seg = strtok_r(NULL, "/", &save)) {
            /* unescape ~1 then ~0 */
            char un[512], *o = un;
            for (const char *p = seg; *p; p++) {
                if (p[0] == '~' && p[1] == '1')
                    *o++ = '/', p++;
                else if (p[0] == '~' && p[1] == '0')
                    *o++ = '~', p++;
                else
                    *o++ = *p;
            }
            *o = '\0';
            parent = cur;
            snprintf(last, sizeof(last), "%s", un);
            cur = json_is_array(cur) ? json_array_get(cur, strtoul(un, NULL, 10)) : json_object_get(cur, un);
        }
        free(path);
        json_t *value = json_object_get(op, "value");
        assert_non_null(parent);
        if (strcmp(kind, "remove") == 0) {
            assert_int_equal(json_is_array(parent) ? json_array_remove(parent, strtoul(last, NULL, 10))
                                                   : json_object_del(parent, last),
                             0);
        } else if (json_is_array(parent)) {
            size_t idx = strtoul(last, NULL, 10);
            assert_int_equal(strcmp(kind, "add") == 0 ? json_array_insert(parent, idx, value)
                                                      : json_array_set(parent, idx, value),
                             0);
        } else {
            if (strcmp(kind, "replace") == 0)
                assert_non_null(json_object_get(parent, last));
            assert_int_equal(json_object_set(parent, last, value), 0);
        }
    }
    return root;
}

static json_t *find_named(const json_t *list, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c) if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0) return c;
    return NULL;
}

static const char *env_value(const json_t *container, const char *name)
{
    const json_t *e = find_named(json_object_get(container, "env"), name);
    return e != NULL ? json_string_value(json_object_get(e, "value")) : NULL;
}

static char *dump(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    assert_non_null(s);
    return s;
}

/* ---- the decision --------------------------------------------------------------------------------------------- */

static void test_decision(void **state)
{
    fixture_t *f = *state;
    rm_inject_result_t r;

    /* annotation "true" injects without the namespace label */
    run(f, JOB_POD, NULL, 33, RM_INJECT_PATCHED, &r);
    rm_inject_result_dispose(&r);
    /* the namespace label injects a pod that says nothing */
    run(f, DEPLOY_POD, f->enabled, 33, RM_INJECT_PATCHED, &r);
    rm_inject_result_dispose(&r);
    /* neither: skipped, and the pod comes back unchanged */
    run(f, DEPLOY_POD, NULL, 33, RM_INJECT_SKIPPED, &r);
    assert_contains(r.reason, "neither label or annotation ringmesh.io/inject");
    json_t *orig = parse(DEPLOY_POD);
    assert_true(json_equal(orig, r.pod));
    json_decref(orig);
    rm_inject_result_dispose(&r);
    /* a namespace label of another value does not inject */
    json_t *disabled = parse("{\"ringmesh.io/inject\":\"disabled\"}");
    run(f, DEPLOY_POD, disabled, 33, RM_INJECT_SKIPPED, &r);
    rm_inject_result_dispose(&r);
    json_decref(disabled);
    /* "false" opts out of a labelled namespace */
    run(f,
        "{\"metadata\":{\"annotations\":{\"ringmesh.io/inject\":\"false\"}},\"spec\":{\"containers\":[{\"name\":"
        "\"a\",\"image\":\"a\"}]}}",
        f->enabled, 33, RM_INJECT_SKIPPED, &r);
    assert_contains(r.reason, "\"false\"");
    rm_inject_result_dispose(&r);
    /* the pod label (the chart's pod-level webhook selects on it) injects without the namespace label */
    run(f,
        "{\"metadata\":{\"labels\":{\"ringmesh.io/inject\":\"true\"}},\"spec\":{\"containers\":[{\"name\":"
        "\"a\",\"image\":\"a\"}]}}",
        NULL, 33, RM_INJECT_PATCHED, &r);
    rm_inject_result_dispose(&r);
    /* the label "false" opts out of a labelled namespace, and wins over an annotation "true" */
    run(f,
        "{\"metadata\":{\"labels\":{\"ringmesh.io/inject\":\"false\"},\"annotations\":{\"ringmesh.io/"
        "inject\":\"true\"}},\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"a\"}]}}",
        f->enabled, 33, RM_INJECT_SKIPPED, &r);
    assert_contains(r.reason, "\"false\"");
    rm_inject_result_dispose(&r);
    /* a label that is not a boolean is refused, naming the label and its value */
    run(f,
        "{\"metadata\":{\"labels\":{\"ringmesh.io/inject\":\"yes\"}},\"spec\":{\"containers\":[{\"name\":"
        "\"a\",\"image\":\"a\"}]}}",
        f->enabled, 33, RM_INJECT_REFUSED, &r);
    assert_contains(r.reason, "label ringmesh.io/inject: \"yes\"");
    rm_inject_result_dispose(&r);
    /* host network: never, whatever the annotation says */
    run(f,
        "{\"metadata\":{\"annotations\":{\"ringmesh.io/inject\":\"true\"}},\"spec\":{\"hostNetwork\":true,"
        "\"containers\":[{\"name\":\"a\",\"image\":\"a\"}]}}",
        f->enabled, 33, RM_INJECT_SKIPPED, &r);
    assert_contains(r.reason, "hostNetwork");
    rm_inject_result_dispose(&r);
    /* a pod that already has the proxy (injected by an older release without the status annotation) */
    run(f,
        "{\"spec\":{\"containers\":[{\"name\":\"ringmesh-proxy\",\"image\":\"p\"},{\"name\":\"a\",\"image\":"
        "\"a\"}]}}",
        f->enabled, 33, RM_INJECT_SKIPPED, &r);
    assert_contains(r.reason, "already injected");
    rm_inject_result_dispose(&r);
    /* not a pod */
    run(f, "{\"metadata\":{},\"spec\":{}}", f->enabled, 33, RM_INJECT_REFUSED, &r);
    assert_contains(r.reason, "not a Pod");
    assert_null(r.pod);
    rm_inject_result_dispose(&r);
    run(f, "[1,2]", f->enabled, 33, RM_INJECT_REFUSED, &r);
    rm_inject_result_dispose(&r);
    run(f, "{\"metadata\":{\"annotations\":[]},\"spec\":{\"containers\":[]}}", f->enabled, 33, RM_INJECT_REFUSED, &r);
    rm_inject_result_dispose(&r);
}

/* Injecting the injected pod changes nothing: an empty patch. */
static void test_twice_is_once(void **state)
{
    fixture_t *f = *state;
    rm_inject_result_t r1, r2;

    for (unsigned minor = 28; minor <= 29; minor++) {
        run(f, DEPLOY_POD, f->enabled, minor, RM_INJECT_PATCHED, &r1);
        char *once = dump(r1.pod);
        rm_inject_env_t env = {.namespace_labels = f->enabled, .kube_major = 1, .kube_minor = minor};
        assert_int_equal(rm_inject_pod(&f->cfg, r1.pod, &env, &r2), 0);
        assert_int_equal(r2.outcome, RM_INJECT_SKIPPED);
        assert_int_equal(json_array_size(r2.patch), 0);
        char *twice = dump(r2.pod);
        assert_string_equal(once, twice);
        free(once);
        free(twice);
        rm_inject_result_dispose(&r1);
        rm_inject_result_dispose(&r2);
    }
}

/* The patch turns the original into the patched pod, exactly. */
static void test_patch_applies(void **state)
{
    fixture_t *f = *state;
    const char *pods[] = {DEPLOY_POD, JOB_POD};
    rm_inject_result_t r;

    for (size_t p = 0; p < 2; p++) {
        for (unsigned minor = 28; minor <= 30; minor += 2) {
            json_t *orig = parse(pods[p]);
            run(f, pods[p], f->enabled, minor, RM_INJECT_PATCHED, &r);
            json_t *applied = apply_patch(orig, r.patch);
            if (!json_equal(applied, r.pod)) {
                char *a = dump(applied), *b = dump(r.pod);
                fail_msg("patched by the patch:\n%s\nthe result's pod:\n%s", a, b);
            }
            json_decref(applied);
            json_decref(orig);
            rm_inject_result_dispose(&r);
        }
    }
}

static void test_diff_escapes_and_ops(void **state)
{
    (void)state;
    json_t *a = parse("{\"a/b\":1,\"c~d\":[1,2],\"gone\":true,\"arr\":[1]}");
    json_t *b = parse("{\"a/b\":2,\"c~d\":[1,3],\"new\":{\"x\":1},\"arr\":[1,2]}");
    json_t *patch = json_array();
    assert_int_equal(rm_inject_diff(a, b, patch), 0);
    char *s = dump(patch);
    assert_contains(s, "\"path\":\"/a~1b\"");
    assert_contains(s, "\"path\":\"/c~0d/1\"");
    assert_contains(s, "{\"op\":\"remove\",\"path\":\"/gone\"}");
    assert_contains(s, "\"op\":\"add\",\"path\":\"/new\"");
    assert_contains(s, "\"op\":\"replace\",\"path\":\"/arr\"");
    json_t *applied = apply_patch(a, patch);
    assert_true(json_equal(applied, b));
    free(s);
    json_decref(applied);
    json_decref(patch);
    json_decref(a);
    json_decref(b);
}

/* ---- what is added --------------------------------------------------------------------------------------------- */

static void test_native_sidecar_layout(void **state)
{
    fixture_t *f = *state;
    rm_inject_result_t r;

    run(f, DEPLOY_POD, f->enabled, 29, RM_INJECT_PATCHED, &r);
    assert_true(r.native);
    json_t *spec = json_object_get(r.pod, "spec");
    json_t *inits = json_object_get(spec, "initContainers"), *containers = json_object_get(spec, "containers");
    /* ringmesh-init first, the proxy second (before the pod's own init containers, so they have the mesh) */
    assert_int_equal(json_array_size(inits), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(inits, 0), "name")), "ringmesh-init");
    assert_string_equal(json_string_value(json_object_get(json_array_get(inits, 1), "name")), "ringmesh-proxy");
    assert_string_equal(json_string_value(json_object_get(json_array_get(inits, 2), "name")), "migrate");
    assert_int_equal(json_array_size(containers), 2);
    json_t *proxy = json_array_get(inits, 1);
    assert_string_equal(json_string_value(json_object_get(proxy, "restartPolicy")), "Always");
    json_t *sp = json_object_get(json_object_get(proxy, "startupProbe"), "httpGet");
    assert_string_equal(json_string_value(json_object_get(sp, "path")), "/healthz/ready");
    assert_int_equal(json_integer_value(json_object_get(sp, "port")), 15021);
    assert_null(json_object_get(proxy, "lifecycle"));
    /* the proxy's restricted security context */
    json_t *sc = json_object_get(proxy, "securityContext");
    assert_int_equal(json_integer_value(json_object_get(sc, "runAsUser")), 1337);
    assert_true(json_is_true(json_object_get(sc, "runAsNonRoot")));
    assert_true(json_is_true(json_object_get(sc, "readOnlyRootFilesystem")));
    assert_true(json_is_false(json_object_get(sc, "allowPrivilegeEscalation")));
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(json_object_get(sc, "capabilities"), "drop"), 0)), "ALL");
    assert_null(json_object_get(json_object_get(sc, "capabilities"), "add"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(sc, "seccompProfile"), "type")),
                        "RuntimeDefault");
    /* ringmesh-init: NET_ADMIN and NET_RAW, nothing else */
    json_t *caps = json_object_get(json_object_get(json_array_get(inits, 0), "securityContext"), "capabilities");
    char *add = dump(json_object_get(caps, "add"));
    assert_string_equal(add, "[\"NET_ADMIN\",\"NET_RAW\"]");
    free(add);
    /* args --config-env, and the downward-API environment */
    char *args = dump(json_object_get(proxy, "args"));
    assert_string_equal(args, "[\"--config-env\",\"RINGMESH_PROXY_CONFIG\"]");
    free(args);
    json_t *e = find_named(json_object_get(proxy, "env"), "RINGMESH_POD_IP");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_object_get(e, "valueFrom"), "fieldRef"), "fieldPath")),
        "status.podIP");
    assert_non_null(find_named(json_object_get(proxy, "env"), "RINGMESH_SERVICE_ACCOUNT"));
    /* volumes: the projected token with audience ringmesh, the in-memory state, the labels, the roots */
    json_t *vols = json_object_get(spec, "volumes");
    json_t *tok = json_object_get(
        json_array_get(json_object_get(json_object_get(find_named(vols, "ringmesh-token"), "projected"), "sources"), 0),
        "serviceAccountToken");
    assert_string_equal(json_string_value(json_object_get(tok, "audience")), "ringmesh");
    assert_int_equal(json_integer_value(json_object_get(tok, "expirationSeconds")), 3600);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(find_named(vols, "ringmesh-state"), "emptyDir"), "medium")),
        "Memory");
    assert_non_null(find_named(vols, "ringmesh-podinfo"));
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(find_named(vols, "ringmesh-root-cert"), "configMap"), "name")),
                        "ringmesh-root-cert");
    /* the status annotation */
    const char *status = json_string_value(
        json_object_get(json_object_get(json_object_get(r.pod, "metadata"), "annotations"), "ringmesh.io/status"));
    assert_contains(status, "\"sidecar\":\"native\"");
    assert_contains(status, "\"probesRewritten\":3");
    rm_inject_result_dispose(&r);
}

static void test_proxy_config_env(void **state)
{
    fixture_t *f = *state;
    rm_inject_result_t r;
    json_t *docs = NULL;
    char err[256];

    run(f, DEPLOY_POD, f->enabled, 33, RM_INJECT_PATCHED, &r);
    json_t *proxy = find_named(json_object_get(json_object_get(r.pod, "spec"), "initContainers"), "ringmesh-proxy");
    const char *yaml = env_value(proxy, "RINGMESH_PROXY_CONFIG");
    assert_non_null(yaml);
    assert_int_equal(rm_yaml_to_json(yaml, strlen(yaml), &docs, err, sizeof(err)), 0);
    json_t *c = json_array_get(docs, 0);
    json_t *control = json_object_get(c, "control");
    assert_string_equal(json_string_value(json_object_get(control, "address")),
                        "ringmesh-control.ringmesh-system.svc:15012");
    assert_string_equal(json_string_value(json_object_get(control, "serverName")),
                        "ringmesh-control.ringmesh-system.svc");
    assert_string_equal(json_string_value(json_object_get(control, "identity")),
                        "spiffe://cluster.local/ns/ringmesh-system/sa/ringmesh-control");
    assert_string_equal(json_string_value(json_object_get(control, "tokenFile")),
                        "/var/run/secrets/ringmesh/token/token");
    assert_string_equal(json_string_value(json_object_get(control, "bootstrapBundleFile")),
                        "/etc/ringmesh/root-cert/root-cert.pem");
    assert_string_equal(json_string_value(json_object_get(control, "stateDir")), "/var/lib/ringmesh");
    assert_string_equal(json_string_value(json_object_get(json_object_get(control, "node"), "labelsFile")),
                        "/etc/ringmesh/podinfo/labels");
    /* reachable by the kubelet, which probes the pod's IP */
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "admin"), "listen")), "0.0.0.0:15021");
    assert_string_equal(json_string_value(json_object_get(c, "logLevel")), "info");
    json_decref(docs);
    rm_inject_result_dispose(&r);
}

static void test_classic_sidecar(void **state)
{
    fixture_t *f = *state;
    rm_inject_result_t r;

    /* auto on 1.28, and on an unknown version */
    for (unsigned minor = 0; minor <= 28; minor += 28) {
        run(f, DEPLOY_POD, f->enabled, minor, RM_INJECT_PATCHED, &r);
        assert_false(r.native);
        json_t *spec = json_object_get(r.pod, "spec");
        json_t *containers = json_object_get(spec, "containers");
        assert_int_equal(json_array_size(containers), 3);
        json_t *proxy = json_array_get(containers, 0);
        assert_string_equal(json_string_value(json_object_get(proxy, "name")), "ringmesh-proxy");
        assert_null(json_object_get(proxy, "restartPolicy"));
        char *hook = dump(json_object_get(
            json_object_get(json_object_get(json_object_get(proxy, "lifecycle"), "postStart"), "exec"), "command"));
        assert_string_equal(hook, "[\"ringmeshctl\",\"wait-ready\",\"--timeout\",\"120s\"]");
        free(hook);
        assert_int_equal(json_array_size(json_object_get(spec, "initContainers")), 2);
        /* kubectl logs/exec pick the app, not the proxy that now comes first */
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(json_object_get(r.pod, "metadata"), "annotations"),
                                              "kubectl.kubernetes.io/default-container")),
            "app");
        rm_inject_result_dispose(&r);
    }
}

static void test_native_choice(void **state)
{
    fixture_t *f = *state;
    rm_inject_result_t r;
    static const char POD_NATIVE_FALSE[] = "{\"metadata\":{\"annotations\":{\"ringmesh.io/native-sidecar\":\"false\"}},"
                                           "\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"a\"}]}}";
    static const char POD_NATIVE_TRUE[] = "{\"metadata\":{\"annotations\":{\"ringmesh.io/native-sidecar\":\"true\"}},"
                                          "\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"a\"}]}}";

    run(f, POD_NATIVE_FALSE, f->enabled, 33, RM_INJECT_PATCHED, &r);
    assert_false(r.native);
    rm_inject_result_dispose(&r);
    run(f, POD_NATIVE_TRUE, f->enabled, 27, RM_INJECT_PATCHED, &r);
    assert_true(r.native);
    rm_inject_result_dispose(&r);
    f->cfg.native_sidecar = RM_INJECT_NATIVE_ON;
    run(f, JOB_POD, NULL, 0, RM_INJECT_PATCHED, &r);
    assert_true(r.native);
    rm_inject_result_dispose(&r);
    f->cfg.native_sidecar = RM_INJECT_NATIVE_OFF;
    run(f, JOB_POD, NULL, 33, RM_INJECT_PATCHED, &r);
    assert_false(r.native);
    rm_inject_result_dispose(&r);
    run(f, POD_NATIVE_TRUE, f->enabled, 33, RM_INJECT_PATCHED, &r); /* the annotation wins over the config */
    assert_true(r.native);
    rm_inject_result_dispose(&r);
}

/* ---- probes ------------------------------------------------------------------------------------------------------ */

static void test_probe_rewriting(void **state)
{
    fixture_t *f = *state;
    rm_inject_result_t r;
    json_t *probers_doc;
    json_error_t e;

    run(f, DEPLOY_POD, f->enabled, 33, RM_INJECT_PATCHED, &r);
    json_t *spec = json_object_get(r.pod, "spec");
    json_t *app = find_named(json_object_get(spec, "containers"), "app");
    const char *fields[] = {"livenessProbe", "readinessProbe", "startupProbe"};
    const char *paths[] = {"/app-health/app/livez", "/app-health/app/readyz", "/app-health/app/startupz"};
    for (size_t i = 0; i < 3; i++) {
        json_t *probe = json_object_get(app, fields[i]);
        assert_int_equal(json_object_size(json_object_get(probe, "httpGet")), 3);
        assert_string_equal(json_string_value(json_object_get(json_object_get(probe, "httpGet"), "path")), paths[i]);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(probe, "httpGet"), "port")), 15021);
        assert_null(json_object_get(probe, "tcpSocket"));
        assert_null(json_object_get(probe, "grpc"));
    }
    /* the probe's other fields stay */
    assert_int_equal(json_integer_value(json_object_get(json_object_get(app, "livenessProbe"), "periodSeconds")), 7);
    /* exec probes run in the container: untouched */
    json_t *cache = find_named(json_object_get(spec, "containers"), "cache");
    assert_non_null(json_object_get(json_object_get(cache, "livenessProbe"), "exec"));
    /* the originals, named ports resolved, with their timeouts */
    json_t *proxy = find_named(json_object_get(spec, "initContainers"), "ringmesh-proxy");
    const char *probers = env_value(proxy, "RINGMESH_APP_PROBERS");
    assert_non_null(probers);
    probers_doc = json_loads(probers, 0, &e);
    assert_non_null(probers_doc);
    assert_int_equal(json_object_size(probers_doc), 3);
    json_t *live = json_object_get(probers_doc, "/app-health/app/livez");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(live, "httpGet"), "port")), 8080);
    assert_string_equal(json_string_value(json_object_get(json_object_get(live, "httpGet"), "path")), "/live");
    assert_non_null(json_object_get(json_object_get(live, "httpGet"), "httpHeaders"));
    assert_int_equal(json_integer_value(json_object_get(live, "timeoutSeconds")), 3);
    json_t *ready = json_object_get(probers_doc, "/app-health/app/readyz");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(ready, "tcpSocket"), "port")), 8080);
    assert_int_equal(json_integer_value(json_object_get(ready, "timeoutSeconds")), 1);
    json_t *startup = json_object_get(probers_doc, "/app-health/app/startupz");
    assert_string_equal(json_string_value(json_object_get(json_object_get(startup, "grpc"), "service")), "orders");
    json_decref(probers_doc);
    rm_inject_result_dispose(&r);
}

static void test_probe_opt_out_and_unknown_port(void **state)
{
    fixture_t *f = *state;
    rm_inject_result_t r;

    /* the annotation opts out */
    run(f,
        "{\"metadata\":{\"annotations\":{\"ringmesh.io/rewrite-app-probes\":\"false\"}},\"spec\":{\"containers\":[{"
        "\"name\":\"a\",\"image\":\"a\",\"readinessProbe\":{\"httpGet\":{\"path\":\"/r\",\"port\":80}}}]}}",
        f->enabled, 33, RM_INJECT_PATCHED, &r);
    json_t *a = json_array_get(json_object_get(json_object_get(r.pod, "spec"), "containers"), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_object_get(a, "readinessProbe"), "httpGet"), "path")),
        "/r");
    json_t *proxy = find_named(json_object_get(json_object_get(r.pod, "spec"), "initContainers"), "ringmesh-proxy");
    assert_null(env_value(proxy, "RINGMESH_APP_PROBERS"));
    rm_inject_result_dispose(&r);
    /* so does the config */
    f->cfg.rewrite_app_probes = 0;
    run(f, DEPLOY_POD, f->enabled, 33, RM_INJECT_PATCHED, &r);
    assert_contains(json_string_value(json_object_get(
                        json_object_get(json_object_get(r.pod, "metadata"), "annotations"), "ringmesh.io/status")),
                    "\"probesRewritten\":0");
    rm_inject_result_dispose(&r);
    f->cfg.rewrite_app_probes = 1;
    /* a named port no container port has: left as it is, with a warning */
    run(f,
        "{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"a\",\"livenessProbe\":{\"httpGet\":{\"path\":\"/l\","
        "\"port\":\"nope\"}}}]}}",
        f->enabled, 33, RM_INJECT_PATCHED, &r);
    assert_contains(r.warning, "\"nope\"");
    a = json_array_get(json_object_get(json_object_get(r.pod, "spec"), "containers"), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_object_get(a, "livenessProbe"), "httpGet"), "port")),
        "nope");
    rm_inject_result_dispose(&r);
}

/* ---- annotations ----------------------------------------------------------------------------------------------- */

static json_t *pod_with_annotation(const char *name, const char *value)
{
    json_t *pod = parse("{\"metadata\":{\"annotations\":{}},\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":"
                        "\"a\"}]}}");
    json_object_set_new(json_object_get(json_object_get(pod, "metadata"), "annotations"), name, json_string(value));
    return pod;
}

static void test_annotations_valid(void **state)
{
    fixture_t *f = *state;
    rm_inject_result_t r;
    rm_inject_env_t env = {.namespace_labels = f->enabled, .kube_major = 1, .kube_minor = 33};
    json_t *pod = parse("{\"metadata\":{\"annotations\":{\"ringmesh.io/exclude-inbound-ports\":\"9000,9001\","
                        "\"ringmesh.io/exclude-outbound-ports\":\"5432\",\"ringmesh.io/exclude-outbound-ip-ranges\":"
                        "\"10.0.0.0/8,fd00::/8,169.254.169.254\",\"ringmesh.io/include-inbound-ports\":\"8080\","
                        "\"ringmesh.io/proxy-log-level\":\"debug\",\"ringmesh.io/proxy-cpu\":\"200m\","
                        "\"ringmesh.io/proxy-memory\":\"512Mi\"}},\"spec\":{\"containers\":[{\"name\":\"a\","
                        "\"image\":\"a\"}]}}");

    free(f->cfg.exclude_outbound_ports);
    f->cfg.exclude_outbound_ports = strdup("25");
    assert_int_equal(rm_inject_pod(&f->cfg, pod, &env, &r), 0);
    assert_int_equal(r.outcome, RM_INJECT_PATCHED);
    json_t *inits = json_object_get(json_object_get(r.pod, "spec"), "initContainers");
    char *args = dump(json_object_get(json_array_get(inits, 0), "args"));
    /* the config's exclusions, then the annotation's */
    assert_contains(args, "\"--exclude-outbound-ports\",\"25,5432\"");
    assert_contains(args, "\"--exclude-outbound-cidrs\",\"10.0.0.0/8,fd00::/8,169.254.169.254\"");
    assert_contains(args, "\"--exclude-inbound-ports\",\"9000,9001\"");
    assert_contains(args, "\"--include-inbound-ports\",\"8080\"");
    assert_contains(args, "\"--proxy-uid\",\"1337\"");
    free(args);
    json_t *proxy = json_array_get(inits, 1);
    assert_contains(env_value(proxy, "RINGMESH_PROXY_CONFIG"), "logLevel: debug");
    json_t *res = json_object_get(proxy, "resources");
    assert_string_equal(json_string_value(json_object_get(json_object_get(res, "requests"), "cpu")), "200m");
    assert_string_equal(json_string_value(json_object_get(json_object_get(res, "requests"), "memory")), "512Mi");
    /* a request above the configured limit (256Mi) raises the limit with it */
    assert_string_equal(json_string_value(json_object_get(json_object_get(res, "limits"), "memory")), "512Mi");
    assert_string_equal(r.warning, "");
    rm_inject_result_dispose(&r);
    json_decref(pod);

    /* an unknown ringmesh.io annotation is a warning (a misspelling?), not a refusal */
    pod = pod_with_annotation("ringmesh.io/proxy-cpus", "1");
    assert_int_equal(rm_inject_pod(&f->cfg, pod, &env, &r), 0);
    assert_int_equal(r.outcome, RM_INJECT_PATCHED);
    assert_contains(r.warning, "ringmesh.io/proxy-cpus");
    rm_inject_result_dispose(&r);
    json_decref(pod);
}

static void test_annotations_invalid(void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *name, *value, *words;
    } bad[] = {
        {"ringmesh.io/inject", "yes", "\"true\" or \"false\""},
        {"ringmesh.io/inject", "True", "\"true\" or \"false\""},
        {"ringmesh.io/exclude-inbound-ports", "80,abc", "list of ports"},
        {"ringmesh.io/exclude-inbound-ports", "0", "list of ports"},
        {"ringmesh.io/exclude-outbound-ports", "70000", "list of ports"},
        {"ringmesh.io/exclude-outbound-ports", "80,,81", "list of ports"},
        {"ringmesh.io/exclude-outbound-ports", "80, 81", "list of ports"},
        {"ringmesh.io/exclude-outbound-ip-ranges", "10.0.0.0/33", "CIDRs"},
        {"ringmesh.io/exclude-outbound-ip-ranges", "example.com", "CIDRs"},
        {"ringmesh.io/include-inbound-ports", "**", "\"*\" or"},
        {"ringmesh.io/proxy-log-level", "verbose", "log level"},
        {"ringmesh.io/proxy-cpu", "lots", "quantity"},
        {"ringmesh.io/proxy-cpu", "-1", "quantity"},
        {"ringmesh.io/proxy-memory", "1Qi", "quantity"},
        {"ringmesh.io/proxy-memory", "0", "quantity"},
        {"ringmesh.io/native-sidecar", "1", "\"true\" or \"false\""},
        {"ringmesh.io/rewrite-app-probes", "no", "\"true\" or \"false\""},
    };
    rm_inject_env_t env = {.namespace_labels = f->enabled, .kube_major = 1, .kube_minor = 33};
    rm_inject_result_t r;
    char want[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *pod = pod_with_annotation(bad[i].name, bad[i].value);
        f->cfg.fail_open_on_invalid_annotation = 0;
        assert_int_equal(rm_inject_pod(&f->cfg, pod, &env, &r), 0);
        if (r.outcome != RM_INJECT_REFUSED)
            fail_msg("%s: \"%s\" was not refused (outcome %d)", bad[i].name, bad[i].value, r.outcome);
        snprintf(want, sizeof(want), "annotation %s: \"%s\" is not", bad[i].name, bad[i].value);
        assert_contains(r.reason, want);
        assert_contains(r.reason, bad[i].words);
        assert_int_equal(json_array_size(r.patch), 0);
        rm_inject_result_dispose(&r);
        /* fail open: admitted as it is, the same sentence as a warning */
        f->cfg.fail_open_on_invalid_annotation = 1;
        assert_int_equal(rm_inject_pod(&f->cfg, pod, &env, &r), 0);
        assert_int_equal(r.outcome, RM_INJECT_SKIPPED);
        assert_contains(r.warning, want);
        assert_true(json_equal(r.pod, pod));
        rm_inject_result_dispose(&r);
        json_decref(pod);
    }
    f->cfg.fail_open_on_invalid_annotation = 0;
    /* a value that is not a string */
    json_t *pod = parse("{\"metadata\":{\"annotations\":{\"ringmesh.io/proxy-cpu\":5}},\"spec\":{\"containers\":[{"
                        "\"name\":\"a\",\"image\":\"a\"}]}}");
    assert_int_equal(rm_inject_pod(&f->cfg, pod, &env, &r), 0);
    assert_int_equal(r.outcome, RM_INJECT_REFUSED);
    assert_contains(r.reason, "ringmesh.io/proxy-cpu: the value is not a string");
    rm_inject_result_dispose(&r);
    json_decref(pod);
}

/* The prometheus.io annotations point Prometheus at the proxy's /metrics; values the pod has are kept as they are. */
static void test_scrape_annotations(void **state)
{
    fixture_t *f = *state;
    rm_inject_result_t r;
    static const char OWN[] =
        "{\"metadata\":{\"annotations\":{\"prometheus.io/scrape\":\"false\",\"prometheus.io/port\":\"9102\"}},"
        "\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"a\"}]}}";

    run(f, DEPLOY_POD, f->enabled, 30, RM_INJECT_PATCHED, &r);
    json_t *orig = parse(DEPLOY_POD), *applied = apply_patch(orig, r.patch);
    const json_t *ann = json_object_get(json_object_get(applied, "metadata"), "annotations");
    assert_string_equal(json_string_value(json_object_get(ann, "prometheus.io/scrape")), "true");
    assert_string_equal(json_string_value(json_object_get(ann, "prometheus.io/port")), "15021");
    assert_string_equal(json_string_value(json_object_get(ann, "prometheus.io/path")), "/metrics");
    json_decref(applied);
    json_decref(orig);
    rm_inject_result_dispose(&r);

    run(f, OWN, f->enabled, 30, RM_INJECT_PATCHED, &r);
    ann = json_object_get(json_object_get(r.pod, "metadata"), "annotations");
    assert_string_equal(json_string_value(json_object_get(ann, "prometheus.io/scrape")), "false");
    assert_string_equal(json_string_value(json_object_get(ann, "prometheus.io/port")), "9102");
    assert_string_equal(json_string_value(json_object_get(ann, "prometheus.io/path")), "/metrics");
    rm_inject_result_dispose(&r);
}

static void test_volume_name_clash(void **state)
{
    fixture_t *f = *state;
    rm_inject_result_t r;
    run(f,
        "{\"spec\":{\"volumes\":[{\"name\":\"ringmesh-state\",\"emptyDir\":{}}],\"containers\":[{\"name\":\"a\","
        "\"image\":\"a\"}]}}",
        f->enabled, 33, RM_INJECT_REFUSED, &r);
    assert_contains(r.reason, "ringmesh-state");
    rm_inject_result_dispose(&r);
}

static void test_quantities_and_versions(void **state)
{
    (void)state;
    double v;
    unsigned ma, mi;
    assert_int_equal(rm__inject_parse_quantity("100m", &v), 0);
    assert_true(v > 0.0999 && v < 0.1001);
    assert_int_equal(rm__inject_parse_quantity("64Mi", &v), 0);
    assert_true(v == 64.0 * 1048576);
    assert_int_equal(rm__inject_parse_quantity("1e3", &v), 0);
    assert_true(v == 1000.0);
    assert_int_equal(rm__inject_parse_quantity(".5", &v), 0);
    assert_int_equal(rm__inject_parse_quantity("1.5G", &v), 0);
    assert_int_equal(rm__inject_parse_quantity("", &v), -1);
    assert_int_equal(rm__inject_parse_quantity("Mi", &v), -1);
    assert_int_equal(rm__inject_parse_quantity("1 Mi", &v), -1);
    assert_int_equal(rm__inject_parse_quantity("1MiB", &v), -1);
    assert_int_equal(rm__inject_parse_quantity("1e", &v), -1);
    assert_int_equal(rm_inject_parse_kube_version("1.29", &ma, &mi), 0);
    assert_int_equal(mi, 29);
    assert_int_equal(rm_inject_parse_kube_version("v1.33.2-gke.100", &ma, &mi), 0);
    assert_int_equal(mi, 33);
    assert_int_equal(rm_inject_parse_kube_version("1.28+", &ma, &mi), 0);
    assert_int_equal(mi, 28);
    assert_int_equal(rm_inject_parse_kube_version("1", &ma, &mi), -EINVAL);
    assert_int_equal(rm_inject_parse_kube_version("one.two", &ma, &mi), -EINVAL);
    assert_int_equal(rm_inject_parse_kube_version("1.29x", &ma, &mi), -EINVAL);
}

/* ---- InjectorConfig ------------------------------------------------------------------------------------------ */

static int load_config(const char *text, rm_inject_config_t *c, char *msg, size_t len)
{
    rm_config_error_t err;
    int ret;
    assert_int_equal(rm_inject_config_defaults(c), 0);
    if ((ret = rm_inject_config_parse("injector.yaml", text, strlen(text), c, &err)) != 0)
        rm_config_error_format(&err, msg, len);
    return ret;
}

static void test_config_valid(void **state)
{
    (void)state;
    rm_inject_config_t c;
    char msg[512] = "";
    static const char text[] = "apiVersion: ringmesh.io/v1alpha1\n"
                               "kind: InjectorConfig\n"
                               "metadata: {name: default}\n"
                               "spec:\n"
                               "  meshNamespace: mesh\n"
                               "  controlPlaneAddress: ringmesh-control.mesh.svc:15012\n"
                               "  trustDomain: example.org\n"
                               "  image: registry.example/ringmesh:1.2.3\n"
                               "  imagePullPolicy: Always\n"
                               "  proxy:\n"
                               "    logLevel: warn\n"
                               "    uid: 2000\n"
                               "    resources:\n"
                               "      requests: {cpu: 100m, memory: 64Mi}\n"
                               "      limits: {cpu: \"1\", memory: 1Gi}\n"
                               "  init:\n"
                               "    resources: {requests: {cpu: 5m}}\n"
                               "  nativeSidecar: \"false\"\n"
                               "  rewriteAppProbes: false\n"
                               "  tokenExpirationSeconds: 1800\n"
                               "  excludeOutboundIPRanges: [169.254.169.254/32, \"fd00::/8\"]\n"
                               "  excludeOutboundPorts: [\"5432\"]\n"
                               "  excludeInboundPorts: [9090]\n"
                               "  failOpenOnInvalidAnnotation: true\n";
    if (load_config(text, &c, msg, sizeof(msg)) != 0)
        fail_msg("%s", msg);
    assert_string_equal(c.mesh_namespace, "mesh");
    assert_string_equal(c.control_address, "ringmesh-control.mesh.svc:15012");
    assert_string_equal(c.trust_domain, "example.org");
    assert_string_equal(c.image, "registry.example/ringmesh:1.2.3");
    assert_string_equal(c.image_pull_policy, "Always");
    assert_string_equal(c.proxy_log_level, "warn");
    assert_int_equal(c.proxy_uid, 2000);
    assert_int_equal(c.native_sidecar, RM_INJECT_NATIVE_OFF);
    assert_false(c.rewrite_app_probes);
    assert_int_equal(c.token_expiration_seconds, 1800);
    assert_string_equal(c.exclude_outbound_ip_ranges, "169.254.169.254/32,fd00::/8");
    assert_string_equal(c.exclude_outbound_ports, "5432");
    assert_string_equal(c.exclude_inbound_ports, "9090");
    assert_true(c.fail_open_on_invalid_annotation);
    char *res = dump(c.proxy_resources);
    assert_string_equal(res, "{\"limits\":{\"cpu\":\"1\",\"memory\":\"1Gi\"},\"requests\":{\"cpu\":\"100m\","
                             "\"memory\":\"64Mi\"}}");
    free(res);
    res = dump(c.init_resources);
    assert_string_equal(res, "{\"requests\":{\"cpu\":\"5m\"}}");
    free(res);
    rm_inject_config_dispose(&c);
}

static void test_config_errors(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *want;
    } cases[] = {
        {"  imagePullPolicy: Sometimes\n", "injector.yaml:5:20: spec.imagePullPolicy: \"Sometimes\" is not"},
        {"  excludeOutboundPorts: [80, http]\n",
         "injector.yaml:5:30: spec.excludeOutboundPorts[1]: \"http\" is not a port"},
        {"  excludeOutboundIPRanges: [10.0.0.0/40]\n", "spec.excludeOutboundIPRanges[0]: \"10.0.0.0/40\" is not"},
        {"  nativeSidecar: maybe\n", "injector.yaml:5:18: spec.nativeSidecar: \"maybe\" is not a sidecar mode"},
        {"  proxy:\n    resources:\n      requests: {memory: 64Q}\n",
         "spec.proxy.resources.requests.memory: \"64Q\" is not a Kubernetes quantity"},
        {"  proxy:\n    resources:\n      requests: {memory: 1Gi}\n      limits: {memory: 64Mi}\n",
         "spec.proxy.resources: the memory request 1Gi is above its limit 64Mi"},
        {"  proxy: {logLevel: loud}\n", "spec.proxy.logLevel: \"loud\" is not a log level"},
        {"  tokenExpirationSeconds: 60\n", "spec.tokenExpirationSeconds"},
        {"  controlPlaneAddress: ringmesh-control\n",
         "spec.controlPlaneAddress: \"ringmesh-control\" is not HOST:PORT"},
        {"  trustDomain: Bad_Domain!\n", "spec.trustDomain"},
        {"  imagePullPolcy: Always\n", "injector.yaml:5:3: spec.imagePullPolcy: unknown key"},
    };
    char text[1024], msg[512];
    rm_inject_config_t c;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text),
                 "apiVersion: ringmesh.io/v1alpha1\nkind: InjectorConfig\nmetadata: {name: default}\nspec:\n%s",
                 cases[i].spec);
        msg[0] = '\0';
        if (load_config(text, &c, msg, sizeof(msg)) == 0)
            fail_msg("case %zu was accepted:\n%s", i, text);
        assert_contains(msg, cases[i].want);
        rm_inject_config_dispose(&c);
    }
    assert_int_not_equal(load_config("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", &c, msg, sizeof(msg)),
                         0);
    assert_contains(msg, "apiVersion: \"v1\" is not ringmesh.io/v1alpha1");
    rm_inject_config_dispose(&c);
    assert_int_not_equal(load_config("apiVersion: ringmesh.io/v1alpha1\nkind: InjectorConfig\nmetadata: {name: a}\n"
                                     "---\napiVersion: ringmesh.io/v1alpha1\n",
                                     &c, msg, sizeof(msg)),
                         0);
    assert_contains(msg, "a second document");
    rm_inject_config_dispose(&c);
    assert_int_not_equal(load_config("- a\n", &c, msg, sizeof(msg)), 0);
    assert_contains(msg, "must be a mapping");
    rm_inject_config_dispose(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_decision, setup, teardown),
        cmocka_unit_test_setup_teardown(test_twice_is_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_patch_applies, setup, teardown),
        cmocka_unit_test(test_diff_escapes_and_ops),
        cmocka_unit_test_setup_teardown(test_native_sidecar_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_proxy_config_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_classic_sidecar, setup, teardown),
        cmocka_unit_test_setup_teardown(test_native_choice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_rewriting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_opt_out_and_unknown_port, setup, teardown),
        cmocka_unit_test_setup_teardown(test_annotations_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_annotations_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scrape_annotations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_volume_name_clash, setup, teardown),
        cmocka_unit_test(test_quantities_and_versions),
        cmocka_unit_test(test_config_valid),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
