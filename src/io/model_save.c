/* SPDX-License-Identifier: MIT */
/* model_save.c: saving a model file (layout in backprop/io.h) atomically, with its optional
 * sections: the standardisation, the optimizer, the training state. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <zlib.h>

#include "backprop/io.h"
#include "io/model_format.h"
#include "net/net_internal.h"
#include "optim/optim_internal.h"

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

/* n values of the dtype (esize 4 or 8) as their IEEE bits. */
static void w_values(writer *w, size_t esize, const void *values, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (esize == 4) {
            uint32_t u;
            memcpy(&u, (const float *)values + k, sizeof u);
            w_u32(w, u);
        } else {
            uint64_t u;
            memcpy(&u, (const double *)values + k, sizeof u);
            w_u64(w, u);
        }
    }
}

static void w_double(writer *w, double x)
{
    w_values(w, 8, &x, 1);
}

static void w_section_head(writer *w, model_section s, uint64_t len)
{
    w_put(w, (const unsigned char *)model_section_tag[s], 4);
    w_u64(w, len);
}

/* The optimizer: its configuration, step count and moments (io.h, "OPTM"). */
static void w_optim(writer *w, const bp_net *net, const bp_optim *opt)
{
    const bp__optim_view v = bp__optim_state(opt);
    const bp_optim_config *c = v.config;
    const size_t k = (size_t)(v.m != NULL) + (size_t)(v.v != NULL);
    w_section_head(w, SEC_OPTM, optm_bytes(k, net->n_params, net->esize));
    w_u32(w, (uint32_t)c->kind);
    w_u32(w, (uint32_t)c->schedule);
    const double *const d[OPTM_N_DOUBLES] = OPTM_DOUBLES(c);
    for (int i = 0; i < OPTM_N_DOUBLES; i++)
        w_double(w, *d[i]);
    w_u64(w, (uint64_t)c->step_size);
    w_u64(w, (uint64_t)c->t_max);
    w_u64(w, (uint64_t)*v.steps);
    if (v.m)
        w_values(w, net->esize, v.m, net->n_params);
    if (v.v)
        w_values(w, net->esize, v.v, net->n_params);
}

/* The version-2 sections: the standardisation, the optimizer, the training state. */
static void w_sections(writer *w, const bp_net *net, const bp_optim *opt, const bp_train_state *state)
{
    w_u32(w, (uint32_t)((net->stdz != NULL) + (opt != NULL) + (state != NULL)));
    if (net->stdz) {
        w_section_head(w, SEC_STDZ, stdz_bytes((uint64_t)net->n_in));
        w_values(w, 8, net->stdz, 2 * (size_t)net->n_in);
    }
    if (opt)
        w_optim(w, net, opt);
    if (state) {
        w_section_head(w, SEC_TRST, TRST_BYTES);
        w_u64(w, (uint64_t)state->epochs_done);
        for (int i = 0; i < 4; i++)
            w_u64(w, state->rng[i]);
    }
}

/* Everything but the CRC goes through the buffer; the CRC follows the flushed data. */
static int write_model(const bp_net *net, const bp_optim *opt, const bp_train_state *state, FILE *f)
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
    w_values(w, net->esize, net->params, net->n_params);
    w_sections(w, net, opt, state);
    w_flush(w);
    const uint32_t crc = (uint32_t)w->crc;
    w_u32(w, crc);
    w_flush(w);
    errno = w->err;
    return w->err ? -1 : 0;
}

static bp_status save(const char *fn, const bp_net *net, const bp_optim *opt, const bp_train_state *state,
                      const char *path)
{
    BP_CHECK_PTR(net);
    BP_CHECK_PTR(path);
    BP_REQUIRE(path[0] != '\0', BP_ERR_ARG, "path is empty");
    if (opt)
        TRY(bp__optim_check_net(fn, opt, net));
    BP_REQUIRE(!state || state->epochs_done >= 0, BP_ERR_ARG, "state->epochs_done (%ld) < 0",
               state ? state->epochs_done : 0L);

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
    if (write_model(net, opt, state, f) != 0) {
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

bp_status bp_model_save(const bp_net *net, const char *path)
{
    return save(__func__, net, NULL, NULL, path);
}

bp_status bp_model_save_state(const bp_net *net, const bp_optim *opt, const bp_train_state *state, const char *path)
{
    return save(__func__, net, opt, state, path);
}
