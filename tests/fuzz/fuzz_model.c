/* fuzz_model.c: libFuzzer target for bp_model_load, and for a network it loads, the save-and-load round trip. */
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

/* The same architecture (alpha bitwise) and bitwise the same parameters. */
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
}

/* The layout leaves no choice (one version, a fixed byte order, n_params implied by the layers,
 * the CRC of the rest, nothing after it): saving a loaded network writes its file again. */
static void check_saved_bytes(const char *path, const uint8_t *file, size_t len)
{
    FILE *f = fopen(path, "rb");
    FUZZ_CHECK(f != NULL, "cannot reopen the saved model %s", path);
    uint8_t *saved = malloc(len + 1);
    FUZZ_CHECK(saved != NULL, "malloc");
    const size_t got = fread(saved, 1, len + 1, f);
    fclose(f);
    FUZZ_CHECK(got == len && memcmp(saved, file, len) == 0,
               "the saved file (%zu bytes) is not the loaded one (%zu bytes) byte for byte", got, len);
    free(saved);
}

static void round_trip(bp_net *net, const uint8_t *file, size_t len)
{
    const char *path = fuzz_temp_path("model.bpm");
    FUZZ_CHECK(bp_model_save(net, path) == BP_OK, "saving a loaded network: %s", bp_last_error());
    check_saved_bytes(path, file, len);
    bp_net *again = NULL;
    FUZZ_CHECK(bp_model_load(&again, path, &fuzz_alloc) == BP_OK, "loading a saved network: %s", bp_last_error());
    check_same(net, again);
    bp_net_destroy(again);
}

static void load_and_check(const uint8_t *file, size_t len)
{
    fuzz_begin();
    const char *path = fuzz_file(0, file, len, 0);
    bp_net *net;
    fuzz_sentinel(&net, sizeof net);
    const bp_status st = bp_model_load(&net, path, &fuzz_alloc);
    if (st != BP_OK) {
        fuzz_check_failure("bp_model_load", st, model_errors, &net, sizeof net);
        return;
    }
    check_shape(net);
    round_trip(net, file, len);
    bp_net_destroy(net);
    FUZZ_CHECK(fuzz_live_blocks() == 0, "%zu blocks stay allocated after bp_net_destroy", fuzz_live_blocks());
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input is loaded as it is and, when its last 4 bytes are not the CRC-32 of the rest, once
 * more with that CRC put right: a mutation almost never keeps the CRC valid, and without this
 * the checks behind it (the layer table, the network) would stay out of reach. */
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
