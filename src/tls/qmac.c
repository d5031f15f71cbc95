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
 * What: this file defines EVP_Q_mac, EVP_PKEY_new_raw_private_key_ex,
 * EVP_DigestSign{Init_ex,Update,Final} and EVP_PKEY_free, so the
 * executable's definitions are the ones libssl's calls reach (ELF symbol
 * interposition, as in randpool.c). Outside a listener handshake step
 * (tls_qmac_arm; conn.c arms it around SSL_do_handshake) each is
 * libcrypto's own function, unchanged; inside, too, for anything but what
 * libssl asks there:
 *  - EVP_Q_mac: HMAC on the listener's library context, with SHA-256 or
 *    SHA-384, a key, no parameter but an empty property query, and room
 *    for the output;
 *  - the binder: an HMAC key made on the listener's context is an empty
 *    EVP_PKEY whose bytes are noted, for that key object only, until it
 *    is freed or the step ends (libcrypto's HMAC key costs ~10 times
 *    more); then a signing context started with exactly that key, once,
 *    SHA-256 or SHA-384, no EVP_PKEY_CTX wanted back and no parameters.
 *    Its Update bytes are kept (up to QM_MSG), its Final is the HMAC.
 *    The EVP_MD_CTX itself is left untouched, as new, and is freed as
 *    such. Anything else that gives the key to libcrypto (a second
 *    signature, a longer message, another digest, a wanted EVP_PKEY_CTX)
 *    first has libcrypto make its HMAC key in that same object from the
 *    noted bytes (fill); after the step the key is empty for good, and
 *    libcrypto refuses it.
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
typedef void pkeyfree_fn(EVP_PKEY *pkey);
typedef int signupdate_fn(EVP_MD_CTX *ctx, const void *data, size_t dsize);
typedef int signfinal_fn(EVP_MD_CTX *ctx, unsigned char *sig, size_t *siglen);

#define QM_KEY 64  /* a binder's finished key: a hash length */
#define QM_MSG 128 /* what it signs: the hash of the partial ClientHello */

/* The binder MAC of the current step (armed thread only). */
struct binder {
    EVP_PKEY *pkey; /* the HMAC key made last; NULL: none */
    bool bare;      /* pkey has no key in it yet (fill) */
    bool used;      /* pkey has signed once */
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
static pkeyfree_fn *real_pkeyfree;

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
    real_pkeyfree =
        (pkeyfree_fn *)cg_next_symbol("EVP_PKEY_free", "OPENSSL_3.0.0");
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

/*
 * An HMAC key made in the step is an empty EVP_PKEY (EVP_PKEY_new, ~1/10
 * of libcrypto's HMAC key: its key manager found by name, a key context,
 * the import) whose bytes are noted here; what signs with it here never
 * looks inside. Anything that gives it to libcrypto fills it first, from
 * the bytes noted: libcrypto's own HMAC key, made into the same object
 * (EVP_PKEY_fromdata), for as long as the step lasts. libssl makes the
 * binder's key, signs with it once and frees it, within one step.
 */
EVP_PKEY *
EVP_PKEY_new_raw_private_key_ex(OSSL_LIB_CTX *libctx, const char *keytype,
                                const char *propq, const unsigned char *priv,
                                size_t len)
{
    pthread_once(&once, init_once);
    if (!armed || libctx == NULL || libctx != tls_libctx() || keytype == NULL ||
        strcasecmp(keytype, "HMAC") != 0 || !empty(propq) || priv == NULL ||
        len == 0 || len > QM_KEY)
        return real_rawkey(libctx, keytype, propq, priv, len);
    EVP_PKEY *k = EVP_PKEY_new();
    if (k == NULL)
        return NULL;
    OPENSSL_cleanse(&bm, sizeof(bm)); /* a key before it: not noted now */
    bm.pkey = k;
    bm.bare = true;
    memcpy(bm.key, priv, len);
    bm.keylen = len;
    return k;
}

/* The noted key freed: forgotten first, so that no key made later at its
 * address is taken for it. */
void
EVP_PKEY_free(EVP_PKEY *pkey)
{
    pthread_once(&once, init_once);
    if (pkey != NULL && pkey == bm.pkey)
        OPENSSL_cleanse(&bm, sizeof(bm));
    real_pkeyfree(pkey);
}

/* pkey ready for libcrypto: the noted key's bytes put in it if it is
 * still empty; false if that failed. */
static bool
fill(EVP_PKEY *pkey)
{
    if (pkey == NULL || pkey != bm.pkey || !bm.bare)
        return true;
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(tls_libctx(), "HMAC", NULL);
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PRIV_KEY, bm.key,
                                          bm.keylen),
        OSSL_PARAM_construct_end(),
    };
    bool ok = pc != NULL && EVP_PKEY_fromdata_init(pc) == 1 &&
              EVP_PKEY_fromdata(pc, &pkey, EVP_PKEY_KEYPAIR, p) == 1;
    EVP_PKEY_CTX_free(pc);
    bm.bare = !ok;
    return ok;
}

int
EVP_DigestSignInit_ex(EVP_MD_CTX *ctx, EVP_PKEY_CTX **pctx, const char *mdname,
                      OSSL_LIB_CTX *libctx, const char *props, EVP_PKEY *pkey,
                      const OSSL_PARAM params[])
{
    pthread_once(&once, init_once);
    enum tls_hash h;
    if (!armed || ctx == NULL || pkey == NULL || pkey != bm.pkey || bm.used ||
        pctx != NULL || params != NULL || libctx == NULL ||
        libctx != tls_libctx() || !empty(props) || mdname == NULL ||
        !tls_hash_by_name(mdname, strlen(mdname), &h))
        return fill(pkey) ? real_signinit(ctx, pctx, mdname, libctx, props,
                                          pkey, params)
                          : 0;
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
    bm.used = true;
    bm.mctx = NULL;
    OPENSSL_cleanse(bm.msg, sizeof(bm.msg));
    int ok =
        fill(pkey) &&
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
    /* the key signs once here; its bytes stay noted for fill */
    bm.used = true;
    bm.mctx = NULL;
    OPENSSL_cleanse(bm.msg, sizeof(bm.msg));
    return 1;
}
