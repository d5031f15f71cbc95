/*
 * PKCS#12 bundles for browsers, desktop apps and devices. Two forms:
 *   modern  AES-256-CBC with PBKDF2 (PBES2) for key and certificates,
 *           HMAC-SHA-256 MAC: current browsers, NSS, OpenSSL 3, Windows 10
 *           1709+, macOS 14+, Android 12+;
 *   legacy  PBE-SHA1-3DES for key and certificates, SHA-1 MAC, 2048
 *           iterations: what older macOS keychains, Windows 7/8 and
 *           Android before 12 import.
 */
#include <openssl/err.h>
#include <openssl/pkcs12.h>
#include <stdlib.h>

#include "ca/ca_int.h"
#include "core/xmalloc.h"

int
ca_p12_build(X509 *cert, EVP_PKEY *key, STACK_OF(X509) * chain,
             const char *name, const char *pass, bool legacy,
             unsigned char **der, size_t *len, char *err)
{
    int nid = legacy ? NID_pbe_WithSHA1And3_Key_TripleDES_CBC : NID_aes_256_cbc;
    int iter = legacy ? PKCS12_DEFAULT_ITER : CA_P12_ITER;
    int rc = 0;
    /* mac_iter -1: no MAC yet; PKCS12_create_ex would pick SHA-1 for
     * both forms, so the MAC is set explicitly below. */
    PKCS12 *p12 = PKCS12_create_ex(pass, name, key, cert, chain, nid, nid, iter,
                                   -1, 0, NULL, NULL);
    if (p12 == NULL)
        return ca_ssl_fail(err, "PKCS12_create_ex()");
    if (!PKCS12_set_mac(p12, pass, -1, NULL, 0, iter,
                        legacy ? EVP_sha1() : EVP_sha256())) {
        rc = ca_ssl_fail(err, "PKCS12_set_mac()");
        goto out;
    }
    int n = i2d_PKCS12(p12, NULL);
    if (n <= 0) {
        rc = ca_ssl_fail(err, "i2d_PKCS12()");
        goto out;
    }
    unsigned char *buf = xmalloc((size_t)n), *p = buf;
    i2d_PKCS12(p12, &p);
    *der = buf;
    *len = (size_t)n;
out:
    PKCS12_free(p12);
    return rc;
}
