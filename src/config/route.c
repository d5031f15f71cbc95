/*
 * The parts of a route that are more than a table entry: the "upstream"
 * URL, its agreement with "upstream_tls", and "identity_headers".
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "config/config_int.h"
#include "core/err.h"
#include "core/util.h"
#include "core/xmalloc.h"

#define USAGE                                                                  \
    "expected http://host[:port], https://host[:port], unix:/path, "           \
    "builtin:echo or builtin:metrics"

/* Parses "1".."65535". */
static bool
port_parse(const char *s, int *port)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5 || strspn(s, "0123456789") != n)
        return false;
    int v = atoi(s);
    if (v < 1 || v > 65535)
        return false;
    *port = v;
    return true;
}

/* "host", "host:port", "[v6]" or "[v6]:port" (a is modified). */
static int
authority_parse(char *a, struct cg_upstream_cfg *u, char *err)
{
    char *host = a, *port = NULL;
    if (a[0] == '[') {
        char *end = strchr(a, ']');
        struct in6_addr in6;
        if (end == NULL || (end[1] != '\0' && end[1] != ':'))
            return cg_seterr(err, CG_ECONFIG, "invalid IPv6 address");
        if (end[1] == ':')
            port = end + 2;
        *end = '\0';
        host = a + 1;
        if (inet_pton(AF_INET6, host, &in6) != 1)
            return cg_seterr(err, CG_ECONFIG, "invalid IPv6 address");
    } else {
        char *colon = strrchr(a, ':');
        if (colon != NULL) {
            *colon = '\0';
            port = colon + 1;
        }
        if (strchr(a, ':') != NULL)
            return cg_seterr(err, CG_ECONFIG,
                             "IPv6 addresses must be in brackets");
        if (*host == '\0')
            return cg_seterr(err, CG_ECONFIG, "missing host");
        for (char *p = host; *p; p++) {
            if (!isalnum((unsigned char)*p) && !strchr(".-_", *p))
                return cg_seterr(err, CG_ECONFIG, "invalid host");
            *p = (char)tolower((unsigned char)*p);
        }
    }
    if (port != NULL && !port_parse(port, &u->port))
        return cg_seterr(err, CG_ECONFIG, "invalid port \"%s\"", port);
    u->host = xstrdup(host);
    return 0;
}

/* http(s)://authority with nothing after it but an optional "/". */
static int
http_parse(const char *url, struct cg_upstream_cfg *u, char *err)
{
    const char *sep = strstr(url, "://");
    if (sep == NULL || strchr(url, ':') != sep)
        return cg_seterr(err, CG_ECONFIG, USAGE);
    size_t sl = (size_t)(sep - url);
    if (sl == 4 && strncasecmp(url, "http", 4) == 0) {
        u->scheme = CG_UP_HTTP;
        u->port = 80;
    } else if (sl == 5 && strncasecmp(url, "https", 5) == 0) {
        u->scheme = CG_UP_HTTPS;
        u->port = 443;
    } else {
        return cg_seterr(err, CG_ECONFIG,
                         "unsupported scheme \"%.*s\" (expected http, https "
                         "or unix)",
                         (int)sl, url);
    }
    const char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *rest = auth + alen;
    if (memchr(auth, '@', alen) != NULL)
        return cg_seterr(err, CG_ECONFIG, "userinfo not allowed");
    if (rest[0] == '/' && rest[1] != '\0' && rest[1] != '?' && rest[1] != '#')
        return cg_seterr(err, CG_ECONFIG,
                         "path not allowed (requests keep their own path)");
    if (rest[0] == '/')
        rest++;
    if (rest[0] == '?')
        return cg_seterr(err, CG_ECONFIG, "query not allowed");
    if (rest[0] == '#')
        return cg_seterr(err, CG_ECONFIG, "fragment not allowed");
    char *a = xstrndup(auth, alen);
    int rc = authority_parse(a, u, err);
    free(a);
    return rc;
}

static int unix_parse(const char *url, const char *base,
                      struct cg_upstream_cfg *u, char *err);

static int
upstream_parse(const char *url, const char *base, struct cg_upstream_cfg *u,
               char *err)
{
    if (strcmp(url, "builtin:echo") == 0) {
        u->scheme = CG_UP_ECHO;
        return 0;
    }
    if (strcmp(url, "builtin:metrics") == 0) {
        u->scheme = CG_UP_METRICS;
        return 0;
    }
    if (strncasecmp(url, "builtin:", 8) == 0)
        return cg_seterr(err, CG_ECONFIG,
                         "unknown built-in upstream (expected builtin:echo "
                         "or builtin:metrics)");
    if (strncasecmp(url, "unix:", 5) != 0)
        return http_parse(url, u, err);
    return unix_parse(url, base, u, err);
}

/* "unix:/path" (relative paths resolve against base). */
static int
unix_parse(const char *url, const char *base, struct cg_upstream_cfg *u,
           char *err)
{
    if (url[5] == '\0')
        return cg_seterr(err, CG_ECONFIG, "missing socket path");
    char *path = cfg_path_resolve(base, url + 5);
    struct sockaddr_un sun;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        free(path);
        return cg_seterr(err, CG_ECONFIG, "socket path longer than %zu bytes",
                         sizeof(sun.sun_path) - 1);
    }
    u->scheme = CG_UP_UNIX;
    u->unix_path = path;
    return 0;
}

void
cfg_parse_upstream(struct cfg_ctx *c, const struct opt *o, json_t *v,
                   void *base)
{
    struct cg_upstream_cfg *u = &((struct cg_route_cfg *)base)->upstream;
    char err[CG_ERR_LEN];
    (void)o;
    const char *s = v ? cfg_get_str(c, v) : NULL;
    if (s == NULL)
        return;
    if (upstream_parse(s, c->base_dir, u, err) != 0) {
        cfg_error(c, "invalid upstream \"%s\": %s", s, err);
        cfg_release_upstream(o, base);
        return;
    }
    u->url = xstrdup(s);
}

void
cfg_release_upstream(const struct opt *o, void *base)
{
    struct cg_upstream_cfg *u = &((struct cg_route_cfg *)base)->upstream;
    (void)o;
    XFREE(&u->url);
    XFREE(&u->host);
    XFREE(&u->unix_path);
}

/* What verify and a client certificate of "upstream_tls" need. */
static void
tls_rules(struct cfg_ctx *c, struct cg_upstream_cfg *u, json_t *tls)
{
    bool has_ca = json_object_get(tls, "ca_file") != NULL;
    bool has_cert = json_object_get(tls, "cert") != NULL;
    bool has_key = json_object_get(tls, "key") != NULL;
    if (u->verify && !has_ca)
        cfg_error_at(c, "upstream_tls.ca_file",
                     "required unless verify is false");
    if (has_cert != has_key)
        cfg_error_at(c, has_cert ? "upstream_tls.key" : "upstream_tls.cert",
                     "required when %s is set", has_cert ? "cert" : "key");
    if (u->server_name == NULL)
        u->server_name = xstrdup(u->host);
}

/* A route with "respond" has no upstream: nothing that configures one. */
static void
respond_post(struct cfg_ctx *c, json_t *obj, struct cg_route_cfg *r)
{
    static const char *const upstream_keys[] = {"upstream", "upstream_tls",
                                                "identity_headers"};
    for (size_t i = 0; i < CG_ARRAY_LEN(upstream_keys); i++) {
        if (json_object_get(obj, upstream_keys[i]) != NULL)
            cfg_error_at(c, upstream_keys[i],
                         "not allowed with \"respond\" (the route answers "
                         "itself)");
    }
    r->upstream.scheme = CG_UP_RESPOND;
}

/* upstream or respond; upstream_tls only for https. */
void
cfg_route_post(struct cfg_ctx *c, json_t *obj, void *base)
{
    struct cg_route_cfg *r = base;
    struct cg_upstream_cfg *u = &r->upstream;
    json_t *tls = obj ? json_object_get(obj, "upstream_tls") : NULL;
    if (obj != NULL && json_object_get(obj, "respond") != NULL) {
        respond_post(c, obj, r);
        return;
    }
    if (obj != NULL && json_object_get(obj, "upstream") == NULL)
        cfg_error_at(c, "upstream", "required (or \"respond\")");
    if (u->url == NULL)
        return; /* missing or invalid: reported already */
    if (u->scheme != CG_UP_HTTPS) {
        if (tls != NULL)
            cfg_error_at(c, "upstream_tls",
                         "only allowed with an https upstream");
        return;
    }
    tls_rules(c, u, tls);
}

/* ---- upstream of mqtt and tcp listeners ---- */

#define RELAY_USAGE                                                            \
    "expected host:port, [v6]:port, tls://host:port or unix:/path"

static int
relay_upstream_parse(const char *url, const char *base,
                     struct cg_upstream_cfg *u, char *err)
{
    if (strncasecmp(url, "unix:", 5) == 0)
        return unix_parse(url, base, u, err);
    const char *a = url;
    u->scheme = CG_UP_HTTP; /* plain TCP */
    if (strncasecmp(url, "tls://", 6) == 0) {
        a = url + 6;
        u->scheme = CG_UP_HTTPS;
    } else if (strstr(url, "://") != NULL) {
        return cg_seterr(err, CG_ECONFIG, RELAY_USAGE);
    }
    char *copy = xstrdup(a);
    int rc = authority_parse(copy, u, err);
    free(copy);
    if (rc == 0 && u->port == 0)
        rc = cg_seterr(err, CG_ECONFIG, "missing port (" RELAY_USAGE ")");
    return rc;
}

void
cfg_parse_relay_upstream(struct cfg_ctx *c, const struct opt *o, json_t *v,
                         void *base)
{
    struct cg_upstream_cfg *u = &((struct cg_listener_cfg *)base)->upstream;
    char err[CG_ERR_LEN];
    const char *s = v ? cfg_get_str(c, v) : NULL;
    if (s == NULL)
        return;
    if (relay_upstream_parse(s, c->base_dir, u, err) != 0) {
        cfg_error(c, "invalid upstream \"%s\": %s", s, err);
        cfg_release_relay_upstream(o, base);
        return;
    }
    u->url = xstrdup(s);
}

void
cfg_release_relay_upstream(const struct opt *o, void *base)
{
    struct cg_upstream_cfg *u = &((struct cg_listener_cfg *)base)->upstream;
    (void)o;
    XFREE(&u->url);
    XFREE(&u->host);
    XFREE(&u->unix_path);
}

void
cfg_relay_upstream_post(struct cfg_ctx *c, json_t *obj,
                        struct cg_upstream_cfg *u)
{
    json_t *tls = obj ? json_object_get(obj, "upstream_tls") : NULL;
    if (u->url == NULL)
        return;
    if (u->scheme == CG_UP_UNIX) {
        if (tls != NULL)
            cfg_error_at(c, "upstream_tls",
                         "not allowed with a unix: upstream");
        return;
    }
    if (tls != NULL)
        u->scheme = CG_UP_HTTPS; /* "host:port" + upstream_tls: TLS */
    if (u->scheme == CG_UP_HTTPS)
        tls_rules(c, u, tls);
}

/* Lists the identity field names for an error message. */
static void
field_names(struct cg_buf *b)
{
    for (int f = 0; f < CG_F_COUNT; f++)
        cg_buf_printf(b, "%s%s", f ? ", " : "",
                      ident_field_name((enum cg_field)f));
}

/* Reads one "Header-Name": "field" pair; returns whether it is valid. */
static bool
header_read(struct cfg_ctx *c, const struct cg_route_cfg *r, char *name,
            json_t *v, enum cg_field *field)
{
    bool ok = cfg_check_header_name(c, name);
    for (size_t j = 0; ok && j < r->n_headers; j++) {
        const char *p = r->headers[j].name;
        if (cg_str_ieq(p, strlen(p), name, strlen(name))) {
            cfg_error(c, "duplicate header name (names are "
                         "case-insensitive)");
            ok = false;
        }
    }
    const char *s = cfg_get_str(c, v);
    if (s == NULL)
        return false;
    int f = ident_field_parse(s);
    if (f < 0) {
        struct cg_buf b;
        cg_buf_init(&b);
        field_names(&b);
        cfg_error(c, "unknown field \"%s\"; expected one of %s", s,
                  cg_buf_cstr(&b));
        cg_buf_cleanup(&b);
        return false;
    }
    *field = (enum cg_field)f;
    return ok;
}

void
cfg_parse_headers(struct cfg_ctx *c, const struct opt *o, json_t *v, void *base)
{
    struct cg_route_cfg *r = base;
    (void)o;
    if (v == NULL) {
        size_t n;
        const struct cg_header_map *def = config_default_headers(&n);
        r->headers = xcalloc(n, sizeof(*r->headers));
        for (size_t i = 0; i < n; i++) {
            r->headers[i].name = xstrdup(def[i].name);
            r->headers[i].field = def[i].field;
        }
        r->n_headers = n;
        return;
    }
    if (!cfg_get_object(c, v))
        return;
    /* An empty object is allowed: the route sends no identity headers. */
    r->headers = xcalloc(json_object_size(v), sizeof(*r->headers));
    const char *key;
    json_t *e;
    json_object_foreach(v, key, e)
    {
        size_t mark = cfg_push_key(c, key);
        char *name = xstrdup(key);
        enum cg_field f;
        if (header_read(c, r, name, e, &f)) {
            r->headers[r->n_headers].name = name;
            r->headers[r->n_headers++].field = f;
        } else {
            free(name);
        }
        cfg_pop(c, mark);
    }
}

void
cfg_release_headers(const struct opt *o, void *base)
{
    struct cg_route_cfg *r = base;
    (void)o;
    for (size_t i = 0; i < r->n_headers; i++)
        free(r->headers[i].name);
    XFREE(&r->headers);
    r->n_headers = 0;
}

/* ---- "respond": a static answer ---- */

/* "body": any string, may be empty. */
static void
parse_body(struct cfg_ctx *c, const struct opt *o, json_t *v, void *base)
{
    struct cg_respond_cfg *r = base;
    (void)o;
    if (v == NULL) {
        r->body = xstrdup("");
        return;
    }
    if (!json_is_string(v)) {
        cfg_error(c, "expected string");
        return;
    }
    size_t len = json_string_length(v); /* the parser refuses NUL */
    r->body = xstrndup(json_string_value(v), len);
    r->body_len = len;
}

static void
release_body(const struct opt *o, void *base)
{
    struct cg_respond_cfg *r = base;
    (void)o;
    XFREE(&r->body);
    r->body_len = 0;
}

/* "headers": {"Name": "value"}: extra response headers. */
static void
parse_resp_headers(struct cfg_ctx *c, const struct opt *o, json_t *v,
                   void *base)
{
    struct cg_respond_cfg *r = base;
    (void)o;
    if (!cfg_get_object(c, v))
        return;
    r->headers = xcalloc(json_object_size(v) + 1, sizeof(*r->headers));
    const char *key;
    json_t *e;
    json_object_foreach(v, key, e)
    {
        size_t mark = cfg_push_key(c, key);
        char *name = xstrdup(key);
        const char *val = NULL;
        bool ok = cfg_check_header_name(c, name);
        if (ok && (cg_str_ieq(name, strlen(name), "content-type", 12) ||
                   cg_str_ieq(name, strlen(name), "cache-control", 13))) {
            cfg_error(c,
                      "header \"%s\" is set by certgate (use "
                      "content_type)",
                      name);
            ok = false;
        }
        if (ok)
            val = cfg_get_str(c, e);
        if (val != NULL) {
            r->headers[r->n_headers].name = name;
            r->headers[r->n_headers++].value = xstrdup(val);
        } else {
            free(name);
        }
        cfg_pop(c, mark);
    }
}

static void
release_resp_headers(const struct opt *o, void *base)
{
    struct cg_respond_cfg *r = base;
    (void)o;
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    XFREE(&r->headers);
    r->n_headers = 0;
}

/* 204 and 304 carry no body. */
static void
respond_rules(struct cfg_ctx *c, json_t *obj, void *base)
{
    struct cg_respond_cfg *r = base;
    (void)obj;
    if ((r->status == 204 || r->status == 304) && r->body_len > 0)
        cfg_error_at(c, "body", "must be empty with status %d", r->status);
}

#define RESP_OFF(f) offsetof(struct cg_respond_cfg, f)
static const struct opt respond_opts[] = {
    {.key = "status",
     .type = OPT_INT,
     .flags = OPT_REQUIRED,
     .off = RESP_OFF(status),
     .min = 200,
     .max = 599},
    {.key = "body",
     .type = OPT_CUSTOM,
     .parse = parse_body,
     .release = release_body},
    {.key = "content_type",
     .type = OPT_STR,
     .off = RESP_OFF(content_type),
     .def_str = "text/plain; charset=utf-8"},
    {.key = "headers",
     .type = OPT_CUSTOM,
     .parse = parse_resp_headers,
     .release = release_resp_headers},
};
TABLE(respond, respond_rules);

void
cfg_parse_respond(struct cfg_ctx *c, const struct opt *o, json_t *v, void *base)
{
    struct cg_route_cfg *r = base;
    (void)o;
    r->has_respond = v != NULL;
    if (v == NULL)
        return;
    if (!json_is_object(v)) {
        cfg_error(c, "expected object (status, body, content_type, "
                     "headers)");
        return;
    }
    opt_apply(c, &respond, v, &r->respond, false);
}

void
cfg_release_respond(const struct opt *o, void *base)
{
    struct cg_route_cfg *r = base;
    (void)o;
    opt_release(&respond, &r->respond);
    r->has_respond = false;
}
