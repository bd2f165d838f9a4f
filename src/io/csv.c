/* SPDX-License-Identifier: MIT */
/* csv.c: the numeric CSV reader: one streaming pass, every field validated, into a bp_dataset. One
 * parser serves both entry points: a column is a feature unless it is special, i.e. the label
 * column (bp_csv_read) or a target column (bp_csv_read_targets). */
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

/* A column that is not a feature: the label (role ROLE_LABEL) or target j (role j >= 0). The
 * reader keeps them sorted by column, so a line's fields, which come in order, meet them in turn. */
enum { ROLE_FEATURE = -2, ROLE_LABEL = -1 };
typedef struct special_col {
    size_t col;
    long role;
} special_col;

typedef struct csv {
    const char *fn;        /* the public function: every message starts with it */
    const char *path;
    FILE *f;
    bp_allocator a;
    bp_dtype dtype;
    size_t esize;
    size_t n_special;      /* the label and target columns, in special[] */
    size_t n_special_seen; /* of them, those met so far in the line being read */
    size_t ntarg;          /* target columns; n_special - ntarg is 1 with a label column, else 0 */

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
    double *row_targets;   /* ntarg values: after special[] in the same block */
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
    void *targets;         /* n x ntarg values of the dtype; NULL without target columns */
    size_t n, cap, nfeat;
    int32_t max_label;

    special_col special[]; /* n_special entries, then ntarg doubles (row_targets) */
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

/* The role of field k of the line being read; fields come in order, specials sorted by column. */
static long role_of(csv *c, size_t k)
{
    if (c->n_special_seen < c->n_special && c->special[c->n_special_seen].col == k)
        return c->special[c->n_special_seen++].role;
    return ROLE_FEATURE;
}

/* Feature fi (field k) of the line; the first line grows the row, later lines have its width. */
static void store_feature(csv *c, size_t k, size_t fi, double v)
{
    if (c->row_st != BP_OK)
        return;
    if (c->expect == 0 && fi >= c->row_cap) {
        if (k >= (size_t)INT_MAX) {
            c->row_st = bp__fail(BP_ERR_OVERFLOW, c->fn, "%s:%" PRIu64 ": more than %d fields", c->path, c->line,
                                 INT_MAX);
            return;
        }
        size_t cap = c->row_cap ? 2 * c->row_cap : 64;
        if (cap > (size_t)INT_MAX)
            cap = (size_t)INT_MAX;
        double *row = grow(&c->a, c->row, c->row_cap * sizeof *row, cap * sizeof *row);
        if (!row) {
            c->row_st = bp__fail(BP_ERR_NOMEM, c->fn, "%s:%" PRIu64 ": allocating a row of %zu fields", c->path,
                                 c->line, cap);
            return;
        }
        c->row = row;
        c->row_cap = cap;
    }
    if (fi < c->row_cap)
        c->row[fi] = v;
}

/* A label's problem, if any; else it is stored. */
static field_kind check_label(csv *c, double v)
{
    if (v < 0)
        return L_NEGATIVE;
    if (v > (double)CSV_LABEL_MAX)
        return L_TOOBIG;
    if (v != floor(v))
        return L_NOTINT;
    c->row_label = (int32_t)v;
    return F_OK;
}

/* Remembers the line's first problem, with a printable excerpt of the field for the message. */
static void note_bad_field(csv *c, size_t k, field_kind kind, size_t b, size_t e)
{
    c->bad_field = k + 1;
    c->bad_kind = kind;
    const size_t shown = e - b < 40 ? e - b : 40;
    for (size_t i = 0; i < shown; i++) {
        const unsigned char ch = (unsigned char)c->fb[b + i];
        c->bad_text[i] = ch >= 0x20 && ch < 0x7F ? (char)ch : '?';
    }
    strcpy(c->bad_text + shown, e - b > shown ? "..." : "");
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
    const long role = role_of(c, k);
    if (kind == F_OK && role == ROLE_LABEL)
        kind = check_label(c, v);
    else if (kind == F_OK && c->dtype == BP_F32 && fabs(v) > FLT_MAX)
        kind = F_FLOAT_RANGE;
    if (role >= 0)
        c->row_targets[role] = v;
    else if (role == ROLE_FEATURE)
        store_feature(c, k, k - c->n_special_seen, v);
    if (kind == F_EMPTY || kind == F_LONG || kind == F_NOTNUM)
        c->header_like = 1;
    if (kind != F_OK && c->bad_field == 0)
        note_bad_field(c, k, kind, b, e);
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
    c->n_special_seen = 0;
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

/* " (the label column)", " (a target column)" or "" for column k. */
static const char *column_note(const csv *c, size_t k)
{
    for (size_t i = 0; i < c->n_special; i++)
        if (c->special[i].col == k)
            return c->special[i].role == ROLE_LABEL ? " (the label column)" : " (a target column)";
    return "";
}

static bp_status field_error(const csv *c)
{
    const char *const fn = c->fn;
    const char *col = column_note(c, c->bad_field - 1);
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

/* Room for one more sample, within the limits (a sample's values: its features and targets). */
static bp_status reserve(csv *c)
{
    if (c->n < c->cap)
        return BP_OK;
    const char *const fn = c->fn;
    const size_t per_row = c->nfeat + c->ntarg; /* both at most INT_MAX */
    if (per_row > SIZE_MAX / c->esize)
        return bp__fail(BP_ERR_OVERFLOW, fn, "%s:%" PRIu64 ": %zu values per sample overflow size_t", c->path,
                        c->line, per_row);
    size_t max_rows = (size_t)BP_IO_MAX_VALUES / per_row;
    if (max_rows > (size_t)BP_IO_MAX_SAMPLES)
        max_rows = (size_t)BP_IO_MAX_SAMPLES;
    if (max_rows > SIZE_MAX / (per_row * c->esize))
        max_rows = SIZE_MAX / (per_row * c->esize);
    if (c->n >= max_rows)
        return bp__fail(BP_ERR_OVERFLOW, fn,
                        "%s:%" PRIu64 ": more than %zu samples of %zu values exceed BP_IO_MAX_SAMPLES (%" PRId64
                        ") or BP_IO_MAX_VALUES (%" PRId64 ")",
                        c->path, c->line, max_rows, per_row, (int64_t)BP_IO_MAX_SAMPLES, (int64_t)BP_IO_MAX_VALUES);
    size_t cap = c->cap ? 2 * c->cap : (per_row < 4096 ? 4096 / per_row : 1);
    if (cap > max_rows)
        cap = max_rows;
    const size_t row_bytes = c->nfeat * c->esize;
    void *X = grow(&c->a, c->X, c->n * row_bytes, cap * row_bytes);
    if (!X)
        return bp__fail(BP_ERR_NOMEM, fn, "%s:%" PRIu64 ": allocating %zu samples of %zu features", c->path, c->line,
                        cap, c->nfeat);
    c->X = X;
    if (c->n_special > c->ntarg) { /* a label column */
        int32_t *labels = grow(&c->a, c->labels, c->n * sizeof *labels, cap * sizeof *labels);
        if (!labels)
            return bp__fail(BP_ERR_NOMEM, fn, "%s:%" PRIu64 ": allocating %zu labels", c->path, c->line, cap);
        c->labels = labels;
    }
    if (c->ntarg) {
        const size_t t_bytes = c->ntarg * c->esize;
        void *targets = grow(&c->a, c->targets, c->n * t_bytes, cap * t_bytes);
        if (!targets)
            return bp__fail(BP_ERR_NOMEM, fn, "%s:%" PRIu64 ": allocating %zu samples of %zu targets", c->path,
                            c->line, cap, c->ntarg);
        c->targets = targets;
    }
    c->cap = cap;
    return BP_OK;
}

/* count values of the line (doubles) into row r of a sample-major array of the dtype. */
static void put_values(const csv *c, void *dst, size_t r, const double *v, size_t count)
{
    if (c->dtype == BP_F32) {
        float *x = (float *)dst + r * count;
        for (size_t j = 0; j < count; j++)
            x[j] = (float)v[j];
    } else {
        memcpy((double *)dst + r * count, v, count * sizeof(double));
    }
}

static bp_status append_row(csv *c)
{
    const bp_status st = reserve(c);
    if (st != BP_OK)
        return st;
    put_values(c, c->X, c->n, c->row, c->nfeat);
    if (c->ntarg)
        put_values(c, c->targets, c->n, c->row_targets, c->ntarg);
    if (c->labels) {
        c->labels[c->n] = c->row_label;
        if (c->row_label > c->max_label)
            c->max_label = c->row_label;
    }
    c->n++;
    return BP_OK;
}

/* The first non-blank line fixes the columns: every special column must exist and at least one
 * feature column remain. */
static bp_status check_columns(const csv *c)
{
    const char *const fn = c->fn;
    const int label_only = c->ntarg == 0;
    if (c->n_special && c->special[c->n_special - 1].col >= c->nf) {
        const special_col *s = &c->special[c->n_special - 1];
        if (s->role == ROLE_LABEL)
            return bp__fail(BP_ERR_FORMAT, fn,
                            "%s:%" PRIu64 ": field %zu: label column %zu is out of range: the line has %zu field%s",
                            c->path, c->line, s->col + 1, s->col, c->nf, c->nf == 1 ? "" : "s");
        return bp__fail(BP_ERR_FORMAT, fn,
                        "%s:%" PRIu64 ": field %zu: target column %zu (target %ld) is out of range: the line has %zu "
                        "field%s",
                        c->path, c->line, s->col + 1, s->col, s->role, c->nf, c->nf == 1 ? "" : "s");
    }
    if (c->n_special == c->nf && label_only)
        return bp__fail(BP_ERR_FORMAT, fn, "%s:%" PRIu64 ": field 1: the only field is the label column: no features",
                        c->path, c->line);
    if (c->n_special == c->nf)
        return bp__fail(BP_ERR_FORMAT, fn,
                        "%s:%" PRIu64 ": field 1: each of the %zu fields is a target column: no feature column "
                        "is left",
                        c->path, c->line, c->nf);
    return BP_OK;
}

/* A line whose field count differs from the first line's. */
static bp_status count_error(const csv *c)
{
    const char *const fn = c->fn;
    if (c->nf > c->expect)
        return bp__fail(BP_ERR_FORMAT, fn,
                        "%s:%" PRIu64 ": field %zu: unexpected: the line has %zu fields, line %" PRIu64 " has %zu",
                        c->path, c->line, c->expect + 1, c->nf, c->first_line, c->expect);
    return bp__fail(BP_ERR_FORMAT, fn,
                    "%s:%" PRIu64 ": field %zu: missing: the line has %zu field%s, line %" PRIu64 " has %zu", c->path,
                    c->line, c->nf + 1, c->nf, c->nf == 1 ? "" : "s", c->first_line, c->expect);
}

/* A line that stopped the reading: an I/O error, a size or memory failure, an endless line. */
static bp_status line_failure(const csv *c)
{
    if (c->io_err) {
        char eb[128];
        return bp__fail(BP_ERR_IO, c->fn, "%s:%" PRIu64 ": read error: %s", c->path, c->line,
                        bp__sys_error(c->io_err, eb, sizeof eb));
    }
    if (c->row_st != BP_OK)
        return c->row_st;
    if (c->line_long)
        return bp__fail(BP_ERR_FORMAT, c->fn, "%s:%" PRIu64 ": the line is longer than %" PRIu64 " bytes", c->path,
                        c->line, CSV_LINE_MAX);
    return BP_OK;
}

/* Reads every line; on success c->X, c->labels and c->targets hold c->n samples. */
static bp_status read_all(csv *c, int header)
{
    /* A UTF-8 byte order mark, as spreadsheet programs write it, is not data. */
    if (csv_fill(c) && c->len >= 3 && c->chunk[0] == 0xEF && c->chunk[1] == 0xBB && c->chunk[2] == 0xBF)
        c->pos = 3;
    int header_seen = 0;
    for (c->line = 1;; c->line++) {
        const int got = read_line(c);
        bp_status st = line_failure(c);
        if (st != BP_OK)
            return st;
        if (!got)
            break;
        if (c->nf == 1 && c->bad_field == 1 && c->bad_kind == F_EMPTY)
            continue; /* blank line */
        if (c->expect == 0) {
            if ((st = check_columns(c)) != BP_OK)
                return st;
            c->expect = c->nf;
            c->first_line = c->line;
            c->nfeat = c->nf - c->n_special;
            if (header == 1 || (header == -1 && c->header_like)) {
                header_seen = 1;
                continue;
            }
        } else if (c->nf != c->expect) {
            return count_error(c);
        }
        if (c->bad_field)
            return field_error(c);
        if ((st = append_row(c)) != BP_OK)
            return st;
    }
    if (c->n == 0)
        return bp__fail(BP_ERR_FORMAT, c->fn, "%s: no data lines%s", c->path,
                        header_seen ? " after the header" : ": the file is empty or blank");
    return BP_OK;
}

/* A copy of p's first `bytes` bytes, p freed; p itself when no copy can be made (it serves as well). */
static void *shrunk(const bp_allocator *a, void *p, size_t bytes)
{
    void *q = a->alloc(a->ctx, bytes);
    if (!q)
        return p;
    memcpy(q, p, bytes);
    a->free(a->ctx, p);
    return q;
}

/* Gives back the unused growth room of X, the labels and the targets. */
static void trim(csv *c)
{
    if (c->cap == c->n)
        return;
    c->X = shrunk(&c->a, c->X, c->n * c->nfeat * c->esize);
    if (c->labels)
        c->labels = shrunk(&c->a, c->labels, c->n * sizeof *c->labels);
    if (c->targets)
        c->targets = shrunk(&c->a, c->targets, c->n * c->ntarg * c->esize);
}

static int cmp_special(const void *a, const void *b)
{
    const size_t x = ((const special_col *)a)->col, y = ((const special_col *)b)->col;
    return (x > y) - (x < y);
}

/* The reader's state with its special columns sorted (the label, targets[0 .. n_targets)), or NULL
 * when it cannot be allocated. */
static csv *csv_new(const bp_allocator *a, long label_col, const bp_int *targets, size_t n_targets)
{
    const size_t n_special = n_targets + (label_col >= 0);
    csv *c = a->alloc(a->ctx, sizeof *c + n_special * sizeof(special_col) + n_targets * sizeof(double));
    if (!c)
        return NULL;
    memset(c, 0, sizeof *c);
    c->a = *a;
    c->n_special = n_special;
    c->ntarg = n_targets;
    c->row_targets = (double *)(void *)(c->special + n_special);
    c->row_st = BP_OK;
    for (size_t j = 0; j < n_targets; j++)
        c->special[j] = (special_col){(size_t)targets[j], (long)j};
    if (label_col >= 0)
        c->special[n_targets] = (special_col){(size_t)label_col, ROLE_LABEL};
    qsort(c->special, n_special, sizeof *c->special, cmp_special);
    return c;
}

/* Opens the file (a regular one), reads it and trims the arrays. */
static bp_status read_file(csv *c, int header)
{
    const char *const fn = c->fn, *const path = c->path;
    c->chunk = c->a.alloc(c->a.ctx, CSV_CHUNK);
    if (!c->chunk)
        return bp__fail(BP_ERR_NOMEM, fn, "%s: allocating a %d-byte read buffer", path, CSV_CHUNK);
    errno = 0;
    c->f = fopen(path, "rb");
    if (!c->f) {
        char eb[128];
        return bp__fail(BP_ERR_IO, fn, "%s: cannot open: %s", path, bp__sys_error(errno, eb, sizeof eb));
    }
    struct stat sb;
    if (fstat(fileno(c->f), &sb) != 0 || !S_ISREG(sb.st_mode))
        return bp__fail(BP_ERR_IO, fn, "%s: not a regular file (a device, pipe or directory): the reader needs a "
                                       "file that ends", path);
    setvbuf(c->f, NULL, _IONBF, 0); /* the chunk is the buffer */
    const bp_status st = read_all(c, header);
    if (st == BP_OK)
        trim(c);
    return st;
}

/* Two target columns that are the same: found in the reader's sorted copy (sorting needs memory, so
 * this is the one argument checked after an allocation; a long list costs n log n, not n^2). */
static bp_status check_distinct(const char *fn, const csv *c)
{
    for (size_t i = 1; i < c->n_special; i++)
        BP_REQUIRE(c->special[i].col != c->special[i - 1].col, BP_ERR_ARG,
                   "target_cols[%ld] and target_cols[%ld] are both column %zu: target columns must be distinct",
                   c->special[i - 1].role < c->special[i].role ? c->special[i - 1].role : c->special[i].role,
                   c->special[i - 1].role < c->special[i].role ? c->special[i].role : c->special[i - 1].role,
                   c->special[i].col);
    return BP_OK;
}

/* Both readers, their arguments checked: a label column (-1: none) and n_targets target columns,
 * all distinct. */
static bp_status csv_read(const char *fn, const char *path, bp_dtype dtype, int header, long label_col,
                          const bp_int *targets, size_t n_targets, const bp_allocator *alloc, bp_dataset *out)
{
    /* Large (the field buffer): on the heap, through the allocator. */
    const bp_allocator a = alloc ? *alloc : bp__default_allocator;
    csv *c = csv_new(&a, label_col, targets, n_targets);
    if (!c)
        return bp__fail(BP_ERR_NOMEM, fn, "%s: allocating the reader", path);
    c->fn = fn;
    c->path = path;
    c->dtype = dtype;
    c->esize = dtype == BP_F32 ? sizeof(float) : sizeof(double);
    bp_status st = check_distinct(fn, c);
    if (st == BP_OK)
        st = read_file(c, header);
    if (c->f)
        fclose(c->f);
    if (c->chunk)
        a.free(a.ctx, c->chunk);
    if (c->row)
        a.free(a.ctx, c->row);
    if (st == BP_OK) {
        *out = (bp_dataset){.dtype = dtype, .n = (bp_int)c->n, .n_features = (bp_int)c->nfeat, .X = c->X,
                            .labels = c->labels, .n_classes = c->labels ? c->max_label + 1 : 0, .alloc = a,
                            .targets = c->targets, .n_targets = (bp_int)c->ntarg};
    } else {
        void *const blocks[] = {c->X, c->labels, c->targets};
        for (size_t i = 0; i < 3; i++)
            if (blocks[i])
                a.free(a.ctx, blocks[i]);
    }
    a.free(a.ctx, c);
    return st;
}

/* The checks both readers share. */
static bp_status check_common(const char *fn, const char *path, bp_dtype dtype, int header,
                              const bp_allocator *alloc, const bp_dataset *out)
{
    BP_CHECK_PTR(path);
    BP_CHECK_PTR(out);
    BP_REQUIRE(dtype == BP_F32 || dtype == BP_F64, BP_ERR_ARG, "dtype (%d) is neither BP_F32 (1) nor BP_F64 (2)",
               (int)dtype);
    BP_REQUIRE(header >= -1 && header <= 1, BP_ERR_ARG, "header (%d) is not 1, 0 or -1", header);
    BP_REQUIRE(!alloc || (alloc->alloc && alloc->free), BP_ERR_ARG, "alloc has a NULL alloc or free");
    return BP_OK;
}

bp_status bp_csv_read(const char *path, bp_dtype dtype, int header, bp_int label_col, const bp_allocator *alloc,
                      bp_dataset *out)
{
    static const char fn[] = "bp_csv_read";
    TRY(check_common(fn, path, dtype, header, alloc, out));
    BP_REQUIRE(label_col >= -1, BP_ERR_ARG, "label_col (%d) < -1", (int)label_col);
    return csv_read(fn, path, dtype, header, label_col, NULL, 0, alloc, out);
}


bp_status bp_csv_read_targets(const char *path, bp_dtype dtype, int header, const bp_int *target_cols,
                              bp_int n_targets, const bp_allocator *alloc, bp_dataset *out)
{
    static const char fn[] = "bp_csv_read_targets";
    TRY(check_common(fn, path, dtype, header, alloc, out));
    BP_CHECK_PTR(target_cols);
    BP_REQUIRE(n_targets >= 1, BP_ERR_ARG, "n_targets (%d) < 1", (int)n_targets);
    BP_REQUIRE((size_t)n_targets <= (SIZE_MAX - sizeof(csv)) / (sizeof(special_col) + sizeof(double)),
               BP_ERR_OVERFLOW, "n_targets (%d): the reader's copy of the columns overflows size_t", (int)n_targets);
    for (bp_int j = 0; j < n_targets; j++)
        BP_REQUIRE(target_cols[j] >= 0, BP_ERR_ARG, "target_cols[%d] (%d) < 0", (int)j, (int)target_cols[j]);
    return csv_read(fn, path, dtype, header, -1, target_cols, (size_t)n_targets, alloc, out);
}
