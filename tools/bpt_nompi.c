/* SPDX-License-Identifier: MIT */
/* bpt_nompi.c: backprop-train's MPI interface (bpt.h) in a build without MPI: always a plain run
 * of one rank, evaluated by the network alone. bpt_mpi.c replaces it when Meson finds MPI. */
#include "bpt.h"

int bpt_mpi_start(void)
{
    return 0;
}

void bpt_mpi_stop(void)
{
}

int bpt_rank(void)
{
    return 0;
}

int bpt_ranks(void)
{
    return 1;
}

int bpt_agree(int rc)
{
    return rc;
}

int bpt_mpi_attach(bp_net *net, int threads, int quiet)
{
    (void)net;
    (void)threads;
    (void)quiet;
    return 0;
}

void bpt_mpi_detach(void)
{
}

bp_status bpt_eval_loss(bp_net *net, bp_int n, const void *X, bp_int ldx, const void *targets, bp_int ldt,
                        double *loss)
{
    return bp_net_eval_loss(net, n, X, ldx, targets, ldt, loss);
}

bp_status bpt_accuracy(bp_net *net, bp_int n, const void *X, bp_int ldx, const int32_t *labels, double *accuracy,
                       int64_t *confusion)
{
    return bp_net_accuracy(net, n, X, ldx, labels, accuracy, confusion);
}

bp_status bpt_rmse(bp_net *net, bp_int n, const void *X, bp_int ldx, const void *targets, bp_int ldt, double *rmse)
{
    return bp_net_rmse(net, n, X, ldx, targets, ldt, rmse);
}

bp_status bpt_sum_counts(int64_t *v, int n, bp_status local)
{
    (void)v;
    (void)n;
    return local;
}
