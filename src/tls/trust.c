/* Trust sets: X509 stores built only from the CA files a config names. */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "tls/tls_int.h"

#define TRUST_MAX_ADVERTISED 16

static int
cmp_fp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

/* Loads every certificate of one PEM file into t. */
static int
load_file(struct tls_trust *t, const char *file, const char *jpath,
          unsigned char **fps, size_t *nfps, char *err)
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
        if (!X509_STORE_add_cert(t->store, x)) {
            ERR_clear_error(); /* duplicate certificate: harmless */
        }
        if (sk_X509_NAME_num(t->names) < TRUST_MAX_ADVERTISED) {
            X509_NAME *n = X509_NAME_dup(X509_get_subject_name(x));
            if (n != NULL)
                sk_X509_NAME_push(t->names, n);
        }
        *fps = xrealloc(*fps, (*nfps + 1) * 32);
        unsigned int mdlen = 32;
        X509_digest(x, EVP_sha256(), *fps + *nfps * 32, &mdlen);
        (*nfps)++;
        X509_free(x);
    }
    unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
        ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
        ERR_clear_error();
    else if (e != 0) {
        char ssl[256];
        tls_drain_errors(ssl, sizeof(ssl));
        rc = cg_seterr(err, CG_ECONFIG, "%s: %s: bad certificate (%s)",
                       jpath, file, ssl);
    }
    if (rc == 0 && count == 0)
        rc = cg_seterr(err, CG_ECONFIG, "%s: %s: no certificate found",
                       jpath, file);
    BIO_free(bio);
    t->n_cas += count;
    return rc;
}

int
tls_trust_new(const struct cg_strlist *ca_files, const char *jpath,
              struct tls_trust **out, char *err)
{
    struct tls_trust *t = xcalloc(1, sizeof(*t));
    unsigned char *fps = NULL;
    size_t nfps = 0;
    int rc = 0;
    t->store = X509_STORE_new();
    t->names = sk_X509_NAME_new_null();
    if (t->store == NULL || t->names == NULL) {
        rc = cg_seterr(err, CG_ETLS, "%s: X509_STORE_new() failed", jpath);
        goto fail;
    }
    for (size_t i = 0; i < ca_files->n; i++) {
        char jp[256];
        snprintf(jp, sizeof(jp), "%s[%zu]", jpath, i);
        rc = load_file(t, ca_files->v[i], jp, &fps, &nfps, err);
        if (rc != 0)
            goto fail;
    }
    qsort(fps, nfps, 32, cmp_fp);
    SHA256(fps, nfps * 32, t->hash);
    free(fps);
    *out = t;
    return 0;
fail:
    free(fps);
    tls_trust_free(t);
    return rc;
}

void
tls_trust_free(struct tls_trust *t)
{
    if (t == NULL)
        return;
    X509_STORE_free(t->store);
    sk_X509_NAME_pop_free(t->names, X509_NAME_free);
    free(t);
}
