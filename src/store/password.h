/*
 * Password hashing for certgate accounts: Argon2id through libsodium's
 * crypto_pwhash_str (OPSLIMIT_INTERACTIVE, MEMLIMIT_INTERACTIVE). The
 * result is a self-describing "$argon2id$..." string, stored as
 * store_user.pw_hash. libsodium is owned by src/store: no other module
 * includes <sodium.h>. Thread-safe.
 */
#ifndef CG_STORE_PASSWORD_H
#define CG_STORE_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#define PASSWORD_HASH_LEN 128 /* crypto_pwhash_STRBYTES, with the NUL */

/*
 * Hashes the len bytes of pw (any bytes; need not be NUL-terminated) with
 * a fresh random salt into out, NUL-terminated. Returns 0, CG_EINVAL when
 * len is out of libsodium's range, CG_ELIMIT when the memory for the hash
 * cannot be had, CG_EIO when libsodium cannot be initialised.
 */
int password_hash(const char *pw, size_t len, char out[PASSWORD_HASH_LEN]);
/* True when pw matches hash (a string from password_hash); false for a
 * wrong password or a malformed or NULL hash. */
bool password_verify(const char *hash, const char *pw, size_t len);

#endif
