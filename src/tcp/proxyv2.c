/*
 * PROXY protocol v2 encoder and decoder (see proxyv2.h, docs/tcp.md).
 * Constants and layouts from HAProxy's doc/proxy-protocol.txt, sections
 * 2.2 (header, addresses) and 2.2.1-2.2.8 (TLVs). Multi-byte integers are
 * big-endian; HAProxy writes pp2_tlv_ssl.verify with htonl().
 */
#include "tcp/proxyv2.h"

#include <netinet/in.h>
#include <string.h>

#include "core/err.h"

int
tcp_proxyv2_set_addrs(struct tcp_pp2 *h, const struct sockaddr *src,
                      const struct sockaddr *dst)
{
    const struct sockaddr *sa[2] = {src, dst};
    uint8_t *addr[2] = {h->src_addr, h->dst_addr};
    uint16_t *port[2] = {&h->src_port, &h->dst_port};
    bool v6 = src->sa_family == AF_INET6 || dst->sa_family == AF_INET6;
    for (int i = 0; i < 2; i++) {
        memset(addr[i], 0, 16);
        if (sa[i]->sa_family == AF_INET) {
            const struct sockaddr_in *in = (const void *)sa[i];
            uint8_t *to = addr[i];
            if (v6) { /* IPv4-mapped: ::ffff:a.b.c.d */
                to[10] = to[11] = 0xff;
                to += 12;
            }
            memcpy(to, &in->sin_addr, 4);
            *port[i] = ntohs(in->sin_port);
        } else if (sa[i]->sa_family == AF_INET6) {
            const struct sockaddr_in6 *in6 = (const void *)sa[i];
            memcpy(addr[i], &in6->sin6_addr, 16);
            *port[i] = ntohs(in6->sin6_port);
        } else {
            return CG_EINVAL;
        }
    }
    h->local = false;
    h->family = v6 ? AF_INET6 : AF_INET;
    return 0;
}

/* --- encoder ------------------------------------------------------- */

static void
put_u16(struct cg_buf *b, size_t v)
{
    cg_buf_putc(b, (char)((v >> 8) & 0xff));
    cg_buf_putc(b, (char)(v & 0xff));
}

/* Appends a TLV whose value is v (may be empty). */
static void
put_tlv(struct cg_buf *b, uint8_t type, const void *v, size_t len)
{
    cg_buf_putc(b, (char)type);
    put_u16(b, len);
    if (len > 0)
        cg_buf_append(b, v, len);
}

/* Appends a TLV of type with len 0 for now; returns where its length
 * goes, to be patched by end_tlv(). */
static size_t
begin_tlv(struct cg_buf *b, uint8_t type)
{
    cg_buf_putc(b, (char)type);
    size_t at = b->len;
    put_u16(b, 0);
    return at;
}

/* Patches the length of the TLV begun at `at`; false when > 65535. */
static bool
end_tlv(struct cg_buf *b, size_t at)
{
    size_t len = b->len - at - 2;
    if (len > 0xffff)
        return false;
    b->data[at] = (char)(len >> 8);
    b->data[at + 1] = (char)(len & 0xff);
    return true;
}

static void
put_str_tlv(struct cg_buf *b, uint8_t type, const struct cg_str *s)
{
    if (s->len > 0)
        put_tlv(b, type, s->p, s->len);
}

static bool
put_ssl(struct cg_buf *b, const struct tcp_pp2_ssl *s)
{
    size_t at = begin_tlv(b, TCP_PP2_TYPE_SSL);
    cg_buf_putc(b, (char)s->client);
    put_u16(b, s->verify >> 16);
    put_u16(b, s->verify & 0xffff);
    put_str_tlv(b, TCP_PP2_SUBTYPE_SSL_VERSION, &s->version);
    put_str_tlv(b, TCP_PP2_SUBTYPE_SSL_CN, &s->cn);
    put_str_tlv(b, TCP_PP2_SUBTYPE_SSL_CIPHER, &s->cipher);
    put_str_tlv(b, TCP_PP2_SUBTYPE_SSL_SIG_ALG, &s->sig_alg);
    put_str_tlv(b, TCP_PP2_SUBTYPE_SSL_KEY_ALG, &s->key_alg);
    return end_tlv(b, at);
}

/* A field name: [a-z0-9_]+ (so the first '=' ends it). */
static bool
name_ok(const struct cg_str *n)
{
    if (n->len == 0)
        return false;
    for (size_t i = 0; i < n->len; i++) {
        char c = n->p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

/* The certgate TLV: one sub-TLV "name=value" per field. */
static int
put_fields(struct cg_buf *b, const struct tcp_pp2 *h, char *err)
{
    size_t at = begin_tlv(b, TCP_PP2_TYPE_CERTGATE);
    for (size_t i = 0; i < h->n_fields; i++) {
        const struct tcp_pp2_field *f = &h->fields[i];
        if (!name_ok(&f->name))
            return cg_seterr(err, CG_EINVAL, "bad PROXY v2 field name");
        size_t sub = begin_tlv(b, TCP_PP2_SUBTYPE_CG_FIELD);
        cg_buf_append(b, f->name.p, f->name.len);
        cg_buf_putc(b, '=');
        if (f->value.len > 0)
            cg_buf_append(b, f->value.p, f->value.len);
        if (!end_tlv(b, sub))
            return cg_seterr(err, CG_ELIMIT, "PROXY v2 field %.*s too long",
                             (int)f->name.len, f->name.p);
    }
    if (!end_tlv(b, at))
        return cg_seterr(err, CG_ELIMIT, "PROXY v2 identity TLV too long");
    return 0;
}

/* Addresses and TLVs into body. */
static int
put_body(struct cg_buf *b, const struct tcp_pp2 *h, char *err)
{
    if (!h->local) {
        size_t n = h->family == AF_INET6 ? 16 : 4;
        cg_buf_append(b, h->src_addr, n);
        cg_buf_append(b, h->dst_addr, n);
        put_u16(b, h->src_port);
        put_u16(b, h->dst_port);
    }
    put_str_tlv(b, TCP_PP2_TYPE_ALPN, &h->alpn);
    put_str_tlv(b, TCP_PP2_TYPE_AUTHORITY, &h->authority);
    if (h->ssl.present && !put_ssl(b, &h->ssl))
        return cg_seterr(err, CG_ELIMIT, "PROXY v2 SSL TLV too long");
    if (h->n_fields > 0)
        return put_fields(b, h, err);
    return 0;
}

int
tcp_proxyv2_encode(const struct tcp_pp2 *h, struct cg_buf *out, char *err)
{
    struct cg_buf body;
    int rc = 0;
    if (!h->local && h->family != AF_INET && h->family != AF_INET6)
        return cg_seterr(err, CG_EINVAL, "PROXY v2: bad address family");
    if (h->n_fields > TCP_PP2_MAX_FIELDS)
        return cg_seterr(err, CG_ELIMIT, "PROXY v2: too many fields");
    cg_buf_init(&body);
    rc = put_body(&body, h, err);
    if (rc == 0 && body.len > TCP_PP2_MAX_BODY)
        rc = cg_seterr(err, CG_ELIMIT,
                       "PROXY v2 header of %zu bytes exceeds 65535", body.len);
    if (rc == 0) {
        uint8_t fam = h->local                ? TCP_PP2_FAM_UNSPEC
                      : h->family == AF_INET6 ? TCP_PP2_FAM_TCP6
                                              : TCP_PP2_FAM_TCP4;
        cg_buf_append(out, TCP_PP2_SIG, TCP_PP2_SIG_LEN);
        cg_buf_putc(out,
                    (char)(TCP_PP2_VERSION |
                           (h->local ? TCP_PP2_CMD_LOCAL : TCP_PP2_CMD_PROXY)));
        cg_buf_putc(out, (char)fam);
        put_u16(out, body.len);
        cg_buf_append(out, body.data, body.len);
    }
    cg_buf_cleanup(&body);
    return rc;
}

/* --- decoder ------------------------------------------------------- */

static uint32_t
get_be(const uint8_t *p, size_t n)
{
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Iterates TLVs in p[*off..end): false at the end; *bad on overrun. */
static bool
next_tlv(const uint8_t *p, size_t end, size_t *off, uint8_t *type,
         struct cg_str *v, bool *bad)
{
    if (*off >= end)
        return false;
    if (end - *off < 3 || end - *off - 3 < get_be(p + *off + 1, 2)) {
        *bad = true;
        return false;
    }
    *type = p[*off];
    v->len = get_be(p + *off + 1, 2);
    v->p = (const char *)p + *off + 3;
    *off += 3 + v->len;
    return true;
}

static int
decode_ssl(const struct cg_str *v, struct tcp_pp2_ssl *s, char *err)
{
    const uint8_t *p = (const uint8_t *)v->p;
    if (v->len < 5)
        return cg_seterr(err, CG_EPROTO, "PP2_TYPE_SSL shorter than 5");
    s->present = true;
    s->client = p[0];
    s->verify = get_be(p + 1, 4);
    size_t off = 5;
    uint8_t t;
    struct cg_str sv;
    bool bad = false;
    while (next_tlv(p, v->len, &off, &t, &sv, &bad)) {
        struct cg_str *dst = t == TCP_PP2_SUBTYPE_SSL_VERSION   ? &s->version
                             : t == TCP_PP2_SUBTYPE_SSL_CN      ? &s->cn
                             : t == TCP_PP2_SUBTYPE_SSL_CIPHER  ? &s->cipher
                             : t == TCP_PP2_SUBTYPE_SSL_SIG_ALG ? &s->sig_alg
                             : t == TCP_PP2_SUBTYPE_SSL_KEY_ALG ? &s->key_alg
                                                                : NULL;
        if (dst != NULL)
            *dst = sv;
    }
    return bad ? cg_seterr(err, CG_EPROTO, "PP2_TYPE_SSL sub-TLV overrun") : 0;
}

static int
decode_fields(const struct cg_str *v, struct tcp_pp2 *h, char *err)
{
    size_t off = 0;
    uint8_t t;
    struct cg_str sv;
    bool bad = false;
    while (next_tlv((const uint8_t *)v->p, v->len, &off, &t, &sv, &bad)) {
        if (t != TCP_PP2_SUBTYPE_CG_FIELD)
            continue;
        const char *eq = memchr(sv.p, '=', sv.len);
        struct cg_str name = {sv.p, eq != NULL ? (size_t)(eq - sv.p) : 0};
        if (eq == NULL || !name_ok(&name))
            return cg_seterr(err, CG_EPROTO, "bad certgate field sub-TLV");
        if (h->n_fields == TCP_PP2_MAX_FIELDS)
            return cg_seterr(err, CG_EPROTO, "too many certgate fields");
        h->fields[h->n_fields++] =
            (struct tcp_pp2_field){name, {eq + 1, sv.len - name.len - 1}};
    }
    return bad ? cg_seterr(err, CG_EPROTO, "certgate sub-TLV overrun") : 0;
}

/* TLVs in p[off..end); each known type at most once. */
static int
decode_tlvs(const uint8_t *p, size_t off, size_t end, struct tcp_pp2 *h,
            char *err)
{
    uint8_t t;
    struct cg_str v;
    bool bad = false, seen[256] = {false};
    while (next_tlv(p, end, &off, &t, &v, &bad)) {
        bool known = t == TCP_PP2_TYPE_ALPN || t == TCP_PP2_TYPE_AUTHORITY ||
                     t == TCP_PP2_TYPE_SSL || t == TCP_PP2_TYPE_CERTGATE;
        if (known && seen[t])
            return cg_seterr(err, CG_EPROTO, "TLV 0x%02x twice", t);
        seen[t] = true;
        int rc = 0;
        if (t == TCP_PP2_TYPE_ALPN)
            h->alpn = v;
        else if (t == TCP_PP2_TYPE_AUTHORITY)
            h->authority = v;
        else if (t == TCP_PP2_TYPE_SSL)
            rc = decode_ssl(&v, &h->ssl, err);
        else if (t == TCP_PP2_TYPE_CERTGATE)
            rc = decode_fields(&v, h, err);
        if (rc != 0)
            return rc;
    }
    return bad ? cg_seterr(err, CG_EPROTO, "TLV runs past the header") : 0;
}

/* Command and family bytes; *addr_len gets the address block size. */
static int
decode_cmd(const uint8_t *p, struct tcp_pp2 *h, size_t *addr_len, char *err)
{
    if ((p[12] & 0xf0) != TCP_PP2_VERSION)
        return cg_seterr(err, CG_EPROTO, "PROXY version is not 2");
    uint8_t cmd = p[12] & 0x0f;
    if (cmd != TCP_PP2_CMD_LOCAL && cmd != TCP_PP2_CMD_PROXY)
        return cg_seterr(err, CG_EPROTO, "unknown PROXY v2 command %u", cmd);
    h->local = cmd == TCP_PP2_CMD_LOCAL;
    if (p[13] == TCP_PP2_FAM_TCP4) {
        h->family = AF_INET;
        *addr_len = 12;
    } else if (p[13] == TCP_PP2_FAM_TCP6) {
        h->family = AF_INET6;
        *addr_len = 36;
    } else if (p[13] == TCP_PP2_FAM_UNSPEC && h->local) {
        *addr_len = 0;
    } else {
        return cg_seterr(err, CG_EPROTO, "unsupported family 0x%02x", p[13]);
    }
    return 0;
}

int
tcp_proxyv2_decode(const uint8_t *buf, size_t len, struct tcp_pp2 *out,
                   size_t *consumed, char *err)
{
    size_t addr_len = 0;
    memset(out, 0, sizeof(*out));
    *consumed = 0;
    size_t sig = len < TCP_PP2_SIG_LEN ? len : TCP_PP2_SIG_LEN;
    if (memcmp(buf, TCP_PP2_SIG, sig) != 0)
        return cg_seterr(err, CG_EPROTO, "no PROXY v2 signature");
    if (len < TCP_PP2_HDR_LEN)
        return CG_EAGAIN;
    if (decode_cmd(buf, out, &addr_len, err) != 0)
        return CG_EPROTO;
    size_t total = TCP_PP2_HDR_LEN + get_be(buf + 14, 2);
    if (total - TCP_PP2_HDR_LEN < addr_len)
        return cg_seterr(err, CG_EPROTO, "PROXY v2 length below addresses");
    if (len < total)
        return CG_EAGAIN;
    if (addr_len > 0) {
        size_t n = addr_len == 12 ? 4 : 16;
        const uint8_t *a = buf + TCP_PP2_HDR_LEN;
        memcpy(out->src_addr, a, n);
        memcpy(out->dst_addr, a + n, n);
        out->src_port = (uint16_t)get_be(a + 2 * n, 2);
        out->dst_port = (uint16_t)get_be(a + 2 * n + 2, 2);
    }
    if (decode_tlvs(buf, TCP_PP2_HDR_LEN + addr_len, total, out, err) != 0)
        return CG_EPROTO;
    *consumed = total;
    return 0;
}
