/*
 * The application traffic secrets of a TLS 1.3 handshake, as OpenSSL
 * derives them.
 *
 * Why: a listener connection leaves OpenSSL after its handshake (record.c)
 * and needs the two application traffic secrets. OpenSSL 3.0 has no call
 * that returns them; its key-log callback does, but OpenSSL formats five
 * lines per handshake with one sprintf per byte (~400 calls): 6% of the
 * instructions of a full handshake, 11% of a resumption.
 *
 * What: the listener library context's TLS13-KDF (libctx.c) is the default
 * provider's with its derive function wrapped. libssl derives every TLS
 * 1.3 secret through it, passing the label with the call (RFC 8446 7.1,
 * "tls13 " prefix). While a listener connection's handshake step runs on a
 * thread (tls_kdftap_arm), the outputs labelled "c ap traffic" and
 * "s ap traffic" are kept in that connection's secrets; at any other
 * time, and on
 * any other thread, the wrapper only calls the default function. Without
 * the wrapper in place (no listener context), the key log serves.
 */
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <string.h>

#include "core/util.h"
#include "core/xmalloc.h"
#include "tls/tls_int.h"

static OSSL_FUNC_kdf_derive_fn *dflt_derive;
static OSSL_DISPATCH dispatch[24];
static _Thread_local struct tls_hs_secrets **armed;

static int
match(const OSSL_PARAM *params, const char *key, const char *value)
{
    const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, key);
    size_t n = strlen(value);
    return p != NULL && p->data_type == OSSL_PARAM_OCTET_STRING &&
           p->data_size == n && memcmp(p->data, value, n) == 0;
}

static int
derive(void *ctx, unsigned char *key, size_t keylen, const OSSL_PARAM params[])
{
    int ok = dflt_derive(ctx, key, keylen, params);
    struct tls_hs_secrets **slot = armed;
    if (ok <= 0 || slot == NULL || params == NULL ||
        !match(params, OSSL_KDF_PARAM_PREFIX, "tls13 "))
        return ok;
    if (match(params, OSSL_KDF_PARAM_LABEL, "c ap traffic"))
        tls_secret_keep(slot, 0, key, keylen);
    else if (match(params, OSSL_KDF_PARAM_LABEL, "s ap traffic"))
        tls_secret_keep(slot, 1, key, keylen);
    return ok;
}

bool
tls_kdftap_wrap(OSSL_ALGORITHM *a)
{
    void (*orig)(void);
    if (dflt_derive != NULL ||
        !tls_dispatch_wrap(a, dispatch, CG_ARRAY_LEN(dispatch),
                           OSSL_FUNC_KDF_DERIVE, (void (*)(void))derive, &orig))
        return false;
    dflt_derive = (OSSL_FUNC_kdf_derive_fn *)orig;
    return true;
}

bool
tls_kdftap_ready(void)
{
    return dflt_derive != NULL && tls_libctx() != NULL;
}

void
tls_kdftap_arm(struct tls_hs_secrets **slot)
{
    armed = slot;
}

void
tls_secret_keep(struct tls_hs_secrets **slot, int which,
                const unsigned char *secret, size_t len)
{
    if (len != 32 && len != 48)
        return;
    if (*slot == NULL)
        *slot = xcalloc(1, sizeof(**slot));
    memcpy((*slot)->v[which], secret, len);
    (*slot)->len = (unsigned char)len;
    (*slot)->seen |= (unsigned char)(1 << which);
}
