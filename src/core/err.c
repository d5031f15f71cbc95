#include "core/err.h"

#include <dlfcn.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *
cg_strerror(int err)
{
    switch (err) {
    case CG_OK:
        return "success";
#define CG_ERR_CASE(name, val, text)                                           \
    case name:                                                                 \
        return text;
        CG_ERRORS(CG_ERR_CASE)
#undef CG_ERR_CASE
    }
    return "unknown error";
}

int
cg_seterr(char *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, CG_ERR_LEN, fmt, ap);
        va_end(ap);
    }
    return code;
}

void
cg_abort(const char *fmt, ...)
{
    char msg[192] = "certgate: ";
    size_t len = strlen(msg);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + len, sizeof(msg) - len - 1, fmt, ap);
    va_end(ap);
    len = strlen(msg);
    msg[len++] = '\n';
    (void)!write(2, msg, len);
    abort();
}

void *
cg_next_symbol(const char *name, const char *version)
{
    void *f = dlvsym(RTLD_NEXT, name, version);
    if (f == NULL)
        f = dlsym(RTLD_NEXT, name);
    if (f == NULL)
        cg_abort("%s not found", name);
    return f;
}
