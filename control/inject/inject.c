/* The injection itself: decide, build the patched pod from a copy of the original, and diff the two into a
 * JSONPatch. Building the pod and diffing (rather than writing patch operations by hand) keeps the patch and the
 * pod that `ringmeshctl inject` prints the same thing by construction. */
#include "inject.h"
#include "inject_internal.h"

#include "ringmesh/yaml_json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_DIR      "/var/run/secrets/ringmesh/token"
#define STATE_DIR      "/var/lib/ringmesh"
#define PODINFO_DIR    "/etc/ringmesh/podinfo"
#define ROOT_CERT_DIR  "/etc/ringmesh/root-cert"
#define ROOT_CERT_CM   "ringmesh-root-cert"
#define CONFIG_ENV     "RINGMESH_PROXY_CONFIG"
#define PROBERS_ENV    "RINGMESH_APP_PROBERS"
#define STATUS_VERSION 1

static const char *const volume_names[] = {"ringmesh-token", "ringmesh-state", "ringmesh-podinfo",
                                           "ringmesh-root-cert"};

/* ---------------------------------------------------------------------------------------------------------
 * JSONPatch by diff.
 * ------------------------------------------------------------------------------------------------------- */

/* Appends `seg` to the JSON pointer `base` (RFC 6901: ~ -> ~0, / -> ~1). NULL when out of memory. */
static char *pointer_join(const char *base, const char *seg)
{
    size_t n = strlen(base) + 2;
    for (const char *p = seg; *p; p++)
        n += (*p == '~' || *p == '/') ? 2 : 1;
    char *out = malloc(n), *o = out;
    if (out == NULL)
        return NULL;
    o += sprintf(o, "%s/", base);
    for (const char *p = seg; *p; p++) {
        if (*p == '~' || *p == '/') {
            *o++ = '~';
            *o++ = *p == '~' ? '0' : '1';
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

static int add_op(json_t *patch, const char *op, const char *path, const json_t *value)
{
    json_t *o = value != NULL ? json_pack("{s:s,s:s,s:O}", "op", op, "path", path, "value", value)
                              : json_pack("{s:s,s:s}", "op", op, "path", path);
    return o != NULL && json_array_append_new(patch, o) == 0 ? 0 : -ENOMEM;
}

/* Recursive over the object's nesting, which the review's size (at most 4 MiB) and jansson's parser bound. */
// NOLINTNEXTLINE(misc-no-recursion): bounded by the parsed object's depth
static int diff_at(const char *path, const json_t *from, const json_t *to, json_t *patch)
{
    int ret = 0;

    if (json_equal((json_t *)from, (json_t *)to))
        return 0;
    if (json_is_object(from) && json_is_object(to)) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)from, key, v)
        {
            char *p = pointer_join(path, key);
            if (p == NULL)
                return -ENOMEM;
            const json_t *w = json_object_get(to, key);
            ret = w == NULL ? add_op(patch, "remove", p, NULL) : diff_at(p, v, w, patch);
            free(p);
            if (ret != 0)
                return ret;
        }
        json_object_foreach((json_t *)to, key, v)
        {
            if (json_object_get(from, key) != NULL)
                continue;
            char *p = pointer_join(path, key);
            if (p == NULL)
                return -ENOMEM;
            ret = add_op(patch, "add", p, v);
            free(p);
            if (ret != 0)
                return ret;
        }
        return 0;
    }
    if (json_is_array(from) && json_is_array(to) && json_array_size(from) == json_array_size(to)) {
        for (size_t i = 0; i < json_array_size(from); i++) {
            char idx[24];
            snprintf(idx, sizeof(idx), "%zu", i);
            char *p = pointer_join(path, idx);
            if (p == NULL)
                return -ENOMEM;
            ret = diff_at(p, json_array_get(from, i), json_array_get(to, i), patch);
            free(p);
            if (ret != 0)
                return ret;
        }
        return 0;
    }
    return add_op(patch, "replace", path, to);
}

int rm_inject_diff(const json_t *from, const json_t *to, json_t *patch)
{
    return diff_at("", from, to, patch);
}

int rm_inject_parse_kube_version(const char *s, unsigned *major, unsigned *minor)
{
    char *end;
    unsigned long ma, mi;

    if (s == NULL)
        return -EINVAL;
    if (*s == 'v')
        s++;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    ma = strtoul(s, &end, 10);
    if (*end != '.' || end[1] < '0' || end[1] > '9')
        return -EINVAL;
    mi = strtoul(end + 1, &end, 10);
    if (*end != '\0' && *end != '.' && *end != '+' && *end != '-')
        return -EINVAL;
    if (ma > 1000 || mi > 1000)
        return -EINVAL;
    *major = (unsigned)ma;
    *minor = (unsigned)mi;
    return 0;
}

/* ---------------------------------------------------------------------------------------------------------
 * What is added.
 * ------------------------------------------------------------------------------------------------------- */

/* "a,b" + "c" -> "a,b,c", skipping empty parts. */
static void join_lists(char *out, size_t len, const char *a, const char *b)
{
    snprintf(out, len, "%s%s%s", a != NULL ? a : "", a != NULL && *a && b != NULL && *b ? "," : "", b != NULL ? b : "");
}

/* The proxy's YAML configuration (docs/proxy-config.md), written with the YAML emitter. */
static char *proxy_config_yaml(const rm_inject_config_t *cfg, const char *log_level)
{
    char host[256], identity[512];
    const char *colon = strrchr(cfg->control_address, ':');
    size_t hl = colon != NULL ? (size_t)(colon - cfg->control_address) : strlen(cfg->control_address);
    char *out = NULL;
    size_t outlen;

    if (cfg->control_address[0] == '[')
        snprintf(host, sizeof(host), "%.*s", (int)(hl > 2 ? hl - 2 : 0), cfg->control_address + 1);
    else
        snprintf(host, sizeof(host), "%.*s", (int)hl, cfg->control_address);
    snprintf(identity, sizeof(identity), "spiffe://%s/ns/%s/sa/ringmesh-control", cfg->trust_domain,
             cfg->mesh_namespace);
    json_t *doc = json_pack("{s:s,s:{s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s}},s:{s:s},s:{s:s},s:{s:s},s:s}", "trustDomain",
                            cfg->trust_domain, "control", "address", cfg->control_address, "serverName", host,
                            "identity", identity, "bootstrapBundleFile", ROOT_CERT_DIR "/root-cert.pem", "tokenFile",
                            TOKEN_DIR "/token", "stateDir", STATE_DIR, "node", "labelsFile", PODINFO_DIR "/labels",
                            "outbound", "listen", "[::]:15001", "inbound", "listen", "[::]:15006", "admin", "listen",
                            "0.0.0.0:15021", "logLevel", log_level);
    json_t *docs = doc != NULL ? json_pack("[o]", doc) : NULL;
    if (docs == NULL || rm_json_to_yaml(docs, &out, &outlen) != 0)
        out = NULL;
    json_decref(docs);
    /* one document: drop the "---" header the stream writer puts first */
    if (out != NULL && strncmp(out, "---\n", 4) == 0)
        memmove(out, out + 4, strlen(out + 4) + 1);
    return out;
}

static json_t *security_context_proxy(unsigned uid)
{
    return json_pack("{s:b,s:{s:[s]},s:b,s:b,s:b,s:I,s:I,s:{s:s}}", "allowPrivilegeEscalation", 0, "capabilities",
                     "drop", "ALL", "privileged", 0, "readOnlyRootFilesystem", 1, "runAsNonRoot", 1, "runAsUser",
                     (json_int_t)uid, "runAsGroup", (json_int_t)uid, "seccompProfile", "type", "RuntimeDefault");
}

/* ringmesh-init writes iptables rules: it needs NET_ADMIN and NET_RAW, and root in the pod's user namespace. */
static json_t *security_context_init(void)
{
    return json_pack("{s:b,s:{s:[s,s],s:[s]},s:b,s:b,s:b,s:i,s:i,s:{s:s}}", "allowPrivilegeEscalation", 0,
                     "capabilities", "add", "NET_ADMIN", "NET_RAW", "drop", "ALL", "privileged", 0,
                     "readOnlyRootFilesystem", 1, "runAsNonRoot", 0, "runAsUser", 0, "runAsGroup", 0, "seccompProfile",
                     "type", "RuntimeDefault");
}

static int append_args(json_t *args, const char *flag, const char *value)
{
    if (value == NULL || value[0] == '\0')
        return 0;
    return json_array_append_new(args, json_string(flag)) == 0 && json_array_append_new(args, json_string(value)) == 0
               ? 0
               : -ENOMEM;
}

static json_t *init_container(const rm_inject_config_t *cfg, const rm_inject_annotations_t *a)
{
    char uid[16], list[2048];
    json_t *args = json_array(), *c = NULL;
    int ret = 0;

    if (args == NULL)
        return NULL;
    snprintf(uid, sizeof(uid), "%u", cfg->proxy_uid);
    ret |= append_args(args, "--proxy-uid", uid);
    ret |= append_args(args, "--proxy-gid", uid);
    join_lists(list, sizeof(list), cfg->exclude_outbound_ports, a->exclude_outbound_ports);
    ret |= append_args(args, "--exclude-outbound-ports", list);
    join_lists(list, sizeof(list), cfg->exclude_outbound_ip_ranges, a->exclude_outbound_ip_ranges);
    ret |= append_args(args, "--exclude-outbound-cidrs", list);
    join_lists(list, sizeof(list), cfg->exclude_inbound_ports, a->exclude_inbound_ports);
    ret |= append_args(args, "--exclude-inbound-ports", list);
    ret |= append_args(args, "--include-inbound-ports", a->include_inbound_ports);
    if (ret != 0) {
        json_decref(args);
        return NULL;
    }
    c = json_pack("{s:s,s:s,s:s,s:[s],s:o,s:O,s:o,s:s}", "name", RM_INJECT_INIT_NAME, "image", cfg->image,
                  "imagePullPolicy", cfg->image_pull_policy, "command", "ringmesh-init", "args", args, "resources",
                  cfg->init_resources, "securityContext", security_context_init(), "terminationMessagePolicy",
                  "FallbackToLogsOnError");
    return c;
}

static json_t *proxy_resources(const rm_inject_config_t *cfg, const rm_inject_annotations_t *a)
{
    json_t *res = json_deep_copy(cfg->proxy_resources);
    const char *names[] = {"cpu", "memory"}, *vals[] = {a->proxy_cpu, a->proxy_memory};
    double rv, lv;

    if (res == NULL)
        return NULL;
    for (size_t i = 0; i < 2; i++) {
        if (vals[i] == NULL)
            continue;
        json_t *req = json_object_get(res, "requests");
        if (req == NULL && (json_object_set_new(res, "requests", json_object()) != 0 ||
                            (req = json_object_get(res, "requests")) == NULL))
            goto Fail;
        if (json_object_set_new(req, names[i], json_string(vals[i])) != 0)
            goto Fail;
        /* a request above the configured limit would make the pod invalid: the limit rises with it */
        json_t *lim = json_object_get(json_object_get(res, "limits"), names[i]);
        if (json_is_string(lim) && rm__inject_parse_quantity(json_string_value(lim), &lv) == 0 &&
            rm__inject_parse_quantity(vals[i], &rv) == 0 && rv > lv &&
            json_object_set_new(json_object_get(res, "limits"), names[i], json_string(vals[i])) != 0)
            goto Fail;
    }
    return res;
Fail:
    json_decref(res);
    return NULL;
}

static json_t *env_field(const char *name, const char *path)
{
    return json_pack("{s:s,s:{s:{s:s,s:s}}}", "name", name, "valueFrom", "fieldRef", "apiVersion", "v1", "fieldPath",
                     path);
}

static json_t *proxy_container(const rm_inject_config_t *cfg, const rm_inject_annotations_t *a, int native,
                               const json_t *probers)
{
    const char *level = a->proxy_log_level != NULL ? a->proxy_log_level : cfg->proxy_log_level;
    char *yaml = proxy_config_yaml(cfg, level);
    json_t *c = NULL, *env = NULL, *ready = NULL;

    if (yaml == NULL)
        return NULL;
    env = json_pack(
        "[o,o,o,o,{s:s,s:s}]", env_field("RINGMESH_POD_NAME", "metadata.name"),
        env_field("RINGMESH_POD_NAMESPACE", "metadata.namespace"), env_field("RINGMESH_POD_IP", "status.podIP"),
        env_field("RINGMESH_SERVICE_ACCOUNT", "spec.serviceAccountName"), "name", CONFIG_ENV, "value", yaml);
    free(yaml);
    if (env == NULL)
        goto Fail;
    if (json_object_size(probers) != 0) {
        char *s = json_dumps(probers, JSON_COMPACT | JSON_SORT_KEYS);
        if (s == NULL || json_array_append_new(env, json_pack("{s:s,s:s}", "name", PROBERS_ENV, "value", s)) != 0) {
            free(s);
            goto Fail;
        }
        free(s);
    }
    ready =
        json_pack("{s:{s:s,s:i,s:s},s:i,s:i,s:i}", "httpGet", "path", "/healthz/ready", "port", RM_INJECT_ADMIN_PORT,
                  "scheme", "HTTP", "periodSeconds", 2, "timeoutSeconds", 3, "failureThreshold", 30);
    c = json_pack(
        "{s:s,s:s,s:s,s:[s],s:[s,s],s:o,s:[{s:s,s:i,s:s}],s:o,s:o,s:o,s:[{s:s,s:s,s:b},{s:s,s:s},{s:s,s:s,s:b},"
        "{s:s,s:s,s:b}],s:s}",
        "name", RM_INJECT_PROXY_NAME, "image", cfg->image, "imagePullPolicy", cfg->image_pull_policy, "command",
        "ringmesh-proxy", "args", "--config-env", CONFIG_ENV, "env", env, "ports", "name", "ringmesh-admin",
        "containerPort", RM_INJECT_ADMIN_PORT, "protocol", "TCP", "resources", proxy_resources(cfg, a),
        "securityContext", security_context_proxy(cfg->proxy_uid), "readinessProbe", ready, "volumeMounts", "name",
        "ringmesh-token", "mountPath", TOKEN_DIR, "readOnly", 1, "name", "ringmesh-state", "mountPath", STATE_DIR,
        "name", "ringmesh-podinfo", "mountPath", PODINFO_DIR, "readOnly", 1, "name", "ringmesh-root-cert", "mountPath",
        ROOT_CERT_DIR, "readOnly", 1, "terminationMessagePolicy", "FallbackToLogsOnError");
    env = ready = NULL;
    if (c == NULL)
        return NULL;
    if (native) {
        /* a native sidecar: started in order before the app's init containers, kept running, and the next container
         * starts only once its startup probe passes */
        if (json_object_set_new(c, "restartPolicy", json_string("Always")) != 0 ||
            json_object_set_new(c, "startupProbe",
                                json_pack("{s:{s:s,s:i,s:s},s:i,s:i,s:i}", "httpGet", "path", "/healthz/ready", "port",
                                          RM_INJECT_ADMIN_PORT, "scheme", "HTTP", "periodSeconds", 1, "timeoutSeconds",
                                          3, "failureThreshold", 600)) != 0)
            goto Fail;
    } else {
        /* the kubelet starts the next container only when this hook returns: the app starts behind a ready proxy */
        if (json_object_set_new(c, "lifecycle",
                                json_pack("{s:{s:{s:[s,s,s,s]}}}", "postStart", "exec", "command", "ringmeshctl",
                                          "wait-ready", "--timeout", "120s")) != 0)
            goto Fail;
    }
    return c;
Fail:
    json_decref(env);
    json_decref(ready);
    json_decref(c);
    return NULL;
}

static json_t *volumes(const rm_inject_config_t *cfg)
{
    return json_pack("[{s:s,s:{s:[{s:{s:s,s:I,s:s}}]}},{s:s,s:{s:s}},{s:s,s:{s:[{s:s,s:{s:s,s:s}}]}},"
                     "{s:s,s:{s:s}}]",
                     "name", volume_names[0], "projected", "sources", "serviceAccountToken", "audience", "ringmesh",
                     "expirationSeconds", (json_int_t)cfg->token_expiration_seconds, "path", "token", "name",
                     volume_names[1], "emptyDir", "medium", "Memory", "name", volume_names[2], "downwardAPI", "items",
                     "path", "labels", "fieldRef", "apiVersion", "v1", "fieldPath", "metadata.labels", "name",
                     volume_names[3], "configMap", "name", ROOT_CERT_CM);
}

/* Sets obj[key] to an empty container of the right kind when it is absent; returns it, or NULL (not an object /
 * array where one is needed, or out of memory). */
static json_t *ensure(json_t *obj, const char *key, int array)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v)) {
        if (json_object_set_new(obj, key, array ? json_array() : json_object()) != 0)
            return NULL;
        v = json_object_get(obj, key);
    }
    return (array ? json_is_array(v) : json_is_object(v)) ? v : NULL;
}

static int has_container(const json_t *spec, const char *list, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(spec, list), i, c)
    {
        const json_t *n = json_object_get(c, "name");
        if (json_is_string(n) && strcmp(json_string_value(n), name) == 0)
            return 1;
    }
    return 0;
}

static void set_msg(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_msg(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* The prometheus.io annotations by which Prometheus' annotation-based discovery (and the scrape configuration of
 * docs/observability.md) finds the proxy's /metrics. Each one is added only when the pod does not have it: a value
 * the pod's owner wrote is never replaced. Returns 0 or -ENOMEM. */
static int add_scrape_annotations(json_t *ann)
{
    char port[16];
    const char *const kv[][2] = {
        {"prometheus.io/scrape", "true"}, {"prometheus.io/port", port}, {"prometheus.io/path", "/metrics"}};

    snprintf(port, sizeof(port), "%d", RM_INJECT_ADMIN_PORT);
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        if (json_object_get(ann, kv[i][0]) == NULL && json_object_set_new(ann, kv[i][0], json_string(kv[i][1])) != 0)
            return -ENOMEM;
    return 0;
}

/* Adds everything to `pod` (a copy). Returns 0, -EINVAL with reason (the pod's shape), or -ENOMEM. */
static int build(const rm_inject_config_t *cfg, json_t *pod, const rm_inject_annotations_t *a, int native,
                 rm_inject_result_t *res)
{
    json_t *meta = ensure(pod, "metadata", 0), *spec = json_object_get(pod, "spec");
    json_t *probers = json_object(), *inits, *containers, *vols, *ann, *added = NULL, *status = NULL;
    int rewrite = a->rewrite_app_probes >= 0 ? a->rewrite_app_probes : cfg->rewrite_app_probes, nprobes = 0, ret;
    char *status_s = NULL;

    if (probers == NULL)
        return -ENOMEM;
    if (meta == NULL || (ann = ensure(meta, "annotations", 0)) == NULL ||
        (inits = ensure(spec, "initContainers", 1)) == NULL ||
        (containers = json_object_get(spec, "containers")) == NULL || !json_is_array(containers) ||
        (vols = ensure(spec, "volumes", 1)) == NULL) {
        set_msg(res->reason, sizeof(res->reason),
                "the pod's metadata, metadata.annotations, spec.initContainers, spec.containers or spec.volumes is "
                "not of the Pod schema's type");
        ret = -EINVAL;
        goto Exit;
    }
    for (size_t v = 0; v < 4; v++) {
        size_t i;
        json_t *vol;
        json_array_foreach(vols, i, vol)
        {
            const json_t *n = json_object_get(vol, "name");
            if (json_is_string(n) && strcmp(json_string_value(n), volume_names[v]) == 0) {
                set_msg(res->reason, sizeof(res->reason),
                        "the pod already has a volume named %s, which the proxy needs", volume_names[v]);
                ret = -EINVAL;
                goto Exit;
            }
        }
    }
    if (rewrite && (nprobes = rm__inject_rewrite_probes(spec, probers, res->warning, sizeof(res->warning))) < 0) {
        ret = nprobes;
        goto Exit;
    }
    json_t *init = init_container(cfg, a), *proxy = proxy_container(cfg, a, native, probers);
    if (init == NULL || proxy == NULL || json_array_insert_new(inits, 0, init) != 0) {
        json_decref(proxy);
        ret = -ENOMEM;
        goto Exit;
    }
    if (json_array_insert_new(native ? inits : containers, native ? 1 : 0, proxy) != 0) {
        ret = -ENOMEM;
        goto Exit;
    }
    if ((added = volumes(cfg)) == NULL || json_array_extend(vols, added) != 0) {
        ret = -ENOMEM;
        goto Exit;
    }
    /* with the proxy first among containers, kubectl logs and exec would pick it: point them at the app */
    if (!native && json_object_get(ann, "kubectl.kubernetes.io/default-container") == NULL &&
        json_array_size(containers) > 1) {
        const json_t *app = json_object_get(json_array_get(containers, 1), "name");
        if (json_is_string(app) &&
            json_object_set(ann, "kubectl.kubernetes.io/default-container", (json_t *)app) != 0) {
            ret = -ENOMEM;
            goto Exit;
        }
    }
    if ((ret = add_scrape_annotations(ann)) != 0)
        goto Exit;
    if (native)
        status = json_pack("{s:i,s:[s,s],s:[],s:[s,s,s,s],s:s,s:i,s:s}", "version", STATUS_VERSION, "initContainers",
                           RM_INJECT_INIT_NAME, RM_INJECT_PROXY_NAME, "containers", "volumes", volume_names[0],
                           volume_names[1], volume_names[2], volume_names[3], "sidecar", "native", "probesRewritten",
                           nprobes, "image", cfg->image);
    else
        status = json_pack("{s:i,s:[s],s:[s],s:[s,s,s,s],s:s,s:i,s:s}", "version", STATUS_VERSION, "initContainers",
                           RM_INJECT_INIT_NAME, "containers", RM_INJECT_PROXY_NAME, "volumes", volume_names[0],
                           volume_names[1], volume_names[2], volume_names[3], "sidecar", "classic", "probesRewritten",
                           nprobes, "image", cfg->image);
    if (status == NULL || (status_s = json_dumps(status, JSON_COMPACT)) == NULL ||
        json_object_set_new(ann, RM_INJECT_STATUS_ANNOTATION, json_string(status_s)) != 0) {
        ret = -ENOMEM;
        goto Exit;
    }
    ret = 0;

Exit:
    free(status_s);
    json_decref(status);
    json_decref(added);
    json_decref(probers);
    return ret;
}

static int finish_unchanged(const json_t *pod, rm_inject_result_t *res, rm_inject_outcome_t outcome)
{
    res->outcome = outcome;
    if (outcome != RM_INJECT_REFUSED && (res->pod = json_deep_copy(pod)) == NULL)
        return -ENOMEM;
    return 0;
}

int rm_inject_pod(const rm_inject_config_t *cfg, const json_t *pod, const rm_inject_env_t *env, rm_inject_result_t *res)
{
    const json_t *meta, *spec, *ann, *label;
    const char *inject;
    rm_inject_annotations_t a;
    int native, ret;

    memset(res, 0, sizeof(*res));
    if ((res->patch = json_array()) == NULL)
        return -ENOMEM;
    meta = json_object_get(pod, "metadata");
    spec = json_object_get(pod, "spec");
    ann = json_object_get(meta, "annotations");
    if (!json_is_object(pod) || !json_is_object(spec) || !json_is_array(json_object_get(spec, "containers")) ||
        (meta != NULL && !json_is_object(meta)) || (ann != NULL && !json_is_object(ann) && !json_is_null(ann))) {
        set_msg(res->reason, sizeof(res->reason),
                "the object is not a Pod (it needs spec.containers; metadata and metadata.annotations must be "
                "objects)");
        return finish_unchanged(pod, res, RM_INJECT_REFUSED);
    }
    if (json_is_true(json_object_get(spec, "hostNetwork"))) {
        set_msg(res->reason, sizeof(res->reason), "the pod uses the host's network (spec.hostNetwork): never injected");
        return finish_unchanged(pod, res, RM_INJECT_SKIPPED);
    }
    if (json_object_get(ann, RM_INJECT_STATUS_ANNOTATION) != NULL ||
        has_container(spec, "containers", RM_INJECT_PROXY_NAME) ||
        has_container(spec, "initContainers", RM_INJECT_PROXY_NAME) ||
        has_container(spec, "initContainers", RM_INJECT_INIT_NAME)) {
        set_msg(res->reason, sizeof(res->reason), "already injected (annotation %s or a %s container)",
                RM_INJECT_STATUS_ANNOTATION, RM_INJECT_PROXY_NAME);
        return finish_unchanged(pod, res, RM_INJECT_SKIPPED);
    }
    if (rm__inject_read_inject_annotation(ann, json_object_get(meta, "labels"), &inject, res->reason,
                                          sizeof(res->reason)) != 0)
        goto Invalid;
    if (inject != NULL && strcmp(inject, "false") == 0) {
        set_msg(res->reason, sizeof(res->reason), "label or annotation ringmesh.io/inject is \"false\"");
        return finish_unchanged(pod, res, RM_INJECT_SKIPPED);
    }
    label = json_object_get(env != NULL ? env->namespace_labels : NULL, RM_INJECT_NAMESPACE_LABEL);
    if (inject == NULL && !(json_is_string(label) && strcmp(json_string_value(label), "enabled") == 0)) {
        set_msg(
            res->reason, sizeof(res->reason),
            "neither label or annotation ringmesh.io/inject: \"true\" nor namespace label ringmesh.io/inject=enabled");
        return finish_unchanged(pod, res, RM_INJECT_SKIPPED);
    }
    if (rm__inject_read_annotations(ann, &a, res->reason, sizeof(res->reason), res->warning, sizeof(res->warning)) != 0)
        goto Invalid;

    if (a.native_sidecar >= 0)
        native = a.native_sidecar;
    else if (cfg->native_sidecar != RM_INJECT_NATIVE_AUTO)
        native = cfg->native_sidecar == RM_INJECT_NATIVE_ON;
    else
        native =
            env != NULL && (env->kube_major > 1 || (env->kube_major == 1 && env->kube_minor >= RM_INJECT_NATIVE_MINOR));

    if ((res->pod = json_deep_copy(pod)) == NULL)
        return -ENOMEM;
    if ((ret = build(cfg, res->pod, &a, native, res)) != 0) {
        json_decref(res->pod);
        res->pod = NULL;
        if (ret != -EINVAL)
            return ret;
        res->outcome = RM_INJECT_REFUSED;
        return 0;
    }
    if ((ret = rm_inject_diff(pod, res->pod, res->patch)) != 0)
        return ret;
    res->outcome = RM_INJECT_PATCHED;
    res->native = native;
    return 0;

Invalid:
    if (cfg->fail_open_on_invalid_annotation) {
        set_msg(res->warning, sizeof(res->warning), "not injected: %s", res->reason);
        return finish_unchanged(pod, res, RM_INJECT_SKIPPED);
    }
    return finish_unchanged(pod, res, RM_INJECT_REFUSED);
}

void rm_inject_result_dispose(rm_inject_result_t *res)
{
    json_decref(res->patch);
    json_decref(res->pod);
    memset(res, 0, sizeof(*res));
}
