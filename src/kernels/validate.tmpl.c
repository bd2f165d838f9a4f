/* SPDX-License-Identifier: MIT */
/* validate.tmpl.c: argument checks of every kernel, shared by the BLAS kernels and their naive twins
 * (included once per precision after prec.h). Each returns BP_OK or the error it raised. */
#include "core/internal.h"
#include "kernels/kernels_internal.h"

static const char *layout_name(bp_layout layout)
{
    return layout == BP_ROW_MAJOR ? "BP_ROW_MAJOR" : "BP_COL_MAJOR";
}

static bp_status check_act(const char *fn, bp_act act, T alpha)
{
    return bp__check_act(fn, "", act, (double)alpha);
}

static bp_status check_scalar(const char *fn, const char *name, T v, int positive)
{
    BP_REQUIRE(isfinite(v), BP_ERR_ARG, "%s is not finite", name);
    BP_REQUIRE(!positive || v > 0, BP_ERR_ARG, "%s (%g) <= 0", name, (double)v);
    return BP_OK;
}

/* An n_out x n_in matrix (W or dW) in `layout`: row-major rows of n_in, column-major columns of n_out. */
static bp_status check_mat(const char *fn, bp_layout layout, bp_int n_out, bp_int n_in,
                           const T *A, const char *a_name, bp_int lda, const char *ld_name)
{
    const int row = layout == BP_ROW_MAJOR;
    const bp_int need = row ? n_in : n_out;
    BP_REQUIRE(A != NULL, BP_ERR_ARG, "%s is NULL", a_name);
    BP_REQUIRE(lda >= need, BP_ERR_ARG, "%s (%d) < %s (%d) for %s", ld_name, (int)lda,
               row ? "n_in" : "n_out", (int)need, layout_name(layout));
    BP_REQUIRE(bp__block_fits(row ? n_out : n_in, lda, sizeof(T)), BP_ERR_OVERFLOW,
               "%s: %d x %d with leading dimension %d overflows the address space", a_name,
               (int)n_out, (int)n_in, (int)lda);
    return BP_OK;
}
#define CHECK_MAT(layout, n_out, n_in, A, lda) TRY(check_mat(fn, layout, n_out, n_in, A, #A, lda, #lda))

/* A block of n samples of width w: leading dimension, pointer (unless n == 0), size. */
#define CHECK_SAMPLES(A, n, w, lda) do { BP_CHECK_LD(lda, w); BP_CHECK_BLOCK(A, n, lda); } while (0)

/* An output that may overwrite an input must do so exactly, with the same leading dimension. */
#define CHECK_IN_PLACE(out, ldo, in, ldi)                                                    \
    BP_REQUIRE((const void *)(out) != (const void *)(in) || (ldo) == (ldi), BP_ERR_ARG,     \
               "%s is %s but %s (%d) != %s (%d)", #out, #in, #ldo, (int)(ldo), #ldi, (int)(ldi))

static int act_reads_y(bp_act act)
{
    return act != BP_ACT_IDENTITY && !bp_act_needs_z(act);
}

static bp_status check_dense_forward(const char *fn, bp_layout layout, bp_int n, bp_int n_in,
                                     bp_int n_out, const T *X, bp_int ldx, const T *W, bp_int ldw,
                                     bp_act act, T alpha, const T *Z, bp_int ldz, const T *Y, bp_int ldy)
{
    BP_CHECK_LAYOUT(layout);
    BP_CHECK_BATCH(n);
    BP_CHECK_WIDTH(n_in);
    BP_CHECK_WIDTH(n_out);
    TRY(check_act(fn, act, alpha));
    CHECK_SAMPLES(X, n, n_in, ldx);
    CHECK_MAT(layout, n_out, n_in, W, ldw);
    CHECK_SAMPLES(Y, n, n_out, ldy);
    if (Z) {
        CHECK_SAMPLES(Z, n, n_out, ldz);
        BP_REQUIRE(Z != Y, BP_ERR_ARG, "Z is Y: the pre-activation needs its own buffer");
    }
    return BP_OK;
}

static bp_status check_dense_backward(const char *fn, bp_layout layout, bp_int n, bp_int n_in,
                                      bp_int n_out, const T *X, bp_int ldx, const T *W, bp_int ldw,
                                      bp_act act, T alpha, const T *Z, bp_int ldz, const T *Y,
                                      bp_int ldy, const T *dY, bp_int lddy, const T *dZ, bp_int lddz,
                                      T beta, const T *dW, bp_int lddw, const T *dX, bp_int lddx)
{
    BP_CHECK_LAYOUT(layout);
    BP_CHECK_BATCH(n);
    BP_CHECK_WIDTH(n_in);
    BP_CHECK_WIDTH(n_out);
    TRY(check_act(fn, act, alpha));
    TRY(check_scalar(fn, "beta", beta, 0));
    CHECK_SAMPLES(X, n, n_in, ldx);
    CHECK_MAT(layout, n_out, n_in, W, ldw);
    if (bp_act_needs_z(act))
        CHECK_SAMPLES(Z, n, n_out, ldz);
    if (act_reads_y(act))
        CHECK_SAMPLES(Y, n, n_out, ldy);
    CHECK_SAMPLES(dY, n, n_out, lddy);
    CHECK_SAMPLES(dZ, n, n_out, lddz);
    CHECK_IN_PLACE(dZ, lddz, dY, lddy);
    CHECK_MAT(layout, n_out, n_in, dW, lddw);
    if (dX)
        CHECK_SAMPLES(dX, n, n_in, lddx);
    return BP_OK;
}

static bp_status check_act_forward(const char *fn, bp_act act, T alpha, bp_int n, bp_int m,
                                   const T *Z, bp_int ldz, const T *Y, bp_int ldy)
{
    BP_CHECK_BATCH(n);
    BP_CHECK_WIDTH(m);
    TRY(check_act(fn, act, alpha));
    CHECK_SAMPLES(Z, n, m, ldz);
    CHECK_SAMPLES(Y, n, m, ldy);
    CHECK_IN_PLACE(Y, ldy, Z, ldz);
    return BP_OK;
}

static bp_status check_act_backward(const char *fn, bp_act act, T alpha, bp_int n, bp_int m,
                                    const T *Z, bp_int ldz, const T *Y, bp_int ldy,
                                    const T *dY, bp_int lddy, const T *dZ, bp_int lddz)
{
    BP_CHECK_BATCH(n);
    BP_CHECK_WIDTH(m);
    TRY(check_act(fn, act, alpha));
    if (bp_act_needs_z(act))
        CHECK_SAMPLES(Z, n, m, ldz);
    if (act_reads_y(act))
        CHECK_SAMPLES(Y, n, m, ldy);
    CHECK_SAMPLES(dY, n, m, lddy);
    CHECK_SAMPLES(dZ, n, m, lddz);
    CHECK_IN_PLACE(dZ, lddz, dY, lddy);
    return BP_OK;
}

/* What a loss requires of its targets. */
enum target_rule { TARGET_LABELS, TARGET_ANY, TARGET_NONNEG, TARGET_UNIT };

static bp_status check_loss(const char *fn, bp_int n, bp_int m, const T *Z, bp_int ldz,
                            const int32_t *labels, const T *Tgt, bp_int ldt, enum target_rule rule,
                            T divisor, const T *dZ, bp_int lddz)
{
    BP_CHECK_BATCH(n);
    BP_CHECK_WIDTH(m);
    CHECK_SAMPLES(Z, n, m, ldz);
    TRY(check_scalar(fn, "divisor", divisor, 1));
    if (dZ) {
        CHECK_SAMPLES(dZ, n, m, lddz);
        CHECK_IN_PLACE(dZ, lddz, Z, ldz);
    }
    if (rule == TARGET_LABELS) {
        if (n > 0)
            BP_CHECK_PTR(labels);
        for (bp_int i = 0; i < n; i++)
            BP_REQUIRE(labels[i] >= 0 && labels[i] < m, BP_ERR_ARG,
                       "labels[%d] (%d) is not in [0, m) with m = %d", (int)i, (int)labels[i], (int)m);
        return BP_OK;
    }
    CHECK_SAMPLES(Tgt, n, m, ldt);
    if (rule == TARGET_ANY)
        return BP_OK;
    for (bp_int i = 0; i < n; i++)
        for (bp_int j = 0; j < m; j++) {
            const T t = Tgt[(size_t)i * (size_t)ldt + (size_t)j];
            BP_REQUIRE(isfinite(t), BP_ERR_NONFINITE, "Tgt[%d][%d] is not finite", (int)i, (int)j);
            BP_REQUIRE(t >= 0 && (rule != TARGET_UNIT || t <= 1), BP_ERR_ARG,
                       "Tgt[%d][%d] (%g) is outside %s", (int)i, (int)j, (double)t,
                       rule == TARGET_UNIT ? "[0, 1]" : "[0, inf)");
        }
    return BP_OK;
}

static bp_status check_logreg(const char *fn, bp_layout layout, bp_int n_in, bp_int n_classes,
                              const T *W, bp_int ldw, const T *x, int32_t label, T divisor,
                              const T *p, T beta, const T *dW, bp_int lddw)
{
    BP_CHECK_LAYOUT(layout);
    BP_CHECK_WIDTH(n_in);
    BP_CHECK_WIDTH(n_classes);
    CHECK_MAT(layout, n_classes, n_in, W, ldw);
    BP_CHECK_PTR(x);
    BP_REQUIRE(label >= 0 && label < n_classes, BP_ERR_ARG,
               "label (%d) is not in [0, n_classes) with n_classes = %d", (int)label, (int)n_classes);
    TRY(check_scalar(fn, "divisor", divisor, 1));
    BP_CHECK_PTR(p);
    TRY(check_scalar(fn, "beta", beta, 0));
    CHECK_MAT(layout, n_classes, n_in, dW, lddw);
    return BP_OK;
}
