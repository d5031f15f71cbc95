/*
 * Precomputed multiples of the P-256 public keys that verify most often.
 *
 * Why: verifying the client's CertificateVerify (ECDSA P-256) is the
 * largest single cost of a full handshake once the client's chain is
 * cached: ~15% of the server's CPU time. An ECDSA verification computes
 * u1*G + u2*Q (G the curve's generator, Q the signer's public key).
 * OpenSSL multiplies G from a table of precomputed multiples (~7 us) but
 * Q with a window it computes anew each time (~45 us). Clients reconnect
 * with the same key again and again (a device, a service making its
 * requests over new connections), and libssl verifies with it every time.
 *
 * What: this file defines EC_POINT_mul, so the executable's definition is
 * the one libcrypto's ECDSA verification reaches through its PLT (ELF
 * symbol interposition, as in parsecache.c). Outside a listener handshake
 * step (tls_hotkeys_arm; conn.c arms it around SSL_do_handshake) and for
 * every call that is not a verification's shape (both a generator scalar
 * and a point with its scalar), it is libcrypto's own function,
 * unchanged. Inside, on P-256, it counts the uses of each point per
 * worker; when one has been used HK_HOT times, a helper thread builds the
 * table OpenSSL builds for a generator (EC_GROUP_precompute_mult) for a
 * copy of the curve whose generator is that point. From then on the call
 * is n*G (libcrypto, the curve's table) + m*Q (libcrypto, Q's table),
 * added with EC_POINT_add: the same point, in ~15 us instead of ~51.
 *
 * Only public values take the new path: a verification's scalars come
 * from the signature and the message, its point is the signer's public
 * key; signing, key generation and ECDH pass no generator scalar or no
 * point and are never intercepted. The result is the sum libcrypto would
 * return; ECDSA_do_verify's checks (the ranges of r and s, the point at
 * infinity, the comparison with r) are libcrypto's, unchanged.
 * tests/unit/test_hotkeys.c and fuzz/fuzz_hotkeys.c hold it to libcrypto's
 * own result.
 *
 * Cost and bounds: a table is 148 KiB and takes ~22 ms of the helper
 * thread's CPU, paid back after ~600 verifications; HK_HOT is above that.
 * Per worker at most HK_TABLES tables; one unused for HK_IDLE_S seconds
 * gives its place to the next hot key. HK_KEYS points are counted (least
 * recently used replaced). Per worker thread, no lock; the helper only
 * touches its own copy of the curve until it publishes it.
 */
/* EC_GROUP_precompute_mult: deprecated in 3.0 with the rest of the EC_KEY
 * API, still OpenSSL's only way to build a generator's table. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "core/err.h"
#include "core/xmalloc.h"
#include "tls/tls_int.h"

#define HK_KEYS 32
#define HK_TABLES 4
#define HK_HOT 1024
#define HK_IDLE_S 60

typedef int mul_fn(const EC_GROUP *group, EC_POINT *r, const BIGNUM *n,
                   const EC_POINT *q, const BIGNUM *m, BN_CTX *ctx);

enum { T_BUILDING, T_READY, T_FAILED };

/* A table being built or built: the curve with the key as generator. The
 * helper thread owns g until it stores state; then the worker does. */
struct hk_table {
    EC_GROUP *g;
    _Atomic int state;
    bool joined;
    pthread_t th;
};

struct hk_key {
    EC_POINT *q;          /* own copy; NULL: empty */
    const EC_POINT *hint; /* the caller's object last time, compared first */
    uint64_t uses, tick;
    int64_t used;       /* seconds, CLOCK_MONOTONIC_COARSE */
    struct hk_table *t; /* NULL: none */
    bool failed;        /* its table could not be built: not tried again */
};

struct hotkeys {
    struct hk_key k[HK_KEYS];
    uint64_t tick;
    size_t tables;
    struct tls_hotkeys_stats stats;
};

static _Thread_local bool armed;
static _Thread_local struct hotkeys *hot;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t hot_key;
static mul_fn *real_mul;

static int
state_of(const struct hk_table *t)
{
    return atomic_load_explicit(&t->state, memory_order_acquire);
}

/* Waits for k's helper (if any) and frees its table. */
static void
table_drop(struct hotkeys *h, struct hk_key *k)
{
    struct hk_table *t = k->t;
    if (t == NULL)
        return;
    if (!t->joined)
        (void)pthread_join(t->th, NULL);
    EC_GROUP_free(t->g);
    free(t);
    k->t = NULL;
    h->tables--;
}

static void
key_clear(struct hotkeys *h, struct hk_key *k)
{
    table_drop(h, k);
    EC_POINT_free(k->q);
    *k = (struct hk_key){0};
}

static void
hot_free(void *p)
{
    struct hotkeys *h = p;
    if (h == NULL)
        return;
    for (size_t i = 0; i < HK_KEYS; i++)
        key_clear(h, &h->k[i]);
    free(h);
}

static void
init_once(void)
{
    real_mul = (mul_fn *)cg_next_symbol("EC_POINT_mul", "OPENSSL_3.0.0");
    if (pthread_key_create(&hot_key, hot_free) != 0)
        cg_abort("no thread key for the key tables");
}

void
tls_hotkeys_arm(bool on)
{
    armed = on;
}

void
tls_hotkeys_thread_free(void)
{
    pthread_once(&once, init_once);
    hot_free(hot);
    hot = NULL;
    (void)pthread_setspecific(hot_key, NULL);
}

static int64_t
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return ts.tv_sec;
}

/* The state of k's table, its helper joined once it is done; a table
 * that could not be built is dropped and not tried again. */
static int
table_state(struct hotkeys *h, struct hk_key *k)
{
    int st = state_of(k->t);
    if (st == T_BUILDING || k->t->joined)
        return st;
    (void)pthread_join(k->t->th, NULL);
    k->t->joined = true;
    if (st == T_FAILED) {
        table_drop(h, k);
        k->failed = true;
        h->stats.failed++;
    }
    return st;
}

/* True when no table of this thread is being built (one at a time). */
static bool
none_building(struct hotkeys *h)
{
    bool none = true;
    for (size_t i = 0; i < HK_KEYS; i++) {
        if (h->k[i].t != NULL && table_state(h, &h->k[i]) == T_BUILDING)
            none = false;
    }
    return none;
}

void
tls_hotkeys_wait(void)
{
    if (hot == NULL)
        return;
    while (!none_building(hot))
        sched_yield();
}

void
tls_hotkeys_stats(struct tls_hotkeys_stats *out)
{
    *out = hot != NULL ? hot->stats : (struct tls_hotkeys_stats){0};
    out->tables = hot != NULL ? hot->tables : 0;
}

static void *
build_main(void *p)
{
    struct hk_table *t = p;
    int ok = EC_GROUP_precompute_mult(t->g, NULL);
    ERR_clear_error();
    OPENSSL_thread_stop();
    atomic_store_explicit(&t->state, ok == 1 ? T_READY : T_FAILED,
                          memory_order_release);
    return NULL;
}

/* A place for one more table: a free one, or that of the ready table
 * unused longest if that is over HK_IDLE_S seconds. */
static bool
make_room(struct hotkeys *h, int64_t now)
{
    if (h->tables < HK_TABLES)
        return true;
    struct hk_key *old = NULL;
    for (size_t i = 0; i < HK_KEYS; i++) {
        struct hk_key *k = &h->k[i];
        if (k->t != NULL && state_of(k->t) == T_READY &&
            (old == NULL || k->used < old->used))
            old = k;
    }
    if (old == NULL || now - old->used < HK_IDLE_S)
        return false;
    table_drop(h, old);
    old->uses = 0;
    h->stats.replaced++;
    return true;
}

/* Starts building k's table (a copy of group with k->q as generator). */
static void
build(struct hotkeys *h, struct hk_key *k, const EC_GROUP *group)
{
    struct hk_table *t = xcalloc(1, sizeof(*t));
    t->g = EC_GROUP_dup(group);
    atomic_init(&t->state, T_BUILDING);
    if (t->g == NULL ||
        EC_GROUP_set_generator(t->g, k->q, EC_GROUP_get0_order(group),
                               EC_GROUP_get0_cofactor(group)) != 1 ||
        pthread_create(&t->th, NULL, build_main, t) != 0) {
        EC_GROUP_free(t->g);
        free(t);
        k->failed = true;
        h->stats.failed++;
        return;
    }
    k->t = t;
    h->tables++;
    h->stats.builds++;
}

static struct hk_key *
key_find(struct hotkeys *h, const EC_GROUP *group, const EC_POINT *q)
{
    for (size_t i = 0; i < HK_KEYS; i++) {
        if (h->k[i].q != NULL && h->k[i].hint == q &&
            EC_POINT_cmp(group, h->k[i].q, q, NULL) == 0)
            return &h->k[i];
    }
    for (size_t i = 0; i < HK_KEYS; i++) {
        if (h->k[i].q != NULL && EC_POINT_cmp(group, h->k[i].q, q, NULL) == 0)
            return &h->k[i];
    }
    return NULL;
}

/* A slot for a new key: an empty one or the least recently used without
 * a table. */
static struct hk_key *
key_slot(struct hotkeys *h)
{
    struct hk_key *lru = NULL;
    for (size_t i = 0; i < HK_KEYS; i++) {
        struct hk_key *k = &h->k[i];
        if (k->q == NULL)
            return k;
        if (k->t == NULL && (lru == NULL || k->tick < lru->tick))
            lru = k;
    }
    if (lru != NULL)
        key_clear(h, lru);
    return lru;
}

static struct hotkeys *
thread_hot(void)
{
    if (hot == NULL) {
        hot = xcalloc(1, sizeof(*hot));
        (void)pthread_setspecific(hot_key, hot);
    }
    return hot;
}

/* Counts a use of q; returns the curve with q's table when it is ready. */
static const EC_GROUP *
key_use(struct hotkeys *h, const EC_GROUP *group, const EC_POINT *q)
{
    struct hk_key *k = key_find(h, group, q);
    if (k == NULL) {
        k = key_slot(h);
        if (k == NULL || (k->q = EC_POINT_dup(q, group)) == NULL)
            return NULL;
    }
    k->hint = q;
    k->tick = ++h->tick;
    k->uses++;
    if (k->t != NULL) {
        if (table_state(h, k) != T_READY)
            return NULL;
        k->used = now_s();
        return k->t->g;
    }
    h->stats.counted++;
    if (k->failed || k->uses < HK_HOT || k->uses % 64 != 0 || !none_building(h))
        return NULL;
    int64_t now = now_s();
    if (make_room(h, now)) {
        k->used = now;
        build(h, k, group);
    }
    return NULL;
}

/* r = n*G + m*q from G's table and q's. */
static bool
mul_split(const EC_GROUP *group, const EC_GROUP *gq, EC_POINT *r,
          const BIGNUM *n, const BIGNUM *m, BN_CTX *ctx)
{
    EC_POINT *t = EC_POINT_new(group);
    bool ok = t != NULL && real_mul(group, r, n, NULL, NULL, ctx) == 1 &&
              real_mul(gq, t, m, NULL, NULL, ctx) == 1 &&
              EC_POINT_add(group, r, r, t, ctx) == 1;
    EC_POINT_free(t);
    return ok;
}

int
EC_POINT_mul(const EC_GROUP *group, EC_POINT *r, const BIGNUM *n,
             const EC_POINT *q, const BIGNUM *m, BN_CTX *ctx)
{
    pthread_once(&once, init_once);
    /* a verification's shape on P-256 (cofactor 1; OpenSSL multiplies a
     * generator from its table there) */
    if (!armed || n == NULL || q == NULL || m == NULL || group == NULL ||
        r == NULL || r == q ||
        EC_GROUP_get_curve_name(group) != NID_X9_62_prime256v1)
        return real_mul(group, r, n, q, m, ctx);
    struct hotkeys *h = thread_hot();
    ERR_set_mark();
    const EC_GROUP *gq =
        EC_POINT_is_at_infinity(group, q) == 1 ? NULL : key_use(h, group, q);
    bool ok = gq != NULL && mul_split(group, gq, r, n, m, ctx);
    (void)ERR_pop_to_mark();
    if (!ok)
        return real_mul(group, r, n, q, m, ctx);
    h->stats.fast++;
    return 1;
}
