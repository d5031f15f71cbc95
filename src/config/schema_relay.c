/*
 * The keys of mqtt and tcp listeners: peer_cert_as_* mappings, the
 * "auth" object (password, jwt) and the PROXY v2 settings.
 */
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"
#include "core/util.h"
#include "core/xmalloc.h"

const struct opt_choice cfg_mqtt_maps[] = {
    {"disabled", CG_MQTT_MAP_DISABLED},
    {"cn", CG_MQTT_MAP_CN},
    {"dn", CG_MQTT_MAP_DN},
    {"crt", CG_MQTT_MAP_CRT},
    {"pem", CG_MQTT_MAP_PEM},
    {"md5", CG_MQTT_MAP_MD5},
    {"sha256", CG_MQTT_MAP_SHA256},
    {"email", CG_MQTT_MAP_EMAIL},
    {"san_uri", CG_MQTT_MAP_SAN_URI},
    {NULL, 0},
};

/* A JWT key is needed from somewhere. */
static void
jwt_post(struct cfg_ctx *c, json_t *obj, void *base)
{
    struct cg_jwt_cfg *j = base;
    if (j->secret == NULL && j->public_key_file == NULL &&
        !(obj && (json_object_get(obj, "secret") ||
                  json_object_get(obj, "public_key_file"))))
        cfg_error(c, "needs \"secret\" or \"public_key_file\"");
}

#define JWT_OFF(f) offsetof(struct cg_jwt_cfg, f)
static const struct opt jwt_opts[] = {
    {.key = "secret", .type = OPT_STR, .off = JWT_OFF(secret)},
    {.key = "public_key_file",
     .type = OPT_PATH,
     .off = JWT_OFF(public_key_file)},
    {.key = "kid", .type = OPT_STR, .off = JWT_OFF(kid)},
    {.key = "claim", .type = OPT_STR, .off = JWT_OFF(claim), .def_str = "sub"},
};
TABLE(jwt, jwt_post);

/* "auth.jwt": has_jwt says it was given. */
static void
parse_jwt(struct cfg_ctx *c, const struct opt *o, json_t *v, void *base)
{
    struct cg_mqtt_cfg *m = base;
    (void)o;
    m->has_jwt = v != NULL;
    if (v != NULL)
        opt_apply(c, &jwt, v, &m->jwt, false);
}

static void
release_jwt(const struct opt *o, void *base)
{
    struct cg_mqtt_cfg *m = base;
    (void)o;
    opt_release(&jwt, &m->jwt);
}

#define MQ_OFF(f) offsetof(struct cg_mqtt_cfg, f)
static const struct opt auth_opts[] = {
    {.key = "password", .type = OPT_BOOL, .off = MQ_OFF(auth_password)},
    {.key = "jwt",
     .type = OPT_CUSTOM,
     .parse = parse_jwt,
     .release = release_jwt},
};
const struct opt_table cfg_mqtt_auth = {auth_opts, CG_ARRAY_LEN(auth_opts),
                                        NULL};

const struct opt_choice cfg_proxy_protocols[] = {
    {"none", CG_PROXY_NONE},
    {"v2", CG_PROXY_V2},
    {NULL, 0},
};

static const char *const default_identity[] = {"cn", "dn", "serial", "sha256"};

/* Reads one "proxy_identity" entry; false when refused. */
static bool
identity_read(struct cfg_ctx *c, const struct cg_tcp_cfg *t, json_t *e,
              enum cg_field *out)
{
    const char *s = cfg_get_str(c, e);
    int f = s ? ident_field_parse(s) : -1;
    if (s != NULL && f < 0)
        cfg_error(c, "unknown field \"%s\"", s);
    for (size_t j = 0; f >= 0 && j < t->n_identity; j++) {
        if (t->identity[j] == (enum cg_field)f) {
            cfg_error(c, "duplicate field \"%s\"", s);
            return false;
        }
    }
    *out = (enum cg_field)f;
    return f >= 0;
}

/* "proxy_identity": identity field names (default cn, dn, serial,
 * sha256), at most 32. */
void
cfg_parse_proxy_identity(struct cfg_ctx *c, const struct opt *o, json_t *v,
                         void *base)
{
    struct cg_tcp_cfg *t = &((struct cg_listener_cfg *)base)->tcp;
    (void)o;
    if (v == NULL) {
        t->identity =
            xcalloc(CG_ARRAY_LEN(default_identity), sizeof(*t->identity));
        for (size_t i = 0; i < CG_ARRAY_LEN(default_identity); i++)
            t->identity[t->n_identity++] =
                (enum cg_field)ident_field_parse(default_identity[i]);
        return;
    }
    if (!json_is_array(v) || json_array_size(v) > 32) {
        cfg_error(c, "expected an array of at most 32 field names");
        return;
    }
    t->identity = xcalloc(json_array_size(v) + 1, sizeof(*t->identity));
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        size_t mark = cfg_push_index(c, i);
        enum cg_field f;
        if (identity_read(c, t, e, &f))
            t->identity[t->n_identity++] = f;
        cfg_pop(c, mark);
    }
}

void
cfg_release_proxy_identity(const struct opt *o, void *base)
{
    struct cg_tcp_cfg *t = &((struct cg_listener_cfg *)base)->tcp;
    (void)o;
    XFREE(&t->identity);
    t->n_identity = 0;
}
