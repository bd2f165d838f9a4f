/* SPDX-License-Identifier: MIT */
/* diff.c: the network as a differentiable function a host code calls: backward from the caller's
 * dL/dY (a vector-Jacobian product), dL/dX with the built-in loss, and the Jacobians of the outputs
 * with respect to the inputs and to the parameters, each built from backward passes. */
#include <math.h>
#include <stdint.h>
#include "net/net_exec.h"
#include "net/dp.h"

/* An optional n x n_in output dX with leading dimension lddx (NULL: not wanted). */
static bp_status check_dx(const char *fn, const bp_net *net, bp_int n, const void *dX, bp_int lddx)
{
    return dX ? bp__check_rows(fn, net, n, dX, lddx, net->n_in, "dX", "lddx", "n_in") : BP_OK;
}

bp_status bp_net_backward(bp_net *net, bp_int n, const void *X, bp_int ldx, const void *dY, bp_int lddy,
                          double beta, void *dX, bp_int lddx)
{
    const char *fn = __func__;
    TRY(bp__check_pass(fn, net, n, X, ldx));
    const bp_int n_out = bp__n_out(net);
    TRY(bp__check_rows(fn, net, n, dY, lddy, n_out, "dY", "lddy", "n_out"));
    BP_REQUIRE(isfinite(beta), BP_ERR_ARG, "beta is not finite");
    TRY(check_dx(fn, net, n, dX, lddx));
    if (net->check_finite)
        for (bp_int i = 0; i < n; i++)
            BP_REQUIRE(bp__all_finite(net->dtype, (size_t)n_out, (const char *)dY + (size_t)i * (size_t)lddy * net->esize),
                       BP_ERR_NONFINITE, "dY row %d holds a NaN or Inf", (int)i);
    const bp__pass_io io = {dY, lddy, dX, lddx, beta, 0, NULL, 0};
    return DISPATCH(net, net_batch)(net, fn, n, X, ldx, NULL, NULL, 0, BP_MODE_VJP, NULL, &io, NULL, NULL);
}

bp_status bp_net_loss_and_grad_dx(bp_net *net, bp_int n, const void *X, bp_int ldx, const void *targets,
                                  bp_int ldt, double *loss, void *dX, bp_int lddx)
{
    const char *fn = __func__;
    bp_status st = bp__check_pass(fn, net, n, X, ldx);
    if (st == BP_OK)
        st = bp__check_targets(fn, net, n, targets, ldt, net->loss == BP_LOSS_SOFTMAX_XENT);
    if (st == BP_OK)
        st = check_dx(fn, net, n, dX, lddx);
    TRY(bp__dp_refused(net, st));
    const bp__pass_io io = {NULL, 0, dX, lddx, 0, 0, NULL, 0};
    return DISPATCH(net, net_batch)(net, fn, n, X, ldx, NULL, targets, ldt, BP_MODE_GRAD, NULL, &io, loss, NULL);
}

bp_status bp_net_jacobian_inputs(bp_net *net, bp_int n, const void *X, bp_int ldx, void *J)
{
    const char *fn = __func__;
    TRY(bp__check_pass(fn, net, n, X, ldx));
    const bp_int n_out = bp__n_out(net);
    BP_REQUIRE(n == 0 || J != NULL, BP_ERR_ARG, "J is NULL");
    const int64_t per_sample = (int64_t)n_out * net->n_in;
    BP_REQUIRE(per_sample <= INT32_MAX && bp__block_fits(n, (bp_int)per_sample, net->esize), BP_ERR_OVERFLOW,
               "J: %d samples of %d x %d values overflow", (int)n, (int)n_out, (int)net->n_in);
    for (bp_int k = 0; k < n_out; k++) {
        /* dY = e_k for every sample: dX is row k of each sample's n_out x n_in block */
        const bp__pass_io io = {NULL, 0, (char *)J + (size_t)k * (size_t)net->n_in * net->esize, (bp_int)per_sample,
                                0, k, NULL, 0};
        TRY(DISPATCH(net, net_batch)(net, fn, n, X, ldx, NULL, NULL, 0, BP_MODE_INPUT_GRAD, NULL, &io, NULL, NULL));
    }
    return BP_OK;
}

bp_status bp_net_jacobian_params(bp_net *net, bp_int n, const void *X, bp_int ldx, void *J, size_t ldj)
{
    const char *fn = __func__;
    TRY(bp__check_pass(fn, net, n, X, ldx));
    const bp_int n_out = bp__n_out(net);
    BP_REQUIRE(n == 0 || J != NULL, BP_ERR_ARG, "J is NULL");
    BP_REQUIRE(ldj >= net->n_params, BP_ERR_ARG, "ldj (%zu) < the network's n_params (%zu)", ldj, net->n_params);
    const size_t rows = (size_t)n * (size_t)n_out;
    BP_REQUIRE(rows == 0 || ldj <= SIZE_MAX / net->esize / rows, BP_ERR_OVERFLOW,
               "J: %zu rows of leading dimension %zu overflow the address space", rows, ldj);
    for (bp_int k = 0; k < n_out; k++) {
        /* dY = e_k for every sample: each layer's dZ row r gives row (r, k) of its block */
        const bp__pass_io io = {NULL, 0, NULL, 0, 0, k, (char *)J + (size_t)k * ldj * net->esize, ldj};
        TRY(DISPATCH(net, net_batch)(net, fn, n, X, ldx, NULL, NULL, 0, BP_MODE_INPUT_GRAD, NULL, &io, NULL, NULL));
    }
    return BP_OK;
}
