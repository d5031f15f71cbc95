/*
 * The main thread: loads and validates the config, builds snapshots,
 * owns the registry of listening sockets, and answers signals (SIGHUP
 * reload, SIGTERM/SIGINT drain and exit).
 */
#include "loop/server.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "core/xmalloc.h"
#include "loop/loop_int.h"

#define MAX_WORKERS 256

/* Listening sockets of one address: one per worker (SO_REUSEPORT). */
struct lsock {
    char *key; /* "<listener name> <listen string>": two listeners on
                  port 0 never share sockets */
    int port;  /* the port actually bound */
    int *fds;
};

struct server {
    char *path;
    unsigned char master[TLS_MASTER_LEN];
    struct cg_snapshot *snap; /* current (main's reference) */
    uint64_t generation;
    int nworkers;
    struct worker *workers;
    struct lsock *socks; /* parallel to snap->cfg->listeners */
    size_t n_socks;
    int log_fd;
    ev_signal sighup, sigterm, sigint;
};

static void
print_errors(const struct cg_strlist *errors)
{
    for (size_t i = 0; i < errors->n; i++)
        fprintf(stderr, "%s\n", errors->v[i]);
}

/* Loads config + snapshot; errors collected. */
static int
load(const char *path, const unsigned char *master, uint64_t gen,
     struct cg_snapshot **out, struct cg_strlist *errors)
{
    struct cg_config *cfg = NULL;
    int rc = config_load(path, &cfg, errors);
    if (rc != 0)
        return rc;
    return snapshot_build(cfg, master, gen, out, errors);
}

int
server_check(const char *config_path)
{
    struct cg_strlist errors = {0};
    unsigned char master[TLS_MASTER_LEN] = {0};
    struct cg_snapshot *s = NULL;
    tls_global_init();
    int rc = load(config_path, master, 1, &s, &errors);
    if (rc != 0) {
        print_errors(&errors);
        cg_strlist_clear(&errors);
        return 2;
    }
    printf("%s: configuration is valid (%zu listener%s)\n", config_path,
           s->cfg->n_listeners, s->cfg->n_listeners == 1 ? "" : "s");
    snapshot_unref(s);
    return 0;
}

/* Opens one listening socket; port 0 picks a port. */
static int
open_listen(const struct cg_listener_cfg *lc, int port, int *bound,
            char *err)
{
    struct sockaddr_storage ss = lc->addr;
    if (ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
    if (fd < 0)
        return cg_seterr(err, CG_EIO, "socket() failed: %s",
                         strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, lc->addrlen) != 0 ||
        listen(fd, 1024) != 0) {
        int e = errno;
        close(fd);
        return cg_seterr(err, CG_EIO, "%s: bind/listen failed: %s",
                         lc->listen, strerror(e));
    }
    socklen_t len = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &len);
    *bound = ntohs(ss.ss_family == AF_INET6
                       ? ((struct sockaddr_in6 *)&ss)->sin6_port
                       : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static void
lsock_close(struct lsock *s, int nworkers)
{
    for (int i = 0; i < nworkers; i++) {
        if (s->fds[i] >= 0)
            close(s->fds[i]);
    }
    free(s->fds);
    free(s->key);
}

/* Opens the sockets of one listener for every worker. */
static int
lsock_open(struct lsock *s, const struct cg_listener_cfg *lc, int nworkers,
           char *err)
{
    s->key = xasprintf("%s %s", lc->name, lc->listen);
    s->fds = xmalloc(sizeof(int) * (size_t)nworkers);
    int port = ntohs(lc->addr.ss_family == AF_INET6
                         ? ((const struct sockaddr_in6 *)&lc->addr)->sin6_port
                         : ((const struct sockaddr_in *)&lc->addr)->sin_port);
    for (int i = 0; i < nworkers; i++)
        s->fds[i] = -1;
    for (int i = 0; i < nworkers; i++) {
        int bound = 0;
        int fd = open_listen(lc, port, &bound, err);
        if (fd < 0) {
            lsock_close(s, nworkers);
            return fd;
        }
        s->fds[i] = fd;
        port = bound;
    }
    s->port = port;
    return 0;
}

/*
 * Sockets for the listeners of snap: reused from the current registry
 * when the address is unchanged, opened otherwise. On failure nothing
 * changes (new sockets closed). Returns the new registry (owned).
 */
static int
socks_for(struct server *sv, const struct cg_snapshot *snap,
          struct lsock **out, char *err)
{
    size_t n = snap->cfg->n_listeners;
    struct lsock *ns = xcalloc(n ? n : 1, sizeof(*ns));
    for (size_t i = 0; i < n; i++) {
        const struct cg_listener_cfg *lc = &snap->cfg->listeners[i];
        bool found = false;
        char *key = xasprintf("%s %s", lc->name, lc->listen);
        for (size_t j = 0; j < sv->n_socks && !found; j++) {
            if (sv->socks[j].key != NULL &&
                strcmp(sv->socks[j].key, key) == 0) {
                ns[i] = sv->socks[j];
                ns[i].key = xstrdup(sv->socks[j].key);
                ns[i].fds = xmalloc(sizeof(int) * (size_t)sv->nworkers);
                memcpy(ns[i].fds, sv->socks[j].fds,
                       sizeof(int) * (size_t)sv->nworkers);
                found = true;
            }
        }
        free(key);
        if (!found && lsock_open(&ns[i], lc, sv->nworkers, err) != 0) {
            for (size_t k = 0; k < i; k++) {
                bool reused = false;
                for (size_t j = 0; j < sv->n_socks; j++)
                    reused |= strcmp(sv->socks[j].key, ns[k].key) == 0;
                if (reused) {
                    free(ns[k].fds);
                    free(ns[k].key);
                } else {
                    lsock_close(&ns[k], sv->nworkers);
                }
            }
            free(ns);
            return CG_EIO;
        }
    }
    *out = ns;
    return 0;
}

static void
socks_free(struct lsock *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(s[i].fds);
        free(s[i].key);
    }
    free(s);
}

/* Writes {"listener": port, ...} atomically (temp file + rename). */
static void
write_ports(struct server *sv)
{
    const struct cg_config *cfg = sv->snap->cfg;
    if (cfg->ports_file == NULL)
        return;
    struct cg_buf b;
    cg_buf_init(&b);
    cg_buf_putc(&b, '{');
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        cg_buf_printf(&b, "%s\"", i ? ", " : "");
        cg_json_escape(&b, cfg->listeners[i].name,
                       strlen(cfg->listeners[i].name));
        cg_buf_printf(&b, "\": %d", sv->socks[i].port);
    }
    cg_buf_puts(&b, "}\n");
    char *tmp = xasprintf("%s.tmp", cfg->ports_file);
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fwrite(cg_buf_head(&b), 1, cg_buf_pending(&b), f) !=
                         cg_buf_pending(&b) ||
        fclose(f) != 0 || rename(tmp, cfg->ports_file) != 0)
        cg_log(CG_LOG_ERROR, 0, "cannot write ports file %s: %s",
               cfg->ports_file, strerror(errno));
    free(tmp);
    cg_buf_cleanup(&b);
}

static int *
fds_for_worker(const struct lsock *s, size_t n, int w)
{
    int *fds = xmalloc(sizeof(int) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        fds[i] = s[i].fds[w];
    return fds;
}

/* Applies log settings of a config; reopens the log file. */
static void
apply_log(struct server *sv, const struct cg_config *cfg)
{
    int fd = 2;
    if (cfg->log_file != NULL) {
        fd = open(cfg->log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                  0640);
        if (fd < 0) {
            cg_log(CG_LOG_ERROR, 0, "cannot open log file %s: %s",
                   cfg->log_file, strerror(errno));
            fd = 2;
        }
    }
    cg_log_setup(cfg->log_level, fd);
    if (sv->log_fd > 2)
        close(sv->log_fd);
    sv->log_fd = fd;
}

static void
log_reload_failed(const struct cg_strlist *errors, const char *why)
{
    struct cg_logrec r;
    cg_logrec_begin(&r, CG_LOG_ERROR, "reload_failed");
    cg_logrec_str(&r, "msg", why);
    cg_logrec_strv(&r, "errors", errors->v, errors->n);
    cg_logrec_end(&r);
}

static void
reload(struct server *sv)
{
    struct cg_strlist errors = {0};
    struct cg_snapshot *snap = NULL;
    struct lsock *ns = NULL;
    char err[CG_ERR_LEN];
    if (load(sv->path, sv->master, sv->generation + 1, &snap, &errors) != 0) {
        log_reload_failed(&errors, "invalid configuration: still serving "
                                   "the previous one");
        goto out;
    }
    if (socks_for(sv, snap, &ns, err) != 0) {
        cg_strlist_add(&errors, err);
        log_reload_failed(&errors, "cannot listen: still serving the "
                                   "previous configuration");
        snapshot_unref(snap);
        goto out;
    }
    /* sockets of removed listeners are closed by the workers */
    socks_free(sv->socks, sv->n_socks);
    sv->socks = ns;
    sv->n_socks = snap->cfg->n_listeners;
    for (int i = 0; i < sv->nworkers; i++) {
        snapshot_ref(snap);
        worker_publish(&sv->workers[i], snap,
                       fds_for_worker(ns, sv->n_socks, i));
    }
    snapshot_unref(sv->snap);
    sv->snap = snap;
    sv->generation++;
    apply_log(sv, snap->cfg);
    if (snap->cfg->workers != 0 && snap->cfg->workers != sv->nworkers)
        cg_log(CG_LOG_WARN, 0, "workers: changing the worker count needs a "
                               "restart; keeping %d", sv->nworkers);
    write_ports(sv);
    struct cg_logrec r;
    cg_logrec_begin(&r, CG_LOG_INFO, "reload");
    cg_logrec_int(&r, "generation", (int64_t)sv->generation);
    cg_logrec_int(&r, "listeners", (int64_t)sv->n_socks);
    cg_logrec_end(&r);
out:
    cg_strlist_clear(&errors);
}

static void
signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    struct server *sv = w->data;
    if (w->signum == SIGHUP) {
        cg_log(CG_LOG_INFO, 0, "SIGHUP: reloading %s", sv->path);
        reload(sv);
        return;
    }
    cg_log(CG_LOG_INFO, 0, "%s: draining connections",
           w->signum == SIGTERM ? "SIGTERM" : "SIGINT");
    ev_break(loop, EVBREAK_ALL);
}

static int
worker_count(const struct cg_config *cfg)
{
    if (cfg->workers > 0)
        return cfg->workers > MAX_WORKERS ? MAX_WORKERS : cfg->workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > MAX_WORKERS ? MAX_WORKERS : (int)n);
}

static void
write_pid(const struct cg_config *cfg)
{
    if (cfg->pid_file == NULL)
        return;
    FILE *f = fopen(cfg->pid_file, "w");
    if (f == NULL) {
        cg_log(CG_LOG_ERROR, 0, "cannot write pid file %s: %s",
               cfg->pid_file, strerror(errno));
        return;
    }
    fprintf(f, "%ld\n", (long)getpid());
    fclose(f);
}

static void
log_started(struct server *sv)
{
    struct cg_logrec r;
    cg_logrec_begin(&r, CG_LOG_INFO, "started");
    cg_logrec_int(&r, "pid", (int64_t)getpid());
    cg_logrec_int(&r, "workers", sv->nworkers);
    for (size_t i = 0; i < sv->n_socks; i++) {
        char key[96];
        snprintf(key, sizeof(key), "port_%s",
                 sv->snap->cfg->listeners[i].name);
        cg_logrec_int(&r, key, sv->socks[i].port);
    }
    cg_logrec_end(&r);
}

/* Stops the workers (drain), joins them and frees everything. */
static void
shutdown_all(struct server *sv, struct ev_loop *loop)
{
    for (int i = 0; i < sv->nworkers; i++)
        worker_stop(&sv->workers[i]);
    for (int i = 0; i < sv->nworkers; i++)
        worker_join(&sv->workers[i]);
    free(sv->workers);
    socks_free(sv->socks, sv->n_socks); /* fds closed by the workers */
    if (sv->snap->cfg->pid_file != NULL)
        unlink(sv->snap->cfg->pid_file);
    snapshot_unref(sv->snap);
    ev_signal_stop(loop, &sv->sighup);
    ev_signal_stop(loop, &sv->sigterm);
    ev_signal_stop(loop, &sv->sigint);
    memset(sv->master, 0, sizeof(sv->master));
    cg_log(CG_LOG_INFO, 0, "stopped");
    if (sv->log_fd > 2)
        close(sv->log_fd);
    cg_log_setup(CG_LOG_INFO, 2);
    free(sv->path);
}

int
server_run(const char *config_path)
{
    struct server sv = {0};
    struct cg_strlist errors = {0};
    char err[CG_ERR_LEN];
    sv.log_fd = 2;
    tls_global_init();
    signal(SIGPIPE, SIG_IGN);
    if (tls_master_generate(sv.master) != 0) {
        fprintf(stderr, "certgate: RAND_bytes() failed\n");
        return 1;
    }
    char *abs = realpath(config_path, NULL);
    sv.path = abs ? abs : xstrdup(config_path);
    if (load(sv.path, sv.master, 1, &sv.snap, &errors) != 0) {
        print_errors(&errors);
        cg_strlist_clear(&errors);
        free(sv.path);
        return 2;
    }
    sv.generation = 1;
    apply_log(&sv, sv.snap->cfg);
    sv.nworkers = worker_count(sv.snap->cfg);
    if (socks_for(&sv, sv.snap, &sv.socks, err) != 0) {
        cg_log(CG_LOG_ERROR, 0, "%s", err);
        snapshot_unref(sv.snap);
        free(sv.path);
        return 1;
    }
    sv.n_socks = sv.snap->cfg->n_listeners;
    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    sv.workers = xcalloc((size_t)sv.nworkers, sizeof(*sv.workers));
    /* workers inherit a mask without the signals the main thread handles */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    for (int i = 0; i < sv.nworkers; i++) {
        snapshot_ref(sv.snap);
        if (worker_start(&sv.workers[i], i, sv.snap,
                         fds_for_worker(sv.socks, sv.n_socks, i)) != 0) {
            cg_log(CG_LOG_ERROR, 0, "cannot start worker %d", i);
            return 1;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    ev_signal_init(&sv.sighup, signal_cb, SIGHUP);
    ev_signal_init(&sv.sigterm, signal_cb, SIGTERM);
    ev_signal_init(&sv.sigint, signal_cb, SIGINT);
    sv.sighup.data = sv.sigterm.data = sv.sigint.data = &sv;
    ev_signal_start(loop, &sv.sighup);
    ev_signal_start(loop, &sv.sigterm);
    ev_signal_start(loop, &sv.sigint);
    write_pid(sv.snap->cfg);
    write_ports(&sv);
    log_started(&sv);
    ev_run(loop, 0);
    shutdown_all(&sv, loop);
    ev_loop_destroy(loop);
    return 0;
}
