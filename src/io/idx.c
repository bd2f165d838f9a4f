/* idx.c: the IDX reader (MNIST's format: big-endian header, unsigned bytes), plain or gzip, into a bp_dataset. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
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
    uint64_t off;     /* uncompressed bytes consumed so far */
    uint32_t dims[3];
    int ndims;
} idx_file;

static bp_status open_idx(idx_file *f, const char *path)
{
    f->path = path;
    f->off = 0;
    errno = 0;
    f->gz = gzopen(path, "rb");
    if (!f->gz) {
        char eb[128];
        return bp__fail(BP_ERR_IO, fn, "%s: cannot open: %s", path, bp__sys_error(errno, eb, sizeof eb));
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

static bp_status read_images(idx_file *f, uint64_t count, bp_dtype dtype, bp_scale scale, void *X)
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
        const bp_status st = read_exact(f, buf, len, "pixel data", start, count);
        if (st != BP_OK)
            return st;
        if (dtype == BP_F32) {
            float *x = (float *)X + done;
            for (unsigned i = 0; i < len; i++)
                x[i] = tf[buf[i]];
        } else {
            double *x = (double *)X + done;
            for (unsigned i = 0; i < len; i++)
                x[i] = td[buf[i]];
        }
        done += len;
    }
    return expect_end(f);
}

static bp_status read_labels(idx_file *f, uint64_t count, int32_t *labels, int *max_label)
{
    unsigned char buf[IDX_CHUNK];
    const uint64_t start = f->off;
    uint64_t done = 0;
    int mx = 0;
    while (done < count) {
        const unsigned len = count - done < IDX_CHUNK ? (unsigned)(count - done) : IDX_CHUNK;
        const bp_status st = read_exact(f, buf, len, "label data", start, count);
        if (st != BP_OK)
            return st;
        for (unsigned i = 0; i < len; i++) {
            labels[done + i] = buf[i];
            if (buf[i] > mx)
                mx = buf[i];
        }
        done += len;
    }
    *max_label = mx;
    return expect_end(f);
}

/* Validates both headers and every size before anything is allocated; the
 * data is then converted chunk by chunk straight into X. */
bp_status bp_idx_read(const char *images_path, const char *labels_path, bp_dtype dtype, bp_scale scale,
                      const bp_allocator *alloc, bp_dataset *out)
{
    BP_CHECK_PTR(images_path);
    BP_CHECK_PTR(out);
    BP_REQUIRE(dtype == BP_F32 || dtype == BP_F64, BP_ERR_ARG, "dtype (%d) is neither BP_F32 (1) nor BP_F64 (2)",
               (int)dtype);
    BP_REQUIRE(scale == BP_SCALE_NONE || scale == BP_SCALE_UNIT, BP_ERR_ARG,
               "scale (%d) is neither BP_SCALE_NONE (0) nor BP_SCALE_UNIT (1)", (int)scale);
    BP_REQUIRE(!alloc || (alloc->alloc && alloc->free), BP_ERR_ARG, "alloc has a NULL alloc or free");
    const bp_allocator a = alloc ? *alloc : bp__default_allocator;
    const size_t esize = dtype == BP_F32 ? sizeof(float) : sizeof(double);

    idx_file img = {0}, lab = {0};
    void *X = NULL;
    int32_t *labels = NULL;
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
    if (nf > (uint64_t)BP_IO_MAX_VALUES || n * nf > (uint64_t)BP_IO_MAX_VALUES) {
        st = bp__fail(BP_ERR_OVERFLOW, fn,
                      "%s: %" PRIu64 " samples of %" PRIu64 " values exceed BP_IO_MAX_VALUES (%" PRId64 ")",
                      images_path, n, nf, (int64_t)BP_IO_MAX_VALUES);
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

    X = a.alloc(a.ctx, (size_t)(n * nf) * esize);
    if (labels_path)
        labels = a.alloc(a.ctx, (size_t)n * sizeof *labels);
    if (!X || (labels_path && !labels)) {
        st = bp__fail(BP_ERR_NOMEM, fn, "%s: allocating %" PRIu64 " samples of %" PRIu64 " values", images_path, n,
                      nf);
        goto done;
    }
    st = read_images(&img, n * nf, dtype, scale, X);
    if (st == BP_OK && labels_path)
        st = read_labels(&lab, n, labels, &max_label);

done:
    if (img.gz)
        gzclose(img.gz);
    if (lab.gz)
        gzclose(lab.gz);
    if (st != BP_OK) {
        if (X)
            a.free(a.ctx, X);
        if (labels)
            a.free(a.ctx, labels);
        return st;
    }
    out->dtype = dtype;
    out->n = (bp_int)n;
    out->n_features = (bp_int)nf;
    out->X = X;
    out->labels = labels;
    out->n_classes = labels ? max_label + 1 : 0;
    out->alloc = a;
    return BP_OK;
}
