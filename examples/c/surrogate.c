/* SPDX-License-Identifier: MIT */
/* surrogate.c: a host code fits a small network as a surrogate of f(x) = sin(2x) + x/2 on [-2, 2].
 * First with a loss only the host knows (a weighted squared error that cares most about x > 0):
 * it computes dL/dY from the network's outputs and hands it to bp_net_backward, then takes Adam
 * steps. Then it refines the plain fit with Levenberg-Marquardt (bp_lm_fit). Exits 1 unless the
 * host's loss falls tenfold and LM reaches an MSE of 1e-5.
 * Build: cc -std=c11 surrogate.c $(pkg-config --cflags --libs backprop) -lm -o surrogate */
#include <backprop.h>
#include <math.h>
#include <stdio.h>

enum { N = 64, HIDDEN = 10, STEPS = 400 };

static int check(bp_status st)
{
    if (st != BP_OK)
        fprintf(stderr, "backprop: %s (%s)\n", bp_strerror(st), bp_last_error());
    return st != BP_OK;
}

/* The host's loss: sum_i w_i (y_i - t_i)^2 / sum_i w_i, and its gradient at the outputs. */
static double host_loss(const double *y, const double *t, const double *w, double *dY)
{
    double sum_w = 0, loss = 0;
    for (int i = 0; i < N; i++)
        sum_w += w[i];
    for (int i = 0; i < N; i++) {
        loss += w[i] * (y[i] - t[i]) * (y[i] - t[i]) / sum_w;
        dY[i] = 2 * w[i] * (y[i] - t[i]) / sum_w;
    }
    return loss;
}

int main(void)
{
    double X[N], T[N], W[N], Y[N], dY[N];
    for (int i = 0; i < N; i++) {
        X[i] = -2 + 4.0 * i / (N - 1);
        T[i] = sin(2 * X[i]) + X[i] / 2;
        W[i] = X[i] > 0 ? 4 : 1;
    }
    const bp_layer_spec layers[2] = {{HIDDEN, BP_ACT_TANH, 0}, {1, BP_ACT_IDENTITY, 0}};
    bp_net *net = NULL;
    bp_optim *opt = NULL;
    if (check(bp_net_create(&net, BP_F64, 1, 2, layers, BP_LOSS_MSE, NULL)) ||
        check(bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 7, 1)) || check(bp_net_plan(net, N)))
        return 1;
    const bp_optim_config adam = bp_optim_defaults(BP_OPT_ADAM, 0.01);
    if (check(bp_optim_create(&opt, net, &adam)))
        return 1;

    /* The host's loop: forward, its own loss and dL/dY, the vector-Jacobian product, a step. */
    double first = 0, loss = 0;
    for (int step = 0; step < STEPS; step++) {
        if (check(bp_net_forward(net, N, X, 1, Y, 1)))
            return 1;
        loss = host_loss(Y, T, W, dY);
        if (step == 0)
            first = loss;
        if (check(bp_net_backward(net, N, X, 1, dY, 1, 0, NULL, 0)) || check(bp_optim_step(opt, net)))
            return 1;
    }
    printf("host loss with bp_net_backward + Adam: %.3g -> %.3g in %d steps\n", first, loss, STEPS);

    /* Levenberg-Marquardt on the plain mean squared error. */
    bp_lm_config lm = bp_lm_defaults();
    lm.goal = 1e-8;
    lm.max_iter = 300;
    bp_lm_report rep;
    if (check(bp_lm_fit(net, N, X, 1, T, 1, &lm, &rep)))
        return 1;
    printf("Levenberg-Marquardt: MSE %.3g after %d iterations (stop reason %d, mu %.3g)\n", rep.mse,
           rep.iterations, (int)rep.stop, rep.mu);
    bp_optim_destroy(opt);
    bp_net_destroy(net);
    return loss < first / 10 && rep.mse <= 1e-5 ? 0 : 1;
}
