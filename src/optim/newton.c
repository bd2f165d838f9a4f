/* SPDX-License-Identifier: MIT */
/* newton.c: multinomial logistic regression fitted by Newton's method / IRLS (bp_logreg_newton):
 * the Hessian by GEMMs over chunks of samples, the step by a LAPACK Cholesky solve, in double. */
#define _POSIX_C_SOURCE 200809L  /* cblas.h: BLIS's needs the pthread types */
#include <math.h>
#include <string.h>
#include <cblas.h>
#include <lapacke.h>
#include "backprop/train.h"
#include "net/net_exec.h"
#include "net/dp.h"

/* Newton's working set, in double, with the parameters ordered class by class,
 * theta[k (d + 1) + j], the bias as j = d (the network stores W then b). */
typedef struct newton {
    bp_int n, d, K;
    size_t P;               /* K (d + 1) */
    const void *X;
    bp_int ldx;
    bp_dtype dtype;
    const int32_t *labels;
    const double *stdz;     /* the network's standardisation, or NULL */
    double ridge;
    double *H, *g, *theta, *trial, *xt, *sx, *prob;  /* xt, sx: CHUNK x (d + 1); prob: CHUNK x K */
} newton;

enum { CHUNK = 256 };

/* Input value i (feature j) as the network's passes see it: standardised and rounded to the
 * dtype when the network standardises its inputs. */
static double input(const newton *w, size_t i, bp_int j)
{
    const double x = bp__value_at(w->dtype, w->X, i);
    if (!w->stdz)
        return x;
    const double v = bp__standardized(x, w->stdz[j], w->stdz[w->d + j]);
    return w->dtype == BP_F32 ? (double)(float)v : v;
}

/* Mean ridge-regularised loss at th; with g, also its gradient; with H, also the Hessian. */
static double newton_eval(const newton *w, const double *th, double *g, double *H)
{
    const bp_int d1 = w->d + 1, K = w->K;
    const size_t P = w->P;
    double loss = 0;
    if (g)
        memset(g, 0, P * sizeof *g);
    if (H)
        memset(H, 0, P * P * sizeof *H);
    for (bp_int start = 0; start < w->n; start += CHUNK) {
        const bp_int m = w->n - start < CHUNK ? w->n - start : CHUNK;
        for (bp_int r = 0; r < m; r++) {  /* x~ = (x, 1) in double */
            const size_t row = (size_t)(start + r) * (size_t)w->ldx;
            double *xt = w->xt + (size_t)r * (size_t)d1;
            for (bp_int j = 0; j < w->d; j++)
                xt[j] = input(w, row + (size_t)j, j);
            xt[w->d] = 1;
        }
        /* logits = x~ theta^T (m x K), then softmax rows */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, K, d1, 1, w->xt, d1, th, d1, 0, w->prob, K);
        for (bp_int r = 0; r < m; r++) {
            double *p = w->prob + (size_t)r * (size_t)K, zmax = p[0], s = 0;
            const int32_t c = w->labels[start + r];
            for (bp_int k = 1; k < K; k++)
                zmax = p[k] > zmax ? p[k] : zmax;
            for (bp_int k = 0; k < K; k++)
                s += exp(p[k] - zmax);
            loss += zmax + log(s) - p[c];
            for (bp_int k = 0; k < K; k++)
                p[k] = exp(p[k] - zmax) / s;
            if (g)
                for (bp_int k = 0; k < K; k++)
                    cblas_daxpy(d1, (p[k] - (k == c)) / w->n, w->xt + (size_t)r * (size_t)d1, 1,
                                g + (size_t)k * (size_t)d1, 1);
        }
        if (!H)
            continue;
        /* H_kl += x~^T diag(p_k (delta_kl - p_l)) x~ / n, for k <= l: the row-major upper
         * blocks, all that the Cholesky solve reads. */
        for (bp_int k = 0; k < K; k++)
            for (bp_int l = k; l < K; l++) {
                for (bp_int r = 0; r < m; r++) {
                    const double *p = w->prob + (size_t)r * (size_t)K;
                    const double wt = p[k] * ((k == l) - p[l]) / w->n;
                    const double *xt = w->xt + (size_t)r * (size_t)d1;
                    double *sx = w->sx + (size_t)r * (size_t)d1;
                    for (bp_int j = 0; j < d1; j++)
                        sx[j] = wt * xt[j];
                }
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d1, d1, m, 1, w->xt, d1, w->sx, d1,
                            1, H + (size_t)k * (size_t)d1 * P + (size_t)l * (size_t)d1, (bp_int)P);
            }
    }
    loss /= w->n;
    double sq = 0;
    for (size_t q = 0; q < P; q++)
        sq += th[q] * th[q];
    loss += 0.5 * w->ridge * sq;
    if (g)
        cblas_daxpy((bp_int)P, w->ridge, th, 1, g, 1);
    if (H)
        for (size_t a = 0; a < P; a++)
            H[a * P + a] += w->ridge;
    return loss;
}

/* Converts between the network's layout (W row-major, then b) and theta's. */
static void theta_io(bp_net *net, double *theta, int to_net)
{
    const bp__layer *l = &net->layers[0];
    const bp_int d = l->n_in, K = l->n_out;
    for (bp_int k = 0; k < K; k++)
        for (bp_int j = 0; j <= d; j++) {
            const size_t q = j < d ? (size_t)k * (size_t)d + (size_t)j : (size_t)K * (size_t)d + (size_t)k;
            double *t = &theta[(size_t)k * ((size_t)d + 1) + (size_t)j];
            if (net->dtype == BP_F32) {
                float *p = net->params;
                if (to_net)
                    p[q] = (float)*t;
                else
                    *t = p[q];
            } else {
                double *p = net->params;
                if (to_net)
                    p[q] = *t;
                else
                    *t = p[q];
            }
        }
}

bp_status bp_logreg_newton(bp_net *net, bp_int n, const void *X, bp_int ldx, const int32_t *labels,
                           double ridge, int max_iter, double tol, int *iters)
{
    const char *fn = __func__;
    BP_REQUIRE(net != NULL, BP_ERR_ARG, "net is NULL");
    TRY(bp__dp_refuse(net, fn, "Newton's method"));
    BP_REQUIRE(net->n_layers == 1 && net->layers[0].act == BP_ACT_IDENTITY &&
               net->loss == BP_LOSS_SOFTMAX_XENT, BP_ERR_ARG,
               "net is not a logistic regression (one identity layer, softmax cross-entropy)");
    const bp_int d = net->n_in, K = net->layers[0].n_out;
    const size_t P = (size_t)K * ((size_t)d + 1);
    BP_REQUIRE(P <= BP_LOGREG_NEWTON_MAX_PARAMS, BP_ERR_OVERFLOW,
               "%zu parameters: the Hessian would be %zu x %zu doubles (%.1f MiB), above the limit of "
               "BP_LOGREG_NEWTON_MAX_PARAMS = %d parameters; train it with a first-order optimizer",
               P, P, P, (double)P * (double)P * 8 / 1048576.0, BP_LOGREG_NEWTON_MAX_PARAMS);
    BP_REQUIRE(n >= 1, BP_ERR_ARG, "n (%d) < 1", (int)n);
    BP_CHECK_PTR(X);
    BP_REQUIRE(ldx >= d, BP_ERR_ARG, "ldx (%d) < n_in (%d)", (int)ldx, (int)d);
    BP_REQUIRE(isfinite(ridge) && ridge > 0, BP_ERR_ARG, "ridge (%g) is not finite and > 0", ridge);
    BP_REQUIRE(max_iter >= 1, BP_ERR_ARG, "max_iter (%d) < 1", max_iter);
    BP_REQUIRE(isfinite(tol) && tol >= 0, BP_ERR_ARG, "tol (%g) is not finite and >= 0", tol);
    TRY(bp__check_targets(fn, net, n, labels, 0, 1));
    TRY(bp__check_x_finite(fn, net, n, X, ldx));

    const size_t d1 = (size_t)d + 1;
    newton w = {.n = n, .d = d, .K = K, .P = P, .X = X, .ldx = ldx, .dtype = net->dtype,
                .labels = labels, .stdz = net->stdz, .ridge = ridge};
    w.H = bp__net_alloc(net, P * P * sizeof(double));
    w.g = bp__net_alloc(net, P * sizeof(double));
    w.theta = bp__net_alloc(net, P * sizeof(double));
    w.trial = bp__net_alloc(net, P * sizeof(double));
    w.xt = bp__net_alloc(net, CHUNK * d1 * sizeof(double));
    w.sx = bp__net_alloc(net, CHUNK * d1 * sizeof(double));
    w.prob = bp__net_alloc(net, CHUNK * (size_t)K * sizeof(double));
    bp_status st = BP_OK;
    int it = 0;
    if (!w.H || !w.g || !w.theta || !w.trial || !w.xt || !w.sx || !w.prob) {
        st = bp__fail(BP_ERR_NOMEM, fn, "allocating a %zu x %zu Hessian", P, P);
        goto done;
    }
    theta_io(net, w.theta, 0);
    for (; it < max_iter; it++) {
        const double loss = newton_eval(&w, w.theta, w.g, w.H);
        double gmax = 0;
        for (size_t q = 0; q < P; q++)
            gmax = fabs(w.g[q]) > gmax ? fabs(w.g[q]) : gmax;
        if (!isfinite(loss) || !isfinite(gmax)) {
            st = bp__fail(BP_ERR_NONFINITE, fn, "the loss or gradient is not finite at iteration %d", it);
            goto done;
        }
        if (gmax < tol)
            break;
        /* H d = g by Cholesky (H is positive definite thanks to the ridge); g becomes d.
         * The row-major upper blocks and full diagonal blocks that newton_eval wrote are,
         * read column-major, the lower triangle: dposv_work takes H as it is, with no
         * transposed copy (LAPACKE_dposv's, outside the network's allocator) nor mirror. */
        const lapack_int info = LAPACKE_dposv_work(LAPACK_COL_MAJOR, 'L', (lapack_int)P, 1, w.H, (lapack_int)P,
                                                   w.g, (lapack_int)P);
        if (info != 0) {
            st = bp__fail(BP_ERR_NONFINITE, fn, "LAPACKE_dposv failed (info %d) at iteration %d", (int)info, it);
            goto done;
        }
        double t = 1, trial_loss;
        do {  /* halve the step until the loss does not increase */
            for (size_t q = 0; q < P; q++)
                w.trial[q] = w.theta[q] - t * w.g[q];
            trial_loss = newton_eval(&w, w.trial, NULL, NULL);
            t /= 2;
        } while (!(trial_loss <= loss) && t > 1e-12);
        memcpy(w.theta, w.trial, P * sizeof(double));
    }
    theta_io(net, w.theta, 1);
    if (iters)
        *iters = it;
done:
    bp__net_free(net, w.H);
    bp__net_free(net, w.g);
    bp__net_free(net, w.theta);
    bp__net_free(net, w.trial);
    bp__net_free(net, w.xt);
    bp__net_free(net, w.sx);
    bp__net_free(net, w.prob);
    return st;
}
