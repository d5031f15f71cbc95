/*
 * Certificate identity -> MQTT user name / client identifier.
 *
 * EMQX semantics, read from its source (emqx/emqx
 * apps/emqx/src/emqx_channel.erl, set_peercert_infos/3):
 *
 *     cn  -> esockd_peercert:common_name(PeerCert)
 *     dn  -> esockd_peercert:subject(PeerCert)
 *     crt -> PeerCert
 *     pem -> base64:encode(PeerCert)
 *     md5 -> emqx_passwd:hash_data(md5, PeerCert)
 *
 * PeerCert is what ssl:peercert/1 returns: the DER bytes of the leaf
 * (emqx/esockd src/esockd_transport.erl, peercert/1). Hence, byte for byte:
 *  - crt: the raw DER certificate (binary, not text; starts 0x30 0x82);
 *  - pem: base64 (RFC 4648 alphabet, '=' padding, one line, no
 *    "-----BEGIN" armour) of the DER, despite the name and despite the
 *    schema text ("Convert DER certificate content to PEM format",
 *    rel/i18n/emqx_schema.hocon) -- identical to certgate's `crt` field;
 *  - md5: 32 lowercase hex digits of MD5(DER): emqx_passwd:hash_data/2
 *    is hex(crypto:hash(md5, Data)) with hex/1 =
 *    string:lowercase(binary:encode_hex(X)) (apps/emqx/src/emqx_passwd.erl;
 *    4.x used io_lib "~32.16.0b", also lowercase);
 *  - cn: esockd_ssl:peer_cert_common_name/1 joins every CN with ","
 *    (emqx/esockd src/esockd_ssl.erl); certgate maps only a single CN
 *    (several: "ambiguous_field"; verification refuses them anyway);
 *  - dn: esockd_ssl:peer_cert_subject/1, implemented by ident_dn_format
 *    (CG_DN_EMQX, src/ident/dn.c).
 * certgate's additions: sha256 = 64 lowercase hex digits of SHA-256(DER);
 * email = the identity's single email; san_uri = the single SAN URI.
 *
 * Safety. Recent EMQX refuses control characters (0x00-0x1F, 0x7F-0x9F)
 * in CN and DN (validate_peercert_string/3, emqx_utils:is_mqtt_safe_utf8);
 * mosquitto's ACL check denies user names and client ids holding '+' or
 * '#' because %u / %c patterns would turn them into wildcards
 * (src/security.c, acl__check_single). certgate refuses such text values
 * before they reach the broker, and a leading '/' or '$' too ($SYS-like
 * and empty-first-level topics in patterns). pem's alphabet includes '+'
 * and '/', so for pem only the first byte is checked (base64 of DER
 * always starts "MI"); do not use %u/%c ACL patterns with pem or crt.
 * crt is raw DER: never valid UTF-8 (0x82 follows 0x30), so a broker
 * that checks MQTT strings (mosquitto, any MQTT 5 broker: 1.5.4) refuses
 * the CONNECT as malformed; it is kept for EMQX compatibility only and
 * docs/mqtt.md recommends pem instead.
 */
#include "mqtt/map.h"

#include <assert.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"

static const char *const mode_names[] = {
#define MQTT_MAP_NAME(e, name) [e] = name,
    MQTT_MAP_MODES(MQTT_MAP_NAME)
#undef MQTT_MAP_NAME
};

int
mqtt_map_mode_parse(const char *name)
{
    for (int m = 0; m < MQTT_MAP_COUNT; m++) {
        if (strcmp(mode_names[m], name) == 0)
            return m;
    }
    return -1;
}

const char *
mqtt_map_mode_name(enum mqtt_map_mode m)
{
    if ((int)m < 0 || m >= MQTT_MAP_COUNT)
        return NULL;
    return mode_names[m];
}

/* How a value is checked before it goes into the CONNECT. */
enum check {
    CHECK_TEXT,   /* full rule set */
    CHECK_BASE64, /* '+' and '/' allowed after the first byte */
    CHECK_BINARY, /* length only */
};

/* True when s holds a C0/C1 control character, DEL or NUL. */
static bool
has_control(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f)
            return true;
        /* U+0080..U+009F are encoded C2 80..C2 9F */
        if (s[i] == 0xc2 && i + 1 < len && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f)
            return true;
    }
    return false;
}

/* Returns NULL when the value may be sent, else the refusal reason. */
static const char *
check_value(const unsigned char *s, size_t len, enum check how)
{
    if (len > 0xffff)
        return "too_long";
    if (how == CHECK_BINARY)
        return NULL;
    if (len == 0 || strchr("+#/$", s[0]) != NULL)
        return "unsafe_value";
    if (has_control(s, len) || !cg_utf8_valid((const char *)s, len))
        return "unsafe_value";
    if (how == CHECK_TEXT &&
        (memchr(s, '+', len) != NULL || memchr(s, '#', len) != NULL))
        return "unsafe_value";
    return NULL;
}

/* The single element of a list: NULL with *reason set otherwise. */
static const char *
single(const struct cg_strlist *l, const char **reason)
{
    if (l->n == 1)
        return l->v[0];
    *reason = l->n == 0 ? "missing_field" : "ambiguous_field";
    return NULL;
}

/* Finds the value of a text-valued mode; NULL with *reason if absent. */
static const char *
text_value(enum mqtt_map_mode mode, const struct cg_identity *id,
           const char **reason)
{
    *reason = "missing_field";
    switch (mode) {
    case MQTT_MAP_CN:
        if (id->n_cn > 1)
            *reason = "ambiguous_field";
        return id->cn;
    case MQTT_MAP_DN:
        return id->dn_emqx;
    case MQTT_MAP_PEM:
        return id->crt;
    case MQTT_MAP_MD5:
        return id->md5[0] != '\0' ? id->md5 : NULL;
    case MQTT_MAP_SHA256:
        return id->sha256[0] != '\0' ? id->sha256 : NULL;
    case MQTT_MAP_EMAIL:
        if (id->email_reason != NULL &&
            strcmp(id->email_reason, "ambiguous") == 0)
            *reason = "ambiguous_field";
        return id->email;
    case MQTT_MAP_SAN_URI:
        return single(&id->san_uri, reason);
    default:
        return NULL;
    }
}

/* Names come from the subject or SAN: a NUL seen there (and cut off by
 * the C string) makes them unsafe whatever is left. */
static bool
from_names(enum mqtt_map_mode mode)
{
    return mode == MQTT_MAP_CN || mode == MQTT_MAP_DN ||
           mode == MQTT_MAP_EMAIL || mode == MQTT_MAP_SAN_URI;
}

int
mqtt_map_value(enum mqtt_map_mode mode, const struct cg_identity *id,
               struct cg_buf *out, const char **reason)
{
    assert(mode > MQTT_MAP_DISABLED && mode < MQTT_MAP_COUNT);
    const unsigned char *v;
    size_t len;
    *reason = "missing_field";
    if (id == NULL)
        return CG_ENOTFOUND;
    if (mode == MQTT_MAP_CRT) {
        v = id->der;
        len = id->der_len;
    } else {
        v = (const unsigned char *)text_value(mode, id, reason);
        len = v != NULL ? strlen((const char *)v) : 0;
    }
    if (v == NULL || len == 0)
        return CG_ENOTFOUND;
    enum check how = mode == MQTT_MAP_CRT   ? CHECK_BINARY
                     : mode == MQTT_MAP_PEM ? CHECK_BASE64
                                            : CHECK_TEXT;
    *reason = check_value(v, len, how);
    if (*reason == NULL && from_names(mode) && id->name_has_nul)
        *reason = "unsafe_value";
    if (*reason != NULL)
        return CG_EPROTO;
    cg_buf_append(out, v, len);
    return 0;
}
