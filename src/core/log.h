/*
 * Logging: one JSON object per line, written with a single write(2).
 * Every string value is JSON-escaped, so nothing a client or a
 * certificate sends can split a log line.
 */
#ifndef CG_CORE_LOG_H
#define CG_CORE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

enum cg_log_level {
    CG_LOG_DEBUG,
    CG_LOG_INFO,
    CG_LOG_WARN,
    CG_LOG_ERROR,
};

/* Sets the minimum level and the output fd (default: info, fd 2).
 * Called before threads start or under the caller's own ordering. */
void cg_log_setup(enum cg_log_level min, int fd);
/* Parses "debug" | "info" | "warn" | "error"; returns -1 if unknown. */
int cg_log_level_parse(const char *s);
bool cg_log_enabled(enum cg_log_level level);

/* Logs {"ts","level","conn"(if non-zero),"msg"}. */
void cg_log(enum cg_log_level level, uint64_t conn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Structured record: begin, add fields, end (writes and frees). */
struct cg_logrec {
    struct cg_buf b;
    bool off; /* below the configured level: nothing is formatted */
};
void cg_logrec_begin(struct cg_logrec *r, enum cg_log_level level,
                     const char *event);
void cg_logrec_str(struct cg_logrec *r, const char *key, const char *val);
void cg_logrec_strn(struct cg_logrec *r, const char *key, const char *val,
                    size_t len);
void cg_logrec_int(struct cg_logrec *r, const char *key, int64_t val);
void cg_logrec_bool(struct cg_logrec *r, const char *key, bool val);
/* Appends a JSON array of strings. */
void cg_logrec_strv(struct cg_logrec *r, const char *key, char *const *v,
                    size_t n);
void cg_logrec_end(struct cg_logrec *r);

#endif
