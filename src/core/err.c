#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>

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
