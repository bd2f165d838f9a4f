/* SPDX-License-Identifier: MIT */
/* bpt_options.c: backprop-train's command line, read with getopt_long into an options struct. */
#define _GNU_SOURCE  /* getopt_long */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "bpt.h"

enum {
    OPT_TRAIN = 256, OPT_TEST, OPT_VAL, OPT_VAL_SPLIT, OPT_SAVE, OPT_LOAD, OPT_LOG, OPT_PLOT, OPT_PREDICT,
    OPT_OUT, OPT_CSV_LABEL, OPT_CSV_HEADER, OPT_CSV_TARGETS, OPT_LAYERS, OPT_ACT, OPT_LOSS, OPT_INIT, OPT_OPTIM,
    OPT_SCHEDULE, OPT_LR, OPT_MOMENTUM, OPT_BETA1, OPT_BETA2, OPT_EPS, OPT_WD, OPT_GAMMA, OPT_LR_MIN,
    OPT_RIDGE, OPT_BATCH, OPT_MICRO, OPT_THREADS, OPT_EPOCHS, OPT_STEP_EPOCHS, OPT_EARLY_STOP, OPT_SEED,
    OPT_BACKEND,
    /* without a value */
    OPT_HELP, OPT_VERSION, OPT_FLOAT, OPT_DOUBLE, OPT_LOGREG, OPT_NEWTON, OPT_STANDARDIZE,
    OPT_RAW_PIXELS, OPT_QUIET, OPT_SYNTHETIC, OPT_EVALUATE, OPT_RESUME, OPT_NO_SHUFFLE
};

static const struct option long_options[] = {
    {"train", required_argument, NULL, OPT_TRAIN}, {"test", required_argument, NULL, OPT_TEST},
    {"val", required_argument, NULL, OPT_VAL}, {"val-split", required_argument, NULL, OPT_VAL_SPLIT},
    {"save", required_argument, NULL, OPT_SAVE}, {"load", required_argument, NULL, OPT_LOAD},
    {"log", required_argument, NULL, OPT_LOG}, {"plot", required_argument, NULL, OPT_PLOT},
    {"predict", required_argument, NULL, OPT_PREDICT}, {"out", required_argument, NULL, OPT_OUT},
    {"csv-label", required_argument, NULL, OPT_CSV_LABEL}, {"csv-header", required_argument, NULL, OPT_CSV_HEADER},
    {"csv-targets", required_argument, NULL, OPT_CSV_TARGETS},
    {"layers", required_argument, NULL, OPT_LAYERS}, {"act", required_argument, NULL, OPT_ACT},
    {"loss", required_argument, NULL, OPT_LOSS}, {"init", required_argument, NULL, OPT_INIT},
    {"optim", required_argument, NULL, OPT_OPTIM}, {"schedule", required_argument, NULL, OPT_SCHEDULE},
    {"lr", required_argument, NULL, OPT_LR}, {"momentum", required_argument, NULL, OPT_MOMENTUM},
    {"beta1", required_argument, NULL, OPT_BETA1}, {"beta2", required_argument, NULL, OPT_BETA2},
    {"eps", required_argument, NULL, OPT_EPS}, {"wd", required_argument, NULL, OPT_WD},
    {"gamma", required_argument, NULL, OPT_GAMMA}, {"lr-min", required_argument, NULL, OPT_LR_MIN},
    {"ridge", required_argument, NULL, OPT_RIDGE}, {"batch", required_argument, NULL, OPT_BATCH},
    {"micro-batch", required_argument, NULL, OPT_MICRO}, {"threads", required_argument, NULL, OPT_THREADS},
    {"epochs", required_argument, NULL, OPT_EPOCHS}, {"step-epochs", required_argument, NULL, OPT_STEP_EPOCHS},
    {"early-stop", required_argument, NULL, OPT_EARLY_STOP}, {"seed", required_argument, NULL, OPT_SEED},
    {"backend", required_argument, NULL, OPT_BACKEND},
    {"help", no_argument, NULL, OPT_HELP}, {"version", no_argument, NULL, OPT_VERSION},
    {"float", no_argument, NULL, OPT_FLOAT}, {"double", no_argument, NULL, OPT_DOUBLE},
    {"logreg", no_argument, NULL, OPT_LOGREG}, {"newton", no_argument, NULL, OPT_NEWTON},
    {"standardize", no_argument, NULL, OPT_STANDARDIZE}, {"raw-pixels", no_argument, NULL, OPT_RAW_PIXELS},
    {"quiet", no_argument, NULL, OPT_QUIET}, {"synthetic", no_argument, NULL, OPT_SYNTHETIC},
    {"evaluate", no_argument, NULL, OPT_EVALUATE}, {"resume", no_argument, NULL, OPT_RESUME},
    {"no-shuffle", no_argument, NULL, OPT_NO_SHUFFLE},
    {NULL, 0, NULL, 0}};

void options_defaults(options *o)
{
    *o = (options){.csv_header = -1, .act = BP_ACT_RELU, .act_alpha = NAN, .loss = BP_LOSS_SOFTMAX_XENT,
                   .batch = 64, .epochs = 30, .seed = 1, .dtype = BP_F32, .ridge = 1e-4,
                   .gamma = 0.1, .lr_min = -1, .n_widths = 4, .widths = {784, 512, 256, 10}};
    o->opt = bp_optim_defaults(BP_OPT_ADAM, 1e-3);
}

/* "--name" of an option id, for messages. */
static const char *name_of(int id)
{
    for (const struct option *p = long_options; p->name; p++)
        if (p->val == id)
            return p->name;
    return "?";
}

static int parse_long(const char *s, long lo, long hi, long *v)
{
    char *end;
    errno = 0;
    const long x = strtol(s, &end, 10);
    if (errno || end == s || *end || x < lo || x > hi)
        return -1;
    *v = x;
    return 0;
}

static int parse_double(const char *s, double *v)
{
    char *end;
    errno = 0;
    const double x = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(x))
        return -1;
    *v = x;
    return 0;
}

static int lookup(const char *s, const char *const *names, int count)
{
    for (int i = 0; i < count; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static int parse_layers(const char *v, options *o)
{
    o->n_widths = 0;
    for (const char *p = v; *p;) {
        char *end;
        errno = 0;
        const long w = strtol(p, &end, 10);
        if (errno || end == p || o->n_widths > MAX_LAYERS)
            return fail("--layers: '%s' is not a list like 784-256-10 of at most %d widths", v, MAX_LAYERS + 1);
        if (w < 1 || w > (1 << 24))
            return fail("--layers: width %ld in '%s' is not in [1, %d]", w, v, 1 << 24);
        o->widths[o->n_widths++] = (bp_int)w;
        if (*end == '-')
            end++;
        else if (*end)
            return fail("--layers: '%s' is not a list like 784-256-10", v);
        p = end;
    }
    return o->n_widths < 2 ? fail("--layers: '%s' needs at least inputs and outputs", v) : 0;
}

/* --csv-targets K1,K2,...: distinct 0-based columns (the library checks them against the file). */
static int parse_targets(const char *v, options *o)
{
    o->n_targets = 0;
    for (const char *p = v;;) {
        char *end;
        errno = 0;
        const long k = strtol(p, &end, 10);
        if (errno || end == p || k < 0 || k > (1 << 20) || (*end && *end != ','))
            return fail("--csv-targets: '%s' is not a list like 1,2 of column numbers (0-based, at most %d)", v,
                        1 << 20);
        if (o->n_targets == MAX_TARGETS)
            return fail("--csv-targets: '%s' names more than %d columns", v, MAX_TARGETS);
        for (int j = 0; j < o->n_targets; j++)
            if (o->csv_targets[j] == k)
                return fail("--csv-targets: column %ld appears twice in '%s'", k, v);
        o->csv_targets[o->n_targets++] = (bp_int)k;
        if (!*end)
            return 0;
        p = end + 1;
    }
}

/* A hidden activation by the library's name of it (softmax is not offered for hidden layers),
 * with an optional ":ALPHA". */
static int parse_act(const char *v, options *o)
{
    char name[32];
    const char *colon = strchr(v, ':');
    const size_t len = colon ? (size_t)(colon - v) : strlen(v);
    if (len >= sizeof name)
        return fail("--act: unknown activation '%s'", v);
    memcpy(name, v, len);
    name[len] = 0;
    for (int k = BP_ACT_IDENTITY; k <= BP_ACT_SOFTPLUS; k++)
        if (strcmp(name, bp_act_name((bp_act)k)) == 0) {
            o->act = (bp_act)k;
            if (colon && parse_double(colon + 1, &o->act_alpha))
                return fail("--act: bad alpha in '%s'", v);
            return 0;
        }
    return fail("--act: unknown activation '%s'", v);
}

/* The options whose value is one of a list of names. */
static int parse_name(int id, const char *v, options *o)
{
    static const char *const header[] = {"no", "yes", "auto"}, *const loss[] = {"xent", "bce", "mse", "lsq"},
        *const init[] = {"glorot", "glorot_normal", "he", "he_normal", "orthogonal"},
        *const optim[] = {"sgd", "momentum", "nesterov", "adam", "adamw", "lm"},
        *const sched[] = {"constant", "step", "cosine"}, *const backend[] = {"blas", "naive"};
    static const int init_map[] = {BP_INIT_GLOROT_UNIFORM, BP_INIT_GLOROT_NORMAL, BP_INIT_HE_UNIFORM,
                                   BP_INIT_HE_NORMAL, BP_INIT_ORTHOGONAL};
    int k;
    switch (id) {
    case OPT_CSV_HEADER:
        if ((k = lookup(v, header, 3)) < 0) return fail("--csv-header: '%s' is not yes, no or auto", v);
        o->csv_header = k == 2 ? -1 : k;
        return 0;
    case OPT_LOSS:
        if ((k = lookup(v, loss, 4)) < 0) return fail("--loss: '%s' is not xent, bce, mse or lsq", v);
        o->loss = (bp_loss)(k + 1);
        o->loss_set = 1;
        return 0;
    case OPT_INIT:
        if ((k = lookup(v, init, 5)) < 0) return fail("--init: unknown scheme '%s'", v);
        o->init = init_map[k];
        return 0;
    case OPT_OPTIM: {
        if ((k = lookup(v, optim, 6)) < 0) return fail("--optim: unknown optimizer '%s'", v);
        o->lm = k == 5;
        if (o->lm)
            return 0;
        const double lr = o->opt.lr;
        o->opt = bp_optim_defaults((bp_optimizer)(k + 1), o->opt_set_lr ? lr : (k >= 3 ? 1e-3 : 1e-2));
        return 0;
    }
    case OPT_SCHEDULE:
        if (lookup(v, sched, 3) < 0) return fail("--schedule: '%s' is not constant, step or cosine", v);
        o->schedule = v;
        return 0;
    default:
        if ((k = lookup(v, backend, 2)) < 0) return fail("--backend: '%s' is not blas or naive", v);
        o->backend = (bp_backend)k;
        return 0;
    }
}

/* The options whose value is a finite real number (ranges: bpt_checks.c). */
static int parse_real(int id, const char *v, options *o)
{
    double d;
    if (parse_double(v, &d))
        return fail("--%s: '%s' is not a finite number", name_of(id), v);
    double *const target[] = {
        [OPT_LR - OPT_LR] = &o->opt.lr, [OPT_MOMENTUM - OPT_LR] = &o->opt.momentum,
        [OPT_BETA1 - OPT_LR] = &o->opt.beta1, [OPT_BETA2 - OPT_LR] = &o->opt.beta2,
        [OPT_EPS - OPT_LR] = &o->opt.eps, [OPT_WD - OPT_LR] = &o->opt.weight_decay,
        [OPT_GAMMA - OPT_LR] = &o->gamma, [OPT_LR_MIN - OPT_LR] = &o->lr_min, [OPT_RIDGE - OPT_LR] = &o->ridge};
    *target[id - OPT_LR] = d;
    o->opt_set_lr |= id == OPT_LR;
    return 0;
}

/* The options whose value is a whole number. */
static int parse_whole(int id, const char *v, options *o)
{
    long l;
    if (id == OPT_CSV_LABEL) {
        if (parse_long(v, -1, 1 << 20, &l)) return fail("--csv-label: '%s' is not a column number", v);
        o->csv_label = (bp_int)l;
        o->csv_label_set = 1;
    } else if (id == OPT_THREADS) {
        if (parse_long(v, 0, BP_NET_MAX_THREADS, &l))
            return fail("--threads: '%s' is not a whole number in [0, %d]", v, BP_NET_MAX_THREADS);
        o->threads = l == 0 ? -1 : (int)l;
    } else if (id == OPT_BATCH || id == OPT_MICRO) {
        if (parse_long(v, 1, 1 << 24, &l)) return fail("--%s: '%s' is not a whole number >= 1", name_of(id), v);
        *(id == OPT_BATCH ? &o->batch : &o->micro) = (bp_int)l;
    } else {  /* --epochs, --step-epochs, --early-stop */
        if (parse_long(v, 1, 1000000, &l)) return fail("--%s: '%s' is not a whole number >= 1", name_of(id), v);
        *(id == OPT_EPOCHS ? &o->epochs : id == OPT_STEP_EPOCHS ? &o->step_epochs : &o->early_stop) = l;
    }
    return 0;
}

static int parse_seed(const char *v, options *o)
{
    char *end;
    errno = 0;
    const unsigned long long s = strtoull(v, &end, 10);
    if (errno || end == v || *end || *v == '-' || *v == '+')
        return fail("--seed: '%s' is not a whole number in [0, 2^64)", v);
    o->seed = s;
    return 0;
}

static int parse_val_split(const char *v, options *o)
{
    double d;
    if (parse_double(v, &d) || !(d > 0 && d < 1))
        return fail("--val-split: '%s' is not a fraction F with 0 < F < 1", v);
    o->val_split = d;
    return 0;
}

/* One option with its value (NULL for those without); -1: --help or --version, done. */
static int set_option(int id, const char *v, options *o)
{
    const char **const path[] = {
        [OPT_TRAIN - OPT_TRAIN] = &o->train, [OPT_TEST - OPT_TRAIN] = &o->test, [OPT_VAL - OPT_TRAIN] = &o->val,
        [OPT_VAL_SPLIT - OPT_TRAIN] = NULL, [OPT_SAVE - OPT_TRAIN] = &o->save, [OPT_LOAD - OPT_TRAIN] = &o->load,
        [OPT_LOG - OPT_TRAIN] = &o->log, [OPT_PLOT - OPT_TRAIN] = &o->plot,
        [OPT_PREDICT - OPT_TRAIN] = &o->predict, [OPT_OUT - OPT_TRAIN] = &o->out};
    if (id >= OPT_TRAIN && id <= OPT_OUT && id != OPT_VAL_SPLIT) {
        *path[id - OPT_TRAIN] = v;
        return 0;
    }
    switch (id) {
    case OPT_VAL_SPLIT: return parse_val_split(v, o);
    case OPT_CSV_TARGETS: return parse_targets(v, o);
    case OPT_LAYERS: return parse_layers(v, o);
    case OPT_ACT: return parse_act(v, o);
    case OPT_CSV_HEADER: case OPT_LOSS: case OPT_INIT: case OPT_OPTIM: case OPT_SCHEDULE: case OPT_BACKEND:
        return parse_name(id, v, o);
    case OPT_LR: case OPT_MOMENTUM: case OPT_BETA1: case OPT_BETA2: case OPT_EPS: case OPT_WD: case OPT_GAMMA:
    case OPT_LR_MIN: case OPT_RIDGE:
        return parse_real(id, v, o);
    case OPT_SEED: return parse_seed(v, o);
    case OPT_CSV_LABEL: case OPT_BATCH: case OPT_MICRO: case OPT_THREADS: case OPT_EPOCHS: case OPT_STEP_EPOCHS:
    case OPT_EARLY_STOP:
        return parse_whole(id, v, o);
    case OPT_HELP: usage(stdout); return -1;
    case OPT_VERSION: version(stdout); return -1;
    case OPT_FLOAT: o->dtype = BP_F32; return 0;
    case OPT_DOUBLE: o->dtype = BP_F64; return 0;
    case OPT_LOGREG: o->logreg = 1; return 0;
    case OPT_NEWTON: o->newton = 1; return 0;
    case OPT_STANDARDIZE: o->standardize = 1; return 0;
    case OPT_RAW_PIXELS: o->raw_pixels = 1; return 0;
    case OPT_QUIET: o->quiet = 1; return 0;
    case OPT_SYNTHETIC: o->synthetic = 1; return 0;
    case OPT_EVALUATE: o->mode = BPT_EVALUATE; return 0;
    case OPT_NO_SHUFFLE: o->no_shuffle = 1; return 0;
    default: o->resume = 1; return 0;  /* OPT_RESUME */
    }
}

/* getopt_long's complaints, in the program's words (it prints nothing itself: opterr = 0). */
static int getopt_error(int c, char **argv)
{
    if (c == ':')
        return fail("--%s needs a value (see --help)", name_of(optopt));
    if (optopt >= OPT_HELP)  /* "--quiet=yes" */
        return fail("--%s takes no value (see --help)", name_of(optopt));
    return fail("unknown option '%s' (see --help)", argv[optind - 1]);
}

int parse_args(int argc, char **argv, options *o)
{
    opterr = 0;
    int c;
    /* '+': stop at the first non-option (reported below); ':': a missing value returns ':'. */
    while ((c = getopt_long(argc, argv, "+:", long_options, NULL)) != -1) {
        const int rc = c == '?' || c == ':' ? getopt_error(c, argv) : set_option(c, optarg, o);
        if (rc)
            return rc;
    }
    if (optind < argc)
        return fail("unexpected argument '%s' (see --help)", argv[optind]);
    if (o->predict && o->mode != BPT_EVALUATE)
        o->mode = BPT_PREDICT;
    if (o->n_targets && !o->loss_set)
        o->loss = BP_LOSS_MSE;  /* real targets: a regression */
    if (o->mode == BPT_TRAIN && bpt_rank() != 0)  /* under mpiexec, rank 0 alone writes files */
        o->save = o->log = o->plot = NULL;
    const int rc = check_combinations(o);
    return rc ? rc : check_values(o);
}
