/*
 * The "trust" object of the configuration: named trust sets (CA files,
 * the built-in CA, CRLs and what a stale CRL means).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"
#include "core/util.h"
#include "core/xmalloc.h"

/* ---- trust sets ---- */

/* "reject" | "grace:<duration>" (absent: reject). */
static void
parse_stale(struct cfg_ctx *c, const struct opt *o, json_t *v, void *base)
{
    struct cg_trust_cfg *t = base;
    (void)o;
    t->stale_reject = true;
    t->stale_grace_ms = 0;
    if (v == NULL)
        return;
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    int64_t ms;
    if (s != NULL && strcmp(s, "reject") == 0)
        return;
    /* cg_parse_duration_ms is strtod-based: a digit must come first */
    if (s != NULL && strncmp(s, "grace:", 6) == 0 &&
        isdigit((unsigned char)s[6]) && cg_parse_duration_ms(s + 6, &ms) == 0 &&
        ms > 0) {
        t->stale_reject = false;
        t->stale_grace_ms = ms;
        return;
    }
    cfg_error(c, "expected \"reject\" or \"grace:<duration>\"");
}

/* A trust set needs CA certificates from somewhere. */
static void
trust_post(struct cfg_ctx *c, json_t *obj, void *base)
{
    struct cg_trust_cfg *t = base;
    if (t->ca_files.n == 0 && !t->builtin_ca &&
        !(obj && json_object_get(obj, "ca_files")))
        cfg_error_at(c, "ca_files", "required unless builtin_ca is true");
}

#define T_OFF(f) offsetof(struct cg_trust_cfg, f)
static const struct opt trust_opts[] = {
    {.key = "ca_files",
     .type = OPT_PATHLIST,
     .flags = OPT_NONEMPTY,
     .off = T_OFF(ca_files)},
    {.key = "builtin_ca", .type = OPT_BOOL, .off = T_OFF(builtin_ca)},
    {.key = "crl_files", .type = OPT_PATHLIST, .off = T_OFF(crl_files)},
    {.key = "on_stale_crl", .type = OPT_CUSTOM, .parse = parse_stale},
};
TABLE(trust, trust_post);

/* "trust": {"<name>": {...}, ...} -> cfg->trusts, in file order. Names
 * are kept even when their entry has errors, so that references to them
 * do not add a second, misleading error. */
void
cfg_parse_trusts(struct cfg_ctx *c, const struct opt *o, json_t *v, void *base)
{
    struct cg_config *cfg = base;
    (void)o;
    if (!cfg_get_object(c, v))
        return;
    cfg->trusts = xcalloc(json_object_size(v), sizeof(*cfg->trusts));
    const char *key;
    json_t *e;
    json_object_foreach(v, key, e)
    {
        struct cg_trust_cfg *t = &cfg->trusts[cfg->n_trusts++];
        size_t mark = cfg_push_key(c, key);
        t->name = xstrdup(key);
        cfg_check_name(c, t->name);
        opt_apply(c, &trust, e, t, false);
        cfg_pop(c, mark);
    }
}

void
cfg_release_trusts(const struct opt *o, void *base)
{
    struct cg_config *cfg = base;
    (void)o;
    for (size_t i = 0; i < cfg->n_trusts; i++) {
        free(cfg->trusts[i].name);
        opt_release(&trust, &cfg->trusts[i]);
    }
    XFREE(&cfg->trusts);
    cfg->n_trusts = 0;
}
