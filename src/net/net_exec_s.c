/* net_exec_s.c: the float network executor, instantiated from the template. */
#define BP_PREC_S
#include "core/prec.h"
#include "net/net_exec.tmpl.c"
