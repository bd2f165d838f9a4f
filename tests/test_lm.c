/* SPDX-License-Identifier: MIT */
/* test_lm.c: Levenberg-Marquardt (bp_lm_fit): one step against a step built from a central-difference
 * Jacobian, the rejected-step path, every stop reason, the best-validation restore, allocation (once,
 * and the size guard before it), refusals, a float network, and the sin(3x) + 0.3 cos(9x) curve. */
#define _POSIX_C_SOURCE 200809L  /* cblas.h: BLIS's needs the pthread types */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>

#include "nettest_util.h"
#include "testutil.h"

/* ---- problems ----------------------------------------------------------------------------- */

/* A problem: n samples of n_in inputs and n_out targets, as doubles (exact in float). */
typedef struct problem {
    int n, n_in, n_out;
    double *X, *T;
} problem;

static void free_problem(problem *p)
{
    free(p->X);
    free(p->T);
}

/* y = sin(3x) + 0.3 cos(9x) at n points evenly spread over [-1, 1], plus noise of amplitude
 * `noise` (uniform, seeded). */
static problem curve(int n, double noise, uint64_t seed)
{
    tu_rng r = tu_rng_make(seed);
    problem p = {n, 1, 1, tu_alloc((size_t)n), tu_alloc((size_t)n)};
    for (int i = 0; i < n; i++) {
        const double x = (double)(float)(-1 + 2.0 * i / (n - 1));
        p.X[i] = x;
        p.T[i] = (double)(float)(sin(3 * x) + 0.3 * cos(9 * x) + noise * tu_unif(&r, -1, 1));
    }
    return p;
}

/* Random inputs in [-1, 1] and targets from a smooth function of them (n_out of them). */
static problem smooth(int n, int n_in, int n_out, uint64_t seed)
{
    tu_rng r = tu_rng_make(seed);
    problem p = {n, n_in, n_out, tu_alloc((size_t)n * (size_t)n_in), tu_alloc((size_t)n * (size_t)n_out)};
    tu_fill(&r, p.X, n, n_in, n_in, -1, 1);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n_out; k++) {
            double s = 0.3 * k;
            for (int j = 0; j < n_in; j++)
                s += (0.7 + 0.4 * k - 0.3 * j) * p.X[i * n_in + j];
            p.T[i * n_out + k] = (double)(float)(0.8 * tanh(s) + 0.2 * cos(2 * s));
        }
    return p;
}

/* A tanh network n_in-h-n_out with an identity last layer and the MSE loss, Glorot-uniform
 * from seed, planned for micro-batches of mb. */
static bp_net *make_net(bp_dtype dt, int n_in, int h, int n_out, uint64_t seed, int mb, const bp_allocator *a)
{
    const bp_layer_spec layers[2] = {{h, BP_ACT_TANH, 0}, {n_out, BP_ACT_IDENTITY, 0}};
    bp_net *net = nt_net(dt, n_in, 2, layers, BP_LOSS_MSE, a);
    NT_OK(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, seed, 1));
    NT_OK(bp_net_plan(net, mb));
    return net;
}

/* The MSE over all elements of the network's outputs, computed here in double. */
static double mse_d(bp_net *net, const problem *p)
{
    double *Y = tu_alloc((size_t)p->n * (size_t)p->n_out), s = 0;
    NT_OK(bp_net_forward(net, p->n, p->X, p->n_in, Y, p->n_out));
    for (int q = 0; q < p->n * p->n_out; q++)
        s += (Y[q] - p->T[q]) * (Y[q] - p->T[q]);
    free(Y);
    return s / ((double)p->n * p->n_out);
}

/* ---- the oracle: a step from a central-difference Jacobian, solved here ------------------- */

/* x = M^-1 b for a dense P x P M (row-major), by Gaussian elimination with partial pivoting:
 * independent of the library's Cholesky and of which triangle it reads. M and b are overwritten. */
static void gauss_solve(int P, double *M, double *b, double *x)
{
    for (int c = 0; c < P; c++) {
        int piv = c;
        for (int r = c + 1; r < P; r++)
            if (fabs(M[r * P + c]) > fabs(M[piv * P + c]))
                piv = r;
        for (int j = 0; j < P; j++) {
            const double t = M[c * P + j];
            M[c * P + j] = M[piv * P + j];
            M[piv * P + j] = t;
        }
        const double tb = b[c];
        b[c] = b[piv];
        b[piv] = tb;
        for (int r = c + 1; r < P; r++) {
            const double f = M[r * P + c] / M[c * P + c];
            for (int j = c; j < P; j++)
                M[r * P + j] -= f * M[c * P + j];
            b[r] -= f * b[c];
        }
    }
    for (int r = P - 1; r >= 0; r--) {
        double s = b[r];
        for (int j = r + 1; j < P; j++)
            s -= M[r * P + j] * x[j];
        x[r] = s / M[r * P + r];
    }
}

/* The oracle's view of the problem at the network's current (double) parameters: J by central
 * differences of the outputs (h = 1e-6 max(1, |p|)), JtJ = J^T J and Jte = J^T e, e = Y - T. */
typedef struct oracle {
    int P;
    double *JtJ, *Jte, *p0;
} oracle;

static oracle make_oracle(bp_net *net, const problem *pr)
{
    const int P = (int)bp_net_n_params(net), rows = pr->n * pr->n_out;
    oracle o = {P, tu_alloc((size_t)P * P), tu_alloc((size_t)P), nt_params_d(net)};
    double *p = bp_net_params(net), *J = tu_alloc((size_t)rows * P), *Yp = tu_alloc((size_t)rows),
           *Ym = tu_alloc((size_t)rows), *Y = tu_alloc((size_t)rows);
    for (int q = 0; q < P; q++) {
        const double saved = p[q], h = 1e-6 * fmax(1, fabs(saved));
        p[q] = saved + h;
        NT_OK(bp_net_forward(net, pr->n, pr->X, pr->n_in, Yp, pr->n_out));
        p[q] = saved - h;
        NT_OK(bp_net_forward(net, pr->n, pr->X, pr->n_in, Ym, pr->n_out));
        p[q] = saved;
        for (int r = 0; r < rows; r++)
            J[(size_t)r * P + q] = (Yp[r] - Ym[r]) / (2 * h);
    }
    NT_OK(bp_net_forward(net, pr->n, pr->X, pr->n_in, Y, pr->n_out));
    for (int a = 0; a < P; a++) {
        double s = 0;
        for (int r = 0; r < rows; r++)
            s += J[(size_t)r * P + a] * (Y[r] - pr->T[r]);
        o.Jte[a] = s;
        for (int b = 0; b < P; b++) {
            double t = 0;
            for (int r = 0; r < rows; r++)
                t += J[(size_t)r * P + a] * J[(size_t)r * P + b];
            o.JtJ[a * P + b] = t;
        }
    }
    free(J);
    free(Yp);
    free(Ym);
    free(Y);
    return o;
}

/* The parameters p0 - (JtJ + mu I)^-1 Jte into out. */
static void oracle_step(const oracle *o, double mu, double *out)
{
    const int P = o->P;
    double *M = tu_dup(o->JtJ, (size_t)P * P), *b = tu_dup(o->Jte, (size_t)P), *d = tu_alloc((size_t)P);
    for (int a = 0; a < P; a++)
        M[a * P + a] += mu;
    gauss_solve(P, M, b, d);
    for (int a = 0; a < P; a++)
        out[a] = o->p0[a] - d[a];
    free(M);
    free(b);
    free(d);
}

/* The MSE the network would have with parameters q (its own are restored). */
static double mse_at(bp_net *net, const problem *pr, const double *q)
{
    const size_t P = bp_net_n_params(net);
    double *saved = nt_params_d(net);
    memcpy(bp_net_params(net), q, P * sizeof *q);
    const double m = mse_d(net, pr);
    memcpy(bp_net_params(net), saved, P * sizeof *q);
    free(saved);
    return m;
}

static void free_oracle(oracle *o)
{
    free(o->JtJ);
    free(o->Jte);
    free(o->p0);
}

/* Normwise relative difference of the steps a - p0 and b - p0. */
static double step_err(const double *a, const double *b, const double *p0, int P)
{
    double diff = 0, size = 0;
    for (int q = 0; q < P; q++) {
        diff = fmax(diff, fabs(a[q] - b[q]));
        size = fmax(size, fabs(b[q] - p0[q]));
    }
    return diff / fmax(size, 1e-300);
}

/* ---- one step ------------------------------------------------------------------------------ */

/* A 2-3-2 tanh network (double) on 9 samples: one iteration of bp_lm_fit equals p - (J^T J +
 * mu I)^-1 J^T e with J from central differences, solved here: the parameters within 1e-9 and
 * the step itself within 1e-6 (normwise), in whole-batch blocks and in blocks of 2 samples (rows
 * i n_out + k across blocks). The step is the accepted one (the oracle's MSE decreases), and
 * mu comes back multiplied by mu_dec. Loop: block 0 (the default), 2. */
START_TEST(test_one_step_against_differences)
{
    problem pr = smooth(9, 2, 2, 11);
    bp_net *net = make_net(BP_F64, 2, 3, 2, 5, 4, NULL);
    oracle o = make_oracle(net, &pr);
    const double mu = 0.1;
    double *want = tu_alloc((size_t)o.P);
    oracle_step(&o, mu, want);
    const double mse0 = mse_d(net, &pr);
    ck_assert_msg(mse_at(net, &pr, want) < mse0, "the oracle's step does not lower the MSE: pick another case");

    bp_lm_config c = bp_lm_defaults();
    c.max_iter = 1;
    c.mu = mu;
    c.block = _i == 0 ? 0 : 2;
    bp_lm_report r;
    NT_OK(bp_lm_fit(net, pr.n, pr.X, pr.n_in, pr.T, pr.n_out, &c, &r));
    const double *got = bp_net_params(net);
    ck_assert_int_eq(r.iterations, 1);
    ck_assert_int_eq(r.stop, BP_LM_MAX_ITER);
    ck_assert_double_eq_tol(r.mu, mu * c.mu_dec, 1e-15);
    const double perr = nt_err(got, want, (size_t)o.P), serr = step_err(got, want, o.p0, o.P);
    ck_assert_msg(perr <= 1e-9 && serr <= 1e-6, "block %d: parameters differ by %.3g, the step by %.3g", (int)c.block,
                  perr, serr);
    ck_assert_double_eq_tol(r.mse, mse_d(net, &pr), 1e-15);
    free(want);
    free_oracle(&o);
    bp_net_destroy(net);
    free_problem(&pr);
}
END_TEST

/* The rejected-step path. On the curve (40 points, 1-6-1 tanh, Glorot seed 1) the first iteration
 * is accepted at once (mu 1e-3 -> 1e-4) and the second is not: from there, the oracle's step at
 * mu 1e-4 raises the MSE. bp_lm_fit then solves again from the same point with mu x mu_inc, as
 * often as needed: the parameters after that iteration equal the oracle's step at the first mu
 * mu0 mu_inc^k that lowers the MSE (k >= 1), and mu comes back as mu0 mu_inc^k mu_dec. */
START_TEST(test_rejected_step_is_retried)
{
    problem pr = curve(40, 0, 1);
    bp_net *net = make_net(BP_F64, 1, 6, 1, 1, 16, NULL);
    bp_lm_config c = bp_lm_defaults();
    bp_lm_report r;
    c.max_iter = 1;
    NT_OK(bp_lm_fit(net, pr.n, pr.X, pr.n_in, pr.T, pr.n_out, &c, &r));
    ck_assert_msg(r.mu == c.mu * c.mu_dec, "the first iteration was not accepted at once: mu %g", r.mu);
    oracle o = make_oracle(net, &pr);
    const double mu0 = r.mu, mse0 = mse_d(net, &pr);
    double *want = tu_alloc((size_t)o.P), mu = mu0;
    int k = 0;
    for (; k < 30; k++, mu *= 10) {
        oracle_step(&o, mu, want);
        if (mse_at(net, &pr, want) < mse0)
            break;
    }
    ck_assert_msg(k >= 1 && k < 30, "the oracle accepted after %d rejections: pick another case", k);

    c.mu = mu0;
    NT_OK(bp_lm_fit(net, pr.n, pr.X, pr.n_in, pr.T, pr.n_out, &c, &r));
    ck_assert_int_eq(r.iterations, 1);
    ck_assert_msg(tu_rel(r.mu, mu * c.mu_dec, 1e-300) <= 1e-12, "mu %.17g, expected %.17g (%d rejections)", r.mu,
                  mu * c.mu_dec, k);
    const double serr = step_err(bp_net_params(net), want, o.p0, o.P);
    ck_assert_msg(serr <= 1e-6, "the step after %d rejections differs by %.3g", k, serr);
    ck_assert_msg(r.mse < mse0, "the MSE rose: %g -> %g", mse0, r.mse);
    free(want);
    free_oracle(&o);
    bp_net_destroy(net);
    free_problem(&pr);
}
END_TEST

/* ---- stop reasons ----------------------------------------------------------------------------- */

/* What the callback saw. */
typedef struct seen {
    int calls, stop_at;          /* stop_at: return 1 at this call (0: never) */
    double mse[1024], val[1024], mu[1024];
    int iterations[1024];
    nt_counter *counter;         /* allocations must not grow during the fit */
    long allocs_at_first;
} seen;

static int on_iter(const bp_lm_report *r, void *ctx)
{
    seen *s = ctx;
    ck_assert_int_lt(s->calls, 1024);
    s->mse[s->calls] = r->mse;
    s->val[s->calls] = r->val_mse;
    s->mu[s->calls] = r->mu;
    s->iterations[s->calls] = r->iterations;
    ck_assert_int_eq(r->stop, BP_LM_RUNNING);
    if (s->counter) {
        if (s->calls == 0)
            s->allocs_at_first = s->counter->allocs;
        ck_assert_msg(s->counter->allocs == s->allocs_at_first, "an allocation inside iteration %d", r->iterations);
    }
    s->calls++;
    return s->stop_at && s->calls == s->stop_at;
}

/* max_iter: exactly that many iterations, every one reported with a decreasing MSE; the final
 * grad_norm is the 2-norm of the MSE's gradient at the final parameters, as bp_net_loss_and_grad
 * gives it (relative 1e-10), and the final MSE is bp_net_eval_loss's. */
START_TEST(test_stop_max_iter)
{
    problem pr = curve(40, 0, 1);
    bp_net *net = make_net(BP_F64, 1, 6, 1, 3, 16, NULL);
    bp_lm_config c = bp_lm_defaults();
    seen s = {0};
    c.max_iter = 7;
    c.on_iter = on_iter;
    c.ctx = &s;
    bp_lm_report r;
    NT_OK(bp_lm_fit(net, pr.n, pr.X, pr.n_in, pr.T, pr.n_out, &c, &r));
    ck_assert_int_eq(r.stop, BP_LM_MAX_ITER);
    ck_assert_int_eq(r.iterations, 7);
    ck_assert_int_eq(s.calls, 7);
    for (int i = 0; i < s.calls; i++) {
        ck_assert_int_eq(s.iterations[i], i + 1);
        ck_assert(isnan(s.val[i]));
        ck_assert_msg(i == 0 || s.mse[i] < s.mse[i - 1], "MSE rose at iteration %d", i + 1);
    }
    double loss, gn = 0;
    NT_OK(bp_net_loss_and_grad(net, pr.n, pr.X, pr.n_in, pr.T, pr.n_out, &loss));
    const double *g = bp_net_grads(net);
    for (size_t q = 0; q < bp_net_n_params(net); q++)
        gn += g[q] * g[q];
    gn = sqrt(gn);
    ck_assert_msg(tu_rel(r.grad_norm, gn, 1e-300) <= 1e-10, "grad_norm %.17g, the MSE's gradient %.17g", r.grad_norm,
                  gn);
    ck_assert_msg(tu_rel(r.mse, loss, 1e-300) <= 1e-12, "mse %.17g, bp_net_loss_and_grad %.17g", r.mse, loss);
    ck_assert(r.seconds >= 0 && r.seconds < 60);
    bp_net_destroy(net);
    free_problem(&pr);
}
END_TEST

/* goal: stops at the first iteration whose MSE is <= goal; the one before was above it. */
START_TEST(test_stop_goal)
{
    problem pr = curve(40, 0, 1);
    bp_net *net = make_net(BP_F64, 1, 6, 1, 3, 16, NULL);
    bp_lm_config c = bp_lm_defaults();
    seen s = {0};
    c.goal = 1e-3;
    c.on_iter = on_iter;
    c.ctx = &s;
    bp_lm_report r;
    NT_OK(bp_lm_fit(net, pr.n, pr.X, pr.n_in, pr.T, pr.n_out, &c, &r));
    ck_assert_int_eq(r.stop, BP_LM_GOAL);
    ck_assert_msg(r.mse <= c.goal, "mse %g > goal", r.mse);
    ck_assert_int_ge(r.iterations, 2);
    ck_assert_int_eq(s.calls, r.iterations);
    ck_assert_msg(s.mse[s.calls - 2] > c.goal, "the iteration before already reached the goal");
    ck_assert_double_eq_tol(r.mse, mse_d(net, &pr), 1e-15);
    /* A start that already meets the goal: no iteration. */
    void *p0 = nt_params_d(net);
    c.goal = 1;
    NT_OK(bp_lm_fit(net, pr.n, pr.X, pr.n_in, pr.T, pr.n_out, &c, &r));
    ck_assert_int_eq(r.stop, BP_LM_GOAL);
    ck_assert_int_eq(r.iterations, 0);
    ck_assert_mem_eq(bp_net_params(net), p0, bp_net_n_params(net) * sizeof(double));
    free(p0);
    bp_net_destroy(net);
    free_problem(&pr);
}
END_TEST

/* A linear model (one identity layer) on noisy linear data: LM reaches the least-squares solution
 * in a few iterations and stops on min_grad there, with grad_norm below it; the parameters equal
 * the normal equations' solution. With min_grad 0 instead, the steps at the optimum cannot lower
 * the MSE, mu rises past mu_max and the fit stops on BP_LM_MU_MAX at the same parameters. */
START_TEST(test_stop_min_grad_and_mu_max)
{
    enum { N = 30, NIN = 3 };
    tu_rng rng = tu_rng_make(4);
    problem pr = {N, NIN, 1, tu_alloc(N * NIN), tu_alloc(N)};
    tu_fill(&rng, pr.X, N, NIN, NIN, -1, 1);
    for (int i = 0; i < N; i++)
        pr.T[i] = 0.5 * pr.X[i * NIN] - 1.5 * pr.X[i * NIN + 1] + 0.25 * pr.X[i * NIN + 2] + 0.3 +
                  0.1 * tu_unif(&rng, -1, 1);
    const bp_layer_spec layer = {1, BP_ACT_IDENTITY, 0};
    bp_net *net = nt_net(BP_F64, NIN, 1, &layer, BP_LOSS_MSE, NULL);
    NT_OK(bp_net_plan(net, 8));
    /* The normal equations of (w, b), solved here. */
    double M[16] = {0}, b[4] = {0}, want[4];
    for (int i = 0; i < N; i++) {
        const double x[4] = {pr.X[i * NIN], pr.X[i * NIN + 1], pr.X[i * NIN + 2], 1};
        for (int a = 0; a < 4; a++) {
            b[a] += x[a] * pr.T[i];
            for (int d = 0; d < 4; d++)
                M[a * 4 + d] += x[a] * x[d];
        }
    }
    gauss_solve(4, M, b, want);

    bp_lm_config c = bp_lm_defaults();
    bp_lm_report r;
    NT_OK(bp_lm_fit(net, pr.n, pr.X, pr.n_in, pr.T, pr.n_out, &c, &r));
    ck_assert_int_eq(r.stop, BP_LM_MIN_GRAD);
    ck_assert_msg(r.grad_norm < c.min_grad, "grad_norm %g", r.grad_norm);
    ck_assert_int_le(r.iterations, 10);
    ck_assert_msg(nt_err(bp_net_params(net), want, 4) <= 1e-6, "not the least-squares solution: %.3g",
                  nt_err(bp_net_params(net), want, 4));
    const double best = r.mse;

    c.min_grad = 0;
    NT_OK(bp_lm_fit(net, pr.n, pr.X, pr.n_in, pr.T, pr.n_out, &c, &r));
    ck_assert_int_eq(r.stop, BP_LM_MU_MAX);
    ck_assert_msg(r.mu > c.mu_max, "mu %g <= mu_max", r.mu);
    ck_assert_msg(nt_err(bp_net_params(net), want, 4) <= 1e-12, "not at the least-squares solution: %.3g",
                  nt_err(bp_net_params(net), want, 4));
    ck_assert_msg(r.mse <= best && tu_rel(r.mse, best, 1e-300) <= 1e-12, "mse %.17g, before %.17g", r.mse, best);
    ck_assert_double_eq_tol(r.mse, mse_d(net, &pr), 1e-15);
    bp_net_destroy(net);
    free_problem(&pr);
}
END_TEST

/* A validation set: 1-12-1 tanh fitted to 16 very noisy samples of the curve, validated on the
 * clean curve. It overfits: the validation MSE stops improving, the fit stops after max_fail
 * iterations without a better one, and the parameters of the best validation MSE are restored:
 * the network's validation MSE then equals the report's, which is the smallest the callback saw
 * (and below the start's). The report's mse is the training MSE of those parameters. */
START_TEST(test_stop_val_fail_restores_best)
{
    problem tr = curve(16, 0.6, 2), va = curve(50, 0, 3);
    bp_net *net = make_net(BP_F64, 1, 12, 1, 8, 16, NULL);
    const double val0 = mse_d(net, &va);
    bp_lm_config c = bp_lm_defaults();
    seen s = {0};
    c.n_val = va.n;
    c.X_val = va.X;
    c.ldx_val = 1;
    c.T_val = va.T;
    c.ldt_val = 1;
    c.max_fail = 4;
    c.on_iter = on_iter;
    c.ctx = &s;
    bp_lm_report r;
    NT_OK(bp_lm_fit(net, tr.n, tr.X, tr.n_in, tr.T, tr.n_out, &c, &r));
    ck_assert_int_eq(r.stop, BP_LM_VAL_FAIL);
    double best = val0;
    int best_at = 0;
    for (int i = 0; i < s.calls; i++)
        if (s.val[i] < best) {
            best = s.val[i];
            best_at = i + 1;
        }
    ck_assert_msg(best_at >= 1, "the validation MSE never improved on the start's: pick another case");
    ck_assert_int_eq(r.iterations - best_at, c.max_fail);
    ck_assert_msg(r.val_mse == best, "report val_mse %.17g, best seen %.17g", r.val_mse, best);
    const double now = mse_d(net, &va);
    ck_assert_msg(tu_rel(now, best, 1e-300) <= 1e-13, "the network's validation MSE %.17g, best %.17g", now, best);
    ck_assert_double_eq_tol(r.mse, mse_d(net, &tr), 1e-15);
    ck_assert_msg(r.mse == s.mse[best_at - 1], "training MSE %.17g, at the best iteration %.17g", r.mse,
                  s.mse[best_at - 1]);
    bp_net_destroy(net);
    free_problem(&tr);
    free_problem(&va);
}
END_TEST

/* The callback stops the fit (BP_LM_CALLBACK) where it returns nonzero. The fit allocates exactly
 * once, through the network's allocator, and nothing during the iterations. */
START_TEST(test_stop_callback_and_allocations)
{
    problem pr = curve(40, 0, 1);
    nt_counter cnt = nt_counter_make();
    const bp_allocator a = nt_allocator(&cnt);
    bp_net *net = make_net(BP_F64, 1, 6, 1, 3, 16, &a);
    bp_lm_config c = bp_lm_defaults();
    seen s = {0};
    s.stop_at = 3;
    s.counter = &cnt;
    c.on_iter = on_iter;
    c.ctx = &s;
    const long allocs = cnt.allocs, frees = cnt.frees;
    bp_lm_report r;
    NT_OK(bp_lm_fit(net, pr.n, pr.X, pr.n_in, pr.T, pr.n_out, &c, &r));
    ck_assert_int_eq(r.stop, BP_LM_CALLBACK);
    ck_assert_int_eq(r.iterations, 3);
    ck_assert_int_eq(s.calls, 3);
    ck_assert_int_eq(cnt.allocs - allocs, 1);
    ck_assert_int_eq(cnt.frees - frees, 1);
    ck_assert_int_eq(s.allocs_at_first, allocs + 1);
    ck_assert_double_eq(r.mse, s.mse[2]);
    bp_net_destroy(net);
    ck_assert_int_eq(cnt.allocs, cnt.frees);
    free_problem(&pr);
}
END_TEST

/* ---- sizes, refusals, errors --------------------------------------------------------------- */

/* Above max_bytes: BP_ERR_OVERFLOW with a message naming P and the bytes, before anything is
 * allocated; the parameters are unchanged. A failing allocator gives BP_ERR_NOMEM, likewise. */
START_TEST(test_size_guard)
{
    problem pr = curve(40, 0, 1);
    nt_counter cnt = nt_counter_make();
    const bp_allocator a = nt_allocator(&cnt);
    bp_net *net = make_net(BP_F64, 1, 20, 1, 3, 16, &a);  /* 61 parameters */
    double *p0 = nt_params_d(net);
    bp_lm_config c = bp_lm_defaults();
    c.max_bytes = 61 * 61 * 8;  /* the system alone, without the work space */
    const long allocs = cnt.allocs;
    bp_lm_report r = {.iterations = -7};
    NT_EXPECT(bp_lm_fit(net, pr.n, pr.X, pr.n_in, pr.T, pr.n_out, &c, &r), BP_ERR_OVERFLOW, "bp_lm_fit",
              "61 parameters: the 61 x 61 system");
    ck_assert_msg(strstr(bp_last_error(), "bytes") && strstr(bp_last_error(), "max_bytes = 29768"), "%s",
                  bp_last_error());
    ck_assert_int_eq(cnt.allocs, allocs);
    ck_assert_int_eq(r.iterations, -7);
    ck_assert_mem_eq(bp_net_params(net), p0, 61 * sizeof(double));
    /* The same network fits with room for it. */
    c.max_bytes = 200000;
    c.max_iter = 2;
    NT_OK(bp_lm_fit(net, pr.n, pr.X, pr.n_in, pr.T, pr.n_out, &c, &r));
    /* Out of memory. */
    memcpy(bp_net_params(net), p0, 61 * sizeof(double));
    cnt.fail_after = cnt.allocs;
    NT_EXPECT(bp_lm_fit(net, pr.n, pr.X, pr.n_in, pr.T, pr.n_out, &c, &r), BP_ERR_NOMEM, "bp_lm_fit", "61 x 61");
    ck_assert_int_eq(cnt.refused, 1);
    ck_assert_mem_eq(bp_net_params(net), p0, 61 * sizeof(double));
    cnt.fail_after = -1;
    free(p0);
    bp_net_destroy(net);
    free_problem(&pr);
}
END_TEST

/* Every bad argument is refused with its name in the message, and the parameters are unchanged;
 * a NaN target or validation target (a non-finite MSE at the start) is BP_ERR_NONFINITE, with the
 * parameters unchanged too. */
START_TEST(test_refusals)
{
    problem pr = curve(20, 0, 1);
    bp_net *net = make_net(BP_F64, 1, 4, 1, 3, 8, NULL);
    double *p0 = nt_params_d(net);
    const size_t bytes = bp_net_n_params(net) * sizeof(double);
    const bp_lm_config d = bp_lm_defaults();
    bp_lm_report r;
#define FIT(net_, n_, X_, ldx_, T_, ldt_, c_) bp_lm_fit(net_, n_, X_, ldx_, T_, ldt_, c_, &r)
    NT_EXPECT(FIT(NULL, 20, pr.X, 1, pr.T, 1, &d), BP_ERR_ARG, "bp_lm_fit", "net is NULL");
    NT_EXPECT(FIT(net, 0, pr.X, 1, pr.T, 1, &d), BP_ERR_ARG, "bp_lm_fit", "n (0) < 1");
    NT_EXPECT(FIT(net, 20, NULL, 1, pr.T, 1, &d), BP_ERR_ARG, "bp_lm_fit", "X");
    NT_EXPECT(FIT(net, 20, pr.X, 0, pr.T, 1, &d), BP_ERR_ARG, "bp_lm_fit", "ldx");
    NT_EXPECT(FIT(net, 20, pr.X, 1, NULL, 1, &d), BP_ERR_ARG, "bp_lm_fit", "T is NULL");
    NT_EXPECT(FIT(net, 20, pr.X, 1, pr.T, 0, &d), BP_ERR_ARG, "bp_lm_fit", "ldt");
    struct { const char *what; bp_lm_config c; } bad[16];
    int nb = 0;
#define BAD(field, value, text) do { bad[nb].c = d; bad[nb].c.field = value; bad[nb++].what = text; } while (0)
    BAD(max_iter, -1, "config->max_iter (-1)");
    BAD(goal, -1, "config->goal");
    BAD(goal, NAN, "config->goal");
    BAD(min_grad, -1e-9, "config->min_grad");
    BAD(mu, 0, "config->mu (0)");
    BAD(mu, INFINITY, "config->mu (inf)");
    BAD(mu_dec, 1, "config->mu_dec (1)");
    BAD(mu_dec, 0, "config->mu_dec (0)");
    BAD(mu_inc, 1, "config->mu_inc (1)");
    BAD(mu_max, 1e-4, "config->mu_max (0.0001)");
    BAD(block, -1, "config->block (-1)");
    BAD(n_val, -1, "config->n_val (-1)");
    BAD(n_val, 5, "config->X_val is NULL");
    for (int i = 0; i < nb; i++)
        NT_EXPECT(FIT(net, 20, pr.X, 1, pr.T, 1, &bad[i].c), BP_ERR_ARG, "bp_lm_fit", bad[i].what);
    bp_lm_config c = d;
    c.n_val = 5;
    c.X_val = pr.X;
    c.ldx_val = 1;
    c.T_val = pr.T;
    c.ldt_val = 1;
    c.max_fail = 0;
    NT_EXPECT(FIT(net, 20, pr.X, 1, pr.T, 1, &c), BP_ERR_ARG, "bp_lm_fit", "config->max_fail (0)");
    c.max_fail = 6;
    c.T_val = NULL;
    NT_EXPECT(FIT(net, 20, pr.X, 1, pr.T, 1, &c), BP_ERR_ARG, "bp_lm_fit", "targets");
    c.T_val = pr.T;
    c.ldx_val = 0;
    NT_EXPECT(FIT(net, 20, pr.X, 1, pr.T, 1, &c), BP_ERR_ARG, "bp_lm_fit", "ldx");
    ck_assert_mem_eq(bp_net_params(net), p0, bytes);

    /* Non-finite values at the start. */
    double *Tn = tu_dup(pr.T, 20);
    Tn[7] = NAN;
    NT_EXPECT(FIT(net, 20, pr.X, 1, Tn, 1, &d), BP_ERR_NONFINITE, "bp_lm_fit", "training MSE");
    c.ldx_val = 1;
    c.T_val = Tn;
    c.n_val = 10;
    NT_EXPECT(FIT(net, 20, pr.X, 1, pr.T, 1, &c), BP_ERR_NONFINITE, "bp_lm_fit", "validation MSE");
    ck_assert_mem_eq(bp_net_params(net), p0, bytes);
    free(Tn);

    /* Other losses, and a network without a plan. */
    const bp_layer_spec layers[2] = {{4, BP_ACT_TANH, 0}, {2, BP_ACT_IDENTITY, 0}};
    bp_net *xent = nt_net(BP_F64, 1, 2, layers, BP_LOSS_SOFTMAX_XENT, NULL), *bce = nt_net(BP_F64, 1, 2, layers,
                                                                                         BP_LOSS_SIGMOID_BCE, NULL);
    NT_OK(bp_net_plan(xent, 8));
    NT_OK(bp_net_plan(bce, 8));
    NT_EXPECT(FIT(xent, 20, pr.X, 1, pr.T, 2, &d), BP_ERR_ARG, "bp_lm_fit", "BP_LOSS_MSE");
    NT_EXPECT(FIT(bce, 10, pr.X, 1, pr.T, 2, &d), BP_ERR_ARG, "bp_lm_fit", "BP_LOSS_MSE");
    bp_net *unplanned = nt_net(BP_F64, 1, 2, layers, BP_LOSS_MSE, NULL);
    NT_EXPECT(FIT(unplanned, 10, pr.X, 1, pr.T, 2, &d), BP_ERR_ARG, "bp_lm_fit", "plan");
#undef BAD
#undef FIT
    /* config NULL is the defaults; report NULL is allowed. */
    NT_OK(bp_lm_fit(net, 20, pr.X, 1, pr.T, 1, NULL, NULL));
    ck_assert_msg(mse_d(net, &pr) < 1e-3, "the default fit did not converge");
    bp_net_destroy(unplanned);
    bp_net_destroy(xent);
    bp_net_destroy(bce);
    free(p0);
    bp_net_destroy(net);
    free_problem(&pr);
}
END_TEST

/* bp_lm_defaults: MATLAB trainlm's values. */
START_TEST(test_defaults)
{
    const bp_lm_config c = bp_lm_defaults();
    ck_assert_int_eq(c.max_iter, 1000);
    ck_assert(c.goal == 0 && c.min_grad == 1e-7 && c.mu == 1e-3 && c.mu_dec == 0.1 && c.mu_inc == 10 &&
              c.mu_max == 1e10);
    ck_assert_int_eq(c.max_fail, 6);
    ck_assert(c.n_val == 0 && c.block == 0 && c.max_bytes == 0 && c.on_iter == NULL);
}
END_TEST

#ifdef OPENBLAS_VERSION
static int note_blas_threads(const bp_lm_report *r, void *ctx)
{
    (void)r;
    int *seen = ctx;
    *seen = openblas_get_num_threads() > *seen ? openblas_get_num_threads() : *seen;
    return 0;
}
#endif

/* OpenBLAS runs on one thread during the fit (the callback sees 1) and has the host's count
 * again when it returns, also after an error, on a network of 1 and of 2 threads. */
START_TEST(test_blas_threads)
{
#ifdef OPENBLAS_VERSION
    problem pr = curve(40, 0, 1);
    static const int host[] = {2, 3, 1};
    for (int h = 0; h < 3; h++)
        for (int threads = 1; threads <= 2; threads++) {
            openblas_set_num_threads(host[h]);
            bp_net *net = make_net(BP_F64, 1, 6, 1, 3, 16, NULL);
            NT_OK(bp_net_set_threads(net, threads));
            bp_lm_config c = bp_lm_defaults();
            int seen = 0;
            c.max_iter = 3;
            c.on_iter = note_blas_threads;
            c.ctx = &seen;
            NT_OK(bp_lm_fit(net, pr.n, pr.X, pr.n_in, pr.T, pr.n_out, &c, NULL));
            ck_assert_int_eq(seen, 1);
            ck_assert_int_eq(openblas_get_num_threads(), host[h]);
            double *Tn = tu_dup(pr.T, (size_t)pr.n);
            Tn[3] = NAN;
            ck_assert_int_eq(bp_lm_fit(net, pr.n, pr.X, pr.n_in, Tn, pr.n_out, &c, NULL), BP_ERR_NONFINITE);
            ck_assert_int_eq(openblas_get_num_threads(), host[h]);
            free(Tn);
            bp_net_destroy(net);
        }
    openblas_set_num_threads(2);
    free_problem(&pr);
#endif
}
END_TEST

/* ---- convergence ------------------------------------------------------------------------------- */

/* A float network (1-10-1 tanh on 60 points of the curve), its Jacobian converted and everything
 * accumulated in double, converges as the double one does: MSE below 1e-5 within 200 iterations,
 * and its parameters stay float-rounded values it can hold. The same start in double ends within
 * a factor of 10 of the float fit's MSE or below it. */
START_TEST(test_float_network)
{
    problem pr = curve(60, 0, 1);
    bp_net *net = make_net(BP_F32, 1, 10, 1, 6, 32, NULL);
    float *X = nt_from_d(BP_F32, pr.X, 60), *T = nt_from_d(BP_F32, pr.T, 60);
    bp_lm_config c = bp_lm_defaults();
    c.max_iter = 200;
    c.goal = 1e-5;
    bp_lm_report r;
    NT_OK(bp_lm_fit(net, 60, X, 1, T, 1, &c, &r));
    ck_assert_msg(r.stop == BP_LM_GOAL && r.mse <= 1e-5, "float: stop %d after %d iterations at MSE %g", r.stop,
                  r.iterations, r.mse);
    double loss;
    NT_OK(bp_net_eval_loss(net, 60, X, 1, T, 1, &loss));
    ck_assert_msg(tu_rel(loss, r.mse, 1e-300) <= 1e-5, "eval_loss %g, report %g", loss, r.mse);
    bp_net *dnet = make_net(BP_F64, 1, 10, 1, 6, 32, NULL);
    bp_lm_report rd;
    NT_OK(bp_lm_fit(dnet, 60, pr.X, 1, pr.T, 1, &c, &rd));
    ck_assert_int_eq(rd.stop, BP_LM_GOAL);
    ck_assert_msg(abs(rd.iterations - r.iterations) <= r.iterations / 2 + 5, "double %d iterations, float %d",
                  rd.iterations, r.iterations);
    bp_net_destroy(dnet);
    free(X);
    free(T);
    bp_net_destroy(net);
    free_problem(&pr);
}
END_TEST

/* The curve y = sin(3x) + 0.3 cos(9x), 200 points in [-1, 1], network 1-20-1 tanh, Glorot-uniform
 * (seed 1): MSE 1e-6 within 300 iterations (MATLAB trainlm's problem; bench-lm times it). */
START_TEST(test_curve)
{
    problem pr = curve(200, 0, 1);
    bp_net *net = make_net(BP_F64, 1, 20, 1, 1, 256, NULL);
    bp_lm_config c = bp_lm_defaults();
    c.max_iter = 300;
    c.goal = 1e-6;
    bp_lm_report r;
    NT_OK(bp_lm_fit(net, pr.n, pr.X, pr.n_in, pr.T, pr.n_out, &c, &r));
    ck_assert_msg(r.stop == BP_LM_GOAL && r.mse <= 1e-6 && r.iterations <= 300,
                  "stop %d after %d iterations at MSE %g", r.stop, r.iterations, r.mse);
    ck_assert_double_eq_tol(r.mse, mse_d(net, &pr), 1e-15);
    bp_net_destroy(net);
    free_problem(&pr);
}
END_TEST

static Suite *lm_suite(void)
{
    Suite *s = suite_create("lm");
    TCase *t = tcase_create("lm");
    tcase_add_loop_test(t, test_one_step_against_differences, 0, 2);
    tcase_add_test(t, test_rejected_step_is_retried);
    tcase_add_test(t, test_stop_max_iter);
    tcase_add_test(t, test_stop_goal);
    tcase_add_test(t, test_stop_min_grad_and_mu_max);
    tcase_add_test(t, test_stop_val_fail_restores_best);
    tcase_add_test(t, test_stop_callback_and_allocations);
    tcase_add_test(t, test_size_guard);
    tcase_add_test(t, test_refusals);
    tcase_add_test(t, test_defaults);
    tcase_add_test(t, test_blas_threads);
    tcase_add_test(t, test_float_network);
    tcase_add_test(t, test_curve);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run_suite(lm_suite());
}
