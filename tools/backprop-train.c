/* SPDX-License-Identifier: MIT */
/* backprop-train: trains a dense network (or a logistic regression) on IDX or CSV data from the
 * command line, predicts with a saved one, or evaluates it; data-parallel under mpiexec -np N.
 * The parts: bpt.h. */
#include "bpt.h"

int main(int argc, char **argv)
{
    int rc = bpt_mpi_start();
    if (rc)
        return rc;
    options o;
    options_defaults(&o);
    rc = parse_args(argc, argv, &o);  /* -1: --help or --version printed, exit 0 */
    const int worst = bpt_agree(rc > 0 ? rc : 0);
    if (rc == 0 && worst)
        rc = worst;  /* another rank's usage error (it said which) */
    if (rc == 0) {
        switch (o.mode) {
        case BPT_PREDICT: rc = bpt_rank() == 0 ? predict_main(&o) : 0; break;  /* rank 0 alone */
        case BPT_EVALUATE: rc = evaluate_main(&o); break;
        default: rc = train_main(&o); break;
        }
    }
    bpt_mpi_stop();
    return rc < 0 ? 0 : rc;
}
