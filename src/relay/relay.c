/*
 * Connections of the mqtt and tcp listeners: TLS handshake with the
 * client, the protocol step (mqtt_session.c, tcp_session.c), then one
 * function, run_once(), moving bytes both ways with back-pressure: a
 * side is read only while the other side's output is under 256 KiB.
 * Closing inside a callback only marks; memory goes when it returns.
 */
#include <stddef.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "core/xmalloc.h"
#include "relay/relay_int.h"

static void rc_io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void rc_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void conn_run(struct relay_conn *rc);

/* Gives back what a connection quiet for STREAM_QUIET_S does not need. */
static bool
quiet_release(struct quiet_node *n)
{
    struct relay_conn *rc = CG_CONTAINER_OF(n, struct relay_conn, quiet);
    if (rc->busy > 0 || rc->dead || rc->state == RC_HANDSHAKE)
        return false;
    stream_quiet(&rc->s);
    return true;
}

void
relay_env_init(struct relay_env *env, struct ev_loop *loop, int worker,
               struct metrics_worker *mw, void (*snap_release)(void *snap))
{
    memset(env, 0, sizeof(*env));
    env->loop = loop;
    env->worker = worker;
    env->mw = mw;
    env->snap_release = snap_release;
    stream_sweeper_start(&env->quiet, loop, quiet_release);
}

/* The close line: bytes each way and duration of a spliced session. */
static void
log_close(struct relay_conn *rc)
{
    struct cg_logrec r;
    cg_logrec_begin(&r, CG_LOG_INFO, "relay_close");
    cg_logrec_int(&r, "conn", (int64_t)rc->id);
    cg_logrec_str(&r, "listener", rc->site->cfg->name);
    cg_logrec_str(&r, "peer", rc->peer);
    cg_logrec_str(&r, "reason", rc->end ? rc->end : "closed");
    cg_logrec_int(&r, "bytes_up", (int64_t)rc->bytes_up);
    cg_logrec_int(&r, "bytes_down", (int64_t)rc->bytes_down);
    cg_logrec_int(&r, "duration_ms", cg_now_ms() - rc->t_start);
    cg_logrec_end(&r);
}

static void
rc_free(struct relay_conn *rc)
{
    struct relay_env *env = rc->env;
    if (rc->opened)
        log_close(rc);
    ev_io_stop(env->loop, &rc->io);
    ev_io_stop(env->loop, &rc->up_io);
    ev_timer_stop(env->loop, &rc->timer);
    if (rc->up.fd >= 0)
        stream_close(&rc->up, rc->up_phase == UPP_READY);
    stream_close(&rc->s, rc->state != RC_HANDSHAKE);
    cg_buf_cleanup(&rc->in);
    cg_buf_cleanup(&rc->to_up);
    cg_buf_cleanup(&rc->to_cl);
    quiet_remove(&env->quiet.active, &rc->quiet);
    if (rc->prev)
        rc->prev->next = rc->next;
    else
        env->conns = rc->next;
    if (rc->next)
        rc->next->prev = rc->prev;
    env->n_conns--;
    metrics_add(rc->mblk, MC_CLOSED, 1);
    metrics_identity_close(rc->mident);
    env->snap_release(rc->snap);
    rc->magic = 0;
    free(rc);
}

void
relay_close(struct relay_conn *rc, const char *why)
{
    if (rc->end == NULL)
        rc->end = why;
    rc->dead = true;
    if (rc->busy == 0)
        rc_free(rc);
}

void
relay_env_cleanup(struct relay_env *env)
{
    while (env->conns != NULL)
        rc_free(env->conns);
    stream_sweeper_stop(&env->quiet, env->loop);
}

static void
set_timer(struct relay_conn *rc, int64_t ms)
{
    ev_timer_stop(rc->env->loop, &rc->timer);
    if (ms > 0) {
        ev_timer_set(&rc->timer, (double)ms / 1000.0, 0.0);
        ev_timer_start(rc->env->loop, &rc->timer);
    }
}

/* Flush what is queued, then close (a refusal, or one side ended). */
static void
start_closing(struct relay_conn *rc, const char *why)
{
    if (rc->end == NULL)
        rc->end = why;
    rc->state = RC_CLOSING;
    set_timer(rc, RELAY_LINGER_MS);
}

static void
peer_text(struct relay_conn *rc, const struct sockaddr_storage *peer)
{
    rc->peer_addr = *peer;
    cg_addr_text(peer, rc->peer, sizeof(rc->peer));
}

void
relay_accept(struct relay_env *env, int fd, const struct sockaddr_storage *peer,
             void *snap, struct tls_listener *tls,
             const struct relay_site *site)
{
    struct relay_conn *rc = xcalloc(1, sizeof(*rc));
    rc->magic = RELAY_CONN_MAGIC;
    rc->env = env;
    rc->snap = snap;
    rc->tlsl = tls;
    rc->site = site;
    rc->mblk = metrics_block(env->mw, site->mbase);
    metrics_add(rc->mblk, MC_ACCEPTED, 1);
    rc->level = -1;
    rc->t_start = cg_now_ms();
    rc->idle_ms = site->cfg->timeouts.idle_ms;
    rc->id =
        ((uint64_t)(env->worker + 1) << 40) | (1ull << 39) | ++env->next_id;
    peer_text(rc, peer);
    /* TCP_NODELAY: inherited from the listening socket (loop/server.c) */
    stream_init(&rc->s, fd, tls_conn_accept(tls, fd, rc->id));
    stream_init(&rc->up, -1, NULL);
    rc->next = env->conns;
    if (env->conns)
        env->conns->prev = rc;
    env->conns = rc;
    env->n_conns++;
    ev_io_init(&rc->io, rc_io_cb, fd, EV_READ);
    rc->io.data = rc;
    ev_init(&rc->up_io, rc_io_cb);
    rc->up_io.data = rc;
    ev_init(&rc->timer, rc_timer_cb);
    rc->timer.data = rc;
    if (rc->s.tls == NULL) {
        cg_log(CG_LOG_ERROR, rc->id, "SSL_new() failed");
        relay_close(rc, "internal");
        return;
    }
    rc->state = RC_HANDSHAKE;
    set_timer(rc, site->cfg->timeouts.handshake_ms);
    conn_run(rc);
}

/* The per-identity series of an accepted session: mqtt the user name the
 * broker sees, else the client id; tcp the verified certificate's CN. */
static void
count_identity(struct relay_conn *rc, const char *username, size_t ulen,
               const char *clientid, size_t clen)
{
    const struct cg_identity *id = tls_conn_identity(rc->s.tls);
    const char *v = NULL;
    size_t len = 0;
    if (rc->site->cfg->kind == CG_KIND_MQTT) {
        v = username != NULL && ulen > 0 ? username : clientid;
        len = username != NULL && ulen > 0 ? ulen : clen;
    } else if (id != NULL && id->cn != NULL) {
        v = id->cn;
        len = strlen(id->cn);
    }
    rc->mident =
        metrics_identity_open(metrics_of(rc->env->mw), rc->site->mbase, v, len);
    if (rc->site->cfg->kind == CG_KIND_TCP)
        metrics_add(rc->mblk, MC_TCP_SESSIONS, 1);
}

void
relay_log_open(struct relay_conn *rc, const char *username, size_t ulen,
               const char *clientid, size_t clen)
{
    const struct cg_verdict *v = tls_conn_verdict(rc->s.tls);
    const struct cg_identity *id = tls_conn_identity_raw(rc->s.tls);
    struct cg_logrec r;
    rc->opened = true;
    count_identity(rc, username, ulen, clientid, clen);
    cg_logrec_begin(&r, CG_LOG_INFO, "relay_open");
    cg_logrec_int(&r, "conn", (int64_t)rc->id);
    cg_logrec_str(&r, "listener", rc->site->cfg->name);
    cg_logrec_str(&r, "kind",
                  rc->site->cfg->kind == CG_KIND_MQTT ? "mqtt" : "tcp");
    cg_logrec_str(&r, "peer", rc->peer);
    cg_logrec_str(&r, "verify",
                  v->status == CG_VERIFY_SUCCESS ? "SUCCESS"
                  : v->status == CG_VERIFY_NONE  ? "NONE"
                                                 : v->reason);
    if (id != NULL) {
        cg_logrec_str(&r, "cn", id->cn);
        cg_logrec_str(&r, "serial", id->serial);
        cg_logrec_str(&r, "sha256", id->sha256);
    }
    if (username != NULL)
        cg_logrec_strn(&r, "username", username, ulen);
    if (clientid != NULL)
        cg_logrec_strn(&r, "clientid", clientid, clen);
    if (rc->level >= 0)
        cg_logrec_int(&r, "protocol_level", rc->level);
    cg_logrec_end(&r);
}

static bool handshake_recheck(struct relay_conn *rc);

static bool
do_handshake(struct relay_conn *rc)
{
    int r = stream_handshake(&rc->s, rc->site->cfg->name, rc->peer, rc->mblk);
    if (r < 0)
        relay_close(rc, "handshake_failed");
    if (r <= 0 || (rc->recheck && !handshake_recheck(rc)))
        return false;
    if (rc->site->cfg->kind == CG_KIND_MQTT) {
        rc->state = RC_CONNECT;
        set_timer(rc, rc->site->cfg->timeouts.header_ms);
    } else {
        tcp_session_start(rc);
    }
    return !rc->dead;
}

void
relay_upstream_start(struct relay_conn *rc)
{
    const struct relay_site *site = rc->site;
    int fd = socket(site->addr.ss_family,
                    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    rc->state = RC_UPSTREAM;
    set_timer(rc, site->cfg->timeouts.upstream_connect_ms);
    if (fd < 0) {
        cg_log(CG_LOG_ERROR, rc->id, "socket() failed: %s", strerror(errno));
        relay_close(rc, "internal");
        return;
    }
    if (site->addr.ss_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    struct tls_conn *tls = NULL;
    if (site->tls != NULL &&
        (tls = tls_conn_connect(site->tls, fd, rc->id)) == NULL) {
        cg_log(CG_LOG_ERROR, rc->id, "SSL_new() failed");
        close(fd);
        relay_close(rc, "internal");
        return;
    }
    stream_init(&rc->up, fd, tls);
    ev_io_set(&rc->up_io, fd, 0);
    rc->up_phase = UPP_CONNECTING;
}

/* Upstream connect / TLS handshake: 1 progress, 0 waiting, -1 failed. */
static int
up_step(struct relay_conn *rc, char *err, size_t len)
{
    if (rc->up_phase == UPP_CONNECTING) {
        const struct relay_site *s = rc->site;
        int r =
            connect(rc->up.fd, (const struct sockaddr *)&s->addr, s->addrlen);
        if (r < 0 && (errno == EINPROGRESS || errno == EALREADY)) {
            rc->up.wwant = EV_WRITE;
            return 0;
        }
        if (r < 0 && errno != EISCONN) {
            snprintf(err, len, "connect() failed: %s", strerror(errno));
            return -1;
        }
        rc->up_phase = rc->up.tls != NULL ? UPP_HANDSHAKE : UPP_READY;
        return 1;
    }
    int r = tls_conn_handshake(rc->up.tls);
    if (r == CG_EAGAIN) {
        rc->up.wwant =
            tls_conn_want(rc->up.tls) == TLS_WANT_WRITE ? EV_WRITE : EV_READ;
        return 0;
    }
    if (r != 0) {
        snprintf(err, len, "TLS handshake: %s", tls_conn_error(rc->up.tls));
        return -1;
    }
    rc->up_phase = UPP_READY;
    return 1;
}

/* The upstream could not be reached. */
static void
up_failed(struct relay_conn *rc, const char *err)
{
    cg_log(CG_LOG_WARN, rc->id, "upstream %s: %s", rc->site->cfg->upstream.url,
           err);
    if (rc->site->cfg->kind == CG_KIND_MQTT)
        mqtt_session_unavailable(rc);
    else
        relay_close(rc, "upstream_connect");
}

/* Writes what b holds to s; a drained queue gives its memory back, so an
 * idle connection holds no buffer. */
static int
flush(struct stream *s, struct cg_buf *b, uint64_t *count, bool last)
{
    int r = last ? stream_flush_last(s, b, count) : stream_flush(s, b, count);
    cg_buf_shrink(b, 0);
    return r;
}

static bool
client_may_read(const struct relay_conn *rc)
{
    switch (rc->state) {
    case RC_CONNECT:
        return true;
    case RC_UPSTREAM:
    case RC_SPLICE:
        return cg_buf_pending(&rc->to_up) < RELAY_HIGH_WATER;
    default:
        return false;
    }
}

static bool
up_may_read(const struct relay_conn *rc)
{
    return rc->up_phase == UPP_READY && rc->state == RC_SPLICE &&
           cg_buf_pending(&rc->to_cl) < RELAY_HIGH_WATER;
}

/* Reads the client: the first packet (mqtt) or bytes for upstream. */
static int
read_client(struct relay_conn *rc)
{
    bool first = rc->state == RC_CONNECT;
    int r = stream_fill(&rc->s, first ? &rc->in : &rc->to_up);
    if (r == -2 && first) {
        cg_log(CG_LOG_INFO, rc->id, "client closed before its CONNECT");
        relay_close(rc, "client_closed");
    } else if (r == -2) {
        start_closing(rc, "client_closed");
    } else if (r < 0) {
        cg_log(CG_LOG_INFO, rc->id, "client connection error: %s",
               tls_conn_error(rc->s.tls));
        relay_close(rc, "client_error");
    } else if (r > 0 && first) {
        mqtt_session_feed(rc);
    } else if (r > 0 && rc->state == RC_SPLICE) {
        set_timer(rc, rc->idle_ms);
    }
    return r;
}

/* Flushes the queues; closes once both are empty in RC_CLOSING. */
static int
flush_both(struct relay_conn *rc)
{
    int r = flush(&rc->s, &rc->to_cl, &rc->bytes_down, rc->state == RC_CLOSING);
    if (r < 0) {
        relay_close(rc, "client_error");
        return -1;
    }
    int p = r > 0;
    if (rc->up_phase == UPP_READY) {
        r = flush(&rc->up, &rc->to_up, &rc->bytes_up, false);
        if (r < 0) {
            relay_close(rc, "upstream_error");
            return -1;
        }
        p |= r > 0;
    }
    if (rc->state == RC_CLOSING && cg_buf_pending(&rc->to_cl) == 0 &&
        (rc->up_phase != UPP_READY || cg_buf_pending(&rc->to_up) == 0)) {
        relay_close(rc, NULL);
        return -1;
    }
    return p;
}

/* One pass over both sides; true on progress. */
static bool
run_once(struct relay_conn *rc)
{
    char err[256];
    int r = flush_both(rc);
    if (r < 0 || rc->state == RC_CLOSING)
        return false;
    bool progress = r > 0;
    if (rc->up_phase == UPP_CONNECTING || rc->up_phase == UPP_HANDSHAKE) {
        r = up_step(rc, err, sizeof(err));
        if (r < 0) {
            up_failed(rc, err);
            return false;
        }
        if (rc->up_phase == UPP_READY) {
            rc->state = RC_SPLICE;
            set_timer(rc, rc->idle_ms);
        }
        progress |= r > 0;
    }
    if (client_may_read(rc)) {
        r = read_client(rc);
        if (r < 0 || rc->dead || rc->state == RC_CLOSING)
            return r == -2;
        progress |= r > 0;
    }
    if (up_may_read(rc)) {
        r = stream_fill(&rc->up, &rc->to_cl);
        if (r == -2)
            start_closing(rc, "upstream_closed");
        else if (r < 0)
            relay_close(rc, "upstream_error");
        else if (r > 0)
            set_timer(rc, rc->idle_ms);
        progress |= r != 0;
    }
    return progress && !rc->dead;
}

static void
update_io(struct relay_conn *rc)
{
    int ev = rc->state == RC_HANDSHAKE
                 ? rc->s.rwant
                 : stream_events(&rc->s, client_may_read(rc),
                                 cg_buf_pending(&rc->to_cl) > 0);
    stream_watch(rc->env->loop, &rc->io, ev);
    if (rc->up.fd < 0)
        return;
    if (rc->up_phase == UPP_CONNECTING || rc->up_phase == UPP_HANDSHAKE)
        ev = rc->up.wwant;
    else
        ev = stream_events(&rc->up, up_may_read(rc),
                           cg_buf_pending(&rc->to_up) > 0);
    stream_watch(rc->env->loop, &rc->up_io, ev);
}

static void
conn_run(struct relay_conn *rc)
{
    quiet_touch(&rc->env->quiet.active, &rc->quiet, ev_now(rc->env->loop));
    rc->busy++;
    if (rc->state == RC_HANDSHAKE && !do_handshake(rc))
        goto out;
    for (int i = 0; i < 256 && !rc->dead; i++) {
        if (!run_once(rc))
            break;
    }
    /* Bytes decrypted inside TLS raise no fd event: keep reading them. */
    if (!rc->dead && stream_pending(&rc->s) && client_may_read(rc))
        ev_feed_event(rc->env->loop, &rc->io, EV_READ);
    if (!rc->dead && rc->up.fd >= 0 && stream_pending(&rc->up) &&
        up_may_read(rc))
        ev_feed_event(rc->env->loop, &rc->up_io, EV_READ);
out:
    rc->busy--;
    if (rc->dead && rc->busy == 0)
        rc_free(rc);
    else if (!rc->dead)
        update_io(rc);
}

static void
rc_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    struct relay_conn *rc =
        RELAY_CAST(struct relay_conn, w->data, RELAY_CONN_MAGIC);
    stream_event(w == &rc->io ? &rc->s : &rc->up, revents);
    conn_run(rc);
}

static void
rc_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct relay_conn *rc =
        RELAY_CAST(struct relay_conn, w->data, RELAY_CONN_MAGIC);
    static const char *const what[] = {
        [RC_HANDSHAKE] = "handshake_timeout",
        [RC_CONNECT] = "connect_timeout",
        [RC_UPSTREAM] = "upstream_connect_timeout",
        [RC_SPLICE] = "idle_timeout",
        [RC_CLOSING] = "linger_timeout",
    };
    rc->busy++;
    cg_log(CG_LOG_INFO, rc->id, "%s (peer %s)", what[rc->state], rc->peer);
    if (rc->state == RC_HANDSHAKE)
        metrics_add(rc->mblk, MC_HS_FAILED + METRICS_R_timeout, 1);
    if (rc->state == RC_UPSTREAM)
        up_failed(rc, "connect timed out");
    else
        relay_close(rc, what[rc->state]);
    rc->busy--;
    if (rc->dead)
        rc_free(rc);
    else
        conn_run(rc);
}

void
relay_drain(struct relay_env *env)
{
    env->draining = true;
    struct relay_conn *rc = env->conns, *next;
    for (; rc != NULL; rc = next) {
        next = rc->next;
        if (rc->state != RC_SPLICE && rc->state != RC_CLOSING)
            relay_close(rc, "draining");
    }
}

/* The certificate of an open connection is refused now. */
static void
log_refused_now(struct relay_conn *rc, const char *why)
{
    const struct cg_identity *id = tls_conn_identity_raw(rc->s.tls);
    struct cg_logrec r;
    cg_log(CG_LOG_INFO, rc->id, "closing: certificate now refused (%s)", why);
    cg_logrec_begin(&r, CG_LOG_INFO, "connection_refused_now");
    cg_logrec_int(&r, "conn", (int64_t)rc->id);
    cg_logrec_str(&r, "listener", rc->site->cfg->name);
    cg_logrec_str(&r, "peer", rc->peer);
    cg_logrec_str(&r, "reason", why);
    cg_logrec_str(&r, "cn", id ? id->cn : NULL);
    cg_logrec_str(&r, "serial", id ? id->serial : NULL);
    cg_logrec_str(&r, "sha256", id ? id->sha256 : NULL);
    cg_logrec_end(&r);
}

/* Closes rc (logged, counted) when the listener now serving (tls_of)
 * no longer accepts its client; true when it did. */
static bool
close_if_refused(struct relay_conn *rc)
{
    struct relay_env *env = rc->env;
    struct tls_listener *now =
        env->tls_of != NULL ? env->tls_of(env->tls_arg, rc->site->cfg->name)
                            : NULL;
    const char *why = NULL;
    if (now == NULL || tls_conn_recheck(rc->s.tls, now, &why))
        return false;
    log_refused_now(rc, why);
    metrics_add(rc->mblk, MC_RECHECK_CLOSED + metrics_reason(why), 1);
    relay_close(rc, "certificate_refused");
    return true;
}

/* A connection whose handshake began under the previous snapshot,
 * checked under the current one once it is done; false when closed. */
static bool
handshake_recheck(struct relay_conn *rc)
{
    rc->recheck = false;
    return !close_if_refused(rc);
}

void
relay_revalidate(struct relay_env *env,
                 struct tls_listener *(*tls_of)(void *arg,
                                                const char *listener),
                 void *arg)
{
    env->tls_of = tls_of;
    env->tls_arg = arg;
    struct relay_conn *rc = env->conns, *next;
    for (; rc != NULL; rc = next) {
        next = rc->next;
        if (rc->dead)
            continue;
        if (rc->state == RC_HANDSHAKE)
            rc->recheck = true; /* its verdict may be the old settings' */
        else
            close_if_refused(rc);
    }
}
