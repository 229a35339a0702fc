/* OpenSSL defaults for the TLS contexts that the gRPC C core makes (see openssl_defaults.h). */
#include "openssl_defaults.h"

#include <openssl/bio.h>
#include <openssl/conf.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

/* The same structure as an openssl.cnf that sets system-wide TLS defaults, under names of our own. */
static const char ringmesh_ssl_conf[] = "openssl_conf = ringmesh_openssl_init\n"
                                        "[ringmesh_openssl_init]\n"
                                        "ssl_conf = ringmesh_ssl_sect\n"
                                        "[ringmesh_ssl_sect]\n"
                                        "system_default = ringmesh_system_default\n"
                                        "[ringmesh_system_default]\n"
                                        "NumTickets = 0\n"
                                        "Protocol = -TLSv1, -TLSv1.1, -TLSv1.2\n";

/* Does the process's OpenSSL configuration file (OPENSSL_CONF or the default one) set TLS defaults itself? */
static int system_sets_ssl_conf(void)
{
    char *path = CONF_get1_default_config_file();
    CONF *conf = NCONF_new(NULL);
    long line = 0;
    int sets = 0;

    if (path != NULL && conf != NULL && NCONF_load(conf, path, &line) > 0) {
        const char *init = NCONF_get_string(conf, NULL, "openssl_conf");
        sets = init != NULL && NCONF_get_string(conf, init, "ssl_conf") != NULL;
    }
    ERR_clear_error(); /* a missing file or a missing key is no error here */
    NCONF_free(conf);
    OPENSSL_free(path);
    return sets;
}

int rm_openssl_process_init(void)
{
    return OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL) == 1 ? 0 : -1;
}

int rm_openssl_server_defaults(const char **reason)
{
    BIO *bio = NULL;
    CONF *conf = NULL;
    long line = 0;
    int ret = -1;

    /* the process's own configuration first, as any OpenSSL user gets it */
    if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1) {
        *reason = "OpenSSL failed to initialise";
        goto Exit;
    }
    if (system_sets_ssl_conf()) {
        /* loading ours would replace the administrator's system_default settings */
        *reason = "the OpenSSL configuration file sets ssl_conf: its TLS defaults are kept as they are";
        ret = 0;
        goto Exit;
    }
    OPENSSL_load_builtin_modules();
    if ((bio = BIO_new_mem_buf(ringmesh_ssl_conf, (int)sizeof(ringmesh_ssl_conf) - 1)) == NULL ||
        (conf = NCONF_new(NULL)) == NULL || NCONF_load_bio(conf, bio, &line) <= 0 ||
        CONF_modules_load(conf, NULL, 0) <= 0) {
        *reason = "OpenSSL refused the settings";
        goto Exit;
    }
    *reason = "TLS 1.3 only, session tickets off (Protocol = -TLSv1.2, NumTickets = 0)";
    ret = 1;

Exit:
    ERR_clear_error();
    NCONF_free(conf);
    BIO_free(bio);
    return ret;
}
