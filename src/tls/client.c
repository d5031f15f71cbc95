/* Upstream TLS: the gateway as a client of an https upstream. */
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "tls/tls_int.h"

struct tls_client_ctx {
    SSL_CTX *ctx;
    char *server_name;
    bool verify;
};

int
tls_client_ctx_new(const struct cg_upstream_cfg *up, const char *jpath,
                   struct tls_client_ctx **out, char *err)
{
    struct tls_client_ctx *cc = xcalloc(1, sizeof(*cc));
    char q[256];
    int rc = 0;
    cc->ctx = SSL_CTX_new(TLS_client_method());
    if (cc->ctx == NULL) {
        rc = cg_seterr(err, CG_ETLS, "%s: SSL_CTX_new() failed", jpath);
        goto fail;
    }
    SSL_CTX_set_min_proto_version(cc->ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(cc->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                  SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(cc->ctx,
                        SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    cc->verify = up->verify;
    cc->server_name = xstrdup(up->server_name ? up->server_name : up->host);
    if (up->verify) {
        if (up->ca_file == NULL ||
            SSL_CTX_load_verify_locations(cc->ctx, up->ca_file, NULL) != 1) {
            tls_drain_errors(q, sizeof(q));
            rc = cg_seterr(err, CG_ECONFIG,
                           "%s.upstream_tls.ca_file: cannot load %s (%s)",
                           jpath, up->ca_file ? up->ca_file : "(none)", q);
            goto fail;
        }
        SSL_CTX_set_verify(cc->ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(cc->ctx, SSL_VERIFY_NONE, NULL);
    }
    if (up->cert != NULL &&
        (SSL_CTX_use_certificate_chain_file(cc->ctx, up->cert) != 1 ||
         SSL_CTX_use_PrivateKey_file(cc->ctx, up->key, SSL_FILETYPE_PEM) != 1 ||
         SSL_CTX_check_private_key(cc->ctx) != 1)) {
        tls_drain_errors(q, sizeof(q));
        rc = cg_seterr(err, CG_ECONFIG,
                       "%s.upstream_tls.cert: cannot load %s / %s (%s)", jpath,
                       up->cert, up->key, q);
        goto fail;
    }
    *out = cc;
    return 0;
fail:
    tls_client_ctx_free(cc);
    return rc;
}

void
tls_client_ctx_free(struct tls_client_ctx *cc)
{
    if (cc == NULL)
        return;
    SSL_CTX_free(cc->ctx);
    free(cc->server_name);
    free(cc);
}

struct tls_conn *
tls_conn_connect(struct tls_client_ctx *cc, int fd, uint64_t conn_id)
{
    SSL *ssl = SSL_new(cc->ctx);
    if (ssl == NULL)
        return NULL;
    struct tls_conn *c = xcalloc(1, sizeof(*c));
    c->magic = TLS_CONN_MAGIC;
    c->ssl = ssl;
    c->id = conn_id;
    SSL_set_app_data(ssl, c);
    SSL_set_fd(ssl, fd);
    SSL_set_connect_state(ssl);
    unsigned char ip[16];
    bool is_ip = inet_pton(AF_INET, cc->server_name, ip) == 1 ||
                 inet_pton(AF_INET6, cc->server_name, ip) == 1;
    if (!is_ip)
        SSL_set_tlsext_host_name(ssl, cc->server_name);
    if (cc->verify) {
        X509_VERIFY_PARAM *p = SSL_get0_param(ssl);
        if (is_ip)
            X509_VERIFY_PARAM_set1_ip_asc(p, cc->server_name);
        else
            X509_VERIFY_PARAM_set1_host(p, cc->server_name, 0);
    }
    return c;
}
