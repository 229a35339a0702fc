/* `ringmeshctl svid verify|issue`.
 *
 * Flags are parsed strictly: each must be spelled out in full ("--flag VALUE" or "--flag=VALUE"); anything else is
 * a usage error. Private keys are written with mode 0600 and never printed. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "ringmesh/error.h"
#include "ringmesh/svid.h"
#include "ringmesh/x509_issue.h"

static const rm_ctl_level_t *const level = &rm__ctl_svid_level;

/* Parses "90s", "5m", "1h", "2d" or a bare number of seconds. Returns 0 or -1. */
static int parse_duration(const char *s, int64_t *out)
{
    int64_t v = 0, unit = 1;
    const char *p = s;

    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; ++p) {
        if (v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    switch (*p) {
    case '\0': /* seconds, as with 's' */
    case 's':
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    default:
        return -1;
    }
    if (*p != '\0' && p[1] != '\0')
        return -1;
    if (v > INT64_MAX / unit)
        return -1;
    *out = v * unit;
    return 0;
}

/* ---- verify ------------------------------------------------------------------------------------------------- */

enum { V_BUNDLE, V_CERT, V_TRUST_DOMAIN, V_EXPECT, V_NUM };

static int svid_verify(int argc, char **argv)
{
    flag_t flags[V_NUM] = {
        [V_BUNDLE] = {.name = "bundle", .takes_value = 1},
        [V_CERT] = {.name = "cert", .takes_value = 1},
        [V_TRUST_DOMAIN] = {.name = "trust-domain", .takes_value = 1},
        [V_EXPECT] = {.name = "expect", .takes_value = 1, .repeatable = 1},
    };
    rm_trust_bundle_t *bundle = NULL;
    rm_svid_expect_t expect = {0};
    rm_spiffe_id_t *id = NULL;
    char *bundle_pem = NULL, *cert_pem = NULL;
    size_t bundle_len, cert_len, i;
    int ret, err;

    if (rm__ctl_flags(level, argc, argv, flags, V_NUM, &ret) != 0)
        return ret;
    if (flags[V_BUNDLE].value == NULL || flags[V_CERT].value == NULL) {
        fprintf(stderr, "ringmeshctl svid verify: --bundle and --cert are required\n");
        ret = RM_CTL_EXIT_USAGE;
        goto Exit;
    }
    if ((id = malloc(sizeof(*id))) == NULL) {
        fprintf(stderr, "ringmeshctl: out of memory\n");
        ret = RM_CTL_EXIT_USAGE;
        goto Exit;
    }
    if (flags[V_TRUST_DOMAIN].value != NULL) {
        expect.trust_domain = flags[V_TRUST_DOMAIN].value;
        if ((err = rm_trust_domain_check(expect.trust_domain, strlen(expect.trust_domain))) != 0) {
            fprintf(stderr, "ringmeshctl svid verify: --trust-domain '%s': %s\n", expect.trust_domain,
                    rm_strerror(err));
            ret = RM_CTL_EXIT_USAGE;
            goto Exit;
        }
    }
    for (i = 0; i != flags[V_EXPECT].count; ++i) {
        const char *want = flags[V_EXPECT].values[i];
        if ((err = rm_spiffe_workload_id_parse(want, strlen(want), NULL)) != 0) {
            fprintf(stderr, "ringmeshctl svid verify: --expect '%s': %s\n", want, rm_strerror(err));
            ret = RM_CTL_EXIT_USAGE;
            goto Exit;
        }
    }
    expect.ids = flags[V_EXPECT].values;
    expect.num_ids = flags[V_EXPECT].count;

    if ((err = rm__ctl_read_file(flags[V_BUNDLE].value, &bundle_pem, &bundle_len)) != 0) {
        ret = rm__ctl_file_error(flags[V_BUNDLE].value, NULL, err);
        goto Exit;
    }
    if ((err = rm__ctl_read_file(flags[V_CERT].value, &cert_pem, &cert_len)) != 0) {
        ret = rm__ctl_file_error(flags[V_CERT].value, NULL, err);
        goto Exit;
    }
    if ((err = rm_trust_bundle_load_pem(&bundle, bundle_pem, bundle_len)) != 0) {
        ret = rm__ctl_file_error(flags[V_BUNDLE].value, "not a usable trust bundle", err);
        goto Exit;
    }
    if ((err = rm_svid_verify_pem(bundle, cert_pem, cert_len, time(NULL), &expect, id)) != 0) {
        if (err == -ENOMEM) {
            fprintf(stderr, "ringmeshctl: out of memory\n");
            ret = RM_CTL_EXIT_USAGE;
        } else {
            fprintf(stderr, "invalid SVID: %s\n", rm_strerror(err));
            ret = RM_CTL_EXIT_INVALID;
        }
        goto Exit;
    }
    printf("%s\n", id->str);
    ret = RM_CTL_EXIT_OK;

Exit:
    rm_trust_bundle_free(bundle);
    free(bundle_pem);
    free(cert_pem);
    free(id);
    return ret;
}

/* ---- issue -------------------------------------------------------------------------------------------------- */

enum { I_CA, I_TRUST_DOMAIN, I_CA_CERT, I_CA_KEY, I_ID, I_CERT, I_KEY, I_TTL, I_BACKDATE, I_NUM };

static int svid_issue(int argc, char **argv)
{
    flag_t flags[I_NUM] = {
        [I_CA] = {.name = "ca"},
        [I_TRUST_DOMAIN] = {.name = "trust-domain", .takes_value = 1},
        [I_CA_CERT] = {.name = "ca-cert", .takes_value = 1},
        [I_CA_KEY] = {.name = "ca-key", .takes_value = 1},
        [I_ID] = {.name = "id", .takes_value = 1},
        [I_CERT] = {.name = "cert", .takes_value = 1},
        [I_KEY] = {.name = "key", .takes_value = 1},
        [I_TTL] = {.name = "ttl", .takes_value = 1},
        [I_BACKDATE] = {.name = "backdate", .takes_value = 1},
    };
    rm_x509_issue_opts_t opts;
    rm_x509_ca_t *ca = NULL;
    char *ca_cert_pem = NULL, *ca_key_pem = NULL, *cert_pem = NULL, *key_pem = NULL;
    size_t ca_cert_len = 0, ca_key_len = 0, cert_len = 0, key_len = 0;
    const char *cert_path, *key_path;
    char until[32];
    struct tm tm;
    time_t not_after;
    int is_ca, ret, err;

    if (rm__ctl_flags(level, argc, argv, flags, I_NUM, &ret) != 0)
        return ret;
    is_ca = flags[I_CA].count != 0;
    cert_path = flags[I_CERT].value;
    key_path = flags[I_KEY].value;
    ret = RM_CTL_EXIT_USAGE;
    if (cert_path == NULL || key_path == NULL) {
        fprintf(stderr, "ringmeshctl svid issue: --cert and --key are required\n");
        goto Exit;
    }
    if (strcmp(cert_path, key_path) == 0) {
        fprintf(stderr, "ringmeshctl svid issue: --cert and --key must be different files\n");
        goto Exit;
    }
    if (is_ca) {
        if (flags[I_TRUST_DOMAIN].value == NULL || flags[I_CA_CERT].count != 0 || flags[I_CA_KEY].count != 0 ||
            flags[I_ID].count != 0) {
            fprintf(stderr, "ringmeshctl svid issue: --ca takes --trust-domain, and not --ca-cert, --ca-key or --id\n");
            goto Exit;
        }
    } else if (flags[I_CA_CERT].value == NULL || flags[I_CA_KEY].value == NULL || flags[I_ID].value == NULL ||
               flags[I_TRUST_DOMAIN].count != 0) {
        fprintf(stderr, "ringmeshctl svid issue: an SVID needs --ca-cert, --ca-key and --id (and no --trust-domain; "
                        "the trust domain is part of --id)\n");
        goto Exit;
    }
    rm_x509_issue_opts_init(&opts);
    opts.now = time(NULL);
    opts.ttl = is_ca ? 24 * 3600 : 3600;
    if (flags[I_TTL].value != NULL && (parse_duration(flags[I_TTL].value, &opts.ttl) != 0 || opts.ttl == 0)) {
        fprintf(stderr, "ringmeshctl svid issue: --ttl '%s' is not a positive duration (like 90s, 5m, 1h)\n",
                flags[I_TTL].value);
        goto Exit;
    }
    if (flags[I_BACKDATE].value != NULL && parse_duration(flags[I_BACKDATE].value, &opts.backdate) != 0) {
        fprintf(stderr, "ringmeshctl svid issue: --backdate '%s' is not a duration (like 90s, 5m, 1h)\n",
                flags[I_BACKDATE].value);
        goto Exit;
    }

    if (is_ca) {
        err = rm_x509_make_root_ca(flags[I_TRUST_DOMAIN].value, &opts, &cert_pem, &cert_len, &key_pem, &key_len);
        if (err >= RM_ERR_SPIFFE_USERINFO_PORT && err <= RM_ERR_SPIFFE_SCHEME) {
            fprintf(stderr, "ringmeshctl svid issue: --trust-domain '%s': %s\n", flags[I_TRUST_DOMAIN].value,
                    rm_strerror(err));
            goto Exit;
        } else if (err != 0) {
            fprintf(stderr, "ringmeshctl svid issue: %s\n", rm_strerror(err));
            goto Exit;
        }
    } else {
        if ((err = rm_spiffe_workload_id_parse(flags[I_ID].value, strlen(flags[I_ID].value), NULL)) != 0) {
            fprintf(stderr, "ringmeshctl svid issue: --id '%s': %s\n", flags[I_ID].value, rm_strerror(err));
            goto Exit;
        }
        if ((err = rm__ctl_read_file(flags[I_CA_CERT].value, &ca_cert_pem, &ca_cert_len)) != 0) {
            ret = rm__ctl_file_error(flags[I_CA_CERT].value, NULL, err);
            goto Exit;
        }
        if ((err = rm__ctl_read_file(flags[I_CA_KEY].value, &ca_key_pem, &ca_key_len)) != 0) {
            ret = rm__ctl_file_error(flags[I_CA_KEY].value, NULL, err);
            goto Exit;
        }
        if ((err = rm_x509_ca_load_pem(&ca, ca_cert_pem, ca_cert_len, ca_key_pem, ca_key_len)) != 0) {
            ret = rm__ctl_file_error(err == RM_ERR_SVID_CA_KEY || err == RM_ERR_SVID_KEY_TYPE ? flags[I_CA_KEY].value
                                                                                              : flags[I_CA_CERT].value,
                                     "cannot sign with this CA", err);
            goto Exit;
        }
        if ((err = rm_x509_issue_svid(ca, flags[I_ID].value, &opts, &cert_pem, &cert_len, &key_pem, &key_len)) != 0) {
            fprintf(stderr, "ringmeshctl svid issue: %s\n", rm_strerror(err));
            goto Exit;
        }
    }

    /* the key first: a certificate on disk without its key would be useless */
    if ((err = rm_x509_write_file(key_path, key_pem, key_len, 1)) != 0) {
        ret = rm__ctl_file_error(key_path, NULL, err);
        goto Exit;
    }
    if ((err = rm_x509_write_file(cert_path, cert_pem, cert_len, 0)) != 0) {
        ret = rm__ctl_file_error(cert_path, NULL, err);
        goto Exit;
    }
    not_after = opts.now - (time_t)opts.backdate + (time_t)opts.ttl;
    if (gmtime_r(&not_after, &tm) == NULL || strftime(until, sizeof(until), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        strcpy(until, "?");
    printf("issued %s%s: certificate %s, key %s, valid until %s\n", is_ca ? "root CA for spiffe://" : "",
           is_ca ? flags[I_TRUST_DOMAIN].value : flags[I_ID].value, cert_path, key_path, until);
    ret = RM_CTL_EXIT_OK;

Exit:
    rm_x509_ca_free(ca);
    rm_x509_free_secret(ca_key_pem, ca_key_len);
    rm_x509_free_secret(key_pem, key_len);
    free(ca_cert_pem);
    free(cert_pem);
    return ret;
}

/* ---- the group ---------------------------------------------------------------------------------------------- */

static const rm_ctl_command_t commands[] = {
    {.name = "verify",
     .summary = "check an X.509-SVID against a trust bundle",
     .handler = svid_verify,
     .usage = "ringmeshctl svid verify --bundle CA.pem --cert SVID.pem [--trust-domain TD] [--expect SPIFFE_ID]...",
     .help = "Verifies the chain in --cert (leaf first, then intermediates) against the roots in --bundle and the\n"
             "X509-SVID rules. Valid: prints the SPIFFE ID on stdout, exit 0. Invalid: prints\n"
             "'invalid SVID: <reason>' on stderr, exit 1. --expect may be repeated; the ID must equal one of them."},
    {.name = "issue",
     .summary = "make a root CA, or an X.509-SVID signed by a CA",
     .handler = svid_issue,
     .usage =
         "ringmeshctl svid issue --ca --trust-domain TD --cert OUT.pem --key OUT.key [--ttl 24h] [--backdate 5m]\n"
         "       ringmeshctl svid issue --ca-cert CA.pem --ca-key CA.key --id SPIFFE_ID --cert OUT.pem --key OUT.key\n"
         "                              [--ttl 1h] [--backdate 5m]",
     .help = "--ca makes a self-signed root CA for a trust domain. Otherwise signs an X.509-SVID for --id with the\n"
             "CA in --ca-cert/--ca-key (PEM; the cert file may carry the CA's own chain after it); --cert gets the\n"
             "leaf followed by that chain without the root. Keys are ECDSA P-256; --key is written with mode 0600.\n"
             "NotBefore is now minus --backdate, NotAfter is NotBefore plus --ttl. Durations: 90s, 5m, 1h, 2d."},
};

const rm_ctl_level_t rm__ctl_svid_level = {
    .path = "ringmeshctl svid",
    .noun = "subcommand",
    .footer = "Exit status: 0 ok, 1 invalid SVID, 2 usage or file error.\n",
    .commands = commands,
    .num_commands = sizeof(commands) / sizeof(commands[0]),
};
