/*
 * libFuzzer target for src/http/parse.c and parse_check.c (and the header
 * helpers): the input after a 5-byte prefix is fed to a request or
 * response parser in pseudo-random pieces, driven as the proxy drives it.
 *
 * Prefix: byte 0 = mode (bit 0: response parser, bit 1: the response
 * answers HEAD, bit 2: small limits), bytes 1..4 = seed of the split sizes.
 *
 * Build and run (from the repository root; not part of CMake):
 *
 *   mkdir -p build-fuzz/corpus-http
 *   clang -g -O1 -std=c17 -fsanitize=fuzzer,address,undefined \
 *     -fno-sanitize-recover=undefined -D_GNU_SOURCE -DLLHTTP_STRICT_MODE=1 \
 *     -Isrc -isystem /usr/share/include/llhttp \
 *     fuzz/fuzz_http_parse.c src/http/parse.c src/http/parse_check.c \
 *     src/http/headers.c src/core/buf.c src/core/util.c src/core/xmalloc.c \
 *     src/core/err.c \
 *     /usr/share/llhttp/llhttp.c /usr/share/llhttp/api.c \
 *     /usr/share/llhttp/http.c -o build-fuzz/fuzz_http_parse
 *   ./build-fuzz/fuzz_http_parse -max_total_time=60 -max_len=4096 \
 *     -dict=fuzz/http.dict build-fuzz/corpus-http fuzz/corpus/http
 *
 * (seeds in fuzz/corpus/http start with the 5-byte prefix.)
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/util.h"
#include "http/headers.h"
#include "http/parse.h"

#include "fuzz_check.h"

struct body {
    uint64_t n;
};

static void
body_fn(void *arg, const char *p, size_t n)
{
    struct body *b = arg;
    CHECK(p != NULL && n > 0);
    /* touch every byte so ASan sees out-of-bounds spans */
    volatile char sum = 0;
    for (size_t i = 0; i < n; i++)
        sum ^= p[i];
    (void)sum;
    b->n += n;
}

static uint32_t
next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Checks a reported head and runs the header helpers over it. */
static void
check_head(const struct http_msg *m, size_t max_head, size_t max_hdrs,
           bool request)
{
    struct cg_buf b;
    CHECK(m->is_request == request);
    CHECK(m->head_bytes <= max_head);
    CHECK(m->n_hdrs <= max_hdrs);
    CHECK(m->framing != HTTP_BODY_EOF || !request);
    CHECK(m->version_major == 1 && m->version_minor <= 1);
    cg_buf_init(&b);
    for (size_t i = 0; i < m->n_hdrs; i++) {
        struct cg_str n = http_msg_name(m, i);
        struct cg_str v = http_msg_value(m, i);
        CHECK(n.len > 0);
        for (size_t j = 0; j < v.len; j++)
            CHECK(v.p[j] == '\t' ||
                  ((unsigned char)v.p[j] >= 0x20 && v.p[j] != 0x7f));
        (void)http_is_hop_by_hop(n.p, n.len);
        (void)http_value_has_token(v.p, v.len, "upgrade");
        cg_buf_reset(&b);
        http_value_append_safe(&b, v.p, v.len);
        CHECK(!cg_has_ctl(b.data, b.len));
        cg_buf_reset(&b);
        if (http_host_normalize(v.p, v.len, &b)) {
            CHECK(b.len > 0 && !cg_has_ctl(b.data, b.len));
            CHECK(memchr(b.data, '@', b.len) == NULL);
            CHECK(memchr(b.data, '/', b.len) == NULL);
            CHECK(memchr(b.data, ' ', b.len) == NULL);
        }
    }
    if (request) {
        struct cg_str t = http_msg_target(m);
        CHECK(t.len > 0);
        CHECK(!m->is_connect);
    }
    cg_buf_cleanup(&b);
}

/* One fuzz case: the settings from the prefix and the run's state. */
struct fcase {
    bool request, head_resp;
    size_t max_head, max_hdrs;
    struct http_parser *p;
    struct body body;
    uint64_t body_at_head;
};

/* Checks a HEAD or DONE event; returns false when parsing must stop. */
static bool
check_event(struct fcase *c, enum http_pev ev)
{
    const struct http_msg *m = http_parser_msg(c->p);
    if (ev == HTTP_PEV_HEAD) {
        check_head(m, c->max_head, c->max_hdrs, c->request);
        c->body_at_head = c->body.n;
        return true;
    }
    CHECK(ev == HTTP_PEV_DONE);
    CHECK(!http_parser_in_message(c->p));
    uint64_t got = c->body.n - c->body_at_head;
    if (m->framing == HTTP_BODY_LENGTH)
        CHECK(got == m->content_length);
    if (m->framing == HTTP_BODY_NONE)
        CHECK(got == 0);
    if (m->upgrade)
        return false; /* the rest is not HTTP */
    if (!c->request && m->status >= 200)
        http_parser_set_head_response(c->p, c->head_resp);
    return true;
}

/* Feeds in[0..len) in random pieces, re-feeding what was not consumed. */
static void
feed(struct fcase *c, const char *in, size_t len, uint32_t seed)
{
    size_t pos = 0, have = 0;
    int stalls = 0;
    for (;;) {
        /* bytes [pos, have) were delivered and not consumed yet */
        if (have < len && (have == pos || next_rand(&seed) % 4 == 0)) {
            size_t n = next_rand(&seed) % 3 == 0 ? 1 : next_rand(&seed) % 97;
            have = have + n > len ? len : have + n;
        }
        size_t used = 0;
        enum http_pev ev =
            http_parser_execute(c->p, in + pos, have - pos, &used);
        CHECK(used <= have - pos);
        pos += used;
        if (ev == HTTP_PEV_ERROR) {
            const char *reason = NULL;
            int st = http_parser_error(c->p, &reason);
            CHECK(st >= 400 && st <= 505 && reason != NULL);
            CHECK(c->request || st == 502);
            return;
        }
        if (ev == HTTP_PEV_NEED_MORE) {
            CHECK(pos == have);
            stalls = 0;
            if (have < len)
                continue;
            if (http_parser_finish(c->p) == HTTP_PEV_ERROR)
                CHECK(http_parser_error(c->p, NULL) != 0);
            return;
        }
        if (used > 0)
            stalls = 0;
        else
            CHECK(++stalls < 3); /* no endless empty events */
        if (!check_event(c, ev))
            return;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fcase c = {0};
    if (size < 5)
        return 0;
    c.request = (data[0] & 1) == 0;
    c.head_resp = (data[0] & 2) != 0;
    c.max_head = (data[0] & 4) ? 64 : 8192;
    c.max_hdrs = (data[0] & 4) ? 4 : 100;
    uint32_t seed = (uint32_t)data[1] | (uint32_t)data[2] << 8 |
                    (uint32_t)data[3] << 16 | (uint32_t)data[4] << 24;
    c.p = http_parser_new(c.request, c.max_head, c.max_hdrs, body_fn, &c.body);
    if (!c.request)
        http_parser_set_head_response(c.p, c.head_resp);
    feed(&c, (const char *)data + 5, size - 5, seed | 1);
    http_parser_free(c.p);
    return 0;
}
