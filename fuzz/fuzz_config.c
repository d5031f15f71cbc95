/*
 * libFuzzer target for src/config: the input, NUL-terminated, is loaded
 * with config_load_string() (relative paths against "/tmp"; no file is
 * opened at load time). A loaded config is checked against what
 * docs/config.md promises, then freed.
 *
 * Build and run (from the repository root; not part of CMake):
 *
 *   mkdir -p build-fuzz/corpus-config
 *   clang -g -O1 -std=c17 -fsanitize=fuzzer,address,undefined \
 *     -fno-sanitize-recover=undefined -D_GNU_SOURCE -Isrc \
 *     fuzz/fuzz_config.c src/config/[a-z]*.c src/ident/[a-z]*.c \
 *     src/core/[a-z]*.c \
 *     $(pkg-config --cflags --libs jansson) -lpthread \
 *     -o build-fuzz/fuzz_config
 *   ./build-fuzz/fuzz_config -max_total_time=60 -max_len=4096 \
 *     -dict=fuzz/config.dict build-fuzz/corpus-config fuzz/corpus/config
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/err.h"
#include "core/util.h"

#include "fuzz_check.h"

/* A path the loader stored: absolute, without control bytes. */
static void
check_path(const char *p)
{
    if (p == NULL)
        return;
    CHECK(p[0] == '/');
    CHECK(!cg_has_ctl(p, strlen(p)));
}

/* client_auth: a named trust set exists; off unless enabled. */
static void
check_auth(const struct cg_config *cfg, const struct cg_client_auth_cfg *a)
{
    if (a->trust != NULL)
        CHECK(config_trust_find(cfg, a->trust) != NULL);
    if (!a->enabled)
        CHECK(a->mode == CG_AUTH_OFF);
    else
        CHECK(a->mode != CG_AUTH_OFF && a->trust != NULL);
    CHECK(a->verify_depth >= 1 && a->verify_depth <= 16);
}

static void
check_route(const struct cg_route_cfg *r)
{
    const struct cg_upstream_cfg *u = &r->upstream;
    CHECK(r->path != NULL && r->path[0] == '/');
    CHECK(u->url != NULL);
    if (u->scheme == CG_UP_UNIX) {
        check_path(u->unix_path);
        CHECK(u->unix_path != NULL && strlen(u->unix_path) <= 107);
    } else {
        CHECK(u->host != NULL && u->host[0] != '\0');
        CHECK(u->port >= 1 && u->port <= 65535);
    }
    check_path(u->ca_file);
    check_path(u->cert);
    check_path(u->key);
    CHECK((u->cert == NULL) == (u->key == NULL));
    for (size_t i = 0; i < r->n_headers; i++) {
        CHECK(r->headers[i].name != NULL && r->headers[i].name[0] != '\0');
        CHECK(r->headers[i].field < CG_F_COUNT);
    }
}

static void
check_listener(const struct cg_config *cfg, const struct cg_listener_cfg *l)
{
    CHECK(l->name != NULL && config_listener_find(cfg, l->name) == l);
    CHECK(l->tls_min_version == 12 || l->tls_min_version == 13);
    CHECK(l->n_certs > 0 && l->n_routes > 0);
    check_auth(cfg, &l->client_auth);
    for (size_t i = 0; i < l->n_certs; i++) {
        check_path(l->certs[i].cert);
        check_path(l->certs[i].key);
        if (l->certs[i].has_client_auth)
            check_auth(cfg, &l->certs[i].client_auth);
    }
    for (size_t i = 0; i < l->n_routes; i++)
        check_route(&l->routes[i]);
    CHECK(l->timeouts.handshake_ms > 0 && l->timeouts.idle_ms > 0);
    CHECK(l->limits.header_bytes >= 1024 && l->limits.header_count >= 8);
}

static void
check_config(const struct cg_config *cfg)
{
    check_path(cfg->data_dir);
    check_path(cfg->ports_file);
    check_path(cfg->pid_file);
    check_path(cfg->log_file);
    CHECK(cfg->workers >= 0 && cfg->workers <= 256);
    CHECK(cfg->drain_timeout_ms > 0);
    for (size_t i = 0; i < cfg->n_trusts; i++) {
        const struct cg_trust_cfg *t = &cfg->trusts[i];
        CHECK(config_trust_find(cfg, t->name) == t);
        CHECK(t->ca_files.n > 0);
        for (size_t j = 0; j < t->ca_files.n; j++)
            check_path(t->ca_files.v[j]);
    }
    for (size_t i = 0; i < cfg->n_listeners; i++)
        check_listener(cfg, &cfg->listeners[i]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cg_config *cfg = NULL;
    struct cg_strlist errors = {0};
    char *json = malloc(size + 1);
    CHECK(json != NULL);
    memcpy(json, data, size);
    json[size] = '\0';

    int rc = config_load_string(json, "/tmp", &cfg, &errors);
    if (rc == 0) {
        CHECK(cfg != NULL && errors.n == 0);
        check_config(cfg);
    } else {
        CHECK(rc == CG_ECONFIG && cfg == NULL && errors.n > 0);
        for (size_t i = 0; i < errors.n; i++)
            CHECK(errors.v[i][0] != '\0');
    }
    config_free(cfg);
    cg_strlist_clear(&errors);
    free(json);
    return 0;
}
