/*
 * peer_cert_as_username / peer_cert_as_clientid: the bytes a certificate
 * identity puts into the MQTT user name or client identifier, with
 * EMQX's meanings for disabled, cn, dn, crt, pem and md5, plus sha256,
 * email and san_uri. Pure; the exact bytes per mode, with sources, are
 * in map.c and docs/mqtt.md.
 */
#ifndef CG_MQTT_MAP_H
#define CG_MQTT_MAP_H

#include "core/buf.h"
#include "ident/ident.h"

#define MQTT_MAP_MODES(X)                                                      \
    X(MQTT_MAP_DISABLED, "disabled")                                           \
    X(MQTT_MAP_CN, "cn")                                                       \
    X(MQTT_MAP_DN, "dn")                                                       \
    X(MQTT_MAP_CRT, "crt")                                                     \
    X(MQTT_MAP_PEM, "pem")                                                     \
    X(MQTT_MAP_MD5, "md5")                                                     \
    X(MQTT_MAP_SHA256, "sha256")                                               \
    X(MQTT_MAP_EMAIL, "email")                                                 \
    X(MQTT_MAP_SAN_URI, "san_uri")

enum mqtt_map_mode {
#define MQTT_MAP_ENUM(e, name) e,
    MQTT_MAP_MODES(MQTT_MAP_ENUM)
#undef MQTT_MAP_ENUM
        MQTT_MAP_COUNT
};

/* Returns the mode named name, or -1. */
int mqtt_map_mode_parse(const char *name);
/* Returns the static name of a mode, or NULL. */
const char *mqtt_map_mode_name(enum mqtt_map_mode m);

/*
 * Appends the value mode takes from identity id (NULL: no certificate)
 * to out. mode must not be MQTT_MAP_DISABLED.
 *
 * Returns 0; or CG_ENOTFOUND with *reason "missing_field" (the field is
 * absent, or there is no identity) or "ambiguous_field" (several CNs,
 * emails or SAN URIs); or CG_EPROTO with *reason "unsafe_value" (a text
 * value a broker could misread: it starts with '+', '#', '/' or '$', or
 * holds '+', '#', a control character, U+0080..U+009F or invalid UTF-8)
 * or "too_long" (over the 65535 bytes an MQTT string holds). crt (raw
 * DER) is binary and only length-checked; pem (base64) may hold '+' and
 * '/' inside. out is untouched unless 0 is returned; *reason is static.
 */
int mqtt_map_value(enum mqtt_map_mode mode, const struct cg_identity *id,
                   struct cg_buf *out, const char **reason);

#endif
