/* SPDX-License-Identifier: MIT */
/* bpt_checks.c: usage errors found after the command line is read and before any data is read
 * or any file written: numbers out of range, options that do not go together. */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "bpt.h"

/* A --save directory that exists and is writable. */
static int check_save_dir(const char *save)
{
    char dir[4096] = ".";
    const char *slash = strrchr(save, '/');
    if (slash) {  /* "/name" lives in "/" */
        const size_t len = slash == save ? 1 : (size_t)(slash - save);
        if (len >= sizeof dir)
            return fail("--save: the path '%s' is too long", save);
        memcpy(dir, save, len);
        dir[len] = '\0';
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode) || access(dir, W_OK | X_OK) != 0)
        return fail("--save: cannot write into the directory '%s' of %s", dir, save);
    return 0;
}

/* The optimizer's and schedule's numbers, in the ranges bp_optim_create accepts (only those the
 * chosen rule and schedule read), and a --save directory that exists. */
int check_values(const options *o)
{
    const bp_optim_config *c = &o->opt;
    const bp_optimizer k = c->kind;
    if (!(c->lr > 0))
        return fail("--lr: %g is not > 0", c->lr);
    if (!(c->weight_decay >= 0))
        return fail("--wd: %g is not >= 0", c->weight_decay);
    if ((k == BP_OPT_MOMENTUM || k == BP_OPT_NESTEROV) && !(c->momentum >= 0 && c->momentum < 1))
        return fail("--momentum: %g is not in [0, 1)", c->momentum);
    if (k == BP_OPT_ADAM || k == BP_OPT_ADAMW) {
        if (!(c->beta1 >= 0 && c->beta1 < 1))
            return fail("--beta1: %g is not in [0, 1)", c->beta1);
        if (!(c->beta2 >= 0 && c->beta2 < 1))
            return fail("--beta2: %g is not in [0, 1)", c->beta2);
        if (!(c->eps > 0))
            return fail("--eps: %g is not > 0", c->eps);
    }
    if (o->schedule && !strcmp(o->schedule, "step") && !(o->gamma > 0 && o->gamma <= 1))
        return fail("--gamma: %g is not in (0, 1]", o->gamma);
    if (o->lr_min != -1 && !(o->lr_min >= 0))
        return fail("--lr-min: %g is not >= 0", o->lr_min);
    if (o->newton && !(o->ridge >= 0))
        return fail("--ridge: %g is not >= 0", o->ridge);
    return o->save ? check_save_dir(o->save) : 0;
}

/* --predict and --evaluate run a saved model on data: they need --load (and --evaluate --test)
 * and take none of training's options. */
static int check_model_modes(const options *o)
{
    const char *mode = o->mode == BPT_PREDICT ? "--predict" : "--evaluate";
    if (o->predict && o->mode == BPT_EVALUATE)
        return fail("--predict and --evaluate are separate runs: give one of them");
    if (!o->load)
        return fail("%s needs a model: add --load FILE", mode);
    if (o->mode == BPT_EVALUATE && !o->test)
        return fail("--evaluate needs labelled data: add --test SPEC");
    const char *const extra = o->train ? "--train" : o->synthetic ? "--synthetic" : o->save ? "--save"
        : o->log ? "--log" : o->plot ? "--plot" : o->val ? "--val" : o->val_split > 0 ? "--val-split"
        : o->early_stop ? "--early-stop" : o->resume ? "--resume" : o->standardize ? "--standardize"
        : o->newton ? "--newton" : o->mode == BPT_PREDICT && o->test ? "--test" : NULL;
    if (extra)
        return fail("%s runs a saved model and trains nothing: drop %s", mode, extra);
    return 0;
}

/* Training: data, a validation set given one way, early stopping with one, a resumed run from a
 * loaded model. */
static int check_training(const options *o)
{
    if (!o->train && !o->synthetic)
        return fail("no training data: give --train (or --synthetic); see --help");
    if (o->out)
        return fail("--out is where --predict writes; a training run writes --save, --log and --plot");
    if (o->newton && !o->logreg)
        return fail("--newton fits a logistic regression: add --logreg");
    if (o->micro > o->batch)
        return fail("--micro-batch (%d) is larger than --batch (%d)", (int)o->micro, (int)o->batch);
    if (o->val && o->val_split > 0)
        return fail("--val and --val-split both give a validation set: give one of them");
    if (o->early_stop && !o->val && !(o->val_split > 0))
        return fail("--early-stop needs a validation set: add --val SPEC or --val-split F");
    if (o->newton && (o->val || o->val_split > 0 || o->resume))
        return fail("--newton fits in one go, without epochs: drop %s",
                    o->resume ? "--resume" : o->val ? "--val" : "--val-split");
    if (o->resume && !o->load)
        return fail("--resume goes on with a saved run: add --load FILE");
    if (o->lm && !bpt_squared(o->loss))
        return fail("--optim lm (Levenberg-Marquardt) fits a squared error: add --loss mse or --loss lsq");
    if (o->lm && (o->newton || o->resume))
        return fail("--optim lm keeps no optimizer state and is not Newton's method: drop %s",
                    o->newton ? "--newton" : "--resume");
    if (o->standardize && o->load)
        return fail("--standardize fits a new model's input statistics; a model from --load keeps its own");
    if (bpt_ranks() > 1 && (o->lm || o->newton))
        return fail("%s fits on the whole training set in one process and is not data-parallel: run it "
                    "without mpiexec (or with -np 1), or train first-order", o->lm ? "--optim lm" : "--newton");
    return 0;
}

/* --csv-targets: a regression on real targets (MSE), read without a label column; a new network's
 * last layer has a width per target. */
static int check_targets(const options *o)
{
    if (!o->n_targets)
        return 0;
    if (o->csv_label_set)
        return fail("--csv-label and --csv-targets: a file has class labels or real targets; give one of them");
    if (!bpt_squared(o->loss))
        return fail("--csv-targets: real targets are fitted with --loss mse or lsq, not --loss %s",
                    o->loss == BP_LOSS_SOFTMAX_XENT ? "xent" : "bce");
    if (o->mode != BPT_TRAIN)
        return 0;
    if (o->logreg)
        return fail("--csv-targets gives real targets: --logreg fits classes");
    if (!o->load && o->widths[o->n_widths - 1] != o->n_targets)
        return fail("--layers ends with %d output%s but --csv-targets names %d target column%s: the last width "
                    "must be the number of targets", (int)o->widths[o->n_widths - 1],
                    o->widths[o->n_widths - 1] == 1 ? "" : "s", o->n_targets, o->n_targets == 1 ? "" : "s");
    return 0;
}

int check_combinations(const options *o)
{
    const int rc = o->mode == BPT_TRAIN ? check_training(o) : check_model_modes(o);
    return rc ? rc : check_targets(o);
}
