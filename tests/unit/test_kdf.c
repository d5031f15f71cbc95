/*
 * Unit tests of TLS 1.3's key derivation in the listener library context.
 *
 * hkdf.c: HKDF gives RFC 5869's test vectors, and what OpenSSL's HKDF
 * gives for random salts (longer than a hash block too), keys, infos and
 * output lengths, with SHA-256 and SHA-384; impossible lengths are
 * refused; the same with its key-state cache on.
 *
 * kdftap.c: the listener context's TLS13-KDF gives what the default
 * context's gives (same result code, same bytes) for thousands of random
 * parameter sets, those it computes itself (counted) and those it leaves
 * to the default (missing, empty, long or unknown parameters, other
 * digests, other modes, wrong lengths); a context used again after a
 * derive (derive without parameters, set, get, duplicate, reset) behaves
 * as the default's; while a connection is armed on the thread, the
 * outputs labelled "c ap traffic" and "s ap traffic" (and only those) are
 * given to it, and nothing when no connection is armed, and so are the
 * key and IV derived from one of those (only from those).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "core/util.h"
#include "tls/tls_int.h"
#include "kdfcheck.h"

static void
unhex(const char *hex, unsigned char *out, size_t *len)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)(cg_hexval(hex[2 * i]) << 4 |
                                 cg_hexval(hex[2 * i + 1]));
    *len = n;
}

static void
test_rfc5869(void **state)
{
    (void)state;
    static const struct {
        const char *ikm, *salt, *info, *prk, *okm;
    } tc[] = {
        /* A.1 */
        {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
         "000102030405060708090a0b0c", "f0f1f2f3f4f5f6f7f8f9",
         "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
         "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf3400"
         "7208d5b887185865"},
        /* A.3: no salt, no info */
        {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "",
         "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
         "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d20"
         "1395faa4b61a96c8"},
    };
    for (size_t i = 0; i < sizeof(tc) / sizeof(tc[0]); i++) {
        unsigned char ikm[80], salt[80], info[80], prk[32], okm[82], got[82];
        size_t il, sl, nl, pl, ol;
        unhex(tc[i].ikm, ikm, &il);
        unhex(tc[i].salt, salt, &sl);
        unhex(tc[i].info, info, &nl);
        unhex(tc[i].prk, prk, &pl);
        unhex(tc[i].okm, okm, &ol);
        tls_hkdf_extract(TLS_SHA256, salt, sl, ikm, il, got);
        assert_memory_equal(got, prk, 32);
        assert_true(tls_hkdf_expand(TLS_SHA256, prk, 32, info, nl, got, ol));
        assert_memory_equal(got, okm, ol);
    }
    unsigned char out[1];
    assert_false(tls_hkdf_expand(TLS_SHA256, out, 1, NULL, 0, out, 0));
    assert_false(
        tls_hkdf_expand(TLS_SHA384, out, 1, NULL, 0, out, 255 * 48 + 1));
    assert_false(tls_hkdf_expand_label(TLS_SHA256, out, 1, NULL, 200, NULL, 56,
                                       NULL, 0, out, 1));
}

static void
fill(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)rand();
}

/* HKDF (extract and expand) by OpenSSL's default context. */
static void
openssl_hkdf(const char *md, const unsigned char *salt, size_t sl,
             const unsigned char *ikm, size_t il, const unsigned char *info,
             size_t nl, unsigned char *out, size_t ol)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *k = EVP_KDF_CTX_new(kdf);
    OSSL_PARAM p[6], *q = p;
    *q++ =
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)md, 0);
    *q++ =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, il);
    if (sl > 0)
        *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                 (void *)salt, sl);
    if (nl > 0)
        *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                 (void *)info, nl);
    *q = OSSL_PARAM_construct_end();
    assert_int_equal(EVP_KDF_derive(k, out, ol, p), 1);
    EVP_KDF_CTX_free(k);
    EVP_KDF_free(kdf);
}

static void
test_hkdf_as_openssl(void **state)
{
    (void)state;
    srand(5869);
    for (int i = 0; i < 400; i++) {
        enum tls_hash h = i % 2 ? TLS_SHA384 : TLS_SHA256;
        unsigned char salt[200], ikm[100], info[100], prk[48];
        unsigned char want[300], got[300];
        size_t sl = (size_t)rand() % 200, il = 1 + (size_t)rand() % 99,
               nl = (size_t)rand() % 100, ol = 1 + (size_t)rand() % 299;
        fill(salt, sl);
        fill(ikm, il);
        fill(info, nl);
        openssl_hkdf(h == TLS_SHA256 ? "SHA256" : "SHA384", salt, sl, ikm, il,
                     info, nl, want, ol);
        tls_hkdf_extract(h, salt, sl, ikm, il, prk);
        assert_true(
            tls_hkdf_expand(h, prk, tls_hash_len(h), info, nl, got, ol));
        assert_memory_equal(got, want, ol);
    }
}

/* With the key-state cache on (as during a handshake step), expansions
 * and extractions under keys used again and again, interleaved (more
 * keys than the cache holds; equal bytes under both hashes; one key
 * differing in its last byte; keys up to and over the 64 bytes it
 * keeps), give what they give with the cache off. */
static void
test_hkdf_key_cache(void **state)
{
    (void)state;
    enum { NKEYS = 10, OPS = 3000 };
    static const size_t lens[NKEYS] = {32, 48, 48, 32, 64, 65, 48, 33, 33, 32};
    unsigned char keys[NKEYS][65];
    srand(8446);
    for (int k = 0; k < NKEYS; k++)
        fill(keys[k], lens[k]);
    memcpy(keys[2], keys[1], 48);
    keys[2][47] ^= 1;
    memcpy(keys[6], keys[1], 48); /* key 6 is key 1, used with SHA-256 */
    /* keys that differ only in their last byte past the whole words (8),
     * or only in their first (9) */
    memcpy(keys[8], keys[7], 33);
    keys[8][32] ^= 0x80;
    memcpy(keys[9], keys[0], 32);
    keys[9][0] ^= 1;
    struct op {
        int k, extract;
        enum tls_hash h;
        unsigned char info[40], want[96];
        size_t nl, ol;
    } *ops = calloc(OPS, sizeof(*ops));
    assert_non_null(ops);
    for (int i = 0; i < OPS; i++) {
        struct op *o = &ops[i];
        o->k = rand() % NKEYS;
        o->h = o->k == 6    ? TLS_SHA256
               : o->k == 1  ? TLS_SHA384
               : rand() % 2 ? TLS_SHA384
                            : TLS_SHA256;
        o->extract = rand() % 4 == 0;
        o->nl = (size_t)rand() % 40;
        o->ol = o->extract ? tls_hash_len(o->h) : 1 + (size_t)rand() % 95;
        fill(o->info, o->nl);
    }
    for (int pass = 0; pass < 3; pass++) {
        /* 0: the reference, cache off; 1, 2: on (2 after a wipe) */
        tls_hkdf_cache(pass > 0);
        for (int i = 0; i < OPS; i++) {
            struct op *o = &ops[i];
            unsigned char got[96];
            if (o->extract)
                tls_hkdf_extract(o->h, keys[o->k], lens[o->k], o->info, o->nl,
                                 got);
            else
                assert_true(tls_hkdf_expand(o->h, keys[o->k], lens[o->k],
                                            o->info, o->nl, got, o->ol));
            if (pass == 0)
                memcpy(o->want, got, o->ol);
            else
                assert_memory_equal(got, o->want, o->ol);
        }
        tls_hkdf_cache(false);
    }
    free(ops);
}

/* One random TLS13-KDF parameter set (and output length). */
struct pset {
    int mode;
    const char *digest;
    unsigned char v[5][72]; /* key, salt, prefix, label, data */
    size_t len[5];
    bool has[5], has_mode, mode_text, props;
    size_t outlen;
};

static const char *const octet_names[] = {
    OSSL_KDF_PARAM_KEY,   OSSL_KDF_PARAM_SALT, OSSL_KDF_PARAM_PREFIX,
    OSSL_KDF_PARAM_LABEL, OSSL_KDF_PARAM_DATA,
};

static size_t
params_of(const struct pset *s, OSSL_PARAM *p)
{
    OSSL_PARAM *q = p;
    if (s->has_mode && s->mode_text)
        *q++ = OSSL_PARAM_construct_utf8_string(
            OSSL_KDF_PARAM_MODE,
            (char *)(s->mode == EVP_KDF_HKDF_MODE_EXPAND_ONLY ? "EXPAND_ONLY"
                                                              : "EXTRACT_ONLY"),
            0);
    else if (s->has_mode)
        *q++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, (int *)&s->mode);
    if (s->digest != NULL)
        *q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                                (char *)s->digest, 0);
    for (size_t k = 0; k < 5; k++) {
        if (s->has[k])
            *q++ = OSSL_PARAM_construct_octet_string(
                octet_names[k], (void *)s->v[k], s->len[k]);
    }
    if (s->props)
        *q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_PROPERTIES,
                                                (char *)"provider=default", 0);
    *q = OSSL_PARAM_construct_end();
    return (size_t)(q - p);
}

static void
random_pset(struct pset *s)
{
    static const char *const digests[] = {
        "SHA256", "SHA2-384", "sha384", "SHA-256", "SHA2-256",
        "SHA384", "SHA512",   "SHA1",   NULL,
    };
    static const int modes[] = {EVP_KDF_HKDF_MODE_EXPAND_ONLY,
                                EVP_KDF_HKDF_MODE_EXTRACT_ONLY,
                                EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND, 7};
    memset(s, 0, sizeof(*s));
    int r = rand() % 20;
    s->mode = modes[r < 9 ? 0 : r < 18 ? 1 : r - 16];
    s->has_mode = rand() % 30 != 0;
    s->mode_text = rand() % 30 == 0 && s->mode < 3;
    s->digest = digests[rand() % 6 != 0 ? rand() % 2 : rand() % 9];
    s->props = rand() % 30 == 0;
    static const int present[5] = {90, 50, 95, 95, 50}; /* percent */
    for (size_t k = 0; k < 5; k++) {
        s->has[k] = rand() % 100 < present[k];
        s->len[k] = rand() % 8 == 0 ? (size_t)rand() % 72
                    : k == 2        ? 6
                                    : 32 + 16 * (size_t)(rand() % 2);
        fill(s->v[k], s->len[k]);
    }
    if (rand() % 2)
        memcpy(s->v[2], "tls13 ", 6);
    size_t hl = s->digest != NULL && strstr(s->digest, "384") ? 48 : 32;
    s->outlen = rand() % 8 == 0 ? (size_t)rand() % 120
                : s->mode == EVP_KDF_HKDF_MODE_EXPAND_ONLY
                    ? 12 + (size_t)rand() % 37
                    : hl;
}

/* rc of a derive by a fresh context of lib's TLS13-KDF, output in out */
static int
derive_in(OSSL_LIB_CTX *lib, const struct pset *s, unsigned char *out)
{
    OSSL_PARAM p[12];
    params_of(s, p);
    return fresh_derive(lib, "TLS13-KDF", p, out, s->outlen, 128);
}

static bool
pair(int *rw, int *rg)
{
    struct pset s;
    random_pset(&s);
    unsigned char want[128], got[128];
    *rw = derive_in(NULL, &s, want);
    *rg = derive_in(tls_libctx(), &s, got);
    return memcmp(got, want, s.outlen) == 0;
}

static void
test_tls13_kdf_as_default(void **state)
{
    (void)state;
    assert_true(tls_kdftap_ready());
    /* both ways taken, most sets derivable */
    check_as_default(8446, 4000, pair, 1500, 500, 2000);
}

/* A libssl-like expand in lib: "tls13 " prefix, SHA-384. */
static void
pset_expand(struct pset *s, const char *label)
{
    memset(s, 0, sizeof(*s));
    s->mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    s->has_mode = true;
    s->digest = "SHA2-384";
    s->has[0] = s->has[2] = s->has[3] = s->has[4] = true;
    s->len[0] = s->len[4] = 48;
    fill(s->v[0], 48);
    fill(s->v[4], 48);
    memcpy(s->v[2], "tls13 ", s->len[2] = 6);
    memcpy(s->v[3], label, s->len[3] = strlen(label));
    s->outlen = 48;
}

/* The first derive of check_reuse: a libssl-like expand. */
static void
reuse_in(OSSL_LIB_CTX *lib, int then, unsigned char *out, int *rc)
{
    struct pset s;
    srand(then);
    pset_expand(&s, "s ap traffic");
    OSSL_PARAM p[12];
    params_of(&s, p);
    OSSL_PARAM other[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL,
                                          (void *)"c ap traffic", 12),
        OSSL_PARAM_construct_end(),
    };
    reuse_case(lib, "TLS13-KDF", p, other, then, out, 48, rc);
}

static void
test_tls13_kdf_reused(void **state)
{
    (void)state;
    check_reuse(reuse_in);
    /* parameters set before the derive: the default's derive */
    struct pset s;
    pset_expand(&s, "exp master");
    OSSL_PARAM p[12];
    params_of(&s, p);
    unsigned char want[48], got[48];
    unsigned long f0, d0, f1, d1;
    for (int i = 0; i < 2; i++) {
        EVP_KDF *kdf =
            EVP_KDF_fetch(i ? tls_libctx() : NULL, "TLS13-KDF", NULL);
        EVP_KDF_CTX *k = EVP_KDF_CTX_new(kdf);
        tls_kdftap_counts(&f0, &d0);
        assert_int_equal(EVP_KDF_CTX_set_params(k, p), 1);
        assert_int_equal(EVP_KDF_derive(k, i ? got : want, 48, NULL), 1);
        tls_kdftap_counts(&f1, &d1);
        if (i)
            assert_true(f1 == f0 && d1 == d0 + 1);
        EVP_KDF_CTX_free(k);
        EVP_KDF_free(kdf);
    }
    assert_memory_equal(got, want, 48);
}

static void
test_tls13_secrets_tapped(void **state)
{
    (void)state;
    static const char *const labels[] = {"c ap traffic", "s ap traffic",
                                         "c hs traffic", "exp master"};
    struct tls_hs_secrets *hs = NULL;
    for (size_t i = 0; i < 4; i++) {
        struct pset s;
        pset_expand(&s, labels[i]);
        unsigned char want[128], got[128];
        assert_int_equal(derive_in(NULL, &s, want), 1);
        /* not armed: derived as by the default context, nothing kept */
        unsigned seen = hs != NULL ? hs->seen : 0;
        assert_int_equal(derive_in(tls_libctx(), &s, got), 1);
        assert_memory_equal(got, want, 48);
        assert_int_equal(hs != NULL ? hs->seen : 0, seen);
        for (int slow = 0; slow < 2; slow++) {
            s.props = slow; /* the default's derive, tapped as well */
            tls_kdftap_arm(&hs);
            assert_int_equal(derive_in(tls_libctx(), &s, got), 1);
            tls_kdftap_arm(NULL);
            assert_memory_equal(got, want, 48);
            if (i < 2) {
                assert_non_null(hs);
                assert_int_equal(hs->len, 48);
                assert_int_equal(hs->seen, i == 0 ? 1 : 3);
                assert_memory_equal(hs->v[i], want, 48);
                memset(hs->v[i], 0, 48);
            } else {
                assert_int_equal(hs->seen, 3); /* the others: not kept */
            }
        }
    }
    free(hs);
}

/* "key" and "iv" from a kept application traffic secret: kept with it. */
static void
test_tls13_keys_tapped(void **state)
{
    (void)state;
    struct tls_hs_secrets *hs = NULL;
    struct pset s;
    unsigned char secret[128], key[128], iv[128], other[128];
    pset_expand(&s, "s ap traffic");
    tls_kdftap_arm(&hs);
    assert_int_equal(derive_in(tls_libctx(), &s, secret), 1);
    assert_non_null(hs);
    static const struct {
        const char *label;
        size_t len;
        bool own; /* from the kept secret */
    } steps[] = {
        {"key", 32, false}, {"iv", 12, false},      {"key", 32, true},
        {"iv", 12, true},   {"finished", 48, true},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        pset_expand(&s, steps[i].label);
        s.has[4] = false; /* no context, as libssl derives keys */
        s.outlen = steps[i].len;
        if (steps[i].own)
            memcpy(s.v[0], secret, 48);
        unsigned char *out = !steps[i].own                  ? other
                             : strcmp(steps[i].label, "iv") ? key
                                                            : iv;
        if (!strcmp(steps[i].label, "finished"))
            out = other;
        assert_int_equal(derive_in(tls_libctx(), &s, out), 1);
        if (i < 2) { /* another secret's: not kept */
            assert_int_equal(hs->keylen[1], 0);
            assert_int_equal(hs->ivset, 0);
        }
    }
    tls_kdftap_arm(NULL);
    assert_int_equal(hs->seen, 2);
    assert_int_equal(hs->keylen[1], 32);
    assert_memory_equal(hs->key[1], key, 32);
    assert_int_equal(hs->ivset, 2);
    assert_memory_equal(hs->iv[1], iv, 12);
    assert_int_equal(hs->keylen[0], 0);
    free(hs);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc5869),
        cmocka_unit_test(test_hkdf_as_openssl),
        cmocka_unit_test(test_hkdf_key_cache),
        cmocka_unit_test(test_tls13_kdf_as_default),
        cmocka_unit_test(test_tls13_kdf_reused),
        cmocka_unit_test(test_tls13_secrets_tapped),
        cmocka_unit_test(test_tls13_keys_tapped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
