/* optim_s.c: the float optimizer kernel bp_soptim_update, instantiated from the template. */
#define BP_PREC_S
#include "core/prec.h"
#include "optim/optim.tmpl.c"
