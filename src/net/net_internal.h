/* SPDX-License-Identifier: MIT */
/* net_internal.h: the network object's layout, shared by src/net, src/optim and the training helper. */
#ifndef BP_NET_INTERNAL_H
#define BP_NET_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "backprop/net.h"
#include "backprop/parallel.h"
#include "core/internal.h"
#include "net/split.h"
#include "net/team.h"

/* A layer inside the flat buffers and the arena. */
typedef struct bp__layer {
    bp_int n_in, n_out;
    bp_act act;
    double alpha;
    size_t w_off, b_off;   /* elements, into params and grads */
    size_t y_off;          /* bytes into the arena: this layer's output, mb x n_out */
    size_t z_off;          /* bytes into the arena: pre-activation (GELU only), else SIZE_MAX */
} bp__layer;

typedef enum bp__step_kind {
    BP_STEP_FORWARD,
    BP_STEP_LOSS,
    BP_STEP_BACKWARD,
    BP_STEP_GRADS_READY
} bp__step_kind;

typedef struct bp__step {
    bp__step_kind kind;
    bp_int layer;
} bp__step;

struct bp_net {
    bp_dtype dtype;
    size_t esize;            /* sizeof(float) or sizeof(double) */
    bp_int n_in, n_layers, max_width;
    bp_loss loss;
    bp__layer *layers;
    size_t n_params;
    void *params, *grads;
    bp_allocator alloc;
    bp_backend backend;
    int check_finite;
    uint64_t rng[4];         /* xoshiro256** state */
    double *stdz;            /* input standardisation: NULL, or n_in means then n_in deviations */

    /* Threads (bp_net_set_threads). */
    int n_threads;           /* threads of a step, the caller's included; 1: the caller alone */
    struct bp__team *team;   /* its n_threads - 1 helpers, started by the plan; NULL for 1 */
    long chunk_macs, chunk_values;  /* least work per chunk (bp_net_set_chunk_min) */

    /* The plan (arena == NULL: not planned). */
    bp_int mb;               /* max micro-batch */
    void *arena_raw, *arena; /* arena is arena_raw aligned to 64 bytes */
    size_t arena_bytes;
    size_t g_off[2];         /* the two gradient / inference buffers, mb x max_width */
    size_t xg_off, tg_off;   /* gather buffers of the training helper: mb x n_in, mb targets */
    bp__step *steps;
    bp_int n_steps;
    bp__layer_split *splits; /* per layer: how its steps are cut at a full micro-batch (split.h) */

    /* Data parallelism (backprop/parallel.h, dp.h): the reducer of the gradient passes. */
    int has_reducer;
    bp_reducer reducer;
    bp_int dp_next;          /* a reduced pass: the layers >= dp_next are announced */
};

/* What the network's cuts depend on besides the shapes (split.h). */
static inline bp__split_policy bp__net_policy(const bp_net *net)
{
    const bp__split_policy p = {net->n_threads, net->chunk_macs, net->chunk_values};
    return p;
}

/* How layer i's steps are cut for a micro-batch of m rows: the plan's cached split at a full
 * micro-batch, else computed into *tmp (net.c). */
const bp__layer_split *bp__net_split(const bp_net *net, bp_int i, bp_int m, bp__layer_split *tmp);

/* Memory through the network's allocator. */
void *bp__net_alloc(const bp_net *net, size_t bytes);
void bp__net_free(const bp_net *net, void *p);

/* The default allocator (malloc/free). */
extern const bp_allocator bp__default_allocator;

/* Nonzero when every element of the n values is finite. */
int bp__all_finite(bp_dtype dtype, size_t n, const void *x);

/* The network's output width: its last layer's. */
static inline bp_int bp__n_out(const bp_net *net)
{
    return net->layers[net->n_layers - 1].n_out;
}

/* Nonzero for the squared-error losses (BP_LOSS_MSE, BP_LOSS_LEAST_SQUARES): real outputs
 * against real targets, the RMSE as their metric, no classes. */
static inline int bp__loss_squared(bp_loss loss)
{
    return loss == BP_LOSS_MSE || loss == BP_LOSS_LEAST_SQUARES;
}

/* Below this standard deviation a feature is only centred: dividing would blow up rounding
 * noise. */
#define BP_STD_FLOOR 1e-12

/* One standardised value: (x - mean) / sd, in double (the one arithmetic of every standardisation:
 * the network's passes, Newton's method and bp_dataset_standardize). */
static inline double bp__standardized(double x, double mean, double sd)
{
    x -= mean;
    return sd >= BP_STD_FLOOR ? x / sd : x;
}

/* Each of the nf features' mean m and population standard deviation s over the n rows of X
 * (leading dimension ldx), in double, in two passes (standardize.c). BP_ERR_NONFINITE for a NaN
 * or Inf in X or statistics that overflow; m and s are then partly written. */
bp_status bp__feature_stats(const char *fn, bp_dtype dtype, size_t n, size_t nf, const void *X, size_t ldx,
                            double *m, double *s);

/* Random numbers (src/core/rng.c): xoshiro256** seeded through splitmix64. */
void bp__rng_seed(uint64_t s[4], uint64_t seed);
uint64_t bp__rng_next(uint64_t s[4]);
double bp__rng_uniform(uint64_t s[4]);    /* [0, 1), 53 bits */
double bp__rng_normal(uint64_t s[4]);     /* N(0, 1), Box-Muller */
uint64_t bp__rng_below(uint64_t s[4], uint64_t n);  /* uniform in [0, n), unbiased */

#endif
