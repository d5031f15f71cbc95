/*
 * The HTTPS reverse proxy: client connections (TLS handshake, request
 * parsing, routing, policy, identity headers) and upstream connections
 * with a per-worker keep-alive pool. Runs inside one worker's libev loop.
 */
#ifndef CG_HTTP_PROXY_H
#define CG_HTTP_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "http/site.h"
#include "http/stream.h"
#include "tls/tls.h"

struct ev_loop;
struct metrics_worker;
struct proxy_conn;
struct upstream_pool;

/* Per-worker proxy state. */
struct proxy_env {
    struct ev_loop *loop;
    int worker;
    uint64_t next_id;
    struct proxy_conn *conns; /* every open client connection */
    size_t n_conns;
    struct stream_sweeper quiet; /* gives idle connections' memory back */
    struct upstream_pool *pool;
    bool draining;
    struct metrics_worker *mw; /* this worker's counters */
    /* Releases the snapshot reference a connection holds. */
    void (*snap_release)(void *snap);
    /* The listener now serving, by name (set by the last revalidation):
     * a connection that was handshaking then is checked against it once
     * its handshake is done. */
    struct tls_listener *(*tls_of)(void *arg, const char *listener);
    void *tls_arg;
};

void proxy_env_init(struct proxy_env *env, struct ev_loop *loop, int worker,
                    struct metrics_worker *mw,
                    void (*snap_release)(void *snap));
/* Closes every connection and pooled upstream connection. */
void proxy_env_cleanup(struct proxy_env *env);

/*
 * Takes over an accepted non-blocking socket: fd and the snapshot
 * reference snap are consumed (released when the connection closes);
 * tls and site are borrowed from snap.
 */
void proxy_accept(struct proxy_env *env, int fd,
                  const struct sockaddr_storage *peer, void *snap,
                  struct tls_listener *tls, const struct http_site *site);

/* Graceful stop: idle connections close now, busy ones after their
 * current response (answered with Connection: close). */
void proxy_drain(struct proxy_env *env);

/*
 * Closes connections whose client certificate the listener's current TLS
 * settings now refuse (tls_of gives them by listener name; NULL: the
 * listener is gone and its connections run on). Idle ones close at once,
 * one with a request in flight after its response; each is logged. One
 * still in its handshake (begun under the previous settings) is checked
 * when the handshake is done, before its first request.
 */
void proxy_revalidate(struct proxy_env *env,
                      struct tls_listener *(*tls_of)(void *arg,
                                                     const char *listener),
                      void *arg);

#endif
