/*
 * libFuzzer target for X509 -> struct cg_identity (src/tls/peer.c) and
 * what consumes an identity (src/ident): the input is DER for d2i_X509;
 * a certificate that parses goes through tls_identity_from_x509(), then
 * ident_check_names(), ident_field_value() for every field and
 * ident_policy_check() with one-list policies whose entries are taken
 * from the identity itself (so each must match).
 *
 * Build and run (from the repository root; not part of CMake):
 *
 *   mkdir -p build-fuzz/corpus-x509
 *   clang -g -O1 -std=c17 -fsanitize=fuzzer,address,undefined \
 *     -fno-sanitize-recover=undefined -D_GNU_SOURCE -Isrc \
 *     fuzz/fuzz_x509_ident.c src/tls/peer.c src/ident/[a-z]*.c \
 *     src/core/[a-z]*.c \
 *     $(pkg-config --cflags --libs libssl libcrypto) -lpthread \
 *     -o build-fuzz/fuzz_x509_ident
 *   ./build-fuzz/fuzz_x509_ident -max_total_time=60 -max_len=4096 \
 *     build-fuzz/corpus-x509 fuzz/corpus/x509
 *
 * Seeds (fuzz/corpus/x509, DER, P-256 keys) were made with
 * `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes
 * -days 36500 -outform DER` plus: san.der `-subj /O=Acme/OU=ops/CN=alice
 * -addext subjectAltName=DNS:...,email:...,URI:...,IP:...`; multi_rdn.der
 * `-multivalue-rdn -subj "/O=Acme/OU=ops+CN=bob+UID=42"`; utf8_cn.der
 * `-utf8 -subj "/CN=J\xc3\xbcrgen .../emailAddress=..."`; ca_signed.der
 * (`openssl x509 -req -CA ...`: two CNs, an issuer DN with escapes).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/util.h"
#include "ident/ident.h"
#include "tls/tls_int.h"

#include "fuzz_check.h"

/* Reads every byte of a counted string so ASan sees bad spans. */
static void
touch(const char *p, size_t n)
{
    volatile char sum = 0;
    for (size_t i = 0; i < n; i++)
        sum ^= p[i];
    (void)sum;
}

/* The first subject attribute of a type without an embedded NUL. */
static const char *
subject_attr(const struct cg_identity *id, const char *type)
{
    for (size_t i = 0; i < id->n_subject; i++) {
        const struct cg_rdn *r = &id->subject[i];
        if (strcmp(r->type, type) == 0 && strlen(r->value) == r->value_len)
            return r->value;
    }
    return NULL;
}

/* The domain of id->email, NULL when it has none. */
static const char *
email_domain(const struct cg_identity *id)
{
    const char *at = id->email != NULL ? strrchr(id->email, '@') : NULL;
    return at != NULL && at[1] != '\0' ? at + 1 : NULL;
}

static const char *
first_uri(const struct cg_identity *id)
{
    for (size_t i = 0; i < id->san_uri.n; i++) {
        if (id->san_uri.v[i][0] != '\0')
            return id->san_uri.v[i];
    }
    return NULL;
}

/*
 * Runs a policy with one list holding a fixed entry and, when the
 * identity has one, its own value (which must then match). A refused or
 * absent certificate must never pass.
 */
static void
check_policy(const struct cg_identity *id, size_t list_off, const char *own)
{
    static const struct cg_verdict ok = {CG_VERIFY_SUCCESS, NULL};
    static const struct cg_verdict bad = {CG_VERIFY_FAILED, "untrusted"};
    struct cg_policy pol = {0};
    struct cg_strlist *l = (struct cg_strlist *)((char *)&pol + list_off);

    cg_strlist_add(l, "0A:1B:2C");
    if (own != NULL)
        cg_strlist_add(l, own);
    const char *r = ident_policy_check(&pol, id, &ok);
    CHECK(r == NULL || strncmp(r, "policy_", 7) == 0);
    CHECK(own == NULL || r == NULL);
    r = ident_policy_check(&pol, id, &bad);
    CHECK(r != NULL && strcmp(r, "not_verified") == 0);
    r = ident_policy_check(&pol, NULL, NULL);
    CHECK(r != NULL && strcmp(r, "not_verified") == 0);
    ident_policy_cleanup(&pol);
}

static void
check_policies(const struct cg_identity *id)
{
    struct cg_policy open = {0};
    static const struct cg_verdict none = {CG_VERIFY_NONE, "no_cert"};
    CHECK(ident_policy_check(&open, id, &none) == NULL);

    check_policy(id, offsetof(struct cg_policy, cn), id->cn);
    check_policy(id, offsetof(struct cg_policy, ou), subject_attr(id, "OU"));
    check_policy(id, offsetof(struct cg_policy, o), subject_attr(id, "O"));
    check_policy(id, offsetof(struct cg_policy, email), id->email);
    check_policy(id, offsetof(struct cg_policy, email_domain),
                 email_domain(id));
    check_policy(id, offsetof(struct cg_policy, san_uri_prefix), first_uri(id));
    check_policy(id, offsetof(struct cg_policy, issuer_dn), id->issuer_dn);
    check_policy(id, offsetof(struct cg_policy, serial), id->serial);
}

/* Every field renders without touching memory it does not own. */
static void
check_fields(const struct cg_identity *id)
{
    static const struct cg_verdict ok = {CG_VERIFY_SUCCESS, NULL};
    struct cg_buf b;
    cg_buf_init(&b);
    for (int f = 0; f < CG_F_COUNT; f++) {
        cg_buf_reset(&b);
        if (ident_field_value(id, &ok, (enum cg_field)f, &b))
            touch(b.data, b.len);
        else
            CHECK(b.len == 0);
    }
    cg_buf_cleanup(&b);
}

/* What ident_finish() and the extractor promise. */
static void
check_identity(const struct cg_identity *id)
{
    const char *why = ident_check_names(id);
    CHECK(why == NULL || strcmp(why, "bad_name") == 0 ||
          strcmp(why, "multiple_cn") == 0);
    CHECK(!id->name_has_nul || why != NULL);
    CHECK(id->cn == NULL || id->n_cn == 1);
    CHECK(id->n_cn != 1 || id->cn != NULL || id->name_has_nul);
    CHECK(id->dn != NULL && !cg_has_ctl(id->dn, strlen(id->dn)));
    CHECK(id->dn_emqx != NULL && !cg_has_ctl(id->dn_emqx, strlen(id->dn_emqx)));
    CHECK(id->issuer_dn != NULL &&
          !cg_has_ctl(id->issuer_dn, strlen(id->issuer_dn)));
    CHECK(id->serial != NULL && id->serial[0] != '\0');
    CHECK(strlen(id->sha256) == 64);
    CHECK(id->der != NULL && id->der_len > 0 && id->crt != NULL);
    CHECK(id->pem != NULL);
    for (size_t i = 0; i < id->n_subject; i++)
        touch(id->subject[i].value, id->subject[i].value_len + 1);
    check_fields(id);
    check_policies(id);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const unsigned char *p = data;
    X509 *x = d2i_X509(NULL, &p, (long)size);
    if (x == NULL) {
        ERR_clear_error();
        return 0;
    }
    struct cg_identity *id = NULL;
    char err[CG_ERR_LEN];
    int rc = tls_identity_from_x509(x, &id, err);
    if (rc == 0) {
        CHECK(id != NULL);
        check_identity(id);
    } else {
        CHECK(rc == CG_ETLS && id == NULL && err[0] != '\0');
    }
    ident_free(id);
    X509_free(x);
    ERR_clear_error();
    return 0;
}
