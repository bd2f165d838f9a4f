/* SPDX-License-Identifier: MIT */
/* clock.c: the monotonic wall clock the training helpers report their epochs and iterations by. */
#define _POSIX_C_SOURCE 200809L  /* clock_gettime */
#include <time.h>
#include "core/internal.h"

double bp__seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
