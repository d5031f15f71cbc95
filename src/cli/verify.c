/*
 * certgate verify: runs the gateway's verification and identity
 * extraction on a certificate and prints verdict, reason and identity.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "config/config.h"
#include "core/util.h"
#include "tls/tls.h"

static const char usage[] =
    "usage: certgate verify -c FILE --listener NAME [--json] CERT [CHAIN]\n"
    "       certgate verify --ca FILE [--ca FILE]... [--untrusted FILE]\n"
    "                       [--purpose client|server] [--host NAME]\n"
    "                       [--at UNIX_TIME] [--json] CERT\n"
    "  Runs exactly the gateway's verification on CERT (PEM; further\n"
    "  certificates in CERT or CHAIN are untrusted intermediates) and\n"
    "  prints the verdict, the reason code and the identity fields.\n"
    "  Exit 0 accepted, 1 refused, 2 usage error.\n";

struct vopts {
    const char *config, *listener, *untrusted, *host;
    struct cg_strlist cas;
    enum tls_purpose purpose;
    int64_t at;
    bool json;
};

static void
put_kv(struct cg_buf *b, bool json, bool *first, const char *k, const char *v)
{
    if (v == NULL)
        return;
    if (json) {
        cg_buf_printf(b, "%s\"%s\":\"", *first ? "" : ",", k);
        cg_json_escape(b, v, strlen(v));
        cg_buf_putc(b, '"');
    } else {
        cg_buf_printf(b, "%-12s ", k);
        /* never let a certificate value move the cursor or add lines */
        for (const char *p = v; *p; p++)
            cg_buf_putc(b, (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p);
        cg_buf_putc(b, '\n');
    }
    *first = false;
}

static void
put_identity(struct cg_buf *b, const struct cg_identity *id, bool json)
{
    static const enum cg_field fields[] = {
        CG_F_CN,        CG_F_DN,         CG_F_ISSUER_DN, CG_F_EMAIL,
        CG_F_SAN_EMAIL, CG_F_SAN_DNS,    CG_F_SAN_URI,   CG_F_SAN_IP,
        CG_F_SERIAL,    CG_F_NOT_BEFORE, CG_F_NOT_AFTER, CG_F_SHA256,
        CG_F_MD5};
    struct cg_verdict none = {CG_VERIFY_NONE, NULL};
    struct cg_buf v;
    cg_buf_init(&v);
    bool first = true;
    for (size_t i = 0; i < CG_ARRAY_LEN(fields); i++) {
        cg_buf_reset(&v);
        if (ident_field_value(id, &none, fields[i], &v))
            put_kv(b, json, &first, ident_field_name(fields[i]),
                   cg_buf_cstr(&v));
    }
    cg_buf_cleanup(&v);
}

static void
print_result(const struct vopts *o, const struct cg_verdict *v,
             const struct cg_identity *id)
{
    struct cg_buf b;
    cg_buf_init(&b);
    bool ok = v->status == CG_VERIFY_SUCCESS, first = true;
    if (o->json) {
        cg_buf_printf(
            &b, "{\"verdict\":\"%s\",\"reason\":", ok ? "accepted" : "refused");
        if (ok)
            cg_buf_puts(&b, "null");
        else
            cg_buf_printf(&b, "\"%s\"", v->reason);
        cg_buf_puts(&b, ",\"identity\":");
        if (id != NULL) {
            cg_buf_putc(&b, '{');
            put_identity(&b, id, true);
            cg_buf_putc(&b, '}');
        } else {
            cg_buf_puts(&b, "null");
        }
        cg_buf_puts(&b, "}\n");
    } else {
        put_kv(&b, false, &first, "verdict", ok ? "accepted" : "refused");
        if (!ok)
            put_kv(&b, false, &first, "reason", v->reason);
        if (id != NULL)
            put_identity(&b, id, false);
    }
    fwrite(cg_buf_head(&b), 1, cg_buf_pending(&b), stdout);
    cg_buf_cleanup(&b);
}

static int
parse_opts(int argc, char **argv, struct vopts *o)
{
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},
        {"listener", required_argument, 0, 'l'},
        {"ca", required_argument, 0, 'a'},
        {"untrusted", required_argument, 0, 'u'},
        {"purpose", required_argument, 0, 'p'},
        {"host", required_argument, 0, 'H'},
        {"at", required_argument, 0, 't'},
        {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int c;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 'l':
            o->listener = optarg;
            break;
        case 'a':
            cg_strlist_add(&o->cas, optarg);
            break;
        case 'u':
            o->untrusted = optarg;
            break;
        case 'p':
            if (strcmp(optarg, "client") == 0)
                o->purpose = TLS_PURPOSE_CLIENT;
            else if (strcmp(optarg, "server") == 0)
                o->purpose = TLS_PURPOSE_SERVER;
            else
                return -1;
            break;
        case 'H':
            o->host = optarg;
            break;
        case 't':
            o->at = strtoll(optarg, &end, 10);
            if (*end != '\0' || o->at <= 0)
                return -1;
            break;
        case 'j':
            o->json = true;
            break;
        case 'h':
            printf("%s", usage);
            exit(0);
        default:
            return -1;
        }
    }
    return 0;
}

/* Resolves the trust and depth of a listener (its first certificate
 * entry's client_auth, as a connection without SNI gets). */
static int
listener_trust(const struct vopts *o, const char *cert, struct tls_trust **t,
               int *depth)
{
    struct cg_config *cfg = NULL;
    struct cg_strlist errors = {0};
    char err[CG_ERR_LEN];
    int rc = 2;
    (void)cert;
    if (config_load(o->config, &cfg, &errors) != 0) {
        for (size_t i = 0; i < errors.n; i++)
            fprintf(stderr, "%s\n", errors.v[i]);
        goto out;
    }
    const struct cg_listener_cfg *lc = config_listener_find(cfg, o->listener);
    if (lc == NULL) {
        fprintf(stderr, "certgate: no listener named \"%s\" in %s\n",
                o->listener, o->config);
        goto out;
    }
    const struct cg_client_auth_cfg *ca =
        lc->n_certs > 0 && lc->certs[0].has_client_auth
            ? &lc->certs[0].client_auth
            : &lc->client_auth;
    if (!ca->enabled) {
        fprintf(stderr,
                "certgate: listener \"%s\" does not verify client "
                "certificates (client_auth is off)\n",
                o->listener);
        rc = 1;
        goto out;
    }
    const struct cg_trust_cfg *tc = config_trust_find(cfg, ca->trust);
    if (tls_trust_new(tc, cfg->data_dir, t, err) != 0) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    *depth = ca->verify_depth;
    rc = 0;
out:
    cg_strlist_clear(&errors);
    config_free(cfg);
    return rc;
}

int
cli_verify(int argc, char **argv)
{
    struct vopts o = {.purpose = TLS_PURPOSE_CLIENT};
    struct tls_trust *t = NULL;
    struct cg_identity *id = NULL;
    char err[CG_ERR_LEN];
    int rc = 2, depth = 4;
    tls_global_init();
    if (parse_opts(argc, argv, &o) != 0)
        goto usage;
    int nargs = argc - optind;
    const char *cert = nargs >= 1 ? argv[optind] : NULL;
    const char *chain = nargs == 2 ? argv[optind + 1] : o.untrusted;
    if (o.config != NULL) {
        if (o.listener == NULL || o.cas.n > 0 || nargs < 1 || nargs > 2)
            goto usage;
        rc = listener_trust(&o, cert, &t, &depth);
        if (rc != 0)
            goto out;
    } else {
        if (o.cas.n == 0 || nargs != 1 || o.listener != NULL)
            goto usage;
        struct cg_trust_cfg tc = {.ca_files = o.cas, .stale_reject = true};
        if (tls_trust_new(&tc, NULL, &t, err) != 0) {
            fprintf(stderr, "certgate: %s\n", err);
            goto out;
        }
    }
    struct tls_verify_params p = {o.purpose, depth, o.at, o.host};
    struct cg_verdict v;
    if (tls_verify_files(t, cert, chain, &p, &v, &id, err) != 0) {
        fprintf(stderr, "certgate: %s\n", err);
        rc = 2;
        goto out;
    }
    print_result(&o, &v, id);
    rc = v.status == CG_VERIFY_SUCCESS ? 0 : 1;
    goto out;
usage:
    fprintf(stderr, "%s", usage);
    rc = 2;
out:
    ident_free(id);
    tls_trust_free(t);
    cg_strlist_clear(&o.cas);
    return rc;
}
