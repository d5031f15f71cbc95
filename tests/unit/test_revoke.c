/*
 * Unit tests of the revocation index (src/tls/revoke.c) and of CRL
 * loading (src/tls/crl.c, through tls_trust_new): serial normalisation,
 * duplicates, 20-byte serials, empty CRLs, a million entries (build time,
 * memory and lookup cost printed, not asserted), every refusal at load,
 * stale CRLs under reject and grace, revoked intermediates, and the
 * built-in CA fed from a real store. Certificates and CRLs are made here
 * with OpenSSL, in a temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testcert.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ca/ca.h"
#include "core/util.h"
#include "core/xmalloc.h"
#include "store/store.h"
#include "tls/revoke.h"
#include "tls/tls.h"
#include "tls/tls_int.h"

#define HOUR 3600

/* ---- the index alone ---------------------------------------------- */

/* A self-signed CA certificate: only its name and key matter here. */
static X509 *bare_ca(const char *cn, EVP_PKEY **keyp);

static void
test_serial_forms(void **state)
{
    (void)state;
    EVP_PKEY *k = NULL;
    X509 *ca = bare_ca("Index CA", &k);
    struct tls_revindex_builder *b = tls_revindex_builder_new();
    size_t id = tls_revindex_builder_issuer(b, ca);
    assert_int_equal(tls_revindex_builder_issuer(b, ca), id);
    static const unsigned char s1[] = {0x00, 0x00, 0x12, 0x34};
    static const unsigned char s1_short[] = {0x12, 0x34};
    unsigned char s20[20], s21[21], s21z[21];
    memset(s20, 0xff, sizeof(s20));
    memset(s21, 0xee, sizeof(s21));
    s21z[0] = 0;
    memset(s21z + 1, 0xab, 20);
    /* duplicates, in every spelling */
    for (int i = 0; i < 3; i++)
        assert_int_equal(tls_revindex_builder_add(b, id, s1, 4, false), 0);
    assert_int_equal(tls_revindex_builder_add_hex(b, id, "00:12:34"), 0);
    assert_int_equal(tls_revindex_builder_add_hex(b, id, "1234"), 0);
    assert_int_equal(tls_revindex_builder_add(b, id, s20, 20, false), 0);
    assert_int_equal(tls_revindex_builder_add(b, id, s21, 21, false),
                     CG_EINVAL);
    assert_int_equal(tls_revindex_builder_add(b, id, s21z, 21, false), 0);
    assert_int_equal(tls_revindex_builder_add(b, id, s1_short, 2, true), 0);
    assert_int_equal(tls_revindex_builder_add_hex(b, id, "abc"), 0);
    assert_int_equal(tls_revindex_builder_add_hex(b, id, "0"), 0);
    assert_int_equal(tls_revindex_builder_add_hex(b, id, ""), CG_EINVAL);
    assert_int_equal(tls_revindex_builder_add_hex(b, id, "12g4"), CG_EINVAL);
    assert_int_equal(
        tls_revindex_builder_add_hex(
            b, id, "0000ff112233445566778899aabbccddeeff0011223344"),
        CG_EINVAL); /* 21 significant bytes */
    assert_int_equal(tls_revindex_builder_add_hex(
                         b, id, "00112233445566778899aabbccddeeff00112233"),
                     0);
    struct tls_revindex *ix = tls_revindex_build(b);
    /* 1234, ff*20, 00ab*20, -1234, 0abc, 0, 1122..33 */
    assert_int_equal(tls_revindex_entries(ix), 7);
    assert_true(tls_revindex_contains(ix, id, s1_short, 2, false));
    assert_true(tls_revindex_contains(ix, id, s1, 4, false));
    assert_true(tls_revindex_contains(ix, id, s1_short, 2, true));
    assert_true(tls_revindex_contains(ix, id, s20, 20, false));
    assert_true(tls_revindex_contains(ix, id, s21z + 1, 20, false));
    assert_true(
        tls_revindex_contains(ix, id, (const unsigned char *)"", 0, false));
    static const unsigned char abc[] = {0x0a, 0xbc}, absent[] = {0x12, 0x35};
    assert_true(tls_revindex_contains(ix, id, abc, 2, false));
    assert_false(tls_revindex_contains(ix, id, absent, 2, false));
    assert_false(tls_revindex_contains(ix, id, s20, 19, false));
    assert_false(tls_revindex_contains(ix, id, s21, 21, false));
    assert_false(tls_revindex_contains(ix, id + 1, s1, 4, false));
    struct tls_revissuer_info info;
    tls_revindex_issuer_info(ix, id, &info);
    assert_ptr_equal(info.ca, ca);
    assert_int_equal(info.serials, 7);
    assert_null(info.source);
    tls_revindex_free(ix);
    X509_free(ca);
    EVP_PKEY_free(k);
}

static void
test_empty(void **state)
{
    (void)state;
    EVP_PKEY *k = NULL;
    X509 *ca = bare_ca("Empty CA", &k);
    struct tls_revindex *ix = tls_revindex_build(tls_revindex_builder_new());
    static const unsigned char one[] = {1};
    assert_int_equal(tls_revindex_entries(ix), 0);
    assert_int_equal(tls_revindex_check(ix, ca, ca, 0), TLS_REV_GOOD);
    tls_revindex_free(ix);
    struct tls_revindex_builder *b = tls_revindex_builder_new();
    size_t id = tls_revindex_builder_issuer(b, ca);
    tls_revindex_builder_set_source(b, id, "empty.crl", 100);
    ix = tls_revindex_build(b);
    assert_false(tls_revindex_contains(ix, id, one, 1, false));
    assert_int_equal(tls_revindex_check(ix, ca, ca, 100), TLS_REV_GOOD);
    assert_int_equal(tls_revindex_check(ix, ca, ca, 101), TLS_REV_STALE);
    assert_int_equal(tls_revindex_check(ix, ca, NULL, 101), TLS_REV_STALE);
    assert_false(tls_revindex_is_revoked(ix, ca, ca));
    tls_revindex_free(ix);
    tls_revindex_builder_free(NULL);
    tls_revindex_free(NULL);
    X509_free(ca);
    EVP_PKEY_free(k);
}

static double
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static long
rss_kb(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* One million random 16-byte serials, in random order (the slow path of
 * the build: a sort). Figures are printed, not asserted. */
static void
test_million(void **state)
{
    (void)state;
    enum { N = 1000000, PROBES = 1000000 };
    EVP_PKEY *k = NULL;
    X509 *ca = bare_ca("Million CA", &k);
    unsigned char *serials = xmalloc((size_t)N * 16);
    assert_int_equal(RAND_bytes(serials, N * 16), 1);
    long rss0 = rss_kb();
    double t0 = now_ns();
    struct tls_revindex_builder *b = tls_revindex_builder_new();
    size_t id = tls_revindex_builder_issuer(b, ca);
    for (size_t i = 0; i < N; i++)
        tls_revindex_builder_add(b, id, serials + 16 * i, 16, false);
    struct tls_revindex *ix = tls_revindex_build(b);
    double t1 = now_ns();
    long rss1 = rss_kb();
    assert_int_equal(tls_revindex_entries(ix), N);
    size_t hits = 0;
    double t2 = now_ns();
    for (size_t i = 0; i < PROBES; i++)
        hits += tls_revindex_contains(ix, id, serials + 16 * (i * 7919 % N), 16,
                                      false);
    double t3 = now_ns();
    /* random serials: absent (a 2^-128 chance each of being present) */
    assert_int_equal(RAND_bytes(serials, N * 16), 1);
    double t3b = now_ns();
    for (size_t i = 0; i < PROBES; i++)
        hits += tls_revindex_contains(ix, id, serials + 16 * (i * 7919 % N), 16,
                                      false);
    double t4 = now_ns();
    assert_int_equal(hits, PROBES);
    /* the handshake path: serial and issuer taken from X509 objects */
    double t5 = now_ns();
    for (size_t i = 0; i < PROBES / 10; i++)
        hits += tls_revindex_check(ix, ca, ca, 0) == TLS_REV_REVOKED;
    double t6 = now_ns();
    print_message("  revindex 1M: %zu bytes (%.1f MB), RSS +%ld kB, build "
                  "(unsorted input) %.0f ms\n",
                  tls_revindex_bytes(ix), tls_revindex_bytes(ix) / 1048576.0,
                  rss1 - rss0, (t1 - t0) / 1e6);
    print_message("  revindex 1M: lookup present %.0f ns, absent %.0f ns, "
                  "tls_revindex_check(X509) %.0f ns\n",
                  (t3 - t2) / PROBES, (t4 - t3b) / PROBES,
                  (t6 - t5) / (PROBES / 10));
    assert_true(tls_revindex_bytes(ix) < 64u * 1024 * 1024);
    tls_revindex_free(ix);
    free(serials);
    X509_free(ca);
    EVP_PKEY_free(k);
}

/* ---- certificates and CRLs ---------------------------------------- */

/* A certificate for key: a CA when ca, else a client leaf; self-signed
 * when issuer is NULL. serial: big-endian bytes (NULL: random). */
static X509 *
cert_new(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, bool ca,
         const unsigned char *serial, size_t slen)
{
    return testcert_new(&(struct testcert){cn, key, issuer, ikey, ca, false,
                                           -HOUR, 30L * 24 * HOUR, serial,
                                           slen});
}

static X509 *
bare_ca(const char *cn, EVP_PKEY **keyp)
{
    *keyp = testcert_key();
    return cert_new(cn, *keyp, NULL, NULL, true, NULL, 0);
}

enum crl_extra {
    CRL_PLAIN,
    CRL_DELTA,
    CRL_IDP,
    CRL_CRITICAL_UNKNOWN,
    CRL_ENTRY_CERT_ISSUER,
};

struct crl_spec {
    X509 *issuer;   /* whose name the CRL carries */
    EVP_PKEY *key;  /* what signs it */
    X509 **revoked; /* certificates listed */
    size_t n;
    long this_off; /* thisUpdate = now + this_off */
    long next_off; /* nextUpdate = now + next_off */
    enum crl_extra extra;
};

static void
crl_add_entry(X509_CRL *crl, X509 *x, ASN1_TIME *at, bool cert_issuer)
{
    X509_REVOKED *r = X509_REVOKED_new();
    X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(x));
    X509_REVOKED_set_revocationDate(r, at);
    if (cert_issuer) {
        GENERAL_NAMES *gens = GENERAL_NAMES_new();
        GENERAL_NAME *g = GENERAL_NAME_new();
        GENERAL_NAME_set0_value(g, GEN_DIRNAME,
                                X509_NAME_dup(X509_get_issuer_name(x)));
        sk_GENERAL_NAME_push(gens, g);
        X509_REVOKED_add1_ext_i2d(r, NID_certificate_issuer, gens, 1, 0);
        GENERAL_NAMES_free(gens);
    }
    X509_CRL_add0_revoked(crl, r);
}

static void
crl_add_extra(X509_CRL *crl, enum crl_extra extra)
{
    if (extra == CRL_DELTA) {
        ASN1_INTEGER *base = ASN1_INTEGER_new();
        ASN1_INTEGER_set(base, 1);
        X509_CRL_add1_ext_i2d(crl, NID_delta_crl, base, 1, 0);
        ASN1_INTEGER_free(base);
    } else if (extra == CRL_IDP) {
        ISSUING_DIST_POINT *idp = ISSUING_DIST_POINT_new();
        idp->onlyuser = 1;
        X509_CRL_add1_ext_i2d(crl, NID_issuing_distribution_point, idp, 1, 0);
        ISSUING_DIST_POINT_free(idp);
    } else if (extra == CRL_CRITICAL_UNKNOWN) {
        ASN1_OBJECT *o = OBJ_txt2obj("1.3.6.1.4.1.99999.1", 1);
        ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
        ASN1_OCTET_STRING_set(v, (const unsigned char *)"\x05\x00", 2);
        X509_EXTENSION *e = X509_EXTENSION_create_by_OBJ(NULL, o, 1, v);
        X509_CRL_add_ext(crl, e, -1);
        X509_EXTENSION_free(e);
        ASN1_OCTET_STRING_free(v);
        ASN1_OBJECT_free(o);
    }
}

static X509_CRL *
crl_new(const struct crl_spec *s)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *this = X509_time_adj_ex(NULL, 0, s->this_off, NULL);
    ASN1_TIME *next = X509_time_adj_ex(NULL, 0, s->next_off, NULL);
    X509_CRL_set_version(crl, X509_CRL_VERSION_2);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(s->issuer));
    X509_CRL_set1_lastUpdate(crl, this);
    X509_CRL_set1_nextUpdate(crl, next);
    for (size_t i = 0; i < s->n; i++)
        crl_add_entry(crl, s->revoked[i], this,
                      s->extra == CRL_ENTRY_CERT_ISSUER);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, s->issuer, NULL, NULL, crl, 0);
    X509_EXTENSION *aki = X509V3_EXT_conf_nid(
        NULL, &ctx, NID_authority_key_identifier, "keyid:always");
    X509_CRL_add_ext(crl, aki, -1);
    X509_EXTENSION_free(aki);
    crl_add_extra(crl, s->extra);
    X509_CRL_sort(crl);
    assert_true(X509_CRL_sign(crl, s->key, EVP_sha256()) > 0);
    ASN1_TIME_free(this);
    ASN1_TIME_free(next);
    return crl;
}

/* The test PKI: root -> inter -> carol; root -> alice, bob; other CA. */
struct pki {
    char *dir;
    EVP_PKEY *root_key, *inter_key, *other_key, *leaf_key;
    X509 *root, *inter, *other, *alice, *bob, *carol, *zeros, *wide;
    char *root_pem, *chain_pem; /* root.pem; inter.pem (untrusted) */
};

static char *
write_cert(struct pki *p, const char *name, X509 *x)
{
    char *path = xasprintf("%s/%s.pem", p->dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    PEM_write_X509(f, x);
    fclose(f);
    return path;
}

static int
pki_setup(void **state)
{
    struct pki *p = xcalloc(1, sizeof(*p));
    p->dir = xstrdup("/tmp/cg-test-revoke-XXXXXX");
    assert_non_null(mkdtemp(p->dir));
    p->root_key = testcert_key();
    p->inter_key = testcert_key();
    p->other_key = testcert_key();
    p->leaf_key = testcert_key();
    p->root = cert_new("Rev Root", p->root_key, NULL, NULL, true, NULL, 0);
    p->inter = cert_new("Rev Inter", p->inter_key, p->root, p->root_key, true,
                        NULL, 0);
    p->other = cert_new("Rev Other", p->other_key, NULL, NULL, true, NULL, 0);
    p->alice =
        cert_new("alice", p->leaf_key, p->root, p->root_key, false, NULL, 0);
    p->bob = cert_new("bob", p->leaf_key, p->root, p->root_key, false, NULL, 0);
    p->carol =
        cert_new("carol", p->leaf_key, p->inter, p->inter_key, false, NULL, 0);
    static const unsigned char z[] = {0x00, 0x00, 0x00, 0x42};
    unsigned char w[20];
    memset(w, 0x7e, sizeof(w));
    p->zeros = cert_new("zeros", p->leaf_key, p->root, p->root_key, false, z,
                        sizeof(z));
    p->wide = cert_new("wide", p->leaf_key, p->root, p->root_key, false, w,
                       sizeof(w));
    p->root_pem = write_cert(p, "root", p->root);
    p->chain_pem = write_cert(p, "inter", p->inter);
    *state = p;
    return 0;
}

static int
pki_teardown(void **state)
{
    struct pki *p = *state;
    char *cmd = xasprintf("rm -rf '%s'", p->dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    EVP_PKEY *keys[] = {p->root_key, p->inter_key, p->other_key, p->leaf_key};
    X509 *certs[] = {p->root, p->inter, p->other, p->alice,
                     p->bob,  p->carol, p->zeros, p->wide};
    for (size_t i = 0; i < CG_ARRAY_LEN(keys); i++)
        EVP_PKEY_free(keys[i]);
    for (size_t i = 0; i < CG_ARRAY_LEN(certs); i++)
        X509_free(certs[i]);
    free(p->root_pem);
    free(p->chain_pem);
    free(p->dir);
    free(p);
    return 0;
}

/* Writes crl to DIR/name (PEM, or DER when der). Returns the owned path. */
static char *
write_crl(struct pki *p, const char *name, X509_CRL *crl, bool der)
{
    char *path = xasprintf("%s/%s", p->dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(der ? i2d_X509_CRL_fp(f, crl) : PEM_write_X509_CRL(f, crl),
                     1);
    fclose(f);
    X509_CRL_free(crl);
    return path;
}

static char *
make_crl(struct pki *p, const char *name, const struct crl_spec *s)
{
    return write_crl(p, name, crl_new(s), false);
}

/* Builds trust "staff" = root (+ extra CA files) with crl files. */
static int
trust_with(struct pki *p, const char *const *crls, size_t n, bool reject,
           int64_t grace_ms, struct tls_trust **t, char *err)
{
    struct cg_trust_cfg tc = {
        .name = "staff", .stale_reject = reject, .stale_grace_ms = grace_ms};
    cg_strlist_add(&tc.ca_files, p->root_pem);
    cg_strlist_add(&tc.ca_files, p->chain_pem);
    for (size_t i = 0; i < n; i++)
        cg_strlist_add(&tc.crl_files, crls[i]);
    err[0] = '\0';
    int rc = tls_trust_new(&tc, p->dir, t, err);
    cg_strlist_clear(&tc.ca_files);
    cg_strlist_clear(&tc.crl_files);
    return rc;
}

/* The verdict reason for x ("ok" when accepted). */
static const char *
verdict(struct pki *p, struct tls_trust *t, X509 *x)
{
    char *path = write_cert(p, "leaf", x), err[CG_ERR_LEN];
    struct tls_verify_params vp = {TLS_PURPOSE_CLIENT, 4, 0, NULL};
    struct cg_verdict v;
    struct cg_identity *id = NULL;
    assert_int_equal(tls_verify_files(t, path, p->chain_pem, &vp, &v, &id, err),
                     0);
    ident_free(id);
    free(path);
    return v.status == CG_VERIFY_SUCCESS ? "ok" : v.reason;
}

static void
test_revoked_leaf(void **state)
{
    struct pki *p = *state;
    X509 *revoked[] = {p->alice, p->zeros, p->wide};
    struct crl_spec s = {p->root, p->root_key, revoked,  3,
                         -HOUR,   24 * HOUR,   CRL_PLAIN};
    char *crl = make_crl(p, "root.crl", &s), err[CG_ERR_LEN];
    struct tls_trust *t = NULL;
    const char *crls[] = {crl};
    assert_int_equal(trust_with(p, crls, 1, true, 0, &t, err), 0);
    assert_string_equal(verdict(p, t, p->alice), "revoked");
    assert_string_equal(verdict(p, t, p->zeros), "revoked");
    assert_string_equal(verdict(p, t, p->wide), "revoked");
    assert_string_equal(verdict(p, t, p->bob), "ok");
    assert_string_equal(verdict(p, t, p->carol), "ok");
    assert_int_equal(tls_revindex_entries(t->rev), 3);
    assert_true(tls_revindex_is_revoked(t->rev, p->alice, p->root));
    assert_true(tls_revindex_is_revoked(t->rev, p->alice, NULL));
    assert_false(tls_revindex_is_revoked(t->rev, p->bob, NULL));
    /* a resumed session: the leaf alone */
    int depth = -1;
    assert_string_equal(
        tls_trust_check_revoked(t, NULL, p->alice, time(NULL), &depth),
        "revoked");
    assert_int_equal(depth, 0);
    assert_null(tls_trust_check_revoked(t, NULL, p->bob, time(NULL), &depth));
    /* another CA with the root's name but another key is not its issuer */
    EVP_PKEY *k = testcert_key();
    X509 *fake = cert_new("Rev Root", k, NULL, NULL, true, NULL, 0);
    assert_false(tls_revindex_is_revoked(t->rev, p->alice, fake));
    X509_free(fake);
    EVP_PKEY_free(k);
    tls_trust_free(t);
    free(crl);
}

static void
test_revoked_intermediate(void **state)
{
    struct pki *p = *state;
    X509 *revoked[] = {p->inter};
    struct crl_spec s = {p->root, p->root_key, revoked,  1,
                         -HOUR,   24 * HOUR,   CRL_PLAIN};
    /* DER this time, and inter's own (empty) CRL beside it */
    char *crl = write_crl(p, "root.der", crl_new(&s), true);
    struct crl_spec e = {p->inter, p->inter_key, NULL,     0,
                         -HOUR,    24 * HOUR,    CRL_PLAIN};
    char *empty = make_crl(p, "inter.crl", &e), err[CG_ERR_LEN];
    struct tls_trust *t = NULL;
    const char *crls[] = {crl, empty};
    assert_int_equal(trust_with(p, crls, 2, true, 0, &t, err), 0);
    assert_string_equal(verdict(p, t, p->carol), "revoked");
    assert_string_equal(verdict(p, t, p->alice), "ok");
    tls_trust_free(t);
    free(crl);
    free(empty);
}

/* A directory of CRLs: .crl, .pem, .der files taken, others ignored. */
static void
test_directory(void **state)
{
    struct pki *p = *state;
    char *dir = xasprintf("%s/crls", p->dir), err[CG_ERR_LEN];
    assert_int_equal(mkdir(dir, 0700), 0);
    X509 *r1[] = {p->alice}, *r2[] = {p->carol};
    struct crl_spec s1 = {p->root, p->root_key, r1, 1, -HOUR, HOUR, 0};
    struct crl_spec s2 = {p->inter, p->inter_key, r2, 1, -HOUR, HOUR, 0};
    free(make_crl(p, "crls/a.pem", &s1));
    free(write_crl(p, "crls/b.der", crl_new(&s2), true));
    char *junk = xasprintf("%s/README", dir);
    FILE *f = fopen(junk, "w");
    fputs("not a CRL\n", f);
    fclose(f);
    struct tls_trust *t = NULL;
    const char *crls[] = {dir};
    assert_int_equal(trust_with(p, crls, 1, true, 0, &t, err), 0);
    assert_string_equal(verdict(p, t, p->alice), "revoked");
    assert_string_equal(verdict(p, t, p->carol), "revoked");
    assert_string_equal(verdict(p, t, p->bob), "ok");
    tls_trust_free(t);
    /* an empty directory is a mistake */
    char *none = xasprintf("%s/none", p->dir);
    assert_int_equal(mkdir(none, 0700), 0);
    crls[0] = none;
    assert_int_equal(trust_with(p, crls, 1, true, 0, &t, err), CG_ECONFIG);
    char *want = xasprintf("trust.staff.crl_files[0]: %s: no *.crl, *.pem or "
                           "*.der file in this directory",
                           none);
    assert_string_equal(err, want);
    free(want);
    free(none);
    free(junk);
    free(dir);
}

/* Loads crl and expects the refusal why (after the path prefix). */
static void
expect_refused(struct pki *p, const char *crl, const char *why)
{
    struct tls_trust *t = NULL;
    char err[CG_ERR_LEN];
    const char *crls[] = {crl};
    assert_int_equal(trust_with(p, crls, 1, true, 0, &t, err), CG_ECONFIG);
    assert_null(t);
    char *want = xasprintf("trust.staff.crl_files[0]: %s: %s", crl, why);
    if (strcmp(err, want) != 0)
        print_message("  want: %s\n  got:  %s\n", want, err);
    assert_string_equal(err, want);
    free(want);
}

static void
test_refusals(void **state)
{
    struct pki *p = *state;
    X509 *rv[] = {p->alice};
    struct crl_spec s = {p->root, p->other_key, rv, 1, -HOUR, HOUR, 0};
    char *path = make_crl(p, "wrong-signer.crl", &s);
    expect_refused(p, path,
                   "signature does not verify with the key of "
                   "\"CN=Rev Root\" (signed by another key)");
    free(path);
    s = (struct crl_spec){p->other, p->other_key, rv, 1, -HOUR, HOUR, 0};
    path = make_crl(p, "other.crl", &s);
    expect_refused(p, path,
                   "issuer \"CN=Rev Other\" is not a CA "
                   "certificate of trust set \"staff\"");
    free(path);
    s = (struct crl_spec){p->root, p->root_key, rv, 1, HOUR, 2 * HOUR, 0};
    path = make_crl(p, "future.crl", &s);
    struct tls_trust *t = NULL;
    char err[CG_ERR_LEN];
    const char *crls[] = {path};
    assert_int_equal(trust_with(p, crls, 1, true, 0, &t, err), CG_ECONFIG);
    assert_non_null(strstr(err, "future.crl: thisUpdate "));
    assert_non_null(strstr(err, " is in the future"));
    free(path);
    static const struct {
        enum crl_extra extra;
        const char *why;
    } exts[] = {
        {CRL_DELTA, "delta CRLs are not supported (deltaCRLIndicator)"},
        {CRL_IDP, "partitioned and indirect CRLs are not supported "
                  "(issuingDistributionPoint)"},
        {CRL_CRITICAL_UNKNOWN,
         "unsupported critical extension 1.3.6.1.4.1.99999.1"},
        {CRL_ENTRY_CERT_ISSUER, "indirect CRLs are not supported (entry 0 "
                                "has certificateIssuer)"},
    };
    for (size_t i = 0; i < CG_ARRAY_LEN(exts); i++) {
        s = (struct crl_spec){p->root, p->root_key, rv,           1,
                              -HOUR,   HOUR,        exts[i].extra};
        path = make_crl(p, "ext.crl", &s);
        expect_refused(p, path, exts[i].why);
        free(path);
    }
}

/* Writes raw bytes to DIR/name; returns the owned path. */
static char *
write_raw(struct pki *p, const char *name, const void *data, size_t len)
{
    char *path = xasprintf("%s/%s", p->dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    return path;
}

static void
test_malformed(void **state)
{
    struct pki *p = *state;
    X509 *rv[] = {p->alice};
    struct crl_spec s = {p->root, p->root_key, rv, 1, -HOUR, HOUR, 0};
    X509_CRL *crl = crl_new(&s);
    unsigned char *der = NULL;
    int len = i2d_X509_CRL(crl, &der);
    X509_CRL_free(crl);
    assert_true(len > 40);
    char *path = write_raw(p, "trunc.der", der, (size_t)len - 5);
    expect_refused(p, path,
                   "malformed CRL (not a DER CertificateList, or signature "
                   "algorithms differ)");
    free(path);
    der[len - 3] ^= 0x01; /* inside the signature */
    path = write_raw(p, "badsig.der", der, (size_t)len);
    expect_refused(p, path,
                   "signature does not verify with the key of "
                   "\"CN=Rev Root\" (signed by another key)");
    free(path);
    OPENSSL_free(der);
    path = write_raw(p, "garbage.crl", "hello\n", 6);
    expect_refused(p, path, "no CRL found");
    free(path);
    path = write_raw(p, "empty.crl", "", 0);
    expect_refused(p, path, "empty file");
    free(path);
    path = write_cert(p, "a-cert", p->alice);
    expect_refused(p, path, "not a CRL (PEM \"CERTIFICATE\")");
    free(path);
    path = xasprintf("%s/missing.crl", p->dir);
    expect_refused(p, path, "cannot read (No such file or directory)");
    free(path);
}

static void
test_stale(void **state)
{
    struct pki *p = *state;
    X509 *rv[] = {p->alice};
    struct crl_spec s = {p->root, p->root_key, rv, 1, -3 * HOUR, -HOUR, 0};
    char *path = make_crl(p, "stale.crl", &s), err[CG_ERR_LEN];
    const char *crls[] = {path};
    struct tls_trust *t = NULL;
    /* reject: loads (logged), refuses what the root issued */
    assert_int_equal(trust_with(p, crls, 1, true, 0, &t, err), 0);
    assert_string_equal(verdict(p, t, p->bob), "stale_crl");
    assert_string_equal(verdict(p, t, p->alice), "revoked");
    assert_string_equal(verdict(p, t, p->carol), "stale_crl"); /* inter */
    int depth;
    assert_string_equal(
        tls_trust_check_revoked(t, NULL, p->bob, time(NULL), &depth),
        "stale_crl");
    tls_trust_free(t);
    /* grace of 2 h: still used */
    assert_int_equal(trust_with(p, crls, 1, false, 2 * HOUR * 1000, &t, err),
                     0);
    assert_string_equal(verdict(p, t, p->bob), "ok");
    assert_string_equal(verdict(p, t, p->alice), "revoked");
    tls_trust_free(t);
    /* grace of 30 min: over */
    assert_int_equal(trust_with(p, crls, 1, false, HOUR / 2 * 1000, &t, err),
                     0);
    assert_string_equal(verdict(p, t, p->bob), "stale_crl");
    tls_trust_free(t);
    free(path);
}

static void
test_two_crls_one_issuer(void **state)
{
    struct pki *p = *state;
    struct crl_spec s = {p->root, p->root_key, NULL, 0, -HOUR, HOUR, 0};
    char *a = make_crl(p, "a.crl", &s), *b = make_crl(p, "b.crl", &s);
    const char *crls[] = {a, b};
    struct tls_trust *t = NULL;
    char err[CG_ERR_LEN];
    assert_int_equal(trust_with(p, crls, 2, true, 0, &t, err), CG_ECONFIG);
    char *want = xasprintf("trust.staff.crl_files[1]: %s: \"CN=Rev Root\" "
                           "already has its revocations from %s",
                           b, a);
    assert_string_equal(err, want);
    free(want);
    free(a);
    free(b);
}

/* An RSA CA: the signature path is not tied to ECDSA. */
static void
test_rsa_issuer(void **state)
{
    struct pki *p = *state;
    EVP_PKEY *rk = EVP_RSA_gen(2048);
    assert_non_null(rk);
    X509 *rca = cert_new("RSA CA", rk, NULL, NULL, true, NULL, 0);
    X509 *leaf = cert_new("dan", p->leaf_key, rca, rk, false, NULL, 0);
    X509 *rv[] = {leaf};
    struct crl_spec s = {rca, rk, rv, 1, -HOUR, HOUR, 0};
    char *crl = make_crl(p, "rsa.crl", &s), *ca = write_cert(p, "rsa", rca);
    struct cg_trust_cfg tc = {.name = "rsa", .stale_reject = true};
    cg_strlist_add(&tc.ca_files, ca);
    cg_strlist_add(&tc.crl_files, crl);
    struct tls_trust *t = NULL;
    char err[CG_ERR_LEN];
    assert_int_equal(tls_trust_new(&tc, p->dir, &t, err), 0);
    assert_true(tls_revindex_is_revoked(t->rev, leaf, rca));
    tls_trust_free(t);
    cg_strlist_clear(&tc.ca_files);
    cg_strlist_clear(&tc.crl_files);
    free(crl);
    free(ca);
    X509_free(leaf);
    X509_free(rca);
    EVP_PKEY_free(rk);
}

/* ---- a million-entry CRL file, written as DER here ---------------- */

/* Appends a DER header for (tag, len) at *w. */
static void
put_hdr(unsigned char **w, int cons, int tag, size_t len)
{
    ASN1_put_object(w, cons, (int)len, tag, V_ASN1_UNIVERSAL);
}

/* TBSCertList of n 16-byte serials (random, unsorted) signed by root. */
static unsigned char *
big_crl(struct pki *p, size_t n, size_t *out_len)
{
    static const unsigned char alg[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                        0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
    static const char when[] = "250101000000Z";
    unsigned char *name = NULL;
    int nlen = i2d_X509_NAME(X509_get_subject_name(p->root), &name);
    size_t entry = 2 + (2 + 17) + (2 + 13), list = n * entry;
    size_t list_hdr = (size_t)ASN1_object_size(1, (int)list, 16) - list;
    size_t body = 3 + sizeof(alg) + (size_t)nlen + 2 * 15 + list_hdr + list;
    size_t tbs = (size_t)ASN1_object_size(1, (int)body, 16);
    unsigned char *buf = xmalloc(tbs + 200), *w = buf;
    put_hdr(&w, 1, V_ASN1_SEQUENCE, body);
    memcpy(w, "\x02\x01\x01", 3);
    memcpy(w + 3, alg, sizeof(alg));
    w += 3 + sizeof(alg);
    memcpy(w, name, (size_t)nlen);
    w += nlen;
    for (int i = 0; i < 2; i++) {
        put_hdr(&w, 0, V_ASN1_UTCTIME, 13);
        memcpy(w, i == 0 ? "240101000000Z" : "491231000000Z", 13);
        w += 13;
    }
    put_hdr(&w, 1, V_ASN1_SEQUENCE, list);
    for (size_t i = 0; i < n; i++) {
        put_hdr(&w, 1, V_ASN1_SEQUENCE, entry - 2);
        put_hdr(&w, 0, V_ASN1_INTEGER, 17);
        *w = 0;
        assert_int_equal(RAND_bytes(w + 1, 16), 1);
        w[1] |= 0x80; /* so that the leading zero byte is DER */
        w += 17;
        put_hdr(&w, 0, V_ASN1_UTCTIME, 13);
        memcpy(w, when, 13);
        w += 13;
    }
    assert_int_equal((size_t)(w - buf), tbs);
    OPENSSL_free(name);
    *out_len = tbs;
    return buf;
}

/* Signs tbs with the root key into a whole CertificateList. */
static unsigned char *
sign_crl(struct pki *p, unsigned char *tbs, size_t tbs_len, size_t *out_len)
{
    static const unsigned char alg[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                        0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
    unsigned char sig[128];
    size_t slen = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(
        EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, p->root_key), 1);
    assert_int_equal(EVP_DigestSign(md, sig, &slen, tbs, tbs_len), 1);
    EVP_MD_CTX_free(md);
    size_t body = tbs_len + sizeof(alg) + 2 + 1 + slen;
    size_t total = (size_t)ASN1_object_size(1, (int)body, 16);
    unsigned char *out = xmalloc(total), *w = out;
    put_hdr(&w, 1, V_ASN1_SEQUENCE, body);
    memcpy(w, tbs, tbs_len);
    memcpy(w + tbs_len, alg, sizeof(alg));
    w += tbs_len + sizeof(alg);
    put_hdr(&w, 0, V_ASN1_BIT_STRING, slen + 1);
    *w++ = 0;
    memcpy(w, sig, slen);
    *out_len = total;
    return out;
}

static void
test_million_crl(void **state)
{
    struct pki *p = *state;
    size_t tbs_len, len;
    unsigned char *tbs = big_crl(p, 1000000, &tbs_len);
    unsigned char *der = sign_crl(p, tbs, tbs_len, &len);
    free(tbs);
    char *path = write_raw(p, "million.der", der, len), err[CG_ERR_LEN];
    free(der);
    const char *crls[] = {path};
    struct tls_trust *t = NULL;
    long rss0 = rss_kb();
    double t0 = now_ns();
    assert_int_equal(trust_with(p, crls, 1, true, 0, &t, err), 0);
    double t1 = now_ns();
    print_message("  1M-entry CRL (%zu bytes DER): loaded, verified and "
                  "indexed in %.0f ms; index %zu bytes, RSS +%ld kB\n",
                  len, (t1 - t0) / 1e6, tls_revindex_bytes(t->rev),
                  rss_kb() - rss0);
    assert_true(tls_revindex_entries(t->rev) > 999000); /* random dups */
    assert_string_equal(verdict(p, t, p->bob), "ok");
    tls_trust_free(t);
    free(path);
}

/* ---- the built-in CA ---------------------------------------------- */

static void builtin_and_crl(struct pki *p, struct store *s, const char *data,
                            const struct ca_init_result *ir);

static void
test_builtin_ca(void **state)
{
    struct pki *p = *state;
    char err[CG_ERR_LEN], *data = xasprintf("%s/data", p->dir);
    struct cg_trust_cfg tc = {
        .name = "devices", .builtin_ca = true, .stale_reject = true};
    struct tls_trust *t = NULL;
    assert_int_equal(tls_trust_new(&tc, data, &t, err), CG_ECONFIG);
    char *want = xasprintf("trust.devices.builtin_ca: no CA in %s: run "
                           "certgate ca init",
                           data);
    assert_string_equal(err, want);
    free(want);
    struct store *s = NULL;
    struct ca_init_params ip = {
        .name = "Unit", .key = CA_KEY_EC_P256, .intermediate = true};
    struct ca_init_result ir = {0};
    struct ca_issue_params ipar = {.profile = CA_PROFILE_CLIENT,
                                   .out_dir = data};
    struct ca_issue_result r1 = {0}, r2 = {0};
    assert_int_equal(store_open(data, &s, err), 0);
    /* a store without a CA */
    assert_int_equal(tls_trust_new(&tc, data, &t, err), CG_ECONFIG);
    assert_int_equal(ca_init(s, data, &ip, &ir, err), 0);
    ipar.cn = "dev1";
    assert_int_equal(ca_issue(s, data, &ipar, &r1, err), 0);
    ipar.cn = "dev2";
    assert_int_equal(ca_issue(s, data, &ipar, &r2, err), 0);
    assert_int_equal(store_cert_revoke(s, r1.serial, NULL, 0, err), 0);
    assert_int_equal(tls_trust_new(&tc, data, &t, err), 0);
    assert_int_equal(t->n_cas, 2); /* issuing CA + root */
    assert_int_equal(tls_revindex_entries(t->rev), 1);
    struct tls_verify_params vp = {TLS_PURPOSE_CLIENT, 4, 0, NULL};
    struct cg_verdict v;
    struct cg_identity *id = NULL;
    assert_int_equal(
        tls_verify_files(t, r1.cert_path, r1.chain_path, &vp, &v, &id, err), 0);
    assert_string_equal(v.reason, "revoked");
    ident_free(id);
    assert_int_equal(
        tls_verify_files(t, r2.cert_path, r2.chain_path, &vp, &v, &id, err), 0);
    assert_int_equal(v.status, CG_VERIFY_SUCCESS);
    ident_free(id);
    tls_trust_free(t);
    builtin_and_crl(p, s, data, &ir);
    ca_issue_result_cleanup(&r1);
    ca_issue_result_cleanup(&r2);
    ca_init_result_cleanup(&ir);
    store_close(s);
    free(data);
}

/* The built-in CA's own CRL file: refused beside builtin_ca (one source
 * per issuer), loaded with the CA in ca_files instead. */
static void
builtin_and_crl(struct pki *p, struct store *s, const char *data,
                const struct ca_init_result *ir)
{
    struct cg_trust_cfg tc = {
        .name = "devices", .builtin_ca = true, .stale_reject = true};
    struct tls_trust *t = NULL;
    char err[CG_ERR_LEN], *pem = NULL;
    int64_t number;
    assert_int_equal(
        ca_crl_make(s, data, NULL, 7, time(NULL), &pem, &number, err), 0);
    char *crl = write_raw(p, "builtin.crl", pem, strlen(pem));
    cg_strlist_add(&tc.crl_files, crl);
    assert_int_equal(tls_trust_new(&tc, data, &t, err), CG_ECONFIG);
    assert_non_null(strstr(err, "already has its revocations from builtin "
                                "CA"));
    /* with the CA in ca_files instead, certgate's own CRL loads */
    tc.builtin_ca = false;
    cg_strlist_add(&tc.ca_files, ir->root_cert);
    cg_strlist_add(&tc.ca_files, ir->issuer_cert);
    assert_int_equal(tls_trust_new(&tc, data, &t, err), 0);
    assert_int_equal(tls_revindex_entries(t->rev), 1);
    tls_trust_free(t);
    cg_strlist_clear(&tc.ca_files);
    cg_strlist_clear(&tc.crl_files);
    free(crl);
    free(pem);
}

int
main(void)
{
    cg_log_setup(CG_LOG_ERROR, 2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serial_forms),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_million),
        cmocka_unit_test(test_revoked_leaf),
        cmocka_unit_test(test_revoked_intermediate),
        cmocka_unit_test(test_directory),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_stale),
        cmocka_unit_test(test_two_crls_one_issuer),
        cmocka_unit_test(test_rsa_issuer),
        cmocka_unit_test(test_million_crl),
        cmocka_unit_test(test_builtin_ca),
    };
    return cmocka_run_group_tests(tests, pki_setup, pki_teardown);
}
