/* SPDX-License-Identifier: MIT */
/* cref.c: the C side of the Fortran tests: the library's constants and struct sizes as C sees them,
 * reference trainings written against the C API, and a model round trip. */
#include <backprop.h>
#include <stddef.h>
#include <stdio.h>

/* The functions the Fortran tests call through bind(C). */
int bpt_constants(int *out, int max);
int bpt_struct_sizes(size_t *out, int max);
int bpt_train_ref(int which, const char *path);
int bpt_model_roundtrip(const char *in, const char *out, int n, const double *X, double *Y);

/* Every enum value of the public headers, in the order test_api.f90 lists them. */
int bpt_constants(int *out, int max)
{
    const int v[] = {
        BP_VERSION_MAJOR, BP_VERSION_MINOR, BP_VERSION_PATCH,
        BP_ROW_MAJOR, BP_COL_MAJOR, BP_F32, BP_F64,
        BP_OK, BP_ERR_ARG, BP_ERR_NOMEM, BP_ERR_OVERFLOW, BP_ERR_NONFINITE, BP_ERR_IO, BP_ERR_FORMAT,
        BP_ERR_UNSUPPORTED, BP_ERR_COMM, BP_ERR_MISMATCH,
        BP_ACT_IDENTITY, BP_ACT_SIGMOID, BP_ACT_TANH, BP_ACT_RELU, BP_ACT_LEAKY_RELU, BP_ACT_ELU,
        BP_ACT_GELU, BP_ACT_GELU_TANH, BP_ACT_SOFTPLUS, BP_ACT_SOFTMAX,
        BP_LOSS_SOFTMAX_XENT, BP_LOSS_SIGMOID_BCE, BP_LOSS_MSE, BP_LOSS_LEAST_SQUARES,
        BP_INIT_GLOROT_UNIFORM, BP_INIT_GLOROT_NORMAL, BP_INIT_HE_UNIFORM, BP_INIT_HE_NORMAL,
        BP_INIT_ORTHOGONAL,
        BP_BACKEND_BLAS, BP_BACKEND_NAIVE, BP_NET_MAX_LAYERS, BP_NET_MAX_THREADS,
        BP_OPT_SGD, BP_OPT_MOMENTUM, BP_OPT_NESTEROV, BP_OPT_ADAM, BP_OPT_ADAMW,
        BP_SCHED_CONSTANT, BP_SCHED_STEP, BP_SCHED_COSINE,
        BP_LOGREG_NEWTON_MAX_PARAMS, BP_SCALE_NONE, BP_SCALE_UNIT, BP_MODEL_FORMAT_VERSION,
        BP_LM_RUNNING, BP_LM_MAX_ITER, BP_LM_GOAL, BP_LM_MIN_GRAD, BP_LM_MU_MAX, BP_LM_VAL_FAIL, BP_LM_CALLBACK,
    };
    const int n = (int)(sizeof v / sizeof v[0]);
    for (int i = 0; i < n && i < max; i++)
        out[i] = v[i];
    return n;
}

/* sizeof of every struct the module mirrors, then offsets of fields after padding. */
int bpt_struct_sizes(size_t *out, int max)
{
    const size_t v[] = {
        sizeof(bp_allocator), sizeof(bp_layer_spec), sizeof(bp_layer_view), sizeof(bp_optim_config),
        sizeof(bp_epoch_report), sizeof(bp_train_config), sizeof(bp_dataset),
        offsetof(bp_layer_view, offset), offsetof(bp_layer_view, db), offsetof(bp_optim_config, schedule),
        offsetof(bp_optim_config, lr_min), offsetof(bp_train_config, seed), offsetof(bp_train_config, ctx),
        offsetof(bp_dataset, X), offsetof(bp_dataset, n_classes), offsetof(bp_dataset, alloc),
        offsetof(bp_epoch_report, best), offsetof(bp_train_config, state), offsetof(bp_train_config, early_stop),
        offsetof(bp_dataset, targets), offsetof(bp_dataset, n_targets),
        sizeof(bp_lm_config), sizeof(bp_lm_report), offsetof(bp_lm_config, max_bytes), offsetof(bp_lm_report, seconds),
    };
    const int n = (int)(sizeof v / sizeof v[0]);
    for (int i = 0; i < n && i < max; i++)
        out[i] = v[i];
    return n;
}

/* The data of testing.f90, by the same formulas: sample i, feature j. */
static double data_x(int i, int j) { return (double)((i * 7 + j * 13 + 5) % 23 - 11) / 8; }
static int32_t data_label(int i)
{
    return (data_x(i, 0) + data_x(i, 1) > 0) + (data_x(i, 2) > 0.5);
}
static double data_target(int i, int k)
{
    return k == 0 ? (data_x(i, 0) - data_x(i, 1)) / 2 : data_x(i, 2) * data_x(i, 0) / 4;
}

enum { N = 96, D = 3 };

static int fail(bp_status st)
{
    fprintf(stderr, "cref: %s: %s\n", bp_strerror(st), bp_last_error());
    return (int)st;
}

/* Reference trainings, mirrored step for step by test_train.f90; the result is
 * saved to `path`.
 *   1: float, 3 -> 8 tanh -> 3, softmax cross-entropy, Glorot uniform seed 42,
 *      Adam lr 0.01, bp_train 5 epochs of 16, shuffled with seed 11.
 *   2: double, 3 -> 6 leaky ReLU (0.1) -> 2, MSE, He normal seed 7, plan of 8,
 *      momentum lr 0.05, a hand-written loop: 3 epochs over batches of 32
 *      (in micro-batches of 8), loss_and_grad then optim_step.
 *   3: double, as 2 but trained by bp_train (4 epochs of 24, seed 5, not shuffled).
 *   4: float, 3 -> 8 ReLU -> 3, softmax cross-entropy, He uniform seed 3, plan of 32,
 *      SGD lr 0.1 with weight decay 0.001, 3 epochs of bp_optim_train_step over
 *      batches of 32 (the fused SGD step). */
int bpt_train_ref(int which, const char *path)
{
    static float Xf[N][D];
    static double Xd[N][D], T[N][2];
    static int32_t y[N];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < D; j++) {
            Xf[i][j] = (float)data_x(i, j);
            Xd[i][j] = data_x(i, j);
        }
        y[i] = data_label(i);
        T[i][0] = data_target(i, 0);
        T[i][1] = data_target(i, 1);
    }
    bp_net *net = NULL;
    bp_optim *opt = NULL;
    bp_status st;
    if (which == 4) {
        const bp_layer_spec layers[] = {{8, BP_ACT_RELU, 0}, {3, BP_ACT_IDENTITY, 0}};
        bp_optim_config sgd = bp_optim_defaults(BP_OPT_SGD, 0.1);
        sgd.weight_decay = 0.001;
        st = bp_net_create(&net, BP_F32, D, 2, layers, BP_LOSS_SOFTMAX_XENT, NULL);
        if (st == BP_OK) st = bp_net_init(net, BP_INIT_HE_UNIFORM, 3, 1);
        if (st == BP_OK) st = bp_net_plan(net, 32);
        if (st == BP_OK) st = bp_optim_create(&opt, net, &sgd);
        for (int epoch = 0; epoch < 3 && st == BP_OK; epoch++)
            for (int i0 = 0; i0 < N && st == BP_OK; i0 += 32)
                st = bp_optim_train_step(opt, net, 32, &Xf[i0][0], D, &y[i0], 0, NULL);
    } else if (which == 1) {
        const bp_layer_spec layers[] = {{8, BP_ACT_TANH, 0}, {3, BP_ACT_IDENTITY, 0}};
        bp_optim_config adam = bp_optim_defaults(BP_OPT_ADAM, 0.01);
        bp_train_config tc = {.epochs = 5, .batch_size = 16, .seed = 11, .shuffle = 1};
        st = bp_net_create(&net, BP_F32, D, 2, layers, BP_LOSS_SOFTMAX_XENT, NULL);
        if (st == BP_OK) st = bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 42, 1);
        if (st == BP_OK) st = bp_net_plan(net, 16);
        if (st == BP_OK) st = bp_optim_create(&opt, net, &adam);
        if (st == BP_OK) st = bp_train(net, opt, N, &Xf[0][0], D, y, 0, &tc);
    } else {
        const bp_layer_spec layers[] = {{6, BP_ACT_LEAKY_RELU, 0.1}, {2, BP_ACT_IDENTITY, 0}};
        bp_optim_config mom = bp_optim_defaults(BP_OPT_MOMENTUM, 0.05);
        st = bp_net_create(&net, BP_F64, D, 2, layers, BP_LOSS_MSE, NULL);
        if (st == BP_OK) st = bp_net_init(net, BP_INIT_HE_NORMAL, 7, 1);
        if (st == BP_OK) st = bp_net_plan(net, 8);
        if (st == BP_OK) st = bp_optim_create(&opt, net, &mom);
        if (which == 2) {
            for (int epoch = 0; epoch < 3 && st == BP_OK; epoch++)
                for (int i0 = 0; i0 < N && st == BP_OK; i0 += 32) {
                    double loss;
                    st = bp_net_loss_and_grad(net, 32, &Xd[i0][0], D, &T[i0][0], 2, &loss);
                    if (st == BP_OK) st = bp_optim_step(opt, net);
                }
        } else {
            bp_train_config tc = {.epochs = 4, .batch_size = 24, .seed = 5, .shuffle = 0};
            if (st == BP_OK) st = bp_train(net, opt, N, &Xd[0][0], D, &T[0][0], 2, &tc);
        }
    }
    if (st == BP_OK) st = bp_model_save(net, path);
    bp_optim_destroy(opt);
    bp_net_destroy(net);
    return st == BP_OK ? 0 : fail(st);
}

/* Loads `in` (a double network saved from Fortran), predicts Y (n x n_out) for
 * X (n x n_in, both sample-major: Fortran's X(n_in, n) and Y(n_out, n)), and
 * saves the network again to `out`. */
int bpt_model_roundtrip(const char *in, const char *out, int n, const double *X, double *Y)
{
    bp_net *net = NULL;
    bp_status st = bp_model_load(&net, in, NULL);
    if (st == BP_OK && bp_net_dtype(net) != BP_F64) {
        fprintf(stderr, "cref: %s is not a double network\n", in);
        bp_net_destroy(net);
        return -1;
    }
    if (st == BP_OK) st = bp_net_plan(net, n);
    if (st == BP_OK) st = bp_net_forward(net, n, X, bp_net_n_in(net), Y, bp_net_n_out(net));
    if (st == BP_OK) st = bp_model_save(net, out);
    bp_net_destroy(net);
    return st == BP_OK ? 0 : fail(st);
}
