/*
 * JWT (RFC 7519, JWS compact form RFC 7515) verification for the MQTT
 * `jwt` check: the CONNECT password is a token signed with HS256, RS256
 * or ES256 (RFC 7518) by a key from the config. No OpenSSL type appears
 * here; see docs/mqtt.md for the rules.
 */
#ifndef CG_TLS_JWT_H
#define CG_TLS_JWT_H

#include <stddef.h>
#include <stdint.h>

/* Seconds of clock skew allowed on exp and nbf (RFC 7519 4.1.4/4.1.5
 * "MAY provide for some small leeway"). */
#define TLS_JWT_LEEWAY 30

/* Longest token accepted (an MQTT password holds at most 65535 bytes). */
#define TLS_JWT_MAX_LEN 65535

/* A set of verification keys (opaque). */
struct tls_jwt_keys;

/* Returns a new, empty key set (owned; free with tls_jwt_keys_free). */
struct tls_jwt_keys *tls_jwt_keys_new(void);
void tls_jwt_keys_free(struct tls_jwt_keys *k);

/*
 * Adds an HS256 shared secret (copied; at least 32 bytes, RFC 7518
 * 3.2). kid (copied; NULL: none) restricts the key to tokens whose
 * header names that kid. Returns 0 or CG_ECONFIG with err filled.
 */
int tls_jwt_keys_add_secret(struct tls_jwt_keys *k, const char *kid,
                            const void *secret, size_t len, char *err);
/*
 * Adds a public key from PEM text ("PUBLIC KEY" or "CERTIFICATE"): an
 * RSA key of 2048 bits or more verifies RS256, an EC P-256 key ES256;
 * any other key is refused. Returns 0 or CG_ECONFIG with err filled.
 */
int tls_jwt_keys_add_pem(struct tls_jwt_keys *k, const char *kid,
                         const char *pem, size_t len, char *err);
/* Same, reading the PEM from a file. */
int tls_jwt_keys_add_pem_file(struct tls_jwt_keys *k, const char *kid,
                              const char *path, char *err);
/* Number of keys in the set. */
size_t tls_jwt_keys_count(const struct tls_jwt_keys *k);

/*
 * Verifies token[0..len) at time now (unix seconds):
 *  - compact form header.payload.signature, each part base64url without
 *    padding (RFC 7515 2: no '=', canonical trailing bits);
 *  - header "alg" is HS256, RS256 or ES256 ("none" and all others are
 *    refused), no "crit"; the signature is checked only with keys of
 *    that algorithm (an HS256 token never meets a public key), and only
 *    keys without a kid or with the header's "kid";
 *  - payload "exp" is required: refused when now >= exp + LEEWAY; "nbf",
 *    when present: refused when now + LEEWAY < nbf;
 *  - payload member `claim` must be a string equal to `expect` byte for
 *    byte.
 * Returns 0 when valid, else CG_EAUTH with the reason in err.
 */
int tls_jwt_verify(const struct tls_jwt_keys *k, const char *token, size_t len,
                   int64_t now, const char *claim, const char *expect,
                   char *err);

#endif
