/* SPDX-License-Identifier: MIT */
/* bench-train.c: training-step benchmark of an MLP: whole SGD steps vs their GEMMs alone vs the naive backend. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "backprop.h"
#include "backprop/net.h"
#include "backprop/optim.h"
#include "benchutil.h"

#define PROG "bench-train"
#define MAX_BATCH 16384        /* X alone is 100 MiB of doubles there */
#define MAX_BATCHES 32
#define DEFAULT_BATCHES "1,32,256,1024"
#define DEFAULT_NAIVE_BATCHES "32,256"
#define DEFAULT_MIN_REPS 5
#define DEFAULT_MIN_REPS_NAIVE 3
#define DEFAULT_MIN_TIME 1.0
#define LEARNING_RATE 0.01
#define INIT_SEED 42
#define TARGET_RATIO 1.05      /* step / GEMMs alone, at batch >= TARGET_RATIO_BATCH */
#define TARGET_RATIO_BATCH 256
#define TARGET_RATIO_1T 0.60   /* step / the GEMMs alone on one BLAS thread (two cores used) ... */
#define TARGET_RATIO_1T_BATCH 256  /* ... at this batch */
#define TARGET_SPEEDUP 30.0    /* BLAS over naive, at batch TARGET_SPEEDUP_BATCH */
#define TARGET_SPEEDUP_BATCH 256

/* The network (--layers): by default 784-512-512-10; ReLU hidden layers, an identity
 * last layer, softmax cross-entropy. */
#define MAX_L 16
static int NL = 3;
static int width[MAX_L + 1] = { 784, 512, 512, 10 };
#define N_IN (width[0])
static char net_name[256] = "784-512-512-10";

static bp_act layer_act(int l)
{
    return l == NL - 1 ? BP_ACT_IDENTITY : BP_ACT_RELU;
}

/* The GEMM flops of one step over n samples: forward and dW for every layer,
 * dX for all but the first (which needs none). */
static double step_flops(int n)
{
    double f = 0;
    for (int l = 0; l < NL; l++)
        f += 2.0 * n * width[l] * width[l + 1] * (l == 0 ? 2 : 3);
    return f;
}

/* ---- options ------------------------------------------------------------------ */

struct opts {
    int batches[MAX_BATCHES];
    int nbatches;
    int naive[MAX_BATCHES];   /* batches at which the naive backend is timed */
    int nnaive;
    struct bench_common c;    /* min_reps: BLAS steps and GEMMs alone; min_time: per variant per row */
    int blas_threads_known;   /* OpenBLAS's thread count can be read and set (bench_meta.threads > 0) */
};

/* The networks' threads, --threads (bp_net_set_threads; 0: the default count); -1: not
 * given, the library's default (bp_net_set_threads is not called). */
static int threads = -1;
/* The least multiply-adds per chunk, --chunk-min (bp_net_set_chunk_min); 0: the library's. */
static long chunk_min = 0;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: " PROG " [options]\n"
        "Times training steps of an MLP 784-512-512-10 (ReLU, ReLU, identity; softmax\n"
        "cross-entropy; plain SGD, lr %g; He-uniform init, seed %d) on synthetic data:\n"
        "one step = bp_optim_train_step (forward, loss, backward over the batch, planned\n"
        "as one micro-batch, with the SGD update fused into the backward GEMMs). In the\n"
        "same run, interleaved, it times the unfused step (bp_net_loss_and_grad, then\n"
        "bp_optim_step), the step's GEMMs alone (cblas_?gemm on buffers of the same shapes,\n"
        "beta = 0; gemv and ger at batch 1) and the step on the naive backend (unfused).\n"
        "Each figure is the median over repeats.\n"
        "\n"
        "  --batches LIST        comma-separated batch sizes, 1..%d (default " DEFAULT_BATCHES ")\n"
        "  --naive-batches LIST  batches at which the naive backend is timed too, or\n"
        "                        'none' (default " DEFAULT_NAIVE_BATCHES "; it is slow: a few repeats)\n"
        "  --repeats N           minimum repeats of every variant (default %d for the BLAS\n"
        "                        step and the GEMMs, %d for the naive step); more are run\n"
        "                        until each variant has about --min-time seconds of samples\n"
        "  --min-time SEC        wanted seconds of samples per variant and row (default %.1f;\n"
        "                        0: only the minimum repeats)\n"
        "  --precision P         s (float), d (double) or both (default both)\n"
        "  --layers A-B-...-K    the network's widths (default 784-512-512-10; ReLU hidden\n"
        "                        layers, identity last, at most 16 layers)\n"
        "  --threads N           run the networks (BLAS and naive) on N threads: the caller\n"
        "                        and N - 1 helpers (bp_net_set_threads; 0: the default count,\n"
        "                        1: the caller alone; default: the library's, one per CPU of\n"
        "                        the affinity mask, capped by OMP_NUM_THREADS and\n"
        "                        OPENBLAS_NUM_THREADS); BLAS runs on one thread inside each\n"
        "                        library call either way\n"
        "  --chunk-min M         least multiply-adds per chunk before a step is cut\n"
        "                        (bp_net_set_chunk_min; default: the library's, 2^18)\n"
        "  --json                print one JSON object instead of the table\n"
        "  --dat FILE            also write a whitespace-separated data file for gnuplot\n"
        "                        (bench/plot.sh train FILE OUT.png draws it)\n"
        "  --help                print this help and exit\n"
        "\n"
        "Columns: median time (ms) of a step and its GFLOP/s (GEMM flops of a step:\n"
        "forward 2n(784*512 + 512*512 + 512*10), dW the same, dX of layers 2 and 3\n"
        "2n(512*512 + 512*10)); the unfused step and the medians of its two calls\n"
        "(loss_and_grad, optim_step); the GEMMs alone; the fused GEMMs: the same calls in\n"
        "the fused step's form (dX first, then -lr dZ^T X added into a W-sized buffer with\n"
        "beta = 1, which skips the zeroing that beta = 0 does; not into W itself, which\n"
        "would grow without bound from call to call); ratios: step / GEMMs alone (target <= %.2f at batch\n"
        ">= %d), unfused step / GEMMs alone, and step / fused GEMMs (what the step costs\n"
        "beyond the GEMMs it calls); the GEMMs alone on one BLAS thread (OpenBLAS set to one\n"
        "thread around those calls, then restored; '-' where the BLAS has no such control)\n"
        "and step / those (target <= %.2f at batch %d: two cores must beat one). The GEMMs\n"
        "alone run with OpenBLAS's own thread count, as a host would call them; the network\n"
        "runs BLAS on one thread inside each call, on its own threads. The naive step and\n"
        "speed-up = naive / BLAS (target >= %gx at batch %d); err: normwise relative\n"
        "difference max|a - b| / max|b| of the first gradient, BLAS vs naive, from the\n"
        "same initial parameters. A row whose error exceeds 1e-3 (float) or 1e-9 (double)\n"
        "is reported and not timed, and the exit status is then 1; missed targets are\n"
        "reported but do not change it.\n"
        "Exit status 1 also when a backprop call fails; 2: bad options.\n",
        LEARNING_RATE, INIT_SEED, MAX_BATCH, DEFAULT_MIN_REPS, DEFAULT_MIN_REPS_NAIVE, DEFAULT_MIN_TIME,
        TARGET_RATIO, TARGET_RATIO_BATCH, TARGET_RATIO_1T, TARGET_RATIO_1T_BATCH, TARGET_SPEEDUP,
        TARGET_SPEEDUP_BATCH);
}

#define bad_usage(...) bench_bad_usage(PROG, usage, __VA_ARGS__)

/* A comma-separated list of batch sizes into out[]; returns the count. */
static int parse_batches(const char *opt, const char *list, int *out)
{
    char bad[BENCH_LIST_MAX];
    int n = bench_parse_list(list, 1, MAX_BATCH, out, MAX_BATCHES, bad);
    if (n == BENCH_LIST_LONG)
        bad_usage("%s: list too long", opt);
    if (n == BENCH_LIST_BAD)
        bad_usage("%s: not a batch size in 1..%d: '%s'", opt, MAX_BATCH, bad);
    if (n == BENCH_LIST_MANY)
        bad_usage("%s: more than %d batch sizes", opt, MAX_BATCHES);
    return n;
}

/* --layers A-B-...-K into NL, width[] and net_name. */
static void parse_layers(const char *val)
{
    int k = 0;
    for (const char *q = val; *q; k++) {
        char *end;
        long w = strtol(q, &end, 10);
        if (end == q || w < 1 || w > 65536 || k > MAX_L || (*end && *end != '-'))
            bad_usage("--layers: not a list like 784-128-10 of 2..17 widths: '%s'", val);
        width[k] = (int)w;
        q = *end ? end + 1 : end;
    }
    if (k < 2)
        bad_usage("--layers: needs at least inputs and outputs: '%s'", val);
    NL = k - 1;
    snprintf(net_name, sizeof net_name, "%s", val);
}

static void parse_args(struct opts *o, int argc, char **argv)
{
    static const char *const own[] = { "--batches", "--naive-batches", "--layers", "--threads", "--chunk-min", NULL };
    struct bench_args a = { PROG, usage, argc, argv, 0, "" };
    const char *val;
    o->nbatches = parse_batches("--batches", DEFAULT_BATCHES, o->batches);
    o->nnaive = parse_batches("--naive-batches", DEFAULT_NAIVE_BATCHES, o->naive);
    o->c = (struct bench_common){ .min_reps = DEFAULT_MIN_REPS, .min_reps_naive = DEFAULT_MIN_REPS_NAIVE,
                                  .min_time = DEFAULT_MIN_TIME, .prec = { 1, 1 } };
    while ((val = bench_next_option(&a, &o->c, own)) != NULL) {
        if (!strcmp(a.name, "--batches")) {
            o->nbatches = parse_batches(a.name, val, o->batches);
        } else if (!strcmp(a.name, "--naive-batches")) {
            o->nnaive = strcmp(val, "none") ? parse_batches(a.name, val, o->naive) : 0;
        } else if (!strcmp(a.name, "--layers")) {
            parse_layers(val);
        } else if (!strcmp(a.name, "--chunk-min")) {
            chunk_min = bench_parse_int(val, 1, 1L << 40);
            if (chunk_min < 1)
                bad_usage("%s: not an integer >= 1: '%s'", a.name, val);
        } else { /* --threads */
            long v = bench_parse_int(val, 0, BP_NET_MAX_THREADS);
            if (v < 0)
                bad_usage("%s: not an integer in 0..%d: '%s'", a.name, BP_NET_MAX_THREADS, val);
            threads = (int)v;
        }
    }
}

static int naive_at(const struct opts *o, int n)
{
    for (int i = 0; i < o->nnaive; i++)
        if (o->naive[i] == n)
            return 1;
    return 0;
}

/* ---- the GEMMs alone and the typed operations ------------------------------------- */

/* Buffers of a step's shapes, row-major: X n x 784 (the benchmark's inputs), for
 * layer l W[l] and dW[l] width[l+1] x width[l], its output A[l] and the gradient
 * G[l] with respect to it, n x width[l+1]. G[2] is given; G[1] and G[0] are the
 * dX of layers 3 and 2 (the library writes each dZ over its dY likewise). */
struct gemm_ws {
    int n;
    const void *X;
    void *W[MAX_L], *dW[MAX_L], *A[MAX_L], *G[MAX_L];
};

struct prec {
    char letter;
    const char *name;
    bp_dtype dtype;
    size_t elsize;
    double tol;
    void (*fill)(void *p, size_t count, double lo, double hi, uint64_t *rng);
    double (*relerr)(const void *a, const void *ref, size_t count);
    void (*gemms)(const struct gemm_ws *w, int fused);
};

/* One definition per precision P (s or d) and type T. The GEMMs are the calls
 * the library's kernels make for this network, in its order: forward
 * Y = X W^T per layer; backward from the last layer, dW = dZ^T X (beta = 0: one
 * micro-batch overwrites the gradient) and dX = dZ W. At batch 1 the kernels
 * call gemv, ger (which accumulates) and gemv(Trans) instead. With fused, the
 * weight products are those of the fused SGD step, W = W - lr dZ^T X (beta = 1,
 * after dX as there). */
#define DEFINE_PREC(P, T)                                                                     \
static void P##_dx(const struct gemm_ws *w, int l)     /* dX of layer l into G[l - 1] */  \
{                                                                                           \
    int n = w->n, k = width[l], m = width[l + 1];                                           \
    if (n == 1)                                                                             \
        cblas_##P##gemv(CblasRowMajor, CblasTrans, m, k, (T)1, w->W[l], k, w->G[l], 1,      \
            (T)0, w->G[l - 1], 1);                                                          \
    else                                                                                    \
        cblas_##P##gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, k, m, (T)1,           \
            w->G[l], m, w->W[l], k, (T)0, w->G[l - 1], k);                                  \
}                                                                                           \
                                                                                            \
static void P##_gemms(const struct gemm_ws *w, int fused)                                  \
{                                                                                           \
    int n = w->n;                                                                           \
    for (int l = 0; l < NL; l++) {                                                          \
        int k = width[l], m = width[l + 1];                                                 \
        const T *in = l ? (const T *)w->A[l - 1] : (const T *)w->X;                         \
        if (n == 1)                                                                         \
            cblas_##P##gemv(CblasRowMajor, CblasNoTrans, m, k, (T)1, w->W[l], k, in, 1,     \
                (T)0, w->A[l], 1);                                                          \
        else                                                                                \
            cblas_##P##gemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, m, k, (T)1, in, k,  \
                w->W[l], k, (T)0, w->A[l], m);                                              \
    }                                                                                       \
    for (int l = NL - 1; l >= 0; l--) {                                                     \
        int k = width[l], m = width[l + 1];                                                 \
        const T *in = l ? (const T *)w->A[l - 1] : (const T *)w->X;                         \
        T *dst = w->dW[l]; /* fused: not W, which would grow without bound step by step */  \
        const T alpha = fused ? (T)-LEARNING_RATE : 1, beta = fused ? 1 : 0;                \
        if (l > 0 && fused)                                                                 \
            P##_dx(w, l);                                                                   \
        if (n == 1)                                                                         \
            cblas_##P##ger(CblasRowMajor, m, k, alpha, w->G[l], 1, in, 1, dst, k);          \
        else                                                                                \
            cblas_##P##gemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, k, n, alpha,        \
                w->G[l], m, in, k, beta, dst, k);                                           \
        if (l > 0 && !fused)                                                                \
            P##_dx(w, l);                                                                   \
    }                                                                                       \
}

DEFINE_PREC(s, float)
DEFINE_PREC(d, double)

#define PREC_TABLE(P, T, LETTER, NAME, DTYPE, TOL)                                          \
    { LETTER, NAME, DTYPE, sizeof(T), TOL, bench_fill_##P, bench_relerr_##P, P##_gemms }

static const struct prec precs[2] = {
    PREC_TABLE(s, float, 's', "float", BP_F32, 1e-3),
    PREC_TABLE(d, double, 'd', "double", BP_F64, 1e-9),
};

static void *xalloc(size_t bytes)
{
    return bench_xalloc(PROG, bytes);
}

/* He-uniform-sized weights, outputs written once (no page fault inside a timing),
 * and a last-layer gradient of the size softmax - onehot over n gives. */
static void gemm_ws_alloc(struct gemm_ws *w, const struct prec *p, int n, const void *X, uint64_t seed)
{
    w->n = n;
    w->X = X;
    for (int l = 0; l < NL; l++) {
        size_t k = (size_t)width[l], m = (size_t)width[l + 1], nn = (size_t)n;
        double a = sqrt(6.0 / (double)k);
        w->W[l] = xalloc(m * k * p->elsize);
        w->dW[l] = xalloc(m * k * p->elsize);
        w->A[l] = xalloc(nn * m * p->elsize);
        w->G[l] = xalloc(nn * m * p->elsize);
        p->fill(w->W[l], m * k, -a, a, &seed);
        memset(w->dW[l], 0, m * k * p->elsize);
        memset(w->A[l], 0, nn * m * p->elsize);
        memset(w->G[l], 0, nn * m * p->elsize);
    }
    p->fill(w->G[NL - 1], (size_t)n * (size_t)width[NL], -1.0 / n, 1.0 / n, &seed);
}

static void gemm_ws_free(struct gemm_ws *w)
{
    for (int l = 0; l < NL; l++) {
        free(w->W[l]);
        free(w->dW[l]);
        free(w->A[l]);
        free(w->G[l]);
    }
}

/* ---- the network and its steps ------------------------------------------------------- */

struct trainer {
    bp_net *net;
    bp_optim *opt;
    const struct prec *p;
    const char *backend;
    int n;
};

static void check(bp_status st, const struct trainer *t, const char *what)
{
    if (st != BP_OK) {
        fprintf(stderr, PROG ": %s (%s, %s backend, batch %d) failed: %s: %s\n", what, t->p->name,
            t->backend, t->n, bp_strerror(st), bp_last_error());
        exit(1);
    }
}

/* A network planned for micro-batches of n, so each step is one micro-batch,
 * initialised the same way for every backend, with its SGD optimizer. */
static void trainer_create(struct trainer *t, const struct prec *p, int n, bp_backend backend)
{
    bp_layer_spec spec[MAX_L];
    for (int l = 0; l < NL; l++) {
        spec[l].n_out = width[l + 1];
        spec[l].act = layer_act(l);
        spec[l].alpha = 0;
    }
    t->net = NULL;
    t->opt = NULL;
    t->p = p;
    t->n = n;
    t->backend = backend == BP_BACKEND_NAIVE ? "naive" : "BLAS";
    check(bp_net_create(&t->net, p->dtype, N_IN, NL, spec, BP_LOSS_SOFTMAX_XENT, NULL), t, "bp_net_create");
    check(bp_net_plan(t->net, n), t, "bp_net_plan");
    check(bp_net_init(t->net, BP_INIT_HE_UNIFORM, INIT_SEED, 1), t, "bp_net_init");
    check(bp_net_set_backend(t->net, backend), t, "bp_net_set_backend");
    if (threads >= 0)
        check(bp_net_set_threads(t->net, threads), t, "bp_net_set_threads");
    if (chunk_min > 0)
        check(bp_net_set_chunk_min(t->net, chunk_min, 0), t, "bp_net_set_chunk_min");
    bp_optim_config cfg = bp_optim_defaults(BP_OPT_SGD, LEARNING_RATE);
    check(bp_optim_create(&t->opt, t->net, &cfg), t, "bp_optim_create");
}

static void trainer_destroy(struct trainer *t)
{
    bp_optim_destroy(t->opt);
    bp_net_destroy(t->net);
}

/* Synthetic data: inputs in [0, 1), labels in [0, 10), from a seeded generator. */
struct data {
    void *X;
    int32_t *labels;
};

static void data_make(struct data *d, const struct prec *p, int n, uint64_t seed)
{
    d->X = xalloc((size_t)n * N_IN * p->elsize);
    d->labels = xalloc((size_t)n * sizeof *d->labels);
    p->fill(d->X, (size_t)n * N_IN, 0, 1, &seed);
    for (int i = 0; i < n; i++)
        d->labels[i] = (int32_t)(bench_uniform(&seed) * width[NL]);
}

/* The parts of one unfused step, in seconds. */
struct step_time {
    double total, grad, update;
};

/* One fused step (bp_optim_train_step), in seconds. */
static double step_fused(const struct trainer *t, const struct data *d, double *loss)
{
    double t0 = bench_now();
    bp_status st = bp_optim_train_step(t->opt, t->net, t->n, d->X, N_IN, d->labels, 1, loss);
    double t1 = bench_now();
    check(st, t, "bp_optim_train_step");
    return t1 - t0;
}

static void grad_only(const struct trainer *t, const struct data *d, double *loss)
{
    check(bp_net_loss_and_grad(t->net, t->n, d->X, N_IN, d->labels, 1, loss), t, "bp_net_loss_and_grad");
}

static struct step_time step(const struct trainer *t, const struct data *d, double *loss)
{
    struct step_time s;
    double t0 = bench_now();
    bp_status st = bp_net_loss_and_grad(t->net, t->n, d->X, N_IN, d->labels, 1, loss);
    double t1 = bench_now();
    check(st, t, "bp_net_loss_and_grad");
    double t2 = bench_now();
    st = bp_optim_step(t->opt, t->net);
    double t3 = bench_now();
    check(st, t, "bp_optim_step");
    s.grad = t1 - t0;
    s.update = t3 - t2;
    s.total = s.grad + s.update;
    return s;
}

/* The step's GEMMs alone (fused: in the fused step's form), in seconds. */
static double time_gemms(const struct prec *p, const struct gemm_ws *w, int fused)
{
    double t0 = bench_now();
    p->gemms(w, fused);
    return bench_now() - t0;
}

/* ---- one row: a batch size in one precision ----------------------------------------- */

struct row {
    int batch;
    const struct prec *p;
    int naive;            /* the naive backend was run */
    int ok;               /* the check passed, so the timings are meaningful */
    int reps, reps_naive;
    int threads;          /* bp_net_threads of the timed network */
    double step, unfused, grad, update, gemms, gemms_fused, naive_step;   /* median seconds */
    double gemms_1t;      /* the GEMMs alone on one BLAS thread (NaN: OpenBLAS's count cannot be set) */
    double err;           /* first gradient, BLAS vs naive */
    double loss_first, loss_last;
};

static double gflops(const struct row *r, double seconds)
{
    return step_flops(r->batch) / seconds * 1e-9;
}

static double ratio(const struct row *r)
{
    return r->step / r->gemms;
}

/* The step against the GEMMs it calls itself (dW into W): its cost beyond its GEMMs. */
static double ratio_own(const struct row *r)
{
    return r->step / r->gemms_fused;
}

/* The step against the GEMMs on one BLAS thread: below 0.5 only if two cores beat one twice. */
static double ratio_1t(const struct row *r)
{
    return r->step / r->gemms_1t;
}

static double ratio_unfused(const struct row *r)
{
    return r->unfused / r->gemms;
}

static double speedup(const struct row *r)
{
    return r->naive_step / r->step;
}

/* Checks the first gradient against the naive backend (that step is also the
 * warm-up), then times the variants interleaved. */
static void bench_one(const struct opts *o, const struct prec *p, int n, struct row *r)
{
    int naive = naive_at(o, n);
    struct trainer tb, tn;
    struct data d;
    struct gemm_ws g;
    double loss;

    memset(r, 0, sizeof *r);
    r->batch = n;
    r->p = p;
    r->naive = naive;
    r->step = r->unfused = r->grad = r->update = r->gemms = r->gemms_fused = r->naive_step = r->gemms_1t = NAN;
    r->err = NAN;
    r->loss_last = NAN;

    data_make(&d, p, n, 0xda7a0000u + (uint64_t)n);
    gemm_ws_alloc(&g, p, n, d.X, 0x6e330000u + (uint64_t)n);
    trainer_create(&tb, p, n, BP_BACKEND_BLAS);
    r->threads = bp_net_threads(tb.net);
    if (naive)
        trainer_create(&tn, p, n, BP_BACKEND_NAIVE);

    /* Both networks start from the same parameters: their first gradients agree
     * up to rounding (and the odd ReLU whose z rounds to the other side of 0). */
    grad_only(&tb, &d, &r->loss_first);
    r->ok = isfinite(r->loss_first);
    if (naive) {
        double loss_naive;
        grad_only(&tn, &d, &loss_naive);
        r->err = p->relerr(bp_net_grads(tb.net), bp_net_grads(tn.net), bp_net_n_params(tb.net));
        r->ok = r->ok && r->err <= p->tol;
        if (!r->ok)
            fprintf(stderr, PROG ": WRONG RESULT at batch %d, %s: first loss %.9g (naive %.9g), "
                "gradient normwise error %.3g vs naive (tolerance %.0e); not timed\n",
                n, p->name, r->loss_first, loss_naive, r->err, p->tol);
        check(bp_optim_step(tn.opt, tn.net), &tn, "bp_optim_step");
    } else if (!r->ok) {
        fprintf(stderr, PROG ": WRONG RESULT at batch %d, %s: first loss %g; not timed\n",
            n, p->name, r->loss_first);
    }
    check(bp_optim_step(tb.opt, tb.net), &tb, "bp_optim_step");
    if (!r->ok)
        goto done;

    /* Warm the GEMM buffers, then estimate the repeat counts from warm calls. */
    time_gemms(p, &g, 0);
    double t_est = step_fused(&tb, &d, &loss);
    t_est += step(&tb, &d, &loss).total;
    t_est += time_gemms(p, &g, 0);
    t_est += time_gemms(p, &g, 1);
    r->reps = bench_reps_for(o->c.min_time, t_est / 4, o->c.min_reps, BENCH_MAX_REPS);
    if (naive)
        r->reps_naive = bench_reps_for(o->c.min_time, step(&tn, &d, &loss).total, o->c.min_reps_naive,
                                       BENCH_MAX_REPS);

    /* The samples of each median of the row: one per repeat (the naive step's: per naive repeat). */
    enum { S_STEP, S_UNFUSED, S_GRAD, S_UPDATE, S_GEMMS, S_GEMMS_FUSED, S_NAIVE, S_GEMMS_1T, NS };
    double *const median[NS] = { &r->step, &r->unfused, &r->grad, &r->update, &r->gemms, &r->gemms_fused,
                                 &r->naive_step, &r->gemms_1t };
    /* The GEMMs alone on one BLAS thread too, where OpenBLAS's count can be set. */
    const int one_thread = o->blas_threads_known;
    double *smp[NS] = { 0 };
    for (int k = 0; k < NS; k++)
        if ((k != S_NAIVE || naive) && (k != S_GEMMS_1T || one_thread))
            smp[k] = xalloc(sizeof(double) * (size_t)(k == S_NAIVE ? r->reps_naive : r->reps));

    /* OpenBLAS's own threads, once a multi-threaded call returns, spin for 2^28 cycles (about
     * 0.1 s here) before they sleep; on two cores such a thread takes a core from whatever runs
     * next. So the repeats run in rounds: first the GEMMs on OpenBLAS's threads (both forms,
     * alternating), then a pause for those threads to fall asleep, then the library's steps and
     * the GEMMs on one BLAS thread, in an order that rotates so none always follows another;
     * the naive steps are spread evenly among them (naive sample j before repeat
     * j * reps / reps_naive). Rounds keep drift from favouring one block. */
    const int nv = one_thread ? 3 : 2, rounds = r->reps < 5 ? r->reps : 5;
    int jn = 0;
    for (int round = 0; round < rounds; round++) {
        const int i0 = r->reps * round / rounds, i1 = r->reps * (round + 1) / rounds;
        for (int i = i0; i < i1; i++) {
            const int fused_first = i % 2;
            for (int k = 0; k < 2; k++) {
                if (k == fused_first)
                    smp[S_GEMMS_FUSED][i] = time_gemms(p, &g, 1);
                else
                    smp[S_GEMMS][i] = time_gemms(p, &g, 0);
            }
        }
        bench_sleep(OPENBLAS_SPIN_PAUSE);
        for (int i = i0; i < i1; i++) {
            while (naive && jn < r->reps_naive && (long long)jn * r->reps / r->reps_naive <= i)
                smp[S_NAIVE][jn++] = step(&tn, &d, &loss).total;
            for (int k = 0; k < nv; k++)
                switch ((i + k) % nv) {
                case 2: {
                    const int before = bench_blas_threads(1);
                    smp[S_GEMMS_1T][i] = time_gemms(p, &g, 0);
                    bench_blas_threads(before);
                    break;
                }
                case 1: {
                    struct step_time st = step(&tb, &d, &loss);
                    smp[S_UNFUSED][i] = st.total;
                    smp[S_GRAD][i] = st.grad;
                    smp[S_UPDATE][i] = st.update;
                    break;
                }
                default:
                    smp[S_STEP][i] = step_fused(&tb, &d, &loss);
                }
        }
    }
    r->loss_last = loss;
    for (int k = 0; k < NS; k++)
        if (smp[k]) {
            *median[k] = bench_median(smp[k], k == S_NAIVE ? r->reps_naive : r->reps);
            free(smp[k]);
        }

done:
    if (naive)
        trainer_destroy(&tn);
    trainer_destroy(&tb);
    gemm_ws_free(&g);
    free(d.X);
    free(d.labels);
}

/* ---- output ---------------------------------------------------------------------- */

/* The threads the timed network gets (--threads, or the library's default), asked of a
 * one-neuron network set up the same way: the header comes before any timed network. */
static int threads_used(void)
{
    const bp_layer_spec one = {1, BP_ACT_IDENTITY, 0};
    bp_net *n = NULL;
    int r = -1;
    if (bp_net_create(&n, BP_F32, 1, 1, &one, BP_LOSS_MSE, NULL) == BP_OK &&
        (threads < 0 || bp_net_set_threads(n, threads) == BP_OK))
        r = bp_net_threads(n);
    bp_net_destroy(n);
    return r;
}

static void print_header(const struct opts *o, const struct bench_meta *m)
{
    printf("# backprop %s training-step benchmark, %s, %s", bp_version(), m->date, m->blas);
    if (m->threads > 0)
        printf(", %d BLAS thread%s", m->threads, m->threads == 1 ? "" : "s");
    else
        printf(", BLAS threads unknown");
    printf(", %ld CPUs\n", m->cpus);
    const int nt = threads_used();
    printf("# network on %d thread%s (", nt, nt == 1 ? "" : "s");
    if (threads < 0)
        printf("the library's default");
    else
        printf("bp_net_set_threads(net, %d)", threads);
    if (chunk_min > 0)
        printf(", bp_net_set_chunk_min(net, %ld, 0)", chunk_min);
    printf("); BLAS on one thread inside each call; the GEMMs alone on OpenBLAS's own thread count, "
           "and on one BLAS thread\n");
    printf("# MLP %s (ReLU hidden layers, identity last), softmax cross-entropy, SGD lr %g, "
        "He-uniform seed %d; a step = optim_train_step (fused SGD), unfused = loss_and_grad + optim_step, "
        "one micro-batch; median of >= %d "
        "repeats (naive >= %d), ~%.2g s per variant\n",
        net_name, LEARNING_RATE, INIT_SEED, o->c.min_reps, o->c.min_reps_naive, o->c.min_time);
    printf("%-12s|%-18s|%-28s|%-18s|%-9s|%-13s|%-6s|%-16s|%-20s|%-8s|%s\n", "",
        "  training step", "  unfused step: of which", "   GEMMs alone", " fused GEMMs", " / GEMMs",
        "/fused", " GEMMs 1 thread", "   naive backend", " check", " repeats");
    printf("%5s %-6s|%9s %8s|%9s %9s %8s|%9s %8s|%9s|%6s %6s|%6s|%9s %6s|%10s %9s|%8s| %s\n",
        "batch", "prec", "ms", "GFLOP/s", "ms", "grad ms", "sgd ms", "ms", "GFLOP/s", "ms", "step", "unfus",
        "step", "ms", "step", "ms", "speed-up", "grad err", "BLAS/naive");
    fflush(stdout);
}

static void print_row(const struct row *r)
{
    printf("%5d %-6s|", r->batch, r->p->name);
    if (!r->ok) {
        printf(" WRONG RESULT: first loss %g, gradient error %.2e vs naive; not timed\n", r->loss_first, r->err);
        fflush(stdout);
        return;
    }
    bench_print_ms(9, r->step * 1e3);
    printf(" %8.2f|", gflops(r, r->step));
    bench_print_ms(9, r->unfused * 1e3);
    bench_print_ms(9, r->grad * 1e3);
    bench_print_ms(9, r->update * 1e3);
    printf("|");
    bench_print_ms(9, r->gemms * 1e3);
    printf(" %8.2f|", gflops(r, r->gemms));
    bench_print_ms(9, r->gemms_fused * 1e3);
    printf("|%6.3f %6.3f|%6.3f|", ratio(r), ratio_unfused(r), ratio_own(r));
    if (isfinite(r->gemms_1t)) {
        bench_print_ms(9, r->gemms_1t * 1e3);
        printf(" %6.3f|", ratio_1t(r));
    } else {
        printf("%9s %6s|", "-", "-");
    }
    if (r->naive) {
        bench_print_ms(10, r->naive_step * 1e3);
        printf(" %8.1fx|%8.1e| %d/%d\n", speedup(r), r->err, r->reps, r->reps_naive);
    } else {
        printf("%10s %9s|%8s| %d/-\n", "-", "-", "-", r->reps);
    }
    fflush(stdout);
}

/* The owner's targets, judged on the rows that measure them. */
static void print_targets(const struct row *rows, int nrows)
{
    int any = 0;
    printf("# target step / GEMMs alone <= %.2f at batch >= %d:", TARGET_RATIO, TARGET_RATIO_BATCH);
    for (int i = 0; i < nrows; i++) {
        const struct row *r = &rows[i];
        if (r->ok && r->batch >= TARGET_RATIO_BATCH) {
            printf("%s %d %s %.3f (%s)", any ? "," : "", r->batch, r->p->name, ratio(r),
                ratio(r) <= TARGET_RATIO ? "met" : "MISSED");
            any = 1;
        }
    }
    printf("%s\n", any ? "" : " not measured");
    any = 0;
    printf("# target step / GEMMs alone on one BLAS thread <= %.2f at batch %d:", TARGET_RATIO_1T,
           TARGET_RATIO_1T_BATCH);
    for (int i = 0; i < nrows; i++) {
        const struct row *r = &rows[i];
        if (r->ok && r->batch == TARGET_RATIO_1T_BATCH && isfinite(r->gemms_1t)) {
            printf("%s %s %.3f (%s)", any ? "," : "", r->p->name, ratio_1t(r),
                ratio_1t(r) <= TARGET_RATIO_1T ? "met" : "MISSED");
            any = 1;
        }
    }
    printf("%s\n", any ? "" : " not measured");
    any = 0;
    printf("# target BLAS >= %gx faster than naive at batch %d:", TARGET_SPEEDUP, TARGET_SPEEDUP_BATCH);
    for (int i = 0; i < nrows; i++) {
        const struct row *r = &rows[i];
        if (r->ok && r->naive && r->batch == TARGET_SPEEDUP_BATCH) {
            printf("%s %s %.1fx (%s)", any ? "," : "", r->p->name, speedup(r),
                speedup(r) >= TARGET_SPEEDUP ? "met" : "MISSED");
            any = 1;
        }
    }
    printf("%s\n", any ? "" : " not measured");
}

static void print_json(const struct opts *o, const struct bench_meta *m, const struct row *rows, int nrows)
{
    FILE *f = stdout;
    bench_json_begin(f, PROG, bp_version(), m);
    fprintf(f, ",\n  \"threads\": %d", nrows > 0 ? rows[0].threads : threads_used());
    fprintf(f, ",\n  \"network\": [");
    for (int l = 0; l <= NL; l++)
        fprintf(f, "%s%d", l ? ", " : "", width[l]);
    fprintf(f, "], \"activations\": [");
    for (int l = 0; l < NL; l++)
        fprintf(f, "%s\"%s\"", l ? ", " : "", l == NL - 1 ? "identity" : "relu");
    fprintf(f, "], \"loss\": \"softmax_xent\", \"optimizer\": \"sgd\", \"lr\": %g, \"init\": \"he_uniform\", "
        "\"init_seed\": %d, \"micro_batch_equals_batch\": true", LEARNING_RATE, INIT_SEED);
    fprintf(f, ",\n  \"statistic\": \"median\", \"min_repeats\": %d, \"min_repeats_naive\": %d, "
        "\"min_time_s\": %g", o->c.min_reps, o->c.min_reps_naive, o->c.min_time);
    fprintf(f, ",\n  \"flops_per_sample\": %.0f", step_flops(1));
    fprintf(f, ",\n  \"targets\": {\"ratio_max\": %g, \"ratio_min_batch\": %d, \"ratio_1t_max\": %g, "
        "\"ratio_1t_batch\": %d, \"speedup_min\": %g, \"speedup_batch\": %d}", TARGET_RATIO, TARGET_RATIO_BATCH,
        TARGET_RATIO_1T, TARGET_RATIO_1T_BATCH, TARGET_SPEEDUP, TARGET_SPEEDUP_BATCH);
    fprintf(f, ",\n  \"rows\": [");
    for (int i = 0; i < nrows; i++) {
        const struct row *r = &rows[i];
        int t = r->ok, tn = r->ok && r->naive;
        fprintf(f, "%s\n    {\"batch\": %d, \"precision\": \"%s\", \"ok\": %s, ", i ? "," : "",
            r->batch, r->p->name, r->ok ? "true" : "false");
        fprintf(f, "\"repeats\": %d, ", r->reps);
        if (tn)
            fprintf(f, "\"repeats_naive\": %d, ", r->reps_naive);
        else
            fprintf(f, "\"repeats_naive\": null, ");
        bench_json_num(f, "step_ms", t ? r->step * 1e3 : NAN, 0);
        bench_json_num(f, "step_gflops", t ? gflops(r, r->step) : NAN, 0);
        bench_json_num(f, "unfused_step_ms", t ? r->unfused * 1e3 : NAN, 0);
        bench_json_num(f, "loss_and_grad_ms", t ? r->grad * 1e3 : NAN, 0);
        bench_json_num(f, "optim_step_ms", t ? r->update * 1e3 : NAN, 0);
        bench_json_num(f, "gemms_ms", t ? r->gemms * 1e3 : NAN, 0);
        bench_json_num(f, "gemms_gflops", t ? gflops(r, r->gemms) : NAN, 0);
        bench_json_num(f, "ratio", t ? ratio(r) : NAN, 0);
        bench_json_num(f, "ratio_unfused", t ? ratio_unfused(r) : NAN, 0);
        bench_json_num(f, "gemms_fused_ms", t ? r->gemms_fused * 1e3 : NAN, 0);
        bench_json_num(f, "ratio_to_fused_gemms", t ? ratio_own(r) : NAN, 0);
        bench_json_num(f, "ratio_loss_and_grad", t ? r->grad / r->gemms : NAN, 0);
        bench_json_num(f, "gemms_1t_ms", t ? r->gemms_1t * 1e3 : NAN, 0);
        bench_json_num(f, "ratio_1t", t ? ratio_1t(r) : NAN, 0);
        bench_json_num(f, "naive_step_ms", tn ? r->naive_step * 1e3 : NAN, 0);
        bench_json_num(f, "naive_gflops", tn ? gflops(r, r->naive_step) : NAN, 0);
        bench_json_num(f, "speedup", tn ? speedup(r) : NAN, 0);
        bench_json_num(f, "grad_err_naive", r->err, 0);
        bench_json_num(f, "loss_first", r->loss_first, 0);
        bench_json_num(f, "loss_last", r->loss_last, 0);
        bench_json_num(f, "tolerance", r->p->tol, 1);
        fprintf(f, "}");
    }
    fprintf(f, "\n  ]\n}\n");
}

static int write_dat(const char *path, const struct bench_meta *m, const struct row *rows, int nrows)
{
    FILE *f = bench_dat_open(PROG, path);
    if (!f)
        return -1;
    fprintf(f, "# bench-train, backprop %s, %s, %s, %d BLAS threads; MLP %s; "
        "times in ms (medians), NaN: not measured\n", bp_version(), m->date, m->blas, m->threads, net_name);
    fprintf(f, "# 1:batch 2:prec 3:step_ms 4:step_gflops 5:loss_and_grad_ms 6:optim_step_ms "
        "7:gemms_ms 8:gemms_gflops 9:ratio 10:naive_step_ms 11:speedup 12:grad_err_naive "
        "13:unfused_step_ms 14:gemms_fused_ms\n");
    for (int i = 0; i < nrows; i++) {
        const struct row *r = &rows[i];
        int t = r->ok, tn = r->ok && r->naive;
        double v[] = {
            t ? r->step * 1e3 : NAN, t ? gflops(r, r->step) : NAN,
            t ? r->grad * 1e3 : NAN, t ? r->update * 1e3 : NAN,
            t ? r->gemms * 1e3 : NAN, t ? gflops(r, r->gemms) : NAN, t ? ratio(r) : NAN,
            tn ? r->naive_step * 1e3 : NAN, tn ? speedup(r) : NAN, r->err,
            t ? r->unfused * 1e3 : NAN, t ? r->gemms_fused * 1e3 : NAN,
        };
        bench_dat_row(f, r->batch, r->p->letter, v, sizeof v / sizeof v[0]);
    }
    return bench_dat_close(PROG, f, path);
}

int main(int argc, char **argv)
{
    struct opts o;
    struct bench_meta m;
    static struct row rows[2 * MAX_BATCHES];
    int nrows = 0, status = 0;

    parse_args(&o, argc, argv);
    bench_get_meta(&m);
    o.blas_threads_known = m.threads > 0;
    if (!o.c.json)
        print_header(&o, &m);
    for (int i = 0; i < o.nbatches; i++)
        for (int k = 0; k < 2; k++) {
            if (!o.c.prec[k])
                continue;
            struct row *r = &rows[nrows++];
            bench_one(&o, &precs[k], o.batches[i], r);
            if (!r->ok)
                status = 1;
            if (!o.c.json)
                print_row(r);
        }
    if (o.c.json)
        print_json(&o, &m, rows, nrows);
    else
        print_targets(rows, nrows);
    if (o.c.dat && write_dat(o.c.dat, &m, rows, nrows) != 0)
        status = 1;
    return status;
}
