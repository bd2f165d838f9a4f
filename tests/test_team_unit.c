/* SPDX-License-Identifier: MIT */
/* test_team_unit.c: the thread team itself (src/net/team.c), linked from the static library:
 * every chunk runs exactly once per run, runs follow each other without losing a chunk or a
 * wake-up (also with helpers asleep between runs), a failure is the first failed chunk's in
 * chunk order with the message raised in whichever thread ran it, and a team is stopped cleanly. */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "net/net_internal.h"
#include "net/team.h"
#include "testutil.h"

enum { MAXC = BP_TEAM_MAX_CHUNKS };

typedef struct counts {
    atomic_int hits[MAXC];
    int fail_from;   /* chunks >= fail_from fail (naming their number); MAXC: none */
} counts;

static bp_status count_chunk(const void *ctx, bp_int c)
{
    counts *k = (counts *)(uintptr_t)ctx;
    atomic_fetch_add(&k->hits[c], 1);
    if (c >= k->fail_from)
        return bp__fail(BP_ERR_NONFINITE, "chunk", "chunk %d failed", (int)c);
    return BP_OK;
}

static bp_net *any_net(void)
{
    static const bp_layer_spec l = {2, BP_ACT_IDENTITY, 0};
    bp_net *net = NULL;
    ck_assert_int_eq(bp_net_create(&net, BP_F32, 2, 1, &l, BP_LOSS_MSE, NULL), BP_OK);
    return net;
}

static void sleep_ms(long ms)
{
    const struct timespec t = {0, ms * 1000000L};
    nanosleep(&t, NULL);
}

/* 6000 runs of 1..MAXC chunks on 2, 3 and 5 threads; every few hundred runs the caller pauses
 * long enough for the helpers to block, so posting also goes through the wake-up. */
START_TEST(test_every_chunk_once)
{
    bp_net *net = any_net();
    static const int sizes[] = {2, 3, 5};
    for (int s = 0; s < 3; s++) {
        struct bp__team *team = NULL;
        ck_assert_int_eq(bp__team_create(net, "test", sizes[s], &team), BP_OK);
        static counts k;
        for (int run = 0; run < 6000; run++) {
            const bp_int n = 1 + run % MAXC;
            for (int c = 0; c < MAXC; c++)
                atomic_init(&k.hits[c], 0);
            k.fail_from = MAXC;
            ck_assert_int_eq(bp__team_run(team, count_chunk, &k, n), BP_OK);
            for (int c = 0; c < MAXC; c++)
                ck_assert_msg(atomic_load(&k.hits[c]) == (c < n), "run %d, %d threads: chunk %d ran %d times", run,
                              sizes[s], c, atomic_load(&k.hits[c]));
            if (run % 500 == 0)
                sleep_ms(2);
        }
        bp__team_destroy(net, team);
    }
    bp_net_destroy(net);
}
END_TEST

/* Chunks 5.. fail: the status is the first failure's in chunk order, with its message, raised
 * on the calling thread even when a helper ran that chunk; every chunk still ran once; the team
 * runs on afterwards. With no team the chunks run in order and the first failure stops them. */
START_TEST(test_first_failure)
{
    bp_net *net = any_net();
    struct bp__team *team = NULL;
    ck_assert_int_eq(bp__team_create(net, "test", 3, &team), BP_OK);
    static counts k;
    for (int run = 0; run < 200; run++) {
        for (int c = 0; c < MAXC; c++)
            atomic_init(&k.hits[c], 0);
        k.fail_from = 5;
        bp__fail(BP_OK, "none", "cleared");
        ck_assert_int_eq(bp__team_run(team, count_chunk, &k, 12), BP_ERR_NONFINITE);
        ck_assert_str_eq(bp_last_error(), "chunk: chunk 5 failed");
        for (int c = 0; c < 12; c++)
            ck_assert_int_eq(atomic_load(&k.hits[c]), 1);
    }
    k.fail_from = MAXC;
    ck_assert_int_eq(bp__team_run(team, count_chunk, &k, 4), BP_OK);
    bp__team_destroy(net, team);
    for (int c = 0; c < MAXC; c++)
        atomic_init(&k.hits[c], 0);
    k.fail_from = 2;
    ck_assert_int_eq(bp__team_run(NULL, count_chunk, &k, 6), BP_ERR_NONFINITE);
    ck_assert_str_eq(bp_last_error(), "chunk: chunk 2 failed");
    ck_assert_int_eq(atomic_load(&k.hits[2]), 1);
    ck_assert_int_eq(atomic_load(&k.hits[3]), 0);
    bp_net_destroy(net);
}
END_TEST

/* A team whose helpers are asleep (the caller paused for 50 ms) is destroyed without a run, and
 * one that never ran is destroyed at once. */
START_TEST(test_stop)
{
    bp_net *net = any_net();
    struct bp__team *team = NULL;
    ck_assert_int_eq(bp__team_create(net, "test", 4, &team), BP_OK);
    bp__team_destroy(net, team);
    ck_assert_int_eq(bp__team_create(net, "test", 4, &team), BP_OK);
    static counts k;
    k.fail_from = MAXC;
    ck_assert_int_eq(bp__team_run(team, count_chunk, &k, 8), BP_OK);
    sleep_ms(50);
    bp__team_destroy(net, team);
    bp__team_destroy(net, NULL);
    bp_net_destroy(net);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("team_unit");
    TCase *tc = tcase_create("team_unit");
    tcase_add_test(tc, test_every_chunk_once);
    tcase_add_test(tc, test_first_failure);
    tcase_add_test(tc, test_stop);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
