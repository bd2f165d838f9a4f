/* SPDX-License-Identifier: MIT */
/* bpt_messages.c: backprop-train's error messages and the exit status each kind carries. */
#include <stdarg.h>
#include <stdio.h>
#include "bpt.h"

/* "rank R: " under mpiexec with several ranks, else "". */
static const char *rank_prefix(char *buf, size_t len)
{
    if (bpt_ranks() == 1)
        return "";
    snprintf(buf, len, "rank %d: ", bpt_rank());
    return buf;
}

/* Prints "backprop-train: message" (under mpiexec "rank R: backprop-train: message") in one
 * write, so that the ranks' lines do not mix, and returns the exit status. */
static int complain(int status, const char *fmt, va_list ap)
{
    char rank[32], msg[8192];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fprintf(stderr, "%sbackprop-train: %s\n", rank_prefix(rank, sizeof rank), msg);
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
    char rank[32];
    fprintf(stderr, "%sbackprop-train: %s: %s (%s)\n", rank_prefix(rank, sizeof rank), what, bp_strerror(st),
            bp_last_error());
    return 1;
}
