/* SPDX-License-Identifier: MIT */
/* batch.tmpl.c: a training pass over a batch, written once for T: the batch streams through the
 * plan in micro-batches (gathered into the arena when the training helper shuffles), each run
 * by the executor; the loss and the count of correct predictions are summed over them. */

/* The gather of a micro-batch's targets idx[0..rows) into the arena (the inputs are staged by
 * stage_input). */
typedef struct gather_step {
    const bp_net *net;
    bp_int ldt, rows, chunks;
    const int32_t *idx;
    const void *targets;
} gather_step;

static bp_status gather_chunk(const void *ctx, bp_int c)
{
    const gather_step *g = ctx;
    const bp_net *net = g->net;
    const bp_int n_out = bp__n_out(net);
    bp_int r0, r1;
    bp__span(g->rows, g->chunks, c, &r0, &r1);
    if (net->loss == BP_LOSS_SOFTMAX_XENT) {
        int32_t *tg = (int32_t *)(void *)((char *)net->arena + net->tg_off);
        for (bp_int r = r0; r < r1; r++)
            tg[r] = ((const int32_t *)g->targets)[g->idx[r]];
    } else {
        T *tg = ARENA(net, net->tg_off);
        for (bp_int r = r0; r < r1; r++)
            memcpy(tg + (size_t)r * (size_t)n_out, (const T *)g->targets + (size_t)g->idx[r] * (size_t)g->ldt,
                   (size_t)n_out * sizeof(T));
    }
    return BP_OK;
}

/* Points b at rows [start, start + b->rows) of the batch: its inputs as stage_input leaves them,
 * its targets gathered through idx, or in place. */
static bp_status locate_rows(bp_net *net, micro *b, bp_int start, const T *X, bp_int ldx, const int32_t *idx,
                             const void *targets, bp_int ldt)
{
    const int labels = net->loss == BP_LOSS_SOFTMAX_XENT;
    TRY(stage_input(net, b->rows, idx ? X : X + (size_t)start * (size_t)ldx, ldx, idx ? idx + start : NULL, &b->X,
                    &b->ldx));
    if (!idx) {
        b->labels = labels ? (const int32_t *)targets + start : NULL;
        b->tgt = labels ? NULL : (const T *)targets + (size_t)start * (size_t)ldt;
        b->ldt = labels ? 0 : ldt;
        return BP_OK;
    }
    const bp__split_policy p = bp__net_policy(net);
    const bp_int n_out = bp__n_out(net);
    const int chunks = bp__split_stream(&p, (int64_t)b->rows * (labels ? 1 : n_out), b->rows);
    const gather_step g = {net, ldt, b->rows, chunks, idx + start, targets};
    TRY(bp__team_run(net->team, gather_chunk, &g, g.chunks));
    b->labels = labels ? (const int32_t *)(const void *)((const char *)net->arena + net->tg_off) : NULL;
    b->tgt = labels ? NULL : ARENA(net, net->tg_off);
    b->ldt = labels ? 0 : n_out;
    return BP_OK;
}

/* Correct predictions of the micro-batch whose outputs are in the last layer's buffer: the
 * arg-max against the label, or (BCE) each output against its target at 1/2. */
static int64_t count_correct(const bp_net *net, const micro *b)
{
    const bp__layer *l = &net->layers[net->n_layers - 1];
    const T *Y = ARENA(net, l->y_off);
    int64_t c = 0;
    for (bp_int r = 0; r < b->rows; r++) {
        const T *y = Y + (size_t)r * (size_t)l->n_out;
        if (net->loss == BP_LOSS_SOFTMAX_XENT) {
            c += argmax(y, l->n_out) == b->labels[r];
        } else {
            const T *t = b->tgt + (size_t)r * (size_t)b->ldt;
            for (bp_int j = 0; j < l->n_out; j++)
                c += (y[j] > 0) == (t[j] > (T)0.5);
        }
    }
    return c;
}

/* Points b at rows [start, start + b->rows) of the caller's dY and dX, if any. */
static void locate_io(const bp_net *net, micro *b, bp_int start, const bp__pass_io *io)
{
    const size_t n_out = (size_t)bp__n_out(net);
    if (!io)
        return;
    b->dY = io->dY ? (const T *)io->dY + (size_t)start * (size_t)io->lddy : NULL;
    b->lddy = io->lddy;
    b->dX = io->dX ? (T *)io->dX + (size_t)start * (size_t)io->lddx : NULL;
    b->lddx = io->lddx;
    b->unit = io->unit;
    b->jac = io->jac ? (T *)io->jac + (size_t)start * n_out * io->ldj : NULL;
    b->ldj = io->ldj;
}

/* The micro-batches of the pass over n rows; total: the loss divisor (n, or the global batch of a
 * reduced pass, whose last micro-batch announces each layer's final gradient: reduce). */
static bp_status run_batch(bp_net *net, const char *fn, bp_int n, bp_int total, int reduce, const T *X, bp_int ldx,
                           const int32_t *idx, const void *targets, bp_int ldt, bp__mode mode,
                           const bp__grad_hook *hook, const bp__pass_io *io, double *loss, int64_t *correct)
{
    const T beta0 = io ? (T)io->beta : 0;
    const int vjp = mode == BP_MODE_VJP || mode == BP_MODE_INPUT_GRAD;
    for (bp_int start = 0; start < n; start += net->mb) {
        micro b = {.rows = n - start < net->mb ? n - start : net->mb, .divisor = (T)total,
                   .beta = start == 0 ? beta0 : 1};
        b.reduce = reduce && start + b.rows == n;
        locate_io(net, &b, start, io);
        if (vjp)
            TRY(stage_input(net, b.rows, X + (size_t)start * (size_t)ldx, ldx, NULL, &b.X, &b.ldx));
        else
            TRY(locate_rows(net, &b, start, X, ldx, idx, targets, ldt));
        TRY(IPFX(run_micro)(net, fn, &b, mode, hook, loss));
        if (correct && !bp__loss_squared(net->loss))
            *correct += count_correct(net, &b);
    }
    return BP_OK;
}

bp_status IPFX(net_batch)(bp_net *net, const char *fn, bp_int n, const void *X, bp_int ldx, const int32_t *idx,
                          const void *targets, bp_int ldt, bp__mode mode, const bp__grad_hook *hook,
                          const bp__pass_io *io, double *loss, int64_t *correct)
{
    /* A reduced pass (a reducer, dp.h): the loss divisor is the global batch, the gradient the sum
     * over the ranks. */
    const int reduce = bp__dp_on(net, mode == BP_MODE_GRAD);
    bp_int total = n;
    if (reduce) {
        BP_REQUIRE(!(io && io->beta != 0), BP_ERR_UNSUPPORTED,
                   "a data-parallel gradient (the network has a reducer) cannot accumulate: beta must be 0");
        TRY(bp__dp_begin(net, fn, n, &total));
    }
    if (n == 0 && (mode == BP_MODE_GRAD || mode == BP_MODE_VJP) && !(io && io->beta != 0))
        memset(net->grads, 0, net->n_params * net->esize);
    double sum = 0;
    int64_t right = 0;
    bp__blas_serial_begin();
    bp_status st = run_batch(net, fn, n, total, reduce, X, ldx, idx, targets, ldt, mode, hook, io, &sum,
                             correct ? &right : NULL);
    bp__blas_serial_end();
    if (reduce)
        st = bp__dp_finish(net, fn, st, &sum, correct ? &right : NULL);
    if (st != BP_OK)
        return st;
    if (loss)
        *loss = sum;
    if (correct)
        *correct += right;
    return BP_OK;
}
