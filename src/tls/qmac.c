/*
 * TLS 1.3's Finished MACs without the provider machinery.
 *
 * Why: libssl computes each TLS 1.3 Finished value (the server's, and the
 * one it checks the client's against: two per handshake, full or
 * resumed) with EVP_Q_mac, which for one HMAC of a 32- or 48-byte hash
 * fetches the MAC and its digest by name, makes a MAC context (an HMAC
 * context and its three digest contexts), sets its parameters, and frees
 * it all again: ~16,000 instructions a call, ~2.3% of a resumption's.
 *
 * What: this file defines EVP_Q_mac, so the executable's definition is the
 * one libssl's calls reach (ELF symbol interposition, as in randpool.c).
 * Outside a listener handshake step (tls_qmac_arm; conn.c arms it around
 * SSL_do_handshake) it is libcrypto's own function, unchanged; inside,
 * too, for anything but what libssl asks there: HMAC on the listener's
 * library context, with SHA-256 or SHA-384, a key, no parameter but an
 * empty property query, and room for the output. That HMAC is computed by
 * hkdf.c (RFC 2104, as HKDF-Extract is), which the key schedule of the
 * same handshakes already uses (kdftap.c).
 *
 * Checked by tests/unit/test_qmac.c against libcrypto's EVP_Q_mac for
 * random keys and messages, and by every TLS 1.3 handshake of the
 * integration tests (a wrong Finished fails the handshake).
 */
#include <openssl/core_names.h>
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

static _Thread_local bool armed;
static _Thread_local unsigned long n_fast;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static qmac_fn *real_qmac;

static void
init_once(void)
{
    real_qmac = (qmac_fn *)cg_next_symbol("EVP_Q_mac", "OPENSSL_3.0.0");
}

void
tls_qmac_arm(bool on)
{
    armed = on;
}

unsigned long
tls_qmac_fast(void)
{
    return n_fast;
}

/* No parameter, or only an empty property query (libssl passes its
 * context's, NULL here). */
static bool
no_params(const char *propq, const OSSL_PARAM *params)
{
    if (propq != NULL && *propq != '\0')
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
