! SPDX-License-Identifier: MIT
  ! kernels_wrap.tmpl.f90: the real(@WP@) specifics of the generic kernel wrappers bp_dense_forward@S@, ...
  ! (Meson configures this template once per precision and suffix).
  ! Sizes come from the arrays: a batch X(n_in, n), outputs Y(n_out, n), and
  ! W(n_out, n_in) (layout BP_COL_MAJOR, the default) or Wt(n_in, n_out)
  ! (layout = BP_ROW_MAJOR). alpha, beta and divisor have the kind of the data.

  ! For each sample (column) x of X: z = W x + b, y = f(z), into the columns of
  ! Y. b absent: no bias. Z present: receives z (GELU backward needs it).
  subroutine bp_@P@dense_forward@S@_f(X, W, Y, act, b, alpha, Z, layout, stat)
    real(@WP@), intent(in), target :: X(:, :), W(:, :)
    real(@WP@), intent(inout), target :: Y(:, :)
    integer(c_int), intent(in) :: act
    real(@WP@), intent(in), target, optional :: b(:)
    real(@WP@), intent(in), optional :: alpha
    real(@WP@), intent(inout), target, optional :: Z(:, :)
    integer(c_int), intent(in), optional :: layout
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_dense_forward@S@'
    real(@WP@), pointer, contiguous :: xv(:), wv(:), yv(:)
    type(c_ptr) :: pb, pz
    integer(c_int) :: lay, n, n_in, n_out, ldx, ldw, ldy, ldz
    real(@WP@) :: a

    lay = opt_layout(layout)
    n_in = int(size(X, 1), c_int)
    n = int(size(X, 2), c_int)
    if (.not. weight_dims(fn, 'W', lay, shape(W), n_in, n_out, stat)) return
    if (.not. shape_is(fn, 'Y', shape(Y), [n_out, n], stat)) return
    if (.not. mat_@P@(fn, 'X', X, xv, ldx, stat)) return
    if (.not. mat_@P@(fn, 'W', W, wv, ldw, stat)) return
    if (.not. mat_@P@(fn, 'Y', Y, yv, ldy, stat)) return
    if (.not. opt_vec_@P@(fn, 'b', b, n_out, pb, stat)) return
    ldz = ldy
    if (.not. opt_mat_@P@(fn, 'Z', Z, [n_out, n], pz, ldz, stat)) return
    a = 0
    if (present(alpha)) a = alpha
    call finish(bp_@P@dense_forward@S@(lay, n, n_in, n_out, xv, ldx, wv, ldw, pb, act, a, pz, ldz, yv, ldy), stat)
  end subroutine

  ! Backward of the layer above, given dY = dL/dY (n_out, n):
  !   dZ = dY f'(Z); dW = beta dW + (dZ, X); db = beta db + sum of dZ; dX = W^T dZ.
  ! dZ absent: dZ overwrites dY (in place). Y is needed unless act is identity
  ! or a GELU; Z only for the GELUs. dW has W's shape (and layout); beta
  ! defaults to 0 (overwrite); db and dX are skipped when absent.
  subroutine bp_@P@dense_backward@S@_f(X, W, dY, dW, act, Y, Z, alpha, dZ, beta, db, dX, layout, stat)
    real(@WP@), intent(in), target :: X(:, :), W(:, :)
    real(@WP@), intent(inout), target :: dY(:, :), dW(:, :)
    integer(c_int), intent(in) :: act
    real(@WP@), intent(in), target, optional :: Y(:, :), Z(:, :)
    real(@WP@), intent(in), optional :: alpha, beta
    real(@WP@), intent(inout), target, optional :: dZ(:, :), db(:), dX(:, :)
    integer(c_int), intent(in), optional :: layout
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_dense_backward@S@'
    real(@WP@), pointer, contiguous :: xv(:), wv(:), dyv(:), dwv(:), dzv(:)
    type(c_ptr) :: py, pz, pdb, pdx
    integer(c_int) :: lay, n, n_in, n_out, ldx, ldw, lddy, lddw, ldy, ldz, lddz, lddx
    real(@WP@) :: a, bt

    lay = opt_layout(layout)
    n_in = int(size(X, 1), c_int)
    n = int(size(X, 2), c_int)
    if (.not. weight_dims(fn, 'W', lay, shape(W), n_in, n_out, stat)) return
    if (.not. shape_is(fn, 'dW', shape(dW), shape(W), stat)) return
    if (.not. shape_is(fn, 'dY', shape(dY), [n_out, n], stat)) return
    if (.not. mat_@P@(fn, 'X', X, xv, ldx, stat)) return
    if (.not. mat_@P@(fn, 'W', W, wv, ldw, stat)) return
    if (.not. mat_@P@(fn, 'dY', dY, dyv, lddy, stat)) return
    if (.not. mat_@P@(fn, 'dW', dW, dwv, lddw, stat)) return
    ldy = lddy
    if (.not. opt_mat_@P@(fn, 'Y', Y, [n_out, n], py, ldy, stat)) return
    ldz = lddy
    if (.not. opt_mat_@P@(fn, 'Z', Z, [n_out, n], pz, ldz, stat)) return
    dzv => dyv
    lddz = lddy
    if (.not. opt_view_@P@(fn, 'dZ', dZ, [n_out, n], dzv, lddz, stat)) return
    if (.not. opt_vec_@P@(fn, 'db', db, n_out, pdb, stat)) return
    lddx = n_in
    if (.not. opt_mat_@P@(fn, 'dX', dX, [n_in, n], pdx, lddx, stat)) return
    a = 0
    if (present(alpha)) a = alpha
    bt = 0
    if (present(beta)) bt = beta
    call finish(bp_@P@dense_backward@S@(lay, n, n_in, n_out, xv, ldx, wv, ldw, act, a, pz, ldz, py, ldy, &
        dyv, lddy, dzv, lddz, bt, dwv, lddw, pdb, pdx, lddx), stat)
  end subroutine

  ! Y = f(Z) over each sample (column) of Z(m, n); Y absent: in place in Z.
  subroutine bp_@P@act_forward@S@_f(act, Z, Y, alpha, stat)
    integer(c_int), intent(in) :: act
    real(@WP@), intent(inout), target :: Z(:, :)
    real(@WP@), intent(inout), target, optional :: Y(:, :)
    real(@WP@), intent(in), optional :: alpha
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_act_forward@S@'
    real(@WP@), pointer, contiguous :: zv(:), yv(:)
    integer(c_int) :: m, n, ldz, ldy
    real(@WP@) :: a

    m = int(size(Z, 1), c_int)
    n = int(size(Z, 2), c_int)
    if (.not. mat_@P@(fn, 'Z', Z, zv, ldz, stat)) return
    yv => zv
    ldy = ldz
    if (.not. opt_view_@P@(fn, 'Y', Y, [m, n], yv, ldy, stat)) return
    a = 0
    if (present(alpha)) a = alpha
    call finish(bp_@P@act_forward@S@(act, a, n, m, zv, ldz, yv, ldy), stat)
  end subroutine

  ! dZ = dY f'(Z) for dY(m, n); dZ absent: in place in dY. Y is needed unless
  ! act is identity or a GELU; Z only for the GELUs.
  subroutine bp_@P@act_backward@S@_f(act, dY, Y, Z, alpha, dZ, stat)
    integer(c_int), intent(in) :: act
    real(@WP@), intent(inout), target :: dY(:, :)
    real(@WP@), intent(in), target, optional :: Y(:, :), Z(:, :)
    real(@WP@), intent(in), optional :: alpha
    real(@WP@), intent(inout), target, optional :: dZ(:, :)
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_act_backward@S@'
    real(@WP@), pointer, contiguous :: dyv(:), dzv(:)
    type(c_ptr) :: py, pz
    integer(c_int) :: m, n, lddy, lddz, ldy, ldz
    real(@WP@) :: a

    m = int(size(dY, 1), c_int)
    n = int(size(dY, 2), c_int)
    if (.not. mat_@P@(fn, 'dY', dY, dyv, lddy, stat)) return
    ldy = lddy
    if (.not. opt_mat_@P@(fn, 'Y', Y, [m, n], py, ldy, stat)) return
    ldz = lddy
    if (.not. opt_mat_@P@(fn, 'Z', Z, [m, n], pz, ldz, stat)) return
    dzv => dyv
    lddz = lddy
    if (.not. opt_view_@P@(fn, 'dZ', dZ, [m, n], dzv, lddz, stat)) return
    a = 0
    if (present(alpha)) a = alpha
    call finish(bp_@P@act_backward@S@(act, a, n, m, pz, ldz, py, ldy, dyv, lddy, dzv, lddz), stat)
  end subroutine

  ! Softmax cross-entropy of logits Z(m, n) against 0-based labels(n):
  ! loss = sum -log softmax(z)[c] / divisor, dZ = (softmax(z) - onehot(c)) / divisor.
  ! divisor defaults to n (the mean over this batch).
  subroutine bp_@P@softmax_xent@S@_f(Z, labels, loss, dZ, divisor, stat)
    real(@WP@), intent(in), target :: Z(:, :)
    integer(c_int32_t), intent(in), target :: labels(:)
    real(c_double), intent(inout), target, optional :: loss
    real(@WP@), intent(inout), target, optional :: dZ(:, :)
    real(@WP@), intent(in), optional :: divisor
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_softmax_xent@S@'
    real(@WP@), pointer, contiguous :: zv(:)
    integer(c_int32_t), pointer, contiguous :: lv(:)
    type(c_ptr) :: pl, pdz
    integer(c_int) :: m, n, ldz, lddz
    real(@WP@) :: d

    m = int(size(Z, 1), c_int)
    n = int(size(Z, 2), c_int)
    if (.not. size_is(fn, 'labels', size(labels), n, stat)) return
    if (.not. mat_@P@(fn, 'Z', Z, zv, ldz, stat)) return
    if (.not. vec_i32(fn, 'labels', labels, lv, stat)) return
    if (.not. loss_outputs_@P@(fn, m, n, loss, dZ, pl, pdz, lddz, stat)) return
    d = real(max(n, 1_c_int), @WP@)
    if (present(divisor)) d = divisor
    call finish(bp_@P@softmax_xent@S@(n, m, zv, ldz, lv, d, pl, pdz, lddz), stat)
  end subroutine

  ! Softmax cross-entropy against target probabilities T(m, n).
  subroutine bp_@P@softmax_xent_prob@S@_f(Z, T, loss, dZ, divisor, stat)
    real(@WP@), intent(in), target :: Z(:, :), T(:, :)
    real(c_double), intent(inout), target, optional :: loss
    real(@WP@), intent(inout), target, optional :: dZ(:, :)
    real(@WP@), intent(in), optional :: divisor
    integer(c_int), intent(out), optional :: stat
    call target_loss_@P@(bp_@P@softmax_xent_prob@S@, 'bp_softmax_xent_prob@S@', Z, T, loss, dZ, divisor, stat)
  end subroutine

  ! Sigmoid binary cross-entropy of logits Z(m, n) against targets T(m, n) in [0, 1].
  subroutine bp_@P@sigmoid_bce@S@_f(Z, T, loss, dZ, divisor, stat)
    real(@WP@), intent(in), target :: Z(:, :), T(:, :)
    real(c_double), intent(inout), target, optional :: loss
    real(@WP@), intent(inout), target, optional :: dZ(:, :)
    real(@WP@), intent(in), optional :: divisor
    integer(c_int), intent(out), optional :: stat
    call target_loss_@P@(bp_@P@sigmoid_bce@S@, 'bp_sigmoid_bce@S@', Z, T, loss, dZ, divisor, stat)
  end subroutine

  ! Mean squared error of outputs Z(m, n) against T(m, n), a mean over all
  ! elements: loss = sum (z - t)^2 / (divisor m).
  subroutine bp_@P@mse@S@_f(Z, T, loss, dZ, divisor, stat)
    real(@WP@), intent(in), target :: Z(:, :), T(:, :)
    real(c_double), intent(inout), target, optional :: loss
    real(@WP@), intent(inout), target, optional :: dZ(:, :)
    real(@WP@), intent(in), optional :: divisor
    integer(c_int), intent(out), optional :: stat
    call target_loss_@P@(bp_@P@mse@S@, 'bp_mse@S@', Z, T, loss, dZ, divisor, stat)
  end subroutine

  ! One sample x(n_in) with 0-based label: p(n_classes) = softmax(W x + b),
  ! dW = beta dW + (p - onehot) x^T, db = beta db + (p - onehot), all divided
  ! by divisor (default 1). W(n_classes, n_in) (or Wt with BP_ROW_MAJOR).
  subroutine bp_@P@logreg_grad@S@_f(W, x, label, p, dW, b, db, divisor, loss, beta, layout, stat)
    real(@WP@), intent(in), target :: W(:, :), x(:)
    integer(c_int32_t), intent(in) :: label
    real(@WP@), intent(inout), target :: p(:), dW(:, :)
    real(@WP@), intent(in), target, optional :: b(:)
    real(@WP@), intent(inout), target, optional :: db(:)
    real(@WP@), intent(in), optional :: divisor, beta
    real(c_double), intent(inout), target, optional :: loss
    integer(c_int), intent(in), optional :: layout
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_logreg_grad@S@'
    real(@WP@), pointer, contiguous :: wv(:), xv(:), pv(:), dwv(:)
    type(c_ptr) :: pb, pdb, pl
    integer(c_int) :: lay, n_in, n_classes, ldw, lddw
    real(@WP@) :: d, bt

    lay = opt_layout(layout)
    n_in = int(size(x), c_int)
    if (.not. weight_dims(fn, 'W', lay, shape(W), n_in, n_classes, stat)) return
    if (.not. shape_is(fn, 'dW', shape(dW), shape(W), stat)) return
    if (.not. size_is(fn, 'p', size(p), n_classes, stat)) return
    if (.not. mat_@P@(fn, 'W', W, wv, ldw, stat)) return
    if (.not. mat_@P@(fn, 'dW', dW, dwv, lddw, stat)) return
    if (.not. vec_@P@(fn, 'x', x, xv, stat)) return
    if (.not. vec_@P@(fn, 'p', p, pv, stat)) return
    if (.not. opt_vec_@P@(fn, 'b', b, n_classes, pb, stat)) return
    if (.not. opt_vec_@P@(fn, 'db', db, n_classes, pdb, stat)) return
    pl = c_null_ptr
    if (present(loss)) pl = c_loc(loss)
    d = 1
    if (present(divisor)) d = divisor
    bt = 0
    if (present(beta)) bt = beta
    call finish(bp_@P@logreg_grad@S@(lay, n_in, n_classes, wv, ldw, pb, xv, label, d, pv, pl, bt, &
        dwv, lddw, pdb), stat)
  end subroutine
