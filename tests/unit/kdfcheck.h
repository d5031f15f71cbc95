/*
 * Checks shared by the tests of kdftap.c (test_kdf.c: TLS13-KDF,
 * test_prf.c: TLS1-PRF): what the listener library context's KDF gives
 * must be what the default context's gives, for random parameter sets
 * and for a context used again after a first derive. Included after
 * cmocka.h and tls/tls_int.h.
 */
#ifndef CG_TEST_KDFCHECK_H
#define CG_TEST_KDFCHECK_H

#include <openssl/kdf.h>

#define REUSE_CASES 10

/* rc of a derive of n bytes into out (its first `fill` bytes set to 0xee
 * first) by a fresh context of kdf_name in lib, given params. */
static int
fresh_derive(OSSL_LIB_CTX *lib, const char *kdf_name, const OSSL_PARAM *params,
             unsigned char *out, size_t n, size_t fill)
{
    EVP_KDF *kdf = EVP_KDF_fetch(lib, kdf_name, NULL);
    assert_non_null(kdf);
    EVP_KDF_CTX *k = EVP_KDF_CTX_new(kdf);
    memset(out, 0xee, fill);
    int rc = EVP_KDF_derive(k, out, n, params);
    EVP_KDF_CTX_free(k);
    EVP_KDF_free(kdf);
    return rc;
}

/*
 * Derives n bytes into out with params on a new context of kdf_name in
 * lib, then does case `then` on that context: 0 derive again with
 * nothing given, 1 set `more` then derive, 2 derive with `more`, 3 its
 * size, 4 derive on a copy, 5 reset then derive. The second output goes
 * to out + n, its result code to *rc. Cases 6-9 start from the new
 * context without that first derive (kdftap.c makes the default's
 * context inside only when needed): 6 its size, 7 derive with params on
 * a copy, 8 reset then derive with params, 9 set params then derive
 * with nothing given.
 */
static void
reuse_case(OSSL_LIB_CTX *lib, const char *kdf_name, const OSSL_PARAM *params,
           const OSSL_PARAM *more, int then, unsigned char *out, size_t n,
           int *rc)
{
    /* a fresh context's case is a used one's, given params where that
     * one is given nothing (or more, for 9), its output at out */
    static const int op_of[REUSE_CASES] = {0, 1, 2, 3, 4, 5, 3, 4, 5, 1};
    bool fresh = then >= 6;
    const OSSL_PARAM *again = fresh ? params : NULL;
    unsigned char *o = fresh ? out : out + n;
    EVP_KDF *kdf = EVP_KDF_fetch(lib, kdf_name, NULL);
    EVP_KDF_CTX *k = EVP_KDF_CTX_new(kdf), *d = NULL;
    if (!fresh)
        assert_int_equal(EVP_KDF_derive(k, out, n, params), 1);
    switch (op_of[then]) {
    case 0:
        *rc = EVP_KDF_derive(k, o, n, NULL);
        break;
    case 1:
        *rc = EVP_KDF_CTX_set_params(k, fresh ? params : more) * 10 +
              EVP_KDF_derive(k, o, n, NULL);
        break;
    case 2:
        *rc = EVP_KDF_derive(k, o, n / 2, more);
        break;
    case 3:
        *rc = EVP_KDF_CTX_get_kdf_size(k) == SIZE_MAX
                  ? -3
                  : (int)EVP_KDF_CTX_get_kdf_size(k);
        break;
    case 4:
        d = EVP_KDF_CTX_dup(k);
        *rc = d != NULL ? 10 + EVP_KDF_derive(d, o, n, again) : 0;
        break;
    default:
        EVP_KDF_CTX_reset(k);
        *rc = EVP_KDF_derive(k, o, n, again);
        break;
    }
    EVP_KDF_CTX_free(d);
    EVP_KDF_CTX_free(k);
    EVP_KDF_free(kdf);
}

typedef void reuse_fn(OSSL_LIB_CTX *lib, int then, unsigned char *out, int *rc);

/* Every case in the listener context and in the default: the same result
 * codes and bytes; a derive with params on a fresh context computed by
 * kdftap (counted), one after parameters were set by the default's. */
static void
check_reuse(reuse_fn *reuse_in)
{
    for (int then = 0; then < REUSE_CASES; then++) {
        unsigned char want[96] = {0}, got[96] = {0};
        int rw = -1, rg = -2;
        unsigned long f0, d0, f1, d1;
        reuse_in(NULL, then, want, &rw);
        tls_kdftap_counts(&f0, &d0);
        reuse_in(tls_libctx(), then, got, &rg);
        tls_kdftap_counts(&f1, &d1);
        /* 7: a copy of a fresh context derives as one (if the
         * default's KDF can be copied at all) */
        unsigned long fast = then < 6 || then == 8 ? 1
                             : then == 7           ? rg / 10
                                                   : 0;
        assert_int_equal(f1 - f0, fast);
        assert_int_equal(rg, rw);
        assert_memory_equal(got, want, sizeof(want));
    }
}

/* One random parameter set derived in the default context and in the
 * listener's: their result codes, and whether the outputs are equal. */
typedef bool pair_fn(int *rw, int *rg);

/* n sets from seed: the same result codes, the same bytes when derived;
 * at least min_fast computed by kdftap, min_dflt left to the default and
 * min_ok derivable. */
static void
check_as_default(unsigned seed, int n, pair_fn *pair, unsigned long min_fast,
                 unsigned long min_dflt, int min_ok)
{
    unsigned long fast0, dflt0, fast1, dflt1;
    tls_kdftap_counts(&fast0, &dflt0);
    srand(seed);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        int rw = -1, rg = -2;
        bool same = pair(&rw, &rg);
        assert_int_equal(rg, rw);
        if (rw == 1) {
            assert_true(same);
            ok++;
        }
    }
    tls_kdftap_counts(&fast1, &dflt1);
    assert_true(fast1 - fast0 > min_fast);
    assert_true(dflt1 - dflt0 > min_dflt);
    assert_true(ok > min_ok);
}

#endif
