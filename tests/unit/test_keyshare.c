/*
 * Unit tests of the X25519 key-share pool (tls/keyshare.c).
 *
 * The public keys it computes (Ed25519's fixed-base multiplication and
 * the birational map, one inversion per batch) are RFC 7748's for its
 * test keys and OpenSSL's for random, all-zero and all-one private keys,
 * in batches of every size. Armed, EVP_PKEY_keygen on an X25519 context
 * takes its pairs from the pool: clamped private keys, each pair once,
 * no two alike, public keys OpenSSL's for their private keys, and shared
 * secrets that agree with OpenSSL's own keys both ways. Unarmed, other key
 * types and a property query go to libcrypto. After a fork the child does
 * not reuse a pair its parent still holds. An X25519 peer key is set for
 * a derivation as libcrypto sets it, without its second context for the
 * public-key check. (Through libssl's handshakes:
 * test_parsecache.c.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "tls/tls.h"
#include "tls/tls_int.h"
#include "tlssetup.h"

#define LEN TLS_KEYSHARE_LEN

static int
teardown_each(void **state)
{
    (void)state;
    tls_keyshare_arm(false);
    tls_keyshare_thread_free();
    return 0;
}

static struct tls_keyshare_stats
stats(void)
{
    struct tls_keyshare_stats s;
    tls_keyshare_stats(&s);
    return s;
}

/* OpenSSL's X25519 public key of priv. */
static void
openssl_public(const unsigned char priv[LEN], unsigned char pub[LEN])
{
    EVP_PKEY *k =
        EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, LEN);
    assert_non_null(k);
    size_t n = LEN;
    assert_int_equal(EVP_PKEY_get_raw_public_key(k, pub, &n), 1);
    assert_int_equal(n, LEN);
    EVP_PKEY_free(k);
}

static void
hex(const char *s, unsigned char out[LEN])
{
    for (size_t i = 0; i < LEN; i++) {
        unsigned v = 0;
        assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
        out[i] = (unsigned char)v;
    }
}

static void
test_known_answers(void **state)
{
    (void)state;
    assert_true(tls_keyshare_ready());
    /* RFC 7748 section 6.1 */
    unsigned char priv[2][LEN], pub[2][LEN], want[LEN];
    hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        priv[0]);
    hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
        priv[1]);
    assert_true(tls_keyshare_publics(priv, pub, 2));
    hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
        want);
    assert_memory_equal(pub[0], want, LEN);
    hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
        want);
    assert_memory_equal(pub[1], want, LEN);
    /* no batch of 0 or over the pool's size */
    assert_false(tls_keyshare_publics(priv, pub, 0));
    unsigned char big[TLS_KEYSHARE_BATCH + 1][LEN];
    assert_false(tls_keyshare_publics(big, big, TLS_KEYSHARE_BATCH + 1));
}

/* Random private keys in batches of every size, and the extremes. */
static void
test_matches_openssl(void **state)
{
    (void)state;
    assert_true(tls_keyshare_ready());
    unsigned char priv[TLS_KEYSHARE_BATCH][LEN], orig[TLS_KEYSHARE_BATCH][LEN];
    unsigned char pub[TLS_KEYSHARE_BATCH][LEN], want[LEN];
    for (int round = 0; round < 600; round++) {
        size_t n = (size_t)round % TLS_KEYSHARE_BATCH + 1;
        assert_int_equal(RAND_bytes(&priv[0][0], sizeof(priv)), 1);
        if (round == 0)
            memset(priv, 0, sizeof(priv));
        if (round == 1)
            memset(priv, 0xff, sizeof(priv));
        memcpy(orig, priv, sizeof(priv));
        assert_true(tls_keyshare_publics(priv, pub, n));
        for (size_t i = 0; i < n; i++) {
            openssl_public(orig[i], want);
            assert_memory_equal(pub[i], want, LEN);
            /* clamped: what X25519 uses of the private key */
            assert_int_equal(priv[i][0] & 7, 0);
            assert_int_equal(priv[i][31] & 0xc0, 0x40);
        }
    }
}

static EVP_PKEY *
keygen(const char *alg, const char *propq)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, alg, propq);
    assert_non_null(c);
    assert_int_equal(EVP_PKEY_keygen_init(c), 1);
    if (strcmp(alg, "EC") == 0)
        assert_int_equal(EVP_PKEY_CTX_set_group_name(c, "P-256"), 1);
    EVP_PKEY *k = NULL;
    assert_int_equal(EVP_PKEY_keygen(c, &k), 1);
    EVP_PKEY_CTX_free(c);
    return k;
}

static void
raw(EVP_PKEY *k, unsigned char priv[LEN], unsigned char pub[LEN])
{
    size_t n = LEN;
    assert_int_equal(EVP_PKEY_get_raw_private_key(k, priv, &n), 1);
    n = LEN;
    assert_int_equal(EVP_PKEY_get_raw_public_key(k, pub, &n), 1);
}

static void
shared(EVP_PKEY *a, EVP_PKEY *b, unsigned char out[LEN])
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(a, NULL);
    size_t n = LEN;
    assert_non_null(c);
    assert_int_equal(EVP_PKEY_derive_init(c), 1);
    assert_int_equal(EVP_PKEY_derive_set_peer(c, b), 1);
    assert_int_equal(EVP_PKEY_derive(c, out, &n), 1);
    assert_int_equal(n, LEN);
    EVP_PKEY_CTX_free(c);
}

#define KEYS 100

static void
test_armed_keygen(void **state)
{
    (void)state;
    static unsigned char privs[KEYS][LEN], pubs[KEYS][LEN];
    unsigned char want[LEN];
    EVP_PKEY *own = keygen("X25519", NULL); /* unarmed: libcrypto's */
    assert_int_equal(stats().fast, 0);
    tls_keyshare_arm(true);
    for (int i = 0; i < KEYS; i++) {
        EVP_PKEY *k = keygen("X25519", NULL);
        raw(k, privs[i], pubs[i]);
        assert_int_equal(privs[i][0] & 7, 0);
        assert_int_equal(privs[i][31] & 0xc0, 0x40);
        openssl_public(privs[i], want);
        assert_memory_equal(pubs[i], want, LEN);
        for (int j = 0; j < i; j++) {
            assert_memory_not_equal(privs[i], privs[j], LEN);
            assert_memory_not_equal(pubs[i], pubs[j], LEN);
        }
        /* ECDH with libcrypto's own key agrees both ways */
        unsigned char s1[LEN], s2[LEN];
        shared(k, own, s1);
        shared(own, k, s2);
        assert_memory_equal(s1, s2, LEN);
        EVP_PKEY_free(k);
    }
    tls_keyshare_arm(false);
    struct tls_keyshare_stats s = stats();
    assert_int_equal(s.fast, KEYS);
    assert_int_equal(s.fallbacks, 0);
    size_t b = TLS_KEYSHARE_BATCH;
    assert_int_equal(s.batches, (KEYS + b - 1) / b);
    assert_int_equal(s.pooled, s.batches * b - KEYS);
    EVP_PKEY_free(own);
}

static void
test_not_intercepted(void **state)
{
    (void)state;
    /* unarmed */
    EVP_PKEY_free(keygen("X25519", NULL));
    tls_keyshare_arm(true);
    /* other key types, and X25519 with a property query */
    const char *algs[] = {"X448", "EC", "ED25519"};
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        EVP_PKEY *k = keygen(algs[i], NULL);
        assert_true(EVP_PKEY_is_a(k, algs[i]));
        EVP_PKEY_free(k);
    }
    EVP_PKEY *k = keygen("X25519", "provider=default");
    assert_true(EVP_PKEY_is_a(k, "X25519"));
    EVP_PKEY_free(k);
    tls_keyshare_arm(false);
    struct tls_keyshare_stats s = stats();
    assert_int_equal(s.fast, 0);
    assert_int_equal(s.batches, 0);
}

/* An X25519 peer key from its public value, as libssl makes the client's
 * key share (NULL: u is not accepted). */
static EVP_PKEY *
peer_of(const unsigned char u[LEN])
{
    return EVP_PKEY_new_raw_public_key_ex(tls_libctx(), "X25519", NULL, u, LEN);
}

/* rc of set_peer with k's context, and of the derive after it into out */
static int
derive_rc(EVP_PKEY *k, EVP_PKEY *peer, unsigned char out[LEN], int *drc)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(tls_libctx(), k, NULL);
    assert_non_null(c);
    assert_int_equal(EVP_PKEY_derive_init(c), 1);
    int rc = EVP_PKEY_derive_set_peer(c, peer);
    size_t n = LEN;
    memset(out, 0, LEN);
    *drc = rc > 0 ? EVP_PKEY_derive(c, out, &n) : -9;
    EVP_PKEY_CTX_free(c);
    return rc;
}

/* Armed, an X25519 peer key is set without libcrypto's second context;
 * what comes out is libcrypto's: the same secret; a low-order point
 * accepted and its all-zero secret refused; a key without a public value
 * (libssl never derives with one) refused too, at the derive rather than
 * at the check. An EC peer is libcrypto's own check. */
static void
test_peer_keys(void **state)
{
    (void)state;
    EVP_PKEY *own = keygen("X25519", NULL);
    unsigned char priv[LEN], pub[LEN], u[LEN];
    assert_int_equal(RAND_bytes(priv, LEN), 1);
    openssl_public(priv, pub);
    memset(u, 0, LEN); /* u = 0: a point of small order */
    EVP_PKEY *empty = NULL;
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(tls_libctx(), "X25519", NULL);
    assert_non_null(pc);
    assert_int_equal(EVP_PKEY_paramgen_init(pc), 1);
    assert_int_equal(EVP_PKEY_paramgen(pc, &empty), 1);
    EVP_PKEY_CTX_free(pc);
    EVP_PKEY *peers[] = {peer_of(pub), empty, peer_of(u)};
    for (size_t i = 0; i < 3; i++) {
        unsigned char want[LEN], got[LEN];
        int dw = 0, dg = 0;
        int rw = derive_rc(own, peers[i], want, &dw);
        uint64_t p0 = stats().peers;
        tls_keyshare_arm(true);
        int rg = derive_rc(own, peers[i], got, &dg);
        tls_keyshare_arm(false);
        assert_true(rg > 0); /* set here, each */
        assert_int_equal(rw > 0, i != 1);
        /* a secret only from the good key, both ways */
        assert_int_equal(dg > 0, i == 0);
        assert_int_equal(dw > 0, i == 0);
        assert_memory_equal(got, want, LEN);
        assert_int_equal(stats().peers - p0, 1);
        EVP_PKEY_free(peers[i]);
    }
    /* EC P-256: libcrypto's check */
    EVP_PKEY *ec1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *ec2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(ec1);
    assert_non_null(ec2);
    uint64_t p0 = stats().peers;
    unsigned char s[LEN];
    int d = 0;
    tls_keyshare_arm(true);
    assert_int_equal(derive_rc(ec1, ec2, s, &d), 1);
    tls_keyshare_arm(false);
    assert_int_equal(d, 1);
    assert_int_equal(stats().peers, p0);
    EVP_PKEY_free(ec1);
    EVP_PKEY_free(ec2);
    EVP_PKEY_free(own);
}

/* A child of a fork must not take the pairs its parent still holds: the
 * next pair of each differs. */
static void
test_fork(void **state)
{
    (void)state;
    unsigned char priv[LEN], pub[LEN], child[LEN];
    tls_keyshare_arm(true);
    EVP_PKEY_free(keygen("X25519", NULL));
    assert_int_equal(stats().pooled, TLS_KEYSHARE_BATCH - 1);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        EVP_PKEY *k = keygen("X25519", NULL);
        raw(k, priv, pub);
        struct tls_keyshare_stats s = stats();
        /* the inherited pool discarded, a new batch made */
        bool ok = s.batches == 2 && s.pooled == TLS_KEYSHARE_BATCH - 1;
        _exit(ok && write(fds[1], pub, LEN) == LEN ? 0 : 1);
    }
    close(fds[1]);
    EVP_PKEY *k = keygen("X25519", NULL);
    raw(k, priv, pub);
    EVP_PKEY_free(k);
    assert_int_equal(read(fds[0], child, LEN), LEN);
    close(fds[0]);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_memory_not_equal(pub, child, LEN);
    assert_int_equal(stats().pooled, TLS_KEYSHARE_BATCH - 2);
    tls_keyshare_arm(false);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_known_answers, teardown_each),
        cmocka_unit_test_teardown(test_matches_openssl, teardown_each),
        cmocka_unit_test_teardown(test_armed_keygen, teardown_each),
        cmocka_unit_test_teardown(test_not_intercepted, teardown_each),
        cmocka_unit_test_teardown(test_peer_keys, teardown_each),
        cmocka_unit_test_teardown(test_fork, teardown_each),
    };
    return cmocka_run_group_tests(tests, tls_setup, NULL);
}
