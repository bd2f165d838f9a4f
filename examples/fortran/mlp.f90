! SPDX-License-Identifier: MIT
! mlp.f90: an MLP trained on data held in Fortran arrays, saved, reloaded, and its accuracy printed.
!
!   gfortran mlp.f90 $(pkg-config --cflags --libs backprop-fortran) -o mlp && ./mlp [model file]
module mlp_report
  use, intrinsic :: iso_c_binding, only: c_long
  use backprop, only: bp_epoch_report
  implicit none
contains
  ! Called by bp_train after each epoch; .true. would stop training.
  logical function report(r) result(stop_training)
    type(bp_epoch_report), intent(in) :: r
    if (mod(r%epoch, 10_c_long) == 0) write (*, '(a, i3, a, f7.4, a, f6.3)') &
        'epoch ', r%epoch, '  loss ', r%loss, '  train accuracy ', r%metric
    stop_training = .false.
  end function
end module mlp_report

program mlp
  use, intrinsic :: iso_c_binding, only: c_float, c_double, c_int32_t
  use backprop
  use mlp_report
  implicit none
  integer, parameter :: N = 600, D = 2, K = 3
  ! One column per sample: X(:, i) is sample i. This is the sample-major
  ! layout the network expects (C's X[N][D]), so nothing is copied.
  real(c_float) :: X(D, N)
  integer(c_int32_t) :: labels(N)      ! class labels are 0-based, as in C
  type(bp_net) :: net, loaded
  type(bp_optim) :: opt
  real(c_double) :: acc, acc_loaded
  real(c_float) :: r2
  character(len=256) :: path
  integer :: i

  ! Three classes: inside a disc, and the two diagonal pairs of quadrants outside it.
  call random_seed_fixed()
  call random_number(X)
  X = 2 * X - 1
  do i = 1, N
    r2 = X(1, i)**2 + X(2, i)**2
    if (r2 < 0.3) then
      labels(i) = 0
    else if (X(1, i) * X(2, i) > 0) then
      labels(i) = 1
    else
      labels(i) = 2
    end if
  end do

  ! 2 -> 32 tanh -> 32 relu -> 3 logits, softmax cross-entropy. Without
  ! stat=, any error stops the program with the library's message.
  call bp_net_create(net, BP_F32, D, [bp_layer_spec(32, BP_ACT_TANH), bp_layer_spec(32, BP_ACT_RELU), &
      bp_layer_spec(K, BP_ACT_IDENTITY)], BP_LOSS_SOFTMAX_XENT)
  call bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 42)
  call bp_net_plan(net, 32)              ! one arena; batches stream through in micro-batches of 32
  call bp_optim_create(opt, net, bp_optim_defaults(BP_OPT_ADAM, 0.003d0))
  call bp_train(net, opt, X, labels, epochs=60, batch_size=32, seed=7, on_epoch=report)
  call bp_net_accuracy(net, X, labels, acc)

  ! Save, load back, and evaluate the loaded copy.
  path = 'mlp.bpm'
  if (command_argument_count() >= 1) call get_command_argument(1, path)
  call bp_model_save(net, path)
  call bp_model_load(loaded, path)
  call bp_net_plan(loaded, 256)
  call bp_net_accuracy(loaded, X, labels, acc_loaded)
  write (*, '(a, f6.3, a, f6.3, a)') 'accuracy ', acc, ' (reloaded from ' // trim(path) // ': ', acc_loaded, ')'

  call bp_optim_destroy(opt)
  call bp_net_destroy(net)
  call bp_net_destroy(loaded)
  if (acc < 0.95d0 .or. abs(acc - acc_loaded) > 0) error stop 1

contains

  ! The same data on every run.
  subroutine random_seed_fixed()
    integer :: n
    integer, allocatable :: seed(:)
    call random_seed(size=n)
    allocate (seed(n))
    seed = [(12345 + 97 * i, i = 1, n)]
    call random_seed(put=seed)
  end subroutine
end program mlp
