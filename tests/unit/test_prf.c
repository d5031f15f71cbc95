/*
 * Unit tests of TLS 1.2's PRF in the listener library context.
 *
 * hkdf.c's tls_prf: the published P_SHA256 test vector, and what
 * OpenSSL's TLS1-PRF gives for random secrets (longer than a hash block
 * too), seeds and output lengths, SHA-256 and SHA-384, with the key-state
 * cache off and on; empty secrets and outputs refused.
 *
 * kdftap.c: the listener context's TLS1-PRF gives what the default
 * context's gives (same result code, same bytes) for random parameter
 * sets as libssl passes them (up to five seeds, some empty), those it
 * computes itself (counted) and those it leaves to the default (other
 * digests, a missing digest, secret or seed, an unknown parameter, long
 * secrets and seeds, an empty output); a context used again after a
 * derive (derive again, a seed added, its size, duplicate, reset)
 * behaves as the default's (kdfreuse.h).
 *
 * The key block: while a connection's handshake step is armed, kdftap.c
 * keeps the output of a "key expansion" derive with its master secret and
 * randoms, and no other derive's; tls_rec_new12 takes its keys from the
 * kept block only for that master secret and those randoms, and derives
 * them otherwise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "tls/tls.h"
#include "tls/record_int.h"
#include "tls/tls_int.h"
#include "tlssetup.h"
#include "kdfcheck.h"

static void
fill(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)rand();
}

/* One TLS1-PRF derive's parameters. */
struct pset {
    const char *digest; /* NULL: not given */
    unsigned char secret[200];
    size_t secretlen;
    bool has_secret;
    unsigned char seed[5][120];
    size_t seedlen[5];
    int nseeds;
    bool unknown; /* an extra, unknown parameter */
    size_t outlen;
};

static void
params_of(struct pset *s, OSSL_PARAM *p)
{
    OSSL_PARAM *q = p;
    if (s->digest != NULL)
        *q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                                (char *)s->digest, 0);
    if (s->has_secret)
        *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET,
                                                 s->secret, s->secretlen);
    for (int i = 0; i < s->nseeds; i++)
        *q++ = OSSL_PARAM_construct_octet_string(
            OSSL_KDF_PARAM_SEED, s->seedlen[i] ? s->seed[i] : NULL,
            s->seedlen[i]);
    if (s->unknown)
        *q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_PROPERTIES,
                                                (char *)"", 0);
    *q = OSSL_PARAM_construct_end();
}

static int
derive_in(OSSL_LIB_CTX *lib, struct pset *s, unsigned char *out)
{
    OSSL_PARAM p[10];
    params_of(s, p);
    return fresh_derive(lib, "TLS1-PRF", p, out, s->outlen, 400);
}

/* Mostly what libssl passes, sometimes not. */
static void
random_pset(struct pset *s)
{
    static const char *const digests[] = {"SHA256",   "SHA2-256", "SHA384",
                                          "SHA2-384", "sha256",   "MD5-SHA1",
                                          "SHA512",   NULL};
    memset(s, 0, sizeof(*s));
    int r = rand() % 100;
    s->digest = digests[r < 80 ? r % 5 : 5 + r % 3];
    s->has_secret = rand() % 30 != 0;
    s->secretlen =
        rand() % 10 == 0 ? (size_t)rand() % 200 : 32 + (size_t)rand() % 17;
    fill(s->secret, s->secretlen);
    s->nseeds = rand() % 12 == 0 ? 0 : 1 + rand() % 5;
    for (int i = 0; i < s->nseeds; i++) {
        s->seedlen[i] = rand() % 4 == 0 ? 0 : (size_t)rand() % 120;
        fill(s->seed[i], s->seedlen[i]);
    }
    s->unknown = rand() % 40 == 0;
    s->outlen = rand() % 50 == 0 ? 0 : 1 + (size_t)rand() % 300;
}

static void
test_known_vector(void **state)
{
    (void)state;
    /* P_SHA256 with the label "test label" (IETF TLS WG test vector) */
    static const unsigned char secret[16] = {0x9b, 0xbe, 0x43, 0x6b, 0xa9, 0x40,
                                             0xf0, 0x17, 0xb1, 0x76, 0x52, 0x84,
                                             0x9a, 0x71, 0xdb, 0x35};
    static const unsigned char want[100] = {
        0xe3, 0xf2, 0x29, 0xba, 0x72, 0x7b, 0xe1, 0x7b, 0x8d, 0x12, 0x26, 0x20,
        0x55, 0x7c, 0xd4, 0x53, 0xc2, 0xaa, 0xb2, 0x1d, 0x07, 0xc3, 0xd4, 0x95,
        0x32, 0x9b, 0x52, 0xd4, 0xe6, 0x1e, 0xdb, 0x5a, 0x6b, 0x30, 0x17, 0x91,
        0xe9, 0x0d, 0x35, 0xc9, 0xc9, 0xa4, 0x6b, 0x4e, 0x14, 0xba, 0xf9, 0xaf,
        0x0f, 0xa0, 0x22, 0xf7, 0x07, 0x7d, 0xef, 0x17, 0xab, 0xfd, 0x37, 0x97,
        0xc0, 0x56, 0x4b, 0xab, 0x4f, 0xbc, 0x91, 0x66, 0x6e, 0x9d, 0xef, 0x9b,
        0x97, 0xfc, 0xe3, 0x4f, 0x79, 0x67, 0x89, 0xba, 0xa4, 0x80, 0x82, 0xd1,
        0x22, 0xee, 0x42, 0xc5, 0xa7, 0x2e, 0x5a, 0x51, 0x10, 0xff, 0xf7, 0x01,
        0x87, 0x34, 0x7b, 0x66};
    unsigned char seed[10 + 16] = "test label";
    static const unsigned char rnd[16] = {0xa0, 0xba, 0x9f, 0x93, 0x6c, 0xda,
                                          0x31, 0x18, 0x27, 0xa6, 0xf7, 0x96,
                                          0xff, 0xd5, 0x19, 0x8c};
    memcpy(seed + 10, rnd, 16);
    unsigned char out[100];
    for (int cache = 0; cache < 2; cache++) {
        tls_hkdf_cache(cache);
        assert_true(tls_prf(TLS_SHA256, secret, sizeof(secret), seed,
                            sizeof(seed), out, sizeof(out)));
        assert_memory_equal(out, want, sizeof(want));
    }
    tls_hkdf_cache(false);
    assert_false(tls_prf(TLS_SHA256, secret, 0, seed, 4, out, 4));
    assert_false(tls_prf(TLS_SHA256, secret, 16, seed, 4, out, 0));
}

/* tls_prf against OpenSSL's TLS1-PRF in the default context. */
static void
test_prf_as_openssl(void **state)
{
    (void)state;
    srand(5246);
    for (int i = 0; i < 2000; i++) {
        struct pset s;
        memset(&s, 0, sizeof(s));
        enum tls_hash h = i % 2 ? TLS_SHA384 : TLS_SHA256;
        s.digest = h == TLS_SHA256 ? "SHA256" : "SHA384";
        s.has_secret = true;
        s.secretlen = 1 + (size_t)rand() % 199;
        fill(s.secret, s.secretlen);
        s.nseeds = 1;
        s.seedlen[0] = 1 + (size_t)rand() % 119;
        fill(s.seed[0], s.seedlen[0]);
        s.outlen = 1 + (size_t)rand() % 300;
        unsigned char want[400], got[400];
        assert_int_equal(derive_in(NULL, &s, want), 1);
        tls_hkdf_cache(i % 3 == 0);
        assert_true(tls_prf(h, s.secret, s.secretlen, s.seed[0], s.seedlen[0],
                            got, s.outlen));
        assert_memory_equal(got, want, s.outlen);
    }
    tls_hkdf_cache(false);
}

static bool
pair(int *rw, int *rg)
{
    struct pset s;
    random_pset(&s);
    unsigned char want[400], got[400];
    *rw = derive_in(NULL, &s, want);
    *rg = derive_in(tls_libctx(), &s, got);
    return memcmp(got, want, s.outlen) == 0;
}

static void
test_tls1_prf_as_default(void **state)
{
    (void)state;
    /* both ways taken, most sets derivable */
    check_as_default(2246, 4000, pair, 2000, 400, 2500);
}

/* The first derive of check_reuse: a libssl-like key block. */
static void
reuse_in(OSSL_LIB_CTX *lib, int then, unsigned char *out, int *rc)
{
    struct pset s;
    memset(&s, 0, sizeof(s));
    srand(then + 7);
    s.digest = "SHA256";
    s.has_secret = true;
    s.secretlen = 48;
    fill(s.secret, 48);
    s.nseeds = 2;
    memcpy(s.seed[0], "key expansion", s.seedlen[0] = 13);
    fill(s.seed[1], s.seedlen[1] = 64);
    OSSL_PARAM p[10];
    params_of(&s, p);
    OSSL_PARAM more[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, (void *)"x", 1),
        OSSL_PARAM_construct_end(),
    };
    reuse_case(lib, "TLS1-PRF", p, more, then, out, 40, rc);
}

static void
test_tls1_prf_reused(void **state)
{
    (void)state;
    check_reuse(reuse_in);
}

/* A TLS1-PRF derive through the listener context: secret, label + rnd. */
static void
listener_prf(const unsigned char *secret, size_t slen, const char *label,
             const unsigned char *rnd, unsigned char *out, size_t outlen)
{
    EVP_KDF *kdf = EVP_KDF_fetch(tls_libctx(), "TLS1-PRF", NULL);
    assert_non_null(kdf);
    EVP_KDF_CTX *k = EVP_KDF_CTX_new(kdf);
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, (void *)secret,
                                          slen),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, (void *)label,
                                          strlen(label)),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, (void *)rnd, 64),
        OSSL_PARAM_construct_end(),
    };
    assert_int_equal(EVP_KDF_derive(k, out, outlen, p), 1);
    EVP_KDF_CTX_free(k);
    EVP_KDF_free(kdf);
}

/* tls_rec_new12's keys for AES-128-GCM (client key, server key, client
 * IV, server IV: 40 bytes) into kb. */
static void
rec_keys(const unsigned char *master, const unsigned char *rnd,
         const struct tls_hs_secrets *hs, unsigned char *kb)
{
    struct tls_rec *r =
        tls_rec_new12(NID_aes_128_gcm, "SHA256", master, 48, rnd + 32, rnd, hs);
    assert_non_null(r);
    memcpy(kb, r->rx.key, 16);
    memcpy(kb + 16, r->tx.key, 16);
    memcpy(kb + 32, r->rx.iv, 4);
    memcpy(kb + 36, r->tx.iv, 4);
    tls_rec_free(r);
}

static void
test_key_block_kept(void **state)
{
    (void)state;
    unsigned char master[48], rnd[64], kb[40], got[48];
    fill(master, sizeof(master));
    fill(rnd, sizeof(rnd));
    struct tls_hs_secrets *hs = NULL;
    /* not armed, or another label: nothing kept */
    listener_prf(master, 48, "key expansion", rnd, kb, 40);
    tls_kdftap_arm(&hs);
    listener_prf(master, 48, "master secret", rnd, got, 48);
    listener_prf(master, 48, "client finished", rnd, got, 12);
    assert_null(hs);
    /* armed: the key block, its master secret and randoms */
    listener_prf(master, 48, "key expansion", rnd, got, 40);
    tls_kdftap_arm(NULL);
    assert_non_null(hs);
    assert_int_equal(hs->kblen, 40);
    assert_memory_equal(hs->kb, kb, 40);
    assert_int_equal(hs->kb_mlen, 48);
    assert_memory_equal(hs->kb_master, master, 48);
    assert_memory_equal(hs->kb_randoms, rnd, 64);
    /* the record layer's keys: the same with and without it */
    rec_keys(master, rnd, NULL, got);
    assert_memory_equal(got, kb, 40);
    rec_keys(master, rnd, hs, got);
    assert_memory_equal(got, kb, 40);
    /* taken from it (a marked block shows) for these inputs only */
    hs->kb[0] ^= 0xff;
    rec_keys(master, rnd, hs, got);
    assert_int_equal(got[0], kb[0] ^ 0xff);
    for (int which = 0; which < 3; which++) {
        unsigned char *b = which == 0   ? &hs->kb_master[47]
                           : which == 1 ? &hs->kb_randoms[0]
                                        : &hs->kb_randoms[63];
        *b ^= 1;
        rec_keys(master, rnd, hs, got);
        assert_memory_equal(got, kb, 40);
        *b ^= 1;
    }
    hs->kblen = 39; /* shorter than the suite needs */
    rec_keys(master, rnd, hs, got);
    assert_memory_equal(got, kb, 40);
    free(hs);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_vector),
        cmocka_unit_test(test_prf_as_openssl),
        cmocka_unit_test(test_tls1_prf_as_default),
        cmocka_unit_test(test_tls1_prf_reused),
        cmocka_unit_test(test_key_block_kept),
    };
    return cmocka_run_group_tests(tests, tls_setup, NULL);
}
