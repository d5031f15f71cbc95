/*
 * MQTT CONNECT decoder/encoder and CONNACK (pure). Section numbers are
 * those of MQTT 3.1.1 (OASIS, 2014) and MQTT 5.0 (OASIS, 2019).
 *
 * Refusals follow the specs: before the protocol level is known nothing
 * can be answered, so the connection is closed without a CONNACK;
 * 3.1/3.1.1 define CONNACK codes only for an unacceptable protocol level
 * (0x01) and a rejected client identifier (0x02), every other violation
 * closes the connection (3.1.1 section 4.8); 5.0 lets the server send a
 * CONNACK with the reason code before closing (section 4.13), which we
 * do. Variable byte integers must be minimal (5.0 section 1.5.5); we ask
 * it of 3.1.1 too, so that re-encoding a decoded CONNECT is
 * byte-identical.
 */
#include "mqtt/connect.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"

static const struct {
    const char *name;
    int v3, v5;
} refusals[] = {
#define MQTT_REFUSAL_ROW(e, name, v3, v5) [e] = {name, v3, v5},
    MQTT_REFUSALS(MQTT_REFUSAL_ROW)
#undef MQTT_REFUSAL_ROW
};

const char *
mqtt_refusal_name(enum mqtt_refusal r)
{
    if ((int)r < 0 || r >= MQTT_REFUSE_COUNT)
        return "unknown";
    return refusals[r].name;
}

int
mqtt_refusal_code(enum mqtt_refusal r, int level)
{
    if ((int)r <= MQTT_REFUSE_NONE || r >= MQTT_REFUSE_COUNT || level < 0)
        return -1;
    return level >= MQTT_LEVEL_5 ? refusals[r].v5 : refusals[r].v3;
}

/* Records the refusal in c and its detail in err; returns CG_EPROTO. */
static int __attribute__((format(printf, 4, 5)))
refuse(struct mqtt_connect *c, enum mqtt_refusal why, char *err,
       const char *fmt, ...)
{
    c->refusal = why;
    c->connack = mqtt_refusal_code(why, c->level);
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, CG_ERR_LEN, fmt, ap);
        va_end(ap);
    }
    return CG_EPROTO;
}

/* Reader over p[off..end). */
struct rd {
    const uint8_t *p;
    size_t end;
    size_t off;
};

static bool
rd_take(struct rd *r, size_t n, struct mqtt_bytes *out)
{
    if (r->end - r->off < n)
        return false;
    out->p = r->p + r->off;
    out->len = n;
    r->off += n;
    return true;
}

static bool
rd_uint(struct rd *r, size_t n, uint32_t *v)
{
    struct mqtt_bytes b;
    if (!rd_take(r, n, &b))
        return false;
    *v = 0;
    for (size_t i = 0; i < n; i++)
        *v = (*v << 8) | b.p[i];
    return true;
}

/* A two-byte length, then that many bytes (section 1.5.3 / 1.5.6). */
static bool
rd_lbytes(struct rd *r, struct mqtt_bytes *out)
{
    uint32_t n;
    return rd_uint(r, 2, &n) && rd_take(r, n, out);
}

/* Variable byte integer: 0, CG_EAGAIN when the input ends inside it,
 * CG_EPROTO when longer than four bytes or not minimally encoded. */
static int
rd_vbi(struct rd *r, uint32_t *v)
{
    uint32_t val = 0;
    for (int i = 0; i < 4; i++) {
        if (r->off >= r->end)
            return CG_EAGAIN;
        uint8_t b = r->p[r->off++];
        val |= (uint32_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            if (i > 0 && b == 0)
                return CG_EPROTO;
            *v = val;
            return 0;
        }
    }
    return CG_EPROTO;
}

/* MQTT UTF-8 string content (section 1.5.3 / 1.5.4): well-formed UTF-8,
 * no surrogates, no U+0000. */
static bool
mqtt_utf8(const struct mqtt_bytes *b)
{
    if (b->len == 0)
        return true;
    return memchr(b->p, 0, b->len) == NULL &&
           cg_utf8_valid((const char *)b->p, b->len);
}

/* A topic name (will topic, response topic): not empty, no wildcard
 * (section 4.7). */
static bool
topic_name_ok(const struct mqtt_bytes *b)
{
    return b->len > 0 && memchr(b->p, '+', b->len) == NULL &&
           memchr(b->p, '#', b->len) == NULL;
}

/* Reads a length-prefixed UTF-8 string named what. */
static int
read_string(struct rd *r, struct mqtt_connect *c, struct mqtt_bytes *out,
            const char *what, char *err)
{
    if (!rd_lbytes(r, out))
        return refuse(c, MQTT_REFUSE_MALFORMED, err,
                      "%s runs past the end of the CONNECT", what);
    if (!mqtt_utf8(out))
        return refuse(c, MQTT_REFUSE_BAD_UTF8, err,
                      "%s is not a valid MQTT UTF-8 string", what);
    return 0;
}

static int
read_binary(struct rd *r, struct mqtt_connect *c, struct mqtt_bytes *out,
            const char *what, char *err)
{
    if (!rd_lbytes(r, out))
        return refuse(c, MQTT_REFUSE_MALFORMED, err,
                      "%s runs past the end of the CONNECT", what);
    return 0;
}

/* --- MQTT 5 properties (section 2.2.2) ------------------------------ */

enum ptype { P_BYTE, P_U16, P_U32, P_UTF8, P_BIN, P_PAIR };
#define IN_CONNECT 1u
#define IN_WILL 2u

struct prop {
    uint8_t id;
    uint8_t type;
    uint8_t where;
    bool multi; /* may appear more than once */
};

/* The properties a CONNECT (3.1.2.11) and its will (3.1.3.2) may hold. */
static const struct prop props[] = {
    {0x11, P_U32, IN_CONNECT, false},  /* Session Expiry Interval */
    {0x21, P_U16, IN_CONNECT, false},  /* Receive Maximum */
    {0x27, P_U32, IN_CONNECT, false},  /* Maximum Packet Size */
    {0x22, P_U16, IN_CONNECT, false},  /* Topic Alias Maximum */
    {0x19, P_BYTE, IN_CONNECT, false}, /* Request Response Information */
    {0x17, P_BYTE, IN_CONNECT, false}, /* Request Problem Information */
    {0x15, P_UTF8, IN_CONNECT, false}, /* Authentication Method */
    {0x16, P_BIN, IN_CONNECT, false},  /* Authentication Data */
    {0x26, P_PAIR, IN_CONNECT | IN_WILL, true}, /* User Property */
    {0x18, P_U32, IN_WILL, false},              /* Will Delay Interval */
    {0x01, P_BYTE, IN_WILL, false},             /* Payload Format Indicator */
    {0x02, P_U32, IN_WILL, false},              /* Message Expiry Interval */
    {0x03, P_UTF8, IN_WILL, false},             /* Content Type */
    {0x08, P_UTF8, IN_WILL, false},             /* Response Topic */
    {0x09, P_BIN, IN_WILL, false},              /* Correlation Data */
};

static const struct prop *
prop_find(uint32_t id, unsigned where)
{
    for (size_t i = 0; i < CG_ARRAY_LEN(props); i++) {
        if (props[i].id == id && (props[i].where & where) != 0)
            return &props[i];
    }
    return NULL;
}

/* Value rules: "It is a Protocol Error to include ... a value other
 * than 0 or 1" (0x17, 0x19, 0x01), "... value of 0" (0x21, 0x27). */
static bool
prop_value_ok(uint8_t id, uint32_t v)
{
    switch (id) {
    case 0x17:
    case 0x19:
    case 0x01:
        return v <= 1;
    case 0x21:
    case 0x27:
        return v != 0;
    default:
        return true;
    }
}

/* Reads one property value of type p->type. */
static int
prop_value(struct rd *r, struct mqtt_connect *c, const struct prop *p,
           char *err)
{
    static const size_t width[] = {[P_BYTE] = 1, [P_U16] = 2, [P_U32] = 4};
    struct mqtt_bytes b, v;
    uint32_t n;
    switch (p->type) {
    case P_BYTE:
    case P_U16:
    case P_U32:
        if (!rd_uint(r, width[p->type], &n))
            break;
        if (!prop_value_ok(p->id, n))
            return refuse(c, MQTT_REFUSE_PROTOCOL_ERROR, err,
                          "property 0x%02x has invalid value %u", p->id, n);
        return 0;
    case P_UTF8:
        if (read_string(r, c, &b, "a property string", err) != 0)
            return CG_EPROTO;
        if (p->id == 0x08 && !topic_name_ok(&b))
            return refuse(c, MQTT_REFUSE_PROTOCOL_ERROR, err,
                          "response topic is not a valid topic name");
        if (p->id == 0x15) {
            c->has_auth_method = true;
            c->auth_method = b;
        }
        return 0;
    case P_BIN:
        return read_binary(r, c, &b, "a property value", err);
    case P_PAIR:
        if (read_string(r, c, &b, "a user property name", err) != 0)
            return CG_EPROTO;
        return read_string(r, c, &v, "a user property value", err);
    }
    return refuse(c, MQTT_REFUSE_MALFORMED, err,
                  "property 0x%02x runs past the property list", p->id);
}

/* Reads a property list (length, then properties) into *raw and checks
 * every property; where is IN_CONNECT or IN_WILL. */
static int
decode_props(struct rd *r, struct mqtt_connect *c, unsigned where,
             struct mqtt_bytes *raw, char *err)
{
    const char *what = where == IN_WILL ? "will" : "CONNECT";
    uint32_t n, id;
    if (rd_vbi(r, &n) != 0)
        return refuse(c, MQTT_REFUSE_MALFORMED, err,
                      "malformed %s property length", what);
    if (!rd_take(r, n, raw))
        return refuse(c, MQTT_REFUSE_MALFORMED, err,
                      "%s properties run past the end of the CONNECT", what);
    struct rd pr = {raw->p, raw->len, 0};
    uint8_t seen[256] = {0};
    while (pr.off < pr.end) {
        if (rd_vbi(&pr, &id) != 0)
            return refuse(c, MQTT_REFUSE_MALFORMED, err,
                          "malformed %s property identifier", what);
        const struct prop *p = prop_find(id, where);
        if (p == NULL)
            return refuse(c, MQTT_REFUSE_MALFORMED, err,
                          "property 0x%02x is not allowed in %s properties", id,
                          what);
        if (seen[id] && !p->multi)
            return refuse(c, MQTT_REFUSE_PROTOCOL_ERROR, err,
                          "property 0x%02x appears more than once", id);
        seen[id] = 1;
        if (prop_value(&pr, c, p, err) != 0)
            return CG_EPROTO;
    }
    if (seen[0x16] && !seen[0x15])
        return refuse(c, MQTT_REFUSE_PROTOCOL_ERROR, err,
                      "authentication data without authentication method");
    return 0;
}

/* --- CONNECT ------------------------------------------------------- */

/* Fixed header: type 1 with flags 0 (section 2.1.3), remaining length. */
static int
decode_fixed(const uint8_t *buf, size_t len, size_t *hdr, uint32_t *rl,
             struct mqtt_connect *c, char *err)
{
    if (len == 0)
        return CG_EAGAIN;
    if ((buf[0] >> 4) != 1)
        return refuse(c, MQTT_REFUSE_NOT_CONNECT, err,
                      "first packet has type %u, not CONNECT", buf[0] >> 4);
    if (buf[0] != 0x10)
        return refuse(c, MQTT_REFUSE_MALFORMED, err,
                      "CONNECT fixed-header flags are 0x%x, not 0",
                      buf[0] & 0x0fu);
    struct rd r = {buf, len, 1};
    int rc = rd_vbi(&r, rl);
    if (rc == CG_EAGAIN)
        return rc;
    if (rc != 0)
        return refuse(c, MQTT_REFUSE_MALFORMED, err,
                      "malformed remaining length");
    *hdr = r.off;
    return 0;
}

/* Input ended inside the protocol header: wait, or refuse when the
 * packet is complete and too short to hold one. */
static int
proto_short(const struct rd *r, size_t total, struct mqtt_connect *c, char *err)
{
    if (r->end < total)
        return CG_EAGAIN;
    return refuse(c, MQTT_REFUSE_MALFORMED, err,
                  "CONNECT too short for its protocol header");
}

/* Protocol name and level (3.1.2.1, 3.1.2.2). Needs at most 9 bytes, so
 * it can be judged before the rest of the packet arrives. */
static int
decode_proto(struct rd *r, size_t total, struct mqtt_connect *c, char *err)
{
    if (r->end - r->off < 2)
        return proto_short(r, total, c, err);
    const uint8_t *p = r->p + r->off;
    size_t n = ((size_t)p[0] << 8) | p[1];
    if (n != 4 && n != 6)
        return refuse(c, MQTT_REFUSE_PROTOCOL_NAME, err,
                      "protocol name of %zu bytes is not MQTT or MQIsdp", n);
    if (r->end - r->off < 2 + n + 1)
        return proto_short(r, total, c, err);
    bool mqisdp = n == 6 && memcmp(p + 2, "MQIsdp", 6) == 0;
    bool mqtt = n == 4 && memcmp(p + 2, "MQTT", 4) == 0;
    if (!mqisdp && !mqtt)
        return refuse(c, MQTT_REFUSE_PROTOCOL_NAME, err,
                      "protocol name is not MQTT or MQIsdp");
    c->level = p[2 + n];
    r->off += 2 + n + 1;
    if ((mqisdp && c->level != MQTT_LEVEL_31) ||
        (mqtt && c->level != MQTT_LEVEL_311 && c->level != MQTT_LEVEL_5))
        return refuse(c, MQTT_REFUSE_VERSION, err,
                      "unsupported protocol level %d for %s", c->level,
                      mqisdp ? "MQIsdp" : "MQTT");
    return 0;
}

/* Connect flags (3.1.2.3 to 3.1.2.9). */
static int
check_flags(struct mqtt_connect *c, char *err)
{
    uint8_t f = c->flags;
    unsigned qos = (f & MQTT_CF_WILL_QOS) >> 3;
    if (f & MQTT_CF_RESERVED)
        return refuse(c, MQTT_REFUSE_MALFORMED, err,
                      "reserved connect flag is set");
    if (qos == 3)
        return refuse(c, MQTT_REFUSE_MALFORMED, err, "will QoS is 3");
    if (!(f & MQTT_CF_WILL) && (qos != 0 || (f & MQTT_CF_WILL_RETAIN)))
        return refuse(c, MQTT_REFUSE_MALFORMED, err,
                      "will QoS or retain set without a will");
    if (c->level < MQTT_LEVEL_5 && (f & MQTT_CF_PASSWORD) &&
        !(f & MQTT_CF_USERNAME))
        return refuse(c, MQTT_REFUSE_PROTOCOL_ERROR, err,
                      "password flag without user name flag");
    c->has_username = (f & MQTT_CF_USERNAME) != 0;
    c->has_password = (f & MQTT_CF_PASSWORD) != 0;
    return 0;
}

/* Client identifier rules: 3.1 requires one (3.1 spec, CONNECT payload);
 * 3.1.1 accepts an empty one only with CleanSession (3.1.3-8); 5.0 lets
 * the server assign one. Length and characters beyond UTF-8 are left to
 * the broker (3.1.1 3.1.3-5 makes them a server choice). */
static int
check_client_id(struct mqtt_connect *c, char *err)
{
    if (c->client_id.len > 0 || c->level == MQTT_LEVEL_5)
        return 0;
    if (c->level == MQTT_LEVEL_31)
        return refuse(c, MQTT_REFUSE_CLIENT_ID, err,
                      "empty client identifier in MQTT 3.1");
    if (!(c->flags & MQTT_CF_CLEAN))
        return refuse(c, MQTT_REFUSE_CLIENT_ID, err,
                      "empty client identifier without clean session");
    return 0;
}

static int
decode_will(struct rd *r, struct mqtt_connect *c, char *err)
{
    if (c->level == MQTT_LEVEL_5 &&
        decode_props(r, c, IN_WILL, &c->will_props, err) != 0)
        return CG_EPROTO;
    if (read_string(r, c, &c->will_topic, "will topic", err) != 0)
        return CG_EPROTO;
    if (!topic_name_ok(&c->will_topic))
        return refuse(c, MQTT_REFUSE_PROTOCOL_ERROR, err,
                      "will topic is empty or has a wildcard");
    return read_binary(r, c, &c->will_payload, "will payload", err);
}

/* Payload (3.1.3): client id, will, user name, password, nothing else. */
static int
decode_payload(struct rd *r, struct mqtt_connect *c, char *err)
{
    if (read_string(r, c, &c->client_id, "client identifier", err) != 0 ||
        check_client_id(c, err) != 0)
        return CG_EPROTO;
    if ((c->flags & MQTT_CF_WILL) && decode_will(r, c, err) != 0)
        return CG_EPROTO;
    if (c->has_username &&
        read_string(r, c, &c->username, "user name", err) != 0)
        return CG_EPROTO;
    if (c->has_password &&
        read_binary(r, c, &c->password, "password", err) != 0)
        return CG_EPROTO;
    if (r->off != r->end)
        return refuse(c, MQTT_REFUSE_MALFORMED, err,
                      "%zu bytes after the CONNECT payload", r->end - r->off);
    return 0;
}

static int
decode_body(struct rd *r, struct mqtt_connect *c, char *err)
{
    uint32_t flags, keepalive;
    if (!rd_uint(r, 1, &flags) || !rd_uint(r, 2, &keepalive))
        return refuse(c, MQTT_REFUSE_MALFORMED, err,
                      "CONNECT ends inside its variable header");
    c->flags = (uint8_t)flags;
    c->keepalive = (uint16_t)keepalive;
    if (check_flags(c, err) != 0)
        return CG_EPROTO;
    if (c->level == MQTT_LEVEL_5 &&
        decode_props(r, c, IN_CONNECT, &c->props, err) != 0)
        return CG_EPROTO;
    return decode_payload(r, c, err);
}

int
mqtt_connect_decode(const uint8_t *buf, size_t len, size_t max_packet,
                    struct mqtt_connect *out, size_t *consumed, char *err)
{
    size_t hdr = 0;
    uint32_t rl = 0;
    memset(out, 0, sizeof(*out));
    out->level = -1;
    out->connack = -1;
    *consumed = 0;
    if (err != NULL)
        err[0] = '\0';
    int rc = decode_fixed(buf, len, &hdr, &rl, out, err);
    if (rc != 0)
        return rc;
    size_t total = hdr + rl;
    struct rd r = {buf, len < total ? len : total, hdr};
    rc = decode_proto(&r, total, out, err);
    if (rc != 0)
        return rc;
    if (total > max_packet)
        return refuse(out, MQTT_REFUSE_TOO_LARGE, err,
                      "CONNECT of %zu bytes exceeds the limit of %zu", total,
                      max_packet);
    if (len < total)
        return CG_EAGAIN;
    rc = decode_body(&r, out, err);
    if (rc == 0)
        *consumed = total;
    return rc;
}

/* --- encoder ------------------------------------------------------- */

static size_t
vbi_len(size_t v)
{
    return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

static void
put_vbi(struct cg_buf *b, size_t v)
{
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        cg_buf_putc(b, (char)(v > 0 ? byte | 0x80 : byte));
    } while (v > 0);
}

static void
put_u16(struct cg_buf *b, size_t v)
{
    cg_buf_putc(b, (char)(v >> 8));
    cg_buf_putc(b, (char)(v & 0xff));
}

static void
put_lbytes(struct cg_buf *b, const struct mqtt_bytes *x)
{
    put_u16(b, x->len);
    if (x->len > 0)
        cg_buf_append(b, x->p, x->len);
}

static void
put_props(struct cg_buf *b, const struct mqtt_bytes *x)
{
    put_vbi(b, x->len);
    if (x->len > 0)
        cg_buf_append(b, x->p, x->len);
}

/* The remaining length of c, or 0 when a field is too long. */
static size_t
body_len(const struct mqtt_connect *c)
{
    bool v5 = c->level == MQTT_LEVEL_5, will = c->flags & MQTT_CF_WILL;
    const struct mqtt_bytes *f[] = {
        &c->client_id,
        will ? &c->will_topic : NULL,
        will ? &c->will_payload : NULL,
        c->has_username ? &c->username : NULL,
        c->has_password ? &c->password : NULL,
    };
    size_t n = 2 + (c->level == MQTT_LEVEL_31 ? 6 : 4) + 1 + 1 + 2;
    for (size_t i = 0; i < CG_ARRAY_LEN(f); i++) {
        if (f[i] != NULL && f[i]->len > 0xffff)
            return 0;
        n += f[i] != NULL ? 2 + f[i]->len : 0;
    }
    if (v5 && (c->props.len > MQTT_MAX_REMAINING ||
               c->will_props.len > MQTT_MAX_REMAINING))
        return 0;
    if (v5)
        n += vbi_len(c->props.len) + c->props.len;
    if (v5 && will)
        n += vbi_len(c->will_props.len) + c->will_props.len;
    return n > MQTT_MAX_REMAINING ? 0 : n;
}

int
mqtt_connect_encode(const struct mqtt_connect *c, struct cg_buf *out)
{
    if (c->level < MQTT_LEVEL_31 || c->level > MQTT_LEVEL_5)
        return CG_EINVAL;
    if (c->level < MQTT_LEVEL_5 && c->has_password && !c->has_username)
        return CG_EINVAL;
    size_t n = body_len(c);
    if (n == 0)
        return CG_ELIMIT;
    uint8_t flags =
        (uint8_t)(c->flags & ~(MQTT_CF_USERNAME | MQTT_CF_PASSWORD));
    flags |= c->has_username ? MQTT_CF_USERNAME : 0;
    flags |= c->has_password ? MQTT_CF_PASSWORD : 0;
    cg_buf_putc(out, 0x10);
    put_vbi(out, n);
    if (c->level == MQTT_LEVEL_31)
        cg_buf_append(out, "\0\6MQIsdp", 8);
    else
        cg_buf_append(out, "\0\4MQTT", 6);
    cg_buf_putc(out, (char)c->level);
    cg_buf_putc(out, (char)flags);
    put_u16(out, c->keepalive);
    if (c->level == MQTT_LEVEL_5)
        put_props(out, &c->props);
    put_lbytes(out, &c->client_id);
    if (flags & MQTT_CF_WILL) {
        if (c->level == MQTT_LEVEL_5)
            put_props(out, &c->will_props);
        put_lbytes(out, &c->will_topic);
        put_lbytes(out, &c->will_payload);
    }
    if (c->has_username)
        put_lbytes(out, &c->username);
    if (c->has_password)
        put_lbytes(out, &c->password);
    return 0;
}

void
mqtt_connack(struct cg_buf *out, int level, uint8_t code)
{
    if (level >= MQTT_LEVEL_5) {
        /* flags, reason code, property length 0 (3.2.2.3) */
        const char b[] = {0x20, 0x03, 0x00, (char)code, 0x00};
        cg_buf_append(out, b, sizeof(b));
    } else {
        const char b[] = {0x20, 0x02, 0x00, (char)code};
        cg_buf_append(out, b, sizeof(b));
    }
}
