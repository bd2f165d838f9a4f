/* model.c: the model file format (layout in backprop/io.h): an atomic save and a load that checks every field before allocating. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <zlib.h>

#include "backprop/io.h"
#include "net/net_internal.h"

/* Parameters are written as their IEEE bits; the layout assumes binary32 and binary64. */
_Static_assert(sizeof(float) == 4 && FLT_MANT_DIG == 24, "float must be IEEE binary32");
_Static_assert(sizeof(double) == 8 && DBL_MANT_DIG == 53, "double must be IEEE binary64");

/* Offsets and sizes of the layout. */
enum {
    OFF_MAGIC = 0,
    OFF_VERSION = 8,
    OFF_BOM = 12,
    OFF_DTYPE = 16,
    OFF_LOSS = 20,
    OFF_N_IN = 24,
    OFF_N_LAYERS = 28,
    OFF_LAYERS = 32,   /* also the size of the fixed header */
    LAYER_BYTES = 16,
    N_PARAMS_BYTES = 8,
    CRC_BYTES = 4,
    CHUNK = 8192       /* I/O buffer: a multiple of 8, so parameters never straddle two chunks */
};

static const unsigned char model_magic[8] = {'B', 'P', 'M', 'O', 'D', 'E', 'L', '\0'};
#define MODEL_BOM UINT32_C(0x01020304)

typedef unsigned long long ull;

/* ---------------------------------------------------------------------------------------------
 * Little-endian bytes, whatever the host.
 * ------------------------------------------------------------------------------------------- */
static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Bytes of the header up to the parameters: fixed part, layer table, n_params. */
static size_t header_bytes(uint32_t n_layers)
{
    return (size_t)OFF_LAYERS + (size_t)n_layers * LAYER_BYTES + N_PARAMS_BYTES;
}

static bp_status io_fail(const char *fn, const char *path, const char *step, int e)
{
    char eb[128];
    return bp__fail(BP_ERR_IO, fn, "'%s': %s failed: %s", path, step, bp__sys_error(e, eb, sizeof eb));
}

/* ---------------------------------------------------------------------------------------------
 * Saving.
 * ------------------------------------------------------------------------------------------- */

/* Buffers output, keeps the running CRC and remembers the first write error. */
typedef struct writer {
    FILE *f;
    uLong crc;
    size_t len;
    int err;
    unsigned char buf[CHUNK];
} writer;

static void w_flush(writer *w)
{
    if (w->len && !w->err) {
        w->crc = crc32(w->crc, w->buf, (uInt)w->len);
        errno = 0;
        if (fwrite(w->buf, 1, w->len, w->f) != w->len)
            w->err = errno ? errno : EIO;
    }
    w->len = 0;
}

static void w_put(writer *w, const unsigned char *p, size_t n)
{
    while (n) {
        if (w->len == CHUNK)
            w_flush(w);
        size_t k = CHUNK - w->len < n ? CHUNK - w->len : n;
        memcpy(w->buf + w->len, p, k);
        w->len += k;
        p += k;
        n -= k;
    }
}

static void w_u32(writer *w, uint32_t v)
{
    unsigned char b[4];
    put32(b, v);
    w_put(w, b, 4);
}

static void w_u64(writer *w, uint64_t v)
{
    unsigned char b[8];
    put64(b, v);
    w_put(w, b, 8);
}

/* Everything but the CRC goes through the buffer; the CRC follows the flushed data. */
static int write_model(const bp_net *net, FILE *f)
{
    writer storage, *w = &storage;
    w->f = f;
    w->len = 0;
    w->err = 0;
    w->crc = crc32(0L, Z_NULL, 0);
    w_put(w, model_magic, sizeof model_magic);
    w_u32(w, BP_MODEL_FORMAT_VERSION);
    w_u32(w, MODEL_BOM);
    w_u32(w, (uint32_t)net->dtype);
    w_u32(w, (uint32_t)net->loss);
    w_u32(w, (uint32_t)net->n_in);
    w_u32(w, (uint32_t)net->n_layers);
    for (bp_int i = 0; i < net->n_layers; i++) {
        uint64_t a;
        memcpy(&a, &net->layers[i].alpha, sizeof a);
        w_u32(w, (uint32_t)net->layers[i].n_out);
        w_u32(w, (uint32_t)net->layers[i].act);
        w_u64(w, a);
    }
    w_u64(w, (uint64_t)net->n_params);
    if (net->dtype == BP_F32) {
        const float *p = net->params;
        for (size_t k = 0; k < net->n_params; k++) {
            uint32_t u;
            memcpy(&u, &p[k], sizeof u);
            w_u32(w, u);
        }
    } else {
        const double *p = net->params;
        for (size_t k = 0; k < net->n_params; k++) {
            uint64_t u;
            memcpy(&u, &p[k], sizeof u);
            w_u64(w, u);
        }
    }
    w_flush(w);
    const uint32_t crc = (uint32_t)w->crc;
    w_u32(w, crc);
    w_flush(w);
    errno = w->err;
    return w->err ? -1 : 0;
}

bp_status bp_model_save(const bp_net *net, const char *path)
{
    const char *fn = __func__;
    BP_CHECK_PTR(net);
    BP_CHECK_PTR(path);
    BP_REQUIRE(path[0] != '\0', BP_ERR_ARG, "path is empty");

    /* One fixed temporary name per path: a save killed before its rename leaves PATH.tmp
     * behind, and the next save takes it over (O_TRUNC) instead of adding another. */
    static const char suffix[] = ".tmp";
    const size_t plen = strlen(path);
    BP_REQUIRE(plen < SIZE_MAX - sizeof suffix, BP_ERR_OVERFLOW, "path is too long");
    char *tmp = bp__net_alloc(net, plen + sizeof suffix);
    if (!tmp)
        return bp__fail(BP_ERR_NOMEM, fn, "'%s': allocating the temporary file name", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, suffix, sizeof suffix);

    bp_status st = BP_OK;
    const char *step = NULL;
    int e = 0;
    FILE *f = NULL;
    /* 0666 less the umask for a new file, as for any file a program creates; a file that
     * already exists keeps its permissions. */
    const int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (fd < 0) {
        e = errno;
        bp__net_free(net, tmp);
        return io_fail(fn, path, "creating the temporary file PATH.tmp in its directory", e);
    }
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && fchmod(fd, sb.st_mode & 07777) != 0) {
        step = "fchmod of the temporary file";
        goto fail_fd;
    }
    f = fdopen(fd, "wb");
    if (!f) {
        step = "fdopen of the temporary file";
        goto fail_fd;
    }
    if (write_model(net, f) != 0) {
        step = "writing the temporary file";
        goto fail_file;
    }
    if (fflush(f) != 0) {
        step = "fflush of the temporary file";
        goto fail_file;
    }
    if (fsync(fileno(f)) != 0) {
        step = "fsync of the temporary file";
        goto fail_file;
    }
    {
        FILE *g = f;
        f = NULL;
        if (fclose(g) != 0) {   /* the stream is gone even when fclose fails */
            step = "closing the temporary file";
            e = errno;
            goto fail_unlink;
        }
    }
    if (rename(tmp, path) != 0) {
        step = "renaming the temporary file over it";
        e = errno;
        goto fail_unlink;
    }

    /* Make the rename durable: fsync the directory (reusing tmp for its name). */
    {
        const char *slash = strrchr(path, '/');
        if (!slash)
            strcpy(tmp, ".");
        else if (slash == path)
            strcpy(tmp, "/");
        else {
            memcpy(tmp, path, (size_t)(slash - path));
            tmp[slash - path] = '\0';
        }
        const int dfd = open(tmp, O_RDONLY | O_CLOEXEC);
        if (dfd < 0) {
            st = io_fail(fn, path, "opening the directory to fsync it (the file was replaced)", errno);
        } else {
            if (fsync(dfd) != 0 && errno != EINVAL)
                st = io_fail(fn, path, "fsync of the directory (the file was replaced)", errno);
            close(dfd);
        }
    }
    bp__net_free(net, tmp);
    return st;

fail_file:
    e = errno;
    fclose(f);
    goto fail_unlink;
fail_fd:
    e = errno;
    close(fd);
fail_unlink:
    unlink(tmp);
    bp__net_free(net, tmp);
    return io_fail(fn, path, step, e ? e : EIO);
}

/* ---------------------------------------------------------------------------------------------
 * Loading.
 * ------------------------------------------------------------------------------------------- */

/* Reads n bytes at offset off, retrying short reads; *got receives how many arrived
 * (fewer at end of file). Returns 0 or the errno of a failed read. */
static int read_at(int fd, void *buf, size_t n, uint64_t off, size_t *got)
{
    size_t done = 0;
    while (done < n) {
        const ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            *got = done;
            return errno;
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return 0;
}

/* read_at with both failures turned into a status: a read error, or a file that
 * ended early (it shrank after fstat). */
static bp_status read_exact(const char *fn, const char *path, int fd, void *buf, size_t n, uint64_t off)
{
    size_t got;
    const int e = read_at(fd, buf, n, off, &got);
    if (e)
        return io_fail(fn, path, "reading", e);
    if (got < n)
        return bp__fail(BP_ERR_FORMAT, fn, "'%s': truncated: unexpected end of file at offset %llu", path,
                        (ull)(off + got));
    return BP_OK;
}

/* The validated header. */
typedef struct model_header {
    bp_dtype dtype;
    bp_loss loss;
    bp_int n_in, n_layers;
    size_t n_params, esize;
    uint64_t params_off, crc_off;   /* where the parameters and the CRC start */
    uLong crc;                      /* CRC of the header bytes */
} model_header;

/* Checks the fixed header (the first OFF_LAYERS bytes, of a file of `size` bytes). */
static bp_status check_fixed(const char *fn, const char *path, const unsigned char *b, uint64_t size,
                             model_header *h)
{
    BP_REQUIRE(memcmp(b + OFF_MAGIC, model_magic, sizeof model_magic) == 0, BP_ERR_FORMAT,
               "'%s': bad magic at offset 0 (expected \"BPMODEL\\0\"): not a backprop model file", path);
    BP_REQUIRE(size >= OFF_LAYERS, BP_ERR_FORMAT,
               "'%s': truncated: %llu bytes, but the fixed header ends at offset %d", path, (ull)size,
               OFF_LAYERS);
    const uint32_t version = get32(b + OFF_VERSION);
    BP_REQUIRE(version != 0, BP_ERR_FORMAT, "'%s': format version 0 at offset %d is invalid", path, OFF_VERSION);
    BP_REQUIRE(version <= BP_MODEL_FORMAT_VERSION, BP_ERR_UNSUPPORTED,
               "'%s': format version %lu at offset %d is newer than this library reads (%d)", path,
               (unsigned long)version, OFF_VERSION, BP_MODEL_FORMAT_VERSION);
    const uint32_t bom = get32(b + OFF_BOM);
    BP_REQUIRE(bom == MODEL_BOM, BP_ERR_FORMAT,
               "'%s': byte order mark at offset %d is 0x%08lx, not 0x01020304 (bytes 04 03 02 01)", path,
               OFF_BOM, (unsigned long)bom);
    const uint32_t dtype = get32(b + OFF_DTYPE);
    BP_REQUIRE(dtype == BP_F32 || dtype == BP_F64, BP_ERR_FORMAT,
               "'%s': dtype %lu at offset %d is neither 1 (float32) nor 2 (float64)", path,
               (unsigned long)dtype, OFF_DTYPE);
    const uint32_t loss = get32(b + OFF_LOSS);
    BP_REQUIRE(loss == BP_LOSS_SOFTMAX_XENT || loss == BP_LOSS_SIGMOID_BCE || loss == BP_LOSS_MSE,
               BP_ERR_FORMAT, "'%s': loss %lu at offset %d is not a bp_loss (1, 2 or 3)", path,
               (unsigned long)loss, OFF_LOSS);
    const uint32_t n_in = get32(b + OFF_N_IN);
    BP_REQUIRE(n_in >= 1 && n_in <= INT_MAX, BP_ERR_FORMAT, "'%s': n_in %lu at offset %d is not in [1, %d]",
               path, (unsigned long)n_in, OFF_N_IN, INT_MAX);
    const uint32_t n_layers = get32(b + OFF_N_LAYERS);
    BP_REQUIRE(n_layers >= 1 && n_layers <= BP_NET_MAX_LAYERS, BP_ERR_FORMAT,
               "'%s': n_layers %lu at offset %d is not in [1, %d] (BP_NET_MAX_LAYERS)", path,
               (unsigned long)n_layers, OFF_N_LAYERS, BP_NET_MAX_LAYERS);
    h->dtype = (bp_dtype)dtype;
    h->loss = (bp_loss)loss;
    h->n_in = (bp_int)n_in;
    h->n_layers = (bp_int)n_layers;
    h->esize = dtype == BP_F32 ? sizeof(float) : sizeof(double);
    return BP_OK;
}

/* Decodes and checks the layer table and n_params (t holds the bytes from OFF_LAYERS),
 * then the file size the header implies. */
static bp_status check_table(const char *fn, const char *path, const unsigned char *t, uint64_t size,
                             model_header *h, bp_layer_spec *specs)
{
    uint64_t implied = 0;
    uint64_t prev = (uint64_t)h->n_in;
    for (bp_int i = 0; i < h->n_layers; i++) {
        const unsigned char *r = t + (size_t)i * LAYER_BYTES;
        const ull off = (ull)OFF_LAYERS + (ull)i * LAYER_BYTES;
        const uint32_t n_out = get32(r), act = get32(r + 4);
        const uint64_t abits = get64(r + 8);
        double alpha;
        memcpy(&alpha, &abits, sizeof alpha);
        BP_REQUIRE(n_out >= 1 && n_out <= INT_MAX, BP_ERR_FORMAT,
                   "'%s': layers[%d].n_out %lu at offset %llu is not in [1, %d]", path, (int)i,
                   (unsigned long)n_out, off, INT_MAX);
        BP_REQUIRE(act <= BP_ACT_SOFTMAX, BP_ERR_FORMAT,
                   "'%s': layers[%d].act %lu at offset %llu is not a bp_act (0 .. %d)", path, (int)i,
                   (unsigned long)act, off + 4, (int)BP_ACT_SOFTMAX);
        BP_REQUIRE(isfinite(alpha), BP_ERR_FORMAT, "'%s': layers[%d].alpha at offset %llu is not finite",
                   path, (int)i, off + 8);
        /* n_out, prev + 1 <= 2^31: the product fits in 62 bits, the sum stays far below 2^64. */
        implied += (uint64_t)n_out * (prev + 1);
        BP_REQUIRE(implied <= BP_NET_MAX_PARAMS, BP_ERR_OVERFLOW,
                   "'%s': the parameters up to layers[%d] (offset %llu) exceed BP_NET_MAX_PARAMS (%llu)",
                   path, (int)i, off, (ull)BP_NET_MAX_PARAMS);
        specs[i].n_out = (bp_int)n_out;
        specs[i].act = (bp_act)act;
        specs[i].alpha = alpha;
        prev = n_out;
    }
    const ull np_off = (ull)OFF_LAYERS + (ull)h->n_layers * LAYER_BYTES;
    const uint64_t n_params = get64(t + (size_t)h->n_layers * LAYER_BYTES);
    BP_REQUIRE(n_params == implied, BP_ERR_FORMAT,
               "'%s': n_params %llu at offset %llu differs from the %llu the layer table implies", path,
               (ull)n_params, np_off, (ull)implied);
    /* At most 2^33 parameters of 8 bytes and a 16 KiB header: no overflow. */
    h->n_params = (size_t)n_params;
    h->params_off = np_off + N_PARAMS_BYTES;
    h->crc_off = h->params_off + n_params * h->esize;
    const uint64_t expected = h->crc_off + CRC_BYTES;
    BP_REQUIRE(size >= expected, BP_ERR_FORMAT,
               "'%s': truncated: %llu bytes, but the header implies %llu (parameters at offset %llu, CRC at %llu)",
               path, (ull)size, (ull)expected, (ull)h->params_off, (ull)h->crc_off);
    BP_REQUIRE(size == expected, BP_ERR_FORMAT,
               "'%s': %llu bytes, %llu more than the %llu the header implies (trailing data at offset %llu)",
               path, (ull)size, (ull)(size - expected), (ull)expected, (ull)expected);
    return BP_OK;
}

/* Runs the CRC over the parameter bytes and, when params is not NULL, decodes them into it. */
static bp_status read_params(const char *fn, const char *path, int fd, const model_header *h, void *params,
                             uLong *crc)
{
    unsigned char buf[CHUNK];
    const uint64_t total = (uint64_t)h->n_params * h->esize;
    size_t k = 0;   /* next parameter */
    for (uint64_t done = 0; done < total;) {
        const size_t n = total - done < CHUNK ? (size_t)(total - done) : CHUNK;
        const bp_status st = read_exact(fn, path, fd, buf, n, h->params_off + done);
        if (st)
            return st;
        *crc = crc32(*crc, buf, (uInt)n);
        if (params && h->dtype == BP_F32) {
            float *p = params;
            for (size_t j = 0; j < n; j += 4, k++) {
                const uint32_t u = get32(buf + j);
                memcpy(&p[k], &u, sizeof u);
            }
        } else if (params) {
            double *p = params;
            for (size_t j = 0; j < n; j += 8, k++) {
                const uint64_t u = get64(buf + j);
                memcpy(&p[k], &u, sizeof u);
            }
        }
        done += n;
    }
    return BP_OK;
}

/* Everything between opening and closing the file. */
static bp_status load_fd(const char *fn, const char *path, int fd, const bp_allocator *alloc, bp_net **out)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return io_fail(fn, path, "fstat", errno);
    if (!S_ISREG(sb.st_mode))
        return bp__fail(BP_ERR_IO, fn, "'%s': not a regular file", path);
    const uint64_t size = (uint64_t)sb.st_size;

    /* The fixed header first: nothing is allocated before its sizes are checked. */
    unsigned char fixed[OFF_LAYERS];
    BP_REQUIRE(size >= sizeof model_magic, BP_ERR_FORMAT,
               "'%s': %llu bytes, too short for the magic at offset 0 (8 bytes): not a backprop model file",
               path, (ull)size);
    const size_t nfixed = size < OFF_LAYERS ? (size_t)size : OFF_LAYERS;
    bp_status st = read_exact(fn, path, fd, fixed, nfixed, 0);
    if (st)
        return st;
    model_header h;
    memset(&h, 0, sizeof h);   /* check_fixed fills it; this only quiets -Wmaybe-uninitialized */
    if ((st = check_fixed(fn, path, fixed, size, &h)))
        return st;

    /* The layer table and n_params: at most BP_NET_MAX_LAYERS x 16 + 8 bytes. */
    const size_t hbytes = header_bytes((uint32_t)h.n_layers);
    BP_REQUIRE(size >= hbytes, BP_ERR_FORMAT,
               "'%s': truncated: %llu bytes, but the layer table and n_params end at offset %llu", path,
               (ull)size, (ull)hbytes);
    const bp_allocator a = alloc ? *alloc : bp__default_allocator;
    const size_t tbytes = hbytes - OFF_LAYERS;
    const size_t sbytes = (size_t)h.n_layers * sizeof(bp_layer_spec);
    void *tmp = a.alloc(a.ctx, sbytes + tbytes);
    if (!tmp)
        return bp__fail(BP_ERR_NOMEM, fn, "'%s': allocating %zu bytes for the layer table", path, sbytes + tbytes);
    bp_layer_spec *specs = tmp;
    unsigned char *table = (unsigned char *)tmp + sbytes;
    bp_net *net = NULL;
    if ((st = read_exact(fn, path, fd, table, tbytes, OFF_LAYERS)))
        goto done;
    if ((st = check_table(fn, path, table, size, &h, specs)))
        goto done;

    /* The CRC, over the whole file, before creating the network. */
    h.crc = crc32(crc32(crc32(0L, Z_NULL, 0), fixed, OFF_LAYERS), table, (uInt)tbytes);
    uLong crc = h.crc;
    unsigned char cb[CRC_BYTES];
    if ((st = read_params(fn, path, fd, &h, NULL, &crc)) || (st = read_exact(fn, path, fd, cb, CRC_BYTES, h.crc_off)))
        goto done;
    const uint32_t stored = get32(cb);
    if ((uint32_t)crc != stored) {
        st = bp__fail(BP_ERR_FORMAT, fn, "'%s': CRC-32 mismatch: 0x%08lx stored at offset %llu, 0x%08lx computed",
                      path, (unsigned long)stored, (ull)h.crc_off, (unsigned long)(uint32_t)crc);
        goto done;
    }

    st = bp_net_create(&net, h.dtype, h.n_in, h.n_layers, specs, h.loss, &a);
    if (st) {
        /* bp_net_create's message names the field; copy it, it lives in the buffer bp__fail writes. */
        char why[400];
        snprintf(why, sizeof why, "%s", bp_last_error());
        const char *p = strncmp(why, "bp_net_create: ", 15) == 0 ? why + 15 : why;
        if (st == BP_ERR_ARG)
            st = bp__fail(BP_ERR_FORMAT, fn, "'%s': the layer table (offset %d) or loss (offset %d) is invalid: %s",
                          path, OFF_LAYERS, OFF_LOSS, p);
        else
            st = bp__fail(st, fn, "'%s': creating the network: %s", path, p);
        net = NULL;
        goto done;
    }

    /* Read the parameters again, into the network; the CRC guards against a change in between. */
    crc = h.crc;
    if ((st = read_params(fn, path, fd, &h, net->params, &crc)))
        goto done;
    if ((uint32_t)crc != stored) {
        st = bp__fail(BP_ERR_FORMAT, fn, "'%s': the file changed while being read (CRC-32 0x%08lx, then 0x%08lx)",
                      path, (unsigned long)stored, (unsigned long)(uint32_t)crc);
        goto done;
    }
    *out = net;
    net = NULL;

done:
    bp_net_destroy(net);
    a.free(a.ctx, tmp);
    return st;
}

bp_status bp_model_load(bp_net **out, const char *path, const bp_allocator *alloc)
{
    const char *fn = __func__;
    BP_CHECK_PTR(out);
    BP_CHECK_PTR(path);
    BP_REQUIRE(path[0] != '\0', BP_ERR_ARG, "path is empty");
    BP_REQUIRE(!alloc || (alloc->alloc && alloc->free), BP_ERR_ARG, "alloc has a NULL alloc or free");
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return io_fail(fn, path, "opening", errno);
    const bp_status st = load_fd(fn, path, fd, alloc, out);
    close(fd);
    return st;
}
