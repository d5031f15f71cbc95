/*
 * The verified-chain cache: X509_verify_cert() on a client chain costs
 * more than 100 us (chain building, one signature per link, policy and
 * extension checks), and a device presents the same chain on every
 * connection. A hit reuses the chain OpenSSL built before, so only what
 * depends on the moment is checked again (see tls_verify_store_ctx):
 * validity dates, the revocation index, certgate's own leaf checks; proof
 * of possession (CertificateVerify) is OpenSSL's, after the callback.
 *
 * Key: SHA-256 over the trust set's generation (a number no other trust
 * set of the process ever had: a reload, a revocation or a CA switch
 * builds new trust sets), the purpose, the verification parameters that
 * change the outcome (depth, auth level, flags) and the SHA-256 of the
 * exact DER bytes of every certificate presented, leaf first (the one
 * the parse cache computed when it parsed them, else computed here).
 * Nothing but a byte-equal chain verified under the very same trust set
 * hits. Only accepted chains are stored.
 *
 * One cache per worker thread (no lock): 256 sets of 4 ways, least
 * recently used way replaced. An entry keeps the issuers of the verified
 * chain (not the leaf: the connection's own leaf object is used), the
 * validity window common to the whole chain and the leaf's identity
 * (shared, immutable: the same bytes give the same identity).
 */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/xmalloc.h"
#include "tls/tls_int.h"

#define CC_SETS 256
#define CC_WAYS 4

struct cc_entry {
    unsigned char key[32];
    bool used;
    uint64_t tick;            /* last use */
    STACK_OF(X509) * issuers; /* chain[1..]: own references */
    int64_t not_before;       /* latest notBefore of the chain */
    int64_t not_after;        /* earliest notAfter of the chain */
    struct cg_identity *id;   /* the leaf's identity (a reference) */
};

struct tls_chaincache {
    struct cc_entry e[CC_SETS][CC_WAYS];
    uint64_t tick;
    EVP_MD *sha256;
    EVP_MD_CTX *md;
    struct tls_chaincache_stats stats;
};

struct tls_chaincache *
tls_chaincache_new(void)
{
    struct tls_chaincache *cc = xcalloc(1, sizeof(*cc));
    cc->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    cc->md = EVP_MD_CTX_new();
    if (cc->sha256 == NULL || cc->md == NULL)
        abort(); /* out of memory or a broken default provider */
    return cc;
}

static void
entry_clear(struct cc_entry *e)
{
    sk_X509_pop_free(e->issuers, X509_free);
    ident_free(e->id);
    memset(e, 0, sizeof(*e));
}

void
tls_chaincache_free(struct tls_chaincache *cc)
{
    if (cc == NULL)
        return;
    for (size_t s = 0; s < CC_SETS; s++) {
        for (size_t w = 0; w < CC_WAYS; w++)
            entry_clear(&cc->e[s][w]);
    }
    EVP_MD_free(cc->sha256);
    EVP_MD_CTX_free(cc->md);
    free(cc);
}

void
tls_chaincache_stats(const struct tls_chaincache *cc,
                     struct tls_chaincache_stats *out)
{
    *out = cc->stats;
}

static pthread_key_t cc_key;
static pthread_once_t cc_once = PTHREAD_ONCE_INIT;

static void
cc_destroy(void *p)
{
    tls_chaincache_free(p);
}

static void
cc_key_init(void)
{
    if (pthread_key_create(&cc_key, cc_destroy) != 0)
        abort();
}

struct tls_chaincache *
tls_chaincache_thread(void)
{
    pthread_once(&cc_once, cc_key_init);
    struct tls_chaincache *cc = pthread_getspecific(cc_key);
    if (cc == NULL) {
        cc = tls_chaincache_new();
        pthread_setspecific(cc_key, cc);
    }
    return cc;
}

void
tls_chaincache_thread_free(void)
{
    pthread_once(&cc_once, cc_key_init);
    tls_chaincache_free(pthread_getspecific(cc_key));
    pthread_setspecific(cc_key, NULL);
}

static void
put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (56 - 8 * i));
}

/* Hashes the SHA-256 of the DER of x. */
static bool
hash_cert(EVP_MD_CTX *md, X509 *x)
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    if (!tls_parsecache_sha256(x, d)) {
        unsigned char *der = NULL;
        int len = i2d_X509(x, &der);
        if (len <= 0)
            return false;
        (void)SHA256(der, (size_t)len, d);
        OPENSSL_free(der);
    }
    return EVP_DigestUpdate(md, d, sizeof(d)) == 1;
}

/* The cache key of ctx's chain under trust t (see the file comment). */
static bool
chain_key(struct tls_chaincache *cc, X509_STORE_CTX *ctx,
          const struct tls_trust *t, enum tls_purpose purpose,
          unsigned char *key)
{
    X509_VERIFY_PARAM *p = X509_STORE_CTX_get0_param(ctx);
    unsigned char head[8 * 5 + 8];
    memcpy(head, "cgvc-v2", 8);
    put_u64(head + 8, t->gen);
    put_u64(head + 16, (uint64_t)purpose);
    put_u64(head + 24, (uint64_t)(int64_t)X509_VERIFY_PARAM_get_depth(p));
    put_u64(head + 32, (uint64_t)(int64_t)X509_VERIFY_PARAM_get_auth_level(p));
    put_u64(head + 40, (uint64_t)(X509_VERIFY_PARAM_get_flags(p) &
                                  ~(unsigned long)X509_V_FLAG_USE_CHECK_TIME));
    if (EVP_DigestInit_ex2(cc->md, cc->sha256, NULL) != 1 ||
        EVP_DigestUpdate(cc->md, head, sizeof(head)) != 1 ||
        !hash_cert(cc->md, X509_STORE_CTX_get0_cert(ctx)))
        return false;
    STACK_OF(X509) *un = X509_STORE_CTX_get0_untrusted(ctx);
    for (int i = 0; i < sk_X509_num(un); i++) {
        if (!hash_cert(cc->md, sk_X509_value(un, i)))
            return false;
    }
    unsigned int len = 0;
    return EVP_DigestFinal_ex(cc->md, key, &len) == 1 && len == 32;
}

bool
tls_chaincache_key(struct tls_chaincache *cc, X509_STORE_CTX *ctx,
                   enum tls_purpose purpose, unsigned char *key)
{
    const struct tls_trust *t =
        tls_trust_of_store(X509_STORE_CTX_get0_store(ctx));
    /* params that make the answer depend on more than the chain bytes:
     * not cached (certgate verify --host) */
    X509_VERIFY_PARAM *p = X509_STORE_CTX_get0_param(ctx);
    if (t == NULL || X509_VERIFY_PARAM_get0_host(p, 0) != NULL ||
        X509_VERIFY_PARAM_get0_email(p) != NULL)
        return false;
    bool ok = chain_key(cc, ctx, t, purpose, key);
    if (!ok)
        ERR_clear_error();
    return ok;
}

static struct cc_entry *
set_of(struct tls_chaincache *cc, const unsigned char *key)
{
    return cc->e[key[0]];
}

static struct cc_entry *
entry_find(struct tls_chaincache *cc, const unsigned char *key)
{
    struct cc_entry *set = set_of(cc, key);
    for (size_t w = 0; w < CC_WAYS; w++) {
        if (set[w].used && memcmp(set[w].key, key, 32) == 0)
            return &set[w];
    }
    return NULL;
}

struct cg_identity *
tls_chaincache_identity(struct tls_chaincache *cc, const unsigned char *key)
{
    struct cc_entry *e = entry_find(cc, key);
    return e != NULL ? ident_ref(e->id) : NULL;
}

STACK_OF(X509) * tls_chaincache_get(struct tls_chaincache *cc,
                                    const unsigned char *key, X509 *leaf,
                                    int64_t now)
{
    struct cc_entry *set = set_of(cc, key);
    for (size_t w = 0; w < CC_WAYS; w++) {
        struct cc_entry *e = &set[w];
        if (!e->used || memcmp(e->key, key, 32) != 0)
            continue;
        /* outside the window: the full verification names the reason */
        if (now < e->not_before || now >= e->not_after) {
            cc->stats.misses++;
            return NULL;
        }
        STACK_OF(X509) *chain =
            sk_X509_new_reserve(NULL, 1 + sk_X509_num(e->issuers));
        if (chain == NULL)
            return NULL;
        X509_up_ref(leaf);
        sk_X509_push(chain, leaf);
        for (int i = 0; i < sk_X509_num(e->issuers); i++) {
            X509 *x = sk_X509_value(e->issuers, i);
            X509_up_ref(x);
            sk_X509_push(chain, x);
        }
        e->tick = ++cc->tick;
        cc->stats.hits++;
        return chain;
    }
    cc->stats.misses++;
    return NULL;
}

/* Unix time of an ASN1_TIME; false when it does not convert. */
static bool
asn1_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (!ASN1_TIME_to_tm(t, &tm))
        return false;
    *out = (int64_t)timegm(&tm);
    return true;
}

void
tls_chaincache_put(struct tls_chaincache *cc, const unsigned char *key,
                   STACK_OF(X509) * chain, struct cg_identity *id)
{
    int n = sk_X509_num(chain);
    int64_t nb = INT64_MIN, na = INT64_MAX;
    for (int i = 0; i < n; i++) {
        X509 *x = sk_X509_value(chain, i);
        int64_t b, a;
        if (!asn1_unix(X509_get0_notBefore(x), &b) ||
            !asn1_unix(X509_get0_notAfter(x), &a))
            return; /* not cached: every handshake verifies it */
        nb = b > nb ? b : nb;
        na = a < na ? a : na;
    }
    if (n < 1)
        return;
    struct cc_entry *set = set_of(cc, key);
    struct cc_entry *victim = &set[0];
    for (size_t w = 0; w < CC_WAYS; w++) {
        struct cc_entry *e = &set[w];
        if (e->used && memcmp(e->key, key, 32) == 0) {
            victim = e;
            break;
        }
        if (!e->used || (victim->used && e->tick < victim->tick))
            victim = e;
    }
    STACK_OF(X509) *issuers = sk_X509_new_reserve(NULL, n - 1);
    if (issuers == NULL)
        return;
    for (int i = 1; i < n; i++) {
        X509 *x = sk_X509_value(chain, i);
        X509_up_ref(x);
        sk_X509_push(issuers, x);
    }
    if (victim->used)
        cc->stats.evictions++;
    entry_clear(victim);
    memcpy(victim->key, key, 32);
    victim->used = true;
    victim->tick = ++cc->tick;
    victim->issuers = issuers;
    victim->not_before = nb;
    victim->not_after = na;
    victim->id = ident_ref(id);
    cc->stats.inserts++;
}
