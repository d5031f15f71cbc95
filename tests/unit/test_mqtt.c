/*
 * Unit tests of src/mqtt/connect.c: CONNECT packets are written byte by
 * byte (a few literally, the rest with the small builder below), fed
 * whole and split, refused for every class of fault with the CONNACK the
 * spec asks for, and re-encoded. Mapping tests are in test_mqtt_map.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "mqtt/connect.h"

#define MAXP 4096

/* --- builder ------------------------------------------------------- */

struct cspec {
    int level;
    uint8_t flags;
    uint16_t keepalive;
    const char *props; /* raw property bytes (v5), props_len of them */
    size_t props_len;
    const char *cid;
    const char *will_props;
    size_t will_props_len;
    const char *will_topic, *will_payload; /* written when flags has WILL */
    const char *user, *pass;               /* written when non-NULL */
};

static void
put_u16(struct cg_buf *b, size_t v)
{
    cg_buf_putc(b, (char)(v >> 8));
    cg_buf_putc(b, (char)(v & 0xff));
}

static void
put_str(struct cg_buf *b, const char *s)
{
    put_u16(b, strlen(s));
    cg_buf_puts(b, s);
}

static void
put_vbi(struct cg_buf *b, size_t v)
{
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        cg_buf_putc(b, (char)(v ? byte | 0x80 : byte));
    } while (v);
}

static void
put_props(struct cg_buf *b, const char *p, size_t n)
{
    put_vbi(b, n);
    if (n > 0)
        cg_buf_append(b, p, n);
}

/* Appends the CONNECT described by s (flags taken as given). */
static void
build(struct cg_buf *out, const struct cspec *s)
{
    struct cg_buf b;
    cg_buf_init(&b);
    put_str(&b, s->level == 3 ? "MQIsdp" : "MQTT");
    cg_buf_putc(&b, (char)s->level);
    cg_buf_putc(&b, (char)s->flags);
    put_u16(&b, s->keepalive);
    if (s->level == 5)
        put_props(&b, s->props, s->props_len);
    put_str(&b, s->cid);
    if (s->flags & MQTT_CF_WILL) {
        if (s->level == 5)
            put_props(&b, s->will_props, s->will_props_len);
        put_str(&b, s->will_topic);
        put_str(&b, s->will_payload);
    }
    if (s->user != NULL)
        put_str(&b, s->user);
    if (s->pass != NULL)
        put_str(&b, s->pass);
    cg_buf_putc(out, 0x10);
    put_vbi(out, b.len);
    cg_buf_append(out, b.data, b.len);
    cg_buf_cleanup(&b);
}

/* Decodes p[0..n) whole; asserts rc and returns the decoded struct. */
static struct mqtt_connect
decode(const void *p, size_t n, size_t maxp, int want_rc)
{
    struct mqtt_connect c;
    size_t used = 99;
    char err[CG_ERR_LEN];
    int rc = mqtt_connect_decode(p, n, maxp, &c, &used, err);
    if (rc != want_rc)
        fail_msg("rc %d, want %d (%s)", rc, want_rc, err);
    if (rc == 0)
        assert_int_equal(used, n);
    if (rc == CG_EPROTO)
        assert_true(err[0] != '\0');
    return c;
}

/* Asserts the refusal and CONNACK code of a refused packet. */
static void
check_refused(const void *p, size_t n, size_t maxp, enum mqtt_refusal why,
              int connack)
{
    struct mqtt_connect c = decode(p, n, maxp, CG_EPROTO);
    if (c.refusal != why)
        fail_msg("refusal %s, want %s", mqtt_refusal_name(c.refusal),
                 mqtt_refusal_name(why));
    assert_int_equal(c.connack, connack);
}

static void
check_spec_refused(const struct cspec *s, enum mqtt_refusal why, int connack)
{
    struct cg_buf b;
    cg_buf_init(&b);
    build(&b, s);
    check_refused(b.data, b.len, MAXP, why, connack);
    cg_buf_cleanup(&b);
}

/* Asserts every strict prefix wants more bytes, the whole decodes, and
 * extra bytes after it are left alone. */
static void
check_split(const uint8_t *p, size_t n)
{
    struct mqtt_connect c;
    size_t used;
    char err[CG_ERR_LEN];
    for (size_t i = 0; i < n; i++) {
        int rc = mqtt_connect_decode(p, i, MAXP, &c, &used, err);
        if (rc != CG_EAGAIN)
            fail_msg("prefix %zu of %zu: rc %d (%s)", i, n, rc, err);
    }
    uint8_t more[1024];
    assert_true(n + 2 <= sizeof(more));
    memcpy(more, p, n);
    more[n] = 0xc0; /* PINGREQ follows */
    more[n + 1] = 0x00;
    assert_int_equal(mqtt_connect_decode(more, n + 2, MAXP, &c, &used, err), 0);
    assert_int_equal(used, n);
}

/* Asserts that decoding then encoding gives the input back. */
static void
check_roundtrip(const void *p, size_t n)
{
    struct mqtt_connect c = decode(p, n, MAXP, 0);
    struct cg_buf out;
    cg_buf_init(&out);
    assert_int_equal(mqtt_connect_encode(&c, &out), 0);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.data, p, n);
    cg_buf_cleanup(&out);
}

static void
check_bytes(const struct mqtt_bytes *b, const char *want)
{
    assert_int_equal(b->len, strlen(want));
    if (b->len > 0)
        assert_memory_equal(b->p, want, b->len);
}

/* --- valid packets -------------------------------------------------- */

/* 3.1.1, clean session, user name and password, keep-alive 60. */
static const uint8_t v311[] = {
    0x10, 0x1b,                            /* CONNECT, remaining 27 */
    0x00, 0x04, 'M',  'Q', 'T', 'T', 0x04, /* "MQTT", level 4 */
    0xc2, 0x00, 0x3c,                      /* flags, keep-alive 60 */
    0x00, 0x03, 'c',  'i', 'd',            /* client id */
    0x00, 0x04, 'u',  's', 'e', 'r',       /* user name */
    0x00, 0x04, 'p',  'a', 's', 's',       /* password */
};

/* 3.1, clean session, no will, no credentials. */
static const uint8_t v31[] = {
    0x10, 0x11, 0x00, 0x06, 'M',  'Q',  'I', 's', 'd', 'p',
    0x03, 0x02, 0x00, 0x0a, 0x00, 0x03, 'd', 'e', 'v',
};

/* 5.0 with CONNECT properties (session expiry 60, receive maximum 10, a
 * user property k=v), a QoS 1 retained will with will properties (delay
 * 5, payload format 1, content type "text"), user name, password. */
static const uint8_t v5[] = {
    0x10, 0x4a,                                     /* remaining 74 */
    0x00, 0x04, 'M',  'Q',  'T',  'T',  0x05, 0xee, /* flags u p r q1 w c */
    0x00, 0x1e,                                     /* keep-alive 30 */
    0x0f,                                           /* properties: 15 */
    0x11, 0x00, 0x00, 0x00, 0x3c,                   /* session expiry */
    0x21, 0x00, 0x0a,                               /* receive maximum */
    0x26, 0x00, 0x01, 'k',  0x00, 0x01, 'v',        /* user property */
    0x00, 0x04, 'd',  'e',  'v',  '5',              /* client id */
    0x0e,                                           /* will properties 14 */
    0x18, 0x00, 0x00, 0x00, 0x05,                   /* will delay */
    0x01, 0x01,                                     /* payload format */
    0x03, 0x00, 0x04, 't',  'e',  'x',  't',        /* content type */
    0x00, 0x05, 'w',  '/',  'o',  'u',  't',        /* will topic */
    0x00, 0x03, 'b',  'y',  'e',                    /* will payload */
    0x00, 0x05, 'a',  'l',  'i',  'c',  'e',        /* user name */
    0x00, 0x06, 's',  'e',  'c',  'r',  'e',  't',  /* password */
};

static void
test_v311(void **state)
{
    (void)state;
    struct mqtt_connect c = decode(v311, sizeof(v311), MAXP, 0);
    assert_int_equal(c.level, 4);
    assert_int_equal(c.flags, 0xc2);
    assert_int_equal(c.keepalive, 60);
    check_bytes(&c.client_id, "cid");
    assert_true(c.has_username && c.has_password);
    check_bytes(&c.username, "user");
    check_bytes(&c.password, "pass");
    assert_int_equal(c.refusal, MQTT_REFUSE_NONE);
    check_split(v311, sizeof(v311));
    check_roundtrip(v311, sizeof(v311));
}

static void
test_v31(void **state)
{
    (void)state;
    struct mqtt_connect c = decode(v31, sizeof(v31), MAXP, 0);
    assert_int_equal(c.level, 3);
    assert_int_equal(c.keepalive, 10);
    check_bytes(&c.client_id, "dev");
    assert_false(c.has_username || c.has_password);
    check_split(v31, sizeof(v31));
    check_roundtrip(v31, sizeof(v31));
}

static void
test_v5(void **state)
{
    (void)state;
    struct mqtt_connect c = decode(v5, sizeof(v5), MAXP, 0);
    assert_int_equal(c.level, 5);
    assert_int_equal(c.keepalive, 30);
    assert_int_equal(c.props.len, 15);
    assert_memory_equal(c.props.p, v5 + 13, 15);
    check_bytes(&c.client_id, "dev5");
    assert_int_equal(c.will_props.len, 14);
    assert_memory_equal(c.will_props.p, v5 + 35, 14);
    check_bytes(&c.will_topic, "w/out");
    check_bytes(&c.will_payload, "bye");
    check_bytes(&c.username, "alice");
    check_bytes(&c.password, "secret");
    assert_false(c.has_auth_method);
    check_split(v5, sizeof(v5));
    check_roundtrip(v5, sizeof(v5));
}

/* Credentials combinations and properties that are valid. */
static void
test_variants(void **state)
{
    (void)state;
    static const char auth[] = "\x15\x00\x03JWT\x16\x00\x02\x01\x02"
                               "\x26\x00\x01k\x00\x00\x26\x00\x01k\x00\x00"
                               "\x27\x00\x00\x10\x00\x22\x00\x05\x19\x01"
                               "\x17\x00";
    const struct cspec specs[] = {
        {.level = 4, .flags = 0x02, .cid = ""},
        {.level = 4, .flags = 0x82, .cid = "a", .user = ""},
        {.level = 5, .flags = 0x40, .cid = "", .pass = "p"},
        {.level = 5,
         .flags = 0x00,
         .cid = "",
         .props = auth,
         .props_len = sizeof(auth) - 1},
        {.level = 3, .flags = 0xc0, .cid = "x", .user = "u", .pass = ""},
        {.level = 4,
         .flags = 0x2c,
         .cid = "w",
         .will_topic = "t",
         .will_payload = ""},
        {.level = 4, .flags = 0x02, .cid = "Zo\xc3\xab \xf0\x9f\x98\x80"},
    };
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        struct cg_buf b;
        cg_buf_init(&b);
        build(&b, &specs[i]);
        struct mqtt_connect c = decode(b.data, b.len, MAXP, 0);
        if (i == 3) {
            assert_true(c.has_auth_method);
            check_bytes(&c.auth_method, "JWT");
        }
        check_split((const uint8_t *)b.data, b.len);
        check_roundtrip(b.data, b.len);
        cg_buf_cleanup(&b);
    }
}

/* --- refusals ------------------------------------------------------- */

static void
test_refuse_fixed_header(void **state)
{
    (void)state;
    static const uint8_t publish[] = {0x30, 0x02, 0x00, 0x00};
    static const uint8_t flags[] = {0x12, 0x00};
    static const uint8_t rl5[] = {0x10, 0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t rl_min[] = {0x10, 0x80, 0x00};
    static const uint8_t rl_min2[] = {0x10, 0x9b, 0x80, 0x00};
    check_refused(publish, 1, MAXP, MQTT_REFUSE_NOT_CONNECT, -1);
    check_refused(flags, 2, MAXP, MQTT_REFUSE_MALFORMED, -1);
    check_refused(rl5, sizeof(rl5), MAXP, MQTT_REFUSE_MALFORMED, -1);
    check_refused(rl_min, sizeof(rl_min), MAXP, MQTT_REFUSE_MALFORMED, -1);
    check_refused(rl_min2, sizeof(rl_min2), MAXP, MQTT_REFUSE_MALFORMED, -1);
    /* four bytes of continuation: still waiting only up to four */
    decode(rl5, 4, MAXP, CG_EAGAIN);
    decode(rl5, 0, MAXP, CG_EAGAIN);
}

/* Over max_packet: refused once the protocol header is in, before the
 * rest arrives; 5.0 gets 0x95, 3.x a bare close. */
static void
test_refuse_too_large(void **state)
{
    (void)state;
    check_refused(v311, sizeof(v311), sizeof(v311) - 1, MQTT_REFUSE_TOO_LARGE,
                  -1);
    check_refused(v311, 9, 20, MQTT_REFUSE_TOO_LARGE, -1);
    decode(v311, 8, 20, CG_EAGAIN);
    check_refused(v5, 9, 20, MQTT_REFUSE_TOO_LARGE, 0x95);
    decode(v5, sizeof(v5), sizeof(v5), 0);
    /* a 256 MB remaining length with a 4 KB limit */
    static const uint8_t big[] = {0x10, 0xff, 0xff, 0xff, 0x7f, 0x00,
                                  0x04, 'M',  'Q',  'T',  'T',  0x05};
    check_refused(big, sizeof(big), MAXP, MQTT_REFUSE_TOO_LARGE, 0x95);
}

static void
test_refuse_protocol(void **state)
{
    (void)state;
    static const uint8_t name[] = {0x10, 0x0a, 0x00, 0x04, 'M',  'Q',
                                   'T',  'X',  0x04, 0x02, 0x00, 0x00};
    static const uint8_t len5[] = {0x10, 0x0a, 0x00, 0x05, 'M', 'Q'};
    static const uint8_t mqtt3[] = {0x10, 0x0a, 0x00, 0x04, 'M',  'Q',
                                    'T',  'T',  0x03, 0x02, 0x00, 0x00};
    static const uint8_t mqtt6[] = {0x10, 0x0a, 0x00, 0x04, 'M',  'Q',
                                    'T',  'T',  0x06, 0x02, 0x00, 0x00};
    static const uint8_t isdp4[] = {0x10, 0x0c, 0x00, 0x06, 'M',  'Q',  'I',
                                    's',  'd',  'p',  0x04, 0x02, 0x00, 0x00};
    static const uint8_t tiny[] = {0x10, 0x03, 0x00, 0x04, 'M'};
    check_refused(name, sizeof(name), MAXP, MQTT_REFUSE_PROTOCOL_NAME, -1);
    check_refused(len5, sizeof(len5), MAXP, MQTT_REFUSE_PROTOCOL_NAME, -1);
    check_refused(mqtt3, 9, MAXP, MQTT_REFUSE_VERSION, 0x01);
    check_refused(mqtt6, 9, MAXP, MQTT_REFUSE_VERSION, 0x84);
    check_refused(isdp4, 11, MAXP, MQTT_REFUSE_VERSION, 0x01);
    check_refused(tiny, sizeof(tiny), MAXP, MQTT_REFUSE_MALFORMED, -1);
    /* judged as soon as the level byte is in */
    decode(mqtt6, 8, MAXP, CG_EAGAIN);
}

static void
test_refuse_flags(void **state)
{
    (void)state;
    const struct cspec base = {.level = 4, .cid = "c"};
    struct cspec s = base;
    s.flags = 0x03; /* reserved */
    check_spec_refused(&s, MQTT_REFUSE_MALFORMED, -1);
    s.level = 5;
    check_spec_refused(&s, MQTT_REFUSE_MALFORMED, 0x81);
    s = base;
    s.flags = 0x1e; /* will QoS 3 */
    s.will_topic = "t";
    s.will_payload = "";
    check_spec_refused(&s, MQTT_REFUSE_MALFORMED, -1);
    s.flags = 0x0a; /* QoS 1 without will */
    check_spec_refused(&s, MQTT_REFUSE_MALFORMED, -1);
    s.flags = 0x22; /* retain without will */
    check_spec_refused(&s, MQTT_REFUSE_MALFORMED, -1);
    s = base;
    s.flags = 0x42; /* password without user name */
    s.pass = "p";
    check_spec_refused(&s, MQTT_REFUSE_PROTOCOL_ERROR, -1);
    s.level = 3;
    check_spec_refused(&s, MQTT_REFUSE_PROTOCOL_ERROR, -1);
}

static void
test_refuse_utf8(void **state)
{
    (void)state;
    const char *bad[] = {
        "a\xc0\x80",        /* overlong NUL */
        "\xed\xa0\x80",     /* surrogate U+D800 */
        "\xff",             /* not UTF-8 */
        "\xe2\x82",         /* truncated sequence */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cspec s = {
            .level = 4, .flags = 0x82, .cid = bad[i], .user = "u"};
        check_spec_refused(&s, MQTT_REFUSE_BAD_UTF8, -1);
        s.cid = "c";
        s.user = bad[i];
        s.level = 5;
        check_spec_refused(&s, MQTT_REFUSE_BAD_UTF8, 0x81);
        struct cspec w = {.level = 4,
                          .flags = 0x06,
                          .cid = "c",
                          .will_topic = bad[i],
                          .will_payload = ""};
        check_spec_refused(&w, MQTT_REFUSE_BAD_UTF8, -1);
    }
    /* NUL inside a string (U+0000 is never allowed) */
    static const uint8_t nul[] = {0x10, 0x0f, 0x00, 0x04, 'M',  'Q',
                                  'T',  'T',  0x04, 0x02, 0x00, 0x00,
                                  0x00, 0x03, 'a',  0x00, 'b'};
    check_refused(nul, sizeof(nul), MAXP, MQTT_REFUSE_BAD_UTF8, -1);
}

static void
test_refuse_client_id_and_topic(void **state)
{
    (void)state;
    struct cspec s = {.level = 3, .flags = 0x02, .cid = ""};
    check_spec_refused(&s, MQTT_REFUSE_CLIENT_ID, 0x02);
    s.level = 4;
    s.flags = 0x00;
    check_spec_refused(&s, MQTT_REFUSE_CLIENT_ID, 0x02);
    const char *topics[] = {"", "a/+", "#", "a/#"};
    for (size_t i = 0; i < 4; i++) {
        struct cspec w = {.level = 5,
                          .flags = 0x06,
                          .cid = "c",
                          .will_topic = topics[i],
                          .will_payload = "x"};
        check_spec_refused(&w, MQTT_REFUSE_PROTOCOL_ERROR, 0x82);
    }
}

/* Payload fields past the remaining length, or bytes left after them. */
static void
test_refuse_lengths(void **state)
{
    (void)state;
    uint8_t p[sizeof(v311) + 1];
    memcpy(p, v311, sizeof(v311));
    p[1] = 0x1a; /* one byte short: password runs past the end */
    check_refused(p, sizeof(v311) - 1, MAXP, MQTT_REFUSE_MALFORMED, -1);
    p[1] = 0x1c; /* one byte more than the fields */
    p[sizeof(v311)] = 'x';
    check_refused(p, sizeof(p), MAXP, MQTT_REFUSE_MALFORMED, -1);
    p[1] = 0x09; /* ends inside the variable header */
    check_refused(p, 11, MAXP, MQTT_REFUSE_MALFORMED, -1);
    uint8_t q[sizeof(v5)];
    memcpy(q, v5, sizeof(v5));
    q[12] = 0x7f; /* CONNECT property length past the end */
    check_refused(q, sizeof(q), MAXP, MQTT_REFUSE_MALFORMED, 0x81);
}

/* A v5 CONNECT with these CONNECT (or will) properties. */
static void
check_props(const char *p, size_t n, bool will, enum mqtt_refusal why,
            int connack)
{
    struct cspec s = {.level = 5,
                      .flags = will ? 0x06 : 0x00,
                      .cid = "c",
                      .will_topic = "t",
                      .will_payload = ""};
    if (will) {
        s.will_props = p;
        s.will_props_len = n;
    } else {
        s.props = p;
        s.props_len = n;
    }
    if (why == MQTT_REFUSE_NONE) {
        struct cg_buf b;
        cg_buf_init(&b);
        build(&b, &s);
        check_roundtrip(b.data, b.len);
        cg_buf_cleanup(&b);
        return;
    }
    check_spec_refused(&s, why, connack);
}
#define PROPS(lit, will, why, code)                                            \
    check_props(lit, sizeof(lit) - 1, will, why, code)

static void
test_refuse_properties(void **state)
{
    (void)state;
    const enum mqtt_refusal M = MQTT_REFUSE_MALFORMED,
                            P = MQTT_REFUSE_PROTOCOL_ERROR,
                            U = MQTT_REFUSE_BAD_UTF8, OK = MQTT_REFUSE_NONE;
    PROPS("\x11\0\0\0\1\x11\0\0\0\2", false, P, 0x82); /* twice */
    PROPS("\x15\0\1a\x15\0\1b", false, P, 0x82);
    PROPS("\x01\x01", false, M, 0x81);       /* will-only in CONNECT */
    PROPS("\x11\0\0\0\1", true, M, 0x81);    /* CONNECT-only in will */
    PROPS("\x7f", false, M, 0x81);           /* unknown identifier */
    PROPS("\x80\x00", false, M, 0x81);       /* non-minimal identifier */
    PROPS("\x11\0\0", false, M, 0x81);       /* value past the list */
    PROPS("\x26\0\1k\0\5v", false, M, 0x81); /* string past the list */
    PROPS("\x21\0\0", false, P, 0x82);       /* receive maximum 0 */
    PROPS("\x27\0\0\0\0", false, P, 0x82);   /* maximum packet size 0 */
    PROPS("\x19\x02", false, P, 0x82);       /* request response 2 */
    PROPS("\x17\x02", false, P, 0x82);       /* request problem 2 */
    PROPS("\x01\x02", true, P, 0x82);        /* payload format 2 */
    PROPS("\x16\0\1x", false, P, 0x82);      /* data without method */
    PROPS("\x15\0\2\xc3\x28", false, U, 0x81);
    PROPS("\x26\0\1\xff\0\0", true, U, 0x81);
    PROPS("\x08\0\3a/#", true, P, 0x82); /* response topic wildcard */
    PROPS("\x26\0\1k\0\1v\x26\0\1k\0\1v", true, OK, -1);
    PROPS("\x09\0\0\x08\0\1r\x02\0\0\0\x09", true, OK, -1);
    /* property length as a 5-byte / non-minimal VBI */
    static const uint8_t vbi[] = {0x10, 0x10, 0x00, 0x04, 'M',  'Q',
                                  'T',  'T',  0x05, 0x00, 0x00, 0x00,
                                  0x80, 0x80, 0x80, 0x80, 0x01, 0x00};
    check_refused(vbi, sizeof(vbi), MAXP, M, 0x81);
    static const uint8_t vbi2[] = {0x10, 0x0f, 0x00, 0x04, 'M',  'Q',
                                   'T',  'T',  0x05, 0x00, 0x00, 0x00,
                                   0x80, 0x00, 0x00, 0x01, 'c'};
    check_refused(vbi2, sizeof(vbi2), MAXP, M, 0x81);
}

/* --- encoder -------------------------------------------------------- */

/* v311 with the user name replaced by "device-42" and the client id by
 * "d42": lengths recomputed, everything else identical. */
static void
test_encode_replace(void **state)
{
    (void)state;
    static const uint8_t want[] = {
        0x10, 0x20, 0x00, 0x04, 'M',  'Q',  'T',  'T', 0x04, 0xc2, 0x00, 0x3c,
        0x00, 0x03, 'd',  '4',  '2',  0x00, 0x09, 'd', 'e',  'v',  'i',  'c',
        'e',  '-',  '4',  '2',  0x00, 0x04, 'p',  'a', 's',  's',
    };
    struct mqtt_connect c = decode(v311, sizeof(v311), MAXP, 0);
    c.username = (struct mqtt_bytes){(const uint8_t *)"device-42", 9};
    c.client_id = (struct mqtt_bytes){(const uint8_t *)"d42", 3};
    struct cg_buf out;
    cg_buf_init(&out);
    assert_int_equal(mqtt_connect_encode(&c, &out), 0);
    assert_int_equal(out.len, sizeof(want));
    assert_memory_equal(out.data, want, sizeof(want));
    /* the result decodes to the replaced values */
    struct mqtt_connect d = decode(out.data, out.len, MAXP, 0);
    check_bytes(&d.username, "device-42");
    check_bytes(&d.client_id, "d42");
    cg_buf_cleanup(&out);
}

/* A user name added to a CONNECT without one (flag set), and a long one
 * that takes the remaining length to two bytes; v5 properties, will and
 * password stay byte-identical. */
static void
test_encode_add_and_grow(void **state)
{
    (void)state;
    static const uint8_t want31[] = {
        0x10, 0x16, 0x00, 0x06, 'M', 'Q', 'I', 's',  'd',  'p', 0x03, 0x82,
        0x00, 0x0a, 0x00, 0x03, 'd', 'e', 'v', 0x00, 0x03, 'b', 'o',  'b',
    };
    struct mqtt_connect c = decode(v31, sizeof(v31), MAXP, 0);
    c.has_username = true;
    c.username = (struct mqtt_bytes){(const uint8_t *)"bob", 3};
    struct cg_buf out;
    cg_buf_init(&out);
    assert_int_equal(mqtt_connect_encode(&c, &out), 0);
    assert_int_equal(out.len, sizeof(want31));
    assert_memory_equal(out.data, want31, sizeof(want31));

    char name[200];
    memset(name, 'n', sizeof(name));
    c = decode(v5, sizeof(v5), MAXP, 0);
    c.username = (struct mqtt_bytes){(const uint8_t *)name, sizeof(name)};
    cg_buf_reset(&out);
    assert_int_equal(mqtt_connect_encode(&c, &out), 0);
    size_t rl = sizeof(v5) - 2 - 5 + sizeof(name); /* 269 */
    assert_int_equal(out.len, 3 + rl);
    assert_int_equal((uint8_t)out.data[1], 0x80 | (rl & 0x7f));
    assert_int_equal((uint8_t)out.data[2], rl >> 7);
    /* up to the user name: v5's bytes after its fixed header */
    assert_memory_equal(out.data + 3, v5 + 2, sizeof(v5) - 2 - 7 - 8);
    /* the password after the new name */
    assert_memory_equal(out.data + out.len - 8, v5 + sizeof(v5) - 8, 8);
    cg_buf_cleanup(&out);
}

static void
test_encode_errors(void **state)
{
    (void)state;
    struct mqtt_connect c = decode(v311, sizeof(v311), MAXP, 0);
    struct cg_buf out;
    cg_buf_init(&out);
    c.has_username = false;
    assert_int_equal(mqtt_connect_encode(&c, &out), CG_EINVAL);
    c.has_username = true;
    static uint8_t big[70000];
    c.username = (struct mqtt_bytes){big, sizeof(big)};
    assert_int_equal(mqtt_connect_encode(&c, &out), CG_ELIMIT);
    c.username.len = 65535;
    assert_int_equal(mqtt_connect_encode(&c, &out), 0);
    assert_int_equal(out.len, 1 + 3 + 10 + 5 + 2 + 65535 + 6);
    c.level = 6;
    assert_int_equal(mqtt_connect_encode(&c, &out), CG_EINVAL);
    cg_buf_cleanup(&out);
}

static void
test_connack(void **state)
{
    (void)state;
    struct cg_buf b;
    cg_buf_init(&b);
    mqtt_connack(&b, 4, MQTT_RC_BAD_USERNAME_PASSWORD);
    assert_memory_equal(b.data, "\x20\x02\x00\x04", 4);
    assert_int_equal(b.len, 4);
    cg_buf_reset(&b);
    mqtt_connack(&b, 3, MQTT_RC_IDENTIFIER_REJECTED);
    assert_memory_equal(b.data, "\x20\x02\x00\x02", 4);
    cg_buf_reset(&b);
    mqtt_connack(&b, 5, MQTT5_RC_NOT_AUTHORIZED);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, "\x20\x03\x00\x87\x00", 5);
    cg_buf_reset(&b);
    mqtt_connack(&b, 6, MQTT5_RC_UNSUPPORTED_VERSION);
    assert_memory_equal(b.data, "\x20\x03\x00\x84\x00", 5);
    cg_buf_cleanup(&b);
}

static void
test_refusal_codes(void **state)
{
    (void)state;
    assert_int_equal(mqtt_refusal_code(MQTT_REFUSE_BAD_CREDENTIALS, 4), 0x04);
    assert_int_equal(mqtt_refusal_code(MQTT_REFUSE_BAD_CREDENTIALS, 5), 0x86);
    assert_int_equal(mqtt_refusal_code(MQTT_REFUSE_NOT_AUTHORIZED, 3), 0x05);
    assert_int_equal(mqtt_refusal_code(MQTT_REFUSE_NOT_AUTHORIZED, 5), 0x87);
    assert_int_equal(mqtt_refusal_code(MQTT_REFUSE_BAD_AUTH_METHOD, 5), 0x8c);
    assert_int_equal(mqtt_refusal_code(MQTT_REFUSE_UNAVAILABLE, 4), 0x03);
    assert_int_equal(mqtt_refusal_code(MQTT_REFUSE_MALFORMED, 4), -1);
    assert_int_equal(mqtt_refusal_code(MQTT_REFUSE_MALFORMED, -1), -1);
    assert_int_equal(mqtt_refusal_code(MQTT_REFUSE_NONE, 5), -1);
    assert_string_equal(mqtt_refusal_name(MQTT_REFUSE_TOO_LARGE), "too_large");
    assert_string_equal(mqtt_refusal_name(MQTT_REFUSE_COUNT), "unknown");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v311),
        cmocka_unit_test(test_v31),
        cmocka_unit_test(test_v5),
        cmocka_unit_test(test_variants),
        cmocka_unit_test(test_refuse_fixed_header),
        cmocka_unit_test(test_refuse_too_large),
        cmocka_unit_test(test_refuse_protocol),
        cmocka_unit_test(test_refuse_flags),
        cmocka_unit_test(test_refuse_utf8),
        cmocka_unit_test(test_refuse_client_id_and_topic),
        cmocka_unit_test(test_refuse_lengths),
        cmocka_unit_test(test_refuse_properties),
        cmocka_unit_test(test_encode_replace),
        cmocka_unit_test(test_encode_add_and_grow),
        cmocka_unit_test(test_encode_errors),
        cmocka_unit_test(test_connack),
        cmocka_unit_test(test_refusal_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
