/* SPDX-License-Identifier: MIT */
/* exec.tmpl.c: the executor, written once for T: one micro-batch through the plan's steps.
 * Each step is a short function beside its equation (docs/ARCHITECTURE.md); its chunks, cut as
 * split.c decided, run on the thread team, and the step returns when all are done.
 *
 *   forward(i)      Y_i = f(Y_{i-1} W_i^T + b_i)              (Y_{-1} = X)
 *   loss            L, and dY = dL/dY at the last layer
 *   backward(i)     dZ_i = dY_i * f'(Z_i) in place; dY_{i-1} = dZ_i W_i
 *   grads_ready(i)  db_i = beta db_i + sum_r dZ_i; dW_i = beta dW_i + dZ_i^T Y_{i-1}
 *                   (or an optimizer's hook takes dZ_i and Y_{i-1} instead of dW_i)
 *
 * dY and dZ of a layer share one of the two gradient buffers; dX goes into the other, where the
 * layer below finds it as its dY. */

static bp_status nonfinite(const char *fn, bp_int layer, const char *what)
{
    return bp__fail(BP_ERR_NONFINITE, fn, "layer %d: a NaN or Inf appeared in its %s", (int)layer, what);
}

/* Nonzero when the rows x cols block at A (leading dimension ld) is finite. */
static int block_finite(const bp_net *net, bp_int rows, bp_int cols, const T *A, bp_int ld)
{
    for (bp_int r = 0; r < rows; r++)
        if (!bp__all_finite(net->dtype, (size_t)cols, A + (size_t)r * (size_t)ld))
            return 0;
    return 1;
}

/* ---- forward(i): Y = f(X W^T + b), by rows or by output features ---- */

typedef struct fwd_step {
    const IPFX(cores) *k;
    const bp__layer *l;
    bp__split split;
    bp_int m, ldin, ldy;
    const T *in, *W, *b;
    T *Z, *Y;
} fwd_step;

static bp_status forward_chunk(const void *ctx, bp_int c)
{
    const fwd_step *s = ctx;
    const bp__layer *l = s->l;
    bp_int r0 = 0, r1 = s->m, f0 = 0, f1 = l->n_out;
    if (s->split.cut == BP_CUT_ROWS)
        bp__span(s->m, s->split.chunks, c, &r0, &r1);
    else
        bp__span(l->n_out, s->split.chunks, c, &f0, &f1);
    T *Y = s->Y + (size_t)r0 * (size_t)s->ldy + (size_t)f0;
    T *Z = s->Z ? s->Z + (size_t)r0 * (size_t)l->n_out + (size_t)f0 : NULL;
    s->k->gemm(BP_N, BP_T, r1 - r0, f1 - f0, l->n_in, 1, s->in + (size_t)r0 * (size_t)s->ldin, s->ldin,
               s->W + (size_t)f0 * (size_t)l->n_in, l->n_in, 0, Y, s->ldy);
    s->k->bias_act(l->act, (T)l->alpha, r1 - r0, f1 - f0, s->b + f0, Z, l->n_out, Y, s->ldy);
    return BP_OK;
}

bp_status IPFX(forward_step)(bp_net *net, const char *fn, bp_int i, bp_int m, const T *in, bp_int ldin, T *Z,
                             T *Y, bp_int ldy)
{
    const bp__layer *l = &net->layers[i];
    bp__layer_split tmp;
    const fwd_step s = {cores_of(net), l, bp__net_split(net, i, m, &tmp)->fwd, m, ldin, ldy, in,
                        PARAM(net, l->w_off), PARAM(net, l->b_off), Z, Y};
    TRY(bp__team_run(net->team, forward_chunk, &s, s.split.chunks));
    if (net->check_finite && !block_finite(net, m, l->n_out, Y, ldy))
        return nonfinite(fn, i, "forward output");
    return BP_OK;
}

/* ---- loss: L and dY at the last layer, by rows ---- */

typedef struct loss_step {
    const IPFX(cores) *k;
    bp_loss loss;
    const micro *b;
    bp_int n_out, chunks;
    const T *Y;
    T *dY;           /* NULL: the loss alone */
    double *part;    /* each chunk's part of the mean loss */
} loss_step;

/* The least-squares loss of n rows (BP_LOSS_LEAST_SQUARES): *loss = sum (y - t)^2 / (2 divisor)
 * (summed in double), dY = (y - t) / divisor when dY is not NULL. */
static void half_squares(bp_int n, bp_int m, const T *Y, const T *tgt, bp_int ldt, T divisor, double *loss, T *dY)
{
    double sum = 0;
    for (bp_int r = 0; r < n; r++)
        for (bp_int j = 0; j < m; j++) {
            const T d = Y[(size_t)r * (size_t)m + (size_t)j] - tgt[(size_t)r * (size_t)ldt + (size_t)j];
            sum += (double)d * d;
            if (dY)
                dY[(size_t)r * (size_t)m + (size_t)j] = d / divisor;
        }
    *loss = sum / (2.0 * divisor);
}

static bp_status loss_chunk(const void *ctx, bp_int c)
{
    const loss_step *s = ctx;
    const micro *b = s->b;
    bp_int r0, r1;
    bp__span(b->rows, s->chunks, c, &r0, &r1);
    const size_t off = (size_t)r0 * (size_t)s->n_out;
    const T *Y = s->Y + off, *tgt = b->tgt ? b->tgt + (size_t)r0 * (size_t)b->ldt : NULL;
    T *dY = s->dY ? s->dY + off : NULL;
    double *part = &s->part[c];
    switch (s->loss) {
    case BP_LOSS_SOFTMAX_XENT:
        return s->k->softmax_xent(r1 - r0, s->n_out, Y, s->n_out, b->labels + r0, b->divisor, part, dY, s->n_out);
    case BP_LOSS_SIGMOID_BCE:
        return s->k->sigmoid_bce(r1 - r0, s->n_out, Y, s->n_out, tgt, b->ldt, b->divisor, part, dY, s->n_out);
    case BP_LOSS_LEAST_SQUARES:
        half_squares(r1 - r0, s->n_out, Y, tgt, b->ldt, b->divisor, part, dY);
        return BP_OK;
    case BP_LOSS_MSE:
        break;
    }
    return s->k->mse(r1 - r0, s->n_out, Y, s->n_out, tgt, b->ldt, b->divisor, part, dY, s->n_out);
}

/* Adds the micro-batch's part of the mean loss to *loss (the chunks' parts in chunk order). */
static bp_status loss_step_run(bp_net *net, const micro *b, T *dY, double *loss)
{
    const bp_int last = net->n_layers - 1;
    const bp__layer *l = &net->layers[last];
    bp__layer_split tmp;
    double part[BP_TEAM_MAX_CHUNKS];
    const loss_step s = {cores_of(net), net->loss, b, l->n_out, bp__net_split(net, last, b->rows, &tmp)->loss.chunks,
                         ARENA(net, l->y_off), dY, part};
    TRY(bp__team_run(net->team, loss_chunk, &s, s.chunks));
    for (bp_int c = 0; c < s.chunks; c++)
        *loss += part[c];
    return BP_OK;
}

/* ---- backward(i): dZ = dY f'(Z) in place, by rows; dX = dZ W by rows or input columns ---- */

typedef struct back_step {
    const IPFX(cores) *k;
    const bp__layer *l;
    const bp__layer_split *split;
    bp_int m;
    const T *Z, *Y, *W;
    T *dY;   /* becomes dZ */
    T *dX;   /* NULL when not wanted (the first layer, unless the caller asked for dL/dX) */
    bp_int lddx;
} back_step;

/* Rows [r0, r1) of dZ; nothing to do for the identity, whose dZ is dY. */
static void dz_rows(const back_step *s, bp_int r0, bp_int r1)
{
    const bp__layer *l = s->l;
    if (l->act == BP_ACT_IDENTITY)
        return;
    const size_t off = (size_t)r0 * (size_t)l->n_out;
    s->k->dz(l->act, (T)l->alpha, r1 - r0, l->n_out, s->Z ? s->Z + off : NULL, l->n_out, s->Y + off, l->n_out,
             s->dY + off, l->n_out, s->dY + off, l->n_out);
}

/* Rows [r0, r1) and input columns [i0, i1) of dX. */
static void dx_block(const back_step *s, bp_int r0, bp_int r1, bp_int i0, bp_int i1)
{
    const bp__layer *l = s->l;
    s->k->gemm(BP_N, BP_N, r1 - r0, i1 - i0, l->n_out, 1, s->dY + (size_t)r0 * (size_t)l->n_out, l->n_out,
               s->W + i0, l->n_in, 0, s->dX + (size_t)r0 * (size_t)s->lddx + (size_t)i0, s->lddx);
}

/* A chunk of rows: its dZ, and its dX when dX goes by rows. */
static bp_status dz_chunk(const void *ctx, bp_int c)
{
    const back_step *s = ctx;
    bp_int r0, r1;
    bp__span(s->m, s->split->dz.chunks, c, &r0, &r1);
    dz_rows(s, r0, r1);
    if (s->dX && s->split->dx.cut == BP_CUT_ROWS)
        dx_block(s, r0, r1, 0, s->l->n_in);
    return BP_OK;
}

/* A chunk of dX's columns, once dZ is whole. */
static bp_status dx_chunk(const void *ctx, bp_int c)
{
    const back_step *s = ctx;
    bp_int i0, i1;
    bp__span(s->l->n_in, s->split->dx.chunks, c, &i0, &i1);
    dx_block(s, 0, s->m, i0, i1);
    return BP_OK;
}

static bp_status backward_step(bp_net *net, const char *fn, bp_int i, bp_int m, T *dY, T *dX, bp_int lddx)
{
    const bp__layer *l = &net->layers[i];
    bp__layer_split tmp;
    const back_step s = {cores_of(net), l, bp__net_split(net, i, m, &tmp), m,
                         l->z_off == SIZE_MAX ? NULL : ARENA(net, l->z_off), ARENA(net, l->y_off),
                         PARAM(net, l->w_off), dY, dX, lddx};
    TRY(bp__team_run(net->team, dz_chunk, &s, s.split->dz.chunks));
    if (dX && s.split->dx.cut == BP_CUT_COLS)
        TRY(bp__team_run(net->team, dx_chunk, &s, s.split->dx.chunks));
    if (dX && net->check_finite && !block_finite(net, m, l->n_in, dX, lddx))
        return nonfinite(fn, i, "gradient");
    return BP_OK;
}

/* ---- the caller's dY in place of the loss; dX of the raw inputs ---- */

/* The VJP modes: the caller's dY rows (or e_unit for every row) into the gradient buffer, where
 * backward takes dY. */
static void take_dy(const bp_net *net, const micro *b, T *G)
{
    const bp_int n_out = bp__n_out(net);
    for (bp_int r = 0; r < b->rows; r++) {
        T *g = G + (size_t)r * (size_t)n_out;
        if (b->dY) {
            memcpy(g, b->dY + (size_t)r * (size_t)b->lddy, (size_t)n_out * sizeof(T));
        } else {
            memset(g, 0, (size_t)n_out * sizeof(T));
            g[b->unit] = 1;
        }
    }
}

/* ---- the parameter Jacobian's rows of layer i: per sample r, dz_r (x) x_r and dz_r ---- */

typedef struct jac_step {
    const IPFX(cores) *k;
    const bp__layer *l;
    const micro *b;
    bp_int ldin, chunks;
    size_t stride;   /* between two samples' rows: n_out ldj */
    const T *dZ, *in;
} jac_step;

static bp_status jac_chunk(const void *ctx, bp_int c)
{
    const jac_step *s = ctx;
    const bp__layer *l = s->l;
    bp_int r0, r1;
    bp__span(s->b->rows, s->chunks, c, &r0, &r1);
    for (bp_int r = r0; r < r1; r++) {
        T *row = s->b->jac + (size_t)r * s->stride;
        const T *dz = s->dZ + (size_t)r * (size_t)l->n_out;
        /* the outer product dz x^T (n_out x n_in, row-major): a rank-1 gemm, which is ger */
        s->k->gemm(BP_T, BP_N, l->n_out, l->n_in, 1, 1, dz, l->n_out, s->in + (size_t)r * (size_t)s->ldin, s->ldin,
                   0, row + l->w_off, l->n_in);
        memcpy(row + l->b_off, dz, (size_t)l->n_out * sizeof(T));
    }
    return BP_OK;
}

static bp_status jac_rows(bp_net *net, bp_int i, const micro *b, const T *dZ, const T *in, bp_int ldin)
{
    const bp__layer *l = &net->layers[i];
    const bp__split_policy p = bp__net_policy(net);
    const size_t n_out = (size_t)bp__n_out(net);
    const jac_step s = {cores_of(net), l, b, ldin,
                        bp__split_stream(&p, (int64_t)b->rows * l->n_out * (l->n_in + 1), b->rows), n_out * b->ldj,
                        dZ, in};
    return bp__team_run(net->team, jac_chunk, &s, s.chunks);
}

/* dL/dX of the raw inputs of a standardising network: x' = (x - mean) / std, so dx = dx' / std
 * (features with std below the floor are only centred: dx = dx'). */
static void unstandardize_dx(const bp_net *net, const micro *b)
{
    const bp_int d = net->n_in;
    const double *sd = net->stdz + d;
    for (bp_int r = 0; r < b->rows; r++) {
        T *dx = b->dX + (size_t)r * (size_t)b->lddx;
        for (bp_int j = 0; j < d; j++)
            if (sd[j] >= BP_STD_FLOOR)
                dx[j] = (T)(dx[j] / sd[j]);
    }
}

/* ---- grads_ready(i): db and dW (or the optimizer's hook), by output features ---- */

typedef struct ready_step {
    const IPFX(cores) *k;
    bp_net *net;
    const bp__layer *l;
    const bp__grad_hook *hook;
    bp_int m, chunks, ldin;
    const T *dZ, *in;
    T beta;
} ready_step;

static bp_status ready_chunk(const void *ctx, bp_int c)
{
    const ready_step *s = ctx;
    const bp__layer *l = s->l;
    bp_int f0, f1;
    bp__span(l->n_out, s->chunks, c, &f0, &f1);
    T *db = GRAD(s->net, l->b_off);
    for (bp_int j = f0; j < f1; j++)
        db[j] = s->beta == 0 ? 0 : s->beta * db[j];
    for (bp_int r = 0; r < s->m; r++) {
        const T *dz = s->dZ + (size_t)r * (size_t)l->n_out;
        for (bp_int j = f0; j < f1; j++)
            db[j] += dz[j];
    }
    if (s->hook)
        s->hook->apply(s->hook, s->net, s->k, l, s->m, s->dZ, s->in, s->ldin, f0, f1);
    else
        s->k->gemm(BP_T, BP_N, f1 - f0, l->n_in, s->m, 1, s->dZ + f0, l->n_out, s->in, s->ldin, s->beta,
                   GRAD(s->net, l->w_off) + (size_t)f0 * (size_t)l->n_in, l->n_in);
    return BP_OK;
}

static bp_status ready_step_run(bp_net *net, const char *fn, bp_int i, const micro *b, const T *dZ, const T *in,
                                bp_int ldin, const bp__grad_hook *hook)
{
    const bp__layer *l = &net->layers[i];
    bp__layer_split tmp;
    const ready_step s = {cores_of(net), net, l, hook, b->rows, bp__net_split(net, i, b->rows, &tmp)->dw.chunks,
                          ldin, dZ, in, b->beta};
    TRY(bp__team_run(net->team, ready_chunk, &s, s.chunks));
    if (net->check_finite && !hook &&
        !bp__all_finite(net->dtype, (size_t)l->n_out * (size_t)(l->n_in + 1), GRAD(net, l->w_off)))
        return nonfinite(fn, i, "gradient");
    return BP_OK;
}

/* ---- The runner ---- */

/* The input of layer i: the micro-batch's X, or layer i-1's kept output. */
static const T *layer_input(const bp_net *net, const micro *b, bp_int i, bp_int *ld)
{
    if (i == 0) {
        *ld = b->ldx;
        return b->X;
    }
    *ld = net->layers[i - 1].n_out;
    return ARENA(net, net->layers[i - 1].y_off);
}

bp_status IPFX(run_micro)(bp_net *net, const char *fn, const micro *b, bp__mode mode, const bp__grad_hook *hook,
                          double *loss)
{
    int cur = 0;  /* which of the two gradient buffers holds the current layer's dY */
    for (bp_int s = 0; s < net->n_steps; s++) {
        const bp_int i = net->steps[s].layer;
        const bp__layer *l = &net->layers[i];
        bp_int ldin;
        const T *in = layer_input(net, b, i, &ldin);
        switch (net->steps[s].kind) {
        case BP_STEP_FORWARD:
            TRY(IPFX(forward_step)(net, fn, i, b->rows, in, ldin, l->z_off == SIZE_MAX ? NULL : ARENA(net, l->z_off),
                                   ARENA(net, l->y_off), l->n_out));
            break;
        case BP_STEP_LOSS:
            if (mode == BP_MODE_VJP || mode == BP_MODE_INPUT_GRAD)
                take_dy(net, b, ARENA(net, net->g_off[0]));
            else
                TRY(loss_step_run(net, b, mode == BP_MODE_LOSS_ONLY ? NULL : ARENA(net, net->g_off[0]), loss));
            if (mode == BP_MODE_LOSS_ONLY)
                return BP_OK;
            cur = 0;
            break;
        case BP_STEP_BACKWARD:
            TRY(backward_step(net, fn, i, b->rows, ARENA(net, net->g_off[cur]),
                              i > 0 ? ARENA(net, net->g_off[cur ^ 1]) : b->dX, i > 0 ? l->n_in : b->lddx));
            if (i == 0 && b->dX && net->stdz)
                unstandardize_dx(net, b);
            cur ^= 1;
            break;
        case BP_STEP_GRADS_READY:  /* layer i's dZ is in the buffer backward(i) left behind */
            if (b->jac)
                TRY(jac_rows(net, i, b, ARENA(net, net->g_off[cur ^ 1]), in, ldin));
            else if (mode != BP_MODE_INPUT_GRAD)
                TRY(ready_step_run(net, fn, i, b, ARENA(net, net->g_off[cur ^ 1]), in, ldin, hook));
            if (b->reduce)
                TRY(bp__dp_ready(net, fn, i));
            break;
        }
        if (b->reduce)
            TRY(bp__dp_progress(net, fn));
    }
    return BP_OK;
}
