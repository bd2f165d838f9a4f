/* SPDX-License-Identifier: MIT */
/* optim.c: the optimizer object (config, state, step count), its learning-rate schedules and
 * the dispatch of a step to the float or double kernel. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "backprop/optim.h"
#include "net/net_exec.h"
#include "net/dp.h"
#include "optim/optim_internal.h"

struct bp_optim {
    bp_optim_config config;  /* a validated copy */
    bp_dtype dtype;
    size_t n_params;
    bp_allocator alloc;      /* the network's, so the optimizer can be freed after it */
    long steps;
    void *m, *v;             /* n_params each, as the rule needs; in the same block as this struct */
};

/* The state follows the struct in one block, at an offset that keeps it cache-line aligned
 * relative to the block (the allocator guarantees 16 bytes). */
#define STATE_OFFSET ((sizeof(struct bp_optim) + 63) / 64 * 64)

static const double PI = 3.14159265358979323846;

bp_optim_config bp_optim_defaults(bp_optimizer kind, double lr)
{
    bp_optim_config c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.lr = lr;
    c.momentum = kind == BP_OPT_MOMENTUM || kind == BP_OPT_NESTEROV ? 0.9 : 0;
    c.beta1 = 0.9;
    c.beta2 = 0.999;
    c.eps = 1e-8;
    c.weight_decay = kind == BP_OPT_ADAMW ? 0.01 : 0;
    c.schedule = BP_SCHED_CONSTANT;
    /* Not used by the constant schedule, but valid, so that switching c.schedule alone
     * gives a config bp_optim_create accepts (gamma is PyTorch's StepLR default). */
    c.gamma = 0.1;
    c.step_size = 1;
    c.t_max = 1;
    c.lr_min = 0;
    return c;
}

/* The fields the update rule of c->kind reads; the others are ignored. */
bp_status bp__optim_check_rule(const char *fn, const bp_optim_config *c)
{
    const int k = (int)c->kind;
    BP_REQUIRE(k >= (int)BP_OPT_SGD && k <= (int)BP_OPT_ADAMW, BP_ERR_ARG,
               "config->kind (%d) is not a bp_optimizer", k);
    BP_REQUIRE(isfinite(c->weight_decay) && c->weight_decay >= 0, BP_ERR_ARG,
               "config->weight_decay (%g) is not a finite value >= 0", c->weight_decay);
    if (c->kind == BP_OPT_MOMENTUM || c->kind == BP_OPT_NESTEROV)
        BP_REQUIRE(c->momentum >= 0 && c->momentum < 1, BP_ERR_ARG,
                   "config->momentum (%g) is not in [0, 1)", c->momentum);
    if (c->kind == BP_OPT_ADAM || c->kind == BP_OPT_ADAMW) {
        BP_REQUIRE(c->beta1 >= 0 && c->beta1 < 1, BP_ERR_ARG,
                   "config->beta1 (%g) is not in [0, 1)", c->beta1);
        BP_REQUIRE(c->beta2 >= 0 && c->beta2 < 1, BP_ERR_ARG,
                   "config->beta2 (%g) is not in [0, 1)", c->beta2);
        BP_REQUIRE(isfinite(c->eps) && c->eps > 0, BP_ERR_ARG,
                   "config->eps (%g) is not a finite value > 0", c->eps);
    }
    return BP_OK;
}

/* The whole config: the rule, the base rate, and the fields its schedule reads. */
static bp_status check_config(const char *fn, const bp_optim_config *c)
{
    const bp_status st = bp__optim_check_rule(fn, c);
    if (st != BP_OK)
        return st;
    BP_REQUIRE(isfinite(c->lr) && c->lr > 0, BP_ERR_ARG,
               "config->lr (%g) is not a finite value > 0", c->lr);
    switch (c->schedule) {
    case BP_SCHED_CONSTANT:
        return BP_OK;
    case BP_SCHED_STEP:
        BP_REQUIRE(c->gamma > 0 && c->gamma <= 1, BP_ERR_ARG,
                   "config->gamma (%g) is not in (0, 1]", c->gamma);
        BP_REQUIRE(c->step_size >= 1, BP_ERR_ARG, "config->step_size (%ld) < 1", c->step_size);
        return BP_OK;
    case BP_SCHED_COSINE:
        BP_REQUIRE(c->t_max >= 1, BP_ERR_ARG, "config->t_max (%ld) < 1", c->t_max);
        BP_REQUIRE(isfinite(c->lr_min) && c->lr_min >= 0, BP_ERR_ARG,
                   "config->lr_min (%g) is not a finite value >= 0", c->lr_min);
        return BP_OK;
    }
    return bp__fail(BP_ERR_ARG, fn, "config->schedule (%d) is not a bp_schedule", (int)c->schedule);
}

/* The scheduled rate of step t (0 for the first). Never negative: the cosine form lies
 * between lr and lr_min, both >= 0, and rounding is monotonic. */
static double scheduled_lr(const bp_optim_config *c, long t)
{
    switch (c->schedule) {
    case BP_SCHED_CONSTANT:
        break;
    case BP_SCHED_STEP:
        return c->lr * pow(c->gamma, (double)(t / c->step_size));
    case BP_SCHED_COSINE: {
        const long tc = t < c->t_max ? t : c->t_max;
        return c->lr_min + (c->lr - c->lr_min) * (1 + cos(PI * (double)tc / (double)c->t_max)) / 2;
    }
    }
    return c->lr;
}

static int state_buffers(bp_optimizer kind)
{
    switch (kind) {
    case BP_OPT_SGD: return 0;
    case BP_OPT_MOMENTUM:
    case BP_OPT_NESTEROV: return 1;
    case BP_OPT_ADAM:
    case BP_OPT_ADAMW: return 2;
    }
    return 0;
}

bp_status bp_optim_create(bp_optim **out, bp_net *net, const bp_optim_config *config)
{
    static const char fn[] = "bp_optim_create";
    BP_CHECK_PTR(out);
    BP_CHECK_PTR(net);
    BP_CHECK_PTR(config);
    const bp_status st = check_config(fn, config);
    if (st != BP_OK)
        return st;
    BP_REQUIRE(net->dtype == BP_F32 || net->dtype == BP_F64, BP_ERR_ARG,
               "net's dtype (%d) is neither BP_F32 nor BP_F64", (int)net->dtype);

    const size_t k = (size_t)state_buffers(config->kind), n = net->n_params, es = net->esize;
    BP_REQUIRE(k == 0 || n <= (SIZE_MAX - STATE_OFFSET) / k / es, BP_ERR_OVERFLOW,
               "state of %zu x %zu parameters of %zu bytes overflows", k, n, es);
    const size_t buf = n * es, bytes = STATE_OFFSET + k * buf;

    unsigned char *block = bp__net_alloc(net, bytes);
    if (block == NULL)
        return bp__fail(BP_ERR_NOMEM, fn, "allocating %zu bytes of optimizer state failed", bytes);
    memset(block, 0, bytes);   /* zero state: all-zero bytes are 0.0 in IEEE float and double */
    bp_optim *opt = (bp_optim *)block;
    opt->config = *config;
    opt->dtype = net->dtype;
    opt->n_params = n;
    opt->alloc = net->alloc;
    opt->steps = 0;
    opt->m = k >= 1 ? block + STATE_OFFSET : NULL;
    opt->v = k >= 2 ? block + STATE_OFFSET + buf : NULL;
    *out = opt;
    return BP_OK;
}

bp__optim_view bp__optim_state(const bp_optim *opt)
{
    bp_optim *o = (bp_optim *)(uintptr_t)opt;  /* the view writes where a load restores */
    const bp__optim_view v = {&o->config, &o->steps, o->m, o->v};
    return v;
}

void bp_optim_destroy(bp_optim *opt)
{
    if (opt == NULL)
        return;
    /* The network may already be gone: free through the allocator copied at creation. */
    const bp_allocator a = opt->alloc;
    a.free(a.ctx, opt);
}

/* One update, as a step of the network's team: chunks of the flat buffers. */
typedef struct update_job {
    const bp_optim *opt;
    bp_net *net;
    double lr;
    long t;
    int chunks;
} update_job;

static bp_status update_chunk(const void *ctx, bp_int c)
{
    const update_job *j = ctx;
    const bp_optim *opt = j->opt;
    const bp_net *net = j->net;
    const size_t P = net->n_params, k = (size_t)j->chunks;
    const size_t lo = P * (size_t)c / k, hi = P * ((size_t)c + 1) / k, es = net->esize;
    char *p = (char *)net->params + lo * es;
    const char *g = (const char *)net->grads + lo * es;
    char *m = opt->m ? (char *)opt->m + lo * es : NULL, *v = opt->v ? (char *)opt->v + lo * es : NULL;
    return opt->dtype == BP_F32
               ? bp_soptim_update(&opt->config, hi - lo, (float *)(void *)p, (const float *)(const void *)g,
                                  (float *)(void *)m, (float *)(void *)v, j->t, j->lr)
               : bp_doptim_update(&opt->config, hi - lo, (double *)(void *)p, (const double *)(const void *)g,
                                  (double *)(void *)m, (double *)(void *)v, j->t, j->lr);
}

bp_status bp__optim_check_net(const char *fn, const bp_optim *opt, const bp_net *net)
{
    BP_CHECK_PTR(opt);
    BP_CHECK_PTR(net);
    BP_REQUIRE(net->dtype == opt->dtype, BP_ERR_ARG,
               "net's dtype (%d) is not the optimizer's (%d)", (int)net->dtype, (int)opt->dtype);
    BP_REQUIRE(net->n_params == opt->n_params, BP_ERR_ARG,
               "net has %zu parameters, the optimizer was created for %zu", net->n_params,
               opt->n_params);
    BP_REQUIRE(opt->steps < LONG_MAX, BP_ERR_OVERFLOW, "the step count reached LONG_MAX");
    return BP_OK;
}

/* The update from the gradient buffer; opt and net are checked. With the finite check on,
 * the gradient is scanned first unless the pass that just wrote it scanned every value
 * (scanned). */
static bp_status update(const char *fn, bp_optim *opt, bp_net *net, int scanned)
{
    if (net->check_finite && !scanned && !bp__all_finite(net->dtype, net->n_params, net->grads))
        return bp__fail(BP_ERR_NONFINITE, fn, "the gradient holds a NaN or Inf; nothing was updated");

    /* The network's team updates its parameters too, in chunks of the flat buffers: the same
     * element-wise arithmetic, so the same result for any count of chunks. */
    const bp__split_policy p = bp__net_policy(net);
    const update_job j = {opt, net, scheduled_lr(&opt->config, opt->steps), opt->steps + 1,
                          bp__split_stream(&p, (int64_t)net->n_params, (int64_t)net->n_params)};
    bp__blas_serial_begin();
    const bp_status st = bp__team_run(net->team, update_chunk, &j, j.chunks);
    bp__blas_serial_end();
    if (st != BP_OK)
        return st;
    opt->steps = j.t;
    return BP_OK;
}

bp_status bp_optim_step(bp_optim *opt, bp_net *net)
{
    static const char fn[] = "bp_optim_step";
    TRY(bp__optim_check_net(fn, opt, net));
    return update(fn, opt, net, 0);  /* the caller may have changed the gradient */
}

/* Whether plain SGD can fold its update into the backward pass of this batch: the whole batch
 * in one micro-batch (a second one would run its forward on updated weights), the BLAS kernels,
 * no finite check (which promises unchanged parameters when a gradient turns out non-finite),
 * and no reducer (the update needs the sum over the ranks, not this rank's part). */
static int fuses(const bp_optim *opt, const bp_net *net, bp_int n)
{
    return opt->config.kind == BP_OPT_SGD && n >= 1 && n <= net->mb && net->backend == BP_BACKEND_BLAS &&
           !net->check_finite && !net->has_reducer;
}

bp_status bp__optim_train_batch(const char *fn, bp_optim *opt, bp_net *net, bp_int n, const void *X,
                                bp_int ldx, const int32_t *idx, const void *targets, bp_int ldt,
                                double *loss, int64_t *correct)
{
    if (fuses(opt, net, n)) {
        const bp__grad_hook sgd = {DISPATCH(net, fused_sgd), scheduled_lr(&opt->config, opt->steps),
                                   opt->config.weight_decay};
        TRY(DISPATCH(net, net_batch)(net, fn, n, X, ldx, idx, targets, ldt, BP_MODE_GRAD, &sgd, NULL, loss, correct));
        opt->steps++;
        return BP_OK;
    }
    TRY(DISPATCH(net, net_batch)(net, fn, n, X, ldx, idx, targets, ldt, BP_MODE_GRAD, NULL, NULL, loss, correct));
    return update(fn, opt, net, 1);
}

bp_status bp_optim_train_step(bp_optim *opt, bp_net *net, bp_int n, const void *X, bp_int ldx,
                              const void *targets, bp_int ldt, double *loss)
{
    const char *fn = __func__;
    bp_status st = bp__optim_check_net(fn, opt, net);
    if (st == BP_OK)
        st = bp__check_pass(fn, net, n, X, ldx);
    if (st == BP_OK)
        st = bp__check_targets(fn, net, n, targets, ldt, net->loss == BP_LOSS_SOFTMAX_XENT);
    TRY(bp__dp_refused(net, st));  /* with a reducer, the other ranks learn it */
    return bp__optim_train_batch(fn, opt, net, n, X, ldx, NULL, targets, ldt, loss, NULL);
}

double bp_optim_lr(const bp_optim *opt)
{
    if (opt == NULL) {
        bp__fail(BP_ERR_ARG, "bp_optim_lr", "opt is NULL");
        return NAN;
    }
    return scheduled_lr(&opt->config, opt->steps);
}

long bp_optim_steps(const bp_optim *opt)
{
    if (opt == NULL) {
        bp__fail(BP_ERR_ARG, "bp_optim_steps", "opt is NULL");
        return -1;
    }
    return opt->steps;
}
