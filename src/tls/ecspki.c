/*
 * The listener context's decoder of EC SubjectPublicKeyInfo (DER).
 *
 * Why: OpenSSL 3.0 decodes the public key of every certificate it parses,
 * twice per full handshake here (the client's leaf and the CA it sends
 * along). Its EC decoder parses the SubjectPublicKeyInfo a second time and
 * builds the curve from its parameters every time: EC_GROUP creation alone
 * is ~15 us (two Montgomery set-ups, each with a modular inverse), ~7% of
 * a full handshake's server CPU.
 *
 * What: the default provider's decoder with its decode function replaced.
 * A SubjectPublicKeyInfo that is exactly id-ecPublicKey with a named curve
 * TLS can sign with (P-256, P-384, P-521) and a point is turned into an
 * EC_KEY on a copy of a curve built once (~3 us); the point is checked to
 * be on the curve by the same function the default decoder uses
 * (EC_KEY_oct2key). The key reaches the default provider's EC key manager
 * as its own decoder hands it over: a reference to an EC_KEY, which the
 * key manager's load function takes. Anything else -- another curve,
 * explicit parameters, another encoding, a failure of the fast path -- is
 * handed to the default decoder unchanged, so every input decodes exactly
 * as before. The EC_KEY functions are deprecated in 3.0, and the object
 * the key manager loads is still an EC_KEY.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <stdatomic.h>
#include <string.h>

#include "core/util.h"
#include "tls/tls_int.h"

/* The longest SubjectPublicKeyInfo read here; longer ones (none is a
 * valid key certgate could use) are not decoded at all. */
#define SPKI_MAX (100 * 1024)

struct curve {
    int nid;
    EC_GROUP *group;       /* built once, copied per key */
    unsigned char oid[16]; /* DER of the curve's OBJECT IDENTIFIER */
    size_t oid_len;
};

static struct curve curves[] = {
    {NID_X9_62_prime256v1, NULL, {0}, 0},
    {NID_secp384r1, NULL, {0}, 0},
    {NID_secp521r1, NULL, {0}, 0},
};
static unsigned char ecpk_oid[16]; /* DER of id-ecPublicKey */
static size_t ecpk_oid_len;

/* The default decoder's functions and the core's BIO functions. */
static OSSL_FUNC_decoder_decode_fn *dflt_decode;
static OSSL_FUNC_BIO_read_ex_fn *core_read;
static OSSL_FUNC_BIO_new_membuf_fn *core_membuf;
static OSSL_FUNC_BIO_free_fn *core_bio_free;
static OSSL_DISPATCH dispatch[16];
static atomic_ulong n_fast, n_default; /* keys decoded each way */

static bool
oid_der(int nid, unsigned char *out, size_t *len)
{
    const ASN1_OBJECT *o = OBJ_nid2obj(nid);
    int n = o != NULL ? i2d_ASN1_OBJECT(o, NULL) : 0;
    if (n <= 0 || (size_t)n > 16)
        return false;
    unsigned char *p = out;
    i2d_ASN1_OBJECT(o, &p);
    *len = (size_t)n;
    return true;
}

/*
 * One DER element of tag `tag` at p[0] (before end): its contents in
 * val[0] and len[0], p[0] moved after it. Definite, minimally encoded
 * lengths only.
 */
static bool
der_take(const unsigned char **p, const unsigned char *end, int tag,
         const unsigned char **val, size_t *len)
{
    const unsigned char *q = *p;
    if (end - q < 2 || q[0] != tag)
        return false;
    size_t n = q[1];
    q += 2;
    if (n == 0x81) {
        if (end - q < 1 || q[0] < 0x80)
            return false;
        n = q[0];
        q += 1;
    } else if (n == 0x82) {
        if (end - q < 2 || q[0] == 0)
            return false;
        n = (size_t)q[0] << 8 | q[1];
        q += 2;
    } else if (n > 0x7f) {
        return false;
    }
    if ((size_t)(end - q) < n)
        return false;
    *val = q;
    *len = n;
    *p = q + n;
    return true;
}

/* The key of `spki`, or NULL when it is not one the fast path takes. */
static EC_KEY *
fast_key(const unsigned char *spki, size_t len)
{
    const unsigned char *p = spki, *end = spki + len, *seq, *alg, *bits;
    size_t seq_len, alg_len, bits_len;
    if (!der_take(&p, end, 0x30, &seq, &seq_len) || p != end)
        return NULL;
    p = seq;
    end = seq + seq_len;
    if (!der_take(&p, end, 0x30, &alg, &alg_len) ||
        !der_take(&p, end, 0x03, &bits, &bits_len) || p != end ||
        bits_len < 2 || bits[0] != 0 || alg_len <= ecpk_oid_len ||
        memcmp(alg, ecpk_oid, ecpk_oid_len) != 0)
        return NULL;
    const struct curve *c = NULL;
    for (size_t i = 0; i < CG_ARRAY_LEN(curves); i++) {
        if (curves[i].group != NULL &&
            alg_len == ecpk_oid_len + curves[i].oid_len &&
            memcmp(alg + ecpk_oid_len, curves[i].oid, curves[i].oid_len) == 0)
            c = &curves[i];
    }
    EC_KEY *key = c != NULL ? EC_KEY_new() : NULL;
    if (key == NULL)
        return NULL;
    ERR_set_mark(); /* a refusal here is the default decoder's to report */
    if (!EC_KEY_set_group(key, c->group) ||
        !EC_KEY_oct2key(key, bits + 1, bits_len - 1, NULL)) {
        EC_KEY_free(key);
        key = NULL;
    }
    ERR_pop_to_mark();
    return key;
}

/* Reads one whole DER element from `in` into a new buffer. */
static unsigned char *
read_element(OSSL_CORE_BIO *in, size_t *len)
{
    unsigned char head[4];
    size_t got = 0, n = 0;
    if (!core_read(in, head, 2, &got) || got != 2)
        return NULL;
    size_t hlen = 2, body = head[1];
    if (head[1] == 0x81 || head[1] == 0x82) {
        size_t extra = head[1] == 0x81 ? 1 : 2;
        if (!core_read(in, head + 2, extra, &got) || got != extra)
            return NULL;
        hlen += extra;
        body = extra == 1 ? head[2] : (size_t)head[2] << 8 | head[3];
    } else if (head[1] > 0x7f) {
        return NULL;
    }
    if (body > SPKI_MAX)
        return NULL;
    unsigned char *buf = OPENSSL_malloc(hlen + body);
    if (buf == NULL)
        return NULL;
    memcpy(buf, head, hlen);
    while (n < body && core_read(in, buf + hlen + n, body - n, &got) && got > 0)
        n += got;
    *len = hlen + n;
    return buf;
}

/* Hands the key to the key manager the way the default decoder does. */
static int
deliver(EC_KEY *key, OSSL_CALLBACK *data_cb, void *data_cbarg)
{
    int type = OSSL_OBJECT_PKEY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &type),
        OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
                                         (char *)"EC", 0),
        OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &key,
                                          sizeof(key)),
        OSSL_PARAM_construct_end(),
    };
    int ok = data_cb(params, data_cbarg);
    EC_KEY_free(key); /* NULL when the key manager took it */
    return ok;
}

static int
decode(void *ctx, OSSL_CORE_BIO *in, int selection, OSSL_CALLBACK *data_cb,
       void *data_cbarg, OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    if (core_read == NULL ||
        (selection != 0 && !(selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY)))
        return dflt_decode(ctx, in, selection, data_cb, data_cbarg, pw_cb,
                           pw_cbarg);
    size_t len = 0;
    unsigned char *der = read_element(in, &len);
    if (der == NULL)
        return 1; /* nothing decoded, as the default decoder reports it */
    EC_KEY *key = fast_key(der, len);
    int ok;
    if (key != NULL) {
        atomic_fetch_add_explicit(&n_fast, 1, memory_order_relaxed);
        ok = deliver(key, data_cb, data_cbarg);
    } else {
        atomic_fetch_add_explicit(&n_default, 1, memory_order_relaxed);
        OSSL_CORE_BIO *mem = core_membuf(der, (int)len);
        ok = mem == NULL || dflt_decode(ctx, mem, selection, data_cb,
                                        data_cbarg, pw_cb, pw_cbarg);
        if (mem != NULL)
            core_bio_free(mem);
    }
    OPENSSL_free(der);
    return ok;
}

bool
tls_ecspki_wrap(OSSL_ALGORITHM *a)
{
    if (dflt_decode != NULL ||
        !oid_der(NID_X9_62_id_ecPublicKey, ecpk_oid, &ecpk_oid_len))
        return false;
    for (size_t i = 0; i < CG_ARRAY_LEN(curves); i++) {
        if (!oid_der(curves[i].nid, curves[i].oid, &curves[i].oid_len))
            continue;
        curves[i].group = EC_GROUP_new_by_curve_name(curves[i].nid);
    }
    void (*orig)(void);
    const struct tls_fn_repl r = {OSSL_FUNC_DECODER_DECODE,
                                  (void (*)(void))decode, &orig};
    if (!tls_dispatch_wrap(a, dispatch, CG_ARRAY_LEN(dispatch), &r, 1, false) ||
        orig == NULL)
        return false;
    dflt_decode = (OSSL_FUNC_decoder_decode_fn *)orig;
    return true;
}

void
tls_ecspki_core(const OSSL_DISPATCH *in)
{
    OSSL_FUNC_BIO_read_ex_fn *rd = NULL;
    for (; in != NULL && in->function_id != 0; in++) {
        if (in->function_id == OSSL_FUNC_BIO_READ_EX)
            rd = OSSL_FUNC_BIO_read_ex(in);
        else if (in->function_id == OSSL_FUNC_BIO_NEW_MEMBUF)
            core_membuf = OSSL_FUNC_BIO_new_membuf(in);
        else if (in->function_id == OSSL_FUNC_BIO_FREE)
            core_bio_free = OSSL_FUNC_BIO_free(in);
    }
    /* Without all three the fast path stays off (every key is the
     * default decoder's). */
    if (core_membuf != NULL && core_bio_free != NULL)
        core_read = rd;
}

void
tls_ecspki_counts(unsigned long *fast, unsigned long *dflt)
{
    *fast = atomic_load_explicit(&n_fast, memory_order_relaxed);
    *dflt = atomic_load_explicit(&n_default, memory_order_relaxed);
}
