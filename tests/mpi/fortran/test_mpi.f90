! SPDX-License-Identifier: MIT
! test_mpi.f90: the module backprop_mpi under mpiexec: data-parallel training from Fortran equals single-process training.
!
! Every rank builds the same global data and, as the reference, the same network trained alone on
! the whole batch (one thread). The data-parallel replicas train on their shards (the fixed rule of
! backprop/parallel.h) and must equal it to 1e-12 (double), stay bitwise identical across ranks, and
! give the same bits with overlap on and off. Prints "fortran mpi: N passed, M failed" on rank 0
! (M summed over the ranks) and exits nonzero on a failure. Any number of ranks works; meson runs 2.
program test_mpi
  use, intrinsic :: iso_c_binding
  use mpi
  use backprop
  use backprop_mpi
  use bp_testing, only: check, rel_err, same_bits, set_fail_tag, test_counts
  implicit none

  interface
    function bpt_mpi_config_size() bind(C) result(n)
      import :: c_size_t
      integer(c_size_t) :: n
    end function
    function bpt_mpi_stats_size() bind(C) result(n)
      import :: c_size_t
      integer(c_size_t) :: n
    end function
    subroutine bpt_watchdog_c(seconds, what, len) bind(C, name='bpt_watchdog')
      import :: c_int, c_char, c_size_t
      integer(c_int), value :: seconds
      character(kind=c_char), intent(in) :: what(*)
      integer(c_size_t), value :: len
    end subroutine
  end interface

  ! The classification network: N_IN -> HIDDEN tanh -> N_OUT, softmax cross-entropy, double.
  integer, parameter :: N = 11, N_IN = 5, HIDDEN = 7, N_OUT = 3, K_STEPS = 4
  ! Relative tolerance of data-parallel against single-process results, double.
  real(c_double), parameter :: TOL = 1d-12
  ! Seconds a phase may take before the watchdog ends the rank (it takes well under one).
  integer, parameter :: WATCHDOG_S = 60

  real(c_double), target :: X(N_IN, N), Xbig(N_IN + 3, N)
  integer(c_int32_t), target :: labels(N)
  integer :: rank, nproc, ierr, n_pass, n_fail, fails_all

  call MPI_Init(ierr)
  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
  call MPI_Comm_size(MPI_COMM_WORLD, nproc, ierr)
  call set_fail_tag(' (rank ' // str(rank) // ')')
  call make_data(X, labels, 0)
  Xbig = -7
  Xbig(1:N_IN, :) = X

  call phase('layout')
  call test_layout()
  call phase('shards')
  call test_shards()
  call phase('steps')
  call test_steps()
  call phase('evaluation')
  call test_eval()
  call phase('bp_train')
  call test_train()
  call phase('float')
  call test_float()
  call phase('grads and params')
  call test_grads_params()
  call phase('sub-communicators')
  call test_subcomm()
  call phase('mismatch')
  call test_mismatch()
  call phase('wrapper errors')
  call test_errors()
  call phase('')

  call test_counts(n_pass, n_fail)
  call MPI_Allreduce(n_fail, fails_all, 1, MPI_INTEGER, MPI_SUM, MPI_COMM_WORLD, ierr)
  if (rank == 0) write (*, '(a, i0, a, i0, a)') 'fortran mpi: ', n_pass, ' passed, ', fails_all, ' failed'
  call MPI_Finalize(ierr)
  if (fails_all > 0) error stop 1

contains

  ! ================================================================= helpers

  ! Starts a phase: the watchdog ends the rank if it is not over in WATCHDOG_S s ('' disarms).
  subroutine phase(name)
    character(len=*), intent(in) :: name
    character(kind=c_char) :: c(max(len(name), 1))
    integer :: i
    do i = 1, len(name)
      c(i) = name(i:i)
    end do
    if (len(name) == 0) then
      call bpt_watchdog_c(0_c_int, c, 0_c_size_t)
    else
      call bpt_watchdog_c(int(WATCHDOG_S, c_int), c, int(len(name), c_size_t))
    end if
  end subroutine

  ! Whether v has the same bits on every rank of comm as on its rank 0.
  logical function same_on_all(v, comm)
    real(c_double), intent(in) :: v(:)
    integer, intent(in) :: comm
    real(c_double) :: root(size(v))
    integer :: e, ok, all_ok
    root = v
    call MPI_Bcast(root, size(v), MPI_DOUBLE_PRECISION, 0, comm, e)
    ok = merge(1, 0, same_bits(v, root))
    call MPI_Allreduce(ok, all_ok, 1, MPI_INTEGER, MPI_MIN, comm, e)
    same_on_all = all_ok == 1 .and. e == MPI_SUCCESS
  end function

  ! Deterministic data, the same on every rank (variant v gives another set).
  subroutine make_data(A, lab, v)
    real(c_double), intent(out) :: A(:, :)
    integer(c_int32_t), intent(out) :: lab(:)
    integer, intent(in) :: v
    integer :: i, j
    do j = 1, size(A, 2)
      do i = 1, size(A, 1)
        A(i, j) = sin(0.37d0 * i + 1.3d0 * j + 0.5d0 * v) + 0.1d0 * cos(2.1d0 * i * j)
      end do
      lab(j) = int(mod(7 * j + v, N_OUT), c_int32_t)
    end do
  end subroutine

  ! The classification network of `width` hidden units (HIDDEN by default), initialised from `seed`, planned.
  subroutine new_net(net, seed, threads, width, dtype)
    type(bp_net), intent(inout) :: net
    integer, intent(in) :: seed
    integer, intent(in), optional :: threads, width, dtype
    integer(c_int) :: h, dt
    h = HIDDEN
    if (present(width)) h = int(width, c_int)
    dt = BP_F64
    if (present(dtype)) dt = int(dtype, c_int)
    call bp_net_create(net, dt, int(N_IN, c_int), [bp_layer_spec(h, BP_ACT_TANH), &
        bp_layer_spec(int(N_OUT, c_int), BP_ACT_IDENTITY)], BP_LOSS_SOFTMAX_XENT)
    call bp_net_init(net, BP_INIT_GLOROT_UNIFORM, int(seed, c_int64_t))
    call bp_net_plan(net, 16_c_int)
    if (present(threads)) call bp_net_set_threads(net, int(threads, c_int))
  end subroutine

  function params_of(net) result(v)
    type(bp_net), intent(in) :: net
    real(c_double), allocatable :: v(:)
    real(c_double), pointer :: p(:)
    call bp_net_params(net, p)
    v = p
  end function

  function str(i) result(s)
    integer, intent(in) :: i
    character(len=:), allocatable :: s
    character(len=24) :: buf
    write (buf, '(i0)') i
    s = trim(buf)
  end function

  function rstr(x) result(s)
    real(c_double), intent(in) :: x
    character(len=:), allocatable :: s
    character(len=32) :: buf
    write (buf, '(es10.3)') x
    s = trim(adjustl(buf))
  end function

  ! ================================================================== tests

  ! The bind(C) types have C's layout; bp_mpi_defaults equals the Fortran initial values.
  subroutine test_layout()
    type(bp_mpi_config) :: cfg, def
    type(bp_mpi_stats) :: st
    type(bp_mpi) :: none
    call check(c_sizeof(cfg) == bpt_mpi_config_size(), 'c_sizeof(bp_mpi_config) is ' // &
        str(int(c_sizeof(cfg))) // ', C sizeof ' // str(int(bpt_mpi_config_size())))
    call check(c_sizeof(st) == bpt_mpi_stats_size(), 'c_sizeof(bp_mpi_stats) is ' // &
        str(int(c_sizeof(st))) // ', C sizeof ' // str(int(bpt_mpi_stats_size())))
    def = bp_mpi_defaults()
    call check(def%root == 0 .and. def%overlap == 1 .and. def%threads == 0, 'bp_mpi_defaults() is root 0, overlap 1, threads 0')
    call check(def%root == cfg%root .and. def%overlap == cfg%overlap .and. def%threads == cfg%threads, &
        'the initial values of bp_mpi_config are bp_mpi_defaults()')
    call check(bp_mpi_rank(none) == -1 .and. bp_mpi_size(none) == 0, 'a null handle: rank -1, size 0')
    call bp_mpi_detach(none)
    call check(.not. c_associated(none%ptr), 'bp_mpi_detach of a null handle is a no-op')
  end subroutine

  ! bp_shard_count / bp_shard_start / bp_shard_rows follow the rule: the first n mod p ranks take one more.
  subroutine test_shards()
    integer(c_int32_t), allocatable :: rows(:)
    integer(c_int32_t) :: want(13)
    integer(c_int) :: st
    integer :: nn, p, r, total, k, b, start, m, j
    logical :: ok
    ok = .true.
    do nn = 0, 12
      do p = 1, 4
        total = 0
        do r = 0, p - 1
          ok = ok .and. bp_shard_count(nn, p, r) == nn / p + merge(1, 0, r < mod(nn, p))
          ok = ok .and. bp_shard_start(nn, p, r) == total
          total = total + bp_shard_count(nn, p, r)
        end do
        ok = ok .and. total == nn
      end do
    end do
    call check(ok, 'bp_shard_count and bp_shard_start follow the rule for n in 0..12, p in 1..4')
    call check(bp_shard_count(10, 3, 0) == 4 .and. bp_shard_count(10, 3, 2) == 3 .and. &
        bp_shard_start(10, 3, 1) == 4 .and. bp_shard_start(10, 3, 2) == 7, 'bp_shard_*(10, 3, r): 4 3 3 from 0 4 7')
    call check(bp_shard_count(-1, 2, 0) == 0 .and. bp_shard_count(5, 0, 0) == 0 .and. &
        bp_shard_count(5, 2, 2) == 0 .and. bp_shard_start(5, 2, -1) == 0, 'bp_shard_*: 0 for invalid arguments')
    ! 13 samples in global batches of 4 over p ranks: each batch split by the rule.
    do p = 1, 3
      do r = 0, p - 1
        m = 0
        do start = 0, 12, 4
          b = min(4, 13 - start)
          do j = 0, bp_shard_count(b, p, r) - 1
            m = m + 1
            want(m) = int(start + bp_shard_start(b, p, r) + j, c_int32_t)
          end do
        end do
        call bp_shard_rows(13_c_int, 4_c_int, int(p, c_int), int(r, c_int), rows, st)
        ok = st == BP_OK
        if (ok) ok = size(rows) == m
        if (ok) ok = all(rows == want(1:m))
        call check(ok, 'bp_shard_rows(13, 4, ' // str(p) // ', ' // str(r) // ') are the rule''s rows')
      end do
    end do
    call bp_shard_rows(13_c_int, 0_c_int, 2_c_int, 0_c_int, rows, st)
    call check(st == BP_ERR_ARG .and. .not. allocated(rows), 'bp_shard_rows: batch 0 is BP_ERR_ARG, rows unallocated')
    call check(index(bp_last_error(), 'bp_shard_rows') > 0, 'bp_shard_rows: the message names the function')
    k = 0
    do r = 0, nproc - 1
      k = k + bp_shard_count(N, nproc, r)
    end do
    call check(k == N, 'the shards of the test batch cover it')
  end subroutine

  ! K steps on the shards (overlap on, and off) equal K single-process steps on the whole batch;
  ! replicas stay identical; the statistics count the passes.
  subroutine test_steps()
    type(bp_net) :: ref, on, off
    type(bp_optim) :: o_ref, o_on, o_off
    type(bp_mpi) :: dp_on, dp_off
    type(bp_mpi_config) :: cfg
    type(bp_mpi_stats) :: st
    real(c_double), allocatable :: p_ref(:), p_on(:)
    real(c_double) :: l_ref, l_on, l_off
    integer(c_int) :: s1, s2, s3
    integer :: s, c, k
    logical :: ok_loss, ok_same, ok_bits, ok_all

    call new_net(ref, 42, threads=1)
    call new_net(on, 42 + 1000 * rank)    ! only the root's parameters count: attach broadcasts them
    call new_net(off, 77 + 1000 * rank)
    call bp_mpi_attach(dp_on, on, MPI_COMM_WORLD, stat=s1)
    cfg%overlap = 0
    call bp_mpi_attach(dp_off, off, MPI_COMM_WORLD, cfg, stat=s2)
    call check(s1 == BP_OK .and. s2 == BP_OK, 'bp_mpi_attach on MPI_COMM_WORLD: ' // bp_last_error())
    if (s1 /= BP_OK .or. s2 /= BP_OK) return
    call check(bp_mpi_rank(dp_on) == rank .and. bp_mpi_size(dp_on) == nproc, 'bp_mpi_rank and bp_mpi_size')
    call check(same_bits(params_of(on), params_of(ref)), 'attach gives every rank the root''s parameters')
    call check(.not. same_bits(params_of(off), params_of(on)), 'the second network has other parameters')
    ! The second net starts from the first's parameters, so that the modes can be compared bit for bit.
    block
      real(c_double), pointer :: p1(:), p2(:)
      call bp_net_params(on, p1)
      call bp_net_params(off, p2)
      p2 = p1
    end block
    call bp_mpi_reset_stats(dp_on)
    call bp_mpi_get_stats(dp_on, st)
    call check(st%steps == 0 .and. same_bits([st%bytes, st%wait_seconds, st%comm_seconds], [0d0, 0d0, 0d0]), &
        'bp_mpi_reset_stats zeroes the figures')

    call bp_optim_create(o_ref, ref, bp_optim_defaults(BP_OPT_ADAM, 0.01d0))
    call bp_optim_create(o_on, on, bp_optim_defaults(BP_OPT_ADAM, 0.01d0))
    call bp_optim_create(o_off, off, bp_optim_defaults(BP_OPT_ADAM, 0.01d0))
    s = bp_shard_start(N, nproc, rank)
    c = bp_shard_count(N, nproc, rank)
    ok_loss = .true.
    ok_same = .true.
    ok_bits = .true.
    ok_all = .true.
    do k = 1, 2 * K_STEPS
      if (k == K_STEPS + 1) then
        ! the modes swap: bp_mpi_set_overlap
        call bp_mpi_set_overlap(dp_on, .false., s1)
        call bp_mpi_set_overlap(dp_off, .true., s2)
        call check(s1 == BP_OK .and. s2 == BP_OK, 'bp_mpi_set_overlap')
      end if
      call bp_optim_train_step(o_ref, ref, X, labels, l_ref)
      call bp_optim_train_step(o_on, on, X(:, s + 1:s + c), labels(s + 1:s + c), l_on, s1)
      call bp_optim_train_step(o_off, off, X(:, s + 1:s + c), labels(s + 1:s + c), l_off, s2)
      ok_all = ok_all .and. s1 == BP_OK .and. s2 == BP_OK
      ok_loss = ok_loss .and. abs(l_on - l_ref) <= TOL * abs(l_ref) .and. abs(l_off - l_ref) <= TOL * abs(l_ref)
      ok_same = ok_same .and. same_on_all(params_of(on), MPI_COMM_WORLD) .and. &
          same_on_all(params_of(off), MPI_COMM_WORLD)
      ok_bits = ok_bits .and. same_bits(params_of(on), params_of(off))
    end do
    call check(ok_all, 'bp_optim_train_step on the shards: ' // bp_last_error())
    call check(ok_loss, 'every step''s loss is the global batch''s mean loss (1e-12)')
    call check(ok_same, 'the replicas are bitwise identical across ranks after every step')
    call check(ok_bits, 'overlap on and off give the same bits')
    p_ref = params_of(ref)
    p_on = params_of(on)
    call check(rel_err(p_on, p_ref) <= TOL, 'after ' // str(2 * K_STEPS) // ' steps on uneven shards the ' // &
        'parameters equal single-process training: rel err ' // rstr(rel_err(p_on, p_ref)))
    call bp_mpi_get_stats(dp_on, st, s3)
    call check(s3 == BP_OK .and. st%steps == 2 * K_STEPS, 'stats: steps ' // str(int(st%steps)) // ', expected ' // &
        str(2 * K_STEPS))
    call check(same_bits([st%bytes], [real(2 * K_STEPS, c_double) * real(size(p_on), c_double) * 8]), 'stats: bytes ' // &
        rstr(st%bytes) // ', expected steps x n_params x 8')
    call check(st%wait_seconds >= 0 .and. st%comm_seconds >= 0 .and. st%wait_seconds < 60 .and. &
        st%comm_seconds < 60, 'stats: the times are plausible')
    call bp_mpi_detach(dp_on)
    call bp_mpi_detach(dp_off)
    call check(.not. c_associated(dp_on%ptr), 'bp_mpi_detach nulls the handle')
    ! Detached, a network is a plain one again: a step on the whole batch is local and matches.
    call bp_optim_train_step(o_on, on, X, labels, l_on)
    call bp_optim_train_step(o_ref, ref, X, labels, l_ref)
    call check(rel_err(params_of(on), params_of(ref)) <= TOL, 'after detach the network trains alone')
    call bp_optim_destroy(o_ref)
    call bp_optim_destroy(o_on)
    call bp_optim_destroy(o_off)
    call bp_net_destroy(ref)
    call bp_net_destroy(on)
    call bp_net_destroy(off)
  end subroutine

  ! Evaluation over every rank's samples, any split (rank 0 has none when there are several
  ! ranks), equals the single-process figure on the concatenation; a section X(1:n_in, ...) of a
  ! larger array is passed in place.
  subroutine test_eval()
    type(bp_net) :: ref, net
    type(bp_mpi) :: dp
    real(c_double) :: loss, loss_ref, acc, acc_ref, loss_big
    integer(c_int64_t) :: conf(N_OUT, N_OUT), conf_ref(N_OUT, N_OUT)
    integer(c_int) :: s1, s2, s3
    integer :: s, c
    call new_net(ref, 5, threads=1)
    call new_net(net, 5)
    call bp_mpi_attach(dp, net, MPI_COMM_WORLD, stat=s1)
    call check(s1 == BP_OK, 'attach for evaluation')
    if (s1 /= BP_OK) return
    if (nproc == 1) then
      s = 0
      c = N
    else if (rank == 0) then
      s = 0
      c = 0
    else
      s = bp_shard_start(N, nproc - 1, rank - 1)
      c = bp_shard_count(N, nproc - 1, rank - 1)
    end if
    call bp_mpi_eval_loss(dp, X(:, s + 1:s + c), labels(s + 1:s + c), loss, s1)
    call bp_net_eval_loss(ref, X, labels, loss_ref)
    call check(s1 == BP_OK .and. abs(loss - loss_ref) <= TOL * abs(loss_ref), 'bp_mpi_eval_loss equals ' // &
        'bp_net_eval_loss on the whole batch (a rank with no samples included)')
    call bp_mpi_eval_loss(dp, Xbig(1:N_IN, s + 1:s + c), labels(s + 1:s + c), loss_big, s2)
    call check(s2 == BP_OK .and. same_bits([loss_big], [loss]), 'bp_mpi_eval_loss of a section of a larger array, in place')
    conf = -1
    call bp_mpi_accuracy(dp, X(:, s + 1:s + c), labels(s + 1:s + c), acc, conf, s3)
    call bp_net_accuracy(ref, X, labels, acc_ref, conf_ref)
    call check(s3 == BP_OK .and. abs(acc - acc_ref) <= 1d-15 .and. all(conf == conf_ref), &
        'bp_mpi_accuracy and its confusion matrix equal bp_net_accuracy''s')
    call bp_mpi_accuracy(dp, X(:, s + 1:s + c), labels(s + 1:s + c), acc, stat=s3)
    call check(s3 == BP_OK .and. abs(acc - acc_ref) <= 1d-15, 'bp_mpi_accuracy without confusion')
    call bp_mpi_detach(dp)
    call bp_net_destroy(ref)
    call bp_net_destroy(net)
  end subroutine

  ! bp_train with the global batch size, each rank holding bp_shard_rows' rows, unshuffled, equals the
  ! single-process bp_train; the root is the last rank (config%root).
  subroutine test_train()
    integer, parameter :: NT = 13, BATCH = 4
    type(bp_net) :: ref, net
    type(bp_optim) :: o_ref, o_net
    type(bp_mpi) :: dp
    type(bp_mpi_config) :: cfg
    real(c_double) :: Xt(N_IN, NT)
    real(c_double), allocatable :: Xl(:, :)
    integer(c_int32_t) :: lt(NT)
    integer(c_int32_t), allocatable :: rows(:), ll(:)
    integer(c_int) :: s1, s2
    call make_data(Xt, lt, 3)
    call new_net(ref, 1000 * (nproc - 1) + 9, threads=1)
    call new_net(net, 1000 * rank + 9)
    cfg%root = nproc - 1
    call bp_mpi_attach(dp, net, MPI_COMM_WORLD, cfg, s1)
    call check(s1 == BP_OK, 'attach with root = the last rank')
    if (s1 /= BP_OK) return
    call check(same_bits(params_of(net), params_of(ref)), 'config%root: every rank has the last rank''s parameters')
    call bp_shard_rows(int(NT, c_int), int(BATCH, c_int), int(nproc, c_int), int(rank, c_int), rows)
    Xl = Xt(:, rows + 1)
    ll = lt(rows + 1)
    call bp_optim_create(o_ref, ref, bp_optim_defaults(BP_OPT_MOMENTUM, 0.05d0))
    call bp_optim_create(o_net, net, bp_optim_defaults(BP_OPT_MOMENTUM, 0.05d0))
    call bp_train(ref, o_ref, Xt, lt, epochs=3, batch_size=BATCH, shuffle=.false.)
    call bp_train(net, o_net, Xl, ll, epochs=3, batch_size=BATCH, shuffle=.false., stat=s2)
    call check(s2 == BP_OK, 'bp_train on the shard rows: ' // bp_last_error())
    call check(rel_err(params_of(net), params_of(ref)) <= TOL, 'bp_train over the ranks equals single-process ' // &
        'bp_train (3 epochs of 13 samples in batches of 4): rel err ' // rstr(rel_err(params_of(net), params_of(ref))))
    call check(same_on_all(params_of(net), MPI_COMM_WORLD), 'bp_train: the replicas are bitwise identical')
    call bp_mpi_detach(dp)
    call bp_optim_destroy(o_ref)
    call bp_optim_destroy(o_net)
    call bp_net_destroy(ref)
    call bp_net_destroy(net)
  end subroutine

  ! A real(c_float) regression network (MSE, targets T): steps, bp_mpi_eval_loss and bp_mpi_rmse.
  subroutine test_float()
    type(bp_net) :: ref, net
    type(bp_optim) :: o_ref, o_net
    type(bp_mpi) :: dp
    real(c_float) :: Xf(N_IN, N), T(2, N)
    real(c_float), pointer :: pr(:), pn(:)
    real(c_double) :: loss, loss_ref, rmse, rmse_ref, e
    integer(c_int) :: s1, s2, s3
    integer :: s, c, k, j
    Xf = real(X, c_float)
    do j = 1, N
      T(1, j) = real(sum(X(:, j)), c_float)
      T(2, j) = real(X(1, j) * X(2, j), c_float)
    end do
    call bp_net_create(ref, BP_F32, int(N_IN, c_int), [bp_layer_spec(6_c_int, BP_ACT_RELU), &
        bp_layer_spec(2_c_int, BP_ACT_IDENTITY)], BP_LOSS_MSE)
    call bp_net_create(net, BP_F32, int(N_IN, c_int), [bp_layer_spec(6_c_int, BP_ACT_RELU), &
        bp_layer_spec(2_c_int, BP_ACT_IDENTITY)], BP_LOSS_MSE)
    call bp_net_init(ref, BP_INIT_HE_UNIFORM, 3_c_int64_t)
    call bp_net_init(net, BP_INIT_HE_UNIFORM, int(3 + rank, c_int64_t))
    call bp_net_plan(ref, 4_c_int)
    call bp_net_plan(net, 4_c_int)
    call bp_net_set_threads(ref, 1_c_int)
    call bp_mpi_attach(dp, net, MPI_COMM_WORLD, stat=s1)
    call check(s1 == BP_OK, 'attach of a float network')
    if (s1 /= BP_OK) return
    call bp_optim_create(o_ref, ref, bp_optim_defaults(BP_OPT_SGD, 0.05d0))
    call bp_optim_create(o_net, net, bp_optim_defaults(BP_OPT_SGD, 0.05d0))
    s = bp_shard_start(N, nproc, rank)
    c = bp_shard_count(N, nproc, rank)
    do k = 1, K_STEPS
      call bp_optim_train_step(o_ref, ref, Xf, T, loss_ref)
      call bp_optim_train_step(o_net, net, Xf(:, s + 1:s + c), T(:, s + 1:s + c), loss, s2)
    end do
    call bp_net_params(ref, pr)
    call bp_net_params(net, pn)
    e = real(maxval(abs(pn - pr)), c_double) / real(maxval(abs(pr)), c_double)
    call check(s2 == BP_OK .and. e <= 1d-5, 'float: steps with targets equal single-process (1e-5): rel err ' // rstr(e))
    ! The evaluation of the same parameters: copy the replica's into the reference.
    pr = pn
    call bp_mpi_eval_loss(dp, Xf(:, s + 1:s + c), T(:, s + 1:s + c), loss, s1)
    call bp_net_eval_loss(ref, Xf, T, loss_ref)
    call check(s1 == BP_OK .and. abs(loss - loss_ref) <= 1d-6 * abs(loss_ref), 'float: bp_mpi_eval_loss with targets')
    call bp_mpi_rmse(dp, Xf(:, s + 1:s + c), T(:, s + 1:s + c), rmse, s3)
    call bp_net_rmse(ref, Xf, T, rmse_ref)
    call check(s3 == BP_OK .and. abs(rmse - rmse_ref) <= 1d-6 * abs(rmse_ref), 'float: bp_mpi_rmse')
    call bp_mpi_detach(dp)
    call bp_optim_destroy(o_ref)
    call bp_optim_destroy(o_net)
    call bp_net_destroy(ref)
    call bp_net_destroy(net)
  end subroutine

  ! bp_mpi_allreduce_grads sums the gradient buffer; bp_mpi_broadcast_params sends the root's parameters.
  subroutine test_grads_params()
    type(bp_net) :: net
    type(bp_mpi) :: dp
    real(c_double), pointer :: g(:), p(:)
    real(c_double), allocatable :: want(:)
    integer(c_int) :: s1, s2
    integer :: i
    call new_net(net, 11)
    call bp_mpi_attach(dp, net, MPI_COMM_WORLD, stat=s1)
    if (s1 /= BP_OK) then
      call check(.false., 'attach for the gradient test')
      return
    end if
    call bp_net_grads(net, g)
    call bp_net_params(net, p)
    do i = 1, size(g)
      g(i) = real((rank + 1) * i, c_double)
      p(i) = real(100 * rank + i, c_double)
    end do
    call bp_mpi_allreduce_grads(dp, s1)
    want = [(real(i, c_double) * real(nproc * (nproc + 1) / 2, c_double), i = 1, size(g))]
    call check(s1 == BP_OK .and. same_bits(g, want), 'bp_mpi_allreduce_grads sums the gradient buffer over the ranks')
    call bp_mpi_broadcast_params(dp, s2)
    want = [(real(i, c_double), i = 1, size(p))]
    call check(s2 == BP_OK .and. same_bits(p, want), 'bp_mpi_broadcast_params gives every rank the root''s parameters')
    call bp_mpi_detach(dp)
    call bp_net_destroy(net)
  end subroutine

  ! A communicator of the caller's: (a) the world in reverse order, whose root is the last world
  ! rank; (b) the world split in two (even and odd ranks), two independent models side by side.
  subroutine test_subcomm()
    type(bp_net) :: ref, net
    type(bp_optim) :: o_ref, o_net
    type(bp_mpi) :: dp
    real(c_double) :: Xg(N_IN, N)
    integer(c_int32_t) :: lg(N)
    real(c_double), allocatable :: m0(:), m1(:)
    integer :: rev, halves, srank, ssize, color, s, c, k, e
    integer(c_int) :: s1, s2

    ! (a)
    call MPI_Comm_split(MPI_COMM_WORLD, 0, nproc - 1 - rank, rev, e)
    call new_net(ref, 2000 + nproc - 1, threads=1)
    call new_net(net, 2000 + rank)
    call bp_mpi_attach(dp, net, rev, stat=s1)
    call check(s1 == BP_OK, 'attach on a reversed copy of the world: ' // bp_last_error())
    if (s1 == BP_OK) then
      call check(bp_mpi_rank(dp) == nproc - 1 - rank .and. bp_mpi_size(dp) == nproc, &
          'reversed communicator: bp_mpi_rank is the rank in it')
      call check(same_bits(params_of(net), params_of(ref)), 'reversed communicator: its rank 0 (the last world ' // &
          'rank) is the root')
      call bp_optim_create(o_ref, ref, bp_optim_defaults(BP_OPT_NESTEROV, 0.05d0))
      call bp_optim_create(o_net, net, bp_optim_defaults(BP_OPT_NESTEROV, 0.05d0))
      s = bp_shard_start(N, nproc, bp_mpi_rank(dp))
      c = bp_shard_count(N, nproc, bp_mpi_rank(dp))
      s2 = BP_OK
      do k = 1, K_STEPS
        call bp_optim_train_step(o_ref, ref, X, labels)
        if (s2 == BP_OK) call bp_optim_train_step(o_net, net, X(:, s + 1:s + c), labels(s + 1:s + c), stat=s2)
      end do
      call check(s2 == BP_OK .and. rel_err(params_of(net), params_of(ref)) <= TOL, &
          'reversed communicator: training equals single-process')
      call check(same_on_all(params_of(net), rev), 'reversed communicator: the replicas are identical')
      call bp_mpi_detach(dp)
      call bp_optim_destroy(o_ref)
      call bp_optim_destroy(o_net)
    end if
    call bp_net_destroy(ref)
    call bp_net_destroy(net)
    call MPI_Comm_free(rev, e)

    ! (b)
    color = mod(rank, 2)
    call MPI_Comm_split(MPI_COMM_WORLD, color, rank, halves, e)
    call MPI_Comm_rank(halves, srank, e)
    call MPI_Comm_size(halves, ssize, e)
    call make_data(Xg, lg, 10 + color)
    call new_net(ref, 3000 + 10 * color, threads=1)
    call new_net(net, 3000 + 10 * color + 5 * srank)
    call bp_mpi_attach(dp, net, halves, stat=s1)
    call check(s1 == BP_OK .and. bp_mpi_size(dp) == ssize .and. bp_mpi_rank(dp) == srank, &
        'attach on a half of the world (MPI_Comm_split)')
    if (s1 == BP_OK) then
      call bp_optim_create(o_ref, ref, bp_optim_defaults(BP_OPT_ADAMW, 0.01d0))
      call bp_optim_create(o_net, net, bp_optim_defaults(BP_OPT_ADAMW, 0.01d0))
      s = bp_shard_start(N, ssize, srank)
      c = bp_shard_count(N, ssize, srank)
      s2 = BP_OK
      do k = 1, K_STEPS
        call bp_optim_train_step(o_ref, ref, Xg, lg)
        if (s2 == BP_OK) call bp_optim_train_step(o_net, net, Xg(:, s + 1:s + c), lg(s + 1:s + c), stat=s2)
      end do
      call check(s2 == BP_OK .and. rel_err(params_of(net), params_of(ref)) <= TOL, &
          'two halves side by side: each equals its own single-process training')
      call check(same_on_all(params_of(net), halves), 'two halves: each half''s replicas are identical')
      ! The two models are independent: the first rank of the other half holds other parameters.
      ! World rank 0 trains the even half's model, world rank 1 the odd half's.
      if (nproc >= 2) then
        m0 = params_of(net)
        m1 = params_of(net)
        call MPI_Bcast(m0, size(m0), MPI_DOUBLE_PRECISION, 0, MPI_COMM_WORLD, e)
        call MPI_Bcast(m1, size(m1), MPI_DOUBLE_PRECISION, 1, MPI_COMM_WORLD, e)
        call check(.not. same_bits(m0, m1), 'two halves: the models differ')
      end if
      call bp_mpi_detach(dp)
      call bp_optim_destroy(o_ref)
      call bp_optim_destroy(o_net)
    end if
    call bp_net_destroy(ref)
    call bp_net_destroy(net)
    call MPI_Comm_free(halves, e)
  end subroutine

  ! Ranks that disagree get BP_ERR_MISMATCH on every rank, with a message naming a rank, and no hang
  ! (the watchdog of the phase): a layer width, the dtype, the batch division.
  subroutine test_mismatch()
    type(bp_net) :: net
    type(bp_optim) :: opt
    type(bp_mpi) :: dp
    integer(c_int) :: st
    integer :: s, c
    if (nproc < 2) return
    call new_net(net, 1, width=merge(HIDDEN + 1, HIDDEN, rank == nproc - 1))
    call bp_mpi_attach(dp, net, MPI_COMM_WORLD, stat=st)
    call check(st == BP_ERR_MISMATCH, 'a layer of another width: BP_ERR_MISMATCH on every rank (got ' // str(int(st)) // ')')
    call check(index(bp_last_error(), 'rank') > 0, 'the mismatch message names a rank: ' // bp_last_error())
    call check(.not. c_associated(dp%ptr), 'a failed attach leaves the handle null')
    call bp_net_destroy(net)

    call new_net(net, 1, dtype=merge(BP_F32, BP_F64, rank == nproc - 1))
    call bp_mpi_attach(dp, net, MPI_COMM_WORLD, stat=st)
    call check(st == BP_ERR_MISMATCH, 'another dtype: BP_ERR_MISMATCH on every rank (got ' // str(int(st)) // ')')
    call bp_net_destroy(net)

    ! Shards that do not follow the rule (rank 0 one sample more, the last rank one less).
    call new_net(net, 1)
    call bp_mpi_attach(dp, net, MPI_COMM_WORLD, stat=st)
    call check(st == BP_OK, 'attach for the shard check')
    if (st /= BP_OK) return
    call bp_optim_create(opt, net, bp_optim_defaults(BP_OPT_SGD, 0.1d0))
    s = bp_shard_start(N, nproc, rank)
    c = bp_shard_count(N, nproc, rank)
    if (rank == 0) c = c + 1
    if (rank == nproc - 1) then
      s = s + 1
      c = c - 1
    end if
    call bp_optim_train_step(opt, net, X(:, s + 1:s + c), labels(s + 1:s + c), stat=st)
    call check(st == BP_ERR_MISMATCH, 'shards against the rule: BP_ERR_MISMATCH on every rank (got ' // &
        str(int(st)) // ')')
    call check(same_on_all(params_of(net), MPI_COMM_WORLD), 'after the refused step the replicas are identical')
    s = bp_shard_start(N, nproc, rank)
    c = bp_shard_count(N, nproc, rank)
    call bp_optim_train_step(opt, net, X(:, s + 1:s + c), labels(s + 1:s + c), stat=st)
    call check(st == BP_OK .and. same_on_all(params_of(net), MPI_COMM_WORLD), &
        'a valid step after the refused one works and the replicas stay identical')
    call bp_mpi_detach(dp)
    call bp_optim_destroy(opt)
    call bp_net_destroy(net)
  end subroutine

  ! The wrappers' own checks (local, made alike on every rank): status and message, nothing called.
  subroutine test_errors()
    type(bp_net) :: net, nonet, plain
    type(bp_mpi) :: dp, none, other
    type(bp_mpi_stats) :: stats
    type(bp_mpi_config) :: cfg
    type(bp_optim) :: opt
    real(c_double) :: loss, Xs(2 * N_IN, N), T(N_OUT, N), acc, dX(N_IN, N)
    real(c_float) :: Xf(N_IN, N)
    integer(c_int64_t) :: conf(N_OUT + 1, N_OUT)
    integer(c_int) :: st
    integer :: s, c, m
    call new_net(net, 4)
    call new_net(plain, 4)
    call bp_mpi_attach(dp, net, MPI_COMM_WORLD, stat=st)
    if (st /= BP_OK) then
      call check(.false., 'attach for the error tests')
      return
    end if
    loss = -1
    call bp_mpi_eval_loss(dp, X(1:N_IN - 1, :), labels, loss, st)
    call check(st == BP_ERR_ARG .and. same_bits([loss], [-1d0]), 'X with n_in - 1 rows: BP_ERR_ARG, loss untouched')
    call check(index(bp_last_error(), 'bp_mpi_eval_loss: size(X, 1) is 4') == 1, &
        'its message, through bp_last_error of backprop: ' // bp_last_error())
    Xf = 0
    call bp_mpi_eval_loss(dp, Xf, labels, loss, st)
    call check(st == BP_ERR_ARG .and. index(bp_last_error(), 'BP_F64') > 0, 'real(c_float) X on a double network: ' // &
        bp_last_error())
    call bp_mpi_eval_loss(dp, X, labels(1:N - 1), loss, st)
    call check(st == BP_ERR_ARG .and. index(bp_last_error(), 'size(labels)') > 0, 'labels of the wrong size')
    Xs = 0
    call bp_mpi_eval_loss(dp, Xs(1:2 * N_IN:2, :), labels, loss, st)
    call check(st == BP_ERR_ARG .and. index(bp_last_error(), 'stride') > 0, 'X with a stride in its first ' // &
        'dimension: ' // bp_last_error())
    T = 0
    call bp_mpi_rmse(dp, X, T(:, 1:N - 1), loss, st)
    call check(st == BP_ERR_ARG .and. index(bp_last_error(), 'shape(T)') > 0, 'bp_mpi_rmse: T of the wrong shape')
    call bp_mpi_accuracy(dp, X, labels, acc, conf, st)
    call check(st == BP_ERR_ARG .and. index(bp_last_error(), 'shape(confusion)') > 0, &
        'bp_mpi_accuracy: confusion of the wrong shape')
    call bp_mpi_eval_loss(none, X, labels, loss, st)
    call check(st == BP_ERR_ARG, 'bp_mpi_eval_loss of a null handle: BP_ERR_ARG (got ' // str(int(st)) // ')')
    call bp_mpi_set_overlap(none, .true., st)
    call check(st == BP_ERR_ARG, 'bp_mpi_set_overlap of a null handle: BP_ERR_ARG')
    call bp_mpi_get_stats(none, stats, st)
    call check(st == BP_ERR_ARG, 'bp_mpi_get_stats of a null handle: BP_ERR_ARG')
    call bp_mpi_reset_stats(none, st)
    call check(st == BP_ERR_ARG, 'bp_mpi_reset_stats of a null handle: BP_ERR_ARG')
    call bp_mpi_allreduce_grads(none, st)
    call check(st == BP_ERR_ARG, 'bp_mpi_allreduce_grads of a null handle: BP_ERR_ARG')
    call bp_mpi_broadcast_params(none, st)
    call check(st == BP_ERR_ARG, 'bp_mpi_broadcast_params of a null handle: BP_ERR_ARG')
    call bp_mpi_attach(other, net, MPI_COMM_NULL, stat=st)
    call check(st == BP_ERR_ARG .and. index(bp_last_error(), 'MPI_COMM_NULL') > 0 .and. .not. c_associated(other%ptr), &
        'bp_mpi_attach on MPI_COMM_NULL: BP_ERR_ARG: ' // bp_last_error())
    call bp_mpi_attach(other, nonet, MPI_COMM_WORLD, stat=st)
    call check(st /= BP_OK .and. .not. c_associated(other%ptr), 'bp_mpi_attach of a null network fails on every rank')
    cfg%root = nproc
    call bp_mpi_attach(other, plain, MPI_COMM_WORLD, cfg, st)
    call check(st /= BP_OK .and. .not. c_associated(other%ptr), 'bp_mpi_attach with root = size fails on every ' // &
        'rank: ' // bp_last_error())

    ! Only the last rank's X is wrong: it gets BP_ERR_ARG and the wrapper's message, the others
    ! BP_ERR_COMM, and no rank waits (the phase's watchdog); then a valid call works again.
    if (nproc >= 2) then
      s = bp_shard_start(N, nproc, rank)
      c = bp_shard_count(N, nproc, rank)
      m = merge(N_IN - 1, N_IN, rank == nproc - 1)
      call bp_mpi_eval_loss(dp, X(1:m, s + 1:s + c), labels(s + 1:s + c), loss, st)
      if (rank == nproc - 1) then
        call check(st == BP_ERR_ARG .and. index(bp_last_error(), 'bp_mpi_eval_loss: size(X, 1) is 4') == 1, &
            'one rank''s X is wrong: BP_ERR_ARG there, with its message: ' // bp_last_error())
      else
        call check(st == BP_ERR_COMM, 'one rank''s X is wrong: BP_ERR_COMM on the others (got ' // str(int(st)) // ')')
      end if
      call bp_mpi_accuracy(dp, X(1:m, s + 1:s + c), labels(s + 1:s + c), acc, stat=st)
      call check(st == merge(BP_ERR_ARG, BP_ERR_COMM, rank == nproc - 1), 'bp_mpi_accuracy, one rank''s X wrong')
      call bp_mpi_eval_loss(dp, X(:, s + 1:s + c), labels(s + 1:s + c), loss, st)
      call check(st == BP_OK, 'after a failed call on one rank, a valid call works')
      ! The same for the gradient passes of `backprop` on the attached network: the rank whose
      ! wrapper refused its arguments tells the others (BP_ERR_COMM there), and no rank waits.
      call bp_net_loss_and_grad(net, X(1:m, s + 1:s + c), labels(s + 1:s + c), loss, st)
      call check(st == merge(BP_ERR_ARG, BP_ERR_COMM, rank == nproc - 1), 'bp_net_loss_and_grad, one rank''s X ' // &
          'wrong (got ' // str(int(st)) // '): ' // bp_last_error())
      call bp_net_loss_and_grad_dx(net, X(:, s + 1:s + c), labels(s + 1:s + c), dX(1:m, 1:c), loss, st)
      call check(st == merge(BP_ERR_ARG, BP_ERR_COMM, rank == nproc - 1), 'bp_net_loss_and_grad_dx, one rank''s ' // &
          'dX wrong (got ' // str(int(st)) // '): ' // bp_last_error())
      call bp_optim_create(opt, net, bp_optim_defaults(BP_OPT_SGD, 0.1d0))
      call bp_train(net, opt, X(1:m, s + 1:s + c), labels(s + 1:s + c), epochs=1, batch_size=N, stat=st)
      call check(st == merge(BP_ERR_ARG, BP_ERR_COMM, rank == nproc - 1), 'bp_train, one rank''s X wrong (got ' // &
          str(int(st)) // '): ' // bp_last_error())
      call bp_optim_destroy(opt)
      call bp_net_loss_and_grad(net, X(:, s + 1:s + c), labels(s + 1:s + c), loss, st)
      call check(st == BP_OK, 'after a refused gradient pass on one rank, a valid one works')
    end if
    call bp_mpi_detach(dp)
    call bp_net_destroy(net)
    call bp_net_destroy(plain)
  end subroutine

end program test_mpi
