/* SPDX-License-Identifier: MIT */
/* runner.c: the float and double runners of runner.h, from one template (runner_tmpl.h). */
#include "runner.h"

#include <float.h>

#define T float
#define K(name) bp_s##name
#define R(name) name##_s
#define T_EPS FLT_EPSILON
#define T_NAME "float"
#include "runner_tmpl.h"
#undef T
#undef K
#undef R
#undef T_EPS
#undef T_NAME

#define T double
#define K(name) bp_d##name
#define R(name) name##_d
#define T_EPS DBL_EPSILON
#define T_NAME "double"
#include "runner_tmpl.h"
