/* SPDX-License-Identifier: MIT */
/** \file
 * backprop/io.h: data readers (IDX, CSV) and the model file format. */
#ifndef BACKPROP_IO_H
#define BACKPROP_IO_H

#include <stdint.h>
#include "core.h"
#include "net.h"
#include "optim.h"
#include "train.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An in-memory data set: n samples of n_features values, sample-major
 * (X[n][n_features], contiguous), of the requested dtype, and n class labels
 * (NULL when the source has none) or n x n_targets real targets (NULL when
 * the source has none; bp_csv_read_targets). Owned by the library: free with
 * bp_dataset_free. */
typedef struct bp_dataset {
    bp_dtype dtype;        /**< element type of X */
    bp_int n;              /**< number of samples */
    bp_int n_features;     /**< values per sample */
    void *X;               /**< n x n_features values of dtype, sample-major */
    int32_t *labels;       /**< n class labels, or NULL */
    bp_int n_classes;      /**< 1 + the largest label; 0 without labels */
    bp_allocator alloc;    /**< what X, labels and targets were allocated with */
    void *targets;         /**< n x n_targets real targets of dtype, sample-major
                                (targets[n][n_targets], contiguous), or NULL */
    bp_int n_targets;      /**< targets per sample; 0 without targets */
} bp_dataset;

/** Limits a reader checks before allocating, so a hostile or corrupt header
 * cannot ask for absurd sizes: at most this many values (samples x features)
 * and this many samples. */
#define BP_IO_MAX_VALUES ((int64_t)1 << 31)
/** The most samples a reader accepts (see BP_IO_MAX_VALUES). */
#define BP_IO_MAX_SAMPLES ((int64_t)1 << 28)

/** How pixel values are transformed while reading an IDX image file. */
typedef enum bp_scale {
    BP_SCALE_NONE = 0,   /**< the raw byte values 0..255 */
    BP_SCALE_UNIT = 1    /**< divided by 255: [0, 1] */
} bp_scale;

/** Reads an IDX image file (magic 0x00000803: unsigned bytes, n x rows x cols,
 * giving n_features = rows * cols; or 0x00000802: unsigned bytes, n x
 * features) and, when labels_path is not NULL, an IDX label file (magic
 * 0x00000801, n unsigned bytes), each plain or gzip-compressed (detected by
 * content). X holds the pixels in `dtype`, scaled by `scale`; labels are the
 * bytes as int32_t, n_classes = 1 + the largest label (labels NULL and
 * n_classes 0 without a label file). Validates the magic numbers, the
 * dimensions (nonzero, within the limits above and n_features <= INT_MAX),
 * that the file holds exactly the data its header announces (truncated or
 * longer files are refused, with the byte offset where the data ended and
 * the bytes expected; offsets count uncompressed bytes; as with zlib
 * generally, bytes after the end of a gzip stream that are not another gzip
 * member are ignored), and that both files count the same samples. Both
 * headers and all sizes are checked before anything is allocated; a plain
 * file's size must be exactly its header and data, so a tiny file cannot ask
 * for a large allocation, and a gzip file's data is read into memory that
 * grows (doubling, from 1 MiB) only as the data arrives. The paths must name
 * regular files (a device or pipe is refused with BP_ERR_IO). Errors:
 * BP_ERR_ARG (NULL images_path or out, a dtype, scale or allocator out of
 * range), BP_ERR_IO (cannot open or read: the message names the file and the
 * system error), BP_ERR_FORMAT (bad content, including a corrupt or cut gzip
 * stream and disagreeing sample counts: names the file and byte offset),
 * BP_ERR_UNSUPPORTED (an IDX element type other than unsigned byte: signed
 * byte, short, int, float, double), BP_ERR_OVERFLOW (sizes over the limits),
 * BP_ERR_NOMEM. On error *out is untouched and nothing stays allocated.
 * `alloc` may be NULL (malloc/free); X and labels come from it, while zlib's
 * own buffers and the FILE use malloc. */
BP_API bp_status bp_idx_read(const char *images_path, const char *labels_path, bp_dtype dtype,
                             bp_scale scale, const bp_allocator *alloc, bp_dataset *out);

/** bp_idx_read with a limit of the caller's on the values (samples x features) it accepts, in
 * [1, BP_IO_MAX_VALUES]; a header announcing more is refused with BP_ERR_OVERFLOW before
 * anything is allocated. */
BP_API bp_status bp_idx_read_limit(const char *images_path, const char *labels_path, bp_dtype dtype,
                                   bp_scale scale, int64_t max_values, const bp_allocator *alloc,
                                   bp_dataset *out);

/** Reads a numeric CSV file (comma-separated; no quoting; blank lines, i.e.
 * empty or only spaces and tabs, ignored; LF or CRLF line ends; the last line
 * may lack its newline; a leading UTF-8 byte order mark is skipped). A field
 * is the text strtod reads (decimal, exponent or hex notation, in the C
 * locale: the library never calls setlocale), with optional spaces or tabs
 * around it, at most 1023 characters. header: 1 the first non-blank line is a
 * header and is skipped (its contents unchecked), 0 it is data, -1 detect (skipped when any of
 * its fields is empty or not a number; "nan" or "inf" count as numbers there,
 * so they are reported, not silently skipped). A header must have as many
 * fields as the data. label_col: the 0-based column holding an integer class
 * label, or -1 for none (every column is then a feature); at least one
 * feature column must remain. Every line must have the same number of
 * fields; every field must be a finite number (and within float range for
 * BP_F32; values below it become 0 or subnormal); labels must be integers in
 * [0, 2^31 - 1), so that n_classes = 1 + the largest label fits a bp_int
 * ("3", "3.0" and "3e0" are all 3). A file without data lines is refused.
 * Errors: BP_ERR_ARG (NULL path or out, dtype, header not in {-1, 0, 1},
 * label_col < -1, allocator), BP_ERR_FORMAT as "bp_csv_read: FILE:LINE: field
 * K: why" (lines and fields numbered from 1, counting every physical line),
 * BP_ERR_IO (names the file and the system error), BP_ERR_OVERFLOW (more than
 * BP_IO_MAX_SAMPLES lines or BP_IO_MAX_VALUES values, or more than INT_MAX
 * fields), BP_ERR_NOMEM. The path must name a regular file (a device or pipe,
 * which may never end, is refused with BP_ERR_IO), and a line may be at most
 * 1 GiB long (BP_ERR_FORMAT). The file is read in one pass; X and labels grow
 * geometrically through the allocator and are trimmed to size at the end.
 * On error *out is untouched and nothing stays allocated. */
BP_API bp_status bp_csv_read(const char *path, bp_dtype dtype, int header, bp_int label_col,
                             const bp_allocator *alloc, bp_dataset *out);

/** Reads a numeric CSV file, as bp_csv_read does, whose n_targets columns
 * target_cols[j] (0-based, distinct, in any order) hold real-valued
 * targets, for regression: the data set's targets receive them
 * (targets[i][j] is column target_cols[j] of sample i, in `dtype`), X the
 * other columns in file order (n_features = fields - n_targets; at least one
 * must remain), and labels stay NULL (n_classes 0). A target is a field like
 * any other: a finite number, within float range for BP_F32. The file's
 * format, header detection, limits (a sample's values are its features and
 * its targets) and memory behaviour are bp_csv_read's. Errors: BP_ERR_ARG
 * (as bp_csv_read, and target_cols NULL, n_targets < 1, a column < 0, two
 * equal columns: the last is found after the reader's one allocation, which
 * is then freed), BP_ERR_FORMAT as "bp_csv_read_targets: FILE:LINE: field K:
 * why" (a target column beyond the first line's fields, no feature column
 * left, a bad target "(a target column)", a line with another field count),
 * BP_ERR_IO, BP_ERR_OVERFLOW, BP_ERR_NOMEM. On error *out is untouched and
 * nothing stays allocated. */
BP_API bp_status bp_csv_read_targets(const char *path, bp_dtype dtype, int header, const bp_int *target_cols,
                                     bp_int n_targets, const bp_allocator *alloc, bp_dataset *out);

/** Frees what a reader allocated (through d->alloc; a set built by hand with a
 * zeroed alloc is freed with free()) and zeroes *d; NULL or a zeroed set is a
 * no-op, so freeing twice is harmless. */
BP_API void bp_dataset_free(bp_dataset *d);

/** Standardises features: each feature's mean and population standard
 * deviation (divided by n) are computed in double, in two passes, over `fit`
 * and applied, x = (x - mean) / std, to `fit` and (when not NULL) to `other`
 * (a test set with the same n_features and dtype; it may be empty, and may
 * not be fit itself or share its X). A feature with std < 1e-12 is only
 * centred. mean and std (n_features values each) may be NULL; otherwise they
 * receive the statistics (std as computed, also when below 1e-12). Errors:
 * BP_ERR_ARG (fit NULL, fit->n < 1, n_features < 1, X NULL, a bad dtype, other
 * mismatched), BP_ERR_NONFINITE (a NaN or Inf in fit or other, or statistics
 * that overflow), BP_ERR_OVERFLOW, BP_ERR_NOMEM (a 2 x n_features workspace
 * from fit->alloc, or malloc when that is zeroed). On error nothing is
 * written: neither the data sets nor mean and std. */
BP_API bp_status bp_dataset_standardize(bp_dataset *fit, bp_dataset *other, double *mean, double *std);

/** Model files: the format version bp_model_save writes.
 *
 * Layout (all integers little-endian, whatever the host):
 * \code{.unparsed}
 *   offset  size  field
 *   0       8     magic "BPMODEL\0"
 *   8       4     format version (1 or 2; written: 2)
 *   12      4     byte order mark 0x01020304 (little-endian: 04 03 02 01)
 *   16      4     dtype (1 = float32, 2 = float64)
 *   20      4     loss (bp_loss, 1 .. 4)
 *   24      4     n_in
 *   28      4     n_layers (1 .. BP_NET_MAX_LAYERS)
 *   32      16 per layer: n_out (4), act (4), alpha (8, IEEE double)
 *   ...     8     n_params (must equal what the layer table implies)
 *   ...     n_params x 4 or 8: the parameter buffer (IEEE, little-endian)
 *   ...     4     n_sections (0 .. 3; version 2 only), then each section:
 *                 4 tag, 8 length L, L bytes; each tag at most once, in any order:
 *                 "STDZ"  n_in means, then n_in standard deviations (IEEE doubles):
 *                         the network's input standardisation (L = 16 n_in)
 *                 "OPTM"  the optimizer: kind (4), schedule (4), lr, momentum, beta1, beta2,
 *                         eps, weight_decay, gamma, lr_min (IEEE doubles), step_size, t_max
 *                         (signed), steps (8 each), then its moment buffers (0, 1 or 2 as its kind
 *                         keeps) of n_params values of the dtype each
 *                 "TRST"  the training run: epochs_done (8), the generator's 4 words (8 each)
 *   ...     4     CRC-32 (zlib's) of every byte before it
 * \endcode
 * Version 1 files (no sections) load as before. The load is bitwise exact. */
#define BP_MODEL_FORMAT_VERSION 2

/** Saves the network's architecture and parameters atomically: to the temporary
 * file `path`.tmp in the same directory, flushed and fsync'ed, then renamed over
 * `path` (and the directory fsync'ed), so a crash or a failed write never leaves
 * a partial file under `path`: the old file, if any, survives. A save killed
 * before its rename leaves `path`.tmp, which the next save to `path` takes over,
 * so temporary files never pile up; two processes must not save to one path at
 * once. A new file gets 0666 less the umask; a file that exists keeps its
 * permissions. `path` names the file itself: a symbolic link there is replaced
 * by the file, not written through (`path`.tmp may not be a link either).
 * BP_ERR_IO names the file and the system error. */
BP_API bp_status bp_model_save(const bp_net *net, const char *path);

/** Loads a model file into a new network (allocated through alloc, NULL for
 * malloc/free; unplanned). Checks every field — magic, version, byte order,
 * dtype, loss, sizes against the limits and against the file's length before
 * allocating anything, the layer table as bp_net_create does, the CRC — and
 * refuses a corrupt, truncated or foreign file with BP_ERR_FORMAT (or
 * BP_ERR_UNSUPPORTED for a newer format version, BP_ERR_OVERFLOW for a layer
 * table whose sizes pass the network's limits, BP_ERR_NOMEM when memory runs
 * out), naming the file and field. */
BP_API bp_status bp_model_load(bp_net **out, const char *path, const bp_allocator *alloc);

/** Saves like bp_model_save, adding the optimizer's state (its configuration, step count and
 * moments; opt may be NULL) and the training run's state (state may be NULL), so that training
 * continued from the file (bp_model_load_state) gives the same bits as a run never
 * interrupted. opt must belong to net. */
BP_API bp_status bp_model_save_state(const bp_net *net, const bp_optim *opt, const bp_train_state *state,
                                     const char *path);

/** Loads like bp_model_load (which keeps a file's standardisation and checks its other sections
 * by the CRC alone); when opt is not NULL, *opt receives the optimizer saved with the
 * model, restored for the new network (NULL when the file holds none); when state is not NULL,
 * it receives the training state saved (zeroed when the file holds none). On error nothing is
 * allocated and the outputs are untouched. */
BP_API bp_status bp_model_load_state(bp_net **net, bp_optim **opt, bp_train_state *state, const char *path,
                                     const bp_allocator *alloc);

#ifdef __cplusplus
}
#endif
#endif
