/* SPDX-License-Identifier: MIT */
/* optim_internal.h: what optim.c shares with the update-kernel template. */
#ifndef BP_OPTIM_INTERNAL_H
#define BP_OPTIM_INTERNAL_H

#include <stdint.h>
#include "backprop/optim.h"

/* Checks the fields of c that the update rule of c->kind reads. */
bp_status bp__optim_check_rule(const char *fn, const bp_optim_config *c);

/* Checks that opt and net are not NULL and belong together, and that a step is left. */
bp_status bp__optim_check_net(const char *fn, const bp_optim *opt, const bp_net *net);

/* One training step over n checked samples: a pass over the batch (X's rows, or its rows
 * idx[0..n-1] gathered into the arena; see bp__?net_batch) and the update, fused for plain
 * SGD where bp_optim_train_step says so. *correct as in bp__?net_batch. */
bp_status bp__optim_train_batch(const char *fn, bp_optim *opt, bp_net *net, bp_int n, const void *X,
                                bp_int ldx, const int32_t *idx, const void *targets, bp_int ldt,
                                double *loss, int64_t *correct);

/* What a model file keeps of an optimizer (io/model.c): its configuration, its step count and
 * its moment buffers (n_params values of the dtype each; NULL where the rule keeps none). The
 * pointers lead into the optimizer: a load writes the step count and moments through them. */
typedef struct bp__optim_view {
    const bp_optim_config *config;
    long *steps;
    void *m, *v;
} bp__optim_view;
bp__optim_view bp__optim_state(const bp_optim *opt);

#endif
