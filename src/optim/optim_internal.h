/* optim_internal.h: what optim.c shares with the update-kernel template. */
#ifndef BP_OPTIM_INTERNAL_H
#define BP_OPTIM_INTERNAL_H

#include "backprop/optim.h"

/* Checks the fields of c that the update rule of c->kind reads. */
bp_status bp__optim_check_rule(const char *fn, const bp_optim_config *c);

#endif
