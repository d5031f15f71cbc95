/*
 * The socket under a connection's SSL: a BIO of its own instead of
 * OpenSSL's socket BIO, for two savings of system calls (each a loopback
 * transmit or a trip into the kernel, measured in bench/README item 21).
 *
 * Reading: OpenSSL reads a record's header, then its body (read-ahead is
 * off after the ClientHello so that nothing of the client's stays inside
 * it, conn.c). Each of those was a read(): eight for a client's second
 * flight. Here one recv() takes what the socket has and OpenSSL's reads
 * are served from it; bytes OpenSSL has not asked for when the handshake
 * ends go to the record layer (record.c), as if it had read them.
 *
 * Writing: a TLS 1.3 server's NewSessionTickets are written after the
 * handshake, each a transmit of its own before the first answer. They
 * are held here and go out in front of the connection's first write (or
 * its close_notify): the client needs them only for a later connection,
 * and no record may precede them (they are the server's application
 * records 0..n-1).
 */
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/xmalloc.h"
#include "tls/tls_int.h"

/* what one recv() asks for (the record layer's buffer takes it whole) */
#define SOCKBIO_CHUNK TLS_FEED_MAX

static BIO_METHOD *method;
static pthread_once_t method_once = PTHREAD_ONCE_INIT;

/* A session ticket written inside a TLS 1.3 listener handshake. */
static bool
holds(const struct tls_conn *c, size_t len)
{
    return c->l != NULL && c->ssl != NULL && !c->handshake_done &&
           SSL_version(c->ssl) == TLS1_3_VERSION &&
           SSL_get_state(c->ssl) == TLS_ST_SW_SESSION_TICKET &&
           c->held.len + len <= TLS_HELD_MAX;
}

int
tls_send_all(int fd, const unsigned char *p, size_t len, size_t *off)
{
    while (*off < len) {
        ssize_t n = send(fd, p + *off, len - *off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            *off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    }
    return 1;
}

unsigned char *
tls_outq_room(struct tls_outq *q, size_t n)
{
    if (q->off == q->len)
        q->off = q->len = 0;
    q->p = xrealloc(q->p, q->len + n);
    return q->p + q->len;
}

int
tls_outq_send(struct tls_outq *q, int fd)
{
    int f = tls_send_all(fd, q->p, q->len, &q->off);
    if (f == 1)
        tls_outq_free(q);
    return f;
}

void
tls_outq_free(struct tls_outq *q)
{
    free(q->p);
    *q = (struct tls_outq){0};
}

static int
sb_write(BIO *b, const char *buf, size_t len, size_t *done)
{
    struct tls_conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    *done = 0;
    if (holds(c, len)) {
        memcpy(tls_outq_room(&c->held, len), buf, len);
        c->held.len += len;
        *done = len;
        return 1;
    }
    int f = c->held.p != NULL ? tls_outq_send(&c->held, c->fd) : 1;
    size_t off = 0;
    if (f == 1)
        f = tls_send_all(c->fd, (const unsigned char *)buf, len, &off);
    *done = off;
    if (off > 0)
        return 1; /* partial: OpenSSL writes the rest next */
    if (f == 0)
        BIO_set_retry_write(b);
    return 0;
}

/* Serves n bytes of the held input to buf. */
static size_t
serve(struct tls_conn *c, char *buf, size_t n)
{
    size_t k = c->in_len - c->in_off;
    if (k > n)
        k = n;
    memcpy(buf, c->in + c->in_off, k);
    c->in_off += k;
    if (c->in_off == c->in_len) {
        free(c->in);
        c->in = NULL;
        c->in_len = c->in_off = 0;
    }
    return k;
}

static int
sb_read(BIO *b, char *buf, size_t len, size_t *got)
{
    struct tls_conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    *got = 0;
    if (c->in != NULL) {
        *got = serve(c, buf, len);
        return 1;
    }
    if (c->hs_drained && !c->handshake_done) {
        BIO_set_retry_read(b); /* see tls_conn_readable */
        return 0;
    }
    unsigned char tmp[SOCKBIO_CHUNK];
    bool direct = len >= sizeof(tmp); /* OpenSSL's read-ahead */
    size_t ask = direct ? len : sizeof(tmp);
    ssize_t n;
    do
        n = recv(c->fd, direct ? (void *)buf : tmp, ask, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            BIO_set_retry_read(b);
            c->hs_drained = true;
        }
        return 0;
    }
    c->sock_short = n > 0 && (size_t)n < ask;
    c->hs_drained = c->sock_short;
    if (n == 0) {
        c->in_eof = true;
        return 0;
    }
    if (direct) {
        *got = (size_t)n;
        return 1;
    }
    c->in = xmalloc((size_t)n);
    memcpy(c->in, tmp, (size_t)n);
    c->in_len = (size_t)n;
    *got = serve(c, buf, len);
    return 1;
}

static long
sb_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    struct tls_conn *c = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_EOF:
        return c->in_eof && c->in == NULL;
    case BIO_CTRL_PENDING:
        return (long)(c->in_len - c->in_off);
    case BIO_C_GET_FD:
        if (ptr != NULL)
            *(int *)ptr = c->fd;
        return c->fd;
    default:
        return 0;
    }
}

static int
sb_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void
make_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK |
                                     BIO_TYPE_DESCRIPTOR,
                                 "certgate socket");
    if (m == NULL || !BIO_meth_set_write_ex(m, sb_write) ||
        !BIO_meth_set_read_ex(m, sb_read) || !BIO_meth_set_ctrl(m, sb_ctrl) ||
        !BIO_meth_set_create(m, sb_create)) {
        BIO_meth_free(m);
        return;
    }
    method = m;
}

BIO *
tls_sockbio_new(struct tls_conn *c)
{
    pthread_once(&method_once, make_method);
    if (method == NULL)
        return NULL;
    BIO *b = BIO_new(method);
    if (b != NULL)
        BIO_set_data(b, c);
    return b;
}

void
tls_sockbio_free_bufs(struct tls_conn *c)
{
    free(c->in);
    c->in = NULL;
    c->in_len = c->in_off = 0;
    tls_outq_free(&c->held);
}
