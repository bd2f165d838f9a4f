/* SPDX-License-Identifier: MIT */
/* kernels_s.c: the float (bp_s...) kernels, instantiated from the templates. */
#define _POSIX_C_SOURCE 200809L  /* cblas.h: BLIS's needs the pthread types */
#define BP_PREC_S
#include "core/prec.h"
#include "kernels/validate.tmpl.c"
#include "kernels/kernels.tmpl.c"
