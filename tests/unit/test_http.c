/*
 * Unit tests of src/http/parse.c and src/http/headers.c. Messages are
 * written byte for byte; each smuggling shape is a separate request that
 * must be refused with the expected status.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "http/headers.h"
#include "http/parse.h"

#define MAX_HEAD 8192
#define MAX_HDRS 100

/* Counted literal (may hold NUL bytes). */
#define L(s) (s), (sizeof(s) - 1)

struct sink {
    struct cg_buf b;
};

static void
sink_fn(void *arg, const char *p, size_t n)
{
    struct sink *s = arg;
    cg_buf_append(&s->b, p, n);
}

/* A parser with a body sink, and the input still to feed. */
struct run {
    struct http_parser *p;
    struct sink body;
    const char *data;
    size_t len;
};

static void
run_init(struct run *r, bool request, const char *data, size_t len)
{
    memset(r, 0, sizeof(*r));
    cg_buf_init(&r->body.b);
    r->p = http_parser_new(request, MAX_HEAD, MAX_HDRS, sink_fn, &r->body);
    r->data = data;
    r->len = len;
}

static void
run_cleanup(struct run *r)
{
    http_parser_free(r->p);
    cg_buf_cleanup(&r->body.b);
}

/* One execute call over the rest of the input. */
static enum http_pev
step(struct run *r)
{
    size_t used = 12345;
    enum http_pev ev = http_parser_execute(r->p, r->data, r->len, &used);
    assert_true(used <= r->len);
    r->data += used;
    r->len -= used;
    return ev;
}

static struct cg_str
hdr(const struct http_msg *m, const char *name)
{
    long i = http_msg_find(m, name, 0);
    if (i < 0)
        return (struct cg_str){NULL, 0};
    return http_msg_value(m, (size_t)i);
}

static void
assert_str(struct cg_str s, const char *want)
{
    assert_non_null(s.p);
    if (s.len != strlen(want) || memcmp(s.p, want, s.len) != 0) {
        fail_msg("got \"%.*s\", want \"%s\"", (int)s.len, s.p, want);
    }
}

/*
 * Feeds a whole message stream; returns the error status (0 when every
 * message parsed and the input ran out), with the reason in *reason.
 */
static int
status_of(bool request, const char *data, size_t len, const char **reason)
{
    struct run r;
    int st = 0;
    run_init(&r, request, data, len);
    for (int i = 0; i < 1000; i++) {
        enum http_pev ev = step(&r);
        if (ev == HTTP_PEV_ERROR) {
            st = http_parser_error(r.p, reason);
            break;
        }
        if (ev == HTTP_PEV_NEED_MORE) {
            if (reason != NULL)
                *reason = NULL;
            break;
        }
    }
    run_cleanup(&r);
    return st;
}

#define REQ_STATUS(lit) status_of(true, L(lit), NULL)
#define RESP_STATUS(lit) status_of(false, L(lit), NULL)

static void
expect_req(const char *data, size_t len, int want)
{
    const char *reason = NULL;
    int st = status_of(true, data, len, &reason);
    if (st != want)
        fail_msg("request %.*s: status %d (%s), want %d", (int)len, data, st,
                 reason ? reason : "-", want);
    if (want != 0) {
        assert_non_null(reason);
        assert_true(strlen(reason) > 0);
    }
}

#define EXPECT_REQ(lit, st) expect_req(L(lit), st)

/* The refusal comes from the intended check. */
static void
expect_reason(bool request, const char *data, size_t len, const char *want)
{
    const char *reason = NULL;
    assert_int_not_equal(status_of(request, data, len, &reason), 0);
    assert_non_null(reason);
    assert_string_equal(reason, want);
}

#define EXPECT_REASON(lit, r) expect_reason(true, L(lit), r)

/* ---- requests ---- */

static void
test_simple_get(void **state)
{
    (void)state;
    static const char req[] = "GET /a?b=c HTTP/1.1\r\n"
                              "Host: example.com\r\n"
                              "User-Agent:   curl/8  \r\n"
                              "X-Empty:\r\n"
                              "\r\n";
    struct run r;
    run_init(&r, true, L(req));
    assert_false(http_parser_in_message(r.p));
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    assert_int_equal(r.len, 0);
    assert_true(http_parser_in_message(r.p));
    const struct http_msg *m = http_parser_msg(r.p);
    assert_true(m->is_request);
    assert_string_equal(m->method, "GET");
    assert_false(m->is_head);
    assert_false(m->is_connect);
    assert_str(http_msg_target(m), "/a?b=c");
    assert_int_equal(m->version_major, 1);
    assert_int_equal(m->version_minor, 1);
    assert_int_equal(m->n_hdrs, 3);
    assert_str(http_msg_name(m, 0), "Host");
    assert_str(hdr(m, "host"), "example.com");
    assert_str(hdr(m, "USER-AGENT"), "curl/8");
    assert_str(hdr(m, "x-empty"), "");
    assert_int_equal(http_msg_find(m, "missing", 0), -1);
    assert_int_equal(http_msg_find(m, "host", 1), -1);
    assert_int_equal(m->framing, HTTP_BODY_NONE);
    assert_true(m->keep_alive);
    assert_false(m->upgrade);
    assert_false(m->expect_continue);
    assert_int_equal(m->head_bytes, sizeof(req) - 1);
    assert_int_equal(step(&r), HTTP_PEV_DONE);
    assert_false(http_parser_in_message(r.p));
    assert_int_equal(step(&r), HTTP_PEV_NEED_MORE);
    assert_int_equal(http_parser_finish(r.p), HTTP_PEV_NEED_MORE);
    assert_int_equal(http_parser_error(r.p, NULL), 0);
    run_cleanup(&r);
}

static void
test_head_and_options(void **state)
{
    (void)state;
    static const char req[] = "HEAD / HTTP/1.0\r\n\r\n"
                              "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n";
    struct run r;
    run_init(&r, true, L(req));
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    const struct http_msg *m = http_parser_msg(r.p);
    assert_true(m->is_head);
    assert_int_equal(m->version_minor, 0);
    assert_false(m->keep_alive); /* HTTP/1.0 without keep-alive */
    assert_int_equal(step(&r), HTTP_PEV_DONE);
    /* after a non-keep-alive message llhttp refuses more data */
    assert_int_equal(step(&r), HTTP_PEV_ERROR);
    run_cleanup(&r);

    assert_int_equal(REQ_STATUS("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    assert_int_equal(REQ_STATUS("GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n"),
                     0);
}

static void
test_pipelined(void **state)
{
    (void)state;
    static const char req[] = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
                              "POST /two HTTP/1.1\r\nHost: b\r\n"
                              "Content-Length: 3\r\n\r\nabc"
                              "GET /three HTTP/1.1\r\nHost: c\r\n\r\n";
    struct run r;
    run_init(&r, true, L(req));
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    assert_str(http_msg_target(http_parser_msg(r.p)), "/one");
    assert_int_equal(step(&r), HTTP_PEV_DONE);
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    const struct http_msg *m = http_parser_msg(r.p);
    assert_str(http_msg_target(m), "/two");
    assert_string_equal(m->method, "POST");
    assert_int_equal(m->framing, HTTP_BODY_LENGTH);
    assert_int_equal(m->content_length, 3);
    assert_int_equal(step(&r), HTTP_PEV_DONE);
    assert_int_equal(r.body.b.len, 3);
    assert_memory_equal(r.body.b.data, "abc", 3);
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    assert_str(http_msg_target(http_parser_msg(r.p)), "/three");
    assert_str(hdr(http_parser_msg(r.p), "host"), "c");
    assert_int_equal(step(&r), HTTP_PEV_DONE);
    assert_int_equal(step(&r), HTTP_PEV_NEED_MORE);
    assert_int_equal(r.len, 0);
    run_cleanup(&r);
}

static void
test_byte_by_byte(void **state)
{
    (void)state;
    static const char req[] = "POST /upload/file HTTP/1.1\r\n"
                              "Host: split.example\r\n"
                              "X-Long-Header-Name: some long value here\r\n"
                              "Transfer-Encoding: chunked\r\n"
                              "\r\n"
                              "4;ext=1\r\nWiki\r\n"
                              "6\r\npedia \r\n"
                              "0\r\nX-Trailer: t\r\n\r\n"
                              "GET /next HTTP/1.1\r\nHost: n\r\n\r\n";
    struct sink body;
    cg_buf_init(&body.b);
    struct http_parser *p =
        http_parser_new(true, MAX_HEAD, MAX_HDRS, sink_fn, &body);
    size_t pos = 0, used;
    int heads = 0, dones = 0;
    while (pos < sizeof(req) - 1) {
        enum http_pev ev = http_parser_execute(p, req + pos, 1, &used);
        assert_int_not_equal(ev, HTTP_PEV_ERROR);
        pos += used;
        if (ev == HTTP_PEV_HEAD) {
            const struct http_msg *m = http_parser_msg(p);
            if (heads++ == 0) {
                assert_str(http_msg_target(m), "/upload/file");
                assert_str(hdr(m, "x-long-header-name"),
                           "some long value here");
                assert_str(hdr(m, "host"), "split.example");
                assert_int_equal(m->framing, HTTP_BODY_CHUNKED);
                assert_int_equal(m->n_hdrs, 3);
            } else {
                assert_str(http_msg_target(m), "/next");
            }
        } else if (ev == HTTP_PEV_DONE) {
            dones++;
            /* trailers are not added to the head */
            if (dones == 1)
                assert_int_equal(http_parser_msg(p)->n_hdrs, 3);
        } else {
            assert_int_equal(used, 1);
        }
    }
    /* the last DONE of a body-less request comes on a call with no data */
    assert_int_equal(http_parser_execute(p, "", 0, &used), HTTP_PEV_DONE);
    assert_int_equal(heads, 2);
    assert_int_equal(dones, 1);
    assert_int_equal(body.b.len, 10);
    assert_memory_equal(body.b.data, "Wikipedia ", 10);
    http_parser_free(p);
    cg_buf_cleanup(&body.b);
}

static void
test_content_length_body(void **state)
{
    (void)state;
    static const char req[] = "PUT /x HTTP/1.1\r\nHost: a\r\n"
                              "Content-Length: 10\r\n\r\n"
                              "0123456789EXTRA";
    struct run r;
    run_init(&r, true, L(req));
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    assert_int_equal(http_parser_msg(r.p)->content_length, 10);
    assert_int_equal(r.body.b.len, 0); /* nothing sunk before HEAD */
    assert_int_equal(step(&r), HTTP_PEV_DONE);
    assert_int_equal(r.body.b.len, 10);
    assert_memory_equal(r.body.b.data, "0123456789", 10);
    assert_int_equal(r.len, 5); /* "EXTRA" left: start of the next message */
    run_cleanup(&r);

    /* body in two calls */
    run_init(&r, true, req, sizeof(req) - 1 - 9);
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    assert_int_equal(step(&r), HTTP_PEV_NEED_MORE);
    assert_true(http_parser_in_message(r.p));
    assert_int_equal(r.body.b.len, 6);
    r.len = 9;
    assert_int_equal(step(&r), HTTP_PEV_DONE);
    assert_int_equal(r.len, 5);
    assert_memory_equal(r.body.b.data, "0123456789", 10);
    run_cleanup(&r);

    /* Content-Length: 0 */
    run_init(&r, true,
             L("POST / HTTP/1.1\r\nHost: a\r\n"
               "Content-Length: 0\r\n\r\n"));
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    assert_int_equal(http_parser_msg(r.p)->framing, HTTP_BODY_LENGTH);
    assert_int_equal(http_parser_msg(r.p)->content_length, 0);
    assert_int_equal(step(&r), HTTP_PEV_DONE);
    run_cleanup(&r);
}

static void
test_chunked_body(void **state)
{
    (void)state;
    static const char req[] = "POST / HTTP/1.1\r\nHost: a\r\n"
                              "Transfer-Encoding: chunked\r\n\r\n"
                              "5\r\nhello\r\n"
                              "1A;name=\"quoted\"\r\n"
                              "abcdefghijklmnopqrstuvwxyz\r\n"
                              "0\r\n\r\n";
    struct run r;
    run_init(&r, true, L(req));
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    assert_int_equal(http_parser_msg(r.p)->framing, HTTP_BODY_CHUNKED);
    assert_int_equal(step(&r), HTTP_PEV_DONE);
    assert_int_equal(r.len, 0);
    assert_int_equal(r.body.b.len, 31);
    assert_memory_equal(r.body.b.data, "helloabcdefghijklmnopqrstuvwxyz", 31);
    run_cleanup(&r);

    /* trailers are accepted and dropped */
    assert_int_equal(REQ_STATUS("POST / HTTP/1.1\r\nHost: a\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n"
                                "1\r\nx\r\n0\r\nA: b\r\nC: d\r\n\r\n"),
                     0);
}

/* ---- request refusals ---- */

static void
test_refuse_cl_te(void **state)
{
    (void)state;
    EXPECT_REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
               "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
               400);
    EXPECT_REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
               "Content-Length: 5\r\n\r\n0\r\n\r\n",
               400);
    EXPECT_REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
               "Content-Length: 0\r\n\r\n0\r\n\r\n",
               400);
}

static void
test_refuse_content_length(void **state)
{
    (void)state;
    EXPECT_REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
               "Content-Length: 5\r\n\r\nhello",
               400);
    EXPECT_REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
               "Content-Length: 6\r\n\r\nhello!",
               400);
    EXPECT_REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n"
               "hello",
               400);
    EXPECT_REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello",
               400);
    EXPECT_REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n"
               "hello",
               400);
    EXPECT_REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5a\r\n\r\n"
               "hello",
               400);
    EXPECT_REQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400);
    EXPECT_REQ("POST / HTTP/1.1\r\nHost: a\r\n"
               "Content-Length: 99999999999999999999999\r\n\r\n",
               400);
    /* one reason string per shape */
    const char *reason = NULL;
    status_of(true,
              L("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
                "Content-Length: 1\r\n\r\nx"),
              &reason);
    assert_string_equal(reason, "duplicate content-length");
}

static void
test_refuse_transfer_encoding(void **state)
{
    (void)state;
#define TE_REQ(v)                                                              \
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " v "\r\n\r\n"
    EXPECT_REQ(TE_REQ("chunked") "0\r\n\r\n", 0);
    EXPECT_REQ(TE_REQ("CHUNKED") "0\r\n\r\n", 0);
    EXPECT_REQ(TE_REQ("gzip, chunked") "0\r\n\r\n", 501);
    EXPECT_REQ(TE_REQ("gzip,chunked") "0\r\n\r\n", 501);
    EXPECT_REQ(TE_REQ("chunked, gzip") "0\r\n\r\n", 400);
    EXPECT_REQ(TE_REQ("chunked, chunked") "0\r\n\r\n", 400);
    EXPECT_REQ(TE_REQ("xchunked") "0\r\n\r\n", 400);
    EXPECT_REQ(TE_REQ("chunkedx") "0\r\n\r\n", 400);
    EXPECT_REQ(TE_REQ("chunked ") "0\r\n\r\n", 400);
    EXPECT_REQ(TE_REQ("chunked\t") "0\r\n\r\n", 400);
    EXPECT_REQ(TE_REQ("chunked,") "0\r\n\r\n", 400);
    EXPECT_REQ(TE_REQ(", chunked") "0\r\n\r\n", 400);
    EXPECT_REQ(TE_REQ("gzip") "0\r\n\r\n", 400);
    EXPECT_REQ(TE_REQ("identity") "0\r\n\r\n", 400);
    EXPECT_REQ(TE_REQ("chu\"nked") "0\r\n\r\n", 400);
    EXPECT_REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
               "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
               400);
    EXPECT_REQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
               "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
               400);
    EXPECT_REQ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
               "0\r\n\r\n",
               400);
    EXPECT_REASON("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "0\r\n\r\n",
                  "transfer-encoding in http/1.0");
    EXPECT_REASON(TE_REQ("chunked ") "0\r\n\r\n", "invalid transfer-encoding");
#undef TE_REQ
}

static void
test_refuse_chunk_sizes(void **state)
{
    (void)state;
#define CH_REQ                                                                 \
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    EXPECT_REQ(CH_REQ "5\r\nhello\r\n0\r\n\r\n", 0);
    EXPECT_REQ(CH_REQ "005\r\nhello\r\n0\r\n\r\n", 0);
    EXPECT_REQ(CH_REQ "5;c=\"d e\"\r\nhello\r\n0\r\n\r\n", 0);
    /* llhttp 8.1 refuses a second extension; refusing is the safe side */
    EXPECT_REQ(CH_REQ "5;a=b;c=d\r\nhello\r\n0\r\n\r\n", 400);
    EXPECT_REQ(CH_REQ "g\r\nhello\r\n0\r\n\r\n", 400);
    EXPECT_REQ(CH_REQ "0x5\r\nhello\r\n0\r\n\r\n", 400);
    EXPECT_REQ(CH_REQ "-5\r\nhello\r\n0\r\n\r\n", 400);
    EXPECT_REQ(CH_REQ "5 \r\nhello\r\n0\r\n\r\n", 400);
    EXPECT_REQ(CH_REQ " 5\r\nhello\r\n0\r\n\r\n", 400);
    EXPECT_REQ(CH_REQ "\r\nhello\r\n0\r\n\r\n", 400);
    EXPECT_REQ(CH_REQ "fffffffffffffffff\r\nhello\r\n0\r\n\r\n", 400);
    EXPECT_REQ(CH_REQ "10000000000000000\r\nhello\r\n0\r\n\r\n", 400);
    EXPECT_REQ(CH_REQ "5;\r\nhello\r\n0\r\n\r\n", 400);
    EXPECT_REQ(CH_REQ "5;a=b c\r\nhello\r\n0\r\n\r\n", 400);
    EXPECT_REQ(CH_REQ "5;a\x01\r\nhello\r\n0\r\n\r\n", 400);
    EXPECT_REQ(CH_REQ "5 ;a\r\nhello\r\n0\r\n\r\n", 400);
    EXPECT_REQ(CH_REQ "5\r\nhelloXX0\r\n\r\n", 400);
    EXPECT_REQ(CH_REQ "5\r\nhello\r\r\n0\r\n\r\n", 400);
}

static void
test_refuse_bare_lf(void **state)
{
    (void)state;
    /* llhttp 8.1 strict accepts the first two: the scanner refuses them */
    EXPECT_REQ("GET / HTTP/1.1\nHost: a\r\n\r\n", 400);
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: a\r\n\n", 400);
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: a\n\r\n", 400);
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400);
    EXPECT_REQ("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", 400);
    /* chunk framing and trailers */
    EXPECT_REQ(CH_REQ "5\nhello\r\n0\r\n\r\n", 400);
    EXPECT_REQ(CH_REQ "5\r\nhello\n0\r\n\r\n", 400);
    EXPECT_REQ(CH_REQ "5\r\nhello\r\n0\n\r\n", 400);
    EXPECT_REQ(CH_REQ "5;a=b\nhello\r\n0\r\n\r\n", 400);
    EXPECT_REQ(CH_REQ "5\r\nhello\r\n0\r\n\n", 400);
    EXPECT_REQ(CH_REQ "5\r\nhello\r\n0\r\nX: y\r\n\n", 400);
    EXPECT_REQ(CH_REQ "5\r\nhello\r\n0\r\nX: y\n\r\n", 400);
    EXPECT_REASON("GET / HTTP/1.1\nHost: a\r\n\r\n", "bare LF");
    EXPECT_REASON("GET / HTTP/1.1\r\nHost: a\r\n\n", "bare LF");
    EXPECT_REASON(CH_REQ "5\r\nhello\r\n0\r\n\n", "bare LF");
    EXPECT_REASON(CH_REQ "1\r\nx\r\n0\r\nA: b\r\n\n", "bare LF");
    /* one empty line before a request is tolerated (RFC 9112 2.2) */
    EXPECT_REQ("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0);
}

static void
test_refuse_obs_fold(void **state)
{
    (void)state;
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", 400);
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n", 400);
    EXPECT_REQ("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400);
    EXPECT_REQ(CH_REQ "5\r\nhello\r\n0\r\nX: y\r\n z\r\n\r\n", 400);
    const char *reason = NULL;
    status_of(true, L("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n"),
              &reason);
    assert_string_equal(reason, "obs-fold");
#undef CH_REQ
}

static void
test_refuse_ctl_in_values(void **state)
{
    (void)state;
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 400);
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01 b\r\n\r\n", 400);
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: a\r\nX: a\x1f\r\n\r\n", 400);
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", 400);
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: a\r\nX: \0\r\n\r\n", 400);
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: a\r\nX\0: a\r\n\r\n", 400);
    /* HTAB and obs-text are allowed */
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\r\n\r\n", 0);
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n", 0);
}

static void
test_refuse_header_names(void **state)
{
    (void)state;
    EXPECT_REQ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400);
    EXPECT_REQ("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400);
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: a\r\nX Y: b\r\n\r\n", 400);
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", 400);
    EXPECT_REASON("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n",
                  "empty header name");
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: a\r\nX(: b\r\n\r\n", 400);
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400);
}

static void
test_refuse_host(void **state)
{
    (void)state;
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    EXPECT_REQ("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400);
    EXPECT_REQ("GET / HTTP/1.1\r\nHost:\r\nHost: a\r\n\r\n", 400);
    EXPECT_REQ("GET / HTTP/1.1\r\n\r\n", 400);
    EXPECT_REQ("GET / HTTP/1.0\r\n\r\n", 0); /* optional in 1.0 */
    EXPECT_REQ("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    const char *reason = NULL;
    status_of(true, L("GET / HTTP/1.1\r\n\r\n"), &reason);
    assert_string_equal(reason, "missing host");
}

static void
test_refuse_targets(void **state)
{
    (void)state;
    EXPECT_REQ("GET /ok HTTP/1.1\r\nHost: a\r\n\r\n", 0);
    EXPECT_REQ("GET https://a/ok HTTP/1.1\r\nHost: a\r\n\r\n", 0);
    EXPECT_REQ("GET HTTP://a/ok HTTP/1.1\r\nHost: a\r\n\r\n", 0);
    EXPECT_REQ("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    EXPECT_REQ("GET a HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    EXPECT_REQ("GET a.b:80 HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    EXPECT_REQ("GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    EXPECT_REQ("GET ws://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    EXPECT_REQ("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    EXPECT_REQ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    EXPECT_REASON("GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
                  "malformed request line");
    EXPECT_REQ("GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    EXPECT_REQ("OPTIONS /x HTTP/1.1\r\nHost: a\r\n\r\n", 0);
}

static void
test_refuse_connect_and_methods(void **state)
{
    (void)state;
    EXPECT_REQ("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
               405);
    EXPECT_REQ("BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    EXPECT_REQ("get / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    EXPECT_REQ("PATCH / HTTP/1.1\r\nHost: a\r\n\r\n", 0);
}

static void
test_refuse_versions(void **state)
{
    (void)state;
    EXPECT_REQ("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505);
    EXPECT_REQ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505);
    EXPECT_REQ("GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505);
    EXPECT_REQ("GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505);
    EXPECT_REQ("GET /\r\n\r\n", 505);
    EXPECT_REQ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505);
    EXPECT_REQ("GET / HTTP/1.x\r\nHost: a\r\n\r\n", 400);
    EXPECT_REQ("GET / HTTP/11\r\nHost: a\r\n\r\n", 400);
    EXPECT_REQ("GET / http/1.1\r\nHost: a\r\n\r\n", 400);
    EXPECT_REQ("GET / RTSP/1.0\r\nHost: a\r\n\r\n", 400);
    EXPECT_REQ("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400);
    EXPECT_REASON("GET / RTSP/1.0\r\nHost: a\r\n\r\n",
                  "malformed request line");
    EXPECT_REASON("GET / HTTP/1.2\r\nHost: a\r\n\r\n",
                  "unsupported http version");
}

static void
test_error_is_sticky(void **state)
{
    (void)state;
    struct run r;
    const char *reason = NULL;
    run_init(&r, true, L("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"));
    assert_int_equal(step(&r), HTTP_PEV_ERROR);
    assert_int_equal(http_parser_error(r.p, &reason), 400);
    assert_string_equal(reason, "duplicate host");
    r.data = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    r.len = strlen(r.data);
    assert_int_equal(step(&r), HTTP_PEV_ERROR);
    assert_int_equal(http_parser_finish(r.p), HTTP_PEV_ERROR);
    run_cleanup(&r);
}

static void
test_limits(void **state)
{
    (void)state;
    struct cg_buf b;
    const char *reason = NULL;
    cg_buf_init(&b);

    /* one huge header value */
    cg_buf_puts(&b, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    for (int i = 0; i < MAX_HEAD; i++)
        cg_buf_putc(&b, 'v');
    cg_buf_puts(&b, "\r\n\r\n");
    assert_int_equal(status_of(true, b.data, b.len, &reason), 431);
    assert_int_equal(status_of(false, b.data, b.len, &reason), 502);
    cg_buf_reset(&b);

    /* a huge target */
    cg_buf_puts(&b, "GET /");
    for (int i = 0; i < MAX_HEAD; i++)
        cg_buf_putc(&b, 'a');
    cg_buf_puts(&b, " HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(status_of(true, b.data, b.len, &reason), 431);
    cg_buf_reset(&b);

    /* too many headers */
    cg_buf_puts(&b, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < MAX_HDRS; i++)
        cg_buf_printf(&b, "X-%d: %d\r\n", i, i);
    cg_buf_puts(&b, "\r\n");
    assert_int_equal(status_of(true, b.data, b.len, &reason), 431);
    assert_string_equal(reason, "too many headers");
    cg_buf_reset(&b);

    /* exactly at the header limit is fine */
    cg_buf_puts(&b, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < MAX_HDRS - 1; i++)
        cg_buf_printf(&b, "X-%d: %d\r\n", i, i);
    cg_buf_puts(&b, "\r\n");
    assert_int_equal(status_of(true, b.data, b.len, &reason), 0);
    cg_buf_reset(&b);

    /* a flood of empty lines counts as head bytes */
    for (int i = 0; i < MAX_HEAD; i++)
        cg_buf_puts(&b, "\r\n");
    assert_int_equal(status_of(true, b.data, b.len, &reason), 431);
    cg_buf_cleanup(&b);
}

static void
test_limits_split_and_response(void **state)
{
    (void)state;
    struct cg_buf b;
    const char *reason = NULL;
    cg_buf_init(&b);

    /* the limit on responses */
    cg_buf_puts(&b, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < MAX_HDRS + 1; i++)
        cg_buf_printf(&b, "X-%d: %d\r\n", i, i);
    cg_buf_puts(&b, "Content-Length: 0\r\n\r\n");
    assert_int_equal(status_of(false, b.data, b.len, &reason), 502);
    assert_string_equal(reason, "upstream head too large");
    cg_buf_cleanup(&b);

    /* a small head limit, split input */
    struct http_parser *p = http_parser_new(true, 32, 4, NULL, NULL);
    size_t used;
    assert_int_equal(
        http_parser_execute(p, L("GET / HTTP/1.1\r\nHost: a\r\n"), &used),
        HTTP_PEV_NEED_MORE);
    assert_int_equal(http_parser_execute(p, L("X: 12345678\r\n\r\n"), &used),
                     HTTP_PEV_ERROR);
    assert_int_equal(http_parser_error(p, NULL), 431);
    http_parser_free(p);
}

static void
test_expect(void **state)
{
    (void)state;
    struct run r;
    run_init(&r, true,
             L("PUT /f HTTP/1.1\r\nHost: a\r\n"
               "Expect: 100-Continue\r\nContent-Length: 2\r\n\r\n"));
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    assert_true(http_parser_msg(r.p)->expect_continue);
    assert_int_equal(step(&r), HTTP_PEV_NEED_MORE);
    r.data = "ok";
    r.len = 2;
    assert_int_equal(step(&r), HTTP_PEV_DONE);
    assert_memory_equal(r.body.b.data, "ok", 2);
    run_cleanup(&r);

    EXPECT_REQ("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417);
    EXPECT_REQ("PUT / HTTP/1.1\r\nHost: a\r\nExpect: \r\n\r\n", 417);
    EXPECT_REQ("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
               "Expect: foo\r\n\r\n",
               417);
}

static void
test_upgrade_request(void **state)
{
    (void)state;
    static const char req[] = "GET /chat HTTP/1.1\r\n"
                              "Host: server.example.com\r\n"
                              "Upgrade: websocket\r\n"
                              "Connection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n"
                              "\r\n"
                              "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    struct run r;
    run_init(&r, true, L(req));
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    assert_true(http_parser_msg(r.p)->upgrade);
    assert_int_equal(step(&r), HTTP_PEV_DONE);
    assert_true(http_parser_msg(r.p)->upgrade);
    assert_int_equal(r.len, 11); /* frame bytes untouched */
    assert_int_equal(r.body.b.len, 0);
    assert_int_equal(http_parser_finish(r.p), HTTP_PEV_NEED_MORE);
    assert_int_equal(step(&r), HTTP_PEV_ERROR); /* not HTTP any more */
    run_cleanup(&r);

    /* Upgrade without "Connection: upgrade" is no upgrade */
    run_init(&r, true, L("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n\r\n"));
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    assert_false(http_parser_msg(r.p)->upgrade);
    assert_int_equal(step(&r), HTTP_PEV_DONE);
    run_cleanup(&r);
}

static void
test_finish_request(void **state)
{
    (void)state;
    struct run r;
    run_init(&r, true,
             L("POST / HTTP/1.1\r\nHost: a\r\n"
               "Content-Length: 5\r\n\r\nab"));
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    assert_int_equal(step(&r), HTTP_PEV_NEED_MORE);
    assert_int_equal(http_parser_finish(r.p), HTTP_PEV_ERROR);
    assert_int_equal(http_parser_error(r.p, NULL), 400);
    run_cleanup(&r);

    run_init(&r, true, L("GET / HTTP/1.1\r\nHo"));
    assert_int_equal(step(&r), HTTP_PEV_NEED_MORE);
    assert_true(http_parser_in_message(r.p));
    assert_int_equal(http_parser_finish(r.p), HTTP_PEV_ERROR);
    run_cleanup(&r);

    /* a body-less request whose DONE was not yet fetched */
    run_init(&r, true, L("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    assert_int_equal(http_parser_finish(r.p), HTTP_PEV_DONE);
    run_cleanup(&r);
}

/* ---- responses ---- */

static void
test_response_length(void **state)
{
    (void)state;
    struct run r;
    run_init(&r, false,
             L("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n"
               "Server: x\r\n\r\nbody"
               "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
               "\r\n"));
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    const struct http_msg *m = http_parser_msg(r.p);
    assert_false(m->is_request);
    assert_int_equal(m->status, 200);
    assert_str(http_msg_reason(m), "OK");
    assert_int_equal(m->framing, HTTP_BODY_LENGTH);
    assert_int_equal(m->content_length, 4);
    assert_true(m->keep_alive);
    assert_int_equal(step(&r), HTTP_PEV_DONE);
    assert_memory_equal(r.body.b.data, "body", 4);
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    assert_int_equal(m->status, 404);
    assert_str(http_msg_reason(m), "Not Found");
    assert_int_equal(step(&r), HTTP_PEV_DONE);
    assert_int_equal(step(&r), HTTP_PEV_NEED_MORE);
    run_cleanup(&r);
}

static void
test_response_chunked(void **state)
{
    (void)state;
    struct run r;
    run_init(&r, false,
             L("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
               "\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"));
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    assert_int_equal(http_parser_msg(r.p)->framing, HTTP_BODY_CHUNKED);
    assert_int_equal(step(&r), HTTP_PEV_DONE);
    assert_int_equal(r.body.b.len, 5);
    assert_memory_equal(r.body.b.data, "abcde", 5);
    run_cleanup(&r);
}

static void
test_response_eof(void **state)
{
    (void)state;
    struct run r;
    run_init(&r, false, L("HTTP/1.0 200 OK\r\nServer: old\r\n\r\nfirst "));
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    const struct http_msg *m = http_parser_msg(r.p);
    assert_int_equal(m->framing, HTTP_BODY_EOF);
    assert_false(m->keep_alive);
    assert_int_equal(step(&r), HTTP_PEV_NEED_MORE);
    assert_true(http_parser_in_message(r.p));
    r.data = "second";
    r.len = 6;
    assert_int_equal(step(&r), HTTP_PEV_NEED_MORE);
    assert_int_equal(http_parser_finish(r.p), HTTP_PEV_DONE);
    assert_int_equal(r.body.b.len, 12);
    assert_memory_equal(r.body.b.data, "first second", 12);
    assert_false(http_parser_in_message(r.p));
    assert_int_equal(http_parser_finish(r.p), HTTP_PEV_NEED_MORE);
    run_cleanup(&r);

    /* EOF right after the head: empty body */
    run_init(&r, false, L("HTTP/1.1 200 OK\r\n\r\n"));
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    assert_int_equal(http_parser_finish(r.p), HTTP_PEV_DONE);
    assert_int_equal(r.body.b.len, 0);
    run_cleanup(&r);

    /* Transfer-Encoding without final chunked: read until close */
    run_init(&r, false,
             L("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n"
               "\r\nzz"));
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    assert_int_equal(http_parser_msg(r.p)->framing, HTTP_BODY_EOF);
    assert_int_equal(step(&r), HTTP_PEV_NEED_MORE);
    assert_int_equal(http_parser_finish(r.p), HTTP_PEV_DONE);
    assert_int_equal(r.body.b.len, 2);
    run_cleanup(&r);

    /* truncated Content-Length body */
    run_init(&r, false, L("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab"));
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    assert_int_equal(step(&r), HTTP_PEV_NEED_MORE);
    assert_int_equal(http_parser_finish(r.p), HTTP_PEV_ERROR);
    assert_int_equal(http_parser_error(r.p, NULL), 502);
    run_cleanup(&r);
}

/* A response that has no body: HEAD, then DONE consuming nothing. */
static void
expect_bodiless(struct run *r, int status)
{
    assert_int_equal(step(r), HTTP_PEV_HEAD);
    const struct http_msg *m = http_parser_msg(r->p);
    assert_int_equal(m->status, status);
    assert_int_equal(m->framing, HTTP_BODY_NONE);
    size_t before = r->len;
    assert_int_equal(step(r), HTTP_PEV_DONE);
    assert_int_equal(r->len, before);
    assert_int_equal(r->body.b.len, 0);
}

static void
test_response_204_304(void **state)
{
    (void)state;
    struct run r;
    /* a Content-Length on 204/304 announces no body here */
    run_init(&r, false,
             L("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"
               "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n"
               "ETag: \"x\"\r\n\r\n"
               "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!"));
    expect_bodiless(&r, 204);
    assert_true(http_parser_msg(r.p)->keep_alive);
    expect_bodiless(&r, 304);
    assert_str(hdr(http_parser_msg(r.p), "etag"), "\"x\"");
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    assert_int_equal(step(&r), HTTP_PEV_DONE);
    assert_int_equal(r.body.b.len, 1);
    assert_int_equal(r.len, 0);
    run_cleanup(&r);
}

static void
test_response_to_head(void **state)
{
    (void)state;
    struct run r;
    run_init(&r, false,
             L("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
               "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
               "\r\n"
               "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"));
    http_parser_set_head_response(r.p, true);
    expect_bodiless(&r, 200);
    assert_true(http_parser_msg(r.p)->keep_alive);
    http_parser_set_head_response(r.p, true);
    expect_bodiless(&r, 200);
    /* the flag covered one response only */
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    assert_int_equal(http_parser_msg(r.p)->framing, HTTP_BODY_LENGTH);
    assert_int_equal(step(&r), HTTP_PEV_DONE);
    assert_memory_equal(r.body.b.data, "hi", 2);
    run_cleanup(&r);
}

static void
test_response_100_then_200(void **state)
{
    (void)state;
    struct run r;
    run_init(&r, false,
             L("HTTP/1.1 100 Continue\r\n\r\n"
               "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"));
    http_parser_set_head_response(r.p, false);
    expect_bodiless(&r, 100);
    assert_false(http_parser_msg(r.p)->upgrade);
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    assert_int_equal(http_parser_msg(r.p)->status, 200);
    assert_int_equal(step(&r), HTTP_PEV_DONE);
    assert_memory_equal(r.body.b.data, "hi", 2);
    assert_int_equal(r.len, 0);
    run_cleanup(&r);

    /* HEAD applies to the final response, not to the 1xx before it */
    run_init(&r, false,
             L("HTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n"
               "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"));
    http_parser_set_head_response(r.p, true);
    expect_bodiless(&r, 103);
    expect_bodiless(&r, 200);
    run_cleanup(&r);
}

static void
test_response_101(void **state)
{
    (void)state;
    struct run r;
    run_init(&r, false,
             L("HTTP/1.1 101 Switching Protocols\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
               "\r\n\x81\x02hi"));
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    assert_true(http_parser_msg(r.p)->upgrade);
    assert_int_equal(step(&r), HTTP_PEV_DONE);
    assert_true(http_parser_msg(r.p)->upgrade);
    assert_int_equal(r.len, 4);
    assert_int_equal(r.body.b.len, 0);
    run_cleanup(&r);

    /* 101 without the headers still ends HTTP on this connection */
    run_init(&r, false, L("HTTP/1.1 101 Switching Protocols\r\n\r\nxyz"));
    assert_int_equal(step(&r), HTTP_PEV_HEAD);
    assert_int_equal(step(&r), HTTP_PEV_DONE);
    assert_true(http_parser_msg(r.p)->upgrade);
    assert_int_equal(r.len, 3);
    run_cleanup(&r);
}

static void
test_response_refusals(void **state)
{
    (void)state;
    const char *reason = NULL;
    assert_int_equal(RESP_STATUS("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                                 "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
                     502);
    assert_int_equal(RESP_STATUS("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                                 "Content-Length: 5\r\n\r\nhello"),
                     502);
    assert_int_equal(status_of(false,
                               L("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                 "content-length: 2\r\n\r\nhi"),
                               &reason),
                     502);
    assert_string_equal(reason, "duplicate content-length");
    assert_int_equal(RESP_STATUS("HTTP/1.1 200 OK\r\nContent-Length: x\r\n"
                                 "\r\n"),
                     502);
    assert_int_equal(RESP_STATUS("HTTP/2.0 200 OK\r\n\r\n"), 502);
    assert_int_equal(RESP_STATUS("ICY 200 OK\r\n\r\n"), 502);
    assert_int_equal(RESP_STATUS("HTTP/1.1 200 OK\nX: y\r\n\r\n"), 502);
    assert_int_equal(RESP_STATUS("HTTP/1.1 200 OK\r\nX: y\r\n z\r\n\r\n"), 502);
    assert_int_equal(RESP_STATUS("HTTP/1.1 200 OK\r\nTransfer-Encoding: "
                                 "chunked\r\n\r\nzz\r\n"),
                     502);
    /* tolerated: no reason phrase, unusual status codes */
    assert_int_equal(RESP_STATUS("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"),
                     0);
    assert_int_equal(RESP_STATUS("HTTP/1.1 599 Odd\r\nContent-Length: 0\r\n"
                                 "\r\n"),
                     0);
}

/* ---- headers.c ---- */

static void
test_strip_set(void **state)
{
    (void)state;
    struct http_strip_set *s = http_strip_set_new();
    assert_false(http_strip_set_has(s, L("X-Client-Verify")));
    http_strip_set_add(s, "X-Client-Verify");
    http_strip_set_add(s, "x-client-dn");
    http_strip_set_add(s, "X_CLIENT_DN"); /* same name: no duplicate */
    assert_true(http_strip_set_has(s, L("X-Client-Verify")));
    assert_true(http_strip_set_has(s, L("x-client-verify")));
    assert_true(http_strip_set_has(s, L("x_client_VERIFY")));
    assert_true(http_strip_set_has(s, L("X_Client-Verify")));
    assert_true(http_strip_set_has(s, L("X-CLIENT-DN")));
    assert_false(http_strip_set_has(s, L("X-Client-Verify2")));
    assert_false(http_strip_set_has(s, L("X-Client-Verif")));
    assert_false(http_strip_set_has(s, L("XClientVerify")));
    assert_false(http_strip_set_has(s, L("X.Client.Verify")));
    assert_false(http_strip_set_has(s, L("")));
    /* the length bounds the name, not a NUL */
    assert_true(http_strip_set_has(s, "x-client-dnJUNK", 11));
    http_strip_set_free(s);
    http_strip_set_free(NULL);
}

static void
test_hop_by_hop(void **state)
{
    (void)state;
    static const char *const hop[] = {
        "Connection",
        "keep-alive",
        "PROXY-CONNECTION",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "upgrade",
    };
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        assert_true(http_is_hop_by_hop(hop[i], strlen(hop[i])));
    assert_false(http_is_hop_by_hop(L("Trailers")));
    assert_false(http_is_hop_by_hop(L("Content-Length")));
    assert_false(http_is_hop_by_hop(L("Host")));
    assert_false(http_is_hop_by_hop(L("T")));
    assert_false(http_is_hop_by_hop(L("")));
    assert_true(http_is_hop_by_hop("TEXT", 2));
}

static void
test_token_lists(void **state)
{
    (void)state;
    assert_true(http_value_has_token(L("keep-alive, Upgrade"), "upgrade"));
    assert_true(http_value_has_token(L("keep-alive, Upgrade"), "KEEP-ALIVE"));
    assert_true(http_value_has_token(L("close"), "close"));
    assert_true(http_value_has_token(L(" \tclose\t "), "close"));
    assert_true(http_value_has_token(L("a,,b ,  c"), "c"));
    assert_true(http_value_has_token(L("a,upgrade,"), "upgrade"));
    assert_false(http_value_has_token(L("upgrader"), "upgrade"));
    assert_false(http_value_has_token(L("x-upgrade"), "upgrade"));
    assert_false(http_value_has_token(L("up grade"), "upgrade"));
    assert_false(http_value_has_token(L(""), "upgrade"));
    assert_false(http_value_has_token(L("keep-alive"), "keep"));
}

static void
expect_safe(const char *in, size_t len, const char *want)
{
    struct cg_buf b;
    cg_buf_init(&b);
    cg_buf_puts(&b, "pre:");
    http_value_append_safe(&b, in, len);
    if (strlen(want) + 4 != b.len || memcmp(b.data + 4, want, b.len - 4))
        fail_msg("got \"%s\", want \"pre:%s\"", b.data, want);
    cg_buf_cleanup(&b);
}

static void
test_value_append_safe(void **state)
{
    (void)state;
    expect_safe(L("CN=alice,O=Example"), "CN=alice,O=Example");
    expect_safe(L("a\r\nX-Injected: 1"), "a%0D%0AX-Injected: 1");
    expect_safe(L("a\0b"), "a%00b");
    expect_safe(L("100%"), "100%25");
    expect_safe(L("%0A"), "%250A");
    expect_safe(L("\t\x1f\x7f"), "%09%1F%7F");
    expect_safe(L("  two  words  "), "%20%20two  words%20%20");
    expect_safe(L("   "), "%20%20%20");
    expect_safe(L("caf\xc3\xa9"), "caf\xc3\xa9");
    expect_safe(L(""), "");
    /* random values (long runs of plain bytes, a few of each kind to
     * escape, at every offset, edge spaces) against a byte-at-a-time
     * reference */
    srand(9112);
    static const char special[] = {0x00,       0x1f, 0x7f, '%',  ' ',
                                   '\t',       0x20, 0x21, 0x7e, (char)0x80,
                                   (char)0xff, 0x24, 0x26, 0x1e, 0x60};
    for (int round = 0; round < 3000; round++) {
        char in[200], want[700];
        size_t len = (size_t)rand() % sizeof(in), w = 0;
        int sparse = 2 + round % 60; /* one special byte in about that many */
        for (size_t i = 0; i < len; i++)
            in[i] = rand() % sparse == 0 ? special[rand() % sizeof(special)]
                                         : (char)('A' + rand() % 26);
        size_t lead = 0, trail = len;
        while (lead < len && in[lead] == ' ')
            lead++;
        while (trail > lead && in[trail - 1] == ' ')
            trail--;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)in[i];
            if (c < 0x20 || c == 0x7f || c == '%' ||
                (c == ' ' && (i < lead || i >= trail)))
                w += (size_t)sprintf(want + w, "%%%02X", c);
            else
                want[w++] = (char)c;
        }
        want[w] = '\0';
        struct cg_buf b;
        cg_buf_init(&b);
        http_value_append_safe(&b, in, len);
        assert_int_equal(b.len, w);
        assert_memory_equal(b.data, want, w);
        cg_buf_cleanup(&b);
    }
}

static void
expect_host(const char *in, const char *want)
{
    struct cg_buf b;
    cg_buf_init(&b);
    bool ok = http_host_normalize(in, strlen(in), &b);
    if (want == NULL) {
        if (ok)
            fail_msg("host \"%s\" accepted as \"%s\"", in, b.data);
        assert_int_equal(b.len, 0);
    } else {
        if (!ok)
            fail_msg("host \"%s\" refused", in);
        assert_int_equal(b.len, strlen(want));
        assert_memory_equal(b.data, want, b.len);
    }
    cg_buf_cleanup(&b);
}

static void
test_host_normalize(void **state)
{
    (void)state;
    expect_host("Example.COM", "example.com");
    expect_host("example.com:8443", "example.com");
    expect_host("example.com.", "example.com");
    expect_host("Example.com.:443", "example.com");
    expect_host("example.com:", "example.com");
    expect_host("my_host-1.internal", "my_host-1.internal");
    expect_host("192.0.2.1:80", "192.0.2.1");
    expect_host("[::1]", "[::1]");
    expect_host("[2001:DB8::1]:8443", "[2001:db8::1]");
    expect_host("[::ffff:192.0.2.1]", "[::ffff:192.0.2.1]");
    expect_host("", NULL);
    expect_host(":443", NULL);
    expect_host(".", NULL);
    expect_host("example.com..", NULL);
    expect_host(".example.com", NULL);
    expect_host("a..b", NULL);
    expect_host("user@example.com", NULL);
    expect_host("example.com/path", NULL);
    expect_host("exa mple.com", NULL);
    expect_host("example.com ", NULL);
    expect_host("example.com\r\nX: y", NULL);
    expect_host("example.com:80:80", NULL);
    expect_host("example.com:http", NULL);
    expect_host("example.com:65536", NULL);
    expect_host("example.com:123456", NULL);
    expect_host("example.com:-1", NULL);
    expect_host("[::1", NULL);
    expect_host("[]", NULL);
    expect_host("[::1]x", NULL);
    expect_host("[::1]:x", NULL);
    expect_host("[fe80::1%25eth0]", NULL);
    expect_host("[example.com]", NULL);
    expect_host("::1", NULL);
    expect_host("exa%6dple.com", NULL);

    /* appends; a refusal leaves out unchanged */
    struct cg_buf b;
    cg_buf_init(&b);
    cg_buf_puts(&b, "host=");
    assert_false(http_host_normalize(L("a@b"), &b));
    assert_string_equal(cg_buf_cstr(&b), "host=");
    assert_true(http_host_normalize(L("A.B"), &b));
    assert_string_equal(cg_buf_cstr(&b), "host=a.b");
    /* a NUL inside the counted input */
    assert_false(http_host_normalize(L("a\0b"), &b));
    cg_buf_cleanup(&b);
}

/* Path normalisation: dot segments, encoded dots, slashes, refusals. */
static void
check_path(const char *in, const char *want)
{
    struct cg_buf out;
    cg_buf_init(&out);
    bool ok = http_path_normalize(in, strlen(in), &out);
    if (want == NULL) {
        assert_false(ok);
    } else {
        assert_true(ok);
        assert_string_equal(cg_buf_cstr(&out), want);
    }
    cg_buf_cleanup(&out);
}

static void
test_path_normalize(void **state)
{
    (void)state;
    check_path("/", "/");
    check_path("/a/b", "/a/b");
    check_path("/a/b/", "/a/b/");
    check_path("/open/../dom/x", "/dom/x");
    check_path("/open/%2e%2e/dom/x", "/dom/x");
    check_path("/open/%2E%2E/dom/x", "/dom/x");
    check_path("/open/./../dom/x?q=/../a", "/dom/x?q=/../a");
    check_path("//dom//x", "/dom/x");
    check_path("/a/.", "/a/");
    check_path("/a/..", "/");
    check_path("/a/%2e", "/a/");
    check_path("/a/.b/..c", "/a/.b/..c");
    check_path("/%41", "/%41");
    check_path("/..", NULL);
    check_path("/a/../../b", NULL);
    check_path("/a%2fb", NULL);
    check_path("/a%5Cb", NULL);
    check_path("/a\\b", NULL);
    check_path("/a%00", NULL);
    check_path("a/b", NULL);
    check_path("?x", NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_head_and_options),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_content_length_body),
        cmocka_unit_test(test_chunked_body),
        cmocka_unit_test(test_refuse_cl_te),
        cmocka_unit_test(test_refuse_content_length),
        cmocka_unit_test(test_refuse_transfer_encoding),
        cmocka_unit_test(test_refuse_chunk_sizes),
        cmocka_unit_test(test_refuse_bare_lf),
        cmocka_unit_test(test_refuse_obs_fold),
        cmocka_unit_test(test_refuse_ctl_in_values),
        cmocka_unit_test(test_refuse_header_names),
        cmocka_unit_test(test_refuse_host),
        cmocka_unit_test(test_refuse_targets),
        cmocka_unit_test(test_refuse_connect_and_methods),
        cmocka_unit_test(test_refuse_versions),
        cmocka_unit_test(test_error_is_sticky),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_limits_split_and_response),
        cmocka_unit_test(test_expect),
        cmocka_unit_test(test_upgrade_request),
        cmocka_unit_test(test_finish_request),
        cmocka_unit_test(test_response_length),
        cmocka_unit_test(test_response_chunked),
        cmocka_unit_test(test_response_eof),
        cmocka_unit_test(test_response_204_304),
        cmocka_unit_test(test_response_to_head),
        cmocka_unit_test(test_response_100_then_200),
        cmocka_unit_test(test_response_101),
        cmocka_unit_test(test_response_refusals),
        cmocka_unit_test(test_strip_set),
        cmocka_unit_test(test_hop_by_hop),
        cmocka_unit_test(test_token_lists),
        cmocka_unit_test(test_value_append_safe),
        cmocka_unit_test(test_host_normalize),
        cmocka_unit_test(test_path_normalize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
