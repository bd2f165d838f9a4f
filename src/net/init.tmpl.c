/* SPDX-License-Identifier: MIT */
/* init.tmpl.c: weight initialisation (bp_net_init), written once for T: the Glorot and He
 * families from the network's generator, and orthogonal weights through LAPACKE's QR. */
#include <lapacke.h>

/* A failed LAPACKE call of the orthogonal init: its own work space it could not get
 * (LAPACKE allocates it), else a matrix it could not factor. */
static bp_status lapack_failed(const char *what, lapack_int info, bp_int r, bp_int c)
{
    if (info == LAPACK_WORK_MEMORY_ERROR)
        return bp__fail(BP_ERR_NOMEM, "bp_net_init", "%s could not allocate its work space (%d x %d matrix)", what,
                        (int)r, (int)c);
    return bp__fail(BP_ERR_NONFINITE, "bp_net_init", "%s failed on a %d x %d matrix", what, (int)r, (int)c);
}

/* Orthogonal weights: Q of the QR factorisation of an r x c standard normal matrix
 * (r >= c, column-major), each column's sign fixed by R's diagonal so Q is uniformly
 * distributed; W is Q (n_out >= n_in) or Q^T. A and tau are work space for r c and c. */
static bp_status init_orthogonal(bp_net *net, const bp__layer *l, T *W, double gain, T *A, T *tau)
{
    const bp_int r = l->n_out > l->n_in ? l->n_out : l->n_in, c = l->n_out > l->n_in ? l->n_in : l->n_out;
    for (size_t q = 0; q < (size_t)r * (size_t)c; q++)
        A[q] = (T)bp__rng_normal(net->rng);
    lapack_int info = LA(geqrf)(LAPACK_COL_MAJOR, r, c, A, r, tau);
    if (info != 0)
        return lapack_failed("?geqrf", info, r, c);
    /* The signs of R's diagonal wait in W (at least c elements, written last), then in tau,
     * which orgqr no longer needs. */
    T *sign = W;
    for (bp_int j = 0; j < c; j++)
        sign[j] = A[(size_t)j * (size_t)r + (size_t)j] < 0 ? -1 : 1;
    info = LA(orgqr)(LAPACK_COL_MAJOR, r, c, c, A, r, tau);
    if (info != 0)
        return lapack_failed("?orgqr", info, r, c);
    for (bp_int j = 0; j < c; j++)
        tau[j] = sign[j];
    for (bp_int o = 0; o < l->n_out; o++)
        for (bp_int i = 0; i < l->n_in; i++) {
            /* Q(a, b) = A[a + b r]; W[o][i] = Q(o, i) or Q(i, o) */
            const bp_int a = l->n_out >= l->n_in ? o : i, bcol = l->n_out >= l->n_in ? i : o;
            W[(size_t)o * (size_t)l->n_in + (size_t)i] =
                (T)gain * tau[bcol] * A[(size_t)bcol * (size_t)r + (size_t)a];
        }
    return BP_OK;
}

bp_status IPFX(net_init)(bp_net *net, bp_init scheme, double gain)
{
    /* Orthogonal init needs work space: allocate it for the largest layer before
     * touching any weight, so running out of memory leaves the network as it was. */
    T *A = NULL, *tau = NULL;
    if (scheme == BP_INIT_ORTHOGONAL) {
        size_t most = 1, widest = 1;
        for (bp_int i = 0; i < net->n_layers; i++) {
            const size_t rc = (size_t)net->layers[i].n_out * (size_t)net->layers[i].n_in;
            const size_t c = (size_t)(net->layers[i].n_out < net->layers[i].n_in ? net->layers[i].n_out
                                                                                   : net->layers[i].n_in);
            most = rc > most ? rc : most;
            widest = c > widest ? c : widest;
        }
        A = bp__net_alloc(net, most * sizeof(T));
        tau = bp__net_alloc(net, widest * sizeof(T));
        if (!A || !tau) {
            bp__net_free(net, A);
            bp__net_free(net, tau);
            return bp__fail(BP_ERR_NOMEM, "bp_net_init", "allocating %zu elements of QR work space", most);
        }
    }
    bp_status st = BP_OK;
    for (bp_int i = 0; i < net->n_layers && st == BP_OK; i++) {
        const bp__layer *l = &net->layers[i];
        T *W = PARAM(net, l->w_off);
        const size_t count = (size_t)l->n_out * (size_t)l->n_in;
        const double fan_in = l->n_in, fan_out = l->n_out;
        memset(PARAM(net, l->b_off), 0, (size_t)l->n_out * sizeof(T));
        if (scheme == BP_INIT_ORTHOGONAL) {
            st = init_orthogonal(net, l, W, gain, A, tau);
            continue;
        }
        const int uniform = scheme == BP_INIT_GLOROT_UNIFORM || scheme == BP_INIT_HE_UNIFORM;
        const double var = scheme == BP_INIT_GLOROT_UNIFORM || scheme == BP_INIT_GLOROT_NORMAL
                               ? 2 / (fan_in + fan_out) : 2 / fan_in;
        /* U(-a, a) has variance a^2 / 3: a = sqrt(3 var) gives sqrt(6 / ...) as documented. */
        const double scale = uniform ? sqrt(3 * var) : sqrt(var);
        for (size_t q = 0; q < count; q++)
            W[q] = (T)(scale * (uniform ? 2 * bp__rng_uniform(net->rng) - 1 : bp__rng_normal(net->rng)));
    }
    bp__net_free(net, A);
    bp__net_free(net, tau);
    return st;
}
