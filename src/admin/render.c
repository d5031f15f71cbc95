/*
 * The Prometheus text exposition (format 0.0.4) of the registry: every
 * family once, with HELP and TYPE, its samples together. Label values
 * are escaped by metrics_label_escape (a certificate-derived value can
 * never break a line). Families and labels: docs/metrics.md.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "admin/metrics_int.h"
#include "mqtt/connect.h"

#define KIND_ALL 7u
#define KIND_BIT(k) (1u << (k))

static const char *const kind_names[] = {"https", "mqtt", "tcp"};

static void
head(struct cg_buf *b, const char *name, const char *type, const char *help)
{
    cg_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{listener="..",kind=".."[,extra]} */
static void
series(struct cg_buf *b, const char *name, const struct mrec *r,
       const char *extra)
{
    cg_buf_printf(b, "%s{listener=\"", name);
    metrics_label_escape(b, r->listener, strlen(r->listener));
    cg_buf_printf(b, "\",kind=\"%s\"%s%s}", kind_names[r->kind],
                  extra ? "," : "", extra ? extra : "");
}

static void
sample(struct cg_buf *b, const char *name, const struct mrec *r,
       const char *extra, uint64_t v)
{
    series(b, name, r, extra);
    cg_buf_printf(b, " %" PRIu64 "\n", v);
}

/* Calls fn for each exposed listener block of a kind in kinds. */
#define EACH_LISTENER(m, r, kinds)                                             \
    for (size_t i_ = 0; i_ < (m)->n_live; i_++)                                \
        if (((r) = metrics_rec((m), (m)->live[i_])) != NULL &&                 \
            (r)->route == NULL && (KIND_BIT((r)->kind) & (kinds)))

/* A counter family with one sample per listener. */
static void
per_listener(struct metrics *m, struct cg_buf *b, const char *name,
             const char *help, unsigned kinds, unsigned idx)
{
    const struct mrec *r;
    head(b, name, "counter", help);
    EACH_LISTENER(m, r, kinds)
    sample(b, name, r, NULL, metrics_sum(m, r->off, idx));
}

/* A counter family labelled reason="..": non-zero samples only. */
static void
per_reason(struct metrics *m, struct cg_buf *b, const char *name,
           const char *help, unsigned kinds, unsigned base)
{
    const struct mrec *r;
    char extra[64];
    head(b, name, "counter", help);
    EACH_LISTENER(m, r, kinds)
    {
        for (unsigned i = 0; i < METRICS_R_COUNT; i++) {
            uint64_t v = metrics_sum(m, r->off, base + i);
            snprintf(extra, sizeof(extra), "reason=\"%s\"",
                     metrics_reason_name((enum metrics_reason)i));
            if (v > 0)
                sample(b, name, r, extra, v);
        }
    }
}

static void
connections(struct metrics *m, struct cg_buf *b)
{
    const struct mrec *r;
    per_listener(m, b, "certgate_connections_accepted_total",
                 "TCP connections accepted.", KIND_ALL, MC_ACCEPTED);
    head(b, "certgate_connections_open", "gauge",
         "Client connections open now.");
    EACH_LISTENER(m, r, KIND_ALL)
    {
        /* closed is read first: a racing close never shows as -1 */
        uint64_t closed = metrics_sum(m, r->off, MC_CLOSED);
        uint64_t acc = metrics_sum(m, r->off, MC_ACCEPTED);
        sample(b, "certgate_connections_open", r, NULL,
               acc > closed ? acc - closed : 0);
    }
}

static void
tls(struct metrics *m, struct cg_buf *b)
{
    per_listener(m, b, "certgate_tls_handshakes_total",
                 "TLS handshakes completed (certificate accepted or "
                 "not required).",
                 KIND_ALL, MC_HS_OK);
    per_listener(m, b, "certgate_tls_resumed_total",
                 "Completed handshakes that resumed a session.", KIND_ALL,
                 MC_HS_RESUMED);
    per_reason(m, b, "certgate_tls_handshake_failures_total",
               "TLS handshakes refused or broken, by reason code.", KIND_ALL,
               MC_HS_FAILED);
    per_reason(m, b, "certgate_tls_would_refuse_total",
               "client_auth mode report: connections let through that "
               "mode required would refuse, by reason code.",
               KIND_ALL, MC_WOULD_REFUSE);
    per_reason(m, b, "certgate_recheck_closed_total",
               "Open connections closed because their certificate is "
               "refused now (revocation, CRL, client CA switch), by reason.",
               KIND_ALL, MC_RECHECK_CLOSED);
}

static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

static void
http(struct metrics *m, struct cg_buf *b)
{
    const struct mrec *r;
    char extra[METRICS_LABEL_MAX * 7 + 64];
    head(b, "certgate_http_requests_total", "counter",
         "HTTP requests answered, by status class.");
    EACH_LISTENER(m, r, KIND_BIT(CG_KIND_HTTPS))
    {
        for (unsigned c = 0; c < 5; c++) {
            snprintf(extra, sizeof(extra), "class=\"%s\"", classes[c]);
            sample(b, "certgate_http_requests_total", r, extra,
                   metrics_sum(m, r->off, MC_HTTP_CLASS + c));
        }
    }
    head(b, "certgate_http_route_requests_total", "counter",
         "HTTP requests answered per route (host and path prefix), by "
         "status class.");
    for (size_t i = 0; i < m->n_live; i++) {
        r = metrics_rec(m, m->live[i]);
        if (r == NULL || r->route == NULL)
            continue;
        for (unsigned c = 0; c < 5; c++) {
            snprintf(extra, sizeof(extra), "route=\"%s\",class=\"%s\"",
                     r->route, classes[c]);
            sample(b, "certgate_http_route_requests_total", r, extra,
                   metrics_sum(m, r->off, c));
        }
    }
    head(b, "certgate_upstream_errors_total", "counter",
         "Requests answered 502/504 because of the upstream, by reason.");
    EACH_LISTENER(m, r, KIND_BIT(CG_KIND_HTTPS))
    {
        for (unsigned e = 0; e < METRICS_U_COUNT; e++) {
            uint64_t v = metrics_sum(m, r->off, MC_UPSTREAM_ERR + e);
            snprintf(extra, sizeof(extra), "reason=\"%s\"",
                     metrics_upstream_error_name((enum metrics_uperr)e));
            if (v > 0)
                sample(b, "certgate_upstream_errors_total", r, extra, v);
        }
    }
}

/* The CONNACK code label of a result at a level class. */
static void
connack_label(char *out, size_t n, int result, int lv)
{
    int code = lv == 0
                   ? -1
                   : mqtt_refusal_code((enum mqtt_refusal)result,
                                       lv == 2 ? MQTT_LEVEL_5 : MQTT_LEVEL_311);
    if (result == MQTT_REFUSE_NONE && lv != 0)
        code = 0;
    if (code < 0)
        snprintf(out, n, "none");
    else
        snprintf(out, n, "0x%02x", (unsigned)code);
}

static void
mqtt(struct metrics *m, struct cg_buf *b)
{
    const struct mrec *r;
    char extra[128], code[16];
    head(b, "certgate_mqtt_connects_total", "counter",
         "MQTT CONNECTs decided: result accepted or the refusal, with "
         "the CONNACK code sent (none: closed without one).");
    EACH_LISTENER(m, r, KIND_BIT(CG_KIND_MQTT))
    {
        for (int res = 0; res < METRICS_MQTT_RESULTS; res++) {
            for (int lv = 0; lv < METRICS_MQTT_LEVELS; lv++) {
                uint64_t v = metrics_sum(
                    m, r->off,
                    MC_MQTT + (unsigned)(res * METRICS_MQTT_LEVELS + lv));
                if (v == 0)
                    continue;
                connack_label(code, sizeof(code), res, lv);
                snprintf(extra, sizeof(extra), "result=\"%s\",connack=\"%s\"",
                         res == MQTT_REFUSE_NONE
                             ? "accepted"
                             : mqtt_refusal_name((enum mqtt_refusal)res),
                         code);
                sample(b, "certgate_mqtt_connects_total", r, extra, v);
            }
        }
    }
    per_listener(m, b, "certgate_tcp_sessions_total",
                 "TCP sessions started towards the upstream.",
                 KIND_BIT(CG_KIND_TCP), MC_TCP_SESSIONS);
}

/* True when block off is exposed. */
static bool
is_live(const struct metrics *m, uint32_t off)
{
    for (size_t i = 0; i < m->n_live; i++) {
        if (m->live[i] == off)
            return true;
    }
    return false;
}

/* One sample per tracked identity: opened (open false) or open now. */
static void
identities(struct metrics *m, struct cg_buf *b, const char *name, bool open)
{
    char extra[METRICS_LABEL_MAX * 7 + 32];
    for (size_t s = 0; s < MSTRIPES; s++) {
        struct mstripe *st = &m->stripes[s];
        pthread_mutex_lock(&st->mu);
        for (size_t k = 0; k < MBUCKETS; k++) {
            for (const struct metrics_identity *e = st->b[k]; e != NULL;
                 e = e->next) {
                const struct mrec *r = metrics_rec(m, e->off);
                if (r == NULL || !is_live(m, e->off))
                    continue;
                uint64_t closed = atomic_load(&e->closed);
                uint64_t opened = atomic_load(&e->opened);
                snprintf(extra, sizeof(extra), "identity=\"%s\"", e->label);
                sample(b, name, r, extra,
                       open ? (opened > closed ? opened - closed : 0) : opened);
            }
        }
        pthread_mutex_unlock(&st->mu);
    }
}

static void
identity(struct metrics *m, struct cg_buf *b)
{
    head(b, "certgate_identity_connections_total", "counter",
         "Connections of mqtt and tcp listeners by mapped identity "
         "(beyond max_identities: __other__).");
    identities(m, b, "certgate_identity_connections_total", false);
    head(b, "certgate_identity_connections_open", "gauge",
         "Open connections of mqtt and tcp listeners by mapped identity.");
    identities(m, b, "certgate_identity_connections_open", true);
    head(b, "certgate_identities_tracked", "gauge",
         "Identity series tracked (bounded by metrics.max_identities).");
    cg_buf_printf(b, "certgate_identities_tracked %zu\n",
                  atomic_load(&m->n_ids));
    head(b, "certgate_identities_max", "gauge",
         "metrics.max_identities: the cardinality cap.");
    cg_buf_printf(b, "certgate_identities_max %zu\n", atomic_load(&m->max_ids));
}

/* trust="..",issuer=".." */
static void
crl_series(struct cg_buf *b, const char *name, const struct metrics_crl *c)
{
    cg_buf_printf(b, "%s{trust=\"", name);
    metrics_label_escape(b, c->trust, strlen(c->trust));
    cg_buf_puts(b, "\",issuer=\"");
    metrics_label_escape(b, c->issuer, strlen(c->issuer));
    cg_buf_puts(b, "\"}");
}

static void
crl_family(struct metrics *m, struct cg_buf *b, const char *name,
           const char *help, int what, int64_t now)
{
    head(b, name, "gauge", help);
    for (size_t i = 0; i < m->n_crls; i++) {
        const struct metrics_crl *c = &m->crls[i];
        int64_t v;
        if (what != 0 && !c->has_next)
            continue;
        switch (what) {
        case 0:
            v = (int64_t)c->entries;
            break;
        case 1:
            v = c->next_update;
            break;
        case 2:
            v = c->next_update - now;
            break;
        case 3:
            v = now >= c->next_update;
            break;
        case 4: /* the whole grace while fresh, what is left once stale */
            v = c->stale_after - (now > c->next_update ? now : c->next_update);
            v = v < 0 ? 0 : v;
            break;
        default:
            v = now >= c->stale_after;
            break;
        }
        crl_series(b, name, c);
        cg_buf_printf(b, " %" PRId64 "\n", v);
    }
}

static void
crls(struct metrics *m, struct cg_buf *b, int64_t now)
{
    crl_family(m, b, "certgate_crl_entries",
               "Revoked serials listed by an issuer's CRL (or the built-in "
               "CA).",
               0, now);
    crl_family(m, b, "certgate_crl_next_update_timestamp_seconds",
               "nextUpdate of the issuer's CRL (unix time).", 1, now);
    crl_family(m, b, "certgate_crl_next_update_seconds",
               "Seconds until nextUpdate (negative: seconds since).", 2, now);
    crl_family(m, b, "certgate_crl_stale", "1 when the CRL is past nextUpdate.",
               3, now);
    crl_family(m, b, "certgate_crl_grace_remaining_seconds",
               "on_stale_crl grace left before certificates of the issuer "
               "are refused (0 with reject or once it ran out).",
               4, now);
    crl_family(m, b, "certgate_crl_refusing",
               "1 when certificates of the issuer are refused as stale_crl.", 5,
               now);
}

static void
gauge(struct cg_buf *b, const char *name, const char *help, int64_t v)
{
    head(b, name, "gauge", help);
    cg_buf_printf(b, "%s %" PRId64 "\n", name, v);
}

static void
process(struct metrics *m, struct cg_buf *b)
{
    gauge(b, "certgate_process_start_time_seconds",
          "Start time of the process (unix time).", m->start_time);
    gauge(b, "certgate_workers", "Worker threads.", atomic_load(&m->workers));
    static const char *const names[2] = {"certgate_reloads_total",
                                         "certgate_revocation_rebuilds_total"};
    static const char *const helps[2] = {
        "Configuration reloads (SIGHUP, certgate reload) by result.",
        "Snapshot rebuilds after a revocation in the store, by result."};
    for (int rev = 0; rev < 2; rev++) {
        head(b, names[rev], "counter", helps[rev]);
        for (int ok = 1; ok >= 0; ok--)
            cg_buf_printf(b, "%s{result=\"%s\"} %" PRIu64 "\n", names[rev],
                          ok ? "ok" : "failed",
                          (uint64_t)atomic_load(&m->reloads[rev][ok]));
    }
    gauge(b, "certgate_config_last_reload_successful",
          "1 when the last reload was applied (1 before any).",
          atomic_load(&m->last_reload) == 0 || atomic_load(&m->last_ok));
    gauge(b, "certgate_config_last_reload_timestamp_seconds",
          "Time of the last reload attempt (unix time, 0: none).",
          atomic_load(&m->last_reload));
    if (m->sessions != NULL) {
        gauge(b, "certgate_tls_session_cache_entries",
              "TLS sessions held for resumption (all listeners).",
              (int64_t)m->sessions(m->sessions_arg));
        gauge(b, "certgate_tls_session_cache_max_entries",
              "session_cache.max_entries.",
              (int64_t)atomic_load(&m->sessions_max));
    }
    gauge(b, "certgate_config_generation",
          "Generation of the snapshot serving new connections.",
          (int64_t)atomic_load(&m->generation));
    gauge(b, "certgate_revocation_generation",
          "Revocation sequence of the store built into the snapshot "
          "(0 without a built-in CA).",
          atomic_load(&m->rev_seq));
}

void
metrics_render(struct metrics *m, int64_t now, struct cg_buf *out)
{
    pthread_mutex_lock(&m->mu);
    process(m, out);
    connections(m, out);
    tls(m, out);
    http(m, out);
    mqtt(m, out);
    identity(m, out);
    crls(m, out, now);
    pthread_mutex_unlock(&m->mu);
}
