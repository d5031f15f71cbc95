/*
 * Unit tests of src/tls/jwt.c: tokens are built and signed here with
 * OpenSSL (HS256 with EVP_Q_mac, RS256 and ES256 with EVP_DigestSign,
 * the ES256 DER signature turned into JOSE r||s), then verified, tampered
 * with, given alg "none", confused algorithms, stale times, wrong claims
 * and wrong kids.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "tls/jwt.h"

#define NOW 1800000000
#define SECRET "0123456789abcdef0123456789abcdef"

enum alg { HS, RS, ES };

struct keys {
    EVP_PKEY *rsa, *ec;
    char *rsa_pem, *ec_pem; /* PUBLIC KEY PEM text */
};

static char *
pubkey_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    char *s = strndup(p, (size_t)n);
    BIO_free(b);
    return s;
}

static int
group_setup(void **state)
{
    struct keys *k = calloc(1, sizeof(*k));
    k->rsa = EVP_RSA_gen(2048);
    k->ec = EVP_EC_gen("P-256");
    if (k->rsa == NULL || k->ec == NULL)
        return -1;
    k->rsa_pem = pubkey_pem(k->rsa);
    k->ec_pem = pubkey_pem(k->ec);
    *state = k;
    return 0;
}

static int
group_teardown(void **state)
{
    struct keys *k = *state;
    EVP_PKEY_free(k->rsa);
    EVP_PKEY_free(k->ec);
    free(k->rsa_pem);
    free(k->ec_pem);
    free(k);
    return 0;
}

/* Appends base64url of p[0..n) without padding. */
static void
b64url(struct cg_buf *out, const void *p, size_t n)
{
    char *tmp = malloc(4 * ((n + 2) / 3) + 1);
    int len = EVP_EncodeBlock((unsigned char *)tmp, p, (int)n);
    for (int i = 0; i < len; i++) {
        char c = tmp[i] == '+' ? '-' : tmp[i] == '/' ? '_' : tmp[i];
        if (c != '=')
            cg_buf_putc(out, c);
    }
    free(tmp);
}

/* ES256: DER ECDSA-Sig-Value -> r || s (32 bytes each). */
static void
der_to_jose(const unsigned char *der, size_t len, unsigned char *out)
{
    const unsigned char *p = der;
    ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)len);
    assert_non_null(s);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(s), out, 32), 32);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(s), out + 32, 32), 32);
    ECDSA_SIG_free(s);
}

/* Signs msg with key (RS, ES) or the HMAC secret (HS) into sig. */
static size_t
sign(enum alg a, EVP_PKEY *key, const char *secret, const char *msg,
     unsigned char *sig)
{
    size_t n = 512;
    if (a == HS) {
        assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret,
                                  strlen(secret), (const unsigned char *)msg,
                                  strlen(msg), sig, 64, &n));
        return n;
    }
    unsigned char der[512];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(
        EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL, key, NULL), 1);
    assert_int_equal(EVP_DigestSign(ctx, a == ES ? der : sig, &n,
                                    (const unsigned char *)msg, strlen(msg)),
                     1);
    EVP_MD_CTX_free(ctx);
    if (a == ES) {
        der_to_jose(der, n, sig);
        n = 64;
    }
    return n;
}

/* Builds header.payload.signature (owned NUL-terminated string). */
static char *
token(enum alg a, EVP_PKEY *key, const char *secret, const char *header,
      const char *payload)
{
    struct cg_buf t;
    unsigned char sig[512];
    cg_buf_init(&t);
    b64url(&t, header, strlen(header));
    cg_buf_putc(&t, '.');
    b64url(&t, payload, strlen(payload));
    size_t n = sign(a, key, secret, cg_buf_cstr(&t), sig);
    cg_buf_putc(&t, '.');
    b64url(&t, sig, n);
    return cg_buf_take(&t);
}

#define H_HS "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define H_RS "{\"alg\":\"RS256\"}"
#define H_ES "{\"alg\":\"ES256\",\"typ\":\"JWT\"}"
#define P_OK "{\"sub\":\"device-42\",\"exp\":1800000060}"

/* Verifies t (sub == device-42); asserts rc, and err holding want. */
static void
check(const struct tls_jwt_keys *k, const char *t, int rc, const char *want)
{
    char err[CG_ERR_LEN] = "";
    int got = tls_jwt_verify(k, t, strlen(t), NOW, "sub", "device-42", err);
    if (got != rc || (want != NULL && strstr(err, want) == NULL))
        fail_msg("rc %d (%s), want %d (%s)", got, err, rc,
                 want != NULL ? want : "");
}

/* A key set with the shared secret, the RSA key and the EC key. */
static struct tls_jwt_keys *
all_keys(const struct keys *k)
{
    char err[CG_ERR_LEN];
    struct tls_jwt_keys *ks = tls_jwt_keys_new();
    assert_int_equal(tls_jwt_keys_add_secret(ks, NULL, SECRET, 32, err), 0);
    assert_int_equal(
        tls_jwt_keys_add_pem(ks, NULL, k->rsa_pem, strlen(k->rsa_pem), err), 0);
    assert_int_equal(
        tls_jwt_keys_add_pem(ks, NULL, k->ec_pem, strlen(k->ec_pem), err), 0);
    assert_int_equal(tls_jwt_keys_count(ks), 3);
    return ks;
}

static void
test_valid(void **state)
{
    struct keys *k = *state;
    struct tls_jwt_keys *ks = all_keys(k);
    char *t[] = {
        token(HS, NULL, SECRET, H_HS, P_OK),
        token(RS, k->rsa, NULL, H_RS, P_OK),
        token(ES, k->ec, NULL, H_ES, P_OK),
        token(HS, NULL, SECRET, H_HS,
              "{\"username\":\"device-42\",\"sub\":\"device-42\","
              "\"exp\":1800000000.5,\"nbf\":1799999000,\"iat\":1}"),
    };
    for (size_t i = 0; i < 4; i++) {
        check(ks, t[i], 0, NULL);
        free(t[i]);
    }
    tls_jwt_keys_free(ks);
}

/* Keys from a PUBLIC KEY file and from a certificate's PEM. */
static void
test_key_sources(void **state)
{
    struct keys *k = *state;
    char err[CG_ERR_LEN], path[] = "/tmp/cg_jwt_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, k->ec_pem, strlen(k->ec_pem)),
                     (ssize_t)strlen(k->ec_pem));
    close(fd);
    struct tls_jwt_keys *ks = tls_jwt_keys_new();
    assert_int_equal(tls_jwt_keys_add_pem_file(ks, NULL, path, err), 0);
    unlink(path);
    char *t = token(ES, k->ec, NULL, H_ES, P_OK);
    check(ks, t, 0, NULL);
    tls_jwt_keys_free(ks);

    X509 *x = X509_new();
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                               (const unsigned char *)"jwt", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    ASN1_TIME_set(X509_getm_notBefore(x), NOW);
    ASN1_TIME_set(X509_getm_notAfter(x), NOW + 3600);
    X509_set_pubkey(x, k->ec);
    assert_true(X509_sign(x, k->ec, EVP_sha256()) > 0);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    char *pem = NULL;
    long n = BIO_get_mem_data(b, &pem);
    ks = tls_jwt_keys_new();
    if (tls_jwt_keys_add_pem(ks, NULL, pem, (size_t)n, err) != 0)
        fail_msg("%s", err);
    check(ks, t, 0, NULL);
    tls_jwt_keys_free(ks);
    BIO_free(b);
    X509_free(x);
    free(t);
}

/* Changes the first signature character (never a padding-bit-only one). */
static void
flip_sig(char *t)
{
    char *s = strrchr(t, '.') + 1;
    s[0] = s[0] == 'A' ? 'B' : 'A';
}

static void
test_bad_signature(void **state)
{
    struct keys *k = *state;
    struct tls_jwt_keys *ks = all_keys(k);
    enum alg algs[] = {HS, RS, ES};
    const char *hdrs[] = {H_HS, H_RS, H_ES};
    EVP_PKEY *keys[] = {NULL, k->rsa, k->ec};
    for (int i = 0; i < 3; i++) {
        char *t = token(algs[i], keys[i], SECRET, hdrs[i], P_OK);
        flip_sig(t);
        check(ks, t, CG_EAUTH, "does not verify");
        free(t);
        /* payload swapped for another one, signature kept */
        char *u = token(algs[i], keys[i], SECRET, hdrs[i], P_OK);
        char *o = token(algs[i], keys[i], SECRET, hdrs[i],
                        "{\"sub\":\"device-43\",\"exp\":1800000060}");
        char *sig = strrchr(u, '.');
        struct cg_buf m;
        cg_buf_init(&m);
        cg_buf_append(&m, o, (size_t)(strrchr(o, '.') - o));
        cg_buf_puts(&m, sig);
        check(ks, cg_buf_cstr(&m), CG_EAUTH, "does not verify");
        cg_buf_cleanup(&m);
        free(u);
        free(o);
    }
    /* an ES256 signature in DER form instead of r||s */
    char *t = token(ES, k->ec, NULL, H_ES, P_OK);
    struct cg_buf m;
    cg_buf_init(&m);
    cg_buf_append(&m, t, (size_t)(strrchr(t, '.') - t + 1));
    unsigned char der[80] = {0x30, 0x44, 0x02, 0x20};
    der[36] = 0x02;
    der[37] = 0x20;
    b64url(&m, der, 70);
    check(ks, cg_buf_cstr(&m), CG_EAUTH, "does not verify");
    cg_buf_cleanup(&m);
    free(t);
    tls_jwt_keys_free(ks);
}

/* Builds header.payload.sig with a literal signature part. */
static char *
unsigned_token(const char *header, const char *payload, const char *sig)
{
    struct cg_buf t;
    cg_buf_init(&t);
    b64url(&t, header, strlen(header));
    cg_buf_putc(&t, '.');
    b64url(&t, payload, strlen(payload));
    cg_buf_putc(&t, '.');
    cg_buf_puts(&t, sig);
    return cg_buf_take(&t);
}

static void
test_alg_none_and_confusion(void **state)
{
    struct keys *k = *state;
    struct tls_jwt_keys *ks = all_keys(k);
    char *t = unsigned_token("{\"alg\":\"none\"}", P_OK, "");
    check(ks, t, CG_EAUTH, "compact form");
    free(t);
    t = unsigned_token("{\"alg\":\"none\"}", P_OK, "AAAA");
    check(ks, t, CG_EAUTH, "\"none\" is not allowed");
    free(t);
    t = unsigned_token("{\"alg\":\"hs256\"}", P_OK, "AAAA");
    check(ks, t, CG_EAUTH, "not allowed");
    free(t);
    t = unsigned_token("{\"typ\":\"JWT\"}", P_OK, "AAAA");
    check(ks, t, CG_EAUTH, "no string alg");
    free(t);
    tls_jwt_keys_free(ks);

    /* HS256 signed with the RSA public key's PEM as the secret, against a
     * set holding that RSA key: never tried as an HMAC key */
    char err[CG_ERR_LEN];
    ks = tls_jwt_keys_new();
    tls_jwt_keys_add_pem(ks, NULL, k->rsa_pem, strlen(k->rsa_pem), err);
    t = token(HS, NULL, k->rsa_pem, H_HS, P_OK);
    check(ks, t, CG_EAUTH, "no HS256 key");
    free(t);
    /* an ES256 token relabelled RS256, and an RS256 one relabelled ES256 */
    t = token(ES, k->ec, NULL, H_RS, P_OK);
    check(ks, t, CG_EAUTH, "does not verify");
    free(t);
    t = token(RS, k->rsa, NULL, H_ES, P_OK);
    check(ks, t, CG_EAUTH, "no ES256 key");
    free(t);
    tls_jwt_keys_free(ks);
}

/* Checks the HS256 token with this payload against rc / err text. */
static void
check_payload(const struct tls_jwt_keys *ks, const char *payload, int rc,
              const char *want)
{
    char *t = token(HS, NULL, SECRET, H_HS, payload);
    check(ks, t, rc, want);
    free(t);
}

static void
test_times_and_claims(void **state)
{
    struct tls_jwt_keys *ks = all_keys(*state);
    /* exp: NOW - 29 still inside the 30 s leeway, NOW - 30 not */
    check_payload(ks, "{\"sub\":\"device-42\",\"exp\":1799999971}", 0, NULL);
    check_payload(ks, "{\"sub\":\"device-42\",\"exp\":1799999970}", CG_EAUTH,
                  "expired");
    check_payload(ks, "{\"sub\":\"device-42\"}", CG_EAUTH, "no numeric exp");
    check_payload(ks, "{\"sub\":\"device-42\",\"exp\":\"1900000000\"}",
                  CG_EAUTH, "no numeric exp");
    /* nbf: NOW + 30 allowed, NOW + 31 not */
    check_payload(ks,
                  "{\"sub\":\"device-42\",\"exp\":1900000000,"
                  "\"nbf\":1800000030}",
                  0, NULL);
    check_payload(ks,
                  "{\"sub\":\"device-42\",\"exp\":1900000000,"
                  "\"nbf\":1800000031}",
                  CG_EAUTH, "nbf");
    check_payload(ks, "{\"sub\":\"device-42\",\"exp\":1900000000,\"nbf\":null}",
                  CG_EAUTH, "nbf is not a number");
    /* the claim */
    check_payload(ks, "{\"sub\":\"device-43\",\"exp\":1900000000}", CG_EAUTH,
                  "does not match");
    check_payload(ks, "{\"sub\":\"device-42 \",\"exp\":1900000000}", CG_EAUTH,
                  "does not match");
    check_payload(ks, "{\"sub\":\"DEVICE-42\",\"exp\":1900000000}", CG_EAUTH,
                  "does not match");
    check_payload(ks, "{\"exp\":1900000000}", CG_EAUTH, "no string claim");
    check_payload(ks, "{\"sub\":42,\"exp\":1900000000}", CG_EAUTH,
                  "no string claim");
    check_payload(ks, "{\"sub\":\"device-42\",\"sub\":\"x\",\"exp\":1}",
                  CG_EAUTH, "payload");
    check_payload(ks, "[1]", CG_EAUTH, "payload");
    tls_jwt_keys_free(ks);
}

static void
test_kid(void **state)
{
    (void)state;
    char err[CG_ERR_LEN];
    struct tls_jwt_keys *ks = tls_jwt_keys_new();
    tls_jwt_keys_add_secret(ks, "k1", SECRET, 32, err);
    char *t =
        token(HS, NULL, SECRET, "{\"alg\":\"HS256\",\"kid\":\"k1\"}", P_OK);
    check(ks, t, 0, NULL);
    free(t);
    t = token(HS, NULL, SECRET, "{\"alg\":\"HS256\",\"kid\":\"k2\"}", P_OK);
    check(ks, t, CG_EAUTH, "no HS256 key with kid k2");
    free(t);
    t = token(HS, NULL, SECRET, H_HS, P_OK);
    check(ks, t, CG_EAUTH, "no HS256 key");
    free(t);
    t = token(HS, NULL, SECRET, "{\"alg\":\"HS256\",\"kid\":7}", P_OK);
    check(ks, t, CG_EAUTH, "kid is not a string");
    free(t);
    /* a key without kid serves any kid; a second key is tried too */
    tls_jwt_keys_add_secret(ks, NULL, SECRET "x", 33, err);
    t = token(HS, NULL, SECRET "x", "{\"alg\":\"HS256\",\"kid\":\"k9\"}", P_OK);
    check(ks, t, 0, NULL);
    free(t);
    tls_jwt_keys_free(ks);
}

static void
test_malformed(void **state)
{
    struct tls_jwt_keys *ks = all_keys(*state);
    char *good = token(HS, NULL, SECRET, H_HS, P_OK);
    const char *bad[] = {
        "",
        "a",
        "a.b",
        "a.b.c.d",
        ".b.c",
        "a..c",
        "a.b.",
        "eyJhbGciOiJIUzI1NiJ9=.e30.AAAA", /* padding */
        "eyJhbGciOiJIUzI1NiJ9.e31.AAAA",  /* non-canonical "{}" */
        "eyJhbGciOiJIUzI1NiJ9.e30.A",     /* impossible length */
        "e30+.e30.AAAA",                  /* base64, not base64url */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        check(ks, bad[i], CG_EAUTH, NULL);
    char *t =
        unsigned_token("{\"alg\":\"HS256\",\"crit\":[\"x\"]}", P_OK, "AAAA");
    check(ks, t, CG_EAUTH, "crit");
    free(t);
    t = unsigned_token("{\"alg\":\"HS256\",\"alg\":\"none\"}", P_OK, "AAAA");
    check(ks, t, CG_EAUTH, "header");
    free(t);
    t = unsigned_token("not json", P_OK, "AAAA");
    check(ks, t, CG_EAUTH, "header");
    free(t);
    char err[CG_ERR_LEN];
    assert_int_equal(tls_jwt_verify(ks, good, TLS_JWT_MAX_LEN + 1, NOW, "sub",
                                    "device-42", err),
                     CG_EAUTH);
    free(good);
    tls_jwt_keys_free(ks);
}

static void
test_key_errors(void **state)
{
    (void)state;
    char err[CG_ERR_LEN];
    struct tls_jwt_keys *ks = tls_jwt_keys_new();
    assert_int_equal(tls_jwt_keys_add_secret(ks, NULL, SECRET, 31, err),
                     CG_ECONFIG);
    EVP_PKEY *weak = EVP_RSA_gen(1024), *p384 = EVP_EC_gen("P-384");
    char *w = pubkey_pem(weak), *p = pubkey_pem(p384);
    assert_int_equal(tls_jwt_keys_add_pem(ks, NULL, w, strlen(w), err),
                     CG_ECONFIG);
    assert_non_null(strstr(err, "1024"));
    assert_int_equal(tls_jwt_keys_add_pem(ks, NULL, p, strlen(p), err),
                     CG_ECONFIG);
    assert_non_null(strstr(err, "P-256"));
    assert_int_equal(tls_jwt_keys_add_pem(ks, NULL, "junk", 4, err),
                     CG_ECONFIG);
    assert_int_equal(
        tls_jwt_keys_add_pem_file(ks, NULL, "/nonexistent/k.pem", err),
        CG_ECONFIG);
    assert_non_null(strstr(err, "/nonexistent/k.pem"));
    assert_int_equal(tls_jwt_keys_count(ks), 0);
    free(w);
    free(p);
    EVP_PKEY_free(weak);
    EVP_PKEY_free(p384);
    tls_jwt_keys_free(ks);
    tls_jwt_keys_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_key_sources),
        cmocka_unit_test(test_bad_signature),
        cmocka_unit_test(test_alg_none_and_confusion),
        cmocka_unit_test(test_times_and_claims),
        cmocka_unit_test(test_kid),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_key_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
