/*
 * Identity objects: string lists, construction and destruction, the
 * derived fields (cn, dn, email) and the name checks OpenSSL does not
 * make. Formatting of names lives in dn.c, field rendering in field.c and
 * access policy in policy.c.
 */
#include "ident/ident.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "core/xmalloc.h"

void
cg_strlist_add(struct cg_strlist *l, const char *s)
{
    cg_strlist_addn(l, s, strlen(s));
}

void
cg_strlist_addn(struct cg_strlist *l, const char *s, size_t len)
{
    l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
    l->v[l->n++] = xstrndup(s, len);
}

void
cg_strlist_clear(struct cg_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

bool
cg_strlist_contains(const struct cg_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->v[i], s) == 0)
            return true;
    }
    return false;
}

struct cg_identity *
ident_new(void)
{
    struct cg_identity *id = xcalloc(1, sizeof(*id));
    atomic_init(&id->refs, 1);
    return id;
}

struct cg_identity *
ident_ref(struct cg_identity *id)
{
    if (id != NULL)
        atomic_fetch_add(&id->refs, 1);
    return id;
}

/* Frees the attributes of one name array. */
static void
rdns_free(struct cg_rdn *arr, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(arr[i].type);
        free(arr[i].value);
    }
    free(arr);
}

/* Frees what ident_finish() derives, so it can run again. */
static void
derived_free(struct cg_identity *id)
{
    XFREE(&id->cn);
    XFREE(&id->dn);
    XFREE(&id->dn_emqx);
    XFREE(&id->issuer_dn);
    XFREE(&id->email);
    id->n_cn = 0;
    id->email_reason = NULL;
}

void
ident_free(struct cg_identity *id)
{
    if (id == NULL || atomic_fetch_sub(&id->refs, 1) > 1)
        return;
    derived_free(id);
    rdns_free(id->subject, id->n_subject);
    rdns_free(id->issuer, id->n_issuer);
    cg_strlist_clear(&id->san_email);
    cg_strlist_clear(&id->san_dns);
    cg_strlist_clear(&id->san_uri);
    cg_strlist_clear(&id->san_ip);
    free(id->serial);
    free(id->crt);
    free(id->pem);
    free(id->der);
    free(id);
}

void
ident_rdn_add(struct cg_rdn **arr, size_t *n, const char *type,
              const char *value, size_t value_len, int set)
{
    *arr = xrealloc(*arr, (*n + 1) * sizeof(**arr));
    struct cg_rdn *r = &(*arr)[*n];
    r->type = xstrdup(type);
    /* xstrndup copies value_len bytes exactly, embedded NULs included. */
    r->value = xstrndup(value, value_len);
    r->value_len = value_len;
    r->set = set;
    (*n)++;
}

/* Counts subject attributes of a type; *last gets the last one found. */
static size_t
subject_count(const struct cg_identity *id, const char *type,
              const struct cg_rdn **last)
{
    size_t count = 0;
    for (size_t i = 0; i < id->n_subject; i++) {
        if (strcmp(id->subject[i].type, type) == 0) {
            count++;
            *last = &id->subject[i];
        }
    }
    return count;
}

/* Returns an owned copy of an attribute value, or NULL when it holds a
 * NUL: a C string would silently cut it ("alice\0.evil" -> "alice"). */
static char *
value_dup(const struct cg_rdn *r)
{
    if (memchr(r->value, '\0', r->value_len) != NULL)
        return NULL;
    return xstrndup(r->value, r->value_len);
}

/* Returns an owned string of a name in the given style. */
static char *
dn_string(const struct cg_rdn *rdns, size_t n, enum cg_dn_style style)
{
    struct cg_buf b;
    cg_buf_init(&b);
    ident_dn_format(&b, rdns, n, style);
    return cg_buf_take(&b);
}

/*
 * The mapped email: the SAN rfc822Name when there is exactly one; only
 * when the SAN has none, the subject emailAddress. Several candidates at
 * the level chosen make the email ambiguous rather than picking one.
 */
static void
email_pick(struct cg_identity *id)
{
    if (id->san_email.n == 1) {
        id->email = xstrdup(id->san_email.v[0]);
        return;
    }
    if (id->san_email.n > 1) {
        id->email_reason = "ambiguous";
        return;
    }
    const struct cg_rdn *r = NULL;
    size_t count = subject_count(id, "emailAddress", &r);
    if (count == 1)
        id->email = value_dup(r);
    if (id->email == NULL)
        id->email_reason = count > 1 ? "ambiguous" : "none";
}

void
ident_finish(struct cg_identity *id)
{
    derived_free(id);
    const struct cg_rdn *r = NULL;
    id->n_cn = subject_count(id, "CN", &r);
    if (id->n_cn == 1)
        id->cn = value_dup(r);
    id->dn = dn_string(id->subject, id->n_subject, CG_DN_RFC4514);
    id->dn_emqx = dn_string(id->subject, id->n_subject, CG_DN_EMQX);
    id->issuer_dn = dn_string(id->issuer, id->n_issuer, CG_DN_RFC4514);
    email_pick(id);
}

/* True when s holds a NUL, a control byte or invalid UTF-8. */
static bool
value_bad(const char *s, size_t len)
{
    return memchr(s, '\0', len) != NULL || cg_has_ctl(s, len) ||
           !cg_utf8_valid(s, len);
}

static bool
list_bad(const struct cg_strlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        if (value_bad(l->v[i], strlen(l->v[i])))
            return true;
    }
    return false;
}

const char *
ident_check_names(const struct cg_identity *id)
{
    if (id->name_has_nul)
        return "bad_name";
    for (size_t i = 0; i < id->n_subject; i++) {
        if (value_bad(id->subject[i].value, id->subject[i].value_len))
            return "bad_name";
    }
    if (list_bad(&id->san_email) || list_bad(&id->san_dns) ||
        list_bad(&id->san_uri))
        return "bad_name";
    if (id->n_cn > 1)
        return "multiple_cn";
    return NULL;
}
