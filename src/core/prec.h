/* SPDX-License-Identifier: MIT */
/* prec.h: the names a kernel template uses, bound to float (BP_PREC_S) or double (BP_PREC_D).
 * Include it once per translation unit, before a *.tmpl.c file. */
#include <float.h>
#include <math.h>

#if defined(BP_PREC_S)
typedef float T;
#define PFX(name) bp_s##name        /* public name: bp_sdense_forward */
#define IPFX(name) bp__s##name      /* internal name: bp__snet_batch */
#define LA(name) LAPACKE_s##name    /* LAPACK routine: LAPACKE_sgeqrf */
#define CB(name) cblas_s##name      /* BLAS routine: cblas_sgemm */
#define M(fn) fn##f                 /* libm routine: expf */
#define T_EPS FLT_EPSILON
#elif defined(BP_PREC_D)
typedef double T;
#define PFX(name) bp_d##name
#define IPFX(name) bp__d##name
#define LA(name) LAPACKE_d##name
#define CB(name) cblas_d##name
#define M(fn) fn
#define T_EPS DBL_EPSILON
#else
#error "define BP_PREC_S or BP_PREC_D before including prec.h"
#endif

/* Element (i, j) of a block with leading dimension ld. */
#define AT(A, ld, i, j) ((A)[(size_t)(i) * (size_t)(ld) + (size_t)(j)])
