/* SPDX-License-Identifier: MIT */
/* model_load.c: loading a model file (layout in backprop/io.h): every field checked before
 * anything is allocated, the CRC before the network is created, then the optional sections. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
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
#include "io/model_format.h"
#include "net/net_internal.h"
#include "optim/optim_internal.h"

typedef unsigned long long ull;

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

/* The validated header, and where each part of the file starts. */
typedef struct model_header {
    uint32_t version;
    bp_dtype dtype;
    bp_loss loss;
    bp_int n_in, n_layers;
    size_t n_params, esize;
    uint64_t params_off, sec_off, crc_off;   /* the parameters, the sections (version 2), the CRC */
    int n_sections;
    struct {
        model_section kind;
        uint64_t off, len;                   /* of the payload */
    } sec[N_SECTION_KINDS];                  /* in file order */
    uLong crc;                               /* CRC of the header bytes */
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
    BP_REQUIRE(loss == BP_LOSS_SOFTMAX_XENT || loss == BP_LOSS_SIGMOID_BCE || bp__loss_squared((bp_loss)loss),
               BP_ERR_FORMAT, "'%s': loss %lu at offset %d is not a bp_loss (1 .. 4)", path,
               (unsigned long)loss, OFF_LOSS);
    const uint32_t n_in = get32(b + OFF_N_IN);
    BP_REQUIRE(n_in >= 1 && n_in <= INT_MAX, BP_ERR_FORMAT, "'%s': n_in %lu at offset %d is not in [1, %d]",
               path, (unsigned long)n_in, OFF_N_IN, INT_MAX);
    const uint32_t n_layers = get32(b + OFF_N_LAYERS);
    BP_REQUIRE(n_layers >= 1 && n_layers <= BP_NET_MAX_LAYERS, BP_ERR_FORMAT,
               "'%s': n_layers %lu at offset %d is not in [1, %d] (BP_NET_MAX_LAYERS)", path,
               (unsigned long)n_layers, OFF_N_LAYERS, BP_NET_MAX_LAYERS);
    h->version = version;
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
    h->sec_off = h->params_off + n_params * h->esize;
    BP_REQUIRE(size >= h->sec_off + CRC_BYTES, BP_ERR_FORMAT,
               "'%s': truncated: %llu bytes, but the parameters at offset %llu end at %llu, before the CRC",
               path, (ull)size, (ull)h->params_off, (ull)h->sec_off);
    return BP_OK;
}

/* Section i's header b (tag, length) at offset off: a known tag, not seen before, a length
 * its tag allows that ends before the CRC. */
static bp_status check_section(const char *fn, const char *path, model_header *h, const unsigned char *b,
                               uint64_t off, uint64_t size, int i)
{
    int kind = 0;
    while (kind < N_SECTION_KINDS && memcmp(b, model_section_tag[kind], 4) != 0)
        kind++;
    BP_REQUIRE(kind < N_SECTION_KINDS, BP_ERR_FORMAT,
               "'%s': section %d at offset %llu has an unknown tag (not STDZ, OPTM or TRST)", path, i, (ull)off);
    for (int j = 0; j < i; j++)
        BP_REQUIRE(h->sec[j].kind != (model_section)kind, BP_ERR_FORMAT,
                   "'%s': section %s at offset %llu appears twice", path, model_section_tag[kind], (ull)off);
    const uint64_t len = get64(b + 4), room = size - CRC_BYTES - off - SECTION_HEAD_BYTES;
    BP_REQUIRE(len <= room, BP_ERR_FORMAT,
               "'%s': section %s at offset %llu: its length %llu runs past the CRC (%llu bytes left)", path,
               model_section_tag[kind], (ull)off, (ull)len, (ull)room);
    /* OPTM's full length depends on its kind, decoded later (decode_optim): here its head. */
    const uint64_t need = kind == SEC_STDZ   ? stdz_bytes((uint64_t)h->n_in)
                          : kind == SEC_TRST ? TRST_BYTES
                                             : OPTM_HEAD_BYTES;
    BP_REQUIRE(kind == SEC_OPTM ? len >= need : len == need, BP_ERR_FORMAT,
               "'%s': section %s at offset %llu: length %llu, expected %llu", path, model_section_tag[kind],
               (ull)off, (ull)len, (ull)need);
    h->sec[i].kind = (model_section)kind;
    h->sec[i].off = off + SECTION_HEAD_BYTES;
    h->sec[i].len = len;
    return BP_OK;
}

/* The version-2 section list after the parameters (version 1 has none): each tag known and at
 * most once, each length as its tag requires and within the file, nothing after the CRC. */
static bp_status check_sections(const char *fn, const char *path, int fd, uint64_t size, model_header *h)
{
    uint64_t off = h->sec_off;
    if (h->version >= 2) {
        unsigned char b[SECTION_HEAD_BYTES];
        BP_REQUIRE(size >= off + N_SECTIONS_BYTES + CRC_BYTES, BP_ERR_FORMAT,
                   "'%s': truncated: no room for n_sections at offset %llu", path, (ull)off);
        TRY(read_exact(fn, path, fd, b, N_SECTIONS_BYTES, off));
        const uint32_t n = get32(b);
        BP_REQUIRE(n <= N_SECTION_KINDS, BP_ERR_FORMAT, "'%s': n_sections %lu at offset %llu is not in [0, %d]",
                   path, (unsigned long)n, (ull)off, (int)N_SECTION_KINDS);
        off += N_SECTIONS_BYTES;
        for (uint32_t i = 0; i < n; i++) {
            BP_REQUIRE(size - CRC_BYTES - off >= SECTION_HEAD_BYTES, BP_ERR_FORMAT,
                       "'%s': truncated: section %lu's header at offset %llu runs into the CRC", path,
                       (unsigned long)i, (ull)off);
            TRY(read_exact(fn, path, fd, b, SECTION_HEAD_BYTES, off));
            TRY(check_section(fn, path, h, b, off, size, (int)i));
            off = h->sec[i].off + h->sec[i].len;
        }
        h->n_sections = (int)n;
    }
    h->crc_off = off;
    const uint64_t expected = off + CRC_BYTES;
    BP_REQUIRE(size == expected, BP_ERR_FORMAT,
               "'%s': %llu bytes, %llu more than the %llu the header implies (trailing data at offset %llu)",
               path, (ull)size, (ull)(size - expected), (ull)expected, (ull)expected);
    return BP_OK;
}

/* Reads `bytes` bytes at off into the running CRC and, when dst is not NULL, decodes them into
 * dst as values of esize bytes (4 or 8: IEEE bits; 1: raw bytes). */
static bp_status read_values(const char *fn, const char *path, int fd, uint64_t off, uint64_t bytes,
                             size_t esize, void *dst, uLong *crc)
{
    unsigned char buf[CHUNK];
    size_t k = 0;   /* next value */
    for (uint64_t done = 0; done < bytes;) {
        const size_t n = bytes - done < CHUNK ? (size_t)(bytes - done) : CHUNK;
        TRY(read_exact(fn, path, fd, buf, n, off + done));
        *crc = crc32(*crc, buf, (uInt)n);
        for (size_t j = 0; dst && j < n; j += esize, k++) {
            if (esize == 4) {
                const uint32_t u = get32(buf + j);
                memcpy((float *)dst + k, &u, sizeof u);
            } else if (esize == 8) {
                const uint64_t u = get64(buf + j);
                memcpy((double *)dst + k, &u, sizeof u);
            } else {
                ((unsigned char *)dst)[k] = buf[j];
            }
        }
        done += n;
    }
    return BP_OK;
}

/* Fails with status st and "'path': what: " followed by the last error without its function's
 * name (copied first: it lives in the buffer bp__fail writes). */
static bp_status fail_after(bp_status st, const char *fn, const char *path, const char *what)
{
    char why[400];
    snprintf(why, sizeof why, "%s", bp_last_error());
    const char *colon = strstr(why, ": ");
    return bp__fail(st, fn, "'%s': %s: %s", path, what, colon ? colon + 2 : why);
}

/* What a load decodes besides the network: where the caller wants them. */
typedef struct extras {
    bp_optim **opt;          /* NULL: the optimizer section is only checked by its CRC */
    bp_train_state *state;   /* NULL: likewise the training state */
    bp_optim *opt_made;
    bp_train_state st;
} extras;

static bp_status decode_stdz(const char *fn, const char *path, int fd, const model_header *h, int i, bp_net *net,
                             uLong *crc)
{
    double *ms = bp__net_alloc(net, (size_t)h->sec[i].len);
    if (!ms)
        return bp__fail(BP_ERR_NOMEM, fn, "'%s': allocating the standardisation of %d features", path, (int)h->n_in);
    bp_status st = read_values(fn, path, fd, h->sec[i].off, h->sec[i].len, 8, ms, crc);
    const bp_status set = st == BP_OK ? bp_net_set_standardization(net, ms, ms + h->n_in) : BP_OK;
    if (set == BP_ERR_NOMEM)
        st = bp__fail(BP_ERR_NOMEM, fn, "'%s': allocating the standardisation of %d features", path, (int)h->n_in);
    else if (set != BP_OK)
        st = bp__fail(BP_ERR_FORMAT, fn,
                      "'%s': section STDZ at offset %llu: a mean is not finite or a deviation not finite and >= 0",
                      path, (ull)h->sec[i].off);
    bp__net_free(net, ms);
    return st;
}

/* The optimizer's configuration from the head of its section. */
static bp_status decode_optim_config(const char *fn, const char *path, const unsigned char *b, uint64_t off,
                                     bp_optim_config *c, long *steps)
{
    /* step_size and t_max are signed (two's complement): a schedule that does not read one
     * may hold any long there, negative included. */
    const uint64_t us = get64(b + OPTM_COUNTS_AT), ut = get64(b + OPTM_COUNTS_AT + 8),
                   n = get64(b + OPTM_COUNTS_AT + 16);
    const int64_t step_size = us > INT64_MAX ? -(int64_t)(~us) - 1 : (int64_t)us;
    const int64_t t_max = ut > INT64_MAX ? -(int64_t)(~ut) - 1 : (int64_t)ut;
    BP_REQUIRE(step_size >= LONG_MIN && step_size <= LONG_MAX && t_max >= LONG_MIN && t_max <= LONG_MAX &&
                   n < LONG_MAX, BP_ERR_FORMAT,
               "'%s': section OPTM at offset %llu: step_size, t_max or steps is out of range of a long", path,
               (ull)off);
    memset(c, 0, sizeof *c);
    c->kind = (bp_optimizer)get32(b);
    c->schedule = (bp_schedule)get32(b + 4);
    double *const d[OPTM_N_DOUBLES] = OPTM_DOUBLES(c);
    for (int i = 0; i < OPTM_N_DOUBLES; i++) {
        const uint64_t u = get64(b + OPTM_DOUBLES_AT + 8 * i);
        memcpy(d[i], &u, sizeof u);
    }
    c->step_size = (long)step_size;
    c->t_max = (long)t_max;
    *steps = (long)n;
    return BP_OK;
}

static bp_status decode_optim(const char *fn, const char *path, int fd, const model_header *h, int i, bp_net *net,
                              extras *x, uLong *crc)
{
    unsigned char b[OPTM_HEAD_BYTES];
    const uint64_t off = h->sec[i].off;
    TRY(read_values(fn, path, fd, off, OPTM_HEAD_BYTES, 1, b, crc));
    bp_optim_config c;
    long steps = 0;
    TRY(decode_optim_config(fn, path, b, off, &c, &steps));
    bp_optim *opt = NULL;
    const bp_status st = bp_optim_create(&opt, net, &c);
    if (st != BP_OK) {
        char what[64];
        snprintf(what, sizeof what, "section OPTM at offset %llu", (ull)off);
        return fail_after(st == BP_ERR_ARG ? BP_ERR_FORMAT : st, fn, path, what);
    }
    x->opt_made = opt;
    const bp__optim_view v = bp__optim_state(opt);
    const uint64_t buf = (uint64_t)net->n_params * net->esize, k = (v.m != NULL) + (v.v != NULL);
    const uint64_t need = optm_bytes(k, net->n_params, net->esize);
    BP_REQUIRE(h->sec[i].len == need, BP_ERR_FORMAT,
               "'%s': section OPTM at offset %llu: length %llu, but %llu moment buffers of %llu bytes need %llu",
               path, (ull)off, (ull)h->sec[i].len, (ull)k, (ull)buf, (ull)need);
    *v.steps = steps;
    if (v.m)
        TRY(read_values(fn, path, fd, off + OPTM_HEAD_BYTES, buf, net->esize, v.m, crc));
    if (v.v)
        TRY(read_values(fn, path, fd, off + OPTM_HEAD_BYTES + buf, buf, net->esize, v.v, crc));
    return BP_OK;
}

static bp_status decode_trst(const char *fn, const char *path, int fd, const model_header *h, int i, extras *x,
                             uLong *crc)
{
    unsigned char b[TRST_BYTES];
    TRY(read_values(fn, path, fd, h->sec[i].off, TRST_BYTES, 1, b, crc));
    const uint64_t e = get64(b);
    BP_REQUIRE(e <= LONG_MAX, BP_ERR_FORMAT, "'%s': section TRST at offset %llu: epochs_done exceeds LONG_MAX", path,
               (ull)h->sec[i].off);
    x->st.epochs_done = (long)e;
    for (int j = 0; j < 4; j++)
        x->st.rng[j] = get64(b + 8 + 8 * j);
    return BP_OK;
}

/* Everything after the parameters, into the network and x, each byte through the CRC. */
static bp_status decode_sections(const char *fn, const char *path, int fd, const model_header *h, bp_net *net,
                                 extras *x, uLong *crc)
{
    if (h->version < 2)
        return BP_OK;
    TRY(read_values(fn, path, fd, h->sec_off, N_SECTIONS_BYTES, 1, NULL, crc));
    for (int i = 0; i < h->n_sections; i++) {
        TRY(read_values(fn, path, fd, h->sec[i].off - SECTION_HEAD_BYTES, SECTION_HEAD_BYTES, 1, NULL, crc));
        const model_section kind = h->sec[i].kind;
        if (kind == SEC_STDZ)
            TRY(decode_stdz(fn, path, fd, h, i, net, crc));
        else if (kind == SEC_OPTM && x->opt)
            TRY(decode_optim(fn, path, fd, h, i, net, x, crc));
        else if (kind == SEC_TRST && x->state)
            TRY(decode_trst(fn, path, fd, h, i, x, crc));
        else
            TRY(read_values(fn, path, fd, h->sec[i].off, h->sec[i].len, 1, NULL, crc));
    }
    return BP_OK;
}

/* Creates the network the checked header describes; a layer table bp_net_create refuses is a
 * format error naming the field. */
static bp_status create_net(const char *fn, const char *path, const model_header *h, const bp_layer_spec *specs,
                            const bp_allocator *a, bp_net **net)
{
    const bp_status st = bp_net_create(net, h->dtype, h->n_in, h->n_layers, specs, h->loss, a);
    if (st == BP_OK)
        return st;
    *net = NULL;
    if (st != BP_ERR_ARG)
        return fail_after(st, fn, path, "creating the network");
    char what[96];
    snprintf(what, sizeof what, "the layer table (offset %d) or loss (offset %d) is invalid", OFF_LAYERS, OFF_LOSS);
    return fail_after(BP_ERR_FORMAT, fn, path, what);
}

/* The header, the layer table and the section list, checked against the file's size; specs
 * (h->n_layers entries) receives the layers. *tmp is the caller's to free. */
static bp_status read_header(const char *fn, const char *path, int fd, uint64_t size, const bp_allocator *a,
                             model_header *h, void **tmp, bp_layer_spec **specs)
{
    /* The fixed header first: nothing is allocated before its sizes are checked. */
    unsigned char fixed[OFF_LAYERS];
    BP_REQUIRE(size >= sizeof model_magic, BP_ERR_FORMAT,
               "'%s': %llu bytes, too short for the magic at offset 0 (8 bytes): not a backprop model file",
               path, (ull)size);
    const size_t nfixed = size < OFF_LAYERS ? (size_t)size : OFF_LAYERS;
    TRY(read_exact(fn, path, fd, fixed, nfixed, 0));
    TRY(check_fixed(fn, path, fixed, size, h));

    /* The layer table and n_params: at most BP_NET_MAX_LAYERS x 16 + 8 bytes. */
    const size_t hbytes = header_bytes((uint32_t)h->n_layers);
    BP_REQUIRE(size >= hbytes, BP_ERR_FORMAT,
               "'%s': truncated: %llu bytes, but the layer table and n_params end at offset %llu", path,
               (ull)size, (ull)hbytes);
    const size_t tbytes = hbytes - OFF_LAYERS, sbytes = (size_t)h->n_layers * sizeof(bp_layer_spec);
    *tmp = a->alloc(a->ctx, sbytes + tbytes);
    if (!*tmp)
        return bp__fail(BP_ERR_NOMEM, fn, "'%s': allocating %zu bytes for the layer table", path, sbytes + tbytes);
    *specs = *tmp;
    unsigned char *table = (unsigned char *)*tmp + sbytes;
    TRY(read_exact(fn, path, fd, table, tbytes, OFF_LAYERS));
    TRY(check_table(fn, path, table, size, h, *specs));
    TRY(check_sections(fn, path, fd, size, h));
    h->crc = crc32(crc32(crc32(0L, Z_NULL, 0), fixed, OFF_LAYERS), table, (uInt)tbytes);
    return BP_OK;
}

/* The network and what x asks for, from the checked file; the CRC is checked once before
 * anything is created, and again over the bytes decoded, so a file changed in between is
 * refused. */
static bp_status decode(const char *fn, const char *path, int fd, const model_header *h, const bp_layer_spec *specs,
                        const bp_allocator *a, bp_net **out, extras *x)
{
    uLong crc = h->crc;
    unsigned char cb[CRC_BYTES];
    TRY(read_values(fn, path, fd, h->params_off, h->crc_off - h->params_off, 1, NULL, &crc));
    TRY(read_exact(fn, path, fd, cb, CRC_BYTES, h->crc_off));
    const uint32_t stored = get32(cb);
    BP_REQUIRE((uint32_t)crc == stored, BP_ERR_FORMAT,
               "'%s': CRC-32 mismatch: 0x%08lx stored at offset %llu, 0x%08lx computed", path,
               (unsigned long)stored, (ull)h->crc_off, (unsigned long)(uint32_t)crc);

    bp_net *net;
    TRY(create_net(fn, path, h, specs, a, &net));
    crc = h->crc;
    bp_status st = read_values(fn, path, fd, h->params_off, (uint64_t)h->n_params * h->esize, h->esize, net->params,
                               &crc);
    if (st == BP_OK)
        st = decode_sections(fn, path, fd, h, net, x, &crc);
    if (st == BP_OK && (uint32_t)crc != stored)
        st = bp__fail(BP_ERR_FORMAT, fn, "'%s': the file changed while being read (CRC-32 0x%08lx, then 0x%08lx)",
                      path, (unsigned long)stored, (unsigned long)(uint32_t)crc);
    if (st != BP_OK) {
        bp_optim_destroy(x->opt_made);
        x->opt_made = NULL;
        bp_net_destroy(net);
        return st;
    }
    *out = net;
    return BP_OK;
}

/* Everything between opening and closing the file. */
static bp_status load_fd(const char *fn, const char *path, int fd, const bp_allocator *alloc, bp_net **out,
                         extras *x)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return io_fail(fn, path, "fstat", errno);
    if (!S_ISREG(sb.st_mode))
        return bp__fail(BP_ERR_IO, fn, "'%s': not a regular file", path);
    const bp_allocator a = alloc ? *alloc : bp__default_allocator;
    model_header h;
    memset(&h, 0, sizeof h);
    void *tmp = NULL;
    bp_layer_spec *specs = NULL;
    bp_status st = read_header(fn, path, fd, (uint64_t)sb.st_size, &a, &h, &tmp, &specs);
    if (st == BP_OK)
        st = decode(fn, path, fd, &h, specs, &a, out, x);
    if (tmp)
        a.free(a.ctx, tmp);
    return st;
}

static bp_status load(const char *fn, bp_net **out, extras *x, const char *path, const bp_allocator *alloc)
{
    BP_CHECK_PTR(out);
    BP_CHECK_PTR(path);
    BP_REQUIRE(path[0] != '\0', BP_ERR_ARG, "path is empty");
    BP_REQUIRE(!alloc || (alloc->alloc && alloc->free), BP_ERR_ARG, "alloc has a NULL alloc or free");
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return io_fail(fn, path, "opening", errno);
    const bp_status st = load_fd(fn, path, fd, alloc, out, x);
    close(fd);
    return st;
}

bp_status bp_model_load(bp_net **out, const char *path, const bp_allocator *alloc)
{
    extras x = {NULL, NULL, NULL, {0, {0, 0, 0, 0}}};
    return load(__func__, out, &x, path, alloc);
}

bp_status bp_model_load_state(bp_net **net, bp_optim **opt, bp_train_state *state, const char *path,
                              const bp_allocator *alloc)
{
    extras x = {opt, state, NULL, {0, {0, 0, 0, 0}}};
    TRY(load(__func__, net, &x, path, alloc));
    if (opt)
        *opt = x.opt_made;
    if (state)
        *state = x.st;
    return BP_OK;
}
