/* SPDX-License-Identifier: MIT */
/* args_tmpl.h: every kernel of one precision called from an argument record (struct call); test_args.c includes it with T, K(name), A(name) defined. */

static void A(set)(void *buf, size_t i, double v)
{
    ((T *)buf)[i] = (T)v;
}

static double A(get)(const void *buf, size_t i)
{
    return ((const T *)buf)[i];
}

#ifndef ARGS_TMPL_ONCE
#define ARGS_TMPL_ONCE
#define PTR(id) ((T *)c->p[id])
#define CPTR(id) ((const T *)c->p[id])
#define LOSS ((double *)c->p[B_LOSS])
#define PICK(name) (naive ? K(name##_naive) : K(name))
#endif

static bp_status A(dense_forward)(const call *c, int naive)
{
    return PICK(dense_forward)((bp_layout)c->layout, c->n, c->n_in, c->n_out, CPTR(B_X), c->ld[B_X], CPTR(B_W),
                               c->ld[B_W], CPTR(B_B), (bp_act)c->act, (T)c->alpha, PTR(B_Z), c->ld[B_Z], PTR(B_Y),
                               c->ld[B_Y]);
}

static bp_status A(dense_backward)(const call *c, int naive)
{
    return PICK(dense_backward)((bp_layout)c->layout, c->n, c->n_in, c->n_out, CPTR(B_X), c->ld[B_X], CPTR(B_W),
                                c->ld[B_W], (bp_act)c->act, (T)c->alpha, CPTR(B_Z), c->ld[B_Z], CPTR(B_Y),
                                c->ld[B_Y], CPTR(B_DY), c->ld[B_DY], PTR(B_DZ), c->ld[B_DZ], (T)c->beta, PTR(B_DW),
                                c->ld[B_DW], PTR(B_DB), PTR(B_DX), c->ld[B_DX]);
}

static bp_status A(act_forward)(const call *c, int naive)
{
    return PICK(act_forward)((bp_act)c->act, (T)c->alpha, c->n, c->m, CPTR(B_Z), c->ld[B_Z], PTR(B_Y), c->ld[B_Y]);
}

static bp_status A(act_backward)(const call *c, int naive)
{
    return PICK(act_backward)((bp_act)c->act, (T)c->alpha, c->n, c->m, CPTR(B_Z), c->ld[B_Z], CPTR(B_Y), c->ld[B_Y],
                              CPTR(B_DY), c->ld[B_DY], PTR(B_DZ), c->ld[B_DZ]);
}

static bp_status A(softmax_xent)(const call *c, int naive)
{
    return PICK(softmax_xent)(c->n, c->m, CPTR(B_Z), c->ld[B_Z], c->labels, (T)c->divisor, LOSS, PTR(B_DZ),
                              c->ld[B_DZ]);
}

static bp_status A(softmax_xent_prob)(const call *c, int naive)
{
    return PICK(softmax_xent_prob)(c->n, c->m, CPTR(B_Z), c->ld[B_Z], CPTR(B_T), c->ld[B_T], (T)c->divisor, LOSS,
                                   PTR(B_DZ), c->ld[B_DZ]);
}

static bp_status A(sigmoid_bce)(const call *c, int naive)
{
    return PICK(sigmoid_bce)(c->n, c->m, CPTR(B_Z), c->ld[B_Z], CPTR(B_T), c->ld[B_T], (T)c->divisor, LOSS,
                             PTR(B_DZ), c->ld[B_DZ]);
}

static bp_status A(mse)(const call *c, int naive)
{
    return PICK(mse)(c->n, c->m, CPTR(B_Z), c->ld[B_Z], CPTR(B_T), c->ld[B_T], (T)c->divisor, LOSS, PTR(B_DZ),
                     c->ld[B_DZ]);
}

static bp_status A(logreg_grad)(const call *c, int naive)
{
    return PICK(logreg_grad)((bp_layout)c->layout, c->n_in, c->n_out, CPTR(B_W), c->ld[B_W], CPTR(B_B), CPTR(B_X),
                             c->label, (T)c->divisor, PTR(B_P), LOSS, (T)c->beta, PTR(B_DW), c->ld[B_DW], PTR(B_DB));
}

static const typed A(typed) = {
    sizeof(T),
    A(set),
    A(get),
    {A(dense_forward), A(dense_backward), A(act_forward), A(act_backward), A(softmax_xent), A(softmax_xent_prob),
     A(sigmoid_bce), A(mse), A(logreg_grad)},
};
