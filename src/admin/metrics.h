/*
 * Prometheus metrics: a counter registry that is cheap on the hot path
 * and a renderer of the text exposition format 0.0.4 (docs/metrics.md).
 *
 * Counters live in per-worker blocks: each worker writes only its own
 * (relaxed atomic load + store, no lock, no shared cache line), a scrape
 * sums the workers. Blocks are registered on the main thread while a
 * snapshot is built (one per listener name and kind, one per route) and
 * keep their values across reloads; only the blocks of the published
 * snapshot are exposed. Per-identity series (mqtt, tcp) are counted once
 * per connection in a striped table bounded by max_identities; beyond it
 * counts go to identity="__other__". Gauges (open connections, CRL
 * state, generations) are computed at scrape time.
 */
#ifndef CG_ADMIN_METRICS_H
#define CG_ADMIN_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/buf.h"
#include "tls/tls.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_OTHER "__other__"         /* identities beyond the cap */
#define METRICS_ANONYMOUS "__anonymous__" /* no identity at all */
#define METRICS_LABEL_MAX 256             /* bytes kept of a label value */

struct metrics;
struct metrics_worker;
struct metrics_identity;

/* Reason codes counted per listener: certgate's stable verification
 * reasons (src/tls), then "tls" (a handshake broken for another reason)
 * and "timeout". */
#define METRICS_REASONS(X) TLS_REASONS(X) X(tls) X(timeout)
enum metrics_reason {
#define METRICS_REASON_ENUM(n) METRICS_R_##n,
    METRICS_REASONS(METRICS_REASON_ENUM)
#undef METRICS_REASON_ENUM
        METRICS_R_COUNT
};

/* Refusal reasons of the proxy that blame the upstream. */
#define METRICS_UPSTREAM_ERRORS(X)                                             \
    X(upstream_connect)                                                        \
    X(upstream_connect_timeout)                                                \
    X(upstream_closed) X(upstream_protocol) X(upstream_timeout)                \
        X(unexpected_101)
enum metrics_uperr {
#define METRICS_UPERR_ENUM(n) METRICS_U_##n,
    METRICS_UPSTREAM_ERRORS(METRICS_UPERR_ENUM)
#undef METRICS_UPERR_ENUM
        METRICS_U_COUNT
};

#define METRICS_MQTT_RESULTS 13 /* = MQTT_REFUSE_COUNT (checked in .c) */
#define METRICS_MQTT_LEVELS 3   /* no CONNACK, 3.1/3.1.1 codes, 5.0 codes */

/* Layout of a listener's counter block (one per worker). */
enum metrics_ctr {
    MC_ACCEPTED,
    MC_CLOSED,
    MC_HS_OK,
    MC_HS_RESUMED,
    MC_TCP_SESSIONS,
    MC_HTTP_CLASS,                                    /* 5: 1xx .. 5xx */
    MC_UPSTREAM_ERR = MC_HTTP_CLASS + 5,              /* METRICS_U_COUNT */
    MC_HS_FAILED = MC_UPSTREAM_ERR + METRICS_U_COUNT, /* METRICS_R_COUNT */
    MC_WOULD_REFUSE = MC_HS_FAILED + METRICS_R_COUNT,
    MC_RECHECK_CLOSED = MC_WOULD_REFUSE + METRICS_R_COUNT,
    MC_MQTT = MC_RECHECK_CLOSED + METRICS_R_COUNT, /* [result][level] */
    MC_LISTENER_COUNT = MC_MQTT + METRICS_MQTT_RESULTS * METRICS_MQTT_LEVELS,
};

/* A route's block: requests by status class. */
#define METRICS_ROUTE_COUNT 5

/* One counter of a worker block: written only by its worker. */
typedef atomic_uint_least64_t metrics_ctr_t;

static inline void
metrics_add(metrics_ctr_t *blk, unsigned idx, uint64_t n)
{
    /* a single writer: load + store, no locked read-modify-write */
    atomic_store_explicit(
        &blk[idx], atomic_load_explicit(&blk[idx], memory_order_relaxed) + n,
        memory_order_relaxed);
}

/* --- Main thread ---------------------------------------------------- */

/* A registry for nworkers worker blocks. Returns owned. */
struct metrics *metrics_new(int nworkers);
void metrics_free(struct metrics *m);

/*
 * Registers (or finds) the block of listener `name` of `kind`; a route
 * block when route is not NULL (its label, e.g. "app.example.com/api").
 * Returns the block's offset, stable for the registry's life (the same
 * name, kind and route always get the same block).
 */
uint32_t metrics_register(struct metrics *m, const char *listener,
                          enum cg_listener_kind kind, const char *route);
/* Exposes exactly the blocks of offsets[0..n) (those of the snapshot
 * just published), in that order. */
void metrics_publish(struct metrics *m, const uint32_t *offsets, size_t n);

/* Process facts (main thread). */
void metrics_set_workers(struct metrics *m, int workers);
void metrics_set_max_identities(struct metrics *m, size_t max);
/* The TLS session cache: count(arg) is called at scrape time (any
 * thread); set before the workers start. */
void metrics_set_sessions(struct metrics *m, size_t (*count)(void *),
                          void *arg);
void metrics_set_sessions_max(struct metrics *m, size_t max);
void metrics_set_generation(struct metrics *m, uint64_t config_generation,
                            int64_t revocation_seq);
/* A reload from the config file (ok or refused), or a rebuild after a
 * revocation in the store. */
void metrics_count_reload(struct metrics *m, bool revocation, bool ok,
                          int64_t now);

/* One CRL issuer of a trust set, as the snapshot loaded it. */
struct metrics_crl {
    const char *trust;  /* trust set name */
    const char *issuer; /* issuer subject, one line */
    size_t entries;     /* revoked serials listed */
    bool has_next;      /* a CRL with nextUpdate (not the builtin CA) */
    int64_t next_update, stale_after; /* unix seconds */
};
/* Replaces the CRL facts (copied). */
void metrics_set_crls(struct metrics *m, const struct metrics_crl *v, size_t n);

/* --- Workers -------------------------------------------------------- */

/* Worker idx's handle (borrowed from m). */
struct metrics_worker *metrics_worker(struct metrics *m, int idx);
/* The registry of a worker handle. */
struct metrics *metrics_of(struct metrics_worker *w);
/* Worker w's counters of the block at offset (registered before the
 * snapshot that names it was published). */
metrics_ctr_t *metrics_block(struct metrics_worker *w, uint32_t offset);

/* Maps a reason code to its index (METRICS_R_invalid when unknown). */
enum metrics_reason metrics_reason(const char *code);
/* Index of an upstream refusal reason, or -1 for other refusals. */
int metrics_upstream_error(const char *reason);
/* Counts a finished TLS handshake of a server connection: ok, the
 * failure reason code otherwise; would_refuse: report-mode reason or
 * NULL. */
void metrics_handshake(metrics_ctr_t *blk, bool ok, const char *reason,
                       bool resumed, const char *would_refuse);
/* metrics_handshake for a finished server handshake of c (the callers
 * link src/tls). */
static inline void
metrics_tls_done(metrics_ctr_t *blk, const struct tls_conn *c, bool ok)
{
    const struct cg_verdict *v = tls_conn_verdict(c);
    metrics_handshake(blk, ok, ok ? NULL : tls_conn_failure_reason(c),
                      ok && tls_conn_resumed(c),
                      ok && tls_conn_would_refuse(c) ? v->reason : NULL);
}
/* Counts one answered HTTP request of a listener and (optional) route
 * block. */
void metrics_http(metrics_ctr_t *lblk, metrics_ctr_t *rblk, int status);
/* Counts a CONNECT decision: result MQTT_REFUSE_NONE (accepted) or the
 * refusal; level: protocol level (-1 unknown); connack sent or not. */
void metrics_mqtt(metrics_ctr_t *blk, int result, int level, bool connack);

/*
 * The per-identity series of listener block offset for identity (len
 * bytes, any bytes: sanitised here). Counts one connection; hand the
 * result to metrics_identity_close when it ends. Takes a striped lock:
 * once per connection, never per request.
 */
struct metrics_identity *metrics_identity_open(struct metrics *m,
                                               uint32_t offset,
                                               const char *identity,
                                               size_t len);
void metrics_identity_close(struct metrics_identity *id);

/* --- Scrape --------------------------------------------------------- */

/* Appends the whole exposition (every family with HELP and TYPE) at
 * time now (unix seconds). Any thread. */
void metrics_render(struct metrics *m, int64_t now, struct cg_buf *out);

/* Appends s as a label value: UTF-8 kept, \ " and newline escaped,
 * other control bytes and invalid UTF-8 replaced by U+FFFD, at most
 * METRICS_LABEL_MAX bytes of input. */
void metrics_label_escape(struct cg_buf *out, const char *s, size_t len);

#endif
