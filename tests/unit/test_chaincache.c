/*
 * Unit tests of the verified-chain cache (src/tls/chaincache.c) through
 * the one verification function, as the handshake calls it: a hit skips
 * chain building but never the checks that depend on the moment or on
 * the trust set. A chain verified under one trust set is refused under
 * another (CA switch, reload); a certificate revoked after it was cached
 * is refused; validity dates are checked at the verification time on a
 * hit (leaf and intermediate); certgate's leaf checks run on a hit; a
 * certificate whose bytes differ from a cached one (tampered signature)
 * misses and is refused; a hit shares the leaf identity; the key is the
 * chain's bytes, whether its objects are the parse cache's or not. Certificates
 * are made here with OpenSSL.
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
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "core/xmalloc.h"
#include "tls/revoke.h"
#include "tls/tls.h"
#include "tls/tls_int.h"

#define HOUR 3600L

struct pki {
    char *dir;
    EVP_PKEY *root_key, *inter_key, *other_key, *leaf_key;
    X509 *root, *inter, *other;
    X509 *alice;     /* root -> alice, valid now -1h .. +1h */
    X509 *carol;     /* root -> inter -> carol; inter valid -1h .. +2h */
    X509 *ca_leaf;   /* root -> ca_leaf with CA:TRUE */
    X509 *tampered;  /* alice with one signature bit flipped */
    char *root_pem;  /* root and inter */
    char *other_pem; /* other only */
    int64_t now;
};

/* A certificate valid from now + nb to now + na (seconds): a CA when ca
 * (or a client leaf with basicConstraints CA:TRUE when leaf_ca); self-
 * signed when issuer is NULL. */
static X509 *
cert_new(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, bool ca,
         bool leaf_ca, long nb, long na)
{
    return testcert_new(&(struct testcert){cn, key, issuer, ikey, ca, leaf_ca,
                                           nb, na, NULL, 0});
}

/* x with one bit of its signature value flipped (still parses). */
static X509 *
tamper(X509 *x)
{
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    assert_true(len > 10);
    der[len - 3] ^= 0x01;
    const unsigned char *p = der;
    X509 *t = d2i_X509(NULL, &p, len);
    assert_non_null(t);
    OPENSSL_free(der);
    return t;
}

static char *
write_certs(struct pki *p, const char *name, X509 *a, X509 *b)
{
    char *path = xasprintf("%s/%s.pem", p->dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    PEM_write_X509(f, a);
    if (b != NULL)
        PEM_write_X509(f, b);
    fclose(f);
    return path;
}

static int
pki_setup(void **state)
{
    struct pki *p = xcalloc(1, sizeof(*p));
    p->dir = xstrdup("/tmp/cg-test-chaincache-XXXXXX");
    assert_non_null(mkdtemp(p->dir));
    p->now = (int64_t)time(NULL);
    p->root_key = testcert_key();
    p->inter_key = testcert_key();
    p->other_key = testcert_key();
    p->leaf_key = testcert_key();
    long year = 365L * 24 * HOUR;
    p->root =
        cert_new("CC Root", p->root_key, NULL, NULL, true, false, -year, year);
    p->inter = cert_new("CC Inter", p->inter_key, p->root, p->root_key, true,
                        false, -HOUR, 2 * HOUR);
    p->other = cert_new("CC Other", p->other_key, NULL, NULL, true, false,
                        -year, year);
    p->alice = cert_new("alice", p->leaf_key, p->root, p->root_key, false,
                        false, -HOUR, HOUR);
    p->carol = cert_new("carol", p->leaf_key, p->inter, p->inter_key, false,
                        false, -HOUR, 24 * HOUR);
    p->ca_leaf = cert_new("ca-leaf", p->leaf_key, p->root, p->root_key, false,
                          true, -HOUR, 24 * HOUR);
    p->tampered = tamper(p->alice);
    p->root_pem = write_certs(p, "root", p->root, p->inter);
    p->other_pem = write_certs(p, "other", p->other, NULL);
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
    X509 *certs[] = {p->root,  p->inter,   p->other,   p->alice,
                     p->carol, p->ca_leaf, p->tampered};
    for (size_t i = 0; i < CG_ARRAY_LEN(keys); i++)
        EVP_PKEY_free(keys[i]);
    for (size_t i = 0; i < CG_ARRAY_LEN(certs); i++)
        X509_free(certs[i]);
    free(p->root_pem);
    free(p->other_pem);
    free(p->dir);
    free(p);
    return 0;
}

/* A trust set of the CA file ca_pem (a new generation each call). */
static struct tls_trust *
trust_of(const char *ca_pem)
{
    struct cg_trust_cfg tc = {.name = "staff"};
    char err[CG_ERR_LEN];
    struct tls_trust *t = NULL;
    cg_strlist_add(&tc.ca_files, ca_pem);
    assert_int_equal(tls_trust_new(&tc, "/nonexistent", &t, err), 0);
    cg_strlist_clear(&tc.ca_files);
    return t;
}

/* Verifies leaf (presented as the handshake does: leaf, then the chain
 * presented, here only leaf) at time at (0: now) with cache cc. Returns
 * "ok" or the reason; *chain_len gets the verified chain's length. */
static const char *
check(struct tls_trust *t, struct tls_chaincache *cc, X509 *leaf, int64_t at,
      int *chain_len)
{
    STACK_OF(X509) *presented = sk_X509_new_null();
    sk_X509_push(presented, leaf);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_int_equal(X509_STORE_CTX_init(ctx, t->store, leaf, presented), 1);
    X509_STORE_CTX_set_default(ctx, "ssl_client");
    X509_VERIFY_PARAM_set_depth(X509_STORE_CTX_get0_param(ctx), 4);
    if (at != 0)
        X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), (time_t)at);
    struct cg_verdict v;
    struct cg_identity *id = NULL;
    int ok = tls_verify_store_ctx(ctx, TLS_PURPOSE_CLIENT, cc, &v, &id);
    assert_int_equal(ok, v.status == CG_VERIFY_SUCCESS);
    if (chain_len != NULL) {
        STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
        *chain_len = chain != NULL ? sk_X509_num(chain) : 0;
    }
    ident_free(id);
    X509_STORE_CTX_free(ctx);
    sk_X509_free(presented);
    ERR_clear_error();
    return v.status == CG_VERIFY_SUCCESS ? "ok" : v.reason;
}

static struct tls_chaincache_stats
stats(struct tls_chaincache *cc)
{
    struct tls_chaincache_stats s;
    tls_chaincache_stats(cc, &s);
    return s;
}

static void
test_hit_same_chain(void **state)
{
    struct pki *p = *state;
    struct tls_trust *t = trust_of(p->root_pem);
    struct tls_chaincache *cc = tls_chaincache_new();
    int len = 0;
    assert_string_equal(check(t, cc, p->alice, 0, &len), "ok");
    assert_int_equal(len, 2);
    assert_int_equal(stats(cc).inserts, 1);
    assert_int_equal(stats(cc).hits, 0);
    len = 0;
    assert_string_equal(check(t, cc, p->alice, 0, &len), "ok");
    assert_int_equal(stats(cc).hits, 1);
    assert_int_equal(len, 2); /* the cached chain is handed to OpenSSL */
    /* a chain with an intermediate, presented as leaf only */
    assert_string_equal(check(t, cc, p->carol, 0, &len), "ok");
    assert_int_equal(len, 3);
    assert_string_equal(check(t, cc, p->carol, 0, &len), "ok");
    assert_int_equal(len, 3);
    assert_int_equal(stats(cc).hits, 2);
    tls_chaincache_free(cc);
    tls_trust_free(t);
}

/* The leaf as libssl gets it during a handshake: parsed into an object of
 * its own through the parse cache (armed), which hands out one object per
 * DER and knows its SHA-256. */
static X509 *
parsed_in_handshake(X509 *x)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    assert_true(n > 0);
    X509 *out = X509_new();
    const unsigned char *q = der;
    tls_parsecache_arm(true);
    X509 *r = d2i_X509(&out, &q, n);
    tls_parsecache_arm(false);
    assert_non_null(r);
    OPENSSL_free(der);
    return r;
}

/* The key is the chain's bytes, not its objects: a chain verified with
 * certificates parsed anywhere hits with the parse cache's objects for the
 * same bytes, and the other way round. */
static void
test_key_of_bytes(void **state)
{
    struct pki *p = *state;
    struct tls_trust *t = trust_of(p->root_pem);
    struct tls_chaincache *cc = tls_chaincache_new();
    tls_parsecache_thread_free();
    assert_string_equal(check(t, cc, p->alice, 0, NULL), "ok");
    X509 *a = parsed_in_handshake(p->alice);
    unsigned char d[32];
    assert_true(tls_parsecache_sha256(a, d));
    assert_string_equal(check(t, cc, a, 0, NULL), "ok");
    assert_int_equal(stats(cc).hits, 1);
    X509 *c = parsed_in_handshake(p->carol);
    assert_string_equal(check(t, cc, c, 0, NULL), "ok");
    assert_int_equal(stats(cc).inserts, 2);
    assert_string_equal(check(t, cc, p->carol, 0, NULL), "ok");
    assert_int_equal(stats(cc).hits, 2);
    X509_free(a);
    X509_free(c);
    tls_parsecache_thread_free();
    tls_chaincache_free(cc);
    tls_trust_free(t);
}

/* The CA set changes (client-CA switch, reload): a new trust set, a new
 * generation: what was verified under the old one is not reused. */
static void
test_trust_switch(void **state)
{
    struct pki *p = *state;
    struct tls_trust *t1 = trust_of(p->root_pem);
    struct tls_trust *t2 = trust_of(p->other_pem);
    struct tls_chaincache *cc = tls_chaincache_new();
    assert_string_equal(check(t1, cc, p->alice, 0, NULL), "ok");
    assert_string_equal(check(t1, cc, p->alice, 0, NULL), "ok");
    assert_int_equal(stats(cc).hits, 1);
    assert_true(t2->gen != t1->gen);
    assert_string_equal(check(t2, cc, p->alice, 0, NULL), "untrusted");
    assert_string_equal(check(t2, cc, p->alice, 0, NULL), "untrusted");
    assert_int_equal(stats(cc).hits, 1);
    /* the same CA file loaded again (a reload): verified afresh */
    struct tls_trust *t3 = trust_of(p->root_pem);
    assert_string_equal(check(t3, cc, p->alice, 0, NULL), "ok");
    assert_int_equal(stats(cc).hits, 1);
    assert_int_equal(stats(cc).inserts, 2);
    tls_chaincache_free(cc);
    tls_trust_free(t1);
    tls_trust_free(t2);
    tls_trust_free(t3);
}

/* A revocation index listing x under issuer. */
static struct tls_revindex *
index_revoking(X509 *issuer, X509 *x)
{
    struct tls_revindex_builder *b = tls_revindex_builder_new();
    size_t id = tls_revindex_builder_issuer(b, issuer);
    const ASN1_INTEGER *s = X509_get0_serialNumber(x);
    assert_int_equal(tls_revindex_builder_add(b, id, ASN1_STRING_get0_data(s),
                                              (size_t)ASN1_STRING_length(s),
                                              false),
                     0);
    return tls_revindex_build(b);
}

/* Revocation is looked up on every hit: swapping the index of the very
 * same trust set (as if it had changed under the cache) refuses. */
static void
test_revoked_after_cached(void **state)
{
    struct pki *p = *state;
    struct tls_trust *t = trust_of(p->root_pem);
    struct tls_chaincache *cc = tls_chaincache_new();
    assert_string_equal(check(t, cc, p->alice, 0, NULL), "ok");
    assert_string_equal(check(t, cc, p->carol, 0, NULL), "ok");
    struct tls_revindex *saved = t->rev;
    t->rev = index_revoking(p->root, p->alice);
    assert_string_equal(check(t, cc, p->alice, 0, NULL), "revoked");
    assert_string_equal(check(t, cc, p->carol, 0, NULL), "ok");
    assert_int_equal(stats(cc).hits, 2);
    tls_revindex_free(t->rev);
    /* a revoked intermediate refuses what it signed, from the cache too */
    t->rev = index_revoking(p->root, p->inter);
    assert_string_equal(check(t, cc, p->carol, 0, NULL), "revoked");
    assert_int_equal(stats(cc).hits, 3);
    tls_revindex_free(t->rev);
    t->rev = saved;
    assert_string_equal(check(t, cc, p->alice, 0, NULL), "ok");
    tls_chaincache_free(cc);
    tls_trust_free(t);
}

/* Dates are checked at the verification time on a hit: the leaf's and
 * every issuer's. */
static void
test_dates_on_hit(void **state)
{
    struct pki *p = *state;
    struct tls_trust *t = trust_of(p->root_pem);
    struct tls_chaincache *cc = tls_chaincache_new();
    assert_string_equal(check(t, cc, p->alice, p->now, NULL), "ok");
    assert_string_equal(check(t, cc, p->alice, p->now + 60, NULL), "ok");
    assert_int_equal(stats(cc).hits, 1);
    assert_string_equal(check(t, cc, p->alice, p->now + 2 * HOUR, NULL),
                        "expired");
    assert_string_equal(check(t, cc, p->alice, p->now - 2 * HOUR, NULL),
                        "not_yet_valid");
    /* carol's leaf is valid for a day; its intermediate for two hours */
    assert_string_equal(check(t, cc, p->carol, p->now, NULL), "ok");
    assert_string_equal(check(t, cc, p->carol, p->now + 3 * HOUR, NULL),
                        "expired");
    /* and the entry still serves once the time is right again */
    uint64_t hits = stats(cc).hits;
    assert_string_equal(check(t, cc, p->alice, 0, NULL), "ok");
    assert_string_equal(check(t, cc, p->carol, 0, NULL), "ok");
    assert_int_equal(stats(cc).hits, hits + 2);
    tls_chaincache_free(cc);
    tls_trust_free(t);
}

/* certgate's own checks run on a hit; other bytes never hit. */
static void
test_policy_and_bytes(void **state)
{
    struct pki *p = *state;
    struct tls_trust *t = trust_of(p->root_pem);
    struct tls_chaincache *cc = tls_chaincache_new();
    assert_string_equal(check(t, cc, p->ca_leaf, 0, NULL), "leaf_is_ca");
    assert_string_equal(check(t, cc, p->ca_leaf, 0, NULL), "leaf_is_ca");
    assert_int_equal(stats(cc).hits, 1);
    assert_string_equal(check(t, cc, p->alice, 0, NULL), "ok");
    uint64_t hits = stats(cc).hits, inserts = stats(cc).inserts;
    assert_string_equal(check(t, cc, p->tampered, 0, NULL), "bad_signature");
    assert_string_equal(check(t, cc, p->tampered, 0, NULL), "bad_signature");
    assert_int_equal(stats(cc).hits, hits);
    assert_int_equal(stats(cc).inserts, inserts); /* failures not stored */
    tls_chaincache_free(cc);
    tls_trust_free(t);
}

/* Many distinct chains: bounded, least recently used replaced. */
static void
test_bounded(void **state)
{
    struct pki *p = *state;
    struct tls_trust *t = trust_of(p->root_pem);
    struct tls_chaincache *cc = tls_chaincache_new();
    for (int i = 0; i < 1500; i++) {
        X509 *x = cert_new("many", p->leaf_key, p->root, p->root_key, false,
                           false, -HOUR, HOUR);
        assert_string_equal(check(t, cc, x, 0, NULL), "ok");
        X509_free(x);
    }
    struct tls_chaincache_stats s = stats(cc);
    assert_int_equal(s.inserts, 1500);
    assert_true(s.evictions >= 1500 - 1024);
    assert_string_equal(check(t, cc, p->alice, 0, NULL), "ok");
    tls_chaincache_free(cc);
    tls_trust_free(t);
}

/* A hit hands out the identity extracted on the miss (shared, one more
 * reference), equal to what an extraction gives. */
static void
test_identity_shared(void **state)
{
    struct pki *p = *state;
    struct tls_trust *t = trust_of(p->root_pem);
    struct tls_chaincache *cc = tls_chaincache_new();
    struct cg_identity *ids[2];
    for (int i = 0; i < 2; i++) {
        STACK_OF(X509) *presented = sk_X509_new_null();
        sk_X509_push(presented, p->alice);
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        assert_int_equal(
            X509_STORE_CTX_init(ctx, t->store, p->alice, presented), 1);
        X509_STORE_CTX_set_default(ctx, "ssl_client");
        struct cg_verdict v;
        assert_int_equal(
            tls_verify_store_ctx(ctx, TLS_PURPOSE_CLIENT, cc, &v, &ids[i]), 1);
        X509_STORE_CTX_free(ctx);
        sk_X509_free(presented);
    }
    assert_ptr_equal(ids[0], ids[1]);
    assert_string_equal(ids[1]->cn, "alice");
    struct cg_identity *fresh = NULL;
    char err[CG_ERR_LEN];
    assert_int_equal(tls_identity_from_x509(p->alice, &fresh, err), 0);
    assert_string_equal(fresh->sha256, ids[1]->sha256);
    assert_string_equal(fresh->pem, ids[1]->pem);
    ident_free(fresh);
    ident_free(ids[0]);
    tls_chaincache_free(cc); /* the cache's reference */
    assert_string_equal(ids[1]->cn, "alice");
    ident_free(ids[1]);
    tls_trust_free(t);
}

/* The per-thread cache is one object per thread. */
static void
test_thread_cache(void **state)
{
    (void)state;
    struct tls_chaincache *a = tls_chaincache_thread();
    assert_non_null(a);
    assert_ptr_equal(tls_chaincache_thread(), a);
    tls_chaincache_thread_free();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_same_chain),
        cmocka_unit_test(test_key_of_bytes),
        cmocka_unit_test(test_trust_switch),
        cmocka_unit_test(test_revoked_after_cached),
        cmocka_unit_test(test_dates_on_hit),
        cmocka_unit_test(test_policy_and_bytes),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_identity_shared),
        cmocka_unit_test(test_thread_cache),
    };
    return cmocka_run_group_tests(tests, pki_setup, pki_teardown);
}
