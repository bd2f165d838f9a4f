/* SPDX-License-Identifier: MIT */
/* xor.c: a two-layer network learns XOR with the backprop kernels and plain SGD.
 * Build: cc -std=c11 xor.c $(pkg-config --cflags --libs backprop) -o xor */
#include <backprop.h>
#include <stdio.h>

enum { N = 4, IN = 2, HID = 8, OUT = 2 };

static int check(bp_status st)
{
    if (st != BP_OK)
        fprintf(stderr, "backprop: %s (%s)\n", bp_strerror(st), bp_last_error());
    return st != BP_OK;
}

int main(void)
{
    const double X[N][IN] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
    const int32_t labels[N] = {0, 1, 1, 0};
    double W1[HID][IN], b1[HID] = {0}, W2[OUT][HID], b2[OUT] = {0};
    double H[N][HID], Z[N][OUT], dZ[N][OUT], dH[N][HID];
    double dW1[HID][IN], db1[HID], dW2[OUT][HID], db2[OUT];
    double loss = 0;

    /* Small fixed pseudo-random weights (a real program would use a seeded generator). */
    unsigned s = 12345;
    for (int o = 0; o < HID; o++)
        for (int i = 0; i < IN; i++)
            W1[o][i] = ((s = s * 1103515245u + 12345u) >> 16 & 0x7fff) / 16384.0 - 1;
    for (int o = 0; o < OUT; o++)
        for (int i = 0; i < HID; i++)
            W2[o][i] = ((s = s * 1103515245u + 12345u) >> 16 & 0x7fff) / 16384.0 - 1;

    for (int step = 0; step <= 2000; step++) {
        /* forward: H = tanh(X W1^T + b1), Z = H W2^T + b2 (logits) */
        if (check(bp_ddense_forward(BP_ROW_MAJOR, N, IN, HID, &X[0][0], IN, &W1[0][0], IN, b1,
                                    BP_ACT_TANH, 0, NULL, 0, &H[0][0], HID)) ||
            check(bp_ddense_forward(BP_ROW_MAJOR, N, HID, OUT, &H[0][0], HID, &W2[0][0], HID, b2,
                                    BP_ACT_IDENTITY, 0, NULL, 0, &Z[0][0], OUT)) ||
            /* loss and its gradient at the logits, dZ = (softmax(Z) - onehot) / N */
            check(bp_dsoftmax_xent(N, OUT, &Z[0][0], OUT, labels, N, &loss, &dZ[0][0], OUT)) ||
            /* backward: layer 2 gives dW2, db2 and dH; layer 1 gives dW1, db1 */
            check(bp_ddense_backward(BP_ROW_MAJOR, N, HID, OUT, &H[0][0], HID, &W2[0][0], HID,
                                     BP_ACT_IDENTITY, 0, NULL, 0, NULL, 0, &dZ[0][0], OUT,
                                     &dZ[0][0], OUT, 0, &dW2[0][0], HID, db2, &dH[0][0], HID)) ||
            check(bp_ddense_backward(BP_ROW_MAJOR, N, IN, HID, &X[0][0], IN, &W1[0][0], IN,
                                     BP_ACT_TANH, 0, NULL, 0, &H[0][0], HID, &dH[0][0], HID,
                                     &dH[0][0], HID, 0, &dW1[0][0], IN, db1, NULL, 0)))
            return 1;
        if (step % 500 == 0)
            printf("step %4d  loss %.6f\n", step, loss);
        /* plain SGD */
        const double lr = 0.5;
        for (int o = 0; o < HID; o++) {
            for (int i = 0; i < IN; i++)
                W1[o][i] -= lr * dW1[o][i];
            b1[o] -= lr * db1[o];
        }
        for (int o = 0; o < OUT; o++) {
            for (int i = 0; i < HID; i++)
                W2[o][i] -= lr * dW2[o][i];
            b2[o] -= lr * db2[o];
        }
    }
    int correct = 0;
    for (int k = 0; k < N; k++)
        correct += (Z[k][1] > Z[k][0]) == labels[k];
    printf("accuracy %d/%d, final loss %.6f\n", correct, N, loss);
    return correct == N && loss < 0.05 ? 0 : 1;
}
