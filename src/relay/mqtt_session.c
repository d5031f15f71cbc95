/*
 * The MQTT step of a relay connection: the first packet must be a
 * CONNECT (src/mqtt/connect.c decides), the client certificate is mapped
 * into the user name and/or client id, the optional password / JWT
 * checks run, and only then the rewritten CONNECT is queued for the
 * broker. Nothing reaches the broker before that: a refusal answers with
 * the CONNACK the spec wants (if any) and closes. See docs/mqtt.md.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "mqtt/connect.h"
#include "relay/relay_int.h"
#include "store/password.h"

/* The decisions about one CONNECT. */
struct decision {
    struct mqtt_connect c;
    struct cg_buf username, clientid; /* mapped values */
    const char *detail;               /* why refused, for the log */
};

/* One helper for every refusal: log, CONNACK (code >= 0), close. */
static void
mqtt_refuse(struct relay_conn *rc, enum mqtt_refusal why, int code,
            const char *detail)
{
    const struct cg_identity *id = tls_conn_identity_raw(rc->s.tls);
    struct cg_logrec r;
    cg_logrec_begin(&r, CG_LOG_INFO, "mqtt_refused");
    cg_logrec_int(&r, "conn", (int64_t)rc->id);
    cg_logrec_str(&r, "listener", rc->site->cfg->name);
    cg_logrec_str(&r, "peer", rc->peer);
    cg_logrec_str(&r, "reason", mqtt_refusal_name(why));
    cg_logrec_str(&r, "detail", detail);
    if (rc->level >= 0)
        cg_logrec_int(&r, "protocol_level", rc->level);
    if (code >= 0)
        cg_logrec_int(&r, "connack", code);
    if (id != NULL) {
        cg_logrec_str(&r, "cn", id->cn);
        cg_logrec_str(&r, "sha256", id->sha256);
    }
    cg_logrec_end(&r);
    metrics_mqtt(rc->mblk, (int)why, rc->level, code >= 0);
    cg_buf_reset(&rc->in);
    if (code < 0) {
        relay_close(rc, mqtt_refusal_name(why));
        return;
    }
    mqtt_connack(&rc->to_cl, rc->level, (uint8_t)code);
    rc->end = mqtt_refusal_name(why);
    rc->state = RC_CLOSING;
}

static void
refuse(struct relay_conn *rc, enum mqtt_refusal why, const char *detail)
{
    mqtt_refuse(rc, why, mqtt_refusal_code(why, rc->level), detail);
}

void
mqtt_session_unavailable(struct relay_conn *rc)
{
    cg_buf_reset(&rc->to_up);
    refuse(rc, MQTT_REFUSE_UNAVAILABLE, "upstream unreachable");
}

/* Maps the certificate into field (user name or client id) of d->c. */
static enum mqtt_refusal
map_field(struct relay_conn *rc, enum mqtt_map_mode mode, struct cg_buf *val,
          struct mqtt_bytes *field, bool *has, const char **detail)
{
    if (mode == MQTT_MAP_DISABLED)
        return MQTT_REFUSE_NONE;
    const struct cg_identity *id = tls_conn_identity(rc->s.tls);
    if (mqtt_map_value(mode, id, val, detail) != 0)
        return MQTT_REFUSE_NOT_AUTHORIZED;
    *field = (struct mqtt_bytes){(const uint8_t *)val->data, val->len};
    if (has != NULL)
        *has = true;
    return MQTT_REFUSE_NONE;
}

/* auth.password: the user of the mapped name, else of the certificate
 * email, must exist, be enabled and have this password. */
static enum mqtt_refusal
check_password(struct relay_conn *rc, struct decision *d)
{
    const struct cg_identity *id = tls_conn_identity(rc->s.tls);
    struct store_user u = {0};
    char err[CG_ERR_LEN];
    const char *name = d->c.has_username ? cg_buf_cstr(&d->username) : NULL;
    if (!d->c.has_password) {
        d->detail = "no password";
        return MQTT_REFUSE_BAD_CREDENTIALS;
    }
    int r =
        relay_store_user(rc->site->store, name, id ? id->email : NULL, &u, err);
    enum mqtt_refusal why = MQTT_REFUSE_NONE;
    if (r == CG_EIO) {
        cg_log(CG_LOG_ERROR, rc->id, "user store: %s", err);
        why = MQTT_REFUSE_UNAVAILABLE;
        d->detail = "user store unavailable";
    } else if (r != 0) {
        why = MQTT_REFUSE_BAD_CREDENTIALS;
        d->detail = "unknown user";
    } else if (u.status != STORE_USER_ACTIVE) {
        why = MQTT_REFUSE_NOT_AUTHORIZED;
        d->detail = "user disabled";
    } else if (!password_verify(u.pw_hash, (const char *)d->c.password.p,
                                d->c.password.len)) {
        why = MQTT_REFUSE_BAD_CREDENTIALS;
        d->detail = "wrong password";
    }
    store_user_cleanup(&u);
    return why;
}

/* auth.jwt: the password is a JWT whose claim equals the user name. */
static enum mqtt_refusal
check_jwt(struct relay_conn *rc, struct decision *d)
{
    static char err[CG_ERR_LEN]; /* loop thread only: detail for the log */
    const struct cg_jwt_cfg *j = &rc->site->cfg->mqtt.jwt;
    if (!d->c.has_password) {
        d->detail = "no token";
        return MQTT_REFUSE_BAD_CREDENTIALS;
    }
    const char *expect = d->c.has_username ? cg_buf_cstr(&d->username) : "";
    if (tls_jwt_verify(rc->site->jwt, (const char *)d->c.password.p,
                       d->c.password.len, (int64_t)time(NULL), j->claim, expect,
                       err) != 0) {
        d->detail = err;
        return MQTT_REFUSE_BAD_CREDENTIALS;
    }
    return MQTT_REFUSE_NONE;
}

/* Password and/or JWT: with both configured either may pass. */
static enum mqtt_refusal
check_auth(struct relay_conn *rc, struct decision *d)
{
    const struct cg_mqtt_cfg *m = &rc->site->cfg->mqtt;
    if (!m->auth_password && !m->has_jwt)
        return MQTT_REFUSE_NONE;
    if (d->c.has_auth_method) {
        d->detail = "MQTT 5 enhanced authentication is not supported";
        return MQTT_REFUSE_BAD_AUTH_METHOD;
    }
    enum mqtt_refusal why = MQTT_REFUSE_NONE;
    if (m->has_jwt)
        why = check_jwt(rc, d);
    if (m->auth_password && (!m->has_jwt || why != MQTT_REFUSE_NONE))
        why = check_password(rc, d);
    /* the password was for certgate: the broker never sees it */
    d->c.has_password = false;
    d->c.password = (struct mqtt_bytes){NULL, 0};
    return why;
}

/* Copies the client's own user name so that auth can read it as text. */
static void
keep_own_username(struct decision *d)
{
    if (d->c.has_username)
        cg_buf_append(&d->username, d->c.username.p, d->c.username.len);
}

/* Mapping and auth of a decoded CONNECT; MQTT_REFUSE_NONE to accept. */
static enum mqtt_refusal
decide(struct relay_conn *rc, struct decision *d)
{
    const struct relay_site *s = rc->site;
    enum mqtt_refusal why =
        map_field(rc, s->as_username, &d->username, &d->c.username,
                  &d->c.has_username, &d->detail);
    if (why == MQTT_REFUSE_NONE && s->as_username == MQTT_MAP_DISABLED)
        keep_own_username(d);
    if (why == MQTT_REFUSE_NONE)
        why = map_field(rc, s->as_clientid, &d->clientid, &d->c.client_id, NULL,
                        &d->detail);
    if (why == MQTT_REFUSE_NONE)
        why = check_auth(rc, d);
    return why;
}

/* Queues the rewritten CONNECT and what followed it; starts upstream. */
static void
accept_connect(struct relay_conn *rc, struct decision *d, size_t used)
{
    if (mqtt_connect_encode(&d->c, &rc->to_up) != 0) {
        refuse(rc, MQTT_REFUSE_NOT_AUTHORIZED, "rewritten CONNECT too large");
        return;
    }
    cg_buf_append(&rc->to_up, cg_buf_head(&rc->in) + used,
                  cg_buf_pending(&rc->in) - used);
    metrics_mqtt(rc->mblk, MQTT_REFUSE_NONE, rc->level, true);
    relay_log_open(rc, d->c.has_username ? (const char *)d->c.username.p : NULL,
                   d->c.username.len, (const char *)d->c.client_id.p,
                   d->c.client_id.len);
    cg_buf_cleanup(&rc->in);
    /* A client that pings every keep-alive period is never idle for
     * longer than 1.5 x that (MQTT 3.1.2.10): the broker enforces the
     * keep-alive, the gateway must not cut such a client off earlier. */
    int64_t ka_ms = (int64_t)d->c.keepalive * 1500;
    if (ka_ms > rc->idle_ms)
        rc->idle_ms = ka_ms;
    relay_upstream_start(rc);
}

void
mqtt_session_feed(struct relay_conn *rc)
{
    struct decision d = {0};
    char err[CG_ERR_LEN];
    size_t used = 0;
    int r = mqtt_connect_decode(
        (const uint8_t *)cg_buf_head(&rc->in), cg_buf_pending(&rc->in),
        rc->site->cfg->mqtt.max_connect_bytes, &d.c, &used, err);
    if (r == CG_EAGAIN)
        return;
    rc->level = d.c.level;
    if (r != 0) {
        mqtt_refuse(rc, d.c.refusal, d.c.connack, err);
        return;
    }
    cg_buf_init(&d.username);
    cg_buf_init(&d.clientid);
    enum mqtt_refusal why = decide(rc, &d);
    if (why != MQTT_REFUSE_NONE)
        refuse(rc, why, d.detail);
    else
        accept_connect(rc, &d, used);
    cg_buf_cleanup(&d.username);
    cg_buf_cleanup(&d.clientid);
}
