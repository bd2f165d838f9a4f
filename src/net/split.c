/* SPDX-License-Identifier: MIT */
/* split.c: how each step of a layer is cut into chunks (split.h): the scheduler's policy, kept
 * apart from the steps' arithmetic. Shapes and the thread count decide; the backend, the load
 * and the helpers that happen to run do not, so results depend on the configuration alone. */
#include <stdint.h>
#include "net/split.h"
#include "net/team.h"

/* As many chunks as the work allows at `min` per chunk, at most T and at most `extent`. */
static int chunks_for(int64_t work, int64_t min, bp_int extent, int threads)
{
    int64_t c = work / min;
    if (c > threads)
        c = threads;
    if (c > extent)
        c = extent;
    return c < 1 ? 1 : (int)c;
}

int bp__split_values(const bp__split_policy *p, int64_t values, bp_int extent)
{
    return chunks_for(values, p->min_values, extent, p->threads);
}

int bp__split_stream(const bp__split_policy *p, int64_t values, int64_t extent)
{
    const bp_int most = extent < BP_TEAM_MAX_CHUNKS ? (bp_int)extent : BP_TEAM_MAX_CHUNKS;
    return p->threads == 1 ? 1 : chunks_for(values, p->min_values, most, BP_TEAM_MAX_CHUNKS);
}

void bp__split_layer(const bp__split_policy *p, bp_int n_in, bp_int n_out, int softmax, bp_int m,
                     bp__layer_split *out)
{
    const int threads = p->threads;
    const int64_t macs = (int64_t)m * n_in * n_out;
    /* Forward: X (m x n_in) against W (n_out x n_in); rows when X is the larger. */
    out->fwd.cut = softmax || m >= n_out ? BP_CUT_ROWS : BP_CUT_COLS;
    out->fwd.chunks = chunks_for(macs, p->min_macs, out->fwd.cut == BP_CUT_ROWS ? m : n_out, threads);
    /* dX = dZ (m x n_out) W (n_out x n_in): rows when dX has more rows than columns. */
    out->dx.cut = m >= n_in ? BP_CUT_ROWS : BP_CUT_COLS;
    out->dx.chunks = chunks_for(macs, p->min_macs, out->dx.cut == BP_CUT_ROWS ? m : n_in, threads);
    out->dz.cut = BP_CUT_ROWS;
    out->dz.chunks = out->dx.cut == BP_CUT_ROWS ? out->dx.chunks : bp__split_values(p, (int64_t)m * n_out, m);
    /* dW = dZ^T X: its rows are output features. */
    out->dw.cut = BP_CUT_COLS;
    out->dw.chunks = chunks_for(macs, p->min_macs, n_out, threads);
    out->loss.cut = BP_CUT_ROWS;
    out->loss.chunks = bp__split_values(p, (int64_t)m * n_out, m);
}
