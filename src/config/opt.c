/*
 * The descriptor engine: reads a jansson object into a struct from a
 * table of struct opt (key, type, offsetof, default, validator), reports
 * every problem with its JSON path, merges inherited values and frees
 * what it stored. The schema itself lives in schema.c.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"
#include "core/err.h"
#include "core/util.h"
#include "core/xmalloc.h"

#define FIELD(base, off, type) ((type *)(void *)((char *)(base) + (off)))

static void
verror(struct cfg_ctx *c, const char *fmt, va_list ap)
{
    struct cg_buf line;
    cg_buf_init(&line);
    cg_buf_puts(&line, c->path.len > 0 ? cg_buf_cstr(&c->path) : "(root)");
    cg_buf_puts(&line, ": ");
    cg_buf_vprintf(&line, fmt, ap);
    if (c->errors != NULL)
        cg_strlist_add(c->errors, cg_buf_cstr(&line));
    cg_buf_cleanup(&line);
    c->n_errors++;
}

void
cfg_error(struct cfg_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(c, fmt, ap);
    va_end(ap);
}

void
cfg_error_at(struct cfg_ctx *c, const char *key, const char *fmt, ...)
{
    size_t mark = cfg_push_key(c, key);
    va_list ap;
    va_start(ap, fmt);
    verror(c, fmt, ap);
    va_end(ap);
    cfg_pop(c, mark);
}

/* True for keys that read unambiguously after a '.'. */
static bool
plain_key(const char *k)
{
    if (*k == '\0')
        return false;
    for (; *k; k++) {
        if (!isalnum((unsigned char)*k) && *k != '_' && *k != '-' && *k != '.')
            return false;
    }
    return true;
}

size_t
cfg_push_key(struct cfg_ctx *c, const char *key)
{
    size_t mark = c->path.len;
    if (plain_key(key)) {
        if (c->path.len > 0)
            cg_buf_putc(&c->path, '.');
        cg_buf_puts(&c->path, key);
    } else {
        /* Any other key is quoted and escaped: a path never carries raw
         * control bytes or quotes into an error line. */
        cg_buf_puts(&c->path, "[\"");
        cg_json_escape(&c->path, key, strlen(key));
        cg_buf_puts(&c->path, "\"]");
    }
    return mark;
}

size_t
cfg_push_index(struct cfg_ctx *c, size_t i)
{
    size_t mark = c->path.len;
    cg_buf_printf(&c->path, "[%zu]", i);
    return mark;
}

void
cfg_pop(struct cfg_ctx *c, size_t mark)
{
    c->path.len = mark;
    if (c->path.data != NULL)
        c->path.data[mark] = '\0';
}

const char *
cfg_get_str(struct cfg_ctx *c, const json_t *v)
{
    if (!json_is_string(v)) {
        cfg_error(c, "expected string");
        return NULL;
    }
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len == 0) {
        cfg_error(c, "must not be empty");
        return NULL;
    }
    if (cg_has_ctl(s, len) || strlen(s) != len) {
        cfg_error(c, "must not contain control characters");
        return NULL;
    }
    return s;
}

bool
cfg_get_object(struct cfg_ctx *c, const json_t *v)
{
    if (v != NULL && !json_is_object(v))
        cfg_error(c, "expected object");
    return v != NULL && json_is_object(v);
}

char *
cfg_path_resolve(const char *base, const char *p)
{
    struct cg_buf in, out;
    cg_buf_init(&in);
    cg_buf_init(&out);
    if (p[0] != '/') {
        cg_buf_puts(&in, base);
        cg_buf_putc(&in, '/');
    }
    cg_buf_puts(&in, p);
    const char *s = cg_buf_cstr(&in);
    while (*s) {
        while (*s == '/')
            s++;
        size_t n = strcspn(s, "/");
        if (n == 0 || (n == 1 && s[0] == '.')) {
            s += n;
            continue;
        }
        cg_buf_putc(&out, '/');
        cg_buf_append(&out, s, n);
        s += n;
    }
    if (out.len == 0)
        cg_buf_putc(&out, '/');
    cg_buf_cleanup(&in);
    return cg_buf_take(&out);
}

/* Reads a duration: a string for cg_parse_duration_ms or seconds. */
static bool
get_ms(struct cfg_ctx *c, const json_t *v, int64_t *out)
{
    int64_t ms;
    if (json_is_string(v)) {
        const char *s = cfg_get_str(c, v);
        if (s == NULL)
            return false;
        /* cg_parse_duration_ms is strtod-based: insist on a digit first
         * so "inf", "nan", " 5s" and "+5s" are refused here. */
        if (!isdigit((unsigned char)s[0]) ||
            cg_parse_duration_ms(s, &ms) != 0) {
            cfg_error(c,
                      "invalid duration \"%s\" (e.g. \"500ms\", \"10s\", "
                      "\"2m\", \"1h\")",
                      s);
            return false;
        }
    } else if (json_is_number(v)) {
        double d = json_number_value(v);
        if (!(d > 0)) {
            cfg_error(c, "must be greater than 0");
            return false;
        }
        if (d > 9e12) {
            cfg_error(c, "duration too large");
            return false;
        }
        ms = (int64_t)(d * 1000.0 + 0.5); /* d > 0: rounds */
    } else {
        cfg_error(c, "expected duration (string like \"10s\" or number of "
                     "seconds)");
        return false;
    }
    if (ms <= 0) {
        cfg_error(c, "must be greater than 0");
        return false;
    }
    *out = ms;
    return true;
}

static bool
get_int(struct cfg_ctx *c, const struct opt *o, const json_t *v, int64_t *out)
{
    if (!json_is_integer(v)) {
        cfg_error(c, "expected integer");
        return false;
    }
    json_int_t n = json_integer_value(v);
    if (n < o->min || n > o->max) {
        cfg_error(c, "must be between %lld and %lld", (long long)o->min,
                  (long long)o->max);
        return false;
    }
    *out = (int64_t)n;
    return true;
}

static bool
get_enum(struct cfg_ctx *c, const struct opt *o, const json_t *v, int *out)
{
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    for (const struct opt_choice *ch = o->choices; s && ch->name; ch++) {
        if (strcmp(s, ch->name) == 0) {
            *out = ch->value;
            return true;
        }
    }
    struct cg_buf b;
    cg_buf_init(&b);
    for (const struct opt_choice *ch = o->choices; ch->name; ch++)
        cg_buf_printf(&b, "%s%s", ch == o->choices ? "" : ", ", ch->name);
    cfg_error(c, "expected one of %s", cg_buf_cstr(&b));
    cg_buf_cleanup(&b);
    return false;
}

/* Returns an owned, checked copy of a string value, or NULL. */
static char *
get_checked(struct cfg_ctx *c, const struct opt *o, const json_t *v, bool path)
{
    const char *s = cfg_get_str(c, v);
    if (s == NULL)
        return NULL;
    if (path)
        return cfg_path_resolve(c->base_dir, s);
    char *copy = xstrdup(s);
    if (o->check != NULL && !o->check(c, copy))
        XFREE(&copy);
    return copy;
}

static void
get_list(struct cfg_ctx *c, const struct opt *o, const json_t *v,
         struct cg_strlist *l)
{
    if (!json_is_array(v)) {
        cfg_error(c, "expected array of strings");
        return;
    }
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e)) {
            cfg_error(c, "expected array of strings");
            return;
        }
    }
    if (json_array_size(v) == 0 && (o->flags & OPT_NONEMPTY)) {
        cfg_error(c, "must not be empty");
        return;
    }
    json_array_foreach(v, i, e)
    {
        size_t mark = cfg_push_index(c, i);
        char *s = get_checked(c, o, e, o->type == OPT_PATHLIST);
        if (s != NULL) {
            cg_strlist_add(l, s);
            free(s);
        }
        cfg_pop(c, mark);
    }
}

static void
get_array(struct cfg_ctx *c, const struct opt *o, json_t *v, void *base,
          bool inherit)
{
    if (!json_is_array(v)) {
        cfg_error(c, "expected array");
        return;
    }
    size_t n = json_array_size(v);
    if (n == 0 && (o->flags & OPT_NONEMPTY)) {
        cfg_error(c, "must not be empty");
        return;
    }
    char *arr = xcalloc(n, o->elem_size);
    *FIELD(base, o->off, void *) = arr;
    *FIELD(base, o->count_off, size_t) = n;
    for (size_t i = 0; i < n; i++) {
        size_t mark = cfg_push_index(c, i);
        opt_apply(c, o->sub, json_array_get(v, i), arr + i * o->elem_size,
                  inherit);
        cfg_pop(c, mark);
    }
}

/* Stores the value v of option o (present) into base. */
static void
opt_read(struct cfg_ctx *c, const struct opt *o, json_t *v, void *base,
         bool inherit)
{
    int64_t n;
    switch (o->type) {
    case OPT_STR:
    case OPT_PATH:
        *FIELD(base, o->off, char *) =
            get_checked(c, o, v, o->type == OPT_PATH);
        break;
    case OPT_INT:
        if (get_int(c, o, v, &n))
            *FIELD(base, o->off, int) = (int)n;
        break;
    case OPT_SIZE:
        if (get_int(c, o, v, &n))
            *FIELD(base, o->off, size_t) = (size_t)n;
        break;
    case OPT_BOOL:
        if (json_is_boolean(v))
            *FIELD(base, o->off, bool) = json_is_true(v);
        else
            cfg_error(c, "expected boolean");
        break;
    case OPT_MS:
        get_ms(c, v, FIELD(base, o->off, int64_t));
        break;
    case OPT_ENUM:
        get_enum(c, o, v, FIELD(base, o->off, int));
        break;
    case OPT_STRLIST:
    case OPT_PATHLIST:
        get_list(c, o, v, FIELD(base, o->off, struct cg_strlist));
        break;
    case OPT_OBJECT:
        opt_apply(c, o->sub, v, FIELD(base, o->off, char),
                  inherit || (o->flags & OPT_INHERIT));
        break;
    case OPT_ARRAY:
        get_array(c, o, v, base, inherit);
        break;
    case OPT_CUSTOM:
        o->parse(c, o, v, base);
        break;
    }
}

/* Gives option o (absent) its default, or UNSET when inheriting. */
static void
opt_default(struct cfg_ctx *c, const struct opt *o, void *base, bool inherit)
{
    switch (o->type) {
    case OPT_STR:
        if (o->def_str != NULL)
            *FIELD(base, o->off, char *) = xstrdup(o->def_str);
        break;
    case OPT_PATH:
        if (o->def_str != NULL)
            *FIELD(base, o->off, char *) =
                cfg_path_resolve(c->base_dir, o->def_str);
        break;
    case OPT_INT:
        *FIELD(base, o->off, int) = inherit ? CFG_UNSET_INT : (int)o->def;
        break;
    case OPT_SIZE:
        *FIELD(base, o->off, size_t) =
            inherit ? CFG_UNSET_SIZE : (size_t)o->def;
        break;
    case OPT_BOOL:
        *FIELD(base, o->off, bool) = o->def != 0;
        break;
    case OPT_MS:
        *FIELD(base, o->off, int64_t) = inherit ? CFG_UNSET_MS : o->def;
        break;
    case OPT_ENUM:
        *FIELD(base, o->off, int) = (int)o->def;
        break;
    case OPT_OBJECT:
        opt_apply(c, o->sub, NULL, FIELD(base, o->off, char),
                  inherit || (o->flags & OPT_INHERIT));
        break;
    case OPT_CUSTOM:
        o->parse(c, o, NULL, base);
        break;
    case OPT_STRLIST:
    case OPT_PATHLIST:
    case OPT_ARRAY:
        break;
    }
}

static bool
is_scalar(enum opt_type t)
{
    return t == OPT_INT || t == OPT_SIZE || t == OPT_BOOL || t == OPT_MS ||
           t == OPT_ENUM;
}

static const struct opt *
opt_find(const struct opt_table *t, const char *key)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->opts[i].key, key) == 0)
            return &t->opts[i];
    }
    return NULL;
}

void
opt_apply(struct cfg_ctx *c, const struct opt_table *t, json_t *obj, void *base,
          bool inherit)
{
    bool wrong = obj != NULL && !json_is_object(obj);
    if (wrong) {
        cfg_error(c, "expected object");
        obj = NULL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (opt_find(t, key) == NULL)
            cfg_error_at(c, key, "unknown key");
    }
    for (size_t i = 0; i < t->n; i++) {
        const struct opt *o = &t->opts[i];
        size_t mark = cfg_push_key(c, o->key);
        v = obj ? json_object_get(obj, o->key) : NULL;
        if (v != NULL) {
            /* A scalar keeps its default when its value is refused, so
             * post checks do not see a half-made field. */
            if (is_scalar(o->type))
                opt_default(c, o, base, inherit);
            opt_read(c, o, v, base, inherit);
        } else {
            if ((o->flags & OPT_REQUIRED) && !wrong)
                cfg_error(c, "required");
            opt_default(c, o, base, inherit);
        }
        cfg_pop(c, mark);
    }
    if (t->post != NULL)
        t->post(c, obj, base);
}

void
opt_merge(const struct opt_table *t, void *child, const void *parent)
{
    char *cb = child;
    const char *pb = parent;
    for (size_t i = 0; i < t->n; i++) {
        const struct opt *o = &t->opts[i];
        size_t off = o->off;
        switch (o->type) {
        case OPT_INT:
            if (*FIELD(cb, off, int) == CFG_UNSET_INT)
                *FIELD(cb, off, int) = *FIELD(pb, off, const int);
            break;
        case OPT_SIZE:
            if (*FIELD(cb, off, size_t) == CFG_UNSET_SIZE)
                *FIELD(cb, off, size_t) = *FIELD(pb, off, const size_t);
            break;
        case OPT_MS:
            if (*FIELD(cb, off, int64_t) == CFG_UNSET_MS)
                *FIELD(cb, off, int64_t) = *FIELD(pb, off, const int64_t);
            break;
        case OPT_OBJECT:
            opt_merge(o->sub, cb + off, pb + off);
            break;
        default:
            break;
        }
    }
}

void
opt_release(const struct opt_table *t, void *base)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct opt *o = &t->opts[i];
        switch (o->type) {
        case OPT_STR:
        case OPT_PATH:
            XFREE(FIELD(base, o->off, char *));
            break;
        case OPT_STRLIST:
        case OPT_PATHLIST:
            cg_strlist_clear(FIELD(base, o->off, struct cg_strlist));
            break;
        case OPT_OBJECT:
            opt_release(o->sub, FIELD(base, o->off, char));
            break;
        case OPT_ARRAY: {
            char *arr = *FIELD(base, o->off, char *);
            size_t n = *FIELD(base, o->count_off, size_t);
            for (size_t j = 0; j < n; j++)
                opt_release(o->sub, arr + j * o->elem_size);
            free(arr);
            *FIELD(base, o->off, char *) = NULL;
            *FIELD(base, o->count_off, size_t) = 0;
            break;
        }
        case OPT_CUSTOM:
            if (o->release != NULL)
                o->release(o, base);
            break;
        default:
            break;
        }
    }
}
