/* SPDX-License-Identifier: MIT */
/* benchutil.c: options, timing, statistics, random fill and report helpers shared by the benchmarks. */
#define _POSIX_C_SOURCE 200809L

#include "benchutil.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* OpenBLAS extensions, found by meson; other CBLAS lack them. Declared here so
 * the benchmarks do not depend on which cblas.h declares them. */
#ifdef BENCH_HAVE_OPENBLAS_THREADS
int openblas_get_num_threads(void);
void openblas_set_num_threads(int n);
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

int bench_parse_list(const char *list, long lo, long hi, int *out, int max, char bad[BENCH_LIST_MAX])
{
    if (strlen(list) >= BENCH_LIST_MAX)
        return BENCH_LIST_LONG;
    int n = 0;
    const char *p = list;
    for (;;) {
        size_t len = strcspn(p, ",");   /* the item, copied into bad to parse (and to name) */
        memcpy(bad, p, len);
        bad[len] = '\0';
        long v = bench_parse_int(bad, lo, hi);
        if (v < 0)
            return BENCH_LIST_BAD;
        if (n == max)
            return BENCH_LIST_MANY;
        out[n++] = (int)v;
        if (p[len] == '\0')
            return n;
        p += len + 1;
    }
}

_Noreturn void bench_bad_usage(const char *prog, void (*usage)(FILE *f), const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    usage(stderr);
    exit(2);
}

static int in_list(const char *const *list, const char *s)
{
    for (; list && *list; list++)
        if (!strcmp(*list, s))
            return 1;
    return 0;
}

/* In bench_next_option: a bad command line. */
#define BAD_USAGE(...) bench_bad_usage(a->prog, a->usage, __VA_ARGS__)

const char *bench_next_option(struct bench_args *a, struct bench_common *c, const char *const *own)
{
    const struct bench_optset set = { own, NULL, NULL };
    return bench_next_option_in(a, c, &set);
}

const char *bench_next_option_in(struct bench_args *a, struct bench_common *c, const struct bench_optset *set)
{
    static const char *const all_common[] = { "--repeats", "--min-time", "--precision", "--dat", NULL };
    const char *const *common = set->common ? set->common : all_common;
    while (++a->i < a->argc) {
        const char *arg = a->argv[a->i], *val;
        if (strncmp(arg, "--", 2) != 0)
            BAD_USAGE("unexpected argument '%s'", arg);
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        if (len >= sizeof a->name)
            BAD_USAGE("unknown option '%s'", arg);
        memcpy(a->name, arg, len);
        a->name[len] = '\0';
        const char *name = a->name;

        int help = !strcmp(name, "--help"), flag = in_list(set->flags, name);
        if (help || flag || !strcmp(name, "--json")) {
            if (eq)
                BAD_USAGE("%s takes no value: '%s'", name, arg);
            if (help) {
                a->usage(stdout);
                exit(0);
            }
            if (flag)
                return "";
            c->json = 1;
            continue;
        }
        int mine = in_list(set->own, name);
        if (!mine && !in_list(common, name))
            BAD_USAGE("unknown option '%s'", arg);
        if (eq)
            val = eq + 1;
        else if (a->i + 1 < a->argc)
            val = a->argv[++a->i];
        else
            BAD_USAGE("%s needs a value", name);
        if (mine)
            return val;

        if (!strcmp(name, "--repeats")) {
            c->min_reps = c->min_reps_naive = (int)bench_option_int(a, val, 1, BENCH_MAX_REPS);
        } else if (!strcmp(name, "--min-time")) {
            if (bench_parse_double(val, 0, 3600, &c->min_time) != 0)
                BAD_USAGE("--min-time: not a number of seconds in [0, 3600]: '%s'", val);
        } else if (!strcmp(name, "--precision")) {
            int s = !strcmp(val, "s"), d = !strcmp(val, "d");
            if (!s && !d && strcmp(val, "both"))
                BAD_USAGE("--precision: expected s, d or both, not '%s'", val);
            c->prec[0] = !d;
            c->prec[1] = !s;
        } else { /* --dat */
            if (*val == '\0')
                BAD_USAGE("--dat: empty file name");
            c->dat = val;
        }
    }
    return NULL;
}

long bench_option_int(const struct bench_args *a, const char *val, long lo, long hi)
{
    const long v = bench_parse_int(val, lo, hi);
    if (v < 0)
        BAD_USAGE("%s: not an integer in %ld..%ld: '%s'", a->name, lo, hi, val);
    return v;
}

#undef BAD_USAGE

double bench_uniform(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* One definition per precision P (s or d) and type T. */
#define DEFINE_TYPED(P, T)                                                                  \
void bench_fill_##P(void *p, size_t count, double lo, double hi, uint64_t *rng)             \
{                                                                                           \
    T *a = p;                                                                               \
    for (size_t i = 0; i < count; i++)                                                      \
        a[i] = (T)(lo + (hi - lo) * bench_uniform(rng));                                    \
}                                                                                           \
                                                                                            \
double bench_relerr_##P(const void *pa, const void *pref, size_t count)                     \
{                                                                                           \
    const T *a = pa, *r = pref;                                                             \
    double num = 0, den = 0;                                                                \
    for (size_t i = 0; i < count; i++) {                                                    \
        double d = fabs((double)a[i] - (double)r[i]);                                       \
        if (!(d <= num))                                                                    \
            num = isnan(d) ? INFINITY : d;                                                  \
        if (fabs((double)r[i]) > den)                                                       \
            den = fabs((double)r[i]);                                                       \
    }                                                                                       \
    return den > 0 ? num / den : num;                                                       \
}

DEFINE_TYPED(s, float)
DEFINE_TYPED(d, double)

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

void bench_json_begin(FILE *f, const char *benchmark, const char *version, const struct bench_meta *m)
{
    fprintf(f, "{\n  \"benchmark\": ");
    bench_json_str(f, benchmark);
    fprintf(f, ",\n  \"backprop_version\": ");
    bench_json_str(f, version);
    fprintf(f, ",\n  \"date\": ");
    bench_json_str(f, m->date);
    fprintf(f, ",\n  \"blas\": ");
    bench_json_str(f, m->blas);
    if (m->threads > 0)
        fprintf(f, ",\n  \"blas_threads\": %d", m->threads);
    else
        fprintf(f, ",\n  \"blas_threads\": null");
    fprintf(f, ",\n  \"cpus_online\": %ld", m->cpus);
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
    const int failed = ferror(f);  /* a buffered write that failed before fclose */
    if (fclose(f) != 0 || failed) {
        fprintf(stderr, "%s: cannot write %s: %s\n", prog, path, strerror(errno));
        return -1;
    }
    return 0;
}

int bench_blas_threads(int n)
{
#ifdef BENCH_HAVE_OPENBLAS_THREADS
    const int before = openblas_get_num_threads();
    openblas_set_num_threads(n);
    return before;
#else
    (void)n;
    return -1;
#endif
}

void bench_sleep(double s)
{
    struct timespec t = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}
