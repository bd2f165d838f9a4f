/* SPDX-License-Identifier: MIT */
/* test_args.c: every bad argument of every public function, status strings, version, empty batches, the last-error message. */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#include "testutil.h"

/* The buffers a call may use, by role. B_LOSS holds doubles whatever the precision. */
enum buf_id { B_X, B_W, B_B, B_Z, B_Y, B_DY, B_DZ, B_DW, B_DB, B_DX, B_T, B_P, B_LOSS, NBUF };
static const char *const buf_names[NBUF] = {"X", "W", "b", "Z", "Y", "dY", "dZ", "dW", "db", "dX", "Tgt", "p", "loss"};
/* Room for every valid baseline shape below, in either precision. */
#define BUFBYTES 512

/* Every argument of every kernel: a record the per-function thunks unpack. layout and act
 * are plain ints so that values outside the enums can be passed. */
typedef struct call {
    int layout, act;
    bp_int n, n_in, n_out, m;
    bp_int ld[NBUF];
    void *p[NBUF];
    const int32_t *labels;
    int32_t label;
    double alpha, beta, divisor;
} call;

enum fn_id { FN_FWD, FN_BWD, FN_ACTF, FN_ACTB, FN_XENT, FN_PROB, FN_BCE, FN_MSE, FN_LOGREG, FN_COUNT };
static const char *const fn_base[FN_COUNT] = {"dense_forward", "dense_backward", "act_forward", "act_backward",
                                              "softmax_xent", "softmax_xent_prob", "sigmoid_bce", "mse",
                                              "logreg_grad"};

typedef bp_status thunk(const call *c, int naive);

/* One precision: element size, typed element access, and the kernels as thunks. */
typedef struct typed {
    size_t size;
    void (*set)(void *buf, size_t i, double v);
    double (*get)(const void *buf, size_t i);
    thunk *run[FN_COUNT];
} typed;

#define T float
#define K(name) bp_s##name
#define A(name) name##_s
#include "args_tmpl.h"
#undef T
#undef K
#undef A
#define T double
#define K(name) bp_d##name
#define A(name) name##_d
#include "args_tmpl.h"

static const typed *const types[2] = {&typed_s, &typed_d};

/* Outputs of each function (-1 ends a list); every other buffer is an input. */
static const int outs[FN_COUNT][5] = {
    [FN_FWD] = {B_Z, B_Y, -1},
    [FN_BWD] = {B_DZ, B_DW, B_DB, B_DX, -1},
    [FN_ACTF] = {B_Y, -1},
    [FN_ACTB] = {B_DZ, -1},
    [FN_XENT] = {B_LOSS, B_DZ, -1},
    [FN_PROB] = {B_LOSS, B_DZ, -1},
    [FN_BCE] = {B_LOSS, B_DZ, -1},
    [FN_MSE] = {B_LOSS, B_DZ, -1},
    [FN_LOGREG] = {B_P, B_LOSS, B_DW, B_DB, -1},
};

static int is_out(int fn, int id)
{
    for (const int *o = outs[fn]; *o >= 0; o++)
        if (*o == id)
            return 1;
    return 0;
}

typedef struct bufs {
    unsigned char b[NBUF][BUFBYTES];
    int32_t labels[8];
} bufs;

/* A valid call of fn: n = 3 samples, n_in = 4, n_out = m = 5, row-major, sigmoid, leading
 * dimensions equal to the widths, inputs 0.25, outputs (and the loss) sentinel bytes. */
static call baseline(int fn, const typed *ty, bufs *B)
{
    call c;
    memset(&c, 0, sizeof c);
    c.layout = BP_ROW_MAJOR;
    c.act = BP_ACT_SIGMOID;
    c.n = 3;
    c.n_in = 4;
    c.n_out = c.m = 5;
    for (int id = 0; id < NBUF; id++) {
        c.ld[id] = 5;
        c.p[id] = B->b[id];
        if (id == B_LOSS || is_out(fn, id))
            tu_sentinel(B->b[id], BUFBYTES);
        else
            for (size_t i = 0; i < BUFBYTES / ty->size; i++)
                ty->set(B->b[id], i, 0.25);
    }
    c.ld[B_X] = c.ld[B_W] = c.ld[B_DW] = c.ld[B_DX] = 4;
    for (int i = 0; i < 8; i++)
        B->labels[i] = i % 5;
    c.labels = B->labels;
    c.label = 1;
    c.alpha = 0;
    c.beta = 0;
    c.divisor = 3;
    return c;
}

/* One argument change. Fields start at 1 so that a zeroed entry ends a case's list. */
enum field {
    F_END, F_LAYOUT, F_ACT, F_ALPHA, F_BETA, F_DIV, F_N, F_NIN, F_NOUT, F_M, F_LABEL,
    F_LABELS_NULL, F_LABEL_FIRST, F_LABEL_LAST, F_Z_IS_Y,
    F_LD = 100,  /* + buffer id: that leading dimension */
    F_NULL = 200 /* + buffer id: that pointer NULL */
};
#define LD(id) (F_LD + (id))
#define NUL(id) F_NULL + (id), 0 /* a mod: that pointer NULL */

typedef struct mod {
    int f;
    double v;
} mod;

static void apply(call *c, bufs *B, mod md)
{
    switch (md.f) {
    case F_LAYOUT: c->layout = (int)md.v; break;
    case F_ACT: c->act = (int)md.v; break;
    case F_ALPHA: c->alpha = md.v; break;
    case F_BETA: c->beta = md.v; break;
    case F_DIV: c->divisor = md.v; break;
    case F_N: c->n = (bp_int)md.v; break;
    case F_NIN: c->n_in = (bp_int)md.v; break;
    case F_NOUT: c->n_out = (bp_int)md.v; break;
    case F_M: c->m = (bp_int)md.v; break;
    case F_LABEL: c->label = (int32_t)md.v; break;
    case F_LABELS_NULL: c->labels = NULL; break;
    case F_LABEL_FIRST: B->labels[0] = (int32_t)md.v; break;
    case F_LABEL_LAST: B->labels[c->n - 1] = (int32_t)md.v; break;
    case F_Z_IS_Y: c->p[B_Z] = c->p[B_Y]; break;
    default:
        if (md.f >= F_NULL)
            c->p[md.f - F_NULL] = NULL;
        else
            c->ld[md.f - F_LD] = (bp_int)md.v;
    }
}

/* The header names no status for a non-finite alpha, beta or divisor; they are bad
 * arguments (BP_ERR_NONFINITE, "a NaN or Inf where a finite value is required", would fit
 * as well; see the report). */
#define NONFINITE_SCALAR BP_ERR_ARG

typedef struct bad_case {
    const char *what;
    bp_status want;
    mod set[4];
} bad_case;

#define ARG BP_ERR_ARG
#define OVF BP_ERR_OVERFLOW
#define ROW BP_ROW_MAJOR
#define COL BP_COL_MAJOR
#define LEAKY BP_ACT_LEAKY_RELU
#define ELU BP_ACT_ELU

/* Baseline: n = 3, n_in = 4, n_out = m = 5, every ld equal to its width (W, dW: 4 = n_in). */
#define BAD_LAYOUT {"layout 0", ARG, {{F_LAYOUT, 0}}}, {"layout 103", ARG, {{F_LAYOUT, 103}}}
#define BAD_N {"n -1", ARG, {{F_N, -1}}}, {"n INT_MIN", ARG, {{F_N, INT_MIN}}}
#define BAD_WIDTHS                                                                                                  \
    {"n_in 0", ARG, {{F_NIN, 0}}}, {"n_in -1", ARG, {{F_NIN, -1}}}, {"n_out 0", ARG, {{F_NOUT, 0}}},               \
    {"n_out -1", ARG, {{F_NOUT, -1}}}
#define BAD_M {"m 0", ARG, {{F_M, 0}}}, {"m -1", ARG, {{F_M, -1}}}
#define BAD_ACT                                                                                                     \
    {"act -1", ARG, {{F_ACT, -1}}}, {"act 10", ARG, {{F_ACT, 10}}},                                                 \
    {"leaky relu alpha -0.5", ARG, {{F_ACT, LEAKY}, {F_ALPHA, -0.5}}},                                              \
    {"elu alpha 0", ARG, {{F_ACT, ELU}, {F_ALPHA, 0}}}, {"elu alpha -1", ARG, {{F_ACT, ELU}, {F_ALPHA, -1}}},     \
    {"leaky relu alpha NaN", NONFINITE_SCALAR, {{F_ACT, LEAKY}, {F_ALPHA, NAN}}},                                   \
    {"leaky relu alpha +Inf", NONFINITE_SCALAR, {{F_ACT, LEAKY}, {F_ALPHA, INFINITY}}},                             \
    {"elu alpha NaN", NONFINITE_SCALAR, {{F_ACT, ELU}, {F_ALPHA, NAN}}},                                            \
    {"elu alpha +Inf", NONFINITE_SCALAR, {{F_ACT, ELU}, {F_ALPHA, INFINITY}}}
#define BAD_DIVISOR                                                                                                 \
    {"divisor 0", ARG, {{F_DIV, 0}}}, {"divisor -1", ARG, {{F_DIV, -1}}},                                           \
    {"divisor NaN", NONFINITE_SCALAR, {{F_DIV, NAN}}}, {"divisor +Inf", NONFINITE_SCALAR, {{F_DIV, INFINITY}}}
#define BAD_BETA                                                                                                    \
    {"beta NaN", NONFINITE_SCALAR, {{F_BETA, NAN}}}, {"beta +Inf", NONFINITE_SCALAR, {{F_BETA, INFINITY}}},         \
    {"beta -Inf", NONFINITE_SCALAR, {{F_BETA, -INFINITY}}}

static const bad_case fwd_cases[] = {
    BAD_LAYOUT, BAD_N, BAD_WIDTHS, BAD_ACT,
    {"X NULL", ARG, {{NUL(B_X)}}},
    {"W NULL", ARG, {{NUL(B_W)}}},
    {"Y NULL", ARG, {{NUL(B_Y)}}},
    {"Z is Y", ARG, {{F_Z_IS_Y, 0}}},
    {"ldx 3 < n_in", ARG, {{LD(B_X), 3}}},
    {"row-major ldw 3 < n_in", ARG, {{LD(B_W), 3}}},
    {"col-major ldw 4 < n_out (>= n_in)", ARG, {{F_LAYOUT, COL}, {LD(B_W), 4}}},
    {"ldz 4 < n_out", ARG, {{LD(B_Z), 4}}},
    {"ldy 4 < n_out", ARG, {{LD(B_Y), 4}}},
    {"n * ldx overflows", OVF, {{F_N, INT_MAX}, {LD(B_X), INT_MAX}}},
    {"n_out * ldw overflows", OVF, {{F_NOUT, INT_MAX}, {LD(B_W), INT_MAX}, {LD(B_Y), INT_MAX}, {LD(B_Z), INT_MAX}}},
};

static const bad_case bwd_cases[] = {
    BAD_LAYOUT, BAD_N, BAD_WIDTHS, BAD_ACT, BAD_BETA,
    {"X NULL", ARG, {{NUL(B_X)}}},
    {"W NULL", ARG, {{NUL(B_W)}}},
    {"Y NULL with sigmoid (reads Y)", ARG, {{NUL(B_Y)}}},
    {"Z NULL with gelu", ARG, {{F_ACT, BP_ACT_GELU}, {NUL(B_Z)}}},
    {"Z NULL with gelu_tanh", ARG, {{F_ACT, BP_ACT_GELU_TANH}, {NUL(B_Z)}}},
    {"dY NULL", ARG, {{NUL(B_DY)}}},
    {"dZ NULL", ARG, {{NUL(B_DZ)}}},
    {"dW NULL", ARG, {{NUL(B_DW)}}},
    {"ldx 3 < n_in", ARG, {{LD(B_X), 3}}},
    {"row-major ldw 3 < n_in", ARG, {{LD(B_W), 3}}},
    {"col-major ldw 4 < n_out (>= n_in)", ARG, {{F_LAYOUT, COL}, {LD(B_W), 4}, {LD(B_DW), 5}}},
    {"ldz 4 < n_out with gelu", ARG, {{F_ACT, BP_ACT_GELU}, {LD(B_Z), 4}}},
    {"ldy 4 < n_out with sigmoid", ARG, {{LD(B_Y), 4}}},
    {"lddy 4 < n_out", ARG, {{LD(B_DY), 4}}},
    {"lddz 4 < n_out", ARG, {{LD(B_DZ), 4}}},
    {"row-major lddw 3 < n_in", ARG, {{LD(B_DW), 3}}},
    {"col-major lddw 4 < n_out (>= n_in)", ARG, {{F_LAYOUT, COL}, {LD(B_W), 5}, {LD(B_DW), 4}}},
    {"lddx 3 < n_in", ARG, {{LD(B_DX), 3}}},
    {"n * ldx overflows", OVF, {{F_N, INT_MAX}, {LD(B_X), INT_MAX}}},
};

static const bad_case actf_cases[] = {
    BAD_N, BAD_M, BAD_ACT,
    {"Z NULL", ARG, {{NUL(B_Z)}}},
    {"Y NULL", ARG, {{NUL(B_Y)}}},
    {"ldz 4 < m", ARG, {{LD(B_Z), 4}}},
    {"ldy 4 < m", ARG, {{LD(B_Y), 4}}},
    {"n * ldz overflows", OVF, {{F_N, INT_MAX}, {LD(B_Z), INT_MAX}}},
};

static const bad_case actb_cases[] = {
    BAD_N, BAD_M, BAD_ACT,
    {"Y NULL with sigmoid (reads Y)", ARG, {{NUL(B_Y)}}},
    {"Z NULL with gelu", ARG, {{F_ACT, BP_ACT_GELU}, {NUL(B_Z)}}},
    {"Z NULL with gelu_tanh", ARG, {{F_ACT, BP_ACT_GELU_TANH}, {NUL(B_Z)}}},
    {"dY NULL", ARG, {{NUL(B_DY)}}},
    {"dZ NULL", ARG, {{NUL(B_DZ)}}},
    {"ldy 4 < m with sigmoid", ARG, {{LD(B_Y), 4}}},
    {"ldz 4 < m with gelu", ARG, {{F_ACT, BP_ACT_GELU}, {LD(B_Z), 4}}},
    {"lddy 4 < m", ARG, {{LD(B_DY), 4}}},
    {"lddz 4 < m", ARG, {{LD(B_DZ), 4}}},
    {"n * lddy overflows", OVF, {{F_N, INT_MAX}, {LD(B_DY), INT_MAX}}},
};

static const bad_case xent_cases[] = {
    BAD_N, BAD_M, BAD_DIVISOR,
    {"Z NULL", ARG, {{NUL(B_Z)}}},
    {"labels NULL", ARG, {{F_LABELS_NULL, 0}}},
    {"ldz 4 < m", ARG, {{LD(B_Z), 4}}},
    {"lddz 4 < m", ARG, {{LD(B_DZ), 4}}},
    {"labels[0] -1", ARG, {{F_LABEL_FIRST, -1}}},
    {"labels[n-1] m", ARG, {{F_LABEL_LAST, 5}}},
    {"n * ldz overflows", OVF, {{F_N, INT_MAX}, {LD(B_Z), INT_MAX}}},
};

/* softmax_xent_prob, sigmoid_bce, mse */
static const bad_case target_cases[] = {
    BAD_N, BAD_M, BAD_DIVISOR,
    {"Z NULL", ARG, {{NUL(B_Z)}}},
    {"Tgt NULL", ARG, {{NUL(B_T)}}},
    {"ldz 4 < m", ARG, {{LD(B_Z), 4}}},
    {"ldt 4 < m", ARG, {{LD(B_T), 4}}},
    {"lddz 4 < m", ARG, {{LD(B_DZ), 4}}},
    {"n * ldz overflows", OVF, {{F_N, INT_MAX}, {LD(B_Z), INT_MAX}}},
};

/* logreg_grad: n_out is n_classes, X holds x. */
static const bad_case logreg_cases[] = {
    BAD_LAYOUT, BAD_WIDTHS, BAD_DIVISOR, BAD_BETA,
    {"W NULL", ARG, {{NUL(B_W)}}},
    {"x NULL", ARG, {{NUL(B_X)}}},
    {"p NULL", ARG, {{NUL(B_P)}}},
    {"dW NULL", ARG, {{NUL(B_DW)}}},
    {"row-major ldw 3 < n_in", ARG, {{LD(B_W), 3}}},
    {"col-major ldw 4 < n_classes (>= n_in)", ARG, {{F_LAYOUT, COL}, {LD(B_W), 4}, {LD(B_DW), 5}}},
    {"row-major lddw 3 < n_in", ARG, {{LD(B_DW), 3}}},
    {"col-major lddw 4 < n_classes (>= n_in)", ARG, {{F_LAYOUT, COL}, {LD(B_W), 5}, {LD(B_DW), 4}}},
    {"label -1", ARG, {{F_LABEL, -1}}},
    {"label n_classes", ARG, {{F_LABEL, 5}}},
    {"n_classes * ldw overflows", OVF, {{F_NOUT, INT_MAX}, {LD(B_W), INT_MAX}}},
};

#define CASES(a) {a, sizeof a / sizeof *a}
static const struct {
    const bad_case *cases;
    size_t count;
} fn_cases[FN_COUNT] = {
    CASES(fwd_cases), CASES(bwd_cases), CASES(actf_cases), CASES(actb_cases), CASES(xent_cases),
    CASES(target_cases), CASES(target_cases), CASES(target_cases), CASES(logreg_cases),
};

/* Loop index of the per-function tests: function, precision, BLAS or naive. */
typedef struct variant {
    int fn, naive;
    const typed *ty;
    char name[48]; /* "bp_sdense_forward_naive" */
} variant;

static variant variant_of(int i)
{
    variant v;
    v.fn = i / 4;
    v.naive = i % 2;
    v.ty = types[(i / 2) % 2];
    snprintf(v.name, sizeof v.name, "bp_%c%s%s", "sd"[(i / 2) % 2], fn_base[v.fn], v.naive ? "_naive" : "");
    return v;
}

/* Leaves an error message that does not name `name`, so that a later match is fresh. */
static void prime_last_error(const char *name)
{
    double d = 0;
    const bp_status st = strstr(name, "mse") ? bp_dsigmoid_bce(-1, 1, &d, 1, &d, 1, 1, NULL, NULL, 1)
                                             : bp_dmse(-1, 1, &d, 1, &d, 1, 1, NULL, NULL, 1);
    ck_assert_int_eq(st, BP_ERR_ARG);
    ck_assert_msg(bp_last_error()[0] != '\0' && !strstr(bp_last_error(), name),
                  "priming the last error for %s left \"%s\"", name, bp_last_error());
}

/* Nonzero (and a message in why) if any output of fn was written. */
static int outputs_touched(int fn, const bufs *B, char *why, size_t len)
{
    for (const int *o = outs[fn]; *o >= 0; o++)
        if (!tu_is_sentinel(B->b[*o], BUFBYTES)) {
            snprintf(why, len, "output %s was written", buf_names[*o]);
            return 1;
        }
    return 0;
}

/* Every bad-argument case of one function: the documented status, no output written, and
 * bp_last_error() naming the function. All cases run; failures are listed on stderr. */
START_TEST(test_bad_args)
{
    const variant v = variant_of(_i);
    bufs *B = malloc(sizeof *B);
    ck_assert_ptr_nonnull(B);
    call c = baseline(v.fn, v.ty, B);
    const bp_status st0 = v.ty->run[v.fn](&c, v.naive);
    ck_assert_msg(st0 == BP_OK, "%s: the valid baseline call fails (%d): %s", v.name, (int)st0, bp_last_error());

    int failed = 0;
    char first[512] = "";
    for (size_t k = 0; k < fn_cases[v.fn].count; k++) {
        const bad_case *bc = &fn_cases[v.fn].cases[k];
        char why[400] = "";
        c = baseline(v.fn, v.ty, B);
        for (int j = 0; j < 4 && bc->set[j].f != F_END; j++)
            apply(&c, B, bc->set[j]);
        prime_last_error(v.name);
        const bp_status st = v.ty->run[v.fn](&c, v.naive);
        if (st != bc->want)
            snprintf(why, sizeof why, "status %d (%s), expected %d (%s); last error \"%s\"", (int)st,
                     bp_strerror(st), (int)bc->want, bp_strerror(bc->want), bp_last_error());
        else if (!outputs_touched(v.fn, B, why, sizeof why) && !strstr(bp_last_error(), v.name))
            snprintf(why, sizeof why, "bp_last_error() \"%s\" does not name the function", bp_last_error());
        if (why[0]) {
            fprintf(stderr, "FAIL %s, %s: %s\n", v.name, bc->what, why);
            if (!failed++)
                snprintf(first, sizeof first, "%s", why);
        }
    }
    free(B);
    ck_assert_msg(failed == 0, "%s: %d of %zu bad-argument cases failed (listed on stderr); first: %s", v.name, failed,
                  fn_cases[v.fn].count, first);
}
END_TEST

/* n == 0 returns BP_OK and writes nothing, with the per-sample arrays valid or NULL
 * (dense_backward with beta = 1, so dW and db are not scaled; see the next test).
 * A loss may store the empty sum, +0.0, in *loss ("*loss receives the sum over these n
 * samples"), or leave it alone (a quick return): the header allows both readings. */
START_TEST(test_empty_batch)
{
    static const int per_sample[] = {B_X, B_Z, B_Y, B_DY, B_DZ, B_DX, B_T};
    const variant v = variant_of(_i);
    bufs *B = malloc(sizeof *B);
    ck_assert_ptr_nonnull(B);
    for (int nulls = 0; nulls < 2; nulls++) {
        call c = baseline(v.fn, v.ty, B);
        char why[400];
        c.n = 0;
        c.beta = 1;
        if (nulls) {
            for (size_t k = 0; k < sizeof per_sample / sizeof *per_sample; k++)
                c.p[per_sample[k]] = NULL;
            c.labels = NULL;
        }
        const bp_status st = v.ty->run[v.fn](&c, v.naive);
        ck_assert_msg(st == BP_OK, "%s, n = 0%s: status %d: %s", v.name, nulls ? ", NULL arrays" : "", (int)st,
                      bp_last_error());
        double loss;
        memcpy(&loss, B->b[B_LOSS], sizeof loss);
        ck_assert_msg(tu_is_sentinel(&loss, sizeof loss) || (loss == 0 && !signbit(loss)),
                      "%s, n = 0: *loss = %g, neither untouched nor the empty sum 0", v.name, loss);
        tu_sentinel(B->b[B_LOSS], BUFBYTES);
        ck_assert_msg(!outputs_touched(v.fn, B, why, sizeof why), "%s, n = 0%s: %s", v.name,
                      nulls ? ", NULL arrays" : "", why);
    }
    free(B);
}
END_TEST

/* dense_backward with n == 0 still scales dW and db by beta, as gemm does with k == 0:
 * beta = 0 writes zeros without reading (dW, db hold NaN sentinels), beta = 0.5 halves;
 * dW's padding (lddw 6 > n_in 4), dZ and dX stay untouched. _i: precision x naive. */
START_TEST(test_empty_batch_backward_beta)
{
    const variant v = variant_of(FN_BWD * 4 + _i);
    bufs *B = malloc(sizeof *B);
    ck_assert_ptr_nonnull(B);
    for (int half = 0; half < 2; half++) {
        call c = baseline(FN_BWD, v.ty, B);
        const double beta = half ? 0.5 : 0.0, want = half ? 1.0 : 0.0;
        c.n = 0;
        c.beta = beta;
        c.ld[B_DW] = 6;
        if (half) {
            for (int o = 0; o < 5; o++) {
                v.ty->set(B->b[B_DB], (size_t)o, 2.0);
                for (int i = 0; i < 4; i++)
                    v.ty->set(B->b[B_DW], (size_t)(o * 6 + i), 2.0);
            }
        }
        ck_assert_int_eq(v.ty->run[FN_BWD](&c, v.naive), BP_OK);
        const size_t sz = v.ty->size;
        for (size_t k = 0; k < BUFBYTES / sz; k++) {
            const unsigned char *dw = B->b[B_DW] + k * sz, *db = B->b[B_DB] + k * sz;
            if (k < 30 && k % 6 < 4)
                ck_assert_msg(v.ty->get(B->b[B_DW], k) == want, "%s, n = 0, beta %g: dW[%zu] = %g, expected %g",
                              v.name, beta, k, v.ty->get(B->b[B_DW], k), want);
            else
                ck_assert_msg(tu_is_sentinel(dw, sz), "%s, n = 0, beta %g: dW element %zu (padding) written", v.name,
                              beta, k);
            if (k < 5)
                ck_assert_msg(v.ty->get(B->b[B_DB], k) == want, "%s, n = 0, beta %g: db[%zu] = %g, expected %g",
                              v.name, beta, k, v.ty->get(B->b[B_DB], k), want);
            else
                ck_assert_msg(tu_is_sentinel(db, sz), "%s, n = 0, beta %g: db element %zu written", v.name, beta, k);
        }
        ck_assert_msg(tu_is_sentinel(B->b[B_DZ], BUFBYTES) && tu_is_sentinel(B->b[B_DX], BUFBYTES),
                      "%s, n = 0: dZ or dX written", v.name);
    }
    free(B);
}
END_TEST

/* "Inputs are not scanned for NaN or Inf; NaN in, NaN out": a NaN in the first element of
 * X (dense_forward), Z (act_forward, the losses) or dY (dense_backward) is no error and
 * reaches the outputs that depend on it. _i: precision x naive. */
START_TEST(test_nan_in_nan_out)
{
    static const struct {
        int fn, in, out;
    } cases[] = {{FN_FWD, B_X, B_Y}, {FN_ACTF, B_Z, B_Y}, {FN_BWD, B_DY, B_DW},
                 {FN_XENT, B_Z, B_DZ}, {FN_MSE, B_Z, B_DZ}, {FN_BCE, B_Z, B_DZ}};
    bufs *B = malloc(sizeof *B);
    ck_assert_ptr_nonnull(B);
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const variant v = variant_of(cases[k].fn * 4 + _i);
        call c = baseline(v.fn, v.ty, B);
        v.ty->set(B->b[cases[k].in], 0, NAN);
        const bp_status st = v.ty->run[v.fn](&c, v.naive);
        ck_assert_msg(st == BP_OK, "%s with a NaN in %s: status %d (%s)", v.name, buf_names[cases[k].in], (int)st,
                      bp_last_error());
        ck_assert_msg(isnan(v.ty->get(B->b[cases[k].out], 0)), "%s with a NaN in %s: %s[0] = %g, not NaN", v.name,
                      buf_names[cases[k].in], buf_names[cases[k].out], v.ty->get(B->b[cases[k].out], 0));
        if (v.fn >= FN_XENT) {
            double loss;
            memcpy(&loss, B->b[B_LOSS], sizeof loss);
            ck_assert_msg(isnan(loss), "%s with a NaN logit: loss %g, not NaN", v.name, loss);
        }
    }
    free(B);
}
END_TEST

START_TEST(test_strerror)
{
    const char *msg[8];
    for (int s = 0; s < 8; s++) {
        msg[s] = bp_strerror((bp_status)s);
        ck_assert_msg(msg[s] != NULL && msg[s][0] != '\0', "bp_strerror(%d) is NULL or empty", s);
        for (int t = 0; t < s; t++)
            ck_assert_msg(strcmp(msg[s], msg[t]) != 0, "bp_strerror(%d) == bp_strerror(%d) = \"%s\"", s, t, msg[s]);
    }
    static const int unknown[] = {8, 99, -1, INT_MAX};
    for (size_t k = 0; k < sizeof unknown / sizeof *unknown; k++) {
        const char *u = bp_strerror((bp_status)unknown[k]);
        ck_assert_msg(u != NULL && u[0] != '\0', "bp_strerror(%d) (unknown) is NULL or empty", unknown[k]);
        for (int s = 0; s < 8; s++)
            ck_assert_msg(strcmp(u, msg[s]) != 0, "bp_strerror(%d) (unknown) equals that of status %d", unknown[k], s);
    }
}
END_TEST

START_TEST(test_version)
{
    char macros[32];
    snprintf(macros, sizeof macros, "%d.%d.%d", BP_VERSION_MAJOR, BP_VERSION_MINOR, BP_VERSION_PATCH);
    ck_assert_ptr_nonnull(bp_version());
    ck_assert_str_eq(bp_version(), BP_PROJECT_VERSION);  /* meson.build's project version */
    ck_assert_str_eq(bp_version(), macros);
}
END_TEST

START_TEST(test_act_needs_z)
{
    for (int a = 0; a < TU_NACT; a++) {
        const int want = a == BP_ACT_GELU || a == BP_ACT_GELU_TANH;
        ck_assert_msg((bp_act_needs_z((bp_act)a) != 0) == want, "bp_act_needs_z(%s) = %d", tu_act_name((bp_act)a),
                      bp_act_needs_z((bp_act)a));
    }
}
END_TEST

/* In a new thread: the message starts empty, and an error there names its own function. */
static int fresh_thread(void *arg)
{
    (void)arg;
    if (bp_last_error()[0] != '\0')
        return 1;
    if (bp_sact_forward((bp_act)BP_ACT_SIGMOID, 0, -1, 1, NULL, 1, NULL, 1) != BP_ERR_ARG)
        return 2;
    if (!strstr(bp_last_error(), "bp_sact_forward"))
        return 3;
    return 0;
}

/* bp_last_error() is per thread, empty before any error, and not cleared by a successful call. */
START_TEST(test_last_error)
{
    double z[2] = {1, 2}, t[2] = {0, 1}, loss;
    ck_assert_int_eq(bp_dmse(-1, 2, z, 2, t, 2, 1, &loss, NULL, 2), BP_ERR_ARG);
    char before[512];
    snprintf(before, sizeof before, "%s", bp_last_error());
    ck_assert_msg(strstr(before, "bp_dmse") != NULL, "last error \"%s\" does not name bp_dmse", before);

    thrd_t th;
    int rc = -1;
    ck_assert_int_eq(thrd_create(&th, fresh_thread, NULL), thrd_success);
    ck_assert_int_eq(thrd_join(th, &rc), thrd_success);
    ck_assert_msg(rc == 0, "in a new thread: %s",
                  rc == 1 ? "bp_last_error() not empty before any error"
                          : rc == 2 ? "bad n not rejected" : "the message does not name bp_sact_forward");
    ck_assert_str_eq(bp_last_error(), before); /* the other thread's error did not leak here */

    ck_assert_int_eq(bp_dmse(1, 2, z, 2, t, 2, 1, &loss, NULL, 2), BP_OK);
    ck_assert_str_eq(bp_last_error(), before); /* success does not clear it */
}
END_TEST

/* The two losses whose targets have a domain check it before writing anything:
 * NaN/Inf -> BP_ERR_NONFINITE, a finite value outside -> BP_ERR_ARG (kernels.h). */
START_TEST(test_target_domain)
{
    enum { N = 2, M = 3 };
    static const struct { int bce; double bad; bp_status want; } cases[] = {
        {0, -0.25, BP_ERR_ARG}, {0, NAN, BP_ERR_NONFINITE}, {0, INFINITY, BP_ERR_NONFINITE},
        {1, -0.25, BP_ERR_ARG}, {1, 1.5, BP_ERR_ARG}, {1, NAN, BP_ERR_NONFINITE},
        {1, -INFINITY, BP_ERR_NONFINITE},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++)
        for (int naive = 0; naive < 2; naive++) {
            double Zd[N * M] = {0.5, -1, 2, 0, 1, -3}, Td[N * M] = {0.2, 0.3, 0.5, 0, 1, 0};
            float Zs[N * M], Ts[N * M], dZs[N * M];
            double dZd[N * M], loss;
            Td[N * M - 1] = cases[k].bad;  /* the last element: every other one is checked first */
            for (int i = 0; i < N * M; i++) {
                Zs[i] = (float)Zd[i];
                Ts[i] = (float)Td[i];
            }
            tu_sentinel(dZd, sizeof dZd);
            tu_sentinel(dZs, sizeof dZs);
            tu_sentinel(&loss, sizeof loss);
            bp_status sd, ss;
            if (cases[k].bce) {
                sd = (naive ? bp_dsigmoid_bce_naive : bp_dsigmoid_bce)(N, M, Zd, M, Td, M, N, &loss, dZd, M);
                ss = (naive ? bp_ssigmoid_bce_naive : bp_ssigmoid_bce)(N, M, Zs, M, Ts, M, N, &loss, dZs, M);
            } else {
                sd = (naive ? bp_dsoftmax_xent_prob_naive : bp_dsoftmax_xent_prob)(N, M, Zd, M, Td, M, N, &loss, dZd, M);
                ss = (naive ? bp_ssoftmax_xent_prob_naive : bp_ssoftmax_xent_prob)(N, M, Zs, M, Ts, M, N, &loss, dZs, M);
            }
            ck_assert_msg(sd == cases[k].want && ss == cases[k].want,
                          "case %zu (naive %d): statuses %d/%d, want %d", k, naive, sd, ss, cases[k].want);
            ck_assert_msg(strstr(bp_last_error(), "Tgt[1][2]") != NULL, "message: %s", bp_last_error());
            ck_assert(tu_is_sentinel(dZd, sizeof dZd) && tu_is_sentinel(dZs, sizeof dZs));
            ck_assert(tu_is_sentinel(&loss, sizeof loss));
        }
}
END_TEST

static Suite *args_suite(void)
{
    Suite *s = suite_create("args");
    TCase *bad = tcase_create("bad_arguments");
    tcase_add_loop_test(bad, test_bad_args, 0, FN_COUNT * 4);
    suite_add_tcase(s, bad);

    TCase *misc = tcase_create("status_and_edges");
    tcase_add_loop_test(misc, test_empty_batch, 0, FN_LOGREG * 4); /* logreg_grad has no batch */
    tcase_add_loop_test(misc, test_empty_batch_backward_beta, 0, 4);
    tcase_add_loop_test(misc, test_nan_in_nan_out, 0, 4);
    tcase_add_test(misc, test_target_domain);
    tcase_add_test(misc, test_strerror);
    tcase_add_test(misc, test_version);
    tcase_add_test(misc, test_act_needs_z);
    tcase_add_test(misc, test_last_error);
    suite_add_tcase(s, misc);
    return s;
}

int main(void)
{
    return tu_run_suite(args_suite());
}
