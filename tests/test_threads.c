/* SPDX-License-Identifier: MIT */
/* test_threads.c: a network's threads (bp_net_set_threads) on small layers cut into as many chunks
 * as their rows and columns allow (bp_net_set_chunk_min 1): same gradients as one thread,
 * deterministic for a thread count, no allocation in a step, errors raised in helper threads,
 * OpenBLAS's thread count never left changed. */
#define _POSIX_C_SOURCE 200809L  /* cblas.h: BLIS's needs the pthread types */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "nettest_util.h"

enum { NIN = 13, N = 57 };

static const bp_layer_spec layers[] = {
    {17, BP_ACT_TANH, 0}, {11, BP_ACT_GELU, 0}, {5, BP_ACT_IDENTITY, 0}};

typedef struct data {
    double Xd[N * NIN];
    float Xs[N * NIN];
    int32_t y[N];
} data;

static void make_data(data *d)
{
    nt_fill_xy(11, N * NIN, d->Xd, d->Xs, N, d->y, 5);
}

static bp_net *make_net(bp_dtype dtype, bp_int mb, int threads, const bp_allocator *a)
{
    bp_net *net = NULL;
    ck_assert_int_eq(bp_net_create(&net, dtype, NIN, 3, layers, BP_LOSS_SOFTMAX_XENT, a), BP_OK);
    ck_assert_int_eq(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 5, 1), BP_OK);
    ck_assert_int_eq(bp_net_plan(net, mb), BP_OK);
    ck_assert_int_eq(bp_net_set_threads(net, threads), BP_OK);
    ck_assert_int_eq(bp_net_set_chunk_min(net, 1, 1), BP_OK);
    ck_assert_int_eq(bp_net_threads(net), threads);
    return net;
}

static double max_abs(const double *a, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(a[i]));
    return m;
}

/* max |a_i - b_i| over n elements. */
static double max_diff(const double *a, const double *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

/* Double: the gradient with 2, 3 and 4 workers equals one thread's within 1e-14 normwise
 * (sums in another order), for micro-batches that split evenly or not, and n below mb. */
START_TEST(test_same_gradient)
{
    static data d;
    make_data(&d);
    static const bp_int mbs[] = {8, 57, 100, 5};
    for (size_t k = 0; k < sizeof mbs / sizeof *mbs; k++) {
        bp_net *one = make_net(BP_F64, mbs[k], 1, NULL);
        double l1, lt;
        ck_assert_int_eq(bp_net_loss_and_grad(one, N, d.Xd, NIN, d.y, 0, &l1), BP_OK);
        const size_t P = bp_net_n_params(one);
        const double *g1 = bp_net_grads(one);
        for (int t = 2; t <= 4; t++) {
            bp_net *many = make_net(BP_F64, mbs[k], t, NULL);
            ck_assert_int_eq(bp_net_loss_and_grad(many, N, d.Xd, NIN, d.y, 0, &lt), BP_OK);
            const double diff = max_diff(bp_net_grads(many), g1, P);
            ck_assert_msg(diff <= 1e-14 * max_abs(g1, P), "mb %d, %d threads: gradient differs by %g",
                          (int)mbs[k], t, diff);
            ck_assert_msg(fabs(lt - l1) <= 1e-14 * fabs(l1), "loss %.17g vs %.17g", lt, l1);
            bp_net_destroy(many);
        }
        bp_net_destroy(one);
    }
}
END_TEST

/* Same thread count, same seed: bitwise the same parameters after training with shuffling. */
START_TEST(test_deterministic)
{
    static data d;
    make_data(&d);
    float params[2][2000];
    size_t P = 0;
    for (int run = 0; run < 2; run++) {
        bp_net *net = make_net(BP_F32, 16, 2, NULL);
        bp_optim *opt = nt_optim(net, BP_OPT_ADAM, 0.01);
        bp_train_config tc = {.epochs = 3, .batch_size = 20, .seed = 9, .shuffle = 1};
        ck_assert_int_eq(bp_train(net, opt, N, d.Xs, NIN, d.y, 0, &tc), BP_OK);
        P = bp_net_n_params(net);
        ck_assert_uint_le(P, 2000);
        memcpy(params[run], bp_net_params(net), P * sizeof(float));
        bp_optim_destroy(opt);
        bp_net_destroy(net);
    }
    ck_assert(memcmp(params[0], params[1], P * sizeof(float)) == 0);
}
END_TEST

/* Threads and arenas are allocated by set_threads and plan; a step allocates nothing. */
START_TEST(test_no_allocation_in_step)
{
    static data d;
    make_data(&d);
    nt_counter cnt = nt_counter_make();
    const bp_allocator a = nt_allocator(&cnt);
    bp_net *net = make_net(BP_F32, 16, 2, &a);
    bp_optim *opt = nt_optim(net, BP_OPT_MOMENTUM, 0.01);
    const long before = cnt.allocs;
    double loss;
    for (int s = 0; s < 5; s++) {
        ck_assert_int_eq(bp_net_loss_and_grad(net, N, d.Xs, NIN, d.y, 0, &loss), BP_OK);
        ck_assert_int_eq(bp_optim_step(opt, net), BP_OK);
    }
    ck_assert_int_eq(bp_net_loss_and_grad(net, 1, d.Xs, NIN, d.y, 0, &loss), BP_OK);
    ck_assert_int_eq(cnt.allocs, before);
    bp_optim_destroy(opt);
    bp_net_destroy(net);
    ck_assert_int_eq(cnt.allocs, cnt.frees);
}
END_TEST

/* A 2-worker network with the finite check on, planned for 20, and data whose row 15 (in
 * worker 1's share of rows 0..19) makes z = 1e300 x 1e300 overflow to +Inf in layer 0 (a
 * ReLU layer, so it stays infinite); every other row stays finite. */
static bp_net *poisoned_net(data *d)
{
    static const bp_layer_spec relu_layers[] = {{7, BP_ACT_RELU, 0}, {5, BP_ACT_IDENTITY, 0}};
    bp_net *net = NULL;
    make_data(d);
    ck_assert_int_eq(bp_net_create(&net, BP_F64, NIN, 2, relu_layers, BP_LOSS_SOFTMAX_XENT, NULL), BP_OK);
    ck_assert_int_eq(bp_net_plan(net, 20), BP_OK);
    ck_assert_int_eq(bp_net_set_threads(net, 2), BP_OK);
    ck_assert_int_eq(bp_net_set_chunk_min(net, 1, 1), BP_OK);
    ck_assert_int_eq(bp_net_set_check_finite(net, 1), BP_OK);
    d->Xd[15 * NIN + 3] = 1e300;
    bp_layer_view v;
    ck_assert_int_eq(bp_net_layer(net, 0, &v), BP_OK);
    ((double *)v.W)[3] = 1e300;
    nt_reset_error();
    return net;
}

/* A NaN met by worker 1 (the second share of the batch) is reported to the caller, with
 * the layer named, although the message was raised in another thread. */
START_TEST(test_worker_error)
{
    static data d;
    bp_net *net = poisoned_net(&d);
    double loss;
    ck_assert_int_eq(bp_net_loss_and_grad(net, N, d.Xd, NIN, d.y, 0, &loss), BP_ERR_NONFINITE);
    ck_assert_msg(strstr(bp_last_error(), "bp_net_loss_and_grad: layer 0") != NULL, "message: %s",
                  bp_last_error());
    bp_net_destroy(net);
}
END_TEST

/* Inference with 2 and 3 workers (each runs the network on its share of the rows) gives
 * one thread's outputs within 1e-14 (double; the GEMMs are blocked by rows), the same
 * accuracy and confusion counts, for micro-batches that split evenly or not, a batch of
 * one and a leading dimension above n_out; and repeats bitwise. */
START_TEST(test_inference)
{
    static data d;
    make_data(&d);
    enum { LDY = 7 };
    static double y1[N * LDY], yt[N * LDY], again[N * LDY];
    static const bp_int mbs[] = {8, 57, 100, 5};
    for (size_t k = 0; k < sizeof mbs / sizeof *mbs; k++) {
        bp_net *one = make_net(BP_F64, mbs[k], 1, NULL);
        double acc1, acct;
        int64_t conf1[25], conft[25];
        ck_assert_int_eq(bp_net_forward(one, N, d.Xd, NIN, y1, LDY), BP_OK);
        ck_assert_int_eq(bp_net_accuracy(one, N, d.Xd, NIN, d.y, &acc1, conf1), BP_OK);
        for (int T = 2; T <= 3; T++) {
            bp_net *net = make_net(BP_F64, mbs[k], T, NULL);
            memset(yt, 0, sizeof yt);
            ck_assert_int_eq(bp_net_forward(net, N, d.Xd, NIN, yt, LDY), BP_OK);
            double err = 0;
            for (int i = 0; i < N; i++)
                for (int j = 0; j < 5; j++)
                    err = fmax(err, fabs(yt[i * LDY + j] - y1[i * LDY + j]));
            ck_assert_msg(err <= 1e-14 * max_abs(y1, N * LDY), "mb %d, %d threads: outputs differ by %g",
                          (int)mbs[k], T, err);
            for (int i = 0; i < N; i++)  /* the padding columns are not written */
                ck_assert(yt[i * LDY + 5] == 0 && yt[i * LDY + 6] == 0);
            ck_assert_int_eq(bp_net_forward(net, N, d.Xd, NIN, again, LDY), BP_OK);
            ck_assert(memcmp(yt, again, sizeof yt) == 0);
            ck_assert_int_eq(bp_net_forward(net, 1, d.Xd + 3 * NIN, NIN, again, LDY), BP_OK);
            for (int j = 0; j < 5; j++)
                ck_assert(fabs(again[j] - y1[3 * LDY + j]) <= 1e-14 * max_abs(y1, N * LDY));
            ck_assert_int_eq(bp_net_accuracy(net, N, d.Xd, NIN, d.y, &acct, conft), BP_OK);
            ck_assert(acct == acc1);
            ck_assert(memcmp(conf1, conft, sizeof conf1) == 0);
            bp_net_destroy(net);
        }
        bp_net_destroy(one);
    }
}
END_TEST

/* A NaN produced in inference by worker 1's rows is reported, naming the pass and layer. */
START_TEST(test_inference_worker_error)
{
    static data d;
    bp_net *net = poisoned_net(&d);
    static double y[N * 5];
    ck_assert_int_eq(bp_net_forward(net, 20, d.Xd, NIN, y, 5), BP_ERR_NONFINITE);
    ck_assert_msg(strstr(bp_last_error(), "bp_net_forward: layer 0") != NULL, "message: %s", bp_last_error());
    /* Rows 0..9 alone are worker 0's and 1's shares of a clean batch. */
    ck_assert_int_eq(bp_net_forward(net, 10, d.Xd, NIN, y, 5), BP_OK);
    bp_net_destroy(net);
}
END_TEST

/* A one-layer network (logistic regression) on 2 workers: its only layer is the last, so
 * its backward goes by rows and its dW, db (or fused W update) wait for a barrier before
 * grads_ready. Gradients and fused SGD steps equal one thread's within 1e-13. */
START_TEST(test_one_layer)
{
    static data d;
    make_data(&d);
    static const bp_layer_spec one[] = {{5, BP_ACT_IDENTITY, 0}};
    bp_net *net[2];
    bp_optim *opt[2];
    const bp_optim_config c = bp_optim_defaults(BP_OPT_SGD, 0.5);
    for (int k = 0; k < 2; k++) {
        net[k] = NULL;
        ck_assert_int_eq(bp_net_create(&net[k], BP_F64, NIN, 1, one, BP_LOSS_SOFTMAX_XENT, NULL), BP_OK);
        ck_assert_int_eq(bp_net_init(net[k], BP_INIT_GLOROT_UNIFORM, 9, 1), BP_OK);
        ck_assert_int_eq(bp_net_plan(net[k], N), BP_OK);
        ck_assert_int_eq(bp_net_set_threads(net[k], k + 1), BP_OK);
        ck_assert_int_eq(bp_net_set_chunk_min(net[k], 1, 1), BP_OK);
        ck_assert_int_eq(bp_optim_create(&opt[k], net[k], &c), BP_OK);
    }
    const size_t P = bp_net_n_params(net[0]);
    double l0, l1;
    ck_assert_int_eq(bp_net_loss_and_grad(net[0], N, d.Xd, NIN, d.y, 0, &l0), BP_OK);
    ck_assert_int_eq(bp_net_loss_and_grad(net[1], N, d.Xd, NIN, d.y, 0, &l1), BP_OK);
    const double *g0 = bp_net_grads(net[0]), *g1 = bp_net_grads(net[1]);
    const double err = max_diff(g0, g1, P);
    ck_assert_msg(err <= 1e-14 * max_abs(g0, P), "gradient differs by %g", err);
    ck_assert(fabs(l0 - l1) <= 1e-14 * fabs(l0));
    for (int s = 0; s < 20; s++)
        for (int k = 0; k < 2; k++)
            ck_assert_int_eq(bp_optim_train_step(opt[k], net[k], N, d.Xd, NIN, d.y, 0, NULL), BP_OK);
    const double *p0 = bp_net_params(net[0]), *p1 = bp_net_params(net[1]);
    const double perr = max_diff(p0, p1, P);
    ck_assert_msg(perr <= 1e-13 * max_abs(p0, P), "parameters differ by %g after 20 fused steps", perr);
    for (int k = 0; k < 2; k++) {
        bp_optim_destroy(opt[k]);
        bp_net_destroy(net[k]);
    }
}
END_TEST

#ifdef OPENBLAS_VERSION
/* bp_train's on_batch callback runs inside the call: it sees the count as the library holds it. */
static void note_blas_threads(long epoch, long batch, long n_batches, double loss, void *ctx)
{
    (void)epoch;
    (void)batch;
    (void)n_batches;
    (void)loss;
    int *seen = ctx;
    *seen = openblas_get_num_threads() > *seen ? openblas_get_num_threads() : *seen;
}
#endif

/* OpenBLAS's count is 1 while a call runs (BLAS on the calling thread inside each chunk) and
 * is the host's again when every call returns, whatever the host set, for one thread and
 * several; bad counts are refused. */
START_TEST(test_blas_threads)
{
#ifdef OPENBLAS_VERSION
    static data d;
    make_data(&d);
    static const int host[] = {2, 3, 1};
    for (int h = 0; h < 3; h++)
        for (int threads = 1; threads <= 2; threads++) {
            openblas_set_num_threads(host[h]);
            bp_net *net = make_net(BP_F32, 8, threads, NULL);
            bp_optim *opt = nt_optim(net, BP_OPT_ADAM, 0.01);
            ck_assert_int_eq(bp_net_loss_and_grad(net, N, d.Xs, NIN, d.y, 0, NULL), BP_OK);
            ck_assert_int_eq(openblas_get_num_threads(), host[h]);
            ck_assert_int_eq(bp_optim_step(opt, net), BP_OK);
            ck_assert_int_eq(openblas_get_num_threads(), host[h]);
            int seen = 0;
            bp_train_config tc = {.epochs = 1, .batch_size = 16, .shuffle = 1, .seed = 1,
                                  .on_batch = note_blas_threads, .ctx = &seen};
            ck_assert_int_eq(bp_train(net, opt, N, d.Xs, NIN, d.y, 0, &tc), BP_OK);
            ck_assert_int_eq(seen, 1);
            ck_assert_int_eq(openblas_get_num_threads(), host[h]);
            bp_optim_destroy(opt);
            bp_net_destroy(net);
            ck_assert_int_eq(openblas_get_num_threads(), host[h]);
        }
    openblas_set_num_threads(2);
#endif
    bp_net *n2 = make_net(BP_F32, 8, 1, NULL);
    nt_reset_error();
    ck_assert_int_eq(bp_net_set_threads(n2, -1), BP_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(bp_last_error(), "bp_net_set_threads: n_threads (-1)"));
    ck_assert_int_eq(bp_net_set_threads(n2, BP_NET_MAX_THREADS + 1), BP_ERR_ARG);
    ck_assert_int_eq(bp_net_set_threads(NULL, 2), BP_ERR_ARG);
    ck_assert_int_eq(bp_net_threads(n2), 1);
    ck_assert_int_eq(bp_net_set_threads(n2, 0), BP_OK);  /* one per processor */
    ck_assert_int_ge(bp_net_threads(n2), 1);
    char buf[4096];
    ck_assert_int_eq(bp_net_describe_plan(n2, buf, sizeof buf, NULL), BP_OK);
    ck_assert_ptr_nonnull(strstr(buf, "threads:"));
    bp_net_destroy(n2);
}
END_TEST

/* An optimizer step on a threaded network updates slice by slice with the same
 * element-wise arithmetic: bitwise the same parameters and state as one thread. */
START_TEST(test_update_slices)
{
    static const bp_optimizer kinds[] = {BP_OPT_SGD, BP_OPT_MOMENTUM, BP_OPT_ADAM, BP_OPT_ADAMW};
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        bp_net *one = make_net(BP_F64, 8, 1, NULL), *many = make_net(BP_F64, 8, 3, NULL);
        bp_optim *o1 = NULL, *o3 = NULL;
        bp_optim_config c = bp_optim_defaults(kinds[k], 0.05);
        c.weight_decay = 0.01;
        ck_assert_int_eq(bp_optim_create(&o1, one, &c), BP_OK);
        ck_assert_int_eq(bp_optim_create(&o3, many, &c), BP_OK);
        const size_t P = bp_net_n_params(one);
        tu_rng r = tu_rng_make(3 + k);
        for (int step = 0; step < 3; step++) {
            double *g1 = bp_net_grads(one), *g3 = bp_net_grads(many);
            for (size_t q = 0; q < P; q++)
                g1[q] = g3[q] = tu_unif(&r, -1, 1);
            ck_assert_int_eq(bp_optim_step(o1, one), BP_OK);
            ck_assert_int_eq(bp_optim_step(o3, many), BP_OK);
        }
        ck_assert_msg(memcmp(bp_net_params(one), bp_net_params(many), P * sizeof(double)) == 0,
                      "optimizer %d: parameters differ", (int)kinds[k]);
        ck_assert_int_eq(bp_optim_steps(o3), 3);
        bp_optim_destroy(o1);
        bp_optim_destroy(o3);
        bp_net_destroy(one);
        bp_net_destroy(many);
    }
}
END_TEST

/* A softmax hidden layer needs whole rows: with few samples (features split) worker 0
 * computes it alone, with many (samples split) each worker its rows. Both equal one thread. */
START_TEST(test_softmax_hidden)
{
    static const bp_layer_spec sm[] = {{9, BP_ACT_SOFTMAX, 0}, {6, BP_ACT_RELU, 0}, {5, BP_ACT_IDENTITY, 0}};
    static data d;
    make_data(&d);
    static const bp_int mbs[] = {4, 57};
    for (size_t k = 0; k < 2; k++) {
        bp_net *net[2] = {NULL, NULL};
        double loss[2];
        for (int v = 0; v < 2; v++) {
            ck_assert_int_eq(bp_net_create(&net[v], BP_F64, NIN, 3, sm, BP_LOSS_SOFTMAX_XENT, NULL), BP_OK);
            ck_assert_int_eq(bp_net_init(net[v], BP_INIT_GLOROT_UNIFORM, 8, 1), BP_OK);
            ck_assert_int_eq(bp_net_plan(net[v], mbs[k]), BP_OK);
            ck_assert_int_eq(bp_net_set_threads(net[v], v ? 2 : 1), BP_OK);
            ck_assert_int_eq(bp_net_set_chunk_min(net[v], 1, 1), BP_OK);
            ck_assert_int_eq(bp_net_loss_and_grad(net[v], N, d.Xd, NIN, d.y, 0, &loss[v]), BP_OK);
        }
        const size_t P = bp_net_n_params(net[0]);
        const double *g1 = bp_net_grads(net[0]);
        const double diff = max_diff(g1, bp_net_grads(net[1]), P);
        ck_assert_msg(diff <= 1e-14 * max_abs(g1, P), "mb %d: gradient differs by %g", (int)mbs[k], diff);
        ck_assert(fabs(loss[0] - loss[1]) <= 1e-14 * fabs(loss[0]));
        bp_net_destroy(net[0]);
        bp_net_destroy(net[1]);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("threads");
    tcase_add_test(tc, test_same_gradient);
    tcase_add_test(tc, test_deterministic);
    tcase_add_test(tc, test_no_allocation_in_step);
    tcase_add_test(tc, test_worker_error);
    tcase_add_test(tc, test_blas_threads);
    tcase_add_test(tc, test_update_slices);
    tcase_add_test(tc, test_softmax_hidden);
    tcase_add_test(tc, test_inference);
    tcase_add_test(tc, test_inference_worker_error);
    tcase_add_test(tc, test_one_layer);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
