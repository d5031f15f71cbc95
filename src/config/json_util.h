/*
 * Small read-only JSON object access for modules that must not see
 * jansson (jansson is owned by src/config): parse one object, read
 * top-level string and number members. Used by src/tls/jwt.c for JWT
 * headers and claims.
 */
#ifndef CG_CONFIG_JSON_UTIL_H
#define CG_CONFIG_JSON_UTIL_H

#include <stdbool.h>
#include <stddef.h>

struct config_json;

/*
 * Parses text[0..len) as one JSON object. Duplicate member names and NUL
 * bytes inside strings are refused (so a member cannot be read two ways).
 * Returns an owned object (free with config_json_free), or NULL with err
 * (CG_ERR_LEN bytes) filled when the text is not a JSON object.
 */
struct config_json *config_json_parse(const char *text, size_t len, char *err);
void config_json_free(struct config_json *j);

/*
 * Looks up the top-level member key. Returns 0 and the value; CG_ENOTFOUND
 * when absent; CG_EINVAL when it has another type. A string is borrowed
 * from j (NUL-terminated, *len bytes, valid until config_json_free); a
 * number is an integer or a real.
 */
/* True when the top-level member key exists, whatever its type. */
bool config_json_has(const struct config_json *j, const char *key);
int config_json_get_string(const struct config_json *j, const char *key,
                           const char **out, size_t *len);
int config_json_get_number(const struct config_json *j, const char *key,
                           double *out);

#endif
