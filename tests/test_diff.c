/* SPDX-License-Identifier: MIT */
/* test_diff.c: the network as a differentiable function: backward from the caller's dY (against
 * the built-in loss's own gradient and against central differences of <dY, f(X)>), dX for every
 * activation and through a standardisation, accumulation, the input and parameter Jacobians
 * (against differences, and in row blocks), and bad arguments. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <backprop/io.h>
#include "nettest_util.h"
#include "testutil.h"

enum { N = 21, NIN = 4, NOUT = 3, MB = 8 };

/* A double network NIN-5-NOUT with hidden activation `act` and last activation `last`, planned
 * for micro-batches of MB (so N samples stream in three) on 2 threads with every step cut;
 * parameters random in [-0.8, 0.8]. */
static bp_net *make_net(bp_act act, bp_act last, bp_loss loss, uint64_t seed)
{
    tu_rng r = tu_rng_make(seed);
    const bp_layer_spec layers[2] = {{5, act, act == BP_ACT_ELU ? 1.0 : 0.1}, {NOUT, last, 0}};
    bp_net *net = nt_net(BP_F64, NIN, 2, layers, loss, NULL);
    double *p = bp_net_params(net);
    for (size_t q = 0; q < bp_net_n_params(net); q++)
        p[q] = tu_unif(&r, -0.8, 0.8);
    NT_OK(bp_net_plan(net, MB));
    NT_OK(bp_net_set_threads(net, 2));
    NT_OK(bp_net_set_chunk_min(net, 1, 1));
    return net;
}

static double *random_block(uint64_t seed, int rows, int cols, double lo, double hi)
{
    tu_rng r = tu_rng_make(seed);
    double *a = tu_alloc((size_t)rows * (size_t)cols);
    tu_fill(&r, a, rows, cols, cols, lo, hi);
    return a;
}

/* <dY, f(X)> for the network's current parameters. */
static double inner(bp_net *net, const double *X, const double *dY)
{
    double Y[N * NOUT], s = 0;
    NT_OK(bp_net_forward(net, N, X, NIN, Y, NOUT));
    for (int q = 0; q < N * NOUT; q++)
        s += dY[q] * Y[q];
    return s;
}

/* Normwise error of a against central differences of <dY, f> in the n values at v (h = 1e-6
 * max(1, |v|)). */
static double fd_err(bp_net *net, double *v, size_t n, const double *a, const double *X, const double *dY)
{
    double max_diff = 0, max_fd = 0;
    for (size_t q = 0; q < n; q++) {
        const double saved = v[q], h = 1e-6 * fmax(1, fabs(saved));
        v[q] = saved + h;
        const double lp = inner(net, X, dY);
        v[q] = saved - h;
        const double lm = inner(net, X, dY);
        v[q] = saved;
        const double fd = (lp - lm) / (2 * h);
        max_diff = fmax(max_diff, fabs(a[q] - fd));
        max_fd = fmax(max_fd, fabs(fd));
    }
    return max_diff / fmax(max_fd, 1e-12);
}

/* For every activation of the hidden layer (and a softmax output layer), with and without a
 * standardisation: bp_net_backward's parameter gradient and dX equal central differences of
 * <dY, f(X)> (relative 1e-6, normwise), over three micro-batches on 2 threads. Loop:
 * activation x standardised. */
START_TEST(test_vjp_against_differences)
{
    const bp_act act = (bp_act)(_i / 2 % 9), last = _i >= 18 ? BP_ACT_SOFTMAX : BP_ACT_IDENTITY;
    const int stdz = _i % 2;
    bp_net *net = make_net(act, last, BP_LOSS_MSE, 100 + (uint64_t)_i);
    double *X = random_block(200 + (uint64_t)_i, N, NIN, -1.5, 1.5);
    double *dY = random_block(300 + (uint64_t)_i, N, NOUT, -1, 1);
    if (stdz) {
        const double mean[NIN] = {0.3, -0.2, 0, 1}, sd[NIN] = {2, 0.5, 0, 1.5};  /* feature 2: only centred */
        NT_OK(bp_net_set_standardization(net, mean, sd));
    }
    double *dX = tu_alloc((size_t)N * NIN);
    NT_OK(bp_net_backward(net, N, X, NIN, dY, NOUT, 0, dX, NIN));
    const size_t np = bp_net_n_params(net);
    double *g = tu_dup(bp_net_grads(net), np);
    const double ep = fd_err(net, bp_net_params(net), np, g, X, dY);
    const double ex = fd_err(net, X, (size_t)N * NIN, dX, X, dY);
    ck_assert_msg(ep <= 1e-6 && ex <= 1e-6, "%s%s%s: parameters %.3g, inputs %.3g against differences",
                  tu_act_name(act), last == BP_ACT_SOFTMAX ? " + softmax" : "", stdz ? ", standardised" : "", ep, ex);
    free(g);
    free(dX);
    free(dY);
    free(X);
    bp_net_destroy(net);
}
END_TEST

/* With dY the built-in loss's own gradient at the outputs, bp_net_backward gives the gradient and
 * dX of bp_net_loss_and_grad_dx (1e-14 normwise): MSE (dY = 2 (y - t) / (n m)) and softmax
 * cross-entropy (dY = (softmax(y) - onehot) / n). Loop: loss. */
START_TEST(test_vjp_equals_loss_grad)
{
    const int xent = _i == 1;
    bp_net *net = make_net(BP_ACT_TANH, BP_ACT_IDENTITY, xent ? BP_LOSS_SOFTMAX_XENT : BP_LOSS_MSE, 11);
    double *X = random_block(12, N, NIN, -1, 1), *T = random_block(13, N, NOUT, -1, 1);
    int32_t labels[N];
    for (int i = 0; i < N; i++)
        labels[i] = i % NOUT;
    double Y[N * NOUT], dY[N * NOUT], loss = NAN;
    double *dX1 = tu_alloc((size_t)N * NIN), *dX2 = tu_alloc((size_t)N * NIN);
    NT_OK(bp_net_loss_and_grad_dx(net, N, X, NIN, xent ? (const void *)labels : T, NOUT, &loss, dX1, NIN));
    const size_t np = bp_net_n_params(net);
    double *g1 = tu_dup(bp_net_grads(net), np);
    NT_OK(bp_net_forward(net, N, X, NIN, Y, NOUT));
    for (int i = 0; i < N; i++) {
        double m = -INFINITY, s = 0;
        for (int k = 0; k < NOUT; k++)
            m = fmax(m, Y[i * NOUT + k]);
        for (int k = 0; k < NOUT; k++)
            s += exp(Y[i * NOUT + k] - m);
        for (int k = 0; k < NOUT; k++)
            dY[i * NOUT + k] = xent ? (exp(Y[i * NOUT + k] - m) / s - (labels[i] == k)) / N
                                    : 2 * (Y[i * NOUT + k] - T[i * NOUT + k]) / (N * NOUT);
    }
    NT_OK(bp_net_backward(net, N, X, NIN, dY, NOUT, 0, dX2, NIN));
    const double eg = nt_err(bp_net_grads(net), g1, np), ex = nt_err(dX2, dX1, (size_t)N * NIN);
    ck_assert_msg(eg <= 1e-14 && ex <= 1e-14, "%s: gradient %.3g, dX %.3g", xent ? "xent" : "mse", eg, ex);
    free(g1);
    free(dX1);
    free(dX2);
    free(T);
    free(X);
    bp_net_destroy(net);
}
END_TEST

/* beta 1 accumulates: backward(dY1, beta 0) then backward(dY2, beta 1) = backward(dY1 + dY2) (1e-14);
 * beta 0 overwrites whatever the buffer held (NaN sentinel); dX not wanted (NULL) changes nothing
 * else. */
START_TEST(test_vjp_accumulates)
{
    bp_net *net = make_net(BP_ACT_RELU, BP_ACT_IDENTITY, BP_LOSS_MSE, 21);
    double *X = random_block(22, N, NIN, -1, 1), *d1 = random_block(23, N, NOUT, -1, 1),
           *d2 = random_block(24, N, NOUT, -1, 1), *d12 = tu_alloc((size_t)N * NOUT);
    for (int q = 0; q < N * NOUT; q++)
        d12[q] = d1[q] + d2[q];
    const size_t np = bp_net_n_params(net);
    tu_sentinel(bp_net_grads(net), np * sizeof(double));
    NT_OK(bp_net_backward(net, N, X, NIN, d12, NOUT, 0, NULL, 0));
    double *want = tu_dup(bp_net_grads(net), np);
    NT_OK(bp_net_backward(net, N, X, NIN, d1, NOUT, 0, NULL, 0));
    NT_OK(bp_net_backward(net, N, X, NIN, d2, NOUT, 1, NULL, 0));
    const double e = nt_err(bp_net_grads(net), want, np);
    ck_assert_msg(e <= 1e-14, "accumulated %.3g", e);
    free(want);
    free(d12);
    free(d2);
    free(d1);
    free(X);
    bp_net_destroy(net);
}
END_TEST

/* The Jacobians against central differences of each output (relative 1e-6, normwise), through a
 * standardisation; the parameter Jacobian in two row blocks (samples 0..6 and 7..20) equals the
 * whole (1e-14); the input Jacobian's row (i, k) equals bp_net_backward's dX for dY = e_k on
 * sample i alone; the gradient buffer is not touched. Loop: hidden activation (tanh, GELU). */
START_TEST(test_jacobians)
{
    const bp_act act = _i == 0 ? BP_ACT_TANH : BP_ACT_GELU;
    bp_net *net = make_net(act, BP_ACT_IDENTITY, BP_LOSS_MSE, 31 + (uint64_t)_i);
    const double mean[NIN] = {0.1, 0.2, -0.3, 0}, sd[NIN] = {1.5, 0.7, 2, 1};
    NT_OK(bp_net_set_standardization(net, mean, sd));
    double *X = random_block(32, N, NIN, -1, 1);
    const size_t np = bp_net_n_params(net), ldj = np + 3;
    double *Jx = tu_alloc((size_t)N * NOUT * NIN), *Jp = tu_alloc((size_t)N * NOUT * ldj);
    double *Jp2 = tu_alloc((size_t)N * NOUT * ldj);
    tu_sentinel(bp_net_grads(net), np * sizeof(double));
    NT_OK(bp_net_jacobian_inputs(net, N, X, NIN, Jx));
    NT_OK(bp_net_jacobian_params(net, N, X, NIN, Jp, ldj));
    ck_assert_msg(tu_is_sentinel(bp_net_grads(net), np * sizeof(double)), "the gradient buffer was written");
    NT_OK(bp_net_jacobian_params(net, 7, X, NIN, Jp2, ldj));
    NT_OK(bp_net_jacobian_params(net, N - 7, X + 7 * NIN, NIN, Jp2 + (size_t)7 * NOUT * ldj, ldj));
    double blk = 0, mx = 0;
    for (size_t row = 0; row < (size_t)N * NOUT; row++)
        for (size_t q = 0; q < np; q++) {
            blk = fmax(blk, fabs(Jp2[row * ldj + q] - Jp[row * ldj + q]));
            mx = fmax(mx, fabs(Jp[row * ldj + q]));
        }
    ck_assert_msg(blk <= 1e-14 * mx, "row blocks differ from the whole by %.3g", blk / mx);

    /* Differences of output (i, k): dY = e_(i,k). */
    double *dY = tu_alloc((size_t)N * NOUT), *p = bp_net_params(net);
    double worst_x = 0, worst_p = 0;
    for (int i = 0; i < N; i += 5)
        for (int k = 0; k < NOUT; k++) {
            memset(dY, 0, (size_t)N * NOUT * sizeof *dY);
            dY[i * NOUT + k] = 1;
            const size_t row = (size_t)i * NOUT + (size_t)k;
            worst_p = fmax(worst_p, fd_err(net, p, np, Jp + row * ldj, X, dY));
            double dXfd[NIN];
            for (int j = 0; j < NIN; j++)
                dXfd[j] = Jx[row * NIN + (size_t)j];
            worst_x = fmax(worst_x, fd_err(net, X + (size_t)i * NIN, NIN, dXfd, X, dY));
        }
    ck_assert_msg(worst_p <= 1e-6 && worst_x <= 1e-6, "%s: parameter Jacobian %.3g, input Jacobian %.3g",
                  tu_act_name(act), worst_p, worst_x);
    free(dY);
    free(Jp2);
    free(Jp);
    free(Jx);
    free(X);
    bp_net_destroy(net);
}
END_TEST

/* In float, the same calls run and agree with the double network's (1e-5). */
START_TEST(test_float)
{
    bp_net *nd = make_net(BP_ACT_SIGMOID, BP_ACT_IDENTITY, BP_LOSS_MSE, 41);
    const bp_layer_spec layers[2] = {{5, BP_ACT_SIGMOID, 0.1}, {NOUT, BP_ACT_IDENTITY, 0}};
    bp_net *nf = nt_net(BP_F32, NIN, 2, layers, BP_LOSS_MSE, NULL);
    const size_t np = bp_net_n_params(nd);
    float *pf = bp_net_params(nf);
    const double *pd = bp_net_params(nd);
    for (size_t q = 0; q < np; q++)
        pf[q] = (float)pd[q];
    for (size_t q = 0; q < np; q++)
        ((double *)bp_net_params(nd))[q] = pf[q];
    NT_OK(bp_net_plan(nf, MB));
    double *X = random_block(42, N, NIN, -1, 1), *dY = random_block(43, N, NOUT, -1, 1);
    float *Xf = nt_from_d(BP_F32, X, (size_t)N * NIN), *dYf = nt_from_d(BP_F32, dY, (size_t)N * NOUT);
    double dXd[N * NIN];
    float dXf[N * NIN];
    NT_OK(bp_net_backward(nd, N, X, NIN, dY, NOUT, 0, dXd, NIN));
    NT_OK(bp_net_backward(nf, N, Xf, NIN, dYf, NOUT, 0, dXf, NIN));
    double *gf = nt_to_d(BP_F32, bp_net_grads(nf), np), *xf = nt_to_d(BP_F32, dXf, (size_t)N * NIN);
    const double eg = nt_err(gf, bp_net_grads(nd), np), ex = nt_err(xf, dXd, (size_t)N * NIN);
    ck_assert_msg(eg <= 1e-5 && ex <= 1e-5, "float vs double: gradient %.3g, dX %.3g", eg, ex);
    float Jf[N * NOUT * NIN];
    NT_OK(bp_net_jacobian_inputs(nf, N, Xf, NIN, Jf));
    free(gf);
    free(xf);
    free(Xf);
    free(dYf);
    free(dY);
    free(X);
    bp_net_destroy(nd);
    bp_net_destroy(nf);
}
END_TEST

/* The two squared-error conventions: on the same network and data, BP_LOSS_LEAST_SQUARES's loss
 * and gradient are BP_LOSS_MSE's times n_out / 2 (1e-14), its gradient passes the gradient check
 * (1e-6), and both report the same RMSE. A model file keeps the convention. */
START_TEST(test_least_squares)
{
    bp_net *mse = make_net(BP_ACT_TANH, BP_ACT_IDENTITY, BP_LOSS_MSE, 61);
    bp_net *lsq = make_net(BP_ACT_TANH, BP_ACT_IDENTITY, BP_LOSS_LEAST_SQUARES, 61);
    double *X = random_block(62, N, NIN, -1, 1), *T = random_block(63, N, NOUT, -1, 1);
    double l1 = NAN, l2 = NAN, r1 = NAN, r2 = NAN;
    NT_OK(bp_net_loss_and_grad(mse, N, X, NIN, T, NOUT, &l1));
    NT_OK(bp_net_loss_and_grad(lsq, N, X, NIN, T, NOUT, &l2));
    const size_t np = bp_net_n_params(mse);
    double *g = tu_dup(bp_net_grads(mse), np);
    for (size_t q = 0; q < np; q++)
        g[q] *= NOUT / 2.0;
    const double eg = nt_err(bp_net_grads(lsq), g, np);
    ck_assert_msg(tu_rel(l2, l1 * NOUT / 2.0, 1e-300) <= 1e-14 && eg <= 1e-14, "loss %.17g vs %.17g, gradient %.3g",
                  l2, l1 * NOUT / 2.0, eg);
    NT_OK(bp_net_rmse(mse, N, X, NIN, T, NOUT, &r1));
    NT_OK(bp_net_rmse(lsq, N, X, NIN, T, NOUT, &r2));
    ck_assert_msg(r1 == r2, "rmse %.17g vs %.17g", r1, r2);
    double err = NAN;
    NT_OK(bp_net_gradcheck(lsq, N, X, NIN, T, NOUT, 0, &err, NULL));
    ck_assert_msg(err <= 1e-6, "least squares gradient check %.3g", err);
    const char *tmp = getenv("TMPDIR");
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/bp_diff_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/lsq.bpm", dir);
    NT_OK(bp_model_save(lsq, path));
    bp_net *back = NULL;
    NT_OK(bp_model_load(&back, path, NULL));
    ck_assert_int_eq(bp_net_loss(back), BP_LOSS_LEAST_SQUARES);
    bp_net_destroy(back);
    tu_remove_dir(dir);
    free(g);
    free(T);
    free(X);
    bp_net_destroy(mse);
    bp_net_destroy(lsq);
}
END_TEST

/* Per-sample losses: their mean is bp_net_eval_loss's (1e-14), and for the squared errors each
 * is the sample's mean (MSE) or half sum (least squares) of squares, computed here. Loop: loss. */
START_TEST(test_sample_losses)
{
    const bp_loss losses[4] = {BP_LOSS_SOFTMAX_XENT, BP_LOSS_SIGMOID_BCE, BP_LOSS_MSE, BP_LOSS_LEAST_SQUARES};
    const bp_loss loss = losses[_i];
    bp_net *net = make_net(BP_ACT_RELU, BP_ACT_IDENTITY, loss, 71);
    double *X = random_block(72, N, NIN, -1, 1), *T = random_block(73, N, NOUT, 0, 1);
    int32_t labels[N];
    for (int i = 0; i < N; i++)
        labels[i] = (i * 7) % NOUT;
    const void *tg = loss == BP_LOSS_SOFTMAX_XENT ? (const void *)labels : T;
    double per[N], mean = 0, want = NAN, Y[N * NOUT];
    NT_OK(bp_net_sample_losses(net, N, X, NIN, tg, NOUT, per));
    NT_OK(bp_net_eval_loss(net, N, X, NIN, tg, NOUT, &want));
    for (int i = 0; i < N; i++)
        mean += per[i] / N;
    ck_assert_msg(tu_rel(mean, want, 1e-300) <= 1e-14, "%s: mean of per-sample losses %.17g, loss %.17g",
                  nt_loss_name(loss), mean, want);
    NT_OK(bp_net_forward(net, N, X, NIN, Y, NOUT));
    for (int i = 0; i < N && (loss == BP_LOSS_MSE || loss == BP_LOSS_LEAST_SQUARES); i++) {
        double s = 0;
        for (int k = 0; k < NOUT; k++)
            s += (Y[i * NOUT + k] - T[i * NOUT + k]) * (Y[i * NOUT + k] - T[i * NOUT + k]);
        const double e = loss == BP_LOSS_MSE ? s / NOUT : s / 2;
        ck_assert_msg(tu_rel(per[i], e, 1e-300) <= 1e-14, "sample %d: %.17g, expected %.17g", i, per[i], e);
    }
    NT_EXPECT(bp_net_sample_losses(net, N, X, NIN, tg, NOUT, NULL), BP_ERR_ARG, "bp_net_sample_losses", "losses");
    free(T);
    free(X);
    bp_net_destroy(net);
}
END_TEST

/* Bad arguments are refused before anything is written. */
START_TEST(test_diff_errors)
{
    bp_net *net = make_net(BP_ACT_TANH, BP_ACT_IDENTITY, BP_LOSS_MSE, 51);
    double *X = random_block(52, N, NIN, -1, 1), *dY = random_block(53, N, NOUT, -1, 1);
    double dX[N * NIN], J[N * NOUT * 64];
    NT_EXPECT(bp_net_backward(net, N, X, NIN, NULL, NOUT, 0, dX, NIN), BP_ERR_ARG, "bp_net_backward", "dY is NULL");
    NT_EXPECT(bp_net_backward(net, N, X, NIN, dY, NOUT - 1, 0, dX, NIN), BP_ERR_ARG, "bp_net_backward", "lddy");
    NT_EXPECT(bp_net_backward(net, N, X, NIN, dY, NOUT, NAN, dX, NIN), BP_ERR_ARG, "bp_net_backward", "beta");
    NT_EXPECT(bp_net_backward(net, N, X, NIN, dY, NOUT, 0, dX, NIN - 1), BP_ERR_ARG, "bp_net_backward", "lddx");
    NT_OK(bp_net_set_check_finite(net, 1));
    dY[5] = INFINITY;
    NT_EXPECT(bp_net_backward(net, N, X, NIN, dY, NOUT, 0, dX, NIN), BP_ERR_NONFINITE, "bp_net_backward", "dY row 1");
    dY[5] = 0;
    NT_EXPECT(bp_net_jacobian_params(net, 2, X, NIN, J, bp_net_n_params(net) - 1), BP_ERR_ARG,
              "bp_net_jacobian_params", "ldj");
    NT_EXPECT(bp_net_jacobian_inputs(net, 2, X, NIN, NULL), BP_ERR_ARG, "bp_net_jacobian_inputs", "J is NULL");
    NT_EXPECT(bp_net_loss_and_grad_dx(net, 2, X, NIN, dY, NOUT, NULL, dX, 0), BP_ERR_ARG, "bp_net_loss_and_grad_dx",
              "lddx");
    free(dY);
    free(X);
    bp_net_destroy(net);
}
END_TEST

static Suite *diff_suite(void)
{
    Suite *s = suite_create("diff");
    TCase *t = tcase_create("vjp");
    tcase_add_loop_test(t, test_vjp_against_differences, 0, 20);
    tcase_add_loop_test(t, test_vjp_equals_loss_grad, 0, 2);
    tcase_add_test(t, test_vjp_accumulates);
    tcase_add_loop_test(t, test_jacobians, 0, 2);
    tcase_add_test(t, test_float);
    tcase_add_test(t, test_diff_errors);
    tcase_add_test(t, test_least_squares);
    tcase_add_loop_test(t, test_sample_losses, 0, 4);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run_suite(diff_suite());
}
