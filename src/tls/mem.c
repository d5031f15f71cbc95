/*
 * OpenSSL's heap: its allocations go through the thread-local block cache
 * (core/blkcache.h): a full handshake makes ~880 of them, most small and
 * freed at its end, which glibc's arena serves slowly from a worker
 * thread (13% of a handshake's CPU time was malloc/free).
 */
#include <openssl/crypto.h>

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
