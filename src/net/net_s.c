/* SPDX-License-Identifier: MIT */
/* net_s.c: the float halves of the network, instantiated from the templates of src/net. */
#include <math.h>
#include <string.h>
#define BP_PREC_S
#include "core/prec.h"
#include "net/steps.h"
#include "net/exec.tmpl.c"
#include "net/input.tmpl.c"
#include "net/batch.tmpl.c"
#include "net/infer.tmpl.c"
#include "net/gradcheck.tmpl.c"
#include "net/init.tmpl.c"
