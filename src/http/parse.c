/*
 * HTTP/1.x parsing on llhttp 8.1 (strict build). llhttp does the byte
 * grammar; this file adds what certgate needs on top of it:
 *
 *  - events: on_headers_complete and on_message_complete return HPE_PAUSED,
 *    so llhttp_execute stops there and http_parser_execute can report
 *    HTTP_PEV_HEAD / HTTP_PEV_DONE; the next call resumes. Responses that
 *    have no body (1xx, 204, 304, answers to HEAD) return 1 from
 *    on_headers_complete instead, so llhttp skips any Content-Length body;
 *    their HEAD is reported when llhttp stops at the message end, and DONE
 *    on the following call.
 *  - a copy of the head in msg->store (spans may arrive in pieces);
 *  - limits on head size and header count;
 *  - refusals llhttp 8.1 strict lets through (checked by the unit tests):
 *    bare LF after the request line or as the final empty line, obs-fold
 *    (llhttp folds it into the value), "RTSP/1.0" and "ICE/1.0" request
 *    lines, HTTP/0.9, 2.0, several spaces in the request line, an empty
 *    header name, Transfer-Encoding with HTTP/1.0, "chunked " with
 *    trailing whitespace, "gzip, chunked", several Host headers, missing
 *    Host, request targets other than origin-form, absolute-form or "*",
 *    bare LF ending a chunked trailer section.
 *
 * Line endings and folding are checked by a small scanner over the head
 * bytes llhttp consumed (and over the trailer section of chunked bodies,
 * whose start is found by pausing in on_chunk_header for the last chunk).
 *
 * CONNECT is refused with 405: certgate is a reverse proxy, not a tunnel.
 * Every response error is reported as 502.
 */
#include "http/parse.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llhttp.h>

#include "core/util.h"
#include "core/xmalloc.h"

#define PARSER_MAGIC 0x63677068u /* "cgph" */

enum phase {
    PH_HEAD,     /* reading a head (or between messages) */
    PH_BODY,     /* head reported; body or DONE pending */
    PH_UPGRADED, /* DONE of an upgrade: no more HTTP */
    PH_EOF,      /* http_parser_finish() ended the input */
    PH_DEAD,     /* error reported */
};

/* What stopped llhttp_execute with HPE_PAUSED. */
enum stop {
    STOP_NONE,
    STOP_HEAD,       /* on_headers_complete */
    STOP_LAST_CHUNK, /* on_chunk_header for the zero-size chunk */
    STOP_DONE,       /* on_message_complete */
};

/* Line-ending checker for head and trailer bytes. */
struct scan {
    bool cr;         /* previous byte was CR */
    bool bol;        /* at the beginning of a line */
    bool line1_done; /* start line seen (or trailer section) */
    size_t n1;       /* bytes of the start line so far */
    unsigned sp;     /* spaces in the start line */
    char pre[9];     /* first bytes of the start line */
    char tail[9];    /* last bytes of the start line (rolling) */
};

struct http_parser {
    unsigned magic;
    llhttp_t ll;
    llhttp_settings_t cb;
    bool request;
    size_t max_head, max_hdrs;
    http_body_fn *body;
    void *arg;
    struct http_msg msg;

    enum phase phase;
    enum stop stop;
    bool paused;        /* llhttp paused: resume before executing */
    bool in_msg;        /* on_message_begin seen, DONE not yet */
    bool head_seen;     /* HEAD reported for the current message */
    bool done_pending;  /* HEAD reported at the message end: DONE next */
    bool head_response; /* next final response answers HEAD */
    bool scanning;      /* consumed bytes go through sc */
    struct scan sc;
    const char *cur;    /* data given to the running llhttp_execute */
    size_t head_before; /* head bytes consumed before cur */
    size_t trailer_bytes;

    struct {           /* framing headers of the current head */
        bool in_field; /* a header name is being received */
        unsigned n_host, n_cl, n_te;
        bool expect_100, expect_bad;
        int te_status; /* 400/501 for a refused request coding */
        const char *te_reason;
    } h;

    int err_status;
    const char *err_reason;
};

static struct http_parser *
from_ll(llhttp_t *ll)
{
    struct http_parser *p =
        (struct http_parser *)((char *)ll - offsetof(struct http_parser, ll));
    assert(p->magic == PARSER_MAGIC);
    return p;
}

/* Records the first error; returns -1 for llhttp. */
static int
fail(struct http_parser *p, int status, const char *reason)
{
    if (p->err_status == 0) {
        p->err_status = p->request ? status : 502;
        p->err_reason = reason;
    }
    return -1;
}

static int
fail_limit(struct http_parser *p, const char *reason)
{
    return fail(p, 431, p->request ? reason : "upstream head too large");
}

static struct cg_str
span(const struct http_msg *m, size_t off, size_t len)
{
    if (m->store.data == NULL)
        return (struct cg_str){"", 0};
    return (struct cg_str){m->store.data + off, len};
}

struct cg_str
http_msg_target(const struct http_msg *m)
{
    return span(m, m->target_off, m->target_len);
}

struct cg_str
http_msg_reason(const struct http_msg *m)
{
    return span(m, m->reason_off, m->reason_len);
}

struct cg_str
http_msg_name(const struct http_msg *m, size_t i)
{
    assert(i < m->n_hdrs);
    return span(m, m->hdrs[i].name_off, m->hdrs[i].name_len);
}

struct cg_str
http_msg_value(const struct http_msg *m, size_t i)
{
    assert(i < m->n_hdrs);
    return span(m, m->hdrs[i].value_off, m->hdrs[i].value_len);
}

long
http_msg_find(const struct http_msg *m, const char *name, size_t start)
{
    size_t len = strlen(name);
    for (size_t i = start; i < m->n_hdrs; i++) {
        struct cg_str n = http_msg_name(m, i);
        if (cg_str_ieq(n.p, n.len, name, len))
            return (long)i;
    }
    return -1;
}

/* ---- line scanner ---- */

static void
scan_reset(struct scan *s, bool trailer)
{
    memset(s, 0, sizeof(*s));
    s->bol = true;
    s->line1_done = trailer;
}

/* Checks a finished start line; returns a refusal reason or NULL. */
static const char *
scan_line1(const struct scan *s, bool request)
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

/* Runs the scanner over consumed head or trailer bytes. */
static const char *
scan_bytes(struct scan *s, bool request, const char *d, size_t n)
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

/* ---- llhttp callbacks ---- */

static int
check_head_size(struct http_parser *p, const char *end)
{
    if (p->head_before + (size_t)(end - p->cur) > p->max_head)
        return fail_limit(p, "request head too large");
    return 0;
}

static int
on_message_begin(llhttp_t *ll)
{
    struct http_parser *p = from_ll(ll);
    struct http_msg *m = &p->msg;
    struct cg_buf store = m->store;
    struct http_hdr *hdrs = m->hdrs;
    size_t cap = m->cap_hdrs;

    memset(m, 0, sizeof(*m));
    m->store = store;
    m->hdrs = hdrs;
    m->cap_hdrs = cap;
    m->is_request = p->request;
    cg_buf_reset(&m->store);
    memset(&p->h, 0, sizeof(p->h));
    p->in_msg = true;
    p->head_seen = false;
    return 0;
}

/* Appends a piece of the target or reason phrase to the store. */
static int
store_item(struct http_parser *p, size_t *off, size_t *len, const char *at,
           size_t n)
{
    if (*len == 0)
        *off = p->msg.store.len;
    cg_buf_append(&p->msg.store, at, n);
    *len += n;
    return check_head_size(p, at + n);
}

static int
on_url(llhttp_t *ll, const char *at, size_t n)
{
    struct http_parser *p = from_ll(ll);
    return store_item(p, &p->msg.target_off, &p->msg.target_len, at, n);
}

static int
on_status(llhttp_t *ll, const char *at, size_t n)
{
    struct http_parser *p = from_ll(ll);
    return store_item(p, &p->msg.reason_off, &p->msg.reason_len, at, n);
}

static int
on_header_field(llhttp_t *ll, const char *at, size_t n)
{
    struct http_parser *p = from_ll(ll);
    struct http_msg *m = &p->msg;
    if (p->head_seen)
        return 0; /* trailer: dropped */
    if (!p->h.in_field) {
        if (m->n_hdrs >= p->max_hdrs)
            return fail_limit(p, "too many headers");
        if (m->n_hdrs == m->cap_hdrs) {
            m->cap_hdrs = m->cap_hdrs ? 2 * m->cap_hdrs : 16;
            m->hdrs = xrealloc(m->hdrs, m->cap_hdrs * sizeof(*m->hdrs));
        }
        struct http_hdr *h = &m->hdrs[m->n_hdrs++];
        h->name_off = h->value_off = m->store.len;
        h->name_len = h->value_len = 0;
        p->h.in_field = true;
    }
    cg_buf_append(&m->store, at, n);
    m->hdrs[m->n_hdrs - 1].name_len += n;
    return check_head_size(p, at + n);
}

static int
on_header_field_complete(llhttp_t *ll)
{
    struct http_parser *p = from_ll(ll);
    if (p->head_seen)
        return 0;
    p->h.in_field = false;
    p->msg.hdrs[p->msg.n_hdrs - 1].value_off = p->msg.store.len;
    return 0;
}

static int
on_header_value(llhttp_t *ll, const char *at, size_t n)
{
    struct http_parser *p = from_ll(ll);
    struct http_msg *m = &p->msg;
    if (p->head_seen)
        return 0;
    cg_buf_append(&m->store, at, n);
    m->hdrs[m->n_hdrs - 1].value_len += n;
    return check_head_size(p, at + n);
}

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

/* A complete header line: trims the value, notes framing headers. */
static int
on_header_value_complete(llhttp_t *ll)
{
    struct http_parser *p = from_ll(ll);
    struct http_msg *m = &p->msg;
    if (p->head_seen)
        return 0;
    struct http_hdr *h = &m->hdrs[m->n_hdrs - 1];
    struct cg_str name = http_msg_name(m, m->n_hdrs - 1);
    const char *raw = m->store.data + h->value_off, *v = raw;
    size_t raw_len = h->value_len;

    if (name.len == 0)
        return fail(p, 400, "empty header name");
    for (size_t i = 0; i < raw_len; i++) {
        unsigned char c = (unsigned char)raw[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return fail(p, 400, "control character in header");
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
            return fail(p, 400, "invalid content-length");
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
        return fail(p, 505, "unsupported http version");
    if (ll->method == HTTP_CONNECT)
        return fail(p, 405, "connect not supported");
    if (!target_ok(m, ll->method))
        return fail(p, 400, "bad request target");
    if (p->h.n_host > 1)
        return fail(p, 400, "duplicate host");
    if (p->h.n_host == 0 && ll->http_minor == 1)
        return fail(p, 400, "missing host");
    if (p->h.n_cl > 1)
        return fail(p, 400, "duplicate content-length");
    if (p->h.n_te > 0) {
        if (ll->http_minor == 0)
            return fail(p, 400, "transfer-encoding in http/1.0");
        if (p->h.n_cl > 0)
            return fail(p, 400, "content-length with transfer-encoding");
        if (p->h.n_te > 1)
            return fail(p, 400, "duplicate transfer-encoding");
        if (p->h.te_status != 0)
            return fail(p, p->h.te_status, p->h.te_reason);
    }
    if (p->h.expect_bad)
        return fail(p, 417, "unsupported expectation");
    return 0;
}

static int
check_response(struct http_parser *p)
{
    const llhttp_t *ll = &p->ll;
    if (ll->http_major != 1 || ll->http_minor > 1)
        return fail(p, 502, "unsupported upstream http version");
    if (p->h.n_cl > 1)
        return fail(p, 502, "duplicate content-length");
    if (p->h.n_cl > 0 && p->h.n_te > 0)
        return fail(p, 502, "content-length with transfer-encoding");
    return 0;
}

/* Fills the message fields known at the end of the head. */
static void
set_request_fields(struct http_parser *p)
{
    struct http_msg *m = &p->msg;
    const char *name = llhttp_method_name((llhttp_method_t)p->ll.method);
    snprintf(m->method, sizeof(m->method), "%s", name);
    m->is_head = p->ll.method == HTTP_HEAD;
    m->upgrade = p->ll.upgrade != 0;
    m->expect_continue = p->h.expect_100 && p->ll.http_minor == 1;
    if (p->h.n_te > 0)
        m->framing = HTTP_BODY_CHUNKED;
    else if (p->h.n_cl > 0)
        m->framing = HTTP_BODY_LENGTH;
    else
        m->framing = HTTP_BODY_NONE;
}

/* Returns true when the response has no body whatever its headers say. */
static bool
set_response_fields(struct http_parser *p)
{
    struct http_msg *m = &p->msg;
    int st = p->ll.status_code;
    m->status = st;
    m->upgrade = st == 101;
    if (st / 100 == 1 || st == 204 || st == 304 || p->head_response) {
        m->framing = HTTP_BODY_NONE;
        return true;
    }
    if (p->ll.flags & F_CHUNKED)
        m->framing = HTTP_BODY_CHUNKED;
    else if (p->h.n_te > 0)
        m->framing = HTTP_BODY_EOF; /* final coding not chunked */
    else if (p->h.n_cl > 0)
        m->framing = HTTP_BODY_LENGTH;
    else
        m->framing = HTTP_BODY_EOF;
    return false;
}

static int
on_headers_complete(llhttp_t *ll)
{
    struct http_parser *p = from_ll(ll);
    struct http_msg *m = &p->msg;
    bool skip = false;

    if ((p->request ? check_request(p) : check_response(p)) != 0)
        return -1;
    m->version_major = ll->http_major;
    m->version_minor = ll->http_minor;
    if (p->request)
        set_request_fields(p);
    else
        skip = set_response_fields(p);
    if (m->framing != HTTP_BODY_LENGTH)
        m->content_length = 0;
    if (skip) {
        /* what returning 1 does; set now so keep-alive sees it */
        ll->flags |= F_SKIPBODY;
        m->keep_alive = llhttp_should_keep_alive(ll) != 0;
        return 1;
    }
    m->keep_alive = llhttp_should_keep_alive(ll) != 0;
    p->stop = STOP_HEAD;
    return HPE_PAUSED;
}

static int
on_body(llhttp_t *ll, const char *at, size_t n)
{
    struct http_parser *p = from_ll(ll);
    if (p->body != NULL && n > 0)
        p->body(p->arg, at, n);
    return 0;
}

/* Pauses at the last chunk so the trailer section can be scanned. */
static int
on_chunk_header(llhttp_t *ll)
{
    struct http_parser *p = from_ll(ll);
    if (ll->content_length != 0)
        return 0;
    p->stop = STOP_LAST_CHUNK;
    return HPE_PAUSED;
}

static int
on_message_complete(llhttp_t *ll)
{
    struct http_parser *p = from_ll(ll);
    p->stop = STOP_DONE;
    return HPE_PAUSED;
}

/* ---- driver ---- */

/* llhttp errors without a more precise reason of ours (status 400). */
static const struct {
    llhttp_errno_t err;
    const char *reason;
} ll_reasons[] = {
    {HPE_INVALID_METHOD, "invalid method"},
    {HPE_INVALID_URL, "bad request target"},
    {HPE_INVALID_CONTENT_LENGTH, "invalid content-length"},
    {HPE_INVALID_TRANSFER_ENCODING, "invalid transfer-encoding"},
    {HPE_INVALID_CHUNK_SIZE, "invalid chunk size"},
    {HPE_INVALID_HEADER_TOKEN, "invalid header"},
    {HPE_CR_EXPECTED, "bad line ending"},
    {HPE_LF_EXPECTED, "bad line ending"},
    {HPE_UNEXPECTED_SPACE, "unexpected whitespace"},
    {HPE_INVALID_STATUS, "invalid status"},
    {HPE_CLOSED_CONNECTION, "data after connection close"},
    {HPE_STRICT, "malformed chunk framing"},
};

/* Maps an llhttp error to a status and a static reason. */
static const char *
ll_reason(struct http_parser *p, llhttp_errno_t err, int *status)
{
    *status = 400;
    if (err == HPE_INVALID_VERSION) {
        /* llhttp 8.1's text for a well-formed but unknown "HTTP/x.y" */
        const char *r = llhttp_get_error_reason(&p->ll);
        if (r != NULL && strcmp(r, "Invalid HTTP version") == 0) {
            *status = 505;
            return "unsupported http version";
        }
        return "invalid http version";
    }
    if (err == HPE_PAUSED_H2_UPGRADE) {
        *status = 505;
        return "http/2 preface";
    }
    if (err == HPE_UNEXPECTED_CONTENT_LENGTH)
        return p->h.n_te > 0 ? "content-length with transfer-encoding"
                             : "duplicate content-length";
    for (size_t i = 0; i < CG_ARRAY_LEN(ll_reasons); i++) {
        if (ll_reasons[i].err == err)
            return ll_reasons[i].reason;
    }
    return "malformed message";
}

static enum http_pev
die(struct http_parser *p, llhttp_errno_t err)
{
    if (p->err_status == 0) {
        int status;
        const char *reason = ll_reason(p, err, &status);
        fail(p, status, reason);
    }
    p->phase = PH_DEAD;
    return HTTP_PEV_ERROR;
}

static enum http_pev
die_with(struct http_parser *p, int status, const char *reason)
{
    fail(p, status, reason);
    return die(p, HPE_USER);
}

/* Ready for the next message (or upgraded). */
static enum http_pev
message_done(struct http_parser *p)
{
    p->in_msg = false;
    p->head_seen = false;
    if (!p->request && p->msg.status >= 200)
        p->head_response = false;
    p->phase = p->msg.upgrade ? PH_UPGRADED : PH_HEAD;
    p->head_before = 0;
    p->trailer_bytes = 0;
    p->scanning = true;
    scan_reset(&p->sc, false);
    return HTTP_PEV_DONE;
}

static enum http_pev
head_done(struct http_parser *p)
{
    p->head_seen = true;
    p->phase = PH_BODY;
    p->scanning = false;
    p->msg.head_bytes = p->head_before;
    if (p->head_before > p->max_head) {
        fail_limit(p, "request head too large");
        return die(p, HPE_USER);
    }
    return HTTP_PEV_HEAD;
}

/* Scans and counts bytes llhttp consumed; false on a refusal. */
static bool
account(struct http_parser *p, const char *d, size_t n)
{
    if (p->scanning) {
        const char *r = scan_bytes(&p->sc, p->request, d, n);
        if (r != NULL) {
            fail(p, 400, r);
            return false;
        }
    }
    if (p->phase == PH_HEAD) {
        p->head_before += n;
        if (p->head_before > p->max_head) {
            fail_limit(p, "request head too large");
            return false;
        }
    } else if (p->scanning) {
        p->trailer_bytes += n;
        if (p->trailer_bytes > p->max_head) {
            fail_limit(p, "trailer section too large");
            return false;
        }
    }
    return true;
}

/* Runs llhttp; loops over the last-chunk pause. Returns its errno. */
static llhttp_errno_t
run(struct http_parser *p, const char *data, size_t len, size_t *off)
{
    llhttp_errno_t err;
    for (;;) {
        if (p->paused) {
            llhttp_resume(&p->ll);
            p->paused = false;
        }
        p->stop = STOP_NONE;
        p->cur = data + *off;
        err = llhttp_execute(&p->ll, data + *off, len - *off);
        size_t used = len - *off;
        if (err != HPE_OK)
            used = (size_t)(llhttp_get_error_pos(&p->ll) - (data + *off));
        if (err != HPE_OK && err != HPE_PAUSED && err != HPE_PAUSED_UPGRADE)
            return err;
        if (!account(p, data + *off, used))
            return HPE_USER;
        *off += used;
        p->paused = err == HPE_PAUSED;
        if (err != HPE_PAUSED || p->stop != STOP_LAST_CHUNK)
            return err;
        p->scanning = true;
        scan_reset(&p->sc, true);
    }
}

enum http_pev
http_parser_execute(struct http_parser *p, const char *data, size_t len,
                    size_t *consumed)
{
    size_t off = 0;

    *consumed = 0;
    if (p->phase == PH_DEAD)
        return HTTP_PEV_ERROR;
    if (p->phase == PH_UPGRADED)
        return die_with(p, 400, "data after upgrade");
    if (p->phase == PH_EOF)
        return die_with(p, 400, "data after end of input");
    if (p->done_pending) {
        p->done_pending = false;
        return message_done(p);
    }
    if (data == NULL)
        data = "";
    llhttp_errno_t err = run(p, data, len, &off);
    *consumed = off;
    if (err == HPE_OK)
        return HTTP_PEV_NEED_MORE;
    if (err != HPE_PAUSED && err != HPE_PAUSED_UPGRADE)
        return die(p, err);
    if (p->stop == STOP_HEAD)
        return head_done(p);
    /* message end (STOP_DONE, or the upgrade pause after it) */
    if (err == HPE_PAUSED_UPGRADE)
        p->msg.upgrade = true;
    if (!p->head_seen) {
        p->done_pending = true;
        return head_done(p);
    }
    if (p->scanning && p->sc.cr)
        return die_with(p, 400, "bare CR");
    return message_done(p);
}

enum http_pev
http_parser_finish(struct http_parser *p)
{
    size_t used;

    if (p->phase == PH_DEAD)
        return HTTP_PEV_ERROR;
    if (p->phase == PH_UPGRADED || p->phase == PH_EOF)
        return HTTP_PEV_NEED_MORE;
    if (p->done_pending) {
        p->done_pending = false;
        return message_done(p);
    }
    if (!p->in_msg) {
        p->phase = PH_EOF;
        return HTTP_PEV_NEED_MORE;
    }
    if (p->head_seen) {
        /* let llhttp reach its body state (or the message end) */
        enum http_pev ev = http_parser_execute(p, "", 0, &used);
        if (ev != HTTP_PEV_NEED_MORE)
            return ev;
        if (p->msg.framing == HTTP_BODY_EOF &&
            llhttp_finish(&p->ll) == HPE_PAUSED && p->stop == STOP_DONE) {
            message_done(p);
            p->phase = PH_EOF;
            return HTTP_PEV_DONE;
        }
    }
    return die_with(p, 400, "truncated message");
}

struct http_parser *
http_parser_new(bool request, size_t max_head_bytes, size_t max_headers,
                http_body_fn *body, void *arg)
{
    struct http_parser *p = xcalloc(1, sizeof(*p));
    p->magic = PARSER_MAGIC;
    p->request = request;
    p->max_head = max_head_bytes;
    p->max_hdrs = max_headers;
    p->body = body;
    p->arg = arg;
    cg_buf_init(&p->msg.store);
    p->msg.is_request = request;

    llhttp_settings_init(&p->cb);
    p->cb.on_message_begin = on_message_begin;
    p->cb.on_url = on_url;
    p->cb.on_status = on_status;
    p->cb.on_header_field = on_header_field;
    p->cb.on_header_field_complete = on_header_field_complete;
    p->cb.on_header_value = on_header_value;
    p->cb.on_header_value_complete = on_header_value_complete;
    p->cb.on_headers_complete = on_headers_complete;
    p->cb.on_body = on_body;
    p->cb.on_chunk_header = on_chunk_header;
    p->cb.on_message_complete = on_message_complete;
    llhttp_init(&p->ll, request ? HTTP_REQUEST : HTTP_RESPONSE, &p->cb);

    p->phase = PH_HEAD;
    p->scanning = true;
    scan_reset(&p->sc, false);
    return p;
}

void
http_parser_free(struct http_parser *p)
{
    if (p == NULL)
        return;
    assert(p->magic == PARSER_MAGIC);
    cg_buf_cleanup(&p->msg.store);
    free(p->msg.hdrs);
    p->magic = 0;
    free(p);
}

void
http_parser_set_head_response(struct http_parser *p, bool head)
{
    assert(!p->request);
    p->head_response = head;
}

const struct http_msg *
http_parser_msg(const struct http_parser *p)
{
    return &p->msg;
}

int
http_parser_error(const struct http_parser *p, const char **reason)
{
    if (reason != NULL)
        *reason = p->phase == PH_DEAD ? p->err_reason : NULL;
    return p->phase == PH_DEAD ? p->err_status : 0;
}

bool
http_parser_in_message(const struct http_parser *p)
{
    return p->in_msg || p->done_pending;
}
