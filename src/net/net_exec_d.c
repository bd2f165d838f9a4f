/* net_exec_d.c: the double network executor, instantiated from the template. */
#define BP_PREC_D
#include "core/prec.h"
#include "net/net_exec.tmpl.c"
