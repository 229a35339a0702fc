/* Fixtures shared by the policy engine's tests: see policy_fixtures.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "policy_fixtures.h"

#include <stdio.h>
#include <string.h>

void print_diags(const rm_policy_diags_t *diags)
{
    char buf[1200];
    for (size_t i = 0; i < diags->n; i++) {
        rm_policy_diag_format(&diags->d[i], buf, sizeof(buf));
        print_message("  %s\n", buf);
    }
}

/* Loads a text that must be free of findings. */
void load_ok(rm_policy_set_t *set, const char *yaml)
{
    rm_policy_diags_t diags = {0};
    int ret = rm_policy_load_yaml(set, yaml, strlen(yaml), "test.yaml", 1, &diags);
    if (ret != 0 || diags.n != 0) {
        print_diags(&diags);
        rm_policy_diags_clear(&diags);
        fail_msg("policy text refused (%d)", ret);
    }
    rm_policy_diags_clear(&diags);
}

rm_authz_engine_t *compile_set(const rm_policy_set_t *set, rm_authz_action_t default_action)
{
    const rm_authz_policy_t *ptrs[64];
    rm_authz_engine_opts_t opts = {.default_action = default_action};
    rm_authz_engine_t *e = NULL;
    char err[512] = "";
    assert_true(set->num_policies <= 64);
    for (size_t i = 0; i < set->num_policies; i++)
        ptrs[i] = &set->policies[i];
    int ret = rm_authz_engine_new(&e, ptrs, set->num_policies, &opts, err, sizeof(err));
    if (ret != 0)
        fail_msg("compile: %d %s", ret, err);
    return e;
}

const rm_authz_policy_t *find_policy(const rm_policy_set_t *set, const char *ns, const char *name)
{
    for (size_t i = 0; i < set->num_policies; i++)
        if (strcmp(set->policies[i].namespace_, ns) == 0 && strcmp(set->policies[i].name, name) == 0)
            return &set->policies[i];
    fail_msg("no policy %s/%s", ns, name);
    return NULL;
}

const rm_authz_attrs_t *make_attrs(const req_t *r, req_buf_t *b)
{
    memset(b, 0, sizeof(*b));
    b->a.principal = r->principal;
    if (r->src_ip != NULL) {
        assert_int_equal(rm_authz_ip_parse(r->src_ip, b->a.source_ip), 0);
        b->a.have_source_ip = 1;
    }
    if (r->dst_ip != NULL) {
        assert_int_equal(rm_authz_ip_parse(r->dst_ip, b->a.destination_ip), 0);
        b->a.have_destination_ip = 1;
    }
    b->a.destination_port = r->port != 0 ? r->port : 8080;
    b->a.sni = r->sni;
    if (r->method != NULL) {
        const char *path = r->path != NULL ? r->path : "/";
        b->http.method = r->method;
        b->http.method_len = strlen(r->method);
        b->http.path = path;
        b->http.path_len = strlen(path);
        b->http.host = r->host;
        b->http.host_len = r->host != NULL ? strlen(r->host) : 0;
        for (size_t i = 0; i < 3 && r->headers[2 * i] != NULL; i++) {
            b->hdrs[i].name = r->headers[2 * i];
            b->hdrs[i].name_len = strlen(r->headers[2 * i]);
            b->hdrs[i].value = r->headers[2 * i + 1];
            b->hdrs[i].value_len = strlen(r->headers[2 * i + 1]);
            b->http.num_headers++;
        }
        b->http.headers = b->hdrs;
        b->a.http = &b->http;
    }
    return &b->a;
}

void expect_diag(const rm_policy_diag_t *d, int warning, const char *file, unsigned line, unsigned column,
                 const char *path, const char *message)
{
    assert_int_equal(d->warning, warning);
    assert_string_equal(d->file, file);
    assert_int_equal(d->line, line);
    assert_int_equal(d->column, column);
    assert_string_equal(d->path, path);
    assert_string_equal(d->message, message);
}
