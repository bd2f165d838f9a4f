/* SPDX-License-Identifier: MIT */
/* test_blas_lib.c: the shared object that serves cblas_sgemm and cblas_dgemm is the CBLAS chosen
 * with -Dblas (LAPACKE also brings a BLAS into the process: whichever comes first wins). */
#define _GNU_SOURCE  /* dladdr, Dl_info, RTLD_DEFAULT */
#include <dlfcn.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backprop.h"

/* The word the object's path must contain, from meson (blas_soname_word). */
#ifndef BP_EXPECT_BLAS
#error "BP_EXPECT_BLAS must name the expected CBLAS"
#endif

/* This program links only libbackprop, as a user's program does, so the process holds the BLAS
 * the library was linked with and the one LAPACKE pulls in, in the library's link order. Without
 * -Bsymbolic the library's calls to cblas_?gemm bind in the global scope, which is what
 * dlsym(RTLD_DEFAULT) searches: the address found here is the one the library calls. */
static int check_symbol(const char *name)
{
    void *f = dlsym(RTLD_DEFAULT, name);
    if (!f) {
        printf("%s: not found in the process (%s)\n", name, dlerror());
        return 1;
    }
    Dl_info info;
    if (!dladdr(f, &info) || !info.dli_fname) {
        printf("%s: dladdr cannot name the object serving it\n", name);
        return 1;
    }
    char real[PATH_MAX];
    const char *path = realpath(info.dli_fname, real) ? real : info.dli_fname;
    const int ok = strstr(path, BP_EXPECT_BLAS) != NULL;
    printf("%s: served by %s (%s): %s\n", name, info.dli_fname, path,
           ok ? "the chosen CBLAS" : "NOT the chosen CBLAS \"" BP_EXPECT_BLAS "\"");
    return !ok;
}

/* One forward pass through the library's gemm path (a batch of 2), so the library has called
 * the BLAS before the check: y = W x for W = [[1, 2], [3, 4]] gives [5, 11] and [11, 25]. */
static int check_forward(void)
{
    const double X[4] = {1, 2, 3, 4}, W[4] = {1, 2, 3, 4}, want[4] = {5, 11, 11, 25};
    double Y[4];
    bp_status st = bp_ddense_forward(BP_ROW_MAJOR, 2, 2, 2, X, 2, W, 2, NULL, BP_ACT_IDENTITY, 0, NULL, 0, Y, 2);
    int bad = st != BP_OK;
    for (int i = 0; i < 4 && !bad; i++)
        bad = fabs(Y[i] - want[i]) > 1e-12;
    printf("bp_ddense_forward through the BLAS: %s\n", bad ? "WRONG" : "right");
    return bad;
}

int main(void)
{
    const int failed = check_forward() + check_symbol("cblas_sgemm") + check_symbol("cblas_dgemm");
    printf("%d passed, %d failed\n", 3 - failed, failed);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
