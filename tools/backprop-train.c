/* backprop-train: trains a dense network (or a logistic regression) on IDX or CSV data from the command line. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <backprop.h>

enum { MAX_LAYERS = 64 };

#if defined(__GNUC__)
#define BP_PRINTF_TOOL __attribute__((format(printf, 1, 2)))
#else
#define BP_PRINTF_TOOL
#endif

typedef struct options {
    const char *train, *test, *save, *load, *log, *plot;
    int csv_header;
    bp_int csv_label;
    bp_int widths[MAX_LAYERS + 1];
    int n_widths;
    bp_act act;
    double act_alpha;           /* NAN: the activation's default */
    bp_loss loss;
    int loss_set;               /* --loss given */
    bp_optim_config opt;
    int opt_set_lr;
    const char *schedule;
    double gamma, lr_min;
    long step_epochs;
    bp_int batch, micro;
    long epochs;
    uint64_t seed;
    bp_dtype dtype;
    int threads;                /* --threads: 0 = not given, -1 = 0 (the default count) */
    bp_backend backend;
    int init;  /* 0: by activation */
    int logreg, newton, standardize, raw_pixels, quiet, synthetic;
    double ridge;
} options;

static void usage(FILE *f)
{
    fputs(
"usage: backprop-train [options]\n"
"Trains a dense network by backpropagation on BLAS, or a multinomial logistic\n"
"regression, and reports loss and accuracy (or RMSE) after every epoch.\n"
"\n"
"Data\n"
"  --train SPEC         training data: IMAGES,LABELS (IDX files, gzip or plain)\n"
"                       or FILE.csv (numeric; see --csv-label)\n"
"  --test SPEC          test data, same forms (optional)\n"
"  --synthetic          a generated 10-class data set of 28x28 images instead\n"
"                       (6000 train / 1000 test): for machines without data\n"
"  --csv-label K        CSV column holding the class label (default 0)\n"
"  --csv-header yes|no|auto   first CSV line is a header (default auto)\n"
"  --raw-pixels         keep IDX pixels as 0..255 (default: scaled to [0, 1])\n"
"  --standardize        z-score every feature with the training set's statistics\n"
"\n"
"Model\n"
"  --layers A-B-...-K   widths from inputs to outputs (default 784-512-256-10;\n"
"                       the first must match the data, the last the classes)\n"
"  --act NAME[:ALPHA]   hidden activation: identity sigmoid tanh relu leaky_relu\n"
"                       elu gelu gelu_tanh softplus (default relu; leaky_relu:0.01)\n"
"  --loss xent|bce|mse  softmax cross-entropy with labels (default), sigmoid\n"
"                       binary cross-entropy or mean squared error with targets\n"
"  --init NAME          glorot glorot_normal he he_normal orthogonal (default:\n"
"                       he for the ReLU family, glorot otherwise)\n"
"  --logreg             multinomial logistic regression (one layer: inputs-K)\n"
"  --newton             fit the logistic regression by Newton/IRLS (small models\n"
"                       only; see --ridge) instead of first-order steps\n"
"  --ridge R            Newton's ridge term (default 1e-4)\n"
"  --float | --double   precision (default float)\n"
"  --load FILE          start from a saved model instead of a new one\n"
"  --save FILE          save the trained model (atomically)\n"
"\n"
"Training\n"
"  --optim NAME         sgd momentum nesterov adam adamw (default adam)\n"
"  --lr X               learning rate (default 0.001 for adam/adamw, 0.01 else)\n"
"  --momentum X --beta1 X --beta2 X --eps X --wd X   optimizer parameters\n"
"                       (PyTorch's defaults; --wd: L2, decoupled for adamw)\n"
"  --schedule NAME      constant, step or cosine (default cosine, to lr/100\n"
"                       over all epochs)\n"
"  --gamma X --step-epochs N   step schedule: lr x gamma every N epochs\n"
"  --lr-min X           cosine schedule's final rate\n"
"  --batch N            mini-batch size (default 64)\n"
"  --micro-batch N      planned micro-batch (default: the batch size)\n"
"  --epochs N           epochs (default 30)\n"
"  --seed S             initialisation and shuffling seed (default 1)\n"
"  --threads N          the network's threads (bp_net_set_threads; default and 0:\n"
"                       one per CPU of the affinity mask, at most OMP_NUM_THREADS\n"
"                       and OPENBLAS_NUM_THREADS; 1: the calling thread alone)\n"
"  --backend blas|naive kernels to run on (default blas)\n"
"\n"
"Output\n"
"  --log FILE.csv       one row per epoch: epoch,loss,train,test,seconds,samples_per_s\n"
"  --plot FILE.png      learning curves through gnuplot (when installed)\n"
"  --quiet              only the final lines\n"
"  --help               this text\n"
"\n"
"A terminal gets a progress bar per epoch; otherwise one line per epoch. The\n"
"run ends with 'test accuracy: X' (with test data) and 'train time: S s'.\n",
        f);
}

/* Prints "backprop-train: message" and returns the exit status. */
static int complain(int status, const char *fmt, va_list ap)
{
    fputs("backprop-train: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    return status;
}

/* Usage errors: exit status 2. */
static int fail(const char *fmt, ...) BP_PRINTF_TOOL;
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int rc = complain(2, fmt, ap);
    va_end(ap);
    return rc;
}

/* Errors found after the options were read (data, models, files): exit status 1. */
static int run_fail(const char *fmt, ...) BP_PRINTF_TOOL;
static int run_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int rc = complain(1, fmt, ap);
    va_end(ap);
    return rc;
}

static int bp_fail(const char *what, bp_status st)
{
    fprintf(stderr, "backprop-train: %s: %s (%s)\n", what, bp_strerror(st), bp_last_error());
    return 1;
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

/* A hidden activation by the library's name of it (softmax is not offered for hidden layers). */
static int act_lookup(const char *s)
{
    for (int k = BP_ACT_IDENTITY; k <= BP_ACT_SOFTPLUS; k++)
        if (strcmp(s, bp_act_name((bp_act)k)) == 0)
            return k;
    return -1;
}

/* The optimizer's and schedule's numbers, in the ranges bp_optim_create accepts (only those the
 * chosen rule and schedule read), and a --save directory that exists: usage errors, found before
 * any data is read or any file written. */
static int check_values(const options *o)
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
    if (o->save) {
        char dir[4096] = ".";
        const char *slash = strrchr(o->save, '/');
        if (slash) {  /* "/name" lives in "/" */
            const size_t len = slash == o->save ? 1 : (size_t)(slash - o->save);
            if (len >= sizeof dir)
                return fail("--save: the path '%s' is too long", o->save);
            memcpy(dir, o->save, len);
            dir[len] = '\0';
        }
        struct stat sb;
        if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode) || access(dir, W_OK | X_OK) != 0)
            return fail("--save: cannot write into the directory '%s' of %s", dir, o->save);
    }
    return 0;
}

static int parse_args(int argc, char **argv, options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        /* Options without a value. */
        if (!strcmp(a, "--help")) { usage(stdout); exit(0); }
        if (!strcmp(a, "--float")) { o->dtype = BP_F32; continue; }
        if (!strcmp(a, "--double")) { o->dtype = BP_F64; continue; }
        if (!strcmp(a, "--logreg")) { o->logreg = 1; continue; }
        if (!strcmp(a, "--newton")) { o->newton = 1; continue; }
        if (!strcmp(a, "--standardize")) { o->standardize = 1; continue; }
        if (!strcmp(a, "--raw-pixels")) { o->raw_pixels = 1; continue; }
        if (!strcmp(a, "--quiet")) { o->quiet = 1; continue; }
        if (!strcmp(a, "--synthetic")) { o->synthetic = 1; continue; }
        static const char *const with_value[] = {
            "--train", "--test", "--save", "--load", "--log", "--plot", "--csv-label", "--csv-header",
            "--layers", "--act", "--loss", "--init", "--optim", "--schedule", "--lr", "--momentum",
            "--beta1", "--beta2", "--eps", "--wd", "--gamma", "--lr-min", "--ridge", "--batch",
            "--micro-batch", "--threads", "--epochs", "--step-epochs", "--seed", "--backend"};
        if (strncmp(a, "--", 2) != 0)
            return fail("unexpected argument '%s' (see --help)", a);
        if (lookup(a, with_value, (int)(sizeof with_value / sizeof *with_value)) < 0)
            return fail("unknown option '%s' (see --help)", a);
        if (i + 1 >= argc)
            return fail("%s needs a value (see --help)", a);
        const char *v = argv[++i];
        long l;
        double d;
        int k;
        if (!strcmp(a, "--train")) o->train = v;
        else if (!strcmp(a, "--test")) o->test = v;
        else if (!strcmp(a, "--save")) o->save = v;
        else if (!strcmp(a, "--load")) o->load = v;
        else if (!strcmp(a, "--log")) o->log = v;
        else if (!strcmp(a, "--plot")) o->plot = v;
        else if (!strcmp(a, "--csv-label")) {
            if (parse_long(v, -1, 1 << 20, &l)) return fail("--csv-label: '%s' is not a column number", v);
            o->csv_label = (bp_int)l;
        } else if (!strcmp(a, "--csv-header")) {
            static const char *const h[] = {"no", "yes", "auto"};
            if ((k = lookup(v, h, 3)) < 0) return fail("--csv-header: '%s' is not yes, no or auto", v);
            o->csv_header = k == 2 ? -1 : k;
        } else if (!strcmp(a, "--layers")) {
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
                if (*end == '-') end++;
                else if (*end) return fail("--layers: '%s' is not a list like 784-256-10", v);
                p = end;
            }
            if (o->n_widths < 2) return fail("--layers: '%s' needs at least inputs and outputs", v);
        } else if (!strcmp(a, "--act")) {
            char name[32];
            const char *colon = strchr(v, ':');
            const size_t len = colon ? (size_t)(colon - v) : strlen(v);
            if (len >= sizeof name) return fail("--act: unknown activation '%s'", v);
            memcpy(name, v, len);
            name[len] = 0;
            if ((k = act_lookup(name)) < 0) return fail("--act: unknown activation '%s'", v);
            o->act = (bp_act)k;
            if (colon && parse_double(colon + 1, &o->act_alpha)) return fail("--act: bad alpha in '%s'", v);
        } else if (!strcmp(a, "--loss")) {
            static const char *const n[] = {"xent", "bce", "mse"};
            if ((k = lookup(v, n, 3)) < 0) return fail("--loss: '%s' is not xent, bce or mse", v);
            o->loss = (bp_loss)(k + 1);
            o->loss_set = 1;
        } else if (!strcmp(a, "--init")) {
            static const char *const n[] = {"glorot", "glorot_normal", "he", "he_normal", "orthogonal"};
            static const int map[] = {BP_INIT_GLOROT_UNIFORM, BP_INIT_GLOROT_NORMAL, BP_INIT_HE_UNIFORM,
                                      BP_INIT_HE_NORMAL, BP_INIT_ORTHOGONAL};
            if ((k = lookup(v, n, 5)) < 0) return fail("--init: unknown scheme '%s'", v);
            o->init = map[k];
        } else if (!strcmp(a, "--optim")) {
            static const char *const n[] = {"sgd", "momentum", "nesterov", "adam", "adamw"};
            if ((k = lookup(v, n, 5)) < 0) return fail("--optim: unknown optimizer '%s'", v);
            const double lr = o->opt.lr;
            o->opt = bp_optim_defaults((bp_optimizer)(k + 1), o->opt_set_lr ? lr : (k >= 3 ? 1e-3 : 1e-2));
        } else if (!strcmp(a, "--schedule")) {
            static const char *const n[] = {"constant", "step", "cosine"};
            if (lookup(v, n, 3) < 0) return fail("--schedule: '%s' is not constant, step or cosine", v);
            o->schedule = v;
        } else if (!strcmp(a, "--lr") || !strcmp(a, "--momentum") || !strcmp(a, "--beta1") ||
                   !strcmp(a, "--beta2") || !strcmp(a, "--eps") || !strcmp(a, "--wd") ||
                   !strcmp(a, "--gamma") || !strcmp(a, "--lr-min") || !strcmp(a, "--ridge")) {
            if (parse_double(v, &d)) return fail("%s: '%s' is not a finite number", a, v);
            if (!strcmp(a, "--lr")) { o->opt.lr = d; o->opt_set_lr = 1; }
            else if (!strcmp(a, "--momentum")) o->opt.momentum = d;
            else if (!strcmp(a, "--beta1")) o->opt.beta1 = d;
            else if (!strcmp(a, "--beta2")) o->opt.beta2 = d;
            else if (!strcmp(a, "--eps")) o->opt.eps = d;
            else if (!strcmp(a, "--wd")) o->opt.weight_decay = d;
            else if (!strcmp(a, "--gamma")) o->gamma = d;
            else if (!strcmp(a, "--lr-min")) o->lr_min = d;
            else o->ridge = d;
        } else if (!strcmp(a, "--batch") || !strcmp(a, "--micro-batch")) {
            if (parse_long(v, 1, 1 << 24, &l)) return fail("%s: '%s' is not a whole number >= 1", a, v);
            if (!strcmp(a, "--batch")) o->batch = (bp_int)l;
            else o->micro = (bp_int)l;
        } else if (!strcmp(a, "--threads")) {
            if (parse_long(v, 0, BP_NET_MAX_THREADS, &l))
                return fail("%s: '%s' is not a whole number in [0, %d]", a, v, BP_NET_MAX_THREADS);
            o->threads = l == 0 ? -1 : (int)l;
        } else if (!strcmp(a, "--epochs") || !strcmp(a, "--step-epochs")) {
            if (parse_long(v, 1, 1000000, &l)) return fail("%s: '%s' is not a whole number >= 1", a, v);
            if (!strcmp(a, "--epochs")) o->epochs = l;
            else o->step_epochs = l;
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            const unsigned long long s = strtoull(v, &end, 10);
            if (errno || end == v || *end || *v == '-' || *v == '+')
                return fail("--seed: '%s' is not a whole number in [0, 2^64)", v);
            o->seed = s;
        } else if (!strcmp(a, "--backend")) {
            static const char *const n[] = {"blas", "naive"};
            if ((k = lookup(v, n, 2)) < 0) return fail("--backend: '%s' is not blas or naive", v);
            o->backend = (bp_backend)k;
        } else
            return fail("unknown option '%s' (see --help)", a);
    }
    if (!o->train && !o->synthetic)
        return fail("no training data: give --train (or --synthetic); see --help");
    if (o->newton && !o->logreg)
        return fail("--newton fits a logistic regression: add --logreg");
    if (o->micro > o->batch)
        return fail("--micro-batch (%d) is larger than --batch (%d)", (int)o->micro, (int)o->batch);
    return check_values(o);
}

/* A data set from "IMAGES,LABELS" (IDX) or a CSV file. */
static int load_data(const options *o, const char *spec, bp_dataset *d)
{
    const size_t len = strlen(spec);
    const char *comma = strchr(spec, ',');
    bp_status st;
    if (len > 4 && !strcmp(spec + len - 4, ".csv") && !comma) {
        st = bp_csv_read(spec, o->dtype, o->csv_header, o->csv_label, NULL, d);
    } else {
        if (!comma)
            return run_fail("'%s' is neither IMAGES,LABELS (IDX) nor a .csv file", spec);
        char *images = strdup(spec);
        if (!images)
            return run_fail("out of memory");
        images[comma - spec] = 0;
        st = bp_idx_read(images, images + (comma - spec) + 1, o->dtype,
                         o->raw_pixels ? BP_SCALE_NONE : BP_SCALE_UNIT, NULL, d);
        free(images);
    }
    return st == BP_OK ? 0 : bp_fail("reading data", st);
}

/* A generated stand-in for an image data set: 10 classes, each a fixed random
 * 28x28 prototype of smooth blobs, samples = prototype + noise, clipped to [0, 1]. */
static int synthetic(const options *o, bp_int n, uint64_t seed, bp_dataset *d)
{
    enum { SIDE = 28, F = SIDE * SIDE, K = 10 };
    static float proto[K][F];
    uint64_t s = 88172645463325252u;  /* the prototypes are the same for train and test */
    for (int k = 0; k < K; k++)
        for (int p = 0; p < F; p++) {
            const int r = p / SIDE, c = p % SIDE;
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            const double cx = 6 + (double)(k * 7 % 17), cy = 6 + (double)(k * 11 % 17);
            const double g = exp(-((r - cy) * (r - cy) + (c - cx) * (c - cx)) / (18.0 + 4 * (k % 3)));
            proto[k][p] = (float)(0.8 * g + 0.15 * (double)(s >> 40) / (double)(1u << 24));
        }
    memset(d, 0, sizeof *d);
    d->dtype = o->dtype;
    d->n = n;
    d->n_features = F;
    d->n_classes = K;
    const size_t es = o->dtype == BP_F32 ? sizeof(float) : sizeof(double);
    d->X = malloc((size_t)n * F * es);
    d->labels = malloc((size_t)n * sizeof *d->labels);
    if (!d->X || !d->labels)
        return run_fail("out of memory");
    s = seed * 2654435761u + 1;
    for (bp_int i = 0; i < n; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        const int k = (int)(s % K);
        d->labels[i] = k;
        for (int p = 0; p < F; p++) {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            double x = 0.5 * proto[k][p] + 1.2 * ((double)(s >> 11) * 0x1.0p-53 - 0.5);
            x = x < 0 ? 0 : x > 1 ? 1 : x;
            if (o->dtype == BP_F32)
                ((float *)d->X)[(size_t)i * F + p] = (float)x;
            else
                ((double *)d->X)[(size_t)i * F + p] = x;
        }
    }
    return 0;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct run {
    const options *o;
    bp_net *net;
    const bp_dataset *test;
    void *outputs;          /* test.n x n_out, for the arg-max */
    FILE *log;
    int tty;
    double epoch_start, last_draw, train_seconds;
    double loss_sum;        /* of this epoch's batches so far: the bar's running loss */
    double last_test;
    bp_status eval_st;      /* a failed test evaluation, which stopped training */
    long diverged;          /* the epoch whose loss was not finite, which stopped training; 0: none */
} run;

/* One-hot rows (n x k, the data's dtype) of the labels: BCE and MSE targets. */
static void *one_hot(const bp_dataset *d, bp_int k)
{
    const size_t es = d->dtype == BP_F32 ? sizeof(float) : sizeof(double);
    char *t = calloc((size_t)d->n * (size_t)k, es);
    if (!t)
        return NULL;
    for (bp_int i = 0; i < d->n; i++) {
        const size_t q = (size_t)i * (size_t)k + (size_t)d->labels[i];
        if (d->dtype == BP_F32)
            ((float *)(void *)t)[q] = 1;
        else
            ((double *)(void *)t)[q] = 1;
    }
    return t;
}

/* Test accuracy: the arg-max of the outputs against the labels, for every loss. */
static bp_status test_accuracy(run *r, double *acc)
{
    const bp_int k = bp_net_n_out(r->net), n = r->test->n;
    const bp_status st = bp_net_forward(r->net, n, r->test->X, r->test->n_features, r->outputs, k);
    if (st != BP_OK)
        return st;
    long correct = 0;
    for (bp_int i = 0; i < n; i++) {
        bp_int best = 0;
        for (bp_int j = 1; j < k; j++) {
            const size_t a = (size_t)i * (size_t)k + (size_t)j, b = (size_t)i * (size_t)k + (size_t)best;
            const double yj = r->test->dtype == BP_F32 ? ((float *)r->outputs)[a] : ((double *)r->outputs)[a];
            const double yb = r->test->dtype == BP_F32 ? ((float *)r->outputs)[b] : ((double *)r->outputs)[b];
            if (yj > yb)
                best = j;
        }
        correct += best == r->test->labels[i];
    }
    *acc = n ? (double)correct / n : 0;
    return BP_OK;
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

static int on_epoch(const bp_epoch_report *rep, void *ctx)
{
    run *r = ctx;
    r->train_seconds += rep->seconds;
    if (!isfinite(rep->loss)) {  /* diverged: nothing after this epoch is worth computing */
        r->diverged = rep->epoch;
        return 1;
    }
    double test = NAN;
    if (r->test) {
        const bp_status st = test_accuracy(r, &test);
        if (st != BP_OK) {
            r->eval_st = st;
            bp_fail("evaluating the test set", st);
            return 1;
        }
    }
    r->last_test = test;
    if (!r->o->quiet) {
        if (r->tty)
            printf("\r\033[K");
        if (r->o->newton)
            printf("newton  loss %.4f  train acc %.4f", rep->loss, rep->metric);
        else
            printf("epoch %3ld/%ld  loss %.4f  train %s %.4f", rep->epoch, r->o->epochs, rep->loss,
                   r->o->loss == BP_LOSS_MSE ? "rmse" : "acc", rep->metric);
        if (r->test)
            printf("  test acc %.4f", test);
        printf("  %.0f samples/s  %.1f s\n", rep->samples_per_s, rep->seconds);
        fflush(stdout);
    }
    if (r->log)
        fprintf(r->log, "%ld,%.9g,%.9g,%.9g,%.6g,%.6g\n", rep->epoch, rep->loss, rep->metric, test,
                rep->seconds, rep->samples_per_s);
    return 0;
}

/* Nonzero when every parameter of the network is finite. */
static int params_finite(bp_net *net)
{
    const size_t n = bp_net_n_params(net);
    const void *p = bp_net_params(net);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(bp_net_dtype(net) == BP_F32 ? (double)((const float *)p)[i] : ((const double *)p)[i]))
            return 0;
    return 1;
}

static int plot(const options *o, const char *data)
{
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        fprintf(stderr, "backprop-train: gnuplot is not installed; --plot %s skipped "
                        "(Debian: apt-get install gnuplot-nox)\n", o->plot);
        return 0;
    }
    char script[] = "/tmp/backprop-plot-XXXXXX";
    const int fd = mkstemp(script);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f)
        return run_fail("--plot: cannot write a gnuplot script: %s", strerror(errno));
    const int classify = o->loss != BP_LOSS_MSE;
    fprintf(f,
            "set terminal pngcairo size 900,420 noenhanced\n"
            "set output '%s'\n"
            "set datafile separator ','\n"
            "set multiplot layout 1,2 title 'backprop-train learning curves'\n"
            "set xlabel 'epoch'\nset grid\nset key bottom right\n"
            "set ylabel 'mean training loss'\nset key top right\n"
            "plot '%s' skip 1 using 1:2 with linespoints title 'train loss'\n"
            "set ylabel '%s'\nset key bottom right\n"
            "plot '%s' skip 1 using 1:3 with linespoints title 'train', '' skip 1 using 1:4 with linespoints title 'test'\n"
            "unset multiplot\n",
            o->plot, data, classify ? "accuracy" : "RMSE", data);
    fclose(f);
    char cmd[sizeof script + 32];
    snprintf(cmd, sizeof cmd, "gnuplot %s", script);
    const int rc = system(cmd);
    unlink(script);
    if (rc != 0)
        return run_fail("--plot: gnuplot failed (status %d)", rc);
    if (!o->quiet)
        printf("learning curves: %s\n", o->plot);
    return 0;
}

/* What fitting needs before the log is opened: for --newton, a model small enough for its
 * Hessian (a usage error, exit 2); else the optimizer with its schedule over all the steps. */
static int prepare_fit(options *o, bp_net *net, bp_int n, bp_optim **opt)
{
    if (o->newton) {
        const size_t p = (size_t)(bp_net_n_in(net) + 1) * (size_t)bp_net_n_out(net);
        if (p > BP_LOGREG_NEWTON_MAX_PARAMS)
            return fail("--newton: the model has %zu parameters, more than %d (its Hessian would take %.0f MiB); "
                        "train it first-order", p, BP_LOGREG_NEWTON_MAX_PARAMS, (double)p * (double)p * 8 / 1048576);
        return 0;
    }
    const long steps_per_epoch = (n + o->batch - 1) / o->batch;
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
    const bp_status st = bp_optim_create(opt, net, &o->opt);
    return st == BP_OK ? 0 : bp_fail("--optim", st);
}

/* The epoch log (--log, or a temporary file for --plot alone, whose name goes to logname). */
static int open_log(const options *o, FILE **log, char *logname, size_t len)
{
    if (!o->log && !o->plot)
        return 0;
    char tmpname[] = "/tmp/backprop-log-XXXXXX";
    if (!o->log) {
        const int fd = mkstemp(tmpname);
        *log = fd >= 0 ? fdopen(fd, "w") : NULL;
        snprintf(logname, len, "%s", tmpname);
    } else {
        *log = fopen(o->log, "w");
    }
    if (!*log)
        return run_fail("cannot write %s: %s", o->log ? o->log : tmpname, strerror(errno));
    fprintf(*log, "epoch,loss,train,test,seconds,samples_per_s\n");
    return 0;
}

/* --newton: the fit, then one report line with the training loss and accuracy it reached. */
static int fit_newton(run *r, const bp_dataset *train)
{
    const double t0 = now();
    int iters = 0;
    bp_status st = bp_logreg_newton(r->net, train->n, train->X, train->n_features, train->labels, r->o->ridge, 50,
                                    1e-8, &iters);
    if (st != BP_OK)
        return bp_fail("--newton", st);
    const double secs = now() - t0;
    if (!r->o->quiet)
        printf("newton: %d iterations, %.1f s\n", iters, secs);
    double tr = 0, loss = NAN;
    if ((st = bp_net_accuracy(r->net, train->n, train->X, train->n_features, train->labels, &tr, NULL)) != BP_OK ||
        (st = bp_net_loss_and_grad(r->net, train->n, train->X, train->n_features, train->labels, 0, &loss)) != BP_OK)
        return bp_fail("evaluating", st);
    bp_epoch_report rep = {.epoch = 1, .loss = loss, .metric = tr, .seconds = secs,
                           .samples_per_s = secs > 0 ? train->n / secs : 0};
    on_epoch(&rep, r);
    return 0;
}

/* First-order training through bp_train (BCE and MSE learn one-hot targets, kept in *onehot). */
static int fit_first_order(run *r, bp_optim *opt, const bp_dataset *train, void **onehot)
{
    const options *o = r->o;
    bp_train_config tc = {.epochs = o->epochs, .batch_size = o->batch, .seed = o->seed, .shuffle = 1,
                          .on_epoch = on_epoch, .on_batch = on_batch, .ctx = r};
    const void *targets = train->labels;
    bp_int ldt = 0;
    if (o->loss != BP_LOSS_SOFTMAX_XENT) {
        ldt = bp_net_n_out(r->net);
        if (!(*onehot = one_hot(train, ldt)))
            return run_fail("out of memory");
        targets = *onehot;
    }
    const bp_status st = bp_train(r->net, opt, train->n, train->X, train->n_features, targets, ldt, &tc);
    return st == BP_OK ? 0 : bp_fail("training", st);
}

int main(int argc, char **argv)
{
    options o = {.csv_header = -1, .act = BP_ACT_RELU, .act_alpha = NAN, .loss = BP_LOSS_SOFTMAX_XENT,
                 .batch = 64, .epochs = 30, .seed = 1, .dtype = BP_F32, .ridge = 1e-4,
                 .gamma = 0.1, .lr_min = -1, .n_widths = 4, .widths = {784, 512, 256, 10}};
    o.opt = bp_optim_defaults(BP_OPT_ADAM, 1e-3);
    const int prc = parse_args(argc, argv, &o);
    if (prc)
        return prc;

    bp_dataset train = {0}, test = {0};
    int rc = 0;
    bp_net *net = NULL;
    bp_optim *opt = NULL;
    FILE *log = NULL;
    void *onehot = NULL, *r_outputs = NULL;
    char logname[64] = "";
    if (o.synthetic) {
        if ((rc = synthetic(&o, 6000, 1, &train)) || (rc = synthetic(&o, 1000, 2, &test)))
            goto done;
        if (!o.quiet)
            printf("data: synthetic 10-class 28x28 images, 6000 train / 1000 test\n");
    } else {
        if ((rc = load_data(&o, o.train, &train)) || (o.test && (rc = load_data(&o, o.test, &test))))
            goto done;
        if (!o.quiet) {
            printf("data: %d training samples of %d features, %d classes\n", (int)train.n,
                   (int)train.n_features, (int)train.n_classes);
            if (o.test)
                printf("      %d test samples\n", (int)test.n);
        }
    }
    if (o.test || o.synthetic) {
        if (test.n_features != train.n_features) {
            rc = run_fail("the test set has %d features, the training set %d", (int)test.n_features,
                      (int)train.n_features);
            goto done;
        }
    }
    if (o.standardize) {
        bp_status st = bp_dataset_standardize(&train, test.X ? &test : NULL, NULL, NULL);
        if (st != BP_OK) { rc = bp_fail("standardizing", st); goto done; }
    }
    if (!train.labels || (test.X && !test.labels)) {
        rc = run_fail("the data has no labels: this program trains classifiers (CSV: see --csv-label)");
        goto done;
    }
    bp_status st;
    if (o.load) {
        if ((st = bp_model_load(&net, o.load, NULL)) != BP_OK) { rc = bp_fail("--load", st); goto done; }
        if (bp_net_dtype(net) != o.dtype) {
            rc = run_fail("--load: the model is %s; pass %s", bp_net_dtype(net) == BP_F32 ? "float" : "double",
                      bp_net_dtype(net) == BP_F32 ? "--float" : "--double");
            goto done;
        }
    } else if (o.logreg) {
        const bp_int k = train.n_classes > 2 ? train.n_classes : 2;
        if ((st = bp_logreg_create(&net, o.dtype, train.n_features, k, NULL)) != BP_OK) {
            rc = bp_fail("creating the model", st);
            goto done;
        }
    } else {
        bp_layer_spec specs[MAX_LAYERS];
        const int nl = o.n_widths - 1;
        for (int i = 0; i < nl; i++)
            specs[i] = (bp_layer_spec){o.widths[i + 1], i == nl - 1 ? BP_ACT_IDENTITY : o.act,
                                       !isnan(o.act_alpha) ? o.act_alpha
                                       : o.act == BP_ACT_LEAKY_RELU ? 0.01 : o.act == BP_ACT_ELU ? 1 : 0};
        if (o.widths[0] != train.n_features) {
            rc = run_fail("--layers starts with %d inputs but the data has %d features", (int)o.widths[0],
                      (int)train.n_features);
            goto done;
        }
        if ((st = bp_net_create(&net, o.dtype, o.widths[0], nl, specs, o.loss, NULL)) != BP_OK) {
            rc = bp_fail("creating the network", st);
            goto done;
        }
    }
    /* A loaded model or a logistic regression has its own loss; --loss may only agree. */
    if (o.loss_set && o.loss != bp_net_loss(net)) {
        static const char *const names[] = {"", "xent", "bce", "mse"};
        rc = run_fail("--loss %s: the %s has loss %s", names[o.loss], o.load ? "loaded model" : "logistic regression",
                      names[bp_net_loss(net)]);
        goto done;
    }
    o.loss = bp_net_loss(net);
    if (bp_net_n_in(net) != train.n_features) {
        rc = run_fail("the model takes %d inputs but the data has %d features", (int)bp_net_n_in(net),
                  (int)train.n_features);
        goto done;
    }
    if (train.n_classes > bp_net_n_out(net)) {
        rc = run_fail("the data has %d classes but the model only %d outputs", (int)train.n_classes,
                  (int)bp_net_n_out(net));
        goto done;
    }
    if (test.X && test.n_classes > bp_net_n_out(net)) {  /* a label the model cannot predict */
        rc = run_fail("the test set has labels up to %d but the model only %d outputs", (int)test.n_classes - 1,
                      (int)bp_net_n_out(net));
        goto done;
    }
    if (!o.load) {
        const int relu = o.act == BP_ACT_RELU || o.act == BP_ACT_LEAKY_RELU || o.act == BP_ACT_ELU;
        const bp_init scheme = o.init ? (bp_init)o.init : relu && !o.logreg ? BP_INIT_HE_UNIFORM : BP_INIT_GLOROT_UNIFORM;
        if ((st = bp_net_init(net, scheme, o.seed, relu ? sqrt(2.0) : 1)) != BP_OK) {
            rc = bp_fail("initialising", st);
            goto done;
        }
    }
    if (o.threads && (st = bp_net_set_threads(net, o.threads < 0 ? 0 : o.threads)) != BP_OK) {
        rc = bp_fail("starting the network's threads", st);
        goto done;
    }
    if ((st = bp_net_set_backend(net, o.backend)) != BP_OK ||
        (st = bp_net_plan(net, o.micro ? o.micro : o.batch)) != BP_OK) {
        rc = bp_fail("planning", st);
        goto done;
    }

    r_outputs = test.X ? malloc((size_t)test.n * (size_t)bp_net_n_out(net) *
                                (o.dtype == BP_F32 ? sizeof(float) : sizeof(double))) : NULL;
    if (test.X && !r_outputs) {
        rc = run_fail("out of memory");
        goto done;
    }
    if ((rc = prepare_fit(&o, net, train.n, &opt)) || (rc = open_log(&o, &log, logname, sizeof logname)))
        goto done;
    run r = {.o = &o, .net = net, .test = test.X ? &test : NULL, .outputs = r_outputs, .log = log,
             .tty = isatty(1)};
    if ((rc = o.newton ? fit_newton(&r, &train) : fit_first_order(&r, opt, &train, &onehot)))
        goto done;
    if (r.diverged) {
        rc = run_fail("training diverged in epoch %ld: its loss is not finite; the model is not saved "
                      "(try a lower --lr)", r.diverged);
        goto done;
    }
    if (r.eval_st != BP_OK) {  /* reported by on_epoch */
        rc = 1;
        goto done;
    }
    if (log) {
        fclose(log);
        log = NULL;
    }
    if (o.plot && (rc = plot(&o, o.log ? o.log : logname)))
        goto done;
    if (o.save) {
        if (!params_finite(net)) {
            rc = run_fail("the trained parameters hold a NaN or Inf; the model is not saved");
            goto done;
        }
        if ((st = bp_model_save(net, o.save)) != BP_OK) { rc = bp_fail("--save", st); goto done; }
        if (!o.quiet)
            printf("model saved: %s\n", o.save);
    }
    if (r.test)
        printf("test accuracy: %.4f\n", r.last_test);
    printf("train time: %.1f s\n", r.train_seconds);
done:
    if (log)
        fclose(log);
    if (logname[0] && !o.log)
        unlink(logname);
    free(onehot);
    free(r_outputs);
    bp_optim_destroy(opt);
    bp_net_destroy(net);
    bp_dataset_free(&train);  /* also the synthetic sets: a zeroed allocator means free() */
    bp_dataset_free(&test);
    return rc;
}
