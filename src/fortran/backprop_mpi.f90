! SPDX-License-Identifier: MIT
! backprop_mpi.f90: the Fortran 2008 module `backprop_mpi`: data-parallel training over MPI (backprop/mpi.h).
!
! A module of its own, in a library of its own (libbackprop_mpi_fortran, pkg-config
! backprop-mpi-fortran), so that the module `backprop` and its library never depend on MPI.
! Use both: `use backprop` for the network, `use backprop_mpi` for its attachment.
!
! The module does not need MPI's Fortran bindings: a communicator is the integer handle that
! `use mpi` (or mpif.h) gives, MPI_COMM_WORLD or any communicator of the caller's (for
! `use mpi_f08`, pass comm%MPI_VAL). It reaches C through bp_mpi_attach_f, which converts it
! with MPI_Comm_f2c. MPI must be initialised by the caller, with the same MPI library the C
! library was built with.
!
! Same two levels as `backprop`: bind(C) interfaces to every C function (under their C names
! where no wrapper takes the name, else <name>_c), and wrappers that take Fortran arrays and
! handles: type(bp_net) from `backprop`, type(bp_mpi) here. Arrays follow `backprop`'s layout: a
! batch is X(n_in, n) (one column per sample, a section of a larger array works in place), real
! targets T(n_out, n), 0-based class labels(n); nothing is copied.
!
! Shards. Every rank passes its own rows to a training step (bp_optim_train_step,
! bp_net_loss_and_grad, bp_train of `backprop`, unchanged): under the fixed rule of
! backprop/parallel.h, rank r of p takes bp_shard_count(n, p, r) of a global batch of n
! samples, starting at the 0-based sample bp_shard_start(n, p, r), i.e. the columns
! X(:, s + 1 : s + c) of the whole batch. For bp_train with a global batch size, bp_shard_rows
! gives the 0-based rows of the training set a rank holds (X(:, rows + 1)).
!
! Collective calls. Every call taking a bp_mpi is collective over its communicator (every rank
! makes it, in the same order) except bp_mpi_set_overlap, bp_mpi_rank, bp_mpi_size and the
! statistics. A rank whose arguments fail a wrapper's own checks (shapes, kinds, strides) still
! takes part in the collective call, as a rank that failed: it gets BP_ERR_ARG and the wrapper's
! message, the other ranks BP_ERR_COMM (as when the library's own checks fail on one rank), and
! no rank waits forever. Without `stat` that rank stops instead, which ends the MPI job.
!
! Errors, as in `backprop`: every wrapper takes an optional `stat` (BP_OK or the status, and
! bp_last_error() of `backprop` the message); without it an error stops the program after
! writing "backprop: <bp_strerror>: <message>" to error_unit. The new statuses are
! BP_ERR_COMM (an MPI error, with MPI's message) and BP_ERR_MISMATCH (the ranks' networks or
! batch counts disagree; every rank gets it), both defined in `backprop`.
!
! The .mod. backprop_mpi.mod is installed beside backprop.mod, in
! include/backprop/fortran/<compiler>-<major version> (pkg-config --cflags backprop-mpi-fortran).
module backprop_mpi
  use, intrinsic :: iso_c_binding, only: c_int, c_int32_t, c_int64_t, c_long, c_size_t, c_intptr_t, &
      c_float, c_double, c_char, c_null_char, c_ptr, c_null_ptr, c_loc, c_associated, c_sizeof, c_f_pointer
  use, intrinsic :: iso_fortran_env, only: error_unit
  use backprop, only: bp_net, bp_strerror, bp_last_error, BP_OK, BP_ERR_ARG, BP_F32, BP_F64, &
      bp_net_dtype_c, bp_net_n_out_c, bp_net_n_in, bp_net_n_out
  implicit none
  private

  ! -------------------------------------------------------------------- types
  ! How bp_mpi_attach sets a network up (the C struct, field for field). The
  ! initial values are bp_mpi_defaults(): root 0, overlap on, threads shared.
  type, bind(C), public :: bp_mpi_config
    integer(c_int) :: root = 0      ! the rank whose parameters every rank receives
    integer(c_int) :: overlap = 1   ! 1: each layer's reduction starts as its gradient is final; 0: after backward
    integer(c_int) :: threads = 0   ! 0: share the node's cores among its ranks; k >= 1: k; -1: leave as is
  end type

  ! Time and traffic of the gradient reductions since attach or the last reset.
  type, bind(C), public :: bp_mpi_stats
    integer(c_long) :: steps = 0             ! gradient passes
    real(c_double) :: wait_seconds = 0       ! time in MPI after the backward pass
    real(c_double) :: comm_seconds = 0       ! all time in MPI calls during the passes
    real(c_double) :: bytes = 0              ! gradient bytes this rank contributed
  end type

  ! A network's data-parallel attachment: a plain reference, like type(bp_net);
  ! bp_mpi_detach frees it. It remembers its network for the wrappers' checks.
  type, public :: bp_mpi
    type(c_ptr) :: ptr = c_null_ptr
    type(bp_net), private :: net
  end type

  ! ---------------------------------------------------------------- bind(C)
  public :: bp_mpi_defaults, bp_mpi_attach_f, bp_mpi_detach_c, bp_mpi_set_overlap_c, bp_mpi_rank_c, &
      bp_mpi_size_c, bp_mpi_get_stats_c, bp_mpi_reset_stats_c, bp_mpi_eval_loss_c, bp_mpi_accuracy_c, &
      bp_mpi_rmse_c, bp_mpi_allreduce_grads_c, bp_mpi_broadcast_params_c
  public :: bp_shard_count, bp_shard_start, bp_shard_rows_c

  interface
    ! backprop/mpi.h. X, targets: the address of X(1, 1) etc. (void * in C: the network's
    ! dtype); labels are passed as targets with ldt = 0.
    function bp_mpi_defaults() bind(C, name='bp_mpi_defaults') result(config)
      import :: bp_mpi_config
      type(bp_mpi_config) :: config
    end function
    ! comm: a Fortran communicator handle (MPI_Fint); config: c_loc of a bp_mpi_config, or
    ! c_null_ptr for the defaults.
    function bp_mpi_attach_f(out, net, comm, config) bind(C, name='bp_mpi_attach_f') result(status)
      import :: c_int, c_ptr
      type(c_ptr), intent(inout) :: out
      type(c_ptr), value :: net, config
      integer(c_int), value :: comm
      integer(c_int) :: status
    end function
    subroutine bp_mpi_detach_c(dp) bind(C, name='bp_mpi_detach')
      import :: c_ptr
      type(c_ptr), value :: dp
    end subroutine
    function bp_mpi_set_overlap_c(dp, on) bind(C, name='bp_mpi_set_overlap') result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: dp
      integer(c_int), value :: on
      integer(c_int) :: status
    end function
    pure function bp_mpi_rank_c(dp) bind(C, name='bp_mpi_rank') result(r)
      import :: c_int, c_ptr
      type(c_ptr), value :: dp
      integer(c_int) :: r
    end function
    pure function bp_mpi_size_c(dp) bind(C, name='bp_mpi_size') result(r)
      import :: c_int, c_ptr
      type(c_ptr), value :: dp
      integer(c_int) :: r
    end function
    function bp_mpi_get_stats_c(dp, stats) bind(C, name='bp_mpi_get_stats') result(status)
      import :: c_int, c_ptr, bp_mpi_stats
      type(c_ptr), value :: dp
      type(bp_mpi_stats), intent(inout) :: stats
      integer(c_int) :: status
    end function
    function bp_mpi_reset_stats_c(dp) bind(C, name='bp_mpi_reset_stats') result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: dp
      integer(c_int) :: status
    end function
    function bp_mpi_eval_loss_c(dp, n, X, ldx, targets, ldt, loss) bind(C, name='bp_mpi_eval_loss') &
        result(status)
      import :: c_int, c_double, c_ptr
      type(c_ptr), value :: dp, X, targets
      integer(c_int), value :: n, ldx, ldt
      real(c_double), intent(inout) :: loss
      integer(c_int) :: status
    end function
    ! confusion: c_loc of an integer(c_int64_t) array (n_out, n_out), or c_null_ptr.
    function bp_mpi_accuracy_c(dp, n, X, ldx, labels, accuracy, confusion) bind(C, name='bp_mpi_accuracy') &
        result(status)
      import :: c_int, c_double, c_ptr
      type(c_ptr), value :: dp, X, labels, confusion
      integer(c_int), value :: n, ldx
      real(c_double), intent(inout) :: accuracy
      integer(c_int) :: status
    end function
    function bp_mpi_rmse_c(dp, n, X, ldx, targets, ldt, rmse) bind(C, name='bp_mpi_rmse') result(status)
      import :: c_int, c_double, c_ptr
      type(c_ptr), value :: dp, X, targets
      integer(c_int), value :: n, ldx, ldt
      real(c_double), intent(inout) :: rmse
      integer(c_int) :: status
    end function
    function bp_mpi_allreduce_grads_c(dp) bind(C, name='bp_mpi_allreduce_grads') result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: dp
      integer(c_int) :: status
    end function
    function bp_mpi_broadcast_params_c(dp) bind(C, name='bp_mpi_broadcast_params') result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: dp
      integer(c_int) :: status
    end function

    ! backprop/parallel.h: the fixed rule of sharding (0 for invalid arguments). Sample
    ! indices are 0-based, as in C.
    pure function bp_shard_count(n, p, r) bind(C, name='bp_shard_count') result(count)
      import :: c_int
      integer(c_int), value :: n, p, r
      integer(c_int) :: count
    end function
    pure function bp_shard_start(n, p, r) bind(C, name='bp_shard_start') result(start)
      import :: c_int
      integer(c_int), value :: n, p, r
      integer(c_int) :: start
    end function
    ! rows: c_loc of room for count values, or c_null_ptr to count them only.
    function bp_shard_rows_c(n_total, batch, p, r, rows, count) bind(C, name='bp_shard_rows') result(status)
      import :: c_int, c_ptr
      integer(c_int), value :: n_total, batch, p, r
      type(c_ptr), value :: rows
      integer(c_int), intent(inout) :: count
      integer(c_int) :: status
    end function

    ! bp_report_error (backprop/parallel.h) records the wrappers' own errors where the
    ! library keeps its message, so that bp_last_error() of `backprop` returns them.
    function bp_report_error_c(status, fn, message) bind(C, name='bp_report_error') result(r)
      import :: c_int, c_char
      integer(c_int), value :: status
      character(kind=c_char), intent(in) :: fn(*), message(*)
      integer(c_int) :: r
    end function
  end interface

  ! --------------------------------------------------------------- wrappers
  public :: bp_mpi_attach, bp_mpi_detach, bp_mpi_set_overlap, bp_mpi_rank, bp_mpi_size, bp_mpi_get_stats, &
      bp_mpi_reset_stats, bp_mpi_eval_loss, bp_mpi_accuracy, bp_mpi_rmse, bp_mpi_allreduce_grads, &
      bp_mpi_broadcast_params, bp_shard_rows

  ! The collective calls whose wrappers check their arguments (take_part).
  integer, parameter :: CALL_EVAL_LOSS = 1, CALL_ACCURACY = 2, CALL_RMSE = 3

  interface bp_mpi_eval_loss
    module procedure eval_loss_labels_s, eval_loss_labels_d, eval_loss_targets_s, eval_loss_targets_d
  end interface
  interface bp_mpi_accuracy
    module procedure accuracy_s, accuracy_d
  end interface
  interface bp_mpi_rmse
    module procedure rmse_s, rmse_d
  end interface

contains

  ! ============================================================ error handling
  ! deliver, str and the checks of array arguments are those of `backprop`
  ! (helpers.inc.f90), the views of real matrices too (views.tmpl.f90), both
  ! included below. This module records its errors where the C library keeps
  ! its own (bp_report_error), not in `backprop`'s state, which is private;
  ! bp_last_error() of `backprop` returns them all the same.

  ! The status a C function returned: BP_OK into stat, or the library's error.
  subroutine finish(status, stat)
    integer(c_int), intent(in) :: status
    integer(c_int), intent(out), optional :: stat
    if (status == BP_OK) then
      if (present(stat)) stat = BP_OK
      return
    end if
    call deliver(status, bp_last_error(), stat)
  end subroutine

  ! An error found by a wrapper: msg is the whole message, "fn: ...". Recorded
  ! as the library records its own, then delivered.
  subroutine raise(status, msg, stat)
    integer(c_int), intent(in) :: status
    character(len=*), intent(in) :: msg
    integer(c_int), intent(out), optional :: stat
    integer :: k
    integer(c_int) :: st
    k = index(msg, ': ')
    st = bp_report_error_c(status, c_str(msg(1:k - 1)), c_str(msg(k + 2:)))
    call deliver(st, bp_last_error(), stat)
  end subroutine

  ! A NUL-terminated copy of s, as C takes it.
  function c_str(s) result(c)
    character(len=*), intent(in) :: s
    character(kind=c_char) :: c(len(s) + 1)
    integer :: i
    do i = 1, len(s)
      c(i) = s(i:i)
    end do
    c(len(s) + 1) = c_null_char
  end function

  ! ======================================================= shapes and strides

  ! X(n_in, n) for the attachment's network, of the network's dtype (no
  ! conversion is made). A null handle passes: the library then reports it.
  logical function input_is(fn, dp, dtype, shp, stat) result(ok)
    character(len=*), intent(in) :: fn
    type(bp_mpi), intent(in) :: dp
    integer(c_int), intent(in) :: dtype
    integer, intent(in) :: shp(2)
    integer(c_int), intent(out), optional :: stat
    ok = .true.
    if (.not. c_associated(dp%ptr) .or. .not. c_associated(dp%net%ptr)) return
    ok = dtype_is(fn, dp%net, dtype, stat)
    if (ok .and. shp(1) /= bp_net_n_in(dp%net)) then
      ok = .false.
      call raise(BP_ERR_ARG, fn // ': size(X, 1) is ' // str(shp(1)) // ', expected n_in = ' // &
          str(int(bp_net_n_in(dp%net))), stat)
    end if
  end function

  ! T(n_out, n) for the attachment's network.
  logical function targets_are(fn, dp, n, shp, stat) result(ok)
    character(len=*), intent(in) :: fn
    type(bp_mpi), intent(in) :: dp
    integer, intent(in) :: n, shp(2)
    integer(c_int), intent(out), optional :: stat
    ok = .true.
    if (.not. c_associated(dp%ptr) .or. .not. c_associated(dp%net%ptr)) return
    ok = shape_is(fn, 'T', shp, [int(bp_net_n_out(dp%net)), n], stat)
  end function

  ! labels(n), contiguous: its address (c_null_ptr when empty).
  logical function labels_at(fn, n, labels, p, stat) result(ok)
    character(len=*), intent(in) :: fn
    integer, intent(in) :: n
    integer(c_int32_t), intent(in), target :: labels(:)
    type(c_ptr), intent(out) :: p
    integer(c_int), intent(out), optional :: stat
    integer(c_int32_t), pointer, contiguous :: v(:)
    p = c_null_ptr
    ok = labels_view(fn, n, labels, v, stat)
    if (ok .and. size(v) > 0) p = c_loc(v(1))
  end function

  ! After a wrapper's own check failed on this rank (its error recorded, stat
  ! present: without stat the program has stopped): takes part in the collective
  ! call as a rank that failed, as the library's own calls do, so that the other
  ! ranks return (BP_ERR_COMM) instead of waiting for this one. The library is
  ! handed a batch it refuses locally (one sample at NULL); the wrapper's message
  ! is then recorded again.
  subroutine take_part(fn, dp, which)
    character(len=*), intent(in) :: fn
    type(bp_mpi), intent(in) :: dp
    integer, intent(in) :: which
    character(len=:), allocatable :: msg
    real(c_double) :: v
    integer(c_int) :: st
    if (.not. c_associated(dp%ptr)) return   ! the library returns at once: nothing collective
    msg = bp_last_error()
    v = 0
    select case (which)
    case (CALL_EVAL_LOSS)
      st = bp_mpi_eval_loss_c(dp%ptr, 1_c_int, c_null_ptr, 1_c_int, c_null_ptr, 0_c_int, v)
    case (CALL_ACCURACY)
      st = bp_mpi_accuracy_c(dp%ptr, 1_c_int, c_null_ptr, 1_c_int, c_null_ptr, v, c_null_ptr)
    case default
      st = bp_mpi_rmse_c(dp%ptr, 1_c_int, c_null_ptr, 1_c_int, c_null_ptr, 1_c_int, v)
    end select
    if (index(msg, fn // ': ') == 1) msg = msg(len(fn) + 3:)
    st = bp_report_error_c(BP_ERR_ARG, c_str(fn), c_str(msg))
  end subroutine

  ! ============================================================= attachment

  ! Makes net (planned, the same shapes on every rank) a replica over the
  ! communicator comm (a Fortran handle; duplicated inside). Collective: checks
  ! that every rank's network agrees with the root's (BP_ERR_MISMATCH on every
  ! rank if not), broadcasts the root's parameters and standardisation, sets the
  ! thread count and the network's reducer. config absent: bp_mpi_defaults().
  ! On error dp is untouched.
  subroutine bp_mpi_attach(dp, net, comm, config, stat)
    type(bp_mpi), intent(inout) :: dp
    type(bp_net), intent(in) :: net
    integer, intent(in) :: comm
    type(bp_mpi_config), intent(in), target, optional :: config
    integer(c_int), intent(out), optional :: stat
    type(c_ptr) :: p, pc
    integer(c_int) :: st
    p = c_null_ptr
    pc = c_null_ptr
    if (present(config)) pc = c_loc(config)
    st = bp_mpi_attach_f(p, net%ptr, int(comm, c_int), pc)
    if (st == BP_OK) then
      dp%ptr = p
      dp%net = net
    end if
    call finish(st, stat)
  end subroutine

  ! Removes the network's reducer and frees the attachment (collective); the
  ! network stays, a plain network again. A null handle is a no-op.
  subroutine bp_mpi_detach(dp)
    type(bp_mpi), intent(inout) :: dp
    call bp_mpi_detach_c(dp%ptr)
    dp%ptr = c_null_ptr
    dp%net%ptr = c_null_ptr
  end subroutine

  ! Overlap on or off (not collective, but every rank must use the same mode).
  subroutine bp_mpi_set_overlap(dp, on, stat)
    type(bp_mpi), intent(in) :: dp
    logical, intent(in) :: on
    integer(c_int), intent(out), optional :: stat
    call finish(bp_mpi_set_overlap_c(dp%ptr, merge(1_c_int, 0_c_int, on)), stat)
  end subroutine

  ! This rank's index in the attachment's communicator (-1 for a null handle).
  pure integer(c_int) function bp_mpi_rank(dp)
    type(bp_mpi), intent(in) :: dp
    bp_mpi_rank = bp_mpi_rank_c(dp%ptr)
  end function

  ! The number of ranks (0 for a null handle).
  pure integer(c_int) function bp_mpi_size(dp)
    type(bp_mpi), intent(in) :: dp
    bp_mpi_size = bp_mpi_size_c(dp%ptr)
  end function

  ! This rank's figures since attach or the last reset (not collective).
  subroutine bp_mpi_get_stats(dp, stats, stat)
    type(bp_mpi), intent(in) :: dp
    type(bp_mpi_stats), intent(inout) :: stats
    integer(c_int), intent(out), optional :: stat
    call finish(bp_mpi_get_stats_c(dp%ptr, stats), stat)
  end subroutine

  subroutine bp_mpi_reset_stats(dp, stat)
    type(bp_mpi), intent(in) :: dp
    integer(c_int), intent(out), optional :: stat
    call finish(bp_mpi_reset_stats_c(dp%ptr), stat)
  end subroutine

  ! Sums the network's gradient buffer over the ranks, in place: for host codes
  ! that form their gradient themselves (bp_net_backward stays local).
  subroutine bp_mpi_allreduce_grads(dp, stat)
    type(bp_mpi), intent(in) :: dp
    integer(c_int), intent(out), optional :: stat
    call finish(bp_mpi_allreduce_grads_c(dp%ptr), stat)
  end subroutine

  ! Broadcasts the root's parameters to every rank again (e.g. after loading
  ! a model on the root only).
  subroutine bp_mpi_broadcast_params(dp, stat)
    type(bp_mpi), intent(in) :: dp
    integer(c_int), intent(out), optional :: stat
    call finish(bp_mpi_broadcast_params_c(dp%ptr), stat)
  end subroutine

  ! ============================================================== evaluation
  ! Each rank passes its own samples, X(n_in, n) with labels(n) or T(n_out, n),
  ! any split (a rank may have none: X(:, 1:0)); every rank receives the figure
  ! over all of them, as bp_net_eval_loss / bp_net_accuracy / bp_net_rmse of
  ! `backprop` give it for the concatenation.

  ! The specifics of the generic bp_mpi_eval_loss, bp_mpi_accuracy and
  ! bp_mpi_rmse, for real(c_float) and real(c_double) (mpi_typed.tmpl.f90).
  include 'mpi_typed_s.inc'
  include 'mpi_typed_d.inc'

  ! ================================================================= shards

  ! The 0-based rows of a training set of n_total samples that rank r of p holds
  ! for a data-parallel bp_train with global batch size `batch`, in increasing
  ! order (allocated here; X(:, rows + 1) are its samples). Trained unshuffled
  ! on them, the p ranks take exactly the single-process run's batches. Not
  ! collective. On error rows is left unallocated.
  subroutine bp_shard_rows(n_total, batch, p, r, rows, stat)
    integer(c_int), intent(in) :: n_total, batch, p, r
    integer(c_int32_t), allocatable, target, intent(out) :: rows(:)
    integer(c_int), intent(out), optional :: stat
    integer(c_int32_t), allocatable, target :: buf(:)
    integer(c_int) :: count, st
    count = 0
    st = bp_shard_rows_c(n_total, batch, p, r, c_null_ptr, count)
    if (st == BP_OK) then
      allocate (buf(max(count, 1)))
      st = bp_shard_rows_c(n_total, batch, p, r, c_loc(buf(1)), count)
    end if
    if (st == BP_OK) rows = buf(1:count)
    call finish(st, stat)
  end subroutine

  ! ============================================= shared with the module backprop
  include 'helpers.inc'
  include 'views_s.inc'
  include 'views_d.inc'

end module backprop_mpi
