/*
 * The parsed-certificate cache: client certificates libssl parses during
 * a listener handshake are parsed once per worker thread.
 *
 * Why: libssl parses every certificate a client presents (d2i_X509; the
 * client's CA too when it sends its chain, which most devices do) before
 * anything of ours runs, and OpenSSL 3.0 decodes each certificate's public
 * key through a decoder chain it builds from scratch every time: 16% of a
 * full handshake's server CPU time, more than the ECDSA verify of the
 * client's CertificateVerify. The same few CA certificates arrive on
 * every handshake, and a device presents the same leaf each time.
 *
 * What: this file defines d2i_X509, so the executable's definition is the
 * one libssl's calls reach (ELF symbol interposition, as a malloc
 * replacement is reached). It calls libcrypto's own d2i_X509 (found with
 * dlsym(RTLD_NEXT)) except in the one case it caches: a listener
 * handshake is in progress on this thread (tls_parsecache_arm; conn.c
 * arms it around SSL_do_handshake) and the caller reuses an object
 * (*a != NULL: libssl's X509_new_ex + d2i_X509 on the certificate's
 * bytes). Then the exact DER bytes of the certificate element are looked
 * up: a certificate libcrypto parsed before from byte-equal input, with
 * the same outcome, is handed out (a new reference; the caller's object is
 * freed, as d2i does when it replaces *a), and *in moves past the element
 * as the parse would have moved it. A miss is libcrypto's parse, stored
 * when it succeeded and consumed exactly the element. Everything else
 * (a == NULL, no handshake, malformed or over-long input, failures) is
 * libcrypto's d2i_X509, unchanged.
 *
 * Shared X509 objects are what OpenSSL does with trusted certificates
 * anyway: their lazily computed fields (extension flags, hashes) are
 * filled under OpenSSL's per-object lock, and nothing in certgate
 * modifies a peer certificate. Verification is unchanged: the chain, its
 * validity, revocation and proof of possession are checked on every
 * handshake as before, on the same parsed objects byte-equal input gives.
 *
 * Per worker thread (no lock): 32 sets of 4 ways, least recently used way
 * replaced; an entry holds the DER, its SHA-256 (computed once, for the
 * verified-chain cache's key: tls_parsecache_sha256) and a reference to
 * the X509.
 */
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/err.h"
#include "core/xmalloc.h"
#include "tls/tls_int.h"

#define PC_SETS 32
#define PC_WAYS 4
#define PC_MAX_DER (16 * 1024) /* longer certificates are not kept */

typedef X509 *d2i_fn(X509 **a, const unsigned char **in, long len);

struct pc_entry {
    uint64_t hash, tick;
    unsigned char *der; /* NULL: empty */
    size_t len;
    X509 *x;                                    /* own reference */
    unsigned char sha256[SHA256_DIGEST_LENGTH]; /* of der */
};

struct parsecache {
    struct pc_entry e[PC_SETS][PC_WAYS];
    uint64_t tick;
    struct tls_parsecache_stats stats;
};

static _Thread_local bool armed;
static _Thread_local struct parsecache *cache;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t cache_key;
static d2i_fn *real_d2i;
static uint64_t seed;

static void
cache_free(void *p)
{
    struct parsecache *pc = p;
    if (pc == NULL)
        return;
    for (size_t s = 0; s < PC_SETS; s++) {
        for (size_t w = 0; w < PC_WAYS; w++) {
            free(pc->e[s][w].der);
            X509_free(pc->e[s][w].x);
        }
    }
    free(pc);
}

static void
init_once(void)
{
    real_d2i = (d2i_fn *)cg_next_symbol("d2i_X509", "OPENSSL_3.0.0");
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
        seed = 0x243f6a8885a308d3u;
    if (pthread_key_create(&cache_key, cache_free) != 0)
        cg_abort("no thread key for the certificate cache");
}

void
tls_parsecache_arm(bool on)
{
    armed = on;
}

/* The calling thread's cache, made on first use (freed at thread exit). */
static struct parsecache *
thread_cache(void)
{
    if (cache == NULL) {
        cache = xcalloc(1, sizeof(*cache));
        (void)pthread_setspecific(cache_key, cache);
    }
    return cache;
}

void
tls_parsecache_thread_free(void)
{
    pthread_once(&once, init_once);
    cache_free(cache);
    cache = NULL;
    (void)pthread_setspecific(cache_key, NULL);
}

void
tls_parsecache_stats(struct tls_parsecache_stats *out)
{
    *out = cache != NULL ? cache->stats : (struct tls_parsecache_stats){0};
}

/* Length of the DER element (tag, length, contents) at p[0..len); 0 when
 * it is not one definite-length SEQUENCE that fits. */
static size_t
der_element_len(const unsigned char *p, long len)
{
    if (len < 2 || p[0] != 0x30)
        return 0;
    size_t n = p[1], hdr = 2;
    if (n & 0x80) {
        size_t k = n & 0x7f;
        if (k == 0 || k > 3 || (size_t)len < 2 + k)
            return 0;
        n = 0;
        for (size_t i = 0; i < k; i++)
            n = n << 8 | p[2 + i];
        hdr += k;
    }
    return hdr + n <= (size_t)len ? hdr + n : 0;
}

static uint64_t
hash_bytes(const unsigned char *p, size_t n)
{
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15u);
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdu;
        h ^= h >> 32;
    }
    for (; n > 0; p++, n--)
        h = (h ^ *p) * 0xc4ceb9fe1a85ec53u;
    return h ^ (h >> 29);
}

static struct pc_entry *
lookup(struct parsecache *pc, uint64_t h, const unsigned char *der, size_t len)
{
    struct pc_entry *set = pc->e[h % PC_SETS];
    for (size_t w = 0; w < PC_WAYS; w++) {
        struct pc_entry *e = &set[w];
        if (e->der != NULL && e->hash == h && e->len == len &&
            memcmp(e->der, der, len) == 0)
            return e;
    }
    return NULL;
}

static void
store(struct parsecache *pc, uint64_t h, const unsigned char *der, size_t len,
      X509 *x)
{
    struct pc_entry *set = pc->e[h % PC_SETS], *v = &set[0];
    for (size_t w = 1; w < PC_WAYS && v->der != NULL; w++) {
        if (set[w].der == NULL || set[w].tick < v->tick)
            v = &set[w];
    }
    if (v->der != NULL)
        pc->stats.evictions++;
    free(v->der);
    X509_free(v->x);
    v->der = xmalloc(len);
    memcpy(v->der, der, len);
    v->len = len;
    v->hash = h;
    v->tick = ++pc->tick;
    v->x = x;
    (void)SHA256(der, len, v->sha256);
    pc->stats.inserts++;
}

bool
tls_parsecache_sha256(const X509 *x, unsigned char out[32])
{
    if (cache == NULL || x == NULL)
        return false;
    /* an entry holds a reference to its object: no other has its address */
    for (size_t s = 0; s < PC_SETS; s++) {
        for (size_t w = 0; w < PC_WAYS; w++) {
            const struct pc_entry *e = &cache->e[s][w];
            if (e->x == x && e->der != NULL) {
                memcpy(out, e->sha256, sizeof(e->sha256));
                return true;
            }
        }
    }
    return false;
}

/* The cached path: a listener handshake parsing into the caller's object. */
static X509 *
cached_d2i(X509 **a, const unsigned char **in, long len)
{
    const unsigned char *der = *in;
    size_t n = der_element_len(der, len);
    if (n == 0 || n > PC_MAX_DER)
        return real_d2i(a, in, len);
    struct parsecache *pc = thread_cache();
    uint64_t h = hash_bytes(der, n);
    struct pc_entry *e = lookup(pc, h, der, n);
    if (e != NULL && X509_up_ref(e->x) == 1) {
        pc->stats.hits++;
        e->tick = ++pc->tick;
        X509_free(*a);
        *a = e->x;
        *in = der + n;
        return e->x;
    }
    pc->stats.misses++;
    X509 *x = real_d2i(a, in, len);
    if (x != NULL && *in == der + n && X509_up_ref(x) == 1)
        store(pc, h, der, n, x);
    return x;
}

X509 *
d2i_X509(X509 **a, const unsigned char **in, long len)
{
    pthread_once(&once, init_once);
    if (armed && a != NULL && *a != NULL && in != NULL && *in != NULL)
        return cached_d2i(a, in, len);
    return real_d2i(a, in, len);
}
