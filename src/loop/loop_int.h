/* Internals of the loop module: workers and the main-thread server. */
#ifndef CG_LOOP_LOOP_INT_H
#define CG_LOOP_LOOP_INT_H

#include <ev.h>
#include <pthread.h>
#include <stdbool.h>

#include "http/proxy.h"
#include "loop/snapshot.h"

#define WORKER_MAGIC 0x574f524bu

/* A listening socket of one worker. */
struct wlisten {
    int fd;
    size_t li; /* listener index in the worker's snapshot */
    ev_io io;
    struct worker *w;
};

/* What the main thread hands a worker (under mu). */
struct worker_msg {
    struct cg_snapshot *snap; /* one reference for the worker */
    int *fds;                 /* per listener of snap: this worker's fd */
    bool stop;
};

struct worker {
    unsigned magic;
    int idx;
    pthread_t thread;
    struct ev_loop *loop;
    ev_async wake;
    ev_timer drain_timer;
    ev_timer drain_check;
    pthread_mutex_t mu;
    struct worker_msg msg; /* pending, under mu */
    bool has_msg;
    /* owned by the worker thread */
    struct cg_snapshot *snap;
    struct wlisten *ls;
    size_t n_ls;
    bool stopping;
    struct proxy_env env;  /* https listeners */
    struct relay_env renv; /* mqtt and tcp listeners */
};

/* Starts worker w's thread with initial snapshot and fds (consumed);
 * mw: its metrics block handle (borrowed). */
int worker_start(struct worker *w, int idx, struct cg_snapshot *snap, int *fds,
                 struct metrics_worker *mw);
/* Hands w a new snapshot and fds (consumed); applied asynchronously. */
void worker_publish(struct worker *w, struct cg_snapshot *snap, int *fds);
/* Asks w to drain and stop; then join with worker_join. */
void worker_stop(struct worker *w);
void worker_join(struct worker *w);

#endif
