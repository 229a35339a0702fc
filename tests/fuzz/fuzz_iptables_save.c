/* ringmesh-init's reading of `iptables-save -t nat` text: rm_iptables_build_rules() with an existing table,
 * rm_iptables_build_cleanup() and rm_iptables_count_rule(). The input (up to its first NUL) is the saved text,
 * in an exactly sized allocation.
 *
 * Checks the documented outcomes: both builders succeed on any text and produce a complete iptables-restore input
 * (or, for cleanup with nothing to remove, nothing); the number of rules a build reports does not depend on the
 * existing table; a jump already present is kept once and its other copies deleted, an absent jump is added; and
 * the cleanup input deletes exactly the jumps and chains it reports, each chain flushed before any is deleted. */
/* rm-fuzz-link: ringmesh_init_core */
#include <string.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "iptables_rules.h"

#define JUMP_OUTPUT  "-A OUTPUT -p tcp -j " RM_INIT_CHAIN_OUTPUT
#define JUMP_INBOUND "-A PREROUTING -p tcp -j " RM_INIT_CHAIN_INBOUND
#define DEL_OUTPUT   "-D OUTPUT -p tcp -j " RM_INIT_CHAIN_OUTPUT
#define DEL_INBOUND  "-D PREROUTING -p tcp -j " RM_INIT_CHAIN_INBOUND

static int ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);

    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/* Counts the lines of `text` that start with `prefix`. */
static size_t count_lines(const char *text, const char *prefix)
{
    size_t n = 0, plen = strlen(prefix);

    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        if (strncmp(p, prefix, plen) == 0)
            ++n;
        p = nl != NULL ? nl + 1 : NULL;
    }
    return n;
}

/* Counts the "-D" lines of `text`: "-D", a space or tab, then the rule (iptables-restore splits on both). */
static size_t count_deletes(const char *text)
{
    return count_lines(text, "-D ") + count_lines(text, "-D\t");
}

static void check_build(const rm_init_config_t *cfg, int family, const char *existing)
{
    rm_bytebuf_t fresh = {0}, out = {0};
    const char *text;
    size_t fresh_rules = 0, num_rules = 0;
    size_t have_output = rm_iptables_count_rule(existing, JUMP_OUTPUT);
    size_t have_inbound = rm_iptables_count_rule(existing, JUMP_INBOUND);

    RM_FUZZ_CHECK(rm_iptables_build_rules(cfg, family, NULL, &fresh, &fresh_rules) == 0);
    RM_FUZZ_CHECK(rm_iptables_build_rules(cfg, family, existing, &out, &num_rules) == 0);
    RM_FUZZ_CHECK(num_rules == fresh_rules);
    RM_FUZZ_CHECK(out.base != NULL && out.base[out.len] == '\0');
    text = rm_bytebuf_text(&out);
    RM_FUZZ_CHECK(strlen(text) == out.len);
    RM_FUZZ_CHECK(strncmp(text, "*nat\n", 5) == 0 && ends_with(text, out.len, "\nCOMMIT\n"));
    RM_FUZZ_CHECK(count_lines(text, "*nat") == 1 && count_lines(text, "COMMIT") == 1);

    RM_FUZZ_CHECK(rm_iptables_count_rule(text, JUMP_OUTPUT) == (have_output == 0));
    RM_FUZZ_CHECK(rm_iptables_count_rule(text, JUMP_INBOUND) == (have_inbound == 0));
    RM_FUZZ_CHECK(rm_iptables_count_rule(text, DEL_OUTPUT) == (have_output != 0 ? have_output - 1 : 0));
    RM_FUZZ_CHECK(rm_iptables_count_rule(text, DEL_INBOUND) == (have_inbound != 0 ? have_inbound - 1 : 0));
    /* every line is a declaration of ours, a rule added or a rule deleted */
    RM_FUZZ_CHECK(count_lines(text, ":" RM_INIT_CHAIN_PREFIX) + count_lines(text, "-A ") + count_deletes(text) + 2 ==
                  count_lines(text, ""));
    rm_bytebuf_free(&out);
    rm_bytebuf_free(&fresh);
}

static void check_cleanup(const char *existing)
{
    rm_bytebuf_t out = {0};
    size_t num_jumps = 99, num_chains = 99;
    const char *text, *first_delete;

    RM_FUZZ_CHECK(rm_iptables_build_cleanup(existing, &out, &num_jumps, &num_chains) == 0);
    if (num_jumps == 0 && num_chains == 0) {
        RM_FUZZ_CHECK(out.len == 0);
        goto Exit;
    }
    RM_FUZZ_CHECK(out.base != NULL && out.base[out.len] == '\0');
    text = rm_bytebuf_text(&out);
    RM_FUZZ_CHECK(strlen(text) == out.len);
    RM_FUZZ_CHECK(strncmp(text, "*nat\n", 5) == 0 && ends_with(text, out.len, "\nCOMMIT\n"));
    RM_FUZZ_CHECK(count_deletes(text) == num_jumps);
    RM_FUZZ_CHECK(count_lines(text, "-F " RM_INIT_CHAIN_PREFIX) == num_chains);
    RM_FUZZ_CHECK(count_lines(text, "-X " RM_INIT_CHAIN_PREFIX) == num_chains);
    RM_FUZZ_CHECK(num_jumps + 2 * num_chains + 2 == count_lines(text, ""));
    /* chains refer to each other: all are flushed before the first is deleted */
    if (num_chains != 0) {
        first_delete = strstr(text, "\n-X ");
        RM_FUZZ_CHECK(first_delete != NULL && strstr(first_delete, "\n-F ") == NULL);
    }
Exit:
    rm_bytebuf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    char *existing = rm_fuzz_strndup(data, nul != NULL ? (size_t)(nul - data) : size);
    rm_init_config_t cfg;

    rm_init_config_defaults(&cfg);
    check_build(&cfg, AF_INET, existing);
    check_build(&cfg, AF_INET6, existing);
    check_cleanup(existing);
    free(existing);
    return 0;
}
