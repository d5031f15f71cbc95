/*
 * Unit tests of the public random blocks (tls/randpool.c).
 *
 * Armed, small RAND_bytes_ex requests on the listener library context are
 * served from the thread's block: one DRBG draw per block, no byte handed
 * out twice. Unarmed, on another context, with a strength, or for more
 * than 64 bytes, they go to libcrypto. A block is not used after a fork
 * (the child's next bytes differ from the parent's) nor after a second.
 * (Through libssl's handshakes: every integration test.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/rand.h>

#include "tls/tls.h"
#include "tls/tls_int.h"
#include "tlssetup.h"

static int
teardown_each(void **state)
{
    (void)state;
    tls_randpool_arm(false);
    tls_randpool_thread_free();
    return 0;
}

static struct tls_randpool_stats
stats(void)
{
    struct tls_randpool_stats s;
    tls_randpool_stats(&s);
    return s;
}

static void
draw(OSSL_LIB_CTX *lib, unsigned char *out, size_t n, unsigned strength)
{
    assert_int_equal(RAND_bytes_ex(lib, out, n, strength), 1);
}

#define N 200

/* 200 requests of 32 bytes: 7 blocks of 1024 bytes, all distinct. */
static void
test_served_distinct(void **state)
{
    (void)state;
    static unsigned char got[N][32];
    tls_randpool_arm(true);
    for (int i = 0; i < N; i++)
        draw(tls_libctx(), got[i], 32, 0);
    struct tls_randpool_stats s = stats();
    assert_int_equal(s.served, N);
    assert_int_equal(s.fills, (N * 32 + 1023) / 1024);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < i; j++)
            assert_memory_not_equal(got[i], got[j], 32);
    }
    /* odd sizes cross the end of a block without repeating bytes */
    unsigned char a[64], b[64];
    draw(tls_libctx(), a, 63, 0);
    draw(tls_libctx(), b, 64, 0);
    assert_memory_not_equal(a, b, 63);
    assert_int_equal(stats().served, N + 2);
}

/* What libcrypto keeps for itself. */
static void
test_passthrough(void **state)
{
    (void)state;
    unsigned char b[128];
    draw(tls_libctx(), b, 32, 0); /* unarmed */
    assert_int_equal(stats().served, 0);
    tls_randpool_arm(true);
    draw(NULL, b, 32, 0);           /* the default context */
    draw(tls_libctx(), b, 65, 0);   /* too large */
    draw(tls_libctx(), b, 32, 128); /* a strength asked for */
    assert_int_equal(RAND_bytes_ex(tls_libctx(), b, 0, 0), 1); /* nothing */
    assert_int_equal(stats().served, 0);
    assert_int_equal(stats().fills, 0);
    draw(tls_libctx(), b, 32, 0);
    assert_int_equal(stats().served, 1);
}

/* The child of a fork draws a new block: its next bytes are not the ones
 * its parent hands out next. */
static void
test_fork(void **state)
{
    (void)state;
    unsigned char first[32], parent[32], child[32];
    tls_randpool_arm(true);
    draw(tls_libctx(), first, 32, 0);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        draw(tls_libctx(), child, 32, 0);
        bool refilled = stats().fills == 2;
        ssize_t w = write(fds[1], child, sizeof(child));
        _exit(w == (ssize_t)sizeof(child) && refilled ? 0 : 1);
    }
    close(fds[1]);
    draw(tls_libctx(), parent, 32, 0);
    assert_int_equal(stats().fills, 1);
    assert_int_equal(read(fds[0], child, sizeof(child)), sizeof(child));
    close(fds[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_memory_not_equal(parent, child, 32);
    assert_memory_not_equal(first, child, 32);
}

/* A block a second old is not used. */
static void
test_max_age(void **state)
{
    (void)state;
    unsigned char b[32];
    tls_randpool_arm(true);
    draw(tls_libctx(), b, 32, 0);
    draw(tls_libctx(), b, 32, 0);
    assert_int_equal(stats().fills, 1);
    struct timespec t = {1, 100 * 1000 * 1000};
    nanosleep(&t, NULL);
    draw(tls_libctx(), b, 32, 0);
    assert_int_equal(stats().fills, 2);
    assert_int_equal(stats().served, 3);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_served_distinct, teardown_each),
        cmocka_unit_test_teardown(test_passthrough, teardown_each),
        cmocka_unit_test_teardown(test_fork, teardown_each),
        cmocka_unit_test_teardown(test_max_age, teardown_each),
    };
    return cmocka_run_group_tests(tests, tls_setup, NULL);
}
