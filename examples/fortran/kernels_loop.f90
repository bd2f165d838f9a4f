! SPDX-License-Identifier: MIT
! kernels_loop.f90: the dense kernels called directly inside an existing Fortran training loop.
!
! The program owns its weights as ordinary Fortran arrays, W(n_out, n_in) as
! in the mathematics, and its own update rule; backprop only does the layer
! arithmetic, on those arrays and on column sections of X, with no copies.
!
!   gfortran kernels_loop.f90 $(pkg-config --cflags --libs backprop-fortran) -o kernels_loop
program kernels_loop
  use, intrinsic :: iso_c_binding, only: c_double
  use backprop
  implicit none
  integer, parameter :: dp = c_double
  integer, parameter :: N = 256, N_IN = 1, N_HID = 16, N_OUT = 1, BATCH = 32
  real(dp) :: X(N_IN, N), T(N_OUT, N)                          ! one column per sample
  real(dp) :: W1(N_HID, N_IN), b1(N_HID), W2(N_OUT, N_HID), b2(N_OUT)
  real(dp) :: dW1(N_HID, N_IN), db1(N_HID), dW2(N_OUT, N_HID), db2(N_OUT)
  real(dp) :: H(N_HID, BATCH), Y(N_OUT, BATCH), dY(N_OUT, BATCH), dH(N_HID, BATCH)
  real(dp) :: loss, first_loss, epoch_loss
  real(dp), parameter :: lr = 0.1_dp, pi = 3.14159265358979324_dp
  integer :: i, i0, i1, epoch

  ! Fit t = sin(pi x) on [-1, 1].
  do i = 1, N
    X(1, i) = -1 + 2 * real(i - 1, dp) / (N - 1)
    T(1, i) = sin(pi * X(1, i))
  end do
  call random_seed_fixed()
  call random_number(W1)
  call random_number(W2)
  W1 = 2 * W1 - 1
  W2 = (2 * W2 - 1) / sqrt(real(N_HID, dp))
  b1 = 0
  b2 = 0

  first_loss = -1
  do epoch = 1, 2000
    epoch_loss = 0
    do i0 = 1, N, BATCH
      i1 = i0 + BATCH - 1
      ! Forward: H = tanh(W1 x + b1) and Y = W2 h + b2 for each column of the
      ! section X(:, i0:i1), passed in place.
      call bp_dense_forward(X(:, i0:i1), W1, H, BP_ACT_TANH, b=b1)
      call bp_dense_forward(H, W2, Y, BP_ACT_IDENTITY, b=b2)
      ! Mean squared error over this batch and its gradient dY.
      call bp_mse(Y, T(:, i0:i1), loss=loss, dZ=dY)
      epoch_loss = epoch_loss + loss * BATCH / N
      ! Backward: dW2, db2 and dH from the output layer (dZ overwrites dY in
      ! place), then dW1 and db1; the first layer needs no dX.
      call bp_dense_backward(H, W2, dY, dW2, BP_ACT_IDENTITY, db=db2, dX=dH)
      call bp_dense_backward(X(:, i0:i1), W1, dH, dW1, BP_ACT_TANH, Y=H, db=db1)
      ! The program's own update rule: plain gradient descent.
      W1 = W1 - lr * dW1
      b1 = b1 - lr * db1
      W2 = W2 - lr * dW2
      b2 = b2 - lr * db2
    end do
    if (first_loss < 0) first_loss = epoch_loss
    if (mod(epoch, 400) == 0) write (*, '(a, i5, a, es10.3)') 'epoch ', epoch, '  mse ', epoch_loss
  end do
  write (*, '(a, es10.3, a, es10.3)') 'mse ', epoch_loss, ', first epoch ', first_loss
  if (epoch_loss > first_loss / 10) error stop 1

contains

  ! The same initial weights on every run.
  subroutine random_seed_fixed()
    integer :: n, k
    integer, allocatable :: seed(:)
    call random_seed(size=n)
    allocate (seed(n))
    seed = [(1000 + 31 * k, k = 1, n)]
    call random_seed(put=seed)
  end subroutine
end program kernels_loop
