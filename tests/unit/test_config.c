/*
 * Unit tests of src/config: the schema, its defaults, the merge step and
 * every class of error, each checked as the exact "path: message" line a
 * user would read. JSON is written with ' for " (see jq) to stay legible.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "core/err.h"
#include "core/util.h"
#include "core/xmalloc.h"

#define BASE "/base"

/* Pieces of a valid config; tests splice one change into them. */
#define TRUST                                                                  \
    "'trust':{'staff':{'ca_files':['pki/staff.pem']},"                         \
    "'devices':{'ca_files':['/pki/dev.pem']}},"
#define CERTS "'certificates':[{'cert':'c.pem','key':'k.pem'}]"
#define UP "'upstream':'http://127.0.0.1:8080'"
#define LST(name, addr, lx, rx)                                                \
    "{'name':'" name "','kind':'https','listen':'" addr "'," CERTS lx          \
    ",'routes':[{" UP rx "}]}"
/* top: top-level keys ending in ','; lx: listener keys starting with ',';
 * rx: route keys starting with ','. */
/* Two or three listeners after top-level keys top. */
#define L2(top, a, b) "{" top "'listeners':[" a "," b "]}"
#define L3(a, b, c) "{'listeners':[" a "," b "," c "]}"
#define CFG(top, lx, rx)                                                       \
    "{" top "'listeners':[" LST("web", "127.0.0.1:8443", lx, rx) "]}"

/* Returns an owned copy of s with every ' turned into ". */
static char *
jq(const char *s)
{
    char *r = xstrdup(s);
    for (char *p = r; *p; p++) {
        if (*p == '\'')
            *p = '"';
    }
    return r;
}

static void
dump(const struct cg_strlist *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        print_message("  error: %s\n", errs->v[i]);
}

/* Loads a config that must be valid (base dir BASE). */
static struct cg_config *
load_ok(const char *sq)
{
    char *json = jq(sq);
    struct cg_config *cfg = NULL;
    struct cg_strlist errs = {0};
    int rc = config_load_string(json, BASE, &cfg, &errs);
    if (rc != 0)
        dump(&errs);
    assert_int_equal(rc, 0);
    assert_int_equal(errs.n, 0);
    assert_non_null(cfg);
    cg_strlist_clear(&errs);
    free(json);
    return cfg;
}

/* Loads an invalid config: exactly the wanted lines, in any order. */
static void
expect_errors(const char *sq, const char *const *want, size_t n)
{
    char *json = jq(sq);
    struct cg_config *cfg = NULL;
    struct cg_strlist errs = {0};
    int rc = config_load_string(json, BASE, &cfg, &errs);
    assert_int_equal(rc, CG_ECONFIG);
    assert_null(cfg);
    bool ok = errs.n == n;
    for (size_t i = 0; ok && i < n; i++)
        ok = cg_strlist_contains(&errs, want[i]);
    if (!ok) {
        for (size_t i = 0; i < n; i++)
            print_message("  want:  %s\n", want[i]);
        dump(&errs);
    }
    assert_true(ok);
    cg_strlist_clear(&errs);
    free(json);
}

#define EXPECT_ERR(json, ...)                                                  \
    do {                                                                       \
        const char *const want_[] = {__VA_ARGS__};                             \
        expect_errors(json, want_, CG_ARRAY_LEN(want_));                       \
    } while (0)

static int
port_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

static void
test_minimal_defaults(void **state)
{
    (void)state;
    struct cg_config *cfg = load_ok(CFG("", "", ""));
    assert_null(cfg->path);
    assert_string_equal(cfg->data_dir, "/base/certgate-data");
    assert_int_equal(cfg->workers, 0);
    assert_null(cfg->ports_file);
    assert_null(cfg->pid_file);
    assert_int_equal(cfg->log_level, CG_LOG_INFO);
    assert_null(cfg->log_file);
    assert_true(cfg->access_log);
    assert_int_equal(cfg->drain_timeout_ms, 10000);
    assert_int_equal(cfg->timeouts.handshake_ms, 10000);
    assert_int_equal(cfg->timeouts.header_ms, 30000);
    assert_int_equal(cfg->timeouts.idle_ms, 60000);
    assert_int_equal(cfg->timeouts.upstream_connect_ms, 5000);
    assert_int_equal(cfg->timeouts.upstream_read_ms, 60000);
    assert_int_equal(cfg->limits.header_bytes, 32768);
    assert_int_equal(cfg->limits.header_count, 100);
    assert_int_equal(cfg->n_trusts, 0);
    assert_int_equal(cfg->n_listeners, 1);

    const struct cg_listener_cfg *l = &cfg->listeners[0];
    assert_string_equal(l->name, "web");
    assert_int_equal(l->kind, CG_KIND_HTTPS);
    assert_string_equal(l->listen, "127.0.0.1:8443");
    assert_int_equal(l->addr.ss_family, AF_INET);
    assert_int_equal(l->addrlen, sizeof(struct sockaddr_in));
    assert_int_equal(port_of(&l->addr), 8443);
    assert_int_equal(l->tls_min_version, 12);
    assert_int_equal(l->n_certs, 1);
    assert_string_equal(l->certs[0].cert, "/base/c.pem");
    assert_string_equal(l->certs[0].key, "/base/k.pem");
    assert_int_equal(l->certs[0].server_names.n, 0);
    assert_false(l->certs[0].has_client_auth);
    assert_false(l->client_auth.enabled);
    assert_int_equal(l->client_auth.mode, CG_AUTH_OFF);
    assert_null(l->client_auth.trust);
    assert_int_equal(l->client_auth.verify_depth, 4);
    assert_true(l->client_auth.advertise_ca_names);
    assert_int_equal(l->strip_headers.n, 0);
    assert_memory_equal(&l->timeouts, &cfg->timeouts, sizeof(l->timeouts));
    assert_memory_equal(&l->limits, &cfg->limits, sizeof(l->limits));

    assert_int_equal(l->n_routes, 1);
    const struct cg_route_cfg *r = &l->routes[0];
    assert_null(r->host);
    assert_string_equal(r->path, "/");
    assert_string_equal(r->upstream.url, "http://127.0.0.1:8080");
    assert_int_equal(r->upstream.scheme, CG_UP_HTTP);
    assert_string_equal(r->upstream.host, "127.0.0.1");
    assert_int_equal(r->upstream.port, 8080);
    assert_null(r->upstream.unix_path);
    assert_null(r->upstream.ca_file);
    assert_null(r->upstream.server_name);
    assert_true(r->upstream.verify);
    assert_true(ident_policy_is_open(&r->allow));

    size_t nd;
    const struct cg_header_map *def = config_default_headers(&nd);
    assert_int_equal(nd, 9);
    assert_int_equal(r->n_headers, nd);
    for (size_t i = 0; i < nd; i++) {
        assert_string_equal(r->headers[i].name, def[i].name);
        assert_int_equal(r->headers[i].field, def[i].field);
    }
    config_free(cfg);

    /* No listeners at all is valid too (CA commands use data_dir). */
    cfg = load_ok("{}");
    assert_int_equal(cfg->n_listeners, 0);
    assert_string_equal(cfg->data_dir, "/base/certgate-data");
    config_free(cfg);
}

static void
test_default_headers(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        enum cg_field f;
    } want[] = {
        {"X-Client-Verify", CG_F_VERIFY},
        {"X-Client-Cert-Subject", CG_F_DN},
        {"X-Client-Cert-Issuer", CG_F_ISSUER_DN},
        {"X-Client-Cert-Serial", CG_F_SERIAL},
        {"X-Client-Cert-Fingerprint-SHA256", CG_F_SHA256},
        {"X-Client-Cert-CN", CG_F_CN},
        {"X-Client-Cert-Email", CG_F_EMAIL},
        {"X-Client-Cert-Not-After", CG_F_NOT_AFTER},
        {"Client-Cert", CG_F_CLIENT_CERT},
    };
    size_t n;
    const struct cg_header_map *h = config_default_headers(&n);
    assert_int_equal(n, CG_ARRAY_LEN(want));
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(h[i].name, want[i].name);
        assert_int_equal(h[i].field, want[i].f);
    }
}

static const char full_config[] =
    "{'data_dir':'/var/lib/certgate','workers':4,'ports_file':'ports.json',"
    "'pid_file':'run/certgate.pid',"
    "'log':{'level':'debug','file':'log/certgate.log','access':false},"
    "'drain_timeout':2.5,"
    "'timeouts':{'handshake':'5s','header':'20s','idle':'2m',"
    "'upstream_connect':'500ms','upstream_read':90},"
    "'limits':{'header_bytes':65536,'header_count':50}," TRUST
    "'listeners':[{'name':'web','kind':'https','listen':'[::1]:0',"
    "'tls_min_version':'1.3',"
    "'certificates':[{'cert':'tls/web.pem','key':'tls/web.key',"
    "'server_names':['App.Example.com.','*.example.com']},"
    "{'cert':'tls/dev.pem','key':'tls/dev.key','server_names':['dev.local'],"
    "'client_auth':{'enabled':true,'trust':'devices','verify_depth':2}}],"
    "'client_auth':{'enabled':true,'mode':'optional','trust':'staff',"
    "'verify_depth':8,'advertise_ca_names':false},"
    "'timeouts':{'idle':'30s'},'limits':{'header_count':200},"
    "'strip_headers':['X-Remote-User','X-Forwarded-User'],"
    "'routes':[{'host':'App.Example.COM','path':'/api',"
    "'upstream':'https://[2001:db8::1]:8443',"
    "'upstream_tls':{'ca_file':'pki/up.pem','cert':'pki/gw.pem',"
    "'key':'pki/gw.key','server_name':'api.internal','verify':true},"
    "'require_verified':true,"
    "'allow':{'cn':['alice'],'ou':['ops'],'o':['Example'],"
    "'email':['a@example.com'],'email_domain':['example.com'],"
    "'san_uri_prefix':['spiffe://example/'],'issuer_dn':['CN=Staff CA'],"
    "'serial':['0A:0B','ff']},"
    "'identity_headers':{'X-Client-CN':'cn','X-Client-Email':'email',"
    "'X-Client-PEM':'pem_urlencoded'}},"
    "{'host':'*.example.com','upstream':'unix:run/app.sock',"
    "'identity_headers':{}},"
    "{'upstream':'https://backend:9443','upstream_tls':{'verify':false}}]}]}";

static void
test_full(void **state)
{
    (void)state;
    struct cg_config *cfg = load_ok(full_config);
    assert_string_equal(cfg->data_dir, "/var/lib/certgate");
    assert_int_equal(cfg->workers, 4);
    assert_string_equal(cfg->ports_file, "/base/ports.json");
    assert_string_equal(cfg->pid_file, "/base/run/certgate.pid");
    assert_int_equal(cfg->log_level, CG_LOG_DEBUG);
    assert_string_equal(cfg->log_file, "/base/log/certgate.log");
    assert_false(cfg->access_log);
    assert_int_equal(cfg->drain_timeout_ms, 2500);
    assert_int_equal(cfg->timeouts.handshake_ms, 5000);
    assert_int_equal(cfg->timeouts.header_ms, 20000);
    assert_int_equal(cfg->timeouts.idle_ms, 120000);
    assert_int_equal(cfg->timeouts.upstream_connect_ms, 500);
    assert_int_equal(cfg->timeouts.upstream_read_ms, 90000);
    assert_int_equal(cfg->limits.header_bytes, 65536);
    assert_int_equal(cfg->limits.header_count, 50);

    assert_int_equal(cfg->n_trusts, 2);
    assert_string_equal(cfg->trusts[0].name, "staff");
    assert_int_equal(cfg->trusts[0].ca_files.n, 1);
    assert_string_equal(cfg->trusts[0].ca_files.v[0], "/base/pki/staff.pem");
    assert_string_equal(cfg->trusts[1].name, "devices");
    assert_string_equal(cfg->trusts[1].ca_files.v[0], "/pki/dev.pem");

    const struct cg_listener_cfg *l = &cfg->listeners[0];
    assert_string_equal(l->listen, "[::1]:0");
    assert_int_equal(l->addr.ss_family, AF_INET6);
    assert_int_equal(port_of(&l->addr), 0);
    assert_int_equal(l->tls_min_version, 13);
    assert_int_equal(l->n_certs, 2);
    assert_string_equal(l->certs[0].cert, "/base/tls/web.pem");
    assert_int_equal(l->certs[0].server_names.n, 2);
    assert_string_equal(l->certs[0].server_names.v[0], "app.example.com");
    assert_string_equal(l->certs[0].server_names.v[1], "*.example.com");
    assert_false(l->certs[0].has_client_auth);
    assert_true(l->certs[1].has_client_auth);
    assert_true(l->certs[1].client_auth.enabled);
    assert_int_equal(l->certs[1].client_auth.mode, CG_AUTH_REQUIRED);
    assert_string_equal(l->certs[1].client_auth.trust, "devices");
    assert_int_equal(l->certs[1].client_auth.verify_depth, 2);
    assert_true(l->client_auth.enabled);
    assert_int_equal(l->client_auth.mode, CG_AUTH_OPTIONAL);
    assert_string_equal(l->client_auth.trust, "staff");
    assert_int_equal(l->client_auth.verify_depth, 8);
    assert_false(l->client_auth.advertise_ca_names);
    assert_int_equal(l->timeouts.idle_ms, 30000);
    assert_int_equal(l->timeouts.handshake_ms, 5000);
    assert_int_equal(l->limits.header_count, 200);
    assert_int_equal(l->limits.header_bytes, 65536);
    assert_int_equal(l->strip_headers.n, 2);
    assert_string_equal(l->strip_headers.v[1], "X-Forwarded-User");

    assert_int_equal(l->n_routes, 3);
    const struct cg_route_cfg *r = &l->routes[0];
    assert_string_equal(r->host, "app.example.com");
    assert_string_equal(r->path, "/api");
    assert_int_equal(r->upstream.scheme, CG_UP_HTTPS);
    assert_string_equal(r->upstream.host, "2001:db8::1");
    assert_int_equal(r->upstream.port, 8443);
    assert_string_equal(r->upstream.ca_file, "/base/pki/up.pem");
    assert_string_equal(r->upstream.cert, "/base/pki/gw.pem");
    assert_string_equal(r->upstream.key, "/base/pki/gw.key");
    assert_string_equal(r->upstream.server_name, "api.internal");
    assert_true(r->upstream.verify);
    assert_true(r->allow.require_verified);
    assert_string_equal(r->allow.cn.v[0], "alice");
    assert_string_equal(r->allow.ou.v[0], "ops");
    assert_string_equal(r->allow.o.v[0], "Example");
    assert_string_equal(r->allow.email.v[0], "a@example.com");
    assert_string_equal(r->allow.email_domain.v[0], "example.com");
    assert_string_equal(r->allow.san_uri_prefix.v[0], "spiffe://example/");
    assert_string_equal(r->allow.issuer_dn.v[0], "CN=Staff CA");
    assert_int_equal(r->allow.serial.n, 2);
    assert_int_equal(r->n_headers, 3);
    assert_string_equal(r->headers[0].name, "X-Client-CN");
    assert_int_equal(r->headers[0].field, CG_F_CN);
    assert_int_equal(r->headers[1].field, CG_F_EMAIL);
    assert_int_equal(r->headers[2].field, CG_F_PEM_URLENCODED);

    r = &l->routes[1];
    assert_string_equal(r->host, "*.example.com");
    assert_int_equal(r->upstream.scheme, CG_UP_UNIX);
    assert_string_equal(r->upstream.unix_path, "/base/run/app.sock");
    assert_null(r->upstream.host);
    assert_int_equal(r->n_headers, 0);

    r = &l->routes[2];
    assert_int_equal(r->upstream.port, 9443);
    assert_string_equal(r->upstream.server_name, "backend");
    assert_false(r->upstream.verify);
    assert_null(r->upstream.ca_file);
    config_free(cfg);
}

static void
test_unknown_keys(void **state)
{
    (void)state;
    EXPECT_ERR(CFG("'colour':'blue',", "", ""), "colour: unknown key");
    EXPECT_ERR(CFG("", ",'port':443", ""), "listeners[0].port: unknown key");
    EXPECT_ERR(CFG("", "", ",'methods':['GET']"),
               "listeners[0].routes[0].methods: unknown key");
    EXPECT_ERR(CFG("", "", ",'allow':{'cn':['a'],'email_domains':['x']}"),
               "listeners[0].routes[0].allow.email_domains: unknown key");
    EXPECT_ERR(CFG("'log':{'lvl':'info'},'timeouts':{'read':'1s'},", "", ""),
               "log.lvl: unknown key", "timeouts.read: unknown key");
    EXPECT_ERR(CFG("'trust':{'staff':{'ca_files':['a'],'crl':'x'}},", "", ""),
               "trust.staff.crl: unknown key");
    EXPECT_ERR(CFG("", ",'client_auth':{'enable':true}", ""),
               "listeners[0].client_auth.enable: unknown key");
    EXPECT_ERR(CFG("", "", ",'upstream_tls':{'sni':'x'}"),
               "listeners[0].routes[0].upstream_tls.sni: unknown key",
               "listeners[0].routes[0].upstream_tls: only allowed with an "
               "https upstream");
    /* Odd keys are quoted in the path, never printed raw. */
    EXPECT_ERR("{'a b':1,'\\n':2}", "[\"a b\"]: unknown key",
               "[\"\\u000a\"]: unknown key");
}

static void
test_type_errors(void **state)
{
    (void)state;
    EXPECT_ERR("{'data_dir':5}", "data_dir: expected string");
    EXPECT_ERR("{'workers':'4'}", "workers: expected integer");
    EXPECT_ERR("{'workers':1.5}", "workers: expected integer");
    EXPECT_ERR("{'log':{'access':'yes'}}", "log.access: expected boolean");
    EXPECT_ERR("{'log':'info'}", "log: expected object");
    EXPECT_ERR("{'trust':{'staff':{'ca_files':'a.pem'}}}",
               "trust.staff.ca_files: expected array of strings");
    EXPECT_ERR("{'trust':{'staff':{'ca_files':['a.pem',1]}}}",
               "trust.staff.ca_files: expected array of strings");
    EXPECT_ERR("{'trust':[]}", "trust: expected object");
    EXPECT_ERR("{'listeners':{}}", "listeners: expected array");
    /* Not an object: one error, not one per required key. */
    EXPECT_ERR("{'listeners':[5]}", "listeners[0]: expected object");
    EXPECT_ERR(CFG("", ",'strip_headers':'X-A'", ""),
               "listeners[0].strip_headers: expected array of strings");
    EXPECT_ERR(CFG("", "", ",'require_verified':1"),
               "listeners[0].routes[0].require_verified: expected boolean");
    EXPECT_ERR(CFG("", ",'tls_min_version':1.3", ""),
               "listeners[0].tls_min_version: expected one of 1.2, 1.3");
    EXPECT_ERR("{'listeners':[{'name':'m','kind':'mqtt','listen':':1883'," CERTS
               ",'routes':[{" UP "}]}]}",
               "listeners[0].routes: not allowed for kind mqtt",
               "listeners[0].upstream: required");
    EXPECT_ERR("{'listeners':[{'name':'m','kind':'smtp','listen':':1883'," CERTS
               ",'routes':[{" UP "}]}]}",
               "listeners[0].kind: expected one of https, mqtt, tcp");
    EXPECT_ERR("{'log':{'level':'verbose'}}",
               "log.level: expected one of debug, info, warn, error");
    EXPECT_ERR("{'data_dir':'','pid_file':'a\\u0001b'}",
               "data_dir: must not be empty",
               "pid_file: must not contain control characters");
    EXPECT_ERR("[1]", "(root): expected object");
}

static void
test_required_and_empty(void **state)
{
    (void)state;
    EXPECT_ERR("{'listeners':[{'name':'web','kind':'https','listen':':1',"
               "'certificates':[],'routes':[]}]}",
               "listeners[0].certificates: must not be empty",
               "listeners[0].routes: must not be empty");
    EXPECT_ERR("{'listeners':[{'name':'web','kind':'https','listen':':1',"
               "'certificates':[{'cert':'','key':'k'},{}],"
               "'routes':[{'path':'/'}]}]}",
               "listeners[0].certificates[0].cert: must not be empty",
               "listeners[0].certificates[1].cert: required",
               "listeners[0].certificates[1].key: required",
               "listeners[0].routes[0].upstream: required (or \"respond\")");
    EXPECT_ERR("{'trust':{'staff':{},'x':{'ca_files':[]}}}",
               "trust.staff.ca_files: required unless builtin_ca is true",
               "trust.x.ca_files: must not be empty");
    EXPECT_ERR("{'trust':{'bad name':{'ca_files':['a']}}}",
               "trust[\"bad name\"]: invalid name \"bad name\" "
               "(allowed: letters, digits, '_', '.', '-')");
    EXPECT_ERR("{'listeners':[" LST("w/eb", ":1", "", "") "]}",
               "listeners[0].name: invalid name \"w/eb\" (allowed: letters, "
               "digits, '_', '.', '-')");
}

/* crl_files, builtin_ca, on_stale_crl and the "some CA" rule. */
static void
test_trust_revocation(void **state)
{
    (void)state;
    struct cg_config *cfg =
        load_ok("{'trust':{'staff':{'ca_files':['ca.pem'],'crl_files':['crl/',"
                "'/etc/x.crl'],'on_stale_crl':'grace:12h'},"
                "'devices':{'builtin_ca':true},"
                "'both':{'ca_files':['/a.pem'],'builtin_ca':true,"
                "'on_stale_crl':'reject'}}}");
    const struct cg_trust_cfg *t = &cfg->trusts[0];
    assert_int_equal(t->crl_files.n, 2);
    assert_string_equal(t->crl_files.v[0], "/base/crl");
    assert_string_equal(t->crl_files.v[1], "/etc/x.crl");
    assert_false(t->builtin_ca);
    assert_false(t->stale_reject);
    assert_int_equal(t->stale_grace_ms, 12 * 3600 * 1000);
    t = &cfg->trusts[1];
    assert_true(t->builtin_ca);
    assert_int_equal(t->ca_files.n, 0);
    assert_int_equal(t->crl_files.n, 0);
    assert_true(t->stale_reject); /* the default */
    assert_int_equal(t->stale_grace_ms, 0);
    t = &cfg->trusts[2];
    assert_true(t->builtin_ca && t->stale_reject);
    assert_int_equal(t->ca_files.n, 1);
    config_free(cfg);

    static const char *const bad_stale[] = {
        "'never'",     "'grace:'", "'grace:x'", "'grace: 5s'",
        "'grace:-5s'", "5",        "'Reject'"};
    for (size_t i = 0; i < CG_ARRAY_LEN(bad_stale); i++) {
        char *json = xasprintf("{'trust':{'staff':{'ca_files':['a'],"
                               "'on_stale_crl':%s}}}",
                               bad_stale[i]);
        EXPECT_ERR(json, "trust.staff.on_stale_crl: expected \"reject\" or "
                         "\"grace:<duration>\"");
        free(json);
    }
    EXPECT_ERR("{'trust':{'s':{'builtin_ca':false},'t':{'crl_files':['c']},"
               "'u':{'ca_files':['a'],'crl_files':'c.crl','builtin_ca':1}}}",
               "trust.s.ca_files: required unless builtin_ca is true",
               "trust.t.ca_files: required unless builtin_ca is true",
               "trust.u.crl_files: expected array of strings",
               "trust.u.builtin_ca: expected boolean");
}

static void
test_client_auth(void **state)
{
    (void)state;
    EXPECT_ERR(CFG(TRUST,
                   ",'client_auth':{'enabled':true,'mode':'on',"
                   "'trust':'staff'}",
                   ""),
               "listeners[0].client_auth.mode: expected one of off, "
               "optional, required, report");
    /* The mode is validated even when client auth is disabled. */
    EXPECT_ERR(CFG("", ",'client_auth':{'mode':'sometimes'}", ""),
               "listeners[0].client_auth.mode: expected one of off, "
               "optional, required, report");
    EXPECT_ERR(CFG(TRUST, ",'client_auth':{'enabled':true}", ""),
               "listeners[0].client_auth.trust: required when enabled is "
               "true");
    EXPECT_ERR(CFG(TRUST, ",'client_auth':{'verify_depth':17}", ""),
               "listeners[0].client_auth.verify_depth: must be between 1 "
               "and 16");

    struct cg_config *cfg = load_ok(
        CFG(TRUST, ",'client_auth':{'enabled':false,'mode':'required'}", ""));
    assert_false(cfg->listeners[0].client_auth.enabled);
    assert_int_equal(cfg->listeners[0].client_auth.mode, CG_AUTH_OFF);
    config_free(cfg);
    /* "mode": "off" switches client auth off even with "enabled": true */
    cfg = load_ok(CFG(TRUST,
                      ",'client_auth':{'enabled':true,'mode':'off',"
                      "'trust':'staff'}",
                      ""));
    assert_false(cfg->listeners[0].client_auth.enabled);
    assert_int_equal(cfg->listeners[0].client_auth.mode, CG_AUTH_OFF);
    config_free(cfg);
    cfg = load_ok(
        CFG(TRUST, ",'client_auth':{'enabled':true,'trust':'staff'}", ""));
    assert_int_equal(cfg->listeners[0].client_auth.mode, CG_AUTH_REQUIRED);
    config_free(cfg);
    cfg = load_ok(CFG(TRUST,
                      ",'client_auth':{'enabled':true,'mode':'report',"
                      "'trust':'staff'}",
                      ""));
    assert_int_equal(cfg->listeners[0].client_auth.mode, CG_AUTH_REPORT);
    config_free(cfg);

    /* A certificate's own client_auth has the same rules. */
    EXPECT_ERR("{" TRUST "'listeners':[{'name':'web','kind':'https',"
               "'listen':':443','certificates':[{'cert':'c','key':'k',"
               "'client_auth':{'enabled':true,'mode':'strict'}}],"
               "'routes':[{" UP "}]}]}",
               "listeners[0].certificates[0].client_auth.mode: expected one "
               "of off, optional, required, report",
               "listeners[0].certificates[0].client_auth.trust: required "
               "when enabled is true");
}

static void
test_unknown_trust(void **state)
{
    (void)state;
    EXPECT_ERR(CFG(TRUST, ",'client_auth':{'enabled':true,'trust':'x'}", ""),
               "listeners[0].client_auth.trust: unknown trust set \"x\"; "
               "defined: staff, devices");
    EXPECT_ERR(CFG("", ",'client_auth':{'enabled':true,'trust':'staff'}", ""),
               "listeners[0].client_auth.trust: unknown trust set "
               "\"staff\"; defined: (none)");
}

static void
test_duplicate_listeners(void **state)
{
    (void)state;
    EXPECT_ERR(L3(LST("web", ":1", "", ""), LST("web", ":2", "", ""),
                  LST("web", ":3", "", "")),
               "listeners[1].name: duplicate listener name \"web\"",
               "listeners[2].name: duplicate listener name \"web\"");
    EXPECT_ERR(
        L2("", LST("a", ":8443", "", ""), LST("b", "0.0.0.0:8443", "", "")),
        "listeners[1].listen: address \"0.0.0.0:8443\" already used "
        "by listener \"a\"");
    /* Port 0: each listener gets its own port from the kernel. */
    struct cg_config *cfg = load_ok(L2("", LST("a", "127.0.0.1:0", "", ""),
                                       LST("b", "127.0.0.1:0", "", "")));
    assert_int_equal(cfg->n_listeners, 2);
    assert_ptr_equal(config_listener_find(cfg, "b"), &cfg->listeners[1]);
    assert_null(config_listener_find(cfg, "c"));
    config_free(cfg);
    EXPECT_ERR(L2("", LST("web", "example.com:443", "", ""),
                  LST("b", "[::1]:80", "", "")),
               "listeners[0].listen: invalid address \"example.com:443\" "
               "(expected \"host:port\", \"[v6]:port\" or \":port\")");
}

#define UPSTREAM_ERR(url, msg)                                                 \
    EXPECT_ERR(                                                                \
        "{'listeners':[{'name':'web','kind':'https','listen':':1'," CERTS      \
        ",'routes':[{'upstream':'" url "'}]}]}",                               \
        "listeners[0].routes[0].upstream: invalid upstream \"" url "\": " msg)

static void
test_upstream_errors(void **state)
{
    (void)state;
    UPSTREAM_ERR("ftp://h:21",
                 "unsupported scheme \"ftp\" (expected http, https or unix)");
    UPSTREAM_ERR("http://h:8080/app",
                 "path not allowed (requests keep their own path)");
    UPSTREAM_ERR("http://user:pw@h:8080", "userinfo not allowed");
    UPSTREAM_ERR("http://h:8080?x=1", "query not allowed");
    UPSTREAM_ERR("http://h:8080/#f", "fragment not allowed");
    UPSTREAM_ERR("http://h:0", "invalid port \"0\"");
    UPSTREAM_ERR("http://h:", "invalid port \"\"");
    UPSTREAM_ERR("http://h:99999", "invalid port \"99999\"");
    UPSTREAM_ERR("http://:80", "missing host");
    UPSTREAM_ERR("http://::1:80", "IPv6 addresses must be in brackets");
    UPSTREAM_ERR("http://[::g]:80", "invalid IPv6 address");
    UPSTREAM_ERR("http://h h", "invalid host");
    UPSTREAM_ERR("127.0.0.1:8080", "expected http://host[:port], "
                                   "https://host[:port], unix:/path, "
                                   "builtin:echo or builtin:metrics");
    UPSTREAM_ERR("builtin:static", "unknown built-in upstream (expected "
                                   "builtin:echo or builtin:metrics)");
    UPSTREAM_ERR("unix:", "missing socket path");
}

static void
test_upstream_ok(void **state)
{
    (void)state;
    struct cg_config *cfg = load_ok(
        "{'listeners':[{'name':'web','kind':'https','listen':':443'," CERTS
        ",'routes':[{'upstream':'http://App.internal'},"
        "{'upstream':'https://app.internal/','upstream_tls':{'ca_file':'ca'}},"
        "{'upstream':'http://[::1]'},{'upstream':'unix:/run/app.sock'},"
        "{'upstream':'unix:///run/x.sock'},{'upstream':'HTTP://h:81'}]}]}");
    const struct cg_route_cfg *r = cfg->listeners[0].routes;
    assert_int_equal(r[0].upstream.port, 80);
    assert_string_equal(r[0].upstream.host, "app.internal");
    assert_int_equal(r[1].upstream.port, 443);
    assert_string_equal(r[1].upstream.server_name, "app.internal");
    assert_string_equal(r[1].upstream.ca_file, "/base/ca");
    assert_string_equal(r[2].upstream.host, "::1");
    assert_int_equal(r[2].upstream.port, 80);
    assert_string_equal(r[3].upstream.unix_path, "/run/app.sock");
    assert_string_equal(r[4].upstream.unix_path, "/run/x.sock");
    assert_int_equal(r[5].upstream.scheme, CG_UP_HTTP);
    assert_int_equal(r[5].upstream.port, 81);
    config_free(cfg);
}

static void
test_upstream_tls(void **state)
{
    (void)state;
    EXPECT_ERR(CFG("", "", ",'upstream_tls':{'ca_file':'ca.pem'}"),
               "listeners[0].routes[0].upstream_tls: only allowed with an "
               "https upstream");
    EXPECT_ERR(
        "{'listeners':[{'name':'web','kind':'https','listen':':443'," CERTS
        ",'routes':[{'upstream':'https://h'},"
        "{'upstream':'https://h','upstream_tls':{'ca_file':'a',"
        "'cert':'c'}},{'upstream':'unix:/s','upstream_tls':{}}]}]}",
        "listeners[0].routes[0].upstream_tls.ca_file: required "
        "unless verify is false",
        "listeners[0].routes[1].upstream_tls.key: required when cert "
        "is set",
        "listeners[0].routes[2].upstream_tls: only allowed with an "
        "https upstream");
}

static void
test_headers(void **state)
{
    (void)state;
    EXPECT_ERR(CFG("", "", ",'identity_headers':{'X Client':'cn'}"),
               "listeners[0].routes[0].identity_headers[\"X Client\"]: "
               "invalid header name \"X Client\"");
    EXPECT_ERR(CFG("", "", ",'identity_headers':{'X-CN':'cn','x-cn':'dn'}"),
               "listeners[0].routes[0].identity_headers.x-cn: duplicate "
               "header name (names are case-insensitive)");
    EXPECT_ERR(CFG("", "", ",'identity_headers':{'Host':'cn'}"),
               "listeners[0].routes[0].identity_headers.Host: header "
               "\"Host\" cannot be used here");
    EXPECT_ERR(CFG("", "", ",'identity_headers':{'X-CN':'common_name'}"),
               "listeners[0].routes[0].identity_headers.X-CN: unknown field "
               "\"common_name\"; expected one of verify, cn, dn, dn_emqx, "
               "email, san_email, san_dns, san_uri, san_ip, serial, "
               "issuer_dn, not_before, not_after, sha256, md5, crt, pem, "
               "pem_urlencoded, client_cert");
    EXPECT_ERR(CFG("", "", ",'identity_headers':{'X-CN':5}"),
               "listeners[0].routes[0].identity_headers.X-CN: expected "
               "string");
    EXPECT_ERR(CFG("", "", ",'identity_headers':['cn']"),
               "listeners[0].routes[0].identity_headers: expected object");
    EXPECT_ERR(CFG("", ",'strip_headers':['X-Ok','Bad:Name']", ""),
               "listeners[0].strip_headers[1]: invalid header name "
               "\"Bad:Name\"");
}

static void
test_routes(void **state)
{
    (void)state;
    EXPECT_ERR(CFG("", "", ",'path':'api'"),
               "listeners[0].routes[0].path: must start with '/'");
    EXPECT_ERR(CFG("", "", ",'path':'/a?b'"),
               "listeners[0].routes[0].path: must not contain spaces, '?' "
               "or '#'");
    EXPECT_ERR(CFG("", "", ",'host':'app.example.com:443'"),
               "listeners[0].routes[0].host: invalid host name "
               "\"app.example.com:443\" (no port here)");
    EXPECT_ERR(CFG("", "", ",'host':'a.*.example.com'"),
               "listeners[0].routes[0].host: invalid host name "
               "\"a.*.example.com\" (\"*.\" only as the first label)");
    EXPECT_ERR(CFG("", "", ",'host':'*'"),
               "listeners[0].routes[0].host: invalid host name \"*\" (\"*.\" "
               "only as the first label)");
    EXPECT_ERR(CFG("", "", ",'host':'a..b'"),
               "listeners[0].routes[0].host: invalid host name \"a..b\"");
    EXPECT_ERR(CFG("", "", ",'allow':{'serial':['0x1F']}"),
               "listeners[0].routes[0].allow.serial[0]: invalid serial "
               "\"0x1F\" (expected hex digits)");
    struct cg_config *cfg = load_ok(CFG("", "", ",'host':'WWW.Example.org.'"));
    assert_string_equal(cfg->listeners[0].routes[0].host, "www.example.org");
    config_free(cfg);
}

static void
test_durations(void **state)
{
    (void)state;
    EXPECT_ERR("{'drain_timeout':'soon'}",
               "drain_timeout: invalid duration \"soon\" (e.g. \"500ms\", "
               "\"10s\", \"2m\", \"1h\")");
    EXPECT_ERR("{'timeouts':{'idle':'0s','header':0,'handshake':-1,"
               "'upstream_read':'nan','upstream_connect':true}}",
               "timeouts.idle: must be greater than 0",
               "timeouts.header: must be greater than 0",
               "timeouts.handshake: must be greater than 0",
               "timeouts.upstream_read: invalid duration \"nan\" (e.g. "
               "\"500ms\", \"10s\", \"2m\", \"1h\")",
               "timeouts.upstream_connect: expected duration (string like "
               "\"10s\" or number of seconds)");
    EXPECT_ERR(CFG("", ",'timeouts':{'idle':'5 minutes'}", ""),
               "listeners[0].timeouts.idle: invalid duration \"5 minutes\" "
               "(e.g. \"500ms\", \"10s\", \"2m\", \"1h\")");
    struct cg_config *cfg = load_ok("{'drain_timeout':'1h','timeouts':{"
                                    "'idle':'250ms','header':'30','handshake':"
                                    "0.25}}");
    assert_int_equal(cfg->drain_timeout_ms, 3600000);
    assert_int_equal(cfg->timeouts.idle_ms, 250);
    assert_int_equal(cfg->timeouts.header_ms, 30000);
    assert_int_equal(cfg->timeouts.handshake_ms, 250);
    config_free(cfg);
}

static void
test_ranges(void **state)
{
    (void)state;
    EXPECT_ERR("{'workers':257}", "workers: must be between 0 and 256");
    EXPECT_ERR("{'workers':-1}", "workers: must be between 0 and 256");
    EXPECT_ERR("{'limits':{'header_bytes':1023,'header_count':1001}}",
               "limits.header_bytes: must be between 1024 and 1048576",
               "limits.header_count: must be between 8 and 1000");
    EXPECT_ERR(CFG("", ",'limits':{'header_count':7}", ""),
               "listeners[0].limits.header_count: must be between 8 and "
               "1000");
    struct cg_config *cfg = load_ok("{'workers':256,'limits':{'header_bytes':"
                                    "1048576,'header_count':8}}");
    assert_int_equal(cfg->workers, 256);
    assert_int_equal(cfg->limits.header_bytes, 1048576);
    config_free(cfg);
}

#define MQ(lx)                                                                 \
    "{" TRUST                                                                  \
    "'listeners':[{'name':'m','kind':'mqtt','listen':':8883'," CERTS lx "}]}"
#define TC(lx)                                                                 \
    "{'listeners':[{'name':'t','kind':'tcp','listen':':9000'," CERTS lx "}]}"

static void
test_mqtt_listener(void **state)
{
    (void)state;
    struct cg_config *cfg = load_ok(MQ(",'upstream':'127.0.0.1:1883'"));
    const struct cg_listener_cfg *l = &cfg->listeners[0];
    assert_int_equal(l->kind, CG_KIND_MQTT);
    assert_int_equal(l->upstream.scheme, CG_UP_HTTP);
    assert_string_equal(l->upstream.host, "127.0.0.1");
    assert_int_equal(l->upstream.port, 1883);
    assert_int_equal(l->mqtt.as_username, CG_MQTT_MAP_CN);
    assert_int_equal(l->mqtt.as_clientid, CG_MQTT_MAP_DISABLED);
    assert_int_equal(l->mqtt.max_connect_bytes, 65536);
    assert_false(l->mqtt.auth_password);
    assert_false(l->mqtt.has_jwt);
    assert_int_equal(l->n_routes, 0);
    config_free(cfg);
    cfg = load_ok(MQ(",'upstream':'broker.local:8883',"
                     "'upstream_tls':{'ca_file':'ca.pem'},"
                     "'peer_cert_as_username':'md5',"
                     "'peer_cert_as_clientid':'san_uri',"
                     "'max_connect_bytes':4096,"
                     "'auth':{'password':true,'jwt':{'secret':'s3',"
                     "'kid':'k1'}},'timeouts':{'idle':'5m'}"));
    l = &cfg->listeners[0];
    assert_int_equal(l->upstream.scheme, CG_UP_HTTPS);
    assert_string_equal(l->upstream.ca_file, "/base/ca.pem");
    assert_string_equal(l->upstream.server_name, "broker.local");
    assert_int_equal(l->mqtt.as_username, CG_MQTT_MAP_MD5);
    assert_int_equal(l->mqtt.as_clientid, CG_MQTT_MAP_SAN_URI);
    assert_int_equal(l->mqtt.max_connect_bytes, 4096);
    assert_true(l->mqtt.auth_password);
    assert_true(l->mqtt.has_jwt);
    assert_string_equal(l->mqtt.jwt.secret, "s3");
    assert_string_equal(l->mqtt.jwt.kid, "k1");
    assert_string_equal(l->mqtt.jwt.claim, "sub");
    assert_int_equal(l->timeouts.idle_ms, 300000);
    config_free(cfg);
    cfg = load_ok(MQ(",'upstream':'unix:run/mq.sock'"));
    assert_int_equal(cfg->listeners[0].upstream.scheme, CG_UP_UNIX);
    assert_string_equal(cfg->listeners[0].upstream.unix_path,
                        "/base/run/mq.sock");
    config_free(cfg);
    cfg = load_ok(MQ(",'upstream':'tls://[::1]:8883',"
                     "'upstream_tls':{'verify':false}"));
    assert_int_equal(cfg->listeners[0].upstream.scheme, CG_UP_HTTPS);
    assert_string_equal(cfg->listeners[0].upstream.host, "::1");
    config_free(cfg);
}

static void
test_mqtt_errors(void **state)
{
    (void)state;
    EXPECT_ERR(MQ(""), "listeners[0].upstream: required");
    EXPECT_ERR(MQ(",'upstream':'127.0.0.1'"),
               "listeners[0].upstream: invalid upstream \"127.0.0.1\": "
               "missing port (expected host:port, [v6]:port, "
               "tls://host:port or unix:/path)");
    EXPECT_ERR(MQ(",'upstream':'mqtt://h:1'"),
               "listeners[0].upstream: invalid upstream \"mqtt://h:1\": "
               "expected host:port, [v6]:port, tls://host:port or "
               "unix:/path");
    EXPECT_ERR(MQ(",'upstream':'tls://h:1'"),
               "listeners[0].upstream_tls.ca_file: required unless verify "
               "is false");
    EXPECT_ERR(MQ(",'upstream':'unix:/s','upstream_tls':{'verify':false}"),
               "listeners[0].upstream_tls: not allowed with a unix: upstream");
    EXPECT_ERR(MQ(",'upstream':'h:1','peer_cert_as_username':'uid',"
                  "'peer_cert_as_clientid':1"),
               "listeners[0].peer_cert_as_username: expected one of "
               "disabled, cn, dn, crt, pem, md5, sha256, email, san_uri",
               "listeners[0].peer_cert_as_clientid: expected one of "
               "disabled, cn, dn, crt, pem, md5, sha256, email, san_uri");
    EXPECT_ERR(MQ(",'upstream':'h:1','auth':{'password':'yes','jwt':{},"
                  "'ldap':1}"),
               "listeners[0].auth.ldap: unknown key",
               "listeners[0].auth.password: expected boolean",
               "listeners[0].auth.jwt: needs \"secret\" or "
               "\"public_key_file\"");
    EXPECT_ERR(MQ(",'upstream':'h:1','max_connect_bytes':10,"
                  "'routes':[],'strip_headers':['X-A'],"
                  "'proxy_protocol':'v2'"),
               "listeners[0].max_connect_bytes: must be between 128 and "
               "16777216",
               "listeners[0].routes: not allowed for kind mqtt",
               "listeners[0].routes: must not be empty",
               "listeners[0].strip_headers: not allowed for kind mqtt",
               "listeners[0].proxy_protocol: not allowed for kind mqtt");
    EXPECT_ERR(CFG("", ",'upstream':'h:1','auth':{}", ""),
               "listeners[0].upstream: not allowed for kind https",
               "listeners[0].auth: not allowed for kind https");
}

static void
test_tcp_listener(void **state)
{
    (void)state;
    struct cg_config *cfg = load_ok(TC(",'upstream':'db:5432'"));
    const struct cg_listener_cfg *l = &cfg->listeners[0];
    assert_int_equal(l->kind, CG_KIND_TCP);
    assert_int_equal(l->tcp.proxy_protocol, CG_PROXY_NONE);
    assert_int_equal(l->tcp.n_identity, 4);
    assert_int_equal(l->tcp.identity[0], CG_F_CN);
    assert_int_equal(l->tcp.identity[3], CG_F_SHA256);
    config_free(cfg);
    cfg = load_ok(TC(",'upstream':'db:5432','proxy_protocol':'v2',"
                     "'proxy_identity':['email','serial']"));
    l = &cfg->listeners[0];
    assert_int_equal(l->tcp.proxy_protocol, CG_PROXY_V2);
    assert_int_equal(l->tcp.n_identity, 2);
    assert_int_equal(l->tcp.identity[0], CG_F_EMAIL);
    assert_int_equal(l->tcp.identity[1], CG_F_SERIAL);
    config_free(cfg);
    EXPECT_ERR(TC(",'upstream':'db:5432','proxy_protocol':'v1',"
                  "'proxy_identity':['cn','nope','cn',3],"
                  "'peer_cert_as_username':'cn'"),
               "listeners[0].proxy_protocol: expected one of none, v2",
               "listeners[0].proxy_identity[1]: unknown field \"nope\"",
               "listeners[0].proxy_identity[2]: duplicate field \"cn\"",
               "listeners[0].proxy_identity[3]: expected string",
               "listeners[0].peer_cert_as_username: not allowed for kind "
               "tcp");
    EXPECT_ERR(TC(",'upstream':'db:5432','proxy_identity':'cn'"),
               "listeners[0].proxy_identity: expected an array of at most "
               "32 field names");
}

static void
test_several_errors(void **state)
{
    (void)state;
    EXPECT_ERR("{'workers':'x','bogus':1," TRUST "'listeners':["
               "{'name':'a','kind':'udp','listen':'1.2.3.4:80'," CERTS
               ",'client_auth':{'enabled':true,'trust':'nope'},"
               "'routes':[{'upstream':'ftp://x'},{'upstream':'http://x',"
               "'path':'x'}]},"
               "{'name':'a','kind':'https','listen':'1.2.3.4:80'," CERTS
               ",'routes':[{" UP ",'allow':{'cn':'alice'}}]}]}",
               "bogus: unknown key", "workers: expected integer",
               "listeners[0].kind: expected one of https, mqtt, tcp",
               "listeners[0].client_auth.trust: unknown trust set \"nope\"; "
               "defined: staff, devices",
               "listeners[0].routes[0].upstream: invalid upstream "
               "\"ftp://x\": unsupported scheme \"ftp\" (expected http, "
               "https or unix)",
               "listeners[0].routes[1].path: must start with '/'",
               "listeners[1].routes[0].allow.cn: expected array of strings",
               "listeners[1].name: duplicate listener name \"a\"",
               "listeners[1].listen: address \"1.2.3.4:80\" already used by "
               "listener \"a\"");
}

static void
test_parse_errors(void **state)
{
    (void)state;
    struct cg_strlist errs = {0};
    struct cg_config *cfg = NULL;
    assert_int_equal(config_load_string("{\n  \"workers\": 1,\n  \"x\": }\n",
                                        BASE, &cfg, &errs),
                     CG_ECONFIG);
    assert_null(cfg);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.v[0], "line 3 column 8: unexpected token near "
                                   "'}'");
    cg_strlist_clear(&errs);
    assert_int_equal(
        config_load_string("{\"a\": 1,\n \"a\": 2}", BASE, &cfg, &errs),
        CG_ECONFIG);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.v[0],
                        "line 2 column 4: duplicate object key near '\"a\"'");
    cg_strlist_clear(&errs);
    /* errors may be NULL. */
    assert_int_equal(config_load_string("{", BASE, &cfg, NULL), CG_ECONFIG);
    assert_int_equal(config_load_string("{\"x\":1}", BASE, &cfg, NULL),
                     CG_ECONFIG);
}

static void
test_relative_paths(void **state)
{
    (void)state;
    static const char json[] =
        "{'data_dir':'./data/../state//x/','ports_file':'/run/p.json',"
        "'log':{'file':'log.txt'},'trust':{'t':{'ca_files':['./ca.pem']}}}";
    struct cg_strlist errs = {0};
    struct cg_config *cfg = NULL;
    char *j = jq(json);
    assert_int_equal(config_load_string(j, "/etc/certgate/", &cfg, &errs), 0);
    assert_string_equal(cfg->data_dir, "/etc/certgate/data/../state/x");
    assert_string_equal(cfg->ports_file, "/run/p.json");
    assert_string_equal(cfg->log_file, "/etc/certgate/log.txt");
    assert_string_equal(cfg->trusts[0].ca_files.v[0], "/etc/certgate/ca.pem");
    assert_ptr_equal(config_trust_find(cfg, "t"), &cfg->trusts[0]);
    assert_null(config_trust_find(cfg, "u"));
    assert_null(config_trust_find(cfg, NULL));
    config_free(cfg);

    /* A relative base_dir is taken from the working directory. */
    char *cwd = getcwd(NULL, 0);
    assert_non_null(cwd);
    assert_int_equal(config_load_string(j, "conf", &cfg, &errs), 0);
    char *want = xasprintf("%s/conf/log.txt", strcmp(cwd, "/") ? cwd : "");
    assert_string_equal(cfg->log_file, want);
    config_free(cfg);
    free(want);
    free(cwd);
    free(j);
}

static void
test_inherit(void **state)
{
    (void)state;
    struct cg_config *cfg =
        load_ok(L2("'timeouts':{'idle':'5m','upstream_read':'2m'},"
                   "'limits':{'header_count':20},",
                   LST("a", ":1", ",'timeouts':{'idle':'10s'}", ""),
                   LST("b", ":2", ",'limits':{'header_bytes':2048}", "")));
    const struct cg_listener_cfg *a = &cfg->listeners[0];
    const struct cg_listener_cfg *b = &cfg->listeners[1];
    assert_int_equal(a->timeouts.idle_ms, 10000);
    assert_int_equal(a->timeouts.upstream_read_ms, 120000);
    assert_int_equal(a->timeouts.handshake_ms, 10000);
    assert_int_equal(a->limits.header_count, 20);
    assert_int_equal(a->limits.header_bytes, 32768);
    assert_int_equal(b->timeouts.idle_ms, 300000);
    assert_int_equal(b->limits.header_bytes, 2048);
    assert_int_equal(b->limits.header_count, 20);
    config_free(cfg);
}

static void
test_parse_addr(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    char buf[INET6_ADDRSTRLEN];
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;

    assert_int_equal(config_parse_addr("1.2.3.4:443", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
    assert_string_equal(buf, "1.2.3.4");
    assert_int_equal(ntohs(sin->sin_port), 443);

    assert_int_equal(config_parse_addr("[::1]:0", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(len, sizeof(struct sockaddr_in6));
    inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
    assert_string_equal(buf, "::1");
    assert_int_equal(ntohs(sin6->sin6_port), 0);

    static const char *const any[] = {":8443", "*:8443", "0.0.0.0:8443"};
    for (size_t i = 0; i < CG_ARRAY_LEN(any); i++) {
        assert_int_equal(config_parse_addr(any[i], &ss, &len), 0);
        assert_int_equal(ss.ss_family, AF_INET);
        assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_ANY));
        assert_int_equal(ntohs(sin->sin_port), 8443);
    }
    assert_int_equal(config_parse_addr("localhost:8443", &ss, &len), 0);
    assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    assert_int_equal(config_parse_addr("[::]:65535", &ss, &len), 0);
    assert_int_equal(ntohs(sin6->sin6_port), 65535);

    static const char *const bad[] = {
        "1.2.3.4",     "1.2.3.4:",   "1.2.3.4:65536",
        "1.2.3.4:-1",  "1.2.3.4:8x", "example.com:1",
        "::1:80",      "[::1]80",    "[::1]",
        "[::x]:80",    "1.2.3:80",   "",
        "[]:80",       ":",          " 1.2.3.4:80",
        "1.2.3.4: 80",
    };
    for (size_t i = 0; i < CG_ARRAY_LEN(bad); i++) {
        if (config_parse_addr(bad[i], &ss, &len) != CG_EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    }
}

static void
test_load_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/cg_config_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *path = xasprintf("%s/certgate.json", dir);
    char *json = jq(CFG("'pid_file':'certgate.pid',", "", ""));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(json, f);
    fclose(f);

    struct cg_strlist errs = {0};
    struct cg_config *cfg = NULL;
    assert_int_equal(config_load(path, &cfg, &errs), 0);
    assert_string_equal(cfg->path, path);
    char *want = xasprintf("%s/certgate.pid", dir);
    assert_string_equal(cfg->pid_file, want);
    free(want);
    want = xasprintf("%s/c.pem", dir);
    assert_string_equal(cfg->listeners[0].certs[0].cert, want);
    free(want);
    config_free(cfg);

    unlink(path);
    assert_int_equal(config_load(path, &cfg, &errs), CG_EIO);
    assert_int_equal(errs.n, 1);
    want = xasprintf("%s: cannot read: No such file or directory", path);
    assert_string_equal(errs.v[0], want);
    free(want);
    cg_strlist_clear(&errs);
    assert_int_equal(config_load(dir, &cfg, &errs), CG_EIO);
    want = xasprintf("%s: cannot read: Is a directory", dir);
    assert_string_equal(errs.v[0], want);
    free(want);
    cg_strlist_clear(&errs);
    rmdir(dir);
    free(json);
    free(path);
}

/* A route answering itself: "respond" instead of "upstream". */
#define RESPOND_LST(rx)                                                        \
    "{'listeners':[{'name':'web','kind':'https','listen':'127.0.0.1:8443',"    \
    "" CERTS ",'routes':[{" rx "}]}]}"

static void
test_respond(void **state)
{
    (void)state;
    struct cg_config *cfg = load_ok(RESPOND_LST(
        "'respond':{'status':200,'body':'ok\\n','content_type':'text/plain',"
        "'headers':{'X-Served-By':'certgate'}}"));
    const struct cg_route_cfg *r = &cfg->listeners[0].routes[0];
    assert_true(r->has_respond);
    assert_int_equal(r->upstream.scheme, CG_UP_RESPOND);
    assert_true(CG_UP_LOCAL(r->upstream.scheme));
    assert_int_equal(r->respond.status, 200);
    assert_int_equal(r->respond.body_len, 3);
    assert_memory_equal(r->respond.body, "ok\n", 3);
    assert_string_equal(r->respond.content_type, "text/plain");
    assert_int_equal(r->respond.n_headers, 1);
    assert_string_equal(r->respond.headers[0].name, "X-Served-By");
    assert_string_equal(r->respond.headers[0].value, "certgate");
    config_free(cfg);
    cfg = load_ok(RESPOND_LST("'respond':{'status':204}"));
    r = &cfg->listeners[0].routes[0];
    assert_int_equal(r->respond.body_len, 0);
    assert_string_equal(r->respond.content_type, "text/plain; charset=utf-8");
    config_free(cfg);
    cfg = load_ok(RESPOND_LST("'upstream':'builtin:metrics'"));
    assert_int_equal(cfg->listeners[0].routes[0].upstream.scheme,
                     CG_UP_METRICS);
    assert_int_equal(cfg->metrics_max_identities, 10000);
    config_free(cfg);
}

static void
test_respond_errors(void **state)
{
    (void)state;
    EXPECT_ERR(RESPOND_LST(UP ",'respond':{'status':200}"),
               "listeners[0].routes[0].upstream: not allowed with "
               "\"respond\" (the route answers itself)");
    EXPECT_ERR(RESPOND_LST("'respond':{'status':304,'body':'x'}"),
               "listeners[0].routes[0].respond.body: must be empty with "
               "status 304");
    EXPECT_ERR(RESPOND_LST("'respond':{'status':100}"),
               "listeners[0].routes[0].respond.status: must be between 200 "
               "and 599");
    EXPECT_ERR(RESPOND_LST("'respond':[]"),
               "listeners[0].routes[0].respond: expected object (status, "
               "body, content_type, headers)");
    EXPECT_ERR(RESPOND_LST("'respond':{'status':200,'headers':{'Host':'x',"
                           "'Cache-Control':'max-age=1','X-E':''}}"),
               "listeners[0].routes[0].respond.headers.Host: header "
               "\"Host\" cannot be used here",
               "listeners[0].routes[0].respond.headers.Cache-Control: header "
               "\"Cache-Control\" is set by certgate (use content_type)",
               "listeners[0].routes[0].respond.headers.X-E: must not be empty");
    EXPECT_ERR(RESPOND_LST("'respond':{'status':200},'upstream_tls':{}"),
               "listeners[0].routes[0].upstream_tls: not allowed with "
               "\"respond\" (the route answers itself)");
}

static void
test_metrics_exposure(void **state)
{
    (void)state;
    EXPECT_ERR("{" TRUST "'listeners':[{'name':'web','kind':'https',"
               "'listen':'0.0.0.0:8443'," CERTS ",'client_auth':{'enabled':"
               "true,'mode':'optional','trust':'staff'},'routes':[{'path':"
               "'/metrics','upstream':'builtin:metrics'}]}]}",
               "listeners[0].routes[0].upstream: builtin:metrics would be "
               "open to clients without a verified certificate: set "
               "require_verified or allow on this route, client_auth mode "
               "required on the listener, or listen on a loopback address");
    struct cg_config *cfg = load_ok(
        "{'metrics':{'max_identities':0},'listeners':[{'name':'web','kind':"
        "'https','listen':'[::1]:8443'," CERTS ",'routes':[{'upstream':"
        "'builtin:metrics'}]}]}");
    assert_int_equal(cfg->metrics_max_identities, 0);
    config_free(cfg);
    EXPECT_ERR("{'metrics':{'max_identities':1000001}}",
               "metrics.max_identities: must be between 0 and 1000000");
}

/* The suite lists: defaults in Mozilla's intermediate order, the given
 * order kept, IANA names rewritten, every refusal. */
static void
test_tls_suites(void **state)
{
    (void)state;
    struct cg_config *cfg = load_ok(CFG("", "", ""));
    const struct cg_listener_cfg *l = &cfg->listeners[0];
    assert_int_equal(l->tls13_suites.n, 3);
    assert_string_equal(l->tls13_suites.v[0], "TLS_AES_128_GCM_SHA256");
    assert_string_equal(l->tls13_suites.v[1], "TLS_AES_256_GCM_SHA384");
    assert_string_equal(l->tls13_suites.v[2], "TLS_CHACHA20_POLY1305_SHA256");
    assert_int_equal(l->tls12_ciphers.n, 6);
    assert_string_equal(l->tls12_ciphers.v[0], "ECDHE-ECDSA-AES128-GCM-SHA256");
    assert_string_equal(l->tls12_ciphers.v[5], "ECDHE-RSA-CHACHA20-POLY1305");
    config_free(cfg);

    cfg = load_ok(CFG("",
                      ",'tls13_ciphersuites':['TLS_CHACHA20_POLY1305_SHA256',"
                      "'TLS_AES_256_GCM_SHA384'],'tls12_ciphers':["
                      "'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',"
                      "'ECDHE-RSA-AES256-GCM-SHA384']",
                      ""));
    l = &cfg->listeners[0];
    assert_int_equal(l->tls13_suites.n, 2);
    assert_string_equal(l->tls13_suites.v[0], "TLS_CHACHA20_POLY1305_SHA256");
    assert_int_equal(l->tls12_ciphers.n, 2);
    assert_string_equal(l->tls12_ciphers.v[0], "ECDHE-ECDSA-AES256-GCM-SHA384");
    config_free(cfg);

    cfg = load_ok(CFG("", ",'tls_min_version':'1.3'", ""));
    assert_int_equal(cfg->listeners[0].tls13_suites.n, 3);
    assert_int_equal(cfg->listeners[0].tls12_ciphers.n, 0);
    config_free(cfg);

    EXPECT_ERR(CFG("",
                   ",'tls13_ciphersuites':['TLS_AES_128_GCM_SHA256',"
                   "'TLS_AES_128_CCM_SHA256']",
                   ""),
               "listeners[0].tls13_ciphersuites[1]: unknown TLS 1.3 cipher "
               "suite \"TLS_AES_128_CCM_SHA256\" (one of "
               "TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, "
               "TLS_CHACHA20_POLY1305_SHA256)");
    EXPECT_ERR(CFG("", ",'tls12_ciphers':['AES128-SHA']", ""),
               "listeners[0].tls12_ciphers[0]: unknown TLS 1.2 cipher suite "
               "\"AES128-SHA\" (one of ECDHE-ECDSA-AES128-GCM-SHA256, "
               "ECDHE-RSA-AES128-GCM-SHA256, ECDHE-ECDSA-AES256-GCM-SHA384, "
               "ECDHE-RSA-AES256-GCM-SHA384, ECDHE-ECDSA-CHACHA20-POLY1305, "
               "ECDHE-RSA-CHACHA20-POLY1305)");
    EXPECT_ERR(CFG("", ",'tls13_ciphersuites':[]", ""),
               "listeners[0].tls13_ciphersuites: must not be empty");
    EXPECT_ERR(CFG("", ",'tls12_ciphers':'ECDHE-RSA-AES128-GCM-SHA256'", ""),
               "listeners[0].tls12_ciphers: expected array of strings");
    EXPECT_ERR(CFG("",
                   ",'tls12_ciphers':['ECDHE-ECDSA-AES128-GCM-SHA256',"
                   "'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256']",
                   ""),
               "listeners[0].tls12_ciphers[1]: ECDHE-ECDSA-AES128-GCM-SHA256 "
               "is listed twice");
    EXPECT_ERR(CFG("",
                   ",'tls_min_version':'1.3','tls12_ciphers':["
                   "'ECDHE-ECDSA-AES128-GCM-SHA256']",
                   ""),
               "listeners[0].tls12_ciphers: not used with tls_min_version "
               "\"1.3\"");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_defaults),
        cmocka_unit_test(test_default_headers),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_type_errors),
        cmocka_unit_test(test_required_and_empty),
        cmocka_unit_test(test_trust_revocation),
        cmocka_unit_test(test_client_auth),
        cmocka_unit_test(test_unknown_trust),
        cmocka_unit_test(test_duplicate_listeners),
        cmocka_unit_test(test_upstream_errors),
        cmocka_unit_test(test_upstream_ok),
        cmocka_unit_test(test_upstream_tls),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_several_errors),
        cmocka_unit_test(test_mqtt_listener),
        cmocka_unit_test(test_mqtt_errors),
        cmocka_unit_test(test_tcp_listener),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_inherit),
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_respond),
        cmocka_unit_test(test_respond_errors),
        cmocka_unit_test(test_metrics_exposure),
        cmocka_unit_test(test_tls_suites),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
