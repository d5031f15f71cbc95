/*
 * JWT verification (see jwt.h). Each key carries its algorithm, fixed
 * when it is added: a shared secret is HS256 only, an RSA public key
 * RS256 only, a P-256 public key ES256 only. The token's "alg" merely
 * selects among them, so the classic confusion (an RS256 public key used
 * as an HS256 secret, or alg "none") cannot happen.
 */
#include "tls/jwt.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "config/json_util.h"
#include "core/err.h"
#include "core/xmalloc.h"
#include "tls/tls_int.h"

enum jwt_alg { JWT_HS256, JWT_RS256, JWT_ES256 };
static const char *const alg_names[] = {"HS256", "RS256", "ES256"};

struct jwt_key {
    enum jwt_alg alg;
    char *kid;             /* NULL: any kid */
    unsigned char *secret; /* HS256 */
    size_t secret_len;
    EVP_PKEY *pkey; /* RS256, ES256 */
};

struct tls_jwt_keys {
    struct jwt_key *v;
    size_t n;
};

struct tls_jwt_keys *
tls_jwt_keys_new(void)
{
    return xcalloc(1, sizeof(struct tls_jwt_keys));
}

void
tls_jwt_keys_free(struct tls_jwt_keys *k)
{
    if (k == NULL)
        return;
    for (size_t i = 0; i < k->n; i++) {
        free(k->v[i].kid);
        if (k->v[i].secret != NULL)
            OPENSSL_cleanse(k->v[i].secret, k->v[i].secret_len);
        free(k->v[i].secret);
        EVP_PKEY_free(k->v[i].pkey);
    }
    free(k->v);
    free(k);
}

size_t
tls_jwt_keys_count(const struct tls_jwt_keys *k)
{
    return k->n;
}

/* Appends a key; consumes pkey and secret. */
static void
keys_push(struct tls_jwt_keys *k, enum jwt_alg alg, const char *kid,
          unsigned char *secret, size_t secret_len, EVP_PKEY *pkey)
{
    k->v = xrealloc(k->v, (k->n + 1) * sizeof(*k->v));
    k->v[k->n++] = (struct jwt_key){
        .alg = alg,
        .kid = kid != NULL ? xstrdup(kid) : NULL,
        .secret = secret,
        .secret_len = secret_len,
        .pkey = pkey,
    };
}

int
tls_jwt_keys_add_secret(struct tls_jwt_keys *k, const char *kid,
                        const void *secret, size_t len, char *err)
{
    /* RFC 7518 3.2: "A key of the same size as the hash output ... or
     * larger MUST be used with this algorithm." */
    if (len < 32)
        return cg_seterr(err, CG_ECONFIG,
                         "HS256 secret has %zu bytes, needs at least 32", len);
    unsigned char *copy = xmalloc(len);
    memcpy(copy, secret, len);
    keys_push(k, JWT_HS256, kid, copy, len, NULL);
    return 0;
}

/* The JWS algorithm a public key can verify, or -1 with err filled. */
static int
pkey_alg(EVP_PKEY *pkey, char *err)
{
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        if (EVP_PKEY_get_bits(pkey) < 2048)
            return cg_seterr(err, -1, "RSA key of %d bits, needs 2048",
                             EVP_PKEY_get_bits(pkey));
        return JWT_RS256;
    }
    if (EVP_PKEY_is_a(pkey, "EC")) {
        char group[80] = "";
        if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) != 1 ||
            OBJ_txt2nid(group) != NID_X9_62_prime256v1)
            return cg_seterr(err, -1, "EC key on curve %s, ES256 needs P-256",
                             group[0] != '\0' ? group : "?");
        return JWT_ES256;
    }
    return cg_seterr(err, -1, "key type %s is not RSA or EC P-256",
                     EVP_PKEY_get0_type_name(pkey));
}

/* Reads a PUBLIC KEY, or else the key of a CERTIFICATE, from bio. */
static EVP_PKEY *
read_pubkey(BIO *bio)
{
    EVP_PKEY *pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (pkey != NULL || BIO_reset(bio) != 1)
        return pkey;
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (x == NULL)
        return NULL;
    pkey = X509_get_pubkey(x);
    X509_free(x);
    ERR_clear_error(); /* the failed PUBLIC KEY attempt */
    return pkey;
}

/* Adds the public key read from bio (consumed); what names the source. */
static int
add_bio(struct tls_jwt_keys *k, const char *kid, BIO *bio, const char *what,
        char *err)
{
    char q[256];
    EVP_PKEY *pkey = bio != NULL ? read_pubkey(bio) : NULL;
    BIO_free(bio);
    if (pkey == NULL) {
        tls_drain_errors(q, sizeof(q));
        return cg_seterr(err, CG_ECONFIG,
                         "%s: no PEM public key or certificate (%s)", what, q);
    }
    char why[CG_ERR_LEN];
    int alg = pkey_alg(pkey, why);
    if (alg < 0) {
        EVP_PKEY_free(pkey);
        return cg_seterr(err, CG_ECONFIG, "%s: %s", what, why);
    }
    keys_push(k, (enum jwt_alg)alg, kid, NULL, 0, pkey);
    return 0;
}

int
tls_jwt_keys_add_pem(struct tls_jwt_keys *k, const char *kid, const char *pem,
                     size_t len, char *err)
{
    if (len > (size_t)INT32_MAX)
        return cg_seterr(err, CG_ECONFIG, "PEM text too long");
    return add_bio(k, kid, BIO_new_mem_buf(pem, (int)len), "PEM key", err);
}

int
tls_jwt_keys_add_pem_file(struct tls_jwt_keys *k, const char *kid,
                          const char *path, char *err)
{
    return add_bio(k, kid, BIO_new_file(path, "r"), path, err);
}

/* --- base64url (RFC 4648 section 5, no padding: RFC 7515 2) ------- */

static int
b64url_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Decodes s[0..len) into an owned buffer of *out_len bytes (plus a NUL);
 * NULL when a byte is outside the alphabet, the length is impossible or
 * the unused trailing bits are not zero (one encoding per value). */
static unsigned char *
b64url_decode(const char *s, size_t len, size_t *out_len)
{
    if (len % 4 == 1)
        return NULL;
    unsigned char *out = xmalloc(len * 3 / 4 + 1);
    size_t n = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_val((unsigned char)s[i]);
        if (v < 0)
            goto fail;
        acc = (acc << 6) | (uint32_t)v;
        if (i % 4 == 3) {
            out[n++] = (unsigned char)(acc >> 16);
            out[n++] = (unsigned char)(acc >> 8);
            out[n++] = (unsigned char)acc;
            acc = 0;
        }
    }
    if (len % 4 == 2) {
        if (acc & 0x0f)
            goto fail;
        out[n++] = (unsigned char)(acc >> 4);
    } else if (len % 4 == 3) {
        if (acc & 0x03)
            goto fail;
        out[n++] = (unsigned char)(acc >> 10);
        out[n++] = (unsigned char)(acc >> 2);
    }
    out[n] = '\0';
    *out_len = n;
    return out;
fail:
    free(out);
    return NULL;
}

/* Decodes a base64url part holding a JSON object. */
static struct config_json *
decode_json(const char *s, size_t len, const char *what, char *err)
{
    size_t n;
    unsigned char *raw = b64url_decode(s, len, &n);
    if (raw == NULL) {
        cg_seterr(err, CG_EAUTH, "JWT %s is not base64url", what);
        return NULL;
    }
    char why[CG_ERR_LEN];
    struct config_json *j = config_json_parse((const char *)raw, n, why);
    free(raw);
    if (j == NULL)
        cg_seterr(err, CG_EAUTH, "JWT %s: %s", what, why);
    return j;
}

/* --- signatures ---------------------------------------------------- */

static bool
verify_hs256(const struct jwt_key *key, const unsigned char *msg,
             size_t msg_len, const unsigned char *sig, size_t sig_len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t mac_len = 0;
    if (sig_len != 32 ||
        EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key->secret,
                  key->secret_len, msg, msg_len, mac, sizeof(mac),
                  &mac_len) == NULL ||
        mac_len != 32)
        return false;
    return CRYPTO_memcmp(mac, sig, 32) == 0;
}

/* JWS ES256 signatures are r || s, 32 bytes each (RFC 7518 3.4); EVP
 * wants the DER ECDSA-Sig-Value. Returns an owned DER or NULL. */
static unsigned char *
es256_to_der(const unsigned char *sig, size_t sig_len, int *der_len)
{
    if (sig_len != 64)
        return NULL;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL);
    BIGNUM *s = BN_bin2bn(sig + 32, 32, NULL);
    unsigned char *der = NULL;
    if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return NULL;
    }
    *der_len = i2d_ECDSA_SIG(es, &der);
    ECDSA_SIG_free(es);
    return *der_len > 0 ? der : NULL;
}

static bool
verify_pkey(const struct jwt_key *key, const unsigned char *msg, size_t msg_len,
            const unsigned char *sig, size_t sig_len)
{
    unsigned char *der = NULL;
    int der_len = 0;
    if (key->alg == JWT_ES256) {
        der = es256_to_der(sig, sig_len, &der_len);
        if (der == NULL)
            return false;
        sig = der;
        sig_len = (size_t)der_len;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL &&
              EVP_DigestVerifyInit_ex(ctx, NULL, "SHA256", NULL, NULL,
                                      key->pkey, NULL) == 1 &&
              EVP_DigestVerify(ctx, sig, sig_len, msg, msg_len) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    ERR_clear_error();
    return ok;
}

/* Tries every key of alg whose kid fits; 0, or CG_EAUTH with err. */
static int
check_signature(const struct tls_jwt_keys *k, enum jwt_alg alg, const char *kid,
                const char *msg, size_t msg_len, const unsigned char *sig,
                size_t sig_len, char *err)
{
    size_t tried = 0;
    for (size_t i = 0; i < k->n; i++) {
        const struct jwt_key *key = &k->v[i];
        if (key->alg != alg ||
            (key->kid != NULL && (kid == NULL || strcmp(key->kid, kid) != 0)))
            continue;
        tried++;
        const unsigned char *m = (const unsigned char *)msg;
        if (alg == JWT_HS256 ? verify_hs256(key, m, msg_len, sig, sig_len)
                             : verify_pkey(key, m, msg_len, sig, sig_len))
            return 0;
    }
    if (tried == 0)
        return cg_seterr(err, CG_EAUTH, "no %s key%s%s configured",
                         alg_names[alg], kid != NULL ? " with kid " : "",
                         kid != NULL ? kid : "");
    return cg_seterr(err, CG_EAUTH, "JWT signature does not verify");
}

/* --- header and claims --------------------------------------------- */

/* Reads alg and kid (borrowed from h); refuses "none", unknown algs and
 * any "crit" extension (RFC 7515 4.1.11: we understand none). */
static int
check_header(const struct config_json *h, enum jwt_alg *alg, const char **kid,
             char *err)
{
    const char *s;
    size_t n;
    if (config_json_get_string(h, "alg", &s, &n) != 0)
        return cg_seterr(err, CG_EAUTH, "JWT header has no string alg");
    int a = -1;
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, alg_names[i]) == 0)
            a = i;
    }
    if (a < 0)
        return cg_seterr(err, CG_EAUTH, "JWT alg \"%.32s\" is not allowed", s);
    if (config_json_has(h, "crit"))
        return cg_seterr(err, CG_EAUTH, "JWT header has crit");
    int rc = config_json_get_string(h, "kid", kid, &n);
    if (rc == CG_EINVAL)
        return cg_seterr(err, CG_EAUTH, "JWT kid is not a string");
    if (rc != 0)
        *kid = NULL;
    *alg = (enum jwt_alg)a;
    return 0;
}

/* exp (required), nbf (optional), and claim == expect. */
static int
check_claims(const struct config_json *p, int64_t now, const char *claim,
             const char *expect, char *err)
{
    double exp, nbf;
    const char *s;
    size_t n;
    if (config_json_get_number(p, "exp", &exp) != 0)
        return cg_seterr(err, CG_EAUTH, "JWT has no numeric exp");
    if ((double)now >= exp + TLS_JWT_LEEWAY)
        return cg_seterr(err, CG_EAUTH, "JWT expired");
    int rc = config_json_get_number(p, "nbf", &nbf);
    if (rc == CG_EINVAL)
        return cg_seterr(err, CG_EAUTH, "JWT nbf is not a number");
    if (rc == 0 && (double)now + TLS_JWT_LEEWAY < nbf)
        return cg_seterr(err, CG_EAUTH, "JWT not valid yet (nbf)");
    if (config_json_get_string(p, claim, &s, &n) != 0)
        return cg_seterr(err, CG_EAUTH, "JWT has no string claim %s", claim);
    if (n != strlen(expect) || memcmp(s, expect, n) != 0)
        return cg_seterr(err, CG_EAUTH,
                         "JWT claim %s does not match the identity", claim);
    return 0;
}

/* Splits header.payload.signature: dot1 and dot2 index the dots. */
static bool
split(const char *t, size_t len, size_t *dot1, size_t *dot2)
{
    const char *a = memchr(t, '.', len);
    if (a == NULL)
        return false;
    const char *b = memchr(a + 1, '.', len - (size_t)(a + 1 - t));
    if (b == NULL || memchr(b + 1, '.', len - (size_t)(b + 1 - t)) != NULL)
        return false;
    *dot1 = (size_t)(a - t);
    *dot2 = (size_t)(b - t);
    return *dot1 > 0 && *dot2 > *dot1 + 1 && *dot2 + 1 < len;
}

int
tls_jwt_verify(const struct tls_jwt_keys *k, const char *token, size_t len,
               int64_t now, const char *claim, const char *expect, char *err)
{
    size_t d1, d2, sig_len = 0;
    enum jwt_alg alg = JWT_HS256;
    const char *kid = NULL;
    unsigned char *sig = NULL;
    struct config_json *hdr = NULL, *pay = NULL;
    int rc = CG_EAUTH;
    if (len > TLS_JWT_MAX_LEN || !split(token, len, &d1, &d2)) {
        cg_seterr(err, CG_EAUTH, "not a JWT in compact form");
        goto fail;
    }
    hdr = decode_json(token, d1, "header", err);
    if (hdr == NULL || check_header(hdr, &alg, &kid, err) != 0)
        goto fail;
    sig = b64url_decode(token + d2 + 1, len - d2 - 1, &sig_len);
    if (sig == NULL) {
        cg_seterr(err, CG_EAUTH, "JWT signature is not base64url");
        goto fail;
    }
    if (check_signature(k, alg, kid, token, d2, sig, sig_len, err) != 0)
        goto fail;
    pay = decode_json(token + d1 + 1, d2 - d1 - 1, "payload", err);
    if (pay == NULL || check_claims(pay, now, claim, expect, err) != 0)
        goto fail;
    rc = 0;
fail:
    free(sig);
    config_json_free(hdr);
    config_json_free(pay);
    return rc;
}
