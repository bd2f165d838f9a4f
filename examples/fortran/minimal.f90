! SPDX-License-Identifier: MIT
! minimal.f90: one softmax layer, its mean cross-entropy and its gradient, on Fortran arrays (the README's example).
program minimal
  use, intrinsic :: iso_c_binding, only: c_float, c_double, c_int32_t
  use backprop
  implicit none
  real(c_float) :: X(4, 3), W(2, 4), b(2), Z(2, 3), dZ(2, 3), dW(2, 4), db(2)
  integer(c_int32_t) :: labels(3) = [0, 1, 1]     ! 0-based class labels
  real(c_double) :: loss
  integer :: o

  ! A batch of 3 samples with 4 features: one sample per column.
  X(:, 1) = [1.0, 0.0, 2.0, -1.0]
  X(:, 2) = [0.0, 1.0, -1.0, 3.0]
  X(:, 3) = [2.0, 2.0, 0.0, 1.0]
  ! W(n_out, n_in): row o holds the weights of output o.
  W(1, :) = [0.1, -0.2, 0.3, 0.0]
  W(2, :) = [-0.1, 0.2, 0.0, 0.1]
  b = [0.0, 0.1]

  ! Z = W X + b, the logits (the loss applies the softmax)
  call bp_dense_forward(X, W, Z, BP_ACT_IDENTITY, b=b)
  ! mean cross-entropy over the 3 samples, and dZ = (softmax(Z) - onehot) / 3
  call bp_softmax_xent(Z, labels, loss=loss, dZ=dZ)
  ! dW = dZ X^T and db = the sums of dZ over the samples; no dX needed
  call bp_dense_backward(X, W, dZ, dW, BP_ACT_IDENTITY, db=db)

  write (*, '(a, f9.6)') 'loss ', loss
  do o = 1, 2
    write (*, '(a, i0, a, 4f10.6, a, i0, a, f10.6)') 'dW(', o, ', :) =', dW(o, :), '   db(', o, ') =', db(o)
  end do
end program minimal
