/*
 * The TCP step of a relay connection: with proxy_protocol "v2" the
 * upstream first gets a PROXY v2 header (src/tcp/proxyv2.c) carrying the
 * client's addresses, the TLS facts and the configured identity fields;
 * then bytes are spliced. See docs/tcp.md.
 */
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "relay/relay_int.h"
#include "tcp/proxyv2.h"

static struct cg_str
cstr(const char *s)
{
    return s ? (struct cg_str){s, strlen(s)} : (struct cg_str){"", 0};
}

/* PP2_TYPE_SSL of rc's client connection. */
static void
ssl_tlv(struct relay_conn *rc, struct tcp_pp2 *h, char *sig, char *key,
        size_t len)
{
    const struct cg_verdict *v = tls_conn_verdict(rc->s.tls);
    const struct cg_identity *id = tls_conn_identity(rc->s.tls);
    bool presented = tls_conn_identity_raw(rc->s.tls) != NULL;
    h->ssl.present = true;
    h->ssl.client = TCP_PP2_CLIENT_SSL;
    if (presented)
        h->ssl.client |=
            TCP_PP2_CLIENT_CERT_SESS |
            (tls_conn_resumed(rc->s.tls) ? 0 : TCP_PP2_CLIENT_CERT_CONN);
    h->ssl.verify = presented && v->status == CG_VERIFY_SUCCESS ? 0 : 1;
    h->ssl.version = cstr(tls_conn_version(rc->s.tls));
    h->ssl.cipher = cstr(tls_conn_cipher(rc->s.tls));
    h->ssl.cn = cstr(id ? id->cn : NULL);
    tls_conn_peer_algs(rc->s.tls, sig, len, key, len);
    h->ssl.sig_alg = cstr(sig);
    h->ssl.key_alg = cstr(key);
}

/* Builds the header into rc->to_up; CG_E* when it cannot be. */
static int
proxy_header(struct relay_conn *rc, char *err)
{
    const struct cg_tcp_cfg *t = &rc->site->cfg->tcp;
    const struct cg_identity *id = tls_conn_identity(rc->s.tls);
    const struct cg_verdict *v = tls_conn_verdict(rc->s.tls);
    struct tcp_pp2 h;
    struct cg_buf vals[TCP_PP2_MAX_FIELDS];
    struct sockaddr_storage local;
    socklen_t llen = sizeof(local);
    char sig[64], key[64];
    memset(&h, 0, sizeof(h));
    if (getsockname(rc->s.fd, (struct sockaddr *)&local, &llen) != 0 ||
        tcp_proxyv2_set_addrs(&h, (const struct sockaddr *)&rc->peer_addr,
                              (const struct sockaddr *)&local) != 0)
        return cg_seterr(err, CG_EINVAL, "no usable socket addresses");
    h.authority = cstr(tls_conn_sni(rc->s.tls));
    ssl_tlv(rc, &h, sig, key, sizeof(sig));
    size_t n =
        t->n_identity < TCP_PP2_MAX_FIELDS ? t->n_identity : TCP_PP2_MAX_FIELDS;
    for (size_t i = 0; i < n; i++) {
        cg_buf_init(&vals[i]);
        bool verify = t->identity[i] == CG_F_VERIFY;
        if (!verify && id == NULL)
            continue; /* no verified certificate: no identity */
        if (!ident_field_value(id, v, t->identity[i], &vals[i]))
            continue;
        struct tcp_pp2_field *f = &h.fields[h.n_fields++];
        f->name = cstr(ident_field_name(t->identity[i]));
        f->value = (struct cg_str){cg_buf_cstr(&vals[i]), vals[i].len};
    }
    int r = tcp_proxyv2_encode(&h, &rc->to_up, err);
    for (size_t i = 0; i < n; i++)
        cg_buf_cleanup(&vals[i]);
    return r;
}

void
tcp_session_start(struct relay_conn *rc)
{
    char err[CG_ERR_LEN];
    if (rc->site->cfg->tcp.proxy_protocol == CG_PROXY_V2 &&
        proxy_header(rc, err) != 0) {
        cg_log(CG_LOG_ERROR, rc->id, "PROXY v2 header: %s", err);
        relay_close(rc, "proxy_header");
        return;
    }
    relay_log_open(rc, NULL, 0, NULL, 0);
    relay_upstream_start(rc);
}
