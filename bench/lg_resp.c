/*
 * bench/loadgen: a minimal HTTP/1.1 response reader. It only needs to
 * know where a response ends (Content-Length, chunked, or the end of the
 * connection) and its status; it does not keep the body.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lg.h"

void
lg_resp_init(struct lg_resp *r)
{
    r->st = LG_RS_HEAD;
    r->status = 0;
    r->close = false;
    r->remain = 0;
    r->hlen = 0;
}

/* True when the header line [p, p+n) is named name (case-insensitive);
 * *val then points at its value. */
static bool
header_is(const char *p, size_t n, const char *name, const char **val)
{
    size_t k = strlen(name);

    if (n <= k || p[k] != ':' || strncasecmp(p, name, k) != 0)
        return false;
    *val = p + k + 1;
    while (*val < p + n && (**val == ' ' || **val == '\t'))
        (*val)++;
    return true;
}

/* True when the value [v, end) contains word, case-insensitively. */
static bool
value_has(const char *v, const char *end, const char *word)
{
    size_t k = strlen(word);

    for (; v + k <= end; v++)
        if (strncasecmp(v, word, k) == 0)
            return true;
    return false;
}

/* Parses the complete head in r->head and picks the body framing. */
static int
parse_head(struct lg_resp *r)
{
    const char *p = r->head, *end = r->head + r->hlen, *v;
    bool chunked = false, has_len = false;
    uint64_t len = 0;

    if (r->hlen < 12 || strncmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ')
        return -1;
    r->status = atoi(p + 9);
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL && ++p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        size_t n = eol ? (size_t)(eol - p) : (size_t)(end - p);

        if (header_is(p, n, "content-length", &v)) {
            has_len = true;
            len = strtoull(v, NULL, 10);
        } else if (header_is(p, n, "transfer-encoding", &v)) {
            chunked = value_has(v, p + n, "chunked");
        } else if (header_is(p, n, "connection", &v)) {
            r->close = value_has(v, p + n, "close");
        }
    }
    r->hlen = 0;
    if (r->status < 200 || r->status == 204 || r->status == 304)
        r->st = LG_RS_DONE;
    else if (chunked)
        r->st = LG_RS_CHUNK_SIZE;
    else if (has_len && len == 0)
        r->st = LG_RS_DONE;
    else if (has_len)
        r->st = LG_RS_BODY_LEN;
    else
        r->st = LG_RS_BODY_EOF;
    r->remain = len;
    return 0;
}

/* Adds one byte to the line/head buffer; returns -1 when it is full. */
static int
push(struct lg_resp *r, char ch)
{
    if (r->hlen == sizeof(r->head))
        return -1;
    r->head[r->hlen++] = ch;
    return 0;
}

/* True when the buffer ends with the n-byte terminator t. */
static bool
ends_with(const struct lg_resp *r, const char *t, size_t n)
{
    return r->hlen >= n && memcmp(r->head + r->hlen - n, t, n) == 0;
}

/* Copies head bytes until the blank line; returns how many it took, or
 * -1 if the head does not fit. Scans whole chunks (memmem), not bytes. */
static long
feed_head(struct lg_resp *r, const char *p, size_t n)
{
    size_t room = sizeof(r->head) - r->hlen, take = n < room ? n : room;
    size_t from = r->hlen > 3 ? r->hlen - 3 : 0;
    const char *end;

    memcpy(r->head + r->hlen, p, take);
    end = memmem(r->head + from, r->hlen + take - from, "\r\n\r\n", 4);
    if (end == NULL) {
        r->hlen += take;
        return r->hlen == sizeof(r->head) ? -1 : (long)take;
    }
    take = (size_t)(end + 4 - r->head) - r->hlen;
    r->hlen += take;
    return parse_head(r) < 0 ? -1 : (long)take;
}

/* Consumes one byte of a chunk-size or trailer line. */
static int
feed_line(struct lg_resp *r, char ch)
{
    if (push(r, ch) < 0)
        return -1;
    if (!ends_with(r, "\r\n", 2))
        return 0;
    if (r->st == LG_RS_TRAILER) {
        r->st = r->hlen == 2 ? LG_RS_DONE : LG_RS_TRAILER;
        r->hlen = 0;
        return 0;
    }
    r->head[r->hlen - 2] = '\0';
    r->remain = strtoull(r->head, NULL, 16);
    r->hlen = 0;
    r->st = r->remain ? LG_RS_CHUNK_DATA : LG_RS_TRAILER;
    return 0;
}

/* Consumes body bytes of a counted state; returns how many it took. */
static size_t
feed_counted(struct lg_resp *r, size_t n)
{
    size_t take = n < r->remain ? n : (size_t)r->remain;

    r->remain -= take;
    if (r->remain == 0) {
        if (r->st == LG_RS_BODY_LEN) {
            r->st = LG_RS_DONE;
        } else if (r->st == LG_RS_CHUNK_DATA) {
            r->st = LG_RS_CHUNK_CRLF;
            r->remain = 2;
        } else {
            r->st = LG_RS_CHUNK_SIZE;
        }
    }
    return take;
}

int
lg_resp_feed(struct lg_resp *r, const char *p, size_t n)
{
    while (n > 0 && r->st != LG_RS_DONE) {
        switch (r->st) {
        case LG_RS_HEAD: {
            long k = feed_head(r, p, n);
            if (k < 0)
                return -1;
            p += k, n -= (size_t)k;
            break;
        }
        case LG_RS_CHUNK_SIZE:
        case LG_RS_TRAILER:
            if (feed_line(r, *p) < 0)
                return -1;
            p++, n--;
            break;
        case LG_RS_BODY_LEN:
        case LG_RS_CHUNK_DATA:
        case LG_RS_CHUNK_CRLF: {
            size_t k = feed_counted(r, n);
            p += k, n -= k;
            break;
        }
        case LG_RS_BODY_EOF:
            n = 0;
            break;
        case LG_RS_DONE:
            break;
        }
    }
    return r->st == LG_RS_DONE ? 1 : 0;
}

int
lg_connack_feed(struct lg_resp *r, const char *p, size_t n)
{
    size_t take = n < 4 - r->hlen ? n : 4 - r->hlen;

    memcpy(r->head + r->hlen, p, take);
    r->hlen += take;
    if (take < n)
        return -1; /* nothing may follow a CONNACK before we publish */
    if (r->hlen < 4)
        return 0;
    if ((unsigned char)r->head[0] != 0x20 || r->head[1] != 0x02)
        return -1;
    r->status = r->head[3] == 0 ? 200 : 1000 + (unsigned char)r->head[3];
    r->st = LG_RS_DONE;
    return 1;
}

size_t
lg_mqtt_connect(char *buf, size_t cap, const char *id, int keepalive)
{
    size_t idlen = strlen(id), n = 0;

    if (idlen > 23 || cap < 14 + idlen)
        abort();
    buf[n++] = 0x10;
    buf[n++] = (char)(10 + 2 + idlen);  /* variable header + payload */
    memcpy(buf + n, "\0\4MQTT\4\2", 8); /* name, level 4, clean session */
    n += 8;
    buf[n++] = (char)((keepalive >> 8) & 0xff);
    buf[n++] = (char)(keepalive & 0xff);
    buf[n++] = 0;
    buf[n++] = (char)idlen;
    memcpy(buf + n, id, idlen);
    return n + idlen;
}
