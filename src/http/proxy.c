/*
 * Client connections of the HTTPS proxy. One function, conn_run(), moves
 * bytes on both sides (client and upstream) until nothing progresses;
 * both sides' watchers call it, so back-pressure is decided in one place.
 */
#include <errno.h>
#include <stddef.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "core/xmalloc.h"
#include "http/proxy_int.h"

static void pc_io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void pc_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

/* Gives back what a connection quiet for STREAM_QUIET_S does not need. */
static bool
quiet_release(struct quiet_node *n)
{
    struct proxy_conn *pc = CG_CONTAINER_OF(n, struct proxy_conn, quiet);
    if (pc->busy > 0 || pc->dead || pc->state == PC_HANDSHAKE)
        return false;
    stream_quiet(&pc->s);
    if (pc->state == PC_HEAD && !pc->head_started)
        http_parser_quiet(pc->req);
    return true;
}

void
proxy_env_init(struct proxy_env *env, struct ev_loop *loop, int worker,
               struct metrics_worker *mw, void (*snap_release)(void *snap))
{
    memset(env, 0, sizeof(*env));
    env->loop = loop;
    env->worker = worker;
    env->mw = mw;
    env->snap_release = snap_release;
    env->pool = pool_new();
    stream_sweeper_start(&env->quiet, loop, quiet_release);
}

static void
pc_free(struct proxy_conn *pc)
{
    struct proxy_env *env = pc->env;
    ev_io_stop(env->loop, &pc->io);
    ev_timer_stop(env->loop, &pc->timer);
    if (pc->up != NULL)
        up_release(pc->up, false);
    stream_close(&pc->s, pc->state != PC_HANDSHAKE);
    http_parser_free(pc->req);
    cg_buf_cleanup(&pc->in);
    cg_buf_cleanup(&pc->out);
    free(pc->target);
    free(pc->host);
    free(pc->host_hdr);
    free(pc->path);
    quiet_remove(&env->quiet.active, &pc->quiet);
    if (pc->prev)
        pc->prev->next = pc->next;
    else
        env->conns = pc->next;
    if (pc->next)
        pc->next->prev = pc->prev;
    env->n_conns--;
    metrics_add(pc->mblk, MC_CLOSED, 1);
    env->snap_release(pc->snap);
    pc->magic = 0;
    free(pc);
}

/* Marks pc closed; memory goes when the current callback returns. */
void
pc_close(struct proxy_conn *pc)
{
    pc->dead = true;
    if (pc->busy == 0)
        pc_free(pc);
}

void
proxy_env_cleanup(struct proxy_env *env)
{
    while (env->conns != NULL)
        pc_free(env->conns);
    stream_sweeper_stop(&env->quiet, env->loop);
    pool_free(env->pool);
    env->pool = NULL;
}

void
pc_set_timer(struct proxy_conn *pc, int64_t ms)
{
    struct ev_loop *loop = pc->env->loop;
    if (ms <= 0) {
        pc->deadline = 0; /* an armed timer finds nothing due */
        return;
    }
    double after = (double)ms / 1000.0;
    double at = ev_now(loop) + after;
    pc->deadline = at;
    if (ev_is_active(&pc->timer) && pc->timer_at <= at)
        return; /* fires first; the callback re-arms for the rest */
    ev_timer_stop(loop, &pc->timer);
    ev_timer_set(&pc->timer, after, 0.0);
    ev_timer_start(loop, &pc->timer);
    pc->timer_at = at;
}

void
proxy_accept(struct proxy_env *env, int fd, const struct sockaddr_storage *peer,
             void *snap, struct tls_listener *tls, const struct http_site *site)
{
    struct proxy_conn *pc = xcalloc(1, sizeof(*pc));
    pc->magic = PROXY_CONN_MAGIC;
    pc->env = env;
    pc->snap = snap;
    pc->tlsl = tls;
    pc->site = site;
    pc->mblk = metrics_block(env->mw, site->mbase);
    metrics_add(pc->mblk, MC_ACCEPTED, 1);
    pc->id = ((uint64_t)(env->worker + 1) << 40) | ++env->next_id;
    cg_addr_text(peer, pc->peer, sizeof(pc->peer));
    /* TCP_NODELAY: inherited from the listening socket (loop/server.c) */
    stream_init(&pc->s, fd, tls_conn_accept(tls, fd, pc->id));
    pc->next = env->conns;
    if (env->conns)
        env->conns->prev = pc;
    env->conns = pc;
    env->n_conns++;
    ev_io_init(&pc->io, pc_io_cb, fd, EV_READ);
    pc->io.data = pc;
    ev_init(&pc->timer, pc_timer_cb);
    pc->timer.data = pc;
    if (pc->s.tls == NULL) {
        cg_log(CG_LOG_ERROR, pc->id, "SSL_new() failed");
        pc_close(pc);
        return;
    }
    pc->state = PC_HANDSHAKE;
    pc_set_timer(pc, site->cfg->timeouts.handshake_ms);
    conn_run(pc);
}

static void
start_head(struct proxy_conn *pc)
{
    pc->state = PC_HEAD;
    pc->head_started = false;
    pc->req_done = pc->resp_started = pc->resp_done = false;
    pc->req_chunked = pc->resp_chunked = pc->interim = false;
    pc->upgrade_req = pc->want_tunnel = pc->retried = false;
    pc->local = false;
    pc->route = NULL;
    pc->refusal = NULL;
    pc->status = 0;
    pc->bytes_out = 0;
    XFREE(&pc->target);
    XFREE(&pc->host);
    XFREE(&pc->host_hdr);
    XFREE(&pc->path);
    cg_buf_shrink(&pc->in, 0);
    cg_buf_shrink(&pc->out, 0);
    pc_set_timer(pc, pc->site->cfg->timeouts.idle_ms);
}

static bool
do_handshake(struct proxy_conn *pc)
{
    int r = stream_handshake(&pc->s, pc->site->cfg->name, pc->peer, pc->mblk);
    if (r < 0)
        pc_close(pc);
    if (r <= 0 || (pc->recheck && !proxy_handshake_recheck(pc)))
        return false;
    pc->req =
        http_parser_new(true, pc->site->cfg->limits.header_bytes,
                        pc->site->cfg->limits.header_count, req_body_sink, pc);
    start_head(pc);
    return true;
}

/* True when the client prefers JSON to HTML for error pages. */
static bool
accepts_json(const struct http_msg *m)
{
    long i = http_msg_find(m, "accept", 0);
    if (i < 0)
        return false;
    struct cg_str v = http_msg_value(m, (size_t)i);
    return http_accept_prefers_json(v.p, v.len);
}

/* Host of the request (absolute-form authority, else Host, else SNI),
 * normalised, into pc->host_hdr / pc->host; path gets the target's path.
 * Returns 0, or the refusal status with its reason in *why: 400
 * "bad_host", 421 "misdirected" (the host names a virtual host with
 * another client-auth policy than the handshake's). */
static int
request_host(struct proxy_conn *pc, const struct http_msg *m,
             struct cg_str target, struct cg_str *path, const char **why)
{
    struct cg_str authority;
    if (http_target_split_absolute(target, &authority, path)) {
        pc->host_hdr = xstrndup(authority.p, authority.len);
    } else {
        *path = target;
        long hi = http_msg_find(m, "host", 0);
        if (hi >= 0) {
            struct cg_str hv = http_msg_value(m, (size_t)hi);
            pc->host_hdr = xstrndup(hv.p, hv.len);
        }
    }
    if (pc->host_hdr != NULL) {
        struct cg_buf host;
        cg_buf_init(&host);
        if (!http_host_normalize(pc->host_hdr, strlen(pc->host_hdr), &host)) {
            cg_buf_cleanup(&host);
            *why = "bad_host";
            return 400;
        }
        pc->host = cg_buf_take(&host);
    } else if (tls_conn_sni(pc->s.tls) != NULL) {
        pc->host = xstrdup(tls_conn_sni(pc->s.tls));
    }
    size_t vc = tls_conn_vhost(pc->s.tls);
    size_t vh = pc->host ? tls_listener_vhost_find(pc->tlsl, pc->host) : vc;
    if (vh != vc && !tls_listener_vhost_same_auth(pc->tlsl, vh, vc)) {
        *why = "misdirected";
        return 421;
    }
    return 0;
}

/* Normalises *path into pc->path (dot segments, "*" for OPTIONS *) and
 * points *path at it: 0, or 400 "bad_path" when it cannot be routed
 * safely. */
static int
request_path(struct proxy_conn *pc, struct cg_str *path, const char **why)
{
    if (path->len == 1 && path->p[0] == '*') {
        pc->path = xstrdup("*");
        *path = CG_STR("/");
        return 0;
    }
    struct cg_buf np;
    cg_buf_init(&np);
    if (!http_path_normalize(path->p, path->len, &np)) {
        cg_buf_cleanup(&np);
        *why = "bad_path";
        return 400;
    }
    pc->path = cg_buf_take(&np);
    *path = (struct cg_str){pc->path, strlen(pc->path)};
    return 0;
}

/* Decides what to do with a complete request head. */
static void
on_request_head(struct proxy_conn *pc)
{
    const struct http_msg *m = http_parser_msg(pc->req);
    struct cg_str target = http_msg_target(m), path;
    cg_strlcpy(pc->method, m->method, sizeof(pc->method));
    pc->target = xstrndup(target.p, target.len);
    pc->json_errors = accepts_json(m);
    pc->client_keepalive = m->keep_alive;
    pc->is_head = m->is_head;
    pc->upgrade_req = m->upgrade;
    pc->http10 = m->version_minor == 0;
    pc->req_chunked = m->framing == HTTP_BODY_CHUNKED;
    pc_set_timer(pc, pc->site->cfg->timeouts.idle_ms);
    const char *why = NULL;
    int status = request_host(pc, m, target, &path, &why);
    if (status == 0)
        status = request_path(pc, &path, &why);
    if (status != 0) {
        resp_refuse(pc, status, why);
        return;
    }
    pc->route = http_site_route(pc->site, pc->host, path.p, path.len);
    if (pc->route == NULL) {
        resp_refuse(pc, 404, "no_route");
        return;
    }
    why =
        ident_policy_check(&pc->route->cfg->allow, tls_conn_identity(pc->s.tls),
                           tls_conn_verdict(pc->s.tls));
    if (why != NULL) {
        resp_refuse(pc, 403, why);
        return;
    }
    if (CG_UP_LOCAL(pc->route->cfg->upstream.scheme)) {
        pc->local = true; /* the body is read and dropped, then resp_local */
        pc->state = PC_BODY;
        return;
    }
    char err[256];
    pc->up = up_get(pc, err, sizeof(err));
    if (pc->up == NULL) {
        cg_log(CG_LOG_WARN, pc->id, "upstream %s: %s",
               pc->route->cfg->upstream.url, err);
        resp_refuse(pc, 502, "upstream_connect");
        return;
    }
    pc->state = PC_BODY;
    resp_forward_head(pc);
}

/* Parses client bytes according to the state; true on progress. */
static bool
process_client(struct proxy_conn *pc)
{
    bool progress = false;
    while (!pc->dead &&
           (pc->state == PC_HEAD || (pc->state == PC_BODY && !pc->req_done))) {
        if (pc->state == PC_BODY && !pc->local &&
            (pc->up == NULL ||
             cg_buf_pending(&pc->up->out) >= PROXY_HIGH_WATER))
            break;
        size_t avail = cg_buf_pending(&pc->in), used = 0;
        if (avail > PROXY_FEED_MAX)
            avail = PROXY_FEED_MAX;
        if (avail > 0 && pc->state == PC_HEAD && !pc->head_started) {
            pc->head_started = true;
            pc->t_start = cg_now_ms();
            pc_set_timer(pc, pc->site->cfg->timeouts.header_ms);
        }
        enum http_pev ev =
            http_parser_execute(pc->req, cg_buf_head(&pc->in), avail, &used);
        cg_buf_consume(&pc->in, used);
        if (used > 0)
            progress = true;
        if (ev == HTTP_PEV_NEED_MORE)
            break;
        progress = true;
        if (ev == HTTP_PEV_HEAD) {
            on_request_head(pc);
        } else if (ev == HTTP_PEV_DONE) {
            pc->req_done = true;
            pc_set_timer(pc, 0);
            if (pc->req_chunked && pc->up != NULL)
                cg_buf_puts(&pc->up->out, "0\r\n\r\n");
            if (pc->up != NULL)
                up_arm_read_timer(pc->up, true);
            if (pc->local)
                resp_local(pc);
        } else {
            const char *reason;
            int status = http_parser_error(pc->req, &reason);
            resp_refuse(pc, status, reason);
        }
    }
    if (pc->state == PC_TUNNEL && pc->up != NULL &&
        cg_buf_pending(&pc->in) > 0) {
        cg_buf_append(&pc->up->out, cg_buf_head(&pc->in),
                      cg_buf_pending(&pc->in));
        cg_buf_reset(&pc->in);
        progress = true;
    }
    return progress;
}

/* The exchange is over: reuse or close both sides. */
void
finish_exchange(struct proxy_conn *pc, bool upstream_reusable)
{
    resp_access_log(pc);
    if (!pc->req_done)
        pc->close_after = true;
    if (pc->up != NULL) {
        up_release(pc->up, upstream_reusable && pc->req_done);
        pc->up = NULL;
    }
    if (pc->close_after || pc->env->draining || !pc->client_keepalive) {
        pc->state = PC_CLOSING;
        pc_set_timer(pc, PROXY_LINGER_MS);
        return;
    }
    start_head(pc);
}

/* Switches to a byte tunnel after a 101 answer to an upgrade request. */
static void
start_tunnel(struct proxy_conn *pc)
{
    struct upconn *up = pc->up;
    resp_access_log(pc);
    pc->state = PC_TUNNEL;
    up_arm_read_timer(up, false);
    cg_buf_append(&pc->out, cg_buf_head(&up->in), cg_buf_pending(&up->in));
    cg_buf_reset(&up->in);
    pc_set_timer(pc, pc->site->cfg->timeouts.idle_ms);
}

/* Parses upstream bytes; true on progress. */
static bool
process_upstream(struct proxy_conn *pc)
{
    struct upconn *up = pc->up;
    bool progress = false;
    if (up == NULL || up->state != UP_READY)
        return false;
    if (pc->state == PC_TUNNEL) {
        if (cg_buf_pending(&up->in) == 0)
            return false;
        cg_buf_append(&pc->out, cg_buf_head(&up->in), cg_buf_pending(&up->in));
        cg_buf_reset(&up->in);
        return true;
    }
    while (pc->state == PC_BODY && pc->up == up &&
           cg_buf_pending(&pc->out) < PROXY_HIGH_WATER) {
        size_t avail = cg_buf_pending(&up->in), used = 0;
        if (avail > PROXY_FEED_MAX)
            avail = PROXY_FEED_MAX;
        enum http_pev ev =
            http_parser_execute(up->resp, cg_buf_head(&up->in), avail, &used);
        cg_buf_consume(&up->in, used);
        progress |= used > 0;
        if (ev == HTTP_PEV_NEED_MORE)
            break;
        progress = true;
        if (ev == HTTP_PEV_HEAD) {
            resp_write_head(pc, http_parser_msg(up->resp));
        } else if (ev == HTTP_PEV_DONE) {
            if (pc->interim) {
                pc->interim = false;
                http_parser_set_head_response(up->resp, pc->is_head);
                continue;
            }
            if (pc->want_tunnel) {
                start_tunnel(pc);
                break;
            }
            if (pc->resp_chunked)
                cg_buf_puts(&pc->out, "0\r\n\r\n");
            pc->resp_done = true;
            finish_exchange(pc, http_parser_msg(up->resp)->keep_alive);
        } else {
            const char *reason;
            http_parser_error(up->resp, &reason);
            cg_log(CG_LOG_WARN, pc->id, "bad upstream response from %s: %s",
                   pc->route->cfg->upstream.url, reason);
            resp_refuse(pc, 502, "upstream_protocol");
        }
    }
    return progress;
}

/* Upstream closed or failed while pc waits on it. */
static void
upstream_gone(struct proxy_conn *pc, bool eof)
{
    struct upconn *up = pc->up;
    if (eof && up->got_bytes && pc->state == PC_BODY) {
        enum http_pev ev = http_parser_finish(up->resp);
        if (ev == HTTP_PEV_DONE) {
            if (pc->resp_chunked)
                cg_buf_puts(&pc->out, "0\r\n\r\n");
            finish_exchange(pc, false);
            return;
        }
    }
    if (pc->state == PC_TUNNEL) {
        up_release(up, false);
        pc->up = NULL;
        pc->state = PC_CLOSING;
        pc_set_timer(pc, PROXY_LINGER_MS);
        return;
    }
    if (!up->got_bytes && up->reused && !pc->retried &&
        http_parser_msg(pc->req)->framing == HTTP_BODY_NONE) {
        /* a pooled connection the upstream closed meanwhile: retry once */
        char err[256];
        pc->retried = true;
        up_release(up, false);
        pc->up = up_get(pc, err, sizeof(err));
        if (pc->up != NULL) {
            resp_forward_head(pc);
            pc->req_done = true;
            up_arm_read_timer(pc->up, true);
            return;
        }
        resp_refuse(pc, 502, "upstream_connect");
        return;
    }
    cg_log(CG_LOG_WARN, pc->id, "upstream %s: %s", pc->route->cfg->upstream.url,
           up->err[0] ? up->err : "closed before the response ended");
    resp_refuse(pc, 502,
                up->got_bytes ? "upstream_protocol" : "upstream_closed");
}

static bool
client_may_read(const struct proxy_conn *pc)
{
    if (cg_buf_pending(&pc->in) >= PROXY_HIGH_WATER)
        return false;
    switch (pc->state) {
    case PC_HEAD:
        return true;
    case PC_BODY:
        if (pc->local)
            return !pc->req_done;
        return !pc->req_done && pc->up != NULL &&
               cg_buf_pending(&pc->up->out) < PROXY_HIGH_WATER;
    case PC_TUNNEL:
        return pc->up != NULL &&
               cg_buf_pending(&pc->up->out) < PROXY_HIGH_WATER;
    default:
        return false;
    }
}

static bool
upstream_may_read(const struct proxy_conn *pc)
{
    const struct upconn *up = pc->up;
    return up != NULL && up->state == UP_READY &&
           (pc->state == PC_BODY || pc->state == PC_TUNNEL) &&
           cg_buf_pending(&pc->out) < PROXY_HIGH_WATER &&
           cg_buf_pending(&up->in) < PROXY_HIGH_WATER;
}

/* Client EOF or error. */
static void
client_gone(struct proxy_conn *pc, bool eof)
{
    if (eof && pc->state == PC_HEAD && pc->head_started)
        cg_log(CG_LOG_INFO, pc->id, "client closed during a request head");
    else if (!eof)
        cg_log(CG_LOG_INFO, pc->id, "client connection error: %s",
               tls_conn_error(pc->s.tls));
    if (pc->state == PC_BODY && !pc->resp_done && pc->route != NULL) {
        pc->status = 499;
        resp_access_log(pc);
    }
    pc_close(pc);
}

/* The upstream connection's connect step, then its queued bytes: 1
 * progress, 0 none, -1 it is gone (handled). */
static int
upstream_send(struct proxy_conn *pc)
{
    struct upconn *up = pc->up;
    int progress = 0;
    if (up != NULL && up->state != UP_READY) {
        int c = up_connect_step(up);
        if (c < 0) {
            upstream_gone(pc, false);
            return -1;
        }
        progress |= c > 0;
    }
    if (up != NULL && up->state == UP_READY) {
        int r = stream_flush(&up->s, &up->out, NULL);
        if (r < 0) {
            snprintf(up->err, sizeof(up->err), "write failed");
            upstream_gone(pc, false);
            return -1;
        }
        progress |= r > 0;
    }
    return progress;
}

/* One pass over both sides; returns true on progress. */
static bool
run_once(struct proxy_conn *pc)
{
    bool progress = false;
    int r = pc->state == PC_CLOSING ? stream_flush_last(&pc->s, &pc->out, NULL)
                                    : stream_flush(&pc->s, &pc->out, NULL);
    if (r < 0) {
        client_gone(pc, false);
        return false;
    }
    progress |= r > 0;
    if (pc->state == PC_CLOSING) {
        if (cg_buf_pending(&pc->out) == 0)
            pc_close(pc);
        return false;
    }
    r = upstream_send(pc);
    if (r < 0)
        return true;
    progress |= r > 0;
    if (client_may_read(pc)) {
        r = stream_fill(&pc->s, &pc->in);
        if (r < 0) {
            client_gone(pc, r == -2);
            return false;
        }
        if (r > 0 && pc->state != PC_HEAD)
            pc_set_timer(pc, pc->site->cfg->timeouts.idle_ms);
        progress |= r > 0;
    }
    progress |= process_client(pc);
    if (pc->dead || pc->state == PC_CLOSING)
        return progress;
    if (upstream_may_read(pc)) {
        struct upconn *up = pc->up;
        r = stream_fill(&up->s, &up->in);
        if (r < 0) {
            upstream_gone(pc, r == -2);
            return true;
        }
        if (r > 0) {
            up->got_bytes = true;
            if (up->armed)
                up_arm_read_timer(up, true);
            if (pc->state == PC_TUNNEL)
                pc_set_timer(pc, pc->site->cfg->timeouts.idle_ms);
        }
        progress |= r > 0;
    }
    progress |= process_upstream(pc);
    return progress;
}

static void
update_io(struct proxy_conn *pc)
{
    bool reading = pc->state == PC_HANDSHAKE || client_may_read(pc);
    int ev = pc->state == PC_HANDSHAKE
                 ? pc->s.rwant
                 : stream_events(&pc->s, reading, cg_buf_pending(&pc->out));
    stream_watch(pc->env->loop, &pc->io, ev);
    if (pc->up != NULL)
        up_update_io(pc->up, upstream_may_read(pc));
}

void
conn_run(struct proxy_conn *pc)
{
    quiet_touch(&pc->env->quiet.active, &pc->quiet, ev_now(pc->env->loop));
    pc->busy++;
    if (pc->state == PC_HANDSHAKE && !do_handshake(pc))
        goto out;
    for (int i = 0; i < 256 && !pc->dead; i++) {
        if (!run_once(pc))
            break;
    }
    /* Bytes decrypted inside TLS raise no fd event: keep reading them. */
    if (!pc->dead && stream_pending(&pc->s) && client_may_read(pc))
        ev_feed_event(pc->env->loop, &pc->io, EV_READ);
out:
    pc->busy--;
    if (pc->dead && pc->busy == 0)
        pc_free(pc);
    else if (!pc->dead) {
        if (pc->state == PC_HEAD) { /* idle between requests: no buffers */
            cg_buf_shrink(&pc->in, 0);
            cg_buf_shrink(&pc->out, 0);
        }
        update_io(pc);
    }
}

static void
pc_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    struct proxy_conn *pc =
        CAST_OBJ(struct proxy_conn, w->data, PROXY_CONN_MAGIC);
    stream_event(&pc->s, revents);
    conn_run(pc);
}

static void
pc_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct proxy_conn *pc =
        CAST_OBJ(struct proxy_conn, w->data, PROXY_CONN_MAGIC);
    if (pc->deadline == 0)
        return; /* the timeout was cancelled */
    double left = pc->deadline - ev_now(loop);
    if (left > 0) { /* moved later since the timer was armed */
        ev_timer_set(w, left, 0.0);
        ev_timer_start(loop, w);
        pc->timer_at = pc->deadline;
        return;
    }
    pc->deadline = 0;
    pc->busy++;
    switch (pc->state) {
    case PC_HANDSHAKE:
        cg_log(CG_LOG_INFO, pc->id, "handshake timed out (peer %s)", pc->peer);
        metrics_add(pc->mblk, MC_HS_FAILED + METRICS_R_timeout, 1);
        pc_close(pc);
        break;
    case PC_HEAD:
        if (pc->head_started)
            resp_refuse(pc, 408, "header_timeout");
        else
            pc_close(pc);
        break;
    case PC_BODY:
        resp_refuse(pc, 408, "body_timeout");
        break;
    default:
        pc_close(pc);
        break;
    }
    pc->busy--;
    if (pc->dead)
        pc_free(pc);
    else
        conn_run(pc);
}
