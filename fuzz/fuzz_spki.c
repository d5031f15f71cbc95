/*
 * Differential libFuzzer target for the listener context's public-key
 * decoding (src/tls/libctx.c, src/tls/ecspki.c): the input is DER for a
 * SubjectPublicKeyInfo, decoded with d2i_PUBKEY_ex() in the listener
 * context (where the EC fast path runs) and in OpenSSL's default context.
 * Both must agree: no key in either, or keys that compare equal
 * (EVP_PKEY_eq) after consuming the same number of bytes. The one
 * difference allowed is by design: the listener context does not decode
 * keys that cannot sign (X25519, X448, DH), the default context does.
 *
 * Build and run (from the repository root; not part of CMake):
 *
 *   mkdir -p build-fuzz/corpus-spki
 *   clang -g -O1 -std=c17 -fsanitize=fuzzer,address,undefined \
 *     -fno-sanitize-recover=undefined -D_GNU_SOURCE -Isrc \
 *     fuzz/fuzz_spki.c src/tls/libctx.c src/tls/ecspki.c src/tls/kdftap.c \
 *     src/tls/hkdf.c \
 *     src/tls/peer.c \
 *     src/ident/[a-z]*.c src/core/[a-z]*.c \
 *     $(pkg-config --cflags --libs libssl libcrypto) -lpthread \
 *     -o build-fuzz/fuzz_spki
 *   ./build-fuzz/fuzz_spki -max_total_time=60 -max_len=1024 \
 *     build-fuzz/corpus-spki fuzz/corpus/spki
 *
 * Seeds (fuzz/corpus/spki): `openssl genpkey -algorithm EC -pkeyopt
 * ec_paramgen_curve:<curve> | openssl pkey -pubout -outform DER` for
 * P-256, P-384, P-521 and secp256k1; a compressed P-256 point (`openssl
 * ec -pubout -conv_form compressed`); explicit P-256 parameters
 * (`-pkeyopt ec_param_enc:explicit`); an Ed25519 key.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tls/tls_int.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The key types the listener context decodes (libctx.c). */
static bool
can_sign(const EVP_PKEY *k)
{
    static const char *const types[] = {
        "EC", "SM2", "RSA", "RSA-PSS", "ED25519", "ED448", "DSA",
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (EVP_PKEY_is_a(k, types[i]))
            return true;
    }
    return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    OSSL_LIB_CTX *listener = tls_libctx();
    CHECK(listener != NULL);
    const unsigned char *pl = data, *pd = data;
    EVP_PKEY *l = d2i_PUBKEY_ex(NULL, &pl, (long)size, listener, NULL);
    EVP_PKEY *d = d2i_PUBKEY_ex(NULL, &pd, (long)size, NULL, NULL);
    if (l == NULL && d != NULL)
        CHECK(!can_sign(d));
    else
        CHECK((l == NULL) == (d == NULL));
    if (l != NULL) {
        CHECK(pl == pd);
        CHECK(EVP_PKEY_eq(l, d) == 1);
    }
    EVP_PKEY_free(l);
    EVP_PKEY_free(d);
    ERR_clear_error();
    return 0;
}
