#include "loop/snapshot.h"

#include <stdlib.h>

#include "core/xmalloc.h"

int
snapshot_build(struct cg_config *cfg, struct tls_sessions *sessions,
               uint64_t generation, struct cg_snapshot **out,
               struct cg_strlist *errors)
{
    struct cg_snapshot *s = xcalloc(1, sizeof(*s));
    atomic_init(&s->refs, 1);
    s->generation = generation;
    s->cfg = cfg;
    s->l = xcalloc(cfg->n_listeners ? cfg->n_listeners : 1, sizeof(*s->l));
    int rc = tls_trusts_new(cfg, &s->trusts, errors);
    /* every listener is still built so that all errors are reported */
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        if (tls_listener_new(cfg, i, sessions, s->trusts, &s->l[i].tls,
                             errors) != 0)
            rc = CG_ECONFIG;
        if (cfg->listeners[i].kind == CG_KIND_HTTPS
                ? http_site_new(cfg, i, &s->l[i].site, errors) != 0
                : relay_site_new(cfg, i, &s->l[i].relay, errors) != 0)
            rc = CG_ECONFIG;
    }
    if (rc != 0) {
        snapshot_unref(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* "host/path" of a route ("*" for any host). */
static char *
route_label(const struct cg_route_cfg *rc)
{
    return xasprintf("%s%s", rc->host ? rc->host : "*", rc->path);
}

void
snapshot_metrics(struct cg_snapshot *s, struct metrics *m)
{
    const struct cg_config *cfg = s->cfg;
    size_t n = cfg->n_listeners;
    for (size_t i = 0; i < cfg->n_listeners; i++)
        n += cfg->listeners[i].n_routes;
    free(s->moffs);
    s->moffs = xcalloc(n ? n : 1, sizeof(*s->moffs));
    s->n_moffs = 0;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct cg_listener_cfg *lc = &cfg->listeners[i];
        uint32_t off = metrics_register(m, lc->name, lc->kind, NULL);
        s->moffs[s->n_moffs++] = off;
        if (s->l[i].relay != NULL)
            relay_site_set_metrics(s->l[i].relay, off);
        if (s->l[i].site == NULL)
            continue;
        s->l[i].site->mbase = off;
        for (size_t j = 0; j < s->l[i].site->n_routes; j++) {
            struct http_route *r = &s->l[i].site->routes[j];
            char *label = route_label(r->cfg);
            r->mbase = metrics_register(m, lc->name, lc->kind, label);
            s->moffs[s->n_moffs++] = r->mbase;
            free(label);
        }
    }
}

void
snapshot_metrics_crls(const struct cg_snapshot *s, struct metrics *m)
{
    struct tls_crl_info *v = NULL;
    size_t n = tls_trusts_crls(s->trusts, s->cfg, &v);
    struct metrics_crl *c = xcalloc(n ? n : 1, sizeof(*c));
    for (size_t i = 0; i < n; i++)
        c[i] = (struct metrics_crl){v[i].trust,       v[i].issuer,
                                    v[i].entries,     v[i].has_next,
                                    v[i].next_update, v[i].stale_after};
    metrics_set_crls(m, c, n);
    free(c);
    tls_crl_info_free(v, n);
}

void
snapshot_ref(struct cg_snapshot *s)
{
    atomic_fetch_add(&s->refs, 1);
}

void
snapshot_unref(void *p)
{
    struct cg_snapshot *s = p;
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (size_t i = 0; i < s->cfg->n_listeners; i++) {
        tls_listener_free(s->l[i].tls);
        http_site_free(s->l[i].site);
        relay_site_free(s->l[i].relay);
    }
    free(s->l);
    free(s->moffs);
    tls_trusts_free(s->trusts);
    config_free(s->cfg);
    free(s);
}
