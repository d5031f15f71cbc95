#include "http/stream.h"

#include <errno.h>
#include <ev.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/err.h"

void
stream_init(struct stream *s, int fd, struct tls_conn *tls)
{
    s->fd = fd;
    s->tls = tls;
    s->rwant = EV_READ;
    s->wwant = EV_WRITE;
    s->rdrained = false;
}

static int
want_ev(const struct stream *s)
{
    return tls_conn_want(s->tls) == TLS_WANT_WRITE ? EV_WRITE : EV_READ;
}

ssize_t
stream_read(struct stream *s, void *buf, size_t n)
{
    if (s->tls != NULL) {
        ssize_t r = tls_conn_read(s->tls, buf, n);
        if (r == CG_EAGAIN) {
            s->rwant = want_ev(s);
            s->rdrained = s->rwant == EV_READ;
        } else {
            s->rdrained = r > 0 && tls_conn_sock_drained(s->tls);
        }
        return r;
    }
    ssize_t r = read(s->fd, buf, n);
    if (r >= 0) {
        s->rdrained = r > 0 && (size_t)r < n;
        return r;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        s->rwant = EV_READ;
        s->rdrained = true;
        return CG_EAGAIN;
    }
    if (errno == EINTR) {
        s->rwant = EV_READ;
        s->rdrained = false;
        return CG_EAGAIN;
    }
    s->rdrained = false;
    return CG_EIO;
}

static ssize_t
write_some(struct stream *s, const void *buf, size_t n, bool last)
{
    if (s->tls != NULL) {
        ssize_t r = last ? tls_conn_write_last(s->tls, buf, n)
                         : tls_conn_write(s->tls, buf, n);
        if (r == CG_EAGAIN)
            s->wwant = want_ev(s);
        return r;
    }
    ssize_t r = send(s->fd, buf, n, MSG_NOSIGNAL);
    if (r >= 0)
        return r;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        s->wwant = EV_WRITE;
        return CG_EAGAIN;
    }
    return CG_EIO;
}

ssize_t
stream_write(struct stream *s, const void *buf, size_t n)
{
    return write_some(s, buf, n, false);
}

void
stream_watch(struct ev_loop *loop, ev_io *io, int ev)
{
    if (ev == (io->events & (EV_READ | EV_WRITE)) && ev_is_active(io))
        return;
    ev_io_stop(loop, io);
    ev_io_modify(io, ev);
    if (ev)
        ev_io_start(loop, io);
}

void
stream_event(struct stream *s, int revents)
{
    if (revents & EV_READ) {
        s->rdrained = false;
        if (s->tls != NULL)
            tls_conn_readable(s->tls);
    }
}

bool
stream_read_would_block(const struct stream *s)
{
    return s->rdrained && !stream_pending(s);
}

int
stream_events(const struct stream *s, bool reading, bool writing)
{
    return (reading ? s->rwant : 0) | (writing ? s->wwant : 0);
}

bool
stream_pending(const struct stream *s)
{
    return s->tls != NULL && tls_conn_pending(s->tls);
}

void
stream_close(struct stream *s, bool orderly)
{
    if (s->tls != NULL) {
        if (orderly)
            tls_conn_shutdown(s->tls);
        tls_conn_free(s->tls);
        s->tls = NULL;
    }
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

void
stream_quiet(struct stream *s)
{
    if (s->tls != NULL)
        tls_conn_quiet(s->tls);
}

static void
sweep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct stream_sweeper *sw = w->data;
    quiet_sweep(&sw->active, ev_now(loop) - STREAM_QUIET_S, sw->release);
}

void
stream_sweeper_start(struct stream_sweeper *sw, struct ev_loop *loop,
                     bool (*release)(struct quiet_node *n))
{
    sw->active.head = NULL;
    sw->release = release;
    ev_timer_init(&sw->timer, sweep_cb, STREAM_QUIET_S, STREAM_QUIET_S);
    sw->timer.data = sw;
    ev_timer_start(loop, &sw->timer);
    ev_unref(loop);
}

void
stream_sweeper_stop(struct stream_sweeper *sw, struct ev_loop *loop)
{
    if (!ev_is_active(&sw->timer))
        return;
    ev_ref(loop);
    ev_timer_stop(loop, &sw->timer);
}

static int
flush_buf(struct stream *s, struct cg_buf *b, uint64_t *count, bool last)
{
    int progress = 0;
    while (cg_buf_pending(b) > 0) {
        ssize_t w = write_some(s, cg_buf_head(b), cg_buf_pending(b), last);
        if (w == CG_EAGAIN)
            return progress;
        if (w < 0)
            return -1;
        cg_buf_consume(b, (size_t)w);
        if (count != NULL)
            *count += (uint64_t)w;
        progress = 1;
    }
    return progress;
}

int
stream_flush(struct stream *s, struct cg_buf *b, uint64_t *count)
{
    return flush_buf(s, b, count, false);
}

int
stream_flush_last(struct stream *s, struct cg_buf *b, uint64_t *count)
{
    return flush_buf(s, b, count, true);
}

int
stream_fill(struct stream *s, struct cg_buf *b)
{
    char tmp[STREAM_READ_CHUNK];
    if (stream_read_would_block(s))
        return 0;
    bool empty = cg_buf_pending(b) == 0;
    if (!empty)
        cg_buf_reserve(b, STREAM_READ_CHUNK);
    ssize_t r =
        stream_read(s, empty ? tmp : b->data + b->len, STREAM_READ_CHUNK);
    if (r == CG_EAGAIN)
        return 0;
    if (r == 0)
        return -2;
    if (r < 0)
        return -1;
    if (empty) {
        cg_buf_append(b, tmp, (size_t)r);
        return 1;
    }
    b->len += (size_t)r;
    b->data[b->len] = '\0';
    return 1;
}

int
stream_handshake(struct stream *s, const char *listener, const char *peer,
                 metrics_ctr_t *mblk)
{
    int r = tls_conn_handshake(s->tls);
    if (r == CG_EAGAIN) {
        s->rwant = want_ev(s);
        return 0;
    }
    if (r != 0) {
        tls_conn_log_failure(s->tls, listener, peer);
        metrics_tls_done(mblk, s->tls, false);
        return -1;
    }
    metrics_tls_done(mblk, s->tls, true);
    /* the handshake's last recv() may have emptied the socket: a TLS 1.2
     * client answers the server's last flight only after it arrives */
    s->rdrained = tls_conn_sock_drained(s->tls);
    return 1;
}
