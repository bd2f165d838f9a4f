/* SPDX-License-Identifier: MIT */
/** \file
 * backprop/train.h: the training-loop helper, multinomial logistic regression (first- and second-order) and
 * Levenberg-Marquardt for MSE networks. */
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

/** Why bp_lm_fit stopped (bp_lm_report::stop). */
typedef enum bp_lm_stop {
    BP_LM_RUNNING = 0,   /**< not stopped: the value in the reports passed to the callback */
    BP_LM_MAX_ITER = 1,  /**< max_iter iterations done */
    BP_LM_GOAL = 2,      /**< the training MSE reached goal */
    BP_LM_MIN_GRAD = 3,  /**< the gradient's 2-norm fell below min_grad */
    BP_LM_MU_MAX = 4,    /**< mu rose above mu_max without a step that lowers the MSE */
    BP_LM_VAL_FAIL = 5,  /**< max_fail iterations in a row without a better validation MSE */
    BP_LM_CALLBACK = 6   /**< the callback returned nonzero */
} bp_lm_stop;

/** Where a Levenberg-Marquardt fit stands: after an iteration (the callback's), or at the end. */
typedef struct bp_lm_report {
    int iterations;    /**< accepted steps so far */
    double mse;        /**< training MSE, mean over all n x n_out elements, at the current parameters */
    double val_mse;    /**< validation MSE (NaN without a validation set); at the end, the best one,
                            whose parameters the network then holds */
    double grad_norm;  /**< 2-norm of the MSE's gradient (2 / (n n_out)) J^T e at the last point where
                            J was formed */
    double mu;         /**< the damping the next iteration starts with */
    bp_lm_stop stop;   /**< why the fit stopped; BP_LM_RUNNING in the callback's reports */
    double seconds;    /**< wall time since the call began */
} bp_lm_report;

/** Called after every iteration of bp_lm_fit (an accepted step); a nonzero return stops the fit
 * with BP_LM_CALLBACK. */
typedef int (*bp_lm_fn)(const bp_lm_report *report, void *ctx);

/** The default bp_lm_config::max_bytes: 256 MiB, a system of about 5700 parameters. */
#define BP_LM_DEFAULT_MAX_BYTES ((size_t)256 << 20)

/** How bp_lm_fit runs; bp_lm_defaults() gives MATLAB trainlm's defaults. */
typedef struct bp_lm_config {
    int max_iter;      /**< at most this many iterations, >= 0 (default 1000) */
    double goal;       /**< stop when the training MSE <= goal, >= 0 (default 0: never) */
    double min_grad;   /**< stop when the MSE's gradient has a 2-norm below this, >= 0 (default 1e-7) */
    double mu;         /**< initial damping, > 0 (default 1e-3) */
    double mu_dec;     /**< mu is multiplied by this after an accepted step, in (0, 1) (default 0.1) */
    double mu_inc;     /**< and by this after a rejected one, > 1 (default 10) */
    double mu_max;     /**< stop when mu exceeds this, >= mu (default 1e10) */
    int max_fail;      /**< with a validation set: stop after this many iterations in a row
                            without a better validation MSE, >= 1 (default 6) */
    bp_int n_val;      /**< validation samples; 0 (default) for none */
    const void *X_val; /**< validation inputs, n_val x n_in (raw, like X) */
    bp_int ldx_val;    /**< leading dimension of X_val */
    const void *T_val; /**< validation targets, n_val x n_out, the network's dtype */
    bp_int ldt_val;    /**< leading dimension of T_val */
    bp_int block;      /**< samples per Jacobian block, >= 0 (0, default: as many as keep the
                            block's n_out x n_params doubles near 1 MiB, but at least n_params / 4
                            rows, so each rank update of the triangle does enough work) */
    size_t max_bytes;  /**< refuse (BP_ERR_OVERFLOW) when the P x P system and the work space need
                            more bytes than this (0, default: BP_LM_DEFAULT_MAX_BYTES) */
    bp_lm_fn on_iter;  /**< called after every iteration; may be NULL */
    void *ctx;         /**< passed to on_iter */
} bp_lm_config;

/** MATLAB trainlm's defaults: max_iter 1000, goal 0, min_grad 1e-7, mu 1e-3, mu_dec 0.1,
 * mu_inc 10, mu_max 1e10, max_fail 6; no validation set, default block and max_bytes, no callback. */
BP_API bp_lm_config bp_lm_defaults(void);

/** Fits a network whose loss is a squared error, BP_LOSS_MSE or BP_LOSS_LEAST_SQUARES (others:
 * BP_ERR_ARG), to n >= 1 samples X (n x n_in, ldx, raw inputs) and targets T (n x n_out, ldt, the network's dtype) by Levenberg-Marquardt,
 * as MATLAB's trainlm. The performance is the MSE, a mean over all n x n_out elements. With
 * e = Y - T and J = dY/dparams (bp_net_jacobian_params), each iteration forms
 *     A = J^T J (sums over all samples, not means, so mu has trainlm's scale) and g = J^T e
 * block by block of samples (the whole J is never stored), solves (A + mu I) d = g by Cholesky
 * (LAPACKE ?potrf/?potrs) and tries params - d: if the MSE decreases, the step is taken and mu is
 * multiplied by mu_dec (kept >= 1e-20); otherwise, or when the Cholesky factorisation fails, mu is
 * multiplied by mu_inc and the step is solved again from the same point. It stops on the first of
 * (bp_lm_stop): MSE <= goal, gradient norm < min_grad, max_iter iterations, mu > mu_max, and with
 * a validation set max_fail iterations without a better validation MSE, or the callback; with a
 * validation set, the parameters with the best validation MSE (the initial ones included) are
 * restored at the end. *report (may be NULL) receives the final state and the stop reason.
 *
 * Works in double whatever the network's dtype (a float network's Jacobian is converted block by
 * block; its parameters are rounded to float at every trial). The network must be planned: the
 * passes stream through its plan as bp_net_forward does, on its threads. OpenBLAS is held to one
 * thread for the whole fit, as bp_train holds it (net.h, Threads), the rank updates and the
 * Cholesky solve included: between the network's passes, OpenBLAS's own idle threads spin and
 * take the cores the passes run on (2-15-15-1 on 900 samples, 2 cores: 7.1 s with the host's
 * two BLAS threads, 3.1 s with one). The P x P system (P = n_params; one triangle holds J^T J,
 * the other its factor) and the work space (a block of J, the n x n_out residuals, three copies
 * of the parameters) are sized before anything is allocated: above config->max_bytes the call
 * fails with BP_ERR_OVERFLOW naming P and the bytes. It allocates once, through the network's
 * allocator, never inside an iteration. config NULL means bp_lm_defaults(). On error the
 * parameters are unchanged; a NaN or Inf MSE at the start is BP_ERR_NONFINITE, a non-finite trial
 * is a rejected step. */
BP_API bp_status bp_lm_fit(bp_net *net, bp_int n, const void *X, bp_int ldx, const void *T, bp_int ldt,
                           const bp_lm_config *config, bp_lm_report *report);

#ifdef __cplusplus
}
#endif
#endif
