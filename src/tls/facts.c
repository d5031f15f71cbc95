/*
 * What a connection and a session-cache entry keep of a client
 * certificate once the handshake is over, instead of the parsed
 * certificate (~7 KB per P-256 leaf in OpenSSL 3.0): the issuers of its
 * verified chain (shared objects of the trust store or the chain cache),
 * its validity, its revocation-index key and its algorithm names. The
 * leaf's DER stays in its identity for the rare full re-verification (a
 * client CA switch, recheck.c).
 */
#include <string.h>
#include <time.h>

#include "tls/tls_int.h"

/* Short upper-case name of a public-key type (HAProxy-like). */
static const char *
pkey_name(int nid)
{
    switch (nid) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
        return "RSA";
    case EVP_PKEY_EC:
        return "EC";
    case EVP_PKEY_ED25519:
        return "ED25519";
    case EVP_PKEY_ED448:
        return "ED448";
    default:
        return "UNKNOWN";
    }
}

void
tls_peer_algs(X509 *x, char *sig, size_t sig_len, char *key, size_t key_len)
{
    sig[0] = key[0] = '\0';
    int md = NID_undef, pk = NID_undef;
    if (X509_get_signature_info(x, &md, &pk, NULL, NULL) == 1) {
        const char *pkn = pk == EVP_PKEY_EC ? "ECDSA" : pkey_name(pk);
        if (md == NID_undef)
            snprintf(sig, sig_len, "%s", pkn);
        else
            snprintf(sig, sig_len, "%s-%s", pkn, OBJ_nid2sn(md));
    }
    EVP_PKEY *k = X509_get0_pubkey(x);
    if (k == NULL)
        return;
    int id = EVP_PKEY_get_base_id(k);
    if (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448)
        snprintf(key, key_len, "%s", pkey_name(id));
    else
        snprintf(key, key_len, "%s%d", pkey_name(id), EVP_PKEY_get_bits(k));
}

static int64_t
time_of(const ASN1_TIME *t, int64_t fallback)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return fallback;
    return (int64_t)timegm(&tm);
}

void
tls_facts_set(struct tls_facts *f, X509 *leaf, STACK_OF(X509) * verified)
{
    tls_facts_clear(f);
    if (leaf == NULL)
        return;
    f->have_leaf = true;
    /* an unreadable date makes the certificate never current */
    f->not_before = time_of(X509_get0_notBefore(leaf), INT64_MAX);
    f->not_after = time_of(X509_get0_notAfter(leaf), INT64_MIN);
    f->key_ok = tls_revindex_key_of(leaf, f->key);
    tls_peer_algs(leaf, f->sigalg, sizeof(f->sigalg), f->keyalg,
                  sizeof(f->keyalg));
    int n = verified != NULL ? sk_X509_num(verified) : 0;
    if (n > 1)
        f->issuers = sk_X509_new_reserve(NULL, n - 1);
    for (int i = 1; f->issuers != NULL && i < n; i++) {
        X509 *x = sk_X509_value(verified, i);
        if (X509_up_ref(x) == 1)
            sk_X509_push(f->issuers, x); /* reserved: cannot fail */
        /* the chain is current while every certificate of it is */
        int64_t nb = time_of(X509_get0_notBefore(x), INT64_MAX);
        int64_t na = time_of(X509_get0_notAfter(x), INT64_MIN);
        f->not_before = nb > f->not_before ? nb : f->not_before;
        f->not_after = na < f->not_after ? na : f->not_after;
    }
}

void
tls_facts_copy(struct tls_facts *dst, const struct tls_facts *src)
{
    tls_facts_clear(dst);
    *dst = *src;
    dst->issuers =
        src->issuers != NULL ? X509_chain_up_ref(src->issuers) : NULL;
}

void
tls_facts_clear(struct tls_facts *f)
{
    sk_X509_pop_free(f->issuers, X509_free);
    memset(f, 0, sizeof(*f));
}

bool
tls_facts_current(const struct tls_facts *f, int64_t now)
{
    /* as X509_cmp_time: expired at notAfter itself */
    return f->have_leaf && now >= f->not_before && now < f->not_after;
}

const char *
tls_facts_revoked(const struct tls_facts *f, const struct tls_trust *t,
                  int64_t now)
{
    return tls_trust_check_revoked_key(t, f->key_ok ? f->key : NULL, f->issuers,
                                       now);
}
