! SPDX-License-Identifier: MIT
  ! typed.tmpl.f90: the real(@WP@) helpers and the specifics of the generic network, training,
  ! optimizer and data-set wrappers (Meson configures this template once per precision). The
  ! views mat_@P@ and ptr_@P@, which the module backprop_mpi uses too, are in views.tmpl.f90.

  ! An optional matrix argument of the given shape: when present, v and ld
  ! become its view and leading dimension; when absent, they keep what the
  ! caller set (e.g. the view of an input that an absent output overwrites).
  logical function opt_view_@P@(fn, name, A, dims, v, ld, stat) result(ok)
    character(len=*), intent(in) :: fn, name
    real(@WP@), intent(in), target, optional :: A(:, :)
    integer(c_int), intent(in) :: dims(2)
    real(@WP@), pointer, contiguous, intent(inout) :: v(:)
    integer(c_int), intent(inout) :: ld
    integer(c_int), intent(out), optional :: stat
    ok = .true.
    if (.not. present(A)) return
    ok = shape_is(fn, name, shape(A), dims, stat)
    if (ok) ok = mat_@P@(fn, name, A, v, ld, stat)
  end function

  ! The same as the address the library takes (c_null_ptr when absent; ld is
  ! then left as given).
  logical function opt_mat_@P@(fn, name, A, dims, p, ld, stat) result(ok)
    character(len=*), intent(in) :: fn, name
    real(@WP@), intent(in), target, optional :: A(:, :)
    integer(c_int), intent(in) :: dims(2)
    type(c_ptr), intent(out) :: p
    integer(c_int), intent(inout) :: ld
    integer(c_int), intent(out), optional :: stat
    real(@WP@), pointer, contiguous :: v(:)
    v => empty_@P@(1:0)
    ok = opt_view_@P@(fn, name, A, dims, v, ld, stat)
    p = ptr_@P@(v)
  end function

  ! A vector argument: contiguous, passed in place.
  logical function vec_@P@(fn, name, a, v, stat) result(ok)
    character(len=*), intent(in) :: fn, name
    real(@WP@), intent(in), target :: a(:)
    real(@WP@), pointer, contiguous, intent(out) :: v(:)
    integer(c_int), intent(out), optional :: stat
    ok = .true.
    v => empty_@P@(1:0)
    if (size(a) == 0) return
    ok = contiguous_at(fn, name, c_loc(a(1)), c_loc(a(size(a))), size(a), c_sizeof(a(1)), stat)
    if (ok) call c_f_pointer(c_loc(a(1)), v, [size(a)])
  end function

  ! An optional vector of n elements: its address (c_null_ptr when absent or empty).
  logical function opt_vec_@P@(fn, name, a, n, p, stat) result(ok)
    character(len=*), intent(in) :: fn, name
    real(@WP@), intent(in), target, optional :: a(:)
    integer, intent(in) :: n
    type(c_ptr), intent(out) :: p
    integer(c_int), intent(out), optional :: stat
    real(@WP@), pointer, contiguous :: v(:)
    ok = .true.
    p = c_null_ptr
    if (.not. present(a)) return
    ok = size_is(fn, name, size(a), n, stat)
    if (ok) ok = vec_@P@(fn, name, a, v, stat)
    if (ok) p = ptr_@P@(v)
  end function

  ! X(n_in, n) for a network: its view, leading dimension and pointer.
  logical function net_input_@P@(fn, net, X, px, ldx, stat) result(ok)
    character(len=*), intent(in) :: fn
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :)
    type(c_ptr), intent(out) :: px
    integer(c_int), intent(out) :: ldx
    integer(c_int), intent(out), optional :: stat
    real(@WP@), pointer, contiguous :: v(:)
    px = c_null_ptr
    ldx = 1
    ok = dtype_is(fn, net, BP_@DT@, stat)
    if (ok .and. c_associated(net%ptr)) ok = size_is(fn, 'X, 1', size(X, 1), int(bp_net_n_in_c(net%ptr)), stat)
    if (ok) ok = mat_@P@(fn, 'X', X, v, ldx, stat)
    if (ok) px = ptr_@P@(v)
  end function

  ! Targets (or outputs) T(n_out, n) for a network.
  logical function net_targets_@P@(fn, name, net, n, T, pt, ldt, stat) result(ok)
    character(len=*), intent(in) :: fn, name
    type(bp_net), intent(in) :: net
    integer, intent(in) :: n
    real(@WP@), intent(in), target :: T(:, :)
    type(c_ptr), intent(out) :: pt
    integer(c_int), intent(out) :: ldt
    integer(c_int), intent(out), optional :: stat
    real(@WP@), pointer, contiguous :: v(:)
    pt = c_null_ptr
    ldt = 1
    ok = .true.
    if (c_associated(net%ptr)) ok = shape_is(fn, name, shape(T), [int(bp_net_n_out_c(net%ptr)), n], stat)
    if (ok) ok = mat_@P@(fn, name, T, v, ldt, stat)
    if (ok) pt = ptr_@P@(v)
  end function

  ! A batch for a network: X(n_in, n) with either 0-based labels(n) or real
  ! targets T(n_out, n), checked, as the C calls take it.
  logical function batch_@P@(fn, net, X, bt, stat, labels, T) result(ok)
    character(len=*), intent(in) :: fn
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :)
    type(checked_batch), intent(out) :: bt
    integer(c_int), intent(out), optional :: stat
    integer(c_int32_t), intent(in), target, optional :: labels(:)
    real(@WP@), intent(in), target, optional :: T(:, :)
    integer(c_int32_t), pointer, contiguous :: lv(:)
    bt%n = int(size(X, 2), c_int)
    ok = net_input_@P@(fn, net, X, bt%px, bt%ldx, stat)
    if (.not. ok) return
    if (present(labels)) then
      ok = labels_view(fn, size(X, 2), labels, lv, stat)
      if (ok .and. size(lv) > 0) bt%pt = c_loc(lv(1))
    else
      ok = net_targets_@P@(fn, 'T', net, size(X, 2), T, bt%pt, bt%ldt, stat)
    end if
  end function

  ! batch_@P@ for a call that a data-parallel network's ranks make together, a gradient pass
  ! (train = .false.) or bp_train (.true.): a batch refused here is told to the other ranks
  ! (tell_ranks), so that they fail instead of waiting for this one.
  logical function pass_batch_@P@(fn, net, X, train, bt, stat, labels, T) result(ok)
    character(len=*), intent(in) :: fn
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :)
    logical, intent(in) :: train
    type(checked_batch), intent(out) :: bt
    integer(c_int), intent(out), optional :: stat
    integer(c_int32_t), intent(in), target, optional :: labels(:)
    real(@WP@), intent(in), target, optional :: T(:, :)
    ok = batch_@P@(fn, net, X, bt, stat, labels=labels, T=T)
    if (.not. ok) call tell_ranks(net, train)
  end function

  ! The flat parameter (or gradient) buffer, in place: n_params values, layer
  ! by layer, each W (as Wt(n_in, n_out)) then b.
  subroutine bp_@P@net_params_f(net, params, stat)
    type(bp_net), intent(in) :: net
    real(@WP@), pointer, intent(out) :: params(:)
    integer(c_int), intent(out), optional :: stat
    call flat_view_@P@('bp_net_params', net, .false., params, stat)
  end subroutine

  subroutine bp_@P@net_grads_f(net, grads, stat)
    type(bp_net), intent(in) :: net
    real(@WP@), pointer, intent(out) :: grads(:)
    integer(c_int), intent(out), optional :: stat
    call flat_view_@P@('bp_net_grads', net, .true., grads, stat)
  end subroutine

  subroutine flat_view_@P@(fn, net, grads, view, stat)
    character(len=*), intent(in) :: fn
    type(bp_net), intent(in) :: net
    logical, intent(in) :: grads
    real(@WP@), pointer, intent(out) :: view(:)
    integer(c_int), intent(out), optional :: stat
    view => null()
    if (.not. c_associated(net%ptr)) then
      call raise(BP_ERR_ARG, fn // ': net is NULL', stat)
      return
    end if
    if (.not. dtype_is(fn, net, BP_@DT@, stat)) return
    if (grads) then
      call c_f_pointer(bp_net_grads_c(net%ptr), view, [bp_net_n_params_c(net%ptr)])
    else
      call c_f_pointer(bp_net_params_c(net%ptr), view, [bp_net_n_params_c(net%ptr)])
    end if
    if (present(stat)) stat = BP_OK
  end subroutine

  ! Layer i (0-based) of the parameters (grads = .false.) or the gradients.
  subroutine layer_arrays_@P@(fn, net, i, grads, Wt, b, stat)
    character(len=*), intent(in) :: fn
    type(bp_net), intent(in) :: net
    integer(c_int), intent(in) :: i
    logical, intent(in) :: grads
    real(@WP@), pointer, intent(out) :: Wt(:, :)
    real(@WP@), pointer, intent(out), optional :: b(:)
    integer(c_int), intent(out), optional :: stat
    type(bp_layer_view) :: view
    integer(c_int) :: st
    Wt => null()
    if (present(b)) b => null()
    if (.not. dtype_is(fn, net, BP_@DT@, stat)) return
    st = bp_net_layer_c(net%ptr, i, view)
    if (st == BP_OK) then
      if (grads) then
        call c_f_pointer(view%dW, Wt, [view%n_in, view%n_out])
        if (present(b)) call c_f_pointer(view%db, b, [view%n_out])
      else
        call c_f_pointer(view%W, Wt, [view%n_in, view%n_out])
        if (present(b)) call c_f_pointer(view%b, b, [view%n_out])
      end if
    end if
    call finish(st, stat)
  end subroutine

  ! Layer i's (0-based) weights and biases, in place. The network stores W
  ! row-major (n_out x n_in), so Fortran sees it transposed: Wt(n_in, n_out),
  ! Wt(j, o) the weight from input j to output o. Pass it to the kernels with
  ! layout = BP_ROW_MAJOR.
  subroutine bp_@P@net_weights_f(net, i, Wt, b, stat)
    type(bp_net), intent(in) :: net
    integer(c_int), intent(in) :: i
    real(@WP@), pointer, intent(out) :: Wt(:, :)
    real(@WP@), pointer, intent(out), optional :: b(:)
    integer(c_int), intent(out), optional :: stat
    call layer_arrays_@P@('bp_net_weights', net, i, .false., Wt, b, stat)
  end subroutine

  ! The same for layer i's gradients dWt(n_in, n_out) and db(n_out).
  subroutine bp_@P@net_weight_grads_f(net, i, dWt, db, stat)
    type(bp_net), intent(in) :: net
    integer(c_int), intent(in) :: i
    real(@WP@), pointer, intent(out) :: dWt(:, :)
    real(@WP@), pointer, intent(out), optional :: db(:)
    integer(c_int), intent(out), optional :: stat
    call layer_arrays_@P@('bp_net_weight_grads', net, i, .true., dWt, db, stat)
  end subroutine

  ! Y(n_out, n) = the network's outputs for X(n_in, n) (logits for the
  ! softmax and sigmoid losses). Needs a plan.
  subroutine bp_@P@net_forward_f(net, X, Y, stat)
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :)
    real(@WP@), intent(inout), target :: Y(:, :)
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_net_forward'
    type(c_ptr) :: px, py
    integer(c_int) :: ldx, ldy
    if (.not. net_input_@P@(fn, net, X, px, ldx, stat)) return
    if (.not. net_targets_@P@(fn, 'Y', net, size(X, 2), Y, py, ldy, stat)) return
    call finish(bp_net_forward_c(net%ptr, int(size(X, 2), c_int), px, ldx, py, ldy), stat)
  end subroutine

  ! Forward, loss and backward over the batch X(n_in, n) with 0-based labels(n):
  ! the gradient buffer receives the gradient of the mean loss, loss the mean loss.
  subroutine bp_@P@net_loss_and_grad_labels_f(net, X, labels, loss, stat)
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :)
    integer(c_int32_t), intent(in), target :: labels(:)
    real(c_double), intent(inout), target, optional :: loss
    integer(c_int), intent(out), optional :: stat
    type(checked_batch) :: bt
    if (.not. pass_batch_@P@('bp_net_loss_and_grad', net, X, .false., bt, stat, labels=labels)) return
    call run_pass(net, bt, loss, stat)
  end subroutine

  ! The same with real targets T(n_out, n) (sigmoid BCE, MSE).
  subroutine bp_@P@net_loss_and_grad_targets_f(net, X, T, loss, stat)
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :), T(:, :)
    real(c_double), intent(inout), target, optional :: loss
    integer(c_int), intent(out), optional :: stat
    type(checked_batch) :: bt
    if (.not. pass_batch_@P@('bp_net_loss_and_grad', net, X, .false., bt, stat, T=T)) return
    call run_pass(net, bt, loss, stat)
  end subroutine

  ! One training step, bp_optim_train_step: loss_and_grad over X(n_in, n) and
  ! labels(n), then opt's update, folded into the backward pass for plain SGD.
  subroutine bp_@P@optim_train_step_labels_f(opt, net, X, labels, loss, stat)
    type(bp_optim), intent(in) :: opt
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :)
    integer(c_int32_t), intent(in), target :: labels(:)
    real(c_double), intent(inout), target, optional :: loss
    integer(c_int), intent(out), optional :: stat
    type(checked_batch) :: bt
    if (.not. pass_batch_@P@('bp_optim_train_step', net, X, .false., bt, stat, labels=labels)) return
    call run_pass(net, bt, loss, stat, opt)
  end subroutine

  ! The same with real targets T(n_out, n).
  subroutine bp_@P@optim_train_step_targets_f(opt, net, X, T, loss, stat)
    type(bp_optim), intent(in) :: opt
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :), T(:, :)
    real(c_double), intent(inout), target, optional :: loss
    integer(c_int), intent(out), optional :: stat
    type(checked_batch) :: bt
    if (.not. pass_batch_@P@('bp_optim_train_step', net, X, .false., bt, stat, T=T)) return
    call run_pass(net, bt, loss, stat, opt)
  end subroutine

  ! Classification accuracy over X(n_in, n) against labels(n). confusion
  ! (n_out, n_out), if present, receives the counts: C's row-major
  ! confusion[true][predicted] seen from Fortran, i.e. confusion(p + 1, t + 1)
  ! counts the samples of class t predicted as p.
  subroutine bp_@P@net_accuracy_f(net, X, labels, accuracy, confusion, stat)
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :)
    integer(c_int32_t), intent(in), target :: labels(:)
    real(c_double), intent(inout) :: accuracy
    integer(c_int64_t), intent(inout), target, optional :: confusion(:, :)
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_net_accuracy'
    integer(c_int32_t), pointer, contiguous :: lv(:)
    type(c_ptr) :: px, pc
    integer(c_int) :: ldx
    if (.not. net_input_@P@(fn, net, X, px, ldx, stat)) return
    if (.not. labels_view(fn, size(X, 2), labels, lv, stat)) return
    pc = c_null_ptr
    if (present(confusion)) then
      if (.not. confusion_at(fn, net, confusion, pc, stat)) return
    end if
    call finish(bp_net_accuracy_c(net%ptr, int(size(X, 2), c_int), px, ldx, lv, accuracy, pc), stat)
  end subroutine

  ! Root mean squared error over all elements of the outputs against T(n_out, n).
  subroutine bp_@P@net_rmse_f(net, X, T, rmse, stat)
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :), T(:, :)
    real(c_double), intent(inout) :: rmse
    integer(c_int), intent(out), optional :: stat
    type(checked_batch) :: bt
    if (.not. batch_@P@('bp_net_rmse', net, X, bt, stat, T=T)) return
    call finish(bp_net_rmse_c(net%ptr, bt%n, bt%px, bt%ldx, bt%pt, bt%ldt, rmse), stat)
  end subroutine

  ! P(n_out, n) = probabilities for X(n_in, n): softmax (softmax cross-entropy),
  ! sigmoid (sigmoid BCE), or the outputs themselves (MSE). Needs a plan.
  subroutine bp_@P@net_predict_proba_f(net, X, P, stat)
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :)
    real(@WP@), intent(inout), target :: P(:, :)
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_net_predict_proba'
    type(c_ptr) :: px, pp
    integer(c_int) :: ldx, ldp
    if (.not. net_input_@P@(fn, net, X, px, ldx, stat)) return
    if (.not. net_targets_@P@(fn, 'P', net, size(X, 2), P, pp, ldp, stat)) return
    call finish(bp_net_predict_proba_c(net%ptr, int(size(X, 2), c_int), px, ldx, pp, ldp), stat)
  end subroutine

  ! classes(n) = the predicted 0-based class of each sample of X(n_in, n).
  subroutine bp_@P@net_predict_class_f(net, X, classes, stat)
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :)
    integer(c_int32_t), intent(inout), target :: classes(:)
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_net_predict_class'
    integer(c_int32_t), pointer, contiguous :: cv(:)
    type(c_ptr) :: px, pc
    integer(c_int) :: ldx
    if (.not. net_input_@P@(fn, net, X, px, ldx, stat)) return
    if (.not. size_is(fn, 'classes', size(classes), size(X, 2), stat)) return
    if (.not. vec_i32(fn, 'classes', classes, cv, stat)) return
    pc = c_null_ptr
    if (size(cv) > 0) pc = c_loc(cv(1))
    call finish(bp_net_predict_class_c(net%ptr, int(size(X, 2), c_int), px, ldx, pc), stat)
  end subroutine

  ! The mean loss over X(n_in, n) and labels(n), forward only.
  subroutine bp_@P@net_eval_loss_labels_f(net, X, labels, loss, stat)
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :)
    integer(c_int32_t), intent(in), target :: labels(:)
    real(c_double), intent(inout) :: loss
    integer(c_int), intent(out), optional :: stat
    type(checked_batch) :: bt
    if (.not. batch_@P@('bp_net_eval_loss', net, X, bt, stat, labels=labels)) return
    call finish(bp_net_eval_loss_c(net%ptr, bt%n, bt%px, bt%ldx, bt%pt, bt%ldt, loss), stat)
  end subroutine

  ! The same with real targets T(n_out, n).
  subroutine bp_@P@net_eval_loss_targets_f(net, X, T, loss, stat)
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :), T(:, :)
    real(c_double), intent(inout) :: loss
    integer(c_int), intent(out), optional :: stat
    type(checked_batch) :: bt
    if (.not. batch_@P@('bp_net_eval_loss', net, X, bt, stat, T=T)) return
    call finish(bp_net_eval_loss_c(net%ptr, bt%n, bt%px, bt%ldx, bt%pt, bt%ldt, loss), stat)
  end subroutine

  ! losses(n): each sample's own loss, over X(n_in, n) and labels(n) (bp_net_sample_losses).
  subroutine bp_@P@net_sample_losses_labels_f(net, X, labels, losses, stat)
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :)
    integer(c_int32_t), intent(in), target :: labels(:)
    real(c_double), intent(inout) :: losses(:)
    integer(c_int), intent(out), optional :: stat
    type(checked_batch) :: bt
    if (.not. batch_@P@('bp_net_sample_losses', net, X, bt, stat, labels=labels)) return
    call run_sample_losses(net, bt, losses, stat)
  end subroutine

  ! The same with real targets T(n_out, n).
  subroutine bp_@P@net_sample_losses_targets_f(net, X, T, losses, stat)
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :), T(:, :)
    real(c_double), intent(inout) :: losses(:)
    integer(c_int), intent(out), optional :: stat
    type(checked_batch) :: bt
    if (.not. batch_@P@('bp_net_sample_losses', net, X, bt, stat, T=T)) return
    call run_sample_losses(net, bt, losses, stat)
  end subroutine

  ! Backward from the caller's gradient dY(n_out, n) = dL/dY of the outputs for X(n_in, n) (a
  ! vector-Jacobian product): the gradient buffer gets beta G + dL/dparams (beta 0 by default:
  ! overwrite; 1: accumulate), dX(n_in, n), if present, dL/dX of the raw inputs.
  subroutine bp_@P@net_backward_f(net, X, dY, dX, beta, stat)
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :), dY(:, :)
    real(@WP@), intent(inout), target, optional :: dX(:, :)
    real(c_double), intent(in), optional :: beta
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_net_backward'
    type(c_ptr) :: px, pdy, pdx
    integer(c_int) :: ldx, lddy, lddx
    real(c_double) :: b
    b = 0
    if (present(beta)) b = beta
    if (.not. net_input_@P@(fn, net, X, px, ldx, stat)) return
    if (.not. net_targets_@P@(fn, 'dY', net, size(X, 2), dY, pdy, lddy, stat)) return
    pdx = c_null_ptr
    lddx = 1
    if (present(dX)) then   ! (not passed on when absent: see confusion_at)
      if (.not. input_grad_@P@(fn, net, size(X, 2), dX, pdx, lddx, stat)) return
    end if
    call finish(bp_net_backward_c(net%ptr, int(size(X, 2), c_int), px, ldx, pdy, lddy, b, pdx, lddx), stat)
  end subroutine

  ! dX(n_in, n) for a network's n samples: its pointer and leading dimension.
  logical function input_grad_@P@(fn, net, n, dX, pdx, lddx, stat) result(ok)
    character(len=*), intent(in) :: fn
    type(bp_net), intent(in) :: net
    integer, intent(in) :: n
    real(@WP@), intent(in), target :: dX(:, :)
    type(c_ptr), intent(out) :: pdx
    integer(c_int), intent(out) :: lddx
    integer(c_int), intent(out), optional :: stat
    real(@WP@), pointer, contiguous :: v(:)
    pdx = c_null_ptr
    lddx = 1
    ok = .true.
    if (c_associated(net%ptr)) ok = shape_is(fn, 'dX', shape(dX), [int(bp_net_n_in_c(net%ptr)), n], stat)
    if (ok) ok = mat_@P@(fn, 'dX', dX, v, lddx, stat)
    if (ok) pdx = ptr_@P@(v)
  end function

  ! bp_net_loss_and_grad with labels(n) that also writes dX(n_in, n) = dL/dX.
  subroutine bp_@P@net_loss_and_grad_dx_labels_f(net, X, labels, dX, loss, stat)
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :)
    integer(c_int32_t), intent(in), target :: labels(:)
    real(@WP@), intent(inout), target :: dX(:, :)
    real(c_double), intent(inout), target, optional :: loss
    integer(c_int), intent(out), optional :: stat
    type(checked_batch) :: bt
    if (.not. pass_batch_@P@('bp_net_loss_and_grad_dx', net, X, .false., bt, stat, labels=labels)) return
    call run_pass_dx_@P@(net, bt, dX, loss, stat)
  end subroutine

  ! The same with real targets T(n_out, n).
  subroutine bp_@P@net_loss_and_grad_dx_targets_f(net, X, T, dX, loss, stat)
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :), T(:, :)
    real(@WP@), intent(inout), target :: dX(:, :)
    real(c_double), intent(inout), target, optional :: loss
    integer(c_int), intent(out), optional :: stat
    type(checked_batch) :: bt
    if (.not. pass_batch_@P@('bp_net_loss_and_grad_dx', net, X, .false., bt, stat, T=T)) return
    call run_pass_dx_@P@(net, bt, dX, loss, stat)
  end subroutine

  ! The C call of bp_net_loss_and_grad_dx over a checked batch, once dX(n_in, n) passes its
  ! checks (refused, it is told to the other ranks, as a refused batch is).
  subroutine run_pass_dx_@P@(net, bt, dX, loss, stat)
    type(bp_net), intent(in) :: net
    type(checked_batch), intent(in) :: bt
    real(@WP@), intent(inout), target :: dX(:, :)
    real(c_double), intent(inout), target, optional :: loss
    integer(c_int), intent(out), optional :: stat
    type(c_ptr) :: pdx, pl
    integer(c_int) :: lddx
    if (.not. input_grad_@P@('bp_net_loss_and_grad_dx', net, int(bt%n), dX, pdx, lddx, stat)) then
      call tell_ranks(net, .false.)
      return
    end if
    pl = c_null_ptr
    if (present(loss)) pl = c_loc(loss)
    call finish(bp_net_loss_and_grad_dx_c(net%ptr, bt%n, bt%px, bt%ldx, bt%pt, bt%ldt, pl, pdx, lddx), stat)
  end subroutine

  ! J(n_in, n_out, n): J(j, k, i) = dY(k, i) / dX(j, i), the Jacobian of sample i's outputs with
  ! respect to its raw inputs (C's J[i][k][j]).
  subroutine bp_@P@net_jacobian_inputs_f(net, X, J, stat)
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :)
    real(@WP@), intent(inout), target, contiguous :: J(:, :, :)
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_net_jacobian_inputs'
    type(c_ptr) :: px, pj
    integer(c_int) :: ldx
    if (.not. net_input_@P@(fn, net, X, px, ldx, stat)) return
    if (c_associated(net%ptr)) then
      if (.not. shape_is(fn, 'J(:, :, 1)', shape(J(:, :, 1)), [int(bp_net_n_in_c(net%ptr)), &
          int(bp_net_n_out_c(net%ptr))], stat)) return
      if (.not. size_is(fn, 'J, 3', size(J, 3), size(X, 2), stat)) return
    end if
    pj = c_null_ptr
    if (size(J) > 0) pj = c_loc(J(1, 1, 1))
    call finish(bp_net_jacobian_inputs_c(net%ptr, int(size(X, 2), c_int), px, ldx, pj), stat)
  end subroutine

  ! Jt(n_params, n_out * n): column (i - 1) n_out + k is the gradient of output k of sample i
  ! with respect to the parameters (C's row-major J, transposed by the view: no copy).
  subroutine bp_@P@net_jacobian_params_f(net, X, Jt, stat)
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :)
    real(@WP@), intent(inout), target :: Jt(:, :)
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_net_jacobian_params'
    real(@WP@), pointer, contiguous :: v(:)
    type(c_ptr) :: px, pj
    integer(c_int) :: ldx, ldj
    if (.not. net_input_@P@(fn, net, X, px, ldx, stat)) return
    if (c_associated(net%ptr)) then
      if (.not. shape_is(fn, 'Jt', shape(Jt), [int(bp_net_n_params_c(net%ptr)), &
          int(bp_net_n_out_c(net%ptr)) * size(X, 2)], stat)) return
    end if
    if (.not. mat_@P@(fn, 'Jt', Jt, v, ldj, stat)) return
    pj = ptr_@P@(v)
    call finish(bp_net_jacobian_params_c(net%ptr, int(size(X, 2), c_int), px, ldx, pj, int(ldj, c_size_t)), stat)
  end subroutine

  ! Sets the network's standardisation from the raw samples X(n_in, n).
  subroutine bp_@P@net_fit_standardization_f(net, X, stat)
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :)
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_net_fit_standardization'
    type(c_ptr) :: px
    integer(c_int) :: ldx
    if (.not. net_input_@P@(fn, net, X, px, ldx, stat)) return
    call finish(bp_net_fit_standardization_c(net%ptr, int(size(X, 2), c_int), px, ldx), stat)
  end subroutine

  ! Central-difference gradient check (BP_F64 networks; BP_F32 gives
  ! BP_ERR_UNSUPPORTED). h <= 0 or absent: 1e-6 max(1, |p|). worst receives
  ! the 0-based index of the worst parameter.
  subroutine bp_@P@net_gradcheck_labels_f(net, X, labels, max_rel_err, h, worst, stat)
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :)
    integer(c_int32_t), intent(in), target :: labels(:)
    real(c_double), intent(inout) :: max_rel_err
    real(c_double), intent(in), optional :: h
    integer(c_size_t), intent(inout), target, optional :: worst
    integer(c_int), intent(out), optional :: stat
    type(checked_batch) :: bt
    if (.not. batch_@P@('bp_net_gradcheck', net, X, bt, stat, labels=labels)) return
    call run_gradcheck(net, bt, max_rel_err, h, worst, stat)
  end subroutine

  subroutine bp_@P@net_gradcheck_targets_f(net, X, T, max_rel_err, h, worst, stat)
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :), T(:, :)
    real(c_double), intent(inout) :: max_rel_err
    real(c_double), intent(in), optional :: h
    integer(c_size_t), intent(inout), target, optional :: worst
    integer(c_int), intent(out), optional :: stat
    type(checked_batch) :: bt
    if (.not. batch_@P@('bp_net_gradcheck', net, X, bt, stat, T=T)) return
    call run_gradcheck(net, bt, max_rel_err, h, worst, stat)
  end subroutine

  ! Trains net (planned) with opt on X(n_in, n) and 0-based labels(n) for
  ! `epochs` epochs of mini-batches of batch_size, shuffled (unless
  ! shuffle = .false.) by a fresh permutation per epoch from seed (default 0).
  ! on_epoch(report) is called after each epoch (return .true. to stop),
  ! on_batch(epoch, batch, n_batches, loss) after each batch.
  subroutine bp_@P@train_labels_f(net, opt, X, labels, epochs, batch_size, seed, shuffle, on_epoch, on_batch, &
      stat)
    type(bp_net), intent(in) :: net
    type(bp_optim), intent(in) :: opt
    real(@WP@), intent(in), target :: X(:, :)
    integer(c_int32_t), intent(in), target :: labels(:)
    integer, intent(in) :: epochs, batch_size
    integer, intent(in), optional :: seed
    logical, intent(in), optional :: shuffle
    procedure(bp_epoch_callback), optional :: on_epoch
    procedure(bp_batch_callback), optional :: on_batch
    integer(c_int), intent(out), optional :: stat
    type(checked_batch) :: bt
    if (.not. pass_batch_@P@('bp_train', net, X, .true., bt, stat, labels=labels)) return
    call run_train(net, opt, bt, epochs, batch_size, seed, shuffle, on_epoch, on_batch, stat)
  end subroutine

  ! The same with real targets T(n_out, n).
  subroutine bp_@P@train_targets_f(net, opt, X, T, epochs, batch_size, seed, shuffle, on_epoch, on_batch, stat)
    type(bp_net), intent(in) :: net
    type(bp_optim), intent(in) :: opt
    real(@WP@), intent(in), target :: X(:, :), T(:, :)
    integer, intent(in) :: epochs, batch_size
    integer, intent(in), optional :: seed
    logical, intent(in), optional :: shuffle
    procedure(bp_epoch_callback), optional :: on_epoch
    procedure(bp_batch_callback), optional :: on_batch
    integer(c_int), intent(out), optional :: stat
    type(checked_batch) :: bt
    if (.not. pass_batch_@P@('bp_train', net, X, .true., bt, stat, T=T)) return
    call run_train(net, opt, bt, epochs, batch_size, seed, shuffle, on_epoch, on_batch, stat)
  end subroutine

  ! Levenberg-Marquardt fit (bp_lm_fit) of an MSE network to X(n_in, n) and T(n_out, n);
  ! config defaults to bp_lm_defaults(), X_val(n_in, m) and T_val(n_out, m) give a validation
  ! set; report receives where the fit ended and why.
  subroutine bp_@P@lm_fit_f(net, X, T, report, config, X_val, T_val, stat)
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :), T(:, :)
    type(bp_lm_report), intent(inout) :: report
    type(bp_lm_config), intent(in), optional :: config
    real(@WP@), intent(in), target, optional :: X_val(:, :), T_val(:, :)
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_lm_fit'
    type(checked_batch) :: bt, bv
    type(bp_lm_config) :: c
    if (.not. batch_@P@(fn, net, X, bt, stat, T=T)) return
    c = bp_lm_defaults()
    if (present(config)) c = config
    if (present(X_val) .neqv. present(T_val)) then
      call raise(BP_ERR_ARG, fn // ': X_val and T_val must both be present or both absent', stat)
      return
    end if
    if (present(X_val)) then
      if (.not. batch_@P@(fn, net, X_val, bv, stat, T=T_val)) return
      c%n_val = bv%n
      c%X_val = bv%px
      c%ldx_val = bv%ldx
      c%T_val = bv%pt
      c%ldt_val = bv%ldt
    end if
    call finish(bp_lm_fit_c(net%ptr, bt%n, bt%px, bt%ldx, bt%pt, bt%ldt, c, report), stat)
  end subroutine

  ! Newton / IRLS fit of a logistic-regression network (bp_logreg_create) on
  ! X(n_in, n) and 0-based labels(n); iters receives the iterations done.
  subroutine bp_@P@logreg_newton_f(net, X, labels, ridge, max_iter, tol, iters, stat)
    type(bp_net), intent(in) :: net
    real(@WP@), intent(in), target :: X(:, :)
    integer(c_int32_t), intent(in), target :: labels(:)
    real(c_double), intent(in) :: ridge, tol
    integer(c_int), intent(in) :: max_iter
    integer(c_int), intent(inout), target, optional :: iters
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_logreg_newton'
    integer(c_int32_t), pointer, contiguous :: lv(:)
    type(c_ptr) :: px, pi
    integer(c_int) :: ldx
    if (.not. net_input_@P@(fn, net, X, px, ldx, stat)) return
    if (.not. labels_view(fn, size(X, 2), labels, lv, stat)) return
    pi = c_null_ptr
    if (present(iters)) pi = c_loc(iters)
    call finish(bp_logreg_newton_c(net%ptr, int(size(X, 2), c_int), px, ldx, lv, ridge, max_iter, tol, pi), &
        stat)
  end subroutine

  ! The stateless optimizer update over p(:), g(:) and the state m, v the
  ! rule needs; t >= 1 the step number, lr the rate.
  subroutine bp_@P@optim_update_f(config, p, g, t, lr, m, v, stat)
    type(bp_optim_config), intent(in) :: config
    real(@WP@), intent(inout), target :: p(:)
    real(@WP@), intent(in), target :: g(:)
    integer, intent(in) :: t
    real(c_double), intent(in) :: lr
    real(@WP@), intent(inout), target, optional :: m(:), v(:)
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_optim_update'
    real(@WP@), pointer, contiguous :: pv(:), gv(:)
    type(c_ptr) :: pm, pvv
    if (.not. size_is(fn, 'g', size(g), size(p), stat)) return
    if (.not. vec_@P@(fn, 'p', p, pv, stat)) return
    if (.not. vec_@P@(fn, 'g', g, gv, stat)) return
    if (.not. opt_vec_@P@(fn, 'm', m, size(p), pm, stat)) return
    if (.not. opt_vec_@P@(fn, 'v', v, size(p), pvv, stat)) return
    call finish(bp_@P@optim_update(config, int(size(p), c_size_t), pv, gv, pm, pvv, int(t, c_long), lr), stat)
  end subroutine

  ! The features of a data set read as BP_@DT@, in place: X(n_features, n),
  ! one column per sample.
  subroutine bp_@P@dataset_features_f(data, X, stat)
    type(bp_dataset), intent(in) :: data
    real(@WP@), pointer, intent(out) :: X(:, :)
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_dataset_features'
    X => null()
    if (.not. c_associated(data%X)) then
      call raise(BP_ERR_ARG, fn // ': the data set is empty', stat)
      return
    end if
    if (data%dtype /= BP_@DT@) then
      call raise(BP_ERR_ARG, fn // ': the pointer is real(@WP@) but the data set''s dtype is ' // &
          str(int(data%dtype)), stat)
      return
    end if
    call c_f_pointer(data%X, X, [data%n_features, data%n])
    if (present(stat)) stat = BP_OK
  end subroutine

  ! The optional outputs of a loss: loss (real(c_double)) and dZ (m, n).
  logical function loss_outputs_@P@(fn, m, n, loss, dZ, pl, pdz, lddz, stat) result(ok)
    character(len=*), intent(in) :: fn
    integer(c_int), intent(in) :: m, n
    real(c_double), intent(inout), target, optional :: loss
    real(@WP@), intent(inout), target, optional :: dZ(:, :)
    type(c_ptr), intent(out) :: pl, pdz
    integer(c_int), intent(out) :: lddz
    integer(c_int), intent(out), optional :: stat
    pl = c_null_ptr
    if (present(loss)) pl = c_loc(loss)
    lddz = max(m, 1_c_int)
    ok = opt_mat_@P@(fn, 'dZ', dZ, [m, n], pdz, lddz, stat)
  end function

  ! The three losses against real targets T(m, n): the same checks, then the
  ! C kernel given (the three bind(C) kernels, and their naive twins, have the
  ! same interface).
  subroutine target_loss_@P@(kernel, fn, Z, T, loss, dZ, divisor, stat)
    procedure(bp_@P@mse) :: kernel
    character(len=*), intent(in) :: fn
    real(@WP@), intent(in), target :: Z(:, :), T(:, :)
    real(c_double), intent(inout), target, optional :: loss
    real(@WP@), intent(inout), target, optional :: dZ(:, :)
    real(@WP@), intent(in), optional :: divisor
    integer(c_int), intent(out), optional :: stat
    real(@WP@), pointer, contiguous :: zv(:), tv(:)
    type(c_ptr) :: pl, pdz
    integer(c_int) :: m, n, ldz, ldt, lddz
    real(@WP@) :: d

    m = int(size(Z, 1), c_int)
    n = int(size(Z, 2), c_int)
    if (.not. shape_is(fn, 'T', shape(T), [m, n], stat)) return
    if (.not. mat_@P@(fn, 'Z', Z, zv, ldz, stat)) return
    if (.not. mat_@P@(fn, 'T', T, tv, ldt, stat)) return
    if (.not. loss_outputs_@P@(fn, m, n, loss, dZ, pl, pdz, lddz, stat)) return
    d = real(max(n, 1_c_int), @WP@)
    if (present(divisor)) d = divisor
    call finish(kernel(n, m, zv, ldz, tv, ldt, d, pl, pdz, lddz), stat)
  end subroutine
