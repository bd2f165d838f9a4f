/* SPDX-License-Identifier: MIT */
/* fuzz_util.c: the pieces the libFuzzer targets share (described in fuzz_util.h). */
#define _GNU_SOURCE /* memfd_create */
#include "fuzz_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: check failed: %s: ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* ---------------------------------------------------------------------------------------------
 * The capped allocator. libFuzzer runs one input at a time in one thread: plain counters do.
 * ------------------------------------------------------------------------------------------- */
static size_t live_blocks, refused;

static void *capped_alloc(void *ctx, size_t size)
{
    (void)ctx;
    if (size > FUZZ_ALLOC_CAP) {
        refused++;
        return NULL;
    }
    void *p = malloc(size);
    if (p)
        live_blocks++;
    return p;
}

static void capped_free(void *ctx, void *p)
{
    (void)ctx;
    if (p)
        live_blocks--;
    free(p);
}

const bp_allocator fuzz_alloc = {capped_alloc, capped_free, NULL};

size_t fuzz_live_blocks(void)
{
    return live_blocks;
}

void fuzz_begin(void)
{
    refused = 0;
}

static int is_fuzz_alloc(const bp_allocator *a)
{
    return a->alloc == capped_alloc && a->free == capped_free && a->ctx == NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Files: memory files named through /proc, and one temporary directory.
 * ------------------------------------------------------------------------------------------- */
static char temp_dir[PATH_MAX];

/* Only the harness writes the directory, and only plain files: one level to remove. */
static void remove_temp_dir(void)
{
    DIR *d = opendir(temp_dir);
    if (d) {
        char path[PATH_MAX + 256];
        for (struct dirent *e; (e = readdir(d)) != NULL;) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                snprintf(path, sizeof path, "%s/%s", temp_dir, e->d_name);
                unlink(path);
            }
        }
        closedir(d);
    }
    rmdir(temp_dir);
}

const char *fuzz_temp_path(const char *name)
{
    static char path[PATH_MAX + 256];
    if (!temp_dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(temp_dir, sizeof temp_dir, "%s/bp-fuzz-XXXXXX", t && *t ? t : "/tmp");
        FUZZ_CHECK(mkdtemp(temp_dir) != NULL, "the harness cannot create %s: %s", temp_dir, strerror(errno));
        atexit(remove_temp_dir);
    }
    snprintf(path, sizeof path, "%s/%s", temp_dir, name);
    return path;
}

/* A memory file when /proc can reopen it by name (the readers open paths), else a temporary file. */
static int open_slot(int slot, char *path, size_t len)
{
    char name[16];
    snprintf(name, sizeof name, "input%d", slot);
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd >= 0) {
        snprintf(path, len, "/proc/self/fd/%d", fd);
        const int probe = open(path, O_RDONLY | O_CLOEXEC);
        if (probe >= 0) {
            close(probe);
            return fd;
        }
        close(fd);
    }
    snprintf(path, len, "%s", fuzz_temp_path(name));
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_CHECK(fd >= 0, "the harness cannot create %s: %s", path, strerror(errno));
    return fd;
}

static void write_plain(int fd, const uint8_t *data, size_t len)
{
    for (size_t done = 0; done < len;) {
        const ssize_t w = pwrite(fd, data + done, len - done, (off_t)done);
        FUZZ_CHECK(w > 0, "the harness cannot write its input file: %s", strerror(errno));
        done += (size_t)w;
    }
}

static void write_gzip(int fd, const uint8_t *data, size_t len)
{
    /* gzclose closes the descriptor it was given: hand it a duplicate, which shares the offset. */
    FUZZ_CHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek: %s", strerror(errno));
    const int dup_fd = dup(fd);
    FUZZ_CHECK(dup_fd >= 0, "dup: %s", strerror(errno));
    gzFile gz = gzdopen(dup_fd, "wb");
    FUZZ_CHECK(gz != NULL, "gzdopen failed");
    FUZZ_CHECK(len == 0 || gzwrite(gz, data, (unsigned)len) == (int)len, "gzwrite failed");
    FUZZ_CHECK(gzclose(gz) == Z_OK, "gzclose failed");
}

const char *fuzz_file(int slot, const uint8_t *data, size_t len, int gzip)
{
    static int fds[FUZZ_SLOTS];
    static char paths[FUZZ_SLOTS][PATH_MAX + 256];
    FUZZ_CHECK(slot >= 0 && slot < FUZZ_SLOTS, "slot %d", slot);
    if (!paths[slot][0])
        fds[slot] = open_slot(slot, paths[slot], sizeof paths[slot]);
    FUZZ_CHECK(ftruncate(fds[slot], 0) == 0, "ftruncate: %s", strerror(errno));
    if (gzip)
        write_gzip(fds[slot], data, len);
    else
        write_plain(fds[slot], data, len);
    return paths[slot];
}

/* ---------------------------------------------------------------------------------------------
 * The checks of a failed call.
 * ------------------------------------------------------------------------------------------- */
void fuzz_sentinel(void *p, size_t bytes)
{
    memset(p, FUZZ_SENTINEL_BYTE, bytes);
}

static int is_sentinel(const void *p, size_t bytes)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < bytes; i++)
        if (b[i] != FUZZ_SENTINEL_BYTE)
            return 0;
    return 1;
}

void fuzz_check_failure(const char *fn, bp_status st, unsigned allowed, const void *out, size_t bytes)
{
    const char *msg = bp_last_error();
    const int code = (int)st;
    FUZZ_CHECK(code > 0 && code < 32 && (allowed & FUZZ_STATUS(code)), "%s returned %d (%s), not a documented code here: %s",
               fn, code, bp_strerror(st), msg);
    const size_t n = strlen(fn);
    FUZZ_CHECK(strncmp(msg, fn, n) == 0 && strncmp(msg + n, ": ", 2) == 0,
               "the message does not start with \"%s: \": %s", fn, msg);
    FUZZ_CHECK(is_sentinel(out, bytes), "%s wrote its output although it failed: %s", fn, msg);
    FUZZ_CHECK(live_blocks == 0, "%s left %zu blocks allocated although it failed: %s", fn, live_blocks, msg);
    FUZZ_CHECK(st != BP_ERR_NOMEM || refused > 0, "%s reports BP_ERR_NOMEM, but no allocation was refused: %s", fn,
               msg);
}

/* ---------------------------------------------------------------------------------------------
 * The checks of a data set read.
 * ------------------------------------------------------------------------------------------- */
double fuzz_x(const bp_dataset *d, size_t i)
{
    return d->dtype == BP_F32 ? ((const float *)d->X)[i] : ((const double *)d->X)[i];
}

static void check_labels(const bp_dataset *d)
{
    FUZZ_CHECK(d->labels != NULL && d->n_classes >= 1, "labels %p, n_classes %d", (void *)d->labels,
               (int)d->n_classes);
    int32_t largest = 0;
    for (size_t i = 0; i < (size_t)d->n; i++) {
        const int32_t c = d->labels[i];
        FUZZ_CHECK(c >= 0 && c < d->n_classes, "labels[%zu] = %d is not in [0, %d)", i, (int)c, (int)d->n_classes);
        largest = c > largest ? c : largest;
    }
    FUZZ_CHECK(d->n_classes == largest + 1, "n_classes %d, but the largest label is %d", (int)d->n_classes,
               (int)largest);
}

void fuzz_check_dataset(const bp_dataset *d, bp_dtype dtype, int with_labels)
{
    FUZZ_CHECK(d->dtype == dtype && d->n >= 1 && d->n_features >= 1 && d->X != NULL, "dtype %d, n %d, n_features %d",
               (int)d->dtype, (int)d->n, (int)d->n_features);
    const size_t count = (size_t)d->n * (size_t)d->n_features;
    for (size_t i = 0; i < count; i++)
        FUZZ_CHECK(isfinite(fuzz_x(d, i)), "X[%zu] = %g", i, fuzz_x(d, i));
    if (with_labels)
        check_labels(d);
    else
        FUZZ_CHECK(d->labels == NULL && d->n_classes == 0, "labels without a label source");
    FUZZ_CHECK(is_fuzz_alloc(&d->alloc), "the data set does not record the allocator it was given");
}

void fuzz_free_dataset(bp_dataset *d)
{
    bp_dataset_free(d);
    FUZZ_CHECK(live_blocks == 0, "%zu blocks stay allocated after bp_dataset_free", live_blocks);
}
