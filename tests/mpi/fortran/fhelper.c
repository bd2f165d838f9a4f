/* SPDX-License-Identifier: MIT */
/* fhelper.c: the C side of test_mpi.f90: the sizes of bp_mpi_config and bp_mpi_stats as C sees them,
 * and a watchdog that ends a rank whose phase hangs (so that a hang fails instead of waiting). */
#define _POSIX_C_SOURCE 200809L
#include <backprop/mpi.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

size_t bpt_mpi_config_size(void);
size_t bpt_mpi_stats_size(void);
void bpt_watchdog(int seconds, const char *what, size_t len);

size_t bpt_mpi_config_size(void) { return sizeof(bp_mpi_config); }
size_t bpt_mpi_stats_size(void) { return sizeof(bp_mpi_stats); }

static char message[256];
static size_t message_len;

static void on_alarm(int sig)
{
    (void)sig;
    /* async-signal-safe: write and _exit only */
    ssize_t w = write(STDERR_FILENO, message, message_len);
    (void)w;
    _exit(3);
}

/* Arms the watchdog for `seconds` (0 disarms it): if the phase `what` (len characters) is not
 * over by then, the rank prints that it hung and exits with status 3, which ends the job. */
void bpt_watchdog(int seconds, const char *what, size_t len)
{
    alarm(0);
    if (seconds <= 0)
        return;
    static const char head[] = "FAILED: watchdog: the phase '", tail[] = "' did not finish in time (a hang)\n";
    if (len > sizeof message - sizeof head - sizeof tail)
        len = sizeof message - sizeof head - sizeof tail;
    memcpy(message, head, sizeof head - 1);
    memcpy(message + sizeof head - 1, what, len);
    memcpy(message + sizeof head - 1 + len, tail, sizeof tail - 1);
    message_len = sizeof head - 1 + len + sizeof tail - 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    alarm((unsigned)seconds);
}
