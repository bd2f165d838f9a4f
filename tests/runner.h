/* SPDX-License-Identifier: MIT */
/* runner.h: every kernel of one precision called on double arrays, so a test is written once and run in float and double. */
#ifndef BP_RUNNER_H
#define BP_RUNNER_H

#include <backprop.h>

/* Each runner has the signature of its kernel with double arrays and scalars,
 * plus `naive` choosing the _naive twin. It copies each array, over exactly the
 * extent the kernel may touch (tu_extent), into a fresh buffer of the
 * precision (sentinel bytes stay sentinel bytes), calls the kernel, fails the
 * test if a const input changed, and copies the outputs back. NULL stays NULL,
 * and an output pointer equal to the input it may alias (dZ == dY, Y == Z,
 * dZ == Z) is passed aliased. */
typedef bp_status run_dense_forward(int naive, bp_layout layout, bp_int n, bp_int n_in, bp_int n_out,
    const double *X, bp_int ldx, const double *W, bp_int ldw, const double *b, bp_act act, double alpha,
    double *Z, bp_int ldz, double *Y, bp_int ldy);
typedef bp_status run_dense_backward(int naive, bp_layout layout, bp_int n, bp_int n_in, bp_int n_out,
    const double *X, bp_int ldx, const double *W, bp_int ldw, bp_act act, double alpha,
    const double *Z, bp_int ldz, const double *Y, bp_int ldy, const double *dY, bp_int lddy,
    double *dZ, bp_int lddz, double beta, double *dW, bp_int lddw, double *db, double *dX, bp_int lddx);
typedef bp_status run_act_forward(int naive, bp_act act, double alpha, bp_int n, bp_int m,
    const double *Z, bp_int ldz, double *Y, bp_int ldy);
typedef bp_status run_act_backward(int naive, bp_act act, double alpha, bp_int n, bp_int m,
    const double *Z, bp_int ldz, const double *Y, bp_int ldy, const double *dY, bp_int lddy,
    double *dZ, bp_int lddz);
typedef bp_status run_softmax_xent(int naive, bp_int n, bp_int m, const double *Z, bp_int ldz,
    const int32_t *labels, double divisor, double *loss, double *dZ, bp_int lddz);
/* softmax_xent_prob, sigmoid_bce and mse share this shape. */
typedef bp_status run_target_loss(int naive, bp_int n, bp_int m, const double *Z, bp_int ldz,
    const double *Tgt, bp_int ldt, double divisor, double *loss, double *dZ, bp_int lddz);
typedef bp_status run_logreg_grad(int naive, bp_layout layout, bp_int n_in, bp_int n_classes,
    const double *W, bp_int ldw, const double *b, const double *x, int32_t label, double divisor,
    double *p, double *loss, double beta, double *dW, bp_int lddw, double *db);

typedef struct runner {
    const char *name; /* "float" or "double" */
    double eps;       /* FLT_EPSILON or DBL_EPSILON */
    run_dense_forward *dense_forward;
    run_dense_backward *dense_backward;
    run_act_forward *act_forward;
    run_act_backward *act_backward;
    run_softmax_xent *softmax_xent;
    run_target_loss *softmax_xent_prob;
    run_target_loss *sigmoid_bce;
    run_target_loss *mse;
    run_logreg_grad *logreg_grad;
} runner;

extern const runner runner_s, runner_d;

#endif
