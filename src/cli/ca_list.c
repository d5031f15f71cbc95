/*
 * certgate ca list / ca show: issued certificates from the store, as a
 * table or record (control bytes shown as '?') or as JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/ca.h"
#include "cli/ca_cli.h"
#include "cli/cli.h"
#include "core/util.h"

static const char list_usage[] =
    "usage: certgate ca list [--status valid|revoked|expired] [--user U]\n"
    "                        [--json] [--data DIR] [-c FILE]\n"
    "  Lists issued certificates.\n"
    "  --status S       valid (not revoked, not expired), revoked, expired\n"
    "  --user U         only certificates owned by user U\n"
    "  --json           a JSON array of objects\n" CA_CLI_COMMON_USAGE;

static const char show_usage[] =
    "usage: certgate ca show SERIAL [--json] [--pem] [--data DIR] [-c "
    "FILE]\n"
    "  Shows one issued certificate.\n"
    "  --json           a JSON object (with the PEM)\n"
    "  --pem            print the certificate PEM only\n" CA_CLI_COMMON_USAGE;

static void
json_str(struct cg_buf *b, const char *key, const char *v)
{
    cg_buf_printf(b, ",\"%s\":", key);
    if (v == NULL) {
        cg_buf_puts(b, "null");
        return;
    }
    cg_buf_putc(b, '"');
    cg_json_escape(b, v, strlen(v));
    cg_buf_putc(b, '"');
}

static void
json_list(struct cg_buf *b, const char *key, const struct cg_strlist *l)
{
    cg_buf_printf(b, ",\"%s\":[", key);
    for (size_t i = 0; i < l->n; i++) {
        cg_buf_puts(b, i > 0 ? ",\"" : "\"");
        cg_json_escape(b, l->v[i], strlen(l->v[i]));
        cg_buf_putc(b, '"');
    }
    cg_buf_putc(b, ']');
}

static void
json_time(struct cg_buf *b, const char *key, int64_t t)
{
    char ts[32];
    cg_time_rfc3339(t, ts, sizeof(ts));
    json_str(b, key, t != 0 ? ts : NULL);
}

/* One certificate as a JSON object. */
static void
cert_json(struct cg_buf *b, const struct store_cert *c, int64_t now, bool pem)
{
    cg_buf_printf(b, "{\"serial\":\"%s\"", c->serial);
    json_str(b, "status", cli_cert_state(c, now));
    json_str(b, "subject", c->subject);
    json_str(b, "profile", c->profile);
    json_str(b, "owner", c->owner);
    json_str(b, "device", c->device);
    json_time(b, "not_before", c->not_before);
    json_time(b, "not_after", c->not_after);
    json_time(b, "revoked_at", c->revoked_at);
    json_str(b, "revocation_reason", c->revocation_reason);
    json_list(b, "san_email", &c->san_email);
    json_list(b, "san_dns", &c->san_dns);
    json_list(b, "san_uri", &c->san_uri);
    json_list(b, "san_ip", &c->san_ip);
    if (pem)
        json_str(b, "pem", c->pem);
    cg_buf_putc(b, '}');
}

/* The --status and --user options as a store filter. */
static int
list_parse(int argc, char **argv, struct ca_cli *c, struct store_cert_filter *f,
           bool *json)
{
    static const struct option opts[] = {{"status", required_argument, 0, 's'},
                                         {"user", required_argument, 0, 'u'},
                                         {"json", no_argument, 0, 'j'},
                                         CA_CLI_COMMON_OPTS,
                                         {0, 0, 0, 0}};
    int o;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (ca_cli_common(c, o, optarg))
            continue;
        if (o == 'h') {
            fputs(list_usage, stdout);
            return -1;
        } else if (o == 'j') {
            *json = true;
        } else if (o == 'u') {
            f->owner = optarg;
        } else if (o != 's') {
            return ca_cli_badopt(argv, "list");
        } else if (strcmp(optarg, "valid") == 0) {
            f->status = STORE_CERT_VALID;
            f->unexpired_only = true;
        } else if (strcmp(optarg, "revoked") == 0) {
            f->status = STORE_CERT_REVOKED;
        } else if (strcmp(optarg, "expired") == 0) {
            f->status = STORE_CERT_VALID;
            f->expired_only = true;
        } else {
            return ca_cli_usage("bad --status \"%s\" (valid, revoked or "
                                "expired)",
                                optarg);
        }
    }
    if (optind != argc)
        return ca_cli_usage("unexpected argument \"%s\"", argv[optind]);
    return 0;
}

static void
list_print(const struct store_cert *certs, size_t n, int64_t now, bool json)
{
    struct cg_buf b;
    cg_buf_init(&b);
    if (json)
        cg_buf_putc(&b, '[');
    else
        cg_buf_printf(&b, "%-32s %-8s %-20s %-7s %-12s %s\n", "SERIAL",
                      "STATUS", "NOT AFTER", "PROFILE", "OWNER", "SUBJECT");
    for (size_t i = 0; i < n; i++) {
        const struct store_cert *c = &certs[i];
        if (json) {
            if (i > 0)
                cg_buf_putc(&b, ',');
            cert_json(&b, c, now, false);
            continue;
        }
        char na[32];
        cg_time_rfc3339(c->not_after, na, sizeof(na));
        cg_buf_printf(&b, "%-32s %-8s %-20s %-7s ", c->serial,
                      cli_cert_state(c, now), na, c->profile ? c->profile : "");
        size_t mark = cg_buf_pending(&b);
        cli_put_text(&b, c->owner != NULL ? c->owner : "-");
        for (size_t w = cg_buf_pending(&b) - mark; w < 13; w++)
            cg_buf_putc(&b, ' ');
        cli_put_text(&b, c->subject);
        cg_buf_putc(&b, '\n');
    }
    if (json)
        cg_buf_puts(&b, "]\n");
    fwrite(cg_buf_head(&b), 1, cg_buf_pending(&b), stdout);
    cg_buf_cleanup(&b);
}

int
cli_ca_list(int argc, char **argv)
{
    struct ca_cli c = {0};
    struct store_cert_filter f = {.status = -1, .now = (int64_t)time(NULL)};
    struct store_cert *certs = NULL;
    size_t n = 0;
    bool json = false;
    char err[CG_ERR_LEN];
    int rc = list_parse(argc, argv, &c, &f, &json);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    rc = ca_cli_open(&c, false);
    if (rc == 0 && store_cert_list(c.st, &f, &certs, &n, err) != 0)
        rc = ca_cli_fail("%s", err);
    if (rc == 0)
        list_print(certs, n, f.now, json);
    for (size_t i = 0; i < n; i++)
        store_cert_cleanup(&certs[i]);
    free(certs);
    ca_cli_close(&c);
    return rc;
}

/* A record line: "key         value" (value made safe). */
static void
show_line(struct cg_buf *b, const char *key, const char *v)
{
    if (v == NULL)
        return;
    cg_buf_printf(b, "%-12s ", key);
    cli_put_text(b, v);
    cg_buf_putc(b, '\n');
}

static void
show_text(struct cg_buf *b, const struct store_cert *c, int64_t now)
{
    char nb[32], na[32], ra[32];
    cg_time_rfc3339(c->not_before, nb, sizeof(nb));
    cg_time_rfc3339(c->not_after, na, sizeof(na));
    cg_time_rfc3339(c->revoked_at, ra, sizeof(ra));
    show_line(b, "serial", c->serial);
    show_line(b, "status", cli_cert_state(c, now));
    show_line(b, "subject", c->subject);
    show_line(b, "profile", c->profile);
    show_line(b, "owner", c->owner);
    show_line(b, "device", c->device);
    show_line(b, "not before", nb);
    show_line(b, "not after", na);
    show_line(b, "revoked at", c->revoked_at != 0 ? ra : NULL);
    show_line(b, "reason", c->revocation_reason);
    const struct cg_strlist *lists[] = {&c->san_email, &c->san_dns, &c->san_uri,
                                        &c->san_ip};
    static const char *const names[] = {"san email", "san dns", "san uri",
                                        "san ip"};
    for (size_t k = 0; k < 4; k++) {
        for (size_t i = 0; i < lists[k]->n; i++)
            show_line(b, names[k], lists[k]->v[i]);
    }
}

int
cli_ca_show(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, 0, 'j'},
                                         {"pem", no_argument, 0, 'p'},
                                         CA_CLI_COMMON_OPTS,
                                         {0, 0, 0, 0}};
    struct ca_cli c = {0};
    struct store_cert cert;
    bool json = false, pem = false;
    char err[CG_ERR_LEN];
    int o;
    memset(&cert, 0, sizeof(cert));
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (ca_cli_common(&c, o, optarg))
            continue;
        if (o == 'h') {
            fputs(show_usage, stdout);
            return 0;
        }
        if (o != 'j' && o != 'p')
            return ca_cli_badopt(argv, "show");
        *(o == 'j' ? &json : &pem) = true;
    }
    if (argc - optind != 1)
        return ca_cli_usage("give exactly one SERIAL");
    const char *serial = argv[optind];
    int rc = ca_cli_open(&c, false);
    int r = rc == 0 ? store_cert_get(c.st, serial, &cert, err) : 0;
    if (rc == 0 && r == CG_ENOTFOUND)
        rc = ca_cli_fail("no certificate with serial %s", serial);
    else if (rc == 0 && r != 0)
        rc = ca_cli_fail("%s", err);
    if (rc == 0) {
        struct cg_buf b;
        cg_buf_init(&b);
        if (json)
            cert_json(&b, &cert, (int64_t)time(NULL), true);
        else if (pem)
            cg_buf_puts(&b, cert.pem);
        else
            show_text(&b, &cert, (int64_t)time(NULL));
        if (json)
            cg_buf_putc(&b, '\n');
        fwrite(cg_buf_head(&b), 1, cg_buf_pending(&b), stdout);
        cg_buf_cleanup(&b);
    }
    store_cert_cleanup(&cert);
    ca_cli_close(&c);
    return rc;
}
