/* SPDX-License-Identifier: MIT */
/** \file
 * backprop/core.h: types, layouts, status codes and error reporting shared by the whole library. */
#ifndef BACKPROP_CORE_H
#define BACKPROP_CORE_H

#ifdef __cplusplus
extern "C" {
#endif

/** Major version of these headers (bp_version() gives the library actually linked). */
#define BP_VERSION_MAJOR 0
/** Minor version of these headers. */
#define BP_VERSION_MINOR 2
/** Patch version of these headers. */
#define BP_VERSION_PATCH 0

/** Marks the public entry points (the library is built with hidden visibility). */
#if defined(BP_BUILDING) && defined(__GNUC__)
#define BP_API __attribute__((visibility("default")))
#else
#define BP_API
#endif

/** Dimensions and leading dimensions: plain int, as LP64 CBLAS takes them. */
typedef int bp_int;

/** Storage order of a weight matrix; the values are CBLAS's CblasRowMajor and
 * CblasColMajor so the two can be passed interchangeably.
 *
 * In both layouts every sample is contiguous, and W has its mathematical
 * shape n_out x n_in in the language's own order:
 * \code{.unparsed}
 *   object            math          C, BP_ROW_MAJOR                Fortran, BP_COL_MAJOR
 *   inputs X          n x n_in      X[n][ldx],     ldx >= n_in     X(ldx, n),     ldx >= n_in
 *   weights W         n_out x n_in  W[n_out][ldw], ldw >= n_in     W(ldw, n_in),  ldw >= n_out
 *   outputs Y, Z, dY  n x n_out     Y[n][ldy],     ldy >= n_out    Y(ldy, n),     ldy >= n_out
 * \endcode
 * So X, Y, Z, dY and dX are the same memory in both layouts; only W (and dW)
 * differ: a column-major W is the transpose of a row-major one in memory. */
typedef enum bp_layout {
    BP_ROW_MAJOR = 101,  /**< C order: rows contiguous (CblasRowMajor) */
    BP_COL_MAJOR = 102   /**< Fortran order: columns contiguous (CblasColMajor) */
} bp_layout;

/** Element type of an object that is not typed by its name (a network). */
typedef enum bp_dtype {
    BP_F32 = 1,  /**< float */
    BP_F64 = 2   /**< double */
} bp_dtype;

/** Status returned by every fallible function. The values are stable. */
typedef enum bp_status {
    BP_OK = 0,              /**< success */
    BP_ERR_ARG = 1,         /**< an argument is invalid: NULL, size, leading dimension, enum, label */
    BP_ERR_NOMEM = 2,       /**< an allocation failed */
    BP_ERR_OVERFLOW = 3,    /**< a size is too large or a size product overflows */
    BP_ERR_NONFINITE = 4,   /**< a NaN or Inf where a finite value is required */
    BP_ERR_IO = 5,          /**< reading or writing a file failed */
    BP_ERR_FORMAT = 6,      /**< a file or buffer is not in the expected format */
    BP_ERR_UNSUPPORTED = 7, /**< the request is valid but not supported by this build */
    BP_ERR_COMM = 8,        /**< communication failed: an MPI call, or another rank's part of the same step */
    BP_ERR_MISMATCH = 9     /**< the ranks of a data-parallel run disagree (networks, shard sizes) */
} bp_status;

/** A static English sentence for a status; never NULL ("unknown status" for
 * values this version does not know). */
BP_API const char *bp_strerror(bp_status status);

/** The message of the last error raised in the calling thread, naming the
 * function and the argument, e.g. "bp_sdense_forward: ldx (3) < n_in (4)".
 * Empty before any error. A successful call does not clear it (like errno):
 * read it only after a call returned a status other than BP_OK. The pointer
 * stays valid until the next failing call in the same thread. */
BP_API const char *bp_last_error(void);

/** "MAJOR.MINOR.PATCH" of the library actually linked. */
BP_API const char *bp_version(void);

#ifdef __cplusplus
}
#endif
#endif
