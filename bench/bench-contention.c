/* SPDX-License-Identifier: MIT */
/* bench-contention.c: default threads vs one thread, quiet and with every core busy: two CLI trainings, one in-process step. */
#define _GNU_SOURCE   /* sched_getaffinity, CPU_COUNT, prctl */

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backprop.h"
#include "backprop/net.h"
#include "backprop/optim.h"
#include "benchutil.h"

#define PROG "bench-contention"
#define DEFAULT_REPEATS 3
#define MAX_REPEATS 100
#define DEFAULT_MIN_TIME 1.0     /* seconds of steps per run of the step job */
#define MIN_STEPS 20
#define MAX_STEPS 100000
#define WARM_STEPS 3
#define MAX_BUSY 1024
#define TARGET_LOAD 1.25         /* default / one thread under load, every job */
#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"
#define IMAGES "train-images-idx3-ubyte.gz"
#define LABELS "train-labels-idx1-ubyte.gz"
#define STEP_BATCH 256
#define STEP_LR 0.01
#define STEP_SEED 42

/* ---- the jobs ------------------------------------------------------------------ */

enum { QUIET, LOAD, NPHASES };
enum { DEF, ONE, NCONFIGS };   /* default threads, one thread */
enum { NJOBS = 3, STEP_JOB = 2, MAX_ARGS = 8, CLI_ARGC = MAX_ARGS + 10 };

struct job {
    const char *name;
    const char *args[MAX_ARGS];   /* backprop-train's model and training options; none: the step */
    int quiet_strict;             /* quiet target: default / one thread < 1 (else <= 1) */
};

static const struct job jobs[NJOBS] = {
    { "logreg", { "--logreg", "--epochs", "10", "--batch", "64", NULL }, 0 },
    { "mlp", { "--layers", "784-256-128-10", "--epochs", "2", "--batch", "64", NULL }, 1 },
    { "step", { NULL }, 1 },
};

static const char *unit(int j)
{
    return j == STEP_JOB ? "ms" : "s";
}

/* ---- options ------------------------------------------------------------------- */

struct opts {
    struct bench_common c;   /* min_reps: --repeats; min_time: the step job's seconds per run */
    int run[NJOBS];          /* --jobs */
    int phase[NPHASES];      /* --quiet-only, --load-only */
    int busy;                /* --busy N */
    const char *exe;         /* --train-exe */
    const char *data;        /* --data */
    int synthetic;           /* the data are missing */
    long cpus;               /* in the affinity mask */
};

static void usage(FILE *f)
{
    fprintf(f,
        "usage: " PROG " [options]\n"
        "Times three jobs with the library's default thread count and with one thread,\n"
        "on a quiet machine and with every core busy, and prints default / one thread:\n"
        "  logreg  backprop-train --train IMAGES,LABELS --logreg --epochs 10 --batch 64\n"
        "  mlp     backprop-train --train IMAGES,LABELS --layers 784-256-128-10 --epochs 2\n"
        "          --batch 64\n"
        "  step    the 784-512-512-10 training step in this process (float, batch %d, SGD\n"
        "          lr %g, He-uniform seed %d, one micro-batch, softmax cross-entropy,\n"
        "          synthetic data; bp_optim_train_step): the median step of a run\n"
        "The CLI jobs run with --quiet (one thread: --threads 1) as child processes; their\n"
        "time is the training time they report (the seconds column of their --log, which\n"
        "sums to their 'train time'), not the process's. The step's networks are set with\n"
        "bp_net_set_threads(net, 0) and (net, 1). The load is N busy loops, child processes\n"
        "of this program, stopped by it on every exit. Each cell is the median of the runs;\n"
        "default and one-thread runs alternate.\n"
        "\n"
        "  --jobs LIST        a comma-separated subset of logreg,mlp,step (default all)\n"
        "  --repeats R        runs of each job, configuration and load (1..%d, default %d)\n"
        "  --min-time SEC     seconds of steps per run of the step job, at least %d steps\n"
        "                     (default %.1f)\n"
        "  --busy N           busy loops under load (1..%d; default: the CPUs in the\n"
        "                     affinity mask)\n"
        "  --quiet-only       only the quiet machine\n"
        "  --load-only        only under load\n"
        "  --train-exe PATH   backprop-train (default: ../tools/backprop-train from this\n"
        "                     program's directory, as in the build tree)\n"
        "  --data DIR         the directory of Fashion-MNIST's " IMAGES "\n"
        "                     and " LABELS " (default\n"
        "                     " DEFAULT_DATA "); without them the CLI jobs\n"
        "                     run on --synthetic, as the header says\n"
        "  --json             print one JSON object instead of the table\n"
        "  --help             print this help and exit\n"
        "\n"
        "Targets: under load, default / one thread <= %.2f for every job; quiet, the\n"
        "default faster than one thread (< 1) for mlp and step, no slower (<= 1) for\n"
        "logreg. Missed targets are reported but do not change the exit status: 1 when a\n"
        "job fails, 2 on bad options.\n",
        STEP_BATCH, STEP_LR, STEP_SEED, MAX_REPEATS, DEFAULT_REPEATS, MIN_STEPS, DEFAULT_MIN_TIME, MAX_BUSY,
        TARGET_LOAD);
}

#define bad_usage(...) bench_bad_usage(PROG, usage, __VA_ARGS__)

/* --jobs: a comma-separated subset of the job names into o->run. */
static void parse_jobs(struct opts *o, const char *list)
{
    memset(o->run, 0, sizeof o->run);
    for (const char *p = list;; p++) {
        size_t len = strcspn(p, ",");
        int j = 0;
        while (j < NJOBS && (strlen(jobs[j].name) != len || strncmp(p, jobs[j].name, len)))
            j++;
        if (j == NJOBS)
            bad_usage("--jobs: not a list of logreg, mlp, step: '%s'", list);
        o->run[j] = 1;
        p += len;
        if (*p == '\0')
            return;
    }
}

/* The CPUs this process may run on. */
static long affinity_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        return CPU_COUNT(&set);
    return sysconf(_SC_NPROCESSORS_ONLN);
}

/* ../tools/backprop-train from the directory of this program, into buf. */
static const char *default_exe(char *buf, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", buf, size - 1);
    buf[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(buf, '/');
    size_t dir = slash ? (size_t)(slash - buf) : 0;
    if (!slash || dir + sizeof "/../tools/backprop-train" > size)
        return "backprop-train";
    strcpy(buf + dir, "/../tools/backprop-train");
    char *real = realpath(buf, NULL);   /* the path without "..", where it exists */
    if (real && strlen(real) < size)
        strcpy(buf, real);
    free(real);
    return buf;
}

static void parse_args(struct opts *o, int argc, char **argv)
{
    static const char *const own[] = { "--jobs", "--busy", "--train-exe", "--data", NULL };
    static const char *const flags[] = { "--quiet-only", "--load-only", NULL };
    static const char *const common[] = { "--repeats", "--min-time", NULL };
    static char exe[4096];
    const struct bench_optset set = { own, flags, common };
    struct bench_args a = { PROG, usage, argc, argv, 0, "" };
    const char *val;
    *o = (struct opts){ .c = { .min_reps = DEFAULT_REPEATS, .min_time = DEFAULT_MIN_TIME },
                        .run = { 1, 1, 1 }, .phase = { 1, 1 }, .cpus = affinity_cpus(),
                        .exe = default_exe(exe, sizeof exe), .data = DEFAULT_DATA };
    o->busy = o->cpus < 1 ? 1 : o->cpus > MAX_BUSY ? MAX_BUSY : (int)o->cpus;
    while ((val = bench_next_option_in(&a, &o->c, &set)) != NULL) {
        if (!strcmp(a.name, "--jobs")) {
            parse_jobs(o, val);
        } else if (!strcmp(a.name, "--busy")) {
            o->busy = (int)bench_option_int(&a, val, 1, MAX_BUSY);
        } else if (!strcmp(a.name, "--quiet-only")) {
            o->phase[LOAD] = 0;
        } else if (!strcmp(a.name, "--load-only")) {
            o->phase[QUIET] = 0;
        } else if (*val == '\0') {
            bad_usage("%s: empty path", a.name);
        } else if (!strcmp(a.name, "--data")) {
            o->data = val;
        } else {
            o->exe = val;
        }
    }
    if (!o->phase[QUIET] && !o->phase[LOAD])
        bad_usage("--quiet-only and --load-only exclude each other");
    if (o->c.min_reps > MAX_REPEATS)
        bad_usage("--repeats: at most %d", MAX_REPEATS);
}

/* ---- child processes: the load, the CLI runs, and their cleanup ------------------------- */

static pid_t busy_pid[MAX_BUSY];
static volatile sig_atomic_t n_busy;     /* busy_pid[0 .. n_busy-1] are running */
static volatile sig_atomic_t cli_pid;    /* a backprop-train run, or 0 */
static char tmp_dir[4096], log_path[4200];   /* "": none */

/* Kills the children this program started, by process id. Async-signal-safe. */
static void stop_children(void)
{
    for (int i = n_busy - 1; i >= 0; i--) {
        kill(busy_pid[i], SIGKILL);
        n_busy = i;
        waitpid(busy_pid[i], NULL, 0);
    }
    if (cli_pid > 0) {
        kill((pid_t)cli_pid, SIGKILL);
        waitpid((pid_t)cli_pid, NULL, 0);
        cli_pid = 0;
    }
}

/* stop_children, and removes this program's files. Async-signal-safe. */
static void cleanup(void)
{
    stop_children();
    if (log_path[0])
        unlink(log_path);
    if (tmp_dir[0])
        rmdir(tmp_dir);
}

static void on_signal(int sig)
{
    cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

static const int stop_signals[] = { SIGINT, SIGTERM, SIGHUP };

/* The signals in stop_signals to handler. */
static void set_handler(void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++)
        sigaction(stop_signals[i], &sa, NULL);
}

static void install_cleanup(void)
{
    set_handler(on_signal);
    atexit(cleanup);
}

/* In a new child: the default action for a ^C to the process group (not the parent's
 * cleanup), and death with this program even when it is killed outright. */
static void child_init(pid_t parent)
{
    set_handler(SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
}

/* A fork that gives the child its parent's death as a SIGKILL; -1 and a message on failure. */
static pid_t fork_child(void)
{
    const pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        fprintf(stderr, PROG ": fork: %s\n", strerror(errno));
    else if (pid == 0)
        child_init(parent);
    return pid;
}

static _Noreturn void spin(void)
{
    volatile double x = 1;
    for (;;)
        x = x * 1.0000001 + 1e-9;
}

/* n busy loops; 0, or -1 (and none left running) when a fork failed. */
static int start_load(int n)
{
    for (int i = 0; i < n; i++) {
        pid_t pid = fork_child();
        if (pid == 0)
            spin();
        if (pid < 0) {
            stop_children();
            return -1;
        }
        busy_pid[i] = pid;
        n_busy = i + 1;
    }
    bench_sleep(0.2);   /* every loop on a core before the first run */
    return 0;
}

/* ---- the CLI jobs ---------------------------------------------------------------- */

/* The training seconds of a --log file: the sum of its seconds column; NaN without rows. */
static double log_seconds(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[512];
    double sum = 0, s;
    int rows = 0;
    if (!f)
        return NAN;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%*[^,],%*[^,],%*[^,],%*[^,],%lf", &s) == 1) {   /* not the header */
            sum += s;
            rows++;
        }
    fclose(f);
    return rows ? sum : NAN;
}

/* In a child of a process with threads: only async-signal-safe calls. */
static _Noreturn void exec_or_die(const char *const *argv)
{
    static const char msg[] = PROG ": cannot execute ";
    execv(argv[0], (char *const *)argv);
    /* the exit status tells the parent in any case; a failed write stops the message */
    if (write(STDERR_FILENO, msg, sizeof msg - 1) >= 0 && write(STDERR_FILENO, argv[0], strlen(argv[0])) >= 0 &&
        write(STDERR_FILENO, "\n", 1) >= 0)
        _exit(127);
    _exit(127);
}

/* All of fd into out (cut to size, the rest read and dropped), 0-terminated. */
static void read_all(int fd, char *out, size_t size)
{
    char sink[4096];
    size_t used = 0;
    for (;;) {
        const int room = used + 1 < size;
        ssize_t k = read(fd, room ? out + used : sink, room ? size - 1 - used : sizeof sink);
        if (k == 0 || (k < 0 && errno != EINTR))
            break;
        if (k > 0 && room)
            used += (size_t)k;
    }
    out[used] = '\0';
}

/* Runs argv with its stdout into out (cut to size); its exit status, or -1. */
static int run_child(const char *const *argv, char *out, size_t size)
{
    int fd[2];
    if (pipe(fd) != 0) {
        fprintf(stderr, PROG ": pipe: %s\n", strerror(errno));
        return -1;
    }
    pid_t pid = fork_child();
    if (pid == 0) {
        dup2(fd[1], STDOUT_FILENO);
        close(fd[0]);
        close(fd[1]);
        exec_or_die(argv);
    }
    close(fd[1]);
    out[0] = '\0';
    if (pid < 0) {
        close(fd[0]);
        return -1;
    }
    cli_pid = pid;
    read_all(fd[0], out, size);
    close(fd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    cli_pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The command line of CLI job j in configuration cfg, NULL-terminated, into argv. */
static void cli_argv(const struct opts *o, int j, int cfg, const char *argv[CLI_ARGC])
{
    static char train[8192];
    int n = 0;
    argv[n++] = o->exe;
    if (o->synthetic) {
        argv[n++] = "--synthetic";
    } else {
        snprintf(train, sizeof train, "%s/" IMAGES ",%s/" LABELS, o->data, o->data);
        argv[n++] = "--train";
        argv[n++] = train;
    }
    for (const char *const *a = jobs[j].args; *a; a++)
        argv[n++] = *a;
    argv[n++] = "--quiet";
    argv[n++] = "--log";
    argv[n++] = log_path;
    if (cfg == ONE) {
        argv[n++] = "--threads";
        argv[n++] = "1";
    }
    argv[n] = NULL;
}

/* One run of a CLI job: its training seconds, or NaN and a message. */
static double cli_run(const struct opts *o, int j, int cfg)
{
    const char *argv[CLI_ARGC];
    char out[4096];
    cli_argv(o, j, cfg, argv);
    unlink(log_path);
    int st = run_child(argv, out, sizeof out);
    const char *tt = strstr(out, "train time: ");
    double secs = log_seconds(log_path);
    if (st != 0 || !tt || !isfinite(secs)) {
        fprintf(stderr, PROG ": %s (%s) failed: exit status %d%s; its output:\n%s\n", jobs[j].name,
                cfg == ONE ? "--threads 1" : "default threads", st,
                tt ? "" : ", no 'train time' line", out);
        return NAN;
    }
    return secs;
}

/* ---- the in-process step --------------------------------------------------------- */

struct stepper {
    bp_net *net;
    bp_optim *opt;
};

static struct stepper steppers[NCONFIGS];
static float *step_X;
static int32_t *step_labels;
static double *step_samples;   /* MAX_STEPS */

static int bp_check(bp_status st, const char *what)
{
    if (st != BP_OK)
        fprintf(stderr, PROG ": %s failed: %s: %s\n", what, bp_strerror(st), bp_last_error());
    return st == BP_OK ? 0 : -1;
}

/* The 784-512-512-10 network and its SGD optimizer on n_threads (0: the default count). */
static int stepper_create(struct stepper *s, int n_threads)
{
    const bp_layer_spec spec[3] = { { 512, BP_ACT_RELU, 0 }, { 512, BP_ACT_RELU, 0 }, { 10, BP_ACT_IDENTITY, 0 } };
    const bp_optim_config cfg = bp_optim_defaults(BP_OPT_SGD, STEP_LR);
    if (bp_check(bp_net_create(&s->net, BP_F32, 784, 3, spec, BP_LOSS_SOFTMAX_XENT, NULL), "bp_net_create") ||
        bp_check(bp_net_plan(s->net, STEP_BATCH), "bp_net_plan") ||
        bp_check(bp_net_init(s->net, BP_INIT_HE_UNIFORM, STEP_SEED, 1), "bp_net_init") ||
        bp_check(bp_net_set_threads(s->net, n_threads), "bp_net_set_threads"))
        return -1;
    return bp_check(bp_optim_create(&s->opt, s->net, &cfg), "bp_optim_create");
}

/* Both networks and the data: inputs in [0, 1), labels in [0, 10). */
static int step_setup(void)
{
    uint64_t rng = 0xda7a0000u + STEP_BATCH;
    step_X = bench_xalloc(PROG, sizeof(float) * STEP_BATCH * 784);
    step_labels = bench_xalloc(PROG, sizeof(int32_t) * STEP_BATCH);
    step_samples = bench_xalloc(PROG, sizeof(double) * MAX_STEPS);
    bench_fill_s(step_X, (size_t)STEP_BATCH * 784, 0, 1, &rng);
    for (int i = 0; i < STEP_BATCH; i++)
        step_labels[i] = (int32_t)(bench_uniform(&rng) * 10);
    return stepper_create(&steppers[DEF], 0) || stepper_create(&steppers[ONE], 1) ? -1 : 0;
}

static void step_teardown(void)
{
    for (int c = 0; c < NCONFIGS; c++) {
        bp_optim_destroy(steppers[c].opt);
        bp_net_destroy(steppers[c].net);
    }
    free(step_X);
    free(step_labels);
    free(step_samples);
}

/* One run of the step job: the median step in ms over min_time seconds (and MIN_STEPS
 * steps) after a warm-up, or NaN and a message. */
static double step_run(const struct opts *o, int cfg)
{
    const struct stepper *s = &steppers[cfg];
    double loss, start = 0;
    int n = 0;
    for (int i = -WARM_STEPS; i < MAX_STEPS; i++) {
        if (i == 0)
            start = bench_now();
        else if (i >= MIN_STEPS && bench_now() - start >= o->c.min_time)
            break;
        double t0 = bench_now();
        bp_status st = bp_optim_train_step(s->opt, s->net, STEP_BATCH, step_X, 784, step_labels, 1, &loss);
        double t1 = bench_now();
        if (bp_check(st, "bp_optim_train_step") || !isfinite(loss))
            return NAN;
        if (i >= 0)
            step_samples[n++] = t1 - t0;
    }
    return bench_median(step_samples, n) * 1e3;
}

/* ---- measuring ----------------------------------------------------------------------- */

/* A job in one phase: every run's time per configuration, their medians and the ratio. */
struct cell {
    int measured, ok;
    double runs[NCONFIGS][MAX_REPEATS];
    double median[NCONFIGS];
};

static double ratio(const struct cell *c)
{
    return c->median[DEF] / c->median[ONE];
}

static void measure(const struct opts *o, int j, int ph, struct cell *c)
{
    const int reps = o->c.min_reps;
    c->measured = 1;
    c->ok = 1;
    for (int r = 0; r < reps && c->ok; r++)
        for (int cfg = 0; cfg < NCONFIGS && c->ok; cfg++) {
            double t = j == STEP_JOB ? step_run(o, cfg) : cli_run(o, j, cfg);
            c->runs[cfg][r] = t;
            c->ok = isfinite(t);
        }
    for (int cfg = 0; cfg < NCONFIGS; cfg++) {
        double tmp[MAX_REPEATS];
        memcpy(tmp, c->runs[cfg], sizeof(double) * (size_t)reps);
        c->median[cfg] = c->ok ? bench_median(tmp, reps) : NAN;
    }
    if (c->ok && !o->c.json)
        fprintf(stderr, PROG ": %s, %s: default %.4g %s, one thread %.4g %s\n", ph == LOAD ? "load" : "quiet",
                jobs[j].name, c->median[DEF], unit(j), c->median[ONE], unit(j));
}

/* ---- output ------------------------------------------------------------------------ */

static void print_header(const struct opts *o, const struct bench_meta *m, int threads)
{
    printf("# backprop %s contention benchmark, %s, %s", bp_version(), m->date, m->blas);
    if (m->threads > 0)
        printf(", %d BLAS thread%s outside library calls", m->threads, m->threads == 1 ? "" : "s");
    printf(", %ld CPUs in the affinity mask (%ld online), load: %d busy loop%s%s\n", o->cpus, m->cpus, o->busy,
           o->busy == 1 ? "" : "s", o->phase[LOAD] ? "" : " (not run: --quiet-only)");
    printf("# default threads (");
    if (threads > 0)
        printf("the step's network: %d, ", threads);
    printf("bp_net_set_threads(net, 0)) vs one thread (--threads 1, bp_net_set_threads(net, 1)); BLAS on one "
           "thread inside each library call; median of %d runs per cell, default and one-thread runs "
           "alternating\n", o->c.min_reps);
    if (o->run[0] || o->run[1]) {
        if (o->synthetic)
            printf("# CLI jobs: %s lacks " IMAGES " or " LABELS ": they run on --synthetic (6000 generated "
                   "samples) instead\n", o->data);
        printf("# CLI jobs' time: the training seconds they log (their 'train time'), in s; one thread: "
               "--threads 1\n");
        for (int j = 0; j < STEP_JOB; j++)
            if (o->run[j]) {
                const char *argv[CLI_ARGC];
                cli_argv(o, j, DEF, argv);
                printf("# %s:", jobs[j].name);
                for (const char *const *a = argv; *a; a++)
                    printf(" %s", *a);
                printf("\n");
            }
    }
    if (o->run[STEP_JOB])
        printf("# step: 784-512-512-10 float, batch %d, SGD lr %g, He-uniform seed %d, one micro-batch, "
               "bp_optim_train_step on synthetic data; a run's time: its median step over >= %.2g s and >= %d "
               "steps, in ms\n", STEP_BATCH, STEP_LR, STEP_SEED, o->c.min_time, MIN_STEPS);
}

static void print_value(int j, double v)
{
    if (!isfinite(v))
        printf("%9s %-2s", "-", "");
    else if (j == STEP_JOB)
        bench_print_ms(9, v);
    else
        printf("%9.3f", v);
    if (isfinite(v))
        printf(" %-2s", unit(j));
}

static void print_table(const struct opts *o, struct cell cells[][NPHASES])
{
    char load[64];
    snprintf(load, sizeof load, "load: %d busy loop%s", o->busy, o->busy == 1 ? "" : "s");
    printf("%-7s|%-30s|%s\n", "", "  quiet", load);
    printf("%-7s|%12s%12s %5s|%12s%12s %5s\n", "job", "default", "1 thread", "ratio", "default", "1 thread",
           "ratio");
    for (int j = 0; j < NJOBS; j++) {
        if (!o->run[j])
            continue;
        printf("%-7s", jobs[j].name);
        for (int ph = 0; ph < NPHASES; ph++) {
            const struct cell *c = &cells[j][ph];
            printf("|");
            print_value(j, c->ok ? c->median[DEF] : NAN);
            print_value(j, c->ok ? c->median[ONE] : NAN);
            if (c->ok)
                printf(" %5.2f", ratio(c));
            else
                printf(" %5s", c->measured ? "FAIL" : "-");
        }
        printf("\n");
    }
}

/* The quiet target of job j: "< 1.00" or "<= 1.00", and whether ratio r meets it. */
static int quiet_met(int j, double r)
{
    return jobs[j].quiet_strict ? r < 1.0 : r <= 1.0;
}

static void print_targets(const struct opts *o, struct cell cells[][NPHASES])
{
    int any = 0;
    printf("# target under load default / one thread <= %.2f:", TARGET_LOAD);
    for (int j = 0; j < NJOBS; j++)
        if (o->run[j] && cells[j][LOAD].ok) {
            double r = ratio(&cells[j][LOAD]);
            printf("%s %s %.2f (%s)", any++ ? "," : "", jobs[j].name, r, r <= TARGET_LOAD ? "met" : "MISSED");
        }
    printf("%s\n", any ? "" : " not measured");
    any = 0;
    printf("# target quiet default / one thread (< 1: faster; logreg <= 1: no slower):");
    for (int j = 0; j < NJOBS; j++)
        if (o->run[j] && cells[j][QUIET].ok) {
            double r = ratio(&cells[j][QUIET]);
            printf("%s %s %.2f (%s 1.00: %s)", any++ ? "," : "", jobs[j].name, r, jobs[j].quiet_strict ? "<" : "<=",
                   quiet_met(j, r) ? "met" : "MISSED");
        }
    printf("%s\n", any ? "" : " not measured");
}

static void json_runs(FILE *f, const char *key, const double *v, int n)
{
    fprintf(f, "\"%s\": [", key);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%.6g", i ? ", " : "", v[i]);   /* finite: only an ok cell's runs */
    fprintf(f, "]");
}

static void json_cell(FILE *f, const char *phase, const struct cell *c, int reps)
{
    fprintf(f, "\"%s\": ", phase);
    if (!c->measured) {
        fprintf(f, "null");
        return;
    }
    fprintf(f, "{\"ok\": %s, ", c->ok ? "true" : "false");
    bench_json_num(f, "default", c->ok ? c->median[DEF] : NAN, 0);
    bench_json_num(f, "one_thread", c->ok ? c->median[ONE] : NAN, 0);
    bench_json_num(f, "ratio", c->ok ? ratio(c) : NAN, 0);
    json_runs(f, "runs_default", c->runs[DEF], c->ok ? reps : 0);
    fprintf(f, ", ");
    json_runs(f, "runs_one_thread", c->runs[ONE], c->ok ? reps : 0);
    fprintf(f, "}");
}

static void print_json(const struct opts *o, const struct bench_meta *m, int threads, struct cell cells[][NPHASES])
{
    FILE *f = stdout;
    int any = 0;
    bench_json_begin(f, PROG, bp_version(), m);
    fprintf(f, ",\n  \"cpus_affinity\": %ld, \"busy_loops\": %d, \"repeats\": %d, \"statistic\": \"median\", "
            "\"step_min_time_s\": %g, \"step_threads_default\": %d", o->cpus, o->busy, o->c.min_reps, o->c.min_time,
            threads);
    fprintf(f, ",\n  \"train_exe\": ");
    bench_json_str(f, o->exe);
    fprintf(f, ", \"data\": ");
    bench_json_str(f, o->synthetic ? "synthetic" : o->data);
    fprintf(f, ",\n  \"targets\": {\"load_ratio_max\": %g, \"quiet_ratio_below\": 1, \"quiet_ratio_max_logreg\": 1}",
            TARGET_LOAD);
    fprintf(f, ",\n  \"jobs\": [");
    for (int j = 0; j < NJOBS; j++) {
        if (!o->run[j])
            continue;
        fprintf(f, "%s\n    {\"job\": \"%s\", \"unit\": \"%s\", ", any++ ? "," : "", jobs[j].name, unit(j));
        json_cell(f, "quiet", &cells[j][QUIET], o->c.min_reps);
        fprintf(f, ", ");
        json_cell(f, "load", &cells[j][LOAD], o->c.min_reps);
        fprintf(f, "}");
    }
    fprintf(f, "\n  ]\n}\n");
}

/* ---- main ------------------------------------------------------------------------ */

/* The CLI jobs' program, data and log directory; -1 and a message when they cannot run. */
static int cli_setup(struct opts *o)
{
    char path[8192];
    const char *tmp = getenv("TMPDIR");
    if (access(o->exe, X_OK) != 0) {
        fprintf(stderr, PROG ": cannot run %s: %s (see --train-exe)\n", o->exe, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s/" IMAGES, o->data);
    o->synthetic = access(path, R_OK) != 0;
    snprintf(path, sizeof path, "%s/" LABELS, o->data);
    o->synthetic = o->synthetic || access(path, R_OK) != 0;
    snprintf(path, sizeof path, "%s/" PROG "-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (strlen(path) >= sizeof tmp_dir || !mkdtemp(path)) {
        fprintf(stderr, PROG ": cannot make a directory %s: %s\n", path, strerror(errno));
        return -1;
    }
    memcpy(tmp_dir, path, strlen(path) + 1);
    snprintf(log_path, sizeof log_path, "%s/log.csv", tmp_dir);
    return 0;
}

int main(int argc, char **argv)
{
    static struct cell cells[NJOBS][NPHASES];
    struct opts o;
    struct bench_meta m;
    int status = 0, threads = -1;

    parse_args(&o, argc, argv);
    install_cleanup();
    bench_get_meta(&m);
    if ((o.run[0] || o.run[1]) && cli_setup(&o) != 0)
        return 1;
    if (o.run[STEP_JOB] && step_setup() != 0)
        return 1;
    if (o.run[STEP_JOB])
        threads = bp_net_threads(steppers[DEF].net);
    if (!o.c.json)
        print_header(&o, &m, threads);
    fflush(stdout);
    for (int ph = 0; ph < NPHASES && status == 0; ph++) {
        if (!o.phase[ph])
            continue;
        if (ph == LOAD && start_load(o.busy) != 0)
            status = 1;
        for (int j = 0; j < NJOBS && status == 0; j++)
            if (o.run[j]) {
                measure(&o, j, ph, &cells[j][ph]);
                status = cells[j][ph].ok ? 0 : 1;
            }
        stop_children();   /* the load, if any */
    }
    if (o.c.json) {
        print_json(&o, &m, threads, cells);
    } else {
        print_table(&o, cells);
        print_targets(&o, cells);
    }
    if (o.run[STEP_JOB])
        step_teardown();
    return status;
}
