/* SPDX-License-Identifier: MIT */
/* benchutil.h: options, timing, statistics, random fill and report helpers shared by the benchmarks. */
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

/* A comma-separated list of whole decimal integers in [lo, hi] (lo >= 0) into
 * out[0 .. max - 1]: the count, or what is wrong, for the caller to word: BENCH_LIST_LONG,
 * BENCH_LIST_MAX characters or more; BENCH_LIST_MANY, more than max items; BENCH_LIST_BAD,
 * an item that is no such integer, left as a string in bad. The first fault in the
 * list's order counts. */
#define BENCH_LIST_MAX 1024
enum { BENCH_LIST_LONG = -1, BENCH_LIST_MANY = -2, BENCH_LIST_BAD = -3 };
int bench_parse_list(const char *list, long lo, long hi, int *out, int max, char bad[BENCH_LIST_MAX]);

/* The cap on the repeats of a variant (--repeats, bench_reps_for): it bounds the
 * sample arrays at tiny sizes. */
#define BENCH_MAX_REPS 200000

/* The options both benchmarks take; the caller sets the defaults before parsing. */
struct bench_common {
    int min_reps, min_reps_naive;   /* --repeats N (1..BENCH_MAX_REPS) sets both */
    double min_time;                /* --min-time SEC, in [0, 3600] */
    int prec[2];                    /* --precision s|d|both: [0] float, [1] double */
    int json;                       /* --json */
    const char *dat;                /* --dat FILE, or NULL */
};

#if defined(__GNUC__)
#define BENCH_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define BENCH_PRINTF(f, a)
#endif

/* "prog: " and the formatted message on stderr, then the usage; exit(2). */
_Noreturn void bench_bad_usage(const char *prog, void (*usage)(FILE *f), const char *fmt, ...) BENCH_PRINTF(3, 4);

/* A walk over a benchmark's command line: --name VALUE or --name=VALUE. */
struct bench_args {
    const char *prog;
    void (*usage)(FILE *f);         /* the --help text, to f */
    int argc;
    char **argv;
    int i;                          /* 0 before the first */
    char name[32];                  /* the option last returned */
};

/* Handles the common options into *c (--help: the usage on stdout, exit 0) up to the
 * next option named in own (NULL-terminated; each takes a value): its value, with its
 * name in a->name; NULL after the last. Anything else is bench_bad_usage. */
const char *bench_next_option(struct bench_args *a, struct bench_common *c, const char *const *own);

/* The options a benchmark takes besides --help and --json, as NULL-terminated lists:
 * its own with a value (own) and without (flags), and the common ones it takes (common;
 * NULL: all of them). NULL own or flags: none. */
struct bench_optset {
    const char *const *own, *const *flags, *const *common;
};

/* bench_next_option over such a set: a flag is returned with the value "". */
const char *bench_next_option_in(struct bench_args *a, struct bench_common *c, const struct bench_optset *set);

/* The value of the option a->name as a whole-string decimal integer in [lo, hi] (lo >= 0), or
 * bench_bad_usage "NAME: not an integer in LO..HI: 'VALUE'". */
long bench_option_int(const struct bench_args *a, const char *val, long lo, long hi);

/* splitmix64: a tiny seeded generator; uniform in [0, 1) with 53 bits. */
double bench_uniform(uint64_t *state);

/* Per precision, s (float) and d (double): p[0 .. count-1] uniform in [lo, hi); and
 * the normwise relative difference max|a - ref| / max|ref| (max|a - ref| when ref is
 * all 0; infinite when any difference is NaN). */
void bench_fill_s(void *p, size_t count, double lo, double hi, uint64_t *rng);
void bench_fill_d(void *p, size_t count, double lo, double hi, uint64_t *rng);
double bench_relerr_s(const void *a, const void *ref, size_t count);
double bench_relerr_d(const void *a, const void *ref, size_t count);

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

/* Sets OpenBLAS's (process-wide) thread count and returns the one before, or returns
 * -1 and changes nothing where the BLAS has no such control. */
int bench_blas_threads(int n);

/* Sleeps s seconds (nanosleep, resumed after a signal). */
void bench_sleep(double s);

/* How long OpenBLAS 0.3.21's idle threads spin after a multi-threaded call before they sleep:
 * THREAD_TIMEOUT, 2^28 cycles, about 0.1 s here; a benchmark waits this long (with a margin)
 * before timing something those spinning threads would slow. */
#define OPENBLAS_SPIN_PAUSE 0.25

/* Milliseconds with at least 4 significant digits and no exponent, in `width` columns. */
void bench_print_ms(int width, double ms);

/* JSON pieces: "key": value (null when not finite) followed by ", " unless last;
 * a string with its quotes and escapes; the opening of a report, up to its
 * "cpus_online" (without a newline or comma after it). */
void bench_json_num(FILE *f, const char *key, double v, int last);
void bench_json_str(FILE *f, const char *s);
void bench_json_begin(FILE *f, const char *benchmark, const char *version, const struct bench_meta *m);

/* A --dat file for gnuplot: open (a message "prog: cannot write path: ..." and NULL
 * on failure), one line per row (key, precision letter, values; NaN as NaN), close
 * (0, or -1 with the message when a write failed). */
FILE *bench_dat_open(const char *prog, const char *path);
void bench_dat_row(FILE *f, int key, char letter, const double *v, size_t n);
int bench_dat_close(const char *prog, FILE *f, const char *path);

#endif
