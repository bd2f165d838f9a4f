/* SPDX-License-Identifier: MIT */
/* test_net.c: the network layer: gradients against finite differences, micro-batching, the batch-1
 * path, backends, forward, allocations, initialisation, determinism, finite checks, the plan's
 * description, layer views and every bad argument. */
#define _POSIX_C_SOURCE 200809L  /* cblas.h: BLIS's needs the pthread types */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "nettest_util.h"
#include "testutil.h"

/* Gradients against central differences pass below this normwise relative error. */
#define FD_TOL 1e-6
/* Pre-activations of relu-like layers must stay this far from the kink: far beyond the
 * change a parameter step of 1e-6 makes to them. */
#define KINK_MARGIN 1e-3

static const bp_act ACTS[TU_NACT] = {
    BP_ACT_IDENTITY, BP_ACT_SIGMOID, BP_ACT_TANH, BP_ACT_RELU, BP_ACT_LEAKY_RELU,
    BP_ACT_ELU, BP_ACT_GELU, BP_ACT_GELU_TANH, BP_ACT_SOFTPLUS, BP_ACT_SOFTMAX,
};
static const bp_loss LOSSES[3] = {BP_LOSS_SOFTMAX_XENT, BP_LOSS_SIGMOID_BCE, BP_LOSS_MSE};
static const bp_dtype DTYPES[2] = {BP_F32, BP_F64};

static double act_alpha(bp_act a)
{
    return a == BP_ACT_LEAKY_RELU ? 0.1 : a == BP_ACT_ELU ? 1.0 : 0.0;
}

static int has_kink(bp_act a)
{
    return a == BP_ACT_RELU || a == BP_ACT_LEAKY_RELU || a == BP_ACT_ELU;
}

/* ---- test problems ------------------------------------------------------------------------- */

/* n samples X (n x n_in, leading dimension ldx) and targets for `loss`: labels in [0, n_out)
 * (in {0, 1} when n_out == 1, for a one-output BCE accuracy), and real targets (n x n_out,
 * ldt: BCE in [0, 1], MSE in [-1, 1]). Padding holds the sentinel, a NaN, so reading it
 * poisons the results. Both the double originals and copies in the dtype. */
typedef struct problem {
    bp_dtype dt;
    bp_loss loss;
    int n, n_in, n_out, ldx, ldt;
    double *Xd, *Td;
    int32_t *labels;
    void *X, *T;
} problem;

static problem make_problem(bp_dtype dt, bp_loss loss, int n, int n_in, int n_out, int ldx, int ldt,
                            uint64_t seed)
{
    tu_rng r = tu_rng_make(seed);
    problem p = {dt, loss, n, n_in, n_out, ldx, ldt, NULL, NULL, NULL, NULL, NULL};
    const size_t xs = (size_t)(n > 0 ? n : 1) * (size_t)ldx, ts = (size_t)(n > 0 ? n : 1) * (size_t)ldt;
    p.Xd = tu_alloc(xs);
    p.Td = tu_alloc(ts);
    tu_fill(&r, p.Xd, n, n_in, ldx, -1, 1);
    tu_fill(&r, p.Td, n, n_out, ldt, loss == BP_LOSS_SIGMOID_BCE ? 0 : -1, 1);
    p.labels = malloc((size_t)(n > 0 ? n : 1) * sizeof *p.labels);
    ck_assert_ptr_nonnull(p.labels);
    for (int i = 0; i < n; i++)
        p.labels[i] = tu_int(&r, 0, n_out > 1 ? n_out - 1 : 1);
    p.X = nt_from_d(dt, p.Xd, xs);
    p.T = nt_from_d(dt, p.Td, ts);
    return p;
}

static void free_problem(problem *p)
{
    free(p->Xd);
    free(p->Td);
    free(p->labels);
    free(p->X);
    free(p->T);
}

/* What bp_net_loss_and_grad takes as targets, for samples from `start` on. */
static const void *targets_at(const problem *p, int start)
{
    if (p->loss == BP_LOSS_SOFTMAX_XENT)
        return p->labels + start;
    return (const char *)p->T + (size_t)start * (size_t)p->ldt * nt_esize(p->dt);
}

static const void *x_at(const problem *p, int start)
{
    return (const char *)p->X + (size_t)start * (size_t)p->ldx * nt_esize(p->dt);
}

/* Sets every bias of the network to v. */
static void set_biases(bp_net *net, double v)
{
    for (bp_int i = 0; i < bp_net_n_layers(net); i++) {
        bp_layer_view lv;
        NT_OK(bp_net_layer(net, i, &lv));
        for (int o = 0; o < lv.n_out; o++)
            nt_set(bp_net_dtype(net), lv.b, (size_t)o, v);
    }
}

/* ---- an oracle in double, independent of the kernels ---------------------------------------- */

/* The network's outputs for X in double with libm (out: n x n_out, leading dimension n_out);
 * returns the smallest |z| over the pre-activations of relu-like layers (+Inf if none). */
static double ref_forward(bp_net *net, int n, const double *X, int ldx, double *out)
{
    const bp_dtype dt = bp_net_dtype(net);
    int width = bp_net_n_in(net);
    double *in = malloc((size_t)n * (size_t)width * sizeof *in), zmin = INFINITY;
    ck_assert_ptr_nonnull(in);
    for (int s = 0; s < n; s++)
        memcpy(in + (size_t)s * (size_t)width, X + (size_t)s * (size_t)ldx, (size_t)width * sizeof *in);
    for (bp_int i = 0; i < bp_net_n_layers(net); i++) {
        bp_layer_view lv;
        NT_OK(bp_net_layer(net, i, &lv));
        double *Z = malloc((size_t)n * (size_t)lv.n_out * sizeof *Z);
        double *Y = malloc((size_t)n * (size_t)lv.n_out * sizeof *Y);
        ck_assert(Z && Y);
        for (int s = 0; s < n; s++)
            for (int o = 0; o < lv.n_out; o++) {
                double z = nt_get(dt, lv.b, (size_t)o);
                for (int k = 0; k < lv.n_in; k++)
                    z += nt_get(dt, lv.W, (size_t)o * (size_t)lv.n_in + (size_t)k) * in[(size_t)s * (size_t)lv.n_in + (size_t)k];
                Z[(size_t)s * (size_t)lv.n_out + (size_t)o] = z;
                if (has_kink(lv.act))
                    zmin = fmin(zmin, fabs(z));
            }
        tu_act_block(lv.act, lv.alpha, n, lv.n_out, Z, lv.n_out, Y, lv.n_out);
        free(Z);
        free(in);
        in = Y;
        width = lv.n_out;
    }
    memcpy(out, in, (size_t)n * (size_t)width * sizeof *out);
    free(in);
    return zmin;
}

/* The mean loss of outputs Y (n x n_out, leading dimension ldy) against the problem's targets,
 * from the formulas of backprop/kernels.h, in double. */
static double ref_loss(const problem *p, const double *Y, int ldy)
{
    double sum = 0;
    for (int s = 0; s < p->n; s++) {
        const double *y = Y + (size_t)s * (size_t)ldy, *t = p->Td + (size_t)s * (size_t)p->ldt;
        if (p->loss == BP_LOSS_SOFTMAX_XENT) {
            double zmax = y[0], e = 0;
            for (int j = 1; j < p->n_out; j++)
                zmax = fmax(zmax, y[j]);
            for (int j = 0; j < p->n_out; j++)
                e += exp(y[j] - zmax);
            sum += zmax + log(e) - y[p->labels[s]];
        } else if (p->loss == BP_LOSS_SIGMOID_BCE) {
            for (int j = 0; j < p->n_out; j++)
                sum += fmax(y[j], 0) - y[j] * t[j] + log1p(exp(-fabs(y[j])));
        } else {
            for (int j = 0; j < p->n_out; j++)
                sum += (y[j] - t[j]) * (y[j] - t[j]) / p->n_out;
        }
    }
    return sum / p->n;
}

/* ---- gradients against finite differences ----------------------------------------------------- */

/* Every activation (in two hidden layers, and in the output layer too under MSE) x every loss:
 * the gradient of bp_net_loss_and_grad against central differences of its own loss on the
 * flat parameter buffer, h = 1e-6 max(1, |p|), normwise error < 1e-6; then bp_net_gradcheck
 * must agree (max_rel_err < 1e-6), restore the parameters bitwise and leave g in the gradient
 * buffer. Five samples, micro-batches of 3 (so the gradient accumulates). Biases are 0.3 and
 * the seeds fixed; the pre-activations of relu-like layers are asserted to keep KINK_MARGIN. */
START_TEST(test_grad_fd)
{
    const bp_act act = ACTS[_i / 3];
    const bp_loss loss = LOSSES[_i % 3];
    const double alpha = act_alpha(act);
    enum { N = 5, NIN = 4, NOUT = 3 };
    const bp_layer_spec layers[3] = {
        {5, act, alpha}, {4, act, alpha}, {NOUT, loss == BP_LOSS_MSE ? act : BP_ACT_IDENTITY, alpha}};
    char ctx[80];
    snprintf(ctx, sizeof ctx, "%s x %s", tu_act_name(act), nt_loss_name(loss));

    problem pb = make_problem(BP_F64, loss, N, NIN, NOUT, NIN + 1, NOUT + 2, 1000 + (uint64_t)_i);
    bp_net *net = nt_net(BP_F64, NIN, 3, layers, loss, NULL);
    NT_OK(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 77, 1));
    set_biases(net, 0.3);
    NT_OK(bp_net_plan(net, 3));

    double out[N * NOUT];
    const double zmin = ref_forward(net, N, pb.Xd, pb.ldx, out);
    ck_assert_msg(zmin > KINK_MARGIN, "%s: a pre-activation (%.3g) is within %g of the kink", ctx, zmin, KINK_MARGIN);

    const size_t P = bp_net_n_params(net);
    double *p = bp_net_params(net), loss0 = NAN;
    NT_OK(bp_net_loss_and_grad(net, N, pb.X, pb.ldx, targets_at(&pb, 0), pb.ldt, &loss0));
    ck_assert_msg(tu_rel(loss0, ref_loss(&pb, out, NOUT), TU_FLOOR) < 1e-13, "%s: loss %.17g vs formula %.17g",
                  ctx, loss0, ref_loss(&pb, out, NOUT));
    double *g = nt_grads_d(net), *fd = tu_alloc(P), *p0 = nt_params_d(net);
    for (size_t q = 0; q < P; q++) {
        const double x0 = p[q], h = 1e-6 * fmax(1.0, fabs(x0));
        double lp = NAN, lm = NAN;
        p[q] = x0 + h;
        NT_OK(bp_net_loss_and_grad(net, N, pb.X, pb.ldx, targets_at(&pb, 0), pb.ldt, &lp));
        p[q] = x0 - h;
        NT_OK(bp_net_loss_and_grad(net, N, pb.X, pb.ldx, targets_at(&pb, 0), pb.ldt, &lm));
        p[q] = x0;
        fd[q] = (lp - lm) / ((x0 + h) - (x0 - h));
    }
    const double err = nt_err(g, fd, P);
    ck_assert_msg(err < FD_TOL, "%s: gradient vs central differences: normwise error %.3g", ctx, err);
    double gmax = 0;
    for (size_t q = 0; q < P; q++)
        gmax = fmax(gmax, fabs(fd[q]));
    ck_assert_msg(gmax > 1e-3, "%s: the gradient is too small (%.3g) for the test to mean anything", ctx, gmax);

    double rel = NAN;
    size_t worst = SIZE_MAX;
    NT_OK(bp_net_gradcheck(net, N, pb.X, pb.ldx, targets_at(&pb, 0), pb.ldt, 0, &rel, &worst));
    ck_assert_msg(rel >= 0 && rel < FD_TOL, "%s: bp_net_gradcheck max_rel_err %.3g", ctx, rel);
    ck_assert_msg(worst < P, "%s: worst %zu not below %zu", ctx, worst, P);
    ck_assert_msg(memcmp(p, p0, P * sizeof *p) == 0, "%s: gradcheck did not restore the parameters bitwise", ctx);
    double *g2 = nt_grads_d(net);
    ck_assert_msg(nt_err(g2, g, P) <= 1e-14, "%s: after gradcheck the gradient buffer is not g (%.3g)", ctx,
                  nt_err(g2, g, P));

    free(g);
    free(g2);
    free(fd);
    free(p0);
    bp_net_destroy(net);
    free_problem(&pb);
}
END_TEST

/* bp_net_gradcheck honours an explicit h: a coarse h = 0.3 on a curved network gives a
 * visible truncation error (> 1e-5), h = 1e-6 a small one; so its result is not vacuous. */
START_TEST(test_gradcheck_h)
{
    const bp_layer_spec layers[2] = {{6, BP_ACT_TANH, 0}, {3, BP_ACT_IDENTITY, 0}};
    problem pb = make_problem(BP_F64, BP_LOSS_SOFTMAX_XENT, 7, 4, 3, 4, 3, 31);
    bp_net *net = nt_net(BP_F64, 4, 2, layers, BP_LOSS_SOFTMAX_XENT, NULL);
    NT_OK(bp_net_init(net, BP_INIT_HE_NORMAL, 5, 1));
    NT_OK(bp_net_plan(net, 7));
    double coarse = NAN, fine = NAN;
    NT_OK(bp_net_gradcheck(net, 7, pb.X, 4, pb.labels, 0, 0.3, &coarse, NULL));
    NT_OK(bp_net_gradcheck(net, 7, pb.X, 4, pb.labels, 0, 1e-6, &fine, NULL));
    ck_assert_msg(coarse > 1e-5, "gradcheck with h = 0.3: max_rel_err %.3g, expected a visible truncation error", coarse);
    ck_assert_msg(fine < FD_TOL, "gradcheck with h = 1e-6: max_rel_err %.3g", fine);
    bp_net_destroy(net);
    free_problem(&pb);
}
END_TEST

/* ---- invariants of the pipeline ------------------------------------------------------------ */

static const bp_layer_spec *pipeline_layers(bp_loss loss)
{
    static bp_layer_spec l[3];
    l[0] = (bp_layer_spec){9, BP_ACT_TANH, 0};
    l[1] = (bp_layer_spec){7, BP_ACT_GELU, 0};
    l[2] = (bp_layer_spec){4, loss == BP_LOSS_MSE ? BP_ACT_SIGMOID : BP_ACT_IDENTITY, 0};
    return l;
}

/* Micro-batched = full batch: plan(7) against plan(n) for n = 8 and n = 50 (ldx > n_in,
 * ldt > n_out): gradient and loss to 1e-12 in double, nt_tol in float. Loop: dtype x loss. */
START_TEST(test_microbatch)
{
    const bp_dtype dt = DTYPES[_i / 3];
    const bp_loss loss = LOSSES[_i % 3];
    static const int sizes[2] = {8, 50};
    for (int k = 0; k < 2; k++) {
        const int n = sizes[k];
        problem pb = make_problem(dt, loss, n, 6, 4, 8, 5, 40 + (uint64_t)k);
        bp_net *net = nt_net(dt, 6, 3, pipeline_layers(loss), loss, NULL);
        NT_OK(bp_net_init(net, BP_INIT_GLOROT_NORMAL, 9, 1));
        const size_t P = bp_net_n_params(net);
        double l7 = NAN, lf = NAN;
        NT_OK(bp_net_plan(net, 7));
        NT_OK(bp_net_loss_and_grad(net, n, pb.X, pb.ldx, targets_at(&pb, 0), pb.ldt, &l7));
        double *g7 = nt_grads_d(net);
        NT_OK(bp_net_plan(net, n));
        NT_OK(bp_net_loss_and_grad(net, n, pb.X, pb.ldx, targets_at(&pb, 0), pb.ldt, &lf));
        double *gf = nt_grads_d(net);
        const double tol = dt == BP_F64 ? 1e-12 : nt_tol(net, n, FLT_EPSILON);
        const double eg = nt_err(g7, gf, P), el = tu_rel(l7, lf, TU_FLOOR);
        ck_assert_msg(eg <= tol, "%s %s n=%d: micro-batched gradient vs full batch: %.3g > %.3g",
                      nt_dtype_name(dt), nt_loss_name(loss), n, eg, tol);
        ck_assert_msg(el <= tol, "%s %s n=%d: micro-batched loss vs full batch: %.3g > %.3g",
                      nt_dtype_name(dt), nt_loss_name(loss), n, el, tol);
        free(g7);
        free(gf);
        bp_net_destroy(net);
        free_problem(&pb);
    }
}
END_TEST

/* The batch-1 path (gemv/ger) against the gemm path: the n one-sample gradients (each its own
 * call, so each divided by 1) add up to n times the batch gradient, and their losses to n
 * times the batch loss; and plan(1), which streams the batch as n gemv/ger micro-batches
 * accumulating with beta = 1, gives the batch gradient. n = 9, tolerance nt_tol.
 * Loop: dtype x loss. */
START_TEST(test_batch1)
{
    const bp_dtype dt = DTYPES[_i / 3];
    const bp_loss loss = LOSSES[_i % 3];
    enum { N = 9 };
    problem pb = make_problem(dt, loss, N, 6, 4, 7, 4, 50);
    bp_net *net = nt_net(dt, 6, 3, pipeline_layers(loss), loss, NULL);
    NT_OK(bp_net_init(net, BP_INIT_HE_UNIFORM, 10, 1));
    set_biases(net, 0.1);
    const size_t P = bp_net_n_params(net);
    NT_OK(bp_net_plan(net, 4));
    double lb = NAN, lsum = 0;
    NT_OK(bp_net_loss_and_grad(net, N, pb.X, pb.ldx, targets_at(&pb, 0), pb.ldt, &lb));
    double *G = nt_grads_d(net), *sum = calloc(P, sizeof *sum), *nG = tu_alloc(P);
    ck_assert_ptr_nonnull(sum);
    for (int s = 0; s < N; s++) {
        double ls = NAN;
        NT_OK(bp_net_loss_and_grad(net, 1, x_at(&pb, s), pb.ldx, targets_at(&pb, s), pb.ldt, &ls));
        lsum += ls;
        for (size_t q = 0; q < P; q++)
            sum[q] += nt_get(dt, bp_net_grads(net), q);
    }
    for (size_t q = 0; q < P; q++)
        nG[q] = N * G[q];
    const double tol = nt_tol(net, N, nt_eps(dt));
    ck_assert_msg(nt_err(sum, nG, P) <= tol, "%s %s: sum of one-sample gradients vs n x batch gradient: %.3g > %.3g",
                  nt_dtype_name(dt), nt_loss_name(loss), nt_err(sum, nG, P), tol);
    ck_assert_msg(tu_rel(lsum, N * lb, TU_FLOOR) <= tol, "%s %s: sum of one-sample losses %.10g vs n x %.10g",
                  nt_dtype_name(dt), nt_loss_name(loss), lsum, lb);

    NT_OK(bp_net_plan(net, 1));
    double l1 = NAN;
    NT_OK(bp_net_loss_and_grad(net, N, pb.X, pb.ldx, targets_at(&pb, 0), pb.ldt, &l1));
    double *G1 = nt_grads_d(net);
    ck_assert_msg(nt_err(G1, G, P) <= tol, "%s %s: plan(1) gradient vs gemm batch gradient: %.3g > %.3g",
                  nt_dtype_name(dt), nt_loss_name(loss), nt_err(G1, G, P), tol);
    ck_assert_msg(tu_rel(l1, lb, TU_FLOOR) <= tol, "%s %s: plan(1) loss", nt_dtype_name(dt), nt_loss_name(loss));
    free(G);
    free(G1);
    free(sum);
    free(nG);
    bp_net_destroy(net);
    free_problem(&pb);
}
END_TEST

/* BLAS backend = naive backend: loss, gradient and forward output for n = 1 and n = 13
 * (micro-batches of 5), tolerance nt_tol. Loop: dtype x loss. */
START_TEST(test_backend)
{
    const bp_dtype dt = DTYPES[_i / 3];
    const bp_loss loss = LOSSES[_i % 3];
    static const int sizes[2] = {1, 13};
    for (int k = 0; k < 2; k++) {
        const int n = sizes[k], ldy = 6;
        problem pb = make_problem(dt, loss, n, 6, 4, 6, 4, 60 + (uint64_t)k);
        bp_net *net = nt_net(dt, 6, 3, pipeline_layers(loss), loss, NULL);
        NT_OK(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 11, 1));
        NT_OK(bp_net_plan(net, 5));
        const size_t P = bp_net_n_params(net), ysz = tu_extent(n, 4, ldy);
        void *Y[2];
        double loss_v[2], *g[2], *y[2];
        for (int b = 0; b < 2; b++) {
            NT_OK(bp_net_set_backend(net, b == 0 ? BP_BACKEND_BLAS : BP_BACKEND_NAIVE));
            NT_OK(bp_net_loss_and_grad(net, n, pb.X, pb.ldx, targets_at(&pb, 0), pb.ldt, &loss_v[b]));
            g[b] = nt_grads_d(net);
            Y[b] = malloc(ysz * nt_esize(dt));
            ck_assert_ptr_nonnull(Y[b]);
            NT_OK(bp_net_forward(net, n, pb.X, pb.ldx, Y[b], ldy));
            y[b] = nt_to_d(dt, Y[b], ysz);
        }
        const double tol = nt_tol(net, n, nt_eps(dt));
        ck_assert_msg(tu_rel(loss_v[1], loss_v[0], TU_FLOOR) <= tol, "%s %s n=%d: naive loss %.10g vs blas %.10g",
                      nt_dtype_name(dt), nt_loss_name(loss), n, loss_v[1], loss_v[0]);
        ck_assert_msg(nt_err(g[1], g[0], P) <= tol, "%s %s n=%d: naive gradient vs blas: %.3g > %.3g",
                      nt_dtype_name(dt), nt_loss_name(loss), n, nt_err(g[1], g[0], P), tol);
        const double ey = tu_err(n, 4, y[1], ldy, y[0], ldy, TU_FLOOR);
        ck_assert_msg(ey <= tol, "%s %s n=%d: naive forward vs blas: %.3g > %.3g", nt_dtype_name(dt),
                      nt_loss_name(loss), n, ey, tol);
        for (int b = 0; b < 2; b++) {
            free(Y[b]);
            free(y[b]);
            free(g[b]);
        }
        bp_net_destroy(net);
        free_problem(&pb);
    }
}
END_TEST

/* bp_net_forward against the chain of bp_?dense_forward calls on the bp_net_layer views and
 * against the double oracle, for n = 3 (below the micro-batch of 5) and n = 12 (above), with
 * ldx = n_in + 3 and ldy = n_out + 2 (the padding of Y stays untouched); and the loss of
 * bp_net_loss_and_grad equals the loss formula applied to the forward outputs (so forward
 * returns what the loss sees: logits for xent and BCE). Loop: dtype x loss. */
START_TEST(test_forward)
{
    const bp_dtype dt = DTYPES[_i / 3];
    const bp_loss loss = LOSSES[_i % 3];
    const size_t es = nt_esize(dt);
    enum { NIN = 5, NOUT = 4 };
    static const int sizes[2] = {3, 12};
    for (int k = 0; k < 2; k++) {
        const int n = sizes[k], ldx = NIN + 3, ldy = NOUT + 2;
        problem pb = make_problem(dt, loss, n, NIN, NOUT, ldx, NOUT + 1, 70 + (uint64_t)k);
        const bp_layer_spec layers[3] = {
            {6, BP_ACT_ELU, 0.7}, {5, BP_ACT_GELU_TANH, 0}, {NOUT, loss == BP_LOSS_MSE ? BP_ACT_TANH : BP_ACT_IDENTITY, 0}};
        bp_net *net = nt_net(dt, NIN, 3, layers, loss, NULL);
        NT_OK(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 12, 1));
        set_biases(net, -0.2);
        NT_OK(bp_net_plan(net, 5));
        const size_t ysz = tu_extent(n, NOUT, ldy);
        void *Y = malloc(ysz * es);
        ck_assert_ptr_nonnull(Y);
        tu_sentinel(Y, ysz * es);
        NT_OK(bp_net_forward(net, n, pb.X, ldx, Y, ldy));
        for (int s = 0; s + 1 < n; s++)
            ck_assert_msg(tu_is_sentinel((char *)Y + ((size_t)s * ldy + NOUT) * es, (size_t)(ldy - NOUT) * es),
                          "%s %s n=%d: bp_net_forward wrote into the padding of Y row %d", nt_dtype_name(dt),
                          nt_loss_name(loss), n, s);
        double *y = nt_to_d(dt, Y, ysz);

        /* The chain of kernels, each layer on its view. */
        void *in = nt_memdup(pb.X, tu_extent(n, NIN, ldx) * es);
        int ldin = ldx;
        for (bp_int i = 0; i < 3; i++) {
            bp_layer_view v;
            NT_OK(bp_net_layer(net, i, &v));
            void *out = malloc((size_t)n * (size_t)v.n_out * es);
            ck_assert_ptr_nonnull(out);
            if (dt == BP_F32)
                NT_OK(bp_sdense_forward(BP_ROW_MAJOR, n, v.n_in, v.n_out, in, ldin, v.W, v.n_in, v.b, v.act,
                                        (float)v.alpha, NULL, 0, out, v.n_out));
            else
                NT_OK(bp_ddense_forward(BP_ROW_MAJOR, n, v.n_in, v.n_out, in, ldin, v.W, v.n_in, v.b, v.act,
                                        v.alpha, NULL, 0, out, v.n_out));
            free(in);
            in = out;
            ldin = v.n_out;
        }
        double *chain = nt_to_d(dt, in, (size_t)n * NOUT), *ref = tu_alloc((size_t)n * NOUT);
        free(in);
        ref_forward(net, n, pb.Xd, ldx, ref);
        const double tol = nt_tol(net, n, nt_eps(dt));
        const double e1 = tu_err(n, NOUT, y, ldy, chain, NOUT, TU_FLOOR);
        const double e2 = tu_err(n, NOUT, y, ldy, ref, NOUT, TU_FLOOR);
        ck_assert_msg(e1 <= tol, "%s %s n=%d: forward vs the kernel chain: %.3g > %.3g", nt_dtype_name(dt),
                      nt_loss_name(loss), n, e1, tol);
        ck_assert_msg(e2 <= tol, "%s %s n=%d: forward vs the double oracle: %.3g > %.3g", nt_dtype_name(dt),
                      nt_loss_name(loss), n, e2, tol);

        double l = NAN;
        NT_OK(bp_net_loss_and_grad(net, n, pb.X, ldx, targets_at(&pb, 0), pb.ldt, &l));
        const double lref = ref_loss(&pb, y, ldy);
        ck_assert_msg(tu_rel(l, lref, TU_FLOOR) <= tol, "%s %s n=%d: loss %.10g vs the formula on forward's outputs %.10g",
                      nt_dtype_name(dt), nt_loss_name(loss), n, l, lref);
        free(Y);
        free(y);
        free(chain);
        free(ref);
        bp_net_destroy(net);
        free_problem(&pb);
    }
}
END_TEST

/* bp_net_accuracy and its confusion matrix against the arg-max of bp_net_forward's outputs
 * (xent, 4 classes), and for a one-output BCE network against output > 0; n = 23 over
 * micro-batches of 5. Loop: dtype. */
START_TEST(test_accuracy)
{
    const bp_dtype dt = DTYPES[_i];
    enum { N = 23, NIN = 5 };
    for (int c = 0; c < 2; c++) {
        const bp_loss loss = c == 0 ? BP_LOSS_SOFTMAX_XENT : BP_LOSS_SIGMOID_BCE;
        const int nout = c == 0 ? 4 : 1;
        problem pb = make_problem(dt, loss, N, NIN, nout, NIN, nout, 80 + (uint64_t)c);
        const bp_layer_spec layers[2] = {{7, BP_ACT_TANH, 0}, {nout, BP_ACT_IDENTITY, 0}};
        bp_net *net = nt_net(dt, NIN, 2, layers, loss, NULL);
        NT_OK(bp_net_init(net, BP_INIT_HE_NORMAL, 13, 1));
        NT_OK(bp_net_plan(net, 5));
        void *Y = malloc((size_t)N * (size_t)nout * nt_esize(dt));
        ck_assert_ptr_nonnull(Y);
        NT_OK(bp_net_forward(net, N, pb.X, NIN, Y, nout));
        int64_t conf[16], ref_conf[16] = {0};
        int correct = 0;
        for (int s = 0; s < N; s++) {
            int pred = 0;
            if (nout == 1)
                pred = nt_get(dt, Y, (size_t)s) > 0;
            else
                for (int j = 1; j < nout; j++)
                    if (nt_get(dt, Y, (size_t)s * nout + j) > nt_get(dt, Y, (size_t)s * nout + pred))
                        pred = j;
            correct += pred == pb.labels[s];
            ref_conf[pb.labels[s] * nout + pred]++;
        }
        double acc = NAN;
        NT_OK(bp_net_accuracy(net, N, pb.X, NIN, pb.labels, &acc, nout > 1 ? conf : NULL));
        ck_assert_msg(acc == (double)correct / N, "%s %s: accuracy %.17g, expected %d/%d", nt_dtype_name(dt),
                      nt_loss_name(loss), acc, correct, N);
        ck_assert_msg(correct > 0 && correct < N, "%s %s: a degenerate case (%d/%d correct)", nt_dtype_name(dt),
                      nt_loss_name(loss), correct, N);
        if (nout > 1)
            for (int q = 0; q < nout * nout; q++)
                ck_assert_msg(conf[q] == ref_conf[q], "%s: confusion[%d][%d] = %lld, expected %lld", nt_dtype_name(dt),
                              q / nout, q % nout, (long long)conf[q], (long long)ref_conf[q]);
        free(Y);
        bp_net_destroy(net);
        free_problem(&pb);
    }
}
END_TEST

/* An empty batch is a quick return: loss and gradient zero, forward writes nothing, X and Y
 * may be NULL. */
START_TEST(test_empty_batch)
{
    const bp_layer_spec layers[2] = {{3, BP_ACT_TANH, 0}, {2, BP_ACT_IDENTITY, 0}};
    bp_net *net = nt_net(BP_F64, 2, 2, layers, BP_LOSS_MSE, NULL);
    NT_OK(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 1, 1));
    NT_OK(bp_net_plan(net, 4));
    double *g = bp_net_grads(net), l = 7;
    for (size_t q = 0; q < bp_net_n_params(net); q++)
        g[q] = 5;
    NT_OK(bp_net_loss_and_grad(net, 0, NULL, 2, NULL, 2, &l));
    ck_assert_msg(l == 0, "loss of an empty batch: %g", l);
    for (size_t q = 0; q < bp_net_n_params(net); q++)
        ck_assert_msg(g[q] == 0, "gradient of an empty batch: g[%zu] = %g", q, g[q]);
    NT_OK(bp_net_forward(net, 0, NULL, 2, NULL, 2));
    bp_net_destroy(net);
}
END_TEST

/* ---- allocations ------------------------------------------------------------------------- */

/* After create + init + plan + optim_create, steps make no allocation: loss_and_grad (a batch
 * above the micro-batch of 8, one equal to it, and n = 1) + bp_optim_step, forward,
 * accuracy with confusion (xent, one-output BCE) or rmse (MSE), gradcheck (double), the naive
 * backend, describe_plan and layer views: the counts stay the same. bp_train allocates exactly
 * once and frees once per call, for batches below and above the micro-batch.
 * Loop: dtype x loss. */
START_TEST(test_no_alloc)
{
    const bp_dtype dt = DTYPES[_i / 3];
    const bp_loss loss = LOSSES[_i % 3];
    const int nout = loss == BP_LOSS_SIGMOID_BCE ? 1 : 3;
    enum { N = 20, NIN = 4 };
    nt_counter c = nt_counter_make();
    const bp_allocator a = nt_allocator(&c);
    const bp_layer_spec layers[3] = {{10, BP_ACT_RELU, 0}, {6, BP_ACT_GELU, 0}, {nout, BP_ACT_IDENTITY, 0}};
    problem pb = make_problem(dt, loss, N, NIN, nout, NIN, nout, 90);
    bp_net *net = nt_net(dt, NIN, 3, layers, loss, &a);
    NT_OK(bp_net_init(net, BP_INIT_ORTHOGONAL, 14, 1.4));
    NT_OK(bp_net_plan(net, 8));
    bp_optim *opt = nt_optim(net, BP_OPT_ADAM, 1e-3);
    const long a0 = c.allocs, f0 = c.frees;

    static const int batches[] = {N, 8, 1, 1, 13, N};
    for (size_t b = 0; b < sizeof batches / sizeof *batches; b++) {
        double l;
        NT_OK(bp_net_loss_and_grad(net, batches[b], pb.X, NIN, targets_at(&pb, 0), nout, &l));
        NT_OK(bp_optim_step(opt, net));
    }
    void *Y = malloc((size_t)N * (size_t)nout * nt_esize(dt));
    ck_assert_ptr_nonnull(Y);
    NT_OK(bp_net_forward(net, N, pb.X, NIN, Y, nout));
    NT_OK(bp_net_forward(net, 1, pb.X, NIN, Y, nout));
    double m;
    int64_t conf[9];
    if (loss == BP_LOSS_MSE)
        NT_OK(bp_net_rmse(net, N, pb.X, NIN, pb.T, nout, &m));
    else
        NT_OK(bp_net_accuracy(net, N, pb.X, NIN, pb.labels, &m, nout > 1 ? conf : NULL));
    if (dt == BP_F64) {
        double rel;
        NT_OK(bp_net_gradcheck(net, 5, pb.X, NIN, targets_at(&pb, 0), nout, 0, &rel, NULL));
    }
    NT_OK(bp_net_set_backend(net, BP_BACKEND_NAIVE));
    NT_OK(bp_net_set_check_finite(net, 1));
    double l;
    NT_OK(bp_net_loss_and_grad(net, N, pb.X, NIN, targets_at(&pb, 0), nout, &l));
    NT_OK(bp_optim_step(opt, net));
    NT_OK(bp_net_forward(net, N, pb.X, NIN, Y, nout));
    NT_OK(bp_net_set_backend(net, BP_BACKEND_BLAS));
    char buf[64];
    size_t need;
    NT_OK(bp_net_describe_plan(net, buf, sizeof buf, &need));
    bp_layer_view v;
    NT_OK(bp_net_layer(net, 2, &v));
    ck_assert_msg(c.allocs == a0 && c.frees == f0, "%s %s: steps allocated %ld and freed %ld times",
                  nt_dtype_name(dt), nt_loss_name(loss), c.allocs - a0, c.frees - f0);

    bp_train_config tc = {.epochs = 2, .batch_size = 6, .seed = 3, .shuffle = 1};
    NT_OK(bp_train(net, opt, N, pb.X, NIN, targets_at(&pb, 0), nout, &tc));
    ck_assert_msg(c.allocs == a0 + 1 && c.frees == f0 + 1, "%s %s: bp_train allocated %ld and freed %ld times (expected 1, 1)",
                  nt_dtype_name(dt), nt_loss_name(loss), c.allocs - a0, c.frees - f0);
    tc.batch_size = 13;
    tc.epochs = 3;
    NT_OK(bp_train(net, opt, N, pb.X, NIN, targets_at(&pb, 0), nout, &tc));
    ck_assert_msg(c.allocs == a0 + 2 && c.frees == f0 + 2, "%s %s: a second bp_train: %ld allocations, %ld frees in all",
                  nt_dtype_name(dt), nt_loss_name(loss), c.allocs - a0, c.frees - f0);
    free(Y);
    bp_optim_destroy(opt);
    bp_net_destroy(net);
    ck_assert_msg(c.allocs == c.frees, "%ld allocations but %ld frees after destroy", c.allocs, c.frees);
    free_problem(&pb);
}
END_TEST

/* ---- initialisation ------------------------------------------------------------------------ */

typedef struct wstats {
    double mean, var, absmax, frac1; /* frac1: fraction with |w| < one standard deviation */
} wstats;

static wstats stats_of(bp_dtype dt, const void *W, size_t count)
{
    wstats s = {0, 0, 0, 0};
    for (size_t q = 0; q < count; q++)
        s.mean += nt_get(dt, W, q);
    s.mean /= (double)count;
    for (size_t q = 0; q < count; q++) {
        const double d = nt_get(dt, W, q) - s.mean;
        s.var += d * d;
        s.absmax = fmax(s.absmax, fabs(nt_get(dt, W, q)));
    }
    s.var /= (double)(count - 1);
    const double sd = sqrt(s.var);
    for (size_t q = 0; q < count; q++)
        s.frac1 += fabs(nt_get(dt, W, q)) < sd;
    s.frac1 /= (double)count;
    return s;
}

static const bp_layer_spec init_layers[2] = {{400, BP_ACT_IDENTITY, 0}, {250, BP_ACT_IDENTITY, 0}};
enum { INIT_NIN = 300 };

/* Glorot and He, uniform and normal, on layers of 300 -> 400 -> 250: the sample variance of
 * each W within 3% of the documented one, mean within 1% of a standard deviation; uniform:
 * max|w| <= a and within 1% of a, 57.7% within one deviation; normal: 68.3% within one
 * deviation (so a uniform cannot pass for a normal); biases exactly zero (they held 7 before);
 * the same seed gives bitwise the same parameters, another seed differs in almost every
 * weight. Loop: dtype x scheme. */
START_TEST(test_init_stats)
{
    const bp_dtype dt = DTYPES[_i / 4];
    const bp_init scheme = (bp_init)(BP_INIT_GLOROT_UNIFORM + _i % 4);
    const int uniform = scheme == BP_INIT_GLOROT_UNIFORM || scheme == BP_INIT_HE_UNIFORM;
    const int glorot = scheme == BP_INIT_GLOROT_UNIFORM || scheme == BP_INIT_GLOROT_NORMAL;
    bp_net *net[3];
    for (int k = 0; k < 3; k++) {
        net[k] = nt_net(dt, INIT_NIN, 2, init_layers, BP_LOSS_MSE, NULL);
        for (size_t q = 0; q < bp_net_n_params(net[k]); q++)
            nt_set(dt, bp_net_params(net[k]), q, 7.0);
        NT_OK(bp_net_init(net[k], scheme, k == 2 ? 1235 : 1234, 1));
    }
    for (bp_int i = 0; i < 2; i++) {
        bp_layer_view v;
        NT_OK(bp_net_layer(net[0], i, &v));
        const size_t count = (size_t)v.n_out * (size_t)v.n_in;
        const double var = glorot ? 2.0 / (v.n_in + v.n_out) : 2.0 / v.n_in, sd = sqrt(var);
        const wstats s = stats_of(dt, v.W, count);
        char ctx[64];
        snprintf(ctx, sizeof ctx, "%s scheme %d layer %d", nt_dtype_name(dt), (int)scheme, (int)i);
        ck_assert_msg(fabs(s.var / var - 1) < 0.03, "%s: variance %.5g, documented %.5g", ctx, s.var, var);
        ck_assert_msg(fabs(s.mean) < 0.01 * sd, "%s: mean %.3g", ctx, s.mean);
        if (uniform) {
            const double a = sqrt(3 * var);
            ck_assert_msg(s.absmax <= a && s.absmax > 0.99 * a, "%s: max|w| %.6g, bound a = %.6g", ctx, s.absmax, a);
            ck_assert_msg(fabs(s.frac1 - 0.57735) < 0.01, "%s: %.4f within one deviation, uniform has 0.577", ctx, s.frac1);
        } else {
            ck_assert_msg(fabs(s.frac1 - 0.68269) < 0.01, "%s: %.4f within one deviation, normal has 0.683", ctx, s.frac1);
            ck_assert_msg(s.absmax > 3.5 * sd, "%s: max|w| %.3g is not a normal's tail", ctx, s.absmax);
        }
        for (int o = 0; o < v.n_out; o++)
            ck_assert_msg(nt_get(dt, v.b, (size_t)o) == 0, "%s: bias %d = %g", ctx, o, nt_get(dt, v.b, (size_t)o));
    }
    const size_t P = bp_net_n_params(net[0]), bytes = P * nt_esize(dt);
    ck_assert_msg(memcmp(bp_net_params(net[0]), bp_net_params(net[1]), bytes) == 0,
                  "%s scheme %d: the same seed gave different parameters", nt_dtype_name(dt), (int)scheme);
    size_t same = 0, nw = 0;
    for (bp_int i = 0; i < 2; i++) {
        bp_layer_view v;
        NT_OK(bp_net_layer(net[0], i, &v));
        for (size_t q = v.offset; q < v.offset + (size_t)v.n_out * (size_t)v.n_in; q++, nw++)
            same += nt_get(dt, bp_net_params(net[0]), q) == nt_get(dt, bp_net_params(net[2]), q);
    }
    ck_assert_msg(same < nw / 100, "%s scheme %d: seeds 1234 and 1235 share %zu of %zu weights", nt_dtype_name(dt),
                  (int)scheme, same, nw);
    for (int k = 0; k < 3; k++)
        bp_net_destroy(net[k]);
}
END_TEST

/* Largest |(M M^T)_ij - g^2 delta_ij| / g^2 for M = W (rows x cols, row-major), or for W^T. */
static double orth_err(bp_dtype dt, const void *W, int rows, int cols, int transpose, double gain)
{
    const int k = transpose ? cols : rows, len = transpose ? rows : cols;
    double worst = 0;
    for (int a = 0; a < k; a++)
        for (int b = a; b < k; b++) {
            double s = 0;
            for (int t = 0; t < len; t++) {
                const size_t ia = transpose ? (size_t)t * cols + a : (size_t)a * cols + t;
                const size_t ib = transpose ? (size_t)t * cols + b : (size_t)b * cols + t;
                s += nt_get(dt, W, ia) * nt_get(dt, W, ib);
            }
            worst = fmax(worst, fabs(s - (a == b ? gain * gain : 0)) / (gain * gain));
        }
    return worst;
}

/* Orthogonal with gain 1.7 on 300 -> 400 (W^T W = g^2 I) and 400 -> 250 (W W^T = g^2 I),
 * to 1e-12 in double and 1e-5 in float; biases zero; same seed bitwise, other seed differs. */
START_TEST(test_init_orthogonal)
{
    const bp_dtype dt = DTYPES[_i];
    const double gain = 1.7, tol = dt == BP_F64 ? 1e-12 : 1e-5;
    bp_net *net[3];
    for (int k = 0; k < 3; k++) {
        net[k] = nt_net(dt, INIT_NIN, 2, init_layers, BP_LOSS_MSE, NULL);
        for (size_t q = 0; q < bp_net_n_params(net[k]); q++)
            nt_set(dt, bp_net_params(net[k]), q, 7.0);
        NT_OK(bp_net_init(net[k], BP_INIT_ORTHOGONAL, k == 2 ? 99 : 98, gain));
    }
    for (bp_int i = 0; i < 2; i++) {
        bp_layer_view v;
        NT_OK(bp_net_layer(net[0], i, &v));
        /* n_out >= n_in: the columns of W are orthonormal, W^T W; otherwise its rows, W W^T. */
        const int transpose = v.n_out >= v.n_in;
        const double e = orth_err(dt, v.W, v.n_out, v.n_in, transpose, gain);
        ck_assert_msg(e <= tol, "%s layer %d (%d x %d): |%s - g^2 I| / g^2 = %.3g > %.3g", nt_dtype_name(dt), (int)i,
                      v.n_out, v.n_in, transpose ? "W^T W" : "W W^T", e, tol);
        for (int o = 0; o < v.n_out; o++)
            ck_assert_msg(nt_get(dt, v.b, (size_t)o) == 0, "%s layer %d: bias %d not zero", nt_dtype_name(dt), (int)i, o);
    }
    const size_t bytes = bp_net_n_params(net[0]) * nt_esize(dt);
    ck_assert_msg(memcmp(bp_net_params(net[0]), bp_net_params(net[1]), bytes) == 0, "%s: same seed, different weights",
                  nt_dtype_name(dt));
    ck_assert_msg(memcmp(bp_net_params(net[0]), bp_net_params(net[2]), bytes) != 0, "%s: other seed, same weights",
                  nt_dtype_name(dt));
    for (int k = 0; k < 3; k++)
        bp_net_destroy(net[k]);
}
END_TEST

/* ---- determinism ----------------------------------------------------------------------------- */

/* The same seeds give bitwise the same weights after bp_train (3 epochs, shuffling, Adam,
 * batches of 7 over micro-batches of 5) with one BLAS thread; another shuffling seed differs. */
START_TEST(test_determinism)
{
    const bp_dtype dt = DTYPES[_i];
#ifdef OPENBLAS_VERSION
    const int threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
#endif
    enum { N = 60, NIN = 4 };
    problem pb = make_problem(dt, BP_LOSS_SOFTMAX_XENT, N, NIN, 3, NIN, 3, 95);
    const bp_layer_spec layers[2] = {{12, BP_ACT_TANH, 0}, {3, BP_ACT_IDENTITY, 0}};
    void *w[3];
    for (int k = 0; k < 3; k++) {
        bp_net *net = nt_net(dt, NIN, 2, layers, BP_LOSS_SOFTMAX_XENT, NULL);
        NT_OK(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 21, 1));
        NT_OK(bp_net_plan(net, 5));
        bp_optim *opt = nt_optim(net, BP_OPT_ADAM, 0.01);
        const bp_train_config tc = {.epochs = 3, .batch_size = 7, .seed = k == 2 ? 8 : 7, .shuffle = 1};
        NT_OK(bp_train(net, opt, N, pb.X, NIN, pb.labels, 0, &tc));
        w[k] = nt_memdup(bp_net_params(net), bp_net_n_params(net) * nt_esize(dt));
        if (k == 0)
            ck_assert_int_gt(bp_net_n_params(net), 0);
        bp_optim_destroy(opt);
        bp_net_destroy(net);
    }
#ifdef OPENBLAS_VERSION
    openblas_set_num_threads(threads);
#endif
    const size_t bytes = (size_t)(12 * (NIN + 1) + 3 * 13) * nt_esize(dt);
    ck_assert_msg(memcmp(w[0], w[1], bytes) == 0, "%s: two identical trainings gave different weights", nt_dtype_name(dt));
    ck_assert_msg(memcmp(w[0], w[2], bytes) != 0, "%s: another shuffling seed gave the same weights", nt_dtype_name(dt));
    for (int k = 0; k < 3; k++)
        free(w[k]);
    free_problem(&pb);
}
END_TEST

/* ---- finite checks ----------------------------------------------------------------------------- */

static const bp_layer_spec finite_layers[3] = {{4, BP_ACT_SIGMOID, 0}, {5, BP_ACT_RELU, 0}, {3, BP_ACT_IDENTITY, 0}};
/* Without relu, whose kernels map NaN to 0 (see test_nan_through_relu). */
static const bp_layer_spec smooth_layers[3] = {{4, BP_ACT_SIGMOID, 0}, {5, BP_ACT_TANH, 0}, {3, BP_ACT_IDENTITY, 0}};

/* With the check on, a NaN (row 3) or Inf (row 5) in X is refused by every pass with
 * BP_ERR_NONFINITE and a message naming the row; parameters, gradients and Y untouched.
 * A NaN target of an MSE net likewise. With the check off (the default), NaN in is NaN out. */
START_TEST(test_finite_input)
{
    const bp_dtype dt = DTYPES[_i];
    const size_t es = nt_esize(dt);
    enum { N = 6, NIN = 3 };
    for (int bad = 0; bad < 2; bad++) {
        const int row = bad == 0 ? 3 : 5;
        problem pb = make_problem(dt, BP_LOSS_SOFTMAX_XENT, N, NIN, 3, NIN, 3, 96);
        nt_set(dt, pb.X, (size_t)row * NIN + 1, bad == 0 ? NAN : INFINITY);
        bp_net *net = nt_net(dt, NIN, 3, smooth_layers, BP_LOSS_SOFTMAX_XENT, NULL);
        NT_OK(bp_net_init(net, BP_INIT_HE_UNIFORM, 3, 1));
        NT_OK(bp_net_plan(net, 4));
        const size_t bytes = bp_net_n_params(net) * es;
        void *p0 = nt_memdup(bp_net_params(net), bytes), *g0 = nt_memdup(bp_net_grads(net), bytes);
        char want[32];
        snprintf(want, sizeof want, "row %d", row);

        /* Off by default: no refusal; NaN in, NaN out (an Inf may saturate the sigmoid). */
        double l = 0;
        NT_OK(bp_net_loss_and_grad(net, N, pb.X, NIN, pb.labels, 0, &l));
        ck_assert_msg(bad == 1 || isnan(l), "%s: with the check off the loss is %g", nt_dtype_name(dt), l);
        memcpy(bp_net_grads(net), g0, bytes);

        NT_OK(bp_net_set_check_finite(net, 1));
        l = 12345;
        NT_EXPECT(bp_net_loss_and_grad(net, N, pb.X, NIN, pb.labels, 0, &l), BP_ERR_NONFINITE, "bp_net_loss_and_grad", want);
        ck_assert(l == 12345);
        ck_assert_msg(memcmp(bp_net_grads(net), g0, bytes) == 0, "%s: the refused pass changed the gradient", nt_dtype_name(dt));
        void *Y = malloc((size_t)N * 3 * es);
        ck_assert_ptr_nonnull(Y);
        tu_sentinel(Y, (size_t)N * 3 * es);
        NT_EXPECT(bp_net_forward(net, N, pb.X, NIN, Y, 3), BP_ERR_NONFINITE, "bp_net_forward", want);
        ck_assert_msg(tu_is_sentinel(Y, (size_t)N * 3 * es), "%s: refused forward wrote Y", nt_dtype_name(dt));
        double acc = 12345;
        NT_EXPECT(bp_net_accuracy(net, N, pb.X, NIN, pb.labels, &acc, NULL), BP_ERR_NONFINITE, "bp_net_accuracy", want);
        ck_assert(acc == 12345);
        ck_assert_msg(memcmp(bp_net_params(net), p0, bytes) == 0, "%s: parameters changed", nt_dtype_name(dt));
        free(Y);
        free(p0);
        free(g0);
        bp_net_destroy(net);
        free_problem(&pb);
    }
    /* A NaN target (row 2) of an MSE network. */
    problem pm = make_problem(dt, BP_LOSS_MSE, N, NIN, 3, NIN, 4, 97);
    nt_set(dt, pm.T, 2 * 4 + 2, NAN);
    bp_net *net = nt_net(dt, NIN, 3, finite_layers, BP_LOSS_MSE, NULL);
    NT_OK(bp_net_init(net, BP_INIT_HE_UNIFORM, 3, 1));
    NT_OK(bp_net_plan(net, 4));
    NT_OK(bp_net_set_check_finite(net, 1));
    double l = 0, r = 0;
    NT_EXPECT(bp_net_loss_and_grad(net, N, pm.X, NIN, pm.T, 4, &l), BP_ERR_NONFINITE, "bp_net_loss_and_grad", "row 2");
    NT_EXPECT(bp_net_rmse(net, N, pm.X, NIN, pm.T, 4, &r), BP_ERR_NONFINITE, "bp_net_rmse", "row 2");
    bp_net_destroy(net);
    free_problem(&pm);
}
END_TEST

/* Makes layer 1 produce a non-finite output from finite inputs: row 0 of its W is the largest
 * finite value, so the sum of four positive sigmoid outputs times it overflows to +Inf (relu
 * keeps it). */
static bp_net *poisoned_net(bp_dtype dt, bp_loss loss)
{
    bp_net *net = nt_net(dt, 3, 3, finite_layers, loss, NULL);
    NT_OK(bp_net_init(net, BP_INIT_HE_UNIFORM, 4, 1));
    NT_OK(bp_net_plan(net, 4));
    bp_layer_view v;
    NT_OK(bp_net_layer(net, 1, &v));
    for (int i = 0; i < v.n_in; i++)
        nt_set(dt, v.W, (size_t)i, dt == BP_F32 ? FLT_MAX : DBL_MAX);
    NT_OK(bp_net_set_check_finite(net, 1));
    return net;
}

/* A non-finite value produced inside layer 1 during bp_net_loss_and_grad and bp_train: refused
 * with BP_ERR_NONFINITE naming "layer 1"; bp_train leaves the parameters unchanged. */
START_TEST(test_finite_inside_train)
{
    const bp_dtype dt = DTYPES[_i];
    problem pb = make_problem(dt, BP_LOSS_SOFTMAX_XENT, 6, 3, 3, 3, 3, 98);
    bp_net *net = poisoned_net(dt, BP_LOSS_SOFTMAX_XENT);
    double l = 0;
    NT_EXPECT(bp_net_loss_and_grad(net, 6, pb.X, 3, pb.labels, 0, &l), BP_ERR_NONFINITE, "bp_net_loss_and_grad", "layer 1");
    NT_EXPECT(bp_net_loss_and_grad(net, 1, pb.X, 3, pb.labels, 0, &l), BP_ERR_NONFINITE, "bp_net_loss_and_grad", "layer 1");
    const size_t bytes = bp_net_n_params(net) * nt_esize(dt);
    void *p0 = nt_memdup(bp_net_params(net), bytes);
    bp_optim *opt = nt_optim(net, BP_OPT_SGD, 0.1);
    const bp_train_config tc = {.epochs = 2, .batch_size = 4, .seed = 1, .shuffle = 1};
    NT_EXPECT(bp_train(net, opt, 6, pb.X, 3, pb.labels, 0, &tc), BP_ERR_NONFINITE, "bp_train", "layer 1");
    ck_assert_msg(memcmp(bp_net_params(net), p0, bytes) == 0, "%s: bp_train changed the parameters after a refused pass",
                  nt_dtype_name(dt));
    ck_assert_int_eq(bp_optim_steps(opt), 0);
    free(p0);
    bp_optim_destroy(opt);
    bp_net_destroy(net);
    free_problem(&pb);
}
END_TEST

/* The same poisoned layer 1 under bp_net_forward: the header promises every layer's output is
 * checked, so the message must name layer 1 (not just the last layer's output). */
START_TEST(test_finite_inside_forward)
{
    const bp_dtype dt = DTYPES[_i];
    problem pb = make_problem(dt, BP_LOSS_SOFTMAX_XENT, 6, 3, 3, 3, 3, 98);
    bp_net *net = poisoned_net(dt, BP_LOSS_SOFTMAX_XENT);
    void *Y = malloc(6 * 3 * nt_esize(dt));
    ck_assert_ptr_nonnull(Y);
    NT_EXPECT(bp_net_forward(net, 6, pb.X, 3, Y, 3), BP_ERR_NONFINITE, "bp_net_forward", "layer 1");
    free(Y);
    bp_net_destroy(net);
    free_problem(&pb);
}
END_TEST

/* And under the evaluation passes, bp_net_accuracy (loop 0, 1: dtype) and bp_net_rmse (loop
 * 2, 3): with the check on, a non-finite layer output must be refused too. */
START_TEST(test_finite_inside_eval)
{
    const bp_dtype dt = DTYPES[_i % 2];
    problem pb = make_problem(dt, BP_LOSS_MSE, 6, 3, 3, 3, 3, 98);
    double m = 12345;
    if (_i < 2) {
        bp_net *net = poisoned_net(dt, BP_LOSS_SOFTMAX_XENT);
        NT_EXPECT(bp_net_accuracy(net, 6, pb.X, 3, pb.labels, &m, NULL), BP_ERR_NONFINITE, "bp_net_accuracy", "layer 1");
        bp_net_destroy(net);
    } else {
        bp_net *net = poisoned_net(dt, BP_LOSS_MSE);
        NT_EXPECT(bp_net_rmse(net, 6, pb.X, 3, pb.T, 3, &m), BP_ERR_NONFINITE, "bp_net_rmse", "layer 1");
        bp_net_destroy(net);
    }
    free_problem(&pb);
}
END_TEST

/* bp_optim_step with a NaN (then an Inf) in the gradient and the check on: refused before any
 * change: parameters bitwise the same, no step counted, and the optimizer state untouched (the
 * next step with a finite gradient equals a fresh optimizer's first step, bitwise). With the
 * check off the step goes through. */
START_TEST(test_finite_optim)
{
    const bp_dtype dt = DTYPES[_i];
    problem pb = make_problem(dt, BP_LOSS_SOFTMAX_XENT, 6, 3, 3, 3, 3, 99);
    bp_net *net[2];
    bp_optim *opt[2];
    for (int k = 0; k < 2; k++) {
        net[k] = nt_net(dt, 3, 3, finite_layers, BP_LOSS_SOFTMAX_XENT, NULL);
        NT_OK(bp_net_init(net[k], BP_INIT_GLOROT_NORMAL, 6, 1));
        NT_OK(bp_net_plan(net[k], 6));
        opt[k] = nt_optim(net[k], BP_OPT_ADAM, 0.01);
        NT_OK(bp_net_loss_and_grad(net[k], 6, pb.X, 3, pb.labels, 0, NULL));
    }
    const size_t P = bp_net_n_params(net[0]), bytes = P * nt_esize(dt);
    void *p0 = nt_memdup(bp_net_params(net[0]), bytes), *g0 = nt_memdup(bp_net_grads(net[0]), bytes);
    NT_OK(bp_net_set_check_finite(net[0], 1));
    for (int bad = 0; bad < 2; bad++) {
        nt_set(dt, bp_net_grads(net[0]), bad == 0 ? P / 2 : P - 1, bad == 0 ? NAN : -INFINITY);
        NT_EXPECT(bp_optim_step(opt[0], net[0]), BP_ERR_NONFINITE, "bp_optim_step", "NaN");
        ck_assert_msg(memcmp(bp_net_params(net[0]), p0, bytes) == 0, "%s: a refused step changed the parameters",
                      nt_dtype_name(dt));
        ck_assert_int_eq(bp_optim_steps(opt[0]), 0);
        memcpy(bp_net_grads(net[0]), g0, bytes);
    }
    NT_OK(bp_optim_step(opt[0], net[0]));
    NT_OK(bp_optim_step(opt[1], net[1]));
    ck_assert_msg(memcmp(bp_net_params(net[0]), bp_net_params(net[1]), bytes) == 0,
                  "%s: the step after the refused ones differs from a fresh optimizer's first step", nt_dtype_name(dt));
    /* Check off: a NaN gradient is applied (NaN in, NaN out). */
    nt_set(dt, bp_net_grads(net[1]), 0, NAN);
    NT_OK(bp_optim_step(opt[1], net[1]));
    ck_assert(isnan(nt_get(dt, bp_net_params(net[1]), 0)));
    for (int k = 0; k < 2; k++) {
        bp_optim_destroy(opt[k]);
        bp_net_destroy(net[k]);
    }
    free(p0);
    free(g0);
    free_problem(&pb);
}
END_TEST

/* With the check off, NaN in is NaN out (backprop/kernels.h: "Data are not scanned for NaN or
 * Inf; NaN in, NaN out"): a NaN in X must reach the loss through a relu layer too, not be
 * silently replaced by 0 (training would go on on poisoned data). Loop: dtype. */
START_TEST(test_nan_through_relu)
{
    const bp_dtype dt = DTYPES[_i];
    problem pb = make_problem(dt, BP_LOSS_SOFTMAX_XENT, 4, 3, 3, 3, 3, 114);
    nt_set(dt, pb.X, 1 * 3 + 0, NAN);
    const bp_layer_spec layers[2] = {{4, BP_ACT_RELU, 0}, {3, BP_ACT_IDENTITY, 0}};
    bp_net *net = nt_net(dt, 3, 2, layers, BP_LOSS_SOFTMAX_XENT, NULL);
    NT_OK(bp_net_init(net, BP_INIT_HE_UNIFORM, 8, 1));
    NT_OK(bp_net_plan(net, 4));
    double l = 0;
    NT_OK(bp_net_loss_and_grad(net, 4, pb.X, 3, pb.labels, 0, &l));
    ck_assert_msg(isnan(l), "%s: NaN in X, relu layer, check off: the loss is %g, not NaN", nt_dtype_name(dt), l);
    bp_net_destroy(net);
    free_problem(&pb);
}
END_TEST

/* ---- the plan's description and layer views ---------------------------------------------------- */

/* Before a plan: "not planned". After plan(6) of 3 -> tanh 4 -> gelu 5 -> 2: every buffer (Y0,
 * Y1, Y2, Z1 for the GELU layer only, G0, G1, Xg, Tg), the micro-batch, the backend, and the
 * steps "forward(0) forward(1) forward(2) loss backward(2) grads_ready(2) backward(1)
 * grads_ready(1) backward(0) grads_ready(0)" in that order, each once; the needed length
 * equals the full text's; truncation keeps a terminated prefix and writes nothing past len. */
START_TEST(test_describe_plan)
{
    const bp_layer_spec layers[3] = {{4, BP_ACT_TANH, 0}, {5, BP_ACT_GELU, 0}, {2, BP_ACT_IDENTITY, 0}};
    bp_net *net = nt_net(BP_F64, 3, 3, layers, BP_LOSS_SOFTMAX_XENT, NULL);
    char full[4096], small[64];
    size_t need = 0;
    NT_OK(bp_net_describe_plan(net, full, sizeof full, &need));
    ck_assert_msg(strstr(full, "not planned") != NULL, "unplanned description: %s", full);
    ck_assert_uint_eq(need, strlen(full));

    NT_OK(bp_net_plan(net, 6));
    NT_OK(bp_net_describe_plan(net, NULL, 0, &need));
    ck_assert_uint_gt(need, 0);
    ck_assert_uint_lt(need, sizeof full);
    NT_OK(bp_net_describe_plan(net, full, sizeof full, NULL));
    ck_assert_msg(strlen(full) == need, "needed %zu but the text has %zu characters", need, strlen(full));
    ck_assert_msg(strstr(full, "not planned") == NULL, "%s", full);
    static const char *const bufs[] = {"Y0", "Y1", "Y2", "Z1", "G0", "G1", "Xg", "Tg", "micro-batch 6", "blas"};
    for (size_t k = 0; k < sizeof bufs / sizeof *bufs; k++)
        ck_assert_msg(strstr(full, bufs[k]) != NULL, "the description lacks \"%s\":\n%s", bufs[k], full);
    ck_assert_msg(strstr(full, "Z0") == NULL && strstr(full, "Z2") == NULL,
                  "pre-activations kept for non-GELU layers:\n%s", full);
    const char *steps = strstr(full, "steps:");
    ck_assert_msg(steps != NULL, "no step list:\n%s", full);
    static const char *const order[] = {"forward(0)", "forward(1)", "forward(2)", "loss", "backward(2)", "grads_ready(2)",
                                        "backward(1)", "grads_ready(1)", "backward(0)", "grads_ready(0)"};
    const char *at = steps;
    for (size_t k = 0; k < sizeof order / sizeof *order; k++) {
        const char *next = strstr(at, order[k]);
        ck_assert_msg(next != NULL, "step \"%s\" missing or out of order in: %s", order[k], steps);
        at = next + strlen(order[k]);
    }
    static const char *const kinds[] = {"forward(", "backward(", "grads_ready(", "loss"};
    static const int counts[] = {3, 3, 3, 1};
    for (int k = 0; k < 4; k++) {
        int cnt = 0;
        for (const char *s = strstr(steps, kinds[k]); s; s = strstr(s + 1, kinds[k]))
            cnt++;
        ck_assert_msg(cnt == counts[k], "\"%s\" appears %d times in the steps (expected %d): %s", kinds[k], cnt,
                      counts[k], steps);
    }

    /* Truncation: terminated, a prefix of the full text, nothing written past len. */
    static const size_t lens[] = {1, 17, 40};
    for (size_t k = 0; k < 3; k++) {
        memset(small, 'x', sizeof small);
        size_t need2 = 0;
        NT_OK(bp_net_describe_plan(net, small, lens[k], &need2));
        ck_assert_uint_eq(need2, need);
        ck_assert_msg(small[lens[k] - 1] == '\0', "len %zu: not terminated", lens[k]);
        ck_assert_msg(strncmp(small, full, lens[k] - 1) == 0, "len %zu: not a prefix", lens[k]);
        for (size_t j = lens[k]; j < sizeof small; j++)
            ck_assert_msg(small[j] == 'x', "len %zu: byte %zu written", lens[k], j);
    }
    memset(small, 'x', sizeof small);
    NT_OK(bp_net_describe_plan(net, small, 0, NULL));
    ck_assert_msg(small[0] == 'x', "len 0: a byte was written");
    char *exact = malloc(need);
    ck_assert_ptr_nonnull(exact);
    NT_OK(bp_net_describe_plan(net, exact, need, NULL)); /* one short: loses the last character */
    ck_assert(exact[need - 1] == '\0' && strncmp(exact, full, need - 1) == 0);
    free(exact);

    NT_OK(bp_net_set_backend(net, BP_BACKEND_NAIVE));
    NT_OK(bp_net_describe_plan(net, full, sizeof full, NULL));
    ck_assert_msg(strstr(full, "naive") != NULL, "the naive backend is not described:\n%s", full);
    NT_EXPECT(bp_net_describe_plan(net, NULL, 5, NULL), BP_ERR_ARG, "bp_net_describe_plan", "buf");
    bp_net_destroy(net);
}
END_TEST

/* Views: W at the documented offset (layer by layer, W then b, no padding), b right after W,
 * dW and db at the same offsets in the gradient buffer, and the layer's description.
 * Loop: dtype. */
START_TEST(test_layer_views)
{
    const bp_dtype dt = DTYPES[_i];
    const size_t es = nt_esize(dt);
    const bp_layer_spec layers[3] = {{4, BP_ACT_LEAKY_RELU, 0.25}, {5, BP_ACT_ELU, 1.5}, {2, BP_ACT_IDENTITY, 0}};
    bp_net *net = nt_net(dt, 3, 3, layers, BP_LOSS_MSE, NULL);
    ck_assert_int_eq(bp_net_dtype(net), dt);
    ck_assert_int_eq(bp_net_n_layers(net), 3);
    ck_assert_int_eq(bp_net_n_in(net), 3);
    ck_assert_int_eq(bp_net_n_out(net), 2);
    ck_assert_int_eq(bp_net_loss(net), BP_LOSS_MSE);
    ck_assert_uint_eq(bp_net_n_params(net), 4 * 3 + 4 + 5 * 4 + 5 + 2 * 5 + 2);
    for (size_t q = 0; q < bp_net_n_params(net); q++)
        ck_assert_msg(nt_get(dt, bp_net_params(net), q) == 0, "parameter %zu not zero before init", q);
    static const size_t offsets[3] = {0, 16, 41};
    static const int n_in[3] = {3, 4, 5};
    char *p = bp_net_params(net), *g = bp_net_grads(net);
    for (bp_int i = 0; i < 3; i++) {
        bp_layer_view v;
        NT_OK(bp_net_layer(net, i, &v));
        ck_assert_int_eq(v.n_in, n_in[i]);
        ck_assert_int_eq(v.n_out, layers[i].n_out);
        ck_assert_int_eq(v.act, layers[i].act);
        ck_assert(v.alpha == layers[i].alpha);
        ck_assert_uint_eq(v.offset, offsets[i]);
        ck_assert_ptr_eq(v.W, p + offsets[i] * es);
        ck_assert_ptr_eq(v.b, p + (offsets[i] + (size_t)v.n_out * (size_t)v.n_in) * es);
        ck_assert_ptr_eq(v.dW, g + offsets[i] * es);
        ck_assert_ptr_eq(v.db, g + (offsets[i] + (size_t)v.n_out * (size_t)v.n_in) * es);
    }
    bp_net_destroy(net);
}
END_TEST

/* A network of BP_NET_MAX_LAYERS one-unit layers is accepted, planned and runs. */
START_TEST(test_max_layers)
{
    bp_layer_spec *layers = malloc(BP_NET_MAX_LAYERS * sizeof *layers);
    ck_assert_ptr_nonnull(layers);
    for (int i = 0; i < BP_NET_MAX_LAYERS; i++)
        layers[i] = (bp_layer_spec){1, BP_ACT_IDENTITY, 0};
    bp_net *net = nt_net(BP_F64, 1, BP_NET_MAX_LAYERS, layers, BP_LOSS_MSE, NULL);
    NT_OK(bp_net_plan(net, 2));
    const double x[2] = {1, 2}, t[2] = {0.5, -0.5};
    double l = NAN;
    NT_OK(bp_net_loss_and_grad(net, 2, x, 1, t, 1, &l));
    ck_assert_msg(fabs(l - 0.25) < 1e-15, "zero network: loss %g, expected 0.25", l);
    bp_net_destroy(net);
    free(layers);
}
END_TEST

/* ---- bad arguments ------------------------------------------------------------------------------ */

/* Each bad argument of bp_net_create: BP_ERR_ARG (or OVERFLOW) naming it, *out untouched, and
 * nothing allocated through the given allocator. */
START_TEST(test_bad_create)
{
    nt_counter c = nt_counter_make();
    const bp_allocator a = nt_allocator(&c);
    const bp_layer_spec ok[2] = {{4, BP_ACT_TANH, 0}, {3, BP_ACT_IDENTITY, 0}};
    bp_layer_spec l[2];
    int marker;
    bp_net *const untouched = (bp_net *)(void *)&marker;
    bp_net *out = untouched;
#define CREATE_BAD(dt, nin, nl, ls, loss, al, st, sub)                                 \
    do {                                                                               \
        out = untouched;                                                               \
        NT_EXPECT(bp_net_create(&out, dt, nin, nl, ls, loss, al), st, "bp_net_create", sub); \
        ck_assert_ptr_eq(out, untouched);                                              \
    } while (0)
#define WITH(field_stmt, sub)                                                          \
    do {                                                                               \
        memcpy(l, ok, sizeof l);                                                       \
        field_stmt;                                                                    \
        CREATE_BAD(BP_F64, 5, 2, l, BP_LOSS_SOFTMAX_XENT, &a, BP_ERR_ARG, sub);        \
    } while (0)

    NT_EXPECT(bp_net_create(NULL, BP_F64, 5, 2, ok, BP_LOSS_SOFTMAX_XENT, &a), BP_ERR_ARG, "bp_net_create", "out");
    CREATE_BAD((bp_dtype)0, 5, 2, ok, BP_LOSS_SOFTMAX_XENT, &a, BP_ERR_ARG, "dtype");
    CREATE_BAD((bp_dtype)3, 5, 2, ok, BP_LOSS_SOFTMAX_XENT, &a, BP_ERR_ARG, "dtype");
    CREATE_BAD(BP_F64, 0, 2, ok, BP_LOSS_SOFTMAX_XENT, &a, BP_ERR_ARG, "n_in");
    CREATE_BAD(BP_F64, -2, 2, ok, BP_LOSS_SOFTMAX_XENT, &a, BP_ERR_ARG, "n_in");
    CREATE_BAD(BP_F64, 5, 0, ok, BP_LOSS_SOFTMAX_XENT, &a, BP_ERR_ARG, "n_layers");
    bp_layer_spec *many = malloc((BP_NET_MAX_LAYERS + 1) * sizeof *many);
    ck_assert_ptr_nonnull(many);
    for (int i = 0; i <= BP_NET_MAX_LAYERS; i++)
        many[i] = (bp_layer_spec){1, BP_ACT_IDENTITY, 0};
    CREATE_BAD(BP_F64, 5, BP_NET_MAX_LAYERS + 1, many, BP_LOSS_MSE, &a, BP_ERR_ARG, "n_layers");
    free(many);
    CREATE_BAD(BP_F64, 5, 2, NULL, BP_LOSS_SOFTMAX_XENT, &a, BP_ERR_ARG, "layers");
    WITH(l[1].n_out = 0, "layers[1].n_out");
    WITH(l[0].n_out = -1, "layers[0].n_out");
    WITH(l[0].act = (bp_act)10, "layers[0].act");
    WITH(l[0].act = (bp_act)-1, "layers[0].act");
    WITH((l[0].act = BP_ACT_LEAKY_RELU, l[0].alpha = -0.1), "layers[0].alpha");
    WITH((l[0].act = BP_ACT_ELU, l[0].alpha = 0), "layers[0].alpha");
    WITH((l[0].act = BP_ACT_ELU, l[0].alpha = -1), "layers[0].alpha");
    WITH((l[0].act = BP_ACT_TANH, l[0].alpha = NAN), "layers[0].alpha");
    WITH((l[0].act = BP_ACT_ELU, l[0].alpha = INFINITY), "layers[0].alpha");
    CREATE_BAD(BP_F64, 5, 2, ok, (bp_loss)0, &a, BP_ERR_ARG, "loss");
    CREATE_BAD(BP_F64, 5, 2, ok, (bp_loss)5, &a, BP_ERR_ARG, "loss");
    WITH(l[1].act = BP_ACT_SOFTMAX, "last layer");
    WITH(l[1].n_out = 1, "softmax cross-entropy needs at least 2 outputs");  /* its loss would always be 0 */
    memcpy(l, ok, sizeof l);
    l[1].act = BP_ACT_SIGMOID;
    CREATE_BAD(BP_F64, 5, 2, l, BP_LOSS_SIGMOID_BCE, &a, BP_ERR_ARG, "last layer");
    const bp_allocator no_alloc = {NULL, nt_free, &c}, no_free = {nt_alloc, NULL, &c};
    CREATE_BAD(BP_F64, 5, 2, ok, BP_LOSS_SOFTMAX_XENT, &no_alloc, BP_ERR_ARG, "alloc");
    CREATE_BAD(BP_F64, 5, 2, ok, BP_LOSS_SOFTMAX_XENT, &no_free, BP_ERR_ARG, "alloc");
    /* 2^13 (2^20 + 1) parameters > BP_NET_MAX_PARAMS = 2^33: refused before allocating. */
    const bp_layer_spec huge[1] = {{1 << 13, BP_ACT_IDENTITY, 0}};
    CREATE_BAD(BP_F32, 1 << 20, 1, huge, BP_LOSS_MSE, &a, BP_ERR_OVERFLOW, "BP_NET_MAX_PARAMS");
    ck_assert_msg(c.allocs == 0 && c.refused == 0, "rejected creates allocated %ld times", c.allocs + c.refused);
    /* And the valid call works (MSE takes any last activation). */
    memcpy(l, ok, sizeof l);
    l[1].act = BP_ACT_SOFTMAX;
    bp_net *net = nt_net(BP_F64, 5, 2, l, BP_LOSS_MSE, &a);
    bp_net_destroy(net);
    ck_assert_int_eq(c.allocs, c.frees);
#undef WITH
#undef CREATE_BAD
}
END_TEST

/* bp_net_init, bp_net_plan, bp_net_layer, bp_net_set_backend, bp_net_set_check_finite: each bad
 * argument, with the parameters, the plan and the view untouched. */
START_TEST(test_bad_setup)
{
    const bp_layer_spec layers[2] = {{4, BP_ACT_TANH, 0}, {3, BP_ACT_IDENTITY, 0}};
    bp_net *net = nt_net(BP_F64, 5, 2, layers, BP_LOSS_SOFTMAX_XENT, NULL);
    NT_OK(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 1, 1));
    NT_OK(bp_net_plan(net, 5));
    const size_t bytes = bp_net_n_params(net) * sizeof(double);
    void *p0 = nt_memdup(bp_net_params(net), bytes);

    NT_EXPECT(bp_net_init(NULL, BP_INIT_GLOROT_UNIFORM, 1, 1), BP_ERR_ARG, "bp_net_init", "net");
    NT_EXPECT(bp_net_init(net, (bp_init)0, 2, 1), BP_ERR_ARG, "bp_net_init", "scheme");
    NT_EXPECT(bp_net_init(net, (bp_init)6, 2, 1), BP_ERR_ARG, "bp_net_init", "scheme");
    NT_EXPECT(bp_net_init(net, BP_INIT_ORTHOGONAL, 2, 0), BP_ERR_ARG, "bp_net_init", "gain");
    NT_EXPECT(bp_net_init(net, BP_INIT_ORTHOGONAL, 2, -1), BP_ERR_ARG, "bp_net_init", "gain");
    NT_EXPECT(bp_net_init(net, BP_INIT_ORTHOGONAL, 2, NAN), BP_ERR_ARG, "bp_net_init", "gain");
    NT_EXPECT(bp_net_init(net, BP_INIT_ORTHOGONAL, 2, INFINITY), BP_ERR_ARG, "bp_net_init", "gain");
    ck_assert_msg(memcmp(bp_net_params(net), p0, bytes) == 0, "a rejected init changed the parameters");

    NT_EXPECT(bp_net_plan(NULL, 5), BP_ERR_ARG, "bp_net_plan", "net");
    NT_EXPECT(bp_net_plan(net, 0), BP_ERR_ARG, "bp_net_plan", "max_micro_batch");
    NT_EXPECT(bp_net_plan(net, -3), BP_ERR_ARG, "bp_net_plan", "max_micro_batch");
    char desc[4096];
    NT_OK(bp_net_describe_plan(net, desc, sizeof desc, NULL));
    ck_assert_msg(strstr(desc, "micro-batch 5") != NULL, "a rejected plan replaced the old one:\n%s", desc);

    bp_layer_view v, v0;
    memset(&v, 0xAB, sizeof v);
    memcpy(&v0, &v, sizeof v);
    NT_EXPECT(bp_net_layer(net, -1, &v), BP_ERR_ARG, "bp_net_layer", "i");
    NT_EXPECT(bp_net_layer(net, 2, &v), BP_ERR_ARG, "bp_net_layer", "i (2)");
    NT_EXPECT(bp_net_layer(net, 0, NULL), BP_ERR_ARG, "bp_net_layer", "view");
    NT_EXPECT(bp_net_layer(NULL, 0, &v), BP_ERR_ARG, "bp_net_layer", "net");
    ck_assert_msg(memcmp(&v, &v0, sizeof v) == 0, "a rejected bp_net_layer wrote the view");

    NT_EXPECT(bp_net_set_backend(net, (bp_backend)2), BP_ERR_ARG, "bp_net_set_backend", "backend");
    NT_EXPECT(bp_net_set_backend(net, (bp_backend)-1), BP_ERR_ARG, "bp_net_set_backend", "backend");
    NT_EXPECT(bp_net_set_backend(NULL, BP_BACKEND_NAIVE), BP_ERR_ARG, "bp_net_set_backend", "net");
    NT_OK(bp_net_describe_plan(net, desc, sizeof desc, NULL));
    ck_assert_msg(strstr(desc, "backend blas") != NULL, "a rejected set_backend changed it:\n%s", desc);
    NT_EXPECT(bp_net_set_check_finite(NULL, 1), BP_ERR_ARG, "bp_net_set_check_finite", "net");
    NT_EXPECT(bp_net_describe_plan(NULL, desc, sizeof desc, NULL), BP_ERR_ARG, "bp_net_describe_plan", "net");
    free(p0);
    bp_net_destroy(net);
}
END_TEST

/* The passes: no plan, n < 0, NULL X, ldx < n_in, NULL Y, ldy < n_out; labels -1 and n_out,
 * NULL targets, ldt < n_out; nothing written (Y, *loss, gradients, parameters).
 * Loop: dtype. */
START_TEST(test_bad_passes)
{
    const bp_dtype dt = DTYPES[_i];
    const size_t es = nt_esize(dt);
    enum { N = 6, NIN = 4, NOUT = 3 };
    const bp_layer_spec layers[2] = {{5, BP_ACT_TANH, 0}, {NOUT, BP_ACT_IDENTITY, 0}};
    problem pb = make_problem(dt, BP_LOSS_MSE, N, NIN, NOUT, NIN, NOUT, 110);
    bp_net *net = nt_net(dt, NIN, 2, layers, BP_LOSS_SOFTMAX_XENT, NULL);
    bp_net *mse = nt_net(dt, NIN, 2, layers, BP_LOSS_MSE, NULL);
    NT_OK(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 1, 1));
    NT_OK(bp_net_init(mse, BP_INIT_GLOROT_UNIFORM, 1, 1));
    void *Y = malloc((size_t)N * NOUT * es);
    ck_assert_ptr_nonnull(Y);
    tu_sentinel(Y, (size_t)N * NOUT * es);
    double l = 12345;

    /* No plan yet. */
    NT_EXPECT(bp_net_forward(net, N, pb.X, NIN, Y, NOUT), BP_ERR_ARG, "bp_net_forward", "plan");
    NT_EXPECT(bp_net_loss_and_grad(net, N, pb.X, NIN, pb.labels, 0, &l), BP_ERR_ARG, "bp_net_loss_and_grad", "plan");
    NT_EXPECT(bp_net_rmse(mse, N, pb.X, NIN, pb.T, NOUT, &l), BP_ERR_ARG, "bp_net_rmse", "plan");
    NT_EXPECT(bp_net_accuracy(net, N, pb.X, NIN, pb.labels, &l, NULL), BP_ERR_ARG, "bp_net_accuracy", "plan");
    size_t worst = 777;
    if (dt == BP_F64) /* (a float network would be refused for its dtype as well) */
        NT_EXPECT(bp_net_gradcheck(mse, N, pb.X, NIN, pb.T, NOUT, 0, &l, &worst), BP_ERR_ARG, "bp_net_gradcheck", "plan");
    ck_assert(l == 12345 && worst == 777);
    NT_OK(bp_net_plan(net, 4));
    NT_OK(bp_net_plan(mse, 4));
    NT_OK(bp_net_loss_and_grad(net, N, pb.X, NIN, pb.labels, 0, NULL));
    NT_OK(bp_net_loss_and_grad(mse, N, pb.X, NIN, pb.T, NOUT, NULL));
    const size_t bytes = bp_net_n_params(net) * es;
    void *p0 = nt_memdup(bp_net_params(net), bytes), *g0 = nt_memdup(bp_net_grads(net), bytes);
    void *mg0 = nt_memdup(bp_net_grads(mse), bytes);

    NT_EXPECT(bp_net_forward(NULL, N, pb.X, NIN, Y, NOUT), BP_ERR_ARG, "bp_net_forward", "net");
    NT_EXPECT(bp_net_forward(net, -1, pb.X, NIN, Y, NOUT), BP_ERR_ARG, "bp_net_forward", "n");
    NT_EXPECT(bp_net_forward(net, N, NULL, NIN, Y, NOUT), BP_ERR_ARG, "bp_net_forward", "X");
    NT_EXPECT(bp_net_forward(net, N, pb.X, NIN - 1, Y, NOUT), BP_ERR_ARG, "bp_net_forward", "ldx");
    NT_EXPECT(bp_net_forward(net, N, pb.X, NIN, NULL, NOUT), BP_ERR_ARG, "bp_net_forward", "Y");
    NT_EXPECT(bp_net_forward(net, N, pb.X, NIN, Y, NOUT - 1), BP_ERR_ARG, "bp_net_forward", "ldy");
    ck_assert_msg(tu_is_sentinel(Y, (size_t)N * NOUT * es), "a rejected forward wrote Y");

    int32_t bad_labels[N];
    memcpy(bad_labels, pb.labels, sizeof bad_labels);
    NT_EXPECT(bp_net_loss_and_grad(net, -1, pb.X, NIN, pb.labels, 0, &l), BP_ERR_ARG, "bp_net_loss_and_grad", "n");
    NT_EXPECT(bp_net_loss_and_grad(net, N, NULL, NIN, pb.labels, 0, &l), BP_ERR_ARG, "bp_net_loss_and_grad", "X");
    NT_EXPECT(bp_net_loss_and_grad(net, N, pb.X, NIN - 1, pb.labels, 0, &l), BP_ERR_ARG, "bp_net_loss_and_grad", "ldx");
    NT_EXPECT(bp_net_loss_and_grad(net, N, pb.X, NIN, NULL, 0, &l), BP_ERR_ARG, "bp_net_loss_and_grad", "targets");
    bad_labels[5] = -1;
    NT_EXPECT(bp_net_loss_and_grad(net, N, pb.X, NIN, bad_labels, 0, &l), BP_ERR_ARG, "bp_net_loss_and_grad", "label 5");
    bad_labels[5] = NOUT;
    NT_EXPECT(bp_net_loss_and_grad(net, N, pb.X, NIN, bad_labels, 0, &l), BP_ERR_ARG, "bp_net_loss_and_grad", "label 5");
    NT_EXPECT(bp_net_loss_and_grad(mse, N, pb.X, NIN, pb.T, NOUT - 1, &l), BP_ERR_ARG, "bp_net_loss_and_grad", "ldt");
    NT_EXPECT(bp_net_loss_and_grad(mse, N, pb.X, NIN, NULL, NOUT, &l), BP_ERR_ARG, "bp_net_loss_and_grad", "targets");
    ck_assert(l == 12345);
    ck_assert_msg(memcmp(bp_net_grads(net), g0, bytes) == 0, "a rejected pass changed the gradient");
    ck_assert_msg(memcmp(bp_net_grads(mse), mg0, bytes) == 0, "a rejected MSE pass changed the gradient");
    ck_assert_msg(memcmp(bp_net_params(net), p0, bytes) == 0, "a rejected pass changed the parameters");
    free(p0);
    free(g0);
    free(mg0);
    free(Y);
    bp_net_destroy(net);
    bp_net_destroy(mse);
    free_problem(&pb);
}
END_TEST

/* A BCE target outside [0, 1] (sample 5, in the second micro-batch of 4): refused with
 * BP_ERR_ARG; loop 0, 1 (dtype): the gradient buffer must not hold a half-accumulated
 * gradient (untouched); loop 2, 3: the message, like every other of this function, names
 * bp_net_loss_and_grad and the sample ("row 5" or "[5]"), not a kernel and a row of the
 * micro-batch. */
START_TEST(test_bad_bce_target)
{
    const bp_dtype dt = DTYPES[_i % 2];
    enum { N = 6, NIN = 3, NOUT = 2 };
    problem pb = make_problem(dt, BP_LOSS_SIGMOID_BCE, N, NIN, NOUT, NIN, NOUT, 111);
    nt_set(dt, pb.T, 5 * NOUT + 1, 1.5);
    const bp_layer_spec layers[2] = {{4, BP_ACT_TANH, 0}, {NOUT, BP_ACT_IDENTITY, 0}};
    bp_net *net = nt_net(dt, NIN, 2, layers, BP_LOSS_SIGMOID_BCE, NULL);
    NT_OK(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 1, 1));
    NT_OK(bp_net_plan(net, 4));
    const size_t bytes = bp_net_n_params(net) * nt_esize(dt);
    void *g0 = nt_memdup(bp_net_grads(net), bytes);
    double l = 12345;
    nt_reset_error();
    const bp_status st = bp_net_loss_and_grad(net, N, pb.X, NIN, pb.T, NOUT, &l);
    const char *msg = bp_last_error();
    ck_assert_msg(st == BP_ERR_ARG, "%s: status %d, \"%s\"", nt_dtype_name(dt), (int)st, msg);
    ck_assert(l == 12345);
    if (_i < 2)
        ck_assert_msg(memcmp(bp_net_grads(net), g0, bytes) == 0,
                      "%s: a refused pass left a partial gradient (first micro-batch accumulated)", nt_dtype_name(dt));
    else
        ck_assert_msg(strncmp(msg, "bp_net_loss_and_grad: ", 22) == 0 && (strstr(msg, "row 5") || strstr(msg, "[5]")),
                      "%s: the message \"%s\" does not name bp_net_loss_and_grad and sample 5", nt_dtype_name(dt), msg);
    free(g0);
    bp_net_destroy(net);
    free_problem(&pb);
}
END_TEST

/* bp_net_accuracy, bp_net_rmse and bp_net_gradcheck: wrong loss for the metric, NULL outputs,
 * labels out of range, a two-output BCE accuracy (unsupported), ldt, float gradcheck
 * (BP_ERR_UNSUPPORTED), gradcheck n = 0 and h NaN; outputs, parameters and gradients untouched. */
START_TEST(test_bad_eval)
{
    enum { N = 6, NIN = 4, NOUT = 3 };
    const bp_layer_spec layers[2] = {{5, BP_ACT_TANH, 0}, {NOUT, BP_ACT_IDENTITY, 0}};
    problem pd = make_problem(BP_F64, BP_LOSS_MSE, N, NIN, NOUT, NIN, NOUT, 112);
    problem pf = make_problem(BP_F32, BP_LOSS_MSE, N, NIN, NOUT, NIN, NOUT, 112);
    bp_net *xent = nt_net(BP_F64, NIN, 2, layers, BP_LOSS_SOFTMAX_XENT, NULL);
    bp_net *mse = nt_net(BP_F64, NIN, 2, layers, BP_LOSS_MSE, NULL);
    bp_net *bce = nt_net(BP_F64, NIN, 2, layers, BP_LOSS_SIGMOID_BCE, NULL);
    bp_net *xf = nt_net(BP_F32, NIN, 2, layers, BP_LOSS_SOFTMAX_XENT, NULL);
    bp_net *all[4] = {xent, mse, bce, xf};
    for (int k = 0; k < 4; k++) {
        NT_OK(bp_net_init(all[k], BP_INIT_HE_NORMAL, 2, 1));
        NT_OK(bp_net_plan(all[k], 4));
    }
    NT_OK(bp_net_loss_and_grad(xent, N, pd.X, NIN, pd.labels, 0, NULL));
    const size_t bytes = bp_net_n_params(xent) * sizeof(double);
    void *p0 = nt_memdup(bp_net_params(xent), bytes), *g0 = nt_memdup(bp_net_grads(xent), bytes);
    int32_t bad[N];
    memcpy(bad, pd.labels, sizeof bad);
    double acc = 12345, r = 12345, rel = 12345;
    size_t worst = 777;
    int64_t conf[NOUT * NOUT];
    tu_sentinel(conf, sizeof conf);

    NT_EXPECT(bp_net_accuracy(mse, N, pd.X, NIN, pd.labels, &acc, NULL), BP_ERR_ARG, "bp_net_accuracy", "MSE");
    NT_EXPECT(bp_net_accuracy(xent, N, pd.X, NIN, pd.labels, NULL, conf), BP_ERR_ARG, "bp_net_accuracy", "accuracy");
    NT_EXPECT(bp_net_accuracy(xent, N, pd.X, NIN - 1, pd.labels, &acc, conf), BP_ERR_ARG, "bp_net_accuracy", "ldx");
    NT_EXPECT(bp_net_accuracy(xent, N, NULL, NIN, pd.labels, &acc, conf), BP_ERR_ARG, "bp_net_accuracy", "X");
    NT_EXPECT(bp_net_accuracy(xent, N, pd.X, NIN, NULL, &acc, conf), BP_ERR_ARG, "bp_net_accuracy", "targets");
    bad[2] = -1;
    NT_EXPECT(bp_net_accuracy(xent, N, pd.X, NIN, bad, &acc, conf), BP_ERR_ARG, "bp_net_accuracy", "label 2");
    bad[2] = NOUT;
    NT_EXPECT(bp_net_accuracy(xent, N, pd.X, NIN, bad, &acc, conf), BP_ERR_ARG, "bp_net_accuracy", "label 2");
    NT_EXPECT(bp_net_accuracy(bce, N, pd.X, NIN, pd.labels, &acc, NULL), BP_ERR_UNSUPPORTED, "bp_net_accuracy", "one output");
    ck_assert(acc == 12345);
    ck_assert_msg(tu_is_sentinel(conf, sizeof conf), "a rejected accuracy wrote the confusion matrix");

    NT_EXPECT(bp_net_rmse(xent, N, pd.X, NIN, pd.T, NOUT, &r), BP_ERR_ARG, "bp_net_rmse", "not MSE");
    NT_EXPECT(bp_net_rmse(mse, N, pd.X, NIN, pd.T, NOUT, NULL), BP_ERR_ARG, "bp_net_rmse", "rmse");
    NT_EXPECT(bp_net_rmse(mse, N, pd.X, NIN, pd.T, NOUT - 1, &r), BP_ERR_ARG, "bp_net_rmse", "ldt");
    NT_EXPECT(bp_net_rmse(mse, N, pd.X, NIN, NULL, NOUT, &r), BP_ERR_ARG, "bp_net_rmse", "targets");
    NT_EXPECT(bp_net_rmse(mse, N, pd.X, 1, pd.T, NOUT, &r), BP_ERR_ARG, "bp_net_rmse", "ldx");
    ck_assert(r == 12345);

    NT_EXPECT(bp_net_gradcheck(xf, N, pf.X, NIN, pf.labels, 0, 0, &rel, &worst), BP_ERR_UNSUPPORTED, "bp_net_gradcheck", "BP_F64");
    NT_EXPECT(bp_net_gradcheck(xent, 0, pd.X, NIN, pd.labels, 0, 0, &rel, &worst), BP_ERR_ARG, "bp_net_gradcheck", "n");
    NT_EXPECT(bp_net_gradcheck(xent, N, pd.X, NIN, pd.labels, 0, NAN, &rel, &worst), BP_ERR_ARG, "bp_net_gradcheck", "h");
    NT_EXPECT(bp_net_gradcheck(xent, N, pd.X, NIN, pd.labels, 0, 0, NULL, &worst), BP_ERR_ARG, "bp_net_gradcheck", "max_rel_err");
    NT_EXPECT(bp_net_gradcheck(xent, N, NULL, NIN, pd.labels, 0, 0, &rel, &worst), BP_ERR_ARG, "bp_net_gradcheck", "X");
    NT_EXPECT(bp_net_gradcheck(xent, N, pd.X, NIN, bad, 0, 0, &rel, &worst), BP_ERR_ARG, "bp_net_gradcheck", "label 2");
    NT_EXPECT(bp_net_gradcheck(mse, N, pd.X, NIN, pd.T, NOUT - 1, 0, &rel, &worst), BP_ERR_ARG, "bp_net_gradcheck", "ldt");
    ck_assert(rel == 12345 && worst == 777);
    ck_assert_msg(memcmp(bp_net_params(xent), p0, bytes) == 0, "a rejected call changed the parameters");
    ck_assert_msg(memcmp(bp_net_grads(xent), g0, bytes) == 0, "a rejected call changed the gradient");
    free(p0);
    free(g0);
    for (int k = 0; k < 4; k++)
        bp_net_destroy(all[k]);
    free_problem(&pd);
    free_problem(&pf);
}
END_TEST

/* ---- failing allocators ----------------------------------------------------------------------- */

/* bp_net_create with an allocator that fails after k successful calls, for every k until it
 * succeeds: BP_ERR_NOMEM naming the allocation, *out untouched, every successful allocation
 * freed. Then bp_net_plan, orthogonal bp_net_init, bp_optim_create and bp_train the same way;
 * a failed replan keeps the old plan working. (ASan's leak checker watches too.) */
START_TEST(test_nomem)
{
    const bp_dtype dt = DTYPES[_i];
    const bp_layer_spec layers[3] = {{6, BP_ACT_GELU, 0}, {5, BP_ACT_TANH, 0}, {3, BP_ACT_IDENTITY, 0}};
    problem pb = make_problem(dt, BP_LOSS_SOFTMAX_XENT, 10, 4, 3, 4, 3, 113);
    nt_counter c = nt_counter_make();
    const bp_allocator a = nt_allocator(&c);
    int marker;
    bp_net *const untouched = (bp_net *)(void *)&marker;
    bp_net *net = NULL;
    long k = 0;
    for (;; k++) {
        c = nt_counter_make();
        c.fail_after = k;
        bp_net *out = untouched;
        nt_reset_error();
        const bp_status st = bp_net_create(&out, dt, 4, 3, layers, BP_LOSS_SOFTMAX_XENT, &a);
        if (st == BP_OK) {
            net = out;
            break;
        }
        ck_assert_msg(st == BP_ERR_NOMEM, "create failing after %ld: status %d (%s)", k, (int)st, bp_last_error());
        ck_assert_msg(strncmp(bp_last_error(), "bp_net_create: ", 15) == 0, "message: %s", bp_last_error());
        ck_assert_ptr_eq(out, untouched);
        ck_assert_msg(c.allocs == c.frees, "create failing after %ld: %ld allocations, %ld frees", k, c.allocs, c.frees);
        ck_assert_int_lt(k, 50);
    }
    ck_assert_int_gt(k, 0);
    c.fail_after = -1;
    NT_OK(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 3, 1));
    NT_OK(bp_net_plan(net, 3));
    const size_t ysz = 10 * 3 * nt_esize(dt);
    void *Y0 = malloc(ysz), *Y1 = malloc(ysz);
    ck_assert(Y0 && Y1);
    NT_OK(bp_net_forward(net, 10, pb.X, 4, Y0, 3));

    for (k = 0;; k++) {
        const long live = c.allocs - c.frees;
        c.fail_after = c.allocs + k;
        nt_reset_error();
        const bp_status st = bp_net_plan(net, 8);
        c.fail_after = -1;
        if (st == BP_OK)
            break;
        ck_assert_msg(st == BP_ERR_NOMEM && strncmp(bp_last_error(), "bp_net_plan: ", 13) == 0,
                      "plan failing after %ld: status %d, \"%s\"", k, (int)st, bp_last_error());
        ck_assert_msg(c.allocs - c.frees == live, "plan failing after %ld leaked %ld blocks", k, c.allocs - c.frees - live);
        tu_sentinel(Y1, ysz);
        NT_OK(bp_net_forward(net, 10, pb.X, 4, Y1, 3));
        ck_assert_msg(memcmp(Y0, Y1, ysz) == 0, "after a failed replan the old plan gives other outputs");
        ck_assert_int_lt(k, 50);
    }
    ck_assert_int_gt(k, 0);

    const size_t bytes = bp_net_n_params(net) * nt_esize(dt);
    for (k = 0;; k++) {
        const long live = c.allocs - c.frees;
        c.fail_after = c.allocs + k;
        nt_reset_error();
        const bp_status st = bp_net_init(net, BP_INIT_ORTHOGONAL, 5, 1);
        c.fail_after = -1;
        if (st == BP_OK)
            break;
        ck_assert_msg(st == BP_ERR_NOMEM && strncmp(bp_last_error(), "bp_net_init: ", 13) == 0,
                      "orthogonal init failing after %ld: status %d, \"%s\"", k, (int)st, bp_last_error());
        ck_assert_msg(c.allocs - c.frees == live, "init failing after %ld leaked %ld blocks", k, c.allocs - c.frees - live);
        ck_assert_int_lt(k, 50);
    }
    ck_assert_int_gt(k, 0);

    bp_optim *opt = (bp_optim *)(void *)&marker;
    const bp_optim_config oc = bp_optim_defaults(BP_OPT_MOMENTUM, 0.1);
    c.fail_after = c.allocs;
    NT_EXPECT(bp_optim_create(&opt, net, &oc), BP_ERR_NOMEM, "bp_optim_create", "");
    ck_assert_ptr_eq(opt, (bp_optim *)(void *)&marker);
    c.fail_after = -1;
    NT_OK(bp_optim_create(&opt, net, &oc));

    void *p0 = nt_memdup(bp_net_params(net), bytes);
    int calls = 0;
    bp_train_config tc = {.epochs = 1, .batch_size = 4, .seed = 1, .shuffle = 1, .ctx = &calls};
    c.fail_after = c.allocs;
    NT_EXPECT(bp_train(net, opt, 10, pb.X, 4, pb.labels, 0, &tc), BP_ERR_NOMEM, "bp_train", "permutation");
    c.fail_after = -1;
    ck_assert_msg(memcmp(bp_net_params(net), p0, bytes) == 0, "a bp_train without memory changed the parameters");
    ck_assert_int_eq(bp_optim_steps(opt), 0);
    bp_optim_destroy(opt);
    bp_net_destroy(net);
    ck_assert_msg(c.allocs == c.frees, "%ld allocations, %ld frees after destroy", c.allocs, c.frees);
    free(p0);
    free(Y0);
    free(Y1);
    free_problem(&pb);
}
END_TEST

static Suite *net_suite(void)
{
    Suite *s = suite_create("net");
    TCase *g = tcase_create("gradients");
    tcase_add_loop_test(g, test_grad_fd, 0, TU_NACT * 3);
    tcase_add_test(g, test_gradcheck_h);
    suite_add_tcase(s, g);

    TCase *p = tcase_create("pipeline");
    tcase_add_loop_test(p, test_microbatch, 0, 6);
    tcase_add_loop_test(p, test_batch1, 0, 6);
    tcase_add_loop_test(p, test_backend, 0, 6);
    tcase_add_loop_test(p, test_forward, 0, 6);
    tcase_add_loop_test(p, test_accuracy, 0, 2);
    tcase_add_test(p, test_empty_batch);
    tcase_add_loop_test(p, test_no_alloc, 0, 6);
    tcase_add_loop_test(p, test_determinism, 0, 2);
    suite_add_tcase(s, p);

    TCase *in = tcase_create("init");
    tcase_add_loop_test(in, test_init_stats, 0, 8);
    tcase_add_loop_test(in, test_init_orthogonal, 0, 2);
    suite_add_tcase(s, in);

    TCase *f = tcase_create("finite");
    tcase_add_loop_test(f, test_finite_input, 0, 2);
    tcase_add_loop_test(f, test_finite_inside_train, 0, 2);
    tcase_add_loop_test(f, test_finite_inside_forward, 0, 2);
    tcase_add_loop_test(f, test_finite_inside_eval, 0, 4);
    tcase_add_loop_test(f, test_finite_optim, 0, 2);
    tcase_add_loop_test(f, test_nan_through_relu, 0, 2);
    suite_add_tcase(s, f);

    TCase *d = tcase_create("describe");
    tcase_add_test(d, test_describe_plan);
    tcase_add_loop_test(d, test_layer_views, 0, 2);
    tcase_add_test(d, test_max_layers);
    suite_add_tcase(s, d);

    TCase *b = tcase_create("bad_args");
    tcase_add_test(b, test_bad_create);
    tcase_add_test(b, test_bad_setup);
    tcase_add_loop_test(b, test_bad_passes, 0, 2);
    tcase_add_loop_test(b, test_bad_bce_target, 0, 4);
    tcase_add_test(b, test_bad_eval);
    tcase_add_loop_test(b, test_nomem, 0, 2);
    suite_add_tcase(s, b);
    return s;
}

int main(void)
{
    return tu_run_suite(net_suite());
}
