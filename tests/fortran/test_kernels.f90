! SPDX-License-Identifier: MIT
! test_kernels.f90: the kernel wrappers, column-major, against the C kernels called directly (float and double).
module kernel_cases_s
  use, intrinsic :: iso_c_binding
  use backprop, raw_dense_forward => bp_sdense_forward, raw_dense_backward => bp_sdense_backward, &
      raw_act_forward => bp_sact_forward, raw_act_backward => bp_sact_backward, &
      raw_softmax_xent => bp_ssoftmax_xent, raw_softmax_xent_prob => bp_ssoftmax_xent_prob, &
      raw_sigmoid_bce => bp_ssigmoid_bce, raw_mse => bp_smse, raw_logreg_grad => bp_slogreg_grad
  use bp_testing
  implicit none
  private
  public :: run_kernel_cases
  integer, parameter :: wp = c_float
contains
  include 'kernel_cases.inc'
end module kernel_cases_s

module kernel_cases_d
  use, intrinsic :: iso_c_binding
  use backprop, raw_dense_forward => bp_ddense_forward, raw_dense_backward => bp_ddense_backward, &
      raw_act_forward => bp_dact_forward, raw_act_backward => bp_dact_backward, &
      raw_softmax_xent => bp_dsoftmax_xent, raw_softmax_xent_prob => bp_dsoftmax_xent_prob, &
      raw_sigmoid_bce => bp_dsigmoid_bce, raw_mse => bp_dmse, raw_logreg_grad => bp_dlogreg_grad
  use bp_testing
  implicit none
  private
  public :: run_kernel_cases
  integer, parameter :: wp = c_double
contains
  include 'kernel_cases.inc'
end module kernel_cases_d

program test_kernels
  use bp_testing, only: tests_done
  use kernel_cases_s, only: run_s => run_kernel_cases
  use kernel_cases_d, only: run_d => run_kernel_cases
  implicit none
  call run_s()
  call run_d()
  call tests_done('kernels')
end program test_kernels
