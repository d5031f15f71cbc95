/*
 * Snapshots: everything built from one config (TLS contexts, routes),
 * immutable once published and reference counted. New connections take
 * the current snapshot; open ones keep theirs until they close.
 */
#ifndef CG_LOOP_SNAPSHOT_H
#define CG_LOOP_SNAPSHOT_H

#include <stdatomic.h>
#include <stdint.h>

#include "admin/metrics.h"
#include "config/config.h"
#include "http/site.h"
#include "relay/relay.h"
#include "tls/tls.h"

struct snap_listener {
    struct tls_listener *tls;
    struct http_site *site;   /* kind https */
    struct relay_site *relay; /* kinds mqtt and tcp */
};

struct cg_snapshot {
    atomic_long refs;
    uint64_t generation;
    struct cg_config *cfg;
    struct tls_trusts *trusts; /* shared by the listeners' TLS contexts */
    struct snap_listener *l;   /* one per cfg->listeners[i] */
    uint32_t *moffs;           /* metrics blocks of listeners and routes */
    size_t n_moffs;
};

/*
 * Builds a snapshot from cfg (consumed, also on failure) whose listeners
 * resume sessions from sessions (borrowed; NULL: none). Errors are
 * appended to errors with their JSON paths. Returns 0 and *out with one
 * reference, or CG_ECONFIG.
 */
int snapshot_build(struct cg_config *cfg, struct tls_sessions *sessions,
                   uint64_t generation, struct cg_snapshot **out,
                   struct cg_strlist *errors);
/*
 * Registers the metrics blocks of s's listeners and routes in m (main
 * thread, before s is published): sets the sites' block offsets and
 * s->moffs, the blocks to expose once s serves.
 */
void snapshot_metrics(struct cg_snapshot *s, struct metrics *m);
/* The CRL facts of s's trust sets for metrics_set_crls (main thread). */
void snapshot_metrics_crls(const struct cg_snapshot *s, struct metrics *m);
void snapshot_ref(struct cg_snapshot *s);
/* Drops one reference (void * so it can serve as a callback). */
void snapshot_unref(void *s);

#endif
