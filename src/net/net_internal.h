/* net_internal.h: the network object's layout, shared by src/net, src/optim and the training helper. */
#ifndef BP_NET_INTERNAL_H
#define BP_NET_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "backprop/net.h"
#include "core/internal.h"

/* A layer inside the flat buffers and the arena. */
typedef struct bp__layer {
    bp_int n_in, n_out;
    bp_act act;
    double alpha;
    size_t w_off, b_off;   /* elements, into params and grads */
    size_t y_off;          /* bytes into the arena: this layer's output, mb x n_out */
    size_t z_off;          /* bytes into the arena: pre-activation (GELU only), else SIZE_MAX */
} bp__layer;

typedef enum bp__step_kind {
    BP_STEP_FORWARD,
    BP_STEP_LOSS,
    BP_STEP_BACKWARD,
    BP_STEP_GRADS_READY
} bp__step_kind;

typedef struct bp__step {
    bp__step_kind kind;
    bp_int layer;
} bp__step;

/* What one worker of a pass reports (the workers share the arena and gradient). */
typedef struct bp__worker {
    double loss;               /* of the current pass (worker 0 computes it) */
    int64_t correct;
    bp_status st;
    char err[512];             /* its bp_last_error(), which is thread-local */
} bp__worker;

/* The team of threads behind bp_net_set_threads (pool.c). A job runs fn(ctx, w)
 * for every worker w, w = 0 on the calling thread; bp__pool_barrier is a barrier
 * of all workers inside a job. */
typedef void (*bp__job_fn)(void *ctx, int worker);
struct bp__pool;
bp_status bp__pool_create(bp_net *net, int n_workers, struct bp__pool **out);
void bp__pool_destroy(bp_net *net, struct bp__pool *pool);
void bp__pool_run(struct bp__pool *pool, bp__job_fn fn, void *ctx);
void bp__pool_barrier(struct bp__pool *pool);  /* spinning: for the steps of one job */

/* The pass helpers of a single-worker network (helpers.c, bp_net_set_pass_threads):
 * bp__helpers_run runs fn(ctx, c) for every chunk c in [0, n_chunks), on the calling
 * thread and whichever helpers are awake, and returns when all are done. */
typedef void (*bp__chunk_fn)(const void *ctx, bp_int chunk);
struct bp__helpers;
bp_status bp__helpers_create(bp_net *net, const char *fn, int n_threads, struct bp__helpers **out);
void bp__helpers_destroy(bp_net *net, struct bp__helpers *helpers);
void bp__helpers_run(struct bp__helpers *helpers, bp__chunk_fn fn, const void *ctx, bp_int n_chunks);

/* A single worker cuts a layer's element-wise passes into chunks of rows, to share them
 * with the helpers, from this many values (rows x features) of a micro-batch: below it,
 * waking helpers costs more than they save. At most BP_PASS_MAX_CHUNKS chunks; the
 * backward pass sums each chunk's part of db into its own row of a planned buffer, and
 * the parts are added in chunk order, so db does not depend on who took which chunk. */
#define BP_HELP_MIN_VALUES 65536
#define BP_PASS_MAX_CHUNKS 64

struct bp_net {
    bp_dtype dtype;
    size_t esize;            /* sizeof(float) or sizeof(double) */
    bp_int n_in, n_layers, max_width;
    bp_loss loss;
    bp__layer *layers;
    size_t n_params;
    void *params, *grads;
    bp_allocator alloc;
    bp_backend backend;
    int check_finite;
    uint64_t rng[4];         /* xoshiro256** state */

    /* Threads (bp_net_set_threads). */
    int n_threads;           /* workers of a training pass; 1: the caller's thread alone */
    struct bp__pool *pool;   /* the other n_threads - 1, or NULL */
    bp__worker *workers;     /* n_threads */
    int blas_threads_saved;  /* OpenBLAS's thread count before a threaded mode set 1; 0: untouched */
    int pass_threads;        /* bp_net_set_pass_threads: threads of a single worker's passes */
    struct bp__helpers *helpers; /* its pass_threads - 1 helpers, once a plan has passes to share */

    /* The plan (arena == NULL: not planned). */
    bp_int mb;               /* max micro-batch */
    void *arena_raw, *arena; /* arena is arena_raw aligned to 64 bytes */
    size_t arena_bytes;
    size_t g_off[2];         /* the two gradient / inference buffers, mb x max_width */
    size_t xg_off, tg_off;   /* gather buffers of the training helper: mb x n_in, mb targets */
    size_t part_off;         /* db parts of a chunked pass, BP_PASS_MAX_CHUNKS x widest n_out, or SIZE_MAX */
    bp__step *steps;
    bp_int n_steps;
};

/* Memory through the network's allocator. */
void *bp__net_alloc(const bp_net *net, size_t bytes);
void bp__net_free(const bp_net *net, void *p);

/* The default allocator (malloc/free). */
extern const bp_allocator bp__default_allocator;

/* Nonzero when every element of the n values is finite. */
int bp__all_finite(bp_dtype dtype, size_t n, const void *x);

/* Random numbers (src/core/rng.c): xoshiro256** seeded through splitmix64. */
void bp__rng_seed(uint64_t s[4], uint64_t seed);
uint64_t bp__rng_next(uint64_t s[4]);
double bp__rng_uniform(uint64_t s[4]);    /* [0, 1), 53 bits */
double bp__rng_normal(uint64_t s[4]);     /* N(0, 1), Box-Muller */
uint64_t bp__rng_below(uint64_t s[4], uint64_t n);  /* uniform in [0, n), unbiased */

#endif
