/*
 * X509 -> struct cg_identity: the only place that reads a peer
 * certificate's names, so every protocol sees the same decoded, counted
 * values. Also drains OpenSSL's error queue into log-ready text.
 */
#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/util.h"
#include "core/xmalloc.h"
#include "tls/tls_int.h"

/* Writes from the start of buf (callers pass a fresh buffer); "" when the
 * queue is empty. Entries that do not fit are still drained. */
void
tls_drain_errors(char *buf, size_t len)
{
    size_t used = 0;
    unsigned long e;
    if (len > 0)
        buf[0] = '\0';
    while ((e = ERR_get_error_all(NULL, NULL, NULL, NULL, NULL)) != 0) {
        if (used + 1 >= len)
            continue; /* full: keep draining so the queue ends empty */
        const char *lib = ERR_lib_error_string(e);
        const char *why = ERR_reason_error_string(e);
        char libn[24], whyn[24];
        if (lib == NULL) {
            snprintf(libn, sizeof(libn), "lib(%d)", ERR_GET_LIB(e));
            lib = libn;
        }
        if (why == NULL) {
            snprintf(whyn, sizeof(whyn), "reason(%d)", ERR_GET_REASON(e));
            why = whyn;
        }
        int n = snprintf(buf + used, len - used, "%s%s:%s",
                         used > 0 ? "; " : "", lib, why);
        used = n < 0 ? len : used + (size_t)n;
        if (used >= len)
            used = len - 1; /* snprintf truncated and NUL-terminated */
    }
}

/* Fills err with what failed and OpenSSL's reasons; returns CG_ETLS. */
static int
fail_ssl(char *err, const char *what)
{
    char ssl[256];
    tls_drain_errors(ssl, sizeof(ssl));
    return cg_seterr(err, CG_ETLS, "%s failed (SSL: %s)", what, ssl);
}

/* Short name of an attribute type, else its dotted OID (in buf). */
static const char *
type_name(const ASN1_OBJECT *obj, char *buf, size_t len)
{
    int nid = OBJ_obj2nid(obj);
    const char *sn = nid != NID_undef ? OBJ_nid2sn(nid) : NULL;
    if (sn != NULL)
        return sn;
    if (OBJ_obj2txt(buf, (int)len, obj, 1) <= 0)
        snprintf(buf, len, "UNKNOWN");
    return buf;
}

/*
 * Appends every attribute of nm in encoding order. Values are converted
 * to UTF-8 whatever their string type (BMPString, UniversalString, T61);
 * a value OpenSSL cannot convert refuses the certificate. An embedded NUL
 * is kept in the counted value and flagged in *has_nul.
 */
static int
name_extract(const X509_NAME *nm, struct cg_rdn **arr, size_t *n, bool *has_nul,
             char *err)
{
    int count = X509_NAME_entry_count(nm);
    for (int i = 0; i < count; i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(nm, i);
        char oid[128];
        const char *type =
            type_name(X509_NAME_ENTRY_get_object(e), oid, sizeof(oid));
        unsigned char *utf8 = NULL;
        int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
        if (len < 0)
            return fail_ssl(err, "ASN1_STRING_to_UTF8()");
        if (strlen((const char *)utf8) != (size_t)len)
            *has_nul = true;
        ident_rdn_add(arr, n, type, (const char *)utf8, (size_t)len,
                      X509_NAME_ENTRY_set(e));
        OPENSSL_free(utf8);
    }
    return 0;
}

/* Appends an IA5String SAN value. One with an embedded NUL is flagged
 * and left out: as a C string it would read as its harmless prefix. */
static void
san_add_str(struct cg_strlist *l, const ASN1_IA5STRING *s, bool *has_nul)
{
    const char *p = (const char *)ASN1_STRING_get0_data(s);
    size_t len = (size_t)ASN1_STRING_length(s);
    if (p == NULL || len == 0) {
        cg_strlist_add(l, "");
        return;
    }
    if (memchr(p, '\0', len) != NULL) {
        *has_nul = true;
        return;
    }
    cg_strlist_addn(l, p, len);
}

/* Appends an iPAddress SAN as text; other lengths carry no address and
 * are skipped. */
static void
san_add_ip(struct cg_strlist *l, const ASN1_OCTET_STRING *s)
{
    char text[INET6_ADDRSTRLEN];
    const unsigned char *p = ASN1_STRING_get0_data(s);
    int len = ASN1_STRING_length(s);
    int af = len == 4 ? AF_INET : len == 16 ? AF_INET6 : AF_UNSPEC;
    if (af != AF_UNSPEC && inet_ntop(af, p, text, sizeof(text)) != NULL)
        cg_strlist_add(l, text);
}

/* Reads the subjectAltName email, DNS, URI and IP entries. */
static int
san_extract(X509 *x, struct cg_identity *id, char *err)
{
    int crit = 0;
    GENERAL_NAMES *gens =
        X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
    if (gens == NULL) {
        if (crit == -1)
            return 0; /* no SAN */
        /* -2: the extension appears twice; >= 0: it does not decode. */
        return fail_ssl(err, "X509_get_ext_d2i(subjectAltName)");
    }
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_EMAIL)
            san_add_str(&id->san_email, g->d.rfc822Name, &id->name_has_nul);
        else if (g->type == GEN_DNS)
            san_add_str(&id->san_dns, g->d.dNSName, &id->name_has_nul);
        else if (g->type == GEN_URI)
            san_add_str(&id->san_uri, g->d.uniformResourceIdentifier,
                        &id->name_has_nul);
        else if (g->type == GEN_IPADD)
            san_add_ip(&id->san_ip, g->d.iPAddress);
    }
    GENERAL_NAMES_free(gens);
    return 0;
}

/* Serial as uppercase hex (BN_bn2hex, as `openssl x509 -serial`). */
static int
serial_extract(X509 *x, struct cg_identity *id, char *err)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    BN_free(bn);
    if (hex == NULL)
        return fail_ssl(err, "BN_bn2hex(serial)");
    id->serial = xstrdup(hex);
    OPENSSL_free(hex);
    return 0;
}

static int
time_extract(const ASN1_TIME *t, int64_t *out, char *err)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (!ASN1_TIME_to_tm(t, &tm))
        return fail_ssl(err, "ASN1_TIME_to_tm()");
    *out = (int64_t)timegm(&tm);
    return 0;
}

/* Lowercase hex digest of the DER into out (2 * size + 1 bytes). */
static bool
digest_hex(X509 *x, const EVP_MD *md, char *out, size_t size)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (md == NULL || !X509_digest(x, md, d, &len) || len != size)
        return false;
    struct cg_buf b;
    cg_buf_init(&b);
    cg_hex(&b, d, len, 0);
    memcpy(out, cg_buf_cstr(&b), 2 * size + 1);
    cg_buf_cleanup(&b);
    return true;
}

/* DER, its one-line base64 and the PEM text. */
static int
encodings_extract(X509 *x, struct cg_identity *id, char *err)
{
    int len = i2d_X509(x, NULL);
    if (len <= 0)
        return fail_ssl(err, "i2d_X509()");
    id->der = xmalloc((size_t)len);
    unsigned char *p = id->der;
    if (i2d_X509(x, &p) != len)
        return fail_ssl(err, "i2d_X509()");
    id->der_len = (size_t)len;
    id->crt = xmalloc(4 * (((size_t)len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)id->crt, id->der, len);

    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL || !PEM_write_bio_X509(bio, x)) {
        BIO_free(bio);
        return fail_ssl(err, "PEM_write_bio_X509()");
    }
    char *pem = NULL;
    long n = BIO_get_mem_data(bio, &pem);
    id->pem = xstrndup(pem, (size_t)n);
    BIO_free(bio);
    return 0;
}

/* Serial, validity and fingerprints. MD5 may be refused (FIPS): md5
 * then stays empty and the field is absent. */
static int
facts_extract(X509 *x, struct cg_identity *id, char *err)
{
    int rc = serial_extract(x, id, err);
    if (rc == 0)
        rc = time_extract(X509_get0_notBefore(x), &id->not_before, err);
    if (rc == 0)
        rc = time_extract(X509_get0_notAfter(x), &id->not_after, err);
    if (rc != 0)
        return rc;
    if (!digest_hex(x, EVP_sha256(), id->sha256, 32))
        return fail_ssl(err, "X509_digest(sha256)");
    if (!digest_hex(x, EVP_md5(), id->md5, 16)) {
        id->md5[0] = '\0';
        ERR_clear_error();
    }
    return 0;
}

int
tls_identity_from_x509(X509 *x, struct cg_identity **out, char *err)
{
    struct cg_identity *id = ident_new();
    bool issuer_nul = false; /* the issuer is the CA's name: not flagged */
    int rc;
    *out = NULL;
    if ((rc = name_extract(X509_get_subject_name(x), &id->subject,
                           &id->n_subject, &id->name_has_nul, err)) != 0)
        goto fail;
    if ((rc = name_extract(X509_get_issuer_name(x), &id->issuer, &id->n_issuer,
                           &issuer_nul, err)) != 0)
        goto fail;
    if ((rc = san_extract(x, id, err)) != 0)
        goto fail;
    if ((rc = facts_extract(x, id, err)) != 0)
        goto fail;
    if ((rc = encodings_extract(x, id, err)) != 0)
        goto fail;
    ident_finish(id);
    *out = id;
    return 0;
fail:
    ident_free(id);
    return rc;
}
