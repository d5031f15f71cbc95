/*
 * Unit tests of the parsed-certificate cache (tls/parsecache.c).
 *
 * d2i_X509 as the handshake calls it (armed, into an object of the
 * caller's): byte-equal input gives the object parsed before (a new
 * reference), *in moves past the certificate only, trailing bytes stay;
 * input that differs in one byte, truncated or malformed input, and every
 * call that is not armed or has no object to reuse, is libcrypto's parse
 * (same result, nothing cached). Many certificates: entries are replaced
 * and every parse still gives its own certificate.
 *
 * Through libssl, in memory: a server context in the listener library
 * context verifying client certificates; a client sending its leaf and
 * CA. The first handshake parses both (two misses), the next ones reuse
 * them (the same peer object); a client whose CA the server does not
 * trust is still refused on every handshake, while its certificates come
 * from the cache. The fetch memo (fetchmemo.c) is armed with it: libssl's
 * and libcrypto's fetches reach it, and a repeated handshake fetches
 * nothing new. So are the key tables (hotkeys.c): after 1024 handshakes
 * the client's and its CA's keys verify from tables, the handshakes still
 * succeed and the untrusted client is still refused. And TLS 1.3's
 * Finished MACs (qmac.c): the server's and the client's of each
 * handshake computed there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "testcert.h"
#include "tls/tls.h"
#include "tls/tls_int.h"

struct pki {
    EVP_PKEY *ca_key, *leaf_key, *other_key, *srv_key;
    X509 *ca, *leaf, *other_ca, *other_leaf, *srv;
};

static int
setup(void **state)
{
    tls_global_init();
    struct pki *p = calloc(1, sizeof(*p));
    p->ca_key = testcert_key();
    p->ca = testcert_new(&(struct testcert){
        .cn = "Parse CA", .key = p->ca_key, .ca = true, .nb = -60, .na = 3600});
    p->leaf_key = testcert_key();
    p->leaf = testcert_new(&(struct testcert){.cn = "device-1",
                                              .key = p->leaf_key,
                                              .issuer = p->ca,
                                              .ikey = p->ca_key,
                                              .nb = -60,
                                              .na = 3600});
    p->other_key = testcert_key();
    p->other_ca = testcert_new(&(struct testcert){.cn = "Other CA",
                                                  .key = p->other_key,
                                                  .ca = true,
                                                  .nb = -60,
                                                  .na = 3600});
    p->other_leaf = testcert_new(&(struct testcert){.cn = "device-1",
                                                    .key = p->leaf_key,
                                                    .issuer = p->other_ca,
                                                    .ikey = p->other_key,
                                                    .nb = -60,
                                                    .na = 3600});
    p->srv_key = testcert_key();
    p->srv = testcert_new(&(struct testcert){.cn = "server",
                                             .key = p->srv_key,
                                             .issuer = p->ca,
                                             .ikey = p->ca_key,
                                             .nb = -60,
                                             .na = 3600});
    *state = p;
    return 0;
}

static int
teardown(void **state)
{
    struct pki *p = *state;
    X509 *xs[] = {p->ca, p->leaf, p->other_ca, p->other_leaf, p->srv};
    for (size_t i = 0; i < sizeof(xs) / sizeof(xs[0]); i++)
        X509_free(xs[i]);
    EVP_PKEY_free(p->ca_key);
    EVP_PKEY_free(p->leaf_key);
    EVP_PKEY_free(p->other_key);
    EVP_PKEY_free(p->srv_key);
    free(p);
    tls_parsecache_thread_free();
    return 0;
}

static struct tls_parsecache_stats
stats(void)
{
    struct tls_parsecache_stats s;
    tls_parsecache_stats(&s);
    return s;
}

/* DER of x followed by `extra` trailing bytes. */
static unsigned char *
der_of(X509 *x, size_t extra, size_t *len)
{
    int n = i2d_X509(x, NULL);
    assert_true(n > 0);
    unsigned char *buf = calloc(1, (size_t)n + extra + 1), *p = buf;
    assert_int_equal(i2d_X509(x, &p), n);
    memset(buf + n, 0x30, extra);
    *len = (size_t)n;
    return buf;
}

/* d2i_X509 as libssl calls it: into a fresh object, armed or not. */
static X509 *
parse(const unsigned char *der, long len, bool arm, const unsigned char **end)
{
    X509 *x = X509_new_ex(NULL, NULL);
    const unsigned char *p = der;
    tls_parsecache_arm(arm);
    X509 *r = d2i_X509(&x, &p, len);
    tls_parsecache_arm(false);
    assert_ptr_equal(r, x);
    if (end != NULL)
        *end = p;
    ERR_clear_error();
    return r;
}

static void
test_same_bytes(void **state)
{
    struct pki *p = *state;
    tls_parsecache_thread_free();
    size_t n;
    unsigned char *der = der_of(p->leaf, 7, &n);
    const unsigned char *end;
    X509 *a = parse(der, (long)n + 7, true, &end);
    assert_non_null(a);
    assert_ptr_equal(end, der + n);
    assert_int_equal(stats().misses, 1);
    assert_int_equal(stats().inserts, 1);
    X509 *b = parse(der, (long)n + 7, true, &end);
    assert_ptr_equal(b, a); /* the object parsed before */
    assert_ptr_equal(end, der + n);
    assert_int_equal(stats().hits, 1);
    assert_int_equal(X509_cmp(b, p->leaf), 0);
    /* Exactly as long as the certificate: a hit too. */
    X509 *c = parse(der, (long)n, true, &end);
    assert_ptr_equal(c, a);
    assert_int_equal(stats().hits, 2);
    /* the SHA-256 of those bytes, for the chain cache's key; none for an
     * object the cache does not hold */
    unsigned char want[32], got[32];
    SHA256(der, n, want);
    assert_true(tls_parsecache_sha256(a, got));
    assert_memory_equal(got, want, 32);
    assert_false(tls_parsecache_sha256(p->leaf, got));
    assert_false(tls_parsecache_sha256(NULL, got));
    X509_free(b);
    X509_free(c);
    tls_parsecache_thread_free(); /* the cache gone, a is only ours */
    assert_false(tls_parsecache_sha256(a, got));
    X509_free(a);
    free(der);
}

static void
test_not_cached(void **state)
{
    struct pki *p = *state;
    tls_parsecache_thread_free();
    size_t n;
    unsigned char *der = der_of(p->ca, 0, &n);
    X509 *a = parse(der, (long)n, true, NULL);
    assert_non_null(a);
    /* Not armed: libcrypto's parse, a new object. */
    X509 *b = parse(der, (long)n, false, NULL);
    assert_non_null(b);
    assert_ptr_not_equal(b, a);
    assert_int_equal(X509_cmp(a, b), 0);
    /* No object to reuse: libcrypto's parse. */
    const unsigned char *q = der;
    tls_parsecache_arm(true);
    X509 *c = d2i_X509(NULL, &q, (long)n);
    tls_parsecache_arm(false);
    assert_non_null(c);
    assert_ptr_not_equal(c, a);
    struct tls_parsecache_stats s = stats();
    assert_int_equal(s.misses + s.hits, 1);
    /* One byte different (in the signature): another certificate. */
    der[n - 3] ^= 0x01;
    X509 *d = parse(der, (long)n, true, NULL);
    assert_non_null(d);
    assert_ptr_not_equal(d, a);
    assert_int_not_equal(X509_cmp(d, a), 0);
    der[n - 3] ^= 0x01;
    /* Truncated: refused, as libcrypto refuses it. */
    assert_null(parse(der, (long)n - 1, true, NULL));
    assert_null(parse(der, (long)n - 1, false, NULL));
    /* A wrong inner length: refused either way. */
    der[5] ^= 0x40;
    assert_null(parse(der, (long)n, true, NULL));
    assert_null(parse(der, (long)n, false, NULL));
    der[5] ^= 0x40;
    assert_int_equal(stats().hits, 0);
    /* The good bytes still hit. */
    X509 *e = parse(der, (long)n, true, NULL);
    assert_ptr_equal(e, a);
    X509 *xs[] = {a, b, c, d, e};
    for (size_t i = 0; i < 5; i++)
        X509_free(xs[i]);
    free(der);
}

static void
test_many(void **state)
{
    struct pki *p = *state;
    tls_parsecache_thread_free();
    enum { N = 300 };
    X509 **certs = calloc(N, sizeof(*certs));
    for (int i = 0; i < N; i++) {
        char cn[32];
        snprintf(cn, sizeof(cn), "device-%d", i);
        certs[i] = testcert_new(&(struct testcert){.cn = cn,
                                                   .key = p->leaf_key,
                                                   .issuer = p->ca,
                                                   .ikey = p->ca_key,
                                                   .nb = -60,
                                                   .na = 3600});
    }
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            size_t n;
            unsigned char *der = der_of(certs[i], 0, &n);
            X509 *x = parse(der, (long)n, true, NULL);
            assert_non_null(x);
            assert_int_equal(X509_cmp(x, certs[i]), 0);
            X509_free(x);
            free(der);
        }
    }
    struct tls_parsecache_stats s = stats();
    assert_int_equal(s.hits + s.misses, 2 * N);
    assert_true(s.evictions > 0);
    assert_int_equal(s.inserts, s.misses);
    for (int i = 0; i < N; i++)
        X509_free(certs[i]);
    free(certs);
}

static SSL_CTX *
server_ctx(struct pki *p)
{
    SSL_CTX *s = SSL_CTX_new_ex(tls_libctx(), NULL, TLS_server_method());
    assert_non_null(s);
    assert_int_equal(SSL_CTX_use_certificate(s, p->srv), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(s, p->srv_key), 1);
    X509_STORE *st = SSL_CTX_get_cert_store(s);
    assert_int_equal(X509_STORE_add_cert(st, p->ca), 1);
    SSL_CTX_set_verify(s, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
    SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(s, 0);
    return s;
}

static SSL_CTX *
client_ctx(X509 *leaf, EVP_PKEY *key, X509 *ca)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    assert_non_null(c);
    assert_int_equal(SSL_CTX_use_certificate(c, leaf), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(c, key), 1);
    assert_int_equal(SSL_CTX_add1_chain_cert(c, ca), 1);
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
    return c;
}

/* One handshake in memory; true when both sides completed. *peer: the
 * server's peer certificate (a reference), *verify its result. With
 * resume: the client offers that session; *next (if not NULL) gets the
 * session the server's ticket gave, *reused whether the server resumed. */
static bool
handshake_sess(SSL_CTX *sctx, SSL_CTX *cctx, X509 **peer, long *verify,
               SSL_SESSION *resume, SSL_SESSION **next, bool *reused)
{
    SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
    BIO *sb = NULL, *cb = NULL;
    assert_int_equal(BIO_new_bio_pair(&sb, 0, &cb, 0), 1);
    SSL_set_bio(s, sb, sb);
    SSL_set_bio(c, cb, cb);
    SSL_set_accept_state(s);
    SSL_set_connect_state(c);
    if (resume != NULL)
        assert_int_equal(SSL_set_session(c, resume), 1);
    int rs = 0, rc = 0;
    for (int i = 0; i < 20 && (rs != 1 || rc != 1); i++) {
        rc = SSL_do_handshake(c);
        tls_parsecache_arm(true);
        tls_fetchmemo_arm(true);
        tls_hotkeys_arm(true);
        tls_keyshare_arm(true);
        tls_qmac_arm(true);
        rs = SSL_do_handshake(s);
        tls_parsecache_arm(false);
        tls_fetchmemo_arm(false);
        tls_hotkeys_arm(false);
        tls_keyshare_arm(false);
        tls_qmac_arm(false);
        if (rs <= 0 && SSL_get_error(s, rs) != SSL_ERROR_WANT_READ)
            break;
    }
    if (next != NULL) {
        unsigned char b;
        (void)SSL_read(c, &b, 1); /* takes the ticket */
        *next = SSL_get1_session(c);
    }
    if (reused != NULL)
        *reused = SSL_session_reused(s) == 1;
    *peer = SSL_get1_peer_certificate(s);
    *verify = SSL_get_verify_result(s);
    if (rs == 1 && rc == 1) { /* as conn.c: the session stays resumable */
        SSL_set_shutdown(s, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        SSL_set_shutdown(c, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    }
    SSL_free(s);
    SSL_free(c);
    ERR_clear_error();
    return rs == 1;
}

static bool
handshake(SSL_CTX *sctx, SSL_CTX *cctx, X509 **peer, long *verify)
{
    return handshake_sess(sctx, cctx, peer, verify, NULL, NULL, NULL);
}

/* TLS 1.3 resumption (a stateful ticket): the client's PSK binder is checked by
 * qmac.c's HMAC (and both Finished MACs); a client whose PSK is not the
 * ticket's (its binder made with another key) is refused. */
static void
test_resumption_binder(void **state)
{
    struct pki *p = *state;
    SSL_CTX *sctx = server_ctx(p);
    /* stateful tickets, as certgate's (sessions.c) */
    SSL_CTX_set_session_cache_mode(sctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_options(sctx, SSL_OP_NO_TICKET);
    assert_int_equal(
        SSL_CTX_set_session_id_context(sctx, (const unsigned char *)"pc", 2),
        1);
    SSL_CTX_set_num_tickets(sctx, 1);
    SSL_CTX *cctx = client_ctx(p->leaf, p->leaf_key, p->ca);
    X509 *peer = NULL;
    long v = -1;
    SSL_SESSION *sess = NULL, *next = NULL;
    bool reused = true;
    assert_true(handshake_sess(sctx, cctx, &peer, &v, NULL, &sess, &reused));
    X509_free(peer);
    assert_false(reused);
    assert_non_null(sess);
    for (int i = 0; i < 3; i++) {
        unsigned long q0 = tls_qmac_fast();
        assert_true(
            handshake_sess(sctx, cctx, &peer, &v, sess, &next, &reused));
        X509_free(peer);
        assert_true(reused);
        assert_int_equal(tls_qmac_fast() - q0, 3); /* binder, 2 Finished */
        SSL_SESSION_free(sess);
        sess = next;
    }
    /* the same ticket, another PSK: the binder does not verify */
    unsigned char mk[SSL_MAX_MASTER_KEY_LENGTH];
    size_t mkl = SSL_SESSION_get_master_key(sess, mk, sizeof(mk));
    assert_true(mkl > 0);
    mk[0] ^= 1;
    assert_int_equal(SSL_SESSION_set1_master_key(sess, mk, mkl), 1);
    unsigned long q0 = tls_qmac_fast();
    assert_false(handshake_sess(sctx, cctx, &peer, &v, sess, NULL, &reused));
    X509_free(peer);
    assert_int_equal(tls_qmac_fast() - q0, 1); /* the binder, refused */
    SSL_SESSION_free(sess);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}

static void
test_handshakes(void **state)
{
    struct pki *p = *state;
    tls_parsecache_thread_free();
    tls_fetchmemo_thread_free();
    SSL_CTX *sctx = server_ctx(p);
    SSL_CTX *good = client_ctx(p->leaf, p->leaf_key, p->ca);
    X509 *first = NULL, *peer = NULL;
    long v = -1;
    assert_true(handshake(sctx, good, &first, &v));
    assert_int_equal(v, X509_V_OK);
    assert_int_equal(X509_cmp(first, p->leaf), 0);
    struct tls_parsecache_stats s = stats();
    assert_int_equal(s.misses, 2); /* leaf and CA */
    assert_int_equal(s.hits, 0);
    /* libssl's and libcrypto's fetches reach the memo (fetchmemo.c) */
    struct tls_fetchmemo_stats f0;
    tls_fetchmemo_stats(&f0);
    assert_true(f0.kept > 5);
    unsigned long q0 = tls_qmac_fast();
    for (int i = 0; i < 3; i++) {
        assert_true(handshake(sctx, good, &peer, &v));
        assert_int_equal(v, X509_V_OK);
        assert_ptr_equal(peer, first); /* the same parsed certificate */
        X509_free(peer);
    }
    s = stats();
    assert_int_equal(s.hits, 6);
    /* both Finished MACs of each computed by qmac.c */
    assert_int_equal(tls_qmac_fast() - q0, 6);
    /* the same handshake again fetches nothing new */
    struct tls_fetchmemo_stats f1;
    tls_fetchmemo_stats(&f1);
    assert_int_equal(f1.misses, f0.misses);
    assert_int_equal(f1.kept, f0.kept);
    assert_true(f1.hits >= f0.hits + 3 * f0.kept);
    /* A client the server does not trust: refused every time, its
     * certificates parsed once. */
    SSL_CTX *bad = client_ctx(p->other_leaf, p->leaf_key, p->other_ca);
    for (int i = 0; i < 2; i++) {
        assert_false(handshake(sctx, bad, &peer, &v));
        assert_int_not_equal(v, X509_V_OK);
        X509_free(peer);
    }
    s = stats();
    assert_int_equal(s.misses, 4);
    assert_int_equal(s.hits, 8);
    /* The trusted client is still accepted. */
    assert_true(handshake(sctx, good, &peer, &v));
    assert_ptr_equal(peer, first);
    X509_free(peer);
    X509_free(first);
    SSL_CTX_free(bad);
    SSL_CTX_free(good);
    SSL_CTX_free(sctx);
    tls_fetchmemo_thread_free();
}

/* The keys libssl verifies with on every handshake (the client's, for
 * its CertificateVerify; its CA's, for the chain) get tables
 * (hotkeys.c) after 1024 handshakes; the handshakes that follow verify
 * from them and still succeed, and the untrusted client is still
 * refused. */
static void
test_hot_keys(void **state)
{
    struct pki *p = *state;
    tls_hotkeys_thread_free();
    SSL_CTX *sctx = server_ctx(p);
    SSL_CTX *good = client_ctx(p->leaf, p->leaf_key, p->ca);
    SSL_CTX *bad = client_ctx(p->other_leaf, p->leaf_key, p->other_ca);
    X509 *peer = NULL;
    long v = -1;
    for (int i = 0; i < 1024 + 64; i++) {
        assert_true(handshake(sctx, good, &peer, &v));
        X509_free(peer);
    }
    tls_hotkeys_wait();
    struct tls_hotkeys_stats h0;
    tls_hotkeys_stats(&h0);
    assert_int_equal(h0.builds, 2);
    assert_int_equal(h0.tables, 2);
    for (int i = 0; i < 10; i++) {
        assert_true(handshake(sctx, good, &peer, &v));
        assert_int_equal(v, X509_V_OK);
        X509_free(peer);
        assert_false(handshake(sctx, bad, &peer, &v));
        assert_int_not_equal(v, X509_V_OK);
        X509_free(peer);
    }
    struct tls_hotkeys_stats h1;
    tls_hotkeys_stats(&h1);
    assert_true(h1.fast >= h0.fast + 20);
    SSL_CTX_free(bad);
    SSL_CTX_free(good);
    SSL_CTX_free(sctx);
    tls_hotkeys_thread_free();
    tls_parsecache_thread_free();
    tls_fetchmemo_thread_free();
}

/* The server's X25519 key shares come from the pool (keyshare.c): TLS
 * 1.3 and TLS 1.2 (ECDHE) handshakes with an unarmed client, which
 * derives with libcrypto's own code, complete; the untrusted client is
 * still refused; a client that offers only P-256 gets libcrypto's key. */
static void
test_key_shares(void **state)
{
    struct pki *p = *state;
    tls_keyshare_thread_free();
    SSL_CTX *sctx = server_ctx(p);
    /* as certgate's listeners: no TLS 1.2 tickets (the window of
     * tls_libctx() has no AES-CBC for them) */
    SSL_CTX_set_options(sctx, SSL_OP_NO_TICKET);
    SSL_CTX *good = client_ctx(p->leaf, p->leaf_key, p->ca);
    SSL_CTX *bad = client_ctx(p->other_leaf, p->leaf_key, p->other_ca);
    X509 *peer = NULL;
    long v = -1;
    struct tls_keyshare_stats k;
    for (int tls12 = 0; tls12 < 2; tls12++) {
        if (tls12 == 1)
            assert_int_equal(
                SSL_CTX_set_max_proto_version(good, TLS1_2_VERSION), 1);
        for (int i = 0; i < 20; i++) {
            assert_true(handshake(sctx, good, &peer, &v));
            assert_int_equal(v, X509_V_OK);
            assert_int_equal(X509_cmp(peer, p->leaf), 0);
            X509_free(peer);
        }
        tls_keyshare_stats(&k);
        assert_int_equal(k.fast, 20 * (tls12 + 1));
    }
    assert_false(handshake(sctx, bad, &peer, &v));
    assert_int_not_equal(v, X509_V_OK);
    X509_free(peer);
    assert_int_equal(SSL_CTX_set1_groups_list(good, "P-256"), 1);
    assert_true(handshake(sctx, good, &peer, &v));
    X509_free(peer);
    struct tls_keyshare_stats k1;
    tls_keyshare_stats(&k1);
    assert_int_equal(k1.fast, k.fast + 1); /* only the refused one's */
    assert_int_equal(k1.fallbacks, 0);
    SSL_CTX_free(bad);
    SSL_CTX_free(good);
    SSL_CTX_free(sctx);
    tls_keyshare_thread_free();
    tls_parsecache_thread_free();
    tls_fetchmemo_thread_free();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_bytes),
        cmocka_unit_test(test_not_cached),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_handshakes),
        cmocka_unit_test(test_hot_keys),
        cmocka_unit_test(test_key_shares),
        cmocka_unit_test(test_resumption_binder),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
