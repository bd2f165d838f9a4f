/* SPDX-License-Identifier: MIT */
/* test_kernels.c: every BLAS kernel against its naive twin, and the invariants between call shapes, layouts and precisions. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "runner.h"
#include "testutil.h"

/* Tolerances (all normwise, tu_err; scalars by tu_rel): tu_tol(k, eps) = 8 (k + 2) eps,
 * with k the reduction length of the result: n_in for Y and Z, n for dW and db, n_out
 * for dX, n_in + n_classes for the logistic-regression outputs, m for a loss; softmax
 * adds its row length (n_out or m) because it reduces over the row too. eps is that of
 * the less precise side of the comparison (float vs double: FLT_EPSILON).
 * The normwise error is taken against max(max|ref|, floor) with the floor at the data's
 * own unit: UNIT = 1 for layer results (inputs in [-1, 1] or [-5, 5], W scaled by
 * 1/sqrt(n_in), so every result is O(1)), 1/divisor for gradients of a loss and n/divisor
 * for its value; probabilities keep no floor. In a one-element block near a zero of f (the
 * GELU tail, a saturated tanh's 1 - y^2, a ger residual where the exact dW is 0) the error
 * is then absolute at that unit instead of degenerating into the elementwise relative
 * error DESIGN warns against. */
#define UNIT 1.0

/* One side of a comparison: a precision, and BLAS (naive = 0) or the naive twin (naive = 1). */
typedef struct side {
    const runner *P;
    int naive;
} side;

static const runner *const precs[2] = {&runner_s, &runner_d};
static const bp_layout layouts[2] = {BP_ROW_MAJOR, BP_COL_MAJOR};

typedef struct shape {
    int n, n_in, n_out;
    int big; /* only a few activations per big shape, to keep the naive oracle fast */
} shape;

/* Sizes 1 and odd sizes exhaustively, then shapes large enough for BLAS's blocked paths. */
static int make_shapes(shape *out)
{
    static const int ns[] = {1, 2, 3, 7}, nis[] = {1, 3, 37}, nos[] = {1, 7, 37};
    static const shape big[] = {{64, 100, 37, 1}, {1, 200, 150, 1}, {150, 1, 64, 1},
                                {97, 130, 200, 1}, {200, 64, 1, 1}, {3, 67, 129, 1}};
    int k = 0;
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
        for (size_t b = 0; b < sizeof nis / sizeof *nis; b++)
            for (size_t c = 0; c < sizeof nos / sizeof *nos; c++)
                out[k++] = (shape){ns[a], nis[b], nos[c], 0};
    for (size_t a = 0; a < sizeof big / sizeof *big; a++)
        out[k++] = big[a];
    return k;
}
#define MAX_SHAPES 64

/* A leading-dimension excess: none half the time, else 1..4. */
static int pad(tu_rng *r)
{
    return tu_int(r, 0, 1) ? 0 : tu_int(r, 1, 4);
}

static double eps_of(side a, side b)
{
    return fmax(a.P->eps, b.P->eps);
}

/* Reduction length softmax adds to a result. */
static int kact(bp_act act, int row)
{
    return act == BP_ACT_SOFTMAX ? row : 0;
}

static int reads_y(bp_act act)
{
    return act != BP_ACT_IDENTITY && !bp_act_needs_z(act);
}

typedef struct ctx {
    char s[256];
} ctx;

static ctx describe(side a, side b, bp_layout layout, int n, int n_in, int n_out, bp_act act, unsigned flags)
{
    ctx c;
    snprintf(c.s, sizeof c.s, "%s %s vs %s %s, %s-major, n=%d n_in=%d n_out=%d, act=%s, flags=0x%x",
             a.P->name, a.naive ? "naive" : "blas", b.P->name, b.naive ? "naive" : "blas",
             tu_layout_name(layout), n, n_in, n_out, tu_act_name(act), flags);
    return c;
}

static void check_ok(const ctx *c, bp_status st)
{
    ck_assert_msg(st == BP_OK, "%s: status %d (%s): %s", c->s, (int)st, bp_strerror(st), bp_last_error());
}

static void check_close(const ctx *c, const char *what, double err, double tol)
{
    ck_assert_msg(err <= tol, "%s: %s error %.3g > tolerance %.3g", c->s, what, err, tol);
}

static void check_pad(const ctx *c, const char *what, const double *a, int rows, int width, int ld)
{
    ck_assert_msg(tu_pad_ok(a, rows, width, ld), "%s: %s written beyond its width (ld padding)", c->s, what);
}

/* ---- dense layer ------------------------------------------------------------------------ */

/* A random dense layer: X in [-1, 1], W in [-1, 1] / sqrt(n_in) (so Z stays O(1)), b in [-1, 1]. */
typedef struct layer {
    bp_layout layout;
    int n, ni, no, wr, ww;
    int ldx, ldw;
    double *X, *W, *b;
} layer;

static layer layer_make(tu_rng *r, bp_layout layout, int n, int ni, int no)
{
    layer L = {layout, n, ni, no, tu_wrows(layout, ni, no), tu_wwidth(layout, ni, no), 0, 0, NULL, NULL, NULL};
    const double ws = 1.0 / sqrt((double)ni);
    L.ldx = ni + pad(r);
    L.ldw = L.ww + pad(r);
    L.X = tu_alloc((size_t)n * L.ldx);
    L.W = tu_alloc((size_t)L.wr * L.ldw);
    L.b = tu_alloc((size_t)no);
    tu_fill(r, L.X, n, ni, L.ldx, -1, 1);
    tu_fill(r, L.W, L.wr, L.ww, L.ldw, -ws, ws);
    tu_fill(r, L.b, 1, no, no, -1, 1);
    return L;
}

static void layer_free(layer *L)
{
    free(L->X);
    free(L->W);
    free(L->b);
}

/* The same layer with W stored in the other layout (ldw2 >= the new width). */
static double *transposed_w(const layer *L, int ldw2)
{
    double *W2 = tu_alloc((size_t)L->ww * ldw2);
    tu_transpose(L->wr, L->ww, L->W, L->ldw, W2, ldw2);
    return W2;
}

/* Initial dW (leading dimension lddw) and db of L for an accumulating kernel: random in
 * [-1, 1] for beta = 1, NaN sentinels (which must not be read) for beta = 0. */
static void accum_init(tu_rng *r, const layer *L, int beta1, int lddw, double **dW0, double **db0)
{
    *dW0 = tu_alloc((size_t)L->wr * lddw);
    *db0 = tu_alloc((size_t)L->no);
    if (beta1) {
        tu_fill(r, *dW0, L->wr, L->ww, lddw, -1, 1);
        tu_fill(r, *db0, 1, L->no, L->no, -1, 1);
    }
}

typedef void layer_case(side a, side b, tu_rng *r, bp_layout layout, shape s, bp_act act, unsigned flags);

/* Runs fn over every shape (every stride-th), both layouts and every activation (a rotating
 * three on big shapes), with random flag bits. */
static void sweep(layer_case *fn, side a, side b, uint64_t seed, int stride)
{
    shape s[MAX_SHAPES];
    const int ns = make_shapes(s);
    tu_rng r = tu_rng_make(seed);
    for (int k = 0; k < ns; k += stride)
        for (int l = 0; l < 2; l++)
            for (int act = 0; act < TU_NACT; act++) {
                if (s[k].big && act != k % TU_NACT && act != (k + 3) % TU_NACT && act != (k + 6) % TU_NACT)
                    continue;
                fn(a, b, &r, layouts[l], s[k], (bp_act)act, (unsigned)tu_next(&r));
            }
}

/* flags: 1 bias, 2 Z output. */
static void forward_case(side a, side b, tu_rng *r, bp_layout layout, shape s, bp_act act, unsigned flags)
{
    const int n = s.n, ni = s.n_in, no = s.n_out, with_b = flags & 1, with_z = flags & 2;
    const ctx c = describe(a, b, layout, n, ni, no, act, flags & 3);
    layer L = layer_make(r, layout, n, ni, no);
    const int ldz = no + pad(r), ldy = no + pad(r);
    const double alpha = tu_alpha(r, act);
    const side sd[2] = {a, b};
    double *Y[2], *Z[2];
    for (int k = 0; k < 2; k++) {
        Y[k] = tu_alloc((size_t)n * ldy);
        Z[k] = with_z ? tu_alloc((size_t)n * ldz) : NULL;
        check_ok(&c, sd[k].P->dense_forward(sd[k].naive, layout, n, ni, no, L.X, L.ldx, L.W, L.ldw,
                                            with_b ? L.b : NULL, act, alpha, Z[k], ldz, Y[k], ldy));
        check_pad(&c, "Y", Y[k], n, no, ldy);
        if (with_z)
            check_pad(&c, "Z", Z[k], n, no, ldz);
    }
    const double eps = eps_of(a, b);
    check_close(&c, "Y", tu_err(n, no, Y[0], ldy, Y[1], ldy, UNIT), tu_tol(ni + kact(act, no), eps));
    if (with_z)
        check_close(&c, "Z", tu_err(n, no, Z[0], ldz, Z[1], ldz, UNIT), tu_tol(ni, eps));
    for (int k = 0; k < 2; k++) {
        free(Y[k]);
        free(Z[k]);
    }
    layer_free(&L);
}

/* Inputs of a backward pass: Z in [-3, 3], Y = f(Z) by the reference formula, dY in [-1, 1]. */
typedef struct grads_in {
    int ldz, ldy, lddy;
    double alpha, *Z, *Y, *dY;
} grads_in;

static grads_in grads_in_make(tu_rng *r, bp_act act, int n, int m)
{
    grads_in g;
    g.ldz = m + pad(r);
    g.ldy = m + pad(r);
    g.lddy = m + pad(r);
    g.alpha = tu_alpha(r, act);
    g.Z = tu_alloc((size_t)n * g.ldz);
    g.Y = tu_alloc((size_t)n * g.ldy);
    g.dY = tu_alloc((size_t)n * g.lddy);
    tu_fill(r, g.Z, n, m, g.ldz, -3, 3);
    tu_act_block(act, g.alpha, n, m, g.Z, g.ldz, g.Y, g.ldy);
    tu_fill(r, g.dY, n, m, g.lddy, -1, 1);
    return g;
}

static void grads_in_free(grads_in *g)
{
    free(g->Z);
    free(g->Y);
    free(g->dY);
}

/* Outputs of one backward call. */
typedef struct grads_out {
    double *dYbuf, *dZ, *dW, *db, *dX;
} grads_out;

/* flags: 1 beta = 1 (else 0, with dW and db holding NaN sentinels that must not be read),
 * 2 dX, 4 db, 8 dZ in place over dY, 16 pass NULL for whichever of Z and Y act does not read. */
static void backward_case(side a, side b, tu_rng *r, bp_layout layout, shape s, bp_act act, unsigned flags)
{
    const int n = s.n, ni = s.n_in, no = s.n_out;
    const int beta1 = flags & 1, with_dx = flags & 2, with_db = flags & 4, inplace = flags & 8, drop = flags & 16;
    const ctx c = describe(a, b, layout, n, ni, no, act, flags & 31);
    layer L = layer_make(r, layout, n, ni, no);
    grads_in g = grads_in_make(r, act, n, no);
    const int lddz = inplace ? g.lddy : no + pad(r), lddw = L.ww + pad(r), lddx = ni + pad(r);
    double *dW0, *db0;
    accum_init(r, &L, beta1, lddw, &dW0, &db0);
    const double *Zp = drop && !bp_act_needs_z(act) ? NULL : g.Z;
    const double *Yp = drop && !reads_y(act) ? NULL : g.Y;
    const side sd[2] = {a, b};
    grads_out o[2];
    for (int k = 0; k < 2; k++) {
        o[k].dYbuf = tu_dup(g.dY, (size_t)n * g.lddy);
        o[k].dZ = inplace ? o[k].dYbuf : tu_alloc((size_t)n * lddz);
        o[k].dW = tu_dup(dW0, (size_t)L.wr * lddw);
        o[k].db = with_db ? tu_dup(db0, (size_t)no) : NULL;
        o[k].dX = with_dx ? tu_alloc((size_t)n * lddx) : NULL;
        check_ok(&c, sd[k].P->dense_backward(sd[k].naive, layout, n, ni, no, L.X, L.ldx, L.W, L.ldw, act,
                                             g.alpha, Zp, g.ldz, Yp, g.ldy, o[k].dYbuf, g.lddy, o[k].dZ,
                                             lddz, beta1 ? 1.0 : 0.0, o[k].dW, lddw, o[k].db, o[k].dX, lddx));
        check_pad(&c, "dZ", o[k].dZ, n, no, lddz);
        check_pad(&c, "dW", o[k].dW, L.wr, L.ww, lddw);
        if (with_dx)
            check_pad(&c, "dX", o[k].dX, n, ni, lddx);
    }
    const double eps = eps_of(a, b);
    const int ka = kact(act, no);
    check_close(&c, "dZ", tu_err(n, no, o[0].dZ, lddz, o[1].dZ, lddz, UNIT), tu_tol(ka, eps));
    check_close(&c, "dW", tu_err(L.wr, L.ww, o[0].dW, lddw, o[1].dW, lddw, UNIT), tu_tol(n + ka, eps));
    if (with_db)
        check_close(&c, "db", tu_err(1, no, o[0].db, no, o[1].db, no, UNIT), tu_tol(n + ka, eps));
    if (with_dx)
        check_close(&c, "dX", tu_err(n, ni, o[0].dX, lddx, o[1].dX, lddx, UNIT), tu_tol(no + ka, eps));
    for (int k = 0; k < 2; k++) {
        free(o[k].dYbuf);
        if (!inplace)
            free(o[k].dZ);
        free(o[k].dW);
        free(o[k].db);
        free(o[k].dX);
    }
    free(dW0);
    free(db0);
    grads_in_free(&g);
    layer_free(&L);
}

/* Activations on an n x m block (n = s.n, m = s.n_out; the layout is irrelevant).
 * flags: 1 in place (Y over Z). */
static void act_forward_case(side a, side b, tu_rng *r, bp_layout layout, shape s, bp_act act, unsigned flags)
{
    const int n = s.n, m = s.n_out, inplace = flags & 1;
    const ctx c = describe(a, b, layout, n, 0, m, act, flags & 1);
    const int ldz = m + pad(r), ldy = inplace ? ldz : m + pad(r);
    const double alpha = tu_alpha(r, act);
    double *Z = tu_alloc((size_t)n * ldz), *Y[2];
    tu_fill(r, Z, n, m, ldz, -5, 5);
    const side sd[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        double *Zk = inplace ? tu_dup(Z, (size_t)n * ldz) : Z;
        Y[k] = inplace ? Zk : tu_alloc((size_t)n * ldy);
        check_ok(&c, sd[k].P->act_forward(sd[k].naive, act, alpha, n, m, Zk, ldz, Y[k], ldy));
        if (!inplace)
            check_pad(&c, "Y", Y[k], n, m, ldy);
    }
    check_close(&c, "Y", tu_err(n, m, Y[0], ldy, Y[1], ldy, UNIT), tu_tol(kact(act, m), eps_of(a, b)));
    free(Z);
    free(Y[0]);
    free(Y[1]);
}

/* flags: 1 in place (dZ over dY), 2 pass NULL for whichever of Z and Y act does not read. */
static void act_backward_case(side a, side b, tu_rng *r, bp_layout layout, shape s, bp_act act, unsigned flags)
{
    const int n = s.n, m = s.n_out, inplace = flags & 1, drop = flags & 2;
    const ctx c = describe(a, b, layout, n, 0, m, act, flags & 3);
    grads_in g = grads_in_make(r, act, n, m);
    const int lddz = inplace ? g.lddy : m + pad(r);
    const double *Zp = drop && !bp_act_needs_z(act) ? NULL : g.Z;
    const double *Yp = drop && !reads_y(act) ? NULL : g.Y;
    const side sd[2] = {a, b};
    double *dY[2], *dZ[2];
    for (int k = 0; k < 2; k++) {
        dY[k] = tu_dup(g.dY, (size_t)n * g.lddy);
        dZ[k] = inplace ? dY[k] : tu_alloc((size_t)n * lddz);
        check_ok(&c, sd[k].P->act_backward(sd[k].naive, act, g.alpha, n, m, Zp, g.ldz, Yp, g.ldy, dY[k],
                                           g.lddy, dZ[k], lddz));
        if (!inplace)
            check_pad(&c, "dZ", dZ[k], n, m, lddz);
    }
    check_close(&c, "dZ", tu_err(n, m, dZ[0], lddz, dZ[1], lddz, UNIT), tu_tol(kact(act, m), eps_of(a, b)));
    for (int k = 0; k < 2; k++) {
        if (!inplace)
            free(dZ[k]);
        free(dY[k]);
    }
    grads_in_free(&g);
}

/* ---- losses ------------------------------------------------------------------------------ */

enum loss_kind { L_XENT, L_PROB, L_BCE, L_MSE, L_COUNT };
static const char *const loss_names[L_COUNT] = {"softmax_xent", "softmax_xent_prob", "sigmoid_bce", "mse"};

/* A loss problem: logits (outputs for mse) and targets of the kind's domain. */
typedef struct loss_in {
    int kind, n, m, ldz, ldt;
    double *Z, *T;
    int32_t *labels;
} loss_in;

static loss_in loss_in_make(tu_rng *r, int kind, int n, int m)
{
    loss_in p = {kind, n, m, m + pad(r), m + pad(r), NULL, NULL, NULL};
    p.Z = tu_alloc((size_t)n * p.ldz);
    p.T = tu_alloc((size_t)n * p.ldt);
    p.labels = malloc((size_t)n * sizeof *p.labels);
    ck_assert_ptr_nonnull(p.labels);
    tu_fill(r, p.Z, n, m, p.ldz, kind == L_MSE ? -1 : -4, kind == L_MSE ? 1 : 4);
    tu_fill(r, p.T, n, m, p.ldt, kind == L_MSE ? -1 : 0, 1);
    for (int i = 0; i < n; i++) {
        double *t = p.T + (size_t)i * p.ldt, sum = 0;
        p.labels[i] = tu_int(r, 0, m - 1);
        if (kind == L_BCE && i % 3 == 0) /* exact 0/1 targets too */
            for (int j = 0; j < m; j++)
                t[j] = t[j] < 0.5 ? 0.0 : 1.0;
        if (kind == L_PROB && i % 2 == 0) { /* half the rows are distributions, half arbitrary >= 0 */
            for (int j = 0; j < m; j++)
                sum += t[j];
            for (int j = 0; j < m; j++)
                t[j] = (double)(float)(t[j] / sum);
        }
    }
    return p;
}

static void loss_in_free(loss_in *p)
{
    free(p->Z);
    free(p->T);
    free(p->labels);
}

/* One loss call through a runner on rows [i0, i0 + n) of p. */
static bp_status loss_call(side s, const loss_in *p, int i0, int n, double divisor, double *loss, double *dZ, int lddz)
{
    const double *Z = p->Z + (size_t)i0 * p->ldz, *T = p->T + (size_t)i0 * p->ldt;
    switch (p->kind) {
    case L_XENT:
        return s.P->softmax_xent(s.naive, n, p->m, Z, p->ldz, p->labels + i0, divisor, loss, dZ, lddz);
    case L_PROB:
        return s.P->softmax_xent_prob(s.naive, n, p->m, Z, p->ldz, T, p->ldt, divisor, loss, dZ, lddz);
    case L_BCE:
        return s.P->sigmoid_bce(s.naive, n, p->m, Z, p->ldz, T, p->ldt, divisor, loss, dZ, lddz);
    default:
        return s.P->mse(s.naive, n, p->m, Z, p->ldz, T, p->ldt, divisor, loss, dZ, lddz);
    }
}

/* flags: bits 0-1 outputs (1 loss only, 2 dZ only, else both), 4 dZ in place over Z,
 * 8 divisor larger than n (a micro-batch of a bigger batch). */
static void loss_case(side a, side b, tu_rng *r, int kind, int n, int m, unsigned flags)
{
    const int outs = flags & 3, with_loss = outs != 2, with_dz = outs != 1, inplace = with_dz && (flags & 4);
    const double divisor = n + ((flags & 8) ? tu_int(r, 1, 5) : 0);
    ctx c;
    snprintf(c.s, sizeof c.s, "%s %s vs %s %s, %s, n=%d m=%d divisor=%g, flags=0x%x", a.P->name,
             a.naive ? "naive" : "blas", b.P->name, b.naive ? "naive" : "blas", loss_names[kind], n, m, divisor,
             flags & 15);
    loss_in p = loss_in_make(r, kind, n, m);
    const int lddz = inplace ? p.ldz : m + pad(r);
    const side sd[2] = {a, b};
    double loss[2], *dZ[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        loss_in q = p;
        if (inplace)
            q.Z = tu_dup(p.Z, (size_t)n * p.ldz);
        tu_sentinel(&loss[k], sizeof loss[k]);
        dZ[k] = !with_dz ? NULL : inplace ? q.Z : tu_alloc((size_t)n * lddz);
        check_ok(&c, loss_call(sd[k], &q, 0, n, divisor, with_loss ? &loss[k] : NULL, dZ[k], lddz));
        if (with_dz && !inplace)
            check_pad(&c, "dZ", dZ[k], n, m, lddz);
        if (!with_loss)
            ck_assert_msg(tu_is_sentinel(&loss[k], sizeof loss[k]), "%s: loss written though NULL", c.s);
    }
    const double tol = tu_tol(m, eps_of(a, b));
    if (with_loss)
        check_close(&c, "loss", tu_rel(loss[0], loss[1], n / divisor), tol);
    if (with_dz)
        check_close(&c, "dZ", tu_err(n, m, dZ[0], lddz, dZ[1], lddz, 1 / divisor), tol);
    free(dZ[0]);
    free(dZ[1]);
    loss_in_free(&p);
}

static void loss_sweep(int kind, side a, side b, uint64_t seed, int stride)
{
    shape s[MAX_SHAPES];
    const int ns = make_shapes(s);
    tu_rng r = tu_rng_make(seed);
    for (int k = 0; k < ns; k += stride)
        for (int rep = 0; rep < 3; rep++)
            loss_case(a, b, &r, kind, s[k].n, s[k].n_out, (unsigned)tu_next(&r));
}

/* ---- logistic regression ----------------------------------------------------------------- */

typedef struct logreg_in {
    layer L; /* n = 1; n_out = n_classes */
    int32_t label;
    double divisor;
} logreg_in;

static logreg_in logreg_in_make(tu_rng *r, bp_layout layout, int ni, int nc)
{
    logreg_in q;
    q.L = layer_make(r, layout, 1, ni, nc);
    q.label = tu_int(r, 0, nc - 1);
    q.divisor = tu_int(r, 1, 10);
    return q;
}

typedef struct logreg_out {
    double *p, loss, *dW, *db;
} logreg_out;

/* flags: 1 bias, 2 db, 4 beta = 1 (else 0 over NaN sentinels), 8 loss. */
static void logreg_run(side s, const logreg_in *q, unsigned flags, const double *dW0, const double *db0, int lddw,
                       logreg_out *o, const ctx *c)
{
    const layer *L = &q->L;
    o->p = tu_alloc((size_t)L->no);
    o->dW = tu_dup(dW0, (size_t)L->wr * lddw);
    o->db = (flags & 2) ? tu_dup(db0, (size_t)L->no) : NULL;
    tu_sentinel(&o->loss, sizeof o->loss);
    check_ok(c, s.P->logreg_grad(s.naive, L->layout, L->ni, L->no, L->W, L->ldw, (flags & 1) ? L->b : NULL, L->X,
                                 q->label, q->divisor, o->p, (flags & 8) ? &o->loss : NULL,
                                 (flags & 4) ? 1.0 : 0.0, o->dW, lddw, o->db));
    check_pad(c, "dW", o->dW, L->wr, L->ww, lddw);
    if (!(flags & 8))
        ck_assert_msg(tu_is_sentinel(&o->loss, sizeof o->loss), "%s: loss written though NULL", c->s);
}

static void logreg_out_free(logreg_out *o)
{
    free(o->p);
    free(o->dW);
    free(o->db);
}

static void logreg_case(side a, side b, tu_rng *r, bp_layout layout, int ni, int nc, unsigned flags)
{
    const ctx c = describe(a, b, layout, 1, ni, nc, BP_ACT_SOFTMAX, flags & 15);
    logreg_in q = logreg_in_make(r, layout, ni, nc);
    const int lddw = q.L.ww + pad(r);
    double *dW0, *db0;
    accum_init(r, &q.L, flags & 4, lddw, &dW0, &db0);
    logreg_out o[2];
    logreg_run(a, &q, flags, dW0, db0, lddw, &o[0], &c);
    logreg_run(b, &q, flags, dW0, db0, lddw, &o[1], &c);
    const double tol = tu_tol(ni + nc, eps_of(a, b));
    check_close(&c, "p", tu_err(1, nc, o[0].p, nc, o[1].p, nc, TU_FLOOR), tol);
    check_close(&c, "dW", tu_err(q.L.wr, q.L.ww, o[0].dW, lddw, o[1].dW, lddw, 1 / q.divisor), tol);
    if (flags & 2)
        check_close(&c, "db", tu_err(1, nc, o[0].db, nc, o[1].db, nc, 1 / q.divisor), tol);
    if (flags & 8)
        check_close(&c, "loss", tu_rel(o[0].loss, o[1].loss, 1 / q.divisor), tol);
    logreg_out_free(&o[0]);
    logreg_out_free(&o[1]);
    free(dW0);
    free(db0);
    layer_free(&q.L);
}

static void logreg_sweep(side a, side b, uint64_t seed, int stride)
{
    shape s[MAX_SHAPES];
    const int ns = make_shapes(s);
    tu_rng r = tu_rng_make(seed);
    for (int k = 0; k < ns; k += stride)
        for (int l = 0; l < 2; l++)
            for (int rep = 0; rep < 2; rep++)
                logreg_case(a, b, &r, layouts[l], s[k].n_in, s[k].n_out, (unsigned)tu_next(&r));
}

/* ---- BLAS vs naive, per precision (_i: 0 float, 1 double) -------------------------------- */

#define BLAS(i) ((side){precs[i], 0})
#define NAIVE(i) ((side){precs[i], 1})

START_TEST(test_dense_forward_naive)
{
    sweep(forward_case, BLAS(_i), NAIVE(_i), 101, 1);
}
END_TEST

START_TEST(test_dense_backward_naive)
{
    sweep(backward_case, BLAS(_i), NAIVE(_i), 102, 1);
}
END_TEST

START_TEST(test_act_forward_naive)
{
    sweep(act_forward_case, BLAS(_i), NAIVE(_i), 103, 1);
}
END_TEST

START_TEST(test_act_backward_naive)
{
    sweep(act_backward_case, BLAS(_i), NAIVE(_i), 104, 1);
}
END_TEST

START_TEST(test_softmax_xent_naive)
{
    loss_sweep(L_XENT, BLAS(_i), NAIVE(_i), 105, 1);
}
END_TEST

START_TEST(test_softmax_xent_prob_naive)
{
    loss_sweep(L_PROB, BLAS(_i), NAIVE(_i), 106, 1);
}
END_TEST

START_TEST(test_sigmoid_bce_naive)
{
    loss_sweep(L_BCE, BLAS(_i), NAIVE(_i), 107, 1);
}
END_TEST

START_TEST(test_mse_naive)
{
    loss_sweep(L_MSE, BLAS(_i), NAIVE(_i), 108, 1);
}
END_TEST

START_TEST(test_logreg_grad_naive)
{
    logreg_sweep(BLAS(_i), NAIVE(_i), 109, 1);
}
END_TEST

/* ---- invariants between call shapes and layouts (BLAS kernels, per precision) ------------ */

/* Batch shapes for the invariants: n >= 2 so the batched call takes the gemm path. */
static shape batch_shape(tu_rng *r, int k)
{
    static const int ns[] = {2, 5, 17};
    return (shape){ns[k % 3], tu_int(r, 1, 70), tu_int(r, 1, 70), 0};
}

/* Each sample run alone (gemv) gives the Y and Z rows of the batched call (gemm). */
START_TEST(test_forward_batch1)
{
    const side s = BLAS(_i);
    tu_rng r = tu_rng_make(201);
    for (int k = 0; k < 24; k++) {
        const bp_layout layout = layouts[k % 2];
        const bp_act act = (bp_act)(k % TU_NACT);
        const shape sh = batch_shape(&r, k);
        const int n = sh.n, ni = sh.n_in, no = sh.n_out;
        const ctx c = describe(s, s, layout, n, ni, no, act, 0);
        layer L = layer_make(&r, layout, n, ni, no);
        const int ldy = no + pad(&r);
        const double alpha = tu_alpha(&r, act);
        double *Y = tu_alloc((size_t)n * ldy), *Z = tu_alloc((size_t)n * ldy);
        double *y1 = tu_alloc((size_t)no), *z1 = tu_alloc((size_t)no);
        check_ok(&c, s.P->dense_forward(0, layout, n, ni, no, L.X, L.ldx, L.W, L.ldw, L.b, act, alpha, Z, ldy, Y, ldy));
        for (int j = 0; j < n; j++) {
            check_ok(&c, s.P->dense_forward(0, layout, 1, ni, no, L.X + (size_t)j * L.ldx, L.ldx, L.W, L.ldw, L.b,
                                            act, alpha, z1, no, y1, no));
            check_close(&c, "Y row (gemv vs gemm)", tu_err(1, no, y1, no, Y + (size_t)j * ldy, no, UNIT),
                        tu_tol(ni + kact(act, no), s.P->eps));
            check_close(&c, "Z row (gemv vs gemm)", tu_err(1, no, z1, no, Z + (size_t)j * ldy, no, UNIT),
                        tu_tol(ni, s.P->eps));
        }
        free(Y);
        free(Z);
        free(y1);
        free(z1);
        layer_free(&L);
    }
}
END_TEST

/* Backward over micro-batches of `chunk` samples (chunk 1: the ger/gemv path), accumulating
 * with beta = 1 after the first, gives the full-batch dW and db; dZ and dX rows match. */
static void microbatch_case(side s, tu_rng *r, bp_layout layout, shape sh, bp_act act, int chunk)
{
    const int n = sh.n, ni = sh.n_in, no = sh.n_out;
    const ctx c = describe(s, s, layout, n, ni, no, act, (unsigned)chunk);
    layer L = layer_make(r, layout, n, ni, no);
    grads_in g = grads_in_make(r, act, n, no);
    const int lddw = L.ww + pad(r);
    grads_out o[2];
    for (int k = 0; k < 2; k++) {
        o[k].dZ = tu_alloc((size_t)n * no);
        o[k].dW = tu_alloc((size_t)L.wr * lddw);
        o[k].db = tu_alloc((size_t)no);
        o[k].dX = tu_alloc((size_t)n * ni);
    }
    check_ok(&c, s.P->dense_backward(0, layout, n, ni, no, L.X, L.ldx, L.W, L.ldw, act, g.alpha, g.Z, g.ldz, g.Y,
                                     g.ldy, g.dY, g.lddy, o[0].dZ, no, 0.0, o[0].dW, lddw, o[0].db, o[0].dX, ni));
    for (int j = 0; j < n; j += chunk) {
        const int nj = n - j < chunk ? n - j : chunk;
        check_ok(&c, s.P->dense_backward(0, layout, nj, ni, no, L.X + (size_t)j * L.ldx, L.ldx, L.W, L.ldw, act,
                                         g.alpha, g.Z + (size_t)j * g.ldz, g.ldz, g.Y + (size_t)j * g.ldy, g.ldy,
                                         g.dY + (size_t)j * g.lddy, g.lddy, o[1].dZ + (size_t)j * no, no,
                                         j == 0 ? 0.0 : 1.0, o[1].dW, lddw, o[1].db, o[1].dX + (size_t)j * ni, ni));
    }
    const double eps = s.P->eps;
    const int ka = kact(act, no);
    check_close(&c, "dW (micro-batched vs full)", tu_err(L.wr, L.ww, o[1].dW, lddw, o[0].dW, lddw, UNIT),
                tu_tol(n + ka, eps));
    check_close(&c, "db (micro-batched vs full)", tu_err(1, no, o[1].db, no, o[0].db, no, UNIT),
                tu_tol(n + ka, eps));
    check_close(&c, "dX (micro-batched vs full)", tu_err(n, ni, o[1].dX, ni, o[0].dX, ni, UNIT),
                tu_tol(no + ka, eps));
    check_close(&c, "dZ (micro-batched vs full)", tu_err(n, no, o[1].dZ, no, o[0].dZ, no, UNIT),
                tu_tol(ka, eps));
    for (int k = 0; k < 2; k++) {
        free(o[k].dZ);
        free(o[k].dW);
        free(o[k].db);
        free(o[k].dX);
    }
    grads_in_free(&g);
    layer_free(&L);
}

START_TEST(test_backward_microbatch)
{
    tu_rng r = tu_rng_make(202);
    for (int k = 0; k < 24; k++) {
        const shape sh = batch_shape(&r, k);
        microbatch_case(BLAS(_i), &r, layouts[k % 2], sh, (bp_act)(k % TU_NACT), 1);
        microbatch_case(BLAS(_i), &r, layouts[k % 2], sh, (bp_act)((k + 5) % TU_NACT), tu_int(&r, 2, 4));
    }
}
END_TEST

/* Loss calls over chunks of a batch, each with the full batch's divisor, add up to the full call. */
START_TEST(test_loss_microbatch)
{
    const side s = BLAS(_i);
    tu_rng r = tu_rng_make(203);
    static const int chunks[] = {1, 2, 4}; /* n = 7 */
    for (int kind = 0; kind < L_COUNT; kind++)
        for (int m = 1; m <= 13; m += 4) {
            const int n = 7;
            ctx c;
            snprintf(c.s, sizeof c.s, "%s %s, n=%d m=%d", s.P->name, loss_names[kind], n, m);
            loss_in p = loss_in_make(&r, kind, n, m);
            double full, part, sum = 0, *dZ = tu_alloc((size_t)n * m), *dZc = tu_alloc((size_t)n * m);
            check_ok(&c, loss_call(s, &p, 0, n, n, &full, dZ, m));
            for (int j = 0, q = 0; j < n; j += chunks[q++]) {
                check_ok(&c, loss_call(s, &p, j, chunks[q], n, &part, dZc + (size_t)j * m, m));
                sum += part;
            }
            check_close(&c, "sum of chunk losses", tu_rel(sum, full, UNIT), tu_tol(m + n, s.P->eps));
            check_close(&c, "chunked dZ", tu_err(n, m, dZc, m, dZ, m, 1.0 / n), tu_tol(m, s.P->eps));
            free(dZ);
            free(dZc);
            loss_in_free(&p);
        }
}
END_TEST

/* A column-major call on the transposed W equals the row-major call: forward and backward. */
START_TEST(test_colmajor_dense)
{
    const side s = BLAS(_i);
    tu_rng r = tu_rng_make(204);
    for (int k = 0; k < 30; k++) {
        const bp_act act = (bp_act)(k % TU_NACT);
        const shape sh = {k % 3 == 0 ? 1 : tu_int(&r, 2, 40), tu_int(&r, 1, 60), tu_int(&r, 1, 60), 0};
        const int n = sh.n, ni = sh.n_in, no = sh.n_out;
        const ctx c = describe(s, s, BP_COL_MAJOR, n, ni, no, act, 0);
        layer L = layer_make(&r, BP_ROW_MAJOR, n, ni, no);
        grads_in g = grads_in_make(&r, act, n, no);
        const int ldwc = no + pad(&r), lddwr = ni + pad(&r), lddwc = no + pad(&r);
        double *Wc = transposed_w(&L, ldwc);
        double *Y[2], *dZ[2], *dW[2], *db[2], *dX[2];
        for (int l = 0; l < 2; l++) {
            const int col = l == 1, lddw = col ? lddwc : lddwr;
            Y[l] = tu_alloc((size_t)n * no);
            dZ[l] = tu_alloc((size_t)n * no);
            dW[l] = tu_alloc(col ? (size_t)ni * lddw : (size_t)no * lddw);
            db[l] = tu_alloc((size_t)no);
            dX[l] = tu_alloc((size_t)n * ni);
            check_ok(&c, s.P->dense_forward(0, layouts[l], n, ni, no, L.X, L.ldx, col ? Wc : L.W,
                                            col ? ldwc : L.ldw, L.b, act, g.alpha, NULL, no, Y[l], no));
            check_ok(&c, s.P->dense_backward(0, layouts[l], n, ni, no, L.X, L.ldx, col ? Wc : L.W,
                                             col ? ldwc : L.ldw, act, g.alpha, g.Z, g.ldz, g.Y, g.ldy, g.dY,
                                             g.lddy, dZ[l], no, 0.0, dW[l], lddw, db[l], dX[l], ni));
        }
        double *dWt = tu_alloc((size_t)no * lddwr);
        tu_transpose(ni, no, dW[1], lddwc, dWt, lddwr);
        const double eps = s.P->eps;
        const int ka = kact(act, no);
        check_close(&c, "Y (col vs row)", tu_err(n, no, Y[1], no, Y[0], no, UNIT), tu_tol(ni + ka, eps));
        check_close(&c, "dW^T (col vs row)", tu_err(no, ni, dWt, lddwr, dW[0], lddwr, UNIT), tu_tol(n + ka, eps));
        check_close(&c, "db (col vs row)", tu_err(1, no, db[1], no, db[0], no, UNIT), tu_tol(n + ka, eps));
        check_close(&c, "dX (col vs row)", tu_err(n, ni, dX[1], ni, dX[0], ni, UNIT), tu_tol(no + ka, eps));
        for (int l = 0; l < 2; l++) {
            free(Y[l]);
            free(dZ[l]);
            free(dW[l]);
            free(db[l]);
            free(dX[l]);
        }
        free(dWt);
        free(Wc);
        grads_in_free(&g);
        layer_free(&L);
    }
}
END_TEST

/* The same for the logistic-regression gradient. */
START_TEST(test_colmajor_logreg)
{
    const side s = BLAS(_i);
    tu_rng r = tu_rng_make(205);
    for (int k = 0; k < 20; k++) {
        const int ni = tu_int(&r, 1, 80), nc = tu_int(&r, 1, 30);
        const ctx c = describe(s, s, BP_COL_MAJOR, 1, ni, nc, BP_ACT_SOFTMAX, 0);
        logreg_in q = logreg_in_make(&r, BP_ROW_MAJOR, ni, nc);
        logreg_in qc = q;
        const int lddwr = ni + pad(&r), lddwc = nc + pad(&r);
        qc.L.layout = BP_COL_MAJOR;
        qc.L.wr = ni;
        qc.L.ww = nc;
        qc.L.ldw = nc + pad(&r);
        qc.L.W = transposed_w(&q.L, qc.L.ldw);
        double *dWr0 = tu_alloc((size_t)nc * lddwr), *dWc0 = tu_alloc((size_t)ni * lddwc), *db0 = tu_alloc((size_t)nc);
        logreg_out o[2];
        /* bias, db, loss; beta = 0 over the NaN sentinels */
        logreg_run(s, &q, 1 | 2 | 8, dWr0, db0, lddwr, &o[0], &c);
        logreg_run(s, &qc, 1 | 2 | 8, dWc0, db0, lddwc, &o[1], &c);
        double *dWt = tu_alloc((size_t)nc * lddwr);
        tu_transpose(ni, nc, o[1].dW, lddwc, dWt, lddwr);
        const double tol = tu_tol(ni + nc, s.P->eps);
        check_close(&c, "p (col vs row)", tu_err(1, nc, o[1].p, nc, o[0].p, nc, TU_FLOOR), tol);
        check_close(&c, "loss (col vs row)", tu_rel(o[1].loss, o[0].loss, 1 / q.divisor), tol);
        check_close(&c, "dW^T (col vs row)", tu_err(nc, ni, dWt, lddwr, o[0].dW, lddwr, 1 / q.divisor), tol);
        check_close(&c, "db (col vs row)", tu_err(1, nc, o[1].db, nc, o[0].db, nc, 1 / q.divisor), tol);
        logreg_out_free(&o[0]);
        logreg_out_free(&o[1]);
        free(dWt);
        free(dWr0);
        free(dWc0);
        free(db0);
        free(qc.L.W);
        layer_free(&q.L);
    }
}
END_TEST

/* bp_?logreg_grad against the hand formula, computed here with exp and log:
 * z = W x + b, p = softmax(z), dW[o][i] = beta dW0[o][i] + (p_o - [o == label]) x_i / divisor,
 * db = beta db0 + (p - onehot) / divisor, loss = (logsumexp(z) - z_label) / divisor; and sum(p) = 1. */
START_TEST(test_logreg_formula)
{
    const side s = BLAS(_i);
    tu_rng r = tu_rng_make(206);
    for (int k = 0; k < 40; k++) {
        const bp_layout layout = layouts[k % 2];
        const int ni = k < 4 ? 1 : tu_int(&r, 1, 120), nc = k % 7 == 0 ? 1 + k % 3 : tu_int(&r, 2, 40);
        const unsigned flags = 2 | 8 | ((k & 2) ? 1 : 0) | ((k & 4) ? 4 : 0);
        const ctx c = describe(s, s, layout, 1, ni, nc, BP_ACT_SOFTMAX, flags);
        logreg_in q = logreg_in_make(&r, layout, ni, nc);
        const layer *L = &q.L;
        const int lddw = L->ww + pad(&r);
        double *dW0, *db0;
        accum_init(&r, L, flags & 4, lddw, &dW0, &db0);
        logreg_out o;
        logreg_run(s, &q, flags, dW0, db0, lddw, &o, &c);

        double *z = tu_alloc((size_t)nc), *p = tu_alloc((size_t)nc), zmax = -INFINITY, sum = 0, psum = 0;
        double *dW = tu_dup(dW0, (size_t)L->wr * lddw), *db = tu_dup(db0, (size_t)nc);
        for (int j = 0; j < nc; j++) {
            z[j] = (flags & 1) ? L->b[j] : 0.0;
            for (int i = 0; i < ni; i++)
                z[j] += L->W[tu_widx(layout, j, i, L->ldw)] * L->X[i];
            zmax = fmax(zmax, z[j]);
        }
        for (int j = 0; j < nc; j++)
            sum += exp(z[j] - zmax);
        for (int j = 0; j < nc; j++) {
            const double g = (exp(z[j] - zmax) / sum - (j == q.label)) / q.divisor;
            p[j] = exp(z[j] - zmax) / sum;
            db[j] = (flags & 4) ? db[j] + g : g;
            for (int i = 0; i < ni; i++) {
                double *w = &dW[tu_widx(layout, j, i, lddw)];
                *w = (flags & 4) ? *w + g * L->X[i] : g * L->X[i];
            }
            psum += o.p[j];
            ck_assert_msg(o.p[j] >= 0 && o.p[j] <= 1, "%s: p[%d] = %g outside [0, 1]", c.s, j, o.p[j]);
        }
        const double loss = (zmax + log(sum) - z[q.label]) / q.divisor, tol = tu_tol(ni + nc, s.P->eps);
        check_close(&c, "p vs formula", tu_err(1, nc, o.p, nc, p, nc, TU_FLOOR), tol);
        check_close(&c, "sum(p) - 1", fabs(psum - 1.0), tu_tol(nc, s.P->eps));
        check_close(&c, "loss vs formula", tu_rel(o.loss, loss, 1 / q.divisor), tol);
        check_close(&c, "dW vs formula", tu_err(L->wr, L->ww, o.dW, lddw, dW, lddw, 1 / q.divisor), tol);
        check_close(&c, "db vs formula", tu_err(1, nc, o.db, nc, db, nc, 1 / q.divisor), tol);
        logreg_out_free(&o);
        free(z);
        free(p);
        free(dW);
        free(db);
        free(dW0);
        free(db0);
        layer_free(&q.L);
    }
}
END_TEST

/* ---- float vs double: the float BLAS kernels agree with the double ones to float tolerance - */

#define FLT_BLAS ((side){&runner_s, 0})
#define DBL_BLAS ((side){&runner_d, 0})

START_TEST(test_float_vs_double_dense)
{
    sweep(forward_case, FLT_BLAS, DBL_BLAS, 301, 3);
    sweep(backward_case, FLT_BLAS, DBL_BLAS, 302, 3);
}
END_TEST

START_TEST(test_float_vs_double_act)
{
    sweep(act_forward_case, FLT_BLAS, DBL_BLAS, 303, 3);
    sweep(act_backward_case, FLT_BLAS, DBL_BLAS, 304, 3);
}
END_TEST

START_TEST(test_float_vs_double_loss)
{
    for (int kind = 0; kind < L_COUNT; kind++)
        loss_sweep(kind, FLT_BLAS, DBL_BLAS, 305 + (uint64_t)kind, 3);
    logreg_sweep(FLT_BLAS, DBL_BLAS, 309, 3);
}
END_TEST

static Suite *kernels_suite(void)
{
    Suite *s = suite_create("kernels");
    TCase *naive = tcase_create("blas_vs_naive");
    tcase_add_loop_test(naive, test_dense_forward_naive, 0, 2);
    tcase_add_loop_test(naive, test_dense_backward_naive, 0, 2);
    tcase_add_loop_test(naive, test_act_forward_naive, 0, 2);
    tcase_add_loop_test(naive, test_act_backward_naive, 0, 2);
    tcase_add_loop_test(naive, test_softmax_xent_naive, 0, 2);
    tcase_add_loop_test(naive, test_softmax_xent_prob_naive, 0, 2);
    tcase_add_loop_test(naive, test_sigmoid_bce_naive, 0, 2);
    tcase_add_loop_test(naive, test_mse_naive, 0, 2);
    tcase_add_loop_test(naive, test_logreg_grad_naive, 0, 2);
    suite_add_tcase(s, naive);

    TCase *inv = tcase_create("invariants");
    tcase_add_loop_test(inv, test_forward_batch1, 0, 2);
    tcase_add_loop_test(inv, test_backward_microbatch, 0, 2);
    tcase_add_loop_test(inv, test_loss_microbatch, 0, 2);
    tcase_add_loop_test(inv, test_colmajor_dense, 0, 2);
    tcase_add_loop_test(inv, test_colmajor_logreg, 0, 2);
    tcase_add_loop_test(inv, test_logreg_formula, 0, 2);
    suite_add_tcase(s, inv);

    TCase *prec = tcase_create("float_vs_double");
    tcase_add_test(prec, test_float_vs_double_dense);
    tcase_add_test(prec, test_float_vs_double_act);
    tcase_add_test(prec, test_float_vs_double_loss);
    suite_add_tcase(s, prec);
    return s;
}

int main(void)
{
    return tu_run_suite(kernels_suite());
}
