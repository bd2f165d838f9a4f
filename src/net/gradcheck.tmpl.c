/* SPDX-License-Identifier: MIT */
/* gradcheck.tmpl.c: the gradient check for users (bp_net_gradcheck), written once for T:
 * backprop's gradient against central differences of the loss, parameter by parameter. */

bp_status IPFX(net_gradcheck)(bp_net *net, const char *fn, bp_int n, const void *X, bp_int ldx,
                              const void *targets, bp_int ldt, double h, double *max_rel_err,
                              size_t *worst)
{
    bp_status st = IPFX(net_batch)(net, fn, n, X, ldx, NULL, targets, ldt, BP_MODE_GRAD, NULL, NULL, NULL, NULL);
    if (st != BP_OK)
        return st;
    T *p = net->params;
    const T *g = net->grads;
    double max_diff = 0, max_fd = 0;
    size_t arg = 0;
    for (size_t q = 0; q < net->n_params; q++) {
        const T saved = p[q];
        const T step = h > 0 ? (T)h : (T)(1e-6 * (fabs((double)saved) > 1 ? fabs((double)saved) : 1));
        double lp = 0, lm = 0;
        p[q] = saved + step;
        st = IPFX(net_batch)(net, fn, n, X, ldx, NULL, targets, ldt, BP_MODE_LOSS_ONLY, NULL, NULL, &lp, NULL);
        p[q] = saved - step;
        if (st == BP_OK)
            st = IPFX(net_batch)(net, fn, n, X, ldx, NULL, targets, ldt, BP_MODE_LOSS_ONLY, NULL, NULL, &lm, NULL);
        p[q] = saved;
        if (st != BP_OK)
            return st;
        const double fd = (lp - lm) / (2 * (double)step), diff = fabs(fd - (double)g[q]);
        if (diff > max_diff) {
            max_diff = diff;
            arg = q;
        }
        if (fabs(fd) > max_fd)
            max_fd = fabs(fd);
    }
    *max_rel_err = max_diff / (max_fd > 1e-12 ? max_fd : 1e-12);
    if (worst)
        *worst = arg;
    return BP_OK;
}
