/*
 * Certificate revocation lists of the issuing CA: v2, with cRLNumber,
 * AKI, and per entry the revocation date and reasonCode.
 */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca_int.h"
#include "core/xmalloc.h"

/* Appends one entry to crl (reasonCode omitted for "unspecified", as
 * RFC 5280 section 5.3.1 asks). */
static int
entry_add(X509_CRL *crl, const struct ca_revoked *r, char *err)
{
    int code = r->reason != NULL ? ca_reason_code(r->reason) : 0;
    BIGNUM *bn = NULL;
    if (code < 0)
        return cg_seterr(err, CG_EINVAL,
                         "serial %s: unknown revocation "
                         "reason \"%s\"",
                         r->serial, r->reason);
    if (BN_hex2bn(&bn, r->serial) != (int)strlen(r->serial) || BN_is_zero(bn) ||
        BN_is_negative(bn)) {
        BN_free(bn);
        return cg_seterr(err, CG_EINVAL, "bad serial \"%s\"", r->serial);
    }
    X509_REVOKED *rv = X509_REVOKED_new();
    ASN1_INTEGER *sn = BN_to_ASN1_INTEGER(bn, NULL);
    ASN1_TIME *at = ASN1_TIME_set(NULL, (time_t)r->at);
    ASN1_ENUMERATED *reason = ASN1_ENUMERATED_new();
    bool ok = rv != NULL && sn != NULL && at != NULL && reason != NULL &&
              X509_REVOKED_set_serialNumber(rv, sn) &&
              X509_REVOKED_set_revocationDate(rv, at) &&
              ASN1_ENUMERATED_set(reason, code) &&
              (code == 0 || X509_REVOKED_add1_ext_i2d(rv, NID_crl_reason,
                                                      reason, 0, 0) == 1) &&
              X509_CRL_add0_revoked(crl, rv);
    BN_free(bn);
    ASN1_INTEGER_free(sn);
    ASN1_TIME_free(at);
    ASN1_ENUMERATED_free(reason);
    if (!ok) {
        X509_REVOKED_free(rv);
        return ca_ssl_fail(err, "adding a CRL entry");
    }
    return 0;
}

/* Version, issuer, lastUpdate/nextUpdate, cRLNumber and AKI. */
static bool
crl_head(X509_CRL *crl, X509 *issuer, int64_t number, int64_t now, int days)
{
    ASN1_TIME *last = ASN1_TIME_set(NULL, (time_t)now);
    ASN1_TIME *next = ASN1_TIME_set(NULL, (time_t)(now + days * 86400LL));
    ASN1_INTEGER *num = ASN1_INTEGER_new();
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, NULL, NULL, crl, 0);
    X509_EXTENSION *aki = X509V3_EXT_conf_nid(
        NULL, &ctx, NID_authority_key_identifier, "keyid:always");
    bool ok = last != NULL && next != NULL && num != NULL && aki != NULL &&
              X509_CRL_set_version(crl, X509_CRL_VERSION_2) &&
              X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) &&
              X509_CRL_set1_lastUpdate(crl, last) &&
              X509_CRL_set1_nextUpdate(crl, next) &&
              ASN1_INTEGER_set_int64(num, number) &&
              X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) == 1 &&
              X509_CRL_add_ext(crl, aki, -1);
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    ASN1_INTEGER_free(num);
    X509_EXTENSION_free(aki);
    return ok;
}

int
ca_crl_build(X509 *issuer, EVP_PKEY *key, const struct ca_revoked *rv, size_t n,
             int64_t number, int64_t now, int days, X509_CRL **out, char *err)
{
    int rc = 0;
    if (days <= 0 || days > 3650 || number <= 0)
        return cg_seterr(err, CG_EINVAL, "bad CRL days %d or number %lld", days,
                         (long long)number);
    X509_CRL *crl = X509_CRL_new();
    if (crl == NULL || !crl_head(crl, issuer, number, now, days)) {
        rc = ca_ssl_fail(err, "building the CRL");
        goto fail;
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = entry_add(crl, &rv[i], err);
    if (rc != 0)
        goto fail;
    if (!X509_CRL_sort(crl) || X509_CRL_sign(crl, key, ca_sign_md(key)) <= 0) {
        rc = ca_ssl_fail(err, "signing the CRL");
        goto fail;
    }
    *out = crl;
    return 0;
fail:
    X509_CRL_free(crl);
    return rc;
}

/* PEM of crl as an owned string. */
static char *
crl_pem(X509_CRL *crl)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p, *pem = NULL;
    if (b != NULL && PEM_write_bio_X509_CRL(b, crl)) {
        long n = BIO_get_mem_data(b, &p);
        pem = xstrndup(p, (size_t)n);
    }
    BIO_free(b);
    return pem;
}

int
ca_crl_make(struct store *s, const char *data_dir, const char *ca_pass,
            int days, int64_t now, char **pem, int64_t *number, char *err)
{
    struct ca_issuer is = {0};
    struct store_cert *certs = NULL;
    struct ca_revoked *rv = NULL;
    X509_CRL *crl = NULL;
    size_t n = 0;
    int rc = ca_issuer_load(s, data_dir, ca_pass, &is, err);
    if (rc != 0)
        goto out;
    rc = store_cert_revoked(s, is.rec.id, &certs, &n, err);
    if (rc != 0)
        goto out;
    rv = xcalloc(n + 1, sizeof(*rv));
    for (size_t i = 0; i < n; i++)
        rv[i] = (struct ca_revoked){certs[i].serial, certs[i].revoked_at,
                                    certs[i].revocation_reason};
    /* Everything that can be checked is checked: reserve the number. */
    rc = store_crl_next_number(s, is.rec.id, number, err);
    if (rc != 0)
        goto out;
    rc = ca_crl_build(is.cert, is.key, rv, n, *number, now, days, &crl, err);
    if (rc != 0)
        goto out;
    *pem = crl_pem(crl);
    if (*pem == NULL)
        rc = ca_ssl_fail(err, "PEM_write_bio_X509_CRL()");
out:
    X509_CRL_free(crl);
    free(rv);
    for (size_t i = 0; i < n; i++)
        store_cert_cleanup(&certs[i]);
    free(certs);
    ca_issuer_cleanup(&is);
    return rc;
}
