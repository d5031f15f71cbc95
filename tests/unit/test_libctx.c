/*
 * Unit tests of the listener library context (src/tls/libctx.c): it is
 * built, and certificates parsed in it decode the public keys of every
 * signing key type (EC P-256/P-384, RSA, Ed25519, Ed448) to the same key
 * as OpenSSL's default context; a certificate for a key that cannot sign
 * (X25519) still parses, without a key. A TLS server context made in it
 * loads a certificate and a private key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>
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
        cmocka_unit_test(test_server_ctx),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
