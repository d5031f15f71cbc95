/*
 * bench/loadgen: one connection slot. A slot opens a non-blocking TCP
 * connection, runs the TLS handshake, writes the request, reads the
 * response and then, by mode, closes (full, resume), sends the next
 * request (keepalive) or holds the connection (idle). Sockets are in one
 * edge-triggered epoll set for EPOLLIN|EPOLLOUT, so each step simply runs
 * until OpenSSL or the socket reports that it would block.
 *
 * OpenSSL writes into a memory BIO; what it wrote goes out in one write(2)
 * when the slot stops to wait (out_flush). So the client's last handshake
 * flight and the request leave together, in one segment, as browsers send
 * them, rather than in two writes and two segments: fewer system calls and
 * packets for loadgen, the same bytes for the server.
 */
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "lg.h"
#include "tls/tls_int.h"

enum io_res {
    IO_OK,
    IO_WAIT,
    IO_EOF,
    IO_ERR,
};

#define ERRLEN 256

/* Describes why an SSL call failed, then clears the error queue. */
static void
ssl_detail(const struct lg_conn *c, int e, char *err)
{
    unsigned long code = ERR_peek_last_error();
    long vr = SSL_get_verify_result(c->ssl);
    char lib[200] = "";

    if (code != 0)
        ERR_error_string_n(code, lib, sizeof(lib));
    if (e == SSL_ERROR_SYSCALL)
        snprintf(err, ERRLEN, "SSL_ERROR_SYSCALL: %s %s",
                 errno ? strerror(errno) : "EOF", lib);
    else if (vr != X509_V_OK)
        snprintf(err, ERRLEN, "%s (verify: %s)", lib,
                 X509_verify_cert_error_string(vr));
    else
        snprintf(err, ERRLEN, "SSL error %d: %s", e, lib);
    ERR_clear_error();
}

/* Maps an SSL_* return value r of a failed call to an io_res. */
static enum io_res
ssl_res(const struct lg_conn *c, int r, char *err)
{
    int e = SSL_get_error(c->ssl, r);

    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return IO_WAIT;
    if (e == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        return IO_EOF;
    }
    ssl_detail(c, e, err);
    return IO_ERR;
}

/* Reads up to cap bytes (TLS or plain) into buf; *n gets the count. */
static enum io_res
io_read(struct lg_conn *c, char *buf, size_t cap, size_t *n, char *err)
{
    if (c->ssl != NULL) {
        int r = SSL_read_ex(c->ssl, buf, cap, n);
        return r == 1 ? IO_OK : ssl_res(c, r, err);
    }
    ssize_t k = read(c->fd, buf, cap);
    if (k > 0) {
        *n = (size_t)k;
        return IO_OK;
    }
    if (k == 0)
        return IO_EOF;
    if (errno == EAGAIN || errno == EINTR)
        return IO_WAIT;
    snprintf(err, ERRLEN, "read: %s", strerror(errno));
    return IO_ERR;
}

/* Writes len bytes of p (TLS or plain); *n gets how many were taken. */
static enum io_res
io_write(struct lg_conn *c, const char *p, size_t len, size_t *n, char *err)
{
    if (c->ssl != NULL) {
        int r = SSL_write_ex(c->ssl, p, len, n);
        return r == 1 ? IO_OK : ssl_res(c, r, err);
    }
    ssize_t k = write(c->fd, p, len);
    if (k >= 0) {
        *n = (size_t)k;
        return IO_OK;
    }
    if (errno == EAGAIN || errno == EINTR)
        return IO_WAIT;
    snprintf(err, ERRLEN, "write: %s", strerror(errno));
    return IO_ERR;
}

/* Closes c after a failure of kind k and lets the generator decide. */
static void
conn_fail(struct lg_conn *c, enum lg_err k, const char *detail)
{
    lg_error(c->g, k, detail);
    lg_conn_close(c);
    lg_conn_ended(c->g, c, true);
}

/*
 * Sends what OpenSSL wrote and the socket takes: 1 when nothing is left,
 * 0 when the rest waits for EPOLLOUT, -1 on a socket error (err set).
 */
static int
out_flush(struct lg_conn *c, char *err)
{
    char *p, skip[4096];
    long n;

    while (c->wbio != NULL && (n = BIO_get_mem_data(c->wbio, &p)) > 0) {
        ssize_t k = write(c->fd, p, (size_t)n);
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        if (k < 0) {
            snprintf(err, ERRLEN, "write: %s", strerror(errno));
            return -1;
        }
        if (k == n) {
            (void)BIO_reset(c->wbio);
            break;
        }
        for (ssize_t left = k; left > 0;) { /* a partial write */
            int m = BIO_read(c->wbio, skip,
                             left < (ssize_t)sizeof(skip) ? (int)left
                                                          : (int)sizeof(skip));
            assert(m > 0);
            left -= m;
        }
    }
    return 1;
}

void
lg_conn_close(struct lg_conn *c)
{
    char err[ERRLEN];

    assert(c->magic == LG_CONN_MAGIC);
    if (c->ssl != NULL) {
        (void)out_flush(c, err); /* an alert OpenSSL wrote, best effort */
        /* Without this, SSL_free() takes the connection for a failed one
         * and marks its session not resumable (ssl_clear_bad_session).
         * Nothing is sent: the server has closed or we are stopping. */
        if (SSL_is_init_finished(c->ssl))
            SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN);
        /* resume: keep the newest resumable session (TLS 1.3 tickets
         * arrive after the handshake, so this is taken at the end). */
        if (c->g->o.mode == LG_RESUME && SSL_is_init_finished(c->ssl)) {
            SSL_SESSION *s = SSL_get1_session(c->ssl);
            SSL_SESSION_free(c->sess);
            c->sess = NULL;
            if (s != NULL && SSL_SESSION_is_resumable(s))
                c->sess = s;
            else
                SSL_SESSION_free(s);
        }
        SSL_free(c->ssl);
        c->ssl = NULL;
        c->wbio = NULL;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->st = LG_CS_FREE;
}

/* Creates the SSL object of a new connection on c->fd. */
static void
conn_ssl(struct lg_conn *c)
{
    const struct lg_opts *o = &c->g->o;
    bool verify = o->verify == LG_VERIFY_ALL ||
                  (o->verify == LG_VERIFY_FIRST && c->nconn == 1);

    c->ssl = SSL_new(c->g->ctx);
    BIO *rbio = BIO_new_socket(c->fd, BIO_NOCLOSE);
    c->wbio = BIO_new(BIO_s_mem());
    assert(c->ssl != NULL && rbio != NULL && c->wbio != NULL);
    SSL_set_bio(c->ssl, rbio, c->wbio);
    SSL_set_connect_state(c->ssl);
    SSL_set_tlsext_host_name(c->ssl, o->sni);
    if (verify && o->ca != NULL) {
        SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
        SSL_set1_host(c->ssl, o->sni);
    } else {
        SSL_set_verify(c->ssl, SSL_VERIFY_NONE, NULL);
    }
    if (o->mode == LG_RESUME && c->sess != NULL)
        SSL_set_session(c->ssl, c->sess);
}

void
lg_conn_start(struct lg_conn *c)
{
    struct lg *g = c->g;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET};
    int one = 1;
    char err[ERRLEN];

    assert(c->magic == LG_CONN_MAGIC && c->st == LG_CS_FREE);
    c->retry_at = 0;
    c->t_req = lg_now();
    c->deadline = c->t_req + g->o.timeout;
    c->nconn++;
    c->reused = false;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        snprintf(err, sizeof(err), "socket: %s", strerror(errno));
        conn_fail(c, LG_ERR_CONNECT, err);
        return;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (const struct sockaddr *)&g->addr, sizeof(g->addr)) <
            0 &&
        errno != EINPROGRESS) {
        snprintf(err, sizeof(err), "connect: %s", strerror(errno));
        conn_fail(c, LG_ERR_CONNECT, err);
        return;
    }
    ev.data.ptr = c;
    if (epoll_ctl(g->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        snprintf(err, sizeof(err), "epoll_ctl: %s", strerror(errno));
        conn_fail(c, LG_ERR_CONNECT, err);
        return;
    }
    if (g->o.mqtt && c->mreq_len == 0) {
        char id[24];
        snprintf(id, sizeof(id), "bench-%ld",
                 g->o.id_base + (long)(c - g->conns));
        c->mreq_len =
            lg_mqtt_connect(c->mreq, sizeof(c->mreq), id, LG_MQTT_KEEPALIVE);
    }
    c->st = LG_CS_WRITE;
    if (!g->o.plain) {
        conn_ssl(c);
        c->st = LG_CS_HANDSHAKE;
    }
    c->woff = 0;
}

void
lg_conn_next(struct lg_conn *c)
{
    c->st = LG_CS_WRITE;
    c->woff = 0;
    c->t_req = lg_now();
    c->deadline = c->t_req + c->g->o.timeout;
}

/* Handshake step; returns 1 to go on, 0 to wait, -1 when c is closed. */
static int
step_handshake(struct lg_conn *c)
{
    char err[ERRLEN] = "";
    /* The server's certificates parsed once (src/tls/parsecache.c),
     * algorithms fetched once (src/tls/fetchmemo.c) and the server's and
     * its CA's keys verifying from tables (src/tls/hotkeys.c), as
     * certgate does; one X25519 key share for the run (lg_keyshare.c). */
    tls_parsecache_arm(true);
    tls_fetchmemo_arm(true);
    tls_hotkeys_arm(true);
    lg_keyshare_arm(true);
    int r = SSL_do_handshake(c->ssl);
    tls_parsecache_arm(false);
    tls_fetchmemo_arm(false);
    tls_hotkeys_arm(false);
    lg_keyshare_arm(false);

    if (r != 1) {
        enum io_res res = ssl_res(c, r, err);
        if (res == IO_WAIT)
            return 0;
        if (res == IO_EOF)
            snprintf(err, sizeof(err), "server closed during handshake");
        conn_fail(c, LG_ERR_HANDSHAKE, err);
        return -1;
    }
    c->reused = SSL_session_reused(c->ssl);
    lg_handshake_done(c->g, c);
    c->st = LG_CS_WRITE;
    c->woff = 0;
    return 1;
}

/* Writes the rest of the request, then starts reading the response. */
static int
step_write(struct lg_conn *c)
{
    const struct lg *g = c->g;
    const char *req = g->o.mqtt ? c->mreq : g->req;
    size_t len = g->o.mqtt ? c->mreq_len : g->req_len;
    char err[ERRLEN];

    while (c->woff < len) {
        size_t n = 0;
        enum io_res r = io_write(c, req + c->woff, len - c->woff, &n, err);
        if (r == IO_WAIT)
            return 0;
        if (r != IO_OK) {
            conn_fail(c, LG_ERR_IO, r == IO_EOF ? "EOF on write" : err);
            return -1;
        }
        c->woff += n;
    }
    c->st = LG_CS_READ;
    lg_resp_init(&c->resp);
    /* The response cannot be there yet: wait for its edge instead of
     * spending a read(2) on EAGAIN, unless OpenSSL already holds bytes. */
    return c->ssl != NULL && SSL_has_pending(c->ssl);
}

/* Reads the response; on its end hands c to lg_request_done. */
static int
step_read(struct lg_conn *c)
{
    char buf[16384], err[ERRLEN];

    for (;;) {
        size_t n = 0;
        enum io_res r = io_read(c, buf, sizeof(buf), &n, err);
        if (r == IO_WAIT)
            return 0;
        if (r == IO_ERR) {
            conn_fail(c, LG_ERR_IO, err);
            return -1;
        }
        if (r == IO_EOF && c->resp.st != LG_RS_BODY_EOF) {
            conn_fail(c, LG_ERR_EOF, "server closed before the response end");
            return -1;
        }
        int f = r == IO_EOF    ? 1
                : c->g->o.mqtt ? lg_connack_feed(&c->resp, buf, n)
                               : lg_resp_feed(&c->resp, buf, n);
        if (f < 0) {
            conn_fail(c, LG_ERR_PARSE,
                      c->g->o.mqtt ? "not a CONNACK"
                                   : "malformed HTTP response");
            return -1;
        }
        if (f == 1) {
            if (r == IO_EOF)
                c->resp.close = true;
            lg_request_done(c->g, c);
            return c->st != LG_CS_FREE;
        }
    }
}

/* Reads until the server closes (full and resume modes ask it to). */
static int
step_drain(struct lg_conn *c)
{
    char buf[4096], err[ERRLEN];

    for (;;) {
        size_t n = 0;
        enum io_res r = io_read(c, buf, sizeof(buf), &n, err);
        if (r == IO_WAIT)
            return 0;
        if (r == IO_OK)
            continue;
        lg_conn_close(c);
        lg_conn_ended(c->g, c, false);
        return c->st != LG_CS_FREE;
    }
}

/* Idle mode: any byte or close from the server ends a held connection. */
static int
step_hold(struct lg_conn *c)
{
    char buf[4096], err[ERRLEN] = "";
    size_t n = 0;
    enum io_res r = io_read(c, buf, sizeof(buf), &n, err);

    if (r == IO_WAIT)
        return 0;
    if (r == IO_OK)
        snprintf(err, sizeof(err), "server sent %zu bytes", n);
    else if (r == IO_EOF)
        snprintf(err, sizeof(err), "server closed the connection");
    conn_fail(c, LG_ERR_CLOSED, err);
    return -1;
}

void
lg_conn_drive(struct lg_conn *c)
{
    int r = 1;

    assert(c->magic == LG_CONN_MAGIC);
    while (r > 0) {
        switch (c->st) {
        case LG_CS_HANDSHAKE:
            r = step_handshake(c);
            break;
        case LG_CS_WRITE:
            r = step_write(c);
            break;
        case LG_CS_READ:
            r = step_read(c);
            break;
        case LG_CS_DRAIN:
            r = step_drain(c);
            break;
        case LG_CS_HOLD:
            r = step_hold(c);
            break;
        case LG_CS_FREE:
            r = 0;
            break;
        }
    }
    char err[ERRLEN];
    if (c->st != LG_CS_FREE && out_flush(c, err) < 0)
        conn_fail(c, c->st == LG_CS_HANDSHAKE ? LG_ERR_HANDSHAKE : LG_ERR_IO,
                  err);
}
