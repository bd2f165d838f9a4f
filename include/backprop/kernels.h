/* SPDX-License-Identifier: MIT */
/** \file
 * backprop/kernels.h: stateless dense-layer, activation and loss kernels on caller memory, float (s)
 * and double (d). */
#ifndef BACKPROP_KERNELS_H
#define BACKPROP_KERNELS_H

#include <stdint.h>
#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Activations. `alpha` is the slope of BP_ACT_LEAKY_RELU (alpha >= 0) and the
 * alpha of BP_ACT_ELU (alpha > 0); every other activation ignores it.
 * \code{.unparsed}
 *   kind               f(z)                                   f'(z) as used by backward
 *   BP_ACT_IDENTITY    z                                      1
 *   BP_ACT_SIGMOID     1 / (1 + e^-z)                         y (1 - y)
 *   BP_ACT_TANH        tanh z                                 1 - y^2
 *   BP_ACT_RELU        max(z, 0)                              1 if y > 0 else 0
 *   BP_ACT_LEAKY_RELU  z if z > 0 else alpha z                1 if y > 0 else alpha
 *   BP_ACT_ELU         z if z > 0 else alpha (e^z - 1)        1 if y > 0 else y + alpha
 *   BP_ACT_GELU        z Phi(z), Phi the normal CDF (erf)     Phi(z) + z phi(z)         (needs Z)
 *   BP_ACT_GELU_TANH   z/2 (1 + tanh(s (z + 0.044715 z^3))),  s = sqrt(2/pi)            (needs Z)
 *   BP_ACT_SOFTPLUS    log(1 + e^z)                           1 - e^-y
 *   BP_ACT_SOFTMAX     e^z_j / sum_k e^z_k over each sample   dz = y (dy - <dy, y>)
 * \endcode
 *
 * Every derivative except GELU's is computed from the output Y, so a forward
 * pass need keep only Y; the two GELUs need the pre-activation Z. */
typedef enum bp_act {
    BP_ACT_IDENTITY = 0,    /**< z */
    BP_ACT_SIGMOID = 1,     /**< the logistic function */
    BP_ACT_TANH = 2,        /**< the hyperbolic tangent */
    BP_ACT_RELU = 3,        /**< max(z, 0) */
    BP_ACT_LEAKY_RELU = 4,  /**< z, or alpha z for z <= 0 */
    BP_ACT_ELU = 5,         /**< z, or alpha (e^z - 1) for z <= 0 */
    BP_ACT_GELU = 6,        /**< z Phi(z), exact (erf) */
    BP_ACT_GELU_TANH = 7,   /**< GELU by its tanh approximation */
    BP_ACT_SOFTPLUS = 8,    /**< log(1 + e^z) */
    BP_ACT_SOFTMAX = 9      /**< softmax over each sample */
} bp_act;

/** Nonzero when backward of `act` reads the pre-activation Z (the GELUs). */
BP_API int bp_act_needs_z(bp_act act);

/** The activation's name in lower case ("relu", "gelu_tanh", "softmax", ...; the
 * spelling of backprop-train's `--act`), or NULL when act is not a bp_act. */
BP_API const char *bp_act_name(bp_act act);

/** \name Kernels
 * Conventions shared by every kernel below.
 * - Names carry the BLAS precision letter: bp_s... works on float, bp_d... on
 *   double, with identical semantics. Each has a naive-loop twin with the same
 *   signature and the suffix _naive (see backprop/naive.h).
 * - A batch holds n samples; n == 0 is a quick return (outputs that are only
 *   scaled by beta are still scaled, as BLAS gemm does with k == 0). Widths
 *   (n_in, n_out, m) must be >= 1. Leading dimensions must be >= the width of
 *   the rows they hold (see the layout table in backprop/core.h).
 * - Activations and losses act on sample-major n x m blocks, which are the same
 *   memory in both layouts, so they take no layout argument.
 * - Arguments are validated before anything is written: on any status other
 *   than BP_OK the outputs are untouched and bp_last_error() says why.
 * - Data are not scanned for NaN or Inf (that would cost a pass); NaN in, NaN
 *   out. The exception is the targets of the two losses whose targets have a
 *   domain (softmax_xent_prob: >= 0; sigmoid_bce: [0, 1]): a NaN or Inf there
 *   gives BP_ERR_NONFINITE, a finite value outside it BP_ERR_ARG. Scalars the
 *   caller passes (alpha, beta, divisor) must be finite: BP_ERR_ARG otherwise.
 * - Pointers to arrays of n samples may be NULL when n == 0.
 * - The BLAS kernels run on as many threads as the BLAS is set to use; they
 *   never change that setting. They keep no state and are thread-safe. */
/** \{ */

/** Dense forward: Z = X W^T + 1 b^T,  Y = f(Z).
 * \code{.unparsed}
 *   X  n x n_in, W n_out x n_in (layout), b n_out (NULL: no bias), Y n x n_out.
 *   Z  NULL, or n x n_out receiving the pre-activation (GELU backward needs it);
 *      Z must not be Y.
 * \endcode
 * n > 1 runs one gemm, n == 1 one gemv; bias and activation are then applied in
 * one pass over the output. */
BP_API bp_status bp_sdense_forward(bp_layout layout, bp_int n, bp_int n_in, bp_int n_out,
    const float *X, bp_int ldx, const float *W, bp_int ldw, const float *b, bp_act act, float alpha,
    float *Z, bp_int ldz, float *Y, bp_int ldy);
/** \copydoc bp_sdense_forward */
BP_API bp_status bp_ddense_forward(bp_layout layout, bp_int n, bp_int n_in, bp_int n_out,
    const double *X, bp_int ldx, const double *W, bp_int ldw, const double *b, bp_act act,
    double alpha, double *Z, bp_int ldz, double *Y, bp_int ldy);

/** Dense backward, for the layer of bp_?dense_forward, given dY = dL/dY:
 * \code{.unparsed}
 *   dZ = dY (.) f'(Z)             (softmax: dZ = Y (.) (dY - rowsum(dY (.) Y)))
 *   dW = beta dW + dZ^T X         (n > 1: one gemm; n == 1: ger, or for beta = 0 the
 *                                  outer product dz x^T written in one pass)
 *   db = beta db + sum over samples of dZ          (skipped when db is NULL)
 *   dX = dZ W                     (gemm, or gemv for n == 1; skipped when dX is NULL)
 * \endcode
 * beta is 0 (overwrite; dW and db are then not read) or 1 (accumulate micro-batches);
 * any finite value works. dW has W's layout with its own leading dimension lddw.
 * With a loss gradient already taken at the logits (bp_?softmax_xent...), pass
 * act = BP_ACT_IDENTITY and that gradient as dY.
 * Z is read only when bp_act_needs_z(act), and may be NULL otherwise; Y is not read for
 * BP_ACT_IDENTITY and the GELUs, and may be NULL then. dZ (n x n_out) receives dZ and
 * may be dY itself (same pointer and leading dimension); no other outputs may overlap
 * an input. dZ and db are computed in one pass over dY. */
BP_API bp_status bp_sdense_backward(bp_layout layout, bp_int n, bp_int n_in, bp_int n_out,
    const float *X, bp_int ldx, const float *W, bp_int ldw, bp_act act, float alpha, const float *Z,
    bp_int ldz, const float *Y, bp_int ldy, const float *dY, bp_int lddy, float *dZ, bp_int lddz,
    float beta, float *dW, bp_int lddw, float *db, float *dX, bp_int lddx);
/** \copydoc bp_sdense_backward */
BP_API bp_status bp_ddense_backward(bp_layout layout, bp_int n, bp_int n_in, bp_int n_out,
    const double *X, bp_int ldx, const double *W, bp_int ldw, bp_act act, double alpha,
    const double *Z, bp_int ldz, const double *Y, bp_int ldy, const double *dY, bp_int lddy,
    double *dZ, bp_int lddz, double beta, double *dW, bp_int lddw, double *db, double *dX,
    bp_int lddx);

/** Activation forward: Y = f(Z) for an n x m block (softmax: over each sample's m
 * values, with the row maximum subtracted first). Y may be Z (in place). */
BP_API bp_status bp_sact_forward(bp_act act, float alpha, bp_int n, bp_int m, const float *Z,
    bp_int ldz, float *Y, bp_int ldy);
/** \copydoc bp_sact_forward */
BP_API bp_status bp_dact_forward(bp_act act, double alpha, bp_int n, bp_int m, const double *Z,
    bp_int ldz, double *Y, bp_int ldy);

/** Activation backward: dZ = dY (.) f'(Z) through the table of ::bp_act. Z is read only for
 * the GELUs (may be NULL otherwise), Y only for the others except identity (may be
 * NULL then). dZ may be dY (in place). */
BP_API bp_status bp_sact_backward(bp_act act, float alpha, bp_int n, bp_int m, const float *Z,
    bp_int ldz, const float *Y, bp_int ldy, const float *dY, bp_int lddy, float *dZ, bp_int lddz);
/** \copydoc bp_sact_backward */
BP_API bp_status bp_dact_backward(bp_act act, double alpha, bp_int n, bp_int m, const double *Z,
    bp_int ldz, const double *Y, bp_int ldy, const double *dY, bp_int lddy, double *dZ,
    bp_int lddz);

/** Softmax cross-entropy, class labels c in [0, m):
 * \code{.unparsed}
 *   loss = sum_i -log softmax(z_i)[c_i] / divisor,  dZ = (softmax(z_i) - onehot(c_i)) / divisor
 * \endcode
 *
 * Losses with the gradient at the logits, from one call (this one and the three
 * below). `divisor` > 0 is the number
 * of samples of the whole batch (not of this call), so calls over micro-batches or MPI
 * shards add up to the full-batch mean: pass n for a single call. *loss receives the
 * sum over these n samples divided by divisor (accumulated in double; 0 when n == 0);
 * dZ (n x m) receives the gradient of that quantity. Either output may be NULL; dZ may
 * be Z.
 * Stable for |logit| up to 1e4 and beyond: no NaN and no Inf from finite logits. */
BP_API bp_status bp_ssoftmax_xent(bp_int n, bp_int m, const float *Z, bp_int ldz,
    const int32_t *labels, float divisor, double *loss, float *dZ, bp_int lddz);
/** \copydoc bp_ssoftmax_xent */
BP_API bp_status bp_dsoftmax_xent(bp_int n, bp_int m, const double *Z, bp_int ldz,
    const int32_t *labels, double divisor, double *loss, double *dZ, bp_int lddz);

/** Softmax cross-entropy with target probabilities T (n x m, each row >= 0; rows that
 * sum to 1 give the usual formula):
 * \code{.unparsed}
 *   loss = sum_i -<t_i, log softmax(z_i)> / divisor,
 *   dZ = (softmax(z_i) sum_j t_ij - t_i) / divisor
 * \endcode
 * divisor, loss and dZ as for bp_ssoftmax_xent. */
BP_API bp_status bp_ssoftmax_xent_prob(bp_int n, bp_int m, const float *Z, bp_int ldz,
    const float *Tgt, bp_int ldt, float divisor, double *loss, float *dZ, bp_int lddz);
/** \copydoc bp_ssoftmax_xent_prob */
BP_API bp_status bp_dsoftmax_xent_prob(bp_int n, bp_int m, const double *Z, bp_int ldz,
    const double *Tgt, bp_int ldt, double divisor, double *loss, double *dZ, bp_int lddz);

/** Sigmoid binary cross-entropy on logits, targets t in [0, 1] (n x m), summed over the
 * m outputs of a sample and averaged over samples:
 * \code{.unparsed}
 *   loss = sum_ij [max(z,0) - z t + log1p(e^-|z|)] / divisor,  dZ = (sigmoid(z) - t) / divisor
 * \endcode
 * divisor, loss and dZ as for bp_ssoftmax_xent. */
BP_API bp_status bp_ssigmoid_bce(bp_int n, bp_int m, const float *Z, bp_int ldz, const float *Tgt,
    bp_int ldt, float divisor, double *loss, float *dZ, bp_int lddz);
/** \copydoc bp_ssigmoid_bce */
BP_API bp_status bp_dsigmoid_bce(bp_int n, bp_int m, const double *Z, bp_int ldz, const double *Tgt,
    bp_int ldt, double divisor, double *loss, double *dZ, bp_int lddz);

/** Mean squared error, a mean over all elements (divisor samples x m outputs):
 * \code{.unparsed}
 *   loss = sum_ij (y - t)^2 / (divisor m),  dZ = 2 (y - t) / (divisor m).
 * \endcode
 * Here Z is the network output itself (identity last layer). divisor, loss and dZ
 * as for bp_ssoftmax_xent. */
BP_API bp_status bp_smse(bp_int n, bp_int m, const float *Z, bp_int ldz, const float *Tgt,
    bp_int ldt, float divisor, double *loss, float *dZ, bp_int lddz);
/** \copydoc bp_smse */
BP_API bp_status bp_dmse(bp_int n, bp_int m, const double *Z, bp_int ldz, const double *Tgt,
    bp_int ldt, double divisor, double *loss, double *dZ, bp_int lddz);

/** One-sample multinomial logistic regression gradient (the seed example):
 * \code{.unparsed}
 *   p = softmax(W x + b),  g = (p - onehot(label)) / divisor,
 *   dW = beta dW + g (x) x    (the outer product: one ger),  db = beta db + g.
 * \endcode
 * W and dW are n_classes x n_in in `layout`; b may be NULL (no bias), db may be NULL.
 * p (n_classes) receives the probabilities; *loss (may be NULL) receives
 * -log p[label] / divisor. n_classes = 1 is accepted as the degenerate case it is
 * (p = 1, loss 0, gradient 0: nothing to learn); a network refuses it (bp_net_create). */
BP_API bp_status bp_slogreg_grad(bp_layout layout, bp_int n_in, bp_int n_classes, const float *W,
    bp_int ldw, const float *b, const float *x, int32_t label, float divisor, float *p,
    double *loss, float beta, float *dW, bp_int lddw, float *db);
/** \copydoc bp_slogreg_grad */
BP_API bp_status bp_dlogreg_grad(bp_layout layout, bp_int n_in, bp_int n_classes, const double *W,
    bp_int ldw, const double *b, const double *x, int32_t label, double divisor, double *p,
    double *loss, double beta, double *dW, bp_int lddw, double *db);
/** \} */

#ifdef __cplusplus
}
#endif
#endif
