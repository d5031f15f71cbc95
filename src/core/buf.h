/*
 * Growable byte buffer with a read offset: data between off and len is
 * pending. Embedded: cg_buf_init / cg_buf_cleanup.
 */
#ifndef CG_CORE_BUF_H
#define CG_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct cg_buf {
    char *data;
    size_t off; /* first unread byte */
    size_t len; /* end of valid bytes */
    size_t cap;
};

/* Counted string; borrowed unless stated. */
struct cg_str {
    const char *p;
    size_t len;
};

#define CG_STR(lit) ((struct cg_str){(lit), sizeof(lit) - 1})

void cg_buf_init(struct cg_buf *b);
void cg_buf_cleanup(struct cg_buf *b);
/* Ensures room for n more bytes after len; may compact. */
void cg_buf_reserve(struct cg_buf *b, size_t n);
void cg_buf_append(struct cg_buf *b, const void *p, size_t n);
void cg_buf_puts(struct cg_buf *b, const char *s);
void cg_buf_putc(struct cg_buf *b, char c);
void cg_buf_printf(struct cg_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cg_buf_vprintf(struct cg_buf *b, const char *fmt, va_list ap);
/* Pending bytes. */
static inline size_t
cg_buf_pending(const struct cg_buf *b)
{
    return b->len - b->off;
}
static inline char *
cg_buf_head(const struct cg_buf *b)
{
    return b->data + b->off;
}
/* Drops n pending bytes from the front. */
void cg_buf_consume(struct cg_buf *b, size_t n);
/* Empties the buffer, keeping its memory. */
void cg_buf_reset(struct cg_buf *b);
/* Returns the content as a NUL-terminated string (buffer keeps owning it). */
const char *cg_buf_cstr(struct cg_buf *b);
/* Releases the memory if it grew past keep bytes and is empty. */
void cg_buf_shrink(struct cg_buf *b, size_t keep);
/* Transfers the content as an owned NUL-terminated string; b is reset. */
char *cg_buf_take(struct cg_buf *b);

#endif
