/*
 * Internals of src/config shared by its files and tests: the descriptor
 * engine (opt.c) that turns a jansson object into a C struct from a table
 * of {key, type, offsetof, default, validator}, and the schema tables
 * (schema.c) built on it. Only src/config includes <jansson.h>.
 */
#ifndef CG_CONFIG_CONFIG_INT_H
#define CG_CONFIG_CONFIG_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/buf.h"

/* Values of inherited fields before the merge step (nginx
 * NGX_CONF_UNSET): a listener's timeouts and limits start here. */
#define CFG_UNSET_MS ((int64_t)-1)
#define CFG_UNSET_SIZE SIZE_MAX
#define CFG_UNSET_INT (-1)

/* Parsing state: where we are (JSON path) and what went wrong. */
struct cfg_ctx {
    struct cg_config *cfg;     /* being built */
    const char *base_dir;      /* absolute; relative paths resolve here */
    struct cg_buf path;        /* JSON path of the value being read */
    struct cg_strlist *errors; /* may be NULL */
    size_t n_errors;
};

/* Appends "<path>: <message>" to the errors. */
void cfg_error(struct cfg_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Same, for the child key of the current path. */
void cfg_error_at(struct cfg_ctx *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Extends the path by ".key" or "[i]"; returns a mark for cfg_pop. */
size_t cfg_push_key(struct cfg_ctx *c, const char *key);
size_t cfg_push_index(struct cfg_ctx *c, size_t i);
void cfg_pop(struct cfg_ctx *c, size_t mark);

/* Returns v's string if it is a non-empty string without control bytes;
 * else reports the problem at the current path and returns NULL. */
const char *cfg_get_str(struct cfg_ctx *c, const json_t *v);
/* True when v is present and an object; reports "expected object" when
 * it is present but something else. */
bool cfg_get_object(struct cfg_ctx *c, const json_t *v);
/* Returns an owned absolute path: p itself if absolute, else base/p;
 * "." components and repeated '/' are dropped ("..": kept as written). */
char *cfg_path_resolve(const char *base, const char *p);

enum opt_type {
    OPT_STR,      /* char *, non-empty; check() may rewrite it in place */
    OPT_PATH,     /* char *, resolved against base_dir */
    OPT_INT,      /* int in [min, max] */
    OPT_SIZE,     /* size_t in [min, max] */
    OPT_BOOL,     /* bool */
    OPT_MS,       /* int64_t ms: "10s", "500ms", ... or seconds; > 0 */
    OPT_ENUM,     /* int (or an enum of int size): one of choices */
    OPT_STRLIST,  /* struct cg_strlist of non-empty strings */
    OPT_PATHLIST, /* struct cg_strlist of resolved paths */
    OPT_OBJECT,   /* nested object, described by sub, at base + off */
    OPT_ARRAY,    /* array of objects: T * at off, size_t count at
                     count_off, elements of elem_size described by sub */
    OPT_CUSTOM,   /* parse() reads it (also called when absent) */
};

#define OPT_REQUIRED 0x1u /* a missing key is an error */
#define OPT_NONEMPTY 0x2u /* lists and arrays: at least one element */
#define OPT_INHERIT 0x4u  /* OPT_OBJECT: values start UNSET, see opt_merge */

struct opt;
struct opt_table;

/* Validates (and may normalise in place) one string; reports with
 * cfg_error and returns false when it is refused. */
typedef bool opt_check_fn(struct cfg_ctx *c, char *s);
/* Reads an OPT_CUSTOM value; v is NULL when the key is absent. */
typedef void opt_parse_fn(struct cfg_ctx *c, const struct opt *o, json_t *v,
                          void *base);
/* Frees what an OPT_CUSTOM parse stored in base. */
typedef void opt_release_fn(const struct opt *o, void *base);
/* Cross-field rules of a table; obj is NULL when the object is absent or
 * is not an object. Runs with the path of the object. */
typedef void opt_post_fn(struct cfg_ctx *c, json_t *obj, void *base);

struct opt_choice {
    const char *name;
    int value;
};

struct opt {
    const char *key;
    enum opt_type type;
    unsigned flags;
    size_t off;
    int64_t def;                      /* INT, SIZE, BOOL, MS, ENUM: default */
    const char *def_str;              /* STR, PATH: default, NULL = none */
    int64_t min, max;                 /* INT, SIZE: inclusive range */
    const struct opt_choice *choices; /* ENUM: ends with {NULL, 0} */
    const struct opt_table *sub;      /* OBJECT, ARRAY */
    size_t count_off, elem_size;      /* ARRAY */
    opt_check_fn *check;              /* STR, STRLIST: per string */
    opt_parse_fn *parse;              /* CUSTOM */
    opt_release_fn *release;          /* CUSTOM */
};

struct opt_table {
    const struct opt *opts;
    size_t n;
    opt_post_fn *post;
};

/*
 * Reads obj (may be NULL: absent) into base by table t: unknown keys are
 * errors, missing ones take their default (or UNSET when inherit), every
 * problem is reported, then t->post runs. Never stops early.
 */
void opt_apply(struct cfg_ctx *c, const struct opt_table *t, json_t *obj,
               void *base, bool inherit);
/* Replaces every UNSET value in child by the one in parent. */
void opt_merge(const struct opt_table *t, void *child, const void *parent);
/* Frees everything the table's fields own in base (not base itself). */
void opt_release(const struct opt_table *t, void *base);

/* The whole schema: the top-level object of a config file. */
extern const struct opt_table cfg_schema;

/* Checks a name of a listener or trust set: [A-Za-z0-9_.-]+. */
bool cfg_check_name(struct cfg_ctx *c, char *s);
/* Checks an RFC 7230 token usable as an extra header (not Host, ...). */
bool cfg_check_header_name(struct cfg_ctx *c, char *s);
/* Checks a host name, lowercases it, drops one trailing dot; a leading
 * "*." label is allowed. */
bool cfg_check_host(struct cfg_ctx *c, char *s);

/* route.c: the "upstream" value and the rules that tie it to
 * "upstream_tls"; the "identity_headers" object. */
opt_parse_fn cfg_parse_upstream;
opt_release_fn cfg_release_upstream;
opt_parse_fn cfg_parse_headers;
opt_release_fn cfg_release_headers;
opt_post_fn cfg_route_post;
/* The "respond" object of a route (a static answer). */
opt_parse_fn cfg_parse_respond;
opt_release_fn cfg_release_respond;
/* The "upstream" of an mqtt or tcp listener (base: the listener):
 * "host:port", "[v6]:port", "tls://host:port" or "unix:/path". */
opt_parse_fn cfg_parse_relay_upstream;
opt_release_fn cfg_release_relay_upstream;
/* Its agreement with "upstream_tls" (obj: the listener object). */
void cfg_relay_upstream_post(struct cfg_ctx *c, json_t *obj,
                             struct cg_upstream_cfg *u);

/* A descriptor table named name from name##_opts and a post hook. */
#define TABLE(name, post)                                                      \
    static const struct opt_table name = {name##_opts,                         \
                                          CG_ARRAY_LEN(name##_opts), post}

/* schema_relay.c: keys of mqtt and tcp listeners. */
extern const struct opt_choice cfg_mqtt_maps[];
extern const struct opt_choice cfg_proxy_protocols[];
extern const struct opt_table cfg_mqtt_auth;
opt_parse_fn cfg_parse_proxy_identity;
opt_release_fn cfg_release_proxy_identity;

/* schema_tls.c: a listener's cipher suite lists (check: one name, post:
 * duplicates, defaults, tls12_ciphers with tls_min_version 1.3). */
bool cfg_check_tls13_suite(struct cfg_ctx *c, char *s);
bool cfg_check_tls12_cipher(struct cfg_ctx *c, char *s);
void cfg_tls_suites_post(struct cfg_ctx *c, json_t *obj,
                         struct cg_listener_cfg *l);

/* schema_trust.c: the "trust" object (custom parse/release of the key). */
void cfg_parse_trusts(struct cfg_ctx *c, const struct opt *o, json_t *v,
                      void *base);
void cfg_release_trusts(const struct opt *o, void *base);

#endif
