/*
 * certgate ca issue client|server: options to struct ca_issue_params,
 * ca_issue(), and a summary of what was written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "cli/ca_cli.h"
#include "core/util.h"

static const char usage[] =
    "usage: certgate ca issue client --cn CN [--email E]... [--san-uri U]...\n"
    "                                [--user NAME] [--device NAME] "
    "[OPTIONS]\n"
    "       certgate ca issue server --dns NAME... [--ip ADDR]... [--cn CN]\n"
    "                                [OPTIONS]\n"
    "  Issues a certificate from the issuing CA: basicConstraints "
    "CA:FALSE,\n"
    "  keyUsage digitalSignature (+keyEncipherment for RSA), EKU "
    "clientAuth\n"
    "  or serverAuth, SKI/AKI, SAN from the options, and the CRL\n"
    "  distribution point when the CA has one. Writes <name>.pem, "
    "<name>.key\n"
    "  (0600) and <name>-chain.pem (the intermediates, root excluded)\n"
    "  where <name> is the CN (server: the first --dns) made file-safe.\n"
    "  --cn CN                  subject common name\n"
    "  --email E                SAN email (repeatable)\n"
    "  --san-uri U              SAN URI (repeatable)\n"
    "  --dns NAME               SAN DNS name (repeatable)\n"
    "  --ip ADDR                SAN IP address (repeatable)\n"
    "  --user NAME              owner; gives the email when --email is "
    "absent\n"
    "  --device NAME            device name recorded with the certificate\n"
    "  --days N                 validity (default 365 client, 825 server)\n"
    "  --key TYPE               ec-p256 (default), ec-p384, rsa-2048,\n"
    "                           rsa-3072, rsa-4096, ed25519\n"
    "  --csr FILE               sign this PEM CSR (its extensions are "
    "ignored;\n"
    "                           CA:TRUE is refused)\n"
    "  --out-dir DIR            where to write (default: current "
    "directory)\n"
    "  --passphrase-file F      encrypt the new key with the first line of "
    "F\n"
    "  --ca-passphrase-file F   passphrase of an encrypted CA key\n"
    "  --p12 FILE               also write a PKCS#12 (cert, key, chain; "
    "0600)\n"
    "  --p12-password-file F    its password (default: generated, printed "
    "once)\n"
    "  --p12-legacy             3DES/SHA-1 form for older macOS, Windows, "
    "Android\n" CA_CLI_COMMON_USAGE;

struct issue_opts {
    struct ca_issue_params p;
    const char *key_pass_file, *ca_pass_file, *p12_pass_file;
};

/* Adds a SAN value after checking its syntax; false on a bad one. */
static bool
name_add(struct cg_strlist *l, enum ca_name_kind kind, const char *v)
{
    char err[CG_ERR_LEN];
    if (ca_name_check(kind, v, err) != 0) {
        fprintf(stderr, "certgate: %s\n", err);
        return false;
    }
    cg_strlist_add(l, v);
    return true;
}

/* One option; returns 0, or 2 on a bad value. */
static int
opt_set(struct issue_opts *o, int c, const char *arg)
{
    struct ca_issue_params *p = &o->p;
    int k;
    switch (c) {
    case 'n':
        p->cn = arg;
        return 0;
    case 'e':
        return name_add(&p->email, CA_NAME_EMAIL, arg) ? 0 : 2;
    case 'U':
        return name_add(&p->uri, CA_NAME_URI, arg) ? 0 : 2;
    case 'N':
        return name_add(&p->dns, CA_NAME_DNS, arg) ? 0 : 2;
    case 'I':
        return name_add(&p->ip, CA_NAME_IP, arg) ? 0 : 2;
    case 'u':
        p->user = arg;
        return 0;
    case 'v':
        p->device = arg;
        return 0;
    case 'D':
        return ca_cli_int(arg, 1, 36500, &p->days) ? 0 : 2;
    case 'k':
        if ((k = ca_key_type_parse(arg)) < 0) {
            fprintf(stderr,
                    "certgate: unknown key type \"%s\" (use one of "
                    "%s)\n",
                    arg, ca_key_type_list());
            return 2;
        }
        p->key = (enum ca_key_type)k;
        return 0;
    case 'r':
        p->csr_path = arg;
        return 0;
    case 'o':
        p->out_dir = arg;
        return 0;
    case 'f':
        p->p12_path = arg;
        return 0;
    case 'l':
        p->p12_legacy = true;
        return 0;
    case 'K':
        o->key_pass_file = arg;
        return 0;
    case 'A':
        o->ca_pass_file = arg;
        return 0;
    case 'W':
        o->p12_pass_file = arg;
        return 0;
    }
    return 2;
}

/* Parses argv (argv[0] is the profile); returns 0, -1 for --help, 2. */
static int
parse(int argc, char **argv, struct ca_cli *c, struct issue_opts *o)
{
    static const struct option opts[] = {
        {"cn", required_argument, 0, 'n'},
        {"email", required_argument, 0, 'e'},
        {"san-uri", required_argument, 0, 'U'},
        {"dns", required_argument, 0, 'N'},
        {"ip", required_argument, 0, 'I'},
        {"user", required_argument, 0, 'u'},
        {"device", required_argument, 0, 'v'},
        {"days", required_argument, 0, 'D'},
        {"key", required_argument, 0, 'k'},
        {"csr", required_argument, 0, 'r'},
        {"out-dir", required_argument, 0, 'o'},
        {"p12", required_argument, 0, 'f'},
        {"p12-password-file", required_argument, 0, 'W'},
        {"p12-legacy", no_argument, 0, 'l'},
        {"passphrase-file", required_argument, 0, 'K'},
        {"ca-passphrase-file", required_argument, 0, 'A'},
        CA_CLI_COMMON_OPTS,
        {0, 0, 0, 0}};
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (ca_cli_common(c, ch, optarg))
            continue;
        if (ch == 'h') {
            fputs(usage, stdout);
            return -1;
        }
        if (ch == '?')
            return ca_cli_badopt(argv, "issue");
        int rc = opt_set(o, ch, optarg);
        if (rc != 0 && ch == 'D')
            return ca_cli_usage("bad --days \"%s\"", optarg);
        if (rc != 0)
            return rc; /* opt_set printed why */
    }
    if (optind != argc)
        return ca_cli_usage("unexpected argument \"%s\"", argv[optind]);
    if (o->p.profile == CA_PROFILE_CLIENT && o->p.cn == NULL)
        return ca_cli_usage("issue client needs --cn");
    if (o->p.profile == CA_PROFILE_SERVER && o->p.dns.n == 0)
        return ca_cli_usage("issue server needs --dns");
    if (o->p.csr_path != NULL && o->p.p12_path != NULL)
        return ca_cli_usage("--p12 needs the private key: not with "
                            "--csr");
    char err[CG_ERR_LEN];
    if (o->p.cn != NULL && ca_name_check(CA_NAME_CN, o->p.cn, err) != 0)
        return ca_cli_usage("--cn: %s", err);
    return 0;
}

static void
print_result(const struct ca_issue_result *r)
{
    char nb[32], na[32];
    cg_time_rfc3339(r->not_before, nb, sizeof(nb));
    cg_time_rfc3339(r->not_after, na, sizeof(na));
    printf("serial: %s\nsubject: %s\nvalid: %s to %s\ncertificate: %s\n",
           r->serial, r->subject, nb, na, r->cert_path);
    if (r->key_path != NULL)
        printf("private key: %s\n", r->key_path);
    if (r->chain_path != NULL)
        printf("chain: %s\n", r->chain_path);
    if (r->p12_path != NULL)
        printf("PKCS#12: %s\n", r->p12_path);
    if (r->p12_pass != NULL)
        printf("PKCS#12 password: %s\n", r->p12_pass);
}

/* Reads the three optional secret files; returns an exit status. */
static int
secrets_read(struct issue_opts *o, char *sec[3])
{
    const char *files[3] = {o->key_pass_file, o->ca_pass_file,
                            o->p12_pass_file};
    for (size_t i = 0; i < 3; i++) {
        int rc = files[i] != NULL ? ca_cli_secret(files[i], &sec[i]) : 0;
        if (rc != 0)
            return rc;
    }
    o->p.key_pass = sec[0];
    o->p.ca_pass = sec[1];
    o->p.p12_pass = sec[2];
    return 0;
}

int
cli_ca_issue(int argc, char **argv)
{
    struct ca_cli c = {0};
    struct issue_opts o = {.p.key = CA_KEY_EC_P256};
    struct ca_issue_result r = {0};
    char *sec[3] = {NULL, NULL, NULL}, err[CG_ERR_LEN];
    int rc;
    if (argc >= 2 && strcmp(argv[1], "client") == 0) {
        o.p.profile = CA_PROFILE_CLIENT;
    } else if (argc >= 2 && strcmp(argv[1], "server") == 0) {
        o.p.profile = CA_PROFILE_SERVER;
    } else if (argc >= 2 &&
               (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return 0;
    } else {
        return ca_cli_usage("ca issue needs client or server");
    }
    rc = parse(argc - 1, argv + 1, &c, &o);
    if (rc == 0)
        rc = secrets_read(&o, sec);
    if (rc == 0)
        rc = ca_cli_open(&c, false);
    if (rc == 0 && ca_issue(c.st, c.data_dir, &o.p, &r, err) != 0)
        rc = ca_cli_fail("%s", err);
    if (rc == 0)
        print_result(&r);
    ca_issue_result_cleanup(&r);
    for (size_t i = 0; i < 3; i++)
        ca_secret_free(sec[i]);
    cg_strlist_clear(&o.p.email);
    cg_strlist_clear(&o.p.uri);
    cg_strlist_clear(&o.p.dns);
    cg_strlist_clear(&o.p.ip);
    ca_cli_close(&c);
    return rc < 0 ? 0 : rc;
}
