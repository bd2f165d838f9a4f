/* SPDX-License-Identifier: MIT */
/* net.c: creating, initialising, planning and describing a network: everything that does not depend on the dtype. */
#define _GNU_SOURCE  /* sched_getaffinity */
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <unistd.h>
#include "kernels/kernels_internal.h"
#include "net/net_internal.h"
#include "net/net_exec.h"
#include "net/tuning.h"

static void *default_alloc(void *ctx, size_t size)
{
    (void)ctx;
    return malloc(size);
}

static void default_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

const bp_allocator bp__default_allocator = {default_alloc, default_free, NULL};

void *bp__net_alloc(const bp_net *net, size_t bytes)
{
    return net->alloc.alloc(net->alloc.ctx, bytes ? bytes : 1);
}

void bp__net_free(const bp_net *net, void *p)
{
    if (p)
        net->alloc.free(net->alloc.ctx, p);
}

int bp__all_finite(bp_dtype dtype, size_t n, const void *x)
{
    if (dtype == BP_F32) {
        const float *v = x;
        for (size_t i = 0; i < n; i++)
            if (!isfinite(v[i]))
                return 0;
    } else {
        const double *v = x;
        for (size_t i = 0; i < n; i++)
            if (!isfinite(v[i]))
                return 0;
    }
    return 1;
}

/* a * b + c without wrapping, or SIZE_MAX. */
static size_t mul_add(size_t a, size_t b, size_t c)
{
    if (a && b > (SIZE_MAX - c) / a)
        return SIZE_MAX;
    return a * b + c;
}

static size_t align64(size_t x)
{
    return x > SIZE_MAX - 63 ? SIZE_MAX : (x + 63) & ~(size_t)63;
}

static bp_status check_layer_spec(const char *fn, bp_int i, const bp_layer_spec *l)
{
    BP_REQUIRE(l->n_out >= 1, BP_ERR_ARG, "layers[%d].n_out (%d) < 1", (int)i, (int)l->n_out);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "layers[%d].", (int)i);
    return bp__check_act(fn, prefix, l->act, l->alpha);
}

/* A positive whole number in the environment variable `name`, else LONG_MAX. */
static long env_count(const char *name)
{
    const char *v = getenv(name);
    char *end;
    if (!v || !*v)
        return LONG_MAX;
    const long n = strtol(v, &end, 10);
    return *end == '\0' && n >= 1 ? n : LONG_MAX;
}

/* The thread policy's default count (net.h): the processors this process may run on (its
 * affinity mask, so that taskset or an MPI launcher's binding is respected; elsewhere the
 * online ones), at most OMP_NUM_THREADS and OPENBLAS_NUM_THREADS where they are set, within
 * [1, BP_NET_MAX_THREADS]. */
static int default_threads(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
#ifdef __linux__
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        cpus = CPU_COUNT(&set);
#endif
    const long omp = env_count("OMP_NUM_THREADS"), blas = env_count("OPENBLAS_NUM_THREADS");
    cpus = omp < cpus ? omp : cpus;
    cpus = blas < cpus ? blas : cpus;
    return cpus < 1 ? 1 : cpus > BP_NET_MAX_THREADS ? BP_NET_MAX_THREADS : (int)cpus;
}

bp_status bp_net_create(bp_net **out, bp_dtype dtype, bp_int n_in, bp_int n_layers,
                        const bp_layer_spec *layers, bp_loss loss, const bp_allocator *alloc)
{
    const char *fn = __func__;
    BP_CHECK_PTR(out);
    BP_REQUIRE(dtype == BP_F32 || dtype == BP_F64, BP_ERR_ARG, "dtype (%d) is neither BP_F32 nor BP_F64", (int)dtype);
    BP_CHECK_WIDTH(n_in);
    BP_REQUIRE(n_layers >= 1 && n_layers <= BP_NET_MAX_LAYERS, BP_ERR_ARG,
               "n_layers (%d) is not in [1, %d]", (int)n_layers, BP_NET_MAX_LAYERS);
    BP_CHECK_PTR(layers);
    BP_REQUIRE(loss == BP_LOSS_SOFTMAX_XENT || loss == BP_LOSS_SIGMOID_BCE || bp__loss_squared(loss),
               BP_ERR_ARG, "loss (%d) is not a bp_loss", (int)loss);
    BP_REQUIRE(!alloc || (alloc->alloc && alloc->free), BP_ERR_ARG, "alloc has a NULL alloc or free");
    size_t n_params = 0;
    bp_int prev = n_in;
    for (bp_int i = 0; i < n_layers; i++) {
        bp_status st = check_layer_spec(fn, i, &layers[i]);
        if (st)
            return st;
        n_params = mul_add((size_t)layers[i].n_out, (size_t)prev + 1, n_params);
        BP_REQUIRE(n_params <= BP_NET_MAX_PARAMS, BP_ERR_OVERFLOW,
                   "the parameters up to layer %d exceed BP_NET_MAX_PARAMS (%zu)", (int)i,
                   (size_t)BP_NET_MAX_PARAMS);
        prev = layers[i].n_out;
    }
    BP_REQUIRE(loss != BP_LOSS_SOFTMAX_XENT || layers[n_layers - 1].n_out >= 2, BP_ERR_ARG,
               "softmax cross-entropy needs at least 2 outputs: with one, the loss is 0 whatever the weights "
               "(for two classes use 2 outputs, or sigmoid BCE with 1)");
    BP_REQUIRE(bp__loss_squared(loss) || layers[n_layers - 1].act == BP_ACT_IDENTITY, BP_ERR_ARG,
               "the last layer's activation must be BP_ACT_IDENTITY: the %s loss takes logits",
               loss == BP_LOSS_SOFTMAX_XENT ? "softmax cross-entropy" : "sigmoid BCE");

    const bp_allocator a = alloc ? *alloc : bp__default_allocator;
    bp_net *net = a.alloc(a.ctx, sizeof *net);
    if (!net)
        return bp__fail(BP_ERR_NOMEM, fn, "allocating the network");
    memset(net, 0, sizeof *net);
    net->alloc = a;
    net->dtype = dtype;
    net->esize = dtype == BP_F32 ? sizeof(float) : sizeof(double);
    net->n_in = n_in;
    net->n_layers = n_layers;
    net->loss = loss;
    net->n_params = n_params;
    net->n_threads = default_threads();
    net->chunk_macs = BP_CHUNK_MIN_MACS;
    net->chunk_values = BP_CHUNK_MIN_VALUES;
    net->layers = bp__net_alloc(net, (size_t)n_layers * sizeof *net->layers);
    net->params = bp__net_alloc(net, n_params * net->esize);
    net->grads = bp__net_alloc(net, n_params * net->esize);
    if (!net->layers || !net->params || !net->grads) {
        bp_net_destroy(net);
        return bp__fail(BP_ERR_NOMEM, fn, "allocating %zu parameters and gradients", n_params);
    }
    memset(net->params, 0, n_params * net->esize);
    memset(net->grads, 0, n_params * net->esize);
    size_t off = 0;
    net->max_width = n_in;
    prev = n_in;
    for (bp_int i = 0; i < n_layers; i++) {
        bp__layer *l = &net->layers[i];
        l->n_in = prev;
        l->n_out = layers[i].n_out;
        l->act = layers[i].act;
        l->alpha = layers[i].alpha;
        l->w_off = off;
        l->b_off = off + (size_t)l->n_out * (size_t)l->n_in;
        off = l->b_off + (size_t)l->n_out;
        if (l->n_out > net->max_width)
            net->max_width = l->n_out;
        prev = l->n_out;
    }
    bp__rng_seed(net->rng, 0);
    *out = net;
    return BP_OK;
}

static void free_plan(bp_net *net)
{
    bp__net_free(net, net->arena_raw);
    bp__net_free(net, net->steps);
    bp__net_free(net, net->splits);
    net->arena_raw = net->arena = NULL;
    net->steps = NULL;
    net->splits = NULL;
    net->n_steps = 0;
    net->mb = 0;
    net->arena_bytes = 0;
}

const bp__layer_split *bp__net_split(const bp_net *net, bp_int i, bp_int m, bp__layer_split *tmp)
{
    if (m == net->mb)
        return &net->splits[i];
    const bp__layer *l = &net->layers[i];
    const bp__split_policy p = bp__net_policy(net);
    bp__split_layer(&p, l->n_in, l->n_out, l->act == BP_ACT_SOFTMAX, m, tmp);
    return tmp;
}

/* Caches every layer's split at a full micro-batch, for the current thread count. */
static void plan_splits(bp_net *net)
{
    const bp__split_policy p = bp__net_policy(net);
    for (bp_int i = 0; i < net->n_layers; i++) {
        const bp__layer *l = &net->layers[i];
        bp__split_layer(&p, l->n_in, l->n_out, l->act == BP_ACT_SOFTMAX, net->mb, &net->splits[i]);
    }
}

void bp_net_destroy(bp_net *net)
{
    if (!net)
        return;
    bp__team_destroy(net, net->team);
    free_plan(net);
    bp__net_free(net, net->layers);
    bp__net_free(net, net->params);
    bp__net_free(net, net->grads);
    bp__net_free(net, net->stdz);
    const bp_allocator a = net->alloc;
    a.free(a.ctx, net);
}

#define CHECK_NET(net) BP_REQUIRE((net) != NULL, BP_ERR_ARG, "net is NULL")

bp_dtype bp_net_dtype(const bp_net *net) { return net ? net->dtype : (bp_dtype)0; }
bp_int bp_net_n_layers(const bp_net *net) { return net ? net->n_layers : 0; }
bp_int bp_net_n_in(const bp_net *net) { return net ? net->n_in : 0; }
bp_int bp_net_n_out(const bp_net *net) { return net ? bp__n_out(net) : 0; }
bp_loss bp_net_loss(const bp_net *net) { return net ? net->loss : (bp_loss)0; }
size_t bp_net_n_params(const bp_net *net) { return net ? net->n_params : 0; }
void *bp_net_params(bp_net *net) { return net ? net->params : NULL; }
void *bp_net_grads(bp_net *net) { return net ? net->grads : NULL; }

bp_status bp_net_layer(bp_net *net, bp_int i, bp_layer_view *view)
{
    const char *fn = __func__;
    CHECK_NET(net);
    BP_CHECK_PTR(view);
    BP_REQUIRE(i >= 0 && i < net->n_layers, BP_ERR_ARG, "i (%d) is not in [0, %d)", (int)i, (int)net->n_layers);
    const bp__layer *l = &net->layers[i];
    char *p = net->params, *g = net->grads;
    view->n_in = l->n_in;
    view->n_out = l->n_out;
    view->act = l->act;
    view->alpha = l->alpha;
    view->offset = l->w_off;
    view->W = p + l->w_off * net->esize;
    view->b = p + l->b_off * net->esize;
    view->dW = g + l->w_off * net->esize;
    view->db = g + l->b_off * net->esize;
    return BP_OK;
}

bp_status bp_net_set_backend(bp_net *net, bp_backend backend)
{
    const char *fn = __func__;
    CHECK_NET(net);
    BP_REQUIRE(backend == BP_BACKEND_BLAS || backend == BP_BACKEND_NAIVE, BP_ERR_ARG,
               "backend (%d) is not a bp_backend", (int)backend);
    net->backend = backend;
    return BP_OK;
}

bp_status bp_net_set_check_finite(bp_net *net, int on)
{
    const char *fn = __func__;
    CHECK_NET(net);
    net->check_finite = on != 0;
    return BP_OK;
}

/* Orthogonal init needs LAPACK; the typed code lives in net_exec.tmpl.c. */
bp_status bp_net_init(bp_net *net, bp_init scheme, uint64_t seed, double gain)
{
    const char *fn = __func__;
    CHECK_NET(net);
    BP_REQUIRE((int)scheme >= (int)BP_INIT_GLOROT_UNIFORM && (int)scheme <= (int)BP_INIT_ORTHOGONAL,
               BP_ERR_ARG, "scheme (%d) is not a bp_init", (int)scheme);
    BP_REQUIRE(isfinite(gain) && gain > 0, BP_ERR_ARG, "gain (%g) is not finite and > 0", gain);
    bp__rng_seed(net->rng, seed);
    return net->dtype == BP_F32 ? bp__snet_init(net, scheme, gain) : bp__dnet_init(net, scheme, gain);
}

bp_status bp_net_plan(bp_net *net, bp_int max_micro_batch)
{
    const char *fn = __func__;
    CHECK_NET(net);
    BP_REQUIRE(max_micro_batch >= 1, BP_ERR_ARG, "max_micro_batch (%d) < 1", (int)max_micro_batch);
    /* One arena, which the workers of a threaded network share (each computes its
     * slice of every step). */
    const size_t mb = (size_t)max_micro_batch, es = net->esize;
    /* Offsets of every buffer, each aligned to 64 bytes; SIZE_MAX marks an overflow. */
    size_t off = 0, y_off[BP_NET_MAX_LAYERS], z_off[BP_NET_MAX_LAYERS];
    for (bp_int i = 0; i < net->n_layers; i++) {
        const bp__layer *l = &net->layers[i];
        y_off[i] = off;
        off = align64(mul_add(mul_add(mb, (size_t)l->n_out, 0), es, off));
        z_off[i] = SIZE_MAX;
        if (bp_act_needs_z(l->act)) {
            z_off[i] = off;
            off = align64(mul_add(mul_add(mb, (size_t)l->n_out, 0), es, off));
        }
    }
    size_t g_off[2];
    for (int k = 0; k < 2; k++) {
        g_off[k] = off;
        off = align64(mul_add(mul_add(mb, (size_t)net->max_width, 0), es, off));
    }
    const size_t xg_off = off;
    off = align64(mul_add(mul_add(mb, (size_t)net->n_in, 0), es, off));
    const size_t tg_off = off;
    const size_t t_row = net->loss == BP_LOSS_SOFTMAX_XENT ? sizeof(int32_t)
                                                           : (size_t)bp__n_out(net) * es;
    off = align64(mul_add(mb, t_row, off));
    BP_REQUIRE(off < SIZE_MAX / 2, BP_ERR_OVERFLOW,
               "the arena for micro-batches of %d overflows the address space", (int)max_micro_batch);

    /* Steps: forward 0..L-1, loss, then backward i and grads_ready i from the last layer down. */
    const bp_int n_steps = 3 * net->n_layers + 1;
    bp__step *steps = bp__net_alloc(net, (size_t)n_steps * sizeof *steps);
    bp__layer_split *splits = bp__net_alloc(net, (size_t)net->n_layers * sizeof *splits);
    void *raw = bp__net_alloc(net, off + 64);
    if (!steps || !splits || !raw) {
        bp__net_free(net, steps);
        bp__net_free(net, splits);
        bp__net_free(net, raw);
        return bp__fail(BP_ERR_NOMEM, fn, "allocating an arena of %zu bytes", off + 64);
    }
    /* The thread team, started by the first plan: a network that is never planned has none. */
    if (net->n_threads > 1 && !net->team) {
        const bp_status st = bp__team_create(net, fn, net->n_threads, &net->team);
        if (st != BP_OK) {
            bp__net_free(net, steps);
            bp__net_free(net, splits);
            bp__net_free(net, raw);
            return st;
        }
    }
    bp_int s = 0;
    for (bp_int i = 0; i < net->n_layers; i++)
        steps[s++] = (bp__step){BP_STEP_FORWARD, i};
    steps[s++] = (bp__step){BP_STEP_LOSS, net->n_layers - 1};
    for (bp_int i = net->n_layers - 1; i >= 0; i--) {
        steps[s++] = (bp__step){BP_STEP_BACKWARD, i};
        steps[s++] = (bp__step){BP_STEP_GRADS_READY, i};
    }
    free_plan(net);
    net->steps = steps;
    net->splits = splits;
    net->n_steps = n_steps;
    net->arena_raw = raw;
    net->arena = (char *)raw + ((64 - (uintptr_t)raw % 64) % 64);
    net->arena_bytes = off;
    net->mb = max_micro_batch;
    for (bp_int i = 0; i < net->n_layers; i++) {
        net->layers[i].y_off = y_off[i];
        net->layers[i].z_off = z_off[i];
    }
    net->g_off[0] = g_off[0];
    net->g_off[1] = g_off[1];
    net->xg_off = xg_off;
    net->tg_off = tg_off;
    plan_splits(net);
    return BP_OK;
}

bp_status bp_net_set_threads(bp_net *net, int n_threads)
{
    const char *fn = __func__;
    CHECK_NET(net);
    BP_REQUIRE(n_threads >= 0 && n_threads <= BP_NET_MAX_THREADS, BP_ERR_ARG,
               "n_threads (%d) is not in [0, %d]", n_threads, BP_NET_MAX_THREADS);
    if (n_threads == 0)
        n_threads = default_threads();
    if (n_threads == net->n_threads)
        return BP_OK;
    /* A planned network gets its new team now, so that no pass starts threads; on failure
     * the old team and count stay. */
    struct bp__team *team = NULL;
    if (net->arena && n_threads > 1)
        TRY(bp__team_create(net, fn, n_threads, &team));
    bp__team_destroy(net, net->team);
    net->team = team;
    net->n_threads = n_threads;
    if (net->arena)
        plan_splits(net);
    return BP_OK;
}

int bp_net_threads(const bp_net *net)
{
    return net ? net->n_threads : 0;
}

bp_status bp_net_set_chunk_min(bp_net *net, long min_macs, long min_values)
{
    const char *fn = __func__;
    CHECK_NET(net);
    BP_REQUIRE(min_macs >= 0, BP_ERR_ARG, "min_macs (%ld) < 0", min_macs);
    BP_REQUIRE(min_values >= 0, BP_ERR_ARG, "min_values (%ld) < 0", min_values);
    net->chunk_macs = min_macs ? min_macs : BP_CHUNK_MIN_MACS;
    net->chunk_values = min_values ? min_values : BP_CHUNK_MIN_VALUES;
    if (net->arena)
        plan_splits(net);
    return BP_OK;
}

/* snprintf into a running buffer, counting what would have been written. */
typedef struct outbuf {
    char *buf;
    size_t len, used;
} outbuf;

static void out(outbuf *o, const char *fmt, ...) BP_PRINTF(2, 3);
static void out(outbuf *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const size_t room = o->used < o->len ? o->len - o->used : 0;
    const int k = vsnprintf(room ? o->buf + o->used : NULL, room, fmt, ap);
    va_end(ap);
    if (k > 0)
        o->used += (size_t)k;
}

/* One cut: its chunk count and what it cuts ("1" for the caller alone). */
static void describe_cut(outbuf *o, const char *step, bp__split sp, const char *cols)
{
    if (sp.chunks == 1)
        out(o, " %s 1", step);
    else
        out(o, " %s %d by %s", step, sp.chunks, sp.cut == BP_CUT_ROWS ? "rows" : cols);
}

/* How every layer's steps are cut into chunks at a full micro-batch (split.h). */
static void describe_splits(outbuf *o, const bp_net *net)
{
    for (bp_int i = 0; i < net->n_layers; i++) {
        const bp__layer_split *sp = &net->splits[i];
        out(o, "  chunks of layer %d:", (int)i);
        describe_cut(o, "forward", sp->fwd, "features");
        describe_cut(o, "dZ", sp->dz, "features");
        if (i > 0)
            describe_cut(o, "dX", sp->dx, "inputs");
        describe_cut(o, "dW", sp->dw, "features");
        if (i == net->n_layers - 1)
            describe_cut(o, "loss", sp->loss, "features");
        out(o, "\n");
    }
}

bp_status bp_net_describe_plan(const bp_net *net, char *buf, size_t len, size_t *needed)
{
    const char *fn = __func__;
    CHECK_NET(net);
    BP_REQUIRE(buf != NULL || len == 0, BP_ERR_ARG, "buf is NULL but len (%zu) > 0", len);
    outbuf o = {buf, len, 0};
    static const char *const loss_names[] = {"", "softmax cross-entropy", "sigmoid BCE", "MSE"};
    out(&o, "network: %s, %d inputs, %d layers, %zu parameters (%zu bytes; gradients the same), loss %s\n",
        net->dtype == BP_F32 ? "float" : "double", (int)net->n_in, (int)net->n_layers,
        net->n_params, net->n_params * net->esize, loss_names[net->loss]);
    for (bp_int i = 0; i < net->n_layers; i++) {
        const bp__layer *l = &net->layers[i];
        out(&o, "  layer %d: %d -> %d, %s, W at %zu, b at %zu\n", (int)i, (int)l->n_in, (int)l->n_out,
            bp_act_name(l->act), l->w_off, l->b_off);
    }
    if (!net->arena) {
        out(&o, "not planned\n");
    } else {
        out(&o, "plan: micro-batch %d, arena %zu bytes, backend %s\n", (int)net->mb, net->arena_bytes,
            net->backend == BP_BACKEND_BLAS ? "blas" : "naive");
        out(&o, "threads: %d (the caller%s); BLAS runs on one thread inside each call\n", net->n_threads,
            net->n_threads > 1 ? " and its team's helpers take the chunks of every step" : " alone");
        describe_splits(&o, net);
        const size_t mb = (size_t)net->mb;
        for (bp_int i = 0; i < net->n_layers; i++) {
            const bp__layer *l = &net->layers[i];
            out(&o, "  buffer Y%d  at %10zu: %d x %d (%zu bytes)\n", (int)i, l->y_off, (int)mb,
                (int)l->n_out, mb * (size_t)l->n_out * net->esize);
            if (l->z_off != SIZE_MAX)
                out(&o, "  buffer Z%d  at %10zu: %d x %d (%zu bytes)\n", (int)i, l->z_off, (int)mb,
                    (int)l->n_out, mb * (size_t)l->n_out * net->esize);
        }
        for (int k = 0; k < 2; k++)
            out(&o, "  buffer G%d  at %10zu: %d x %d (%zu bytes)\n", k, net->g_off[k], (int)mb,
                (int)net->max_width, mb * (size_t)net->max_width * net->esize);
        out(&o, "  buffer Xg  at %10zu: %d x %d (gather)\n", net->xg_off, (int)mb, (int)net->n_in);
        out(&o, "  buffer Tg  at %10zu: %d targets (gather)\n", net->tg_off, (int)mb);
        out(&o, "steps:");
        static const char *const step_names[] = {"forward", "loss", "backward", "grads_ready"};
        for (bp_int s = 0; s < net->n_steps; s++)
            out(&o, " %s(%d)", step_names[net->steps[s].kind], (int)net->steps[s].layer);
        out(&o, "\n");
    }
    if (needed)
        *needed = o.used;
    return BP_OK;
}
