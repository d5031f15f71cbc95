/*
 * The certgate store: users, issued certificates, CA records and CRL
 * numbers. SQLite (WAL) in the data directory by default; the interface is
 * small so a PostgreSQL backend can follow. Pure data: no sockets, no
 * OpenSSL. Every write is one transaction: it either completes (and is
 * durable when the call returns 0) or leaves the store as it was.
 */
#ifndef CG_STORE_STORE_H
#define CG_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "ident/ident.h"

struct store;

/*
 * Opens (creating when missing, mode 0700 directory, 0600 file) the store
 * in data_dir (file "certgate.db") and applies pending schema migrations.
 * Returns 0 and an owned store, or CG_EIO with err filled.
 */
int store_open(const char *data_dir, struct store **out, char *err);
void store_close(struct store *s);
/* Schema version after migrations. */
int store_schema_version(struct store *s);

/* --- users ---------------------------------------------------------- */

enum store_user_status {
    STORE_USER_ACTIVE,
    STORE_USER_DISABLED,
};

struct store_user {
    int64_t id;
    char *name;
    char *email; /* unique, case-insensitive */
    char *role;  /* "admin" | "user" */
    enum store_user_status status;
    char *pw_hash; /* Argon2id string or NULL (no password) */
    int64_t created_at;
};
void store_user_cleanup(struct store_user *u);

/* Adds a user; CG_EEXIST when the name or email is taken (err says
 * which). */
int store_user_add(struct store *s, const struct store_user *u, char *err);
/* Finds by name or by email (case-insensitive); CG_ENOTFOUND. Fills *u
 * (caller cleans up). */
int store_user_get(struct store *s, const char *name, struct store_user *u,
                   char *err);
int store_user_get_by_email(struct store *s, const char *email,
                            struct store_user *u, char *err);
/* All users ordered by name: *out owned array of *n (cleanup each, free). */
int store_user_list(struct store *s, struct store_user **out, size_t *n,
                    char *err);
int store_user_set_password(struct store *s, const char *name,
                            const char *pw_hash, char *err);
int store_user_set_status(struct store *s, const char *name,
                          enum store_user_status st, char *err);
/* Deletes a user. Refused (CG_EEXIST) while the user owns valid
 * certificates unless revoke_reason is non-NULL, in which case those are
 * revoked with that reason in the same transaction. */
int store_user_delete(struct store *s, const char *name,
                      const char *revoke_reason, char *err);

/* --- certificate authorities ---------------------------------------- */

struct store_ca {
    int64_t id;
    char *name;
    char *cert_pem; /* this CA's certificate */
    char *key_path; /* absolute path of its private key file (0600) */
    bool key_encrypted;
    bool is_issuer;    /* signs leaf certificates */
    int64_t parent_id; /* 0 for a root */
    char *crl_url;     /* CRL distribution point to embed, or NULL */
    int64_t created_at;
};
void store_ca_cleanup(struct store_ca *c);
/* Adds CA records (a root, or a root and its intermediate) in one
 * transaction; ids are written back into cas[i].id. parent_id of an
 * entry may be given as -(index+1) to refer to an earlier entry of the
 * same call. CG_EEXIST when an issuing CA already exists. */
int store_ca_add(struct store *s, struct store_ca *cas, size_t n, char *err);
/* The issuing CA; CG_ENOTFOUND when none (no `ca init` yet). */
int store_ca_get_issuer(struct store *s, struct store_ca *c, char *err);
/* The chain from the issuer up to the root (issuer first): owned array. */
int store_ca_chain(struct store *s, struct store_ca **out, size_t *n,
                   char *err);
/* Reserves the next CRL number of CA id (1, 2, ...), durably. */
int store_crl_next_number(struct store *s, int64_t ca_id, int64_t *out,
                          char *err);

/* --- issued certificates -------------------------------------------- */

enum store_cert_status {
    STORE_CERT_VALID,
    STORE_CERT_REVOKED,
};

struct store_cert {
    char serial[41]; /* uppercase hex, no leading zeros stripped:
                        exactly as `openssl x509 -serial` */
    int64_t ca_id;   /* issuing CA */
    char *subject;   /* RFC 4514 */
    struct cg_strlist san_email, san_dns, san_uri, san_ip;
    char *owner;   /* user name or NULL */
    char *device;  /* device name or NULL */
    char *profile; /* "client" | "server" */
    int64_t not_before, not_after;
    enum store_cert_status status;
    int64_t revoked_at;      /* 0 when valid */
    char *revocation_reason; /* RFC 5280 reason name, or NULL */
    char *pem;
};
void store_cert_cleanup(struct store_cert *c);

/*
 * Writes the canonical form of a serial given in hex (case-insensitive,
 * ':' separators and leading zeros ignored) into out: uppercase, leading
 * zeros stripped, then one '0' added when needed for an even length -
 * exactly what `openssl x509 -serial` prints ("00" for zero). Returns 0,
 * or CG_EINVAL when serial is empty, has another character or is longer
 * than 20 bytes. Every serial argument below goes through it (a malformed
 * one gives CG_EINVAL).
 */
int store_serial_normalize(const char *serial, char out[41]);

/* Inserts a new certificate; CG_EEXIST if the serial exists (the caller
 * draws a new serial and retries). */
int store_cert_add(struct store *s, const struct store_cert *c, char *err);
/* By serial (hex, case-insensitive, leading zeros and ':' ignored). */
int store_cert_get(struct store *s, const char *serial, struct store_cert *c,
                   char *err);

struct store_cert_filter {
    int status;        /* -1 any, else enum store_cert_status */
    bool expired_only; /* not_after < now (status valid) */
    bool unexpired_only;
    const char *owner; /* NULL any */
    int64_t now;       /* for the expiry filters */
};
int store_cert_list(struct store *s, const struct store_cert_filter *f,
                    struct store_cert **out, size_t *n, char *err);
/* Revokes; CG_ENOTFOUND unknown serial, CG_EEXIST already revoked. */
int store_cert_revoke(struct store *s, const char *serial, const char *reason,
                      int64_t at, char *err);
/* Revoked certificates of CA ca_id (for CRLs and the revocation index):
 * owned array ordered by serial (numerically). To stay small with many
 * revocations, pem is NULL and the SAN lists are empty in these rows. */
int store_cert_revoked(struct store *s, int64_t ca_id, struct store_cert **out,
                       size_t *n, char *err);
/* A number that grows with every revocation (for watchers). */
int store_revocation_seq(struct store *s, int64_t *out, char *err);

#endif
