/*
 * Trust sets: X509 stores built only from the CA files a config names and
 * the certgate CA of the store, plus their revocation index (revoke.c,
 * crl.c).
 */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "core/xmalloc.h"
#include "store/store.h"
#include "tls/revoke.h"
#include "tls/tls_int.h"

#define TRUST_MAX_ADVERTISED 16

/* SHA-256 fingerprints of every CA added, for the trust hash. */
struct fps {
    unsigned char *v;
    size_t n;
};

/* Process-wide ex_data slot of X509_STORE pointing to its tls_trust
 * (an OpenSSL index, like SSL_get_ex_data_X509_STORE_CTX_idx). */
static CRYPTO_ONCE trust_once = CRYPTO_ONCE_STATIC_INIT;
/* Generations of trust sets: never reused, so a verified-chain cache key
 * made under one trust set cannot match under another. */
static atomic_uint_fast64_t trust_gen;
static int trust_idx = -1;

static void
trust_idx_init(void)
{
    trust_idx = X509_STORE_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static int
trust_index(void)
{
    if (!CRYPTO_THREAD_run_once(&trust_once, trust_idx_init))
        return -1;
    return trust_idx;
}

const struct tls_trust *
tls_trust_of_store(X509_STORE *store)
{
    int idx = trust_index();
    return store != NULL && idx >= 0 ? X509_STORE_get_ex_data(store, idx)
                                     : NULL;
}

static int
cmp_fp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

/* Adds CA certificate x (borrowed) to t. */
static void
add_ca(struct tls_trust *t, X509 *x, struct fps *fp)
{
    if (!X509_STORE_add_cert(t->store, x))
        ERR_clear_error(); /* duplicate certificate: harmless */
    if (sk_X509_NAME_num(t->names) < TRUST_MAX_ADVERTISED) {
        X509_NAME *n = X509_NAME_dup(X509_get_subject_name(x));
        if (n != NULL)
            sk_X509_NAME_push(t->names, n);
    }
    X509_up_ref(x);
    sk_X509_push(t->cas, x);
    fp->v = xrealloc(fp->v, (fp->n + 1) * 32);
    unsigned int mdlen = 32;
    X509_digest(x, EVP_sha256(), fp->v + fp->n * 32, &mdlen);
    fp->n++;
    t->n_cas++;
}

/* Loads every certificate of one PEM file into t. */
static int
load_file(struct tls_trust *t, const char *file, const char *jpath,
          struct fps *fp, char *err)
{
    BIO *bio = BIO_new_file(file, "r");
    if (bio == NULL) {
        char ssl[256];
        tls_drain_errors(ssl, sizeof(ssl));
        return cg_seterr(err, CG_ECONFIG, "%s: %s: cannot read (%s)", jpath,
                         file, ssl);
    }
    int rc = 0;
    size_t count = 0;
    X509 *x;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        count++;
        add_ca(t, x, fp);
        X509_free(x);
    }
    unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
        ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
        ERR_clear_error();
    else if (e != 0) {
        char ssl[256];
        tls_drain_errors(ssl, sizeof(ssl));
        rc = cg_seterr(err, CG_ECONFIG, "%s: %s: bad certificate (%s)", jpath,
                       file, ssl);
    }
    if (rc == 0 && count == 0)
        rc = cg_seterr(err, CG_ECONFIG, "%s: %s: no certificate found", jpath,
                       file);
    BIO_free(bio);
    return rc;
}

/* The certgate CA's certificates (issuer first) from the store. */
static int
builtin_certs(struct store *s, const char *jp, STACK_OF(X509) * out,
              struct store_ca **cas, size_t *n, char *err)
{
    char serr[CG_ERR_LEN];
    int rc = store_ca_chain(s, cas, n, serr);
    if (rc == CG_ENOTFOUND)
        return rc;
    if (rc != 0)
        return cg_seterr(err, CG_ECONFIG, "%s: %s", jp, serr);
    for (size_t i = 0; i < *n; i++) {
        BIO *bio = BIO_new_mem_buf((*cas)[i].cert_pem, -1);
        X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        if (x == NULL) {
            ERR_clear_error();
            return cg_seterr(err, CG_ECONFIG,
                             "%s: CA \"%s\": bad certificate in the store", jp,
                             (*cas)[i].name);
        }
        sk_X509_push(out, x);
    }
    return 0;
}

/* Feeds the revocations the store holds for each CA of the chain. */
static int
builtin_revoked(struct store *s, const char *jp, STACK_OF(X509) * xs,
                const struct store_ca *cas, struct tls_revindex_builder *b,
                char *err)
{
    int rc = 0;
    for (int i = 0; rc == 0 && i < sk_X509_num(xs); i++) {
        struct store_cert *rv = NULL;
        size_t n = 0;
        char serr[CG_ERR_LEN];
        size_t id = tls_revindex_builder_issuer(b, sk_X509_value(xs, i));
        tls_revindex_builder_set_source(b, id, "builtin CA", TLS_REV_NEVER);
        rc = store_cert_revoked(s, cas[i].id, &rv, &n, serr);
        if (rc != 0)
            rc = cg_seterr(err, CG_ECONFIG, "%s: %s", jp, serr);
        else
            tls_revindex_builder_reserve(b, id, n);
        for (size_t j = 0; rc == 0 && j < n; j++) {
            if (tls_revindex_builder_add_hex(b, id, rv[j].serial) != 0)
                rc = cg_seterr(err, CG_ECONFIG,
                               "%s: bad serial \"%s\" in "
                               "the store",
                               jp, rv[j].serial);
        }
        for (size_t j = 0; j < n; j++)
            store_cert_cleanup(&rv[j]);
        free(rv);
    }
    return rc;
}

/* builtin_ca: the certgate CA of data_dir, and its revocations. */
static int
load_builtin(struct tls_trust *t, const struct cg_trust_cfg *tc,
             const char *data_dir, struct tls_revindex_builder *b,
             struct fps *fp, char *err)
{
    char jp[160], serr[CG_ERR_LEN];
    struct store *s = NULL;
    struct store_ca *cas = NULL;
    size_t n = 0;
    STACK_OF(X509) *xs = sk_X509_new_null();
    struct stat st;
    /* the store file says whether `ca init` ran: store_open would
     * create an empty store */
    char *db = xasprintf("%s/certgate.db", data_dir);
    snprintf(jp, sizeof(jp), "trust.%s.builtin_ca", tc->name);
    int rc = stat(db, &st) != 0 ? CG_ENOTFOUND : store_open(data_dir, &s, serr);
    if (rc == CG_ENOTFOUND)
        goto no_ca;
    if (rc != 0) {
        rc = cg_seterr(err, CG_ECONFIG, "%s: %s", jp, serr);
        goto out;
    }
    rc = builtin_certs(s, jp, xs, &cas, &n, err);
    if (rc == CG_ENOTFOUND)
        goto no_ca;
    for (int i = 0; rc == 0 && i < sk_X509_num(xs); i++)
        add_ca(t, sk_X509_value(xs, i), fp);
    if (rc == 0)
        rc = builtin_revoked(s, jp, xs, cas, b, err);
    goto out;
no_ca:
    rc = cg_seterr(err, CG_ECONFIG, "%s: no CA in %s: run certgate ca init", jp,
                   data_dir);
out:
    for (size_t i = 0; i < n; i++)
        store_ca_cleanup(&cas[i]);
    free(cas);
    sk_X509_pop_free(xs, X509_free);
    store_close(s);
    free(db);
    return rc;
}

/* CA certificates: ca_files, then the built-in CA. */
static int
load_cas(struct tls_trust *t, const struct cg_trust_cfg *tc,
         const char *data_dir, struct tls_revindex_builder *b, struct fps *fp,
         char *err)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < tc->ca_files.n; i++) {
        char jp[256];
        if (tc->name != NULL)
            snprintf(jp, sizeof(jp), "trust.%s.ca_files[%zu]", tc->name, i);
        else
            snprintf(jp, sizeof(jp), "--ca[%zu]", i);
        rc = load_file(t, tc->ca_files.v[i], jp, fp, err);
    }
    if (rc == 0 && tc->builtin_ca)
        rc = load_builtin(t, tc, data_dir, b, fp, err);
    return rc;
}

/* Builds the revocation index from what b collected. */
static void
index_finish(struct tls_trust *t, const struct cg_trust_cfg *tc,
             struct tls_revindex_builder *b, int64_t t0)
{
    t->rev = tls_revindex_build(b);
    cg_log(CG_LOG_INFO, 0,
           "trust.%s: revocation index: %zu serials of %zu issuers, %zu "
           "bytes, built in %lld ms",
           tc->name, tls_revindex_entries(t->rev), tls_revindex_issuers(t->rev),
           tls_revindex_bytes(t->rev), (long long)(cg_now_ms() - t0));
}

int
tls_trust_new(const struct cg_trust_cfg *tc, const char *data_dir,
              struct tls_trust **out, char *err)
{
    struct tls_trust *t = xcalloc(1, sizeof(*t));
    struct fps fp = {NULL, 0};
    struct tls_revindex_builder *b = NULL;
    int64_t t0 = cg_now_ms();
    int rc = 0;
    t->gen = atomic_fetch_add(&trust_gen, 1) + 1;
    t->store = X509_STORE_new();
    t->names = sk_X509_NAME_new_null();
    t->cas = sk_X509_new_null();
    if (t->store == NULL || t->names == NULL || t->cas == NULL ||
        trust_index() < 0) {
        rc = cg_seterr(err, CG_ETLS, "trust.%s: X509_STORE_new() failed",
                       tc->name ? tc->name : "");
        goto fail;
    }
    if (tc->builtin_ca || tc->crl_files.n > 0)
        b = tls_revindex_builder_new();
    rc = load_cas(t, tc, data_dir, b, &fp, err);
    if (rc == 0 && tc->crl_files.n > 0)
        rc = tls_crl_load(tc, t->cas, b, (int64_t)time(NULL), err);
    if (rc != 0)
        goto fail;
    if (b != NULL)
        index_finish(t, tc, b, t0);
    b = NULL;
    qsort(fp.v, fp.n, 32, cmp_fp);
    SHA256(fp.v, fp.n * 32, t->hash);
    free(fp.v);
    X509_STORE_set_ex_data(t->store, trust_index(), t);
    *out = t;
    return 0;
fail:
    tls_revindex_builder_free(b);
    free(fp.v);
    tls_trust_free(t);
    return rc;
}

void
tls_trust_free(struct tls_trust *t)
{
    if (t == NULL)
        return;
    if (t->store != NULL) /* a store outliving t must not point here */
        X509_STORE_set_ex_data(t->store, trust_index(), NULL);
    X509_STORE_free(t->store);
    sk_X509_NAME_pop_free(t->names, X509_NAME_free);
    sk_X509_pop_free(t->cas, X509_free);
    tls_revindex_free(t->rev);
    free(t);
}

struct tls_trusts {
    size_t n;
    char **names;
    struct tls_trust **sets;
};

int
tls_trusts_new(const struct cg_config *cfg, struct tls_trusts **out,
               struct cg_strlist *errors)
{
    struct tls_trusts *ts = xcalloc(1, sizeof(*ts));
    ts->names = xcalloc(cfg->n_trusts ? cfg->n_trusts : 1, sizeof(char *));
    ts->sets = xcalloc(cfg->n_trusts ? cfg->n_trusts : 1, sizeof(*ts->sets));
    int rc = 0;
    for (size_t i = 0; i < cfg->n_trusts; i++) {
        char err[CG_ERR_LEN];
        if (tls_trust_new(&cfg->trusts[i], cfg->data_dir, &ts->sets[ts->n],
                          err) != 0) {
            cg_strlist_add(errors, err);
            rc = CG_ECONFIG;
            continue;
        }
        ts->names[ts->n++] = xstrdup(cfg->trusts[i].name);
    }
    if (rc != 0) {
        tls_trusts_free(ts);
        return rc;
    }
    *out = ts;
    return 0;
}

void
tls_trusts_free(struct tls_trusts *ts)
{
    if (ts == NULL)
        return;
    for (size_t i = 0; i < ts->n; i++) {
        tls_trust_free(ts->sets[i]);
        free(ts->names[i]);
    }
    free(ts->names);
    free(ts->sets);
    free(ts);
}

struct tls_trust *
tls_trusts_find(const struct tls_trusts *ts, const char *name)
{
    for (size_t i = 0; ts != NULL && i < ts->n; i++) {
        if (strcmp(ts->names[i], name) == 0)
            return ts->sets[i];
    }
    return NULL;
}

/* Calls fn for each revocation source of ts with its nextUpdate
 * (stale_after less the grace of on_stale_crl). */
static void
each_source(const struct tls_trusts *ts, const struct cg_config *cfg,
            void (*fn)(void *arg, const struct cg_trust_cfg *tc,
                       const struct tls_revissuer_info *in,
                       int64_t next_update),
            void *arg)
{
    for (size_t i = 0; ts != NULL && i < ts->n; i++) {
        const struct cg_trust_cfg *tc = config_trust_find(cfg, ts->names[i]);
        const struct tls_revindex *ix = ts->sets[i]->rev;
        for (size_t j = 0;
             tc != NULL && ix != NULL && j < tls_revindex_issuers(ix); j++) {
            struct tls_revissuer_info in;
            tls_revindex_issuer_info(ix, j, &in);
            if (in.source == NULL)
                continue;
            int64_t grace = tc->stale_reject ? 0 : tc->stale_grace_ms / 1000;
            fn(arg, tc, &in,
               in.stale_after == TLS_REV_NEVER ? TLS_REV_NEVER
                                               : in.stale_after - grace);
        }
    }
}

struct warn_state {
    int64_t now;
    size_t stale;
};

/* Logs one stale CRL issuer. */
static void
warn_issuer(void *arg, const struct cg_trust_cfg *tc,
            const struct tls_revissuer_info *in, int64_t next_update)
{
    struct warn_state *ws = arg;
    if (next_update == TLS_REV_NEVER || ws->now < next_update)
        return;
    char issuer[256], nu[32], until[32];
    X509_NAME_oneline(X509_get_subject_name(in->ca), issuer, sizeof(issuer));
    cg_time_rfc3339(next_update, nu, sizeof(nu));
    cg_time_rfc3339(in->stale_after, until, sizeof(until));
    struct cg_logrec r;
    bool refusing = ws->now >= in->stale_after;
    cg_logrec_begin(&r, refusing ? CG_LOG_ERROR : CG_LOG_WARN, "stale_crl");
    cg_logrec_str(&r, "trust", tc->name);
    cg_logrec_str(&r, "issuer", issuer);
    cg_logrec_str(&r, "crl", in->source);
    cg_logrec_str(&r, "next_update", nu);
    cg_logrec_str(&r, refusing ? "refusing_since" : "grace_until", until);
    cg_logrec_str(&r, "msg",
                  refusing ? "CRL past nextUpdate: certificates of this "
                             "issuer are refused (stale_crl)"
                           : "CRL past nextUpdate: still used during "
                             "the on_stale_crl grace");
    cg_logrec_end(&r);
    ws->stale++;
}

size_t
tls_trusts_warn_stale(const struct tls_trusts *ts, const struct cg_config *cfg,
                      int64_t now)
{
    struct warn_state ws = {now, 0};
    each_source(ts, cfg, warn_issuer, &ws);
    return ws.stale;
}

struct crl_list {
    struct tls_crl_info *v;
    size_t n;
};

static void
add_info(void *arg, const struct cg_trust_cfg *tc,
         const struct tls_revissuer_info *in, int64_t next_update)
{
    struct crl_list *l = arg;
    char issuer[256];
    X509_NAME_oneline(X509_get_subject_name(in->ca), issuer, sizeof(issuer));
    l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
    bool has_next = next_update != TLS_REV_NEVER;
    l->v[l->n++] = (struct tls_crl_info){xstrdup(tc->name),
                                         xstrdup(issuer),
                                         in->serials,
                                         has_next,
                                         has_next ? next_update : 0,
                                         has_next ? in->stale_after : 0};
}

size_t
tls_trusts_crls(const struct tls_trusts *ts, const struct cg_config *cfg,
                struct tls_crl_info **out)
{
    struct crl_list l = {NULL, 0};
    each_source(ts, cfg, add_info, &l);
    *out = l.v;
    return l.n;
}

void
tls_crl_info_free(struct tls_crl_info *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].trust);
        free(v[i].issuer);
    }
    free(v);
}
