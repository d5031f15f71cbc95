/*
 * Certificate building: serial numbers, the end-entity profiles (client,
 * server) and the CA certificates (root, intermediate). Every extension
 * of an issued certificate is set here from certgate's own parameters;
 * nothing is copied from a request.
 */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <string.h>

#include "ca/ca_int.h"
#include "core/xmalloc.h"

int
ca_serial_draw(unsigned char out[CA_SERIAL_LEN], char *err)
{
    do {
        if (RAND_bytes(out, CA_SERIAL_LEN) != 1)
            return ca_ssl_fail(err, "RAND_bytes()");
        out[0] &= 0x7f;    /* positive as a DER INTEGER */
    } while (out[0] == 0); /* keep 16 content bytes, never zero */
    return 0;
}

ASN1_INTEGER *
ca_serial_asn1(const unsigned char s[CA_SERIAL_LEN])
{
    BIGNUM *bn = BN_bin2bn(s, CA_SERIAL_LEN, NULL);
    ASN1_INTEGER *a = bn != NULL ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    BN_free(bn);
    return a;
}

/* A v3 certificate with serial, subject CN, validity and public key. */
static X509 *
cert_start(const char *cn, EVP_PKEY *pub, const unsigned char *serial,
           int64_t not_before, int64_t not_after)
{
    X509 *x = X509_new();
    if (x == NULL)
        return NULL;
    ASN1_INTEGER *sn = ca_serial_asn1(serial);
    X509_NAME *name = X509_get_subject_name(x);
    bool ok =
        sn != NULL && X509_set_version(x, X509_VERSION_3) &&
        X509_set_serialNumber(x, sn) &&
        X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                   (const unsigned char *)cn, -1, -1, 0) &&
        ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before) &&
        ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after) &&
        X509_set_pubkey(x, pub);
    ASN1_INTEGER_free(sn);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Adds extension nid from its OpenSSL configuration form (constant
 * strings only: user input goes through the GENERAL_NAME builders). */
static bool
ext_add(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    bool ok = e != NULL && X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok;
}

/* Appends one name to g: IA5String types, or an IP address. */
static bool
gen_push(GENERAL_NAMES *g, int type, const char *v)
{
    GENERAL_NAME *n = GENERAL_NAME_new();
    if (n == NULL)
        return false;
    if (type == GEN_IPADD) {
        ASN1_OCTET_STRING *ip = a2i_IPADDRESS(v);
        if (ip == NULL) {
            GENERAL_NAME_free(n);
            return false;
        }
        GENERAL_NAME_set0_value(n, GEN_IPADD, ip);
    } else {
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        if (s == NULL || !ASN1_STRING_set(s, v, -1)) {
            ASN1_IA5STRING_free(s);
            GENERAL_NAME_free(n);
            return false;
        }
        GENERAL_NAME_set0_value(n, type, s);
    }
    if (!sk_GENERAL_NAME_push(g, n)) {
        GENERAL_NAME_free(n);
        return false;
    }
    return true;
}

static bool
gen_push_all(GENERAL_NAMES *g, int type, const struct cg_strlist *l)
{
    for (size_t i = 0; l != NULL && i < l->n; i++) {
        if (!gen_push(g, type, l->v[i]))
            return false;
    }
    return true;
}

/* subjectAltName from the spec's lists (absent when all are empty). */
static bool
san_add(X509 *x, const struct ca_leaf_spec *sp)
{
    GENERAL_NAMES *g = GENERAL_NAMES_new();
    bool ok = g != NULL && gen_push_all(g, GEN_DNS, sp->dns) &&
              gen_push_all(g, GEN_IPADD, sp->ip) &&
              gen_push_all(g, GEN_EMAIL, sp->email) &&
              gen_push_all(g, GEN_URI, sp->uri);
    if (ok && sk_GENERAL_NAME_num(g) > 0)
        ok = X509_add1_ext_i2d(x, NID_subject_alt_name, g, 0,
                               X509V3_ADD_DEFAULT) == 1;
    GENERAL_NAMES_free(g);
    return ok;
}

/* cRLDistributionPoints with one fullName URI. */
static bool
crldp_add(X509 *x, const char *url)
{
    CRL_DIST_POINTS *dps = sk_DIST_POINT_new_null();
    DIST_POINT *dp = DIST_POINT_new();
    bool ok = false;
    if (dps == NULL || dp == NULL || !sk_DIST_POINT_push(dps, dp)) {
        DIST_POINT_free(dp);
        goto out;
    }
    dp->distpoint = DIST_POINT_NAME_new();
    if (dp->distpoint == NULL)
        goto out;
    dp->distpoint->type = 0; /* fullName */
    dp->distpoint->name.fullname = GENERAL_NAMES_new();
    ok = dp->distpoint->name.fullname != NULL &&
         gen_push(dp->distpoint->name.fullname, GEN_URI, url) &&
         X509_add1_ext_i2d(x, NID_crl_distribution_points, dps, 0,
                           X509V3_ADD_DEFAULT) == 1;
out:
    CRL_DIST_POINTS_free(dps);
    return ok;
}

/* Validates the names of a leaf spec before any OpenSSL work. */
static int
spec_check(const struct ca_leaf_spec *sp, char *err)
{
    static const enum ca_name_kind kinds[] = {CA_NAME_EMAIL, CA_NAME_DNS,
                                              CA_NAME_URI, CA_NAME_IP};
    const struct cg_strlist *lists[] = {sp->email, sp->dns, sp->uri, sp->ip};
    int rc = ca_name_check(CA_NAME_CN, sp->cn != NULL ? sp->cn : "", err);
    for (size_t k = 0; rc == 0 && k < 4; k++) {
        for (size_t i = 0; rc == 0 && lists[k] && i < lists[k]->n; i++)
            rc = ca_name_check(kinds[k], lists[k]->v[i], err);
    }
    if (rc == 0 && sp->crl_url != NULL)
        rc = ca_name_check(CA_NAME_URI, sp->crl_url, err);
    if (rc == 0 && sp->not_after <= sp->not_before)
        rc = cg_seterr(err, CG_EINVAL, "notAfter is not after notBefore");
    return rc;
}

int
ca_leaf_build(const struct ca_leaf_spec *sp, EVP_PKEY *pub,
              const unsigned char serial[CA_SERIAL_LEN], X509 *issuer,
              EVP_PKEY *issuer_key, X509 **out, char *err)
{
    int rc = spec_check(sp, err);
    if (rc != 0)
        return rc;
    X509 *x = cert_start(sp->cn, pub, serial, sp->not_before, sp->not_after);
    if (x == NULL)
        return ca_ssl_fail(err, "building the certificate");
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    bool rsa = EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA;
    bool ok = X509_set_issuer_name(x, X509_get_subject_name(issuer)) &&
              ext_add(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") &&
              ext_add(x, &ctx, NID_key_usage,
                      rsa ? "critical,digitalSignature,keyEncipherment"
                          : "critical,digitalSignature") &&
              ext_add(x, &ctx, NID_ext_key_usage,
                      sp->profile == CA_PROFILE_SERVER ? "serverAuth"
                                                       : "clientAuth") &&
              ext_add(x, &ctx, NID_subject_key_identifier, "hash") &&
              ext_add(x, &ctx, NID_authority_key_identifier, "keyid:always") &&
              san_add(x, sp) &&
              (sp->crl_url == NULL || crldp_add(x, sp->crl_url));
    if (!ok || X509_sign(x, issuer_key, ca_sign_md(issuer_key)) <= 0) {
        X509_free(x);
        return ca_ssl_fail(err, "signing the certificate");
    }
    *out = x;
    return 0;
}

int
ca_ca_build(const char *cn, EVP_PKEY *key, int64_t not_before,
            int64_t not_after, X509 *issuer, EVP_PKEY *issuer_key, X509 **out,
            char *err)
{
    unsigned char serial[CA_SERIAL_LEN];
    int rc = ca_name_check(CA_NAME_CN, cn, err);
    if (rc == 0)
        rc = ca_serial_draw(serial, err);
    if (rc != 0)
        return rc;
    X509 *x = cert_start(cn, key, serial, not_before, not_after);
    if (x == NULL)
        return ca_ssl_fail(err, "building the CA certificate");
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    bool ok = X509_set_issuer_name(
                  x, X509_get_subject_name(issuer != NULL ? issuer : x)) &&
              ext_add(x, &ctx, NID_basic_constraints,
                      issuer != NULL ? "critical,CA:TRUE,pathlen:0"
                                     : "critical,CA:TRUE") &&
              ext_add(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") &&
              ext_add(x, &ctx, NID_subject_key_identifier, "hash") &&
              (issuer == NULL ||
               ext_add(x, &ctx, NID_authority_key_identifier, "keyid:always"));
    EVP_PKEY *signer = issuer != NULL ? issuer_key : key;
    if (!ok || X509_sign(x, signer, ca_sign_md(signer)) <= 0) {
        X509_free(x);
        return ca_ssl_fail(err, "signing the CA certificate");
    }
    *out = x;
    return 0;
}

char *
ca_cert_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p, *pem = NULL;
    if (b != NULL && PEM_write_bio_X509(b, x)) {
        long n = BIO_get_mem_data(b, &p);
        pem = xstrndup(p, (size_t)n);
    }
    BIO_free(b);
    return pem;
}

X509 *
ca_cert_parse(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    return x;
}
