/* test_model.c: the model file: the exact byte layout, bitwise round trips, every corrupt, truncated,
 * foreign or hostile file, atomic saves under injected write/fsync/rename/fclose failures, bad arguments. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <dirent.h>
#include <errno.h>
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
static char dir[64];
static char path[128];

static void scratch_setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/bp_test_model_XXXXXX");
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

/* A sentinel *out: a failing load must leave it alone. */
static bp_net *const UNTOUCHED = (bp_net *)&fault;

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
    const bp_dtype dt = _i ? BP_F64 : BP_F32;
    const size_t es = _i ? 8 : 4;
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
    ck_assert_int_eq(bp_model_save(net, path), BP_OK);

    unsigned char want[80] = {'B', 'P', 'M', 'O', 'D', 'E', 'L', 0,   /* magic */
                              1, 0, 0, 0,                              /* version */
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

    bytes got = read_file(path);
    ck_assert_uint_eq(got.n, n);
    for (size_t k = 0; k < n; k++)
        ck_assert_msg(got.p[k] == want[k], "byte %zu: 0x%02x, want 0x%02x", k, got.p[k], want[k]);
    free(got.p);
    /* The CRC is zlib's CRC-32, the standard one (its check value). */
    ck_assert_uint_eq(crc32(0L, (const unsigned char *)"123456789", 9), 0xCBF43926u);

    /* A hand-built file loads too. */
    bp_net *back = NULL;
    write_file(path, want, n);
    ck_assert_int_eq(bp_model_load(&back, path, NULL), BP_OK);
    assert_same_net(net, back);
    bp_net_destroy(back);
    bp_net_destroy(net);
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
    ck_assert_uint_eq(file.n, 32 + 16 * (size_t)s->n_layers + 8 + bp_net_n_params(net) * esize + 4);
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
    char path2[160];
    snprintf(path2, sizeof path2, "%s/again.bpm", dir);
    ck_assert_int_eq(bp_model_save(back, path2), BP_OK);
    bytes a = read_file(path);
    assert_same_file(path2, &a);
    free(a.p);
    bp_net_destroy(back);
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

/* Out of memory at each allocation of a load: BP_ERR_NOMEM, *out untouched, nothing leaked. */
START_TEST(test_load_nomem)
{
    bp_net *net = make_net(BP_F32, &SHAPES[1], NULL);
    fill_bits(net, 11);
    ck_assert_int_eq(bp_model_save(net, path), BP_OK);
    bp_net_destroy(net);
    counter probe;
    const bp_allocator pa = counting(&probe, 0);
    bp_net *back = NULL;
    ck_assert_int_eq(bp_model_load(&back, path, &pa), BP_OK);
    bp_net_destroy(back);
    const long total = probe.allocs;
    ck_assert_int_ge(total, 2);
    for (long k = 1; k <= total; k++) {
        counter c;
        const bp_allocator a = counting(&c, k);
        bp_net *out = UNTOUCHED;
        stale_error();
        ck_assert_int_eq(bp_model_load(&out, path, &a), BP_ERR_NOMEM);
        ck_assert_ptr_eq(out, UNTOUCHED);
        assert_error_has(path);
        ck_assert_int_eq(c.allocs, c.frees);
    }
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Corrupt files. The base: float64, n_in 3, layers {4 tanh, 2 identity}, softmax cross-entropy:
 * 26 parameters; layer table at 32, n_params at 64, parameters at 72, CRC at 280, 284 bytes.
 * ------------------------------------------------------------------------------------------- */
enum { B_NPARAMS = 26, B_PARAMS = 72, B_CRC = 72 + 26 * 8, B_SIZE = B_CRC + 4 };

static bytes base_file(bp_dtype dt)
{
    const bp_layer_spec l[2] = {{4, BP_ACT_TANH, 0.0}, {2, BP_ACT_IDENTITY, 0.0}};
    bp_net *net = NULL;
    ck_assert_int_eq(bp_net_create(&net, dt, 3, 2, l, BP_LOSS_SOFTMAX_XENT, NULL), BP_OK);
    fill_values(net, 3);
    ck_assert_int_eq(bp_model_save(net, path), BP_OK);
    bp_net_destroy(net);
    bytes b = read_file(path);
    ck_assert_uint_eq(b.n, (size_t)72 + 26 * (dt == BP_F32 ? 4 : 8) + 4);
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
    {"version 2", 8, 4, 2, 1, BP_ERR_UNSUPPORTED, BP_ERR_UNSUPPORTED, "version", "offset 8"},
    {"version max", 8, 4, 0xffffffffu, 1, BP_ERR_UNSUPPORTED, BP_ERR_UNSUPPORTED, "version", "offset 8"},
    {"byte order swapped", 12, 4, 0x04030201u, 1, F, F, "byte order", "offset 12"},
    {"byte order one byte", 13, 1, 0x01, 1, F, F, "byte order", "offset 12"},
    {"dtype 0", 16, 4, 0, 1, F, F, "dtype", "offset 16"},
    {"dtype 3", 16, 4, 3, 1, F, F, "dtype", "offset 16"},
    {"loss 0", 20, 4, 0, 1, F, F, "loss", "offset 20"},
    {"loss 4", 20, 4, 4, 1, F, F, "loss", "offset 20"},
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
    {"first parameter bit", B_PARAMS, 1, 0x01, 0, F, F, "CRC", "offset 280"},
    {"middle parameter sign", B_PARAMS + 13 * 8 + 7, 1, 0x80, 0, F, F, "CRC", "offset 280"},
    {"last parameter byte", B_CRC - 1, 1, 0x10, 0, F, F, "CRC", "offset 280"},
    {"valid field changed, CRC stale", 36, 4, BP_ACT_RELU, 0, F, F, "CRC", "offset 280"},
    {"CRC first byte", B_CRC, 1, 0x01, 0, F, F, "CRC", "offset 280"},
    {"CRC last byte", B_CRC + 3, 1, 0x80, 0, F, F, "CRC", "offset 280"},
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

static const size_t TRUNCATIONS[] = {0, 1, 7, 8, 12, 20, 31, 32, 33, 40, 47, 63, 64, 70, 71, 72, 77,
                                     B_PARAMS + 13 * 8, B_CRC - 1, B_CRC, B_CRC + 1, B_SIZE - 1};
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
    char p[200];
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
        char p2[160];
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
    char tmp[160];
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
    const injection *inj = &INJECTIONS[_i / 2];
    const int with_old = _i % 2 == 0;
    bp_net *old = make_net(BP_F32, &SHAPES[1], NULL), *net = make_net(BP_F64, &SHAPES[2], NULL);
    fill_bits(old, 3);
    fill_bits(net, 4);
    bytes before = {NULL, 0};
    if (with_old) {
        ck_assert_int_eq(bp_model_save(old, path), BP_OK);
        before = read_file(path);
    }
    long at = inj->at;
    if (at < 0) {
        char p2[160];
        snprintf(p2, sizeof p2, "%s/probe.bpm", dir);
        arm(F_NONE, 0, 0);
        const bp_status probe = bp_model_save(net, p2);
        disarm();
        ck_assert_int_eq(probe, BP_OK);
        at = fault.calls[inj->fn];
        ck_assert_int_eq(unlink(p2), 0);
    }
    stale_error();   /* before arming: every Check assertion writes to Check's own channel */
    arm(inj->fn, at, inj->err);
    const bp_status st = bp_model_save(net, path);
    disarm();
    ck_assert_int_ge(fault.calls[inj->fn], at);   /* the fault was really injected */
    ck_assert_msg(st == BP_ERR_IO, "status %d: %s", (int)st, bp_last_error());
    assert_error_has("bp_model_save");
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
    ck_assert_int_eq(bp_model_save(net, path), BP_OK);
    bp_net *back = NULL;
    ck_assert_int_eq(bp_model_load(&back, path, NULL), BP_OK);
    assert_same_net(net, back);
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
    char p[200];
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

static Suite *model_suite(void)
{
    Suite *s = suite_create("model");

    TCase *fmt = tcase_create("format");
    tcase_add_checked_fixture(fmt, scratch_setup, scratch_teardown);
    tcase_add_loop_test(fmt, test_exact_layout, 0, 2);
    tcase_add_loop_test(fmt, test_round_trip, 0, 2 * NSHAPES);
    tcase_add_loop_test(fmt, test_loaded_net_runs, 0, 2);
    tcase_add_test(fmt, test_load_allocator);
    tcase_add_test(fmt, test_load_nomem);
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
    suite_add_tcase(s, bad);

    TCase *atomic = tcase_create("atomic_save");
    tcase_add_checked_fixture(atomic, scratch_setup, scratch_teardown);
    tcase_add_test(atomic, test_save_replaces);
    tcase_add_test(atomic, test_wrappers_reached);
    tcase_add_test(atomic, test_save_takes_over_leftover);
    tcase_add_test(atomic, test_kill_during_save);
    tcase_add_loop_test(atomic, test_save_fault, 0, 2 * NINJ);
    tcase_add_loop_test(atomic, test_dir_fsync, 0, 2);
    suite_add_tcase(s, atomic);

    TCase *args = tcase_create("arguments");
    tcase_add_checked_fixture(args, scratch_setup, scratch_teardown);
    tcase_add_test(args, test_save_bad_args);
    tcase_add_test(args, test_save_nomem);
    tcase_add_test(args, test_load_bad_args);
    suite_add_tcase(s, args);
    return s;
}

int main(void)
{
    return tu_run_suite(model_suite());
}
