/* SPDX-License-Identifier: MIT */
/* naive_d.c: the double naive twins (bp_d..._naive), instantiated from the template. */
#define BP_PREC_D
#include "core/prec.h"
#include "kernels/validate.tmpl.c"
#include "ref/naive.tmpl.c"
