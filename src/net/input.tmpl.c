/* SPDX-License-Identifier: MIT */
/* input.tmpl.c: a micro-batch's inputs as the first layer reads them, written once for T: X's
 * rows in place, or staged into the arena's Xg buffer when they are gathered (the training
 * helper's permutation) or standardised (bp_net_set_standardization), or both. */

typedef struct stage_step {
    const bp_net *net;
    const T *X;
    bp_int ldx, rows, chunks;
    const int32_t *idx;   /* NULL: rows 0..rows-1 of X */
} stage_step;

static bp_status stage_chunk(const void *ctx, bp_int c)
{
    const stage_step *s = ctx;
    const bp_net *net = s->net;
    const bp_int d = net->n_in;
    const double *mean = net->stdz, *sd = net->stdz ? net->stdz + d : NULL;
    bp_int r0, r1;
    bp__span(s->rows, s->chunks, c, &r0, &r1);
    for (bp_int r = r0; r < r1; r++) {
        const T *x = s->X + (size_t)(s->idx ? s->idx[r] : r) * (size_t)s->ldx;
        T *xg = ARENA(net, net->xg_off) + (size_t)r * (size_t)d;
        if (!mean) {
            memcpy(xg, x, (size_t)d * sizeof(T));
            continue;
        }
        for (bp_int j = 0; j < d; j++)
            xg[j] = (T)bp__standardized(x[j], mean[j], sd[j]);
    }
    return BP_OK;
}

/* The rows X's rows 0..rows-1 (or idx[0..rows-1]) as the first layer reads them: *in and *ldin
 * point at X itself, or at Xg where they were staged. */
static bp_status stage_input(bp_net *net, bp_int rows, const T *X, bp_int ldx, const int32_t *idx, const T **in,
                             bp_int *ldin)
{
    if (!idx && !net->stdz) {
        *in = X;
        *ldin = ldx;
        return BP_OK;
    }
    const bp__split_policy p = bp__net_policy(net);
    const stage_step s = {net, X, ldx, rows, bp__split_stream(&p, (int64_t)rows * net->n_in, rows), idx};
    TRY(bp__team_run(net->team, stage_chunk, &s, s.chunks));
    *in = ARENA(net, net->xg_off);
    *ldin = net->n_in;
    return BP_OK;
}
