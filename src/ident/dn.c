/*
 * Distinguished-name strings: RFC 4514 and the form EMQX hands to
 * peer_cert_as_username = dn.
 *
 * EMQX form. EMQX takes the DN from esockd_peercert:subject/1, which calls
 * esockd_ssl:peer_cert_subject/1 (emqx/esockd src/esockd_ssl.erl, code
 * inherited from RabbitMQ's rabbit_ssl). We read that source; it:
 *  - lists the RDNs in reverse encoding order joined by ",", the members
 *    of a multi-valued RDN in encoding order joined by "+";
 *  - names types from a fixed table: SN, GIVENNAME, INITIALS,
 *    GENERATIONQUALIFIER, CN, L, ST, O, OU, TITLE, C, SERIALNUMBER,
 *    PSEUDONYM, DC, EMAILADDRESS, UID; any other type is its dotted OID
 *    with the value still as a string (its STREET entry is keyed by the
 *    X.400 integer street-address = 17, never by an OID, so X.520
 *    streetAddress comes out as "2.5.4.9");
 *  - escapes a leading ' ' or '#', a trailing ' ', and '"' '+' ',' ';'
 *    '<' '>' '\' with a backslash, and every byte < 0x20 or >= 0x7e as
 *    "\XX" (uppercase hex): non-ASCII UTF-8 is escaped byte by byte, so
 *    "Zoë" is "Zo\C3\AB" and '~' is "\7E".
 * certgate's cg_rdn carries OpenSSL short names, so EMQX names are mapped
 * from them below; a short name found in neither table is kept as is.
 *
 * RFC 4514 form: types are the short names given by the extractor, or the
 * dotted OID of an unknown type. For such a type RFC 4514 section 2.4
 * asks for '#' and the hex of the DER value; certgate keeps the decoded
 * string, escaped like any other value (as EMQX does), so that one
 * escaping rule covers every value and nothing depends on re-encoding.
 */
#include "ident/ident.h"

#include <string.h>

#include "core/util.h"

struct type_map {
    const char *sn; /* OpenSSL short name */
    const char *to; /* EMQX type name or dotted OID */
};

/* esockd's named types, keyed by OpenSSL short name. */
static const struct type_map emqx_names[] = {
    {"CN", "CN"},
    {"SN", "SN"},
    {"GN", "GIVENNAME"},
    {"initials", "INITIALS"},
    {"generationQualifier", "GENERATIONQUALIFIER"},
    {"L", "L"},
    {"ST", "ST"},
    {"O", "O"},
    {"OU", "OU"},
    {"title", "TITLE"},
    {"C", "C"},
    {"serialNumber", "SERIALNUMBER"},
    {"pseudonym", "PSEUDONYM"},
    {"DC", "DC"},
    {"emailAddress", "EMAILADDRESS"},
    {"UID", "UID"},
};

/* Short names OpenSSL knows and esockd does not: printed as OIDs. */
static const struct type_map emqx_oids[] = {
    {"street", "2.5.4.9"},
    {"description", "2.5.4.13"},
    {"businessCategory", "2.5.4.15"},
    {"postalAddress", "2.5.4.16"},
    {"postalCode", "2.5.4.17"},
    {"telephoneNumber", "2.5.4.20"},
    {"name", "2.5.4.41"},
    {"x500UniqueIdentifier", "2.5.4.45"},
    {"dnQualifier", "2.5.4.46"},
    {"houseIdentifier", "2.5.4.51"},
    {"role", "2.5.4.72"},
    {"organizationIdentifier", "2.5.4.97"},
    {"jurisdictionL", "1.3.6.1.4.1.311.60.2.1.1"},
    {"jurisdictionST", "1.3.6.1.4.1.311.60.2.1.2"},
    {"jurisdictionC", "1.3.6.1.4.1.311.60.2.1.3"},
};

static const char *
map_find(const struct type_map *m, size_t n, const char *sn)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(m[i].sn, sn) == 0)
            return m[i].to;
    }
    return NULL;
}

/* Type name EMQX prints for an OpenSSL short name (or dotted OID). */
static const char *
emqx_type(const char *sn)
{
    const char *t = map_find(emqx_names, CG_ARRAY_LEN(emqx_names), sn);
    if (t == NULL)
        t = map_find(emqx_oids, CG_ARRAY_LEN(emqx_oids), sn);
    return t != NULL ? t : sn;
}

/* True for the bytes RFC 4514 section 2.4 escapes anywhere. */
static bool
special(unsigned char c)
{
    return c == ',' || c == '+' || c == '"' || c == '\\' || c == '<' ||
           c == '>' || c == ';';
}

/* Escapes one value per RFC 4514, or as esockd does when emqx is set
 * (which also writes '~' and every byte >= 0x80 as \XX). */
static void
escape(struct cg_buf *out, const char *value, size_t len, bool emqx)
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        bool edge =
            (i == 0 && (c == ' ' || c == '#')) || (i == len - 1 && c == ' ');
        if (c < 0x20 || c == 0x7f || (emqx && c >= 0x7e)) {
            char hex[3] = {'\\', digits[c >> 4], digits[c & 15]};
            cg_buf_append(out, hex, sizeof(hex));
        } else if (edge || special(c)) {
            char esc[2] = {'\\', (char)c};
            cg_buf_append(out, esc, sizeof(esc));
        } else {
            cg_buf_putc(out, (char)c);
        }
    }
}

void
ident_dn_escape(struct cg_buf *out, const char *value, size_t len)
{
    escape(out, value, len, false);
}

/* Appends the members of one RDN, [from, to), joined by '+'. */
static void
rdn_format(struct cg_buf *out, const struct cg_rdn *rdns, size_t from,
           size_t to, enum cg_dn_style style)
{
    bool emqx = style == CG_DN_EMQX;
    for (size_t i = from; i < to; i++) {
        const struct cg_rdn *r = &rdns[i];
        if (i > from)
            cg_buf_putc(out, '+');
        cg_buf_puts(out, emqx ? emqx_type(r->type) : r->type);
        cg_buf_putc(out, '=');
        escape(out, r->value, r->value_len, emqx);
    }
}

void
ident_dn_format(struct cg_buf *out, const struct cg_rdn *rdns, size_t n,
                enum cg_dn_style style)
{
    /* Both styles put the most specific RDN (encoded last) first. Members
     * of one RDN share a set index and are adjacent in encoding order. */
    size_t to = n;
    while (to > 0) {
        size_t from = to - 1;
        while (from > 0 && rdns[from - 1].set == rdns[to - 1].set)
            from--;
        if (to < n)
            cg_buf_putc(out, ',');
        rdn_format(out, rdns, from, to, style);
        to = from;
    }
}
