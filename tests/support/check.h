/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/* The assertion the C tests share: counts a failure, says where and why. */
#ifndef CONNSCOPE_TEST_CHECK_H
#define CONNSCOPE_TEST_CHECK_H

#include <connscope/connscope.h>
#include <stdio.h>

static int failures;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__,  \
                    __LINE__, #cond, connscope_last_error());                        \
            failures++;                                                              \
        }                                                                            \
    } while (0)

#endif
