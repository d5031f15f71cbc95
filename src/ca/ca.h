/*
 * The certgate certificate authority: CA creation, certificate issuing
 * (generated keys or CSRs), PKCS#12 bundles and CRLs. The CA keeps its
 * records and every issued certificate in the store (store/store.h) and
 * its files under DATA/ca/. No OpenSSL type crosses this header; the
 * OpenSSL-level building blocks are in ca_int.h for tests and fuzzers.
 *
 * Files of a CA in the data directory:
 *   ca/root.pem, ca/root.key        the root (self-signed)
 *   ca/issuer.pem, ca/issuer.key    the issuing intermediate (--intermediate
 *                                   only; for a root-only CA the root is
 *                                   the issuer and these do not exist)
 *
 * Write order (every command that writes files): everything is built in
 * memory, written to temporary files beside the targets (0600 keys,
 * O_CREAT|O_EXCL), then the store transaction runs, and only when it
 * succeeded are the temporary files renamed into place. A failed store
 * write therefore leaves no file behind. The one remaining window is a
 * rename failing after the commit: the store row stays (an issued
 * certificate that exists anywhere must be listable and revocable; a row
 * whose files never appeared is harmless) and the error names the serial.
 * `ca init` checks first that no CA file exists and links its files into
 * place without ever replacing one (a root key is never overwritten).
 */
#ifndef CG_CA_CA_H
#define CG_CA_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "ident/ident.h"
#include "store/store.h"

/* Key types: enum name, command-line name. */
#define CA_KEY_TYPES(X)                                                        \
    X(CA_KEY_EC_P256, "ec-p256")                                               \
    X(CA_KEY_EC_P384, "ec-p384")                                               \
    X(CA_KEY_RSA_2048, "rsa-2048")                                             \
    X(CA_KEY_RSA_3072, "rsa-3072")                                             \
    X(CA_KEY_RSA_4096, "rsa-4096")                                             \
    X(CA_KEY_ED25519, "ed25519")

enum ca_key_type {
#define CA_KEY_ENUM(e, name) e,
    CA_KEY_TYPES(CA_KEY_ENUM)
#undef CA_KEY_ENUM
};

/* Parses a key type name; returns the enum value or -1 when unknown. */
int ca_key_type_parse(const char *s);
/* Returns the static name of t. */
const char *ca_key_type_name(enum ca_key_type t);
/* Returns the static list "ec-p256, ec-p384, ..." for error messages. */
const char *ca_key_type_list(void);

/* RFC 5280 CRLReason values: name as given to --reason, code. */
#define CA_REASONS(X)                                                          \
    X("unspecified", 0)                                                        \
    X("keyCompromise", 1)                                                      \
    X("caCompromise", 2)                                                       \
    X("affiliationChanged", 3)                                                 \
    X("superseded", 4)                                                         \
    X("cessationOfOperation", 5)                                               \
    X("certificateHold", 6)                                                    \
    X("privilegeWithdrawn", 9)

/* Returns the CRLReason code of name (case-sensitive), or -1. */
int ca_reason_code(const char *name);
/* Returns the static list "unspecified, keyCompromise, ..." */
const char *ca_reason_list(void);

enum ca_profile {
    CA_PROFILE_CLIENT, /* EKU clientAuth */
    CA_PROFILE_SERVER, /* EKU serverAuth */
};

/* Kinds of subject alternative names accepted on the command line. */
enum ca_name_kind {
    CA_NAME_EMAIL,
    CA_NAME_DNS,
    CA_NAME_URI,
    CA_NAME_IP,
    CA_NAME_CN,
};

/*
 * Checks one name given for a certificate (syntax only: an email needs
 * one '@' and no spaces, a DNS name LDH labels with an optional leading
 * "*.", a URI a scheme, an IP inet_pton v4 or v6, a CN 1..64 bytes of
 * UTF-8). No value may hold control bytes. Returns 0 or CG_EINVAL with
 * err naming the value.
 */
int ca_name_check(enum ca_name_kind kind, const char *value, char *err);

/* --- ca init ---------------------------------------------------------- */

struct ca_init_params {
    const char *name;       /* CN of the root ("NAME Root CA" / "NAME
                               Issuing CA" with an intermediate) */
    enum ca_key_type key;   /* for every CA key made */
    int days;               /* validity of the CA certificates; 0 = 3650 */
    bool intermediate;      /* root + issuing intermediate (pathlen 0) */
    const char *crl_url;    /* embedded in issued certificates, or NULL */
    const char *passphrase; /* encrypts the CA keys, or NULL */
    int64_t now;            /* 0 = the current time */
};

struct ca_init_result {
    char *root_cert, *root_key;          /* absolute paths, owned */
    char *issuer_cert, *issuer_key;      /* NULL for a root-only CA */
    char *root_subject, *issuer_subject; /* RFC 4514 */
    int64_t not_after;
};
void ca_init_result_cleanup(struct ca_init_result *r);

/*
 * Creates the CA of data_dir (which store s lives in): keys, certificates
 * and store records. Refused with CG_EEXIST when an issuing CA exists or
 * when a CA file is already present. Returns 0 and fills *r (caller
 * cleans up), or a CG_E* code with err filled; on failure the store and
 * data_dir are as before.
 */
int ca_init(struct store *s, const char *data_dir,
            const struct ca_init_params *p, struct ca_init_result *r,
            char *err);

/* --- ca issue --------------------------------------------------------- */

struct ca_issue_params {
    enum ca_profile profile;
    const char *cn;          /* client: required; server: NULL = dns[0] */
    struct cg_strlist email; /* SAN rfc822Name */
    struct cg_strlist uri;   /* SAN URI */
    struct cg_strlist dns;   /* SAN dNSName (server: at least one) */
    struct cg_strlist ip;    /* SAN iPAddress */
    const char *user;        /* owner: must exist; gives the email when
                                email is empty */
    const char *device;      /* device name recorded, or NULL */
    int days;                /* 0 = 365 client, 825 server */
    enum ca_key_type key;    /* generated key type (no CSR) */
    const char *csr_path;    /* sign this CSR instead of generating */
    const char *out_dir;     /* NULL = current directory */
    const char *key_pass;    /* encrypts the generated key, or NULL */
    const char *ca_pass;     /* unlocks an encrypted CA key, or NULL */
    const char *p12_path;    /* also write a PKCS#12 here, or NULL */
    const char *p12_pass;    /* NULL = generate one (returned in result) */
    bool p12_legacy;         /* PBE-SHA1-3DES + SHA-1 MAC */
    int64_t now;             /* 0 = the current time */
};

struct ca_issue_result {
    char serial[41];  /* uppercase hex, as `openssl x509 -serial` */
    char *subject;    /* RFC 4514 */
    char *cert_path;  /* owned paths of the files written */
    char *key_path;   /* NULL with a CSR */
    char *chain_path; /* NULL when the root signs directly */
    char *p12_path;
    char *p12_pass; /* the generated PKCS#12 password, or NULL */
    int64_t not_before, not_after;
};
/* Frees the members (the password is wiped first). */
void ca_issue_result_cleanup(struct ca_issue_result *r);

/*
 * Issues one certificate from the issuing CA of store s (data_dir names
 * the CA in messages). Writes DIR/<name>.pem, DIR/<name>.key (0600, not
 * with a CSR), DIR/<name>-chain.pem (the intermediates between the leaf
 * and the root, root excluded; not written for a root-only CA) and the
 * PKCS#12 when asked; <name> is the CN sanitised to [A-Za-z0-9._-].
 * Returns 0 and fills *r, or CG_ENOTFOUND (no CA, unknown user), CG_EINVAL
 * (bad name, bad or refused CSR), CG_EIO, CG_ETLS with err filled.
 */
int ca_issue(struct store *s, const char *data_dir,
             const struct ca_issue_params *p, struct ca_issue_result *r,
             char *err);

/* --- ca crl ----------------------------------------------------------- */

/*
 * Builds the CRL of the issuing CA: every certificate it revoked, with
 * revocation date and reason, the next CRL number (reserved in the store
 * only after the key loaded; a failure after that leaves a gap, which
 * RFC 5280 allows), lastUpdate now and nextUpdate now + days.
 * Returns 0 and an owned PEM in *pem (and the number in *number), or a
 * CG_E* code with err filled.
 */
int ca_crl_make(struct store *s, const char *data_dir, const char *ca_pass,
                int days, int64_t now, char **pem, int64_t *number, char *err);

/* --- files and secrets ------------------------------------------------ */

/*
 * Reads the first line of path (without its line end) as a secret.
 * Returns 0 and an owned string (free with ca_secret_free), or CG_EIO /
 * CG_EINVAL (empty line) with err filled.
 */
int ca_secret_read(const char *path, char **out, char *err);
/* Wipes and frees s; NULL is a no-op. */
void ca_secret_free(char *s);

/*
 * Writes len bytes to path atomically (temporary file beside it, fsync,
 * rename) with the given mode. Returns 0 or CG_EIO with err filled; on
 * failure path is unchanged and no temporary file remains.
 */
int ca_file_replace(const char *path, const void *data, size_t len,
                    unsigned mode, char *err);

/* Writes the file name for a certificate named s into out (n bytes):
 * characters outside [A-Za-z0-9._-] become '_', a leading '.' too. */
void ca_file_name(const char *s, char *out, size_t n);

#endif
