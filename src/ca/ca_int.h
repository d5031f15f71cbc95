/*
 * Internals of src/ca shared between its files, unit tests and fuzzers:
 * the OpenSSL-level building blocks, none of which touch the store or the
 * file system unless stated.
 */
#ifndef CG_CA_CA_INT_H
#define CG_CA_CA_INT_H

#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca/ca.h"

#define CA_SERIAL_LEN 16
#define CA_BACKDATE 300 /* notBefore = now - 5 minutes */
#define CA_P12_PASS_LEN 20
#define CA_P12_ITER 10000     /* PBKDF2 / PKCS#12 KDF and MAC iterations */
#define CA_FILE_MAX (1 << 20) /* largest CSR / PEM read */

/* --- key.c ------------------------------------------------------------ */

/* Generates a key of type t. Returns 0 and an owned key, or CG_ETLS. */
int ca_key_generate(enum ca_key_type t, EVP_PKEY **out, char *err);
/* PEM PKCS#8 of k, encrypted with AES-256-CBC (PBKDF2) when pass is
 * non-NULL. Returns 0 and owned *pem (wipe with ca_secret_free) of *len
 * bytes, or CG_ETLS. */
int ca_key_pem(EVP_PKEY *k, const char *pass, char **pem, size_t *len,
               char *err);
/* Loads a PEM private key from path (pass for an encrypted one). Returns
 * 0 and an owned key, or CG_EIO / CG_EAUTH (wrong or missing pass). */
int ca_key_load(const char *path, const char *pass, EVP_PKEY **out, char *err);
/* Accepts a subject key (from a CSR): RSA >= 2048 bits, EC P-256/384/521,
 * Ed25519. Returns 0 or CG_EINVAL. */
int ca_key_check(EVP_PKEY *k, char *err);
/* The digest to sign with key k (NULL for Ed25519). */
const EVP_MD *ca_sign_md(EVP_PKEY *k);
/* Fills out with a random PKCS#12 password of CA_P12_PASS_LEN characters
 * (letters and digits without look-alikes) and a NUL. Returns 0 or
 * CG_ETLS. */
int ca_p12_password(char out[CA_P12_PASS_LEN + 1], char *err);

/* --- cert.c ----------------------------------------------------------- */

/* Draws a serial: CA_SERIAL_LEN random bytes, top bit clear, first byte
 * non-zero (so the DER INTEGER is always 16 bytes and positive).
 * Returns 0 or CG_ETLS. */
int ca_serial_draw(unsigned char out[CA_SERIAL_LEN], char *err);
/* The serial as an owned ASN1_INTEGER. */
ASN1_INTEGER *ca_serial_asn1(const unsigned char s[CA_SERIAL_LEN]);

/* What an end-entity certificate says; strings borrowed. */
struct ca_leaf_spec {
    enum ca_profile profile;
    const char *cn;
    const struct cg_strlist *email, *dns, *uri, *ip;
    const char *crl_url; /* CRL distribution point, or NULL */
    int64_t not_before, not_after;
};

/*
 * Builds and signs an end-entity certificate for public key pub with
 * basicConstraints critical CA:FALSE, keyUsage critical
 * digitalSignature (+keyEncipherment for RSA), the profile's EKU, SKI,
 * AKI, SAN and the CRL distribution point. Nothing is taken from a CSR.
 * Returns 0 and an owned certificate, or CG_EINVAL / CG_ETLS.
 */
int ca_leaf_build(const struct ca_leaf_spec *sp, EVP_PKEY *pub,
                  const unsigned char serial[CA_SERIAL_LEN], X509 *issuer,
                  EVP_PKEY *issuer_key, X509 **out, char *err);

/*
 * Builds a CA certificate named cn for key: self-signed root when
 * issuer is NULL (CA:TRUE, no path length), else an intermediate signed
 * by issuer/issuer_key with pathlen 0 and AKI. Both critical
 * basicConstraints and keyUsage keyCertSign+cRLSign, SKI.
 * Returns 0 and an owned certificate, or CG_ETLS.
 */
int ca_ca_build(const char *cn, EVP_PKEY *key, int64_t not_before,
                int64_t not_after, X509 *issuer, EVP_PKEY *issuer_key,
                X509 **out, char *err);

/* PEM of x as an owned string. */
char *ca_cert_pem(X509 *x);
/* Parses the first PEM certificate of pem. Returns owned or NULL. */
X509 *ca_cert_parse(const char *pem);

/* --- csr.c ------------------------------------------------------------ */

/*
 * Parses a PEM CSR and checks it: its self-signature verifies, its key
 * passes ca_key_check, and it does not ask for basicConstraints CA:TRUE
 * (refused, not dropped). Its other requested extensions are ignored by
 * the caller. Returns 0 and an owned request, or CG_EINVAL.
 */
int ca_csr_parse(const char *pem, size_t len, X509_REQ **out, char *err);

/* --- crl.c ------------------------------------------------------------ */

/* One revoked certificate for a CRL (strings borrowed). */
struct ca_revoked {
    const char *serial; /* hex */
    int64_t at;
    const char *reason; /* name from CA_REASONS, or NULL */
};

/*
 * Builds a v2 CRL of issuer signed with key: every entry (serial,
 * revocation date, reasonCode unless unspecified), cRLNumber number,
 * AKI, lastUpdate now, nextUpdate now + days. Returns 0 and an owned CRL,
 * or CG_EINVAL (bad serial or reason) / CG_ETLS.
 */
int ca_crl_build(X509 *issuer, EVP_PKEY *key, const struct ca_revoked *rv,
                 size_t n, int64_t number, int64_t now, int days,
                 X509_CRL **out, char *err);

/* --- p12.c ------------------------------------------------------------ */

/*
 * Builds a PKCS#12 of cert, key and chain (may be NULL) protected by
 * pass, friendly name name. Modern: AES-256-CBC with PBKDF2 for key and
 * certificates, HMAC-SHA-256 MAC. Legacy: PBE-SHA1-3DES for both,
 * SHA-1 MAC. Returns 0 and owned DER in *der (*len bytes), or CG_ETLS.
 */
int ca_p12_build(X509 *cert, EVP_PKEY *key, STACK_OF(X509) * chain,
                 const char *name, const char *pass, bool legacy,
                 unsigned char **der, size_t *len, char *err);

/* --- init.c ----------------------------------------------------------- */

/* The issuing CA loaded for signing. */
struct ca_issuer {
    struct store_ca rec;
    X509 *cert;
    EVP_PKEY *key;
};

/*
 * Loads the issuing CA of store s: record, certificate and private key
 * (pass unlocks an encrypted key). CG_ENOTFOUND "no CA in DATA_DIR: run
 * certgate ca init first" when there is none; CG_EAUTH when the key is
 * encrypted and pass is NULL or wrong. Clean up with ca_issuer_cleanup.
 */
int ca_issuer_load(struct store *s, const char *data_dir, const char *pass,
                   struct ca_issuer *is, char *err);
void ca_issuer_cleanup(struct ca_issuer *is);

/* --- file.c ----------------------------------------------------------- */

/* Files written to temporary names, moved into place by ca_stage_commit. */
struct ca_stage {
    char **tmp, **final;
    size_t n;
};

/* Writes data to a fresh temporary file beside final (O_CREAT|O_EXCL,
 * mode, fsync). Returns 0 or CG_EIO. */
int ca_stage_add(struct ca_stage *st, const char *final, const void *data,
                 size_t len, unsigned mode, char *err);
/*
 * Moves every file into place in order. replace: rename(2) over an
 * existing file; else link(2) + unlink so an existing file is never
 * replaced (CG_EEXIST). Stops at the first failure (later temporaries
 * are removed). Then syncs the directories. Returns 0 or CG_EIO/CG_EEXIST.
 */
int ca_stage_commit(struct ca_stage *st, bool replace, char *err);
/* Removes the temporaries not yet committed and frees st. */
void ca_stage_cleanup(struct ca_stage *st);

/* Reads a whole file (at most max bytes). Returns 0 and owned *data
 * (NUL-terminated, *len bytes), or CG_EIO / CG_ELIMIT. */
int ca_file_read(const char *path, size_t max, char **data, size_t *len,
                 char *err);

/* Fills err with what failed and OpenSSL's queued reasons; returns
 * CG_ETLS. */
int ca_ssl_fail(char *err, const char *what);

#endif
