/*
 * The record layer's cryptography (see record.c): the AEAD suites, keys
 * from TLS 1.3's traffic secrets (HKDF-Expand-Label, KeyUpdate) or TLS
 * 1.2's key block, the cipher contexts (a worker's shared ones, then a
 * busy connection's own), sealing and opening one record.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "tls/record_int.h"

struct rec_suite {
    unsigned id; /* the low 16 bits of SSL_CIPHER_get_id */
    const char *cipher;
    enum tls_hash h;
    size_t keylen;
    size_t hashlen;
};

static const struct rec_suite suites[] = {
    {0x1301, "AES-128-GCM", TLS_SHA256, 16, 32},
    {0x1302, "AES-256-GCM", TLS_SHA384, 32, 48},
    {0x1303, "ChaCha20-Poly1305", TLS_SHA256, 32, 32},
};
#define N_SUITES (sizeof(suites) / sizeof(suites[0]))

/*
 * Per worker thread. The scratch buffer: records are received into and
 * sealed in it; a connection copies out only what is left over (a
 * partial record, a blocked send), so the common case allocates nothing
 * per record. The shared cipher contexts (per suite and direction): a
 * connection's first REC_OWN_AFTER records in a direction are sealed or
 * opened with one of them, re-keyed when another key was loaded last
 * (~0.2 us); only a connection that keeps talking gets contexts of its
 * own (~1.1 KB each). A connection that sends one request and then idles
 * (a device, an MQTT client) never holds one.
 */
#define REC_OWN_AFTER 4

struct rec_thread {
    unsigned char scratch[REC_SCRATCH];
    EVP_CIPHER_CTX *shared[N_SUITES][2]; /* [suite][enc] */
    uint64_t loaded[N_SUITES][2];        /* key id in it (0: none) */
};

static pthread_key_t thread_key;
static _Atomic uint64_t next_key_id = 1;

static void
thread_free(void *p)
{
    struct rec_thread *t = p;
    for (size_t i = 0; i < N_SUITES; i++) {
        EVP_CIPHER_CTX_free(t->shared[i][0]);
        EVP_CIPHER_CTX_free(t->shared[i][1]);
    }
    free(t);
}

static struct rec_thread *
rec_thread(void)
{
    struct rec_thread *t = pthread_getspecific(thread_key);
    if (t == NULL) {
        t = xcalloc(1, sizeof(*t));
        pthread_setspecific(thread_key, t);
    }
    return t;
}

unsigned char *
rec_scratch(void)
{
    return rec_thread()->scratch;
}

/* Fetched once per process: no fetch (and its lock) per connection. */
static EVP_CIPHER *ciphers[N_SUITES];
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

static void
fetch_all(void)
{
    if (pthread_key_create(&thread_key, thread_free) != 0)
        abort();
    for (size_t i = 0; i < N_SUITES; i++)
        ciphers[i] = EVP_CIPHER_fetch(NULL, suites[i].cipher, NULL);
}

/* HKDF-Expand-Label(secret, label, "", len) (RFC 8446 section 7.1). */
static bool
expand_label(const struct rec_suite *s, const unsigned char *secret,
             const char *label, unsigned char *out, size_t len)
{
    return tls_hkdf_expand_label(
        s->h, secret, s->hashlen, (const unsigned char *)"tls13 ", 6,
        (const unsigned char *)label, strlen(label), NULL, 0, out, len);
}

/* d has a new key (and IV): sequence numbers from seq, any context of
 * its own made again. */
static void
dir_rekeyed(struct rec_dir *d, size_t suite, int enc, uint64_t seq)
{
    d->suite = suite;
    d->enc = enc;
    d->seq = seq;
    d->key_id = atomic_fetch_add(&next_key_id, 1);
    EVP_CIPHER_CTX_free(d->ctx);
    d->ctx = NULL;
}

/* Keys direction d from d->secret (a new one, or after a KeyUpdate). */
static bool
dir_key(const struct tls_rec *r, struct rec_dir *d, int enc)
{
    const struct rec_suite *s = &suites[r->suite];
    bool ok = expand_label(s, d->secret, "key", d->key, s->keylen) &&
              expand_label(s, d->secret, "iv", d->iv, 12);
    dir_rekeyed(d, r->suite, enc, 0);
    return ok;
}

/* The cipher context for d's next record: the thread's shared one,
 * keyed for d, for its first records, then one of its own. */
static EVP_CIPHER_CTX *
dir_ctx(struct rec_dir *d)
{
    if (d->ctx != NULL)
        return d->ctx;
    const EVP_CIPHER *cipher = ciphers[d->suite];
    if (d->uses++ < REC_OWN_AFTER) {
        struct rec_thread *t = rec_thread();
        EVP_CIPHER_CTX **x = &t->shared[d->suite][d->enc];
        uint64_t *loaded = &t->loaded[d->suite][d->enc];
        if (*x == NULL && (*x = EVP_CIPHER_CTX_new()) == NULL)
            return NULL;
        if (*loaded != d->key_id) {
            *loaded = 0;
            if (EVP_CipherInit_ex2(*x, cipher, d->key, NULL, d->enc, NULL) != 1)
                return NULL;
            *loaded = d->key_id;
        }
        return *x;
    }
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    if (x == NULL ||
        EVP_CipherInit_ex2(x, cipher, d->key, NULL, d->enc, NULL) != 1) {
        EVP_CIPHER_CTX_free(x);
        return NULL;
    }
    return d->ctx = x;
}

/* secret <- HKDF-Expand-Label(secret, "traffic upd", "", Hash.length) */
bool
rec_dir_update(struct tls_rec *r, struct rec_dir *d, int enc)
{
    const struct rec_suite *s = &suites[r->suite];
    size_t hl = s->hashlen;
    unsigned char next[48];
    bool ok = expand_label(s, d->secret, "traffic upd", next, hl);
    if (ok)
        memcpy(d->secret, next, hl);
    OPENSSL_cleanse(next, sizeof(next));
    return ok && dir_key(r, d, enc);
}

/* Direction d (0 client's, 1 server's) of r from hs: the key and IV libssl
 * derived from its secret, or derived here. */
static bool
dir_from(struct tls_rec *r, struct rec_dir *d, const struct tls_hs_secrets *hs,
         int which)
{
    const struct rec_suite *s = &suites[r->suite];
    memcpy(d->secret, hs->v[which], s->hashlen);
    if (hs->keylen[which] != s->keylen || !(hs->ivset & (1 << which)))
        return dir_key(r, d, which);
    memcpy(d->key, hs->key[which], s->keylen);
    memcpy(d->iv, hs->iv[which], sizeof(d->iv));
    dir_rekeyed(d, r->suite, which, 0);
    return true;
}

struct tls_rec *
tls_rec_new(unsigned suite_id, const struct tls_hs_secrets *hs, uint64_t tx_seq)
{
    pthread_once(&fetch_once, fetch_all);
    size_t i = 0;
    while (i < N_SUITES && suites[i].id != suite_id)
        i++;
    if (i == N_SUITES || ciphers[i] == NULL || hs->len != suites[i].hashlen)
        return NULL;
    struct tls_rec *r = xcalloc(1, sizeof(*r));
    r->suite = i;
    if (!dir_from(r, &r->rx, hs, 0) || !dir_from(r, &r->tx, hs, 1)) {
        tls_rec_free(r);
        return NULL;
    }
    r->tx.seq = tx_seq;
    return r;
}

struct tls_rec *
tls_rec_new12(int cipher_nid, const char *md, const unsigned char *master,
              size_t mlen, const unsigned char *client_random,
              const unsigned char *server_random,
              const struct tls_hs_secrets *hs)
{
    pthread_once(&fetch_once, fetch_all);
    size_t i = cipher_nid == NID_aes_128_gcm         ? 0
               : cipher_nid == NID_aes_256_gcm       ? 1
               : cipher_nid == NID_chacha20_poly1305 ? 2
                                                     : N_SUITES;
    enum tls_hash h;
    if (i == N_SUITES || ciphers[i] == NULL || md == NULL || mlen == 0 ||
        !tls_hash_by_name(md, strlen(md), &h))
        return NULL;
    size_t keylen = suites[i].keylen, ivlen = i == 2 ? 12 : 4;
    /* key_block = PRF(master, "key expansion", server_random +
     * client_random): client key, server key, client IV, server IV */
    unsigned char seed[13 + 64], kb[TLS_KEYBLOCK_MAX];
    size_t kblen = 2 * keylen + 2 * ivlen;
    memcpy(seed, "key expansion", 13);
    memcpy(seed + 13, server_random, 32);
    memcpy(seed + 45, client_random, 32);
    bool ok;
    if (hs != NULL && hs->kblen >= kblen && hs->kb_mlen == mlen &&
        CRYPTO_memcmp(hs->kb_master, master, mlen) == 0 &&
        memcmp(hs->kb_randoms, seed + 13, 64) == 0) {
        memcpy(kb, hs->kb, kblen); /* libssl's, for these very inputs */
        ok = true;
    } else {
        ok = tls_prf(h, master, mlen, seed, sizeof(seed), kb, kblen);
    }
    struct tls_rec *r = NULL;
    if (ok) {
        r = xcalloc(1, sizeof(*r));
        r->suite = i;
        r->v12 = true;
        struct rec_dir *dirs[2] = {&r->rx, &r->tx};
        for (int d = 0; d < 2; d++) {
            memcpy(dirs[d]->key, kb + (size_t)d * keylen, keylen);
            memcpy(dirs[d]->iv, kb + 2 * keylen + (size_t)d * ivlen, ivlen);
            /* each side's Finished was its record 0 */
            dir_rekeyed(dirs[d], i, d, 1);
        }
    }
    OPENSSL_cleanse(kb, sizeof(kb));
    return r;
}

void
tls_rec_free(struct tls_rec *r)
{
    if (r == NULL)
        return;
    EVP_CIPHER_CTX_free(r->rx.ctx);
    EVP_CIPHER_CTX_free(r->tx.ctx);
    free(r->rbuf);
    tls_outq_free(&r->w);
    OPENSSL_cleanse(r, sizeof(*r));
    free(r);
}

static void
nonce_of(const struct rec_dir *d, unsigned char nonce[12])
{
    memcpy(nonce, d->iv, 12);
    for (int i = 0; i < 8; i++)
        nonce[11 - i] ^= (unsigned char)(d->seq >> (8 * i));
}

/* Bytes a record adds to its plaintext (header excluded). */
size_t
rec_overhead(const struct tls_rec *r)
{
    if (!r->v12)
        return 1 + REC_TAG;                   /* inner content type, tag */
    return (r->suite == 2 ? 0 : 8) + REC_TAG; /* GCM's explicit nonce */
}

/* The nonce and additional data of d's next record (type, plaintext
 * length plen); for TLS 1.2 GCM the explicit nonce is the sequence
 * number (written at out + REC_HDR when sealing, read from h when
 * opening). Returns the length of aad. */
static size_t
record_params(const struct tls_rec *r, const struct rec_dir *d,
              const unsigned char *h, unsigned char type, size_t plen,
              unsigned char nonce[12], unsigned char aad[13])
{
    if (!r->v12) {
        nonce_of(d, nonce);
        memcpy(aad, h, REC_HDR);
        return REC_HDR;
    }
    for (int i = 0; i < 8; i++)
        aad[i] = (unsigned char)(d->seq >> (56 - 8 * i));
    aad[8] = type;
    aad[9] = 3;
    aad[10] = 3;
    aad[11] = (unsigned char)(plen >> 8);
    aad[12] = (unsigned char)plen;
    if (r->suite == 2) {
        nonce_of(d, nonce);
    } else {
        memcpy(nonce, d->iv, 4);
        memcpy(nonce + 4, h + REC_HDR, 8);
    }
    return 13;
}

/* Seals len bytes of in as a record of type into out (room for REC_HDR +
 * len + rec_overhead); returns its size, 0 on failure. */
size_t
rec_seal(struct tls_rec *r, struct rec_dir *d, unsigned char *out,
         const void *in, size_t len, unsigned char type)
{
    EVP_CIPHER_CTX *x = dir_ctx(d);
    if (x == NULL || d->seq == UINT64_MAX)
        return 0; /* (never reached: 2^64 records) */
    size_t explicit_n = r->v12 && r->suite != 2 ? 8 : 0;
    size_t clen = len + rec_overhead(r);
    unsigned char nonce[12], aad[13];
    int ol;
    out[0] = r->v12 ? type : CT_APPDATA;
    out[1] = 3;
    out[2] = 3;
    out[3] = (unsigned char)(clen >> 8);
    out[4] = (unsigned char)clen;
    for (size_t i = 0; i < explicit_n; i++)
        out[REC_HDR + i] = (unsigned char)(d->seq >> (56 - 8 * i));
    size_t aadlen = record_params(r, d, out, type, len, nonce, aad);
    unsigned char *body = out + REC_HDR + explicit_n;
    size_t tail = r->v12 ? 0 : 1;
    bool ok =
        EVP_CipherInit_ex(x, NULL, NULL, NULL, nonce, 1) == 1 &&
        EVP_EncryptUpdate(x, NULL, &ol, aad, (int)aadlen) == 1 &&
        (len == 0 || EVP_EncryptUpdate(x, body, &ol, in, (int)len) == 1) &&
        (tail == 0 || EVP_EncryptUpdate(x, body + len, &ol, &type, 1) == 1) &&
        EVP_EncryptFinal_ex(x, body + len + tail, &ol) == 1 &&
        EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, REC_TAG,
                            body + len + tail) == 1;
    d->seq++;
    return ok ? REC_HDR + clen : 0;
}

/* Opens the record at h (header, then clen bytes) in place: its
 * plaintext at *p, *n (TLS 1.3: inner type and padding included). */
bool
rec_open(const struct tls_rec *r, struct rec_dir *d, unsigned char *h,
         size_t clen, unsigned char **p, size_t *n)
{
    size_t explicit_n = r->v12 && r->suite != 2 ? 8 : 0;
    if (clen < explicit_n + REC_TAG + (r->v12 ? 0 : 1))
        return false;
    size_t plen = clen - explicit_n - REC_TAG;
    unsigned char nonce[12], aad[13];
    int ol;
    unsigned char *body = h + REC_HDR + explicit_n;
    size_t aadlen = record_params(r, d, h, h[0], plen, nonce, aad);
    EVP_CIPHER_CTX *x = dir_ctx(d);
    bool ok =
        x != NULL && EVP_CipherInit_ex(x, NULL, NULL, NULL, nonce, 0) == 1 &&
        EVP_DecryptUpdate(x, NULL, &ol, aad, (int)aadlen) == 1 &&
        (plen == 0 || EVP_DecryptUpdate(x, body, &ol, body, (int)plen) == 1) &&
        EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, REC_TAG, body + plen) ==
            1 &&
        EVP_DecryptFinal_ex(x, body + plen, &ol) == 1;
    d->seq++;
    *p = body;
    *n = plen;
    return ok;
}

void
tls_rec_quiet(struct tls_rec *r)
{
    EVP_CIPHER_CTX_free(r->rx.ctx);
    EVP_CIPHER_CTX_free(r->tx.ctx);
    r->rx.ctx = r->tx.ctx = NULL;
    r->rx.uses = r->tx.uses = 0; /* shared contexts again until busy */
}
