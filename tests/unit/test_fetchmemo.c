/*
 * Unit tests of the fetch memo (tls/fetchmemo.c).
 *
 * Armed, a fetch of each kind returns the object libcrypto's own fetch
 * returns (the same pointer: its method store's), and a repeated fetch
 * is a hit that gives a usable new reference. What libcrypto does not
 * find (an unknown name, an unsatisfiable property query) is not kept;
 * another property query or library context is another entry. Every
 * cipher name of the default provider fetched armed gives what the
 * unarmed fetch gives, also once the memo stopped keeping entries.
 * Unarmed, nothing is counted or kept. A key manager's names, armed, are
 * those libcrypto lists, in its order, also for more key managers than
 * the memo keeps. Whether a key can sign with a digest, armed, is
 * libcrypto's answer, kept for EC keys only. (Through libssl's
 * handshakes: test_parsecache.c.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/provider.h>

#include "tls/tls.h"
#include "tls/tls_int.h"
#include "tlssetup.h"

static struct tls_fetchmemo_stats
stats(void)
{
    struct tls_fetchmemo_stats s;
    tls_fetchmemo_stats(&s);
    return s;
}

/* fetch, then fetch armed twice: the three are one object */
#define SAME_OBJECT(T, ctx, name)                                              \
    do {                                                                       \
        T *plain = T##_fetch(ctx, name, NULL);                                 \
        assert_non_null(plain);                                                \
        tls_fetchmemo_arm(true);                                               \
        T *a = T##_fetch(ctx, name, NULL), *b = T##_fetch(ctx, name, NULL);    \
        tls_fetchmemo_arm(false);                                              \
        assert_ptr_equal(a, plain);                                            \
        assert_ptr_equal(b, plain);                                            \
        T##_free(a);                                                           \
        T##_free(b);                                                           \
        T##_free(plain);                                                       \
    } while (0)

static void
test_each_kind(void **state)
{
    (void)state;
    tls_fetchmemo_thread_free();
    SAME_OBJECT(EVP_MD, NULL, "SHA256");
    SAME_OBJECT(EVP_CIPHER, NULL, "AES-128-GCM");
    SAME_OBJECT(EVP_KDF, NULL, "HKDF");
    SAME_OBJECT(EVP_MAC, NULL, "HMAC");
    SAME_OBJECT(EVP_SIGNATURE, NULL, "ECDSA");
    SAME_OBJECT(EVP_KEYEXCH, NULL, "X25519");
    SAME_OBJECT(EVP_KEYMGMT, NULL, "EC");
    SAME_OBJECT(EVP_KDF, tls_libctx(), "TLS13-KDF");
    struct tls_fetchmemo_stats s = stats();
    assert_int_equal(s.misses, 8);
    assert_int_equal(s.hits, 8);
    assert_int_equal(s.kept, 8);
    /* the memo's reference outlives the callers': a hit is usable */
    tls_fetchmemo_arm(true);
    EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);
    tls_fetchmemo_arm(false);
    unsigned char out[32];
    unsigned int n = 0;
    assert_int_equal(EVP_Digest("abc", 3, out, &n, md, NULL), 1);
    static const unsigned char abc[4] = {0xba, 0x78, 0x16, 0xbf};
    assert_memory_equal(out, abc, sizeof(abc));
    EVP_MD_free(md);
    assert_int_equal(stats().hits, 9);
    tls_fetchmemo_thread_free();
}

static void
test_not_kept(void **state)
{
    (void)state;
    tls_fetchmemo_thread_free();
    tls_fetchmemo_arm(true);
    for (int i = 0; i < 2; i++) {
        assert_null(EVP_MD_fetch(NULL, "NO-SUCH-DIGEST", NULL));
        assert_null(EVP_MD_fetch(NULL, "SHA256", "provider=nowhere"));
    }
    assert_null(EVP_MD_fetch(NULL, NULL, NULL));
    struct tls_fetchmemo_stats s = stats();
    assert_int_equal(s.misses, 4);
    assert_int_equal(s.hits, 0);
    assert_int_equal(s.kept, 0);
    /* another property query, another entry (the same object) */
    EVP_MD *a = EVP_MD_fetch(NULL, "SHA256", NULL);
    EVP_MD *b = EVP_MD_fetch(NULL, "SHA256", "provider=default");
    EVP_MD *c = EVP_MD_fetch(NULL, "SHA256", "provider=default");
    /* the name as given is the key: an alias is another entry */
    EVP_MD *d = EVP_MD_fetch(NULL, "SHA2-256", NULL);
    tls_fetchmemo_arm(false);
    assert_ptr_equal(a, b);
    assert_ptr_equal(b, c);
    assert_ptr_equal(c, d);
    s = stats();
    assert_int_equal(s.kept, 3);
    assert_int_equal(s.hits, 1);
    EVP_MD_free(a);
    EVP_MD_free(b);
    EVP_MD_free(c);
    EVP_MD_free(d);
    /* unarmed: not counted */
    EVP_MD_free(EVP_MD_fetch(NULL, "SHA256", NULL));
    assert_int_equal(stats().hits, 1);
    tls_fetchmemo_thread_free();
}

static void
test_other_libctx(void **state)
{
    (void)state;
    tls_fetchmemo_thread_free();
    OSSL_LIB_CTX *other = OSSL_LIB_CTX_new();
    assert_non_null(other);
    OSSL_PROVIDER *prov = OSSL_PROVIDER_load(other, "default");
    assert_non_null(prov);
    tls_fetchmemo_arm(true);
    EVP_MD *a = EVP_MD_fetch(NULL, "SHA384", NULL);
    EVP_MD *b = EVP_MD_fetch(other, "SHA384", NULL);
    EVP_MD *c = EVP_MD_fetch(other, "SHA384", NULL);
    tls_fetchmemo_arm(false);
    assert_ptr_not_equal(a, b);
    assert_ptr_equal(b, c);
    assert_int_equal(stats().kept, 2);
    EVP_MD_free(a);
    EVP_MD_free(b);
    EVP_MD_free(c);
    /* the memo's references go before the context they came from */
    tls_fetchmemo_thread_free();
    OSSL_PROVIDER_unload(prov);
    OSSL_LIB_CTX_free(other);
}

struct names {
    char **v;
    size_t n;
};

static void
add_name(const char *name, void *arg)
{
    struct names *ns = arg;
    ns->v = realloc(ns->v, (ns->n + 1) * sizeof(*ns->v));
    assert_non_null(ns->v);
    ns->v[ns->n++] = strdup(name);
}

static void
cipher_names(EVP_CIPHER *c, void *arg)
{
    EVP_CIPHER_names_do_all(c, add_name, arg);
}

static void
test_full(void **state)
{
    (void)state;
    tls_fetchmemo_thread_free();
    struct names ns = {0};
    EVP_CIPHER_do_all_provided(NULL, cipher_names, &ns);
    assert_true(ns.n > 128); /* more names than the memo holds */
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < ns.n; i++) {
            EVP_CIPHER *plain = EVP_CIPHER_fetch(NULL, ns.v[i], NULL);
            tls_fetchmemo_arm(true);
            EVP_CIPHER *m = EVP_CIPHER_fetch(NULL, ns.v[i], NULL);
            tls_fetchmemo_arm(false);
            assert_ptr_equal(m, plain);
            EVP_CIPHER_free(m);
            EVP_CIPHER_free(plain);
        }
    }
    struct tls_fetchmemo_stats s = stats();
    assert_int_equal(s.kept, 96); /* 3/4 of 128 */
    assert_int_equal(s.hits, 96); /* the second round's kept names */
    assert_int_equal(s.misses, 2 * ns.n - 96);
    for (size_t i = 0; i < ns.n; i++)
        free(ns.v[i]);
    free(ns.v);
    tls_fetchmemo_thread_free();
}

static void
keymgmt_names(const char *name, void *arg)
{
    add_name(name, arg);
}

static void
collect_keymgmt(EVP_KEYMGMT *km, void *arg)
{
    struct names *ns = arg;
    if (EVP_KEYMGMT_up_ref(km) != 1)
        fail();
    ns->v = realloc(ns->v, (ns->n + 1) * sizeof(*ns->v));
    assert_non_null(ns->v);
    ns->v[ns->n++] = (char *)km;
}

/* The names of every key manager of the default provider (more than the
 * memo keeps), twice armed: as unarmed, in the same order; the second
 * time from the memo for those it kept. */
static void
test_keymgmt_names(void **state)
{
    (void)state;
    tls_fetchmemo_thread_free();
    struct names kms = {0};
    EVP_KEYMGMT_do_all_provided(NULL, collect_keymgmt, &kms);
    assert_true(kms.n > 16);
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < kms.n; i++) {
            EVP_KEYMGMT *km = (EVP_KEYMGMT *)kms.v[i];
            struct names want = {0}, got = {0};
            assert_int_equal(EVP_KEYMGMT_names_do_all(km, keymgmt_names, &want),
                             1);
            tls_fetchmemo_arm(true);
            assert_int_equal(EVP_KEYMGMT_names_do_all(km, keymgmt_names, &got),
                             1);
            tls_fetchmemo_arm(false);
            assert_true(want.n > 0);
            assert_int_equal(got.n, want.n);
            for (size_t k = 0; k < want.n; k++) {
                assert_string_equal(got.v[k], want.v[k]);
                free(got.v[k]);
                free(want.v[k]);
            }
            free(got.v);
            free(want.v);
        }
    }
    struct tls_fetchmemo_stats s = stats();
    assert_int_equal(s.kept, 16);
    assert_int_equal(s.hits, 16);
    assert_int_equal(s.misses, 2 * kms.n - 16);
    for (size_t i = 0; i < kms.n; i++)
        EVP_KEYMGMT_free((EVP_KEYMGMT *)kms.v[i]);
    free(kms.v);
    tls_fetchmemo_thread_free();
}

/* EVP_PKEY_digestsign_supports_digest: libcrypto's answers; an EC key's
 * kept per digest, library context and provider (a second EC key of
 * another curve gets them from the memo), anything else asked each time. */
static void
test_digestsign_supports(void **state)
{
    (void)state;
    tls_fetchmemo_thread_free();
    EVP_PKEY *keys[] = {
        EVP_PKEY_Q_keygen(tls_libctx(), NULL, "EC", "P-256"),
        EVP_PKEY_Q_keygen(tls_libctx(), NULL, "EC", "P-384"),
        EVP_PKEY_Q_keygen(tls_libctx(), NULL, "ED25519"),
    };
    static const char *const mds[] = {"SHA256", "SHA2-384", "SHA512", "SHA1",
                                      "NOSUCH"};
    for (size_t k = 0; k < 3; k++) {
        assert_non_null(keys[k]);
        for (size_t i = 0; i < 5; i++) {
            int want = EVP_PKEY_digestsign_supports_digest(
                keys[k], tls_libctx(), mds[i], NULL);
            struct tls_fetchmemo_stats s0 = stats();
            tls_fetchmemo_arm(true);
            int got = EVP_PKEY_digestsign_supports_digest(keys[k], tls_libctx(),
                                                          mds[i], NULL);
            int prop = EVP_PKEY_digestsign_supports_digest(
                keys[k], tls_libctx(), mds[i], "provider=default");
            tls_fetchmemo_arm(false);
            struct tls_fetchmemo_stats s1 = stats();
            assert_int_equal(got, want);
            assert_int_equal(prop, want);
            assert_int_equal(want, i < 4 && k < 2 ? 1 : 0);
            /* the P-384 key: every answer from the P-256 key's */
            assert_int_equal(s1.supports_hits - s0.supports_hits,
                             k == 1 ? 1 : 0);
            assert_int_equal(s1.supports_kept - s0.supports_kept,
                             k == 0 ? 1 : 0);
        }
        EVP_PKEY_free(keys[k]);
    }
    tls_fetchmemo_thread_free();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_kind),
        cmocka_unit_test(test_not_kept),
        cmocka_unit_test(test_other_libctx),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_keymgmt_names),
        cmocka_unit_test(test_digestsign_supports),
    };
    return cmocka_run_group_tests(tests, tls_setup, NULL);
}
