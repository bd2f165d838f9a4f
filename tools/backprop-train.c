/* SPDX-License-Identifier: MIT */
/* backprop-train: trains a dense network (or a logistic regression) on IDX or CSV data from the
 * command line, predicts with a saved one, or evaluates it. The parts: bpt.h. */
#include "bpt.h"

int main(int argc, char **argv)
{
    options o;
    options_defaults(&o);
    const int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;  /* -1: --help or --version */
    switch (o.mode) {
    case BPT_PREDICT: return predict_main(&o);
    case BPT_EVALUATE: return evaluate_main(&o);
    default: return train_main(&o);
    }
}
