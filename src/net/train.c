/* train.c: the training-loop helper (bp_train) and the logistic-regression network (bp_logreg_create). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <string.h>
#include <time.h>
#include "backprop/train.h"
#include "net/net_exec.h"
#include "optim/optim_internal.h"

static double seconds_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

bp_status bp_train(bp_net *net, bp_optim *opt, bp_int n, const void *X, bp_int ldx,
                   const void *targets, bp_int ldt, const bp_train_config *config)
{
    const char *fn = __func__;
    BP_REQUIRE(net != NULL, BP_ERR_ARG, "net is NULL");
    BP_REQUIRE(net->arena != NULL, BP_ERR_ARG, "the network has no plan: call bp_net_plan first");
    TRY(bp__optim_check_net(fn, opt, net));
    BP_CHECK_PTR(config);
    BP_REQUIRE(config->epochs >= 1, BP_ERR_ARG, "config->epochs (%ld) < 1", config->epochs);
    BP_REQUIRE(config->batch_size >= 1, BP_ERR_ARG, "config->batch_size (%d) < 1", (int)config->batch_size);
    BP_REQUIRE(n >= 1, BP_ERR_ARG, "n (%d) < 1", (int)n);
    TRY(bp__check_pass(fn, net, n, X, ldx));
    const int labels = net->loss == BP_LOSS_SOFTMAX_XENT;
    TRY(bp__check_targets(fn, net, n, targets, ldt, labels));

    /* The only allocation: the permutation, once, before the first step. */
    int32_t *idx = bp__net_alloc(net, (size_t)n * sizeof *idx);
    if (!idx)
        return bp__fail(BP_ERR_NOMEM, fn, "allocating a permutation of %d samples", (int)n);
    for (bp_int i = 0; i < n; i++)
        idx[i] = i;
    uint64_t rng[4];
    bp__rng_seed(rng, config->seed);
    const bp_int bs = config->batch_size;
    const long n_batches = (n + bs - 1) / bs;
    const bp_int n_out = net->layers[net->n_layers - 1].n_out;
    bp_status st = BP_OK;
    bp__blas_serial_begin();  /* once for every pass and update of the run */
    for (long epoch = 1; epoch <= config->epochs && st == BP_OK; epoch++) {
        const double t0 = seconds_now();
        if (config->shuffle)
            for (bp_int i = n - 1; i > 0; i--) {  /* Fisher-Yates */
                const bp_int j = (bp_int)bp__rng_below(rng, (uint64_t)i + 1);
                const int32_t t = idx[i];
                idx[i] = idx[j];
                idx[j] = t;
            }
        double loss_sum = 0;
        int64_t correct = 0;
        for (long b = 0; b < n_batches && st == BP_OK; b++) {
            const bp_int start = (bp_int)(b * bs), m = n - start < bs ? n - start : bs;
            double loss = 0;
            st = bp__optim_train_batch(fn, opt, net, m, X, ldx, idx + start, targets, ldt, &loss, &correct);
            loss_sum += loss * m;
            if (st == BP_OK && config->on_batch)
                config->on_batch(epoch, b + 1, n_batches, loss, config->ctx);
        }
        if (st != BP_OK)
            break;
        const double secs = seconds_now() - t0, mean = loss_sum / n;
        bp_epoch_report r = {
            .epoch = epoch,
            .loss = mean,
            .metric = net->loss == BP_LOSS_MSE ? sqrt(mean)
                      : labels ? (double)correct / n : (double)correct / ((double)n * n_out),
            .samples_per_s = secs > 0 ? n / secs : 0,
            .seconds = secs,
        };
        if (config->on_epoch && config->on_epoch(&r, config->ctx))
            break;
    }
    bp__blas_serial_end();
    bp__net_free(net, idx);
    return st;
}

bp_status bp_logreg_create(bp_net **out, bp_dtype dtype, bp_int n_in, bp_int n_classes,
                           const bp_allocator *alloc)
{
    const char *fn = __func__;
    BP_REQUIRE(n_classes >= 2, BP_ERR_ARG, "n_classes (%d) < 2", (int)n_classes);
    const bp_layer_spec layer = {n_classes, BP_ACT_IDENTITY, 0};
    const bp_status st = bp_net_create(out, dtype, n_in, 1, &layer, BP_LOSS_SOFTMAX_XENT, alloc);
    return st == BP_OK ? st : bp__fail_as(st, fn);  /* the same message, under this function's name */
}
