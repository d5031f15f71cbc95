/*
 * Unit tests of src/store: opening and migrations, users, CA records, CRL
 * numbers, certificates and revocation, transactions that fail leaving
 * the store unchanged, and the password hashes. Each test gets a fresh
 * data directory under a mkdtemp directory, removed afterwards.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/xmalloc.h"
#include "store/password.h"
#include "store/store.h"
#include "store/store_int.h"

#define DAY 86400

struct fx {
    char tmp[64];
    char *data; /* tmp/data: made by store_open */
    struct store *s;
    int64_t now;
};

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int
setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    char err[CG_ERR_LEN];
    snprintf(f->tmp, sizeof(f->tmp), "/tmp/cg-store-XXXXXX");
    assert_non_null(mkdtemp(f->tmp));
    f->data = xasprintf("%s/data", f->tmp);
    assert_int_equal(store_open(f->data, &f->s, err), 0);
    f->now = (int64_t)time(NULL);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->s);
    nftw(f->tmp, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    free(f->data);
    free(f);
    return 0;
}

/* Rows of a table, through the connection (store_int.h). */
static int64_t
count_rows(struct fx *f, const char *table)
{
    char sql[128];
    sqlite3_stmt *st;
    int64_t n = -1;
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
    assert_int_equal(sqlite3_prepare_v2(f->s->db, sql, -1, &st, NULL),
                     SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static void
add_user(struct fx *f, const char *name, const char *email)
{
    char err[CG_ERR_LEN];
    struct store_user u = {
        .name = (char *)name, .email = (char *)email, .role = "user"};
    assert_int_equal(store_user_add(f->s, &u, err), 0);
}

/* A root and an issuing intermediate; returns the intermediate's id. */
static int64_t
add_cas(struct fx *f)
{
    char err[CG_ERR_LEN];
    struct store_ca cas[2] = {
        {.name = "root", .cert_pem = "ROOT PEM", .key_path = "/k/root.key"},
        {.name = "issuing",
         .cert_pem = "INT PEM",
         .key_path = "/k/int.key",
         .is_issuer = true,
         .parent_id = -1,
         .crl_url = "http://crl.example/int.crl"}};
    assert_int_equal(store_ca_add(f->s, cas, 2, err), 0);
    return cas[1].id;
}

static int
add_cert(struct fx *f, int64_t ca, const char *serial, const char *owner,
         int64_t not_after)
{
    char err[CG_ERR_LEN];
    struct store_cert c = {.ca_id = ca,
                           .subject = "CN=x",
                           .owner = (char *)owner,
                           .profile = "client",
                           .not_before = f->now - DAY,
                           .not_after = not_after,
                           .pem = "PEM"};
    snprintf(c.serial, sizeof(c.serial), "%s", serial);
    return store_cert_add(f->s, &c, err);
}

/* ---- open and migrations -------------------------------------------- */

static void
test_open_twice(void **state)
{
    struct fx *f = *state;
    struct store *s2 = NULL;
    struct stat sb;
    char err[CG_ERR_LEN], *db = xasprintf("%s/certgate.db", f->data);
    assert_int_equal(store_schema_version(f->s), store_schema_latest());
    assert_int_equal(store_schema_version(f->s), 1);
    add_user(f, "alice", "alice@example.com");
    store_close(f->s);
    /* a second open (and a second handle at once) migrates nothing */
    assert_int_equal(store_open(f->data, &f->s, err), 0);
    assert_int_equal(store_open(f->data, &s2, err), 0);
    assert_int_equal(store_schema_version(s2), 1);
    assert_int_equal(count_rows(f, "schema_version"), 1);
    assert_int_equal(count_rows(f, "users"), 1);
    store_close(s2);
    assert_int_equal(stat(f->data, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_int_equal(stat(db, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    free(db);
}

static void
test_open_fails(void **state)
{
    struct fx *f = *state;
    struct store *s = NULL;
    char err[CG_ERR_LEN] = "", *file = xasprintf("%s/file", f->tmp);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(store_open(file, &s, err), CG_EIO);
    assert_null(s);
    assert_non_null(strstr(err, "not a directory"));
    free(file);
}

/* ---- users ---------------------------------------------------------- */

static void
test_users(void **state)
{
    struct fx *f = *state;
    struct store_user u = {0}, *us = NULL;
    size_t n = 0;
    char err[CG_ERR_LEN];
    add_user(f, "bob", "Bob@Example.com");
    add_user(f, "alice", "alice@example.com");
    assert_int_equal(store_user_get(f->s, "alice", &u, err), 0);
    assert_string_equal(u.email, "alice@example.com");
    assert_string_equal(u.role, "user");
    assert_int_equal(u.status, STORE_USER_ACTIVE);
    assert_null(u.pw_hash);
    assert_true(u.created_at >= f->now);
    store_user_cleanup(&u);
    assert_int_equal(store_user_get_by_email(f->s, "bob@EXAMPLE.com", &u, err),
                     0);
    assert_string_equal(u.name, "bob");
    store_user_cleanup(&u);
    assert_int_equal(store_user_get(f->s, "carol", &u, err), CG_ENOTFOUND);
    assert_string_equal(err, "no user \"carol\"");

    struct store_user dup = {.name = "alice", .email = "a2@example.com"};
    assert_int_equal(store_user_add(f->s, &dup, err), CG_EEXIST);
    assert_string_equal(err, "user \"alice\" already exists");
    dup = (struct store_user){.name = "carol", .email = "BOB@example.COM"};
    assert_int_equal(store_user_add(f->s, &dup, err), CG_EEXIST);
    assert_string_equal(err, "email \"BOB@example.COM\" is already used by "
                             "user \"bob\"");
    dup = (struct store_user){.name = "x", .email = "x@y", .role = "root"};
    assert_int_equal(store_user_add(f->s, &dup, err), CG_EINVAL);

    assert_int_equal(store_user_list(f->s, &us, &n, err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(us[0].name, "alice");
    assert_string_equal(us[1].name, "bob");
    for (size_t i = 0; i < n; i++)
        store_user_cleanup(&us[i]);
    free(us);
}

static void
test_user_updates(void **state)
{
    struct fx *f = *state;
    struct store_user u = {0};
    char err[CG_ERR_LEN], hash[PASSWORD_HASH_LEN];
    add_user(f, "alice", "alice@example.com");
    assert_int_equal(password_hash("s3cret", 6, hash), 0);
    assert_int_equal(store_user_set_password(f->s, "alice", hash, err), 0);
    assert_int_equal(
        store_user_set_status(f->s, "alice", STORE_USER_DISABLED, err), 0);
    assert_int_equal(store_user_get(f->s, "alice", &u, err), 0);
    assert_int_equal(u.status, STORE_USER_DISABLED);
    assert_true(password_verify(u.pw_hash, "s3cret", 6));
    assert_false(password_verify(u.pw_hash, "s3creT", 6));
    store_user_cleanup(&u);
    assert_int_equal(
        store_user_set_status(f->s, "alice", STORE_USER_ACTIVE, err), 0);
    assert_int_equal(store_user_get(f->s, "alice", &u, err), 0);
    assert_int_equal(u.status, STORE_USER_ACTIVE);
    store_user_cleanup(&u);
    assert_int_equal(store_user_set_password(f->s, "nobody", hash, err),
                     CG_ENOTFOUND);
    assert_int_equal(
        store_user_set_status(f->s, "nobody", STORE_USER_ACTIVE, err),
        CG_ENOTFOUND);
    assert_int_equal(store_user_delete(f->s, "nobody", NULL, err),
                     CG_ENOTFOUND);
}

/* Delete is refused while valid certificates exist, and the refusal
 * changes nothing; with a reason they are revoked in the same step. */
static void
test_user_delete(void **state)
{
    struct fx *f = *state;
    struct store_user u = {0};
    struct store_cert c = {0};
    char err[CG_ERR_LEN];
    int64_t seq = -1, ca = add_cas(f);
    add_user(f, "bob", "bob@example.com");
    assert_int_equal(add_cert(f, ca, "01", "bob", f->now + DAY), 0);
    assert_int_equal(add_cert(f, ca, "02", "bob", f->now + DAY), 0);
    assert_int_equal(add_cert(f, ca, "03", "bob", f->now - 10), 0);
    assert_int_equal(add_cert(f, ca, "04", "alice", f->now + DAY), 0);
    assert_int_equal(store_user_delete(f->s, "bob", NULL, err), CG_EEXIST);
    assert_string_equal(err, "user \"bob\" owns 2 valid certificates: revoke "
                             "them first or pass --revoke-certs");
    assert_int_equal(store_user_get(f->s, "bob", &u, err), 0);
    store_user_cleanup(&u);
    assert_int_equal(store_revocation_seq(f->s, &seq, err), 0);
    assert_int_equal(seq, 0);

    assert_int_equal(
        store_user_delete(f->s, "bob", "cessationOfOperation", err), 0);
    assert_int_equal(store_user_get(f->s, "bob", &u, err), CG_ENOTFOUND);
    assert_int_equal(store_revocation_seq(f->s, &seq, err), 0);
    assert_int_equal(seq, 2);
    assert_int_equal(store_cert_get(f->s, "02", &c, err), 0);
    assert_int_equal(c.status, STORE_CERT_REVOKED);
    assert_string_equal(c.revocation_reason, "cessationOfOperation");
    assert_string_equal(c.owner, "bob"); /* kept as text */
    assert_true(c.revoked_at >= f->now);
    store_cert_cleanup(&c);
    /* the expired one and alice's are left alone */
    assert_int_equal(store_cert_get(f->s, "03", &c, err), 0);
    assert_int_equal(c.status, STORE_CERT_VALID);
    store_cert_cleanup(&c);
    assert_int_equal(store_cert_get(f->s, "04", &c, err), 0);
    assert_int_equal(c.status, STORE_CERT_VALID);
    store_cert_cleanup(&c);
}

/* ---- CAs and CRL numbers -------------------------------------------- */

static void
test_ca(void **state)
{
    struct fx *f = *state;
    struct store_ca c = {0}, *chain = NULL;
    size_t n = 0;
    char err[CG_ERR_LEN];
    assert_int_equal(store_ca_get_issuer(f->s, &c, err), CG_ENOTFOUND);
    assert_int_equal(store_ca_chain(f->s, &chain, &n, err), CG_ENOTFOUND);
    int64_t issuer = add_cas(f);
    assert_int_equal(store_ca_get_issuer(f->s, &c, err), 0);
    assert_int_equal(c.id, issuer);
    assert_string_equal(c.name, "issuing");
    assert_string_equal(c.cert_pem, "INT PEM");
    assert_string_equal(c.key_path, "/k/int.key");
    assert_string_equal(c.crl_url, "http://crl.example/int.crl");
    assert_true(c.is_issuer);
    assert_false(c.key_encrypted);
    int64_t root = c.parent_id;
    assert_true(root > 0 && root != issuer);
    store_ca_cleanup(&c);
    assert_int_equal(store_ca_chain(f->s, &chain, &n, err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(chain[0].id, issuer);
    assert_int_equal(chain[1].id, root);
    assert_int_equal(chain[1].parent_id, 0);
    assert_false(chain[1].is_issuer);
    assert_null(chain[1].crl_url);
    for (size_t i = 0; i < n; i++)
        store_ca_cleanup(&chain[i]);
    free(chain);
    /* a second issuer is refused, and nothing of that call is kept */
    struct store_ca more[2] = {
        {.name = "root2", .cert_pem = "P", .key_path = "/k"},
        {.name = "int2",
         .cert_pem = "P",
         .key_path = "/k",
         .is_issuer = true,
         .parent_id = -1}};
    assert_int_equal(store_ca_add(f->s, more, 2, err), CG_EEXIST);
    assert_int_equal(more[0].id, 0);
    assert_int_equal(count_rows(f, "cas"), 2);
}

static void
test_ca_add_rollback(void **state)
{
    struct fx *f = *state;
    char err[CG_ERR_LEN];
    /* the second entry is bad: the first must not stay */
    struct store_ca cas[2] = {
        {.name = "root", .cert_pem = "P", .key_path = "/k"},
        {.name = "bad", .cert_pem = "P", .key_path = "/k", .parent_id = -2}};
    assert_int_equal(store_ca_add(f->s, cas, 2, err), CG_EINVAL);
    assert_int_equal(count_rows(f, "cas"), 0);
    cas[1].parent_id = 999; /* unknown CA: a foreign key violation */
    assert_int_equal(store_ca_add(f->s, cas, 2, err), CG_EINVAL);
    assert_int_equal(count_rows(f, "cas"), 0);
}

static void
test_crl_numbers(void **state)
{
    struct fx *f = *state;
    char err[CG_ERR_LEN];
    int64_t issuer = add_cas(f), num = 0;
    for (int64_t want = 1; want <= 3; want++) {
        assert_int_equal(store_crl_next_number(f->s, issuer, &num, err), 0);
        assert_int_equal(num, want);
    }
    /* numbered per CA */
    assert_int_equal(store_crl_next_number(f->s, issuer - 1, &num, err), 0);
    assert_int_equal(num, 1);
    assert_int_equal(store_crl_next_number(f->s, 4242, &num, err),
                     CG_ENOTFOUND);
}

/* ---- certificates --------------------------------------------------- */

static void
test_serial_normalize(void **state)
{
    static const char *const cases[][2] = {
        {"0A1B2C", "0A1B2C"},
        {"a1b2c", "0A1B2C"},
        {"000a1b2c", "0A1B2C"},
        {"0a:1b:2c", "0A1B2C"},
        {"0", "00"},
        {"00:00", "00"},
        {"FF", "FF"},
        {"7f", "7F"},
        {"1", "01"},
        {"00112233445566778899AABBCCDDEEFF0011223344", /* 40 after zeros */
         "112233445566778899AABBCCDDEEFF0011223344"},
    };
    static const char *const bad[] = {
        "",      ":",  "0x12",
        "12 34", "G1", "112233445566778899AABBCCDDEEFF001122334455"};
    char out[41];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(store_serial_normalize(cases[i][0], out), 0);
        assert_string_equal(out, cases[i][1]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(store_serial_normalize(bad[i], out), CG_EINVAL);
}

static void
test_cert_add_get(void **state)
{
    struct fx *f = *state;
    struct store_cert c = {0}, g = {0};
    char err[CG_ERR_LEN];
    int64_t ca = add_cas(f);
    snprintf(c.serial, sizeof(c.serial), "0A1B2C3D");
    c.ca_id = ca;
    c.subject = "CN=alice,O=Example";
    cg_strlist_add(&c.san_email, "alice@example.com");
    cg_strlist_add(&c.san_email, "a@example.com");
    cg_strlist_add(&c.san_dns, "alice.example.com");
    cg_strlist_add(&c.san_uri, "urn:device:1");
    cg_strlist_add(&c.san_ip, "192.0.2.1");
    c.owner = "alice";
    c.device = "laptop";
    c.profile = "client";
    c.not_before = f->now - 60;
    c.not_after = f->now + DAY;
    c.pem = "-----BEGIN CERTIFICATE-----\n...";
    assert_int_equal(store_cert_add(f->s, &c, err), 0);
    assert_int_equal(store_cert_add(f->s, &c, err), CG_EEXIST);
    assert_string_equal(err, "certificate serial 0A1B2C3D already exists");
    snprintf(c.serial, sizeof(c.serial), "000a1b2c3d"); /* same number */
    assert_int_equal(store_cert_add(f->s, &c, err), CG_EEXIST);
    snprintf(c.serial, sizeof(c.serial), "xyz");
    assert_int_equal(store_cert_add(f->s, &c, err), CG_EINVAL);
    c.ca_id = 999; /* unknown CA */
    snprintf(c.serial, sizeof(c.serial), "55");
    assert_int_equal(store_cert_add(f->s, &c, err), CG_EINVAL);
    assert_int_equal(count_rows(f, "cert_sans"), 5);

    assert_int_equal(store_cert_get(f->s, "00:0a:1b:2c:3d", &g, err), 0);
    assert_string_equal(g.serial, "0A1B2C3D");
    assert_int_equal(g.ca_id, ca);
    assert_string_equal(g.subject, "CN=alice,O=Example");
    assert_int_equal(g.san_email.n, 2);
    assert_string_equal(g.san_email.v[0], "alice@example.com");
    assert_string_equal(g.san_email.v[1], "a@example.com");
    assert_string_equal(g.san_dns.v[0], "alice.example.com");
    assert_string_equal(g.san_uri.v[0], "urn:device:1");
    assert_string_equal(g.san_ip.v[0], "192.0.2.1");
    assert_string_equal(g.owner, "alice");
    assert_string_equal(g.device, "laptop");
    assert_string_equal(g.profile, "client");
    assert_int_equal(g.not_before, f->now - 60);
    assert_int_equal(g.not_after, f->now + DAY);
    assert_int_equal(g.status, STORE_CERT_VALID);
    assert_int_equal(g.revoked_at, 0);
    assert_null(g.revocation_reason);
    assert_string_equal(g.pem, c.pem);
    store_cert_cleanup(&g);
    assert_int_equal(store_cert_get(f->s, "a1b2c3d", &g, err), 0);
    store_cert_cleanup(&g);
    assert_int_equal(store_cert_get(f->s, "0A1B2C3E", &g, err), CG_ENOTFOUND);
    assert_int_equal(store_cert_get(f->s, "nope", &g, err), CG_EINVAL);
    cg_strlist_clear(&c.san_email);
    cg_strlist_clear(&c.san_dns);
    cg_strlist_clear(&c.san_uri);
    cg_strlist_clear(&c.san_ip);
}

/* Serials of a list, joined with ',' into buf. */
static const char *
serials(struct store_cert *cs, size_t n, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? "," : "",
                 cs[i].serial);
        store_cert_cleanup(&cs[i]);
    }
    free(cs);
    return buf;
}

static const char *
list(struct fx *f, struct store_cert_filter flt, char *buf, size_t len)
{
    struct store_cert *cs = NULL;
    size_t n = 0;
    char err[CG_ERR_LEN];
    flt.now = f->now;
    assert_int_equal(store_cert_list(f->s, &flt, &cs, &n, err), 0);
    return serials(cs, n, buf, len);
}

static void
test_cert_list_revoke(void **state)
{
    struct fx *f = *state;
    struct store_cert *cs = NULL;
    size_t n = 0;
    char err[CG_ERR_LEN], buf[256];
    int64_t ca = add_cas(f), seq = -1;
    assert_int_equal(add_cert(f, ca, "0100", "alice", f->now + DAY), 0);
    assert_int_equal(add_cert(f, ca, "FF", "bob", f->now + DAY), 0);
    assert_int_equal(add_cert(f, ca, "02", "Alice", f->now - 1), 0);
    assert_int_equal(add_cert(f, ca, "0A", NULL, f->now + DAY), 0);
    assert_string_equal(
        list(f, (struct store_cert_filter){.status = -1}, buf, sizeof(buf)),
        "0100,FF,02,0A");
    assert_string_equal(
        list(f, (struct store_cert_filter){.status = -1, .owner = "ALICE"}, buf,
             sizeof(buf)),
        "0100,02");
    assert_string_equal(
        list(f, (struct store_cert_filter){.status = -1, .expired_only = true},
             buf, sizeof(buf)),
        "02");

    assert_int_equal(store_cert_revoke(f->s, "ff", "keyCompromise", 0, err), 0);
    assert_int_equal(store_cert_revoke(f->s, "00FF", NULL, 0, err), CG_EEXIST);
    assert_string_equal(err, "certificate FF is already revoked");
    assert_int_equal(store_cert_revoke(f->s, "DEAD", NULL, 0, err),
                     CG_ENOTFOUND);
    assert_int_equal(store_cert_revoke(f->s, "zz", NULL, 0, err), CG_EINVAL);
    assert_int_equal(store_revocation_seq(f->s, &seq, err), 0);
    assert_int_equal(seq, 1);
    assert_int_equal(store_cert_revoke(f->s, "0a", "superseded", 1234, err), 0);
    assert_int_equal(store_cert_revoke(f->s, "100", NULL, 0, err), 0);
    assert_int_equal(store_revocation_seq(f->s, &seq, err), 0);
    assert_int_equal(seq, 3);

    assert_string_equal(
        list(f, (struct store_cert_filter){.status = STORE_CERT_REVOKED}, buf,
             sizeof(buf)),
        "0100,FF,0A");
    assert_string_equal(
        list(f,
             (struct store_cert_filter){.status = STORE_CERT_VALID,
                                        .unexpired_only = true},
             buf, sizeof(buf)),
        "");
    /* numeric order for CRLs; no PEM there */
    assert_int_equal(store_cert_revoked(f->s, ca, &cs, &n, err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(cs[1].serial, "FF");
    assert_string_equal(cs[1].revocation_reason, "keyCompromise");
    assert_null(cs[1].pem);
    assert_int_equal(cs[0].revoked_at, 1234);
    assert_string_equal(serials(cs, n, buf, sizeof(buf)), "0A,FF,0100");
    assert_int_equal(store_cert_revoked(f->s, ca - 1, &cs, &n, err), 0);
    assert_int_equal(n, 0);
    free(cs);
}

/* A write through one handle is seen by another at once. */
static void
test_two_handles(void **state)
{
    struct fx *f = *state;
    struct store *s2 = NULL;
    struct store_user u = {0};
    char err[CG_ERR_LEN];
    assert_int_equal(store_open(f->data, &s2, err), 0);
    add_user(f, "alice", "alice@example.com");
    assert_int_equal(store_user_get(s2, "alice", &u, err), 0);
    store_user_cleanup(&u);
    store_close(s2);
}

/* ---- passwords ------------------------------------------------------ */

static void
test_password(void **state)
{
    char h1[PASSWORD_HASH_LEN], h2[PASSWORD_HASH_LEN];
    (void)state;
    assert_int_equal(password_hash("correct horse", 13, h1), 0);
    assert_int_equal(password_hash("correct horse", 13, h2), 0);
    assert_non_null(strstr(h1, "$argon2id$"));
    assert_string_not_equal(h1, h2); /* salted */
    assert_true(password_verify(h1, "correct horse", 13));
    assert_true(password_verify(h2, "correct horse", 13));
    assert_false(password_verify(h1, "correct horse!", 14));
    assert_false(password_verify(h1, "correct hors", 12));
    assert_false(password_verify(NULL, "x", 1));
    assert_false(password_verify("", "x", 1));
    assert_false(password_verify("$argon2id$garbage", "x", 1));
    /* counted: bytes after a NUL matter */
    assert_int_equal(password_hash("a\0b", 3, h1), 0);
    assert_true(password_verify(h1, "a\0b", 3));
    assert_false(password_verify(h1, "a\0c", 3));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_open_twice),
        T(test_open_fails),
        T(test_users),
        T(test_user_updates),
        T(test_user_delete),
        T(test_ca),
        T(test_ca_add_rollback),
        T(test_crl_numbers),
        cmocka_unit_test(test_serial_normalize),
        T(test_cert_add_get),
        T(test_cert_list_revoke),
        T(test_two_handles),
        cmocka_unit_test(test_password),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
