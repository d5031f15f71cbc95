/*
 * The one verification function, shared by handshakes and
 * `certgate verify`: OpenSSL's chain building plus the checks OpenSSL 3.0
 * lets through.
 */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <time.h>

#include "core/xmalloc.h"
#include "tls/revoke.h"
#include "tls/tls_int.h"

/* Maps an X509_V_ERR_* code to certgate's stable reason code. */
static const char *
reason_for(int e)
{
    switch (e) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return "expired";
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return "not_yet_valid";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_REJECTED:
        return "untrusted";
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
        return "bad_signature";
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
        return "chain_too_long";
    case X509_V_ERR_INVALID_PURPOSE:
        return "bad_eku";
    case X509_V_ERR_CERT_REVOKED:
        return "revoked";
    case X509_V_ERR_INVALID_CA:
    case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
        return "invalid_ca";
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return "bad_host";
    case X509_V_ERR_EE_KEY_TOO_SMALL:
    case X509_V_ERR_CA_KEY_TOO_SMALL:
    case X509_V_ERR_CA_MD_TOO_WEAK:
        return "weak_key";
    default:
        return "invalid";
    }
}

/* The verification time: the one set on ctx (`verify --at`), else now. */
static int64_t
verify_time(X509_STORE_CTX *ctx)
{
    X509_VERIFY_PARAM *p = X509_STORE_CTX_get0_param(ctx);
    if (X509_VERIFY_PARAM_get_flags(p) & X509_V_FLAG_USE_CHECK_TIME)
        return (int64_t)X509_VERIFY_PARAM_get_time(p);
    return (int64_t)time(NULL);
}

const char *
tls_trust_check_revoked(const struct tls_trust *t, STACK_OF(X509) * chain,
                        X509 *leaf, int64_t now, int *depth)
{
    *depth = 0;
    if (t == NULL || t->rev == NULL)
        return NULL;
    enum tls_revstatus st = TLS_REV_GOOD;
    if (chain == NULL) {
        st = tls_revindex_check(t->rev, leaf, NULL, now);
    } else {
        for (int i = 0; st == TLS_REV_GOOD && i + 1 < sk_X509_num(chain); i++) {
            st = tls_revindex_check(t->rev, sk_X509_value(chain, i),
                                    sk_X509_value(chain, i + 1), now);
            *depth = i;
        }
    }
    return st == TLS_REV_REVOKED ? "revoked"
           : st == TLS_REV_STALE ? "stale_crl"
                                 : NULL;
}

const char *
tls_trust_check_revoked_key(const struct tls_trust *t,
                            const unsigned char *leaf_key,
                            STACK_OF(X509) * issuers, int64_t now)
{
    int n = sk_X509_num(issuers);
    if (t == NULL || t->rev == NULL || n <= 0)
        return NULL;
    enum tls_revstatus st = tls_revindex_check_key(
        t->rev, leaf_key, sk_X509_value(issuers, 0), now);
    for (int i = 0; st == TLS_REV_GOOD && i + 1 < n; i++)
        st = tls_revindex_check(t->rev, sk_X509_value(issuers, i),
                                sk_X509_value(issuers, i + 1), now);
    return st == TLS_REV_REVOKED ? "revoked"
           : st == TLS_REV_STALE ? "stale_crl"
                                 : NULL;
}

/* The revocation index on the chain OpenSSL verified (see
 * tls_trust_check_revoked); sets the ctx error for the alert. */
static const char *
revocation_checks(X509_STORE_CTX *ctx)
{
    const struct tls_trust *t =
        tls_trust_of_store(X509_STORE_CTX_get0_store(ctx));
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
    int depth;
    const char *why =
        tls_trust_check_revoked(t, chain, NULL, verify_time(ctx), &depth);
    if (why == NULL)
        return NULL;
    X509_STORE_CTX_set_error_depth(ctx, depth);
    X509_STORE_CTX_set_current_cert(ctx, sk_X509_value(chain, depth));
    X509_STORE_CTX_set_error(ctx, strcmp(why, "revoked") == 0
                                      ? X509_V_ERR_CERT_REVOKED
                                      : X509_V_ERR_CRL_HAS_EXPIRED);
    return why;
}

/* certgate's checks on a chain OpenSSL accepted; NULL or a reason. */
static const char *
leaf_checks(X509 *leaf, enum tls_purpose purpose, const struct cg_identity *id)
{
    uint32_t flags = X509_get_extension_flags(leaf);
    if ((flags & EXFLAG_BCONS) && (flags & EXFLAG_CA))
        return "leaf_is_ca";
    if (flags & EXFLAG_XKUSAGE) {
        uint32_t want =
            purpose == TLS_PURPOSE_CLIENT ? XKU_SSL_CLIENT : XKU_SSL_SERVER;
        if ((X509_get_extended_key_usage(leaf) & want) == 0)
            return "bad_eku";
    }
    if (id == NULL)
        return "bad_cert";
    return ident_check_names(id);
}

/* OpenSSL's chain building, or on a cache hit the chain it built before
 * for the same bytes and trust set, valid now (see chaincache.c). key is
 * the chain's cache key, NULL when it is not cached. */
static int
chain_verify(X509_STORE_CTX *ctx, struct tls_chaincache *cc,
             const unsigned char *key, struct cg_identity *id)
{
    if (key == NULL)
        return X509_verify_cert(ctx);
    STACK_OF(X509) *chain = tls_chaincache_get(
        cc, key, X509_STORE_CTX_get0_cert(ctx), verify_time(ctx));
    if (chain != NULL) {
        X509_STORE_CTX_set0_verified_chain(ctx, chain);
        X509_STORE_CTX_set_error(ctx, X509_V_OK);
        return 1;
    }
    int ok = X509_verify_cert(ctx);
    if (ok > 0)
        tls_chaincache_put(cc, key, X509_STORE_CTX_get0_chain(ctx), id);
    return ok;
}

int
tls_verify_store_ctx(X509_STORE_CTX *ctx, enum tls_purpose purpose,
                     struct tls_chaincache *cc, struct cg_verdict *v,
                     struct cg_identity **id)
{
    X509 *leaf = X509_STORE_CTX_get0_cert(ctx);
    char err[CG_ERR_LEN];
    unsigned char key[32];
    *id = NULL;
    if (leaf == NULL) {
        *v = (struct cg_verdict){CG_VERIFY_NONE, "no_cert"};
        return 0;
    }
    bool keyed = cc != NULL && tls_chaincache_key(cc, ctx, purpose, key);
    if (keyed)
        *id = tls_chaincache_identity(cc, key);
    if (*id == NULL && tls_identity_from_x509(leaf, id, err) != 0) {
        ERR_clear_error();
        *id = NULL;
    }
    int ok = chain_verify(ctx, cc, keyed ? key : NULL, *id);
    if (ok <= 0) {
        int e = X509_STORE_CTX_get_error(ctx);
        *v = (struct cg_verdict){CG_VERIFY_FAILED, reason_for(e)};
        ERR_clear_error();
        return 0;
    }
    const char *why = revocation_checks(ctx);
    if (why != NULL) {
        *v = (struct cg_verdict){CG_VERIFY_FAILED, why};
        return 0;
    }
    why = leaf_checks(leaf, purpose, *id);
    if (why != NULL) {
        *v = (struct cg_verdict){CG_VERIFY_FAILED, why};
        X509_STORE_CTX_set_error(ctx,
                                 strcmp(why, "bad_eku") == 0
                                     ? X509_V_ERR_INVALID_PURPOSE
                                     : X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    *v = (struct cg_verdict){CG_VERIFY_SUCCESS, NULL};
    return 1;
}

/* Reads every certificate of a PEM file; the first into *first. */
static int
read_pems(const char *file, X509 **first, STACK_OF(X509) * rest, char *err)
{
    BIO *bio = BIO_new_file(file, "r");
    if (bio == NULL) {
        ERR_clear_error();
        return cg_seterr(err, CG_EIO, "%s: cannot read", file);
    }
    X509 *x;
    size_t n = 0;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (first != NULL && *first == NULL)
            *first = x;
        else
            sk_X509_push(rest, x);
        n++;
    }
    ERR_clear_error();
    BIO_free(bio);
    if (n == 0)
        return cg_seterr(err, CG_EINVAL, "%s: no PEM certificate found", file);
    return 0;
}

int
tls_verify_files(struct tls_trust *t, const char *cert_file,
                 const char *chain_file, const struct tls_verify_params *p,
                 struct cg_verdict *v, struct cg_identity **id, char *err)
{
    X509 *leaf = NULL;
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    X509_STORE_CTX *ctx = NULL;
    int rc = read_pems(cert_file, &leaf, untrusted, err);
    if (rc == 0 && chain_file != NULL)
        rc = read_pems(chain_file, NULL, untrusted, err);
    if (rc != 0)
        goto out;
    ctx = X509_STORE_CTX_new();
    if (ctx == NULL || !X509_STORE_CTX_init(ctx, t->store, leaf, untrusted)) {
        rc = cg_seterr(err, CG_ETLS, "X509_STORE_CTX_init() failed");
        goto out;
    }
    X509_STORE_CTX_set_default(
        ctx, p->purpose == TLS_PURPOSE_CLIENT ? "ssl_client" : "ssl_server");
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_depth(param, p->depth > 0 ? p->depth : 4);
    if (p->at != 0)
        X509_VERIFY_PARAM_set_time(param, (time_t)p->at);
    if (p->host != NULL)
        X509_VERIFY_PARAM_set1_host(param, p->host, 0);
    tls_verify_store_ctx(ctx, p->purpose, NULL, v, id);
out:
    X509_STORE_CTX_free(ctx);
    X509_free(leaf);
    sk_X509_pop_free(untrusted, X509_free);
    ERR_clear_error();
    return rc;
}
