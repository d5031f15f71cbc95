/*
 * The CA itself: `ca init` (keys, root and optional issuing intermediate,
 * files under DATA/ca/, store records) and loading the issuing CA back
 * for signing.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ca/ca_int.h"
#include "core/xmalloc.h"

void
ca_issuer_cleanup(struct ca_issuer *is)
{
    store_ca_cleanup(&is->rec);
    X509_free(is->cert);
    EVP_PKEY_free(is->key);
    memset(is, 0, sizeof(*is));
}

int
ca_issuer_load(struct store *s, const char *data_dir, const char *pass,
               struct ca_issuer *is, char *err)
{
    int rc = store_ca_get_issuer(s, &is->rec, err);
    if (rc == CG_ENOTFOUND)
        return cg_seterr(err, rc, "no CA in %s: run certgate ca init first",
                         data_dir);
    if (rc != 0)
        return rc;
    is->cert = ca_cert_parse(is->rec.cert_pem);
    if (is->cert == NULL)
        return ca_ssl_fail(err, "reading the issuing CA certificate");
    if (is->rec.key_encrypted && pass == NULL)
        return cg_seterr(err, CG_EAUTH,
                         "the CA key %s is encrypted: give "
                         "its passphrase with --ca-passphrase-file",
                         is->rec.key_path);
    rc = ca_key_load(is->rec.key_path, is->rec.key_encrypted ? pass : NULL,
                     &is->key, err);
    if (rc == 0 && X509_check_private_key(is->cert, is->key) != 1)
        rc = cg_seterr(err, CG_EAUTH,
                       "the CA key %s does not match the "
                       "issuing CA certificate",
                       is->rec.key_path);
    return rc;
}

void
ca_init_result_cleanup(struct ca_init_result *r)
{
    free(r->root_cert);
    free(r->root_key);
    free(r->issuer_cert);
    free(r->issuer_key);
    free(r->root_subject);
    free(r->issuer_subject);
    memset(r, 0, sizeof(*r));
}

/* Keys and certificates of a new CA (index 0 root, 1 intermediate). */
struct ca_new {
    char *cn[2];
    EVP_PKEY *key[2];
    X509 *cert[2];
    char *pem[2];
    char *path[4]; /* root.pem, root.key, issuer.pem, issuer.key */
    size_t n;      /* 1 or 2 */
};

static void
new_cleanup(struct ca_new *c)
{
    for (size_t i = 0; i < 2; i++) {
        free(c->cn[i]);
        EVP_PKEY_free(c->key[i]);
        X509_free(c->cert[i]);
        free(c->pem[i]);
    }
    for (size_t i = 0; i < 4; i++)
        free(c->path[i]);
}

/* Generates the keys and certificates of p into c. */
static int
new_build(const struct ca_init_params *p, int64_t now, struct ca_new *c,
          char *err)
{
    int64_t nb = now - CA_BACKDATE;
    int64_t na = now + (int64_t)(p->days > 0 ? p->days : 3650) * 86400;
    c->n = p->intermediate ? 2 : 1;
    c->cn[0] =
        p->intermediate ? xasprintf("%s Root CA", p->name) : xstrdup(p->name);
    if (p->intermediate)
        c->cn[1] = xasprintf("%s Issuing CA", p->name);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < c->n; i++) {
        rc = ca_key_generate(p->key, &c->key[i], err);
        if (rc == 0)
            rc = ca_ca_build(c->cn[i], c->key[i], nb, na,
                             i == 0 ? NULL : c->cert[0],
                             i == 0 ? NULL : c->key[0], &c->cert[i], err);
        if (rc == 0)
            c->pem[i] = ca_cert_pem(c->cert[i]);
        if (rc == 0 && c->pem[i] == NULL)
            rc = ca_ssl_fail(err, "PEM_write_bio_X509()");
    }
    return rc;
}

/* Names the files in dir; CG_EEXIST when any is already there. */
static int
new_paths(const char *dir, struct ca_new *c, char *err)
{
    static const char *const names[] = {"root.pem", "root.key", "issuer.pem",
                                        "issuer.key"};
    for (size_t i = 0; i < 4; i++) {
        struct stat sb;
        c->path[i] = xasprintf("%s/%s", dir, names[i]);
        if (lstat(c->path[i], &sb) == 0)
            return cg_seterr(err, CG_EEXIST,
                             "%s exists: refusing to replace "
                             "a CA file",
                             c->path[i]);
    }
    return 0;
}

/* Writes the temporary files: key 0600, certificate 0644. */
static int
new_stage(const struct ca_new *c, const char *pass, struct ca_stage *st,
          char *err)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < c->n; i++) {
        char *pem = NULL;
        size_t len = 0;
        rc = ca_key_pem(c->key[i], pass, &pem, &len, err);
        if (rc == 0)
            rc = ca_stage_add(st, c->path[2 * i + 1], pem, len, 0600, err);
        ca_secret_free(pem);
        if (rc == 0)
            rc = ca_stage_add(st, c->path[2 * i], c->pem[i], strlen(c->pem[i]),
                              0644, err);
    }
    return rc;
}

/* One store transaction: the root (and the intermediate under it). */
static int
new_records(struct store *s, const struct ca_init_params *p,
            const struct ca_new *c, char *err)
{
    struct store_ca rec[2];
    memset(rec, 0, sizeof(rec));
    for (size_t i = 0; i < c->n; i++) {
        bool issuer = i + 1 == c->n;
        rec[i].name = c->cn[i];
        rec[i].cert_pem = c->pem[i];
        rec[i].key_path = c->path[2 * i + 1];
        rec[i].key_encrypted = p->passphrase != NULL;
        rec[i].is_issuer = issuer;
        rec[i].parent_id = i == 0 ? 0 : -1; /* -1: entry 0 of this call */
        rec[i].crl_url = issuer ? (char *)p->crl_url : NULL;
        rec[i].created_at = p->now > 0 ? p->now : (int64_t)time(NULL);
    }
    return store_ca_add(s, rec, c->n, err);
}

/* Absolute DATA/ca, created 0700 (*made tells whether it was). */
static int
ca_dir(const char *data_dir, char **out, bool *made, char *err)
{
    char real[PATH_MAX];
    if (realpath(data_dir, real) == NULL)
        return cg_seterr(err, CG_EIO, "%s: %s", data_dir, strerror(errno));
    *out = xasprintf("%s/ca", real);
    *made = mkdir(*out, 0700) == 0;
    if (!*made && errno != EEXIST)
        return cg_seterr(err, CG_EIO, "cannot create %s: %s", *out,
                         strerror(errno));
    return 0;
}

/* "CN=<cn>" escaped as RFC 4514 asks; owned. */
static char *
cn_dn(const char *cn)
{
    struct cg_buf b;
    cg_buf_init(&b);
    cg_buf_puts(&b, "CN=");
    ident_dn_escape(&b, cn, strlen(cn));
    return cg_buf_take(&b);
}

static void
result_fill(const struct ca_new *c, int64_t not_after, struct ca_init_result *r)
{
    r->root_cert = xstrdup(c->path[0]);
    r->root_key = xstrdup(c->path[1]);
    r->root_subject = cn_dn(c->cn[0]);
    if (c->n == 2) {
        r->issuer_cert = xstrdup(c->path[2]);
        r->issuer_key = xstrdup(c->path[3]);
        r->issuer_subject = cn_dn(c->cn[1]);
    }
    r->not_after = not_after;
}

int
ca_init(struct store *s, const char *data_dir, const struct ca_init_params *p,
        struct ca_init_result *r, char *err)
{
    struct store_ca old = {0};
    struct ca_new c = {0};
    struct ca_stage st = {0};
    char *dir = NULL;
    bool made = false;
    int64_t now = p->now > 0 ? p->now : (int64_t)time(NULL);
    int rc = store_ca_get_issuer(s, &old, err);
    if (rc == 0)
        rc = cg_seterr(err, CG_EEXIST, "a CA already exists in %s (%s)",
                       data_dir, old.name);
    else if (rc == CG_ENOTFOUND)
        rc = p->crl_url != NULL ? ca_name_check(CA_NAME_URI, p->crl_url, err)
                                : 0;
    if (rc == 0)
        rc = ca_dir(data_dir, &dir, &made, err);
    if (rc == 0)
        rc = new_paths(dir, &c, err);
    if (rc == 0)
        rc = new_build(p, now, &c, err);
    if (rc == 0)
        rc = new_stage(&c, p->passphrase, &st, err);
    if (rc == 0)
        rc = new_records(s, p, &c, err);
    if (rc == 0)
        rc = ca_stage_commit(&st, false, err);
    if (rc == 0)
        result_fill(&c, now + (int64_t)(p->days > 0 ? p->days : 3650) * 86400,
                    r);
    ca_stage_cleanup(&st);
    if (rc != 0 && made)
        rmdir(dir); /* only when empty, i.e. nothing was committed */
    free(dir);
    new_cleanup(&c);
    store_ca_cleanup(&old);
    return rc;
}
