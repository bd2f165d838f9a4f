/* SPDX-License-Identifier: MIT */
/* infer.tmpl.c: inference and evaluation, written once for T: the forward steps alone, through
 * the two gradient buffers in turn, then the outputs, accuracy (with confusion counts) or RMSE. */

/* The outputs of one micro-batch of m rows into out (ldo): layer by layer, each cut as the
 * plan says, the hidden outputs in the gradient buffers (inference keeps no Z), the inputs
 * standardised in Xg first if the network says so. */
static bp_status forward_micro(bp_net *net, const char *fn, bp_int m, const T *X, bp_int ldx, T *out, bp_int ldo)
{
    const T *in;
    bp_int ldin;
    TRY(stage_input(net, m, X, ldx, NULL, &in, &ldin));
    for (bp_int i = 0; i < net->n_layers; i++) {
        const int last = i == net->n_layers - 1;
        T *Y = last ? out : ARENA(net, net->g_off[i % 2]);
        const bp_int ldy = last ? ldo : net->layers[i].n_out;
        TRY(IPFX(forward_step)(net, fn, i, m, in, ldin, NULL, Y, ldy));
        in = Y;
        ldin = ldy;
    }
    return BP_OK;
}

static bp_status forward_all(bp_net *net, const char *fn, bp_int n, const T *X, bp_int ldx, T *Y, bp_int ldy)
{
    for (bp_int start = 0; start < n; start += net->mb) {
        const bp_int m = n - start < net->mb ? n - start : net->mb;
        TRY(forward_micro(net, fn, m, X + (size_t)start * (size_t)ldx, ldx, Y + (size_t)start * (size_t)ldy, ldy));
    }
    return BP_OK;
}

bp_status IPFX(net_forward)(bp_net *net, const char *fn, bp_int n, const void *X, bp_int ldx, void *Y, bp_int ldy)
{
    bp__blas_serial_begin();
    const bp_status st = forward_all(net, fn, n, X, ldx, Y, ldy);
    bp__blas_serial_end();
    return st;
}

/* Adds the m rows of outputs Y (n_out each) to the metric: squared errors against targets
 * (ldt), or correct predictions against labels, and the confusion counts if asked. */
static void score_rows(const bp_net *net, bp_int m, const T *Y, const void *targets, bp_int ldt, double *acc,
                       int64_t *confusion)
{
    const bp_int n_out = bp__n_out(net);
    for (bp_int r = 0; r < m; r++) {
        const T *y = Y + (size_t)r * (size_t)n_out;
        if (bp__loss_squared(net->loss)) {
            const T *t = (const T *)targets + (size_t)r * (size_t)ldt;
            for (bp_int j = 0; j < n_out; j++)
                *acc += ((double)y[j] - t[j]) * ((double)y[j] - t[j]);
            continue;
        }
        const int32_t c = ((const int32_t *)targets)[r];
        const bp_int pred = n_out == 1 ? y[0] > 0 : argmax(y, n_out);
        *acc += pred == c;
        if (confusion && n_out > 1)
            confusion[(size_t)c * (size_t)n_out + (size_t)pred]++;
    }
}

static bp_status evaluate(bp_net *net, const char *fn, bp_int n, const T *X, bp_int ldx, const void *targets,
                          bp_int ldt, double *acc, int64_t *confusion)
{
    const bp__layer *last = &net->layers[net->n_layers - 1];
    T *Y = ARENA(net, last->y_off);
    for (bp_int start = 0; start < n; start += net->mb) {
        const bp_int m = n - start < net->mb ? n - start : net->mb;
        TRY(forward_micro(net, fn, m, X + (size_t)start * (size_t)ldx, ldx, Y, last->n_out));
        const void *t = bp__loss_squared(net->loss) ? (const void *)((const T *)targets + (size_t)start * (size_t)ldt)
                                                 : (const void *)((const int32_t *)targets + start);
        score_rows(net, m, Y, t, ldt, acc, confusion);
    }
    return BP_OK;
}

bp_status IPFX(net_evaluate)(bp_net *net, const char *fn, bp_int n, const void *X, bp_int ldx,
                             const void *targets, bp_int ldt, double *metric, int64_t *confusion)
{
    const bp_int n_out = bp__n_out(net);
    if (confusion)
        memset(confusion, 0, (size_t)n_out * (size_t)n_out * sizeof *confusion);
    double acc = 0;
    bp__blas_serial_begin();
    const bp_status st = evaluate(net, fn, n, X, ldx, targets, ldt, &acc, confusion);
    bp__blas_serial_end();
    if (st != BP_OK)
        return st;
    *metric = n == 0 ? 0 : !bp__loss_squared(net->loss) ? acc / n : sqrt(acc / ((double)n * n_out));
    return BP_OK;
}

/* Predictions of one micro-batch of m rows: probabilities into P (ldp), or classes. */
static bp_status predict_micro(bp_net *net, const char *fn, bp_int m, const T *X, bp_int ldx, T *P, bp_int ldp,
                               int32_t *classes)
{
    const bp__layer *last = &net->layers[net->n_layers - 1];
    if (P) {
        TRY(forward_micro(net, fn, m, X, ldx, P, ldp));
        if (!bp__loss_squared(net->loss))
            cores_of(net)->bias_act(net->loss == BP_LOSS_SOFTMAX_XENT ? BP_ACT_SOFTMAX : BP_ACT_SIGMOID, 0, m,
                                    last->n_out, NULL, NULL, 0, P, ldp);
        return BP_OK;
    }
    T *Y = ARENA(net, last->y_off);
    TRY(forward_micro(net, fn, m, X, ldx, Y, last->n_out));
    for (bp_int r = 0; r < m; r++) {
        const T *y = Y + (size_t)r * (size_t)last->n_out;
        classes[r] = last->n_out == 1 ? y[0] > 0 : (int32_t)argmax(y, last->n_out);
    }
    return BP_OK;
}

bp_status IPFX(net_predict)(bp_net *net, const char *fn, bp_int n, const void *X, bp_int ldx, void *P, bp_int ldp,
                            int32_t *classes)
{
    bp_status st = BP_OK;
    bp__blas_serial_begin();
    for (bp_int start = 0; start < n && st == BP_OK; start += net->mb) {
        const bp_int m = n - start < net->mb ? n - start : net->mb;
        st = predict_micro(net, fn, m, (const T *)X + (size_t)start * (size_t)ldx, ldx,
                           P ? (T *)P + (size_t)start * (size_t)ldp : NULL, ldp, classes ? classes + start : NULL);
    }
    bp__blas_serial_end();
    return st;
}

/* Each of m rows' own loss, outputs in Y (n_out each): the loss kernel on the row alone with
 * divisor 1 (least squares: half its sum of squares). */
static bp_status row_losses(const bp_net *net, bp_int m, const T *Y, const void *targets, bp_int ldt, double *out)
{
    const IPFX(cores) *k = cores_of(net);
    const bp_int n_out = bp__n_out(net);
    for (bp_int r = 0; r < m; r++) {
        const T *y = Y + (size_t)r * (size_t)n_out;
        const T *t = net->loss == BP_LOSS_SOFTMAX_XENT ? NULL : (const T *)targets + (size_t)r * (size_t)ldt;
        switch (net->loss) {
        case BP_LOSS_SOFTMAX_XENT:
            TRY(k->softmax_xent(1, n_out, y, n_out, (const int32_t *)targets + r, 1, &out[r], NULL, n_out));
            break;
        case BP_LOSS_SIGMOID_BCE:
            TRY(k->sigmoid_bce(1, n_out, y, n_out, t, ldt, 1, &out[r], NULL, n_out));
            break;
        case BP_LOSS_MSE:
            TRY(k->mse(1, n_out, y, n_out, t, ldt, 1, &out[r], NULL, n_out));
            break;
        case BP_LOSS_LEAST_SQUARES:
            half_squares(1, n_out, y, t, ldt, 1, &out[r], NULL);
            break;
        }
    }
    return BP_OK;
}

bp_status IPFX(net_sample_losses)(bp_net *net, const char *fn, bp_int n, const void *X, bp_int ldx,
                                  const void *targets, bp_int ldt, double *losses)
{
    const bp__layer *last = &net->layers[net->n_layers - 1];
    T *Y = ARENA(net, last->y_off);
    const int labels = net->loss == BP_LOSS_SOFTMAX_XENT;
    bp_status st = BP_OK;
    bp__blas_serial_begin();
    for (bp_int start = 0; start < n && st == BP_OK; start += net->mb) {
        const bp_int m = n - start < net->mb ? n - start : net->mb;
        const void *t = labels ? (const void *)((const int32_t *)targets + start)
                               : (const void *)((const T *)targets + (size_t)start * (size_t)ldt);
        st = forward_micro(net, fn, m, (const T *)X + (size_t)start * (size_t)ldx, ldx, Y, last->n_out);
        if (st == BP_OK)
            st = row_losses(net, m, Y, t, ldt, losses + start);
    }
    bp__blas_serial_end();
    return st;
}
