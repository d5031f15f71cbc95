/*
 * Certificate signing requests: parsed, their self-signature verified,
 * their key checked. A request for a CA certificate is refused outright
 * (rather than silently issuing an end-entity one), so an operator never
 * believes a sub-CA was made. Every other requested extension is ignored:
 * cert.c sets the issued certificate's extensions.
 */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>

#include "ca/ca_int.h"
#include "core/util.h"
#include "tls/tls_int.h"

/* Fills err with a CSR refusal and OpenSSL's reasons; CG_EINVAL. */
static int
refuse(char *err, const char *why)
{
    char ssl[256];
    tls_drain_errors(ssl, sizeof(ssl));
    if (ssl[0] == '\0')
        return cg_seterr(err, CG_EINVAL, "CSR refused: %s", why);
    return cg_seterr(err, CG_EINVAL, "CSR refused: %s (SSL: %s)", why, ssl);
}

/* Refuses a request whose extensions are unreadable or ask for a CA. */
static int
check_ca_request(X509_REQ *req, char *err)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    int crit = -1, rc = 0;
    if (exts == NULL)
        return refuse(err, "its extension request cannot be decoded");
    BASIC_CONSTRAINTS *bc =
        X509V3_get_d2i(exts, NID_basic_constraints, &crit, NULL);
    if (bc == NULL && crit == -2)
        rc = refuse(err, "it has more than one basicConstraints");
    else if (bc == NULL && crit >= 0)
        rc = refuse(err, "its basicConstraints cannot be decoded");
    else if (bc != NULL && bc->ca)
        rc = refuse(err, "it asks for a CA certificate (basicConstraints "
                         "CA:TRUE); certgate issues only end-entity "
                         "certificates from a CSR");
    BASIC_CONSTRAINTS_free(bc);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return rc;
}

int
ca_csr_parse(const char *pem, size_t len, X509_REQ **out, char *err)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509_REQ *req =
        b != NULL ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    int rc;
    if (req == NULL)
        return refuse(err, "not a PEM certificate request");
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    if (pub == NULL) {
        rc = refuse(err, "its public key cannot be decoded");
        goto fail;
    }
    if (X509_REQ_verify(req, pub) != 1) {
        rc = refuse(err, "its signature does not verify");
        goto fail;
    }
    rc = ca_key_check(pub, err);
    if (rc != 0) {
        char why[CG_ERR_LEN];
        cg_strlcpy(why, err, sizeof(why));
        rc = refuse(err, why);
        goto fail;
    }
    rc = check_ca_request(req, err);
    if (rc != 0)
        goto fail;
    *out = req;
    return 0;
fail:
    X509_REQ_free(req);
    return rc;
}
