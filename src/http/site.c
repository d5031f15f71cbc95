#include "http/site.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "core/xmalloc.h"

int
http_upstream_resolve(const struct cg_upstream_cfg *up,
                      struct sockaddr_storage *ss, socklen_t *len, char *err)
{
    memset(ss, 0, sizeof(*ss));
    if (up->scheme == CG_UP_UNIX) {
        struct sockaddr_un *sun = (struct sockaddr_un *)ss;
        if (strlen(up->unix_path) >= sizeof(sun->sun_path))
            return cg_seterr(err, CG_ECONFIG, "unix socket path too long");
        sun->sun_family = AF_UNIX;
        strcpy(sun->sun_path, up->unix_path);
        *len = sizeof(*sun);
        return 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    char port[16];
    snprintf(port, sizeof(port), "%d", up->port);
    int rc = getaddrinfo(up->host, port, &hints, &res);
    if (rc != 0 || res == NULL)
        return cg_seterr(err, CG_ECONFIG, "cannot resolve %s: %s", up->host,
                         gai_strerror(rc));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int
route_build(struct http_route *r, const struct cg_route_cfg *rc, size_t li,
            size_t ri, struct cg_strlist *errors)
{
    char jp[128], err[CG_ERR_LEN], line[CG_ERR_LEN + 160];
    snprintf(jp, sizeof(jp), "listeners[%zu].routes[%zu]", li, ri);
    r->cfg = rc;
    r->index = ri;
    if (CG_UP_LOCAL(rc->upstream.scheme))
        return 0; /* answered by certgate itself */
    if (http_upstream_resolve(&rc->upstream, &r->addr, &r->addrlen, err) != 0) {
        snprintf(line, sizeof(line), "%s.upstream: %s", jp, err);
        cg_strlist_add(errors, line);
        return CG_ECONFIG;
    }
    if (rc->upstream.scheme == CG_UP_HTTPS &&
        tls_client_ctx_new(&rc->upstream, jp, &r->tls, err) != 0) {
        cg_strlist_add(errors, err);
        return CG_ECONFIG;
    }
    const struct cg_upstream_cfg *u = &rc->upstream;
    r->pool_key =
        xasprintf("%s|%s|%s|%s|%s|%d", u->url, u->ca_file ? u->ca_file : "",
                  u->cert ? u->cert : "", u->server_name ? u->server_name : "",
                  u->key ? u->key : "", u->verify);
    if (u->scheme == CG_UP_UNIX)
        r->host_header = xstrdup("localhost");
    else if (strchr(u->host, ':'))
        r->host_header = xasprintf("[%s]:%d", u->host, u->port);
    else
        r->host_header = xasprintf("%s:%d", u->host, u->port);
    return 0;
}

int
http_site_new(const struct cg_config *cfg, size_t idx, struct http_site **out,
              struct cg_strlist *errors)
{
    const struct cg_listener_cfg *lc = &cfg->listeners[idx];
    struct http_site *s = xcalloc(1, sizeof(*s));
    s->cfg = lc;
    s->index = idx;
    s->n_routes = lc->n_routes;
    s->routes = xcalloc(s->n_routes ? s->n_routes : 1, sizeof(*s->routes));
    s->strip = http_strip_set_new();
    s->access_log = cfg->access_log;
    int rc = 0;
    size_t nd;
    const struct cg_header_map *def = config_default_headers(&nd);
    for (size_t i = 0; i < nd; i++)
        http_strip_set_add(s->strip, def[i].name);
    http_strip_set_add(s->strip, "X-Client-Cert-PEM");
    http_strip_set_add(s->strip, "Client-Cert-Chain");
    for (size_t i = 0; i < lc->strip_headers.n; i++)
        http_strip_set_add(s->strip, lc->strip_headers.v[i]);
    for (size_t i = 0; i < lc->n_routes; i++) {
        const struct cg_route_cfg *r = &lc->routes[i];
        for (size_t j = 0; j < r->n_headers; j++)
            http_strip_set_add(s->strip, r->headers[j].name);
        if (route_build(&s->routes[i], r, idx, i, errors) != 0)
            rc = CG_ECONFIG;
    }
    if (rc != 0) {
        http_site_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void
http_site_free(struct http_site *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_routes; i++) {
        tls_client_ctx_free(s->routes[i].tls);
        free(s->routes[i].pool_key);
        free(s->routes[i].host_header);
    }
    free(s->routes);
    http_strip_set_free(s->strip);
    free(s);
}

/* 3 exact host, 2 wildcard, 1 any, 0 no match. */
static int
host_rank(const char *pattern, const char *host)
{
    if (pattern == NULL)
        return 1;
    if (host == NULL)
        return 0;
    if (strcmp(pattern, host) == 0)
        return 3;
    if (pattern[0] == '*' && pattern[1] == '.') {
        size_t pl = strlen(pattern + 1), hl = strlen(host);
        if (hl > pl && strcmp(host + hl - pl, pattern + 1) == 0)
            return 2;
    }
    return 0;
}

/* Prefix match on a path segment boundary ("/api" matches "/api/x" and
 * "/api?q" but not "/apix"); returns the prefix length or -1. */
static long
path_rank(const char *prefix, const char *path, size_t len)
{
    size_t pl = strlen(prefix);
    if (pl > len || memcmp(prefix, path, pl) != 0)
        return -1;
    if (pl == len || prefix[pl - 1] == '/' || path[pl] == '/' ||
        path[pl] == '?')
        return (long)pl;
    return -1;
}

const struct http_route *
http_site_route(const struct http_site *s, const char *host, const char *path,
                size_t path_len)
{
    const struct http_route *best = NULL;
    int best_host = 0;
    long best_path = -1;
    for (size_t i = 0; i < s->n_routes; i++) {
        const struct cg_route_cfg *rc = s->routes[i].cfg;
        int h = host_rank(rc->host, host);
        if (h == 0)
            continue;
        long p = path_rank(rc->path, path, path_len);
        if (p < 0)
            continue;
        if (h > best_host || (h == best_host && p > best_path)) {
            best = &s->routes[i];
            best_host = h;
            best_path = p;
        }
    }
    return best;
}
