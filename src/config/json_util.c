/* Read-only JSON object access over jansson (see json_util.h). */
#include "config/json_util.h"

#include <stdlib.h>

#include <jansson.h>

#include "core/err.h"
#include "core/xmalloc.h"

struct config_json {
    json_t *root;
};

struct config_json *
config_json_parse(const char *text, size_t len, char *err)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        cg_seterr(err, CG_EINVAL, "invalid JSON at %d: %s", je.position,
                  je.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        cg_seterr(err, CG_EINVAL, "JSON value is not an object");
        return NULL;
    }
    struct config_json *j = xmalloc(sizeof(*j));
    j->root = root;
    return j;
}

void
config_json_free(struct config_json *j)
{
    if (j == NULL)
        return;
    json_decref(j->root);
    free(j);
}

bool
config_json_has(const struct config_json *j, const char *key)
{
    return json_object_get(j->root, key) != NULL;
}

int
config_json_get_string(const struct config_json *j, const char *key,
                       const char **out, size_t *len)
{
    json_t *v = json_object_get(j->root, key);
    if (v == NULL)
        return CG_ENOTFOUND;
    if (!json_is_string(v))
        return CG_EINVAL;
    *out = json_string_value(v);
    *len = json_string_length(v);
    return 0;
}

int
config_json_get_number(const struct config_json *j, const char *key,
                       double *out)
{
    json_t *v = json_object_get(j->root, key);
    if (v == NULL)
        return CG_ENOTFOUND;
    if (!json_is_number(v))
        return CG_EINVAL;
    *out = json_number_value(v);
    return 0;
}
