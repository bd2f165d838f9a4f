/* SPDX-License-Identifier: MIT */
/* attach.c: making a network a replica over a communicator. bp_mpi_attach duplicates the
 * communicator (errors return on the duplicate), compares every rank's network with the root's
 * through one MPI_Allgather of a fixed-size signature (so every rank reports the same first
 * difference, and a rank that refused its arguments still takes part), broadcasts the root's
 * parameters and standardisation, sets the threads and the network's reducer. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mpi/mpi_internal.h"

/* The signature of a rank's network: the fields below, then the width and activation of the
 * first SIG_LAYERS layers, and a hash of every layer (widths, activations, alphas). */
enum { SIG_OK, SIG_DTYPE, SIG_N_IN, SIG_LAYERS_N, SIG_LOSS, SIG_PARAMS, SIG_STDZ, SIG_ROOT, SIG_THREADS_ASK,
       SIG_HASH, SIG_FIXED };
#define SIG_LAYERS 16
#define SIG_LEN (SIG_FIXED + 2 * SIG_LAYERS)

bp_mpi_config bp_mpi_defaults(void)
{
    const bp_mpi_config c = {0, 1, 0};
    return c;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        h = (h ^ (v & 0xff)) * 1099511628211u;  /* FNV-1a */
    return h;
}

/* This rank's signature (sig[SIG_OK] = 0 when its arguments were refused). */
static void signature(bp_net *net, const bp_mpi_config *c, int ok, int64_t *sig)
{
    memset(sig, 0, SIG_LEN * sizeof *sig);
    sig[SIG_OK] = ok;
    if (!ok)
        return;
    const bp_int n_layers = bp_net_n_layers(net);
    uint64_t h = 14695981039346656037u;
    for (bp_int i = 0; i < n_layers; i++) {
        bp_layer_view v;
        bp_net_layer(net, i, &v);
        uint64_t alpha;
        memcpy(&alpha, &v.alpha, sizeof alpha);
        h = mix(mix(mix(mix(h, (uint64_t)v.n_in), (uint64_t)v.n_out), (uint64_t)v.act), alpha);
        if (i < SIG_LAYERS) {
            sig[SIG_FIXED + 2 * i] = v.n_out;
            sig[SIG_FIXED + 2 * i + 1] = v.act;
        }
    }
    sig[SIG_DTYPE] = bp_net_dtype(net);
    sig[SIG_N_IN] = bp_net_n_in(net);
    sig[SIG_LAYERS_N] = n_layers;
    sig[SIG_LOSS] = bp_net_loss(net);
    sig[SIG_PARAMS] = (int64_t)bp_net_n_params(net);
    sig[SIG_STDZ] = bp_net_has_standardization(net);
    sig[SIG_ROOT] = c->root;
    sig[SIG_THREADS_ASK] = c->threads == 0;  /* collective: every rank or none */
    sig[SIG_HASH] = (int64_t)(h >> 1);
}

/* The first difference between rank r's signature s and the root's (rs), as a message; 0 when
 * they agree. */
static int differs(const int64_t *s, const int64_t *rs, char *what, size_t len)
{
    static const char *const names[SIG_FIXED] = {"", "dtype (1 float, 2 double)", "number of inputs",
                                                 "number of layers", "loss", "number of parameters",
                                                 "standardisation (1: present)", "config->root",
                                                 "config->threads == 0", "layers"};
    for (int k = SIG_DTYPE; k < SIG_HASH; k++)  /* the shape first, then the layers, then the rest */
        if (s[k] != rs[k] && k <= SIG_LOSS) {
            snprintf(what, len, "its %s is %lld, the root's %lld", names[k], (long long)s[k], (long long)rs[k]);
            return 1;
        }
    for (int i = 0; i < SIG_LAYERS && i < s[SIG_LAYERS_N]; i++) {
        if (s[SIG_FIXED + 2 * i] != rs[SIG_FIXED + 2 * i]) {
            snprintf(what, len, "its layer %d has %lld outputs, the root's %lld", i, (long long)s[SIG_FIXED + 2 * i],
                     (long long)rs[SIG_FIXED + 2 * i]);
            return 1;
        }
        if (s[SIG_FIXED + 2 * i + 1] != rs[SIG_FIXED + 2 * i + 1]) {
            snprintf(what, len, "its layer %d has activation %lld, the root's %lld", i,
                     (long long)s[SIG_FIXED + 2 * i + 1], (long long)rs[SIG_FIXED + 2 * i + 1]);
            return 1;
        }
    }
    for (int k = SIG_LOSS + 1; k < SIG_HASH; k++)
        if (s[k] != rs[k]) {
            snprintf(what, len, "its %s is %lld, the root's %lld", names[k], (long long)s[k], (long long)rs[k]);
            return 1;
        }
    if (s[SIG_HASH] != rs[SIG_HASH]) {
        snprintf(what, len, "its layers differ from the root's (widths, activations or their alphas)");
        return 1;
    }
    return 0;
}

/* Whether an allocation failed on any rank (ok 0: this rank's did): BP_ERR_NOMEM on every rank
 * then, naming `what`; so that no rank goes on into a collective the others skip. */
static bp_status allocated_everywhere(const char *fn, bp_mpi *dp, int ok, const char *what)
{
    int64_t fail = !ok;
    TRY_MPI(MPI_Allreduce(MPI_IN_PLACE, &fail, 1, MPI_INT64_T, MPI_MAX, dp->comm), "MPI_Allreduce");
    return fail ? bp__mpi_fail(BP_ERR_NOMEM, fn, "a rank could not allocate %s", what) : BP_OK;
}

/* Every rank's signature against the root's: BP_ERR_MISMATCH (the same message on every rank)
 * for the first rank that differs or refused its arguments. */
static bp_status agree(const char *fn, bp_mpi *dp, const int64_t *mine, int local)
{
    int64_t *all = malloc((size_t)dp->size * SIG_LEN * sizeof *all);
    bp_status st = allocated_everywhere(fn, dp, all != NULL, "the ranks' signatures");
    if (st == BP_OK)
        st = bp__mpi_check(MPI_Allgather(mine, SIG_LEN, MPI_INT64_T, all, SIG_LEN, MPI_INT64_T, dp->comm), fn,
                           "MPI_Allgather of the networks' signatures");
    const int64_t *root = all ? all + (size_t)dp->root * SIG_LEN : NULL;
    if (st == BP_OK && local != BP_OK)
        st = local;  /* this rank's own message stands */
    if (st == BP_OK && !root[SIG_OK])
        st = bp__mpi_fail(BP_ERR_MISMATCH, fn, "the root (rank %d) refused its arguments (see its message)",
                          dp->root);
    for (int r = 0; st == BP_OK && r < dp->size; r++) {
        const int64_t *s = all + (size_t)r * SIG_LEN;
        char what[160];
        if (!s[SIG_OK])
            st = bp__mpi_fail(BP_ERR_MISMATCH, fn, "rank %d refused its arguments (see its message)", r);
        else if (s[SIG_ROOT] < 0 || s[SIG_ROOT] >= dp->size || differs(s, root, what, sizeof what))
            st = bp__mpi_fail(BP_ERR_MISMATCH, fn, "rank %d's network does not match the root's (rank %d): %s", r,
                                 dp->root, s[SIG_ROOT] < 0 || s[SIG_ROOT] >= dp->size ? "bad config->root" : what);
    }
    free(all);
    return st;
}

/* Local checks: the arguments, and the attachment's own memory. */
static bp_status prepare(const char *fn, bp_mpi *dp, bp_net *net, const bp_mpi_config *c)
{
    if (net == NULL)
        return bp__mpi_fail(BP_ERR_ARG, fn, "net is NULL");
    if (bp_net_has_reducer(net))
        return bp__mpi_fail(BP_ERR_ARG, fn, "the network already has a reducer (attached twice?)");
    if (c->root < 0 || c->root >= dp->size)
        return bp__mpi_fail(BP_ERR_ARG, fn, "config->root (%d) is not in [0, %d)", c->root, dp->size);
    if (c->overlap != 0 && c->overlap != 1)
        return bp__mpi_fail(BP_ERR_ARG, fn, "config->overlap (%d) is not 0 or 1", c->overlap);
    if (c->threads < -1 || c->threads > BP_NET_MAX_THREADS)
        return bp__mpi_fail(BP_ERR_ARG, fn, "config->threads (%d) is not in [-1, %d]", c->threads,
                               BP_NET_MAX_THREADS);
    dp->net = net;
    dp->n_layers = bp_net_n_layers(net);
    dp->esize = bp_net_dtype(net) == BP_F32 ? sizeof(float) : sizeof(double);
    dp->type = bp_net_dtype(net) == BP_F32 ? MPI_FLOAT : MPI_DOUBLE;
    dp->root = c->root;
    dp->overlap = c->overlap;
    dp->buf = calloc((size_t)dp->n_layers, sizeof *dp->buf);
    dp->count = calloc((size_t)dp->n_layers, sizeof *dp->count);
    dp->req = calloc((size_t)dp->n_layers + 1, sizeof *dp->req);
    dp->rows = calloc((size_t)dp->size, sizeof *dp->rows);
    if (!dp->buf || !dp->count || !dp->req || !dp->rows)
        return bp__mpi_fail(BP_ERR_NOMEM, fn, "allocating the attachment of %d layers", (int)dp->n_layers);
    return BP_OK;
}

/* The root's parameters, in pieces MPI's int count can hold, and its standardisation. */
static bp_status broadcast(const char *fn, bp_mpi *dp)
{
    char *p = bp_net_params(dp->net);
    size_t left = bp_net_n_params(dp->net);
    while (left > 0) {
        const int c = left > INT_MAX ? INT_MAX : (int)left;
        TRY_MPI(MPI_Bcast(p, c, dp->type, dp->root, dp->comm), "MPI_Bcast of the parameters");
        p += (size_t)c * dp->esize;
        left -= (size_t)c;
    }
    if (!bp_net_has_standardization(dp->net))
        return BP_OK;
    const bp_int n_in = bp_net_n_in(dp->net);
    double *ms = malloc(2 * (size_t)n_in * sizeof *ms);
    bp_status st = allocated_everywhere(fn, dp, ms != NULL, "the standardisation");
    if (st == BP_OK)
        st = bp_net_standardization(dp->net, ms, ms + n_in);
    if (st == BP_OK)
        st = bp__mpi_check(MPI_Bcast(ms, 2 * n_in, MPI_DOUBLE, dp->root, dp->comm), fn,
                           "MPI_Bcast of the standardisation");
    if (st == BP_OK)
        st = bp_net_set_standardization(dp->net, ms, ms + n_in);
    free(ms);
    return st;
}

static void release(bp_mpi *dp)
{
    free(dp->buf);
    free(dp->count);
    free(dp->req);
    free(dp->rows);
    if (dp->comm != MPI_COMM_NULL)
        MPI_Comm_free(&dp->comm);
    free(dp);
}

bp_status bp_mpi_attach(bp_mpi **out, bp_net *net, MPI_Comm comm, const bp_mpi_config *config)
{
    const char *fn = __func__;
    int inited = 0, finalized = 0;
    if (out == NULL)
        return bp__mpi_fail(BP_ERR_ARG, fn, "out is NULL");
    *out = NULL;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (!inited || finalized)
        return bp__mpi_fail(BP_ERR_ARG, fn, "MPI is not initialised (call MPI_Init first) or already finalised");
    if (comm == MPI_COMM_NULL)
        return bp__mpi_fail(BP_ERR_ARG, fn, "comm is MPI_COMM_NULL");
    bp_mpi *dp = calloc(1, sizeof *dp);
    if (dp == NULL)
        return bp__mpi_fail(BP_ERR_NOMEM, fn, "allocating the attachment");
    dp->comm = MPI_COMM_NULL;
    bp_status st = bp__mpi_check(MPI_Comm_dup(comm, &dp->comm), fn, "MPI_Comm_dup");
    if (st == BP_OK)
        st = bp__mpi_check(MPI_Comm_set_errhandler(dp->comm, MPI_ERRORS_RETURN), fn, "MPI_Comm_set_errhandler");
    if (st == BP_OK)
        st = bp__mpi_check(MPI_Comm_rank(dp->comm, &dp->rank), fn, "MPI_Comm_rank");
    if (st == BP_OK)
        st = bp__mpi_check(MPI_Comm_size(dp->comm, &dp->size), fn, "MPI_Comm_size");
    if (st != BP_OK) {
        release(dp);
        return st;
    }
    const bp_mpi_config c = config ? *config : bp_mpi_defaults();
    const bp_status local = prepare(fn, dp, net, &c);
    int64_t sig[SIG_LEN];
    signature(net, &c, local == BP_OK, sig);
    st = agree(fn, dp, sig, local);
    if (st == BP_OK)
        st = broadcast(fn, dp);
    if (st == BP_OK && c.threads >= 0)
        st = bp__mpi_threads(fn, dp, c.threads);
    if (st == BP_OK) {
        const bp_reducer r = bp__mpi_reducer(dp);
        st = bp_net_set_reducer(net, &r);
    }
    if (st != BP_OK) {
        release(dp);
        return st;
    }
    *out = dp;
    return BP_OK;
}

bp_status bp_mpi_attach_f(bp_mpi **out, bp_net *net, MPI_Fint comm, const bp_mpi_config *config)
{
    return bp_mpi_attach(out, net, MPI_Comm_f2c(comm), config);
}

void bp_mpi_detach(bp_mpi *dp)
{
    if (dp == NULL)
        return;
    bp_net_set_reducer(dp->net, NULL);
    release(dp);
}

bp_status bp_mpi_set_overlap(bp_mpi *dp, int on)
{
    const char *fn = __func__;
    if (dp == NULL)
        return bp__mpi_fail(BP_ERR_ARG, fn, "dp is NULL");
    if (on != 0 && on != 1)
        return bp__mpi_fail(BP_ERR_ARG, fn, "on (%d) is not 0 or 1", on);
    dp->overlap = on;
    return BP_OK;
}

int bp_mpi_rank(const bp_mpi *dp)
{
    return dp ? dp->rank : -1;
}

int bp_mpi_size(const bp_mpi *dp)
{
    return dp ? dp->size : 0;
}

bp_status bp_mpi_get_stats(const bp_mpi *dp, bp_mpi_stats *stats)
{
    const char *fn = __func__;
    if (dp == NULL || stats == NULL)
        return bp__mpi_fail(BP_ERR_ARG, fn, "%s is NULL", dp == NULL ? "dp" : "stats");
    *stats = dp->stats;
    return BP_OK;
}

bp_status bp_mpi_reset_stats(bp_mpi *dp)
{
    if (dp == NULL)
        return bp__mpi_fail(BP_ERR_ARG, "bp_mpi_reset_stats", "dp is NULL");
    memset(&dp->stats, 0, sizeof dp->stats);
    return BP_OK;
}

bp_status bp_mpi_broadcast_params(bp_mpi *dp)
{
    if (dp == NULL)
        return bp__mpi_fail(BP_ERR_ARG, "bp_mpi_broadcast_params", "dp is NULL");
    return broadcast("bp_mpi_broadcast_params", dp);
}
