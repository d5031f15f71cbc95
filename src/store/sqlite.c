/*
 * SQLite store queries: transactions, users, CA records, CRL numbers and
 * issued certificates. Opening and migrations are in migrate.c. Values
 * are always bound to prepared statements; every write runs in one
 * BEGIN IMMEDIATE transaction (store_tx).
 */
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/xmalloc.h"
#include "store/store_int.h"

/* ---- helpers -------------------------------------------------------- */

int
store_sql_fail(sqlite3 *db, char *err, const char *what)
{
    int ext = sqlite3_extended_errcode(db), code = CG_EIO;
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
        code = CG_EEXIST;
    else if ((ext & 0xff) == SQLITE_CONSTRAINT)
        code = CG_EINVAL;
    else if ((ext & 0xff) == SQLITE_BUSY || (ext & 0xff) == SQLITE_LOCKED)
        code = CG_ETIMEDOUT;
    const char *file = sqlite3_db_filename(db, "main");
    return cg_seterr(err, code, "%s: %s (%s)", what, sqlite3_errmsg(db),
                     file != NULL && *file ? file : "store");
}

int
store_exec(sqlite3 *db, const char *sql, char *err)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return store_sql_fail(db, err, sql);
    return 0;
}

int
store_tx(struct store *s, bool write, store_tx_fn *fn, void *arg, char *err)
{
    int rc = store_exec(s->db, write ? "BEGIN IMMEDIATE" : "BEGIN", err);
    if (rc != 0)
        return rc;
    rc = fn(s, arg, err);
    if (rc == 0)
        rc = store_exec(s->db, "COMMIT", err);
    if (rc != 0 && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int
store_prep(struct store *s, const char *sql, sqlite3_stmt **st, char *err)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) {
        *st = NULL;
        return store_sql_fail(s->db, err, "preparing a query");
    }
    return 0;
}

void
store_bind_str(sqlite3_stmt *st, int i, const char *v)
{
    if (i > sqlite3_bind_parameter_count(st))
        return;
    if (v == NULL)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

int
store_step_done(struct store *s, sqlite3_stmt *st, const char *what, char *err)
{
    if (sqlite3_step(st) != SQLITE_DONE)
        return store_sql_fail(s->db, err, what);
    return 0;
}

char *
store_col_dup(sqlite3_stmt *st, int i)
{
    const char *v = (const char *)sqlite3_column_text(st, i);
    return v != NULL ? xstrdup(v) : NULL;
}

void *
store_grow(void *arr, size_t n, size_t *cap, size_t sz)
{
    if (n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        arr = xrealloc(arr, *cap * sz);
    }
    memset((char *)arr + n * sz, 0, sz);
    return arr;
}

int64_t
store_now(void)
{
    return (int64_t)time(NULL);
}

int
store_bump_seq(struct store *s, int64_t n, char *err)
{
    sqlite3_stmt *st;
    int rc =
        store_prep(s, "UPDATE revocation_seq SET seq = seq + ?1", &st, err);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(st, 1, n);
    rc = store_step_done(s, st, "bumping the revocation sequence", err);
    sqlite3_finalize(st);
    return rc;
}

/* ---- users ---------------------------------------------------------- */

#define USER_COLS "id, name, email, role, status, pw_hash, created_at"

void
store_user_cleanup(struct store_user *u)
{
    if (u == NULL)
        return;
    free(u->name);
    free(u->email);
    free(u->role);
    free(u->pw_hash);
    memset(u, 0, sizeof(*u));
}

static void
user_from_row(sqlite3_stmt *st, struct store_user *u)
{
    const char *status = (const char *)sqlite3_column_text(st, 4);
    u->id = sqlite3_column_int64(st, 0);
    u->name = store_col_dup(st, 1);
    u->email = store_col_dup(st, 2);
    u->role = store_col_dup(st, 3);
    u->status = status != NULL && strcmp(status, "disabled") == 0
                    ? STORE_USER_DISABLED
                    : STORE_USER_ACTIVE;
    u->pw_hash = store_col_dup(st, 5);
    u->created_at = sqlite3_column_int64(st, 6);
}

/* Refuses a name or email already taken (case-insensitively). */
static int
user_check_free(struct store *s, const struct store_user *u, char *err)
{
    sqlite3_stmt *st;
    int rc = store_prep(s,
                        "SELECT name, email FROM users"
                        " WHERE name = ?1 OR email = ?2 LIMIT 1",
                        &st, err);
    if (rc != 0)
        return rc;
    store_bind_str(st, 1, u->name);
    store_bind_str(st, 2, u->email);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (sqlite3_stricmp(name, u->name) == 0)
            rc = cg_seterr(err, CG_EEXIST, "user \"%s\" already exists", name);
        else
            rc = cg_seterr(err, CG_EEXIST,
                           "email \"%s\" is already used by user \"%s\"",
                           u->email, name);
    } else if (r != SQLITE_DONE) {
        rc = store_sql_fail(s->db, err, "looking up users");
    }
    sqlite3_finalize(st);
    return rc;
}

static int
user_add_tx(struct store *s, void *arg, char *err)
{
    const struct store_user *u = arg;
    sqlite3_stmt *st;
    int rc = user_check_free(s, u, err);
    if (rc != 0 ||
        (rc = store_prep(s,
                         "INSERT INTO users (name, email, role, status,"
                         " pw_hash, created_at)"
                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                         &st, err)) != 0)
        return rc;
    store_bind_str(st, 1, u->name);
    store_bind_str(st, 2, u->email);
    store_bind_str(st, 3, u->role != NULL ? u->role : "user");
    store_bind_str(st, 4,
                   u->status == STORE_USER_DISABLED ? "disabled" : "active");
    store_bind_str(st, 5, u->pw_hash);
    sqlite3_bind_int64(st, 6, u->created_at ? u->created_at : store_now());
    rc = store_step_done(s, st, "adding a user", err);
    sqlite3_finalize(st);
    return rc;
}

int
store_user_add(struct store *s, const struct store_user *u, char *err)
{
    assert(u->name != NULL && u->email != NULL);
    return store_tx(s, true, user_add_tx, (void *)u, err);
}

/* One user where the column `by` (name or email) equals key. */
static int
user_get_by(struct store *s, const char *sql, const char *key,
            struct store_user *u, char *err)
{
    sqlite3_stmt *st;
    int rc = store_prep(s, sql, &st, err);
    if (rc != 0)
        return rc;
    store_bind_str(st, 1, key);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        user_from_row(st, u);
    else if (r == SQLITE_DONE)
        rc = cg_seterr(err, CG_ENOTFOUND, "no user \"%s\"", key);
    else
        rc = store_sql_fail(s->db, err, "reading a user");
    sqlite3_finalize(st);
    return rc;
}

int
store_user_get(struct store *s, const char *name, struct store_user *u,
               char *err)
{
    return user_get_by(s, "SELECT " USER_COLS " FROM users WHERE name = ?1",
                       name, u, err);
}

int
store_user_get_by_email(struct store *s, const char *email,
                        struct store_user *u, char *err)
{
    int rc = user_get_by(s, "SELECT " USER_COLS " FROM users WHERE email = ?1",
                         email, u, err);
    if (rc == CG_ENOTFOUND)
        cg_seterr(err, rc, "no user with email \"%s\"", email);
    return rc;
}

int
store_user_list(struct store *s, struct store_user **out, size_t *n, char *err)
{
    struct store_user *arr = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_stmt *st;
    int rc = store_prep(s, "SELECT " USER_COLS " FROM users ORDER BY name", &st,
                        err);
    if (rc != 0)
        return rc;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        arr = store_grow(arr, cnt, &cap, sizeof(*arr));
        user_from_row(st, &arr[cnt++]);
    }
    if (r != SQLITE_DONE) {
        rc = store_sql_fail(s->db, err, "listing users");
        for (size_t i = 0; i < cnt; i++)
            store_user_cleanup(&arr[i]);
        XFREE(&arr);
        cnt = 0;
    }
    sqlite3_finalize(st);
    *out = arr;
    *n = cnt;
    return rc;
}

struct user_update {
    const char *sql; /* ?1 name, ?2 value */
    const char *name, *value;
};

static int
user_update_tx(struct store *s, void *arg, char *err)
{
    const struct user_update *a = arg;
    sqlite3_stmt *st;
    int rc = store_prep(s, a->sql, &st, err);
    if (rc != 0)
        return rc;
    store_bind_str(st, 1, a->name);
    store_bind_str(st, 2, a->value);
    rc = store_step_done(s, st, "updating a user", err);
    if (rc == 0 && sqlite3_changes(s->db) == 0)
        rc = cg_seterr(err, CG_ENOTFOUND, "no user \"%s\"", a->name);
    sqlite3_finalize(st);
    return rc;
}

int
store_user_set_password(struct store *s, const char *name, const char *pw_hash,
                        char *err)
{
    struct user_update a = {"UPDATE users SET pw_hash = ?2 WHERE name = ?1",
                            name, pw_hash};
    return store_tx(s, true, user_update_tx, &a, err);
}

int
store_user_set_status(struct store *s, const char *name,
                      enum store_user_status st, char *err)
{
    struct user_update a = {"UPDATE users SET status = ?2 WHERE name = ?1",
                            name,
                            st == STORE_USER_DISABLED ? "disabled" : "active"};
    return store_tx(s, true, user_update_tx, &a, err);
}

struct user_delete {
    const char *name, *reason;
    int64_t now;
};

/* Certificates of the owner that are valid now: ?1 owner, ?2 now. */
#define OWNER_VALID                                                            \
    " WHERE owner = ?1 COLLATE NOCASE AND status = 'valid'"                    \
    " AND not_after >= ?2"

/* Runs an OWNER_VALID statement; *n gets the count or the changes. */
static int
owner_certs(struct store *s, const char *sql, const struct user_delete *a,
            int64_t *n, char *err)
{
    sqlite3_stmt *st;
    int rc = store_prep(s, sql, &st, err);
    if (rc != 0)
        return rc;
    store_bind_str(st, 1, a->name);
    sqlite3_bind_int64(st, 2, a->now);
    store_bind_str(st, 3, a->reason);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *n = sqlite3_column_int64(st, 0);
    else if (r == SQLITE_DONE)
        *n = sqlite3_changes(s->db);
    else
        rc = store_sql_fail(s->db, err, "reading the user's certificates");
    sqlite3_finalize(st);
    return rc;
}

static int
user_delete_tx(struct store *s, void *arg, char *err)
{
    const struct user_delete *a = arg;
    struct store_user u = {0};
    int64_t n = 0;
    int rc = store_user_get(s, a->name, &u, err);
    if (rc != 0)
        return rc;
    store_user_cleanup(&u);
    rc = owner_certs(s, "SELECT count(*) FROM certs" OWNER_VALID, a, &n, err);
    if (rc == 0 && n > 0 && a->reason == NULL)
        return cg_seterr(err, CG_EEXIST,
                         "user \"%s\" owns %lld valid certificate%s: revoke "
                         "%s first or pass --revoke-certs",
                         a->name, (long long)n, n == 1 ? "" : "s",
                         n == 1 ? "it" : "them");
    if (rc == 0 && n > 0)
        rc = owner_certs(s,
                         "UPDATE certs SET status = 'revoked',"
                         " revoked_at = ?2, revocation_reason = ?3" OWNER_VALID,
                         a, &n, err);
    if (rc == 0 && n > 0)
        rc = store_bump_seq(s, n, err);
    if (rc == 0) {
        struct user_update d = {"DELETE FROM users WHERE name = ?1", a->name,
                                NULL};
        rc = user_update_tx(s, &d, err);
    }
    return rc;
}

int
store_user_delete(struct store *s, const char *name, const char *revoke_reason,
                  char *err)
{
    struct user_delete a = {name, revoke_reason, store_now()};
    return store_tx(s, true, user_delete_tx, &a, err);
}

/* ---- certificate authorities ---------------------------------------- */

#define CA_COLS                                                                \
    "id, name, cert_pem, key_path, key_encrypted, is_issuer,"                  \
    " coalesce(parent_id, 0), crl_url, created_at"

void
store_ca_cleanup(struct store_ca *c)
{
    if (c == NULL)
        return;
    free(c->name);
    free(c->cert_pem);
    free(c->key_path);
    free(c->crl_url);
    memset(c, 0, sizeof(*c));
}

static void
ca_from_row(sqlite3_stmt *st, struct store_ca *c)
{
    c->id = sqlite3_column_int64(st, 0);
    c->name = store_col_dup(st, 1);
    c->cert_pem = store_col_dup(st, 2);
    c->key_path = store_col_dup(st, 3);
    c->key_encrypted = sqlite3_column_int(st, 4) != 0;
    c->is_issuer = sqlite3_column_int(st, 5) != 0;
    c->parent_id = sqlite3_column_int64(st, 6);
    c->crl_url = store_col_dup(st, 7);
    c->created_at = sqlite3_column_int64(st, 8);
}

struct ca_add {
    struct store_ca *cas;
    size_t n;
};

/* Resolves parent_id of cas[i]: 0 root, -(k+1) entry k of this call. */
static int
ca_parent(const struct ca_add *a, size_t i, int64_t *parent, char *err)
{
    int64_t p = a->cas[i].parent_id;
    if (p >= 0) {
        *parent = p;
        return 0;
    }
    if ((uint64_t) - (p + 1) >= i)
        return cg_seterr(err, CG_EINVAL,
                         "CA \"%s\": parent_id %lld is not an earlier entry",
                         a->cas[i].name, (long long)p);
    *parent = a->cas[-(p + 1)].id;
    return 0;
}

static int
ca_insert(struct store *s, struct store_ca *c, int64_t parent, char *err)
{
    sqlite3_stmt *st;
    int rc =
        store_prep(s,
                   "INSERT INTO cas (name, cert_pem, key_path, key_encrypted,"
                   " is_issuer, parent_id, crl_url, created_at)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                   &st, err);
    if (rc != 0)
        return rc;
    store_bind_str(st, 1, c->name);
    store_bind_str(st, 2, c->cert_pem);
    store_bind_str(st, 3, c->key_path);
    sqlite3_bind_int(st, 4, c->key_encrypted);
    sqlite3_bind_int(st, 5, c->is_issuer);
    if (parent > 0)
        sqlite3_bind_int64(st, 6, parent);
    store_bind_str(st, 7, c->crl_url);
    sqlite3_bind_int64(st, 8, c->created_at ? c->created_at : store_now());
    rc = store_step_done(s, st, "adding a CA", err);
    if (rc == CG_EEXIST)
        rc = cg_seterr(err, rc, "an issuing CA already exists");
    else if (rc == CG_EINVAL)
        rc = cg_seterr(err, rc, "CA \"%s\": unknown parent CA %lld", c->name,
                       (long long)parent);
    c->id = rc == 0 ? sqlite3_last_insert_rowid(s->db) : 0;
    sqlite3_finalize(st);
    return rc;
}

static int
ca_add_tx(struct store *s, void *arg, char *err)
{
    const struct ca_add *a = arg;
    struct store_ca issuer = {0};
    int rc = store_ca_get_issuer(s, &issuer, err);
    store_ca_cleanup(&issuer);
    if (rc == 0) {
        for (size_t i = 0; i < a->n; i++) {
            if (a->cas[i].is_issuer)
                return cg_seterr(err, CG_EEXIST,
                                 "an issuing CA already exists");
        }
    } else if (rc != CG_ENOTFOUND) {
        return rc;
    }
    rc = 0;
    for (size_t i = 0; rc == 0 && i < a->n; i++) {
        int64_t parent = 0;
        rc = ca_parent(a, i, &parent, err);
        if (rc == 0)
            rc = ca_insert(s, &a->cas[i], parent, err);
    }
    return rc;
}

int
store_ca_add(struct store *s, struct store_ca *cas, size_t n, char *err)
{
    struct ca_add a = {cas, n};
    for (size_t i = 0; i < n; i++)
        assert(cas[i].name != NULL && cas[i].cert_pem != NULL &&
               cas[i].key_path != NULL);
    int rc = store_tx(s, true, ca_add_tx, &a, err);
    /* on success the records mirror the rows, parents resolved; on
     * failure nothing was written and no id is kept */
    for (size_t i = 0; i < n; i++) {
        if (rc != 0)
            cas[i].id = 0;
        else if (cas[i].parent_id < 0)
            cas[i].parent_id = cas[-(cas[i].parent_id + 1)].id;
    }
    return rc;
}

/* The CA selected by sql with ?1 bound to id. */
static int
ca_get(struct store *s, const char *sql, int64_t id, struct store_ca *c,
       char *err)
{
    sqlite3_stmt *st;
    int rc = store_prep(s, sql, &st, err);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        ca_from_row(st, c);
    else if (r == SQLITE_DONE)
        rc = cg_seterr(err, CG_ENOTFOUND,
                       id ? "no CA with id %lld"
                          : "no issuing CA: run `certgate ca init` first",
                       (long long)id);
    else
        rc = store_sql_fail(s->db, err, "reading a CA");
    sqlite3_finalize(st);
    return rc;
}

int
store_ca_get_issuer(struct store *s, struct store_ca *c, char *err)
{
    return ca_get(s, "SELECT " CA_COLS " FROM cas WHERE is_issuer = 1", 0, c,
                  err);
}

struct ca_chain {
    struct store_ca *arr;
    size_t n;
};

static int
ca_chain_tx(struct store *s, void *arg, char *err)
{
    struct ca_chain *a = arg;
    size_t cap = 0;
    int rc = 0;
    for (int64_t next = 0; rc == 0 && (a->n == 0 || next != 0);) {
        if (a->n == 16)
            return cg_seterr(err, CG_EINVAL, "CA chain longer than 16");
        a->arr = store_grow(a->arr, a->n, &cap, sizeof(*a->arr));
        if (a->n == 0)
            rc = store_ca_get_issuer(s, &a->arr[0], err);
        else
            rc = ca_get(s, "SELECT " CA_COLS " FROM cas WHERE id = ?1", next,
                        &a->arr[a->n], err);
        if (rc == 0)
            next = a->arr[a->n++].parent_id;
    }
    return rc;
}

int
store_ca_chain(struct store *s, struct store_ca **out, size_t *n, char *err)
{
    struct ca_chain a = {NULL, 0};
    int rc = store_tx(s, false, ca_chain_tx, &a, err);
    if (rc != 0) {
        for (size_t i = 0; i < a.n; i++)
            store_ca_cleanup(&a.arr[i]);
        XFREE(&a.arr);
        a.n = 0;
    }
    *out = a.arr;
    *n = a.n;
    return rc;
}

struct crl_next {
    int64_t ca_id, number;
};

static int
crl_next_tx(struct store *s, void *arg, char *err)
{
    struct crl_next *a = arg;
    struct store_ca ca = {0};
    sqlite3_stmt *st;
    int rc = ca_get(s, "SELECT " CA_COLS " FROM cas WHERE id = ?1", a->ca_id,
                    &ca, err);
    store_ca_cleanup(&ca);
    if (rc != 0 ||
        (rc = store_prep(s,
                         "INSERT INTO crl_numbers (ca_id, last)"
                         " VALUES (?1, 1) ON CONFLICT (ca_id)"
                         " DO UPDATE SET last = last + 1 RETURNING last",
                         &st, err)) != 0)
        return rc;
    sqlite3_bind_int64(st, 1, a->ca_id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        a->number = sqlite3_column_int64(st, 0);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = store_sql_fail(s->db, err, "reserving a CRL number");
    } else {
        rc = store_sql_fail(s->db, err, "reserving a CRL number");
    }
    sqlite3_finalize(st);
    return rc;
}

int
store_crl_next_number(struct store *s, int64_t ca_id, int64_t *out, char *err)
{
    struct crl_next a = {ca_id, 0};
    int rc = store_tx(s, true, crl_next_tx, &a, err);
    if (rc == 0)
        *out = a.number;
    return rc;
}
