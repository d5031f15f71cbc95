/*
 * The configuration schema: one descriptor table per JSON object (see
 * opt.c for the engine and docs/config.md for the reference), plus the
 * rules that span several keys (client_auth, unique listeners, the merge
 * of listener timeouts and limits with the global ones).
 */
#include <assert.h>
#include <ctype.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"
#include "core/util.h"
#include "core/xmalloc.h"

/* OPT_ENUM stores through an int *. */
static_assert(sizeof(enum cg_auth_mode) == sizeof(int), "enum size");
static_assert(sizeof(enum cg_log_level) == sizeof(int), "enum size");
static_assert(sizeof(enum cg_listener_kind) == sizeof(int), "enum size");
static_assert(sizeof(enum cg_mqtt_map) == sizeof(int), "enum size");
static_assert(sizeof(enum cg_proxy_protocol) == sizeof(int), "enum size");

/* ---- value checks ---- */

bool
cfg_check_name(struct cfg_ctx *c, char *s)
{
    if (*s == '\0') {
        cfg_error(c, "name must not be empty");
        return false;
    }
    for (const char *p = s; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' &&
            *p != '-') {
            cfg_error(c,
                      "invalid name \"%s\" (allowed: letters, digits, "
                      "'_', '.', '-')",
                      s);
            return false;
        }
    }
    return true;
}

/* Headers that frame or route the request: never mapped or stripped. */
static const char *const reserved_headers[] = {
    "host", "content-length", "transfer-encoding", "connection", "upgrade",
    "te",   "trailer",        "keep-alive",
};

bool
cfg_check_header_name(struct cfg_ctx *c, char *s)
{
    if (*s == '\0') {
        cfg_error(c, "header name must not be empty");
        return false;
    }
    for (const char *p = s; *p; p++) {
        if (!isalnum((unsigned char)*p) && !strchr("!#$%&'*+-.^_`|~", *p)) {
            cfg_error(c, "invalid header name \"%s\"", s);
            return false;
        }
    }
    for (size_t i = 0; i < CG_ARRAY_LEN(reserved_headers); i++) {
        const char *r = reserved_headers[i];
        if (cg_str_ieq(s, strlen(s), r, strlen(r))) {
            cfg_error(c, "header \"%s\" cannot be used here", s);
            return false;
        }
    }
    return true;
}

/* True for one DNS label: [a-z0-9_-], 1..63 bytes, no '-' at the ends. */
static bool
label_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
            return false;
    }
    return true;
}

bool
cfg_check_host(struct cfg_ctx *c, char *s)
{
    size_t len = strlen(s);
    if (len > 1 && s[len - 1] == '.')
        s[--len] = '\0';
    for (char *p = s; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    const char *p = s;
    if (strncmp(p, "*.", 2) == 0)
        p += 2;
    bool ok = len <= 253 && *p != '\0';
    while (ok && *p) {
        size_t n = strcspn(p, ".");
        ok = label_ok(p, n) && !(p[n] == '.' && p[n + 1] == '\0');
        p += p[n] ? n + 1 : n;
    }
    if (!ok)
        cfg_error(c, "invalid host name \"%s\"%s", s,
                  strchr(s, ':')   ? " (no port here)"
                  : strchr(s, '*') ? " (\"*.\" only as the first label)"
                                   : "");
    return ok;
}

static bool
check_path(struct cfg_ctx *c, char *s)
{
    if (s[0] != '/') {
        cfg_error(c, "must start with '/'");
        return false;
    }
    if (strpbrk(s, " ?#") != NULL) {
        cfg_error(c, "must not contain spaces, '?' or '#'");
        return false;
    }
    return true;
}

static bool
check_serial(struct cfg_ctx *c, char *s)
{
    for (const char *p = s; *p; p++) {
        if (!isxdigit((unsigned char)*p) && *p != ':') {
            cfg_error(c, "invalid serial \"%s\" (expected hex digits)", s);
            return false;
        }
    }
    return true;
}

/* ---- timeouts, limits (global, and per listener with OPT_INHERIT) ---- */

#define MS(k, f, d)                                                            \
    {                                                                          \
        .key = k, .type = OPT_MS, .off = offsetof(struct cg_timeouts, f),      \
        .def = (d)                                                             \
    }
static const struct opt timeouts_opts[] = {
    MS("handshake", handshake_ms, 10000),
    MS("header", header_ms, 30000),
    MS("idle", idle_ms, 60000),
    MS("upstream_connect", upstream_connect_ms, 5000),
    MS("upstream_read", upstream_read_ms, 60000),
};
TABLE(timeouts, NULL);

static const struct opt limits_opts[] = {
    {.key = "header_bytes",
     .type = OPT_SIZE,
     .off = offsetof(struct cg_limits, header_bytes),
     .def = 32768,
     .min = 1024,
     .max = 1048576},
    {.key = "header_count",
     .type = OPT_SIZE,
     .off = offsetof(struct cg_limits, header_count),
     .def = 100,
     .min = 8,
     .max = 1000},
};
TABLE(limits, NULL);

/* ---- client_auth ---- */

static const struct opt_choice auth_modes[] = {
    {"off", CG_AUTH_OFF},
    {"optional", CG_AUTH_OPTIONAL},
    {"required", CG_AUTH_REQUIRED},
    {"report", CG_AUTH_REPORT},
    {NULL, 0},
};

/* Lists the trust set names for an error message. */
static void
trust_names(const struct cg_config *cfg, struct cg_buf *b)
{
    for (size_t i = 0; i < cfg->n_trusts; i++)
        cg_buf_printf(b, "%s%s", i ? ", " : "", cfg->trusts[i].name);
    if (cfg->n_trusts == 0)
        cg_buf_puts(b, "(none)");
}

/* enabled/mode/trust agree; the trust set exists. */
static void
client_auth_post(struct cfg_ctx *c, json_t *obj, void *base)
{
    struct cg_client_auth_cfg *ca = base;
    bool has_mode = obj && json_object_get(obj, "mode");
    /* "mode": "off" switches client auth off whatever "enabled" says, so
     * one key is enough to flip the switch on a reload */
    if (has_mode && ca->mode == CG_AUTH_OFF)
        ca->enabled = false;
    if (!ca->enabled)
        ca->mode = CG_AUTH_OFF;
    if (ca->enabled && ca->trust == NULL &&
        !(obj && json_object_get(obj, "trust")))
        cfg_error_at(c, "trust", "required when enabled is true");
    if (ca->trust != NULL && config_trust_find(c->cfg, ca->trust) == NULL) {
        struct cg_buf b;
        cg_buf_init(&b);
        trust_names(c->cfg, &b);
        cfg_error_at(c, "trust", "unknown trust set \"%s\"; defined: %s",
                     ca->trust, cg_buf_cstr(&b));
        cg_buf_cleanup(&b);
    }
}

#define CA_OFF(f) offsetof(struct cg_client_auth_cfg, f)
static const struct opt client_auth_opts[] = {
    {.key = "enabled", .type = OPT_BOOL, .off = CA_OFF(enabled)},
    /* The default only matters when enabled: post sets OFF otherwise. */
    {.key = "mode",
     .type = OPT_ENUM,
     .off = CA_OFF(mode),
     .def = CG_AUTH_REQUIRED,
     .choices = auth_modes},
    {.key = "trust", .type = OPT_STR, .off = CA_OFF(trust)},
    {.key = "verify_depth",
     .type = OPT_INT,
     .off = CA_OFF(verify_depth),
     .def = 4,
     .min = 1,
     .max = 16},
    {.key = "advertise_ca_names",
     .type = OPT_BOOL,
     .off = CA_OFF(advertise_ca_names),
     .def = 1},
};
TABLE(client_auth, client_auth_post);

/* A certificate's own client_auth: has_client_auth says it was given. */
static void
parse_cert_auth(struct cfg_ctx *c, const struct opt *o, json_t *v, void *base)
{
    struct cg_cert_cfg *cc = base;
    (void)o;
    cc->has_client_auth = v != NULL;
    opt_apply(c, &client_auth, v, &cc->client_auth, false);
}

static void
release_cert_auth(const struct opt *o, void *base)
{
    struct cg_cert_cfg *cc = base;
    (void)o;
    opt_release(&client_auth, &cc->client_auth);
}

/* ---- certificates ---- */

#define CERT_OFF(f) offsetof(struct cg_cert_cfg, f)
static const struct opt cert_opts[] = {
    {.key = "cert",
     .type = OPT_PATH,
     .flags = OPT_REQUIRED,
     .off = CERT_OFF(cert)},
    {.key = "key",
     .type = OPT_PATH,
     .flags = OPT_REQUIRED,
     .off = CERT_OFF(key)},
    {.key = "server_names",
     .type = OPT_STRLIST,
     .off = CERT_OFF(server_names),
     .check = cfg_check_host},
    {.key = "client_auth",
     .type = OPT_CUSTOM,
     .parse = parse_cert_auth,
     .release = release_cert_auth},
};
TABLE(cert, NULL);

/* ---- routes ---- */

#define POL_OFF(f)                                                             \
    (offsetof(struct cg_route_cfg, allow) + offsetof(struct cg_policy, f))
#define POL(k, f, chk)                                                         \
    {                                                                          \
        .key = k, .type = OPT_STRLIST, .off = offsetof(struct cg_policy, f),   \
        .check = chk                                                           \
    }
static const struct opt allow_opts[] = {
    POL("cn", cn, NULL),
    POL("ou", ou, NULL),
    POL("o", o, NULL),
    POL("email", email, NULL),
    POL("email_domain", email_domain, NULL),
    POL("san_uri_prefix", san_uri_prefix, NULL),
    POL("issuer_dn", issuer_dn, NULL),
    POL("serial", serial, check_serial),
};
TABLE(allow, NULL);

#define UP_OFF(f) offsetof(struct cg_upstream_cfg, f)
static const struct opt upstream_tls_opts[] = {
    {.key = "ca_file", .type = OPT_PATH, .off = UP_OFF(ca_file)},
    {.key = "cert", .type = OPT_PATH, .off = UP_OFF(cert)},
    {.key = "key", .type = OPT_PATH, .off = UP_OFF(key)},
    {.key = "server_name", .type = OPT_STR, .off = UP_OFF(server_name)},
    {.key = "verify", .type = OPT_BOOL, .off = UP_OFF(verify), .def = 1},
};
TABLE(upstream_tls, NULL);

#define ROUTE_OFF(f) offsetof(struct cg_route_cfg, f)
static const struct opt route_opts[] = {
    {.key = "host",
     .type = OPT_STR,
     .off = ROUTE_OFF(host),
     .check = cfg_check_host},
    {.key = "path",
     .type = OPT_STR,
     .off = ROUTE_OFF(path),
     .def_str = "/",
     .check = check_path},
    /* upstream or respond (cfg_route_post, which also needs the scheme
       for upstream_tls) */
    {.key = "upstream",
     .type = OPT_CUSTOM,
     .parse = cfg_parse_upstream,
     .release = cfg_release_upstream},
    {.key = "upstream_tls",
     .type = OPT_OBJECT,
     .off = ROUTE_OFF(upstream),
     .sub = &upstream_tls},
    {.key = "respond",
     .type = OPT_CUSTOM,
     .parse = cfg_parse_respond,
     .release = cfg_release_respond},
    {.key = "require_verified",
     .type = OPT_BOOL,
     .off = POL_OFF(require_verified)},
    {.key = "allow",
     .type = OPT_OBJECT,
     .off = ROUTE_OFF(allow),
     .sub = &allow},
    {.key = "identity_headers",
     .type = OPT_CUSTOM,
     .parse = cfg_parse_headers,
     .release = cfg_release_headers},
};
TABLE(route, cfg_route_post);

/* ---- listeners ---- */

static void
parse_listen(struct cfg_ctx *c, const struct opt *o, json_t *v, void *base)
{
    struct cg_listener_cfg *l = base;
    (void)o;
    const char *s = v ? cfg_get_str(c, v) : NULL;
    if (s == NULL)
        return;
    if (config_parse_addr(s, &l->addr, &l->addrlen) != 0) {
        cfg_error(c,
                  "invalid address \"%s\" (expected \"host:port\", "
                  "\"[v6]:port\" or \":port\")",
                  s);
        return;
    }
    l->listen = xstrdup(s);
}

static void
release_listen(const struct opt *o, void *base)
{
    struct cg_listener_cfg *l = base;
    (void)o;
    XFREE(&l->listen);
}

static const struct opt_choice kinds[] = {
    {"https", CG_KIND_HTTPS},
    {"mqtt", CG_KIND_MQTT},
    {"tcp", CG_KIND_TCP},
    {NULL, 0},
};
static const struct opt_choice tls_versions[] = {
    {"1.2", 12},
    {"1.3", 13},
    {NULL, 0},
};

/* Keys that only some kinds take. */
static const struct {
    const char *key;
    unsigned kinds; /* bit (1 << kind) */
} kind_keys[] = {
    {"routes", 1u << CG_KIND_HTTPS},
    {"strip_headers", 1u << CG_KIND_HTTPS},
    {"upstream", (1u << CG_KIND_MQTT) | (1u << CG_KIND_TCP)},
    {"upstream_tls", (1u << CG_KIND_MQTT) | (1u << CG_KIND_TCP)},
    {"peer_cert_as_username", 1u << CG_KIND_MQTT},
    {"peer_cert_as_clientid", 1u << CG_KIND_MQTT},
    {"max_connect_bytes", 1u << CG_KIND_MQTT},
    {"auth", 1u << CG_KIND_MQTT},
    {"proxy_protocol", 1u << CG_KIND_TCP},
    {"proxy_identity", 1u << CG_KIND_TCP},
};

static const char *const kind_names[] = {"https", "mqtt", "tcp"};

/* Per-kind keys: refused on other kinds; routes (https) and upstream
 * (mqtt, tcp) required. */
static void
listener_post(struct cfg_ctx *c, json_t *obj, void *base)
{
    struct cg_listener_cfg *l = base;
    json_t *kind = obj ? json_object_get(obj, "kind") : NULL;
    if (kind == NULL || !json_is_string(kind) ||
        (l->kind == CG_KIND_HTTPS &&
         strcmp(json_string_value(kind), "https") != 0))
        return; /* missing or invalid kind: reported already */
    for (size_t i = 0; i < CG_ARRAY_LEN(kind_keys); i++) {
        if (!(kind_keys[i].kinds & (1u << l->kind)) &&
            json_object_get(obj, kind_keys[i].key) != NULL)
            cfg_error_at(c, kind_keys[i].key, "not allowed for kind %s",
                         kind_names[l->kind]);
    }
    cfg_tls_suites_post(c, obj, l);
    const char *need = l->kind == CG_KIND_HTTPS ? "routes" : "upstream";
    if (json_object_get(obj, need) == NULL)
        cfg_error_at(c, need, "required");
    if (l->kind != CG_KIND_HTTPS)
        cfg_relay_upstream_post(c, obj, &l->upstream);
}

#define L_OFF(f) offsetof(struct cg_listener_cfg, f)
static const struct opt listener_opts[] = {
    {.key = "name",
     .type = OPT_STR,
     .flags = OPT_REQUIRED,
     .off = L_OFF(name),
     .check = cfg_check_name},
    {.key = "kind",
     .type = OPT_ENUM,
     .flags = OPT_REQUIRED,
     .off = L_OFF(kind),
     .choices = kinds},
    {.key = "listen",
     .type = OPT_CUSTOM,
     .flags = OPT_REQUIRED,
     .parse = parse_listen,
     .release = release_listen},
    {.key = "tls_min_version",
     .type = OPT_ENUM,
     .off = L_OFF(tls_min_version),
     .def = 12,
     .choices = tls_versions},
    {.key = "tls13_ciphersuites",
     .type = OPT_STRLIST,
     .flags = OPT_NONEMPTY,
     .off = L_OFF(tls13_suites),
     .check = cfg_check_tls13_suite},
    {.key = "tls12_ciphers",
     .type = OPT_STRLIST,
     .flags = OPT_NONEMPTY,
     .off = L_OFF(tls12_ciphers),
     .check = cfg_check_tls12_cipher},
    {.key = "certificates",
     .type = OPT_ARRAY,
     .flags = OPT_REQUIRED | OPT_NONEMPTY,
     .off = L_OFF(certs),
     .count_off = L_OFF(n_certs),
     .elem_size = sizeof(struct cg_cert_cfg),
     .sub = &cert},
    {.key = "client_auth",
     .type = OPT_OBJECT,
     .off = L_OFF(client_auth),
     .sub = &client_auth},
    {.key = "timeouts",
     .type = OPT_OBJECT,
     .flags = OPT_INHERIT,
     .off = L_OFF(timeouts),
     .sub = &timeouts},
    {.key = "limits",
     .type = OPT_OBJECT,
     .flags = OPT_INHERIT,
     .off = L_OFF(limits),
     .sub = &limits},
    {.key = "strip_headers",
     .type = OPT_STRLIST,
     .off = L_OFF(strip_headers),
     .check = cfg_check_header_name},
    /* https: required (listener_post) */
    {.key = "routes",
     .type = OPT_ARRAY,
     .flags = OPT_NONEMPTY,
     .off = L_OFF(routes),
     .count_off = L_OFF(n_routes),
     .elem_size = sizeof(struct cg_route_cfg),
     .sub = &route},
    /* mqtt, tcp: required (listener_post) */
    {.key = "upstream",
     .type = OPT_CUSTOM,
     .parse = cfg_parse_relay_upstream,
     .release = cfg_release_relay_upstream},
    {.key = "upstream_tls",
     .type = OPT_OBJECT,
     .off = L_OFF(upstream),
     .sub = &upstream_tls},
    {.key = "peer_cert_as_username",
     .type = OPT_ENUM,
     .off = L_OFF(mqtt.as_username),
     .def = CG_MQTT_MAP_CN,
     .choices = cfg_mqtt_maps},
    {.key = "peer_cert_as_clientid",
     .type = OPT_ENUM,
     .off = L_OFF(mqtt.as_clientid),
     .def = CG_MQTT_MAP_DISABLED,
     .choices = cfg_mqtt_maps},
    {.key = "max_connect_bytes",
     .type = OPT_SIZE,
     .off = L_OFF(mqtt.max_connect_bytes),
     .def = 65536,
     .min = 128,
     .max = 16777216},
    {.key = "auth",
     .type = OPT_OBJECT,
     .off = L_OFF(mqtt),
     .sub = &cfg_mqtt_auth},
    {.key = "proxy_protocol",
     .type = OPT_ENUM,
     .off = L_OFF(tcp.proxy_protocol),
     .def = CG_PROXY_NONE,
     .choices = cfg_proxy_protocols},
    {.key = "proxy_identity",
     .type = OPT_CUSTOM,
     .parse = cfg_parse_proxy_identity,
     .release = cfg_release_proxy_identity},
};
TABLE(listener, listener_post);

/* ---- top level ---- */

static bool
same_addr(const struct cg_listener_cfg *a, const struct cg_listener_cfg *b)
{
    return a->addrlen > 0 && a->addrlen == b->addrlen &&
           memcmp(&a->addr, &b->addr, a->addrlen) == 0;
}

/* Port 0 asks the kernel for a fresh port: never a conflict. */
static bool
port_zero(const struct cg_listener_cfg *l)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&l->addr;
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&l->addr;
    return l->addr.ss_family == AF_INET6 ? sin6->sin6_port == 0
                                         : sin->sin_port == 0;
}

/* Reports listener i when an earlier one has its name or address. */
static void
check_unique(struct cfg_ctx *c, const struct cg_config *cfg, size_t i)
{
    const struct cg_listener_cfg *l = &cfg->listeners[i];
    const struct cg_listener_cfg *by_name = NULL, *by_addr = NULL;
    for (size_t j = 0; j < i; j++) {
        const struct cg_listener_cfg *p = &cfg->listeners[j];
        if (!by_name && l->name && p->name && strcmp(l->name, p->name) == 0)
            by_name = p;
        if (!by_addr && same_addr(l, p) && !port_zero(l))
            by_addr = p;
    }
    size_t mark = cfg_push_key(c, "listeners");
    cfg_push_index(c, i);
    if (by_name != NULL)
        cfg_error_at(c, "name", "duplicate listener name \"%s\"", l->name);
    if (by_addr != NULL)
        cfg_error_at(c, "listen",
                     "address \"%s\" already used by listener \"%s\"",
                     l->listen, by_addr->name ? by_addr->name : "?");
    cfg_pop(c, mark);
}

/* True when the listener binds a loopback address only. */
static bool
loopback(const struct cg_listener_cfg *l)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&l->addr;
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&l->addr;
    if (l->addr.ss_family == AF_INET)
        return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
    return l->addr.ss_family == AF_INET6 &&
           IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
}

/* True when every virtual host of l requires a verified certificate. */
static bool
all_required(const struct cg_listener_cfg *l)
{
    bool ok = l->client_auth.mode == CG_AUTH_REQUIRED;
    for (size_t i = 0; i < l->n_certs; i++) {
        if (l->certs[i].has_client_auth)
            ok &= l->certs[i].client_auth.mode == CG_AUTH_REQUIRED;
    }
    return ok;
}

/* builtin:metrics shows certificate identities and CRL state: only to
 * a verified certificate, or on a loopback listener. */
static void
check_metrics_routes(struct cfg_ctx *c, const struct cg_listener_cfg *l,
                     size_t i)
{
    if (loopback(l) || all_required(l))
        return;
    for (size_t j = 0; j < l->n_routes; j++) {
        const struct cg_route_cfg *r = &l->routes[j];
        if (r->upstream.scheme != CG_UP_METRICS ||
            !ident_policy_is_open(&r->allow))
            continue;
        size_t mark = cfg_push_key(c, "listeners");
        cfg_push_index(c, i);
        cfg_push_key(c, "routes");
        cfg_push_index(c, j);
        cfg_error_at(c, "upstream",
                     "builtin:metrics would be open to clients without a "
                     "verified certificate: set require_verified or allow "
                     "on this route, client_auth mode required on the "
                     "listener, or listen on a loopback address");
        cfg_pop(c, mark);
    }
}

/* Unique listener names and addresses; listeners inherit the global
 * timeouts and limits they leave unset (the one merge step). */
static void
config_post(struct cfg_ctx *c, json_t *obj, void *base)
{
    struct cg_config *cfg = base;
    (void)obj;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        struct cg_listener_cfg *l = &cfg->listeners[i];
        opt_merge(&timeouts, &l->timeouts, &cfg->timeouts);
        opt_merge(&limits, &l->limits, &cfg->limits);
        check_unique(c, cfg, i);
        check_metrics_routes(c, l, i);
    }
}

static const struct opt_choice log_levels[] = {
    {"debug", CG_LOG_DEBUG},
    {"info", CG_LOG_INFO},
    {"warn", CG_LOG_WARN},
    {"error", CG_LOG_ERROR},
    {NULL, 0},
};

#define CFG_OFF(f) offsetof(struct cg_config, f)
static const struct opt logging_opts[] = {
    {.key = "level",
     .type = OPT_ENUM,
     .off = CFG_OFF(log_level),
     .def = CG_LOG_INFO,
     .choices = log_levels},
    {.key = "file", .type = OPT_PATH, .off = CFG_OFF(log_file)},
    {.key = "access", .type = OPT_BOOL, .off = CFG_OFF(access_log), .def = 1},
};
TABLE(logging, NULL);

static const struct opt metrics_opts[] = {
    {.key = "max_identities",
     .type = OPT_SIZE,
     .off = CFG_OFF(metrics_max_identities),
     .def = 10000,
     .min = 0,
     .max = 1000000},
};
TABLE(metrics, NULL);

static const struct opt session_cache_opts[] = {
    {.key = "max_entries",
     .type = OPT_SIZE,
     .off = CFG_OFF(session_cache_max),
     .def = 10000,
     .min = 0,
     .max = 1000000},
};
TABLE(session_cache, NULL);

static const struct opt config_opts[] = {
    {.key = "data_dir",
     .type = OPT_PATH,
     .off = CFG_OFF(data_dir),
     .def_str = "./certgate-data"},
    {.key = "workers",
     .type = OPT_INT,
     .off = CFG_OFF(workers),
     .min = 0,
     .max = 256},
    {.key = "ports_file", .type = OPT_PATH, .off = CFG_OFF(ports_file)},
    {.key = "pid_file", .type = OPT_PATH, .off = CFG_OFF(pid_file)},
    /* log keys live in struct cg_config itself. */
    {.key = "log", .type = OPT_OBJECT, .off = 0, .sub = &logging},
    {.key = "drain_timeout",
     .type = OPT_MS,
     .off = CFG_OFF(drain_timeout_ms),
     .def = 10000},
    {.key = "timeouts",
     .type = OPT_OBJECT,
     .off = CFG_OFF(timeouts),
     .sub = &timeouts},
    {.key = "limits",
     .type = OPT_OBJECT,
     .off = CFG_OFF(limits),
     .sub = &limits},
    /* metrics keys live in struct cg_config itself. */
    {.key = "metrics", .type = OPT_OBJECT, .off = 0, .sub = &metrics},
    /* session cache keys live in struct cg_config itself. */
    {.key = "session_cache",
     .type = OPT_OBJECT,
     .off = 0,
     .sub = &session_cache},
    /* Before listeners: client_auth looks trust sets up. */
    {.key = "trust",
     .type = OPT_CUSTOM,
     .parse = cfg_parse_trusts,
     .release = cfg_release_trusts},
    {.key = "listeners",
     .type = OPT_ARRAY,
     .off = CFG_OFF(listeners),
     .count_off = CFG_OFF(n_listeners),
     .elem_size = sizeof(struct cg_listener_cfg),
     .sub = &listener},
};
const struct opt_table cfg_schema = {config_opts, CG_ARRAY_LEN(config_opts),
                                     config_post};
