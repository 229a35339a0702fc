/* `ringmeshctl token keygen|mint`: a signing key with its JWKS, and tokens shaped like Kubernetes projected
 * ServiceAccount tokens, for the control plane's JWT attestation when there is no cluster (tests, the demo).
 *
 * Flags are parsed strictly, as in svid_cmd.c: each spelled out in full ("--flag VALUE" or "--flag=VALUE").
 * The private key is written with mode 0600 and never printed. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ctl.h"
#include "ringmesh/duration.h"
#include "ringmesh/error.h"
#include "ringmesh/jwt.h"
#include "ringmesh/x509_issue.h"

#define DEFAULT_ISSUER   "https://kubernetes.default.svc.cluster.local"
#define DEFAULT_AUDIENCE "ringmesh"
#define DEFAULT_TTL      3600 /* seconds */

static const rm_ctl_level_t *const level = &rm__ctl_token_level;

/* Parses a duration flag into whole seconds. Returns 0 or -1 after printing the error. */
static int duration_flag(const char *cmd, const flag_t *flag, int64_t min_seconds, int64_t *out)
{
    uint32_t ms;

    if (rm_duration_parse_ms(flag->value, &ms) != 0 || ms % 1000 != 0 || ms / 1000 < min_seconds) {
        fprintf(stderr, "ringmeshctl token %s: --%s '%s' is not a duration of %s seconds (like 90s, 5m, 1h)\n", cmd,
                flag->name, flag->value, min_seconds > 0 ? "whole, positive" : "whole");
        return -1;
    }
    *out = ms / 1000;
    return 0;
}

/* Reports an error of rm_jwks_from_private_key() or rm_jwt_sign_es256() for the key at `path` (the other
 * arguments were checked before). */
static int key_error(const char *path, int err)
{
    if (err == -EINVAL) {
        fprintf(stderr, "ringmeshctl: %s: not an unencrypted PEM private key\n", path);
        return RM_CTL_EXIT_USAGE;
    }
    return rm__ctl_file_error(path, err == RM_ERR_SVID_KEY_TYPE ? "cannot sign tokens" : NULL, err);
}

/* A --kid must be non-empty UTF-8 (JSON strings are). Returns 0 or -1 after printing the error. */
static int check_kid(const char *cmd, const char *kid)
{
    json_t *v;

    if (kid == NULL)
        return 0;
    if (kid[0] == '\0' || (v = json_string(kid)) == NULL) {
        fprintf(stderr, "ringmeshctl token %s: --kid must be non-empty UTF-8\n", cmd);
        return -1;
    }
    json_decref(v);
    return 0;
}

/* The kid of the first key of a JWKS document we made, copied into `kid`. Returns 0 or -1. */
static int jwks_kid(const char *jwks_json, char *kid, size_t size)
{
    json_t *doc = json_loads(jwks_json, 0, NULL);
    const char *s = json_string_value(json_object_get(json_array_get(json_object_get(doc, "keys"), 0), "kid"));
    int ret = s != NULL && strlen(s) < size ? 0 : -1;

    if (ret == 0)
        strcpy(kid, s);
    json_decref(doc);
    return ret;
}

/* ---- keygen ------------------------------------------------------------------------------------------------- */

enum { K_KEY, K_JWKS, K_KID, K_NUM };

static int token_keygen(int argc, char **argv)
{
    flag_t flags[K_NUM] = {[K_KEY] = {"key", 1}, [K_JWKS] = {"jwks", 1}, [K_KID] = {"kid", 1}};
    char *key_pem = NULL, *jwks_json = NULL, *jwks_file = NULL, kid[256];
    uint8_t *spki = NULL;
    size_t key_len = 0, spki_len, jwks_len;
    int ret, err;

    if (rm__ctl_flags(level, argc, argv, flags, K_NUM, &ret) != 0)
        return ret;
    ret = RM_CTL_EXIT_USAGE;
    if (flags[K_KEY].value == NULL || flags[K_JWKS].value == NULL) {
        fprintf(stderr, "ringmeshctl token keygen: --key and --jwks are required\n");
        goto Exit;
    }
    if (strcmp(flags[K_KEY].value, flags[K_JWKS].value) == 0) {
        fprintf(stderr, "ringmeshctl token keygen: --key and --jwks must be different files\n");
        goto Exit;
    }
    if (check_kid("keygen", flags[K_KID].value) != 0)
        goto Exit;
    if ((err = rm_x509_generate_key(&key_pem, &key_len, &spki, &spki_len)) != 0 ||
        (err = rm_jwks_from_private_key(key_pem, key_len, flags[K_KID].value, &jwks_json)) != 0) {
        fprintf(stderr, "ringmeshctl token keygen: %s\n", rm_strerror(err));
        goto Exit;
    }
    if (jwks_kid(jwks_json, kid, sizeof(kid)) != 0) {
        fprintf(stderr, "ringmeshctl token keygen: the JWKS made has no kid\n");
        goto Exit;
    }
    jwks_len = strlen(jwks_json);
    if ((jwks_file = malloc(jwks_len + 2)) == NULL) {
        fprintf(stderr, "ringmeshctl: out of memory\n");
        goto Exit;
    }
    memcpy(jwks_file, jwks_json, jwks_len);
    memcpy(jwks_file + jwks_len, "\n", 2);

    /* the key first: a JWKS without its signing key would be useless */
    if ((err = rm_x509_write_file(flags[K_KEY].value, key_pem, key_len, 1)) != 0) {
        ret = rm__ctl_file_error(flags[K_KEY].value, NULL, err);
        goto Exit;
    }
    if ((err = rm_x509_write_file(flags[K_JWKS].value, jwks_file, jwks_len + 1, 0)) != 0) {
        ret = rm__ctl_file_error(flags[K_JWKS].value, NULL, err);
        goto Exit;
    }
    printf("wrote signing key %s and JWKS %s (kid %s)\n", flags[K_KEY].value, flags[K_JWKS].value, kid);
    ret = RM_CTL_EXIT_OK;

Exit:
    rm_x509_free_secret(key_pem, key_len);
    free(spki);
    free(jwks_json);
    free(jwks_file);
    return ret;
}

/* ---- mint --------------------------------------------------------------------------------------------------- */

enum {
    M_KEY,
    M_KID,
    M_NAMESPACE,
    M_SERVICE_ACCOUNT,
    M_POD,
    M_POD_UID,
    M_ISSUER,
    M_AUDIENCE,
    M_TTL,
    M_NOT_BEFORE,
    M_NUM
};

/* The claims of a projected ServiceAccount token, as the kube-apiserver writes them. NULL when a value is not
 * UTF-8. */
static char *claims_json(const flag_t *flags, int64_t iat, int64_t nbf, int64_t exp)
{
    const char *ns = flags[M_NAMESPACE].value, *sa = flags[M_SERVICE_ACCOUNT].value;
    json_t *claims = NULL, *k8s;
    char *sub = NULL, *out = NULL;
    size_t sub_size = strlen(ns) + strlen(sa) + sizeof("system:serviceaccount::");

    if ((sub = malloc(sub_size)) == NULL)
        return NULL;
    snprintf(sub, sub_size, "system:serviceaccount:%s:%s", ns, sa);
    if ((k8s = json_pack("{s:s, s:{s:s}}", "namespace", ns, "serviceaccount", "name", sa)) == NULL)
        goto Exit;
    if (flags[M_POD].value != NULL &&
        json_object_set_new(k8s, "pod",
                            json_pack("{s:s, s:s}", "name", flags[M_POD].value, "uid", flags[M_POD_UID].value)) != 0) {
        json_decref(k8s);
        goto Exit;
    }
    /* "o" hands k8s over to claims, even on failure */
    if ((claims = json_pack("{s:[s], s:I, s:I, s:s, s:o, s:I, s:s}", "aud", flags[M_AUDIENCE].value, "exp",
                            (json_int_t)exp, "iat", (json_int_t)iat, "iss", flags[M_ISSUER].value, "kubernetes.io", k8s,
                            "nbf", (json_int_t)nbf, "sub", sub)) == NULL)
        goto Exit;
    out = json_dumps(claims, JSON_COMPACT);

Exit:
    json_decref(claims);
    free(sub);
    return out;
}

static int token_mint(int argc, char **argv)
{
    flag_t flags[M_NUM] = {
        [M_KEY] = {"key", 1},
        [M_KID] = {"kid", 1},
        [M_NAMESPACE] = {"namespace", 1},
        [M_SERVICE_ACCOUNT] = {"service-account", 1},
        [M_POD] = {"pod", 1},
        [M_POD_UID] = {"pod-uid", 1},
        [M_ISSUER] = {"issuer", 1},
        [M_AUDIENCE] = {"audience", 1},
        [M_TTL] = {"ttl", 1},
        [M_NOT_BEFORE] = {"not-before", 1},
    };
    rm_jwks_t *jwks = NULL;
    rm_jwt_verify_opts_t opts;
    rm_jwt_claims_t claims;
    char *key_pem = NULL, *jwks_json = NULL, *claims_text = NULL, *token = NULL, kid[256], why[256];
    size_t key_len = 0;
    int64_t ttl = DEFAULT_TTL, not_before = 0, now;
    int ret, err;

    if (rm__ctl_flags(level, argc, argv, flags, M_NUM, &ret) != 0)
        return ret;
    ret = RM_CTL_EXIT_USAGE;
    if (flags[M_KEY].value == NULL || flags[M_NAMESPACE].value == NULL || flags[M_SERVICE_ACCOUNT].value == NULL) {
        fprintf(stderr, "ringmeshctl token mint: --key, --namespace and --service-account are required\n");
        goto Exit;
    }
    if ((flags[M_POD].value == NULL) != (flags[M_POD_UID].value == NULL)) {
        fprintf(stderr, "ringmeshctl token mint: --pod and --pod-uid go together\n");
        goto Exit;
    }
    if (flags[M_ISSUER].value == NULL)
        flags[M_ISSUER].value = DEFAULT_ISSUER;
    if (flags[M_AUDIENCE].value == NULL)
        flags[M_AUDIENCE].value = DEFAULT_AUDIENCE;
    if (flags[M_ISSUER].value[0] == '\0' || flags[M_AUDIENCE].value[0] == '\0') {
        fprintf(stderr, "ringmeshctl token mint: --issuer and --audience must not be empty\n");
        goto Exit;
    }
    if (check_kid("mint", flags[M_KID].value) != 0)
        goto Exit;
    if ((flags[M_TTL].value != NULL && duration_flag("mint", &flags[M_TTL], 1, &ttl) != 0) ||
        (flags[M_NOT_BEFORE].value != NULL && duration_flag("mint", &flags[M_NOT_BEFORE], 0, &not_before) != 0))
        goto Exit;

    if ((err = rm__ctl_read_file(flags[M_KEY].value, &key_pem, &key_len)) != 0) {
        ret = rm__ctl_file_error(flags[M_KEY].value, NULL, err);
        goto Exit;
    }
    if ((err = rm_jwks_from_private_key(key_pem, key_len, flags[M_KID].value, &jwks_json)) != 0) {
        ret = key_error(flags[M_KEY].value, err);
        goto Exit;
    }
    if (jwks_kid(jwks_json, kid, sizeof(kid)) != 0) {
        fprintf(stderr, "ringmeshctl token mint: the key's JWKS has no kid\n");
        goto Exit;
    }

    now = (int64_t)time(NULL);
    if ((claims_text = claims_json(flags, now, now + not_before, now + not_before + ttl)) == NULL) {
        fprintf(stderr, "ringmeshctl token mint: every value must be UTF-8\n");
        goto Exit;
    }
    if ((err = rm_jwt_sign_es256(key_pem, key_len, kid, claims_text, &token)) != 0) {
        ret = key_error(flags[M_KEY].value, err);
        goto Exit;
    }

    /* what the control plane will check, at the time the token becomes valid */
    if (rm_jwks_parse(jwks_json, strlen(jwks_json), &jwks, why, sizeof(why)) != 0) {
        fprintf(stderr, "ringmeshctl token mint: %s\n", why);
        goto Exit;
    }
    rm_jwt_verify_opts_init(&opts);
    opts.issuer = flags[M_ISSUER].value;
    opts.audience = flags[M_AUDIENCE].value;
    opts.now = (time_t)(now + not_before);
    opts.leeway = 0;
    if (rm_jwt_verify(jwks, token, strlen(token), &opts, &claims, why, sizeof(why)) != 0) {
        fprintf(stderr, "ringmeshctl token mint: the token would be refused: %s\n", why);
        goto Exit;
    }
    printf("%s\n", token);
    ret = RM_CTL_EXIT_OK;

Exit:
    rm_jwks_free(jwks);
    rm_x509_free_secret(key_pem, key_len);
    free(jwks_json);
    free(claims_text);
    free(token);
    return ret;
}

/* ---- the group ---------------------------------------------------------------------------------------------- */

static const rm_ctl_command_t commands[] = {
    {.name = "keygen",
     .summary = "make a JWT signing key and its JWKS",
     .handler = token_keygen,
     .usage = "ringmeshctl token keygen --key OUT.pem --jwks OUT.json [--kid ID]",
     .help = "Makes an ECDSA P-256 signing key (--key, written with mode 0600) and the JWKS that verifies its\n"
             "tokens (--jwks). The key's kid is --kid, else its RFC 7638 thumbprint; it is printed."},
    {.name = "mint",
     .summary = "make a token shaped like a Kubernetes ServiceAccount token",
     .handler = token_mint,
     .usage = "ringmeshctl token mint --key KEY.pem [--kid ID] --namespace NS --service-account SA\n"
              "                              [--pod NAME --pod-uid UID] [--issuer ISS] [--audience AUD] [--ttl 1h]\n"
              "                              [--not-before DURATION]",
     .help = "Prints on stdout a token shaped like a Kubernetes projected ServiceAccount token, signed ES256 by\n"
             "--key: iss --issuer (default " DEFAULT_ISSUER "),\n"
             "sub system:serviceaccount:NS:SA, aud [--audience] (default " DEFAULT_AUDIENCE "), iat now, nbf now\n"
             "plus --not-before (default 0), exp nbf plus --ttl (default 1h), and the kubernetes.io claims\n"
             "(namespace, serviceaccount, pod). The header's kid is --kid, else the key's thumbprint as keygen\n"
             "gives it. The token is verified against the key's JWKS before it is printed, so a namespace that\n"
             "is not a DNS-1123 label, or a service account that is not a DNS-1123 subdomain, is refused.\n"
             "Durations: 90s, 5m, 1h, 1h30m (at most 49 days)."},
};

const rm_ctl_level_t rm__ctl_token_level = {
    .path = "ringmeshctl token",
    .noun = "subcommand",
    .footer = "Exit status: 0 ok, 2 usage or file error.\n",
    .commands = commands,
    .num_commands = sizeof(commands) / sizeof(commands[0]),
};
