/* optim_d.c: the double optimizer kernel bp_doptim_update, instantiated from the template. */
#define BP_PREC_D
#include "core/prec.h"
#include "optim/optim.tmpl.c"
