/*
 * Listener contexts: one SSL_CTX per certificate entry (virtual host),
 * chosen from the ClientHello's SNI before anything else is decided.
 */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "core/xmalloc.h"
#include "tls/tls_int.h"

void
tls_global_init(void)
{
    OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS, NULL);
    (void)tls_libctx();
    tls_fetchmemo_discover();
}

/* True when name matches pattern (exact, or "*.rest" for one label). */
static bool
name_match(const char *pattern, const char *name)
{
    if (strcasecmp(pattern, name) == 0)
        return true;
    if (pattern[0] == '*' && pattern[1] == '.') {
        const char *dot = strchr(name, '.');
        return dot != NULL && dot != name && strcasecmp(dot, pattern + 1) == 0;
    }
    return false;
}

size_t
tls_listener_vhost_find(const struct tls_listener *l, const char *name)
{
    if (name == NULL || *name == '\0')
        return 0;
    for (size_t i = 0; i < l->n_vh; i++) {
        for (size_t j = 0; j < l->vh[i].names.n; j++) {
            if (name_match(l->vh[i].names.v[j], name))
                return i;
        }
    }
    return 0;
}

bool
tls_listener_vhost_same_auth(const struct tls_listener *l, size_t a, size_t b)
{
    return memcmp(l->vh[a].auth_hash, l->vh[b].auth_hash, 32) == 0;
}

enum cg_auth_mode
tls_listener_vhost_mode(const struct tls_listener *l, size_t vh)
{
    return l->vh[vh].mode;
}

static int
verify_flags(enum cg_auth_mode mode)
{
    switch (mode) {
    case CG_AUTH_OFF:
        return SSL_VERIFY_NONE;
    case CG_AUTH_REQUIRED:
        return SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    default:
        return SSL_VERIFY_PEER;
    }
}

/* Reads the host_name of a server_name extension; false if malformed. */
static bool
parse_sni(const unsigned char *p, size_t len, char *out, size_t outlen)
{
    if (len < 5)
        return false;
    size_t list = ((size_t)p[0] << 8) | p[1];
    if (list + 2 != len || p[2] != 0)
        return false;
    size_t n = ((size_t)p[3] << 8) | p[4];
    if (n == 0 || n + 5 > len || n >= outlen)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[5 + i];
        if (c <= 0x20 || c >= 0x7f)
            return false;
        out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    out[n] = '\0';
    if (n > 1 && out[n - 1] == '.')
        out[n - 1] = '\0';
    return true;
}

/* Picks the virtual host from SNI before the handshake decides anything
 * (session resumption, certificate request, verify settings). */
static int
client_hello_cb(SSL *ssl, int *al, void *arg)
{
    struct tls_listener *l = arg;
    struct tls_conn *c = tls_conn_of(ssl);
    const unsigned char *p;
    size_t len;
    char name[256];
    (void)al;
    size_t vh = 0;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) &&
        parse_sni(p, len, name, sizeof(name))) {
        free(c->sni);
        c->sni = xstrdup(name);
        vh = tls_listener_vhost_find(l, name);
    }
    c->vhost = vh;
    /* From here OpenSSL reads record by record, so nothing of the
     * client's is left inside it when the handshake ends (conn.c hands
     * TLS 1.3 connections over to record.c then). */
    SSL_set_read_ahead(ssl, 0);
    if (vh != 0) {
        struct tls_vhost *v = &l->vh[vh];
        if (SSL_set_SSL_CTX(ssl, v->ctx) == NULL)
            return SSL_CLIENT_HELLO_ERROR;
        SSL_set_verify(ssl, verify_flags(v->mode), NULL);
        SSL_set_verify_depth(ssl, v->depth);
        SSL_set_session_id_context(ssl, v->auth_hash, 32);
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* Runs certgate's verification inside the handshake. */
static int
cert_verify_cb(X509_STORE_CTX *ctx, void *arg)
{
    (void)arg;
    SSL *ssl =
        X509_STORE_CTX_get_ex_data(ctx, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct tls_conn *c = tls_conn_of(ssl);
    const struct tls_vhost *v = &c->l->vh[c->vhost];
    ident_free(c->ident);
    c->ident = NULL;
    int ok =
        tls_verify_store_ctx(ctx, TLS_PURPOSE_CLIENT, tls_chaincache_thread(),
                             &c->verdict, &c->ident);
    c->verify_ran = true;
    if (v->mode == CG_AUTH_REQUIRED)
        return ok;
    c->would_refuse = !ok;
    return 1;
}

static int
alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
        const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char h11[] = "\x08http/1.1";
    (void)ssl;
    (void)arg;
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, h11, sizeof(h11) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* Appends l as OpenSSL takes a suite list ("A:B:C") and its NUL (config
 * names never hold ':'). */
static void
suite_list(struct cg_buf *b, const struct cg_strlist *l)
{
    for (size_t j = 0; j < l->n; j++) {
        cg_buf_append(b, ":", j > 0);
        cg_buf_append(b, l->v[j], strlen(l->v[j]));
    }
    cg_buf_append(b, "", 1);
}

/* Hash of everything that decides who may resume a session here, and
 * with which suites (OpenSSL resumes a TLS 1.2 session whose suite the
 * client offers, whether or not the server's list still has it). */
static void
auth_hash(const struct cg_listener_cfg *lc, const struct cg_client_auth_cfg *ca,
          const struct tls_trust *t, unsigned char *out)
{
    struct cg_buf b;
    cg_buf_init(&b);
    cg_buf_append(&b, "certgate-auth-v2", 16);
    cg_buf_append(&b, lc->name, strlen(lc->name) + 1);
    suite_list(&b, &lc->tls13_suites);
    suite_list(&b, &lc->tls12_ciphers);
    unsigned char m[4] = {(unsigned char)ca->mode,
                          (unsigned char)ca->verify_depth,
                          (unsigned char)ca->advertise_ca_names, 0};
    if (!ca->enabled)
        m[0] = CG_AUTH_OFF;
    cg_buf_append(&b, m, sizeof(m));
    if (t != NULL)
        cg_buf_append(&b, t->hash, sizeof(t->hash));
    SHA256((const unsigned char *)cg_buf_head(&b), cg_buf_pending(&b), out);
    cg_buf_cleanup(&b);
}

/* Server names of a certificate: SAN DNS names, else its CN. */
static void
names_from_cert(SSL_CTX *ctx, struct cg_strlist *names)
{
    X509 *x = SSL_CTX_get0_certificate(ctx);
    if (x == NULL)
        return;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_DNS)
            continue;
        const char *s = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
        int n = ASN1_STRING_length(g->d.dNSName);
        if (n > 0 && !memchr(s, '\0', (size_t)n))
            cg_strlist_addn(names, s, (size_t)n);
    }
    GENERAL_NAMES_free(gens);
    if (names->n == 0) {
        char cn[256];
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
                                      cn, sizeof(cn)) > 0)
            cg_strlist_add(names, cn);
    }
    for (size_t i = 0; i < names->n; i++) {
        for (char *p = names->v[i]; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    }
}

static void
err_add(struct cg_strlist *errors, const char *fmt, const char *jpath,
        const char *what)
{
    char ssl[256], line[CG_ERR_LEN];
    tls_drain_errors(ssl, sizeof(ssl));
    snprintf(line, sizeof(line), fmt, jpath, what, ssl);
    cg_strlist_add(errors, line);
}

/* Server-side settings common to every virtual host. */
static SSL_CTX *
ctx_base(const struct cg_listener_cfg *lc, bool sessions)
{
    SSL_CTX *ctx = SSL_CTX_new_ex(tls_libctx(), NULL, TLS_server_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(
        ctx, lc->tls_min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    /* The listener's suite order decides, except that a client whose first
     * choice is ChaCha20-Poly1305 (one without AES instructions) gets it. */
    SSL_CTX_set_options(
        ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                 SSL_OP_PRIORITIZE_CHACHA | SSL_OP_NO_COMPRESSION |
                 SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_TICKET);
    /* No SSL_MODE_RELEASE_BUFFERS during the handshake (it would free and
     * allocate 16 KB buffers record by record); a connection that stays
     * with OpenSSL after it gets it then (conn.c). */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_NO_AUTO_CHAIN);
    /* Stateful sessions only (SSL_OP_NO_TICKET: TLS 1.3 tickets carry a
     * session id): the cache entry keeps the verdict and chain so a
     * resumption can be re-checked (see sessions.c). */
    SSL_CTX_set_num_tickets(ctx, 1);
    /* One read() per flight instead of two per record (header, body). */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_max_early_data(ctx, 0);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
    tls_sessions_setup(ctx, sessions);
    tls_conn_setup_ctx(ctx);
    return ctx;
}

/* Loads a PEM private key in OpenSSL's default library context: the
 * listener's (libctx.c) only decodes public keys. */
static bool
use_key_file(SSL_CTX *ctx, const char *file)
{
    BIO *bio = BIO_new_file(file, "r");
    EVP_PKEY *key =
        bio ? PEM_read_bio_PrivateKey_ex(bio, NULL, NULL, NULL, NULL, NULL)
            : NULL;
    bool ok = key != NULL && SSL_CTX_use_PrivateKey(ctx, key) == 1;
    EVP_PKEY_free(key);
    BIO_free(bio);
    return ok;
}

/* Sets the listener's TLS 1.3 and TLS 1.2 suite lists (config order; no
 * TLS 1.2 list with tls_min_version 1.3). */
static bool
set_suites(SSL_CTX *ctx, const struct cg_listener_cfg *lc, size_t li,
           struct cg_strlist *errors)
{
    const struct cg_strlist *l[] = {&lc->tls13_suites, &lc->tls12_ciphers};
    static const char *const keys[] = {"tls13_ciphersuites", "tls12_ciphers"};
    for (size_t i = 0; i < 2; i++) {
        if (l[i]->n == 0)
            continue;
        struct cg_buf b;
        cg_buf_init(&b);
        suite_list(&b, l[i]);
        const char *list = cg_buf_head(&b);
        int ok = i == 0 ? SSL_CTX_set_ciphersuites(ctx, list)
                        : SSL_CTX_set_cipher_list(ctx, list);
        cg_buf_cleanup(&b);
        if (ok != 1) {
            char jp[64];
            snprintf(jp, sizeof(jp), "listeners[%zu].%s", li, keys[i]);
            err_add(errors, "%s: %s (%s)", jp, "no usable cipher suite");
            return false;
        }
    }
    return true;
}

static int
vhost_build(struct tls_listener *l, const struct cg_config *cfg,
            const struct cg_listener_cfg *lc, size_t i,
            const struct tls_trusts *trusts, struct cg_strlist *errors)
{
    const struct cg_cert_cfg *cc = &lc->certs[i];
    struct tls_vhost *v = &l->vh[i];
    const struct cg_client_auth_cfg *ca =
        cc->has_client_auth ? &cc->client_auth : &lc->client_auth;
    char jp[160];
    size_t li = (size_t)(lc - cfg->listeners);
    snprintf(jp, sizeof(jp), "listeners[%zu].certificates[%zu]", li, i);
    v->ctx = ctx_base(lc, l->sessions != NULL);
    if (v->ctx == NULL) {
        err_add(errors, "%s: %s failed (%s)", jp, "SSL_CTX_new()");
        return CG_ETLS;
    }
    SSL_CTX_set_app_data(v->ctx, l);
    if (!set_suites(v->ctx, lc, li, errors))
        return CG_ECONFIG;
    if (i == 0)
        SSL_CTX_set_client_hello_cb(v->ctx, client_hello_cb, l);
    if (SSL_CTX_use_certificate_chain_file(v->ctx, cc->cert) != 1) {
        err_add(errors, "%s.cert: %s: cannot load certificate (%s)", jp,
                cc->cert);
        return CG_ECONFIG;
    }
    if (!use_key_file(v->ctx, cc->key) ||
        SSL_CTX_check_private_key(v->ctx) != 1) {
        err_add(errors, "%s.key: %s: cannot load a matching key (%s)", jp,
                cc->key);
        return CG_ECONFIG;
    }
    for (size_t j = 0; j < cc->server_names.n; j++)
        cg_strlist_add(&v->names, cc->server_names.v[j]);
    if (v->names.n == 0)
        names_from_cert(v->ctx, &v->names);
    v->mode = ca->enabled ? ca->mode : CG_AUTH_OFF;
    v->depth = ca->verify_depth > 0 ? ca->verify_depth : 4;
    if (v->mode != CG_AUTH_OFF) {
        v->trust = tls_trusts_find(trusts, ca->trust);
        if (v->trust == NULL)
            return CG_ECONFIG; /* its build error is reported already */
        SSL_CTX_set1_cert_store(v->ctx, v->trust->store);
        SSL_CTX_set_verify(v->ctx, verify_flags(v->mode), NULL);
        SSL_CTX_set_verify_depth(v->ctx, v->depth);
        SSL_CTX_set_cert_verify_callback(v->ctx, cert_verify_cb, v);
        if (ca->advertise_ca_names)
            SSL_CTX_set_client_CA_list(v->ctx,
                                       SSL_dup_CA_list(v->trust->names));
    }
    auth_hash(lc, ca, v->trust, v->auth_hash);
    SSL_CTX_set_session_id_context(v->ctx, v->auth_hash, 32);
    return 0;
}

int
tls_listener_new(const struct cg_config *cfg, size_t idx,
                 struct tls_sessions *sessions, const struct tls_trusts *trusts,
                 struct tls_listener **out, struct cg_strlist *errors)
{
    const struct cg_listener_cfg *lc = &cfg->listeners[idx];
    struct tls_listener *l = xcalloc(1, sizeof(*l));
    l->name = xstrdup(lc->name);
    l->sessions = sessions;
    l->n_vh = lc->n_certs;
    l->vh = xcalloc(l->n_vh, sizeof(*l->vh));
    int rc = 0;
    for (size_t i = 0; i < l->n_vh; i++) {
        if (vhost_build(l, cfg, lc, i, trusts, errors) != 0)
            rc = CG_ECONFIG;
    }
    if (rc != 0) {
        tls_listener_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

void
tls_listener_free(struct tls_listener *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n_vh; i++) {
        SSL_CTX_free(l->vh[i].ctx);
        cg_strlist_clear(&l->vh[i].names);
    }
    free(l->vh);
    free(l->name);
    free(l);
}
