/*
 * Unit tests of the thread-local block cache (core/blkcache.c) and of
 * OpenSSL's allocations going through it (tls/mem.c).
 *
 * A freed block is handed out again for a request it has room for, never
 * for a larger one; blocks in use never overlap (random sizes, random
 * order, contents checked); blocks from plain malloc are taken, and
 * blkcache blocks can be given to free(); realloc keeps the contents; a
 * class keeps at most its cap; a thread's blocks are freed when it exits;
 * a block freed twice, or a corrupted list pointer, aborts the process;
 * under ASan, a write to a kept block or past the requested size of a
 * block is caught.
 */
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/blkcache.h"
#include "tls/tls.h"

#if defined(__SANITIZE_ADDRESS__)
#define ASAN 1
#else
#define ASAN 0
#endif

static bool mem_installed;

static int
setup_all(void **state)
{
    (void)state;
    mem_installed = tls_mem_init(); /* before any OpenSSL allocation */
    return 0;
}

static size_t
kept_blocks(void)
{
    struct blkcache_stats st;
    blkcache_stats(&st);
    return st.blocks;
}

static void
test_reuse(void **state)
{
    (void)state;
    blkcache_flush();
    void *p = blkcache_alloc(20);
    assert_non_null(p);
    assert_true(malloc_usable_size(p) >= 20);
    blkcache_free(p);
    assert_int_equal(kept_blocks(), 1);
    struct blkcache_stats before, after;
    blkcache_stats(&before);
    void *q = blkcache_alloc(17); /* same class: the same block */
    blkcache_stats(&after);
    assert_ptr_equal(p, q);
    assert_int_equal(after.hits, before.hits + 1);
    assert_int_equal(kept_blocks(), 0);
    blkcache_free(q);
    /* A larger request is not served by that block. */
    void *r = blkcache_alloc(malloc_usable_size(q) + 1);
    assert_ptr_not_equal(r, q);
    assert_true(malloc_usable_size(r) >= malloc_usable_size(q) + 1);
    blkcache_free(r);
    blkcache_free(NULL);
    blkcache_flush();
    assert_int_equal(kept_blocks(), 0);
}

/* Every request size up to past the largest class, twice (fresh, then a
 * kept block): room for n bytes, all writable. */
static void
test_sizes(void **state)
{
    (void)state;
    for (int round = 0; round < 2; round++) {
        for (size_t n = 0; n <= 1200; n++) {
            unsigned char *p = blkcache_alloc(n);
            assert_non_null(p);
            assert_true(malloc_usable_size(p) >= n);
            memset(p, 0xa5, n);
            blkcache_free(p);
        }
    }
    blkcache_flush();
}

struct slot {
    unsigned char *p;
    size_t n;
    unsigned char fill;
};

static void
check_slot(const struct slot *s)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->p[i] != s->fill)
            fail_msg("block %p byte %zu: %02x, want %02x", (void *)s->p, i,
                     s->p[i], s->fill);
    }
}

/* Random sizes, random frees and reallocs: live blocks keep their bytes. */
static void
test_random(void **state)
{
    (void)state;
    enum { SLOTS = 512, STEPS = 60000 };
    static struct slot slots[SLOTS];
    srand(7);
    for (int step = 0; step < STEPS; step++) {
        struct slot *s = &slots[rand() % SLOTS];
        size_t n = (size_t)(rand() % 4 == 0 ? rand() % 3000 : rand() % 200);
        if (s->p != NULL)
            check_slot(s);
        switch (rand() % 4) {
        case 0: /* a plain malloc block, later freed by the cache */
            blkcache_free(s->p);
            s->p = malloc(n ? n : 1);
            break;
        case 1: /* realloc keeps the common prefix */
            if (s->p != NULL && n > 0) {
                s->p = blkcache_realloc(s->p, n);
                assert_non_null(s->p);
                if (n < s->n)
                    s->n = n;
                check_slot(s);
            } else {
                blkcache_free(s->p);
                s->p = blkcache_alloc(n);
            }
            break;
        default:
            blkcache_free(s->p);
            s->p = blkcache_alloc(n);
            break;
        }
        assert_non_null(s->p);
        s->n = n;
        s->fill = (unsigned char)rand();
        memset(s->p, s->fill, n);
    }
    for (int i = 0; i < SLOTS; i++) {
        check_slot(&slots[i]);
        if (i % 2 == 0)
            free(slots[i].p); /* a blkcache block given to free() */
        else
            blkcache_free(slots[i].p);
        slots[i].p = NULL;
    }
    blkcache_flush();
}

static void
test_grow_shrink(void **state)
{
    (void)state;
    unsigned char *p = blkcache_realloc(NULL, 10);
    assert_non_null(p);
    memcpy(p, "0123456789", 10);
    p = blkcache_realloc(p, 5000); /* small to large */
    assert_memory_equal(p, "0123456789", 10);
    p = blkcache_realloc(p, 9000); /* large to large */
    assert_memory_equal(p, "0123456789", 10);
    p = blkcache_realloc(p, 3); /* large to small */
    assert_memory_equal(p, "012", 3);
    assert_null(blkcache_realloc(p, 0)); /* frees */
    blkcache_flush();
}

/* A class keeps at most its cap; the rest is freed. */
static void
test_cap(void **state)
{
    (void)state;
    enum { N = 5000 };
    void **v = calloc(N, sizeof(*v));
    for (int i = 0; i < N; i++)
        v[i] = blkcache_alloc(32);
    for (int i = 0; i < N; i++)
        blkcache_free(v[i]);
    size_t kept = kept_blocks();
    assert_true(kept >= 64);
    assert_true(kept < N / 2);
    struct blkcache_stats st;
    blkcache_stats(&st);
    assert_true(st.bytes <= 3 * 64 * 1024); /* glibc may round up a class */
    free(v);
    blkcache_flush();
    assert_int_equal(kept_blocks(), 0);
}

static void *
thread_keeps(void *arg)
{
    (void)arg;
    void *v[1000];
    for (int i = 0; i < 1000; i++)
        v[i] = blkcache_alloc(40);
    for (int i = 0; i < 1000; i++)
        blkcache_free(v[i]);
    return (void *)(uintptr_t)kept_blocks();
}

/* A thread's kept blocks are freed at its exit (under ASan, LeakSanitizer
 * at this test's exit would report them otherwise). */
static void
test_thread_exit(void **state)
{
    (void)state;
    pthread_t t;
    size_t before = mallinfo2().uordblks;
    void *kept = NULL;
    assert_int_equal(pthread_create(&t, NULL, thread_keeps, NULL), 0);
    assert_int_equal(pthread_join(t, &kept), 0);
    assert_true((uintptr_t)kept >= 64);
    if (!ASAN) {
        size_t after = mallinfo2().uordblks;
        assert_true(after < before + 16 * 1024);
    }
}

/* Runs fn in a child process; true when the child died abnormally. */
static bool
child_dies(void (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 2);
        fn();
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0);
}

static void
free_twice(void)
{
    void *p = blkcache_alloc(48);
    void *q = blkcache_alloc(48);
    blkcache_free(p);
    blkcache_free(q);
    blkcache_free(p);
}

static void
corrupt_link(void)
{
    uintptr_t *p = blkcache_alloc(48);
    blkcache_free(blkcache_alloc(48));
    blkcache_free(p);
    p[0] ^= 8; /* a write after free into the list pointer */
    (void)blkcache_alloc(48);
    (void)blkcache_alloc(48);
}

static void
write_after_free(void)
{
    volatile unsigned char *p = blkcache_alloc(64);
    blkcache_free((void *)p);
    p[40] = 1;
}

static void
write_past_request(void)
{
    volatile unsigned char *p = blkcache_alloc(33); /* a 40-byte class */
    p[36] = 1;
    blkcache_free((void *)p);
}

static void
test_abort(void **state)
{
    (void)state;
    assert_true(child_dies(free_twice));
    if (!ASAN) /* under ASan, the write itself is caught (below) */
        assert_true(child_dies(corrupt_link));
    if (ASAN) {
        assert_true(child_dies(write_after_free));
        assert_true(child_dies(write_past_request));
    }
}

/* OpenSSL's allocations use the cache. */
static void
test_openssl(void **state)
{
    (void)state;
    assert_true(mem_installed);
    blkcache_flush();
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_non_null(ctx);
    unsigned char md[32];
    unsigned len = 0;
    assert_int_equal(EVP_Digest("abc", 3, md, &len, EVP_sha256(), NULL), 1);
    EVP_MD_CTX_free(ctx);
    assert_true(kept_blocks() > 0);
    blkcache_flush();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse),  cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_random), cmocka_unit_test(test_grow_shrink),
        cmocka_unit_test(test_cap),    cmocka_unit_test(test_thread_exit),
        cmocka_unit_test(test_abort),  cmocka_unit_test(test_openssl),
    };
    return cmocka_run_group_tests(tests, setup_all, NULL);
}
