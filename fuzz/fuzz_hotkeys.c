/*
 * libFuzzer target for the tables of hot P-256 keys (src/tls/hotkeys.c):
 * differential against libcrypto's own EC_POINT_mul.
 *
 * At start, two points get tables (each used 1024 times armed, then
 * built): a random key Q, and the generator G itself (so that n*G + m*G
 * reaches the point at infinity and its neighbours). Each input is split
 * into a selector byte and two scalars n and m (any length up to 100
 * bytes, so also zero, over the order and over 256 bits; the selector's
 * low bits make either negative). n*G + m*P (P = Q or G, by the
 * selector) is computed unarmed (the reference) and armed (from P's
 * table): both must succeed or fail alike and give the same point.
 *
 * Build and run (from the repository root; not part of CMake):
 *
 *   mkdir -p build-fuzz/corpus-hotkeys
 *   clang -g -O1 -std=c17 -fsanitize=fuzzer,address,undefined \
 *     -fno-sanitize-recover=undefined -D_GNU_SOURCE -Isrc \
 *     fuzz/fuzz_hotkeys.c src/tls/hotkeys.c src/core/[a-z]*.c \
 *     $(pkg-config --cflags --libs libssl libcrypto) -lpthread -ldl \
 *     -o build-fuzz/fuzz_hotkeys
 *   ./build-fuzz/fuzz_hotkeys -max_total_time=60 -max_len=256 \
 *     build-fuzz/corpus-hotkeys
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>

#include "tls/tls_int.h"

#include "fuzz_check.h"

static EC_GROUP *group;
static BN_CTX *bctx;
static EC_POINT *points[2]; /* Q, G: both with tables */

static EC_POINT *
affine_copy(const EC_POINT *p)
{
    unsigned char buf[65];
    size_t n = EC_POINT_point2oct(group, p, POINT_CONVERSION_UNCOMPRESSED, buf,
                                  sizeof(buf), bctx);
    EC_POINT *q = EC_POINT_new(group);
    CHECK(n == sizeof(buf) && q != NULL &&
          EC_POINT_oct2point(group, q, buf, n, bctx) == 1);
    return q;
}

static void
init(void)
{
    group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    bctx = BN_CTX_new();
    CHECK(group != NULL && bctx != NULL);
    BIGNUM *k = BN_new(), *three = BN_new();
    EC_POINT *r = EC_POINT_new(group);
    CHECK(k != NULL && three != NULL && r != NULL);
    CHECK(BN_rand_range(k, EC_GROUP_get0_order(group)) == 1);
    CHECK(EC_POINT_mul(group, r, k, NULL, NULL, bctx) == 1);
    points[0] = affine_copy(r);
    points[1] = affine_copy(EC_GROUP_get0_generator(group));
    BN_set_word(three, 3);
    tls_hotkeys_arm(true);
    for (int p = 0; p < 2; p++) {
        for (int i = 0; i < 1024; i++)
            CHECK(EC_POINT_mul(group, r, three, points[p], three, bctx) == 1);
        tls_hotkeys_wait();
    }
    tls_hotkeys_arm(false);
    struct tls_hotkeys_stats s;
    tls_hotkeys_stats(&s);
    CHECK(s.tables == 2);
    BN_free(k);
    BN_free(three);
    EC_POINT_free(r);
}

static BIGNUM *
scalar(const uint8_t *p, size_t n, bool negative)
{
    BIGNUM *b = BN_bin2bn(p, (int)n, NULL);
    CHECK(b != NULL);
    BN_set_negative(b, negative);
    return b;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (group == NULL)
        init();
    if (size < 2 || size > 201)
        return 0;
    unsigned sel = data[0];
    size_t half = (size - 1) / 2;
    BIGNUM *n = scalar(data + 1, half, sel & 1);
    BIGNUM *m = scalar(data + 1 + half, size - 1 - half, sel & 2);
    const EC_POINT *p = points[(sel >> 2) & 1];
    EC_POINT *want = EC_POINT_new(group), *got = EC_POINT_new(group);
    CHECK(want != NULL && got != NULL);
    int ok_want = EC_POINT_mul(group, want, n, p, m, bctx);
    uint64_t fast0;
    struct tls_hotkeys_stats s;
    tls_hotkeys_stats(&s);
    fast0 = s.fast;
    tls_hotkeys_arm(true);
    int ok_got = EC_POINT_mul(group, got, n, p, m, bctx);
    tls_hotkeys_arm(false);
    CHECK(ok_got == ok_want);
    if (ok_want == 1)
        CHECK(EC_POINT_cmp(group, want, got, bctx) == 0);
    tls_hotkeys_stats(&s);
    CHECK(ok_want != 1 || s.fast == fast0 + 1); /* from the table */
    ERR_clear_error();
    BN_free(n);
    BN_free(m);
    EC_POINT_free(want);
    EC_POINT_free(got);
    return 0;
}
