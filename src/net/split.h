/* SPDX-License-Identifier: MIT */
/* split.h: the scheduler's one policy decision: how each step of a layer is cut into chunks for
 * the thread team, from the shapes and the thread count alone (tuning.h holds the thresholds). */
#ifndef BP_NET_SPLIT_H
#define BP_NET_SPLIT_H

#include <stdint.h>
#include "backprop/core.h"

/* How a step's block is cut: by rows of the micro-batch, or by columns (a layer's output
 * features for forward and dW; its inputs for dX). */
typedef enum bp__cut { BP_CUT_ROWS = 0, BP_CUT_COLS = 1 } bp__cut;

typedef struct bp__split {
    bp__cut cut;
    int chunks;   /* >= 1; 1: the caller alone */
} bp__split;

/* The cuts of one layer's steps for a micro-batch of m rows on T threads:
 *   fwd   Y = f(X W^T + b): rows, or output features (a softmax layer needs whole rows)
 *   dz    dZ = dY f'(Z): rows; with dx by rows, each chunk also computes its rows of dX
 *   dx    dX = dZ W: rows (with dz), or input columns once dZ is whole
 *   dw    dW, db (or an optimizer's fused update): output features
 *   loss  the loss and its gradient at the last layer: rows
 * A cut goes by the larger operand's own rows or columns, so each chunk reads only its share
 * of it; a step is cut only where every chunk keeps BP_CHUNK_MIN_MACS multiply-adds
 * (BP_CHUNK_MIN_VALUES values for element-wise work). */
typedef struct bp__layer_split {
    bp__split fwd, dz, dx, dw, loss;
} bp__layer_split;

/* What the cuts depend on besides the shapes: the thread count and the least work per chunk
 * (BP_CHUNK_MIN_MACS and BP_CHUNK_MIN_VALUES unless bp_net_set_chunk_min changed them). */
typedef struct bp__split_policy {
    int threads;
    long min_macs, min_values;
} bp__split_policy;

/* The split of a layer of n_in inputs and n_out outputs (softmax: whole rows). */
void bp__split_layer(const bp__split_policy *p, bp_int n_in, bp_int n_out, int softmax, bp_int m,
                     bp__layer_split *out);

/* Chunks for element-wise work of `values` values over `extent` rows. */
int bp__split_values(const bp__split_policy *p, int64_t values, bp_int extent);

/* Chunks for element-wise work over `extent` rows (or elements) whose result does not depend on
 * the cut (the optimizer update, the gather): as many as keep min_values each, up to
 * BP_TEAM_MAX_CHUNKS on more than one thread, so that a helper that wakes late still finds
 * chunks to take. */
int bp__split_stream(const bp__split_policy *p, int64_t values, int64_t extent);

/* The rows (or columns) [*lo, *hi) of chunk c when n are cut into `chunks`. */
static inline void bp__span(bp_int n, int chunks, bp_int c, bp_int *lo, bp_int *hi)
{
    *lo = (bp_int)((int64_t)n * c / chunks);
    *hi = (bp_int)((int64_t)n * (c + 1) / chunks);
}

#endif
