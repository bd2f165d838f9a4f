/* net_exec.h: the typed halves of the network (net_exec.tmpl.c, compiled for float and double). */
#ifndef BP_NET_EXEC_H
#define BP_NET_EXEC_H

#include "net/net_internal.h"

/* What one pass over a batch computes. */
typedef enum bp__mode {
    BP_MODE_GRAD,       /* forward, loss, backward: the gradient of the mean loss */
    BP_MODE_LOSS_ONLY,  /* forward and loss */
    BP_MODE_SGD         /* forward, loss, backward with plain SGD folded into it (one
                         * micro-batch, BLAS backend): each layer's dW product goes
                         * straight into W, see bp_optim_train_step */
} bp__mode;

/* The rate and weight decay of a BP_MODE_SGD pass. */
typedef struct bp__sgd {
    double lr, wd;
} bp__sgd;

/* One pass over the n samples of a batch, streamed in micro-batches. Rows are X's
 * rows 0..n-1, or X's rows idx[0..n-1] gathered into the arena when idx is not
 * NULL (the training helper). targets as in bp_net_loss_and_grad, indexed the same
 * way. *loss receives the mean loss; *correct (may be NULL) is increased by the
 * number of correct predictions (see bp_train). sgd: the update of a BP_MODE_SGD
 * pass, else NULL. Arguments are already checked. */
#define BP_NET_EXEC_DECLS(p)                                                                   \
    bp_status bp__##p##net_init(bp_net *net, bp_init scheme, double gain);                     \
    bp_status bp__##p##net_batch(bp_net *net, const char *fn, bp_int n, const void *X,          \
                                 bp_int ldx, const int32_t *idx, const void *targets,           \
                                 bp_int ldt, bp__mode mode, const bp__sgd *sgd, double *loss,   \
                                 int64_t *correct);                                             \
    bp_status bp__##p##net_forward(bp_net *net, const char *fn, bp_int n, const void *X,        \
                                   bp_int ldx, void *Y, bp_int ldy);                            \
    bp_status bp__##p##net_evaluate(bp_net *net, const char *fn, bp_int n, const void *X,       \
                                    bp_int ldx, const void *targets, bp_int ldt, double *metric, \
                                    int64_t *confusion);                                        \
    bp_status bp__##p##net_gradcheck(bp_net *net, const char *fn, bp_int n, const void *X,      \
                                     bp_int ldx, const void *targets, bp_int ldt, double h,      \
                                     double *max_rel_err, size_t *worst);

BP_NET_EXEC_DECLS(s)
BP_NET_EXEC_DECLS(d)

/* Checks a pass's network and input (net_api.c): planned, n >= 0, X and ldx, and
 * with the finite check on, every row of X. */
bp_status bp__check_pass(const char *fn, const bp_net *net, bp_int n, const void *X, bp_int ldx);

/* Checks that the n rows of X (n_in values each, leading dimension ldx) are finite (net_api.c). */
bp_status bp__check_x_finite(const char *fn, const bp_net *net, bp_int n, const void *X, bp_int ldx);

/* Checks a pass's targets (net_api.c): labels, or real values with ldt >= n_out. */
bp_status bp__check_targets(const char *fn, const bp_net *net, bp_int n, const void *targets,
                            bp_int ldt, int labels);

#endif
