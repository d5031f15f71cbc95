/*
 * The record layer of a server connection once its handshake is done:
 * TLS 1.3 (RFC 8446 section 5) and TLS 1.2 with an AEAD suite (RFC 5246
 * 6.2.3.3, RFC 5288, RFC 7905). OpenSSL runs the handshake; the keys
 * reach conn.c (TLS 1.3: the key-log callback; TLS 1.2: the master secret),
 * and the SSL object (with its buffers, cipher contexts and handshake
 * state, ~20 KB) is freed. What a connection keeps here is two AEAD contexts
 * and the secrets; buffers exist only while a record is in flight, so an idle
 * connection holds none.
 *
 * Reading: records are received into rbuf and decrypted in place; the
 * plaintext of one record is served from there. Writing follows OpenSSL's
 * SSL_MODE_ENABLE_PARTIAL_WRITE contract: a call seals up to
 * REC_WRITE_RECORDS records, and reports their plaintext only once they
 * have all left; when the socket blocks the caller retries with the same
 * bytes. The only post-handshake message a client may send is TLS 1.3's
 * KeyUpdate (no post-handshake auth; TLS 1.2 renegotiation is refused);
 * anything else gets the protocol's alert and fails the connection.
 */
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/xmalloc.h"
#include "tls/tls_int.h"

#define REC_HDR 5
#define REC_TAG 16
#define REC_MAX_PLAIN 16384
#define REC_MAX_CIPHER13 (REC_MAX_PLAIN + 256)
#define REC_MAX_CIPHER12 (REC_MAX_PLAIN + 2048)
#define REC_RBUF (REC_HDR + REC_MAX_CIPHER12)
#define REC_MAX_OVERHEAD (8 + REC_TAG) /* TLS 1.2 GCM: explicit nonce */
#define REC_WRITE_RECORDS 4
#define REC_MAX_QUEUED                                                         \
    16384 /* protocol records queued before reading stops                      \
           */

#define CT_CCS 20
#define CT_ALERT 21
#define CT_HANDSHAKE 22
#define CT_APPDATA 23
#define HS_KEY_UPDATE 24

/* alert descriptions (RFC 8446 section 6) */
#define AL_CLOSE_NOTIFY 0
#define AL_UNEXPECTED_MESSAGE 10
#define AL_BAD_RECORD_MAC 20
#define AL_RECORD_OVERFLOW 22
#define AL_HANDSHAKE_FAILURE 40
#define AL_ILLEGAL_PARAMETER 47
#define AL_DECODE_ERROR 50
#define AL_INTERNAL_ERROR 80
#define AL_USER_CANCELED 90

struct rec_suite {
    unsigned id; /* the low 16 bits of SSL_CIPHER_get_id */
    const char *cipher;
    const char *md;
    size_t keylen;
    size_t hashlen;
};

static const struct rec_suite suites[] = {
    {0x1301, "AES-128-GCM", "SHA256", 16, 32},
    {0x1302, "AES-256-GCM", "SHA384", 32, 48},
    {0x1303, "ChaCha20-Poly1305", "SHA256", 32, 32},
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
#define REC_SCRATCH                                                            \
    ((size_t)REC_WRITE_RECORDS * (REC_HDR + REC_MAX_PLAIN + REC_MAX_OVERHEAD))
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

static unsigned char *
scratch_buf(void)
{
    return rec_thread()->scratch;
}

/* Fetched once per process: no fetch (and its lock) per connection. */
static EVP_CIPHER *ciphers[N_SUITES];
static EVP_MAC_CTX *hmacs[N_SUITES]; /* HMAC with the suite's hash, no key */
static EVP_KDF *tls1_prf;            /* TLS 1.2's key block */
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

static void
fetch_all(void)
{
    if (pthread_key_create(&thread_key, thread_free) != 0)
        abort();
    tls1_prf = EVP_KDF_fetch(NULL, "TLS1-PRF", NULL);
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    for (size_t i = 0; i < N_SUITES; i++) {
        ciphers[i] = EVP_CIPHER_fetch(NULL, suites[i].cipher, NULL);
        hmacs[i] = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
        OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(
                              OSSL_MAC_PARAM_DIGEST, (char *)suites[i].md, 0),
                          OSSL_PARAM_construct_end()};
        if (hmacs[i] != NULL && EVP_MAC_CTX_set_params(hmacs[i], p) != 1) {
            EVP_MAC_CTX_free(hmacs[i]);
            hmacs[i] = NULL;
        }
    }
    EVP_MAC_free(mac);
}

struct rec_dir {
    EVP_CIPHER_CTX *ctx; /* its own, keyed; NULL: none (dir_ctx) */
    size_t suite;
    int enc;
    uint32_t uses;   /* records since the key or since it was quiet */
    uint64_t key_id; /* unique in the process */
    unsigned char secret[48];
    unsigned char key[32];
    unsigned char iv[12];
    uint64_t seq;
};

struct tls_rec {
    size_t suite; /* the AEAD (and, for TLS 1.3, the hash) */
    bool v12;     /* TLS 1.2 records (RFC 5246, 5288, 7905) */
    struct rec_dir rx, tx;
    unsigned char *rbuf; /* received bytes; NULL when none are held */
    size_t rlen;         /* bytes in rbuf */
    size_t roff;         /* start of the first unprocessed record */
    size_t poff, plen;   /* undelivered plaintext inside rbuf */
    unsigned char *wbuf; /* sealed records not yet sent; NULL when none */
    size_t wlen, woff;
    size_t wplain; /* caller's bytes in wbuf, reported once they are sent */
    size_t wacked; /* ... already sent (by a read), not yet reported */
    unsigned char hs[5]; /* a KeyUpdate message being reassembled */
    size_t hs_len;
    bool eof;
    bool failed;
    bool sock_short;
};

/* HKDF-Expand-Label(secret, label, "", len) for len <= the hash length:
 * one HMAC block (RFC 8446 section 7.1, RFC 5869). */
static bool
expand_label(EVP_MAC_CTX *m, const unsigned char *secret, size_t slen,
             const char *label, unsigned char *out, size_t len)
{
    unsigned char info[2 + 1 + 6 + 16 + 1 + 1];
    size_t ll = strlen(label);
    info[0] = (unsigned char)(len >> 8);
    info[1] = (unsigned char)len;
    info[2] = (unsigned char)(6 + ll);
    memcpy(info + 3, "tls13 ", 6);
    memcpy(info + 9, label, ll);
    info[9 + ll] = 0;  /* empty context */
    info[10 + ll] = 1; /* T(1) */
    unsigned char t[EVP_MAX_MD_SIZE];
    size_t tl = 0;
    bool ok = EVP_MAC_init(m, secret, slen, NULL) == 1 &&
              EVP_MAC_update(m, info, 11 + ll) == 1 &&
              EVP_MAC_final(m, t, &tl, sizeof(t)) == 1 && tl >= len;
    if (ok)
        memcpy(out, t, len);
    OPENSSL_cleanse(t, sizeof(t));
    return ok;
}

/* Keys direction d from d->secret (a new one, or after a KeyUpdate). */
static bool
dir_key(const struct tls_rec *r, struct rec_dir *d, int enc)
{
    const struct rec_suite *s = &suites[r->suite];
    EVP_MAC_CTX *m = EVP_MAC_CTX_dup(hmacs[r->suite]);
    bool ok =
        m != NULL &&
        expand_label(m, d->secret, s->hashlen, "key", d->key, s->keylen) &&
        expand_label(m, d->secret, s->hashlen, "iv", d->iv, 12);
    EVP_MAC_CTX_free(m);
    d->suite = r->suite;
    d->enc = enc;
    d->seq = 0;
    d->key_id = atomic_fetch_add(&next_key_id, 1);
    EVP_CIPHER_CTX_free(d->ctx); /* made again with the new key */
    d->ctx = NULL;
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
static bool
dir_update(struct tls_rec *r, struct rec_dir *d, int enc)
{
    size_t hl = suites[r->suite].hashlen;
    unsigned char next[48];
    EVP_MAC_CTX *m = EVP_MAC_CTX_dup(hmacs[r->suite]);
    bool ok =
        m != NULL && expand_label(m, d->secret, hl, "traffic upd", next, hl);
    EVP_MAC_CTX_free(m);
    if (ok)
        memcpy(d->secret, next, hl);
    OPENSSL_cleanse(next, sizeof(next));
    return ok && dir_key(r, d, enc);
}

struct tls_rec *
tls_rec_new(unsigned suite_id, const unsigned char *client_secret,
            const unsigned char *server_secret, size_t len, uint64_t tx_seq)
{
    pthread_once(&fetch_once, fetch_all);
    size_t i = 0;
    while (i < N_SUITES && suites[i].id != suite_id)
        i++;
    if (i == N_SUITES || ciphers[i] == NULL || hmacs[i] == NULL ||
        len != suites[i].hashlen)
        return NULL;
    struct tls_rec *r = xcalloc(1, sizeof(*r));
    r->suite = i;
    memcpy(r->rx.secret, client_secret, len);
    memcpy(r->tx.secret, server_secret, len);
    if (!dir_key(r, &r->rx, 0) || !dir_key(r, &r->tx, 1)) {
        tls_rec_free(r);
        return NULL;
    }
    r->tx.seq = tx_seq;
    return r;
}

struct tls_rec *
tls_rec_new12(int cipher_nid, const char *md, const unsigned char *master,
              size_t mlen, const unsigned char *client_random,
              const unsigned char *server_random)
{
    pthread_once(&fetch_once, fetch_all);
    size_t i = cipher_nid == NID_aes_128_gcm         ? 0
               : cipher_nid == NID_aes_256_gcm       ? 1
               : cipher_nid == NID_chacha20_poly1305 ? 2
                                                     : N_SUITES;
    if (i == N_SUITES || ciphers[i] == NULL || tls1_prf == NULL || md == NULL ||
        mlen == 0)
        return NULL;
    size_t keylen = suites[i].keylen, ivlen = i == 2 ? 12 : 4;
    /* key_block = PRF(master, "key expansion", server_random +
     * client_random): client key, server key, client IV, server IV */
    unsigned char seed[13 + 64], kb[2 * 32 + 2 * 12];
    memcpy(seed, "key expansion", 13);
    memcpy(seed + 13, server_random, 32);
    memcpy(seed + 45, client_random, 32);
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)md, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, (void *)master,
                                          mlen),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, seed,
                                          sizeof(seed)),
        OSSL_PARAM_construct_end()};
    EVP_KDF_CTX *k = EVP_KDF_CTX_new(tls1_prf);
    bool ok =
        k != NULL && EVP_KDF_derive(k, kb, 2 * keylen + 2 * ivlen, p) == 1;
    EVP_KDF_CTX_free(k);
    struct tls_rec *r = NULL;
    if (ok) {
        r = xcalloc(1, sizeof(*r));
        r->suite = i;
        r->v12 = true;
        struct rec_dir *dirs[2] = {&r->rx, &r->tx};
        for (int d = 0; d < 2; d++) {
            memcpy(dirs[d]->key, kb + (size_t)d * keylen, keylen);
            memcpy(dirs[d]->iv, kb + 2 * keylen + (size_t)d * ivlen, ivlen);
            dirs[d]->suite = i;
            dirs[d]->enc = d;
            dirs[d]->seq = 1; /* each side's Finished was record 0 */
            dirs[d]->key_id = atomic_fetch_add(&next_key_id, 1);
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
    free(r->wbuf);
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
static size_t
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
static size_t
seal(struct tls_rec *r, struct rec_dir *d, unsigned char *out, const void *in,
     size_t len, unsigned char type)
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
static bool
open_record(const struct tls_rec *r, struct rec_dir *d, unsigned char *h,
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

/* Appends one sealed record of len bytes (<= REC_MAX_PLAIN) to wbuf. */
static bool
queue_record(struct tls_rec *r, const void *in, size_t len, unsigned char type)
{
    size_t need = REC_HDR + len + rec_overhead(r);
    if (r->woff == r->wlen) {
        r->woff = r->wlen = 0;
    }
    r->wbuf = xrealloc(r->wbuf, r->wlen + need);
    size_t k = seal(r, &r->tx, r->wbuf + r->wlen, in, len, type);
    r->wlen += k;
    return k > 0;
}

/* Sends p[*sent..len): 1 all sent, 0 the socket is full, -1 error. */
static int
send_all(int fd, const unsigned char *p, size_t len, size_t *sent)
{
    while (*sent < len) {
        ssize_t n =
            send(fd, p + *sent, len - *sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            *sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        return -1;
    }
    return 1;
}

/* Sends what wbuf holds: 1 all sent (wbuf freed), 0 the socket is full,
 * -1 error (errno). */
static int
flush(struct tls_rec *r, int fd)
{
    int f = send_all(fd, r->wbuf, r->wlen, &r->woff);
    if (f == 1) {
        free(r->wbuf);
        r->wbuf = NULL;
        r->wlen = r->woff = 0;
    }
    return f;
}

/* Fails the connection with alert desc (sent best-effort, behind what is
 * queued). */
static ssize_t
fail_alert(struct tls_rec *r, int fd, int desc, struct tls_conn *c,
           const char *why)
{
    unsigned char a[2] = {2, (unsigned char)desc};
    snprintf(tls_conn_errbuf(c), TLS_ERR_LEN, "TLS record: %s (alert %d sent)",
             why, desc);
    if (!r->failed && queue_record(r, a, sizeof(a), CT_ALERT))
        (void)flush(r, fd);
    r->failed = true;
    return CG_EIO;
}

/* A KeyUpdate byte stream (RFC 8446 section 4.6.3), record by record;
 * at_end: this record ends after p[len-1]. */
static ssize_t
handshake_bytes(struct tls_rec *r, int fd, const unsigned char *p, size_t len,
                struct tls_conn *c)
{
    if (len == 0)
        return fail_alert(r, fd, AL_UNEXPECTED_MESSAGE, c,
                          "empty handshake record");
    for (size_t i = 0; i < len; i++) {
        r->hs[r->hs_len++] = p[i];
        if (r->hs[0] != HS_KEY_UPDATE)
            return fail_alert(r, fd, AL_UNEXPECTED_MESSAGE, c,
                              "post-handshake message other than KeyUpdate");
        if (r->hs_len == 4 && (r->hs[1] != 0 || r->hs[2] != 0 || r->hs[3] != 1))
            return fail_alert(r, fd, AL_DECODE_ERROR, c,
                              "KeyUpdate of a wrong length");
        if (r->hs_len < 5)
            continue;
        /* a message that changes keys must end its record */
        if (i + 1 != len)
            return fail_alert(r, fd, AL_UNEXPECTED_MESSAGE, c,
                              "data after KeyUpdate in its record");
        unsigned char req = r->hs[4];
        r->hs_len = 0;
        if (req > 1)
            return fail_alert(r, fd, AL_ILLEGAL_PARAMETER, c,
                              "KeyUpdate request_update not 0 or 1");
        if (!dir_update(r, &r->rx, 0))
            return fail_alert(r, fd, AL_INTERNAL_ERROR, c,
                              "KeyUpdate key derivation failed");
        if (req == 1) {
            /* answered with update_not_requested, sealed with the old
             * key; what follows uses the new one */
            static const unsigned char ku[5] = {HS_KEY_UPDATE, 0, 0, 1, 0};
            if (!queue_record(r, ku, sizeof(ku), CT_HANDSHAKE) ||
                !dir_update(r, &r->tx, 1))
                return fail_alert(r, fd, AL_INTERNAL_ERROR, c,
                                  "KeyUpdate key derivation failed");
        }
    }
    return 1;
}

/* Processes the first whole record of rbuf: 1 done (plaintext, if any,
 * at poff/plen), 0 more bytes needed, 2 close_notify, CG_EIO failed. */
static ssize_t
process_record(struct tls_rec *r, int fd, struct tls_conn *c)
{
    size_t avail = r->rlen - r->roff;
    if (avail < REC_HDR)
        return 0;
    unsigned char *h = r->rbuf + r->roff;
    size_t clen = (size_t)h[3] << 8 | h[4];
    if (r->v12 ? h[0] < CT_ALERT || h[0] > CT_APPDATA : h[0] != CT_APPDATA)
        return fail_alert(r, fd, AL_UNEXPECTED_MESSAGE, c,
                          !r->v12 ? "unprotected record after the handshake"
                          : h[0] == CT_CCS
                              ? "change_cipher_spec after the handshake"
                              : "record of an unknown content type");
    if (clen > (r->v12 ? REC_MAX_CIPHER12 : REC_MAX_CIPHER13))
        return fail_alert(r, fd, AL_RECORD_OVERFLOW, c,
                          r->v12 ? "record longer than 2^14 + 2048 bytes"
                                 : "record longer than 2^14 + 256 bytes");
    if (avail < REC_HDR + clen)
        return 0;
    unsigned char *p;
    size_t n;
    if (!open_record(r, &r->rx, h, clen, &p, &n))
        return fail_alert(r, fd, AL_BAD_RECORD_MAC, c,
                          "record authentication failed");
    r->roff += REC_HDR + clen;
    unsigned char type = h[0];
    if (!r->v12) {
        while (n > 0 && p[n - 1] == 0)
            n--; /* padding */
        if (n == 0)
            return fail_alert(r, fd, AL_UNEXPECTED_MESSAGE, c,
                              "record without a content type");
        type = p[--n];
    }
    if (n > REC_MAX_PLAIN)
        return fail_alert(r, fd, AL_RECORD_OVERFLOW, c,
                          "plaintext longer than 2^14 bytes");
    if (r->v12 && type == CT_HANDSHAKE) /* SSL_OP_NO_RENEGOTIATION */
        return fail_alert(r, fd, AL_HANDSHAKE_FAILURE, c,
                          "renegotiation refused");
    if (r->v12 && type == CT_ALERT && n == 2 && p[0] == 1 &&
        p[1] != AL_CLOSE_NOTIFY)
        return 1; /* TLS 1.2 warning alerts are informational */
    if (type != CT_HANDSHAKE && r->hs_len > 0)
        return fail_alert(r, fd, AL_UNEXPECTED_MESSAGE, c,
                          "record inside a fragmented handshake message");
    switch (type) {
    case CT_APPDATA:
        r->poff = (size_t)(p - r->rbuf);
        r->plen = n;
        return 1;
    case CT_ALERT:
        if (n != 2)
            return fail_alert(r, fd, AL_DECODE_ERROR, c,
                              "alert of a wrong length");
        if (p[1] == AL_CLOSE_NOTIFY) {
            r->eof = true;
            return 2;
        }
        if (p[1] == AL_USER_CANCELED)
            return 1; /* a warning; close_notify is to follow */
        snprintf(tls_conn_errbuf(c), TLS_ERR_LEN,
                 "TLS record: the client sent alert %d", p[1]);
        r->failed = true;
        return CG_EIO;
    case CT_HANDSHAKE:
        return handshake_bytes(r, fd, p, n, c);
    default:
        return fail_alert(r, fd, AL_UNEXPECTED_MESSAGE, c,
                          "record of an unknown content type");
    }
}

/* After a read: what is left of the received bytes (undelivered
 * plaintext, a partial record) moves from the scratch buffer to the
 * connection's own; an empty buffer is dropped (idle: no buffer). */
static void
rbuf_settle(struct tls_rec *r, bool scratch)
{
    bool empty = r->plen == 0 && r->roff == r->rlen;
    if (empty) {
        if (!scratch)
            free(r->rbuf);
        r->rbuf = NULL;
        r->rlen = r->roff = r->poff = 0;
        return;
    }
    if (!scratch)
        return;
    size_t start = r->plen > 0 ? r->poff : r->roff;
    unsigned char *own = xmalloc(REC_RBUF);
    memcpy(own, r->rbuf + start, r->rlen - start);
    r->rbuf = own;
    r->rlen -= start;
    r->roff -= start;
    if (r->plen > 0)
        r->poff -= start;
}

/* Sends wbuf: the caller's bytes it held once all is sent (0 when it
 * held none), CG_EAGAIN, or CG_EIO. */
static ssize_t
write_flush(struct tls_rec *r, int fd, int *want, struct tls_conn *c)
{
    int f = flush(r, fd);
    if (f < 0) {
        snprintf(tls_conn_errbuf(c), TLS_ERR_LEN, "send() failed (%s)",
                 strerror(errno));
        r->failed = true;
        return CG_EIO;
    }
    if (f == 0) {
        *want = TLS_WANT_WRITE;
        return CG_EAGAIN;
    }
    size_t k = r->wplain;
    r->wplain = 0;
    return (ssize_t)k;
}

/* The read loop of tls_rec_read, on rbuf (never NULL here). */
static ssize_t
read_records(struct tls_rec *r, int fd, void *buf, size_t n, int *want,
             struct tls_conn *c)
{
    for (;;) {
        if (r->plen > 0) {
            size_t k = r->plen < n ? r->plen : n;
            memcpy(buf, r->rbuf + r->poff, k);
            r->poff += k;
            r->plen -= k;
            return (ssize_t)k;
        }
        if (r->eof)
            return 0;
        if (r->wlen - r->woff > REC_MAX_QUEUED) {
            /* KeyUpdate answers pile up behind a peer that does not read:
             * read nothing more of it until they are sent */
            ssize_t k = write_flush(r, fd, want, c);
            if (k < 0)
                return k;
            r->wacked += (size_t)k;
        }
        ssize_t st = process_record(r, fd, c);
        if (st == 2)
            return 0;
        if (st < 0)
            return st;
        if (st == 1)
            continue;
        if (r->roff > 0) {
            memmove(r->rbuf, r->rbuf + r->roff, r->rlen - r->roff);
            r->rlen -= r->roff;
            r->roff = 0;
        }
        size_t room = REC_RBUF - r->rlen;
        ssize_t got = recv(fd, r->rbuf + r->rlen, room, MSG_DONTWAIT);
        if (got > 0) {
            r->sock_short = (size_t)got < room;
            r->rlen += (size_t)got;
            continue;
        }
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            *want = TLS_WANT_READ;
            return CG_EAGAIN;
        }
        if (got == 0) {
            /* no close_notify: an end like any other unless it cuts a
             * record (SSL_OP_IGNORE_UNEXPECTED_EOF) */
            r->eof = true;
            if (r->rlen > r->roff) {
                snprintf(tls_conn_errbuf(c), TLS_ERR_LEN,
                         "connection closed inside a record");
                r->failed = true;
                return CG_EIO;
            }
            return 0;
        }
        snprintf(tls_conn_errbuf(c), TLS_ERR_LEN, "recv() failed (%s)",
                 strerror(errno));
        r->failed = true;
        return CG_EIO;
    }
}

ssize_t
tls_rec_read(struct tls_rec *r, int fd, void *buf, size_t n, int *want,
             struct tls_conn *c)
{
    if (r->failed)
        return CG_EIO;
    if (r->wlen > r->woff) { /* a KeyUpdate answer or an unsent write */
        ssize_t k = write_flush(r, fd, want, c);
        if (k < 0)
            return k;
        r->wacked += (size_t)k; /* reported by the next write */
    }
    bool scratch = r->rbuf == NULL;
    if (scratch) {
        r->rbuf = scratch_buf();
        r->rlen = r->roff = r->poff = r->plen = 0;
    }
    ssize_t got = read_records(r, fd, buf, n, want, c);
    rbuf_settle(r, scratch);
    return got;
}

ssize_t
tls_rec_write(struct tls_rec *r, int fd, const void *buf, size_t n, int *want,
              struct tls_conn *c)
{
    if (r->failed)
        return CG_EIO;
    if (r->wacked > 0) {
        size_t k = r->wacked;
        r->wacked = 0;
        return (ssize_t)k;
    }
    if (r->wlen > r->woff) { /* an earlier call's records first */
        ssize_t k = write_flush(r, fd, want, c);
        if (k != 0)
            return k;
    }
    if (n == 0)
        return 0;
    const unsigned char *p = buf;
    size_t take = n;
    if (take > (size_t)REC_WRITE_RECORDS * REC_MAX_PLAIN)
        take = (size_t)REC_WRITE_RECORDS * REC_MAX_PLAIN;
    unsigned char *out = scratch_buf();
    size_t olen = 0, sent = 0;
    for (size_t off = 0; off < take; off += REC_MAX_PLAIN) {
        size_t k = take - off < REC_MAX_PLAIN ? take - off : REC_MAX_PLAIN;
        size_t sealed = seal(r, &r->tx, out + olen, p + off, k, CT_APPDATA);
        if (sealed == 0) {
            snprintf(tls_conn_errbuf(c), TLS_ERR_LEN,
                     "TLS record: sealing failed");
            r->failed = true;
            return CG_EIO;
        }
        olen += sealed;
    }
    int f = send_all(fd, out, olen, &sent);
    if (f < 0) {
        snprintf(tls_conn_errbuf(c), TLS_ERR_LEN, "send() failed (%s)",
                 strerror(errno));
        r->failed = true;
        return CG_EIO;
    }
    if (f == 1)
        return (ssize_t)take;
    /* the socket is full: the rest waits here, reported once sent */
    r->wbuf = xmalloc(olen - sent);
    memcpy(r->wbuf, out + sent, olen - sent);
    r->wlen = olen - sent;
    r->woff = 0;
    r->wplain = take;
    *want = TLS_WANT_WRITE;
    return CG_EAGAIN;
}

bool
tls_rec_pending(const struct tls_rec *r)
{
    if (r->plen > 0)
        return true;
    size_t avail = r->rlen - r->roff;
    if (avail < REC_HDR)
        return false;
    const unsigned char *h = r->rbuf + r->roff;
    return avail >= REC_HDR + ((size_t)h[3] << 8 | h[4]);
}

void
tls_rec_quiet(struct tls_rec *r)
{
    EVP_CIPHER_CTX_free(r->rx.ctx);
    EVP_CIPHER_CTX_free(r->tx.ctx);
    r->rx.ctx = r->tx.ctx = NULL;
    r->rx.uses = r->tx.uses = 0; /* shared contexts again until busy */
}

bool
tls_rec_sock_drained(const struct tls_rec *r)
{
    return r->sock_short;
}

void
tls_rec_close_notify(struct tls_rec *r, int fd)
{
    static const unsigned char a[2] = {1, AL_CLOSE_NOTIFY};
    if (r->failed)
        return;
    if (queue_record(r, a, sizeof(a), CT_ALERT))
        (void)flush(r, fd);
    r->failed = true;
}
