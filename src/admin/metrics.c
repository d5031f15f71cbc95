/*
 * The counter registry: per-worker blocks of relaxed-atomic counters,
 * registered blocks (listeners, routes), the bounded per-identity table
 * and the process facts the main thread sets. Rendering: render.c.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/metrics_int.h"
#include "core/log.h"
#include "core/util.h"
#include "core/xmalloc.h"
#include "mqtt/connect.h"

static_assert(MC_LISTENER_COUNT <= MBLOCK_LISTENER, "listener block size");
static_assert(METRICS_ROUTE_COUNT <= MBLOCK_ROUTE, "route block size");
static_assert(METRICS_MQTT_RESULTS == MQTT_REFUSE_COUNT, "mqtt results");
static_assert(MPAGE_SIZE % MBLOCK_LISTENER == 0, "blocks fit pages");

static void
crls_clear(struct metrics *m)
{
    for (size_t i = 0; i < m->n_crls; i++) {
        free((char *)m->crls[i].trust);
        free((char *)m->crls[i].issuer);
    }
    XFREE(&m->crls);
    m->n_crls = 0;
}

void
metrics_free(struct metrics *m)
{
    if (m == NULL)
        return;
    for (int i = 0; i < m->nworkers; i++) {
        for (size_t p = 0; p < MPAGE_MAX; p++)
            free(atomic_load(&m->w[i].pages[p]));
    }
    free(m->w);
    for (size_t i = 0; i < m->n_recs; i++) {
        free(m->recs[i].listener);
        free(m->recs[i].route);
    }
    free(m->recs);
    free(m->live);
    crls_clear(m);
    for (size_t s = 0; s < MSTRIPES; s++) {
        for (size_t b = 0; b < MBUCKETS; b++) {
            struct metrics_identity *e = m->stripes[s].b[b], *next;
            for (; e != NULL; e = next) {
                next = e->next;
                free(e);
            }
        }
        pthread_mutex_destroy(&m->stripes[s].mu);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* Reserves size counters (size divides the page) in every worker;
 * 0 (the discard block) when the registry is full. */
static uint32_t
reserve(struct metrics *m, uint32_t size)
{
    uint32_t off = (m->next_off + size - 1) / size * size;
    if (off + size > MPAGE_MAX * MPAGE_SIZE) {
        cg_log(CG_LOG_ERROR, 0, "metrics: registry full, not counted");
        return 0;
    }
    size_t page = off >> MPAGE_SHIFT;
    for (int i = 0; i < m->nworkers; i++) {
        if (atomic_load_explicit(&m->w[i].pages[page], memory_order_relaxed) ==
            NULL)
            atomic_store_explicit(&m->w[i].pages[page],
                                  xcalloc(MPAGE_SIZE, sizeof(metrics_ctr_t)),
                                  memory_order_release);
    }
    m->next_off = off + size;
    return off;
}

struct metrics *
metrics_new(int nworkers)
{
    struct metrics *m = xcalloc(1, sizeof(*m));
    pthread_mutex_init(&m->mu, NULL);
    m->nworkers = nworkers;
    m->w = xcalloc((size_t)nworkers, sizeof(*m->w));
    for (int i = 0; i < nworkers; i++)
        m->w[i].m = m;
    for (size_t i = 0; i < MSTRIPES; i++)
        pthread_mutex_init(&m->stripes[i].mu, NULL);
    atomic_init(&m->max_ids, 10000);
    atomic_init(&m->workers, nworkers);
    m->start_time = (int64_t)time(NULL);
    /* offset 0: a discard block, never exposed (registry full) */
    reserve(m, MBLOCK_LISTENER);
    return m;
}

static bool
same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* Index of the record of (listener, kind, route) or -1 (under mu). */
static long
rec_find(const struct metrics *m, const char *listener,
         enum cg_listener_kind kind, const char *route)
{
    for (size_t i = 0; i < m->n_recs; i++) {
        const struct mrec *r = &m->recs[i];
        if (r->kind == kind && strcmp(r->listener, listener) == 0 &&
            same(r->route, route))
            return (long)i;
    }
    return -1;
}

/* Adds a record (under mu). */
static long
rec_add(struct metrics *m, const char *listener, enum cg_listener_kind kind,
        const char *route, uint32_t lrec)
{
    uint32_t off = reserve(m, route ? MBLOCK_ROUTE : MBLOCK_LISTENER);
    if (off == 0)
        return -1;
    m->recs = xrealloc(m->recs, (m->n_recs + 1) * sizeof(*m->recs));
    m->recs[m->n_recs] = (struct mrec){
        xstrdup(listener), kind, route ? xstrdup(route) : NULL, off, lrec};
    return (long)m->n_recs++;
}

uint32_t
metrics_register(struct metrics *m, const char *listener,
                 enum cg_listener_kind kind, const char *route)
{
    struct cg_buf label;
    cg_buf_init(&label);
    if (route != NULL)
        metrics_label_escape(&label, route, strlen(route));
    const char *rl = route ? cg_buf_cstr(&label) : NULL;
    pthread_mutex_lock(&m->mu);
    long li = rec_find(m, listener, kind, NULL);
    if (li < 0)
        li = rec_add(m, listener, kind, NULL, 0);
    long ri = li;
    if (li >= 0 && rl != NULL) {
        ri = rec_find(m, listener, kind, rl);
        if (ri < 0)
            ri = rec_add(m, listener, kind, rl, (uint32_t)li);
    }
    uint32_t off = ri >= 0 ? m->recs[ri].off : 0;
    pthread_mutex_unlock(&m->mu);
    cg_buf_cleanup(&label);
    return off;
}

void
metrics_publish(struct metrics *m, const uint32_t *offsets, size_t n)
{
    uint32_t *live = xmalloc((n ? n : 1) * sizeof(*live));
    memcpy(live, offsets, n * sizeof(*live));
    pthread_mutex_lock(&m->mu);
    free(m->live);
    m->live = live;
    m->n_live = n;
    pthread_mutex_unlock(&m->mu);
}

const struct mrec *
metrics_rec(const struct metrics *m, uint32_t off)
{
    if (off == 0)
        return NULL;
    for (size_t i = 0; i < m->n_recs; i++) {
        if (m->recs[i].off == off)
            return &m->recs[i];
    }
    return NULL;
}

void
metrics_set_workers(struct metrics *m, int workers)
{
    atomic_store(&m->workers, workers);
}

void
metrics_set_max_identities(struct metrics *m, size_t max)
{
    atomic_store(&m->max_ids, max);
}

void
metrics_set_sessions(struct metrics *m, size_t (*count)(void *), void *arg)
{
    m->sessions = count;
    m->sessions_arg = arg;
}

void
metrics_set_sessions_max(struct metrics *m, size_t max)
{
    atomic_store(&m->sessions_max, max);
}

void
metrics_set_generation(struct metrics *m, uint64_t config_generation,
                       int64_t revocation_seq)
{
    atomic_store(&m->generation, config_generation);
    atomic_store(&m->rev_seq, revocation_seq);
}

void
metrics_count_reload(struct metrics *m, bool revocation, bool ok, int64_t now)
{
    atomic_fetch_add(&m->reloads[revocation][ok], 1);
    if (!revocation) {
        atomic_store(&m->last_reload, now);
        atomic_store(&m->last_ok, ok);
    }
}

void
metrics_set_crls(struct metrics *m, const struct metrics_crl *v, size_t n)
{
    struct metrics_crl *c = xcalloc(n ? n : 1, sizeof(*c));
    for (size_t i = 0; i < n; i++) {
        c[i] = v[i];
        c[i].trust = xstrdup(v[i].trust);
        c[i].issuer = xstrdup(v[i].issuer);
    }
    pthread_mutex_lock(&m->mu);
    crls_clear(m);
    m->crls = c;
    m->n_crls = n;
    pthread_mutex_unlock(&m->mu);
}

/* --- workers ---------------------------------------------------------- */

struct metrics_worker *
metrics_worker(struct metrics *m, int idx)
{
    assert(idx >= 0 && idx < m->nworkers);
    return &m->w[idx];
}

struct metrics *
metrics_of(struct metrics_worker *w)
{
    return w->m;
}

metrics_ctr_t *
metrics_block(struct metrics_worker *w, uint32_t offset)
{
    metrics_ctr_t *page = atomic_load_explicit(&w->pages[offset >> MPAGE_SHIFT],
                                               memory_order_acquire);
    assert(page != NULL);
    return page + (offset & (MPAGE_SIZE - 1));
}

uint64_t
metrics_sum(struct metrics *m, uint32_t off, unsigned idx)
{
    uint64_t sum = 0;
    for (int i = 0; i < m->nworkers; i++) {
        metrics_ctr_t *page = atomic_load_explicit(
            &m->w[i].pages[off >> MPAGE_SHIFT], memory_order_acquire);
        if (page != NULL)
            sum += atomic_load_explicit(&page[(off & (MPAGE_SIZE - 1)) + idx],
                                        memory_order_relaxed);
    }
    return sum;
}

#define REASON_TEXT(n) #n,
static const char *const reason_names[] = {METRICS_REASONS(REASON_TEXT)};
static const char *const uperr_names[] = {METRICS_UPSTREAM_ERRORS(REASON_TEXT)};
#undef REASON_TEXT

const char *
metrics_reason_name(enum metrics_reason r)
{
    return reason_names[r];
}

const char *
metrics_upstream_error_name(enum metrics_uperr e)
{
    return uperr_names[e];
}

enum metrics_reason
metrics_reason(const char *code)
{
    for (size_t i = 0; code != NULL && i < METRICS_R_COUNT; i++) {
        if (strcmp(reason_names[i], code) == 0)
            return (enum metrics_reason)i;
    }
    return METRICS_R_invalid;
}

int
metrics_upstream_error(const char *reason)
{
    for (size_t i = 0; reason != NULL && i < METRICS_U_COUNT; i++) {
        if (strcmp(uperr_names[i], reason) == 0)
            return (int)i;
    }
    return -1;
}

void
metrics_handshake(metrics_ctr_t *blk, bool ok, const char *reason, bool resumed,
                  const char *would_refuse)
{
    if (!ok) {
        metrics_add(blk, MC_HS_FAILED + metrics_reason(reason), 1);
        return;
    }
    metrics_add(blk, MC_HS_OK, 1);
    if (resumed)
        metrics_add(blk, MC_HS_RESUMED, 1);
    if (would_refuse != NULL)
        metrics_add(blk, MC_WOULD_REFUSE + metrics_reason(would_refuse), 1);
}

void
metrics_http(metrics_ctr_t *lblk, metrics_ctr_t *rblk, int status)
{
    int cls = status / 100 - 1;
    if (cls < 0 || cls > 4)
        cls = 4; /* 499 (client gone) is 4xx; nothing else is out of range */
    metrics_add(lblk, MC_HTTP_CLASS + (unsigned)cls, 1);
    if (rblk != NULL)
        metrics_add(rblk, (unsigned)cls, 1);
}

void
metrics_mqtt(metrics_ctr_t *blk, int result, int level, bool connack)
{
    int lv = !connack ? 0 : level == MQTT_LEVEL_5 ? 2 : 1;
    if (result < 0 || result >= METRICS_MQTT_RESULTS)
        result = MQTT_REFUSE_NOT_AUTHORIZED;
    metrics_add(blk, MC_MQTT + (unsigned)(result * METRICS_MQTT_LEVELS + lv),
                1);
}

/* --- identities ------------------------------------------------------ */

static uint64_t
fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Finds or adds (off, label) in its stripe (locked); NULL when the cap
 * refuses a new series. */
static struct metrics_identity *
ident_get(struct metrics *m, uint32_t off, const char *label, bool capped)
{
    size_t len = strlen(label);
    uint64_t h =
        fnv1a(fnv1a(0xcbf29ce484222325ull, &off, sizeof(off)), label, len);
    struct mstripe *s = &m->stripes[h % MSTRIPES];
    size_t b = (size_t)(h / MSTRIPES) % MBUCKETS;
    struct metrics_identity *e;
    pthread_mutex_lock(&s->mu);
    for (e = s->b[b]; e != NULL; e = e->next) {
        if (e->off == off && strcmp(e->label, label) == 0)
            break;
    }
    if (e == NULL && (!capped || atomic_fetch_add(&m->n_ids, 1) <
                                     atomic_load(&m->max_ids))) {
        e = xcalloc(1, sizeof(*e) + len + 1);
        e->off = off;
        memcpy(e->label, label, len + 1);
        e->next = s->b[b];
        s->b[b] = e;
    } else if (e == NULL) {
        atomic_fetch_sub(&m->n_ids, 1);
    }
    if (e != NULL)
        atomic_fetch_add(&e->opened, 1);
    pthread_mutex_unlock(&s->mu);
    return e;
}

struct metrics_identity *
metrics_identity_open(struct metrics *m, uint32_t offset, const char *identity,
                      size_t len)
{
    struct cg_buf label;
    cg_buf_init(&label);
    if (identity == NULL || len == 0)
        cg_buf_puts(&label, METRICS_ANONYMOUS);
    else
        metrics_label_escape(&label, identity, len);
    struct metrics_identity *e =
        ident_get(m, offset, cg_buf_cstr(&label), true);
    if (e == NULL)
        e = ident_get(m, offset, METRICS_OTHER, false);
    cg_buf_cleanup(&label);
    return e;
}

void
metrics_identity_close(struct metrics_identity *id)
{
    if (id != NULL)
        atomic_fetch_add(&id->closed, 1);
}

/* --- label values ------------------------------------------------------ */

void
metrics_label_escape(struct cg_buf *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    if (len > METRICS_LABEL_MAX)
        len = METRICS_LABEL_MAX;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t n = 1;
        if (c == '\\' || c == '"') {
            cg_buf_putc(out, '\\');
            cg_buf_putc(out, (char)c);
        } else if (c == '\n') {
            cg_buf_puts(out, "\\n");
        } else if (c < 0x20 || c == 0x7f) {
            cg_buf_puts(out, "\xef\xbf\xbd"); /* U+FFFD */
        } else if ((n = cg_utf8_seq(p + i, len - i)) == 0) {
            cg_buf_puts(out, "\xef\xbf\xbd");
            n = 1;
        } else {
            cg_buf_append(out, p + i, n);
        }
        i += n;
    }
}
