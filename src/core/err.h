/*
 * Error codes: functions return 0 on success or a negative CG_E* code.
 * Human detail goes into a caller buffer of CG_ERR_LEN bytes.
 */
#ifndef CG_CORE_ERR_H
#define CG_CORE_ERR_H

#include <stddef.h>

#define CG_ERR_LEN 512

#define CG_ERRORS(X)                                                           \
    X(CG_EAGAIN, -1, "operation would block")                                  \
    X(CG_EPROTO, -2, "protocol error")                                         \
    X(CG_EAUTH, -3, "authentication refused")                                  \
    X(CG_ETLS, -4, "TLS error")                                                \
    X(CG_EIO, -5, "I/O error")                                                 \
    X(CG_ECONFIG, -6, "invalid configuration")                                 \
    X(CG_ENOTFOUND, -7, "not found")                                           \
    X(CG_ELIMIT, -8, "limit exceeded")                                         \
    X(CG_EINVAL, -9, "invalid argument")                                       \
    X(CG_ETIMEDOUT, -10, "timed out")                                          \
    X(CG_ECLOSED, -11, "connection closed")                                    \
    X(CG_EEXIST, -12, "already exists")

enum cg_err {
    CG_OK = 0,
#define CG_ERR_ENUM(name, val, text) name = val,
    CG_ERRORS(CG_ERR_ENUM)
#undef CG_ERR_ENUM
};

/* Returns a static description of a CG_E* code. */
const char *cg_strerror(int err);

/* Formats into err (CG_ERR_LEN bytes); returns CG_ECONFIG-style code given. */
int cg_seterr(char *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes "certgate: <message>" and a newline to stderr without allocating,
 * then aborts: for states the process cannot go on from (out of memory, a
 * corrupted heap list, a missing library function). */
_Noreturn void cg_abort(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* The next definition of function `name` after the executable's own
 * (dlsym(RTLD_NEXT): the library's, for a function the executable
 * interposes), its symbol version `version` when the library has one;
 * cg_abort()s when there is none. */
void *cg_next_symbol(const char *name, const char *version);

#endif
