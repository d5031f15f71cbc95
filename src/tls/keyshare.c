/*
 * X25519 key shares from Ed25519's fixed-base table.
 *
 * Why: every TLS handshake with X25519 (TLS 1.3's default group, full or
 * resumed, and TLS 1.2's ECDHE) generates a fresh key pair: a scalar
 * multiplication of the base point. OpenSSL 3.0 computes it with ref10's
 * 32-bit field code (its 64-bit assembly serves only the ladder of the
 * shared-secret derivation): ~40 us, ~14% of certgate's CPU time per
 * resumed handshake, more than the derivation itself.
 *
 * What: this file defines EVP_PKEY_keygen, so the executable's definition
 * is the one libssl's key-share generation reaches through its PLT (ELF
 * symbol interposition, as in parsecache.c). Outside a listener
 * handshake step (tls_keyshare_arm; conn.c arms it around
 * SSL_do_handshake) and for every key type but X25519, it is libcrypto's
 * own function, unchanged. Inside, an X25519 key pair is:
 *  - the private key: 32 bytes of the library context's private DRBG
 *    (RAND_priv_bytes_ex, as OpenSSL's own X25519 key generation),
 *    clamped as RFC 7748 says;
 *  - the public key: the same scalar times Ed25519's base point, by
 *    libsodium's constant-time fixed-base code (~15 us), mapped to the
 *    Montgomery u coordinate X25519 uses, u = (1 + y) / (1 - y) (RFC 7748
 *    section 4.1's birational map). The map works on public values only
 *    (y follows from u); its field arithmetic is here (five 51-bit limbs,
 *    as ref10's 64-bit code; BIGNUM's took ~30,000 instructions a key,
 *    ~2% of a resumption), and the one inversion is shared by a batch of
 *    KS_BATCH keys (Montgomery's trick);
 *  - an EVP_PKEY of the listener's library context built from both
 *    (EVP_PKEY_fromdata), which libssl then uses as it would its own.
 * A key pair serves one handshake only: it leaves the pool when taken and
 * its private key is wiped from the pool at once. At most KS_BATCH unused
 * pairs wait per worker thread; the pool is wiped when the thread ends and
 * discarded after a fork, so a child never reuses its parent's keys.
 *
 * Checked: at start, RFC 7748's two test keys must give their published
 * public keys, or the file stays out of the way (libcrypto's own key
 * generation). tests/unit/test_keyshare.c and fuzz/fuzz_keyshare.c hold
 * the public keys to OpenSSL's for the same private keys.
 */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/xmalloc.h"
#include "tls/tls_int.h"

#define KS_BATCH TLS_KEYSHARE_BATCH
#define KS_LEN TLS_KEYSHARE_LEN

typedef int keygen_fn(EVP_PKEY_CTX *ctx, EVP_PKEY **ppkey);
typedef int setpeer_fn(EVP_PKEY_CTX *ctx, EVP_PKEY *peer);

struct keyshare {
    unsigned char priv[KS_BATCH][KS_LEN];
    unsigned char pub[KS_BATCH][KS_LEN];
    size_t n;             /* unused pairs: the first n */
    unsigned fork_gen;    /* the fork generation they were made in */
    EVP_PKEY_CTX *import; /* X25519 fromdata in lib */
    OSSL_LIB_CTX *lib;
    struct tls_keyshare_stats stats;
};

static _Thread_local bool armed;
static _Thread_local struct keyshare *ks;
static _Thread_local uint64_t n_peers; /* tls_keyshare_stats: peers */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t ks_key;
static keygen_fn *real_keygen;
static setpeer_fn *real_setpeer;
static bool usable; /* libsodium ready and the known answers right */
static atomic_uint fork_gen;

/* RFC 7748 section 6.1: Alice's and Bob's private and public keys. */
static const unsigned char kat_priv[2][KS_LEN] = {
    {0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1,
     0x72, 0x51, 0xb2, 0x66, 0x45, 0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0,
     0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5, 0x1d, 0xb9, 0x2c, 0x2a},
    {0x5d, 0xab, 0x08, 0x7e, 0x62, 0x4a, 0x8a, 0x4b, 0x79, 0xe1, 0x7f,
     0x8b, 0x83, 0x80, 0x0e, 0xe6, 0x6f, 0x3b, 0xb1, 0x29, 0x26, 0x18,
     0xb6, 0xfd, 0x1c, 0x2f, 0x8b, 0x27, 0xff, 0x88, 0xe0, 0xeb},
};
static const unsigned char kat_pub[2][KS_LEN] = {
    {0x85, 0x20, 0xf0, 0x09, 0x89, 0x30, 0xa7, 0x54, 0x74, 0x8b, 0x7d,
     0xdc, 0xb4, 0x3e, 0xf7, 0x5a, 0x0d, 0xbf, 0x3a, 0x0d, 0x26, 0x38,
     0x1a, 0xf4, 0xeb, 0xa4, 0xa9, 0x8e, 0xaa, 0x9b, 0x4e, 0x6a},
    {0xde, 0x9e, 0xdb, 0x7d, 0x7b, 0x7d, 0xc1, 0xb4, 0xd3, 0x5b, 0x61,
     0xc2, 0xec, 0xe4, 0x35, 0x37, 0x3f, 0x83, 0x43, 0xc8, 0x5b, 0x78,
     0x67, 0x4d, 0xad, 0xfc, 0x7e, 0x14, 0x6f, 0x88, 0x2b, 0x4f},
};

static void
ks_free(void *p)
{
    struct keyshare *s = p;
    if (s == NULL)
        return;
    EVP_PKEY_CTX_free(s->import);
    OPENSSL_cleanse(s, sizeof(*s));
    free(s);
}

static void
forked(void)
{
    atomic_fetch_add(&fork_gen, 1);
}

static bool
known_answers(void)
{
    unsigned char priv[2][KS_LEN], pub[2][KS_LEN];
    memcpy(priv, kat_priv, sizeof(priv));
    bool ok = tls_keyshare_publics(priv, pub, 2) &&
              memcmp(pub, kat_pub, sizeof(pub)) == 0;
    return ok;
}

static void
init_once(void)
{
    real_keygen =
        (keygen_fn *)cg_next_symbol("EVP_PKEY_keygen", "OPENSSL_3.0.0");
    real_setpeer = (setpeer_fn *)cg_next_symbol("EVP_PKEY_derive_set_peer",
                                                "OPENSSL_3.0.0");
    if (pthread_key_create(&ks_key, ks_free) != 0 ||
        pthread_atfork(NULL, NULL, forked) != 0)
        cg_abort("no thread key for the key-share pools");
    usable = sodium_init() >= 0 && known_answers();
    ERR_clear_error();
}

void
tls_keyshare_arm(bool on)
{
    armed = on;
}

void
tls_keyshare_stats(struct tls_keyshare_stats *out)
{
    *out = ks != NULL ? ks->stats : (struct tls_keyshare_stats){0};
    out->pooled = ks != NULL ? ks->n : 0;
    out->peers = n_peers;
}

void
tls_keyshare_thread_free(void)
{
    pthread_once(&once, init_once);
    ks_free(ks);
    ks = NULL;
    (void)pthread_setspecific(ks_key, NULL);
}

bool
tls_keyshare_ready(void)
{
    pthread_once(&once, init_once);
    return usable;
}

/* GF(2^255 - 19): five limbs of 51 bits, little end first. Public
 * values only: the map's inputs and outputs are public keys. */
typedef struct {
    uint64_t v[5];
} fe;

#define MASK51 ((UINT64_C(1) << 51) - 1)

static uint64_t
load64(const unsigned char *p)
{
    uint64_t w = 0;
    for (int i = 7; i >= 0; i--)
        w = w << 8 | p[i];
    return w;
}

/* s as a field element; its top bit is ignored */
static void
fe_frombytes(fe *h, const unsigned char s[32])
{
    uint64_t w0 = load64(s), w1 = load64(s + 8), w2 = load64(s + 16),
             w3 = load64(s + 24);
    h->v[0] = w0 & MASK51;
    h->v[1] = (w0 >> 51 | w1 << 13) & MASK51;
    h->v[2] = (w1 >> 38 | w2 << 26) & MASK51;
    h->v[3] = (w2 >> 25 | w3 << 39) & MASK51;
    h->v[4] = w3 >> 12 & MASK51;
}

/* limbs back under 2^51 (the first under 2^51 + 19 * 2^13) */
static void
fe_carry(fe *h)
{
    for (int i = 0; i < 4; i++) {
        h->v[i + 1] += h->v[i] >> 51;
        h->v[i] &= MASK51;
    }
    h->v[0] += 19 * (h->v[4] >> 51);
    h->v[4] &= MASK51;
}

/* the canonical encoding of h, in [0, p) */
static void
fe_tobytes(unsigned char s[32], const fe *f)
{
    fe h = *f;
    fe_carry(&h);
    fe_carry(&h);
    /* q = 1 when h >= p: h + 19 carries out of bit 255 */
    uint64_t q = (h.v[0] + 19) >> 51;
    for (int i = 1; i < 5; i++)
        q = (h.v[i] + q) >> 51;
    h.v[0] += 19 * q;
    for (int i = 0; i < 4; i++) {
        h.v[i + 1] += h.v[i] >> 51;
        h.v[i] &= MASK51;
    }
    h.v[4] &= MASK51;
    uint64_t w[4] = {
        h.v[0] | h.v[1] << 51,
        h.v[1] >> 13 | h.v[2] << 38,
        h.v[2] >> 26 | h.v[3] << 25,
        h.v[3] >> 39 | h.v[4] << 12,
    };
    for (int i = 0; i < 32; i++)
        s[i] = (unsigned char)(w[i / 8] >> (8 * (i % 8)));
}

static void
fe_add(fe *h, const fe *f, const fe *g)
{
    for (int i = 0; i < 5; i++)
        h->v[i] = f->v[i] + g->v[i];
    fe_carry(h);
}

/* h = f - g, for g's limbs carried (fe_carry): 2p is added first */
static void
fe_sub(fe *h, const fe *f, const fe *g)
{
    h->v[0] = f->v[0] + (2 * MASK51 - 36) - g->v[0];
    for (int i = 1; i < 5; i++)
        h->v[i] = f->v[i] + 2 * MASK51 - g->v[i];
    fe_carry(h);
}

static void
fe_mul(fe *h, const fe *f, const fe *g)
{
    typedef unsigned __int128 u128;
    const uint64_t *a = f->v, *b = g->v;
    uint64_t b1 = 19 * b[1], b2 = 19 * b[2], b3 = 19 * b[3], b4 = 19 * b[4];
    u128 r[5];
    r[0] = (u128)a[0] * b[0] + (u128)a[1] * b4 + (u128)a[2] * b3 +
           (u128)a[3] * b2 + (u128)a[4] * b1;
    r[1] = (u128)a[0] * b[1] + (u128)a[1] * b[0] + (u128)a[2] * b4 +
           (u128)a[3] * b3 + (u128)a[4] * b2;
    r[2] = (u128)a[0] * b[2] + (u128)a[1] * b[1] + (u128)a[2] * b[0] +
           (u128)a[3] * b4 + (u128)a[4] * b3;
    r[3] = (u128)a[0] * b[3] + (u128)a[1] * b[2] + (u128)a[2] * b[1] +
           (u128)a[3] * b[0] + (u128)a[4] * b4;
    r[4] = (u128)a[0] * b[4] + (u128)a[1] * b[3] + (u128)a[2] * b[2] +
           (u128)a[3] * b[1] + (u128)a[4] * b[0];
    for (int i = 0; i < 4; i++) {
        r[i + 1] += r[i] >> 51;
        h->v[i] = (uint64_t)r[i] & MASK51;
    }
    h->v[4] = (uint64_t)r[4] & MASK51;
    h->v[0] += 19 * (uint64_t)(r[4] >> 51);
    h->v[1] += h->v[0] >> 51;
    h->v[0] &= MASK51;
}

/* h = f^(2^n) */
static void
fe_sqn(fe *h, const fe *f, int n)
{
    *h = *f;
    while (n-- > 0)
        fe_mul(h, h, h);
}

/* h = 1/f = f^(p - 2) (0 for 0), ref10's chain of squarings */
static void
fe_invert(fe *h, const fe *z)
{
    fe t0, t1, t2, t3;
    fe_mul(&t0, z, z);     /* z^2 */
    fe_sqn(&t1, &t0, 2);   /* z^8 */
    fe_mul(&t1, z, &t1);   /* z^9 */
    fe_mul(&t0, &t0, &t1); /* z^11 */
    fe_mul(&t2, &t0, &t0); /* z^22 */
    fe_mul(&t1, &t1, &t2); /* z^(2^5 - 1) */
    fe_sqn(&t2, &t1, 5);
    fe_mul(&t1, &t2, &t1); /* z^(2^10 - 1) */
    fe_sqn(&t2, &t1, 10);
    fe_mul(&t2, &t2, &t1); /* z^(2^20 - 1) */
    fe_sqn(&t3, &t2, 20);
    fe_mul(&t2, &t3, &t2); /* z^(2^40 - 1) */
    fe_sqn(&t2, &t2, 10);
    fe_mul(&t1, &t2, &t1); /* z^(2^50 - 1) */
    fe_sqn(&t2, &t1, 50);
    fe_mul(&t2, &t2, &t1); /* z^(2^100 - 1) */
    fe_sqn(&t3, &t2, 100);
    fe_mul(&t2, &t3, &t2); /* z^(2^200 - 1) */
    fe_sqn(&t2, &t2, 50);
    fe_mul(&t1, &t2, &t1); /* z^(2^250 - 1) */
    fe_sqn(&t1, &t1, 5);   /* z^(2^255 - 32) */
    fe_mul(h, &t1, &t0);   /* z^(2^255 - 21) */
}

static bool
fe_is_zero(const fe *f)
{
    unsigned char s[32], z[32] = {0};
    fe_tobytes(s, f);
    return memcmp(s, z, sizeof(s)) == 0;
}

/* y of [priv]B as a field element (clamps priv first); false on error. */
static bool
edwards_y(unsigned char priv[KS_LEN], fe *y)
{
    unsigned char ed[KS_LEN], back[KS_LEN];
    priv[0] &= 248;
    priv[31] &= 127;
    priv[31] |= 64;
    bool ok = crypto_scalarmult_ed25519_base_noclamp(ed, priv) == 0;
    ed[31] &= 127; /* the top bit is x's sign */
    fe_frombytes(y, ed);
    fe_tobytes(back, y);
    ok = ok && memcmp(back, ed, KS_LEN) == 0; /* y < p, as encoded */
    OPENSSL_cleanse(ed, sizeof(ed));
    return ok;
}

bool
tls_keyshare_publics(unsigned char (*priv)[TLS_KEYSHARE_LEN],
                     unsigned char (*pub)[TLS_KEYSHARE_LEN], size_t n)
{
    if (n == 0 || n > KS_BATCH)
        return false;
    static const fe one = {{1, 0, 0, 0, 0}};
    fe num[KS_BATCH], den[KS_BATCH], acc[KS_BATCH], inv, t;
    /* num = 1 + y, den = 1 - y (never 0: y = 1 only for the identity),
     * acc[i] = den[0] * ... * den[i] */
    for (size_t i = 0; i < n; i++) {
        if (!edwards_y(priv[i], &t))
            return false;
        fe_add(&num[i], &one, &t);
        fe_sub(&den[i], &one, &t);
        if (fe_is_zero(&den[i]))
            return false;
        if (i == 0)
            acc[0] = den[0];
        else
            fe_mul(&acc[i], &acc[i - 1], &den[i]);
    }
    /* inv = 1 / acc[n-1]; walking down, 1/den[i] = inv * acc[i-1] and
     * then inv = 1 / acc[i-1] */
    fe_invert(&inv, &acc[n - 1]);
    for (size_t i = n; i-- > 0;) {
        if (i > 0) {
            fe_mul(&t, &inv, &acc[i - 1]);
            fe_mul(&inv, &inv, &den[i]);
        } else {
            t = inv;
        }
        fe_mul(&t, &t, &num[i]);
        fe_tobytes(pub[i], &t);
    }
    return true;
}

/* The calling thread's pool, empty and ready for lib's keys. */
static struct keyshare *
thread_pool(OSSL_LIB_CTX *lib)
{
    if (ks == NULL) {
        ks = xcalloc(1, sizeof(*ks));
        (void)pthread_setspecific(ks_key, ks);
    }
    if (ks->import == NULL || ks->lib != lib) {
        EVP_PKEY_CTX_free(ks->import);
        ks->lib = lib;
        ks->import = EVP_PKEY_CTX_new_from_name(lib, "X25519", NULL);
        if (ks->import != NULL && EVP_PKEY_fromdata_init(ks->import) != 1) {
            EVP_PKEY_CTX_free(ks->import);
            ks->import = NULL;
        }
        OPENSSL_cleanse(ks->priv, sizeof(ks->priv));
        ks->n = 0;
    }
    return ks->import != NULL ? ks : NULL;
}

/* Fills s with KS_BATCH fresh pairs. */
static bool
refill(struct keyshare *s)
{
    s->fork_gen = atomic_load(&fork_gen);
    s->n = 0;
    if (RAND_priv_bytes_ex(s->lib, &s->priv[0][0], sizeof(s->priv), 0) != 1 ||
        !tls_keyshare_publics(s->priv, s->pub, KS_BATCH)) {
        OPENSSL_cleanse(s->priv, sizeof(s->priv));
        return false;
    }
    s->n = KS_BATCH;
    s->stats.batches++;
    return true;
}

/* The next pair of the pool as an EVP_PKEY of s->lib; NULL on error. */
static EVP_PKEY *
take(struct keyshare *s)
{
    if (s->n > 0 && s->fork_gen != atomic_load(&fork_gen)) {
        OPENSSL_cleanse(s->priv, sizeof(s->priv));
        s->n = 0;
    }
    if (s->n == 0 && !refill(s))
        return NULL;
    size_t i = --s->n;
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PRIV_KEY, s->priv[i],
                                          KS_LEN),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, s->pub[i],
                                          KS_LEN),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY *k = NULL;
    if (EVP_PKEY_fromdata(s->import, &k, EVP_PKEY_KEYPAIR, p) != 1)
        k = NULL;
    OPENSSL_cleanse(s->priv[i], KS_LEN);
    return k;
}

int
EVP_PKEY_keygen(EVP_PKEY_CTX *ctx, EVP_PKEY **ppkey)
{
    pthread_once(&once, init_once);
    if (!armed || !usable || ctx == NULL || ppkey == NULL || *ppkey != NULL ||
        EVP_PKEY_CTX_is_a(ctx, "X25519") != 1)
        return real_keygen(ctx, ppkey);
    const char *propq = EVP_PKEY_CTX_get0_propq(ctx);
    if (propq != NULL && propq[0] != '\0')
        return real_keygen(ctx, ppkey);
    ERR_set_mark();
    struct keyshare *s = thread_pool(EVP_PKEY_CTX_get0_libctx(ctx));
    EVP_PKEY *k = s != NULL ? take(s) : NULL;
    if (k == NULL) {
        ERR_pop_to_mark();
        if (s != NULL)
            s->stats.fallbacks++;
        return real_keygen(ctx, ppkey);
    }
    ERR_clear_last_mark();
    s->stats.fast++;
    *ppkey = k;
    return 1;
}

/*
 * The client's key share, given to the derivation: libssl calls
 * EVP_PKEY_derive_set_peer, which first validates the peer key with a
 * public-key check on a context of its own (EVP_PKEY_CTX_new_from_pkey,
 * EVP_PKEY_public_check, EVP_PKEY_CTX_free: ~7,000 instructions per
 * handshake, full or resumed). For an X25519 key that check is only that
 * the key holds a public value (OpenSSL 3.0's ecx_validate; RFC 7748 asks
 * for no point validation). libssl has just put the client's value in
 * (EVP_PKEY_set1_encoded_public_key, or the handshake fails); a key
 * without one holds zeros there, u = 0, a point of small order, and
 * libcrypto's X25519 refuses the all-zero secret any such point gives:
 * the derivation fails, as the check would have made it. Armed, an X25519
 * peer key is set without the second context; any other key is
 * libcrypto's own check.
 */
int
EVP_PKEY_derive_set_peer(EVP_PKEY_CTX *ctx, EVP_PKEY *peer)
{
    pthread_once(&once, init_once);
    if (!armed || peer == NULL || EVP_PKEY_get_id(peer) != EVP_PKEY_X25519)
        return real_setpeer(ctx, peer);
    int r = EVP_PKEY_derive_set_peer_ex(ctx, peer, 0);
    if (r > 0)
        n_peers++;
    return r;
}
