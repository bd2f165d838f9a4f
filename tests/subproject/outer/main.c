/* SPDX-License-Identifier: MIT */
/* main.c: the outer project's program: one softmax layer's loss and weight gradient through
 * backprop, checked against the values worked out by hand. */
#include <backprop.h>
#include <math.h>
#include <stdio.h>

int main(void)
{
    /* Two samples, two features, two classes, W = 0: the softmax is uniform, the loss is log 2,
     * and dZ = (p - onehot) / 2 = [[-1/4, 1/4], [1/4, -1/4]], so dW = dZ^T X. */
    const double X[2][2] = {{1, 2}, {3, 5}}, W[2][2] = {{0, 0}, {0, 0}};
    const int32_t labels[2] = {0, 1};
    double Z[2][2], dZ[2][2], dW[2][2], loss;
    bp_status st = bp_ddense_forward(BP_ROW_MAJOR, 2, 2, 2, &X[0][0], 2, &W[0][0], 2, NULL,
                                     BP_ACT_IDENTITY, 0, NULL, 0, &Z[0][0], 2);
    if (st == BP_OK)
        st = bp_dsoftmax_xent(2, 2, &Z[0][0], 2, labels, 2, &loss, &dZ[0][0], 2);
    if (st == BP_OK)
        st = bp_ddense_backward(BP_ROW_MAJOR, 2, 2, 2, &X[0][0], 2, &W[0][0], 2, BP_ACT_IDENTITY, 0,
                                NULL, 0, NULL, 0, &dZ[0][0], 2, &dZ[0][0], 2, 0, &dW[0][0], 2, NULL, NULL, 0);
    if (st != BP_OK) {
        printf("outer: %s: %s\n", bp_strerror(st), bp_last_error());
        return 1;
    }
    /* dW[0] = -1/4 [1 2] + 1/4 [3 5] = [0.5 0.75]; dW[1] = -dW[0] */
    const double want[2][2] = {{0.5, 0.75}, {-0.5, -0.75}};
    double err = fabs(loss - log(2.0));
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            err = fmax(err, fabs(dW[i][j] - want[i][j]));
    printf("outer: loss %.15f, dW [%g %g; %g %g], max error %.3g\n", loss, dW[0][0], dW[0][1], dW[1][0],
           dW[1][1], err);
    return err < 1e-12 ? 0 : 1;
}
