/*
 * Unit tests of the tables of hot P-256 keys (tls/hotkeys.c).
 *
 * Armed, a verification-shaped EC_POINT_mul (n*G + m*Q) on P-256 counts
 * Q; after HK_HOT (1024) uses a table is built for Q, and from then on
 * the product comes from it: for random, zero, negative, over-long and
 * order-sized scalars it is the point libcrypto's own multiplication
 * gives (compared unarmed). ECDSA through the EVP API reaches it:
 * signatures of the hot key verify, a changed message, a changed
 * signature and another key's signature do not, as without the table.
 * Unarmed, other curves and other shapes (no point, no generator scalar)
 * are not counted. At most 4 tables per thread: more hot keys keep the
 * results right and get none. (Through libssl's handshakes:
 * test_parsecache.c.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/rand.h>

#include "tls/tls.h"
#include "tls/tls_int.h"
#include "tlssetup.h"

#define HOT 1024

static int
teardown_each(void **state)
{
    (void)state;
    tls_hotkeys_arm(false);
    tls_hotkeys_thread_free();
    return 0;
}

static struct tls_hotkeys_stats
stats(void)
{
    struct tls_hotkeys_stats s;
    tls_hotkeys_stats(&s);
    return s;
}

struct curve {
    EC_GROUP *g;
    BN_CTX *ctx;
    const BIGNUM *order;
};

static struct curve
curve_new(int nid)
{
    struct curve c = {EC_GROUP_new_by_curve_name(nid), BN_CTX_new(), NULL};
    assert_non_null(c.g);
    c.order = EC_GROUP_get0_order(c.g);
    return c;
}

static void
curve_free(struct curve *c)
{
    EC_GROUP_free(c->g);
    BN_CTX_free(c->ctx);
}

static EC_POINT *
random_point(const struct curve *c)
{
    BIGNUM *k = BN_new();
    EC_POINT *q = EC_POINT_new(c->g);
    assert_int_equal(BN_rand_range(k, c->order), 1);
    assert_int_equal(EC_POINT_mul(c->g, q, k, NULL, NULL, c->ctx), 1);
    /* affine, as a decoded public key is */
    unsigned char buf[133];
    size_t n = EC_POINT_point2oct(c->g, q, POINT_CONVERSION_UNCOMPRESSED, buf,
                                  sizeof(buf), c->ctx);
    assert_int_equal(EC_POINT_oct2point(c->g, q, buf, n, c->ctx), 1);
    BN_free(k);
    return q;
}

/* n*G + m*q armed equals n*G + m*q unarmed */
static void
assert_product(const struct curve *c, const EC_POINT *q, const BIGNUM *n,
               const BIGNUM *m)
{
    EC_POINT *want = EC_POINT_new(c->g), *got = EC_POINT_new(c->g);
    tls_hotkeys_arm(false);
    int ok_want = EC_POINT_mul(c->g, want, n, q, m, c->ctx);
    tls_hotkeys_arm(true);
    int ok_got = EC_POINT_mul(c->g, got, n, q, m, c->ctx);
    assert_int_equal(ok_got, ok_want);
    if (ok_want == 1)
        assert_int_equal(EC_POINT_cmp(c->g, want, got, c->ctx), 0);
    EC_POINT_free(want);
    EC_POINT_free(got);
}

/* uses q HOT times armed, then waits for its table */
static void
make_hot(const struct curve *c, const EC_POINT *q)
{
    BIGNUM *n = BN_new(), *m = BN_new();
    EC_POINT *r = EC_POINT_new(c->g);
    BN_set_word(n, 3);
    BN_set_word(m, 5);
    tls_hotkeys_arm(true);
    for (int i = 0; i < HOT; i++)
        assert_int_equal(EC_POINT_mul(c->g, r, n, q, m, c->ctx), 1);
    tls_hotkeys_wait();
    EC_POINT_free(r);
    BN_free(n);
    BN_free(m);
}

static void
test_hot_key_products(void **state)
{
    (void)state;
    struct curve c = curve_new(NID_X9_62_prime256v1);
    EC_POINT *q = random_point(&c);
    make_hot(&c, q);
    struct tls_hotkeys_stats s = stats();
    assert_int_equal(s.builds, 1);
    assert_int_equal(s.tables, 1);
    assert_int_equal(s.failed, 0);
    uint64_t fast0 = s.fast;

    BIGNUM *n = BN_new(), *m = BN_new();
    for (int i = 0; i < 200; i++) {
        assert_int_equal(BN_rand_range(n, c.order), 1);
        assert_int_equal(BN_rand_range(m, c.order), 1);
        assert_product(&c, q, n, m);
    }
    /* edge scalars: 0, 1, order-1, order, order+1, negative, 512 bits */
    BIGNUM *edge[7];
    for (int i = 0; i < 7; i++)
        edge[i] = BN_new();
    BN_zero(edge[0]);
    BN_one(edge[1]);
    BN_sub(edge[2], c.order, BN_value_one());
    BN_copy(edge[3], c.order);
    BN_add(edge[4], c.order, BN_value_one());
    BN_set_word(edge[5], 12345);
    BN_set_negative(edge[5], 1);
    BN_rand(edge[6], 512, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY);
    for (int i = 0; i < 7; i++) {
        for (int j = 0; j < 7; j++)
            assert_product(&c, q, edge[i], edge[j]);
    }
    /* m*q = -(n*G): the point at infinity (q = G) */
    const EC_POINT *gen = EC_GROUP_get0_generator(c.g);
    BN_set_word(n, 7);
    BN_sub(m, c.order, n);
    assert_product(&c, gen, n, m);
    assert_true(stats().fast >= fast0 + 200 + 49);
    for (int i = 0; i < 7; i++)
        BN_free(edge[i]);
    BN_free(n);
    BN_free(m);
    EC_POINT_free(q);
    curve_free(&c);
}

static EVP_PKEY *
p256_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

static size_t
sign(EVP_PKEY *k, const unsigned char *msg, size_t len, unsigned char *sig)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t n = 128;
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k), 1);
    assert_int_equal(EVP_DigestSign(md, sig, &n, msg, len), 1);
    EVP_MD_CTX_free(md);
    return n;
}

static int
verify(EVP_PKEY *k, const unsigned char *msg, size_t len,
       const unsigned char *sig, size_t n)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k), 1);
    int r = EVP_DigestVerify(md, sig, n, msg, len);
    EVP_MD_CTX_free(md);
    return r;
}

static void
test_ecdsa_through_evp(void **state)
{
    (void)state;
    EVP_PKEY *k = p256_key(), *other = p256_key();
    unsigned char msg[64], sig[128], bad[128];
    assert_int_equal(RAND_bytes(msg, sizeof(msg)), 1);
    size_t n = sign(k, msg, sizeof(msg), sig);
    tls_hotkeys_arm(true);
    for (int i = 0; i < HOT; i++)
        assert_int_equal(verify(k, msg, sizeof(msg), sig, n), 1);
    tls_hotkeys_wait();
    assert_int_equal(stats().tables, 1);
    uint64_t fast0 = stats().fast;
    for (int i = 0; i < 50; i++) {
        msg[0] = (unsigned char)i;
        n = sign(k, msg, sizeof(msg), sig);
        assert_int_equal(verify(k, msg, sizeof(msg), sig, n), 1);
        msg[1] ^= 1; /* another message */
        assert_int_equal(verify(k, msg, sizeof(msg), sig, n), 0);
        msg[1] ^= 1;
        memcpy(bad, sig, n); /* a bit of s changed */
        bad[n - 2] ^= 0x10;
        assert_int_not_equal(verify(k, msg, sizeof(msg), bad, n), 1);
        size_t on = sign(other, msg, sizeof(msg), bad); /* another key */
        assert_int_not_equal(verify(k, msg, sizeof(msg), bad, on), 1);
        assert_int_equal(verify(other, msg, sizeof(msg), bad, on), 1);
    }
    /* every verification with k's key came from its table */
    assert_true(stats().fast >= fast0 + 150);
    tls_hotkeys_arm(false);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
}

static void
test_not_counted(void **state)
{
    (void)state;
    struct curve c = curve_new(NID_X9_62_prime256v1);
    struct curve c384 = curve_new(NID_secp384r1);
    EC_POINT *q = random_point(&c), *q384 = random_point(&c384);
    EC_POINT *r = EC_POINT_new(c.g), *r384 = EC_POINT_new(c384.g);
    BIGNUM *s = BN_new();
    BN_set_word(s, 11);
    for (int i = 0; i < HOT + 64; i++) /* unarmed */
        assert_int_equal(EC_POINT_mul(c.g, r, s, q, s, c.ctx), 1);
    tls_hotkeys_arm(true);
    for (int i = 0; i < HOT + 64; i++) {
        assert_int_equal(EC_POINT_mul(c384.g, r384, s, q384, s, c384.ctx), 1);
        assert_int_equal(EC_POINT_mul(c.g, r, NULL, q, s, c.ctx), 1);
        assert_int_equal(EC_POINT_mul(c.g, r, s, NULL, NULL, c.ctx), 1);
    }
    tls_hotkeys_wait();
    struct tls_hotkeys_stats st = stats();
    assert_int_equal(st.counted, 0);
    assert_int_equal(st.builds, 0);
    assert_int_equal(st.fast, 0);
    BN_free(s);
    EC_POINT_free(q);
    EC_POINT_free(q384);
    EC_POINT_free(r);
    EC_POINT_free(r384);
    curve_free(&c);
    curve_free(&c384);
}

static void
test_table_bound(void **state)
{
    (void)state;
    struct curve c = curve_new(NID_X9_62_prime256v1);
    EC_POINT *q[6];
    for (int i = 0; i < 6; i++) {
        q[i] = random_point(&c);
        make_hot(&c, q[i]);
    }
    struct tls_hotkeys_stats s = stats();
    assert_int_equal(s.builds, 4);
    assert_int_equal(s.tables, 4);
    assert_int_equal(s.replaced, 0);
    BIGNUM *n = BN_new(), *m = BN_new();
    for (int i = 0; i < 6; i++) {
        for (int j = 0; j < 10; j++) {
            assert_int_equal(BN_rand_range(n, c.order), 1);
            assert_int_equal(BN_rand_range(m, c.order), 1);
            assert_product(&c, q[i], n, m);
        }
    }
    BN_free(n);
    BN_free(m);
    for (int i = 0; i < 6; i++)
        EC_POINT_free(q[i]);
    curve_free(&c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_hot_key_products, teardown_each),
        cmocka_unit_test_teardown(test_ecdsa_through_evp, teardown_each),
        cmocka_unit_test_teardown(test_not_counted, teardown_each),
        cmocka_unit_test_teardown(test_table_bound, teardown_each),
    };
    return cmocka_run_group_tests(tests, tls_setup, NULL);
}
