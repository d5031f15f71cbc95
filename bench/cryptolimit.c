/*
 * bench/cryptolimit: the physical limit of a full mTLS TLS 1.3 handshake
 * on the server side, from the public-key operations it cannot avoid:
 *   one ECDSA P-256 sign      (the server's CertificateVerify)
 *   two ECDSA P-256 verifies  (the client certificate's signature by the
 *                              CA, and the client's CertificateVerify)
 *   one X25519 key generation and one derive (the key share)
 * Each runs through the EVP APIs libssl uses, with the keys already
 * decoded, and is timed in this thread's CPU time (so other load on the
 * machine does not count). Prints one JSON line with microseconds per
 * operation and the handshakes-per-CPU-second bound.
 *
 * usage: cryptolimit [SECONDS_PER_OPERATION]   (default 1)
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* The signed content of a TLS 1.3 CertificateVerify is 64 spaces, a
 * 33-byte context string, a zero byte and a SHA-256 transcript hash. */
#define CV_LEN 130

struct bench {
    EVP_PKEY *ec;     /* P-256 key pair */
    EVP_PKEY *ec_pub; /* its public half alone, as a peer's key is */
    EVP_PKEY *peer;   /* the client's X25519 key share */
    unsigned char msg[CV_LEN];
    unsigned char sig[80];
    size_t siglen;
};

typedef void op_fn(struct bench *b);

static void
die(const char *what)
{
    char buf[256] = "";

    ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
    fprintf(stderr, "cryptolimit: %s failed (SSL: %s)\n", what, buf);
    exit(1);
}

static double
cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ECDSA P-256 sign of the CertificateVerify content (SHA-256). */
static void
op_sign(struct bench *b)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();

    b->siglen = sizeof(b->sig);
    if (m == NULL ||
        EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, b->ec) != 1 ||
        EVP_DigestSign(m, b->sig, &b->siglen, b->msg, CV_LEN) != 1)
        die("EVP_DigestSign()");
    EVP_MD_CTX_free(m);
}

/* ECDSA P-256 verify (SHA-256) with a public-only key. A certificate's
 * signature is checked the same way over its TBSCertificate (a few
 * hundred bytes: a microsecond more of SHA-256). */
static void
op_verify(struct bench *b)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();

    if (m == NULL ||
        EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, b->ec_pub) != 1 ||
        EVP_DigestVerify(m, b->sig, b->siglen, b->msg, CV_LEN) != 1)
        die("EVP_DigestVerify()");
    EVP_MD_CTX_free(m);
}

/* X25519: a fresh key pair and the shared secret with the peer's share. */
static void
op_x25519(struct bench *b)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    EVP_PKEY_CTX *d = k ? EVP_PKEY_CTX_new(k, NULL) : NULL;
    unsigned char secret[32];
    size_t len = sizeof(secret);

    if (d == NULL || EVP_PKEY_derive_init(d) != 1 ||
        EVP_PKEY_derive_set_peer(d, b->peer) != 1 ||
        EVP_PKEY_derive(d, secret, &len) != 1)
        die("X25519 keygen + derive");
    EVP_PKEY_CTX_free(d);
    EVP_PKEY_free(k);
}

/* Runs op repeatedly for about secs of CPU time; returns us per call. */
static double
time_op(op_fn *op, struct bench *b, double secs)
{
    long n = 0;
    double t0, t;

    for (int i = 0; i < 16; i++) /* warm caches and lazy provider setup */
        op(b);
    t0 = cpu_now();
    do {
        for (int i = 0; i < 32; i++)
            op(b);
        n += 32;
        t = cpu_now() - t0;
    } while (t < secs);
    return t / (double)n * 1e6;
}

/* Makes the keys and a valid signature for op_verify. */
static void
bench_init(struct bench *b)
{
    unsigned char der[128], *p = der;
    const unsigned char *q = der;
    int len;

    for (size_t i = 0; i < sizeof(b->msg); i++)
        b->msg[i] = (unsigned char)(i < 64 ? ' ' : i * 7);
    b->ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    b->peer = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    if (b->ec == NULL || b->peer == NULL)
        die("EVP_PKEY_Q_keygen()");
    len = i2d_PUBKEY(b->ec, NULL);
    assert(len > 0 && (size_t)len <= sizeof(der));
    if (i2d_PUBKEY(b->ec, &p) != len ||
        (b->ec_pub = d2i_PUBKEY(NULL, &q, len)) == NULL)
        die("i2d_PUBKEY() / d2i_PUBKEY()");
    op_sign(b);
}

int
main(int argc, char **argv)
{
    struct bench b = {0};
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    double sign, verify, x25519, hs;

    if (secs <= 0)
        secs = 1.0;
    bench_init(&b);
    sign = time_op(op_sign, &b, secs);
    verify = time_op(op_verify, &b, secs);
    x25519 = time_op(op_x25519, &b, secs);
    hs = sign + 2 * verify + x25519;
    printf("{\"sign_us\":%.1f,\"verify_us\":%.1f,\"x25519_us\":%.1f,"
           "\"handshake_us\":%.1f,\"handshakes_per_s\":%.0f}\n",
           sign, verify, x25519, hs, 1e6 / hs);
    EVP_PKEY_free(b.ec);
    EVP_PKEY_free(b.ec_pub);
    EVP_PKEY_free(b.peer);
    return 0;
}
