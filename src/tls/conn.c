/*
 * TLS connections over non-blocking sockets. The WANT_READ/WANT_WRITE
 * inversion is handled here once: callers only look at tls_conn_want().
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "tls/tls_int.h"

#define REASON_NAME(n) #n,
static const char *const reasons[] = {TLS_REASONS(REASON_NAME)};
#undef REASON_NAME

const char *
tls_reason_intern(const char *s, size_t len)
{
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        if (strlen(reasons[i]) == len && memcmp(reasons[i], s, len) == 0)
            return reasons[i];
    }
    return "invalid";
}

struct tls_conn *
tls_conn_of(const SSL *ssl)
{
    struct tls_conn *c = SSL_get_app_data(ssl);
    if (c == NULL || c->magic != TLS_CONN_MAGIC)
        abort();
    return c;
}

/* Notes whether each read() from the socket came back short (the
 * socket is then known empty, so a read before the next readiness event
 * would only return EAGAIN). */
static long
sock_bio_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl,
            int ret, size_t *processed)
{
    (void)argp;
    (void)argi;
    (void)argl;
    if (oper == (BIO_CB_READ | BIO_CB_RETURN)) {
        struct tls_conn *c = (struct tls_conn *)BIO_get_callback_arg(b);
        if (c != NULL)
            c->sock_short = ret > 0 && processed != NULL && *processed < len;
    }
    return ret;
}

static struct tls_conn *
conn_new(SSL_CTX *ctx, int fd, uint64_t id)
{
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL)
        return NULL;
    struct tls_conn *c = xcalloc(1, sizeof(*c));
    c->magic = TLS_CONN_MAGIC;
    c->ssl = ssl;
    c->id = id;
    c->verdict = (struct cg_verdict){CG_VERIFY_NONE, "no_cert"};
    SSL_set_app_data(ssl, c);
    if (SSL_set_fd(ssl, fd) != 1) {
        tls_conn_free(c);
        return NULL;
    }
    BIO *rbio = SSL_get_rbio(ssl);
    if (rbio != NULL) {
        BIO_set_callback_arg(rbio, (char *)c);
        BIO_set_callback_ex(rbio, sock_bio_cb);
    }
    return c;
}

struct tls_conn *
tls_conn_accept(struct tls_listener *l, int fd, uint64_t conn_id)
{
    struct tls_conn *c = conn_new(l->vh[0].ctx, fd, conn_id);
    if (c == NULL)
        return NULL;
    c->l = l;
    SSL_set_accept_state(c->ssl);
    return c;
}

/* Records OpenSSL's reason for a failed call into c->err. */
static void
conn_fail(struct tls_conn *c, const char *call, int sslerr)
{
    char q[200];
    tls_drain_errors(q, sizeof(q));
    if (sslerr == SSL_ERROR_SYSCALL || (sslerr == SSL_ERROR_SSL && !q[0]))
        snprintf(c->err, sizeof(c->err), "%s failed (%s)", call,
                 errno ? strerror(errno) : "connection closed by peer");
    else
        snprintf(c->err, sizeof(c->err), "%s failed (SSL: %s)", call,
                 q[0] ? q : "unknown");
}

/* Completes the identity and verdict once the handshake is done. */
static void
handshake_finish(struct tls_conn *c)
{
    c->handshake_done = true;
    if (c->l == NULL)
        return;
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    if (SSL_session_reused(c->ssl)) {
        if (peer != NULL && c->ident == NULL) {
            char err[CG_ERR_LEN];
            if (tls_identity_from_x509(peer, &c->ident, err) != 0)
                c->ident = NULL;
        }
    } else if (!c->verify_ran) {
        c->verdict = (struct cg_verdict){CG_VERIFY_NONE, "no_cert"};
    }
    enum cg_auth_mode mode = c->l->vh[c->vhost].mode;
    if (mode == CG_AUTH_REPORT)
        c->would_refuse = c->verdict.status != CG_VERIFY_SUCCESS;
    if (mode == CG_AUTH_OFF) {
        c->verdict = (struct cg_verdict){CG_VERIFY_NONE, "no_cert"};
        ident_free(c->ident);
        c->ident = NULL;
    }
}

int
tls_conn_handshake(struct tls_conn *c)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        handshake_finish(c);
        return 0;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        c->want = TLS_WANT_READ;
        return CG_EAGAIN;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        c->want = TLS_WANT_WRITE;
        return CG_EAGAIN;
    }
    conn_fail(c, "SSL_do_handshake()", e);
    return CG_ETLS;
}

int
tls_conn_want(const struct tls_conn *c)
{
    return c->want;
}

ssize_t
tls_conn_read(struct tls_conn *c, void *buf, size_t n)
{
    ERR_clear_error();
    errno = 0;
    size_t got = 0;
    c->sock_short = false;
    int r = SSL_read_ex(c->ssl, buf, n, &got);
    c->read_blocked = false;
    if (r == 1)
        return (ssize_t)got;
    int e = SSL_get_error(c->ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        c->read_blocked = true;
        c->want = TLS_WANT_READ;
        return CG_EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        c->want = TLS_WANT_WRITE;
        return CG_EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        conn_fail(c, "SSL_read()", e);
        return CG_EIO;
    }
}

ssize_t
tls_conn_write(struct tls_conn *c, const void *buf, size_t n)
{
    ERR_clear_error();
    errno = 0;
    size_t done = 0;
    int r = SSL_write_ex(c->ssl, buf, n, &done);
    if (r == 1)
        return (ssize_t)done;
    int e = SSL_get_error(c->ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        c->want = TLS_WANT_READ;
        return CG_EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        c->want = TLS_WANT_WRITE;
        return CG_EAGAIN;
    default:
        conn_fail(c, "SSL_write()", e);
        return CG_EIO;
    }
}

bool
tls_conn_pending(const struct tls_conn *c)
{
    /* With read-ahead, whole records may wait undecrypted in the read
     * buffer (SSL_has_pending) while the socket is drained. Once a read
     * wanted the socket, what is buffered is a partial record: the next
     * bytes come with an fd event. */
    return SSL_pending(c->ssl) > 0 ||
           (!c->read_blocked && SSL_has_pending(c->ssl));
}

bool
tls_conn_sock_drained(const struct tls_conn *c)
{
    return c->sock_short;
}

void
tls_conn_shutdown(struct tls_conn *c)
{
    if (c->handshake_done) {
        ERR_clear_error();
        SSL_shutdown(c->ssl);
        ERR_clear_error();
    }
}

void
tls_conn_free(struct tls_conn *c)
{
    if (c == NULL)
        return;
    SSL_free(c->ssl);
    sk_X509_pop_free(c->chain, X509_free);
    ident_free(c->ident);
    free(c->sni);
    c->magic = 0;
    free(c);
}

const char *
tls_conn_error(const struct tls_conn *c)
{
    return c->err[0] ? c->err : "TLS error";
}

const struct cg_verdict *
tls_conn_verdict(const struct tls_conn *c)
{
    return &c->verdict;
}

const struct cg_identity *
tls_conn_identity(const struct tls_conn *c)
{
    return c->verdict.status == CG_VERIFY_SUCCESS ? c->ident : NULL;
}

const struct cg_identity *
tls_conn_identity_raw(const struct tls_conn *c)
{
    return c->ident;
}

bool
tls_conn_would_refuse(const struct tls_conn *c)
{
    return c->would_refuse;
}

const char *
tls_conn_sni(const struct tls_conn *c)
{
    return c->sni;
}

size_t
tls_conn_vhost(const struct tls_conn *c)
{
    return c->vhost;
}

const char *
tls_conn_version(const struct tls_conn *c)
{
    return SSL_get_version(c->ssl);
}

const char *
tls_conn_cipher(const struct tls_conn *c)
{
    return SSL_get_cipher_name(c->ssl);
}

bool
tls_conn_resumed(const struct tls_conn *c)
{
    return SSL_session_reused(c->ssl) == 1;
}

/* Short upper-case name of a public-key type (HAProxy-like). */
static const char *
pkey_name(int nid)
{
    switch (nid) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
        return "RSA";
    case EVP_PKEY_EC:
        return "EC";
    case EVP_PKEY_ED25519:
        return "ED25519";
    case EVP_PKEY_ED448:
        return "ED448";
    default:
        return "UNKNOWN";
    }
}

void
tls_conn_peer_algs(const struct tls_conn *c, char *sig, size_t sig_len,
                   char *key, size_t key_len)
{
    sig[0] = key[0] = '\0';
    X509 *x = c->ssl ? SSL_get0_peer_certificate(c->ssl) : NULL;
    if (x == NULL)
        return;
    int md = NID_undef, pk = NID_undef;
    if (X509_get_signature_info(x, &md, &pk, NULL, NULL) == 1) {
        const char *pkn = pk == EVP_PKEY_EC ? "ECDSA" : pkey_name(pk);
        if (md == NID_undef)
            snprintf(sig, sig_len, "%s", pkn);
        else
            snprintf(sig, sig_len, "%s-%s", pkn, OBJ_nid2sn(md));
    }
    EVP_PKEY *k = X509_get0_pubkey(x);
    if (k == NULL)
        return;
    int id = EVP_PKEY_get_base_id(k);
    if (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448)
        snprintf(key, key_len, "%s", pkey_name(id));
    else
        snprintf(key, key_len, "%s%d", pkey_name(id), EVP_PKEY_get_bits(k));
}

const char *
tls_conn_failure_reason(const struct tls_conn *c)
{
    if (c->verdict.status == CG_VERIFY_FAILED)
        return c->verdict.reason;
    if (c->l != NULL && c->l->vh[c->vhost].mode == CG_AUTH_REQUIRED &&
        strstr(tls_conn_error(c), "certificate") != NULL)
        return "no_cert";
    return "tls";
}

void
tls_conn_log_failure(const struct tls_conn *c, const char *listener,
                     const char *peer)
{
    const char *why = tls_conn_error(c);
    const char *reason = tls_conn_failure_reason(c);
    struct cg_logrec r;
    cg_logrec_begin(&r, CG_LOG_INFO, "handshake_failed");
    cg_logrec_int(&r, "conn", (int64_t)c->id);
    cg_logrec_str(&r, "listener", listener);
    cg_logrec_str(&r, "peer", peer);
    cg_logrec_str(&r, "sni", c->sni);
    cg_logrec_str(&r, "reason", reason);
    cg_logrec_str(&r, "error", why);
    if (c->ident != NULL) {
        cg_logrec_str(&r, "cn", c->ident->cn);
        cg_logrec_str(&r, "subject", c->ident->dn);
        cg_logrec_str(&r, "serial", c->ident->serial);
        cg_logrec_str(&r, "sha256", c->ident->sha256);
    }
    cg_logrec_end(&r);
}
