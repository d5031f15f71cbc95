/*
 * The checks certgate adds on top of llhttp 8.1 strict (see parse.c for
 * the list of what llhttp lets through): a scanner over the head and
 * trailer bytes llhttp consumed (CRLF line endings, obs-fold, the shape of
 * the start line), the per-header checks run when a header value is
 * complete, and the head checks run at on_headers_complete (version,
 * CONNECT, target form, Host, Content-Length/Transfer-Encoding, Expect).
 * Errors are recorded with http_parser_fail().
 */
#include "http/parse_int.h"

#include <stdint.h>
#include <string.h>

#include "core/util.h"

/* ---- line scanner ---- */

void
http_scan_reset(struct http_scan *s, bool trailer)
{
    memset(s, 0, sizeof(*s));
    s->bol = true;
    s->line1_done = trailer;
}

/* Checks a finished start line; returns a refusal reason or NULL. */
static const char *
scan_line1(const struct http_scan *s, bool request)
{
    size_t n = s->n1 < 9 ? s->n1 : 9;
    if (request) {
        char tail[9];
        /* tail is a ring indexed by byte count */
        for (size_t i = 0; i < n; i++)
            tail[i] = s->tail[(s->n1 - n + i) % 9];
        if (s->sp != 2 || n != 9 ||
            (memcmp(tail, " HTTP/1.1", 9) != 0 &&
             memcmp(tail, " HTTP/1.0", 9) != 0))
            return "malformed request line";
        return NULL;
    }
    if (n != 9 || (memcmp(s->pre, "HTTP/1.1 ", 9) != 0 &&
                   memcmp(s->pre, "HTTP/1.0 ", 9) != 0))
        return "malformed status line";
    return NULL;
}

const char *
http_scan_bytes(struct http_scan *s, bool request, const char *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = d[i];
        if (s->cr) {
            if (c != '\n')
                return "bare CR";
            s->cr = false;
            s->bol = true;
            if (!s->line1_done && s->n1 > 0) {
                s->line1_done = true;
                const char *r = scan_line1(s, request);
                if (r != NULL)
                    return r;
            }
            continue;
        }
        if (c == '\r') {
            s->cr = true;
            continue;
        }
        if (c == '\n')
            return "bare LF";
        if (s->bol && s->line1_done && (c == ' ' || c == '\t'))
            return "obs-fold";
        s->bol = false;
        if (!s->line1_done) {
            if (s->n1 < sizeof(s->pre))
                s->pre[s->n1] = c;
            s->tail[s->n1 % 9] = c;
            s->n1++;
            s->sp += c == ' ';
        }
    }
    return NULL;
}

/* ---- header checks ---- */

static bool
is_token(const char *s, size_t n)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || (c != 0 && strchr(extra, c))))
            return false;
    }
    return true;
}

/*
 * Request Transfer-Encoding (raw value, leading OWS already skipped by
 * llhttp): exactly "chunked" is fine; a list of codings ending in
 * "chunked" is well formed but unsupported (501); anything else is 400,
 * including trailing whitespace, which another parser might not strip.
 */
static void
check_te(struct http_parser *p, const char *v, size_t len)
{
    const char *s = v, *end = v + len;
    bool last = false;

    if (cg_str_ieq(v, len, "chunked", 7))
        return;
    p->h.te_status = 400;
    p->h.te_reason = "invalid transfer-encoding";
    while (!last) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *e = comma != NULL ? comma : end;
        last = comma == NULL;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (!last && e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        bool chunked = cg_str_ieq(s, (size_t)(e - s), "chunked", 7);
        if (chunked != last || !is_token(s, (size_t)(e - s)))
            return;
        s = last ? end : comma + 1;
    }
    p->h.te_status = 501;
    p->h.te_reason = "unsupported transfer-coding";
}

/* Parses a Content-Length value: digits only, no overflow. */
static bool
parse_cl(const char *v, size_t len, uint64_t *out)
{
    uint64_t n = 0;
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        if (n > (UINT64_MAX - 9) / 10)
            return false;
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    *out = n;
    return true;
}

#define NAME_IS(n, lit) cg_str_ieq((n).p, (n).len, lit, sizeof(lit) - 1)

int
http_check_header(struct http_parser *p)
{
    struct http_msg *m = &p->msg;
    struct http_hdr *h = &m->hdrs[m->n_hdrs - 1];
    struct cg_str name = http_msg_name(m, m->n_hdrs - 1);
    const char *raw = m->store.data + h->value_off, *v = raw;
    size_t raw_len = h->value_len;

    if (name.len == 0)
        return http_parser_fail(p, 400, "empty header name");
    for (size_t i = 0; i < raw_len; i++) {
        unsigned char c = (unsigned char)raw[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return http_parser_fail(p, 400, "control character in header");
    }
    while (h->value_len > 0 && (v[0] == ' ' || v[0] == '\t')) {
        v++;
        h->value_off++;
        h->value_len--;
    }
    while (h->value_len > 0 &&
           (v[h->value_len - 1] == ' ' || v[h->value_len - 1] == '\t'))
        h->value_len--;

    if (NAME_IS(name, "host")) {
        p->h.n_host++;
    } else if (NAME_IS(name, "content-length")) {
        p->h.n_cl++;
        if (!parse_cl(v, h->value_len, &m->content_length))
            return http_parser_fail(p, 400, "invalid content-length");
    } else if (NAME_IS(name, "transfer-encoding")) {
        p->h.n_te++;
        if (p->request && p->h.te_status == 0)
            check_te(p, raw, raw_len);
    } else if (NAME_IS(name, "expect")) {
        if (cg_str_ieq(v, h->value_len, "100-continue", 12))
            p->h.expect_100 = true;
        else
            p->h.expect_bad = true;
    }
    return 0;
}

/* ---- head checks ---- */

/* origin-form, absolute-form (http/https), or "*" for OPTIONS. */
static bool
target_ok(const struct http_msg *m, uint8_t method)
{
    struct cg_str t = http_msg_target(m);
    if (t.len > 0 && t.p[0] == '/')
        return true;
    if (t.len > 7 && cg_str_ieq(t.p, 7, "http://", 7))
        return true;
    if (t.len > 8 && cg_str_ieq(t.p, 8, "https://", 8))
        return true;
    return t.len == 1 && t.p[0] == '*' && method == HTTP_OPTIONS;
}

static int
check_request(struct http_parser *p)
{
    const llhttp_t *ll = &p->ll;
    struct http_msg *m = &p->msg;

    if (ll->http_major != 1 || ll->http_minor > 1)
        return http_parser_fail(p, 505, "unsupported http version");
    if (ll->method == HTTP_CONNECT)
        return http_parser_fail(p, 405, "connect not supported");
    if (!target_ok(m, ll->method))
        return http_parser_fail(p, 400, "bad request target");
    if (p->h.n_host > 1)
        return http_parser_fail(p, 400, "duplicate host");
    if (p->h.n_host == 0 && ll->http_minor == 1)
        return http_parser_fail(p, 400, "missing host");
    if (p->h.n_cl > 1)
        return http_parser_fail(p, 400, "duplicate content-length");
    if (p->h.n_te > 0) {
        if (ll->http_minor == 0)
            return http_parser_fail(p, 400, "transfer-encoding in http/1.0");
        if (p->h.n_cl > 0)
            return http_parser_fail(p, 400,
                                    "content-length with transfer-encoding");
        if (p->h.n_te > 1)
            return http_parser_fail(p, 400, "duplicate transfer-encoding");
        if (p->h.te_status != 0)
            return http_parser_fail(p, p->h.te_status, p->h.te_reason);
    }
    if (p->h.expect_bad)
        return http_parser_fail(p, 417, "unsupported expectation");
    return 0;
}

static int
check_response(struct http_parser *p)
{
    const llhttp_t *ll = &p->ll;
    if (ll->http_major != 1 || ll->http_minor > 1)
        return http_parser_fail(p, 502, "unsupported upstream http version");
    if (p->h.n_cl > 1)
        return http_parser_fail(p, 502, "duplicate content-length");
    if (p->h.n_cl > 0 && p->h.n_te > 0)
        return http_parser_fail(p, 502,
                                "content-length with transfer-encoding");
    return 0;
}

int
http_check_head(struct http_parser *p)
{
    return p->request ? check_request(p) : check_response(p);
}
