/*
 * Thread-local cache of freed small heap blocks (see blkcache.h).
 *
 * Class r (1..BINS-1) holds blocks of at least 16r+8 usable bytes, the
 * usable sizes of glibc's chunks: a request of n bytes is served from the
 * smallest class whose blocks all have room for it, a freed block goes to
 * the largest class it has room for, and a fresh block is allocated with
 * its class's size, so it comes back to that class. The mapping holds for
 * any malloc (under ASan usable sizes are exact): a block is never handed
 * out for more than malloc_usable_size() says it holds.
 */
#include "core/blkcache.h"

#include "core/err.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#define ASAN 1
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#define ASAN 0
#endif

#define BINS 65 /* classes 1..64: 24..1032 usable bytes */
#define CLASS_SIZE(r) (16 * (size_t)(r) + 8)
#define MAX_KEPT CLASS_SIZE(BINS - 1)
#define BIN_BYTES (64 * 1024) /* per class and thread, at most */
#define BIN_MIN 64            /* blocks per class, at least */

/* A kept block: its first 16 bytes (every class has 24). */
struct kept {
    uintptr_t next; /* mangled: see protect() */
    uintptr_t key;  /* cache_key while kept: a double-free check */
};

struct bin {
    struct kept *head;
    unsigned n;
};

struct cache {
    struct bin bin[BINS];
    bool registered; /* flushed at thread exit */
    unsigned long long hits, misses;
};

static _Thread_local struct cache cache;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
static uintptr_t cache_key;
static atomic_bool exiting; /* exit() has begun: keep nothing more */

/* A list pointer stored in a block, mangled with the block's address;
 * not under ASan, which catches the writes this is against, and whose
 * leak check must see the kept blocks. */
static uintptr_t
mangle(const struct kept *at)
{
    return ASAN ? 0 : (uintptr_t)&at->next >> 12;
}

static uintptr_t
protect(const struct kept *at, const struct kept *next)
{
    return mangle(at) ^ (uintptr_t)next;
}

static struct kept *
reveal(const struct kept *at)
{
    uintptr_t p = mangle(at) ^ at->next;
    if (p % 16 != 0)
        cg_abort("heap: corrupted free list");
    return (struct kept *)p;
}

/* Class of a request of n bytes: the smallest whose blocks hold n. */
static unsigned
class_for_request(size_t n)
{
    return n <= CLASS_SIZE(1) ? 1 : (unsigned)((n - 8 + 15) / 16);
}

/* Class of a block of u usable bytes: the largest it holds; 0: none. */
static unsigned
class_for_block(size_t u)
{
    if (u < CLASS_SIZE(1))
        return 0;
    size_t r = (u - 8) / 16;
    return r < BINS ? (unsigned)r : 0;
}

static unsigned
bin_cap(unsigned r)
{
    size_t cap = BIN_BYTES / CLASS_SIZE(r);
    return cap < BIN_MIN ? BIN_MIN : (unsigned)cap;
}

/* Thread exit; frees after it (other keys' destructors) register again. */
static void
flush_at_exit(void *arg)
{
    (void)arg;
    cache.registered = false;
    blkcache_flush();
}

/* At exit, the exiting thread's blocks go back to malloc (a leak check
 * at exit finds nothing kept), and so does everything freed later. */
static void
flush_at_process_exit(void)
{
    atomic_store_explicit(&exiting, true, memory_order_relaxed);
    blkcache_flush();
}

static void
init_once(void)
{
    uintptr_t k = 0;
    if (getrandom(&k, sizeof(k), 0) != (ssize_t)sizeof(k))
        k = (uintptr_t)time(NULL) * 0x9e3779b97f4a7c15u ^ (uintptr_t)&k;
    cache_key = k | 1;
    if (pthread_key_create(&exit_key, flush_at_exit) != 0)
        cg_abort("heap: no thread key");
    (void)atexit(flush_at_process_exit);
}

/* First block kept by this thread: flush its cache when it exits. */
static void
register_thread(void)
{
    pthread_once(&once, init_once);
    (void)pthread_setspecific(exit_key, &cache);
    cache.registered = true;
}

void *
blkcache_alloc(size_t n)
{
    if (n > MAX_KEPT)
        return malloc(n);
    unsigned r = class_for_request(n);
    struct bin *b = &cache.bin[r];
    struct kept *k = b->head;
    if (k == NULL) {
        cache.misses++;
        k = malloc(CLASS_SIZE(r));
        if (k != NULL && ASAN)
            POISON((char *)k + n, malloc_usable_size(k) - n);
        return k;
    }
    cache.hits++;
    UNPOISON(k, sizeof(*k));
    b->head = reveal(k);
    b->n--;
    k->key = 0;
    if (ASAN) {
        size_t u = malloc_usable_size(k);
        UNPOISON(k, n);
        POISON((char *)k + n, u - n);
    }
    return k;
}

/* True when k is on list b (a block freed twice). */
static bool
listed(const struct bin *b, const struct kept *k)
{
    const struct kept *e = b->head;
    for (unsigned i = 0; e != NULL && i < b->n; i++) {
        if (e == k)
            return true;
        UNPOISON(e, sizeof(*e));
        const struct kept *next = reveal(e);
        POISON(e, sizeof(*e));
        e = next;
    }
    return false;
}

void
blkcache_free(void *p)
{
    if (p == NULL)
        return;
    size_t u = malloc_usable_size(p);
    UNPOISON(p, u);
    unsigned r = class_for_block(u);
    struct bin *b = &cache.bin[r];
    if (r == 0 || b->n >= bin_cap(r) ||
        atomic_load_explicit(&exiting, memory_order_relaxed)) {
        free(p);
        return;
    }
    if (!cache.registered)
        register_thread();
    struct kept *k = p;
    if (k->key == cache_key && listed(b, k))
        cg_abort("heap: block freed twice");
    k->next = protect(k, b->head);
    k->key = cache_key;
    b->head = k;
    b->n++;
    POISON(p, u);
}

void *
blkcache_realloc(void *p, size_t n)
{
    if (p == NULL)
        return blkcache_alloc(n);
    if (n == 0) {
        blkcache_free(p);
        return NULL;
    }
    size_t u = malloc_usable_size(p);
    if (u > MAX_KEPT && n > MAX_KEPT)
        return realloc(p, n);
    if (n <= u && !ASAN)
        return p;
    void *q = blkcache_alloc(n);
    if (q == NULL)
        return NULL;
    UNPOISON(p, u);
    memcpy(q, p, u < n ? u : n);
    blkcache_free(p);
    return q;
}

void
blkcache_flush(void)
{
    for (unsigned r = 1; r < BINS; r++) {
        struct bin *b = &cache.bin[r];
        while (b->head != NULL) {
            struct kept *k = b->head;
            UNPOISON(k, sizeof(*k));
            b->head = reveal(k);
            k->key = 0;
            free(k);
        }
        b->n = 0;
    }
}

void
blkcache_stats(struct blkcache_stats *st)
{
    memset(st, 0, sizeof(*st));
    for (unsigned r = 1; r < BINS; r++) {
        st->blocks += cache.bin[r].n;
        st->bytes += cache.bin[r].n * CLASS_SIZE(r);
    }
    st->hits = cache.hits;
    st->misses = cache.misses;
}
