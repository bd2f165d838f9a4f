/* SPDX-License-Identifier: MIT */
/* test_fused.c: bp_optim_train_step: the fused SGD step against bp_net_loss_and_grad +
 * bp_optim_step (equal up to rounding), the unfused cases (bitwise), proof that a fused step
 * stores no weight gradient, no allocation, every bad argument, n == 0, and a problem learnt. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nettest_util.h"
#include "testutil.h"

/* The test network: NIN -> H1 (act) -> H2 (act) -> NOUT (identity), so the middle layer has
 * both a dX before it and a dX after it. */
enum { NIN = 7, H1 = 9, H2 = 6, NOUT = 4 };
#define NSTEP 3      /* steps per comparison, each on its own batch */
#define TOL_D 1e-12  /* fused vs unfused parameters, normwise: double */
#define TOL_S 1e-5   /* float */
#define FN "bp_optim_train_step"

static double tol_of(bp_dtype dt) { return dt == BP_F32 ? TOL_S : TOL_D; }

/* ---- data ------------------------------------------------------------------------------------ */

/* NSTEP batches of n samples: X (n x n_in, leading dimension ldx) and targets for `loss`: int32
 * labels in [0, n_out), or n x n_out reals with leading dimension ldt (BCE in [0, 1], MSE in
 * [-1, 1]). Every buffer is exactly the extent a pass may read, and its padding holds the
 * sentinel (a NaN), so reading past a row's width poisons the results or trips ASan. */
typedef struct problem {
    int n, ldx, ldt;
    void *X[NSTEP], *T[NSTEP];
} problem;

static problem make_problem(bp_dtype dt, bp_loss loss, int n, int n_in, int n_out, int ldx, int ldt,
                            uint64_t seed)
{
    problem p;
    memset(&p, 0, sizeof p);
    p.n = n, p.ldx = ldx, p.ldt = ldt;
    tu_rng r = tu_rng_make(seed);
    for (int s = 0; s < NSTEP; s++) {
        const size_t xs = tu_extent(n, n_in, ldx), ts = tu_extent(n, n_out, ldt);
        double *Xd = tu_alloc(xs), *Td = tu_alloc(ts);
        tu_fill(&r, Xd, n, n_in, ldx, -1, 1);
        tu_fill(&r, Td, n, n_out, ldt, loss == BP_LOSS_SIGMOID_BCE ? 0 : -1, 1);
        p.X[s] = nt_from_d(dt, Xd, xs);
        if (loss == BP_LOSS_SOFTMAX_XENT) {
            int32_t *c = malloc((size_t)(n > 0 ? n : 1) * sizeof *c);
            ck_assert_ptr_nonnull(c);
            for (int i = 0; i < n; i++)
                c[i] = tu_int(&r, 0, n_out - 1);
            p.T[s] = c;
        } else {
            p.T[s] = nt_from_d(dt, Td, ts);
        }
        free(Xd);
        free(Td);
    }
    return p;
}

static void free_problem(problem *p)
{
    for (int s = 0; s < NSTEP; s++) {
        free(p->X[s]);
        free(p->T[s]);
    }
}

/* ---- networks and optimizers ------------------------------------------------------------------ */

/* Frees the two networks of a comparison, their optimizers and the problem. */
static void destroy_twins(bp_optim *oa, bp_optim *ob, bp_net *a, bp_net *b, problem *p)
{
    bp_optim_destroy(oa);
    bp_optim_destroy(ob);
    bp_net_destroy(a);
    bp_net_destroy(b);
    free_problem(p);
}

/* The test network, initialised from a fixed seed (so two of them are identical), planned for
 * micro-batches of mb, with `threads` workers. */
static bp_net *make_net(bp_dtype dt, bp_act act, bp_loss loss, bp_int mb, int threads,
                        const bp_allocator *a)
{
    const bp_layer_spec layers[3] = {{H1, act, 0}, {H2, act, 0}, {NOUT, BP_ACT_IDENTITY, 0}};
    bp_net *net = nt_net(dt, NIN, 3, layers, loss, a);
    NT_OK(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 42, 1));
    NT_OK(bp_net_plan(net, mb));
    NT_OK(bp_net_set_threads(net, threads));
    if (threads > 1)  /* cut even these small layers, as far as they go */
        NT_OK(bp_net_set_chunk_min(net, 1, 1));
    ck_assert_int_eq(bp_net_threads(net), threads);
    return net;
}

/* lr 0.1 (Adam, AdamW: 0.01), weight decay wd; with `cosine`, a cosine schedule down to a tenth
 * of lr over NSTEP steps, so every step has another rate. */
static bp_optim *make_opt(bp_net *net, bp_optimizer kind, double wd, int cosine)
{
    bp_optim_config c = bp_optim_defaults(kind, kind == BP_OPT_ADAM || kind == BP_OPT_ADAMW ? 0.01 : 0.1);
    c.weight_decay = wd;
    if (cosine) {
        c.schedule = BP_SCHED_COSINE;
        c.t_max = NSTEP;
        c.lr_min = c.lr / 10;
    }
    bp_optim *opt = NULL;
    NT_OK(bp_optim_create(&opt, net, &c));
    ck_assert_ptr_nonnull(opt);
    return opt;
}

/* The unfused reference: the two calls bp_optim_train_step stands for. */
static bp_status two_calls(bp_optim *opt, bp_net *net, bp_int n, const void *X, bp_int ldx,
                           const void *T, bp_int ldt, double *loss)
{
    const bp_status st = bp_net_loss_and_grad(net, n, X, ldx, T, ldt, loss);
    return st != BP_OK ? st : bp_optim_step(opt, net);
}

static size_t param_bytes(bp_net *net)
{
    return bp_net_n_params(net) * nt_esize(bp_net_dtype(net));
}

/* Normwise max|a - b| / max|b| of two networks' parameters (+Inf on any NaN or Inf). */
static double param_err(bp_net *a, bp_net *b)
{
    ck_assert_uint_eq(bp_net_n_params(a), bp_net_n_params(b));
    double *pa = nt_params_d(a), *pb = nt_params_d(b);
    const double e = nt_err(pa, pb, bp_net_n_params(a));
    free(pa);
    free(pb);
    return e;
}

static int same_params(bp_net *a, bp_net *b)
{
    return param_bytes(a) == param_bytes(b) &&
           memcmp(bp_net_params(a), bp_net_params(b), param_bytes(a)) == 0;
}

/* ---------------------------------------------------------------------------------------------
 * 1. The fused SGD step equals the two calls up to rounding. Loop index: case x dtype.
 * ------------------------------------------------------------------------------------------- */
typedef struct fused_case {
    bp_act act;
    bp_loss loss;
    double wd;
    int cosine;
    int n, mb;             /* n <= mb: the fused path */
    int ldx_pad, ldt_pad;  /* ldx = NIN + ldx_pad, ldt = NOUT + ldt_pad */
    int thr_fused, thr_plain;
} fused_case;

static const fused_case FUSED[] = {
    {BP_ACT_RELU, BP_LOSS_SOFTMAX_XENT, 0, 0, 12, 16, 0, 0, 1, 1},
    {BP_ACT_TANH, BP_LOSS_SOFTMAX_XENT, 0.01, 1, 16, 16, 3, 0, 1, 1},   /* n == mb, ldx > n_in */
    {BP_ACT_GELU, BP_LOSS_SIGMOID_BCE, 0, 1, 10, 16, 0, 2, 1, 1},       /* ldt > n_out */
    {BP_ACT_SOFTMAX, BP_LOSS_MSE, 0.05, 0, 9, 32, 1, 0, 1, 1},
    {BP_ACT_TANH, BP_LOSS_MSE, 0.01, 0, 1, 8, 0, 3, 1, 1},              /* n == 1: rank-1 update */
    {BP_ACT_GELU, BP_LOSS_SOFTMAX_XENT, 0, 1, 1, 1, 2, 0, 1, 1},        /* n == mb == 1 */
    {BP_ACT_SOFTMAX, BP_LOSS_SIGMOID_BCE, 0.02, 1, 5, 16, 0, 1, 1, 1},
    {BP_ACT_RELU, BP_LOSS_SIGMOID_BCE, 0.01, 1, 12, 16, 0, 0, 2, 2},    /* both threaded */
    {BP_ACT_GELU, BP_LOSS_SOFTMAX_XENT, 0.01, 1, 16, 16, 0, 0, 2, 1},   /* threaded vs not */
    {BP_ACT_SOFTMAX, BP_LOSS_SOFTMAX_XENT, 0, 0, 7, 16, 2, 0, 1, 2},
    {BP_ACT_TANH, BP_LOSS_SIGMOID_BCE, 0.01, 0, 1, 4, 1, 1, 2, 2},      /* n == 1, threaded */
    {BP_ACT_RELU, BP_LOSS_MSE, 0.02, 1, 16, 16, 5, 2, 2, 2},
    {BP_ACT_GELU, BP_LOSS_MSE, 0, 0, 5, 64, 0, 0, 3, 3},
    {BP_ACT_TANH, BP_LOSS_SOFTMAX_XENT, 0.01, 1, 9, 16, 0, 0, 3, 1},
    {BP_ACT_SOFTMAX, BP_LOSS_SOFTMAX_XENT, 0.01, 1, 16, 16, 1, 0, 2, 2}, /* softmax rows: worker 0 */
    {BP_ACT_SOFTMAX, BP_LOSS_MSE, 0, 0, 3, 16, 0, 1, 2, 1},
};
#define N_FUSED ((int)(sizeof FUSED / sizeof FUSED[0]))

START_TEST(test_fused_matches_two_calls)
{
    const fused_case *c = &FUSED[_i / 2];
    const bp_dtype dt = _i % 2 ? BP_F64 : BP_F32;
    const int ldx = NIN + c->ldx_pad, ldt = NOUT + c->ldt_pad;
    char what[160];
    snprintf(what, sizeof what, "%s, %s %s wd %g%s, n %d mb %d ldx %d ldt %d, threads %d vs %d",
             nt_dtype_name(dt), tu_act_name(c->act), nt_loss_name(c->loss), c->wd, c->cosine ? " cosine" : "",
             c->n, c->mb, ldx, ldt, c->thr_fused, c->thr_plain);
    problem p = make_problem(dt, c->loss, c->n, NIN, NOUT, ldx, ldt, 100 + (uint64_t)_i);
    bp_net *a = make_net(dt, c->act, c->loss, c->mb, c->thr_fused, NULL);
    bp_net *b = make_net(dt, c->act, c->loss, c->mb, c->thr_plain, NULL);
    bp_optim *oa = make_opt(a, BP_OPT_SGD, c->wd, c->cosine), *ob = make_opt(b, BP_OPT_SGD, c->wd, c->cosine);
    ck_assert(same_params(a, b));
    ck_assert_int_eq(bp_optim_steps(oa), 0);

    double prev_lr = INFINITY;
    for (int s = 0; s < NSTEP; s++) {
        const double lr = bp_optim_lr(oa);
        ck_assert(lr == bp_optim_lr(ob));
        if (c->cosine)
            ck_assert_msg(lr < prev_lr, "%s: the cosine rate did not change at step %d", what, s);
        prev_lr = lr;
        double la = NAN, lb = NAN;
        NT_OK(bp_optim_train_step(oa, a, c->n, p.X[s], ldx, p.T[s], ldt, &la));
        NT_OK(two_calls(ob, b, c->n, p.X[s], ldx, p.T[s], ldt, &lb));
        ck_assert_int_eq(bp_optim_steps(oa), s + 1);
        ck_assert_int_eq(bp_optim_steps(ob), s + 1);
        ck_assert_msg(isfinite(la) && la > 0, "%s step %d: loss %g", what, s, la);
        if (s == 0 && c->thr_fused == c->thr_plain)
            /* Same parameters, same forward pass: the same loss, bitwise. */
            ck_assert_msg(la == lb, "%s: first loss %.17g, two calls %.17g", what, la, lb);
        else
            ck_assert_msg(tu_rel(la, lb, 1e-30) <= tol_of(dt), "%s step %d: loss %.17g vs %.17g", what, s,
                          la, lb);
        const double e = param_err(a, b);
        ck_assert_msg(e <= tol_of(dt), "%s step %d: parameters differ by %g (normwise) > %g", what, s, e,
                      tol_of(dt));
    }
    destroy_twins(oa, ob, a, b, &p);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * 2. Where the step is not fused it is the two calls: the same parameters, gradient and loss,
 *    bitwise. Loop index: case x dtype.
 * ------------------------------------------------------------------------------------------- */
typedef struct plain_case {
    bp_optimizer kind;
    double wd;
    bp_act act;
    bp_loss loss;
    int n, mb, threads;
    int naive, check;
    const char *what;
} plain_case;

static const plain_case PLAIN[] = {
    {BP_OPT_MOMENTUM, 0.01, BP_ACT_TANH, BP_LOSS_SOFTMAX_XENT, 12, 16, 1, 0, 0, "momentum"},
    {BP_OPT_NESTEROV, 0, BP_ACT_GELU, BP_LOSS_MSE, 1, 16, 1, 0, 0, "nesterov, n 1"},
    {BP_OPT_ADAM, 0.01, BP_ACT_RELU, BP_LOSS_SIGMOID_BCE, 12, 16, 1, 0, 0, "adam"},
    {BP_OPT_ADAMW, 0.01, BP_ACT_GELU, BP_LOSS_SOFTMAX_XENT, 16, 16, 2, 0, 0, "adamw, 2 threads"},
    {BP_OPT_MOMENTUM, 0, BP_ACT_TANH, BP_LOSS_MSE, 5, 16, 2, 0, 0, "momentum, 2 threads"},
    {BP_OPT_SGD, 0.01, BP_ACT_TANH, BP_LOSS_SOFTMAX_XENT, 40, 16, 1, 0, 0, "sgd, n > mb"},
    {BP_OPT_SGD, 0, BP_ACT_GELU, BP_LOSS_SIGMOID_BCE, 17, 16, 2, 0, 0, "sgd, n > mb, 2 threads"},
    {BP_OPT_SGD, 0, BP_ACT_RELU, BP_LOSS_SOFTMAX_XENT, 2, 1, 1, 0, 0, "sgd, n 2 > mb 1"},
    {BP_OPT_SGD, 0.01, BP_ACT_TANH, BP_LOSS_SOFTMAX_XENT, 12, 16, 1, 1, 0, "sgd, naive backend"},
    {BP_OPT_SGD, 0, BP_ACT_GELU, BP_LOSS_MSE, 1, 16, 1, 1, 0, "sgd, naive backend, n 1"},
    {BP_OPT_SGD, 0.01, BP_ACT_SOFTMAX, BP_LOSS_SOFTMAX_XENT, 12, 16, 1, 0, 1, "sgd, finite check"},
    {BP_OPT_SGD, 0, BP_ACT_TANH, BP_LOSS_SIGMOID_BCE, 1, 8, 2, 0, 1, "sgd, finite check, n 1, 2 threads"},
};
#define N_PLAIN ((int)(sizeof PLAIN / sizeof PLAIN[0]))

START_TEST(test_unfused_bitwise)
{
    const plain_case *c = &PLAIN[_i / 2];
    const bp_dtype dt = _i % 2 ? BP_F64 : BP_F32;
    const int ldx = NIN + 1, ldt = NOUT + 1;
    problem p = make_problem(dt, c->loss, c->n, NIN, NOUT, ldx, ldt, 300 + (uint64_t)_i);
    bp_net *a = make_net(dt, c->act, c->loss, c->mb, c->threads, NULL);
    bp_net *b = make_net(dt, c->act, c->loss, c->mb, c->threads, NULL);
    for (int v = 0; v < 2; v++) {
        bp_net *net = v ? b : a;
        if (c->naive)
            NT_OK(bp_net_set_backend(net, BP_BACKEND_NAIVE));
        if (c->check)
            NT_OK(bp_net_set_check_finite(net, 1));
    }
    bp_optim *oa = make_opt(a, c->kind, c->wd, 1), *ob = make_opt(b, c->kind, c->wd, 1);
    const size_t bytes = param_bytes(a);
    for (int s = 0; s < NSTEP; s++) {
        double la = NAN, lb = NAN;
        NT_OK(bp_optim_train_step(oa, a, c->n, p.X[s], ldx, p.T[s], ldt, &la));
        NT_OK(two_calls(ob, b, c->n, p.X[s], ldx, p.T[s], ldt, &lb));
        ck_assert_int_eq(bp_optim_steps(oa), s + 1);
        ck_assert_int_eq(bp_optim_steps(ob), s + 1);
        ck_assert_msg(memcmp(&la, &lb, sizeof la) == 0, "%s %s step %d: loss %.17g vs %.17g",
                      nt_dtype_name(dt), c->what, s, la, lb);
        ck_assert_msg(memcmp(bp_net_params(a), bp_net_params(b), bytes) == 0,
                      "%s %s step %d: parameters differ (%g normwise)", nt_dtype_name(dt), c->what, s,
                      param_err(a, b));
        ck_assert_msg(memcmp(bp_net_grads(a), bp_net_grads(b), bytes) == 0,
                      "%s %s step %d: gradient buffers differ", nt_dtype_name(dt), c->what, s);
    }
    destroy_twins(oa, ob, a, b, &p);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * 3. A fused step stores no weight gradient: with the gradient buffer full of the sentinel (a
 *    NaN) before the steps, every layer's dW is still the sentinel after them (and nothing NaN
 *    reached the parameters); an unfused SGD step overwrites every dW. Only dW is asserted
 *    about: db may serve as scratch. Loop index: case x dtype.
 * ------------------------------------------------------------------------------------------- */
typedef struct sentinel_case {
    int fused;
    bp_optimizer kind;
    bp_act act;
    int n, mb, threads, naive, check;
    const char *what;
} sentinel_case;

static const sentinel_case SENT[] = {
    {1, BP_OPT_SGD, BP_ACT_TANH, 12, 16, 1, 0, 0, "fused"},
    {1, BP_OPT_SGD, BP_ACT_GELU, 1, 8, 1, 0, 0, "fused, n 1"},
    {1, BP_OPT_SGD, BP_ACT_RELU, 16, 16, 2, 0, 0, "fused, 2 threads"},
    {1, BP_OPT_SGD, BP_ACT_TANH, 1, 4, 2, 0, 0, "fused, n 1, 2 threads"},
    {0, BP_OPT_SGD, BP_ACT_TANH, 12, 16, 1, 0, 1, "finite check on"},
    {0, BP_OPT_SGD, BP_ACT_GELU, 12, 16, 1, 1, 0, "naive backend"},
    {0, BP_OPT_SGD, BP_ACT_TANH, 20, 16, 1, 0, 0, "n > mb"},
    {0, BP_OPT_SGD, BP_ACT_TANH, 1, 8, 2, 0, 1, "finite check on, n 1, 2 threads"},
    {0, BP_OPT_MOMENTUM, BP_ACT_TANH, 12, 16, 1, 0, 0, "momentum"},
};
#define N_SENT ((int)(sizeof SENT / sizeof SENT[0]))

START_TEST(test_fused_stores_no_weight_gradient)
{
    const sentinel_case *c = &SENT[_i / 2];
    const bp_dtype dt = _i % 2 ? BP_F64 : BP_F32;
    const size_t es = nt_esize(dt);
    problem p = make_problem(dt, BP_LOSS_SOFTMAX_XENT, c->n, NIN, NOUT, NIN, NOUT, 500 + (uint64_t)_i);
    bp_net *net = make_net(dt, c->act, BP_LOSS_SOFTMAX_XENT, c->mb, c->threads, NULL);
    bp_net *twin = make_net(dt, c->act, BP_LOSS_SOFTMAX_XENT, c->mb, c->threads, NULL);
    for (int v = 0; v < 2; v++) {
        if (c->naive)
            NT_OK(bp_net_set_backend(v ? twin : net, BP_BACKEND_NAIVE));
        if (c->check)
            NT_OK(bp_net_set_check_finite(v ? twin : net, 1));
    }
    bp_optim *opt = make_opt(net, c->kind, 0.01, 0), *otw = make_opt(twin, c->kind, 0.01, 0);
    for (int s = 0; s < 2; s++) {
        tu_sentinel(bp_net_grads(net), param_bytes(net));
        NT_OK(bp_optim_train_step(opt, net, c->n, p.X[s], NIN, p.T[s], 0, NULL));
        NT_OK(two_calls(otw, twin, c->n, p.X[s], NIN, p.T[s], 0, NULL));
        for (bp_int i = 0; i < bp_net_n_layers(net); i++) {
            bp_layer_view v, vt;
            NT_OK(bp_net_layer(net, i, &v));
            NT_OK(bp_net_layer(twin, i, &vt));
            const size_t nw = (size_t)v.n_out * (size_t)v.n_in;
            if (c->fused) {
                ck_assert_msg(tu_is_sentinel(v.dW, nw * es),
                              "%s %s step %d: layer %d's weight gradient was written by a fused step",
                              nt_dtype_name(dt), c->what, s, (int)i);
            } else {
                for (size_t q = 0; q < nw; q++)
                    ck_assert_msg(isfinite(nt_get(dt, v.dW, q)),
                                  "%s %s step %d: layer %d's dW[%zu] was not written", nt_dtype_name(dt),
                                  c->what, s, (int)i, q);
                ck_assert_msg(memcmp(v.dW, vt.dW, nw * es) == 0, "%s %s step %d: layer %d's dW differs",
                              nt_dtype_name(dt), c->what, s, (int)i);
            }
        }
        const double e = param_err(net, twin);
        if (c->fused)
            ck_assert_msg(e <= tol_of(dt), "%s %s step %d: parameters differ by %g", nt_dtype_name(dt),
                          c->what, s, e);
        else
            ck_assert_msg(same_params(net, twin), "%s %s step %d: parameters differ by %g",
                          nt_dtype_name(dt), c->what, s, e);
    }
    bp_optim_destroy(opt);
    bp_optim_destroy(otw);
    bp_net_destroy(net);
    bp_net_destroy(twin);
    free_problem(&p);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * 4. No allocation in a step once the network is planned and the optimizer created: the
 *    allocator is told to refuse everything from then on. Loop index: threads (1, 2) x dtype.
 * ------------------------------------------------------------------------------------------- */
START_TEST(test_no_allocation)
{
    const int threads = 1 + _i / 2;
    const bp_dtype dt = _i % 2 ? BP_F64 : BP_F32;
    enum { MB = 16, NBIG = 40 };
    nt_counter cnt = nt_counter_make();
    const bp_allocator alloc = nt_allocator(&cnt);
    bp_net *net = make_net(dt, BP_ACT_GELU, BP_LOSS_SOFTMAX_XENT, MB, threads, &alloc);
    bp_optim *opt = make_opt(net, BP_OPT_SGD, 0.01, 1);
    problem p = make_problem(dt, BP_LOSS_SOFTMAX_XENT, NBIG, NIN, NOUT, NIN + 2, NOUT, 700 + (uint64_t)_i);
    const long allocs = cnt.allocs, frees = cnt.frees;
    cnt.fail_after = allocs;
    const bp_int ns[] = {MB, 5, 1, MB, 1, NBIG /* unfused: streams */, 0};
    const int nn = (int)(sizeof ns / sizeof ns[0]);
    for (int k = 0; k < nn; k++) {
        double loss;
        NT_OK(bp_optim_train_step(opt, net, ns[k], p.X[k % NSTEP], NIN + 2, p.T[k % NSTEP], 0, &loss));
        ck_assert_int_eq(bp_optim_steps(opt), k + 1);
    }
    ck_assert_int_eq(cnt.allocs, allocs);
    ck_assert_int_eq(cnt.frees, frees);
    ck_assert_int_eq(cnt.refused, 0);
    bp_optim_destroy(opt);
    bp_net_destroy(net);
    ck_assert_int_eq(cnt.allocs, cnt.frees);
    free_problem(&p);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * 5. Bad arguments: the right status and message, and nothing changes: parameters (bitwise),
 *    the caller's *loss, the step count, and the optimizer's state (the next good step equals a
 *    twin's that never saw the bad calls, bitwise). Loop index: dtype x optimizer (SGD, Adam).
 * ------------------------------------------------------------------------------------------- */

/* A byte copy of a network's parameters. */
static void *snap(bp_net *net)
{
    return nt_memdup(bp_net_params(net), param_bytes(net));
}

static void expect_same(bp_net *net, const void *snapshot, const char *what)
{
    ck_assert_msg(memcmp(bp_net_params(net), snapshot, param_bytes(net)) == 0,
                  "%s: parameters changed on error", what);
}

/* The call fails with `status` and a message "bp_optim_train_step: ...substr...", leaves
 * *loss (preset to a marker) and the step count alone. */
#define EXPECT_BAD(call, status, substr)                                                        \
    do {                                                                                        \
        loss = 12345.0;                                                                         \
        NT_EXPECT(call, status, FN, substr);                                                    \
        ck_assert_msg(loss == 12345.0, "%s: *loss written on error", #call);                   \
        ck_assert_int_eq(bp_optim_steps(opt), 1);                                               \
    } while (0)

START_TEST(test_bad_arguments)
{
    const bp_dtype dt = _i / 2 ? BP_F64 : BP_F32, other_dt = dt == BP_F64 ? BP_F32 : BP_F64;
    const bp_optimizer kind = _i % 2 ? BP_OPT_ADAM : BP_OPT_SGD;
    const bp_int n = 10, mb = 16;
    problem p = make_problem(dt, BP_LOSS_SOFTMAX_XENT, n, NIN, NOUT, NIN, NOUT, 900 + (uint64_t)_i);
    problem pr = make_problem(dt, BP_LOSS_MSE, n, NIN, NOUT, NIN, NOUT, 950 + (uint64_t)_i);
    problem po = make_problem(other_dt, BP_LOSS_SOFTMAX_XENT, n, NIN, NOUT, NIN, NOUT, 990 + (uint64_t)_i);

    bp_net *net = make_net(dt, BP_ACT_TANH, BP_LOSS_SOFTMAX_XENT, mb, 1, NULL);
    bp_net *twin = make_net(dt, BP_ACT_TANH, BP_LOSS_SOFTMAX_XENT, mb, 1, NULL);
    bp_optim *opt = make_opt(net, kind, 0.01, 0), *otw = make_opt(twin, kind, 0.01, 0);
    double loss;
    NT_OK(bp_optim_train_step(opt, net, n, p.X[0], NIN, p.T[0], 0, &loss));
    NT_OK(bp_optim_train_step(otw, twin, n, p.X[0], NIN, p.T[0], 0, &loss));
    ck_assert_int_eq(bp_optim_steps(opt), 1);

    /* Networks that are wrong for this optimizer, or unplanned; MSE and BCE twins (the same
     * parameter count) for the real-target checks. */
    bp_net *wrong_dt = make_net(other_dt, BP_ACT_TANH, BP_LOSS_SOFTMAX_XENT, mb, 1, NULL);
    const bp_layer_spec wider[3] = {{H1 + 1, BP_ACT_TANH, 0}, {H2, BP_ACT_TANH, 0}, {NOUT, BP_ACT_IDENTITY, 0}};
    bp_net *wrong_size = nt_net(dt, NIN, 3, wider, BP_LOSS_SOFTMAX_XENT, NULL);
    NT_OK(bp_net_init(wrong_size, BP_INIT_GLOROT_UNIFORM, 1, 1));
    NT_OK(bp_net_plan(wrong_size, mb));
    const bp_layer_spec same[3] = {{H1, BP_ACT_TANH, 0}, {H2, BP_ACT_TANH, 0}, {NOUT, BP_ACT_IDENTITY, 0}};
    bp_net *unplanned = nt_net(dt, NIN, 3, same, BP_LOSS_SOFTMAX_XENT, NULL);
    NT_OK(bp_net_init(unplanned, BP_INIT_GLOROT_UNIFORM, 1, 1));
    bp_net *mse = make_net(dt, BP_ACT_TANH, BP_LOSS_MSE, mb, 1, NULL);
    bp_net *bce = make_net(dt, BP_ACT_TANH, BP_LOSS_SIGMOID_BCE, mb, 1, NULL);
    ck_assert_uint_eq(bp_net_n_params(unplanned), bp_net_n_params(net));
    ck_assert_uint_eq(bp_net_n_params(mse), bp_net_n_params(net));

    void *s_net = snap(net), *s_dt = snap(wrong_dt), *s_size = snap(wrong_size), *s_unpl = snap(unplanned);
    void *s_mse = snap(mse), *s_bce = snap(bce);
    const void *X = p.X[0], *T = p.T[0];

    EXPECT_BAD(bp_optim_train_step(NULL, net, n, X, NIN, T, 0, &loss), BP_ERR_ARG, "opt is NULL");
    EXPECT_BAD(bp_optim_train_step(opt, NULL, n, X, NIN, T, 0, &loss), BP_ERR_ARG, "net is NULL");
    EXPECT_BAD(bp_optim_train_step(opt, wrong_dt, n, po.X[0], NIN, po.T[0], 0, &loss), BP_ERR_ARG, "dtype");
    EXPECT_BAD(bp_optim_train_step(opt, wrong_size, n, X, NIN, T, 0, &loss), BP_ERR_ARG, "parameters");
    EXPECT_BAD(bp_optim_train_step(opt, unplanned, n, X, NIN, T, 0, &loss), BP_ERR_ARG, "plan");
    EXPECT_BAD(bp_optim_train_step(opt, net, -1, X, NIN, T, 0, &loss), BP_ERR_ARG, "n (-1) < 0");
    EXPECT_BAD(bp_optim_train_step(opt, net, n, NULL, NIN, T, 0, &loss), BP_ERR_ARG, "X is NULL");
    EXPECT_BAD(bp_optim_train_step(opt, net, n, X, NIN - 1, T, 0, &loss), BP_ERR_ARG, "ldx (6)");
    EXPECT_BAD(bp_optim_train_step(opt, net, n, X, NIN, NULL, 0, &loss), BP_ERR_ARG, "targets is NULL");

    /* A label out of range, in the last row (so a check that stops early misses it). */
    int32_t *lab = nt_memdup(T, (size_t)n * sizeof *lab);
    lab[n - 1] = NOUT;
    EXPECT_BAD(bp_optim_train_step(opt, net, n, X, NIN, lab, 0, &loss), BP_ERR_ARG, "label 9 (4)");
    lab[n - 1] = -1;
    EXPECT_BAD(bp_optim_train_step(opt, net, n, X, NIN, lab, 0, &loss), BP_ERR_ARG, "label 9 (-1)");
    /* n == 1 (the rank-1 path) validates the same way. */
    lab[0] = NOUT;
    EXPECT_BAD(bp_optim_train_step(opt, net, 1, X, NIN, lab, 0, &loss), BP_ERR_ARG, "label 0 (4)");
    EXPECT_BAD(bp_optim_train_step(opt, net, 1, NULL, NIN, T, 0, &loss), BP_ERR_ARG, "X is NULL");

    /* Real targets: ldt below n_out, NULL, and BCE targets outside [0, 1]. */
    EXPECT_BAD(bp_optim_train_step(opt, mse, n, X, NIN, pr.T[0], NOUT - 1, &loss), BP_ERR_ARG, "ldt (3)");
    EXPECT_BAD(bp_optim_train_step(opt, mse, n, X, NIN, NULL, NOUT, &loss), BP_ERR_ARG, "targets is NULL");
    void *tb = nt_memdup(pr.T[0], (size_t)n * NOUT * nt_esize(dt));
    for (int q = 0; q < n * NOUT; q++)
        nt_set(dt, tb, (size_t)q, 0.5);
    nt_set(dt, tb, (size_t)(n * NOUT - 1), 1.5);
    EXPECT_BAD(bp_optim_train_step(opt, bce, n, X, NIN, tb, NOUT, &loss), BP_ERR_ARG, "outside [0, 1]");

    /* With the finite check on, a NaN in X is refused before anything runs. */
    NT_OK(bp_net_set_check_finite(net, 1));
    void *xnan = nt_memdup(X, (size_t)n * NIN * nt_esize(dt));
    nt_set(dt, xnan, (size_t)(5 * NIN + 2), NAN);
    EXPECT_BAD(bp_optim_train_step(opt, net, n, xnan, NIN, T, 0, &loss), BP_ERR_NONFINITE, "X row 5");
    NT_OK(bp_net_set_check_finite(net, 0));

    expect_same(net, s_net, "net");
    expect_same(wrong_dt, s_dt, "the other dtype's net");
    expect_same(wrong_size, s_size, "the wider net");
    expect_same(unplanned, s_unpl, "the unplanned net");
    expect_same(mse, s_mse, "the MSE net");
    expect_same(bce, s_bce, "the BCE net");

    /* The state did not move either: the next step is the twin's, bitwise. */
    double l1, l2;
    NT_OK(bp_optim_train_step(opt, net, n, p.X[1], NIN, p.T[1], 0, &l1));
    NT_OK(bp_optim_train_step(otw, twin, n, p.X[1], NIN, p.T[1], 0, &l2));
    ck_assert_int_eq(bp_optim_steps(opt), 2);
    ck_assert(l1 == l2);
    ck_assert_msg(same_params(net, twin), "after the bad calls the next step differs (%g)", param_err(net, twin));

    free(lab), free(tb), free(xnan);
    free(s_net), free(s_dt), free(s_size), free(s_unpl), free(s_mse), free(s_bce);
    bp_optim_destroy(opt), bp_optim_destroy(otw);
    bp_net_destroy(net), bp_net_destroy(twin), bp_net_destroy(wrong_dt), bp_net_destroy(wrong_size);
    bp_net_destroy(unplanned), bp_net_destroy(mse), bp_net_destroy(bce);
    free_problem(&p), free_problem(&pr), free_problem(&po);
}
END_TEST

/* n == 0: bp_net_loss_and_grad gives loss 0 and a zero gradient, so the two calls make a step
 * that only decays the parameters (weight decay) and counts it. bp_optim_train_step does the
 * same: status, loss, step count and parameters (SGD up to rounding; Adam, never fused,
 * bitwise). X and targets may be NULL. Loop index: dtype x optimizer x (NULL or real arrays). */
START_TEST(test_empty_batch)
{
    const bp_dtype dt = _i / 4 ? BP_F64 : BP_F32;
    const bp_optimizer kind = (_i / 2) % 2 ? BP_OPT_ADAM : BP_OPT_SGD;
    const int with_arrays = _i % 2;
    problem p = make_problem(dt, BP_LOSS_SOFTMAX_XENT, 4, NIN, NOUT, NIN, NOUT, 1100 + (uint64_t)_i);
    bp_net *a = make_net(dt, BP_ACT_GELU, BP_LOSS_SOFTMAX_XENT, 8, 1, NULL);
    bp_net *b = make_net(dt, BP_ACT_GELU, BP_LOSS_SOFTMAX_XENT, 8, 1, NULL);
    bp_optim *oa = make_opt(a, kind, 0.05, 0), *ob = make_opt(b, kind, 0.05, 0);
    void *before = snap(a);
    const void *X = with_arrays ? p.X[0] : NULL, *T = with_arrays ? p.T[0] : NULL;
    for (int s = 0; s < 2; s++) {
        double la = -1, lb = -1;
        const bp_status sa = bp_optim_train_step(oa, a, 0, X, NIN, T, 0, &la);
        const bp_status sb = two_calls(ob, b, 0, X, NIN, T, 0, &lb);
        ck_assert_int_eq(sb, BP_OK);
        ck_assert_msg(sa == sb, "n == 0: status %d (%s), the two calls %d", (int)sa, bp_last_error(), (int)sb);
        ck_assert(la == 0 && lb == 0);
        ck_assert_int_eq(bp_optim_steps(oa), s + 1);
        ck_assert_int_eq(bp_optim_steps(ob), s + 1);
        const double e = param_err(a, b);
        if (kind == BP_OPT_SGD)
            ck_assert_msg(e <= tol_of(dt), "%s n == 0, step %d: parameters differ by %g", nt_dtype_name(dt), s, e);
        else
            ck_assert_msg(same_params(a, b), "%s Adam n == 0: parameters differ by %g", nt_dtype_name(dt), e);
    }
    /* The decay moved the weights (so the comparison above was not between unchanged nets). */
    ck_assert(memcmp(before, bp_net_params(a), param_bytes(a)) != 0);
    /* And a real step after them still agrees. */
    double la, lb;
    NT_OK(bp_optim_train_step(oa, a, 4, p.X[1], NIN, p.T[1], 0, &la));
    NT_OK(two_calls(ob, b, 4, p.X[1], NIN, p.T[1], 0, &lb));
    ck_assert_msg(param_err(a, b) <= tol_of(dt), "after n == 0: %g", param_err(a, b));
    free(before);
    bp_optim_destroy(oa), bp_optim_destroy(ob);
    bp_net_destroy(a), bp_net_destroy(b);
    free_problem(&p);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * 6. Fused training learns: two Gaussian blobs (means (-2, -2) and (2, 2), unit variance: the
 *    best classifier errs on 0.2 %), a 2-16-2 tanh network, SGD lr 0.1, 200 full-batch fused
 *    steps; accuracy >= 0.95 on a fresh sample from the same blobs. Loop index: dtype.
 * ------------------------------------------------------------------------------------------- */
static void make_blobs(tu_rng *r, int n, double *X, int32_t *y)
{
    for (int i = 0; i < n; i++) {
        y[i] = i % 2;
        const double m = y[i] ? 2.0 : -2.0;
        X[2 * i] = m + nt_normal(r);
        X[2 * i + 1] = m + nt_normal(r);
    }
}

START_TEST(test_fused_learns)
{
    enum { NS = 200, STEPS = 200 };
    const bp_dtype dt = _i ? BP_F64 : BP_F32;
    static double Xd[2 * NS], Xtd[2 * NS];
    static int32_t y[NS], yt[NS];
    tu_rng r = tu_rng_make(2024);
    make_blobs(&r, NS, Xd, y);
    make_blobs(&r, NS, Xtd, yt);
    void *X = nt_from_d(dt, Xd, 2 * NS), *Xt = nt_from_d(dt, Xtd, 2 * NS);

    const bp_layer_spec layers[2] = {{16, BP_ACT_TANH, 0}, {2, BP_ACT_IDENTITY, 0}};
    bp_net *net = nt_net(dt, 2, 2, layers, BP_LOSS_SOFTMAX_XENT, NULL);
    NT_OK(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 7, 1));
    NT_OK(bp_net_plan(net, 256));   /* the whole batch fits one micro-batch: fused */
    bp_optim *opt = make_opt(net, BP_OPT_SGD, 0, 0);
    double first = NAN, last = NAN;
    for (int s = 0; s < STEPS; s++)
        NT_OK(bp_optim_train_step(opt, net, NS, X, 2, y, 0,
                                  s == 0 ? &first : s == STEPS - 1 ? &last : NULL));
    ck_assert_int_eq(bp_optim_steps(opt), STEPS);
    ck_assert_msg(isfinite(last) && last < first / 4, "%s: loss %g -> %g", nt_dtype_name(dt), first, last);
    double acc = 0, acc_train = 0;
    NT_OK(bp_net_accuracy(net, NS, Xt, 2, yt, &acc, NULL));
    NT_OK(bp_net_accuracy(net, NS, X, 2, y, &acc_train, NULL));
    ck_assert_msg(acc >= 0.95 && acc_train >= 0.95, "%s: accuracy %g (training set %g) < 0.95",
                  nt_dtype_name(dt), acc, acc_train);
    bp_optim_destroy(opt);
    bp_net_destroy(net);
    free(X);
    free(Xt);
}
END_TEST

static Suite *fused_suite(void)
{
    Suite *s = suite_create("fused");
    TCase *eq = tcase_create("equality");
    tcase_add_loop_test(eq, test_fused_matches_two_calls, 0, 2 * N_FUSED);
    tcase_add_loop_test(eq, test_unfused_bitwise, 0, 2 * N_PLAIN);
    tcase_add_loop_test(eq, test_fused_stores_no_weight_gradient, 0, 2 * N_SENT);
    tcase_add_loop_test(eq, test_empty_batch, 0, 8);
    suite_add_tcase(s, eq);

    TCase *res = tcase_create("resources_and_arguments");
    tcase_add_loop_test(res, test_no_allocation, 0, 4);
    tcase_add_loop_test(res, test_bad_arguments, 0, 4);
    suite_add_tcase(s, res);

    TCase *learn = tcase_create("learning");
    tcase_add_loop_test(learn, test_fused_learns, 0, 2);
    suite_add_tcase(s, learn);
    return s;
}

int main(void)
{
    return tu_run_suite(fused_suite());
}
