/* kernels_d.c: the double (bp_d...) kernels, instantiated from the templates. */
#define BP_PREC_D
#include "core/prec.h"
#include "kernels/validate.tmpl.c"
#include "kernels/kernels.tmpl.c"
