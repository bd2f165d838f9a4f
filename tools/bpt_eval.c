/* SPDX-License-Identifier: MIT */
/* bpt_eval.c: the test metric backprop-train reports: the arg-max of the outputs against the labels,
 * or the RMSE against real targets. */
#include "bpt.h"

/* Counts the samples of d whose outputs' arg-max (the first on a tie, as bp_net_predict_class)
 * is their label; every loss, MSE included (its outputs learn one-hot targets). Under mpiexec,
 * over every rank's rows (each rank calls it with its own, even when its forward pass failed). */
bp_status count_correct(bp_net *net, const bp_dataset *d, void *outputs, long *correct)
{
    const bp_int k = bp_net_n_out(net), n = d->n;
    bp_status st = bp_net_forward(net, n, d->X, d->n_features, outputs, k);
    int64_t c = 0;
    for (bp_int i = 0; st == BP_OK && i < n; i++) {
        const size_t row = (size_t)i * (size_t)k;
        bp_int best = 0;
        for (bp_int j = 1; j < k; j++)
            if (value_at(d->dtype, outputs, row + (size_t)j) > value_at(d->dtype, outputs, row + (size_t)best))
                best = j;
        c += best == d->labels[i];
    }
    if ((st = bpt_sum_counts(&c, 1, st)) == BP_OK)
        *correct = (long)c;
    return st;
}

/* The RMSE over all elements of d's outputs against its real targets: what training prints per
 * epoch and at the end, and --evaluate prints, from the same call (so the digits agree); under
 * mpiexec over every rank's rows. */
bp_status test_rmse(bp_net *net, const bp_dataset *d, double *rmse)
{
    return bpt_rmse(net, d->n, d->X, d->n_features, d->targets, d->n_targets, rmse);
}

/* "WHAT: 0.9033 (9033/10000)": rounded for the eye, exact in the fraction. */
void print_accuracy(const char *what, long correct, bp_int n)
{
    printf("%s: %.4f (%ld/%d)\n", what, n ? (double)correct / n : 0.0, correct, (int)n);
}
