/* SPDX-License-Identifier: MIT */
/* test_optim.c: the optimizers' first steps against PyTorch's formulas, the schedules, the defaults,
 * every bad argument, the finite check and the allocation-free step. */
#include <check.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <backprop.h>
#include <backprop/net.h>
#include <backprop/optim.h>

#include "nettest_util.h"

#define NP 6        /* parameters of the hand-computed cases */
#define NSTEPS 3
#define NBIG 1003   /* an odd length, for the vectorised loops' remainders */
#define NKIND 5

static const bp_optimizer kinds[NKIND] = {BP_OPT_SGD, BP_OPT_MOMENTUM, BP_OPT_NESTEROV, BP_OPT_ADAM,
                                          BP_OPT_ADAMW};
static const char *const kind_names[NKIND + 1] = {"?", "SGD", "MOMENTUM", "NESTEROV", "ADAM", "ADAMW"};

/* Values exact in float, so a float run starts from the same numbers as the double one. */
static const double P0[NP] = {0.5, -1.25, 2.0, 0.0, 3.75, -0.375};
static const double G[NSTEPS][NP] = {
    {0.25, -0.5, 0.0, 1.5, -2.0, 0.125},
    {-0.75, 0.5, 1.0, 0.25, -1.0, 0.0},
    {1.0, -0.25, -0.5, 2.0, 0.5, -0.625},
};

static int uses_m(bp_optimizer k) { return k != BP_OPT_SGD; }
static int uses_v(bp_optimizer k) { return k == BP_OPT_ADAM || k == BP_OPT_ADAMW; }

/* ---------------------------------------------------------------------------------------------
 * The oracle: one parameter, one step, in double, written from PyTorch's documented algorithms
 * (torch.optim.SGD, Adam, AdamW; dampening 0, maximize and amsgrad off). lr is gamma there,
 * wd lambda, mu the momentum, t = 1, 2, ... the step.
 *
 *   SGD family:  g <- g + wd p                      (if wd != 0)
 *                b_1 = g;  b_t = mu b_{t-1} + g     (if mu != 0; our MOMENTUM, NESTEROV)
 *                g <- g + mu b_t  (nesterov)  or  g <- b_t  (momentum)
 *                p <- p - lr g
 *   Adam:        g <- g + wd p                      (if wd != 0)
 *                m_t = b1 m_{t-1} + (1 - b1) g;  v_t = b2 v_{t-1} + (1 - b2) g^2
 *                mhat = m_t / (1 - b1^t);  vhat = v_t / (1 - b2^t)
 *                p <- p - lr mhat / (sqrt(vhat) + eps)
 *   AdamW:       p <- p - lr wd p, then Adam's m, v, mhat, vhat from g (no L2 term) and
 *                p <- p - lr mhat / (sqrt(vhat) + eps)
 * ------------------------------------------------------------------------------------------- */
typedef struct ref_state {
    double p, m, v;
} ref_state;

static void ref_step(const bp_optim_config *c, double lr, long t, double g, ref_state *s)
{
    const double wd = c->weight_decay, mu = c->momentum;
    switch (c->kind) {
    case BP_OPT_SGD:
        s->p = s->p - lr * (g + wd * s->p);
        break;
    case BP_OPT_MOMENTUM:
    case BP_OPT_NESTEROV: {
        const double gd = g + wd * s->p;
        s->m = t == 1 ? gd : mu * s->m + gd;
        const double d = c->kind == BP_OPT_NESTEROV ? gd + mu * s->m : s->m;
        s->p = s->p - lr * d;
        break;
    }
    case BP_OPT_ADAM:
    case BP_OPT_ADAMW: {
        double gd = g;
        if (c->kind == BP_OPT_ADAM)
            gd = g + wd * s->p;
        else
            s->p = s->p - lr * wd * s->p;
        s->m = c->beta1 * s->m + (1 - c->beta1) * gd;
        s->v = c->beta2 * s->v + (1 - c->beta2) * gd * gd;
        const double mhat = s->m / (1 - pow(c->beta1, (double)t));
        const double vhat = s->v / (1 - pow(c->beta2, (double)t));
        s->p = s->p - lr * mhat / (sqrt(vhat) + c->eps);
        break;
    }
    }
}

/* Normwise error max|a - b| / max|b| (denominator at least 1e-300); +Inf if anything is not finite. */
static double nerr(size_t n, const double *a, const double *b)
{
    return tu_err(1, (int)n, a, (int)n, b, (int)n, 1e-300);
}

static double tol_of(int f32) { return f32 ? 1e-6 : 1e-14; }

/* Calls bp_soptim_update (through float copies; NULL stays NULL) or bp_doptim_update. */
static bp_status run_update(int f32, const bp_optim_config *c, size_t n, double *p, const double *g,
                            double *m, double *v, long t, double lr)
{
    if (!f32)
        return bp_doptim_update(c, n, p, g, m, v, t, lr);
    ck_assert_uint_le(n, NBIG);
    static float pf[NBIG], gf[NBIG], mf[NBIG], vf[NBIG];
    for (size_t i = 0; i < n; i++) {
        if (p) pf[i] = (float)p[i];
        if (g) gf[i] = (float)g[i];
        if (m) mf[i] = (float)m[i];
        if (v) vf[i] = (float)v[i];
    }
    const bp_status st = bp_soptim_update(c, n, p ? pf : NULL, g ? gf : NULL, m ? mf : NULL,
                                          v ? vf : NULL, t, lr);
    for (size_t i = 0; i < n; i++) {
        if (p) p[i] = pf[i];
        if (m) m[i] = mf[i];
        if (v) v[i] = vf[i];
    }
    return st;
}

/* A config for `kind` with the test's hyperparameters. */
static bp_optim_config make_config(bp_optimizer kind, double wd)
{
    bp_optim_config c = bp_optim_defaults(kind, uses_v(kind) ? 0.01 : 0.1);
    c.weight_decay = wd;
    return c;
}

/* ---------------------------------------------------------------------------------------------
 * First three steps of each rule, kernel level: loop index = precision x kind x weight decay.
 * ------------------------------------------------------------------------------------------- */
START_TEST(test_first_steps)
{
    const int f32 = _i / (2 * NKIND);
    const bp_optimizer kind = kinds[(_i / 2) % NKIND];
    const double wd = (_i % 2) ? 0.1 : 0;
    const bp_optim_config c = make_config(kind, wd);
    const double lr = c.lr;

    /* m and v are passed even where the rule does not use them: they must stay untouched. */
    double p[NP], m[NP], v[NP];
    ref_state ref[NP];
    memcpy(p, P0, sizeof p);
    for (int i = 0; i < NP; i++) {
        m[i] = uses_m(kind) ? 0 : 7.5;
        v[i] = uses_v(kind) ? 0 : -7.5;
        ref[i] = (ref_state){P0[i], 0, 0};
    }
    for (long t = 1; t <= NSTEPS; t++) {
        ck_assert_int_eq(run_update(f32, &c, NP, p, G[t - 1], m, v, t, lr), BP_OK);
        double rp[NP], rm[NP], rv[NP];
        for (int i = 0; i < NP; i++) {
            ref_step(&c, lr, t, G[t - 1][i], &ref[i]);
            rp[i] = ref[i].p;
            rm[i] = uses_m(kind) ? ref[i].m : 7.5;
            rv[i] = uses_v(kind) ? ref[i].v : -7.5;
        }
        const double ep = nerr(NP, p, rp), em = nerr(NP, m, rm), ev = nerr(NP, v, rv);
        ck_assert_msg(ep <= tol_of(f32) && em <= tol_of(f32) && ev <= tol_of(f32),
                      "%s %s wd %g step %ld: error p %g m %g v %g > %g", f32 ? "float" : "double",
                      kind_names[kind], wd, t, ep, em, ev, tol_of(f32));
    }
}
END_TEST

/* The same on a long buffer of varied values, with NULL for the state a rule does not use. */
START_TEST(test_long_buffer)
{
    const int f32 = _i / (2 * NKIND);
    const bp_optimizer kind = kinds[(_i / 2) % NKIND];
    /* wd is a power of two so that g + wd p is exact and an exact zero stays zero in float (with
     * or without a fused multiply-add): Adam's g / (|g| + eps) is ill-conditioned for |g| ~ eps. */
    const double wd = (_i % 2) ? 0.0625 : 0;
    const bp_optim_config c = make_config(kind, wd);
    static double p[NBIG], g[NBIG], m[NBIG], v[NBIG], rp[NBIG];
    static ref_state ref[NBIG];
    for (int i = 0; i < NBIG; i++) {
        p[i] = (double)((i * 37) % 101 - 50) / 16;   /* multiples of 1/16: exact in float */
        m[i] = v[i] = 0;
        ref[i] = (ref_state){p[i], 0, 0};
    }
    for (long t = 1; t <= NSTEPS; t++) {
        for (int i = 0; i < NBIG; i++)
            g[i] = (double)((i * 13 + 7 * (int)t) % 29 - 14) / 8;
        ck_assert_int_eq(run_update(f32, &c, NBIG, p, g, uses_m(kind) ? m : NULL,
                                    uses_v(kind) ? v : NULL, t, c.lr),
                         BP_OK);
        for (int i = 0; i < NBIG; i++) {
            ref_step(&c, c.lr, t, g[i], &ref[i]);
            rp[i] = ref[i].p;
        }
        const double e = nerr(NBIG, p, rp);
        ck_assert_msg(e <= tol_of(f32), "%s %s wd %g step %ld: error %g", f32 ? "float" : "double",
                      kind_names[kind], wd, t, e);
    }
}
END_TEST

/* A few steps at hand-picked numbers, independent of the oracle above (1-element buffers). */
START_TEST(test_hand_values)
{
    /* SGD, lr 0.1, wd 0.1, p = 1, g = 0.5: g' = 0.6, p = 1 - 0.06 = 0.94. */
    bp_optim_config c = bp_optim_defaults(BP_OPT_SGD, 0.1);
    c.weight_decay = 0.1;
    double p = 1, g = 0.5, m = 0, v = 0;
    ck_assert_int_eq(bp_doptim_update(&c, 1, &p, &g, NULL, NULL, 1, 0.1), BP_OK);
    ck_assert_double_eq_tol(p, 0.94, 1e-15);

    /* Momentum mu 0.9, lr 0.1, g = 1 each step: b = 1, 1.9, 2.71; p = -0.1, -0.29, -0.561. */
    c = bp_optim_defaults(BP_OPT_MOMENTUM, 0.1);
    p = 0, g = 1, m = 0;
    const double mom_p[3] = {-0.1, -0.29, -0.561}, mom_b[3] = {1, 1.9, 2.71};
    for (long t = 1; t <= 3; t++) {
        ck_assert_int_eq(bp_doptim_update(&c, 1, &p, &g, &m, NULL, t, 0.1), BP_OK);
        ck_assert_double_eq_tol(p, mom_p[t - 1], 1e-15);
        ck_assert_double_eq_tol(m, mom_b[t - 1], 1e-15);
    }

    /* Nesterov, same: b as above, steps g + mu b = 1.9, 2.71, 3.439; p = -0.19, -0.461, -0.8049. */
    c = bp_optim_defaults(BP_OPT_NESTEROV, 0.1);
    p = 0, g = 1, m = 0;
    const double nes_p[3] = {-0.19, -0.461, -0.8049};
    for (long t = 1; t <= 3; t++) {
        ck_assert_int_eq(bp_doptim_update(&c, 1, &p, &g, &m, NULL, t, 0.1), BP_OK);
        ck_assert_double_eq_tol(p, nes_p[t - 1], 1e-15);
    }

    /* Adam with a constant gradient: mhat = g and vhat = g^2 at every t, so each step moves p
     * by lr g / (|g| + eps) = lr / (1 + eps / |g|). */
    c = bp_optim_defaults(BP_OPT_ADAM, 0.01);
    p = 1, g = 2, m = 0, v = 0;
    for (long t = 1; t <= 3; t++) {
        ck_assert_int_eq(bp_doptim_update(&c, 1, &p, &g, &m, &v, t, 0.01), BP_OK);
        ck_assert_double_eq_tol(p, 1 - (double)t * 0.01 / (1 + 0.5e-8), 1e-15);
    }

    /* AdamW, wd 0.5, lr 0.1, g = 0: p shrinks by 1 - lr wd = 0.95 per step, m = v = 0. */
    c = bp_optim_defaults(BP_OPT_ADAMW, 0.1);
    c.weight_decay = 0.5;
    p = 2, g = 0, m = 0, v = 0;
    for (long t = 1; t <= 3; t++)
        ck_assert_int_eq(bp_doptim_update(&c, 1, &p, &g, &m, &v, t, 0.1), BP_OK);
    ck_assert_double_eq_tol(p, 2 * 0.95 * 0.95 * 0.95, 1e-15);
    ck_assert(m == 0 && v == 0);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Defaults.
 * ------------------------------------------------------------------------------------------- */
START_TEST(test_defaults)
{
    for (int k = 0; k < NKIND; k++) {
        const bp_optim_config c = bp_optim_defaults(kinds[k], 0.25);
        ck_assert_int_eq(c.kind, kinds[k]);
        ck_assert(c.lr == 0.25);
        const int mom = kinds[k] == BP_OPT_MOMENTUM || kinds[k] == BP_OPT_NESTEROV;
        ck_assert(c.momentum == (mom ? 0.9 : 0.0));
        ck_assert(c.beta1 == 0.9);
        ck_assert(c.beta2 == 0.999);
        ck_assert(c.eps == 1e-8);
        ck_assert(c.weight_decay == (kinds[k] == BP_OPT_ADAMW ? 0.01 : 0.0));
        ck_assert_int_eq(c.schedule, BP_SCHED_CONSTANT);
        /* Schedule fields are valid even though the constant schedule ignores them. */
        ck_assert(c.gamma > 0 && c.gamma <= 1);
        ck_assert_int_ge(c.step_size, 1);
        ck_assert_int_ge(c.t_max, 1);
        ck_assert(c.lr_min == 0.0);
    }
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Networks: a small F64 or F32 net, optionally on a counting allocator (nettest_util.h).
 * ------------------------------------------------------------------------------------------- */

/* n_in 3, tanh 4, identity 2: 3*4 + 4 + 4*2 + 2 = 26 parameters. */
#define NET_PARAMS 26

static bp_net *make_net(bp_dtype dtype, nt_counter *cnt)
{
    const bp_layer_spec specs[2] = {{4, BP_ACT_TANH, 0}, {2, BP_ACT_IDENTITY, 0}};
    const bp_allocator a = nt_allocator(cnt);
    bp_net *net = NULL;
    ck_assert_int_eq(bp_net_create(&net, dtype, 3, 2, specs, BP_LOSS_MSE, cnt ? &a : NULL), BP_OK);
    ck_assert_ptr_nonnull(net);
    ck_assert_uint_eq(bp_net_n_params(net), NET_PARAMS);
    return net;
}

static double net_p0(size_t i) { return (double)((int)(i * 7) % 17 - 8) / 8; }
static double net_g(size_t i, long t) { return (double)((int)(i * 5 + 3 * (size_t)t) % 13 - 6) / 4; }

/* bp_optim_step against the oracle with a step schedule (rates 0.1, 0.1, 0.05 for SGD-like,
 * a tenth of that for Adam): checks the object hands the kernel the right t and scheduled lr. */
START_TEST(test_net_steps)
{
    const int f32 = _i / NKIND;
    const bp_optimizer kind = kinds[_i % NKIND];
    const bp_dtype dt = f32 ? BP_F32 : BP_F64;
    nt_counter cnt = nt_counter_make();
    bp_net *net = make_net(dt, &cnt);
    void *params = bp_net_params(net), *grads = bp_net_grads(net);
    ref_state ref[NET_PARAMS];
    for (size_t i = 0; i < NET_PARAMS; i++) {
        nt_set(dt, params, i, net_p0(i));
        ref[i] = (ref_state){net_p0(i), 0, 0};
    }
    bp_optim_config c = make_config(kind, 0.05);
    c.schedule = BP_SCHED_STEP;
    c.gamma = 0.5;
    c.step_size = 2;
    bp_optim *opt = NULL;
    ck_assert_int_eq(bp_optim_create(&opt, net, &c), BP_OK);
    ck_assert_int_eq(bp_optim_steps(opt), 0);
    const long allocs = cnt.allocs;
    for (long t = 1; t <= NSTEPS; t++) {
        const double lr = c.lr * (t == 3 ? 0.5 : 1);
        ck_assert(bp_optim_lr(opt) == lr);
        for (size_t i = 0; i < NET_PARAMS; i++)
            nt_set(dt, grads, i, net_g(i, t));
        ck_assert_int_eq(bp_optim_step(opt, net), BP_OK);
        ck_assert_int_eq(bp_optim_steps(opt), t);
        double got[NET_PARAMS], want[NET_PARAMS];
        for (size_t i = 0; i < NET_PARAMS; i++) {
            ref_step(&c, lr, t, net_g(i, t), &ref[i]);
            want[i] = ref[i].p;
            got[i] = nt_get(dt, params, i);
        }
        const double e = nerr(NET_PARAMS, got, want);
        ck_assert_msg(e <= tol_of(f32), "%s %s step %ld: error %g", f32 ? "F32" : "F64",
                      kind_names[kind], t, e);
    }
    ck_assert_int_eq(cnt.allocs, allocs);   /* a step never allocates */
    bp_optim_destroy(opt);
    bp_net_destroy(net);
    ck_assert_int_eq(cnt.allocs, cnt.frees);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Schedules: the rate of step t (t = 0 first) against closed forms; SGD on g = 1 in parameter 0
 * checks that each step really used it (p_0 = -(sum of the rates so far)).
 * ------------------------------------------------------------------------------------------- */
static void check_schedule(const bp_optim_config *c, int n, const double *want)
{
    bp_net *net = make_net(BP_F64, NULL);
    double *p = bp_net_params(net), *g = bp_net_grads(net);
    g[0] = 1;
    bp_optim *opt = NULL;
    ck_assert_int_eq(bp_optim_create(&opt, net, c), BP_OK);
    double sum = 0;
    for (int t = 0; t < n; t++) {
        const double lr = bp_optim_lr(opt);
        ck_assert_msg(fabs(lr - want[t]) <= 1e-15 * fmax(want[t], 1e-300),
                      "schedule %d at t = %d: lr %.17g, expected %.17g", (int)c->schedule, t, lr, want[t]);
        ck_assert_int_eq(bp_optim_step(opt, net), BP_OK);
        sum += want[t];
        ck_assert_msg(fabs(p[0] + sum) <= 1e-14 * sum, "t = %d: p0 %.17g, expected %.17g", t, p[0], -sum);
        ck_assert(p[1] == 0);
    }
    bp_optim_destroy(opt);
    bp_net_destroy(net);
}

START_TEST(test_schedule_constant)
{
    const bp_optim_config c = bp_optim_defaults(BP_OPT_SGD, 0.3);
    const double want[5] = {0.3, 0.3, 0.3, 0.3, 0.3};
    check_schedule(&c, 5, want);
}
END_TEST

START_TEST(test_schedule_step)
{
    /* lr 0.2, gamma 0.5, step_size 3: 0.2 for t = 0..2, 0.1 for 3..5, 0.05 for 6..8, 0.025 ... */
    bp_optim_config c = bp_optim_defaults(BP_OPT_SGD, 0.2);
    c.schedule = BP_SCHED_STEP;
    c.gamma = 0.5;
    c.step_size = 3;
    const double want[11] = {0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025};
    check_schedule(&c, 11, want);

    /* gamma 1 keeps the rate; step_size 1 decays every step. */
    c.gamma = 1;
    const double same[4] = {0.2, 0.2, 0.2, 0.2};
    check_schedule(&c, 4, same);
    c.gamma = 0.1;
    c.step_size = 1;
    const double every[4] = {0.2, 0.02, 0.002, 0.0002};
    check_schedule(&c, 4, every);
}
END_TEST

START_TEST(test_schedule_cosine)
{
    /* lr 0.1, lr_min 0.001, t_max 8: cos(pi t / 8) at t = 0, 2, 4, 6, 8 is 1, r, 0, -r, -1 with
     * r = sqrt(2) / 2, so the rate is lr_min + (lr - lr_min) (1 + cos) / 2 and stays lr_min after. */
    bp_optim_config c = bp_optim_defaults(BP_OPT_SGD, 0.1);
    c.schedule = BP_SCHED_COSINE;
    c.t_max = 8;
    c.lr_min = 0.001;
    const double r = sqrt(2.0) / 2, d = 0.099;
    double want[12];
    for (int t = 0; t < 12; t++)
        want[t] = NAN;
    want[0] = 0.1;
    want[2] = 0.001 + d * (1 + r) / 2;
    want[4] = 0.0505;
    want[6] = 0.001 + d * (1 - r) / 2;
    want[8] = want[9] = want[10] = want[11] = 0.001;
    /* Odd t: cos(pi/8) = sqrt(2 + sqrt 2) / 2 and cos(3 pi/8) = sqrt(2 - sqrt 2) / 2. */
    const double c1 = sqrt(2 + sqrt(2.0)) / 2, c3 = sqrt(2 - sqrt(2.0)) / 2;
    want[1] = 0.001 + d * (1 + c1) / 2;
    want[3] = 0.001 + d * (1 + c3) / 2;
    want[5] = 0.001 + d * (1 - c3) / 2;
    want[7] = 0.001 + d * (1 - c1) / 2;
    check_schedule(&c, 12, want);

    /* lr_min 0 reaches a rate of exactly 0 at t_max: such steps are valid and change nothing. */
    c.lr_min = 0;
    c.t_max = 2;
    const double zero[4] = {0.1, 0.05, 0, 0};
    check_schedule(&c, 4, zero);

    /* t_max 1: lr, then lr_min. */
    c.t_max = 1;
    c.lr_min = 0.01;
    const double one[3] = {0.1, 0.01, 0.01};
    check_schedule(&c, 3, one);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Bad configurations, shared by bp_optim_create (all rows) and the kernels (rows of rule fields).
 * ------------------------------------------------------------------------------------------- */
enum field { F_KIND, F_LR, F_MOM, F_B1, F_B2, F_EPS, F_WD, F_SCHED, F_GAMMA, F_STEP, F_TMAX, F_LRMIN };
static const char *const field_names[] = {"kind", "lr", "momentum", "beta1", "beta2", "eps",
                                          "weight_decay", "schedule", "gamma", "step_size", "t_max",
                                          "lr_min"};

typedef struct cfg_case {
    bp_optimizer kind;
    bp_schedule sched;
    enum field field;
    double value;
} cfg_case;

static int is_rule_field(enum field f) { return f <= F_WD && f != F_LR; }

static bp_optim_config case_config(const cfg_case *k)
{
    bp_optim_config c = bp_optim_defaults(k->kind, 0.1);
    c.schedule = k->sched;
    c.gamma = 0.5;
    c.step_size = 2;
    c.t_max = 10;
    c.lr_min = 0.001;
    switch (k->field) {
    case F_KIND: c.kind = (bp_optimizer)(int)k->value; break;
    case F_LR: c.lr = k->value; break;
    case F_MOM: c.momentum = k->value; break;
    case F_B1: c.beta1 = k->value; break;
    case F_B2: c.beta2 = k->value; break;
    case F_EPS: c.eps = k->value; break;
    case F_WD: c.weight_decay = k->value; break;
    case F_SCHED: c.schedule = (bp_schedule)(int)k->value; break;
    case F_GAMMA: c.gamma = k->value; break;
    case F_STEP: c.step_size = (long)k->value; break;
    case F_TMAX: c.t_max = (long)k->value; break;
    case F_LRMIN: c.lr_min = k->value; break;
    }
    return c;
}

#define SGD BP_OPT_SGD
#define MOM BP_OPT_MOMENTUM
#define NES BP_OPT_NESTEROV
#define ADAM BP_OPT_ADAM
#define ADAMW BP_OPT_ADAMW
#define CONST BP_SCHED_CONSTANT
static const cfg_case bad_cases[] = {
    {SGD, CONST, F_KIND, 0}, {SGD, CONST, F_KIND, 6}, {SGD, CONST, F_KIND, -1},
    {SGD, CONST, F_LR, 0}, {SGD, CONST, F_LR, -0.1}, {ADAM, CONST, F_LR, NAN},
    {MOM, CONST, F_LR, INFINITY}, {SGD, CONST, F_LR, -INFINITY},
    {MOM, CONST, F_MOM, -0.1}, {MOM, CONST, F_MOM, 1}, {MOM, CONST, F_MOM, 1.5},
    {MOM, CONST, F_MOM, NAN}, {MOM, CONST, F_MOM, INFINITY},
    {NES, CONST, F_MOM, -1e-300}, {NES, CONST, F_MOM, 1}, {NES, CONST, F_MOM, NAN},
    {ADAM, CONST, F_B1, -0.1}, {ADAM, CONST, F_B1, 1}, {ADAM, CONST, F_B1, NAN},
    {ADAMW, CONST, F_B1, 1.5}, {ADAMW, CONST, F_B1, -INFINITY},
    {ADAM, CONST, F_B2, -0.1}, {ADAM, CONST, F_B2, 1}, {ADAM, CONST, F_B2, INFINITY},
    {ADAMW, CONST, F_B2, NAN}, {ADAMW, CONST, F_B2, 1},
    {ADAM, CONST, F_EPS, 0}, {ADAM, CONST, F_EPS, -1e-8}, {ADAM, CONST, F_EPS, NAN},
    {ADAMW, CONST, F_EPS, INFINITY}, {ADAMW, CONST, F_EPS, 0},
    {SGD, CONST, F_WD, -0.1}, {MOM, CONST, F_WD, NAN}, {NES, CONST, F_WD, INFINITY},
    {ADAM, CONST, F_WD, -1e-300}, {ADAMW, CONST, F_WD, -0.01}, {ADAMW, CONST, F_WD, NAN},
    {SGD, CONST, F_SCHED, -1}, {SGD, CONST, F_SCHED, 3},
    {SGD, BP_SCHED_STEP, F_GAMMA, 0}, {SGD, BP_SCHED_STEP, F_GAMMA, -0.5},
    {SGD, BP_SCHED_STEP, F_GAMMA, 1.5}, {ADAM, BP_SCHED_STEP, F_GAMMA, NAN},
    {SGD, BP_SCHED_STEP, F_GAMMA, INFINITY},
    {SGD, BP_SCHED_STEP, F_STEP, 0}, {MOM, BP_SCHED_STEP, F_STEP, -1},
    {SGD, BP_SCHED_COSINE, F_TMAX, 0}, {ADAMW, BP_SCHED_COSINE, F_TMAX, -5},
    {SGD, BP_SCHED_COSINE, F_LRMIN, -0.001}, {SGD, BP_SCHED_COSINE, F_LRMIN, NAN},
    {NES, BP_SCHED_COSINE, F_LRMIN, INFINITY},
};
#define N_BAD ((int)(sizeof bad_cases / sizeof bad_cases[0]))

/* Valid edges, and fields that the chosen rule or schedule does not read (ignored). */
static const cfg_case good_cases[] = {
    {MOM, CONST, F_MOM, 0}, {NES, CONST, F_MOM, 0.999999}, {ADAM, CONST, F_B1, 0},
    {ADAM, CONST, F_B2, 0}, {ADAMW, CONST, F_EPS, 1e-300}, {SGD, CONST, F_WD, 0},
    {SGD, BP_SCHED_STEP, F_GAMMA, 1}, {SGD, BP_SCHED_STEP, F_STEP, 1},
    {SGD, BP_SCHED_COSINE, F_TMAX, 1}, {SGD, BP_SCHED_COSINE, F_LRMIN, 0},
    {SGD, BP_SCHED_COSINE, F_LRMIN, 1}, /* above lr: a rising schedule, allowed */
    {SGD, CONST, F_MOM, NAN}, {SGD, CONST, F_B1, 2}, {MOM, CONST, F_EPS, 0},
    {ADAM, CONST, F_MOM, -1}, {SGD, CONST, F_GAMMA, 0}, {SGD, CONST, F_STEP, 0},
    {SGD, BP_SCHED_STEP, F_TMAX, 0}, {SGD, BP_SCHED_COSINE, F_GAMMA, NAN},
    {SGD, BP_SCHED_COSINE, F_STEP, -3},
};
#define N_GOOD ((int)(sizeof good_cases / sizeof good_cases[0]))

static void expect_error(const char *fn, const char *arg)
{
    const char *e = bp_last_error();
    ck_assert_msg(strstr(e, fn) != NULL && strstr(e, arg) != NULL,
                  "last error \"%s\" does not name %s and %s", e, fn, arg);
}

START_TEST(test_create_bad_config)
{
    const cfg_case *k = &bad_cases[_i];
    const bp_optim_config c = case_config(k);
    const bp_optim_config saved = c;
    nt_counter cnt = nt_counter_make();
    bp_net *net = make_net(BP_F64, &cnt);
    const long allocs = cnt.allocs;
    bp_optim *const sentinel = (bp_optim *)(void *)&cnt;
    bp_optim *opt = sentinel;
    ck_assert_int_eq(bp_optim_create(&opt, net, &c), BP_ERR_ARG);
    ck_assert_ptr_eq(opt, sentinel);
    ck_assert_int_eq(cnt.allocs, allocs);
    ck_assert(memcmp(&c, &saved, sizeof c) == 0);
    expect_error("bp_optim_create", field_names[k->field]);
    bp_net_destroy(net);
}
END_TEST

START_TEST(test_create_good_config)
{
    const bp_optim_config c = case_config(&good_cases[_i]);
    bp_net *net = make_net(BP_F64, NULL);
    bp_optim *opt = NULL;
    ck_assert_msg(bp_optim_create(&opt, net, &c) == BP_OK, "case %d: %s", (int)_i, bp_last_error());
    ck_assert_int_eq(bp_optim_step(opt, net), BP_OK);
    bp_optim_destroy(opt);
    bp_net_destroy(net);
}
END_TEST

START_TEST(test_create_null)
{
    const bp_optim_config c = bp_optim_defaults(BP_OPT_ADAM, 0.01);
    bp_net *net = make_net(BP_F32, NULL);
    bp_optim *const sentinel = (bp_optim *)(void *)&net;
    bp_optim *opt = sentinel;
    ck_assert_int_eq(bp_optim_create(NULL, net, &c), BP_ERR_ARG);
    expect_error("bp_optim_create", "out");
    ck_assert_int_eq(bp_optim_create(&opt, NULL, &c), BP_ERR_ARG);
    expect_error("bp_optim_create", "net");
    ck_assert_ptr_eq(opt, sentinel);
    ck_assert_int_eq(bp_optim_create(&opt, net, NULL), BP_ERR_ARG);
    expect_error("bp_optim_create", "config");
    ck_assert_ptr_eq(opt, sentinel);
    bp_net_destroy(net);
}
END_TEST

/* Out of memory: the allocation of the state fails; nothing leaks and *out is untouched. */
START_TEST(test_create_nomem)
{
    nt_counter cnt = nt_counter_make();
    bp_net *net = make_net(BP_F64, &cnt);
    cnt.fail_after = cnt.allocs; /* every allocation from now on fails */
    const bp_optim_config c = bp_optim_defaults(kinds[_i], 0.01);
    bp_optim *const sentinel = (bp_optim *)(void *)&cnt;
    bp_optim *opt = sentinel;
    ck_assert_int_eq(bp_optim_create(&opt, net, &c), BP_ERR_NOMEM);
    ck_assert_ptr_eq(opt, sentinel);
    expect_error("bp_optim_create", "");
    bp_net_destroy(net);
    ck_assert_int_eq(cnt.allocs, cnt.frees);
}
END_TEST

/* The optimizer copies its config: later changes to the caller's struct have no effect. */
START_TEST(test_create_copies_config)
{
    bp_net *net = make_net(BP_F64, NULL);
    double *p = bp_net_params(net), *g = bp_net_grads(net);
    g[0] = 1;
    bp_optim_config c = bp_optim_defaults(BP_OPT_SGD, 0.5);
    bp_optim *opt = NULL;
    ck_assert_int_eq(bp_optim_create(&opt, net, &c), BP_OK);
    c.lr = 100;
    c.kind = (bp_optimizer)99;
    ck_assert(bp_optim_lr(opt) == 0.5);
    ck_assert_int_eq(bp_optim_step(opt, net), BP_OK);
    ck_assert(p[0] == -0.5);
    bp_optim_destroy(opt);
    bp_net_destroy(net);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Kernel arguments: every bad one, in both precisions, leaves all four buffers untouched.
 * ------------------------------------------------------------------------------------------- */
typedef struct kbufs {
    double p[NP], g[NP], m[NP], v[NP];
} kbufs;

static void kbufs_fill(kbufs *b)
{
    for (int i = 0; i < NP; i++) {
        b->p[i] = P0[i];
        b->g[i] = G[0][i];
        b->m[i] = 0.25 * i;
        b->v[i] = 0.125 * i;
    }
}

static void expect_kernel_error(int f32, bp_status st, bp_status want, const kbufs *b, const char *arg)
{
    kbufs fresh;
    kbufs_fill(&fresh);
    ck_assert_int_eq(st, want);
    ck_assert_msg(memcmp(b, &fresh, sizeof fresh) == 0, "a buffer changed on error (%s)", arg);
    expect_error(f32 ? "bp_soptim_update" : "bp_doptim_update", arg);
}

START_TEST(test_update_bad_config)
{
    const int f32 = _i;
    for (int i = 0; i < N_BAD; i++) {
        if (!is_rule_field(bad_cases[i].field))
            continue;
        const bp_optim_config c = case_config(&bad_cases[i]);
        kbufs b;
        kbufs_fill(&b);
        const bp_status st = run_update(f32, &c, NP, b.p, b.g, b.m, b.v, 1, 0.1);
        expect_kernel_error(f32, st, BP_ERR_ARG, &b, field_names[bad_cases[i].field]);
        /* An empty update validates its arguments all the same. */
        ck_assert_int_eq(run_update(f32, &c, 0, NULL, NULL, NULL, NULL, 1, 0.1), BP_ERR_ARG);
    }
}
END_TEST

START_TEST(test_update_bad_args)
{
    const int f32 = _i;
    for (int k = 0; k < NKIND; k++) {
        const bp_optim_config c = bp_optim_defaults(kinds[k], 0.1);
        kbufs b;
        kbufs_fill(&b);
        expect_kernel_error(f32, run_update(f32, NULL, NP, b.p, b.g, b.m, b.v, 1, 0.1), BP_ERR_ARG, &b,
                            "config is NULL");
        const double bad_lr[4] = {-0.1, -1e-300, NAN, INFINITY};
        for (int j = 0; j < 4; j++)
            expect_kernel_error(f32, run_update(f32, &c, NP, b.p, b.g, b.m, b.v, 1, bad_lr[j]),
                                BP_ERR_ARG, &b, "lr (");
        const long bad_t[3] = {0, -1, LONG_MIN};
        for (int j = 0; j < 3; j++)
            expect_kernel_error(f32, run_update(f32, &c, NP, b.p, b.g, b.m, b.v, bad_t[j], 0.1),
                                BP_ERR_ARG, &b, "t (");
        expect_kernel_error(f32, run_update(f32, &c, NP, NULL, b.g, b.m, b.v, 1, 0.1), BP_ERR_ARG, &b, "p is NULL");
        expect_kernel_error(f32, run_update(f32, &c, NP, b.p, NULL, b.m, b.v, 1, 0.1), BP_ERR_ARG, &b, "g is NULL");
        if (uses_m(kinds[k]))
            expect_kernel_error(f32, run_update(f32, &c, NP, b.p, b.g, NULL, b.v, 1, 0.1), BP_ERR_ARG,
                                &b, "m is NULL");
        if (uses_v(kinds[k]))
            expect_kernel_error(f32, run_update(f32, &c, NP, b.p, b.g, b.m, NULL, 1, 0.1), BP_ERR_ARG,
                                &b, "v is NULL");
    }
}
END_TEST

/* A length no buffer can have: refused before any element is touched (called directly, as the
 * float runner copies n elements). */
START_TEST(test_update_overflow)
{
    const bp_optim_config c = bp_optim_defaults(BP_OPT_ADAM, 0.1);
    kbufs b;
    kbufs_fill(&b);
    float pf[NP], gf[NP], mf[NP], vf[NP];
    memset(pf, 0, sizeof pf), memset(gf, 0, sizeof gf), memset(mf, 0, sizeof mf), memset(vf, 0, sizeof vf);
    const size_t nd = (size_t)PTRDIFF_MAX / sizeof(double) + 1, nf = (size_t)PTRDIFF_MAX / sizeof(float) + 1;
    expect_kernel_error(0, bp_doptim_update(&c, SIZE_MAX, b.p, b.g, b.m, b.v, 1, 0.1), BP_ERR_OVERFLOW, &b, "n (");
    expect_kernel_error(0, bp_doptim_update(&c, nd, b.p, b.g, b.m, b.v, 1, 0.1), BP_ERR_OVERFLOW, &b, "n (");
    ck_assert_int_eq(bp_soptim_update(&c, SIZE_MAX, pf, gf, mf, vf, 1, 0.1), BP_ERR_OVERFLOW);
    expect_error("bp_soptim_update", "n (");
    ck_assert_int_eq(bp_soptim_update(&c, nf, pf, gf, mf, vf, 1, 0.1), BP_ERR_OVERFLOW);
    for (int i = 0; i < NP; i++)
        ck_assert(pf[i] == 0 && mf[i] == 0 && vf[i] == 0);
}
END_TEST

/* n == 0 is a valid empty update: any pointer may be NULL. Unused state may be NULL at any n,
 * the kernels ignore config fields their rule does not read, and lr may be 0. */
START_TEST(test_update_edge_ok)
{
    const int f32 = _i;
    for (int k = 0; k < NKIND; k++) {
        bp_optim_config c = bp_optim_defaults(kinds[k], 0.1);
        ck_assert_int_eq(run_update(f32, &c, 0, NULL, NULL, NULL, NULL, 1, 0.1), BP_OK);
        ck_assert_int_eq(run_update(f32, &c, 0, NULL, NULL, NULL, NULL, LONG_MAX, 0), BP_OK);
        kbufs b;
        kbufs_fill(&b);
        ck_assert_int_eq(run_update(f32, &c, NP, b.p, b.g, uses_m(kinds[k]) ? b.m : NULL,
                                    uses_v(kinds[k]) ? b.v : NULL, 1, 0.1),
                         BP_OK);
        /* lr = 0 (a schedule's end): parameters stay, the state still advances (as PyTorch). */
        kbufs_fill(&b);
        ck_assert_int_eq(run_update(f32, &c, NP, b.p, b.g, b.m, b.v, 2, 0), BP_OK);
        for (int i = 0; i < NP; i++)
            ck_assert(b.p[i] == P0[i]);
        /* config->lr and the schedule are not the kernel's business. */
        c.lr = NAN;
        c.schedule = (bp_schedule)42;
        c.t_max = -1;
        ck_assert_int_eq(run_update(f32, &c, NP, b.p, b.g, b.m, b.v, 1, 0.1), BP_OK);
    }
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * bp_optim_step, bp_optim_lr, bp_optim_steps, bp_optim_destroy arguments.
 * ------------------------------------------------------------------------------------------- */

/* A byte copy of a net's buffers, to assert nothing changed. */
typedef struct snapshot {
    unsigned char p[NET_PARAMS * sizeof(double)], g[NET_PARAMS * sizeof(double)];
    size_t bytes;
} snapshot;

static void snap(bp_net *net, snapshot *s)
{
    s->bytes = NET_PARAMS * (bp_net_dtype(net) == BP_F32 ? sizeof(float) : sizeof(double));
    memcpy(s->p, bp_net_params(net), s->bytes);
    memcpy(s->g, bp_net_grads(net), s->bytes);
}

static void expect_unchanged(bp_net *net, const snapshot *s)
{
    ck_assert(memcmp(s->p, bp_net_params(net), s->bytes) == 0);
    ck_assert(memcmp(s->g, bp_net_grads(net), s->bytes) == 0);
}

static void fill_net(bp_net *net)
{
    for (size_t i = 0; i < NET_PARAMS; i++) {
        nt_set(bp_net_dtype(net), bp_net_params(net), i, net_p0(i));
        nt_set(bp_net_dtype(net), bp_net_grads(net), i, net_g(i, 1));
    }
}

START_TEST(test_step_bad_args)
{
    bp_net *net = make_net(BP_F64, NULL), *net32 = make_net(BP_F32, NULL);
    const bp_layer_spec other_specs[1] = {{5, BP_ACT_IDENTITY, 0}};
    bp_net *other = NULL;
    ck_assert_int_eq(bp_net_create(&other, BP_F64, 2, 1, other_specs, BP_LOSS_MSE, NULL), BP_OK);
    fill_net(net), fill_net(net32);
    const bp_optim_config c = bp_optim_defaults(BP_OPT_ADAM, 0.01);
    bp_optim *opt = NULL;
    ck_assert_int_eq(bp_optim_create(&opt, net, &c), BP_OK);
    ck_assert_int_eq(bp_optim_step(opt, net), BP_OK);
    snapshot s, s32;
    snap(net, &s), snap(net32, &s32);

    ck_assert_int_eq(bp_optim_step(NULL, net), BP_ERR_ARG);
    expect_error("bp_optim_step", "opt is NULL");
    ck_assert_int_eq(bp_optim_step(opt, NULL), BP_ERR_ARG);
    expect_error("bp_optim_step", "net is NULL");
    /* A net of the same dtype but another size, and one of the same size in float. */
    ck_assert_int_eq(bp_optim_step(opt, other), BP_ERR_ARG);
    expect_error("bp_optim_step", "parameters");
    ck_assert_int_eq(bp_optim_step(opt, net32), BP_ERR_ARG);
    expect_error("bp_optim_step", "dtype");
    expect_unchanged(net, &s);
    expect_unchanged(net32, &s32);
    ck_assert_int_eq(bp_optim_steps(opt), 1);

    /* Another net of the same dtype and size is accepted (e.g. a copy of the model). */
    bp_net *twin = make_net(BP_F64, NULL);
    ck_assert_int_eq(bp_optim_step(opt, twin), BP_OK);
    ck_assert_int_eq(bp_optim_steps(opt), 2);

    bp_optim_destroy(opt);
    bp_net_destroy(twin);
    bp_net_destroy(other);
    bp_net_destroy(net32);
    bp_net_destroy(net);
}
END_TEST

START_TEST(test_accessors_null)
{
    ck_assert(isnan(bp_optim_lr(NULL)));
    expect_error("bp_optim_lr", "opt");
    ck_assert_int_eq(bp_optim_steps(NULL), -1);
    expect_error("bp_optim_steps", "opt");
    bp_optim_destroy(NULL);
}
END_TEST

/* With the finite check on, a NaN or an infinity anywhere in the gradient is refused before any
 * change: parameters, state and step count; the next finite step is the first one. Loop index:
 * dtype x position x value. */
START_TEST(test_step_nonfinite)
{
    const bp_dtype dt = _i / 9 ? BP_F32 : BP_F64;
    const size_t pos[3] = {0, 13, NET_PARAMS - 1}, at = pos[(_i / 3) % 3];
    const double bad[3] = {NAN, INFINITY, -INFINITY};
    bp_net *net = make_net(dt, NULL), *ref = make_net(dt, NULL);
    fill_net(net), fill_net(ref);
    ck_assert_int_eq(bp_net_set_check_finite(net, 1), BP_OK);
    const bp_optim_config c = bp_optim_defaults(BP_OPT_ADAMW, 0.01);
    bp_optim *opt = NULL, *opt_ref = NULL;
    ck_assert_int_eq(bp_optim_create(&opt, net, &c), BP_OK);
    ck_assert_int_eq(bp_optim_create(&opt_ref, ref, &c), BP_OK);

    const double keep = nt_get(dt, bp_net_grads(net), at);
    nt_set(dt, bp_net_grads(net), at, bad[_i % 3]);
    snapshot s;
    snap(net, &s);
    ck_assert_int_eq(bp_optim_step(opt, net), BP_ERR_NONFINITE);
    expect_error("bp_optim_step", "gradient");
    expect_unchanged(net, &s);
    ck_assert_int_eq(bp_optim_steps(opt), 0);

    nt_set(dt, bp_net_grads(net), at, keep);
    ck_assert_int_eq(bp_optim_step(opt, net), BP_OK);
    ck_assert_int_eq(bp_optim_step(opt_ref, ref), BP_OK);
    ck_assert(memcmp(bp_net_params(net), bp_net_params(ref), s.bytes) == 0);

    bp_optim_destroy(opt);
    bp_optim_destroy(opt_ref);
    bp_net_destroy(ref);
    bp_net_destroy(net);
}
END_TEST

/* With the check off (the default) the step does not scan: a NaN goes through. */
START_TEST(test_step_nonfinite_unchecked)
{
    bp_net *net = make_net(BP_F64, NULL);
    fill_net(net);
    double *g = bp_net_grads(net), *p = bp_net_params(net);
    g[3] = NAN;
    const bp_optim_config c = bp_optim_defaults(BP_OPT_SGD, 0.1);
    bp_optim *opt = NULL;
    ck_assert_int_eq(bp_optim_create(&opt, net, &c), BP_OK);
    ck_assert_int_eq(bp_optim_step(opt, net), BP_OK);
    ck_assert(isnan(p[3]) && isfinite(p[2]));
    bp_optim_destroy(opt);
    bp_net_destroy(net);
}
END_TEST

/* Memory: create allocates through the network's allocator, a step never allocates, destroy frees
 * everything, also after the network is gone. */
START_TEST(test_memory)
{
    nt_counter cnt = nt_counter_make();
    bp_net *net = make_net(_i / NKIND ? BP_F32 : BP_F64, &cnt);
    fill_net(net);
    const long before = cnt.allocs;
    const bp_optim_config c = bp_optim_defaults(kinds[_i % NKIND], 0.01);
    bp_optim *opt = NULL;
    ck_assert_int_eq(bp_optim_create(&opt, net, &c), BP_OK);
    ck_assert_int_gt(cnt.allocs, before);
    const long after = cnt.allocs;
    for (int t = 0; t < 5; t++)
        ck_assert_int_eq(bp_optim_step(opt, net), BP_OK);
    ck_assert_int_eq(cnt.allocs, after);
    bp_net_destroy(net);
    bp_optim_destroy(opt);
    ck_assert_int_eq(cnt.allocs, cnt.frees);
}
END_TEST

/* Float and double nets given the same data stay within float tolerance over many steps. */
START_TEST(test_float_vs_double)
{
    const bp_optimizer kind = kinds[_i];
    bp_net *nd = make_net(BP_F64, NULL), *nf = make_net(BP_F32, NULL);
    fill_net(nd), fill_net(nf);
    const bp_optim_config c = make_config(kind, 0.01);
    bp_optim *od = NULL, *of = NULL;
    ck_assert_int_eq(bp_optim_create(&od, nd, &c), BP_OK);
    ck_assert_int_eq(bp_optim_create(&of, nf, &c), BP_OK);
    for (long t = 1; t <= 20; t++) {
        for (size_t i = 0; i < NET_PARAMS; i++) {
            nt_set(BP_F64, bp_net_grads(nd), i, net_g(i, t));
            nt_set(BP_F32, bp_net_grads(nf), i, net_g(i, t));
        }
        ck_assert_int_eq(bp_optim_step(od, nd), BP_OK);
        ck_assert_int_eq(bp_optim_step(of, nf), BP_OK);
    }
    double a[NET_PARAMS], b[NET_PARAMS];
    for (size_t i = 0; i < NET_PARAMS; i++) {
        a[i] = nt_get(BP_F32, bp_net_params(nf), i);
        b[i] = nt_get(BP_F64, bp_net_params(nd), i);
    }
    const double e = nerr(NET_PARAMS, a, b);
    ck_assert_msg(e <= 1e-5, "%s: float vs double %g", kind_names[kind], e);
    bp_optim_destroy(od), bp_optim_destroy(of);
    bp_net_destroy(nd), bp_net_destroy(nf);
}
END_TEST

static Suite *optim_suite(void)
{
    Suite *s = suite_create("optim");
    TCase *rules = tcase_create("rules");
    tcase_add_loop_test(rules, test_first_steps, 0, 4 * NKIND);
    tcase_add_loop_test(rules, test_long_buffer, 0, 4 * NKIND);
    tcase_add_test(rules, test_hand_values);
    tcase_add_test(rules, test_defaults);
    tcase_add_loop_test(rules, test_net_steps, 0, 2 * NKIND);
    tcase_add_loop_test(rules, test_float_vs_double, 0, NKIND);
    suite_add_tcase(s, rules);

    TCase *sched = tcase_create("schedules");
    tcase_add_test(sched, test_schedule_constant);
    tcase_add_test(sched, test_schedule_step);
    tcase_add_test(sched, test_schedule_cosine);
    suite_add_tcase(s, sched);

    TCase *args = tcase_create("arguments");
    tcase_add_loop_test(args, test_create_bad_config, 0, N_BAD);
    tcase_add_loop_test(args, test_create_good_config, 0, N_GOOD);
    tcase_add_test(args, test_create_null);
    tcase_add_loop_test(args, test_create_nomem, 0, NKIND);
    tcase_add_test(args, test_create_copies_config);
    tcase_add_loop_test(args, test_update_bad_config, 0, 2);
    tcase_add_loop_test(args, test_update_bad_args, 0, 2);
    tcase_add_test(args, test_update_overflow);
    tcase_add_loop_test(args, test_update_edge_ok, 0, 2);
    tcase_add_test(args, test_step_bad_args);
    tcase_add_test(args, test_accessors_null);
    suite_add_tcase(s, args);

    TCase *state = tcase_create("finite_and_memory");
    tcase_add_loop_test(state, test_step_nonfinite, 0, 18);
    tcase_add_test(state, test_step_nonfinite_unchecked);
    tcase_add_loop_test(state, test_memory, 0, 2 * NKIND);
    suite_add_tcase(s, state);
    return s;
}

int main(void)
{
    return tu_run_suite(optim_suite());
}
