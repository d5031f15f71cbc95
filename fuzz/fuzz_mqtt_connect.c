/*
 * libFuzzer target for src/mqtt/connect.c: the input after a 3-byte
 * prefix is a byte stream from a new MQTT connection. It is decoded whole
 * and then fed again in pseudo-random growing prefixes, as TLS records
 * would deliver it; every prefix must give "more bytes" or the whole
 * input's answer. A decoded CONNECT must re-encode byte-identical, and
 * with the user name and client id replaced must encode to a CONNECT
 * that decodes to the new values and the same everything else.
 *
 * Prefix: byte 0 = limit choice (max_packet 32, 128, 4096 or 1 MB),
 * bytes 1..2 = seed of the split sizes.
 *
 * Build and run (from the repository root; not part of CMake):
 *
 *   mkdir -p build-fuzz/corpus-mqtt
 *   clang -g -O1 -std=c17 -fsanitize=fuzzer,address,undefined \
 *     -fno-sanitize-recover=undefined -D_GNU_SOURCE -Isrc \
 *     fuzz/fuzz_mqtt_connect.c src/mqtt/connect.c src/core/buf.c \
 *     src/core/util.c src/core/xmalloc.c src/core/err.c \
 *     -o build-fuzz/fuzz_mqtt_connect
 *   ./build-fuzz/fuzz_mqtt_connect -max_total_time=60 -max_len=4096 \
 *     -dict=fuzz/mqtt.dict build-fuzz/corpus-mqtt fuzz/corpus/mqtt
 *
 * (seeds in fuzz/corpus/mqtt start with the 3-byte prefix.)
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "mqtt/connect.h"

#include "fuzz_check.h"

struct result {
    int rc;
    size_t used;
    struct mqtt_connect c;
};

static struct result
run(const uint8_t *p, size_t n, size_t maxp)
{
    struct result r;
    char err[CG_ERR_LEN];
    r.rc = mqtt_connect_decode(p, n, maxp, &r.c, &r.used, err);
    CHECK(r.rc == 0 || r.rc == CG_EAGAIN || r.rc == CG_EPROTO);
    if (r.rc == 0)
        CHECK(r.used > 0 && r.used <= n && r.c.refusal == MQTT_REFUSE_NONE);
    else
        CHECK(r.used == 0);
    if (r.rc == CG_EPROTO) {
        CHECK(r.c.refusal > MQTT_REFUSE_NONE &&
              r.c.refusal < MQTT_REFUSE_COUNT && err[0] != '\0');
        CHECK(r.c.connack == mqtt_refusal_code(r.c.refusal, r.c.level));
    }
    return r;
}

static bool
same_bytes(const struct mqtt_bytes *a, const struct mqtt_bytes *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

/* Everything but user name and client id is carried unchanged. */
static void
check_same_rest(const struct mqtt_connect *a, const struct mqtt_connect *b)
{
    CHECK(a->level == b->level && a->keepalive == b->keepalive);
    CHECK((a->flags & 0x3f) == (b->flags & 0x3f));
    CHECK(a->has_password == b->has_password);
    CHECK(same_bytes(&a->props, &b->props));
    CHECK(same_bytes(&a->will_props, &b->will_props));
    CHECK(same_bytes(&a->will_topic, &b->will_topic));
    CHECK(same_bytes(&a->will_payload, &b->will_payload));
    CHECK(same_bytes(&a->password, &b->password));
}

/* Round trip, then a rewrite of user name and client id. */
static void
check_encode(const uint8_t *p, const struct result *r)
{
    struct cg_buf out;
    struct result again;
    cg_buf_init(&out);
    CHECK(mqtt_connect_encode(&r->c, &out) == 0);
    CHECK(out.len == r->used && memcmp(out.data, p, out.len) == 0);

    struct mqtt_connect c = r->c;
    c.has_username = true;
    c.username = (struct mqtt_bytes){(const uint8_t *)"device-42", 9};
    c.client_id = (struct mqtt_bytes){(const uint8_t *)"d42", 3};
    cg_buf_reset(&out);
    CHECK(mqtt_connect_encode(&c, &out) == 0);
    again = run((const uint8_t *)out.data, out.len, out.len);
    CHECK(again.rc == 0 && again.used == out.len);
    CHECK(again.c.has_username && again.c.username.len == 9 &&
          memcmp(again.c.username.p, "device-42", 9) == 0);
    CHECK(again.c.client_id.len == 3);
    check_same_rest(&r->c, &again.c);
    cg_buf_cleanup(&out);
}

static void
check_connack(const struct result *r)
{
    struct cg_buf b;
    if (r->c.connack < 0)
        return;
    cg_buf_init(&b);
    mqtt_connack(&b, r->c.level, (uint8_t)r->c.connack);
    CHECK(b.len == (r->c.level >= 5 ? 5u : 4u) && b.data[0] == 0x20);
    cg_buf_cleanup(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t limits[] = {32, 128, 4096, 1 << 20};
    if (size < 3)
        return 0;
    size_t maxp = limits[data[0] & 3];
    uint32_t seed = (uint32_t)data[1] << 8 | data[2];
    const uint8_t *p = data + 3;
    size_t n = size - 3;

    struct result whole = run(p, n, maxp);
    /* growing prefixes: "more bytes" until the whole input's answer */
    size_t len = 0;
    while (len < n) {
        seed = seed * 1103515245u + 12345u;
        len += 1 + (seed >> 16) % 16;
        if (len > n)
            len = n;
        struct result part = run(p, len, maxp);
        if (part.rc == CG_EAGAIN)
            continue;
        CHECK(part.rc == whole.rc && part.used == whole.used);
        CHECK(part.c.refusal == whole.c.refusal &&
              part.c.connack == whole.c.connack);
    }
    if (whole.rc == 0)
        check_encode(p, &whole);
    check_connack(&whole);
    return 0;
}
