/* SPDX-License-Identifier: MIT */
/* train.c: the training-loop helper (bp_train) and the logistic-regression network (bp_logreg_create). */
#include <math.h>
#include <string.h>
#include "backprop/train.h"
#include "net/net_exec.h"
#include "optim/optim_internal.h"
#include "net/dp.h"

static bp_status check_config(const char *fn, const bp_net *net, const bp_train_config *c)
{
    BP_REQUIRE(c->epochs >= 1, BP_ERR_ARG, "config->epochs (%ld) < 1", c->epochs);
    BP_REQUIRE(c->batch_size >= 1, BP_ERR_ARG, "config->batch_size (%d) < 1", (int)c->batch_size);
    BP_REQUIRE(c->n_val >= 0, BP_ERR_ARG, "config->n_val (%d) < 0", (int)c->n_val);
    BP_REQUIRE(c->early_stop >= 0, BP_ERR_ARG, "config->early_stop (%ld) < 0", c->early_stop);
    BP_REQUIRE(c->early_stop == 0 || c->n_val > 0 || net->has_reducer, BP_ERR_ARG,  /* else checked over the ranks */
               "config->early_stop (%ld) needs a validation set (config->n_val is 0)", c->early_stop);
    BP_REQUIRE(!c->state || c->state->epochs_done >= 0, BP_ERR_ARG, "config->state->epochs_done (%ld) < 0",
               c->state ? c->state->epochs_done : 0L);
    if (c->n_val == 0)
        return BP_OK;
    TRY(bp__check_pass(fn, net, c->n_val, c->X_val, c->ldx_val));
    return bp__check_targets(fn, net, c->n_val, c->targets_val, c->ldt_val, net->loss == BP_LOSS_SOFTMAX_XENT);
}

/* A run's working set: the permutation, the generator, and the best parameters so far. With a
 * reducer (data-parallel), n and the validation set are this rank's rows; n_total and n_val_total
 * those of every rank, and each global batch is split by the fixed rule (parallel.h). */
typedef struct run {
    bp_net *net;
    bp_optim *opt;
    const bp_train_config *c;
    bp_int n, n_total;
    bp_int n_val_total;
    const void *X, *targets;
    bp_int ldx, ldt;
    int32_t *idx;
    void *best;            /* the parameters of the best validation loss; NULL without a validation set */
    double best_loss;
    long since_best;       /* epochs since the best */
    bp_train_state st;     /* epochs done and the generator */
} run;

/* The metric of `correct` predictions (or, for MSE, of the mean loss) over n samples. */
static double metric_of(const bp_net *net, double mean_loss, int64_t correct, bp_int n)
{
    const bp_int n_out = bp__n_out(net);
    if (net->loss == BP_LOSS_MSE)
        return sqrt(mean_loss);
    if (net->loss == BP_LOSS_LEAST_SQUARES)  /* mean_loss = sum / (2 n): the RMSE over n n_out elements */
        return sqrt(2 * mean_loss / n_out);
    return net->loss == BP_LOSS_SOFTMAX_XENT ? (double)correct / n : (double)correct / ((double)n * n_out);
}

/* One epoch's mini-batches, in the order of a fresh permutation when shuffling. */
static bp_status train_epoch(const char *fn, run *r, long epoch, double *loss, int64_t *correct)
{
    const bp_train_config *c = r->c;
    const bp_int n = r->n, bs = c->batch_size, total = r->n_total;
    const long n_batches = (total + bs - 1) / bs;
    const int p = r->net->has_reducer ? r->net->reducer.size : 1, rank = r->net->has_reducer ? r->net->reducer.rank : 0;
    for (bp_int i = 0; i < n; i++)
        r->idx[i] = i;
    if (c->shuffle)
        for (bp_int i = n - 1; i > 0; i--) {  /* Fisher-Yates */
            const bp_int j = (bp_int)bp__rng_below(r->st.rng, (uint64_t)i + 1);
            const int32_t t = r->idx[i];
            r->idx[i] = r->idx[j];
            r->idx[j] = t;
        }
    double sum = 0;
    bp_int start = 0;  /* this rank's rows of the batches so far */
    for (long b = 0; b < n_batches; b++) {
        const bp_int global = total - (bp_int)(b * bs) < bs ? total - (bp_int)(b * bs) : bs;
        const bp_int m = bp_shard_count(global, p, rank);  /* all of it without a reducer */
        double l = 0;
        TRY(bp__optim_train_batch(fn, r->opt, r->net, m, r->X, r->ldx, r->idx + start, r->targets, r->ldt, &l,
                                  correct));
        start += m;
        sum += l * global;
        if (c->on_batch)
            c->on_batch(epoch, b + 1, n_batches, l, c->ctx);
    }
    *loss = sum / total;
    return BP_OK;
}

/* The validation set's loss and metric into the report; keeps the best parameters. */
static bp_status validate(const char *fn, run *r, bp_epoch_report *rep)
{
    const bp_train_config *c = r->c;
    bp_net *net = r->net;
    double loss = 0;
    int64_t correct = 0;
    bp_status st = BP_OK;
    if (c->n_val > 0)
        st = DISPATCH(net, net_batch)(net, fn, c->n_val, c->X_val, c->ldx_val, NULL, c->targets_val, c->ldt_val,
                                      BP_MODE_LOSS_ONLY, NULL, NULL, &loss, &correct);
    if (net->has_reducer) {  /* every rank's part (a failed one too): the mean over all validation rows */
        double v[3] = {loss * c->n_val, (double)correct};
        TRY(bp__dp_sum_outcome(net, fn, st, v, 2, "on their validation rows"));
        loss = v[0] / r->n_val_total;
        correct = (int64_t)v[1];
    }
    TRY(st);
    rep->val_loss = loss;
    rep->val_metric = metric_of(net, loss, correct, r->n_val_total);
    rep->best = r->since_best < 0 || loss < r->best_loss;
    if (rep->best) {
        r->best_loss = loss;
        r->since_best = 0;
        memcpy(r->best, net->params, net->n_params * net->esize);
    } else {
        r->since_best++;
    }
    return BP_OK;
}

/* The epochs of the run; 1 when the callback or early stopping ended it. */
static bp_status run_epochs(const char *fn, run *r)
{
    const bp_train_config *c = r->c;
    for (long epoch = r->st.epochs_done + 1; epoch <= c->epochs; epoch++) {
        const double t0 = bp__seconds();
        double loss = 0;
        int64_t correct = 0;
        TRY(train_epoch(fn, r, epoch, &loss, &correct));
        const double secs = bp__seconds() - t0;
        bp_epoch_report rep = {
            .epoch = epoch,
            .loss = loss,
            .metric = metric_of(r->net, loss, correct, r->n_total),
            .samples_per_s = secs > 0 ? r->n_total / secs : 0,
            .seconds = secs,
            .val_loss = NAN,
            .val_metric = NAN,
        };
        if (r->n_val_total > 0)
            TRY(validate(fn, r, &rep));
        r->st.epochs_done = epoch;
        if (c->state)
            *c->state = r->st;
        double stop = c->on_epoch && c->on_epoch(&rep, c->ctx);
        TRY(bp__dp_sum(r->net, fn, &stop, 1));  /* one rank's callback stops every rank */
        if (stop)
            break;
        if (c->early_stop && r->since_best >= c->early_stop)
            break;
    }
    return BP_OK;
}

/* The checks of one rank's arguments (a reducer lets a rank hold no rows). */
static bp_status check_run(const char *fn, bp_net *net, bp_optim *opt, bp_int n, const void *X, bp_int ldx,
                           const void *targets, bp_int ldt, const bp_train_config *config)
{
    TRY(bp__optim_check_net(fn, opt, net));
    BP_CHECK_PTR(config);
    TRY(check_config(fn, net, config));
    BP_REQUIRE(n >= (net->has_reducer ? 0 : 1), BP_ERR_ARG, "n (%d) < 1", (int)n);
    TRY(bp__check_pass(fn, net, n, X, ldx));
    return bp__check_targets(fn, net, n, targets, ldt, net->loss == BP_LOSS_SOFTMAX_XENT);
}

/* With a reducer: every rank learns whether any rank refused its arguments (`local`: this rank's
 * checks and allocations), the totals of rows, and whether the ranks agree on the run and hold
 * their shares of the training set; so that no rank starts a run that another never does. */
static bp_status agree_run(const char *fn, run *r, bp_status local)
{
    bp_net *net = r->net;
    const bp_train_config *c = r->c;
    const int p = net->reducer.size;
    double v[7] = {0};
    if (local == BP_OK) {
        const double mine[6] = {r->n, c->n_val, c->epochs, c->batch_size, c->early_stop,
                                c->state ? c->state->epochs_done : 0};
        memcpy(v, mine, sizeof mine);
    }
    const double own[4] = {v[2], v[3], v[4], v[5]};
    TRY(bp__dp_sum_outcome(net, fn, local, v, 6, "the checks of their arguments"));
    r->n_total = (bp_int)v[0];
    r->n_val_total = (bp_int)v[1];
    bp_int share = 0;
    TRY(bp_shard_rows(r->n_total, c->batch_size, p, net->reducer.rank, NULL, &share));
    double w[2] = {0, share != r->n};
    for (int k = 0; k < 4; k++)
        w[0] += own[k] * p != v[2 + k];
    TRY(bp__dp_sum(net, fn, w, 2));
    BP_REQUIRE(w[0] == 0, BP_ERR_MISMATCH,
               "the ranks' runs differ (epochs, batch_size, early_stop or state->epochs_done): every rank must "
               "pass the same");
    BP_REQUIRE(w[1] == 0, BP_ERR_MISMATCH,
               "%.0f rank(s) hold other than their share of the %d rows at batch %d (bp_shard_rows): this rank "
               "(%d of %d) holds %d, its share is %d", w[1], (int)r->n_total, (int)c->batch_size,
               net->reducer.rank, p, (int)r->n, (int)share);
    BP_REQUIRE(r->n_total >= 1, BP_ERR_ARG, "no rank holds a training row");
    BP_REQUIRE(c->early_stop == 0 || r->n_val_total > 0, BP_ERR_ARG,
               "config->early_stop (%ld) needs a validation set (no rank has one)", c->early_stop);
    return BP_OK;
}

bp_status bp_train(bp_net *net, bp_optim *opt, bp_int n, const void *X, bp_int ldx,
                   const void *targets, bp_int ldt, const bp_train_config *config)
{
    const char *fn = __func__;
    BP_REQUIRE(net != NULL, BP_ERR_ARG, "net is NULL");
    BP_REQUIRE(net->arena != NULL, BP_ERR_ARG, "the network has no plan: call bp_net_plan first");
    bp_status st = check_run(fn, net, opt, n, X, ldx, targets, ldt, config);
    if (!net->has_reducer)
        TRY(st);

    run r = {net, opt, config, n, n, st == BP_OK ? config->n_val : 0, X, targets, ldx, ldt, NULL, NULL, 0, -1,
             {0, {0, 0, 0, 0}}};
    /* The only allocations: the permutation and the best parameters, before the first step (with
     * a reducer, the copy whatever this rank's part of the validation set). */
    if (st == BP_OK) {
        r.idx = bp__net_alloc(net, (size_t)(n > 0 ? n : 1) * sizeof *r.idx);
        if (config->n_val > 0 || net->has_reducer)
            r.best = bp__net_alloc(net, net->n_params * net->esize);
        if (!r.idx || ((config->n_val > 0 || net->has_reducer) && !r.best))
            st = bp__fail(BP_ERR_NOMEM, fn, "allocating a permutation of %d samples and a copy of the parameters",
                          (int)n);
    }
    if (net->has_reducer)
        st = agree_run(fn, &r, st);
    if (st == BP_OK) {
        if (config->state)
            r.st = *config->state;
        if (!(r.st.rng[0] | r.st.rng[1] | r.st.rng[2] | r.st.rng[3]))
            bp__rng_seed(r.st.rng, config->seed);
        bp__blas_serial_begin();  /* once for every pass and update of the run */
        st = run_epochs(fn, &r);
        bp__blas_serial_end();
    }
    if (st == BP_OK && r.n_val_total > 0 && r.since_best >= 0)
        memcpy(net->params, r.best, net->n_params * net->esize);
    bp__net_free(net, r.best);
    bp__net_free(net, r.idx);
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
