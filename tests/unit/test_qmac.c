/*
 * Unit tests of TLS 1.3's Finished MACs (tls/qmac.c).
 *
 * Armed, EVP_Q_mac's HMAC with SHA-256 or SHA-384 on the listener library
 * context is computed by hkdf.c: the same bytes as libcrypto's HMAC for
 * random keys (shorter and longer than a hash block) and messages (empty
 * too), under each digest name libssl may pass. Unarmed, on another
 * context, for another MAC or digest, with a property query, without an
 * output buffer or with one too small, libcrypto's own function answers.
 * (Through libssl's handshakes: every TLS 1.3 integration test.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "tls/tls.h"
#include "tls/tls_int.h"

static int
setup(void **state)
{
    (void)state;
    tls_global_init();
    assert_non_null(tls_libctx());
    return 0;
}

static int
teardown_each(void **state)
{
    (void)state;
    tls_qmac_arm(false);
    return 0;
}

/* HMAC(key, msg) with digest md by libcrypto's EVP_MAC (not EVP_Q_mac). */
static size_t
reference(const char *md, const unsigned char *key, size_t keylen,
          const unsigned char *msg, size_t msglen, unsigned char *out)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    assert_non_null(mac);
    EVP_MAC_CTX *c = EVP_MAC_CTX_new(mac);
    assert_non_null(c);
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)md, 0),
        OSSL_PARAM_construct_end(),
    };
    size_t len = 0;
    assert_int_equal(EVP_MAC_init(c, key, keylen, p), 1);
    assert_int_equal(EVP_MAC_update(c, msg, msglen), 1);
    assert_int_equal(EVP_MAC_final(c, out, &len, EVP_MAX_MD_SIZE), 1);
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(mac);
    return len;
}

static size_t
rand_below(size_t n)
{
    uint32_t r;
    assert_int_equal(RAND_bytes((unsigned char *)&r, sizeof(r)), 1);
    return r % n;
}

/* 2,000 random HMACs, armed, each equal to libcrypto's and computed here. */
static void
test_matches_libcrypto(void **state)
{
    (void)state;
    static const char *const names[] = {"SHA256", "SHA2-256", "sha-256",
                                        "SHA384", "SHA2-384", "sha384"};
    tls_qmac_arm(true);
    unsigned long fast = tls_qmac_fast();
    for (int i = 0; i < 2000; i++) {
        const char *md = names[i % 6];
        unsigned char key[200], msg[300], want[EVP_MAX_MD_SIZE],
            got[EVP_MAX_MD_SIZE];
        size_t keylen = 1 + rand_below(sizeof(key));
        size_t msglen = i % 50 == 0 ? 0 : rand_below(sizeof(msg) + 1);
        assert_int_equal(RAND_bytes(key, (int)keylen), 1);
        assert_int_equal(RAND_bytes(msg, (int)sizeof(msg)), 1);
        size_t wl = reference(md, key, keylen, msg, msglen, want);
        size_t gl = 0;
        /* libssl passes its context's property query: none */
        OSSL_PARAM params[] = {OSSL_PARAM_construct_end()};
        unsigned char *r = EVP_Q_mac(
            tls_libctx(), "HMAC", NULL, md, i % 2 ? params : NULL, key, keylen,
            msglen ? msg : NULL, msglen, got, i % 3 ? sizeof(got) : wl, &gl);
        assert_ptr_equal(r, got);
        assert_int_equal(gl, wl);
        assert_memory_equal(got, want, wl);
    }
    assert_int_equal(tls_qmac_fast() - fast, 2000);
}

/* What libcrypto keeps: the same answers, none computed here. */
static void
test_passthrough(void **state)
{
    (void)state;
    unsigned char key[32], msg[48], want[EVP_MAX_MD_SIZE],
        got[EVP_MAX_MD_SIZE * 2];
    size_t len = 0;
    memset(key, 0x0b, sizeof(key));
    memset(msg, 0x5a, sizeof(msg));
    size_t wl = reference("SHA256", key, sizeof(key), msg, sizeof(msg), want);
    unsigned long fast = tls_qmac_fast();
#define Q(ctx, name, propq, md, params, out, outsize)                          \
    EVP_Q_mac(ctx, name, propq, md, params, key, sizeof(key), msg,             \
              sizeof(msg), out, outsize, &len)
    /* unarmed */
    assert_ptr_equal(
        Q(tls_libctx(), "HMAC", NULL, "SHA256", NULL, got, sizeof(got)), got);
    assert_memory_equal(got, want, wl);
    tls_qmac_arm(true);
    /* the default context */
    assert_ptr_equal(Q(NULL, "HMAC", NULL, "SHA256", NULL, got, sizeof(got)),
                     got);
    assert_memory_equal(got, want, wl);
    /* a property query, as an argument or a parameter */
    memset(got, 0, sizeof(got));
    assert_ptr_equal(Q(tls_libctx(), "HMAC", "provider=default", "SHA256", NULL,
                       got, sizeof(got)),
                     got);
    assert_memory_equal(got, want, wl);
    OSSL_PARAM props[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_ALG_PARAM_PROPERTIES,
                                         "provider=default", 0),
        OSSL_PARAM_construct_end(),
    };
    memset(got, 0, sizeof(got));
    assert_ptr_equal(
        Q(tls_libctx(), "HMAC", NULL, "SHA256", props, got, sizeof(got)), got);
    assert_memory_equal(got, want, wl);
    /* another digest: SHA-512 */
    unsigned char w512[EVP_MAX_MD_SIZE];
    size_t l512 = reference("SHA512", key, sizeof(key), msg, sizeof(msg), w512);
    assert_ptr_equal(
        Q(tls_libctx(), "HMAC", NULL, "SHA512", NULL, got, sizeof(got)), got);
    assert_int_equal(len, l512);
    assert_memory_equal(got, w512, l512);
    /* another MAC: GMAC is not HMAC (refused by libcrypto for want of a
     * cipher), nor is a MAC without a digest */
    assert_null(
        Q(tls_libctx(), "GMAC", NULL, "SHA256", NULL, got, sizeof(got)));
    /* no room for the output: libcrypto fails */
    assert_null(Q(tls_libctx(), "HMAC", NULL, "SHA256", NULL, got, wl - 1));
    /* no output buffer: libcrypto allocates one */
    unsigned char *alloc =
        Q(tls_libctx(), "HMAC", NULL, "SHA256", NULL, NULL, 0);
    assert_non_null(alloc);
    assert_memory_equal(alloc, want, wl);
    OPENSSL_free(alloc);
#undef Q
    assert_int_equal(tls_qmac_fast(), fast);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_matches_libcrypto, teardown_each),
        cmocka_unit_test_teardown(test_passthrough, teardown_each),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
