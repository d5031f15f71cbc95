/*
 * CRL files -> the revocation index. Every check happens here, once per
 * load: structure, issuer (a CA of the trust set, by name and authority
 * key id), signature, thisUpdate, unsupported extensions; nextUpdate and
 * on_stale_crl become the issuer's stale_after.
 *
 * Why not d2i_X509_CRL: OpenSSL turns every entry into an X509_REVOKED
 * with its own allocations (about 270 MB and 3 s for a million entries).
 * Here the revokedCertificates list is walked in the DER itself, straight
 * into the index's 21-byte records. OpenSSL still parses everything else:
 * the CRL is re-encoded without its entry list (small) and given to
 * d2i_X509_CRL for the issuer, times and extensions; the signature is
 * checked over the original TBSCertList bytes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "core/xmalloc.h"
#include "tls/revoke.h"
#include "tls/tls_int.h"

#define CRL_MAX_BYTES ((size_t)1 << 30)

/* One DER element: its whole encoding and its contents. */
struct der {
    const unsigned char *p; /* first byte of the tag */
    size_t total;           /* tag + length + contents */
    const unsigned char *val;
    size_t len;
    int tag, cls;
    bool cons;
};

/* The parts of a CertificateList (RFC 5280 section 5.1) certgate uses. */
struct crl_parts {
    struct der tbs;     /* the signed bytes */
    struct der keep[6]; /* TBS elements besides the entries, in order */
    size_t n_keep;
    struct der inner_alg; /* TBS "signature" */
    struct der revoked;   /* revokedCertificates (len 0 when absent) */
    struct der alg, sig;  /* signatureAlgorithm, signatureValue */
};

/* Where we are, for messages. */
struct crl_load {
    const struct cg_trust_cfg *tc;
    STACK_OF(X509) * cas;
    struct tls_revindex_builder *b;
    int64_t now;
    size_t idx;       /* crl_files[idx] */
    const char *file; /* the file being read */
    char *err;
};

/* Fills l->err with "trust.<name>.crl_files[i]: <file>: <why>". */
static int __attribute__((format(printf, 2, 3)))
crl_fail(const struct crl_load *l, const char *fmt, ...)
{
    char why[CG_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    ERR_clear_error();
    return cg_seterr(l->err, CG_ECONFIG, "trust.%s.crl_files[%zu]: %s: %s",
                     l->tc->name, l->idx, l->file, why);
}

/* Reads one element at *p; false when malformed or of indefinite length. */
static bool
der_next(const unsigned char **p, const unsigned char *end, struct der *d)
{
    long len;
    if (*p >= end)
        return false;
    d->p = *p;
    int r = ASN1_get_object(p, &len, &d->tag, &d->cls, end - *p);
    if ((r & 0x80) || (r & 0x01)) {
        ERR_clear_error();
        return false;
    }
    d->cons = (r & V_ASN1_CONSTRUCTED) != 0;
    d->val = *p;
    d->len = (size_t)len;
    *p += len;
    d->total = (size_t)(*p - d->p);
    return true;
}

static bool
is(const struct der *d, int cls, int tag, bool cons)
{
    return d->cls == cls && d->tag == tag && d->cons == cons;
}

static bool
is_time(const struct der *d)
{
    return is(d, V_ASN1_UNIVERSAL, V_ASN1_UTCTIME, false) ||
           is(d, V_ASN1_UNIVERSAL, V_ASN1_GENERALIZEDTIME, false);
}

/* Splits TBSCertList: [version] signature issuer thisUpdate
 * [nextUpdate] [revokedCertificates] [[0] crlExtensions]. */
static bool
split_tbs(struct crl_parts *c)
{
    const unsigned char *p = c->tbs.val, *end = p + c->tbs.len;
    struct der d;
    bool ok = der_next(&p, end, &d);
    if (ok && is(&d, V_ASN1_UNIVERSAL, V_ASN1_INTEGER, false)) {
        c->keep[c->n_keep++] = d;
        ok = der_next(&p, end, &d);
    }
    ok = ok && is(&d, V_ASN1_UNIVERSAL, V_ASN1_SEQUENCE, true);
    c->inner_alg = d;
    c->keep[c->n_keep++] = d;
    for (int i = 0; ok && i < 2; i++) { /* issuer, thisUpdate */
        ok = der_next(&p, end, &d) &&
             (i == 0 ? is(&d, V_ASN1_UNIVERSAL, V_ASN1_SEQUENCE, true)
                     : is_time(&d));
        c->keep[c->n_keep++] = d;
    }
    bool more = ok && der_next(&p, end, &d);
    if (more && is_time(&d)) {
        c->keep[c->n_keep++] = d;
        more = der_next(&p, end, &d);
    }
    if (more && is(&d, V_ASN1_UNIVERSAL, V_ASN1_SEQUENCE, true)) {
        c->revoked = d;
        more = der_next(&p, end, &d);
    }
    if (more && is(&d, V_ASN1_CONTEXT_SPECIFIC, 0, true)) {
        c->keep[c->n_keep++] = d;
        more = false;
    }
    return ok && !more && p == end;
}

/* Splits a CertificateList of exactly len bytes. */
static bool
split_crl(const unsigned char *der, size_t len, struct crl_parts *c)
{
    const unsigned char *p = der, *end = der + len;
    struct der outer;
    memset(c, 0, sizeof(*c));
    if (!der_next(&p, end, &outer) || p != end ||
        !is(&outer, V_ASN1_UNIVERSAL, V_ASN1_SEQUENCE, true))
        return false;
    p = outer.val;
    end = p + outer.len;
    return der_next(&p, end, &c->tbs) &&
           is(&c->tbs, V_ASN1_UNIVERSAL, V_ASN1_SEQUENCE, true) &&
           der_next(&p, end, &c->alg) &&
           is(&c->alg, V_ASN1_UNIVERSAL, V_ASN1_SEQUENCE, true) &&
           der_next(&p, end, &c->sig) &&
           is(&c->sig, V_ASN1_UNIVERSAL, V_ASN1_BIT_STRING, false) &&
           p == end && split_tbs(c);
}

/* The CRL without its entries, parsed by OpenSSL (its signature is not
 * valid: it is checked over the original bytes by sig_ok). */
static X509_CRL *
crl_head(const struct crl_parts *c)
{
    size_t tbs_len = 0;
    for (size_t i = 0; i < c->n_keep; i++)
        tbs_len += c->keep[i].total;
    int tbs_total = ASN1_object_size(1, (int)tbs_len, V_ASN1_SEQUENCE);
    int body = tbs_total + (int)(c->alg.total + c->sig.total);
    int total = ASN1_object_size(1, body, V_ASN1_SEQUENCE);
    unsigned char *buf = xmalloc((size_t)total), *w = buf;
    ASN1_put_object(&w, 1, body, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
    ASN1_put_object(&w, 1, (int)tbs_len, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
    for (size_t i = 0; i < c->n_keep; i++) {
        memcpy(w, c->keep[i].p, c->keep[i].total);
        w += c->keep[i].total;
    }
    memcpy(w, c->alg.p, c->alg.total);
    w += c->alg.total;
    memcpy(w, c->sig.p, c->sig.total);
    const unsigned char *r = buf;
    X509_CRL *crl = d2i_X509_CRL(NULL, &r, total);
    free(buf);
    return crl;
}

/*
 * Verifies the signature over the TBSCertList bytes as they are in the
 * file. ASN1_item_verify signs what an ASN1_ITEM encodes; an ASN1_ANY of
 * type SEQUENCE encodes its stored bytes verbatim (tag and length
 * included), so it hands OpenSSL the exact signed bytes, and OpenSSL does
 * the algorithm handling (RSA, RSA-PSS, ECDSA, EdDSA) as for any CRL.
 */
static bool
sig_ok(const struct crl_parts *c, const X509_ALGOR *alg,
       const ASN1_BIT_STRING *sig, EVP_PKEY *key)
{
    ASN1_STRING *s = ASN1_STRING_type_new(V_ASN1_SEQUENCE);
    ASN1_TYPE *any = ASN1_TYPE_new();
    if (s == NULL || any == NULL || key == NULL) {
        ASN1_STRING_free(s);
        ASN1_TYPE_free(any);
        return false;
    }
    /* borrowed bytes (no copy of a 35 MB list): ASN1_STRING is a public
     * struct, and its data is taken back before ASN1_TYPE_free */
    s->data = (unsigned char *)c->tbs.p;
    s->length = (int)c->tbs.total;
    ASN1_TYPE_set(any, V_ASN1_SEQUENCE, s);
    int ok = ASN1_item_verify(ASN1_ITEM_rptr(ASN1_ANY), alg, sig, any, key);
    s->data = NULL;
    s->length = 0;
    ASN1_TYPE_free(any);
    ERR_clear_error();
    return ok == 1;
}

/* RFC 4514-style text of a name, for messages. */
static void
name_text(const X509_NAME *n, char *out, size_t len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    out[0] = '\0';
    if (bio == NULL)
        return;
    X509_NAME_print_ex(bio, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    int r = BIO_read(bio, out, (int)len - 1);
    out[r > 0 ? r : 0] = '\0';
    BIO_free(bio);
}

/* True when CA certificate ca may be the signer named by crl's AKI. */
static bool
aki_matches(X509 *ca, const AUTHORITY_KEYID *akid)
{
    const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(ca);
    return akid == NULL || akid->keyid == NULL || skid == NULL ||
           ASN1_OCTET_STRING_cmp(akid->keyid, skid) == 0;
}

/* Finds the CA of the set that signed crl; *out borrowed. */
static int
find_issuer(const struct crl_load *l, X509_CRL *crl, const struct crl_parts *c,
            X509 **out)
{
    const X509_ALGOR *alg;
    const ASN1_BIT_STRING *sig;
    char dn[256];
    X509_CRL_get0_signature(crl, &sig, &alg);
    AUTHORITY_KEYID *akid =
        X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
    bool named = false;
    *out = NULL;
    for (int i = 0; *out == NULL && i < sk_X509_num(l->cas); i++) {
        X509 *ca = sk_X509_value(l->cas, i);
        if (X509_NAME_cmp(X509_get_subject_name(ca),
                          X509_CRL_get_issuer(crl)) != 0)
            continue;
        named = true;
        if (aki_matches(ca, akid) && sig_ok(c, alg, sig, X509_get0_pubkey(ca)))
            *out = ca;
    }
    AUTHORITY_KEYID_free(akid);
    name_text(X509_CRL_get_issuer(crl), dn, sizeof(dn));
    if (*out == NULL && !named)
        return crl_fail(l,
                        "issuer \"%s\" is not a CA certificate of trust "
                        "set \"%s\"",
                        dn, l->tc->name);
    if (*out == NULL)
        return crl_fail(l,
                        "signature does not verify with the key of \"%s\" "
                        "(signed by another key)",
                        dn);
    uint32_t flags = X509_get_extension_flags(*out);
    if (X509_check_ca(*out) == 0)
        return crl_fail(l, "issuer \"%s\" is not a CA", dn);
    if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(*out) & KU_CRL_SIGN))
        return crl_fail(l,
                        "issuer \"%s\" may not sign CRLs (its keyUsage "
                        "lacks cRLSign)",
                        dn);
    return 0;
}

/* Refuses what certgate does not implement rather than misreading it. */
static int
check_extensions(const struct crl_load *l, X509_CRL *crl)
{
    if (X509_CRL_get_ext_by_NID(crl, NID_delta_crl, -1) >= 0)
        return crl_fail(l, "delta CRLs are not supported (deltaCRLIndicator)");
    if (X509_CRL_get_ext_by_NID(crl, NID_issuing_distribution_point, -1) >= 0)
        return crl_fail(l, "partitioned and indirect CRLs are not supported "
                           "(issuingDistributionPoint)");
    for (int i = 0; i < X509_CRL_get_ext_count(crl); i++) {
        X509_EXTENSION *e = X509_CRL_get_ext(crl, i);
        int nid = OBJ_obj2nid(X509_EXTENSION_get_object(e));
        if (!X509_EXTENSION_get_critical(e) || nid == NID_crl_number ||
            nid == NID_authority_key_identifier)
            continue;
        char oid[80];
        OBJ_obj2txt(oid, sizeof(oid), X509_EXTENSION_get_object(e), 0);
        return crl_fail(l, "unsupported critical extension %s", oid);
    }
    return 0;
}

static int64_t
unix_time(const ASN1_TIME *t)
{
    struct tm tm;
    if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
        return TLS_REV_NEVER;
    return (int64_t)timegm(&tm);
}

/* Logs a CRL that is already past nextUpdate at load. */
static void
log_stale(const struct crl_load *l, X509 *ca, int64_t next, int64_t until)
{
    char dn[256], at[32], end[32];
    name_text(X509_get_subject_name(ca), dn, sizeof(dn));
    cg_time_rfc3339(next, at, sizeof(at));
    cg_time_rfc3339(until, end, sizeof(end));
    if (l->now > until)
        cg_log(CG_LOG_ERROR, 0,
               "trust.%s.crl_files[%zu]: %s: the CRL of \"%s\" is stale "
               "(nextUpdate %s%s%s): certificates it covers are refused "
               "(stale_crl) until a fresh CRL is loaded",
               l->tc->name, l->idx, l->file, dn, at,
               l->tc->stale_reject ? "" : ", grace ended ",
               l->tc->stale_reject ? "" : end);
    else
        cg_log(CG_LOG_WARN, 0,
               "trust.%s.crl_files[%zu]: %s: the CRL of \"%s\" is past its "
               "nextUpdate %s; on_stale_crl grace keeps it in use until %s",
               l->tc->name, l->idx, l->file, dn, at, end);
}

/* thisUpdate/nextUpdate: refuses a CRL from the future; returns the
 * issuer's stale_after through *stale_after. */
static int
check_times(const struct crl_load *l, X509_CRL *crl, X509 *ca,
            int64_t *stale_after)
{
    int64_t last = unix_time(X509_CRL_get0_lastUpdate(crl));
    const ASN1_TIME *nt = X509_CRL_get0_nextUpdate(crl);
    int64_t next = nt ? unix_time(nt) : TLS_REV_NEVER;
    char at[32];
    if (last == TLS_REV_NEVER || (nt != NULL && next == TLS_REV_NEVER))
        return crl_fail(l, "malformed CRL (bad thisUpdate or nextUpdate)");
    if (last > l->now) {
        cg_time_rfc3339(last, at, sizeof(at));
        return crl_fail(l, "thisUpdate %s is in the future", at);
    }
    *stale_after = next;
    if (nt != NULL && !l->tc->stale_reject)
        *stale_after = next + l->tc->stale_grace_ms / 1000;
    if (nt != NULL && l->now > next)
        log_stale(l, ca, next, *stale_after);
    return 0;
}

/* The magnitude of a negative two's-complement INTEGER content. */
static void
negate(const unsigned char *v, size_t len, unsigned char *out)
{
    unsigned carry = 1;
    for (size_t i = len; i-- > 0;) {
        unsigned x = (unsigned)(unsigned char)~v[i] + carry;
        out[i] = (unsigned char)x;
        carry = x >> 8;
    }
}

/* Entry extensions: any critical one is refused (certificateIssuer
 * means an indirect CRL). */
static int
entry_exts(const struct crl_load *l, size_t n, const struct der *exts)
{
    static const unsigned char cert_issuer[] = {0x55, 0x1d, 0x1d};
    const unsigned char *p = exts->val, *end = p + exts->len;
    struct der e, oid, x;
    while (p < end) {
        if (!der_next(&p, end, &e) ||
            !is(&e, V_ASN1_UNIVERSAL, V_ASN1_SEQUENCE, true))
            return crl_fail(l, "malformed CRL (entry %zu)", n);
        const unsigned char *q = e.val, *qend = q + e.len;
        if (!der_next(&q, qend, &oid) ||
            !is(&oid, V_ASN1_UNIVERSAL, V_ASN1_OBJECT, false) ||
            !der_next(&q, qend, &x))
            return crl_fail(l, "malformed CRL (entry %zu)", n);
        bool critical = is(&x, V_ASN1_UNIVERSAL, V_ASN1_BOOLEAN, false) &&
                        x.len == 1 && x.val[0] != 0;
        if (!critical)
            continue;
        if (oid.len == sizeof(cert_issuer) &&
            memcmp(oid.val, cert_issuer, oid.len) == 0)
            return crl_fail(l,
                            "indirect CRLs are not supported (entry %zu "
                            "has certificateIssuer)",
                            n);
        return crl_fail(l, "entry %zu has an unsupported critical extension",
                        n);
    }
    return 0;
}

/* One revokedCertificates entry: SEQUENCE { serial, date, [exts] }. */
static int
entry_add(const struct crl_load *l, size_t id, size_t n, const struct der *e)
{
    const unsigned char *q = e->val, *end = q + e->len;
    struct der sn, date, exts;
    if (!is(e, V_ASN1_UNIVERSAL, V_ASN1_SEQUENCE, true) ||
        !der_next(&q, end, &sn) ||
        !is(&sn, V_ASN1_UNIVERSAL, V_ASN1_INTEGER, false) || sn.len == 0 ||
        !der_next(&q, end, &date) || !is_time(&date))
        return crl_fail(l, "malformed CRL (entry %zu)", n);
    if (q < end) {
        int rc = der_next(&q, end, &exts) && q == end &&
                         is(&exts, V_ASN1_UNIVERSAL, V_ASN1_SEQUENCE, true)
                     ? entry_exts(l, n, &exts)
                     : crl_fail(l, "malformed CRL (entry %zu)", n);
        if (rc != 0)
            return rc;
    }
    unsigned char mag[TLS_SERIAL_MAX + 1];
    int rc = CG_EINVAL;
    if ((sn.val[0] & 0x80) == 0) {
        rc = tls_revindex_builder_add(l->b, id, sn.val, sn.len, false);
    } else if (sn.len <= sizeof(mag)) { /* negative: RFC 5280 says no */
        negate(sn.val, sn.len, mag);
        rc = tls_revindex_builder_add(l->b, id, mag, sn.len, true);
    }
    if (rc != 0)
        return crl_fail(l, "entry %zu: serial longer than 20 bytes", n);
    return 0;
}

static int
add_entries(const struct crl_load *l, const struct crl_parts *c, size_t id)
{
    const unsigned char *p = c->revoked.val, *end = p + c->revoked.len;
    struct der e;
    /* an entry with a 16-byte serial and UTCTime is 35 bytes */
    tls_revindex_builder_reserve(l->b, id, c->revoked.len / 35);
    for (size_t n = 0; p < end; n++) {
        if (!der_next(&p, end, &e))
            return crl_fail(l, "malformed CRL (entry %zu)", n);
        int rc = entry_add(l, id, n, &e);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Checks one DER CRL and feeds its serials to the index. */
static int
crl_one(const struct crl_load *l, const unsigned char *der, size_t len)
{
    struct crl_parts c;
    X509 *ca = NULL;
    int64_t stale_after = TLS_REV_NEVER;
    if (!split_crl(der, len, &c) || c.inner_alg.total != c.alg.total ||
        memcmp(c.inner_alg.p, c.alg.p, c.alg.total) != 0)
        return crl_fail(l, "malformed CRL (not a DER CertificateList, or "
                           "signature algorithms differ)");
    X509_CRL *crl = crl_head(&c);
    if (crl == NULL)
        return crl_fail(l, "malformed CRL");
    int rc = find_issuer(l, crl, &c, &ca);
    if (rc == 0)
        rc = check_extensions(l, crl);
    if (rc == 0)
        rc = check_times(l, crl, ca, &stale_after);
    if (rc == 0) {
        size_t id = tls_revindex_builder_issuer(l->b, ca);
        const char *prev = tls_revindex_builder_source(l->b, id);
        char dn[256];
        name_text(X509_get_subject_name(ca), dn, sizeof(dn));
        if (prev != NULL)
            rc = crl_fail(l, "\"%s\" already has its revocations from %s", dn,
                          prev);
        else
            tls_revindex_builder_set_source(l->b, id, l->file, stale_after);
        if (rc == 0)
            rc = add_entries(l, &c, id);
    }
    X509_CRL_free(crl);
    return rc;
}

/* Decodes the base64 body of a PEM block; NULL when malformed. The
 * whole body at once: PEM_read_bio's line-by-line reading takes 0.6 s
 * for a million-entry CRL. */
static unsigned char *
pem_body(const char *b, size_t len, size_t *out_len)
{
    unsigned char *out = xmalloc(len / 4 * 3 + 3);
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    int n = 0, m = 0;
    bool ok = ctx != NULL && len <= INT_MAX;
    if (ok) {
        EVP_DecodeInit(ctx);
        ok = EVP_DecodeUpdate(ctx, out, &n, (const unsigned char *)b,
                              (int)len) >= 0 &&
             EVP_DecodeFinal(ctx, out + n, &m) == 1;
    }
    EVP_ENCODE_CTX_free(ctx);
    ERR_clear_error();
    if (!ok || n + m == 0) {
        free(out);
        return NULL;
    }
    *out_len = (size_t)(n + m);
    return out;
}

/* Every CRL of a PEM file ("X509 CRL" blocks; text around is ignored). */
static int
load_pem(const struct crl_load *l, const unsigned char *data, size_t len)
{
    const char *p = (const char *)data, *end = p + len;
    int rc = 0, count = 0;
    const char *b;
    while (rc == 0 && (b = memmem(p, (size_t)(end - p), "-----BEGIN ", 11))) {
        const char *label = b + 11;
        const char *le = memmem(label, (size_t)(end - label), "-----", 5);
        if (le == NULL || memchr(label, '\n', (size_t)(le - label)))
            return crl_fail(l, "malformed PEM");
        char *tail = xasprintf("-----END %.*s-----", (int)(le - label), label);
        const char *e =
            memmem(le + 5, (size_t)(end - le - 5), tail, strlen(tail));
        size_t n = 0;
        unsigned char *der =
            e ? pem_body(le + 5, (size_t)(e - le - 5), &n) : NULL;
        if (le - label != 8 || memcmp(label, "X509 CRL", 8) != 0)
            rc = crl_fail(l, "not a CRL (PEM \"%.*s\")", (int)(le - label),
                          label);
        else if (der == NULL)
            rc = crl_fail(l, "malformed PEM");
        else
            rc = crl_one(l, der, n);
        p = e ? e + strlen(tail) : end;
        free(tail);
        free(der);
        count++;
    }
    if (rc == 0 && count == 0)
        rc = crl_fail(l, "no CRL found");
    return rc;
}

/* Reads a whole file (at most CRL_MAX_BYTES). */
static int
read_file(const struct crl_load *l, unsigned char **out, size_t *len)
{
    int fd = open(l->file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return crl_fail(l, "cannot read (%s)", strerror(e));
    }
    if ((size_t)st.st_size > CRL_MAX_BYTES) {
        close(fd);
        return crl_fail(l, "larger than 1 GiB");
    }
    unsigned char *buf = xmalloc((size_t)st.st_size + 1);
    size_t n = 0;
    ssize_t r = 1;
    while (n < (size_t)st.st_size &&
           ((r = read(fd, buf + n, (size_t)st.st_size - n)) > 0 ||
            (r < 0 && errno == EINTR)))
        n += r > 0 ? (size_t)r : 0;
    int e = errno;
    close(fd);
    if (r < 0) {
        free(buf);
        return crl_fail(l, "cannot read (%s)", strerror(e));
    }
    *out = buf;
    *len = n;
    return 0;
}

/* One CRL file, PEM or DER. */
static int
load_file(const struct crl_load *l)
{
    unsigned char *data = NULL;
    size_t len = 0;
    int rc = read_file(l, &data, &len);
    if (rc != 0)
        return rc;
    /* DER starts with SEQUENCE (0x30); anything else is read as PEM,
     * which may follow text such as `openssl crl -text` writes */
    if (len == 0)
        rc = crl_fail(l, "empty file");
    else if (data[0] == 0x30)
        rc = crl_one(l, data, len);
    else
        rc = load_pem(l, data, len);
    free(data);
    return rc;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
crl_name(const char *n)
{
    size_t len = strlen(n);
    return n[0] != '.' && len > 4 &&
           (strcmp(n + len - 4, ".crl") == 0 ||
            strcmp(n + len - 4, ".pem") == 0 ||
            strcmp(n + len - 4, ".der") == 0);
}

/* Every *.crl, *.pem, *.der of a directory, in name order. */
static int
load_dir(struct crl_load *l, const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return crl_fail(l, "cannot read directory (%s)", strerror(errno));
    struct cg_strlist names = {0};
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (crl_name(de->d_name))
            cg_strlist_add(&names, de->d_name);
    }
    closedir(d);
    if (names.n > 1)
        qsort(names.v, names.n, sizeof(*names.v), cmp_str);
    int rc = names.n == 0 ? crl_fail(l, "no *.crl, *.pem or *.der file in "
                                        "this directory")
                          : 0;
    for (size_t i = 0; rc == 0 && i < names.n; i++) {
        char *path = xasprintf("%s/%s", dir, names.v[i]);
        struct stat st;
        l->file = path;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            rc = load_file(l);
        l->file = dir;
        free(path);
    }
    cg_strlist_clear(&names);
    return rc;
}

int
tls_crl_load(const struct cg_trust_cfg *tc, STACK_OF(X509) * cas,
             struct tls_revindex_builder *b, int64_t now, char *err)
{
    struct crl_load l = {tc, cas, b, now, 0, NULL, err};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < tc->crl_files.n; i++) {
        struct stat st;
        l.idx = i;
        l.file = tc->crl_files.v[i];
        if (stat(l.file, &st) != 0)
            rc = crl_fail(&l, "cannot read (%s)", strerror(errno));
        else if (S_ISDIR(st.st_mode))
            rc = load_dir(&l, l.file);
        else
            rc = load_file(&l);
    }
    return rc;
}
