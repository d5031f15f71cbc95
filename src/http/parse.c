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
 * The scanner and the header and head checks live in parse_check.c; this
 * file holds the llhttp callbacks, the head copy and the driver.
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
#include "http/parse_int.h"

#define PARSER_MAGIC 0x63677068u /* "cgph" */

static struct http_parser *
from_ll(llhttp_t *ll)
{
    struct http_parser *p = CG_CONTAINER_OF(ll, struct http_parser, ll);
    assert(p->magic == PARSER_MAGIC);
    return p;
}

int
http_parser_fail(struct http_parser *p, int status, const char *reason)
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
    return http_parser_fail(p, 431,
                            p->request ? reason : "upstream head too large");
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

/* A complete header line: checked, trimmed, framing headers noted. */
static int
on_header_value_complete(llhttp_t *ll)
{
    struct http_parser *p = from_ll(ll);
    if (p->head_seen)
        return 0;
    return http_check_header(p);
}

/* Fills the message fields known at the end of the head. */
static void
set_request_fields(struct http_parser *p)
{
    struct http_msg *m = &p->msg;
    const char *name = llhttp_method_name((llhttp_method_t)p->ll.method);
    cg_strlcpy(m->method, name, sizeof(m->method));
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

    if (http_check_head(p) != 0)
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
        http_parser_fail(p, status, reason);
    }
    p->phase = PH_DEAD;
    return HTTP_PEV_ERROR;
}

static enum http_pev
die_with(struct http_parser *p, int status, const char *reason)
{
    http_parser_fail(p, status, reason);
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
    http_scan_reset(&p->sc, false);
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
        const char *r = http_scan_bytes(&p->sc, p->request, d, n);
        if (r != NULL) {
            http_parser_fail(p, 400, r);
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
        http_scan_reset(&p->sc, true);
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

/* The callbacks of every parser (requests and responses alike). */
static const llhttp_settings_t parser_cb = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_header = on_chunk_header,
    .on_message_complete = on_message_complete,
};

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

    llhttp_init(&p->ll, request ? HTTP_REQUEST : HTTP_RESPONSE, &parser_cb);

    p->phase = PH_HEAD;
    p->scanning = true;
    http_scan_reset(&p->sc, false);
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
http_parser_quiet(struct http_parser *p)
{
    if (p == NULL || p->in_msg || p->done_pending)
        return;
    cg_buf_cleanup(&p->msg.store);
    cg_buf_init(&p->msg.store);
    free(p->msg.hdrs);
    p->msg.hdrs = NULL;
    p->msg.cap_hdrs = 0;
    p->msg.n_hdrs = 0;
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
