/* SPDX-License-Identifier: MIT */
/* naive.tmpl.c: the naive-loop twins of every kernel, written once for T: textbook loops, no BLAS.
 * Each matrix-product element is one dot product over its reduction index, as a person first writes it. */
#include "backprop/naive.h"
#include "kernels/cores.h"

/* Element (o, k) of an n_out x n_in matrix in `layout`. */
#define WAT(A, ld, layout, o, k) \
    (*((layout) == BP_ROW_MAJOR ? &AT(A, ld, o, k) : &AT(A, ld, k, o)))

static T naive_f(bp_act act, T alpha, T z)
{
    const T pi = (T)3.14159265358979323846;
    switch (act) {
    case BP_ACT_SIGMOID: return 1 / (1 + M(exp)(-z));
    case BP_ACT_TANH: return M(tanh)(z);
    case BP_ACT_RELU: return z < 0 ? 0 : z;  /* NaN in, NaN out */
    case BP_ACT_LEAKY_RELU: return z > 0 ? z : alpha * z;
    case BP_ACT_ELU: return z > 0 ? z : alpha * (M(exp)(z) - 1);
    case BP_ACT_GELU: return z * (T)0.5 * (1 + M(erf)(z / M(sqrt)(2)));
    case BP_ACT_GELU_TANH:
        return (T)0.5 * z * (1 + M(tanh)(M(sqrt)(2 / pi) * (z + (T)0.044715 * z * z * z)));
    case BP_ACT_SOFTPLUS:  /* log(1 + e^z), written so that e^z cannot overflow */
        return z > 0 ? z + M(log)(1 + M(exp)(-z)) : M(log)(1 + M(exp)(z));
    default: return z;  /* identity; softmax is handled per row */
    }
}

/* f'(z) from the output y (z for the GELUs). */
static T naive_df(bp_act act, T alpha, T z, T y)
{
    const T pi = (T)3.14159265358979323846;
    switch (act) {
    case BP_ACT_SIGMOID: return y * (1 - y);
    case BP_ACT_TANH: return 1 - y * y;
    case BP_ACT_RELU: return y > 0 ? 1 : 0;
    case BP_ACT_LEAKY_RELU: return y > 0 ? 1 : alpha;
    case BP_ACT_ELU: return y > 0 ? 1 : y + alpha;
    case BP_ACT_SOFTPLUS: return 1 - M(exp)(-y);
    case BP_ACT_GELU:
        return (T)0.5 * (1 + M(erf)(z / M(sqrt)(2))) + z * M(exp)(-z * z / 2) / M(sqrt)(2 * pi);
    case BP_ACT_GELU_TANH: {
        const T c = M(sqrt)(2 / pi), t = M(tanh)(c * (z + (T)0.044715 * z * z * z));
        return (T)0.5 * (1 + t) + (T)0.5 * z * (1 - t * t) * c * (1 + 3 * (T)0.044715 * z * z);
    }
    default: return 1;
    }
}

/* Softmax of one row, textbook with the maximum subtracted. */
static void naive_softmax(bp_int m, const T *z, T *y)
{
    T zmax = z[0], s = 0;
    for (bp_int j = 1; j < m; j++)
        if (z[j] > zmax)
            zmax = z[j];
    for (bp_int j = 0; j < m; j++)
        s += M(exp)(z[j] - zmax);
    for (bp_int j = 0; j < m; j++)
        y[j] = M(exp)(z[j] - zmax) / s;
}

/* log softmax(z)[c] of one row. */
static T naive_log_softmax(bp_int m, const T *z, bp_int c)
{
    T zmax = z[0], s = 0;
    for (bp_int j = 1; j < m; j++)
        if (z[j] > zmax)
            zmax = z[j];
    for (bp_int j = 0; j < m; j++)
        s += M(exp)(z[j] - zmax);
    return z[c] - zmax - M(log)(s);
}

static void naive_act_rows(bp_act act, T alpha, bp_int n, bp_int m, const T *Z, bp_int ldz,
                           T *Y, bp_int ldy)
{
    for (bp_int i = 0; i < n; i++) {
        if (act == BP_ACT_SOFTMAX)
            naive_softmax(m, &AT(Z, ldz, i, 0), &AT(Y, ldy, i, 0));
        else
            for (bp_int j = 0; j < m; j++)
                AT(Y, ldy, i, j) = naive_f(act, alpha, AT(Z, ldz, i, j));
    }
}

/* dZ = dY (.) f'(Z); softmax through its Jacobian-vector product y_j (dy_j - sum_k dy_k y_k).
 * dZ may be dY: each element is read before it is written. */
static void naive_dact_rows(bp_act act, T alpha, bp_int n, bp_int m, const T *Z, bp_int ldz,
                            const T *Y, bp_int ldy, const T *dY, bp_int lddy, T *dZ, bp_int lddz)
{
    const int zs = bp_act_needs_z(act), ys = act != BP_ACT_IDENTITY && !zs;
    for (bp_int i = 0; i < n; i++) {
        T s = 0;
        if (act == BP_ACT_SOFTMAX)
            for (bp_int k = 0; k < m; k++)
                s += AT(dY, lddy, i, k) * AT(Y, ldy, i, k);
        for (bp_int j = 0; j < m; j++) {
            const T dy = AT(dY, lddy, i, j);
            if (act == BP_ACT_SOFTMAX)
                AT(dZ, lddz, i, j) = AT(Y, ldy, i, j) * (dy - s);
            else
                AT(dZ, lddz, i, j) = dy * naive_df(act, alpha, zs ? AT(Z, ldz, i, j) : 0,
                                                   ys ? AT(Y, ldy, i, j) : 0);
        }
    }
}

bp_status PFX(dense_forward_naive)(bp_layout layout, bp_int n, bp_int n_in, bp_int n_out,
                                   const T *X, bp_int ldx, const T *W, bp_int ldw, const T *b,
                                   bp_act act, T alpha, T *Z, bp_int ldz, T *Y, bp_int ldy)
{
    TRY(check_dense_forward(__func__, layout, n, n_in, n_out, X, ldx, W, ldw, act, alpha, Z, ldz, Y, ldy));
    for (bp_int i = 0; i < n; i++)
        for (bp_int o = 0; o < n_out; o++) {
            T s = b ? b[o] : 0;
            for (bp_int k = 0; k < n_in; k++)
                s += AT(X, ldx, i, k) * WAT(W, ldw, layout, o, k);
            AT(Y, ldy, i, o) = s;
            if (Z)
                AT(Z, ldz, i, o) = s;
        }
    naive_act_rows(act, alpha, n, n_out, Y, ldy, Y, ldy);
    return BP_OK;
}

bp_status PFX(dense_backward_naive)(bp_layout layout, bp_int n, bp_int n_in, bp_int n_out,
                                    const T *X, bp_int ldx, const T *W, bp_int ldw,
                                    bp_act act, T alpha, const T *Z, bp_int ldz, const T *Y, bp_int ldy,
                                    const T *dY, bp_int lddy, T *dZ, bp_int lddz,
                                    T beta, T *dW, bp_int lddw, T *db, T *dX, bp_int lddx)
{
    TRY(check_dense_backward(__func__, layout, n, n_in, n_out, X, ldx, W, ldw, act, alpha, Z, ldz,
                             Y, ldy, dY, lddy, dZ, lddz, beta, dW, lddw, dX, lddx));
    naive_dact_rows(act, alpha, n, n_out, Z, ldz, Y, ldy, dY, lddy, dZ, lddz);
    for (bp_int o = 0; o < n_out; o++) {
        if (db) {
            T s = beta == 0 ? 0 : beta * db[o];
            for (bp_int i = 0; i < n; i++)
                s += AT(dZ, lddz, i, o);
            db[o] = s;
        }
        for (bp_int k = 0; k < n_in; k++) {
            T s = beta == 0 ? 0 : beta * WAT(dW, lddw, layout, o, k);
            for (bp_int i = 0; i < n; i++)
                s += AT(dZ, lddz, i, o) * AT(X, ldx, i, k);
            WAT(dW, lddw, layout, o, k) = s;
        }
    }
    if (dX)
        for (bp_int i = 0; i < n; i++)
            for (bp_int k = 0; k < n_in; k++) {
                T s = 0;
                for (bp_int o = 0; o < n_out; o++)
                    s += AT(dZ, lddz, i, o) * WAT(W, ldw, layout, o, k);
                AT(dX, lddx, i, k) = s;
            }
    return BP_OK;
}

bp_status PFX(act_forward_naive)(bp_act act, T alpha, bp_int n, bp_int m,
                                 const T *Z, bp_int ldz, T *Y, bp_int ldy)
{
    TRY(check_act_forward(__func__, act, alpha, n, m, Z, ldz, Y, ldy));
    naive_act_rows(act, alpha, n, m, Z, ldz, Y, ldy);
    return BP_OK;
}

bp_status PFX(act_backward_naive)(bp_act act, T alpha, bp_int n, bp_int m,
                                  const T *Z, bp_int ldz, const T *Y, bp_int ldy,
                                  const T *dY, bp_int lddy, T *dZ, bp_int lddz)
{
    TRY(check_act_backward(__func__, act, alpha, n, m, Z, ldz, Y, ldy, dY, lddy, dZ, lddz));
    naive_dact_rows(act, alpha, n, m, Z, ldz, Y, ldy, dY, lddy, dZ, lddz);
    return BP_OK;
}

bp_status PFX(softmax_xent_naive)(bp_int n, bp_int m, const T *Z, bp_int ldz, const int32_t *labels,
                                  T divisor, double *loss, T *dZ, bp_int lddz)
{
    TRY(check_loss(__func__, n, m, Z, ldz, labels, NULL, 0, TARGET_LABELS, divisor, dZ, lddz));
    double sum = 0;
    for (bp_int i = 0; i < n; i++) {
        sum -= naive_log_softmax(m, &AT(Z, ldz, i, 0), labels[i]);
        if (dZ) {
            naive_softmax(m, &AT(Z, ldz, i, 0), &AT(dZ, lddz, i, 0));
            for (bp_int j = 0; j < m; j++)
                AT(dZ, lddz, i, j) = (AT(dZ, lddz, i, j) - (j == labels[i] ? 1 : 0)) / divisor;
        }
    }
    if (loss)
        *loss = sum / divisor;
    return BP_OK;
}

bp_status PFX(softmax_xent_prob_naive)(bp_int n, bp_int m, const T *Z, bp_int ldz, const T *Tgt,
                                       bp_int ldt, T divisor, double *loss, T *dZ, bp_int lddz)
{
    TRY(check_loss(__func__, n, m, Z, ldz, NULL, Tgt, ldt, TARGET_NONNEG, divisor, dZ, lddz));
    double sum = 0;
    for (bp_int i = 0; i < n; i++) {
        T tsum = 0;
        for (bp_int j = 0; j < m; j++) {
            sum -= AT(Tgt, ldt, i, j) * naive_log_softmax(m, &AT(Z, ldz, i, 0), j);
            tsum += AT(Tgt, ldt, i, j);
        }
        if (dZ) {
            naive_softmax(m, &AT(Z, ldz, i, 0), &AT(dZ, lddz, i, 0));
            for (bp_int j = 0; j < m; j++)
                AT(dZ, lddz, i, j) = (AT(dZ, lddz, i, j) * tsum - AT(Tgt, ldt, i, j)) / divisor;
        }
    }
    if (loss)
        *loss = sum / divisor;
    return BP_OK;
}

bp_status PFX(sigmoid_bce_naive)(bp_int n, bp_int m, const T *Z, bp_int ldz, const T *Tgt,
                                 bp_int ldt, T divisor, double *loss, T *dZ, bp_int lddz)
{
    TRY(check_loss(__func__, n, m, Z, ldz, NULL, Tgt, ldt, TARGET_UNIT, divisor, dZ, lddz));
    double sum = 0;
    for (bp_int i = 0; i < n; i++)
        for (bp_int j = 0; j < m; j++) {
            const T z = AT(Z, ldz, i, j), t = AT(Tgt, ldt, i, j);
            /* -t log s - (1 - t) log(1 - s) with log s = -softplus(-z), log(1 - s) = -softplus(z) */
            sum += t * naive_f(BP_ACT_SOFTPLUS, 0, -z) + (1 - t) * naive_f(BP_ACT_SOFTPLUS, 0, z);
            if (dZ)
                AT(dZ, lddz, i, j) = (naive_f(BP_ACT_SIGMOID, 0, z) - t) / divisor;
        }
    if (loss)
        *loss = sum / divisor;
    return BP_OK;
}

bp_status PFX(mse_naive)(bp_int n, bp_int m, const T *Z, bp_int ldz, const T *Tgt, bp_int ldt,
                         T divisor, double *loss, T *dZ, bp_int lddz)
{
    TRY(check_loss(__func__, n, m, Z, ldz, NULL, Tgt, ldt, TARGET_ANY, divisor, dZ, lddz));
    double sum = 0;
    for (bp_int i = 0; i < n; i++)
        for (bp_int j = 0; j < m; j++) {
            const T d = AT(Z, ldz, i, j) - AT(Tgt, ldt, i, j);
            sum += (double)d * d;
            if (dZ)
                AT(dZ, lddz, i, j) = 2 * d / divisor / (T)m;
        }
    if (loss)
        *loss = sum / divisor / m;
    return BP_OK;
}

bp_status PFX(logreg_grad_naive)(bp_layout layout, bp_int n_in, bp_int n_classes, const T *W,
                                 bp_int ldw, const T *b, const T *x, int32_t label, T divisor,
                                 T *p, double *loss, T beta, T *dW, bp_int lddw, T *db)
{
    TRY(check_logreg(__func__, layout, n_in, n_classes, W, ldw, x, label, divisor, p, beta, dW, lddw));
    for (bp_int o = 0; o < n_classes; o++) {
        T s = b ? b[o] : 0;
        for (bp_int k = 0; k < n_in; k++)
            s += WAT(W, ldw, layout, o, k) * x[k];
        p[o] = s;
    }
    if (loss)
        *loss = -naive_log_softmax(n_classes, p, label) / divisor;
    naive_softmax(n_classes, p, p);
    for (bp_int o = 0; o < n_classes; o++) {
        const T g = (p[o] - (o == label ? 1 : 0)) / divisor;
        for (bp_int k = 0; k < n_in; k++)
            WAT(dW, lddw, layout, o, k) = (beta == 0 ? 0 : beta * WAT(dW, lddw, layout, o, k)) + g * x[k];
        if (db)
            db[o] = (beta == 0 ? 0 : beta * db[o]) + g;
    }
    return BP_OK;
}

/* ---- The naive cores of a network (cores.h): the same loops, no BLAS ---- */

static void naive_gemm(bp__trans ta, bp__trans tb, bp_int M, bp_int N, bp_int K, T alpha, const T *A, bp_int lda,
                       const T *B, bp_int ldb, T beta, T *C, bp_int ldc)
{
    for (bp_int i = 0; i < M; i++)
        for (bp_int j = 0; j < N; j++) {
            T s = 0;
            for (bp_int k = 0; k < K; k++)
                s += (ta == BP_T ? AT(A, lda, k, i) : AT(A, lda, i, k)) * (tb == BP_T ? AT(B, ldb, j, k) : AT(B, ldb, k, j));
            AT(C, ldc, i, j) = alpha * s + (beta == 0 ? 0 : beta * AT(C, ldc, i, j));
        }
}

static void naive_bias_act(bp_act act, T alpha, bp_int n, bp_int n_out, const T *b, T *Z, bp_int ldz, T *Y,
                           bp_int ldy)
{
    for (bp_int i = 0; i < n; i++)
        for (bp_int o = 0; o < n_out; o++) {
            AT(Y, ldy, i, o) += b ? b[o] : 0;
            if (Z)
                AT(Z, ldz, i, o) = AT(Y, ldy, i, o);
        }
    naive_act_rows(act, alpha, n, n_out, Y, ldy, Y, ldy);
}

const IPFX(cores) IPFX(cores_naive) = {naive_gemm, naive_bias_act, naive_dact_rows, PFX(softmax_xent_naive),
                                       PFX(sigmoid_bce_naive), PFX(mse_naive)};
