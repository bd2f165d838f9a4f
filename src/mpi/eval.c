/* SPDX-License-Identifier: MIT */
/* eval.c: evaluation over every rank's rows: each rank evaluates its own rows with the core's
 * call, and the ranks sum each figure weighted by its rows (the mean loss, the squared RMSE, the
 * accuracy) and the confusion matrix. A rank with no rows adds nothing. */
#include <math.h>
#include "mpi/mpi_internal.h"

/* The mean over every rank's rows of a figure whose sum over this rank's n rows is `sum` (`local`:
 * the status of computing it), into *mean. A rank that failed still takes part, so that the
 * others return instead of waiting. */
static bp_status global_mean(const char *fn, bp_mpi *dp, bp_status local, bp_int n, double sum, double *mean)
{
    double v[3] = {local == BP_OK ? sum : 0, n, local != BP_OK};
    TRY(bp__mpi_sum(fn, dp, v, 3));
    if (local != BP_OK)
        return local;
    if (v[2] != 0)
        return bp__mpi_fail(BP_ERR_COMM, fn, "%.0f other rank(s) failed (see their messages)", v[2]);
    if (v[1] == 0)
        return bp__mpi_fail(BP_ERR_ARG, fn, "no rank has a row to evaluate");
    *mean = v[0] / v[1];
    return BP_OK;
}

bp_status bp_mpi_eval_loss(bp_mpi *dp, bp_int n, const void *X, bp_int ldx, const void *targets, bp_int ldt,
                           double *loss)
{
    const char *fn = __func__;
    if (dp == NULL || loss == NULL)
        return bp__mpi_fail(BP_ERR_ARG, fn, "%s is NULL", dp == NULL ? "dp" : "loss");
    double mine = 0;
    const bp_status local = n > 0 ? bp_net_eval_loss(dp->net, n, X, ldx, targets, ldt, &mine) : BP_OK;
    return global_mean(fn, dp, local, n, mine * n, loss);
}

bp_status bp_mpi_rmse(bp_mpi *dp, bp_int n, const void *X, bp_int ldx, const void *targets, bp_int ldt,
                      double *rmse)
{
    const char *fn = __func__;
    if (dp == NULL || rmse == NULL)
        return bp__mpi_fail(BP_ERR_ARG, fn, "%s is NULL", dp == NULL ? "dp" : "rmse");
    double mine = 0, mse = 0;
    const bp_status local = n > 0 ? bp_net_rmse(dp->net, n, X, ldx, targets, ldt, &mine) : BP_OK;
    TRY(global_mean(fn, dp, local, n, mine * mine * n, &mse));  /* every row has n_out elements */
    *rmse = sqrt(mse);
    return BP_OK;
}

bp_status bp_mpi_accuracy(bp_mpi *dp, bp_int n, const void *X, bp_int ldx, const int32_t *labels,
                          double *accuracy, int64_t *confusion)
{
    const char *fn = __func__;
    if (dp == NULL || accuracy == NULL)
        return bp__mpi_fail(BP_ERR_ARG, fn, "%s is NULL", dp == NULL ? "dp" : "accuracy");
    const int k = (int)bp_net_n_out(dp->net);
    double mine = 0;
    const bp_status local = n > 0 ? bp_net_accuracy(dp->net, n, X, ldx, labels, &mine, confusion) : BP_OK;
    if (n == 0 && confusion)  /* a rank with no rows contributes an empty matrix */
        for (size_t i = 0; i < (size_t)k * (size_t)k; i++)
            confusion[i] = 0;
    TRY(global_mean(fn, dp, local, n, round(mine * n), accuracy));  /* correct rows: exact once rounded */
    if (confusion)
        TRY(bp__mpi_allreduce(fn, dp, confusion, k * k, MPI_INT64_T, "the sum of the confusion matrix"));
    return BP_OK;
}
