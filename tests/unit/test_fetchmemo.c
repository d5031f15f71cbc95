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

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/objects.h>
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

/* libcrypto's two name-walk callbacks were found at start; armed, their
 * walks give what libcrypto's walks give, for every key manager, computed
 * once and kept (also past the memo's bounds); and keys given a type and
 * key contexts made armed are libcrypto's. */
static void
test_known_walks(void **state)
{
    (void)state;
    tls_name_cb *legacy = NULL, *ameth = NULL;
    tls_fetchmemo_walk_callbacks(&legacy, &ameth);
    assert_non_null(legacy);
    assert_non_null(ameth);
    assert_ptr_not_equal(legacy, ameth);
    tls_fetchmemo_thread_free();
    struct names kms = {0};
    EVP_KEYMGMT_do_all_provided(NULL, collect_keymgmt, &kms);
    EVP_KEYMGMT_do_all_provided(tls_libctx(), collect_keymgmt, &kms);
    for (size_t i = 0; i < kms.n; i++) {
        EVP_KEYMGMT *km = (EVP_KEYMGMT *)kms.v[i];
        int want_t = NID_undef;
        const char *want_s[2] = {NULL, NULL};
        assert_int_equal(EVP_KEYMGMT_names_do_all(km, legacy, &want_t), 1);
        assert_int_equal(EVP_KEYMGMT_names_do_all(km, ameth, want_s), 1);
        EVP_PKEY *plain = EVP_PKEY_new();
        int want_rc = EVP_PKEY_set_type_by_keymgmt(plain, km);
        for (int round = 0; round < 2; round++) {
            int t = NID_undef, set = EVP_PKEY_DH;
            const char *str[2] = {NULL, NULL};
            tls_fetchmemo_arm(true);
            assert_int_equal(EVP_KEYMGMT_names_do_all(km, legacy, &t), 1);
            assert_int_equal(EVP_KEYMGMT_names_do_all(km, legacy, &set), 1);
            assert_int_equal(EVP_KEYMGMT_names_do_all(km, ameth, str), 1);
            EVP_PKEY *k = EVP_PKEY_new();
            int rc = EVP_PKEY_set_type_by_keymgmt(k, km);
            tls_fetchmemo_arm(false);
            assert_int_equal(t, want_t);
            assert_int_equal(set, EVP_PKEY_DH); /* a known type stays */
            assert_ptr_equal(str[0], want_s[0]);
            assert_ptr_equal(str[1], want_s[1]);
            assert_int_equal(rc, want_rc);
            assert_int_equal(EVP_PKEY_get_id(k), EVP_PKEY_get_id(plain));
            EVP_PKEY_free(k);
        }
        EVP_PKEY_free(plain);
        ERR_clear_error();
    }
    /* key contexts by name, armed, for a few types */
    static const char *const types[] = {"X25519", "EC", "RSA", "ED25519"};
    for (size_t i = 0; i < 4; i++) {
        tls_fetchmemo_arm(true);
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, types[i], NULL);
        tls_fetchmemo_arm(false);
        assert_non_null(c);
        assert_true(EVP_PKEY_CTX_is_a(c, types[i]));
        EVP_PKEY_CTX_free(c);
    }
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
        cmocka_unit_test(test_known_walks),
        cmocka_unit_test(test_digestsign_supports),
    };
    return cmocka_run_group_tests(tests, tls_setup, NULL);
}
