/*
 * Opening the SQLite store: the data directory (0700) and database file
 * (0600), the connection settings (WAL, foreign keys, busy timeout, full
 * synchronous commits) and the versioned schema migrations.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/xmalloc.h"
#include "store/store_int.h"

/*
 * Migration N is migrations[N - 1]; each runs once, in the transaction
 * that records it in schema_version. Never edit a released migration:
 * append a new one.
 */
static const char *const migrations[] = {
    /* 1: users, CA records, issued certificates, CRL numbers and the
     * revocation sequence. */
    "CREATE TABLE users ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL COLLATE NOCASE UNIQUE,"
    " email TEXT NOT NULL COLLATE NOCASE,"
    " role TEXT NOT NULL CHECK (role IN ('admin', 'user')),"
    " status TEXT NOT NULL DEFAULT 'active'"
    "  CHECK (status IN ('active', 'disabled')),"
    " pw_hash TEXT,"
    " created_at INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX users_email ON users (email COLLATE NOCASE);"
    "CREATE TABLE cas ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " cert_pem TEXT NOT NULL,"
    " key_path TEXT NOT NULL,"
    " key_encrypted INTEGER NOT NULL DEFAULT 0,"
    " is_issuer INTEGER NOT NULL DEFAULT 0,"
    " parent_id INTEGER REFERENCES cas (id),"
    " crl_url TEXT,"
    " created_at INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX cas_one_issuer ON cas (is_issuer)"
    " WHERE is_issuer = 1;"
    "CREATE TABLE certs ("
    " serial TEXT PRIMARY KEY,"
    " ca_id INTEGER NOT NULL REFERENCES cas (id),"
    " subject TEXT NOT NULL,"
    " owner TEXT,"
    " device TEXT,"
    " profile TEXT NOT NULL,"
    " not_before INTEGER NOT NULL,"
    " not_after INTEGER NOT NULL,"
    " status TEXT NOT NULL DEFAULT 'valid'"
    "  CHECK (status IN ('valid', 'revoked')),"
    " revoked_at INTEGER,"
    " revocation_reason TEXT,"
    " pem TEXT NOT NULL);"
    "CREATE INDEX certs_owner ON certs (owner COLLATE NOCASE, status);"
    "CREATE INDEX certs_ca_status ON certs (ca_id, status);"
    "CREATE TABLE cert_sans ("
    " serial TEXT NOT NULL REFERENCES certs (serial),"
    " kind TEXT NOT NULL CHECK (kind IN ('email', 'dns', 'uri', 'ip')),"
    " pos INTEGER NOT NULL,"
    " value TEXT NOT NULL,"
    " PRIMARY KEY (serial, kind, pos)) WITHOUT ROWID;"
    "CREATE TABLE crl_numbers ("
    " ca_id INTEGER PRIMARY KEY REFERENCES cas (id),"
    " last INTEGER NOT NULL);"
    "CREATE TABLE revocation_seq ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " seq INTEGER NOT NULL);"
    "INSERT INTO revocation_seq (id, seq) VALUES (1, 0);",
};

int
store_schema_latest(void)
{
    return (int)(sizeof(migrations) / sizeof(migrations[0]));
}

/* Reads the applied version (0 on a new database). */
static int
read_version(sqlite3 *db, int *out, char *err)
{
    static const char sql[] =
        "SELECT coalesce(max(version), 0) FROM schema_version";
    sqlite3_stmt *st = NULL;
    int rc = store_exec(db,
                        "CREATE TABLE IF NOT EXISTS schema_version ("
                        " version INTEGER PRIMARY KEY,"
                        " applied_at INTEGER NOT NULL)",
                        err);
    if (rc != 0)
        return rc;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rc = store_sql_fail(db, err, "reading the schema version");
        goto out;
    }
    *out = sqlite3_column_int(st, 0);
out:
    sqlite3_finalize(st);
    return rc;
}

/* Applies migration v and records it; inside the caller's transaction. */
static int
apply(sqlite3 *db, int v, char *err)
{
    static const char sql[] =
        "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)";
    sqlite3_stmt *st = NULL;
    char what[64];
    int rc = store_exec(db, migrations[v - 1], err);
    if (rc != 0)
        return rc;
    snprintf(what, sizeof(what), "recording migration %d", v);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return store_sql_fail(db, err, what);
    sqlite3_bind_int(st, 1, v);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = store_sql_fail(db, err, what);
    sqlite3_finalize(st);
    return rc;
}

int
store_migrate(sqlite3 *db, int *version, char *err)
{
    int latest = store_schema_latest(), cur = 0;
    /* Every process opening the store gets here; the write lock makes the
     * second one wait and then find nothing to do. */
    int rc = store_exec(db, "BEGIN IMMEDIATE", err);
    if (rc != 0)
        return rc;
    rc = read_version(db, &cur, err);
    if (rc == 0 && cur > latest)
        rc = cg_seterr(err, CG_EIO,
                       "database schema version %d is newer than this "
                       "certgate supports (%d): upgrade certgate",
                       cur, latest);
    for (int v = cur + 1; rc == 0 && v <= latest; v++)
        rc = apply(db, v, err);
    if (rc == 0)
        rc = store_exec(db, "COMMIT", err);
    if (rc != 0 && !sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    if (rc == 0)
        *version = cur > latest ? cur : latest;
    return rc;
}

/* mkdir -p with mode 0700 for every directory it creates. */
static int
make_dirs(const char *dir, char *err)
{
    char *p = xstrdup(dir);
    int rc = 0;
    for (char *q = p + 1;; q++) {
        if (*q != '/' && *q != '\0')
            continue;
        char c = *q;
        *q = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            rc = cg_seterr(err, CG_EIO, "cannot create data directory %s: %s",
                           p, strerror(errno));
            break;
        }
        *q = c;
        if (c == '\0')
            break;
    }
    free(p);
    struct stat sb;
    if (rc == 0 && (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)))
        rc =
            cg_seterr(err, CG_EIO, "data directory %s is not a directory", dir);
    return rc;
}

/* Creates the database file 0600 when missing: SQLite gives its -wal and
 * -shm files the mode of the database file. */
static int
make_file(const char *path, char *err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return cg_seterr(err, CG_EIO, "cannot open %s: %s", path,
                         strerror(errno));
    close(fd);
    return 0;
}

/* Switches to WAL; retried because the switch needs a lock that a
 * concurrent opener may hold. */
static int
set_wal(sqlite3 *db, char *err)
{
    int rc = CG_EIO;
    for (int tries = 0; tries < STORE_BUSY_MS / 50; tries++) {
        sqlite3_stmt *st = NULL;
        int r =
            sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
        if (r == SQLITE_OK)
            r = sqlite3_step(st);
        const char *mode =
            r == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
        if (mode != NULL && strcmp(mode, "wal") == 0)
            rc = 0;
        else if (r == SQLITE_ROW)
            rc = cg_seterr(err, CG_EIO, "cannot switch to WAL mode");
        else
            rc = store_sql_fail(db, err, "setting WAL mode");
        sqlite3_finalize(st);
        if ((r & 0xff) != SQLITE_BUSY)
            break;
        usleep(50 * 1000);
    }
    return rc;
}

/* Connection settings, then migrations. */
static int
setup(struct store *s, char *err)
{
    int rc;
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
    if ((rc = store_exec(s->db, "PRAGMA foreign_keys=ON", err)) != 0 ||
        (rc = set_wal(s->db, err)) != 0 ||
        (rc = store_exec(s->db, "PRAGMA synchronous=FULL", err)) != 0)
        return rc;
    return store_migrate(s->db, &s->version, err);
}

int
store_open(const char *data_dir, struct store **out, char *err)
{
    struct store *s = xcalloc(1, sizeof(*s));
    int rc = make_dirs(data_dir, err);
    if (rc != 0)
        goto fail;
    s->path = xasprintf("%s/%s", data_dir, STORE_DB_FILE);
    if ((rc = make_file(s->path, err)) != 0)
        goto fail;
    if (sqlite3_open_v2(s->path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rc = cg_seterr(err, CG_EIO, "cannot open %s: %s", s->path,
                       s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    if ((rc = setup(s, err)) != 0)
        goto fail;
    *out = s;
    return 0;
fail:
    store_close(s);
    return CG_EIO;
}

void
store_close(struct store *s)
{
    if (s == NULL)
        return;
    sqlite3_close_v2(s->db);
    free(s->path);
    free(s);
}

int
store_schema_version(struct store *s)
{
    return s->version;
}
