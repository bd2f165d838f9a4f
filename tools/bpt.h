/* SPDX-License-Identifier: MIT */
/* bpt.h: what the parts of backprop-train share: its options, its messages and its steps. */
#ifndef BPT_H
#define BPT_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <backprop.h>

enum { MAX_LAYERS = 64, MAX_TARGETS = 1024 };

#if defined(__GNUC__)
#define BPT_PRINTF __attribute__((format(printf, 1, 2)))
#else
#define BPT_PRINTF
#endif

/* What the program does: train (the default), --predict or --evaluate. */
typedef enum bpt_mode { BPT_TRAIN = 0, BPT_PREDICT, BPT_EVALUATE } bpt_mode;

typedef struct options {
    bpt_mode mode;
    const char *train, *test, *save, *load, *log, *plot;
    const char *predict, *out;  /* --predict FILE, --out FILE */
    const char *val;            /* --val FILE */
    double val_split;           /* --val-split F; 0: not given */
    long early_stop;            /* --early-stop K; 0: off */
    int resume;                 /* --resume */
    int csv_header;
    bp_int csv_label;
    int csv_label_set;          /* --csv-label given */
    bp_int csv_targets[MAX_TARGETS];  /* --csv-targets K1,K2,...: real targets (regression) */
    int n_targets;              /* 0: not given (class labels) */
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
    int lm;                     /* --optim lm: Levenberg-Marquardt (bp_lm_fit) */
    double ridge;
} options;

/* The squared-error losses (mse, lsq): real targets, the RMSE as the metric. */
static inline int bpt_squared(bp_loss loss)
{
    return loss == BP_LOSS_MSE || loss == BP_LOSS_LEAST_SQUARES;
}

/* Messages (bpt_messages.c): "backprop-train: ..." on stderr, returning the exit status:
 * 2 for usage errors, 1 for errors found while running, 1 for a library error. */
int fail(const char *fmt, ...) BPT_PRINTF;
int run_fail(const char *fmt, ...) BPT_PRINTF;
int bp_fail(const char *what, bp_status st);

/* --help and --version (bpt_usage.c). */
void usage(FILE *f);
void version(FILE *f);

/* Options (bpt_options.c): the defaults, then argv; returns 0, an exit status, or -1 when
 * --help or --version printed what was asked (exit 0). */
void options_defaults(options *o);
int parse_args(int argc, char **argv, options *o);

/* Checks (bpt_checks.c): the numbers' ranges and the options' combinations, usage errors found
 * before any data is read or file written. */
int check_values(const options *o);
int check_combinations(const options *o);

/* Data (bpt_data.c). */
int load_data(const options *o, const char *spec, int labels_needed, bp_dataset *d);
int synthetic(const options *o, bp_int n, uint64_t seed, bp_dataset *d);
int split_validation(double fraction, bp_dataset *train, bp_dataset *val);
void *one_hot(const bp_dataset *d, bp_int k);
size_t dtype_size(bp_dtype t);
double value_at(bp_dtype t, const void *p, size_t i);

/* The model (bpt_model.c): loaded (with the optimizer and training state when resuming)
 * or created and initialised, checked against the data, planned. */
int model_load(const options *o, bp_net **net, bp_optim **opt, bp_train_state *state);
int model_create(options *o, const bp_dataset *train, bp_net **net);
int model_check_data(const bp_net *net, const bp_dataset *d, const char *what);
int model_plan(const options *o, bp_net *net);
int model_save(const options *o, bp_net *net, const bp_optim *opt, const bp_train_state *state);

/* Evaluation shared by training and --evaluate (bpt_eval.c): the arg-max of the outputs against
 * the labels (every loss), counted; outputs is d->n x n_out scratch. test_rmse: the RMSE against
 * d's real targets (--csv-targets). */
bp_status count_correct(bp_net *net, const bp_dataset *d, void *outputs, long *correct);
bp_status test_rmse(bp_net *net, const bp_dataset *d, double *rmse);
void print_accuracy(const char *what, long correct, bp_int n);

/* Output files (bpt_output.c): the epoch log, the gnuplot curves. */
int open_log(const options *o, FILE **log, char *logname, size_t len);
int plot(const options *o, const char *data, int with_val);

/* Training (bpt_fit.c): everything from the data sets to the saved model. */
int train_main(options *o);

/* --predict and --evaluate (bpt_predict.c). */
int predict_main(const options *o);
int evaluate_main(const options *o);

#endif
