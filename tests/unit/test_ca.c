/*
 * Unit tests of src/ca: key types, serials, the client and server
 * extension profiles, CSR checks (CA:TRUE and bad signatures refused,
 * requested extensions ignored), CRL content, PKCS#12 round trips in both
 * forms, names and staged files; then init/issue/crl against a real store
 * in a temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ca/ca_int.h"
#include "core/xmalloc.h"

#define DAY 86400

/* A root CA shared by the profile tests. */
struct fixture {
    EVP_PKEY *key;
    X509 *cert;
    int64_t now;
};

static int
setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    char err[CG_ERR_LEN];
    f->now = (int64_t)time(NULL);
    assert_int_equal(ca_key_generate(CA_KEY_EC_P256, &f->key, err), 0);
    assert_int_equal(ca_ca_build("Test Root", f->key, f->now - 60,
                                 f->now + 30 * DAY, NULL, NULL, &f->cert, err),
                     0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    EVP_PKEY_free(f->key);
    X509_free(f->cert);
    free(f);
    return 0;
}

/* Builds a leaf for pub with the given profile and names. */
static X509 *
leaf(struct fixture *f, EVP_PKEY *pub, enum ca_profile prof,
     struct cg_strlist *email, struct cg_strlist *dns, struct cg_strlist *ip)
{
    unsigned char serial[CA_SERIAL_LEN];
    char err[CG_ERR_LEN];
    struct cg_strlist none = {0};
    struct ca_leaf_spec sp = {prof,
                              "leaf",
                              email ? email : &none,
                              dns ? dns : &none,
                              &none,
                              ip ? ip : &none,
                              "http://crl.example/c.crl",
                              f->now - CA_BACKDATE,
                              f->now + DAY};
    X509 *x = NULL;
    assert_int_equal(ca_serial_draw(serial, err), 0);
    int rc = ca_leaf_build(&sp, pub, serial, f->cert, f->key, &x, err);
    if (rc != 0)
        fail_msg("ca_leaf_build: %s", err);
    return x;
}

/* Verifies x against the fixture root for an OpenSSL purpose. */
static int
verify(struct fixture *f, X509 *x, int purpose)
{
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_add_cert(st, f->cert);
    X509_STORE_CTX_init(ctx, st, x, NULL);
    X509_STORE_CTX_set_purpose(ctx, purpose);
    int ok = X509_verify_cert(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    return ok;
}

static bool
ext_critical(X509 *x, int nid)
{
    int i = X509_get_ext_by_NID(x, nid, -1);
    assert_true(i >= 0);
    return X509_EXTENSION_get_critical(X509_get_ext(x, i));
}

/* The only EKU of x. */
static int
only_eku(X509 *x)
{
    EXTENDED_KEY_USAGE *eku =
        X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
    assert_non_null(eku);
    assert_int_equal(sk_ASN1_OBJECT_num(eku), 1);
    int nid = OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0));
    EXTENDED_KEY_USAGE_free(eku);
    return nid;
}

static void
test_key_types(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int id, bits;
    } want[] = {
        {"ec-p256", EVP_PKEY_EC, 256},    {"ec-p384", EVP_PKEY_EC, 384},
        {"rsa-2048", EVP_PKEY_RSA, 2048}, {"rsa-3072", EVP_PKEY_RSA, 3072},
        {"rsa-4096", EVP_PKEY_RSA, 4096}, {"ed25519", EVP_PKEY_ED25519, 253}};
    char err[CG_ERR_LEN];
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        int t = ca_key_type_parse(want[i].name);
        EVP_PKEY *k = NULL;
        assert_true(t >= 0);
        assert_string_equal(ca_key_type_name((enum ca_key_type)t),
                            want[i].name);
        assert_int_equal(ca_key_generate((enum ca_key_type)t, &k, err), 0);
        assert_int_equal(EVP_PKEY_get_base_id(k), want[i].id);
        if (want[i].id != EVP_PKEY_ED25519)
            assert_int_equal(EVP_PKEY_get_bits(k), want[i].bits);
        assert_int_equal(ca_key_check(k, err), 0);
        EVP_PKEY_free(k);
    }
    assert_int_equal(ca_key_type_parse("dsa"), -1);
    assert_int_equal(ca_key_type_parse("EC-P256"), -1);
    EVP_PKEY *k = NULL;
    assert_int_equal(ca_key_generate((enum ca_key_type)99, &k, err), CG_EINVAL);
    assert_non_null(strstr(err, "ec-p256, ec-p384"));
    /* a 1024-bit RSA key (from a CSR) is refused */
    k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    assert_int_equal(ca_key_check(k, err), CG_EINVAL);
    EVP_PKEY_free(k);
}

static int
cmp_serial(const void *a, const void *b)
{
    return memcmp(a, b, CA_SERIAL_LEN);
}

static void
test_serials(void **state)
{
    (void)state;
    enum { N = 2000 };
    unsigned char(*s)[CA_SERIAL_LEN] = xcalloc(N, CA_SERIAL_LEN);
    char err[CG_ERR_LEN];
    int high_bits = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(ca_serial_draw(s[i], err), 0);
        assert_true(s[i][0] != 0);
        assert_int_equal(s[i][0] & 0x80, 0);
        high_bits += (s[i][0] & 0x40) != 0;
        ASN1_INTEGER *a = ca_serial_asn1(s[i]);
        /* a positive INTEGER of exactly 16 content bytes */
        assert_int_equal(ASN1_STRING_length(a), CA_SERIAL_LEN);
        assert_int_equal(ASN1_STRING_type(a), V_ASN1_INTEGER);
        unsigned char *der = NULL;
        int n = i2d_ASN1_INTEGER(a, &der);
        assert_int_equal(n, 2 + CA_SERIAL_LEN);
        OPENSSL_free(der);
        ASN1_INTEGER_free(a);
    }
    /* bit 6 of the first byte is random: neither always set nor clear */
    assert_true(high_bits > N / 4 && high_bits < 3 * N / 4);
    qsort(s, N, CA_SERIAL_LEN, cmp_serial);
    for (int i = 1; i < N; i++)
        assert_true(memcmp(s[i - 1], s[i], CA_SERIAL_LEN) != 0);
    free(s);
}

static void
test_client_profile(void **state)
{
    struct fixture *f = *state;
    struct cg_strlist email = {0};
    char err[CG_ERR_LEN];
    EVP_PKEY *k = NULL;
    cg_strlist_add(&email, "alice@example.com");
    assert_int_equal(ca_key_generate(CA_KEY_EC_P256, &k, err), 0);
    X509 *x = leaf(f, k, CA_PROFILE_CLIENT, &email, NULL, NULL);
    assert_int_equal(X509_get_version(x), X509_VERSION_3);
    assert_true(ext_critical(x, NID_basic_constraints));
    assert_int_equal(X509_check_ca(x), 0);
    assert_true(ext_critical(x, NID_key_usage));
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
    assert_int_equal(only_eku(x), NID_client_auth);
    assert_non_null(X509_get0_subject_key_id(x));
    assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x),
                                           X509_get0_subject_key_id(f->cert)),
                     0);
    assert_int_equal(X509_check_email(x, "alice@example.com", 0, 0), 1);
    assert_true(X509_get_ext_by_NID(x, NID_crl_distribution_points, -1) >= 0);
    /* subject is the CN only: the email is in the SAN, not the DN */
    assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(x)), 1);
    assert_int_equal(verify(f, x, X509_PURPOSE_SSL_CLIENT), 1);
    assert_int_equal(verify(f, x, X509_PURPOSE_SSL_SERVER), 0);
    X509_free(x);
    EVP_PKEY_free(k);
    cg_strlist_clear(&email);
}

static void
test_server_profile(void **state)
{
    struct fixture *f = *state;
    struct cg_strlist dns = {0}, ip = {0};
    char err[CG_ERR_LEN];
    EVP_PKEY *k = NULL;
    cg_strlist_add(&dns, "www.example.com");
    cg_strlist_add(&dns, "*.api.example.com");
    cg_strlist_add(&ip, "127.0.0.1");
    cg_strlist_add(&ip, "::1");
    assert_int_equal(ca_key_generate(CA_KEY_RSA_2048, &k, err), 0);
    X509 *x = leaf(f, k, CA_PROFILE_SERVER, NULL, &dns, &ip);
    assert_int_equal(only_eku(x), NID_server_auth);
    /* RSA: keyEncipherment too */
    assert_int_equal(X509_get_key_usage(x),
                     KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    assert_int_equal(X509_check_host(x, "www.example.com", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "v1.api.example.com", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "example.com", 0, 0, NULL), 0);
    assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(x, "::1", 0), 1);
    assert_int_equal(verify(f, x, X509_PURPOSE_SSL_SERVER), 1);
    assert_int_equal(verify(f, x, X509_PURPOSE_SSL_CLIENT), 0);
    X509_free(x);
    EVP_PKEY_free(k);
    cg_strlist_clear(&dns);
    cg_strlist_clear(&ip);
}

static void
test_ca_certs(void **state)
{
    struct fixture *f = *state;
    char err[CG_ERR_LEN];
    EVP_PKEY *k = NULL;
    X509 *sub = NULL;
    BASIC_CONSTRAINTS *bc;
    assert_true(ext_critical(f->cert, NID_basic_constraints));
    assert_true(ext_critical(f->cert, NID_key_usage));
    assert_int_equal(X509_get_key_usage(f->cert),
                     KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_int_equal(X509_check_ca(f->cert), 1);
    assert_non_null(X509_get0_subject_key_id(f->cert));
    assert_int_equal(ca_key_generate(CA_KEY_ED25519, &k, err), 0);
    assert_int_equal(ca_ca_build("Sub", k, f->now - 60, f->now + DAY, f->cert,
                                 f->key, &sub, err),
                     0);
    bc = X509_get_ext_d2i(sub, NID_basic_constraints, NULL, NULL);
    assert_true(bc->ca);
    assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 0);
    BASIC_CONSTRAINTS_free(bc);
    assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(sub),
                                           X509_get0_subject_key_id(f->cert)),
                     0);
    assert_int_equal(X509_verify(sub, f->key), 1);
    /* an Ed25519 intermediate signs leaves (no digest) */
    struct fixture f2 = {k, sub, f->now};
    EVP_PKEY *lk = NULL;
    assert_int_equal(ca_key_generate(CA_KEY_EC_P384, &lk, err), 0);
    X509 *x = leaf(&f2, lk, CA_PROFILE_CLIENT, NULL, NULL, NULL);
    assert_int_equal(X509_verify(x, k), 1);
    X509_free(x);
    EVP_PKEY_free(lk);
    X509_free(sub);
    EVP_PKEY_free(k);
}

/* A PEM CSR for key k with the given extensions (conf strings, NULL
 * terminated); when other is set it replaces the public key after
 * signing, so the signature no longer verifies. */
static char *
make_csr(EVP_PKEY *k, EVP_PKEY *other, const char *const *exts)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *n = X509_REQ_get_subject_name(req);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                               (const unsigned char *)"csr", -1, -1, 0);
    X509_REQ_set_pubkey(req, k);
    STACK_OF(X509_EXTENSION) *sk = sk_X509_EXTENSION_new_null();
    for (size_t i = 0; exts != NULL && exts[i] != NULL; i += 2) {
        X509_EXTENSION *e = X509V3_EXT_conf(NULL, NULL, exts[i], exts[i + 1]);
        assert_non_null(e);
        sk_X509_EXTENSION_push(sk, e);
    }
    if (sk_X509_EXTENSION_num(sk) > 0)
        X509_REQ_add_extensions(req, sk);
    sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
    assert_true(X509_REQ_sign(req, k, EVP_sha256()) > 0);
    if (other != NULL)
        X509_REQ_set_pubkey(req, other);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509_REQ(b, req);
    char *p;
    long len = BIO_get_mem_data(b, &p);
    char *pem = xstrndup(p, (size_t)len);
    BIO_free(b);
    X509_REQ_free(req);
    return pem;
}

static void
test_csr_refusals(void **state)
{
    (void)state;
    static const char *const ca_true[] = {"basicConstraints",
                                          "critical,CA:TRUE", NULL};
    char err[CG_ERR_LEN];
    EVP_PKEY *k = NULL, *k2 = NULL;
    X509_REQ *req = NULL;
    assert_int_equal(ca_key_generate(CA_KEY_EC_P256, &k, err), 0);
    assert_int_equal(ca_key_generate(CA_KEY_EC_P256, &k2, err), 0);
    char *pem = make_csr(k, NULL, ca_true);
    assert_int_equal(ca_csr_parse(pem, strlen(pem), &req, err), CG_EINVAL);
    assert_non_null(strstr(err, "CA:TRUE"));
    assert_null(req);
    free(pem);
    pem = make_csr(k, k2, NULL);
    assert_int_equal(ca_csr_parse(pem, strlen(pem), &req, err), CG_EINVAL);
    assert_non_null(strstr(err, "signature"));
    free(pem);
    assert_int_equal(ca_csr_parse("junk", 4, &req, err), CG_EINVAL);
    assert_non_null(strstr(err, "not a PEM certificate request"));
    pem = make_csr(k, NULL, NULL);
    assert_int_equal(ca_csr_parse(pem, strlen(pem), &req, err), 0);
    X509_REQ_free(req);
    free(pem);
    EVP_PKEY_free(k);
    EVP_PKEY_free(k2);
}

static void
test_csr_extensions_ignored(void **state)
{
    struct fixture *f = *state;
    static const char *const exts[] = {
        "basicConstraints",
        "CA:FALSE",
        "keyUsage",
        "critical,keyCertSign,cRLSign,digitalSignature",
        "extendedKeyUsage",
        "serverAuth,codeSigning",
        "subjectAltName",
        "DNS:evil.example,email:mallory@evil.example",
        NULL};
    char err[CG_ERR_LEN];
    EVP_PKEY *k = NULL;
    X509_REQ *req = NULL;
    assert_int_equal(ca_key_generate(CA_KEY_EC_P256, &k, err), 0);
    char *pem = make_csr(k, NULL, exts);
    assert_int_equal(ca_csr_parse(pem, strlen(pem), &req, err), 0);
    X509 *x =
        leaf(f, X509_REQ_get0_pubkey(req), CA_PROFILE_CLIENT, NULL, NULL, NULL);
    assert_int_equal(only_eku(x), NID_client_auth);
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_ext_by_NID(x, NID_subject_alt_name, -1), -1);
    assert_int_equal(X509_check_host(x, "evil.example", 0, 0, NULL), 0);
    assert_int_equal(X509_cmp_time(X509_get0_notAfter(x), NULL), 1);
    X509_free(x);
    X509_REQ_free(req);
    free(pem);
    EVP_PKEY_free(k);
}

static int
entry_reason(X509_REVOKED *r)
{
    int crit;
    ASN1_ENUMERATED *e =
        X509_REVOKED_get_ext_d2i(r, NID_crl_reason, &crit, NULL);
    int code = e != NULL ? (int)ASN1_ENUMERATED_get(e) : -1;
    ASN1_ENUMERATED_free(e);
    return code;
}

static void
test_crl(void **state)
{
    struct fixture *f = *state;
    const struct ca_revoked rv[] = {{"0A11", f->now - 100, "keyCompromise"},
                                    {"0B22", f->now - 50, "unspecified"},
                                    {"7C33", f->now - 10, "superseded"}};
    char err[CG_ERR_LEN];
    X509_CRL *crl = NULL;
    assert_int_equal(
        ca_crl_build(f->cert, f->key, rv, 3, 42, f->now, 7, &crl, err), 0);
    assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
    assert_int_equal(X509_CRL_verify(crl, f->key), 1);
    ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    assert_int_equal(ASN1_INTEGER_get(num), 42);
    ASN1_INTEGER_free(num);
    assert_true(
        X509_CRL_get_ext_by_NID(crl, NID_authority_key_identifier, -1) >= 0);
    int days = 0, secs = 0;
    assert_true(ASN1_TIME_diff(&days, &secs, X509_CRL_get0_lastUpdate(crl),
                               X509_CRL_get0_nextUpdate(crl)));
    assert_int_equal(days, 7);
    assert_int_equal(secs, 0);
    STACK_OF(X509_REVOKED) *entries = X509_CRL_get_REVOKED(crl);
    assert_int_equal(sk_X509_REVOKED_num(entries), 3);
    for (int i = 0; i < 3; i++) {
        X509_REVOKED *r = sk_X509_REVOKED_value(entries, i);
        long sn = ASN1_INTEGER_get(X509_REVOKED_get0_serialNumber(r));
        int want = sn == 0x0A11 ? 1 : sn == 0x0B22 ? -1 : 4;
        assert_int_equal(entry_reason(r), want); /* -1: absent */
        assert_int_equal(
            ASN1_TIME_cmp_time_t(X509_REVOKED_get0_revocationDate(r),
                                 sn == 0x0A11   ? f->now - 100
                                 : sn == 0x0B22 ? f->now - 50
                                                : f->now - 10),
            0);
    }
    X509_CRL_free(crl);
    const struct ca_revoked bad[] = {{"XYZ", f->now, NULL}};
    assert_int_equal(
        ca_crl_build(f->cert, f->key, bad, 1, 1, f->now, 7, &crl, err),
        CG_EINVAL);
    const struct ca_revoked badr[] = {{"01", f->now, "lost"}};
    assert_int_equal(
        ca_crl_build(f->cert, f->key, badr, 1, 1, f->now, 7, &crl, err),
        CG_EINVAL);
}

/* Builds a PKCS#12 and parses it back with the password. */
static void
p12_round_trip(struct fixture *f, bool legacy)
{
    char err[CG_ERR_LEN], pass[CA_P12_PASS_LEN + 1];
    EVP_PKEY *k = NULL, *pk = NULL;
    X509 *pc = NULL;
    STACK_OF(X509) *chain = sk_X509_new_null(), *pchain = NULL;
    unsigned char *der = NULL;
    size_t len = 0;
    assert_int_equal(ca_p12_password(pass, err), 0);
    assert_int_equal(ca_key_generate(CA_KEY_EC_P256, &k, err), 0);
    X509 *x = leaf(f, k, CA_PROFILE_CLIENT, NULL, NULL, NULL);
    sk_X509_push(chain, f->cert);
    assert_int_equal(
        ca_p12_build(x, k, chain, "leaf", pass, legacy, &der, &len, err), 0);
    const unsigned char *p = der;
    PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
    assert_non_null(p12);
    assert_int_equal(PKCS12_verify_mac(p12, "wrong", -1), 0);
    assert_int_equal(PKCS12_verify_mac(p12, pass, -1), 1);
    const X509_ALGOR *macalg = NULL;
    const ASN1_OBJECT *oid = NULL;
    PKCS12_get0_mac(NULL, &macalg, NULL, NULL, p12);
    X509_ALGOR_get0(&oid, NULL, NULL, macalg);
    assert_int_equal(OBJ_obj2nid(oid), legacy ? NID_sha1 : NID_sha256);
    assert_int_equal(PKCS12_parse(p12, pass, &pk, &pc, &pchain), 1);
    assert_int_equal(X509_cmp(pc, x), 0);
    assert_int_equal(EVP_PKEY_eq(pk, k), 1);
    assert_int_equal(sk_X509_num(pchain), 1);
    assert_int_equal(X509_cmp(sk_X509_value(pchain, 0), f->cert), 0);
    sk_X509_pop_free(pchain, X509_free);
    X509_free(pc);
    EVP_PKEY_free(pk);
    PKCS12_free(p12);
    free(der);
    sk_X509_free(chain);
    X509_free(x);
    EVP_PKEY_free(k);
}

static void
test_p12_modern(void **state)
{
    p12_round_trip(*state, false);
}

static void
test_p12_legacy(void **state)
{
    p12_round_trip(*state, true);
}

static void
test_p12_password(void **state)
{
    (void)state;
    char a[CA_P12_PASS_LEN + 1], b[CA_P12_PASS_LEN + 1], err[CG_ERR_LEN];
    assert_int_equal(ca_p12_password(a, err), 0);
    assert_int_equal(ca_p12_password(b, err), 0);
    assert_int_equal(strlen(a), CA_P12_PASS_LEN);
    assert_string_not_equal(a, b);
    assert_int_equal(strspn(a, "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuv"
                               "wxyz23456789"),
                     CA_P12_PASS_LEN);
}

static void
test_names(void **state)
{
    (void)state;
    char err[CG_ERR_LEN], out[64];
    assert_int_equal(ca_name_check(CA_NAME_EMAIL, "a@example.com", err), 0);
    assert_int_equal(ca_name_check(CA_NAME_EMAIL, "a@b@c", err), CG_EINVAL);
    assert_int_equal(ca_name_check(CA_NAME_EMAIL, "nobody", err), CG_EINVAL);
    assert_int_equal(ca_name_check(CA_NAME_DNS, "*.example.com", err), 0);
    assert_int_equal(ca_name_check(CA_NAME_DNS, "a..b", err), CG_EINVAL);
    assert_int_equal(ca_name_check(CA_NAME_DNS, "-a.b", err), CG_EINVAL);
    assert_int_equal(ca_name_check(CA_NAME_DNS, "caf\xc3\xa9.fr", err),
                     CG_EINVAL);
    assert_int_equal(ca_name_check(CA_NAME_IP, "10.0.0.1", err), 0);
    assert_int_equal(ca_name_check(CA_NAME_IP, "fe80::1", err), 0);
    assert_int_equal(ca_name_check(CA_NAME_IP, "10.0.0", err), CG_EINVAL);
    assert_int_equal(ca_name_check(CA_NAME_URI, "spiffe://x/y", err), 0);
    assert_int_equal(ca_name_check(CA_NAME_URI, "no-scheme", err), CG_EINVAL);
    assert_int_equal(ca_name_check(CA_NAME_CN, "a\nb", err), CG_EINVAL);
    assert_int_equal(ca_name_check(CA_NAME_CN, "", err), CG_EINVAL);
    assert_int_equal(ca_name_check(CA_NAME_CN, "J\xc3\xbcrgen", err), 0);
    ca_file_name("../../etc/pass wd", out, sizeof(out));
    assert_string_equal(out, "_._.._etc_pass_wd");
    ca_file_name("*.example.com", out, sizeof(out));
    assert_string_equal(out, "_.example.com");
    ca_file_name("", out, sizeof(out));
    assert_string_equal(out, "cert");
    assert_int_equal(ca_reason_code("keyCompromise"), 1);
    assert_int_equal(ca_reason_code("privilegeWithdrawn"), 9);
    assert_int_equal(ca_reason_code("removeFromCRL"), -1);
    assert_string_equal(ca_key_type_list(),
                        "ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096, "
                        "ed25519");
}

/* A fresh temporary directory (owned path). */
static char *
tmpdir(void)
{
    char *d = xstrdup("/tmp/cg-test-ca-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void
rmtree(const char *dir)
{
    char *cmd = xasprintf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

static void
test_key_files(void **state)
{
    (void)state;
    char err[CG_ERR_LEN], *pem = NULL;
    char *dir = tmpdir(), *path = xasprintf("%s/k.key", dir);
    size_t len = 0;
    EVP_PKEY *k = NULL, *back = NULL;
    struct stat sb;
    struct ca_stage st = {0};
    assert_int_equal(ca_key_generate(CA_KEY_EC_P256, &k, err), 0);
    assert_int_equal(ca_key_pem(k, "s3cret", &pem, &len, err), 0);
    assert_non_null(strstr(pem, "BEGIN ENCRYPTED PRIVATE KEY"));
    assert_int_equal(ca_stage_add(&st, path, pem, len, 0600, err), 0);
    assert_int_not_equal(access(path, F_OK), 0); /* not before commit */
    assert_int_equal(ca_stage_commit(&st, false, err), 0);
    ca_stage_cleanup(&st);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(ca_key_load(path, "s3cret", &back, err), 0);
    assert_int_equal(EVP_PKEY_eq(k, back), 1);
    EVP_PKEY_free(back);
    assert_int_equal(ca_key_load(path, "wrong", &back, err), CG_EAUTH);
    assert_int_equal(ca_key_load(path, NULL, &back, err), CG_EAUTH);
    /* link-commit never replaces; an aborted stage leaves nothing */
    assert_int_equal(ca_stage_add(&st, path, "x", 1, 0600, err), 0);
    assert_int_equal(ca_stage_commit(&st, false, err), CG_EEXIST);
    ca_stage_cleanup(&st);
    char *ls = xasprintf("test $(ls -A '%s' | wc -l) -eq 1", dir);
    assert_int_equal(system(ls), 0);
    free(ls);
    ca_secret_free(pem);
    EVP_PKEY_free(k);
    rmtree(dir);
    free(path);
    free(dir);
}

static void
test_store_flow(void **state)
{
    (void)state;
    char err[CG_ERR_LEN], *dir = tmpdir();
    char *csr = xasprintf("%s/evil.csr", dir), *pem = NULL;
    struct store *s = NULL;
    struct ca_init_params ip = {
        .name = "Unit", .key = CA_KEY_EC_P256, .intermediate = true};
    struct ca_init_result ir = {0};
    struct ca_issue_params p = {.profile = CA_PROFILE_CLIENT,
                                .cn = "u1",
                                .out_dir = dir,
                                .p12_path = NULL};
    struct ca_issue_result r = {0};
    int64_t n1 = 0, n2 = 0;
    assert_int_equal(store_open(dir, &s, err), 0);
    assert_int_equal(ca_issue(s, dir, &p, &r, err), CG_ENOTFOUND);
    assert_non_null(strstr(err, "run certgate ca init first"));
    assert_int_equal(ca_init(s, dir, &ip, &ir, err), 0);
    assert_non_null(ir.issuer_key);
    ca_init_result_cleanup(&ir);
    assert_int_equal(ca_init(s, dir, &ip, &ir, err), CG_EEXIST);
    assert_int_equal(ca_issue(s, dir, &p, &r, err), 0);
    assert_int_equal(strlen(r.serial), 2 * CA_SERIAL_LEN);
    assert_non_null(r.chain_path);
    ca_issue_result_cleanup(&r);
    /* a CA:TRUE CSR changes nothing */
    static const char *const ca_true[] = {"basicConstraints", "CA:TRUE", NULL};
    EVP_PKEY *k = NULL;
    assert_int_equal(ca_key_generate(CA_KEY_EC_P256, &k, err), 0);
    char *req = make_csr(k, NULL, ca_true);
    assert_int_equal(ca_file_replace(csr, req, strlen(req), 0644, err), 0);
    p.csr_path = csr;
    p.cn = "evil";
    assert_int_equal(ca_issue(s, dir, &p, &r, err), CG_EINVAL);
    struct store_cert_filter f = {.status = -1};
    struct store_cert *certs = NULL;
    size_t n = 0;
    assert_int_equal(store_cert_list(s, &f, &certs, &n, err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(
        store_cert_revoke(s, certs[0].serial, "superseded", 1, err), 0);
    assert_int_equal(ca_crl_make(s, dir, NULL, 7, time(NULL), &pem, &n1, err),
                     0);
    assert_non_null(strstr(pem, "BEGIN X509 CRL"));
    free(pem);
    assert_int_equal(ca_crl_make(s, dir, NULL, 7, time(NULL), &pem, &n2, err),
                     0);
    assert_true(n2 > n1);
    free(pem);
    store_cert_cleanup(&certs[0]);
    free(certs);
    free(req);
    EVP_PKEY_free(k);
    store_close(s);
    rmtree(dir);
    free(csr);
    free(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_types),
        cmocka_unit_test(test_serials),
        cmocka_unit_test(test_client_profile),
        cmocka_unit_test(test_server_profile),
        cmocka_unit_test(test_ca_certs),
        cmocka_unit_test(test_csr_refusals),
        cmocka_unit_test(test_csr_extensions_ignored),
        cmocka_unit_test(test_crl),
        cmocka_unit_test(test_p12_modern),
        cmocka_unit_test(test_p12_legacy),
        cmocka_unit_test(test_p12_password),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_key_files),
        cmocka_unit_test(test_store_flow),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
