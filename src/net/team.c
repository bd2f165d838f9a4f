/* SPDX-License-Identifier: MIT */
/* team.c: a network's thread team (team.h).
 *
 * A run posts a step as (generation, chunk counter) in one 64-bit word, generation << 32 |
 * next chunk. The caller and the helpers claim chunks by compare-and-swap on that word, so a
 * helper that read a step late can never take a chunk of a later one: its claim fails once the
 * generation has moved on. The step's description sits in one of two slots, by generation
 * parity, because a late helper may still be reading the previous one. Each chunk is computed
 * by exactly one thread, exactly as on the caller, so who took it does not show in results.
 *
 * Waiting is bounded spinning, then blocking: a helper spins BP_SPIN_NS for the next step,
 * then sleeps on `wake`; the caller spins as long for the chunks that helpers still compute,
 * then sleeps on `finished`. Each side announces that it sleeps (sleepers, caller_sleeps)
 * before it checks its condition a last time, and the other side reads that announcement
 * after it changed the condition, so no wake-up is lost (sequentially consistent atomics). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "net/net_internal.h"
#include "net/team.h"
#include "net/tuning.h"

typedef struct slot {
    _Atomic(bp__chunk_fn) fn;
    _Atomic(const void *) ctx;
    atomic_int n;
} slot;

struct bp__team {
    int n;                      /* threads, the caller's included */
    pthread_t *threads;         /* the n - 1 helpers */
    _Atomic uint64_t state;     /* generation << 32 | next chunk */
    atomic_int done;            /* chunks finished in the current generation */
    slot job[2];                /* by generation parity */
    atomic_int sleepers;        /* helpers blocked on wake */
    atomic_int caller_sleeps;   /* the caller blocked on finished */
    atomic_int quit;
    pthread_mutex_t lock;
    pthread_cond_t wake, finished;
    bp_status st[BP_TEAM_MAX_CHUNKS];      /* of each chunk of the current run */
    char err[BP_TEAM_MAX_CHUNKS][512];     /* the message of a failed chunk */
};

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Spins until done(arg) or BP_SPIN_NS have passed; returns done(arg). */
static int spin_until(int (*done)(struct bp__team *, uint32_t), struct bp__team *t, uint32_t arg)
{
    const int64_t end = now_ns() + BP_SPIN_NS;
    for (unsigned i = 1;; i++) {
        if (done(t, arg))
            return 1;
        cpu_relax();
        if (i % 64 == 0 && now_ns() > end)
            return done(t, arg);
    }
}

static uint32_t generation(struct bp__team *t)
{
    return (uint32_t)(atomic_load(&t->state) >> 32);
}

static int moved_on(struct bp__team *t, uint32_t seen)
{
    return generation(t) != seen || atomic_load(&t->quit);
}

static int all_done(struct bp__team *t, uint32_t n)
{
    return atomic_load(&t->done) >= (int)n;
}

/* Runs one chunk, keeping a failure's status and message for the caller. */
static void run_chunk(struct bp__team *t, bp__chunk_fn fn, const void *ctx, uint32_t c)
{
    const bp_status st = fn(ctx, (bp_int)c);
    t->st[c] = st;
    if (st != BP_OK)
        snprintf(t->err[c], sizeof t->err[c], "%s", bp_last_error());
}

/* Takes chunks of generation gen until none is left; returns at once if the generation has
 * moved on. A helper that finishes the last chunk wakes a sleeping caller. */
static void take_chunks(struct bp__team *t, uint32_t gen, int helper)
{
    slot *s = &t->job[gen & 1];
    const bp__chunk_fn fn = atomic_load(&s->fn);
    const void *ctx = atomic_load(&s->ctx);
    const uint32_t n = (uint32_t)atomic_load(&s->n);
    uint64_t cur = atomic_load(&t->state);
    for (;;) {
        if ((uint32_t)(cur >> 32) != gen || (uint32_t)cur >= n)
            return;
        if (!atomic_compare_exchange_weak(&t->state, &cur, cur + 1))
            continue;
        /* The claim succeeded in generation gen, so fn, ctx and n were its own. */
        run_chunk(t, fn, ctx, (uint32_t)cur);
        if (atomic_fetch_add(&t->done, 1) + 1 == (int)n && helper && atomic_load(&t->caller_sleeps)) {
            pthread_mutex_lock(&t->lock);
            pthread_cond_signal(&t->finished);
            pthread_mutex_unlock(&t->lock);
        }
        cur = atomic_load(&t->state);
    }
}

static void *helper_main(void *arg)
{
    struct bp__team *t = arg;
    uint32_t seen = 0;
    while (!atomic_load(&t->quit)) {
        if (!spin_until(moved_on, t, seen)) {
            pthread_mutex_lock(&t->lock);
            atomic_fetch_add(&t->sleepers, 1);
            while (!moved_on(t, seen))
                pthread_cond_wait(&t->wake, &t->lock);
            atomic_fetch_sub(&t->sleepers, 1);
            pthread_mutex_unlock(&t->lock);
        }
        seen = generation(t);
        if (!atomic_load(&t->quit))
            take_chunks(t, seen, 1);
    }
    return NULL;
}

static void stop(struct bp_net *net, struct bp__team *t, int started)
{
    pthread_mutex_lock(&t->lock);
    atomic_store(&t->quit, 1);
    pthread_cond_broadcast(&t->wake);
    pthread_mutex_unlock(&t->lock);
    for (int i = 0; i < started; i++)
        pthread_join(t->threads[i], NULL);
    pthread_cond_destroy(&t->wake);
    pthread_cond_destroy(&t->finished);
    pthread_mutex_destroy(&t->lock);
    bp__net_free(net, t->threads);
    bp__net_free(net, t);
}

bp_status bp__team_create(struct bp_net *net, const char *fn, int n, struct bp__team **out)
{
    struct bp__team *t = bp__net_alloc(net, sizeof *t);
    pthread_t *threads = bp__net_alloc(net, (size_t)(n - 1) * sizeof *threads);
    if (!t || !threads) {
        bp__net_free(net, t);
        bp__net_free(net, threads);
        return bp__fail(BP_ERR_NOMEM, fn, "allocating a team of %d threads", n);
    }
    memset(t, 0, sizeof *t);
    t->n = n;
    t->threads = threads;
    atomic_init(&t->state, 0);
    atomic_init(&t->done, 0);
    atomic_init(&t->sleepers, 0);
    atomic_init(&t->caller_sleeps, 0);
    atomic_init(&t->quit, 0);
    for (int i = 0; i < 2; i++) {
        atomic_init(&t->job[i].fn, NULL);
        atomic_init(&t->job[i].ctx, NULL);
        atomic_init(&t->job[i].n, 0);
    }
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->wake, NULL);
    pthread_cond_init(&t->finished, NULL);
    for (int i = 0; i < n - 1; i++) {
        if (pthread_create(&threads[i], NULL, helper_main, t) != 0) {
            stop(net, t, i);
            return bp__fail(BP_ERR_NOMEM, fn, "starting helper thread %d of %d", i + 1, n - 1);
        }
    }
    *out = t;
    return BP_OK;
}

void bp__team_destroy(struct bp_net *net, struct bp__team *t)
{
    if (t)
        stop(net, t, t->n - 1);
}

/* The first failed chunk in chunk order, its message raised on the calling thread. */
static bp_status first_failure(const struct bp__team *t, bp_int n_chunks)
{
    for (bp_int c = 0; c < n_chunks; c++)
        if (t->st[c] != BP_OK)
            return bp__fail_copy(t->st[c], t->err[c]);
    return BP_OK;
}

bp_status bp__team_run(struct bp__team *t, bp__chunk_fn fn, const void *ctx, bp_int n_chunks)
{
    if (!t || n_chunks <= 1) {
        for (bp_int c = 0; c < n_chunks; c++)
            TRY(fn(ctx, c));
        return BP_OK;
    }
    const uint32_t gen = generation(t) + 1;
    slot *s = &t->job[gen & 1];
    atomic_store(&s->fn, fn);
    atomic_store(&s->ctx, ctx);
    atomic_store(&s->n, (int)n_chunks);
    atomic_store(&t->done, 0);
    atomic_store(&t->state, (uint64_t)gen << 32);  /* posts the step */
    if (atomic_load(&t->sleepers) > 0) {
        pthread_mutex_lock(&t->lock);
        pthread_cond_broadcast(&t->wake);
        pthread_mutex_unlock(&t->lock);
    }
    take_chunks(t, gen, 0);
    /* Every chunk is taken; wait for those that helpers still compute. */
    if (!spin_until(all_done, t, (uint32_t)n_chunks)) {
        pthread_mutex_lock(&t->lock);
        atomic_store(&t->caller_sleeps, 1);
        while (!all_done(t, (uint32_t)n_chunks))
            pthread_cond_wait(&t->finished, &t->lock);
        atomic_store(&t->caller_sleeps, 0);
        pthread_mutex_unlock(&t->lock);
    }
    return first_failure(t, n_chunks);
}
