/* Route access policy: which verified identities a route admits. */
#include "ident/ident.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "core/xmalloc.h"

void
ident_policy_cleanup(struct cg_policy *p)
{
    cg_strlist_clear(&p->cn);
    cg_strlist_clear(&p->ou);
    cg_strlist_clear(&p->o);
    cg_strlist_clear(&p->email);
    cg_strlist_clear(&p->email_domain);
    cg_strlist_clear(&p->san_uri_prefix);
    cg_strlist_clear(&p->issuer_dn);
    cg_strlist_clear(&p->serial);
    p->require_verified = false;
}

/* True when the policy has at least one non-empty list. */
static bool
has_lists(const struct cg_policy *p)
{
    return p->cn.n > 0 || p->ou.n > 0 || p->o.n > 0 || p->email.n > 0 ||
           p->email_domain.n > 0 || p->san_uri_prefix.n > 0 ||
           p->issuer_dn.n > 0 || p->serial.n > 0;
}

bool
ident_policy_is_open(const struct cg_policy *p)
{
    return !p->require_verified && !has_lists(p);
}

/* True when some subject attribute of the type equals an entry. An
 * attribute with an embedded NUL never matches. */
static bool
attr_match(const struct cg_identity *id, const char *type,
           const struct cg_strlist *l)
{
    for (size_t i = 0; i < id->n_subject; i++) {
        const struct cg_rdn *r = &id->subject[i];
        if (strcmp(r->type, type) == 0 && strlen(r->value) == r->value_len &&
            cg_strlist_contains(l, r->value))
            return true;
    }
    return false;
}

/* ASCII case-insensitive membership. */
static bool
contains_icase(const struct cg_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++) {
        if (cg_str_ieq(l->v[i], strlen(l->v[i]), s, strlen(s)))
            return true;
    }
    return false;
}

static bool
email_match(const struct cg_identity *id, const struct cg_strlist *l)
{
    if (id->email != NULL && contains_icase(l, id->email))
        return true;
    for (size_t i = 0; i < id->san_email.n; i++) {
        if (contains_icase(l, id->san_email.v[i]))
            return true;
    }
    return false;
}

/* The domain of id->email (after its last '@') against the entries; an
 * entry may be written with a leading '@'. */
static bool
domain_match(const struct cg_identity *id, const struct cg_strlist *l)
{
    const char *at = id->email != NULL ? strrchr(id->email, '@') : NULL;
    if (at == NULL || at[1] == '\0')
        return false;
    const char *dom = at + 1;
    for (size_t i = 0; i < l->n; i++) {
        const char *e = l->v[i][0] == '@' ? l->v[i] + 1 : l->v[i];
        if (cg_str_ieq(e, strlen(e), dom, strlen(dom)))
            return true;
    }
    return false;
}

static bool
uri_prefix_match(const struct cg_identity *id, const struct cg_strlist *l)
{
    for (size_t i = 0; i < id->san_uri.n; i++) {
        for (size_t j = 0; j < l->n; j++) {
            size_t len = strlen(l->v[j]);
            if (len > 0 && strncmp(id->san_uri.v[i], l->v[j], len) == 0)
                return true;
        }
    }
    return false;
}

/* Returns an owned serial in canonical form: uppercase hex without ':'
 * separators or leading zeros ("0" for zero). */
static char *
serial_norm(const char *s)
{
    size_t len = strlen(s);
    char *out = xmalloc(len + 2);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ':' || (n == 0 && s[i] == '0'))
            continue;
        out[n++] = (char)toupper((unsigned char)s[i]);
    }
    if (n == 0)
        out[n++] = '0';
    out[n] = '\0';
    return out;
}

static bool
serial_match(const struct cg_identity *id, const struct cg_strlist *l)
{
    if (id->serial == NULL)
        return false;
    char *mine = serial_norm(id->serial);
    bool found = false;
    for (size_t i = 0; i < l->n && !found; i++) {
        char *entry = serial_norm(l->v[i]);
        found = strcmp(entry, mine) == 0;
        free(entry);
    }
    free(mine);
    return found;
}

/* The first list of p that id fails, as a reason code; NULL if none. */
static const char *
lists_check(const struct cg_policy *p, const struct cg_identity *id)
{
    if (p->cn.n > 0 && (id->cn == NULL || !cg_strlist_contains(&p->cn, id->cn)))
        return "policy_cn";
    if (p->ou.n > 0 && !attr_match(id, "OU", &p->ou))
        return "policy_ou";
    if (p->o.n > 0 && !attr_match(id, "O", &p->o))
        return "policy_o";
    if (p->email.n > 0 && !email_match(id, &p->email))
        return "policy_email";
    if (p->email_domain.n > 0 && !domain_match(id, &p->email_domain))
        return "policy_email_domain";
    if (p->san_uri_prefix.n > 0 && !uri_prefix_match(id, &p->san_uri_prefix))
        return "policy_san_uri";
    if (p->issuer_dn.n > 0 &&
        (id->issuer_dn == NULL ||
         !cg_strlist_contains(&p->issuer_dn, id->issuer_dn)))
        return "policy_issuer";
    if (p->serial.n > 0 && !serial_match(id, &p->serial))
        return "policy_serial";
    return NULL;
}

const char *
ident_policy_check(const struct cg_policy *p, const struct cg_identity *id,
                   const struct cg_verdict *v)
{
    if (ident_policy_is_open(p))
        return NULL;
    /* Any list (or require_verified) admits verified certificates only:
     * an identity read from a refused or absent certificate proves
     * nothing, even in optional or report mode. */
    if (v == NULL || v->status != CG_VERIFY_SUCCESS || id == NULL)
        return "not_verified";
    return lists_check(p, id);
}
