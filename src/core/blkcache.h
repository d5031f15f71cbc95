/*
 * A thread-local cache of freed small heap blocks in front of malloc/free
 * (the tcache idea of glibc's malloc, with room for a TLS handshake).
 *
 * Why: OpenSSL 3.0 makes ~880 allocations per full mTLS handshake, 700 of
 * them of 48 bytes or less, and frees most of them at its end. glibc keeps
 * 7 freed blocks per size in its own thread cache; the rest go through
 * its arena (a lock, bin searches, fastbin consolidation): 13% of a
 * handshake's CPU time was malloc/free.
 *
 * What: blocks are ordinary malloc blocks; a freed block of up to 1032
 * usable bytes is kept on this thread's list for its size class (16-byte
 * classes, as glibc's) and handed out again by blkcache_alloc; the rest,
 * and anything beyond a class's cap, goes to free(). The class of a block
 * comes from malloc_usable_size(), so no header is added and any malloc
 * block may be given to blkcache_free (and any blkcache block to free()).
 * A thread's cached blocks are freed when it exits. Kept blocks have
 * their list pointer mangled with their address (as glibc's "safe
 * linking"); a block freed twice into the same list aborts the process.
 * Under AddressSanitizer, kept blocks and the unused tail of a class are
 * poisoned.
 */
#ifndef CG_CORE_BLKCACHE_H
#define CG_CORE_BLKCACHE_H

#include <stddef.h>

/* As malloc (NULL when out of memory); n may be 0. */
void *blkcache_alloc(size_t n);
/* As realloc, except that n == 0 frees p and returns NULL. */
void *blkcache_realloc(void *p, size_t n);
/* As free; p may be NULL or any malloc block. */
void blkcache_free(void *p);
/* Frees this thread's kept blocks. */
void blkcache_flush(void);

struct blkcache_stats {
    size_t blocks;                   /* kept by this thread now */
    size_t bytes;                    /* their usable bytes */
    unsigned long long hits, misses; /* this thread's allocations */
};
void blkcache_stats(struct blkcache_stats *st);

#endif
