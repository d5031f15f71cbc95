/*
 * SQLite store: issued certificates (table certs, SAN lists in cert_sans),
 * revocation and the revocation sequence. Serials are kept in the
 * canonical form of store_serial_normalize, so lookups are plain key
 * equality.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "core/xmalloc.h"
#include "store/store_int.h"

#define CERT_COLS                                                              \
    "serial, ca_id, subject, owner, device, profile, not_before, not_after,"   \
    " status, coalesce(revoked_at, 0), revocation_reason, pem"

/* SAN kinds as stored in cert_sans.kind. */
static const char *const san_kinds[] = {"email", "dns", "uri", "ip"};

int
store_serial_normalize(const char *serial, char out[41])
{
    size_t n = 0;
    bool digits = false;
    for (const char *p = serial; *p != '\0'; p++) {
        char c = *p;
        if (c == ':')
            continue;
        if (c >= 'a' && c <= 'f')
            c = (char)(c - 'a' + 'A');
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
            return CG_EINVAL;
        digits = true;
        if (n == 0 && c == '0')
            continue; /* leading zero */
        if (n == 40)
            return CG_EINVAL;
        out[n++] = c;
    }
    if (!digits)
        return CG_EINVAL;
    if (n % 2 == 1 || n == 0) {
        memmove(out + 1, out, n);
        out[0] = '0';
        n++;
        if (n == 1)
            out[n++] = '0';
    }
    if (n > 40)
        return CG_EINVAL;
    out[n] = '\0';
    return 0;
}

/* Normalises serial into out, or fills err. */
static int
serial_arg(const char *serial, char out[41], char *err)
{
    if (serial == NULL || store_serial_normalize(serial, out) != 0)
        return cg_seterr(err, CG_EINVAL,
                         "invalid serial \"%s\": expected up to 20 bytes "
                         "of hex",
                         serial != NULL ? serial : "");
    return 0;
}

void
store_cert_cleanup(struct store_cert *c)
{
    if (c == NULL)
        return;
    free(c->subject);
    cg_strlist_clear(&c->san_email);
    cg_strlist_clear(&c->san_dns);
    cg_strlist_clear(&c->san_uri);
    cg_strlist_clear(&c->san_ip);
    free(c->owner);
    free(c->device);
    free(c->profile);
    free(c->revocation_reason);
    free(c->pem);
    memset(c, 0, sizeof(*c));
}

static struct cg_strlist *
san_list(struct store_cert *c, size_t kind)
{
    struct cg_strlist *lists[] = {&c->san_email, &c->san_dns, &c->san_uri,
                                  &c->san_ip};
    return lists[kind];
}

static void
cert_from_row(sqlite3_stmt *st, struct store_cert *c)
{
    const char *serial = (const char *)sqlite3_column_text(st, 0);
    const char *status = (const char *)sqlite3_column_text(st, 8);
    cg_strlcpy(c->serial, serial ? serial : "", sizeof(c->serial));
    c->ca_id = sqlite3_column_int64(st, 1);
    c->subject = store_col_dup(st, 2);
    c->owner = store_col_dup(st, 3);
    c->device = store_col_dup(st, 4);
    c->profile = store_col_dup(st, 5);
    c->not_before = sqlite3_column_int64(st, 6);
    c->not_after = sqlite3_column_int64(st, 7);
    c->status = status != NULL && strcmp(status, "revoked") == 0
                    ? STORE_CERT_REVOKED
                    : STORE_CERT_VALID;
    c->revoked_at = sqlite3_column_int64(st, 9);
    c->revocation_reason = store_col_dup(st, 10);
    c->pem = store_col_dup(st, 11);
}

/* Fills the SAN lists of c with the prepared statement sans (reused). */
static int
sans_load(struct store *s, sqlite3_stmt *sans, struct store_cert *c, char *err)
{
    int r;
    sqlite3_reset(sans);
    sqlite3_bind_text(sans, 1, c->serial, -1, SQLITE_STATIC);
    while ((r = sqlite3_step(sans)) == SQLITE_ROW) {
        const char *kind = (const char *)sqlite3_column_text(sans, 0);
        const char *v = (const char *)sqlite3_column_text(sans, 1);
        for (size_t k = 0; kind && v && k < CG_ARRAY_LEN(san_kinds); k++) {
            if (strcmp(kind, san_kinds[k]) == 0)
                cg_strlist_add(san_list(c, k), v);
        }
    }
    if (r != SQLITE_DONE)
        return store_sql_fail(s->db, err, "reading certificate names");
    return 0;
}

#define SANS_SQL                                                               \
    "SELECT kind, value FROM cert_sans WHERE serial = ?1 ORDER BY kind, pos"

/* ---- adding --------------------------------------------------------- */

struct cert_add {
    const struct store_cert *c;
    const char *serial; /* canonical */
};

static int
sans_insert(struct store *s, const struct cert_add *a, char *err)
{
    sqlite3_stmt *st;
    int rc = store_prep(s,
                        "INSERT INTO cert_sans (serial, kind, pos, value)"
                        " VALUES (?1, ?2, ?3, ?4)",
                        &st, err);
    const struct store_cert *c = a->c;
    const struct cg_strlist *lists[] = {&c->san_email, &c->san_dns, &c->san_uri,
                                        &c->san_ip};
    for (size_t k = 0; rc == 0 && k < CG_ARRAY_LEN(san_kinds); k++) {
        const struct cg_strlist *l = lists[k];
        for (size_t i = 0; rc == 0 && i < l->n; i++) {
            sqlite3_reset(st);
            store_bind_str(st, 1, a->serial);
            store_bind_str(st, 2, san_kinds[k]);
            sqlite3_bind_int64(st, 3, (sqlite3_int64)i);
            store_bind_str(st, 4, l->v[i]);
            rc = store_step_done(s, st, "adding certificate names", err);
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static int
cert_add_tx(struct store *s, void *arg, char *err)
{
    const struct cert_add *a = arg;
    const struct store_cert *c = a->c;
    bool revoked = c->status == STORE_CERT_REVOKED;
    sqlite3_stmt *st;
    int rc = store_prep(s,
                        "INSERT INTO certs (serial, ca_id, subject, owner,"
                        " device, profile, not_before, not_after, status,"
                        " revoked_at, revocation_reason, pem) VALUES (?1, ?2,"
                        " ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                        &st, err);
    if (rc != 0)
        return rc;
    store_bind_str(st, 1, a->serial);
    sqlite3_bind_int64(st, 2, c->ca_id);
    store_bind_str(st, 3, c->subject);
    store_bind_str(st, 4, c->owner);
    store_bind_str(st, 5, c->device);
    store_bind_str(st, 6, c->profile);
    sqlite3_bind_int64(st, 7, c->not_before);
    sqlite3_bind_int64(st, 8, c->not_after);
    store_bind_str(st, 9, revoked ? "revoked" : "valid");
    if (revoked)
        sqlite3_bind_int64(st, 10, c->revoked_at ? c->revoked_at : store_now());
    store_bind_str(st, 11, revoked ? c->revocation_reason : NULL);
    store_bind_str(st, 12, c->pem);
    rc = store_step_done(s, st, "adding a certificate", err);
    sqlite3_finalize(st);
    if (rc == CG_EEXIST)
        return cg_seterr(err, rc, "certificate serial %s already exists",
                         a->serial);
    if (rc == CG_EINVAL)
        return cg_seterr(err, rc,
                         "certificate %s: unknown CA id %lld or a missing "
                         "field",
                         a->serial, (long long)c->ca_id);
    if (rc == 0)
        rc = sans_insert(s, a, err);
    if (rc == 0 && revoked)
        rc = store_bump_seq(s, 1, err);
    return rc;
}

int
store_cert_add(struct store *s, const struct store_cert *c, char *err)
{
    char serial[41];
    assert(c->subject != NULL && c->pem != NULL && c->profile != NULL);
    int rc = serial_arg(c->serial, serial, err);
    if (rc != 0)
        return rc;
    struct cert_add a = {c, serial};
    return store_tx(s, true, cert_add_tx, &a, err);
}

/* ---- reading -------------------------------------------------------- */

/* Runs the certificate query st (bound) and appends its rows to *arr,
 * with their SAN lists unless sans is NULL. */
static int
certs_collect(struct store *s, sqlite3_stmt *st, sqlite3_stmt *sans,
              struct store_cert **arr, size_t *n, char *err)
{
    size_t cap = *n;
    int r, rc = 0;
    while (rc == 0 && (r = sqlite3_step(st)) == SQLITE_ROW) {
        *arr = store_grow(*arr, *n, &cap, sizeof(**arr));
        struct store_cert *c = &(*arr)[(*n)++];
        cert_from_row(st, c);
        if (sans != NULL)
            rc = sans_load(s, sans, c, err);
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = store_sql_fail(s->db, err, "reading certificates");
    return rc;
}

/* A certificate query and its results. */
struct cert_query {
    const char *sql;
    void (*bind)(sqlite3_stmt *st, const void *arg);
    const void *arg;
    bool with_sans;
    struct store_cert *arr;
    size_t n;
};

static int
cert_query_tx(struct store *s, void *arg, char *err)
{
    struct cert_query *q = arg;
    sqlite3_stmt *st = NULL, *sans = NULL;
    int rc = store_prep(s, q->sql, &st, err);
    if (rc == 0 && q->with_sans)
        rc = store_prep(s, SANS_SQL, &sans, err);
    if (rc == 0) {
        q->bind(st, q->arg);
        rc = certs_collect(s, st, sans, &q->arr, &q->n, err);
    }
    sqlite3_finalize(sans);
    sqlite3_finalize(st);
    return rc;
}

/* Runs q in a read transaction; on failure nothing is returned. */
static int
cert_query(struct store *s, struct cert_query *q, char *err)
{
    int rc = store_tx(s, false, cert_query_tx, q, err);
    if (rc != 0) {
        for (size_t i = 0; i < q->n; i++)
            store_cert_cleanup(&q->arr[i]);
        XFREE(&q->arr);
        q->n = 0;
    }
    return rc;
}

static void
bind_serial(sqlite3_stmt *st, const void *arg)
{
    store_bind_str(st, 1, arg);
}

int
store_cert_get(struct store *s, const char *serial, struct store_cert *c,
               char *err)
{
    char key[41];
    int rc = serial_arg(serial, key, err);
    if (rc != 0)
        return rc;
    struct cert_query q = {"SELECT " CERT_COLS " FROM certs WHERE serial = ?1",
                           bind_serial,
                           key,
                           true,
                           NULL,
                           0};
    rc = cert_query(s, &q, err);
    if (rc == 0 && q.n == 0)
        rc = cg_seterr(err, CG_ENOTFOUND, "no certificate with serial %s", key);
    if (rc == 0)
        *c = q.arr[0];
    free(q.arr);
    return rc;
}

static void
bind_filter(sqlite3_stmt *st, const void *arg)
{
    const struct store_cert_filter *f = arg;
    const char *status = f->status < 0                   ? NULL
                         : f->status == STORE_CERT_VALID ? "valid"
                                                         : "revoked";
    store_bind_str(st, 1, status);
    sqlite3_bind_int(st, 2, f->expired_only);
    sqlite3_bind_int(st, 3, f->unexpired_only);
    sqlite3_bind_int64(st, 4, f->now ? f->now : store_now());
    store_bind_str(st, 5, f->owner);
}

int
store_cert_list(struct store *s, const struct store_cert_filter *f,
                struct store_cert **out, size_t *n, char *err)
{
    struct cert_query q = {
        "SELECT " CERT_COLS " FROM certs"
        " WHERE (?1 IS NULL OR status = ?1)"
        " AND (?2 = 0 OR (status = 'valid' AND not_after < ?4))"
        " AND (?3 = 0 OR not_after >= ?4)"
        " AND (?5 IS NULL OR owner = ?5 COLLATE NOCASE)"
        " ORDER BY rowid",
        bind_filter,
        f,
        true,
        NULL,
        0};
    int rc = cert_query(s, &q, err);
    *out = q.arr;
    *n = q.n;
    return rc;
}

static void
bind_ca(sqlite3_stmt *st, const void *arg)
{
    sqlite3_bind_int64(st, 1, *(const int64_t *)arg);
}

int
store_cert_revoked(struct store *s, int64_t ca_id, struct store_cert **out,
                   size_t *n, char *err)
{
    /* canonical serials have no leading zero bytes: length, then text,
     * is numeric order; the index on (ca_id, status) finds the rows */
    struct cert_query q = {
        "SELECT serial, ca_id, subject, owner, device, profile, not_before,"
        " not_after, status, coalesce(revoked_at, 0), revocation_reason,"
        " NULL FROM certs WHERE ca_id = ?1 AND status = 'revoked'"
        " ORDER BY length(serial), serial",
        bind_ca,
        &ca_id,
        false,
        NULL,
        0};
    int rc = cert_query(s, &q, err);
    *out = q.arr;
    *n = q.n;
    return rc;
}

/* ---- revocation ----------------------------------------------------- */

struct cert_revoke {
    const char *serial, *reason;
    int64_t at;
};

static int
cert_revoke_tx(struct store *s, void *arg, char *err)
{
    const struct cert_revoke *a = arg;
    sqlite3_stmt *st;
    int rc = store_prep(s,
                        "UPDATE certs SET status = 'revoked', revoked_at = ?2,"
                        " revocation_reason = ?3 WHERE serial = ?1"
                        " AND status = 'valid'",
                        &st, err);
    if (rc != 0)
        return rc;
    store_bind_str(st, 1, a->serial);
    sqlite3_bind_int64(st, 2, a->at);
    store_bind_str(st, 3, a->reason);
    rc = store_step_done(s, st, "revoking a certificate", err);
    sqlite3_finalize(st);
    if (rc == 0 && sqlite3_changes(s->db) == 1)
        return store_bump_seq(s, 1, err);
    if (rc != 0)
        return rc;
    /* nothing changed: unknown or already revoked */
    struct cert_query q = {"SELECT " CERT_COLS " FROM certs WHERE serial = ?1",
                           bind_serial,
                           a->serial,
                           false,
                           NULL,
                           0};
    rc = cert_query_tx(s, &q, err);
    if (rc == 0)
        rc = q.n == 0
                 ? cg_seterr(err, CG_ENOTFOUND, "no certificate with serial %s",
                             a->serial)
                 : cg_seterr(err, CG_EEXIST,
                             "certificate %s is already revoked", a->serial);
    for (size_t i = 0; i < q.n; i++)
        store_cert_cleanup(&q.arr[i]);
    free(q.arr);
    return rc;
}

int
store_cert_revoke(struct store *s, const char *serial, const char *reason,
                  int64_t at, char *err)
{
    char key[41];
    int rc = serial_arg(serial, key, err);
    if (rc != 0)
        return rc;
    struct cert_revoke a = {key, reason, at ? at : store_now()};
    return store_tx(s, true, cert_revoke_tx, &a, err);
}

int
store_revocation_seq(struct store *s, int64_t *out, char *err)
{
    sqlite3_stmt *st;
    int rc =
        store_prep(s, "SELECT seq FROM revocation_seq WHERE id = 1", &st, err);
    if (rc != 0)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = store_sql_fail(s->db, err, "reading the revocation sequence");
    sqlite3_finalize(st);
    return rc;
}
