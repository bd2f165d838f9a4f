/* train.c: the training-loop helper, and multinomial logistic regression with its Newton / IRLS fit. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <string.h>
#include <time.h>
#include <cblas.h>
#include <lapacke.h>
#include "backprop/train.h"
#include "net/net_exec.h"
#include "optim/optim_internal.h"

static double seconds_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

bp_status bp_train(bp_net *net, bp_optim *opt, bp_int n, const void *X, bp_int ldx,
                   const void *targets, bp_int ldt, const bp_train_config *config)
{
    const char *fn = __func__;
    BP_REQUIRE(net != NULL, BP_ERR_ARG, "net is NULL");
    BP_REQUIRE(net->arena != NULL, BP_ERR_ARG, "the network has no plan: call bp_net_plan first");
    TRY(bp__optim_check_net(fn, opt, net));
    BP_CHECK_PTR(config);
    BP_REQUIRE(config->epochs >= 1, BP_ERR_ARG, "config->epochs (%ld) < 1", config->epochs);
    BP_REQUIRE(config->batch_size >= 1, BP_ERR_ARG, "config->batch_size (%d) < 1", (int)config->batch_size);
    BP_REQUIRE(n >= 1, BP_ERR_ARG, "n (%d) < 1", (int)n);
    TRY(bp__check_pass(fn, net, n, X, ldx));
    const int labels = net->loss == BP_LOSS_SOFTMAX_XENT;
    TRY(bp__check_targets(fn, net, n, targets, ldt, labels));

    /* The only allocation: the permutation, once, before the first step. */
    int32_t *idx = bp__net_alloc(net, (size_t)n * sizeof *idx);
    if (!idx)
        return bp__fail(BP_ERR_NOMEM, fn, "allocating a permutation of %d samples", (int)n);
    for (bp_int i = 0; i < n; i++)
        idx[i] = i;
    uint64_t rng[4];
    bp__rng_seed(rng, config->seed);
    const bp_int bs = config->batch_size;
    const long n_batches = (n + bs - 1) / bs;
    const bp_int n_out = net->layers[net->n_layers - 1].n_out;
    bp_status st = BP_OK;
    for (long epoch = 1; epoch <= config->epochs && st == BP_OK; epoch++) {
        const double t0 = seconds_now();
        if (config->shuffle)
            for (bp_int i = n - 1; i > 0; i--) {  /* Fisher-Yates */
                const bp_int j = (bp_int)bp__rng_below(rng, (uint64_t)i + 1);
                const int32_t t = idx[i];
                idx[i] = idx[j];
                idx[j] = t;
            }
        double loss_sum = 0;
        int64_t correct = 0;
        for (long b = 0; b < n_batches && st == BP_OK; b++) {
            const bp_int start = (bp_int)(b * bs), m = n - start < bs ? n - start : bs;
            double loss = 0;
            st = bp__optim_train_batch(fn, opt, net, m, X, ldx, idx + start, targets, ldt, &loss, &correct);
            loss_sum += loss * m;
            if (st == BP_OK && config->on_batch)
                config->on_batch(epoch, b + 1, n_batches, loss, config->ctx);
        }
        if (st != BP_OK)
            break;
        const double secs = seconds_now() - t0, mean = loss_sum / n;
        bp_epoch_report r = {
            .epoch = epoch,
            .loss = mean,
            .metric = net->loss == BP_LOSS_MSE ? sqrt(mean)
                      : labels ? (double)correct / n : (double)correct / ((double)n * n_out),
            .samples_per_s = secs > 0 ? n / secs : 0,
            .seconds = secs,
        };
        if (config->on_epoch && config->on_epoch(&r, config->ctx))
            break;
    }
    bp__net_free(net, idx);
    return st;
}

bp_status bp_logreg_create(bp_net **out, bp_dtype dtype, bp_int n_in, bp_int n_classes,
                           const bp_allocator *alloc)
{
    const char *fn = __func__;
    BP_REQUIRE(n_classes >= 2, BP_ERR_ARG, "n_classes (%d) < 2", (int)n_classes);
    const bp_layer_spec layer = {n_classes, BP_ACT_IDENTITY, 0};
    return bp_net_create(out, dtype, n_in, 1, &layer, BP_LOSS_SOFTMAX_XENT, alloc);
}

/* Newton's working set, in double, with the parameters ordered class by class,
 * theta[k (d + 1) + j], the bias as j = d (the network stores W then b). */
typedef struct newton {
    bp_int n, d, K;
    size_t P;               /* K (d + 1) */
    const void *X;
    bp_int ldx;
    bp_dtype dtype;
    const int32_t *labels;
    double ridge;
    double *H, *g, *theta, *trial, *xt, *sx, *prob;  /* xt, sx: CHUNK x (d + 1); prob: CHUNK x K */
} newton;

enum { CHUNK = 256 };

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
                xt[j] = w->dtype == BP_F32 ? ((const float *)w->X)[row + (size_t)j]
                                           : ((const double *)w->X)[row + (size_t)j];
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
                .labels = labels, .ridge = ridge};
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
