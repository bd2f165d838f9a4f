/* SPDX-License-Identifier: MIT */
/* eval.c: evaluation over every rank's rows: each rank evaluates its own rows with the core's
 * call and the ranks sum what makes the global figure (the loss times the rows, the correct
 * predictions, the squared errors, the confusion matrix). A rank with no rows adds nothing. */
#include <math.h>
#include <stdlib.h>
#include "mpi/mpi_internal.h"

/* Sums v (n values) and the rows over the ranks: v[n] holds this rank's rows. */
static bp_status sum_with_rows(const char *fn, bp_mpi *dp, bp_status local, double *v, int n, double *rows)
{
    /* A rank that failed still takes part, so that the others return instead of waiting. */
    v[n + 1] = local != BP_OK;
    TRY(bp__mpi_sum(fn, dp, v, n + 2));
    if (local != BP_OK)
        return local;
    if (v[n + 1] != 0)
        return bp__mpi_fail(BP_ERR_COMM, fn, "%.0f other rank(s) failed (see their messages)", v[n + 1]);
    if (v[n] == 0)
        return bp__mpi_fail(BP_ERR_ARG, fn, "no rank has a row to evaluate");
    *rows = v[n];
    return BP_OK;
}

bp_status bp_mpi_eval_loss(bp_mpi *dp, bp_int n, const void *X, bp_int ldx, const void *targets, bp_int ldt,
                           double *loss)
{
    const char *fn = __func__;
    if (dp == NULL || loss == NULL)
        return bp__mpi_fail(BP_ERR_ARG, fn, "%s is NULL", dp == NULL ? "dp" : "loss");
    double mine = 0, v[3] = {0, n, 0}, rows = 0;
    const bp_status local = n > 0 ? bp_net_eval_loss(dp->net, n, X, ldx, targets, ldt, &mine) : BP_OK;
    v[0] = mine * n;
    TRY(sum_with_rows(fn, dp, local, v, 1, &rows));
    *loss = v[0] / rows;
    return BP_OK;
}

bp_status bp_mpi_rmse(bp_mpi *dp, bp_int n, const void *X, bp_int ldx, const void *targets, bp_int ldt,
                      double *rmse)
{
    const char *fn = __func__;
    if (dp == NULL || rmse == NULL)
        return bp__mpi_fail(BP_ERR_ARG, fn, "%s is NULL", dp == NULL ? "dp" : "rmse");
    double mine = 0, v[3] = {0, n, 0}, rows = 0;
    const bp_status local = n > 0 ? bp_net_rmse(dp->net, n, X, ldx, targets, ldt, &mine) : BP_OK;
    v[0] = mine * mine * n;  /* the squared errors' sum over n_out elements a row, / n_out */
    TRY(sum_with_rows(fn, dp, local, v, 1, &rows));
    *rmse = sqrt(v[0] / rows);
    return BP_OK;
}

bp_status bp_mpi_accuracy(bp_mpi *dp, bp_int n, const void *X, bp_int ldx, const int32_t *labels,
                          double *accuracy, int64_t *confusion)
{
    const char *fn = __func__;
    if (dp == NULL || accuracy == NULL)
        return bp__mpi_fail(BP_ERR_ARG, fn, "%s is NULL", dp == NULL ? "dp" : "accuracy");
    double mine = 0, v[3] = {0, n, 0}, rows = 0;
    const bp_status local = n > 0 ? bp_net_accuracy(dp->net, n, X, ldx, labels, &mine, confusion) : BP_OK;
    if (n == 0 && confusion) {  /* a rank with no rows contributes an empty matrix */
        const size_t k = (size_t)bp_net_n_out(dp->net);
        for (size_t i = 0; i < k * k; i++)
            confusion[i] = 0;
    }
    v[0] = mine * n;
    TRY(sum_with_rows(fn, dp, local, v, 1, &rows));
    *accuracy = round(v[0]) / rows;  /* a count of correct rows, exact once rounded */
    if (confusion) {
        const int k = (int)bp_net_n_out(dp->net);
        TRY(bp__mpi_check(MPI_Allreduce(MPI_IN_PLACE, confusion, k * k, MPI_INT64_T, MPI_SUM, dp->comm), fn,
                          "MPI_Allreduce of the confusion matrix"));
    }
    return BP_OK;
}
