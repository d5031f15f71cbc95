/* The fuzz targets' assertion: aborts (a crash libFuzzer keeps) when c is
 * false; unlike assert() it stays in every build. */
#ifndef CG_FUZZ_CHECK_H
#define CG_FUZZ_CHECK_H

#include <stdlib.h>

#define CHECK(c)                                                               \
    do {                                                                       \
        if (!(c))                                                              \
            abort();                                                           \
    } while (0)

#endif
