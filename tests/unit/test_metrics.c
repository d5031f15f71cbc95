/*
 * Unit tests of src/admin/metrics: label escaping (a certificate-derived
 * value never breaks the exposition), per-worker blocks summed at scrape,
 * blocks stable across re-registration, only published blocks exposed,
 * the identity cardinality cap, CRL gauges, and the exposition's shape
 * (each family once, HELP then TYPE, its samples together).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/metrics_int.h"
#include "core/buf.h"
#include "mqtt/connect.h"

static char *
escape(const char *s, size_t len)
{
    struct cg_buf b;
    cg_buf_init(&b);
    metrics_label_escape(&b, s, len);
    cg_buf_cstr(&b);
    return cg_buf_take(&b);
}

static void
test_escape(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"alice", 5, "alice"},
        {"a\"b", 3, "a\\\"b"},
        {"a\\b", 3, "a\\\\b"},
        {"a\nb", 3, "a\\nb"},
        {"a\rb\tc", 5,
         "a\xef\xbf\xbd"
         "b\xef\xbf\xbd"
         "c"},
        {"a\0b", 3,
         "a\xef\xbf\xbd"
         "b"},
        {"x\x7fy", 3, "x\xef\xbf\xbdy"},
        {"Zo\xc3\xab", 4, "Zo\xc3\xab"}, /* UTF-8 kept */
        {"\xc3(", 2, "\xef\xbf\xbd("},   /* invalid UTF-8 */
        {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"} 1\n# TYPE x", 12, "} 1\\n# TYPE x"}, /* stays one value */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = escape(cases[i].in, cases[i].len);
        assert_string_equal(got, cases[i].out);
        free(got);
    }
    /* long values are cut at METRICS_LABEL_MAX input bytes */
    char big[METRICS_LABEL_MAX * 2];
    memset(big, 'x', sizeof(big));
    char *got = escape(big, sizeof(big));
    assert_int_equal(strlen(got), METRICS_LABEL_MAX);
    free(got);
}

/* Renders m into an owned string. */
static char *
render(struct metrics *m)
{
    struct cg_buf b;
    cg_buf_init(&b);
    metrics_render(m, 1000000, &b);
    cg_buf_cstr(&b);
    return cg_buf_take(&b);
}

/* True when text has exactly this line. */
static bool
has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    }
    return false;
}

/* Each family declared once, HELP then TYPE, samples right after. */
static void
check_shape(const char *text)
{
    char seen[256][96];
    size_t n_seen = 0;
    char current[96] = "";
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        char line[4096];
        size_t len = (size_t)(nl - p);
        assert_true(len < sizeof(line));
        memcpy(line, p, len);
        line[len] = '\0';
        char name[96];
        if (strncmp(line, "# HELP ", 7) == 0) {
            assert_int_equal(sscanf(line + 7, "%95s", name), 1);
            for (size_t i = 0; i < n_seen; i++)
                assert_string_not_equal(seen[i], name);
            snprintf(seen[n_seen++], sizeof(seen[0]), "%s", name);
            snprintf(current, sizeof(current), "%s", name);
        } else if (strncmp(line, "# TYPE ", 7) == 0) {
            assert_int_equal(sscanf(line + 7, "%95s", name), 1);
            assert_string_equal(name, current);
        } else {
            size_t k = strcspn(line, "{ ");
            assert_true(k == strlen(current) && strncmp(line, current, k) == 0);
        }
        p = nl + 1;
    }
}

static void
test_blocks_and_render(void **state)
{
    (void)state;
    struct metrics *m = metrics_new(3);
    uint32_t web = metrics_register(m, "web", CG_KIND_HTTPS, NULL);
    uint32_t api = metrics_register(m, "web", CG_KIND_HTTPS, "*/api");
    uint32_t mq = metrics_register(m, "mq", CG_KIND_MQTT, NULL);
    uint32_t gone = metrics_register(m, "old", CG_KIND_TCP, NULL);
    assert_int_not_equal(web, 0);
    assert_true(web != api && api != mq && mq != gone);
    /* a reload registers the same names again: same blocks */
    assert_int_equal(metrics_register(m, "web", CG_KIND_HTTPS, NULL), web);
    assert_int_equal(metrics_register(m, "web", CG_KIND_HTTPS, "*/api"), api);
    /* another kind under the same name is another block */
    assert_int_not_equal(metrics_register(m, "web", CG_KIND_TCP, NULL), web);
    uint32_t live[] = {web, api, mq};
    metrics_publish(m, live, 3);
    for (int w = 0; w < 3; w++) {
        metrics_ctr_t *b = metrics_block(metrics_worker(m, w), web);
        metrics_add(b, MC_ACCEPTED, 2);
        metrics_add(b, MC_CLOSED, 1);
        metrics_handshake(b, false, "revoked", false, NULL);
        metrics_http(b, metrics_block(metrics_worker(m, w), api), 204);
        metrics_add(metrics_block(metrics_worker(m, w), gone), MC_ACCEPTED, 1);
    }
    metrics_ctr_t *b0 = metrics_block(metrics_worker(m, 0), web);
    metrics_handshake(b0, true, NULL, true, "expired");
    metrics_handshake(b0, false, "no-such-reason", false, NULL);
    metrics_add(b0, MC_HS_FAILED + METRICS_R_timeout, 1);
    metrics_http(b0, NULL, 499);
    metrics_add(b0, MC_UPSTREAM_ERR + metrics_upstream_error("upstream_closed"),
                1);
    assert_int_equal(metrics_upstream_error("no_route"), -1);
    metrics_ctr_t *bm = metrics_block(metrics_worker(m, 1), mq);
    metrics_mqtt(bm, MQTT_REFUSE_NONE, 4, true);
    metrics_mqtt(bm, MQTT_REFUSE_NOT_AUTHORIZED, 5, true);
    metrics_mqtt(bm, MQTT_REFUSE_NOT_AUTHORIZED, 4, true);
    metrics_mqtt(bm, MQTT_REFUSE_MALFORMED, -1, false);
    metrics_set_generation(m, 7, 42);
    metrics_count_reload(m, false, true, 999);
    metrics_count_reload(m, false, false, 1000);
    metrics_count_reload(m, true, true, 1000);

    char *t = render(m);
    check_shape(t);
    assert_true(has_line(t, "certgate_workers 3"));
    assert_true(has_line(t,
                         "certgate_connections_accepted_total{listener=\"web\","
                         "kind=\"https\"} 6"));
    assert_true(has_line(
        t, "certgate_connections_open{listener=\"web\",kind=\"https\"} 3"));
    assert_true(has_line(t, "certgate_tls_handshake_failures_total{listener="
                            "\"web\",kind=\"https\",reason=\"revoked\"} 3"));
    assert_true(has_line(t, "certgate_tls_handshake_failures_total{listener="
                            "\"web\",kind=\"https\",reason=\"invalid\"} 1"));
    assert_true(has_line(t, "certgate_tls_handshake_failures_total{listener="
                            "\"web\",kind=\"https\",reason=\"timeout\"} 1"));
    assert_true(has_line(t, "certgate_tls_would_refuse_total{listener=\"web\","
                            "kind=\"https\",reason=\"expired\"} 1"));
    assert_true(has_line(
        t, "certgate_tls_resumed_total{listener=\"web\",kind=\"https\"} 1"));
    assert_true(has_line(t, "certgate_http_requests_total{listener=\"web\","
                            "kind=\"https\",class=\"2xx\"} 3"));
    assert_true(has_line(t, "certgate_http_requests_total{listener=\"web\","
                            "kind=\"https\",class=\"4xx\"} 1"));
    assert_true(has_line(t, "certgate_http_route_requests_total{listener="
                            "\"web\",kind=\"https\",route=\"*/api\",class="
                            "\"2xx\"} 3"));
    assert_true(has_line(t, "certgate_upstream_errors_total{listener=\"web\","
                            "kind=\"https\",reason=\"upstream_closed\"} 1"));
    assert_true(has_line(t, "certgate_mqtt_connects_total{listener=\"mq\","
                            "kind=\"mqtt\",result=\"accepted\",connack="
                            "\"0x00\"} 1"));
    assert_true(has_line(t, "certgate_mqtt_connects_total{listener=\"mq\","
                            "kind=\"mqtt\",result=\"not_authorized\","
                            "connack=\"0x87\"} 1"));
    assert_true(has_line(t, "certgate_mqtt_connects_total{listener=\"mq\","
                            "kind=\"mqtt\",result=\"not_authorized\","
                            "connack=\"0x05\"} 1"));
    assert_true(has_line(t, "certgate_mqtt_connects_total{listener=\"mq\","
                            "kind=\"mqtt\",result=\"malformed\",connack="
                            "\"none\"} 1"));
    assert_true(has_line(t, "certgate_reloads_total{result=\"ok\"} 1"));
    assert_true(has_line(t, "certgate_reloads_total{result=\"failed\"} 1"));
    assert_true(
        has_line(t, "certgate_revocation_rebuilds_total{result=\"ok\"} 1"));
    assert_true(has_line(t, "certgate_config_last_reload_successful 0"));
    assert_true(has_line(t, "certgate_config_generation 7"));
    assert_true(has_line(t, "certgate_revocation_generation 42"));
    /* unpublished blocks are not exposed; http families only for https */
    assert_null(strstr(t, "listener=\"old\""));
    assert_null(strstr(t, "certgate_http_requests_total{listener=\"mq\""));
    free(t);
    metrics_free(m);
}

static void
test_identity_cap(void **state)
{
    (void)state;
    struct metrics *m = metrics_new(1);
    uint32_t mq = metrics_register(m, "mq", CG_KIND_MQTT, NULL);
    uint32_t db = metrics_register(m, "db", CG_KIND_TCP, NULL);
    uint32_t live[] = {mq, db};
    metrics_publish(m, live, 2);
    metrics_set_max_identities(m, 2);
    struct metrics_identity *a = metrics_identity_open(m, mq, "a\"b", 3);
    struct metrics_identity *a2 = metrics_identity_open(m, mq, "a\"b", 3);
    assert_ptr_equal(a, a2);
    struct metrics_identity *n = metrics_identity_open(m, mq, "x\ny", 3);
    assert_ptr_not_equal(a, n);
    /* the cap is reached: new identities share __other__ */
    struct metrics_identity *o1 = metrics_identity_open(m, mq, "c", 1);
    struct metrics_identity *o2 = metrics_identity_open(m, mq, "d", 1);
    assert_ptr_equal(o1, o2);
    assert_string_equal(o1->label, METRICS_OTHER);
    /* known identities keep counting past the cap */
    assert_ptr_equal(metrics_identity_open(m, mq, "x\ny", 3), n);
    /* per listener: the same name elsewhere is another series (capped) */
    struct metrics_identity *other_l = metrics_identity_open(m, db, "a\"b", 3);
    assert_string_equal(other_l->label, METRICS_OTHER);
    struct metrics_identity *anon = metrics_identity_open(m, db, NULL, 0);
    assert_ptr_equal(anon, other_l);
    metrics_identity_close(a);
    metrics_identity_close(o1);
    metrics_identity_close(NULL);
    char *t = render(m);
    check_shape(t);
    assert_true(has_line(t, "certgate_identity_connections_total{listener="
                            "\"mq\",kind=\"mqtt\",identity=\"a\\\"b\"} 2"));
    assert_true(has_line(t, "certgate_identity_connections_open{listener="
                            "\"mq\",kind=\"mqtt\",identity=\"a\\\"b\"} 1"));
    assert_true(has_line(t, "certgate_identity_connections_total{listener="
                            "\"mq\",kind=\"mqtt\",identity=\"x\\ny\"} 2"));
    assert_true(has_line(t, "certgate_identity_connections_total{listener="
                            "\"mq\",kind=\"mqtt\",identity=\"__other__\"} 2"));
    assert_true(has_line(t, "certgate_identity_connections_open{listener="
                            "\"mq\",kind=\"mqtt\",identity=\"__other__\"} 1"));
    assert_true(has_line(t, "certgate_identity_connections_total{listener="
                            "\"db\",kind=\"tcp\",identity=\"__other__\"} 2"));
    assert_true(has_line(t, "certgate_identities_tracked 2"));
    assert_true(has_line(t, "certgate_identities_max 2"));
    free(t);
    /* the listener leaves the config: its identities are not exposed */
    metrics_publish(m, live, 1);
    t = render(m);
    assert_null(strstr(t, "listener=\"db\""));
    free(t);
    metrics_free(m);
}

static void
test_crls(void **state)
{
    (void)state;
    struct metrics *m = metrics_new(1);
    /* rendered at now = 1000000 */
    struct metrics_crl c[] = {
        {"staff", "/CN=Root \"A\"", 3, true, 1000000 - 600,
         1000000 - 600 + 3600},
        {"devices", "/CN=Devices", 5, false, 0, 0},
        {"old", "/CN=Old", 0, true, 1000000 - 7200, 1000000 - 3600},
        {"fresh", "/CN=Fresh", 1, true, 1000000 + 60, 1000000 + 60 + 300},
    };
    metrics_set_crls(m, c, 4);
    char *t = render(m);
    check_shape(t);
    const char *staff = "{trust=\"staff\",issuer=\"/CN=Root \\\"A\\\"\"}";
    char line[256];
    snprintf(line, sizeof(line), "certgate_crl_entries%s 3", staff);
    assert_true(has_line(t, line));
    snprintf(line, sizeof(line), "certgate_crl_stale%s 1", staff);
    assert_true(has_line(t, line));
    snprintf(line, sizeof(line), "certgate_crl_next_update_seconds%s -600",
             staff);
    assert_true(has_line(t, line));
    snprintf(line, sizeof(line), "certgate_crl_grace_remaining_seconds%s 3000",
             staff);
    assert_true(has_line(t, line));
    snprintf(line, sizeof(line), "certgate_crl_refusing%s 0", staff);
    assert_true(has_line(t, line));
    assert_true(has_line(t, "certgate_crl_entries{trust=\"devices\",issuer="
                            "\"/CN=Devices\"} 5"));
    assert_null(strstr(t, "certgate_crl_stale{trust=\"devices\""));
    assert_true(has_line(
        t, "certgate_crl_refusing{trust=\"old\",issuer=\"/CN=Old\"} 1"));
    assert_true(has_line(t, "certgate_crl_grace_remaining_seconds{trust="
                            "\"old\",issuer=\"/CN=Old\"} 0"));
    assert_true(has_line(
        t, "certgate_crl_stale{trust=\"fresh\",issuer=\"/CN=Fresh\"} 0"));
    assert_true(has_line(t, "certgate_crl_grace_remaining_seconds{trust="
                            "\"fresh\",issuer=\"/CN=Fresh\"} 300"));
    free(t);
    metrics_free(m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_blocks_and_render),
        cmocka_unit_test(test_identity_cap),
        cmocka_unit_test(test_crls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
