/* SPDX-License-Identifier: MIT */
/* bpt_output.c: backprop-train's epoch log and its learning curves drawn by gnuplot. */
#define _POSIX_C_SOURCE 200809L  /* mkstemp, fdopen, posix_spawnp */
#include <errno.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "bpt.h"

extern char **environ;

/* A unique file in $TMPDIR (default /tmp) named PREFIX-XXXXXX, open for writing; its name goes
 * to name[len]. */
static FILE *temp_file(const char *prefix, char *name, size_t len)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    const int w = snprintf(name, len, "%s/%s-XXXXXX", dir, prefix);
    if (w < 0 || (size_t)w >= len) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    const int fd = mkstemp(name);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (fd >= 0 && !f) {
        close(fd);
        unlink(name);
    }
    return f;
}

/* The epoch log (--log, or a temporary file for --plot alone, whose name goes to logname). */
int open_log(const options *o, FILE **log, char *logname, size_t len)
{
    if (!o->log && !o->plot)
        return 0;
    *log = o->log ? fopen(o->log, "w") : temp_file("backprop-log", logname, len);
    if (!*log)
        return run_fail("cannot write %s: %s", o->log ? o->log : "a temporary log for --plot", strerror(errno));
    fprintf(*log, "epoch,loss,train,test,seconds,samples_per_s,val_loss,val\n");
    return 0;
}

/* s as a gnuplot single-quoted string: inside '...' a quote is written ''. */
static void put_quoted(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

static void write_script(FILE *f, const options *o, const char *data, int with_val)
{
    const int classify = !bpt_squared(o->loss);
    fputs("set terminal pngcairo size 900,420 noenhanced\nset output ", f);
    put_quoted(f, o->plot);
    fputs("\nset datafile separator ','\n"
          "set multiplot layout 1,2 title 'backprop-train learning curves'\n"
          "set xlabel 'epoch'\nset grid\nset key bottom right\n"
          "set ylabel 'mean loss'\nset key top right\nplot ", f);
    put_quoted(f, data);
    fputs(" skip 1 using 1:2 with linespoints title 'train loss'", f);
    if (with_val)
        fputs(", '' skip 1 using 1:7 with linespoints title 'validation loss'", f);
    fprintf(f, "\nset ylabel '%s'\nset key bottom right\nplot ", classify ? "accuracy" : "RMSE");
    put_quoted(f, data);
    fputs(" skip 1 using 1:3 with linespoints title 'train', '' skip 1 using 1:4 with linespoints title 'test'", f);
    if (with_val)
        fputs(", '' skip 1 using 1:8 with linespoints title 'validation'", f);
    fputs("\nunset multiplot\n", f);
}

/* Runs "gnuplot SCRIPT" without a shell; returns its exit status, or -1 with errno when it
 * cannot be started (ENOENT: not installed). */
static int run_gnuplot(char *script)
{
    char prog[] = "gnuplot";
    char *argv[] = {prog, script, NULL};
    pid_t pid;
    const int err = posix_spawnp(&pid, prog, NULL, NULL, argv, environ);
    if (err) {
        errno = err;
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* --plot: the curves of the log `data` (with validation columns when with_val), through a
 * gnuplot script in $TMPDIR. */
int plot(const options *o, const char *data, int with_val)
{
    if (strchr(o->plot, '\n') || strchr(data, '\n'))
        return run_fail("--plot: gnuplot cannot take a file name with a newline");
    char script[4096];
    FILE *f = temp_file("backprop-plot", script, sizeof script);
    if (!f)
        return run_fail("--plot: cannot write a gnuplot script: %s", strerror(errno));
    write_script(f, o, data, with_val);
    const int werr = ferror(f) | fclose(f);
    const int rc = werr ? -2 : run_gnuplot(script);
    const int err = errno;
    unlink(script);
    if (rc == -2)
        return run_fail("--plot: cannot write the gnuplot script %s", script);
    if (rc == -1 && err == ENOENT) {
        fprintf(stderr, "backprop-train: gnuplot is not installed; --plot %s skipped "
                        "(Debian: apt-get install gnuplot-nox)\n", o->plot);
        return 0;
    }
    if (rc != 0)
        return run_fail("--plot: gnuplot failed (%s %d)", rc < 0 ? "error" : "status", rc < 0 ? err : rc);
    if (!o->quiet)
        printf("learning curves: %s\n", o->plot);
    return 0;
}
