/*
 * The listener library context's TLS13-KDF and TLS1-PRF: OpenSSL's,
 * computed without their provider overhead, and TLS 1.3's application
 * traffic secrets kept.
 *
 * Why: libssl derives every TLS 1.3 secret and key through the library
 * context's TLS13-KDF (~20 per handshake), the label passed with the call
 * (RFC 8446 7.1, "tls13 " prefix). OpenSSL 3.0's costs ~27,000
 * instructions per secret (hkdf.c says where): 12% of a full handshake,
 * 25% of a resumption. And a listener connection leaves OpenSSL after its
 * handshake (record.c) needing the two application traffic secrets, which
 * OpenSSL 3.0 gives out only through its key-log callback: five lines
 * formatted per handshake, one sprintf per byte (6% of a full handshake,
 * 11% of a resumption).
 *
 * What: the default provider's TLS13-KDF with every function that takes
 * its context wrapped (the context is the default's inside ours). A
 * derive on a context fresh from newctx or reset whose parameters say all
 * the default would use (mode, digest SHA-256 or SHA-384, key, salt,
 * prefix, label, data; nothing else, lengths within what libssl passes)
 * is computed by hkdf.c, the inputs kept so that a later call on that
 * context (set, get, derive again, dup) first gives them to the default
 * context, as its own derive would have; anything else is the default's.
 * Outputs labelled "c ap traffic" and "s ap traffic" while a listener
 * connection's handshake step runs on this thread (tls_kdftap_arm) are
 * kept in that connection's secrets. Without the wrapper in place (no
 * listener context), the key log serves.
 *
 * TLS 1.2's PRF the same way: libssl derives the master secret, the key
 * block and both Finished values through the context's TLS1-PRF, a new
 * context each (~3.4 us: the digest fetched, an HMAC context duplicated
 * per block). Its TLS1-PRF is wrapped as TLS13-KDF is; a fresh context's
 * derive with a digest of SHA-256 or SHA-384 (not TLS 1.0-1.1's
 * MD5-SHA1), a secret and seeds (concatenated, as the default does) and
 * nothing else is hkdf.c's tls_prf, whose key states the cache keeps
 * within a handshake step (the master secret keys three of the four).
 * -5.4% of a full TLS 1.2 handshake's instructions, -23% of a TLS 1.2
 * resumption's. The key block such a derive gives while a listener
 * connection's step is armed is kept in its secrets with the master
 * secret and randoms it came from (tap12), so that the record layer takes
 * the connection over without deriving it again (-1.4%).
 */
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "core/xmalloc.h"
#include "tls/tls_int.h"

enum { ALG13, ALGPRF, N_ALG }; /* TLS13-KDF, TLS1-PRF */

static struct dflt_fns {
    OSSL_FUNC_kdf_newctx_fn *newctx;
    OSSL_FUNC_kdf_dupctx_fn *dupctx;
    OSSL_FUNC_kdf_freectx_fn *freectx;
    OSSL_FUNC_kdf_reset_fn *reset;
    OSSL_FUNC_kdf_derive_fn *derive;
    OSSL_FUNC_kdf_gettable_ctx_params_fn *gettable_ctx;
    OSSL_FUNC_kdf_settable_ctx_params_fn *settable_ctx;
    OSSL_FUNC_kdf_get_ctx_params_fn *get_ctx;
    OSSL_FUNC_kdf_set_ctx_params_fn *set_ctx;
    void (*gettable)(void), (*get)(void);
} dflt[N_ALG];
static OSSL_DISPATCH dispatch[N_ALG][24];
static _Thread_local struct tls_hs_secrets **armed;
static _Thread_local unsigned long n_fast, n_default; /* derives each way */

/* The inputs of one derive, as libssl gives them (bounded copies). */
enum { IN_MODE, IN_DIGEST, IN_KEY, IN_SALT, IN_PREFIX, IN_LABEL, IN_DATA };
static const char *const in_names[] = {
    OSSL_KDF_PARAM_MODE, OSSL_KDF_PARAM_DIGEST, OSSL_KDF_PARAM_KEY,
    OSSL_KDF_PARAM_SALT, OSSL_KDF_PARAM_PREFIX, OSSL_KDF_PARAM_LABEL,
    OSSL_KDF_PARAM_DATA,
};
#define IN_OCTETS 64

struct kdf_in {
    unsigned seen; /* bit per IN_ */
    int mode;
    enum tls_hash h;
    unsigned char v[5][IN_OCTETS]; /* key, salt, prefix, label, data */
    size_t len[5];
};

/* The inputs of one TLS1-PRF derive: the seeds concatenated, as the
 * default's context keeps them. */
#define PRF_SECRET 128
#define PRF_SEED 256

struct prf_in {
    enum tls_hash h;
    bool digest;
    unsigned char secret[PRF_SECRET];
    size_t secretlen; /* 0: not given */
    unsigned char seed[PRF_SEED];
    size_t seedlen;
};

struct kdf_ctx {
    void *inner;   /* the default's, made when first needed (inner_of) */
    void *provctx; /* to make it */
    int alg;
    enum { KDF_FRESH, KDF_PASSED, KDF_KEPT } state;
    union {
        struct kdf_in k; /* ALG13 */
        struct prf_in p; /* ALGPRF */
    } in;                /* KDF_KEPT: not yet given to inner */
};

static bool
in_octets(const OSSL_PARAM *p, struct kdf_in *in, int k)
{
    if (p->data_type != OSSL_PARAM_OCTET_STRING || p->data == NULL ||
        p->data_size == 0 || p->data_size > IN_OCTETS)
        return false;
    memcpy(in->v[k - IN_KEY], p->data, p->data_size);
    in->len[k - IN_KEY] = p->data_size;
    return true;
}

/* p's key is name (the first letters differ for most pairs: a
 * derive's parameters are compared ~20 times a handshake) */
static inline bool
key_is(const OSSL_PARAM *p, const char *name)
{
    return p->key[0] == name[0] && strcmp(p->key, name) == 0;
}

static bool
in_one(const OSSL_PARAM *p, struct kdf_in *in)
{
    int k = 0;
    while (k < (int)CG_ARRAY_LEN(in_names) && !key_is(p, in_names[k]))
        k++;
    if (k == (int)CG_ARRAY_LEN(in_names) || (in->seen & (1u << k)) != 0)
        return false;
    in->seen |= 1u << k;
    switch (k) {
    case IN_MODE:
        return p->data_type == OSSL_PARAM_INTEGER &&
               OSSL_PARAM_get_int(p, &in->mode) &&
               (in->mode == EVP_KDF_HKDF_MODE_EXTRACT_ONLY ||
                in->mode == EVP_KDF_HKDF_MODE_EXPAND_ONLY);
    case IN_DIGEST:
        return p->data_type == OSSL_PARAM_UTF8_STRING && p->data != NULL &&
               tls_hash_by_name(p->data, strnlen(p->data, p->data_size),
                                &in->h);
    default:
        return in_octets(p, in, k);
    }
}

/* The inputs of a derive that hkdf.c computes exactly as the default. */
static bool
in_parse(const OSSL_PARAM *params, size_t outlen, struct kdf_in *in)
{
    in->seen = 0;
    for (const OSSL_PARAM *p = params; p != NULL && p->key != NULL; p++) {
        if (!in_one(p, in))
            return false;
    }
    unsigned need =
        1u << IN_MODE | 1u << IN_DIGEST | 1u << IN_PREFIX | 1u << IN_LABEL;
    if ((in->seen & need) != need)
        return false;
    size_t hl = tls_hash_len(in->h);
    if (in->mode == EVP_KDF_HKDF_MODE_EXTRACT_ONLY)
        return outlen == hl;
    return (in->seen & (1u << IN_KEY)) != 0 && outlen > 0 && outlen <= 255 * hl;
}

#define IN_V(in, k) ((in)->seen & (1u << (k)) ? (in)->v[(k)-IN_KEY] : NULL)
#define IN_L(in, k) ((in)->len[(k)-IN_KEY])

static bool
in_derive(const struct kdf_in *in, unsigned char *out, size_t outlen)
{
    if (in->mode == EVP_KDF_HKDF_MODE_EXPAND_ONLY)
        return tls_hkdf_expand_label(
            in->h, IN_V(in, IN_KEY), IN_L(in, IN_KEY), IN_V(in, IN_PREFIX),
            IN_L(in, IN_PREFIX), IN_V(in, IN_LABEL), IN_L(in, IN_LABEL),
            IN_V(in, IN_DATA),
            in->seen & (1u << IN_DATA) ? IN_L(in, IN_DATA) : 0, out, outlen);
    return tls_hkdf_tls13_secret(in->h, IN_V(in, IN_SALT), IN_L(in, IN_SALT),
                                 IN_V(in, IN_KEY), IN_L(in, IN_KEY),
                                 IN_V(in, IN_PREFIX), IN_L(in, IN_PREFIX),
                                 IN_V(in, IN_LABEL), IN_L(in, IN_LABEL), out);
}

static const char *
digest_name(enum tls_hash h)
{
    return h == TLS_SHA256 ? "SHA2-256" : "SHA2-384";
}

/* The parameters that give a TLS1-PRF context what in holds. */
static void
prf_params(struct prf_in *in, OSSL_PARAM p[4])
{
    p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                            (char *)digest_name(in->h), 0);
    p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, in->secret,
                                             in->secretlen);
    p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, in->seed,
                                             in->seedlen);
    p[3] = OSSL_PARAM_construct_end();
}

/* The default's context inside c: made on first use, since a derive
 * computed here never needs it (~22 contexts per resumption). */
static void *
inner_of(struct kdf_ctx *c)
{
    if (c->inner == NULL)
        c->inner = dflt[c->alg].newctx(c->provctx);
    return c->inner;
}

/* A KDF_KEPT context's inputs given to the default's context. */
static bool
sync(struct kdf_ctx *c)
{
    if (c->state != KDF_KEPT)
        return true;
    if (inner_of(c) == NULL)
        return false;
    OSSL_PARAM p[CG_ARRAY_LEN(in_names) + 1], *q = p;
    if (c->alg == ALGPRF) {
        prf_params(&c->in.p, p);
    } else {
        struct kdf_in *in = &c->in.k;
        *q++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &in->mode);
        *q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                                (char *)digest_name(in->h), 0);
        for (int k = IN_KEY; k <= IN_DATA; k++) {
            if (in->seen & (1u << k))
                *q++ = OSSL_PARAM_construct_octet_string(
                    in_names[k], in->v[k - IN_KEY], in->len[k - IN_KEY]);
        }
        *q = OSSL_PARAM_construct_end();
    }
    bool ok = dflt[c->alg].set_ctx(c->inner, p) == 1;
    OPENSSL_cleanse(&c->in, sizeof(c->in));
    c->state = KDF_PASSED;
    return ok;
}

/*
 * The inputs of a TLS1-PRF derive that hkdf.c computes exactly as the
 * default: a digest of SHA-256 or SHA-384 (not TLS 1.0-1.1's MD5-SHA1), a
 * secret, seeds (libssl passes up to five, some empty; the default
 * concatenates them), nothing else; the default refuses an empty seed.
 */
static bool
prf_parse(const OSSL_PARAM *params, size_t outlen, struct prf_in *in)
{
    in->digest = false;
    in->secretlen = in->seedlen = 0;
    for (const OSSL_PARAM *p = params; p != NULL && p->key != NULL; p++) {
        if (key_is(p, OSSL_KDF_PARAM_DIGEST)) {
            if (in->digest || p->data_type != OSSL_PARAM_UTF8_STRING ||
                p->data == NULL ||
                !tls_hash_by_name(p->data, strnlen(p->data, p->data_size),
                                  &in->h))
                return false;
            in->digest = true;
            continue;
        }
        bool secret = key_is(p, OSSL_KDF_PARAM_SECRET);
        if ((!secret && !key_is(p, OSSL_KDF_PARAM_SEED)) ||
            p->data_type != OSSL_PARAM_OCTET_STRING ||
            (p->data == NULL && p->data_size != 0))
            return false;
        if (secret) {
            if (in->secretlen != 0 || p->data_size == 0 ||
                p->data_size > PRF_SECRET)
                return false;
            memcpy(in->secret, p->data, p->data_size);
            in->secretlen = p->data_size;
        } else if (p->data_size > 0) {
            if (p->data_size > PRF_SEED - in->seedlen)
                return false;
            memcpy(in->seed + in->seedlen, p->data, p->data_size);
            in->seedlen += p->data_size;
        }
    }
    return in->digest && in->secretlen > 0 && in->seedlen > 0 && outlen > 0;
}

/* Computes a fresh context's derive in hkdf.c when it can, keeping the
 * inputs; false: the default's derive is to run. */
static bool
derive_fast(struct kdf_ctx *c, unsigned char *key, size_t keylen,
            const OSSL_PARAM params[])
{
    if (c->state != KDF_FRESH)
        return false;
    bool ok;
    if (c->alg == ALGPRF) {
        struct prf_in *in = &c->in.p;
        ok = prf_parse(params, keylen, in) &&
             tls_prf(in->h, in->secret, in->secretlen, in->seed, in->seedlen,
                     key, keylen);
    } else {
        ok = in_parse(params, keylen, &c->in.k) &&
             in_derive(&c->in.k, key, keylen);
    }
    if (!ok)
        OPENSSL_cleanse(&c->in, sizeof(c->in));
    return ok;
}

/* The octets of parameter k (len in *n), or NULL. */
static const unsigned char *
octets(const struct kdf_in *in, const OSSL_PARAM *params, int k, size_t *n)
{
    if (in != NULL) {
        *n = IN_L(in, k);
        return IN_V(in, k);
    }
    const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, in_names[k]);
    if (p == NULL || p->data_type != OSSL_PARAM_OCTET_STRING)
        return NULL;
    *n = p->data_size;
    return p->data;
}

static bool
match(const struct kdf_in *in, const OSSL_PARAM *params, int k,
      const char *value)
{
    size_t n = 0, vn = strlen(value);
    const unsigned char *v = octets(in, params, k, &n);
    return v != NULL && n == vn && memcmp(v, value, n) == 0;
}

/* Keeps the output of a derive if it is an application traffic secret of
 * the armed connection's handshake, or the key or IV of one. */
static void
tap(const struct kdf_in *in, const OSSL_PARAM *params, const unsigned char *out,
    size_t len)
{
    struct tls_hs_secrets **slot = armed;
    if (slot == NULL || (in == NULL && params == NULL) ||
        !match(in, params, IN_PREFIX, "tls13 "))
        return;
    if (match(in, params, IN_LABEL, "c ap traffic")) {
        tls_secret_keep(slot, 0, out, len);
        return;
    }
    if (match(in, params, IN_LABEL, "s ap traffic")) {
        tls_secret_keep(slot, 1, out, len);
        return;
    }
    bool key = match(in, params, IN_LABEL, "key");
    if (*slot == NULL || !(key || match(in, params, IN_LABEL, "iv")))
        return;
    size_t sn = 0;
    const unsigned char *secret = octets(in, params, IN_KEY, &sn);
    for (int which = 0; which < 2 && secret != NULL; which++) {
        if (((*slot)->seen & (1 << which)) && sn == (*slot)->len &&
            memcmp(secret, (*slot)->v[which], sn) == 0)
            tls_secret_key_keep(*slot, which, key, out, len);
    }
}

/* Keeps the output of a TLS1-PRF derive if it is the armed connection's
 * key block: seed "key expansion" + server random + client random (RFC
 * 5246 6.3). */
static void
tap12(const struct prf_in *in, const unsigned char *out, size_t len)
{
    static const char label[] = "key expansion";
    if (armed != NULL && in->seedlen == sizeof(label) - 1 + 64 &&
        memcmp(in->seed, label, sizeof(label) - 1) == 0)
        tls_keyblock_keep(armed, in->secret, in->secretlen,
                          in->seed + sizeof(label) - 1, out, len);
}

static int
derive(void *vctx, unsigned char *key, size_t keylen, const OSSL_PARAM params[])
{
    struct kdf_ctx *c = vctx;
    if (derive_fast(c, key, keylen, params)) {
        c->state = KDF_KEPT;
        n_fast++;
        if (c->alg == ALG13)
            tap(&c->in.k, NULL, key, keylen);
        else
            tap12(&c->in.p, key, keylen);
        return 1;
    }
    n_default++;
    if (!sync(c) || inner_of(c) == NULL)
        return 0;
    c->state = KDF_PASSED;
    int ok = dflt[c->alg].derive(c->inner, key, keylen, params);
    if (ok > 0 && c->alg == ALG13)
        tap(NULL, params, key, keylen);
    return ok;
}

static void *
newctx_of(int alg, void *provctx)
{
    struct kdf_ctx *c = malloc(sizeof(*c));
    if (c == NULL)
        return NULL;
    c->inner = NULL;
    c->provctx = provctx;
    c->alg = alg;
    c->state = KDF_FRESH;
    return c;
}

static void
freectx(void *vctx)
{
    struct kdf_ctx *c = vctx;
    if (c == NULL)
        return;
    if (c->inner != NULL)
        dflt[c->alg].freectx(c->inner);
    if (c->state == KDF_KEPT)
        OPENSSL_cleanse(&c->in, sizeof(c->in));
    free(c);
}

static void *
dupctx(void *vsrc)
{
    struct kdf_ctx *src = vsrc, *c;
    if (!sync(src) || (c = malloc(sizeof(*c))) == NULL)
        return NULL;
    c->inner = NULL;
    if (src->inner != NULL &&
        (c->inner = dflt[src->alg].dupctx(src->inner)) == NULL) {
        free(c);
        return NULL;
    }
    c->provctx = src->provctx;
    c->alg = src->alg;
    c->state = src->state;
    return c;
}

static void
reset(void *vctx)
{
    struct kdf_ctx *c = vctx;
    if (c->inner != NULL)
        dflt[c->alg].reset(c->inner);
    if (c->state == KDF_KEPT)
        OPENSSL_cleanse(&c->in, sizeof(c->in));
    c->state = KDF_FRESH;
}

static int
set_ctx(void *vctx, const OSSL_PARAM params[])
{
    struct kdf_ctx *c = vctx;
    if (!sync(c) || inner_of(c) == NULL)
        return 0;
    c->state = KDF_PASSED;
    return dflt[c->alg].set_ctx(c->inner, params);
}

static int
get_ctx(void *vctx, OSSL_PARAM params[])
{
    struct kdf_ctx *c = vctx;
    return sync(c) && inner_of(c) != NULL
               ? dflt[c->alg].get_ctx(c->inner, params)
               : 0;
}

/* The functions that may come without a context: one per algorithm. */
#define PER_ALG(A, sfx)                                                        \
    static void *newctx_##sfx(void *provctx)                                   \
    {                                                                          \
        return newctx_of(A, provctx);                                          \
    }                                                                          \
    static const OSSL_PARAM *settable_##sfx(void *vctx, void *provctx)         \
    {                                                                          \
        struct kdf_ctx *c = vctx;                                              \
        return dflt[A].settable_ctx(c != NULL ? c->inner : NULL, provctx);     \
    }                                                                          \
    static const OSSL_PARAM *gettable_##sfx(void *vctx, void *provctx)         \
    {                                                                          \
        struct kdf_ctx *c = vctx;                                              \
        return dflt[A].gettable_ctx(c != NULL ? c->inner : NULL, provctx);     \
    }
PER_ALG(ALG13, 13)
PER_ALG(ALGPRF, prf)

#define FN(f) ((void (*)(void))(f))
#define ORIG(f) ((void (**)(void)) & d->f)

bool
tls_kdftap_wrap(OSSL_ALGORITHM *a, bool prf)
{
    int alg = prf ? ALGPRF : ALG13;
    struct dflt_fns *d = &dflt[alg];
    const struct tls_fn_repl r[] = {
        {OSSL_FUNC_KDF_NEWCTX, prf ? FN(newctx_prf) : FN(newctx_13),
         ORIG(newctx)},
        {OSSL_FUNC_KDF_DUPCTX, FN(dupctx), ORIG(dupctx)},
        {OSSL_FUNC_KDF_FREECTX, FN(freectx), ORIG(freectx)},
        {OSSL_FUNC_KDF_RESET, FN(reset), ORIG(reset)},
        {OSSL_FUNC_KDF_DERIVE, FN(derive), ORIG(derive)},
        {OSSL_FUNC_KDF_GETTABLE_CTX_PARAMS,
         prf ? FN(gettable_prf) : FN(gettable_13), ORIG(gettable_ctx)},
        {OSSL_FUNC_KDF_SETTABLE_CTX_PARAMS,
         prf ? FN(settable_prf) : FN(settable_13), ORIG(settable_ctx)},
        {OSSL_FUNC_KDF_GET_CTX_PARAMS, FN(get_ctx), ORIG(get_ctx)},
        {OSSL_FUNC_KDF_SET_CTX_PARAMS, FN(set_ctx), ORIG(set_ctx)},
        {OSSL_FUNC_KDF_GETTABLE_PARAMS, NULL, &d->gettable},
        {OSSL_FUNC_KDF_GET_PARAMS, NULL, &d->get},
    };
    /* A function taking the context that is not known here would get
     * ours: strict. Those without which no context works: required. */
    OSSL_ALGORITHM copy = *a;
    if (d->derive != NULL)
        return false;
    if (!tls_dispatch_wrap(&copy, dispatch[alg], CG_ARRAY_LEN(dispatch[alg]), r,
                           CG_ARRAY_LEN(r), true) ||
        d->newctx == NULL || d->freectx == NULL || d->derive == NULL ||
        d->set_ctx == NULL) {
        memset(d, 0, sizeof(*d));
        return false;
    }
    *a = copy;
    return true;
}

void
tls_kdftap_counts(unsigned long *fast, unsigned long *dflt)
{
    *fast = n_fast;
    *dflt = n_default;
}

bool
tls_kdftap_ready(void)
{
    return tls_libctx() != NULL && dflt[ALG13].derive != NULL;
}

void
tls_kdftap_arm(struct tls_hs_secrets **slot)
{
    armed = slot;
    tls_hkdf_cache(slot != NULL);
}

void
tls_secret_key_keep(struct tls_hs_secrets *hs, int which, bool key,
                    const unsigned char *v, size_t len)
{
    if (key && len <= sizeof(hs->key[which])) {
        memcpy(hs->key[which], v, len);
        hs->keylen[which] = (unsigned char)len;
    } else if (!key && len == sizeof(hs->iv[which])) {
        memcpy(hs->iv[which], v, len);
        hs->ivset |= (unsigned char)(1 << which);
    }
}

/* The connection's secrets, made on the first thing kept. */
static struct tls_hs_secrets *
secrets_of(struct tls_hs_secrets **slot)
{
    if (*slot == NULL)
        *slot = xcalloc(1, sizeof(**slot));
    return *slot;
}

void
tls_keyblock_keep(struct tls_hs_secrets **slot, const unsigned char *master,
                  size_t mlen, const unsigned char *randoms,
                  const unsigned char *kb, size_t len)
{
    if (len == 0 || len > TLS_KEYBLOCK_MAX || mlen == 0 ||
        mlen > sizeof((*slot)->kb_master))
        return;
    struct tls_hs_secrets *hs = secrets_of(slot);
    memcpy(hs->kb, kb, len);
    hs->kblen = (unsigned char)len;
    memcpy(hs->kb_master, master, mlen);
    hs->kb_mlen = (unsigned char)mlen;
    memcpy(hs->kb_randoms, randoms, sizeof(hs->kb_randoms));
}

void
tls_secret_keep(struct tls_hs_secrets **slot, int which,
                const unsigned char *secret, size_t len)
{
    if (len != 32 && len != 48)
        return;
    struct tls_hs_secrets *hs = secrets_of(slot);
    memcpy(hs->v[which], secret, len);
    hs->len = (unsigned char)len;
    hs->seen |= (unsigned char)(1 << which);
}
