/* SPDX-License-Identifier: MIT */
/* blas_threads.c: BLAS on one thread while the library's own team runs (internal.h).
 *
 * The one process-wide state of the library: OpenBLAS's thread count is itself process-wide, so
 * overlapping calls (two networks in two threads) must agree on who saved the host's count and
 * who gives it back. A count of the calls in progress, under a mutex, does that. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include "core/internal.h"
#ifdef BP_HAVE_OPENBLAS_THREADS
#include <cblas.h>
#endif

#ifdef BP_HAVE_OPENBLAS_THREADS
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int in_progress;  /* calls between begin and end */
static int saved;        /* the host's count, while in_progress > 0 */
#endif

void bp__blas_serial_begin(void)
{
#ifdef BP_HAVE_OPENBLAS_THREADS
    pthread_mutex_lock(&lock);
    if (in_progress++ == 0) {
        saved = openblas_get_num_threads();
        if (saved != 1)
            openblas_set_num_threads(1);
    }
    pthread_mutex_unlock(&lock);
#endif
}

void bp__blas_serial_end(void)
{
#ifdef BP_HAVE_OPENBLAS_THREADS
    pthread_mutex_lock(&lock);
    if (--in_progress == 0 && saved != 1)
        openblas_set_num_threads(saved);
    pthread_mutex_unlock(&lock);
#endif
}
