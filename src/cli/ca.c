/*
 * certgate ca: the built-in certificate authority's commands. This file
 * dispatches and holds init, revoke, crl and export plus the helpers the
 * other ca_*.c files share; issuing is in ca_issue.c, listing in
 * ca_list.c. Exit status: 0 done, 1 refused, 2 bad usage or config.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ca/ca.h"
#include "cli/ca_cli.h"
#include "cli/cli.h"
#include "config/config.h"
#include "core/util.h"
#include "core/xmalloc.h"

static const char usage[] =
    "usage: certgate ca COMMAND [OPTIONS]\n"
    "\n"
    "  init     create the CA (a root, or a root and an issuing "
    "intermediate)\n"
    "  issue    issue a client or server certificate\n"
    "  revoke   revoke a certificate\n"
    "  crl      write the certificate revocation list\n"
    "  list     list issued certificates\n"
    "  show     show one certificate\n"
    "  export   print the CA chain (issuer first, then the root)\n"
    "\n"
    "Run 'certgate ca COMMAND --help' for a command's options.\n";

/* "certgate: <message>" on stderr; returns code (the exit status). */
static int
say(int code, const char *fmt, va_list ap)
{
    fputs("certgate: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    return code;
}

int
ca_cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = say(1, fmt, ap);
    va_end(ap);
    return rc;
}

int
ca_cli_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = say(2, fmt, ap);
    va_end(ap);
    return rc;
}

int
ca_cli_badopt(char **argv, const char *cmd)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    return ca_cli_usage("unknown option or missing value \"%s\" (see "
                        "certgate ca %s --help)",
                        arg, cmd);
}

bool
ca_cli_int(const char *s, int min, int max, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < min || v > max)
        return false;
    *out = (int)v;
    return true;
}

int
ca_cli_secret(const char *path, char **out)
{
    char err[CG_ERR_LEN];
    if (ca_secret_read(path, out, err) != 0)
        return ca_cli_fail("%s", err);
    return 0;
}

bool
ca_cli_common(struct ca_cli *c, int opt, const char *arg)
{
    if (opt == 'd')
        c->data_opt = arg;
    else if (opt == 'c')
        c->config = arg;
    else
        return false;
    return true;
}

/* The data directory: --data, else -c's data_dir, else the default. */
static int
data_dir_resolve(struct ca_cli *c)
{
    if (c->data_opt != NULL) {
        c->data_dir = xstrdup(c->data_opt);
        return 0;
    }
    if (c->config == NULL) {
        c->data_dir = xstrdup("./certgate-data");
        return 0;
    }
    struct cg_config *cfg = NULL;
    struct cg_strlist errors = {0};
    int rc = 0;
    if (config_load(c->config, &cfg, &errors) != 0) {
        for (size_t i = 0; i < errors.n; i++)
            fprintf(stderr, "certgate: %s: %s\n", c->config, errors.v[i]);
        rc = 2;
    } else {
        c->data_dir = xstrdup(cfg->data_dir);
    }
    cg_strlist_clear(&errors);
    config_free(cfg);
    return rc;
}

int
ca_cli_open(struct ca_cli *c, bool create)
{
    char err[CG_ERR_LEN];
    int rc = data_dir_resolve(c);
    if (rc != 0)
        return rc;
    if (!create) {
        char *db = xasprintf("%s/certgate.db", c->data_dir);
        bool found = access(db, F_OK) == 0;
        free(db);
        if (!found)
            return ca_cli_fail("no CA in %s: run certgate ca init first",
                               c->data_dir);
    }
    if (store_open(c->data_dir, &c->st, err) != 0)
        return ca_cli_fail("%s", err);
    return 0;
}

void
ca_cli_close(struct ca_cli *c)
{
    store_close(c->st);
    free(c->data_dir);
    memset(c, 0, sizeof(*c));
}

/* --- init ------------------------------------------------------------- */

static const char init_usage[] =
    "usage: certgate ca init --name NAME [--key TYPE] [--days N]\n"
    "                        [--intermediate] [--crl-url URL]\n"
    "                        [--passphrase-file FILE] [--data DIR] [-c FILE]\n"
    "  Creates the CA: a self-signed root, or with --intermediate a root\n"
    "  and an issuing intermediate signed by it (the root key can then be\n"
    "  moved offline). Files go to DIR/ca/.\n"
    "  --name NAME            CA name (the root's CN)\n"
    "  --key TYPE             ec-p256 (default), ec-p384, rsa-2048, "
    "rsa-3072,\n"
    "                         rsa-4096, ed25519\n"
    "  --days N               validity of the CA certificates (default "
    "3650)\n"
    "  --intermediate         root + issuing intermediate (pathlen 0)\n"
    "  --crl-url URL          CRL distribution point put in issued "
    "certificates\n"
    "  --passphrase-file F    encrypt the CA keys with the first line of "
    "F\n" CA_CLI_COMMON_USAGE;

static int
init_parse(int argc, char **argv, struct ca_cli *c, struct ca_init_params *p,
           const char **pass_file)
{
    static const struct option opts[] = {
        {"name", required_argument, 0, 'n'},
        {"key", required_argument, 0, 'k'},
        {"days", required_argument, 0, 'D'},
        {"intermediate", no_argument, 0, 'i'},
        {"crl-url", required_argument, 0, 'u'},
        {"passphrase-file", required_argument, 0, 'p'},
        CA_CLI_COMMON_OPTS,
        {0, 0, 0, 0}};
    int o, k;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (ca_cli_common(c, o, optarg))
            continue;
        switch (o) {
        case 'n':
            p->name = optarg;
            break;
        case 'k':
            if ((k = ca_key_type_parse(optarg)) < 0)
                return ca_cli_usage("unknown key type \"%s\" "
                                    "(use one of %s)",
                                    optarg, ca_key_type_list());
            p->key = (enum ca_key_type)k;
            break;
        case 'D':
            if (!ca_cli_int(optarg, 1, 36500, &p->days))
                return ca_cli_usage("bad --days \"%s\"", optarg);
            break;
        case 'i':
            p->intermediate = true;
            break;
        case 'u':
            p->crl_url = optarg;
            break;
        case 'p':
            *pass_file = optarg;
            break;
        case 'h':
            fputs(init_usage, stdout);
            return -1;
        default:
            return ca_cli_badopt(argv, "init");
        }
    }
    if (optind != argc)
        return ca_cli_usage("unexpected argument \"%s\"", argv[optind]);
    if (p->name == NULL)
        return ca_cli_usage("--name is required");
    return 0;
}

static void
init_print(const struct ca_init_params *p, const struct ca_init_result *r)
{
    char until[32];
    cg_time_rfc3339(r->not_after, until, sizeof(until));
    printf("created root CA %s (%s, valid until %s)\n"
           "  certificate  %s\n  private key  %s (0600%s)\n",
           r->root_subject, ca_key_type_name(p->key), until, r->root_cert,
           r->root_key, p->passphrase != NULL ? ", encrypted" : "");
    if (r->issuer_cert != NULL) {
        printf("created issuing CA %s, signed by the root\n"
               "  certificate  %s\n  private key  %s (0600%s)\n"
               "The issuing CA signs certificates and CRLs; the root key is "
               "needed only\nto sign a new issuing CA: move %s offline.\n",
               r->issuer_subject, r->issuer_cert, r->issuer_key,
               p->passphrase != NULL ? ", encrypted" : "", r->root_key);
    } else {
        printf("The root signs certificates and CRLs itself.\n");
    }
}

static int
ca_init_cmd(int argc, char **argv)
{
    struct ca_cli c = {0};
    struct ca_init_params p = {.key = CA_KEY_EC_P256};
    struct ca_init_result r = {0};
    const char *pass_file = NULL;
    char *pass = NULL, err[CG_ERR_LEN];
    int rc = init_parse(argc, argv, &c, &p, &pass_file);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    char check[CG_ERR_LEN];
    if (ca_name_check(CA_NAME_CN, p.name, check) != 0)
        return ca_cli_usage("--name: %s", check);
    if (p.crl_url != NULL && ca_name_check(CA_NAME_URI, p.crl_url, check))
        return ca_cli_usage("--crl-url: %s", check);
    if (pass_file != NULL && (rc = ca_cli_secret(pass_file, &pass)) != 0)
        return rc;
    p.passphrase = pass;
    rc = ca_cli_open(&c, true);
    if (rc == 0 && ca_init(c.st, c.data_dir, &p, &r, err) != 0)
        rc = ca_cli_fail("%s", err);
    if (rc == 0)
        init_print(&p, &r);
    ca_init_result_cleanup(&r);
    ca_secret_free(pass);
    ca_cli_close(&c);
    return rc;
}

/* --- revoke ----------------------------------------------------------- */

static const char revoke_usage[] =
    "usage: certgate ca revoke SERIAL [--reason REASON] [--data DIR] "
    "[-c FILE]\n"
    "  Revokes the certificate with SERIAL (hex, as `openssl x509 "
    "-serial`).\n"
    "  Publish the change with `certgate ca crl`.\n"
    "  --reason REASON  unspecified (default), keyCompromise, caCompromise,\n"
    "                   affiliationChanged, superseded, "
    "cessationOfOperation,\n"
    "                   certificateHold, "
    "privilegeWithdrawn\n" CA_CLI_COMMON_USAGE;

/* Hex digits with optional ':' separators. */
static bool
serial_ok(const char *s)
{
    size_t digits = 0;
    for (; *s != '\0'; s++) {
        bool hex = (*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') ||
                   (*s >= 'A' && *s <= 'F');
        if (!hex && *s != ':')
            return false;
        digits += hex;
    }
    return digits > 0 && digits <= 40;
}

static int
ca_revoke_cmd(int argc, char **argv)
{
    static const struct option opts[] = {{"reason", required_argument, 0, 'r'},
                                         CA_CLI_COMMON_OPTS,
                                         {0, 0, 0, 0}};
    struct ca_cli c = {0};
    const char *reason = "unspecified";
    char err[CG_ERR_LEN];
    int o;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (ca_cli_common(&c, o, optarg))
            continue;
        if (o == 'h') {
            fputs(revoke_usage, stdout);
            return 0;
        }
        if (o != 'r')
            return ca_cli_badopt(argv, "revoke");
        if (ca_reason_code(optarg) < 0)
            return ca_cli_usage("unknown reason \"%s\" (use "
                                "one of %s)",
                                optarg, ca_reason_list());
        reason = optarg;
    }
    if (argc - optind != 1)
        return ca_cli_usage("give exactly one SERIAL");
    const char *serial = argv[optind];
    if (!serial_ok(serial))
        return ca_cli_usage("bad serial \"%s\" (hex)", serial);
    int rc = ca_cli_open(&c, false);
    if (rc == 0) {
        int r =
            store_cert_revoke(c.st, serial, reason, (int64_t)time(NULL), err);
        if (r == CG_ENOTFOUND)
            rc = ca_cli_fail("no certificate with serial %s", serial);
        else if (r == CG_EEXIST)
            rc = ca_cli_fail("certificate %s is already revoked", serial);
        else if (r != 0)
            rc = ca_cli_fail("%s", err);
        else
            printf("revoked %s (%s); publish it with: certgate ca crl\n",
                   serial, reason);
    }
    ca_cli_close(&c);
    return rc;
}

/* --- crl and export: PEM to --out (atomic) or stdout ------------------- */

static int
pem_output(const char *out, const char *pem)
{
    char err[CG_ERR_LEN];
    if (out == NULL) {
        fputs(pem, stdout);
        return fflush(stdout) == 0 ? 0 : ca_cli_fail("cannot write stdout");
    }
    if (ca_file_replace(out, pem, strlen(pem), 0644, err) != 0)
        return ca_cli_fail("%s", err);
    return 0;
}

static const char crl_usage[] =
    "usage: certgate ca crl [--out FILE] [--days N] "
    "[--ca-passphrase-file F]\n"
    "                       [--data DIR] [-c FILE]\n"
    "  Writes a CRL signed by the issuing CA listing every certificate it\n"
    "  revoked; each run takes the next CRL number.\n"
    "  --out FILE               write here (atomically); default stdout\n"
    "  --days N                 nextUpdate = now + N days (default 7)\n"
    "  --ca-passphrase-file F   passphrase of an encrypted CA "
    "key\n" CA_CLI_COMMON_USAGE;

static int
ca_crl_cmd(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, 0, 'o'},
        {"days", required_argument, 0, 'D'},
        {"ca-passphrase-file", required_argument, 0, 'P'},
        CA_CLI_COMMON_OPTS,
        {0, 0, 0, 0}};
    struct ca_cli c = {0};
    const char *out = NULL, *pass_file = NULL;
    char *pass = NULL, *pem = NULL, err[CG_ERR_LEN];
    int o, days = 7, rc = 0;
    int64_t number = 0;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (ca_cli_common(&c, o, optarg))
            continue;
        if (o == 'h') {
            fputs(crl_usage, stdout);
            return 0;
        }
        if (o == 'o')
            out = optarg;
        else if (o == 'P')
            pass_file = optarg;
        else if (o != 'D')
            return ca_cli_badopt(argv, "crl");
        else if (!ca_cli_int(optarg, 1, 3650, &days))
            return ca_cli_usage("bad --days \"%s\"", optarg);
    }
    if (optind != argc)
        return ca_cli_usage("unexpected argument \"%s\"", argv[optind]);
    if (pass_file != NULL)
        rc = ca_cli_secret(pass_file, &pass);
    if (rc == 0)
        rc = ca_cli_open(&c, false);
    if (rc == 0 && ca_crl_make(c.st, c.data_dir, pass, days,
                               (int64_t)time(NULL), &pem, &number, err) != 0)
        rc = ca_cli_fail("%s", err);
    if (rc == 0)
        rc = pem_output(out, pem);
    if (rc == 0 && out != NULL)
        printf("wrote CRL number %lld to %s (next update in %d days)\n",
               (long long)number, out, days);
    free(pem);
    ca_secret_free(pass);
    ca_cli_close(&c);
    return rc;
}

static const char export_usage[] =
    "usage: certgate ca export [--out FILE] [--data DIR] [-c FILE]\n"
    "  Prints the CA chain as PEM, issuing CA first, then the root: the\n"
    "  trust anchor for clients and for other gateways.\n"
    "  --out FILE       write here (atomically); default "
    "stdout\n" CA_CLI_COMMON_USAGE;

static int
ca_export_cmd(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, 0, 'o'}, CA_CLI_COMMON_OPTS, {0, 0, 0, 0}};
    struct ca_cli c = {0};
    struct store_ca *chain = NULL;
    size_t n = 0;
    const char *out = NULL;
    char err[CG_ERR_LEN];
    int o;
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (ca_cli_common(&c, o, optarg))
            continue;
        if (o == 'h') {
            fputs(export_usage, stdout);
            return 0;
        }
        if (o != 'o')
            return ca_cli_badopt(argv, "export");
        out = optarg;
    }
    if (optind != argc)
        return ca_cli_usage("unexpected argument \"%s\"", argv[optind]);
    int rc = ca_cli_open(&c, false);
    int r = rc == 0 ? store_ca_chain(c.st, &chain, &n, err) : 0;
    if (rc == 0 && (r == CG_ENOTFOUND || (r == 0 && n == 0)))
        rc = ca_cli_fail("no CA in %s: run certgate ca init first", c.data_dir);
    else if (rc == 0 && r != 0)
        rc = ca_cli_fail("%s", err);
    if (rc == 0) {
        struct cg_buf b;
        cg_buf_init(&b);
        for (size_t i = 0; i < n; i++)
            cg_buf_puts(&b, chain[i].cert_pem);
        rc = pem_output(out, cg_buf_cstr(&b));
        cg_buf_cleanup(&b);
    }
    for (size_t i = 0; i < n; i++)
        store_ca_cleanup(&chain[i]);
    free(chain);
    ca_cli_close(&c);
    return rc;
}

/* --- dispatch --------------------------------------------------------- */

int
cli_ca(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
    } cmds[] = {{"init", ca_init_cmd},     {"issue", cli_ca_issue},
                {"revoke", ca_revoke_cmd}, {"crl", ca_crl_cmd},
                {"list", cli_ca_list},     {"show", cli_ca_show},
                {"export", ca_export_cmd}};
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    for (size_t i = 0; i < CG_ARRAY_LEN(cmds); i++) {
        if (strcmp(cmd, cmds[i].name) == 0)
            return cmds[i].fn(argc - 1, argv + 1);
    }
    return ca_cli_usage("unknown ca command \"%s\" (see certgate ca "
                        "--help)",
                        cmd);
}
