/* SPDX-License-Identifier: MIT */
/* cores.h: the kernel cores a network runs on, past the public argument checks (the plan has
 * checked the shapes once): one table per backend and precision, with one set of signatures. */
#ifndef BP_KERNELS_CORES_H
#define BP_KERNELS_CORES_H

#include "backprop/kernels.h"

/* The transposition of a gemm operand. */
typedef enum bp__trans { BP_N = 0, BP_T = 1 } bp__trans;

/* For T in {float, double} and prefix p in {s, d}, the table bp__<p>cores:
 *
 * gemm: C (M x N, row-major, ldc) = alpha op(A) op(B) + beta C, op(A) M x K and op(B) K x N;
 *   beta == 0 does not read C. The BLAS table runs gemv when M == 1 and a rank-1 update (ger)
 *   when K == 1, as a batch of one sample does; the naive table runs textbook loops.
 * bias_act: each of n rows of the n x n_out block Y (ldy) gets its bias b (if not NULL), is kept
 *   in Z (if not NULL) and activated.
 * dz: dZ = dY * f'(Z) over n rows of n_out values (dZ may be dY; Z is read by the activations
 *   that need it, Y by the others).
 * softmax_xent, sigmoid_bce, mse: the loss kernels of backprop/kernels.h (the bp_? or the
 *   bp_?_naive ones: they check their arguments, which costs little per call). */
#define BP_CORES_DECL(p, T)                                                                      \
    typedef struct bp__##p##cores {                                                              \
        void (*gemm)(bp__trans ta, bp__trans tb, bp_int M, bp_int N, bp_int K, T alpha,         \
                     const T *A, bp_int lda, const T *B, bp_int ldb, T beta, T *C, bp_int ldc);  \
        void (*bias_act)(bp_act act, T alpha, bp_int n, bp_int n_out, const T *b, T *Z,          \
                         bp_int ldz, T *Y, bp_int ldy);                                          \
        void (*dz)(bp_act act, T alpha, bp_int n, bp_int n_out, const T *Z, bp_int ldz,          \
                   const T *Y, bp_int ldy, const T *dY, bp_int lddy, T *dZ, bp_int lddz);        \
        bp_status (*softmax_xent)(bp_int n, bp_int m, const T *Z, bp_int ldz,                    \
                                  const int32_t *labels, T divisor, double *loss, T *dZ,         \
                                  bp_int lddz);                                                  \
        bp_status (*sigmoid_bce)(bp_int n, bp_int m, const T *Z, bp_int ldz, const T *Tgt,       \
                                 bp_int ldt, T divisor, double *loss, T *dZ, bp_int lddz);       \
        bp_status (*mse)(bp_int n, bp_int m, const T *Z, bp_int ldz, const T *Tgt, bp_int ldt,   \
                         T divisor, double *loss, T *dZ, bp_int lddz);                           \
    } bp__##p##cores;                                                                            \
    extern const bp__##p##cores bp__##p##cores_blas, bp__##p##cores_naive;

BP_CORES_DECL(s, float)
BP_CORES_DECL(d, double)

#endif
