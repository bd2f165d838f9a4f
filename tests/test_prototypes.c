/* SPDX-License-Identifier: MIT */
/* test_prototypes.c: the written-out prototypes of kernels.h and naive.h agree with the templated definitions. */
#include <check.h>
#include <string.h>

#include "testutil.h"

/* How this suite fails when a prototype and its definition disagree:
 *
 * 1. In the library itself (no run needed): every translation unit that defines kernels
 *    (src/kernels/kernels_?.c, src/ref/naive_?.c) sees the public prototypes (through
 *    kernels_internal.h and backprop/naive.h), so a definition whose type differs from its
 *    prototype is a "conflicting types" error; and the library is compiled with
 *    -Werror=missing-prototypes (src/meson.build), so a definition whose header was not
 *    included, or whose name is misspelt in the header, is an error too. Both builds fail
 *    before any test runs. The two compiler facts this relies on are measured when the build
 *    is configured (tests/meson.build) and asserted by test_compiler_checks below, so a
 *    compiler or a flag change that silences them fails this suite.
 * 2. Here, at compile time: prototypes_tmpl.h copies each definition's parameter list from
 *    the templates (T for the precision) into a function type, and each written prototype,
 *    BLAS kernel and naive twin, in both precisions, must have exactly that type (SAME_TYPE,
 *    a static assertion) and initialise a pointer of it (an error by the pragma below). A
 *    prototype edited away from the template (a float where the template has T, a missing
 *    const, a swapped pair of arguments of different types) stops this file compiling.
 * 3. Here, at run time: each kernel, called through that pointer with a bad argument, returns
 *    BP_ERR_ARG with a message that starts with its own name (the definition's __func__), so a
 *    written name bound to the other precision or to the other twin fails. */
#pragma GCC diagnostic error "-Wincompatible-pointer-types"

/* Two levels, so that the message names the expanded function, e.g. bp_sdense_forward. */
#define SAME_TYPE(fn, type) SAME_TYPE_(fn, type)
#if defined(__GNUC__)
#define SAME_TYPE_(fn, type)                                                                     \
    _Static_assert(__builtin_types_compatible_p(__typeof__(fn), type),                           \
                   #fn ": the written prototype differs from the template's signature")
#else
#define SAME_TYPE_(fn, type) _Static_assert(1, "")
#endif

enum { N_KERNELS = 9 };
typedef bp_status bad_call(int naive, const char **name);

#define T float
#define K(name) bp_s##name
#define A(name) name##_s
#define NAME(name) "bp_s" #name
#include "prototypes_tmpl.h"
#undef T
#undef K
#undef A
#undef NAME
#define T double
#define K(name) bp_d##name
#define A(name) name##_d
#define NAME(name) "bp_d" #name
#include "prototypes_tmpl.h"

_Static_assert(sizeof bad_s / sizeof bad_s[0] == N_KERNELS, "a kernel is missing from the float table");
_Static_assert(sizeof bad_d / sizeof bad_d[0] == N_KERNELS, "a kernel is missing from the double table");

/* _i: kernel (9) x naive (2) x precision (2). */
START_TEST(test_names_and_status)
{
    const int k = _i % N_KERNELS, naive = (_i / N_KERNELS) % 2, dbl = _i / (2 * N_KERNELS);
    const char *name = NULL;
    const bp_status st = (dbl ? bad_d : bad_s)[k](naive, &name);
    ck_assert_int_eq(st, BP_ERR_ARG);
    const char *msg = bp_last_error();
    const size_t len = strlen(name);
    ck_assert_msg(strncmp(msg, name, len) == 0 && msg[len] == ':',
                  "%s raised \"%s\", which names another function", name, msg);
}
END_TEST

/* The compiler facts of point 1, measured by meson with the library's own flags. */
START_TEST(test_compiler_checks)
{
    ck_assert_msg(BP_CONFLICT_IS_ERROR, "a definition that disagrees with backprop/kernels.h compiled");
    ck_assert_msg(BP_UNPROTOTYPED_IS_ERROR, "the library's flags accept a definition without a prototype");
}
END_TEST

static Suite *prototypes_suite(void)
{
    Suite *s = suite_create("prototypes");
    TCase *tc = tcase_create("prototypes");
    tcase_add_loop_test(tc, test_names_and_status, 0, 4 * N_KERNELS);
    tcase_add_test(tc, test_compiler_checks);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(prototypes_suite());
}
