/* SPDX-License-Identifier: MIT */
/* steps.h: what the typed files of src/net share, for T: buffers, the micro-batch, the kernel
 * table and the steps (exec.tmpl.c). Include after core/prec.h, once per translation unit. */
#ifndef BP_NET_STEPS_H
#define BP_NET_STEPS_H

#include "kernels/cores.h"
#include "net/net_exec.h"
#include "net/dp.h"

/* Buffers of the arena, gradients and parameters. */
#define ARENA(net, off) ((T *)(void *)((char *)(net)->arena + (off)))
#define GRAD(net, off) ((T *)(net)->grads + (off))
#define PARAM(net, off) ((T *)(net)->params + (off))

/* The kernels the network runs on. */
static inline const IPFX(cores) *cores_of(const bp_net *net)
{
    return net->backend == BP_BACKEND_NAIVE ? &IPFX(cores_naive) : &IPFX(cores_blas);
}

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
    const T *dY;            /* the VJP modes: the caller's dL/dY of these rows (lddy) */
    bp_int lddy;
    T *dX;                  /* the caller's dL/dX of these rows (lddx), or NULL */
    bp_int lddx;
    bp_int unit;            /* the VJP modes without dY: dY = e_unit */
    T *jac;                 /* the parameter Jacobian's row of the first of these rows, or NULL */
    size_t ldj;             /* its leading dimension; a sample's rows are n_out ldj apart */
    int reduce;             /* the last micro-batch of a reduced pass: announce each layer (dp.h) */
} micro;

/* Walks the plan's steps for one micro-batch: forward, loss (its part of the mean added to
 * *loss) and, unless mode is BP_MODE_LOSS_ONLY, backward and grads_ready, with the hook if not
 * NULL (exec.tmpl.c). */
bp_status IPFX(run_micro)(bp_net *net, const char *fn, const micro *b, bp__mode mode, const bp__grad_hook *hook,
                          double *loss);

/* The forward step of layer i over m rows: Y (ldy) = f(in W^T + b), and Z if not NULL, cut as
 * the plan says, with the finite check (exec.tmpl.c). */
bp_status IPFX(forward_step)(bp_net *net, const char *fn, bp_int i, bp_int m, const T *in, bp_int ldin, T *Z,
                             T *Y, bp_int ldy);

/* The index of the largest of n values (the first, on a tie): the predicted class. */
static inline bp_int argmax(const T *y, bp_int n)
{
    bp_int best = 0;
    for (bp_int j = 1; j < n; j++)
        if (y[j] > y[best])
            best = j;
    return best;
}

#endif
