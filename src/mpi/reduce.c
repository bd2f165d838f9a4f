/* SPDX-License-Identifier: MIT */
/* reduce.c: the reducer of a data-parallel attachment. A gradient pass checks the ranks' rows
 * against the fixed rule (one allgather), starts one MPI_Iallreduce (MPI_SUM, in place) per
 * layer as the layer's gradient becomes final, last layer first (or, without overlap, all of
 * them after the backward pass, the same calls in the same order), tests them between steps and
 * waits for all before the update; the pass's loss and counts are summed with them. Every wait
 * of a step is wait_all's: it polls, then yields the core. */
#define _POSIX_C_SOURCE 200809L  /* sched_yield */
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include "mpi/mpi_internal.h"
#include "net/tuning.h"  /* BP_SPIN_NS: the thread team's spin before it blocks */

static const char step_fn[] = "bp_mpi (gradient pass)";

bp_status bp__mpi_fail(bp_status st, const char *fn, const char *fmt, ...)
{
    char msg[480];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return bp_report_error(st, fn, msg);
}

bp_status bp__mpi_check(int rc, const char *fn, const char *what)
{
    if (rc == MPI_SUCCESS)
        return BP_OK;
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS)
        msg[0] = 0;
    return bp__mpi_fail(BP_ERR_COMM, fn, "%s failed: %s (MPI error %d)", what, msg, rc);
}

/* Completes the n requests. Open MPI's own waits poll at full speed, but a rank may share its
 * core with the host's threads or with another rank: this wait polls (MPI_Testall, which also
 * moves the collectives on) for BP_SPIN_NS, as the thread team spins, then yields the core
 * between polls. It cannot block instead: a rank asleep would stop moving its part of the
 * collective, which the other ranks wait for. */
static int wait_all(int n, MPI_Request *req)
{
    const double spin_end = MPI_Wtime() + BP_SPIN_NS * 1e-9;
    for (;;) {
        int done = 0;
        const int rc = MPI_Testall(n, req, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS || done)
            return rc;
        if (MPI_Wtime() > spin_end)
            sched_yield();
    }
}

bp_status bp__mpi_allreduce(const char *fn, bp_mpi *dp, void *buf, int n, MPI_Datatype type, const char *what)
{
    const double t0 = bp__mpi_now();
    MPI_Request req;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, n, type, MPI_SUM, dp->comm, &req);
    if (rc == MPI_SUCCESS)
        rc = wait_all(1, &req);
    dp->stats.comm_seconds += bp__mpi_now() - t0;
    return bp__mpi_check(rc, fn, what);
}

bp_status bp__mpi_sum(const char *fn, bp_mpi *dp, double *v, int n)
{
    return bp__mpi_allreduce(fn, dp, v, n, MPI_DOUBLE, "the sum of the step's figures");
}

/* The rows of every rank must be the fixed rule's shares of their total; n_local -1: this rank
 * refused its arguments, and every rank returns an error. */
static bp_status begin(void *ctx, bp_int n_local, bp_int *n_total)
{
    bp_mpi *dp = ctx;
    const double t0 = bp__mpi_now();
    dp->announced = dp->started = 0;
    const int64_t mine = n_local;
    MPI_Request req;
    int rc = MPI_Iallgather(&mine, 1, MPI_INT64_T, dp->rows, 1, MPI_INT64_T, dp->comm, &req);
    if (rc == MPI_SUCCESS)
        rc = wait_all(1, &req);
    dp->stats.comm_seconds += bp__mpi_now() - t0;
    if (rc != MPI_SUCCESS)
        return bp__mpi_check(rc, step_fn, "the allgather of the ranks' rows");
    int64_t total = 0;
    for (int r = 0; r < dp->size; r++) {
        if (dp->rows[r] < 0)  /* that rank refused its arguments (bp__dp_refused keeps its message) */
            return bp__mpi_fail(n_local < 0 ? BP_ERR_ARG : BP_ERR_COMM, step_fn,
                                "rank %d refused its arguments for this step (see its message); nothing was "
                                "updated", r);
        total += dp->rows[r];
    }
    if (total > INT_MAX)
        return bp__mpi_fail(BP_ERR_OVERFLOW, step_fn, "the global batch (%lld rows) exceeds INT_MAX",
                               (long long)total);
    for (int r = 0; r < dp->size; r++)
        if (dp->rows[r] != bp_shard_count((bp_int)total, dp->size, r))
            return bp__mpi_fail(BP_ERR_MISMATCH, step_fn,
                                   "the ranks' rows do not follow the fixed rule: of a global batch of %lld, "
                                   "rank %d passes %lld, its share is %d (the first n mod p ranks take one "
                                   "more); nothing was updated", (long long)total, r, (long long)dp->rows[r],
                                   (int)bp_shard_count((bp_int)total, dp->size, r));
    *n_total = (bp_int)total;
    return BP_OK;
}

static bp_status start(bp_mpi *dp, int k)
{
    const int rc = MPI_Iallreduce(MPI_IN_PLACE, dp->buf[k], dp->count[k], dp->type, MPI_SUM, dp->comm, &dp->req[k]);
    if (rc != MPI_SUCCESS)
        return bp__mpi_check(rc, step_fn, "MPI_Iallreduce of a layer's gradient");
    dp->started = k + 1;
    dp->stats.bytes += (double)dp->count[k] * (double)dp->esize;
    return BP_OK;
}

static bp_status layer_ready(void *ctx, bp_int layer, void *grad, size_t count)
{
    bp_mpi *dp = ctx;
    (void)layer;  /* announced in order: the last layer first */
    if (count > INT_MAX || dp->announced >= dp->n_layers)
        return bp__mpi_fail(BP_ERR_UNSUPPORTED, step_fn, "a layer of %zu parameters exceeds MPI's int count",
                               count);
    const int k = dp->announced++;
    dp->buf[k] = grad;
    dp->count[k] = (int)count;
    if (!dp->overlap)
        return BP_OK;
    const double t0 = bp__mpi_now();
    const bp_status st = start(dp, k);
    dp->stats.comm_seconds += bp__mpi_now() - t0;
    return st;
}

/* Open MPI progresses non-blocking collectives only inside MPI calls. */
static bp_status progress(void *ctx)
{
    bp_mpi *dp = ctx;
    if (dp->started == 0)
        return BP_OK;
    const double t0 = bp__mpi_now();
    int done = 0;
    const int rc = MPI_Testall(dp->started, dp->req, &done, MPI_STATUSES_IGNORE);
    dp->stats.comm_seconds += bp__mpi_now() - t0;
    return bp__mpi_check(rc, step_fn, "MPI_Testall of the layers' reductions");
}

static bp_status finish(void *ctx, double *v, int n)
{
    bp_mpi *dp = ctx;
    const double t0 = bp__mpi_now();
    bp_status st = BP_OK;
    for (int k = dp->started; k < dp->announced && st == BP_OK; k++)
        st = start(dp, k);
    /* The step's figures go with the layers' sums (the request after theirs), all waited for at once. */
    if (st == BP_OK)
        st = bp__mpi_check(MPI_Iallreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, dp->comm, &dp->req[dp->started]),
                           step_fn, "MPI_Iallreduce of the step's loss");
    if (st == BP_OK)
        st = bp__mpi_check(wait_all(dp->started + 1, dp->req), step_fn, "the wait for the layers' reductions");
    const double waited = bp__mpi_now() - t0;
    dp->stats.wait_seconds += waited;
    dp->stats.comm_seconds += waited;
    dp->stats.steps++;
    dp->announced = dp->started = 0;
    return st;
}

static bp_status sum(void *ctx, double *v, int n)
{
    return bp__mpi_sum("bp_train (data-parallel)", ctx, v, n);
}

bp_reducer bp__mpi_reducer(bp_mpi *dp)
{
    const bp_reducer r = {dp, dp->rank, dp->size, begin, layer_ready, progress, finish, sum};
    return r;
}

bp_status bp_mpi_allreduce_grads(bp_mpi *dp)
{
    const char *fn = __func__;
    if (dp == NULL)
        return bp__mpi_fail(BP_ERR_ARG, fn, "dp is NULL");
    char *g = bp_net_grads(dp->net);
    size_t left = bp_net_n_params(dp->net);
    bp_status st = BP_OK;
    while (left > 0 && st == BP_OK) {  /* in pieces MPI's int count can hold */
        const int c = left > INT_MAX ? INT_MAX : (int)left;
        st = bp__mpi_allreduce(fn, dp, g, c, dp->type, "the sum of the gradient");
        g += (size_t)c * dp->esize;
        left -= (size_t)c;
    }
    return st;
}
