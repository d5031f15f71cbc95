/*
 * Unit tests of src/mqtt/map.c (peer_cert_as_username / _clientid):
 * every mode against an identity extracted from a real certificate made
 * here with OpenSSL, the expected bytes computed independently from the
 * DER (EMQX's crt, pem, md5); missing, ambiguous and unsafe values
 * against identities built field by field.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/util.h"
#include "core/xmalloc.h"
#include "ident/ident.h"
#include "mqtt/map.h"
#include "tls/tls_int.h"

/* A signed certificate: subject C=US, O=Acme, CN=cn; SAN san (or none). */
static X509 *
cert_make(const char *cn, const char *san)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(key);
    assert_non_null(x);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "C", MBSTRING_UTF8,
                               (const unsigned char *)"US", -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
                               (const unsigned char *)"Acme", -1, -1, 0);
    if (cn != NULL)
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                                   (const unsigned char *)cn, -1, -1, 0);
    assert_int_equal(X509_set_issuer_name(x, n), 1);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 42);
    ASN1_TIME_set(X509_getm_notBefore(x), 1700000000);
    ASN1_TIME_set(X509_getm_notAfter(x), 1900000000);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    if (san != NULL) {
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        X509_EXTENSION *e =
            X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
        assert_non_null(e);
        assert_int_equal(X509_add_ext(x, e, -1), 1);
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    EVP_PKEY_free(key);
    return x;
}

static struct cg_identity *
identity_of(X509 *x)
{
    struct cg_identity *id = NULL;
    char err[CG_ERR_LEN] = "";
    if (tls_identity_from_x509(x, &id, err) != 0)
        fail_msg("tls_identity_from_x509: %s", err);
    return id;
}

/* Asserts mode maps id to want[0..len). */
static void
check_map(enum mqtt_map_mode mode, const struct cg_identity *id,
          const void *want, size_t len)
{
    struct cg_buf b;
    const char *reason = "unset";
    cg_buf_init(&b);
    int rc = mqtt_map_value(mode, id, &b, &reason);
    if (rc != 0)
        fail_msg("%s: rc %d (%s)", mqtt_map_mode_name(mode), rc, reason);
    assert_null(reason);
    assert_int_equal(b.len, len);
    assert_memory_equal(b.data, want, len);
    cg_buf_cleanup(&b);
}

/* Asserts mode refuses id with rc and reason, leaving out untouched. */
static void
check_refused(enum mqtt_map_mode mode, const struct cg_identity *id, int rc,
              const char *reason)
{
    struct cg_buf b;
    const char *got = NULL;
    cg_buf_init(&b);
    int r = mqtt_map_value(mode, id, &b, &got);
    if (r != rc || got == NULL || strcmp(got, reason) != 0)
        fail_msg("%s: rc %d (%s), want %d (%s)", mqtt_map_mode_name(mode), r,
                 got != NULL ? got : "NULL", rc, reason);
    assert_int_equal(b.len, 0);
    cg_buf_cleanup(&b);
}

static void
hex_digest(const unsigned char *der, size_t len, const EVP_MD *md,
           struct cg_buf *out)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    assert_int_equal(EVP_Digest(der, len, d, &n, md, NULL), 1);
    cg_hex(out, d, n, 0);
}

/* Every mode, byte-exact, with the expected values computed from the
 * DER here (not from the identity). */
static void
test_modes(void **state)
{
    (void)state;
    X509 *x = cert_make("device-42",
                        "email:dev42@example.com,URI:spiffe://acme/dev/42");
    struct cg_identity *id = identity_of(x);
    unsigned char *der = NULL;
    int der_len = i2d_X509(x, &der);
    assert_true(der_len > 300);
    assert_int_equal(der[0], 0x30);
    struct cg_buf want;
    cg_buf_init(&want);

    check_map(MQTT_MAP_CN, id, "device-42", 9);
    const char *dn = "CN=device-42,O=Acme,C=US";
    check_map(MQTT_MAP_DN, id, dn, strlen(dn));
    check_map(MQTT_MAP_CRT, id, der, (size_t)der_len);
    char *b64 = xmalloc(4 * (((size_t)der_len + 2) / 3) + 1);
    int b64_len = EVP_EncodeBlock((unsigned char *)b64, der, der_len);
    assert_int_equal(b64[0], 'M'); /* base64 of 0x30 0x82: "MII" */
    check_map(MQTT_MAP_PEM, id, b64, (size_t)b64_len);
    hex_digest(der, (size_t)der_len, EVP_md5(), &want);
    assert_int_equal(want.len, 32);
    check_map(MQTT_MAP_MD5, id, want.data, want.len);
    cg_buf_reset(&want);
    hex_digest(der, (size_t)der_len, EVP_sha256(), &want);
    check_map(MQTT_MAP_SHA256, id, want.data, 64);
    check_map(MQTT_MAP_EMAIL, id, "dev42@example.com", 17);
    check_map(MQTT_MAP_SAN_URI, id, "spiffe://acme/dev/42", 20);

    free(b64);
    cg_buf_cleanup(&want);
    OPENSSL_free(der);
    ident_free(id);
    X509_free(x);
}

static void
test_missing(void **state)
{
    (void)state;
    X509 *x = cert_make(NULL, NULL);
    struct cg_identity *id = identity_of(x);
    check_refused(MQTT_MAP_CN, id, CG_ENOTFOUND, "missing_field");
    check_refused(MQTT_MAP_EMAIL, id, CG_ENOTFOUND, "missing_field");
    check_refused(MQTT_MAP_SAN_URI, id, CG_ENOTFOUND, "missing_field");
    check_map(MQTT_MAP_DN, id, "O=Acme,C=US", 11);
    for (int m = MQTT_MAP_CN; m < MQTT_MAP_COUNT; m++)
        check_refused((enum mqtt_map_mode)m, NULL, CG_ENOTFOUND,
                      "missing_field");
    ident_free(id);
    X509_free(x);

    x = cert_make("d", "URI:urn:a,URI:urn:b,email:a@x.org,email:b@x.org");
    id = identity_of(x);
    check_refused(MQTT_MAP_SAN_URI, id, CG_ENOTFOUND, "ambiguous_field");
    check_refused(MQTT_MAP_EMAIL, id, CG_ENOTFOUND, "ambiguous_field");
    ident_free(id);
    X509_free(x);
}

/* An identity with one subject CN (value of len bytes), finished. */
static struct cg_identity *
id_with_cn(const char *cn, size_t len)
{
    struct cg_identity *id = ident_new();
    ident_rdn_add(&id->subject, &id->n_subject, "CN", cn, len, 0);
    ident_finish(id);
    return id;
}

static void
test_unsafe_text(void **state)
{
    (void)state;
    const char *bad[] = {
        "+dev",       "#dev",   "/dev",     "$SYS",       "de+v", "de#v",
        "a\x01z",     "a\x7fz", "a\x1b[0m", "a\xc2\x85z", /* U+0085 (C1 control)
                                                           */
        "a\xc2\x9fz",                                     /* U+009F */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cg_identity *id = id_with_cn(bad[i], strlen(bad[i]));
        check_refused(MQTT_MAP_CN, id, CG_EPROTO, "unsafe_value");
        ident_free(id);
    }
    const char *good[] = {"dev/42", "a$b", "Zo\xc3\xab", "a\xc2\xa0z", "x@y.z"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct cg_identity *id = id_with_cn(good[i], strlen(good[i]));
        check_map(MQTT_MAP_CN, id, good[i], strlen(good[i]));
        ident_free(id);
    }
    /* two CNs: ambiguous; a '+' in the DN (multi-valued RDN) unsafe */
    struct cg_identity *id = ident_new();
    ident_rdn_add(&id->subject, &id->n_subject, "CN", "a", 1, 0);
    ident_rdn_add(&id->subject, &id->n_subject, "CN", "b", 1, 1);
    ident_rdn_add(&id->subject, &id->n_subject, "OU", "u", 1, 1);
    ident_finish(id);
    check_refused(MQTT_MAP_CN, id, CG_ENOTFOUND, "ambiguous_field");
    assert_non_null(strchr(id->dn_emqx, '+'));
    check_refused(MQTT_MAP_DN, id, CG_EPROTO, "unsafe_value");
    ident_free(id);
    /* a NUL cut off by the extractor still makes names unsafe */
    id = id_with_cn("ok", 2);
    id->name_has_nul = true;
    check_refused(MQTT_MAP_CN, id, CG_EPROTO, "unsafe_value");
    ident_free(id);
}

/* pem may hold '+' and '/' inside (base64), not first; crt is binary
 * and only length-checked; either over 65535 bytes is too long. */
static void
test_encoded_modes(void **state)
{
    (void)state;
    struct cg_identity *id = id_with_cn("c", 1);
    id->crt = xstrdup("MIIB+x/y+z==");
    check_map(MQTT_MAP_PEM, id, id->crt, strlen(id->crt));
    free(id->crt);
    id->crt = xstrdup("+IIB");
    check_refused(MQTT_MAP_PEM, id, CG_EPROTO, "unsafe_value");
    static const unsigned char der[] = {0x30, 0x82, 0x00, 0x00, '+', '#'};
    id->der = xmalloc(sizeof(der));
    memcpy(id->der, der, sizeof(der));
    id->der_len = sizeof(der);
    check_map(MQTT_MAP_CRT, id, der, sizeof(der));
    free(id->der);
    id->der_len = 70000;
    id->der = xcalloc(1, id->der_len);
    check_refused(MQTT_MAP_CRT, id, CG_EPROTO, "too_long");
    free(id->crt);
    id->crt = xmalloc(65537);
    memset(id->crt, 'A', 65536);
    id->crt[65536] = '\0';
    check_refused(MQTT_MAP_PEM, id, CG_EPROTO, "too_long");
    id->crt[65535] = '\0';
    struct cg_buf b;
    const char *reason;
    cg_buf_init(&b);
    assert_int_equal(mqtt_map_value(MQTT_MAP_PEM, id, &b, &reason), 0);
    assert_int_equal(b.len, 65535);
    cg_buf_cleanup(&b);
    ident_free(id);
}

static void
test_mode_names(void **state)
{
    (void)state;
    const char *names[] = {"disabled", "cn",     "dn",    "crt",    "pem",
                           "md5",      "sha256", "email", "san_uri"};
    for (int m = 0; m < MQTT_MAP_COUNT; m++) {
        assert_string_equal(mqtt_map_mode_name((enum mqtt_map_mode)m),
                            names[m]);
        assert_int_equal(mqtt_map_mode_parse(names[m]), m);
    }
    assert_int_equal(mqtt_map_mode_parse("CN"), -1);
    assert_int_equal(mqtt_map_mode_parse("serial"), -1);
    assert_null(mqtt_map_mode_name(MQTT_MAP_COUNT));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_unsafe_text),
        cmocka_unit_test(test_encoded_modes),
        cmocka_unit_test(test_mode_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
