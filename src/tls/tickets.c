/*
 * Session tickets. Keys are derived from the process master secret, the
 * virtual host's client-auth hash and a 12-hour epoch, so a ticket made
 * under one listener or client-auth setting never decrypts under another,
 * and keys rotate by themselves (current and previous epoch accepted).
 * The ticket's appdata carries the verification verdict: a resumption is
 * only accepted when that verdict passes the current policy.
 */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>
#include <time.h>

#include "core/util.h"
#include "tls/tls_int.h"

#define TICKET_EPOCH_SECONDS (12 * 3600)

struct ticket_keys {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char mac[32];
};

static void
derive(const struct tls_listener *l, const struct tls_vhost *v, uint64_t epoch,
       struct ticket_keys *k)
{
    unsigned char in[1 + 32 + 8], out[32];
    unsigned int olen;
    memcpy(in + 1, v->auth_hash, 32);
    for (int i = 0; i < 8; i++)
        in[33 + i] = (unsigned char)(epoch >> (56 - 8 * i));
    const char labels[3] = {'n', 'a', 'm'};
    unsigned char *dst[3] = {k->name, k->aes, k->mac};
    size_t len[3] = {16, 32, 32};
    for (int i = 0; i < 3; i++) {
        in[0] = (unsigned char)labels[i];
        HMAC(EVP_sha256(), l->master, TLS_MASTER_LEN, in, sizeof(in), out,
             &olen);
        memcpy(dst[i], out, len[i]);
    }
    OPENSSL_cleanse(out, sizeof(out));
}

static int
mac_init(EVP_MAC_CTX *hctx, const unsigned char *key)
{
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_end()};
    return EVP_MAC_init(hctx, key, 32, params);
}

static int
ticket_key_cb(SSL *ssl, unsigned char *key_name, unsigned char *iv,
              EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    struct tls_conn *c = tls_conn_of(ssl);
    const struct tls_vhost *v = &c->l->vh[c->vhost];
    uint64_t epoch = (uint64_t)time(NULL) / TICKET_EPOCH_SECONDS;
    struct ticket_keys k;
    int rc = 1;
    if (enc) {
        derive(c->l, v, epoch, &k);
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1)
            return -1;
        memcpy(key_name, k.name, 16);
    } else {
        derive(c->l, v, epoch, &k);
        if (memcmp(key_name, k.name, 16) != 0) {
            derive(c->l, v, epoch - 1, &k);
            if (memcmp(key_name, k.name, 16) != 0)
                return 0; /* unknown key: full handshake */
            rc = 2;       /* valid, but issue a fresh ticket */
        }
    }
    int ok =
        EVP_CipherInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv, enc) == 1 &&
        mac_init(hctx, k.mac) == 1;
    OPENSSL_cleanse(&k, sizeof(k));
    return ok ? rc : -1;
}

/* Stores the verdict in the session so a resumption can be judged. */
static int
gen_cb(SSL *ssl, void *arg)
{
    (void)arg;
    struct tls_conn *c = tls_conn_of(ssl);
    char data[64];
    int n;
    switch (c->verdict.status) {
    case CG_VERIFY_SUCCESS:
        n = snprintf(data, sizeof(data), "v1:S");
        break;
    case CG_VERIFY_FAILED:
        n = snprintf(data, sizeof(data), "v1:F:%s", c->verdict.reason);
        break;
    default:
        n = snprintf(data, sizeof(data), "v1:N");
        break;
    }
    SSL_SESSION *s = SSL_get0_session(ssl);
    return s != NULL && SSL_SESSION_set1_ticket_appdata(s, data, (size_t)n);
}

/* Restores the verdict of a resumed session; refuses resumption when the
 * current policy would not accept it. */
static SSL_TICKET_RETURN
dec_cb(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname,
       size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
    (void)keyname;
    (void)keyname_len;
    (void)arg;
    struct tls_conn *c = tls_conn_of(ssl);
    if (status == SSL_TICKET_FATAL_ERR_MALLOC ||
        status == SSL_TICKET_FATAL_ERR_OTHER)
        return SSL_TICKET_RETURN_ABORT;
    if (status != SSL_TICKET_SUCCESS && status != SSL_TICKET_SUCCESS_RENEW)
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    void *data = NULL;
    size_t len = 0;
    if (!SSL_SESSION_get0_ticket_appdata(sess, &data, &len) || len < 4 ||
        memcmp(data, "v1:", 3) != 0)
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    const char *d = data;
    struct cg_verdict v;
    if (len == 4 && d[3] == 'S')
        v = (struct cg_verdict){CG_VERIFY_SUCCESS, NULL};
    else if (len == 4 && d[3] == 'N')
        v = (struct cg_verdict){CG_VERIFY_NONE, "no_cert"};
    else if (len > 5 && d[3] == 'F' && d[4] == ':')
        v = (struct cg_verdict){CG_VERIFY_FAILED,
                                tls_reason_intern(d + 5, len - 5)};
    else
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    const struct tls_vhost *vh = &c->l->vh[c->vhost];
    if (vh->mode == CG_AUTH_REQUIRED && v.status != CG_VERIFY_SUCCESS)
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    X509 *peer = SSL_SESSION_get0_peer(sess);
    if (v.status == CG_VERIFY_SUCCESS && peer == NULL)
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    /* A session made before a revocation never resumes after it: the
     * full handshake that follows refuses the certificate with its
     * reason. (A session keeps no chain: the leaf is checked here.) */
    int depth;
    if (v.status == CG_VERIFY_SUCCESS && vh->trust != NULL &&
        tls_trust_check_revoked(vh->trust, NULL, peer, (int64_t)time(NULL),
                                &depth) != NULL)
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    c->verdict = v;
    return status == SSL_TICKET_SUCCESS_RENEW ? SSL_TICKET_RETURN_USE_RENEW
                                              : SSL_TICKET_RETURN_USE;
}

void
tls_tickets_setup(SSL_CTX *ctx)
{
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb);
    SSL_CTX_set_session_ticket_cb(ctx, gen_cb, dec_cb, NULL);
}
