! SPDX-License-Identifier: MIT
! error_stop.f90: errors without stat= stop the program with the library's message (run by test_errors).
program error_stop
  use, intrinsic :: iso_c_binding
  use backprop
  implicit none
  real(c_double) :: X(4, 2), W(3, 5), Y(3, 2)
  type(bp_net) :: net
  character(len=16) :: mode
  X = 0
  W = 0
  call get_command_argument(1, mode)
  select case (mode)
  case ('shape')      ! found by the wrapper: W has 5 columns, X 4 rows
    call bp_dense_forward(X, W, Y, BP_ACT_RELU)
  case ('act')        ! found by the C library
    call bp_dense_forward(X, W(:, 1:4), Y, 99_c_int)
  case ('file')
    call bp_model_load(net, '/nonexistent/dir/model.bpm')
  case default
    write (*, '(a)') 'usage: error_stop shape|act|file'
    stop
  end select
  write (*, '(a)') 'not reached'
end program error_stop
