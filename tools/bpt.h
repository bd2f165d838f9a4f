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
    int no_shuffle;             /* --no-shuffle: every epoch in the data's order */
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
/* Under mpiexec with several ranks, this rank's rows alone (nothing with one rank): keep_share, a
 * contiguous slice (evaluation); keep_batch_share, its share of every global batch (training). */
int keep_share(bp_dataset *d);
int keep_batch_share(bp_dataset *d, bp_int batch);
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
 * the labels (every loss), counted (over every rank's rows under mpiexec); outputs is d->n x n_out
 * scratch. test_rmse: the RMSE against d's real targets (--csv-targets), over every rank's rows. */
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

/* Under an MPI launcher (bpt_mpi.c, built when Meson finds MPI; bpt_nompi.c, a plain run's
 * stand-ins, otherwise). A run started by mpiexec or mpirun (Open MPI's OMPI_COMM_WORLD_SIZE,
 * PMIx's PMIX_RANK, Hydra's PMI_RANK or PMI_SIZE in the environment) initialises MPI; any other
 * run never touches MPI. With several ranks, standard output is rank 0's alone (the other
 * ranks' goes to /dev/null) and every rank's messages start with "rank R: ". With one rank,
 * the run is a plain one.
 * bpt_mpi_start: MPI_Init when launched so (0, or 1 after a message). bpt_mpi_stop: detaches
 * and calls MPI_Finalize when bpt_mpi_start initialised MPI; every exit path of main calls it. */
int bpt_mpi_start(void);
void bpt_mpi_stop(void);
int bpt_rank(void);   /* this rank in MPI_COMM_WORLD; 0 in a plain run */
int bpt_ranks(void);  /* the number of ranks; 1 in a plain run */
/* Every rank's exit status so far: rc when nonzero, else the largest status of another rank
 * (which printed its message), else 0. Collective with several ranks: every rank calls it at
 * the same points, before the collective steps, so that no rank waits for one that quit. */
int bpt_agree(int rc);
/* With several ranks: makes net (planned, the same on every rank) a replica over
 * MPI_COMM_WORLD (bp_mpi_attach: rank 0's parameters broadcast, threads: --threads, else the
 * rank's share of its cores) and prints "mpi: N ranks, T threads per rank" unless quiet.
 * Collective. With one rank: nothing. bpt_mpi_detach (collective) undoes it; no-op when not
 * attached. */
int bpt_mpi_attach(bp_net *net, int threads, int quiet);
void bpt_mpi_detach(void);
/* Evaluation over every rank's rows when attached (bp_mpi_eval_loss, bp_mpi_accuracy,
 * bp_mpi_rmse), else bp_net_eval_loss, bp_net_accuracy, bp_net_rmse. */
bp_status bpt_eval_loss(bp_net *net, bp_int n, const void *X, bp_int ldx, const void *targets, bp_int ldt,
                        double *loss);
bp_status bpt_accuracy(bp_net *net, bp_int n, const void *X, bp_int ldx, const int32_t *labels, double *accuracy,
                       int64_t *confusion);
bp_status bpt_rmse(bp_net *net, bp_int n, const void *X, bp_int ldx, const void *targets, bp_int ldt, double *rmse);
/* Sums the n counts v over the ranks, in place (nothing with one rank), with this rank's status
 * `local` of computing them: returns local when it failed, BP_ERR_COMM when another rank's
 * failed (or MPI did), else BP_OK. Collective when attached: every rank calls it, failed or not. */
bp_status bpt_sum_counts(int64_t *v, int n, bp_status local);

#endif
