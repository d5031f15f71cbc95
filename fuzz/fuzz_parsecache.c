/*
 * libFuzzer target for the parsed-certificate cache (src/tls/parsecache.c):
 * the input is a buffer for d2i_X509. It is parsed as libssl parses a
 * client certificate (into an object of the caller's) three times: not
 * armed (libcrypto's own parse: the reference), then twice armed (a miss,
 * then a hit when it was stored). Each armed parse must give what the
 * reference gave: both fail, or both succeed having consumed the same
 * number of bytes and give a certificate with the same DER. The cache
 * lives across inputs, so inputs also meet entries of earlier ones (and
 * evict them).
 *
 * Build and run (from the repository root; not part of CMake):
 *
 *   mkdir -p build-fuzz/corpus-parsecache
 *   clang -g -O1 -std=c17 -fsanitize=fuzzer,address,undefined \
 *     -fno-sanitize-recover=undefined -D_GNU_SOURCE -Isrc \
 *     fuzz/fuzz_parsecache.c src/tls/parsecache.c src/core/[a-z]*.c \
 *     $(pkg-config --cflags --libs libssl libcrypto) -lpthread -ldl \
 *     -o build-fuzz/fuzz_parsecache
 *   ./build-fuzz/fuzz_parsecache -max_total_time=60 -max_len=4096 \
 *     build-fuzz/corpus-parsecache fuzz/corpus/x509
 *
 * Seeds: the certificates of fuzz/corpus/x509 (see fuzz_x509_ident.c).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "tls/tls_int.h"

#include "fuzz_check.h"

struct result {
    bool ok;
    size_t used;
    unsigned char *der; /* i2d of the certificate */
    int der_len;
};

static struct result
parse(const uint8_t *data, size_t size, bool arm)
{
    struct result r = {0};
    X509 *x = X509_new();
    CHECK(x != NULL);
    const unsigned char *p = data;
    tls_parsecache_arm(arm);
    X509 *got = d2i_X509(&x, &p, (long)size);
    tls_parsecache_arm(false);
    if (got != NULL) {
        CHECK(got == x);
        r.ok = true;
        r.used = (size_t)(p - data);
        r.der_len = i2d_X509(got, &r.der);
        X509_free(got);
    } else {
        X509_free(x);
    }
    ERR_clear_error();
    return r;
}

static void
same(const struct result *a, const struct result *b)
{
    CHECK(a->ok == b->ok);
    if (!a->ok)
        return;
    CHECK(a->used == b->used);
    CHECK(a->der_len == b->der_len);
    CHECK(a->der_len <= 0 || memcmp(a->der, b->der, (size_t)a->der_len) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct result ref = parse(data, size, false);
    struct result miss = parse(data, size, true);
    struct result hit = parse(data, size, true);
    same(&ref, &miss);
    same(&ref, &hit);
    OPENSSL_free(ref.der);
    OPENSSL_free(miss.der);
    OPENSSL_free(hit.der);
    return 0;
}
