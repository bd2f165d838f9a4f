/* SPDX-License-Identifier: MIT */
/* bpt_model.c: backprop-train's model: loaded or created, checked against the data, planned, saved. */
#include <math.h>
#include <stdlib.h>
#include "bpt.h"

static const char *const loss_names[] = {"", "xent", "bce", "mse", "lsq"};

/* --load, with the optimizer and training state for --resume; the dtype must be the one asked
 * for, and a --loss given must agree with the model's. */
int model_load(const options *o, bp_net **net, bp_optim **opt, bp_train_state *state)
{
    const bp_status st = bp_model_load_state(net, o->resume ? opt : NULL, o->resume ? state : NULL, o->load, NULL);
    if (st != BP_OK)
        return bp_fail("--load", st);
    if (bp_net_dtype(*net) != o->dtype)
        return run_fail("--load: the model is %s; pass %s", bp_net_dtype(*net) == BP_F32 ? "float" : "double",
                        bp_net_dtype(*net) == BP_F32 ? "--float" : "--double");
    if (o->resume && !*opt)
        return run_fail("--resume: %s holds no optimizer state to go on with (--newton, bp_model_save and "
                        "format version 1 save none)", o->load);
    if (o->loss_set && o->loss != bp_net_loss(*net))
        return run_fail("--loss %s: the loaded model has loss %s", loss_names[o->loss], loss_names[bp_net_loss(*net)]);
    return 0;
}

/* A new logistic regression or network for the training data, initialised (and standardising its
 * inputs with the training set's statistics for --standardize). */
int model_create(options *o, const bp_dataset *train, bp_net **net)
{
    bp_status st;
    if (o->logreg) {
        const bp_int k = train->n_classes > 2 ? train->n_classes : 2;
        if ((st = bp_logreg_create(net, o->dtype, train->n_features, k, NULL)) != BP_OK)
            return bp_fail("creating the model", st);
        if (o->loss_set && o->loss != bp_net_loss(*net))
            return run_fail("--loss %s: the logistic regression has loss %s", loss_names[o->loss],
                            loss_names[bp_net_loss(*net)]);
    } else {
        bp_layer_spec specs[MAX_LAYERS];
        const int nl = o->n_widths - 1;
        const double alpha = !isnan(o->act_alpha) ? o->act_alpha
                             : o->act == BP_ACT_LEAKY_RELU ? 0.01 : o->act == BP_ACT_ELU ? 1 : 0;
        for (int i = 0; i < nl; i++)
            specs[i] = (bp_layer_spec){o->widths[i + 1], i == nl - 1 ? BP_ACT_IDENTITY : o->act, alpha};
        if (o->widths[0] != train->n_features)
            return run_fail("--layers starts with %d inputs but the data has %d features", (int)o->widths[0],
                            (int)train->n_features);
        if ((st = bp_net_create(net, o->dtype, o->widths[0], nl, specs, o->loss, NULL)) != BP_OK)
            return bp_fail("creating the network", st);
    }
    const int relu = o->act == BP_ACT_RELU || o->act == BP_ACT_LEAKY_RELU || o->act == BP_ACT_ELU;
    const bp_init scheme = o->init ? (bp_init)o->init : relu && !o->logreg ? BP_INIT_HE_UNIFORM : BP_INIT_GLOROT_UNIFORM;
    if ((st = bp_net_init(*net, scheme, o->seed, relu ? sqrt(2.0) : 1)) != BP_OK)
        return bp_fail("initialising", st);
    if (o->standardize &&
        (st = bp_net_fit_standardization(*net, train->n, train->X, train->n_features)) != BP_OK)
        return bp_fail("--standardize", st);
    return 0;
}

/* The data fits the model: as many features as inputs, no label beyond the outputs (a label the
 * model cannot predict is refused, not counted as wrong), real targets only for an MSE model with
 * an output per target. what: "data" for the training set,
 * else "test set", "validation set", ... */
int model_check_data(const bp_net *net, const bp_dataset *d, const char *what)
{
    if (bp_net_n_in(net) != d->n_features)
        return run_fail("the model takes %d inputs but the %s has %d features", (int)bp_net_n_in(net), what,
                        (int)d->n_features);
    if (d->n_classes > bp_net_n_out(net) && what[0] == 'd')
        return run_fail("the data has %d classes but the model only %d outputs", (int)d->n_classes,
                        (int)bp_net_n_out(net));
    if (d->n_classes > bp_net_n_out(net))
        return run_fail("the %s has labels up to %d but the model only %d outputs", what, (int)d->n_classes - 1,
                        (int)bp_net_n_out(net));
    if (d->targets && !bpt_squared(bp_net_loss(net)))
        return run_fail("the %s has real targets (--csv-targets) but the model's loss is %s, not mse or lsq", what,
                        loss_names[bp_net_loss(net)]);
    if (d->targets && d->n_targets != bp_net_n_out(net))
        return run_fail("the %s has %d targets (--csv-targets) but the model %d outputs", what, (int)d->n_targets,
                        (int)bp_net_n_out(net));
    return 0;
}

/* Threads, backend and the plan for --micro-batch (default: the batch; when training under
 * mpiexec, the largest rank's share of it). */
int model_plan(const options *o, bp_net *net)
{
    bp_status st;
    const bp_int batch = o->mode == BPT_TRAIN ? bp_shard_count(o->batch, bpt_ranks(), 0) : o->batch;
    if (o->threads && (st = bp_net_set_threads(net, o->threads < 0 ? 0 : o->threads)) != BP_OK)
        return bp_fail("starting the network's threads", st);
    if ((st = bp_net_set_backend(net, o->backend)) != BP_OK ||
        (st = bp_net_plan(net, o->micro ? o->micro : batch)) != BP_OK)
        return bp_fail("planning", st);
    return 0;
}

/* Nonzero when every parameter of the network is finite. */
static int params_finite(bp_net *net)
{
    const size_t n = bp_net_n_params(net);
    const void *p = bp_net_params(net);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(value_at(bp_net_dtype(net), p, i)))
            return 0;
    return 1;
}

/* --save: the model with its optimizer and training state (either may be NULL). */
int model_save(const options *o, bp_net *net, const bp_optim *opt, const bp_train_state *state)
{
    if (!params_finite(net))
        return run_fail("the trained parameters hold a NaN or Inf; the model is not saved");
    const bp_status st = bp_model_save_state(net, opt, state, o->save);
    if (st != BP_OK)
        return bp_fail("--save", st);
    if (!o->quiet)
        printf("model saved: %s\n", o->save);
    return 0;
}
