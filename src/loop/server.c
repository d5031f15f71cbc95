/*
 * The main thread: loads and validates the config, builds snapshots,
 * owns the registry of listening sockets, and answers signals (SIGHUP
 * reload, SIGTERM/SIGINT drain and exit).
 */
#include "loop/server.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "core/xmalloc.h"
#include "loop/loop_int.h"
#include "store/store.h"

#define MAX_WORKERS 256
#define STORE_WATCH_SECONDS 0.25 /* a revocation bites within this */

/* Listening sockets of one address: one per worker (SO_REUSEPORT). */
struct lsock {
    char *key; /* "<listener name> <listen string>": two listeners on
                  port 0 never share sockets */
    int port;  /* the port actually bound */
    int *fds;
};

struct server {
    char *path;
    struct tls_sessions *sessions; /* outlives every snapshot */
    struct cg_snapshot *snap;      /* current (main's reference) */
    uint64_t generation;
    int nworkers;
    struct worker *workers;
    struct lsock *socks; /* parallel to snap->cfg->listeners */
    size_t n_socks;
    int log_fd;
    ev_signal sighup, sigterm, sigint;
    /* revocations of the built-in CA reach the gateway by this watch */
    char *cfg_text;      /* the config text the current snapshot is of */
    struct store *store; /* open while a trust set has builtin_ca */
    int64_t rev_seq;     /* store revocation sequence built in */
    ev_timer watch;
    ev_timer stale; /* each minute: CRLs past nextUpdate are logged */
    ev_timer trim;  /* once after a rebuild: freed memory back to the OS */
    struct ev_loop *loop;
    struct metrics *metrics;
};

static void
print_errors(const struct cg_strlist *errors)
{
    for (size_t i = 0; i < errors->n; i++)
        fprintf(stderr, "%s\n", errors->v[i]);
}

/* Reads a whole file into an owned string. */
static int
read_text(const char *path, char **out, struct cg_strlist *errors)
{
    FILE *f = fopen(path, "r");
    struct cg_buf b;
    char chunk[8192];
    size_t n;
    if (f == NULL) {
        char line[CG_ERR_LEN];
        snprintf(line, sizeof(line), "%s: cannot read: %s", path,
                 strerror(errno));
        cg_strlist_add(errors, line);
        return CG_EIO;
    }
    cg_buf_init(&b);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        cg_buf_append(&b, chunk, n);
    fclose(f);
    *out = cg_buf_take(&b);
    return 0;
}

/* Builds a snapshot from config text (path names its file, for the base
 * directory of relative paths); errors collected. */
static int
load_text(const char *path, const char *text, struct tls_sessions *sessions,
          uint64_t gen, struct cg_snapshot **out, struct cg_strlist *errors)
{
    struct cg_config *cfg = NULL;
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL)
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        strcpy(dir, ".");
    int rc = config_load_string(text, dir, &cfg, errors);
    free(dir);
    if (rc != 0)
        return rc;
    return snapshot_build(cfg, sessions, gen, out, errors);
}

/* Loads config file + snapshot; *text (optional) gets the file text. */
static int
load(const char *path, struct tls_sessions *sessions, uint64_t gen,
     struct cg_snapshot **out, char **text, struct cg_strlist *errors)
{
    char *t = NULL;
    int rc = read_text(path, &t, errors);
    if (rc == 0)
        rc = load_text(path, t, sessions, gen, out, errors);
    if (rc == 0 && text != NULL)
        *text = t;
    else
        free(t);
    return rc;
}

int
server_check(const char *config_path)
{
    struct cg_strlist errors = {0};
    struct cg_snapshot *s = NULL;
    tls_global_init();
    int rc = load(config_path, NULL, 1, &s, NULL, &errors);
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
open_listen(const struct cg_listener_cfg *lc, int port, int *bound, char *err)
{
    struct sockaddr_storage ss = lc->addr;
    if (ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
    int fd =
        socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return cg_seterr(err, CG_EIO, "socket() failed: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    /* Linux: accepted sockets inherit it (one system call less each) */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, lc->addrlen) != 0 ||
        listen(fd, 1024) != 0) {
        int e = errno;
        close(fd);
        return cg_seterr(err, CG_EIO, "%s: bind/listen failed: %s", lc->listen,
                         strerror(e));
    }
    socklen_t len = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &len);
    *bound =
        ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
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
socks_for(struct server *sv, const struct cg_snapshot *snap, struct lsock **out,
          char *err)
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
    if (f == NULL ||
        fwrite(cg_buf_head(&b), 1, cg_buf_pending(&b), f) !=
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

/* True when a trust set of cfg takes revocations from the store. */
static bool
uses_store(const struct cg_config *cfg)
{
    for (size_t i = 0; i < cfg->n_trusts; i++) {
        if (cfg->trusts[i].builtin_ca)
            return true;
    }
    return false;
}

/* Opens or closes the store watched for revocations. */
static void
store_sync(struct server *sv, const struct cg_config *cfg)
{
    store_close(sv->store);
    sv->store = NULL;
    char err[CG_ERR_LEN];
    if (uses_store(cfg) && store_open(cfg->data_dir, &sv->store, err) != 0)
        cg_log(CG_LOG_ERROR, 0, "cannot watch the store: %s", err);
}

/* The store's revocation sequence (0 when not watching). */
static int64_t
watch_seq(struct server *sv)
{
    int64_t seq = 0;
    char err[CG_ERR_LEN];
    if (sv->store != NULL && store_revocation_seq(sv->store, &seq, err) != 0)
        cg_log(CG_LOG_ERROR, 0, "store_revocation_seq() failed: %s", err);
    return seq;
}

/* Publishes snap (consumed) to the workers with its sockets. */
static int
publish(struct server *sv, struct cg_snapshot *snap, struct cg_strlist *errors)
{
    struct lsock *ns = NULL;
    char err[CG_ERR_LEN];
    if (socks_for(sv, snap, &ns, err) != 0) {
        cg_strlist_add(errors, err);
        snapshot_unref(snap);
        return CG_EIO;
    }
    /* blocks exist before a worker can see the snapshot naming them */
    snapshot_metrics(snap, sv->metrics);
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
    return 0;
}

static size_t
sessions_count(void *arg)
{
    return tls_sessions_count(arg);
}

/* Exposes the metrics of the snapshot now serving (and applies the
 * process-wide settings of its config). */
static void
metrics_sync(struct server *sv)
{
    struct cg_snapshot *s = sv->snap;
    metrics_publish(sv->metrics, s->moffs, s->n_moffs);
    metrics_set_max_identities(sv->metrics, s->cfg->metrics_max_identities);
    metrics_set_sessions_max(sv->metrics, s->cfg->session_cache_max);
    tls_sessions_set_max(sv->sessions, s->cfg->session_cache_max);
    metrics_set_generation(sv->metrics, sv->generation,
                           sv->rev_seq < 0 ? 0 : sv->rev_seq);
    snapshot_metrics_crls(s, sv->metrics);
}

/*
 * Builds a new snapshot and publishes it: from the config file (reload),
 * or from the text of the running config (a revocation in the store: an
 * edited but not yet reloaded file never rides along). On failure the
 * running snapshot keeps serving.
 */
/* A rebuild frees a whole snapshot (a CRL index of 1,000,000 serials is
 * 20 MB) and the transient objects of the CRL parse; the workers drop
 * the old snapshot within a moment. glibc keeps such memory in its arenas
 * (RSS after one reload with a 100k CRL: 10.5 -> 17.5 MB); one
 * malloc_trim after the rebuild settles hands it back (-> 10.7 MB). */
#define TRIM_DELAY_SECONDS 1.0

static void
trim_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    malloc_trim(0);
}

static bool
rebuild(struct server *sv, bool from_file, const char *event)
{
    struct cg_strlist errors = {0};
    ev_timer_stop(sv->loop, &sv->trim);
    ev_timer_set(&sv->trim, TRIM_DELAY_SECONDS, 0.);
    ev_timer_start(sv->loop, &sv->trim);
    struct cg_snapshot *snap = NULL;
    char *text = NULL;
    int64_t seq = watch_seq(sv); /* read before the build reads the store */
    int rc = from_file ? load(sv->path, sv->sessions, sv->generation + 1, &snap,
                              &text, &errors)
                       : load_text(sv->path, sv->cfg_text, sv->sessions,
                                   sv->generation + 1, &snap, &errors);
    if (rc == 0)
        rc = publish(sv, snap, &errors);
    metrics_count_reload(sv->metrics, !from_file, rc == 0, (int64_t)time(NULL));
    if (rc != 0) {
        log_reload_failed(&errors, "still serving the previous "
                                   "configuration");
        free(text);
        cg_strlist_clear(&errors);
        return false;
    }
    if (text != NULL) {
        free(sv->cfg_text);
        sv->cfg_text = text;
        store_sync(sv, sv->snap->cfg);
        seq = watch_seq(sv);
    }
    sv->rev_seq = seq;
    metrics_sync(sv);
    apply_log(sv, sv->snap->cfg);
    if (sv->snap->cfg->workers != 0 && sv->snap->cfg->workers != sv->nworkers)
        cg_log(CG_LOG_WARN, 0,
               "workers: changing the worker count needs a "
               "restart; keeping %d",
               sv->nworkers);
    write_ports(sv);
    struct cg_logrec r;
    cg_logrec_begin(&r, CG_LOG_INFO, event);
    cg_logrec_int(&r, "generation", (int64_t)sv->generation);
    cg_logrec_int(&r, "listeners", (int64_t)sv->n_socks);
    if (!from_file)
        cg_logrec_int(&r, "revocation_seq", seq);
    cg_logrec_end(&r);
    cg_strlist_clear(&errors);
    return true;
}

static void
reload(struct server *sv)
{
    rebuild(sv, true, "reload");
}

/* Polls the store: a new revocation rebuilds the snapshot, and the
 * workers close open connections that use the revoked certificate. */
static void
watch_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct server *sv = w->data;
    if (sv->store == NULL)
        return;
    int64_t seq = watch_seq(sv);
    if (seq != sv->rev_seq) {
        cg_log(CG_LOG_INFO, 0, "store: revocations changed (%lld -> %lld)",
               (long long)sv->rev_seq, (long long)seq);
        rebuild(sv, false, "revocation");
    }
}

static void
stale_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct server *sv = w->data;
    tls_trusts_warn_stale(sv->snap->trusts, sv->snap->cfg, (int64_t)time(NULL));
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
        cg_log(CG_LOG_ERROR, 0, "cannot write pid file %s: %s", cfg->pid_file,
               strerror(errno));
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
        snprintf(key, sizeof(key), "port_%s", sv->snap->cfg->listeners[i].name);
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
    metrics_free(sv->metrics);
    ev_signal_stop(loop, &sv->sighup);
    ev_signal_stop(loop, &sv->sigterm);
    ev_signal_stop(loop, &sv->sigint);
    ev_timer_stop(loop, &sv->watch);
    ev_timer_stop(loop, &sv->stale);
    store_close(sv->store);
    free(sv->cfg_text);
    tls_sessions_free(sv->sessions); /* after the last snapshot */
    cg_log(CG_LOG_INFO, 0, "stopped");
    if (sv->log_fd > 2)
        close(sv->log_fd);
    cg_log_setup(CG_LOG_INFO, 2);
    free(sv->path);
}

/* Starts the worker threads on the current snapshot. */
static int
start_workers(struct server *sv)
{
    sv->workers = xcalloc((size_t)sv->nworkers, sizeof(*sv->workers));
    /* workers inherit a mask without the signals the main thread handles */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    for (int i = 0; i < sv->nworkers; i++) {
        snapshot_ref(sv->snap);
        if (worker_start(&sv->workers[i], i, sv->snap,
                         fds_for_worker(sv->socks, sv->n_socks, i),
                         metrics_worker(sv->metrics, i)) != 0) {
            cg_log(CG_LOG_ERROR, 0, "cannot start worker %d", i);
            return 1;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return 0;
}

/* The main loop's watchers: signals, the store watch, the stale-CRL
 * log, the post-rebuild trim. */
static void
start_watchers(struct server *sv, struct ev_loop *loop)
{
    sv->loop = loop;
    ev_signal_init(&sv->sighup, signal_cb, SIGHUP);
    ev_signal_init(&sv->sigterm, signal_cb, SIGTERM);
    ev_signal_init(&sv->sigint, signal_cb, SIGINT);
    sv->sighup.data = sv->sigterm.data = sv->sigint.data = sv;
    ev_signal_start(loop, &sv->sighup);
    ev_signal_start(loop, &sv->sigterm);
    ev_signal_start(loop, &sv->sigint);
    ev_timer_init(&sv->watch, watch_cb, STORE_WATCH_SECONDS,
                  STORE_WATCH_SECONDS);
    sv->watch.data = sv;
    ev_timer_start(loop, &sv->watch);
    ev_timer_init(&sv->trim, trim_cb, TRIM_DELAY_SECONDS, 0.);
    ev_timer_init(&sv->stale, stale_cb, 60.0, 60.0);
    sv->stale.data = sv;
    ev_timer_start(loop, &sv->stale);
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
    sv.sessions = tls_sessions_new(TLS_SESSIONS_MAX);
    char *abs = realpath(config_path, NULL);
    sv.path = abs ? abs : xstrdup(config_path);
    if (load(sv.path, sv.sessions, 1, &sv.snap, &sv.cfg_text, &errors) != 0) {
        print_errors(&errors);
        cg_strlist_clear(&errors);
        tls_sessions_free(sv.sessions);
        free(sv.path);
        return 2;
    }
    sv.generation = 1;
    apply_log(&sv, sv.snap->cfg);
    store_sync(&sv, sv.snap->cfg);
    /* the snapshot was built before the store was watched: the first tick
       rebuilds once, so no revocation made meanwhile is missed */
    sv.rev_seq = -1;
    sv.nworkers = worker_count(sv.snap->cfg);
    if (socks_for(&sv, sv.snap, &sv.socks, err) != 0) {
        cg_log(CG_LOG_ERROR, 0, "%s", err);
        snapshot_unref(sv.snap);
        tls_sessions_free(sv.sessions);
        store_close(sv.store);
        free(sv.cfg_text);
        free(sv.path);
        return 1;
    }
    sv.n_socks = sv.snap->cfg->n_listeners;
    sv.metrics = metrics_new(sv.nworkers);
    metrics_set_sessions(sv.metrics, sessions_count, sv.sessions);
    snapshot_metrics(sv.snap, sv.metrics);
    metrics_sync(&sv);
    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    if (start_workers(&sv) != 0)
        return 1;
    start_watchers(&sv, loop);
    write_pid(sv.snap->cfg);
    write_ports(&sv);
    log_started(&sv);
    ev_run(loop, 0);
    shutdown_all(&sv, loop);
    ev_loop_destroy(loop);
    return 0;
}
