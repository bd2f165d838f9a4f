/* SPDX-License-Identifier: MIT */
/* runner_tmpl.h: the runners of runner.h for one precision; runner.c includes it with T, K(name), R(name), T_EPS, T_NAME defined. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#ifndef RUNNER_TMPL_ONCE
#define RUNNER_TMPL_ONCE
#define STR_(x) #x
#define STR(x) STR_(x)
/* The kernel `name` or its naive twin, and its public name for messages. */
#define KERNEL(name) (naive ? K(name##_naive) : K(name))
#define KNAME(name) (naive ? STR(K(name##_naive)) : STR(K(name)))
#endif

/* A fresh T copy of count doubles (NULL for NULL); sentinel bytes stay sentinel bytes. */
static T *R(in)(const double *src, size_t count)
{
    if (!src)
        return NULL;
    T *t = malloc((count ? count : 1) * sizeof *t);
    ck_assert_ptr_nonnull(t);
    for (size_t i = 0; i < count; i++) {
        if (tu_is_sentinel(&src[i], sizeof src[i]))
            tu_sentinel(&t[i], sizeof t[i]);
        else
            t[i] = (T)src[i];
    }
    return t;
}

/* Fails the test if the kernel changed its const input t (a copy of src), then frees it. */
static void R(done_in)(const double *src, T *t, size_t count, const char *fn, const char *what)
{
    if (!src)
        return;
    T *again = R(in)(src, count);
    ck_assert_msg(memcmp(again, t, count * sizeof *t) == 0, "%s (%s) modified its input %s", fn, T_NAME, what);
    free(again);
    free(t);
}

/* Copies the output t back into dst (sentinel to sentinel) and frees it. */
static void R(done_out)(double *dst, T *t, size_t count)
{
    if (!dst)
        return;
    for (size_t i = 0; i < count; i++) {
        if (tu_is_sentinel(&t[i], sizeof t[i]))
            tu_sentinel(&dst[i], sizeof dst[i]);
        else
            dst[i] = (double)t[i];
    }
    free(t);
}

static bp_status R(dense_forward)(int naive, bp_layout layout, bp_int n, bp_int n_in, bp_int n_out,
    const double *X, bp_int ldx, const double *W, bp_int ldw, const double *b, bp_act act, double alpha,
    double *Z, bp_int ldz, double *Y, bp_int ldy)
{
    const size_t cx = tu_extent(n, n_in, ldx), cw = tu_wextent(layout, n_in, n_out, ldw),
                 cz = tu_extent(n, n_out, ldz), cy = tu_extent(n, n_out, ldy);
    T *x = R(in)(X, cx), *w = R(in)(W, cw), *bb = R(in)(b, (size_t)n_out), *z = R(in)(Z, cz), *y = R(in)(Y, cy);
    const bp_status st = KERNEL(dense_forward)(layout, n, n_in, n_out, x, ldx, w, ldw, bb, act, (T)alpha,
                                               z, ldz, y, ldy);
    const char *fn = KNAME(dense_forward);
    R(done_in)(X, x, cx, fn, "X");
    R(done_in)(W, w, cw, fn, "W");
    R(done_in)(b, bb, (size_t)n_out, fn, "b");
    R(done_out)(Z, z, cz);
    R(done_out)(Y, y, cy);
    return st;
}

static bp_status R(dense_backward)(int naive, bp_layout layout, bp_int n, bp_int n_in, bp_int n_out,
    const double *X, bp_int ldx, const double *W, bp_int ldw, bp_act act, double alpha,
    const double *Z, bp_int ldz, const double *Y, bp_int ldy, const double *dY, bp_int lddy,
    double *dZ, bp_int lddz, double beta, double *dW, bp_int lddw, double *db, double *dX, bp_int lddx)
{
    const size_t cx = tu_extent(n, n_in, ldx), cw = tu_wextent(layout, n_in, n_out, ldw),
                 cz = tu_extent(n, n_out, ldz), cy = tu_extent(n, n_out, ldy),
                 cdy = tu_extent(n, n_out, lddy), cdz = tu_extent(n, n_out, lddz),
                 cdw = tu_wextent(layout, n_in, n_out, lddw), cdx = tu_extent(n, n_in, lddx);
    const int alias = dZ != NULL && dZ == dY;
    T *x = R(in)(X, cx), *w = R(in)(W, cw), *z = R(in)(Z, cz), *y = R(in)(Y, cy), *dy = R(in)(dY, cdy);
    T *dz = alias ? dy : R(in)(dZ, cdz);
    T *dw = R(in)(dW, cdw), *dbb = R(in)(db, (size_t)n_out), *dx = R(in)(dX, cdx);
    const bp_status st = KERNEL(dense_backward)(layout, n, n_in, n_out, x, ldx, w, ldw, act, (T)alpha,
                                                z, ldz, y, ldy, dy, lddy, dz, lddz, (T)beta, dw, lddw, dbb, dx, lddx);
    const char *fn = KNAME(dense_backward);
    R(done_in)(X, x, cx, fn, "X");
    R(done_in)(W, w, cw, fn, "W");
    R(done_in)(Z, z, cz, fn, "Z");
    R(done_in)(Y, y, cy, fn, "Y");
    if (!alias)
        R(done_in)(dY, dy, cdy, fn, "dY");
    R(done_out)(dZ, dz, cdz);
    R(done_out)(dW, dw, cdw);
    R(done_out)(db, dbb, (size_t)n_out);
    R(done_out)(dX, dx, cdx);
    return st;
}

static bp_status R(act_forward)(int naive, bp_act act, double alpha, bp_int n, bp_int m,
    const double *Z, bp_int ldz, double *Y, bp_int ldy)
{
    const size_t cz = tu_extent(n, m, ldz), cy = tu_extent(n, m, ldy);
    const int alias = Y != NULL && Y == Z;
    T *z = R(in)(Z, cz);
    T *y = alias ? z : R(in)(Y, cy);
    const bp_status st = KERNEL(act_forward)(act, (T)alpha, n, m, z, ldz, y, ldy);
    if (!alias)
        R(done_in)(Z, z, cz, KNAME(act_forward), "Z");
    R(done_out)(Y, y, cy);
    return st;
}

static bp_status R(act_backward)(int naive, bp_act act, double alpha, bp_int n, bp_int m,
    const double *Z, bp_int ldz, const double *Y, bp_int ldy, const double *dY, bp_int lddy,
    double *dZ, bp_int lddz)
{
    const size_t cz = tu_extent(n, m, ldz), cy = tu_extent(n, m, ldy), cdy = tu_extent(n, m, lddy),
                 cdz = tu_extent(n, m, lddz);
    const int alias = dZ != NULL && dZ == dY;
    T *z = R(in)(Z, cz), *y = R(in)(Y, cy), *dy = R(in)(dY, cdy);
    T *dz = alias ? dy : R(in)(dZ, cdz);
    const bp_status st = KERNEL(act_backward)(act, (T)alpha, n, m, z, ldz, y, ldy, dy, lddy, dz, lddz);
    const char *fn = KNAME(act_backward);
    R(done_in)(Z, z, cz, fn, "Z");
    R(done_in)(Y, y, cy, fn, "Y");
    if (!alias)
        R(done_in)(dY, dy, cdy, fn, "dY");
    R(done_out)(dZ, dz, cdz);
    return st;
}

static bp_status R(softmax_xent)(int naive, bp_int n, bp_int m, const double *Z, bp_int ldz,
    const int32_t *labels, double divisor, double *loss, double *dZ, bp_int lddz)
{
    const size_t cz = tu_extent(n, m, ldz), cdz = tu_extent(n, m, lddz);
    const int alias = dZ != NULL && dZ == Z;
    T *z = R(in)(Z, cz);
    T *dz = alias ? z : R(in)(dZ, cdz);
    const bp_status st = KERNEL(softmax_xent)(n, m, z, ldz, labels, (T)divisor, loss, dz, lddz);
    if (!alias)
        R(done_in)(Z, z, cz, KNAME(softmax_xent), "Z");
    R(done_out)(dZ, dz, cdz);
    return st;
}

/* softmax_xent_prob, sigmoid_bce and mse: the same shape, one body. */
#define TARGET_LOSS_RUNNER(name)                                                                          \
    static bp_status R(name)(int naive, bp_int n, bp_int m, const double *Z, bp_int ldz,                   \
        const double *Tgt, bp_int ldt, double divisor, double *loss, double *dZ, bp_int lddz)             \
    {                                                                                                     \
        const size_t cz = tu_extent(n, m, ldz), ct = tu_extent(n, m, ldt), cdz = tu_extent(n, m, lddz);   \
        const int alias = dZ != NULL && dZ == Z;                                                          \
        T *z = R(in)(Z, cz), *t = R(in)(Tgt, ct);                                                         \
        T *dz = alias ? z : R(in)(dZ, cdz);                                                               \
        const bp_status st = KERNEL(name)(n, m, z, ldz, t, ldt, (T)divisor, loss, dz, lddz);              \
        if (!alias)                                                                                       \
            R(done_in)(Z, z, cz, KNAME(name), "Z");                                                       \
        R(done_in)(Tgt, t, ct, KNAME(name), "Tgt");                                                       \
        R(done_out)(dZ, dz, cdz);                                                                         \
        return st;                                                                                        \
    }
TARGET_LOSS_RUNNER(softmax_xent_prob)
TARGET_LOSS_RUNNER(sigmoid_bce)
TARGET_LOSS_RUNNER(mse)
#undef TARGET_LOSS_RUNNER

static bp_status R(logreg_grad)(int naive, bp_layout layout, bp_int n_in, bp_int n_classes,
    const double *W, bp_int ldw, const double *b, const double *x, int32_t label, double divisor,
    double *p, double *loss, double beta, double *dW, bp_int lddw, double *db)
{
    const size_t cw = tu_wextent(layout, n_in, n_classes, ldw), cdw = tu_wextent(layout, n_in, n_classes, lddw);
    const size_t nc = (size_t)n_classes, ni = (size_t)n_in;
    T *w = R(in)(W, cw), *bb = R(in)(b, nc), *xx = R(in)(x, ni), *pp = R(in)(p, nc);
    T *dw = R(in)(dW, cdw), *dbb = R(in)(db, nc);
    const bp_status st = KERNEL(logreg_grad)(layout, n_in, n_classes, w, ldw, bb, xx, label, (T)divisor,
                                             pp, loss, (T)beta, dw, lddw, dbb);
    const char *fn = KNAME(logreg_grad);
    R(done_in)(W, w, cw, fn, "W");
    R(done_in)(b, bb, nc, fn, "b");
    R(done_in)(x, xx, ni, fn, "x");
    R(done_out)(p, pp, nc);
    R(done_out)(dW, dw, cdw);
    R(done_out)(db, dbb, nc);
    return st;
}

const runner R(runner) = {
    T_NAME, T_EPS, R(dense_forward), R(dense_backward), R(act_forward), R(act_backward),
    R(softmax_xent), R(softmax_xent_prob), R(sigmoid_bce), R(mse), R(logreg_grad),
};
