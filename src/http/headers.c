/*
 * Header policy helpers: the strip set, hop-by-hop names, token lists,
 * safe values and Host normalisation. Pure functions over bytes.
 */
#include "http/headers.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"
#include "core/xmalloc.h"

#define HOST_MAX 253 /* DNS name without the trailing dot */

struct http_strip_set {
    char **names; /* folded: lowercase, '_' as '-' */
    size_t n, cap;
};

/* Folds one byte for strip-set comparison. */
static unsigned char
fold(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return (unsigned char)(c - 'A' + 'a');
    return c == '_' ? '-' : c;
}

struct http_strip_set *
http_strip_set_new(void)
{
    return xcalloc(1, sizeof(struct http_strip_set));
}

void
http_strip_set_free(struct http_strip_set *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->names[i]);
    free(s->names);
    free(s);
}

void
http_strip_set_add(struct http_strip_set *s, const char *name)
{
    size_t len = strlen(name);
    if (http_strip_set_has(s, name, len))
        return;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 8;
        s->names = xrealloc(s->names, s->cap * sizeof(*s->names));
    }
    char *f = xstrndup(name, len);
    for (size_t i = 0; i < len; i++)
        f[i] = (char)fold((unsigned char)f[i]);
    s->names[s->n++] = f;
}

bool
http_strip_set_has(const struct http_strip_set *s, const char *name, size_t len)
{
    for (size_t i = 0; i < s->n; i++) {
        const char *f = s->names[i];
        size_t j = 0;
        while (j < len && f[j] != '\0' &&
               (unsigned char)f[j] == fold((unsigned char)name[j]))
            j++;
        if (j == len && f[j] == '\0')
            return true;
    }
    return false;
}

bool
http_is_hop_by_hop(const char *name, size_t len)
{
    static const char *const hop[] = {
        "connection",         "keep-alive", "proxy-connection",
        "proxy-authenticate", "te",         "trailer",
        "transfer-encoding",  "upgrade",    "proxy-authorization",
    };
    for (size_t i = 0; i < CG_ARRAY_LEN(hop); i++) {
        if (cg_str_ieq(name, len, hop[i], strlen(hop[i])))
            return true;
    }
    return false;
}

bool
http_value_has_token(const char *v, size_t len, const char *token)
{
    size_t tlen = strlen(token);
    size_t i = 0;
    while (i < len) {
        size_t s = i;
        while (i < len && v[i] != ',')
            i++;
        size_t e = i;
        while (s < e && (v[s] == ' ' || v[s] == '\t'))
            s++;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (cg_str_ieq(v + s, e - s, token, tlen))
            return true;
        i++; /* skip the comma */
    }
    return false;
}

/* Whether any of the 8 bytes at p is one http_value_append_safe escapes
 * anywhere: below 0x20, 0x7f or '%' (bit tricks for "a byte below n" and
 * "a byte equal to n", exact as to whether there is one). */
static inline bool
word_needs_escape(const char *p)
{
    const uint64_t ones = 0x0101010101010101u, highs = ones << 7;
    uint64_t w;
    memcpy(&w, p, 8);
    uint64_t del = w ^ (ones * 0x7f), pct = w ^ (ones * '%');
    uint64_t ctl = (w - ones * 0x20) & ~w & highs;
    uint64_t is_del = (del - ones) & ~del & highs;
    uint64_t is_pct = (pct - ones) & ~pct & highs;
    return (ctl | is_del | is_pct) != 0;
}

void
http_value_append_safe(struct cg_buf *out, const char *v, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t lead = 0, trail = len, run = 0;
    while (lead < len && v[lead] == ' ')
        lead++;
    while (trail > lead && v[trail - 1] == ' ')
        trail--;
    cg_buf_reserve(out, len);
    /* runs of bytes kept as they are are copied at once, found 8 at a
     * time between the edge spaces (per request, for every identity
     * header, a whole certificate among them: the keep-alive hot path) */
    for (size_t i = 0; i < len; i++) {
        while (i >= lead && i + 8 <= trail && !word_needs_escape(v + i))
            i += 8;
        if (i == len)
            break;
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7f || c == '%' ||
            (c == ' ' && (i < lead || i >= trail))) {
            char e[3] = {'%', hex[c >> 4], hex[c & 0xf]};
            cg_buf_append(out, v + run, i - run);
            cg_buf_append(out, e, sizeof(e));
            run = i + 1;
        }
    }
    cg_buf_append(out, v + run, len - run);
}

/* Port after ':' : digits only, at most 65535; empty is allowed. */
static bool
port_ok(const char *p, size_t n)
{
    unsigned long v = 0;
    if (n > 5)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(p[i] - '0');
    }
    return v <= 65535;
}

/* "[v6]" literal at in (len covers up to ']'); appends it lowercased. */
static bool
host_v6(const char *in, size_t len, struct cg_buf *out)
{
    char addr[INET6_ADDRSTRLEN];
    unsigned char bin[16];
    size_t n = len - 2; /* without the brackets */

    if (n == 0 || n >= sizeof(addr))
        return false;
    for (size_t i = 0; i < n; i++)
        addr[i] = (char)fold((unsigned char)in[1 + i]);
    addr[n] = '\0';
    if (inet_pton(AF_INET6, addr, bin) != 1)
        return false;
    cg_buf_putc(out, '[');
    cg_buf_append(out, addr, n);
    cg_buf_putc(out, ']');
    return true;
}

/* A DNS name or IPv4 address: letters, digits, '-', '_', non-empty
 * labels; appended lowercased. */
static bool
host_name(const char *in, size_t len, struct cg_buf *out)
{
    if (len > 0 && in[len - 1] == '.')
        len--; /* one trailing dot: the same host */
    if (len == 0 || len > HOST_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     (c >= '0' && c <= '9');
        if (c == '.') {
            if (i == 0 || in[i - 1] == '.' || i == len - 1)
                return false; /* empty label */
        } else if (!alnum && c != '-' && c != '_') {
            return false; /* '@', '/', spaces, CTLs, '%', ... */
        }
    }
    size_t start = out->len;
    cg_buf_append(out, in, len);
    for (size_t i = start; i < out->len; i++) {
        unsigned char c = (unsigned char)out->data[i];
        if (c >= 'A' && c <= 'Z')
            out->data[i] = (char)(c - 'A' + 'a');
    }
    return true;
}

/* Appends the normalised host to out; out is left as it was on false. */
bool
http_host_normalize(const char *in, size_t len, struct cg_buf *out)
{
    size_t host_len = len;
    const char *colon;
    size_t start = out->len;
    bool ok;

    if (len > 0 && in[0] == '[') {
        const char *rb = memchr(in, ']', len);
        if (rb == NULL)
            return false;
        host_len = (size_t)(rb - in) + 1;
        if (host_len < len && in[host_len] != ':')
            return false;
    } else if ((colon = memchr(in, ':', len)) != NULL) {
        host_len = (size_t)(colon - in);
    }
    if (host_len < len && !port_ok(in + host_len + 1, len - host_len - 1))
        return false;
    if (len > 0 && in[0] == '[')
        ok = host_v6(in, host_len, out);
    else
        ok = host_name(in, host_len, out);
    if (!ok) {
        out->len = start;
        if (out->data != NULL)
            out->data[start] = '\0';
    }
    return ok;
}

/* Removes the last segment of out (back to its leading '/'). */
static bool
pop_segment(struct cg_buf *out, size_t base)
{
    if (out->len <= base)
        return false; /* above the root */
    while (out->len > base && out->data[out->len - 1] != '/')
        out->len--;
    if (out->len > base)
        out->len--; /* the '/' before the popped segment */
    return true;
}

/* Decodes %2E to '.'; refuses encoded separators and NUL. */
static bool
decode_path(const char *in, size_t len, struct cg_buf *seg)
{
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '\\')
            return false;
        if (c == '%' && i + 2 < len) {
            char h[3] = {in[i + 1], in[i + 2], 0};
            if (strcasecmp(h, "2e") == 0) {
                cg_buf_putc(seg, '.');
                i += 2;
                continue;
            }
            if (strcasecmp(h, "2f") == 0 || strcasecmp(h, "5c") == 0 ||
                strcmp(h, "00") == 0)
                return false;
        }
        cg_buf_putc(seg, c);
    }
    return true;
}

bool
http_path_normalize(const char *in, size_t len, struct cg_buf *out)
{
    const char *q = memchr(in, '?', len);
    size_t plen = q ? (size_t)(q - in) : len;
    if (plen == 0 || in[0] != '/')
        return false;
    struct cg_buf path;
    cg_buf_init(&path);
    bool ok = decode_path(in, plen, &path);
    size_t base = out->len;
    const char *p = path.data, *end = path.data + path.len;
    while (ok && p < end) {
        while (p < end && *p == '/')
            p++;
        const char *e = memchr(p, '/', (size_t)(end - p));
        if (e == NULL)
            e = end;
        size_t n = (size_t)(e - p);
        bool last = e == end;
        if (n == 1 && p[0] == '.') {
            if (last)
                cg_buf_putc(out, '/');
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            ok = pop_segment(out, base);
            if (ok && last)
                cg_buf_putc(out, '/');
        } else if (n > 0) {
            cg_buf_putc(out, '/');
            cg_buf_append(out, p, n);
        } else if (last &&
                   (out->len == base || out->data[out->len - 1] != '/')) {
            cg_buf_putc(out, '/'); /* keep a trailing slash */
        }
        p = e;
    }
    cg_buf_cleanup(&path);
    if (!ok) {
        out->len = base;
        return false;
    }
    if (out->len == base)
        cg_buf_putc(out, '/');
    if (q != NULL)
        cg_buf_append(out, q, len - plen);
    cg_buf_cstr(out);
    return true;
}

/* Splits an absolute-form target into host (out) and origin-form path. */
bool
http_target_split_absolute(struct cg_str t, struct cg_str *authority,
                           struct cg_str *path)
{
    size_t skip;
    if (t.len >= 7 && cg_str_ieq(t.p, 7, "http://", 7))
        skip = 7;
    else if (t.len >= 8 && cg_str_ieq(t.p, 8, "https://", 8))
        skip = 8;
    else
        return false;
    const char *a = t.p + skip, *end = t.p + t.len;
    const char *slash = a;
    while (slash < end && *slash != '/' && *slash != '?')
        slash++;
    *authority = (struct cg_str){a, (size_t)(slash - a)};
    *path = slash < end ? (struct cg_str){slash, (size_t)(end - slash)}
                        : CG_STR("/");
    return true;
}

/* q of the Accept media range that best matches type/sub, -1 if none;
 * *spec gets 2 exact, 1 type/ *, 0 * / *. */
static double
accept_q(struct cg_str v, const char *type, const char *sub)
{
    double best = -1;
    int best_spec = -1;
    const char *p = v.p, *end = v.p + v.len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        const char *semi = memchr(p, ';', (size_t)(e - p));
        const char *re = semi ? semi : e;
        while (p < re && (*p == ' ' || *p == '\t'))
            p++;
        while (re > p && (re[-1] == ' ' || re[-1] == '\t'))
            re--;
        char range[64];
        size_t n = (size_t)(re - p) < sizeof(range) - 1 ? (size_t)(re - p)
                                                        : sizeof(range) - 1;
        memcpy(range, p, n);
        range[n] = '\0';
        double q = 1.0;
        const char *qp =
            semi ? memmem(semi, (size_t)(e - semi), "q=", 2) : NULL;
        if (qp != NULL)
            q = strtod(qp + 2, NULL);
        char want[64];
        snprintf(want, sizeof(want), "%s/%s", type, sub);
        int spec = -1;
        if (strcasecmp(range, want) == 0)
            spec = 2;
        else if (strncasecmp(range, type, strlen(type)) == 0 &&
                 strcmp(range + strlen(type), "/*") == 0)
            spec = 1;
        else if (strcmp(range, "*/*") == 0)
            spec = 0;
        if (spec > best_spec) {
            best_spec = spec;
            best = q;
        }
        p = comma ? comma + 1 : end;
    }
    return best;
}

bool
http_accept_prefers_json(const char *v, size_t len)
{
    struct cg_str s = {v, len};
    double json = accept_q(s, "application", "json");
    double html = accept_q(s, "text", "html");
    return json > 0 && json > html;
}
