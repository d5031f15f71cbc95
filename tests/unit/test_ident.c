/*
 * Unit tests of src/ident and tls/peer.c: certificates are made here with
 * OpenSSL (one EC P-256 key per run, fixed validity), encoded to DER and
 * parsed back, so the extractor sees exactly what a peer would send.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/util.h"
#include "ident/ident.h"
#include "tls/tls_int.h"

#define T_NOT_BEFORE 1700000000 /* 2023-11-14T22:13:20Z */
#define T_NOT_AFTER 1900000000  /* 2030-03-17T17:46:40Z */

/* What a test certificate holds; the builder consumes subject and gens. */
struct spec {
    X509_NAME *subject;
    const char *san;        /* v3 config syntax ("email:a@b,DNS:c"), or NULL */
    GENERAL_NAMES *gens;    /* hand-built SAN, or NULL */
    const char *serial_hex; /* NULL: 0A0B */
};

static int
group_setup(void **state)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    if (key == NULL)
        return -1;
    *state = key;
    return 0;
}

static int
group_teardown(void **state)
{
    EVP_PKEY_free(*state);
    return 0;
}

/* Appends a UTF-8 attribute; set 0 starts an RDN, -1 joins the last. */
static void
add_set(X509_NAME *n, const char *field, const char *value, int set)
{
    assert_int_equal(X509_NAME_add_entry_by_txt(n, field, MBSTRING_UTF8,
                                                (const unsigned char *)value,
                                                -1, -1, set),
                     1);
}

/* Builds a name from {field, value, ...} pairs (UTF-8, one RDN each). */
static X509_NAME *
name_of(const char *const *fv)
{
    X509_NAME *n = X509_NAME_new();
    assert_non_null(n);
    for (size_t i = 0; fv[i] != NULL; i += 2)
        add_set(n, fv[i], fv[i + 1], 0);
    return n;
}
#define NAME(...) name_of((const char *const[]){__VA_ARGS__, NULL})

/* Appends an attribute of an explicit string type and byte length. */
static void
add_raw(X509_NAME *n, int nid, int type, const void *bytes, int len)
{
    ASN1_STRING *s = ASN1_STRING_type_new(type);
    assert_non_null(s);
    assert_int_equal(ASN1_STRING_set(s, bytes, len), 1);
    X509_NAME_ENTRY *e = X509_NAME_ENTRY_create_by_NID(
        NULL, nid, type, ASN1_STRING_get0_data(s), ASN1_STRING_length(s));
    assert_non_null(e);
    assert_int_equal(X509_NAME_add_entry(n, e, -1, 0), 1);
    X509_NAME_ENTRY_free(e);
    ASN1_STRING_free(s);
}

static void
set_serial(X509 *x, const char *hex)
{
    BIGNUM *bn = NULL;
    assert_true(BN_hex2bn(&bn, hex != NULL ? hex : "0A0B") > 0);
    assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
    BN_free(bn);
}

static void
set_san(X509 *x, struct spec *sp)
{
    if (sp->san != NULL) {
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        X509_EXTENSION *ext =
            X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, sp->san);
        assert_non_null(ext);
        assert_int_equal(X509_add_ext(x, ext, -1), 1);
        X509_EXTENSION_free(ext);
    }
    if (sp->gens != NULL) {
        assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, sp->gens, 0,
                                           X509V3_ADD_DEFAULT),
                         1);
        GENERAL_NAMES_free(sp->gens);
    }
}

/* Encodes x to DER and parses it back (consumes x). */
static X509 *
reparse(X509 *x)
{
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    assert_true(len > 0);
    const unsigned char *p = der;
    X509 *y = d2i_X509(NULL, &p, len);
    assert_non_null(y);
    OPENSSL_free(der);
    X509_free(x);
    return y;
}

/* Builds, signs and re-parses a certificate issued by "Test CA". */
static X509 *
cert_make(EVP_PKEY *key, struct spec *sp)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    set_serial(x, sp->serial_hex);
    X509_NAME *iss = NAME("C", "US", "O", "certgate tests", "CN", "Test CA");
    assert_int_equal(X509_set_issuer_name(x, iss), 1);
    X509_NAME_free(iss);
    assert_int_equal(X509_set_subject_name(x, sp->subject), 1);
    X509_NAME_free(sp->subject);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), T_NOT_BEFORE));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), T_NOT_AFTER));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    set_san(x, sp);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    return reparse(x);
}

static struct cg_identity *
identity_of(X509 *x)
{
    struct cg_identity *id = NULL;
    char err[CG_ERR_LEN] = "";
    int rc = tls_identity_from_x509(x, &id, err);
    if (rc != 0)
        fail_msg("tls_identity_from_x509: %s", err);
    assert_non_null(id);
    return id;
}

/* Builds the certificate of sp and returns its identity. */
static struct cg_identity *
make_id(void **state, struct spec *sp)
{
    X509 *x = cert_make(*state, sp);
    struct cg_identity *id = identity_of(x);
    X509_free(x);
    return id;
}

/* Identity of a certificate with this subject and SAN only. */
static struct cg_identity *
make_simple(void **state, X509_NAME *subject, const char *san)
{
    struct spec sp = {.subject = subject, .san = san};
    return make_id(state, &sp);
}

/* Asserts the rendered field value (or absence when want is NULL). */
static void
check_field(const struct cg_identity *id, const struct cg_verdict *v,
            enum cg_field f, const char *want)
{
    struct cg_buf b;
    cg_buf_init(&b);
    bool got = ident_field_value(id, v, f, &b);
    assert_int_equal(got, want != NULL);
    /* absent: out untouched */
    assert_string_equal(cg_buf_cstr(&b), want != NULL ? want : "");
    cg_buf_cleanup(&b);
}

static void
test_hostile_names(void **state)
{
    struct cg_identity *id = make_simple(
        state,
        NAME("C", "US", "O", "#O,\"x\"+y\\z<>; ", "CN", " #a,b+c\"d\\e<f>g;h "),
        NULL);
    const char *want = "CN=\\ #a\\,b\\+c\\\"d\\\\e\\<f\\>g\\;h\\ ,"
                       "O=\\#O\\,\\\"x\\\"\\+y\\\\z\\<\\>\\;\\ ,C=US";
    assert_string_equal(id->dn, want);
    assert_string_equal(id->dn_emqx, want);
    assert_string_equal(id->cn, " #a,b+c\"d\\e<f>g;h ");
    assert_int_equal(id->n_cn, 1);
    assert_null(ident_check_names(id));
    assert_string_equal(id->issuer_dn, "CN=Test CA,O=certgate tests,C=US");
    ident_free(id);
}

static void
test_utf8_cn(void **state)
{
    struct cg_identity *id =
        make_simple(state, NAME("O", "Acme~", "CN", "Zoë 日本"), NULL);
    assert_string_equal(id->cn, "Zoë 日本");
    assert_string_equal(id->dn, "CN=Zoë 日本,O=Acme~");
    /* esockd writes '~' and every non-ASCII byte as \XX */
    assert_string_equal(id->dn_emqx,
                        "CN=Zo\\C3\\AB \\E6\\97\\A5\\E6\\9C\\AC,O=Acme\\7E");
    assert_null(ident_check_names(id));
    ident_free(id);
}

static void
test_bmp_and_t61(void **state)
{
    static const unsigned char bmp[] = {0x00, 'Z', 0x00, 'o',  0x00, 0xeb,
                                        0x00, ' ', 0x65, 0xe5, 0x67, 0x2c};
    X509_NAME *n = X509_NAME_new();
    add_raw(n, NID_organizationName, V_ASN1_T61STRING, "caf\xe9", 4);
    add_raw(n, NID_commonName, V_ASN1_BMPSTRING, bmp, sizeof(bmp));
    struct cg_identity *id = make_simple(state, n, NULL);
    assert_string_equal(id->cn, "Zoë 日本");
    assert_int_equal(id->subject[1].value_len, strlen("Zoë 日本"));
    assert_string_equal(id->dn, "CN=Zoë 日本,O=café");
    assert_null(ident_check_names(id));
    ident_free(id);
}

static void
test_nul_and_ctl_in_names(void **state)
{
    static const char evil[] = "evil.example\0.attacker.net";
    X509_NAME *n = X509_NAME_new();
    add_raw(n, NID_commonName, V_ASN1_UTF8STRING, evil, sizeof(evil) - 1);
    struct cg_identity *id = make_simple(state, n, NULL);
    assert_true(id->name_has_nul);
    assert_int_equal(id->subject[0].value_len, sizeof(evil) - 1);
    assert_memory_equal(id->subject[0].value, evil, sizeof(evil) - 1);
    assert_string_equal(id->dn, "CN=evil.example\\00.attacker.net");
    assert_null(id->cn); /* never the cut "evil.example" */
    assert_string_equal(ident_check_names(id), "bad_name");
    ident_free(id);

    id = make_simple(state, NAME("CN", "alice\r\nX-Admin: 1"), NULL);
    assert_false(id->name_has_nul);
    assert_string_equal(id->dn, "CN=alice\\0D\\0AX-Admin: 1");
    assert_string_equal(ident_check_names(id), "bad_name");
    ident_free(id);

    id = make_simple(state, NAME("O", "tab\there", "CN", "bob"), NULL);
    assert_string_equal(ident_check_names(id), "bad_name");
    ident_free(id);

    /* Invalid UTF-8 (only a hand-made identity can carry it). */
    id = ident_new();
    ident_rdn_add(&id->subject, &id->n_subject, "CN", "\xc3(", 2, 0);
    ident_finish(id);
    assert_string_equal(ident_check_names(id), "bad_name");
    ident_free(id);
}

static void
test_multi_valued_rdn(void **state)
{
    X509_NAME *n = NAME("O", "Example");
    add_set(n, "OU", "a", 0);
    add_set(n, "CN", "b", -1);
    struct cg_identity *id = make_simple(state, n, NULL);
    assert_int_equal(id->n_subject, 3);
    assert_int_equal(id->subject[1].set, id->subject[2].set);
    assert_int_not_equal(id->subject[0].set, id->subject[1].set);
    /* DER sorts the members of a SET OF: CN (2.5.4.3) before OU. */
    assert_string_equal(id->dn, "CN=b+OU=a,O=Example");
    assert_string_equal(id->dn_emqx, "CN=b+OU=a,O=Example");
    assert_string_equal(id->cn, "b");
    assert_null(ident_check_names(id));
    ident_free(id);
}

static void
test_two_cns(void **state)
{
    struct cg_identity *id =
        make_simple(state, NAME("CN", "alice", "CN", "admin"), NULL);
    assert_int_equal(id->n_cn, 2);
    assert_null(id->cn);
    assert_string_equal(id->dn, "CN=admin,CN=alice");
    assert_string_equal(ident_check_names(id), "multiple_cn");
    check_field(id, NULL, CG_F_CN, NULL);
    ident_free(id);
}

static void
test_email_choice(void **state)
{
    struct cg_identity *id = make_simple(
        state, NAME("CN", "a", "emailAddress", "subj@example.org"), NULL);
    assert_string_equal(id->email, "subj@example.org");
    assert_null(id->email_reason);
    assert_string_equal(id->dn, "emailAddress=subj@example.org,CN=a");
    assert_string_equal(id->dn_emqx, "EMAILADDRESS=subj@example.org,CN=a");
    ident_free(id);

    id = make_simple(state, NAME("emailAddress", "subj@example.org"),
                     "email:san@example.org");
    assert_string_equal(id->email, "san@example.org");
    assert_null(id->email_reason);
    ident_free(id);

    id = make_simple(state, NAME("emailAddress", "subj@example.org"),
                     "email:a@example.org,email:b@example.org");
    assert_null(id->email);
    assert_string_equal(id->email_reason, "ambiguous");
    check_field(id, NULL, CG_F_EMAIL, NULL);
    check_field(id, NULL, CG_F_SAN_EMAIL, "a@example.org, b@example.org");
    ident_free(id);

    id = make_simple(state, NAME("CN", "a"), "DNS:a.example");
    assert_null(id->email);
    assert_string_equal(id->email_reason, "none");
    ident_free(id);

    id = make_simple(state,
                     NAME("emailAddress", "one@example.org", "emailAddress",
                          "two@example.org"),
                     NULL);
    assert_null(id->email);
    assert_string_equal(id->email_reason, "ambiguous");
    ident_free(id);
}

static void
test_san_lists(void **state)
{
    struct cg_identity *id = make_simple(
        state, NAME("CN", "device-7"),
        "DNS:a.example,DNS:b.example,URI:spiffe://example.org/dev/7,"
        "URI:https://example.org/d7,IP:192.0.2.1,IP:2001:db8::1,"
        "email:dev7@example.org");
    assert_int_equal(id->san_dns.n, 2);
    assert_string_equal(id->san_dns.v[1], "b.example");
    assert_int_equal(id->san_uri.n, 2);
    assert_int_equal(id->san_ip.n, 2);
    assert_string_equal(id->san_ip.v[0], "192.0.2.1");
    assert_string_equal(id->san_ip.v[1], "2001:db8::1");
    check_field(id, NULL, CG_F_SAN_DNS, "a.example, b.example");
    check_field(id, NULL, CG_F_SAN_URI,
                "spiffe://example.org/dev/7, https://example.org/d7");
    check_field(id, NULL, CG_F_SAN_IP, "192.0.2.1, 2001:db8::1");
    check_field(id, NULL, CG_F_SAN_EMAIL, "dev7@example.org");
    assert_null(ident_check_names(id));
    ident_free(id);
}

static void
test_san_nul_and_ctl(void **state)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();
    assert_int_equal(ASN1_STRING_set(s, "good.example\0.evil", 18), 1);
    GENERAL_NAME_set0_value(g, GEN_DNS, s);
    sk_GENERAL_NAME_push(gens, g);
    struct spec sp = {.subject = NAME("CN", "x"), .gens = gens};
    struct cg_identity *id = make_id(state, &sp);
    assert_true(id->name_has_nul);
    assert_int_equal(id->san_dns.n, 0); /* not exposed cut short */
    assert_string_equal(ident_check_names(id), "bad_name");
    ident_free(id);

    id = make_simple(state, NAME("CN", "x"), "URI:https://a.example/\x7f");
    assert_false(id->name_has_nul);
    assert_string_equal(ident_check_names(id), "bad_name");
    ident_free(id);
}

static void
test_serial(void **state)
{
    struct spec sp = {.subject = NAME("CN", "s"), .serial_hex = "deadbeef01"};
    struct cg_identity *id = make_id(state, &sp);
    assert_string_equal(id->serial, "DEADBEEF01");
    ident_free(id);

    id = make_simple(state, NAME("CN", "s"), NULL);
    assert_string_equal(id->serial, "0A0B");
    check_field(id, NULL, CG_F_SERIAL, "0A0B");
    ident_free(id);
}

/* Lowercase hex of a digest, computed independently of cg_hex. */
static void
digest_of(X509 *x, const EVP_MD *md, char *out)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    assert_int_equal(X509_digest(x, md, d, &len), 1);
    for (unsigned int i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void
test_digests_and_encodings(void **state)
{
    struct spec sp = {.subject = NAME("CN", "enc")};
    X509 *x = cert_make(*state, &sp);
    struct cg_identity *id = identity_of(x);
    char want[2 * EVP_MAX_MD_SIZE + 1];
    digest_of(x, EVP_sha256(), want);
    assert_string_equal(id->sha256, want);
    digest_of(x, EVP_md5(), want);
    assert_string_equal(id->md5, want);

    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    assert_int_equal(id->der_len, len);
    assert_memory_equal(id->der, der, len);
    assert_null(strchr(id->crt, '\n'));
    unsigned char *dec = malloc(strlen(id->crt));
    int dlen =
        EVP_DecodeBlock(dec, (unsigned char *)id->crt, (int)strlen(id->crt));
    assert_true(dlen >= len && dlen - len <= 2);
    assert_memory_equal(dec, der, len);
    free(dec);
    OPENSSL_free(der);

    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(bio, x), 1);
    char *pem = NULL;
    long plen = BIO_get_mem_data(bio, &pem);
    assert_int_equal(strlen(id->pem), plen);
    assert_memory_equal(id->pem, pem, plen);
    BIO_free(bio);
    ident_free(id);
    X509_free(x);
}

/* The certificate used by the field and policy tests. */
static struct cg_identity *
make_full(void **state)
{
    return make_simple(state,
                       NAME("C", "US", "O", "Example", "OU", "eng", "OU", "ops",
                            "CN", "alice"),
                       "email:Alice@Example.COM,DNS:alice.example.com,"
                       "URI:spiffe://example.com/user/alice,IP:10.0.0.7");
}

static void
test_fields_all(void **state)
{
    struct cg_identity *id = make_full(state);
    check_field(id, NULL, CG_F_CN, "alice");
    check_field(id, NULL, CG_F_DN, "CN=alice,OU=ops,OU=eng,O=Example,C=US");
    check_field(id, NULL, CG_F_DN_EMQX,
                "CN=alice,OU=ops,OU=eng,O=Example,C=US");
    check_field(id, NULL, CG_F_EMAIL, "Alice@Example.COM");
    check_field(id, NULL, CG_F_SAN_EMAIL, "Alice@Example.COM");
    check_field(id, NULL, CG_F_SAN_DNS, "alice.example.com");
    check_field(id, NULL, CG_F_SAN_URI, "spiffe://example.com/user/alice");
    check_field(id, NULL, CG_F_SAN_IP, "10.0.0.7");
    check_field(id, NULL, CG_F_SERIAL, "0A0B");
    check_field(id, NULL, CG_F_ISSUER_DN, "CN=Test CA,O=certgate tests,C=US");
    check_field(id, NULL, CG_F_NOT_BEFORE, "2023-11-14T22:13:20Z");
    check_field(id, NULL, CG_F_NOT_AFTER, "2030-03-17T17:46:40Z");
    assert_int_equal(id->not_before, T_NOT_BEFORE);
    assert_int_equal(id->not_after, T_NOT_AFTER);
    check_field(id, NULL, CG_F_SHA256, id->sha256);
    assert_int_equal(strlen(id->sha256), 64);
    check_field(id, NULL, CG_F_MD5, id->md5);
    assert_int_equal(strlen(id->md5), 32);
    check_field(id, NULL, CG_F_CRT, id->crt);
    check_field(id, NULL, CG_F_PEM, id->pem);

    struct cg_buf want;
    cg_buf_init(&want);
    cg_buf_printf(&want, ":%s:", id->crt);
    check_field(id, NULL, CG_F_CLIENT_CERT, cg_buf_cstr(&want));
    cg_buf_reset(&want);
    cg_urlencode(&want, id->pem, strlen(id->pem));
    check_field(id, NULL, CG_F_PEM_URLENCODED, cg_buf_cstr(&want));
    assert_true(strncmp(cg_buf_cstr(&want), "-----BEGIN%20CERTIFICATE-----%0A",
                        32) == 0);
    cg_buf_cleanup(&want);
    ident_free(id);
}

static void
test_fields_absent(void **state)
{
    for (int f = 0; f < CG_F_COUNT; f++) {
        if (f != CG_F_VERIFY)
            check_field(NULL, NULL, f, NULL);
    }
    struct cg_identity *id = make_simple(state, NAME("O", "no-cn"), NULL);
    static const enum cg_field none[] = {CG_F_CN,        CG_F_EMAIL,
                                         CG_F_SAN_EMAIL, CG_F_SAN_DNS,
                                         CG_F_SAN_URI,   CG_F_SAN_IP};
    for (size_t i = 0; i < CG_ARRAY_LEN(none); i++)
        check_field(id, NULL, none[i], NULL);
    check_field(id, NULL, CG_F_DN, "O=no-cn");
    ident_free(id);

    /* An identity not built from a certificate has no encodings. */
    static const enum cg_field unset[] = {
        CG_F_DN, CG_F_SHA256, CG_F_CRT, CG_F_CLIENT_CERT, CG_F_PEM_URLENCODED};
    id = ident_new();
    ident_finish(id);
    for (size_t i = 0; i < CG_ARRAY_LEN(unset); i++)
        check_field(id, NULL, unset[i], NULL);
    ident_free(id);
    ident_free(NULL);
}

static void
test_verify_render(void **state)
{
    struct cg_identity *id = make_full(state);
    struct cg_verdict none = {CG_VERIFY_NONE, "no_cert"};
    struct cg_verdict ok = {CG_VERIFY_SUCCESS, NULL};
    struct cg_verdict bad = {CG_VERIFY_FAILED, "untrusted"};
    struct cg_verdict bad_noreason = {CG_VERIFY_FAILED, NULL};
    check_field(NULL, NULL, CG_F_VERIFY, "NONE");
    check_field(NULL, &none, CG_F_VERIFY, "NONE");
    check_field(id, &ok, CG_F_VERIFY, "SUCCESS");
    check_field(id, &bad, CG_F_VERIFY, "FAILED:untrusted");
    check_field(NULL, &bad, CG_F_VERIFY, "FAILED:untrusted");
    check_field(id, &bad_noreason, CG_F_VERIFY, "FAILED:unknown");
    ident_free(id);
}

static void
test_field_names(void **state)
{
    (void)state;
    for (int f = 0; f < CG_F_COUNT; f++) {
        const char *name = ident_field_name(f);
        assert_non_null(name);
        assert_int_equal(ident_field_parse(name), f);
    }
    assert_string_equal(ident_field_name(CG_F_CLIENT_CERT), "client_cert");
    assert_int_equal(ident_field_parse("CN"), -1);
    assert_int_equal(ident_field_parse(""), -1);
    assert_null(ident_field_name(CG_F_COUNT));
}

/* Asserts ident_dn_escape(in) == want. */
static void
check_escape(const char *in, size_t len, const char *want)
{
    struct cg_buf b;
    cg_buf_init(&b);
    ident_dn_escape(&b, in, len);
    assert_string_equal(cg_buf_cstr(&b), want);
    cg_buf_cleanup(&b);
}

static void
test_dn_escape(void **state)
{
    (void)state;
    check_escape("", 0, "");
    check_escape("plain", 5, "plain");
    check_escape(",", 1, "\\,");
    check_escape("a+b", 3, "a\\+b");
    check_escape("\"q\"", 3, "\\\"q\\\"");
    check_escape("a\\b", 3, "a\\\\b");
    check_escape("<a>", 3, "\\<a\\>");
    check_escape("a;b", 3, "a\\;b");
    check_escape("#a#", 3, "\\#a#");
    check_escape(" a b ", 5, "\\ a b\\ ");
    check_escape(" ", 1, "\\ ");
    check_escape("  ", 2, "\\ \\ ");
    check_escape("a=b", 3, "a=b");
    check_escape("a\0b", 3, "a\\00b");
    check_escape("\x01\x1f\x7f", 3, "\\01\\1F\\7F");
    check_escape("a\r\n", 3, "a\\0D\\0A");
    check_escape("Zoë 日本~", strlen("Zoë 日本~"), "Zoë 日本~");
}

/* Formats a hand-made name in both styles. */
static void
check_format(const struct cg_rdn *r, size_t n, const char *rfc,
             const char *emqx)
{
    struct cg_buf b;
    cg_buf_init(&b);
    ident_dn_format(&b, r, n, CG_DN_RFC4514);
    assert_string_equal(cg_buf_cstr(&b), rfc);
    cg_buf_reset(&b);
    ident_dn_format(&b, r, n, CG_DN_EMQX);
    assert_string_equal(cg_buf_cstr(&b), emqx);
    cg_buf_cleanup(&b);
}

static void
test_dn_format_types(void **state)
{
    (void)state;
    struct cg_rdn *r = NULL;
    size_t n = 0;
    check_format(r, n, "", "");
    ident_rdn_add(&r, &n, "DC", "org", 3, 0);
    ident_rdn_add(&r, &n, "street", "1 Main St", 9, 1);
    ident_rdn_add(&r, &n, "1.2.3.4.5", "x,y", 3, 2);
    ident_rdn_add(&r, &n, "GN", "Zoë", strlen("Zoë"), 3);
    ident_rdn_add(&r, &n, "SN", "Doe", 3, 3);
    ident_rdn_add(&r, &n, "serialNumber", "42", 2, 4);
    check_format(r, n,
                 "serialNumber=42,GN=Zoë+SN=Doe,1.2.3.4.5=x\\,y,"
                 "street=1 Main St,DC=org",
                 "SERIALNUMBER=42,GIVENNAME=Zo\\C3\\AB+SN=Doe,"
                 "1.2.3.4.5=x\\,y,2.5.4.9=1 Main St,DC=org");
    for (size_t i = 0; i < n; i++) {
        free(r[i].type);
        free(r[i].value);
    }
    free(r);
}

static void
test_strlist(void **state)
{
    (void)state;
    struct cg_strlist l = {0};
    assert_false(cg_strlist_contains(&l, "a"));
    cg_strlist_add(&l, "alpha");
    cg_strlist_addn(&l, "beta-gamma", 4);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[1], "beta");
    assert_true(cg_strlist_contains(&l, "alpha"));
    assert_true(cg_strlist_contains(&l, "beta"));
    assert_false(cg_strlist_contains(&l, "Alpha"));
    cg_strlist_clear(&l);
    assert_int_equal(l.n, 0);
    assert_null(l.v);
    cg_strlist_clear(&l);
}

/* The bounded copy, and numeric addresses as inet_ntop writes them. */
static void
test_strlcpy_and_addr_text(void **state)
{
    (void)state;
    char small[4];
    cg_strlcpy(small, "GET", sizeof(small));
    assert_string_equal(small, "GET");
    cg_strlcpy(small, "OPTIONS", sizeof(small));
    assert_string_equal(small, "OPT");
    cg_strlcpy(small, "", sizeof(small));
    assert_string_equal(small, "");
    static const char *const v4[] = {"0.0.0.0",         "127.0.0.1",
                                     "255.255.255.255", "10.0.100.9",
                                     "192.168.1.20",    "1.22.103.99"};
    for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++) {
        struct sockaddr_storage ss = {0};
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, v4[i], &in->sin_addr), 1);
        char out[INET6_ADDRSTRLEN];
        memset(out, 'x', sizeof(out));
        cg_addr_text(&ss, out, sizeof(out));
        assert_string_equal(out, v4[i]);
    }
    struct sockaddr_storage ss = {0};
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    in6->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, "::1", &in6->sin6_addr), 1);
    char out[INET6_ADDRSTRLEN];
    cg_addr_text(&ss, out, sizeof(out));
    assert_string_equal(out, "::1");
    /* every octet value, against inet_ntop */
    for (unsigned v = 0; v < 256; v++) {
        struct sockaddr_storage s4 = {0};
        struct sockaddr_in *in = (struct sockaddr_in *)&s4;
        in->sin_family = AF_INET;
        unsigned char b[4] = {(unsigned char)v, (unsigned char)(255 - v),
                              (unsigned char)(v / 2), (unsigned char)v};
        memcpy(&in->sin_addr, b, 4);
        char want[INET_ADDRSTRLEN], got[INET_ADDRSTRLEN];
        assert_non_null(inet_ntop(AF_INET, &in->sin_addr, want, sizeof(want)));
        cg_addr_text(&s4, got, sizeof(got));
        assert_string_equal(got, want);
    }
}

static void
test_drain_errors(void **state)
{
    (void)state;
    char buf[256];
    ERR_clear_error();
    tls_drain_errors(buf, sizeof(buf));
    assert_string_equal(buf, "");
    ERR_raise(ERR_LIB_PEM, PEM_R_NO_START_LINE);
    ERR_raise(ERR_LIB_X509, X509_R_KEY_VALUES_MISMATCH);
    tls_drain_errors(buf, sizeof(buf));
    assert_string_equal(buf, "PEM routines:no start line; "
                             "x509 certificate routines:key values mismatch");
    assert_int_equal(ERR_peek_error(), 0);
    ERR_raise(ERR_LIB_PEM, PEM_R_NO_START_LINE);
    ERR_raise(ERR_LIB_PEM, PEM_R_NO_START_LINE);
    tls_drain_errors(buf, 8);
    assert_string_equal(buf, "PEM rou");
    assert_int_equal(ERR_peek_error(), 0);
}

/* Runs the policy on a verified identity. */
static const char *
check_ok(const struct cg_policy *p, const struct cg_identity *id)
{
    struct cg_verdict ok = {CG_VERIFY_SUCCESS, NULL};
    return ident_policy_check(p, id, &ok);
}

static void
test_policy_open_and_verified(void **state)
{
    struct cg_identity *id = make_full(state);
    struct cg_policy p = {0};
    struct cg_verdict none = {CG_VERIFY_NONE, "no_cert"};
    struct cg_verdict bad = {CG_VERIFY_FAILED, "untrusted"};
    assert_true(ident_policy_is_open(&p));
    assert_null(ident_policy_check(&p, NULL, NULL));
    assert_null(ident_policy_check(&p, NULL, &none));
    assert_null(ident_policy_check(&p, id, &bad));

    p.require_verified = true;
    assert_false(ident_policy_is_open(&p));
    assert_string_equal(ident_policy_check(&p, NULL, &none), "not_verified");
    assert_string_equal(ident_policy_check(&p, id, &bad), "not_verified");
    assert_string_equal(ident_policy_check(&p, NULL, NULL), "not_verified");
    assert_null(check_ok(&p, id));

    p.require_verified = false;
    cg_strlist_add(&p.cn, "alice");
    assert_false(ident_policy_is_open(&p));
    assert_string_equal(ident_policy_check(&p, id, &none), "not_verified");
    assert_string_equal(ident_policy_check(&p, id, &bad), "not_verified");
    assert_null(check_ok(&p, id));
    ident_policy_cleanup(&p);
    assert_true(ident_policy_is_open(&p));
    ident_free(id);
}

/* One policy list: an entry it refuses, then one it accepts. */
struct policy_case {
    size_t list; /* offsetof the list in struct cg_policy */
    const char *refused, *accepted, *why;
};

static void
test_policy_lists(void **state)
{
    static const struct policy_case cases[] = {
#define PC(l, r, a, w) {offsetof(struct cg_policy, l), r, a, w}
        PC(cn, "bob", "alice", "policy_cn"),
        PC(ou, "Eng", "ops", "policy_ou"), /* exact; any OU of the subject */
        PC(o, "Other", "Example", "policy_o"),
        PC(email, "bob@example.com", "alice@example.COM", "policy_email"),
        PC(email_domain, "com", "EXAMPLE.com", "policy_email_domain"),
        PC(san_uri_prefix, "spiffe://example.com/svc/",
           "spiffe://example.com/user/", "policy_san_uri"),
        PC(issuer_dn, "CN=Test CA", "CN=Test CA,O=certgate tests,C=US",
           "policy_issuer"),
        PC(serial, "0A0C", "0a0b", "policy_serial"),
#undef PC
    };
    struct cg_identity *id = make_full(state);
    struct cg_policy p = {0};
    /* Lists accumulate: every non-empty list must match. */
    for (size_t i = 0; i < CG_ARRAY_LEN(cases); i++) {
        struct cg_strlist *l =
            (struct cg_strlist *)((char *)&p + cases[i].list);
        cg_strlist_add(l, cases[i].refused);
        assert_string_equal(check_ok(&p, id), cases[i].why);
        cg_strlist_add(l, cases[i].accepted);
        assert_null(check_ok(&p, id));
    }
    ident_policy_cleanup(&p);
    const char *same[] = {"0A0B", "a0b", "00:0a:0b", "0A:0B", "000A0B"};
    for (size_t i = 0; i < CG_ARRAY_LEN(same); i++) {
        cg_strlist_add(&p.serial, same[i]);
        assert_null(check_ok(&p, id));
        ident_policy_cleanup(&p);
    }
    ident_free(id);
}

static void
test_policy_ambiguous_names(void **state)
{
    struct cg_policy p = {0};
    /* Two CNs: no single cn, so a cn list cannot match. */
    struct cg_identity *id =
        make_simple(state, NAME("CN", "alice", "CN", "bob"), NULL);
    cg_strlist_add(&p.cn, "alice");
    assert_string_equal(check_ok(&p, id), "policy_cn");
    ident_policy_cleanup(&p);
    ident_free(id);

    /* Two SAN emails: no id->email (so no domain), but email matches any
     * SAN email. */
    id = make_simple(state, NAME("CN", "x"),
                     "email:a@one.example,email:b@two.example");
    cg_strlist_add(&p.email, "B@TWO.example");
    assert_null(check_ok(&p, id));
    ident_policy_cleanup(&p);
    cg_strlist_add(&p.email_domain, "two.example");
    assert_string_equal(check_ok(&p, id), "policy_email_domain");
    ident_policy_cleanup(&p);
    ident_free(id);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_names),
        cmocka_unit_test(test_utf8_cn),
        cmocka_unit_test(test_bmp_and_t61),
        cmocka_unit_test(test_nul_and_ctl_in_names),
        cmocka_unit_test(test_multi_valued_rdn),
        cmocka_unit_test(test_two_cns),
        cmocka_unit_test(test_email_choice),
        cmocka_unit_test(test_san_lists),
        cmocka_unit_test(test_san_nul_and_ctl),
        cmocka_unit_test(test_serial),
        cmocka_unit_test(test_digests_and_encodings),
        cmocka_unit_test(test_fields_all),
        cmocka_unit_test(test_fields_absent),
        cmocka_unit_test(test_verify_render),
        cmocka_unit_test(test_field_names),
        cmocka_unit_test(test_dn_escape),
        cmocka_unit_test(test_dn_format_types),
        cmocka_unit_test(test_strlist),
        cmocka_unit_test(test_strlcpy_and_addr_text),
        cmocka_unit_test(test_drain_errors),
        cmocka_unit_test(test_policy_open_and_verified),
        cmocka_unit_test(test_policy_lists),
        cmocka_unit_test(test_policy_ambiguous_names),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
