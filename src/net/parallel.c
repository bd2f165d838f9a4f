/* SPDX-License-Identifier: MIT */
/* parallel.c: data parallelism without a transport (backprop/parallel.h): the fixed rule that
 * shards a batch, the network's reducer, and the executor's side of a reduced pass (dp.h). */
#include <stdio.h>
#include "backprop/parallel.h"
#include "net/dp.h"

bp_int bp_shard_count(bp_int n, int p, int r)
{
    if (n < 0 || p < 1 || r < 0 || r >= p)
        return 0;
    return n / p + (r < n % p);
}

bp_int bp_shard_start(bp_int n, int p, int r)
{
    if (n < 0 || p < 1 || r < 0 || r >= p)
        return 0;
    const bp_int q = n / p, extra = n % p;
    return r * q + (r < extra ? r : extra);
}

bp_status bp_shard_rows(bp_int n_total, bp_int batch, int p, int r, int32_t *rows, bp_int *count)
{
    const char *fn = __func__;
    BP_CHECK_PTR(count);
    BP_REQUIRE(n_total >= 0, BP_ERR_ARG, "n_total (%d) < 0", (int)n_total);
    BP_REQUIRE(batch >= 1, BP_ERR_ARG, "batch (%d) < 1", (int)batch);
    BP_REQUIRE(p >= 1, BP_ERR_ARG, "p (%d) < 1", p);
    BP_REQUIRE(r >= 0 && r < p, BP_ERR_ARG, "r (%d) is not in [0, p) = [0, %d)", r, p);
    bp_int k = 0;
    for (bp_int start = 0, b = 0; start < n_total; start += b) {  /* the last batch may be partial */
        b = n_total - start < batch ? n_total - start : batch;
        const bp_int first = start + bp_shard_start(b, p, r), c = bp_shard_count(b, p, r);
        for (bp_int j = 0; j < c; j++, k++)
            if (rows)
                rows[k] = first + j;
    }
    *count = k;
    return BP_OK;
}

bp_status bp_net_set_reducer(bp_net *net, const bp_reducer *reducer)
{
    const char *fn = __func__;
    BP_CHECK_PTR(net);
    if (reducer == NULL) {
        net->has_reducer = 0;
        return BP_OK;
    }
    BP_REQUIRE(reducer->begin && reducer->layer_ready && reducer->finish && reducer->sum, BP_ERR_ARG,
               "reducer->begin, layer_ready, finish and sum must not be NULL");
    BP_REQUIRE(reducer->size >= 1, BP_ERR_ARG, "reducer->size (%d) < 1", reducer->size);
    BP_REQUIRE(reducer->rank >= 0 && reducer->rank < reducer->size, BP_ERR_ARG,
               "reducer->rank (%d) is not in [0, size) = [0, %d)", reducer->rank, reducer->size);
    net->reducer = *reducer;
    net->has_reducer = 1;
    return BP_OK;
}

int bp_net_has_reducer(const bp_net *net)
{
    return net != NULL && net->has_reducer;
}

bp_status bp__dp_begin(bp_net *net, const char *fn, bp_int n, bp_int *n_total)
{
    (void)fn;  /* the reducer names itself in its messages */
    net->dp_next = net->n_layers;
    return net->reducer.begin(net->reducer.ctx, n, n_total);
}

bp_status bp__dp_refused(bp_net *net, bp_status st)
{
    if (st == BP_OK || net == NULL || !net->has_reducer)
        return st;
    char why[512];
    snprintf(why, sizeof why, "%s", bp_last_error());
    bp_int total;
    net->reducer.begin(net->reducer.ctx, -1, &total);
    return bp__fail_copy(st, why);
}

bp_status bp__dp_ready(bp_net *net, const char *fn, bp_int i)
{
    BP_REQUIRE(i == net->dp_next - 1, BP_ERR_ARG, "internal: layer %d announced after layer %d", (int)i,
               (int)net->dp_next);
    const bp__layer *l = &net->layers[i];
    net->dp_next = i;
    return net->reducer.layer_ready(net->reducer.ctx, i, (char *)net->grads + l->w_off * net->esize,
                                    (size_t)l->n_out * ((size_t)l->n_in + 1));
}

bp_status bp__dp_progress(bp_net *net, const char *fn)
{
    (void)fn;
    if (net->reducer.progress == NULL || net->dp_next >= net->n_layers)
        return BP_OK;
    return net->reducer.progress(net->reducer.ctx);
}

/* What a rank returns after a sum that carried every rank's failure flag (`failed` ranks failed):
 * its own failure `local`, else the sum's failure `sum`, else BP_ERR_COMM when another rank
 * failed (`what`: where). */
static bp_status outcome(const char *fn, bp_status local, bp_status sum, double failed, const char *what)
{
    if (local != BP_OK)
        return local;
    TRY(sum);
    BP_REQUIRE(failed == 0, BP_ERR_COMM, "%.0f other rank(s) failed %s (see their messages)", failed, what);
    return BP_OK;
}

bp_status bp__dp_finish(bp_net *net, const char *fn, bp_status local, double *loss, int64_t *correct)
{
    bp_status st = local;
    while (net->dp_next > 0) {  /* after a failure too: the other ranks wait for every layer */
        const bp_status ready = bp__dp_ready(net, fn, net->dp_next - 1);
        if (st == BP_OK)
            st = ready;
    }
    double v[3] = {loss ? *loss : 0, correct ? (double)*correct : 0, st != BP_OK};
    const bp_status fin = net->reducer.finish(net->reducer.ctx, v, 3);
    TRY(outcome(fn, st, fin, v[2], "in this step, whose gradient is not valid: nothing was updated"));
    if (loss)
        *loss = v[0];
    if (correct)
        *correct = (int64_t)v[1];
    return BP_OK;
}

bp_status bp__dp_sum(bp_net *net, const char *fn, double *v, int n)
{
    (void)fn;
    return net->has_reducer ? net->reducer.sum(net->reducer.ctx, v, n) : BP_OK;
}

bp_status bp__dp_sum_outcome(bp_net *net, const char *fn, bp_status local, double *v, int n, const char *what)
{
    v[n] = local != BP_OK;
    const bp_status st = bp__dp_sum(net, fn, v, n + 1);
    return outcome(fn, local, st, v[n], what);
}

bp_status bp__dp_refuse(const bp_net *net, const char *fn, const char *what)
{
    BP_REQUIRE(!net->has_reducer, BP_ERR_UNSUPPORTED,
               "%s does not run data-parallel and the network has a reducer (bp_mpi_attach): detach it first",
               what);
    return BP_OK;
}
