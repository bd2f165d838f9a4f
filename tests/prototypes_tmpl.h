/* SPDX-License-Identifier: MIT */
/* prototypes_tmpl.h: each kernel of one precision checked against its template's signature;
 * test_prototypes.c includes it with T, K(name), A(name) and NAME(name) defined. */

/* The kernels' types, copied from the definitions in src/kernels/kernels.tmpl.c (the naive
 * twins in src/ref/naive.tmpl.c have the same parameter lists) with T for the precision. */
typedef bp_status A(dense_forward_t)(bp_layout layout, bp_int n, bp_int n_in, bp_int n_out,
                                     const T *X, bp_int ldx, const T *W, bp_int ldw, const T *b,
                                     bp_act act, T alpha, T *Z, bp_int ldz, T *Y, bp_int ldy);
typedef bp_status A(dense_backward_t)(bp_layout layout, bp_int n, bp_int n_in, bp_int n_out,
                                      const T *X, bp_int ldx, const T *W, bp_int ldw,
                                      bp_act act, T alpha, const T *Z, bp_int ldz, const T *Y, bp_int ldy,
                                      const T *dY, bp_int lddy, T *dZ, bp_int lddz,
                                      T beta, T *dW, bp_int lddw, T *db, T *dX, bp_int lddx);
typedef bp_status A(act_forward_t)(bp_act act, T alpha, bp_int n, bp_int m,
                                   const T *Z, bp_int ldz, T *Y, bp_int ldy);
typedef bp_status A(act_backward_t)(bp_act act, T alpha, bp_int n, bp_int m,
                                    const T *Z, bp_int ldz, const T *Y, bp_int ldy,
                                    const T *dY, bp_int lddy, T *dZ, bp_int lddz);
typedef bp_status A(softmax_xent_t)(bp_int n, bp_int m, const T *Z, bp_int ldz, const int32_t *labels,
                                    T divisor, double *loss, T *dZ, bp_int lddz);
typedef bp_status A(softmax_xent_prob_t)(bp_int n, bp_int m, const T *Z, bp_int ldz, const T *Tgt,
                                         bp_int ldt, T divisor, double *loss, T *dZ, bp_int lddz);
typedef bp_status A(sigmoid_bce_t)(bp_int n, bp_int m, const T *Z, bp_int ldz, const T *Tgt, bp_int ldt,
                                   T divisor, double *loss, T *dZ, bp_int lddz);
typedef bp_status A(mse_t)(bp_int n, bp_int m, const T *Z, bp_int ldz, const T *Tgt, bp_int ldt,
                           T divisor, double *loss, T *dZ, bp_int lddz);
typedef bp_status A(logreg_grad_t)(bp_layout layout, bp_int n_in, bp_int n_classes, const T *W, bp_int ldw,
                                   const T *b, const T *x, int32_t label, T divisor, T *p, double *loss,
                                   T beta, T *dW, bp_int lddw, T *db);

/* Compile time: the written prototype of the BLAS kernel and of its naive twin each have the
 * template's type (SAME_TYPE), and initialise a pointer of that type (an error by the pragma
 * in test_prototypes.c if they do not). Run time: a call through that pointer with a bad
 * argument is refused, and the error message names the function by its definition's __func__,
 * so the symbol behind each written name is that function, of this precision. */
#define PROTO_THUNK(fn, ...)                                                                    \
    SAME_TYPE(K(fn), A(fn##_t));                                                               \
    SAME_TYPE(K(fn##_naive), A(fn##_t));                                                       \
    static bp_status A(bad_##fn)(int naive, const char **name)                                 \
    {                                                                                           \
        A(fn##_t) *const f[2] = {K(fn), K(fn##_naive)};                                        \
        static const char *const names[2] = {NAME(fn), NAME(fn##_naive)};                      \
        *name = names[naive];                                                                   \
        return f[naive](__VA_ARGS__);                                                           \
    }

/* The bad argument: a negative batch, or for logreg_grad (no batch) n_in = 0. */
PROTO_THUNK(dense_forward, BP_ROW_MAJOR, -1, 1, 1, NULL, 1, NULL, 1, NULL, BP_ACT_IDENTITY, 0, NULL, 1,
            NULL, 1)
PROTO_THUNK(dense_backward, BP_ROW_MAJOR, -1, 1, 1, NULL, 1, NULL, 1, BP_ACT_IDENTITY, 0, NULL, 1, NULL,
            1, NULL, 1, NULL, 1, 0, NULL, 1, NULL, NULL, 1)
PROTO_THUNK(act_forward, BP_ACT_RELU, 0, -1, 1, NULL, 1, NULL, 1)
PROTO_THUNK(act_backward, BP_ACT_RELU, 0, -1, 1, NULL, 1, NULL, 1, NULL, 1, NULL, 1)
PROTO_THUNK(softmax_xent, -1, 2, NULL, 2, NULL, 1, NULL, NULL, 2)
PROTO_THUNK(softmax_xent_prob, -1, 2, NULL, 2, NULL, 2, 1, NULL, NULL, 2)
PROTO_THUNK(sigmoid_bce, -1, 2, NULL, 2, NULL, 2, 1, NULL, NULL, 2)
PROTO_THUNK(mse, -1, 2, NULL, 2, NULL, 2, 1, NULL, NULL, 2)
PROTO_THUNK(logreg_grad, BP_ROW_MAJOR, 0, 2, NULL, 2, NULL, NULL, 0, 1, NULL, NULL, 0, NULL, 2, NULL)

static bad_call *const A(bad)[] = {A(bad_dense_forward), A(bad_dense_backward), A(bad_act_forward),
                                   A(bad_act_backward), A(bad_softmax_xent), A(bad_softmax_xent_prob),
                                   A(bad_sigmoid_bce), A(bad_mse), A(bad_logreg_grad)};

#undef PROTO_THUNK
