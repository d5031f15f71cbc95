/*
 * Algorithm fetches during a listener handshake, memoized per worker.
 *
 * Why: OpenSSL 3.0 looks algorithms up by name on every use: libssl
 * fetches its TLS 1.3 KDF for each secret it derives (a dozen per
 * handshake), EVP_Q_mac its MAC, EVP_DigestSignInit its digest and
 * signature, each EVP_PKEY_CTX its key manager and key exchange. Each
 * fetch takes the library context's method store lock, looks the name up
 * in its name map and matches properties: 3-4% of a handshake's server
 * CPU time (bench/README item 22).
 *
 * What: this file defines the fetch functions libssl and libcrypto call
 * through their PLT (EVP_MD_fetch, EVP_CIPHER_fetch, EVP_KDF_fetch,
 * EVP_MAC_fetch, EVP_SIGNATURE_fetch, EVP_KEYEXCH_fetch,
 * EVP_KEYMGMT_fetch), so the executable's definitions are the ones
 * reached (ELF symbol interposition, as in parsecache.c). Outside a
 * listener handshake step (tls_fetchmemo_arm; conn.c arms it around
 * SSL_do_handshake) each is libcrypto's own function, unchanged. Inside,
 * a fetch of the same kind, library context, name and property query as
 * one before on this thread returns the object libcrypto returned then
 * (a new reference, as a fetch gives); anything else is libcrypto's fetch,
 * remembered when it found something. libcrypto itself returns that same
 * object from its method store for such a fetch: certgate's providers
 * are loaded once, at start, and never unloaded, and the library contexts
 * handshakes use (the default one and tls_libctx()) live as long as the
 * process.
 *
 * The same for EVP_KEYMGMT_names_do_all (see there), with the results
 * of libcrypto's two walks that run for every key and key context
 * (known_walk, tls_fetchmemo_discover), and for
 * EVP_PKEY_digestsign_supports_digest with an EC key (see there).
 *
 * Per worker thread, no lock: at most MEMO_CAP entries, kept until the
 * thread exits; the names a handshake fetches come from a small fixed set
 * (a client picks among the suites, groups and signature schemes the
 * listener allows), so the table does not fill; when it is full, fetches
 * are simply not remembered.
 */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/objects.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "core/util.h"
#include "core/xmalloc.h"
#include "tls/tls_int.h"

#define MEMO_CAP 128 /* a power of two */
#define NAMES_CAP 16
#define SUPPORTS_CAP 8

enum kind {
    K_MD,
    K_CIPHER,
    K_KDF,
    K_MAC,
    K_SIGNATURE,
    K_KEYEXCH,
    K_KEYMGMT,
    K_N
};

static const char *const fetch_names[K_N] = {
    "EVP_MD_fetch",      "EVP_CIPHER_fetch",    "EVP_KDF_fetch",
    "EVP_MAC_fetch",     "EVP_SIGNATURE_fetch", "EVP_KEYEXCH_fetch",
    "EVP_KEYMGMT_fetch",
};

typedef void *fetch_fn(OSSL_LIB_CTX *ctx, const char *alg, const char *props);

struct memo_entry {
    void *obj; /* own reference; NULL: empty */
    const OSSL_LIB_CTX *ctx;
    char *alg, *props; /* props NULL: none given */
    uint32_t hash;
    unsigned char kind;
};

/* The names of a key manager, as EVP_KEYMGMT_names_do_all gave them
 * (pointers into the library context's name map, which never drops a
 * name). */
struct names_entry {
    EVP_KEYMGMT *km; /* own reference; NULL: empty */
    const char **names;
    size_t n;
    /* what the two walks libcrypto makes for each key and key context
     * leave in their data (see known_walk), once computed */
    bool legacy_known, ameth_known;
    int legacy;
    const char *ameth[2];
};

/* An answer of EVP_PKEY_digestsign_supports_digest for EC keys. */
struct supports_entry {
    const OSSL_PROVIDER *prov; /* the key's; NULL: empty */
    const OSSL_LIB_CTX *ctx;
    char md[32];
    int rv;
};

struct memo {
    struct memo_entry e[MEMO_CAP];
    size_t used;
    struct names_entry km[NAMES_CAP];
    struct supports_entry sup[SUPPORTS_CAP];
    struct tls_fetchmemo_stats stats;
};

static _Thread_local bool armed;
static _Thread_local struct memo *memo;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t memo_key;
static void *real[K_N];
typedef int names_fn(const EVP_KEYMGMT *km,
                     void (*fn)(const char *name, void *data), void *data);
static names_fn *real_names;
typedef tls_name_cb name_cb;
/* libcrypto's two callbacks of key-manager name walks (found by
 * tls_fetchmemo_discover; NULL: unknown) and the discovery's record */
static name_cb *cb_legacy, *cb_ameth;
static _Thread_local bool discovering;
static _Thread_local name_cb *seen[4];
static _Thread_local size_t n_seen;
typedef int supports_fn(EVP_PKEY *pkey, OSSL_LIB_CTX *libctx, const char *name,
                        const char *propq);
static supports_fn *real_supports;

static void
obj_free(unsigned char kind, void *obj)
{
    switch (kind) {
    case K_MD:
        EVP_MD_free(obj);
        break;
    case K_CIPHER:
        EVP_CIPHER_free(obj);
        break;
    case K_KDF:
        EVP_KDF_free(obj);
        break;
    case K_MAC:
        EVP_MAC_free(obj);
        break;
    case K_SIGNATURE:
        EVP_SIGNATURE_free(obj);
        break;
    case K_KEYEXCH:
        EVP_KEYEXCH_free(obj);
        break;
    default:
        EVP_KEYMGMT_free(obj);
        break;
    }
}

static bool
obj_up_ref(unsigned char kind, void *obj)
{
    switch (kind) {
    case K_MD:
        return EVP_MD_up_ref(obj) == 1;
    case K_CIPHER:
        return EVP_CIPHER_up_ref(obj) == 1;
    case K_KDF:
        return EVP_KDF_up_ref(obj) == 1;
    case K_MAC:
        return EVP_MAC_up_ref(obj) == 1;
    case K_SIGNATURE:
        return EVP_SIGNATURE_up_ref(obj) == 1;
    case K_KEYEXCH:
        return EVP_KEYEXCH_up_ref(obj) == 1;
    default:
        return EVP_KEYMGMT_up_ref(obj) == 1;
    }
}

static void
memo_free(void *p)
{
    struct memo *m = p;
    if (m == NULL)
        return;
    for (size_t i = 0; i < MEMO_CAP; i++) {
        struct memo_entry *e = &m->e[i];
        if (e->obj == NULL)
            continue;
        obj_free(e->kind, e->obj);
        free(e->alg);
        free(e->props);
    }
    for (size_t i = 0; i < NAMES_CAP; i++) {
        EVP_KEYMGMT_free(m->km[i].km);
        free(m->km[i].names);
    }
    free(m);
}

static void
init_once(void)
{
    for (size_t k = 0; k < K_N; k++)
        real[k] = cg_next_symbol(fetch_names[k], "OPENSSL_3.0.0");
    real_names =
        (names_fn *)cg_next_symbol("EVP_KEYMGMT_names_do_all", "OPENSSL_3.0.0");
    real_supports = (supports_fn *)cg_next_symbol(
        "EVP_PKEY_digestsign_supports_digest", "OPENSSL_3.0.0");
    if (pthread_key_create(&memo_key, memo_free) != 0)
        cg_abort("no thread key for the fetch memo");
}

void
tls_fetchmemo_arm(bool on)
{
    armed = on;
}

void
tls_fetchmemo_thread_free(void)
{
    pthread_once(&once, init_once);
    memo_free(memo);
    memo = NULL;
    (void)pthread_setspecific(memo_key, NULL);
}

void
tls_fetchmemo_stats(struct tls_fetchmemo_stats *out)
{
    *out = memo != NULL ? memo->stats : (struct tls_fetchmemo_stats){0};
}

static uint32_t
hash_key(unsigned char kind, const OSSL_LIB_CTX *ctx, const char *alg,
         const char *props)
{
    uint32_t h = 2166136261u ^ kind;
    uintptr_t c = (uintptr_t)ctx;
    h = (h ^ (uint32_t)(c ^ (c >> 32))) * 16777619u;
    for (const char *p = alg; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    h = (h ^ 0xffu) * 16777619u;
    for (const char *p = props != NULL ? props : ""; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h ^ (props == NULL ? 0x9e3779b9u : 0);
}

static bool
same_props(const char *a, const char *b)
{
    return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* The entry for the key, or the empty slot where it goes (NULL: full). */
static struct memo_entry *
slot(struct memo *m, uint32_t h, unsigned char kind, const OSSL_LIB_CTX *ctx,
     const char *alg, const char *props)
{
    for (size_t i = 0; i < MEMO_CAP; i++) {
        struct memo_entry *e = &m->e[(h + i) & (MEMO_CAP - 1)];
        if (e->obj == NULL)
            return e;
        if (e->hash == h && e->kind == kind && e->ctx == ctx &&
            strcmp(e->alg, alg) == 0 && same_props(e->props, props))
            return e;
    }
    return NULL;
}

/* The calling thread's memo, made on first use (freed at thread exit). */
static struct memo *
thread_memo(void)
{
    if (memo == NULL) {
        memo = xcalloc(1, sizeof(*memo));
        (void)pthread_setspecific(memo_key, memo);
    }
    return memo;
}

static void *
fetch(unsigned char kind, OSSL_LIB_CTX *ctx, const char *alg, const char *props)
{
    pthread_once(&once, init_once);
    fetch_fn *f = (fetch_fn *)real[kind];
    if (!armed || alg == NULL)
        return f(ctx, alg, props);
    struct memo *m = thread_memo();
    uint32_t h = hash_key(kind, ctx, alg, props);
    struct memo_entry *e = slot(m, h, kind, ctx, alg, props);
    if (e != NULL && e->obj != NULL && obj_up_ref(kind, e->obj)) {
        m->stats.hits++;
        return e->obj;
    }
    m->stats.misses++;
    void *obj = f(ctx, alg, props);
    /* kept only when the table has room (3/4 full at most) */
    if (obj == NULL || e == NULL || m->used >= MEMO_CAP * 3 / 4 ||
        !obj_up_ref(kind, obj))
        return obj;
    *e = (struct memo_entry){
        obj, ctx, xstrdup(alg), props != NULL ? xstrdup(props) : NULL, h, kind};
    m->used++;
    m->stats.kept++;
    return obj;
}

/* The interposed fetches: each is fetch() of its kind. */
#define FETCH_FN(T, kind)                                                      \
    T *T##_fetch(OSSL_LIB_CTX *ctx, const char *alg, const char *props)        \
    {                                                                          \
        return fetch(kind, ctx, alg, props);                                   \
    }

FETCH_FN(EVP_MD, K_MD)
FETCH_FN(EVP_CIPHER, K_CIPHER)
FETCH_FN(EVP_KDF, K_KDF)
FETCH_FN(EVP_MAC, K_MAC)
FETCH_FN(EVP_SIGNATURE, K_SIGNATURE)
FETCH_FN(EVP_KEYEXCH, K_KEYEXCH)
FETCH_FN(EVP_KEYMGMT, K_KEYMGMT)

struct capture {
    void (*fn)(const char *name, void *data);
    void *data;
    const char **names;
    size_t n;
};

static void
capture_name(const char *name, void *arg)
{
    struct capture *c = arg;
    c->names = xrealloc(c->names, (c->n + 1) * sizeof(*c->names));
    c->names[c->n++] = name;
    c->fn(name, c->data);
}

/*
 * The walk of e's names with fn over data, when fn is one of libcrypto's
 * two callbacks found at start and data is as its callers give it; false:
 * not such a walk (the names are to be replayed).
 *  - cb_legacy (get_legacy_alg_type_from_keymgmt, for every EVP_PKEY_CTX
 *    made): data is an int, NID_undef at first; each name's legacy type
 *    until one is known.
 *  - cb_ameth (EVP_PKEY_set_type_by_keymgmt, for every key given a type):
 *    data is two name pointers, NULL at first; the first two names that
 *    have a legacy ASN.1 method (a lookup among them, and among engines,
 *    under their lock).
 * Each looks names up in tables that do not change once certgate runs
 * (no engine or ASN.1 method is added after start), so the first walk's
 * result is every walk's: ~1,900 instructions per name, ~4 walks of 2
 * names per handshake.
 */
static bool
known_walk(struct names_entry *e, name_cb *fn, void *data)
{
    if (fn == NULL || (fn != cb_legacy && fn != cb_ameth))
        return false;
    if (fn == cb_legacy) {
        int *type = data;
        if (*type != NID_undef) /* the callback leaves it */
            return true;
        if (!e->legacy_known) {
            int t = NID_undef;
            for (size_t k = 0; k < e->n; k++)
                fn(e->names[k], &t);
            e->legacy = t;
            e->legacy_known = true;
        }
        *type = e->legacy;
        return true;
    }
    const char **str = data;
    if (str[0] != NULL || str[1] != NULL)
        return false;
    if (!e->ameth_known) {
        const char *got[2] = {NULL, NULL};
        for (size_t k = 0; k < e->n; k++)
            fn(e->names[k], got);
        e->ameth[0] = got[0];
        e->ameth[1] = got[1];
        e->ameth_known = true;
    }
    str[0] = e->ameth[0];
    str[1] = e->ameth[1];
    return true;
}

/* The one callback fn gives to name walks (NULL: none, or not one). */
static name_cb *
walk_callback(bool (*fn)(void))
{
    n_seen = 0;
    discovering = true;
    bool ok = fn();
    discovering = false;
    ERR_clear_error();
    return ok && n_seen == 1 ? seen[0] : NULL;
}

static EVP_KEYMGMT *probe_km;

static bool
probe_set_type(void)
{
    EVP_PKEY *k = EVP_PKEY_new();
    bool ok = k != NULL && EVP_PKEY_set_type_by_keymgmt(k, probe_km) == 1;
    EVP_PKEY_free(k);
    return ok;
}

static bool
probe_ctx(void)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "X25519", NULL);
    EVP_PKEY_CTX_free(c);
    return c != NULL;
}

static void
discover(void)
{
    probe_km = EVP_KEYMGMT_fetch(NULL, "X25519", NULL);
    if (probe_km == NULL)
        return;
    name_cb *ameth = walk_callback(probe_set_type);
    name_cb *legacy = walk_callback(probe_ctx);
    /* each checked on X25519's names with room to spare, so that a
     * callback that is not what it is taken for writes nothing it should
     * not: the type of X25519 alone, or the name "X25519" alone */
    union {
        int type;
        const char *str[2];
        unsigned char b[64];
    } u, zero;
    memset(&zero, 0, sizeof(zero));
    bool ok = ameth != NULL && legacy != NULL && ameth != legacy;
    if (ok) {
        memset(&u, 0, sizeof(u));
        ok = real_names(probe_km, legacy, &u) == 1 &&
             u.type == EVP_PKEY_X25519 &&
             memcmp(u.b + sizeof(int), zero.b, sizeof(u.b) - sizeof(int)) == 0;
    }
    if (ok) {
        memset(&u, 0, sizeof(u));
        ok = real_names(probe_km, ameth, &u) == 1 && u.str[0] != NULL &&
             strcasecmp(u.str[0], "X25519") == 0 && u.str[1] == NULL &&
             memcmp(u.b + sizeof(u.str), zero.b, sizeof(u.b) - sizeof(u.str)) ==
                 0;
    }
    ERR_clear_error();
    EVP_KEYMGMT_free(probe_km);
    probe_km = NULL;
    if (ok) {
        cb_legacy = legacy;
        cb_ameth = ameth;
    }
}

void
tls_fetchmemo_discover(void)
{
    static pthread_once_t discovered = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_once);
    pthread_once(&discovered, discover); /* before any worker reads them */
}

void
tls_fetchmemo_walk_callbacks(tls_name_cb **legacy, tls_name_cb **ameth)
{
    *legacy = cb_legacy;
    *ameth = cb_ameth;
}

/*
 * OpenSSL 3.0 lists a key manager's names by walking its whole name map
 * (~1,300 entries here), and does so for every EVP_PKEY_CTX made from a
 * key and every key given a type: ~9 times, ~50,000 instructions, per
 * handshake. Armed, the names are replayed as the first walk gave them.
 */
int
EVP_KEYMGMT_names_do_all(const EVP_KEYMGMT *km,
                         void (*fn)(const char *name, void *data), void *data)
{
    pthread_once(&once, init_once);
    if (discovering && n_seen < CG_ARRAY_LEN(seen))
        seen[n_seen++] = fn;
    if (!armed || km == NULL || fn == NULL)
        return real_names(km, fn, data);
    struct memo *m = thread_memo();
    struct names_entry *free_slot = NULL;
    for (size_t i = 0; i < NAMES_CAP; i++) {
        struct names_entry *e = &m->km[i];
        if (e->km == km) {
            m->stats.hits++;
            if (!known_walk(e, fn, data)) {
                for (size_t k = 0; k < e->n; k++)
                    fn(e->names[k], data);
            }
            return 1;
        }
        if (e->km == NULL && free_slot == NULL)
            free_slot = e;
    }
    m->stats.misses++;
    struct capture c = {fn, data, NULL, 0};
    int r = real_names(km, capture_name, &c);
    /* kept with a reference: the pointer cannot name another one */
    if (r == 1 && free_slot != NULL &&
        EVP_KEYMGMT_up_ref((EVP_KEYMGMT *)km) == 1) {
        *free_slot = (struct names_entry){
            .km = (EVP_KEYMGMT *)km, .names = c.names, .n = c.n};
        m->stats.kept++;
        return r;
    }
    free(c.names);
    return r;
}

/*
 * libssl asks whether the server's key can sign with a digest for each
 * signature scheme it weighs for its CertificateVerify or
 * ServerKeyExchange: EVP_PKEY_digestsign_supports_digest makes a digest
 * context and starts a signature on it (~14,000 instructions per full
 * handshake). For an EC key (ECDSA) the answer depends only on the
 * digest, the library context and the provider of the key (outside FIPS
 * mode the default provider does not look at the curve here). Armed, an
 * EC key's answer is the one the same question got before on this
 * thread; any other key, or a property query, asks libcrypto.
 */
int
EVP_PKEY_digestsign_supports_digest(EVP_PKEY *pkey, OSSL_LIB_CTX *libctx,
                                    const char *name, const char *propq)
{
    pthread_once(&once, init_once);
    const OSSL_PROVIDER *prov;
    if (!armed || pkey == NULL || name == NULL ||
        strlen(name) >= sizeof(memo->sup[0].md) ||
        (propq != NULL && propq[0] != '\0') ||
        EVP_PKEY_get_id(pkey) != EVP_PKEY_EC ||
        (prov = EVP_PKEY_get0_provider(pkey)) == NULL)
        return real_supports(pkey, libctx, name, propq);
    struct memo *m = thread_memo();
    struct supports_entry *free_slot = NULL;
    for (size_t i = 0; i < SUPPORTS_CAP; i++) {
        struct supports_entry *e = &m->sup[i];
        if (e->prov == prov && e->ctx == libctx && strcmp(e->md, name) == 0) {
            m->stats.supports_hits++;
            return e->rv;
        }
        if (e->prov == NULL && free_slot == NULL)
            free_slot = e;
    }
    int rv = real_supports(pkey, libctx, name, propq);
    if (free_slot != NULL && rv >= 0) {
        free_slot->prov = prov;
        free_slot->ctx = libctx;
        strcpy(free_slot->md, name);
        free_slot->rv = rv;
        m->stats.supports_kept++;
    }
    return rv;
}
