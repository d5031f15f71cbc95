/*
 * MQTT CONNECT decoder and encoder, CONNACK builder (pure: no sockets, no
 * loop). Protocol levels: 3 (MQTT 3.1, "MQIsdp"), 4 (3.1.1, "MQTT") and
 * 5 (5.0, "MQTT"). The decoder is fed the bytes received so far and says
 * whether a whole, valid CONNECT is there, more bytes are needed, or the
 * connection must be refused (and with which CONNACK, if any). Field
 * views borrow the input buffer; MQTT 5 properties stay raw byte ranges
 * so that the encoder writes them back byte for byte. See docs/mqtt.md.
 */
#ifndef CG_MQTT_CONNECT_H
#define CG_MQTT_CONNECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define MQTT_LEVEL_31 3  /* MQTT 3.1, protocol name "MQIsdp" */
#define MQTT_LEVEL_311 4 /* MQTT 3.1.1, "MQTT" */
#define MQTT_LEVEL_5 5   /* MQTT 5.0, "MQTT" */

/* CONNACK return codes of MQTT 3.1 and 3.1.1 (section 3.2.2.3). */
#define MQTT_RC_ACCEPTED 0x00
#define MQTT_RC_UNACCEPTABLE_PROTOCOL 0x01
#define MQTT_RC_IDENTIFIER_REJECTED 0x02
#define MQTT_RC_SERVER_UNAVAILABLE 0x03
#define MQTT_RC_BAD_USERNAME_PASSWORD 0x04
#define MQTT_RC_NOT_AUTHORIZED 0x05

/* CONNACK reason codes of MQTT 5.0 (section 3.2.2.2). */
#define MQTT5_RC_SUCCESS 0x00
#define MQTT5_RC_UNSPECIFIED 0x80
#define MQTT5_RC_MALFORMED 0x81
#define MQTT5_RC_PROTOCOL_ERROR 0x82
#define MQTT5_RC_UNSUPPORTED_VERSION 0x84
#define MQTT5_RC_CLIENT_ID_NOT_VALID 0x85
#define MQTT5_RC_BAD_USERNAME_PASSWORD 0x86
#define MQTT5_RC_NOT_AUTHORIZED 0x87
#define MQTT5_RC_SERVER_UNAVAILABLE 0x88
#define MQTT5_RC_BAD_AUTH_METHOD 0x8C
#define MQTT5_RC_PACKET_TOO_LARGE 0x95

/* Largest remaining length a 4-byte variable byte integer can carry. */
#define MQTT_MAX_REMAINING 268435455u

/*
 * Why a connection is refused, with the CONNACK code the spec requires
 * for 3.1/3.1.1 and for 5.0 (-1: close without a CONNACK). The first
 * group comes from the decoder, the second from the listener's checks.
 */
#define MQTT_REFUSALS(X)                                                       \
    X(MQTT_REFUSE_NONE, "none", -1, -1)                                        \
    X(MQTT_REFUSE_NOT_CONNECT, "not_connect", -1, -1)                          \
    X(MQTT_REFUSE_MALFORMED, "malformed", -1, MQTT5_RC_MALFORMED)              \
    X(MQTT_REFUSE_TOO_LARGE, "too_large", -1, MQTT5_RC_PACKET_TOO_LARGE)       \
    X(MQTT_REFUSE_PROTOCOL_NAME, "protocol_name", -1, -1)                      \
    X(MQTT_REFUSE_VERSION, "unsupported_version",                              \
      MQTT_RC_UNACCEPTABLE_PROTOCOL, MQTT5_RC_UNSUPPORTED_VERSION)             \
    X(MQTT_REFUSE_PROTOCOL_ERROR, "protocol_error", -1,                        \
      MQTT5_RC_PROTOCOL_ERROR)                                                 \
    X(MQTT_REFUSE_BAD_UTF8, "bad_utf8", -1, MQTT5_RC_MALFORMED)                \
    X(MQTT_REFUSE_CLIENT_ID, "client_id", MQTT_RC_IDENTIFIER_REJECTED,         \
      MQTT5_RC_CLIENT_ID_NOT_VALID)                                            \
    X(MQTT_REFUSE_BAD_CREDENTIALS, "bad_credentials",                          \
      MQTT_RC_BAD_USERNAME_PASSWORD, MQTT5_RC_BAD_USERNAME_PASSWORD)           \
    X(MQTT_REFUSE_NOT_AUTHORIZED, "not_authorized", MQTT_RC_NOT_AUTHORIZED,    \
      MQTT5_RC_NOT_AUTHORIZED)                                                 \
    X(MQTT_REFUSE_BAD_AUTH_METHOD, "bad_auth_method", MQTT_RC_NOT_AUTHORIZED,  \
      MQTT5_RC_BAD_AUTH_METHOD)                                                \
    X(MQTT_REFUSE_UNAVAILABLE, "server_unavailable",                           \
      MQTT_RC_SERVER_UNAVAILABLE, MQTT5_RC_SERVER_UNAVAILABLE)

enum mqtt_refusal {
#define MQTT_REFUSAL_ENUM(e, name, v3, v5) e,
    MQTT_REFUSALS(MQTT_REFUSAL_ENUM)
#undef MQTT_REFUSAL_ENUM
        MQTT_REFUSE_COUNT
};

/* Returns the static name of a refusal ("malformed", ...). */
const char *mqtt_refusal_name(enum mqtt_refusal r);
/*
 * Returns the CONNACK code to send for refusal r to a client that asked
 * for protocol level `level` (the raw level byte; negative when it was
 * never read), or -1 when the connection is closed without a CONNACK.
 * Levels >= 5 get the 5.0 code, lower levels the 3.1.1 code.
 */
int mqtt_refusal_code(enum mqtt_refusal r, int level);

/* A counted byte range; borrowed unless the owner says otherwise. */
struct mqtt_bytes {
    const uint8_t *p;
    size_t len;
};

/* Connect flags (section 3.1.2.3). */
#define MQTT_CF_RESERVED 0x01
#define MQTT_CF_CLEAN 0x02
#define MQTT_CF_WILL 0x04
#define MQTT_CF_WILL_QOS 0x18
#define MQTT_CF_WILL_RETAIN 0x20
#define MQTT_CF_PASSWORD 0x40
#define MQTT_CF_USERNAME 0x80

struct mqtt_connect {
    int level;     /* protocol level byte; -1 until it was read */
    uint8_t flags; /* connect flags as received */
    uint16_t keepalive;
    struct mqtt_bytes props; /* 5.0 CONNECT properties, raw, no length */
    struct mqtt_bytes client_id;
    struct mqtt_bytes will_props; /* 5.0 will properties, raw */
    struct mqtt_bytes will_topic;
    struct mqtt_bytes will_payload;
    bool has_username, has_password;
    struct mqtt_bytes username;
    struct mqtt_bytes password;
    /* 5.0 Authentication Method property (0x15), if present. */
    bool has_auth_method;
    struct mqtt_bytes auth_method;

    /* Set when the decoder returns CG_EPROTO. */
    enum mqtt_refusal refusal;
    int connack; /* mqtt_refusal_code(refusal, level): code or -1 */
};

/*
 * Decodes the CONNECT at the start of buf[0..len) (the bytes received so
 * far on a new connection). max_packet bounds the whole packet (fixed
 * header included); it is refused as soon as its remaining length is
 * known to exceed it. Views in *out borrow buf and stay valid while buf
 * does.
 *
 * Returns 0 with *out filled and *consumed = the packet's size (bytes
 * after it belong to the next packet); CG_EAGAIN when more bytes are
 * needed (out holds nothing usable); CG_EPROTO when the connection must
 * be refused: out->refusal says why, out->connack which CONNACK code to
 * send (or -1: close without one), err the detail (CG_ERR_LEN bytes).
 */
int mqtt_connect_decode(const uint8_t *buf, size_t len, size_t max_packet,
                        struct mqtt_connect *out, size_t *consumed, char *err);

/*
 * Appends the CONNECT c to out: the protocol name follows the level, the
 * username and password flags follow has_username and has_password, the
 * remaining length is recomputed; every other byte is written as held in
 * c. A decoded CONNECT re-encodes byte-identical. Returns 0, CG_ELIMIT
 * when a field exceeds 65535 bytes or the packet the MQTT maximum, or
 * CG_EINVAL for a level other than 3, 4, 5 or a password without a
 * username below level 5 (out is untouched on error).
 */
int mqtt_connect_encode(const struct mqtt_connect *c, struct cg_buf *out);

/* Appends a CONNACK with code (session present 0): 3.1/3.1.1 form for
 * levels below 5, else the 5.0 form with an empty property list. */
void mqtt_connack(struct cg_buf *out, int level, uint8_t code);

#endif
