/*
 * certgate configuration: one JSON file, parsed by jansson into
 * struct cg_config, validated whole (every error reported with its JSON
 * path) before anything uses it. Pure: no sockets, no OpenSSL. Relative
 * file paths are resolved against the config file's directory.
 */
#ifndef CG_CONFIG_CONFIG_H
#define CG_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/log.h"
#include "ident/ident.h"

enum cg_listener_kind {
    CG_KIND_HTTPS,
    CG_KIND_MQTT,
    CG_KIND_TCP,
};

enum cg_auth_mode {
    CG_AUTH_OFF,
    CG_AUTH_OPTIONAL,
    CG_AUTH_REQUIRED,
    CG_AUTH_REPORT,
};

struct cg_trust_cfg {
    char *name;                  /* key in the "trust" object */
    struct cg_strlist ca_files;  /* absolute paths, PEM bundles; may be
                                    empty when builtin_ca */
    struct cg_strlist crl_files; /* absolute paths: CRL files (PEM or
                                    DER) or directories of them */
    bool builtin_ca;             /* trust the certgate CA of data_dir */
    bool stale_reject;           /* on_stale_crl "reject" (default) */
    int64_t stale_grace_ms;      /* on_stale_crl "grace:<duration>";
                                    0 with reject */
};

struct cg_client_auth_cfg {
    bool enabled;            /* "enabled" (default false) */
    enum cg_auth_mode mode;  /* "mode"; CG_AUTH_OFF when !enabled */
    char *trust;             /* name of a trust set; required when enabled */
    int verify_depth;        /* "verify_depth", default 4, 1..16 */
    bool advertise_ca_names; /* "advertise_ca_names", default true; the
                                CertificateRequest lists at most 16 names */
};

struct cg_header_map {
    char *name; /* header name as sent upstream */
    enum cg_field field;
};

enum cg_upstream_scheme {
    CG_UP_HTTP,
    CG_UP_HTTPS,
    CG_UP_UNIX,
    CG_UP_ECHO,    /* "builtin:echo": certgate answers itself with the
                      identity headers it would send upstream, as JSON */
    CG_UP_METRICS, /* "builtin:metrics": the Prometheus exposition */
    CG_UP_RESPOND, /* no upstream: the route's "respond" answer */
};

/* True for routes certgate answers itself (no upstream connection). */
#define CG_UP_LOCAL(scheme) ((scheme) >= CG_UP_ECHO)

/* Upstreams of https routes, and of mqtt/tcp listeners, where CG_UP_HTTP
 * means plain TCP ("host:port") and CG_UP_HTTPS TLS ("tls://host:port",
 * or "host:port" with an "upstream_tls" object). */
struct cg_upstream_cfg {
    char *url; /* as written */
    enum cg_upstream_scheme scheme;
    char *host;      /* http/https: host name or address */
    int port;        /* http default 80, https 443 */
    char *unix_path; /* unix: absolute path */
    /* https only ("upstream_tls" object of the route) */
    char *ca_file;     /* required for https unless verify=false */
    char *cert, *key;  /* optional client certificate */
    char *server_name; /* SNI and name checked; default host */
    bool verify;       /* default true */
};

struct cg_header_kv {
    char *name, *value;
};

/* "respond" of a route: a static answer (nginx "return", HAProxy
 * "http-request return"). */
struct cg_respond_cfg {
    int status; /* 200..599 */
    char *body; /* may be empty */
    size_t body_len;
    char *content_type;           /* default "text/plain; charset=utf-8" */
    struct cg_header_kv *headers; /* extra response headers */
    size_t n_headers;
};

struct cg_route_cfg {
    char *host; /* lowercase, no port/trailing dot; NULL = any host;
                   "*.example.com" matches one or more labels */
    char *path; /* prefix, default "/" */
    struct cg_upstream_cfg upstream; /* scheme CG_UP_RESPOND with respond */
    bool has_respond;
    struct cg_respond_cfg respond;
    struct cg_policy allow;        /* "allow" object + "require_verified" */
    struct cg_header_map *headers; /* "identity_headers" or defaults */
    size_t n_headers;
};

struct cg_timeouts {
    int64_t handshake_ms;        /* default 10 s */
    int64_t header_ms;           /* request head (mqtt: the CONNECT),
                                    default 30 s */
    int64_t idle_ms;             /* keep-alive idle (mqtt, tcp: no byte
                                    either way), default 60 s */
    int64_t upstream_connect_ms; /* default 5 s */
    int64_t upstream_read_ms;    /* default 60 s */
};

struct cg_limits {
    size_t header_bytes; /* request head, default 32 KiB */
    size_t header_count; /* default 100 */
};

struct cg_cert_cfg {
    char *cert;                     /* PEM: leaf first, then its chain */
    char *key;                      /* PEM private key */
    struct cg_strlist server_names; /* explicit SNI names; empty = take
                                       them from the certificate */
    bool has_client_auth;           /* per-name client_auth override */
    struct cg_client_auth_cfg client_auth;
};

/* peer_cert_as_username / peer_cert_as_clientid (same order as
 * enum mqtt_map_mode of src/mqtt/map.h). */
enum cg_mqtt_map {
    CG_MQTT_MAP_DISABLED,
    CG_MQTT_MAP_CN,
    CG_MQTT_MAP_DN,
    CG_MQTT_MAP_CRT,
    CG_MQTT_MAP_PEM,
    CG_MQTT_MAP_MD5,
    CG_MQTT_MAP_SHA256,
    CG_MQTT_MAP_EMAIL,
    CG_MQTT_MAP_SAN_URI,
};

/* "auth.jwt" of an mqtt listener. */
struct cg_jwt_cfg {
    char *secret;          /* HS256 shared secret (>= 32 bytes) */
    char *public_key_file; /* RS256 / ES256 public key or certificate */
    char *kid;             /* optional key id */
    char *claim;           /* claim equal to the mapped user name, "sub" */
};

/* Keys of kind "mqtt". */
struct cg_mqtt_cfg {
    enum cg_mqtt_map as_username; /* default cn */
    enum cg_mqtt_map as_clientid; /* default disabled */
    size_t max_connect_bytes;     /* default 65536 */
    bool auth_password;           /* "auth.password" */
    bool has_jwt;                 /* "auth.jwt" given */
    struct cg_jwt_cfg jwt;
};

enum cg_proxy_protocol {
    CG_PROXY_NONE,
    CG_PROXY_V2,
};

/* Keys of kind "tcp". */
struct cg_tcp_cfg {
    enum cg_proxy_protocol proxy_protocol; /* default none */
    enum cg_field *identity; /* "proxy_identity": certgate TLV fields */
    size_t n_identity;
};

struct cg_listener_cfg {
    char *name;
    enum cg_listener_kind kind;
    char *listen; /* as written: "127.0.0.1:8443", "[::1]:0", ":8443" */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct cg_cert_cfg *certs;
    size_t n_certs;
    int tls_min_version; /* 12 or 13, "tls_min_version": "1.2" | "1.3" */
    /* OpenSSL suite names in the server's order of preference (schema_tls.c
     * fills in the defaults); tls12_ciphers is empty with TLS 1.3 only */
    struct cg_strlist tls13_suites;  /* "tls13_ciphersuites" */
    struct cg_strlist tls12_ciphers; /* "tls12_ciphers" */
    struct cg_client_auth_cfg client_auth;
    struct cg_route_cfg *routes; /* https only */
    size_t n_routes;
    struct cg_strlist strip_headers; /* extra names always removed */
    struct cg_upstream_cfg upstream; /* mqtt, tcp: "upstream" */
    struct cg_mqtt_cfg mqtt;         /* kind mqtt */
    struct cg_tcp_cfg tcp;           /* kind tcp */
    struct cg_timeouts timeouts;     /* merged with the global ones */
    struct cg_limits limits;
};

struct cg_config {
    char *path;                  /* absolute path of the file */
    char *data_dir;              /* default "./certgate-data" (resolved) */
    int workers;                 /* 0 = one per core */
    char *ports_file;            /* optional: written with {"listener": port} */
    char *pid_file;              /* optional */
    enum cg_log_level log_level; /* "log": {"level": ...} */
    char *log_file;              /* NULL = stderr */
    bool access_log;             /* default true */
    int64_t drain_timeout_ms;    /* SIGTERM drain bound, default 10 s */
    struct cg_trust_cfg *trusts;
    size_t n_trusts;
    struct cg_listener_cfg *listeners;
    size_t n_listeners;
    struct cg_timeouts timeouts;
    struct cg_limits limits;
    size_t metrics_max_identities; /* "metrics": {"max_identities"},
                                      default 10000 */
    size_t session_cache_max;      /* "session_cache": {"max_entries"},
                                      default 10000, 0: no resumption */
};

/*
 * Loads and validates path. On success *out is an owned config and 0 is
 * returned. On failure returns CG_ECONFIG (or CG_EIO when the file cannot
 * be read) and appends one line per problem to errors, each
 * "<json path>: <message>" (e.g. "listeners[0].client_auth.mode: expected
 * one of off, optional, required, report"); parse errors carry
 * "line L column C". errors may be NULL.
 */
int config_load(const char *path, struct cg_config **out,
                struct cg_strlist *errors);
/* Same, from a string; base_dir resolves relative paths. */
int config_load_string(const char *json, const char *base_dir,
                       struct cg_config **out, struct cg_strlist *errors);
void config_free(struct cg_config *cfg);

const struct cg_trust_cfg *config_trust_find(const struct cg_config *cfg,
                                             const char *name);
const struct cg_listener_cfg *config_listener_find(const struct cg_config *cfg,
                                                   const char *name);

/* The default identity header set (X-Client-Verify, ...). */
const struct cg_header_map *config_default_headers(size_t *n);

/* Parses "host:port", "[v6]:port", ":port" (all addresses). */
int config_parse_addr(const char *s, struct sockaddr_storage *ss,
                      socklen_t *len);

#endif
