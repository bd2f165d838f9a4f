/* SPDX-License-Identifier: MIT */
/* net_exec.h: the typed halves of the network (the *.tmpl.c files of src/net, compiled for float
 * and double by net_s.c and net_d.c), and the optimizer hook the executor calls. */
#ifndef BP_NET_EXEC_H
#define BP_NET_EXEC_H

#include "net/net_internal.h"

/* What one pass over a batch computes. */
typedef enum bp__mode {
    BP_MODE_GRAD,       /* forward, loss, backward: the gradient of the mean loss */
    BP_MODE_LOSS_ONLY,  /* forward and loss */
    BP_MODE_VJP,        /* forward, the caller's dY instead of the loss, backward */
    BP_MODE_INPUT_GRAD  /* BP_MODE_VJP without the parameter gradient (grads_ready skipped) */
} bp__mode;

/* A pass's other inputs and outputs: the caller's dL/dY (n x n_out, lddy; the VJP modes; NULL:
 * the unit vector e_unit for every sample), the caller's dL/dX (n x n_in, lddx; NULL: not
 * wanted), beta for the parameter gradient of the first micro-batch (0 overwrites, 1
 * accumulates; the later ones accumulate), and the rows of a parameter Jacobian (jac: the row of
 * sample 0 and output `unit`, ldj apart, n_out rows per sample; NULL: none). NULL for a pass
 * with none: beta 0, no dX. */
typedef struct bp__pass_io {
    const void *dY;
    bp_int lddy;
    void *dX;
    bp_int lddx;
    double beta;
    bp_int unit;
    void *jac;
    size_t ldj;
} bp__pass_io;

/* An optimizer's hook on grads_ready. When a pass has one, the executor does not form dW: for
 * features [lo, hi) of layer l it hands the hook the weight gradient in factored form,
 * dW = dZ^T X over the micro-batch's m rows (dZ m x n_out with leading dimension n_out, X the
 * layer's input), with db already in the gradient buffer, and the hook applies them (plain SGD
 * folds its update into that product: see bp__optim_train_batch). Called once per chunk of the
 * layer's dw split, on any thread of the team, after every chunk of dX has read the old W.
 * `cores` is the network's kernel table of its dtype (cores.h). */
typedef struct bp__grad_hook bp__grad_hook;
struct bp__grad_hook {
    void (*apply)(const bp__grad_hook *hook, bp_net *net, const void *cores, const bp__layer *l, bp_int m,
                  const void *dZ, const void *X, bp_int ldx, bp_int lo, bp_int hi);
    double lr, wd;
};

/* One pass over the n samples of a batch, streamed in micro-batches. Rows are X's rows
 * 0..n-1, or X's rows idx[0..n-1] gathered into the arena when idx is not NULL (the training
 * helper). targets as in bp_net_loss_and_grad, indexed the same way. *loss receives the mean
 * loss; *correct (may be NULL) is increased by the number of correct predictions (see
 * bp_train). hook: an optimizer's grads_ready hook (one micro-batch only), else NULL.
 * Arguments are already checked. net_predict writes probabilities into P (ldp) when P is not
 * NULL, else predicted classes. */
#define BP_NET_EXEC_DECLS(p)                                                                   \
    bp_status bp__##p##net_init(bp_net *net, bp_init scheme, double gain);                     \
    bp_status bp__##p##net_batch(bp_net *net, const char *fn, bp_int n, const void *X,          \
                                 bp_int ldx, const int32_t *idx, const void *targets,           \
                                 bp_int ldt, bp__mode mode, const bp__grad_hook *hook,          \
                                 const bp__pass_io *io, double *loss, int64_t *correct);        \
    bp_status bp__##p##net_forward(bp_net *net, const char *fn, bp_int n, const void *X,        \
                                   bp_int ldx, void *Y, bp_int ldy);                            \
    bp_status bp__##p##net_evaluate(bp_net *net, const char *fn, bp_int n, const void *X,       \
                                    bp_int ldx, const void *targets, bp_int ldt, double *metric, \
                                    int64_t *confusion);                                        \
    bp_status bp__##p##net_predict(bp_net *net, const char *fn, bp_int n, const void *X,        \
                                   bp_int ldx, void *P, bp_int ldp, int32_t *classes);         \
    bp_status bp__##p##net_sample_losses(bp_net *net, const char *fn, bp_int n, const void *X,  \
                                         bp_int ldx, const void *targets, bp_int ldt,          \
                                         double *losses);                                      \
    bp_status bp__##p##net_gradcheck(bp_net *net, const char *fn, bp_int n, const void *X,      \
                                     bp_int ldx, const void *targets, bp_int ldt, double h,      \
                                     double *max_rel_err, size_t *worst);                       \
    void bp__##p##fused_sgd(const bp__grad_hook *hook, bp_net *net, const void *cores,          \
                            const bp__layer *l, bp_int m, const void *dZ, const void *X,        \
                            bp_int ldx, bp_int lo, bp_int hi);

BP_NET_EXEC_DECLS(s)
BP_NET_EXEC_DECLS(d)

/* The typed half of `call` for the network's dtype: DISPATCH(net, net_batch)(net, ...). */
#define DISPATCH(net, call) ((net)->dtype == BP_F32 ? bp__s##call : bp__d##call)

/* Checks a pass's network and input (net_api.c): planned, n >= 0, X and ldx, and
 * with the finite check on, every row of X. */
bp_status bp__check_pass(const char *fn, const bp_net *net, bp_int n, const void *X, bp_int ldx);

/* Checks that the n rows of X (n_in values each, leading dimension ldx) are finite (net_api.c). */
bp_status bp__check_x_finite(const char *fn, const bp_net *net, bp_int n, const void *X, bp_int ldx);

/* Checks a caller's block of n rows of `width` values of the dtype (net_api.c): A not NULL when
 * n > 0, its leading dimension ld >= width, the block within the address space. The messages name
 * the block (`name`), its leading dimension (`ldname`) and the width (`wname`: "n_out", "n_in"). */
bp_status bp__check_rows(const char *fn, const bp_net *net, bp_int n, const void *A, bp_int ld, bp_int width,
                         const char *name, const char *ldname, const char *wname);

/* Checks a pass's targets (net_api.c): labels, or real values with ldt >= n_out. */
bp_status bp__check_targets(const char *fn, const bp_net *net, bp_int n, const void *targets,
                            bp_int ldt, int labels);

#endif
