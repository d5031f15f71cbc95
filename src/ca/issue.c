/*
 * `ca issue`: one end-entity certificate from the issuing CA, for a key
 * certgate generates or for a CSR, with its files (certificate, key,
 * chain, PKCS#12) and its store row. See ca.h for the write order.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ca/ca_int.h"
#include "core/util.h"
#include "core/xmalloc.h"
#include "tls/tls_int.h"

#define SERIAL_TRIES 8

struct issue {
    const struct ca_issue_params *p;
    struct ca_issuer is;
    STACK_OF(X509) * inter;  /* chain between leaf and root, root excluded */
    char *inter_pem;         /* the same as PEM, NULL when empty */
    struct store_user user;  /* owner, when p->user */
    struct cg_strlist email; /* p->email, or the owner's email */
    const char *cn;
    EVP_PKEY *key; /* generated key, or NULL with a CSR */
    X509_REQ *req;
    EVP_PKEY *pub; /* borrowed from key or req */
    int64_t not_before, not_after;
    char *path[4]; /* cert, key, chain, p12 */
    X509 *cert;
    struct cg_identity *id;
    char p12_pass[CA_P12_PASS_LEN + 1];
};

void
ca_issue_result_cleanup(struct ca_issue_result *r)
{
    free(r->subject);
    free(r->cert_path);
    free(r->key_path);
    free(r->chain_path);
    free(r->p12_path);
    ca_secret_free(r->p12_pass);
    memset(r, 0, sizeof(*r));
}

static void
issue_cleanup(struct issue *c)
{
    ca_issuer_cleanup(&c->is);
    sk_X509_pop_free(c->inter, X509_free);
    free(c->inter_pem);
    store_user_cleanup(&c->user);
    cg_strlist_clear(&c->email);
    EVP_PKEY_free(c->key);
    X509_REQ_free(c->req);
    for (size_t i = 0; i < 4; i++)
        free(c->path[i]);
    X509_free(c->cert);
    ident_free(c->id);
    OPENSSL_cleanse(c->p12_pass, sizeof(c->p12_pass));
}

/* Checks every name given; the owner's email fills an empty email list. */
static int
issue_names(struct store *s, struct issue *c, char *err)
{
    const struct ca_issue_params *p = c->p;
    static const enum ca_name_kind kinds[] = {CA_NAME_DNS, CA_NAME_URI,
                                              CA_NAME_IP, CA_NAME_EMAIL};
    const struct cg_strlist *lists[] = {&p->dns, &p->uri, &p->ip, &p->email};
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < CG_ARRAY_LEN(lists); k++) {
        for (size_t i = 0; rc == 0 && i < lists[k]->n; i++)
            rc = ca_name_check(kinds[k], lists[k]->v[i], err);
    }
    for (size_t i = 0; rc == 0 && i < p->email.n; i++)
        cg_strlist_add(&c->email, p->email.v[i]);
    if (rc != 0 || p->user == NULL)
        return rc;
    rc = store_user_get(s, p->user, &c->user, err);
    if (rc == CG_ENOTFOUND)
        return cg_seterr(err, rc, "no user named \"%s\"", p->user);
    if (rc == 0 && c->user.status != STORE_USER_ACTIVE)
        return cg_seterr(err, CG_EINVAL, "user \"%s\" is disabled",
                         c->user.name);
    if (rc == 0 && c->email.n == 0 && c->user.email != NULL)
        cg_strlist_add(&c->email, c->user.email);
    return rc;
}

/* Validates the request as a whole, before any key or store work. */
static int
issue_check(struct store *s, struct issue *c, char *err)
{
    const struct ca_issue_params *p = c->p;
    struct stat sb;
    c->cn = p->cn;
    if (p->profile == CA_PROFILE_SERVER && p->dns.n == 0)
        return cg_seterr(err, CG_EINVAL,
                         "a server certificate needs at "
                         "least one DNS name (--dns)");
    if (c->cn == NULL && p->dns.n > 0)
        c->cn = p->dns.v[0];
    if (c->cn == NULL)
        return cg_seterr(err, CG_EINVAL,
                         "a client certificate needs a "
                         "common name (--cn)");
    if (p->csr_path != NULL && p->p12_path != NULL)
        return cg_seterr(err, CG_EINVAL,
                         "a PKCS#12 needs the private key: "
                         "--p12 cannot be used with --csr");
    if (p->days < 0 || p->days > 36500)
        return cg_seterr(err, CG_EINVAL, "bad validity of %d days", p->days);
    const char *dir = p->out_dir != NULL ? p->out_dir : ".";
    if (stat(dir, &sb) != 0)
        return cg_seterr(err, CG_EIO, "output directory %s: %s", dir,
                         strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return cg_seterr(err, CG_EIO, "output directory %s: not a directory",
                         dir);
    int rc = ca_name_check(CA_NAME_CN, c->cn, err);
    return rc != 0 ? rc : issue_names(s, c, err);
}

/* The intermediates of the issuing CA (store chain without its root). */
static int
issue_chain(struct store *s, struct issue *c, char *err)
{
    struct store_ca *chain = NULL;
    size_t n = 0;
    int rc = store_ca_chain(s, &chain, &n, err);
    struct cg_buf pem;
    cg_buf_init(&pem);
    c->inter = sk_X509_new_null();
    for (size_t i = 0; rc == 0 && i + 1 < n; i++) {
        X509 *x = ca_cert_parse(chain[i].cert_pem);
        if (x == NULL || !sk_X509_push(c->inter, x)) {
            X509_free(x);
            rc = ca_ssl_fail(err, "reading the CA chain");
        }
        cg_buf_puts(&pem, chain[i].cert_pem);
    }
    if (rc == 0 && cg_buf_pending(&pem) > 0)
        c->inter_pem = cg_buf_take(&pem);
    cg_buf_cleanup(&pem);
    for (size_t i = 0; i < n; i++)
        store_ca_cleanup(&chain[i]);
    free(chain);
    return rc;
}

/* The subject key: the CSR's (checked) or a fresh one. */
static int
issue_key(struct issue *c, char *err)
{
    if (c->p->csr_path == NULL) {
        int rc = ca_key_generate(c->p->key, &c->key, err);
        c->pub = c->key;
        return rc;
    }
    char *pem = NULL;
    size_t len = 0;
    int rc = ca_file_read(c->p->csr_path, CA_FILE_MAX, &pem, &len, err);
    if (rc == 0)
        rc = ca_csr_parse(pem, len, &c->req, err);
    if (rc == 0)
        c->pub = X509_REQ_get0_pubkey(c->req);
    free(pem);
    return rc;
}

/* Validity: backdated 5 minutes, never beyond the issuer's notAfter. */
static void
issue_validity(struct issue *c)
{
    const struct ca_issue_params *p = c->p;
    int64_t now = p->now > 0 ? p->now : (int64_t)time(NULL);
    int days =
        p->days > 0 ? p->days : (p->profile == CA_PROFILE_SERVER ? 825 : 365);
    struct tm tm;
    c->not_before = now - CA_BACKDATE;
    c->not_after = now + (int64_t)days * 86400;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(c->is.cert), &tm) == 1 &&
        (int64_t)timegm(&tm) < c->not_after)
        c->not_after = (int64_t)timegm(&tm);
}

/* Output paths: DIR/<name>.pem, .key, -chain.pem, and the PKCS#12. */
static void
issue_paths(struct issue *c)
{
    const char *dir = c->p->out_dir != NULL ? c->p->out_dir : ".";
    char base[128];
    ca_file_name(c->cn, base, sizeof(base));
    c->path[0] = xasprintf("%s/%s.pem", dir, base);
    if (c->key != NULL)
        c->path[1] = xasprintf("%s/%s.key", dir, base);
    if (c->inter_pem != NULL)
        c->path[2] = xasprintf("%s/%s-chain.pem", dir, base);
    if (c->p->p12_path != NULL)
        c->path[3] = xstrdup(c->p->p12_path);
}

/* Writes the temporary files of certificate c->cert. */
static int
issue_stage(struct issue *c, struct ca_stage *st, char *err)
{
    int rc =
        ca_stage_add(st, c->path[0], c->id->pem, strlen(c->id->pem), 0644, err);
    if (rc == 0 && c->path[1] != NULL) {
        char *pem = NULL;
        size_t len = 0;
        rc = ca_key_pem(c->key, c->p->key_pass, &pem, &len, err);
        if (rc == 0)
            rc = ca_stage_add(st, c->path[1], pem, len, 0600, err);
        ca_secret_free(pem);
    }
    if (rc == 0 && c->path[2] != NULL)
        rc = ca_stage_add(st, c->path[2], c->inter_pem, strlen(c->inter_pem),
                          0644, err);
    if (rc == 0 && c->path[3] != NULL) {
        unsigned char *der = NULL;
        size_t len = 0;
        const char *pass =
            c->p->p12_pass != NULL ? c->p->p12_pass : c->p12_pass;
        rc = ca_p12_build(c->cert, c->key, c->inter, c->cn, pass,
                          c->p->p12_legacy, &der, &len, err);
        if (rc == 0)
            rc = ca_stage_add(st, c->path[3], der, len, 0600, err);
        free(der);
    }
    return rc;
}

/* Inserts the row of c->cert (borrowing the identity's strings). */
static int
issue_record(struct store *s, struct issue *c, char *err)
{
    const struct cg_identity *id = c->id;
    struct store_cert sc;
    memset(&sc, 0, sizeof(sc));
    cg_strlcpy(sc.serial, id->serial, sizeof(sc.serial));
    sc.ca_id = c->is.rec.id;
    sc.subject = id->dn;
    sc.san_email = id->san_email;
    sc.san_dns = id->san_dns;
    sc.san_uri = id->san_uri;
    sc.san_ip = id->san_ip;
    sc.owner = c->p->user != NULL ? c->user.name : NULL;
    sc.device = (char *)c->p->device;
    sc.profile = c->p->profile == CA_PROFILE_SERVER ? "server" : "client";
    sc.not_before = id->not_before;
    sc.not_after = id->not_after;
    sc.status = STORE_CERT_VALID;
    sc.pem = id->pem;
    return store_cert_add(s, &sc, err);
}

/* Draws a serial, signs, stages and records until the serial is new. */
static int
issue_sign(struct store *s, struct issue *c, struct ca_stage *st, char *err)
{
    struct ca_leaf_spec sp = {c->p->profile,     c->cn,         &c->email,
                              &c->p->dns,        &c->p->uri,    &c->p->ip,
                              c->is.rec.crl_url, c->not_before, c->not_after};
    int rc = CG_EEXIST;
    for (int i = 0; i < SERIAL_TRIES && rc == CG_EEXIST; i++) {
        unsigned char serial[CA_SERIAL_LEN];
        ca_stage_cleanup(st);
        X509_free(c->cert);
        c->cert = NULL;
        ident_free(c->id);
        c->id = NULL;
        rc = ca_serial_draw(serial, err);
        if (rc == 0)
            rc = ca_leaf_build(&sp, c->pub, serial, c->is.cert, c->is.key,
                               &c->cert, err);
        if (rc == 0)
            rc = tls_identity_from_x509(c->cert, &c->id, err);
        if (rc == 0)
            rc = issue_stage(c, st, err);
        if (rc == 0)
            rc = issue_record(s, c, err);
    }
    return rc;
}

static void
result_fill(struct issue *c, struct ca_issue_result *r)
{
    cg_strlcpy(r->serial, c->id->serial, sizeof(r->serial));
    r->subject = xstrdup(c->id->dn);
    r->cert_path = xstrdup(c->path[0]);
    r->key_path = c->path[1] != NULL ? xstrdup(c->path[1]) : NULL;
    r->chain_path = c->path[2] != NULL ? xstrdup(c->path[2]) : NULL;
    r->p12_path = c->path[3] != NULL ? xstrdup(c->path[3]) : NULL;
    if (c->path[3] != NULL && c->p->p12_pass == NULL)
        r->p12_pass = xstrdup(c->p12_pass);
    r->not_before = c->id->not_before;
    r->not_after = c->id->not_after;
}

int
ca_issue(struct store *s, const char *data_dir, const struct ca_issue_params *p,
         struct ca_issue_result *r, char *err)
{
    struct issue c = {.p = p};
    struct ca_stage st = {0};
    int rc = issue_check(s, &c, err);
    if (rc == 0)
        rc = ca_issuer_load(s, data_dir, p->ca_pass, &c.is, err);
    if (rc == 0)
        rc = issue_chain(s, &c, err);
    if (rc == 0)
        rc = issue_key(&c, err);
    if (rc == 0 && p->p12_path != NULL && p->p12_pass == NULL)
        rc = ca_p12_password(c.p12_pass, err);
    if (rc == 0) {
        issue_validity(&c);
        issue_paths(&c);
        rc = issue_sign(s, &c, &st, err);
    }
    if (rc == 0 && ca_stage_commit(&st, true, err) != 0) {
        char why[CG_ERR_LEN];
        cg_strlcpy(why, err, sizeof(why));
        rc = cg_seterr(err, CG_EIO,
                       "certificate %s is recorded in the "
                       "store but its files are incomplete: %s (revoke it: "
                       "certgate ca revoke %s)",
                       c.id->serial, why, c.id->serial);
    }
    if (rc == 0)
        result_fill(&c, r);
    ca_stage_cleanup(&st);
    issue_cleanup(&c);
    return rc;
}
