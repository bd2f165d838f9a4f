/* SPDX-License-Identifier: MIT */
/* optim.tmpl.c: the optimizer update kernel bp_?optim_update, written once for T (see prec.h). */
#include <limits.h>
#include <stdint.h>
#include <cblas.h>
#include "core/internal.h"
#include "kernels/cores.h"
#include "net/net_exec.h"
#include "optim/optim_internal.h"

#define OPT_STR_(x) #x
#define OPT_STR(x) OPT_STR_(x)


/* The loops below read each of g, p, m, v once and write p, m, v once per element; the
 * hyperparameters arrive already rounded to T so the loops do no conversions. */

static void sgd_pass(size_t n, T *p, const T *g, T lr, T wd)
{
    if (wd == 0) {
        /* p -= lr g is an axpy: BLAS runs this memory-bound pass on all its threads,
         * which halves a training step's update time on two cores. Chunks keep the
         * int count of CBLAS in range. */
        for (size_t i = 0; i < n; i += INT_MAX / 2) {
            const size_t k = n - i < INT_MAX / 2 ? n - i : INT_MAX / 2;
            CB(axpy)((int)k, -lr, g + i, 1, p + i, 1);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const T pi = p[i];
        p[i] = pi - lr * (g[i] + wd * pi);
    }
}

static void momentum_pass(size_t n, T *p, const T *g, T *m, T lr, T wd, T mu)
{
    for (size_t i = 0; i < n; i++) {
        const T pi = p[i];
        const T b = mu * m[i] + (g[i] + wd * pi);
        m[i] = b;
        p[i] = pi - lr * b;
    }
}

static void nesterov_pass(size_t n, T *p, const T *g, T *m, T lr, T wd, T mu)
{
    for (size_t i = 0; i < n; i++) {
        const T pi = p[i];
        const T gi = g[i] + wd * pi;
        const T b = mu * m[i] + gi;
        m[i] = b;
        p[i] = pi - lr * (gi + mu * b);
    }
}

/* Adam and AdamW in one loop: Adam has l2 = wd and decay = 1, AdamW l2 = 0 and
 * decay = 1 - lr wd. step = lr / (1 - b1^t), rbc2 = 1 / sqrt(1 - b2^t). */
static void adam_pass(size_t n, T *p, const T *g, T *m, T *v, T l2, T decay, T b1, T omb1,
                      T b2, T omb2, T step, T rbc2, T eps)
{
    for (size_t i = 0; i < n; i++) {
        const T pi = p[i];
        const T gi = g[i] + l2 * pi;
        const T mi = b1 * m[i] + omb1 * gi;
        const T vi = b2 * v[i] + omb2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi * decay - step * mi / (M(sqrt)(vi) * rbc2 + eps);
    }
}

bp_status PFX(optim_update)(const bp_optim_config *config, size_t n, T *p, const T *g, T *m,
                            T *v, long t, double lr)
{
    static const char fn[] = OPT_STR(PFX(optim_update));
    BP_CHECK_PTR(config);
    const bp_status st = bp__optim_check_rule(fn, config);
    if (st != BP_OK)
        return st;
    /* A scheduled rate may reach 0 (cosine down to lr_min = 0), so 0 is accepted here. */
    BP_REQUIRE(isfinite(lr) && lr >= 0, BP_ERR_ARG, "lr (%g) is not finite and >= 0", lr);
    BP_REQUIRE(t >= 1, BP_ERR_ARG, "t (%ld) < 1", t);
    BP_REQUIRE(n <= (size_t)PTRDIFF_MAX / sizeof(T), BP_ERR_OVERFLOW,
               "n (%zu) elements overflow the address space", n);
    const bp_optimizer kind = config->kind;
    if (n > 0) {
        BP_CHECK_PTR(p);
        BP_CHECK_PTR(g);
        if (kind != BP_OPT_SGD)
            BP_CHECK_PTR(m);
        if (kind == BP_OPT_ADAM || kind == BP_OPT_ADAMW)
            BP_CHECK_PTR(v);
    }
    if (n == 0)
        return BP_OK;

    const double wd = config->weight_decay;
    const unsigned fp_mode = bp__ftz_begin();  /* see internal.h: subnormal state is slow */
    switch (kind) {
    case BP_OPT_SGD:
        sgd_pass(n, p, g, (T)lr, (T)wd);
        break;
    case BP_OPT_MOMENTUM:
        momentum_pass(n, p, g, m, (T)lr, (T)wd, (T)config->momentum);
        break;
    case BP_OPT_NESTEROV:
        nesterov_pass(n, p, g, m, (T)lr, (T)wd, (T)config->momentum);
        break;
    case BP_OPT_ADAM:
    case BP_OPT_ADAMW: {
        /* The bias corrections and 1 - beta are formed in double: in float, 1 - 0.999^t
         * would lose most of its digits to cancellation. */
        const double b1 = config->beta1, b2 = config->beta2, td = (double)t;
        const double bc1 = 1 - pow(b1, td), bc2 = 1 - pow(b2, td);
        const int decoupled = kind == BP_OPT_ADAMW;
        adam_pass(n, p, g, m, v, (T)(decoupled ? 0 : wd), (T)(decoupled ? 1 - lr * wd : 1),
                  (T)b1, (T)(1 - b1), (T)b2, (T)(1 - b2), (T)(lr / bc1), (T)(1 / sqrt(bc2)),
                  (T)config->eps);
        break;
    }
    }
    bp__ftz_end(fp_mode);
    return BP_OK;
}

/* Plain SGD folded into the weight-gradient product (a bp__grad_hook, see net_exec.h): for
 * features [lo, hi) of layer l, W = decay W - lr dZ^T X and b = decay b - lr db, decay =
 * 1 - lr wd. With beta = decay the product reads W where an unfused pass would first form dW,
 * which a fused step never writes. */
void IPFX(fused_sgd)(const bp__grad_hook *hook, bp_net *net, const void *cores, const bp__layer *l, bp_int m,
                     const void *dZ, const void *X, bp_int ldx, bp_int lo, bp_int hi)
{
    const IPFX(cores) *k = cores;
    const T lr = (T)hook->lr, decay = (T)(1 - hook->lr * hook->wd);
    T *W = (T *)bp_net_params(net) + l->w_off, *b = (T *)bp_net_params(net) + l->b_off;
    const T *db = (const T *)bp_net_grads(net) + l->b_off;
    k->gemm(BP_T, BP_N, hi - lo, l->n_in, m, -lr, (const T *)dZ + lo, l->n_out, X, ldx, decay,
            W + (size_t)lo * (size_t)l->n_in, l->n_in);
    for (bp_int j = lo; j < hi; j++)
        b[j] = decay * b[j] - lr * db[j];
}
