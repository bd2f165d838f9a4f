/* benchutil.h: timing, statistics, random fill and report helpers shared by the benchmarks. */
#ifndef BENCHUTIL_H
#define BENCHUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Seconds on a monotonic clock. */
double bench_now(void);

/* The median of a[0 .. n-1], n >= 1; sorts a. */
double bench_median(double *a, int n);

/* Repeats needed for about min_time seconds of samples when one takes t_each
 * seconds: at least min_reps, at most max_reps (also when t_each is 0). */
int bench_reps_for(double min_time, double t_each, int min_reps, int max_reps);

/* A whole-string decimal integer in [lo, hi], or -1. */
long bench_parse_int(const char *s, long lo, long hi);

/* A whole-string number in [lo, hi] stored in *out: 0, or -1 when it is not one. */
int bench_parse_double(const char *s, double lo, double hi, double *out);

/* splitmix64: a tiny seeded generator; uniform in [0, 1) with 53 bits. */
double bench_uniform(uint64_t *state);

/* 64-byte aligned memory, or a message naming prog on stderr and exit(1). */
void *bench_xalloc(const char *prog, size_t bytes);

/* What a report says about the machine it ran on. */
struct bench_meta {
    char date[32];        /* UTC, ISO 8601 */
    char blas[256];       /* openblas_get_config() where the BLAS has it */
    int threads;          /* BLAS threads; -1: unknown */
    long cpus;            /* online */
};
void bench_get_meta(struct bench_meta *m);

/* Milliseconds with at least 4 significant digits and no exponent, in `width` columns. */
void bench_print_ms(int width, double ms);

/* JSON pieces: "key": value (null when not finite) followed by ", " unless last;
 * a string with its quotes and escapes. */
void bench_json_num(FILE *f, const char *key, double v, int last);
void bench_json_str(FILE *f, const char *s);

/* A --dat file for gnuplot: open (a message "prog: cannot write path: ..." and NULL
 * on failure), one line per row (key, precision letter, values; NaN as NaN), close
 * (0, or -1 with the message when a write failed). */
FILE *bench_dat_open(const char *prog, const char *path);
void bench_dat_row(FILE *f, int key, char letter, const double *v, size_t n);
int bench_dat_close(const char *prog, FILE *f, const char *path);

#endif
