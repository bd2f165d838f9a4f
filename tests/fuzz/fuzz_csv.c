/* SPDX-License-Identifier: MIT */
/* fuzz_csv.c: libFuzzer target for bp_csv_read: byte 0 chooses the arguments, the rest is the file. */
#include <stdio.h>
#include <string.h>

#include "fuzz_util.h"

static const unsigned csv_errors =
    FUZZ_STATUS(BP_ERR_FORMAT) | FUZZ_STATUS(BP_ERR_OVERFLOW) | FUZZ_STATUS(BP_ERR_NOMEM);

/* What the file's lines are, counted apart from the reader by the rules io.h states: a line ends
 * at LF, and a CR before it or at the end of the file is not part of it; a line of nothing but
 * spaces and tabs is blank; a UTF-8 byte order mark at the start is skipped. */
typedef struct shape {
    size_t lines;         /* non-blank */
    size_t first_fields;  /* of the first non-blank line: its commas + 1 */
} shape;

static shape count_lines(const uint8_t *p, size_t len)
{
    shape s = {0, 0};
    size_t i = len >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF ? 3 : 0;
    while (i < len) {
        size_t end = i;
        while (end < len && p[end] != '\n')
            end++;
        const size_t stop = end > i && p[end - 1] == '\r' ? end - 1 : end;
        size_t commas = 0, blank = 1;
        for (size_t k = i; k < stop; k++) {
            commas += p[k] == ',';
            blank &= p[k] == ' ' || p[k] == '\t';
        }
        if (!blank && s.lines++ == 0)
            s.first_fields = commas + 1;
        i = end + 1;
    }
    return s;
}

/* As many samples as data lines (the header, when skipped, is not one), and the first line's
 * fields less the label column. */
static void check_shape(const bp_dataset *d, const uint8_t *file, size_t len, int header, bp_int label_col)
{
    const shape s = count_lines(file, len);
    FUZZ_CHECK((size_t)d->n_features + (label_col >= 0) == s.first_fields,
               "%d features (label column %d), but the first line has %zu fields", (int)d->n_features,
               (int)label_col, s.first_fields);
    const size_t n = (size_t)d->n;
    FUZZ_CHECK(header == 1 ? n + 1 == s.lines : header == 0 ? n == s.lines : n == s.lines || n + 1 == s.lines,
               "%zu samples from %zu non-blank lines (header %d)", n, s.lines, header);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    fuzz_begin();
    const int header = data[0] % 3 - 1;
    const bp_int label_col = data[0] / 3 % 3 - 1;
    const bp_dtype dtype = data[0] / 9 % 2 ? BP_F64 : BP_F32;
    const char *path = fuzz_file(0, data + 1, size - 1, 0);

    bp_dataset d;
    fuzz_sentinel(&d, sizeof d);
    const bp_status st = bp_csv_read(path, dtype, header, label_col, &fuzz_alloc, &d);
    if (st != BP_OK) {
        fuzz_check_failure("bp_csv_read", st, csv_errors, &d, sizeof d);
        /* Every message names the file: "bp_csv_read: FILE:LINE: field K: why" (or "FILE: why"). */
        char prefix[300];
        const int n = snprintf(prefix, sizeof prefix, "bp_csv_read: %s:", path);
        FUZZ_CHECK(strncmp(bp_last_error(), prefix, (size_t)n) == 0, "the message does not name the file: %s",
                   bp_last_error());
        return 0;
    }
    fuzz_check_dataset(&d, dtype, label_col >= 0);
    check_shape(&d, data + 1, size - 1, header, label_col);
    fuzz_free_dataset(&d);
    return 0;
}
