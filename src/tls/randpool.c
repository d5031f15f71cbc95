/*
 * Public random bytes of a listener handshake, drawn from the DRBG in
 * blocks.
 *
 * Why: libssl asks the library context's public DRBG for a few bytes at a
 * time, four times per TLS 1.3 handshake (the server random, the session
 * id, the ticket's age_add, the ticket's session id). Each request costs
 * OpenSSL 3.0 ~1.9 us here: the EVP_RAND dispatch, the DRBG's lock and
 * its fork check (a getpid() system call), the CTR-DRBG's AES for a
 * single block and its update of the DRBG state; ~2% of a full handshake
 * and ~3% of a resumption.
 *
 * What: this file defines RAND_bytes_ex, so the executable's definition is
 * the one libssl's calls reach (ELF symbol interposition, as in
 * keyshare.c). Outside a listener handshake step (tls_randpool_arm; conn.c
 * arms it around SSL_do_handshake) it is libcrypto's own function,
 * unchanged; so is every request for more than RP_MAX bytes or with a
 * strength, and every one for another library context. Inside, a request
 * is served from a per-thread block of RP_SIZE bytes that one call of
 * libcrypto's RAND_bytes_ex on the same library context filled: the same
 * DRBG, the same default strength, output that no caller sees twice. The
 * bytes served are wiped from the block at once; the block is wiped when
 * the thread ends, discarded after a fork, so that a child never hands
 * out what its parent may have handed out too, and discarded once it is
 * RP_MAX_AGE_MS old, so that what a handshake gets was drawn from the
 * DRBG at most that long before (a busy worker uses a block up in a few
 * milliseconds). Private randomness
 * (RAND_priv_bytes_ex: private keys, ECDSA nonces) never passes here.
 */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/xmalloc.h"
#include "tls/tls_int.h"

#define RP_SIZE 1024
#define RP_MAX 64 /* larger requests go to libcrypto directly */
#define RP_MAX_AGE_MS 1000

typedef int rand_fn(OSSL_LIB_CTX *ctx, unsigned char *buf, size_t num,
                    unsigned int strength);

struct randpool {
    unsigned char b[RP_SIZE];
    size_t off;        /* b[off..] unused */
    OSSL_LIB_CTX *lib; /* the context that filled it */
    unsigned fork_gen;
    int64_t filled_ms; /* when (monotonic, coarse) */
    struct tls_randpool_stats stats;
};

static _Thread_local bool armed;
static _Thread_local struct randpool *rp;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t rp_key;
static rand_fn *real_rand;
static atomic_uint fork_gen;

static void
rp_free(void *p)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, sizeof(struct randpool));
    free(p);
}

static void
forked(void)
{
    atomic_fetch_add(&fork_gen, 1);
}

static void
init_once(void)
{
    real_rand = (rand_fn *)cg_next_symbol("RAND_bytes_ex", "OPENSSL_3.0.0");
    if (pthread_key_create(&rp_key, rp_free) != 0 ||
        pthread_atfork(NULL, NULL, forked) != 0)
        cg_abort("no thread key for the random pools");
}

void
tls_randpool_arm(bool on)
{
    armed = on;
}

void
tls_randpool_stats(struct tls_randpool_stats *out)
{
    *out = rp != NULL ? rp->stats : (struct tls_randpool_stats){0};
}

void
tls_randpool_thread_free(void)
{
    pthread_once(&once, init_once);
    rp_free(rp);
    rp = NULL;
    (void)pthread_setspecific(rp_key, NULL);
}

static int64_t
coarse_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The calling thread's block with at least n unused bytes of lib's
 * DRBG, young enough; NULL when it cannot be filled. */
static struct randpool *
block_for(OSSL_LIB_CTX *lib, size_t n)
{
    if (rp == NULL) {
        rp = xcalloc(1, sizeof(*rp));
        rp->off = RP_SIZE;
        (void)pthread_setspecific(rp_key, rp);
    }
    unsigned gen = atomic_load(&fork_gen);
    int64_t now = coarse_ms();
    if (rp->lib == lib && rp->fork_gen == gen && RP_SIZE - rp->off >= n &&
        now - rp->filled_ms < RP_MAX_AGE_MS)
        return rp;
    OPENSSL_cleanse(rp->b, sizeof(rp->b));
    rp->off = RP_SIZE;
    if (real_rand(lib, rp->b, RP_SIZE, 0) != 1)
        return NULL;
    rp->lib = lib;
    rp->fork_gen = gen;
    rp->filled_ms = now;
    rp->off = 0;
    rp->stats.fills++;
    return rp;
}

int
RAND_bytes_ex(OSSL_LIB_CTX *ctx, unsigned char *buf, size_t num,
              unsigned int strength)
{
    pthread_once(&once, init_once);
    if (!armed || strength != 0 || num == 0 || num > RP_MAX || buf == NULL ||
        ctx == NULL || ctx != tls_libctx())
        return real_rand(ctx, buf, num, strength);
    struct randpool *p = block_for(ctx, num);
    if (p == NULL)
        return real_rand(ctx, buf, num, strength);
    memcpy(buf, p->b + p->off, num);
    OPENSSL_cleanse(p->b + p->off, num);
    p->off += num;
    p->stats.served++;
    return 1;
}
