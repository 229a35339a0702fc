/* The kubeconfig reader (kube_client.h): the current context's cluster and user, read with libyaml's document
 * loader and reported with the configuration module's positioned errors (FILE:LINE:COLUMN: FIELD: reason).
 *
 * Only what a client of a real cluster needs is read; other keys (preferences, extensions, ...) are ignored, as
 * kubectl ignores what it does not know. What would weaken TLS or run programs is refused, not ignored. */
#include "kube_client.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "ringmesh/error.h"

#define KUBECONFIG_MAX (1u << 20)

typedef struct st_reader_t {
    yaml_document_t doc;
    const char *file;
    const char *dir; /* for relative file names */
    rm_config_error_t *err;
} reader_t;

static rm_yaml_pos_t pos_of(const yaml_node_t *n)
{
    return (rm_yaml_pos_t){(unsigned)n->start_mark.line + 1, (unsigned)n->start_mark.column + 1};
}

__attribute__((format(printf, 4, 5))) static int fail_at(reader_t *r, const yaml_node_t *n, const char *field,
                                                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rm_config_error_vset(r->err, RM_ERR_CONFIG_VALUE, r->file, n != NULL ? pos_of(n) : (rm_yaml_pos_t){0, 0}, field,
                         fmt, ap);
    va_end(ap);
    return RM_ERR_CONFIG_VALUE;
}

static yaml_node_t *map_get(reader_t *r, yaml_node_t *map, const char *key)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&r->doc, p->key);
        if (k != NULL && k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(&r->doc, p->value);
    }
    return NULL;
}

static const char *scalar(const yaml_node_t *n)
{
    return n != NULL && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* The entry of list `list_key` whose name is `name`: its `inner` mapping. */
static int find_named(reader_t *r, yaml_node_t *root, const char *list_key, const char *inner, const char *name,
                      yaml_node_t *at, const char *at_field, yaml_node_t **out, char *path, size_t pathlen)
{
    yaml_node_t *list = map_get(r, root, list_key);
    if (list != NULL && list->type != YAML_SEQUENCE_NODE)
        return fail_at(r, list, list_key, "want a list of named entries");
    if (list != NULL) {
        unsigned i = 0;
        for (yaml_node_item_t *it = list->data.sequence.items.start; it < list->data.sequence.items.top; it++, i++) {
            yaml_node_t *e = yaml_document_get_node(&r->doc, *it);
            const char *n = scalar(map_get(r, e, "name"));
            if (n != NULL && strcmp(n, name) == 0) {
                snprintf(path, pathlen, "%s[%u].%s", list_key, i, inner);
                if ((*out = map_get(r, e, inner)) == NULL || (*out)->type != YAML_MAPPING_NODE)
                    return fail_at(r, e, path, "want a mapping");
                return 0;
            }
        }
    }
    return fail_at(r, at, at_field, "no entry named \"%s\" in %s", name, list_key);
}

static int b64_value(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Standard base64 (padding optional, white space skipped) into a NUL-terminated string. */
static int b64_decode(const char *s, char **out)
{
    size_t n = strlen(s), o = 0;
    unsigned acc = 0, bits = 0;
    char *buf = malloc(n / 4 * 3 + 4);
    if (buf == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int v;
        if (s[i] == '=' || s[i] == '\n' || s[i] == '\r' || s[i] == ' ')
            continue;
        if ((v = b64_value((unsigned char)s[i])) < 0) {
            free(buf);
            return -EINVAL;
        }
        acc = (acc << 6) | (unsigned)v;
        if ((bits += 6) >= 8) {
            bits -= 8;
            buf[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    buf[o] = '\0';
    if (memchr(buf, '\0', o) != NULL) {
        free(buf);
        return -EINVAL;
    }
    *out = buf;
    return 0;
}

/* A file name, made absolute against the kubeconfig's directory. */
static int take_path(reader_t *r, yaml_node_t *n, const char *field, char **out)
{
    const char *s = scalar(n);
    if (s == NULL || s[0] == '\0')
        return fail_at(r, n, field, "want a file name");
    if (s[0] == '/' ? (*out = strdup(s)) == NULL : asprintf(out, "%s/%s", r->dir, s) < 0)
        return fail_at(r, n, field, "out of memory");
    return 0;
}

static int take_data(reader_t *r, yaml_node_t *n, const char *field, char **out)
{
    const char *s = scalar(n);
    int ret;
    if (s == NULL || (ret = b64_decode(s, out)) == -EINVAL)
        return fail_at(r, n, field, "want base64 of PEM text");
    if (ret != 0)
        return fail_at(r, n, field, "out of memory");
    return 0;
}

static int take_string(reader_t *r, yaml_node_t *n, const char *field, char **out)
{
    const char *s = scalar(n);
    if (s == NULL || s[0] == '\0')
        return fail_at(r, n, field, "want a non-empty string");
    if ((*out = strdup(s)) == NULL)
        return fail_at(r, n, field, "out of memory");
    return 0;
}

static int read_cluster(reader_t *r, yaml_node_t *cl, const char *base, rm_kube_config_t *cfg)
{
    char f[160];
    yaml_node_t *n;
    int ret;

    snprintf(f, sizeof(f), "%s.server", base);
    if ((n = map_get(r, cl, "server")) == NULL)
        return fail_at(r, cl, f, "the cluster has no server");
    if ((ret = take_string(r, n, f, &cfg->server)) != 0)
        return ret;
    if (strncmp(cfg->server, "https://", 8) != 0)
        return fail_at(r, n, f, "\"%s\" is not an https:// URL (the API is never reached without TLS)", cfg->server);
    snprintf(f, sizeof(f), "%s.insecure-skip-tls-verify", base);
    if ((n = map_get(r, cl, "insecure-skip-tls-verify")) != NULL && scalar(n) != NULL &&
        strcmp(scalar(n), "false") != 0)
        return fail_at(r, n, f, "refused: the API server's certificate is always verified");
    if ((n = map_get(r, cl, "certificate-authority-data")) != NULL) {
        snprintf(f, sizeof(f), "%s.certificate-authority-data", base);
        return take_data(r, n, f, &cfg->ca_data);
    }
    if ((n = map_get(r, cl, "certificate-authority")) != NULL) {
        snprintf(f, sizeof(f), "%s.certificate-authority", base);
        return take_path(r, n, f, &cfg->ca_file);
    }
    return fail_at(r, cl, base,
                   "the cluster has no certificate-authority or certificate-authority-data (the server is never "
                   "trusted without one)");
}

static int read_user(reader_t *r, yaml_node_t *u, const char *base, rm_kube_config_t *cfg)
{
    static const char *const refused[] = {"exec", "auth-provider", "username", "password", NULL};
    char f[160];
    yaml_node_t *n;
    int ret;

    for (size_t i = 0; refused[i] != NULL; i++)
        if ((n = map_get(r, u, refused[i])) != NULL) {
            snprintf(f, sizeof(f), "%s.%s", base, refused[i]);
            return fail_at(r, n, f, "not supported: use token, tokenFile or a client certificate");
        }
#define FIELD(key, fn, member)                                                                                         \
    if ((n = map_get(r, u, key)) != NULL) {                                                                            \
        snprintf(f, sizeof(f), "%s.%s", base, key);                                                                    \
        if ((ret = fn(r, n, f, &cfg->member)) != 0)                                                                    \
            return ret;                                                                                                \
    }
    FIELD("token", take_string, token)
    FIELD("tokenFile", take_path, token_file)
    FIELD("client-certificate", take_path, cert_file)
    FIELD("client-certificate-data", take_data, cert_data)
    FIELD("client-key", take_path, key_file)
    FIELD("client-key-data", take_data, key_data)
#undef FIELD
    if ((cfg->cert_file != NULL || cfg->cert_data != NULL) != (cfg->key_file != NULL || cfg->key_data != NULL))
        return fail_at(r, u, base, "a client certificate needs its key, and a key its certificate");
    if (cfg->token == NULL && cfg->token_file == NULL && cfg->cert_file == NULL && cfg->cert_data == NULL)
        return fail_at(r, u, base, "the user has no credentials (token, tokenFile or client-certificate)");
    return 0;
}

int rm_kube_config_load_kubeconfig(const char *path, const char *data, size_t len, rm_kube_config_t *cfg,
                                   rm_config_error_t *err)
{
    reader_t r = {.file = path, .err = err};
    yaml_parser_t parser;
    yaml_node_t *root = NULL, *n = NULL, *ctx = NULL, *cl = NULL, *user = NULL;
    char *owned = NULL, *pathcopy = NULL, cpath[96], upath[96];
    const char *cur;
    int ret, have_doc = 0;

    memset(cfg, 0, sizeof(*cfg));
    memset(err, 0, sizeof(*err));
    if (data == NULL) {
        if (rm_file_read_at(AT_FDCWD, path, path, KUBECONFIG_MAX, 0, &owned, &len, err) != 0)
            return err->code = RM_ERR_CONFIG_IO;
        data = owned;
    }
    if ((pathcopy = strdup(path)) == NULL) {
        ret = fail_at(&r, NULL, NULL, "out of memory");
        goto Exit;
    }
    r.dir = dirname(pathcopy);
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    if (!yaml_parser_load(&parser, &r.doc)) {
        char msg[RM_CONFIG_MSG_MAX];
        rm_yaml_pos_t pos = {(unsigned)parser.problem_mark.line + 1, (unsigned)parser.problem_mark.column + 1};
        snprintf(msg, sizeof(msg), "YAML syntax error: %s", parser.problem != NULL ? parser.problem : "unknown");
        yaml_parser_delete(&parser);
        ret = rm_config_error_set(err, RM_ERR_CONFIG_PARSE, path, pos, NULL, "%s", msg);
        goto Exit;
    }
    yaml_parser_delete(&parser);
    have_doc = 1;
    if ((root = yaml_document_get_root_node(&r.doc)) == NULL || root->type != YAML_MAPPING_NODE) {
        ret = fail_at(&r, root, NULL, "a kubeconfig is a mapping (apiVersion: v1, kind: Config, clusters, ...)");
        goto Exit;
    }
    if ((n = map_get(&r, root, "kind")) != NULL && (scalar(n) == NULL || strcmp(scalar(n), "Config") != 0)) {
        ret = fail_at(&r, n, "kind", "want Config");
        goto Exit;
    }
    if ((n = map_get(&r, root, "current-context")) == NULL || (cur = scalar(n)) == NULL || cur[0] == '\0') {
        ret = fail_at(&r, n != NULL ? n : root, "current-context", "no current-context");
        goto Exit;
    }
    char ctxpath[96];
    if ((ret = find_named(&r, root, "contexts", "context", cur, n, "current-context", &ctx, ctxpath,
                          sizeof(ctxpath))) != 0)
        goto Exit;
    yaml_node_t *cn = map_get(&r, ctx, "cluster"), *un = map_get(&r, ctx, "user");
    char cfield[128], ufield[128];
    snprintf(cfield, sizeof(cfield), "%s.cluster", ctxpath);
    snprintf(ufield, sizeof(ufield), "%s.user", ctxpath);
    if (scalar(cn) == NULL || scalar(un) == NULL) {
        ret = fail_at(&r, ctx, ctxpath, "the context needs a cluster and a user");
        goto Exit;
    }
    if ((ret = find_named(&r, root, "clusters", "cluster", scalar(cn), cn, cfield, &cl, cpath, sizeof(cpath))) != 0 ||
        (ret = find_named(&r, root, "users", "user", scalar(un), un, ufield, &user, upath, sizeof(upath))) != 0 ||
        (ret = read_cluster(&r, cl, cpath, cfg)) != 0 || (ret = read_user(&r, user, upath, cfg)) != 0)
        goto Exit;
    if ((n = map_get(&r, ctx, "namespace")) != NULL && scalar(n) != NULL &&
        (cfg->namespace_ = strdup(scalar(n))) == NULL) {
        ret = fail_at(&r, n, "namespace", "out of memory");
        goto Exit;
    }
    if ((cfg->origin = strdup(path)) == NULL)
        ret = fail_at(&r, NULL, NULL, "out of memory");

Exit:
    if (have_doc)
        yaml_document_delete(&r.doc);
    if (ret != 0)
        rm_kube_config_clear(cfg);
    free(pathcopy);
    if (owned != NULL)
        rm_file_free(owned, len, 0);
    return ret;
}
