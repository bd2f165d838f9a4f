/* helpers.c: the pass helpers of a single-worker network (bp_net_set_pass_threads).
 *
 * On one worker thread the GEMMs run on OpenBLAS's threads, but the element-wise passes
 * between them (bias + activation, dZ + db) ran on the calling thread alone while the
 * other cores waited for the next GEMM. A pass is cut into chunks, and the caller and
 * the helper threads take chunks from one counter until none is left. The caller never
 * waits for a helper to wake up: a helper that arrives late finds fewer chunks, or none.
 * Between passes the helpers sleep, leaving the cores to BLAS.
 *
 * The counter is one 64-bit word, generation << 32 | next chunk, so a late helper can
 * never take a chunk of a pass it did not read the description of: a claim is a
 * compare-and-swap that fails once the generation has moved on. Each chunk is computed
 * by exactly one thread, the same way as on one thread, so results do not depend on who
 * took which chunk. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include "net/net_internal.h"

/* A pass, as the helpers read it: two slots, for the current generation and the one
 * before (a helper may still be reading the old one when the next pass is posted). */
typedef struct slot {
    _Atomic(bp__chunk_fn) fn;
    _Atomic(const void *) ctx;
    atomic_int n;
} slot;

struct bp__helpers {
    int n;                     /* threads, the caller's included */
    pthread_t *threads;        /* the n - 1 helpers */
    _Atomic uint64_t state;    /* generation << 32 | next chunk */
    atomic_int done;           /* chunks finished in the current generation */
    slot job[2];               /* by generation parity */
    atomic_int sleepers;
    atomic_int quit;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int avoid;                 /* the CPU the helpers were last kept off, or -1 */
};

/* A helper checks this many times for the next pass before it sleeps: passes come
 * between GEMMs, which need the cores, so it does not wait long. */
enum { HELPER_SPIN = 1 << 11 };

/* Takes chunks of generation gen until none is left; returns at once if the generation
 * has moved on. */
static void take_chunks(struct bp__helpers *h, uint32_t gen)
{
    slot *s = &h->job[gen & 1];
    const bp__chunk_fn fn = atomic_load(&s->fn);
    const void *ctx = atomic_load(&s->ctx);
    const uint32_t n = (uint32_t)atomic_load(&s->n);
    uint64_t cur = atomic_load(&h->state);
    for (;;) {
        if ((uint32_t)(cur >> 32) != gen || (uint32_t)cur >= n)
            return;
        if (atomic_compare_exchange_weak(&h->state, &cur, cur + 1)) {
            /* The claim succeeded in generation gen, so fn, ctx and n were its own. */
            fn(ctx, (bp_int)(uint32_t)cur);
            atomic_fetch_add(&h->done, 1);
            cur = atomic_load(&h->state);
        }
    }
}

static uint32_t generation(struct bp__helpers *h)
{
    return (uint32_t)(atomic_load(&h->state) >> 32);
}

static void *helper_main(void *arg)
{
    struct bp__helpers *h = arg;
    uint32_t seen = 0;
    while (!atomic_load(&h->quit)) {
        const uint32_t gen = generation(h);
        if (gen != seen) {
            seen = gen;
            take_chunks(h, gen);
            continue;
        }
        for (int i = 0; i < HELPER_SPIN && generation(h) == seen; i++)
            ;
        pthread_mutex_lock(&h->lock);
        atomic_fetch_add(&h->sleepers, 1);
        while (generation(h) == seen && !atomic_load(&h->quit))
            pthread_cond_wait(&h->wake, &h->lock);
        atomic_fetch_sub(&h->sleepers, 1);
        pthread_mutex_unlock(&h->lock);
    }
    return NULL;
}

static void stop(bp_net *net, struct bp__helpers *h, int started)
{
    pthread_mutex_lock(&h->lock);
    atomic_store(&h->quit, 1);
    pthread_cond_broadcast(&h->wake);
    pthread_mutex_unlock(&h->lock);
    for (int i = 0; i < started; i++)
        pthread_join(h->threads[i], NULL);
    pthread_cond_destroy(&h->wake);
    pthread_mutex_destroy(&h->lock);
    bp__net_free(net, h->threads);
    bp__net_free(net, h);
}

bp_status bp__helpers_create(bp_net *net, const char *fn, int n, struct bp__helpers **out)
{
    struct bp__helpers *h = bp__net_alloc(net, sizeof *h);
    pthread_t *threads = bp__net_alloc(net, (size_t)(n - 1) * sizeof *threads);
    if (!h || !threads) {
        bp__net_free(net, h);
        bp__net_free(net, threads);
        return bp__fail(BP_ERR_NOMEM, fn, "allocating %d pass helpers", n - 1);
    }
    memset(h, 0, sizeof *h);
    h->n = n;
    h->threads = threads;
    atomic_init(&h->state, 0);
    atomic_init(&h->done, 0);
    atomic_init(&h->sleepers, 0);
    atomic_init(&h->quit, 0);
    for (int i = 0; i < 2; i++) {
        atomic_init(&h->job[i].fn, NULL);
        atomic_init(&h->job[i].ctx, NULL);
        atomic_init(&h->job[i].n, 0);
    }
    h->avoid = -1;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->wake, NULL);
    for (int i = 0; i < n - 1; i++) {
        if (pthread_create(&threads[i], NULL, helper_main, h) != 0) {
            stop(net, h, i);
            return bp__fail(BP_ERR_NOMEM, fn, "starting pass helper %d of %d", i + 1, n - 1);
        }
    }
    *out = h;
    return BP_OK;
}

void bp__helpers_destroy(bp_net *net, struct bp__helpers *h)
{
    if (h)
        stop(net, h, h->n - 1);
}

/* Keeps the helpers off the CPU the calling thread runs on: woken there, a helper would
 * take the CPU from the caller instead of using an idle one. Only when that CPU changed,
 * and only where the caller may run on another CPU too. */
static void avoid_caller_cpu(struct bp__helpers *h)
{
#ifdef __linux__
    const int cpu = sched_getcpu();
    if (cpu < 0 || cpu == h->avoid)
        return;
    cpu_set_t set;
    if (pthread_getaffinity_np(pthread_self(), sizeof set, &set) != 0 || !CPU_ISSET(cpu, &set))
        return;
    CPU_CLR(cpu, &set);
    if (CPU_COUNT(&set) == 0)
        return;
    h->avoid = cpu;
    for (int i = 0; i < h->n - 1; i++)
        pthread_setaffinity_np(h->threads[i], sizeof set, &set);
#else
    (void)h;
#endif
}

void bp__helpers_run(struct bp__helpers *h, bp__chunk_fn fn, const void *ctx, bp_int n_chunks)
{
    if (!h) {
        for (bp_int c = 0; c < n_chunks; c++)
            fn(ctx, c);
        return;
    }
    avoid_caller_cpu(h);
    const uint32_t gen = generation(h) + 1;
    slot *s = &h->job[gen & 1];
    atomic_store(&s->fn, fn);
    atomic_store(&s->ctx, ctx);
    atomic_store(&s->n, (int)n_chunks);
    atomic_store(&h->done, 0);
    atomic_store(&h->state, (uint64_t)gen << 32);  /* posts the pass */
    if (atomic_load(&h->sleepers) > 0) {
        pthread_mutex_lock(&h->lock);
        pthread_cond_broadcast(&h->wake);
        pthread_mutex_unlock(&h->lock);
    }
    take_chunks(h, gen);
    /* Every chunk is taken; wait for the ones helpers are still computing (yielding now
     * and then, as the pool's barrier does, in case the machine is oversubscribed). */
    for (unsigned i = 1; atomic_load(&h->done) < (int)n_chunks; i++)
        if (i % 4096 == 0)
            sched_yield();
}
