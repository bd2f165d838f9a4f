/* SPDX-License-Identifier: MIT */
/* status.c: status strings, the thread-local last-error message and the version. */
#define _POSIX_C_SOURCE 200809L  /* the XSI strerror_r */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "internal.h"
#include "backprop/parallel.h"

/* One message per thread; no other mutable state exists in the library. */
static _Thread_local char last_error[512];

const char *bp_strerror(bp_status status)
{
    switch (status) {
    case BP_OK: return "success";
    case BP_ERR_ARG: return "invalid argument";
    case BP_ERR_NOMEM: return "out of memory";
    case BP_ERR_OVERFLOW: return "size too large or overflowing";
    case BP_ERR_NONFINITE: return "non-finite value (NaN or Inf)";
    case BP_ERR_IO: return "input/output error";
    case BP_ERR_FORMAT: return "bad file or data format";
    case BP_ERR_UNSUPPORTED: return "unsupported request";
    case BP_ERR_COMM: return "communication failed";
    case BP_ERR_MISMATCH: return "the ranks disagree";
    }
    return "unknown status";
}

const char *bp_last_error(void)
{
    return last_error;
}

#define BP_STR_(x) #x
#define BP_STR(x) BP_STR_(x)

const char *bp_version(void)
{
    return BP_STR(BP_VERSION_MAJOR) "." BP_STR(BP_VERSION_MINOR) "." BP_STR(BP_VERSION_PATCH);
}

bp_status bp__fail(bp_status st, const char *func, const char *fmt, ...)
{
    int k = snprintf(last_error, sizeof last_error, "%s: ", func);
    if (k < 0 || (size_t)k >= sizeof last_error)
        return st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error + k, sizeof last_error - (size_t)k, fmt, ap);
    va_end(ap);
    return st;
}

bp_status bp_report_error(bp_status status, const char *fn, const char *message)
{
    if (fn == NULL || message == NULL)
        return status;
    return bp__fail(status, fn, "%s", message);
}

bp_status bp__fail_as(bp_status st, const char *func)
{
    char why[sizeof last_error];
    const char *colon = strstr(last_error, ": ");
    snprintf(why, sizeof why, "%s", colon ? colon + 2 : last_error);
    return bp__fail(st, func, "%s", why);
}

bp_status bp__fail_copy(bp_status st, const char *message)
{
    snprintf(last_error, sizeof last_error, "%s", message);
    return st;
}

/* strerror_r is the XSI one (int: 0 and the text in buf) unless a build defines _GNU_SOURCE,
 * which gives GNU's (char *: the text, maybe not in buf); both are handled. */
static const char *xsi_text(int r, char *buf, size_t size, int err)
{
    if (r != 0)
        snprintf(buf, size, "error %d", err);
    return buf;
}

static const char *gnu_text(const char *r, char *buf, size_t size, int err)
{
    if (!r)
        snprintf(buf, size, "error %d", err);
    else if (r != buf)
        snprintf(buf, size, "%s", r);
    return buf;
}

const char *bp__sys_error(int err, char *buf, size_t size)
{
    if (err == 0)
        return "unknown error";
    return _Generic(strerror_r(err, buf, size), int: xsi_text, default: gnu_text)(strerror_r(err, buf, size), buf,
                                                                                  size, err);
}
