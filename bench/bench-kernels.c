/* SPDX-License-Identifier: MIT */
/* bench-kernels.c: dense-layer kernel benchmark: BLAS kernels vs their naive twins vs the bare GEMMs. */
#define _POSIX_C_SOURCE 200809L

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "backprop.h"
#include "benchutil.h"

#define PROG "bench-kernels"
#define MAX_SIZE 4096          /* 16 s x s buffers: 2 GiB of doubles at 4096 */
#define MAX_SIZES 64
#define DEFAULT_SIZES "64,128,256,512,1024"
#define DEFAULT_MIN_REPS 5
#define DEFAULT_MIN_REPS_NAIVE 3
#define DEFAULT_MIN_TIME 0.3
#define DEFAULT_NAIVE_MAX 512

/* ---- options ------------------------------------------------------------------ */

struct opts {
    int sizes[MAX_SIZES];
    int nsizes;
    int naive_max;
    struct bench_common c;   /* min_reps: BLAS kernels and bare GEMMs; min_time: per variant per size */
};

static void usage(FILE *f)
{
    fprintf(f,
        "usage: " PROG " [options]\n"
        "Times the dense-layer kernels of backprop (row-major, ReLU, with bias; square\n"
        "sizes: batch n = n_in = n_out = s) against their naive twins and against the\n"
        "bare cblas_?gemm calls of the same shapes. Each figure is the median over\n"
        "repeats; the variants are interleaved within each repeat.\n"
        "\n"
        "  --sizes LIST       comma-separated sizes, 1..%d (default " DEFAULT_SIZES ")\n"
        "  --repeats N        minimum repeats of every variant (default %d for the BLAS\n"
        "                     kernels and GEMMs, %d for the naive kernels); more are run\n"
        "                     until each variant has about --min-time seconds of samples\n"
        "  --min-time SEC     wanted seconds of samples per variant and size (default %.1f;\n"
        "                     0: only the minimum repeats)\n"
        "  --naive-max S      time the naive kernels only for sizes <= S (default %d:\n"
        "                     a naive pass at 1024 takes tens of seconds; larger sizes\n"
        "                     print '-' and are checked against the bare GEMMs only)\n"
        "  --precision P      s (float), d (double) or both (default both)\n"
        "  --json             print one JSON object instead of the table\n"
        "  --dat FILE         also write a whitespace-separated data file for gnuplot\n"
        "                     (bench/plot.sh kernels FILE OUT.png draws it)\n"
        "  --help             print this help and exit\n"
        "\n"
        "Columns: median time (ms) and GFLOP/s of the BLAS forward (2 s^3 flops) and\n"
        "backward (4 s^3: dW with beta = 1, db and dX), the same for the naive twins,\n"
        "the BLAS speed-up over naive on forward + backward, the 3 bare GEMMs\n"
        "(Y = X W^T, dW += dZ^T X, dX = dZ W), and ratio = (BLAS fwd + bwd) / (3 GEMMs).\n"
        "err: normwise relative difference max|a - b| / max|b| of the kernel outputs\n"
        "(Y, dW, db, dX) against the naive kernels and against the bare-GEMM results;\n"
        "a size whose error exceeds 1e-3 (float) or 1e-9 (double) is reported and not\n"
        "timed, and the exit status is then 1. Exit status 2: bad options.\n",
        MAX_SIZE, DEFAULT_MIN_REPS, DEFAULT_MIN_REPS_NAIVE, DEFAULT_MIN_TIME, DEFAULT_NAIVE_MAX);
}

#define bad_usage(...) bench_bad_usage(PROG, usage, __VA_ARGS__)

static void parse_sizes(struct opts *o, const char *list)
{
    char bad[BENCH_LIST_MAX];
    int n = bench_parse_list(list, 1, MAX_SIZE, o->sizes, MAX_SIZES, bad);
    if (n == BENCH_LIST_LONG)
        bad_usage("--sizes: list too long: %s", list);
    if (n == BENCH_LIST_BAD)
        bad_usage("--sizes: not a size in 1..%d: '%s'", MAX_SIZE, bad);
    if (n == BENCH_LIST_MANY)
        bad_usage("--sizes: more than %d sizes in %s", MAX_SIZES, list);
    o->nsizes = n;
}

static void parse_args(struct opts *o, int argc, char **argv)
{
    static const char *const own[] = { "--sizes", "--naive-max", NULL };
    struct bench_args a = { PROG, usage, argc, argv, 0, "" };
    const char *val;
    parse_sizes(o, DEFAULT_SIZES);
    o->naive_max = DEFAULT_NAIVE_MAX;
    o->c = (struct bench_common){ .min_reps = DEFAULT_MIN_REPS, .min_reps_naive = DEFAULT_MIN_REPS_NAIVE,
                                  .min_time = DEFAULT_MIN_TIME, .prec = { 1, 1 } };
    while ((val = bench_next_option(&a, &o->c, own)) != NULL) {
        if (!strcmp(a.name, "--sizes")) {
            parse_sizes(o, val);
        } else { /* --naive-max */
            long v = bench_parse_int(val, 0, INT_MAX);
            if (v < 0)
                bad_usage("--naive-max: not a non-negative integer: '%s'", val);
            o->naive_max = (int)v;
        }
    }
}

/* ---- per-size workspace and the typed operations --------------------------------- */

/* All matrices are s x s, row-major, leading dimension s; b and db have s entries. */
struct ws {
    int s;
    void *X, *W, *b, *dY;              /* inputs */
    void *Y, *dZ, *dW, *db, *dX;       /* outputs of the BLAS kernels */
    void *Yn, *dZn, *dWn, *dbn, *dXn;  /* outputs of the naive kernels */
    void *Yg, *dWg, *dbg, *dXg, *dZg;  /* outputs of the bare GEMMs; the check's reference */
};

enum { V_FWD, V_BWD, V_GEMM_FWD, V_GEMM_BWD, V_NAIVE_FWD, V_NAIVE_BWD, NV };
#define NV_BLAS 4   /* V_FWD .. V_GEMM_BWD: timed in every repeat */
static const char *const vname[NV] = {
    "BLAS forward", "BLAS backward", "GEMM forward", "GEMM backward", "naive forward", "naive backward"
};

typedef bp_status (*run_fn)(const struct ws *);

struct prec {
    char letter;
    const char *name;
    size_t elsize;
    double tol;
    void (*fill)(void *p, size_t count, double lo, double hi, uint64_t *rng);
    double (*relerr)(const void *a, const void *ref, size_t count);
    void (*reference)(const struct ws *w);
    run_fn run[NV];
};

/* One definition per precision P (s or d) and type T. The backward kernels of
 * all three variants read the Y of the BLAS forward, so the ReLU mask is the
 * same for all: a z that rounds to the other side of 0 in one variant would
 * otherwise flip a whole dY entry in dW and fail the check for no fault. */
#define DEFINE_PREC(P, T)                                                                     \
static bp_status P##_fwd(const struct ws *w)                                                \
{                                                                                           \
    int s = w->s;                                                                           \
    return bp_##P##dense_forward(BP_ROW_MAJOR, s, s, s, w->X, s, w->W, s, w->b,             \
        BP_ACT_RELU, (T)0, NULL, s, w->Y, s);                                               \
}                                                                                           \
                                                                                            \
static bp_status P##_naive_fwd(const struct ws *w)                                          \
{                                                                                           \
    int s = w->s;                                                                           \
    return bp_##P##dense_forward_naive(BP_ROW_MAJOR, s, s, s, w->X, s, w->W, s, w->b,       \
        BP_ACT_RELU, (T)0, NULL, s, w->Yn, s);                                              \
}                                                                                           \
                                                                                            \
static bp_status P##_bwd(const struct ws *w)                                                \
{                                                                                           \
    int s = w->s;                                                                           \
    return bp_##P##dense_backward(BP_ROW_MAJOR, s, s, s, w->X, s, w->W, s,                  \
        BP_ACT_RELU, (T)0, NULL, s, w->Y, s, w->dY, s, w->dZ, s,                            \
        (T)1, w->dW, s, w->db, w->dX, s);                                                   \
}                                                                                           \
                                                                                            \
static bp_status P##_naive_bwd(const struct ws *w)                                          \
{                                                                                           \
    int s = w->s;                                                                           \
    return bp_##P##dense_backward_naive(BP_ROW_MAJOR, s, s, s, w->X, s, w->W, s,            \
        BP_ACT_RELU, (T)0, NULL, s, w->Y, s, w->dY, s, w->dZn, s,                           \
        (T)1, w->dWn, s, w->dbn, w->dXn, s);                                                \
}                                                                                           \
                                                                                            \
/* Y = X W^T */                                                                             \
static bp_status P##_gemm_fwd(const struct ws *w)                                           \
{                                                                                           \
    int s = w->s;                                                                           \
    cblas_##P##gemm(CblasRowMajor, CblasNoTrans, CblasTrans, s, s, s,                       \
        (T)1, w->X, s, w->W, s, (T)0, w->Yg, s);                                            \
    return BP_OK;                                                                           \
}                                                                                           \
                                                                                            \
/* dW += dZ^T X,  dX = dZ W, into the bare-GEMM outputs */                                 \
static void P##_gemms_bwd(const struct ws *w, const T *dZ)                                  \
{                                                                                           \
    int s = w->s;                                                                           \
    cblas_##P##gemm(CblasRowMajor, CblasTrans, CblasNoTrans, s, s, s,                       \
        (T)1, dZ, s, w->X, s, (T)1, w->dWg, s);                                             \
    cblas_##P##gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s, s, s,                     \
        (T)1, dZ, s, w->W, s, (T)0, w->dXg, s);                                             \
}                                                                                           \
                                                                                            \
/* the same from the dZ the BLAS backward left */                                           \
static bp_status P##_gemm_bwd(const struct ws *w)                                           \
{                                                                                           \
    P##_gemms_bwd(w, w->dZ);                                                                \
    return BP_OK;                                                                           \
}                                                                                           \
                                                                                            \
/* The whole layer from the bare GEMMs plus the O(s^2) rest, written here                   \
 * independently of the library: the reference at sizes the naive kernels skip. */         \
static void P##_reference(const struct ws *w)                                               \
{                                                                                           \
    int s = w->s;                                                                           \
    size_t n = (size_t)s;                                                                   \
    T *Yg = w->Yg, *dZg = w->dZg, *dbg = w->dbg;                                            \
    const T *b = w->b, *Y = w->Y, *dY = w->dY;                                              \
    P##_gemm_fwd(w);                                                                        \
    for (size_t i = 0; i < n; i++)                                                          \
        for (size_t j = 0; j < n; j++) {                                                    \
            T z = Yg[i * n + j] + b[j];                                                     \
            Yg[i * n + j] = z > 0 ? z : (T)0;                                               \
        }                                                                                   \
    for (size_t i = 0; i < n; i++)                                                          \
        for (size_t j = 0; j < n; j++) {                                                    \
            T dz = Y[i * n + j] > 0 ? dY[i * n + j] : (T)0;                                 \
            dZg[i * n + j] = dz;                                                            \
            dbg[j] += dz;                                                                   \
        }                                                                                   \
    P##_gemms_bwd(w, dZg);                                                                  \
}

DEFINE_PREC(s, float)
DEFINE_PREC(d, double)

#define PREC_TABLE(P, T, LETTER, NAME, TOL)                                                  \
    { LETTER, NAME, sizeof(T), TOL, bench_fill_##P, bench_relerr_##P, P##_reference,          \
      { P##_fwd, P##_bwd, P##_gemm_fwd, P##_gemm_bwd, P##_naive_fwd, P##_naive_bwd } }

static const struct prec precs[2] = {
    PREC_TABLE(s, float, 's', "float", 1e-3),
    PREC_TABLE(d, double, 'd', "double", 1e-9),
};

/* ---- workspace ------------------------------------------------------------------- */

static void *xalloc(size_t bytes)
{
    return bench_xalloc(PROG, bytes);
}

static void ws_alloc(struct ws *w, const struct prec *p, int s, int naive)
{
    size_t mat = (size_t)s * (size_t)s * p->elsize, vec = (size_t)s * p->elsize;
    memset(w, 0, sizeof *w);
    w->s = s;
    void **mats[] = { &w->X, &w->W, &w->dY, &w->Y, &w->dZ, &w->dW, &w->dX,
                      &w->Yg, &w->dWg, &w->dXg, &w->dZg };
    for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++)
        *mats[i] = xalloc(mat);
    w->b = xalloc(vec);
    w->db = xalloc(vec);
    w->dbg = xalloc(vec);
    if (naive) {
        w->Yn = xalloc(mat);
        w->dZn = xalloc(mat);
        w->dWn = xalloc(mat);
        w->dXn = xalloc(mat);
        w->dbn = xalloc(vec);
    }
}

static void ws_free(struct ws *w)
{
    void *all[] = { w->X, w->W, w->b, w->dY, w->Y, w->dZ, w->dW, w->db, w->dX,
                    w->Yn, w->dZn, w->dWn, w->dbn, w->dXn, w->Yg, w->dWg, w->dbg, w->dXg, w->dZg };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

/* Inputs of O(1) magnitude (W scaled by 1/sqrt(n_in), as an initialiser would),
 * accumulators dW and db starting from the same nonzero values in every variant,
 * and every output written once so no page fault lands in a timing. */
static void ws_fill(struct ws *w, const struct prec *p, uint64_t seed)
{
    size_t nn = (size_t)w->s * (size_t)w->s, n = (size_t)w->s;
    double scale = 1 / sqrt((double)w->s);
    p->fill(w->X, nn, -1, 1, &seed);
    p->fill(w->W, nn, -scale, scale, &seed);
    p->fill(w->b, n, -0.5, 0.5, &seed);
    p->fill(w->dY, nn, -1, 1, &seed);
    p->fill(w->dW, nn, -1, 1, &seed);
    p->fill(w->db, n, -1, 1, &seed);
    memcpy(w->dWg, w->dW, nn * p->elsize);
    memcpy(w->dbg, w->db, n * p->elsize);
    void *outs[] = { w->Y, w->dZ, w->dX, w->Yg, w->dXg, w->dZg, w->Yn, w->dZn, w->dXn };
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++)
        if (outs[i])
            memset(outs[i], 0, nn * p->elsize);
    if (w->dWn) {
        memcpy(w->dWn, w->dW, nn * p->elsize);
        memcpy(w->dbn, w->db, n * p->elsize);
    }
}

/* ---- timing ---------------------------------------------------------------------- */

/* Runs one variant once; any status but BP_OK ends the benchmark. */
static double run_timed(const struct prec *p, int v, const struct ws *w)
{
    double t0 = bench_now();
    bp_status st = p->run[v](w);
    double t1 = bench_now();
    if (st != BP_OK) {
        fprintf(stderr, PROG ": %s (%s, size %d) failed: %s: %s\n", vname[v], p->name, w->s,
            bp_strerror(st), bp_last_error());
        exit(1);
    }
    return t1 - t0;
}

struct row {
    int size;
    const struct prec *p;
    int naive;            /* the naive kernels were run */
    int ok;               /* the check passed, so the timings are meaningful */
    int reps, reps_naive;
    double t[NV];         /* median seconds */
    double err_naive, err_gemm;
};

static double flops_of(int v, int s)
{
    double s3 = (double)s * s * s;
    return (v == V_FWD || v == V_NAIVE_FWD || v == V_GEMM_FWD) ? 2 * s3 : 4 * s3;
}

static double gflops(const struct row *r, int v)
{
    return flops_of(v, r->size) / r->t[v] * 1e-9;
}

static double speedup(const struct row *r)
{
    return (r->t[V_NAIVE_FWD] + r->t[V_NAIVE_BWD]) / (r->t[V_FWD] + r->t[V_BWD]);
}

static double ratio(const struct row *r)
{
    return (r->t[V_FWD] + r->t[V_BWD]) / (r->t[V_GEMM_FWD] + r->t[V_GEMM_BWD]);
}

/* The normwise error of the BLAS kernels' outputs (Y, dW, db, dX) against another
 * variant's: the largest of the four. */
static double kernel_err(const struct prec *p, const struct ws *w, const void *Y, const void *dW,
    const void *db, const void *dX)
{
    size_t nn = (size_t)w->s * (size_t)w->s;
    return fmax(fmax(p->relerr(w->Y, Y, nn), p->relerr(w->dW, dW, nn)),
                fmax(p->relerr(w->db, db, (size_t)w->s), p->relerr(w->dX, dX, nn)));
}

/* Checks once (that run is also the warm-up), then times every variant. */
static void bench_one(const struct opts *o, const struct prec *p, int s, struct row *r)
{
    struct ws w;
    int naive = s <= o->naive_max;
    memset(r, 0, sizeof *r);
    r->size = s;
    r->p = p;
    r->naive = naive;
    for (int v = 0; v < NV; v++)
        r->t[v] = NAN;
    r->err_naive = NAN;

    ws_alloc(&w, p, s, naive);
    ws_fill(&w, p, 0x5eed0000u + (uint64_t)s);

    /* Check (and warm up): the forward first, since every backward reads its Y. The
     * naive kernels' times here serve as their estimate for the repeat count. */
    double t_naive = 0;
    run_timed(p, V_FWD, &w);
    run_timed(p, V_BWD, &w);
    p->reference(&w);
    r->err_gemm = kernel_err(p, &w, w.Yg, w.dWg, w.dbg, w.dXg);
    if (naive) {
        t_naive = run_timed(p, V_NAIVE_FWD, &w);
        t_naive += run_timed(p, V_NAIVE_BWD, &w);
        r->err_naive = kernel_err(p, &w, w.Yn, w.dWn, w.dbn, w.dXn);
    }
    r->ok = r->err_gemm <= p->tol && (!naive || r->err_naive <= p->tol);
    if (!r->ok) {
        fprintf(stderr, PROG ": WRONG RESULT at size %d, %s: normwise error %.3g vs bare GEMMs, "
            "%.3g vs naive (tolerance %.0e); not timed\n", s, p->name, r->err_gemm, r->err_naive, p->tol);
        ws_free(&w);
        return;
    }

    /* Estimates for the repeat counts, from a second (warm) call of the fast variants. */
    double t_blas = 0;
    for (int v = 0; v < NV_BLAS; v++)
        t_blas += run_timed(p, v, &w);
    r->reps = bench_reps_for(o->c.min_time, t_blas / NV_BLAS, o->c.min_reps, BENCH_MAX_REPS);
    if (naive)
        r->reps_naive = bench_reps_for(o->c.min_time, 0.5 * t_naive, o->c.min_reps_naive, BENCH_MAX_REPS);

    double *samples[NV] = { 0 };
    for (int v = 0; v < NV; v++)
        if (v < NV_BLAS || naive)
            samples[v] = xalloc(sizeof(double) * (size_t)(v < NV_BLAS ? r->reps : r->reps_naive));

    /* Every repeat times the four BLAS variants, in an order rotated each repeat
     * so none always follows the same neighbour; the naive repeats are spread
     * evenly among them (naive sample j before repeat j * reps / reps_naive). */
    int jn = 0;
    for (int i = 0; i < r->reps; i++) {
        while (naive && jn < r->reps_naive && (long long)jn * r->reps / r->reps_naive <= i) {
            samples[V_NAIVE_FWD][jn] = run_timed(p, V_NAIVE_FWD, &w);
            samples[V_NAIVE_BWD][jn] = run_timed(p, V_NAIVE_BWD, &w);
            jn++;
        }
        for (int k = 0; k < NV_BLAS; k++) {
            int v = (i + k) % NV_BLAS;
            samples[v][i] = run_timed(p, v, &w);
        }
    }
    for (int v = 0; v < NV; v++)
        if (samples[v]) {
            r->t[v] = bench_median(samples[v], v < NV_BLAS ? r->reps : r->reps_naive);
            free(samples[v]);
        }
    ws_free(&w);
}

/* ---- output ---------------------------------------------------------------------- */

static void print_header(const struct opts *o, const struct bench_meta *m)
{
    printf("# backprop %s kernel benchmark, %s, %s", bp_version(), m->date, m->blas);
    if (m->threads > 0)
        printf(", %d BLAS thread%s", m->threads, m->threads == 1 ? "" : "s");
    printf(", %ld CPUs\n", m->cpus);
    printf("# row-major, ReLU, bias, n = n_in = n_out = size; backward: beta = 1, db and dX; "
        "median of >= %d repeats (naive >= %d), ~%.2g s per variant; naive up to %d\n",
        o->c.min_reps, o->c.min_reps_naive, o->c.min_time, o->naive_max);
    printf("%-11s|%-18s|%-18s|%-20s|%-20s|%-8s|%-18s|%-6s|%-19s|%s\n", "",
        "   BLAS forward", "   BLAS backward", "   naive forward", "   naive backward",
        "speed-up", "  3 bare GEMMs", "ratio", "  error (normwise)", " repeats");
    printf("%4s %-6s|%9s %8s|%9s %8s|%10s %9s|%10s %9s|%8s|%9s %8s|%6s|%9s %9s| %s\n",
        "size", "prec", "ms", "GFLOP/s", "ms", "GFLOP/s", "ms", "GFLOP/s", "ms", "GFLOP/s",
        "vs naive", "ms", "GFLOP/s", "/GEMMs", "vs naive", "vs GEMMs", "BLAS/naive");
    fflush(stdout);
}

static void print_row(const struct row *r)
{
    printf("%4d %-6s|", r->size, r->p->name);
    if (!r->ok) {
        printf(" WRONG RESULT: error %.2e vs GEMMs, %.2e vs naive; not timed\n", r->err_gemm, r->err_naive);
        fflush(stdout);
        return;
    }
    bench_print_ms(9, r->t[V_FWD] * 1e3);
    printf(" %8.2f|", gflops(r, V_FWD));
    bench_print_ms(9, r->t[V_BWD] * 1e3);
    printf(" %8.2f|", gflops(r, V_BWD));
    if (r->naive) {
        bench_print_ms(10, r->t[V_NAIVE_FWD] * 1e3);
        printf(" %9.3f|", gflops(r, V_NAIVE_FWD));
        bench_print_ms(10, r->t[V_NAIVE_BWD] * 1e3);
        printf(" %9.3f|%7.1fx|", gflops(r, V_NAIVE_BWD), speedup(r));
    } else
        printf("%10s %9s|%10s %9s|%8s|", "-", "-", "-", "-", "-");
    double tg = r->t[V_GEMM_FWD] + r->t[V_GEMM_BWD];
    bench_print_ms(9, tg * 1e3);
    printf(" %8.2f|%6.3f|", 6.0 * r->size * r->size * r->size / tg * 1e-9, ratio(r));
    if (r->naive)
        printf("%9.1e", r->err_naive);
    else
        printf("%9s", "-");
    printf(" %9.1e| %d/", r->err_gemm, r->reps);
    if (r->naive)
        printf("%d\n", r->reps_naive);
    else
        printf("-\n");
    fflush(stdout);
}

static void print_json(const struct opts *o, const struct bench_meta *m, const struct row *rows, int nrows)
{
    FILE *f = stdout;
    bench_json_begin(f, PROG, bp_version(), m);
    fprintf(f, ",\n  \"layout\": \"row-major\", \"activation\": \"relu\", \"bias\": true, "
        "\"backward_beta\": 1, \"backward_dX\": true");
    fprintf(f, ",\n  \"statistic\": \"median\", \"min_repeats\": %d, \"min_repeats_naive\": %d, "
        "\"min_time_s\": %g, \"naive_max\": %d", o->c.min_reps, o->c.min_reps_naive, o->c.min_time, o->naive_max);
    fprintf(f, ",\n  \"flops\": {\"fwd\": \"2 n n_in n_out\", \"bwd\": \"4 n n_in n_out\"}");
    fprintf(f, ",\n  \"rows\": [");
    for (int i = 0; i < nrows; i++) {
        const struct row *r = &rows[i];
        int t = r->ok, tn = r->ok && r->naive;
        fprintf(f, "%s\n    {\"size\": %d, \"precision\": \"%s\", \"ok\": %s, ", i ? "," : "",
            r->size, r->p->name, r->ok ? "true" : "false");
        fprintf(f, "\"repeats\": %d, ", r->reps);
        if (tn)
            fprintf(f, "\"repeats_naive\": %d, ", r->reps_naive);
        else
            fprintf(f, "\"repeats_naive\": null, ");
        bench_json_num(f, "fwd_ms", t ? r->t[V_FWD] * 1e3 : NAN, 0);
        bench_json_num(f, "fwd_gflops", t ? gflops(r, V_FWD) : NAN, 0);
        bench_json_num(f, "bwd_ms", t ? r->t[V_BWD] * 1e3 : NAN, 0);
        bench_json_num(f, "bwd_gflops", t ? gflops(r, V_BWD) : NAN, 0);
        bench_json_num(f, "naive_fwd_ms", tn ? r->t[V_NAIVE_FWD] * 1e3 : NAN, 0);
        bench_json_num(f, "naive_fwd_gflops", tn ? gflops(r, V_NAIVE_FWD) : NAN, 0);
        bench_json_num(f, "naive_bwd_ms", tn ? r->t[V_NAIVE_BWD] * 1e3 : NAN, 0);
        bench_json_num(f, "naive_bwd_gflops", tn ? gflops(r, V_NAIVE_BWD) : NAN, 0);
        bench_json_num(f, "speedup", tn ? speedup(r) : NAN, 0);
        bench_json_num(f, "gemm_fwd_ms", t ? r->t[V_GEMM_FWD] * 1e3 : NAN, 0);
        bench_json_num(f, "gemm_fwd_gflops", t ? gflops(r, V_GEMM_FWD) : NAN, 0);
        bench_json_num(f, "gemm_bwd_ms", t ? r->t[V_GEMM_BWD] * 1e3 : NAN, 0);
        bench_json_num(f, "gemm_bwd_gflops", t ? gflops(r, V_GEMM_BWD) : NAN, 0);
        bench_json_num(f, "ratio_fwd", t ? r->t[V_FWD] / r->t[V_GEMM_FWD] : NAN, 0);
        bench_json_num(f, "ratio_bwd", t ? r->t[V_BWD] / r->t[V_GEMM_BWD] : NAN, 0);
        bench_json_num(f, "ratio", t ? ratio(r) : NAN, 0);
        bench_json_num(f, "err_naive", r->err_naive, 0);
        bench_json_num(f, "err_gemm", r->err_gemm, 0);
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
    fprintf(f, "# bench-kernels, backprop %s, %s, %s; times in ms (medians), NaN: not measured\n",
        bp_version(), m->date, m->blas);
    fprintf(f, "# 1:size 2:prec 3:fwd_ms 4:fwd_gflops 5:bwd_ms 6:bwd_gflops 7:naive_fwd_ms "
        "8:naive_fwd_gflops 9:naive_bwd_ms 10:naive_bwd_gflops 11:speedup 12:gemm_ms "
        "13:gemm_gflops 14:ratio 15:err_naive 16:err_gemm\n");
    for (int i = 0; i < nrows; i++) {
        const struct row *r = &rows[i];
        int t = r->ok, tn = r->ok && r->naive;
        double tg = r->t[V_GEMM_FWD] + r->t[V_GEMM_BWD];
        double v[] = {
            t ? r->t[V_FWD] * 1e3 : NAN, t ? gflops(r, V_FWD) : NAN,
            t ? r->t[V_BWD] * 1e3 : NAN, t ? gflops(r, V_BWD) : NAN,
            tn ? r->t[V_NAIVE_FWD] * 1e3 : NAN, tn ? gflops(r, V_NAIVE_FWD) : NAN,
            tn ? r->t[V_NAIVE_BWD] * 1e3 : NAN, tn ? gflops(r, V_NAIVE_BWD) : NAN,
            tn ? speedup(r) : NAN,
            t ? tg * 1e3 : NAN, t ? 6.0 * r->size * r->size * r->size / tg * 1e-9 : NAN,
            t ? ratio(r) : NAN, r->err_naive, r->err_gemm,
        };
        bench_dat_row(f, r->size, r->p->letter, v, sizeof v / sizeof v[0]);
    }
    return bench_dat_close(PROG, f, path);
}

int main(int argc, char **argv)
{
    struct opts o;
    struct bench_meta m;
    static struct row rows[2 * MAX_SIZES];
    int nrows = 0, status = 0;

    parse_args(&o, argc, argv);
    bench_get_meta(&m);
    if (!o.c.json)
        print_header(&o, &m);
    for (int i = 0; i < o.nsizes; i++)
        for (int k = 0; k < 2; k++) {
            if (!o.c.prec[k])
                continue;
            struct row *r = &rows[nrows++];
            bench_one(&o, &precs[k], o.sizes[i], r);
            if (!r->ok)
                status = 1;
            if (!o.c.json)
                print_row(r);
        }
    if (o.c.json)
        print_json(&o, &m, rows, nrows);
    if (o.c.dat && write_dat(o.c.dat, &m, rows, nrows) != 0)
        status = 1;
    return status;
}
