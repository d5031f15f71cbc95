/*
 * Unit tests of the listener library context (src/tls/libctx.c): it is
 * built, and certificates parsed in it decode the public keys of every
 * signing key type (EC P-256/P-384, RSA, Ed25519, Ed448) to the same key
 * as OpenSSL's default context; a certificate for a key that cannot sign
 * (X25519) still parses, without a key. A TLS server context made in it
 * loads a certificate and a private key.
 *
 * EC keys (src/tls/ecspki.c): the fast path's curves (P-256, P-384,
 * P-521, uncompressed and compressed points) and what it hands to the
 * default decoder (other curves, explicit parameters) decode to the same
 * key as in the default context; and every one-byte change of a
 * certificate's SubjectPublicKeyInfo decodes in the listener context
 * exactly as in the default one (same key, or no key in both).
 *
 * The listener context's TLS13-KDF: tests/unit/test_kdf.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls/tls_int.h"

/* A certificate for key, signed by signer. */
static X509 *
cert_for(EVP_PKEY *key, EVP_PKEY *signer)
{
    X509 *x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                               (const unsigned char *)"libctx", -1, -1, 0);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, n);
    X509_NAME_free(n);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    const EVP_MD *md = EVP_PKEY_get_id(signer) == EVP_PKEY_ED25519 ||
                               EVP_PKEY_get_id(signer) == EVP_PKEY_ED448
                           ? NULL
                           : EVP_sha256();
    assert_true(X509_sign(x, signer, md) > 0);
    return x;
}

/* Parses x's DER in the listener context; returns the parsed copy. */
static X509 *
reparse(X509 *x)
{
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    assert_true(len > 0);
    X509 *y = X509_new_ex(tls_libctx(), NULL);
    const unsigned char *p = der;
    assert_non_null(d2i_X509(&y, &p, len));
    OPENSSL_free(der);
    return y;
}

static void
check_type(EVP_PKEY *key, EVP_PKEY *signer, bool decoded)
{
    X509 *x = cert_for(key, signer);
    X509 *y = reparse(x);
    EVP_PKEY *pk = X509_get0_pubkey(y);
    if (decoded) {
        assert_non_null(pk);
        assert_int_equal(EVP_PKEY_eq(pk, key), 1);
        /* and the signature verifies with the decoded key (self-signed) */
        if (signer == key)
            assert_int_equal(X509_verify(y, pk), 1);
    } else {
        assert_null(pk);
    }
    ERR_clear_error();
    X509_free(x);
    X509_free(y);
}

static void
test_built(void **state)
{
    (void)state;
    assert_non_null(tls_libctx());
    assert_ptr_equal(tls_libctx(), tls_libctx());
}

static void
test_signing_types_decode(void **state)
{
    (void)state;
    EVP_PKEY *keys[] = {
        EVP_EC_gen("P-256"),
        EVP_EC_gen("P-384"),
        EVP_RSA_gen(2048),
        EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"),
        EVP_PKEY_Q_keygen(NULL, NULL, "ED448"),
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        assert_non_null(keys[i]);
        check_type(keys[i], keys[i], true);
        EVP_PKEY_free(keys[i]);
    }
}

static void
test_non_signing_type(void **state)
{
    (void)state;
    EVP_PKEY *ca = EVP_EC_gen("P-256");
    EVP_PKEY *x25519 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    assert_non_null(x25519);
    check_type(x25519, ca, false);
    EVP_PKEY_free(x25519);
    EVP_PKEY_free(ca);
}

/* The key of `der` parsed in `libctx`, NULL when the certificate does not
 * parse or its key does not decode; *parsed tells which. */
static EVP_PKEY *
key_in(OSSL_LIB_CTX *libctx, const unsigned char *der, int len, bool *parsed)
{
    X509 *y = X509_new_ex(libctx, NULL);
    const unsigned char *p = der;
    *parsed = d2i_X509(&y, &p, len) != NULL;
    EVP_PKEY *pk = *parsed ? X509_get_pubkey(y) : NULL;
    X509_free(y);
    ERR_clear_error();
    return pk;
}

/* The listener context decodes der as the default context does. */
static void
check_same_as_default(const unsigned char *der, int len)
{
    bool parsed_l, parsed_d;
    EVP_PKEY *l = key_in(tls_libctx(), der, len, &parsed_l);
    EVP_PKEY *d = key_in(NULL, der, len, &parsed_d);
    assert_int_equal(parsed_l, parsed_d);
    assert_int_equal(l != NULL, d != NULL);
    if (l != NULL)
        assert_int_equal(EVP_PKEY_eq(l, d), 1);
    EVP_PKEY_free(l);
    EVP_PKEY_free(d);
}

static EVP_PKEY *
ec_key(const char *curve, const char *format, const char *encoding)
{
    EVP_PKEY *k = EVP_EC_gen(curve);
    assert_non_null(k);
    if (format != NULL)
        assert_int_equal(
            EVP_PKEY_set_utf8_string_param(
                k, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, format),
            1);
    if (encoding != NULL)
        assert_int_equal(EVP_PKEY_set_utf8_string_param(
                             k, OSSL_PKEY_PARAM_EC_ENCODING, encoding),
                         1);
    return k;
}

static void
test_ec_keys_decode(void **state)
{
    (void)state;
    static const char *const curves[] = {
        "P-256", "P-384", "P-521", "secp256k1", "brainpoolP256r1",
    };
    for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
        unsigned long fast0, dflt0, fast1, dflt1;
        tls_ecspki_counts(&fast0, &dflt0);
        EVP_PKEY *k = ec_key(curves[i], NULL, NULL);
        check_type(k, k, true);
        EVP_PKEY_free(k);
        k = ec_key(curves[i], "compressed", NULL);
        check_type(k, k, true);
        EVP_PKEY_free(k);
        /* the first three by the fast path, the others by the default */
        tls_ecspki_counts(&fast1, &dflt1);
        assert_int_equal(fast1 - fast0, i < 3 ? 2 : 0);
        assert_int_equal(dflt1 - dflt0, i < 3 ? 0 : 2);
    }
    EVP_PKEY *ca = EVP_EC_gen("P-256");
    EVP_PKEY *k = ec_key("P-256", NULL, "explicit");
    X509 *x = cert_for(k, ca);
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    check_same_as_default(der, len);
    OPENSSL_free(der);
    X509_free(x);
    EVP_PKEY_free(k);
    EVP_PKEY_free(ca);
}

/* Every byte of the SubjectPublicKeyInfo of a certificate for `key`
 * changed three ways: decoded as the default context decodes it. */
static void
mutate_spki(EVP_PKEY *key, EVP_PKEY *ca)
{
    X509 *x = cert_for(key, ca);
    unsigned char *der = NULL, *spki = NULL;
    int len = i2d_X509(x, &der);
    int spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki);
    assert_true(len > 0 && spki_len > 0);
    unsigned char *at = memmem(der, (size_t)len, spki, (size_t)spki_len);
    assert_non_null(at);
    check_same_as_default(der, len);
    for (int i = 0; i < spki_len; i++) {
        static const unsigned char flips[] = {0x01, 0x80, 0xff};
        for (size_t f = 0; f < sizeof(flips); f++) {
            at[i] ^= flips[f];
            check_same_as_default(der, len);
            at[i] ^= flips[f];
        }
    }
    OPENSSL_free(spki);
    OPENSSL_free(der);
    X509_free(x);
}

static void
test_ec_spki_mutations(void **state)
{
    (void)state;
    EVP_PKEY *ca = EVP_EC_gen("P-256");
    EVP_PKEY *keys[] = {
        ec_key("P-256", NULL, NULL),
        ec_key("P-256", "compressed", NULL),
        ec_key("P-521", NULL, NULL),
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        mutate_spki(keys[i], ca);
        EVP_PKEY_free(keys[i]);
    }
    EVP_PKEY_free(ca);
}

static void
test_server_ctx(void **state)
{
    (void)state;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = cert_for(key, key);
    SSL_CTX *ctx = SSL_CTX_new_ex(tls_libctx(), NULL, TLS_server_method());
    assert_non_null(ctx);
    X509 *y = reparse(x);
    assert_int_equal(SSL_CTX_use_certificate(ctx, y), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
    assert_int_equal(SSL_CTX_check_private_key(ctx), 1);
    SSL_CTX_free(ctx);
    X509_free(y);
    X509_free(x);
    EVP_PKEY_free(key);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_built),
        cmocka_unit_test(test_signing_types_decode),
        cmocka_unit_test(test_non_signing_type),
        cmocka_unit_test(test_ec_keys_decode),
        cmocka_unit_test(test_ec_spki_mutations),
        cmocka_unit_test(test_server_ctx),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
