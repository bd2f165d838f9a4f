/* SPDX-License-Identifier: MIT */
/* bench-lm.c: Levenberg-Marquardt against Adam and SGD with momentum, to MSE 1e-4 and 1e-6, on two curve fits. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backprop.h"
#include "benchutil.h"

#define PROG "bench-lm"
#define INIT_SEED 1
#define ADAM_LR 1e-3
#define SGD_LR 0.2             /* full batch (--sgd-lr); see --help for how it was chosen */
#define SGD_MOMENTUM 0.95      /* --sgd-momentum */
#define DEFAULT_CAP 60.0       /* seconds at most for a first-order method */
#define DEFAULT_FACTOR 100.0   /* first-order budget: this times LM's time to 1e-6 */
#define DEFAULT_REPEATS 3      /* LM runs, the median time taken */
#define LM_MAX_ITER 100000
#define TARGET_LM_ITERS 300    /* curve: LM reaches 1e-6 within this many iterations */
#define TARGET_SPEEDUP 10.0    /* LM reaches 1e-6 this many times sooner than Adam */
#define MAX_POINTS 4096        /* CSV points per method and problem */

static const double THRESH[2] = {1e-4, 1e-6};

/* ---- problems ------------------------------------------------------------------------ */

enum { CURVE, PEAKS, NPROB };
enum { LM, ADAM, SGDM, NMETH };
static const char *const meth_name[NMETH] = {"lm", "adam", "sgd-momentum"};

typedef struct problem {
    const char *name, *net_name;
    int n, n_in, n_layers, widths[3];
    double *X, *T;
    const char *minpack;   /* scipy least_squares(method='lm') on the same problem, for scale */
    int iter_target;       /* LM's iterations to 1e-6 at most (0: none) */
} problem;

static double peaks(double x, double y)
{
    return 3 * (1 - x) * (1 - x) * exp(-x * x - (y + 1) * (y + 1)) -
           10 * (x / 5 - x * x * x - pow(y, 5)) * exp(-x * x - y * y) - exp(-(x + 1) * (x + 1) - y * y) / 3;
}

/* The curve y = sin(3x) + 0.3 cos(9x), 200 points on [-1, 1], 1-20-1 tanh; or MATLAB's peaks on a
 * 30 x 30 grid of [-3, 3]^2, 2-15-15-1 tanh (301 parameters). */
static problem make_problem(int which)
{
    problem p;
    if (which == CURVE) {
        p = (problem){"curve", "1-20-1", 200, 1, 2, {20, 1, 0}, NULL, NULL,
                      "100-123 evaluations, 0.06-0.08 s", TARGET_LM_ITERS};
    } else {
        p = (problem){"peaks", "2-15-15-1", 900, 2, 3, {15, 15, 1}, NULL, NULL, "217 evaluations, 12.1 s", 0};
    }
    p.X = bench_xalloc(PROG, (size_t)p.n * (size_t)p.n_in * sizeof(double));
    p.T = bench_xalloc(PROG, (size_t)p.n * sizeof(double));
    for (int i = 0; i < p.n; i++) {
        if (which == CURVE) {
            const double x = -1 + 2.0 * i / (p.n - 1);
            p.X[i] = x;
            p.T[i] = sin(3 * x) + 0.3 * cos(9 * x);
        } else {
            const double x = -3 + 6.0 * (i % 30) / 29, y = -3 + 6.0 * (i / 30) / 29;
            p.X[2 * i] = x;
            p.X[2 * i + 1] = y;
            p.T[i] = peaks(x, y);
        }
    }
    return p;
}

static void check(bp_status st, const char *what)
{
    if (st != BP_OK) {
        fprintf(stderr, "%s: %s: %s\n", PROG, what, bp_last_error());
        exit(1);
    }
}

/* The problem's network, double, tanh hidden layers, identity output, MSE, Glorot-uniform from
 * INIT_SEED: the same start for every method. */
static bp_net *make_net(const problem *p)
{
    bp_layer_spec layers[3];
    for (int l = 0; l < p->n_layers; l++)
        layers[l] = (bp_layer_spec){p->widths[l], l == p->n_layers - 1 ? BP_ACT_IDENTITY : BP_ACT_TANH, 0};
    bp_net *net = NULL;
    check(bp_net_create(&net, BP_F64, p->n_in, p->n_layers, layers, BP_LOSS_MSE, NULL), "bp_net_create");
    check(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, INIT_SEED, 1), "bp_net_init");
    check(bp_net_plan(net, p->n), "bp_net_plan");
    return net;
}

/* ---- a run's trace ----------------------------------------------------------------------- */

typedef struct trace {
    long iters;                 /* iterations (LM) or steps done */
    long evals;                 /* LM: trial evaluations, inferred from mu (a rejection multiplies it by mu_inc) */
    double seconds, mse;        /* at the end */
    double t_hit[2];            /* seconds to reach THRESH[k]; NaN: not reached */
    long it_hit[2];
    int n;                      /* points kept for the CSV */
    long next;                  /* the next iteration kept */
    long pit[MAX_POINTS];
    double pt[MAX_POINTS], pmse[MAX_POINTS];
    double t0, budget, last_mu;
} trace;

static void trace_start(trace *t, double budget)
{
    memset(t, 0, sizeof *t);
    t->t_hit[0] = t->t_hit[1] = NAN;
    t->it_hit[0] = t->it_hit[1] = -1;
    t->budget = budget;
    t->t0 = bench_now();
}

/* Records the MSE after `it` iterations at `secs`: thresholds, and a CSV point at iterations
 * 0..100, then about 2 % apart. */
static void trace_add(trace *t, long it, double secs, double mse)
{
    for (int k = 0; k < 2; k++)
        if (isnan(t->t_hit[k]) && mse <= THRESH[k]) {
            t->t_hit[k] = secs;
            t->it_hit[k] = it;
        }
    if (it >= t->next && t->n < MAX_POINTS) {
        t->pit[t->n] = it;
        t->pt[t->n] = secs;
        t->pmse[t->n++] = mse;
        t->next = it < 100 ? it + 1 : it + it / 50;
    }
    t->iters = it;
    t->seconds = secs;
    t->mse = mse;
}

/* ---- the methods -------------------------------------------------------------------------- */

static int lm_callback(const bp_lm_report *r, void *ctx)
{
    trace *t = ctx;
    const double secs = bench_now() - t->t0;
    /* mu_k = mu_(k-1) mu_inc^rejections mu_dec: a trial per rejection, plus the accepted one */
    t->evals += 1 + lround(log10(r->mu / t->last_mu)) + 1;
    t->last_mu = r->mu;
    trace_add(t, r->iterations, secs, r->mse);
    return secs > t->budget;
}

/* Levenberg-Marquardt to MSE 1e-6 (the goal), or until max_iter or the budget. */
static void run_lm(const problem *p, double budget, trace *t)
{
    bp_net *net = make_net(p);
    bp_lm_config c = bp_lm_defaults();
    c.max_iter = LM_MAX_ITER;
    c.goal = THRESH[1];
    c.min_grad = 0;
    c.on_iter = lm_callback;
    c.ctx = t;
    double mse0;
    check(bp_net_eval_loss(net, p->n, p->X, p->n_in, p->T, 1, &mse0), "bp_net_eval_loss");
    trace_start(t, budget);
    t->last_mu = c.mu;
    trace_add(t, 0, 0, mse0);
    t->t0 = bench_now();
    bp_lm_report r;
    check(bp_lm_fit(net, p->n, p->X, p->n_in, p->T, 1, &c, &r), "bp_lm_fit");
    t->seconds = bench_now() - t->t0;
    bp_net_destroy(net);
}

/* A first-order method, full batch, until MSE 1e-6 or the budget. The loss of step k is the MSE
 * of the parameters after k - 1 steps, recorded when step k returns. */
static double sgd_lr = SGD_LR, sgd_momentum = SGD_MOMENTUM;

static void run_first_order(const problem *p, int method, double budget, trace *t)
{
    bp_net *net = make_net(p);
    bp_optim_config oc = method == ADAM ? bp_optim_defaults(BP_OPT_ADAM, ADAM_LR)
                                        : bp_optim_defaults(BP_OPT_MOMENTUM, sgd_lr);
    if (method == SGDM)
        oc.momentum = sgd_momentum;
    bp_optim *opt = NULL;
    check(bp_optim_create(&opt, net, &oc), "bp_optim_create");
    trace_start(t, budget);
    for (long k = 1;; k++) {
        double loss;
        check(bp_optim_train_step(opt, net, p->n, p->X, p->n_in, p->T, 1, &loss), "bp_optim_train_step");
        const double secs = bench_now() - t->t0;
        trace_add(t, k - 1, secs, loss);
        if (loss <= THRESH[1] || secs > budget || !isfinite(loss))
            break;
    }
    bp_optim_destroy(opt);
    bp_net_destroy(net);
}

/* ---- options and output ------------------------------------------------------------------- */

struct opts {
    struct bench_common c;   /* min_reps: --repeats (LM runs) */
    int run[NPROB];          /* --problems */
    double cap, factor;      /* --cap, --factor */
    const char *csv;         /* --csv */
};

static void usage(FILE *f)
{
    fprintf(f,
        "usage: " PROG " [options]\n"
        "Fits two problems in double from the same Glorot-uniform start (seed %d) with\n"
        "Levenberg-Marquardt (bp_lm_fit, MATLAB trainlm's defaults), Adam (lr %g) and SGD with\n"
        "momentum (lr %g, momentum %g), all full batch, and reports the iterations and wall time\n"
        "to MSE 1e-4 and 1e-6:\n"
        "  curve  y = sin(3x) + 0.3 cos(9x), 200 points on [-1, 1], network 1-20-1 tanh\n"
        "  peaks  MATLAB's peaks(x, y) on a 30 x 30 grid of [-3, 3]^2, network 2-15-15-1 tanh\n"
        "The first-order methods run for at most --factor times LM's time to 1e-6, capped at --cap.\n"
        "options:\n"
        "  --problems LIST  curve,peaks (default both)\n"
        "  --cap SEC        the first-order methods' time cap (default %g)\n"
        "  --factor F       their budget in units of LM's time to 1e-6 (default %g)\n"
        "  --repeats N      LM runs; its times are their median (default %d)\n"
        "  --sgd-lr LR, --sgd-momentum M   SGD with momentum's (default %g, %g: the lowest MSE\n"
        "                   after 5 s on both problems among lr 0.005, 0.01, 0.02, 0.05, 0.1, 0.2\n"
        "                   x momentum 0.9, 0.95; lr 0.3 at 0.95 and 0.4 at 0.9 diverge on peaks)\n"
        "  --csv FILE       MSE against time per method: problem,method,iteration,seconds,mse\n"
        "                   (plot: gnuplot -c plot-lm.gp FILE OUT.png)\n"
        "  --json           a JSON report instead of the table\n",
        INIT_SEED, ADAM_LR, SGD_LR, SGD_MOMENTUM, DEFAULT_CAP, DEFAULT_FACTOR, DEFAULT_REPEATS, SGD_LR, SGD_MOMENTUM);
}

static void parse_args(struct opts *o, int argc, char **argv)
{
    static const char *const own[] = {"--problems", "--cap", "--factor", "--csv", "--sgd-lr", "--sgd-momentum", NULL};
    static const char *const common[] = {"--repeats", NULL};
    const struct bench_optset set = {own, NULL, common};
    struct bench_args a = {PROG, usage, argc, argv, 0, ""};
    *o = (struct opts){.c = {.min_reps = DEFAULT_REPEATS}, .run = {1, 1}, .cap = DEFAULT_CAP,
                       .factor = DEFAULT_FACTOR};
    const char *val;
    while ((val = bench_next_option_in(&a, &o->c, &set)) != NULL) {
        if (!strcmp(a.name, "--problems")) {
            o->run[CURVE] = strstr(val, "curve") != NULL;
            o->run[PEAKS] = strstr(val, "peaks") != NULL;
            if (!o->run[CURVE] && !o->run[PEAKS])
                bench_bad_usage(PROG, usage, "--problems: neither curve nor peaks in '%s'", val);
        } else if (!strcmp(a.name, "--cap")) {
            if (bench_parse_double(val, 0.01, 3600, &o->cap) != 0)
                bench_bad_usage(PROG, usage, "--cap: not a number in [0.01, 3600]: '%s'", val);
        } else if (!strcmp(a.name, "--factor")) {
            if (bench_parse_double(val, 1, 1e6, &o->factor) != 0)
                bench_bad_usage(PROG, usage, "--factor: not a number in [1, 1e6]: '%s'", val);
        } else if (!strcmp(a.name, "--sgd-lr")) {
            if (bench_parse_double(val, 1e-9, 10, &sgd_lr) != 0)
                bench_bad_usage(PROG, usage, "--sgd-lr: not a number in [1e-9, 10]: '%s'", val);
        } else if (!strcmp(a.name, "--sgd-momentum")) {
            if (bench_parse_double(val, 0, 0.999, &sgd_momentum) != 0)
                bench_bad_usage(PROG, usage, "--sgd-momentum: not a number in [0, 0.999]: '%s'", val);
        } else {
            o->csv = val;
        }
    }
    if (o->c.min_reps > 100)
        bench_bad_usage(PROG, usage, "--repeats: at most 100");
}

/* The results of one problem. */
typedef struct result {
    problem p;
    trace t[NMETH];
    double lm_time[2];    /* medians over the repeats */
    double budget;
} result;

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* LM repeated (the last run's trace kept, the median times), then Adam and SGD with momentum
 * within the budget. */
static void run_problem(const struct opts *o, int which, result *res)
{
    res->p = make_problem(which);
    double times[2][100];
    for (int rep = 0; rep < o->c.min_reps; rep++) {
        run_lm(&res->p, o->cap, &res->t[LM]);
        for (int k = 0; k < 2; k++)
            times[k][rep] = res->t[LM].t_hit[k];
    }
    for (int k = 0; k < 2; k++) {
        qsort(times[k], (size_t)o->c.min_reps, sizeof(double), cmp_double);
        res->lm_time[k] = times[k][o->c.min_reps / 2];
    }
    res->budget = isnan(res->lm_time[1]) ? o->cap : fmin(o->cap, o->factor * res->lm_time[1]);
    run_first_order(&res->p, ADAM, res->budget, &res->t[ADAM]);
    run_first_order(&res->p, SGDM, res->budget, &res->t[SGDM]);
}

static double hit_time(const result *r, int m, int k)
{
    return m == LM ? r->lm_time[k] : r->t[m].t_hit[k];
}

static void print_header(const struct opts *o, const struct bench_meta *m)
{
    printf("# backprop %s Levenberg-Marquardt benchmark, %s, %s", bp_version(), m->date, m->blas);
    if (m->threads > 0)
        printf(", %d BLAS thread%s", m->threads, m->threads == 1 ? "" : "s");
    printf(", %ld CPUs\n", m->cpus);
    printf("# double, Glorot-uniform seed %d, full batch; LM: bp_lm_fit (trainlm defaults, goal 1e-6), its times\n"
           "# the median of %d runs; Adam lr %g; SGD with momentum lr %g, momentum %g; first-order budget\n"
           "# min(%g x LM's time to 1e-6, %g s), one run each\n",
           INIT_SEED, o->c.min_reps, ADAM_LR, sgd_lr, sgd_momentum, o->factor, o->cap);
    printf("%-7s %-10s %-13s %12s %10s %12s %10s %12s %11s\n", "problem", "network", "method", "iters 1e-4",
           "s 1e-4", "iters 1e-6", "s 1e-6", "final MSE", "iters done");
}

static void print_cell(long it, double s)
{
    if (isnan(s))
        printf(" %12s %10s", "-", "-");
    else
        printf(" %12ld %10.4f", it, s);
}

static void print_table(const result *r)
{
    for (int m = 0; m < NMETH; m++) {
        printf("%-7s %-10s %-13s", r->p.name, r->p.net_name, meth_name[m]);
        for (int k = 0; k < 2; k++)
            print_cell(r->t[m].it_hit[k], hit_time(r, m, k));
        printf(" %12.3e %11ld\n", r->t[m].mse, r->t[m].iters);
    }
    printf("%-7s %-10s %-13s  LM: %ld iterations, about %ld trial evaluations, %ld Jacobians; "
           "MINPACK (scipy least_squares lm, analytic Jacobian): %s\n",
           r->p.name, r->p.net_name, "", r->t[LM].iters, r->t[LM].evals, r->t[LM].iters + 1, r->p.minpack);
}

/* The summary line of a problem, and whether it meets the targets. */
static int print_summary(const result *r)
{
    const double lm = r->lm_time[1], adam = r->t[ADAM].t_hit[1];
    printf("%s: lm iterations to 1e-6 %ld, lm time %.4g s, ", r->p.name, r->t[LM].it_hit[1], lm);
    if (isnan(lm))
        printf("lm did not reach 1e-6 in %.4g s\n", r->t[LM].seconds);
    else if (isnan(adam))
        printf("adam time not reached in %.4g s, speed-up >%.0f\n", r->t[ADAM].seconds, r->t[ADAM].seconds / lm);
    else
        printf("adam time %.4g s, speed-up %.1f\n", adam, adam / lm);
    const int iters_ok = !r->p.iter_target || (r->t[LM].it_hit[1] >= 0 && r->t[LM].it_hit[1] <= r->p.iter_target);
    const int speed_ok = !isnan(lm) && (isnan(adam) ? r->t[ADAM].seconds / lm >= TARGET_SPEEDUP
                                                    : adam / lm >= TARGET_SPEEDUP);
    return iters_ok && speed_ok;
}

static void print_json(const struct opts *o, const struct bench_meta *m, const result *res, int nres)
{
    FILE *f = stdout;
    bench_json_begin(f, PROG, bp_version(), m);
    fprintf(f, ",\n  \"init_seed\": %d, \"adam_lr\": %g, \"sgd_lr\": %g, \"sgd_momentum\": %g, \"lm_repeats\": %d, "
               "\"cap_s\": %g, \"factor\": %g",
            INIT_SEED, ADAM_LR, sgd_lr, sgd_momentum, o->c.min_reps, o->cap, o->factor);
    fprintf(f, ",\n  \"problems\": [");
    for (int i = 0; i < nres; i++) {
        const result *r = &res[i];
        fprintf(f, "%s\n    {\"problem\": \"%s\", \"network\": \"%s\", \"budget_s\": %g, \"methods\": [", i ? "," : "",
                r->p.name, r->p.net_name, r->budget);
        for (int mth = 0; mth < NMETH; mth++) {
            const trace *t = &r->t[mth];
            fprintf(f, "%s{\"method\": \"%s\", ", mth ? ", " : "", meth_name[mth]);
            bench_json_num(f, "iters_1e-4", t->it_hit[0] >= 0 ? (double)t->it_hit[0] : NAN, 0);
            bench_json_num(f, "s_1e-4", hit_time(r, mth, 0), 0);
            bench_json_num(f, "iters_1e-6", t->it_hit[1] >= 0 ? (double)t->it_hit[1] : NAN, 0);
            bench_json_num(f, "s_1e-6", hit_time(r, mth, 1), 0);
            bench_json_num(f, "final_mse", t->mse, 0);
            bench_json_num(f, "iters_done", (double)t->iters, 0);
            bench_json_num(f, "seconds", t->seconds, 1);
            fprintf(f, "}");
        }
        fprintf(f, "]}");
    }
    fprintf(f, "\n  ]\n}\n");
}

static int write_csv(const char *path, const result *res, int nres)
{
    FILE *f = bench_dat_open(PROG, path);
    if (!f)
        return -1;
    fprintf(f, "problem,method,iteration,seconds,mse\n");
    for (int i = 0; i < nres; i++)
        for (int m = 0; m < NMETH; m++) {
            const trace *t = &res[i].t[m];
            for (int q = 0; q < t->n; q++)
                fprintf(f, "%s,%s,%ld,%.6g,%.6g\n", res[i].p.name, meth_name[m], t->pit[q], t->pt[q], t->pmse[q]);
            fprintf(f, "%s,%s,%ld,%.6g,%.6g\n", res[i].p.name, meth_name[m], t->iters, t->seconds, t->mse);
        }
    return bench_dat_close(PROG, f, path);
}

int main(int argc, char **argv)
{
    struct opts o;
    parse_args(&o, argc, argv);
    struct bench_meta m;
    bench_get_meta(&m);
    static result res[NPROB];
    int nres = 0, ok = 1;
    if (!o.c.json) {
        print_header(&o, &m);
        fflush(stdout);
    }
    for (int w = 0; w < NPROB; w++) {
        if (!o.run[w])
            continue;
        run_problem(&o, w, &res[nres]);
        if (!o.c.json) {
            print_table(&res[nres]);
            fflush(stdout);
        }
        nres++;
    }
    if (o.c.json) {
        print_json(&o, &m, res, nres);
    } else {
        for (int i = 0; i < nres; i++)
            ok &= print_summary(&res[i]);
        printf("targets (LM within %d iterations on the curve, >= %.0fx sooner than Adam to 1e-6): %s\n",
               TARGET_LM_ITERS, TARGET_SPEEDUP, ok ? "met" : "NOT met");
    }
    int status = 0;
    if (o.csv && write_csv(o.csv, res, nres) != 0)
        status = 1;
    for (int i = 0; i < nres; i++) {
        free(res[i].p.X);
        free(res[i].p.T);
    }
    return status;
}
