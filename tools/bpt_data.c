/* SPDX-License-Identifier: MIT */
/* bpt_data.c: backprop-train's data sets: read from IDX or CSV files, generated, split, one-hot, and
 * under mpiexec cut to this rank's rows. */
#define _POSIX_C_SOURCE 200809L  /* strdup */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "bpt.h"

size_t dtype_size(bp_dtype t)
{
    return t == BP_F32 ? sizeof(float) : sizeof(double);
}

double value_at(bp_dtype t, const void *p, size_t i)
{
    return t == BP_F32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}

/* A data set from "IMAGES,LABELS" (IDX), "IMAGES" alone (IDX, where labels are not needed) or a
 * CSV file (its label column: --csv-label, -1 for none; or its real targets: --csv-targets). */
int load_data(const options *o, const char *spec, int labels_needed, bp_dataset *d)
{
    const size_t len = strlen(spec);
    const char *comma = strchr(spec, ',');
    const int csv = len > 4 && !strcmp(spec + len - 4, ".csv") && !comma;
    bp_status st;
    if (o->n_targets && !csv)
        return run_fail("--csv-targets: '%s' is not a .csv file (IDX files hold no real targets)", spec);
    if (o->n_targets) {
        st = bp_csv_read_targets(spec, o->dtype, o->csv_header, o->csv_targets, o->n_targets, NULL, d);
    } else if (csv) {
        st = bp_csv_read(spec, o->dtype, o->csv_header, o->csv_label, NULL, d);
    } else {
        if (!comma && labels_needed)
            return run_fail("'%s' is neither IMAGES,LABELS (IDX) nor a .csv file", spec);
        char *images = strdup(spec);
        if (!images)
            return run_fail("out of memory");
        if (comma)
            images[comma - spec] = 0;
        st = bp_idx_read(images, comma ? images + (comma - spec) + 1 : NULL, o->dtype,
                         o->raw_pixels ? BP_SCALE_NONE : BP_SCALE_UNIT, NULL, d);
        free(images);
    }
    return st == BP_OK ? 0 : bp_fail("reading data", st);
}

/* A generated stand-in for an image data set: 10 classes, each a fixed random
 * 28x28 prototype of smooth blobs, samples = prototype + noise, clipped to [0, 1]. */
int synthetic(const options *o, bp_int n, uint64_t seed, bp_dataset *d)
{
    enum { SIDE = 28, F = SIDE * SIDE, K = 10 };
    static float proto[K][F];
    uint64_t s = 88172645463325252u;  /* the prototypes are the same for train and test */
    for (int k = 0; k < K; k++)
        for (int p = 0; p < F; p++) {
            const int r = p / SIDE, c = p % SIDE;
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            const double cx = 6 + (double)(k * 7 % 17), cy = 6 + (double)(k * 11 % 17);
            const double g = exp(-((r - cy) * (r - cy) + (c - cx) * (c - cx)) / (18.0 + 4 * (k % 3)));
            proto[k][p] = (float)(0.8 * g + 0.15 * (double)(s >> 40) / (double)(1u << 24));
        }
    memset(d, 0, sizeof *d);
    d->dtype = o->dtype;
    d->n = n;
    d->n_features = F;
    d->n_classes = K;
    d->X = malloc((size_t)n * F * dtype_size(o->dtype));
    d->labels = malloc((size_t)n * sizeof *d->labels);
    if (!d->X || !d->labels)
        return run_fail("out of memory");
    s = seed * 2654435761u + 1;
    for (bp_int i = 0; i < n; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        const int k = (int)(s % K);
        d->labels[i] = k;
        for (int p = 0; p < F; p++) {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            double x = 0.5 * proto[k][p] + 1.2 * ((double)(s >> 11) * 0x1.0p-53 - 0.5);
            x = x < 0 ? 0 : x > 1 ? 1 : x;
            if (o->dtype == BP_F32)
                ((float *)d->X)[(size_t)i * F + p] = (float)x;
            else
                ((double *)d->X)[(size_t)i * F + p] = x;
        }
    }
    return 0;
}

/* Copies `count` rows of `row` bytes each of p (the rows rows[0..count), or rows NULL the ones
 * from start on) into a new buffer (malloc, at least one row, so a set with no rows left keeps a
 * buffer). */
static void *pick_rows(const void *p, const int32_t *rows, bp_int start, bp_int count, size_t row)
{
    char *t = malloc((size_t)(count ? count : 1) * row);
    for (bp_int i = 0; t && i < count; i++)
        memcpy(t + (size_t)i * row, (const char *)p + (size_t)(rows ? rows[i] : start + i) * row, row);
    return t;
}

/* *out: `count` rows of d (rows[0..count), or rows NULL the ones from start on), their features,
 * labels and targets copied into new buffers (freed with free(); nothing is left allocated on
 * failure); n_classes stays d's. */
static int copy_rows(const bp_dataset *d, const int32_t *rows, bp_int start, bp_int count, bp_dataset *out)
{
    const size_t es = dtype_size(d->dtype);
    bp_dataset k = *d;
    k.alloc = (bp_allocator){0};
    k.n = count;
    k.X = pick_rows(d->X, rows, start, count, (size_t)d->n_features * es);
    k.labels = d->labels ? pick_rows(d->labels, rows, start, count, sizeof *d->labels) : NULL;
    k.targets = d->targets ? pick_rows(d->targets, rows, start, count, (size_t)d->n_targets * es) : NULL;
    if (!k.X || (d->labels && !k.labels) || (d->targets && !k.targets)) {
        free(k.X);
        free(k.labels);
        free(k.targets);
        return run_fail("out of memory");
    }
    *out = k;
    return 0;
}

/* *d keeps only `count` of its rows (as copy_rows picks them); its old buffers are freed. */
static int keep_rows(bp_dataset *d, const int32_t *rows, bp_int start, bp_int count)
{
    bp_dataset k;
    const int rc = copy_rows(d, rows, start, count, &k);
    if (rc)
        return rc;
    bp_dataset_free(d);
    *d = k;
    return 0;
}

/* --val-split: the last floor(fraction n) samples of *train move to *val (a copy, freed with
 * free(); train keeps its buffers and forgets those rows). Deterministic: no shuffling. */
int split_validation(double fraction, bp_dataset *train, bp_dataset *val)
{
    const bp_int n_val = (bp_int)floor(fraction * train->n), keep = train->n - n_val;
    if (n_val < 1 || keep < 1)
        return run_fail("--val-split %g of %d samples leaves %d for validation and %d for training: "
                        "both need at least one", fraction, (int)train->n, (int)n_val, (int)keep);
    const int rc = copy_rows(train, NULL, keep, n_val, val);
    if (rc)
        return rc;
    val->n_classes = 0;  /* its own: 1 + the largest of its labels */
    for (bp_int i = 0; val->labels && i < n_val; i++)
        if (val->labels[i] >= val->n_classes)
            val->n_classes = val->labels[i] + 1;
    train->n = keep;
    return 0;
}

/* One-hot rows (n x k, the data's dtype) of the labels: BCE and MSE targets. */
void *one_hot(const bp_dataset *d, bp_int k)
{
    char *t = calloc((size_t)d->n * (size_t)k, dtype_size(d->dtype));
    if (!t)
        return NULL;
    for (bp_int i = 0; i < d->n; i++) {
        const size_t q = (size_t)i * (size_t)k + (size_t)d->labels[i];
        if (d->dtype == BP_F32)
            ((float *)(void *)t)[q] = 1;
        else
            ((double *)(void *)t)[q] = 1;
    }
    return t;
}

/* Under mpiexec with several ranks: *d keeps this rank's contiguous slice of its rows by the
 * fixed rule (bp_shard_start, bp_shard_count: the first n mod p ranks take one more). */
int keep_share(bp_dataset *d)
{
    const int p = bpt_ranks(), r = bpt_rank();
    if (p == 1 || !d->X)
        return 0;
    return keep_rows(d, NULL, bp_shard_start(d->n, p, r), bp_shard_count(d->n, p, r));
}

/* Under mpiexec with several ranks: the training set keeps this rank's share of every global
 * batch of `batch` rows (bp_shard_rows: unshuffled, the ranks then take exactly the single run's
 * batches). */
int keep_batch_share(bp_dataset *d, bp_int batch)
{
    const int p = bpt_ranks(), r = bpt_rank();
    if (p == 1)
        return 0;
    bp_int count = 0;
    bp_status st = bp_shard_rows(d->n, batch, p, r, NULL, &count);
    if (st != BP_OK)
        return bp_fail("sharding the training set", st);
    int32_t *rows = malloc((size_t)(count ? count : 1) * sizeof *rows);
    if (!rows)
        return run_fail("out of memory");
    const int rc = (st = bp_shard_rows(d->n, batch, p, r, rows, &count)) != BP_OK
                   ? bp_fail("sharding the training set", st) : keep_rows(d, rows, 0, count);
    free(rows);
    return rc;
}
