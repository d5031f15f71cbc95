/*
 * A listener's cipher suites: "tls13_ciphersuites" (TLS 1.3) and
 * "tls12_ciphers" (TLS 1.2), each a list in the server's order of
 * preference. Only the AEAD suites the listener's library context
 * carries (src/tls/libctx.c) are accepted, by OpenSSL or IANA name; the
 * lists keep OpenSSL's names. The defaults are every accepted suite in
 * Mozilla's "intermediate" order: AES-128-GCM first (its 128-bit strength
 * matches P-256 and X25519; its suites' SHA-256 runs on the CPU's SHA
 * instructions, SHA-384 does not), then AES-256-GCM, then
 * ChaCha20-Poly1305.
 */
#include <stdio.h>
#include <string.h>

#include "config/config_int.h"
#include "core/util.h"

struct suite_name {
    const char *openssl, *iana;
};

static const struct suite_name tls13[] = {
    {"TLS_AES_128_GCM_SHA256", NULL},
    {"TLS_AES_256_GCM_SHA384", NULL},
    {"TLS_CHACHA20_POLY1305_SHA256", NULL},
};

static const struct suite_name tls12[] = {
    {"ECDHE-ECDSA-AES128-GCM-SHA256",
     "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"},
    {"ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"},
    {"ECDHE-ECDSA-AES256-GCM-SHA384",
     "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"},
    {"ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"},
    {"ECDHE-ECDSA-CHACHA20-POLY1305",
     "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"},
    {"ECDHE-RSA-CHACHA20-POLY1305",
     "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"},
};

/* Rewrites s to its OpenSSL name; reports and returns false when the
 * table has no such suite. */
static bool
check_suite(struct cfg_ctx *c, char *s, const struct suite_name *t, size_t n,
            const char *version)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s, t[i].openssl) == 0 ||
            (t[i].iana != NULL && strcmp(s, t[i].iana) == 0)) {
            memmove(s, t[i].openssl, strlen(t[i].openssl) + 1);
            return true;
        }
    }
    char all[512];
    size_t len = 0;
    for (size_t i = 0; i < n && len < sizeof(all); i++)
        len += (size_t)snprintf(all + len, sizeof(all) - len, "%s%s",
                                i == 0 ? "" : ", ", t[i].openssl);
    cfg_error(c, "unknown TLS %s cipher suite \"%s\" (one of %s)", version, s,
              all);
    return false;
}

bool
cfg_check_tls13_suite(struct cfg_ctx *c, char *s)
{
    return check_suite(c, s, tls13, CG_ARRAY_LEN(tls13), "1.3");
}

bool
cfg_check_tls12_cipher(struct cfg_ctx *c, char *s)
{
    return check_suite(c, s, tls12, CG_ARRAY_LEN(tls12), "1.2");
}

/* Refuses a suite listed twice; fills in the defaults when key is absent. */
static void
suites_post(struct cfg_ctx *c, json_t *obj, const char *key,
            struct cg_strlist *l, const struct suite_name *t, size_t n)
{
    if (obj == NULL || json_object_get(obj, key) == NULL) {
        for (size_t i = 0; i < n; i++)
            cg_strlist_add(l, t[i].openssl);
        return;
    }
    for (size_t i = 1; i < l->n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(l->v[i], l->v[j]) != 0)
                continue;
            size_t mark = cfg_push_key(c, key);
            size_t m2 = cfg_push_index(c, i);
            cfg_error(c, "%s is listed twice", l->v[i]);
            cfg_pop(c, m2);
            cfg_pop(c, mark);
            break;
        }
    }
}

void
cfg_tls_suites_post(struct cfg_ctx *c, json_t *obj, struct cg_listener_cfg *l)
{
    if (l->tls_min_version == 13 && obj != NULL &&
        json_object_get(obj, "tls12_ciphers") != NULL)
        cfg_error_at(c, "tls12_ciphers",
                     "not used with tls_min_version \"1.3\"");
    suites_post(c, obj, "tls13_ciphersuites", &l->tls13_suites, tls13,
                CG_ARRAY_LEN(tls13));
    if (l->tls_min_version != 13)
        suites_post(c, obj, "tls12_ciphers", &l->tls12_ciphers, tls12,
                    CG_ARRAY_LEN(tls12));
}
