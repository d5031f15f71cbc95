/*
 * What happens to the proxy's open connections when the settings change:
 * draining on shutdown, and the recheck of each client certificate under
 * a new snapshot (a revocation, a client-CA switch), also for a
 * connection that was still in its handshake then.
 */
#include "core/log.h"
#include "http/proxy_int.h"

void
proxy_drain(struct proxy_env *env)
{
    env->draining = true;
    struct proxy_conn *pc = env->conns, *next;
    for (; pc != NULL; pc = next) {
        next = pc->next;
        if ((pc->state == PC_HEAD && !pc->head_started) ||
            pc->state == PC_HANDSHAKE)
            pc_close(pc);
        else
            pc->close_after = true;
    }
}

static void
log_revoked_close(const struct proxy_conn *pc, const char *reason)
{
    const struct cg_identity *id = tls_conn_identity_raw(pc->s.tls);
    struct cg_logrec r;
    cg_logrec_begin(&r, CG_LOG_INFO, "connection_refused_now");
    cg_logrec_int(&r, "conn", (int64_t)pc->id);
    cg_logrec_str(&r, "listener", pc->site->cfg->name);
    cg_logrec_str(&r, "peer", pc->peer);
    cg_logrec_str(&r, "reason", reason);
    cg_logrec_str(&r, "cn", id ? id->cn : NULL);
    cg_logrec_str(&r, "serial", id ? id->serial : NULL);
    cg_logrec_str(&r, "sha256", id ? id->sha256 : NULL);
    cg_logrec_bool(&r, "in_flight", pc->state == PC_BODY);
    cg_logrec_end(&r);
}

/* Whether the listener now serving (tls_of) still accepts pc's client;
 * when not, logs and counts the refusal and returns its reason. */
static const char *
refused_now(struct proxy_conn *pc)
{
    struct proxy_env *env = pc->env;
    struct tls_listener *now =
        env->tls_of != NULL ? env->tls_of(env->tls_arg, pc->site->cfg->name)
                            : NULL;
    const char *reason;
    if (now == NULL || tls_conn_recheck(pc->s.tls, now, &reason))
        return NULL;
    log_revoked_close(pc, reason);
    metrics_add(pc->mblk, MC_RECHECK_CLOSED + metrics_reason(reason), 1);
    return reason;
}

bool
proxy_handshake_recheck(struct proxy_conn *pc)
{
    pc->recheck = false;
    if (refused_now(pc) == NULL)
        return true;
    pc_close(pc);
    return false;
}

void
proxy_revalidate(struct proxy_env *env,
                 struct tls_listener *(*tls_of)(void *arg,
                                                const char *listener),
                 void *arg)
{
    env->tls_of = tls_of;
    env->tls_arg = arg;
    struct proxy_conn *pc = env->conns, *next;
    for (; pc != NULL; pc = next) {
        next = pc->next;
        if (pc->dead)
            continue;
        if (pc->state == PC_HANDSHAKE) {
            pc->recheck = true; /* its verdict may be the old settings' */
            continue;
        }
        if (refused_now(pc) == NULL)
            continue;
        if (pc->state == PC_BODY) {
            pc->close_after = true; /* after the request in flight */
            continue;
        }
        pc_close(pc);
    }
}
