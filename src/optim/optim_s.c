/* SPDX-License-Identifier: MIT */
/* optim_s.c: the float optimizer kernel bp_soptim_update, instantiated from the template. */
#define _POSIX_C_SOURCE 200809L  /* cblas.h: BLIS's needs the pthread types */
#define BP_PREC_S
#include "core/prec.h"
#include "optim/optim.tmpl.c"
