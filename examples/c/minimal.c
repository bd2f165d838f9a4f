/* SPDX-License-Identifier: MIT */
/* minimal.c: one dense softmax layer, its loss and its gradient, in a dozen calls. */
#include <backprop.h>
#include <stdio.h>

int main(void)
{
    /* A batch of 3 samples with 4 features, 2 classes; W is 2 x 4, row-major. */
    const float X[3][4] = {{1, 0, 2, -1}, {0, 1, -1, 3}, {2, 2, 0, 1}};
    const int32_t labels[3] = {0, 1, 1};
    const float W[2][4] = {{0.1f, -0.2f, 0.3f, 0.0f}, {-0.1f, 0.2f, 0.0f, 0.1f}};
    const float b[2] = {0.0f, 0.1f};
    float Z[3][2], dZ[3][2], dW[2][4], db[2];
    double loss;

    /* Z = X W^T + b (logits; the loss applies the softmax) */
    bp_status st = bp_sdense_forward(BP_ROW_MAJOR, 3, 4, 2, &X[0][0], 4, &W[0][0], 4, b,
                                     BP_ACT_IDENTITY, 0, NULL, 0, &Z[0][0], 2);
    /* mean cross-entropy over the 3 samples, and dZ = (softmax(Z) - onehot) / 3 */
    if (st == BP_OK)
        st = bp_ssoftmax_xent(3, 2, &Z[0][0], 2, labels, 3, &loss, &dZ[0][0], 2);
    /* dW = dZ^T X and db = column sums of dZ (beta = 0: overwrite); no dX needed */
    if (st == BP_OK)
        st = bp_sdense_backward(BP_ROW_MAJOR, 3, 4, 2, &X[0][0], 4, &W[0][0], 4,
                                BP_ACT_IDENTITY, 0, NULL, 0, NULL, 0, &dZ[0][0], 2, &dZ[0][0], 2,
                                0, &dW[0][0], 4, db, NULL, 0);
    if (st != BP_OK) {
        fprintf(stderr, "%s: %s\n", bp_strerror(st), bp_last_error());
        return 1;
    }
    printf("loss %.6f\n", loss);
    for (int o = 0; o < 2; o++)
        printf("dW[%d] = %9.6f %9.6f %9.6f %9.6f   db[%d] = %9.6f\n",
               o, dW[o][0], dW[o][1], dW[o][2], dW[o][3], o, db[o]);
    return 0;
}
