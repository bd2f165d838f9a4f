/* SPDX-License-Identifier: MIT */
/** \file
 * backprop/mpi.h: data-parallel training over MPI (libbackprop-mpi, pkg-config backprop-mpi;
 * built when Meson finds MPI, -Dmpi=auto|enabled|disabled).
 *
 * Every rank of a communicator holds a replica of the network. bp_mpi_attach broadcasts the
 * root's parameters and sets the network's reducer (backprop/parallel.h): from then on every
 * gradient pass of the network (bp_net_loss_and_grad, bp_optim_train_step, bp_train) runs on
 * the rank's shard of the global batch, divides its loss by the global batch size, and sums
 * the gradient over the ranks (MPI_SUM of MPI_FLOAT or MPI_DOUBLE, no division by the rank
 * count) before the optimizer sees it, so the replicas stay identical. The optimizers work
 * unchanged; the fused SGD update is off.
 *
 * Shards follow the fixed rule of parallel.h: the first n mod p ranks take one sample more.
 * Each rank passes its own rows to a step; the ranks' counts are checked against the rule at
 * every step (BP_ERR_MISMATCH on every rank otherwise). A step whose arguments one rank refuses
 * (a NULL pointer, a bad leading dimension) fails on that rank with its message and on the
 * others with BP_ERR_COMM, and so does a step that fails inside one rank (a NaN found by the
 * finite check): no rank waits for another, and no rank updates.
 *
 * Overlap (the default): as backward makes a layer's gradient final (last layer first), its
 * MPI_Iallreduce starts while the layers below still back-propagate; the step's update waits
 * for all of them. The executor calls MPI_Testall between the steps of the plan, since Open MPI
 * progresses non-blocking collectives only inside MPI calls. Without overlap the same
 * reductions (one MPI_Iallreduce per layer, on the same buffers, in the same order) start after
 * the backward pass, so both modes give the same bits. The sums depend on the rank count and
 * on the MPI library's reduction algorithm for that count and message size, not on timing: a
 * run is bitwise reproducible for a given rank count.
 *
 * Threads: with the default config.threads (0), each rank runs on the cores of its affinity
 * mask divided among the ranks of its node whose masks overlap it (at least one), at most
 * OMP_NUM_THREADS / OPENBLAS_NUM_THREADS; a launcher that binds one rank per core so gives one
 * thread per rank, and oversubscribed unbound ranks share the cores instead of each starting
 * one thread per core. To give each rank k cores: mpirun --map-by slot:PE=k (each rank is bound
 * to k cores), or config.threads = k.
 *
 * All calls taking a bp_mpi are collective over its communicator unless said otherwise: every
 * rank makes them in the same order. MPI errors are returned as BP_ERR_COMM with MPI's own
 * message (the library's duplicate of the communicator returns errors; the caller's
 * communicator and MPI's settings are left as they are). MPI must be initialised by the caller. */
#ifndef BACKPROP_MPI_H
#define BACKPROP_MPI_H

#include <mpi.h>
#include <stdint.h>
#include "core.h"
#include "net.h"
#include "parallel.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A network's data-parallel attachment. */
typedef struct bp_mpi bp_mpi;

/** How bp_mpi_attach sets a network up. */
typedef struct bp_mpi_config {
    int root;     /**< the rank whose parameters (and standardisation) every rank receives: 0 */
    int overlap;  /**< 1 (default): each layer's reduction starts as soon as its gradient is
                       final; 0: all start after the backward pass (same results) */
    int threads;  /**< 0 (default): share the rank's cores with the node's other ranks (above);
                       k >= 1: k threads; -1: leave the network's thread count alone */
} bp_mpi_config;

/** The defaults: root 0, overlap on, threads shared (0). */
BP_API bp_mpi_config bp_mpi_defaults(void);

/** Makes `net` (the same shapes on every rank) a replica over `comm` (duplicated; the
 * caller's communicator may be any intra-communicator, MPI_COMM_WORLD or a part of it).
 * Collective. Checks that every rank's network agrees with the root's (dtype, inputs, layer
 * widths, activations, loss, parameter count, standardisation present) and returns
 * BP_ERR_MISMATCH on every rank, naming the first rank and what differs, if not; then
 * broadcasts the root's parameters and standardisation, sets the thread count (config) and the
 * network's reducer. config NULL: the defaults. A network has at most one attachment. */
BP_API bp_status bp_mpi_attach(bp_mpi **out, bp_net *net, MPI_Comm comm, const bp_mpi_config *config);

/** bp_mpi_attach with a Fortran communicator handle (MPI_Comm_f2c), for the Fortran module. */
BP_API bp_status bp_mpi_attach_f(bp_mpi **out, bp_net *net, MPI_Fint comm, const bp_mpi_config *config);

/** Removes the network's reducer and frees the attachment (collective: frees the duplicate
 * communicator). NULL is ignored. The network stays as it is, a plain network again. */
BP_API void bp_mpi_detach(bp_mpi *dp);

/** Turns overlap on or off (not collective, but every rank must use the same mode). */
BP_API bp_status bp_mpi_set_overlap(bp_mpi *dp, int on);

/** This rank's index in the attachment's communicator (-1 for NULL). Not collective. */
BP_API int bp_mpi_rank(const bp_mpi *dp);
/** The number of ranks (0 for NULL). Not collective. */
BP_API int bp_mpi_size(const bp_mpi *dp);

/** Time and traffic of the gradient reductions since attach or the last reset. */
typedef struct bp_mpi_stats {
    long steps;            /**< gradient passes */
    double wait_seconds;   /**< time this rank spent in MPI after its backward pass: completing the
                                reductions and the step's small sums (what overlap hides is not in it) */
    double comm_seconds;   /**< all time spent in MPI calls during the passes (starts, tests, waits,
                                the step's shard check) */
    double bytes;          /**< gradient bytes this rank contributed to reductions */
} bp_mpi_stats;

/** This rank's figures (not collective). */
BP_API bp_status bp_mpi_get_stats(const bp_mpi *dp, bp_mpi_stats *stats);
/** Zeroes the figures (not collective). */
BP_API bp_status bp_mpi_reset_stats(bp_mpi *dp);

/** The mean loss over every rank's rows (each rank passes its own n rows, any split): like
 * bp_net_eval_loss on the concatenation. */
BP_API bp_status bp_mpi_eval_loss(bp_mpi *dp, bp_int n, const void *X, bp_int ldx, const void *targets,
                                  bp_int ldt, double *loss);

/** bp_net_accuracy over every rank's rows: the global accuracy, and the global confusion matrix
 * (n_out x n_out, may be NULL) on every rank. */
BP_API bp_status bp_mpi_accuracy(bp_mpi *dp, bp_int n, const void *X, bp_int ldx, const int32_t *labels,
                                 double *accuracy, int64_t *confusion);

/** bp_net_rmse over every rank's rows. */
BP_API bp_status bp_mpi_rmse(bp_mpi *dp, bp_int n, const void *X, bp_int ldx, const void *targets, bp_int ldt,
                             double *rmse);

/** Sums the network's gradient buffer over the ranks, in place (MPI_Allreduce): for host codes
 * that form their gradient themselves, e.g. with bp_net_backward, which stays local. */
BP_API bp_status bp_mpi_allreduce_grads(bp_mpi *dp);

/** Broadcasts the root's parameters to every rank again (e.g. after loading a model on the
 * root only). */
BP_API bp_status bp_mpi_broadcast_params(bp_mpi *dp);

#ifdef __cplusplus
}
#endif

#endif
