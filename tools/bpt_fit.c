/* SPDX-License-Identifier: MIT */
/* bpt_fit.c: a backprop-train training run: data, model, the fit with its per-epoch report, the save.
 * Under mpiexec with several ranks every rank runs it on its shard (shard_sets), the network a
 * replica of rank 0's; only rank 0 prints and writes files. */
#define _POSIX_C_SOURCE 200809L  /* clock_gettime */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "bpt.h"

/* Everything a run holds, freed by session_free. */
typedef struct session {
    bp_dataset train, test, val;   /* under mpiexec: this rank's rows */
    bp_int n_train, n_test;        /* the training and test sets' samples over all ranks */
    bp_net *net;
    bp_optim *opt;
    bp_train_state state;
    FILE *log;
    char logname[4096];            /* the temporary log for --plot without --log */
    void *onehot, *val_onehot;
    void *outputs;                 /* test.n x n_out, for the arg-max (classes only) */
} session;

/* What the callbacks see: the run's session and the report's state. */
typedef struct run {
    const options *o;
    session *s;
    int tty;
    double epoch_start, last_draw, train_seconds;
    double loss_sum;        /* of this epoch's batches so far: the bar's running loss */
    long last_epoch, best_epoch;
    double best_val;        /* the best epoch's validation loss */
    bp_status eval_st;      /* a failed test evaluation, which stopped training */
    long diverged;          /* the epoch whose loss was not finite, which stopped training; 0: none */
} run;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void on_batch(long epoch, long batch, long n_batches, double loss, void *ctx)
{
    run *r = ctx;
    if (!r->tty || r->o->quiet)
        return;
    const double t = now();
    if (batch == 1) {
        r->epoch_start = t;
        r->loss_sum = 0;
    }
    r->loss_sum += loss;
    if (batch != n_batches && t - r->last_draw < 0.1)
        return;
    r->last_draw = t;
    const double el = t - r->epoch_start, rate = el > 0 ? (double)batch * r->o->batch / el : 0;
    const double eta = batch > 0 ? el * (double)(n_batches - batch) / (double)batch : 0;
    char bar[31];
    const int fill = (int)(30 * batch / n_batches);
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[30] = 0;
    printf("\repoch %ld/%ld [%s] %ld/%ld  loss %.4f  %.0f samples/s  ETA %.0f s ", epoch,
           r->o->epochs, bar, batch, n_batches, r->loss_sum / (double)batch, rate, eta);
    fflush(stdout);
}

/* The epoch's line on stdout. */
static void print_epoch(const run *r, const bp_epoch_report *rep, double test)
{
    const char *metric = bpt_squared(r->o->loss) ? "rmse" : "acc";
    if (r->tty)
        printf("\r\033[K");
    if (r->o->newton)
        printf("newton  loss %.4f  train acc %.4f", rep->loss, rep->metric);
    else if (r->o->lm)
        printf("lm %5ld/%ld  mse %.4g  train rmse %.4g", rep->epoch, r->o->epochs, rep->loss, rep->metric);
    else
        printf("epoch %3ld/%ld  loss %.4f  train %s %.4f", rep->epoch, r->o->epochs, rep->loss, metric, rep->metric);
    if (r->s->test.X)
        printf("  test %s %.4f", r->s->test.targets ? "rmse" : "acc", test);
    if (!isnan(rep->val_loss))
        printf("  val loss %.4f  val %s %.4f%s", rep->val_loss, metric, rep->val_metric, rep->best ? " *" : "");
    if (r->o->lm)
        printf("  %.3f s\n", rep->seconds);
    else
        printf("  %.0f samples/s  %.1f s\n", rep->samples_per_s, rep->seconds);
    fflush(stdout);
}

/* The test set's metric: its RMSE (real targets), or its accuracy, the fraction *correct of
 * every rank's test samples. */
static bp_status test_metric(const session *s, double *metric, long *correct)
{
    if (s->test.targets)
        return test_rmse(s->net, &s->test, metric);
    const bp_status st = count_correct(s->net, &s->test, s->outputs, correct);
    *metric = s->n_test ? (double)*correct / s->n_test : 0;
    return st;
}

static int on_epoch(const bp_epoch_report *rep, void *ctx)
{
    run *r = ctx;
    r->train_seconds += rep->seconds;
    r->last_epoch = rep->epoch;
    if (!isfinite(rep->loss)) {  /* diverged: nothing after this epoch is worth computing */
        r->diverged = rep->epoch;
        return 1;
    }
    if (rep->best) {
        r->best_epoch = rep->epoch;
        r->best_val = rep->val_loss;
    }
    double test = NAN;
    long correct = 0;
    if (r->s->test.X) {
        const bp_status st = test_metric(r->s, &test, &correct);
        if (st != BP_OK) {
            r->eval_st = st;
            bp_fail("evaluating the test set", st);
            return 1;
        }
    }
    if (!r->o->quiet)
        print_epoch(r, rep, test);
    if (r->s->log)
        fprintf(r->s->log, "%ld,%.9g,%.9g,%.9g,%.6g,%.6g,%.17g,%.17g\n", rep->epoch, rep->loss, rep->metric, test,
                rep->seconds, rep->samples_per_s, rep->val_loss, rep->val_metric);
    return 0;
}

/* The "data:" lines: the sets' sizes, features and classes or targets. */
static void print_sets(const options *o, const session *s)
{
    if (o->synthetic)
        printf("data: synthetic 10-class 28x28 images, %d train / 1000 test\n", (int)s->train.n);
    else if (s->train.targets)
        printf("data: %d training samples of %d features, %d targets\n", (int)s->train.n,
               (int)s->train.n_features, (int)s->train.n_targets);
    else
        printf("data: %d training samples of %d features, %d classes\n", (int)s->train.n,
               (int)s->train.n_features, (int)s->train.n_classes);
    if (o->test)
        printf("      %d test samples\n", (int)s->test.n);
    if (s->val.X)
        printf("      %d validation samples\n", (int)s->val.n);
}

/* The data sets: generated or read, the validation set split off first, then checked. */
static int read_sets(options *o, session *s)
{
    int rc;
    if (o->synthetic) {
        if ((rc = synthetic(o, 6000, 1, &s->train)) || (rc = synthetic(o, 1000, 2, &s->test)))
            return rc;
    } else if ((rc = load_data(o, o->train, 1, &s->train)) || (o->test && (rc = load_data(o, o->test, 1, &s->test))))
        return rc;
    if ((o->val_split > 0 && (rc = split_validation(o->val_split, &s->train, &s->val))) ||
        (o->val && (rc = load_data(o, o->val, 1, &s->val))))
        return rc;
    if (!o->quiet)
        print_sets(o, s);
    const bp_dataset *other[] = {&s->test, &s->val};
    for (int i = 0; i < 2; i++)
        if (other[i]->X && other[i]->n_features != s->train.n_features)
            return run_fail("the %s set has %d features, the training set %d", i ? "validation" : "test",
                            (int)other[i]->n_features, (int)s->train.n_features);
    if (!o->n_targets && (!s->train.labels || (s->test.X && !s->test.labels) || (s->val.X && !s->val.labels)))
        return run_fail("the data has no labels: give a CSV file's label column (--csv-label) or, for a "
                        "regression, its target columns (--csv-targets)");
    return 0;
}

/* The model for the data (its standardisation fitted on the whole training set), planned. */
static int build_model(options *o, session *s)
{
    int rc = o->load ? model_load(o, &s->net, &s->opt, &s->state) : model_create(o, &s->train, &s->net);
    if (rc)
        return rc;
    o->loss = bp_net_loss(s->net);
    if ((rc = model_check_data(s->net, &s->train, "data")) ||
        (s->test.X && (rc = model_check_data(s->net, &s->test, "test set"))) ||
        (s->val.X && (rc = model_check_data(s->net, &s->val, "validation set"))) || (rc = model_plan(o, s->net)))
        return rc;
    if (o->resume && s->state.epochs_done >= o->epochs)
        return run_fail("--resume: %s has done %ld epochs already; ask for more with --epochs", o->load,
                        s->state.epochs_done);
    return 0;
}

/* Under mpiexec with several ranks, after the sets were read, split and standardised as a single
 * run does: this rank keeps only its rows, of the training set its share of every global batch,
 * of the validation and test sets a slice. Then the scratch for the test accuracy. */
static int shard_sets(const options *o, session *s)
{
    s->n_train = s->train.n;
    s->n_test = s->test.n;
    int rc;
    if ((rc = keep_batch_share(&s->train, o->batch)) || (rc = keep_share(&s->val)) || (rc = keep_share(&s->test)))
        return rc;
    if (!s->test.X || s->test.targets)  /* no test set, or its RMSE: no arg-max to take */
        return 0;
    s->outputs = malloc((size_t)(s->test.n ? s->test.n : 1) * (size_t)bp_net_n_out(s->net) * dtype_size(o->dtype));
    return s->outputs ? 0 : run_fail("out of memory");
}

/* What fitting needs before the log is opened: for --newton, a model small enough for its
 * Hessian (a usage error, exit 2); else the optimizer with its schedule over all the steps (a
 * resumed run goes on with the one it saved). */
static int prepare_fit(options *o, session *s)
{
    if (o->lm)
        return 0;
    if (o->newton) {
        const size_t p = (size_t)(bp_net_n_in(s->net) + 1) * (size_t)bp_net_n_out(s->net);
        if (p > BP_LOGREG_NEWTON_MAX_PARAMS)
            return fail("--newton: the model has %zu parameters, more than %d (its Hessian would take %.0f MiB); "
                        "train it first-order", p, BP_LOGREG_NEWTON_MAX_PARAMS, (double)p * (double)p * 8 / 1048576);
        return 0;
    }
    if (s->opt)
        return 0;
    const long steps_per_epoch = (s->n_train + o->batch - 1) / o->batch;  /* all ranks' samples */
    if (!o->schedule || !strcmp(o->schedule, "cosine")) {
        o->opt.schedule = BP_SCHED_COSINE;
        o->opt.t_max = steps_per_epoch * o->epochs;
        o->opt.lr_min = o->lr_min >= 0 ? o->lr_min : o->opt.lr / 100;
    } else if (!strcmp(o->schedule, "step")) {
        o->opt.schedule = BP_SCHED_STEP;
        o->opt.gamma = o->gamma;
        o->opt.step_size = steps_per_epoch * (o->step_epochs ? o->step_epochs : 5);
    } else {
        o->opt.schedule = BP_SCHED_CONSTANT;
    }
    const bp_status st = bp_optim_create(&s->opt, s->net, &o->opt);
    return st == BP_OK ? 0 : bp_fail("--optim", st);
}

/* --newton: the fit, then one report line with the training loss and accuracy it reached. */
static int fit_newton(run *r)
{
    const bp_dataset *train = &r->s->train;
    bp_net *net = r->s->net;
    const double t0 = now();
    int iters = 0;
    bp_status st = bp_logreg_newton(net, train->n, train->X, train->n_features, train->labels, r->o->ridge, 50,
                                    1e-8, &iters);
    if (st != BP_OK)
        return bp_fail("--newton", st);
    const double secs = now() - t0;
    if (!r->o->quiet)
        printf("newton: %d iterations, %.1f s\n", iters, secs);
    double tr = 0, loss = NAN;
    if ((st = bp_net_accuracy(net, train->n, train->X, train->n_features, train->labels, &tr, NULL)) != BP_OK ||
        (st = bp_net_eval_loss(net, train->n, train->X, train->n_features, train->labels, 0, &loss)) != BP_OK)
        return bp_fail("evaluating", st);
    bp_epoch_report rep = {.epoch = 1, .loss = loss, .metric = tr, .seconds = secs,
                           .samples_per_s = secs > 0 ? train->n / secs : 0, .val_loss = NAN, .val_metric = NAN};
    on_epoch(&rep, r);
    return 0;
}

/* The data's real targets (--csv-targets), labels (softmax cross-entropy) or one-hot rows in
 * *onehot (BCE and MSE learn those from labels). */
static int targets_of(const bp_net *net, const bp_dataset *d, void **onehot, const void **t, bp_int *ldt)
{
    if (d->targets) {
        *t = d->targets;
        *ldt = d->n_targets;
        return 0;
    }
    *t = d->labels;
    *ldt = 0;
    if (bp_net_loss(net) == BP_LOSS_SOFTMAX_XENT)
        return 0;
    *ldt = bp_net_n_out(net);
    if (!(*onehot = one_hot(d, *ldt)))
        return run_fail("out of memory");
    *t = *onehot;
    return 0;
}

/* An LM iteration as an epoch of the log and the report: its MSE (the loss column, whatever the
 * network's squared-error convention), the RMSE, the validation MSE and RMSE. */
static int on_lm_iter(const bp_lm_report *lm, void *ctx)
{
    run *r = ctx;
    const double t = lm->seconds - r->train_seconds;
    const int val = !isnan(lm->val_mse);
    bp_epoch_report rep = {.epoch = lm->iterations, .loss = lm->mse, .metric = sqrt(lm->mse),
                           .samples_per_s = 0, .seconds = t, .val_loss = lm->val_mse,
                           .val_metric = val ? sqrt(lm->val_mse) : NAN,
                           .best = val && (r->best_epoch == 0 || lm->val_mse < r->best_val)};
    return on_epoch(&rep, r);
}

static const char *lm_stop_name(bp_lm_stop s)
{
    static const char *const names[] = {"running", "the iteration limit (--epochs)", "the MSE goal",
                                        "a gradient below the minimum", "mu above its maximum",
                                        "no better validation MSE", "the callback"};
    return (int)s >= 0 && (int)s <= (int)BP_LM_CALLBACK ? names[s] : "?";
}

/* --optim lm: Levenberg-Marquardt for up to --epochs iterations, with the validation set (its
 * patience --early-stop, default 6: MATLAB trainlm's max_fail). */
static int fit_lm(run *r)
{
    session *s = r->s;
    const options *o = r->o;
    bp_lm_config c = bp_lm_defaults();
    c.max_iter = o->epochs > 1000000 ? 1000000 : (int)o->epochs;
    c.on_iter = on_lm_iter;
    c.ctx = r;
    const void *targets;
    bp_int ldt;
    int rc = targets_of(s->net, &s->train, &s->onehot, &targets, &ldt);
    if (!rc && s->val.X) {
        rc = targets_of(s->net, &s->val, &s->val_onehot, &c.T_val, &c.ldt_val);
        c.n_val = s->val.n;
        c.X_val = s->val.X;
        c.ldx_val = s->val.n_features;
        if (o->early_stop)
            c.max_fail = o->early_stop > 1000000 ? 1000000 : (int)o->early_stop;
    }
    if (rc)
        return rc;
    bp_lm_report rep;
    const bp_status st = bp_lm_fit(s->net, s->train.n, s->train.X, s->train.n_features, targets, ldt, &c, &rep);
    if (st != BP_OK)
        return bp_fail("--optim lm", st);
    if (!o->quiet)
        printf("lm: %d iterations, stopped by %s (mu %.3g, gradient norm %.3g)\n", rep.iterations,
               lm_stop_name(rep.stop), rep.mu, rep.grad_norm);
    return 0;
}

/* First-order training through bp_train, with the validation set and early stopping; under
 * mpiexec, on this rank's rows with the global batch size (bp_train reduces over the ranks). */
static int fit_first_order(run *r)
{
    session *s = r->s;
    const options *o = r->o;
    bp_train_config tc = {.epochs = o->epochs, .batch_size = o->batch, .seed = o->seed, .shuffle = !o->no_shuffle,
                          .on_epoch = on_epoch, .on_batch = on_batch, .ctx = r, .state = &s->state,
                          .n_val = s->val.n, .X_val = s->val.X, .ldx_val = s->val.n_features,
                          .early_stop = o->early_stop};
    const void *targets;
    bp_int ldt;
    int rc = targets_of(s->net, &s->train, &s->onehot, &targets, &ldt);
    if (!rc && s->val.X)
        rc = targets_of(s->net, &s->val, &s->val_onehot, &tc.targets_val, &tc.ldt_val);
    if (rc)
        return rc;
    const bp_status st = bp_train(s->net, s->opt, s->train.n, s->train.X, s->train.n_features, targets, ldt, &tc);
    return st == BP_OK ? 0 : bp_fail("training", st);
}

/* The epoch log closed (a write error found) and, for --plot, drawn. */
static int close_log(const options *o, session *s)
{
    if (s->log) {
        const int bad = fclose(s->log);
        s->log = NULL;
        if (bad)
            return run_fail("cannot write %s", o->log ? o->log : s->logname);
    }
    return o->plot ? plot(o, o->log ? o->log : s->logname, s->val.X != NULL) : 0;
}

/* After the fit: failures the callbacks saw, the curves, the validation outcome, the save, the
 * final lines (the test accuracy of the parameters kept, exact as a fraction; or their test RMSE
 * to 17 digits, for real targets). The test set is evaluated first: under mpiexec that is the
 * last step every rank takes together, before rank 0 alone writes its files. */
static int finish(run *r)
{
    const options *o = r->o;
    session *s = r->s;
    int rc;
    if (r->diverged)
        return run_fail("training diverged in epoch %ld: its loss is not finite; the model is not saved "
                        "(try a lower --lr)", r->diverged);
    if (r->eval_st != BP_OK)  /* reported by on_epoch */
        return 1;
    double metric = 0;
    long correct = 0;
    bp_status st;
    if (s->test.X && (st = test_metric(s, &metric, &correct)) != BP_OK)
        return bp_fail("evaluating the test set", st);
    if ((rc = close_log(o, s)))
        return rc;
    if (s->val.X && r->last_epoch < o->epochs && !o->lm)
        printf("early stop after epoch %ld: no lower validation loss in %ld epochs\n", r->last_epoch, o->early_stop);
    if (s->val.X && r->best_epoch)
        printf("best epoch: %ld, validation loss %.17g (its parameters are kept)\n", r->best_epoch, r->best_val);
    if (o->save && (rc = model_save(o, s->net, s->opt, o->newton || o->lm ? NULL : &s->state)))
        return rc;
    if (s->test.X && s->test.targets)
        printf("test rmse: %.17g\n", metric);
    else if (s->test.X)
        print_accuracy("test accuracy", correct, s->n_test);
    printf("train time: %.1f s\n", r->train_seconds);
    return 0;
}

static void session_free(session *s)
{
    if (s->log)
        fclose(s->log);
    if (s->logname[0])
        unlink(s->logname);
    free(s->onehot);
    free(s->val_onehot);
    free(s->outputs);
    bpt_mpi_detach();  /* before the network goes */
    bp_optim_destroy(s->opt);
    bp_net_destroy(s->net);
    bp_dataset_free(&s->train);  /* also the synthetic and split sets: a zeroed allocator means free() */
    bp_dataset_free(&s->test);
    bp_dataset_free(&s->val);
}

/* Under mpiexec every rank agrees (bpt_agree) before the steps the ranks take together, the
 * network's attachment and training, so that a rank that failed alone stops them all. */
int train_main(options *o)
{
    session s = {0};
    int rc = read_sets(o, &s);
    if (!rc)
        rc = build_model(o, &s);
    if (!rc)
        rc = shard_sets(o, &s);
    if (!(rc = bpt_agree(rc)))
        rc = bpt_mpi_attach(s.net, o->threads, o->quiet);
    if (!rc)
        rc = prepare_fit(o, &s);
    if (!rc)
        rc = open_log(o, &s.log, s.logname, sizeof s.logname);  /* rank 0 alone has --log, --plot */
    rc = bpt_agree(rc);
    if (!rc) {
        /* mpiexec's ranks write to a pty whatever it is: no progress bar there */
        run r = {.o = o, .s = &s, .tty = isatty(1) && bpt_ranks() == 1};
        rc = o->newton ? fit_newton(&r) : o->lm ? fit_lm(&r) : fit_first_order(&r);
        if (!rc)
            rc = finish(&r);
    }
    session_free(&s);
    return rc;
}
