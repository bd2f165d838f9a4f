/* SPDX-License-Identifier: MIT */
/* kernels.tmpl.c: the BLAS-backed dense, activation and loss kernels, written once for T (see prec.h). */
#include <cblas.h>
#include <string.h>
#include "kernels/cores.h"
#include "kernels/kernels_internal.h"

static const T SQRT_2_OVER_PI = (T)0.79788456080286535588;
static const T INV_SQRT2 = (T)0.70710678118654752440;
static const T INV_SQRT_2PI = (T)0.39894228040143267794;

static inline T sigmoid(T z)
{
    if (z >= 0)
        return 1 / (1 + M(exp)(-z));
    const T e = M(exp)(z);  /* no overflow for very negative z */
    return e / (1 + e);
}

/* Phi(z) through erfc, which keeps its accuracy in the negative tail. */
static inline T normal_cdf(T z) { return (T)0.5 * M(erfc)(-z * INV_SQRT2); }

static inline T gelu_tanh_arg(T z) { return SQRT_2_OVER_PI * z * (1 + (T)0.044715 * z * z); }

/* sum_j exp(z_j - zmax) over one row, and its maximum in *zmax. Probabilities are
 * then exp(z_j - zmax) / sum, exact to rounding even for |z| ~ 1e4 (exp(z - lse)
 * would lose |z| eps), and log-sum-exp is zmax + log(sum). */
static T exp_sum(bp_int m, const T *z, T *zmax)
{
    T mx = z[0];
    for (bp_int j = 1; j < m; j++)
        mx = z[j] > mx ? z[j] : mx;
    T s = 0;
    for (bp_int j = 0; j < m; j++)
        s += M(exp)(z[j] - mx);
    *zmax = mx;
    return s;
}

/* y = softmax(z) over one row; y may be z. */
/* y = softmax(z) from z's max and exp_sum (y may be z). */
static void softmax_of(bp_int m, const T *z, T zmax, T esum, T *y)
{
    const T inv = 1 / esum;
    for (bp_int j = 0; j < m; j++)
        y[j] = M(exp)(z[j] - zmax) * inv;
}

static void softmax_row(bp_int m, const T *z, T *y)
{
    T zmax;
    const T esum = exp_sum(m, z, &zmax);
    softmax_of(m, z, zmax, esum, y);
}

/* y = f(z) over one sample's m values; y may be z. The switch sits outside the loops. */
static void act_row(bp_act act, T alpha, bp_int m, const T *z, T *y)
{
    bp_int j;
    switch (act) {
    case BP_ACT_IDENTITY:
        if (y != z)
            memcpy(y, z, (size_t)m * sizeof *y);
        break;
    case BP_ACT_SIGMOID:    for (j = 0; j < m; j++) y[j] = sigmoid(z[j]); break;
    case BP_ACT_TANH:       for (j = 0; j < m; j++) y[j] = M(tanh)(z[j]); break;
    case BP_ACT_RELU:       for (j = 0; j < m; j++) { const T v = z[j]; y[j] = v < 0 ? 0 : v; } break;  /* NaN stays NaN */
    case BP_ACT_LEAKY_RELU: for (j = 0; j < m; j++) { const T v = z[j], a = alpha * v; y[j] = v > 0 ? v : a; } break;
    case BP_ACT_ELU:        for (j = 0; j < m; j++) y[j] = z[j] > 0 ? z[j] : alpha * M(expm1)(z[j]); break;
    case BP_ACT_GELU:       for (j = 0; j < m; j++) y[j] = z[j] * normal_cdf(z[j]); break;
    case BP_ACT_GELU_TANH:
        for (j = 0; j < m; j++)
            y[j] = (T)0.5 * z[j] * (1 + M(tanh)(gelu_tanh_arg(z[j])));
        break;
    case BP_ACT_SOFTPLUS:
        for (j = 0; j < m; j++)
            y[j] = (z[j] > 0 ? z[j] : 0) + M(log1p)(M(exp)(-M(fabs)(z[j])));
        break;
    case BP_ACT_SOFTMAX:
        softmax_row(m, z, y);
        break;
    }
}

/* dz = dy * f'(z) over one sample, from the output y except for the GELUs; dz may be dy. */
static void dact_row(bp_act act, T alpha, bp_int m, const T *z, const T *y, const T *dy, T *dz)
{
    bp_int j;
    switch (act) {
    case BP_ACT_IDENTITY:
        if (dz != dy)
            memcpy(dz, dy, (size_t)m * sizeof *dz);
        break;
    case BP_ACT_SIGMOID:    for (j = 0; j < m; j++) dz[j] = dy[j] * y[j] * (1 - y[j]); break;
    case BP_ACT_TANH:       for (j = 0; j < m; j++) dz[j] = dy[j] * (1 - y[j] * y[j]); break;
    /* Both arms of each select are computed before it, never inside one arm: gcc may not
     * speculate a load or (with -ftrapping-math) a multiply, so it would branch per
     * element, mispredict on ReLU outputs, and make the pass ten times slower. */
    case BP_ACT_RELU:
        for (j = 0; j < m; j++) { const T g = dy[j]; dz[j] = y[j] > 0 ? g : 0; }
        break;
    case BP_ACT_LEAKY_RELU:
        for (j = 0; j < m; j++) { const T g = dy[j], a = alpha * g; dz[j] = y[j] > 0 ? g : a; }
        break;
    case BP_ACT_ELU:
        for (j = 0; j < m; j++) { const T g = dy[j], v = y[j], a = g * (v + alpha); dz[j] = v > 0 ? g : a; }
        break;
    case BP_ACT_SOFTPLUS:   for (j = 0; j < m; j++) dz[j] = -dy[j] * M(expm1)(-y[j]); break;
    case BP_ACT_GELU:
        for (j = 0; j < m; j++)
            dz[j] = dy[j] * (normal_cdf(z[j]) + z[j] * INV_SQRT_2PI * M(exp)((T)-0.5 * z[j] * z[j]));
        break;
    case BP_ACT_GELU_TANH:
        for (j = 0; j < m; j++) {
            const T t = M(tanh)(gelu_tanh_arg(z[j]));
            const T du = SQRT_2_OVER_PI * (1 + (T)(3 * 0.044715) * z[j] * z[j]);
            dz[j] = dy[j] * ((T)0.5 * (1 + t) + (T)0.5 * z[j] * (1 - t * t) * du);
        }
        break;
    case BP_ACT_SOFTMAX: {
        T dot = 0;
        for (j = 0; j < m; j++)
            dot += dy[j] * y[j];
        for (j = 0; j < m; j++)
            dz[j] = y[j] * (dy[j] - dot);
        break;
    }
    }
}

/* v = beta v over n values; beta == 0 writes zeros without reading (BLAS semantics). */
static void scale_vec(bp_int n, T beta, T *v)
{
    if (beta == 1)
        return;
    for (bp_int j = 0; j < n; j++)
        v[j] = beta == 0 ? 0 : beta * v[j];
}

/* The same for an n_out x n_in matrix in `layout`. */
static void scale_mat(bp_layout layout, bp_int n_out, bp_int n_in, T beta, T *A, bp_int lda)
{
    const int row = layout == BP_ROW_MAJOR;
    for (bp_int i = 0, rows = row ? n_out : n_in; i < rows; i++)
        scale_vec(row ? n_in : n_out, beta, A + (size_t)i * (size_t)lda);
}

void IPFX(rank1)(bp_layout layout, bp_int m, bp_int n, T alpha, const T *x, const T *y, T beta, T *A, bp_int lda)
{
    if (beta == 1) {
        CB(ger)((enum CBLAS_ORDER)layout, m, n, alpha, x, 1, y, 1, A, lda);
        return;
    }
    const int row = layout == BP_ROW_MAJOR;
    for (bp_int a = 0, na = row ? m : n; a < na; a++) {
        T *d = A + (size_t)a * (size_t)lda;
        const T s = alpha * (row ? x[a] : y[a]), *v = row ? y : x;
        if (beta == 0)  /* A is not read: BLAS semantics */
            for (bp_int c = 0, nc = row ? n : m; c < nc; c++)
                d[c] = s * v[c];
        else
            for (bp_int c = 0, nc = row ? n : m; c < nc; c++)
                d[c] = beta * d[c] + s * v[c];
    }
}

/* Both layouts are computed as row-major products over the sample-major X, Y
 * blocks; a column-major W is, in memory, the row-major transpose W^T. */
static enum CBLAS_TRANSPOSE w_as_transposed(bp_layout layout)
{
    return layout == BP_ROW_MAJOR ? CblasTrans : CblasNoTrans;
}

/* Shapes: X n x n_in, W n_out x n_in, b n_out, Z and Y n x n_out. */
bp_status PFX(dense_forward)(bp_layout layout, bp_int n, bp_int n_in, bp_int n_out,
                             const T *X, bp_int ldx, const T *W, bp_int ldw, const T *b,
                             bp_act act, T alpha, T *Z, bp_int ldz, T *Y, bp_int ldy)
{
    TRY(check_dense_forward(__func__, layout, n, n_in, n_out, X, ldx, W, ldw, act, alpha, Z, ldz, Y, ldy));
    if (n == 0)
        return BP_OK;
    if (n == 1)  /* y = W x */
        CB(gemv)((enum CBLAS_ORDER)layout, CblasNoTrans, n_out, n_in, 1, W, ldw, X, 1, 0, Y, 1);
    else         /* Y = X W^T */
        CB(gemm)(CblasRowMajor, CblasNoTrans, w_as_transposed(layout), n, n_out, n_in,
                 1, X, ldx, W, ldw, 0, Y, ldy);
    IPFX(bias_act)(act, alpha, n, n_out, b, Z, ldz, Y, ldy);
    return BP_OK;
}

void IPFX(bias_act)(bp_act act, T alpha, bp_int n, bp_int n_out, const T *b, T *Z, bp_int ldz, T *Y, bp_int ldy)
{
    for (bp_int i = 0; i < n; i++) {
        T *y = &AT(Y, ldy, i, 0);
        if (b)
            for (bp_int j = 0; j < n_out; j++)
                y[j] += b[j];
        if (Z)
            memcpy(&AT(Z, ldz, i, 0), y, (size_t)n_out * sizeof *y);
        act_row(act, alpha, n_out, y, y);
    }
}

void IPFX(dz_db)(bp_act act, T alpha, bp_int n, bp_int n_out, const T *Z, bp_int ldz,
                 const T *Y, bp_int ldy, const T *dY, bp_int lddy, T *dZ, bp_int lddz, T beta, T *db)
{
    if (db)
        scale_vec(n_out, beta, db);
    for (bp_int i = 0; i < n; i++) {
        T *dz = &AT(dZ, lddz, i, 0);
        dact_row(act, alpha, n_out, bp_act_needs_z(act) ? &AT(Z, ldz, i, 0) : NULL,
                 act_reads_y(act) ? &AT(Y, ldy, i, 0) : NULL, &AT(dY, lddy, i, 0), dz);
        if (db)
            for (bp_int j = 0; j < n_out; j++)
                db[j] += dz[j];
    }
}

/* Shapes: X n x n_in, W and dW n_out x n_in, Z Y dY dZ n x n_out, db n_out, dX n x n_in. */
bp_status PFX(dense_backward)(bp_layout layout, bp_int n, bp_int n_in, bp_int n_out,
                              const T *X, bp_int ldx, const T *W, bp_int ldw,
                              bp_act act, T alpha, const T *Z, bp_int ldz, const T *Y, bp_int ldy,
                              const T *dY, bp_int lddy, T *dZ, bp_int lddz,
                              T beta, T *dW, bp_int lddw, T *db, T *dX, bp_int lddx)
{
    TRY(check_dense_backward(__func__, layout, n, n_in, n_out, X, ldx, W, ldw, act, alpha, Z, ldz,
                             Y, ldy, dY, lddy, dZ, lddz, beta, dW, lddw, dX, lddx));
    IPFX(dz_db)(act, alpha, n, n_out, Z, ldz, Y, ldy, dY, lddy, dZ, lddz, beta, db);
    if (n == 0) {  /* as gemm with k == 0: only the scaling by beta */
        scale_mat(layout, n_out, n_in, beta, dW, lddw);
        return BP_OK;
    }
    if (n == 1) {  /* dW = beta dW + dz x^T, a rank-1 update */
        IPFX(rank1)(layout, n_out, n_in, 1, dZ, X, beta, dW, lddw);
    } else if (layout == BP_ROW_MAJOR) {  /* dW = beta dW + dZ^T X */
        CB(gemm)(CblasRowMajor, CblasTrans, CblasNoTrans, n_out, n_in, n, 1, dZ, lddz, X, ldx, beta, dW, lddw);
    } else {                              /* dW^T = beta dW^T + X^T dZ */
        CB(gemm)(CblasRowMajor, CblasTrans, CblasNoTrans, n_in, n_out, n, 1, X, ldx, dZ, lddz, beta, dW, lddw);
    }
    if (!dX)
        return BP_OK;
    if (n == 1)  /* dx = W^T dz */
        CB(gemv)((enum CBLAS_ORDER)layout, CblasTrans, n_out, n_in, 1, W, ldw, dZ, 1, 0, dX, 1);
    else         /* dX = dZ W */
        CB(gemm)(CblasRowMajor, CblasNoTrans, layout == BP_ROW_MAJOR ? CblasNoTrans : CblasTrans,
                 n, n_in, n_out, 1, dZ, lddz, W, ldw, 0, dX, lddx);
    return BP_OK;
}

bp_status PFX(act_forward)(bp_act act, T alpha, bp_int n, bp_int m,
                           const T *Z, bp_int ldz, T *Y, bp_int ldy)
{
    TRY(check_act_forward(__func__, act, alpha, n, m, Z, ldz, Y, ldy));
    for (bp_int i = 0; i < n; i++)
        act_row(act, alpha, m, &AT(Z, ldz, i, 0), &AT(Y, ldy, i, 0));
    return BP_OK;
}

bp_status PFX(act_backward)(bp_act act, T alpha, bp_int n, bp_int m,
                            const T *Z, bp_int ldz, const T *Y, bp_int ldy,
                            const T *dY, bp_int lddy, T *dZ, bp_int lddz)
{
    TRY(check_act_backward(__func__, act, alpha, n, m, Z, ldz, Y, ldy, dY, lddy, dZ, lddz));
    IPFX(dz_db)(act, alpha, n, m, Z, ldz, Y, ldy, dY, lddy, dZ, lddz, 0, NULL);
    return BP_OK;
}

/* In every loss, dZ may be Z: each row's statistics are taken before the row is overwritten,
 * and each element is read before it is written. */

bp_status PFX(softmax_xent)(bp_int n, bp_int m, const T *Z, bp_int ldz, const int32_t *labels,
                            T divisor, double *loss, T *dZ, bp_int lddz)
{
    TRY(check_loss(__func__, n, m, Z, ldz, labels, NULL, 0, TARGET_LABELS, divisor, dZ, lddz));
    const T inv = 1 / divisor;
    double sum = 0;
    for (bp_int i = 0; i < n; i++) {
        const T *z = &AT(Z, ldz, i, 0);
        T zmax;
        const T esum = exp_sum(m, z, &zmax), scale = inv / esum;
        const int32_t c = labels[i];
        sum += (double)zmax + M(log)(esum) - (double)z[c];
        if (dZ) {
            T *dz = &AT(dZ, lddz, i, 0);
            for (bp_int j = 0; j < m; j++)
                dz[j] = M(exp)(z[j] - zmax) * scale;
            dz[c] -= inv;
        }
    }
    if (loss)
        *loss = sum / (double)divisor;
    return BP_OK;
}

bp_status PFX(softmax_xent_prob)(bp_int n, bp_int m, const T *Z, bp_int ldz, const T *Tgt,
                                 bp_int ldt, T divisor, double *loss, T *dZ, bp_int lddz)
{
    TRY(check_loss(__func__, n, m, Z, ldz, NULL, Tgt, ldt, TARGET_NONNEG, divisor, dZ, lddz));
    const T inv = 1 / divisor;
    double sum = 0;
    for (bp_int i = 0; i < n; i++) {
        const T *z = &AT(Z, ldz, i, 0), *t = &AT(Tgt, ldt, i, 0);
        T zmax;
        const T esum = exp_sum(m, z, &zmax), lse = zmax + M(log)(esum);
        T tsum = 0;
        for (bp_int j = 0; j < m; j++) {
            sum += (double)t[j] * (double)(lse - z[j]);  /* each term >= 0: no cancellation */
            tsum += t[j];
        }
        if (dZ) {
            T *dz = &AT(dZ, lddz, i, 0);
            const T scale = tsum / esum;
            for (bp_int j = 0; j < m; j++)
                dz[j] = (M(exp)(z[j] - zmax) * scale - t[j]) * inv;
        }
    }
    if (loss)
        *loss = sum / (double)divisor;
    return BP_OK;
}

bp_status PFX(sigmoid_bce)(bp_int n, bp_int m, const T *Z, bp_int ldz, const T *Tgt, bp_int ldt,
                           T divisor, double *loss, T *dZ, bp_int lddz)
{
    TRY(check_loss(__func__, n, m, Z, ldz, NULL, Tgt, ldt, TARGET_UNIT, divisor, dZ, lddz));
    const T inv = 1 / divisor;
    double sum = 0;
    for (bp_int i = 0; i < n; i++) {
        const T *z = &AT(Z, ldz, i, 0), *t = &AT(Tgt, ldt, i, 0);
        T *dz = dZ ? &AT(dZ, lddz, i, 0) : NULL;
        for (bp_int j = 0; j < m; j++) {
            /* -t log s(z) - (1-t) log(1 - s(z)) = max(z,0) - z t + log1p(e^-|z|) */
            sum += (double)(z[j] > 0 ? z[j] : 0) - (double)z[j] * (double)t[j]
                 + (double)M(log1p)(M(exp)(-M(fabs)(z[j])));
            if (dz)
                dz[j] = (sigmoid(z[j]) - t[j]) * inv;
        }
    }
    if (loss)
        *loss = sum / (double)divisor;
    return BP_OK;
}

bp_status PFX(mse)(bp_int n, bp_int m, const T *Z, bp_int ldz, const T *Tgt, bp_int ldt,
                   T divisor, double *loss, T *dZ, bp_int lddz)
{
    TRY(check_loss(__func__, n, m, Z, ldz, NULL, Tgt, ldt, TARGET_ANY, divisor, dZ, lddz));
    const double count = (double)divisor * (double)m;  /* a mean over every element */
    const T g = (T)(2 / count);
    double sum = 0;
    for (bp_int i = 0; i < n; i++) {
        const T *z = &AT(Z, ldz, i, 0), *t = &AT(Tgt, ldt, i, 0);
        T *dz = dZ ? &AT(dZ, lddz, i, 0) : NULL;
        for (bp_int j = 0; j < m; j++) {
            const T d = z[j] - t[j];
            sum += (double)d * (double)d;
            if (dz)
                dz[j] = g * d;
        }
    }
    if (loss)
        *loss = sum / count;
    return BP_OK;
}

/* Shapes: W and dW n_classes x n_in, b db p n_classes, x n_in. */
bp_status PFX(logreg_grad)(bp_layout layout, bp_int n_in, bp_int n_classes, const T *W, bp_int ldw,
                           const T *b, const T *x, int32_t label, T divisor, T *p, double *loss,
                           T beta, T *dW, bp_int lddw, T *db)
{
    TRY(check_logreg(__func__, layout, n_in, n_classes, W, ldw, x, label, divisor, p, beta, dW, lddw));
    CB(gemv)((enum CBLAS_ORDER)layout, CblasNoTrans, n_classes, n_in, 1, W, ldw, x, 1, 0, p, 1);
    if (b)
        for (bp_int j = 0; j < n_classes; j++)
            p[j] += b[j];
    T zmax;
    const T esum = exp_sum(n_classes, p, &zmax);
    if (loss)
        *loss = ((double)zmax + M(log)(esum) - (double)p[label]) / (double)divisor;
    softmax_of(n_classes, p, zmax, esum, p);
    /* dW = beta dW + (p - e_c) x^T / divisor: the rank-1 update p x^T, then the one-hot
     * part, which only touches row c, by axpy, so p stays the probabilities. */
    const T inv = 1 / divisor;
    IPFX(rank1)(layout, n_classes, n_in, inv, p, x, beta, dW, lddw);
    if (layout == BP_ROW_MAJOR)
        CB(axpy)(n_in, -inv, x, 1, dW + (size_t)label * (size_t)lddw, 1);
    else
        CB(axpy)(n_in, -inv, x, 1, dW + label, lddw);
    if (db) {
        scale_vec(n_classes, beta, db);
        for (bp_int j = 0; j < n_classes; j++)
            db[j] += p[j] * inv;
        db[label] -= inv;
    }
    return BP_OK;
}

/* ---- The BLAS cores of a network (cores.h) ---- */

static enum CBLAS_TRANSPOSE cblas_op(bp__trans t)
{
    return t == BP_T ? CblasTrans : CblasNoTrans;
}

/* One row of C is a gemv over B (the row of op(A) is read with stride lda when A is
 * transposed); one sample (K == 1, dW's shape) is a rank-1 update: the paths a batch of one
 * takes through bp_?dense_forward and bp_?dense_backward. */
static void gemm_core(bp__trans ta, bp__trans tb, bp_int M, bp_int N, bp_int K, T alpha, const T *A, bp_int lda,
                      const T *B, bp_int ldb, T beta, T *C, bp_int ldc)
{
    if (M == 1) {
        const bp_int inca = ta == BP_T ? lda : 1;
        if (tb == BP_N)  /* B is K x N: c = alpha B^T a + beta c */
            CB(gemv)(CblasRowMajor, CblasTrans, K, N, alpha, B, ldb, A, inca, beta, C, 1);
        else             /* B is N x K: c = alpha B a + beta c */
            CB(gemv)(CblasRowMajor, CblasNoTrans, N, K, alpha, B, ldb, A, inca, beta, C, 1);
        return;
    }
    if (K == 1 && ta == BP_T && tb == BP_N) {  /* C = beta C + alpha a b^T, a and b contiguous rows */
        IPFX(rank1)(BP_ROW_MAJOR, M, N, alpha, A, B, beta, C, ldc);
        return;
    }
    CB(gemm)(CblasRowMajor, cblas_op(ta), cblas_op(tb), M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static void dz_core(bp_act act, T alpha, bp_int n, bp_int n_out, const T *Z, bp_int ldz, const T *Y, bp_int ldy,
                    const T *dY, bp_int lddy, T *dZ, bp_int lddz)
{
    IPFX(dz_db)(act, alpha, n, n_out, Z, ldz, Y, ldy, dY, lddy, dZ, lddz, 0, NULL);
}

const IPFX(cores) IPFX(cores_blas) = {gemm_core, IPFX(bias_act), dz_core, PFX(softmax_xent), PFX(sigmoid_bce),
                                      PFX(mse)};
