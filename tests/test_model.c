/* SPDX-License-Identifier: MIT */
/* test_model.c: the model file: the exact byte layout (format 2 with and without its sections, and
 * format 1), bitwise round trips of the network, its standardisation, every optimizer's state and
 * the training state, an exact resume of bp_train from a file, every corrupt, truncated, foreign or
 * hostile file, atomic saves under injected write/fsync/rename/fclose failures, bad arguments. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <backprop.h>
#include <backprop/io.h>
#include <backprop/net.h>

#include "testutil.h"
/* White-box: the optimizer's moments and step count, to fill them with arbitrary bits and compare
 * them bitwise after a load (the public API has no reader for the moments). */
#include "optim/optim_internal.h"

/* ---------------------------------------------------------------------------------------------
 * Fault injection. The suite links the static library with -Wl,--wrap=fwrite,fclose,fsync,rename
 * (see tests/meson.build), so the library's calls land here. Nothing fails unless armed; while
 * armed, calls are counted and call number `at` (1-based) of the chosen function fails.
 * (Check forks each test, so this state is per test.) Check itself calls fwrite and fclose
 * (each assertion writes to its channel), so no assertion may run while armed.
 * ------------------------------------------------------------------------------------------- */
enum fault_fn { F_NONE, F_FWRITE, F_FCLOSE, F_FSYNC, F_RENAME, F_COUNT };

static struct {
    int armed;
    enum fault_fn fn;
    long at;
    int err;
    long calls[F_COUNT];
} fault;

static int should_fail(enum fault_fn f)
{
    if (!fault.armed)
        return 0;
    fault.calls[f]++;
    return fault.fn == f && fault.calls[f] == fault.at;
}

static void arm(enum fault_fn f, long at, int err)
{
    memset(fault.calls, 0, sizeof fault.calls);
    fault.fn = f;
    fault.at = at;
    fault.err = err;
    fault.armed = 1;
}

static void disarm(void)
{
    fault.armed = 0;
}

size_t __real_fwrite(const void *p, size_t size, size_t n, FILE *f);
size_t __wrap_fwrite(const void *p, size_t size, size_t n, FILE *f);
int __real_fclose(FILE *f);
int __wrap_fclose(FILE *f);
int __real_fsync(int fd);
int __wrap_fsync(int fd);
int __real_rename(const char *from, const char *to);
int __wrap_rename(const char *from, const char *to);

/* A full disk: half of the data is written, then the call fails. */
size_t __wrap_fwrite(const void *p, size_t size, size_t n, FILE *f)
{
    if (should_fail(F_FWRITE)) {
        const size_t k = __real_fwrite(p, size, n / 2, f);
        errno = fault.err;
        return k;
    }
    return __real_fwrite(p, size, n, f);
}

/* A close that reports a deferred write error (as NFS can): the stream is closed all the same. */
int __wrap_fclose(FILE *f)
{
    if (should_fail(F_FCLOSE)) {
        __real_fclose(f);
        errno = fault.err;
        return EOF;
    }
    return __real_fclose(f);
}

int __wrap_fsync(int fd)
{
    if (should_fail(F_FSYNC)) {
        errno = fault.err;
        return -1;
    }
    return __real_fsync(fd);
}

int __wrap_rename(const char *from, const char *to)
{
    if (should_fail(F_RENAME)) {
        errno = fault.err;
        return -1;
    }
    return __real_rename(from, to);
}

/* ---------------------------------------------------------------------------------------------
 * Helpers: a scratch directory per test, files as byte arrays, networks with known contents.
 * ------------------------------------------------------------------------------------------- */
static char dir[512];
static char path[600];

static void scratch_setup(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/bp_test_model_XXXXXX", t && t[0] ? t : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/model.bpm", dir);
}

static void scratch_teardown(void)
{
    tu_remove_dir(dir);
}

/* The names in the scratch directory, sorted-insensitive: count, and whether `only` is the one. */
static int dir_entries(char names[][256], int max)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (n < max)
            snprintf(names[n], 256, "%s", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

/* The directory holds exactly `want` (or nothing, when want is NULL): no temporary file left. */
static void assert_dir_holds(const char *want)
{
    char names[8][256];
    const int n = dir_entries(names, 8);
    if (!want) {
        ck_assert_msg(n == 0, "%d leftover entries, the first '%s'", n, n ? names[0] : "");
        return;
    }
    ck_assert_msg(n == 1, "%d entries in %s (want only %s); first '%s', second '%s'", n, dir, want,
                  n > 0 ? names[0] : "", n > 1 ? names[1] : "");
    ck_assert_str_eq(names[0], want);
}

typedef struct bytes {
    unsigned char *p;
    size_t n;
} bytes;

static bytes read_file(const char *p)
{
    FILE *f = fopen(p, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", p);
    bytes b = {NULL, 0};
    size_t cap = 0;
    for (;;) {
        if (b.n == cap) {
            cap = cap ? 2 * cap : 4096;
            b.p = realloc(b.p, cap);
            ck_assert_ptr_nonnull(b.p);
        }
        const size_t k = fread(b.p + b.n, 1, cap - b.n, f);
        b.n += k;
        if (k == 0)
            break;
    }
    ck_assert_int_eq(ferror(f), 0);
    fclose(f);
    return b;
}

static void write_file(const char *p, const void *data, size_t n)
{
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static void assert_same_file(const char *p, const bytes *want)
{
    bytes got = read_file(p);
    ck_assert_uint_eq(got.n, want->n);
    ck_assert_msg(memcmp(got.p, want->p, want->n) == 0, "%s changed", p);
    free(got.p);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Rewrites the trailing CRC so that only the deliberate defect remains. */
static void fix_crc(bytes *b)
{
    ck_assert_uint_ge(b->n, 4);
    put32(b->p + b->n - 4, (uint32_t)crc32(0L, b->p, (uInt)(b->n - 4)));
}

/* Fills the parameters with arbitrary bit patterns, so the round trip must be bitwise: signed
 * zeros, subnormals, infinities and NaNs with payloads included. */
static void fill_bits(bp_net *net, uint64_t seed)
{
    tu_rng rng = tu_rng_make(seed);
    const size_t n = bp_net_n_params(net);
    if (bp_net_dtype(net) == BP_F32) {
        float *p = bp_net_params(net);
        for (size_t k = 0; k < n; k++) {
            const uint32_t u = (uint32_t)tu_next(&rng);
            memcpy(&p[k], &u, sizeof u);
        }
    } else {
        double *p = bp_net_params(net);
        for (size_t k = 0; k < n; k++) {
            const uint64_t u = tu_next(&rng);
            memcpy(&p[k], &u, sizeof u);
        }
    }
}

/* Small finite values, for nets that are run. */
static void fill_values(bp_net *net, uint64_t seed)
{
    tu_rng rng = tu_rng_make(seed);
    const size_t n = bp_net_n_params(net);
    for (size_t k = 0; k < n; k++) {
        const double v = (double)(tu_next(&rng) >> 11) * 0x1.0p-53 * 2 - 1;
        if (bp_net_dtype(net) == BP_F32)
            ((float *)bp_net_params(net))[k] = (float)v;
        else
            ((double *)bp_net_params(net))[k] = v;
    }
}

/* ---------------------------------------------------------------------------------------------
 * A model file built by hand, from the layout in io.h and nothing of the library's: the oracle
 * the saves are compared with, and the way to make files a save never writes (format 1, sections
 * out of order, repeated, of the wrong length).
 * ------------------------------------------------------------------------------------------- */
typedef struct builder {
    unsigned char *p;
    size_t n, cap;
} builder;

static void b_put(builder *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = 2 * (b->n + n) + 64;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
    }
    if (n)
        memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void b_u32(builder *b, uint32_t v)
{
    unsigned char c[4];
    put32(c, v);
    b_put(b, c, 4);
}

static void b_u64(builder *b, uint64_t v)
{
    unsigned char c[8];
    put64(c, v);
    b_put(b, c, 8);
}

static void b_f64(builder *b, double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    b_u64(b, u);
}

/* n values of esize bytes (4 or 8) as their bits, little-endian. */
static void b_values(builder *b, size_t esize, const void *v, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (esize == 4) {
            uint32_t u;
            memcpy(&u, (const float *)v + k, sizeof u);
            b_u32(b, u);
        } else {
            uint64_t u;
            memcpy(&u, (const double *)v + k, sizeof u);
            b_u64(b, u);
        }
    }
}

static size_t esize_of(const bp_net *net)
{
    return bp_net_dtype(net) == BP_F32 ? 4 : 8;
}

/* The header, layer table, n_params and parameters of `net`, as format `version` lays them out. */
static void b_net(builder *b, bp_net *net, uint32_t version)
{
    b_put(b, "BPMODEL", 8);
    b_u32(b, version);
    b_u32(b, 0x01020304u);
    b_u32(b, (uint32_t)bp_net_dtype(net));
    b_u32(b, (uint32_t)bp_net_loss(net));
    b_u32(b, (uint32_t)bp_net_n_in(net));
    b_u32(b, (uint32_t)bp_net_n_layers(net));
    for (bp_int i = 0; i < bp_net_n_layers(net); i++) {
        bp_layer_view v;
        ck_assert_int_eq(bp_net_layer(net, i, &v), BP_OK);
        b_u32(b, (uint32_t)v.n_out);
        b_u32(b, (uint32_t)v.act);
        b_f64(b, v.alpha);
    }
    b_u64(b, (uint64_t)bp_net_n_params(net));
    b_values(b, esize_of(net), bp_net_params(net), bp_net_n_params(net));
}

static void b_section(builder *b, const char tag[4], uint64_t len)
{
    b_put(b, tag, 4);
    b_u64(b, len);
}

/* The STDZ section of a network with a standardisation. */
static void b_stdz(builder *b, const bp_net *net)
{
    const size_t d = (size_t)bp_net_n_in(net);
    double *ms = malloc(2 * d * sizeof *ms);
    ck_assert_ptr_nonnull(ms);
    ck_assert_int_eq(bp_net_standardization(net, ms, ms + d), BP_OK);
    b_section(b, "STDZ", 16 * (uint64_t)d);
    b_values(b, 8, ms, 2 * d);
    free(ms);
}

/* The moment buffers an optimizer of this kind keeps. */
static int moments_of(bp_optimizer kind)
{
    return kind == BP_OPT_SGD ? 0 : kind == BP_OPT_MOMENTUM || kind == BP_OPT_NESTEROV ? 1 : 2;
}

/* The OPTM section of opt (for net): its configuration, steps and moments, `drop` bytes short. */
static void b_optm(builder *b, const bp_net *net, const bp_optim *opt, size_t drop)
{
    const bp__optim_view v = bp__optim_state(opt);
    const bp_optim_config *c = v.config;
    const size_t es = esize_of(net), np = bp_net_n_params(net), k = (size_t)moments_of(c->kind);
    ck_assert_int_eq(k, (v.m != NULL) + (v.v != NULL));
    b_section(b, "OPTM", 96 + k * np * es - drop);
    const size_t start = b->n;
    b_u32(b, (uint32_t)c->kind);
    b_u32(b, (uint32_t)c->schedule);
    const double d[8] = {c->lr, c->momentum, c->beta1, c->beta2, c->eps, c->weight_decay, c->gamma, c->lr_min};
    for (int i = 0; i < 8; i++)
        b_f64(b, d[i]);
    b_u64(b, (uint64_t)c->step_size);
    b_u64(b, (uint64_t)c->t_max);
    b_u64(b, (uint64_t)*v.steps);
    if (v.m)
        b_values(b, es, v.m, np);
    if (v.v)
        b_values(b, es, v.v, np);
    b->n = start + 96 + k * np * es - drop;
}

static void b_trst(builder *b, const bp_train_state *st)
{
    b_section(b, "TRST", 40);
    b_u64(b, (uint64_t)st->epochs_done);
    for (int i = 0; i < 4; i++)
        b_u64(b, st->rng[i]);
}

/* Appends the CRC-32 of everything so far and hands the bytes over. */
static bytes b_finish(builder *b)
{
    b_u32(b, (uint32_t)crc32(0L, b->p, (uInt)b->n));
    const bytes r = {b->p, b->n};
    *b = (builder){NULL, 0, 0};
    return r;
}

/* A version-2 file of net with the sections named by `order` ('S' STDZ, 'O' OPTM, 'T' TRST, in
 * that order, repeats allowed), n_sections = their count. */
static bytes v2_file(bp_net *net, const bp_optim *opt, const bp_train_state *st, const char *order)
{
    builder b = {NULL, 0, 0};
    b_net(&b, net, 2);
    b_u32(&b, (uint32_t)strlen(order));
    for (const char *c = order; *c; c++) {
        if (*c == 'S')
            b_stdz(&b, net);
        else if (*c == 'O')
            b_optm(&b, net, opt, 0);
        else
            b_trst(&b, st);
    }
    return b_finish(&b);
}

/* A version-1 file of net: no n_sections, no sections. */
static bytes v1_file(bp_net *net)
{
    builder b = {NULL, 0, 0};
    b_net(&b, net, 1);
    return b_finish(&b);
}

/* Arbitrary finite statistics, with the awkward values a bitwise round trip must keep: -0.0, a
 * subnormal, a zero deviation, huge and tiny magnitudes. */
static void set_stats(bp_net *net, uint64_t seed)
{
    const size_t d = (size_t)bp_net_n_in(net);
    double *ms = malloc(2 * d * sizeof *ms);
    ck_assert_ptr_nonnull(ms);
    tu_rng r = tu_rng_make(seed);
    for (size_t j = 0; j < d; j++) {
        ms[j] = ldexp(tu_unif(&r, -1, 1) + 0x1p-40, tu_int(&r, -60, 60));
        ms[d + j] = ldexp(tu_unif(&r, 0, 1) + 0x1p-40, tu_int(&r, -60, 60));
    }
    static const double odd[4][2] = {{-0.0, 0.0}, {0x1p-1060, 1e300}, {DBL_MAX, 0x1p-1074}, {-DBL_MAX, 1.0}};
    for (size_t j = 0; j < d && j < 4; j++) {
        ms[j] = odd[j][0];
        ms[d + j] = odd[j][1];
    }
    ck_assert_int_eq(bp_net_set_standardization(net, ms, ms + d), BP_OK);
    free(ms);
}

/* The same standardisation, bitwise, or none on both. */
static void assert_same_stdz(const bp_net *a, const bp_net *b)
{
    ck_assert_int_eq(!!bp_net_has_standardization(a), !!bp_net_has_standardization(b));
    if (!bp_net_has_standardization(a))
        return;
    const size_t d = (size_t)bp_net_n_in(a);
    double *x = malloc(4 * d * sizeof *x);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(bp_net_standardization(a, x, x + d), BP_OK);
    ck_assert_int_eq(bp_net_standardization(b, x + 2 * d, x + 3 * d), BP_OK);
    ck_assert_msg(memcmp(x, x + 2 * d, 2 * d * sizeof *x) == 0, "the standardisation differs");
    free(x);
}

/* An optimizer of `kind` for net, the schedule chosen by `sched`, every field its rule and schedule
 * do not read given odd bits (a NaN with a payload, -0.0, a count of 0 or LONG_MAX), a step count and
 * moments of arbitrary bits (NaNs, infinities, subnormals): a load must keep them all. */
static bp_optim *odd_optim(bp_net *net, bp_optimizer kind, bp_schedule sched, uint64_t seed)
{
    bp_optim_config c = bp_optim_defaults(kind, 0.0625);
    double nan_payload;
    const uint64_t nb = UINT64_C(0x7ff4000000abcdef);
    memcpy(&nan_payload, &nb, sizeof nan_payload);
    c.schedule = sched;
    c.weight_decay = kind == BP_OPT_SGD ? 0.0 : 1e-3;
    if (kind == BP_OPT_SGD || kind == BP_OPT_ADAM || kind == BP_OPT_ADAMW)
        c.momentum = nan_payload;
    if (kind != BP_OPT_ADAM && kind != BP_OPT_ADAMW) {
        c.beta1 = -0.0;
        c.beta2 = INFINITY;
        c.eps = -1.0;
    }
    c.gamma = sched == BP_SCHED_STEP ? 0.5 : nan_payload;
    c.step_size = sched == BP_SCHED_STEP ? 3 : 0;
    c.t_max = sched == BP_SCHED_COSINE ? 1000 : LONG_MAX;
    c.lr_min = sched == BP_SCHED_COSINE ? 1e-5 : -INFINITY;
    bp_optim *opt = NULL;
    ck_assert_msg(bp_optim_create(&opt, net, &c) == BP_OK, "%s", bp_last_error());
    const bp__optim_view v = bp__optim_state(opt);
    tu_rng r = tu_rng_make(seed);
    *v.steps = (long)(tu_next(&r) >> 2);
    const size_t bytes = bp_net_n_params(net) * esize_of(net);
    void *buf[2] = {v.m, v.v};
    for (int i = 0; i < 2; i++)
        for (size_t k = 0; buf[i] && k < bytes; k++)
            ((unsigned char *)buf[i])[k] = (unsigned char)tu_next(&r);
    return opt;
}

/* Same configuration (every field, bitwise), step count and moments. */
static void assert_same_optim(const bp_net *net, const bp_optim *a, const bp_optim *b)
{
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    const bp__optim_view u = bp__optim_state(a), v = bp__optim_state(b);
    const bp_optim_config *x = u.config, *y = v.config;
    ck_assert_int_eq(x->kind, y->kind);
    ck_assert_int_eq(x->schedule, y->schedule);
    const double dx[8] = {x->lr, x->momentum, x->beta1, x->beta2, x->eps, x->weight_decay, x->gamma, x->lr_min};
    const double dy[8] = {y->lr, y->momentum, y->beta1, y->beta2, y->eps, y->weight_decay, y->gamma, y->lr_min};
    for (int i = 0; i < 8; i++)
        ck_assert_msg(memcmp(&dx[i], &dy[i], sizeof dx[i]) == 0, "configuration double %d: %g vs %g", i, dx[i],
                      dy[i]);
    ck_assert_int_eq(x->step_size, y->step_size);
    ck_assert_int_eq(x->t_max, y->t_max);
    ck_assert_int_eq(*u.steps, *v.steps);
    ck_assert_int_eq(bp_optim_steps(a), bp_optim_steps(b));
    ck_assert_int_eq(u.m != NULL, v.m != NULL);
    ck_assert_int_eq(u.v != NULL, v.v != NULL);
    const size_t bytes = bp_net_n_params(net) * esize_of(net);
    if (u.m)
        ck_assert_msg(memcmp(u.m, v.m, bytes) == 0, "the first moments differ");
    if (u.v)
        ck_assert_msg(memcmp(u.v, v.v, bytes) == 0, "the second moments differ");
}

static bp_train_state odd_state(uint64_t seed)
{
    tu_rng r = tu_rng_make(seed);
    bp_train_state st;
    st.epochs_done = (long)(tu_next(&r) >> 1);
    for (int i = 0; i < 4; i++)
        st.rng[i] = tu_next(&r);
    st.rng[seed % 4] = UINT64_MAX;
    return st;
}

static void assert_same_state(const bp_train_state *a, const bp_train_state *b)
{
    ck_assert_int_eq(a->epochs_done, b->epochs_done);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(a->rng[i] == b->rng[i], "rng[%d]: %016llx vs %016llx", i, (unsigned long long)a->rng[i],
                      (unsigned long long)b->rng[i]);
}

typedef struct shape {
    bp_int n_in, n_layers;
    bp_layer_spec layers[6];
    bp_loss loss;
} shape;

static const shape SHAPES[] = {
    {1, 1, {{1, BP_ACT_IDENTITY, 0.0}}, BP_LOSS_MSE},
    {3, 2, {{5, BP_ACT_TANH, 0.0}, {2, BP_ACT_IDENTITY, 0.0}}, BP_LOSS_SOFTMAX_XENT},
    {784, 2, {{32, BP_ACT_RELU, 0.0}, {10, BP_ACT_IDENTITY, 0.0}}, BP_LOSS_SOFTMAX_XENT},
    {4, 6,
     {{7, BP_ACT_LEAKY_RELU, 0.1}, {6, BP_ACT_ELU, 1.5}, {5, BP_ACT_GELU, 0.0}, {3, BP_ACT_GELU_TANH, -0.25},
      {2, BP_ACT_SOFTPLUS, 0.0}, {1, BP_ACT_IDENTITY, 0.0}},
     BP_LOSS_SIGMOID_BCE},
    {2, 2, {{3, BP_ACT_SIGMOID, 0.0}, {4, BP_ACT_SOFTMAX, 0.0}}, BP_LOSS_MSE},
    {17, 1, {{1, BP_ACT_RELU, 0.0}}, BP_LOSS_MSE},
};
#define NSHAPES ((int)(sizeof SHAPES / sizeof SHAPES[0]))

static bp_net *make_net(bp_dtype dt, const shape *s, const bp_allocator *alloc)
{
    bp_net *net = NULL;
    ck_assert_int_eq(bp_net_create(&net, dt, s->n_in, s->n_layers, s->layers, s->loss, alloc), BP_OK);
    ck_assert_ptr_nonnull(net);
    return net;
}

/* Same dtype, loss, architecture and parameter bits. */
static void assert_same_net(bp_net *a, bp_net *b)
{
    ck_assert_int_eq(bp_net_dtype(a), bp_net_dtype(b));
    ck_assert_int_eq(bp_net_loss(a), bp_net_loss(b));
    ck_assert_int_eq(bp_net_n_in(a), bp_net_n_in(b));
    ck_assert_int_eq(bp_net_n_layers(a), bp_net_n_layers(b));
    ck_assert_uint_eq(bp_net_n_params(a), bp_net_n_params(b));
    for (bp_int i = 0; i < bp_net_n_layers(a); i++) {
        bp_layer_view va, vb;
        ck_assert_int_eq(bp_net_layer(a, i, &va), BP_OK);
        ck_assert_int_eq(bp_net_layer(b, i, &vb), BP_OK);
        ck_assert_int_eq(va.n_in, vb.n_in);
        ck_assert_int_eq(va.n_out, vb.n_out);
        ck_assert_int_eq(va.act, vb.act);
        ck_assert_msg(memcmp(&va.alpha, &vb.alpha, sizeof va.alpha) == 0, "layer %d alpha %g vs %g", (int)i,
                      va.alpha, vb.alpha);
        ck_assert_uint_eq(va.offset, vb.offset);
    }
    const size_t esize = bp_net_dtype(a) == BP_F32 ? 4 : 8;
    ck_assert_msg(memcmp(bp_net_params(a), bp_net_params(b), bp_net_n_params(a) * esize) == 0,
                  "parameters differ");
}

/* Overwrites the last error with a known, different message, so a check of the message after a
 * failing call cannot pass on a stale one. */
static void stale_error(void)
{
    ck_assert_int_eq(bp_model_load(NULL, "stale", NULL), BP_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(bp_last_error(), "out"));
}

static void assert_error_has(const char *needle)
{
    ck_assert_msg(strstr(bp_last_error(), needle) != NULL, "'%s' not in the message \"%s\"", needle,
                  bp_last_error());
}

/* Sentinels for the outputs: a failing load must leave them alone. */
static bp_net *const UNTOUCHED = (bp_net *)&fault;
static bp_optim *const UNTOUCHED_OPT = (bp_optim *)&fault.calls;

/* What bp_model_load_state gave back. */
typedef struct loaded {
    bp_net *net;
    bp_optim *opt;
    bp_train_state st;
} loaded;

/* Loads `p` with bp_model_load_state (through alloc), every output asked for, and checks what comes
 * back: net (its architecture, parameters and standardisation, bitwise), opt (*opt set to NULL when
 * opt is NULL) and *ts (a zeroed state when ts is NULL). loaded_free gives it back. */
static loaded load_as(const char *p, const bp_allocator *alloc, bp_net *net, const bp_optim *opt,
                      const bp_train_state *ts)
{
    loaded l = {NULL, UNTOUCHED_OPT, {0, {0, 0, 0, 0}}};
    memset(&l.st, 0x5a, sizeof l.st);
    ck_assert_int_eq(bp_model_load_state(&l.net, &l.opt, &l.st, p, alloc), BP_OK);
    assert_same_net(net, l.net);
    assert_same_stdz(net, l.net);
    if (opt)
        assert_same_optim(net, opt, l.opt);
    else
        ck_assert_ptr_null(l.opt);
    const bp_train_state zero = {0, {0, 0, 0, 0}};
    assert_same_state(ts ? ts : &zero, &l.st);
    return l;
}

static void loaded_free(loaded *l)
{
    bp_optim_destroy(l->opt);
    bp_net_destroy(l->net);
}

/* Loads `p` expecting failure with `want` (or `want2`); the message names the file and `needle`. */
static void expect_load_fail(const char *p, bp_status want, bp_status want2, const char *needle)
{
    bp_net *out = UNTOUCHED;
    stale_error();
    const bp_status st = bp_model_load(&out, p, NULL);
    ck_assert_msg(st == want || st == want2, "status %d (%s), want %d: %s", (int)st, bp_strerror(st), (int)want,
                  bp_last_error());
    ck_assert_ptr_eq(out, UNTOUCHED);
    assert_error_has("bp_model_load");
    assert_error_has(p);
    if (needle)
        assert_error_has(needle);
}

/* ---------------------------------------------------------------------------------------------
 * A counting allocator: largest request, balance, optional failure of the k-th call.
 * ------------------------------------------------------------------------------------------- */
typedef struct counter {
    long allocs, frees, fail_at;   /* fail_at: 1-based call to refuse, 0 never */
    size_t largest;
} counter;

static void *count_alloc(void *ctx, size_t size)
{
    counter *c = ctx;
    if (size > c->largest)
        c->largest = size;
    if (c->fail_at && c->allocs + 1 == c->fail_at) {
        c->fail_at = 0;
        return NULL;
    }
    void *p = malloc(size);
    ck_assert_ptr_nonnull(p);
    c->allocs++;
    return p;
}

static void count_free(void *ctx, void *p)
{
    counter *c = ctx;
    if (p) {
        c->frees++;
        free(p);
    }
}

/* An allocator counting into c (zeroed first), refusing call fail_at (0: none). */
static bp_allocator counting(counter *c, long fail_at)
{
    *c = (counter){0, 0, fail_at, 0};
    return (bp_allocator){count_alloc, count_free, c};
}

/* ---------------------------------------------------------------------------------------------
 * The layout, byte by byte.
 * ------------------------------------------------------------------------------------------- */
START_TEST(test_exact_layout)
{
    /* _i: bit 0 the dtype; _i >> 1: no section, STDZ, OPTM, TRST, all three. */
    const bp_dtype dt = _i & 1 ? BP_F64 : BP_F32;
    const size_t es = _i & 1 ? 8 : 4;
    const int which = _i >> 1;
    const int with_s = which == 1 || which == 4, with_o = which == 2 || which == 4, with_t = which == 3 || which == 4;
    const bp_layer_spec l = {1, BP_ACT_LEAKY_RELU, 0.5};
    bp_net *net = NULL;
    ck_assert_int_eq(bp_net_create(&net, dt, 1, 1, &l, BP_LOSS_MSE, NULL), BP_OK);
    if (dt == BP_F32) {
        ((float *)bp_net_params(net))[0] = 1.0f;
        ((float *)bp_net_params(net))[1] = -2.0f;
    } else {
        ((double *)bp_net_params(net))[0] = 1.0;
        ((double *)bp_net_params(net))[1] = -2.0;
    }
    if (with_s) {
        const double mean = 0.5, sd = 2.0;
        ck_assert_int_eq(bp_net_set_standardization(net, &mean, &sd), BP_OK);
    }
    bp_optim *opt = NULL;
    if (with_o) {
        bp_optim_config c = bp_optim_defaults(BP_OPT_MOMENTUM, 0.25);
        c.momentum = 0.75, c.beta1 = 0.5, c.beta2 = -0.0, c.eps = 1.0, c.weight_decay = 0.0;
        c.schedule = BP_SCHED_STEP, c.gamma = 0.5, c.lr_min = 2.0, c.step_size = 3, c.t_max = 7;
        ck_assert_int_eq(bp_optim_create(&opt, net, &c), BP_OK);
        const bp__optim_view v = bp__optim_state(opt);
        *v.steps = 5;
        if (dt == BP_F32) {
            ((float *)v.m)[0] = 1.0f;
            ((float *)v.m)[1] = -2.0f;
        } else {
            ((double *)v.m)[0] = 1.0;
            ((double *)v.m)[1] = -2.0;
        }
    }
    const bp_train_state ts = {3, {1, UINT64_C(1) << 63, UINT64_MAX, UINT64_C(0x0123456789abcdef)}};
    ck_assert_int_eq(bp_model_save_state(net, opt, with_t ? &ts : NULL, path), BP_OK);

    unsigned char want[512] = {'B', 'P', 'M', 'O', 'D', 'E', 'L', 0,   /* magic */
                               2, 0, 0, 0,                              /* version */
                               4, 3, 2, 1,                              /* byte order mark */
                               (unsigned char)dt, 0, 0, 0,              /* dtype */
                               3, 0, 0, 0,                              /* loss: MSE */
                               1, 0, 0, 0,                              /* n_in */
                               1, 0, 0, 0,                              /* n_layers */
                               1, 0, 0, 0,                              /* n_out */
                               4, 0, 0, 0,                              /* act: leaky relu */
                               0, 0, 0, 0, 0, 0, 0xe0, 0x3f,            /* alpha 0.5 */
                               2, 0, 0, 0, 0, 0, 0, 0};                 /* n_params */
    size_t n = 56;
    /* 1.0 and -2.0 in the dtype: the parameters, and the momentum buffer. */
    static const unsigned char p32[8] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0};
    static const unsigned char p64[16] = {0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0xc0};
    const unsigned char *pv = dt == BP_F32 ? p32 : p64;
    memcpy(want + n, pv, 2 * es);
    n += 2 * es;
    put32(want + n, (uint32_t)(with_s + with_o + with_t)), n += 4;   /* n_sections */
    if (with_s) {
        memcpy(want + n, "STDZ", 4), n += 4;
        put64(want + n, 16), n += 8;
        put64(want + n, UINT64_C(0x3fe0000000000000)), n += 8;   /* mean 0.5 */
        put64(want + n, UINT64_C(0x4000000000000000)), n += 8;   /* std 2.0 */
    }
    if (with_o) {
        memcpy(want + n, "OPTM", 4), n += 4;
        put64(want + n, 96 + 2 * es), n += 8;
        put32(want + n, 2), n += 4;                                /* kind: momentum */
        put32(want + n, 1), n += 4;                                /* schedule: step */
        static const uint64_t d[8] = {
            UINT64_C(0x3fd0000000000000),   /* lr 0.25 */
            UINT64_C(0x3fe8000000000000),   /* momentum 0.75 */
            UINT64_C(0x3fe0000000000000),   /* beta1 0.5 */
            UINT64_C(0x8000000000000000),   /* beta2 -0.0 */
            UINT64_C(0x3ff0000000000000),   /* eps 1.0 */
            0,                              /* weight_decay 0 */
            UINT64_C(0x3fe0000000000000),   /* gamma 0.5 */
            UINT64_C(0x4000000000000000),   /* lr_min 2.0 */
        };
        for (int i = 0; i < 8; i++)
            put64(want + n, d[i]), n += 8;
        put64(want + n, 3), n += 8;                                /* step_size */
        put64(want + n, 7), n += 8;                                /* t_max */
        put64(want + n, 5), n += 8;                                /* steps */
        memcpy(want + n, pv, 2 * es), n += 2 * es;                 /* the momentum buffer */
    }
    if (with_t) {
        memcpy(want + n, "TRST", 4), n += 4;
        put64(want + n, 40), n += 8;
        put64(want + n, 3), n += 8;                                /* epochs_done */
        for (int i = 0; i < 4; i++)
            put64(want + n, ts.rng[i]), n += 8;
    }
    put32(want + n, (uint32_t)crc32(0L, want, (uInt)n));
    n += 4;

    bytes got = read_file(path);
    ck_assert_uint_eq(got.n, n);
    for (size_t k = 0; k < n; k++)
        ck_assert_msg(got.p[k] == want[k], "byte %zu: 0x%02x, want 0x%02x", k, got.p[k], want[k]);
    free(got.p);
    /* The CRC is zlib's CRC-32, the standard one (its check value). */
    ck_assert_uint_eq(crc32(0L, (const unsigned char *)"123456789", 9), 0xCBF43926u);
    /* The hand-built oracle of the other tests writes the same bytes. */
    static const char *const orders[5] = {"", "S", "O", "T", "SOT"};
    bytes built = v2_file(net, opt, &ts, orders[which]);
    ck_assert_uint_eq(built.n, n);
    ck_assert(memcmp(built.p, want, n) == 0);
    free(built.p);

    /* The hand-built file loads, sections and all. */
    write_file(path, want, n);
    loaded back = load_as(path, NULL, net, opt, with_t ? &ts : NULL);
    loaded_free(&back);
    bp_optim_destroy(opt);
    bp_net_destroy(net);
}
END_TEST

/* Format 1, byte by byte as it was written before format 2: it still loads, bitwise. */
START_TEST(test_exact_layout_v1)
{
    const bp_dtype dt = _i ? BP_F64 : BP_F32;
    const size_t es = _i ? 8 : 4;
    unsigned char want[80] = {'B', 'P', 'M', 'O', 'D', 'E', 'L', 0, 1, 0, 0, 0, 4, 3, 2, 1, (unsigned char)dt, 0, 0, 0,
                              3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0,
                              0, 0, 0, 0, 0, 0, 0xe0, 0x3f, 2, 0, 0, 0, 0, 0, 0, 0};
    size_t n = 56;
    if (dt == BP_F32) {
        const unsigned char p[8] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0};   /* 1.0f, -2.0f */
        memcpy(want + n, p, sizeof p);
    } else {
        const unsigned char p[16] = {0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0xc0};
        memcpy(want + n, p, sizeof p);
    }
    n += 2 * es;
    put32(want + n, (uint32_t)crc32(0L, want, (uInt)n));
    n += 4;
    write_file(path, want, n);
    bp_net *back = NULL;
    ck_assert_int_eq(bp_model_load(&back, path, NULL), BP_OK);
    ck_assert_int_eq(bp_net_dtype(back), dt);
    ck_assert_int_eq(bp_net_loss(back), BP_LOSS_MSE);
    ck_assert_int_eq(bp_net_n_in(back), 1);
    bp_layer_view v;
    ck_assert_int_eq(bp_net_layer(back, 0, &v), BP_OK);
    ck_assert_int_eq(v.n_out, 1);
    ck_assert_int_eq(v.act, BP_ACT_LEAKY_RELU);
    ck_assert(v.alpha == 0.5);
    ck_assert(memcmp(bp_net_params(back), want + 56, 2 * es) == 0);
    ck_assert(!bp_net_has_standardization(back));
    /* Saved again it becomes format 2 with no section: 4 bytes of n_sections more. */
    ck_assert_int_eq(bp_model_save(back, path), BP_OK);
    bytes got = read_file(path);
    ck_assert_uint_eq(got.n, n + 4);
    ck_assert_int_eq(got.p[8], 2);
    ck_assert(memcmp(got.p + 12, want + 12, n - 4 - 12) == 0);
    ck_assert(memcmp(got.p + n - 4, "\0\0\0\0", 4) == 0);
    free(got.p);
    bp_net_destroy(back);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Round trips.
 * ------------------------------------------------------------------------------------------- */
START_TEST(test_round_trip)
{
    const shape *s = &SHAPES[_i / 2];
    const bp_dtype dt = _i % 2 ? BP_F64 : BP_F32;
    bp_net *net = make_net(dt, s, NULL);
    fill_bits(net, (uint64_t)_i + 1);
    ck_assert_int_eq(bp_model_save(net, path), BP_OK);
    assert_dir_holds("model.bpm");

    bytes file = read_file(path);
    const size_t esize = dt == BP_F32 ? 4 : 8;
    ck_assert_uint_eq(file.n, 32 + 16 * (size_t)s->n_layers + 8 + bp_net_n_params(net) * esize + 4 + 4);
    free(file.p);

    bp_net *back = NULL;
    ck_assert_int_eq(bp_model_load(&back, path, NULL), BP_OK);
    ck_assert_ptr_nonnull(back);
    assert_same_net(net, back);
    /* The architecture against the spec, not only against the saved net. */
    ck_assert_int_eq(bp_net_loss(back), s->loss);
    ck_assert_int_eq(bp_net_n_in(back), s->n_in);
    for (bp_int i = 0; i < s->n_layers; i++) {
        bp_layer_view v;
        ck_assert_int_eq(bp_net_layer(back, i, &v), BP_OK);
        ck_assert_int_eq(v.n_out, s->layers[i].n_out);
        ck_assert_int_eq(v.act, s->layers[i].act);
        ck_assert(v.alpha == s->layers[i].alpha);
    }

    /* Saving the loaded network reproduces the file byte for byte. */
    char path2[700];
    snprintf(path2, sizeof path2, "%s/again.bpm", dir);
    ck_assert_int_eq(bp_model_save(back, path2), BP_OK);
    bytes a = read_file(path);
    assert_same_file(path2, &a);
    free(a.p);
    bp_net_destroy(back);
    bp_net_destroy(net);
}
END_TEST

/* Everything a file can hold, bitwise: parameters of arbitrary bits, a standardisation with -0.0,
 * subnormals and zero deviations, each optimizer kind (SGD keeps no moment, momentum and Nesterov
 * one, Adam and AdamW two) with each schedule and arbitrary moments and step count, a training
 * state. _i: the shape, the dtype, the optimizer kind. */
START_TEST(test_round_trip_state)
{
    const shape *s = &SHAPES[_i / 10];
    const bp_dtype dt = _i % 2 ? BP_F64 : BP_F32;
    const bp_optimizer kind = (bp_optimizer)(BP_OPT_SGD + (_i / 2) % 5);
    const bp_schedule sched = (bp_schedule)(_i % 3);
    bp_net *net = make_net(dt, s, NULL);
    fill_bits(net, (uint64_t)_i + 100);
    set_stats(net, (uint64_t)_i);
    bp_optim *opt = odd_optim(net, kind, sched, (uint64_t)_i + 7);
    const bp_train_state ts = odd_state((uint64_t)_i);
    ck_assert_int_eq(bp_model_save_state(net, opt, &ts, path), BP_OK);
    assert_dir_holds("model.bpm");

    /* The file is the hand-built one, sections in the order STDZ, OPTM, TRST. */
    const size_t es = esize_of(net), np = bp_net_n_params(net), k = (size_t)moments_of(kind);
    bytes file = read_file(path);
    ck_assert_uint_eq(file.n, 32 + 16 * (size_t)s->n_layers + 8 + np * es + 4 + (12 + 16 * (size_t)s->n_in) +
                                  (12 + 96 + k * np * es) + (12 + 40) + 4);
    bytes built = v2_file(net, opt, &ts, "SOT");
    ck_assert_uint_eq(built.n, file.n);
    ck_assert_msg(memcmp(built.p, file.p, file.n) == 0, "the saved file is not the hand-built one");
    free(built.p);

    counter c;
    const bp_allocator a = counting(&c, 0);
    loaded l = load_as(path, &a, net, opt, &ts);

    /* Saving what was loaded writes the same bytes. */
    char path2[700];
    snprintf(path2, sizeof path2, "%s/again.bpm", dir);
    ck_assert_int_eq(bp_model_save_state(l.net, l.opt, &l.st, path2), BP_OK);
    assert_same_file(path2, &file);
    loaded_free(&l);
    ck_assert_int_eq(c.allocs, c.frees);

    /* bp_model_load keeps the network and its standardisation; the other sections are passed over. */
    bp_net *back = NULL;
    ck_assert_int_eq(bp_model_load(&back, path, &a), BP_OK);
    assert_same_net(net, back);
    assert_same_stdz(net, back);
    bp_net_destroy(back);
    /* Only the optimizer, or only the state, asked for. */
    bp_optim *oback = NULL;
    bp_train_state sback;
    ck_assert_int_eq(bp_model_load_state(&back, &oback, NULL, path, &a), BP_OK);
    assert_same_optim(net, opt, oback);
    bp_optim_destroy(oback);
    bp_net_destroy(back);
    memset(&sback, 0xee, sizeof sback);
    ck_assert_int_eq(bp_model_load_state(&back, NULL, &sback, path, &a), BP_OK);
    assert_same_state(&ts, &sback);
    assert_same_stdz(net, back);
    bp_net_destroy(back);
    ck_assert_int_eq(c.allocs, c.frees);

    free(file.p);
    bp_optim_destroy(opt);
    bp_net_destroy(net);
}
END_TEST

/* Each subset of the sections: what is absent comes back absent (no standardisation, *opt NULL, a
 * zeroed state). _i: the subset (bit 0 STDZ, bit 1 OPTM, bit 2 TRST), bit 3 the dtype. */
START_TEST(test_section_subsets)
{
    const int with_s = _i & 1, with_o = _i & 2, with_t = _i & 4;
    const bp_dtype dt = _i & 8 ? BP_F64 : BP_F32;
    bp_net *net = make_net(dt, &SHAPES[1], NULL);
    fill_bits(net, 5);
    if (with_s)
        set_stats(net, 6);
    bp_optim *opt = with_o ? odd_optim(net, BP_OPT_NESTEROV, BP_SCHED_COSINE, 7) : NULL;
    const bp_train_state ts = odd_state(8);
    ck_assert_int_eq(bp_model_save_state(net, opt, with_t ? &ts : NULL, path), BP_OK);
    char order[4] = "";
    snprintf(order, sizeof order, "%s%s%s", with_s ? "S" : "", with_o ? "O" : "", with_t ? "T" : "");
    bytes built = v2_file(net, opt, &ts, order);
    assert_same_file(path, &built);
    free(built.p);

    loaded back = load_as(path, NULL, net, opt, with_t ? &ts : NULL);
    loaded_free(&back);
    bp_optim_destroy(opt);
    bp_net_destroy(net);
}
END_TEST

/* Sections may come in any order: each of the six orders loads as the canonical file does, and
 * saving it writes the canonical order (STDZ, OPTM, TRST). */
START_TEST(test_section_order)
{
    static const char *const orders[6] = {"SOT", "STO", "OST", "OTS", "TSO", "TOS"};
    const bp_dtype dt = _i % 2 ? BP_F64 : BP_F32;
    bp_net *net = make_net(dt, &SHAPES[3], NULL);
    fill_bits(net, 9);
    set_stats(net, 10);
    bp_optim *opt = odd_optim(net, BP_OPT_ADAMW, BP_SCHED_STEP, 11);
    const bp_train_state ts = odd_state(12);
    bytes canon = v2_file(net, opt, &ts, "SOT");
    bytes b = v2_file(net, opt, &ts, orders[_i / 2]);
    write_file(path, b.p, b.n);
    loaded back = load_as(path, NULL, net, opt, &ts);
    ck_assert_int_eq(bp_model_save_state(back.net, back.opt, &back.st, path), BP_OK);
    assert_same_file(path, &canon);
    loaded_free(&back);
    free(b.p);
    free(canon.p);
    bp_optim_destroy(opt);
    bp_net_destroy(net);
}
END_TEST

/* Format-1 files, built here (no n_sections), of every shape: they load bitwise, with no
 * standardisation, no optimizer (*opt NULL) and a zeroed training state. */
START_TEST(test_v1_files)
{
    const shape *s = &SHAPES[_i / 2];
    const bp_dtype dt = _i % 2 ? BP_F64 : BP_F32;
    bp_net *net = make_net(dt, s, NULL);
    fill_bits(net, (uint64_t)_i + 40);
    bytes b = v1_file(net);
    ck_assert_uint_eq(b.n, 32 + 16 * (size_t)s->n_layers + 8 + bp_net_n_params(net) * esize_of(net) + 4);
    write_file(path, b.p, b.n);

    counter c;
    const bp_allocator a = counting(&c, 0);
    bp_net *back = NULL;
    ck_assert_int_eq(bp_model_load(&back, path, &a), BP_OK);
    assert_same_net(net, back);
    ck_assert(!bp_net_has_standardization(back));
    bp_net_destroy(back);

    back = NULL;
    bp_optim *oback = UNTOUCHED_OPT;
    bp_train_state sback;
    memset(&sback, 0xee, sizeof sback);
    ck_assert_int_eq(bp_model_load_state(&back, &oback, &sback, path, &a), BP_OK);
    assert_same_net(net, back);
    ck_assert(!bp_net_has_standardization(back));
    ck_assert_ptr_null(oback);
    const bp_train_state zero = {0, {0, 0, 0, 0}};
    assert_same_state(&zero, &sback);
    /* Saved again: format 2 with no section. */
    ck_assert_int_eq(bp_model_save(back, path), BP_OK);
    bytes v2 = v2_file(net, NULL, NULL, "");
    assert_same_file(path, &v2);
    free(v2.p);
    bp_net_destroy(back);
    ck_assert_int_eq(c.allocs, c.frees);

    /* A format-1 file carrying format-2 sections is a format-1 file with trailing data. */
    free(b.p);
    set_stats(net, 3);
    b = v2_file(net, NULL, NULL, "S");
    put32(b.p + 8, 1);
    fix_crc(&b);
    write_file(path, b.p, b.n);
    expect_load_fail(path, BP_ERR_FORMAT, BP_ERR_FORMAT, "trailing");
    free(b.p);
    bp_net_destroy(net);
}
END_TEST

/* A loaded network predicts exactly what the saved one did. */
START_TEST(test_loaded_net_runs)
{
    const shape *s = &SHAPES[3];
    const bp_dtype dt = _i ? BP_F64 : BP_F32;
    const size_t es = _i ? 8 : 4;
    bp_net *net = make_net(dt, s, NULL);
    fill_values(net, 99);
    ck_assert_int_eq(bp_model_save(net, path), BP_OK);
    bp_net *back = NULL;
    ck_assert_int_eq(bp_model_load(&back, path, NULL), BP_OK);
    enum { N = 5 };
    double Xd[N * 4];
    unsigned char X[N * 4 * 8], Ya[N * 8], Yb[N * 8];
    tu_rng rng = tu_rng_make(7);
    for (int k = 0; k < N * 4; k++) {
        Xd[k] = (double)(tu_next(&rng) >> 11) * 0x1.0p-53 * 4 - 2;
        if (dt == BP_F32)
            ((float *)(void *)X)[k] = (float)Xd[k];
        else
            ((double *)(void *)X)[k] = Xd[k];
    }
    ck_assert_int_eq(bp_net_plan(net, N), BP_OK);
    ck_assert_int_eq(bp_net_plan(back, N), BP_OK);
    memset(Ya, 0, sizeof Ya);
    memset(Yb, 0xff, sizeof Yb);
    ck_assert_int_eq(bp_net_forward(net, N, X, 4, Ya, 1), BP_OK);
    ck_assert_int_eq(bp_net_forward(back, N, X, 4, Yb, 1), BP_OK);
    ck_assert(memcmp(Ya, Yb, N * es) == 0);
    bp_net_destroy(back);
    bp_net_destroy(net);
}
END_TEST

/* Loading goes through the given allocator and gives everything back. */
START_TEST(test_load_allocator)
{
    counter c;
    const bp_allocator a = counting(&c, 0);
    bp_net *net = make_net(BP_F64, &SHAPES[2], NULL);
    fill_bits(net, 5);
    ck_assert_int_eq(bp_model_save(net, path), BP_OK);
    bp_net *back = NULL;
    ck_assert_int_eq(bp_model_load(&back, path, &a), BP_OK);
    ck_assert_int_gt(c.allocs, 0);
    assert_same_net(net, back);
    bp_net_destroy(back);
    ck_assert_int_eq(c.allocs, c.frees);
    bp_net_destroy(net);
}
END_TEST

/* Out of memory at each allocation of a load: BP_ERR_NOMEM naming the file, the outputs untouched,
 * nothing leaked. _i 0: bp_model_load of a file without sections; 1, 2: bp_model_load_state of a
 * file with every section (the standardisation and Adam's two buffers allocate too), float and
 * double; 3: bp_model_load of that file. */
START_TEST(test_load_nomem)
{
    const int full = _i > 0;
    bp_net *net = make_net(_i == 2 ? BP_F64 : BP_F32, &SHAPES[1], NULL);
    fill_bits(net, 11);
    bp_optim *opt = NULL;
    const bp_train_state ts = odd_state(3);
    if (full) {
        set_stats(net, 4);
        opt = odd_optim(net, BP_OPT_ADAM, BP_SCHED_COSINE, 5);
    }
    ck_assert_int_eq(bp_model_save_state(net, opt, full ? &ts : NULL, path), BP_OK);
    const int state = _i == 1 || _i == 2;
    counter probe;
    const bp_allocator pa = counting(&probe, 0);
    bp_net *back = NULL;
    bp_optim *oback = NULL;
    bp_train_state sback;
    ck_assert_int_eq(state ? bp_model_load_state(&back, &oback, &sback, path, &pa) : bp_model_load(&back, path, &pa),
                     BP_OK);
    bp_optim_destroy(oback);
    bp_net_destroy(back);
    const long total = probe.allocs;
    ck_assert_int_ge(total, full ? 5 : 2);
    for (long k = 1; k <= total; k++) {
        counter c;
        const bp_allocator a = counting(&c, k);
        bp_net *out = UNTOUCHED;
        bp_optim *oout = UNTOUCHED_OPT;
        bp_train_state st, st0;
        memset(&st, 0x5a, sizeof st);
        st0 = st;
        stale_error();
        const bp_status r = state ? bp_model_load_state(&out, &oout, &st, path, &a) : bp_model_load(&out, path, &a);
        ck_assert_msg(r == BP_ERR_NOMEM, "allocation %ld of %ld refused: status %d (%s): %s", k, total, (int)r,
                      bp_strerror(r), bp_last_error());
        ck_assert_ptr_eq(out, UNTOUCHED);
        ck_assert_ptr_eq(oout, UNTOUCHED_OPT);
        ck_assert(memcmp(&st, &st0, sizeof st) == 0);
        assert_error_has(path);
        ck_assert_int_eq(c.allocs, c.frees);
    }
    bp_optim_destroy(opt);
    bp_net_destroy(net);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Corrupt files. The base: format 2, float64, n_in 3, layers {4 tanh, 2 identity}, softmax
 * cross-entropy, no section: 26 parameters; layer table at 32, n_params at 64, parameters at 72,
 * n_sections at 280, CRC at 284, 288 bytes.
 * ------------------------------------------------------------------------------------------- */
enum { B_NPARAMS = 26, B_PARAMS = 72, B_NSEC = 72 + 26 * 8, B_CRC = B_NSEC + 4, B_SIZE = B_CRC + 4 };

static bytes base_file(bp_dtype dt)
{
    const bp_layer_spec l[2] = {{4, BP_ACT_TANH, 0.0}, {2, BP_ACT_IDENTITY, 0.0}};
    bp_net *net = NULL;
    ck_assert_int_eq(bp_net_create(&net, dt, 3, 2, l, BP_LOSS_SOFTMAX_XENT, NULL), BP_OK);
    fill_values(net, 3);
    ck_assert_int_eq(bp_model_save(net, path), BP_OK);
    bp_net_destroy(net);
    bytes b = read_file(path);
    ck_assert_uint_eq(b.n, (size_t)72 + 26 * (dt == BP_F32 ? 4 : 8) + 4 + 4);
    /* The unmodified base loads, so each failure below is due to its one defect. */
    bp_net *back = NULL;
    ck_assert_int_eq(bp_model_load(&back, path, NULL), BP_OK);
    bp_net_destroy(back);
    return b;
}

typedef struct mutation {
    const char *name;
    size_t off;
    int width;        /* 1: xor the byte with value; 4, 8: store value little-endian */
    uint64_t value;
    int fix_crc;      /* recompute the CRC, so only the field is wrong */
    bp_status want, want2;
    const char *needle, *where;   /* the field the message names, and its location */
} mutation;

#define NAN64 UINT64_C(0x7ff8000000000001)
#define INF64 UINT64_C(0x7ff0000000000000)
#define F BP_ERR_FORMAT

static const mutation MUTATIONS[] = {
    {"magic first byte", 0, 1, 0x20, 1, F, F, "magic", "offset 0"},
    {"magic terminator", 7, 1, 0x01, 1, F, F, "magic", "offset 0"},
    {"version 0", 8, 4, 0, 1, F, F, "version", "offset 8"},
    {"version 3", 8, 4, 3, 1, BP_ERR_UNSUPPORTED, BP_ERR_UNSUPPORTED, "version", "offset 8"},
    /* Format 1 has no n_sections: its 4 bytes are then trailing data. */
    {"version 1", 8, 4, 1, 1, F, F, "trailing", "offset 284"},
    {"version max", 8, 4, 0xffffffffu, 1, BP_ERR_UNSUPPORTED, BP_ERR_UNSUPPORTED, "version", "offset 8"},
    {"byte order swapped", 12, 4, 0x04030201u, 1, F, F, "byte order", "offset 12"},
    {"byte order one byte", 13, 1, 0x01, 1, F, F, "byte order", "offset 12"},
    {"dtype 0", 16, 4, 0, 1, F, F, "dtype", "offset 16"},
    {"dtype 3", 16, 4, 3, 1, F, F, "dtype", "offset 16"},
    {"loss 0", 20, 4, 0, 1, F, F, "loss", "offset 20"},
    {"loss 5", 20, 4, 5, 1, F, F, "loss", "offset 20"},
    {"n_in 0", 24, 4, 0, 1, F, F, "n_in", "offset 24"},
    {"n_in negative", 24, 4, 0x80000000u, 1, F, F, "n_in", "offset 24"},
    {"n_in 4", 24, 4, 4, 1, F, F, "n_params", "offset 64"},
    {"n_layers 0", 28, 4, 0, 1, F, F, "n_layers", "offset 28"},
    {"n_layers 1025", 28, 4, 1025, 1, F, F, "n_layers", "offset 28"},
    {"n_layers huge", 28, 4, 0xffffffffu, 1, F, F, "n_layers", "offset 28"},
    {"n_layers 1", 28, 4, 1, 1, F, F, "n_params", "offset 48"},
    {"n_layers 3", 28, 4, 3, 1, F, F, "n_params", "offset 80"},
    {"layer 0 n_out 0", 32, 4, 0, 1, F, F, "layers[0].n_out", "offset 32"},
    {"layer 1 n_out 0", 48, 4, 0, 1, F, F, "layers[1].n_out", "offset 48"},
    {"layer 0 n_out negative", 32, 4, 0x80000000u, 1, F, F, "layers[0].n_out", "offset 32"},
    {"layer 1 n_out huge", 48, 4, 0x7fffffffu, 1, F, BP_ERR_OVERFLOW, "layers[1]", "offset 48"},
    {"layer 0 n_out 5", 32, 4, 5, 1, F, F, "n_params", "offset 64"},
    {"layer 0 act 99", 36, 4, 99, 1, F, F, "layers[0].act", "offset 36"},
    {"layer 1 act 10", 52, 4, 10, 1, F, F, "layers[1].act", "offset 52"},
    {"layer 0 alpha NaN", 40, 8, NAN64, 1, F, F, "layers[0].alpha", "offset 40"},
    {"layer 1 alpha -Inf", 56, 8, INF64 | UINT64_C(1) << 63, 1, F, F, "layers[1].alpha", "offset 56"},
    /* Fields only bp_net_create can judge: its BP_ERR_ARG becomes BP_ERR_FORMAT. */
    {"layer 0 elu with alpha 0", 36, 4, BP_ACT_ELU, 1, F, F, "layers[0].alpha", "offset 32"},
    {"last layer tanh under softmax", 52, 4, BP_ACT_TANH, 1, F, F, "activation", "offset 32"},
    {"n_params + 1", 64, 8, B_NPARAMS + 1, 1, F, F, "n_params", "offset 64"},
    {"n_params - 1", 64, 8, B_NPARAMS - 1, 1, F, F, "n_params", "offset 64"},
    {"n_params huge", 64, 8, UINT64_C(1) << 62, 1, F, F, "n_params", "offset 64"},
    {"first parameter bit", B_PARAMS, 1, 0x01, 0, F, F, "CRC", "offset 284"},
    {"middle parameter sign", B_PARAMS + 13 * 8 + 7, 1, 0x80, 0, F, F, "CRC", "offset 284"},
    {"last parameter byte", B_NSEC - 1, 1, 0x10, 0, F, F, "CRC", "offset 284"},
    {"valid field changed, CRC stale", 36, 4, BP_ACT_RELU, 0, F, F, "CRC", "offset 284"},
    {"n_sections 1, none there", B_NSEC, 4, 1, 1, F, F, "section 0", "offset 284"},
    {"n_sections 4", B_NSEC, 4, 4, 1, F, F, "n_sections", "offset 280"},
    {"n_sections huge", B_NSEC, 4, 0xffffffffu, 1, F, F, "n_sections", "offset 280"},
    {"n_sections stale CRC", B_NSEC, 1, 0x01, 0, F, F, "section 0", "offset 284"},
    {"CRC first byte", B_CRC, 1, 0x01, 0, F, F, "CRC", "offset 284"},
    {"CRC last byte", B_CRC + 3, 1, 0x80, 0, F, F, "CRC", "offset 284"},
};
#define NMUT ((int)(sizeof MUTATIONS / sizeof MUTATIONS[0]))

START_TEST(test_corrupt_field)
{
    const mutation *m = &MUTATIONS[_i];
    bytes b = base_file(BP_F64);
    if (m->width == 1)
        b.p[m->off] ^= (unsigned char)m->value;
    else if (m->width == 4)
        put32(b.p + m->off, (uint32_t)m->value);
    else
        put64(b.p + m->off, m->value);
    if (m->fix_crc)
        fix_crc(&b);
    write_file(path, b.p, b.n);
    expect_load_fail(path, m->want, m->want2, m->needle);
    assert_error_has(m->where);
    free(b.p);
}
END_TEST

/* A float file with a flipped parameter or CRC, too. */
START_TEST(test_corrupt_f32)
{
    bytes b = base_file(BP_F32);
    const size_t at = _i == 0 ? B_PARAMS + 5 : b.n - 2;
    b.p[at] ^= 0x04;
    write_file(path, b.p, b.n);
    expect_load_fail(path, F, F, "CRC");
    free(b.p);
}
END_TEST

static const size_t TRUNCATIONS[] = {0,  1,  7,  8,  12, 20, 31, 32, 33, 40, 47, 63, 64, 70, 71, 72, 77,
                                     B_PARAMS + 13 * 8, B_NSEC - 1, B_NSEC, B_NSEC + 1, B_NSEC + 3, B_CRC,
                                     B_CRC + 1, B_SIZE - 1};
#define NTRUNC ((int)(sizeof TRUNCATIONS / sizeof TRUNCATIONS[0]))

START_TEST(test_truncated)
{
    const size_t len = TRUNCATIONS[_i];
    bytes b = base_file(BP_F64);
    ck_assert_uint_lt(len, b.n);
    write_file(path, b.p, len);
    /* Shorter than the magic: "too short"; cut elsewhere: "truncated". */
    expect_load_fail(path, F, F, len < 8 ? "too short" : "truncated");
    free(b.p);
}
END_TEST

START_TEST(test_trailing_byte)
{
    bytes b = base_file(_i ? BP_F64 : BP_F32);
    unsigned char *p = realloc(b.p, b.n + 1);
    ck_assert_ptr_nonnull(p);
    p[b.n] = 0;
    write_file(path, p, b.n + 1);
    expect_load_fail(path, F, F, "trailing");
    free(p);
}
END_TEST

START_TEST(test_foreign_files)
{
    unsigned char buf[1000];
    tu_rng rng = tu_rng_make(42 + (uint64_t)_i);
    size_t n = sizeof buf;
    for (size_t k = 0; k < n; k++)
        buf[k] = (unsigned char)tu_next(&rng);
    const char *needle = "magic";
    switch (_i) {
    case 0: break;                        /* random bytes */
    case 1: {                             /* a text file */
        static const char text[] = "sepal_length,sepal_width,label\n5.1,3.5,0\n4.9,3.0,0\n";
        n = sizeof text - 1;
        memcpy(buf, text, n);
        break;
    }
    case 2:                               /* the magic and version, then garbage */
        memcpy(buf, "BPMODEL", 8);
        put32(buf + 8, 1);
        needle = "byte order";
        break;
    case 3:                               /* a gzip header */
        buf[0] = 0x1f, buf[1] = 0x8b;
        break;
    case 4:                               /* an empty file */
        n = 0;
        needle = "too short";
        break;
    }
    write_file(path, buf, n);
    expect_load_fail(path, F, F, needle);
}
END_TEST

START_TEST(test_missing_file)
{
    expect_load_fail(path, BP_ERR_IO, BP_ERR_IO, strerror(ENOENT));
    char p[700];
    snprintf(p, sizeof p, "%s/no/such/dir/model.bpm", dir);
    expect_load_fail(p, BP_ERR_IO, BP_ERR_IO, "open");
    /* A directory is not a model file. */
    expect_load_fail(dir, BP_ERR_IO, BP_ERR_FORMAT, NULL);
}
END_TEST

/* Random damage, with and without a recomputed CRC, and random cuts: every load either succeeds
 * with a usable network or fails with a file error, leaving *out alone; nothing crashes (ASan). */
START_TEST(test_random_damage)
{
    bytes base = base_file(_i ? BP_F64 : BP_F32);
    unsigned char *b = malloc(base.n);
    ck_assert_ptr_nonnull(b);
    tu_rng rng = tu_rng_make(1000 + (uint64_t)_i);
    int ok = 0, refused = 0;
    for (int it = 0; it < 400; it++) {
        memcpy(b, base.p, base.n);
        size_t n = base.n;
        const int flips = 1 + (int)(tu_next(&rng) % 3);
        for (int k = 0; k < flips; k++)
            b[tu_next(&rng) % n] ^= (unsigned char)(1 + tu_next(&rng) % 255);
        if (it % 2)
            put32(b + n - 4, (uint32_t)crc32(0L, b, (uInt)(n - 4)));
        if (it % 5 == 4)
            n = (size_t)(tu_next(&rng) % n);
        write_file(path, b, n);
        bp_net *out = UNTOUCHED;
        const bp_status st = bp_model_load(&out, path, NULL);
        if (st == BP_OK) {
            ck_assert_ptr_ne(out, UNTOUCHED);
            ck_assert_int_eq(bp_net_plan(out, 2), BP_OK);
            bp_net_destroy(out);
            ok++;
        } else {
            ck_assert_msg(st == BP_ERR_FORMAT || st == BP_ERR_UNSUPPORTED || st == BP_ERR_OVERFLOW,
                          "iteration %d: status %d: %s", it, (int)st, bp_last_error());
            ck_assert_ptr_eq(out, UNTOUCHED);
            refused++;
        }
    }
    /* Unfixed CRCs are always caught; fixed ones often pass (a changed parameter is still a model). */
    ck_assert_int_gt(ok, 0);
    ck_assert_int_ge(refused, 200);
    free(b);
    free(base.p);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Corrupt sections. The base: the network above with a standardisation, a momentum optimizer (step
 * schedule) and a training state, float64:
 *   n_sections 280; STDZ head 284, means 296, deviations 320; OPTM head 344, kind 356, schedule 360,
 *   lr 364, momentum 372, beta1 380, beta2 388, eps 396, weight_decay 404, gamma 412, lr_min 420,
 *   step_size 428, t_max 436, steps 444, momentum buffer 452; TRST head 660, epochs_done 672,
 *   rng 680; CRC 712; 716 bytes.
 * ------------------------------------------------------------------------------------------- */
enum {
    S_NSEC = 280, S_STDZ = 284, S_MEAN = 296, S_SD = 320, S_OPTM = 344, S_KIND = 356, S_SCHED = 360, S_LR = 364,
    S_MOM = 372, S_GAMMA = 412, S_STEP_SIZE = 428, S_STEPS = 444, S_MBUF = 452, S_TRST = 660, S_EPOCHS = 672,
    S_RNG = 680, S_CRC = 712, S_SIZE = 716
};

/* The base's objects: kept so the hand-built variants below can be made from them. */
typedef struct sbase {
    bp_net *net;
    bp_optim *opt;
    bp_train_state st;
    bytes file;
} sbase;

static sbase sections_base(void)
{
    sbase s;
    const bp_layer_spec l[2] = {{4, BP_ACT_TANH, 0.0}, {2, BP_ACT_IDENTITY, 0.0}};
    s.net = NULL;
    ck_assert_int_eq(bp_net_create(&s.net, BP_F64, 3, 2, l, BP_LOSS_SOFTMAX_XENT, NULL), BP_OK);
    fill_values(s.net, 3);
    const double mean[3] = {0.5, -1.0, 2.0}, sd[3] = {1.0, 0.0, 3.5};
    ck_assert_int_eq(bp_net_set_standardization(s.net, mean, sd), BP_OK);
    bp_optim_config c = bp_optim_defaults(BP_OPT_MOMENTUM, 0.1);
    c.schedule = BP_SCHED_STEP, c.gamma = 0.5, c.step_size = 3;
    ck_assert_int_eq(bp_optim_create(&s.opt, s.net, &c), BP_OK);
    const bp__optim_view v = bp__optim_state(s.opt);
    *v.steps = 12;
    for (int k = 0; k < B_NPARAMS; k++)
        ((double *)v.m)[k] = (k - 13) / 16.0;
    s.st = (bp_train_state){4, {11, 22, 33, 44}};
    ck_assert_int_eq(bp_model_save_state(s.net, s.opt, &s.st, path), BP_OK);
    s.file = read_file(path);
    ck_assert_uint_eq(s.file.n, S_SIZE);
    ck_assert(memcmp(s.file.p + S_STDZ, "STDZ", 4) == 0);
    ck_assert(memcmp(s.file.p + S_OPTM, "OPTM", 4) == 0);
    ck_assert(memcmp(s.file.p + S_TRST, "TRST", 4) == 0);
    /* The unmodified base loads. */
    bp_net *back = NULL;
    bp_optim *oback = NULL;
    bp_train_state sback;
    ck_assert_int_eq(bp_model_load_state(&back, &oback, &sback, path, NULL), BP_OK);
    assert_same_optim(s.net, s.opt, oback);
    bp_optim_destroy(oback);
    bp_net_destroy(back);
    return s;
}

static void sbase_free(sbase *s)
{
    free(s->file.p);
    bp_optim_destroy(s->opt);
    bp_net_destroy(s->net);
}

/* Loads p with bp_model_load_state, every output requested, through a counting allocator,
 * expecting `want`: the outputs untouched, the message naming the call, the file and `needle` and
 * `where` (when not NULL), nothing left allocated, nothing large asked for. */
static void expect_state_fail(const char *p, bp_status want, const char *needle, const char *where)
{
    counter c;
    const bp_allocator a = counting(&c, 0);
    bp_net *out = UNTOUCHED;
    bp_optim *oout = UNTOUCHED_OPT;
    bp_train_state st, st0;
    memset(&st, 0x5a, sizeof st);
    st0 = st;
    stale_error();
    const bp_status got = bp_model_load_state(&out, &oout, &st, p, &a);
    ck_assert_msg(got == want, "status %d (%s), want %d: %s", (int)got, bp_strerror(got), (int)want, bp_last_error());
    ck_assert_ptr_eq(out, UNTOUCHED);
    ck_assert_ptr_eq(oout, UNTOUCHED_OPT);
    ck_assert(memcmp(&st, &st0, sizeof st) == 0);
    assert_error_has("bp_model_load_state");
    assert_error_has(p);
    if (needle)
        assert_error_has(needle);
    if (where)
        assert_error_has(where);
    ck_assert_int_eq(c.allocs, c.frees);
    ck_assert_msg(c.largest <= ((size_t)1 << 20), "an allocation of %zu bytes", c.largest);
}

typedef struct smutation {
    const char *name;
    size_t off;
    int width;        /* 1: xor the byte with value; 4, 8: store value little-endian; 0: the tag `tag` */
    uint64_t value;
    const char *tag;
    int fix_crc;
    bp_status want;
    const char *needle, *where;
    int always;       /* bp_model_load refuses it too (it decodes only the network and STDZ) */
} smutation;

#define DBL(x) UINT64_C(x)

static const smutation SMUTATIONS[] = {
    {"unknown tag", S_STDZ, 0, 0, "XXXX", 1, F, "unknown tag", "offset 284", 1},
    {"tag in lower case", S_OPTM, 0, 0, "optm", 1, F, "unknown tag", "offset 344", 1},
    {"tag of format 1's magic", S_TRST, 0, 0, "BPMO", 1, F, "unknown tag", "offset 660", 1},
    {"n_sections 4", S_NSEC, 4, 4, NULL, 1, F, "n_sections", "offset 280", 1},
    {"n_sections huge", S_NSEC, 4, 0xffffffffu, NULL, 1, F, "n_sections", "offset 280", 1},
    {"n_sections 2 of 3", S_NSEC, 4, 2, NULL, 1, F, "trailing", "offset 664", 1},
    {"n_sections 0 of 3", S_NSEC, 4, 0, NULL, 1, F, "trailing", "offset 288", 1},
    {"STDZ length 47", S_STDZ + 4, 8, 47, NULL, 1, F, "length 47, expected 48", "offset 284", 1},
    {"STDZ length 49", S_STDZ + 4, 8, 49, NULL, 1, F, "length 49, expected 48", "offset 284", 1},
    {"STDZ length 0", S_STDZ + 4, 8, 0, NULL, 1, F, "expected 48", "offset 284", 1},
    {"STDZ length past the CRC", S_STDZ + 4, 8, S_CRC - S_STDZ - 12 + 1, NULL, 1, F, "past the CRC", "offset 284", 1},
    {"STDZ length 2^63", S_STDZ + 4, 8, UINT64_C(1) << 63, NULL, 1, F, "past the CRC", "offset 284", 1},
    {"STDZ length max", S_STDZ + 4, 8, UINT64_MAX, NULL, 1, F, "past the CRC", "offset 284", 1},
    {"OPTM length 95", S_OPTM + 4, 8, 95, NULL, 1, F, "expected 96", "offset 344", 1},
    {"OPTM length 0", S_OPTM + 4, 8, 0, NULL, 1, F, "expected 96", "offset 344", 1},
    {"OPTM length past the CRC", S_OPTM + 4, 8, S_CRC - S_OPTM - 12 + 1, NULL, 1, F, "past the CRC", "offset 344", 1},
    {"OPTM length huge", S_OPTM + 4, 8, UINT64_MAX - 11, NULL, 1, F, "past the CRC", "offset 344", 1},
    {"TRST length 39", S_TRST + 4, 8, 39, NULL, 1, F, "length 39, expected 40", "offset 660", 1},
    {"TRST length 41, past the CRC", S_TRST + 4, 8, 41, NULL, 1, F, "past the CRC", "offset 660", 1},
    {"TRST length 0", S_TRST + 4, 8, 0, NULL, 1, F, "expected 40", "offset 660", 1},
    {"STDZ mean NaN", S_MEAN, 8, NAN64, NULL, 1, F, "STDZ", "offset 296", 1},
    {"STDZ last mean -Inf", S_MEAN + 16, 8, INF64 | UINT64_C(1) << 63, NULL, 1, F, "STDZ", "offset 296", 1},
    {"STDZ std -1", S_SD, 8, DBL(0xbff0000000000000), NULL, 1, F, "STDZ", "offset 296", 1},
    {"STDZ last std NaN", S_SD + 16, 8, NAN64, NULL, 1, F, "STDZ", "offset 296", 1},
    {"STDZ std +Inf", S_SD + 8, 8, INF64, NULL, 1, F, "STDZ", "offset 296", 1},
    {"STDZ std smallest negative", S_SD, 8, DBL(0x8000000000000001), NULL, 1, F, "STDZ", "offset 296", 1},
    {"OPTM kind 99", S_KIND, 4, 99, NULL, 1, F, "kind", "OPTM at offset 356", 0},
    {"OPTM kind 0", S_KIND, 4, 0, NULL, 1, F, "kind", "OPTM at offset 356", 0},
    {"OPTM schedule 3", S_SCHED, 4, 3, NULL, 1, F, "schedule", "OPTM at offset 356", 0},
    {"OPTM lr NaN", S_LR, 8, NAN64, NULL, 1, F, "lr", "OPTM at offset 356", 0},
    {"OPTM lr -1", S_LR, 8, DBL(0xbff0000000000000), NULL, 1, F, "lr", "OPTM at offset 356", 0},
    {"OPTM lr 0", S_LR, 8, 0, NULL, 1, F, "lr", "OPTM at offset 356", 0},
    {"OPTM momentum 1", S_MOM, 8, DBL(0x3ff0000000000000), NULL, 1, F, "momentum", "OPTM at offset 356", 0},
    {"OPTM gamma 0", S_GAMMA, 8, 0, NULL, 1, F, "gamma", "OPTM at offset 356", 0},
    {"OPTM step_size 0", S_STEP_SIZE, 8, 0, NULL, 1, F, "step_size", "OPTM at offset 356", 0},
    {"OPTM step_size 2^63", S_STEP_SIZE, 8, UINT64_C(1) << 63, NULL, 1, F, "step_size", "OPTM at offset 356", 0},
    {"OPTM steps 2^63", S_STEPS, 8, UINT64_C(1) << 63, NULL, 1, F, "steps", "OPTM at offset 356", 0},
    {"OPTM steps LONG_MAX", S_STEPS, 8, (uint64_t)LONG_MAX, NULL, 1, F, "steps", "OPTM at offset 356", 0},
    /* Another kind with the momentum buffer's length: Adam needs two buffers, SGD none. */
    {"OPTM kind adam, one buffer", S_KIND, 4, BP_OPT_ADAM, NULL, 1, F, "moment buffers", "OPTM at offset 356", 0},
    {"OPTM kind sgd, one buffer", S_KIND, 4, BP_OPT_SGD, NULL, 1, F, "moment buffers", "OPTM at offset 356", 0},
    {"TRST epochs_done 2^63", S_EPOCHS, 8, UINT64_C(1) << 63, NULL, 1, F, "epochs_done", "TRST at offset 672", 0},
    /* A valid change with the CRC left stale: refused by the CRC. */
    {"STDZ payload, CRC stale", S_MEAN + 3, 1, 0x40, NULL, 0, F, "CRC", "offset 712", 1},
    {"OPTM moment, CRC stale", S_MBUF + 100, 1, 0x01, NULL, 0, F, "CRC", "offset 712", 1},
    {"OPTM steps, CRC stale", S_STEPS, 1, 0x01, NULL, 0, F, "CRC", "offset 712", 1},
    {"TRST rng, CRC stale", S_RNG + 31, 1, 0x80, NULL, 0, F, "CRC", "offset 712", 1},
    {"CRC itself", S_CRC + 2, 1, 0x08, NULL, 0, F, "CRC", "offset 712", 1},
    {"a tag, CRC stale", S_TRST, 1, 0x20, NULL, 0, F, "unknown tag", "offset 660", 1},
    {"version 3", 8, 4, 3, NULL, 1, BP_ERR_UNSUPPORTED, "version", "offset 8", 1},
};
#define NSMUT ((int)(sizeof SMUTATIONS / sizeof SMUTATIONS[0]))

START_TEST(test_corrupt_section)
{
    const smutation *m = &SMUTATIONS[_i];
    sbase s = sections_base();
    bytes *b = &s.file;
    if (m->width == 0)
        memcpy(b->p + m->off, m->tag, 4);
    else if (m->width == 1)
        b->p[m->off] ^= (unsigned char)m->value;
    else if (m->width == 4)
        put32(b->p + m->off, (uint32_t)m->value);
    else
        put64(b->p + m->off, m->value);
    if (m->fix_crc)
        fix_crc(b);
    write_file(path, b->p, b->n);
    expect_state_fail(path, m->want, m->needle, m->where);
    if (m->always) {
        expect_load_fail(path, m->want, m->want, m->needle);
        assert_error_has(m->where);
    }
    sbase_free(&s);
}
END_TEST

/* Files a save never writes, built by hand from the base's objects: _i picks one. */
START_TEST(test_bad_section_list)
{
    sbase s = sections_base();
    builder b = {NULL, 0, 0};
    const char *needle = NULL, *where = NULL;
    b_net(&b, s.net, 2);
    switch (_i) {
    case 0:   /* STDZ twice */
        b_u32(&b, 2);
        b_stdz(&b, s.net);
        b_stdz(&b, s.net);
        needle = "section STDZ at offset 344 appears twice";
        break;
    case 1:   /* TRST, OPTM, TRST */
        b_u32(&b, 3);
        b_trst(&b, &s.st);
        b_optm(&b, s.net, s.opt, 0);
        b_trst(&b, &s.st);
        needle = "section TRST at offset 652 appears twice";
        break;
    case 2:   /* four sections, the fourth a repeat: n_sections 4 */
        b_u32(&b, 4);
        b_stdz(&b, s.net);
        b_optm(&b, s.net, s.opt, 0);
        b_trst(&b, &s.st);
        b_trst(&b, &s.st);
        needle = "n_sections 4", where = "offset 280";
        break;
    case 3:   /* the OPTM section one moment short, its length saying so */
        b_u32(&b, 1);
        b_optm(&b, s.net, s.opt, 8);
        needle = "moment buffers", where = "OPTM at offset 296";
        break;
    case 4:   /* the OPTM section with no moment at all */
        b_u32(&b, 1);
        b_optm(&b, s.net, s.opt, 26 * 8);
        needle = "moment buffers", where = "OPTM at offset 296";
        break;
    case 5:   /* the OPTM section with 8 bytes too many */
        b_u32(&b, 1);
        b_section(&b, "OPTM", 96 + 26 * 8 + 8);
        {
            builder t = {NULL, 0, 0};
            b_optm(&t, s.net, s.opt, 0);
            b_put(&b, t.p + 12, t.n - 12);
            b_u64(&b, 0);
            free(t.p);
        }
        needle = "moment buffers", where = "OPTM at offset 296";
        break;
    case 6:   /* a STDZ section of the length of a network with 4 inputs */
        b_u32(&b, 1);
        b_section(&b, "STDZ", 64);
        for (int k = 0; k < 8; k++)
            b_f64(&b, 1.0);
        needle = "length 64, expected 48", where = "offset 284";
        break;
    case 7:   /* a section that is not counted: trailing data before the CRC */
        b_u32(&b, 2);
        b_stdz(&b, s.net);
        b_optm(&b, s.net, s.opt, 0);
        b_trst(&b, &s.st);
        needle = "trailing", where = "offset 664";
        break;
    case 8:   /* three announced, two there */
        b_u32(&b, 3);
        b_stdz(&b, s.net);
        b_trst(&b, &s.st);
        needle = "runs into the CRC", where = "offset 396";
        break;
    case 9:   /* a length that ends exactly at the CRC, its tag's length wrong */
        b_u32(&b, 1);
        b_section(&b, "TRST", 48);
        for (int k = 0; k < 6; k++)
            b_u64(&b, 1);
        needle = "length 48, expected 40", where = "offset 284";
        break;
    }
    bytes f = b_finish(&b);
    write_file(path, f.p, f.n);
    expect_state_fail(path, BP_ERR_FORMAT, needle, where);
    /* bp_model_load checks the OPTM section by its CRC only (cases 3 to 5). */
    if (_i < 3 || _i > 5)
        expect_load_fail(path, BP_ERR_FORMAT, BP_ERR_FORMAT, needle);
    free(f.p);
    sbase_free(&s);
}
END_TEST

/* The base cut at every boundary of its sections and inside them, as cut (the CRC then the last 4
 * bytes) and with a CRC over what remains: refused, naming an offset, nothing allocated. */
static const size_t STRUNC[] = {S_NSEC + 2, S_STDZ, S_STDZ + 4, S_STDZ + 11, S_MEAN, S_SD, S_OPTM - 1, S_OPTM,
                                S_OPTM + 12, S_KIND + 4, S_MBUF, S_MBUF + 100, S_TRST - 4, S_TRST, S_TRST + 12,
                                S_EPOCHS + 8, S_CRC - 4, S_CRC, S_CRC + 1, S_SIZE - 1};
#define NSTRUNC ((int)(sizeof STRUNC / sizeof STRUNC[0]))

START_TEST(test_truncated_sections)
{
    const size_t len = STRUNC[_i / 2];
    sbase s = sections_base();
    bytes *b = &s.file;
    b->n = len;
    if (_i % 2)
        fix_crc(b);
    write_file(path, b->p, b->n);
    expect_state_fail(path, BP_ERR_FORMAT, "offset", NULL);
    expect_load_fail(path, BP_ERR_FORMAT, BP_ERR_FORMAT, "offset");
    sbase_free(&s);
}
END_TEST

/* Trailing data after a whole file with sections: one byte, or a copy of the CRC. */
START_TEST(test_trailing_after_sections)
{
    sbase s = sections_base();
    bytes *b = &s.file;
    unsigned char *p = realloc(b->p, b->n + 4);
    ck_assert_ptr_nonnull(p);
    b->p = p;
    memcpy(p + b->n, p + b->n - 4, 4);
    write_file(path, p, b->n + (_i ? 4 : 1));
    expect_state_fail(path, BP_ERR_FORMAT, "trailing", "offset 716");
    expect_load_fail(path, BP_ERR_FORMAT, BP_ERR_FORMAT, "trailing");
    sbase_free(&s);
}
END_TEST

/* Random damage to a file with every section, with and without a recomputed CRC, and random cuts:
 * every load either succeeds with a usable network and optimizer or fails with a file error,
 * leaving the outputs alone and nothing allocated; nothing crashes (ASan). */
START_TEST(test_random_damage_sections)
{
    sbase s = sections_base();
    unsigned char *b = malloc(S_SIZE);
    ck_assert_ptr_nonnull(b);
    tu_rng rng = tu_rng_make(2000 + (uint64_t)_i);
    int ok = 0, refused = 0;
    counter c;
    const bp_allocator a = counting(&c, 0);
    for (int it = 0; it < 400; it++) {
        memcpy(b, s.file.p, S_SIZE);
        size_t n = S_SIZE;
        const int flips = 1 + (int)(tu_next(&rng) % 3);
        for (int k = 0; k < flips; k++) {
            /* Half the time inside the sections, where this test means to look. */
            const size_t at = it % 4 < 2 ? S_NSEC + tu_next(&rng) % (S_SIZE - S_NSEC) : tu_next(&rng) % n;
            b[at] ^= (unsigned char)(1 + tu_next(&rng) % 255);
        }
        if (it % 2)
            put32(b + n - 4, (uint32_t)crc32(0L, b, (uInt)(n - 4)));
        if (it % 5 == 4)
            n = (size_t)(tu_next(&rng) % n);
        write_file(path, b, n);
        bp_net *out = UNTOUCHED;
        bp_optim *oout = UNTOUCHED_OPT;
        bp_train_state st;
        const bp_status r = bp_model_load_state(&out, &oout, &st, path, &a);
        if (r == BP_OK) {
            ck_assert_ptr_ne(out, UNTOUCHED);
            ck_assert_ptr_ne(oout, UNTOUCHED_OPT);
            ck_assert_int_ge(st.epochs_done, 0);
            ck_assert_int_eq(bp_net_plan(out, 2), BP_OK);
            bp_optim_destroy(oout);
            bp_net_destroy(out);
            ok++;
        } else {
            ck_assert_msg(r == BP_ERR_FORMAT || r == BP_ERR_UNSUPPORTED || r == BP_ERR_OVERFLOW,
                          "iteration %d: status %d: %s", it, (int)r, bp_last_error());
            ck_assert_ptr_eq(out, UNTOUCHED);
            ck_assert_ptr_eq(oout, UNTOUCHED_OPT);
            refused++;
        }
        ck_assert_int_eq(c.allocs, c.frees);
    }
    ck_assert_int_gt(ok, 0);
    ck_assert_int_ge(refused, 200);
    free(b);
    sbase_free(&s);
}
END_TEST

/* A header claiming a huge model: refused before anything large is allocated. */
START_TEST(test_hostile_header)
{
    unsigned char b[32 + 16 * 4 + 8 + 64];
    memset(b, 0, sizeof b);
    memcpy(b, "BPMODEL", 8);
    put32(b + 8, 1);
    put32(b + 12, 0x01020304u);
    put32(b + 16, BP_F64);
    put32(b + 20, BP_LOSS_MSE);
    uint32_t n_in = 0, n_layers = 0;
    uint64_t n_params = 0;
    uint32_t n_out[4] = {0, 0, 0, 0};
    switch (_i) {
    case 0:   /* widest layers: each product is 2^62 */
        n_in = 0x7fffffffu, n_layers = 2, n_out[0] = n_out[1] = 0x7fffffffu;
        n_params = UINT64_C(1) << 62;
        break;
    case 1:   /* under BP_NET_MAX_PARAMS (2^32 + 2^16 parameters, 32 GiB) but the file is tiny */
        n_in = 0xffffu, n_layers = 2, n_out[0] = 0x10000u, n_out[1] = 1;
        n_params = (uint64_t)0x10000u * 0x10000u + 0x10001u;
        break;
    case 2:   /* just over BP_NET_MAX_PARAMS, with a consistent n_params */
        n_in = 0xffffu, n_layers = 2, n_out[0] = 0x20000u, n_out[1] = 1;
        n_params = (uint64_t)0x20000u * 0x10000u + 0x20001u;
        break;
    case 3:   /* four layers whose sum, not any one product, overflows the limit */
        n_in = 0xffffu, n_layers = 4, n_out[0] = n_out[1] = n_out[2] = 0xffffu, n_out[3] = 1;
        n_params = UINT64_C(3) * 0x10000u * 0xffffu + 0x10000u;
        break;
    case 4:   /* a small table with a huge n_params */
        n_in = 1, n_layers = 1, n_out[0] = 1;
        n_params = UINT64_MAX;
        break;
    }
    put32(b + 24, n_in);
    put32(b + 28, n_layers);
    for (uint32_t i = 0; i < n_layers; i++)
        put32(b + 32 + 16 * i, n_out[i]);
    put64(b + 32 + 16 * n_layers, n_params);
    const size_t n = 32 + 16 * (size_t)n_layers + 8 + 64;
    write_file(path, b, n);

    counter c;
    const bp_allocator a = counting(&c, 0);
    bp_net *out = UNTOUCHED;
    stale_error();
    const bp_status st = bp_model_load(&out, path, &a);
    ck_assert_msg(st == BP_ERR_FORMAT || st == BP_ERR_OVERFLOW, "status %d: %s", (int)st, bp_last_error());
    ck_assert_ptr_eq(out, UNTOUCHED);
    assert_error_has(path);
    ck_assert_msg(c.largest <= ((size_t)1 << 20), "an allocation of %zu bytes", c.largest);
    ck_assert_int_eq(c.allocs, c.frees);
}
END_TEST

/* The largest legal layer table is read, checked and refused without a large allocation. */
START_TEST(test_max_layers_truncated)
{
    enum { L = BP_NET_MAX_LAYERS };
    const size_t n = 32 + 16 * (size_t)L + 8 + 16;
    unsigned char *b = calloc(n, 1);
    ck_assert_ptr_nonnull(b);
    memcpy(b, "BPMODEL", 8);
    put32(b + 8, 1);
    put32(b + 12, 0x01020304u);
    put32(b + 16, BP_F32);
    put32(b + 20, BP_LOSS_MSE);
    put32(b + 24, 1);
    put32(b + 28, L);
    for (int i = 0; i < L; i++)
        put32(b + 32 + 16 * i, 1);
    put64(b + 32 + 16 * L, 2 * (uint64_t)L);
    write_file(path, b, n);
    counter c;
    const bp_allocator a = counting(&c, 0);
    bp_net *out = UNTOUCHED;
    stale_error();
    ck_assert_int_eq(bp_model_load(&out, path, &a), BP_ERR_FORMAT);
    ck_assert_ptr_eq(out, UNTOUCHED);
    assert_error_has("truncated");
    ck_assert_uint_le(c.largest, (size_t)1 << 20);
    ck_assert_int_eq(c.allocs, c.frees);

    /* With its parameters and CRC the same file loads: 1024 layers are allowed. */
    const size_t full = 32 + 16 * (size_t)L + 8 + 2 * (size_t)L * 4 + 4;
    unsigned char *g = calloc(full, 1);
    ck_assert_ptr_nonnull(g);
    memcpy(g, b, 32 + 16 * (size_t)L + 8);
    put32(g + full - 4, (uint32_t)crc32(0L, g, (uInt)(full - 4)));
    write_file(path, g, full);
    bp_net *net = NULL;
    ck_assert_int_eq(bp_model_load(&net, path, &a), BP_OK);
    ck_assert_int_eq(bp_net_n_layers(net), L);
    ck_assert_uint_eq(bp_net_n_params(net), 2 * (size_t)L);
    bp_net_destroy(net);
    ck_assert_int_eq(c.allocs, c.frees);
    free(g);
    free(b);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Atomic saves.
 * ------------------------------------------------------------------------------------------- */
START_TEST(test_save_replaces)
{
    bp_net *a = make_net(BP_F32, &SHAPES[1], NULL), *b = make_net(BP_F64, &SHAPES[3], NULL);
    fill_bits(a, 1);
    fill_bits(b, 2);
    ck_assert_int_eq(bp_model_save(a, path), BP_OK);
    ck_assert_int_eq(chmod(path, 0640), 0);
    ck_assert_int_eq(bp_model_save(b, path), BP_OK);
    assert_dir_holds("model.bpm");
    bp_net *back = NULL;
    ck_assert_int_eq(bp_model_load(&back, path, NULL), BP_OK);
    assert_same_net(b, back);
    bp_net_destroy(back);
    /* The replaced file keeps its permissions; a new one gets 0666 less the umask (under 022,
     * 0644; under 077, 0600: not world-readable when the process asked for privacy). */
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 07777, 0640);
    static const mode_t masks[2] = {022, 077};
    for (int k = 0; k < 2; k++) {
        char p2[700];
        snprintf(p2, sizeof p2, "%s/new%d.bpm", dir, k);
        const mode_t old = umask(masks[k]);
        const bp_status st = bp_model_save(a, p2);
        umask(old);
        ck_assert_int_eq(st, BP_OK);
        ck_assert_int_eq(stat(p2, &sb), 0);
        ck_assert_int_eq(sb.st_mode & 07777, 0666 & ~masks[k]);
        ck_assert_int_eq(unlink(p2), 0);
    }
    /* A relative path (the directory to fsync is then "."). */
    char cwd[512];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(dir), 0);
    ck_assert_int_eq(bp_model_save(a, "model.bpm"), BP_OK);
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_int_eq(bp_model_load(&back, path, NULL), BP_OK);
    assert_same_net(a, back);
    bp_net_destroy(back);
    bp_net_destroy(a);
    bp_net_destroy(b);
}
END_TEST

/* A save killed before its rename leaves model.bpm.tmp (here written by hand, half a file):
 * the next save takes that name over, so afterwards the directory holds the model alone. */
START_TEST(test_save_takes_over_leftover)
{
    bp_net *a = make_net(BP_F32, &SHAPES[1], NULL);
    fill_bits(a, 3);
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs("BPMODEL half a file", f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(bp_model_save(a, path), BP_OK);
    assert_dir_holds("model.bpm");
    bp_net *back = NULL;
    ck_assert_int_eq(bp_model_load(&back, path, NULL), BP_OK);
    assert_same_net(a, back);
    bp_net_destroy(back);
    bp_net_destroy(a);
}
END_TEST

/* 100 times, a child process saving two models in turn is killed (SIGKILL) at a random moment
 * of its saves: every time, the file loads and is one of the two models whole, and the only
 * other entry ever left is model.bpm.tmp; the next save leaves the model alone. */
START_TEST(test_kill_during_save)
{
    bp_net *net[2] = {make_net(BP_F64, &SHAPES[3], NULL), make_net(BP_F64, &SHAPES[3], NULL)};
    fill_bits(net[0], 4);
    fill_bits(net[1], 5);
    ck_assert_int_eq(bp_model_save(net[0], path), BP_OK);
    tu_rng r = tu_rng_make(11);
    for (int kill_no = 0; kill_no < 100; kill_no++) {
        const pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            for (unsigned i = 0;; i++)
                if (bp_model_save(net[i % 2], path) != BP_OK)
                    _exit(1);
        }
        const struct timespec t = {0, (long)tu_unif(&r, 0, 3e6)};   /* 0 to 3 ms */
        nanosleep(&t, NULL);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        int status = 0;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFSIGNALED(status), "kill %d: the saving child ended by itself (status %d)", kill_no, status);
        char names[8][256];
        const int n = dir_entries(names, 8);
        for (int k = 0; k < n && k < 8; k++)
            ck_assert_msg(!strcmp(names[k], "model.bpm") || !strcmp(names[k], "model.bpm.tmp"),
                          "kill %d: '%s' left in the directory", kill_no, names[k]);
        ck_assert_int_le(n, 2);
        bp_net *back = NULL;
        ck_assert_int_eq(bp_model_load(&back, path, NULL), BP_OK);
        const size_t bytes = bp_net_n_params(back) * sizeof(double);
        ck_assert_msg(!memcmp(bp_net_params(back), bp_net_params(net[0]), bytes) ||
                      !memcmp(bp_net_params(back), bp_net_params(net[1]), bytes), "kill %d: a mixed model", kill_no);
        bp_net_destroy(back);
    }
    ck_assert_int_eq(bp_model_save(net[1], path), BP_OK);
    assert_dir_holds("model.bpm");
    bp_net_destroy(net[0]);
    bp_net_destroy(net[1]);
}
END_TEST

/* The wrappers are reached: a clean save makes the calls the fault tests break. */
START_TEST(test_wrappers_reached)
{
    bp_net *net = make_net(BP_F64, &SHAPES[2], NULL);
    arm(F_NONE, 0, 0);
    const bp_status st = bp_model_save(net, path);
    disarm();
    ck_assert_int_eq(st, BP_OK);
    ck_assert_int_ge(fault.calls[F_FWRITE], 3);   /* 200 KB through an 8 KiB buffer */
    ck_assert_int_eq(fault.calls[F_FSYNC], 2);    /* the file, then the directory */
    ck_assert_int_eq(fault.calls[F_FCLOSE], 1);
    ck_assert_int_eq(fault.calls[F_RENAME], 1);
    bp_net_destroy(net);
}
END_TEST

typedef struct injection {
    enum fault_fn fn;
    long at;          /* 1-based; -1: the last call of a clean save */
    int err;
    const char *step; /* a word of the message */
} injection;

static const injection INJECTIONS[] = {
    {F_FWRITE, 1, ENOSPC, "writing"},
    {F_FWRITE, 2, EIO, "writing"},
    {F_FWRITE, -1, ENOSPC, "writing"},   /* the one carrying the CRC */
    {F_FSYNC, 1, EIO, "fsync"},
    {F_FCLOSE, 1, EIO, "clos"},
    {F_RENAME, 1, EIO, "renam"},
    {F_RENAME, 1, EXDEV, "renam"},
};
#define NINJ ((int)(sizeof INJECTIONS / sizeof INJECTIONS[0]))

/* Each injected failure: BP_ERR_IO naming the file, the step and the system error; the old file
 * byte-identical; no temporary file left. _i odd: no old file, and none appears. */
START_TEST(test_save_fault)
{
    const injection *inj = &INJECTIONS[_i % (2 * NINJ) / 2];
    const int with_old = _i % 2 == 0, full = _i >= 2 * NINJ;
    bp_net *old = make_net(BP_F32, &SHAPES[1], NULL), *net = make_net(BP_F64, &SHAPES[2], NULL);
    fill_bits(old, 3);
    fill_bits(net, 4);
    /* full: bp_model_save_state with every section (Adam's moments: 3 x 200 KB). */
    bp_optim *opt = NULL;
    const bp_train_state ts = odd_state(4);
    if (full) {
        set_stats(net, 5);
        opt = odd_optim(net, BP_OPT_ADAM, BP_SCHED_CONSTANT, 6);
    }
    const char *fn = full ? "bp_model_save_state" : "bp_model_save";
    bytes before = {NULL, 0};
    if (with_old) {
        ck_assert_int_eq(bp_model_save(old, path), BP_OK);
        before = read_file(path);
    }
    long at = inj->at;
    if (at < 0) {
        char p2[700];
        snprintf(p2, sizeof p2, "%s/probe.bpm", dir);
        arm(F_NONE, 0, 0);
        const bp_status probe = bp_model_save_state(net, opt, full ? &ts : NULL, p2);
        disarm();
        ck_assert_int_eq(probe, BP_OK);
        at = fault.calls[inj->fn];
        ck_assert_int_eq(unlink(p2), 0);
    }
    stale_error();   /* before arming: every Check assertion writes to Check's own channel */
    arm(inj->fn, at, inj->err);
    const bp_status st = bp_model_save_state(net, opt, full ? &ts : NULL, path);
    disarm();
    ck_assert_int_ge(fault.calls[inj->fn], at);   /* the fault was really injected */
    ck_assert_msg(st == BP_ERR_IO, "status %d: %s", (int)st, bp_last_error());
    assert_error_has(fn);
    assert_error_has(path);
    assert_error_has(inj->step);
    assert_error_has(strerror(inj->err));
    if (with_old) {
        assert_same_file(path, &before);
        assert_dir_holds("model.bpm");
        bp_net *back = NULL;
        ck_assert_int_eq(bp_model_load(&back, path, NULL), BP_OK);
        assert_same_net(old, back);
        bp_net_destroy(back);
    } else {
        assert_dir_holds(NULL);
    }
    /* The failure is not sticky: the next save works. */
    ck_assert_int_eq(bp_model_save_state(net, opt, full ? &ts : NULL, path), BP_OK);
    bp_net *back = NULL;
    bp_optim *oback = NULL;
    bp_train_state sback;
    ck_assert_int_eq(bp_model_load_state(&back, &oback, &sback, path, NULL), BP_OK);
    assert_same_net(net, back);
    assert_same_stdz(net, back);
    if (full) {
        assert_same_optim(net, opt, oback);
        assert_same_state(&ts, &sback);
    }
    bp_optim_destroy(oback);
    bp_optim_destroy(opt);
    bp_net_destroy(back);
    assert_dir_holds("model.bpm");
    free(before.p);
    bp_net_destroy(old);
    bp_net_destroy(net);
}
END_TEST

/* The directory's fsync: EINVAL (a filesystem that refuses it) is ignored; another error is
 * reported, though the new file is then already in place. */
START_TEST(test_dir_fsync)
{
    bp_net *old = make_net(BP_F32, &SHAPES[0], NULL), *net = make_net(BP_F64, &SHAPES[1], NULL);
    fill_bits(old, 8);
    fill_bits(net, 9);
    ck_assert_int_eq(bp_model_save(old, path), BP_OK);
    stale_error();
    arm(F_FSYNC, 2, _i ? EIO : EINVAL);
    const bp_status st = bp_model_save(net, path);
    disarm();
    ck_assert_int_eq(fault.calls[F_FSYNC], 2);
    if (_i) {
        ck_assert_int_eq(st, BP_ERR_IO);
        assert_error_has(path);
        assert_error_has("directory");
        assert_error_has(strerror(EIO));
    } else {
        ck_assert_int_eq(st, BP_OK);
    }
    assert_dir_holds("model.bpm");
    bp_net *back = NULL;
    ck_assert_int_eq(bp_model_load(&back, path, NULL), BP_OK);
    assert_same_net(net, back);
    bp_net_destroy(back);
    bp_net_destroy(old);
    bp_net_destroy(net);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Bad arguments.
 * ------------------------------------------------------------------------------------------- */
START_TEST(test_save_bad_args)
{
    bp_net *net = make_net(BP_F32, &SHAPES[0], NULL);
    stale_error();
    ck_assert_int_eq(bp_model_save(NULL, path), BP_ERR_ARG);
    assert_error_has("net");
    stale_error();
    ck_assert_int_eq(bp_model_save(net, NULL), BP_ERR_ARG);
    assert_error_has("path");
    stale_error();
    ck_assert_int_eq(bp_model_save(net, ""), BP_ERR_ARG);
    assert_error_has("empty");
    assert_dir_holds(NULL);

    /* A directory that does not exist. */
    char p[700];
    snprintf(p, sizeof p, "%s/no/such/dir/model.bpm", dir);
    stale_error();
    ck_assert_int_eq(bp_model_save(net, p), BP_ERR_IO);
    assert_error_has(p);
    assert_error_has(strerror(ENOENT));
    assert_dir_holds(NULL);

    /* A path that is a directory: the rename fails, the temporary file goes. */
    snprintf(p, sizeof p, "%s/sub", dir);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    stale_error();
    ck_assert_int_eq(bp_model_save(net, p), BP_ERR_IO);
    assert_error_has(p);
    assert_dir_holds("sub");
    bp_net_destroy(net);
}
END_TEST

/* The temporary file's name is allocated through the network's allocator. */
START_TEST(test_save_nomem)
{
    counter c;
    const bp_allocator a = counting(&c, 0);
    bp_net *net = make_net(BP_F32, &SHAPES[1], &a);
    c.fail_at = c.allocs + 1;
    stale_error();
    ck_assert_int_eq(bp_model_save(net, path), BP_ERR_NOMEM);
    assert_error_has(path);
    assert_dir_holds(NULL);
    ck_assert_int_eq(bp_model_save(net, path), BP_OK);
    bp_net_destroy(net);
    ck_assert_int_eq(c.allocs, c.frees);
}
END_TEST

START_TEST(test_load_bad_args)
{
    bp_net *net = make_net(BP_F32, &SHAPES[0], NULL);
    ck_assert_int_eq(bp_model_save(net, path), BP_OK);
    bp_net_destroy(net);
    bp_net *out = UNTOUCHED;
    ck_assert_int_eq(bp_model_load(&out, NULL, NULL), BP_ERR_ARG);
    assert_error_has("path");
    ck_assert_int_eq(bp_model_load(&out, "", NULL), BP_ERR_ARG);
    assert_error_has("empty");
    bp_allocator bad = {count_alloc, NULL, NULL};
    ck_assert_int_eq(bp_model_load(&out, path, &bad), BP_ERR_ARG);
    assert_error_has("alloc");
    bad.alloc = NULL;
    bad.free = count_free;
    ck_assert_int_eq(bp_model_load(&out, path, &bad), BP_ERR_ARG);
    ck_assert_ptr_eq(out, UNTOUCHED);
    ck_assert_int_eq(bp_model_load(NULL, "x", NULL), BP_ERR_ARG);   /* before the file is looked at */
    /* out is checked first: the message does not mention the path. */
    assert_error_has("out");
    ck_assert_int_eq(bp_model_load(NULL, path, NULL), BP_ERR_ARG);
}
END_TEST

START_TEST(test_save_state_bad_args)
{
    bp_net *net = make_net(BP_F32, &SHAPES[1], NULL), *other = make_net(BP_F64, &SHAPES[1], NULL);
    bp_net *bigger = make_net(BP_F32, &SHAPES[3], NULL);
    bp_optim *opt = odd_optim(net, BP_OPT_ADAM, BP_SCHED_CONSTANT, 1);
    bp_optim *o64 = odd_optim(other, BP_OPT_ADAM, BP_SCHED_CONSTANT, 2);
    bp_optim *obig = odd_optim(bigger, BP_OPT_MOMENTUM, BP_SCHED_CONSTANT, 3);
    const bp_train_state ok = {1, {1, 2, 3, 4}}, neg = {-1, {1, 2, 3, 4}};
    stale_error();
    ck_assert_int_eq(bp_model_save_state(NULL, opt, &ok, path), BP_ERR_ARG);
    assert_error_has("net");
    stale_error();
    ck_assert_int_eq(bp_model_save_state(net, opt, &ok, NULL), BP_ERR_ARG);
    assert_error_has("path");
    stale_error();
    ck_assert_int_eq(bp_model_save_state(net, opt, &ok, ""), BP_ERR_ARG);
    assert_error_has("empty");
    stale_error();
    ck_assert_int_eq(bp_model_save_state(net, o64, &ok, path), BP_ERR_ARG);   /* another dtype */
    assert_error_has("bp_model_save_state");
    assert_error_has("dtype");
    stale_error();
    ck_assert_int_eq(bp_model_save_state(net, obig, &ok, path), BP_ERR_ARG);  /* other parameters */
    assert_error_has("parameters");
    stale_error();
    ck_assert_int_eq(bp_model_save_state(net, opt, &neg, path), BP_ERR_ARG);
    assert_error_has("epochs_done");
    /* A step count that cannot grow (LONG_MAX) is refused by the save, as the load would. */
    *bp__optim_state(opt).steps = LONG_MAX;
    stale_error();
    ck_assert_int_ne(bp_model_save_state(net, opt, &ok, path), BP_OK);
    assert_error_has("bp_model_save_state");
    assert_dir_holds(NULL);
    bp_optim_destroy(obig);
    bp_optim_destroy(o64);
    bp_optim_destroy(opt);
    bp_net_destroy(bigger);
    bp_net_destroy(other);
    bp_net_destroy(net);
}
END_TEST

START_TEST(test_load_state_bad_args)
{
    bp_net *net = make_net(BP_F32, &SHAPES[0], NULL);
    ck_assert_int_eq(bp_model_save(net, path), BP_OK);
    bp_net_destroy(net);
    bp_net *out = UNTOUCHED;
    bp_optim *oout = UNTOUCHED_OPT;
    bp_train_state st, st0;
    memset(&st, 0x5a, sizeof st);
    st0 = st;
    stale_error();
    ck_assert_int_eq(bp_model_load_state(NULL, &oout, &st, path, NULL), BP_ERR_ARG);
    assert_error_has("bp_model_load_state");
    stale_error();
    ck_assert_int_eq(bp_model_load_state(&out, &oout, &st, NULL, NULL), BP_ERR_ARG);
    assert_error_has("path");
    stale_error();
    ck_assert_int_eq(bp_model_load_state(&out, &oout, &st, "", NULL), BP_ERR_ARG);
    assert_error_has("empty");
    const bp_allocator bad = {count_alloc, NULL, NULL};
    stale_error();
    ck_assert_int_eq(bp_model_load_state(&out, &oout, &st, path, &bad), BP_ERR_ARG);
    assert_error_has("alloc");
    char p[700];
    snprintf(p, sizeof p, "%s/missing.bpm", dir);
    stale_error();
    ck_assert_int_eq(bp_model_load_state(&out, &oout, &st, p, NULL), BP_ERR_IO);
    assert_error_has(p);
    ck_assert_ptr_eq(out, UNTOUCHED);
    ck_assert_ptr_eq(oout, UNTOUCHED_OPT);
    ck_assert(memcmp(&st, &st0, sizeof st) == 0);
    /* Both extras may be NULL: then it is bp_model_load. */
    ck_assert_int_eq(bp_model_load_state(&out, NULL, NULL, path, NULL), BP_OK);
    bp_net_destroy(out);
}
END_TEST

/* bp_optim_create accepts any value in a field the schedule does not read, negative counts
 * included (step_size under a constant schedule, t_max under a step schedule); a file the save
 * writes from such an optimizer must load back, bitwise, or the save must refuse it. */
START_TEST(test_unused_negative_counts)
{
    bp_net *net = make_net(BP_F64, &SHAPES[1], NULL);
    bp_optim_config c = bp_optim_defaults(BP_OPT_SGD, 0.1);
    c.schedule = _i ? BP_SCHED_STEP : BP_SCHED_CONSTANT;
    c.step_size = _i ? 2 : -1;
    c.t_max = _i ? LONG_MIN : -5;
    bp_optim *opt = NULL;
    ck_assert_int_eq(bp_optim_create(&opt, net, &c), BP_OK);
    const bp_status st = bp_model_save_state(net, opt, NULL, path);
    if (st == BP_OK) {
        bp_net *back = NULL;
        bp_optim *oback = NULL;
        const bp_status r = bp_model_load_state(&back, &oback, NULL, path, NULL);
        ck_assert_msg(r == BP_OK, "the save wrote a file its load refuses: %s", bp_last_error());
        assert_same_optim(net, opt, oback);
        bp_optim_destroy(oback);
        bp_net_destroy(back);
    } else {
        ck_assert_int_eq(st, BP_ERR_ARG);
        assert_dir_holds(NULL);
    }
    bp_optim_destroy(opt);
    bp_net_destroy(net);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Exact resume: 2 epochs, a save with the optimizer and the training state, a load into new
 * objects and 2 more epochs give the bits of 4 epochs never interrupted.
 * ------------------------------------------------------------------------------------------- */
enum { RN = 37, RIN = 5, RCLS = 3, RBATCH = 8, RMB = 4 };   /* 5 batches an epoch, the last of 5 */

/* RN samples, feature j of mean about 3 j and scale j + 1 (so a standardisation matters), and a
 * label from the signs of two features. */
static void resume_data(bp_dtype dt, void *X, int32_t *y)
{
    tu_rng r = tu_rng_make(77);
    for (int i = 0; i < RN; i++) {
        double x[RIN];
        for (int j = 0; j < RIN; j++) {
            x[j] = 3.0 * j + (j + 1) * tu_unif(&r, -1, 1);
            if (dt == BP_F32)
                ((float *)X)[i * RIN + j] = (float)x[j];
            else
                ((double *)X)[i * RIN + j] = x[j];
        }
        y[i] = (x[0] > 0) + (x[2] > 6.0);
    }
}

static bp_net *resume_net(bp_dtype dt, int stdz, const void *X)
{
    const bp_layer_spec l[2] = {{7, BP_ACT_TANH, 0.0}, {RCLS, BP_ACT_IDENTITY, 0.0}};
    bp_net *net = NULL;
    ck_assert_int_eq(bp_net_create(&net, dt, RIN, 2, l, BP_LOSS_SOFTMAX_XENT, NULL), BP_OK);
    ck_assert_int_eq(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 2024, 1.0), BP_OK);
    if (stdz)
        ck_assert_int_eq(bp_net_fit_standardization(net, RN, X, RIN), BP_OK);
    ck_assert_int_eq(bp_net_plan(net, RMB), BP_OK);
    return net;
}

/* Adam with a cosine decay and weight decay, or momentum SGD with a step schedule whose decays
 * (every 7 steps) fall inside epochs and across the resume. */
static bp_optim_config resume_config(int momentum)
{
    bp_optim_config c;
    if (momentum) {
        c = bp_optim_defaults(BP_OPT_MOMENTUM, 0.05);
        c.schedule = BP_SCHED_STEP, c.gamma = 0.5, c.step_size = 7;
    } else {
        c = bp_optim_defaults(BP_OPT_ADAM, 0.01);
        c.schedule = BP_SCHED_COSINE, c.t_max = 17, c.lr_min = 1e-4, c.weight_decay = 1e-4;
    }
    return c;
}

static bp_optim *resume_opt(bp_net *net, int momentum)
{
    const bp_optim_config c = resume_config(momentum);
    bp_optim *opt = NULL;
    ck_assert_int_eq(bp_optim_create(&opt, net, &c), BP_OK);
    return opt;
}

static void resume_train(bp_net *net, bp_optim *opt, const void *X, const int32_t *y, long epochs,
                         bp_train_state *st)
{
    bp_train_config tc;
    memset(&tc, 0, sizeof tc);
    tc.epochs = epochs;
    tc.batch_size = RBATCH;
    tc.seed = 1234;
    tc.shuffle = 1;
    tc.state = st;
    ck_assert_msg(bp_train(net, opt, RN, X, RIN, y, 1, &tc) == BP_OK, "%s", bp_last_error());
}

static int same_params(bp_net *a, bp_net *b)
{
    return memcmp(bp_net_params(a), bp_net_params(b), bp_net_n_params(a) * esize_of(a)) == 0;
}

/* _i: bit 0 the dtype, bit 1 momentum SGD (else Adam), bit 2 a standardisation on the network. */
START_TEST(test_exact_resume)
{
    const bp_dtype dt = _i & 1 ? BP_F64 : BP_F32;
    const int momentum = (_i >> 1) & 1, stdz = (_i >> 2) & 1;
    unsigned char X[RN * RIN * 8];
    int32_t y[RN];
    resume_data(dt, X, y);

    /* Uninterrupted: 4 epochs, with a state, and again without one (a fresh run either way). */
    bp_net *a = resume_net(dt, stdz, X), *a0 = resume_net(dt, stdz, X);
    bp_optim *oa = resume_opt(a, momentum), *oa0 = resume_opt(a0, momentum);
    bp_train_state sa = {0, {0, 0, 0, 0}};
    resume_train(a, oa, X, y, 4, &sa);
    resume_train(a0, oa0, X, y, 4, NULL);
    ck_assert_msg(same_params(a, a0), "a run with a zeroed state is not the run without one");
    ck_assert_int_eq(sa.epochs_done, 4);
    ck_assert_int_eq(bp_optim_steps(oa), 4 * 5);

    /* Interrupted: 2 epochs, saved, everything destroyed. */
    bp_net *b = resume_net(dt, stdz, X);
    bp_optim *ob = resume_opt(b, momentum);
    bp_train_state sb = {0, {0, 0, 0, 0}};
    resume_train(b, ob, X, y, 2, &sb);
    ck_assert_int_eq(sb.epochs_done, 2);
    ck_assert_int_eq(bp_optim_steps(ob), 2 * 5);
    ck_assert_msg(!same_params(a, b), "epochs 3 and 4 changed nothing: the test would prove nothing");
    ck_assert_int_eq(bp_model_save_state(b, ob, &sb, path), BP_OK);
    const bp_train_state sb_saved = sb;
    bp_optim_destroy(ob);
    bp_net_destroy(b);

    /* Resumed: loaded, planned the same way, trained to epoch 4. */
    bp_net *c = NULL;
    bp_optim *oc = NULL;
    bp_train_state sc;
    memset(&sc, 0xee, sizeof sc);
    ck_assert_int_eq(bp_model_load_state(&c, &oc, &sc, path, NULL), BP_OK);
    ck_assert_ptr_nonnull(oc);
    assert_same_state(&sb_saved, &sc);
    ck_assert_int_eq(bp_optim_steps(oc), 2 * 5);
    ck_assert_int_eq(!!bp_net_has_standardization(c), stdz);
    assert_same_stdz(a, c);
    ck_assert_int_eq(bp_net_plan(c, RMB), BP_OK);
    resume_train(c, oc, X, y, 4, &sc);
    ck_assert_msg(same_params(a, c), "the resumed run's parameters differ from the uninterrupted run's");
    ck_assert_int_eq(bp_optim_steps(oc), bp_optim_steps(oa));
    ck_assert_msg(bp_optim_lr(oc) == bp_optim_lr(oa), "next lr %g vs %g", bp_optim_lr(oc), bp_optim_lr(oa));
    assert_same_state(&sa, &sc);
    assert_same_optim(a, oa, oc);

    /* The test can fail: resuming without the generator (a fresh state told 2 epochs are done),
     * or without the optimizer's state (a fresh optimizer), gives other bits. */
    for (int k = 0; k < 2; k++) {
        bp_net *d = NULL;
        bp_optim *od = NULL;
        bp_train_state sd;
        ck_assert_int_eq(bp_model_load_state(&d, &od, &sd, path, NULL), BP_OK);
        ck_assert_int_eq(bp_net_plan(d, RMB), BP_OK);
        if (k == 0) {
            memset(sd.rng, 0, sizeof sd.rng);
        } else {
            bp_optim_destroy(od);
            od = resume_opt(d, momentum);
        }
        resume_train(d, od, X, y, 4, &sd);
        ck_assert_msg(!same_params(a, d), "case %d: a resume that lost state matched the uninterrupted run", k);
        bp_optim_destroy(od);
        bp_net_destroy(d);
    }

    bp_optim_destroy(oc);
    bp_net_destroy(c);
    bp_optim_destroy(oa0);
    bp_net_destroy(a0);
    bp_optim_destroy(oa);
    bp_net_destroy(a);
}
END_TEST

/* A resume from a state whose run is already complete trains nothing more. */
START_TEST(test_resume_done)
{
    unsigned char X[RN * RIN * 8];
    int32_t y[RN];
    resume_data(BP_F64, X, y);
    bp_net *a = resume_net(BP_F64, 1, X);
    bp_optim *oa = resume_opt(a, 0);
    bp_train_state sa = {0, {0, 0, 0, 0}};
    resume_train(a, oa, X, y, 3, &sa);
    ck_assert_int_eq(bp_model_save_state(a, oa, &sa, path), BP_OK);
    bp_net *c = NULL;
    bp_optim *oc = NULL;
    bp_train_state sc;
    ck_assert_int_eq(bp_model_load_state(&c, &oc, &sc, path, NULL), BP_OK);
    ck_assert_int_eq(bp_net_plan(c, RMB), BP_OK);
    resume_train(c, oc, X, y, 3, &sc);
    ck_assert(same_params(a, c));
    ck_assert_int_eq(bp_optim_steps(oc), 3 * 5);
    assert_same_state(&sa, &sc);
    bp_optim_destroy(oc);
    bp_net_destroy(c);
    bp_optim_destroy(oa);
    bp_net_destroy(a);
}
END_TEST

static Suite *model_suite(void)
{
    Suite *s = suite_create("model");

    TCase *fmt = tcase_create("format");
    tcase_add_checked_fixture(fmt, scratch_setup, scratch_teardown);
    tcase_add_loop_test(fmt, test_exact_layout, 0, 10);
    tcase_add_loop_test(fmt, test_exact_layout_v1, 0, 2);
    tcase_add_loop_test(fmt, test_round_trip, 0, 2 * NSHAPES);
    tcase_add_loop_test(fmt, test_round_trip_state, 0, 10 * NSHAPES);
    tcase_add_loop_test(fmt, test_section_subsets, 0, 16);
    tcase_add_loop_test(fmt, test_section_order, 0, 12);
    tcase_add_loop_test(fmt, test_v1_files, 0, 2 * NSHAPES);
    tcase_add_loop_test(fmt, test_loaded_net_runs, 0, 2);
    tcase_add_test(fmt, test_load_allocator);
    tcase_add_loop_test(fmt, test_load_nomem, 0, 4);
    suite_add_tcase(s, fmt);

    TCase *bad = tcase_create("corrupt");
    tcase_add_checked_fixture(bad, scratch_setup, scratch_teardown);
    tcase_add_loop_test(bad, test_corrupt_field, 0, NMUT);
    tcase_add_loop_test(bad, test_corrupt_f32, 0, 2);
    tcase_add_loop_test(bad, test_truncated, 0, NTRUNC);
    tcase_add_loop_test(bad, test_trailing_byte, 0, 2);
    tcase_add_loop_test(bad, test_foreign_files, 0, 5);
    tcase_add_test(bad, test_missing_file);
    tcase_add_loop_test(bad, test_random_damage, 0, 2);
    tcase_add_loop_test(bad, test_hostile_header, 0, 5);
    tcase_add_test(bad, test_max_layers_truncated);
    tcase_add_loop_test(bad, test_corrupt_section, 0, NSMUT);
    tcase_add_loop_test(bad, test_bad_section_list, 0, 10);
    tcase_add_loop_test(bad, test_truncated_sections, 0, 2 * NSTRUNC);
    tcase_add_loop_test(bad, test_trailing_after_sections, 0, 2);
    tcase_add_loop_test(bad, test_random_damage_sections, 0, 2);
    suite_add_tcase(s, bad);

    TCase *resume = tcase_create("resume");
    tcase_add_checked_fixture(resume, scratch_setup, scratch_teardown);
    tcase_add_loop_test(resume, test_exact_resume, 0, 8);
    tcase_add_test(resume, test_resume_done);
    suite_add_tcase(s, resume);

    TCase *atomic = tcase_create("atomic_save");
    tcase_add_checked_fixture(atomic, scratch_setup, scratch_teardown);
    tcase_add_test(atomic, test_save_replaces);
    tcase_add_test(atomic, test_wrappers_reached);
    tcase_add_test(atomic, test_save_takes_over_leftover);
    tcase_add_test(atomic, test_kill_during_save);
    tcase_add_loop_test(atomic, test_save_fault, 0, 4 * NINJ);
    tcase_add_loop_test(atomic, test_dir_fsync, 0, 2);
    suite_add_tcase(s, atomic);

    TCase *args = tcase_create("arguments");
    tcase_add_checked_fixture(args, scratch_setup, scratch_teardown);
    tcase_add_test(args, test_save_bad_args);
    tcase_add_test(args, test_save_nomem);
    tcase_add_test(args, test_load_bad_args);
    tcase_add_test(args, test_save_state_bad_args);
    tcase_add_test(args, test_load_state_bad_args);
    tcase_add_loop_test(args, test_unused_negative_counts, 0, 2);
    suite_add_tcase(s, args);
    return s;
}

int main(void)
{
    return tu_run_suite(model_suite());
}
