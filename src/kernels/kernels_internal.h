/* SPDX-License-Identifier: MIT */
/* kernels_internal.h: kernel pieces the network executor calls directly, past the public
 * argument checks (the plan has checked the shapes once). */
#ifndef BP_KERNELS_INTERNAL_H
#define BP_KERNELS_INTERNAL_H

#include "backprop/kernels.h"

/* Checks an activation and its alpha (finite; >= 0 for leaky ReLU, > 0 for ELU), naming
 * them `prefix`act and `prefix`alpha in the message (act_info.c). */
bp_status bp__check_act(const char *fn, const char *prefix, bp_act act, double alpha);

/* Declarations for T in {float, double}, prefix p in {s, d}:
 *
 * dz_db, the first half of a dense backward, in one pass over dY: dZ = dY * f'(Z) (dZ
 * may be dY; Z is read only by the activations that need it, Y by the others) and, if
 * db is not NULL, db = beta db + the column sums of dZ. n rows of n_out values.
 *
 * bias_act, the second half of a dense forward, in one pass over the n x n_out GEMM
 * output Y: each row gets its bias (if b is not NULL), is kept in Z (if not NULL) and
 * activated.
 *
 * rank1, A (m x n in layout) = beta A + alpha x y^T: BLAS ger when beta is 1, else one
 * pass that does not read A when beta is 0. */
#define BP_KERNELS_INTERNAL_DECLS(p, T)                                                          \
    void bp__##p##dz_db(bp_act act, T alpha, bp_int n, bp_int n_out, const T *Z, bp_int ldz,      \
                        const T *Y, bp_int ldy, const T *dY, bp_int lddy, T *dZ, bp_int lddz,     \
                        T beta, T *db);                                                           \
    void bp__##p##bias_act(bp_act act, T alpha, bp_int n, bp_int n_out, const T *b, T *Z,         \
                           bp_int ldz, T *Y, bp_int ldy);                                         \
    void bp__##p##rank1(bp_layout layout, bp_int m, bp_int n, T alpha, const T *x, const T *y,    \
                        T beta, T *A, bp_int lda);

BP_KERNELS_INTERNAL_DECLS(s, float)
BP_KERNELS_INTERNAL_DECLS(d, double)

#endif
