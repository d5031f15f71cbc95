/*
 * certgate demo: one command from a fresh checkout to a working gateway.
 * Creates (or reuses) DIR with a CA, a server certificate for localhost,
 * client certificates for alice (valid), bob (revoked) and carol
 * (expired), a config, and runs the gateway in front of the built-in echo
 * upstream. DIR is also the data directory (certgate ca ... --data DIR).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ca/ca.h"
#include "cli/cli.h"
#include "core/xmalloc.h"
#include "loop/server.h"
#include "store/store.h"

static const char usage[] =
    "usage: certgate demo [--dir DIR] [--listen ADDR:PORT]\n"
    "  Creates (or reuses) DIR (default ./certgate-demo) with a CA, a\n"
    "  server certificate for localhost, client certificates for alice\n"
    "  (valid), bob (revoked) and carol (expired), and runs the gateway on\n"
    "  ADDR:PORT (default 127.0.0.1:8443) in front of an upstream that\n"
    "  answers with the identity it received. Ctrl-C stops it.\n";

struct demo {
    const char *dir;
    const char *listen;
    struct store *st;
    char err[CG_ERR_LEN];
};

static bool
exists(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* Renames DIR/from to DIR/to. */
static int
move(const char *dir, const char *from, const char *to, char *err)
{
    char a[4096], b[4096];
    snprintf(a, sizeof(a), "%s/%s", dir, from);
    snprintf(b, sizeof(b), "%s/%s", dir, to);
    if (rename(a, b) != 0)
        return cg_seterr(err, CG_EIO, "rename %s: %s", a, strerror(errno));
    return 0;
}

static int
add_user(struct demo *d, const char *name, const char *email)
{
    struct store_user u = {.name = (char *)name,
                           .email = (char *)email,
                           .role = "user",
                           .status = STORE_USER_ACTIVE};
    int rc = store_user_add(d->st, &u, d->err);
    return rc == CG_EEXIST ? 0 : rc;
}

/* Issues one client certificate for user name; fills the result. */
static int
issue_client(struct demo *d, const char *name, int64_t now, int days,
             const char *p12, struct ca_issue_result *r)
{
    struct ca_issue_params p = {.profile = CA_PROFILE_CLIENT,
                                .cn = name,
                                .user = name,
                                .device = "demo",
                                .days = days,
                                .key = CA_KEY_EC_P256,
                                .out_dir = d->dir,
                                .p12_path = p12,
                                .now = now};
    return ca_issue(d->st, d->dir, &p, r, d->err);
}

/* Writes DIR/name with mode. */
static int
put_file(struct demo *d, const char *name, const char *text, unsigned mode)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", d->dir, name);
    return ca_file_replace(path, text, strlen(text), mode, d->err);
}

/* ca.pem: the whole CA chain, for clients (curl --cacert). */
static int
write_ca_pem(struct demo *d)
{
    struct store_ca *chain = NULL;
    size_t n = 0;
    int rc = store_ca_chain(d->st, &chain, &n, d->err);
    if (rc != 0)
        return rc;
    struct cg_buf b;
    cg_buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        cg_buf_puts(&b, chain[i].cert_pem);
        store_ca_cleanup(&chain[i]);
    }
    free(chain);
    rc = put_file(d, "ca.pem", cg_buf_cstr(&b), 0644);
    cg_buf_cleanup(&b);
    return rc;
}

static int
make_server(struct demo *d)
{
    struct ca_issue_params p = {
        .profile = CA_PROFILE_SERVER, .key = CA_KEY_EC_P256, .out_dir = d->dir};
    struct ca_issue_result r = {0};
    cg_strlist_add(&p.dns, "localhost");
    cg_strlist_add(&p.ip, "127.0.0.1");
    int rc = ca_issue(d->st, d->dir, &p, &r, d->err);
    if (rc == 0)
        rc = move(d->dir, "localhost.pem", "server.pem", d->err);
    if (rc == 0)
        rc = move(d->dir, "localhost.key", "server.key", d->err);
    cg_strlist_clear(&p.dns);
    cg_strlist_clear(&p.ip);
    ca_issue_result_cleanup(&r);
    return rc;
}

/* alice (valid, with a PKCS#12), bob (revoked), carol (expired). */
static int
make_clients(struct demo *d)
{
    struct ca_issue_result r = {0};
    char p12[4096];
    int64_t now = (int64_t)time(NULL);
    int rc = add_user(d, "alice", "alice@example.com");
    rc = rc ? rc : add_user(d, "bob", "bob@example.com");
    rc = rc ? rc : add_user(d, "carol", "carol@example.com");
    snprintf(p12, sizeof(p12), "%s/alice.p12", d->dir);
    rc = rc ? rc : issue_client(d, "alice", 0, 365, p12, &r);
    if (rc == 0) {
        char line[256];
        snprintf(line, sizeof(line), "%s\n", r.p12_pass);
        rc = put_file(d, "p12-password.txt", line, 0600);
    }
    ca_issue_result_cleanup(&r);
    memset(&r, 0, sizeof(r));
    rc = rc ? rc : issue_client(d, "bob", 0, 365, NULL, &r);
    if (rc == 0)
        rc = store_cert_revoke(d->st, r.serial, "keyCompromise", now, d->err);
    ca_issue_result_cleanup(&r);
    memset(&r, 0, sizeof(r));
    /* issued 60 days ago for 30 days: expired a month ago */
    rc = rc ? rc : issue_client(d, "carol", now - 60 * 86400, 30, NULL, &r);
    ca_issue_result_cleanup(&r);
    return rc;
}

static int
write_config(struct demo *d)
{
    char *json = xasprintf(
        "{\n"
        "  \"data_dir\": \".\",\n"
        "  \"ports_file\": \"ports.json\",\n"
        "  \"pid_file\": \"certgate.pid\",\n"
        "  \"trust\": { \"demo\": { \"builtin_ca\": true } },\n"
        "  \"listeners\": [\n"
        "    { \"name\": \"web\", \"kind\": \"https\", \"listen\": \"%s\",\n"
        "      \"certificates\": [ { \"cert\": \"server.pem\", "
        "\"key\": \"server.key\" } ],\n"
        "      \"client_auth\": { \"enabled\": true, \"mode\": \"optional\", "
        "\"trust\": \"demo\" },\n"
        "      \"routes\": [\n"
        "        { \"path\": \"/\", \"upstream\": \"builtin:echo\" },\n"
        "        { \"path\": \"/private\", \"upstream\": \"builtin:echo\",\n"
        "          \"require_verified\": true,\n"
        "          \"allow\": { \"email_domain\": [\"example.com\"] } } ] } ]\n"
        "}\n",
        d->listen);
    int rc = put_file(d, "certgate.json", json, 0644);
    free(json);
    return rc;
}

/* Makes whatever the demo directory still lacks. */
static int
prepare(struct demo *d)
{
    struct store_ca ca = {0};
    int rc = store_ca_get_issuer(d->st, &ca, d->err);
    store_ca_cleanup(&ca);
    if (rc == CG_ENOTFOUND) {
        struct ca_init_params p = {.name = "certgate demo CA",
                                   .key = CA_KEY_EC_P256};
        struct ca_init_result r = {0};
        rc = ca_init(d->st, d->dir, &p, &r, d->err);
        ca_init_result_cleanup(&r);
    }
    if (rc == 0 && !exists(d->dir, "ca.pem"))
        rc = write_ca_pem(d);
    if (rc == 0 && !exists(d->dir, "server.pem"))
        rc = make_server(d);
    if (rc == 0 && !(exists(d->dir, "alice.pem") && exists(d->dir, "bob.pem") &&
                     exists(d->dir, "carol.pem")))
        rc = make_clients(d);
    return rc ? rc : write_config(d);
}

static void
print_intro(const struct demo *d)
{
    const char *port = strrchr(d->listen, ':');
    port = port ? port + 1 : "8443";
    if (strcmp(port, "0") == 0)
        port = "PORT"; /* chosen at start: see ports.json */
    char pw[256] = "(see p12-password.txt)", path[4096];
    snprintf(path, sizeof(path), "%s/p12-password.txt", d->dir);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        if (fgets(pw, sizeof(pw), f) != NULL)
            pw[strcspn(pw, "\r\n")] = '\0';
        fclose(f);
    }
    const char *D = d->dir;
    printf("certgate demo on https://localhost:%s  (files and data in %s/)\n"
           "\nTry:\n",
           port, D);
    static const char *const who[][2] = {
        {"alice", "valid: X-Client-Verify: SUCCESS and her identity"},
        {"bob", "revoked: FAILED:revoked"},
        {"carol", "expired: FAILED:expired"}};
    for (int i = 0; i < 3; i++)
        printf("  # %s\n  curl --cacert %s/ca.pem --cert %s/%s.pem "
               "--key %s/%s.key https://localhost:%s/\n",
               who[i][1], D, D, who[i][0], D, who[i][0], port);
    printf("  # no certificate: 403 on /private\n"
           "  curl --cacert %s/ca.pem https://localhost:%s/private\n"
           "\nBrowser: import %s/alice.p12 (password: %s) and trust %s/ca.pem,"
           "\nthen open https://localhost:%s/\n"
           "Manage: certgate ca list --data %s | certgate ca revoke --data %s "
           "SERIAL\n\n",
           D, port, D, pw, D, port, D, D);
    fflush(stdout);
}

int
cli_demo(int argc, char **argv)
{
    static const struct option opts[] = {{"dir", required_argument, 0, 'd'},
                                         {"listen", required_argument, 0, 'l'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    struct demo d = {.dir = "certgate-demo", .listen = "127.0.0.1:8443"};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'd')
            d.dir = optarg;
        else if (c == 'l')
            d.listen = optarg;
        else if (c == 'h')
            return printf("%s", usage), 0;
        else
            return fprintf(stderr, "%s", usage), 2;
    }
    if (optind != argc)
        return fprintf(stderr, "%s", usage), 2;
    if (mkdir(d.dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "certgate: cannot create %s: %s\n", d.dir,
                strerror(errno));
        return 1;
    }
    char *abs = realpath(d.dir, NULL);
    d.dir = abs;
    int rc = store_open(d.dir, &d.st, d.err);
    if (rc == 0)
        rc = prepare(&d);
    store_close(d.st);
    if (rc != 0) {
        fprintf(stderr, "certgate: demo: %s\n", d.err);
        free(abs);
        return 1;
    }
    print_intro(&d);
    char *cfg = xasprintf("%s/certgate.json", d.dir);
    rc = server_run(cfg);
    free(cfg);
    free(abs);
    return rc;
}
