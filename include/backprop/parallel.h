/* SPDX-License-Identifier: MIT */
/** \file
 * backprop/parallel.h: data parallelism without a transport. The fixed rule that shards a batch
 * over ranks, and the reducer: the hook through which a network's gradient passes sum their
 * gradient across replicas. libbackprop-mpi (backprop/mpi.h) implements the reducer with MPI;
 * the core library itself never communicates and depends on no MPI. */
#ifndef BACKPROP_PARALLEL_H
#define BACKPROP_PARALLEL_H

#include <stddef.h>
#include <stdint.h>
#include "core.h"
#include "net.h"

#ifdef __cplusplus
extern "C" {
#endif

/** \name The fixed rule of sharding
 * n samples over p ranks: rank r takes n / p samples, plus one when r < n mod p (the first
 * n mod p ranks take one more), in rank order. Every global batch of a data-parallel run is
 * split so, the last, partial batch of an epoch included. */
/** \{ */
/** How many of n samples rank r of p takes (0 for invalid arguments: n < 0, p < 1, r not in [0, p)). */
BP_API bp_int bp_shard_count(bp_int n, int p, int r);
/** The first of rank r's samples among n: the count of ranks 0..r-1 (0 for invalid arguments). */
BP_API bp_int bp_shard_start(bp_int n, int p, int r);
/** The rows of a training set of n_total samples that rank r of p holds for a data-parallel
 * bp_train with global batch size `batch` (unshuffled: the batches are rows [k batch,
 * min(n_total, (k + 1) batch)), each split by the fixed rule): *count receives how many, and
 * rows (when not NULL, room for *count) the row indices in increasing order. Trained unshuffled
 * on these rows, p ranks take exactly the single-process run's batches. */
BP_API bp_status bp_shard_rows(bp_int n_total, bp_int batch, int p, int r, int32_t *rows, bp_int *count);
/** \} */

/** A reducer: what a network calls, on the calling thread, in every gradient pass
 * (bp_net_loss_and_grad, bp_net_loss_and_grad_dx, bp_optim_train_step, bp_train) when one is
 * set. Each callback returns BP_OK, or a status after reporting its error (bp_report_error).
 *
 * A pass calls begin, then layer_ready once per layer from the last layer down (on its last
 * micro-batch, as soon as backward has made that layer's gradient final, or after the pass for
 * a rank with no rows), progress between the steps of the plan, and finish. A pass that fails
 * on this rank still announces every layer and calls finish with a nonzero failure flag, so
 * that no other rank waits forever; then every rank returns an error. */
typedef struct bp_reducer {
    void *ctx;   /**< passed to every callback */
    int rank;    /**< this replica's index, in [0, size) */
    int size;    /**< the number of replicas */
    /** A gradient pass over this rank's n_local rows starts: *n_total receives the global batch
     * size, the loss divisor of every rank (the rows of all ranks). Fails when the ranks' counts
     * do not follow the fixed rule. n_local -1: this rank refused the pass's arguments (its
     * message recorded); begin lets every rank fail instead of waiting for it. */
    bp_status (*begin)(void *ctx, bp_int n_local, bp_int *n_total);
    /** Layer `layer`'s gradient, count values at grad (W, then b), is final on this rank: sum it
     * over the ranks, in place, before finish returns. */
    bp_status (*layer_ready)(void *ctx, bp_int layer, void *grad, size_t count);
    /** Between steps: lets outstanding reductions progress. May be NULL. */
    bp_status (*progress)(void *ctx);
    /** The pass ends: completes every layer's sum, and sums the n values v (the pass's loss,
     * correct predictions and failure flag) over the ranks, in place. */
    bp_status (*finish)(void *ctx, double *v, int n);
    /** Sums the n values v over the ranks, in place (the training helper's epoch figures and
     * agreements). */
    bp_status (*sum)(void *ctx, double *v, int n);
} bp_reducer;

/** Sets the network's reducer (copied), or removes it (reducer NULL). With a reducer, the
 * gradient passes divide the loss by the global batch size and leave in the gradient buffer
 * the sum over the ranks: the gradient of the global batch's mean loss; the reported loss and
 * correct counts are global too. The fused SGD update is off. Passes that cannot be
 * distributed so refuse with BP_ERR_UNSUPPORTED: bp_net_gradcheck, bp_logreg_newton,
 * bp_lm_fit, and a gradient pass accumulating into the buffer (beta != 0). Forward-only
 * passes (predictions, evaluation, bp_net_backward) stay local. */
BP_API bp_status bp_net_set_reducer(bp_net *net, const bp_reducer *reducer);

/** Nonzero when the network has a reducer. */
BP_API int bp_net_has_reducer(const bp_net *net);

/** Records an error as the library's own functions do, for libraries built on this one (a
 * reducer, libbackprop-mpi, the Fortran modules): bp_last_error() then returns "fn: message".
 * Returns status. Not variadic, so that any language can call it. */
BP_API bp_status bp_report_error(bp_status status, const char *fn, const char *message);

#ifdef __cplusplus
}
#endif

#endif
