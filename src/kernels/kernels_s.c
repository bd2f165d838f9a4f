/* kernels_s.c: the float (bp_s...) kernels, instantiated from the templates. */
#define BP_PREC_S
#include "core/prec.h"
#include "kernels/validate.tmpl.c"
#include "kernels/kernels.tmpl.c"
