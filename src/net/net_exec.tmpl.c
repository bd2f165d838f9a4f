/* net_exec.tmpl.c: the executor of a planned network (it walks the step list), initialisation,
 * evaluation and the gradient check, written once for T (see prec.h). */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <cblas.h>
#include <lapacke.h>
#include "backprop/naive.h"
#include "kernels/kernels_internal.h"
#include "net/net_exec.h"

/* The kernels a network runs on; the naive table has the same signatures. */
typedef struct kernels {
    bp_status (*dense_forward)(bp_layout, bp_int, bp_int, bp_int, const T *, bp_int, const T *,
                               bp_int, const T *, bp_act, T, T *, bp_int, T *, bp_int);
    bp_status (*dense_backward)(bp_layout, bp_int, bp_int, bp_int, const T *, bp_int, const T *,
                                bp_int, bp_act, T, const T *, bp_int, const T *, bp_int, const T *,
                                bp_int, T *, bp_int, T, T *, bp_int, T *, T *, bp_int);
    bp_status (*softmax_xent)(bp_int, bp_int, const T *, bp_int, const int32_t *, T, double *, T *, bp_int);
    bp_status (*sigmoid_bce)(bp_int, bp_int, const T *, bp_int, const T *, bp_int, T, double *, T *, bp_int);
    bp_status (*mse)(bp_int, bp_int, const T *, bp_int, const T *, bp_int, T, double *, T *, bp_int);
} kernels;

static const kernels backends[2] = {
    [BP_BACKEND_BLAS] = {PFX(dense_forward), PFX(dense_backward), PFX(softmax_xent), PFX(sigmoid_bce), PFX(mse)},
    [BP_BACKEND_NAIVE] = {PFX(dense_forward_naive), PFX(dense_backward_naive), PFX(softmax_xent_naive),
                          PFX(sigmoid_bce_naive), PFX(mse_naive)},
};

/* Buffers of the arena, gradients and parameters. */
#define ARENA(net, off) ((T *)(void *)((char *)(net)->arena + (off)))
#define GRAD(net, off) ((T *)(net)->grads + (off))
#define PARAM(net, off) ((T *)(net)->params + (off))

/* One micro-batch: rows samples X (ldx) and their targets. */
typedef struct micro {
    bp_int rows;
    const T *X;
    bp_int ldx;
    const int32_t *labels;  /* softmax cross-entropy */
    const T *tgt;           /* other losses */
    bp_int ldt;
    T divisor;              /* samples of the whole batch */
    T beta;                 /* 0 for the first micro-batch, 1 after: gradients accumulate */
    T lr, decay;            /* BP_MODE_SGD: the rate and 1 - lr wd */
} micro;

static bp_status nonfinite(const char *fn, bp_int layer, const char *what)
{
    return bp__fail(BP_ERR_NONFINITE, fn, "layer %d: a NaN or Inf appeared in its %s", (int)layer, what);
}

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

/* The workers of a pass. With T > 1 every worker walks the same step list on the same
 * micro-batch, each computing its own slice of every layer's output features (and of
 * every dX's columns), with a barrier wherever a step needs the whole result of the one
 * before. Workers write disjoint slices of the shared arena and gradient, so nothing is
 * summed afterwards and each value is computed by one worker: deterministic for a given
 * thread count. A worker that fails raises `failed`; all keep meeting at the barriers
 * but do no more work, and the pass ends with that micro-batch. */
typedef struct team {
    bp_net *net;
    int w, T;
    atomic_int *failed;
} team;

static void team_barrier(const team *t)
{
    if (t->T > 1)
        bp__pool_barrier(t->net->pool);
}

static int team_failed(const team *t)
{
    return atomic_load(t->failed);
}

/* This worker's slice [*lo, *hi) of n features; a softmax needs whole rows: worker 0. */
static void slice(const team *t, bp_int n, int whole, bp_int *lo, bp_int *hi)
{
    if (whole) {
        *lo = 0;
        *hi = t->w == 0 ? n : 0;
        return;
    }
    *lo = (bp_int)((int64_t)n * t->w / t->T);
    *hi = (bp_int)((int64_t)n * (t->w + 1) / t->T);
}

/* Nonzero when layer l's forward splits the micro-batch's m samples between the workers
 * (more samples than features: each worker then reads only its rows of the larger
 * operand). The loss after the last layer then splits the same rows, with no barrier
 * between the two. */
static int rows_split(const team *t, bp_int m, const bp__layer *l)
{
    return t->T > 1 && m > l->n_out;
}

/* Nonzero when the rows x (hi - lo) block at Y + lo (leading dimension ld) is finite. */
static int block_finite(const bp_net *net, bp_int rows, const T *Y, bp_int ld, bp_int lo, bp_int hi)
{
    for (bp_int r = 0; r < rows; r++)
        if (!bp__all_finite(net->dtype, (size_t)(hi - lo), Y + (size_t)r * (size_t)ld + (size_t)lo))
            return 0;
    return 1;
}

/* ---- Thin layers: GEMMs in pieces ---- */

/* A layer is thin when it has at most BP_THIN_OUT outputs (a classifier's last layer).
 * OpenBLAS 0.3.21 computes such thin products much faster in small pieces than whole:
 * up to about 2^19 multiply-adds it takes an unpacked small-matrix path, and above it
 * packs the operands, which costs more than the product (measured here, one thread:
 * 256 x 10 x 512 in four pieces of 64 rows, 20 us; whole, 48 us). Nor does it gain from
 * a second thread on them. So a thin layer's forward and dX are cut along their rows
 * into pieces of at most BP_GEMM_PIECE multiply-adds, which a single worker shares with
 * its pass helpers, and its dW (or fused W update) along the samples, each piece adding
 * into the result in turn on the calling thread (dW = dZ^T X reads X once, row by row;
 * in pieces of W's columns, shared, it re-read X's rows once per piece and took 1.7x
 * longer at batch 1024). The pieces are fixed by the shapes, so results do not depend
 * on who computed which. Where a piece could not hold BP_PIECE_MIN rows, the product
 * runs whole. */
#define BP_THIN_OUT 32
#define BP_GEMM_PIECE (1 << 19)
#define BP_PIECE_MIN 8

static int thin(const bp_net *net, bp_int m, const bp__layer *l)
{
    return net->backend == BP_BACKEND_BLAS && l->n_out <= BP_THIN_OUT && m > 1;
}

/* Rows per piece of a product whose rows cost `row` multiply-adds each: all n rows if a
 * piece could not hold BP_PIECE_MIN of them. */
static bp_int piece_rows(bp_int n, int64_t row)
{
    const int64_t fit = (int64_t)BP_GEMM_PIECE / (row > 0 ? row : 1);
    return fit < BP_PIECE_MIN || fit >= n ? n : (bp_int)fit;
}

/* C (M x N, row-major) = alpha op(A) B^T-or-B + beta C in pieces of `per` rows; with
 * act_l set, each piece then gets the layer's bias and activation (and its kept Z). */
typedef struct gemm_pieces {
    CBLAS_TRANSPOSE tb;
    bp_int M, N, K, lda, ldb, ldc, per;
    T alpha, beta;
    const T *A, *B;
    T *C;
    const bp__layer *act_l;
    const T *bias;
    T *Z;
} gemm_pieces;

static void gemm_piece(const void *ctx, bp_int c)
{
    const gemm_pieces *g = ctx;
    const bp_int r0 = c * g->per, rows = g->M - r0 < g->per ? g->M - r0 : g->per;
    T *C = g->C + (size_t)r0 * (size_t)g->ldc;
    CB(gemm)(CblasRowMajor, CblasNoTrans, g->tb, rows, g->N, g->K, g->alpha, g->A + (size_t)r0 * (size_t)g->lda,
             g->lda, g->B, g->ldb, g->beta, C, g->ldc);
    if (g->act_l)
        IPFX(bias_act)(g->act_l->act, (T)g->act_l->alpha, rows, g->N, g->bias,
                       g->Z ? g->Z + (size_t)r0 * (size_t)g->N : NULL, g->N, C, g->ldc);
}

/* Runs g in pieces of rows, on the helpers if not NULL. */
static void run_pieces(struct bp__helpers *helpers, gemm_pieces *g)
{
    g->per = piece_rows(g->M, (int64_t)g->N * g->K);
    if (g->M > 0)
        bp__helpers_run(helpers, gemm_piece, g, (g->M + g->per - 1) / g->per);
}

/* A thin layer's weight product, C (M x N) = beta C + alpha A^T B with A (K x M) and B
 * (K x N) sample-major: the K samples in pieces, each adding into C in order. */
static void thin_dw(bp_int M, bp_int N, bp_int K, T alpha, const T *A, bp_int lda, const T *B, bp_int ldb, T beta,
                    T *C, bp_int ldc)
{
    const bp_int per = piece_rows(K, (int64_t)M * N);
    for (bp_int k0 = 0; k0 < K; k0 += per)
        CB(gemm)(CblasRowMajor, CblasTrans, CblasNoTrans, M, N, K - k0 < per ? K - k0 : per, alpha,
                 A + (size_t)k0 * (size_t)lda, lda, B + (size_t)k0 * (size_t)ldb, ldb, k0 == 0 ? beta : 1, C, ldc);
}

/* The fused SGD update of features [lo, hi) of layer l, from their dZ (m x n_out, at dZ + lo)
 * and their bias gradient in the gradient buffer: W = decay W - lr dZ^T X, b = decay b - lr db.
 * With beta = decay the GEMM reads W where an unfused pass would first zero a dW. */
static void sgd_rows(bp_net *net, const bp__layer *l, const micro *b, const T *in, bp_int ldin,
                     const T *dZ, bp_int lo, bp_int hi)
{
    T *W = PARAM(net, l->w_off) + (size_t)lo * (size_t)l->n_in, *bias = PARAM(net, l->b_off);
    const T *db = GRAD(net, l->b_off);
    if (b->rows == 1) {  /* a rank-1 update (ger; with weight decay, one pass) */
        IPFX(rank1)(BP_ROW_MAJOR, hi - lo, l->n_in, -b->lr, dZ, in, b->decay, W, l->n_in);
    } else if (thin(net, b->rows, l)) {
        thin_dw(hi - lo, l->n_in, b->rows, -b->lr, dZ, l->n_out, in, ldin, b->decay, W, l->n_in);
    } else {
        CB(gemm)(CblasRowMajor, CblasTrans, CblasNoTrans, hi - lo, l->n_in, b->rows, -b->lr, dZ, l->n_out,
                 in, ldin, b->decay, W, l->n_in);
    }
    for (bp_int j = lo; j < hi; j++)
        bias[j] = b->decay * bias[j] - b->lr * db[j];
}

/* Features [lo, hi) of layer i's backward through dense_backward: dZ over dY in place
 * (act: the layer's, or identity when dZ is already final), and their rows of dW and db
 * (beta: the micro-batch's), with the finite check. */
static bp_status grad_features(bp_net *net, const kernels *k, const char *fn, bp_int i, const micro *b,
                               const T *in, bp_int ldin, bp_act act, const T *Z, const T *Y, T *dY,
                               bp_int lo, bp_int hi, int db_done)
{
    const bp__layer *l = &net->layers[i];
    T *dW = GRAD(net, l->w_off) + (size_t)lo * (size_t)l->n_in, *db = GRAD(net, l->b_off) + lo;
    bp_status st = BP_OK;
    if (thin(net, b->rows, l)) {  /* dZ and db, then dW in pieces */
        IPFX(dz_db)(act, (T)l->alpha, b->rows, hi - lo, Z ? Z + lo : NULL, l->n_out, Y + lo, l->n_out, dY + lo,
                    l->n_out, dY + lo, l->n_out, b->beta, db_done ? NULL : db);
        thin_dw(hi - lo, l->n_in, b->rows, 1, dY + lo, l->n_out, in, ldin, b->beta, dW, l->n_in);
    } else {
        st = k->dense_backward(BP_ROW_MAJOR, b->rows, l->n_in, hi - lo, in, ldin,
                                     PARAM(net, l->w_off) + (size_t)lo * (size_t)l->n_in, l->n_in, act,
                                     (T)l->alpha, Z ? Z + lo : NULL, l->n_out, Y + lo, l->n_out, dY + lo,
                                     l->n_out, dY + lo, l->n_out, b->beta, dW, l->n_in, db_done ? NULL : db,
                                     NULL, 0);
    }
    if (st == BP_OK && net->check_finite &&
        (!bp__all_finite(net->dtype, (size_t)(hi - lo) * (size_t)l->n_in, dW) ||
         !bp__all_finite(net->dtype, (size_t)(hi - lo), db)))
        st = nonfinite(fn, i, "gradient");
    return st;
}

/* Rows [lo, hi) of layer i's dX = dZ W, with the finite check. */
static bp_status dx_rows(bp_net *net, const kernels *k, const char *fn, bp_int i, const T *dZ, T *dX,
                         bp_int lo, bp_int hi, struct bp__helpers *helpers)
{
    const bp__layer *l = &net->layers[i];
    T *dXr = dX + (size_t)lo * (size_t)l->n_in;
    bp_status st = BP_OK;
    if (thin(net, hi - lo, l)) {
        gemm_pieces g = {.tb = CblasNoTrans, .M = hi - lo, .N = l->n_in, .K = l->n_out,
                         .lda = l->n_out, .ldb = l->n_in, .ldc = l->n_in, .alpha = 1, .beta = 0,
                         .A = dZ + (size_t)lo * (size_t)l->n_out, .B = PARAM(net, l->w_off), .C = dXr};
        run_pieces(helpers, &g);
    } else
        st = k->dense_forward(BP_COL_MAJOR, hi - lo, l->n_out, l->n_in, dZ + (size_t)lo * (size_t)l->n_out,
                                    l->n_out, PARAM(net, l->w_off), l->n_in, NULL, BP_ACT_IDENTITY, 0, NULL, 0,
                                    dXr, l->n_in);
    if (st == BP_OK && net->check_finite && !block_finite(net, hi - lo, dXr, l->n_in, 0, l->n_in))
        st = nonfinite(fn, i, "gradient");
    return st;
}

/* ---- Chunked passes of a single worker, shared with the pass helpers ---- */

/* A layer's element-wise pass over m rows of n_out values (Y with leading dimension ldy,
 * the others n_out), in chunks of `per` rows. */
typedef struct chunked_pass {
    bp_act act;
    T alpha;
    bp_int m, n_out, ldy, per;
    const T *b;
    T *Z, *Y, *dY, *part;
} chunked_pass;

/* Whether a single worker runs layer l's passes over m rows in chunks (bp_net_plan made
 * room for the db parts), shared with the helpers if it has them. Decided by the shape
 * alone, so results do not depend on the helpers. */
static int chunkable(const bp_net *net, bp_int m, const bp__layer *l)
{
    return net->backend == BP_BACKEND_BLAS && net->part_off != SIZE_MAX && (int64_t)m * l->n_out >= BP_HELP_MIN_VALUES;
}

/* Rows per chunk: about 16384 values, and at most BP_PASS_MAX_CHUNKS chunks. */
static bp_int chunk_rows(bp_int m, bp_int n_out)
{
    const bp_int by_size = (16384 + n_out - 1) / n_out, by_count = (m + BP_PASS_MAX_CHUNKS - 1) / BP_PASS_MAX_CHUNKS;
    return by_size > by_count ? by_size : by_count;
}

/* The rows [*r0, *r0 + *rows) of chunk c; returns their offset in an m x n_out block. */
static size_t chunk_span(const chunked_pass *p, bp_int c, bp_int *r0, bp_int *rows)
{
    *r0 = c * p->per;
    *rows = p->m - *r0 < p->per ? p->m - *r0 : p->per;
    return (size_t)*r0 * (size_t)p->n_out;
}

/* A forward chunk: bias, the kept Z, the activation. */
static void forward_chunk(const void *ctx, bp_int c)
{
    const chunked_pass *p = ctx;
    bp_int r0, rows;
    const size_t off = chunk_span(p, c, &r0, &rows);
    IPFX(bias_act)(p->act, p->alpha, rows, p->n_out, p->b, p->Z ? p->Z + off : NULL, p->n_out,
                   p->Y + (size_t)r0 * (size_t)p->ldy, p->ldy);
}

/* A backward chunk: dZ over dY in place, and the chunk's column sums into its part. */
static void backward_chunk(const void *ctx, bp_int c)
{
    const chunked_pass *p = ctx;
    bp_int r0, rows;
    const size_t off = chunk_span(p, c, &r0, &rows);
    IPFX(dz_db)(p->act, p->alpha, rows, p->n_out, p->Z ? p->Z + off : NULL, p->n_out, p->Y + off, p->n_out,
                p->dY + off, p->n_out, p->dY + off, p->n_out, 0, p->part + (size_t)c * (size_t)p->n_out);
}

/* Rows [r0, r1) of layer l's forward: Y (leading dimension ldy) = act(X W^T + b), and Z.
 * A thin layer runs in pieces; on a single worker (one_worker), a large one runs its GEMM
 * whole and then its pass in chunks, both shared with the helpers. */
static bp_status forward_layer(bp_net *net, const kernels *k, const bp__layer *l, const T *in, bp_int ldin,
                               T *Z, T *Y, bp_int ldy, bp_int r0, bp_int r1, int one_worker)
{
    const bp_int m = r1 - r0;
    const size_t off = (size_t)r0 * (size_t)l->n_out, yoff = (size_t)r0 * (size_t)ldy;
    struct bp__helpers *helpers = one_worker ? net->helpers : NULL;
    if (thin(net, m, l)) {
        gemm_pieces g = {.tb = CblasTrans, .M = m, .N = l->n_out, .K = l->n_in,
                         .lda = ldin, .ldb = l->n_in, .ldc = ldy, .alpha = 1, .beta = 0,
                         .A = in + (size_t)r0 * (size_t)ldin, .B = PARAM(net, l->w_off), .C = Y + yoff, .act_l = l,
                         .bias = PARAM(net, l->b_off), .Z = Z ? Z + off : NULL};
        run_pieces(helpers, &g);
        return BP_OK;
    }
    const int chunk = one_worker && chunkable(net, m, l);
    TRY(k->dense_forward(BP_ROW_MAJOR, m, l->n_in, l->n_out, in + (size_t)r0 * (size_t)ldin, ldin,
                         PARAM(net, l->w_off), l->n_in, chunk ? NULL : PARAM(net, l->b_off),
                         chunk ? BP_ACT_IDENTITY : l->act, (T)l->alpha, chunk || !Z ? NULL : Z + off, l->n_out,
                         Y + yoff, ldy));
    if (chunk) {
        const chunked_pass p = {.act = l->act, .alpha = (T)l->alpha, .m = m, .n_out = l->n_out, .ldy = ldy,
                                .per = chunk_rows(m, l->n_out), .b = PARAM(net, l->b_off),
                                .Z = Z ? Z + off : NULL, .Y = Y + yoff};
        bp__helpers_run(helpers, forward_chunk, &p, (m + p.per - 1) / p.per);
    }
    return BP_OK;
}

/* Layer l's dZ over dY, chunked, and db = beta db + the chunks' parts in chunk order. */
static void dz_db_chunked(bp_net *net, const bp__layer *l, bp_int m, T *Z, T *Y, T *dY, T beta, T *db)
{
    const chunked_pass p = {.act = l->act, .alpha = (T)l->alpha, .m = m, .n_out = l->n_out, .ldy = l->n_out,
                            .per = chunk_rows(m, l->n_out), .Z = Z, .Y = Y, .dY = dY, .part = ARENA(net, net->part_off)};
    const bp_int n = (m + p.per - 1) / p.per;
    bp__helpers_run(net->helpers, backward_chunk, &p, n);
    for (bp_int j = 0; j < l->n_out; j++)
        db[j] = beta == 0 ? 0 : beta * db[j];
    for (bp_int c = 0; c < n; c++) {
        const T *part = p.part + (size_t)c * (size_t)l->n_out;
        for (bp_int j = 0; j < l->n_out; j++)
            db[j] += part[j];
    }
}

/* Whether the workers meet after a step of layer i: wherever the next step reads what
 * other workers wrote. Not after grads_ready (each worker its own slices); not after
 * backward(0), unless it went by rows (then grads_ready(0) needs every row of dZ; the
 * pass ends with a barrier anyway); not between a row-split last forward, its loss and
 * a backward by rows (each worker its own rows). */
static int barrier_after(bp__step_kind kind, bp_int i, int row_back, bp__mode mode)
{
    switch (kind) {
    case BP_STEP_FORWARD: return !row_back;
    case BP_STEP_LOSS: return !row_back || mode == BP_MODE_LOSS_ONLY;
    case BP_STEP_BACKWARD: return i > 0 || row_back;
    case BP_STEP_GRADS_READY: return 0;
    }
    return 1;
}

/* Walks the plan's step list for one micro-batch as worker t->w of t->T; each worker adds
 * the part of the micro-batch's loss it computed to *loss (its own sum). */
static bp_status run_steps(const team *t, const char *fn, const micro *b, bp__mode mode, double *loss)
{
    bp_net *net = t->net;
    const kernels *k = &backends[net->backend];
    const bp_int m = b->rows;
    int cur = 0;  /* which of the two gradient buffers holds the current layer's dY */
    bp_status st = BP_OK;
    for (bp_int s = 0; s < net->n_steps; s++) {
        const bp_int i = net->steps[s].layer;
        const bp__layer *l = &net->layers[i];
        const T alpha = (T)l->alpha;
        const int whole = l->act == BP_ACT_SOFTMAX;
        T *Y = ARENA(net, l->y_off), *Z = l->z_off == SIZE_MAX ? NULL : ARENA(net, l->z_off);
        bp_int ldin, lo, hi;
        const T *in = layer_input(net, b, i, &ldin);
        const int idle = st != BP_OK || team_failed(t);
        /* The last layer after a row-split loss goes back by rows too: dZ and dX need no
         * other worker's rows, and dW, db wait for grads_ready (by features). (The naive
         * backend keeps the feature split, so its dZ comes from its own kernel.) */
        const int row_back = i == net->n_layers - 1 && rows_split(t, m, l) && net->backend == BP_BACKEND_BLAS;
        switch (net->steps[s].kind) {
        case BP_STEP_FORWARD:
            if (rows_split(t, m, l) || t->T == 1) {  /* this worker's rows: all on one worker */
                slice(t, m, 0, &lo, &hi);
                if (!idle && hi > lo) {
                    T *Yr = Y + (size_t)lo * (size_t)l->n_out;
                    st = forward_layer(net, k, l, in, ldin, Z, Y, l->n_out, lo, hi, t->T == 1);
                    if (st == BP_OK && net->check_finite && !block_finite(net, hi - lo, Yr, l->n_out, 0, l->n_out))
                        st = nonfinite(fn, i, "forward output");
                }
                break;
            }
            slice(t, l->n_out, whole, &lo, &hi);
            if (!idle && hi > lo) {
                st = k->dense_forward(BP_ROW_MAJOR, m, l->n_in, hi - lo, in, ldin,
                                      PARAM(net, l->w_off) + (size_t)lo * (size_t)l->n_in, l->n_in,
                                      PARAM(net, l->b_off) + lo, l->act, alpha, Z ? Z + lo : NULL, l->n_out,
                                      Y + lo, l->n_out);
                if (st == BP_OK && net->check_finite && !block_finite(net, m, Y, l->n_out, lo, hi))
                    st = nonfinite(fn, i, "forward output");
            }
            break;
        case BP_STEP_LOSS:
            /* The rows the last forward gave this worker, or all rows on worker 0; each
             * worker adds its part to its own sum (net_batch adds them in worker order). */
            if (rows_split(t, m, l))
                slice(t, m, 0, &lo, &hi);
            else
                slice(t, m, 1, &lo, &hi);
            if (!idle && hi > lo) {
                double part = 0;
                const size_t r0 = (size_t)lo * (size_t)l->n_out;
                T *dZ = mode != BP_MODE_LOSS_ONLY ? ARENA(net, net->g_off[0]) + r0 : NULL;
                const T *Yr = Y + r0, *tgt = net->loss == BP_LOSS_SOFTMAX_XENT ? NULL : b->tgt + (size_t)lo * (size_t)b->ldt;
                if (net->loss == BP_LOSS_SOFTMAX_XENT)
                    st = k->softmax_xent(hi - lo, l->n_out, Yr, l->n_out, b->labels + lo, b->divisor, &part, dZ, l->n_out);
                else if (net->loss == BP_LOSS_SIGMOID_BCE)
                    st = k->sigmoid_bce(hi - lo, l->n_out, Yr, l->n_out, tgt, b->ldt, b->divisor, &part, dZ, l->n_out);
                else
                    st = k->mse(hi - lo, l->n_out, Yr, l->n_out, tgt, b->ldt, b->divisor, &part, dZ, l->n_out);
                *loss += part;
            }
            cur = 0;
            break;
        case BP_STEP_BACKWARD: {
            /* dZ overwrites dY in place, each worker its own features with their rows of dW
             * and db; then, once dZ is whole, dX = dZ W by column slices into the other
             * buffer, which the next (lower) layer reads as its dY. With fused SGD the dW
             * rows go into W instead, at grads_ready, after the barrier that ends this
             * step: every worker's dX has then read the old W. */
            T *dY = ARENA(net, net->g_off[cur]);
            T *dX = i > 0 ? ARENA(net, net->g_off[cur ^ 1]) : NULL;
            if (row_back) {
                slice(t, m, 0, &lo, &hi);
                const size_t r0 = (size_t)lo * (size_t)l->n_out;
                if (!idle && hi > lo)
                    IPFX(dz_db)(l->act, alpha, hi - lo, l->n_out, Z ? Z + r0 : NULL, l->n_out, Y + r0, l->n_out,
                                dY + r0, l->n_out, dY + r0, l->n_out, 0, NULL);
                if (!idle && hi > lo && dX)
                    st = dx_rows(net, k, fn, i, dY, dX, lo, hi, NULL);
                cur ^= 1;
                break;
            }
            slice(t, l->n_out, whole, &lo, &hi);
            const int share = !idle && t->T == 1 && chunkable(net, m, l);  /* rows: softmax too */
            if (share)  /* dZ and db chunked, then only the GEMMs */
                dz_db_chunked(net, l, m, Z, Y, dY, mode == BP_MODE_SGD ? 0 : b->beta, GRAD(net, l->b_off));
            if (!idle && hi > lo && mode == BP_MODE_SGD) {
                if (!share)
                    IPFX(dz_db)(l->act, alpha, m, hi - lo, Z ? Z + lo : NULL, l->n_out, Y + lo, l->n_out,
                                dY + lo, l->n_out, dY + lo, l->n_out, 0, GRAD(net, l->b_off) + lo);
            } else if (!idle && hi > lo) {
                st = grad_features(net, k, fn, i, b, in, ldin, share ? BP_ACT_IDENTITY : l->act, Z, Y, dY, lo, hi,
                                   share);
            }
            if (dX && ((t->T > 1 && m > l->n_in) || (t->T == 1 && thin(net, m, l)))) {
                /* More samples than inputs (or a thin layer on one worker): dX by rows,
                 * dX[r] = dZ[r] W. */
                team_barrier(t);
                slice(t, m, 0, &lo, &hi);
                if (st == BP_OK && !team_failed(t) && hi > lo)
                    st = dx_rows(net, k, fn, i, dY, dX, lo, hi, t->T == 1 ? net->helpers : NULL);
            } else if (dX) {
                team_barrier(t);
                slice(t, l->n_in, 0, &lo, &hi);
                if (st == BP_OK && !team_failed(t) && hi > lo) {
                    /* dX[:, lo:hi] = dZ W[:, lo:hi]: a product with the columns lo..hi of the
                     * row-major W, which is the column-major (hi - lo) x n_out matrix at W + lo. */
                    st = k->dense_forward(BP_COL_MAJOR, m, l->n_out, hi - lo, dY, l->n_out,
                                          PARAM(net, l->w_off) + lo, l->n_in, NULL, BP_ACT_IDENTITY, 0,
                                          NULL, 0, dX + lo, l->n_in);
                    if (st == BP_OK && net->check_finite && !block_finite(net, m, dX, l->n_in, lo, hi))
                        st = nonfinite(fn, i, "gradient");
                }
            }
            cur ^= 1;
            break;
        }
        case BP_STEP_GRADS_READY:
            /* Layer i's gradient is final for this micro-batch. Fused SGD applies it here,
             * each worker to its features' rows of W and b, from their dZ (the buffer the
             * backward step wrote in place). */
            slice(t, l->n_out, whole, &lo, &hi);
            if (!idle && hi > lo && (mode == BP_MODE_SGD || row_back)) {
                T *dZ = ARENA(net, net->g_off[cur ^ 1]);
                if (mode == BP_MODE_SGD) {
                    if (row_back)  /* db, as backward's by-rows dZ left it out */
                        IPFX(dz_db)(BP_ACT_IDENTITY, 0, m, hi - lo, NULL, l->n_out, NULL, l->n_out, dZ + lo,
                                    l->n_out, dZ + lo, l->n_out, 0, GRAD(net, l->b_off) + lo);
                    sgd_rows(net, l, b, in, ldin, dZ + lo, lo, hi);
                } else {  /* dW and db of a by-rows backward: dZ is final, so "identity" */
                    st = grad_features(net, k, fn, i, b, in, ldin, BP_ACT_IDENTITY, NULL, Y, dZ, lo, hi, 0);
                }
            }
            break;
        }
        if (st != BP_OK)
            atomic_store(t->failed, 1);
        if (barrier_after(net->steps[s].kind, i, row_back, mode))
            team_barrier(t);
        if (net->steps[s].kind == BP_STEP_LOSS && mode == BP_MODE_LOSS_ONLY)
            break;
    }
    return st;
}

/* Counts correct predictions of the micro-batch whose outputs are in the last layer's buffer. */
/* The index of the largest of n values (the first, on a tie). */
static bp_int argmax(const T *y, bp_int n)
{
    bp_int best = 0;
    for (bp_int j = 1; j < n; j++)
        if (y[j] > y[best])
            best = j;
    return best;
}

static int64_t count_correct(const bp_net *net, const micro *b)
{
    const bp__layer *l = &net->layers[net->n_layers - 1];
    const T *Y = ARENA(net, l->y_off);
    int64_t c = 0;
    for (bp_int r = 0; r < b->rows; r++) {
        const T *y = Y + (size_t)r * (size_t)l->n_out;
        if (net->loss == BP_LOSS_SOFTMAX_XENT) {
            c += argmax(y, l->n_out) == b->labels[r];
        } else {  /* BCE: each output against its target at 1/2 */
            const T *t = b->tgt + (size_t)r * (size_t)b->ldt;
            for (bp_int j = 0; j < l->n_out; j++)
                c += (y[j] > 0) == (t[j] > (T)0.5);
        }
    }
    return c;
}

/* Records a worker's status; a worker other than the caller's thread also keeps its
 * message, which is thread-local, for the caller. */
static void worker_status(bp__worker *wk, int w, bp_status st)
{
    wk->st = st;
    if (st != BP_OK && w > 0)
        snprintf(wk->err, sizeof wk->err, "%s", bp_last_error());
}

/* The first failure of a job, in worker order, raised again on the calling thread. */
static bp_status workers_status(const bp_net *net)
{
    for (int w = 0; w < net->n_threads; w++) {
        const bp__worker *wk = &net->workers[w];
        if (wk->st != BP_OK)
            return w > 0 ? bp__fail_copy(wk->st, wk->err) : wk->st;
    }
    return BP_OK;
}

/* A training pass over a batch, as a job for the network's workers. */
typedef struct batch_job {
    bp_net *net;
    const char *fn;
    bp_int n;
    const T *X;
    bp_int ldx;
    const int32_t *idx;
    const void *targets;
    bp_int ldt;
    bp__mode mode;
    const bp__sgd *sgd;
    int count;
    atomic_int failed;
} batch_job;

/* Worker w's part of the pass: every micro-batch, its slices of every step. */
static void batch_part(batch_job *j, int w)
{
    bp_net *net = j->net;
    bp__worker *wk = &net->workers[w];
    const team t = {net, w, net->n_threads, &j->failed};
    const int labels = net->loss == BP_LOSS_SOFTMAX_XENT;
    const bp_int n_out = net->layers[net->n_layers - 1].n_out;
    wk->loss = 0;
    wk->correct = 0;
    wk->st = BP_OK;
    for (bp_int start = 0; start < j->n; start += net->mb) {
        micro b = {.rows = j->n - start < net->mb ? j->n - start : net->mb, .divisor = (T)j->n,
                   .beta = start == 0 ? 0 : 1, .ldt = labels ? 0 : j->ldt,
                   .lr = j->sgd ? (T)j->sgd->lr : 0, .decay = j->sgd ? (T)(1 - j->sgd->lr * j->sgd->wd) : 1};
        if (j->idx) {  /* each worker gathers its share of the rows into the arena */
            T *xg = ARENA(net, net->xg_off);
            bp_int lo, hi;
            slice(&t, b.rows, 0, &lo, &hi);
            for (bp_int r = lo; r < hi; r++)
                memcpy(xg + (size_t)r * (size_t)net->n_in,
                       j->X + (size_t)j->idx[start + r] * (size_t)j->ldx, (size_t)net->n_in * sizeof(T));
            if (labels) {
                int32_t *tg = (int32_t *)(void *)((char *)net->arena + net->tg_off);
                for (bp_int r = lo; r < hi; r++)
                    tg[r] = ((const int32_t *)j->targets)[j->idx[start + r]];
            } else {
                T *tg = ARENA(net, net->tg_off);
                for (bp_int r = lo; r < hi; r++)
                    memcpy(tg + (size_t)r * (size_t)n_out,
                           (const T *)j->targets + (size_t)j->idx[start + r] * (size_t)j->ldt,
                           (size_t)n_out * sizeof(T));
            }
            team_barrier(&t);
            b.X = xg;
            b.ldx = net->n_in;
            if (labels)
                b.labels = (const int32_t *)(const void *)((const char *)net->arena + net->tg_off);
            else {
                b.tgt = ARENA(net, net->tg_off);
                b.ldt = n_out;
            }
        } else {
            b.X = j->X + (size_t)start * (size_t)j->ldx;
            b.ldx = j->ldx;
            if (labels)
                b.labels = (const int32_t *)j->targets + start;
            else
                b.tgt = (const T *)j->targets + (size_t)start * (size_t)j->ldt;
        }
        const bp_status st = run_steps(&t, j->fn, &b, j->mode, &wk->loss);
        if (st != BP_OK && wk->st == BP_OK)
            worker_status(wk, w, st);
        if (w == 0 && wk->st == BP_OK && j->count && net->loss != BP_LOSS_MSE)
            wk->correct += count_correct(net, &b);
        /* The next micro-batch overwrites the arena: wait until every worker is done with it.
         * After a failure no worker goes on (all read the flag after the barrier). */
        team_barrier(&t);
        if (atomic_load(&j->failed))
            break;
    }
}

static void batch_job_run(void *ctx, int w)
{
    batch_part(ctx, w);
}

bp_status IPFX(net_batch)(bp_net *net, const char *fn, bp_int n, const void *Xv, bp_int ldx,
                          const int32_t *idx, const void *targets, bp_int ldt, bp__mode mode,
                          const bp__sgd *sgd, double *loss, int64_t *correct)
{
    batch_job j = {net, fn, n, Xv, ldx, idx, targets, ldt, mode, sgd, correct != NULL, 0};
    if (n == 0 && mode == BP_MODE_GRAD)
        memset(net->grads, 0, net->n_params * net->esize);
    if (n == 0) {
        if (loss)
            *loss = 0;
        return BP_OK;
    }
    if (net->n_threads > 1)
        bp__pool_run(net->pool, batch_job_run, &j);
    else
        batch_part(&j, 0);
    const bp_status st = workers_status(net);
    if (st != BP_OK)
        return st;
    if (loss) {  /* each worker's part, in worker order */
        *loss = 0;
        for (int w = 0; w < net->n_threads; w++)
            *loss += net->workers[w].loss;
    }
    if (correct)
        *correct += net->workers[0].correct;
    return BP_OK;
}

/* Inference for m rows of a micro-batch, starting at row r0 of the planned buffers: the
 * two gradient buffers in turn, the last layer into out. With the finite check on, each
 * layer's output is scanned as it is produced. */
static bp_status forward_rows(bp_net *net, const char *fn, bp_int m, bp_int r0, const T *X, bp_int ldx,
                              T *out, bp_int ldo, int one_worker)
{
    const kernels *k = &backends[net->backend];
    const T *in = X;
    bp_int ldin = ldx;
    for (bp_int i = 0; i < net->n_layers; i++) {
        const bp__layer *l = &net->layers[i];
        const int last = i == net->n_layers - 1;
        T *Y = last ? out : ARENA(net, net->g_off[i % 2]) + (size_t)r0 * (size_t)l->n_out;
        const bp_int ldy = last ? ldo : l->n_out;
        bp_status st = forward_layer(net, k, l, in, ldin, NULL, Y, ldy, 0, m, one_worker);
        if (st != BP_OK)
            return st;
        if (net->check_finite && !block_finite(net, m, Y, ldy, 0, l->n_out))
            return nonfinite(fn, i, "forward output");
        in = Y;
        ldin = ldy;
    }
    return BP_OK;
}

/* Inference over one micro-batch as a job: with worker threads, each worker runs the
 * whole network on its slice of the rows (no barrier: the rows are independent), in its
 * rows of the planned buffers. */
typedef struct forward_job {
    bp_net *net;
    const char *fn;
    bp_int m;
    const T *X;
    bp_int ldx;
    T *out;
    bp_int ldo;
} forward_job;

static void forward_part(void *ctx, int w)
{
    const forward_job *j = ctx;
    bp__worker *wk = &j->net->workers[w];
    const team t = {j->net, w, j->net->n_threads, NULL};
    bp_int lo, hi;
    slice(&t, j->m, 0, &lo, &hi);
    worker_status(wk, w, hi > lo ? forward_rows(j->net, j->fn, hi - lo, lo, j->X + (size_t)lo * (size_t)j->ldx,
                                                j->ldx, j->out + (size_t)lo * (size_t)j->ldo, j->ldo, 0)
                                 : BP_OK);
}

static bp_status forward_micro(bp_net *net, const char *fn, bp_int m, const T *X, bp_int ldx,
                               T *out, bp_int ldo)
{
    if (net->n_threads == 1 || m < 2)
        return forward_rows(net, fn, m, 0, X, ldx, out, ldo, net->n_threads == 1);
    forward_job j = {net, fn, m, X, ldx, out, ldo};
    bp__pool_run(net->pool, forward_part, &j);
    return workers_status(net);
}

bp_status IPFX(net_forward)(bp_net *net, const char *fn, bp_int n, const void *X, bp_int ldx,
                            void *Y, bp_int ldy)
{
    for (bp_int start = 0; start < n; start += net->mb) {
        const bp_int m = n - start < net->mb ? n - start : net->mb;
        T *out = (T *)Y + (size_t)start * (size_t)ldy;
        bp_status st = forward_micro(net, fn, m, (const T *)X + (size_t)start * (size_t)ldx, ldx, out, ldy);
        if (st != BP_OK)
            return st;
    }
    return BP_OK;
}

/* Accuracy (labels; confusion counts if asked) or RMSE (real targets). */
bp_status IPFX(net_evaluate)(bp_net *net, const char *fn, bp_int n, const void *X, bp_int ldx,
                             const void *targets, bp_int ldt, double *metric, int64_t *confusion)
{
    const bp__layer *last = &net->layers[net->n_layers - 1];
    const bp_int n_out = last->n_out;
    T *Y = ARENA(net, last->y_off);
    const int classify = net->loss != BP_LOSS_MSE;
    double acc = 0;
    if (confusion)
        memset(confusion, 0, (size_t)n_out * (size_t)n_out * sizeof *confusion);
    for (bp_int start = 0; start < n; start += net->mb) {
        const bp_int m = n - start < net->mb ? n - start : net->mb;
        bp_status st = forward_micro(net, fn, m, (const T *)X + (size_t)start * (size_t)ldx, ldx, Y, n_out);
        if (st != BP_OK)
            return st;
        for (bp_int r = 0; r < m; r++) {
            const T *y = Y + (size_t)r * (size_t)n_out;
            if (!classify) {
                const T *t = (const T *)targets + (size_t)(start + r) * (size_t)ldt;
                for (bp_int j = 0; j < n_out; j++)
                    acc += ((double)y[j] - t[j]) * ((double)y[j] - t[j]);
                continue;
            }
            const int32_t c = ((const int32_t *)targets)[start + r];
            const bp_int pred = n_out == 1 ? y[0] > 0 : argmax(y, n_out);
            acc += pred == c;
            if (confusion && n_out > 1)
                confusion[(size_t)c * (size_t)n_out + (size_t)pred]++;
        }
    }
    *metric = n == 0 ? 0 : classify ? acc / n : sqrt(acc / ((double)n * n_out));
    return BP_OK;
}

bp_status IPFX(net_gradcheck)(bp_net *net, const char *fn, bp_int n, const void *X, bp_int ldx,
                              const void *targets, bp_int ldt, double h, double *max_rel_err,
                              size_t *worst)
{
    bp_status st = IPFX(net_batch)(net, fn, n, X, ldx, NULL, targets, ldt, BP_MODE_GRAD, NULL, NULL, NULL);
    if (st != BP_OK)
        return st;
    T *p = net->params;
    const T *g = net->grads;
    double max_diff = 0, max_fd = 0;
    size_t arg = 0;
    for (size_t q = 0; q < net->n_params; q++) {
        const T saved = p[q];
        const T step = h > 0 ? (T)h : (T)(1e-6 * (fabs((double)saved) > 1 ? fabs((double)saved) : 1));
        double lp = 0, lm = 0;
        p[q] = saved + step;
        st = IPFX(net_batch)(net, fn, n, X, ldx, NULL, targets, ldt, BP_MODE_LOSS_ONLY, NULL, &lp, NULL);
        p[q] = saved - step;
        if (st == BP_OK)
            st = IPFX(net_batch)(net, fn, n, X, ldx, NULL, targets, ldt, BP_MODE_LOSS_ONLY, NULL, &lm, NULL);
        p[q] = saved;
        if (st != BP_OK)
            return st;
        const double fd = (lp - lm) / (2 * (double)step), diff = fabs(fd - (double)g[q]);
        if (diff > max_diff) {
            max_diff = diff;
            arg = q;
        }
        if (fabs(fd) > max_fd)
            max_fd = fabs(fd);
    }
    *max_rel_err = max_diff / (max_fd > 1e-12 ? max_fd : 1e-12);
    if (worst)
        *worst = arg;
    return BP_OK;
}

/* A failed LAPACKE call of the orthogonal init: its own work space it could not get
 * (LAPACKE allocates it), else a matrix it could not factor. */
static bp_status lapack_failed(const char *what, lapack_int info, bp_int r, bp_int c)
{
    if (info == LAPACK_WORK_MEMORY_ERROR)
        return bp__fail(BP_ERR_NOMEM, "bp_net_init", "%s could not allocate its work space (%d x %d matrix)", what,
                        (int)r, (int)c);
    return bp__fail(BP_ERR_NONFINITE, "bp_net_init", "%s failed on a %d x %d matrix", what, (int)r, (int)c);
}

/* Orthogonal weights: Q of the QR factorisation of an r x c standard normal matrix
 * (r >= c, column-major), each column's sign fixed by R's diagonal so Q is uniformly
 * distributed; W is Q (n_out >= n_in) or Q^T. A and tau are work space for r c and c. */
static bp_status init_orthogonal(bp_net *net, const bp__layer *l, T *W, double gain, T *A, T *tau)
{
    const bp_int r = l->n_out > l->n_in ? l->n_out : l->n_in, c = l->n_out > l->n_in ? l->n_in : l->n_out;
    for (size_t q = 0; q < (size_t)r * (size_t)c; q++)
        A[q] = (T)bp__rng_normal(net->rng);
    lapack_int info = LA(geqrf)(LAPACK_COL_MAJOR, r, c, A, r, tau);
    if (info != 0)
        return lapack_failed("?geqrf", info, r, c);
    /* The signs of R's diagonal wait in W (at least c elements, written last), then in tau,
     * which orgqr no longer needs. */
    T *sign = W;
    for (bp_int j = 0; j < c; j++)
        sign[j] = A[(size_t)j * (size_t)r + (size_t)j] < 0 ? -1 : 1;
    info = LA(orgqr)(LAPACK_COL_MAJOR, r, c, c, A, r, tau);
    if (info != 0)
        return lapack_failed("?orgqr", info, r, c);
    for (bp_int j = 0; j < c; j++)
        tau[j] = sign[j];
    for (bp_int o = 0; o < l->n_out; o++)
        for (bp_int i = 0; i < l->n_in; i++) {
            /* Q(a, b) = A[a + b r]; W[o][i] = Q(o, i) or Q(i, o) */
            const bp_int a = l->n_out >= l->n_in ? o : i, bcol = l->n_out >= l->n_in ? i : o;
            W[(size_t)o * (size_t)l->n_in + (size_t)i] =
                (T)gain * tau[bcol] * A[(size_t)bcol * (size_t)r + (size_t)a];
        }
    return BP_OK;
}

bp_status IPFX(net_init)(bp_net *net, bp_init scheme, double gain)
{
    /* Orthogonal init needs work space: allocate it for the largest layer before
     * touching any weight, so running out of memory leaves the network as it was. */
    T *A = NULL, *tau = NULL;
    if (scheme == BP_INIT_ORTHOGONAL) {
        size_t most = 1, widest = 1;
        for (bp_int i = 0; i < net->n_layers; i++) {
            const size_t rc = (size_t)net->layers[i].n_out * (size_t)net->layers[i].n_in;
            const size_t c = (size_t)(net->layers[i].n_out < net->layers[i].n_in ? net->layers[i].n_out
                                                                                   : net->layers[i].n_in);
            most = rc > most ? rc : most;
            widest = c > widest ? c : widest;
        }
        A = bp__net_alloc(net, most * sizeof(T));
        tau = bp__net_alloc(net, widest * sizeof(T));
        if (!A || !tau) {
            bp__net_free(net, A);
            bp__net_free(net, tau);
            return bp__fail(BP_ERR_NOMEM, "bp_net_init", "allocating %zu elements of QR work space", most);
        }
    }
    bp_status st = BP_OK;
    for (bp_int i = 0; i < net->n_layers && st == BP_OK; i++) {
        const bp__layer *l = &net->layers[i];
        T *W = PARAM(net, l->w_off);
        const size_t count = (size_t)l->n_out * (size_t)l->n_in;
        const double fan_in = l->n_in, fan_out = l->n_out;
        memset(PARAM(net, l->b_off), 0, (size_t)l->n_out * sizeof(T));
        if (scheme == BP_INIT_ORTHOGONAL) {
            st = init_orthogonal(net, l, W, gain, A, tau);
            continue;
        }
        const int uniform = scheme == BP_INIT_GLOROT_UNIFORM || scheme == BP_INIT_HE_UNIFORM;
        const double var = scheme == BP_INIT_GLOROT_UNIFORM || scheme == BP_INIT_GLOROT_NORMAL
                               ? 2 / (fan_in + fan_out) : 2 / fan_in;
        /* U(-a, a) has variance a^2 / 3: a = sqrt(3 var) gives sqrt(6 / ...) as documented. */
        const double scale = uniform ? sqrt(3 * var) : sqrt(var);
        for (size_t q = 0; q < count; q++)
            W[q] = (T)(scale * (uniform ? 2 * bp__rng_uniform(net->rng) - 1 : bp__rng_normal(net->rng)));
    }
    bp__net_free(net, A);
    bp__net_free(net, tau);
    return st;
}
