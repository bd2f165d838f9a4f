/* SPDX-License-Identifier: MIT */
/* fuzz_idx.c: libFuzzer target for bp_idx_read and bp_idx_read_limit (an image and a label file, plain or gzip). */
#include <string.h>

#include "fuzz_util.h"

/* The input: byte 0 holds the flags below, bytes 1-2 a split point (little-endian, taken modulo
 * the length of the rest + 1); the rest up to the split is the image file, after it the label
 * file. A file whose flag says gzip is written compressed, so the reader sees the same content
 * through zlib. */
enum {
    GZ_IMAGES = 1 << 0,
    GZ_LABELS = 1 << 1,
    NO_LABELS = 1 << 2,  /* labels_path NULL */
    AS_F64 = 1 << 3,
    SCALE_UNIT = 1 << 4,
    USE_LIMIT = 1 << 5   /* bp_idx_read_limit, with max_values chosen by bits 6-7 */
};
/* Around the seeds' 3 images of 2 x 3 = 18 values. */
static const int64_t limits[4] = {1, 6, 18, 64};

static const unsigned idx_errors = FUZZ_STATUS(BP_ERR_FORMAT) | FUZZ_STATUS(BP_ERR_UNSUPPORTED) |
                                   FUZZ_STATUS(BP_ERR_OVERFLOW) | FUZZ_STATUS(BP_ERR_NOMEM);

/* One file's bytes as the fuzzer gave them. `known`: the reader sees exactly these bytes, which
 * holds when we compressed them, or when they do not start with gzip's magic 1f 8b (zlib would
 * decompress them: their content is then some other bytes). */
typedef struct part {
    const uint8_t *p;
    size_t len;
    int gzip, known;
} part;

static part make_part(const uint8_t *p, size_t len, int gzip)
{
    const int gzip_magic = len >= 2 && p[0] == 0x1f && p[1] == 0x8b;
    return (part){p, len, gzip, gzip || !gzip_magic};
}

static uint64_t be32(const uint8_t *p)
{
    return (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3];
}

/* A file the reader accepted has the header it documents (magic 00 00 08 `ndims`, nonzero
 * dimensions) and exactly the data the header announces; returns the header's length. */
static size_t check_header(const part *f, int ndims_lo, int ndims_hi, uint64_t n, uint64_t values)
{
    FUZZ_CHECK(f->len >= 4 && f->p[0] == 0 && f->p[1] == 0 && f->p[2] == 0x08 && f->p[3] >= ndims_lo &&
                   f->p[3] <= ndims_hi,
               "accepted a file without an IDX magic of %d to %d dimensions", ndims_lo, ndims_hi);
    const size_t hlen = 4 + 4 * (size_t)f->p[3];
    FUZZ_CHECK(f->len >= hlen, "accepted a file of %zu bytes, shorter than its header", f->len);
    uint64_t product = 1;
    for (size_t k = 1; k < f->p[3]; k++)
        product *= be32(f->p + 4 + 4 * k);
    FUZZ_CHECK(be32(f->p + 4) == n && product * n == values, "the header says %llu samples of %llu values",
               (unsigned long long)be32(f->p + 4), (unsigned long long)product);
    FUZZ_CHECK(f->len == hlen + values, "accepted a file of %zu bytes whose header announces %zu", f->len,
               hlen + (size_t)values);
    return hlen;
}

/* X holds n x n_features bytes converted, in [0, 1] or [0, 255]; when the content is known,
 * the sizes of its header and exactly its bytes. */
static void check_images(const bp_dataset *d, const part *img, bp_scale scale, int64_t max_values)
{
    const size_t count = (size_t)d->n * (size_t)d->n_features;
    FUZZ_CHECK((int64_t)count <= max_values, "%zu values exceed max_values %lld", count, (long long)max_values);
    const size_t hlen = img->known ? check_header(img, 2, 3, (uint64_t)d->n, count) : 0;
    const double top = scale == BP_SCALE_UNIT ? 1 : 255;
    for (size_t i = 0; i < count; i++) {
        const double x = fuzz_x(d, i);
        FUZZ_CHECK(x >= 0 && x <= top, "X[%zu] = %g is not in [0, %g]", i, x, top);
        if (img->known) {
            const double v = scale == BP_SCALE_UNIT ? img->p[hlen + i] / 255.0 : img->p[hlen + i];
            FUZZ_CHECK(x == (d->dtype == BP_F32 ? (double)(float)v : v), "X[%zu] = %g, but the file's byte is %u",
                       i, x, img->p[hlen + i]);
        }
    }
}

/* Labels are bytes; when the content is known, the label file's. */
static void check_labels(const bp_dataset *d, const part *lab)
{
    FUZZ_CHECK(d->n_classes <= 256, "n_classes %d from byte labels", (int)d->n_classes);
    if (!lab->known)
        return;
    const size_t hlen = check_header(lab, 1, 1, (uint64_t)d->n, (uint64_t)d->n);
    for (size_t i = 0; i < (size_t)d->n; i++)
        FUZZ_CHECK(d->labels[i] == lab->p[hlen + i], "labels[%zu] = %d, but the file's byte is %u", i,
                   (int)d->labels[i], lab->p[hlen + i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    fuzz_begin();
    const unsigned flags = data[0];
    const size_t rest = size - 3, split = ((size_t)data[1] | (size_t)data[2] << 8) % (rest + 1);
    const part img = make_part(data + 3, split, flags & GZ_IMAGES);
    const part lab = make_part(data + 3 + split, rest - split, flags & GZ_LABELS);
    const char *images_path = fuzz_file(0, img.p, img.len, img.gzip);
    const char *labels_path = flags & NO_LABELS ? NULL : fuzz_file(1, lab.p, lab.len, lab.gzip);
    const bp_dtype dtype = flags & AS_F64 ? BP_F64 : BP_F32;
    const bp_scale scale = flags & SCALE_UNIT ? BP_SCALE_UNIT : BP_SCALE_NONE;
    const int64_t max_values = flags & USE_LIMIT ? limits[flags >> 6] : BP_IO_MAX_VALUES;

    bp_dataset d;
    fuzz_sentinel(&d, sizeof d);
    const bp_status st =
        flags & USE_LIMIT ? bp_idx_read_limit(images_path, labels_path, dtype, scale, max_values, &fuzz_alloc, &d)
                          : bp_idx_read(images_path, labels_path, dtype, scale, &fuzz_alloc, &d);
    if (st != BP_OK) {
        fuzz_check_failure(flags & USE_LIMIT ? "bp_idx_read_limit" : "bp_idx_read", st, idx_errors, &d, sizeof d);
        return 0;
    }
    fuzz_check_dataset(&d, dtype, labels_path != NULL);
    check_images(&d, &img, scale, max_values);
    if (labels_path)
        check_labels(&d, &lab);
    fuzz_free_dataset(&d);
    return 0;
}
