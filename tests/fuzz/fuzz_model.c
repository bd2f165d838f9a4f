/* SPDX-License-Identifier: MIT */
/* fuzz_model.c: libFuzzer target for bp_model_load_state (network, standardisation, optimizer and
 * training state) and bp_model_load, and for what they load, the save-and-load round trip. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fuzz_util.h"

/* io.h names BP_ERR_FORMAT and BP_ERR_UNSUPPORTED; the load also returns BP_ERR_OVERFLOW for a
 * layer table over BP_NET_MAX_PARAMS and BP_ERR_NOMEM, as every allocating call may. */
static const unsigned model_errors = FUZZ_STATUS(BP_ERR_FORMAT) | FUZZ_STATUS(BP_ERR_UNSUPPORTED) |
                                     FUZZ_STATUS(BP_ERR_OVERFLOW) | FUZZ_STATUS(BP_ERR_NOMEM);

/* Everything bp_model_load_state writes, in one block, so that "untouched on error" is one
 * sentinel check. */
typedef struct loaded {
    bp_net *net;
    bp_optim *opt;
    bp_train_state st;
} loaded;

static bp_layer_view layer(bp_net *net, bp_int i)
{
    bp_layer_view v;
    FUZZ_CHECK(bp_net_layer(net, i, &v) == BP_OK, "bp_net_layer(%d): %s", (int)i, bp_last_error());
    return v;
}

/* A loaded network is one bp_net_create accepts: layers chained from n_in, each with a known
 * activation and a finite alpha, the parameters laid out layer after layer. */
static void check_shape(bp_net *net)
{
    const bp_int n_layers = bp_net_n_layers(net);
    FUZZ_CHECK(n_layers >= 1 && n_layers <= BP_NET_MAX_LAYERS, "n_layers %d", (int)n_layers);
    bp_int prev = bp_net_n_in(net);
    FUZZ_CHECK(prev >= 1, "n_in %d", (int)prev);
    size_t offset = 0;
    for (bp_int i = 0; i < n_layers; i++) {
        const bp_layer_view v = layer(net, i);
        FUZZ_CHECK(v.n_in == prev && v.n_out >= 1 && v.offset == offset, "layer %d: n_in %d, n_out %d, offset %zu",
                   (int)i, (int)v.n_in, (int)v.n_out, v.offset);
        FUZZ_CHECK(bp_act_name(v.act) != NULL && isfinite(v.alpha), "layer %d: act %d, alpha %g", (int)i, (int)v.act,
                   v.alpha);
        offset += (size_t)v.n_out * ((size_t)v.n_in + 1);
        prev = v.n_out;
    }
    FUZZ_CHECK(offset == bp_net_n_params(net), "n_params %zu, the layers hold %zu", bp_net_n_params(net), offset);
}

/* A standardisation, when there is one, is what bp_net_set_standardization accepts: finite means,
 * finite deviations >= 0. */
static void check_stdz(bp_net *net)
{
    if (!bp_net_has_standardization(net))
        return;
    const size_t d = (size_t)bp_net_n_in(net);
    double *ms = malloc(2 * d * sizeof *ms);
    FUZZ_CHECK(ms != NULL, "malloc");
    FUZZ_CHECK(bp_net_standardization(net, ms, ms + d) == BP_OK, "bp_net_standardization: %s", bp_last_error());
    for (size_t j = 0; j < d; j++)
        FUZZ_CHECK(isfinite(ms[j]) && isfinite(ms[d + j]) && ms[d + j] >= 0, "feature %zu: mean %g, std %g", j, ms[j],
                   ms[d + j]);
    free(ms);
}

/* What else a load returns: an optimizer with a step count that can still grow and a scheduled
 * rate bp_optim_create's checks imply (finite, >= 0), and a training state with epochs_done >= 0. */
static void check_extras(const loaded *l)
{
    if (l->opt) {
        const long steps = bp_optim_steps(l->opt);
        const double lr = bp_optim_lr(l->opt);
        FUZZ_CHECK(steps >= 0 && steps < LONG_MAX, "the loaded optimizer's step count %ld", steps);
        FUZZ_CHECK(isfinite(lr) && lr >= 0, "the loaded optimizer's next rate %g", lr);
    }
    FUZZ_CHECK(l->st.epochs_done >= 0, "the loaded state's epochs_done %ld", l->st.epochs_done);
}

/* The same architecture (alpha bitwise), bitwise the same parameters and standardisation. */
static void check_same(bp_net *a, bp_net *b)
{
    FUZZ_CHECK(bp_net_dtype(a) == bp_net_dtype(b) && bp_net_loss(a) == bp_net_loss(b) &&
                   bp_net_n_in(a) == bp_net_n_in(b) && bp_net_n_layers(a) == bp_net_n_layers(b) &&
                   bp_net_n_params(a) == bp_net_n_params(b),
               "the reloaded network differs in dtype, loss, n_in, n_layers or n_params");
    for (bp_int i = 0; i < bp_net_n_layers(a); i++) {
        const bp_layer_view u = layer(a, i), v = layer(b, i);
        FUZZ_CHECK(u.n_in == v.n_in && u.n_out == v.n_out && u.act == v.act &&
                       memcmp(&u.alpha, &v.alpha, sizeof u.alpha) == 0,
                   "layer %d differs after the round trip", (int)i);
    }
    const size_t bytes = bp_net_n_params(a) * (bp_net_dtype(a) == BP_F32 ? sizeof(float) : sizeof(double));
    FUZZ_CHECK(memcmp(bp_net_params(a), bp_net_params(b), bytes) == 0, "the parameters differ after the round trip");
    FUZZ_CHECK(!bp_net_has_standardization(a) == !bp_net_has_standardization(b),
               "the standardisation is lost or gained in the round trip");
    if (bp_net_has_standardization(a)) {
        const size_t d = (size_t)bp_net_n_in(a);
        double *x = malloc(4 * d * sizeof *x);
        FUZZ_CHECK(x != NULL, "malloc");
        FUZZ_CHECK(bp_net_standardization(a, x, x + d) == BP_OK &&
                       bp_net_standardization(b, x + 2 * d, x + 3 * d) == BP_OK,
                   "bp_net_standardization: %s", bp_last_error());
        FUZZ_CHECK(memcmp(x, x + 2 * d, 2 * d * sizeof *x) == 0, "the standardisation differs after the round trip");
        free(x);
    }
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* The sections of a file that loaded (so its layout is valid), in file order ('S' STDZ, 'O' OPTM,
 * 'T' TRST) into order[4]; returns its format version. */
static uint32_t file_sections(const uint8_t *file, bp_net *net, char order[4])
{
    const uint32_t version = le32(file + 8);
    order[0] = '\0';
    if (version < 2)
        return version;
    const size_t esize = bp_net_dtype(net) == BP_F32 ? 4 : 8;
    size_t off = 32 + 16 * (size_t)bp_net_n_layers(net) + 8 + bp_net_n_params(net) * esize;
    const uint32_t n = le32(file + off);
    FUZZ_CHECK(n <= 3, "a file with %lu sections loaded", (unsigned long)n);
    off += 4;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *t = file + off;
        order[i] = !memcmp(t, "STDZ", 4) ? 'S' : !memcmp(t, "OPTM", 4) ? 'O' : !memcmp(t, "TRST", 4) ? 'T' : '?';
        FUZZ_CHECK(order[i] != '?', "a file with an unknown section tag loaded");
        off += 12 + (size_t)le64(t + 4);
    }
    order[n] = '\0';
    return version;
}

/* The file at path, whole; *len its length. */
static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    FUZZ_CHECK(f != NULL, "cannot reopen the saved model %s", path);
    FUZZ_CHECK(fseek(f, 0, SEEK_END) == 0, "fseek");
    const long size = ftell(f);
    FUZZ_CHECK(size >= 0 && fseek(f, 0, SEEK_SET) == 0, "ftell");
    uint8_t *b = malloc((size_t)size + 1);
    FUZZ_CHECK(b != NULL, "malloc");
    *len = fread(b, 1, (size_t)size + 1, f);
    FUZZ_CHECK(*len == (size_t)size, "reading the saved model %s", path);
    fclose(f);
    return b;
}

/* A save writes one file for given objects: the sections it holds in the order STDZ, OPTM, TRST. */
static void save(const loaded *l, int with_state, const char *path)
{
    FUZZ_CHECK(bp_model_save_state(l->net, l->opt, with_state ? &l->st : NULL, path) == BP_OK,
               "saving a loaded network: %s", bp_last_error());
}

/* Loads what was saved at path, every output requested, and checks it against l. */
static loaded reload(const loaded *l, const char *path)
{
    loaded r;
    FUZZ_CHECK(bp_model_load_state(&r.net, &r.opt, &r.st, path, &fuzz_alloc) == BP_OK,
               "loading a saved network: %s", bp_last_error());
    check_same(l->net, r.net);
    FUZZ_CHECK(!r.opt == !l->opt, "the optimizer is lost or gained in the round trip");
    if (r.opt)
        FUZZ_CHECK(bp_optim_steps(r.opt) == bp_optim_steps(l->opt), "the step count differs after the round trip");
    return r;
}

static void release(loaded *l)
{
    bp_optim_destroy(l->opt);
    bp_net_destroy(l->net);
    l->opt = NULL;
    l->net = NULL;
}

/* Saving what was loaded. A canonical file (format 2, its sections in the order a save writes
 * them) comes back byte for byte: the layout leaves no other choice. Any other (format 1, sections
 * in another order) is rewritten canonically: then a second load and save must give the first
 * save's bytes. Either way the reloaded objects equal the loaded ones. */
static void round_trip(const loaded *l, const uint8_t *file, size_t len)
{
    char order[4];
    const uint32_t version = file_sections(file, l->net, order);
    const int with_state = strchr(order, 'T') != NULL;
    const int canonical = version == 2 && (!strcmp(order, "") || !strcmp(order, "S") || !strcmp(order, "O") ||
                                           !strcmp(order, "T") || !strcmp(order, "SO") || !strcmp(order, "ST") ||
                                           !strcmp(order, "OT") || !strcmp(order, "SOT"));
    const char *path = fuzz_temp_path("model.bpm");
    save(l, with_state, path);
    loaded r = reload(l, path);
    if (canonical) {
        size_t got;
        uint8_t *saved = slurp(path, &got);
        FUZZ_CHECK(got == len && memcmp(saved, file, len) == 0,
                   "the saved file (%zu bytes) is not the loaded canonical one (%zu bytes) byte for byte", got, len);
        free(saved);
    } else {
        size_t first_len, second_len;
        uint8_t *first = slurp(path, &first_len);
        save(&r, with_state, path);
        uint8_t *second = slurp(path, &second_len);
        FUZZ_CHECK(first_len == second_len && memcmp(first, second, first_len) == 0,
                   "a second load and save of a rewritten file (order \"%s\", version %lu) changed it", order,
                   (unsigned long)version);
        free(first);
        free(second);
    }
    release(&r);
}

static void load_and_check(const uint8_t *file, size_t len)
{
    fuzz_begin();
    const char *path = fuzz_file(0, file, len, 0);
    loaded l;
    fuzz_sentinel(&l, sizeof l);
    const bp_status st = bp_model_load_state(&l.net, &l.opt, &l.st, path, &fuzz_alloc);
    /* bp_model_load decodes the network and its standardisation only, the other sections being
     * checked by their CRC: it accepts whatever bp_model_load_state accepts, as the same network
     * (and may accept more: an optimizer or training state bp_model_load_state refuses). */
    bp_net *plain;
    if (st != BP_OK) {
        fuzz_check_failure("bp_model_load_state", st, model_errors, &l, sizeof l);
        fuzz_begin();
        fuzz_sentinel(&plain, sizeof plain);
        const bp_status st_plain = bp_model_load(&plain, path, &fuzz_alloc);
        if (st_plain != BP_OK)
            fuzz_check_failure("bp_model_load", st_plain, model_errors, &plain, sizeof plain);
        else
            bp_net_destroy(plain);
        FUZZ_CHECK(fuzz_live_blocks() == 0, "%zu blocks stay allocated after bp_net_destroy", fuzz_live_blocks());
        return;
    }
    check_shape(l.net);
    check_stdz(l.net);
    check_extras(&l);
    fuzz_begin();
    const bp_status st_plain = bp_model_load(&plain, path, &fuzz_alloc);
    FUZZ_CHECK(st_plain == BP_OK, "bp_model_load refuses (%d) a file bp_model_load_state accepts: %s", (int)st_plain,
               bp_last_error());
    check_same(l.net, plain);
    bp_net_destroy(plain);
    round_trip(&l, file, len);
    release(&l);
    FUZZ_CHECK(fuzz_live_blocks() == 0, "%zu blocks stay allocated after bp_net_destroy", fuzz_live_blocks());
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input is loaded as it is and, when its last 4 bytes are not the CRC-32 of the rest, once
 * more with that CRC put right: a mutation almost never keeps the CRC valid, and without this
 * the checks behind it (the layer table, the sections, the network) would stay out of reach. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    load_and_check(data, size);
    if (size < 4)
        return 0;
    const uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), data, (uInt)(size - 4));
    const uint8_t le[4] = {(uint8_t)crc, (uint8_t)(crc >> 8), (uint8_t)(crc >> 16), (uint8_t)(crc >> 24)};
    if (memcmp(data + size - 4, le, 4) == 0)
        return 0;
    uint8_t *fixed = malloc(size);
    FUZZ_CHECK(fixed != NULL, "malloc");
    memcpy(fixed, data, size - 4);
    memcpy(fixed + size - 4, le, 4);
    load_and_check(fixed, size);
    free(fixed);
    return 0;
}
