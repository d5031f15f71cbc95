/* Internals shared by the files of src/relay. */
#ifndef CG_RELAY_RELAY_INT_H
#define CG_RELAY_RELAY_INT_H

#include <arpa/inet.h>
#include <ev.h>
#include <pthread.h>
#include <stdlib.h>

#include "admin/metrics.h"
#include "core/buf.h"
#include "http/stream.h"
#include "mqtt/map.h"
#include "relay/relay.h"
#include "store/store.h"
#include "tls/jwt.h"

#define RELAY_CONN_MAGIC 0x524c4159u
#define RELAY_HIGH_WATER (256 * 1024) /* back-pressure threshold */
#define RELAY_LINGER_MS 5000

/* Checked cast of a void pointer holding a magic-tagged object. */
#define RELAY_CAST(type, ptr, magicval)                                        \
    ({                                                                         \
        type *o_ = (ptr);                                                      \
        if (o_ == NULL || o_->magic != (magicval))                             \
            abort();                                                           \
        o_;                                                                    \
    })

/* The user store of data_dir, opened on first use and shared by the
 * workers under mu (auth.password only). */
struct relay_store {
    pthread_mutex_t mu;
    struct store *st;
    char *data_dir;
};

struct relay_site {
    const struct cg_listener_cfg *cfg;
    size_t index;
    struct sockaddr_storage addr; /* upstream, resolved once */
    socklen_t addrlen;
    struct tls_client_ctx *tls; /* upstream TLS, or NULL */
    struct tls_jwt_keys *jwt;   /* auth.jwt keys, or NULL */
    enum mqtt_map_mode as_username, as_clientid;
    struct relay_store *store; /* auth.password, or NULL */
    uint32_t mbase;            /* metrics block of the listener */
};

enum rc_state {
    RC_HANDSHAKE, /* TLS handshake with the client */
    RC_CONNECT,   /* mqtt: reading the first packet */
    RC_UPSTREAM,  /* connecting to the upstream */
    RC_SPLICE,    /* bytes spliced both ways */
    RC_CLOSING,   /* flushing what is left, then close */
};

enum up_phase {
    UPP_NONE,
    UPP_CONNECTING,
    UPP_HANDSHAKE,
    UPP_READY,
};

struct relay_conn {
    unsigned magic;
    struct relay_env *env;
    struct relay_conn *prev, *next;
    struct quiet_node quiet; /* on env->quiet.active while not quiet */
    void *snap;
    struct tls_listener *tlsl;
    const struct relay_site *site;
    uint64_t id;
    metrics_ctr_t *mblk;             /* listener counters, this worker */
    struct metrics_identity *mident; /* per-identity series, once open */
    char peer[INET6_ADDRSTRLEN + 1];
    struct sockaddr_storage peer_addr;
    struct stream s; /* client */
    ev_io io;
    ev_timer timer;
    struct stream up; /* upstream; fd -1 until connected */
    ev_io up_io;
    enum up_phase up_phase;
    enum rc_state state;
    struct cg_buf in;    /* mqtt: the first packet, as received so far */
    struct cg_buf to_up; /* bytes for the upstream */
    struct cg_buf to_cl; /* bytes for the client */
    int busy;            /* inside a callback */
    bool dead;           /* close requested: free when not busy */
    bool recheck;        /* a snapshot came during the handshake */
    bool opened;         /* the open line was logged */
    int level;           /* mqtt protocol level, -1 unknown */
    int64_t t_start;
    int64_t idle_ms; /* splice idle timeout: timeouts.idle, raised to
                        1.5 x the MQTT keep-alive of the CONNECT */
    uint64_t bytes_up, bytes_down;
    const char *end; /* why it closed, for the close line */
};

/* relay.c */
void relay_close(struct relay_conn *rc, const char *why);
/* Starts the upstream connection; the queued to_up bytes go first. */
void relay_upstream_start(struct relay_conn *rc);
/* Logs the accepted session (identity, mapped names). */
void relay_log_open(struct relay_conn *rc, const char *username, size_t ulen,
                    const char *clientid, size_t clen);

/* mqtt_session.c: decodes what rc->in holds; on a complete, accepted
 * CONNECT queues the rewritten one and starts the upstream; on a
 * refusal queues the CONNACK (if any) and closes. */
void mqtt_session_feed(struct relay_conn *rc);
/* Upstream unreachable before anything was forwarded back. */
void mqtt_session_unavailable(struct relay_conn *rc);

/* tcp_session.c: queues the PROXY v2 header (if configured) and starts
 * the upstream. */
void tcp_session_start(struct relay_conn *rc);

/* site.c: finds the enabled user for the CONNECT password check. */
int relay_store_user(struct relay_store *rs, const char *name,
                     const char *email, struct store_user *u, char *err);

#endif
