/*
 * Upstream connections: non-blocking connect, optional TLS, and a
 * per-worker pool of idle keep-alive connections keyed by upstream.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "http/proxy_int.h"

#define POOL_MAX_IDLE 64
#define POOL_IDLE_MS 30000

struct upstream_pool {
    struct upconn *head; /* most recently released first */
    size_t n;
};

static void up_io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void up_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

struct upstream_pool *
pool_new(void)
{
    return xcalloc(1, sizeof(struct upstream_pool));
}

static void
pool_unlink(struct upstream_pool *p, struct upconn *up)
{
    if (up->pprev)
        up->pprev->pnext = up->pnext;
    else
        p->head = up->pnext;
    if (up->pnext)
        up->pnext->pprev = up->pprev;
    up->pprev = up->pnext = NULL;
    p->n--;
}

static void
up_free(struct upconn *up)
{
    struct ev_loop *loop = up->env->loop;
    ev_io_stop(loop, &up->io);
    ev_timer_stop(loop, &up->timer);
    if (up->state == UP_IDLE)
        pool_unlink(up->env->pool, up);
    stream_close(&up->s, up->state == UP_READY || up->state == UP_IDLE);
    http_parser_free(up->resp);
    cg_buf_cleanup(&up->in);
    cg_buf_cleanup(&up->out);
    free(up->pool_key);
    up->magic = 0;
    free(up);
}

void
pool_free(struct upstream_pool *p)
{
    if (p == NULL)
        return;
    while (p->head != NULL)
        up_free(p->head);
    free(p);
}

static struct upconn *
up_new(struct proxy_conn *pc)
{
    struct upconn *up = xcalloc(1, sizeof(*up));
    up->magic = UPCONN_MAGIC;
    up->env = pc->env;
    up->pool_key = xstrdup(pc->route->pool_key);
    up->s.fd = -1;
    ev_init(&up->io, up_io_cb);
    up->io.data = up;
    ev_init(&up->timer, up_timer_cb);
    up->timer.data = up;
    up->resp = http_parser_new(false, 64 * 1024, 200, resp_body_sink, up);
    return up;
}

static void
up_set_timer(struct upconn *up, int64_t ms)
{
    ev_timer_stop(up->env->loop, &up->timer);
    if (ms > 0) {
        ev_timer_set(&up->timer, (double)ms / 1000.0, 0.0);
        ev_timer_start(up->env->loop, &up->timer);
    }
}

/* Starts a new connection to the route's upstream. */
static struct upconn *
up_connect(struct proxy_conn *pc, char *err, size_t len)
{
    const struct http_route *r = pc->route;
    int fd = socket(r->addr.ss_family,
                    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, len, "socket() failed: %s", strerror(errno));
        return NULL;
    }
    if (r->addr.ss_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    int rc = connect(fd, (const struct sockaddr *)&r->addr, r->addrlen);
    if (rc < 0 && errno != EINPROGRESS) {
        snprintf(err, len, "connect() failed: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    struct upconn *up = up_new(pc);
    struct tls_conn *tls = NULL;
    if (r->tls != NULL) {
        tls = tls_conn_connect(r->tls, fd, pc->id);
        if (tls == NULL) {
            snprintf(err, len, "SSL_new() failed");
            close(fd);
            up_free(up);
            return NULL;
        }
    }
    stream_init(&up->s, fd, tls);
    ev_io_set(&up->io, fd, 0);
    up->state = UP_CONNECTING;
    up_set_timer(up, pc->site->cfg->timeouts.upstream_connect_ms);
    return up;
}

struct upconn *
up_get(struct proxy_conn *pc, char *err, size_t len)
{
    struct upstream_pool *p = pc->env->pool;
    struct upconn *up;
    for (up = p->head; up != NULL; up = up->pnext) {
        if (strcmp(up->pool_key, pc->route->pool_key) == 0)
            break;
    }
    if (up != NULL) {
        pool_unlink(p, up);
        up->state = UP_READY;
        up->reused = true;
        up_set_timer(up, 0);
    } else {
        up = up_connect(pc, err, len);
        if (up == NULL)
            return NULL;
    }
    up->pc = pc;
    up->got_bytes = false;
    up->armed = false;
    up->err[0] = '\0';
    http_parser_set_head_response(up->resp, pc->is_head);
    return up;
}

int
up_connect_step(struct upconn *up)
{
    if (up->state == UP_CONNECTING) {
        const struct http_route *r = up->pc->route;
        int rc =
            connect(up->s.fd, (const struct sockaddr *)&r->addr, r->addrlen);
        if (rc < 0 && (errno == EINPROGRESS || errno == EALREADY)) {
            up->s.wwant = EV_WRITE;
            return 0;
        }
        if (rc < 0 && errno != EISCONN) {
            snprintf(up->err, sizeof(up->err), "connect() failed: %s",
                     strerror(errno));
            return -1;
        }
        up->state = up->s.tls != NULL ? UP_HANDSHAKE : UP_READY;
        if (up->state == UP_READY)
            up_arm_read_timer(up, up->armed);
        return 1;
    }
    if (up->state == UP_HANDSHAKE) {
        int rc = tls_conn_handshake(up->s.tls);
        if (rc == CG_EAGAIN) {
            up->s.wwant =
                tls_conn_want(up->s.tls) == TLS_WANT_WRITE ? EV_WRITE : EV_READ;
            return 0;
        }
        if (rc != 0) {
            snprintf(up->err, sizeof(up->err), "TLS handshake: %s",
                     tls_conn_error(up->s.tls));
            return -1;
        }
        up->state = UP_READY;
        up_arm_read_timer(up, up->armed);
        return 1;
    }
    return 0;
}

void
up_release(struct upconn *up, bool reusable)
{
    struct upstream_pool *p = up->env->pool;
    if (!reusable || up->state != UP_READY || up->env->draining ||
        cg_buf_pending(&up->in) > 0 || cg_buf_pending(&up->out) > 0 ||
        http_parser_in_message(up->resp)) {
        up_free(up);
        return;
    }
    up->pc = NULL;
    up->state = UP_IDLE;
    up->armed = false;
    cg_buf_shrink(&up->in, 0);
    cg_buf_shrink(&up->out, 0);
    up->pnext = p->head;
    if (p->head)
        p->head->pprev = up;
    p->head = up;
    p->n++;
    /* watch for the upstream closing an idle connection */
    stream_watch(up->env->loop, &up->io, EV_READ);
    up_set_timer(up, POOL_IDLE_MS);
    if (p->n > POOL_MAX_IDLE) {
        struct upconn *last = p->head;
        while (last->pnext)
            last = last->pnext;
        up_free(last);
    }
}

void
up_update_io(struct upconn *up, bool reading)
{
    int ev;
    if (up->state == UP_CONNECTING || up->state == UP_HANDSHAKE)
        ev = up->s.wwant;
    else
        ev = stream_events(&up->s, reading, cg_buf_pending(&up->out) > 0);
    stream_watch(up->env->loop, &up->io, ev);
}

void
up_arm_read_timer(struct upconn *up, bool on)
{
    up->armed = on;
    if (up->state == UP_CONNECTING || up->state == UP_HANDSHAKE)
        return; /* the connect timer runs */
    up_set_timer(up, on ? up->pc->site->cfg->timeouts.upstream_read_ms : 0);
}

static void
up_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    struct upconn *up = CAST_OBJ(struct upconn, w->data, UPCONN_MAGIC);
    stream_event(&up->s, revents);
    if (up->pc != NULL) {
        conn_run(up->pc);
        return;
    }
    up_free(up); /* idle and readable: closed or misbehaving upstream */
}

static void
up_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct upconn *up = CAST_OBJ(struct upconn, w->data, UPCONN_MAGIC);
    struct proxy_conn *pc = up->pc;
    if (pc == NULL) {
        up_free(up);
        return;
    }
    bool connecting = up->state != UP_READY;
    cg_log(CG_LOG_WARN, pc->id, "upstream %s: %s timed out",
           pc->route->cfg->upstream.url, connecting ? "connect" : "read");
    pc->busy++;
    resp_refuse(pc, 504,
                connecting ? "upstream_connect_timeout" : "upstream_timeout");
    pc->busy--;
    conn_run(pc);
}
