/*
 * bench/loadgen internals: options, the generator state, one connection
 * slot and the HTTP/1.1 response reader. One thread, one epoll set,
 * edge-triggered; every connection is a small state machine driven by
 * lg_conn_drive() until OpenSSL or the socket would block.
 */
#ifndef CG_BENCH_LG_H
#define CG_BENCH_LG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#define LG_MAX_PIDS 8
#define LG_MAX_CPUS 64
#define LG_REQ_MAX 1024
#define LG_MQTT_KEEPALIVE 600 /* seconds, in --mqtt CONNECTs */

enum lg_mode {
    LG_FULL,      /* a new mTLS connection per request */
    LG_RESUME,    /* same, resuming the slot's previous session */
    LG_KEEPALIVE, /* back-to-back requests on long-lived connections */
    LG_IDLE,      /* open, one request, hold for the duration */
};

enum lg_verify {
    LG_VERIFY_FIRST, /* verify the server chain on each slot's first conn */
    LG_VERIFY_ALL,
    LG_VERIFY_NONE,
};

/* Error kinds, counted separately and printed once each to stderr. */
#define LG_ERR_KINDS(X)                                                        \
    X(CONNECT, "connect")                                                      \
    X(HANDSHAKE, "handshake")                                                  \
    X(IO, "io")                                                                \
    X(EOF, "eof")                                                              \
    X(STATUS, "status")                                                        \
    X(PARSE, "parse")                                                          \
    X(TIMEOUT, "timeout")                                                      \
    X(CLOSED, "closed_while_idle")

enum lg_err {
#define LG_ERR_ENUM(e, s) LG_ERR_##e,
    LG_ERR_KINDS(LG_ERR_ENUM)
#undef LG_ERR_ENUM
        LG_ERR_COUNT
};

struct lg_opts {
    const char *host;
    int port;
    const char *sni;
    const char *ca;
    const char *cert;
    const char *key;
    enum lg_mode mode;
    int tls; /* TLS1_2_VERSION or TLS1_3_VERSION */
    bool plain;
    bool mqtt;    /* idle: an MQTT 3.1.1 CONNECT instead of a GET, CONNACK */
    long id_base; /* --mqtt: client ids bench-<id_base + slot> */
    enum lg_verify verify;
    int conns;
    int parallel; /* idle: connections being opened at once */
    double duration;
    long count;
    double warmup;
    double timeout;
    const char *path;
    pid_t pids[LG_MAX_PIDS];
    int npids;
};

/* HTTP/1.1 response reader: status line, headers, then a body framed by
 * Content-Length, chunked coding or the end of the connection. */
enum lg_resp_state {
    LG_RS_HEAD,
    LG_RS_BODY_LEN,
    LG_RS_CHUNK_SIZE,
    LG_RS_CHUNK_DATA,
    LG_RS_CHUNK_CRLF,
    LG_RS_TRAILER,
    LG_RS_BODY_EOF,
    LG_RS_DONE,
};

struct lg_resp {
    enum lg_resp_state st;
    int status;
    bool close;      /* the server said Connection: close */
    uint64_t remain; /* body or chunk bytes still expected */
    size_t hlen;     /* bytes in head (head, chunk size or trailer line) */
    char head[4096];
};

enum lg_state {
    LG_CS_FREE, /* not in use (between connections or finished) */
    LG_CS_HANDSHAKE,
    LG_CS_WRITE,
    LG_CS_READ,
    LG_CS_DRAIN, /* response read; waiting for the server's close */
    LG_CS_HOLD,  /* idle mode: holding the connection open */
};

struct lg;

struct lg_conn {
    unsigned magic;
#define LG_CONN_MAGIC 0x6c67636eU
    struct lg *g;
    int fd;
    SSL *ssl;
    BIO *wbio;         /* what ssl writes, sent by lg_conn_drive (ssl's own) */
    SSL_SESSION *sess; /* resume: owned, offered on the next connection */
    enum lg_state st;
    struct lg_resp resp;
    size_t woff;
    double t_req;    /* when the current request began */
    double deadline; /* the current step must finish by then */
    double retry_at; /* a failed slot restarts at this time (0: not due) */
    unsigned long nconn;
    bool reused;   /* the handshake resumed a session */
    char mreq[64]; /* --mqtt: this slot's CONNECT */
    size_t mreq_len;
};

enum lg_phase {
    LG_PH_WARMUP,
    LG_PH_MEASURE,
    LG_PH_DRAIN, /* no new requests; in-flight ones may finish */
    LG_PH_DONE,
};

struct lg_stats {
    uint64_t requests;
    uint64_t resumed;
    uint64_t not_resumed;
    uint64_t handshakes;
    uint64_t errors;
    uint64_t err_total;
    uint64_t err_kind[LG_ERR_COUNT];
    uint32_t *lat_us; /* owned, one per measured request */
    size_t nlat;
    size_t cap;
};

struct lg {
    struct lg_opts o;
    SSL_CTX *ctx;
    struct sockaddr_in addr;
    int ep;
    struct lg_conn *conns; /* owned, o.conns slots */
    enum lg_phase phase;
    double t_start;
    double t_measure;
    double t_stop;
    double cpu0; /* client CPU at the start of the measurement */
    double cpu1;
    double srv0; /* server CPU (sum over pids) at the same points */
    double srv1;
    /* /proc/stat jiffies per CPU at the window's edges: busy, total */
    unsigned long long busy[2][LG_MAX_CPUS], total[2][LG_MAX_CPUS];
    int ncpu;
    long opening;  /* idle: connections currently being opened */
    long held;     /* idle: connections holding */
    long launched; /* idle: connections started so far */
    bool ready;
    char req[LG_REQ_MAX];
    size_t req_len;
    bool err_seen[LG_ERR_COUNT];
    /* the suite of the first handshake (OpenSSL's static name);
     * set when a later one differs */
    const char *cipher;
    bool ciphers_differ;
    struct lg_stats s;
};

/* Monotonic seconds. */
double lg_now(void);
/* Records one failure of kind k on c (detail for the first of its kind). */
void lg_error(struct lg *g, enum lg_err k, const char *detail);
/* Called when c completed one response; sets c's next state. */
void lg_request_done(struct lg *g, struct lg_conn *c);
/* True while slots may open new connections. */
bool lg_may_start(const struct lg *g);
/* Counts one completed handshake of c. */
void lg_handshake_done(struct lg *g, struct lg_conn *c);
/* Called when a connection of c failed or ended (already closed). */
void lg_conn_ended(struct lg *g, struct lg_conn *c, bool failed);

/* Opens a new connection for slot c; on failure the slot is retried. */
void lg_conn_start(struct lg_conn *c);
/* Runs c's state machine until it would block. */
void lg_conn_drive(struct lg_conn *c);
/* Closes c's socket and SSL, keeping the saved session; state FREE. */
void lg_conn_close(struct lg_conn *c);
/* Starts the next request on an open keep-alive connection. */
void lg_conn_next(struct lg_conn *c);

/* Resets r for a new response. */
void lg_resp_init(struct lg_resp *r);
/* Feeds n bytes; returns 0 while more is needed, 1 when the response is
 * complete, -1 on a malformed response. */
int lg_resp_feed(struct lg_resp *r, const char *p, size_t n);
/* Same for an MQTT CONNACK (3.1.1: 20 02 flags rc): status 200 when the
 * return code is 0 (accepted), else 1000 + the return code. */
int lg_connack_feed(struct lg_resp *r, const char *p, size_t n);
/* Writes into buf (cap >= 64) an MQTT 3.1.1 CONNECT with clean session,
 * keep-alive keepalive seconds and client id id; returns its length. */
size_t lg_mqtt_connect(char *buf, size_t cap, const char *id, int keepalive);

/* lg_keyshare.c: while armed, X25519 key shares are the run's one pair. */
void lg_keyshare_arm(bool on);
void lg_keyshare_free(void);

#endif
