/* test_passes.c: a single worker's chunked element-wise passes and their pass helpers
 * (bp_net_set_pass_threads): the same gradient as the naive backend, bitwise the same
 * results for every number of pass threads, no allocation in a step, argument errors,
 * the finite check, and helpers started, stopped and restarted around plans. */
#define _GNU_SOURCE  /* sched_getaffinity */
#include <check.h>
#include <sched.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "nettest_util.h"

/* Layers 0 and 1 have >= 65536 values at a micro-batch of 300 (300 x 300, 300 x 260), so
 * their passes are chunked; layer 2 is thin (7 outputs), and its products have more than
 * 2^19 multiply-adds (300 x 260 x 7), so they run in two pieces each. GELU keeps Z; leaky
 * ReLU has an alpha. */
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

/* A planned network (micro-batch MB) with pass_threads set before the plan. */
static bp_net *make_net(bp_dtype dt, int pass_threads, const bp_allocator *a)
{
    bp_net *net = nt_net(dt, NIN, NL, layers, BP_LOSS_SOFTMAX_XENT, a);
    NT_OK(bp_net_set_pass_threads(net, pass_threads));
    ck_assert_int_eq(bp_net_pass_threads(net), pass_threads);
    NT_OK(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 9, 1));
    NT_OK(bp_net_plan(net, MB));
    return net;
}

/* Whether the plan description says helpers are running (and how many threads). */
static int helpers_running(const bp_net *net, int threads)
{
    char buf[4096], want[64];
    NT_OK(bp_net_describe_plan(net, buf, sizeof buf, NULL));
    snprintf(want, sizeof want, "pass threads: %d ", threads);
    return strstr(buf, want) != NULL;
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

/* 1, 2 and 3 pass threads give bitwise the same gradient, loss and, after three fused SGD
 * steps and three Adam steps, parameters, in both precisions. */
START_TEST(test_bitwise_across_pass_threads)
{
    static data d;
    make_data(&d);
    for (int dtv = 0; dtv < 2; dtv++) {
        const bp_dtype dt = dtv ? BP_F64 : BP_F32;
        const void *X = dtv ? (const void *)d.X : (const void *)d.Xs;
        void *ref_grad = NULL, *ref_params = NULL;
        double ref_loss = 0;
        for (int pt = 1; pt <= 3; pt++) {
            bp_net *net = make_net(dt, pt, NULL);
            ck_assert_msg(pt == 1 || helpers_running(net, pt), "%d pass threads: no helpers in the plan", pt);
            const size_t bytes = bp_net_n_params(net) * nt_esize(dt);
            double loss;
            NT_OK(bp_net_loss_and_grad(net, N, X, NIN, d.y, 0, &loss));
            void *grad = nt_memdup(bp_net_grads(net), bytes);
            bp_optim *sgd = nt_optim(net, BP_OPT_SGD, 0.05);
            for (int s = 0; s < 3; s++)
                NT_OK(bp_optim_train_step(sgd, net, MB, (const char *)X + (size_t)s * 8 * NIN * nt_esize(dt), NIN,
                                          d.y + s * 8, 0, NULL));
            bp_optim *adam = nt_optim(net, BP_OPT_ADAM, 0.01);
            for (int s = 0; s < 3; s++) {
                NT_OK(bp_net_loss_and_grad(net, N, X, NIN, d.y, 0, NULL));
                NT_OK(bp_optim_step(adam, net));
            }
            if (pt == 1) {
                ref_grad = grad;
                ref_params = nt_memdup(bp_net_params(net), bytes);
                ref_loss = loss;
            } else {
                ck_assert_msg(memcmp(grad, ref_grad, bytes) == 0, "%s, %d pass threads: gradient differs",
                              nt_dtype_name(dt), pt);
                ck_assert_msg(memcmp(bp_net_params(net), ref_params, bytes) == 0,
                              "%s, %d pass threads: parameters differ", nt_dtype_name(dt), pt);
                ck_assert_msg(loss == ref_loss, "loss %.17g vs %.17g", loss, ref_loss);
                free(grad);
            }
            bp_optim_destroy(adam);
            bp_optim_destroy(sgd);
            bp_net_destroy(net);
        }
        free(ref_grad);
        free(ref_params);
    }
}
END_TEST

/* Helpers are started by the plan (or by set_pass_threads on a planned network); steps with
 * them allocate nothing, and every allocation is freed with the network. */
START_TEST(test_no_allocation_in_step)
{
    static data d;
    make_data(&d);
    nt_counter cnt = nt_counter_make();
    const bp_allocator a = nt_allocator(&cnt);
    bp_net *net = make_net(BP_F32, 2, &a);
    ck_assert(helpers_running(net, 2));
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

/* Argument errors, the default (one per processor of the affinity mask), 0, and helpers stopped by 1,
 * started again on a planned network, not started for a plan too small to chunk. */
START_TEST(test_settings)
{
    NT_EXPECT(bp_net_set_pass_threads(NULL, 2), BP_ERR_ARG, "bp_net_set_pass_threads", "net is NULL");
    ck_assert_int_eq(bp_net_pass_threads(NULL), 0);
    bp_net *net = nt_net(BP_F64, NIN, NL, layers, BP_LOSS_SOFTMAX_XENT, NULL);
    cpu_set_t mask;
    ck_assert_int_eq(sched_getaffinity(0, sizeof mask, &mask), 0);
    long cpus = CPU_COUNT(&mask);
    cpus = cpus > BP_NET_MAX_THREADS ? BP_NET_MAX_THREADS : cpus;
    ck_assert_int_eq(bp_net_pass_threads(net), (int)cpus);
    NT_EXPECT(bp_net_set_pass_threads(net, -1), BP_ERR_ARG, "bp_net_set_pass_threads", "n_threads (-1)");
    NT_EXPECT(bp_net_set_pass_threads(net, BP_NET_MAX_THREADS + 1), BP_ERR_ARG, "bp_net_set_pass_threads",
              "is not in [0, 64]");
    ck_assert_int_eq(bp_net_pass_threads(net), (int)cpus);  /* unchanged by the errors */
    NT_OK(bp_net_set_pass_threads(net, 3));
    NT_OK(bp_net_plan(net, 8));  /* 8 x 300 values: no pass chunked, no helpers */
    ck_assert(!helpers_running(net, 3));
    NT_OK(bp_net_plan(net, MB));
    ck_assert(helpers_running(net, 3));
    NT_OK(bp_net_set_pass_threads(net, 1));
    ck_assert(!helpers_running(net, 3));
    NT_OK(bp_net_set_pass_threads(net, 2));
    ck_assert(helpers_running(net, 2));
    NT_OK(bp_net_set_pass_threads(net, 0));
    ck_assert_int_eq(bp_net_pass_threads(net), (int)cpus);
    /* A network on worker threads does not chunk: the plan says so. */
    NT_OK(bp_net_set_threads(net, 2));
    ck_assert(!helpers_running(net, (int)cpus));
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

/* Inference (bp_net_forward) with chunked passes and the thin layer's pieces, into an
 * output with a leading dimension above the width: the naive backend's outputs within
 * tolerance, bitwise the same for 1 and 3 pass threads, and the padding untouched. */
START_TEST(test_inference)
{
    static data d;
    make_data(&d);
    enum { LDY = 9, NOUT = 7 };
    static double Y[3][N * LDY];
    static const int pts[3] = {1, 3, 2};
    for (int v = 0; v < 3; v++) {
        bp_net *net = make_net(BP_F64, pts[v], NULL);
        if (v == 2)
            NT_OK(bp_net_set_backend(net, BP_BACKEND_NAIVE));
        for (int i = 0; i < N * LDY; i++)
            Y[v][i] = -12345.0;
        NT_OK(bp_net_forward(net, N, d.X, NIN, Y[v], LDY));
        for (int r = 0; r < N; r++)
            for (int j = NOUT; j < LDY; j++)
                ck_assert_double_eq(Y[v][r * LDY + j], -12345.0);
        bp_net_destroy(net);
    }
    ck_assert_msg(memcmp(Y[0], Y[1], sizeof Y[0]) == 0, "1 and 3 pass threads: outputs differ");
    double ref = 0, diff = 0;
    for (int i = 0; i < N * LDY; i++) {
        ref = fmax(ref, fabs(Y[2][i]));
        diff = fmax(diff, fabs(Y[1][i] - Y[2][i]));
    }
    ck_assert_msg(diff <= tu_tol(NIN + 300 + 260, nt_eps(BP_F64)) * ref, "outputs differ from naive by %g", diff);
}
END_TEST

/* Three fused SGD steps of a fresh double network with pass helpers, and its parameters. */
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
        r->st = bp_net_set_pass_threads(net, 2);
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

/* Independent networks, each with its own helpers, trained at the same time in two
 * threads: each ends where the same training on the calling thread alone ends (within
 * rounding: OpenBLAS may split a product differently while another call runs). */
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
        const double err = nt_err(both[k].params, alone.params, alone.n);
        ck_assert_msg(err <= 1e-12, "thread %d: parameters differ from the lone run by %g (normwise)", k, err);
        free(both[k].params);
    }
    free(alone.params);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("passes");
    TCase *tc = tcase_create("passes");
    tcase_add_test(tc, test_gradient_vs_naive);
    tcase_add_test(tc, test_bitwise_across_pass_threads);
    tcase_add_test(tc, test_no_allocation_in_step);
    tcase_add_test(tc, test_settings);
    tcase_add_test(tc, test_finite_check);
    tcase_add_test(tc, test_inference);
    tcase_add_test(tc, test_independent_networks);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
