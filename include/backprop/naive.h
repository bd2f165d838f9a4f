/* SPDX-License-Identifier: MIT */
/** \file
 * backprop/naive.h: naive-loop twins of every kernel, no BLAS: the test oracle and the benchmark baseline. */
#ifndef BACKPROP_NAIVE_H
#define BACKPROP_NAIVE_H

#include "kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/** \name Naive kernels
 * Each bp_?name_naive has exactly the signature, validation and semantics of
 * bp_?name in backprop/kernels.h, and is written as the textbook loops a person
 * writes first: every output element of a matrix product is one dot product
 * over its reduction index (n_in for Y, the batch n for dW, n_out for dX), with
 * no blocking, no vectorisation hints and no BLAS. That is the baseline people
 * benchmark BLAS against, and an independent implementation to test against.
 * Activations and losses use the plain textbook formulas (still with the row
 * maximum subtracted in softmax, so they stay finite). Results agree with the
 * BLAS kernels to rounding, not bitwise. */
/** \{ */

/** Naive twin of bp_sdense_forward. */
BP_API bp_status bp_sdense_forward_naive(bp_layout layout, bp_int n, bp_int n_in, bp_int n_out,
    const float *X, bp_int ldx, const float *W, bp_int ldw, const float *b, bp_act act, float alpha,
    float *Z, bp_int ldz, float *Y, bp_int ldy);
/** Naive twin of bp_ddense_forward. */
BP_API bp_status bp_ddense_forward_naive(bp_layout layout, bp_int n, bp_int n_in, bp_int n_out,
    const double *X, bp_int ldx, const double *W, bp_int ldw, const double *b, bp_act act,
    double alpha, double *Z, bp_int ldz, double *Y, bp_int ldy);

/** Naive twin of bp_sdense_backward. */
BP_API bp_status bp_sdense_backward_naive(bp_layout layout, bp_int n, bp_int n_in, bp_int n_out,
    const float *X, bp_int ldx, const float *W, bp_int ldw, bp_act act, float alpha, const float *Z,
    bp_int ldz, const float *Y, bp_int ldy, const float *dY, bp_int lddy, float *dZ, bp_int lddz,
    float beta, float *dW, bp_int lddw, float *db, float *dX, bp_int lddx);
/** Naive twin of bp_ddense_backward. */
BP_API bp_status bp_ddense_backward_naive(bp_layout layout, bp_int n, bp_int n_in, bp_int n_out,
    const double *X, bp_int ldx, const double *W, bp_int ldw, bp_act act, double alpha,
    const double *Z, bp_int ldz, const double *Y, bp_int ldy, const double *dY, bp_int lddy,
    double *dZ, bp_int lddz, double beta, double *dW, bp_int lddw, double *db, double *dX,
    bp_int lddx);

/** Naive twin of bp_sact_forward. */
BP_API bp_status bp_sact_forward_naive(bp_act act, float alpha, bp_int n, bp_int m, const float *Z,
    bp_int ldz, float *Y, bp_int ldy);
/** Naive twin of bp_dact_forward. */
BP_API bp_status bp_dact_forward_naive(bp_act act, double alpha, bp_int n, bp_int m,
    const double *Z, bp_int ldz, double *Y, bp_int ldy);

/** Naive twin of bp_sact_backward. */
BP_API bp_status bp_sact_backward_naive(bp_act act, float alpha, bp_int n, bp_int m, const float *Z,
    bp_int ldz, const float *Y, bp_int ldy, const float *dY, bp_int lddy, float *dZ, bp_int lddz);
/** Naive twin of bp_dact_backward. */
BP_API bp_status bp_dact_backward_naive(bp_act act, double alpha, bp_int n, bp_int m,
    const double *Z, bp_int ldz, const double *Y, bp_int ldy, const double *dY, bp_int lddy,
    double *dZ, bp_int lddz);

/** Naive twin of bp_ssoftmax_xent. */
BP_API bp_status bp_ssoftmax_xent_naive(bp_int n, bp_int m, const float *Z, bp_int ldz,
    const int32_t *labels, float divisor, double *loss, float *dZ, bp_int lddz);
/** Naive twin of bp_dsoftmax_xent. */
BP_API bp_status bp_dsoftmax_xent_naive(bp_int n, bp_int m, const double *Z, bp_int ldz,
    const int32_t *labels, double divisor, double *loss, double *dZ, bp_int lddz);

/** Naive twin of bp_ssoftmax_xent_prob. */
BP_API bp_status bp_ssoftmax_xent_prob_naive(bp_int n, bp_int m, const float *Z, bp_int ldz,
    const float *Tgt, bp_int ldt, float divisor, double *loss, float *dZ, bp_int lddz);
/** Naive twin of bp_dsoftmax_xent_prob. */
BP_API bp_status bp_dsoftmax_xent_prob_naive(bp_int n, bp_int m, const double *Z, bp_int ldz,
    const double *Tgt, bp_int ldt, double divisor, double *loss, double *dZ, bp_int lddz);

/** Naive twin of bp_ssigmoid_bce. */
BP_API bp_status bp_ssigmoid_bce_naive(bp_int n, bp_int m, const float *Z, bp_int ldz,
    const float *Tgt, bp_int ldt, float divisor, double *loss, float *dZ, bp_int lddz);
/** Naive twin of bp_dsigmoid_bce. */
BP_API bp_status bp_dsigmoid_bce_naive(bp_int n, bp_int m, const double *Z, bp_int ldz,
    const double *Tgt, bp_int ldt, double divisor, double *loss, double *dZ, bp_int lddz);

/** Naive twin of bp_smse. */
BP_API bp_status bp_smse_naive(bp_int n, bp_int m, const float *Z, bp_int ldz, const float *Tgt,
    bp_int ldt, float divisor, double *loss, float *dZ, bp_int lddz);
/** Naive twin of bp_dmse. */
BP_API bp_status bp_dmse_naive(bp_int n, bp_int m, const double *Z, bp_int ldz, const double *Tgt,
    bp_int ldt, double divisor, double *loss, double *dZ, bp_int lddz);

/** Naive twin of bp_slogreg_grad. */
BP_API bp_status bp_slogreg_grad_naive(bp_layout layout, bp_int n_in, bp_int n_classes,
    const float *W, bp_int ldw, const float *b, const float *x, int32_t label, float divisor,
    float *p, double *loss, float beta, float *dW, bp_int lddw, float *db);
/** Naive twin of bp_dlogreg_grad. */
BP_API bp_status bp_dlogreg_grad_naive(bp_layout layout, bp_int n_in, bp_int n_classes,
    const double *W, bp_int ldw, const double *b, const double *x, int32_t label, double divisor,
    double *p, double *loss, double beta, double *dW, bp_int lddw, double *db);
/** \} */

#ifdef __cplusplus
}
#endif
#endif
