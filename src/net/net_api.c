/* SPDX-License-Identifier: MIT */
/* net_api.c: the public pass functions of a network: argument checks, then the typed executor. */
#include <math.h>
#include "net/net_exec.h"
#include "net/dp.h"

/* The checks every pass shares: a planned network and n samples of X. */
bp_status bp__check_pass(const char *fn, const bp_net *net, bp_int n, const void *X, bp_int ldx)
{
    BP_REQUIRE(net != NULL, BP_ERR_ARG, "net is NULL");
    BP_REQUIRE(net->arena != NULL, BP_ERR_ARG, "the network has no plan: call bp_net_plan first");
    BP_CHECK_BATCH(n);
    BP_REQUIRE(ldx >= net->n_in, BP_ERR_ARG, "ldx (%d) < the network's n_in (%d)", (int)ldx, (int)net->n_in);
    BP_REQUIRE(n == 0 || X != NULL, BP_ERR_ARG, "X is NULL");
    BP_REQUIRE(bp__block_fits(n, ldx, net->esize), BP_ERR_OVERFLOW,
               "X: %d rows of leading dimension %d overflow the address space", (int)n, (int)ldx);
    return net->check_finite ? bp__check_x_finite(fn, net, n, X, ldx) : BP_OK;
}

bp_status bp__check_x_finite(const char *fn, const bp_net *net, bp_int n, const void *X, bp_int ldx)
{
    for (bp_int i = 0; i < n; i++)
        BP_REQUIRE(bp__all_finite(net->dtype, (size_t)net->n_in, (const char *)X + (size_t)i * (size_t)ldx * net->esize),
                   BP_ERR_NONFINITE, "X row %d holds a NaN or Inf", (int)i);
    return BP_OK;
}

/* Targets of the network's loss: labels in [0, n_out) (or {0, 1} for a one-output BCE
 * net when `labels_for_bce`), or n x n_out values with ldt >= n_out. */
bp_status bp__check_targets(const char *fn, const bp_net *net, bp_int n, const void *targets,
                            bp_int ldt, int labels)
{
    const bp_int n_out = bp__n_out(net);
    BP_REQUIRE(n == 0 || targets != NULL, BP_ERR_ARG, "targets is NULL");
    if (labels) {
        const int32_t *c = targets, hi = n_out == 1 ? 2 : n_out;
        for (bp_int i = 0; i < n; i++)
            BP_REQUIRE(c[i] >= 0 && c[i] < hi, BP_ERR_ARG, "label %d (%d) is not in [0, %d)",
                       (int)i, (int)c[i], (int)hi);
        return BP_OK;
    }
    TRY(bp__check_rows(fn, net, n, targets, ldt, n_out, "targets", "ldt", "n_out"));
    /* BCE targets have a domain: check it here, for the whole batch, before any
     * micro-batch runs (the kernel would only see one micro-batch at a time). */
    const int bce = net->loss == BP_LOSS_SIGMOID_BCE;
    if (!bce && !net->check_finite)
        return BP_OK;
    for (bp_int i = 0; i < n; i++)
        for (bp_int j = 0; j < n_out; j++) {
            const size_t q = (size_t)i * (size_t)ldt + (size_t)j;
            const double t = bp__value_at(net->dtype, targets, q);
            BP_REQUIRE(isfinite(t), BP_ERR_NONFINITE, "targets row %d (column %d) holds a NaN or Inf", (int)i, (int)j);
            BP_REQUIRE(!bce || (t >= 0 && t <= 1), BP_ERR_ARG,
                       "targets row %d (column %d) is %g, outside [0, 1] (sigmoid BCE)", (int)i, (int)j, t);
        }
    return BP_OK;
}

bp_status bp__check_rows(const char *fn, const bp_net *net, bp_int n, const void *A, bp_int ld, bp_int width,
                         const char *name, const char *ldname, const char *wname)
{
    BP_REQUIRE(n == 0 || A != NULL, BP_ERR_ARG, "%s is NULL", name);
    BP_REQUIRE(ld >= width, BP_ERR_ARG, "%s (%d) < the network's %s (%d)", ldname, (int)ld, wname, (int)width);
    BP_REQUIRE(bp__block_fits(n, ld, net->esize), BP_ERR_OVERFLOW,
               "%s: %d rows of leading dimension %d overflow the address space", name, (int)n, (int)ld);
    return BP_OK;
}

bp_status bp_net_forward(bp_net *net, bp_int n, const void *X, bp_int ldx, void *Y, bp_int ldy)
{
    const char *fn = __func__;
    TRY(bp__check_pass(fn, net, n, X, ldx));
    TRY(bp__check_rows(fn, net, n, Y, ldy, bp__n_out(net), "Y", "ldy", "n_out"));
    return DISPATCH(net, net_forward)(net, fn, n, X, ldx, Y, ldy);
}

bp_status bp_net_loss_and_grad(bp_net *net, bp_int n, const void *X, bp_int ldx,
                               const void *targets, bp_int ldt, double *loss)
{
    const char *fn = __func__;
    bp_status st = bp__check_pass(fn, net, n, X, ldx);
    if (st == BP_OK)
        st = bp__check_targets(fn, net, n, targets, ldt, net->loss == BP_LOSS_SOFTMAX_XENT);
    TRY(bp__dp_refused(net, st));
    return DISPATCH(net, net_batch)(net, fn, n, X, ldx, NULL, targets, ldt, BP_MODE_GRAD, NULL, NULL, loss, NULL);
}

bp_status bp_net_accuracy(bp_net *net, bp_int n, const void *X, bp_int ldx, const int32_t *labels,
                          double *accuracy, int64_t *confusion)
{
    const char *fn = __func__;
    TRY(bp__check_pass(fn, net, n, X, ldx));
    BP_CHECK_PTR(accuracy);
    BP_REQUIRE(!bp__loss_squared(net->loss), BP_ERR_ARG, "the network's loss is a squared error (MSE): use bp_net_rmse");
    BP_REQUIRE(net->loss == BP_LOSS_SOFTMAX_XENT || bp__n_out(net) == 1,
               BP_ERR_UNSUPPORTED, "accuracy of a sigmoid BCE network needs one output");
    TRY(bp__check_targets(fn, net, n, labels, 0, 1));
    return DISPATCH(net, net_evaluate)(net, fn, n, X, ldx, labels, 0, accuracy, confusion);
}

bp_status bp_net_rmse(bp_net *net, bp_int n, const void *X, bp_int ldx, const void *targets,
                      bp_int ldt, double *rmse)
{
    const char *fn = __func__;
    TRY(bp__check_pass(fn, net, n, X, ldx));
    BP_CHECK_PTR(rmse);
    BP_REQUIRE(bp__loss_squared(net->loss), BP_ERR_ARG,
               "the network's loss is not MSE or least squares: use bp_net_accuracy");
    TRY(bp__check_targets(fn, net, n, targets, ldt, 0));
    return DISPATCH(net, net_evaluate)(net, fn, n, X, ldx, targets, ldt, rmse, NULL);
}

bp_status bp_net_predict_proba(bp_net *net, bp_int n, const void *X, bp_int ldx, void *P, bp_int ldp)
{
    const char *fn = __func__;
    TRY(bp__check_pass(fn, net, n, X, ldx));
    TRY(bp__check_rows(fn, net, n, P, ldp, bp__n_out(net), "P", "ldp", "n_out"));
    return DISPATCH(net, net_predict)(net, fn, n, X, ldx, P, ldp, NULL);
}

bp_status bp_net_predict_class(bp_net *net, bp_int n, const void *X, bp_int ldx, int32_t *classes)
{
    const char *fn = __func__;
    TRY(bp__check_pass(fn, net, n, X, ldx));
    BP_REQUIRE(!bp__loss_squared(net->loss), BP_ERR_ARG,
               "the network's loss is a squared error (MSE): it predicts values, not classes");
    BP_REQUIRE(n == 0 || classes != NULL, BP_ERR_ARG, "classes is NULL");
    return DISPATCH(net, net_predict)(net, fn, n, X, ldx, NULL, 0, classes);
}

bp_status bp_net_eval_loss(bp_net *net, bp_int n, const void *X, bp_int ldx, const void *targets, bp_int ldt,
                           double *loss)
{
    const char *fn = __func__;
    TRY(bp__check_pass(fn, net, n, X, ldx));
    BP_CHECK_PTR(loss);
    TRY(bp__check_targets(fn, net, n, targets, ldt, net->loss == BP_LOSS_SOFTMAX_XENT));
    return DISPATCH(net, net_batch)(net, fn, n, X, ldx, NULL, targets, ldt, BP_MODE_LOSS_ONLY, NULL, NULL, loss, NULL);
}

bp_status bp_net_sample_losses(bp_net *net, bp_int n, const void *X, bp_int ldx, const void *targets, bp_int ldt,
                               double *losses)
{
    const char *fn = __func__;
    TRY(bp__check_pass(fn, net, n, X, ldx));
    BP_REQUIRE(n == 0 || losses != NULL, BP_ERR_ARG, "losses is NULL");
    TRY(bp__check_targets(fn, net, n, targets, ldt, net->loss == BP_LOSS_SOFTMAX_XENT));
    return DISPATCH(net, net_sample_losses)(net, fn, n, X, ldx, targets, ldt, losses);
}

bp_status bp_net_gradcheck(bp_net *net, bp_int n, const void *X, bp_int ldx, const void *targets,
                           bp_int ldt, double h, double *max_rel_err, size_t *worst)
{
    const char *fn = __func__;
    TRY(bp__check_pass(fn, net, n, X, ldx));
    TRY(bp__dp_refuse(net, fn, "the gradient check"));
    BP_CHECK_PTR(max_rel_err);
    BP_REQUIRE(net->dtype == BP_F64, BP_ERR_UNSUPPORTED,
               "central differences need a BP_F64 network (float is too coarse)");
    BP_REQUIRE(n >= 1, BP_ERR_ARG, "n (%d) < 1", (int)n);
    BP_REQUIRE(isfinite(h), BP_ERR_ARG, "h is not finite");
    TRY(bp__check_targets(fn, net, n, targets, ldt, net->loss == BP_LOSS_SOFTMAX_XENT));
    return bp__dnet_gradcheck(net, fn, n, X, ldx, targets, ldt, h, max_rel_err, worst);
}
