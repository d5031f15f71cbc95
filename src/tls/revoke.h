/*
 * The revocation index (internal to src/tls; OpenSSL types allowed, as in
 * tls_int.h). Per issuer, the revoked serials in one sorted array of
 * fixed-size records, built once per load and immutable afterwards: worker
 * threads look serials up with no lock and no allocation.
 *
 * Issuers. An issuer is a CA certificate of the trust set, identified by
 * its subject name and its public key (the subjectPublicKey bits): the
 * two things a CRL's signature and a certificate's signature bind. A
 * re-issued CA certificate with the same name and key is the same issuer.
 * The lookup compares the chain's issuer with the (few) registered
 * issuers using only data OpenSSL caches when it parses a certificate
 * (canonical name encoding, key bits): no hashing, no allocation.
 *
 * Serials. A record is 21 bytes: a sign byte (1 for a negative serial,
 * which RFC 5280 forbids but parsers accept) and the magnitude, big-endian,
 * left-padded with zeros to 20 bytes. Leading zero bytes of the encoding
 * are therefore irrelevant, memcmp is numeric order, and 1,000,000
 * entries take 21 MB. Serials longer than 20 bytes (RFC 5280's limit)
 * cannot be indexed: tls_revindex_builder_add refuses them.
 *
 * Staleness. Each issuer fed by a CRL has a stale_after time (nextUpdate,
 * plus the grace of on_stale_crl "grace:<duration>"); past it, the
 * certificates that issuer signed are refused as stale_crl. The check uses
 * the verification time, so `certgate verify --at` sees what a handshake
 * at that time would see.
 */
#ifndef CG_TLS_REVOKE_H
#define CG_TLS_REVOKE_H

#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

#define TLS_SERIAL_MAX 20       /* bytes of magnitude (RFC 5280 4.1.2.2) */
#define TLS_REV_NEVER INT64_MAX /* stale_after of an issuer with no CRL */

struct tls_revindex_builder;
struct tls_revindex;

/* --- Building (main thread, during a load) -------------------------- */

struct tls_revindex_builder *tls_revindex_builder_new(void);
/* Frees an unfinished builder (after an error); NULL is a no-op. */
void tls_revindex_builder_free(struct tls_revindex_builder *b);

/*
 * Returns the id (0, 1, ...) of issuer ca, registering it on first use
 * (takes its own reference to ca). The same name and key give the same
 * id. Ids stay valid in the built index.
 */
size_t tls_revindex_builder_issuer(struct tls_revindex_builder *b, X509 *ca);
/* The source already recorded for issuer id (a CRL path, "builtin CA"),
 * or NULL: one source per issuer. */
const char *tls_revindex_builder_source(const struct tls_revindex_builder *b,
                                        size_t id);
/* Records where issuer id's revocations come from (copied) and when they
 * go stale (unix seconds, TLS_REV_NEVER for none). */
void tls_revindex_builder_set_source(struct tls_revindex_builder *b, size_t id,
                                     const char *source, int64_t stale_after);
/* Reserves room for n more serials of issuer id (optional). */
void tls_revindex_builder_reserve(struct tls_revindex_builder *b, size_t id,
                                  size_t n);
/*
 * Adds one revoked serial of issuer id: its magnitude as big-endian bytes
 * (leading zeros allowed, any number) and its sign. Duplicates are fine.
 * Returns 0, or CG_EINVAL when the magnitude is longer than 20 bytes.
 */
int tls_revindex_builder_add(struct tls_revindex_builder *b, size_t id,
                             const unsigned char *mag, size_t len,
                             bool negative);
/* Same from hex text (the store's form; ':' ignored). CG_EINVAL when the
 * text is empty, not hex or longer than 20 bytes. */
int tls_revindex_builder_add_hex(struct tls_revindex_builder *b, size_t id,
                                 const char *hex);
/*
 * Sorts and de-duplicates every issuer's serials (nothing to sort when
 * they came in order, as from certgate's CRLs and store) and returns the
 * immutable index. Consumes b. Returns owned.
 */
struct tls_revindex *tls_revindex_build(struct tls_revindex_builder *b);
void tls_revindex_free(struct tls_revindex *ix);

/* --- Lookup (any thread) --------------------------------------------- */

enum tls_revstatus {
    TLS_REV_GOOD,    /* not revoked, or no revocation data for its issuer */
    TLS_REV_REVOKED, /* listed by its issuer */
    TLS_REV_STALE,   /* its issuer's CRL is past nextUpdate (+ grace) */
};

/*
 * Checks cert, whose verified issuer certificate is issuer, at time now
 * (unix seconds). issuer may be NULL (a resumed session has no chain):
 * the issuer is then found by cert's issuer name and authority key id.
 * Revoked wins over stale. No lock, no allocation.
 */
enum tls_revstatus tls_revindex_check(const struct tls_revindex *ix, X509 *cert,
                                      X509 *issuer, int64_t now);
/* The index key of cert's serial (what a connection keeps of its client
 * certificate for later checks); false when no index can list it. */
#define TLS_REVKEY_LEN (1 + TLS_SERIAL_MAX)
bool tls_revindex_key_of(X509 *cert, unsigned char key[TLS_REVKEY_LEN]);
/* tls_revindex_check by key (NULL: staleness only) and issuer (not NULL). */
enum tls_revstatus tls_revindex_check_key(const struct tls_revindex *ix,
                                          const unsigned char *key,
                                          X509 *issuer, int64_t now);
/* True when cert is listed by issuer (staleness ignored). */
bool tls_revindex_is_revoked(const struct tls_revindex *ix, X509 *cert,
                             X509 *issuer);
/* True when issuer id lists the serial (magnitude bytes and sign). */
bool tls_revindex_contains(const struct tls_revindex *ix, size_t id,
                           const unsigned char *mag, size_t len, bool negative);

/* --- Introspection (logs, metrics, tests) ---------------------------- */

struct tls_revissuer_info {
    X509 *ca;           /* borrowed from the index */
    const char *source; /* CRL path or "builtin CA"; NULL when none */
    size_t serials;     /* distinct revoked serials */
    int64_t stale_after;
};

size_t tls_revindex_issuers(const struct tls_revindex *ix);
void tls_revindex_issuer_info(const struct tls_revindex *ix, size_t id,
                              struct tls_revissuer_info *out);
/* Distinct serials over every issuer, and heap bytes the index holds. */
size_t tls_revindex_entries(const struct tls_revindex *ix);
size_t tls_revindex_bytes(const struct tls_revindex *ix);

/* --- CRL files (crl.c) ------------------------------------------------ */

/*
 * Loads every CRL that tc->crl_files names (PEM or DER files; a directory
 * means its *.crl, *.pem and *.der files) into b. Each CRL must be signed
 * by one of cas (the trust set's CA certificates, matched by issuer name
 * and authority key id), have thisUpdate <= now, and carry no delta,
 * issuingDistributionPoint or other unsupported critical extension. Its
 * nextUpdate and tc's on_stale_crl give the issuer's stale_after; a CRL
 * stale at load is logged (error under "reject", warning in its grace).
 * Errors read "trust.<name>.crl_files[i]: <file>: <why>".
 * Returns 0 or CG_ECONFIG.
 */
int tls_crl_load(const struct cg_trust_cfg *tc, STACK_OF(X509) * cas,
                 struct tls_revindex_builder *b, int64_t now, char *err);

#endif
