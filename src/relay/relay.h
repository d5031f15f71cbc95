/*
 * Non-HTTP listeners (kind "mqtt" and "tcp"): TLS with client auth, then
 * a protocol step (MQTT CONNECT decoding, identity mapping and checks; or
 * a PROXY v2 header), then bytes spliced both ways with back-pressure to
 * the upstream. Runs inside one worker's libev loop, like src/http/proxy.
 */
#ifndef CG_RELAY_RELAY_H
#define CG_RELAY_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/config.h"
#include "http/stream.h"
#include "tls/tls.h"

struct ev_loop;
struct metrics_worker;
struct relay_conn;
struct relay_site;

/* Per-worker state of the relay listeners. */
struct relay_env {
    struct ev_loop *loop;
    int worker;
    uint64_t next_id;
    struct relay_conn *conns; /* every open connection */
    size_t n_conns;
    struct stream_sweeper quiet; /* gives idle connections' memory back */
    bool draining;
    struct metrics_worker *mw; /* this worker's counters */
    void (*snap_release)(void *snap);
    /* The listener now serving, by name (set by the last revalidation):
     * a connection that was handshaking then is checked against it once
     * its handshake is done. */
    struct tls_listener *(*tls_of)(void *arg, const char *listener);
    void *tls_arg;
};

void relay_env_init(struct relay_env *env, struct ev_loop *loop, int worker,
                    struct metrics_worker *mw,
                    void (*snap_release)(void *snap));
/* Closes every connection. */
void relay_env_cleanup(struct relay_env *env);

/* Builds what listener idx (kind mqtt or tcp) needs at run time (resolved
 * upstream, upstream TLS client context, JWT keys, ...), on the main
 * thread at snapshot time. Errors appended as "<json path>: <message>".
 * Returns 0 and an owned site, or CG_ECONFIG. */
int relay_site_new(const struct cg_config *cfg, size_t idx,
                   struct relay_site **out, struct cg_strlist *errors);
void relay_site_free(struct relay_site *s);
/* Sets the metrics block of the listener (snapshot_metrics). */
void relay_site_set_metrics(struct relay_site *s, uint32_t offset);

/* Takes over an accepted non-blocking socket: fd and the snapshot
 * reference snap are consumed; tls and site are borrowed from snap. */
void relay_accept(struct relay_env *env, int fd,
                  const struct sockaddr_storage *peer, void *snap,
                  struct tls_listener *tls, const struct relay_site *site);

/* Graceful stop: connections still in their protocol step close now;
 * spliced ones are closed when the drain timeout ends. */
void relay_drain(struct relay_env *env);

/* Closes (with a log line naming the reason) every open connection whose
 * client certificate the listener's current TLS settings now refuse
 * (revoked, or no longer trusted after a client-CA switch). tls_of
 * returns the current tls_listener for a listener name (NULL: the
 * listener is gone; its connections keep running until they end). One
 * still in its handshake (begun under the previous settings) is checked
 * when the handshake is done, before anything is relayed. */
void relay_revalidate(struct relay_env *env,
                      struct tls_listener *(*tls_of)(void *arg,
                                                     const char *listener),
                      void *arg);

#endif
