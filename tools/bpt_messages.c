/* SPDX-License-Identifier: MIT */
/* bpt_messages.c: backprop-train's error messages and the exit status each kind carries. */
#include <stdarg.h>
#include <stdio.h>
#include "bpt.h"

/* Prints "backprop-train: message" and returns the exit status. */
static int complain(int status, const char *fmt, va_list ap)
{
    fputs("backprop-train: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    return status;
}

/* Usage errors: exit status 2. */
int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int rc = complain(2, fmt, ap);
    va_end(ap);
    return rc;
}

/* Errors found after the options were read (data, models, files): exit status 1. */
int run_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int rc = complain(1, fmt, ap);
    va_end(ap);
    return rc;
}

/* A library call that failed: its status and the library's account of why; exit status 1. */
int bp_fail(const char *what, bp_status st)
{
    fprintf(stderr, "backprop-train: %s: %s (%s)\n", what, bp_strerror(st), bp_last_error());
    return 1;
}
