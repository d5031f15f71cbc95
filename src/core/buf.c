#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"

void
cg_buf_init(struct cg_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void
cg_buf_cleanup(struct cg_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void
cg_buf_reserve(struct cg_buf *b, size_t n)
{
    if (b->off > 0 && b->off == b->len) {
        b->off = b->len = 0;
    }
    if (b->cap - b->len >= n + 1)
        return;
    if (b->off > 0 && b->cap - (b->len - b->off) >= n + 1 &&
        b->off >= b->cap / 2) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        return;
    }
    size_t want = b->len + n + 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void
cg_buf_append(struct cg_buf *b, const void *p, size_t n)
{
    cg_buf_reserve(b, n);
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void
cg_buf_puts(struct cg_buf *b, const char *s)
{
    cg_buf_append(b, s, strlen(s));
}

void
cg_buf_putc(struct cg_buf *b, char c)
{
    cg_buf_append(b, &c, 1);
}

void
cg_buf_vprintf(struct cg_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n <= 0)
        return;
    cg_buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void
cg_buf_printf(struct cg_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cg_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void
cg_buf_consume(struct cg_buf *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len)
        b->off = b->len = 0;
}

void
cg_buf_reset(struct cg_buf *b)
{
    b->off = b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

const char *
cg_buf_cstr(struct cg_buf *b)
{
    cg_buf_reserve(b, 0);
    b->data[b->len] = '\0';
    return b->data + b->off;
}

void
cg_buf_shrink(struct cg_buf *b, size_t keep)
{
    if (b->off == b->len && b->cap > keep) {
        cg_buf_cleanup(b);
    }
}

char *
cg_buf_take(struct cg_buf *b)
{
    cg_buf_cstr(b);
    if (b->off > 0) {
        memmove(b->data, b->data + b->off, b->len - b->off + 1);
    }
    char *s = b->data;
    memset(b, 0, sizeof(*b));
    return s;
}
