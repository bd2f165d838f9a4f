/* SPDX-License-Identifier: MIT */
/* bpt_mpi.c: backprop-train under an MPI launcher (mpiexec, mpirun): MPI's start and end, the
 * network as a data-parallel replica over MPI_COMM_WORLD (libbackprop-mpi), the evaluation and
 * the counts summed over the ranks. Built only when Meson finds MPI (BPT_HAVE_MPI); bpt_nompi.c
 * stands in otherwise. The interface: bpt.h. */
#include <stdio.h>
#include <stdlib.h>
#include <mpi.h>
#include <backprop/mpi.h>
#include "bpt.h"

#ifndef BPT_HAVE_MPI
#error "bpt_mpi.c is built only with MPI (tools/meson.build defines BPT_HAVE_MPI then)"
#endif

static int started;          /* MPI_Init was called (and MPI_Finalize is due) */
static int my_rank, n_ranks = 1;
static bp_mpi *dp;           /* the network's attachment, with several ranks */

/* Started by an MPI launcher: Open MPI's mpiexec, a PMIx launcher, MPICH's Hydra. */
static int launched(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return 1;
    }
    return 0;
}

/* MPI's account of error code err. */
static const char *mpi_message(int err, char *buf)
{
    int len = 0;
    if (MPI_Error_string(err, buf, &len) != MPI_SUCCESS)
        snprintf(buf, MPI_MAX_ERROR_STRING, "MPI error %d", err);
    return buf;
}

int bpt_mpi_start(void)
{
    if (!launched())
        return 0;
    const int err = MPI_Init(NULL, NULL);
    if (err != MPI_SUCCESS) {
        fprintf(stderr, "backprop-train: MPI_Init failed (error %d)\n", err);
        return 1;
    }
    started = 1;
    /* The program's own sums return their errors as statuses instead of aborting. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &my_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n_ranks);
    if (n_ranks > 1 && my_rank != 0 && !freopen("/dev/null", "w", stdout)) {
        fprintf(stderr, "rank %d: backprop-train: cannot send standard output to /dev/null\n", my_rank);
        MPI_Abort(MPI_COMM_WORLD, 1);  /* every rank waits for this one's first sum: end them all */
    }
    return 0;
}

void bpt_mpi_stop(void)
{
    bpt_mpi_detach();
    if (started) {
        fflush(stdout);
        MPI_Finalize();
        started = 0;
    }
}

int bpt_rank(void)
{
    return my_rank;
}

int bpt_ranks(void)
{
    return n_ranks;
}

int bpt_agree(int rc)
{
    if (n_ranks == 1)
        return rc;
    int worst = 0;
    const int err = MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (err != MPI_SUCCESS) {
        char buf[MPI_MAX_ERROR_STRING];
        return rc ? rc : run_fail("agreeing with the other ranks: %s", mpi_message(err, buf));
    }
    return rc ? rc : worst;  /* another rank failed: it said why */
}

int bpt_mpi_attach(bp_net *net, int threads, int quiet)
{
    if (n_ranks == 1)
        return 0;
    bp_mpi_config c = bp_mpi_defaults();
    c.threads = threads > 0 ? threads : 0;  /* --threads N: N per rank; else the rank's share of its cores */
    const bp_status st = bp_mpi_attach(&dp, net, MPI_COMM_WORLD, &c);
    if (st != BP_OK) {
        dp = NULL;
        return bp_fail("making the network a replica over the ranks (bp_mpi_attach)", st);
    }
    /* The fewest and most threads of a rank (-min, max), for the line below. */
    int t[2] = {-bp_net_threads(net), bp_net_threads(net)};
    if (MPI_Allreduce(MPI_IN_PLACE, t, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS)
        t[0] = -bp_net_threads(net), t[1] = bp_net_threads(net);  /* the line only: this rank's */
    if (quiet)
        return 0;
    if (-t[0] == t[1])
        printf("mpi: %d ranks, %d thread%s per rank\n", n_ranks, t[1], t[1] == 1 ? "" : "s");
    else
        printf("mpi: %d ranks, %d to %d threads per rank\n", n_ranks, -t[0], t[1]);
    return 0;
}

void bpt_mpi_detach(void)
{
    bp_mpi_detach(dp);
    dp = NULL;
}

bp_status bpt_eval_loss(bp_net *net, bp_int n, const void *X, bp_int ldx, const void *targets, bp_int ldt,
                        double *loss)
{
    return dp ? bp_mpi_eval_loss(dp, n, X, ldx, targets, ldt, loss)
              : bp_net_eval_loss(net, n, X, ldx, targets, ldt, loss);
}

bp_status bpt_accuracy(bp_net *net, bp_int n, const void *X, bp_int ldx, const int32_t *labels, double *accuracy,
                       int64_t *confusion)
{
    return dp ? bp_mpi_accuracy(dp, n, X, ldx, labels, accuracy, confusion)
              : bp_net_accuracy(net, n, X, ldx, labels, accuracy, confusion);
}

bp_status bpt_rmse(bp_net *net, bp_int n, const void *X, bp_int ldx, const void *targets, bp_int ldt, double *rmse)
{
    return dp ? bp_mpi_rmse(dp, n, X, ldx, targets, ldt, rmse) : bp_net_rmse(net, n, X, ldx, targets, ldt, rmse);
}

bp_status bpt_sum_counts(int64_t *v, int n, bp_status local)
{
    if (n_ranks == 1)
        return local;
    /* The failures first, so that every rank knows whether the counts are worth summing. */
    int64_t failed = local != BP_OK;
    int err = MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    if (err == MPI_SUCCESS && !failed)
        err = MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    if (local != BP_OK)
        return local;
    char why[MPI_MAX_ERROR_STRING + 64];
    if (err != MPI_SUCCESS) {
        char msg[MPI_MAX_ERROR_STRING];
        snprintf(why, sizeof why, "summing counts over the ranks: %s", mpi_message(err, msg));
        return bp_report_error(BP_ERR_COMM, "backprop-train", why);
    }
    if (failed) {
        snprintf(why, sizeof why, "%lld other rank%s failed (see their messages)", (long long)failed,
                 failed == 1 ? "" : "s");
        return bp_report_error(BP_ERR_COMM, "backprop-train", why);
    }
    return BP_OK;
}
