/* What every configuration loader shares (the proxy's file, the control plane's mesh directory, policy files,
 * ringmeshctl's inputs): one file reader, one positioned error, and one converter per kind of value.
 *
 * An error names where it is: "FILE:LINE:COLUMN: FIELD.PATH: what is wrong", or "FILE: what is wrong" for the
 * file as a whole. The positions come from the YAML position map (ringmesh/yaml_pos_map.h) that the loaders'
 * first pass (ringmesh/yaml_load.h) fills; a field with no recorded position is placed at its closest recorded
 * ancestor. Converters take the value as the text the document holds, so that every refusal is worded here, once:
 * the value quoted, then what was wanted. */
#ifndef RINGMESH_CONFIG_H
#define RINGMESH_CONFIG_H

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "ringmesh/svid.h"
#include "ringmesh/yaml_pos_map.h"

#define RM_CONFIG_FIELD_MAX 256u
#define RM_CONFIG_MSG_MAX   768u

/* ---------------------------------------------------------------------------------------------------------
 * The positioned error.
 * ------------------------------------------------------------------------------------------------------- */

/** One error: its code (RM_ERR_CONFIG_* or -errno), the file as shown to the user, the position (line 0 when the
 *  error is about the file as a whole), the field path ("" when none) and the reason. */
typedef struct st_rm_config_error_t {
    int code;
    char file[PATH_MAX];
    unsigned line, column;
    char field[RM_CONFIG_FIELD_MAX];
    char reason[RM_CONFIG_MSG_MAX];
} rm_config_error_t;

/** Fills `e` (all of it, replacing an earlier error) and returns `code`. `field` may be NULL. */
int rm_config_error_vset(rm_config_error_t *e, int code, const char *file, rm_yaml_pos_t pos, const char *field,
                         const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));

/** rm_config_error_vset() with arguments. */
int rm_config_error_set(rm_config_error_t *e, int code, const char *file, rm_yaml_pos_t pos, const char *field,
                        const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/** Writes the error as one line: "FILE:LINE:COLUMN: FIELD: REASON" ("(document)" for an empty field) when it has
 *  a position, else "FILE: FIELD: REASON" or "FILE: REASON". Does nothing when `len` is 0. */
void rm_config_error_format(const rm_config_error_t *e, char *buf, size_t len);

/** The same line from its parts, with `note` ("warning: " or "") before the reason: the one form of every loader's
 *  findings, the policy loader's lists included. `file` NULL is written "-", `field` NULL as empty. */
void rm_config_format(char *buf, size_t len, const char *file, unsigned line, unsigned column, const char *field,
                      const char *note, const char *reason);

/** For what reports in a caller's string instead (key files, JWKS, credentials): writes the sentence into `err`
 *  when `errlen` is not 0, and returns `code`. */
int rm_config_fail(char *err, size_t errlen, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---------------------------------------------------------------------------------------------------------
 * The file reader.
 * ------------------------------------------------------------------------------------------------------- */

#define RM_FILE_SECRET  0x1u /* key material: never copied by a reallocation, and zeroed by rm_file_free */
#define RM_FILE_REGULAR 0x2u /* a regular file only (opened non-blocking); one that grows while read is refused */

/** Reads all of `path` (relative to `dir_fd`, or AT_FDCWD) into a NUL-terminated buffer that the caller frees
 *  with rm_file_free() and the same `flags`. A regular file is read into one allocation sized from fstat; another
 *  kind of file (a pipe) is read until its end, unless RM_FILE_REGULAR refuses it. Returns 0, or -errno: -EFBIG
 *  when larger than `max` bytes, -EINVAL when RM_FILE_REGULAR and not a regular file, -EAGAIN when RM_FILE_REGULAR
 *  and it grew while being read. On failure nothing is allocated and, when `err` is not NULL, it holds the reason
 *  ("cannot open: ...", "not a regular file", "larger than N bytes", ...) for file `shown` (NULL: `path`). */
int rm_file_read_at(int dir_fd, const char *path, const char *shown, size_t max, unsigned flags, char **data,
                    size_t *len, rm_config_error_t *err);

/** rm_file_read_at(AT_FDCWD, path, NULL, max, 0, data, len, NULL): free with free() or rm_file_free(). */
int rm_file_read(const char *path, size_t max, char **data, size_t *len);

/** Frees what rm_file_read_at() returned (or any malloc()ed buffer that held key material); with RM_FILE_SECRET its
 *  `len` bytes are zeroed first. NULL is fine. */
void rm_file_free(char *data, size_t len, unsigned flags);

/* ---------------------------------------------------------------------------------------------------------
 * Reporting against a document's positions.
 * ------------------------------------------------------------------------------------------------------- */

/** The document being converted: where its errors go and where its nodes are. */
typedef struct st_rm_config_doc_t {
    const char *file;             /* as shown in messages */
    const rm_yaml_pos_map_t *map; /* positions of the document's nodes; NULL: none recorded */
    rm_yaml_pos_t fallback;       /* where a field with no recorded ancestor is placed */
    rm_config_error_t *err;       /* receives the error */
} rm_config_doc_t;

/** The position of `path`'s key (want_key) or value, else of its closest recorded ancestor, else the fallback. */
rm_yaml_pos_t rm_config_pos(const rm_config_doc_t *doc, const char *path, int want_key);

/** Records `code` at `pos` for `path` in doc->err and returns `code`; an rm_yaml_report_fn (arg: the doc). */
int rm_config_vreport(void *arg, int code, rm_yaml_pos_t pos, const char *path, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

/** rm_config_vreport() with arguments. */
int rm_config_report(rm_config_doc_t *doc, int code, rm_yaml_pos_t pos, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/** Records RM_ERR_CONFIG_VALUE at the value of `path` (rm_config_pos()) and returns it. */
int rm_config_value_error(rm_config_doc_t *doc, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---------------------------------------------------------------------------------------------------------
 * Parsers: text -> value, no message. Each returns 0, or -1 when the text is not one.
 * ------------------------------------------------------------------------------------------------------- */

/** A whole number in min..max written with 1 to 10 decimal digits and nothing else (no sign, no space). */
int rm_config_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out);

/** A port: 1..65535, 1 to 5 decimal digits. */
int rm_config_parse_port(const char *s, uint16_t *out);

/** An IPv4 or IPv6 address with an optional "/prefix" (a bare address is a full-length prefix). IPv4 is returned
 *  IPv4-mapped in `addr`, its prefix counted from the 128-bit form (+96). */
int rm_config_parse_cidr(const char *s, uint8_t addr[16], unsigned *prefix);

/** A DNS-1123 label of s[0..n): 1 to 63 of a-z 0-9 '-', starting and ending with a letter or digit. 1 or 0. */
int rm_config_dns_label_ok(const char *s, size_t n);

/** A DNS-1123 subdomain: DNS-1123 labels joined by dots, at most 253 characters. 1 or 0. */
int rm_config_dns_subdomain_ok(const char *s);

/** A label selector's entry "KEY=VALUE" with a non-empty KEY. Sets *key_len (the '=' is at s[*key_len]). */
int rm_config_parse_label(const char *s, size_t *key_len);

/* ---------------------------------------------------------------------------------------------------------
 * Converters: text at `path` -> value, or RM_ERR_CONFIG_VALUE recorded at the value's position. A NULL `s` (the
 * field is absent) leaves *out as it is and returns 0. On failure *out is unchanged.
 * ------------------------------------------------------------------------------------------------------- */

/** "true" or "false". */
int rm_config_conv_bool(rm_config_doc_t *doc, const char *path, const char *s, int *out);

/** rm_config_parse_uint(). */
int rm_config_conv_uint(rm_config_doc_t *doc, const char *path, const char *s, unsigned long min, unsigned long max,
                        unsigned *out);

/** rm_config_parse_port(). */
int rm_config_conv_port(rm_config_doc_t *doc, const char *path, const char *s, uint16_t *out);

/** A duration (ringmesh/duration.h: "500ms", "1m30s", "0") of at most `max_ms` (at most about 3e16), in ms. */
int rm_config_conv_duration(rm_config_doc_t *doc, const char *path, const char *s, uint64_t max_ms, uint64_t *out);

/** A non-empty string, copied (the old *out is freed). */
int rm_config_conv_string(rm_config_doc_t *doc, const char *path, const char *s, char **out);

/** A SPIFFE trust domain (rm_trust_domain_check()), copied (the old *out is freed). */
int rm_config_conv_trust_domain(rm_config_doc_t *doc, const char *path, const char *s, char **out);

/** A SPIFFE ID that names a workload (it has a path), parsed into *id. */
int rm_config_conv_workload_id(rm_config_doc_t *doc, const char *path, const char *s, rm_spiffe_id_t *id);

/** One of `names` (NULL-terminated): *out gets values[i]. `what` words the refusal: "%s is not WHAT (want A, B or
 *  C)". */
int rm_config_conv_enum(rm_config_doc_t *doc, const char *path, const char *s, const char *what,
                        const char *const *names, const int *values, int *out);

/** rm_config_dns_label_ok() (label) or rm_config_dns_subdomain_ok(); `what` names the value ("a namespace
 *  name"): "%s is not WHAT (a DNS-1123 label: ...)". */
int rm_config_conv_dns_name(rm_config_doc_t *doc, const char *path, const char *s, int label, const char *what);

/** A label selector's entry, rm_config_parse_label(). */
int rm_config_conv_label(rm_config_doc_t *doc, const char *path, const char *s);

#endif
