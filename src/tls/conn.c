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
#include "core/util.h"
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

static struct tls_conn *
conn_new(SSL_CTX *ctx, int fd, uint64_t id)
{
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL)
        return NULL;
    struct tls_conn *c = xcalloc(1, sizeof(*c));
    c->magic = TLS_CONN_MAGIC;
    c->ssl = ssl;
    c->fd = fd;
    c->id = id;
    c->verdict = (struct cg_verdict){CG_VERIFY_NONE, "no_cert"};
    SSL_set_app_data(ssl, c);
    BIO *b = tls_sockbio_new(c);
    if (b == NULL) {
        tls_conn_free(c);
        return NULL;
    }
    SSL_set_bio(ssl, b, b);
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

/* c's error buffer, made on the first failure (most connections have
 * none: no 256 bytes each). */
char *
tls_conn_errbuf(struct tls_conn *c)
{
    if (c->err == NULL)
        c->err = xcalloc(1, TLS_ERR_LEN);
    return c->err;
}

/* Records OpenSSL's reason for a failed call into c->err. */
static void
conn_fail(struct tls_conn *c, const char *call, int sslerr)
{
    char q[200];
    tls_drain_errors(q, sizeof(q));
    if (sslerr == SSL_ERROR_SYSCALL || (sslerr == SSL_ERROR_SSL && !q[0]))
        snprintf(tls_conn_errbuf(c), TLS_ERR_LEN, "%s failed (%s)", call,
                 errno ? strerror(errno) : "connection closed by peer");
    else
        snprintf(tls_conn_errbuf(c), TLS_ERR_LEN, "%s failed (SSL: %s)", call,
                 q[0] ? q : "unknown");
}

static void
hs_free(struct tls_conn *c)
{
    if (c->hs != NULL) {
        OPENSSL_cleanse(c->hs, sizeof(*c->hs));
        free(c->hs);
        c->hs = NULL;
    }
}

/* Key-log lines ("LABEL <client random> <secret>", hex), when the
 * listener context's KDF cannot give the secrets (kdftap.c). */
static void
keylog_cb(const SSL *ssl, const char *line)
{
    static const char *const labels[2] = {"CLIENT_TRAFFIC_SECRET_0 ",
                                          "SERVER_TRAFFIC_SECRET_0 "};
    struct tls_conn *c = SSL_get_app_data(ssl);
    if (c == NULL || c->magic != TLS_CONN_MAGIC || c->l == NULL)
        return;
    for (int i = 0; i < 2; i++) {
        size_t ll = strlen(labels[i]);
        if (strncmp(line, labels[i], ll) != 0)
            continue;
        const char *sp = strchr(line + ll, ' ');
        if (sp == NULL)
            return;
        const char *hex = sp + 1;
        unsigned char v[48];
        size_t n = strlen(hex) / 2;
        if (n > sizeof(v))
            return;
        for (size_t k = 0; k < n; k++) {
            int hi = cg_hexval(hex[2 * k]), lo = cg_hexval(hex[2 * k + 1]);
            if (hi < 0 || lo < 0)
                return;
            v[k] = (unsigned char)(hi << 4 | lo);
        }
        tls_secret_keep(&c->hs, i, v, n);
        OPENSSL_cleanse(v, sizeof(v));
    }
}

/* Counts the NewSessionTickets sent: each is one record under the
 * server's application secret before the hand-over. */
static void
msg_cb(int write_p, int version, int content_type, const void *buf, size_t len,
       SSL *ssl, void *arg)
{
    (void)version;
    (void)arg;
    if (!write_p || content_type != SSL3_RT_HANDSHAKE || len == 0 ||
        ((const unsigned char *)buf)[0] != SSL3_MT_NEWSESSION_TICKET)
        return;
    struct tls_conn *c = SSL_get_app_data(ssl);
    if (c != NULL && c->magic == TLS_CONN_MAGIC)
        c->tickets_sent++;
}

void
tls_conn_setup_ctx(SSL_CTX *ctx)
{
    if (!tls_kdftap_ready())
        SSL_CTX_set_keylog_callback(ctx, keylog_cb);
    SSL_CTX_set_msg_callback(ctx, msg_cb);
}

/*
 * A TLS 1.3 listener connection leaves OpenSSL once its handshake is done
 * (record.c): what the connection still needs of the SSL is kept, the
 * SSL freed. What the socket BIO received beyond the handshake and any
 * session tickets it held go with it (sockbio.c). Not when anything of
 * the client's is already buffered inside OpenSSL (read-ahead is off
 * after the ClientHello, so nothing normally is), or the suite is not one
 * record.c seals (TLS 1.3's three, TLS 1.2's AEAD ones: all the listener
 * offers).
 */
static void
handoff(struct tls_conn *c)
{
    SSL *ssl = c->ssl;
    const SSL_CIPHER *ci = SSL_get_current_cipher(ssl);
    bool clean = ci != NULL && !SSL_has_pending(ssl) &&
                 c->in_len - c->in_off <= TLS_FEED_MAX;
    if (clean && SSL_version(ssl) == TLS1_3_VERSION && c->hs != NULL &&
        c->hs->seen == 3) {
        c->rec =
            tls_rec_new(SSL_CIPHER_get_id(ci) & 0xffff, c->hs, c->tickets_sent);
    } else if (clean && SSL_version(ssl) == TLS1_2_VERSION) {
        unsigned char master[SSL_MAX_MASTER_KEY_LENGTH], cr[32], sr[32];
        size_t ml = SSL_SESSION_get_master_key(SSL_get_session(ssl), master,
                                               sizeof(master));
        const EVP_MD *md = SSL_CIPHER_get_handshake_digest(ci);
        if (SSL_get_client_random(ssl, cr, 32) == 32 &&
            SSL_get_server_random(ssl, sr, 32) == 32 && md != NULL)
            c->rec =
                tls_rec_new12(SSL_CIPHER_get_cipher_nid(ci),
                              EVP_MD_get0_name(md), master, ml, cr, sr, c->hs);
        OPENSSL_cleanse(master, sizeof(master));
    }
    hs_free(c);
    if (c->rec == NULL) { /* stays with OpenSSL: as an idle connection */
        /* tickets now (or, when the socket is full, before the next
         * write through the BIO) */
        if (c->held.p != NULL)
            (void)tls_outq_send(&c->held, c->fd);
        SSL_set_read_ahead(ssl, 1);
        SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
        SSL_free_buffers(ssl);
        return;
    }
    tls_rec_hold(c->rec, &c->held);
    tls_rec_feed(c->rec, c->in + c->in_off, c->in_len - c->in_off,
                 c->sock_short);
    tls_sockbio_free_bufs(c);
    c->version = SSL_get_version(ssl);
    c->cipher = SSL_CIPHER_get_name(ci);
    c->resumed = SSL_session_reused(ssl) == 1;
    /* freed as if shut down: an SSL freed mid-connection would take its
     * session out of the cache */
    SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(ssl);
    c->ssl = NULL;
}

const struct tls_facts *
tls_conn_facts(struct tls_conn *c)
{
    if (!c->facts_own && !SSL_session_reused(c->ssl)) {
        tls_facts_set(&c->facts, SSL_get0_peer_certificate(c->ssl),
                      SSL_get0_verified_chain(c->ssl));
        c->facts_own = true;
    }
    return &c->facts;
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
        /* the cache entry gave ident and facts (sessions.c) */
        if (peer != NULL && c->ident == NULL) {
            char err[CG_ERR_LEN];
            if (tls_identity_from_x509(peer, &c->ident, err) != 0)
                c->ident = NULL;
        }
    } else {
        if (!c->verify_ran)
            c->verdict = (struct cg_verdict){CG_VERIFY_NONE, "no_cert"};
        (void)tls_conn_facts(c);
    }
    enum cg_auth_mode mode = c->l->vh[c->vhost].mode;
    if (mode == CG_AUTH_REPORT)
        c->would_refuse = c->verdict.status != CG_VERIFY_SUCCESS;
    if (mode == CG_AUTH_OFF) {
        c->verdict = (struct cg_verdict){CG_VERIFY_NONE, "no_cert"};
        ident_free(c->ident);
        c->ident = NULL;
    }
    handoff(c);
}

/* The per-worker caches and taps that serve only a listener's handshake
 * steps, on (c's) or off. */
static void
listener_step(struct tls_conn *c, bool on)
{
    tls_kdftap_arm(on ? &c->hs : NULL);
    tls_parsecache_arm(on);
    tls_fetchmemo_arm(on);
    tls_hotkeys_arm(on);
    tls_keyshare_arm(on);
    tls_randpool_arm(on);
    tls_qmac_arm(on);
}

int
tls_conn_handshake(struct tls_conn *c)
{
    ERR_clear_error();
    errno = 0;
    if (c->l != NULL)
        listener_step(c, true);
    int r = SSL_do_handshake(c->ssl);
    listener_step(c, false);
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
    if (c->rec != NULL)
        return tls_rec_read(c->rec, c->fd, buf, n, &c->want, c);
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

static ssize_t
conn_write(struct tls_conn *c, const void *buf, size_t n, bool last)
{
    if (c->rec != NULL)
        return tls_rec_write(c->rec, c->fd, buf, n, last, &c->want, c);
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

ssize_t
tls_conn_write(struct tls_conn *c, const void *buf, size_t n)
{
    return conn_write(c, buf, n, false);
}

ssize_t
tls_conn_write_last(struct tls_conn *c, const void *buf, size_t n)
{
    return conn_write(c, buf, n, true);
}

bool
tls_conn_pending(const struct tls_conn *c)
{
    /* With read-ahead, whole records may wait undecrypted in the read
     * buffer (SSL_has_pending) while the socket is drained. Once a read
     * wanted the socket, what is buffered is a partial record: the next
     * bytes come with an fd event. */
    if (c->rec != NULL)
        return tls_rec_pending(c->rec);
    return SSL_pending(c->ssl) > 0 || c->in != NULL ||
           (!c->read_blocked && SSL_has_pending(c->ssl));
}

void
tls_conn_quiet(struct tls_conn *c)
{
    if (c->rec != NULL)
        tls_rec_quiet(c->rec);
}

void
tls_conn_readable(struct tls_conn *c)
{
    c->hs_drained = false;
}

bool
tls_conn_sock_drained(const struct tls_conn *c)
{
    return c->rec != NULL ? tls_rec_sock_drained(c->rec) : c->sock_short;
}

void
tls_conn_shutdown(struct tls_conn *c)
{
    if (c->rec != NULL) {
        tls_rec_close_notify(c->rec, c->fd);
    } else if (c->handshake_done) {
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
    tls_sockbio_free_bufs(c);
    tls_rec_free(c->rec);
    tls_facts_clear(&c->facts);
    hs_free(c);
    free(c->err);
    ident_free(c->ident);
    free(c->sni);
    c->magic = 0;
    free(c);
}

const char *
tls_conn_error(const struct tls_conn *c)
{
    return c->err != NULL && c->err[0] ? c->err : "TLS error";
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
    return c->ssl != NULL ? SSL_get_version(c->ssl) : c->version;
}

const char *
tls_conn_cipher(const struct tls_conn *c)
{
    return c->ssl != NULL ? SSL_get_cipher_name(c->ssl) : c->cipher;
}

bool
tls_conn_resumed(const struct tls_conn *c)
{
    return c->ssl != NULL ? SSL_session_reused(c->ssl) == 1 : c->resumed;
}

void
tls_conn_peer_algs(const struct tls_conn *c, char *sig, size_t sig_len,
                   char *key, size_t key_len)
{
    snprintf(sig, sig_len, "%s", c->facts.sigalg);
    snprintf(key, key_len, "%s", c->facts.keyalg);
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
