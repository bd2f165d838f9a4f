/* SPDX-License-Identifier: MIT */
/* test_grad.c: gradients against central finite differences (double), forward and loss formulas, and stability at |logit| = 1e4. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "runner.h"
#include "testutil.h"

/* Finite differences: central, step h = 1e-6 max(1, |x|), so truncation (~h^2) and
 * cancellation (~eps / h) errors are both near 1e-10; a gradient passes when its
 * normwise relative error against the difference quotients is below FD_TOL. */
#define FD_TOL 1e-6

/* Inputs of a relu-like activation stay this far from its kink, far beyond the step. */
#define KINK_MARGIN 1e-2

/* Central difference of f along *x (restored afterwards), dividing by the step actually taken. */
static double central_diff(double (*f)(const void *), const void *arg, double *x)
{
    const double x0 = *x, h = 1e-6 * fmax(1.0, fabs(x0));
    *x = x0 + h;
    const double fp = f(arg);
    *x = x0 - h;
    const double fm = f(arg);
    *x = x0;
    return (fp - fm) / ((x0 + h) - (x0 - h));
}

static void push_from_kink(double *z, int n, int m, int ld)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++) {
            double *v = &z[(size_t)i * ld + j];
            if (fabs(*v) < KINK_MARGIN)
                *v = copysign(KINK_MARGIN + fabs(*v), *v);
        }
}

static void check_fd(const char *what, const char *ctx, const double *g, const double *fd, int count)
{
    const double err = tu_err(1, count, g, count, fd, count, TU_FLOOR);
    ck_assert_msg(err < FD_TOL, "%s (%s): relative error %.3g against finite differences >= %g", what, ctx, err, FD_TOL);
}

/* ---- activation formulas and their backward -------------------------------------------- */

/* bp_dact_forward against the table of backprop/kernels.h evaluated here with libm, on
 * random inputs plus 0, the neighbourhood of the kinks and saturated values;
 * tolerance tu_tol(k, eps) with k = m for softmax (a row reduction), else 0. */
START_TEST(test_act_formula)
{
    enum { N = 4, M = 9 };
    static const double special[M] = {-40, -20, -1e-3, 0, 1e-3, 0.5, 1, 20, 40};
    tu_rng r = tu_rng_make(401);
    for (int a = 0; a < TU_NACT; a++) {
        const bp_act act = (bp_act)a;
        const double alpha = tu_alpha(&r, act);
        double Z[N * M], Y[N * M], ref[N * M];
        tu_fill(&r, Z, N, M, M, -6, 6);
        for (int j = 0; j < M; j++)
            Z[j] = special[j];
        ck_assert_int_eq(bp_dact_forward(act, alpha, N, M, Z, M, Y, M), BP_OK);
        tu_act_block(act, alpha, N, M, Z, M, ref, M);
        const double err = tu_err(N, M, Y, M, ref, M, TU_FLOOR);
        ck_assert_msg(err <= tu_tol(act == BP_ACT_SOFTMAX ? M : 0, DBL_EPSILON),
                      "bp_dact_forward(%s): error %.3g against the formula", tu_act_name(act), err);
    }
}
END_TEST

typedef struct act_row {
    bp_act act;
    double alpha, *z, *w;
    int m;
} act_row;

/* sum_j w_j f(z)_j for one sample. */
static double act_row_loss(const void *arg)
{
    const act_row *a = arg;
    double y[16], sum = 0;
    ck_assert_int_eq(bp_dact_forward(a->act, a->alpha, 1, a->m, a->z, a->m, y, a->m), BP_OK);
    for (int j = 0; j < a->m; j++)
        sum += a->w[j] * y[j];
    return sum;
}

/* With L = sum(w .* f(Z)) and dY = w, bp_dact_backward gives dL/dZ. */
START_TEST(test_act_backward_fd)
{
    enum { N = 3, M = 6 };
    tu_rng r = tu_rng_make(402);
    for (int a = 0; a < TU_NACT; a++) {
        const bp_act act = (bp_act)a;
        const double alpha = tu_alpha(&r, act);
        double Z[N * M], Y[N * M], W[N * M], dZ[N * M], fd[N * M];
        tu_fill(&r, Z, N, M, M, -3, 3);
        push_from_kink(Z, N, M, M);
        tu_fill(&r, W, N, M, M, -1, 1);
        ck_assert_int_eq(bp_dact_forward(act, alpha, N, M, Z, M, Y, M), BP_OK);
        ck_assert_int_eq(bp_dact_backward(act, alpha, N, M, Z, M, Y, M, W, M, dZ, M), BP_OK);
        for (int i = 0; i < N; i++) {
            act_row row = {act, alpha, Z + i * M, W + i * M, M};
            for (int j = 0; j < M; j++)
                fd[i * M + j] = central_diff(act_row_loss, &row, &row.z[j]);
        }
        check_fd("bp_dact_backward dZ", tu_act_name(act), dZ, fd, N * M);
    }
}
END_TEST

/* ---- losses ------------------------------------------------------------------------------ */

enum loss_kind { L_XENT, L_PROB, L_BCE, L_MSE, L_COUNT };
static const char *const loss_names[L_COUNT] = {"softmax_xent", "softmax_xent_prob", "sigmoid_bce", "mse"};

typedef struct loss_prob {
    int kind, n, m;
    double *Z, *T, divisor;
    const int32_t *labels;
} loss_prob;

static bp_status loss_call(const loss_prob *p, int i0, int n, double *loss, double *dZ)
{
    const double *Z = p->Z + (size_t)i0 * p->m, *T = p->T + (size_t)i0 * p->m;
    const int m = p->m;
    switch (p->kind) {
    case L_XENT:
        return bp_dsoftmax_xent(n, m, Z, m, p->labels + i0, p->divisor, loss, dZ, m);
    case L_PROB:
        return bp_dsoftmax_xent_prob(n, m, Z, m, T, m, p->divisor, loss, dZ, m);
    case L_BCE:
        return bp_dsigmoid_bce(n, m, Z, m, T, m, p->divisor, loss, dZ, m);
    default:
        return bp_dmse(n, m, Z, m, T, m, p->divisor, loss, dZ, m);
    }
}

/* Random problem: logits in [-4, 4] (mse: outputs in [-1, 1]); targets in the kind's domain
 * (softmax_xent_prob: rows >= 0, not normalised, which the formula allows). */
static loss_prob loss_prob_make(tu_rng *r, int kind, int n, int m, double *Z, double *T, int32_t *labels)
{
    loss_prob p = {kind, n, m, Z, T, n + 2.0, labels};
    tu_fill(r, Z, n, m, m, kind == L_MSE ? -1 : -4, kind == L_MSE ? 1 : 4);
    tu_fill(r, T, n, m, m, kind == L_MSE ? -1 : 0, 1);
    for (int i = 0; i < n; i++)
        labels[i] = tu_int(r, 0, m - 1);
    return p;
}

/* The loss and gradient formulas of backprop/kernels.h, evaluated here. */
static void loss_formula(const loss_prob *p, double *loss, double *dZ)
{
    const int m = p->m;
    double sum = 0;
    for (int i = 0; i < p->n; i++) {
        const double *z = p->Z + i * m, *t = p->T + i * m;
        double *g = dZ + i * m, zmax = z[0], se = 0, tsum = 0;
        for (int j = 1; j < m; j++)
            zmax = fmax(zmax, z[j]);
        for (int j = 0; j < m; j++) {
            se += exp(z[j] - zmax);
            tsum += t[j];
        }
        const double lse = zmax + log(se);
        for (int j = 0; j < m; j++) {
            const double sm = exp(z[j] - lse), sg = tu_act(BP_ACT_SIGMOID, 0, z[j]);
            switch (p->kind) {
            case L_XENT:
                sum += j == p->labels[i] ? lse - z[j] : 0.0;
                g[j] = sm - (j == p->labels[i]);
                break;
            case L_PROB:
                sum += t[j] * (lse - z[j]);
                g[j] = sm * tsum - t[j];
                break;
            case L_BCE:
                sum += fmax(z[j], 0) - z[j] * t[j] + log1p(exp(-fabs(z[j])));
                g[j] = sg - t[j];
                break;
            default:
                sum += (z[j] - t[j]) * (z[j] - t[j]) / m;
                g[j] = 2 * (z[j] - t[j]) / m;
            }
            g[j] /= p->divisor;
        }
    }
    *loss = sum / p->divisor;
}

/* Loss value and dZ of each loss against the formulas; tolerance tu_tol(m, eps). */
START_TEST(test_loss_formula)
{
    enum { N = 5, M = 7 };
    tu_rng r = tu_rng_make(403);
    for (int kind = 0; kind < L_COUNT; kind++) {
        double Z[N * M], T[N * M], dZ[N * M], dZref[N * M], loss, ref;
        int32_t labels[N];
        const loss_prob p = loss_prob_make(&r, kind, N, M, Z, T, labels);
        ck_assert_int_eq(loss_call(&p, 0, N, &loss, dZ), BP_OK);
        loss_formula(&p, &ref, dZref);
        const double tol = tu_tol(M, DBL_EPSILON);
        ck_assert_msg(tu_rel(loss, ref, TU_FLOOR) <= tol, "%s: loss %.17g, formula %.17g", loss_names[kind], loss, ref);
        ck_assert_msg(tu_err(N, M, dZ, M, dZref, M, TU_FLOOR) <= tol, "%s: dZ differs from the formula",
                      loss_names[kind]);
    }
}
END_TEST

/* The loss of one sample, row i0 of the problem (dZ not requested). */
typedef struct loss_row {
    const loss_prob *p;
    int i0;
} loss_row;

static double loss_row_value(const void *arg)
{
    const loss_row *lr = arg;
    double loss;
    ck_assert_int_eq(loss_call(lr->p, lr->i0, 1, &loss, NULL), BP_OK);
    return loss;
}

/* dZ of each loss against central differences of its loss value (divisor n + 2; m = 1 and 6).
 * With one class the softmax losses are constant: then dZ must be exactly 0, checked at the end. */
START_TEST(test_loss_fd)
{
    enum { N = 4, MMAX = 6 };
    tu_rng r = tu_rng_make(404);
    for (int kind = 0; kind < L_COUNT; kind++)
        for (int m = 1; m <= MMAX; m += MMAX - 1) {
            double Z[N * MMAX], T[N * MMAX], dZ[N * MMAX], fd[N * MMAX];
            int32_t labels[N];
            const loss_prob p = loss_prob_make(&r, kind, N, m, Z, T, labels);
            ck_assert_int_eq(loss_call(&p, 0, N, NULL, dZ), BP_OK);
            for (int i = 0; i < N; i++) {
                const loss_row lr = {&p, i};
                for (int j = 0; j < m; j++)
                    fd[i * m + j] = central_diff(loss_row_value, &lr, &Z[i * m + j]);
            }
            char ctx[64];
            snprintf(ctx, sizeof ctx, "m=%d", m);
            check_fd(loss_names[kind], ctx, dZ, fd, N * m);
        }
    /* One class: softmax is 1, the loss 0 and its gradient 0 (t sums to 1 for _prob). */
    double z[2] = {3.5, -2.0}, t[2] = {1, 1}, dz[2], loss;
    const int32_t lab[2] = {0, 0};
    ck_assert_int_eq(bp_dsoftmax_xent(2, 1, z, 1, lab, 2, &loss, dz, 1), BP_OK);
    ck_assert_msg(loss == 0 && dz[0] == 0 && dz[1] == 0, "softmax_xent, one class: loss %g dZ %g %g", loss, dz[0], dz[1]);
    ck_assert_int_eq(bp_dsoftmax_xent_prob(2, 1, z, 1, t, 1, 2, &loss, dz, 1), BP_OK);
    ck_assert_msg(loss == 0 && dz[0] == 0 && dz[1] == 0, "softmax_xent_prob, one class: loss %g dZ %g %g", loss, dz[0],
                  dz[1]);
}
END_TEST

/* ---- dense layer through the kernels --------------------------------------------------- */

enum { DN = 3, DNI = 4, DNO = 5 };

typedef struct dense_prob {
    bp_layout layout;
    bp_act act;
    double alpha;
    double X[DN * DNI], W[DNO * DNI], b[DNO], wts[DN * DNO];
} dense_prob;

/* L = sum(wts .* Y), Y = f(X W^T + b); Z is stored when not NULL. */
static double dense_loss_z(const dense_prob *p, double *Z)
{
    const int ldw = p->layout == BP_ROW_MAJOR ? DNI : DNO;
    double Y[DN * DNO], sum = 0;
    ck_assert_int_eq(bp_ddense_forward(p->layout, DN, DNI, DNO, p->X, DNI, p->W, ldw, p->b, p->act, p->alpha, Z, DNO,
                                       Y, DNO),
                     BP_OK);
    for (int k = 0; k < DN * DNO; k++)
        sum += p->wts[k] * Y[k];
    return sum;
}

static double dense_loss(const void *arg)
{
    return dense_loss_z(arg, NULL);
}

/* dense_backward's dW, db and dX (beta = 0, dY = wts) against central differences of L. */
START_TEST(test_dense_backward_fd)
{
    tu_rng r = tu_rng_make(405);
    for (int l = 0; l < 2; l++)
        for (int a = 0; a < TU_NACT; a++) {
            dense_prob p;
            p.layout = l ? BP_COL_MAJOR : BP_ROW_MAJOR;
            p.act = (bp_act)a;
            p.alpha = tu_alpha(&r, p.act);
            const int ldw = p.layout == BP_ROW_MAJOR ? DNI : DNO;
            tu_fill(&r, p.X, DN, DNI, DNI, -1, 1);
            tu_fill(&r, p.W, DNO * DNI, 1, 1, -1, 1);
            tu_fill(&r, p.wts, DN, DNO, DNO, -1, 1);
            /* Redraw the bias until every pre-activation keeps clear of the relu kinks. */
            double Z[DN * DNO], Y[DN * DNO], zmin = 0;
            for (int tries = 0; tries < 1000 && zmin < KINK_MARGIN; tries++) {
                tu_fill(&r, p.b, 1, DNO, DNO, -1, 1);
                dense_loss_z(&p, Z);
                zmin = INFINITY;
                for (int k = 0; k < DN * DNO; k++)
                    zmin = fmin(zmin, fabs(Z[k]));
            }
            ck_assert_msg(zmin >= KINK_MARGIN, "could not draw a bias away from the kinks");
            ck_assert_int_eq(bp_ddense_forward(p.layout, DN, DNI, DNO, p.X, DNI, p.W, ldw, p.b, p.act, p.alpha, Z,
                                               DNO, Y, DNO),
                             BP_OK);
            double dZ[DN * DNO], dW[DNO * DNI], db[DNO], dX[DN * DNI];
            ck_assert_int_eq(bp_ddense_backward(p.layout, DN, DNI, DNO, p.X, DNI, p.W, ldw, p.act, p.alpha, Z, DNO, Y,
                                                DNO, p.wts, DNO, dZ, DNO, 0.0, dW, ldw, db, dX, DNI),
                             BP_OK);
            double fdW[DNO * DNI], fdb[DNO], fdX[DN * DNI];
            for (int o = 0; o < DNO; o++)
                for (int i = 0; i < DNI; i++) {
                    const size_t k = tu_widx(p.layout, o, i, ldw);
                    fdW[k] = central_diff(dense_loss, &p, &p.W[k]);
                }
            for (int o = 0; o < DNO; o++)
                fdb[o] = central_diff(dense_loss, &p, &p.b[o]);
            for (int k = 0; k < DN * DNI; k++)
                fdX[k] = central_diff(dense_loss, &p, &p.X[k]);
            char ctx[64];
            snprintf(ctx, sizeof ctx, "%s-major, %s", tu_layout_name(p.layout), tu_act_name(p.act));
            check_fd("bp_ddense_backward dW", ctx, dW, fdW, DNO * DNI);
            check_fd("bp_ddense_backward db", ctx, db, fdb, DNO);
            check_fd("bp_ddense_backward dX", ctx, dX, fdX, DN * DNI);
        }
}
END_TEST

/* ---- stability at |logit| = 1e4, both precisions (_i: 0 float, 1 double) ----------------- */

static const runner *const precs[2] = {&runner_s, &runner_d};

#define BIG 1e4

/* A value of this precision close to the exact one: |got - want| <= tu_tol(k, eps) max(1, |want|). */
static void check_value(const char *ctx, const char *what, double got, double want, double tol)
{
    ck_assert_msg(isfinite(got) && fabs(got - want) <= tol * fmax(1.0, fabs(want)), "%s: %s = %.17g, expected %.17g",
                  ctx, what, got, want);
}

/* Softmax cross-entropy, labels and one-hot targets, logits +-1e4: per sample
 * loss = logsumexp(z) - z_c (0 for the right class, 2e4 for the wrong one at margin 2e4),
 * dZ = softmax(z) - onehot, every component in [-1, 1] / divisor.
 * Tolerances: the loss tu_tol(m, eps) relative; dZ tu_tol(m, eps) |z|, because softmax at
 * |z| = 1e4 is conditioned like that: a relative change eps of the logits (one rounding of
 * z - logsumexp(z)) moves p by up to |z| eps. */
START_TEST(test_xent_extreme)
{
    enum { N = 6, M = 3 };
    const runner *P = precs[_i];
    static const double Z[N * M] = {BIG, -BIG, 0, BIG, -BIG, 0, BIG, -BIG, 0,
                                    -BIG, BIG, 0, -BIG, BIG, 0, BIG, BIG, -BIG};
    static const int32_t labels[N] = {0, 1, 2, 1, 0, 2};
    static const double want_loss[N] = {0, 2 * BIG, BIG, 0, 2 * BIG, 2 * BIG + 0.69314718055994531};
    static const double want_p[N * M] = {1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0.5, 0.5, 0};
    const double tol = tu_tol(M, P->eps), tol_dz = tol * BIG, divisor = 4;
    double T[N * M] = {0};
    for (int i = 0; i < N; i++)
        T[i * M + labels[i]] = 1;
    for (int prob = 0; prob < 2; prob++)
        for (int i = 0; i < N; i++) {
            char ctx[96];
            snprintf(ctx, sizeof ctx, "%s %s, sample %d", P->name, prob ? "softmax_xent_prob" : "softmax_xent", i);
            double loss, dZ[M];
            const bp_status st =
                prob ? P->softmax_xent_prob(0, 1, M, Z + i * M, M, T + i * M, M, divisor, &loss, dZ, M)
                     : P->softmax_xent(0, 1, M, Z + i * M, M, labels + i, divisor, &loss, dZ, M);
            ck_assert_int_eq(st, BP_OK);
            check_value(ctx, "loss * divisor", loss * divisor, want_loss[i], tol);
            for (int j = 0; j < M; j++) {
                check_value(ctx, "dZ * divisor", dZ[j] * divisor, want_p[i * M + j] - T[i * M + j], tol_dz);
                ck_assert_msg(fabs(dZ[j]) <= 1 / divisor, "%s: |dZ[%d]| = %g > 1 / divisor", ctx, j, fabs(dZ[j]));
            }
        }
    /* A mixed target on the first sample: loss 0.5 * 0 + 0.5 * 2e4, dZ = softmax - t. */
    const double t[M] = {0.5, 0.5, 0};
    double loss, dZ[M];
    ck_assert_int_eq(P->softmax_xent_prob(0, 1, M, Z, M, t, M, 1, &loss, dZ, M), BP_OK);
    check_value(P->name, "softmax_xent_prob mixed-target loss", loss, BIG, tol);
    check_value(P->name, "softmax_xent_prob mixed-target dZ[0]", dZ[0], 0.5, tol_dz);
    check_value(P->name, "softmax_xent_prob mixed-target dZ[1]", dZ[1], -0.5, tol_dz);
}
END_TEST

/* Sigmoid BCE at z = +-1e4 with t in {0, 0.5, 1}: loss max(z, 0) - z t (the log1p term
 * vanishes), dZ = sigmoid(z) - t exactly 1 - t or -t. */
START_TEST(test_bce_extreme)
{
    const runner *P = precs[_i];
    static const double zs[2] = {BIG, -BIG}, ts[3] = {0, 0.5, 1};
    const double tol = tu_tol(1, P->eps), divisor = 4; /* a power of 2: 1 / divisor is exact in float */
    for (int a = 0; a < 2; a++)
        for (int c = 0; c < 3; c++) {
            char ctx[96];
            snprintf(ctx, sizeof ctx, "%s sigmoid_bce z=%g t=%g", P->name, zs[a], ts[c]);
            double loss, dZ;
            ck_assert_int_eq(P->sigmoid_bce(0, 1, 1, &zs[a], 1, &ts[c], 1, divisor, &loss, &dZ, 1), BP_OK);
            check_value(ctx, "loss * divisor", loss * divisor, fmax(zs[a], 0) - zs[a] * ts[c], tol);
            check_value(ctx, "dZ * divisor", dZ * divisor, (zs[a] > 0) - ts[c], tol);
            ck_assert_msg(fabs(dZ) <= 1 / divisor, "%s: |dZ| = %g > 1 / divisor", ctx, fabs(dZ));
        }
}
END_TEST

/* f'(z) at z = +-1e4 (the limits of the table in backprop/kernels.h). */
static double extreme_slope(bp_act act, double alpha, double z)
{
    switch (act) {
    case BP_ACT_IDENTITY:
        return 1;
    case BP_ACT_LEAKY_RELU:
        return z > 0 ? 1 : alpha;
    case BP_ACT_SIGMOID:
    case BP_ACT_TANH:
    case BP_ACT_SOFTMAX: /* dY = 1 on every output: y (1 - <1, y>) = 0 */
        return 0;
    default: /* relu, elu, the gelus, softplus */
        return z > 0;
    }
}

/* Every activation at z = +-1e4: finite outputs equal to the formula and finite slopes
 * equal to their limits (tolerance tu_tol(1, eps) relative to max(1, |value|)). */
START_TEST(test_act_extreme)
{
    const runner *P = precs[_i];
    static const double Z[2] = {-BIG, BIG}, ones[2] = {1, 1};
    tu_rng r = tu_rng_make(406);
    for (int a = 0; a < TU_NACT; a++) {
        const bp_act act = (bp_act)a;
        const double alpha = tu_alpha(&r, act), tol = tu_tol(1, P->eps);
        double Y[2], ref[2], dZ[2];
        char ctx[96];
        snprintf(ctx, sizeof ctx, "%s %s at -1e4, 1e4", P->name, tu_act_name(act));
        ck_assert_int_eq(P->act_forward(0, act, alpha, 1, 2, Z, 2, Y, 2), BP_OK);
        tu_act_block(act, alpha, 1, 2, Z, 2, ref, 2);
        ck_assert_int_eq(P->act_backward(0, act, alpha, 1, 2, Z, 2, Y, 2, ones, 2, dZ, 2), BP_OK);
        for (int j = 0; j < 2; j++) {
            check_value(ctx, "f(z)", Y[j], ref[j], tol);
            check_value(ctx, "f'(z)", dZ[j], extreme_slope(act, alpha, Z[j]), tol);
        }
    }
}
END_TEST

static Suite *grad_suite(void)
{
    Suite *s = suite_create("grad");
    TCase *fd = tcase_create("finite_differences");
    tcase_add_test(fd, test_act_formula);
    tcase_add_test(fd, test_act_backward_fd);
    tcase_add_test(fd, test_loss_formula);
    tcase_add_test(fd, test_loss_fd);
    tcase_add_test(fd, test_dense_backward_fd);
    suite_add_tcase(s, fd);

    TCase *st = tcase_create("stability");
    tcase_add_loop_test(st, test_xent_extreme, 0, 2);
    tcase_add_loop_test(st, test_bce_extreme, 0, 2);
    tcase_add_loop_test(st, test_act_extreme, 0, 2);
    suite_add_tcase(s, st);
    return s;
}

int main(void)
{
    return tu_run_suite(grad_suite());
}
