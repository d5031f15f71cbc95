/*
 * HMAC and HKDF (RFC 2104, RFC 5869) with SHA-256 and SHA-384, TLS 1.3's
 * HKDF-Expand-Label and secret derivation (RFC 8446 section 7.1), and TLS
 * 1.2's PRF (RFC 5246 section 5).
 *
 * Why: a TLS 1.3 handshake derives ~20 secrets and keys. OpenSSL 3.0's
 * TLS13-KDF builds each through its provider machinery: a digest fetched
 * by name, an HMAC context allocated with three digest contexts, the
 * parameters parsed and copied; ~27,000 instructions per secret, of which
 * the hash blocks (four per secret) are ~12,000. That was 12% of the
 * instructions of a full handshake and 25% of a resumption.
 *
 * What: the same arithmetic on OpenSSL's SHA-2 functions directly (the
 * ones its default provider calls), with the key's inner and outer hash
 * states computed once per key: no fetch, no allocation. Used by the
 * listener context's TLS13-KDF (kdftap.c) and by the record layer's keys
 * (record_crypt.c); tested against OpenSSL's HKDF and TLS13-KDF
 * (tests/unit/test_libctx.c).
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>
#include <strings.h>

#include "tls/tls_int.h"

union hctx {
    SHA256_CTX s256;
    SHA512_CTX s512; /* SHA-384 */
};

struct hmac {
    enum tls_hash h;
    union hctx in, out; /* after the key's ipad / opad block */
};

size_t
tls_hash_len(enum tls_hash h)
{
    return h == TLS_SHA256 ? 32 : 48;
}

static size_t
block_len(enum tls_hash h)
{
    return h == TLS_SHA256 ? 64 : 128;
}

static void
h_init(enum tls_hash h, union hctx *c)
{
    if (h == TLS_SHA256)
        SHA256_Init(&c->s256);
    else
        SHA384_Init(&c->s512);
}

static void
h_update(enum tls_hash h, union hctx *c, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (h == TLS_SHA256)
        SHA256_Update(&c->s256, p, n);
    else
        SHA384_Update(&c->s512, p, n);
}

static void
h_final(enum tls_hash h, union hctx *c, unsigned char *out)
{
    if (h == TLS_SHA256)
        SHA256_Final(out, &c->s256);
    else
        SHA384_Final(out, &c->s512);
}

bool
tls_hash_by_name(const char *name, size_t len, enum tls_hash *h)
{
    static const struct {
        const char *name;
        enum tls_hash h;
    } names[] = {
        {"SHA2-256", TLS_SHA256}, {"SHA-256", TLS_SHA256},
        {"SHA256", TLS_SHA256},   {"SHA2-384", TLS_SHA384},
        {"SHA-384", TLS_SHA384},  {"SHA384", TLS_SHA384},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i].name) == len &&
            strncasecmp(names[i].name, name, len) == 0) {
            *h = names[i].h;
            return true;
        }
    }
    return false;
}

static void
hmac_key(struct hmac *m, enum tls_hash h, const unsigned char *key,
         size_t keylen)
{
    unsigned char k[128] = {0};
    size_t bl = block_len(h);
    m->h = h;
    if (keylen > bl) {
        h_init(h, &m->in);
        h_update(h, &m->in, key, keylen);
        h_final(h, &m->in, k);
    } else if (keylen > 0) {
        memcpy(k, key, keylen);
    }
    for (size_t i = 0; i < bl; i++)
        k[i] ^= 0x36;
    h_init(h, &m->in);
    h_update(h, &m->in, k, bl);
    for (size_t i = 0; i < bl; i++)
        k[i] ^= 0x36 ^ 0x5c;
    h_init(h, &m->out);
    h_update(h, &m->out, k, bl);
    OPENSSL_cleanse(k, sizeof(k));
}

/*
 * Key states kept while a handshake step runs (tls_hkdf_cache): TLS 1.3
 * expands most secrets more than once (a traffic secret into its key, its
 * IV and a finished key; the master secret into four secrets), and each
 * HMAC key costs two hash blocks before its message. A few per thread,
 * the oldest replaced; wiped when the step ends.
 */
#define KEY_CACHE 4

struct key_entry {
    struct hmac m;
    unsigned char key[64];
    size_t keylen; /* 0: empty */
};

static _Thread_local struct {
    bool on;
    unsigned next;
    struct key_entry e[KEY_CACHE];
} kc;

void
tls_hkdf_cache(bool on)
{
    if (!on && kc.on)
        OPENSSL_cleanse(&kc, sizeof(kc));
    kc.on = on;
}

/* Whether a and b (n bytes) are equal, in time that depends on n only:
 * CRYPTO_memcmp's answer, word by word inline instead of its byte loop
 * out of line (~250 instructions a call, ~50 calls per resumption). */
static inline bool
same_key(const unsigned char *a, const unsigned char *b, size_t n)
{
    uint64_t d = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        d |= x ^ y;
    }
    for (; i < n; i++)
        d |= (uint64_t)(a[i] ^ b[i]);
    return d == 0;
}

static void
hmac_key_cached(struct hmac *m, enum tls_hash h, const unsigned char *key,
                size_t keylen)
{
    if (!kc.on || keylen == 0 || keylen > sizeof(kc.e[0].key)) {
        hmac_key(m, h, key, keylen);
        return;
    }
    for (size_t i = 0; i < KEY_CACHE; i++) {
        struct key_entry *e = &kc.e[i];
        if (e->keylen == keylen && e->m.h == h &&
            same_key(e->key, key, keylen)) {
            *m = e->m;
            return;
        }
    }
    hmac_key(m, h, key, keylen);
    struct key_entry *e = &kc.e[kc.next++ % KEY_CACHE];
    e->m = *m;
    memcpy(e->key, key, keylen);
    e->keylen = keylen;
}

/* mac <- HMAC(key, a || b || c) (hash length bytes) */
static void
hmac_msg(const struct hmac *m, const void *a, size_t an, const void *b,
         size_t bn, const void *c, size_t cn, unsigned char *mac)
{
    union hctx x = m->in;
    unsigned char inner[64];
    h_update(m->h, &x, a, an);
    h_update(m->h, &x, b, bn);
    h_update(m->h, &x, c, cn);
    h_final(m->h, &x, inner);
    x = m->out;
    h_update(m->h, &x, inner, tls_hash_len(m->h));
    h_final(m->h, &x, mac);
    OPENSSL_cleanse(&x, sizeof(x));
    OPENSSL_cleanse(inner, sizeof(inner));
}

/* mac <- HMAC(key, msg); keep: the key state may come from and go to
 * the step's cache */
static void
hmac_one(enum tls_hash h, const unsigned char *key, size_t keylen,
         const unsigned char *msg, size_t msglen, unsigned char *mac, bool keep)
{
    struct hmac m;
    if (keep)
        hmac_key_cached(&m, h, key, keylen);
    else
        hmac_key(&m, h, key, keylen);
    hmac_msg(&m, msg, msglen, NULL, 0, NULL, 0, mac);
    OPENSSL_cleanse(&m, sizeof(m));
}

void
tls_hkdf_extract(enum tls_hash h, const unsigned char *salt, size_t saltlen,
                 const unsigned char *ikm, size_t ikmlen, unsigned char *prk)
{
    hmac_one(h, salt, saltlen, ikm, ikmlen, prk, true);
}

void
tls_hmac(enum tls_hash h, const unsigned char *key, size_t keylen,
         const unsigned char *msg, size_t msglen, unsigned char *mac)
{
    hmac_one(h, key, keylen, msg, msglen, mac, false);
}

bool
tls_hkdf_expand(enum tls_hash h, const unsigned char *prk, size_t prklen,
                const unsigned char *info, size_t infolen, unsigned char *out,
                size_t outlen)
{
    size_t hl = tls_hash_len(h);
    if (outlen == 0 || outlen > 255 * hl)
        return false;
    struct hmac m;
    unsigned char t[64];
    size_t tl = 0; /* T(0) is empty */
    hmac_key_cached(&m, h, prk, prklen);
    for (unsigned char i = 1; outlen > 0; i++) {
        hmac_msg(&m, t, tl, info, infolen, &i, 1, t);
        tl = hl;
        size_t n = outlen < hl ? outlen : hl;
        memcpy(out, t, n);
        out += n;
        outlen -= n;
    }
    OPENSSL_cleanse(&m, sizeof(m));
    OPENSSL_cleanse(t, sizeof(t));
    return true;
}

bool
tls_prf(enum tls_hash h, const unsigned char *secret, size_t secretlen,
        const unsigned char *seed, size_t seedlen, unsigned char *out,
        size_t outlen)
{
    /* P_hash (RFC 5246 section 5): A(0) = seed, A(i) = HMAC(secret,
     * A(i-1)); out = HMAC(secret, A(1) || seed) || HMAC(secret, A(2) ||
     * seed) || ... */
    size_t hl = tls_hash_len(h);
    if (outlen == 0 || secretlen == 0)
        return false;
    struct hmac m;
    unsigned char a[64], t[64];
    hmac_key_cached(&m, h, secret, secretlen);
    hmac_msg(&m, seed, seedlen, NULL, 0, NULL, 0, a);
    while (outlen > 0) {
        hmac_msg(&m, a, hl, seed, seedlen, NULL, 0, t);
        size_t n = outlen < hl ? outlen : hl;
        memcpy(out, t, n);
        out += n;
        outlen -= n;
        if (outlen > 0)
            hmac_msg(&m, a, hl, NULL, 0, NULL, 0, a);
    }
    OPENSSL_cleanse(&m, sizeof(m));
    OPENSSL_cleanse(a, sizeof(a));
    OPENSSL_cleanse(t, sizeof(t));
    return true;
}

bool
tls_hkdf_expand_label(enum tls_hash h, const unsigned char *secret,
                      size_t secretlen, const unsigned char *prefix,
                      size_t prefixlen, const unsigned char *label,
                      size_t labellen, const unsigned char *ctx, size_t ctxlen,
                      unsigned char *out, size_t outlen)
{
    /* struct { uint16 length; opaque label<7..255>; opaque context<0..255>;
     * } HkdfLabel, the label being prefix || label */
    unsigned char info[2 + 1 + 255 + 1 + 255];
    if (prefixlen + labellen > 255 || ctxlen > 255 || outlen > 0xffff)
        return false;
    size_t n = 0;
    info[n++] = (unsigned char)(outlen >> 8);
    info[n++] = (unsigned char)outlen;
    info[n++] = (unsigned char)(prefixlen + labellen);
    if (prefixlen > 0)
        memcpy(info + n, prefix, prefixlen);
    n += prefixlen;
    if (labellen > 0)
        memcpy(info + n, label, labellen);
    n += labellen;
    info[n++] = (unsigned char)ctxlen;
    if (ctxlen > 0)
        memcpy(info + n, ctx, ctxlen);
    n += ctxlen;
    return tls_hkdf_expand(h, secret, secretlen, info, n, out, outlen);
}

/* The hash of the empty string (Derive-Secret's context for "derived"). */
static const unsigned char *
empty_hash(enum tls_hash h)
{
    static const unsigned char sha256[32] = {
        0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
        0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
        0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
    static const unsigned char sha384[48] = {
        0x38, 0xb0, 0x60, 0xa7, 0x51, 0xac, 0x96, 0x38, 0x4c, 0xd9, 0x32, 0x7e,
        0xb1, 0xb1, 0xe3, 0x6a, 0x21, 0xfd, 0xb7, 0x11, 0x14, 0xbe, 0x07, 0x43,
        0x4c, 0x0c, 0xc7, 0xbf, 0x63, 0xf6, 0xe1, 0xda, 0x27, 0x4e, 0xde, 0xbf,
        0xe7, 0x6f, 0x65, 0xfb, 0xd5, 0x1a, 0xd2, 0xf1, 0x48, 0x98, 0xb9, 0x5b};
    return h == TLS_SHA256 ? sha256 : sha384;
}

bool
tls_hkdf_tls13_secret(enum tls_hash h, const unsigned char *prev,
                      size_t prevlen, const unsigned char *in, size_t inlen,
                      const unsigned char *prefix, size_t prefixlen,
                      const unsigned char *label, size_t labellen,
                      unsigned char *out)
{
    static const unsigned char zeros[48];
    size_t hl = tls_hash_len(h);
    unsigned char salt[48];
    size_t saltlen = 0;
    if (in == NULL) {
        in = zeros;
        inlen = hl;
    }
    if (prev != NULL) {
        if (!tls_hkdf_expand_label(h, prev, prevlen, prefix, prefixlen, label,
                                   labellen, empty_hash(h), hl, salt, hl))
            return false;
        saltlen = hl;
    }
    tls_hkdf_extract(h, salt, saltlen, in, inlen, out);
    OPENSSL_cleanse(salt, sizeof(salt));
    return true;
}
