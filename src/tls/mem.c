/*
 * OpenSSL's heap: its allocations go through the thread-local block cache
 * (core/blkcache.h): a full handshake makes ~880 of them, most small and
 * freed at its end, which glibc's arena serves slowly from a worker
 * thread (13% of a handshake's CPU time was malloc/free).
 *
 * And its wipes: OPENSSL_cleanse is defined here, so the executable's
 * definition is the one libcrypto's and libssl's calls reach (ELF symbol
 * interposition, as in randpool.c; both call it through their PLT).
 * libcrypto's own (x86_64cpuid.pl) stores 8 bytes per iteration of a
 * loop; a TLS 1.3 resumption wipes ~30-50 KB in ~170 calls (digest and
 * MAC contexts, key material, the 21,848-byte handshake buffer libssl
 * frees at its end): ~1.8% of its CPU time. glibc's explicit_bzero is
 * memset's vector stores behind a compiler barrier, so that the stores
 * are not removed as dead: the same guarantee, the same bytes zeroed.
 */
#include <openssl/crypto.h>
#include <string.h>

#include "core/blkcache.h"
#include "tls/tls.h"

static void *
mem_alloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return blkcache_alloc(n);
}

static void *
mem_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return blkcache_realloc(p, n);
}

static void
mem_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    blkcache_free(p);
}

bool
tls_mem_init(void)
{
    return CRYPTO_set_mem_functions(mem_alloc, mem_realloc, mem_free) == 1;
}

void
OPENSSL_cleanse(void *ptr, size_t len)
{
    if (ptr != NULL && len > 0)
        explicit_bzero(ptr, len);
}
