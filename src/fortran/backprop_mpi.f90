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
      c_float, c_double, c_char, c_null_char, c_ptr, c_null_ptr, c_loc, c_associated, c_sizeof
  use, intrinsic :: iso_fortran_env, only: error_unit
  use backprop, only: bp_net, bp_strerror, bp_last_error, BP_OK, BP_ERR_ARG, BP_F32, BP_F64, &
      bp_net_dtype_c, bp_net_n_in_c, bp_net_n_out_c
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
    type(c_ptr), private :: net = c_null_ptr
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

  ! Reports an error: into stat if present, otherwise to error_unit and stop
  ! (the message is the library's, "fn: ...").
  subroutine deliver(status, stat)
    integer(c_int), intent(in) :: status
    integer(c_int), intent(out), optional :: stat
    if (present(stat)) then
      stat = status
      return
    end if
    write (error_unit, '(a)') 'backprop: ' // bp_strerror(status) // ': ' // bp_last_error()
    error stop
  end subroutine

  ! The status a C function returned: BP_OK into stat, or the library's error.
  subroutine finish(status, stat)
    integer(c_int), intent(in) :: status
    integer(c_int), intent(out), optional :: stat
    if (status == BP_OK) then
      if (present(stat)) stat = BP_OK
      return
    end if
    call deliver(status, stat)
  end subroutine

  ! An error found by a wrapper: recorded as the library records its own, then delivered.
  subroutine raise(status, fn, msg, stat)
    integer(c_int), intent(in) :: status
    character(len=*), intent(in) :: fn, msg
    integer(c_int), intent(out), optional :: stat
    call deliver(bp_report_error_c(status, c_str(fn), c_str(msg)), stat)
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

  function str(i) result(s)
    integer, intent(in) :: i
    character(len=:), allocatable :: s
    character(len=24) :: buf
    write (buf, '(i0)') i
    s = trim(buf)
  end function

  ! ======================================================= shapes and strides

  integer(c_intptr_t) function addr(p)
    type(c_ptr), intent(in) :: p
    addr = transfer(p, 0_c_intptr_t)
  end function

  ! The address and leading dimension of a matrix section with m rows and n
  ! columns, from its first element and the byte strides between rows (s1)
  ! and columns (s2) of elements of es bytes: each column must be contiguous.
  logical function strided(fn, name, m, n, first, es, s1, s2, p, ld, stat) result(ok)
    character(len=*), intent(in) :: fn, name
    integer, intent(in) :: m, n
    type(c_ptr), intent(in) :: first
    integer(c_intptr_t), intent(in) :: es, s1, s2
    type(c_ptr), intent(out) :: p
    integer(c_int), intent(out) :: ld
    integer(c_int), intent(out), optional :: stat
    p = c_null_ptr
    ld = int(max(m, 1), c_int)
    ok = .true.
    if (m * n == 0) return   ! nothing to pass: the library accepts NULL for it
    ok = .false.
    if (s1 /= es) then
      call raise(BP_ERR_ARG, fn, name // ' has a stride other than 1 in its first dimension' // &
          ' (each sample must be contiguous; it is not copied)', stat)
    else if (s2 < es * m .or. mod(s2, es) /= 0 .or. s2 / es > huge(ld)) then
      call raise(BP_ERR_ARG, fn, 'the columns of ' // name // ' are not laid out as in an array ' // &
          name // '(ld, n) with ld >= size(' // name // ', 1)', stat)
    else
      ld = int(s2 / es, c_int)
      p = first
      ok = .true.
    end if
  end function

  logical function mat_s(fn, name, A, p, ld, stat) result(ok)
    character(len=*), intent(in) :: fn, name
    real(c_float), intent(in), target :: A(:, :)
    type(c_ptr), intent(out) :: p
    integer(c_int), intent(out) :: ld
    integer(c_int), intent(out), optional :: stat
    integer(c_intptr_t) :: es, s1, s2
    type(c_ptr) :: first
    first = c_null_ptr
    es = int(c_sizeof(0.0_c_float), c_intptr_t)
    s1 = es
    s2 = es * size(A, 1)
    if (size(A) > 0) then
      first = c_loc(A(1, 1))
      if (size(A, 1) > 1) s1 = addr(c_loc(A(2, 1))) - addr(first)
      if (size(A, 2) > 1) s2 = addr(c_loc(A(1, 2))) - addr(first)
    end if
    ok = strided(fn, name, size(A, 1), size(A, 2), first, es, s1, s2, p, ld, stat)
  end function

  logical function mat_d(fn, name, A, p, ld, stat) result(ok)
    character(len=*), intent(in) :: fn, name
    real(c_double), intent(in), target :: A(:, :)
    type(c_ptr), intent(out) :: p
    integer(c_int), intent(out) :: ld
    integer(c_int), intent(out), optional :: stat
    integer(c_intptr_t) :: es, s1, s2
    type(c_ptr) :: first
    first = c_null_ptr
    es = int(c_sizeof(0.0_c_double), c_intptr_t)
    s1 = es
    s2 = es * size(A, 1)
    if (size(A) > 0) then
      first = c_loc(A(1, 1))
      if (size(A, 1) > 1) s1 = addr(c_loc(A(2, 1))) - addr(first)
      if (size(A, 2) > 1) s2 = addr(c_loc(A(1, 2))) - addr(first)
    end if
    ok = strided(fn, name, size(A, 1), size(A, 2), first, es, s1, s2, p, ld, stat)
  end function

  ! X(n_in, n) for the attachment's network, of the network's dtype (no
  ! conversion is made). A null handle passes: the library then reports it.
  logical function input_is(fn, dp, dtype, shp, stat) result(ok)
    character(len=*), intent(in) :: fn
    type(bp_mpi), intent(in) :: dp
    integer(c_int), intent(in) :: dtype
    integer, intent(in) :: shp(2)
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: names(2) = ['real(c_float) ', 'real(c_double)']
    integer(c_int) :: have
    ok = .true.
    if (.not. c_associated(dp%ptr) .or. .not. c_associated(dp%net)) return
    have = bp_net_dtype_c(dp%net)
    if (have /= dtype) then
      ok = .false.
      call raise(BP_ERR_ARG, fn, 'the arrays are ' // trim(names(dtype)) // ' but the network''s dtype is ' // &
          merge('BP_F32', 'BP_F64', have == BP_F32), stat)
    else if (shp(1) /= bp_net_n_in_c(dp%net)) then
      ok = .false.
      call raise(BP_ERR_ARG, fn, 'size(X, 1) is ' // str(shp(1)) // ', expected n_in = ' // &
          str(int(bp_net_n_in_c(dp%net))), stat)
    end if
  end function

  ! T(n_out, n) for the attachment's network.
  logical function targets_are(fn, dp, n, shp, stat) result(ok)
    character(len=*), intent(in) :: fn
    type(bp_mpi), intent(in) :: dp
    integer, intent(in) :: n, shp(2)
    integer(c_int), intent(out), optional :: stat
    integer :: k
    ok = .true.
    if (.not. c_associated(dp%ptr) .or. .not. c_associated(dp%net)) return
    k = int(bp_net_n_out_c(dp%net))
    ok = shp(1) == k .and. shp(2) == n
    if (.not. ok) call raise(BP_ERR_ARG, fn, 'shape(T) is (' // str(shp(1)) // ', ' // str(shp(2)) // &
        '), expected (' // str(k) // ', ' // str(n) // ')', stat)
  end function

  ! labels(n), contiguous: its address (c_null_ptr when empty).
  logical function labels_at(fn, n, labels, p, stat) result(ok)
    character(len=*), intent(in) :: fn
    integer, intent(in) :: n
    integer(c_int32_t), intent(in), target :: labels(:)
    type(c_ptr), intent(out) :: p
    integer(c_int), intent(out), optional :: stat
    p = c_null_ptr
    ok = size(labels) == n
    if (.not. ok) then
      call raise(BP_ERR_ARG, fn, 'size(labels) is ' // str(size(labels)) // ', expected ' // str(n), stat)
      return
    end if
    if (n == 0) return
    ok = addr(c_loc(labels(n))) - addr(c_loc(labels(1))) == int(n - 1, c_intptr_t) * c_sizeof(labels(1))
    if (ok) then
      p = c_loc(labels(1))
    else
      call raise(BP_ERR_ARG, fn, 'labels is not contiguous', stat)
    end if
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
      dp%net = net%ptr
    end if
    call finish(st, stat)
  end subroutine

  ! Removes the network's reducer and frees the attachment (collective); the
  ! network stays, a plain network again. A null handle is a no-op.
  subroutine bp_mpi_detach(dp)
    type(bp_mpi), intent(inout) :: dp
    call bp_mpi_detach_c(dp%ptr)
    dp%ptr = c_null_ptr
    dp%net = c_null_ptr
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

  ! The mean loss over every rank's samples, with 0-based labels(n).
  subroutine eval_loss_labels_s(dp, X, labels, loss, stat)
    type(bp_mpi), intent(in) :: dp
    real(c_float), intent(in), target :: X(:, :)
    integer(c_int32_t), intent(in), target :: labels(:)
    real(c_double), intent(inout) :: loss
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_mpi_eval_loss'
    type(c_ptr) :: px, pl
    integer(c_int) :: ldx
    logical :: ok
    ok = input_is(fn, dp, BP_F32, shape(X), stat)
    if (ok) ok = mat_s(fn, 'X', X, px, ldx, stat)
    if (ok) ok = labels_at(fn, size(X, 2), labels, pl, stat)
    if (.not. ok) then
      call take_part(fn, dp, CALL_EVAL_LOSS)
      return
    end if
    call finish(bp_mpi_eval_loss_c(dp%ptr, int(size(X, 2), c_int), px, ldx, pl, 0_c_int, loss), stat)
  end subroutine

  subroutine eval_loss_labels_d(dp, X, labels, loss, stat)
    type(bp_mpi), intent(in) :: dp
    real(c_double), intent(in), target :: X(:, :)
    integer(c_int32_t), intent(in), target :: labels(:)
    real(c_double), intent(inout) :: loss
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_mpi_eval_loss'
    type(c_ptr) :: px, pl
    integer(c_int) :: ldx
    logical :: ok
    ok = input_is(fn, dp, BP_F64, shape(X), stat)
    if (ok) ok = mat_d(fn, 'X', X, px, ldx, stat)
    if (ok) ok = labels_at(fn, size(X, 2), labels, pl, stat)
    if (.not. ok) then
      call take_part(fn, dp, CALL_EVAL_LOSS)
      return
    end if
    call finish(bp_mpi_eval_loss_c(dp%ptr, int(size(X, 2), c_int), px, ldx, pl, 0_c_int, loss), stat)
  end subroutine

  ! The same with real targets T(n_out, n).
  subroutine eval_loss_targets_s(dp, X, T, loss, stat)
    type(bp_mpi), intent(in) :: dp
    real(c_float), intent(in), target :: X(:, :), T(:, :)
    real(c_double), intent(inout) :: loss
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_mpi_eval_loss'
    type(c_ptr) :: px, pt
    integer(c_int) :: ldx, ldt
    logical :: ok
    ok = input_is(fn, dp, BP_F32, shape(X), stat)
    if (ok) ok = targets_are(fn, dp, size(X, 2), shape(T), stat)
    if (ok) ok = mat_s(fn, 'X', X, px, ldx, stat)
    if (ok) ok = mat_s(fn, 'T', T, pt, ldt, stat)
    if (.not. ok) then
      call take_part(fn, dp, CALL_EVAL_LOSS)
      return
    end if
    call finish(bp_mpi_eval_loss_c(dp%ptr, int(size(X, 2), c_int), px, ldx, pt, ldt, loss), stat)
  end subroutine

  subroutine eval_loss_targets_d(dp, X, T, loss, stat)
    type(bp_mpi), intent(in) :: dp
    real(c_double), intent(in), target :: X(:, :), T(:, :)
    real(c_double), intent(inout) :: loss
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_mpi_eval_loss'
    type(c_ptr) :: px, pt
    integer(c_int) :: ldx, ldt
    logical :: ok
    ok = input_is(fn, dp, BP_F64, shape(X), stat)
    if (ok) ok = targets_are(fn, dp, size(X, 2), shape(T), stat)
    if (ok) ok = mat_d(fn, 'X', X, px, ldx, stat)
    if (ok) ok = mat_d(fn, 'T', T, pt, ldt, stat)
    if (.not. ok) then
      call take_part(fn, dp, CALL_EVAL_LOSS)
      return
    end if
    call finish(bp_mpi_eval_loss_c(dp%ptr, int(size(X, 2), c_int), px, ldx, pt, ldt, loss), stat)
  end subroutine

  ! The confusion matrix (n_out, n_out), when present: confusion(p + 1, t + 1)
  ! counts the samples of class t predicted as p, over every rank (as in
  ! bp_net_accuracy of `backprop`).
  logical function confusion_at(fn, dp, confusion, pc, stat) result(ok)
    character(len=*), intent(in) :: fn
    type(bp_mpi), intent(in) :: dp
    integer(c_int64_t), intent(in), target, optional :: confusion(:, :)
    type(c_ptr), intent(out) :: pc
    integer(c_int), intent(out), optional :: stat
    integer :: k
    pc = c_null_ptr
    ok = .true.
    if (.not. present(confusion) .or. .not. c_associated(dp%ptr) .or. .not. c_associated(dp%net)) return
    k = int(bp_net_n_out_c(dp%net))
    ok = size(confusion, 1) == k .and. size(confusion, 2) == k
    if (.not. ok) then
      call raise(BP_ERR_ARG, fn, 'shape(confusion) is (' // str(size(confusion, 1)) // ', ' // &
          str(size(confusion, 2)) // '), expected (' // str(k) // ', ' // str(k) // ')', stat)
      return
    end if
    if (k == 0) return
    ok = addr(c_loc(confusion(k, k))) - addr(c_loc(confusion(1, 1))) == &
        int(k * k - 1, c_intptr_t) * c_sizeof(confusion(1, 1))
    if (ok) then
      pc = c_loc(confusion(1, 1))
    else
      call raise(BP_ERR_ARG, fn, 'confusion is not contiguous', stat)
    end if
  end function

  ! The accuracy over every rank's samples X(n_in, n) against 0-based labels(n).
  subroutine accuracy_s(dp, X, labels, accuracy, confusion, stat)
    type(bp_mpi), intent(in) :: dp
    real(c_float), intent(in), target :: X(:, :)
    integer(c_int32_t), intent(in), target :: labels(:)
    real(c_double), intent(inout) :: accuracy
    integer(c_int64_t), intent(inout), target, optional :: confusion(:, :)
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_mpi_accuracy'
    type(c_ptr) :: px, pl, pc
    integer(c_int) :: ldx
    logical :: ok
    ok = input_is(fn, dp, BP_F32, shape(X), stat)
    if (ok) ok = mat_s(fn, 'X', X, px, ldx, stat)
    if (ok) ok = labels_at(fn, size(X, 2), labels, pl, stat)
    if (ok) ok = confusion_at(fn, dp, confusion, pc, stat)
    if (.not. ok) then
      call take_part(fn, dp, CALL_ACCURACY)
      return
    end if
    call finish(bp_mpi_accuracy_c(dp%ptr, int(size(X, 2), c_int), px, ldx, pl, accuracy, pc), stat)
  end subroutine

  subroutine accuracy_d(dp, X, labels, accuracy, confusion, stat)
    type(bp_mpi), intent(in) :: dp
    real(c_double), intent(in), target :: X(:, :)
    integer(c_int32_t), intent(in), target :: labels(:)
    real(c_double), intent(inout) :: accuracy
    integer(c_int64_t), intent(inout), target, optional :: confusion(:, :)
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_mpi_accuracy'
    type(c_ptr) :: px, pl, pc
    integer(c_int) :: ldx
    logical :: ok
    ok = input_is(fn, dp, BP_F64, shape(X), stat)
    if (ok) ok = mat_d(fn, 'X', X, px, ldx, stat)
    if (ok) ok = labels_at(fn, size(X, 2), labels, pl, stat)
    if (ok) ok = confusion_at(fn, dp, confusion, pc, stat)
    if (.not. ok) then
      call take_part(fn, dp, CALL_ACCURACY)
      return
    end if
    call finish(bp_mpi_accuracy_c(dp%ptr, int(size(X, 2), c_int), px, ldx, pl, accuracy, pc), stat)
  end subroutine

  ! The root mean squared error over every rank's outputs against T(n_out, n).
  subroutine rmse_s(dp, X, T, rmse, stat)
    type(bp_mpi), intent(in) :: dp
    real(c_float), intent(in), target :: X(:, :), T(:, :)
    real(c_double), intent(inout) :: rmse
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_mpi_rmse'
    type(c_ptr) :: px, pt
    integer(c_int) :: ldx, ldt
    logical :: ok
    ok = input_is(fn, dp, BP_F32, shape(X), stat)
    if (ok) ok = targets_are(fn, dp, size(X, 2), shape(T), stat)
    if (ok) ok = mat_s(fn, 'X', X, px, ldx, stat)
    if (ok) ok = mat_s(fn, 'T', T, pt, ldt, stat)
    if (.not. ok) then
      call take_part(fn, dp, CALL_RMSE)
      return
    end if
    call finish(bp_mpi_rmse_c(dp%ptr, int(size(X, 2), c_int), px, ldx, pt, ldt, rmse), stat)
  end subroutine

  subroutine rmse_d(dp, X, T, rmse, stat)
    type(bp_mpi), intent(in) :: dp
    real(c_double), intent(in), target :: X(:, :), T(:, :)
    real(c_double), intent(inout) :: rmse
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_mpi_rmse'
    type(c_ptr) :: px, pt
    integer(c_int) :: ldx, ldt
    logical :: ok
    ok = input_is(fn, dp, BP_F64, shape(X), stat)
    if (ok) ok = targets_are(fn, dp, size(X, 2), shape(T), stat)
    if (ok) ok = mat_d(fn, 'X', X, px, ldx, stat)
    if (ok) ok = mat_d(fn, 'T', T, pt, ldt, stat)
    if (.not. ok) then
      call take_part(fn, dp, CALL_RMSE)
      return
    end if
    call finish(bp_mpi_rmse_c(dp%ptr, int(size(X, 2), c_int), px, ldx, pt, ldt, rmse), stat)
  end subroutine

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

end module backprop_mpi
