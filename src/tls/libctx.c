/*
 * The OpenSSL library context of listener SSL_CTXs.
 *
 * Why: OpenSSL 3.0 decodes the public key of every certificate it parses
 * (d2i_X509 on the client's chain, twice per handshake when the client
 * sends its CA too) through OSSL_DECODER_CTX_new_for_pkey(), which
 * enumerates and constructs every key manager and every decoder of every
 * provider of the library context on each call (3.0 has no decoder
 * cache): ~100-130 us per certificate here, more than an ECDSA verify.
 *
 * What: a library context whose only provider, "certgate-tls", is the
 * default provider seen through a narrower window: every implementation is
 * the default provider's own (same algorithm tables, same implementations,
 * same provider context), but only some are shown: of its decoders (and
 * encoders) those for DER SubjectPublicKeyInfo (the one structure
 * certificate parsing needs) of key types that can sign (the only keys
 * that can authenticate a peer or issue a certificate), of the other
 * operations what a TLS server with client authentication uses (see
 * windows[]). Such a certificate decodes exactly as before, at ~40% of
 * the cost. Its EC SubjectPublicKeyInfo decoder has its decode function
 * replaced (ecspki.c: the curve is built once, not per key). Private keys are
 * loaded in the default context (listener.c) and used across providers by
 * OpenSSL's key export, cached per key.
 *
 * Process-wide, built once (like OpenSSL's own default context); NULL
 * (the default context) when it cannot be built.
 */
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/util.h"
#include "core/xmalloc.h"
#include "tls/tls_int.h"

static CRYPTO_ONCE libctx_once = CRYPTO_ONCE_STATIC_INIT;
static OSSL_LIB_CTX *libctx;
static OSSL_PROVIDER *deflt; /* the default provider, default context */

/* Key types that can sign, hence authenticate a TLS peer or issue a
 * certificate: the only ones whose keys are decoded here. */
static const char *const signing_types[] = {
    "EC", "SM2", "RSA", "RSA-PSS", "ED25519", "ED448", "DSA",
};

/* True when the first name of a "A:B:C" algorithm name list is type. */
static bool
first_name_is(const char *names, const char *type)
{
    size_t n = strlen(type);
    return strncasecmp(names, type, n) == 0 &&
           (names[n] == ':' || names[n] == '\0');
}

/*
 * What else the listener context shows of the default provider: what a
 * TLS 1.2/1.3 server with client authentication uses (AEAD suites, the
 * key exchanges, signature algorithms and hashes of certificates, the
 * KDFs, HMAC, the DRBG's AES-ECB/CTR). OpenSSL 3.0 walks every algorithm
 * its method store holds, of every operation, twice for each public key
 * it decodes (EVP_KEYMGMT_do_all_provided, OSSL_DECODER_do_all_provided:
 * a copy of each entry, ~3,000 allocations a handshake with the whole
 * default provider); the fewer algorithms, the shorter the walk. A name
 * list NULL shows the whole operation.
 */
struct op_window {
    int op;
    const char *const *names; /* first names shown, NULL-terminated */
};

static const char *const digests[] = {
    "MD5", /* the md5 identity field */
    "SHA1",     "SHA2-224", "SHA2-256", "SHA2-384", "SHA2-512",
    "SHA3-224", "SHA3-256", "SHA3-384", "SHA3-512", NULL,
};
static const char *const ciphers[] = {
    "AES-128-GCM", "AES-256-GCM", "ChaCha20-Poly1305", "AES-128-ECB",
    "AES-256-ECB", "AES-128-CTR", "AES-256-CTR",       NULL,
};
static const char *const macs[] = {"HMAC", NULL};
static const char *const kdfs[] = {"HKDF", "TLS13-KDF", "TLS1-PRF", NULL};
static const char *const keymgmts[] = {
    "EC",      "X25519", "X448", "ED25519", "ED448", "RSA",
    "RSA-PSS", "DH",     "DSA",  "HMAC",    NULL,
};
static const char *const keyexchs[] = {"ECDH", "X25519", "X448", "DH", NULL};
static const char *const signatures[] = {
    "ECDSA", "RSA", "ED25519", "ED448", "DSA", "HMAC", NULL,
};

static const struct op_window windows[] = {
    {OSSL_OP_DIGEST, digests},
    {OSSL_OP_CIPHER, ciphers},
    {OSSL_OP_MAC, macs},
    {OSSL_OP_KDF, kdfs},
    {OSSL_OP_KEYMGMT, keymgmts},
    {OSSL_OP_KEYEXCH, keyexchs},
    {OSSL_OP_SIGNATURE, signatures},
    {OSSL_OP_DECODER, NULL},
    {OSSL_OP_ENCODER, NULL},
};

/* The shown algorithms of each windowed operation (terminated). */
static OSSL_ALGORITHM *shown[CG_ARRAY_LEN(windows)];

static bool
shown_by_name(const OSSL_ALGORITHM *a, const char *const *names)
{
    for (size_t i = 0; names[i] != NULL; i++) {
        if (first_name_is(a->algorithm_names, names[i]))
            return true;
    }
    return false;
}

/* Decoders from, encoders to, DER SubjectPublicKeyInfo of signing keys. */
static bool
spki_coder(const OSSL_ALGORITHM *a, const char *io)
{
    const char *p = a->property_definition;
    if (p == NULL || strstr(p, io) == NULL ||
        strstr(p, "structure=SubjectPublicKeyInfo") == NULL)
        return false;
    for (size_t i = 0; i < CG_ARRAY_LEN(signing_types); i++) {
        if (first_name_is(a->algorithm_names, signing_types[i]))
            return true;
    }
    return false;
}

static bool
windows_build(void)
{
    for (size_t w = 0; w < CG_ARRAY_LEN(windows); w++) {
        int no_cache = 0, op = windows[w].op;
        const OSSL_ALGORITHM *all =
            OSSL_PROVIDER_query_operation(deflt, op, &no_cache);
        size_t n = 0, kept = 0;
        while (all != NULL && all[n].algorithm_names != NULL)
            n++;
        shown[w] = xcalloc(n + 1, sizeof(*shown[w]));
        for (size_t i = 0; i < n; i++) {
            bool keep = windows[w].names != NULL
                            ? shown_by_name(&all[i], windows[w].names)
                        : op == OSSL_OP_DECODER
                            ? spki_coder(&all[i], "input=der")
                            : spki_coder(&all[i], "output=der");
            if (!keep)
                continue;
            shown[w][kept] = all[i];
            if (op == OSSL_OP_DECODER &&
                first_name_is(all[i].algorithm_names, "EC"))
                tls_ecspki_wrap(&shown[w][kept]);
            if (op == OSSL_OP_KDF &&
                first_name_is(all[i].algorithm_names, "TLS13-KDF"))
                tls_kdftap_wrap(&shown[w][kept], false);
            if (op == OSSL_OP_KDF &&
                first_name_is(all[i].algorithm_names, "TLS1-PRF"))
                tls_kdftap_wrap(&shown[w][kept], true);
            kept++;
        }
        OSSL_PROVIDER_unquery_operation(deflt, op, all);
        if (kept == 0)
            return false;
    }
    return true;
}

bool
tls_dispatch_wrap(OSSL_ALGORITHM *a, OSSL_DISPATCH *table, size_t cap,
                  const struct tls_fn_repl *r, size_t nr, bool strict)
{
    const OSSL_DISPATCH *f = a->implementation;
    size_t n = 0;
    for (size_t i = 0; i < nr; i++)
        *r[i].orig = NULL;
    for (; f[n].function_id != 0; n++) {
        if (n + 1 >= cap)
            return false;
        table[n] = f[n];
        size_t i = 0;
        while (i < nr && r[i].id != f[n].function_id)
            i++;
        if (i == nr && strict)
            return false;
        if (i == nr)
            continue;
        *r[i].orig = f[n].function;
        if (r[i].fn != NULL)
            table[n].function = r[i].fn;
    }
    table[n] = f[n];
    a->implementation = table;
    return true;
}

static const OSSL_ALGORITHM *
query(void *provctx, int op, int *no_cache)
{
    (void)provctx;
    for (size_t w = 0; w < CG_ARRAY_LEN(windows); w++) {
        if (windows[w].op == op) {
            *no_cache = 0;
            return shown[w];
        }
    }
    return OSSL_PROVIDER_query_operation(deflt, op, no_cache);
}

static void
unquery(void *provctx, int op, const OSSL_ALGORITHM *algs)
{
    (void)provctx;
    for (size_t w = 0; w < CG_ARRAY_LEN(windows); w++) {
        if (windows[w].op == op)
            return;
    }
    OSSL_PROVIDER_unquery_operation(deflt, op, algs);
}

static int
capabilities(void *provctx, const char *capability, OSSL_CALLBACK *cb,
             void *arg)
{
    (void)provctx;
    return OSSL_PROVIDER_get_capabilities(deflt, capability, cb, arg);
}

static int
get_params(void *provctx, OSSL_PARAM params[])
{
    (void)provctx;
    return OSSL_PROVIDER_get_params(deflt, params);
}

static const OSSL_DISPATCH dispatch[] = {
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))query},
    {OSSL_FUNC_PROVIDER_UNQUERY_OPERATION, (void (*)(void))unquery},
    {OSSL_FUNC_PROVIDER_GET_CAPABILITIES, (void (*)(void))capabilities},
    {OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))get_params},
    {0, NULL},
};

/* The provider's entry point: the default provider's context, so every
 * forwarded implementation gets the context it was written for. */
static int
provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
              const OSSL_DISPATCH **out, void **provctx)
{
    (void)handle;
    tls_ecspki_core(in);
    *provctx = OSSL_PROVIDER_get0_provider_ctx(deflt);
    *out = dispatch;
    return *provctx != NULL;
}

static void
libctx_init(void)
{
    deflt = OSSL_PROVIDER_load(NULL, "default");
    OSSL_LIB_CTX *lc = OSSL_LIB_CTX_new();
    if (deflt == NULL || lc == NULL || !windows_build() ||
        !OSSL_PROVIDER_add_builtin(lc, "certgate-tls", provider_init) ||
        OSSL_PROVIDER_load(lc, "certgate-tls") == NULL) {
        char ssl[256];
        tls_drain_errors(ssl, sizeof(ssl));
        cg_log(CG_LOG_WARN, 0,
               "TLS library context not built, using OpenSSL's default "
               "(slower certificate parsing): %s",
               ssl);
        OSSL_LIB_CTX_free(lc);
        return;
    }
    libctx = lc;
}

OSSL_LIB_CTX *
tls_libctx(void)
{
    if (!CRYPTO_THREAD_run_once(&libctx_once, libctx_init))
        return NULL;
    return libctx;
}
