/*
 * Unit tests of src/tcp/proxyv2.c: the encoder's output compared byte for
 * byte with headers written out here from HAProxy's doc/proxy-protocol.txt
 * (an IPv4 case with every TLV, an IPv6 one), the decoder on those bytes
 * and on broken ones, and the 65535-byte limit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "core/buf.h"
#include "core/err.h"
#include "tcp/proxyv2.h"

#define S(lit) ((struct cg_str){(lit), sizeof(lit) - 1})

/*
 * 192.0.2.1:51000 -> 198.51.100.2:15432; ALPN "h2"; authority
 * "db.example"; SSL: client 0x07, verify 0, version "TLSv1.3", CN
 * "alice", cipher "TLS_AES_128_GCM_SHA256", sig "ECDSA-SHA256", key
 * "EC256"; certgate 0xE0: "cn=alice", "sha256=ab12".
 */
static const uint8_t want_v4[] = {
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
    0x21, 0x11, 0x00, 0x84, 0xc0, 0x00, 0x02, 0x01, 0xc6, 0x33, 0x64, 0x02,
    0xc7, 0x38, 0x3c, 0x48, 0x01, 0x00, 0x02, 0x68, 0x32, 0x02, 0x00, 0x0a,
    0x64, 0x62, 0x2e, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x20, 0x00,
    0x47, 0x07, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00, 0x07, 0x54, 0x4c, 0x53,
    0x76, 0x31, 0x2e, 0x33, 0x22, 0x00, 0x05, 0x61, 0x6c, 0x69, 0x63, 0x65,
    0x23, 0x00, 0x16, 0x54, 0x4c, 0x53, 0x5f, 0x41, 0x45, 0x53, 0x5f, 0x31,
    0x32, 0x38, 0x5f, 0x47, 0x43, 0x4d, 0x5f, 0x53, 0x48, 0x41, 0x32, 0x35,
    0x36, 0x24, 0x00, 0x0c, 0x45, 0x43, 0x44, 0x53, 0x41, 0x2d, 0x53, 0x48,
    0x41, 0x32, 0x35, 0x36, 0x25, 0x00, 0x05, 0x45, 0x43, 0x32, 0x35, 0x36,
    0xe0, 0x00, 0x19, 0x01, 0x00, 0x08, 0x63, 0x6e, 0x3d, 0x61, 0x6c, 0x69,
    0x63, 0x65, 0x01, 0x00, 0x0b, 0x73, 0x68, 0x61, 0x32, 0x35, 0x36, 0x3d,
    0x61, 0x62, 0x31, 0x32,
};

/* [2001:db8::1]:443 -> [2001:db8::2]:8443; authority "x"; SSL: client
 * 0x01 (TLS, no certificate), verify 1, version "TLSv1.2"; certgate:
 * "verify=NONE", "dn=" (empty value). */
static const uint8_t want_v6[] = {
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54,
    0x0a, 0x21, 0x21, 0x00, 0x51, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20,
    0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x02, 0x01, 0xbb, 0x20, 0xfb, 0x02, 0x00, 0x01,
    0x78, 0x20, 0x00, 0x0f, 0x01, 0x00, 0x00, 0x00, 0x01, 0x21, 0x00,
    0x07, 0x54, 0x4c, 0x53, 0x76, 0x31, 0x2e, 0x32, 0xe0, 0x00, 0x14,
    0x01, 0x00, 0x0b, 0x76, 0x65, 0x72, 0x69, 0x66, 0x79, 0x3d, 0x4e,
    0x4f, 0x4e, 0x45, 0x01, 0x00, 0x03, 0x64, 0x6e, 0x3d,
};

static struct sockaddr_in
sin4(const char *ip, uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    return a;
}

static struct sockaddr_in6
sin6(const char *ip, uint16_t port)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    assert_int_equal(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
    return a;
}

static void
hdr_v4(struct tcp_pp2 *h)
{
    struct sockaddr_in src = sin4("192.0.2.1", 51000),
                       dst = sin4("198.51.100.2", 15432);
    memset(h, 0, sizeof(*h));
    assert_int_equal(tcp_proxyv2_set_addrs(h, (struct sockaddr *)&src,
                                           (struct sockaddr *)&dst),
                     0);
    h->alpn = S("h2");
    h->authority = S("db.example");
    h->ssl = (struct tcp_pp2_ssl){
        .present = true,
        .client = TCP_PP2_CLIENT_SSL | TCP_PP2_CLIENT_CERT_CONN |
                  TCP_PP2_CLIENT_CERT_SESS,
        .verify = 0,
        .version = S("TLSv1.3"),
        .cn = S("alice"),
        .cipher = S("TLS_AES_128_GCM_SHA256"),
        .sig_alg = S("ECDSA-SHA256"),
        .key_alg = S("EC256"),
    };
    h->fields[0] = (struct tcp_pp2_field){S("cn"), S("alice")};
    h->fields[1] = (struct tcp_pp2_field){S("sha256"), S("ab12")};
    h->n_fields = 2;
}

static void
hdr_v6(struct tcp_pp2 *h)
{
    struct sockaddr_in6 src = sin6("2001:db8::1", 443),
                        dst = sin6("2001:db8::2", 8443);
    memset(h, 0, sizeof(*h));
    assert_int_equal(tcp_proxyv2_set_addrs(h, (struct sockaddr *)&src,
                                           (struct sockaddr *)&dst),
                     0);
    h->authority = S("x");
    h->ssl = (struct tcp_pp2_ssl){.present = true,
                                  .client = TCP_PP2_CLIENT_SSL,
                                  .verify = 1,
                                  .version = S("TLSv1.2")};
    h->fields[0] = (struct tcp_pp2_field){S("verify"), S("NONE")};
    h->fields[1] = (struct tcp_pp2_field){S("dn"), {"", 0}};
    h->n_fields = 2;
}

static void
check_encode(const struct tcp_pp2 *h, const uint8_t *want, size_t n)
{
    struct cg_buf b;
    char err[CG_ERR_LEN];
    cg_buf_init(&b);
    cg_buf_puts(&b, "pre"); /* appended after what is there */
    assert_int_equal(tcp_proxyv2_encode(h, &b, err), 0);
    assert_int_equal(b.len, 3 + n);
    assert_memory_equal(b.data + 3, want, n);
    cg_buf_cleanup(&b);
}

static void
test_encode(void **state)
{
    (void)state;
    struct tcp_pp2 h;
    hdr_v4(&h);
    assert_int_equal(h.family, AF_INET);
    check_encode(&h, want_v4, sizeof(want_v4));
    hdr_v6(&h);
    assert_int_equal(h.family, AF_INET6);
    check_encode(&h, want_v6, sizeof(want_v6));
}

static void
check_str(struct cg_str s, const char *want)
{
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.p, want, s.len);
}

/* Decodes the expected bytes back to the values they were made from. */
static void
test_decode(void **state)
{
    (void)state;
    struct tcp_pp2 h;
    size_t used;
    char err[CG_ERR_LEN];
    assert_int_equal(
        tcp_proxyv2_decode(want_v4, sizeof(want_v4), &h, &used, err), 0);
    assert_int_equal(used, sizeof(want_v4));
    assert_false(h.local);
    assert_int_equal(h.family, AF_INET);
    assert_memory_equal(h.src_addr, "\xc0\x00\x02\x01", 4);
    assert_memory_equal(h.dst_addr, "\xc6\x33\x64\x02", 4);
    assert_int_equal(h.src_port, 51000);
    assert_int_equal(h.dst_port, 15432);
    check_str(h.alpn, "h2");
    check_str(h.authority, "db.example");
    assert_true(h.ssl.present);
    assert_int_equal(h.ssl.client, 7);
    assert_int_equal(h.ssl.verify, 0);
    check_str(h.ssl.version, "TLSv1.3");
    check_str(h.ssl.cn, "alice");
    check_str(h.ssl.cipher, "TLS_AES_128_GCM_SHA256");
    check_str(h.ssl.sig_alg, "ECDSA-SHA256");
    check_str(h.ssl.key_alg, "EC256");
    assert_int_equal(h.n_fields, 2);
    check_str(h.fields[0].name, "cn");
    check_str(h.fields[0].value, "alice");
    check_str(h.fields[1].name, "sha256");
    check_str(h.fields[1].value, "ab12");
    /* re-encoding the decoded header gives the same bytes */
    check_encode(&h, want_v4, sizeof(want_v4));

    assert_int_equal(
        tcp_proxyv2_decode(want_v6, sizeof(want_v6), &h, &used, err), 0);
    assert_int_equal(h.family, AF_INET6);
    assert_int_equal(h.src_port, 443);
    assert_int_equal(h.ssl.verify, 1);
    assert_int_equal(h.alpn.len, 0);
    check_str(h.fields[1].name, "dn");
    check_str(h.fields[1].value, "");
    check_encode(&h, want_v6, sizeof(want_v6));
}

/* Mixed families become IPv6 with an IPv4-mapped address; LOCAL. */
static void
test_families(void **state)
{
    (void)state;
    struct tcp_pp2 h = {0};
    struct sockaddr_in a = sin4("192.0.2.7", 1);
    struct sockaddr_in6 b = sin6("2001:db8::9", 2);
    assert_int_equal(
        tcp_proxyv2_set_addrs(&h, (struct sockaddr *)&a, (struct sockaddr *)&b),
        0);
    assert_int_equal(h.family, AF_INET6);
    assert_memory_equal(h.src_addr,
                        "\0\0\0\0\0\0\0\0\0\0\xff\xff\xc0\x00\x02\x07", 16);
    struct sockaddr_un u = {.sun_family = AF_UNIX};
    assert_int_equal(
        tcp_proxyv2_set_addrs(&h, (struct sockaddr *)&u, (struct sockaddr *)&a),
        CG_EINVAL);

    struct tcp_pp2 l = {.local = true};
    struct cg_buf out;
    char err[CG_ERR_LEN];
    size_t used;
    cg_buf_init(&out);
    assert_int_equal(tcp_proxyv2_encode(&l, &out, err), 0);
    assert_int_equal(out.len, 16);
    assert_memory_equal(out.data + 12, "\x20\x00\x00\x00", 4);
    assert_int_equal(
        tcp_proxyv2_decode((const uint8_t *)out.data, out.len, &h, &used, err),
        0);
    assert_true(h.local);
    l.local = false;
    l.family = AF_UNIX;
    assert_int_equal(tcp_proxyv2_encode(&l, &out, err), CG_EINVAL);
    cg_buf_cleanup(&out);
}

/* Addresses plus TLVs may fill exactly 65535 bytes, not one more. */
static void
test_limits(void **state)
{
    (void)state;
    struct tcp_pp2 h;
    struct cg_buf out;
    char err[CG_ERR_LEN];
    size_t n = 65535 - 12 - 3 - 3 - 2; /* addrs, TLV, sub-TLV, "v=" */
    char *big = malloc(65535);
    memset(big, 'x', 65535);
    hdr_v4(&h);
    memset(&h.ssl, 0, sizeof(h.ssl));
    h.alpn.len = h.authority.len = 0;
    h.fields[0] = (struct tcp_pp2_field){S("v"), {big, n}};
    h.n_fields = 1;
    cg_buf_init(&out);
    assert_int_equal(tcp_proxyv2_encode(&h, &out, err), 0);
    assert_int_equal(out.len, 16 + 65535);
    cg_buf_reset(&out);
    h.fields[0].value.len = n + 1;
    assert_int_equal(tcp_proxyv2_encode(&h, &out, err), CG_ELIMIT);
    assert_int_equal(out.len, 0);
    h.fields[0].value.len = 65535;
    assert_int_equal(tcp_proxyv2_encode(&h, &out, err), CG_ELIMIT);
    h.n_fields = 0;
    h.ssl = (struct tcp_pp2_ssl){.present = true, .cn = {big, n}};
    assert_int_equal(tcp_proxyv2_encode(&h, &out, err), CG_ELIMIT);
    h.ssl.present = false;
    h.n_fields = TCP_PP2_MAX_FIELDS + 1;
    assert_int_equal(tcp_proxyv2_encode(&h, &out, err), CG_ELIMIT);
    const char *bad[] = {"", "Cn", "a=b", "a b", "é"};
    for (size_t i = 0; i < 5; i++) {
        h.fields[0] = (struct tcp_pp2_field){{bad[i], strlen(bad[i])}, S("v")};
        h.n_fields = 1;
        assert_int_equal(tcp_proxyv2_encode(&h, &out, err), CG_EINVAL);
    }
    assert_int_equal(out.len, 0);
    cg_buf_cleanup(&out);
    free(big);
}

/* Decodes a patched copy of want_v4; asserts rc. */
static void
check_patched(size_t at, uint8_t v, int rc)
{
    uint8_t p[sizeof(want_v4)];
    struct tcp_pp2 h;
    size_t used;
    char err[CG_ERR_LEN] = "";
    memcpy(p, want_v4, sizeof(p));
    p[at] = v;
    int got = tcp_proxyv2_decode(p, sizeof(p), &h, &used, err);
    if (got != rc)
        fail_msg("byte %zu = 0x%02x: rc %d (%s), want %d", at, v, got, err, rc);
}

static void
test_decode_errors(void **state)
{
    (void)state;
    struct tcp_pp2 h;
    size_t used;
    char err[CG_ERR_LEN];
    for (size_t i = 0; i < sizeof(want_v4); i++)
        assert_int_equal(tcp_proxyv2_decode(want_v4, i, &h, &used, err),
                         CG_EAGAIN);
    assert_int_equal(
        tcp_proxyv2_decode((const uint8_t *)"\r\n\n", 3, &h, &used, err),
        CG_EPROTO);
    assert_int_equal(
        tcp_proxyv2_decode((const uint8_t *)"PROXY TCP4 ", 11, &h, &used, err),
        CG_EPROTO);
    check_patched(12, 0x11, CG_EPROTO);  /* version 1 */
    check_patched(12, 0x22, CG_EPROTO);  /* command 2 */
    check_patched(13, 0x12, CG_EPROTO);  /* UDP over IPv4 */
    check_patched(13, 0x31, CG_EPROTO);  /* AF_UNIX */
    check_patched(13, 0x00, CG_EPROTO);  /* UNSPEC with PROXY */
    check_patched(15, 0x0b, CG_EPROTO);  /* length below the addresses */
    check_patched(30, 0x03, CG_EPROTO);  /* ALPN runs past its neighbour */
    check_patched(33, 0x01, CG_EPROTO);  /* authority -> second ALPN */
    check_patched(28, 0x04, 0);          /* ALPN -> NOOP: skipped */
    check_patched(48, 0x04, CG_EPROTO);  /* SSL TLV shorter than 5 */
    check_patched(56, 0x08, CG_EPROTO);  /* SSL sub-TLV overrun */
    check_patched(125, 0x7f, CG_EPROTO); /* certgate sub-TLV overrun */
    check_patched(128, 'x', CG_EPROTO);  /* "cnxalice": no '=' */
    check_patched(126, 'C', CG_EPROTO);  /* "Cn=alice" */
    check_patched(123, 0x02, 0);         /* unknown sub-TLV: skipped */
    /* bytes after the header are not consumed */
    uint8_t more[sizeof(want_v4) + 4];
    memcpy(more, want_v4, sizeof(want_v4));
    memcpy(more + sizeof(want_v4), "data", 4);
    assert_int_equal(tcp_proxyv2_decode(more, sizeof(more), &h, &used, err), 0);
    assert_int_equal(used, sizeof(want_v4));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode),        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_families),      cmocka_unit_test(test_limits),
        cmocka_unit_test(test_decode_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
