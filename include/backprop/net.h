/* SPDX-License-Identifier: MIT */
/** \file
 * backprop/net.h: a network of dense layers with one planned memory arena, its batched
 * forward / loss / backward pipeline, initialisation, evaluation and a gradient check. */
#ifndef BACKPROP_NET_H
#define BACKPROP_NET_H

#include <stddef.h>
#include <stdint.h>
#include "core.h"
#include "kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The loss a network is trained with. The last layer of a network whose loss
 * fuses softmax or sigmoid must have the identity activation: the loss takes
 * logits. Targets: int32_t class labels for BP_LOSS_SOFTMAX_XENT; for the
 * others, n x n_out values of the network's dtype (BCE: in [0, 1]).
 *
 * The two squared errors differ only in their scale, so choose by the convention you compare
 * with: over a batch of n samples of m outputs,
 * \code{.unparsed}
 *   BP_LOSS_MSE            sum_ij (y_ij - t_ij)^2 / (n m)      PyTorch's MSELoss(reduction='mean')
 *   BP_LOSS_LEAST_SQUARES  sum_ij (y_ij - t_ij)^2 / (2 n)      least squares: half the sum over a
 *                                                              sample's outputs, mean over samples
 * \endcode
 * The gradient at the outputs is 2 (y - t) / (n m) and (y - t) / n. Both report the RMSE over
 * all elements as their metric. */
typedef enum bp_loss {
    BP_LOSS_SOFTMAX_XENT = 1,  /**< softmax cross-entropy on logits, int32_t class labels */
    BP_LOSS_SIGMOID_BCE = 2,   /**< sigmoid binary cross-entropy on logits, targets in [0, 1] */
    BP_LOSS_MSE = 3,           /**< mean squared error over all outputs (PyTorch's reduction='mean') */
    BP_LOSS_LEAST_SQUARES = 4  /**< half the sum of squares over a sample's outputs, mean over samples */
} bp_loss;

/** Weight initialisations; biases start at zero. fan_in = n_in, fan_out = n_out.
 * \code{.unparsed}
 *   GLOROT_UNIFORM  U(-a, a), a = sqrt(6 / (fan_in + fan_out))
 *   GLOROT_NORMAL   N(0, 2 / (fan_in + fan_out))
 *   HE_UNIFORM      U(-a, a), a = sqrt(6 / fan_in)
 *   HE_NORMAL       N(0, 2 / fan_in)
 *   ORTHOGONAL      the Q of a QR factorisation (LAPACKE ?geqrf + ?orgqr) of a
 *                   standard normal matrix, signs fixed by R's diagonal, times
 *                   `gain` (1 for linear/tanh-like layers, sqrt(2) for ReLU).
 * \endcode */
typedef enum bp_init {
    BP_INIT_GLOROT_UNIFORM = 1,  /**< U(-a, a), a = sqrt(6 / (fan_in + fan_out)) */
    BP_INIT_GLOROT_NORMAL = 2,   /**< N(0, 2 / (fan_in + fan_out)) */
    BP_INIT_HE_UNIFORM = 3,      /**< U(-a, a), a = sqrt(6 / fan_in) */
    BP_INIT_HE_NORMAL = 4,       /**< N(0, 2 / fan_in) */
    BP_INIT_ORTHOGONAL = 5       /**< orthogonal (QR of a normal matrix), times gain */
} bp_init;

/** Which kernels a network runs on: the BLAS kernels or their naive twins. */
typedef enum bp_backend {
    BP_BACKEND_BLAS = 0,   /**< the BLAS kernels (backprop/kernels.h) */
    BP_BACKEND_NAIVE = 1   /**< their naive twins (backprop/naive.h) */
} bp_backend;

/** Where a network gets its memory. alloc returns memory aligned to at least
 * 16 bytes (malloc's guarantee) or NULL; free accepts what alloc returned.
 * A network allocates only in bp_net_create, bp_net_plan, bp_net_set_threads and
 * the training helpers' setup, never inside a step, so a counting allocator shows
 * that. */
typedef struct bp_allocator {
    void *(*alloc)(void *ctx, size_t size);  /**< size bytes, or NULL */
    void (*free)(void *ctx, void *ptr);      /**< frees what alloc returned */
    void *ctx;                               /**< passed to both */
} bp_allocator;

/** One dense layer: its width, activation, and the activation's alpha. */
typedef struct bp_layer_spec {
    bp_int n_out;  /**< outputs of the layer, >= 1 */
    bp_act act;    /**< its activation */
    double alpha;  /**< the activation's alpha (leaky ReLU, ELU; see ::bp_act) */
} bp_layer_spec;

/** A view of one layer inside the network's flat buffers. W is n_out x n_in,
 * row-major (PyTorch's Linear convention; Fortran sees it as Wt(n_in, n_out)),
 * followed by b; dW and db sit at the same offsets in the gradient buffer. */
typedef struct bp_layer_view {
    bp_int n_in;     /**< inputs of the layer */
    bp_int n_out;    /**< outputs of the layer */
    bp_act act;      /**< its activation */
    double alpha;    /**< the activation's alpha */
    size_t offset;   /**< of W in the flat buffers, in elements; b follows at offset + n_out n_in */
    void *W;         /**< into the parameter buffer */
    void *b;         /**< into the parameter buffer */
    void *dW;        /**< into the gradient buffer */
    void *db;        /**< into the gradient buffer */
} bp_layer_view;

/** A network: its layers, parameters, gradients, plan and thread team; opaque. */
typedef struct bp_net bp_net;

/** Limits checked before allocating, so a size that could never fit fails
 * with BP_ERR_OVERFLOW instead of asking the system for it: at most this many layers. */
#define BP_NET_MAX_LAYERS 1024
/** At most this many parameters: 8 Gi elements (see BP_NET_MAX_LAYERS). */
#define BP_NET_MAX_PARAMS ((size_t)1 << 33)

/** Creates a network of dtype BP_F32 or BP_F64 taking n_in inputs, with the
 * given layers (n_layers >= 1) and loss; allocates its parameter and gradient
 * buffers (parameters zero until bp_net_init). alloc may be NULL for
 * malloc/free; the struct is copied. On error *out is left untouched. */
BP_API bp_status bp_net_create(bp_net **out, bp_dtype dtype, bp_int n_in, bp_int n_layers,
                               const bp_layer_spec *layers, bp_loss loss, const bp_allocator *alloc);

/** Frees everything the network allocated; NULL is a no-op. */
BP_API void bp_net_destroy(bp_net *net);

/** Initialises every layer's weights by `scheme` from a generator seeded with
 * `seed` (splitmix64 + xoshiro256**, Box-Muller normals; the same stream on
 * every machine), biases to zero. `gain` (finite, > 0 for every scheme) scales
 * BP_INIT_ORTHOGONAL; the others do not use it (pass 1). Orthogonal init
 * allocates its QR work space first, so on BP_ERR_NOMEM no weight changed. */
BP_API bp_status bp_net_init(bp_net *net, bp_init scheme, uint64_t seed, double gain);

/** \name Sizes and buffers
 * Sizes and buffers. params and grads are n_params elements of the dtype,
 * layer by layer, W then b, no padding. */
/** \{ */
/** The network's element type. */
BP_API bp_dtype bp_net_dtype(const bp_net *net);
/** The number of layers. */
BP_API bp_int bp_net_n_layers(const bp_net *net);
/** The number of inputs. */
BP_API bp_int bp_net_n_in(const bp_net *net);
/** The number of outputs (of the last layer). */
BP_API bp_int bp_net_n_out(const bp_net *net);
/** The loss the network is trained with. */
BP_API bp_loss bp_net_loss(const bp_net *net);
/** The number of parameters (elements of the parameter buffer). */
BP_API size_t bp_net_n_params(const bp_net *net);
/** The flat parameter buffer. */
BP_API void *bp_net_params(bp_net *net);
/** The flat gradient buffer, at the parameters' offsets. */
BP_API void *bp_net_grads(bp_net *net);
/** Fills *view with layer i (0 <= i < n_layers): its shape, activation and places in the
 * flat buffers. */
BP_API bp_status bp_net_layer(bp_net *net, bp_int i, bp_layer_view *view);
/** \} */

/** Plans for micro-batches of up to max_micro_batch samples: allocates one arena
 * holding every buffer at a fixed offset — each layer's output (kept for
 * backward), pre-activations of GELU layers only, two gradient buffers used in
 * turn (inference uses them too, in turn), and a gather buffer for the training
 * helper — and builds the step list forward(i) ..., loss, backward(i),
 * grads_ready(i) ... . Replanning frees the previous arena. Larger batches
 * stream through in micro-batches. */
BP_API bp_status bp_net_plan(bp_net *net, bp_int max_micro_batch);

/** Writes a description of the plan (steps, buffers, sizes, bytes) into buf
 * like snprintf: at most len bytes, always terminated when len > 0, and the
 * length it needs (excluding the terminator) in *needed if not NULL. */
BP_API bp_status bp_net_describe_plan(const bp_net *net, char *buf, size_t len, size_t *needed);

/** Chooses the kernels: BLAS (default) or the naive twins, for benchmarking a
 * whole step both ways. */
BP_API bp_status bp_net_set_backend(bp_net *net, bp_backend backend);

/** \name Threads
 * Threads: the library's one thread policy.
 *
 * A network runs its passes (bp_net_loss_and_grad, bp_optim_train_step, bp_train, bp_net_forward,
 * bp_net_accuracy, bp_net_rmse, bp_net_gradcheck) and its optimizer updates on n_threads threads:
 * the calling thread and a team of n_threads - 1 helper threads, started by bp_net_plan (or here,
 * on a planned network) and never by a pass. Every step of the plan (forward, loss, backward,
 * grads_ready of a layer) is cut into at most n_threads chunks, by rows of the micro-batch or by
 * columns, and only where each chunk keeps enough work to pay for a thread (a batch of one, or a
 * small layer, runs on the caller alone; bp_net_describe_plan prints the cuts). The caller and
 * whichever helpers are running take the chunks from a shared counter, so a helper that is not
 * running (the cores are busy with the host's own threads or other MPI ranks) is not waited
 * for: the caller takes its chunks. A waiting thread spins for a few tens of microseconds, then
 * blocks, so the library does not take cores from a busy host.
 *
 * BLAS runs on the calling thread alone inside each chunk. OpenBLAS's thread count is
 * process-wide: while any call above runs, it is set to 1, and it is given back as the host set
 * it when the last such call returns (calls from several threads at once agree on that), so no
 * call leaves it changed. A host thread calling BLAS meanwhile gets one BLAS thread.
 * Levenberg-Marquardt (bp_lm_fit) holds it at 1 for the whole fit, its Cholesky solves included
 * (OpenBLAS's idle threads would otherwise spin on the cores the passes need). Orthogonal
 * init (bp_net_init) and Newton's method (bp_logreg_newton) leave it alone: they call LAPACK on
 * the calling thread with BLAS's threads as the host configured them.
 *
 * Results depend on n_threads and the micro-batch, not on the load or on which thread ran what:
 * for a given configuration they are bitwise reproducible; across thread counts they agree to
 * rounding (products are cut differently).
 *
 * Default, and n_threads = 0: one thread per processor the process may run on (its affinity
 * mask on Linux, so taskset, numactl and an MPI launcher's binding are respected: a rank bound
 * to one core gets one thread), at most OMP_NUM_THREADS and at most OPENBLAS_NUM_THREADS when
 * these are set, read when the network is created (or here, for 0). n_threads = 1 pins the
 * network to the calling thread: no helper thread exists, and BLAS runs on that thread alone.
 * The team is created here once on a planned network (on failure, BP_ERR_NOMEM and nothing
 * changes); a pass allocates nothing. */
/** \{ */
/** The most threads a network runs on: n_threads of bp_net_set_threads is in [0, BP_NET_MAX_THREADS]. */
#define BP_NET_MAX_THREADS 64
/** Sets the number of threads the network runs on (0: the default), as described above. */
BP_API bp_status bp_net_set_threads(bp_net *net, int n_threads);
/** The number of threads the network runs on. */
BP_API int bp_net_threads(const bp_net *net);
/** \} */

/** The least work a chunk of a step must keep before the step is cut into more than one
 * chunk: min_macs multiply-adds for the products, min_values values for element-wise work
 * (0: the defaults, 2^18 and 2^16, measured on this library's benchmark: below them a
 * second thread costs more than it saves). Smaller values cut small layers too (1: every step
 * into n_threads chunks, as far as its rows or columns go), which tests and experiments use.
 * Results depend on these as on the thread count. Negative values are refused. */
BP_API bp_status bp_net_set_chunk_min(bp_net *net, long min_macs, long min_values);

/** With check on, inputs are scanned for NaN/Inf, and every layer's output and
 * gradient after it is produced; the first non-finite value stops the call with
 * BP_ERR_NONFINITE and bp_last_error() names the layer and pass. Off by default
 * (it costs a pass over each buffer). */
BP_API bp_status bp_net_set_check_finite(bp_net *net, int on);

/** Predicts: Y (n x n_out, leading dimension ldy) = the network's outputs for X
 * (n x n_in, ldx), before the loss (logits for the softmax / sigmoid losses).
 * Needs a plan; any n >= 0 (streams in micro-batches). */
BP_API bp_status bp_net_forward(bp_net *net, bp_int n, const void *X, bp_int ldx, void *Y, bp_int ldy);

/** Input standardisation, owned by the network once set: every pass (bp_net_forward,
 * bp_net_loss_and_grad, the evaluation and prediction calls, bp_train, bp_optim_train_step)
 * applies x' = (x - mean) / std to the raw inputs it is given, feature by feature, with the
 * arithmetic of bp_dataset_standardize (in double, rounded to the network's dtype once; a feature
 * with std < 1e-12 is only centred). Model files keep it (bp_model_save), so a loaded model
 * takes raw data. mean and std hold n_in finite values each (std >= 0); both NULL removes the
 * standardisation. Allocates its n_in pairs on first use (BP_ERR_NOMEM leaves the network
 * unchanged); a planned network needs no new plan. */
BP_API bp_status bp_net_set_standardization(bp_net *net, const double *mean, const double *std);

/** Computes the standardisation of n >= 1 raw samples X (n x n_in, leading dimension ldx, the
 * network's dtype) as bp_dataset_standardize does (mean, then the population standard
 * deviation, in double) and sets it, as bp_net_set_standardization. X is not changed. Errors:
 * BP_ERR_NONFINITE for a NaN or Inf in X or statistics that overflow. */
BP_API bp_status bp_net_fit_standardization(bp_net *net, bp_int n, const void *X, bp_int ldx);

/** Nonzero when the network standardises its inputs. */
BP_API int bp_net_has_standardization(const bp_net *net);

/** Copies the standardisation into mean and std (n_in values each); BP_ERR_ARG when the
 * network has none. */
BP_API bp_status bp_net_standardization(const bp_net *net, double *mean, double *std);

/** Probabilities: P (n x n_out, leading dimension ldp) receives the softmax of the outputs
 * (softmax cross-entropy), their sigmoid (sigmoid BCE), or the outputs themselves (MSE), for the
 * n samples of X. Needs a plan; streams in micro-batches. */
BP_API bp_status bp_net_predict_proba(bp_net *net, bp_int n, const void *X, bp_int ldx, void *P, bp_int ldp);

/** Predicted classes: classes[i] receives the arg-max of sample i's outputs (the first on a
 * tie), or for a one-output sigmoid BCE network 1 when the output is > 0, else 0. MSE
 * networks are refused (BP_ERR_ARG). Needs a plan. */
BP_API bp_status bp_net_predict_class(bp_net *net, bp_int n, const void *X, bp_int ldx, int32_t *classes);

/** The mean loss of n samples (targets as in bp_net_loss_and_grad), forward only: the gradient
 * buffer is not touched. Needs a plan; streams in micro-batches. */
BP_API bp_status bp_net_eval_loss(bp_net *net, bp_int n, const void *X, bp_int ldx, const void *targets,
                                  bp_int ldt, double *loss);

/** One training pass over a batch of n samples: forward, loss, backward. The
 * gradient buffer receives the gradient of the batch's mean loss (overwritten,
 * not accumulated), and *loss (may be NULL) the mean loss. targets: int32_t
 * labels (softmax cross-entropy; ldt ignored) or n x n_out values with leading
 * dimension ldt. A batch larger than the plan's micro-batch streams through in
 * micro-batches that accumulate into the same gradient (the loss divisor is n),
 * so the result equals the full-batch gradient up to rounding. n == 1 runs the
 * gemv/ger kernels. No allocation. */
BP_API bp_status bp_net_loss_and_grad(bp_net *net, bp_int n, const void *X, bp_int ldx,
                                      const void *targets, bp_int ldt, double *loss);

/** Each sample's own loss: losses[i] (n values) is the term of sample i whose mean over the
 * batch is the network's loss (bp_net_eval_loss): -log softmax(y_i)[c_i], the BCE summed over
 * the sample's outputs, its squared errors' mean over the outputs (BP_LOSS_MSE) or half their
 * sum (BP_LOSS_LEAST_SQUARES). Forward only; needs a plan. */
BP_API bp_status bp_net_sample_losses(bp_net *net, bp_int n, const void *X, bp_int ldx, const void *targets,
                                      bp_int ldt, double *losses);

/** The network as a differentiable function: backward from the caller's gradient dY = dL/dY
 * (n x n_out, leading dimension lddy) of the outputs of bp_net_forward, for a loss the host
 * computes itself (a vector-Jacobian product). Runs forward and backward through the planned
 * arena, micro-batch by micro-batch, without allocating; the network's own loss is not used.
 * The gradient buffer receives beta G + dL/dparams (beta 0 overwrites and does not read it, 1
 * adds to what is there: several terms of a host's loss sum up; any finite beta), and dX (n x
 * n_in, lddx; NULL when not wanted) receives dL/dX of the raw inputs (through the network's
 * standardisation, if it has one). dX must not overlap X or dY. With the finite check on, dY is
 * scanned too. */
BP_API bp_status bp_net_backward(bp_net *net, bp_int n, const void *X, bp_int ldx, const void *dY, bp_int lddy,
                                 double beta, void *dX, bp_int lddx);

/** bp_net_loss_and_grad that also writes dX = dL/dX (n x n_in, lddx; NULL: not wanted) of the
 * batch's mean loss with respect to the raw inputs. */
BP_API bp_status bp_net_loss_and_grad_dx(bp_net *net, bp_int n, const void *X, bp_int ldx, const void *targets,
                                         bp_int ldt, double *loss, void *dX, bp_int lddx);

/** The Jacobian of the outputs with respect to the inputs, per sample: J holds n blocks of
 * n_out x n_in, J[i][k][j] = dY[i][k] / dX[i][j] (raw inputs), contiguous. Built from n_out
 * backward passes with dY = e_k for the whole batch, each a GEMM over the batch per layer, not
 * by differences. The gradient buffer is not touched. */
BP_API bp_status bp_net_jacobian_inputs(bp_net *net, bp_int n, const void *X, bp_int ldx, void *J);

/** The Jacobian of the outputs with respect to the parameters: row i n_out + k of J (n n_out
 * rows, leading dimension ldj >= n_params) is the gradient of output k of sample i, laid out as
 * the parameter buffer (W then b, layer by layer): per layer the outer product dz x^T and dz.
 * Rows depend only on their own sample, so a caller may call it on blocks of samples and
 * process J in pieces (Levenberg-Marquardt accumulates J^T J that way). The gradient buffer is
 * not touched. */
BP_API bp_status bp_net_jacobian_params(bp_net *net, bp_int n, const void *X, bp_int ldx, void *J, size_t ldj);

/** Evaluation, streaming in micro-batches (needs a plan). Classification counts a
 * sample correct when the arg-max of its outputs equals its label (BCE with one
 * output: output > 0 vs label 1). confusion (n_out x n_out, row = true label,
 * column = predicted) may be NULL. For real targets, *rmse is the root mean
 * squared error over all elements. */
BP_API bp_status bp_net_accuracy(bp_net *net, bp_int n, const void *X, bp_int ldx,
                                 const int32_t *labels, double *accuracy, int64_t *confusion);
/** The root mean squared error over all elements, for real targets (as bp_net_accuracy). */
BP_API bp_status bp_net_rmse(bp_net *net, bp_int n, const void *X, bp_int ldx,
                             const void *targets, bp_int ldt, double *rmse);

/** Gradient check for users: compares the backprop gradient g of the batch's
 * mean loss with central differences fd = (L(p + h) - L(p - h)) / 2h, for every
 * parameter, with h = 1e-6 max(1, |p|) when h <= 0 is passed. F64 networks only
 * (differences in float are too coarse: BP_ERR_UNSUPPORTED). *max_rel_err
 * receives the normwise error max|g - fd| / max|fd| (denominator at least
 * 1e-12), *worst (may be NULL) the index of the parameter with the largest
 * |g - fd|. The parameters are restored bitwise; the gradient buffer holds g. */
BP_API bp_status bp_net_gradcheck(bp_net *net, bp_int n, const void *X, bp_int ldx,
                                  const void *targets, bp_int ldt, double h,
                                  double *max_rel_err, size_t *worst);

#ifdef __cplusplus
}
#endif
#endif
