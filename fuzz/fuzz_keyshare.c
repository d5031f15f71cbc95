/*
 * libFuzzer target for the X25519 key-share pool's public keys
 * (src/tls/keyshare.c): differential against libcrypto's own X25519.
 *
 * Each input is split into 1 to 8 private keys of 32 bytes (the last one
 * zero-padded; any bytes, so also zero, all-ones and unclamped keys): the
 * batch's public keys (Ed25519's fixed-base multiplication, the
 * birational map, one shared inversion) must each be the public key
 * OpenSSL computes for the same private key. Then the same keys one at a
 * time, which must give the same.
 *
 * Build and run (from the repository root; not part of CMake):
 *
 *   mkdir -p build-fuzz/corpus-keyshare
 *   clang -g -O1 -std=c17 -fsanitize=fuzzer,address,undefined \
 *     -fno-sanitize-recover=undefined -D_GNU_SOURCE -Isrc \
 *     fuzz/fuzz_keyshare.c src/tls/keyshare.c src/core/[a-z]*.c \
 *     $(pkg-config --cflags --libs libssl libcrypto libsodium) -lpthread -ldl \
 *     -o build-fuzz/fuzz_keyshare
 *   ./build-fuzz/fuzz_keyshare -max_total_time=60 -max_len=256 \
 *     build-fuzz/corpus-keyshare
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "tls/tls_int.h"

#include "fuzz_check.h"

#define LEN TLS_KEYSHARE_LEN

static bool ready;

static void
openssl_public(const unsigned char priv[LEN], unsigned char pub[LEN])
{
    EVP_PKEY *k =
        EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, LEN);
    size_t n = LEN;
    CHECK(k != NULL && EVP_PKEY_get_raw_public_key(k, pub, &n) == 1 &&
          n == LEN);
    EVP_PKEY_free(k);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready) {
        CHECK(tls_keyshare_ready());
        ready = true;
    }
    if (size == 0 || size > TLS_KEYSHARE_BATCH * LEN)
        return 0;
    size_t n = (size + LEN - 1) / LEN;
    unsigned char orig[TLS_KEYSHARE_BATCH][LEN] = {{0}};
    unsigned char priv[TLS_KEYSHARE_BATCH][LEN], one[1][LEN];
    unsigned char pub[TLS_KEYSHARE_BATCH][LEN], single[1][LEN], want[LEN];
    memcpy(orig, data, size);
    memcpy(priv, orig, sizeof(priv));
    CHECK(tls_keyshare_publics(priv, pub, n));
    for (size_t i = 0; i < n; i++) {
        openssl_public(orig[i], want);
        CHECK(memcmp(pub[i], want, LEN) == 0);
        memcpy(one[0], orig[i], LEN);
        CHECK(tls_keyshare_publics(one, single, 1));
        CHECK(memcmp(single[0], want, LEN) == 0);
    }
    ERR_clear_error();
    return 0;
}
