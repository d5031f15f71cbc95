/*
 * certgate user: the accounts that certificates belong to (add, list,
 * show, passwd, disable, enable, delete). Passwords come from stdin and
 * are never printed; stdout carries only the result.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "config/config.h"
#include "core/util.h"
#include "core/xmalloc.h"
#include "store/password.h"
#include "store/store.h"

#define USER_DEFAULT_DATA "./certgate-data"
#define USER_NAME_MAX 64
#define USER_EMAIL_MAX 254
#define USER_PASSWORD_MAX 1024
/* RFC 5280 reason given to the certificates of a deleted user. */
#define USER_DELETE_REASON "cessationOfOperation"

#define USER_COMMON                                                            \
    "  --data DIR      data directory (default: data_dir of -c FILE, else\n"   \
    "                  " USER_DEFAULT_DATA ")\n"                               \
    "  -c FILE         config file\n"

static const char usage[] =
    "usage: certgate user COMMAND [OPTIONS]\n"
    "\n"
    "  add NAME --email E [--role admin|user] [--password-stdin]\n"
    "  list [--json]\n"
    "  show NAME [--json]\n"
    "  passwd NAME          read the new password from stdin (one line)\n"
    "  disable NAME\n"
    "  enable NAME\n"
    "  delete NAME [--revoke-certs]\n"
    "\n" USER_COMMON "\n"
    "Run 'certgate user COMMAND --help' for a command's options.\n";

/* Options; bits say which a command accepts. */
enum {
    O_EMAIL = 1 << 0,
    O_ROLE = 1 << 1,
    O_PWSTDIN = 1 << 2,
    O_JSON = 1 << 3,
    O_REVOKE = 1 << 4,
};

struct uopts {
    const char *data, *config, *email, *role, *name;
    bool json, password_stdin, revoke_certs;
    unsigned given; /* O_* bits seen */
};

struct ucmd {
    const char *name;
    int (*fn)(struct store *s, const struct uopts *o);
    unsigned allowed; /* O_* bits */
    bool takes_name;
    const char *usage;
};

/* ---- input ---------------------------------------------------------- */

/* Exit status for a store error: bad input is usage (2), the rest is a
 * refused operation (1). */
static int
status_of(int rc)
{
    return rc == CG_EINVAL ? 2 : 1;
}

static bool
valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > USER_NAME_MAX)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || strchr("._@-", c) != NULL))
            return false;
    }
    return true;
}

/* One '@' between a non-empty local part and domain; no spaces or
 * control bytes; valid UTF-8; at most 254 bytes. */
static bool
valid_email(const char *s)
{
    size_t n = strlen(s);
    const char *at = strchr(s, '@');
    if (n > USER_EMAIL_MAX || at == NULL || at == s || at[1] == '\0' ||
        strchr(at + 1, '@') != NULL || cg_has_ctl(s, n) ||
        strchr(s, ' ') != NULL || !cg_utf8_valid(s, n))
        return false;
    return true;
}

/* Reads one line from stdin into an owned buffer (echo off on a
 * terminal). Returns 0, or 1 with a message printed. */
static int
read_password(char **out, size_t *len)
{
    struct termios old, quiet;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    char *line = NULL;
    size_t cap = 0;
    if (tty) {
        fprintf(stderr, "New password: ");
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    ssize_t n = getline(&line, &cap, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    const char *bad = n <= 0                  ? "empty password refused"
                      : n > USER_PASSWORD_MAX ? "password longer than 1024 "
                                                "bytes refused"
                                              : NULL;
    if (bad != NULL) {
        fprintf(stderr, "certgate: %s\n", bad);
        if (line != NULL)
            explicit_bzero(line, cap);
        free(line);
        return 1;
    }
    *out = line;
    *len = (size_t)n;
    return 0;
}

/* Reads a password from stdin and hashes it into out. Returns an exit
 * status (0 success). */
static int
password_from_stdin(char out[PASSWORD_HASH_LEN])
{
    char *pw = NULL;
    size_t len = 0;
    if (read_password(&pw, &len) != 0)
        return 1;
    int rc = password_hash(pw, len, out);
    explicit_bzero(pw, len);
    free(pw);
    if (rc != 0) {
        fprintf(stderr, "certgate: cannot hash the password: %s\n",
                cg_strerror(rc));
        return 1;
    }
    return 0;
}

/* ---- output --------------------------------------------------------- */

/* Appends s as cli_put_text does, padded with spaces to width, then two
 * spaces. */
static void
put_col(struct cg_buf *b, const char *s, size_t width)
{
    size_t n = strlen(s);
    cli_put_text(b, s);
    for (; n < width + 2; n++)
        cg_buf_putc(b, ' ');
}

/* Appends "key":"value" (value NULL: null), with a leading comma unless
 * first. */
static void
put_json(struct cg_buf *b, bool first, const char *key, const char *v)
{
    cg_buf_printf(b, "%s\"%s\":", first ? "" : ",", key);
    if (v == NULL) {
        cg_buf_puts(b, "null");
        return;
    }
    cg_buf_putc(b, '"');
    cg_json_escape(b, v, strlen(v));
    cg_buf_putc(b, '"');
}

/* Writes b to stdout; returns an exit status. */
static int
flush_out(struct cg_buf *b)
{
    fwrite(cg_buf_head(b), 1, cg_buf_pending(b), stdout);
    cg_buf_cleanup(b);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "certgate: cannot write to stdout\n");
        return 1;
    }
    return 0;
}

static const char *
user_status_name(const struct store_user *u)
{
    return u->status == STORE_USER_DISABLED ? "disabled" : "active";
}

static void
user_json(struct cg_buf *b, const struct store_user *u)
{
    char created[32];
    cg_time_rfc3339(u->created_at, created, sizeof(created));
    cg_buf_putc(b, '{');
    put_json(b, true, "name", u->name);
    put_json(b, false, "email", u->email);
    put_json(b, false, "role", u->role);
    put_json(b, false, "status", user_status_name(u));
    cg_buf_printf(b, ",\"has_password\":%s",
                  u->pw_hash != NULL ? "true" : "false");
    put_json(b, false, "created_at", created);
}

/* ---- commands ------------------------------------------------------- */

static int
cmd_add(struct store *s, const struct uopts *o)
{
    char hash[PASSWORD_HASH_LEN], err[CG_ERR_LEN];
    struct store_user u = {.name = (char *)o->name,
                           .email = (char *)o->email,
                           .role = (char *)(o->role ? o->role : "user")};
    if (o->password_stdin) {
        if (password_from_stdin(hash) != 0)
            return 1;
        u.pw_hash = hash;
    }
    int rc = store_user_add(s, &u, err);
    explicit_bzero(hash, sizeof(hash));
    if (rc != 0) {
        fprintf(stderr, "certgate: %s\n", err);
        return status_of(rc);
    }
    printf("user %s added\n", o->name);
    return 0;
}

static int
cmd_list(struct store *s, const struct uopts *o)
{
    struct store_user *us = NULL;
    size_t n = 0, wn = 4, we = 5;
    char err[CG_ERR_LEN], created[32];
    struct cg_buf b;
    if (store_user_list(s, &us, &n, err) != 0) {
        fprintf(stderr, "certgate: %s\n", err);
        return 1;
    }
    cg_buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        wn = strlen(us[i].name) > wn ? strlen(us[i].name) : wn;
        we = strlen(us[i].email) > we ? strlen(us[i].email) : we;
    }
    if (o->json)
        cg_buf_putc(&b, '[');
    else
        cg_buf_printf(&b, "%-*s  %-*s  %-5s  %-8s  %-8s  %s\n", (int)wn, "NAME",
                      (int)we, "EMAIL", "ROLE", "STATUS", "PASSWORD",
                      "CREATED");
    for (size_t i = 0; i < n; i++) {
        const struct store_user *u = &us[i];
        if (o->json) {
            cg_buf_puts(&b, i ? "," : "");
            user_json(&b, u);
            cg_buf_putc(&b, '}');
            continue;
        }
        cg_time_rfc3339(u->created_at, created, sizeof(created));
        put_col(&b, u->name, wn);
        put_col(&b, u->email, we);
        cg_buf_printf(&b, "%-5s  %-8s  %-8s  %s\n", u->role,
                      user_status_name(u), u->pw_hash ? "yes" : "no", created);
    }
    if (o->json)
        cg_buf_puts(&b, "]\n");
    for (size_t i = 0; i < n; i++)
        store_user_cleanup(&us[i]);
    free(us);
    return flush_out(&b);
}

/* Appends the certificates owned by name, as JSON or text lines. */
static int
put_certs(struct store *s, struct cg_buf *b, const char *name, bool json)
{
    struct store_cert_filter f = {.status = -1, .owner = name};
    struct store_cert *cs = NULL;
    size_t n = 0;
    char err[CG_ERR_LEN], exp[32];
    int64_t now = cg_wall_ms() / 1000;
    if (store_cert_list(s, &f, &cs, &n, err) != 0) {
        fprintf(stderr, "certgate: %s\n", err);
        return 1;
    }
    cg_buf_puts(b, json ? ",\"certificates\":[" : "");
    for (size_t i = 0; i < n; i++) {
        const struct store_cert *c = &cs[i];
        cg_time_rfc3339(c->not_after, exp, sizeof(exp));
        if (json) {
            cg_buf_puts(b, i ? ",{" : "{");
            put_json(b, true, "serial", c->serial);
            put_json(b, false, "status", cli_cert_state(c, now));
            put_json(b, false, "device", c->device);
            put_json(b, false, "not_after", exp);
            cg_buf_putc(b, '}');
        } else {
            cg_buf_printf(b, "certificate  %s  %s  expires %s", c->serial,
                          cli_cert_state(c, now), exp);
            if (c->device != NULL)
                cg_buf_puts(b, "  device ");
            cli_put_text(b, c->device);
            cg_buf_putc(b, '\n');
        }
        store_cert_cleanup(&cs[i]);
    }
    cg_buf_puts(b, json ? "]" : "");
    free(cs);
    return 0;
}

static int
cmd_show(struct store *s, const struct uopts *o)
{
    struct store_user u = {0};
    char err[CG_ERR_LEN], created[32];
    struct cg_buf b;
    int rc = store_user_get(s, o->name, &u, err);
    if (rc != 0) {
        fprintf(stderr, "certgate: %s\n", err);
        return status_of(rc);
    }
    cg_buf_init(&b);
    cg_time_rfc3339(u.created_at, created, sizeof(created));
    if (o->json) {
        user_json(&b, &u);
    } else {
        cg_buf_puts(&b, "name         ");
        cli_put_text(&b, u.name);
        cg_buf_puts(&b, "\nemail        ");
        cli_put_text(&b, u.email);
        cg_buf_printf(&b,
                      "\nrole         %s\nstatus       %s\n"
                      "password     %s\ncreated      %s\n",
                      u.role, user_status_name(&u),
                      u.pw_hash ? "set" : "not set", created);
    }
    rc = put_certs(s, &b, u.name, o->json);
    if (o->json)
        cg_buf_puts(&b, "}\n");
    store_user_cleanup(&u);
    if (rc != 0) {
        cg_buf_cleanup(&b);
        return rc;
    }
    return flush_out(&b);
}

static int
cmd_passwd(struct store *s, const struct uopts *o)
{
    struct store_user u = {0};
    char hash[PASSWORD_HASH_LEN], err[CG_ERR_LEN];
    /* an unknown user fails before the password is asked for */
    int rc = store_user_get(s, o->name, &u, err);
    store_user_cleanup(&u);
    if (rc == 0 && password_from_stdin(hash) != 0)
        return 1;
    if (rc == 0)
        rc = store_user_set_password(s, o->name, hash, err);
    explicit_bzero(hash, sizeof(hash));
    if (rc != 0) {
        fprintf(stderr, "certgate: %s\n", err);
        return status_of(rc);
    }
    printf("password of user %s changed\n", o->name);
    return 0;
}

/* disable and enable */
static int
set_status(struct store *s, const char *name, enum store_user_status st)
{
    char err[CG_ERR_LEN];
    int rc = store_user_set_status(s, name, st, err);
    if (rc != 0) {
        fprintf(stderr, "certgate: %s\n", err);
        return status_of(rc);
    }
    printf("user %s %s\n", name,
           st == STORE_USER_DISABLED ? "disabled" : "enabled");
    return 0;
}

static int
cmd_disable(struct store *s, const struct uopts *o)
{
    return set_status(s, o->name, STORE_USER_DISABLED);
}

static int
cmd_enable(struct store *s, const struct uopts *o)
{
    return set_status(s, o->name, STORE_USER_ACTIVE);
}

static int
cmd_delete(struct store *s, const struct uopts *o)
{
    char err[CG_ERR_LEN];
    struct store_cert_filter f = {
        .status = STORE_CERT_VALID, .unexpired_only = true, .owner = o->name};
    struct store_cert *cs = NULL;
    size_t n = 0;
    /* only for the message: the delete itself decides, atomically */
    if (o->revoke_certs && store_cert_list(s, &f, &cs, &n, err) == 0) {
        for (size_t i = 0; i < n; i++)
            store_cert_cleanup(&cs[i]);
        free(cs);
    }
    int rc = store_user_delete(
        s, o->name, o->revoke_certs ? USER_DELETE_REASON : NULL, err);
    if (rc != 0) {
        fprintf(stderr, "certgate: %s\n", err);
        return status_of(rc);
    }
    if (n > 0)
        printf("user %s deleted (%zu certificate%s revoked)\n", o->name, n,
               n == 1 ? "" : "s");
    else
        printf("user %s deleted\n", o->name);
    return 0;
}

static const struct ucmd cmds[] = {
    {"add", cmd_add, O_EMAIL | O_ROLE | O_PWSTDIN, true,
     "usage: certgate user add NAME --email E [--role admin|user]\n"
     "                         [--password-stdin] [--data DIR] [-c FILE]\n"
     "  Adds a user. NAME: 1-64 of A-Z a-z 0-9 . _ @ -; emails are unique\n"
     "  (case-insensitive). Role defaults to user. --password-stdin reads\n"
     "  a password (one line) from stdin; without it the user has none.\n"},
    {"list", cmd_list, O_JSON, false,
     "usage: certgate user list [--json] [--data DIR] [-c FILE]\n"
     "  Lists users ordered by name.\n"},
    {"show", cmd_show, O_JSON, true,
     "usage: certgate user show NAME [--json] [--data DIR] [-c FILE]\n"
     "  Shows a user and the certificates they own.\n"},
    {"passwd", cmd_passwd, 0, true,
     "usage: certgate user passwd NAME [--data DIR] [-c FILE]\n"
     "  Sets NAME's password to the first line read from stdin (not\n"
     "  empty).\n"},
    {"disable", cmd_disable, 0, true,
     "usage: certgate user disable NAME [--data DIR] [-c FILE]\n"
     "  Disables a user (their logins are refused).\n"},
    {"enable", cmd_enable, 0, true,
     "usage: certgate user enable NAME [--data DIR] [-c FILE]\n"
     "  Enables a disabled user.\n"},
    {"delete", cmd_delete, O_REVOKE, true,
     "usage: certgate user delete NAME [--revoke-certs] [--data DIR]\n"
     "                            [-c FILE]\n"
     "  Deletes a user. Refused while they own valid certificates, unless\n"
     "  --revoke-certs revokes those (reason " USER_DELETE_REASON ") in\n"
     "  the same transaction.\n"},
};

/* ---- dispatch ------------------------------------------------------- */

/* Prints one usage error line naming what and arg; returns -1. */
static int
usage_error(const struct ucmd *cmd, const char *what, const char *arg)
{
    struct cg_buf b;
    cg_buf_init(&b);
    cli_put_text(&b, arg);
    fprintf(stderr,
            "certgate: user %s: %s \"%s\" (see 'certgate user %s "
            "--help')\n",
            cmd->name, what, cg_buf_cstr(&b), cmd->name);
    cg_buf_cleanup(&b);
    return -1;
}

/* Parses the options of cmd into o. Returns 0, -1 for a usage error, or
 * 1 when --help was printed. */
static int
parse_opts(const struct ucmd *cmd, int argc, char **argv, struct uopts *o)
{
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},
        {"config", required_argument, 0, 'c'},
        {"email", required_argument, 0, 'e'},
        {"role", required_argument, 0, 'r'},
        {"password-stdin", no_argument, 0, 'p'},
        {"json", no_argument, 0, 'j'},
        {"revoke-certs", no_argument, 0, 'R'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0; /* reported below, as one line */
    while ((c = getopt_long(argc, argv, ":c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->data = optarg;
            break;
        case 'c':
            o->config = optarg;
            break;
        case 'e':
            o->email = optarg;
            o->given |= O_EMAIL;
            break;
        case 'r':
            o->role = optarg;
            o->given |= O_ROLE;
            break;
        case 'p':
            o->password_stdin = true;
            o->given |= O_PWSTDIN;
            break;
        case 'j':
            o->json = true;
            o->given |= O_JSON;
            break;
        case 'R':
            o->revoke_certs = true;
            o->given |= O_REVOKE;
            break;
        case 'h':
            printf("%s", cmd->usage);
            return 1;
        case ':':
            return usage_error(cmd, "missing value for", argv[optind - 1]);
        default:
            return usage_error(cmd, "unknown option", argv[optind - 1]);
        }
    }
    return 0;
}

/* Checks what the command got; prints one line and returns 2 when it is
 * wrong, else 0. */
static int
check_opts(const struct ucmd *cmd, int argc, char **argv, struct uopts *o)
{
    int want = cmd->takes_name ? 1 : 0;
    const char *bad = NULL;
    if (o->given & ~cmd->allowed)
        bad = "option not accepted by this command";
    else if (argc - optind > want)
        bad = "unexpected argument";
    else if (argc - optind < want)
        bad = "missing the user NAME";
    if (bad != NULL) {
        fprintf(stderr,
                "certgate: user %s: %s (see 'certgate user %s "
                "--help')\n",
                cmd->name, bad, cmd->name);
        return 2;
    }
    o->name = want ? argv[optind] : NULL;
    if (o->name != NULL && !valid_name(o->name))
        bad = "invalid user name: use 1 to 64 of A-Z a-z 0-9 . _ @ -";
    else if ((cmd->allowed & O_EMAIL) && o->email == NULL)
        bad = "--email is required";
    else if (o->email != NULL && !valid_email(o->email))
        bad = "invalid email address: one '@', no spaces or control "
              "characters, at most 254 bytes";
    else if (o->role != NULL && strcmp(o->role, "admin") != 0 &&
             strcmp(o->role, "user") != 0)
        bad = "invalid role: expected admin or user";
    if (bad != NULL) {
        fprintf(stderr, "certgate: user %s: %s\n", cmd->name, bad);
        return 2;
    }
    return 0;
}

/* The data directory: --data, else the config's data_dir, else the
 * default. Returns an owned path, or NULL after printing the config's
 * errors. */
static char *
data_dir(const struct uopts *o)
{
    struct cg_config *cfg = NULL;
    struct cg_strlist errors = {0};
    char *dir = NULL;
    if (o->data != NULL)
        return xstrdup(o->data);
    if (o->config == NULL)
        return xstrdup(USER_DEFAULT_DATA);
    if (config_load(o->config, &cfg, &errors) != 0) {
        for (size_t i = 0; i < errors.n; i++)
            fprintf(stderr, "certgate: %s: %s\n", o->config, errors.v[i]);
        if (errors.n == 0)
            fprintf(stderr, "certgate: cannot load %s\n", o->config);
    } else {
        dir = xstrdup(cfg->data_dir);
    }
    cg_strlist_clear(&errors);
    config_free(cfg);
    return dir;
}

/* Opens the store and runs cmd. */
static int
run(const struct ucmd *cmd, const struct uopts *o)
{
    struct store *s = NULL;
    char err[CG_ERR_LEN];
    char *dir = data_dir(o);
    if (dir == NULL)
        return 2;
    int rc = store_open(dir, &s, err);
    free(dir);
    if (rc != 0) {
        fprintf(stderr, "certgate: %s\n", err);
        return 1;
    }
    rc = cmd->fn(s, o);
    store_close(s);
    return rc;
}

int
cli_user(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "certgate: user: missing command (see 'certgate "
                        "user --help')\n");
        return 2;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 ||
        strcmp(sub, "help") == 0) {
        printf("%s", usage);
        return 0;
    }
    for (size_t i = 0; i < CG_ARRAY_LEN(cmds); i++) {
        if (strcmp(sub, cmds[i].name) != 0)
            continue;
        struct uopts o = {0};
        int rc = parse_opts(&cmds[i], argc - 1, argv + 1, &o);
        if (rc != 0)
            return rc > 0 ? 0 : 2;
        rc = check_opts(&cmds[i], argc - 1, argv + 1, &o);
        return rc != 0 ? rc : run(&cmds[i], &o);
    }
    struct cg_buf b;
    cg_buf_init(&b);
    cli_put_text(&b, sub);
    fprintf(stderr,
            "certgate: user: unknown command \"%s\" (see 'certgate "
            "user --help')\n",
            cg_buf_cstr(&b));
    cg_buf_cleanup(&b);
    return 2;
}
