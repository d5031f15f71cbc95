/*
 * Heads in both directions, identity headers, refusals and the access
 * log line of the proxy.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "core/xmalloc.h"
#include "http/proxy_int.h"

/* Headers the client may never set for the upstream. */
static bool
forwarding_header(struct cg_str n)
{
    static const char *const names[] = {"x-forwarded-for", "x-forwarded-proto",
                                        "x-forwarded-host", "forwarded"};
    for (size_t i = 0; i < CG_ARRAY_LEN(names); i++) {
        if (cg_str_ieq(n.p, n.len, names[i], strlen(names[i])))
            return true;
    }
    return false;
}

/* True when a Connection header of m lists n (RFC 9110 7.6.1: such
 * headers are hop-by-hop and never forwarded). */
static bool
connection_listed(const struct http_msg *m, struct cg_str n)
{
    char name[128];
    if (n.len >= sizeof(name))
        return false;
    memcpy(name, n.p, n.len);
    name[n.len] = '\0';
    for (long i = http_msg_find(m, "connection", 0); i >= 0;
         i = http_msg_find(m, "connection", (size_t)i + 1)) {
        struct cg_str v = http_msg_value(m, (size_t)i);
        if (http_value_has_token(v.p, v.len, name))
            return true;
    }
    return false;
}

static void
put_header(struct cg_buf *b, struct cg_str n, struct cg_str v)
{
    cg_buf_append(b, n.p, n.len);
    cg_buf_append(b, ": ", 2);
    cg_buf_append(b, v.p, v.len);
    cg_buf_append(b, "\r\n", 2);
}

typedef void identity_fn(void *arg, const char *name, const char *value,
                         size_t len);

/* Calls fn with each identity header of the route, value header-safe. */
static void
identity_each(struct proxy_conn *pc, identity_fn *fn, void *arg)
{
    const struct cg_verdict *v = tls_conn_verdict(pc->s.tls);
    const struct cg_identity *id = tls_conn_identity(pc->s.tls);
    const struct cg_route_cfg *rc = pc->route->cfg;
    struct cg_buf val, safe;
    cg_buf_init(&val);
    cg_buf_init(&safe);
    for (size_t i = 0; i < rc->n_headers; i++) {
        enum cg_field f = rc->headers[i].field;
        if (f != CG_F_VERIFY && v->status != CG_VERIFY_SUCCESS)
            continue;
        cg_buf_reset(&val);
        if (!ident_field_value(id, v, f, &val))
            continue;
        cg_buf_reset(&safe);
        if (f == CG_F_PEM_URLENCODED) /* already percent-encoded */
            cg_buf_append(&safe, cg_buf_head(&val), cg_buf_pending(&val));
        else
            http_value_append_safe(&safe, cg_buf_head(&val),
                                   cg_buf_pending(&val));
        fn(arg, rc->headers[i].name, cg_buf_head(&safe), cg_buf_pending(&safe));
    }
    cg_buf_cleanup(&val);
    cg_buf_cleanup(&safe);
}

static void
identity_header(void *arg, const char *name, const char *value, size_t len)
{
    struct cg_buf *b = arg;
    cg_buf_puts(b, name);
    cg_buf_append(b, ": ", 2);
    cg_buf_append(b, value, len);
    cg_buf_append(b, "\r\n", 2);
}

static void
put_identity(struct proxy_conn *pc, struct cg_buf *b)
{
    identity_each(pc, identity_header, b);
}

static void
identity_json(void *arg, const char *name, const char *value, size_t len)
{
    struct cg_buf *b = arg;
    cg_buf_puts(b, b->data[b->len - 1] == '{' ? "\n    \"" : ",\n    \"");
    cg_json_escape(b, name, strlen(name));
    cg_buf_puts(b, "\": \"");
    cg_json_escape(b, value, len);
    cg_buf_putc(b, '"');
}

static const char *status_text(int status);

/* Appends v in decimal. */
static void
put_uint(struct cg_buf *b, size_t v)
{
    char t[24];
    size_t i = sizeof(t);
    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    cg_buf_append(b, t + i, sizeof(t) - i);
}

/* Writes certgate's own whole answer and ends the exchange; no_store
 * adds Cache-Control: no-store (generated pages). */
static void
local_answer(struct proxy_conn *pc, int status, const char *ctype,
             bool no_store, const struct cg_respond_cfg *extra,
             const char *body, size_t len)
{
    bool close = pc->close_after || pc->env->draining || !pc->client_keepalive;
    bool bodiless = status == 204 || status == 304;
    pc->close_after = close;
    struct cg_buf *o = &pc->out; /* no printf: this is the per-request path */
    cg_buf_puts(o, "HTTP/1.1 ");
    if (status >= 0)
        put_uint(o, (size_t)status);
    else
        cg_buf_printf(o, "%d", status);
    cg_buf_putc(o, ' ');
    cg_buf_puts(o, status_text(status));
    if (!bodiless) {
        cg_buf_puts(o, "\r\nContent-Type: ");
        cg_buf_puts(o, ctype);
        cg_buf_puts(o, "\r\nContent-Length: ");
        put_uint(o, len);
    }
    cg_buf_puts(o, "\r\n");
    if (no_store)
        cg_buf_puts(o, "Cache-Control: no-store\r\n");
    for (size_t i = 0; extra != NULL && i < extra->n_headers; i++) {
        cg_buf_puts(o, extra->headers[i].name);
        cg_buf_puts(o, ": ");
        cg_buf_puts(o, extra->headers[i].value);
        cg_buf_puts(o, "\r\n");
    }
    cg_buf_puts(o, close ? "Connection: close\r\n\r\n"
                         : "Connection: keep-alive\r\n\r\n");
    if (!pc->is_head && !bodiless) {
        cg_buf_append(&pc->out, body, len);
        pc->bytes_out = len;
    }
    pc->status = status;
    pc->resp_started = pc->resp_done = true;
    finish_exchange(pc, false);
}

/* builtin:echo: the identity headers the route would send, as JSON. */
static void
answer_echo(struct proxy_conn *pc)
{
    struct cg_buf body;
    cg_buf_init(&body);
    cg_buf_printf(&body, "{\n  \"method\": \"%s\",\n  \"path\": \"",
                  pc->method);
    cg_json_escape(&body, pc->path, strlen(pc->path));
    cg_buf_puts(&body, "\",\n  \"identity\": {");
    identity_each(pc, identity_json, &body);
    cg_buf_puts(&body, "\n  }\n}\n");
    local_answer(pc, 200, "application/json", true, NULL, cg_buf_head(&body),
                 cg_buf_pending(&body));
    cg_buf_cleanup(&body);
}

/* builtin:metrics: the Prometheus exposition. */
static void
answer_metrics(struct proxy_conn *pc)
{
    struct cg_buf body;
    cg_buf_init(&body);
    metrics_render(metrics_of(pc->env->mw), (int64_t)time(NULL), &body);
    local_answer(pc, 200, METRICS_CONTENT_TYPE, true, NULL, cg_buf_head(&body),
                 cg_buf_pending(&body));
    cg_buf_cleanup(&body);
}

void
resp_local(struct proxy_conn *pc)
{
    const struct cg_route_cfg *rc = pc->route->cfg;
    switch (rc->upstream.scheme) {
    case CG_UP_METRICS:
        answer_metrics(pc);
        break;
    case CG_UP_RESPOND:
        local_answer(pc, rc->respond.status, rc->respond.content_type, false,
                     &rc->respond, rc->respond.body, rc->respond.body_len);
        break;
    default:
        answer_echo(pc);
        break;
    }
}

void
resp_forward_head(struct proxy_conn *pc)
{
    const struct http_msg *m = http_parser_msg(pc->req);
    struct cg_buf *b = &pc->up->out;
    cg_buf_printf(b, "%s %s", m->method, pc->path);
    cg_buf_printf(b, " HTTP/1.1\r\nHost: %s\r\n",
                  pc->host_hdr ? pc->host_hdr : pc->route->host_header);
    for (size_t i = 0; i < m->n_hdrs; i++) {
        struct cg_str n = http_msg_name(m, i);
        if (http_is_hop_by_hop(n.p, n.len) ||
            cg_str_ieq(n.p, n.len, "host", 4) ||
            cg_str_ieq(n.p, n.len, "content-length", 14) ||
            forwarding_header(n) || connection_listed(m, n) ||
            http_strip_set_has(pc->site->strip, n.p, n.len))
            continue;
        put_header(b, n, http_msg_value(m, i));
    }
    cg_buf_printf(b, "X-Forwarded-For: %s\r\nX-Forwarded-Proto: https\r\n",
                  pc->peer);
    if (pc->host_hdr != NULL) {
        cg_buf_puts(b, "X-Forwarded-Host: ");
        http_value_append_safe(b, pc->host_hdr, strlen(pc->host_hdr));
        cg_buf_puts(b, "\r\n");
    }
    if (m->framing == HTTP_BODY_LENGTH)
        cg_buf_printf(b, "Content-Length: %llu\r\n",
                      (unsigned long long)m->content_length);
    else if (m->framing == HTTP_BODY_CHUNKED)
        cg_buf_puts(b, "Transfer-Encoding: chunked\r\n");
    long ui = pc->upgrade_req ? http_msg_find(m, "upgrade", 0) : -1;
    if (ui >= 0) {
        cg_buf_puts(b, "Connection: upgrade\r\n");
        put_header(b, CG_STR("Upgrade"), http_msg_value(m, (size_t)ui));
    } else {
        cg_buf_puts(b, "Connection: keep-alive\r\n");
    }
    put_identity(pc, b);
    cg_buf_puts(b, "\r\n");
}

/* Copies the end-to-end headers of an upstream response. */
static void
copy_resp_headers(struct cg_buf *b, const struct http_msg *m, bool keep_cl)
{
    for (size_t i = 0; i < m->n_hdrs; i++) {
        struct cg_str n = http_msg_name(m, i);
        if (http_is_hop_by_hop(n.p, n.len) || connection_listed(m, n))
            continue;
        if (!keep_cl && cg_str_ieq(n.p, n.len, "content-length", 14))
            continue;
        put_header(b, n, http_msg_value(m, i));
    }
}

void
resp_write_head(struct proxy_conn *pc, const struct http_msg *m)
{
    struct cg_buf *b = &pc->out;
    struct cg_str reason = http_msg_reason(m);
    if (m->status < 200 && m->status != 101) {
        pc->interim = true;
        if (m->status == 100 || m->status == 103) {
            cg_buf_printf(b, "HTTP/1.1 %d %.*s\r\n", m->status, (int)reason.len,
                          reason.p);
            copy_resp_headers(b, m, false);
            cg_buf_puts(b, "\r\n");
        }
        return;
    }
    pc->status = m->status;
    pc->resp_started = true;
    cg_buf_printf(b, "HTTP/1.1 %d %.*s\r\n", m->status, (int)reason.len,
                  reason.p);
    if (m->status == 101) {
        if (!pc->upgrade_req) {
            pc->resp_started = false;
            resp_refuse(pc, 502, "unexpected_101");
            return;
        }
        copy_resp_headers(b, m, false);
        long ui = http_msg_find(m, "upgrade", 0);
        cg_buf_puts(b, "Connection: upgrade\r\n");
        if (ui >= 0)
            put_header(b, CG_STR("Upgrade"), http_msg_value(m, (size_t)ui));
        cg_buf_puts(b, "\r\n");
        pc->want_tunnel = true;
        return;
    }
    bool keep_cl = m->framing == HTTP_BODY_NONE;
    copy_resp_headers(b, m, keep_cl);
    switch (m->framing) {
    case HTTP_BODY_LENGTH:
        cg_buf_printf(b, "Content-Length: %llu\r\n",
                      (unsigned long long)m->content_length);
        break;
    case HTTP_BODY_CHUNKED:
    case HTTP_BODY_EOF:
        if (pc->http10) {
            pc->close_after = true;
        } else {
            pc->resp_chunked = true;
            cg_buf_puts(b, "Transfer-Encoding: chunked\r\n");
        }
        break;
    case HTTP_BODY_NONE:
        if (!pc->is_head && m->status != 204 && m->status != 304 &&
            http_msg_find(m, "content-length", 0) < 0)
            cg_buf_puts(b, "Content-Length: 0\r\n");
        break;
    }
    if (pc->close_after || pc->env->draining || !pc->client_keepalive) {
        pc->close_after = true;
        cg_buf_puts(b, "Connection: close\r\n\r\n");
    } else {
        cg_buf_puts(b, "Connection: keep-alive\r\n\r\n");
    }
}

/* Appends body bytes, chunk-framed when chunked. */
static void
put_body(struct cg_buf *b, bool chunked, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (chunked)
        cg_buf_printf(b, "%zx\r\n", n);
    cg_buf_append(b, p, n);
    if (chunked)
        cg_buf_append(b, "\r\n", 2);
}

void
req_body_sink(void *arg, const char *p, size_t n)
{
    struct proxy_conn *pc = CAST_OBJ(struct proxy_conn, arg, PROXY_CONN_MAGIC);
    if (pc->up != NULL)
        put_body(&pc->up->out, pc->req_chunked, p, n);
}

void
resp_body_sink(void *arg, const char *p, size_t n)
{
    struct upconn *up = CAST_OBJ(struct upconn, arg, UPCONN_MAGIC);
    struct proxy_conn *pc = up->pc;
    if (pc == NULL || pc->is_head)
        return;
    pc->bytes_out += n;
    put_body(&pc->out, pc->resp_chunked, p, n);
}

static const char *
status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 401:
        return "Unauthorized";
    case 410:
        return "Gone";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 417:
        return "Expectation Failed";
    case 421:
        return "Misdirected Request";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return status < 300 ? "OK" : status < 400 ? "Redirect" : "Error";
    }
}

/* A short page explaining a refusal; reason is a static code. */
static void
refusal_body(struct cg_buf *body, int status, const char *reason, bool json)
{
    const char *text = status_text(status);
    if (json) {
        cg_buf_printf(body,
                      "{\"error\":\"%s\",\"status\":%d,\"reason\":\"%s\"}\n",
                      status == 403 ? "forbidden" : "error", status, reason);
        return;
    }
    cg_buf_printf(body,
                  "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                  "<title>%d %s</title></head>\n<body><h1>%d %s</h1>\n"
                  "<p>certgate refused this request (%s).</p></body></html>\n",
                  status, text, status, text, reason);
}

void
resp_refuse(struct proxy_conn *pc, int status, const char *reason)
{
    if (pc->up != NULL) {
        up_release(pc->up, false);
        pc->up = NULL;
    }
    pc->refusal = reason;
    pc->status = status;
    int ue = metrics_upstream_error(reason);
    if (ue >= 0)
        metrics_add(pc->mblk, MC_UPSTREAM_ERR + (unsigned)ue, 1);
    if (pc->resp_started) {
        /* the head went out already: all we can do is cut the stream */
        resp_access_log(pc);
        pc_close(pc);
        return;
    }
    struct cg_buf body;
    cg_buf_init(&body);
    refusal_body(&body, status, reason, pc->json_errors);
    cg_buf_printf(&pc->out,
                  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                  "Content-Length: %zu\r\nCache-Control: no-store\r\n"
                  "X-Content-Type-Options: nosniff\r\n"
                  "Connection: close\r\n\r\n",
                  status, status_text(status),
                  pc->json_errors ? "application/json"
                                  : "text/html; charset=utf-8",
                  cg_buf_pending(&body));
    if (!pc->is_head)
        cg_buf_append(&pc->out, cg_buf_head(&body), cg_buf_pending(&body));
    pc->bytes_out = pc->is_head ? 0 : cg_buf_pending(&body);
    cg_buf_cleanup(&body);
    if (pc->t_start == 0)
        pc->t_start = cg_now_ms();
    resp_access_log(pc);
    pc->state = PC_CLOSING;
    pc->close_after = true;
    pc_set_timer(pc, PROXY_LINGER_MS);
}

void
resp_access_log(struct proxy_conn *pc)
{
    metrics_http(pc->mblk,
                 pc->route ? metrics_block(pc->env->mw, pc->route->mbase)
                           : NULL,
                 pc->status);
    if (!pc->site->access_log || !cg_log_enabled(CG_LOG_INFO))
        return;
    const struct cg_verdict *v = tls_conn_verdict(pc->s.tls);
    const struct cg_identity *raw = tls_conn_identity_raw(pc->s.tls);
    static const char *const vs[] = {"NONE", "SUCCESS", "FAILED"};
    struct cg_logrec r;
    cg_logrec_begin(&r, CG_LOG_INFO, "access");
    cg_logrec_int(&r, "conn", (int64_t)pc->id);
    cg_logrec_str(&r, "listener", pc->site->cfg->name);
    cg_logrec_str(&r, "peer", pc->peer);
    cg_logrec_str(&r, "method", pc->method[0] ? pc->method : NULL);
    cg_logrec_str(&r, "host", pc->host);
    cg_logrec_str(&r, "path", pc->target);
    if (pc->route != NULL) {
        cg_logrec_str(&r, "route", pc->route->cfg->path);
        cg_logrec_str(&r, "upstream", pc->route->cfg->upstream.url);
    } else {
        cg_logrec_str(&r, "route", NULL);
    }
    cg_logrec_int(&r, "status", pc->status);
    cg_logrec_int(&r, "bytes", (int64_t)pc->bytes_out);
    cg_logrec_int(&r, "duration_ms",
                  pc->t_start ? cg_now_ms() - pc->t_start : 0);
    cg_logrec_str(&r, "verify", vs[v->status]);
    cg_logrec_str(&r, "reason",
                  v->status == CG_VERIFY_SUCCESS ? NULL : v->reason);
    if (tls_conn_would_refuse(pc->s.tls))
        cg_logrec_bool(&r, "would_refuse", true);
    cg_logrec_str(&r, "refusal", pc->refusal);
    cg_logrec_str(&r, "cn", raw ? raw->cn : NULL);
    cg_logrec_str(&r, "serial", raw ? raw->serial : NULL);
    cg_logrec_str(&r, "sha256", raw ? raw->sha256 : NULL);
    cg_logrec_str(&r, "tls", tls_conn_version(pc->s.tls));
    cg_logrec_str(&r, "cipher", tls_conn_cipher(pc->s.tls));
    cg_logrec_bool(&r, "resumed", tls_conn_resumed(pc->s.tls));
    cg_logrec_str(&r, "sni", tls_conn_sni(pc->s.tls));
    cg_logrec_end(&r);
}
