/* Identity fields by name, and their values as mapped into headers,
 * MQTT fields, PROXY v2 TLVs and policy. */
#include "ident/ident.h"

#include <string.h>

#include "core/util.h"

static const char *const field_names[] = {
#define CG_FIELD_NAME(e, name) [e] = name,
    CG_FIELDS(CG_FIELD_NAME)
#undef CG_FIELD_NAME
};

int
ident_field_parse(const char *name)
{
    for (int f = 0; f < CG_F_COUNT; f++) {
        if (strcmp(field_names[f], name) == 0)
            return f;
    }
    return -1;
}

const char *
ident_field_name(enum cg_field f)
{
    if ((int)f < 0 || f >= CG_F_COUNT)
        return NULL;
    return field_names[f];
}

/* Appends s unless it is NULL or empty; returns whether it did. */
static bool
put_str(struct cg_buf *out, const char *s)
{
    if (s == NULL || s[0] == '\0')
        return false;
    cg_buf_puts(out, s);
    return true;
}

/* Appends the list joined by ", "; false when it is empty. */
static bool
put_list(struct cg_buf *out, const struct cg_strlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        if (i > 0)
            cg_buf_puts(out, ", ");
        cg_buf_puts(out, l->v[i]);
    }
    return l->n > 0;
}

static bool
put_time(struct cg_buf *out, int64_t t)
{
    char s[32];
    cg_time_rfc3339(t, s, sizeof(s));
    return put_str(out, s);
}

/* The verdict: "SUCCESS", "NONE" or "FAILED:<reason>"; no verdict is
 * NONE (no certificate was presented). */
static bool
put_verify(struct cg_buf *out, const struct cg_verdict *v)
{
    if (v == NULL || v->status == CG_VERIFY_NONE) {
        cg_buf_puts(out, "NONE");
    } else if (v->status == CG_VERIFY_SUCCESS) {
        cg_buf_puts(out, "SUCCESS");
    } else {
        cg_buf_puts(out, "FAILED:");
        cg_buf_puts(out, v->reason != NULL ? v->reason : "unknown");
    }
    return true;
}

/* RFC 9440 Client-Cert: the DER as a structured-field byte sequence. */
static bool
put_client_cert(struct cg_buf *out, const char *crt)
{
    if (crt == NULL || crt[0] == '\0')
        return false;
    cg_buf_putc(out, ':');
    cg_buf_puts(out, crt);
    cg_buf_putc(out, ':');
    return true;
}

static bool
put_pem_urlencoded(struct cg_buf *out, const char *pem)
{
    if (pem == NULL || pem[0] == '\0')
        return false;
    cg_urlencode(out, pem, strlen(pem));
    return true;
}

/* Appends a field of a present identity; false when absent. */
static bool
put_field(const struct cg_identity *id, enum cg_field f, struct cg_buf *out)
{
    switch (f) {
    case CG_F_CN:
        return put_str(out, id->cn);
    case CG_F_DN:
        return put_str(out, id->dn);
    case CG_F_DN_EMQX:
        return put_str(out, id->dn_emqx);
    case CG_F_EMAIL:
        return put_str(out, id->email);
    case CG_F_SAN_EMAIL:
        return put_list(out, &id->san_email);
    case CG_F_SAN_DNS:
        return put_list(out, &id->san_dns);
    case CG_F_SAN_URI:
        return put_list(out, &id->san_uri);
    case CG_F_SAN_IP:
        return put_list(out, &id->san_ip);
    case CG_F_SERIAL:
        return put_str(out, id->serial);
    case CG_F_ISSUER_DN:
        return put_str(out, id->issuer_dn);
    case CG_F_NOT_BEFORE:
        return put_time(out, id->not_before);
    case CG_F_NOT_AFTER:
        return put_time(out, id->not_after);
    case CG_F_SHA256:
        return put_str(out, id->sha256);
    case CG_F_MD5:
        return put_str(out, id->md5);
    case CG_F_CRT:
        return put_str(out, id->crt);
    case CG_F_PEM:
        return put_str(out, id->pem);
    case CG_F_PEM_URLENCODED:
        return put_pem_urlencoded(out, id->pem);
    case CG_F_CLIENT_CERT:
        return put_client_cert(out, id->crt);
    case CG_F_VERIFY:
    case CG_F_COUNT:
        break;
    }
    return false;
}

bool
ident_field_value(const struct cg_identity *id, const struct cg_verdict *v,
                  enum cg_field f, struct cg_buf *out)
{
    if (f == CG_F_VERIFY)
        return put_verify(out, v);
    if (id == NULL)
        return false;
    return put_field(id, f, out);
}
