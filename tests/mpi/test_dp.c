/* SPDX-License-Identifier: MIT */
/* test_dp.c: data-parallel training over MPI (backprop/mpi.h) checked against single-process
 * training, run by meson under mpiexec with 1, 2 and 3 ranks (3 oversubscribes the 2 cores).
 *
 * A plain program, not a Check suite: Check forks every test, and an MPI process does not survive
 * a fork. Every rank runs every case; each failed check prints a line naming the rank, the case and
 * the reason; rank 0 ends with "mpi dp (P ranks): N passed, M failed", the counts summed over the
 * ranks, and every rank exits nonzero when any rank failed. All ranks make the same collective
 * calls in the same order: a case that finds its ranks out of step aborts the job rather than hang.
 * A watchdog (SIGALRM) ends a case that hangs, with "TIMEOUT" and exit status 3, long before
 * meson's timeout.
 *
 * Every rank generates the whole global batch from the same seed and passes its shard (the fixed
 * rule of backprop/parallel.h) to the attached network, while a reference network of the same
 * initial parameters, not attached, one thread, trains on the whole batch. Tolerances, normwise
 * (max |a - b| / max |b|): 1e-12 in double, 1e-5 in float; replicas and the two overlap modes:
 * bitwise. */
#define _POSIX_C_SOURCE 200809L
#include <float.h>
#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "backprop.h"
#include "backprop/mpi.h"

#define TOL_D 1e-12  /* double: a few roundings of tiny sums, after 5 steps */
#define TOL_F 1e-5   /* float */
#define STEPS 5      /* training steps per comparison */
#define WATCHDOG_S 60

static int g_rank, g_size;
static long g_pass, g_fail;
static const char *g_case = "setup";

/* ---- checks and the watchdog ---------------------------------------------------------------- */

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int check_(int ok, int line, const char *fmt, ...)
{
    if (ok) {
        g_pass++;
        return 1;
    }
    g_fail++;
    printf("rank %d: FAIL [%s] line %d: ", g_rank, g_case, line);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    return 0;
}
#define CHECK(cond, ...) check_((cond) ? 1 : 0, __LINE__, __VA_ARGS__)

/* A setup step that must not fail (allocation, building a network): the job cannot continue in
 * step, so it ends; mpiexec reports the failure. */
static void need(int ok, const char *what)
{
    if (!ok) {
        printf("rank %d: FATAL [%s]: %s (%s)\n", g_rank, g_case, what, bp_last_error());
        fflush(stdout);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
}

static volatile sig_atomic_t g_fired;
static const char *volatile g_wd_case = "";

static void on_alarm(int sig)
{
    (void)sig;
    g_fired = 1;
    static const char head[] = "TIMEOUT: the watchdog fired in case ";
    ssize_t w = write(STDOUT_FILENO, head, sizeof head - 1);
    w = write(STDOUT_FILENO, g_wd_case, strlen(g_wd_case));
    w = write(STDOUT_FILENO, "\n", 1);
    (void)w;
    _exit(3);
}

/* Starts a case: names it and arms the watchdog for `seconds`. */
static void case_begin_for(const char *name, unsigned seconds)
{
    g_case = name;
    g_wd_case = name;
    alarm(seconds);
}

static void case_begin(const char *name)
{
    case_begin_for(name, WATCHDOG_S);
}

/* Ends a case: disarms the watchdog and asserts that it did not fire. */
static void case_end(void)
{
    const unsigned left = alarm(0);
    CHECK(!g_fired && left > 0, "the watchdog fired");
}

/* Nonzero when ok holds on every rank of comm. */
static int all_ok(int ok, MPI_Comm comm)
{
    int v = ok != 0;
    MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MIN, comm);
    return v;
}

/* Nonzero when bytes at buf are the same on every rank of comm (rank 0's copy is broadcast and
 * compared with memcmp on each rank). */
static int same_on_all(const void *buf, size_t bytes, MPI_Comm comm)
{
    unsigned char *root = malloc(bytes ? bytes : 1);
    need(root != NULL, "malloc");
    memcpy(root, buf, bytes);
    MPI_Bcast(root, (int)bytes, MPI_BYTE, 0, comm);
    const int ok = memcmp(root, buf, bytes) == 0;
    free(root);
    return all_ok(ok, comm);
}

/* ---- counting uses of MPI_COMM_WORLD (the MPI profiling interface) ---------------------------
 * While g_watch_world is set, calls on MPI_COMM_WORLD itself (not on a duplicate of it) through
 * these entry points are counted: the executable's definitions take the place of libmpi's for
 * every caller, libbackprop-mpi included, and forward to PMPI. */
static int g_watch_world;
static long g_world_uses;
#define WORLD_USE(c)                                     \
    do {                                                 \
        if (g_watch_world && (c) == MPI_COMM_WORLD)      \
            g_world_uses++;                              \
    } while (0)

int MPI_Comm_dup(MPI_Comm comm, MPI_Comm *newcomm)
{
    WORLD_USE(comm);
    return PMPI_Comm_dup(comm, newcomm);
}
int MPI_Comm_dup_with_info(MPI_Comm comm, MPI_Info info, MPI_Comm *newcomm)
{
    WORLD_USE(comm);
    return PMPI_Comm_dup_with_info(comm, info, newcomm);
}
int MPI_Comm_idup(MPI_Comm comm, MPI_Comm *newcomm, MPI_Request *request)
{
    WORLD_USE(comm);
    return PMPI_Comm_idup(comm, newcomm, request);
}
int MPI_Comm_split_type(MPI_Comm comm, int split_type, int key, MPI_Info info, MPI_Comm *newcomm)
{
    WORLD_USE(comm);
    return PMPI_Comm_split_type(comm, split_type, key, info, newcomm);
}
int MPI_Allreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
                  MPI_Comm comm)
{
    WORLD_USE(comm);
    return PMPI_Allreduce(sendbuf, recvbuf, count, datatype, op, comm);
}
int MPI_Iallreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
                   MPI_Comm comm, MPI_Request *request)
{
    WORLD_USE(comm);
    return PMPI_Iallreduce(sendbuf, recvbuf, count, datatype, op, comm, request);
}
int MPI_Bcast(void *buffer, int count, MPI_Datatype datatype, int root, MPI_Comm comm)
{
    WORLD_USE(comm);
    return PMPI_Bcast(buffer, count, datatype, root, comm);
}
int MPI_Allgather(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount,
                  MPI_Datatype recvtype, MPI_Comm comm)
{
    WORLD_USE(comm);
    return PMPI_Allgather(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm);
}
int MPI_Barrier(MPI_Comm comm)
{
    WORLD_USE(comm);
    return PMPI_Barrier(comm);
}

/* ---- data ----------------------------------------------------------------------------------- */

static uint64_t mix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static double unif(uint64_t *s)
{
    return (double)(mix64(s) >> 11) * 0x1.0p-53;
}

/* A batch, the same on every rank for the same seed: n rows of n_in inputs in [-1, 1), and
 * int32_t labels (softmax cross-entropy) or n x n_out targets in [-1, 1) of the dtype. */
typedef struct data {
    bp_dtype dt;
    bp_int n, n_in, n_out;
    void *X, *T;
    int32_t *y;
} data;

static size_t esize_of(bp_dtype dt)
{
    return dt == BP_F32 ? sizeof(float) : sizeof(double);
}

static void put(bp_dtype dt, void *a, size_t i, double v)
{
    if (dt == BP_F32)
        ((float *)a)[i] = (float)v;
    else
        ((double *)a)[i] = v;
}

static double get(bp_dtype dt, const void *a, size_t i)
{
    return dt == BP_F32 ? (double)((const float *)a)[i] : ((const double *)a)[i];
}

static data data_make(bp_dtype dt, bp_int n, bp_int n_in, bp_int n_out, bp_loss loss, uint64_t seed)
{
    data d = {dt, n, n_in, n_out, NULL, NULL, NULL};
    const size_t es = esize_of(dt), rows = n > 0 ? (size_t)n : 1;
    uint64_t s = seed * 7919u + 1;
    d.X = calloc(rows * (size_t)n_in, es);
    need(d.X != NULL, "malloc");
    for (size_t i = 0; i < (size_t)n * (size_t)n_in; i++)
        put(dt, d.X, i, 2 * unif(&s) - 1);
    if (loss == BP_LOSS_SOFTMAX_XENT) {
        d.y = calloc(rows, sizeof *d.y);
        need(d.y != NULL, "malloc");
        for (bp_int i = 0; i < n; i++)
            d.y[i] = (int32_t)(mix64(&s) % (uint64_t)n_out);
    } else {
        d.T = calloc(rows * (size_t)n_out, es);
        need(d.T != NULL, "malloc");
        for (size_t i = 0; i < (size_t)n * (size_t)n_out; i++)
            put(dt, d.T, i, 2 * unif(&s) - 1);
    }
    return d;
}

static void data_free(data *d)
{
    free(d->X);
    free(d->T);
    free(d->y);
}

/* Row i of the inputs and of the targets. */
static const void *xrow(const data *d, bp_int i)
{
    return (const char *)d->X + (size_t)i * (size_t)d->n_in * esize_of(d->dt);
}

static const void *trow(const data *d, bp_int i)
{
    if (d->y)
        return d->y + i;
    return (const char *)d->T + (size_t)i * (size_t)d->n_out * esize_of(d->dt);
}

/* The rows `rows` (count of them) of d, as a batch of its own. */
static data data_pick(const data *d, const int32_t *rows, bp_int count)
{
    data o = {d->dt, count, d->n_in, d->n_out, NULL, NULL, NULL};
    const size_t es = esize_of(d->dt), n = count > 0 ? (size_t)count : 1;
    o.X = malloc(n * (size_t)d->n_in * es);
    need(o.X != NULL, "malloc");
    if (d->y) {
        o.y = malloc(n * sizeof *o.y);
        need(o.y != NULL, "malloc");
    } else {
        o.T = malloc(n * (size_t)d->n_out * es);
        need(o.T != NULL, "malloc");
    }
    for (bp_int k = 0; k < count; k++) {
        memcpy((char *)o.X + (size_t)k * (size_t)d->n_in * es, xrow(d, rows[k]), (size_t)d->n_in * es);
        if (d->y)
            o.y[k] = d->y[rows[k]];
        else
            memcpy((char *)o.T + (size_t)k * (size_t)d->n_out * es, trow(d, rows[k]), (size_t)d->n_out * es);
    }
    return o;
}

/* An uneven split of n rows over p ranks (not the fixed rule), for the evaluation calls, which
 * take any split: rank r's share grows with r, and rank 0 holds none when p > 1. */
static void split_uneven(bp_int n, int p, int r, bp_int *start, bp_int *count)
{
    if (p == 1) {
        *start = 0;
        *count = n;
        return;
    }
    const long w = (long)p * (p - 1) / 2;
    const bp_int a = (bp_int)((long)n * ((long)r * (r - 1) / 2) / w);
    const bp_int b = (bp_int)((long)n * ((long)(r + 1) * r / 2) / w);
    *start = a;
    *count = b - a;
}

/* ---- networks ------------------------------------------------------------------------------- */

typedef struct spec {
    bp_int n_in;
    bp_int n_layers;
    bp_layer_spec layers[4];
    bp_loss loss;
} spec;

/* 6-8-5-3, tanh and ReLU, softmax cross-entropy; and 4-7-2, sigmoid, MSE. */
static const spec NET_CLS = {6, 3, {{8, BP_ACT_TANH, 0}, {5, BP_ACT_RELU, 0}, {3, BP_ACT_IDENTITY, 0}},
                             BP_LOSS_SOFTMAX_XENT};
static const spec NET_REG = {4, 2, {{7, BP_ACT_SIGMOID, 0}, {2, BP_ACT_IDENTITY, 0}}, BP_LOSS_MSE};

static bp_int n_out_of(const spec *s)
{
    return s->layers[s->n_layers - 1].n_out;
}

/* A network of spec s initialised from seed, planned for micro-batches of mb, on `threads`
 * threads (0: left at the default). */
static bp_net *make_net(const spec *s, bp_dtype dt, uint64_t seed, bp_int mb, int threads)
{
    bp_net *net = NULL;
    need(bp_net_create(&net, dt, s->n_in, s->n_layers, s->layers, s->loss, NULL) == BP_OK, "bp_net_create");
    need(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, seed, 1) == BP_OK, "bp_net_init");
    need(bp_net_plan(net, mb) == BP_OK, "bp_net_plan");
    if (threads > 0)
        need(bp_net_set_threads(net, threads) == BP_OK, "bp_net_set_threads");
    return net;
}

static data data_for(const spec *s, bp_dtype dt, bp_int n, uint64_t seed)
{
    return data_make(dt, n, s->n_in, n_out_of(s), s->loss, seed);
}

/* max |a - b| / max |b| over n values of the dtype. */
static double rel_diff(bp_dtype dt, const void *a, const void *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs(get(dt, a, i) - get(dt, b, i)));
        den = fmax(den, fabs(get(dt, b, i)));
    }
    return den > 0 ? num / den : num;
}

static double params_diff(bp_net *a, bp_net *b)
{
    return rel_diff(bp_net_dtype(a), bp_net_params(a), bp_net_params(b), bp_net_n_params(a));
}

static size_t params_bytes(bp_net *net)
{
    return bp_net_n_params(net) * esize_of(bp_net_dtype(net));
}

static double rel_scalar(double a, double b)
{
    return fabs(a - b) / fmax(fabs(b), 1e-300);
}

/* Attaches net over comm; the case cannot go on unless every rank succeeded. */
static bp_mpi *attach_all(bp_net *net, MPI_Comm comm, const bp_mpi_config *cfg)
{
    bp_mpi *dp = NULL;
    const bp_status st = bp_mpi_attach(&dp, net, comm, cfg);
    CHECK(st == BP_OK && dp != NULL, "bp_mpi_attach: %s (%s)", bp_strerror(st), bp_last_error());
    need(all_ok(st == BP_OK, comm), "bp_mpi_attach failed on some rank");
    return dp;
}

static bp_optim *make_opt(bp_net *net, bp_optimizer kind)
{
    bp_optim_config c = bp_optim_defaults(kind, kind == BP_OPT_ADAM ? 0.01 : 0.05);
    bp_optim *opt = NULL;
    need(bp_optim_create(&opt, net, &c) == BP_OK, "bp_optim_create");
    return opt;
}

/* ---- h. the fixed rule ---------------------------------------------------------------------- */

static void case_shard_rule(void)
{
    case_begin("shard rule");
    /* 7 over 3: 3, 2, 2 at 0, 3, 5. 2 over 3: 1, 1, 0. */
    const bp_int c7[3] = {3, 2, 2}, s7[3] = {0, 3, 5}, c2[3] = {1, 1, 0}, s2[3] = {0, 1, 2};
    for (int r = 0; r < 3; r++) {
        CHECK(bp_shard_count(7, 3, r) == c7[r], "bp_shard_count(7, 3, %d) = %d, want %d", r,
              (int)bp_shard_count(7, 3, r), (int)c7[r]);
        CHECK(bp_shard_start(7, 3, r) == s7[r], "bp_shard_start(7, 3, %d) = %d, want %d", r,
              (int)bp_shard_start(7, 3, r), (int)s7[r]);
        CHECK(bp_shard_count(2, 3, r) == c2[r], "bp_shard_count(2, 3, %d) = %d, want %d", r,
              (int)bp_shard_count(2, 3, r), (int)c2[r]);
        CHECK(bp_shard_start(2, 3, r) == s2[r], "bp_shard_start(2, 3, %d) = %d, want %d", r,
              (int)bp_shard_start(2, 3, r), (int)s2[r]);
    }
    CHECK(bp_shard_count(11, 2, 0) == 6 && bp_shard_count(11, 2, 1) == 5 && bp_shard_start(11, 2, 1) == 6,
          "11 over 2 is not 6 + 5");
    CHECK(bp_shard_count(8, 1, 0) == 8 && bp_shard_start(8, 1, 0) == 0, "8 over 1 rank");
    CHECK(bp_shard_count(0, 4, 3) == 0 && bp_shard_start(0, 4, 3) == 0, "0 over 4");
    /* Invalid arguments give 0. */
    CHECK(bp_shard_count(-1, 2, 0) == 0 && bp_shard_start(-1, 2, 1) == 0, "n < 0 not 0");
    CHECK(bp_shard_count(5, 0, 0) == 0 && bp_shard_start(5, 0, 0) == 0, "p = 0 not 0");
    CHECK(bp_shard_count(5, 2, -1) == 0 && bp_shard_start(5, 2, -1) == 0, "r < 0 not 0");
    CHECK(bp_shard_count(5, 2, 2) == 0 && bp_shard_start(5, 2, 2) == 0, "r = p not 0");
    /* Every n and p: the shards tile [0, n) in rank order, sizes differ by at most one. */
    int tiled = 1;
    for (bp_int n = 0; n <= 40; n++)
        for (int p = 1; p <= 7; p++) {
            bp_int next = 0;
            for (int r = 0; r < p; r++) {
                const bp_int c = bp_shard_count(n, p, r);
                tiled &= bp_shard_start(n, p, r) == next && (c == n / p || c == n / p + 1) &&
                         (c == n / p + 1) == (r < n % p);
                next += c;
            }
            tiled &= next == n;
        }
    CHECK(tiled, "the shards of n over p do not tile [0, n) by the fixed rule");

    /* bp_shard_rows(23, 5, 3, r): batches [0,5) [5,10) [10,15) [15,20) split 2, 2, 1, and [20,23)
     * split 1, 1, 1. */
    static const int32_t want0[] = {0, 1, 5, 6, 10, 11, 15, 16, 20};
    static const int32_t want1[] = {2, 3, 7, 8, 12, 13, 17, 18, 21};
    static const int32_t want2[] = {4, 9, 14, 19, 22};
    const int32_t *want[3] = {want0, want1, want2};
    const bp_int nwant[3] = {9, 9, 5};
    for (int r = 0; r < 3; r++) {
        int32_t rows[23];
        bp_int count = -1, count0 = -1;
        CHECK(bp_shard_rows(23, 5, 3, r, NULL, &count0) == BP_OK && count0 == nwant[r],
              "bp_shard_rows(23, 5, 3, %d) count %d, want %d", r, (int)count0, (int)nwant[r]);
        const bp_status st = bp_shard_rows(23, 5, 3, r, rows, &count);
        CHECK(st == BP_OK && count == nwant[r] &&
              memcmp(rows, want[r], (size_t)nwant[r] * sizeof *rows) == 0,
              "bp_shard_rows(23, 5, 3, %d) rows differ from the hand-derived ones", r);
    }
    /* Every n, batch and p: each row once, in increasing order per rank. */
    int cover = 1;
    for (bp_int n = 0; n <= 25; n++)
        for (bp_int b = 1; b <= 7; b++)
            for (int p = 1; p <= 4; p++) {
                int seen[25] = {0};
                bp_int total = 0;
                for (int r = 0; r < p; r++) {
                    int32_t rows[25];
                    bp_int count = 0;
                    cover &= bp_shard_rows(n, b, p, r, rows, &count) == BP_OK;
                    for (bp_int k = 0; k < count; k++) {
                        cover &= rows[k] >= 0 && rows[k] < n && (k == 0 || rows[k] > rows[k - 1]);
                        if (rows[k] >= 0 && rows[k] < n)
                            seen[rows[k]]++;
                    }
                    total += count;
                }
                cover &= total == n;
                for (bp_int i = 0; i < n; i++)
                    cover &= seen[i] == 1;
            }
    CHECK(cover, "bp_shard_rows does not give every row to exactly one rank");
    bp_int count = 0;
    CHECK(bp_shard_rows(0, 5, 2, 1, NULL, &count) == BP_OK && count == 0, "0 rows: count %d", (int)count);
    CHECK(bp_shard_rows(5, 5, 2, 0, NULL, NULL) == BP_ERR_ARG, "count NULL accepted");
    CHECK(bp_shard_rows(-1, 5, 2, 0, NULL, &count) == BP_ERR_ARG, "n_total < 0 accepted");
    CHECK(bp_shard_rows(5, 0, 2, 0, NULL, &count) == BP_ERR_ARG, "batch 0 accepted");
    CHECK(bp_shard_rows(5, 5, 0, 0, NULL, &count) == BP_ERR_ARG, "p 0 accepted");
    CHECK(bp_shard_rows(5, 5, 2, 2, NULL, &count) == BP_ERR_ARG, "r = p accepted");
    CHECK(bp_shard_rows(5, 5, 2, -1, NULL, &count) == BP_ERR_ARG, "r < 0 accepted");
    case_end();
}

/* ---- a, b, i. k steps against the single-process step on the whole batch ---------------------- */

static void case_steps(const char *name, const spec *s, bp_dtype dt, bp_optimizer kind)
{
    case_begin(name);
    const double tol = dt == BP_F64 ? TOL_D : TOL_F;
    /* Global batches that do not divide evenly over 2 or 3 ranks, one of them smaller than the
     * ranks (some hold no row) and one of a single row (the gemv/ger path of the reference). */
    static const bp_int sizes[STEPS] = {7, 11, 1, 13, 2};
    bp_net *ref = make_net(s, dt, 42, 16, 1);  /* each batch in one micro-batch */
    /* The other ranks start from other parameters: attach broadcasts the root's. A micro-batch of
     * 2 streams a shard in several. */
    bp_net *net = make_net(s, dt, g_rank == 0 ? 42 : 1000 + (uint64_t)g_rank, 2, 0);
    bp_mpi *dp = attach_all(net, MPI_COMM_WORLD, NULL);
    CHECK(memcmp(bp_net_params(net), bp_net_params(ref), params_bytes(net)) == 0,
          "after attach the parameters are not the root's");
    CHECK(bp_net_has_reducer(net), "no reducer after attach");
    bp_optim *opt_ref = make_opt(ref, kind), *opt = make_opt(net, kind);
    int replicas_same = 1;
    for (int k = 0; k < STEPS; k++) {
        const bp_int n = sizes[k], start = bp_shard_start(n, g_size, g_rank), c = bp_shard_count(n, g_size, g_rank);
        data d = data_for(s, dt, n, 100 + (uint64_t)k);
        double loss_ref = NAN, loss = NAN;
        const bp_status st_ref = bp_optim_train_step(opt_ref, ref, n, d.X, d.n_in, trow(&d, 0), d.n_out, &loss_ref);
        const bp_status st = bp_optim_train_step(opt, net, c, xrow(&d, start), d.n_in, trow(&d, start), d.n_out,
                                                 &loss);
        CHECK(st_ref == BP_OK, "step %d: reference: %s", k, bp_last_error());
        CHECK(st == BP_OK, "step %d (n %d, %d local rows): %s (%s)", k, (int)n, (int)c, bp_strerror(st),
              bp_last_error());
        CHECK(rel_scalar(loss, loss_ref) <= tol, "step %d: loss %.17g, single-process %.17g", k, loss, loss_ref);
        const double e = params_diff(net, ref);
        CHECK(e <= tol, "step %d (n %d): parameters differ from single-process by %.3g (tolerance %g)", k, (int)n, e,
              tol);
        /* b. every replica holds the same bits after every step */
        const int same = same_on_all(bp_net_params(net), params_bytes(net), MPI_COMM_WORLD);
        replicas_same &= same;
        CHECK(same, "step %d: the replicas' parameters differ across ranks", k);
        data_free(&d);
    }
    CHECK(bp_optim_steps(opt) == STEPS, "%ld optimizer steps, want %d", bp_optim_steps(opt), STEPS);

    /* i. the statistics: one gradient pass per step, every parameter reduced in each (p > 1) */
    bp_mpi_stats stats;
    memset(&stats, 0xff, sizeof stats);
    CHECK(bp_mpi_get_stats(dp, &stats) == BP_OK, "bp_mpi_get_stats: %s", bp_last_error());
    CHECK(stats.steps == STEPS, "stats.steps %ld, want %d", stats.steps, STEPS);
    if (g_size > 1)
        CHECK(stats.bytes == (double)STEPS * (double)params_bytes(net), "stats.bytes %.0f, want %.0f", stats.bytes,
              (double)STEPS * (double)params_bytes(net));
    CHECK(stats.wait_seconds >= 0 && stats.comm_seconds >= 0 && isfinite(stats.comm_seconds),
          "stats: wait %g s, comm %g s", stats.wait_seconds, stats.comm_seconds);
    CHECK(bp_mpi_reset_stats(dp) == BP_OK, "bp_mpi_reset_stats: %s", bp_last_error());
    CHECK(bp_mpi_get_stats(dp, &stats) == BP_OK && stats.steps == 0 && stats.bytes == 0 &&
          stats.wait_seconds == 0 && stats.comm_seconds == 0, "the statistics are not zero after a reset");

    bp_mpi_detach(dp);
    CHECK(!bp_net_has_reducer(net), "a reducer after detach");
    bp_optim_destroy(opt);
    bp_optim_destroy(opt_ref);
    bp_net_destroy(net);
    bp_net_destroy(ref);
    case_end();
}

/* ---- c. overlap on and off -------------------------------------------------------------------- */

static void case_overlap(const char *name, const spec *s, bp_dtype dt)
{
    case_begin(name);
    static const bp_int sizes[STEPS] = {9, 7, 2, 12, 5};
    bp_net *on = make_net(s, dt, 5, 2, 0), *off = make_net(s, dt, 5, 2, 0);
    bp_mpi_config cfg = bp_mpi_defaults();
    CHECK(cfg.root == 0 && cfg.overlap == 1 && cfg.threads == 0, "bp_mpi_defaults: root %d overlap %d threads %d",
          cfg.root, cfg.overlap, cfg.threads);
    bp_mpi *dp_on = attach_all(on, MPI_COMM_WORLD, &cfg);
    cfg.overlap = 0;
    bp_mpi *dp_off = attach_all(off, MPI_COMM_WORLD, &cfg);
    bp_optim *opt_on = make_opt(on, BP_OPT_ADAM), *opt_off = make_opt(off, BP_OPT_ADAM);
    for (int k = 0; k < STEPS; k++) {
        if (k == 3) {  /* the modes swap: each attachment's results stay the other's */
            CHECK(bp_mpi_set_overlap(dp_on, 0) == BP_OK && bp_mpi_set_overlap(dp_off, 1) == BP_OK,
                  "bp_mpi_set_overlap: %s", bp_last_error());
        }
        const bp_int n = sizes[k], start = bp_shard_start(n, g_size, g_rank), c = bp_shard_count(n, g_size, g_rank);
        data d = data_for(s, dt, n, 300 + (uint64_t)k);
        double l_on = NAN, l_off = NAN;
        const bp_status st_on = bp_optim_train_step(opt_on, on, c, xrow(&d, start), d.n_in, trow(&d, start), d.n_out,
                                                    &l_on);
        const bp_status st_off = bp_optim_train_step(opt_off, off, c, xrow(&d, start), d.n_in, trow(&d, start),
                                                     d.n_out, &l_off);
        CHECK(st_on == BP_OK && st_off == BP_OK, "step %d: %s / %s (%s)", k, bp_strerror(st_on), bp_strerror(st_off),
              bp_last_error());
        CHECK(memcmp(&l_on, &l_off, sizeof l_on) == 0, "step %d: loss %.17g with overlap, %.17g without", k, l_on,
              l_off);
        CHECK(memcmp(bp_net_params(on), bp_net_params(off), params_bytes(on)) == 0,
              "step %d: overlap on and off give different parameters (%.3g)", k, params_diff(on, off));
        data_free(&d);
    }
    CHECK(bp_mpi_set_overlap(NULL, 1) == BP_ERR_ARG, "bp_mpi_set_overlap(NULL) accepted");
    bp_mpi_detach(dp_on);
    bp_mpi_detach(dp_off);
    bp_optim_destroy(opt_on);
    bp_optim_destroy(opt_off);
    bp_net_destroy(on);
    bp_net_destroy(off);
    case_end();
}

/* ---- d. ranks that disagree ----------------------------------------------------------------- */

/* Rank 1 builds `odd` (or odd_dt, or with a standardisation), the others NET_CLS in double:
 * bp_mpi_attach must fail with BP_ERR_MISMATCH on every rank, naming rank 1 and `field` (or
 * field2, when not NULL), and change nothing. */
static void mismatch_one(const char *what, const spec *odd, bp_dtype odd_dt, int odd_std, const char *field,
                         const char *field2)
{
    const int me_odd = g_rank == 1;
    bp_net *net = make_net(me_odd ? odd : &NET_CLS, me_odd ? odd_dt : BP_F64, 9 + (uint64_t)g_rank, 4, 0);
    if (me_odd && odd_std) {
        const double mean[6] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, sd[6] = {1, 2, 1, 2, 1, 2};
        need(bp_net_set_standardization(net, mean, sd) == BP_OK, "bp_net_set_standardization");
    }
    const size_t bytes = params_bytes(net);
    void *before = malloc(bytes);
    need(before != NULL, "malloc");
    memcpy(before, bp_net_params(net), bytes);
    bp_mpi *dp = NULL;
    const bp_status st = bp_mpi_attach(&dp, net, MPI_COMM_WORLD, NULL);
    const char *msg = bp_last_error();
    CHECK(st == BP_ERR_MISMATCH, "%s: bp_mpi_attach returned %d (%s), want BP_ERR_MISMATCH: %s", what, (int)st,
          bp_strerror(st), msg);
    CHECK(strstr(msg, "rank 1") != NULL, "%s: the message does not name rank 1: \"%s\"", what, msg);
    CHECK(strstr(msg, field) != NULL || (field2 && strstr(msg, field2) != NULL),
          "%s: the message does not name \"%s\"%s%s: \"%s\"", what, field, field2 ? " or " : "", field2 ? field2 : "",
          msg);
    CHECK(dp == NULL, "%s: *out set on failure", what);
    CHECK(!bp_net_has_reducer(net), "%s: a reducer set on failure", what);
    CHECK(memcmp(before, bp_net_params(net), bytes) == 0, "%s: the parameters changed on failure", what);
    if (all_ok(st == BP_OK, MPI_COMM_WORLD))  /* keeps the ranks in step if it did attach */
        bp_mpi_detach(dp);
    free(before);
    bp_net_destroy(net);
}

static void case_mismatch(void)
{
    if (g_size < 2)
        return;
    case_begin("mismatch");
    spec wide = NET_CLS, act = NET_CLS;
    wide.layers[0].n_out = 9;
    act.layers[0].act = BP_ACT_SIGMOID;
    /* A wider layer also changes the parameter count: either may be named. */
    mismatch_one("a hidden layer of 9", &wide, BP_F64, 0, "layer 0", "number of parameters");
    mismatch_one("float on rank 1", &NET_CLS, BP_F32, 0, "dtype", NULL);
    mismatch_one("sigmoid for tanh", &act, BP_F64, 0, "activation", NULL);
    mismatch_one("standardisation on rank 1", &NET_CLS, BP_F64, 1, "standardi", NULL);

    /* Shard counts against the fixed rule: 4p rows, rank 0 passes 3, rank 1 passes 5. */
    bp_net *ref = make_net(&NET_CLS, BP_F64, 77, 16, 1), *net = make_net(&NET_CLS, BP_F64, 77, 2, 0);
    bp_mpi *dp = attach_all(net, MPI_COMM_WORLD, NULL);
    bp_optim *opt = make_opt(net, BP_OPT_ADAM), *opt_ref = make_opt(ref, BP_OPT_ADAM);
    const bp_int n = 4 * g_size;
    data d = data_for(&NET_CLS, BP_F64, n, 500);
    const bp_int bad_c = 4 + (g_rank == 0 ? -1 : g_rank == 1 ? 1 : 0);
    const bp_int bad_start = g_rank == 0 ? 0 : g_rank == 1 ? 3 : 4 * g_rank;
    double loss = 0;
    bp_status st = bp_optim_train_step(opt, net, bad_c, xrow(&d, bad_start), d.n_in, trow(&d, bad_start), d.n_out,
                                       &loss);
    CHECK(st == BP_ERR_MISMATCH, "shards 3 and 5: status %d (%s), want BP_ERR_MISMATCH: %s", (int)st,
          bp_strerror(st), bp_last_error());
    CHECK(memcmp(bp_net_params(net), bp_net_params(ref), params_bytes(net)) == 0,
          "shards 3 and 5: the parameters changed");
    CHECK(bp_optim_steps(opt) == 0, "shards 3 and 5: the optimizer counted a step");
    st = bp_net_loss_and_grad(net, bad_c, xrow(&d, bad_start), d.n_in, trow(&d, bad_start), d.n_out, &loss);
    CHECK(st == BP_ERR_MISMATCH, "shards 3 and 5, bp_net_loss_and_grad: status %d, want BP_ERR_MISMATCH",
          (int)st);
    /* The attachment still works: a step by the rule equals the single-process one. */
    const bp_int start = bp_shard_start(n, g_size, g_rank), c = bp_shard_count(n, g_size, g_rank);
    double loss_ref = 0;
    st = bp_optim_train_step(opt, net, c, xrow(&d, start), d.n_in, trow(&d, start), d.n_out, &loss);
    need(bp_optim_train_step(opt_ref, ref, n, d.X, d.n_in, d.y, d.n_out, &loss_ref) == BP_OK, "reference step");
    CHECK(st == BP_OK && params_diff(net, ref) <= TOL_D && rel_scalar(loss, loss_ref) <= TOL_D,
          "after the refused step, a good one: %s, parameters off by %.3g", bp_strerror(st), params_diff(net, ref));
    data_free(&d);
    bp_mpi_detach(dp);
    bp_optim_destroy(opt);
    bp_optim_destroy(opt_ref);
    bp_net_destroy(net);
    bp_net_destroy(ref);
    case_end();
}

/* ---- e. a split of the world: two models side by side ----------------------------------------- */

static void case_subcomm(void)
{
    case_begin("sub-communicator");
    /* Two halves (2 ranks: two singletons; 3 ranks: 2 and 1), each its own model and data. */
    const int color = g_rank >= (g_size + 1) / 2;
    MPI_Comm half;
    need(MPI_Comm_split(MPI_COMM_WORLD, color, g_rank, &half) == MPI_SUCCESS, "MPI_Comm_split");
    int hr, hp;
    MPI_Comm_rank(half, &hr);
    MPI_Comm_size(half, &hp);
    const spec *s = color ? &NET_REG : &NET_CLS;
    const uint64_t seed = color ? 2222 : 1111;
    /* The halves take different numbers of steps of different sizes: a collective on the world
     * would pair the halves' calls wrongly, and hang or mix their sums. */
    static const bp_int sizes0[STEPS] = {7, 10, 3, 8, 5}, sizes1[STEPS - 2] = {6, 1, 9};
    const bp_int *sizes = color ? sizes1 : sizes0;
    const int steps = color ? STEPS - 2 : STEPS;

    bp_net *ref = make_net(s, BP_F64, seed, 16, 1), *net = make_net(s, BP_F64, seed, 2, 0);
    bp_optim *opt_ref = make_opt(ref, BP_OPT_MOMENTUM), *opt = make_opt(net, BP_OPT_MOMENTUM);
    g_world_uses = 0;
    g_watch_world = 1;
    bp_mpi *dp = NULL;
    const bp_status st = bp_mpi_attach(&dp, net, half, NULL);
    CHECK(st == BP_OK, "bp_mpi_attach on a half: %s", bp_last_error());
    need(all_ok(st == BP_OK, half), "attach failed in a half");
    CHECK(bp_mpi_rank(dp) == hr && bp_mpi_size(dp) == hp, "rank %d of %d, want %d of %d", bp_mpi_rank(dp),
          bp_mpi_size(dp), hr, hp);
    for (int k = 0; k < steps; k++) {
        const bp_int n = sizes[k], start = bp_shard_start(n, hp, hr), c = bp_shard_count(n, hp, hr);
        data d = data_for(s, BP_F64, n, seed + (uint64_t)k);
        double loss = NAN, loss_ref = NAN;
        const bp_status st1 = bp_optim_train_step(opt, net, c, xrow(&d, start), d.n_in, trow(&d, start), d.n_out,
                                                  &loss);
        need(bp_optim_train_step(opt_ref, ref, n, d.X, d.n_in, trow(&d, 0), d.n_out, &loss_ref) == BP_OK,
             "reference step");
        CHECK(st1 == BP_OK, "half %d step %d: %s", color, k, bp_last_error());
        CHECK(params_diff(net, ref) <= TOL_D, "half %d step %d: parameters off by %.3g", color, k,
              params_diff(net, ref));
        CHECK(rel_scalar(loss, loss_ref) <= TOL_D, "half %d step %d: loss %.17g, want %.17g", color, k, loss,
              loss_ref);
        CHECK(same_on_all(bp_net_params(net), params_bytes(net), half), "half %d step %d: replicas differ", color,
              k);
        data_free(&d);
    }
    bp_mpi_detach(dp);
    g_watch_world = 0;
    CHECK(g_world_uses == 0, "libbackprop-mpi used MPI_COMM_WORLD %ld times on a sub-communicator", g_world_uses);
    /* The instrument works: an attachment over the world is seen. */
    g_world_uses = 0;
    g_watch_world = 1;
    bp_net *probe = make_net(&NET_CLS, BP_F64, 1, 2, 0);
    bp_mpi *dp_world = attach_all(probe, MPI_COMM_WORLD, NULL);
    g_watch_world = 0;
    CHECK(g_world_uses > 0, "the count of MPI_COMM_WORLD uses does not see the library's calls");
    bp_mpi_detach(dp_world);
    bp_net_destroy(probe);

    bp_optim_destroy(opt);
    bp_optim_destroy(opt_ref);
    bp_net_destroy(net);
    bp_net_destroy(ref);
    MPI_Comm_free(&half);
    case_end();
}

/* ---- f. bp_train, data-parallel ------------------------------------------------------------- */

#define MAX_EPOCHS 4
typedef struct epochs {
    int n;
    bp_epoch_report r[MAX_EPOCHS];
} epochs;

static int record_epoch(const bp_epoch_report *report, void *ctx)
{
    epochs *e = ctx;
    if (e->n < MAX_EPOCHS)
        e->r[e->n++] = *report;
    return 0;
}

static void case_train(void)
{
    case_begin("bp_train");
    const bp_int n_total = 23, batch = 5, n_val = 10;
    const spec *s = &NET_CLS;
    data all = data_for(s, BP_F64, n_total, 900), val = data_for(s, BP_F64, n_val, 901);

    bp_net *ref = make_net(s, BP_F64, 31, 8, 1), *net = make_net(s, BP_F64, 31, 2, 0);
    bp_optim *opt_ref = make_opt(ref, BP_OPT_ADAM), *opt = make_opt(net, BP_OPT_ADAM);
    epochs e_ref = {0}, e_dp = {0};
    bp_train_config cfg = {.epochs = 2, .batch_size = batch, .seed = 3, .shuffle = 0, .on_epoch = record_epoch,
                           .n_val = n_val, .X_val = val.X, .ldx_val = val.n_in, .targets_val = val.y,
                           .ldt_val = val.n_out};
    cfg.ctx = &e_ref;
    need(bp_train(ref, opt_ref, n_total, all.X, all.n_in, all.y, all.n_out, &cfg) == BP_OK, "reference bp_train");

    /* This rank's rows of every batch, and an uneven part of the validation set. */
    bp_int count = 0;
    need(bp_shard_rows(n_total, batch, g_size, g_rank, NULL, &count) == BP_OK, "bp_shard_rows");
    int32_t *rows = malloc(((size_t)count + 1) * sizeof *rows);
    need(rows != NULL, "malloc");
    need(bp_shard_rows(n_total, batch, g_size, g_rank, rows, &count) == BP_OK, "bp_shard_rows");
    rows[count] = 0;  /* a spare row, for the rank that holds one too many below */
    data mine = data_pick(&all, rows, count + 1);
    const bp_int vs = (bp_int)((long)n_val * g_rank * g_rank / ((long)g_size * g_size));
    const bp_int ve = (bp_int)((long)n_val * (g_rank + 1) * (g_rank + 1) / ((long)g_size * g_size));

    bp_mpi *dp = attach_all(net, MPI_COMM_WORLD, NULL);
    cfg.ctx = &e_dp;
    cfg.n_val = ve - vs;
    cfg.X_val = xrow(&val, vs);
    cfg.targets_val = trow(&val, vs);

    /* Ranks holding other than their shares (rank 0 one row more, rank 1 one fewer: the total
     * stays 23): refused on every rank first. */
    if (g_size > 1) {
        void *before = malloc(params_bytes(net));
        need(before != NULL, "malloc");
        memcpy(before, bp_net_params(net), params_bytes(net));
        const bp_status st = bp_train(net, opt, count + (g_rank == 0) - (g_rank == 1), mine.X, mine.n_in, mine.y, mine.n_out, &cfg);
        CHECK(st == BP_ERR_MISMATCH, "wrong row count: status %d (%s), want BP_ERR_MISMATCH: %s", (int)st,
              bp_strerror(st), bp_last_error());
        CHECK(memcmp(bp_net_params(net), before, params_bytes(net)) == 0 && e_dp.n == 0 && bp_optim_steps(opt) == 0,
              "wrong row count: training happened (%d epochs reported, %ld steps)", e_dp.n, bp_optim_steps(opt));
        free(before);
    }
    const bp_status st = bp_train(net, opt, count, mine.X, mine.n_in, mine.y, mine.n_out, &cfg);
    CHECK(st == BP_OK, "bp_train: %s (%s)", bp_strerror(st), bp_last_error());
    CHECK(e_dp.n == 2 && e_ref.n == 2, "%d epochs reported, single-process %d", e_dp.n, e_ref.n);
    for (int i = 0; i < e_dp.n && i < e_ref.n; i++) {
        const bp_epoch_report *a = &e_dp.r[i], *b = &e_ref.r[i];
        CHECK(a->epoch == b->epoch, "epoch %ld, want %ld", a->epoch, b->epoch);
        CHECK(rel_scalar(a->loss, b->loss) <= TOL_D, "epoch %ld: loss %.17g, single-process %.17g", a->epoch,
              a->loss, b->loss);
        CHECK(fabs(a->metric - b->metric) <= TOL_D, "epoch %ld: accuracy %.17g, single-process %.17g", a->epoch,
              a->metric, b->metric);
        CHECK(rel_scalar(a->val_loss, b->val_loss) <= TOL_D, "epoch %ld: val_loss %.17g, single-process %.17g",
              a->epoch, a->val_loss, b->val_loss);
        CHECK(fabs(a->val_metric - b->val_metric) <= TOL_D, "epoch %ld: val accuracy %.17g, single-process %.17g",
              a->epoch, a->val_metric, b->val_metric);
        CHECK(a->best == b->best, "epoch %ld: best %d, single-process %d", a->epoch, a->best, b->best);
    }
    CHECK(params_diff(net, ref) <= TOL_D, "after bp_train the parameters differ by %.3g", params_diff(net, ref));
    CHECK(same_on_all(bp_net_params(net), params_bytes(net), MPI_COMM_WORLD), "after bp_train the replicas differ");

    bp_mpi_detach(dp);
    free(rows);
    data_free(&mine);
    data_free(&all);
    data_free(&val);
    bp_optim_destroy(opt);
    bp_optim_destroy(opt_ref);
    bp_net_destroy(net);
    bp_net_destroy(ref);
    case_end();
}

/* ---- g. evaluation over the ranks' rows --------------------------------------------------------- */

static void case_eval(void)
{
    case_begin("evaluation");
    const bp_int n = 11;
    for (int which = 0; which < 2; which++) {
        const spec *s = which ? &NET_REG : &NET_CLS;
        bp_net *ref = make_net(s, BP_F64, 61, 16, 1), *net = make_net(s, BP_F64, 61, 2, 0);
        bp_mpi *dp = attach_all(net, MPI_COMM_WORLD, NULL);
        data d = data_for(s, BP_F64, n, 1200 + (uint64_t)which);
        bp_int start, c;
        split_uneven(n, g_size, g_rank, &start, &c);
        double l_ref = NAN, l = NAN;
        need(bp_net_eval_loss(ref, n, d.X, d.n_in, trow(&d, 0), d.n_out, &l_ref) == BP_OK, "bp_net_eval_loss");
        bp_status st = bp_mpi_eval_loss(dp, c, xrow(&d, start), d.n_in, trow(&d, start), d.n_out, &l);
        CHECK(st == BP_OK && rel_scalar(l, l_ref) <= TOL_D, "%s: bp_mpi_eval_loss %.17g (%s), single-process %.17g",
              s->loss == BP_LOSS_MSE ? "MSE" : "softmax", l, bp_strerror(st), l_ref);
        if (s->loss == BP_LOSS_SOFTMAX_XENT) {
            const bp_int k = n_out_of(s);
            int64_t conf_ref[9] = {0}, conf[9];
            memset(conf, 0xff, sizeof conf);
            double a_ref = NAN, a = NAN, a2 = NAN;
            need(bp_net_accuracy(ref, n, d.X, d.n_in, d.y, &a_ref, conf_ref) == BP_OK, "bp_net_accuracy");
            st = bp_mpi_accuracy(dp, c, xrow(&d, start), d.n_in, d.y + start, &a, conf);
            CHECK(st == BP_OK && fabs(a - a_ref) <= TOL_D, "bp_mpi_accuracy %.17g (%s), single-process %.17g", a,
                  bp_strerror(st), a_ref);
            CHECK(memcmp(conf, conf_ref, (size_t)(k * k) * sizeof *conf) == 0,
                  "bp_mpi_accuracy: the confusion matrix differs from the single-process one");
            st = bp_mpi_accuracy(dp, c, xrow(&d, start), d.n_in, d.y + start, &a2, NULL);
            CHECK(st == BP_OK && a2 == a, "bp_mpi_accuracy without a confusion matrix: %.17g (%s)", a2,
                  bp_strerror(st));
        } else {
            double r_ref = NAN, r = NAN;
            need(bp_net_rmse(ref, n, d.X, d.n_in, d.T, d.n_out, &r_ref) == BP_OK, "bp_net_rmse");
            st = bp_mpi_rmse(dp, c, xrow(&d, start), d.n_in, trow(&d, start), d.n_out, &r);
            CHECK(st == BP_OK && rel_scalar(r, r_ref) <= TOL_D, "bp_mpi_rmse %.17g (%s), single-process %.17g", r,
                  bp_strerror(st), r_ref);
        }
        data_free(&d);
        bp_mpi_detach(dp);
        bp_net_destroy(net);
        bp_net_destroy(ref);
    }
    case_end();
}

/* ---- i, j. the host's own gradient, the other calls, and detach --------------------------------- */

static void case_calls(void)
{
    case_begin("calls");
    const spec *s = &NET_CLS;
    bp_net *ref = make_net(s, BP_F64, 88, 16, 1), *net = make_net(s, BP_F64, 88, 2, 2);
    const size_t np = bp_net_n_params(net);

    /* Refused arguments, the same on every rank (no collective starts). */
    bp_mpi *dp = NULL;
    bp_mpi_config cfg = bp_mpi_defaults();
    CHECK(bp_mpi_attach(NULL, net, MPI_COMM_WORLD, NULL) == BP_ERR_ARG, "out NULL accepted");
    bp_status st_arg = bp_mpi_attach(&dp, NULL, MPI_COMM_WORLD, NULL);
    CHECK(st_arg == BP_ERR_ARG && dp == NULL, "every rank's net NULL: status %d, want BP_ERR_ARG (%s)", (int)st_arg,
          bp_last_error());
    cfg.root = g_size;
    st_arg = bp_mpi_attach(&dp, net, MPI_COMM_WORLD, &cfg);
    CHECK(st_arg == BP_ERR_ARG && dp == NULL, "every rank's root = size: status %d, want BP_ERR_ARG (%s)",
          (int)st_arg, bp_last_error());
    cfg.root = -1;
    st_arg = bp_mpi_attach(&dp, net, MPI_COMM_WORLD, &cfg);
    CHECK(st_arg == BP_ERR_ARG && dp == NULL, "every rank's root -1: status %d, want BP_ERR_ARG (%s)", (int)st_arg,
          bp_last_error());
    CHECK(bp_mpi_rank(NULL) == -1 && bp_mpi_size(NULL) == 0, "bp_mpi_rank/size(NULL)");
    bp_mpi_detach(NULL);

    /* threads -1 leaves the network's 2 threads; another root's parameters are broadcast. */
    cfg = bp_mpi_defaults();
    cfg.threads = -1;
    cfg.root = g_size - 1;
    need(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, g_rank == g_size - 1 ? 88 : 5, 1) == BP_OK, "init");
    dp = attach_all(net, MPI_COMM_WORLD, &cfg);
    CHECK(bp_net_threads(net) == 2, "threads -1 changed the thread count to %d", bp_net_threads(net));
    CHECK(memcmp(bp_net_params(net), bp_net_params(ref), params_bytes(net)) == 0,
          "root %d: its parameters were not broadcast", g_size - 1);
    CHECK(bp_mpi_rank(dp) == g_rank && bp_mpi_size(dp) == g_size, "bp_mpi_rank %d size %d, want %d %d",
          bp_mpi_rank(dp), bp_mpi_size(dp), g_rank, g_size);
    bp_mpi *again = NULL;
    const bp_status st_again = bp_mpi_attach(&again, net, MPI_COMM_WORLD, NULL);
    CHECK(st_again != BP_OK && again == NULL, "a second attachment of the same network: %s", bp_strerror(st_again));
    if (all_ok(st_again == BP_OK, MPI_COMM_WORLD))
        bp_mpi_detach(again);
    CHECK(bp_mpi_get_stats(dp, NULL) == BP_ERR_ARG, "bp_mpi_get_stats(stats NULL) accepted");
    bp_mpi_stats stats;
    CHECK(bp_mpi_get_stats(NULL, &stats) == BP_ERR_ARG, "bp_mpi_get_stats(NULL) accepted");
    CHECK(bp_mpi_reset_stats(NULL) == BP_ERR_ARG, "bp_mpi_reset_stats(NULL) accepted");

    /* bp_mpi_allreduce_grads: rank r holds (r + 1)(i + 1); the sum is p(p + 1)/2 (i + 1), exact. */
    double *g = bp_net_grads(net);
    for (size_t i = 0; i < np; i++)
        g[i] = (double)(g_rank + 1) * (double)(i + 1);
    CHECK(bp_mpi_allreduce_grads(dp) == BP_OK, "bp_mpi_allreduce_grads: %s", bp_last_error());
    int sums = 1;
    for (size_t i = 0; i < np; i++)
        sums &= g[i] == (double)g_size * (g_size + 1) / 2 * (double)(i + 1);
    CHECK(sums, "bp_mpi_allreduce_grads did not sum the ranks' buffers");

    /* bp_mpi_broadcast_params: every rank takes the root's (the root here: rank p - 1). */
    double *w = bp_net_params(net);
    const double *w_ref = bp_net_params(ref);
    if (g_rank != g_size - 1)
        for (size_t i = 0; i < np; i++)
            w[i] = -1;
    CHECK(bp_mpi_broadcast_params(dp) == BP_OK, "bp_mpi_broadcast_params: %s", bp_last_error());
    CHECK(memcmp(w, w_ref, np * sizeof *w) == 0, "bp_mpi_broadcast_params did not give every rank the root's");

    /* bp_net_loss_and_grad with a reducer: the global gradient, here with 2 rows over p ranks. */
    CHECK(bp_mpi_reset_stats(dp) == BP_OK, "bp_mpi_reset_stats");
    for (int k = 0; k < 3; k++) {
        const bp_int n = k == 0 ? 2 : 5 + k;
        const bp_int start = bp_shard_start(n, g_size, g_rank), c = bp_shard_count(n, g_size, g_rank);
        data d = data_for(s, BP_F64, n, 1500 + (uint64_t)k);
        double l = NAN, l_ref = NAN;
        need(bp_net_loss_and_grad(ref, n, d.X, d.n_in, d.y, d.n_out, &l_ref) == BP_OK, "reference grad");
        const bp_status st = bp_net_loss_and_grad(net, c, xrow(&d, start), d.n_in, d.y + start, d.n_out, &l);
        CHECK(st == BP_OK, "bp_net_loss_and_grad: %s", bp_last_error());
        const double e = rel_diff(BP_F64, bp_net_grads(net), bp_net_grads(ref), np);
        CHECK(e <= TOL_D && rel_scalar(l, l_ref) <= TOL_D, "n %d: gradient off by %.3g, loss %.17g want %.17g",
              (int)n, e, l, l_ref);
        CHECK(same_on_all(bp_net_grads(net), np * sizeof(double), MPI_COMM_WORLD), "n %d: gradients differ",
              (int)n);
        data_free(&d);
    }
    CHECK(bp_mpi_get_stats(dp, &stats) == BP_OK && stats.steps == 3, "stats.steps %ld after 3 passes",
          stats.steps);
    if (g_size > 1)
        CHECK(stats.bytes == 3.0 * (double)(np * sizeof(double)), "stats.bytes %.0f, want %.0f", stats.bytes,
              3.0 * (double)(np * sizeof(double)));

    /* A host's own gradient: bp_net_backward stays local (ranks pass different row counts), then
     * bp_mpi_allreduce_grads sums it: the single-process backward of the whole batch. */
    {
        const bp_int n = 2 * g_size + 1, n_out = n_out_of(s);
        const bp_int start = bp_shard_start(n, g_size, g_rank), c = bp_shard_count(n, g_size, g_rank);
        data d = data_for(s, BP_F64, n, 1600);
        double *dy = malloc((size_t)n * (size_t)n_out * sizeof *dy);
        need(dy != NULL, "malloc");
        uint64_t seed = 17;
        for (size_t i = 0; i < (size_t)n * (size_t)n_out; i++)
            dy[i] = 2 * unif(&seed) - 1;
        need(bp_net_backward(ref, n, d.X, d.n_in, dy, n_out, 0, NULL, 0) == BP_OK, "reference backward");
        const bp_status st = bp_net_backward(net, c, xrow(&d, start), d.n_in, dy + (size_t)start * (size_t)n_out,
                                             n_out, 0, NULL, 0);
        CHECK(st == BP_OK, "bp_net_backward on an attached network: %s", bp_last_error());
        CHECK(bp_mpi_allreduce_grads(dp) == BP_OK, "bp_mpi_allreduce_grads: %s", bp_last_error());
        const double e = rel_diff(BP_F64, bp_net_grads(net), bp_net_grads(ref), np);
        CHECK(e <= TOL_D, "backward + bp_mpi_allreduce_grads: off the single-process gradient by %.3g", e);
        free(dy);
        data_free(&d);
    }

    /* j. after detach the network is a plain one: rank 0 alone takes a step (a collective would
     * hang: the other ranks wait in the barrier), equal to the reference's from the same point. */
    bp_mpi_detach(dp);
    CHECK(!bp_net_has_reducer(net), "a reducer after detach");
    if (g_rank == 0) {
        memcpy(bp_net_params(ref), bp_net_params(net), params_bytes(net));
        bp_optim *o1 = make_opt(net, BP_OPT_SGD), *o2 = make_opt(ref, BP_OPT_SGD);
        data d = data_for(s, BP_F64, 5, 1700);
        double l1 = NAN, l2 = NAN;
        const bp_status st = bp_optim_train_step(o1, net, 5, d.X, d.n_in, d.y, d.n_out, &l1);
        need(bp_optim_train_step(o2, ref, 5, d.X, d.n_in, d.y, d.n_out, &l2) == BP_OK, "reference step");
        CHECK(st == BP_OK, "a local step after detach: %s", bp_last_error());
        CHECK(params_diff(net, ref) <= TOL_D && rel_scalar(l1, l2) <= TOL_D,
              "a local step after detach: parameters off by %.3g, loss %.17g want %.17g", params_diff(net, ref), l1,
              l2);
        data_free(&d);
        bp_optim_destroy(o1);
        bp_optim_destroy(o2);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    bp_net_destroy(net);
    bp_net_destroy(ref);
    case_end();
}

/* ---- k. what does not run data-parallel ----------------------------------------------------- */

static void case_refusals(void)
{
    case_begin("refusals");
    bp_net *net = make_net(&NET_CLS, BP_F64, 3, 4, 0);
    bp_mpi *dp = attach_all(net, MPI_COMM_WORLD, NULL);
    data d = data_for(&NET_CLS, BP_F64, 6, 2000);
    double err = NAN;
    bp_status st = bp_net_gradcheck(net, 6, d.X, d.n_in, d.y, d.n_out, 0, &err, NULL);
    CHECK(st == BP_ERR_UNSUPPORTED, "bp_net_gradcheck on an attached network: %d (%s)", (int)st, bp_strerror(st));
    bp_mpi_detach(dp);
    st = bp_net_gradcheck(net, 6, d.X, d.n_in, d.y, d.n_out, 0, &err, NULL);
    CHECK(st == BP_OK && err < 1e-6, "bp_net_gradcheck after detach: %s, error %.3g", bp_strerror(st), err);
    data_free(&d);
    bp_net_destroy(net);

    bp_net *lr = NULL;
    need(bp_logreg_create(&lr, BP_F64, 4, 3, NULL) == BP_OK, "bp_logreg_create");
    need(bp_net_plan(lr, 4) == BP_OK, "plan");
    dp = attach_all(lr, MPI_COMM_WORLD, NULL);
    data dl = data_make(BP_F64, 8, 4, 3, BP_LOSS_SOFTMAX_XENT, 2001);
    int iters = -1;
    st = bp_logreg_newton(lr, 8, dl.X, 4, dl.y, 1e-2, 5, 1e-10, &iters);
    CHECK(st == BP_ERR_UNSUPPORTED, "bp_logreg_newton on an attached network: %d (%s)", (int)st, bp_strerror(st));
    bp_mpi_detach(dp);
    data_free(&dl);
    bp_net_destroy(lr);

    bp_net *reg = make_net(&NET_REG, BP_F64, 4, 4, 0);
    dp = attach_all(reg, MPI_COMM_WORLD, NULL);
    data dr = data_for(&NET_REG, BP_F64, 8, 2002);
    st = bp_lm_fit(reg, 8, dr.X, dr.n_in, dr.T, dr.n_out, NULL, NULL);
    CHECK(st == BP_ERR_UNSUPPORTED, "bp_lm_fit on an attached network: %d (%s)", (int)st, bp_strerror(st));
    bp_mpi_detach(dp);
    data_free(&dr);
    bp_net_destroy(reg);
    case_end();
}

/* ---- one rank fails its part of a step ------------------------------------------------------- */

/* Writes into x (n_in values) finite inputs whose pass overflows: for the unit of layer 0 whose
 * |weights| sum the most (above 1), inputs +-DBL_MAX of its weights' signs make its
 * pre-activation +Inf, and ReLU keeps it (double networks). */
static void overflow_row(bp_net *net, double *x)
{
    bp_layer_view v;
    need(bp_net_layer(net, 0, &v) == BP_OK, "bp_net_layer");
    const double *W = v.W;
    const bp_int n_in = v.n_in;
    bp_int best = 0;
    double best_sum = 0;
    for (bp_int i = 0; i < v.n_out; i++) {
        double sum = 0;
        for (bp_int j = 0; j < n_in; j++)
            sum += fabs(W[(size_t)i * (size_t)n_in + (size_t)j]);
        if (sum > best_sum) {
            best_sum = sum;
            best = i;
        }
    }
    need(best_sum > 1, "a unit whose |weights| sum above 1");
    for (bp_int j = 0; j < n_in; j++)
        x[j] = copysign(DBL_MAX, W[(size_t)best * (size_t)n_in + (size_t)j]);
}

/* Rank 1's step fails, `how`: 0 inside the pass (finite inputs whose first layer overflows to
 * Inf, caught by the finite check after the layer), 1 in the checks before it (a NaN input, caught
 * by the finite check's scan of the inputs), 2 a label out of range (the argument checks). Rank 1
 * returns its own status, every other rank BP_ERR_COMM (another rank's part of the same step
 * failed), nobody waits forever (parallel.h: a pass that fails on a rank still takes part in the
 * reductions), nothing is updated, and the next good step matches the single-process one. */
static void one_rank_fails(int how)
{
    static const spec relu = {6, 2, {{8, BP_ACT_RELU, 0}, {3, BP_ACT_IDENTITY, 0}}, BP_LOSS_SOFTMAX_XENT};
    const spec *s = &relu;
    const bp_int n = 3 * g_size + 1;
    bp_net *ref = make_net(s, BP_F64, 123, 16, 1), *net = make_net(s, BP_F64, 123, 2, 0);
    need(bp_net_set_check_finite(net, 1) == BP_OK, "bp_net_set_check_finite");
    bp_mpi *dp = attach_all(net, MPI_COMM_WORLD, NULL);
    bp_optim *opt = make_opt(net, BP_OPT_MOMENTUM), *opt_ref = make_opt(ref, BP_OPT_MOMENTUM);
    data d = data_for(s, BP_F64, n, 2100 + (uint64_t)how);
    const bp_int start = bp_shard_start(n, g_size, g_rank), c = bp_shard_count(n, g_size, g_rank);
    const bp_int n_in = d.n_in;
    int32_t *own = malloc((size_t)c * sizeof *own);
    double *x = malloc((size_t)c * (size_t)n_in * sizeof *x);
    need(own != NULL && x != NULL, "malloc");
    memcpy(own, d.y + start, (size_t)c * sizeof *own);
    memcpy(x, xrow(&d, start), (size_t)c * (size_t)n_in * sizeof *x);
    if (g_rank == 1) {  /* its second row */
        if (how == 0) {
            overflow_row(net, x + n_in);
        } else if (how == 1) {
            x[n_in + 1] = NAN;
        } else {
            own[1] = 7;  /* 3 classes */
        }
    }
    static const char *const whats[3] = {"an overflow inside rank 1's pass", "a NaN input on rank 1",
                                         "a bad label on rank 1"};
    const char *what = whats[how];
    const bp_status want = how == 2 ? BP_ERR_ARG : BP_ERR_NONFINITE;
    double loss = 0;
    const bp_status st = bp_optim_train_step(opt, net, c, x, n_in, own, d.n_out, &loss);
    if (g_rank == 1)
        CHECK(st == want, "%s: rank 1 returned %d (%s), want %d: %s", what, (int)st, bp_strerror(st), (int)want,
              bp_last_error());
    else
        CHECK(st == BP_ERR_COMM, "%s: rank %d returned %d (%s), want BP_ERR_COMM", what, g_rank, (int)st,
              bp_strerror(st));
    CHECK(memcmp(bp_net_params(net), bp_net_params(ref), params_bytes(net)) == 0 && bp_optim_steps(opt) == 0,
          "%s: the parameters changed", what);
    /* The attachment goes on: a good step. */
    double loss_ref = 0;
    const bp_status st2 = bp_optim_train_step(opt, net, c, xrow(&d, start), n_in, d.y + start, d.n_out, &loss);
    need(bp_optim_train_step(opt_ref, ref, n, d.X, n_in, d.y, d.n_out, &loss_ref) == BP_OK, "reference step");
    CHECK(st2 == BP_OK && params_diff(net, ref) <= TOL_D && rel_scalar(loss, loss_ref) <= TOL_D,
          "%s: the next step: %s, parameters off by %.3g", what, bp_strerror(st2), params_diff(net, ref));
    free(own);
    free(x);
    data_free(&d);
    bp_mpi_detach(dp);
    bp_optim_destroy(opt);
    bp_optim_destroy(opt_ref);
    bp_net_destroy(net);
    bp_net_destroy(ref);
}

/* bp_train whose validation pass fails inside rank 1 (a row that overflows, caught by the finite
 * check; the learning rate is tiny, so the row still overflows after the first epoch): rank 1
 * returns BP_ERR_NONFINITE, every other rank BP_ERR_COMM, after one epoch on every rank, and
 * nobody waits forever. */
static void one_rank_val_fails(void)
{
    static const spec relu = {6, 2, {{8, BP_ACT_RELU, 0}, {3, BP_ACT_IDENTITY, 0}}, BP_LOSS_SOFTMAX_XENT};
    const bp_int n_total = 4 * g_size, batch = 2 * g_size, n_val = 2;
    bp_net *net = make_net(&relu, BP_F64, 77, 4, 0);
    need(bp_net_set_check_finite(net, 1) == BP_OK, "bp_net_set_check_finite");
    bp_mpi *dp = attach_all(net, MPI_COMM_WORLD, NULL);
    bp_optim_config oc = bp_optim_defaults(BP_OPT_SGD, 1e-12);
    bp_optim *opt = NULL;
    need(bp_optim_create(&opt, net, &oc) == BP_OK, "bp_optim_create");
    data all = data_for(&relu, BP_F64, n_total, 3100), val = data_for(&relu, BP_F64, n_val, 3101);
    if (g_rank == 1)
        overflow_row(net, (double *)val.X + val.n_in);
    bp_int count = 0;
    need(bp_shard_rows(n_total, batch, g_size, g_rank, NULL, &count) == BP_OK, "bp_shard_rows");
    int32_t *rows = malloc((size_t)count * sizeof *rows);
    need(rows != NULL, "malloc");
    need(bp_shard_rows(n_total, batch, g_size, g_rank, rows, &count) == BP_OK, "bp_shard_rows");
    data mine = data_pick(&all, rows, count);
    epochs e = {0};
    const bp_train_config cfg = {.epochs = 3, .batch_size = batch, .on_epoch = record_epoch, .ctx = &e,
                                 .n_val = n_val, .X_val = val.X, .ldx_val = val.n_in, .targets_val = val.y,
                                 .ldt_val = val.n_out};
    const bp_status st = bp_train(net, opt, count, mine.X, mine.n_in, mine.y, mine.n_out, &cfg);
    if (g_rank == 1)
        CHECK(st == BP_ERR_NONFINITE, "validation overflow: rank 1 returned %d (%s), want BP_ERR_NONFINITE: %s",
              (int)st, bp_strerror(st), bp_last_error());
    else
        CHECK(st == BP_ERR_COMM, "validation overflow: rank %d returned %d (%s), want BP_ERR_COMM", g_rank, (int)st,
              bp_strerror(st));
    CHECK(e.n == 0 && bp_optim_steps(opt) == (long)(n_total / batch),
          "validation overflow: %d epochs reported and %ld steps, want 0 and %d", e.n, bp_optim_steps(opt),
          (int)(n_total / batch));
    free(rows);
    data_free(&mine);
    data_free(&all);
    data_free(&val);
    bp_mpi_detach(dp);
    bp_optim_destroy(opt);
    bp_net_destroy(net);
}

static void case_one_rank_fails(void)
{
    if (g_size < 2)
        return;
    static const char *const names[3] = {"one rank fails inside the pass", "one rank's NaN input",
                                         "one rank's bad label"};
    for (int how = 0; how < 3; how++) {
        case_begin_for(names[how], 20);  /* a hang here fails in 20 s */
        one_rank_fails(how);
        case_end();
    }
    case_begin_for("one rank's validation fails in bp_train", 20);
    one_rank_val_fails();
    case_end();
}

int main(int argc, char **argv)
{
    if (MPI_Init(&argc, &argv) != MPI_SUCCESS)
        return 2;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);

    case_shard_rule();
    case_steps("steps: 6-8-5-3 softmax, double, Adam", &NET_CLS, BP_F64, BP_OPT_ADAM);
    case_steps("steps: 6-8-5-3 softmax, double, momentum", &NET_CLS, BP_F64, BP_OPT_MOMENTUM);
    case_steps("steps: 4-7-2 MSE, double, Adam", &NET_REG, BP_F64, BP_OPT_ADAM);
    case_steps("steps: 4-7-2 MSE, double, momentum", &NET_REG, BP_F64, BP_OPT_MOMENTUM);
    case_steps("steps: 6-8-5-3 softmax, float, Adam", &NET_CLS, BP_F32, BP_OPT_ADAM);
    case_steps("steps: 4-7-2 MSE, float, momentum", &NET_REG, BP_F32, BP_OPT_MOMENTUM);
    case_overlap("overlap: double", &NET_CLS, BP_F64);
    case_overlap("overlap: float", &NET_REG, BP_F32);
    case_mismatch();
    case_subcomm();
    case_train();
    case_eval();
    case_calls();
    case_refusals();
    case_one_rank_fails();  /* last: if a rank hangs, the watchdog ends the program */

    long v[2] = {g_pass, g_fail};
    MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (g_rank == 0) {
        printf("mpi dp (%d ranks): %ld passed, %ld failed\n", g_size, v[0], v[1]);
        fflush(stdout);
    }
    MPI_Finalize();
    return v[1] == 0 ? 0 : 1;
}
