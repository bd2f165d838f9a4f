/* SPDX-License-Identifier: MIT */
/* bench-mpi.c: data-parallel training steps over MPI (libbackprop-mpi), overlap on and off.
 *
 *   mpiexec -np P build/bench/bench-mpi [--repeats R] [--steps S] [--dtype float|double|both]
 *                                       [--batch N] [--threads K] [--sweep LIST|none] [--json]
 *                                       [--json-file FILE]
 *
 * What is measured, for the rank count P it runs under (P = 1 included):
 *
 * 1. Training steps. A network 784-512-512-10 (ReLU, ReLU, identity; softmax cross-entropy;
 *    He-uniform seed 42; Adam lr 1e-3) on random data (inputs in [0, 1), labels in [0, 10)), a
 *    global batch of 512 split over the ranks by the fixed rule (bp_shard_start/count), is
 *    attached with bp_mpi_attach (threads: the library's default, or --threads K) and takes steps
 *    of bp_optim_train_step on each rank's shard, in three modes:
 *      local       a second, plain network (no reducer, no communication; same threads) on the
 *                  same shard: the compute alone; at P = 1 the attached modes minus this is the
 *                  reducer's overhead;
 *      overlap on  the attachment, each layer's MPI_Iallreduce started as its gradient is final;
 *      overlap off the attachment, every reduction started after the backward pass.
 *    After a few warm-up steps of each mode, the modes run in rounds (R rounds of S steps per
 *    mode, the order rotating from round to round), so drift and noise hit all of them alike.
 *    Every step starts after an MPI_Barrier; a step's time is the maximum over the ranks of its
 *    wall time (bench_now around bp_optim_train_step). Reported: the median over the steps of
 *    that maximum; per step, from bp_mpi_get_stats (reset before each step), the median over the
 *    steps of the maximum over the ranks of wait_seconds (time in MPI after the backward pass)
 *    and of comm_seconds (all time in MPI calls during the pass), and the gradient bytes
 *    reduced. At the end, rank 0's parameters are broadcast and compared bitwise with every
 *    rank's (the replicas must be identical).
 *
 * 2. The overlap window per layer, at this rank's shard rows. No API times the layers of a
 *    pass, so a plain network (same threads) gets a reducer of this benchmark's own that does
 *    not communicate (size 1) and records the time of every callback: begin (the pass starts),
 *    layer_ready(i) (layer i's gradient is final: right after grads_ready(i)). Layer i's backward
 *    time, for i below the last, is ready(i) - ready(i + 1): its backward step (dZ, and dX = dZ W
 *    for i > 0) and its grads_ready step (dW = dZ^T X, db). The last layer's starts after the
 *    loss, which no callback marks, so its figure is the library's kernel bp_?dense_backward
 *    of its shape (identity: dW, db, dX) timed alone on one BLAS thread; forward + loss is
 *    bp_net_eval_loss on the same rows, timed alone. Layer i's window, the backward compute its
 *    reduction can hide behind, is ready(0) - ready(i): the backward of the layers below it (0
 *    for layer 0, whose reduction is never hidden). Beside them, labelled as such: the layer's two GEMMs alone (cblas_?gemm on
 *    buffers of the exact shapes, dW = dZ^T X and dX = dZ W for i > 0, at the shard's rows, BLAS
 *    on the rank's thread count). Medians over repeats, the windows and the backward pass as sums
 *    of the layers' medians; rank 0's figures.
 *
 *    The machine's load averages are printed with the figures: on a shared machine they say
 *    how quiet the run was.
 *
 * 3. The sweep for the paper model (bench/mpi-model.py): the same per-layer backward times at
 *    local batches 512, 256, ..., 1 (--sweep), all ranks measuring at once (rank 0's figures):
 *    under strong scaling a rank of p holds 512/p rows. For the model, run it with -np 1.
 *
 * The environment the figures need: Open MPI as root wants OMPI_ALLOW_RUN_AS_ROOT=1
 * OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 (or --allow-run-as-root); with more ranks than cores,
 * --oversubscribe (OMPI_MCA_rmaps_base_oversubscribe=1) and OMPI_MCA_mpi_yield_when_idle=1, so
 * that a rank waiting in MPI yields its core instead of spinning on one another rank needs; in a
 * container without ptrace rights, OMPI_MCA_btl_vader_single_copy_mechanism=none. Open MPI binds
 * each rank to a core when there are no more ranks than cores (np <= 2 here: one core each, so
 * the library's default gives each rank one thread; the header prints each rank's threads and
 * allowed CPUs); OMP_NUM_THREADS and OPENBLAS_NUM_THREADS cap the default further.
 * The header prints these variables as the run saw them. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <mpi.h>

#include "backprop.h"
#include "backprop/mpi.h"
#include "benchutil.h"

#define PROG "bench-mpi"
#define NL 3
#define DEFAULT_BATCH 512
#define MAX_BATCH 65536
#define DEFAULT_ROUNDS 5
#define DEFAULT_STEPS 10
#define WARMUP_STEPS 3
#define LEARNING_RATE 1e-3
#define INIT_SEED 42
#define DATA_SEED 0xda7a0512u
#define MAX_SWEEP 32
#define SWEEP_MIN_TIME 0.3     /* seconds of samples per batch size of the sweep */
#define SWEEP_MIN_REPS 7
#define SWEEP_MAX_REPS 1000

static const int width[NL + 1] = { 784, 512, 512, 10 };
#define N_IN (width[0])
#define N_OUT (width[NL])

static int g_rank = 0, g_size = 1;

static bp_act layer_act(int l)
{
    return l == NL - 1 ? BP_ACT_IDENTITY : BP_ACT_RELU;
}

static size_t layer_params(int l)
{
    return (size_t)width[l + 1] * ((size_t)width[l] + 1);
}

static size_t total_params(void)
{
    size_t n = 0;
    for (int l = 0; l < NL; l++)
        n += layer_params(l);
    return n;
}

/* ---- options ------------------------------------------------------------------------- */

struct opts {
    struct bench_common c;     /* c.min_reps: --repeats, the rounds */
    int steps;                 /* --steps: steps per mode per round */
    int prec[2];               /* --dtype: [0] float, [1] double */
    int batch;                 /* --batch: the global batch */
    int threads;               /* --threads: config.threads of bp_mpi_attach (0: the default) */
    int sweep[MAX_SWEEP];      /* --sweep: local batches of the model's sweep */
    int nsweep;
    const char *json_file;     /* --json-file: the JSON report written there too, or NULL */
};

static void usage(FILE *f)
{
    if (g_rank != 0)
        return;
    fprintf(f,
        "usage: mpiexec -np P " PROG " [options]\n"
        "Times data-parallel training steps (bp_optim_train_step on a network attached with\n"
        "bp_mpi_attach) of an MLP 784-512-512-10 (ReLU, ReLU, identity; softmax cross-entropy;\n"
        "Adam lr %g; He-uniform seed %d) on random data, a global batch split over the P ranks\n"
        "by the fixed rule, in three modes run in alternating rounds: a plain network without\n"
        "communication (local), the attachment with overlap on, and with overlap off. Then the\n"
        "per-layer backward times (the overlap window), at the shard's rows, from a reducer of the\n"
        "benchmark's own that timestamps the library's callbacks, beside the layer's GEMMs alone;\n"
        "and the same per-layer times at a sweep of local batches, for bench/mpi-model.py.\n"
        "Only rank 0 prints. Figures: medians over steps of the maximum over the ranks.\n"
        "\n"
        "  --repeats R        rounds; each runs --steps steps of every mode (default %d)\n"
        "  --steps S          steps per mode per round (default %d; %d warm-up steps first)\n"
        "  --dtype D          float, double or both (default float)\n"
        "  --batch N          the global batch, 1..%d (default %d)\n"
        "  --threads K        each rank's threads: bp_mpi_config.threads (default 0: the\n"
        "                     library's default, the rank's cores shared with the node's ranks)\n"
        "  --sweep LIST|none  local batches of the per-layer sweep (default: the global batch\n"
        "                     halved down to 1)\n"
        "  --json             print one JSON object instead of the tables (mpi-model.py reads it)\n"
        "  --json-file FILE   print the tables and write the JSON object to FILE (rank 0)\n"
        "  --help             print this help and exit\n"
        "\n"
        "Environment (Open MPI): as root OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1\n"
        "or --allow-run-as-root; OMPI_MCA_mpi_yield_when_idle=1 so that waiting ranks yield their\n"
        "core; --oversubscribe for more ranks than cores. E.g. on 2 cores:\n"
        "  OMPI_MCA_mpi_yield_when_idle=1 mpiexec --allow-run-as-root --oversubscribe -np 2 " PROG "\n"
        "Exit status 1 when a backprop or MPI call fails or the replicas differ; 2: bad options.\n",
        LEARNING_RATE, INIT_SEED, DEFAULT_ROUNDS, DEFAULT_STEPS, WARMUP_STEPS, MAX_BATCH, DEFAULT_BATCH);
}

#define bad_usage(...) bench_bad_usage(PROG, usage, __VA_ARGS__)

static void parse_dtype(struct opts *o, const char *val)
{
    const int f = !strcmp(val, "float") || !strcmp(val, "s"), d = !strcmp(val, "double") || !strcmp(val, "d");
    if (!f && !d && strcmp(val, "both"))
        bad_usage("--dtype: float, double or both, not '%s'", val);
    o->prec[0] = !d;
    o->prec[1] = !f;
}

/* --sweep LIST or none; without it, the global batch halved down to 1. */
static void parse_sweep(struct opts *o, const char *sweep)
{
    o->nsweep = 0;
    if (sweep == NULL) {
        for (int b = o->batch; b >= 1 && o->nsweep < MAX_SWEEP; b /= 2)
            o->sweep[o->nsweep++] = b;
        return;
    }
    if (!strcmp(sweep, "none"))
        return;
    char bad[BENCH_LIST_MAX];
    const int n = bench_parse_list(sweep, 1, MAX_BATCH, o->sweep, MAX_SWEEP, bad);
    if (n == BENCH_LIST_LONG)
        bad_usage("--sweep: list too long");
    if (n == BENCH_LIST_BAD)
        bad_usage("--sweep: not a batch size in 1..%d: '%s'", MAX_BATCH, bad);
    if (n == BENCH_LIST_MANY)
        bad_usage("--sweep: more than %d batch sizes", MAX_SWEEP);
    o->nsweep = n;
}

static void parse_args(struct opts *o, int argc, char **argv)
{
    static const char *const own[] = { "--steps", "--dtype", "--batch", "--threads", "--sweep", "--json-file", NULL };
    static const char *const common[] = { "--repeats", NULL };
    const struct bench_optset set = { own, NULL, common };
    struct bench_args a = { PROG, usage, argc, argv, 0, "" };
    const char *val, *sweep = NULL;
    *o = (struct opts){ .c = { .min_reps = DEFAULT_ROUNDS }, .steps = DEFAULT_STEPS, .prec = { 1, 0 },
                        .batch = DEFAULT_BATCH };
    while ((val = bench_next_option_in(&a, &o->c, &set)) != NULL) {
        if (!strcmp(a.name, "--steps"))
            o->steps = (int)bench_option_int(&a, val, 1, 100000);
        else if (!strcmp(a.name, "--dtype"))
            parse_dtype(o, val);
        else if (!strcmp(a.name, "--batch"))
            o->batch = (int)bench_option_int(&a, val, 1, MAX_BATCH);
        else if (!strcmp(a.name, "--threads"))
            o->threads = (int)bench_option_int(&a, val, 0, BP_NET_MAX_THREADS);
        else if (!strcmp(a.name, "--sweep"))
            sweep = val;
        else if (*val == '\0')
            bad_usage("--json-file: empty file name");
        else
            o->json_file = val;
    }
    if (o->c.min_reps > 10000)
        bad_usage("--repeats: at most 10000 rounds");
    if ((long)o->c.min_reps * o->steps > 1000000)
        bad_usage("--repeats x --steps: at most 1000000 steps per mode");
    parse_sweep(o, sweep);
}

/* ---- precisions ------------------------------------------------------------------------ */

struct gemm_ws;

struct prec {
    const char *name;
    bp_dtype dtype;
    size_t elsize;
    void (*fill)(void *p, size_t count, double lo, double hi, uint64_t *rng);
    /* seconds of C (m x n) = op(A) B, beta = 0, row-major: op(A) = A^T (ta CblasTrans) or A */
    double (*gemm)(enum CBLAS_TRANSPOSE ta, int m, int n, int k, const void *A, int lda, const void *B, int ldb,
                   void *C, int ldc);
    double (*last)(const struct gemm_ws *w);        /* seconds of the last layer's dense backward */
};

/* Buffers of the exact shapes of one layer's backward GEMMs at n rows. */
struct gemm_ws {
    int n;
    void *X[NL], *dZ[NL], *W[NL], *dW[NL], *dX[NL], *db;
};

#define DEFINE_PREC(P, T)                                                                    \
static double P##_gemm(enum CBLAS_TRANSPOSE ta, int m, int n, int k, const void *A, int lda, \
                       const void *B, int ldb, void *C, int ldc)                             \
{                                                                                            \
    const double t0 = bench_now();                                                           \
    cblas_##P##gemm(CblasRowMajor, ta, CblasNoTrans, m, n, k, (T)1, A, lda, B, ldb, (T)0,       \
                    C, ldc);                                                                 \
    return bench_now() - t0;                                                                 \
}                                                                                            \
                                                                                             \
/* The last layer's whole backward (identity; dZ = dY in place, dW, db, dX) by the kernel. */ \
static double P##_last(const struct gemm_ws *w)                                              \
{                                                                                            \
    const int n = w->n, l = NL - 1, k = width[l], m = width[l + 1];                          \
    const double t0 = bench_now();                                                           \
    const bp_status st = bp_##P##dense_backward(BP_ROW_MAJOR, n, k, m, w->X[l], k, w->W[l], k, \
        BP_ACT_IDENTITY, 0, NULL, 0, NULL, 0, w->dZ[l], m, w->dZ[l], m, 0, w->dW[l], k,      \
        w->db, w->dX[l], k);                                                                 \
    const double t = bench_now() - t0;                                                       \
    return st == BP_OK ? t : NAN;                                                            \
}

DEFINE_PREC(s, float)
DEFINE_PREC(d, double)

static const struct prec precs[2] = {
    { "float", BP_F32, sizeof(float), bench_fill_s, s_gemm, s_last },
    { "double", BP_F64, sizeof(double), bench_fill_d, d_gemm, d_last },
};

/* Seconds of layer l's backward GEMMs as the library calls them (exec.tmpl.c): dW_l (m x k) =
 * dZ^T (m x n) X (n x k), and dX (n x k) = dZ (n x m) W (m x k). */
static double gemm_dw(const struct prec *p, const struct gemm_ws *w, int l)
{
    const int n = w->n, k = width[l], m = width[l + 1];
    return p->gemm(CblasTrans, m, k, n, w->dZ[l], m, w->X[l], k, w->dW[l], k);
}

static double gemm_dx(const struct prec *p, const struct gemm_ws *w, int l)
{
    const int n = w->n, k = width[l], m = width[l + 1];
    return p->gemm(CblasNoTrans, n, k, m, w->dZ[l], m, w->W[l], k, w->dX[l], k);
}

static void *xalloc(size_t bytes)
{
    return bench_xalloc(PROG, bytes ? bytes : 1);
}

/* ncol columns of reps samples each, in one block: free(col[0]). */
static void columns_alloc(double **col, int ncol, int reps)
{
    col[0] = xalloc(sizeof(double) * (size_t)ncol * (size_t)reps);
    for (int k = 1; k < ncol; k++)
        col[k] = col[0] + (size_t)k * (size_t)reps;
}

static void gemm_ws_alloc(struct gemm_ws *w, const struct prec *p, int n, uint64_t seed)
{
    w->n = n;
    for (int l = 0; l < NL; l++) {
        const size_t k = (size_t)width[l], m = (size_t)width[l + 1], nn = (size_t)n;
        w->X[l] = xalloc(nn * k * p->elsize);
        w->dZ[l] = xalloc(nn * m * p->elsize);
        w->W[l] = xalloc(m * k * p->elsize);
        w->dW[l] = xalloc(m * k * p->elsize);
        w->dX[l] = xalloc(nn * k * p->elsize);
        p->fill(w->X[l], nn * k, 0, 1, &seed);
        p->fill(w->dZ[l], nn * m, -1.0 / n, 1.0 / n, &seed);
        p->fill(w->W[l], m * k, -0.1, 0.1, &seed);
        memset(w->dW[l], 0, m * k * p->elsize);
        memset(w->dX[l], 0, nn * k * p->elsize);
    }
    w->db = xalloc((size_t)width[NL] * p->elsize);
}

static void gemm_ws_free(struct gemm_ws *w)
{
    for (int l = 0; l < NL; l++) {
        free(w->X[l]);
        free(w->dZ[l]);
        free(w->W[l]);
        free(w->dW[l]);
        free(w->dX[l]);
    }
    free(w->db);
}

/* ---- failures ------------------------------------------------------------------------------ */

/* A failed backprop call: the message with the rank, then every rank stops. */
static void check(bp_status st, const char *what)
{
    if (st != BP_OK) {
        fprintf(stderr, PROG ": rank %d: %s failed: %s: %s\n", g_rank, what, bp_strerror(st), bp_last_error());
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}

static void check_mpi(int rc, const char *what)
{
    if (rc != MPI_SUCCESS) {
        char msg[MPI_MAX_ERROR_STRING];
        int len = 0;
        MPI_Error_string(rc, msg, &len);
        fprintf(stderr, PROG ": rank %d: %s failed: %s\n", g_rank, what, msg);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}

/* ---- networks and data ------------------------------------------------------------------------ */

static bp_net *net_create(const struct prec *p, int plan_rows)
{
    bp_layer_spec spec[NL];
    for (int l = 0; l < NL; l++)
        spec[l] = (bp_layer_spec){ width[l + 1], layer_act(l), 0 };
    bp_net *net = NULL;
    check(bp_net_create(&net, p->dtype, N_IN, NL, spec, BP_LOSS_SOFTMAX_XENT, NULL), "bp_net_create");
    check(bp_net_plan(net, plan_rows > 0 ? plan_rows : 1), "bp_net_plan");
    check(bp_net_init(net, BP_INIT_HE_UNIFORM, INIT_SEED, 1), "bp_net_init");
    return net;
}

static bp_optim *adam_create(bp_net *net)
{
    bp_optim_config cfg = bp_optim_defaults(BP_OPT_ADAM, LEARNING_RATE);
    bp_optim *opt = NULL;
    check(bp_optim_create(&opt, net, &cfg), "bp_optim_create");
    return opt;
}

/* The global batch, the same on every rank (seeded); each rank uses its shard's rows. */
struct data {
    void *X;
    int32_t *labels;
    int n;
};

static void data_make(struct data *d, const struct prec *p, int n)
{
    uint64_t seed = DATA_SEED;
    d->n = n;
    d->X = xalloc((size_t)n * N_IN * p->elsize);
    d->labels = xalloc((size_t)n * sizeof *d->labels);
    p->fill(d->X, (size_t)n * N_IN, 0, 1, &seed);
    for (int i = 0; i < n; i++)
        d->labels[i] = (int32_t)(bench_uniform(&seed) * N_OUT);
}

static void data_free(struct data *d)
{
    free(d->X);
    free(d->labels);
}

/* ---- the timing reducer: timestamps of the library's callbacks, no communication --------------- */

struct timeline {
    double begin, ready[NL], finish;
};

static bp_status tl_begin(void *ctx, bp_int n_local, bp_int *n_total)
{
    struct timeline *t = ctx;
    t->begin = bench_now();
    *n_total = n_local;
    return BP_OK;
}

static bp_status tl_ready(void *ctx, bp_int layer, void *grad, size_t count)
{
    struct timeline *t = ctx;
    (void)grad;
    (void)count;
    if (layer >= 0 && layer < NL)
        t->ready[layer] = bench_now();
    return BP_OK;
}

static bp_status tl_finish(void *ctx, double *v, int n)
{
    struct timeline *t = ctx;
    (void)v;
    (void)n;
    t->finish = bench_now();
    return BP_OK;
}

static bp_status tl_sum(void *ctx, double *v, int n)
{
    (void)ctx;
    (void)v;
    (void)n;
    return BP_OK;
}

/* Per-layer backward times at n rows (medians, seconds). */
struct layer_times {
    int batch, reps;
    double layer[NL];      /* layer i's backward: ready(i) - ready(i + 1); the last: its kernel alone */
    double window[NL];     /* ready(0) - ready(i): the backward below layer i (sum of medians) */
    double backward;       /* window[L-1] + layer[L-1] */
    double forward_loss;   /* bp_net_eval_loss on the same rows, alone */
    double pass;           /* begin .. finish of bp_net_loss_and_grad */
    double gemm_dw[NL], gemm_dx[NL];   /* the GEMMs alone (NaN: not measured; dx of layer 0: none) */
};

/* A plain network at n rows with the timing reducer, and n rows of the global data. */
struct pass_bench {
    const struct prec *p;
    int n;
    bp_net *net;
    struct timeline tl;
    void *X;
    int32_t *labels;
};

static void pass_bench_open(struct pass_bench *b, const struct prec *p, int n, int threads, const struct data *d)
{
    *b = (struct pass_bench){ .p = p, .n = n };
    const bp_reducer red = { &b->tl, 0, 1, tl_begin, tl_ready, NULL, tl_finish, tl_sum };
    b->net = net_create(p, n);
    check(bp_net_set_threads(b->net, threads), "bp_net_set_threads");
    check(bp_net_set_reducer(b->net, &red), "bp_net_set_reducer");
    /* n rows of the global data, wrapping if n exceeds it */
    const size_t row = N_IN * p->elsize;
    b->X = xalloc((size_t)n * row);
    b->labels = xalloc((size_t)n * sizeof *b->labels);
    for (int i = 0; i < n; i++) {
        memcpy((char *)b->X + (size_t)i * row, (const char *)d->X + (size_t)(i % d->n) * row, row);
        b->labels[i] = d->labels[i % d->n];
    }
}

static void pass_bench_close(struct pass_bench *b)
{
    check(bp_net_set_reducer(b->net, NULL), "bp_net_set_reducer");
    bp_net_destroy(b->net);
    free(b->X);
    free(b->labels);
}

/* Seconds of bp_net_eval_loss (forward + loss) on the rows. */
static double forward_loss(struct pass_bench *b)
{
    double loss;
    const double t0 = bench_now();
    check(bp_net_eval_loss(b->net, b->n, b->X, N_IN, b->labels, 1, &loss), "bp_net_eval_loss");
    return bench_now() - t0;
}

/* Seconds of bp_net_loss_and_grad on the rows; its callbacks' times in b->tl. */
static double gradient_pass(struct pass_bench *b)
{
    double loss;
    const double t0 = bench_now();
    check(bp_net_loss_and_grad(b->net, b->n, b->X, N_IN, b->labels, 1, &loss), "bp_net_loss_and_grad");
    return bench_now() - t0;
}

/* After a warm-up, the repeats for SWEEP_MIN_TIME seconds, from one warm gradient pass. */
static int pass_repeats(struct pass_bench *b)
{
    for (int k = 0; k < 2; k++) {
        gradient_pass(b);
        forward_loss(b);
    }
    return bench_reps_for(SWEEP_MIN_TIME, 1.5 * gradient_pass(b), SWEEP_MIN_REPS, SWEEP_MAX_REPS);
}

/* The samples of time_layers: a column per figure; S_SEG + i: ready(i) - ready(i + 1), i < NL - 1. */
enum { S_FL, S_PASS, S_LAST, S_SEG, NS = S_SEG + NL - 1 };

/* reps samples of every figure, the three measurements in an order that rotates from repeat to repeat. */
static void sample_layers(struct pass_bench *b, const struct gemm_ws *w, int reps, double *col[NS])
{
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < 3; k++) {
            switch ((k + r) % 3) {
            case 0:
                col[S_FL][r] = forward_loss(b);
                break;
            case 1:
                gradient_pass(b);
                col[S_PASS][r] = b->tl.finish - b->tl.begin;
                for (int i = 0; i < NL - 1; i++)
                    col[S_SEG + i][r] = b->tl.ready[i] - b->tl.ready[i + 1];
                break;
            default:
                col[S_LAST][r] = b->p->last(w);
            }
        }
}

/* The medians; the windows and the backward as sums of the layers' medians, so that the figures add up. */
static void layer_medians(double *col[NS], int reps, struct layer_times *out)
{
    out->forward_loss = bench_median(col[S_FL], reps);
    out->pass = bench_median(col[S_PASS], reps);
    for (int i = 0; i < NL; i++) {
        out->layer[i] = bench_median(col[i < NL - 1 ? S_SEG + i : S_LAST], reps);
        out->window[i] = i > 0 ? out->window[i - 1] + out->layer[i - 1] : 0;
    }
    out->backward = out->window[NL - 1] + out->layer[NL - 1];
}

/* The layers' GEMMs alone, BLAS on `threads` threads (0: 1): medians of reps after a warm-up. */
static void time_gemms(const struct prec *p, const struct gemm_ws *w, int threads, int reps, struct layer_times *out)
{
    bench_blas_threads(threads > 0 ? threads : 1);
    double *col[2 * NL];   /* layer i's dW in 2i, dX in 2i + 1 */
    columns_alloc(col, 2 * NL, reps);
    for (int r = -1; r < reps; r++)   /* r = -1: the warm-up */
        for (int i = 0; i < NL; i++) {
            const double dw = gemm_dw(p, w, i), dx = i > 0 ? gemm_dx(p, w, i) : NAN;
            if (r >= 0) {
                col[2 * i][r] = dw;
                col[2 * i + 1][r] = dx;
            }
        }
    for (int i = 0; i < NL; i++) {
        out->gemm_dw[i] = bench_median(col[2 * i], reps);
        out->gemm_dx[i] = i > 0 ? bench_median(col[2 * i + 1], reps) : NAN;
    }
    free(col[0]);
}

/* The per-layer backward times at n rows on `threads` threads; with gemms, the GEMMs alone too. */
static void time_layers(const struct prec *p, int n, int threads, const struct data *d, int gemms,
                        struct layer_times *out)
{
    struct pass_bench b;
    pass_bench_open(&b, p, n, threads, d);
    const int reps = pass_repeats(&b);

    /* The buffers of the layers' shapes, for the last layer's kernel and the GEMMs alone. */
    struct gemm_ws w;
    gemm_ws_alloc(&w, p, n, 0x6e330000u + (uint64_t)n);
    const int before = bench_blas_threads(1);
    p->last(&w);

    double *col[NS];
    columns_alloc(col, NS, reps);
    sample_layers(&b, &w, reps, col);
    out->batch = n;
    out->reps = reps;
    layer_medians(col, reps, out);
    free(col[0]);

    for (int i = 0; i < NL; i++)
        out->gemm_dw[i] = out->gemm_dx[i] = NAN;
    if (gemms)
        time_gemms(p, &w, threads, reps, out);
    if (before > 0)
        bench_blas_threads(before);
    gemm_ws_free(&w);
    pass_bench_close(&b);
}

/* ---- the timed steps ------------------------------------------------------------------------- */

enum { M_LOCAL, M_OVERLAP, M_SERIAL, NM };
static const char *const mode_name[NM] = { "local (no reducer)", "overlap on", "overlap off" };
static const char *const mode_key[NM] = { "local", "overlap_on", "overlap_off" };

struct mode_result {
    double step, wait, comm;      /* medians over steps of the max over ranks, seconds */
    double step_min, step_mean;   /* of the same maxima */
    double bytes;                 /* gradient bytes this rank contributed per step (rank 0) */
    double loss_last;
};

struct result {
    const struct prec *p;
    int n_local_min, n_local_max;  /* the shards' rows */
    int samples;                   /* timed steps per mode */
    struct mode_result m[NM];
    int identical;                 /* the replicas' parameters agree bitwise */
    struct layer_times window;     /* at rank 0's shard rows */
    struct layer_times sweep[MAX_SWEEP];
    int nsweep;
};

/* This rank's rows of the global batch. */
struct shard {
    int n;
    const void *X;
    const int32_t *labels;
};

/* A mode's network and optimizer; dp: its attachment (NULL: the plain network). */
struct stepper {
    bp_net *net;
    bp_optim *opt;
    bp_mpi *dp;
};

/* The attached network (overlap on and off), and the plain one on the same threads. */
static void steppers_create(struct stepper s[NM], const struct prec *p, int n_local, int threads)
{
    bp_net *net = net_create(p, n_local);
    bp_mpi_config cfg = bp_mpi_defaults();
    cfg.threads = threads;
    bp_mpi *dp = NULL;
    check(bp_mpi_attach(&dp, net, MPI_COMM_WORLD, &cfg), "bp_mpi_attach");
    bp_net *plain = net_create(p, n_local);
    check(bp_net_set_threads(plain, bp_net_threads(net)), "bp_net_set_threads");
    s[M_LOCAL] = (struct stepper){ plain, adam_create(plain), NULL };
    s[M_OVERLAP] = (struct stepper){ net, adam_create(net), dp };
    s[M_SERIAL] = s[M_OVERLAP];
}

static void steppers_destroy(struct stepper s[NM])
{
    bp_optim_destroy(s[M_LOCAL].opt);
    bp_optim_destroy(s[M_OVERLAP].opt);
    bp_net_destroy(s[M_LOCAL].net);
    bp_mpi_detach(s[M_OVERLAP].dp);
    bp_net_destroy(s[M_OVERLAP].net);
}

/* Mode k's stepper, its overlap set for an attached mode. */
static const struct stepper *enter_mode(const struct stepper s[NM], int k)
{
    if (s[k].dp)
        check(bp_mpi_set_overlap(s[k].dp, k == M_OVERLAP), "bp_mpi_set_overlap");
    return &s[k];
}

/* One step after a barrier: its seconds, and (attached) the stats of this step alone. */
static double timed_step(const struct stepper *s, const struct shard *sh, double *wait, double *comm,
                         double *bytes, double *loss)
{
    check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
    if (s->dp)
        check(bp_mpi_reset_stats(s->dp), "bp_mpi_reset_stats");
    const double t0 = bench_now();
    const bp_status st = bp_optim_train_step(s->opt, s->net, sh->n, sh->X, N_IN, sh->labels, 1, loss);
    const double t1 = bench_now();
    check(st, "bp_optim_train_step");
    *wait = *comm = *bytes = 0;
    if (s->dp) {
        bp_mpi_stats stats;
        check(bp_mpi_get_stats(s->dp, &stats), "bp_mpi_get_stats");
        *wait = stats.wait_seconds;
        *comm = stats.comm_seconds;
        *bytes = stats.bytes;
    }
    return t1 - t0;
}

/* A mode's samples: per timed step, its seconds, wait and comm seconds. */
enum { C_STEP, C_WAIT, C_COMM, NC };

/* The warm-up steps of every mode, then the rounds: R rounds of S steps per mode, the order
 * rotating from round to round; the last step's bytes and loss into res. */
static void run_rounds(const struct opts *o, const struct stepper s[NM], const struct shard *sh,
                       double *smp[NM][NC], struct result *res)
{
    double wait, comm, bytes, loss;
    for (int k = 0; k < NM; k++) {
        const struct stepper *st = enter_mode(s, k);
        for (int j = 0; j < WARMUP_STEPS; j++)
            timed_step(st, sh, &wait, &comm, &bytes, &loss);
    }
    for (int r = 0; r < o->c.min_reps; r++)
        for (int kk = 0; kk < NM; kk++) {
            const int k = (kk + r) % NM;
            const struct stepper *st = enter_mode(s, k);
            double **c = smp[k];
            for (int i = r * o->steps; i < (r + 1) * o->steps; i++) {
                c[C_STEP][i] = timed_step(st, sh, &c[C_WAIT][i], &c[C_COMM][i], &bytes, &loss);
                res->m[k].bytes = bytes;
                res->m[k].loss_last = loss;
            }
        }
}

/* A mode's figures from its n samples: every step's maximum over the ranks, its median, min and
 * mean. Frees the samples. */
static void mode_stats(double *col[NC], int n, struct mode_result *m)
{
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, col[0], NC * n, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
    double sum = 0, mn = INFINITY;
    for (int i = 0; i < n; i++) {
        sum += col[C_STEP][i];
        mn = fmin(mn, col[C_STEP][i]);
    }
    m->step_mean = sum / n;
    m->step_min = mn;
    m->step = bench_median(col[C_STEP], n);
    m->wait = bench_median(col[C_WAIT], n);
    m->comm = bench_median(col[C_COMM], n);
    free(col[0]);
}

/* Whether every rank's parameters are rank 0's, bitwise. */
static int replicas_identical(bp_net *net, size_t elsize)
{
    const size_t nb = bp_net_n_params(net) * elsize;
    unsigned char *root = xalloc(nb);
    memcpy(root, bp_net_params(net), nb);
    check_mpi(MPI_Bcast(root, (int)nb, MPI_BYTE, 0, MPI_COMM_WORLD), "MPI_Bcast");
    int differ = memcmp(root, bp_net_params(net), nb) != 0;
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, &differ, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
    free(root);
    return !differ;
}

/* The training steps of every mode; each rank's threads in *nthreads. */
static void time_steps(const struct opts *o, const struct prec *p, const struct shard *sh, struct result *res,
                       int *nthreads)
{
    struct stepper s[NM];
    steppers_create(s, p, sh->n, o->threads);
    *nthreads = bp_net_threads(s[M_OVERLAP].net);
    double *smp[NM][NC];
    for (int k = 0; k < NM; k++)
        columns_alloc(smp[k], NC, res->samples);
    run_rounds(o, s, sh, smp, res);
    for (int k = 0; k < NM; k++)
        mode_stats(smp[k], res->samples, &res->m[k]);
    res->identical = replicas_identical(s[M_OVERLAP].net, p->elsize);
    steppers_destroy(s);
}

/* One precision: the steps, then the overlap window at the shard's rows and the sweep, all ranks at once. */
static void bench_prec(const struct opts *o, const struct prec *p, struct result *res, int *nthreads)
{
    const int B = o->batch, start = (int)bp_shard_start(B, g_size, g_rank);
    struct data d;
    data_make(&d, p, B);
    const struct shard sh = { (int)bp_shard_count(B, g_size, g_rank),
                              (const char *)d.X + (size_t)start * N_IN * p->elsize, d.labels + start };
    *res = (struct result){ .p = p, .n_local_min = (int)bp_shard_count(B, g_size, g_size - 1),
                            .n_local_max = (int)bp_shard_count(B, g_size, 0),
                            .samples = o->c.min_reps * o->steps, .nsweep = o->nsweep };
    time_steps(o, p, &sh, res, nthreads);

    check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
    time_layers(p, sh.n > 0 ? sh.n : 1, *nthreads, &d, 1, &res->window);
    for (int i = 0; i < o->nsweep; i++) {
        check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
        time_layers(p, o->sweep[i], *nthreads, &d, 0, &res->sweep[i]);
    }
    data_free(&d);
}

static int threads_of_ranks[4096];   /* gathered on rank 0 */
static char cpus_of_ranks[64][64];   /* the first 64 ranks' allowed CPUs */

/* This process's allowed CPUs, as Linux lists them (Cpus_allowed_list), or "?". */
static void allowed_cpus(char *buf, size_t len)
{
    snprintf(buf, len, "?");
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "Cpus_allowed_list:", 18)) {
            const char *v = line + 18;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t k = 0;
            for (; v[k] && v[k] != '\n' && k + 1 < len; k++)
                buf[k] = v[k];
            buf[k] = '\0';
            break;
        }
    fclose(f);
}

/* Each rank's threads (nt) and allowed CPUs, gathered on rank 0 into threads_of_ranks (-1 beyond
 * 4096 ranks) and cpus_of_ranks (up to 64 ranks). */
static void gather_ranks(int nt)
{
    char cpus[sizeof cpus_of_ranks[0]];
    allowed_cpus(cpus, sizeof cpus);
    if (g_size <= 4096)
        check_mpi(MPI_Gather(&nt, 1, MPI_INT, threads_of_ranks, 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Gather");
    else
        for (int r = 0; r < 4096; r++)
            threads_of_ranks[r] = -1;
    if (g_size <= 64)
        check_mpi(MPI_Gather(cpus, sizeof cpus, MPI_CHAR, cpus_of_ranks, sizeof cpus, MPI_CHAR, 0, MPI_COMM_WORLD),
                  "MPI_Gather");
}

/* ---- output (rank 0) ----------------------------------------------------------------------- */

static const char *const env_shown[] = { "OMPI_MCA_mpi_yield_when_idle", "OMPI_MCA_btl_vader_single_copy_mechanism",
                                         "OMPI_MCA_rmaps_base_oversubscribe", "OMP_NUM_THREADS",
                                         "OPENBLAS_NUM_THREADS", NULL };

/* The machine's load averages (/proc/loadavg), or "?": the figures are only as quiet as it. */
static void load_average(char *buf, size_t len)
{
    snprintf(buf, len, "?");
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f)
        return;
    double a, b, c;
    if (fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
        snprintf(buf, len, "%.2f %.2f %.2f", a, b, c);
    fclose(f);
}

static char load_start[64], load_end[64];

static void mpi_library(char *buf, size_t len)
{
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int n = 0;
    if (MPI_Get_library_version(v, &n) != MPI_SUCCESS)
        snprintf(v, sizeof v, "unknown MPI");
    v[strcspn(v, "\n,")] = '\0';
    snprintf(buf, len, "%s", v);
}

static void print_ms(double s)
{
    printf(" ");
    bench_print_ms(9, s * 1e3);
    printf(" |");
}

static void print_header(const struct opts *o, const struct bench_meta *m)
{
    char lib[256];
    mpi_library(lib, sizeof lib);
    printf("# backprop %s MPI data-parallel benchmark, %s, %s, %ld CPUs, %s\n", bp_version(), m->date, m->blas,
           m->cpus, lib);
    printf("# %d rank%s; threads per rank (allowed CPUs):", g_size, g_size == 1 ? "" : "s");
    for (int r = 0; r < g_size && r < 64; r++)
        printf(" rank %d: %d (%s)%s", r, threads_of_ranks[r], cpus_of_ranks[r], r + 1 < g_size ? "," : "");
    printf("%s; bp_mpi_config.threads = %d\n", g_size > 64 ? " ..." : "", o->threads);
    load_average(load_end, sizeof load_end);
    printf("# load average (1, 5, 15 min) at the start: %s, after the first precision: %s (a shared machine: "
           "other jobs' load is in the figures)\n", load_start, load_end);
    printf("# environment:");
    for (int i = 0; env_shown[i]; i++) {
        const char *v = getenv(env_shown[i]);
        printf(" %s=%s", env_shown[i], v ? v : "(unset)");
    }
    printf("\n# MLP 784-512-512-10 (ReLU, ReLU, identity), softmax cross-entropy, Adam lr %g, He-uniform "
           "seed %d, random data; global batch %d split by the fixed rule (%d..%d rows per rank); "
           "%d rounds x %d steps per mode after %d warm-up steps, modes alternating\n",
           LEARNING_RATE, INIT_SEED, o->batch, (int)bp_shard_count(o->batch, g_size, g_size - 1),
           (int)bp_shard_count(o->batch, g_size, 0), o->c.min_reps, o->steps, WARMUP_STEPS);
}

static void print_steps(const struct result *r)
{
    printf("\n## %s, %d rank%s: training steps (bp_optim_train_step; medians over %d steps of the maximum "
           "over the ranks)\n\n", r->p->name, g_size, g_size == 1 ? "" : "s", r->samples);
    printf("| mode | step ms | min ms | mean ms | wait ms/step | comm ms/step | MB reduced/step (per rank) |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|\n");
    for (int k = 0; k < NM; k++) {
        const struct mode_result *m = &r->m[k];
        printf("| %-18s |", mode_name[k]);
        print_ms(m->step);
        print_ms(m->step_min);
        print_ms(m->step_mean);
        if (k == M_LOCAL) {
            printf(" %9s | %9s | %9s |\n", "-", "-", "-");
        } else {
            print_ms(m->wait);
            print_ms(m->comm);
            printf(" %9.3f |\n", m->bytes / 1e6);
        }
    }
    const double ov = r->m[M_OVERLAP].step, se = r->m[M_SERIAL].step, lo = r->m[M_LOCAL].step;
    printf("\noverlap on / off: %.3f; overlap on / local: %.3f; overlap off / local: %.3f; bytes per step "
           "= %zu params x %zu = %zu; replicas bitwise identical: %s\n",
           ov / se, ov / lo, se / lo, total_params(), r->p->elsize, total_params() * r->p->elsize,
           r->identical ? "yes" : "NO");
}

static void print_window(const struct result *r)
{
    const struct layer_times *w = &r->window;
    printf("\n## %s: the overlap window per layer at %d rows (rank 0's shard; medians of %d passes of "
           "bp_net_loss_and_grad timed by the reducer's callbacks)\n\n", r->p->name, w->batch, w->reps);
    printf("| layer | shape | params | KB reduced | backward ms | window ms (backward below) | GEMMs alone: dW ms | "
           "dX ms |\n");
    printf("|---:|---|---:|---:|---:|---:|---:|---:|\n");
    for (int i = NL - 1; i >= 0; i--) {
        printf("| %d | %dx%d | %zu | %.1f |", i, width[i + 1], width[i], layer_params(i),
               (double)layer_params(i) * (double)r->p->elsize / 1e3);
        print_ms(w->layer[i]);
        print_ms(w->window[i]);
        print_ms(w->gemm_dw[i]);
        if (isfinite(w->gemm_dx[i]))
            print_ms(w->gemm_dx[i]);
        else
            printf(" %9s |", "-");
        printf("\n");
    }
    printf("\nforward + loss (bp_net_eval_loss alone) %.3f ms; backward %.3f ms; whole pass (begin .. finish) "
           "%.3f ms. Layer %d's backward: the kernel bp_?dense_backward of its shape alone (one BLAS thread).\n",
           w->forward_loss * 1e3, w->backward * 1e3, w->pass * 1e3, NL - 1);
}

static void print_sweep(const struct result *r)
{
    printf("\n## %s: per-layer backward ms at local batches (rank 0; %d rank%s at once), for "
           "bench/mpi-model.py\n\n", r->p->name, g_size, g_size == 1 ? "" : "s");
    printf("| rows |");
    for (int i = NL - 1; i >= 0; i--)
        printf(" layer %d |", i);
    printf(" backward | forward+loss |\n|---:|");
    for (int i = 0; i < NL + 2; i++)
        printf("---:|");
    printf("\n");
    for (int k = 0; k < r->nsweep; k++) {
        const struct layer_times *s = &r->sweep[k];
        printf("| %d |", s->batch);
        for (int i = NL - 1; i >= 0; i--)
            print_ms(s->layer[i]);
        print_ms(s->backward);
        print_ms(s->forward_loss);
        printf("\n");
    }
}

static void print_result(const struct result *r)
{
    print_steps(r);
    print_window(r);
    if (r->nsweep > 0)
        print_sweep(r);
    fflush(stdout);
}

/* "key": [v[0] .. v[NL - 1] in ms] (null where not finite), then ", " unless last. */
static void json_ms_list(FILE *f, const char *key, const double *v, int last)
{
    fprintf(f, "\"%s\": [", key);
    for (int i = 0; i < NL; i++) {
        if (isfinite(v[i]))
            fprintf(f, "%s%.6g", i ? ", " : "", v[i] * 1e3);
        else
            fprintf(f, "%snull", i ? ", " : "");
    }
    fprintf(f, "]%s", last ? "" : ", ");
}

static void json_layers(FILE *f, const struct layer_times *s)
{
    fprintf(f, "{\"batch\": %d, \"repeats\": %d, ", s->batch, s->reps);
    bench_json_num(f, "forward_loss_ms", s->forward_loss * 1e3, 0);
    bench_json_num(f, "backward_ms", s->backward * 1e3, 0);
    bench_json_num(f, "pass_ms", s->pass * 1e3, 0);
    json_ms_list(f, "layer_backward_ms", s->layer, 0);
    json_ms_list(f, "window_ms", s->window, 0);
    json_ms_list(f, "gemm_dw_ms", s->gemm_dw, 0);
    json_ms_list(f, "gemm_dx_ms", s->gemm_dx, 1);
    fprintf(f, "}");
}

/* The report's opening: the machine, the ranks and the environment the run saw. */
static void json_machine(FILE *f, const struct opts *o, const struct bench_meta *m)
{
    char lib[256];
    mpi_library(lib, sizeof lib);
    bench_json_begin(f, PROG, bp_version(), m);
    fprintf(f, ",\n  \"mpi_library\": ");
    bench_json_str(f, lib);
    fprintf(f, ",\n  \"ranks\": %d, \"threads_per_rank\": [", g_size);
    for (int r = 0; r < g_size && r < 4096; r++)
        fprintf(f, "%s%d", r ? ", " : "", threads_of_ranks[r]);
    fprintf(f, "], \"allowed_cpus\": [");
    for (int r = 0; r < g_size && r < 64; r++) {
        fprintf(f, "%s", r ? ", " : "");
        bench_json_str(f, cpus_of_ranks[r]);
    }
    fprintf(f, "], \"config_threads\": %d", o->threads);
    load_average(load_end, sizeof load_end);
    fprintf(f, ",\n  \"load_average_start\": ");
    bench_json_str(f, load_start);
    fprintf(f, ", \"load_average_end\": ");
    bench_json_str(f, load_end);
    fprintf(f, ",\n  \"environment\": {");
    for (int i = 0; env_shown[i]; i++) {
        const char *v = getenv(env_shown[i]);
        fprintf(f, "%s", i ? ", " : "");
        bench_json_str(f, env_shown[i]);
        fprintf(f, ": ");
        if (v)
            bench_json_str(f, v);
        else
            fprintf(f, "null");
    }
    fprintf(f, "}");
}

/* The network and the run's shape. */
static void json_setup(FILE *f, const struct opts *o)
{
    fprintf(f, ",\n  \"network\": [");
    for (int l = 0; l <= NL; l++)
        fprintf(f, "%s%d", l ? ", " : "", width[l]);
    fprintf(f, "], \"layer_params\": [");
    for (int l = 0; l < NL; l++)
        fprintf(f, "%s%zu", l ? ", " : "", layer_params(l));
    fprintf(f, "], \"params\": %zu, \"activations\": [\"relu\", \"relu\", \"identity\"], \"loss\": \"softmax_xent\", "
               "\"optimizer\": \"adam\", \"lr\": %g, \"init\": \"he_uniform\", \"init_seed\": %d",
            total_params(), LEARNING_RATE, INIT_SEED);
    fprintf(f, ",\n  \"global_batch\": %d, \"rounds\": %d, \"steps_per_round\": %d, \"warmup_steps\": %d, "
               "\"statistic\": \"median over steps of the maximum over ranks\"",
            o->batch, o->c.min_reps, o->steps, WARMUP_STEPS);
}

/* One precision's results, with a comma before all but the first. */
static void json_result(FILE *f, const struct result *r, int first)
{
    fprintf(f, "%s\n    {\"dtype\": \"%s\", \"bytes_per_value\": %zu, \"rows_per_rank\": [%d, %d], "
               "\"replicas_identical\": %s,\n     \"modes\": {",
            first ? "" : ",", r->p->name, r->p->elsize, r->n_local_min, r->n_local_max,
            r->identical ? "true" : "false");
    for (int k = 0; k < NM; k++) {
        const struct mode_result *mr = &r->m[k];
        fprintf(f, "%s\n       \"%s\": {", k ? "," : "", mode_key[k]);
        bench_json_num(f, "step_ms", mr->step * 1e3, 0);
        bench_json_num(f, "step_min_ms", mr->step_min * 1e3, 0);
        bench_json_num(f, "step_mean_ms", mr->step_mean * 1e3, 0);
        bench_json_num(f, "wait_ms", k == M_LOCAL ? NAN : mr->wait * 1e3, 0);
        bench_json_num(f, "comm_ms", k == M_LOCAL ? NAN : mr->comm * 1e3, 0);
        bench_json_num(f, "bytes_per_step", k == M_LOCAL ? NAN : mr->bytes, 0);
        bench_json_num(f, "loss_last", mr->loss_last, 1);
        fprintf(f, "}");
    }
    fprintf(f, "},\n     \"window\": ");
    json_layers(f, &r->window);
    fprintf(f, ",\n     \"sweep\": [");
    for (int k = 0; k < r->nsweep; k++) {
        fprintf(f, "%s\n       ", k ? "," : "");
        json_layers(f, &r->sweep[k]);
    }
    fprintf(f, "]}");
}

static void print_json(FILE *f, const struct opts *o, const struct bench_meta *m, const struct result *res, int nres)
{
    json_machine(f, o, m);
    json_setup(f, o);
    fprintf(f, ",\n  \"results\": [");
    for (int j = 0; j < nres; j++)
        json_result(f, &res[j], j == 0);
    fprintf(f, "\n  ]\n}\n");
}

/* The rank before MPI_Init, from the launcher's environment, so that only rank 0 prints the usage. */
static int launcher_rank(void)
{
    static const char *const vars[] = { "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", NULL };
    for (int i = 0; vars[i]; i++) {
        const char *v = getenv(vars[i]);
        if (v)
            return atoi(v);
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    g_rank = launcher_rank();
    parse_args(&o, argc, argv);   /* before MPI_Init: --help and bad options exit without MPI */

    load_average(load_start, sizeof load_start);
    check_mpi(MPI_Init(&argc, &argv), "MPI_Init");
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);

    struct bench_meta m;
    bench_get_meta(&m);
    static struct result res[2];
    int nres = 0, status = 0;
    for (int k = 0; k < 2; k++) {
        if (!o.prec[k])
            continue;
        int nt;
        bench_prec(&o, &precs[k], &res[nres], &nt);
        if (nres == 0) {
            gather_ranks(nt);   /* for the header */
            if (g_rank == 0 && !o.c.json)
                print_header(&o, &m);
        }
        if (!res[nres].identical)
            status = 1;
        if (g_rank == 0 && !o.c.json)
            print_result(&res[nres]);
        nres++;
    }
    if (g_rank == 0 && o.c.json)
        print_json(stdout, &o, &m, res, nres);
    if (g_rank == 0 && o.json_file) {
        FILE *f = bench_dat_open(PROG, o.json_file);
        if (f)
            print_json(f, &o, &m, res, nres);
        if (!f || bench_dat_close(PROG, f, o.json_file) != 0)
            status = 1;
    }
    if (g_rank == 0 && status)
        fprintf(stderr, PROG ": the replicas' parameters differ after the timed steps\n");
    MPI_Finalize();
    return status;
}
