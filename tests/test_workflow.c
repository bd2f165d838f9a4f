/* SPDX-License-Identifier: MIT */
/* test_workflow.c: what a trained model needs to predict: the network's own input standardisation
 * (against bp_dataset_standardize, bitwise), probabilities and classes, the forward-only loss, a
 * validation set with early stopping and best-weights restore, and a run continued from its
 * training state. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <backprop/io.h>
#include "nettest_util.h"
#include "testutil.h"

static const bp_dtype DTYPES[2] = {BP_F32, BP_F64};

enum { N = 53, NIN = 5, LDX = 7, K = 3 };

/* Raw inputs far from standard: feature j has mean 10 j - 7 and spread 1 + 3 j; feature 2 is
 * constant (its deviation 0: only centred). Labels depend on the first two features. Values are
 * exact in float. */
typedef struct data {
    bp_dtype dt;
    int n;
    double *Xd;
    void *X;        /* n x LDX, padding NaN */
    int32_t *labels;
} data;

static data make_data(bp_dtype dt, int n, uint64_t seed)
{
    tu_rng r = tu_rng_make(seed);
    data d = {dt, n, tu_alloc((size_t)n * LDX), NULL, malloc((size_t)n * sizeof(int32_t))};
    ck_assert_ptr_nonnull(d.labels);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < NIN; j++)
            d.Xd[(size_t)i * LDX + (size_t)j] = j == 2 ? 4.25 : (double)(float)(10.0 * j - 7 + (1 + 3 * j) * tu_unif(&r, -1, 1));
        const double a = d.Xd[(size_t)i * LDX] + 7, b = (d.Xd[(size_t)i * LDX + 1] - 3) / 4;
        d.labels[i] = a + b > 0.5 ? 2 : a - b > 0 ? 1 : 0;
    }
    d.X = nt_from_d(dt, d.Xd, (size_t)n * LDX);
    return d;
}

static void free_data(data *d)
{
    free(d->Xd);
    free(d->X);
    free(d->labels);
}

/* The same inputs standardised by bp_dataset_standardize, packed (leading dimension NIN), and the
 * statistics it reports. */
static void *standardised_copy(const data *d, double *mean, double *sd)
{
    const size_t es = nt_esize(d->dt);
    bp_dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.dtype = d->dt;
    ds.n = d->n;
    ds.n_features = NIN;
    ds.X = malloc((size_t)d->n * NIN * es);
    ck_assert_ptr_nonnull(ds.X);
    for (int i = 0; i < d->n; i++)
        memcpy((char *)ds.X + (size_t)i * NIN * es, (const char *)d->X + (size_t)i * LDX * es, NIN * es);
    NT_OK(bp_dataset_standardize(&ds, NULL, mean, sd));
    return ds.X;
}

static const bp_layer_spec LAYERS[2] = {{6, BP_ACT_TANH, 0}, {K, BP_ACT_IDENTITY, 0}};

/* Two networks with the same parameters: a (standardising) and b (plain), planned for micro-batches
 * of 8 on 2 threads with every step cut, so the staging runs in chunks. */
static void make_pair(bp_dtype dt, bp_net **a, bp_net **b)
{
    *a = nt_net(dt, NIN, 2, LAYERS, BP_LOSS_SOFTMAX_XENT, NULL);
    *b = nt_net(dt, NIN, 2, LAYERS, BP_LOSS_SOFTMAX_XENT, NULL);
    NT_OK(bp_net_init(*a, BP_INIT_GLOROT_UNIFORM, 77, 1));
    memcpy(bp_net_params(*b), bp_net_params(*a), bp_net_n_params(*a) * nt_esize(dt));
    bp_net *both[2] = {*a, *b};
    for (int i = 0; i < 2; i++) {
        NT_OK(bp_net_plan(both[i], 8));
        NT_OK(bp_net_set_threads(both[i], 2));
        NT_OK(bp_net_set_chunk_min(both[i], 1, 1));
    }
}

/* bp_net_fit_standardization reports bp_dataset_standardize's statistics bitwise; a standardising
 * network on raw inputs gives bitwise the outputs, loss and gradient of a plain one on the
 * standardised copy; the raw inputs are not changed. Loop: dtype. */
START_TEST(test_standardize_matches_dataset)
{
    const bp_dtype dt = DTYPES[_i];
    const size_t es = nt_esize(dt);
    data d = make_data(dt, N, 11);
    double mean[NIN], sd[NIN], m2[NIN], s2[NIN];
    void *Xs = standardised_copy(&d, mean, sd);
    ck_assert_msg(sd[2] == 0, "feature 2 is constant");
    bp_net *a, *b;
    make_pair(dt, &a, &b);
    ck_assert_int_eq(bp_net_has_standardization(a), 0);
    void *before = nt_memdup(d.X, (size_t)N * LDX * es);
    NT_OK(bp_net_fit_standardization(a, N, d.X, LDX));
    ck_assert_int_eq(bp_net_has_standardization(a), 1);
    NT_OK(bp_net_standardization(a, m2, s2));
    ck_assert_msg(memcmp(mean, m2, sizeof mean) == 0 && memcmp(sd, s2, sizeof sd) == 0, "statistics differ");

    void *Ya = malloc((size_t)N * K * es), *Yb = malloc((size_t)N * K * es);
    NT_OK(bp_net_forward(a, N, d.X, LDX, Ya, K));
    NT_OK(bp_net_forward(b, N, Xs, NIN, Yb, K));
    ck_assert_msg(memcmp(Ya, Yb, (size_t)N * K * es) == 0, "%s: forward differs", nt_dtype_name(dt));
    double la = NAN, lb = NAN;
    NT_OK(bp_net_loss_and_grad(a, N, d.X, LDX, d.labels, 0, &la));
    NT_OK(bp_net_loss_and_grad(b, N, Xs, NIN, d.labels, 0, &lb));
    ck_assert_msg(la == lb, "loss %.17g vs %.17g", la, lb);
    ck_assert_msg(memcmp(bp_net_grads(a), bp_net_grads(b), bp_net_n_params(a) * es) == 0, "gradient differs");
    double acc_a = NAN, acc_b = NAN;
    NT_OK(bp_net_accuracy(a, N, d.X, LDX, d.labels, &acc_a, NULL));
    NT_OK(bp_net_accuracy(b, N, Xs, NIN, d.labels, &acc_b, NULL));
    ck_assert_msg(acc_a == acc_b, "accuracy %.17g vs %.17g", acc_a, acc_b);
    ck_assert_msg(memcmp(before, d.X, (size_t)N * LDX * es) == 0, "the raw inputs changed");

    /* Removing it: the network takes its inputs as given again. */
    NT_OK(bp_net_set_standardization(a, NULL, NULL));
    ck_assert_int_eq(bp_net_has_standardization(a), 0);
    NT_OK(bp_net_forward(a, N, Xs, NIN, Ya, K));
    ck_assert_msg(memcmp(Ya, Yb, (size_t)N * K * es) == 0, "forward without standardisation differs");
    free(Ya);
    free(Yb);
    free(before);
    free(Xs);
    bp_net_destroy(a);
    bp_net_destroy(b);
    free_data(&d);
}
END_TEST

/* Training: bp_train (shuffled, so the inputs are gathered and standardised in one stage) on raw
 * inputs with the statistics set by hand equals training the plain network on the standardised
 * copy, bitwise; so does Newton's method on a logistic regression. Loop: dtype. */
START_TEST(test_standardize_training)
{
    const bp_dtype dt = DTYPES[_i];
    const size_t es = nt_esize(dt);
    data d = make_data(dt, N, 12);
    double mean[NIN], sd[NIN];
    void *Xs = standardised_copy(&d, mean, sd);
    bp_net *a, *b;
    make_pair(dt, &a, &b);
    NT_OK(bp_net_set_standardization(a, mean, sd));
    bp_optim *oa = nt_optim(a, BP_OPT_ADAM, 0.01), *ob = nt_optim(b, BP_OPT_ADAM, 0.01);
    const bp_train_config tc = {.epochs = 3, .batch_size = 16, .seed = 5, .shuffle = 1};
    NT_OK(bp_train(a, oa, N, d.X, LDX, d.labels, 0, &tc));
    NT_OK(bp_train(b, ob, N, Xs, NIN, d.labels, 0, &tc));
    ck_assert_msg(memcmp(bp_net_params(a), bp_net_params(b), bp_net_n_params(a) * es) == 0,
                  "%s: parameters after training differ", nt_dtype_name(dt));
    bp_optim_destroy(oa);
    bp_optim_destroy(ob);
    bp_net_destroy(a);
    bp_net_destroy(b);

    bp_net *la = NULL, *lb = NULL;
    NT_OK(bp_logreg_create(&la, dt, NIN, K, NULL));
    NT_OK(bp_logreg_create(&lb, dt, NIN, K, NULL));
    NT_OK(bp_net_set_standardization(la, mean, sd));
    int ia = 0, ib = 0;
    NT_OK(bp_logreg_newton(la, N, d.X, LDX, d.labels, 1e-3, 20, 1e-10, &ia));
    NT_OK(bp_logreg_newton(lb, N, Xs, NIN, d.labels, 1e-3, 20, 1e-10, &ib));
    ck_assert_int_eq(ia, ib);
    ck_assert_msg(memcmp(bp_net_params(la), bp_net_params(lb), bp_net_n_params(la) * es) == 0,
                  "%s: Newton's parameters differ", nt_dtype_name(dt));
    bp_net_destroy(la);
    bp_net_destroy(lb);
    free(Xs);
    free_data(&d);
}
END_TEST

/* Bad statistics are refused and change nothing. */
START_TEST(test_standardize_errors)
{
    bp_net *a, *b;
    make_pair(BP_F64, &a, &b);
    double mean[NIN] = {1, 2, 3, 4, 5}, sd[NIN] = {1, 1, 0, 2, 3}, m2[NIN], s2[NIN];
    NT_EXPECT(bp_net_standardization(a, m2, s2), BP_ERR_ARG, "bp_net_standardization", "no standardisation");
    NT_EXPECT(bp_net_set_standardization(NULL, mean, sd), BP_ERR_ARG, "bp_net_set_standardization", "net");
    NT_EXPECT(bp_net_set_standardization(a, mean, NULL), BP_ERR_ARG, "bp_net_set_standardization", "both");
    NT_OK(bp_net_set_standardization(a, mean, sd));
    double bad[NIN] = {1, 1, 1, -1, 1};
    NT_EXPECT(bp_net_set_standardization(a, mean, bad), BP_ERR_ARG, "bp_net_set_standardization", "std[3]");
    bad[3] = NAN;
    NT_EXPECT(bp_net_set_standardization(a, bad, sd), BP_ERR_ARG, "bp_net_set_standardization", "mean[3]");
    double X[2 * NIN] = {0, 1, 2, 3, 4, 5, 6, INFINITY, 8, 9};
    NT_EXPECT(bp_net_fit_standardization(a, 2, X, NIN), BP_ERR_NONFINITE, "bp_net_fit_standardization", "X[1][2]");
    NT_EXPECT(bp_net_fit_standardization(a, 0, X, NIN), BP_ERR_ARG, "bp_net_fit_standardization", "n");
    NT_EXPECT(bp_net_fit_standardization(a, 2, X, NIN - 1), BP_ERR_ARG, "bp_net_fit_standardization", "ldx");
    NT_OK(bp_net_standardization(a, m2, s2));
    ck_assert_msg(memcmp(mean, m2, sizeof mean) == 0 && memcmp(sd, s2, sizeof sd) == 0,
                  "a refused call changed the statistics");
    bp_net_destroy(a);
    bp_net_destroy(b);
}
END_TEST

/* Probabilities and classes against the outputs of bp_net_forward: softmax rows (to rounding; each
 * sums to 1), sigmoid (BCE), the outputs themselves (MSE, bitwise); classes are the arg-max (BCE
 * with one output: output > 0), and an MSE network has none. P's padding is not written. Loop:
 * dtype x loss. */
START_TEST(test_predict)
{
    const bp_dtype dt = DTYPES[_i % 2];
    const bp_loss loss = _i / 2 == 0 ? BP_LOSS_SOFTMAX_XENT : _i / 2 == 1 ? BP_LOSS_SIGMOID_BCE : BP_LOSS_MSE;
    const int n_out = loss == BP_LOSS_SIGMOID_BCE ? 1 : K, ldp = n_out + 2;
    const size_t es = nt_esize(dt);
    data d = make_data(dt, N, 13);
    const bp_layer_spec layers[2] = {{6, BP_ACT_TANH, 0}, {n_out, BP_ACT_IDENTITY, 0}};
    bp_net *net = nt_net(dt, NIN, 2, layers, loss, NULL);
    NT_OK(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 9, 1));
    NT_OK(bp_net_plan(net, 8));
    NT_OK(bp_net_fit_standardization(net, N, d.X, LDX));
    void *Y = malloc((size_t)N * n_out * es), *P = malloc((size_t)N * ldp * es);
    tu_sentinel(P, (size_t)N * ldp * es);
    NT_OK(bp_net_forward(net, N, d.X, LDX, Y, n_out));
    NT_OK(bp_net_predict_proba(net, N, d.X, LDX, P, ldp));
    double *Yd = nt_to_d(dt, Y, (size_t)N * n_out), *Ref = tu_alloc((size_t)N * n_out);
    tu_act_block(loss == BP_LOSS_SOFTMAX_XENT ? BP_ACT_SOFTMAX : loss == BP_LOSS_SIGMOID_BCE ? BP_ACT_SIGMOID
                                                                                               : BP_ACT_IDENTITY,
                 0, N, n_out, Yd, n_out, Ref, n_out);
    const double tol = 8 * nt_eps(dt);
    for (int i = 0; i < N; i++) {
        double sum = 0;
        for (int j = 0; j < n_out; j++) {
            const double p = nt_get(dt, P, (size_t)i * ldp + (size_t)j);
            sum += p;
            if (loss == BP_LOSS_MSE)
                ck_assert_msg(memcmp((char *)P + ((size_t)i * ldp + (size_t)j) * es, (char *)Y + ((size_t)i * n_out + (size_t)j) * es, es) == 0,
                              "MSE output (%d, %d) differs", i, j);
            else
                ck_assert_msg(fabs(p - Ref[(size_t)i * n_out + (size_t)j]) <= tol, "p(%d, %d) = %.17g, expected %.17g", i,
                              j, p, Ref[(size_t)i * n_out + (size_t)j]);
        }
        if (loss == BP_LOSS_SOFTMAX_XENT)
            ck_assert_msg(fabs(sum - 1) <= tol * K, "row %d sums to %.17g", i, sum);
        ck_assert_msg(tu_is_sentinel((char *)P + ((size_t)i * ldp + (size_t)n_out) * es, 2 * es), "padding of row %d written", i);
    }
    int32_t *cls = malloc((size_t)N * sizeof *cls);
    if (loss == BP_LOSS_MSE) {
        NT_EXPECT(bp_net_predict_class(net, N, d.X, LDX, cls), BP_ERR_ARG, "bp_net_predict_class", "MSE");
    } else {
        NT_OK(bp_net_predict_class(net, N, d.X, LDX, cls));
        for (int i = 0; i < N; i++) {
            const double *y = Yd + (size_t)i * n_out;
            int best = 0;
            for (int j = 1; j < n_out; j++)
                best = y[j] > y[best] ? j : best;
            const int want = n_out == 1 ? y[0] > 0 : best;
            ck_assert_msg(cls[i] == want, "sample %d: class %d, expected %d", i, (int)cls[i], want);
        }
    }
    NT_EXPECT(bp_net_predict_proba(net, N, d.X, LDX, P, n_out - 1), BP_ERR_ARG, "bp_net_predict_proba", "ldp");
    free(cls);
    free(Yd);
    free(Ref);
    free(Y);
    free(P);
    bp_net_destroy(net);
    free_data(&d);
}
END_TEST

/* bp_net_eval_loss gives the loss bp_net_loss_and_grad reports (to 1e-15) without touching the
 * gradient buffer. Loop: dtype. */
START_TEST(test_eval_loss)
{
    const bp_dtype dt = DTYPES[_i];
    const size_t es = nt_esize(dt);
    data d = make_data(dt, N, 14);
    bp_net *a, *b;
    make_pair(dt, &a, &b);
    double l1 = NAN, l2 = NAN;
    NT_OK(bp_net_loss_and_grad(a, N, d.X, LDX, d.labels, 0, &l1));
    void *g = nt_memdup(bp_net_grads(a), bp_net_n_params(a) * es);
    tu_sentinel(bp_net_grads(a), bp_net_n_params(a) * es);
    NT_OK(bp_net_eval_loss(a, N, d.X, LDX, d.labels, 0, &l2));
    ck_assert_msg(tu_rel(l2, l1, 1e-300) <= 1e-15, "eval loss %.17g, loss_and_grad %.17g", l2, l1);
    ck_assert_msg(tu_is_sentinel(bp_net_grads(a), bp_net_n_params(a) * es), "the gradient buffer was written");
    NT_EXPECT(bp_net_eval_loss(a, N, d.X, LDX, d.labels, 0, NULL), BP_ERR_ARG, "bp_net_eval_loss", "loss");
    free(g);
    bp_net_destroy(a);
    bp_net_destroy(b);
    free_data(&d);
}
END_TEST

/* ---- validation and early stopping ---------------------------------------------------------- */

enum { MAX_EPOCHS = 80 };

typedef struct vtrace {
    long epochs;
    double val_loss[MAX_EPOCHS + 1], val_metric[MAX_EPOCHS + 1], measured_acc[MAX_EPOCHS + 1];
    int best[MAX_EPOCHS + 1];
    bp_net *net;
    const void *Xv;
    const int32_t *yv;
    int nv;
} vtrace;

static int on_epoch_v(const bp_epoch_report *r, void *ctx)
{
    vtrace *t = ctx;
    t->epochs = r->epoch;
    if (r->epoch <= MAX_EPOCHS) {
        t->val_loss[r->epoch] = r->val_loss;
        t->val_metric[r->epoch] = r->val_metric;
        t->best[r->epoch] = r->best;
        double acc = NAN;
        if (bp_net_accuracy(t->net, t->nv, t->Xv, LDX, t->yv, &acc, NULL) == BP_OK)
            t->measured_acc[r->epoch] = acc;
    }
    return 0;
}

/* Random labels: training memorises its 40 samples, so the loss on 30 others rises after a few
 * epochs and early stopping (patience 4) ends the run well before its 80 epochs. The reports:
 * val_metric is the validation accuracy of the epoch's parameters, `best` marks each new minimum;
 * the run ends 4 epochs after the last minimum; the parameters left are that epoch's: their
 * validation loss (bp_net_eval_loss) equals the minimum reported, bitwise. Without early stopping
 * the run goes on to the end and still restores the best epoch. Loop: dtype x early stop on/off. */
START_TEST(test_early_stop)
{
    const bp_dtype dt = DTYPES[_i % 2];
    const long patience = _i / 2 == 0 ? 4 : 0;
    data tr = make_data(dt, 40, 21), va = make_data(dt, 30, 22);
    tu_rng r = tu_rng_make(23);
    for (int i = 0; i < 40; i++)
        tr.labels[i] = tu_int(&r, 0, K - 1);
    for (int i = 0; i < 30; i++)
        va.labels[i] = tu_int(&r, 0, K - 1);
    const bp_layer_spec layers[2] = {{32, BP_ACT_RELU, 0}, {K, BP_ACT_IDENTITY, 0}};
    bp_net *net = nt_net(dt, NIN, 2, layers, BP_LOSS_SOFTMAX_XENT, NULL);
    NT_OK(bp_net_init(net, BP_INIT_HE_UNIFORM, 24, 1));
    NT_OK(bp_net_plan(net, 16));
    NT_OK(bp_net_fit_standardization(net, 40, tr.X, LDX));
    bp_optim *opt = nt_optim(net, BP_OPT_ADAM, 0.03);
    vtrace t;
    memset(&t, 0, sizeof t);
    t.net = net;
    t.Xv = va.X;
    t.yv = va.labels;
    t.nv = 30;
    const bp_train_config tc = {.epochs = MAX_EPOCHS, .batch_size = 8, .seed = 25, .shuffle = 1,
                                .on_epoch = on_epoch_v, .ctx = &t, .n_val = 30, .X_val = va.X, .ldx_val = LDX,
                                .targets_val = va.labels, .early_stop = patience};
    NT_OK(bp_train(net, opt, 40, tr.X, LDX, tr.labels, 0, &tc));
    long best_epoch = 0;
    double best = INFINITY;
    for (long e = 1; e <= t.epochs; e++) {
        ck_assert_msg(isfinite(t.val_loss[e]), "epoch %ld: val_loss %g", e, t.val_loss[e]);
        ck_assert_msg(t.val_metric[e] == t.measured_acc[e], "epoch %ld: val_metric %.17g, accuracy %.17g", e,
                      t.val_metric[e], t.measured_acc[e]);
        const int is_best = t.val_loss[e] < best;
        ck_assert_msg(t.best[e] == is_best, "epoch %ld: best flag %d, expected %d", e, t.best[e], is_best);
        if (is_best) {
            best = t.val_loss[e];
            best_epoch = e;
        }
    }
    if (patience) {
        ck_assert_msg(t.epochs < MAX_EPOCHS, "early stopping never triggered (best epoch %ld)", best_epoch);
        ck_assert_int_eq(t.epochs, best_epoch + patience);
    } else {
        ck_assert_int_eq(t.epochs, MAX_EPOCHS);
        ck_assert_msg(best_epoch < MAX_EPOCHS, "the last epoch was the best: the restore is not exercised");
    }
    double vl = NAN;
    NT_OK(bp_net_eval_loss(net, 30, va.X, LDX, va.labels, 0, &vl));
    ck_assert_msg(vl == best, "%s: validation loss of the parameters left %.17g, best reported %.17g (epoch %ld)",
                  nt_dtype_name(dt), vl, best, best_epoch);
    bp_optim_destroy(opt);
    bp_net_destroy(net);
    free_data(&tr);
    free_data(&va);
}
END_TEST

/* A run continued from its state equals one never interrupted: 5 epochs at once against 2, then
 * the same network, optimizer and state on to 5; parameters and step counts bitwise. A state that
 * has done every epoch runs none. Loop: dtype. */
START_TEST(test_resume_in_memory)
{
    const bp_dtype dt = DTYPES[_i];
    const size_t es = nt_esize(dt);
    data d = make_data(dt, N, 31);
    bp_net *a, *b;
    make_pair(dt, &a, &b);
    NT_OK(bp_net_fit_standardization(a, N, d.X, LDX));
    NT_OK(bp_net_fit_standardization(b, N, d.X, LDX));
    bp_optim *oa = nt_optim(a, BP_OPT_ADAM, 0.01), *ob = nt_optim(b, BP_OPT_ADAM, 0.01);
    bp_train_config tc = {.epochs = 5, .batch_size = 10, .seed = 32, .shuffle = 1};
    NT_OK(bp_train(a, oa, N, d.X, LDX, d.labels, 0, &tc));
    bp_train_state st;
    memset(&st, 0, sizeof st);
    tc.state = &st;
    tc.epochs = 2;
    NT_OK(bp_train(b, ob, N, d.X, LDX, d.labels, 0, &tc));
    ck_assert_int_eq(st.epochs_done, 2);
    tc.epochs = 5;
    NT_OK(bp_train(b, ob, N, d.X, LDX, d.labels, 0, &tc));
    ck_assert_int_eq(st.epochs_done, 5);
    ck_assert_int_eq(bp_optim_steps(oa), bp_optim_steps(ob));
    ck_assert_msg(memcmp(bp_net_params(a), bp_net_params(b), bp_net_n_params(a) * es) == 0,
                  "%s: the continued run differs", nt_dtype_name(dt));
    NT_OK(bp_train(b, ob, N, d.X, LDX, d.labels, 0, &tc));
    ck_assert_int_eq(bp_optim_steps(ob), 5 * 6);
    bp_optim_destroy(oa);
    bp_optim_destroy(ob);
    bp_net_destroy(a);
    bp_net_destroy(b);
    free_data(&d);
}
END_TEST

/* Configurations bp_train refuses before any step. */
START_TEST(test_train_config_errors)
{
    data d = make_data(BP_F64, N, 41);
    bp_net *a, *b;
    make_pair(BP_F64, &a, &b);
    bp_optim *opt = nt_optim(a, BP_OPT_SGD, 0.1);
    bp_train_config tc = {.epochs = 2, .batch_size = 10, .early_stop = 3};
    NT_EXPECT(bp_train(a, opt, N, d.X, LDX, d.labels, 0, &tc), BP_ERR_ARG, "bp_train", "early_stop");
    tc.early_stop = -1;
    tc.n_val = 5;
    tc.X_val = d.X;
    tc.ldx_val = LDX;
    tc.targets_val = d.labels;
    NT_EXPECT(bp_train(a, opt, N, d.X, LDX, d.labels, 0, &tc), BP_ERR_ARG, "bp_train", "early_stop");
    tc.early_stop = 1;
    tc.n_val = -1;
    NT_EXPECT(bp_train(a, opt, N, d.X, LDX, d.labels, 0, &tc), BP_ERR_ARG, "bp_train", "n_val");
    tc.n_val = 5;
    tc.ldx_val = NIN - 1;
    NT_EXPECT(bp_train(a, opt, N, d.X, LDX, d.labels, 0, &tc), BP_ERR_ARG, "bp_train", "ldx");
    tc.ldx_val = LDX;
    tc.X_val = NULL;
    NT_EXPECT(bp_train(a, opt, N, d.X, LDX, d.labels, 0, &tc), BP_ERR_ARG, "bp_train", "X is NULL");
    tc.X_val = d.X;
    int32_t bad[5] = {0, 1, 2, 3, 0};
    tc.targets_val = bad;
    NT_EXPECT(bp_train(a, opt, N, d.X, LDX, d.labels, 0, &tc), BP_ERR_ARG, "bp_train", "label 3");
    tc.targets_val = d.labels;
    bp_train_state st = {-1, {0, 0, 0, 0}};
    tc.state = &st;
    NT_EXPECT(bp_train(a, opt, N, d.X, LDX, d.labels, 0, &tc), BP_ERR_ARG, "bp_train", "epochs_done");
    ck_assert_int_eq(bp_optim_steps(opt), 0);
    bp_optim_destroy(opt);
    bp_net_destroy(a);
    bp_net_destroy(b);
    free_data(&d);
}
END_TEST

static Suite *workflow_suite(void)
{
    Suite *s = suite_create("workflow");
    TCase *t = tcase_create("standardize");
    tcase_add_loop_test(t, test_standardize_matches_dataset, 0, 2);
    tcase_add_loop_test(t, test_standardize_training, 0, 2);
    tcase_add_test(t, test_standardize_errors);
    suite_add_tcase(s, t);
    t = tcase_create("predict");
    tcase_add_loop_test(t, test_predict, 0, 6);
    tcase_add_loop_test(t, test_eval_loss, 0, 2);
    suite_add_tcase(s, t);
    t = tcase_create("validation");
    tcase_add_loop_test(t, test_early_stop, 0, 4);
    tcase_add_loop_test(t, test_resume_in_memory, 0, 2);
    tcase_add_test(t, test_train_config_errors);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run_suite(workflow_suite());
}
