! SPDX-License-Identifier: MIT
! main.f90: the outer project's Fortran program: the same softmax layer as main.c, through the module.
program outer_fortran
  use, intrinsic :: iso_c_binding, only: c_double, c_int32_t
  use backprop
  implicit none
  real(c_double) :: X(2, 2), W(2, 2), Z(2, 2), dZ(2, 2), dW(2, 2), loss, err
  integer(c_int32_t) :: labels(2) = [0, 1]

  X(:, 1) = [1.0_c_double, 2.0_c_double]   ! one sample per column
  X(:, 2) = [3.0_c_double, 5.0_c_double]
  W = 0
  call bp_dense_forward(X, W, Z, BP_ACT_IDENTITY)
  call bp_softmax_xent(Z, labels, loss=loss, dZ=dZ)
  call bp_dense_backward(X, W, dZ, dW, BP_ACT_IDENTITY)
  ! dW(1, :) = [0.5, 0.75], dW(2, :) = -dW(1, :); the loss is log 2
  err = max(abs(loss - log(2.0_c_double)), maxval(abs(dW(1, :) - [0.5_c_double, 0.75_c_double])), &
            maxval(abs(dW(2, :) + [0.5_c_double, 0.75_c_double])))
  write (*, '(a, es10.3)') 'outer_fortran: max error ', err
  if (err > 1e-12_c_double) error stop 1
end program outer_fortran
