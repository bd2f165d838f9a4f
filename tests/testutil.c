/* SPDX-License-Identifier: MIT */
/* testutil.c: helpers shared by the Check suites (see testutil.h). */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

tu_rng tu_rng_make(uint64_t seed)
{
    tu_rng r = {seed};
    return r;
}

uint64_t tu_next(tu_rng *r)
{
    uint64_t z = (r->state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

double tu_unif(tu_rng *r, double lo, double hi)
{
    const double u = (double)(tu_next(r) >> 11) * 0x1.0p-53;
    return (double)(float)(lo + (hi - lo) * u);
}

int tu_int(tu_rng *r, int lo, int hi)
{
    const uint64_t span = (uint64_t)((int64_t)hi - lo + 1);
    return (int)((int64_t)lo + (int64_t)(tu_next(r) % span));
}

void tu_sentinel(void *p, size_t bytes)
{
    memset(p, TU_SENTINEL_BYTE, bytes);
}

int tu_is_sentinel(const void *p, size_t bytes)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < bytes; i++)
        if (c[i] != TU_SENTINEL_BYTE)
            return 0;
    return 1;
}

size_t tu_extent(int rows, int width, int ld)
{
    if (rows <= 0 || width <= 0)
        return 0;
    return (size_t)(rows - 1) * (size_t)ld + (size_t)width;
}

int tu_wrows(bp_layout layout, int n_in, int n_out)
{
    return layout == BP_COL_MAJOR ? n_in : n_out;
}

int tu_wwidth(bp_layout layout, int n_in, int n_out)
{
    return layout == BP_COL_MAJOR ? n_out : n_in;
}

size_t tu_wextent(bp_layout layout, int n_in, int n_out, int ldw)
{
    return tu_extent(tu_wrows(layout, n_in, n_out), tu_wwidth(layout, n_in, n_out), ldw);
}

size_t tu_widx(bp_layout layout, int o, int i, int ldw)
{
    return layout == BP_COL_MAJOR ? (size_t)o + (size_t)i * (size_t)ldw
                                  : (size_t)o * (size_t)ldw + (size_t)i;
}

double *tu_alloc(size_t count)
{
    double *p = malloc((count ? count : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    tu_sentinel(p, (count ? count : 1) * sizeof *p);
    return p;
}

double *tu_dup(const double *src, size_t count)
{
    double *p = tu_alloc(count);
    memcpy(p, src, count * sizeof *p);
    return p;
}

void tu_fill(tu_rng *r, double *a, int rows, int width, int ld, double lo, double hi)
{
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < width; j++)
            a[(size_t)i * ld + j] = tu_unif(r, lo, hi);
}

int tu_pad_ok(const double *a, int rows, int width, int ld)
{
    for (int i = 0; i < rows; i++)
        if (!tu_is_sentinel(a + (size_t)i * ld + width, (size_t)(ld - width) * sizeof *a))
            return 0;
    return 1;
}

void tu_transpose(int rows, int cols, const double *src, int lds, double *dst, int ldd)
{
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            dst[(size_t)j * ldd + i] = src[(size_t)i * lds + j];
}

double tu_err(int rows, int width, const double *a, int lda, const double *b, int ldb, double floor)
{
    double dmax = 0, bmax = 0;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < width; j++) {
            const double x = a[(size_t)i * lda + j], y = b[(size_t)i * ldb + j];
            if (!isfinite(x) || !isfinite(y))
                return INFINITY;
            dmax = fmax(dmax, fabs(x - y));
            bmax = fmax(bmax, fabs(y));
        }
    return dmax / fmax(bmax, floor);
}

double tu_rel(double a, double b, double floor)
{
    if (!isfinite(a) || !isfinite(b))
        return INFINITY;
    return fabs(a - b) / fmax(fabs(b), floor);
}

double tu_tol(double k, double eps)
{
    return 8.0 * (k + 2.0) * eps;
}

double tu_act(bp_act act, double alpha, double z)
{
    switch (act) {
    case BP_ACT_IDENTITY:
        return z;
    case BP_ACT_SIGMOID:
        return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
    case BP_ACT_TANH:
        return tanh(z);
    case BP_ACT_RELU:
        return z > 0 ? z : 0.0;
    case BP_ACT_LEAKY_RELU:
        return z > 0 ? z : alpha * z;
    case BP_ACT_ELU:
        return z > 0 ? z : alpha * expm1(z);
    case BP_ACT_GELU:
        return 0.5 * z * erfc(-z / sqrt(2.0));
    case BP_ACT_GELU_TANH:
        return 0.5 * z * (1.0 + tanh(0.79788456080286535588 /* sqrt(2/pi) */ * (z + 0.044715 * z * z * z)));
    case BP_ACT_SOFTPLUS:
        return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
    case BP_ACT_SOFTMAX:
        break;
    }
    ck_abort_msg("tu_act: no scalar formula for activation %d", (int)act);
    return NAN;
}

void tu_act_block(bp_act act, double alpha, int n, int m, const double *Z, int ldz, double *Y, int ldy)
{
    for (int i = 0; i < n; i++) {
        const double *z = Z + (size_t)i * ldz;
        double *y = Y + (size_t)i * ldy;
        if (act != BP_ACT_SOFTMAX) {
            for (int j = 0; j < m; j++)
                y[j] = tu_act(act, alpha, z[j]);
            continue;
        }
        double zmax = z[0], sum = 0;
        for (int j = 1; j < m; j++)
            zmax = fmax(zmax, z[j]);
        for (int j = 0; j < m; j++)
            sum += exp(z[j] - zmax);
        for (int j = 0; j < m; j++)
            y[j] = exp(z[j] - zmax) / sum;
    }
}

double tu_alpha(tu_rng *r, bp_act act)
{
    if (act == BP_ACT_LEAKY_RELU)
        return tu_unif(r, 0.01, 0.5);
    if (act == BP_ACT_ELU)
        return tu_unif(r, 0.5, 2.0);
    return tu_unif(r, -1.0, 1.0);
}

const char *tu_act_name(bp_act act)
{
    static const char *const names[TU_NACT] = {"identity", "sigmoid", "tanh", "relu", "leaky_relu",
                                               "elu", "gelu", "gelu_tanh", "softplus", "softmax"};
    return (unsigned)act < TU_NACT ? names[act] : "unknown";
}

const char *tu_layout_name(bp_layout layout)
{
    return layout == BP_ROW_MAJOR ? "row" : layout == BP_COL_MAJOR ? "col" : "bad";
}

int tu_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

void tu_remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    char path[512];
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0)
            rmdir(path);
    }
    closedir(d);
    rmdir(dir);
}
