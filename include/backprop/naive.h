/* backprop/naive.h: naive-loop twins of every kernel, no BLAS: the test oracle and the benchmark baseline. */
#ifndef BACKPROP_NAIVE_H
#define BACKPROP_NAIVE_H

#include "kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Each bp_?name_naive has exactly the signature, validation and semantics of
 * bp_?name in backprop/kernels.h, and is written as the textbook loops a person
 * writes first: every output element of a matrix product is one dot product
 * over its reduction index (n_in for Y, the batch n for dW, n_out for dX), with
 * no blocking, no vectorisation hints and no BLAS. That is the baseline people
 * benchmark BLAS against, and an independent implementation to test against.
 * Activations and losses use the plain textbook formulas (still with the row
 * maximum subtracted in softmax, so they stay finite). Results agree with the
 * BLAS kernels to rounding, not bitwise. */
BP_KERNEL_DECLS(_naive)

#ifdef __cplusplus
}
#endif
#endif
