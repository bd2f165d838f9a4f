/* SPDX-License-Identifier: MIT */
/* test_nomem.c: every allocation of every allocating call of the public API refused in turn:
 * BP_ERR_NOMEM naming the call, nothing leaked, the caller's objects unchanged and usable; the
 * passes and steps allocate nothing. Prints how many allocation points each call has. */
#define _DEFAULT_SOURCE  /* mkdtemp, MAP_ANONYMOUS */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "nettest_util.h"

/* ---- the allocator ---------------------------------------------------------------------------- */

/* nt_counter refuses every allocation from the k-th on; in `once` mode only the k-th is refused,
 * so a call that goes on after a refusal (cleanup, a fallback) finds memory again. Each test runs
 * in both modes. */
typedef struct nm_counter {
    nt_counter c;  /* first, so that nt_alloc and nt_free can take this struct as their context */
    int once;
} nm_counter;

static void *nm_alloc(void *ctx, size_t size)
{
    nm_counter *m = ctx;
    void *p = nt_alloc(&m->c, size);
    if (!p && m->once)
        m->c.fail_after = -1;
    return p;
}

/* ---- the tally, printed by main -------------------------------------------------------------- */

/* Allocation points per call. It lives in memory shared with the processes Check forks for the
 * tests, so main sees what every test recorded. */
typedef struct tally {
    int n;
    struct {
        char label[56];
        long lo, hi;  /* the same call may have more points in double (larger buffers grow more) */
    } e[40];
} tally;

static tally *points_seen;

static void tally_add(const char *label, long points)
{
    int i = 0;
    while (i < points_seen->n && strcmp(points_seen->e[i].label, label) != 0)
        i++;
    ck_assert_int_lt(i, (int)(sizeof points_seen->e / sizeof points_seen->e[0]));
    if (i == points_seen->n) {
        points_seen->n++;
        snprintf(points_seen->e[i].label, sizeof points_seen->e[i].label, "%s", label);
        points_seen->e[i].lo = points_seen->e[i].hi = points;
    }
    points_seen->e[i].lo = points < points_seen->e[i].lo ? points : points_seen->e[i].lo;
    points_seen->e[i].hi = points > points_seen->e[i].hi ? points : points_seen->e[i].hi;
}

/* ---- the fixture: a network, its data, and what a call under test writes ---------------------- */

enum { NIN = 4, NOUT = 3, NL = 3, N = 10, MB = 3 };

static const bp_layer_spec layers[NL] = {{6, BP_ACT_GELU, 0}, {5, BP_ACT_TANH, 0}, {NOUT, BP_ACT_IDENTITY, 0}};

/* What a failed call must leave where its output goes. */
static int marker;
#define UNTOUCHED ((void *)&marker)

/* Every file a test writes lives here: made by main before the run, removed after it. */
static char tmpdir[64];

enum { F_NET = 1, F_LOGREG = 2, F_PLANNED = 4, F_OPTIM = 8 };

typedef struct fixture {
    bp_dtype dt;
    int index;           /* the loop test's _i: bit 0 the dtype, bit 1 the mode, bit 2 two threads */
    int threads;
    nm_counter m;
    bp_allocator a;
    bp_net *net;         /* the caller's network (F_NET, F_LOGREG), allocated through a */
    bp_optim *opt, *sgd; /* Adam and plain SGD for it (F_OPTIM) */
    void *X;             /* N x NIN inputs of the dtype */
    int32_t y[N];
    void *Y0, *Y;        /* the outputs of the planned network before the calls, and scratch */
    void *p0;            /* its parameters before the calls */
    size_t ybytes, pbytes;
    /* What the calls under test write. */
    bp_net *out;
    bp_optim *opt_out;
    int iters;
    bp_dataset set;
    long rows;           /* the samples of the data file written */
    double mean[8], sd[8];
    void *X0;            /* the data set's values before the call */
    char path[128], lab[128];
    void *saved0;        /* the parameters in the model file before the call */
    bp_train_state ts, ts_out;  /* the training state saved, and where a load puts it */
} fixture;

static void forward(fixture *f, void *Y)
{
    tu_sentinel(Y, f->ybytes);
    NT_OK(bp_net_forward(f->net, N, f->X, NIN, Y, NOUT));
}

static void snapshot_params(fixture *f)
{
    free(f->p0);
    f->pbytes = bp_net_n_params(f->net) * nt_esize(f->dt);
    f->p0 = nt_memdup(bp_net_params(f->net), f->pbytes);
}

static int params_unchanged(fixture *f)
{
    return memcmp(bp_net_params(f->net), f->p0, f->pbytes) == 0;
}

/* A path in the temporary directory, distinct for every loop index of the test. */
static void tpath(fixture *f, char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%d-%s", tmpdir, f->index, name);
}

static void make_net(fixture *f, int flags)
{
    if (flags & F_LOGREG)
        NT_OK(bp_logreg_create(&f->net, f->dt, NIN, NOUT, &f->a));
    else
        f->net = nt_net(f->dt, NIN, NL, layers, BP_LOSS_SOFTMAX_XENT, &f->a);
    NT_OK(bp_net_set_threads(f->net, f->threads));
    NT_OK(bp_net_set_chunk_min(f->net, 1, 1));  /* cut every step: the helpers get work */
    NT_OK(bp_net_init(f->net, BP_INIT_GLOROT_UNIFORM, 3, 1));
    if (flags & F_PLANNED) {
        NT_OK(bp_net_plan(f->net, MB));
        forward(f, f->Y0);
    }
    if (flags & F_OPTIM) {
        f->opt = nt_optim(f->net, BP_OPT_ADAM, 0.01);
        f->sgd = nt_optim(f->net, BP_OPT_SGD, 0.1);
    }
    snapshot_params(f);
}

static void fixture_make(fixture *f, int index, int flags)
{
    memset(f, 0, sizeof *f);
    f->index = index;
    f->dt = index & 1 ? BP_F64 : BP_F32;
    f->threads = index & 4 ? 2 : 1;
    f->m.c = nt_counter_make();
    f->m.once = (index >> 1) & 1;
    f->a = (bp_allocator){nm_alloc, nt_free, &f->m};
    double Xd[N * NIN];
    nt_fill_xy(41, N * NIN, Xd, NULL, N, f->y, NOUT);
    f->X = nt_from_d(f->dt, Xd, N * NIN);
    f->ybytes = (size_t)N * NOUT * nt_esize(f->dt);
    f->Y0 = malloc(f->ybytes);
    f->Y = malloc(f->ybytes);
    ck_assert(f->Y0 && f->Y);
    if (flags & (F_NET | F_LOGREG))
        make_net(f, flags);
}

/* Frees everything; by then every block the allocator gave out must have come back. */
static void fixture_free(fixture *f)
{
    bp_optim_destroy(f->opt);
    bp_optim_destroy(f->sgd);
    bp_net_destroy(f->net);
    bp_dataset_free(&f->set);
    ck_assert_msg(f->m.c.allocs == f->m.c.frees, "%ld blocks allocated, %ld freed", f->m.c.allocs, f->m.c.frees);
    free(f->X);
    free(f->Y0);
    free(f->Y);
    free(f->p0);
    free(f->X0);
    free(f->saved0);
}

/* After a failure: the planned network's old plan and thread count still give its outputs. */
static void still_runs(fixture *f)
{
    forward(f, f->Y);
    ck_assert_msg(memcmp(f->Y, f->Y0, f->ybytes) == 0, "the network's outputs changed");
}

/* ---- the driver ------------------------------------------------------------------------------- */

enum { MAX_POINTS = 64 };

/* A call under test. */
typedef struct nm_call {
    const char *fn;                /* the public function: its messages start with "fn: " */
    const char *label;             /* in the tally (NULL: fn) */
    bp_status (*run)(fixture *f);
    void (*failed)(fixture *f);    /* after BP_ERR_NOMEM: the caller's objects unchanged and usable */
    void (*done)(fixture *f);      /* after BP_OK: checks what the call made, releases it */
    int absorbs;                   /* its last `absorbs` allocations have a fallback: refused, BP_OK */
} nm_call;

static const char *label_of(const nm_call *call)
{
    return call->label ? call->label : call->fn;
}

static const char *mode_of(const fixture *f)
{
    return f->m.once ? "alone" : "and every later one";
}

static int names(const char *msg, const char *fn)
{
    const size_t len = strlen(fn);
    return strncmp(msg, fn, len) == 0 && strncmp(msg + len, ": ", 2) == 0;
}

/* After a run that had its allocation k refused and returned st, with `live` blocks allocated
 * before it: BP_ERR_NOMEM naming the call, nothing leaked, the caller's objects as they were
 * (call->failed). A call with a fallback may return BP_OK instead: what it made is checked and
 * released. Returns whether it did. */
static int check_refused(fixture *f, const nm_call *call, long k, bp_status st, long live)
{
    const nt_counter *c = &f->m.c;
    const char *label = label_of(call), *mode = mode_of(f), *msg = bp_last_error();
    if (st == BP_OK) {
        ck_assert_msg(call->absorbs, "%s: allocation %ld (%s) refused, yet BP_OK", label, k, mode);
        call->done(f);
    } else {
        ck_assert_msg(st == BP_ERR_NOMEM, "%s: allocation %ld (%s) refused: status %d (%s), \"%s\"", label, k,
                      mode, (int)st, bp_strerror(st), msg);
        ck_assert_msg(names(msg, call->fn), "%s: allocation %ld (%s) refused: the message \"%s\" does not name %s",
                      label, k, mode, msg, call->fn);
    }
    ck_assert_msg(c->allocs - c->frees == live, "%s: allocation %ld (%s) refused, status %d: %ld blocks leaked",
                  label, k, mode, (int)st, c->allocs - c->frees - live);
    if (st != BP_OK && call->failed)
        call->failed(f);
    return st == BP_OK;
}

/* Refuses the call's allocation k = 1, 2, ... (and, in f's persistent mode, every later one)
 * until it runs with none refused; returns how many allocations it made then, its points. */
static long exercise(fixture *f, const nm_call *call)
{
    nt_counter *c = &f->m.c;
    long first_absorbed = MAX_POINTS + 1;
    for (long k = 1; k <= MAX_POINTS; k++) {
        const long live = c->allocs - c->frees, allocs = c->allocs, refused = c->refused;
        c->fail_after = c->allocs + k - 1;
        nt_reset_error();
        const bp_status st = call->run(f);
        c->fail_after = -1;
        if (c->refused > refused) {
            if (check_refused(f, call, k, st, live) && k < first_absorbed)
                first_absorbed = k;
            continue;
        }
        /* Fewer than k allocations: the call ran with all it asked for. */
        ck_assert_msg(st == BP_OK, "%s with memory: status %d (%s): %s", label_of(call), (int)st, bp_strerror(st),
                      bp_last_error());
        ck_assert_msg(c->allocs - allocs == k - 1, "%s: %ld allocations, then %ld", label_of(call), k - 1,
                      c->allocs - allocs);
        ck_assert_msg(first_absorbed > k - 1 - call->absorbs, "%s: allocation %ld of %ld (%s) refused, yet BP_OK",
                      label_of(call), first_absorbed, k - 1, mode_of(f));
        if (call->done)
            call->done(f);
        tally_add(label_of(call), k - 1);
        return k - 1;
    }
    ck_abort_msg("%s: more than %d allocations", label_of(call), MAX_POINTS);
    return -1;
}

/* A call that must allocate nothing: with every allocation refused it still succeeds, and it asks
 * for no memory at all. */
static void allocates_nothing(fixture *f, const char *label, bp_status (*run)(fixture *f))
{
    nt_counter *c = &f->m.c;
    const long allocs = c->allocs, refused = c->refused;
    c->fail_after = c->allocs;
    const bp_status st = run(f);
    c->fail_after = -1;
    ck_assert_msg(st == BP_OK, "%s: status %d (%s): %s", label, (int)st, bp_strerror(st), bp_last_error());
    ck_assert_msg(c->allocs == allocs && c->refused == refused, "%s asked for %ld blocks", label,
                  c->allocs + c->refused - allocs - refused);
    tally_add(label, 0);
}

/* ---- creating a network ----------------------------------------------------------------------- */

static bp_status run_create(fixture *f)
{
    f->out = UNTOUCHED;
    return bp_net_create(&f->out, f->dt, NIN, NL, layers, BP_LOSS_SOFTMAX_XENT, &f->a);
}

static bp_status run_logreg_create(fixture *f)
{
    f->out = UNTOUCHED;
    return bp_logreg_create(&f->out, f->dt, NIN, NOUT, &f->a);
}

static void out_untouched(fixture *f)
{
    ck_assert_ptr_eq(f->out, UNTOUCHED);
}

/* The new network works: it plans and runs a pass. */
static void out_works(fixture *f)
{
    ck_assert_ptr_ne(f->out, UNTOUCHED);
    ck_assert_int_eq(bp_net_n_in(f->out), NIN);
    NT_OK(bp_net_set_threads(f->out, 1));
    NT_OK(bp_net_plan(f->out, MB));
    NT_OK(bp_net_forward(f->out, N, f->X, NIN, f->Y, NOUT));
    bp_net_destroy(f->out);
    f->out = NULL;
}

START_TEST(test_create)
{
    fixture f;
    fixture_make(&f, _i, 0);
    exercise(&f, &(nm_call){"bp_net_create", NULL, run_create, out_untouched, out_works, 0});
    exercise(&f, &(nm_call){"bp_logreg_create", NULL, run_logreg_create, out_untouched, out_works, 0});
    fixture_free(&f);
}
END_TEST

/* ---- plans and threads ------------------------------------------------------------------------ */

static bp_status run_plan(fixture *f)
{
    return bp_net_plan(f->net, 8);
}

/* A failed first plan leaves the network unplanned, on its threads. */
static void still_unplanned(fixture *f)
{
    char buf[2048];
    NT_OK(bp_net_describe_plan(f->net, buf, sizeof buf, NULL));
    ck_assert_msg(strstr(buf, "not planned") != NULL, "a failed first plan left a plan: %s", buf);
    ck_assert_int_eq(bp_net_threads(f->net), f->threads);
}

static void plan_works(fixture *f)
{
    forward(f, f->Y);
}

/* Loop bit 3: the first plan (which also starts the team of a network on two threads), or a plan
 * again over the old one, which a failure must leave working. */
START_TEST(test_plan)
{
    const int again = _i >> 3;
    fixture f;
    fixture_make(&f, _i & 7, F_NET | (again ? F_PLANNED : 0));
    char label[64];
    snprintf(label, sizeof label, "bp_net_plan (%s, %d thread%s)", again ? "again" : "first", f.threads,
             f.threads > 1 ? "s" : "");
    exercise(&f, &(nm_call){"bp_net_plan", label, run_plan, again ? still_runs : still_unplanned, plan_works, 0});
    fixture_free(&f);
}
END_TEST

static bp_status run_set_threads(fixture *f)
{
    return bp_net_set_threads(f->net, f->threads + 1);
}

/* The old thread count stays, and so do the outputs (bitwise: they depend on the count). */
static void same_threads(fixture *f)
{
    ck_assert_int_eq(bp_net_threads(f->net), f->threads);
    still_runs(f);
}

static void more_threads(fixture *f)
{
    ck_assert_int_eq(bp_net_threads(f->net), f->threads + 1);
    forward(f, f->Y);
}

START_TEST(test_set_threads)
{
    fixture f;
    fixture_make(&f, _i, F_NET | F_PLANNED);
    char label[64];
    snprintf(label, sizeof label, "bp_net_set_threads (planned, %d to %d)", f.threads, f.threads + 1);
    exercise(&f, &(nm_call){"bp_net_set_threads", label, run_set_threads, same_threads, more_threads, 0});
    fixture_free(&f);
}
END_TEST

/* ---- initialisation, optimizers, training ----------------------------------------------------- */

static bp_status run_init_orthogonal(fixture *f)
{
    return bp_net_init(f->net, BP_INIT_ORTHOGONAL, 5, 1);
}

static void params_kept(fixture *f)
{
    ck_assert_msg(params_unchanged(f), "the parameters changed");
}

static void params_changed(fixture *f)
{
    ck_assert_msg(!params_unchanged(f), "the parameters did not change");
}

START_TEST(test_init_orthogonal)
{
    fixture f;
    fixture_make(&f, _i, F_NET);
    exercise(&f, &(nm_call){"bp_net_init", "bp_net_init (orthogonal)", run_init_orthogonal, params_kept,
                            params_changed, 0});
    fixture_free(&f);
}
END_TEST

static bp_status run_optim_create(fixture *f)
{
    const bp_optim_config oc = bp_optim_defaults(BP_OPT_ADAMW, 0.01);
    f->opt_out = UNTOUCHED;
    return bp_optim_create(&f->opt_out, f->net, &oc);
}

static void opt_untouched(fixture *f)
{
    ck_assert_ptr_eq(f->opt_out, UNTOUCHED);
    params_kept(f);
}

/* The network trains with the new optimizer. */
static void opt_trains(fixture *f)
{
    NT_OK(bp_optim_train_step(f->opt_out, f->net, N, f->X, NIN, f->y, 0, NULL));
    ck_assert_int_eq(bp_optim_steps(f->opt_out), 1);
    params_changed(f);
    bp_optim_destroy(f->opt_out);
    f->opt_out = NULL;
}

static bp_status run_train(fixture *f)
{
    const bp_train_config tc = {.epochs = 2, .batch_size = 4, .seed = 1, .shuffle = 1};
    return bp_train(f->net, f->opt, N, f->X, NIN, f->y, 0, &tc);
}

static void not_trained(fixture *f)
{
    ck_assert_int_eq(bp_optim_steps(f->opt), 0);
    params_kept(f);
}

static void trained(fixture *f)
{
    ck_assert_int_eq(bp_optim_steps(f->opt), 2 * ((N + 3) / 4));
    params_changed(f);
}

START_TEST(test_optim_and_train)
{
    fixture f;
    fixture_make(&f, _i, F_NET | F_PLANNED | F_OPTIM);
    exercise(&f, &(nm_call){"bp_optim_create", NULL, run_optim_create, opt_untouched, opt_trains, 0});
    snapshot_params(&f);
    exercise(&f, &(nm_call){"bp_train", NULL, run_train, not_trained, trained, 0});
    fixture_free(&f);
}
END_TEST

static bp_status run_loss_and_grad(fixture *f)
{
    return bp_net_loss_and_grad(f->net, N, f->X, NIN, f->y, 0, NULL);  /* N > MB: micro-batches */
}

static bp_status run_fused_step(fixture *f)
{
    return bp_optim_train_step(f->sgd, f->net, MB, f->X, NIN, f->y, 0, NULL);  /* one micro-batch: fused */
}

static bp_status run_adam_step(fixture *f)
{
    return bp_optim_train_step(f->opt, f->net, N, f->X, NIN, f->y, 0, NULL);
}

static bp_status run_optim_step(fixture *f)
{
    return bp_optim_step(f->opt, f->net);
}

static bp_status run_forward(fixture *f)
{
    return bp_net_forward(f->net, N, f->X, NIN, f->Y, NOUT);
}

static bp_status run_accuracy(fixture *f)
{
    double acc;
    return bp_net_accuracy(f->net, N, f->X, NIN, f->y, &acc, NULL);
}

static bp_status run_gradcheck(fixture *f)
{
    double err;
    return bp_net_gradcheck(f->net, N, f->X, NIN, f->y, 0, 0, &err, NULL);
}

/* A step allocates nothing, on one thread or two (net.h's promise). */
START_TEST(test_steps_allocate_nothing)
{
    fixture f;
    fixture_make(&f, _i, F_NET | F_PLANNED | F_OPTIM);
    allocates_nothing(&f, "bp_net_loss_and_grad", run_loss_and_grad);
    allocates_nothing(&f, "bp_optim_train_step (fused SGD)", run_fused_step);
    allocates_nothing(&f, "bp_optim_train_step (Adam, micro-batches)", run_adam_step);
    allocates_nothing(&f, "bp_optim_step", run_optim_step);
    allocates_nothing(&f, "bp_net_forward", run_forward);
    allocates_nothing(&f, "bp_net_accuracy", run_accuracy);
    if (f.dt == BP_F64)
        allocates_nothing(&f, "bp_net_gradcheck", run_gradcheck);
    fixture_free(&f);
}
END_TEST

/* ---- Newton ----------------------------------------------------------------------------------- */

static bp_status run_newton(fixture *f)
{
    f->iters = -7;
    return bp_logreg_newton(f->net, N, f->X, NIN, f->y, 1e-2, 20, 1e-10, &f->iters);
}

static void newton_untouched(fixture *f)
{
    ck_assert_int_eq(f->iters, -7);
    params_kept(f);
}

static void newton_fitted(fixture *f)
{
    ck_assert_int_ge(f->iters, 1);
    params_changed(f);
}

START_TEST(test_newton)
{
    fixture f;
    fixture_make(&f, _i, F_LOGREG);
    exercise(&f, &(nm_call){"bp_logreg_newton", NULL, run_newton, newton_untouched, newton_fitted, 0});
    fixture_free(&f);
}
END_TEST

/* ---- model files ------------------------------------------------------------------------------ */

static bp_status run_save(fixture *f)
{
    return bp_model_save(f->net, f->path);
}

/* The model file at f->path loads and holds these parameters. */
static void file_holds(fixture *f, const void *params)
{
    bp_net *back = NULL;
    NT_OK(bp_model_load(&back, f->path, NULL));
    ck_assert_uint_eq(bp_net_n_params(back), bp_net_n_params(f->net));
    ck_assert_msg(memcmp(bp_net_params(back), params, f->pbytes) == 0, "%s holds other parameters", f->path);
    bp_net_destroy(back);
}

/* The file saved before is still there, whole, and no temporary file is left. */
static void old_file_kept(fixture *f)
{
    file_holds(f, f->saved0);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", f->path);
    ck_assert_msg(access(tmp, F_OK) != 0, "a failed save left %s", tmp);
}

static void saved(fixture *f)
{
    file_holds(f, bp_net_params(f->net));
}

static bp_status run_load(fixture *f)
{
    f->out = UNTOUCHED;
    return bp_model_load(&f->out, f->path, &f->a);
}

static void loaded(fixture *f)
{
    ck_assert_ptr_ne(f->out, UNTOUCHED);
    ck_assert(memcmp(bp_net_params(f->out), bp_net_params(f->net), f->pbytes) == 0);
    out_works(f);
}

START_TEST(test_model)
{
    fixture f;
    fixture_make(&f, _i, F_NET | F_PLANNED);
    tpath(&f, f.path, sizeof f.path, "model.bpm");
    NT_OK(bp_model_save(f.net, f.path));
    f.saved0 = nt_memdup(bp_net_params(f.net), f.pbytes);
    NT_OK(bp_net_init(f.net, BP_INIT_HE_NORMAL, 11, 1));  /* the next save writes other parameters */
    exercise(&f, &(nm_call){"bp_model_save", NULL, run_save, old_file_kept, saved, 0});
    exercise(&f, &(nm_call){"bp_model_load", NULL, run_load, out_untouched, loaded, 0});
    fixture_free(&f);
}
END_TEST

/* A model file with every section: the standardisation, the optimizer (Adam: two moment buffers)
 * and the training state. */
static bp_status run_save_state(fixture *f)
{
    return bp_model_save_state(f->net, f->opt, &f->ts, f->path);
}

static bp_status run_load_state(fixture *f)
{
    f->out = UNTOUCHED;
    f->opt_out = UNTOUCHED;
    memset(&f->ts_out, 0x5a, sizeof f->ts_out);
    return bp_model_load_state(&f->out, &f->opt_out, &f->ts_out, f->path, &f->a);
}

static void state_untouched(fixture *f)
{
    bp_train_state s;
    memset(&s, 0x5a, sizeof s);
    ck_assert_ptr_eq(f->out, UNTOUCHED);
    ck_assert_ptr_eq(f->opt_out, UNTOUCHED);
    ck_assert(memcmp(&f->ts_out, &s, sizeof s) == 0);
}

static void state_loaded(fixture *f)
{
    ck_assert_ptr_ne(f->out, UNTOUCHED);
    ck_assert(memcmp(bp_net_params(f->out), bp_net_params(f->net), f->pbytes) == 0);
    ck_assert(bp_net_has_standardization(f->out));
    ck_assert_ptr_nonnull(f->opt_out);
    ck_assert_ptr_ne(f->opt_out, UNTOUCHED);
    ck_assert_int_eq(bp_optim_steps(f->opt_out), bp_optim_steps(f->opt));
    ck_assert(memcmp(&f->ts_out, &f->ts, sizeof f->ts) == 0);
    bp_optim_destroy(f->opt_out);
    f->opt_out = NULL;
    out_works(f);
}

START_TEST(test_model_state)
{
    fixture f;
    fixture_make(&f, _i, F_NET | F_PLANNED | F_OPTIM);
    tpath(&f, f.path, sizeof f.path, "state.bpm");
    NT_OK(bp_net_fit_standardization(f.net, N, f.X, NIN));
    NT_OK(bp_optim_train_step(f.opt, f.net, N, f.X, NIN, f.y, 0, NULL));  /* moments and a step to keep */
    snapshot_params(&f);
    f.ts = (bp_train_state){3, {1, 2, 3, 4}};
    NT_OK(bp_model_save_state(f.net, f.opt, &f.ts, f.path));
    f.saved0 = nt_memdup(bp_net_params(f.net), f.pbytes);
    NT_OK(bp_net_init(f.net, BP_INIT_HE_NORMAL, 11, 1));  /* the next save writes other parameters */
    exercise(&f, &(nm_call){"bp_model_save_state", NULL, run_save_state, old_file_kept, saved, 0});
    exercise(&f, &(nm_call){"bp_model_load_state", NULL, run_load_state, state_untouched, state_loaded, 0});
    fixture_free(&f);
}
END_TEST

/* ---- data files ------------------------------------------------------------------------------- */

/* IDX data: sample s, pixel j has the byte (31 s + 7 j) mod 256, label s mod 10. */
enum { SIDE = 28, IDX_SMALL = 20, IDX_LARGE = 1500 };

static double pixel(long s, long j)
{
    return (double)((31 * s + 7 * j) & 255);
}

/* gzip-compressed, or plain through zlib's transparent mode ("T"). */
static void write_file(const char *path, const unsigned char *data, size_t len, int gz)
{
    gzFile g = gzopen(path, gz ? "wb" : "wbT");
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(gzwrite(g, data, (unsigned)len), (int)len);
    ck_assert_int_eq(gzclose(g), Z_OK);
}

/* An IDX image file of n samples of SIDE x SIDE and its label file, at f->path and f->lab. */
static void write_idx(fixture *f, long n, int gz)
{
    const size_t len = 16 + (size_t)n * SIDE * SIDE;
    unsigned char *b = malloc(len), lb[8 + IDX_LARGE];
    ck_assert_ptr_nonnull(b);
    const unsigned char nh = (unsigned char)(n >> 8), nl = (unsigned char)n;  /* n < 2^16, big-endian */
    const unsigned char head[16] = {0, 0, 8, 3, 0, 0, nh, nl, 0, 0, 0, SIDE, 0, 0, 0, SIDE};
    const unsigned char lhead[8] = {0, 0, 8, 1, 0, 0, nh, nl};
    memcpy(b, head, sizeof head);
    memcpy(lb, lhead, sizeof lhead);
    for (long s = 0; s < n; s++) {
        for (long j = 0; j < SIDE * SIDE; j++)
            b[16 + s * SIDE * SIDE + j] = (unsigned char)pixel(s, j);
        lb[8 + s] = (unsigned char)(s % 10);
    }
    f->rows = n;
    tpath(f, f->path, sizeof f->path, gz ? "images.gz" : "images");
    tpath(f, f->lab, sizeof f->lab, gz ? "labels.gz" : "labels");
    write_file(f->path, b, len, gz);
    write_file(f->lab, lb, 8 + (size_t)n, gz);
    free(b);
}

static void set_sentinel(fixture *f)
{
    memset(&f->set, 0xA5, sizeof f->set);
}

static void set_untouched(fixture *f)
{
    bp_dataset s;
    memset(&s, 0xA5, sizeof s);
    ck_assert_msg(memcmp(&f->set, &s, sizeof s) == 0, "a failed read wrote its output");
    memset(&f->set, 0, sizeof f->set);  /* nothing to free */
}

static bp_status run_idx(fixture *f)
{
    set_sentinel(f);
    return bp_idx_read(f->path, f->lab, f->dt, BP_SCALE_NONE, &f->a, &f->set);
}

static bp_status run_idx_limit(fixture *f)
{
    set_sentinel(f);
    return bp_idx_read_limit(f->path, f->lab, f->dt, BP_SCALE_NONE, (int64_t)IDX_LARGE * SIDE * SIDE, &f->a, &f->set);
}

/* Whether the set holds f->rows samples of n_features values, label(s) = s mod label_mod and
 * value(s, j); then frees it through the counting allocator. */
static void check_read_back(fixture *f, long n_features, long label_mod, double (*value)(long s, long j))
{
    const bp_dataset *d = &f->set;
    ck_assert_int_eq(d->n, f->rows);
    ck_assert_int_eq(d->n_features, n_features);
    long wrong = 0;  /* counted, not asserted one by one: each Check assertion writes to a pipe */
    for (long s = 0; s < d->n; s++) {
        wrong += d->labels[s] != s % label_mod;
        for (long j = 0; j < n_features; j++)
            wrong += nt_get(d->dtype, d->X, (size_t)(s * n_features + j)) != value(s, j);
    }
    ck_assert_msg(wrong == 0, "%ld values or labels read wrong", wrong);
    bp_dataset_free(&f->set);
}

static void idx_read_back(fixture *f)
{
    check_read_back(f, SIDE * SIDE, 10, pixel);
}

START_TEST(test_idx)
{
    fixture f;
    fixture_make(&f, _i, 0);
    write_idx(&f, IDX_SMALL, 0);
    exercise(&f, &(nm_call){"bp_idx_read", "bp_idx_read (plain)", run_idx, set_untouched, idx_read_back, 0});
    exercise(&f, &(nm_call){"bp_idx_read_limit", "bp_idx_read_limit (plain)", run_idx_limit, set_untouched,
                            idx_read_back, 0});
    write_idx(&f, IDX_LARGE, 1);  /* gzip: the memory grows as the data arrives */
    exercise(&f, &(nm_call){"bp_idx_read", "bp_idx_read (gzip)", run_idx, set_untouched, idx_read_back, 0});
    fixture_free(&f);
}
END_TEST

/* CSV data: a header, then rows "label,x1..x5" with label s mod 4 and x_j = (s mod 97) / 4 + j:
 * enough rows that the values and labels grow three times and are trimmed at the end. */
enum { CSV_ROWS = 2000, CSV_FEAT = 5 };

static double csv_value(long s, long j)
{
    return (double)(s % 97) / 4 + (double)j;
}

static void write_csv(fixture *f)
{
    f->rows = CSV_ROWS;
    tpath(f, f->path, sizeof f->path, "data.csv");
    FILE *fp = fopen(f->path, "w");
    ck_assert_ptr_nonnull(fp);
    fprintf(fp, "label,a,b,c,d,e\n");
    for (long s = 0; s < CSV_ROWS; s++) {
        fprintf(fp, "%ld", s % 4);
        for (long j = 0; j < CSV_FEAT; j++)
            fprintf(fp, ",%g", csv_value(s, j));
        fprintf(fp, "\n");
    }
    ck_assert_int_eq(fclose(fp), 0);
}

static bp_status run_csv(fixture *f)
{
    set_sentinel(f);
    return bp_csv_read(f->path, f->dt, -1, 0, &f->a, &f->set);
}

static void csv_read_back(fixture *f)
{
    check_read_back(f, CSV_FEAT, 4, csv_value);
}

/* The same file with columns 3 (feature c) and 0 (the label) read as real targets. */
static bp_status run_csv_targets(fixture *f)
{
    static const bp_int cols[2] = {3, 0};
    set_sentinel(f);
    return bp_csv_read_targets(f->path, f->dt, -1, cols, 2, &f->a, &f->set);
}

static void csv_targets_read_back(fixture *f)
{
    const bp_dataset *d = &f->set;
    static const long feature_of[4] = {0, 1, 3, 4}; /* a, b, d, e */
    ck_assert_int_eq(d->n, f->rows);
    ck_assert_int_eq(d->n_features, 4);
    ck_assert_int_eq(d->n_targets, 2);
    ck_assert_ptr_null(d->labels);
    long wrong = 0;
    for (long s = 0; s < d->n; s++) {
        for (long j = 0; j < 4; j++)
            wrong += nt_get(d->dtype, d->X, (size_t)(s * 4 + j)) != csv_value(s, feature_of[j]);
        wrong += nt_get(d->dtype, d->targets, (size_t)(2 * s)) != csv_value(s, 2);
        wrong += nt_get(d->dtype, d->targets, (size_t)(2 * s + 1)) != (double)(s % 4);
    }
    ck_assert_msg(wrong == 0, "%ld values or targets read wrong", wrong);
    bp_dataset_free(&f->set);
}

static bp_status run_standardize(fixture *f)
{
    tu_sentinel(f->mean, sizeof f->mean);
    tu_sentinel(f->sd, sizeof f->sd);
    return bp_dataset_standardize(&f->set, NULL, f->mean, f->sd);
}

static void stats_untouched(fixture *f)
{
    ck_assert(tu_is_sentinel(f->mean, sizeof f->mean) && tu_is_sentinel(f->sd, sizeof f->sd));
    ck_assert_msg(memcmp(f->set.X, f->X0, (size_t)CSV_ROWS * CSV_FEAT * nt_esize(f->dt)) == 0,
                  "a failed standardisation changed the data");
}

static void standardized(fixture *f)
{
    ck_assert(!tu_is_sentinel(f->mean, CSV_FEAT * sizeof(double)));
    ck_assert(memcmp(f->set.X, f->X0, (size_t)CSV_ROWS * CSV_FEAT * nt_esize(f->dt)) != 0);
}

/* The CSV reader trims its values and labels (or targets) to size at the end: when a copy cannot be
 * allocated it keeps the larger block and succeeds, so it absorbs a refusal of its last two
 * allocations. */
START_TEST(test_csv)
{
    fixture f;
    fixture_make(&f, _i, 0);
    write_csv(&f);
    exercise(&f, &(nm_call){"bp_csv_read", NULL, run_csv, set_untouched, csv_read_back, 2});
    /* Its trim of X and of the targets likewise. */
    exercise(&f, &(nm_call){"bp_csv_read_targets", NULL, run_csv_targets, set_untouched, csv_targets_read_back, 2});
    NT_OK(run_csv(&f));
    f.X0 = nt_memdup(f.set.X, (size_t)CSV_ROWS * CSV_FEAT * nt_esize(f.dt));
    exercise(&f, &(nm_call){"bp_dataset_standardize", NULL, run_standardize, stats_untouched, standardized, 0});
    fixture_free(&f);
}
END_TEST

/* ---- the suite -------------------------------------------------------------------------------- */

static Suite *nomem_suite(void)
{
    Suite *s = suite_create("nomem");
    TCase *t = tcase_create("nomem");
    /* Loop index: bit 0 float / double, bit 1 the k-th refused alone / with every later one,
     * bit 2 (where threads matter) one thread / two. */
    tcase_add_loop_test(t, test_create, 0, 4);
    tcase_add_loop_test(t, test_plan, 0, 16);
    tcase_add_loop_test(t, test_set_threads, 0, 8);
    tcase_add_loop_test(t, test_init_orthogonal, 0, 4);
    tcase_add_loop_test(t, test_optim_and_train, 0, 8);
    tcase_add_loop_test(t, test_steps_allocate_nothing, 0, 8);
    tcase_add_loop_test(t, test_newton, 0, 4);
    tcase_add_loop_test(t, test_model, 0, 4);
    tcase_add_loop_test(t, test_model_state, 0, 4);
    tcase_add_loop_test(t, test_idx, 0, 4);
    tcase_add_loop_test(t, test_csv, 0, 4);
    suite_add_tcase(s, t);
    return s;
}

/* "nomem: bp_net_create 4, ..., N calls, P allocation points" */
static void print_tally(void)
{
    long total = 0;
    printf("nomem:");
    for (int i = 0; i < points_seen->n; i++) {
        const long lo = points_seen->e[i].lo, hi = points_seen->e[i].hi;
        if (lo == hi)
            printf("%s %s %ld", i ? "," : "", points_seen->e[i].label, lo);
        else
            printf("%s %s %ld-%ld", i ? "," : "", points_seen->e[i].label, lo, hi);
        total += hi;
    }
    printf("; %d calls, %ld allocation points\n", points_seen->n, total);
}

int main(void)
{
    points_seen = mmap(NULL, sizeof *points_seen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (points_seen == MAP_FAILED) {
        perror("mmap");
        return EXIT_FAILURE;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bp_nomem_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    const int status = tu_run_suite(nomem_suite());
    tu_remove_dir(tmpdir);
    print_tally();
    munmap(points_seen, sizeof *points_seen);
    return status;
}
