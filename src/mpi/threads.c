/* SPDX-License-Identifier: MIT */
/* threads.c: the thread count of a rank (bp_mpi_config.threads). The policy, apart from the
 * math: a rank whose affinity mask is smaller than the node (the launcher bound it) owns the
 * cores of its mask; an unbound rank shares the node's cores with the job's other ranks on the
 * node. Either way the count stays within the network's default (OMP_NUM_THREADS,
 * OPENBLAS_NUM_THREADS), and is at least 1. */
#define _GNU_SOURCE  /* sched_getaffinity, CPU_COUNT */
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>
#include "mpi/mpi_internal.h"

/* The job's ranks on this node, from the launcher's environment (Open MPI, MPICH's Hydra); 0
 * when it does not say. */
static int local_ranks_from_env(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        const long k = v ? strtol(v, NULL, 10) : 0;
        if (k >= 1 && k <= 1 << 20)
            return (int)k;
    }
    return 0;
}

/* Ranks on this node: the launcher's count, else this communicator's ranks sharing memory. */
static bp_status local_ranks(const char *fn, bp_mpi *dp, int *k)
{
    *k = local_ranks_from_env();
    if (*k > 0)
        return BP_OK;
    MPI_Comm node;
    TRY_MPI(MPI_Comm_split_type(dp->comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node), "MPI_Comm_split_type");
    const int rc = MPI_Comm_size(node, k);
    MPI_Comm_free(&node);
    TRY_MPI(rc, "MPI_Comm_size");
    return BP_OK;
}

bp_status bp__mpi_threads(const char *fn, bp_mpi *dp, int threads)
{
    /* Every rank takes part (the fallback count is collective), whatever its mask. */
    int sharing = 1;
    if (threads == 0)
        TRY(local_ranks(fn, dp, &sharing));
    if (threads > 0)
        return bp_net_set_threads(dp->net, threads);
    cpu_set_t mask;
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    int cpus = (int)(online > 0 ? online : 1);
    if (sched_getaffinity(0, sizeof mask, &mask) == 0 && CPU_COUNT(&mask) >= 1)
        cpus = CPU_COUNT(&mask);
    const int bound = online > 0 && cpus < online;
    int want = bound ? cpus : cpus / sharing;
    TRY(bp_net_set_threads(dp->net, 0));  /* the network's default: the mask within the variables */
    const int cap = bp_net_threads(dp->net);
    want = want < 1 ? 1 : want > cap ? cap : want;
    return bp_net_set_threads(dp->net, want);
}
