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
    tls_trusts_free(s->trusts);
    config_free(s->cfg);
    free(s);
}
