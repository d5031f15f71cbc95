/*
 * Unit tests of TLS 1.3's Finished MACs (tls/qmac.c).
 *
 * Armed, EVP_Q_mac's HMAC with SHA-256 or SHA-384 on the listener library
 * context is computed by hkdf.c: the same bytes as libcrypto's HMAC for
 * random keys (shorter and longer than a hash block) and messages (empty
 * too), under each digest name libssl may pass. Unarmed, on another
 * context, for another MAC or digest, with a property query, without an
 * output buffer or with one too small, libcrypto's own function answers.
 * The same for the PSK binder's HMAC through EVP_DigestSign with an HMAC
 * key made in the step: libcrypto's bytes (a message longer than a
 * binder's handed to libcrypto midway); a key made before the step, a
 * key that signed once, another context or digest, an EVP_PKEY_CTX asked
 * for: libcrypto's. (Through libssl: test_parsecache.c's resumptions, and
 * every TLS 1.3 integration test.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
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
#include "tlssetup.h"

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

/* HMAC(key, msg) through EVP_DigestSign with an HMAC key, as libssl makes
 * a PSK binder; *fast: whether qmac.c computed it. */
static size_t
binder(OSSL_LIB_CTX *lib, const char *md, const unsigned char *key,
       size_t keylen, const unsigned char *msg, size_t msglen, size_t split,
       unsigned char *out, bool *fast)
{
    unsigned long f0 = tls_qmac_fast();
    EVP_PKEY *k =
        EVP_PKEY_new_raw_private_key_ex(lib, "HMAC", NULL, key, keylen);
    assert_non_null(k);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    size_t len = 0;
    assert_int_equal(EVP_DigestSignInit_ex(c, NULL, md, lib, NULL, k, NULL), 1);
    assert_int_equal(EVP_DigestSignUpdate(c, msg, split), 1);
    assert_int_equal(EVP_DigestSignUpdate(c, msg + split, msglen - split), 1);
    assert_int_equal(EVP_DigestSignFinal(c, NULL, &len), 1);
    assert_true(len <= EVP_MAX_MD_SIZE);
    assert_int_equal(EVP_DigestSignFinal(c, out, &len), 1);
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(k);
    *fast = tls_qmac_fast() != f0;
    return len;
}

/* Binder MACs, armed: libcrypto's bytes, computed here; a message longer
 * than a binder's goes to libcrypto midway, with the same result. */
static void
test_binder_matches_libcrypto(void **state)
{
    (void)state;
    tls_qmac_arm(true);
    for (int i = 0; i < 1000; i++) {
        const char *md = i % 2 ? "SHA384" : "SHA256";
        unsigned char key[64], msg[400], want[EVP_MAX_MD_SIZE],
            got[EVP_MAX_MD_SIZE];
        size_t keylen = 1 + rand_below(sizeof(key));
        size_t msglen =
            i % 10 == 0 ? 129 + rand_below(sizeof(msg) - 128) : rand_below(129);
        assert_int_equal(RAND_bytes(key, (int)keylen), 1);
        assert_int_equal(RAND_bytes(msg, (int)sizeof(msg)), 1);
        size_t split = rand_below(msglen + 1);
        size_t wl = reference(md, key, keylen, msg, msglen, want);
        bool fast = false;
        size_t gl = binder(tls_libctx(), md, key, keylen, msg, msglen, split,
                           got, &fast);
        assert_int_equal(gl, wl);
        assert_memory_equal(got, want, wl);
        assert_int_equal(fast, msglen <= 128);
    }
}

/* What libcrypto keeps: the same bytes, none computed here. */
static void
test_binder_passthrough(void **state)
{
    (void)state;
    unsigned char key[32], msg[32], want[EVP_MAX_MD_SIZE], got[EVP_MAX_MD_SIZE];
    memset(key, 0x0c, sizeof(key));
    memset(msg, 0x17, sizeof(msg));
    size_t wl = reference("SHA256", key, sizeof(key), msg, sizeof(msg), want);
    bool fast = true;
    /* unarmed */
    binder(tls_libctx(), "SHA256", key, sizeof(key), msg, sizeof(msg), 5, got,
           &fast);
    assert_false(fast);
    assert_memory_equal(got, want, wl);
    tls_qmac_arm(true);
    /* the default context */
    binder(NULL, "SHA256", key, sizeof(key), msg, sizeof(msg), 5, got, &fast);
    assert_false(fast);
    assert_memory_equal(got, want, wl);
    /* another digest */
    unsigned char w512[EVP_MAX_MD_SIZE];
    size_t l512 = reference("SHA512", key, sizeof(key), msg, sizeof(msg), w512);
    assert_int_equal(binder(tls_libctx(), "SHA512", key, sizeof(key), msg,
                            sizeof(msg), 5, got, &fast),
                     l512);
    assert_false(fast);
    assert_memory_equal(got, w512, l512);
    /* a key made before the step, and a key that signed once already */
    tls_qmac_arm(false);
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key_ex(tls_libctx(), "HMAC", NULL,
                                                  key, sizeof(key));
    tls_qmac_arm(true);
    EVP_PKEY *k2 = EVP_PKEY_new_raw_private_key_ex(tls_libctx(), "HMAC", NULL,
                                                   key, sizeof(key));
    for (int i = 0; i < 3; i++) {
        EVP_PKEY *use = i == 0 ? k : k2;
        unsigned long f0 = tls_qmac_fast();
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        size_t len = sizeof(got);
        assert_int_equal(EVP_DigestSignInit_ex(c, NULL, "SHA256", tls_libctx(),
                                               NULL, use, NULL),
                         1);
        assert_int_equal(EVP_DigestSignUpdate(c, msg, sizeof(msg)), 1);
        assert_int_equal(EVP_DigestSignFinal(c, got, &len), 1);
        EVP_MD_CTX_free(c);
        assert_int_equal(len, wl);
        assert_memory_equal(got, want, wl);
        /* k: not noted; k2: computed here once (i == 1), then libcrypto */
        assert_int_equal(tls_qmac_fast() - f0, i == 1 ? 1 : 0);
    }
    EVP_PKEY_free(k);
    EVP_PKEY_free(k2);
    /* an EVP_PKEY_CTX asked for: libcrypto's context, which gives one */
    k = EVP_PKEY_new_raw_private_key_ex(tls_libctx(), "HMAC", NULL, key,
                                        sizeof(key));
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    size_t len = sizeof(got);
    unsigned long f0 = tls_qmac_fast();
    assert_int_equal(
        EVP_DigestSignInit_ex(c, &pc, "SHA256", tls_libctx(), NULL, k, NULL),
        1);
    assert_non_null(pc);
    assert_int_equal(EVP_DigestSignUpdate(c, msg, sizeof(msg)), 1);
    assert_int_equal(EVP_DigestSignFinal(c, got, &len), 1);
    assert_memory_equal(got, want, wl);
    assert_int_equal(tls_qmac_fast(), f0);
    EVP_MD_CTX_free(c);
    /* a buffer too small is refused */
    c = EVP_MD_CTX_new();
    assert_int_equal(
        EVP_DigestSignInit_ex(c, NULL, "SHA256", tls_libctx(), NULL, k, NULL),
        1);
    assert_int_equal(EVP_DigestSignUpdate(c, msg, sizeof(msg)), 1);
    len = wl - 1;
    assert_int_equal(EVP_DigestSignFinal(c, got, &len), 0);
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(k);
    /* a key made in a step is empty until libcrypto needs it: used after
     * the step (its bytes wiped), it is refused, not used empty */
    k = EVP_PKEY_new_raw_private_key_ex(tls_libctx(), "HMAC", NULL, key,
                                        sizeof(key));
    tls_qmac_arm(false);
    assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_NONE);
    c = EVP_MD_CTX_new();
    assert_true(EVP_DigestSignInit_ex(c, NULL, "SHA256", tls_libctx(), NULL, k,
                                      NULL) <= 0);
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(k);
    /* freed in the step, then made again: each key its own bytes */
    tls_qmac_arm(true);
    unsigned char key2[32], w2[EVP_MAX_MD_SIZE];
    memset(key2, 0x5a, sizeof(key2));
    size_t wl2 = reference("SHA256", key2, sizeof(key2), msg, sizeof(msg), w2);
    for (int i = 0; i < 4; i++) {
        bool f = false;
        const unsigned char *kb = i % 2 ? key2 : key;
        binder(tls_libctx(), "SHA256", kb, sizeof(key), msg, sizeof(msg), 3,
               got, &f);
        assert_true(f);
        assert_memory_equal(got, i % 2 ? w2 : want, i % 2 ? wl2 : wl);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_matches_libcrypto, teardown_each),
        cmocka_unit_test_teardown(test_passthrough, teardown_each),
        cmocka_unit_test_teardown(test_binder_matches_libcrypto, teardown_each),
        cmocka_unit_test_teardown(test_binder_passthrough, teardown_each),
    };
    return cmocka_run_group_tests(tests, tls_setup, NULL);
}
