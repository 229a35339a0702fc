/* YAML streams <-> JSON values (jansson), for tools that read and write Kubernetes manifests as they are
 * (ringmeshctl inject): every document of a stream, with any fields, not a fixed schema.
 *
 * Reading follows the YAML 1.2 core schema: a plain scalar is null (~, null, empty), a boolean (true/false in
 * three capitalisations), an integer (decimal, 0o octal, 0x hex), a float (with .inf and .nan), else a string;
 * quoted and block scalars are strings; the tags !!str, !!int, !!float, !!bool, !!null force their type. Aliases,
 * keys that are not scalars, duplicate keys and nesting deeper than RM_YAML_JSON_DEPTH_MAX are refused, so that a
 * document cannot expand beyond its text.
 *
 * Writing quotes every string that a reader would take as something else (YAML 1.1's yes/no/on/off included, as
 * Go's YAML libraries read them), writes multi-line strings as literal blocks, and never folds long lines. */
#ifndef RINGMESH_YAML_JSON_H
#define RINGMESH_YAML_JSON_H

#include <jansson.h>
#include <stddef.h>

#define RM_YAML_JSON_DEPTH_MAX 64u

/** Parses every document of data[0..len) into *docs, a new JSON array with one value per document (an empty
 *  document is null). Returns 0, or -EINVAL with "LINE:COLUMN: what is wrong" in `err`, or -ENOMEM. */
int rm_yaml_to_json(const char *data, size_t len, json_t **docs, char *err, size_t errlen);

/** Writes the values of `docs` (a JSON array) as a YAML stream, each document headed by "---", into a new
 *  NUL-terminated buffer *out (free() it) of *outlen bytes. Returns 0, -EINVAL (not an array, or a value YAML
 *  cannot hold) or -ENOMEM. */
int rm_json_to_yaml(const json_t *docs, char **out, size_t *outlen);

#endif
