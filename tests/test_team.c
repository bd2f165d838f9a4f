/* SPDX-License-Identifier: MIT */
/* test_team.c: the thread policy on layers large enough to be cut into chunks by default
 * (bp_net_set_threads): the same gradient as the naive backend, bitwise the same results for
 * a given thread count whatever the load (other threads of the process keeping every core
 * busy), agreement to rounding across thread counts, no allocation in a step, the settings
 * and their defaults, the finite check, inference, and networks trained in two threads. */
#define _GNU_SOURCE  /* sched_getaffinity */
#include <check.h>
#include <sched.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "nettest_util.h"

/* At a micro-batch of 300, layers 0 and 1 (300 x 40 x 300, 300 x 300 x 260 multiply-adds)
 * are cut into chunks by default; layer 2 is thin (7 outputs, 300 x 260 x 7 = 546000), cut
 * only for its products. GELU keeps Z; leaky ReLU has an alpha. */
enum { NIN = 40, NL = 3, MB = 300, N = 600 };

static const bp_layer_spec layers[NL] = {
    {300, BP_ACT_GELU, 0}, {260, BP_ACT_LEAKY_RELU, 0.1}, {7, BP_ACT_IDENTITY, 0}};

typedef struct data {
    double X[N * NIN];
    float Xs[N * NIN];  /* X rounded */
    int32_t y[N];
} data;

static void make_data(data *d)
{
    nt_fill_xy(29, N * NIN, d->X, d->Xs, N, d->y, 7);
}

/* A planned network (micro-batch MB) with `threads` threads set before the plan. */
static bp_net *make_net(bp_dtype dt, int threads, const bp_allocator *a)
{
    bp_net *net = nt_net(dt, NIN, NL, layers, BP_LOSS_SOFTMAX_XENT, a);
    NT_OK(bp_net_set_threads(net, threads));
    ck_assert_int_eq(bp_net_threads(net), threads);
    NT_OK(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 9, 1));
    NT_OK(bp_net_plan(net, MB));
    return net;
}

/* Whether the plan description says the network runs on `threads` threads and cuts layer 0's
 * forward into that many chunks. */
static int cut_into(const bp_net *net, int threads)
{
    char buf[4096], want[2][64];
    NT_OK(bp_net_describe_plan(net, buf, sizeof buf, NULL));
    snprintf(want[0], sizeof want[0], "threads: %d ", threads);
    snprintf(want[1], sizeof want[1], "chunks of layer 0: forward %d", threads);
    return strstr(buf, want[0]) != NULL && strstr(buf, want[1]) != NULL;
}

/* Threads of this process that spin until `stop` is set: the load of a host code that keeps
 * every core busy. */
typedef struct load {
    pthread_t th[8];
    int n;
    atomic_int stop;
} load;

static void *spin(void *arg)
{
    load *l = arg;
    volatile double x = 1;
    while (!atomic_load(&l->stop))
        x = x * 1.0000001 + 1e-9;
    return NULL;
}

static void load_start(load *l)
{
    cpu_set_t mask;
    ck_assert_int_eq(sched_getaffinity(0, sizeof mask, &mask), 0);
    l->n = CPU_COUNT(&mask) < 8 ? CPU_COUNT(&mask) : 8;
    atomic_init(&l->stop, 0);
    for (int k = 0; k < l->n; k++)
        ck_assert_int_eq(pthread_create(&l->th[k], NULL, spin, l), 0);
}

static void load_stop(load *l)
{
    atomic_store(&l->stop, 1);
    for (int k = 0; k < l->n; k++)
        ck_assert_int_eq(pthread_join(l->th[k], NULL), 0);
}

/* The chunked passes and the thin layer's pieces give the gradient of the naive backend
 * (double, normwise within the DESIGN tolerance), for one micro-batch (n = 300) and for
 * two that accumulate (n = 600), with the loss. */
START_TEST(test_gradient_vs_naive)
{
    static data d;
    make_data(&d);
    static const bp_int ns[] = {MB, N};
    for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
        double loss[2];
        double *g[2];
        for (int b = 0; b < 2; b++) {
            bp_net *net = make_net(BP_F64, 2, NULL);
            NT_OK(bp_net_set_backend(net, b ? BP_BACKEND_NAIVE : BP_BACKEND_BLAS));
            NT_OK(bp_net_loss_and_grad(net, ns[k], d.X, NIN, d.y, 0, &loss[b]));
            g[b] = nt_grads_d(net);
            if (b == 1) {
                const size_t P = bp_net_n_params(net);
                const double err = nt_err(g[0], g[1], P), tol = nt_tol(net, (int)ns[k], nt_eps(BP_F64));
                ck_assert_msg(err <= tol, "n %d: gradient error %g > %g", (int)ns[k], err, tol);
                ck_assert_double_eq_tol(loss[0], loss[1], 1e-12 * fabs(loss[1]));
            }
            bp_net_destroy(net);
        }
        free(g[0]);
        free(g[1]);
    }
}
END_TEST

/* What a network of `threads` threads computes: the gradient and loss of N samples (two
 * micro-batches), then its parameters after three fused SGD steps and three Adam steps. */
typedef struct outcome {
    void *grad, *params;
    double loss;
    size_t bytes;
} outcome;

static outcome run_outcome(const data *d, bp_dtype dt, int threads)
{
    const void *X = dt == BP_F64 ? (const void *)d->X : (const void *)d->Xs;
    bp_net *net = make_net(dt, threads, NULL);
    ck_assert_msg(threads == 1 || cut_into(net, threads), "%d threads: layer 0 is not cut", threads);
    outcome o = {NULL, NULL, 0, bp_net_n_params(net) * nt_esize(dt)};
    NT_OK(bp_net_loss_and_grad(net, N, X, NIN, d->y, 0, &o.loss));
    o.grad = nt_memdup(bp_net_grads(net), o.bytes);
    bp_optim *sgd = nt_optim(net, BP_OPT_SGD, 0.05);
    for (int s = 0; s < 3; s++)
        NT_OK(bp_optim_train_step(sgd, net, MB, (const char *)X + (size_t)s * 8 * NIN * nt_esize(dt), NIN,
                                  d->y + s * 8, 0, NULL));
    bp_optim *adam = nt_optim(net, BP_OPT_ADAM, 0.01);
    for (int s = 0; s < 3; s++) {
        NT_OK(bp_net_loss_and_grad(net, N, X, NIN, d->y, 0, NULL));
        NT_OK(bp_optim_step(adam, net));
    }
    o.params = nt_memdup(bp_net_params(net), o.bytes);
    bp_optim_destroy(adam);
    bp_optim_destroy(sgd);
    bp_net_destroy(net);
    return o;
}

static void free_outcome(outcome *o)
{
    free(o->grad);
    free(o->params);
}

/* For 2 and 3 threads, in both precisions, the same work with other threads of the process
 * keeping every core busy gives bitwise the quiet run's gradient, loss and parameters: load
 * changes who computes which chunk, never what a chunk computes. */
START_TEST(test_bitwise_under_load)
{
    static data d;
    make_data(&d);
    for (int dtv = 0; dtv < 2; dtv++)
        for (int threads = 2; threads <= 3; threads++) {
            const bp_dtype dt = dtv ? BP_F64 : BP_F32;
            outcome quiet = run_outcome(&d, dt, threads);
            load l;
            load_start(&l);
            outcome busy = run_outcome(&d, dt, threads);
            load_stop(&l);
            ck_assert_msg(memcmp(busy.grad, quiet.grad, quiet.bytes) == 0, "%s, %d threads: gradient differs under load",
                          nt_dtype_name(dt), threads);
            ck_assert_msg(memcmp(busy.params, quiet.params, quiet.bytes) == 0,
                          "%s, %d threads: parameters differ under load", nt_dtype_name(dt), threads);
            ck_assert_msg(busy.loss == quiet.loss, "loss %.17g vs %.17g", busy.loss, quiet.loss);
            free_outcome(&quiet);
            free_outcome(&busy);
        }
}
END_TEST

/* 1, 2 and 3 threads cut the products differently, so they round differently: double
 * gradients, losses and parameters after the steps agree normwise within the DESIGN tolerance. */
START_TEST(test_thread_counts_agree)
{
    static data d;
    make_data(&d);
    outcome ref = run_outcome(&d, BP_F64, 1);
    const size_t P = ref.bytes / sizeof(double);
    const double tol = tu_tol(N + NIN + 300 + 260, nt_eps(BP_F64));
    for (int threads = 2; threads <= 3; threads++) {
        outcome o = run_outcome(&d, BP_F64, threads);
        const double eg = nt_err(o.grad, ref.grad, P), ep = nt_err(o.params, ref.params, P);
        ck_assert_msg(eg <= tol, "%d threads: gradient differs by %g > %g", threads, eg, tol);
        ck_assert_msg(ep <= 100 * tol, "%d threads: parameters differ by %g > %g", threads, ep, 100 * tol);
        ck_assert_double_eq_tol(o.loss, ref.loss, 1e-13 * fabs(ref.loss));
        free_outcome(&o);
    }
    free_outcome(&ref);
}
END_TEST

/* The team is started by the plan (or by set_threads on a planned network); steps on it
 * allocate nothing, and every allocation is freed with the network. */
START_TEST(test_no_allocation_in_step)
{
    static data d;
    make_data(&d);
    nt_counter cnt = nt_counter_make();
    const bp_allocator a = nt_allocator(&cnt);
    bp_net *net = make_net(BP_F32, 2, &a);
    ck_assert(cut_into(net, 2));
    bp_optim *opt = nt_optim(net, BP_OPT_MOMENTUM, 0.01);
    const long before = cnt.allocs;
    double loss;
    for (int s = 0; s < 4; s++) {
        NT_OK(bp_optim_train_step(opt, net, MB, d.Xs, NIN, d.y, 0, &loss));
        NT_OK(bp_net_loss_and_grad(net, N, d.Xs, NIN, d.y, 0, &loss));
        NT_OK(bp_optim_step(opt, net));
    }
    ck_assert_int_eq(cnt.allocs, before);
    bp_optim_destroy(opt);
    bp_net_destroy(net);
    ck_assert_int_eq(cnt.allocs, cnt.frees);
}
END_TEST

/* The default count: the processors of the affinity mask, at most OMP_NUM_THREADS and
 * OPENBLAS_NUM_THREADS where they are set (the test's environment is used as it is). */
static int expected_default(void)
{
    cpu_set_t mask;
    ck_assert_int_eq(sched_getaffinity(0, sizeof mask, &mask), 0);
    long cpus = CPU_COUNT(&mask);
    static const char *const vars[] = {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"};
    for (int k = 0; k < 2; k++) {
        const char *v = getenv(vars[k]);
        char *end;
        const long n = v && *v ? strtol(v, &end, 10) : 0;
        if (v && *v && *end == '\0' && n >= 1 && n < cpus)
            cpus = n;
    }
    return cpus > BP_NET_MAX_THREADS ? BP_NET_MAX_THREADS : (int)cpus;
}

/* Argument errors (nothing changes), the default, 0, and the cuts in the plan: none for a
 * micro-batch too small to pay for a thread, every layer cut with a least work of 1, and the
 * team stopped by 1 and started again on a planned network. */
START_TEST(test_settings)
{
    NT_EXPECT(bp_net_set_threads(NULL, 2), BP_ERR_ARG, "bp_net_set_threads", "net is NULL");
    NT_EXPECT(bp_net_set_chunk_min(NULL, 1, 1), BP_ERR_ARG, "bp_net_set_chunk_min", "net is NULL");
    ck_assert_int_eq(bp_net_threads(NULL), 0);
    bp_net *net = nt_net(BP_F64, NIN, NL, layers, BP_LOSS_SOFTMAX_XENT, NULL);
    const int def = expected_default();
    ck_assert_int_eq(bp_net_threads(net), def);
    NT_EXPECT(bp_net_set_threads(net, -1), BP_ERR_ARG, "bp_net_set_threads", "n_threads (-1)");
    NT_EXPECT(bp_net_set_threads(net, BP_NET_MAX_THREADS + 1), BP_ERR_ARG, "bp_net_set_threads",
              "is not in [0, 64]");
    NT_EXPECT(bp_net_set_chunk_min(net, -1, 0), BP_ERR_ARG, "bp_net_set_chunk_min", "min_macs (-1) < 0");
    NT_EXPECT(bp_net_set_chunk_min(net, 0, -2), BP_ERR_ARG, "bp_net_set_chunk_min", "min_values (-2) < 0");
    ck_assert_int_eq(bp_net_threads(net), def);  /* unchanged by the errors */
    NT_OK(bp_net_set_threads(net, 3));
    NT_OK(bp_net_plan(net, 8));  /* 8 x 40 x 300 multiply-adds: nothing is cut */
    char buf[4096];
    NT_OK(bp_net_describe_plan(net, buf, sizeof buf, NULL));
    ck_assert_msg(strstr(buf, "threads: 3 ") && strstr(buf, "chunks of layer 0: forward 1 dZ 1 dW 1"), "%s", buf);
    NT_OK(bp_net_set_chunk_min(net, 1, 1));  /* every step cut, as far as its rows go */
    NT_OK(bp_net_describe_plan(net, buf, sizeof buf, NULL));
    ck_assert_msg(strstr(buf, "chunks of layer 0: forward 3 by features dZ 3 by rows dW 3 by features"), "%s", buf);
    ck_assert_msg(strstr(buf, "chunks of layer 2: forward 3 by rows dZ 3 by rows dX 3 by inputs dW 3 by features "
                              "loss 3 by rows"), "%s", buf);
    NT_OK(bp_net_set_chunk_min(net, 0, 0));  /* the defaults again */
    NT_OK(bp_net_plan(net, MB));
    ck_assert(cut_into(net, 3));
    NT_OK(bp_net_set_threads(net, 1));
    NT_OK(bp_net_describe_plan(net, buf, sizeof buf, NULL));
    ck_assert_msg(strstr(buf, "threads: 1 (the caller alone)") && strstr(buf, "forward 1 "), "%s", buf);
    NT_OK(bp_net_set_threads(net, 2));
    ck_assert(cut_into(net, 2));
    NT_OK(bp_net_set_threads(net, 0));
    ck_assert_int_eq(bp_net_threads(net), def);
    bp_net_destroy(net);
}
END_TEST

/* With the finite check on, an Inf made in a chunked forward pass is reported with its
 * layer, and the parameters are left as they were. */
START_TEST(test_finite_check)
{
    static data d;
    make_data(&d);
    bp_net *net = make_net(BP_F64, 2, NULL);
    NT_OK(bp_net_set_check_finite(net, 1));
    bp_layer_view v0, v;
    NT_OK(bp_net_layer(net, 0, &v0));
    NT_OK(bp_net_layer(net, 1, &v));
    ((double *)v0.b)[0] = 100;    /* layer 0's output 0 is > 80 for every sample ... */
    ((double *)v.W)[5 * 300] = 1e308;  /* ... so layer 1's z[5] overflows to +Inf */
    const size_t P = bp_net_n_params(net);
    double *before = nt_params_d(net);
    bp_optim *opt = nt_optim(net, BP_OPT_SGD, 0.1);
    NT_EXPECT(bp_optim_train_step(opt, net, MB, d.X, NIN, d.y, 0, NULL), BP_ERR_NONFINITE,
              "bp_optim_train_step", "layer 1");
    double *after = nt_params_d(net);
    ck_assert(memcmp(before, after, P * sizeof *after) == 0);
    free(before);
    free(after);
    bp_optim_destroy(opt);
    bp_net_destroy(net);
}
END_TEST

/* Inference (bp_net_forward) cut into chunks, into an output with a leading dimension above
 * the width: the naive backend's outputs within tolerance, 1 and 3 threads within rounding,
 * 3 threads bitwise the same under load, and the padding untouched. */
START_TEST(test_inference)
{
    static data d;
    make_data(&d);
    enum { LDY = 9, NOUT = 7 };
    static double Y[4][N * LDY];
    static const int threads[4] = {1, 3, 2, 3};
    load l;
    for (int v = 0; v < 4; v++) {
        bp_net *net = make_net(BP_F64, threads[v], NULL);
        if (v == 2)
            NT_OK(bp_net_set_backend(net, BP_BACKEND_NAIVE));
        for (int i = 0; i < N * LDY; i++)
            Y[v][i] = -12345.0;
        if (v == 3)
            load_start(&l);
        NT_OK(bp_net_forward(net, N, d.X, NIN, Y[v], LDY));
        if (v == 3)
            load_stop(&l);
        for (int r = 0; r < N; r++)
            for (int j = NOUT; j < LDY; j++)
                ck_assert_double_eq(Y[v][r * LDY + j], -12345.0);
        bp_net_destroy(net);
    }
    ck_assert_msg(memcmp(Y[1], Y[3], sizeof Y[1]) == 0, "3 threads: outputs differ under load");
    double ref = 0, diff = 0, diff13 = 0;
    for (int i = 0; i < N * LDY; i++) {
        ref = fmax(ref, fabs(Y[2][i]));
        diff = fmax(diff, fabs(Y[1][i] - Y[2][i]));
        diff13 = fmax(diff13, fabs(Y[1][i] - Y[0][i]));
    }
    const double tol = tu_tol(NIN + 300 + 260, nt_eps(BP_F64)) * ref;
    ck_assert_msg(diff <= tol, "outputs differ from naive by %g", diff);
    ck_assert_msg(diff13 <= tol, "1 and 3 threads: outputs differ by %g", diff13);
}
END_TEST

/* Three fused SGD steps of a fresh double network on two threads, and its parameters. */
typedef struct trained {
    const data *d;
    double *params;
    size_t n;
    bp_status st;
} trained;

static void *train_one(void *arg)
{
    trained *r = arg;
    bp_net *net = NULL;
    bp_optim *opt = NULL;
    const bp_optim_config cfg = bp_optim_defaults(BP_OPT_SGD, 0.05);
    r->st = bp_net_create(&net, BP_F64, NIN, NL, layers, BP_LOSS_SOFTMAX_XENT, NULL);
    if (r->st == BP_OK)
        r->st = bp_net_set_threads(net, 2);
    if (r->st == BP_OK)
        r->st = bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 9, 1);
    if (r->st == BP_OK)
        r->st = bp_net_plan(net, MB);
    if (r->st == BP_OK)
        r->st = bp_optim_create(&opt, net, &cfg);
    for (int s = 0; s < 3 && r->st == BP_OK; s++)
        r->st = bp_optim_train_step(opt, net, MB, r->d->X + (size_t)s * 8 * NIN, NIN, r->d->y + s * 8, 0, NULL);
    if (r->st == BP_OK) {
        r->n = bp_net_n_params(net);
        r->params = nt_memdup(bp_net_params(net), r->n * sizeof(double));
    }
    bp_optim_destroy(opt);
    bp_net_destroy(net);
    return NULL;
}

/* Independent networks, each with its own team, trained at the same time in two threads:
 * each ends bitwise where the same training alone ends (BLAS runs on one thread inside
 * each call, so a product is computed the same way whoever else runs). */
START_TEST(test_independent_networks)
{
    static data d;
    make_data(&d);
    trained alone = {&d, NULL, 0, BP_OK}, both[2] = {{&d, NULL, 0, BP_OK}, {&d, NULL, 0, BP_OK}};
    train_one(&alone);
    NT_OK(alone.st);
    pthread_t th[2];
    for (int k = 0; k < 2; k++)
        ck_assert_int_eq(pthread_create(&th[k], NULL, train_one, &both[k]), 0);
    for (int k = 0; k < 2; k++)
        ck_assert_int_eq(pthread_join(th[k], NULL), 0);
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(both[k].st, BP_OK);
        ck_assert_uint_eq(both[k].n, alone.n);
        ck_assert_msg(memcmp(both[k].params, alone.params, alone.n * sizeof(double)) == 0,
                      "thread %d: parameters differ from the lone run by %g (normwise)", k,
                      nt_err(both[k].params, alone.params, alone.n));
        free(both[k].params);
    }
    free(alone.params);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("team");
    TCase *tc = tcase_create("team");
    tcase_add_test(tc, test_gradient_vs_naive);
    tcase_add_test(tc, test_bitwise_under_load);
    tcase_add_test(tc, test_thread_counts_agree);
    tcase_add_test(tc, test_no_allocation_in_step);
    tcase_add_test(tc, test_settings);
    tcase_add_test(tc, test_finite_check);
    tcase_add_test(tc, test_inference);
    tcase_add_test(tc, test_independent_networks);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
