! SPDX-License-Identifier: MIT
  ! kernels_iface.tmpl.f90: bind(C) interfaces of the bp_@P@ kernels@S@ (backprop/kernels.h),
  ! real(@WP@); Meson configures this template once per precision and suffix.
  ! Sample blocks are A(ld, n); a weight matrix is W(ldw, *): W(n_out, n_in) with
  ! BP_COL_MAJOR, Wt(n_in, n_out) with BP_ROW_MAJOR. Arguments C accepts as NULL
  ! are type(c_ptr) (c_loc(A) or c_null_ptr). The outputs are intent(inout): on
  ! error they are left as they were.
  public :: bp_@P@dense_forward@S@, bp_@P@dense_backward@S@, bp_@P@act_forward@S@, bp_@P@act_backward@S@, &
      bp_@P@softmax_xent@S@, bp_@P@softmax_xent_prob@S@, bp_@P@sigmoid_bce@S@, bp_@P@mse@S@, &
      bp_@P@logreg_grad@S@

  interface
    ! Z = X W^T + 1 b^T, Y = f(Z)
    function bp_@P@dense_forward@S@(layout, n, n_in, n_out, X, ldx, W, ldw, b, act, alpha, Z, ldz, Y, ldy) &
        bind(C, name='bp_@P@dense_forward@S@') result(status)
      import
      integer(c_int), value :: layout, n, n_in, n_out, ldx, ldw, act, ldz, ldy
      real(@WP@), intent(in) :: X(ldx, *), W(ldw, *)
      type(c_ptr), value :: b, Z
      real(@WP@), value :: alpha
      real(@WP@), intent(inout) :: Y(ldy, *)
      integer(c_int) :: status
    end function

    ! dZ = dY f'(Z), dW = beta dW + dZ^T X, db = beta db + sum dZ, dX = dZ W
    function bp_@P@dense_backward@S@(layout, n, n_in, n_out, X, ldx, W, ldw, act, alpha, Z, ldz, Y, ldy, &
        dY, lddy, dZ, lddz, beta, dW, lddw, db, dX, lddx) bind(C, name='bp_@P@dense_backward@S@') result(status)
      import
      integer(c_int), value :: layout, n, n_in, n_out, ldx, ldw, act, ldz, ldy, lddy, lddz, lddw, lddx
      real(@WP@), intent(in) :: X(ldx, *), W(ldw, *), dY(lddy, *)
      real(@WP@), value :: alpha, beta
      type(c_ptr), value :: Z, Y, db, dX
      real(@WP@), intent(inout) :: dZ(lddz, *), dW(lddw, *)
      integer(c_int) :: status
    end function

    ! Y = f(Z) over m x n
    function bp_@P@act_forward@S@(act, alpha, n, m, Z, ldz, Y, ldy) bind(C, name='bp_@P@act_forward@S@') &
        result(status)
      import
      integer(c_int), value :: act, n, m, ldz, ldy
      real(@WP@), value :: alpha
      real(@WP@), intent(in) :: Z(ldz, *)
      real(@WP@), intent(inout) :: Y(ldy, *)
      integer(c_int) :: status
    end function

    ! dZ = dY f'(Z)
    function bp_@P@act_backward@S@(act, alpha, n, m, Z, ldz, Y, ldy, dY, lddy, dZ, lddz) &
        bind(C, name='bp_@P@act_backward@S@') result(status)
      import
      integer(c_int), value :: act, n, m, ldz, ldy, lddy, lddz
      real(@WP@), value :: alpha
      type(c_ptr), value :: Z, Y
      real(@WP@), intent(in) :: dY(lddy, *)
      real(@WP@), intent(inout) :: dZ(lddz, *)
      integer(c_int) :: status
    end function

    ! Losses on m x n logits: loss (c_loc of a real(c_double)) and dZ may be c_null_ptr.
    function bp_@P@softmax_xent@S@(n, m, Z, ldz, labels, divisor, loss, dZ, lddz) &
        bind(C, name='bp_@P@softmax_xent@S@') result(status)
      import
      integer(c_int), value :: n, m, ldz, lddz
      real(@WP@), intent(in) :: Z(ldz, *)
      integer(c_int32_t), intent(in) :: labels(*)
      real(@WP@), value :: divisor
      type(c_ptr), value :: loss, dZ
      integer(c_int) :: status
    end function

    function bp_@P@softmax_xent_prob@S@(n, m, Z, ldz, Tgt, ldt, divisor, loss, dZ, lddz) &
        bind(C, name='bp_@P@softmax_xent_prob@S@') result(status)
      import
      integer(c_int), value :: n, m, ldz, ldt, lddz
      real(@WP@), intent(in) :: Z(ldz, *), Tgt(ldt, *)
      real(@WP@), value :: divisor
      type(c_ptr), value :: loss, dZ
      integer(c_int) :: status
    end function

    function bp_@P@sigmoid_bce@S@(n, m, Z, ldz, Tgt, ldt, divisor, loss, dZ, lddz) &
        bind(C, name='bp_@P@sigmoid_bce@S@') result(status)
      import
      integer(c_int), value :: n, m, ldz, ldt, lddz
      real(@WP@), intent(in) :: Z(ldz, *), Tgt(ldt, *)
      real(@WP@), value :: divisor
      type(c_ptr), value :: loss, dZ
      integer(c_int) :: status
    end function

    function bp_@P@mse@S@(n, m, Z, ldz, Tgt, ldt, divisor, loss, dZ, lddz) bind(C, name='bp_@P@mse@S@') &
        result(status)
      import
      integer(c_int), value :: n, m, ldz, ldt, lddz
      real(@WP@), intent(in) :: Z(ldz, *), Tgt(ldt, *)
      real(@WP@), value :: divisor
      type(c_ptr), value :: loss, dZ
      integer(c_int) :: status
    end function

    ! One sample: p = softmax(W x + b), dW = beta dW + g x^T, db = beta db + g
    function bp_@P@logreg_grad@S@(layout, n_in, n_classes, W, ldw, b, x, label, divisor, p, loss, beta, &
        dW, lddw, db) bind(C, name='bp_@P@logreg_grad@S@') result(status)
      import
      integer(c_int), value :: layout, n_in, n_classes, ldw, lddw
      real(@WP@), intent(in) :: W(ldw, *), x(n_in)
      type(c_ptr), value :: b, loss, db
      integer(c_int32_t), value :: label
      real(@WP@), value :: divisor, beta
      real(@WP@), intent(inout) :: p(n_classes), dW(lddw, *)
      integer(c_int) :: status
    end function
  end interface
