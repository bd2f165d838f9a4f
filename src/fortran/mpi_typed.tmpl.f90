! SPDX-License-Identifier: MIT
  ! mpi_typed.tmpl.f90: the real(@WP@) specifics of the generic evaluation wrappers of the module
  ! backprop_mpi (Meson configures this template once per precision; backprop_mpi.f90 includes
  ! the results).

  ! A rank's batch for the attachment's network: X(n_in, n) of the network's dtype with either
  ! 0-based labels(n) or real targets T(n_out, n), checked, as the C calls take it: X at px
  ! with leading dimension ldx; the labels at pt (ldt = 0), or T at pt with leading dimension ldt.
  logical function batch_@P@(fn, dp, X, px, ldx, pt, ldt, stat, labels, T) result(ok)
    character(len=*), intent(in) :: fn
    type(bp_mpi), intent(in) :: dp
    real(@WP@), intent(in), target :: X(:, :)
    type(c_ptr), intent(out) :: px, pt
    integer(c_int), intent(out) :: ldx, ldt
    integer(c_int), intent(out), optional :: stat
    integer(c_int32_t), intent(in), target, optional :: labels(:)
    real(@WP@), intent(in), target, optional :: T(:, :)
    real(@WP@), pointer, contiguous :: v(:)
    px = c_null_ptr
    pt = c_null_ptr
    ldx = 1
    ldt = 0
    ok = input_is(fn, dp, BP_@DT@, shape(X), stat)
    if (ok .and. present(T)) ok = targets_are(fn, dp, size(X, 2), shape(T), stat)
    if (ok) ok = mat_@P@(fn, 'X', X, v, ldx, stat)
    if (.not. ok) return
    px = ptr_@P@(v)
    if (present(T)) then
      ok = mat_@P@(fn, 'T', T, v, ldt, stat)
      if (ok) pt = ptr_@P@(v)
    else
      ok = labels_at(fn, size(X, 2), labels, pt, stat)
    end if
  end function

  ! The mean loss over every rank's samples, with 0-based labels(n).
  subroutine eval_loss_labels_@P@(dp, X, labels, loss, stat)
    type(bp_mpi), intent(in) :: dp
    real(@WP@), intent(in), target :: X(:, :)
    integer(c_int32_t), intent(in), target :: labels(:)
    real(c_double), intent(inout) :: loss
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_mpi_eval_loss'
    type(c_ptr) :: px, pl
    integer(c_int) :: ldx, ldl
    if (.not. batch_@P@(fn, dp, X, px, ldx, pl, ldl, stat, labels=labels)) then
      call take_part(fn, dp, CALL_EVAL_LOSS)
      return
    end if
    call finish(bp_mpi_eval_loss_c(dp%ptr, int(size(X, 2), c_int), px, ldx, pl, ldl, loss), stat)
  end subroutine

  ! The same with real targets T(n_out, n).
  subroutine eval_loss_targets_@P@(dp, X, T, loss, stat)
    type(bp_mpi), intent(in) :: dp
    real(@WP@), intent(in), target :: X(:, :), T(:, :)
    real(c_double), intent(inout) :: loss
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_mpi_eval_loss'
    type(c_ptr) :: px, pt
    integer(c_int) :: ldx, ldt
    if (.not. batch_@P@(fn, dp, X, px, ldx, pt, ldt, stat, T=T)) then
      call take_part(fn, dp, CALL_EVAL_LOSS)
      return
    end if
    call finish(bp_mpi_eval_loss_c(dp%ptr, int(size(X, 2), c_int), px, ldx, pt, ldt, loss), stat)
  end subroutine

  ! The accuracy over every rank's samples X(n_in, n) against 0-based labels(n).
  ! confusion(n_out, n_out), when present: confusion(p + 1, t + 1) counts the
  ! samples of class t predicted as p, over every rank (as in bp_net_accuracy
  ! of `backprop`).
  subroutine accuracy_@P@(dp, X, labels, accuracy, confusion, stat)
    type(bp_mpi), intent(in) :: dp
    real(@WP@), intent(in), target :: X(:, :)
    integer(c_int32_t), intent(in), target :: labels(:)
    real(c_double), intent(inout) :: accuracy
    integer(c_int64_t), intent(inout), target, optional :: confusion(:, :)
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_mpi_accuracy'
    type(c_ptr) :: px, pl, pc
    integer(c_int) :: ldx, ldl
    logical :: ok
    pc = c_null_ptr
    ok = batch_@P@(fn, dp, X, px, ldx, pl, ldl, stat, labels=labels)
    if (ok .and. c_associated(dp%ptr) .and. present(confusion)) ok = confusion_at(fn, dp%net, confusion, pc, stat)
    if (.not. ok) then
      call take_part(fn, dp, CALL_ACCURACY)
      return
    end if
    call finish(bp_mpi_accuracy_c(dp%ptr, int(size(X, 2), c_int), px, ldx, pl, accuracy, pc), stat)
  end subroutine

  ! The root mean squared error over every rank's outputs against T(n_out, n).
  subroutine rmse_@P@(dp, X, T, rmse, stat)
    type(bp_mpi), intent(in) :: dp
    real(@WP@), intent(in), target :: X(:, :), T(:, :)
    real(c_double), intent(inout) :: rmse
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_mpi_rmse'
    type(c_ptr) :: px, pt
    integer(c_int) :: ldx, ldt
    if (.not. batch_@P@(fn, dp, X, px, ldx, pt, ldt, stat, T=T)) then
      call take_part(fn, dp, CALL_RMSE)
      return
    end if
    call finish(bp_mpi_rmse_c(dp%ptr, int(size(X, 2), c_int), px, ldx, pt, ldt, rmse), stat)
  end subroutine
