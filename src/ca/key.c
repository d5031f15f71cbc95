/*
 * Private keys: generation of the supported types, PEM PKCS#8 encoding
 * (optionally AES-256-CBC encrypted), loading, the acceptance check for
 * keys from CSRs, and random passwords.
 */
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca_int.h"
#include "core/xmalloc.h"
#include "tls/tls_int.h"

int
ca_ssl_fail(char *err, const char *what)
{
    char ssl[256];
    tls_drain_errors(ssl, sizeof(ssl));
    return cg_seterr(err, CG_ETLS, "%s failed (SSL: %s)", what, ssl);
}

int
ca_key_generate(enum ca_key_type t, EVP_PKEY **out, char *err)
{
    EVP_PKEY *k = NULL;
    switch (t) {
    case CA_KEY_EC_P256:
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        break;
    case CA_KEY_EC_P384:
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
        break;
    case CA_KEY_RSA_2048:
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        break;
    case CA_KEY_RSA_3072:
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
        break;
    case CA_KEY_RSA_4096:
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
        break;
    case CA_KEY_ED25519:
        k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        break;
    default:
        return cg_seterr(err, CG_EINVAL,
                         "unknown key type %d (use one of "
                         "%s)",
                         (int)t, ca_key_type_list());
    }
    if (k == NULL)
        return ca_ssl_fail(err, "EVP_PKEY_Q_keygen()");
    *out = k;
    return 0;
}

int
ca_key_pem(EVP_PKEY *k, const char *pass, char **pem, size_t *len, char *err)
{
    BIO *b = BIO_new(BIO_s_mem());
    int rc = 0;
    if (b == NULL)
        return ca_ssl_fail(err, "BIO_new()");
    /* kstr given: PEM never prompts. AES-256-CBC gives PBES2 with
     * PBKDF2-HMAC-SHA256 in OpenSSL 3. */
    int ok = PEM_write_bio_PKCS8PrivateKey(
        b, k, pass != NULL ? EVP_aes_256_cbc() : NULL, (const char *)pass,
        pass != NULL ? (int)strlen(pass) : 0, NULL, NULL);
    if (!ok) {
        rc = ca_ssl_fail(err, "PEM_write_bio_PKCS8PrivateKey()");
        goto fail;
    }
    char *p;
    long n = BIO_get_mem_data(b, &p);
    *pem = xmalloc((size_t)n + 1);
    memcpy(*pem, p, (size_t)n);
    (*pem)[n] = '\0';
    *len = (size_t)n;
fail:
    BIO_free(b); /* a memory BIO clears its buffer when freed */
    return rc;
}

/* Hands OpenSSL the passphrase; fails instead of prompting when none. */
static int
pass_cb(char *buf, int size, int rwflag, void *u)
{
    (void)rwflag;
    const char *pass = u;
    if (pass == NULL)
        return -1;
    size_t n = strlen(pass);
    if (n > (size_t)size)
        return -1;
    memcpy(buf, pass, n);
    return (int)n;
}

int
ca_key_load(const char *path, const char *pass, EVP_PKEY **out, char *err)
{
    char *data = NULL;
    size_t len;
    int rc = ca_file_read(path, CA_FILE_MAX, &data, &len, err);
    if (rc != 0)
        return rc;
    BIO *b = BIO_new_mem_buf(data, (int)len);
    EVP_PKEY *k = b != NULL
                      ? PEM_read_bio_PrivateKey(b, NULL, pass_cb, (void *)pass)
                      : NULL;
    if (k == NULL) {
        char ssl[256];
        tls_drain_errors(ssl, sizeof(ssl));
        rc = cg_seterr(err, CG_EAUTH,
                       "cannot load the private key %s (%s) (SSL: %s)", path,
                       pass != NULL ? "wrong passphrase?"
                                    : "encrypted? give its passphrase",
                       ssl);
    }
    BIO_free(b);
    explicit_bzero(data, len);
    free(data);
    *out = k;
    return rc;
}

int
ca_key_check(EVP_PKEY *k, char *err)
{
    char group[64] = "";
    switch (EVP_PKEY_get_base_id(k)) {
    case EVP_PKEY_RSA:
        if (EVP_PKEY_get_bits(k) >= 2048 && EVP_PKEY_get_bits(k) <= 16384)
            return 0;
        return cg_seterr(err, CG_EINVAL,
                         "RSA key of %d bits refused (at "
                         "least 2048)",
                         EVP_PKEY_get_bits(k));
    case EVP_PKEY_EC:
        EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                       sizeof(group), NULL);
        if (strcmp(group, "prime256v1") == 0 ||
            strcmp(group, "secp384r1") == 0 || strcmp(group, "secp521r1") == 0)
            return 0;
        return cg_seterr(err, CG_EINVAL,
                         "EC key on curve \"%s\" refused "
                         "(P-256, P-384 or P-521)",
                         group);
    case EVP_PKEY_ED25519:
        return 0;
    default:
        return cg_seterr(err, CG_EINVAL,
                         "key type %s refused (RSA, EC or "
                         "Ed25519)",
                         EVP_PKEY_get0_type_name(k));
    }
}

const EVP_MD *
ca_sign_md(EVP_PKEY *k)
{
    switch (EVP_PKEY_get_base_id(k)) {
    case EVP_PKEY_ED25519:
        return NULL; /* pure EdDSA: no separate digest */
    case EVP_PKEY_EC:
        if (EVP_PKEY_get_bits(k) > 384)
            return EVP_sha512();
        return EVP_PKEY_get_bits(k) > 256 ? EVP_sha384() : EVP_sha256();
    default:
        return EVP_sha256();
    }
}

int
ca_p12_password(char out[CA_P12_PASS_LEN + 1], char *err)
{
    /* No 0/O, 1/l/I, o: read aloud or typed from a screen. */
    static const char abc[] = "ABCDEFGHJKLMNPQRSTUVWXYZ"
                              "abcdefghijkmnpqrstuvwxyz"
                              "23456789";
    const size_t n = sizeof(abc) - 1, limit = 256 - 256 % n;
    size_t i = 0;
    while (i < CA_P12_PASS_LEN) {
        unsigned char r[32];
        if (RAND_bytes(r, sizeof(r)) != 1)
            return ca_ssl_fail(err, "RAND_bytes()");
        for (size_t j = 0; j < sizeof(r) && i < CA_P12_PASS_LEN; j++) {
            if (r[j] < limit) /* rejection sampling: no modulo bias */
                out[i++] = abc[r[j] % n];
        }
        OPENSSL_cleanse(r, sizeof(r));
    }
    out[i] = '\0';
    return 0;
}
