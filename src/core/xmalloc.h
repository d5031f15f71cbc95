/*
 * Allocation that never returns NULL: out of memory aborts the process
 * (as redis zmalloc). Callers do not test the result.
 */
#ifndef CG_CORE_XMALLOC_H
#define CG_CORE_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
/* Returns an owned copy of s; s may not be NULL. */
char *xstrdup(const char *s);
/* Returns an owned, NUL-terminated copy of the first n bytes of s. */
char *xstrndup(const char *s, size_t n);
/* Returns an owned string formatted as by printf. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Frees *pp and sets it to NULL. */
#define XFREE(pp)                                                              \
    do {                                                                       \
        free(*(pp));                                                           \
        *(pp) = NULL;                                                          \
    } while (0)

#endif
