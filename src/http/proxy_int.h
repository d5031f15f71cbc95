/* Internals shared by proxy.c, upstream.c and respond.c. */
#ifndef CG_HTTP_PROXY_INT_H
#define CG_HTTP_PROXY_INT_H

#include <arpa/inet.h>
#include <ev.h>
#include <stdlib.h>

#include "admin/metrics.h"
#include "core/buf.h"
#include "http/parse.h"
#include "http/proxy.h"
#include "http/stream.h"

#define PROXY_CONN_MAGIC 0x50434f4eu
#define UPCONN_MAGIC 0x5550434eu
#define PROXY_HIGH_WATER (256 * 1024) /* back-pressure threshold */
#define PROXY_FEED_MAX (64 * 1024)    /* bytes parsed per step */
#define PROXY_LINGER_MS 5000

/* Checked cast of a void pointer holding a magic-tagged object. */
#define CAST_OBJ(type, ptr, magicval)                                          \
    ({                                                                         \
        type *o_ = (ptr);                                                      \
        if (o_ == NULL || o_->magic != (magicval))                             \
            abort();                                                           \
        o_;                                                                    \
    })

enum pc_state {
    PC_HANDSHAKE,
    PC_HEAD,    /* waiting for / reading a request head */
    PC_BODY,    /* request forwarded; body and/or response in flight */
    PC_TUNNEL,  /* upgraded: bytes spliced both ways */
    PC_CLOSING, /* flushing the last answer, then close */
};

enum up_state {
    UP_CONNECTING,
    UP_HANDSHAKE,
    UP_READY,
    UP_IDLE, /* in the pool */
};

struct upconn {
    unsigned magic;
    struct proxy_env *env;
    struct proxy_conn *pc; /* owner while in use; NULL when pooled */
    struct upconn *pprev, *pnext;
    char *pool_key;
    struct stream s;
    ev_io io;
    ev_timer timer;
    enum up_state state;
    struct cg_buf out, in;
    struct http_parser *resp;
    bool reused;    /* came from the pool */
    bool got_bytes; /* any response byte seen */
    bool armed;     /* read timer running */
    char err[256];
};

struct proxy_conn {
    unsigned magic;
    struct proxy_env *env;
    struct proxy_conn *prev, *next;
    struct quiet_node quiet; /* on env->quiet.active while not quiet */
    void *snap;
    struct tls_listener *tlsl;
    const struct http_site *site;
    uint64_t id;
    metrics_ctr_t *mblk; /* the listener's counters in this worker */
    struct stream s;
    char peer[INET6_ADDRSTRLEN + 1];
    ev_io io;
    ev_timer timer;
    /* pc_set_timer's deadline (ev_now() time, 0: none). The timer runs
     * lazily: a later deadline leaves it armed for its earlier time, and
     * the callback re-arms it for what is left (libev's "be smart about
     * timeouts"), so a request costs no timer restarts. */
    double deadline;
    double timer_at; /* when the armed timer fires (ev_now() time) */
    enum pc_state state;
    struct cg_buf in, out;
    struct http_parser *req;
    struct upconn *up;
    int busy;     /* inside conn_run */
    bool dead;    /* close requested: free when not busy */
    bool recheck; /* a snapshot came during the handshake (revalidate) */
    /* the exchange in flight */
    const struct http_route *route;
    int64_t t_start;
    int status;
    uint64_t bytes_out;
    char method[24];
    char *target, *host, *host_hdr;
    char *path; /* normalised origin-form target sent upstream */
    bool head_started, req_done, req_chunked, resp_started, resp_chunked;
    bool resp_done, interim, close_after, client_keepalive, is_head;
    bool upgrade_req, want_tunnel, retried, json_errors, http10;
    bool local; /* answered by certgate (builtin:*, respond) */
    const char *refusal;
};

/* proxy.c */
void conn_run(struct proxy_conn *pc);
void pc_close(struct proxy_conn *pc);
void pc_set_timer(struct proxy_conn *pc, int64_t ms);
/* Logs the exchange and readies pc for the next request (or closing). */
void finish_exchange(struct proxy_conn *pc, bool upstream_reusable);

/* proxy_recheck.c */
/* A connection whose handshake began under the previous snapshot,
 * checked under the current one once it is done; false when closed. */
bool proxy_handshake_recheck(struct proxy_conn *pc);

/* upstream.c */
struct upstream_pool *pool_new(void);
void pool_free(struct upstream_pool *p);
/* Returns an upstream connection for pc's route (pooled or new), owned
 * by pc; NULL with up_err filled when the connect failed at once. */
struct upconn *up_get(struct proxy_conn *pc, char *up_err, size_t len);
/* Advances connect/handshake; returns true on progress, -1 on error. */
int up_connect_step(struct upconn *up);
/* Returns the connection to the pool when reusable, else closes it. */
void up_release(struct upconn *up, bool reusable);
void up_update_io(struct upconn *up, bool reading);
void up_arm_read_timer(struct upconn *up, bool on);

/* respond.c */
void resp_forward_head(struct proxy_conn *pc);
void resp_write_head(struct proxy_conn *pc, const struct http_msg *m);
void resp_refuse(struct proxy_conn *pc, int status, const char *reason);
/* Counts the exchange (metrics) and writes its access log line; once per
 * exchange. */
void resp_access_log(struct proxy_conn *pc);
/* Answers a route certgate serves itself (builtin:echo,
 * builtin:metrics, respond) once the request is read. */
void resp_local(struct proxy_conn *pc);
void resp_body_sink(void *arg, const char *p, size_t n);
void req_body_sink(void *arg, const char *p, size_t n);

#endif
