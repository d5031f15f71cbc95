#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"

static _Atomic int log_min = CG_LOG_INFO;
static _Atomic int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void
cg_log_setup(enum cg_log_level min, int fd)
{
    atomic_store(&log_min, (int)min);
    atomic_store(&log_fd, fd);
}

int
cg_log_level_parse(const char *s)
{
    for (int i = 0; i < (int)CG_ARRAY_LEN(level_names); i++) {
        if (strcmp(s, level_names[i]) == 0)
            return i;
    }
    return -1;
}

bool
cg_log_enabled(enum cg_log_level level)
{
    return (int)level >= atomic_load(&log_min);
}

void
cg_logrec_begin(struct cg_logrec *r, enum cg_log_level level, const char *event)
{
    char ts[40];
    cg_buf_init(&r->b);
    r->off = !cg_log_enabled(level);
    if (r->off)
        return;
    int64_t now = cg_wall_ms();
    cg_time_rfc3339(now / 1000, ts, sizeof(ts));
    /* insert milliseconds before the Z */
    size_t tl = strlen(ts);
    if (tl > 0 && ts[tl - 1] == 'Z')
        snprintf(ts + tl - 1, sizeof(ts) - tl + 1, ".%03dZ", (int)(now % 1000));
    cg_buf_printf(&r->b, "{\"ts\":\"%s\",\"level\":\"%s\"", ts,
                  level_names[level]);
    if (event)
        cg_logrec_str(r, "event", event);
}

void
cg_logrec_strn(struct cg_logrec *r, const char *key, const char *val,
               size_t len)
{
    if (r->off)
        return;
    cg_buf_printf(&r->b, ",\"%s\":", key);
    if (val == NULL) {
        cg_buf_puts(&r->b, "null");
        return;
    }
    cg_buf_putc(&r->b, '"');
    cg_json_escape(&r->b, val, len);
    cg_buf_putc(&r->b, '"');
}

void
cg_logrec_str(struct cg_logrec *r, const char *key, const char *val)
{
    cg_logrec_strn(r, key, val, val ? strlen(val) : 0);
}

void
cg_logrec_int(struct cg_logrec *r, const char *key, int64_t val)
{
    if (r->off)
        return;
    cg_buf_printf(&r->b, ",\"%s\":%lld", key, (long long)val);
}

void
cg_logrec_bool(struct cg_logrec *r, const char *key, bool val)
{
    if (r->off)
        return;
    cg_buf_printf(&r->b, ",\"%s\":%s", key, val ? "true" : "false");
}

void
cg_logrec_strv(struct cg_logrec *r, const char *key, char *const *v, size_t n)
{
    if (r->off)
        return;
    cg_buf_printf(&r->b, ",\"%s\":[", key);
    for (size_t i = 0; i < n; i++) {
        cg_buf_puts(&r->b, i ? ",\"" : "\"");
        cg_json_escape(&r->b, v[i], strlen(v[i]));
        cg_buf_putc(&r->b, '"');
    }
    cg_buf_putc(&r->b, ']');
}

void
cg_logrec_end(struct cg_logrec *r)
{
    if (r->off) {
        cg_buf_cleanup(&r->b);
        return;
    }
    cg_buf_puts(&r->b, "}\n");
    int fd = atomic_load(&log_fd);
    const char *p = cg_buf_head(&r->b);
    size_t n = cg_buf_pending(&r->b);
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            break;
        p += w;
        n -= (size_t)w;
    }
    cg_buf_cleanup(&r->b);
}

void
cg_log(enum cg_log_level level, uint64_t conn, const char *fmt, ...)
{
    if (!cg_log_enabled(level))
        return;
    struct cg_logrec r;
    cg_logrec_begin(&r, level, NULL);
    if (conn)
        cg_logrec_int(&r, "conn", (int64_t)conn);
    struct cg_buf msg;
    cg_buf_init(&msg);
    va_list ap;
    va_start(ap, fmt);
    cg_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    cg_logrec_strn(&r, "msg", msg.data ? cg_buf_head(&msg) : "",
                   cg_buf_pending(&msg));
    cg_buf_cleanup(&msg);
    cg_logrec_end(&r);
}
