/* SPDX-License-Identifier: MIT */
/* bpt_predict.c: backprop-train's --predict (a CSV of predictions) and --evaluate (loss, accuracy,
 * confusion matrix or RMSE, against labels or real targets) with a saved model. Under mpiexec
 * with several ranks, --predict runs on rank 0 alone (main), and --evaluate on every rank's
 * slice of the data, its figures summed over the ranks. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "bpt.h"

/* The model of --load, planned, and the data of spec (labels_needed: as load_data) read in the
 * model's precision (o->dtype). */
static int load_model_and_data(options *o, const char *spec, int labels_needed, bp_net **net, bp_dataset *d)
{
    const bp_status st = bp_model_load(net, o->load, NULL);
    if (st != BP_OK)
        return bp_fail("--load", st);
    o->dtype = bp_net_dtype(*net);
    const int rc = model_plan(o, *net);
    return rc ? rc : load_data(o, spec, labels_needed, d);
}

/* One CSV row: the class (classification) and the n_out values of row i of P. */
static void put_row(FILE *f, const bp_net *net, const void *P, bp_int i, const int32_t *classes)
{
    const bp_int k = bp_net_n_out(net);
    const bp_dtype t = bp_net_dtype(net);
    if (classes)
        fprintf(f, "%d,", (int)classes[i]);
    for (bp_int j = 0; j < k; j++)
        fprintf(f, t == BP_F32 ? "%.9g%s" : "%.17g%s", value_at(t, P, (size_t)i * (size_t)k + (size_t)j),
                j + 1 < k ? "," : "\n");
}

/* The header, then a row per sample: class,p0,p1,... (one-output BCE: class,p1), or y0,y1,... */
static void put_predictions(FILE *f, const bp_net *net, bp_int n, const void *P, const int32_t *classes)
{
    const bp_int k = bp_net_n_out(net);
    if (classes)
        fputs(k == 1 ? "class,p1\n" : "class,", f);
    for (bp_int j = 0; j < k && !(classes && k == 1); j++)
        fprintf(f, "%s%d%s", classes ? "p" : "y", (int)j, j + 1 < k ? "," : "\n");
    for (bp_int i = 0; i < n; i++)
        put_row(f, net, P, i, classes);
}

/* Probabilities (or outputs) and classes of d into the CSV o->out or stdout. */
static int write_predictions(const options *o, bp_net *net, const bp_dataset *d)
{
    const bp_int k = bp_net_n_out(net);
    const int classify = !bpt_squared(bp_net_loss(net));
    void *P = malloc((size_t)(d->n ? d->n : 1) * (size_t)k * dtype_size(d->dtype));
    int32_t *classes = classify ? malloc((size_t)(d->n ? d->n : 1) * sizeof *classes) : NULL;
    int rc = !P || (classify && !classes) ? run_fail("out of memory") : 0;
    bp_status st = BP_OK;
    if (!rc && ((st = bp_net_predict_proba(net, d->n, d->X, d->n_features, P, k)) != BP_OK ||
                (classify && (st = bp_net_predict_class(net, d->n, d->X, d->n_features, classes)) != BP_OK)))
        rc = bp_fail("predicting", st);
    FILE *f = rc ? NULL : o->out ? fopen(o->out, "w") : stdout;
    if (!rc && !f)
        rc = run_fail("--out: cannot write %s: %s", o->out, strerror(errno));
    if (f) {
        put_predictions(f, net, d->n, P, classes);
        if ((ferror(f) | (f == stdout ? fflush(f) : fclose(f))) != 0)
            rc = run_fail("cannot write the predictions to %s", o->out ? o->out : "standard output");
    }
    free(P);
    free(classes);
    return rc;
}

int predict_main(const options *opts)
{
    options o = *opts;
    bp_net *net = NULL;
    bp_dataset d = {0};
    int rc = load_model_and_data(&o, o.predict, 0, &net, &d);
    if (!rc && d.n_features != bp_net_n_in(net))
        rc = run_fail("the model takes %d inputs but %s has %d features%s", (int)bp_net_n_in(net), o.predict,
                      (int)d.n_features, d.n_features + 1 == bp_net_n_in(net) && o.csv_label >= 0 && !o.n_targets
                      ? " (no label column? pass --csv-label -1)" : "");
    if (!rc)
        rc = write_predictions(&o, net, &d);
    bp_dataset_free(&d);
    bp_net_destroy(net);
    return rc;
}

/* The confusion matrix (k x k, row = true label, column = predicted; over every rank's rows):
 * bp_net_accuracy's where it has one (softmax, one-output BCE), else counted from
 * bp_net_predict_class. */
static bp_status confusion_of(bp_net *net, const bp_dataset *d, int64_t *conf)
{
    const bp_int k = bp_net_n_out(net);
    if (bp_net_loss(net) == BP_LOSS_SOFTMAX_XENT || k == 1) {
        double acc;
        return bpt_accuracy(net, d->n, d->X, d->n_features, d->labels, &acc, conf);
    }
    int32_t *classes = malloc((size_t)(d->n ? d->n : 1) * sizeof *classes);
    const bp_status st = classes ? bp_net_predict_class(net, d->n, d->X, d->n_features, classes) : BP_ERR_NOMEM;
    for (bp_int i = 0; st == BP_OK && i < d->n; i++)
        conf[(size_t)d->labels[i] * (size_t)k + (size_t)classes[i]]++;
    free(classes);
    return bpt_sum_counts(conf, (int)(k * k), st);
}

static void print_confusion(const int64_t *conf, bp_int k)
{
    const bp_int m = k == 1 ? 2 : k;  /* one-output BCE: classes 0 and 1 */
    printf("confusion matrix (rows: true class, columns: predicted class):\n      ");
    for (bp_int j = 0; j < m; j++)
        printf(" %7d", (int)j);
    for (bp_int i = 0; i < m; i++) {
        printf("\n%6d", (int)i);
        for (bp_int j = 0; j < m; j++)
            printf(" %7lld", (long long)conf[(size_t)i * (size_t)m + (size_t)j]);
    }
    printf("\n");
}

/* Accuracy (exact as a fraction, the trace of the confusion matrix) and the matrix; n: the
 * samples of every rank. */
static int evaluate_classes(bp_net *net, const bp_dataset *d, bp_int n)
{
    const bp_int k = bp_net_n_out(net), m = k == 1 ? 2 : k;
    int64_t *conf = calloc((size_t)m * (size_t)m, sizeof *conf);
    if (!conf)
        return run_fail("out of memory");
    const bp_status st = confusion_of(net, d, conf);
    long correct = 0;
    for (bp_int i = 0; i < m; i++)
        correct += (long)conf[(size_t)i * (size_t)m + (size_t)i];
    if (st == BP_OK) {
        print_accuracy("test accuracy", correct, n);
        print_confusion(conf, k);
    }
    free(conf);
    return st == BP_OK ? 0 : bp_fail("evaluating", st);
}

/* MSE: the RMSE against the one-hot targets it learnt, and the arg-max accuracy training reports. */
static int evaluate_rmse(bp_net *net, const bp_dataset *d, const void *targets, bp_int n)
{
    const bp_int k = bp_net_n_out(net);
    void *outputs = malloc((size_t)(d->n ? d->n : 1) * (size_t)k * dtype_size(d->dtype));
    if (!outputs)
        return run_fail("out of memory");
    double rmse = 0;
    long correct = 0;
    bp_status st = bpt_rmse(net, d->n, d->X, d->n_features, targets, k, &rmse);
    if (st == BP_OK && (st = count_correct(net, d, outputs, &correct)) == BP_OK) {
        printf("test rmse: %.17g\n", rmse);
        print_accuracy("test accuracy", correct, n);
    }
    free(outputs);
    return st == BP_OK ? 0 : bp_fail("evaluating", st);
}

/* Real targets (--csv-targets): the mean loss and the RMSE, each to 17 digits. */
static int evaluate_targets(bp_net *net, const bp_dataset *d)
{
    double loss = 0, rmse = 0;
    bp_status st = bpt_eval_loss(net, d->n, d->X, d->n_features, d->targets, d->n_targets, &loss);
    if (st != BP_OK)
        return bp_fail("evaluating the loss", st);
    if ((st = test_rmse(net, d, &rmse)) != BP_OK)
        return bp_fail("evaluating", st);
    printf("test loss: %.17g\ntest rmse: %.17g\n", loss, rmse);
    return 0;
}

static int evaluate_model(bp_net *net, const bp_dataset *d, bp_int n)
{
    if (d->targets)
        return evaluate_targets(net, d);
    const int labels = bp_net_loss(net) == BP_LOSS_SOFTMAX_XENT;
    void *onehot = labels ? NULL : one_hot(d, bp_net_n_out(net));
    if (!labels && !onehot)
        return run_fail("out of memory");
    const void *targets = labels ? (const void *)d->labels : onehot;
    double loss = 0;
    int rc;
    const bp_status st = bpt_eval_loss(net, d->n, d->X, d->n_features, targets, labels ? 0 : bp_net_n_out(net),
                                       &loss);
    if (st != BP_OK) {
        rc = bp_fail("evaluating the loss", st);
    } else {
        printf("test loss: %.17g\n", loss);
        rc = bpt_squared(bp_net_loss(net)) ? evaluate_rmse(net, d, onehot, n) : evaluate_classes(net, d, n);
    }
    free(onehot);
    return rc;
}

int evaluate_main(const options *opts)
{
    options o = *opts;
    bp_net *net = NULL;
    bp_dataset d = {0};
    int rc = load_model_and_data(&o, o.test, 1, &net, &d);
    if (!rc && !d.labels && !d.targets)
        rc = run_fail("--evaluate: %s has no labels (CSV: see --csv-label, or --csv-targets for real targets)",
                      o.test);
    if (!rc)
        rc = model_check_data(net, &d, "test set");
    const bp_int n = d.n;  /* every rank's */
    if (!rc && !o.quiet)
        printf("model: %s; data: %d samples of %s\n", o.load, (int)n, o.test);
    if (!rc)
        rc = keep_share(&d);  /* under mpiexec: this rank's slice */
    if (!(rc = bpt_agree(rc)) && !(rc = bpt_mpi_attach(net, o.threads, o.quiet)))
        rc = evaluate_model(net, &d, n);
    bpt_mpi_detach();
    bp_dataset_free(&d);
    bp_net_destroy(net);
    return rc;
}
