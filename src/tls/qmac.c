/*
 * TLS 1.3's Finished and binder MACs without the provider machinery.
 *
 * Why: libssl computes each TLS 1.3 Finished value (the server's, and the
 * one it checks the client's against: two per handshake, full or
 * resumed) with EVP_Q_mac, which for one HMAC of a 32- or 48-byte hash
 * fetches the MAC and its digest by name, makes a MAC context (an HMAC
 * context and its three digest contexts), sets its parameters, and frees
 * it all again: ~16,000 instructions a call, ~2.3% of a resumption's. The
 * PSK binder a resuming client sends is checked against an HMAC made
 * through an HMAC EVP_PKEY and EVP_DigestSign: an EVP_PKEY_CTX, the
 * signature fetch, the MAC context under it, all freed again: ~37,000
 * instructions, ~2.6% of a resumption's.
 *
 * What: this file defines EVP_Q_mac, EVP_PKEY_new_raw_private_key_ex and
 * EVP_DigestSign{Init_ex,Update,Final}, so the executable's definitions
 * are the ones libssl's calls reach (ELF symbol interposition, as in
 * randpool.c). Outside a listener handshake step (tls_qmac_arm; conn.c
 * arms it around SSL_do_handshake) each is libcrypto's own function,
 * unchanged; inside, too, for anything but what libssl asks there:
 *  - EVP_Q_mac: HMAC on the listener's library context, with SHA-256 or
 *    SHA-384, a key, no parameter but an empty property query, and room
 *    for the output;
 *  - the binder: an HMAC key made on the listener's context (libcrypto
 *    makes it; its bytes are noted, for that key object only, until it
 *    has signed once or the step ends), then a signing context started
 *    with exactly that key (EVP_PKEY_is_a "HMAC"), SHA-256 or SHA-384,
 *    no EVP_PKEY_CTX wanted back and no parameters. Its Update bytes are
 *    kept (up to QM_MSG; more, and the context is started by libcrypto
 *    after all and given them), its Final is the HMAC. The EVP_MD_CTX
 *    itself is left untouched, as new, and is freed as such.
 * Both HMACs are computed by hkdf.c (RFC 2104, as HKDF-Extract is), which
 * the key schedule of the same handshakes already uses (kdftap.c). What
 * was noted is wiped when the step ends.
 *
 * Checked by tests/unit/test_qmac.c against libcrypto for random keys and
 * messages, and by every TLS 1.3 handshake of the integration tests (a
 * wrong Finished or binder fails the handshake or the resumption).
 */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "tls/tls_int.h"

typedef unsigned char *qmac_fn(OSSL_LIB_CTX *libctx, const char *name,
                               const char *propq, const char *subalg,
                               const OSSL_PARAM *params, const void *key,
                               size_t keylen, const unsigned char *data,
                               size_t datalen, unsigned char *out,
                               size_t outsize, size_t *outlen);
typedef EVP_PKEY *rawkey_fn(OSSL_LIB_CTX *libctx, const char *keytype,
                            const char *propq, const unsigned char *priv,
                            size_t len);
typedef int signinit_fn(EVP_MD_CTX *ctx, EVP_PKEY_CTX **pctx,
                        const char *mdname, OSSL_LIB_CTX *libctx,
                        const char *props, EVP_PKEY *pkey,
                        const OSSL_PARAM params[]);
typedef int signupdate_fn(EVP_MD_CTX *ctx, const void *data, size_t dsize);
typedef int signfinal_fn(EVP_MD_CTX *ctx, unsigned char *sig, size_t *siglen);

#define QM_KEY 64  /* a binder's finished key: a hash length */
#define QM_MSG 128 /* what it signs: the hash of the partial ClientHello */

/* The binder MAC of the current step (armed thread only). */
struct binder {
    EVP_PKEY *pkey; /* the HMAC key made last; NULL: none */
    unsigned char key[QM_KEY];
    size_t keylen;
    EVP_MD_CTX *mctx; /* signing with it, not yet final; NULL: none */
    const char *mdname;
    enum tls_hash h;
    unsigned char msg[QM_MSG];
    size_t msglen;
};

static _Thread_local bool armed;
static _Thread_local struct binder bm;
static _Thread_local unsigned long n_fast;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static qmac_fn *real_qmac;
static rawkey_fn *real_rawkey;
static signinit_fn *real_signinit;
static signupdate_fn *real_signupdate;
static signfinal_fn *real_signfinal;

static void
init_once(void)
{
    real_qmac = (qmac_fn *)cg_next_symbol("EVP_Q_mac", "OPENSSL_3.0.0");
    real_rawkey = (rawkey_fn *)cg_next_symbol("EVP_PKEY_new_raw_private_key_ex",
                                              "OPENSSL_3.0.0");
    real_signinit =
        (signinit_fn *)cg_next_symbol("EVP_DigestSignInit_ex", "OPENSSL_3.0.0");
    real_signupdate = (signupdate_fn *)cg_next_symbol("EVP_DigestSignUpdate",
                                                      "OPENSSL_3.0.0");
    real_signfinal =
        (signfinal_fn *)cg_next_symbol("EVP_DigestSignFinal", "OPENSSL_3.0.0");
}

void
tls_qmac_arm(bool on)
{
    armed = on;
    if (!on && (bm.pkey != NULL || bm.mctx != NULL))
        OPENSSL_cleanse(&bm, sizeof(bm));
}

unsigned long
tls_qmac_fast(void)
{
    return n_fast;
}

static bool
empty(const char *s)
{
    return s == NULL || *s == '\0';
}

/* No parameter, or only an empty property query (libssl passes its
 * context's, NULL here). */
static bool
no_params(const char *propq, const OSSL_PARAM *params)
{
    if (!empty(propq))
        return false;
    for (const OSSL_PARAM *p = params; p != NULL && p->key != NULL; p++) {
        if (strcmp(p->key, OSSL_ALG_PARAM_PROPERTIES) != 0 ||
            p->data_type != OSSL_PARAM_UTF8_STRING ||
            (p->data != NULL && *(const char *)p->data != '\0'))
            return false;
    }
    return true;
}

unsigned char *
EVP_Q_mac(OSSL_LIB_CTX *libctx, const char *name, const char *propq,
          const char *subalg, const OSSL_PARAM *params, const void *key,
          size_t keylen, const unsigned char *data, size_t datalen,
          unsigned char *out, size_t outsize, size_t *outlen)
{
    pthread_once(&once, init_once);
    enum tls_hash h;
    if (!armed || libctx == NULL || libctx != tls_libctx() || name == NULL ||
        strcasecmp(name, "HMAC") != 0 || subalg == NULL ||
        !tls_hash_by_name(subalg, strlen(subalg), &h) || key == NULL ||
        keylen == 0 || (data == NULL && datalen != 0) || out == NULL ||
        outsize < tls_hash_len(h) || !no_params(propq, params))
        return real_qmac(libctx, name, propq, subalg, params, key, keylen, data,
                         datalen, out, outsize, outlen);
    tls_hmac(h, key, keylen, data, datalen, out);
    if (outlen != NULL)
        *outlen = tls_hash_len(h);
    n_fast++;
    return out;
}

EVP_PKEY *
EVP_PKEY_new_raw_private_key_ex(OSSL_LIB_CTX *libctx, const char *keytype,
                                const char *propq, const unsigned char *priv,
                                size_t len)
{
    pthread_once(&once, init_once);
    EVP_PKEY *k = real_rawkey(libctx, keytype, propq, priv, len);
    if (armed && k != NULL && libctx != NULL && libctx == tls_libctx() &&
        keytype != NULL && strcasecmp(keytype, "HMAC") == 0 && empty(propq) &&
        priv != NULL && len > 0 && len <= QM_KEY) {
        OPENSSL_cleanse(&bm, sizeof(bm));
        bm.pkey = k;
        memcpy(bm.key, priv, len);
        bm.keylen = len;
    }
    return k;
}

int
EVP_DigestSignInit_ex(EVP_MD_CTX *ctx, EVP_PKEY_CTX **pctx, const char *mdname,
                      OSSL_LIB_CTX *libctx, const char *props, EVP_PKEY *pkey,
                      const OSSL_PARAM params[])
{
    pthread_once(&once, init_once);
    enum tls_hash h;
    if (!armed || ctx == NULL || pkey == NULL || pkey != bm.pkey ||
        pctx != NULL || params != NULL || libctx == NULL ||
        libctx != tls_libctx() || !empty(props) || mdname == NULL ||
        !tls_hash_by_name(mdname, strlen(mdname), &h) ||
        !EVP_PKEY_is_a(pkey, "HMAC"))
        return real_signinit(ctx, pctx, mdname, libctx, props, pkey, params);
    bm.mctx = ctx;
    bm.mdname = mdname;
    bm.h = h;
    bm.msglen = 0;
    return 1;
}

int
EVP_DigestSignUpdate(EVP_MD_CTX *ctx, const void *data, size_t dsize)
{
    pthread_once(&once, init_once);
    if (ctx == NULL || ctx != bm.mctx)
        return real_signupdate(ctx, data, dsize);
    if (dsize <= QM_MSG - bm.msglen) {
        if (dsize > 0)
            memcpy(bm.msg + bm.msglen, data, dsize);
        bm.msglen += dsize;
        return 1;
    }
    /* more than a binder signs: libcrypto's context after all */
    EVP_PKEY *pkey = bm.pkey;
    const char *mdname = bm.mdname;
    unsigned char held[QM_MSG];
    size_t n = bm.msglen;
    memcpy(held, bm.msg, n);
    OPENSSL_cleanse(&bm, sizeof(bm));
    int ok =
        real_signinit(ctx, NULL, mdname, tls_libctx(), NULL, pkey, NULL) == 1 &&
        (n == 0 || real_signupdate(ctx, held, n) == 1) &&
        real_signupdate(ctx, data, dsize) == 1;
    OPENSSL_cleanse(held, sizeof(held));
    return ok;
}

int
EVP_DigestSignFinal(EVP_MD_CTX *ctx, unsigned char *sig, size_t *siglen)
{
    pthread_once(&once, init_once);
    if (ctx == NULL || ctx != bm.mctx)
        return real_signfinal(ctx, sig, siglen);
    size_t hl = tls_hash_len(bm.h);
    if (siglen == NULL)
        return 0;
    if (sig == NULL) { /* the size */
        *siglen = hl;
        return 1;
    }
    if (*siglen < hl)
        return 0;
    tls_hmac(bm.h, bm.key, bm.keylen, bm.msg, bm.msglen, sig);
    *siglen = hl;
    n_fast++;
    OPENSSL_cleanse(&bm, sizeof(bm)); /* the key signs once */
    return 1;
}
