/*
 * Certificate identity: the plain, OpenSSL-free view of a client
 * certificate that every protocol maps from (headers, MQTT fields, policy,
 * logs). tls/peer.c fills it from an X509 once per handshake; everything
 * here is pure and never touches sockets.
 */
#ifndef CG_IDENT_IDENT_H
#define CG_IDENT_IDENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* List of owned NUL-terminated strings. */
struct cg_strlist {
    char **v;
    size_t n;
};
void cg_strlist_add(struct cg_strlist *l, const char *s);
void cg_strlist_addn(struct cg_strlist *l, const char *s, size_t len);
void cg_strlist_clear(struct cg_strlist *l);
bool cg_strlist_contains(const struct cg_strlist *l, const char *s);

/* One attribute of a distinguished name, in certificate (encoding) order. */
struct cg_rdn {
    char *type;       /* short name ("CN", "O", "emailAddress") or dotted OID */
    char *value;      /* UTF-8, owned; may contain NUL (see value_len) */
    size_t value_len; /* bytes in value */
    int set;          /* RDN set index: equal for multi-valued RDN members */
};

struct cg_identity {
    struct cg_rdn *subject; /* as encoded: usually C first, CN last */
    size_t n_subject;
    struct cg_rdn *issuer;
    size_t n_issuer;

    /* Derived by ident_finish() from the fields below and above. */
    char *cn;        /* the single CN, NULL if none or more than one */
    size_t n_cn;     /* how many CN attributes the subject has */
    char *dn;        /* RFC 4514 string (most specific first), escaped */
    char *dn_emqx;   /* EMQX form: CN=..,OU=..,O=..,L=..,ST=..,C=.. */
    char *issuer_dn; /* RFC 4514 */
    char *email;     /* SAN rfc822Name, else subject emailAddress; NULL
                        when none or ambiguous */
    const char *email_reason; /* static: NULL, "none" or "ambiguous" */

    /* Filled by the extractor. */
    struct cg_strlist san_email, san_dns, san_uri, san_ip;
    bool name_has_nul; /* extractor saw NUL in a subject or SAN value */
    char *serial;      /* uppercase hex, as openssl x509 -serial */
    int64_t not_before, not_after; /* unix seconds */
    char sha256[65];               /* lowercase hex of SHA-256(DER) */
    char md5[33];                  /* lowercase hex of MD5(DER) */
    char *crt;                     /* base64 of DER, one line */
    char *pem;                     /* PEM text with newlines */
    unsigned char *der;
    size_t der_len;

    atomic_int refs; /* ident_new: 1; see ident_ref */
};

/* Returns a new, empty identity (owned; free with ident_free). */
struct cg_identity *ident_new(void);
/* Drops one reference; the last one frees id. NULL is a no-op. */
void ident_free(struct cg_identity *id);
/* Takes one more reference to a finished identity, which nobody may
 * change any more: the TLS caches share one identity between every
 * connection of the same certificate, on any thread. Returns id. */
struct cg_identity *ident_ref(struct cg_identity *id);
/* Appends an attribute to a name (subject or issuer array). Copies value. */
void ident_rdn_add(struct cg_rdn **arr, size_t *n, const char *type,
                   const char *value, size_t value_len, int set);
/* Computes cn, n_cn, dn, dn_emqx, issuer_dn, email from the raw fields. */
void ident_finish(struct cg_identity *id);

enum cg_dn_style {
    CG_DN_RFC4514, /* reverse order, "," between RDNs, "+" inside */
    CG_DN_EMQX,    /* EMQX peer_cert_as_username=dn */
};
/* Appends the formatted, escaped DN to out. */
void ident_dn_format(struct cg_buf *out, const struct cg_rdn *rdns, size_t n,
                     enum cg_dn_style style);
/* Appends value escaped per RFC 4514 section 2.4 (also escapes control
 * bytes and NUL as \XX so the result never holds one). */
void ident_dn_escape(struct cg_buf *out, const char *value, size_t len);

/* Names the certgate checks that OpenSSL does not make on names: returns
 * NULL when the names are acceptable, else a static reason code
 * ("bad_name": NUL or control byte in a subject/SAN value, "multiple_cn"). */
const char *ident_check_names(const struct cg_identity *id);

/* Verification outcome carried with a connection. */
enum cg_verify_status {
    CG_VERIFY_NONE,    /* no certificate presented */
    CG_VERIFY_SUCCESS, /* verified */
    CG_VERIFY_FAILED,  /* presented and refused: see reason */
};
struct cg_verdict {
    enum cg_verify_status status;
    const char *reason; /* static code: "no_cert", "untrusted", ... */
};

/* Identity fields that can be mapped (headers, MQTT, policy, PROXY v2). */
#define CG_FIELDS(X)                                                           \
    X(CG_F_VERIFY, "verify")                                                   \
    X(CG_F_CN, "cn")                                                           \
    X(CG_F_DN, "dn")                                                           \
    X(CG_F_DN_EMQX, "dn_emqx")                                                 \
    X(CG_F_EMAIL, "email")                                                     \
    X(CG_F_SAN_EMAIL, "san_email")                                             \
    X(CG_F_SAN_DNS, "san_dns")                                                 \
    X(CG_F_SAN_URI, "san_uri")                                                 \
    X(CG_F_SAN_IP, "san_ip")                                                   \
    X(CG_F_SERIAL, "serial")                                                   \
    X(CG_F_ISSUER_DN, "issuer_dn")                                             \
    X(CG_F_NOT_BEFORE, "not_before")                                           \
    X(CG_F_NOT_AFTER, "not_after")                                             \
    X(CG_F_SHA256, "sha256")                                                   \
    X(CG_F_MD5, "md5")                                                         \
    X(CG_F_CRT, "crt")                                                         \
    X(CG_F_PEM, "pem")                                                         \
    X(CG_F_PEM_URLENCODED, "pem_urlencoded")                                   \
    X(CG_F_CLIENT_CERT, "client_cert")

enum cg_field {
#define CG_FIELD_ENUM(e, name) e,
    CG_FIELDS(CG_FIELD_ENUM)
#undef CG_FIELD_ENUM
        CG_F_COUNT
};

/* Returns the field for a name, or -1. */
int ident_field_parse(const char *name);
const char *ident_field_name(enum cg_field f);
/*
 * Appends the value of field f to out. id may be NULL (no certificate).
 * List fields are joined with ", ". not_before/not_after are RFC 3339 UTC.
 * verify renders "SUCCESS", "NONE" or "FAILED:<reason>". client_cert is
 * the RFC 9440 form ":<base64 DER>:". Returns false (out untouched) when
 * the field is absent.
 */
bool ident_field_value(const struct cg_identity *id, const struct cg_verdict *v,
                       enum cg_field f, struct cg_buf *out);

/* Access policy of a route: every non-empty list must match. */
struct cg_policy {
    bool require_verified;
    struct cg_strlist cn, ou, o, email, email_domain, san_uri_prefix, issuer_dn,
        serial;
};
void ident_policy_cleanup(struct cg_policy *p);
/* True when the policy has no list and does not require a certificate. */
bool ident_policy_is_open(const struct cg_policy *p);
/*
 * Returns NULL when (id, v) is allowed, else a static reason code:
 * "not_verified" (a list or require_verified needs a verified cert),
 * "policy_cn", "policy_ou", "policy_o", "policy_email",
 * "policy_email_domain", "policy_san_uri", "policy_issuer", "policy_serial".
 * Comparisons: cn/ou/o/issuer_dn exact; email and email_domain ASCII
 * case-insensitive; serial hex case-insensitive ignoring leading zeros and
 * ':' separators; san_uri_prefix is a prefix of any SAN URI.
 */
const char *ident_policy_check(const struct cg_policy *p,
                               const struct cg_identity *id,
                               const struct cg_verdict *v);

#endif
