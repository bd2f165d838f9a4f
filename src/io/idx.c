/* SPDX-License-Identifier: MIT */
/* idx.c: the IDX reader (MNIST's format: big-endian header, unsigned bytes), plain or gzip, into a bp_dataset. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "backprop/io.h"
#include "core/internal.h"
#include "net/net_internal.h"

static const char fn[] = "bp_idx_read";

/* Bytes converted per gzread call: a stack buffer, so no second copy of the
 * data is ever allocated. */
#define IDX_CHUNK 16384

/* One open IDX file and what its header announced. */
typedef struct idx_file {
    const char *path;
    gzFile gz;
    uint64_t size;    /* of the file on disk */
    uint64_t off;     /* uncompressed bytes consumed so far */
    uint32_t dims[3];
    int ndims;
} idx_file;

/* Opens a regular file (a device or pipe might never end) for zlib, plain or gzip. */
static bp_status open_idx(idx_file *f, const char *path)
{
    char eb[128];
    f->path = path;
    f->off = 0;
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bp__fail(BP_ERR_IO, fn, "%s: cannot open: %s", path, bp__sys_error(errno, eb, sizeof eb));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return bp__fail(BP_ERR_IO, fn, "%s: not a regular file (a device, pipe or directory)", path);
    }
    f->size = (uint64_t)sb.st_size;
    errno = 0;
    f->gz = gzdopen(fd, "rb");
    if (!f->gz) {
        const int e = errno;
        close(fd);
        return bp__fail(BP_ERR_NOMEM, fn, "%s: zlib could not start reading: %s", path,
                        bp__sys_error(e ? e : ENOMEM, eb, sizeof eb));
    }
    (void)gzbuffer(f->gz, 1u << 17); /* fewer read() calls than the default 8 KiB; failure is harmless */
    return BP_OK;
}


/* zlib's error state after a short read or at the end of the file: BP_OK when
 * there is none (a plain end of file). `sys_err` is errno right after the read
 * that failed. The data being read spans [start, start + total). */
static bp_status zlib_state(idx_file *f, int sys_err, uint64_t start, uint64_t total)
{
    int zerr = Z_OK;
    const char *zmsg = gzerror(f->gz, &zerr);
    char eb[128];
    switch (zerr) {
    case Z_OK:
        return BP_OK;
    case Z_ERRNO:
        return bp__fail(BP_ERR_IO, fn, "%s: read error at byte offset %" PRIu64 ": %s", f->path, f->off,
                        bp__sys_error(sys_err, eb, sizeof eb));
    case Z_MEM_ERROR:
        return bp__fail(BP_ERR_NOMEM, fn, "%s: zlib ran out of memory at byte offset %" PRIu64, f->path, f->off);
    case Z_BUF_ERROR: /* zlib's "unexpected end of file": the gzip stream itself is cut short */
        if (total == 0)
            return bp__fail(BP_ERR_FORMAT, fn,
                            "%s: truncated gzip stream (%s): the data is complete at uncompressed byte offset %" PRIu64
                            " but the gzip trailer (CRC and length) is missing or cut",
                            f->path, zmsg, f->off);
        return bp__fail(BP_ERR_FORMAT, fn,
                        "%s: truncated gzip stream (%s): it ends at uncompressed byte offset %" PRIu64
                        "; %" PRIu64 " bytes are expected from offset %" PRIu64 " up to offset %" PRIu64,
                        f->path, zmsg, f->off, total, start, start + total);
    default:
        return bp__fail(BP_ERR_FORMAT, fn, "%s: corrupt gzip stream at uncompressed byte offset %" PRIu64 ": %s",
                        f->path, f->off, zmsg);
    }
}

/* Reads exactly len bytes of the part [start, start + total) named `what`. A
 * short read is a truncated file (BP_ERR_FORMAT, with the offset where the
 * data ended and what was expected); zlib's own errors are a corrupt gzip
 * stream (BP_ERR_FORMAT), a system error (BP_ERR_IO) or memory (BP_ERR_NOMEM). */
static bp_status read_exact(idx_file *f, unsigned char *buf, unsigned len, const char *what, uint64_t start,
                            uint64_t total)
{
    unsigned got = 0;
    int sys_err = 0;
    while (got < len) {
        errno = 0;
        const int r = gzread(f->gz, buf + got, len - got);
        if (r <= 0) {
            sys_err = errno;
            break;
        }
        got += (unsigned)r;
        f->off += (uint64_t)r;
    }
    if (got == len)
        return BP_OK;
    const bp_status st = zlib_state(f, sys_err, start, total);
    if (st != BP_OK)
        return st;
    return bp__fail(BP_ERR_FORMAT, fn,
                    "%s: truncated file: the %s ends at byte offset %" PRIu64 "; %" PRIu64
                    " bytes are expected from offset %" PRIu64 " up to offset %" PRIu64,
                    f->path, what, f->off, total, start, start + total);
}

/* After the announced data the file must end: a further byte is refused.
 * Reading past the end also makes zlib verify the gzip trailer (CRC, length). */
static bp_status expect_end(idx_file *f)
{
    unsigned char extra;
    errno = 0;
    const int r = gzread(f->gz, &extra, 1);
    if (r == 1)
        return bp__fail(BP_ERR_FORMAT, fn,
                        "%s: trailing data at byte offset %" PRIu64 ": the header announces exactly %" PRIu64
                        " bytes",
                        f->path, f->off, f->off);
    return zlib_state(f, errno, f->off, 0);
}

/* A plain (not gzip) file must be exactly its header and the data the header announces: checked
 * against the file's size before anything is allocated, so a 16-byte file cannot ask for 16 GiB.
 * A gzip file's size says nothing of its content; its data is read into memory that grows as it
 * arrives (see block_reserve). */
static bp_status check_plain_size(idx_file *f, uint64_t data_bytes, const char *what)
{
    if (!gzdirect(f->gz))
        return BP_OK;
    const uint64_t header = 4u + 4u * (uint64_t)f->ndims, end = header + data_bytes;
    if (f->size < end)
        return bp__fail(BP_ERR_FORMAT, fn,
                        "%s: truncated file: the %s ends at byte offset %" PRIu64 "; %" PRIu64
                        " bytes are expected from offset %" PRIu64 " up to offset %" PRIu64,
                        f->path, what, f->size, data_bytes, header, end);
    if (f->size > end)
        return bp__fail(BP_ERR_FORMAT, fn,
                        "%s: trailing data at byte offset %" PRIu64 ": the header announces exactly %" PRIu64
                        " bytes",
                        f->path, end, end);
    return BP_OK;
}

/* Memory for `total` elements of esize bytes, grown as the data arrives: doubled from 1 MiB up
 * to total (through the caller's allocator: a new block, the data copied, the old freed). */
typedef struct block {
    void *p;
    uint64_t cap, total;
    size_t esize;
    const bp_allocator *a;
    const char *path, *what;  /* the images file, and "values" or "labels" */
} block;

static bp_status block_reserve(block *b, uint64_t need)
{
    if (need <= b->cap)
        return BP_OK;
    uint64_t cap = b->cap ? 2 * b->cap : ((uint64_t)1 << 20) / b->esize;
    cap = cap < need ? need : cap > b->total ? b->total : cap;
    void *p = b->a->alloc(b->a->ctx, (size_t)cap * b->esize);
    if (!p)
        return bp__fail(BP_ERR_NOMEM, fn, "%s: allocating %" PRIu64 " %s", b->path, cap, b->what);
    if (b->p) {
        memcpy(p, b->p, (size_t)b->cap * b->esize);
        b->a->free(b->a->ctx, b->p);
    }
    b->p = p;
    b->cap = cap;
    return BP_OK;
}

static const char *type_name(unsigned code)
{
    switch (code) {
    case 0x09: return "signed byte";
    case 0x0B: return "16-bit integer";
    case 0x0C: return "32-bit integer";
    case 0x0D: return "32-bit float";
    case 0x0E: return "64-bit float";
    default: return NULL;
    }
}

/* Reads and checks the magic number and the dimensions; the sizes are checked
 * against the limits by the caller. */
static bp_status read_header(idx_file *f, int is_labels)
{
    unsigned char h[16];
    bp_status st = read_exact(f, h, 4, "header", 0, 4);
    if (st != BP_OK)
        return st;
    if (h[0] != 0 || h[1] != 0)
        return bp__fail(BP_ERR_FORMAT, fn,
                        "%s: byte offset 0: not an IDX file: the magic number 0x%02X%02X%02X%02X does not start "
                        "with two zero bytes",
                        f->path, h[0], h[1], h[2], h[3]);
    if (h[2] != 0x08) {
        const char *name = type_name(h[2]);
        if (name)
            return bp__fail(BP_ERR_UNSUPPORTED, fn,
                            "%s: byte offset 2: element type 0x%02X (%s) is not supported, only 0x08 "
                            "(unsigned byte)",
                            f->path, h[2], name);
        return bp__fail(BP_ERR_FORMAT, fn, "%s: byte offset 2: unknown IDX element type 0x%02X", f->path, h[2]);
    }
    f->ndims = h[3];
    if (is_labels && f->ndims != 1)
        return bp__fail(BP_ERR_FORMAT, fn,
                        "%s: byte offset 3: %d dimensions, but a label file (magic 0x00000801) has 1", f->path,
                        f->ndims);
    if (!is_labels && f->ndims != 2 && f->ndims != 3)
        return bp__fail(BP_ERR_FORMAT, fn,
                        "%s: byte offset 3: %d dimensions, but an image file has 3 (magic 0x00000803: n x rows "
                        "x cols) or 2 (magic 0x00000802: n x features)",
                        f->path, f->ndims);
    const unsigned hlen = 4u + 4u * (unsigned)f->ndims;
    st = read_exact(f, h + 4, hlen - 4, "header", 0, hlen);
    if (st != BP_OK)
        return st;
    for (int k = 0; k < f->ndims; k++) {
        const unsigned char *p = h + 4 + 4 * k;
        f->dims[k] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
        if (f->dims[k] == 0)
            return bp__fail(BP_ERR_FORMAT, fn, "%s: byte offset %d: dimension %d of %d is zero", f->path,
                            4 + 4 * k, k + 1, f->ndims);
    }
    return BP_OK;
}

static bp_status read_images(idx_file *f, uint64_t count, bp_dtype dtype, bp_scale scale, block *X)
{
    /* Every byte value's conversion, once. */
    float tf[256];
    double td[256];
    for (int v = 0; v < 256; v++) {
        td[v] = scale == BP_SCALE_UNIT ? v / 255.0 : (double)v;
        tf[v] = (float)td[v];
    }
    unsigned char buf[IDX_CHUNK];
    const uint64_t start = f->off;
    uint64_t done = 0;
    while (done < count) {
        const unsigned len = count - done < IDX_CHUNK ? (unsigned)(count - done) : IDX_CHUNK;
        bp_status st = read_exact(f, buf, len, "pixel data", start, count);
        if (st == BP_OK)
            st = block_reserve(X, done + len);
        if (st != BP_OK)
            return st;
        if (dtype == BP_F32) {
            float *x = (float *)X->p + done;
            for (unsigned i = 0; i < len; i++)
                x[i] = tf[buf[i]];
        } else {
            double *x = (double *)X->p + done;
            for (unsigned i = 0; i < len; i++)
                x[i] = td[buf[i]];
        }
        done += len;
    }
    return expect_end(f);
}

static bp_status read_labels(idx_file *f, uint64_t count, block *labels, int *max_label)
{
    unsigned char buf[IDX_CHUNK];
    const uint64_t start = f->off;
    uint64_t done = 0;
    int mx = 0;
    while (done < count) {
        const unsigned len = count - done < IDX_CHUNK ? (unsigned)(count - done) : IDX_CHUNK;
        bp_status st = read_exact(f, buf, len, "label data", start, count);
        if (st == BP_OK)
            st = block_reserve(labels, done + len);
        if (st != BP_OK)
            return st;
        for (unsigned i = 0; i < len; i++) {
            ((int32_t *)labels->p)[done + i] = buf[i];
            if (buf[i] > mx)
                mx = buf[i];
        }
        done += len;
    }
    *max_label = mx;
    return expect_end(f);
}

/* Validates both headers and every size before anything is allocated; the data is then
 * converted chunk by chunk into X (for a plain file allocated whole, its size having matched the
 * header; for gzip grown as the data arrives). Its messages name bp_idx_read (fn). */
static bp_status read_idx(const char *images_path, const char *labels_path, bp_dtype dtype, bp_scale scale,
                          int64_t max_values, const bp_allocator *alloc, bp_dataset *out)
{
    BP_CHECK_PTR(images_path);
    BP_CHECK_PTR(out);
    BP_REQUIRE(dtype == BP_F32 || dtype == BP_F64, BP_ERR_ARG, "dtype (%d) is neither BP_F32 (1) nor BP_F64 (2)",
               (int)dtype);
    BP_REQUIRE(scale == BP_SCALE_NONE || scale == BP_SCALE_UNIT, BP_ERR_ARG,
               "scale (%d) is neither BP_SCALE_NONE (0) nor BP_SCALE_UNIT (1)", (int)scale);
    BP_REQUIRE(max_values >= 1 && max_values <= BP_IO_MAX_VALUES, BP_ERR_ARG,
               "max_values (%" PRId64 ") is not in [1, BP_IO_MAX_VALUES]", max_values);
    BP_REQUIRE(!alloc || (alloc->alloc && alloc->free), BP_ERR_ARG, "alloc has a NULL alloc or free");
    const bp_allocator a = alloc ? *alloc : bp__default_allocator;
    const size_t esize = dtype == BP_F32 ? sizeof(float) : sizeof(double);

    idx_file img = {0}, lab = {0};
    block X = {NULL, 0, 0, esize, &a, images_path, "values"},
          labels = {NULL, 0, 0, sizeof(int32_t), &a, images_path, "labels"};
    int max_label = 0;
    uint64_t n = 0, nf = 0;

    bp_status st = open_idx(&img, images_path);
    if (st == BP_OK)
        st = read_header(&img, 0);
    if (st != BP_OK)
        goto done;
    n = img.dims[0];
    nf = img.ndims == 3 ? (uint64_t)img.dims[1] * img.dims[2] : img.dims[1];
    if (n > (uint64_t)BP_IO_MAX_SAMPLES) {
        st = bp__fail(BP_ERR_OVERFLOW, fn, "%s: %" PRIu64 " samples exceed BP_IO_MAX_SAMPLES (%" PRId64 ")",
                      images_path, n, (int64_t)BP_IO_MAX_SAMPLES);
        goto done;
    }
    /* nf < 2^64 but n * nf could wrap: nf is compared first. */
    if (nf > (uint64_t)max_values || n * nf > (uint64_t)max_values) {
        st = bp__fail(BP_ERR_OVERFLOW, fn, "%s: %" PRIu64 " samples of %" PRIu64 " values exceed the limit of %" PRId64,
                      images_path, n, nf, max_values);
        goto done;
    }
    if (nf > (uint64_t)INT_MAX) {
        st = bp__fail(BP_ERR_OVERFLOW, fn, "%s: %" PRIu64 " values per sample exceed INT_MAX (a bp_int)",
                      images_path, nf);
        goto done;
    }
    if (n * nf > SIZE_MAX / esize) {
        st = bp__fail(BP_ERR_OVERFLOW, fn, "%s: %" PRIu64 " samples of %" PRIu64 " values exceed SIZE_MAX bytes",
                      images_path, n, nf);
        goto done;
    }

    if (labels_path) {
        st = open_idx(&lab, labels_path);
        if (st == BP_OK)
            st = read_header(&lab, 1);
        if (st != BP_OK)
            goto done;
        if (lab.dims[0] != n) {
            st = bp__fail(BP_ERR_FORMAT, fn, "%s holds %" PRIu64 " samples but %s holds %" PRIu32 " labels",
                          images_path, n, labels_path, lab.dims[0]);
            goto done;
        }
    }

    st = check_plain_size(&img, n * nf, "pixel data");
    if (st == BP_OK && labels_path)
        st = check_plain_size(&lab, n, "label data");
    X.total = n * nf;
    labels.total = n;
    /* A plain file's size matched its header: its memory at once, as before any data is read. */
    if (st == BP_OK && gzdirect(img.gz))
        st = block_reserve(&X, X.total);
    if (st == BP_OK && labels_path && gzdirect(lab.gz))
        st = block_reserve(&labels, labels.total);
    if (st == BP_OK)
        st = read_images(&img, n * nf, dtype, scale, &X);
    if (st == BP_OK && labels_path)
        st = read_labels(&lab, n, &labels, &max_label);

done:
    if (img.gz)
        gzclose(img.gz);
    if (lab.gz)
        gzclose(lab.gz);
    if (st != BP_OK) {
        if (X.p)
            a.free(a.ctx, X.p);
        if (labels.p)
            a.free(a.ctx, labels.p);
        return st;
    }
    out->dtype = dtype;
    out->n = (bp_int)n;
    out->n_features = (bp_int)nf;
    out->X = X.p;
    out->labels = labels.p;
    out->n_classes = labels.p ? max_label + 1 : 0;
    out->alloc = a;
    out->targets = NULL; /* IDX files hold no real targets */
    out->n_targets = 0;
    return BP_OK;
}

bp_status bp_idx_read(const char *images_path, const char *labels_path, bp_dtype dtype, bp_scale scale,
                      const bp_allocator *alloc, bp_dataset *out)
{
    return read_idx(images_path, labels_path, dtype, scale, BP_IO_MAX_VALUES, alloc, out);
}

bp_status bp_idx_read_limit(const char *images_path, const char *labels_path, bp_dtype dtype, bp_scale scale,
                            int64_t max_values, const bp_allocator *alloc, bp_dataset *out)
{
    const bp_status st = read_idx(images_path, labels_path, dtype, scale, max_values, alloc, out);
    return st == BP_OK ? st : bp__fail_as(st, __func__);  /* the same message, under this function's name */
}
