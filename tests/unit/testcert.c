#include "testcert.h"

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>

#include <cmocka.h>

EVP_PKEY *
testcert_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

static void
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

X509 *
testcert_new(const struct testcert *t)
{
    X509 *x = X509_new();
    unsigned char rnd[16];
    const unsigned char *serial = t->serial;
    size_t slen = t->slen;
    if (serial == NULL) {
        assert_int_equal(RAND_bytes(rnd, sizeof(rnd)), 1);
        rnd[0] &= 0x7f;
        serial = rnd;
        slen = sizeof(rnd);
    }
    BIGNUM *bn = BN_bin2bn(serial, (int)slen, NULL);
    assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
    BN_free(bn);
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                               (const unsigned char *)t->cn, -1, -1, 0);
    X509_set_version(x, 2);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, t->issuer ? X509_get_subject_name(t->issuer) : n);
    X509_NAME_free(n);
    X509_gmtime_adj(X509_getm_notBefore(x), t->nb);
    X509_gmtime_adj(X509_getm_notAfter(x), t->na);
    X509_set_pubkey(x, t->key);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, t->issuer ? t->issuer : x, x, NULL, NULL, 0);
    add_ext(x, &ctx, NID_basic_constraints,
            t->ca || t->leaf_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(x, &ctx, NID_key_usage,
            t->ca ? "critical,keyCertSign,cRLSign"
                  : "critical,digitalSignature");
    if (!t->ca)
        add_ext(x, &ctx, NID_ext_key_usage, "clientAuth");
    add_ext(x, &ctx, NID_subject_key_identifier, "hash");
    if (t->issuer != NULL)
        add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
    assert_true(X509_sign(x, t->ikey ? t->ikey : t->key, EVP_sha256()) > 0);
    return x;
}
