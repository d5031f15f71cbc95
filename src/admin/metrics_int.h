/* Internals of src/admin/metrics*.c shared with the unit tests. */
#ifndef CG_ADMIN_METRICS_INT_H
#define CG_ADMIN_METRICS_INT_H

#include <pthread.h>

#include "admin/metrics.h"

#define MPAGE_SHIFT 12
#define MPAGE_SIZE (1u << MPAGE_SHIFT) /* counters per page */
#define MPAGE_MAX 256                  /* at most 1M counters per worker */
#define MBLOCK_LISTENER 128            /* >= MC_LISTENER_COUNT */
#define MBLOCK_ROUTE 8                 /* >= METRICS_ROUTE_COUNT */
#define MSTRIPES 32                    /* identity table locks */
#define MBUCKETS 1024                  /* buckets per stripe */

struct metrics_worker {
    struct metrics *m;
    /* pages appear (main thread, release) before any snapshot naming
       them is published; a worker or a scrape loads them (acquire) */
    _Atomic(metrics_ctr_t *) pages[MPAGE_MAX];
};

/* A registered block. */
struct mrec {
    char *listener;
    enum cg_listener_kind kind;
    char *route;   /* route label (escaped), NULL for a listener */
    uint32_t off;  /* block offset */
    uint32_t lrec; /* route: index of its listener's record */
};

struct metrics_identity {
    struct metrics_identity *next;
    uint32_t off; /* listener block */
    atomic_uint_least64_t opened, closed;
    char label[]; /* escaped label value */
};

struct mstripe {
    pthread_mutex_t mu;
    struct metrics_identity *b[MBUCKETS];
};

struct metrics {
    pthread_mutex_t mu; /* recs, live, crls */
    int nworkers;
    struct metrics_worker *w;
    uint32_t next_off;
    struct mrec *recs;
    size_t n_recs;
    uint32_t *live; /* offsets exposed, in order */
    size_t n_live;
    struct metrics_crl *crls; /* owned strings */
    size_t n_crls;
    struct mstripe stripes[MSTRIPES];
    atomic_size_t n_ids, max_ids;
    size_t (*sessions)(void *); /* entries of the session cache */
    void *sessions_arg;
    atomic_size_t sessions_max;
    int64_t start_time;
    atomic_int workers;
    atomic_uint_least64_t reloads[2][2]; /* [revocation][ok] */
    atomic_uint_least64_t generation;
    atomic_int_least64_t rev_seq, last_reload;
    atomic_bool last_ok;
};

/* The record of a block offset, or NULL (under m->mu). */
const struct mrec *metrics_rec(const struct metrics *m, uint32_t off);
/* Sum over the workers of counter idx of block off. */
uint64_t metrics_sum(struct metrics *m, uint32_t off, unsigned idx);

/* Label values of the reason and upstream-error indexes (static). */
const char *metrics_reason_name(enum metrics_reason r);
const char *metrics_upstream_error_name(enum metrics_uperr e);

#endif
