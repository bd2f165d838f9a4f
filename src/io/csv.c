/* SPDX-License-Identifier: MIT */
/* csv.c: the numeric CSV reader: one streaming pass, every field validated, into a bp_dataset. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backprop/io.h"
#include "core/internal.h"
#include "net/net_internal.h"

static const char fn[] = "bp_csv_read";

/* Bytes per fread; the FILE itself is unbuffered, so this is the only buffer. */
#define CSV_CHUNK 65536
/* The longest field accepted, in bytes. A number needs far less: DBL_MAX
 * printed with "%f" takes 316 characters. */
#define CSV_FIELD_MAX 1023
/* The longest line accepted, in bytes: INT_MAX fields would take far more, but no CSV a person
 * trains on has a line of 1 GiB, and a reader fed an endless line (a device, a pipe that never
 * sends a newline) must stop. */
#define CSV_LINE_MAX ((uint64_t)1 << 30)
/* Labels are at most this, so that n_classes = 1 + max label fits a bp_int. */
#define CSV_LABEL_MAX (INT32_MAX - 1)

/* What is wrong with a field; F_OK first. A line with any F_EMPTY, F_LONG or F_NOTNUM
 * field is a header under detection. */
typedef enum field_kind {
    F_OK = 0,
    F_EMPTY,
    F_LONG,
    F_NOTNUM,
    F_NONFINITE,
    F_FLOAT_RANGE,
    L_NOTINT,
    L_NEGATIVE,
    L_TOOBIG
} field_kind;

typedef struct csv {
    const char *path;
    FILE *f;
    bp_allocator a;
    bp_dtype dtype;
    size_t esize;
    long label_col;        /* -1: none */

    /* Input. */
    unsigned char *chunk;
    size_t pos, len;
    int eof;
    int io_err;            /* errno of a failed read; 0 none */
    uint64_t line;         /* physical line being read, from 1 */

    /* The field being read. */
    char fb[CSV_FIELD_MAX + 1];
    size_t fl;
    int flong;
    int line_long;         /* the line passed CSV_LINE_MAX bytes: reading stopped */

    /* The line being read: its values by feature index, its label, its field
     * count and its first bad field. */
    double *row;
    size_t row_cap;
    int32_t row_label;
    size_t nf;
    size_t bad_field;      /* 1-based; 0: none */
    field_kind bad_kind;
    int header_like;       /* some field is empty, too long or not a number */
    char bad_text[48];
    bp_status row_st;      /* BP_OK, or a size / memory failure while growing row */

    /* Every line has `expect` fields (0 until the first non-blank line, `first_line`). */
    size_t expect;
    uint64_t first_line;

    /* The data set, grown geometrically. */
    void *X;
    int32_t *labels;
    size_t n, cap, nfeat;
    int32_t max_label;
} csv;

static int csv_fill(csv *c)
{
    if (c->eof)
        return 0;
    errno = 0;
    c->len = fread(c->chunk, 1, CSV_CHUNK, c->f);
    c->pos = 0;
    if (c->len < CSV_CHUNK) {
        c->eof = 1;
        if (ferror(c->f))
            c->io_err = errno ? errno : EIO;
    }
    return c->len > 0;
}

static inline int csv_getc(csv *c)
{
    if (c->pos == c->len && !csv_fill(c))
        return EOF;
    return c->chunk[c->pos++];
}

static inline int csv_peek(csv *c)
{
    if (c->pos == c->len && !csv_fill(c))
        return EOF;
    return c->chunk[c->pos];
}

static void *grow(const bp_allocator *a, void *old, size_t old_bytes, size_t new_bytes)
{
    void *p = a->alloc(a->ctx, new_bytes);
    if (p && old_bytes)
        memcpy(p, old, old_bytes);
    if (p && old)
        a->free(a->ctx, old);
    return p;
}

static int is_blank_char(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Classifies the trimmed text [s, s + len) as a number; *v receives it. */
static field_kind parse_number(char *s, size_t len, double *v)
{
    if (len == 0)
        return F_EMPTY;
    char saved = s[len];
    s[len] = '\0';
    char *end = NULL;
    *v = strtod(s, &end);
    s[len] = saved;
    if (end != s + len)
        return F_NOTNUM;
    if (!isfinite(*v))
        return F_NONFINITE;
    return F_OK;
}

/* The field in fb is complete: classify it, store it, remember the line's first problem. */
static void end_field(csv *c)
{
    const size_t k = c->nf++;
    size_t b = 0, e = c->fl;
    while (b < e && is_blank_char(c->fb[b]))
        b++;
    while (e > b && is_blank_char(c->fb[e - 1]))
        e--;

    double v = 0;
    field_kind kind = c->flong ? F_LONG : parse_number(c->fb + b, e - b, &v);
    const int is_label = c->label_col >= 0 && k == (size_t)c->label_col;
    if (kind == F_OK && is_label) {
        if (v < 0)
            kind = L_NEGATIVE;
        else if (v > (double)CSV_LABEL_MAX)
            kind = L_TOOBIG;
        else if (v != floor(v))
            kind = L_NOTINT;
        else
            c->row_label = (int32_t)v;
    } else if (kind == F_OK && c->dtype == BP_F32 && fabs(v) > FLT_MAX) {
        kind = F_FLOAT_RANGE;
    }
    if (!is_label && c->row_st == BP_OK) {
        const size_t fi = c->label_col >= 0 && k > (size_t)c->label_col ? k - 1 : k;
        if (c->expect == 0 && fi >= c->row_cap) {
            /* Only the first line grows the row; later lines have its width. */
            if (k >= (size_t)INT_MAX) {
                c->row_st = bp__fail(BP_ERR_OVERFLOW, fn, "%s:%" PRIu64 ": more than %d fields", c->path, c->line,
                                     INT_MAX);
            } else {
                size_t cap = c->row_cap ? 2 * c->row_cap : 64;
                if (cap > (size_t)INT_MAX)
                    cap = (size_t)INT_MAX;
                double *row = grow(&c->a, c->row, c->row_cap * sizeof *row, cap * sizeof *row);
                if (!row)
                    c->row_st = bp__fail(BP_ERR_NOMEM, fn, "%s:%" PRIu64 ": allocating a row of %zu fields", c->path,
                                         c->line, cap);
                else {
                    c->row = row;
                    c->row_cap = cap;
                }
            }
        }
        if (c->row_st == BP_OK && fi < c->row_cap)
            c->row[fi] = v;
    }
    if (kind == F_EMPTY || kind == F_LONG || kind == F_NOTNUM)
        c->header_like = 1;
    if (kind != F_OK && c->bad_field == 0) {
        c->bad_field = k + 1;
        c->bad_kind = kind;
        /* A printable excerpt of the field for the message. */
        const size_t shown = e - b < 40 ? e - b : 40;
        for (size_t i = 0; i < shown; i++) {
            const unsigned char ch = (unsigned char)c->fb[b + i];
            c->bad_text[i] = ch >= 0x20 && ch < 0x7F ? (char)ch : '?';
        }
        strcpy(c->bad_text + shown, e - b > shown ? "..." : "");
    }
    c->fl = 0;
    c->flong = 0;
}

/* Reads one physical line field by field. Returns 0 at the end of the file
 * (nothing left), 1 when a line was read. */
static int read_line(csv *c)
{
    c->nf = 0;
    c->bad_field = 0;
    c->header_like = 0;
    c->fl = 0;
    c->flong = 0;
    c->row_label = 0;
    int any = 0;
    for (uint64_t bytes = 0;; bytes++) {
        if (bytes > CSV_LINE_MAX) {
            c->line_long = 1;
            return 1;
        }
        const int ch = csv_getc(c);
        if (ch == EOF) {
            if (!any)
                return 0;
            break;
        }
        any = 1;
        if (ch == '\n')
            break;
        if (ch == '\r') {
            const int next = csv_peek(c);
            if (next == '\n') {
                c->pos++;
                break;
            }
            if (next == EOF)
                break;
        }
        if (ch == ',') {
            end_field(c);
            continue;
        }
        /* Blanks around a number are trimmed anyway: leading ones are not kept, and trailing
         * ones past the buffer are dropped, so only a field with more than CSV_FIELD_MAX
         * characters from its first to its last non-blank one is too long (a line of 1100
         * spaces is blank, as io.h says). */
        if (c->fl == 0 && is_blank_char((char)ch))
            continue;
        if (c->fl < CSV_FIELD_MAX)
            c->fb[c->fl++] = (char)ch;
        else if (!is_blank_char((char)ch))
            c->flong = 1;
    }
    end_field(c);
    return 1;
}

static bp_status field_error(const csv *c)
{
    const int is_label = c->label_col >= 0 && c->bad_field - 1 == (size_t)c->label_col;
    const char *col = is_label ? " (the label column)" : "";
    const char *t = c->bad_text;
    const char *p = c->path;
    const uint64_t l = c->line;
    const size_t k = c->bad_field;
    switch (c->bad_kind) {
    case F_EMPTY:
        return bp__fail(BP_ERR_FORMAT, fn, "%s:%" PRIu64 ": field %zu%s: empty", p, l, k, col);
    case F_LONG:
        return bp__fail(BP_ERR_FORMAT, fn, "%s:%" PRIu64 ": field %zu%s: longer than %d characters", p, l, k, col,
                        CSV_FIELD_MAX);
    case F_NOTNUM:
        return bp__fail(BP_ERR_FORMAT, fn, "%s:%" PRIu64 ": field %zu%s: \"%s\" is not a number", p, l, k, col, t);
    case F_NONFINITE:
        return bp__fail(BP_ERR_FORMAT, fn, "%s:%" PRIu64 ": field %zu%s: \"%s\" is not a finite number", p, l, k,
                        col, t);
    case F_FLOAT_RANGE:
        return bp__fail(BP_ERR_FORMAT, fn, "%s:%" PRIu64 ": field %zu: \"%s\" is out of the range of float", p, l,
                        k, t);
    case L_NOTINT:
        return bp__fail(BP_ERR_FORMAT, fn, "%s:%" PRIu64 ": field %zu%s: label \"%s\" is not an integer", p, l, k,
                        col, t);
    case L_NEGATIVE:
        return bp__fail(BP_ERR_FORMAT, fn, "%s:%" PRIu64 ": field %zu%s: label \"%s\" is negative", p, l, k, col, t);
    case L_TOOBIG:
        return bp__fail(BP_ERR_FORMAT, fn, "%s:%" PRIu64 ": field %zu%s: label \"%s\" is larger than %d", p, l, k,
                        col, t, (int)CSV_LABEL_MAX);
    case F_OK:
        break;
    }
    return bp__fail(BP_ERR_FORMAT, fn, "%s:%" PRIu64 ": field %zu: invalid", p, l, k);
}

/* Room for one more sample, within the limits. */
static bp_status reserve(csv *c)
{
    if (c->n < c->cap)
        return BP_OK;
    if (c->nfeat > SIZE_MAX / c->esize)
        return bp__fail(BP_ERR_OVERFLOW, fn, "%s:%" PRIu64 ": %zu features overflow size_t", c->path, c->line,
                        c->nfeat);
    size_t max_rows = (size_t)BP_IO_MAX_VALUES / c->nfeat;
    if (max_rows > (size_t)BP_IO_MAX_SAMPLES)
        max_rows = (size_t)BP_IO_MAX_SAMPLES;
    if (max_rows > SIZE_MAX / (c->nfeat * c->esize))
        max_rows = SIZE_MAX / (c->nfeat * c->esize);
    if (c->n >= max_rows)
        return bp__fail(BP_ERR_OVERFLOW, fn,
                        "%s:%" PRIu64 ": more than %zu samples of %zu features exceed BP_IO_MAX_SAMPLES (%" PRId64
                        ") or BP_IO_MAX_VALUES (%" PRId64 ")",
                        c->path, c->line, max_rows, c->nfeat, (int64_t)BP_IO_MAX_SAMPLES, (int64_t)BP_IO_MAX_VALUES);
    size_t cap = c->cap ? 2 * c->cap : (c->nfeat < 4096 ? 4096 / c->nfeat : 1);
    if (cap > max_rows)
        cap = max_rows;
    const size_t row_bytes = c->nfeat * c->esize;
    void *X = grow(&c->a, c->X, c->n * row_bytes, cap * row_bytes);
    if (!X)
        return bp__fail(BP_ERR_NOMEM, fn, "%s:%" PRIu64 ": allocating %zu samples of %zu features", c->path, c->line,
                        cap, c->nfeat);
    c->X = X;
    if (c->label_col >= 0) {
        int32_t *labels = grow(&c->a, c->labels, c->n * sizeof *labels, cap * sizeof *labels);
        if (!labels)
            return bp__fail(BP_ERR_NOMEM, fn, "%s:%" PRIu64 ": allocating %zu labels", c->path, c->line, cap);
        c->labels = labels;
    }
    c->cap = cap;
    return BP_OK;
}

static bp_status append_row(csv *c)
{
    const bp_status st = reserve(c);
    if (st != BP_OK)
        return st;
    if (c->dtype == BP_F32) {
        float *x = (float *)c->X + c->n * c->nfeat;
        for (size_t j = 0; j < c->nfeat; j++)
            x[j] = (float)c->row[j];
    } else {
        memcpy((double *)c->X + c->n * c->nfeat, c->row, c->nfeat * sizeof(double));
    }
    if (c->labels) {
        c->labels[c->n] = c->row_label;
        if (c->row_label > c->max_label)
            c->max_label = c->row_label;
    }
    c->n++;
    return BP_OK;
}

/* Reads every line; on success c->X / c->labels hold c->n samples. */
static bp_status read_all(csv *c, int header)
{
    /* A UTF-8 byte order mark, as spreadsheet programs write it, is not data. */
    if (csv_fill(c) && c->len >= 3 && c->chunk[0] == 0xEF && c->chunk[1] == 0xBB && c->chunk[2] == 0xBF)
        c->pos = 3;
    int header_seen = 0;
    for (c->line = 1;; c->line++) {
        const int got = read_line(c);
        if (c->io_err) {
            char eb[128];
            return bp__fail(BP_ERR_IO, fn, "%s:%" PRIu64 ": read error: %s", c->path, c->line,
                            bp__sys_error(c->io_err, eb, sizeof eb));
        }
        if (c->row_st != BP_OK)
            return c->row_st;
        if (c->line_long)
            return bp__fail(BP_ERR_FORMAT, fn, "%s:%" PRIu64 ": the line is longer than %" PRIu64 " bytes", c->path,
                            c->line, CSV_LINE_MAX);
        if (!got)
            break;
        if (c->nf == 1 && c->bad_field == 1 && c->bad_kind == F_EMPTY)
            continue; /* blank line */
        if (c->expect == 0) {
            if (c->label_col >= 0 && (size_t)c->label_col >= c->nf)
                return bp__fail(BP_ERR_FORMAT, fn,
                                "%s:%" PRIu64 ": field %ld: label column %ld is out of range: the line has %zu "
                                "field%s",
                                c->path, c->line, c->label_col + 1, c->label_col, c->nf, c->nf == 1 ? "" : "s");
            if (c->label_col >= 0 && c->nf == 1)
                return bp__fail(BP_ERR_FORMAT, fn,
                                "%s:%" PRIu64 ": field 1: the only field is the label column: no features", c->path,
                                c->line);
            c->expect = c->nf;
            c->first_line = c->line;
            c->nfeat = c->nf - (c->label_col >= 0);
            if (header == 1 || (header == -1 && c->header_like)) {
                header_seen = 1;
                continue;
            }
        } else if (c->nf != c->expect) {
            if (c->nf > c->expect)
                return bp__fail(BP_ERR_FORMAT, fn,
                                "%s:%" PRIu64 ": field %zu: unexpected: the line has %zu fields, line %" PRIu64
                                " has %zu",
                                c->path, c->line, c->expect + 1, c->nf, c->first_line, c->expect);
            return bp__fail(BP_ERR_FORMAT, fn,
                            "%s:%" PRIu64 ": field %zu: missing: the line has %zu field%s, line %" PRIu64 " has %zu",
                            c->path, c->line, c->nf + 1, c->nf, c->nf == 1 ? "" : "s", c->first_line, c->expect);
        }
        if (c->bad_field)
            return field_error(c);
        const bp_status st = append_row(c);
        if (st != BP_OK)
            return st;
    }
    if (c->n == 0)
        return bp__fail(BP_ERR_FORMAT, fn, "%s: no data lines%s", c->path,
                        header_seen ? " after the header" : ": the file is empty or blank");
    return BP_OK;
}

bp_status bp_csv_read(const char *path, bp_dtype dtype, int header, bp_int label_col, const bp_allocator *alloc,
                      bp_dataset *out)
{
    BP_CHECK_PTR(path);
    BP_CHECK_PTR(out);
    BP_REQUIRE(dtype == BP_F32 || dtype == BP_F64, BP_ERR_ARG, "dtype (%d) is neither BP_F32 (1) nor BP_F64 (2)",
               (int)dtype);
    BP_REQUIRE(header >= -1 && header <= 1, BP_ERR_ARG, "header (%d) is not 1, 0 or -1", header);
    BP_REQUIRE(label_col >= -1, BP_ERR_ARG, "label_col (%d) < -1", (int)label_col);
    BP_REQUIRE(!alloc || (alloc->alloc && alloc->free), BP_ERR_ARG, "alloc has a NULL alloc or free");

    /* Large (the field buffer): on the heap, through the allocator. */
    const bp_allocator a = alloc ? *alloc : bp__default_allocator;
    csv *c = a.alloc(a.ctx, sizeof *c);
    if (!c)
        return bp__fail(BP_ERR_NOMEM, fn, "%s: allocating the reader", path);
    memset(c, 0, sizeof *c);
    c->path = path;
    c->a = a;
    c->dtype = dtype;
    c->esize = dtype == BP_F32 ? sizeof(float) : sizeof(double);
    c->label_col = label_col;
    c->row_st = BP_OK;

    bp_status st;
    c->chunk = a.alloc(a.ctx, CSV_CHUNK);
    if (!c->chunk) {
        st = bp__fail(BP_ERR_NOMEM, fn, "%s: allocating a %d-byte read buffer", path, CSV_CHUNK);
        goto done;
    }
    errno = 0;
    c->f = fopen(path, "rb");
    if (!c->f) {
        char eb[128];
        st = bp__fail(BP_ERR_IO, fn, "%s: cannot open: %s", path, bp__sys_error(errno, eb, sizeof eb));
        goto done;
    }
    struct stat sb;
    if (fstat(fileno(c->f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = bp__fail(BP_ERR_IO, fn, "%s: not a regular file (a device, pipe or directory): the reader needs a "
                                     "file that ends", path);
        goto done;
    }
    setvbuf(c->f, NULL, _IONBF, 0); /* the chunk is the buffer */
    st = read_all(c, header);
    if (st == BP_OK && c->cap > c->n) {
        /* Give back the unused growth room; if that copy cannot be made, the larger block serves as well. */
        void *X = a.alloc(a.ctx, c->n * c->nfeat * c->esize);
        int32_t *labels = c->labels ? a.alloc(a.ctx, c->n * sizeof *labels) : NULL;
        if (X && (labels || !c->labels)) {
            memcpy(X, c->X, c->n * c->nfeat * c->esize);
            a.free(a.ctx, c->X);
            c->X = X;
            if (labels) {
                memcpy(labels, c->labels, c->n * sizeof *labels);
                a.free(a.ctx, c->labels);
                c->labels = labels;
            }
        } else {
            if (X)
                a.free(a.ctx, X);
            if (labels)
                a.free(a.ctx, labels);
        }
    }

done:
    if (c->f)
        fclose(c->f);
    if (c->chunk)
        a.free(a.ctx, c->chunk);
    if (c->row)
        a.free(a.ctx, c->row);
    if (st == BP_OK) {
        out->dtype = dtype;
        out->n = (bp_int)c->n;
        out->n_features = (bp_int)c->nfeat;
        out->X = c->X;
        out->labels = c->labels;
        out->n_classes = c->labels ? c->max_label + 1 : 0;
        out->alloc = a;
    } else {
        if (c->X)
            a.free(a.ctx, c->X);
        if (c->labels)
            a.free(a.ctx, c->labels);
    }
    a.free(a.ctx, c);
    return st;
}
