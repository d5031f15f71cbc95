/*
 * What an mqtt or tcp listener needs at run time, built on the main
 * thread at snapshot time: the resolved upstream address, the upstream
 * TLS client context, the JWT keys and the user store handle.
 */
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "core/xmalloc.h"
#include "http/site.h"
#include "relay/relay_int.h"

/* Adds "<jpath>: <err>" to errors. */
static int
site_error(struct cg_strlist *errors, const char *jp, const char *err)
{
    char *line = xasprintf("%s: %s", jp, err);
    cg_strlist_add(errors, line);
    free(line);
    return CG_ECONFIG;
}

/* Loads the auth.jwt key of listener l. */
static int
jwt_build(struct relay_site *s, const char *jp, struct cg_strlist *errors)
{
    const struct cg_jwt_cfg *j = &s->cfg->mqtt.jwt;
    char err[CG_ERR_LEN], path[160];
    int rc = 0;
    s->jwt = tls_jwt_keys_new();
    if (j->secret != NULL &&
        tls_jwt_keys_add_secret(s->jwt, j->kid, j->secret, strlen(j->secret),
                                err) != 0) {
        snprintf(path, sizeof(path), "%s.auth.jwt.secret", jp);
        rc = site_error(errors, path, err);
    }
    if (j->public_key_file != NULL &&
        tls_jwt_keys_add_pem_file(s->jwt, j->kid, j->public_key_file, err) !=
            0) {
        snprintf(path, sizeof(path), "%s.auth.jwt.public_key_file", jp);
        rc = site_error(errors, path, err);
    }
    return rc;
}

/* The mqtt parts: mapping modes, JWT keys, user store. */
static int
mqtt_build(struct relay_site *s, const struct cg_config *cfg, const char *jp,
           struct cg_strlist *errors)
{
    static const enum mqtt_map_mode modes[] = {
        [CG_MQTT_MAP_DISABLED] = MQTT_MAP_DISABLED,
        [CG_MQTT_MAP_CN] = MQTT_MAP_CN,
        [CG_MQTT_MAP_DN] = MQTT_MAP_DN,
        [CG_MQTT_MAP_CRT] = MQTT_MAP_CRT,
        [CG_MQTT_MAP_PEM] = MQTT_MAP_PEM,
        [CG_MQTT_MAP_MD5] = MQTT_MAP_MD5,
        [CG_MQTT_MAP_SHA256] = MQTT_MAP_SHA256,
        [CG_MQTT_MAP_EMAIL] = MQTT_MAP_EMAIL,
        [CG_MQTT_MAP_SAN_URI] = MQTT_MAP_SAN_URI,
    };
    const struct cg_mqtt_cfg *m = &s->cfg->mqtt;
    s->as_username = modes[m->as_username];
    s->as_clientid = modes[m->as_clientid];
    if (m->auth_password) {
        s->store = xcalloc(1, sizeof(*s->store));
        pthread_mutex_init(&s->store->mu, NULL);
        s->store->data_dir = xstrdup(cfg->data_dir);
    }
    return m->has_jwt ? jwt_build(s, jp, errors) : 0;
}

int
relay_site_new(const struct cg_config *cfg, size_t idx, struct relay_site **out,
               struct cg_strlist *errors)
{
    const struct cg_listener_cfg *lc = &cfg->listeners[idx];
    struct relay_site *s = xcalloc(1, sizeof(*s));
    char jp[64], path[96], err[CG_ERR_LEN];
    int rc = 0;
    s->cfg = lc;
    s->index = idx;
    snprintf(jp, sizeof(jp), "listeners[%zu]", idx);
    snprintf(path, sizeof(path), "%s.upstream", jp);
    if (http_upstream_resolve(&lc->upstream, &s->addr, &s->addrlen, err) != 0)
        rc = site_error(errors, path, err);
    if (lc->upstream.scheme == CG_UP_HTTPS &&
        tls_client_ctx_new(&lc->upstream, jp, &s->tls, err) != 0) {
        cg_strlist_add(errors, err);
        rc = CG_ECONFIG;
    }
    if (lc->kind == CG_KIND_MQTT && mqtt_build(s, cfg, jp, errors) != 0)
        rc = CG_ECONFIG;
    if (rc != 0) {
        relay_site_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void
relay_site_free(struct relay_site *s)
{
    if (s == NULL)
        return;
    tls_client_ctx_free(s->tls);
    tls_jwt_keys_free(s->jwt);
    if (s->store != NULL) {
        store_close(s->store->st);
        pthread_mutex_destroy(&s->store->mu);
        free(s->store->data_dir);
        free(s->store);
    }
    free(s);
}

/* Looks name (then email) up; the store is opened on first use. Single
 * indexed row reads: cheap enough to run on the worker's loop. */
int
relay_store_user(struct relay_store *rs, const char *name, const char *email,
                 struct store_user *u, char *err)
{
    int rc = CG_ENOTFOUND;
    pthread_mutex_lock(&rs->mu);
    if (rs->st == NULL && store_open(rs->data_dir, &rs->st, err) != 0) {
        rs->st = NULL;
        rc = CG_EIO;
        goto out;
    }
    if (name != NULL)
        rc = store_user_get(rs->st, name, u, err);
    if (rc == CG_ENOTFOUND && email != NULL)
        rc = store_user_get_by_email(rs->st, email, u, err);
out:
    pthread_mutex_unlock(&rs->mu);
    return rc;
}

void
relay_site_set_metrics(struct relay_site *s, uint32_t offset)
{
    s->mbase = offset;
}
