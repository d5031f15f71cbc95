/*
 * Internals of the SQLite store, shared by its files (sqlite.c: queries,
 * migrate.c: opening and schema migrations) and by the unit tests.
 */
#ifndef CG_STORE_STORE_INT_H
#define CG_STORE_STORE_INT_H

#include <sqlite3.h>

#include "store/store.h"

#define STORE_DB_FILE "certgate.db"
#define STORE_BUSY_MS 10000

/* One connection; not shared between threads. */
struct store {
    sqlite3 *db;
    char *path; /* the database file, for error messages */
    int version;
};

/* Body of a transaction; a non-zero return rolls it back. */
typedef int store_tx_fn(struct store *s, void *arg, char *err);

/*
 * Runs fn inside one transaction: BEGIN IMMEDIATE when write (the write
 * lock is taken up front, waiting up to STORE_BUSY_MS), else a read
 * snapshot. Commits when fn returns 0, rolls back otherwise. Returns fn's
 * result or the error of BEGIN/COMMIT.
 */
int store_tx(struct store *s, bool write, store_tx_fn *fn, void *arg,
             char *err);

/* Fills err with what failed and SQLite's message; returns the CG_E*
 * matching the connection's last error (CG_EEXIST for a unique or primary
 * key conflict, CG_EINVAL for other constraints, CG_ETIMEDOUT when the
 * database stayed locked, else CG_EIO). */
int store_sql_fail(sqlite3 *db, char *err, const char *what);
/* Runs static SQL without values (BEGIN, PRAGMA, DDL). */
int store_exec(sqlite3 *db, const char *sql, char *err);

/* Prepares sql; on failure *st is NULL and err filled. */
int store_prep(struct store *s, const char *sql, sqlite3_stmt **st, char *err);
/* Binds v (borrowed until the statement is finalized), or NULL when v is
 * NULL; a parameter the statement does not have is skipped. */
void store_bind_str(sqlite3_stmt *st, int i, const char *v);
/* Steps a statement that returns no row; what names it in err. */
int store_step_done(struct store *s, sqlite3_stmt *st, const char *what,
                    char *err);
/* Returns an owned copy of a text column, NULL for SQL NULL. */
char *store_col_dup(sqlite3_stmt *st, int i);
/* Makes room for element n of an array of sz-byte elements (capacity
 * *cap, doubled as needed) and zeroes it; returns the array. */
void *store_grow(void *arr, size_t n, size_t *cap, size_t sz);
/* Unix seconds now. */
int64_t store_now(void);
/* Adds n to the revocation sequence; inside a write transaction. */
int store_bump_seq(struct store *s, int64_t n, char *err);

/* Applies the pending migrations of db; *version gets the result. */
int store_migrate(sqlite3 *db, int *version, char *err);
/* Number of the newest migration this build knows. */
int store_schema_latest(void);

#endif
