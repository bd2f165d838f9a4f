/* SPDX-License-Identifier: MIT */
/* nettest_util.h: helpers shared by the network and training suites: a counting (and failing)
 * allocator, dtype conversion, error checks that cannot pass on a stale message. */
#ifndef BP_NETTEST_UTIL_H
#define BP_NETTEST_UTIL_H

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ---- a counting allocator that can be told to fail ------------------------------------- */

typedef struct nt_counter {
    long allocs;     /* successful allocations */
    long frees;      /* frees of non-NULL pointers */
    long refused;    /* allocations answered with NULL */
    long fail_after; /* < 0: never fail; otherwise every call once `allocs` reached it fails */
} nt_counter;

static inline void *nt_alloc(void *ctx, size_t size)
{
    nt_counter *c = ctx;
    if (c->fail_after >= 0 && c->allocs >= c->fail_after) {
        c->refused++;
        return NULL;
    }
    void *p = malloc(size);
    ck_assert_ptr_nonnull(p);
    c->allocs++;
    return p;
}

static inline void nt_free(void *ctx, void *p)
{
    nt_counter *c = ctx;
    if (p) {
        c->frees++;
        free(p);
    }
}

static inline nt_counter nt_counter_make(void)
{
    nt_counter c = {0, 0, 0, -1};
    return c;
}

static inline bp_allocator nt_allocator(nt_counter *c)
{
    bp_allocator a = {nt_alloc, nt_free, c};
    return a;
}

/* ---- errors ------------------------------------------------------------------------------ */

/* Leaves a known, unrelated message as the last error, so that checking the next call's
 * message cannot pass on what an earlier call left behind. */
static inline void nt_reset_error(void)
{
    (void)bp_net_describe_plan(NULL, NULL, 0, NULL);
}

/* The call must return `status`, and bp_last_error() must start with "fname: " (so it is
 * this call's message) and contain `substr` (the argument it names). */
#define NT_EXPECT(call, status, fname, substr)                                                   \
    do {                                                                                         \
        nt_reset_error();                                                                        \
        const bp_status st_ = (call);                                                            \
        const char *msg_ = bp_last_error();                                                      \
        ck_assert_msg(st_ == (status), "%s: status %d (%s), expected %d (%s); last error \"%s\"", \
                      #call, (int)st_, bp_strerror(st_), (int)(status), bp_strerror(status), msg_); \
        ck_assert_msg(strncmp(msg_, fname ": ", strlen(fname ": ")) == 0 &&                     \
                          strstr(msg_, (substr)) != NULL,                                        \
                      "%s: last error \"%s\" is not \"" fname ": ...%s...\"", #call, msg_,       \
                      (substr));                                                                 \
    } while (0)

#define NT_OK(call)                                                                              \
    do {                                                                                         \
        const bp_status st_ = (call);                                                            \
        ck_assert_msg(st_ == BP_OK, "%s: status %d (%s): %s", #call, (int)st_, bp_strerror(st_), \
                      bp_last_error());                                                          \
    } while (0)

/* ---- dtype-neutral data ------------------------------------------------------------------- */

static inline size_t nt_esize(bp_dtype dt)
{
    return dt == BP_F32 ? sizeof(float) : sizeof(double);
}

static inline const char *nt_dtype_name(bp_dtype dt)
{
    return dt == BP_F32 ? "float" : "double";
}

static inline const char *nt_loss_name(bp_loss l)
{
    return l == BP_LOSS_SOFTMAX_XENT ? "xent" : l == BP_LOSS_SIGMOID_BCE ? "bce" : l == BP_LOSS_MSE ? "mse" : "lsq";
}

static inline double nt_get(bp_dtype dt, const void *p, size_t i)
{
    return dt == BP_F32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}

static inline void nt_set(bp_dtype dt, void *p, size_t i, double v)
{
    if (dt == BP_F32)
        ((float *)p)[i] = (float)v;
    else
        ((double *)p)[i] = v;
}

/* A malloc'd copy of count doubles in the dtype (the test data are exact in float). */
static inline void *nt_from_d(bp_dtype dt, const double *src, size_t count)
{
    void *p = malloc((count ? count : 1) * nt_esize(dt));
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < count; i++)
        nt_set(dt, p, i, src[i]);
    return p;
}

/* A malloc'd double copy of count elements of the dtype. */
static inline double *nt_to_d(bp_dtype dt, const void *src, size_t count)
{
    double *p = malloc((count ? count : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < count; i++)
        p[i] = nt_get(dt, src, i);
    return p;
}

/* A malloc'd byte copy. */
static inline void *nt_memdup(const void *src, size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    ck_assert_ptr_nonnull(p);
    memcpy(p, src, bytes);
    return p;
}

/* The network's parameters (or gradients) as doubles. */
static inline double *nt_params_d(bp_net *net)
{
    return nt_to_d(bp_net_dtype(net), bp_net_params(net), bp_net_n_params(net));
}

static inline double *nt_grads_d(bp_net *net)
{
    return nt_to_d(bp_net_dtype(net), bp_net_grads(net), bp_net_n_params(net));
}

/* Normwise error of two vectors of count doubles (see tu_err). */
static inline double nt_err(const double *a, const double *b, size_t count)
{
    return tu_err(1, (int)count, a, (int)count, b, (int)count, TU_FLOOR);
}

static inline double nt_eps(bp_dtype dt)
{
    return dt == BP_F32 ? 0x1.0p-23 : 0x1.0p-52;
}

/* Tolerance for a whole pass of `net` over n samples: DESIGN's reduction-length rule, with
 * the lengths of every reduction the pass goes through (the batch for dW and db, each
 * layer's n_in for Y and n_out for dX) added up, since the rounding of one layer feeds
 * the next. */
static inline double nt_tol(bp_net *net, int n, double eps)
{
    double k = n;
    for (bp_int i = 0; i < bp_net_n_layers(net); i++) {
        bp_layer_view v;
        ck_assert_int_eq(bp_net_layer(net, i, &v), BP_OK);
        k += v.n_in + v.n_out;
    }
    return tu_tol(k, eps);
}

/* Creates a network or fails the test. */
static inline bp_net *nt_net(bp_dtype dt, bp_int n_in, bp_int n_layers, const bp_layer_spec *layers,
                             bp_loss loss, const bp_allocator *alloc)
{
    bp_net *net = NULL;
    NT_OK(bp_net_create(&net, dt, n_in, n_layers, layers, loss, alloc));
    ck_assert_ptr_nonnull(net);
    return net;
}

/* An optimizer of `kind` with bp_optim_defaults(kind, lr) for net, or fails the test. */
static inline bp_optim *nt_optim(bp_net *net, bp_optimizer kind, double lr)
{
    const bp_optim_config oc = bp_optim_defaults(kind, lr);
    bp_optim *opt = NULL;
    NT_OK(bp_optim_create(&opt, net, &oc));
    return opt;
}

/* Test data from seed: count inputs uniform in [-1, 1) as doubles and the same rounded
 * to float (either may be NULL), then n labels in [0, classes). */
static inline void nt_fill_xy(uint64_t seed, size_t count, double *Xd, float *Xs, int n, int32_t *y, int classes)
{
    tu_rng r = tu_rng_make(seed);
    for (size_t i = 0; i < count; i++) {
        const double v = tu_unif(&r, -1, 1);
        if (Xd)
            Xd[i] = v;
        if (Xs)
            Xs[i] = (float)v;
    }
    for (int i = 0; i < n; i++)
        y[i] = tu_int(&r, 0, classes - 1);
}

/* A standard normal number from the test generator (Box-Muller), rounded to float so the
 * data are the same in both precisions. */
static inline double nt_normal(tu_rng *r)
{
    const double u1 = 1.0 - (double)(tu_next(r) >> 11) * 0x1.0p-53;
    const double u2 = (double)(tu_next(r) >> 11) * 0x1.0p-53;
    return (double)(float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

#endif
