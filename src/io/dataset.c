/* SPDX-License-Identifier: MIT */
/* dataset.c: freeing a data set and standardising its features with statistics taken over a training set. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "backprop/io.h"
#include "core/internal.h"
#include "net/net_internal.h"

void bp_dataset_free(bp_dataset *d)
{
    if (!d)
        return;
    /* A set built by hand with a zeroed allocator holds malloc'ed memory, if any. */
    const bp_allocator a = d->alloc.free ? d->alloc : bp__default_allocator;
    if (d->X)
        a.free(a.ctx, d->X);
    if (d->labels)
        a.free(a.ctx, d->labels);
    if (d->targets)
        a.free(a.ctx, d->targets);
    memset(d, 0, sizeof *d);
}

/* The checks common to fit and other: dtype, sizes, X present and addressable. */
static bp_status check_set(const char *fn, const char *name, const bp_dataset *d, bp_int min_n)
{
    BP_REQUIRE(d->dtype == BP_F32 || d->dtype == BP_F64, BP_ERR_ARG,
               "%s->dtype (%d) is neither BP_F32 (1) nor BP_F64 (2)", name, (int)d->dtype);
    BP_REQUIRE(d->n >= min_n, BP_ERR_ARG, "%s->n (%d) < %d", name, (int)d->n, (int)min_n);
    BP_REQUIRE(d->n_features >= 1, BP_ERR_ARG, "%s->n_features (%d) < 1", name, (int)d->n_features);
    BP_REQUIRE(d->n == 0 || d->X != NULL, BP_ERR_ARG, "%s->X is NULL", name);
    const size_t esize = d->dtype == BP_F32 ? sizeof(float) : sizeof(double);
    BP_REQUIRE(bp__block_fits(d->n, d->n_features, esize), BP_ERR_OVERFLOW,
               "%s: %d samples of %d features overflow the address space", name, (int)d->n, (int)d->n_features);
    return BP_OK;
}

/* The first non-finite value of d, as an index; SIZE_MAX when there is none. */
static size_t first_nonfinite(const bp_dataset *d)
{
    const size_t count = (size_t)d->n * (size_t)d->n_features;
    for (size_t i = 0; i < count; i++)
        if (!isfinite(bp__value_at(d->dtype, d->X, i)))
            return i;
    return SIZE_MAX;
}

static void apply(bp_dataset *d, const double *mean, const double *sd)
{
    const size_t nf = (size_t)d->n_features;
    for (size_t r = 0; r < (size_t)d->n; r++) {
        for (size_t j = 0; j < nf; j++) {
            const size_t i = r * nf + j;
            const double x = bp__standardized(bp__value_at(d->dtype, d->X, i), mean[j], sd[j]);
            if (d->dtype == BP_F32)
                ((float *)d->X)[i] = (float)x;
            else
                ((double *)d->X)[i] = x;
        }
    }
}

/* Statistics in double, two passes (mean, then squared deviations from it),
 * row by row so the sample-major data is read in order. Everything is checked
 * and the workspace allocated before any caller memory is written. */
bp_status bp_dataset_standardize(bp_dataset *fit, bp_dataset *other, double *mean, double *std)
{
    static const char fn[] = "bp_dataset_standardize";
    BP_CHECK_PTR(fit);
    bp_status st = check_set(fn, "fit", fit, 1);
    if (st != BP_OK)
        return st;
    if (other) {
        BP_REQUIRE(other != fit && (other->X != fit->X || other->n == 0), BP_ERR_ARG,
                   "other is fit (or shares its X): it would be standardised twice");
        st = check_set(fn, "other", other, 0);
        if (st != BP_OK)
            return st;
        BP_REQUIRE(other->dtype == fit->dtype, BP_ERR_ARG, "other->dtype (%d) differs from fit->dtype (%d)",
                   (int)other->dtype, (int)fit->dtype);
        BP_REQUIRE(other->n_features == fit->n_features, BP_ERR_ARG,
                   "other->n_features (%d) differs from fit->n_features (%d)", (int)other->n_features,
                   (int)fit->n_features);
    }
    const size_t nf = (size_t)fit->n_features;
    size_t bad = first_nonfinite(fit);
    BP_REQUIRE(bad == SIZE_MAX, BP_ERR_NONFINITE, "fit->X[%zu][%zu] is not finite", bad / nf, bad % nf);
    if (other) {
        bad = first_nonfinite(other);
        BP_REQUIRE(bad == SIZE_MAX, BP_ERR_NONFINITE, "other->X[%zu][%zu] is not finite", bad / nf, bad % nf);
    }
    BP_REQUIRE(nf <= SIZE_MAX / (2 * sizeof(double)), BP_ERR_OVERFLOW, "fit->n_features (%zu) too large", nf);

    const bp_allocator a = fit->alloc.alloc && fit->alloc.free ? fit->alloc : bp__default_allocator;
    double *m = a.alloc(a.ctx, 2 * nf * sizeof *m);
    if (!m)
        return bp__fail(BP_ERR_NOMEM, fn, "allocating the statistics of %zu features", nf);
    double *s = m + nf;

    st = bp__feature_stats(fn, fit->dtype, (size_t)fit->n, nf, fit->X, nf, m, s);
    if (st != BP_OK) {
        a.free(a.ctx, m);
        return st;
    }

    apply(fit, m, s);
    if (other)
        apply(other, m, s);
    if (mean)
        memcpy(mean, m, nf * sizeof *mean);
    if (std)
        memcpy(std, s, nf * sizeof *std);
    a.free(a.ctx, m);
    return BP_OK;
}
