/* SPDX-License-Identifier: MIT */
/* test_train.c: the training helper (convergence, callbacks, epoch reports, stopping, bad configs),
 * multinomial logistic regression (Newton against first-order) and RMSE. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nettest_util.h"
#include "testutil.h"

static const bp_dtype DTYPES[2] = {BP_F32, BP_F64};

/* ---- data --------------------------------------------------------------------------------- */

/* K Gaussian blobs in n_in dimensions: centres on a circle of radius 2.5 in the first two
 * dimensions, noise 0.5 in every dimension, so the classes are separable far beyond 95 %.
 * X has leading dimension ldx (padding NaN); values are exact in float. */
typedef struct blobs {
    bp_dtype dt;
    int n, n_in, ldx, k;
    double *Xd;
    int32_t *labels;
    void *X;
} blobs;

static blobs make_blobs(bp_dtype dt, int n, int n_in, int ldx, int k, uint64_t seed)
{
    tu_rng r = tu_rng_make(seed);
    blobs b = {dt, n, n_in, ldx, k, tu_alloc((size_t)n * (size_t)ldx), malloc((size_t)n * sizeof(int32_t)), NULL};
    ck_assert_ptr_nonnull(b.labels);
    for (int i = 0; i < n; i++) {
        const int c = i % k;
        b.labels[i] = c;
        for (int j = 0; j < n_in; j++) {
            const double centre = j == 0 ? 2.5 * cos(6.283185307179586 * c / k)
                                  : j == 1 ? 2.5 * sin(6.283185307179586 * c / k) : 0;
            b.Xd[(size_t)i * (size_t)ldx + (size_t)j] = (double)(float)(centre + 0.5 * nt_normal(&r));
        }
    }
    b.X = nt_from_d(dt, b.Xd, (size_t)n * (size_t)ldx);
    return b;
}

static void free_blobs(blobs *b)
{
    free(b->Xd);
    free(b->labels);
    free(b->X);
}

static const void *row_of(bp_dtype dt, const void *X, int ld, int i)
{
    return (const char *)X + (size_t)i * (size_t)ld * nt_esize(dt);
}

/* ---- what the callbacks see ----------------------------------------------------------------- */

enum { MAX_EPOCHS = 64 };

/* Callbacks record; the test asserts afterwards (an assertion inside a callback would leave
 * bp_train's permutation unfreed when Check runs without fork). */
typedef struct trace {
    int n, bs;                /* samples and batch size, to know each batch's size */
    long n_batches;           /* expected per epoch */
    long stop_at;             /* on_epoch returns nonzero at this epoch (0: never) */
    long epochs, batches;     /* calls seen */
    long batch_in_epoch;
    int order_ok;             /* epoch and batch numbers arrive 1, 2, ... */
    double batch_loss_sum;    /* sum over the epoch's batches of loss x batch size */
    double worst_mean_err;    /* max over epochs of |report loss - that sum / n| / report loss */
    double loss[MAX_EPOCHS + 1], metric[MAX_EPOCHS + 1], seconds[MAX_EPOCHS + 1], sps[MAX_EPOCHS + 1];
    /* Full-batch runs: the loss and metric each epoch must report, measured by the test on
     * the parameters the epoch starts from (see test_epoch_report_values). */
    bp_net *net;
    const void *X, *targets;
    int ldx, ldt;
    double expect_loss[MAX_EPOCHS + 2], expect_metric[MAX_EPOCHS + 2];
    int measure_ok;
} trace;

static trace trace_make(int n, int bs)
{
    trace t;
    memset(&t, 0, sizeof t);
    t.n = n;
    t.bs = bs;
    t.n_batches = (n + bs - 1) / bs;
    t.order_ok = 1;
    t.measure_ok = 1;
    return t;
}

static void on_batch(long epoch, long batch, long n_batches, double loss, void *ctx)
{
    trace *t = ctx;
    if (epoch != t->epochs + 1 || batch != t->batch_in_epoch + 1 || n_batches != t->n_batches)
        t->order_ok = 0;
    t->batch_in_epoch = batch;
    t->batches++;
    const int m = batch < n_batches ? t->bs : t->n - (int)(n_batches - 1) * t->bs;
    t->batch_loss_sum += loss * m;
}

/* Measures the mean loss and the metric (accuracy or RMSE) of the whole data on the current
 * parameters into slot e. */
static void measure(trace *t, long e)
{
    const int mse = bp_net_loss(t->net) == BP_LOSS_MSE;
    double l = NAN, m = NAN;
    if (bp_net_loss_and_grad(t->net, t->n, t->X, t->ldx, t->targets, t->ldt, &l) != BP_OK)
        t->measure_ok = 0;
    if ((mse ? bp_net_rmse(t->net, t->n, t->X, t->ldx, t->targets, t->ldt, &m)
             : bp_net_accuracy(t->net, t->n, t->X, t->ldx, t->targets, &m, NULL)) != BP_OK)
        t->measure_ok = 0;
    t->expect_loss[e] = l;
    t->expect_metric[e] = m;
}

static int on_epoch(const bp_epoch_report *r, void *ctx)
{
    trace *t = ctx;
    if (r->epoch != t->epochs + 1 || t->batch_in_epoch != t->n_batches)
        t->order_ok = 0;
    t->epochs++;
    if (r->epoch >= 1 && r->epoch <= MAX_EPOCHS) {
        t->loss[r->epoch] = r->loss;
        t->metric[r->epoch] = r->metric;
        t->seconds[r->epoch] = r->seconds;
        t->sps[r->epoch] = r->samples_per_s;
    }
    const double err = fabs(r->loss - t->batch_loss_sum / t->n) / fmax(fabs(r->loss), 1e-300);
    t->worst_mean_err = fmax(t->worst_mean_err, err);
    t->batch_loss_sum = 0;
    t->batch_in_epoch = 0;
    if (t->net && r->epoch <= MAX_EPOCHS)
        measure(t, r->epoch + 1);
    return t->stop_at > 0 && r->epoch >= t->stop_at;
}

/* ---- bp_train ------------------------------------------------------------------------------- */

static const bp_layer_spec blob_layers[2] = {{16, BP_ACT_TANH, 0}, {3, BP_ACT_IDENTITY, 0}};

/* 3 separable classes, 300 samples (ldx 5 > n_in 4), batches of 32 over micro-batches of 8,
 * Adam, shuffling, 25 epochs: the reported accuracy reaches >= 0.95 (and bp_net_accuracy
 * afterwards too); the reported loss falls below half its first value; on_batch is called
 * ceil(300/32) = 10 times per epoch with increasing numbers; each report's loss is the mean of
 * the batch losses weighted by batch size (1e-12); times are non-negative. Loop: dtype. */
START_TEST(test_train_converges)
{
    const bp_dtype dt = DTYPES[_i];
    enum { N = 300, NIN = 4, LDX = 5, BS = 32, EPOCHS = 25 };
    blobs d = make_blobs(dt, N, NIN, LDX, 3, 501);
    bp_net *net = nt_net(dt, NIN, 2, blob_layers, BP_LOSS_SOFTMAX_XENT, NULL);
    NT_OK(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 502, 1));
    NT_OK(bp_net_plan(net, 8));
    bp_optim *opt = nt_optim(net, BP_OPT_ADAM, 0.01);
    trace t = trace_make(N, BS);
    const bp_train_config tc = {.epochs = EPOCHS, .batch_size = BS, .seed = 503, .shuffle = 1,
                                .on_epoch = on_epoch, .on_batch = on_batch, .ctx = &t};
    NT_OK(bp_train(net, opt, N, d.X, LDX, d.labels, 0, &tc));
    ck_assert_int_eq(t.epochs, EPOCHS);
    ck_assert_msg(t.order_ok, "callbacks out of order or with wrong counts");
    ck_assert_int_eq(t.batches, EPOCHS * 10);
    ck_assert_int_eq(bp_optim_steps(opt), EPOCHS * 10);
    ck_assert_msg(t.worst_mean_err < 1e-12, "%s: report loss vs the weighted mean of batch losses: %.3g",
                  nt_dtype_name(dt), t.worst_mean_err);
    ck_assert_msg(t.metric[EPOCHS] >= 0.95, "%s: final reported accuracy %.4f", nt_dtype_name(dt), t.metric[EPOCHS]);
    ck_assert_msg(t.loss[EPOCHS] < 0.5 * t.loss[1], "%s: loss %.4g after %d epochs, %.4g after the first",
                  nt_dtype_name(dt), t.loss[EPOCHS], EPOCHS, t.loss[1]);
    for (int e = 1; e <= EPOCHS; e++) {
        ck_assert_msg(t.metric[e] >= 0 && t.metric[e] <= 1, "epoch %d: accuracy %g", e, t.metric[e]);
        ck_assert_msg(t.seconds[e] >= 0 && t.sps[e] >= 0 && isfinite(t.loss[e]), "epoch %d: report", e);
    }
    double acc = NAN;
    NT_OK(bp_net_accuracy(net, N, d.X, LDX, d.labels, &acc, NULL));
    ck_assert_msg(acc >= 0.95, "%s: accuracy after training %.4f", nt_dtype_name(dt), acc);
    bp_optim_destroy(opt);
    bp_net_destroy(net);
    free_blobs(&d);
}
END_TEST

/* Full batches, no shuffling: an epoch is one step, so its report must give the loss and the
 * metric of the parameters it started from, which the test measures with bp_net_loss_and_grad
 * and bp_net_accuracy (xent: exactly equal) or bp_net_rmse (MSE: metric = RMSE, 1e-12) before
 * training and in each on_epoch. 100 samples over micro-batches of 16. */
START_TEST(test_epoch_report_values)
{
    const int mse = _i == 1;
    enum { N = 100, NIN = 4, EPOCHS = 6 };
    blobs d = make_blobs(BP_F64, N, NIN, NIN, 3, 511);
    double *T = tu_alloc((size_t)N * 2);
    for (int i = 0; i < N; i++) {
        T[2 * i] = sin(d.Xd[(size_t)i * NIN]);
        T[2 * i + 1] = 0.3 * d.Xd[(size_t)i * NIN + 1];
    }
    const bp_layer_spec layers[2] = {{8, BP_ACT_SIGMOID, 0}, {mse ? 2 : 3, BP_ACT_IDENTITY, 0}};
    bp_net *net = nt_net(BP_F64, NIN, 2, layers, mse ? BP_LOSS_MSE : BP_LOSS_SOFTMAX_XENT, NULL);
    NT_OK(bp_net_init(net, BP_INIT_GLOROT_NORMAL, 512, 1));
    NT_OK(bp_net_plan(net, 16));
    bp_optim *opt = nt_optim(net, BP_OPT_MOMENTUM, 0.1);
    trace t = trace_make(N, N);
    t.net = net;
    t.X = d.X;
    t.ldx = NIN;
    t.targets = mse ? (const void *)T : (const void *)d.labels;
    t.ldt = 2;
    measure(&t, 1);
    const bp_train_config tc = {.epochs = EPOCHS, .batch_size = N, .seed = 1, .shuffle = 0,
                                .on_epoch = on_epoch, .on_batch = on_batch, .ctx = &t};
    NT_OK(bp_train(net, opt, N, d.X, NIN, t.targets, 2, &tc));
    ck_assert_msg(t.measure_ok, "measuring inside on_epoch failed");
    ck_assert_int_eq(t.epochs, EPOCHS);
    for (int e = 1; e <= EPOCHS; e++) {
        ck_assert_msg(tu_rel(t.loss[e], t.expect_loss[e], TU_FLOOR) < 1e-12, "%s epoch %d: reported loss %.17g, "
                      "the loss of the parameters it started from %.17g", mse ? "mse" : "xent", e, t.loss[e], t.expect_loss[e]);
        if (mse)
            ck_assert_msg(tu_rel(t.metric[e], t.expect_metric[e], TU_FLOOR) < 1e-12,
                          "epoch %d: reported RMSE %.17g, bp_net_rmse %.17g", e, t.metric[e], t.expect_metric[e]);
        else
            ck_assert_msg(t.metric[e] == t.expect_metric[e], "epoch %d: reported accuracy %.17g, bp_net_accuracy %.17g",
                          e, t.metric[e], t.expect_metric[e]);
    }
    ck_assert_msg(t.loss[EPOCHS] < t.loss[1], "the loss did not decrease: %g -> %g", t.loss[1], t.loss[EPOCHS]);
    bp_optim_destroy(opt);
    bp_net_destroy(net);
    free(T);
    free_blobs(&d);
}
END_TEST

/* bp_train without shuffling = the hand-written loop of bp_net_loss_and_grad on consecutive
 * slices + bp_optim_step: 100 samples, batches of 16 (the last 4), micro-batches of 8,
 * Nesterov, 2 epochs; parameters to 1e-12 (double) / 1e-5 (float) normwise, epoch losses too.
 * Loop: dtype. */
START_TEST(test_train_manual_loop)
{
    const bp_dtype dt = DTYPES[_i];
    enum { N = 100, NIN = 4, LDX = 6, BS = 16, EPOCHS = 2 };
    blobs d = make_blobs(dt, N, NIN, LDX, 3, 521);
    bp_net *net[2];
    bp_optim *opt[2];
    for (int k = 0; k < 2; k++) {
        net[k] = nt_net(dt, NIN, 2, blob_layers, BP_LOSS_SOFTMAX_XENT, NULL);
        NT_OK(bp_net_init(net[k], BP_INIT_HE_UNIFORM, 522, 1));
        NT_OK(bp_net_plan(net[k], 8));
        opt[k] = nt_optim(net[k], BP_OPT_NESTEROV, 0.05);
    }
    trace t = trace_make(N, BS);
    const bp_train_config tc = {.epochs = EPOCHS, .batch_size = BS, .seed = 9, .shuffle = 0,
                                .on_epoch = on_epoch, .on_batch = on_batch, .ctx = &t};
    NT_OK(bp_train(net[0], opt[0], N, d.X, LDX, d.labels, 0, &tc));
    const double tol = dt == BP_F64 ? 1e-12 : 1e-5;
    for (int e = 1; e <= EPOCHS; e++) {
        double sum = 0;
        for (int start = 0; start < N; start += BS) {
            const int m = N - start < BS ? N - start : BS;
            double l = NAN;
            NT_OK(bp_net_loss_and_grad(net[1], m, row_of(dt, d.X, LDX, start), LDX, d.labels + start, 0, &l));
            NT_OK(bp_optim_step(opt[1], net[1]));
            sum += l * m;
        }
        ck_assert_msg(tu_rel(t.loss[e], sum / N, TU_FLOOR) <= tol, "%s epoch %d: bp_train loss %.10g, loop %.10g",
                      nt_dtype_name(dt), e, t.loss[e], sum / N);
    }
    double *p0 = nt_params_d(net[0]), *p1 = nt_params_d(net[1]);
    const double err = nt_err(p0, p1, bp_net_n_params(net[0]));
    ck_assert_msg(err <= tol, "%s: bp_train vs the hand-written loop: parameters differ by %.3g", nt_dtype_name(dt), err);
    free(p0);
    free(p1);
    for (int k = 0; k < 2; k++) {
        bp_optim_destroy(opt[k]);
        bp_net_destroy(net[k]);
    }
    free_blobs(&d);
}
END_TEST

/* A nonzero return from on_epoch at epoch 3 of 10 stops there: BP_OK, 3 reports, 3 x n_batches
 * batches and optimizer steps. */
START_TEST(test_train_stop)
{
    enum { N = 50, NIN = 4, BS = 16 };
    blobs d = make_blobs(BP_F64, N, NIN, NIN, 3, 531);
    bp_net *net = nt_net(BP_F64, NIN, 2, blob_layers, BP_LOSS_SOFTMAX_XENT, NULL);
    NT_OK(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 1, 1));
    NT_OK(bp_net_plan(net, 16));
    bp_optim *opt = nt_optim(net, BP_OPT_SGD, 0.1);
    trace t = trace_make(N, BS);
    t.stop_at = 3;
    const bp_train_config tc = {.epochs = 10, .batch_size = BS, .seed = 2, .shuffle = 1,
                                .on_epoch = on_epoch, .on_batch = on_batch, .ctx = &t};
    NT_OK(bp_train(net, opt, N, d.X, NIN, d.labels, 0, &tc));
    ck_assert_int_eq(t.epochs, 3);
    ck_assert_int_eq(t.batches, 3 * 4);
    ck_assert_int_eq(bp_optim_steps(opt), 3 * 4);
    ck_assert_msg(t.order_ok, "callbacks out of order");
    bp_optim_destroy(opt);
    bp_net_destroy(net);
    free_blobs(&d);
}
END_TEST

/* Sigmoid BCE with one output on blob 0 against the rest: the reported metric (correct / (n
 * n_out)) reaches >= 0.95, and bp_net_accuracy with 0/1 labels agrees. Loop: dtype. */
START_TEST(test_train_bce)
{
    const bp_dtype dt = DTYPES[_i];
    enum { N = 240, NIN = 3, EPOCHS = 20 };
    blobs d = make_blobs(dt, N, NIN, NIN, 3, 541);
    double *Td = tu_alloc(N);
    int32_t *lab = malloc(N * sizeof *lab);
    ck_assert_ptr_nonnull(lab);
    for (int i = 0; i < N; i++) {
        lab[i] = d.labels[i] == 0;
        Td[i] = lab[i];
    }
    void *T = nt_from_d(dt, Td, N);
    const bp_layer_spec layers[2] = {{8, BP_ACT_SOFTPLUS, 0}, {1, BP_ACT_IDENTITY, 0}};
    bp_net *net = nt_net(dt, NIN, 2, layers, BP_LOSS_SIGMOID_BCE, NULL);
    NT_OK(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 542, 1));
    NT_OK(bp_net_plan(net, 32));
    bp_optim *opt = nt_optim(net, BP_OPT_ADAMW, 0.02);
    trace t = trace_make(N, 20);
    const bp_train_config tc = {.epochs = EPOCHS, .batch_size = 20, .seed = 543, .shuffle = 1,
                                .on_epoch = on_epoch, .on_batch = on_batch, .ctx = &t};
    NT_OK(bp_train(net, opt, N, d.X, NIN, T, 1, &tc));
    ck_assert_msg(t.metric[EPOCHS] >= 0.95, "%s: final reported BCE accuracy %.4f", nt_dtype_name(dt), t.metric[EPOCHS]);
    double acc = NAN;
    NT_OK(bp_net_accuracy(net, N, d.X, NIN, lab, &acc, NULL));
    ck_assert_msg(acc >= 0.95, "%s: BCE accuracy after training %.4f", nt_dtype_name(dt), acc);
    bp_optim_destroy(opt);
    bp_net_destroy(net);
    free(T);
    free(Td);
    free(lab);
    free_blobs(&d);
}
END_TEST

/* Each bad argument of bp_train: BP_ERR_ARG naming it, no callback, no allocation, no step,
 * parameters untouched. */
START_TEST(test_train_bad)
{
    enum { N = 20, NIN = 4 };
    blobs d = make_blobs(BP_F64, N, NIN, NIN, 3, 551);
    nt_counter c = nt_counter_make();
    const bp_allocator a = nt_allocator(&c);
    bp_net *net = nt_net(BP_F64, NIN, 2, blob_layers, BP_LOSS_SOFTMAX_XENT, &a);
    bp_net *unplanned = nt_net(BP_F64, NIN, 2, blob_layers, BP_LOSS_SOFTMAX_XENT, &a);
    NT_OK(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 1, 1));
    NT_OK(bp_net_plan(net, 8));
    bp_optim *opt = nt_optim(net, BP_OPT_SGD, 0.1);
    const size_t bytes = bp_net_n_params(net) * sizeof(double);
    void *p0 = nt_memdup(bp_net_params(net), bytes);
    trace t = trace_make(N, 5);
    const bp_train_config good = {.epochs = 2, .batch_size = 5, .seed = 1, .shuffle = 1,
                                  .on_epoch = on_epoch, .on_batch = on_batch, .ctx = &t};
    bp_train_config tc = good;
    const long a0 = c.allocs;
    int32_t bad[N];
    memcpy(bad, d.labels, sizeof bad);
    bad[7] = 3;

    tc.epochs = 0;
    NT_EXPECT(bp_train(net, opt, N, d.X, NIN, d.labels, 0, &tc), BP_ERR_ARG, "bp_train", "epochs");
    tc = good;
    tc.epochs = -1;
    NT_EXPECT(bp_train(net, opt, N, d.X, NIN, d.labels, 0, &tc), BP_ERR_ARG, "bp_train", "epochs");
    tc = good;
    tc.batch_size = 0;
    NT_EXPECT(bp_train(net, opt, N, d.X, NIN, d.labels, 0, &tc), BP_ERR_ARG, "bp_train", "batch_size");
    NT_EXPECT(bp_train(net, NULL, N, d.X, NIN, d.labels, 0, &good), BP_ERR_ARG, "bp_train", "opt");
    NT_EXPECT(bp_train(net, opt, N, d.X, NIN, d.labels, 0, NULL), BP_ERR_ARG, "bp_train", "config");
    NT_EXPECT(bp_train(net, opt, N, NULL, NIN, d.labels, 0, &good), BP_ERR_ARG, "bp_train", "X");
    NT_EXPECT(bp_train(net, opt, N, d.X, NIN, NULL, 0, &good), BP_ERR_ARG, "bp_train", "targets");
    NT_EXPECT(bp_train(net, opt, N, d.X, NIN - 1, d.labels, 0, &good), BP_ERR_ARG, "bp_train", "ldx");
    NT_EXPECT(bp_train(net, opt, 0, d.X, NIN, d.labels, 0, &good), BP_ERR_ARG, "bp_train", "n");
    NT_EXPECT(bp_train(net, opt, N, d.X, NIN, bad, 0, &good), BP_ERR_ARG, "bp_train", "label 7");
    NT_EXPECT(bp_train(unplanned, opt, N, d.X, NIN, d.labels, 0, &good), BP_ERR_ARG, "bp_train", "plan");
    NT_EXPECT(bp_train(NULL, opt, N, d.X, NIN, d.labels, 0, &good), BP_ERR_ARG, "bp_train", "net");
    ck_assert_msg(t.epochs == 0 && t.batches == 0, "a rejected bp_train called back");
    ck_assert_msg(c.allocs == a0, "rejected bp_train calls allocated %ld times", c.allocs - a0);
    ck_assert_int_eq(bp_optim_steps(opt), 0);
    ck_assert_msg(memcmp(bp_net_params(net), p0, bytes) == 0, "a rejected bp_train changed the parameters");
    free(p0);
    bp_optim_destroy(opt);
    bp_net_destroy(net);
    bp_net_destroy(unplanned);
    ck_assert_int_eq(c.allocs, c.frees);
    free_blobs(&d);
}
END_TEST

/* ---- RMSE -------------------------------------------------------------------------------- */

/* An MSE regression net (2 -> tanh 16 -> 2, targets sin(x1) cos(x2) and x1 x2 / 2, ldt 3)
 * trained with bp_train: its RMSE falls below half the initial one, bp_net_rmse equals
 * sqrt(mean over all n x n_out elements of (y - t)^2) from bp_net_forward (1e-12 double,
 * nt_tol float), and every epoch's metric is sqrt of its loss. Loop: dtype. */
START_TEST(test_train_rmse)
{
    const bp_dtype dt = DTYPES[_i];
    enum { N = 150, NIN = 2, NOUT = 2, LDT = 3, EPOCHS = 40 };
    tu_rng r = tu_rng_make(561);
    double *Xd = tu_alloc(N * NIN), *Td = tu_alloc(N * LDT);
    tu_fill(&r, Xd, N, NIN, NIN, -2, 2);
    for (int i = 0; i < N; i++) {
        const double x1 = Xd[i * NIN], x2 = Xd[i * NIN + 1];
        Td[i * LDT] = (double)(float)(sin(x1) * cos(x2));
        Td[i * LDT + 1] = (double)(float)(x1 * x2 / 2);
    }
    void *X = nt_from_d(dt, Xd, N * NIN), *T = nt_from_d(dt, Td, N * LDT);
    const bp_layer_spec layers[2] = {{16, BP_ACT_TANH, 0}, {NOUT, BP_ACT_IDENTITY, 0}};
    bp_net *net = nt_net(dt, NIN, 2, layers, BP_LOSS_MSE, NULL);
    NT_OK(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 562, 1));
    NT_OK(bp_net_plan(net, 32));
    double before = NAN, after = NAN;
    NT_OK(bp_net_rmse(net, N, X, NIN, T, LDT, &before));
    bp_optim *opt = nt_optim(net, BP_OPT_ADAM, 0.02);
    trace t = trace_make(N, 25);
    const bp_train_config tc = {.epochs = EPOCHS, .batch_size = 25, .seed = 563, .shuffle = 1,
                                .on_epoch = on_epoch, .on_batch = on_batch, .ctx = &t};
    NT_OK(bp_train(net, opt, N, X, NIN, T, LDT, &tc));
    for (int e = 1; e <= EPOCHS; e++)
        ck_assert_msg(tu_rel(t.metric[e], sqrt(t.loss[e]), TU_FLOOR) < 1e-12, "%s epoch %d: metric %.17g, sqrt(loss) %.17g",
                      nt_dtype_name(dt), e, t.metric[e], sqrt(t.loss[e]));
    NT_OK(bp_net_rmse(net, N, X, NIN, T, LDT, &after));
    ck_assert_msg(after < 0.5 * before, "%s: RMSE %.4g before training, %.4g after", nt_dtype_name(dt), before, after);

    void *Y = malloc(N * NOUT * nt_esize(dt));
    ck_assert_ptr_nonnull(Y);
    NT_OK(bp_net_forward(net, N, X, NIN, Y, NOUT));
    double sum = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < NOUT; j++) {
            const double e = nt_get(dt, Y, (size_t)i * NOUT + j) - nt_get(dt, T, (size_t)i * LDT + j);
            sum += e * e;
        }
    const double manual = sqrt(sum / (N * NOUT));
    const double tol = dt == BP_F64 ? 1e-12 : nt_tol(net, N, FLT_EPSILON);
    ck_assert_msg(tu_rel(after, manual, TU_FLOOR) <= tol, "%s: bp_net_rmse %.10g, from forward %.10g", nt_dtype_name(dt),
                  after, manual);
    free(Y);
    free(X);
    free(T);
    free(Xd);
    free(Td);
    bp_optim_destroy(opt);
    bp_net_destroy(net);
}
END_TEST

/* ---- logistic regression ------------------------------------------------------------------ */

/* bp_logreg_create: n_classes < 2 refused (naming it, *out untouched); 2 and 3 give one
 * identity layer of n_classes outputs with the softmax cross-entropy loss. */
START_TEST(test_logreg_create)
{
    int marker;
    bp_net *const untouched = (bp_net *)(void *)&marker;
    bp_net *out = untouched;
    NT_EXPECT(bp_logreg_create(&out, BP_F64, 5, 1, NULL), BP_ERR_ARG, "bp_logreg_create", "n_classes");
    NT_EXPECT(bp_logreg_create(&out, BP_F64, 5, 0, NULL), BP_ERR_ARG, "bp_logreg_create", "n_classes");
    NT_EXPECT(bp_logreg_create(&out, BP_F64, 0, 3, NULL), BP_ERR_ARG, "bp_logreg_create", "n_in (0)");
    ck_assert_ptr_eq(out, untouched);
    for (int k = 2; k <= 3; k++) {
        bp_net *net = NULL;
        NT_OK(bp_logreg_create(&net, BP_F32, 5, k, NULL));
        ck_assert_int_eq(bp_net_n_layers(net), 1);
        ck_assert_int_eq(bp_net_n_out(net), k);
        ck_assert_int_eq(bp_net_loss(net), BP_LOSS_SOFTMAX_XENT);
        ck_assert_uint_eq(bp_net_n_params(net), (size_t)k * 6);
        bp_layer_view v;
        NT_OK(bp_net_layer(net, 0, &v));
        ck_assert_int_eq(v.act, BP_ACT_IDENTITY);
        bp_net_destroy(net);
    }
}
END_TEST

enum { LR_N = 200, LR_D = 5, LR_K = 3 };
#define LR_RIDGE 1e-2

/* Inputs U(-1.5, 1.5) and labels drawn from softmax(W* x + b*) of a random W*: overlapping
 * classes, a well-posed regularised problem. */
static void logreg_data(double *X, int32_t *labels)
{
    tu_rng r = tu_rng_make(571);
    double W[LR_K][LR_D + 1];
    for (int k = 0; k < LR_K; k++)
        for (int j = 0; j <= LR_D; j++)
            W[k][j] = tu_unif(&r, -2, 2);
    tu_fill(&r, X, LR_N, LR_D, LR_D, -1.5, 1.5);
    for (int i = 0; i < LR_N; i++) {
        double z[LR_K], zmax = -INFINITY, s = 0;
        for (int k = 0; k < LR_K; k++) {
            z[k] = W[k][LR_D];
            for (int j = 0; j < LR_D; j++)
                z[k] += W[k][j] * X[i * LR_D + j];
            zmax = fmax(zmax, z[k]);
        }
        for (int k = 0; k < LR_K; k++)
            s += exp(z[k] - zmax);
        double u = tu_unif(&r, 0, 1) * s;
        int c = 0;
        while (c < LR_K - 1 && (u -= exp(z[c] - zmax)) > 0)
            c++;
        labels[i] = c;
    }
}

/* max |gradient of the ridge-regularised mean loss| at the network's parameters, from
 * bp_net_loss_and_grad plus ridge theta (the ridge applies to W and b). */
static double ridge_grad_max(bp_net *net, const void *X, const int32_t *labels)
{
    NT_OK(bp_net_loss_and_grad(net, LR_N, X, LR_D, labels, 0, NULL));
    const bp_dtype dt = bp_net_dtype(net);
    double gmax = 0;
    for (size_t q = 0; q < bp_net_n_params(net); q++)
        gmax = fmax(gmax, fabs(nt_get(dt, bp_net_grads(net), q) + LR_RIDGE * nt_get(dt, bp_net_params(net), q)));
    return gmax;
}

/* Newton (d = 5, K = 3, n = 200, ridge 1e-2, from zero) converges within 20 iterations to
 * max|grad| < 1e-10, measured independently through the network; a second call from there
 * does 0 iterations and changes nothing. Full-batch gradient descent (bp_optim SGD, lr 1,
 * weight_decay = ridge, which is exactly the ridge's gradient on every parameter) run until
 * max|grad| < 1e-12 reaches the same parameters (normwise 1e-6). Newton on a float network
 * (it works in double) lands on the same optimum to float precision (1e-6). */
START_TEST(test_logreg_newton)
{
    double Xd[LR_N * LR_D];
    int32_t labels[LR_N];
    logreg_data(Xd, labels);
    bp_net *newton = NULL, *gd = NULL, *nf = NULL;
    NT_OK(bp_logreg_create(&newton, BP_F64, LR_D, LR_K, NULL));
    NT_OK(bp_logreg_create(&gd, BP_F64, LR_D, LR_K, NULL));
    NT_OK(bp_logreg_create(&nf, BP_F32, LR_D, LR_K, NULL));
    NT_OK(bp_net_plan(newton, 64));
    NT_OK(bp_net_plan(gd, LR_N));
    NT_OK(bp_net_plan(nf, 64));
    const size_t P = bp_net_n_params(newton);
    ck_assert_uint_eq(P, LR_K * (LR_D + 1));

    int iters = -1;
    NT_OK(bp_logreg_newton(newton, LR_N, Xd, LR_D, labels, LR_RIDGE, 20, 1e-10, &iters));
    ck_assert_msg(iters >= 1 && iters <= 20, "Newton took %d iterations", iters);
    const double gn = ridge_grad_max(newton, Xd, labels);
    ck_assert_msg(gn < 1e-10, "Newton stopped (%d iterations) at max|grad| %.3g", iters, gn);
    double *pn = nt_params_d(newton);
    NT_OK(bp_logreg_newton(newton, LR_N, Xd, LR_D, labels, LR_RIDGE, 20, 1e-10, &iters));
    ck_assert_msg(iters == 0, "from the optimum Newton did %d iterations", iters);
    ck_assert_msg(memcmp(pn, bp_net_params(newton), P * sizeof(double)) == 0, "from the optimum Newton moved");

    bp_optim *opt = NULL;
    bp_optim_config oc = bp_optim_defaults(BP_OPT_SGD, 1.0);
    oc.weight_decay = LR_RIDGE;
    NT_OK(bp_optim_create(&opt, gd, &oc));
    long steps = 0;
    double gg = INFINITY;
    while (steps < 40000 && (gg = ridge_grad_max(gd, Xd, labels)) >= 1e-12) {
        NT_OK(bp_optim_step(opt, gd)); /* the gradient buffer holds this point's gradient */
        steps++;
    }
    ck_assert_msg(gg < 1e-12, "gradient descent did not converge in %ld steps (max|grad| %.3g)", steps, gg);
    ck_assert_msg(steps >= 10, "gradient descent converged suspiciously fast (%ld steps)", steps);
    double *pg = nt_params_d(gd);
    const double e = nt_err(pn, pg, P);
    ck_assert_msg(e < 1e-6, "Newton vs %ld gradient-descent steps: parameters differ by %.3g (normwise)", steps, e);

    void *Xf = nt_from_d(BP_F32, Xd, LR_N * LR_D);
    NT_OK(bp_logreg_newton(nf, LR_N, Xf, LR_D, labels, LR_RIDGE, 20, 1e-10, &iters));
    double *pf = nt_params_d(nf);
    ck_assert_msg(nt_err(pf, pn, P) < 1e-6, "Newton on a float network vs double: %.3g", nt_err(pf, pn, P));

    free(pn);
    free(pg);
    free(pf);
    free(Xf);
    bp_optim_destroy(opt);
    bp_net_destroy(newton);
    bp_net_destroy(gd);
    bp_net_destroy(nf);
}
END_TEST

/* Above BP_LOGREG_NEWTON_MAX_PARAMS: BP_ERR_OVERFLOW naming the parameter count and the
 * Hessian's size, before any allocation, parameters untouched: 784 inputs x 10 classes
 * (7850 parameters) and the first size over the limit, 17 x 241 = 4097. */
START_TEST(test_logreg_newton_refuses)
{
    nt_counter c = nt_counter_make();
    const bp_allocator a = nt_allocator(&c);
    static const int dims[2][2] = {{784, 10}, {240, 17}};
    static const char *const want[2][2] = {{"7850 parameters", "7850 x 7850"}, {"4097 parameters", "4097 x 4097"}};
    for (int k = 0; k < 2; k++) {
        const int d = dims[k][0], K = dims[k][1];
        bp_net *net = NULL;
        NT_OK(bp_logreg_create(&net, BP_F32, d, K, &a));
        NT_OK(bp_net_plan(net, 4));
        float *X = calloc((size_t)4 * (size_t)d, sizeof *X);
        ck_assert_ptr_nonnull(X);
        const int32_t labels[4] = {0, 1, 2, 3};
        const size_t bytes = bp_net_n_params(net) * sizeof(float);
        float *p = bp_net_params(net);
        for (size_t q = 0; q < bp_net_n_params(net); q++)
            p[q] = 0.5f;
        void *p0 = nt_memdup(p, bytes);
        const long a0 = c.allocs;
        int iters = -7;
        NT_EXPECT(bp_logreg_newton(net, 4, X, d, labels, 1e-2, 10, 1e-8, &iters), BP_ERR_OVERFLOW, "bp_logreg_newton",
                  want[k][0]);
        ck_assert_msg(strstr(bp_last_error(), want[k][1]) != NULL, "the message does not give the Hessian's size: %s",
                      bp_last_error());
        ck_assert_int_eq(c.allocs, a0);
        ck_assert_int_eq(iters, -7);
        ck_assert_msg(memcmp(p, p0, bytes) == 0, "a refused Newton changed the parameters");
        free(p0);
        free(X);
        bp_net_destroy(net);
    }
    ck_assert_int_eq(c.allocs, c.frees);
}
END_TEST

/* Each bad argument of bp_logreg_newton: named, parameters and *iters untouched. */
START_TEST(test_logreg_newton_bad)
{
    double Xd[LR_N * LR_D];
    int32_t labels[LR_N], bad[LR_N];
    logreg_data(Xd, labels);
    memcpy(bad, labels, sizeof bad);
    bad[9] = LR_K;
    bp_net *net = NULL;
    NT_OK(bp_logreg_create(&net, BP_F64, LR_D, LR_K, NULL));
    NT_OK(bp_net_plan(net, 16));
    const bp_layer_spec two[2] = {{4, BP_ACT_TANH, 0}, {LR_K, BP_ACT_IDENTITY, 0}};
    bp_net *mlp = nt_net(BP_F64, LR_D, 2, two, BP_LOSS_SOFTMAX_XENT, NULL);
    NT_OK(bp_net_plan(mlp, 16));
    double *p = bp_net_params(net);
    for (size_t q = 0; q < bp_net_n_params(net); q++)
        p[q] = 0.1 * (double)q;
    const size_t bytes = bp_net_n_params(net) * sizeof(double);
    void *p0 = nt_memdup(p, bytes);
    int it = -7;
    NT_EXPECT(bp_logreg_newton(NULL, LR_N, Xd, LR_D, labels, LR_RIDGE, 20, 1e-10, &it), BP_ERR_ARG, "bp_logreg_newton", "net");
    NT_EXPECT(bp_logreg_newton(mlp, LR_N, Xd, LR_D, labels, LR_RIDGE, 20, 1e-10, &it), BP_ERR_ARG, "bp_logreg_newton", "logistic");
    NT_EXPECT(bp_logreg_newton(net, LR_N, Xd, LR_D, labels, 0, 20, 1e-10, &it), BP_ERR_ARG, "bp_logreg_newton", "ridge");
    NT_EXPECT(bp_logreg_newton(net, LR_N, Xd, LR_D, labels, -1, 20, 1e-10, &it), BP_ERR_ARG, "bp_logreg_newton", "ridge");
    NT_EXPECT(bp_logreg_newton(net, LR_N, Xd, LR_D, labels, NAN, 20, 1e-10, &it), BP_ERR_ARG, "bp_logreg_newton", "ridge");
    NT_EXPECT(bp_logreg_newton(net, LR_N, Xd, LR_D, labels, LR_RIDGE, 0, 1e-10, &it), BP_ERR_ARG, "bp_logreg_newton", "max_iter");
    NT_EXPECT(bp_logreg_newton(net, LR_N, Xd, LR_D, labels, LR_RIDGE, 20, -1, &it), BP_ERR_ARG, "bp_logreg_newton", "tol");
    NT_EXPECT(bp_logreg_newton(net, LR_N, Xd, LR_D, labels, LR_RIDGE, 20, NAN, &it), BP_ERR_ARG, "bp_logreg_newton", "tol");
    NT_EXPECT(bp_logreg_newton(net, 0, Xd, LR_D, labels, LR_RIDGE, 20, 1e-10, &it), BP_ERR_ARG, "bp_logreg_newton", "n");
    NT_EXPECT(bp_logreg_newton(net, LR_N, NULL, LR_D, labels, LR_RIDGE, 20, 1e-10, &it), BP_ERR_ARG, "bp_logreg_newton", "X");
    NT_EXPECT(bp_logreg_newton(net, LR_N, Xd, LR_D - 1, labels, LR_RIDGE, 20, 1e-10, &it), BP_ERR_ARG, "bp_logreg_newton", "ldx");
    NT_EXPECT(bp_logreg_newton(net, LR_N, Xd, LR_D, NULL, LR_RIDGE, 20, 1e-10, &it), BP_ERR_ARG, "bp_logreg_newton", "targets");
    NT_EXPECT(bp_logreg_newton(net, LR_N, Xd, LR_D, bad, LR_RIDGE, 20, 1e-10, &it), BP_ERR_ARG, "bp_logreg_newton", "label 9");
    Xd[11 * LR_D + 2] = NAN;
    NT_EXPECT(bp_logreg_newton(net, LR_N, Xd, LR_D, labels, LR_RIDGE, 20, 1e-10, &it), BP_ERR_NONFINITE, "bp_logreg_newton", "row 11");
    ck_assert_int_eq(it, -7);
    ck_assert_msg(memcmp(p, p0, bytes) == 0, "a rejected Newton changed the parameters");
    free(p0);
    bp_net_destroy(net);
    bp_net_destroy(mlp);
}
END_TEST

/* bp_logreg_newton with an allocator failing after k calls, for every k until it succeeds:
 * BP_ERR_NOMEM naming the Hessian, every block freed, parameters and *iters untouched. */
START_TEST(test_logreg_newton_nomem)
{
    double Xd[LR_N * LR_D];
    int32_t labels[LR_N];
    logreg_data(Xd, labels);
    nt_counter c = nt_counter_make();
    const bp_allocator a = nt_allocator(&c);
    bp_net *net = NULL;
    NT_OK(bp_logreg_create(&net, BP_F64, LR_D, LR_K, &a));
    NT_OK(bp_net_plan(net, 16));
    const size_t bytes = bp_net_n_params(net) * sizeof(double);
    void *p0 = nt_memdup(bp_net_params(net), bytes);
    long k = 0;
    for (;; k++) {
        const long live = c.allocs - c.frees;
        int it = -7;
        c.fail_after = c.allocs + k;
        nt_reset_error();
        const bp_status st = bp_logreg_newton(net, LR_N, Xd, LR_D, labels, LR_RIDGE, 20, 1e-10, &it);
        c.fail_after = -1;
        if (st == BP_OK)
            break;
        ck_assert_msg(st == BP_ERR_NOMEM && strncmp(bp_last_error(), "bp_logreg_newton: ", 18) == 0 &&
                          strstr(bp_last_error(), "Hessian") != NULL,
                      "Newton failing after %ld allocations: status %d, \"%s\"", k, (int)st, bp_last_error());
        ck_assert_msg(c.allocs - c.frees == live, "Newton failing after %ld allocations leaked %ld blocks", k,
                      c.allocs - c.frees - live);
        ck_assert_int_eq(it, -7);
        ck_assert_msg(memcmp(bp_net_params(net), p0, bytes) == 0, "a failed Newton changed the parameters");
        ck_assert_int_lt(k, 50);
    }
    ck_assert_int_gt(k, 0);
    free(p0);
    bp_net_destroy(net);
    ck_assert_int_eq(c.allocs, c.frees);
}
END_TEST

static Suite *train_suite(void)
{
    Suite *s = suite_create("train");
    TCase *t = tcase_create("train");
    tcase_add_loop_test(t, test_train_converges, 0, 2);
    tcase_add_loop_test(t, test_epoch_report_values, 0, 2);
    tcase_add_loop_test(t, test_train_manual_loop, 0, 2);
    tcase_add_test(t, test_train_stop);
    tcase_add_loop_test(t, test_train_bce, 0, 2);
    tcase_add_test(t, test_train_bad);
    tcase_add_loop_test(t, test_train_rmse, 0, 2);
    suite_add_tcase(s, t);

    TCase *l = tcase_create("logreg");
    tcase_add_test(l, test_logreg_create);
    tcase_add_test(l, test_logreg_newton);
    tcase_add_test(l, test_logreg_newton_refuses);
    tcase_add_test(l, test_logreg_newton_bad);
    tcase_add_test(l, test_logreg_newton_nomem);
    suite_add_tcase(s, l);
    return s;
}

int main(void)
{
    return tu_run_suite(train_suite());
}
