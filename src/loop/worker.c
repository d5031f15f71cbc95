/*
 * Worker threads: one libev loop each, accepting on their own
 * SO_REUSEPORT sockets and running the proxy for their connections.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "loop/loop_int.h"

#define ACCEPT_BATCH 64

static void
accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    struct wlisten *l = io->data;
    struct worker *w = l->w;
    for (int i = 0; i < ACCEPT_BATCH && !w->stopping; i++) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        int fd = accept4(l->fd, (struct sockaddr *)&peer, &plen,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
                cg_log(CG_LOG_ERROR, 0, "accept4() failed: %s",
                       strerror(errno));
            return;
        }
        struct snap_listener *sl = &w->snap->l[l->li];
        snapshot_ref(w->snap);
        if (sl->site != NULL)
            proxy_accept(&w->env, fd, &peer, w->snap, sl->tls, sl->site);
        else
            relay_accept(&w->renv, fd, &peer, w->snap, sl->tls, sl->relay);
    }
}

static void
listen_stop(struct worker *w, struct wlisten *l, bool close_fd)
{
    ev_io_stop(w->loop, &l->io);
    if (close_fd)
        close(l->fd);
}

/* Applies a new snapshot: keeps sockets it still uses, starts new ones,
 * closes the rest. Open connections keep their own snapshot. */
static void
apply(struct worker *w, struct cg_snapshot *snap, int *fds)
{
    size_t n = snap->cfg->n_listeners;
    struct wlisten *ls = xcalloc(n ? n : 1, sizeof(*ls));
    for (size_t i = 0; i < n; i++) {
        ls[i].fd = fds[i];
        ls[i].li = i;
        ls[i].w = w;
    }
    for (size_t j = 0; j < w->n_ls; j++) {
        bool kept = false;
        for (size_t i = 0; i < n; i++)
            kept |= ls[i].fd == w->ls[j].fd;
        listen_stop(w, &w->ls[j], !kept);
    }
    free(w->ls);
    w->ls = ls;
    w->n_ls = n;
    for (size_t i = 0; i < n; i++) {
        ev_io_init(&ls[i].io, accept_cb, ls[i].fd, EV_READ);
        ls[i].io.data = &ls[i];
        ev_io_start(w->loop, &ls[i].io);
    }
    free(fds);
    if (w->snap != NULL)
        snapshot_unref(w->snap);
    w->snap = snap;
}

/* The current TLS settings of a listener, by name (for revalidation). */
static struct tls_listener *
tls_of(void *arg, const char *listener)
{
    struct worker *w = arg;
    for (size_t i = 0; i < w->snap->cfg->n_listeners; i++) {
        if (strcmp(w->snap->cfg->listeners[i].name, listener) == 0)
            return w->snap->l[i].tls;
    }
    return NULL;
}

static void
drain_check_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    struct worker *w = t->data;
    if (w->env.n_conns == 0 && w->renv.n_conns == 0)
        ev_break(loop, EVBREAK_ALL);
}

static void
drain_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    struct worker *w = t->data;
    if (w->env.n_conns + w->renv.n_conns > 0)
        cg_log(CG_LOG_WARN, 0,
               "worker %d: drain timeout, closing %zu connections", w->idx,
               w->env.n_conns + w->renv.n_conns);
    ev_break(loop, EVBREAK_ALL);
}

static void
begin_stop(struct worker *w)
{
    w->stopping = true;
    for (size_t i = 0; i < w->n_ls; i++)
        listen_stop(w, &w->ls[i], true);
    w->n_ls = 0;
    proxy_drain(&w->env);
    relay_drain(&w->renv);
    ev_timer_init(&w->drain_check, drain_check_cb, 0.0, 0.05);
    w->drain_check.data = w;
    ev_timer_start(w->loop, &w->drain_check);
    double t = (double)w->snap->cfg->drain_timeout_ms / 1000.0;
    ev_timer_init(&w->drain_timer, drain_timeout_cb, t, 0.0);
    w->drain_timer.data = w;
    ev_timer_start(w->loop, &w->drain_timer);
}

static void
wake_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)loop;
    (void)revents;
    struct worker *w = a->data;
    pthread_mutex_lock(&w->mu);
    struct worker_msg m = w->msg;
    bool has = w->has_msg;
    memset(&w->msg, 0, sizeof(w->msg));
    w->has_msg = false;
    pthread_mutex_unlock(&w->mu);
    if (has && m.snap != NULL) {
        if (w->stopping) {
            for (size_t i = 0; i < m.snap->cfg->n_listeners; i++)
                close(m.fds[i]);
            free(m.fds);
            snapshot_unref(m.snap);
        } else {
            apply(w, m.snap, m.fds);
            /* open connections are judged by the new settings too */
            proxy_revalidate(&w->env, tls_of, w);
            relay_revalidate(&w->renv, tls_of, w);
        }
    }
    if (has && m.stop && !w->stopping)
        begin_stop(w);
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    ev_run(w->loop, 0);
    proxy_env_cleanup(&w->env);
    relay_env_cleanup(&w->renv);
    for (size_t i = 0; i < w->n_ls; i++)
        listen_stop(w, &w->ls[i], true);
    free(w->ls);
    w->ls = NULL;
    w->n_ls = 0;
    ev_async_stop(w->loop, &w->wake);
    ev_timer_stop(w->loop, &w->drain_check);
    ev_timer_stop(w->loop, &w->drain_timer);
    return NULL;
}

int
worker_start(struct worker *w, int idx, struct cg_snapshot *snap, int *fds,
             struct metrics_worker *mw)
{
    memset(w, 0, sizeof(*w));
    w->magic = WORKER_MAGIC;
    w->idx = idx;
    w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    if (w->loop == NULL)
        return CG_EIO;
    pthread_mutex_init(&w->mu, NULL);
    ev_async_init(&w->wake, wake_cb);
    w->wake.data = w;
    ev_async_start(w->loop, &w->wake);
    ev_init(&w->drain_check, drain_check_cb);
    ev_init(&w->drain_timer, drain_timeout_cb);
    proxy_env_init(&w->env, w->loop, idx, mw, snapshot_unref);
    relay_env_init(&w->renv, w->loop, idx, mw, snapshot_unref);
    apply(w, snap, fds);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
        return CG_EIO;
    return 0;
}

static void
post(struct worker *w, struct cg_snapshot *snap, int *fds, bool stop)
{
    pthread_mutex_lock(&w->mu);
    if (w->has_msg && w->msg.snap != NULL && snap != NULL) {
        /* an unapplied snapshot is superseded: its fds stay in use by
           the new one (same registry), so only the reference goes */
        snapshot_unref(w->msg.snap);
        free(w->msg.fds);
        w->msg.snap = NULL;
    }
    if (snap != NULL) {
        w->msg.snap = snap;
        w->msg.fds = fds;
    }
    w->msg.stop |= stop;
    w->has_msg = true;
    pthread_mutex_unlock(&w->mu);
    ev_async_send(w->loop, &w->wake);
}

void
worker_publish(struct worker *w, struct cg_snapshot *snap, int *fds)
{
    post(w, snap, fds, false);
}

void
worker_stop(struct worker *w)
{
    post(w, NULL, NULL, true);
}

void
worker_join(struct worker *w)
{
    pthread_join(w->thread, NULL);
    if (w->snap != NULL)
        snapshot_unref(w->snap);
    w->snap = NULL;
    pthread_mutex_lock(&w->mu);
    if (w->msg.snap != NULL) {
        snapshot_unref(w->msg.snap);
        free(w->msg.fds);
    }
    pthread_mutex_unlock(&w->mu);
    pthread_mutex_destroy(&w->mu);
    ev_loop_destroy(w->loop);
}
