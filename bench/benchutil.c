/* benchutil.c: timing, statistics, random fill and report helpers shared by the benchmarks. */
#define _POSIX_C_SOURCE 200809L

#include "benchutil.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* OpenBLAS extensions, found by meson; other CBLAS lack them. Declared here so
 * the benchmarks do not depend on which cblas.h declares them. */
#ifdef BENCH_HAVE_OPENBLAS_THREADS
int openblas_get_num_threads(void);
#endif
#ifdef BENCH_HAVE_OPENBLAS_CONFIG
char *openblas_get_config(void);
#endif

double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *a, int n)
{
    qsort(a, (size_t)n, sizeof *a, cmp_double);
    return n % 2 ? a[n / 2] : 0.5 * (a[n / 2 - 1] + a[n / 2]);
}

int bench_reps_for(double min_time, double t_each, int min_reps, int max_reps)
{
    double r = t_each > 0 ? ceil(min_time / t_each) : (double)max_reps;
    if (r > max_reps)
        r = max_reps;
    return r < min_reps ? min_reps : (int)r;
}

long bench_parse_int(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    return v;
}

int bench_parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

double bench_uniform(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

void *bench_xalloc(const char *prog, size_t bytes)
{
    /* aligned_alloc wants a multiple of the alignment */
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "%s: out of memory (%zu bytes)\n", prog, bytes);
        exit(1);
    }
    return p;
}

void bench_get_meta(struct bench_meta *m)
{
    time_t t = time(NULL);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(m->date, sizeof m->date, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        strcpy(m->date, "unknown");
    strcpy(m->blas, "unknown CBLAS");
#ifdef BENCH_HAVE_OPENBLAS_CONFIG
    snprintf(m->blas, sizeof m->blas, "%s", openblas_get_config());
    {
        size_t n = strlen(m->blas);   /* OpenBLAS ends its config with a space */
        while (n > 0 && m->blas[n - 1] == ' ')
            m->blas[--n] = '\0';
    }
#endif
    m->threads = -1;
#ifdef BENCH_HAVE_OPENBLAS_THREADS
    m->threads = openblas_get_num_threads();
#endif
    m->cpus = sysconf(_SC_NPROCESSORS_ONLN);
}

void bench_print_ms(int width, double ms)
{
    int dec = ms >= 1000 ? 0 : ms >= 100 ? 1 : ms >= 10 ? 2 : ms >= 1 ? 3 : ms >= 0.1 ? 4 : ms >= 0.01 ? 5 : 6;
    printf("%*.*f", width, dec, ms);
}

void bench_json_num(FILE *f, const char *key, double v, int last)
{
    if (isfinite(v))
        fprintf(f, "\"%s\": %.6g%s", key, v, last ? "" : ", ");
    else
        fprintf(f, "\"%s\": null%s", key, last ? "" : ", ");
}

void bench_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

FILE *bench_dat_open(const char *prog, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "%s: cannot write %s: %s\n", prog, path, strerror(errno));
    return f;
}

void bench_dat_row(FILE *f, int key, char letter, const double *v, size_t n)
{
    fprintf(f, "%d %c", key, letter);
    for (size_t k = 0; k < n; k++) {
        if (isfinite(v[k]))
            fprintf(f, " %.6g", v[k]);
        else
            fprintf(f, " NaN");
    }
    fputc('\n', f);
}

int bench_dat_close(const char *prog, FILE *f, const char *path)
{
    if (fclose(f) != 0) {
        fprintf(stderr, "%s: cannot write %s: %s\n", prog, path, strerror(errno));
        return -1;
    }
    return 0;
}
