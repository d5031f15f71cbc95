/*
 * A listener's HTTP side, built once per snapshot on the main thread:
 * routes with resolved upstream addresses and TLS client contexts, and
 * the set of inbound header names that are always stripped.
 */
#ifndef CG_HTTP_SITE_H
#define CG_HTTP_SITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/config.h"
#include "http/headers.h"
#include "tls/tls.h"

struct http_route {
    const struct cg_route_cfg *cfg; /* borrowed from the snapshot config */
    size_t index;
    struct sockaddr_storage addr; /* resolved upstream address */
    socklen_t addrlen;
    struct tls_client_ctx *tls; /* https upstream, else NULL */
    char *pool_key;             /* upstream connections are shared by
                                   routes with the same key */
    char *host_header;          /* Host sent when none was given */
    uint32_t mbase;             /* metrics block (snapshot_metrics) */
};

struct http_site {
    const struct cg_listener_cfg *cfg;
    size_t index;
    struct http_route *routes;
    size_t n_routes;
    struct http_strip_set *strip;
    bool access_log;
    uint32_t mbase; /* metrics block of the listener */
};

/* Resolves an upstream address once, at build time (never per request):
 * unix path, or host and port through getaddrinfo. Returns 0 or
 * CG_ECONFIG with err filled. */
int http_upstream_resolve(const struct cg_upstream_cfg *up,
                          struct sockaddr_storage *ss, socklen_t *len,
                          char *err);

/* Builds the HTTP side of listener idx. Errors appended as
 * "<json path>: <message>". Returns 0 and an owned site or CG_ECONFIG. */
int http_site_new(const struct cg_config *cfg, size_t idx,
                  struct http_site **out, struct cg_strlist *errors);
void http_site_free(struct http_site *s);
/* The route for a normalised host and a request path: the most specific
 * host match (exact, then wildcard, then any), then the longest path
 * prefix. NULL when none. */
const struct http_route *http_site_route(const struct http_site *s,
                                         const char *host, const char *path,
                                         size_t path_len);

#endif
