/* SPDX-License-Identifier: MIT */
/** \file
 * backprop/train.h: the training-loop helper and multinomial logistic regression (first- and second-order). */
#ifndef BACKPROP_TRAIN_H
#define BACKPROP_TRAIN_H

#include <stdint.h>
#include "core.h"
#include "net.h"
#include "optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What the training helper reports after each epoch. metric is the training
 * accuracy (softmax / BCE losses, measured on the epoch's batches with the
 * parameters of each batch before its update) or the RMSE (MSE loss). */
typedef struct bp_epoch_report {
    long epoch;            /**< 1, 2, ... */
    double loss;           /**< mean training loss over the epoch */
    double metric;         /**< accuracy or RMSE, see above */
    double samples_per_s;  /**< training throughput of the epoch */
    double seconds;        /**< wall time of the epoch */
    double val_loss;       /**< mean loss on the validation set; NaN without one */
    double val_metric;     /**< accuracy or RMSE on the validation set; NaN without one */
    int best;              /**< nonzero when val_loss is the lowest so far (first epoch included) */
} bp_epoch_report;

/** Where a training run stands between epochs, so a run saved (bp_model_save_state) and
 * continued gives the same bits as one never interrupted. A zeroed state is a fresh run:
 * bp_train then seeds the shuffling generator from the configuration's seed. */
typedef struct bp_train_state {
    long epochs_done;      /**< epochs finished */
    uint64_t rng[4];       /**< the shuffling generator (xoshiro256**); all zero: not yet seeded */
} bp_train_state;

/** Called after every epoch; a nonzero return stops training (bp_train returns BP_OK). */
typedef int (*bp_epoch_fn)(const bp_epoch_report *report, void *ctx);

/** Called after every batch (for progress bars); may be NULL. Callbacks run inside bp_train,
 * so BLAS called from them sees the one thread the library holds it to (net.h, Threads). */
typedef void (*bp_batch_fn)(long epoch, long batch, long n_batches, double loss, void *ctx);

/** How bp_train runs: epochs, batches, shuffling, callbacks, resumption, validation. */
typedef struct bp_train_config {
    long epochs;           /**< >= 1 */
    bp_int batch_size;     /**< >= 1; streams in micro-batches if above the plan's */
    uint64_t seed;         /**< shuffling: a fresh permutation per epoch from this seed */
    int shuffle;           /**< 0: samples in order */
    bp_epoch_fn on_epoch;  /**< may be NULL */
    bp_batch_fn on_batch;  /**< may be NULL */
    void *ctx;             /**< passed to on_epoch and on_batch */
    bp_train_state *state; /**< NULL: a fresh run. Otherwise the run continues from *state (epochs
                              state->epochs_done + 1 .. epochs) and *state is updated after every
                              epoch */
    /** A validation set (raw inputs, like X; targets like the training targets), evaluated after
     * every epoch: n_val 0 for none. */
    bp_int n_val;
    const void *X_val;        /**< validation inputs, n_val x n_in (raw, like X) */
    bp_int ldx_val;           /**< leading dimension of X_val */
    const void *targets_val;  /**< validation targets, as the training targets */
    bp_int ldt_val;           /**< leading dimension of targets_val (real targets) */
    long early_stop;       /**< 0: off. K >= 1 (needs a validation set): stop after K epochs without
                              a validation loss below the best. With a validation set, the best
                              epoch's parameters are restored when training ends, early or not */
} bp_train_config;

/** Trains `net` (planned) with `opt` on n samples X (n x n_in, ldx) and targets
 * (int32_t labels, or n x n_out values with leading dimension ldt) for
 * config->epochs epochs of mini-batches (the last batch of an epoch may be
 * smaller). Each batch is gathered into the network's arena in micro-batches;
 * the helper allocates its permutation once, before the first step. */
BP_API bp_status bp_train(bp_net *net, bp_optim *opt, bp_int n, const void *X, bp_int ldx,
                          const void *targets, bp_int ldt, const bp_train_config *config);

/** Multinomial logistic regression: a network with one identity layer of
 * n_classes outputs and the softmax cross-entropy loss. */
BP_API bp_status bp_logreg_create(bp_net **out, bp_dtype dtype, bp_int n_in, bp_int n_classes,
                                  const bp_allocator *alloc);

/** The largest model bp_logreg_newton accepts: n_classes (n_in + 1) parameters,
 * whose dense Hessian is that squared in doubles (4096^2 x 8 B = 128 MiB). */
#define BP_LOGREG_NEWTON_MAX_PARAMS 4096

/** Fits a logistic-regression network (from bp_logreg_create) by Newton's
 * method / IRLS on the ridge-regularised mean cross-entropy
 *     L(theta) = mean_i -log softmax(W x_i + b)[c_i] + ridge/2 |theta|^2
 * (ridge > 0 applies to W and b: it also removes softmax's shift invariance,
 * which makes the plain Hessian singular). Each iteration forms the dense
 * Hessian and solves H d = g with LAPACKE ?posv (Cholesky), then
 * theta -= d, halving the step while the loss does not decrease. Stops when
 * max|g| < tol or after max_iter iterations; *iters (may be NULL) receives the
 * number done. Refuses models above BP_LOGREG_NEWTON_MAX_PARAMS with
 * BP_ERR_OVERFLOW, naming the Hessian's size. Works in double whatever the
 * network's dtype; needs no plan. Allocates its Hessian and work space for the
 * duration of the call; on error the parameters are unchanged. */
BP_API bp_status bp_logreg_newton(bp_net *net, bp_int n, const void *X, bp_int ldx,
                                  const int32_t *labels, double ridge, int max_iter, double tol,
                                  int *iters);

#ifdef __cplusplus
}
#endif
#endif
