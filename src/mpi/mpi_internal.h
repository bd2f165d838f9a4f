/* SPDX-License-Identifier: MIT */
/* mpi_internal.h: the data-parallel attachment (backprop/mpi.h) shared by the files of src/mpi.
 * libbackprop-mpi is built on the core's public API only: the reducer of backprop/parallel.h. */
#ifndef BP_MPI_INTERNAL_H
#define BP_MPI_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "backprop/mpi.h"

struct bp_mpi {
    bp_net *net;
    MPI_Comm comm;          /* the library's duplicate of the caller's communicator (errors return) */
    MPI_Datatype type;      /* MPI_FLOAT or MPI_DOUBLE, by the network's dtype */
    size_t esize;
    int rank, size, root, overlap;
    bp_int n_layers;
    /* The pass in flight: the layers announced (in order, the last layer first), their buffers
     * and, once started, their requests. */
    int announced, started;
    void **buf;
    int *count;
    MPI_Request *req;       /* n_layers + 1: the layers', then the step's figures' */
    int64_t *rows;          /* each rank's rows of the step (the fixed-rule check) */
    bp_mpi_stats stats;
};

/* The reducer of an attachment (reduce.c). */
bp_reducer bp__mpi_reducer(bp_mpi *dp);

/* Records "fn: message" (formatted as printf) through bp_report_error; returns st. */
bp_status bp__mpi_fail(bp_status st, const char *fn, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* BP_ERR_COMM for a failed MPI call: "what: MPI's message" under fn. BP_OK for MPI_SUCCESS. */
bp_status bp__mpi_check(int rc, const char *fn, const char *what);

/* Returns the status of a failed call. */
#define TRY(call)                                                          \
    do {                                                                   \
        const bp_status st_ = (call);                                      \
        if (st_ != BP_OK)                                                  \
            return st_;                                                    \
    } while (0)

/* Returns from the calling function (with `fn` in scope) when an MPI call fails. */
#define TRY_MPI(call, what)                                                \
    do {                                                                   \
        const bp_status st_ = bp__mpi_check((call), fn, what);            \
        if (st_ != BP_OK)                                                  \
            return st_;                                                    \
    } while (0)

/* Wall-clock seconds (MPI_Wtime). */
static inline double bp__mpi_now(void)
{
    return MPI_Wtime();
}

/* The thread count config.threads asks for on this rank (threads.c); collective over comm. */
bp_status bp__mpi_threads(const char *fn, bp_mpi *dp, int threads);

/* Sums the n values of `type` at buf over the attachment's ranks, in place, waiting as a step
 * waits (reduce.c); `what` names it in an error. */
bp_status bp__mpi_allreduce(const char *fn, bp_mpi *dp, void *buf, int n, MPI_Datatype type, const char *what);

/* Sums the n values v over the attachment's ranks, in place. */
bp_status bp__mpi_sum(const char *fn, bp_mpi *dp, double *v, int n);

#endif
