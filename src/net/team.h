/* SPDX-License-Identifier: MIT */
/* team.h: a network's thread team, the library's one thread primitive: run the chunks of a step
 * on the calling thread and whichever helper threads are running, then return when all are done. */
#ifndef BP_NET_TEAM_H
#define BP_NET_TEAM_H

#include "backprop/core.h"

struct bp_net;
struct bp__team;

/* A chunk of a step: chunk c of n_chunks, with the step's context. A chunk that fails returns
 * its status with bp_last_error() set, on whichever thread ran it. */
typedef bp_status (*bp__chunk_fn)(const void *ctx, bp_int chunk);

/* The most chunks one run may have (a step has at most one chunk per thread). */
#define BP_TEAM_MAX_CHUNKS 64

/* Starts n - 1 helper threads (n in [2, BP_TEAM_MAX_CHUNKS]); `fn` names the public function
 * in the message of a failure (BP_ERR_NOMEM), which starts none. */
bp_status bp__team_create(struct bp_net *net, const char *fn, int n, struct bp__team **out);

/* Stops and joins the helpers and frees the team; NULL is a no-op. */
void bp__team_destroy(struct bp_net *net, struct bp__team *team);

/* Runs fn(ctx, c) for every c in [0, n_chunks) and returns when every chunk is done. The
 * caller starts at once and takes chunks from a shared counter, as does every helper that is
 * running; a helper that is not running is not waited for, since a chunk is taken only by a
 * thread that runs. Who takes which chunk does not change what a chunk computes, so results
 * depend on n_chunks alone. A waiting thread spins for at most BP_SPIN_NS, then blocks.
 * Returns the status of the first failed chunk in chunk order, its message raised again on
 * the calling thread. team NULL (or one chunk) runs the chunks in order on the caller. */
bp_status bp__team_run(struct bp__team *team, bp__chunk_fn fn, const void *ctx, bp_int n_chunks);

#endif
