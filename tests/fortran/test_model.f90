! SPDX-License-Identifier: MIT
! test_model.f90: a model saved from Fortran loads in C, and the model C saves again loads back in Fortran.
program test_model
  use, intrinsic :: iso_c_binding
  use backprop
  use bp_testing
  implicit none

  interface
    function bpt_model_roundtrip(path_in, path_out, n, X, Y) bind(C) result(r)
      import :: c_int, c_char, c_double
      character(kind=c_char), intent(in) :: path_in(*), path_out(*)
      integer(c_int), value :: n
      real(c_double), intent(in) :: X(*)
      real(c_double), intent(inout) :: Y(*)
      integer(c_int) :: r
    end function
  end interface

  integer, parameter :: N = 20, D = 4
  character(len=512) :: dir
  character(len=:), allocatable :: from_fortran, from_c, float_path
  type(bp_net) :: net, back, net32, back32
  type(bp_layer_view) :: v1, v2
  real(c_double), target :: X(D, N), Y(2, N), Yc(2, N), Yb(2, N)
  real(c_double), pointer :: p(:), q(:)
  real(c_float), pointer :: p32(:), q32(:)
  real(c_float) :: X32(D, N), Y32(3, N), Yb32(3, N)
  integer(c_int) :: st, i
  logical :: same

  call get_command_argument(1, dir)
  if (len_trim(dir) == 0) dir = '.'
  from_fortran = trim(dir) // '/fortran_model_from_fortran.bpm'
  from_c = trim(dir) // '/fortran_model_from_c.bpm'
  float_path = trim(dir) // '/fortran_model_float.bpm'
  call fill(X, 5)

  ! A double network with every kind of layer parameter: GELU, ELU's alpha.
  call bp_net_create(net, BP_F64, D, [bp_layer_spec(7, BP_ACT_GELU), bp_layer_spec(5, BP_ACT_ELU, 0.75d0), &
      bp_layer_spec(2)], BP_LOSS_MSE)
  call bp_net_init(net, BP_INIT_ORTHOGONAL, 3, gain=sqrt(2d0))
  call bp_net_params(net, p)
  p(size(p) - 1:) = [0.25d0, -0.5d0]   ! non-zero biases in the last layer
  call bp_model_save(net, from_fortran, stat=st)
  call check(st == BP_OK, 'bp_model_save from Fortran')

  ! C loads it, predicts on the Fortran array X(D, N) (its X[N][D]), saves it again.
  Yc = 0
  call check(bpt_model_roundtrip(from_fortran // c_null_char, from_c // c_null_char, int(N, c_int), X, Yc) == 0, &
      'C loads the Fortran model, predicts and saves it')
  call bp_net_plan(net, int(N, c_int))
  call bp_net_forward(net, X, Y)
  call check(same_bits(Y, Yc), 'C predicts with the loaded model exactly what Fortran predicts')

  ! And back: the model saved by C loads in Fortran, bit for bit.
  call bp_model_load(back, from_c, stat=st)
  call check(st == BP_OK, 'bp_model_load in Fortran of the model C saved')
  call check(bp_net_dtype(back) == BP_F64 .and. bp_net_n_in(back) == D .and. bp_net_n_out(back) == 2 .and. &
      bp_net_n_layers(back) == 3 .and. bp_net_loss(back) == BP_LOSS_MSE, 'architecture came back')
  same = .true.
  do i = 0, 2
    call bp_net_layer(net, i, v1)
    call bp_net_layer(back, i, v2)
    same = same .and. v1%n_in == v2%n_in .and. v1%n_out == v2%n_out .and. v1%act == v2%act .and. &
        transfer(v1%alpha, 0_c_int64_t) == transfer(v2%alpha, 0_c_int64_t) .and. v1%offset == v2%offset
  end do
  call check(same, 'layers (sizes, activations, alpha, offsets) came back')
  call bp_net_params(back, q)
  call check(same_bits(p, q), 'parameters came back bit for bit')
  call bp_net_plan(back, 8_c_int)
  call bp_net_forward(back, X, Yb)
  call check(rel_err(Yb, Y) <= 1d-14, 'the reloaded network predicts the same')

  ! A float network, within Fortran, saved over an existing file.
  call bp_net_create(net32, BP_F32, D, [bp_layer_spec(5, BP_ACT_SIGMOID), bp_layer_spec(3)], BP_LOSS_SIGMOID_BCE)
  call bp_net_init(net32, BP_INIT_GLOROT_NORMAL, 9)
  call bp_model_save(net32, float_path)
  call bp_model_save(net32, float_path, stat=st)
  call check(st == BP_OK, 'bp_model_save over an existing file')
  call bp_model_load(back32, float_path)
  call bp_net_params(net32, p32)
  call bp_net_params(back32, q32)
  call check(bp_net_dtype(back32) == BP_F32 .and. same_bits(p32, q32), 'float model round trip')
  X32 = real(X, c_float)
  call bp_net_plan(net32, 4_c_int)
  call bp_net_plan(back32, 16_c_int)
  call bp_net_forward(net32, X32, Y32)
  call bp_net_forward(back32, X32, Yb32)
  call check(rel_err(Yb32, Y32) <= 1d-6, 'float model predicts the same after loading')

  call bp_net_destroy(net)
  call bp_net_destroy(back)
  call bp_net_destroy(net32)
  call bp_net_destroy(back32)
  deallocate (from_fortran, from_c, float_path)   ! main-program allocatables are not freed at exit
  call tests_done('model')
end program test_model
