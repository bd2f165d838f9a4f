/* SPDX-License-Identifier: MIT */
/* mlp.c: a network trained with the scheduler and Adam on a synthetic 3-class problem. */
#include <backprop.h>
#include <stdio.h>

enum { N = 600, D = 2, K = 3 };

static int report(const bp_epoch_report *r, void *ctx)
{
    (void)ctx;
    if (r->epoch % 10 == 0)
        printf("epoch %3ld  loss %.4f  train accuracy %.3f\n", r->epoch, r->loss, r->metric);
    return 0;  /* nonzero would stop training */
}

int main(void)
{
    static float X[N][D];
    static int32_t y[N];
    unsigned s = 1;  /* class 0 inside a disc; outside it, 1 where x y > 0 and 2 where x y < 0 */
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < D; j++)
            X[i][j] = (float)((s = s * 1103515245u + 12345u) >> 8 & 0xffff) / 32768.0f - 1;
        const float r2 = X[i][0] * X[i][0] + X[i][1] * X[i][1];
        y[i] = r2 < 0.3f ? 0 : X[i][0] * X[i][1] > 0 ? 1 : 2;
    }
    const bp_layer_spec layers[] = {
        {32, BP_ACT_TANH, 0}, {32, BP_ACT_RELU, 0}, {K, BP_ACT_IDENTITY, 0}};
    bp_net *net = NULL;
    bp_optim *opt = NULL;
    bp_optim_config adam = bp_optim_defaults(BP_OPT_ADAM, 0.003);
    bp_train_config train = {.epochs = 60, .batch_size = 32, .seed = 7, .shuffle = 1, .on_epoch = report};
    double acc = 0;
    bp_status st = bp_net_create(&net, BP_F32, D, 3, layers, BP_LOSS_SOFTMAX_XENT, NULL);
    if (st == BP_OK) st = bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 42, 1);
    if (st == BP_OK) st = bp_net_plan(net, 32);        /* one arena, the step list */
    if (st == BP_OK) st = bp_optim_create(&opt, net, &adam);
    if (st == BP_OK) st = bp_train(net, opt, N, &X[0][0], D, y, 0, &train);
    if (st == BP_OK) st = bp_net_accuracy(net, N, &X[0][0], D, y, &acc, NULL);
    if (st != BP_OK)
        fprintf(stderr, "%s: %s\n", bp_strerror(st), bp_last_error());
    else
        printf("accuracy %.3f\n", acc);
    bp_optim_destroy(opt);
    bp_net_destroy(net);
    return st == BP_OK && acc >= 0.95 ? 0 : 1;
}
