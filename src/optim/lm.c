/* SPDX-License-Identifier: MIT */
/* lm.c: Levenberg-Marquardt for MSE networks (bp_lm_fit): J^T J and J^T e accumulated block by block
 * of samples from the parameter Jacobian, the damped step by a LAPACK Cholesky solve, in double. */
#define _POSIX_C_SOURCE 200809L  /* cblas.h: BLIS's needs the pthread types */
#include <limits.h>
#include <math.h>
#include <string.h>
#include <cblas.h>
#include <lapacke.h>
#include "backprop/train.h"
#include "net/net_exec.h"
#include "net/dp.h"

/* mu never falls below this: from 0, raising it by mu_inc would never leave 0. */
#define MU_MIN 1e-20
/* The default block keeps its n_out x P doubles of J near this many bytes. */
#define BLOCK_BYTES ((size_t)1 << 20)
/* Regions of the one allocation start on this boundary. */
#define ALIGN 64

/* The working set of a fit. A is P x P, column-major (symmetric, so the layout only names the
 * triangles): its upper triangle holds J^T J, built once per iteration, and its lower triangle
 * and diagonal the Cholesky factor of J^T J + mu I, rebuilt for each mu from the upper triangle
 * and `diag`, so a rejected step is solved again without forming J^T J again. */
typedef struct lm {
    bp_net *net;
    const bp_lm_config *c;
    bp_int n, ldx, ldt, n_out, B;  /* B: samples per block */
    bp_int P;
    int has_val;                   /* a validation set: the best parameters are kept */
    const void *X, *T;
    double *A, *diag, *g, *d;      /* diag: J^T J's diagonal; g = J^T e; d: the step */
    double *J;                     /* a block: B n_out rows of J, P wide */
    double *e;                     /* the n x n_out residuals of the last training evaluation */
    int e_current;                 /* e is that of the accepted point (a rejected trial overwrote it) */
    void *Jf;                      /* a float network's block as computed, else NULL */
    void *Y;                       /* a block of outputs, B x n_out of the dtype */
    void *cur, *orig, *best;       /* parameters: the accepted point, at entry, the best validation's (or NULL) */
    double t0;
} lm;

static bp_status check_config(const char *fn, const bp_net *net, const bp_lm_config *c)
{
    BP_REQUIRE(c->max_iter >= 0, BP_ERR_ARG, "config->max_iter (%d) < 0", c->max_iter);
    BP_REQUIRE(isfinite(c->goal) && c->goal >= 0, BP_ERR_ARG, "config->goal (%g) is not finite and >= 0", c->goal);
    BP_REQUIRE(isfinite(c->min_grad) && c->min_grad >= 0, BP_ERR_ARG, "config->min_grad (%g) is not finite and >= 0",
               c->min_grad);
    BP_REQUIRE(isfinite(c->mu) && c->mu > 0, BP_ERR_ARG, "config->mu (%g) is not finite and > 0", c->mu);
    BP_REQUIRE(c->mu_dec > 0 && c->mu_dec < 1, BP_ERR_ARG, "config->mu_dec (%g) is not in (0, 1)", c->mu_dec);
    BP_REQUIRE(isfinite(c->mu_inc) && c->mu_inc > 1, BP_ERR_ARG, "config->mu_inc (%g) is not finite and > 1",
               c->mu_inc);
    BP_REQUIRE(isfinite(c->mu_max) && c->mu_max >= c->mu, BP_ERR_ARG,
               "config->mu_max (%g) is not finite and >= config->mu (%g)", c->mu_max, c->mu);
    BP_REQUIRE(c->block >= 0, BP_ERR_ARG, "config->block (%d) < 0", (int)c->block);
    BP_REQUIRE(c->n_val >= 0, BP_ERR_ARG, "config->n_val (%d) < 0", (int)c->n_val);
    if (c->n_val == 0)
        return BP_OK;
    BP_REQUIRE(c->max_fail >= 1, BP_ERR_ARG, "config->max_fail (%d) < 1", c->max_fail);
    BP_REQUIRE(c->X_val != NULL, BP_ERR_ARG, "config->X_val is NULL");
    TRY(bp__check_pass(fn, net, c->n_val, c->X_val, c->ldx_val));
    return bp__check_targets(fn, net, c->n_val, c->T_val, c->ldt_val, 0);
}

bp_lm_config bp_lm_defaults(void)
{
    const bp_lm_config c = {.max_iter = 1000, .goal = 0, .min_grad = 1e-7, .mu = 1e-3, .mu_dec = 0.1,
                            .mu_inc = 10, .mu_max = 1e10, .max_fail = 6};
    return c;
}

/* ---- the one allocation ------------------------------------------------------------------ */

/* Adds a region of count elements of size bytes, aligned, to *total; 0 on overflow. */
static int add_region(size_t *total, size_t count, size_t size)
{
    if (count && size > SIZE_MAX / count)
        return 0;
    const size_t bytes = (count * size + ALIGN - 1) / ALIGN * ALIGN;
    if (bytes < count * size || *total > SIZE_MAX - bytes)
        return 0;
    *total += bytes;
    return 1;
}

/* Takes the next region of count elements of size bytes from *at. */
static void *take(char **at, size_t count, size_t size)
{
    void *p = *at;
    *at += (count * size + ALIGN - 1) / ALIGN * ALIGN;
    return p;
}

/* The bytes of the whole working set (with base NULL), or its regions carved from base. 0 on
 * overflow. */
static size_t layout(lm *w, char *base)
{
    const size_t P = (size_t)w->P, rows = (size_t)w->B * (size_t)w->n_out, es = w->net->esize;
    const int f32 = w->net->dtype == BP_F32;
    const size_t counts[] = {P * P, P, P, P, rows * P, (size_t)w->n * (size_t)w->n_out, f32 ? rows * P : 0, rows,
                             P, P, w->has_val ? P : 0};
    const size_t sizes[] = {8, 8, 8, 8, 8, 8, es, es, es, es, es};
    size_t total = 0;
    if (P > SIZE_MAX / P)
        return 0;
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++)
        if (!add_region(&total, counts[i], sizes[i]))
            return 0;
    if (!base)
        return total;
    void **out[] = {(void **)&w->A, (void **)&w->diag, (void **)&w->g, (void **)&w->d, (void **)&w->J,
                    (void **)&w->e, &w->Jf, &w->Y, &w->cur, &w->orig, &w->best};
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++)
        *out[i] = counts[i] ? take(&base, counts[i], sizes[i]) : NULL;
    return total;
}

/* Samples per block: the configuration's, or as many as keep a block of J near BLOCK_BYTES but
 * give it at least P / 4 rows (every block's rank update reads and writes the whole P x P
 * triangle: thin blocks would make it memory-bound); at most n, and few enough that the block's
 * rows fit an int. */
static bp_int block_size(const lm *w)
{
    const size_t P = (size_t)w->P, n_out = (size_t)w->n_out;
    size_t B = BLOCK_BYTES / sizeof(double) / (n_out * P);
    if (B * n_out < P / 4)
        B = (P / 4 + n_out - 1) / n_out;
    if (w->c->block > 0)
        B = (size_t)w->c->block;
    if (B < 1)
        B = 1;
    if (B > (size_t)w->n)
        B = (size_t)w->n;
    if (B > (size_t)(INT_MAX / w->n_out))
        B = (size_t)(INT_MAX / w->n_out);
    return (bp_int)B;
}

/* ---- passes ------------------------------------------------------------------------------ */

/* The sum of squares of the residuals Y - T of the m samples at row `start` of X and T (the
 * outputs in w->Y), and the residuals into e (m x n_out; NULL: not kept). */
static bp_status residuals(lm *w, const void *X, bp_int ldx, const void *T, bp_int ldt, bp_int start, bp_int m,
                           double *e, double *sumsq)
{
    bp_net *net = w->net;
    const size_t es = net->esize;
    TRY(bp_net_forward(net, m, (const char *)X + (size_t)start * (size_t)ldx * es, ldx, w->Y, w->n_out));
    double s = 0;
    for (bp_int i = 0; i < m; i++)
        for (bp_int k = 0; k < w->n_out; k++) {
            const size_t q = (size_t)i * (size_t)w->n_out + (size_t)k;
            const size_t t = (size_t)(start + i) * (size_t)ldt + (size_t)k;
            const double r = bp__value_at(net->dtype, w->Y, q) - bp__value_at(net->dtype, T, t);
            if (e)
                e[q] = r;
            s += r * r;
        }
    *sumsq = s;
    return BP_OK;
}

/* The MSE of the network's current parameters over n samples of X and T; the residuals into e
 * (n x n_out; NULL: not kept). */
static bp_status mse_of(lm *w, bp_int n, const void *X, bp_int ldx, const void *T, bp_int ldt, double *e,
                        double *mse)
{
    double s = 0;
    for (bp_int start = 0; start < n; start += w->B) {
        const bp_int m = n - start < w->B ? n - start : w->B;
        double part;
        TRY(residuals(w, X, ldx, T, ldt, start, m, e ? e + (size_t)start * (size_t)w->n_out : NULL, &part));
        s += part;
    }
    *mse = s / ((double)n * (double)w->n_out);
    return BP_OK;
}

/* J of the m samples at row `start`, as doubles in w->J. */
static bp_status jacobian(lm *w, bp_int start, bp_int m)
{
    bp_net *net = w->net;
    const void *Xb = (const char *)w->X + (size_t)start * (size_t)w->ldx * net->esize;
    const size_t P = (size_t)w->P, count = (size_t)m * (size_t)w->n_out * P;
    if (!w->Jf)
        return bp_net_jacobian_params(net, m, Xb, w->ldx, w->J, P);
    TRY(bp_net_jacobian_params(net, m, Xb, w->ldx, w->Jf, P));
    const float *f = w->Jf;
    for (size_t q = 0; q < count; q++)
        w->J[q] = f[q];
    return BP_OK;
}

/* At the accepted point (the network's parameters, of MSE *mse): A's upper triangle = J^T J,
 * diag its diagonal, g = J^T e, block by block of samples. The residuals come from the
 * evaluation that accepted the point (computed here only at the start). */
static bp_status accumulate(lm *w, double *mse)
{
    const bp_int P = w->P;
    if (!w->e_current)
        TRY(mse_of(w, w->n, w->X, w->ldx, w->T, w->ldt, w->e, mse));
    w->e_current = 1;
    memset(w->g, 0, (size_t)P * sizeof *w->g);
    for (bp_int start = 0; start < w->n; start += w->B) {
        const bp_int m = w->n - start < w->B ? w->n - start : w->B, rows = m * w->n_out;
        TRY(jacobian(w, start, m));
        /* Row-major J (rows x P) is column-major J^T (P x rows): A += J^T J, upper triangle. */
        cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, P, rows, 1, w->J, P, start == 0 ? 0 : 1, w->A, P);
        cblas_dgemv(CblasRowMajor, CblasTrans, rows, P, 1, w->J, P, w->e + (size_t)start * (size_t)w->n_out, 1, 1,
                    w->g, 1);
    }
    for (bp_int i = 0; i < P; i++)
        w->diag[i] = w->A[(size_t)i * (size_t)P + (size_t)i];
    return BP_OK;
}

/* ---- the step ---------------------------------------------------------------------------- */

/* d = (J^T J + mu I)^-1 J^T e by Cholesky in A's lower triangle; 0 when J^T J + mu I is not
 * (numerically) positive definite. */
static int solve(lm *w, double mu)
{
    const size_t P = (size_t)w->P;
    double *A = w->A;
    for (size_t c = 0; c < P; c++) {
        A[c * P + c] = w->diag[c] + mu;
        for (size_t r = c + 1; r < P; r++)
            A[c * P + r] = A[r * P + c];  /* (r, c) of the lower triangle = (c, r) of the upper */
    }
    if (LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', w->P, A, w->P) != 0)
        return 0;
    memcpy(w->d, w->g, P * sizeof *w->d);
    return LAPACKE_dpotrs_work(LAPACK_COL_MAJOR, 'L', w->P, 1, A, w->P, w->d, w->P) == 0;
}

/* The network's parameters = the accepted point - d, in its dtype. */
static void set_trial(lm *w)
{
    bp_net *net = w->net;
    for (size_t q = 0; q < (size_t)w->P; q++) {
        const double v = bp__value_at(net->dtype, w->cur, q) - w->d[q];
        if (net->dtype == BP_F32)
            ((float *)net->params)[q] = (float)v;
        else
            ((double *)net->params)[q] = v;
    }
}

/* Solves and tries steps from the accepted point, raising mu until one lowers *mse: then the
 * network and w->cur hold it, *mse its MSE, mu is lowered and *accepted is 1. When mu exceeds
 * mu_max first, the network holds the accepted point again and *accepted is 0. */
static bp_status step(lm *w, double *mse, double *mu, int *accepted)
{
    const bp_lm_config *c = w->c;
    const size_t bytes = (size_t)w->P * w->net->esize;
    *accepted = 0;
    while (*mu <= c->mu_max) {
        if (solve(w, *mu)) {
            double trial;
            set_trial(w);
            TRY(mse_of(w, w->n, w->X, w->ldx, w->T, w->ldt, w->e, &trial));
            w->e_current = trial < *mse;
            if (w->e_current) {  /* false for a NaN */
                *mse = trial;
                *mu = fmax(*mu * c->mu_dec, MU_MIN);
                memcpy(w->cur, w->net->params, bytes);
                *accepted = 1;
                return BP_OK;
            }
        }
        *mu *= c->mu_inc;
    }
    memcpy(w->net->params, w->cur, bytes);
    return BP_OK;
}

/* ---- the iterations ---------------------------------------------------------------------- */

static bp_status val_mse(lm *w, double *v)
{
    const bp_lm_config *c = w->c;
    return mse_of(w, c->n_val, c->X_val, c->ldx_val, c->T_val, c->ldt_val, NULL, v);
}

/* The stop reason at an accepted point (r: its MSE, gradient norm, iterations), or BP_LM_RUNNING. */
static bp_lm_stop stop_at(const lm *w, const bp_lm_report *r)
{
    if (r->mse <= w->c->goal)
        return BP_LM_GOAL;
    if (r->grad_norm < w->c->min_grad)
        return BP_LM_MIN_GRAD;
    if (r->iterations >= w->c->max_iter)
        return BP_LM_MAX_ITER;
    return BP_LM_RUNNING;
}

/* The iterations, from the network's parameters (also in w->cur), until a stop; *r is the
 * state at the end, before any best-validation restore. *best_val: the best validation MSE. */
static bp_status iterate(const char *fn, lm *w, bp_lm_report *r, double *best_val)
{
    const bp_lm_config *c = w->c;
    const size_t bytes = (size_t)w->P * w->net->esize;
    int fails = 0;
    if (w->best) {
        TRY(val_mse(w, best_val));
        BP_REQUIRE(isfinite(*best_val), BP_ERR_NONFINITE, "the validation MSE at the start is not finite");
        memcpy(w->best, w->cur, bytes);
        r->val_mse = *best_val;
    }
    for (;;) {
        TRY(accumulate(w, &r->mse));
        r->grad_norm = 2 / ((double)w->n * (double)w->n_out) * cblas_dnrm2(w->P, w->g, 1);
        BP_REQUIRE(isfinite(r->mse), BP_ERR_NONFINITE, "the training MSE at the start is not finite");
        BP_REQUIRE(isfinite(r->grad_norm), BP_ERR_NONFINITE, "the gradient is not finite after %d iterations",
                   r->iterations);
        if ((r->stop = stop_at(w, r)) != BP_LM_RUNNING)
            return BP_OK;
        int accepted;
        TRY(step(w, &r->mse, &r->mu, &accepted));
        if (!accepted) {
            r->stop = BP_LM_MU_MAX;
            return BP_OK;
        }
        r->iterations++;
        if (w->best) {
            TRY(val_mse(w, &r->val_mse));
            fails = r->val_mse < *best_val ? 0 : fails + 1;
            if (fails == 0) {
                *best_val = r->val_mse;
                memcpy(w->best, w->cur, bytes);
            }
        }
        r->seconds = bp__seconds() - w->t0;
        if (c->on_iter && c->on_iter(r, c->ctx)) {
            r->stop = BP_LM_CALLBACK;
            return BP_OK;
        }
        if (w->best && fails >= c->max_fail) {
            r->stop = BP_LM_VAL_FAIL;
            return BP_OK;
        }
    }
}

/* Runs the fit on the allocated working set; on error the network gets its parameters back. */
static bp_status run(const char *fn, lm *w, bp_lm_report *r)
{
    bp_net *net = w->net;
    const size_t bytes = (size_t)w->P * net->esize;
    memcpy(w->orig, net->params, bytes);
    memcpy(w->cur, net->params, bytes);
    double best_val = NAN;
    bp_status st = iterate(fn, w, r, &best_val);
    if (st == BP_OK && w->best && memcmp(w->best, net->params, bytes) != 0) {
        memcpy(net->params, w->best, bytes);
        r->val_mse = best_val;
        st = mse_of(w, w->n, w->X, w->ldx, w->T, w->ldt, NULL, &r->mse);
    }
    if (st != BP_OK) {
        memcpy(net->params, w->orig, bytes);
        return bp__fail_as(st, fn);
    }
    r->seconds = bp__seconds() - w->t0;
    return BP_OK;
}

bp_status bp_lm_fit(bp_net *net, bp_int n, const void *X, bp_int ldx, const void *T, bp_int ldt,
                    const bp_lm_config *config, bp_lm_report *report)
{
    const char *fn = __func__;
    const double t0 = bp__seconds();
    const bp_lm_config defaults = bp_lm_defaults();
    const bp_lm_config *c = config ? config : &defaults;
    BP_REQUIRE(net != NULL, BP_ERR_ARG, "net is NULL");
    TRY(bp__dp_refuse(net, fn, "Levenberg-Marquardt"));
    BP_REQUIRE(bp__loss_squared(net->loss), BP_ERR_ARG,
               "the network's loss is not a squared error (BP_LOSS_MSE or BP_LOSS_LEAST_SQUARES): "
               "Levenberg-Marquardt fits a mean squared error");
    BP_REQUIRE(n >= 1, BP_ERR_ARG, "n (%d) < 1", (int)n);
    TRY(bp__check_pass(fn, net, n, X, ldx));
    BP_CHECK_PTR(T);
    TRY(bp__check_targets(fn, net, n, T, ldt, 0));
    TRY(check_config(fn, net, c));
    BP_REQUIRE(net->n_params <= (size_t)INT_MAX, BP_ERR_OVERFLOW, "%zu parameters: above the %d a LAPACK call takes",
               net->n_params, INT_MAX);

    lm w = {.net = net, .c = c, .n = n, .ldx = ldx, .ldt = ldt, .n_out = bp__n_out(net),
            .P = (bp_int)net->n_params, .X = X, .T = T, .t0 = t0};
    w.B = block_size(&w);
    w.has_val = c->n_val > 0;
    const size_t limit = c->max_bytes ? c->max_bytes : BP_LM_DEFAULT_MAX_BYTES;
    const size_t need = layout(&w, NULL);
    BP_REQUIRE(need != 0, BP_ERR_OVERFLOW, "%d parameters: the %d x %d system overflows the address space",
               (int)w.P, (int)w.P, (int)w.P);
    BP_REQUIRE(need <= limit, BP_ERR_OVERFLOW,
               "%d parameters: the %d x %d system and the work space (blocks of %d samples) need %zu bytes "
               "(%.1f MiB), above config->max_bytes = %zu",
               (int)w.P, (int)w.P, (int)w.P, (int)w.B, need, (double)need / 1048576.0, limit);
    char *base = bp__net_alloc(net, need);
    if (!base)
        return bp__fail(BP_ERR_NOMEM, fn, "allocating %zu bytes for the %d x %d system", need, (int)w.P, (int)w.P);
    layout(&w, base);
    bp_lm_report r = {.iterations = 0, .mse = NAN, .val_mse = NAN, .grad_norm = NAN, .mu = c->mu,
                      .stop = BP_LM_RUNNING, .seconds = 0};
    bp__blas_serial_begin();  /* one BLAS thread for the whole fit: see bp_lm_fit's documentation */
    const bp_status st = run(fn, &w, &r);
    bp__blas_serial_end();
    bp__net_free(net, base);
    if (st == BP_OK && report)
        *report = r;
    return st;
}
