/* SPDX-License-Identifier: MIT */
/* internal.h: error raising and argument checks shared by every source file of the library. */
#ifndef BP_INTERNAL_H
#define BP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "backprop/core.h"

#if defined(__GNUC__)
#define BP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define BP_PRINTF(f, a)
#endif

/* Element i of an array of the dtype, as a double (float or double storage read once). */
static inline double bp__value_at(bp_dtype dtype, const void *a, size_t i)
{
    return dtype == BP_F32 ? (double)((const float *)a)[i] : ((const double *)a)[i];
}

/* Records "func: message" as the calling thread's last error and returns st. */
bp_status bp__fail(bp_status st, const char *func, const char *fmt, ...) BP_PRINTF(3, 4);

/* The text of a system error number, reentrantly (strerror is not thread-safe):
 * written into buf, which is returned; "unknown error" for 0. */
const char *bp__sys_error(int err, char *buf, size_t size);

/* The calling thread's last error raised again under func's name: "inner: why" becomes
 * "func: why" (a public function reporting what the one it called found). Returns st. */
bp_status bp__fail_as(bp_status st, const char *func);

/* Records `message` verbatim (a message raised in another thread) and returns st. */
bp_status bp__fail_copy(bp_status st, const char *message);

/* Returns from the calling function with the status of `call` when it is not BP_OK. */
#define TRY(call) do { bp_status st_ = (call); if (st_ != BP_OK) return st_; } while (0)

/* The checks below return from the calling function with the error, so a
 * validation function reads as a list of requirements. They expect `fn`, the
 * public function's name, in scope. */
#define BP_REQUIRE(cond, st, ...) \
    do { if (!(cond)) return bp__fail((st), fn, __VA_ARGS__); } while (0)

#define BP_CHECK_PTR(p) BP_REQUIRE((p) != NULL, BP_ERR_ARG, "%s is NULL", #p)

/* A batch may be empty; a width may not. */
#define BP_CHECK_BATCH(n) BP_REQUIRE((n) >= 0, BP_ERR_ARG, "%s (%d) < 0", #n, (int)(n))
#define BP_CHECK_WIDTH(w) BP_REQUIRE((w) >= 1, BP_ERR_ARG, "%s (%d) < 1", #w, (int)(w))

#define BP_CHECK_LD(ld, w) \
    BP_REQUIRE((ld) >= (w), BP_ERR_ARG, "%s (%d) < %s (%d)", #ld, (int)(ld), #w, (int)(w))

#define BP_CHECK_LAYOUT(l)                                                                 \
    BP_REQUIRE((l) == BP_ROW_MAJOR || (l) == BP_COL_MAJOR, BP_ERR_ARG,                       \
               "layout (%d) is neither BP_ROW_MAJOR (101) nor BP_COL_MAJOR (102)", (int)(l))

/* A block of `rows` rows of leading dimension `ld` must be addressable:
 * rows * ld elements of `size` bytes may not exceed PTRDIFF_MAX. */
static inline int bp__block_fits(bp_int rows, bp_int ld, size_t size)
{
    return rows <= 0 || (size_t)rows * (size_t)ld <= (size_t)PTRDIFF_MAX / size;
}

#define BP_CHECK_FITS(p, rows, ld)                                                         \
    BP_REQUIRE(bp__block_fits((rows), (ld), sizeof *(p)), BP_ERR_OVERFLOW,                \
               "%s: %d rows of leading dimension %d overflow the address space",          \
               #p, (int)(rows), (int)(ld))

/* A batch-sized array: non-NULL unless the batch is empty, and addressable. */
#define BP_CHECK_BLOCK(p, rows, ld)                        \
    do {                                                   \
        if ((rows) > 0) BP_CHECK_PTR(p);                   \
        BP_CHECK_FITS(p, rows, ld);                        \
    } while (0)

/* OpenBLAS's thread count is process-wide. While a call of the library runs its own thread
 * team, BLAS must run on the thread that calls it: begin sets the count to 1 (the first of
 * overlapping calls, from any thread, saves the count the host set) and end gives it back
 * (the last of them). Nothing happens with a BLAS that has no such setting (blas_threads.c). */
void bp__blas_serial_begin(void);
void bp__blas_serial_end(void);

/* Flush-to-zero for a loop over optimizer state, restoring the calling thread's mode
 * afterwards. State for parameters whose gradient is zero decays geometrically
 * (Adam's v by 0.999 a step) and spends thousands of steps as subnormal floats, each
 * operation on which costs a microcode assist: a Fashion-MNIST epoch slowed from
 * 1.8 s to 2.5 s and kept slowing. Values below FLT_MIN do not move a parameter. */
#if defined(__SSE2__)
#include <xmmintrin.h>
static inline unsigned bp__ftz_begin(void)
{
    const unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040u);  /* FTZ (bit 15) and DAZ (bit 6) */
    return csr;
}
static inline void bp__ftz_end(unsigned csr) { _mm_setcsr(csr); }
#else
static inline unsigned bp__ftz_begin(void) { return 0; }
static inline void bp__ftz_end(unsigned csr) { (void)csr; }
#endif

/* Seconds on the monotonic clock, for reports of elapsed time (clock.c). */
double bp__seconds(void);

#endif
