/* SPDX-License-Identifier: MIT */
/* optim_d.c: the double optimizer kernel bp_doptim_update, instantiated from the template. */
#define _POSIX_C_SOURCE 200809L  /* cblas.h: BLIS's needs the pthread types */
#define BP_PREC_D
#include "core/prec.h"
#include "optim/optim.tmpl.c"
