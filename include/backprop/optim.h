/* SPDX-License-Identifier: MIT */
/** \file
 * backprop/optim.h: first-order optimizers over a network's flat parameter and gradient buffers,
 * with learning-rate schedules. */
#ifndef BACKPROP_OPTIM_H
#define BACKPROP_OPTIM_H

#include <stddef.h>
#include "core.h"
#include "net.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The update rules, as PyTorch defines them (g the gradient, p a parameter,
 * lr the scheduled rate, wd the weight decay, t = 1, 2, ... the step count):
 * \code{.unparsed}
 *   BP_OPT_SGD       g' = g + wd p;              p -= lr g'
 *   BP_OPT_MOMENTUM  g' = g + wd p; b = mu b + g'; p -= lr b        (b starts at 0)
 *   BP_OPT_NESTEROV  g' = g + wd p; b = mu b + g'; p -= lr (g' + mu b)
 *   BP_OPT_ADAM      g' = g + wd p (L2);  m = b1 m + (1 - b1) g';  v = b2 v + (1 - b2) g'^2;
 *                    p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)   (eps outside the root)
 *   BP_OPT_ADAMW     p -= lr wd p (decoupled), then Adam's update with g' = g.
 * \endcode */
typedef enum bp_optimizer {
    BP_OPT_SGD = 1,       /**< stochastic gradient descent */
    BP_OPT_MOMENTUM = 2,  /**< SGD with (heavy-ball) momentum */
    BP_OPT_NESTEROV = 3,  /**< SGD with Nesterov momentum */
    BP_OPT_ADAM = 4,      /**< Adam, weight decay as L2 */
    BP_OPT_ADAMW = 5      /**< Adam with decoupled weight decay */
} bp_optimizer;

/** The learning rate at step t (t = 0 for the first step):
 * \code{.unparsed}
 *   BP_SCHED_CONSTANT  lr
 *   BP_SCHED_STEP      lr gamma^floor(t / step_size)
 *   BP_SCHED_COSINE    lr_min + (lr - lr_min) (1 + cos(pi min(t, t_max) / t_max)) / 2
 * \endcode */
typedef enum bp_schedule {
    BP_SCHED_CONSTANT = 0,  /**< lr throughout */
    BP_SCHED_STEP = 1,      /**< lr times gamma every step_size steps */
    BP_SCHED_COSINE = 2     /**< cosine decay from lr to lr_min over t_max steps */
} bp_schedule;

/** An optimizer's rule, hyperparameters and learning-rate schedule (see bp_optim_defaults). */
typedef struct bp_optim_config {
    bp_optimizer kind;     /**< the update rule */
    double lr;             /**< > 0 */
    double momentum;       /**< mu in [0, 1): MOMENTUM, NESTEROV */
    double beta1;          /**< in [0, 1): ADAM, ADAMW (PyTorch: 0.9) */
    double beta2;          /**< in [0, 1): ADAM, ADAMW (PyTorch: 0.999) */
    double eps;            /**< > 0: ADAM, ADAMW (PyTorch: 1e-8) */
    double weight_decay;   /**< >= 0: L2 for all but ADAMW, decoupled for ADAMW */
    bp_schedule schedule;  /**< the learning-rate schedule */
    double gamma;          /**< STEP: factor in (0, 1] */
    long step_size;        /**< STEP: steps per decay, >= 1 */
    long t_max;            /**< COSINE: steps to reach lr_min, >= 1 */
    double lr_min;         /**< COSINE: >= 0 */
} bp_optim_config;

/** A config with PyTorch's defaults for `kind` and learning rate lr: momentum
 * 0.9 (MOMENTUM, NESTEROV), beta1 0.9, beta2 0.999, eps 1e-8, weight decay 0
 * (ADAMW: 0.01), constant schedule. */
BP_API bp_optim_config bp_optim_defaults(bp_optimizer kind, double lr);

/** An optimizer and its state (moments, step count) for one network; opaque. */
typedef struct bp_optim bp_optim;

/** Creates an optimizer for `net` (same dtype and parameter count), holding its
 * state (zeroed) allocated through the network's allocator. */
BP_API bp_status bp_optim_create(bp_optim **out, bp_net *net, const bp_optim_config *config);
/** Frees an optimizer; NULL is a no-op. */
BP_API void bp_optim_destroy(bp_optim *opt);

/** One update of the network's parameters from its gradient buffer, in one pass
 * over the flat buffers. The stateful rules (momentum, Nesterov, Adam, AdamW)
 * run their loop in flush-to-zero mode (x86: FTZ and DAZ), restoring the
 * calling thread's mode before returning: state that decays towards zero would
 * otherwise spend thousands of steps as subnormal floats, each operation on
 * which is many times slower; a subnormal value cannot move a parameter. With the network's finite check on, a non-finite
 * gradient is refused (BP_ERR_NONFINITE) before any parameter changes. */
BP_API bp_status bp_optim_step(bp_optim *opt, bp_net *net);

/** One training step: bp_net_loss_and_grad over the n samples of X (targets and
 * ldt as there; *loss, may be NULL, receives the mean loss) followed by
 * bp_optim_step, in one call, with the same argument checks (a bad argument
 * changes nothing: parameters, state and step count are left as they were).
 *
 * Fused SGD: when the rule is BP_OPT_SGD, the batch fits one micro-batch
 * (n <= the plan's max_micro_batch), the backend is BP_BACKEND_BLAS and the
 * finite check is off, the update is folded into the backward pass. Each
 * layer's weight-gradient product accumulates straight into W,
 *     W = (1 - lr wd) W - lr dZ^T X     (one GEMM with beta = 1 - lr wd; a rank-1
 *                                        update at n = 1),
 * once dX, which needs the old W, has been computed; b moves by its summed dZ in
 * the same step. No weight gradient is stored and no separate update pass runs,
 * so the step does less memory traffic than the unfused one. The new parameters
 * equal the unfused step's up to rounding (the same terms, added in another
 * order); the loss is the same. After a fused step the network's gradient buffer
 * holds nothing meaningful (call bp_net_loss_and_grad to read a gradient).
 * In every other case the two calls run one after the other, with their results. */
BP_API bp_status bp_optim_train_step(bp_optim *opt, bp_net *net, bp_int n, const void *X,
                                     bp_int ldx, const void *targets, bp_int ldt, double *loss);

/** The learning rate the next step will use. */
BP_API double bp_optim_lr(const bp_optim *opt);
/** The number of steps taken. */
BP_API long bp_optim_steps(const bp_optim *opt);

/** The same update as a stateless kernel over caller buffers of n elements
 * (params p, gradient g, state m and v as the rule needs: MOMENTUM and
 * NESTEROV use m; ADAM and ADAMW use m and v; others may be NULL); t >= 1 is
 * the step number for Adam's bias correction and lr the rate to use. */
BP_API bp_status bp_soptim_update(const bp_optim_config *config, size_t n, float *p,
                                  const float *g, float *m, float *v, long t, double lr);
/** \copydoc bp_soptim_update */
BP_API bp_status bp_doptim_update(const bp_optim_config *config, size_t n, double *p,
                                  const double *g, double *m, double *v, long t, double lr);

#ifdef __cplusplus
}
#endif
#endif
