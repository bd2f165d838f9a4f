/* SPDX-License-Identifier: MIT */
/* dp.h: a gradient pass with the network's reducer (backprop/parallel.h), the executor's side
 * (parallel.c). The pass calls bp__dp_begin, bp__dp_ready for each layer from the last down as
 * its gradient becomes final, bp__dp_progress between steps, and bp__dp_finish, which announces
 * any layer not yet announced (a rank with no rows, a pass that failed) and completes the sums. */
#ifndef BP_NET_DP_H
#define BP_NET_DP_H

#include "net/net_internal.h"

/* Nonzero when a pass in `mode` over the network is reduced across ranks (dp.h's callers pass
 * mode == BP_MODE_GRAD as `grad`). */
static inline int bp__dp_on(const bp_net *net, int grad)
{
    return grad && net->has_reducer;
}

/* Starts a reduced pass over this rank's n rows: *n_total receives the global batch size. */
bp_status bp__dp_begin(bp_net *net, const char *fn, bp_int n, bp_int *n_total);

/* A reduced pass refused on this rank before it began (st, its arguments; message recorded):
 * with a reducer, begin tells the other ranks (n_local -1), which return an error instead of
 * waiting for this one. Returns st with its message. Any net, NULL included. */
bp_status bp__dp_refused(bp_net *net, bp_status st);

/* Layer i's gradient is final on this rank: its reduction may start. */
bp_status bp__dp_ready(bp_net *net, const char *fn, bp_int i);

/* Between steps, while reductions are outstanding. */
bp_status bp__dp_progress(bp_net *net, const char *fn);

/* Ends a reduced pass whose local part returned `local` (its message already recorded): announces
 * the layers left, completes the sums, and sums *loss and *correct (may be NULL) over the ranks.
 * Returns `local` on this rank's failure, BP_ERR_COMM when another rank failed, else the
 * reducer's status. */
bp_status bp__dp_finish(bp_net *net, const char *fn, bp_status local, double *loss, int64_t *correct);

/* Sums the n values v over the ranks (no reducer: unchanged). */
bp_status bp__dp_sum(bp_net *net, const char *fn, double *v, int n);

/* Sums the n values v over the ranks with this rank's outcome `local` (v has room for n + 1: the
 * last is the failure flag): every rank learns whether any failed, `what` saying where. Returns
 * local on this rank's failure, BP_ERR_COMM when another rank failed, else BP_OK. */
bp_status bp__dp_sum_outcome(bp_net *net, const char *fn, bp_status local, double *v, int n, const char *what);

/* BP_ERR_UNSUPPORTED when the network has a reducer: `what` cannot run data-parallel. */
bp_status bp__dp_refuse(const bp_net *net, const char *fn, const char *what);

#endif
