/* Argon2id password hashes through libsodium (see password.h). */
#include "store/password.h"

#include <pthread.h>
#include <sodium.h>
#include <string.h>

#include "core/err.h"

_Static_assert(PASSWORD_HASH_LEN == crypto_pwhash_STRBYTES,
               "PASSWORD_HASH_LEN must match libsodium");

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_status = -1; /* written once, under sodium_once */

static void
sodium_start(void)
{
    sodium_status = sodium_init() < 0 ? -1 : 0;
}

/* Initialises libsodium once per process; 0 or -1. */
static int
sodium_ready(void)
{
    pthread_once(&sodium_once, sodium_start);
    return sodium_status;
}

int
password_hash(const char *pw, size_t len, char out[PASSWORD_HASH_LEN])
{
    if (sodium_ready() != 0)
        return CG_EIO;
    if (len > crypto_pwhash_PASSWD_MAX)
        return CG_EINVAL;
    if (crypto_pwhash_str(out, pw, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return CG_ELIMIT;
    return 0;
}

bool
password_verify(const char *hash, const char *pw, size_t len)
{
    char buf[PASSWORD_HASH_LEN] = {0};
    if (hash == NULL || sodium_ready() != 0)
        return false;
    /* libsodium reads a full crypto_pwhash_STRBYTES buffer: copy the
     * stored string into one */
    size_t n = strnlen(hash, sizeof(buf));
    if (n == 0 || n == sizeof(buf))
        return false;
    memcpy(buf, hash, n);
    return crypto_pwhash_str_verify(buf, pw, len) == 0;
}
