/*
 * Re-judging open connections after a reload or a revocation: is the
 * certificate a connection authenticated with still accepted by the
 * listener's current settings?
 */
#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <string.h>
#include <time.h>

#include "tls/tls_int.h"

/* Re-runs chain building against t's store (the client CA may have been
 * switched); NULL when it still verifies, else a reason. */
static const char *
reverify(const struct tls_conn *c, const struct tls_vhost *v)
{
    /* after the hand-over the leaf is parsed again from its DER: rare
     * (a client CA switch), and no idle connection keeps a parsed one */
    X509 *own = NULL;
    X509 *leaf = NULL;
    if (c->ident != NULL && c->ident->der != NULL) {
        const unsigned char *p = c->ident->der;
        leaf = own = d2i_X509(NULL, &p, (long)c->ident->der_len);
    }
    /* what the client sent while OpenSSL still has it, and the issuers
     * the connection was verified with (all a handed-over or resumed
     * connection keeps: a certificate the client sent that was not on
     * its verified path is not kept, parsed, for each connection; without
     * it a CA switch may close a connection its next handshake accepts) */
    STACK_OF(X509) *sent =
        c->ssl != NULL ? SSL_get_peer_cert_chain(c->ssl) : NULL;
    STACK_OF(X509) *chain = sk_X509_new_null();
    for (int i = 0; chain != NULL && i < sk_X509_num(sent); i++)
        sk_X509_push(chain, sk_X509_value(sent, i));
    for (int i = 0; chain != NULL && i < sk_X509_num(c->facts.issuers); i++)
        sk_X509_push(chain, sk_X509_value(c->facts.issuers, i));
    if (leaf == NULL) {
        sk_X509_free(chain);
        return "no_cert";
    }
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    const char *why = "invalid";
    if (ctx != NULL &&
        X509_STORE_CTX_init(ctx, v->trust->store, leaf, chain) == 1) {
        X509_STORE_CTX_set_default(ctx, "ssl_client");
        X509_VERIFY_PARAM_set_depth(X509_STORE_CTX_get0_param(ctx), v->depth);
        struct cg_verdict verdict;
        struct cg_identity *id = NULL;
        tls_verify_store_ctx(ctx, TLS_PURPOSE_CLIENT, NULL, &verdict, &id);
        ident_free(id);
        why = verdict.status == CG_VERIFY_SUCCESS ? NULL : verdict.reason;
    }
    X509_STORE_CTX_free(ctx);
    sk_X509_free(chain);
    X509_free(own);
    ERR_clear_error();
    return why;
}

bool
tls_conn_recheck(const struct tls_conn *c, const struct tls_listener *now,
                 const char **reason)
{
    *reason = NULL;
    if (c->l == NULL || !c->handshake_done)
        return true;
    const struct tls_vhost *v = &now->vh[tls_listener_vhost_find(now, c->sni)];
    if (v->mode == CG_AUTH_OFF)
        return true; /* nothing is asked of a certificate any more */
    /* Only a certificate that authenticated the connection is judged
     * again: switching client auth on must not drop open anonymous
     * connections (they keep the settings they were accepted under). */
    if (c->verdict.status != CG_VERIFY_SUCCESS)
        return true;
    const struct tls_vhost *was = &c->l->vh[c->vhost];
    if (was->trust != v->trust &&
        (was->trust == NULL ||
         memcmp(was->trust->hash, v->trust->hash, 32) != 0)) {
        *reason = reverify(c, v); /* the client CA changed */
        if (*reason != NULL)
            return false;
    }
    *reason = tls_facts_revoked(&c->facts, v->trust, (int64_t)time(NULL));
    return *reason == NULL;
}

const char *
tls_conn_listener(const struct tls_conn *c)
{
    return c->l != NULL ? c->l->name : NULL;
}
