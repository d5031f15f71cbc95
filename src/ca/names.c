/*
 * Pure tables and checks of the CA: key type and revocation reason names,
 * the syntax of names going into certificates, output file names.
 */
#include <arpa/inet.h>
#include <string.h>

#include "ca/ca.h"
#include "core/util.h"

static const char *const key_names[] = {
#define CA_KEY_NAME(e, name) name,
    CA_KEY_TYPES(CA_KEY_NAME)
#undef CA_KEY_NAME
};

int
ca_key_type_parse(const char *s)
{
    for (size_t i = 0; i < CG_ARRAY_LEN(key_names); i++) {
        if (strcmp(s, key_names[i]) == 0)
            return (int)i;
    }
    return -1;
}

const char *
ca_key_type_name(enum ca_key_type t)
{
    return (size_t)t < CG_ARRAY_LEN(key_names) ? key_names[t] : "?";
}

const char *
ca_key_type_list(void)
{
#define CA_KEY_LIST(e, name) ", " name
    static const char list[] = CA_KEY_TYPES(CA_KEY_LIST);
#undef CA_KEY_LIST
    return list + 2; /* without the first ", " */
}

static const struct {
    const char *name;
    int code;
} reasons[] = {
#define CA_REASON_ROW(name, code) {name, code},
    CA_REASONS(CA_REASON_ROW)
#undef CA_REASON_ROW
};

int
ca_reason_code(const char *name)
{
    for (size_t i = 0; i < CG_ARRAY_LEN(reasons); i++) {
        if (strcmp(name, reasons[i].name) == 0)
            return reasons[i].code;
    }
    return -1;
}

const char *
ca_reason_list(void)
{
#define CA_REASON_LIST(name, code) ", " name
    static const char list[] = CA_REASONS(CA_REASON_LIST);
#undef CA_REASON_LIST
    return list + 2;
}

/* LDH labels of 1..63 bytes, total <= 253, optional leading "*." */
static bool
dns_ok(const char *s)
{
    size_t len = strlen(s), label = 0;
    if (strncmp(s, "*.", 2) == 0)
        s += 2, len -= 2;
    if (len == 0 || len > 253)
        return false;
    for (const char *p = s;; p++) {
        if (*p == '.' || *p == '\0') {
            if (label == 0 || label > 63 || p[-1] == '-' || p[-label] == '-')
                return false;
            if (*p == '\0')
                return true;
            label = 0;
            continue;
        }
        bool ldh = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                   (*p >= '0' && *p <= '9') || *p == '-';
        if (!ldh)
            return false;
        label++;
    }
}

static bool
email_ok(const char *s)
{
    const char *at = strchr(s, '@');
    return at != NULL && at != s && at[1] != '\0' &&
           strchr(at + 1, '@') == NULL && strchr(s, ' ') == NULL &&
           dns_ok(at + 1) && strncmp(at + 1, "*.", 2) != 0;
}

/* RFC 3986 scheme ":" and something after it, no spaces. */
static bool
uri_ok(const char *s)
{
    const char *colon = strchr(s, ':');
    if (colon == NULL || colon == s || colon[1] == '\0' ||
        strchr(s, ' ') != NULL)
        return false;
    for (const char *p = s; p < colon; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (p > s && ((*p >= '0' && *p <= '9') || *p == '+' ||
                             *p == '-' || *p == '.'));
        if (!ok)
            return false;
    }
    return true;
}

static bool
ip_ok(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int
ca_name_check(enum ca_name_kind kind, const char *value, char *err)
{
    static const char *const what[] = {"email address", "DNS name", "URI",
                                       "IP address", "common name"};
    size_t len = strlen(value);
    bool ok = len > 0 && !cg_has_ctl(value, len);
    /* SAN names are IA5String: ASCII only (IDNs go in as A-labels) */
    for (size_t i = 0; ok && kind != CA_NAME_CN && i < len; i++)
        ok = (unsigned char)value[i] < 0x80;
    if (ok) {
        switch (kind) {
        case CA_NAME_EMAIL:
            ok = email_ok(value);
            break;
        case CA_NAME_DNS:
            ok = dns_ok(value);
            break;
        case CA_NAME_URI:
            ok = uri_ok(value);
            break;
        case CA_NAME_IP:
            ok = ip_ok(value);
            break;
        case CA_NAME_CN:
            ok = len <= 64 && cg_utf8_valid(value, len);
            break;
        }
    }
    if (ok)
        return 0;
    return cg_seterr(err, CG_EINVAL, "invalid %s \"%s\"", what[kind],
                     cg_has_ctl(value, len) ? "(control characters)" : value);
}

void
ca_file_name(const char *s, char *out, size_t n)
{
    size_t i = 0;
    for (; s[i] != '\0' && i + 1 < n; i++) {
        char c = s[i];
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                    (c == '.' && i > 0);
        out[i] = keep ? c : '_';
    }
    if (n > 0)
        out[i] = '\0';
    if (i == 0 && n > 4)
        memcpy(out, "cert", 5);
}
