/* SPDX-License-Identifier: MIT */
/* standardize.c: a network's input standardisation, x' = (x - mean) / std per feature: the
 * statistics (shared with bp_dataset_standardize), and setting, fitting and reading them. */
#include <math.h>
#include <string.h>
#include "net/net_exec.h"

bp_status bp__feature_stats(const char *fn, bp_dtype dtype, size_t n, size_t nf, const void *X, size_t ldx,
                            double *m, double *s)
{
    for (size_t r = 0; r < n; r++)
        for (size_t j = 0; j < nf; j++) {
            const double x = bp__value_at(dtype, X, r * ldx + j);
            BP_REQUIRE(isfinite(x), BP_ERR_NONFINITE, "X[%zu][%zu] is not finite", r, j);
        }
    for (size_t j = 0; j < nf; j++)
        m[j] = s[j] = 0;
    for (size_t r = 0; r < n; r++)
        for (size_t j = 0; j < nf; j++)
            m[j] += bp__value_at(dtype, X, r * ldx + j);
    for (size_t j = 0; j < nf; j++)
        m[j] /= (double)n;
    for (size_t r = 0; r < n; r++)
        for (size_t j = 0; j < nf; j++) {
            const double dev = bp__value_at(dtype, X, r * ldx + j) - m[j];
            s[j] += dev * dev;
        }
    for (size_t j = 0; j < nf; j++)
        s[j] = sqrt(s[j] / (double)n);
    /* Finite data can still overflow the sums (values near DBL_MAX). */
    for (size_t j = 0; j < nf; j++)
        BP_REQUIRE(isfinite(m[j]) && isfinite(s[j]), BP_ERR_NONFINITE,
                   "the mean or standard deviation of feature %zu overflows", j);
    return BP_OK;
}

bp_status bp_net_set_standardization(bp_net *net, const double *mean, const double *std)
{
    const char *fn = __func__;
    BP_CHECK_PTR(net);
    BP_REQUIRE((mean == NULL) == (std == NULL), BP_ERR_ARG, "mean and std must both be NULL or both be given");
    if (!mean) {
        bp__net_free(net, net->stdz);
        net->stdz = NULL;
        return BP_OK;
    }
    const size_t d = (size_t)net->n_in;
    for (size_t j = 0; j < d; j++) {
        BP_REQUIRE(isfinite(mean[j]), BP_ERR_ARG, "mean[%zu] is not finite", j);
        BP_REQUIRE(isfinite(std[j]) && std[j] >= 0, BP_ERR_ARG, "std[%zu] (%g) is not a finite value >= 0", j,
                   std[j]);
    }
    if (!net->stdz) {
        BP_REQUIRE(d <= SIZE_MAX / (2 * sizeof(double)), BP_ERR_OVERFLOW, "n_in (%zu) too large", d);
        net->stdz = bp__net_alloc(net, 2 * d * sizeof(double));
        if (!net->stdz)
            return bp__fail(BP_ERR_NOMEM, fn, "allocating the standardisation of %zu features", d);
    }
    memmove(net->stdz, mean, d * sizeof(double));
    memmove(net->stdz + d, std, d * sizeof(double));
    return BP_OK;
}

bp_status bp_net_fit_standardization(bp_net *net, bp_int n, const void *X, bp_int ldx)
{
    const char *fn = __func__;
    BP_CHECK_PTR(net);
    BP_REQUIRE(n >= 1, BP_ERR_ARG, "n (%d) < 1", (int)n);
    TRY(bp__check_rows(fn, net, n, X, ldx, net->n_in, "X", "ldx", "n_in"));
    const size_t d = (size_t)net->n_in;
    BP_REQUIRE(d <= SIZE_MAX / (2 * sizeof(double)), BP_ERR_OVERFLOW, "n_in (%zu) too large", d);
    double *ms = bp__net_alloc(net, 2 * d * sizeof(double));
    if (!ms)
        return bp__fail(BP_ERR_NOMEM, fn, "allocating the statistics of %zu features", d);
    bp_status st = bp__feature_stats(fn, net->dtype, (size_t)n, d, X, (size_t)ldx, ms, ms + d);
    if (st == BP_OK && (st = bp_net_set_standardization(net, ms, ms + d)) != BP_OK)
        st = bp__fail_as(st, fn);  /* set's message, under this function's name */
    bp__net_free(net, ms);
    return st;
}

int bp_net_has_standardization(const bp_net *net)
{
    return net && net->stdz;
}

bp_status bp_net_standardization(const bp_net *net, double *mean, double *std)
{
    const char *fn = __func__;
    BP_CHECK_PTR(net);
    BP_CHECK_PTR(mean);
    BP_CHECK_PTR(std);
    BP_REQUIRE(net->stdz != NULL, BP_ERR_ARG, "the network has no standardisation");
    const size_t d = (size_t)net->n_in;
    memcpy(mean, net->stdz, d * sizeof(double));
    memcpy(std, net->stdz + d, d * sizeof(double));
    return BP_OK;
}
