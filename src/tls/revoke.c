/*
 * The revocation index: per issuer, a sorted array of 21-byte serial
 * records (see revoke.h for the record format and how issuers are told
 * apart). Built on the main thread, then read by every worker without
 * locks; freed with the trust set that owns it.
 */
#include <assert.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"
#include "core/xmalloc.h"
#include "tls/revoke.h"

#define REC_LEN (1 + TLS_SERIAL_MAX)

struct revissuer {
    X509 *ca;                 /* own reference */
    const unsigned char *key; /* ca's subjectPublicKey bits (borrowed) */
    int keylen;
    char *source;        /* owned; NULL when none */
    int64_t stale_after; /* unix seconds or TLS_REV_NEVER */
    unsigned char *rec;  /* n records of REC_LEN bytes */
    size_t n, cap;
};

/* Builder and index share one layout: building only sorts in place. */
struct tls_revindex_builder {
    struct revissuer *v;
    size_t n, cap;
};

struct tls_revindex {
    struct revissuer *v;
    size_t n;
    size_t entries;
};

struct tls_revindex_builder *
tls_revindex_builder_new(void)
{
    return xcalloc(1, sizeof(struct tls_revindex_builder));
}

static void
issuers_free(struct revissuer *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        X509_free(v[i].ca);
        free(v[i].source);
        free(v[i].rec);
    }
    free(v);
}

void
tls_revindex_builder_free(struct tls_revindex_builder *b)
{
    if (b == NULL)
        return;
    issuers_free(b->v, b->n);
    free(b);
}

/* True when x has r's subject name and public key. */
static bool
same_ca(const struct revissuer *r, X509 *x)
{
    const ASN1_BIT_STRING *k = X509_get0_pubkey_bitstr(x);
    if (k == NULL || ASN1_STRING_length(k) != r->keylen ||
        memcmp(ASN1_STRING_get0_data(k), r->key, (size_t)r->keylen) != 0)
        return false;
    return X509_NAME_cmp(X509_get_subject_name(x),
                         X509_get_subject_name(r->ca)) == 0;
}

size_t
tls_revindex_builder_issuer(struct tls_revindex_builder *b, X509 *ca)
{
    const ASN1_BIT_STRING *k = X509_get0_pubkey_bitstr(ca);
    assert(k != NULL);
    for (size_t i = 0; i < b->n; i++) {
        if (same_ca(&b->v[i], ca))
            return i;
    }
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 4;
        b->v = xrealloc(b->v, b->cap * sizeof(*b->v));
    }
    struct revissuer *r = &b->v[b->n];
    memset(r, 0, sizeof(*r));
    X509_up_ref(ca);
    r->ca = ca;
    r->key = ASN1_STRING_get0_data(k);
    r->keylen = ASN1_STRING_length(k);
    r->stale_after = TLS_REV_NEVER;
    return b->n++;
}

const char *
tls_revindex_builder_source(const struct tls_revindex_builder *b, size_t id)
{
    assert(id < b->n);
    return b->v[id].source;
}

void
tls_revindex_builder_set_source(struct tls_revindex_builder *b, size_t id,
                                const char *source, int64_t stale_after)
{
    assert(id < b->n);
    free(b->v[id].source);
    b->v[id].source = source ? xstrdup(source) : NULL;
    b->v[id].stale_after = stale_after;
}

void
tls_revindex_builder_reserve(struct tls_revindex_builder *b, size_t id,
                             size_t n)
{
    assert(id < b->n);
    struct revissuer *r = &b->v[id];
    if (r->cap - r->n >= n)
        return;
    r->cap = r->n + n;
    r->rec = xrealloc(r->rec, r->cap * REC_LEN);
}

/* Writes the record of a serial; false when it has more than 20 bytes. */
static bool
make_key(const unsigned char *mag, size_t len, bool negative,
         unsigned char *out)
{
    while (len > 0 && mag[0] == 0) {
        mag++;
        len--;
    }
    if (len > TLS_SERIAL_MAX)
        return false;
    memset(out, 0, REC_LEN);
    out[0] = negative && len > 0; /* -0 is 0 */
    if (len > 0)
        memcpy(out + REC_LEN - len, mag, len);
    return true;
}

int
tls_revindex_builder_add(struct tls_revindex_builder *b, size_t id,
                         const unsigned char *mag, size_t len, bool negative)
{
    assert(id < b->n);
    struct revissuer *r = &b->v[id];
    unsigned char key[REC_LEN];
    if (!make_key(mag, len, negative, key))
        return CG_EINVAL;
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->rec = xrealloc(r->rec, r->cap * REC_LEN);
    }
    memcpy(r->rec + r->n++ * REC_LEN, key, REC_LEN);
    return 0;
}

int
tls_revindex_builder_add_hex(struct tls_revindex_builder *b, size_t id,
                             const char *hex)
{
    unsigned char nib[2 * TLS_SERIAL_MAX], mag[TLS_SERIAL_MAX] = {0};
    size_t nd = 0;
    bool any = false;
    for (const char *p = hex; *p; p++) {
        if (*p == ':')
            continue;
        int v = cg_hexval(*p);
        if (v < 0)
            return CG_EINVAL;
        any = true;
        if (nd == 0 && v == 0)
            continue; /* leading zero */
        if (nd == sizeof(nib))
            return CG_EINVAL;
        nib[nd++] = (unsigned char)v;
    }
    if (!any)
        return CG_EINVAL;
    size_t len = (nd + 1) / 2;
    for (size_t i = 0; i < nd; i++) /* i-th nibble from the right */
        mag[len - 1 - i / 2] |=
            (unsigned char)(nib[nd - 1 - i] << (4 * (i & 1)));
    return tls_revindex_builder_add(b, id, mag, len, false);
}

static int
cmp_rec(const void *a, const void *b)
{
    return memcmp(a, b, REC_LEN);
}

/* Sorts (unless already sorted), drops duplicates, trims the array. */
static void
finish(struct revissuer *r)
{
    bool sorted = true;
    for (size_t i = 1; sorted && i < r->n; i++)
        sorted = memcmp(r->rec + (i - 1) * REC_LEN, r->rec + i * REC_LEN,
                        REC_LEN) < 0;
    if (!sorted) {
        qsort(r->rec, r->n, REC_LEN, cmp_rec);
        size_t out = r->n > 0;
        for (size_t i = 1; i < r->n; i++) {
            if (memcmp(r->rec + (out - 1) * REC_LEN, r->rec + i * REC_LEN,
                       REC_LEN) != 0)
                memmove(r->rec + out++ * REC_LEN, r->rec + i * REC_LEN,
                        REC_LEN);
        }
        r->n = out;
    }
    if (r->n == 0) {
        XFREE(&r->rec);
    } else if (r->cap != r->n) {
        r->rec = xrealloc(r->rec, r->n * REC_LEN);
    }
    r->cap = r->n;
}

struct tls_revindex *
tls_revindex_build(struct tls_revindex_builder *b)
{
    struct tls_revindex *ix = xcalloc(1, sizeof(*ix));
    if (b == NULL)
        return ix;
    for (size_t i = 0; i < b->n; i++) {
        finish(&b->v[i]);
        ix->entries += b->v[i].n;
    }
    ix->v = b->v;
    ix->n = b->n;
    free(b);
    return ix;
}

void
tls_revindex_free(struct tls_revindex *ix)
{
    if (ix == NULL)
        return;
    issuers_free(ix->v, ix->n);
    free(ix);
}

/* Binary search of one issuer's records. */
static bool
rec_find(const struct revissuer *r, const unsigned char *key)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(r->rec + mid * REC_LEN, key, REC_LEN);
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

bool
tls_revindex_contains(const struct tls_revindex *ix, size_t id,
                      const unsigned char *mag, size_t len, bool negative)
{
    unsigned char key[REC_LEN];
    if (ix == NULL || id >= ix->n || !make_key(mag, len, negative, key))
        return false;
    return rec_find(&ix->v[id], key);
}

/* The record of cert's serial; false when it cannot be in any index. */
static bool
cert_key(X509 *cert, unsigned char *key)
{
    const ASN1_INTEGER *sn = X509_get0_serialNumber(cert);
    if (sn == NULL)
        return false;
    return make_key(ASN1_STRING_get0_data(sn), (size_t)ASN1_STRING_length(sn),
                    ASN1_STRING_type(sn) == V_ASN1_NEG_INTEGER, key);
}

/* True when r may be cert's issuer, judged from cert alone: issuer name
 * and, when both sides have one, authority / subject key identifier. */
static bool
maybe_issuer(const struct revissuer *r, X509 *cert)
{
    if (X509_NAME_cmp(X509_get_issuer_name(cert),
                      X509_get_subject_name(r->ca)) != 0)
        return false;
    const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(cert);
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(r->ca);
    return aki == NULL || ski == NULL || ASN1_OCTET_STRING_cmp(aki, ski) == 0;
}

bool
tls_revindex_key_of(X509 *cert, unsigned char key[TLS_REVKEY_LEN])
{
    return cert_key(cert, key);
}

/* cert given (issuer may be NULL) or only its key (NULL: none) and its
 * issuer. */
static enum tls_revstatus
check(const struct tls_revindex *ix, X509 *cert, const unsigned char *key,
      X509 *issuer, int64_t now)
{
    enum tls_revstatus st = TLS_REV_GOOD;
    if (ix == NULL || ix->n == 0)
        return TLS_REV_GOOD;
    for (size_t i = 0; i < ix->n; i++) {
        const struct revissuer *r = &ix->v[i];
        if (issuer != NULL ? !same_ca(r, issuer) : !maybe_issuer(r, cert))
            continue;
        if (key != NULL && rec_find(r, key))
            return TLS_REV_REVOKED;
        if (now > r->stale_after)
            st = TLS_REV_STALE;
    }
    return st;
}

enum tls_revstatus
tls_revindex_check(const struct tls_revindex *ix, X509 *cert, X509 *issuer,
                   int64_t now)
{
    unsigned char key[REC_LEN];
    if (ix == NULL || ix->n == 0)
        return TLS_REV_GOOD;
    return check(ix, cert, cert_key(cert, key) ? key : NULL, issuer, now);
}

enum tls_revstatus
tls_revindex_check_key(const struct tls_revindex *ix, const unsigned char *key,
                       X509 *issuer, int64_t now)
{
    return check(ix, NULL, key, issuer, now);
}

bool
tls_revindex_is_revoked(const struct tls_revindex *ix, X509 *cert, X509 *issuer)
{
    return tls_revindex_check(ix, cert, issuer, INT64_MIN) == TLS_REV_REVOKED;
}

size_t
tls_revindex_issuers(const struct tls_revindex *ix)
{
    return ix ? ix->n : 0;
}

void
tls_revindex_issuer_info(const struct tls_revindex *ix, size_t id,
                         struct tls_revissuer_info *out)
{
    assert(ix != NULL && id < ix->n);
    const struct revissuer *r = &ix->v[id];
    *out = (struct tls_revissuer_info){r->ca, r->source, r->n, r->stale_after};
}

size_t
tls_revindex_entries(const struct tls_revindex *ix)
{
    return ix ? ix->entries : 0;
}

size_t
tls_revindex_bytes(const struct tls_revindex *ix)
{
    if (ix == NULL)
        return 0;
    size_t bytes = sizeof(*ix) + ix->n * sizeof(*ix->v);
    for (size_t i = 0; i < ix->n; i++)
        bytes += ix->v[i].n * REC_LEN;
    return bytes;
}
