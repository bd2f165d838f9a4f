/* SPDX-License-Identifier: MIT */
/* naive_s.c: the float naive twins (bp_s..._naive), instantiated from the template. */
#define BP_PREC_S
#include "core/prec.h"
#include "kernels/validate.tmpl.c"
#include "ref/naive.tmpl.c"
