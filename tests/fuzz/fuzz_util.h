/* SPDX-License-Identifier: MIT */
/* fuzz_util.h: what the libFuzzer targets share: a capped counting allocator, inputs as files, the error checks. */
#ifndef BP_FUZZ_UTIL_H
#define BP_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <backprop.h>

/* An invariant the library documents: when it fails, the target prints why and aborts, which
 * libFuzzer reports as a finding (with the input saved as a crash file). */
#define FUZZ_CHECK(cond, ...)                                          \
    do {                                                               \
        if (!(cond))                                                   \
            fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);         \
    } while (0)

_Noreturn void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The allocator every target hands the library: it refuses (returns NULL) any request above
 * FUZZ_ALLOC_CAP, so a header asking for gigabytes becomes BP_ERR_NOMEM instead of a libFuzzer
 * malloc-limit report, and it counts the blocks alive and the requests refused. */
#define FUZZ_ALLOC_CAP ((size_t)256 << 20)
extern const bp_allocator fuzz_alloc;
size_t fuzz_live_blocks(void);
/* Called at the start of every input: forgets the requests refused so far. */
void fuzz_begin(void);

/* Writes `len` bytes (gzip-compressed with zlib's gzwrite when `gzip`) into file number
 * `slot` (0 .. FUZZ_SLOTS - 1) and returns its path: a memory file (memfd_create, named as
 * /proc/self/fd/N, a regular file for fstat) or, where /proc cannot reopen it, a file in the
 * temporary directory. The same slot is rewritten on every call. */
#define FUZZ_SLOTS 2
const char *fuzz_file(int slot, const uint8_t *data, size_t len, int gzip);

/* A path named `name` in this process's temporary directory: made with mkdtemp under $TMPDIR
 * (or /tmp) on first use, removed with its files at exit. */
const char *fuzz_temp_path(const char *name);

/* Output arguments are filled with this byte before a call, so "untouched on error" can be
 * checked byte for byte. */
#define FUZZ_SENTINEL_BYTE 0xA5
void fuzz_sentinel(void *p, size_t bytes);

/* The checks after a failed call to `fn`: st is in `allowed` (a mask of 1u << status),
 * bp_last_error() starts with "fn: ", *out (bytes long) still holds the sentinel, no block of
 * fuzz_alloc stays allocated, and BP_ERR_NOMEM comes only after the cap refused a request. */
#define FUZZ_STATUS(s) (1u << (s))
void fuzz_check_failure(const char *fn, bp_status st, unsigned allowed, const void *out, size_t bytes);

/* The invariants of every data set a reader returns (io.h): the dtype asked for, n and
 * n_features >= 1, X finite; labels when asked for (else NULL and n_classes 0), each in
 * [0, n_classes) with n_classes = 1 + the largest; fuzz_alloc recorded as the allocator. */
void fuzz_check_dataset(const bp_dataset *d, bp_dtype dtype, int with_labels);
/* X[i] of a data set, as a double. */
double fuzz_x(const bp_dataset *d, size_t i);
/* bp_dataset_free, after which no block of fuzz_alloc may stay allocated. */
void fuzz_free_dataset(bp_dataset *d);

#endif
