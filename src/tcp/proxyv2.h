/*
 * PROXY protocol version 2 header (HAProxy doc/proxy-protocol.txt):
 * encoder for what the TCP listener sends upstream, and a decoder for
 * tests and test servers. Pure: no sockets. Carries TCP over IPv4/IPv6
 * addresses, ALPN, authority (SNI), the SSL TLV with its sub-TLVs and
 * certgate's identity TLV (type 0xE0); the byte layout is in docs/tcp.md.
 */
#ifndef CG_TCP_PROXYV2_H
#define CG_TCP_PROXYV2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"

/* The 12-byte signature (section 2.2) and the fixed header size. */
#define TCP_PP2_SIG "\r\n\r\n\0\r\nQUIT\n"
#define TCP_PP2_SIG_LEN 12
#define TCP_PP2_HDR_LEN 16
/* Largest value of the 16-bit length field: addresses plus TLVs. */
#define TCP_PP2_MAX_BODY 65535

#define TCP_PP2_VERSION 0x20
#define TCP_PP2_CMD_LOCAL 0x00
#define TCP_PP2_CMD_PROXY 0x01
#define TCP_PP2_FAM_UNSPEC 0x00
#define TCP_PP2_FAM_TCP4 0x11
#define TCP_PP2_FAM_TCP6 0x21

#define TCP_PP2_TYPE_ALPN 0x01
#define TCP_PP2_TYPE_AUTHORITY 0x02
#define TCP_PP2_TYPE_SSL 0x20
#define TCP_PP2_SUBTYPE_SSL_VERSION 0x21
#define TCP_PP2_SUBTYPE_SSL_CN 0x22
#define TCP_PP2_SUBTYPE_SSL_CIPHER 0x23
#define TCP_PP2_SUBTYPE_SSL_SIG_ALG 0x24
#define TCP_PP2_SUBTYPE_SSL_KEY_ALG 0x25
#define TCP_PP2_TYPE_MIN_CUSTOM 0xE0
#define TCP_PP2_TYPE_MAX_CUSTOM 0xEF

#define TCP_PP2_CLIENT_SSL 0x01
#define TCP_PP2_CLIENT_CERT_CONN 0x02
#define TCP_PP2_CLIENT_CERT_SESS 0x04

/* certgate's identity TLV (first custom type) and its one sub-TLV type:
 * a field, "name=value". */
#define TCP_PP2_TYPE_CERTGATE TCP_PP2_TYPE_MIN_CUSTOM
#define TCP_PP2_SUBTYPE_CG_FIELD 0x01

#define TCP_PP2_MAX_FIELDS 32

/* PP2_TYPE_SSL: sent when present; strings with len 0 are omitted. */
struct tcp_pp2_ssl {
    bool present;
    uint8_t client;  /* TCP_PP2_CLIENT_* bits */
    uint32_t verify; /* 0: a certificate was presented and verified */
    struct cg_str version, cn, cipher, sig_alg, key_alg;
};

/* One identity field: name is [a-z0-9_]+, value any bytes. */
struct tcp_pp2_field {
    struct cg_str name;
    struct cg_str value;
};

/* A header. Strings are borrowed (from the caller when encoding, from
 * the input buffer after decoding). */
struct tcp_pp2 {
    bool local; /* LOCAL command: no addresses */
    int family; /* AF_INET or AF_INET6 (PROXY command) */
    uint8_t src_addr[16], dst_addr[16]; /* network order; 4 used for v4 */
    uint16_t src_port, dst_port;        /* host order */
    struct cg_str alpn;                 /* len 0: omitted */
    struct cg_str authority;            /* SNI; len 0: omitted */
    struct tcp_pp2_ssl ssl;
    struct tcp_pp2_field fields[TCP_PP2_MAX_FIELDS]; /* TLV 0xE0 */
    size_t n_fields;                                 /* 0: TLV omitted */
};

/*
 * Sets the PROXY command and the addresses of h from the client's (src)
 * and the listener's (dst) socket addresses. An IPv4 address paired with
 * an IPv6 one is written as ::ffff:a.b.c.d. Returns 0, or CG_EINVAL for
 * a family other than AF_INET/AF_INET6.
 */
int tcp_proxyv2_set_addrs(struct tcp_pp2 *h, const struct sockaddr *src,
                          const struct sockaddr *dst);

/*
 * Appends the v2 header for h to out: signature, version 2 with the
 * PROXY (or LOCAL) command, the family, length, addresses, then the
 * TLVs in the order ALPN, AUTHORITY, SSL (sub-TLVs VERSION, CN, CIPHER,
 * SIG_ALG, KEY_ALG), certgate (0xE0). Returns 0; CG_ELIMIT (err filled,
 * out untouched) when addresses plus TLVs exceed 65535 bytes or there
 * are more than TCP_PP2_MAX_FIELDS fields; CG_EINVAL for a bad family or
 * field name.
 */
int tcp_proxyv2_encode(const struct tcp_pp2 *h, struct cg_buf *out, char *err);

/*
 * Decodes the v2 header at the start of buf[0..len). Returns 0 with *out
 * filled (views into buf) and *consumed = header size; CG_EAGAIN when
 * more bytes are needed; CG_EPROTO (err filled) when the bytes are not a
 * valid v2 header of the kinds above (unknown TLV types are skipped).
 */
int tcp_proxyv2_decode(const uint8_t *buf, size_t len, struct tcp_pp2 *out,
                       size_t *consumed, char *err);

#endif
