/*
 * Public entry points of src/config: read the file, parse it with
 * jansson, run the schema (schema.c) over it, and hand out the result
 * only when there was no error at all.
 */
#include "config/config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config_int.h"
#include "core/err.h"
#include "core/util.h"
#include "core/xmalloc.h"

/* Bound on the size of a config file: it is read whole. */
#define CONFIG_MAX_BYTES (16u << 20)

static void add_error(struct cg_strlist *errors, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
add_error(struct cg_strlist *errors, const char *fmt, ...)
{
    if (errors == NULL)
        return;
    struct cg_buf b;
    cg_buf_init(&b);
    va_list ap;
    va_start(ap, fmt);
    cg_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    cg_strlist_add(errors, cg_buf_cstr(&b));
    cg_buf_cleanup(&b);
}

/* Returns an owned absolute form of dir (cwd-relative), or NULL. */
static char *
abs_path(const char *dir)
{
    if (dir != NULL && dir[0] == '/')
        return cfg_path_resolve("/", dir);
    char *cwd = getcwd(NULL, 0);
    if (cwd == NULL)
        return NULL;
    char *r = cfg_path_resolve(cwd, dir ? dir : ".");
    free(cwd);
    return r;
}

/* Parses and validates json; on success *out owns the result. */
static int
load(const char *json, size_t len, const char *base_dir, char *file_path,
     struct cg_config **out, struct cg_strlist *errors)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        add_error(errors, "line %d column %d: %s", jerr.line, jerr.column,
                  jerr.text);
        free(file_path);
        return CG_ECONFIG;
    }
    struct cg_config *cfg = xcalloc(1, sizeof(*cfg));
    cfg->path = file_path;
    struct cfg_ctx c = {.cfg = cfg, .base_dir = base_dir, .errors = errors};
    cg_buf_init(&c.path);
    opt_apply(&c, &cfg_schema, root, cfg, false);
    cg_buf_cleanup(&c.path);
    json_decref(root);
    if (c.n_errors > 0) {
        config_free(cfg);
        return CG_ECONFIG;
    }
    *out = cfg;
    return 0;
}

int
config_load_string(const char *json, const char *base_dir,
                   struct cg_config **out, struct cg_strlist *errors)
{
    assert(json != NULL && out != NULL);
    char *base = abs_path(base_dir);
    if (base == NULL) {
        add_error(errors, "cannot resolve base directory: %s", strerror(errno));
        return CG_EIO;
    }
    int rc = load(json, strlen(json), base, NULL, out, errors);
    free(base);
    return rc;
}

/* Reads a whole file into b; returns 0 or an errno value. */
static int
read_file(const char *path, struct cg_buf *b)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int rc = 0;
    for (;;) {
        cg_buf_reserve(b, 65536);
        ssize_t n = read(fd, b->data + b->len, b->cap - b->len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = errno;
            break;
        }
        if (n == 0)
            break;
        b->len += (size_t)n;
        if (b->len > CONFIG_MAX_BYTES) {
            rc = EFBIG;
            break;
        }
    }
    close(fd);
    return rc;
}

int
config_load(const char *path, struct cg_config **out, struct cg_strlist *errors)
{
    assert(path != NULL && out != NULL);
    struct cg_buf b;
    cg_buf_init(&b);
    int rc = read_file(path, &b);
    if (rc != 0) {
        add_error(errors, "%s: cannot read: %s", path, strerror(rc));
        cg_buf_cleanup(&b);
        return CG_EIO;
    }
    char *file = abs_path(path);
    if (file == NULL) {
        add_error(errors, "%s: cannot read: %s", path, strerror(errno));
        cg_buf_cleanup(&b);
        return CG_EIO;
    }
    /* The directory of the file: cut at the last '/' (file is absolute
     * and normalised, so it has one, maybe only the leading one). */
    char *base = xstrdup(file);
    char *slash = strrchr(base, '/');
    slash[slash == base ? 1 : 0] = '\0';
    rc = load(b.data ? b.data : "", b.len, base, file, out, errors);
    free(base);
    cg_buf_cleanup(&b);
    return rc;
}

void
config_free(struct cg_config *cfg)
{
    if (cfg == NULL)
        return;
    opt_release(&cfg_schema, cfg);
    free(cfg->path);
    free(cfg);
}

const struct cg_trust_cfg *
config_trust_find(const struct cg_config *cfg, const char *name)
{
    for (size_t i = 0; name != NULL && i < cfg->n_trusts; i++) {
        if (strcmp(cfg->trusts[i].name, name) == 0)
            return &cfg->trusts[i];
    }
    return NULL;
}

const struct cg_listener_cfg *
config_listener_find(const struct cg_config *cfg, const char *name)
{
    for (size_t i = 0; name != NULL && i < cfg->n_listeners; i++) {
        if (cfg->listeners[i].name != NULL &&
            strcmp(cfg->listeners[i].name, name) == 0)
            return &cfg->listeners[i];
    }
    return NULL;
}

static const struct cg_header_map default_headers[] = {
    {(char *)"X-Client-Verify", CG_F_VERIFY},
    {(char *)"X-Client-Cert-Subject", CG_F_DN},
    {(char *)"X-Client-Cert-Issuer", CG_F_ISSUER_DN},
    {(char *)"X-Client-Cert-Serial", CG_F_SERIAL},
    {(char *)"X-Client-Cert-Fingerprint-SHA256", CG_F_SHA256},
    {(char *)"X-Client-Cert-CN", CG_F_CN},
    {(char *)"X-Client-Cert-Email", CG_F_EMAIL},
    {(char *)"X-Client-Cert-Not-After", CG_F_NOT_AFTER},
    {(char *)"Client-Cert", CG_F_CLIENT_CERT},
};

const struct cg_header_map *
config_default_headers(size_t *n)
{
    *n = CG_ARRAY_LEN(default_headers);
    return default_headers;
}

/* Parses a decimal port 0..65535. */
static bool
addr_port(const char *s, in_port_t *port)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5 || strspn(s, "0123456789") != n)
        return false;
    long v = strtol(s, NULL, 10);
    if (v > 65535)
        return false;
    *port = htons((uint16_t)v);
    return true;
}

int
config_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[64];
    const char *port;
    memset(ss, 0, sizeof(*ss));
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':' ||
            (size_t)(end - s - 1) >= sizeof(host))
            return CG_EINVAL;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        port = end + 2;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1 ||
            !addr_port(port, &sin6->sin6_port))
            return CG_EINVAL;
        sin6->sin6_family = AF_INET6;
        *len = sizeof(*sin6);
        return 0;
    }
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
        return CG_EINVAL;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    port = colon + 1;
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    /* Numeric addresses only (and "localhost"): no DNS at load time. */
    if (host[0] == '\0' || strcmp(host, "*") == 0)
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (strcmp(host, "localhost") == 0)
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
        return CG_EINVAL;
    if (!addr_port(port, &sin->sin_port))
        return CG_EINVAL;
    sin->sin_family = AF_INET;
    *len = sizeof(*sin);
    return 0;
}
