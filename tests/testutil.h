/* SPDX-License-Identifier: MIT */
/* testutil.h: helpers shared by the Check suites: seeded PRNG, fills, normwise comparison, sentinels, reference formulas. */
#ifndef BP_TESTUTIL_H
#define BP_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <backprop.h>

/* splitmix64: small, seeded, the same sequence on every platform. */
typedef struct tu_rng {
    uint64_t state;
} tu_rng;

tu_rng tu_rng_make(uint64_t seed);
uint64_t tu_next(tu_rng *r);
/* Uniform in [lo, hi), rounded to the nearest float so that converting test
 * data to float is exact and float-vs-double comparisons measure only the
 * kernels' own rounding. */
double tu_unif(tu_rng *r, double lo, double hi);
int tu_int(tu_rng *r, int lo, int hi); /* uniform in [lo, hi] */

/* Untouched memory holds all-ones bytes: a NaN in float and in double, so an
 * output that is read when the contract says it is not poisons the result. */
#define TU_SENTINEL_BYTE 0xFF
void tu_sentinel(void *p, size_t bytes);
int tu_is_sentinel(const void *p, size_t bytes);

/* Elements spanned by a rows x width block with leading dimension ld: (rows - 1) ld + width
 * (0 when rows or width is not positive). Buffers handed to kernels have exactly this size,
 * so ASan catches a read past the last row's width. */
size_t tu_extent(int rows, int width, int ld);
/* W (n_out x n_in) in `layout`: stored rows and their width, its extent, and the index of (o, i). */
int tu_wrows(bp_layout layout, int n_in, int n_out);
int tu_wwidth(bp_layout layout, int n_in, int n_out);
size_t tu_wextent(bp_layout layout, int n_in, int n_out, int ldw);
size_t tu_widx(bp_layout layout, int o, int i, int ldw);

/* count doubles, every byte the sentinel; never NULL (fails the test instead). */
double *tu_alloc(size_t count);
double *tu_dup(const double *src, size_t count);
/* Fills the rows x width block with tu_unif(lo, hi); the padding keeps its contents. */
void tu_fill(tu_rng *r, double *a, int rows, int width, int ld, double lo, double hi);
/* Nonzero when every padding element (columns width..ld-1 of every row) is still the sentinel. */
int tu_pad_ok(const double *a, int rows, int width, int ld);
/* dst[j ldd + i] = src[i lds + j] for a rows x cols src. */
void tu_transpose(int rows, int cols, const double *src, int lds, double *dst, int ldd);

/* Normwise error of a against the reference b over rows x width blocks:
 * max|a - b| / max(max|b|, floor); +Inf if anything is NaN or Inf. */
double tu_err(int rows, int width, const double *a, int lda, const double *b, int ldb, double floor);
/* Relative error of one scalar: |a - b| / max(|b|, floor); +Inf if not finite. */
double tu_rel(double a, double b, double floor);
/* Floor for tu_err: results here are O(1), this only guards all-zero references. */
#define TU_FLOOR 1e-30

/* Tolerance for a result of a length-k reduction in precision eps:
 * 8 (k + 2) eps, i.e. DESIGN's 8 k eps plus two roundings for the elementwise
 * bias, activation and loss formulas that follow the reduction. */
double tu_tol(double k, double eps);

/* Reference formulas written from the table in backprop/kernels.h, in double with libm. */
double tu_act(bp_act act, double alpha, double z); /* any activation but softmax */
/* Y = f(Z) over an n x m block, softmax included. */
void tu_act_block(bp_act act, double alpha, int n, int m, const double *Z, int ldz, double *Y, int ldy);
/* A valid alpha for `act`: leaky relu [0.01, 0.5], elu [0.5, 2]; others ignore it and get
 * an arbitrary value in [-1, 1], which the kernels must accept. */
double tu_alpha(tu_rng *r, bp_act act);
const char *tu_act_name(bp_act act);
const char *tu_layout_name(bp_layout layout);

#define TU_NACT 10 /* activations are 0 .. TU_NACT - 1 */

/* A suite's main: runs every test of s (CK_NORMAL), frees the runner, and returns EXIT_SUCCESS
 * when none failed, else EXIT_FAILURE. */
int tu_run_suite(Suite *s);
/* Removes the entries of directory dir (files, and subdirectories that are empty), then dir
 * itself; a directory that cannot be opened is left alone. */
void tu_remove_dir(const char *dir);

#endif
