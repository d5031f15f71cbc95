/*
 * The server session cache: TLS 1.2 session ids and TLS 1.3 stateful
 * tickets (SSL_OP_NO_TICKET), one cache per process shared by every
 * listener and snapshot, behind one mutex.
 *
 * Why not stateless tickets: OpenSSL 3.0 serialises the session (client
 * certificate included) into every ticket and parses it back once more
 * while building it, and parses it again on resumption; each parse decodes
 * the client's public key through the provider decoders (~150 us here).
 * A cache entry keeps the SSL_SESSION itself, so a full handshake only
 * inserts a pointer and a resumption is a hash lookup; it also keeps the
 * leaf's identity (shared), so a resumption extracts nothing.
 *
 * What may resume: an entry records the auth hash of the virtual host that
 * made it (listener, client-auth mode, depth, CA set; also the session-id
 * context OpenSSL compares), the verdict and the verified chain. A lookup
 * hands the session back only when, against the listener's current
 * settings, the auth hash is the same, a required client certificate was
 * verified, every certificate of the chain is inside its validity period
 * now and the revocation index of the current trust set lists none of
 * them. Otherwise the client gets a full handshake, which refuses the
 * certificate with its reason. TLS 1.3 entries are single-use: each
 * resumption issues a fresh ticket.
 */
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/xmalloc.h"
#include "tls/tls_int.h"

struct sess_entry {
    unsigned char id[SSL_MAX_SSL_SESSION_ID_LENGTH];
    unsigned int idlen;
    unsigned char auth[32]; /* auth hash of the virtual host that made it */
    SSL_SESSION *sess;      /* own reference, without the client's
                               certificate (strip_peer) */
    struct tls_facts facts; /* what is checked of that certificate */
    struct cg_verdict verdict;
    struct cg_identity *ident;      /* the leaf's identity (a reference) */
    struct sess_entry *hnext;       /* hash chain */
    struct sess_entry *prev, *next; /* LRU: head is the most recent */
};

struct tls_sessions {
    pthread_mutex_t mu;
    struct sess_entry **buckets;
    size_t mask; /* buckets - 1 (a power of two) */
    struct sess_entry *head, *tail;
    size_t n, max;
};

static size_t
buckets_for(size_t max)
{
    size_t nb = 64;
    while (nb < max)
        nb *= 2;
    return nb;
}

struct tls_sessions *
tls_sessions_new(size_t max)
{
    struct tls_sessions *s = xcalloc(1, sizeof(*s));
    size_t nb = buckets_for(max);
    pthread_mutex_init(&s->mu, NULL);
    s->buckets = xcalloc(nb, sizeof(*s->buckets));
    s->mask = nb - 1;
    s->max = max;
    return s;
}

static void
entry_free(struct sess_entry *e)
{
    SSL_SESSION_free(e->sess);
    tls_facts_clear(&e->facts);
    ident_free(e->ident);
    free(e);
}

void
tls_sessions_free(struct tls_sessions *s)
{
    if (s == NULL)
        return;
    struct sess_entry *e = s->head;
    while (e != NULL) {
        struct sess_entry *next = e->next;
        entry_free(e);
        e = next;
    }
    free(s->buckets);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

size_t
tls_sessions_count(struct tls_sessions *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Session ids are random: their first bytes are a fine hash. */
static size_t
bucket_of(const struct tls_sessions *s, const unsigned char *id,
          unsigned int len)
{
    size_t h = 0;
    for (unsigned int i = 0; i < len && i < sizeof(h); i++)
        h = (h << 8) | id[i];
    return h & s->mask;
}

static struct sess_entry **
slot_find(struct tls_sessions *s, const unsigned char *id, unsigned int len)
{
    struct sess_entry **p = &s->buckets[bucket_of(s, id, len)];
    while (*p != NULL && ((*p)->idlen != len || memcmp((*p)->id, id, len) != 0))
        p = &(*p)->hnext;
    return p;
}

static void
lru_unlink(struct tls_sessions *s, struct sess_entry *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        s->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        s->tail = e->prev;
    e->prev = e->next = NULL;
}

static void
lru_push(struct tls_sessions *s, struct sess_entry *e)
{
    e->prev = NULL;
    e->next = s->head;
    if (s->head != NULL)
        s->head->prev = e;
    s->head = e;
    if (s->tail == NULL)
        s->tail = e;
}

/* Unlinks the entry of id (under mu); returns it, or NULL. */
static struct sess_entry *
take_locked(struct tls_sessions *s, const unsigned char *id, unsigned int len)
{
    struct sess_entry **p = slot_find(s, id, len);
    struct sess_entry *e = *p;
    if (e == NULL)
        return NULL;
    *p = e->hnext;
    lru_unlink(s, e);
    s->n--;
    return e;
}

/* Drops least recently used entries beyond max onto the list out (to be
 * freed outside the lock); returns the list. */
static struct sess_entry *
evict_locked(struct tls_sessions *s, struct sess_entry *out)
{
    while (s->n > s->max) {
        struct sess_entry *old = take_locked(s, s->tail->id, s->tail->idlen);
        old->hnext = out;
        out = old;
    }
    return out;
}

/* Adds e (consumed), replacing an entry with its id; returns the entries
 * pushed out, to be freed outside the lock. */
static struct sess_entry *
insert_locked(struct tls_sessions *s, struct sess_entry *e)
{
    struct sess_entry *out = take_locked(s, e->id, e->idlen);
    if (out != NULL)
        out->hnext = NULL;
    struct sess_entry **p = &s->buckets[bucket_of(s, e->id, e->idlen)];
    e->hnext = *p;
    *p = e;
    lru_push(s, e);
    s->n++;
    return evict_locked(s, out);
}

static void
entries_free(struct sess_entry *out)
{
    while (out != NULL) {
        struct sess_entry *next = out->hnext;
        entry_free(out);
        out = next;
    }
}

void
tls_sessions_set_max(struct tls_sessions *s, size_t max)
{
    struct sess_entry *out = NULL;
    pthread_mutex_lock(&s->mu);
    s->max = max;
    out = evict_locked(s, out);
    size_t nb = buckets_for(max);
    if (nb > s->mask + 1) {
        /* grown: rehash so that chains stay short */
        free(s->buckets);
        s->buckets = xcalloc(nb, sizeof(*s->buckets));
        s->mask = nb - 1;
        for (struct sess_entry *e = s->head; e != NULL; e = e->next) {
            struct sess_entry **b = &s->buckets[bucket_of(s, e->id, e->idlen)];
            e->hnext = *b;
            *b = e;
        }
    }
    pthread_mutex_unlock(&s->mu);
    entries_free(out);
}

/* Length of the DER element at p (at most n bytes), header included;
 * 0 when malformed. */
static size_t
der_elem(const unsigned char *p, size_t n)
{
    if (n < 2)
        return 0;
    size_t len = p[1], hdr = 2;
    if (len & 0x80) {
        size_t k = len & 0x7f;
        if (k == 0 || k > 3 || n < 2 + k)
            return 0;
        len = 0;
        for (size_t i = 0; i < k; i++)
            len = len << 8 | p[2 + i];
        hdr += k;
    }
    return hdr + len <= n ? hdr + len : 0;
}

/*
 * A copy of sess without the client's certificate: a parsed P-256
 * certificate is ~7 KB of the ~8 KB a session holds, and what a
 * resumption checks of it is kept in the entry's facts. OpenSSL has no
 * setter for it, so the session goes through its DER form (what a
 * stateless ticket carries) with the optional [3] peer element left out.
 * NULL when that fails (the session is then not cached).
 */
static SSL_SESSION *
strip_peer(SSL_SESSION *sess)
{
    int n = i2d_SSL_SESSION(sess, NULL);
    if (n <= 0)
        return NULL;
    size_t len = (size_t)n;
    unsigned char *der = xmalloc(len), *out = xmalloc(len + 4), *p = der;
    SSL_SESSION *copy = NULL;
    if (i2d_SSL_SESSION(sess, &p) != n || der[0] != 0x30 ||
        der_elem(der, len) != len)
        goto done;
    size_t hdr = der[1] & 0x80 ? 2 + (size_t)(der[1] & 0x7f) : 2;
    size_t body = 0;
    for (size_t off = hdr; off < len;) {
        size_t el = der_elem(der + off, len - off);
        if (el == 0)
            goto done;
        if (der[off] != 0xa3) { /* [3] EXPLICIT peer Certificate */
            memcpy(out + 4 + body, der + off, el);
            body += el;
        }
        off += el;
    }
    if (body > 0xffff)
        goto done;
    out[0] = 0x30;
    out[1] = 0x82;
    out[2] = (unsigned char)(body >> 8);
    out[3] = (unsigned char)body;
    const unsigned char *q = out;
    copy = d2i_SSL_SESSION(NULL, &q, (long)(body + 4));
done:
    OPENSSL_cleanse(der, len); /* the master secret is in there */
    OPENSSL_cleanse(out, len + 4);
    free(der);
    free(out);
    return copy;
}

/* Records a new session with what decided who may resume it. */
static int
new_cb(SSL *ssl, SSL_SESSION *sess)
{
    struct tls_conn *c = tls_conn_of(ssl);
    struct tls_sessions *s = c->l != NULL ? c->l->sessions : NULL;
    unsigned int len = 0;
    const unsigned char *id = SSL_SESSION_get_id(sess, &len);
    if (s == NULL || len == 0 || len > SSL_MAX_SSL_SESSION_ID_LENGTH)
        return 0; /* not kept: OpenSSL drops its reference */
    pthread_mutex_lock(&s->mu);
    bool off = s->max == 0;
    pthread_mutex_unlock(&s->mu);
    if (off)
        return 0;
    /* a resumption's session has no certificate left to strip */
    SSL_SESSION *copy =
        SSL_SESSION_get0_peer(sess) == NULL && SSL_SESSION_up_ref(sess) == 1
            ? sess
            : strip_peer(sess);
    if (copy == NULL)
        return 0;
    struct sess_entry *e = xcalloc(1, sizeof(*e));
    memcpy(e->id, id, len);
    e->idlen = len;
    memcpy(e->auth, c->l->vh[c->vhost].auth_hash, 32);
    e->sess = copy;
    e->verdict = c->verdict;
    e->ident = ident_ref(c->ident);
    if (c->verdict.status == CG_VERIFY_SUCCESS)
        tls_facts_copy(&e->facts, tls_conn_facts(c));
    pthread_mutex_lock(&s->mu);
    struct sess_entry *out = insert_locked(s, e);
    pthread_mutex_unlock(&s->mu);
    entries_free(out);
    return 0; /* OpenSSL keeps its own reference to sess */
}

/* Whether the current settings of c's virtual host accept entry e. */
static bool
entry_acceptable(const struct tls_conn *c, const struct sess_entry *e)
{
    const struct tls_vhost *vh = &c->l->vh[c->vhost];
    time_t now = time(NULL);
    if (memcmp(e->auth, vh->auth_hash, 32) != 0)
        return false;
    if ((int64_t)SSL_SESSION_get_time(e->sess) +
            (int64_t)SSL_SESSION_get_timeout(e->sess) <=
        (int64_t)now)
        return false;
    if (vh->mode == CG_AUTH_REQUIRED && e->verdict.status != CG_VERIFY_SUCCESS)
        return false;
    if (e->verdict.status != CG_VERIFY_SUCCESS)
        return true;
    if (!tls_facts_current(&e->facts, (int64_t)now))
        return false;
    ERR_set_mark();
    bool ok = vh->trust == NULL ||
              tls_facts_revoked(&e->facts, vh->trust, (int64_t)now) == NULL;
    ERR_pop_to_mark();
    return ok;
}

/* Looks a session up for resumption (see the file comment). */
static SSL_SESSION *
get_cb(SSL *ssl, const unsigned char *id, int len, int *copy)
{
    struct tls_conn *c = tls_conn_of(ssl);
    struct tls_sessions *s = c->l != NULL ? c->l->sessions : NULL;
    *copy = 0;
    if (s == NULL || len <= 0 || len > SSL_MAX_SSL_SESSION_ID_LENGTH)
        return NULL;
    struct sess_entry *e, mine = {0};
    pthread_mutex_lock(&s->mu);
    e = *slot_find(s, id, (unsigned int)len);
    if (e != NULL &&
        SSL_SESSION_get_protocol_version(e->sess) >= TLS1_3_VERSION) {
        e = take_locked(s, id, (unsigned int)len); /* single use */
        mine = *e;
        free(e);
    } else if (e != NULL) {
        lru_unlink(s, e);
        lru_push(s, e);
        mine = *e;
        SSL_SESSION_up_ref(mine.sess);
        mine.facts.issuers = NULL;
        tls_facts_copy(&mine.facts, &e->facts);
        ident_ref(mine.ident);
    }
    pthread_mutex_unlock(&s->mu);
    if (e == NULL)
        return NULL;
    if (!entry_acceptable(c, &mine)) {
        SSL_SESSION_free(mine.sess);
        tls_facts_clear(&mine.facts);
        ident_free(mine.ident);
        return NULL;
    }
    c->verdict = mine.verdict;
    tls_facts_clear(&c->facts);
    c->facts = mine.facts; /* its references move to c */
    ident_free(c->ident);  /* the session's: no extraction on resumption */
    c->ident = mine.ident;
    return mine.sess; /* our reference goes to OpenSSL (*copy == 0) */
}

static void
remove_cb(SSL_CTX *ctx, SSL_SESSION *sess)
{
    struct tls_listener *l = SSL_CTX_get_app_data(ctx);
    struct tls_sessions *s = l != NULL ? l->sessions : NULL;
    unsigned int len = 0;
    const unsigned char *id = SSL_SESSION_get_id(sess, &len);
    if (s == NULL || len == 0)
        return;
    pthread_mutex_lock(&s->mu);
    struct sess_entry *e = take_locked(s, id, len);
    pthread_mutex_unlock(&s->mu);
    if (e != NULL)
        entry_free(e);
}

void
tls_sessions_setup(SSL_CTX *ctx, bool enabled)
{
    if (!enabled) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        return;
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER |
                                            SSL_SESS_CACHE_NO_INTERNAL |
                                            SSL_SESS_CACHE_NO_AUTO_CLEAR);
    SSL_CTX_sess_set_new_cb(ctx, new_cb);
    SSL_CTX_sess_set_get_cb(ctx, get_cb);
    SSL_CTX_sess_set_remove_cb(ctx, remove_cb);
}
