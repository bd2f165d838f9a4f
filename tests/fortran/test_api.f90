! SPDX-License-Identifier: MIT
! test_api.f90: the module's constants and bind(C) types agree with the C headers; strings come through.
program test_api
  use, intrinsic :: iso_c_binding
  use backprop
  use bp_testing
  implicit none

  interface
    function bpt_constants(out, max) bind(C) result(n)
      import :: c_int
      integer(c_int), value :: max
      integer(c_int), intent(inout) :: out(max)
      integer(c_int) :: n
    end function
    function bpt_struct_sizes(out, max) bind(C) result(n)
      import :: c_int, c_size_t
      integer(c_int), value :: max
      integer(c_size_t), intent(inout) :: out(max)
      integer(c_int) :: n
    end function
  end interface

  ! In the order of bpt_constants in cref.c.
  integer(c_int), parameter :: mine(*) = [ &
      BP_VERSION_MAJOR, BP_VERSION_MINOR, BP_VERSION_PATCH, &
      BP_ROW_MAJOR, BP_COL_MAJOR, BP_F32, BP_F64, &
      BP_OK, BP_ERR_ARG, BP_ERR_NOMEM, BP_ERR_OVERFLOW, BP_ERR_NONFINITE, BP_ERR_IO, BP_ERR_FORMAT, &
      BP_ERR_UNSUPPORTED, BP_ERR_COMM, BP_ERR_MISMATCH, &
      BP_ACT_IDENTITY, BP_ACT_SIGMOID, BP_ACT_TANH, BP_ACT_RELU, BP_ACT_LEAKY_RELU, BP_ACT_ELU, &
      BP_ACT_GELU, BP_ACT_GELU_TANH, BP_ACT_SOFTPLUS, BP_ACT_SOFTMAX, &
      BP_LOSS_SOFTMAX_XENT, BP_LOSS_SIGMOID_BCE, BP_LOSS_MSE, BP_LOSS_LEAST_SQUARES, &
      BP_INIT_GLOROT_UNIFORM, BP_INIT_GLOROT_NORMAL, BP_INIT_HE_UNIFORM, BP_INIT_HE_NORMAL, &
      BP_INIT_ORTHOGONAL, &
      BP_BACKEND_BLAS, BP_BACKEND_NAIVE, BP_NET_MAX_LAYERS, BP_NET_MAX_THREADS, &
      BP_OPT_SGD, BP_OPT_MOMENTUM, BP_OPT_NESTEROV, BP_OPT_ADAM, BP_OPT_ADAMW, &
      BP_SCHED_CONSTANT, BP_SCHED_STEP, BP_SCHED_COSINE, &
      BP_LOGREG_NEWTON_MAX_PARAMS, BP_SCALE_NONE, BP_SCALE_UNIT, BP_MODEL_FORMAT_VERSION, &
      BP_LM_RUNNING, BP_LM_MAX_ITER, BP_LM_GOAL, BP_LM_MIN_GRAD, BP_LM_MU_MAX, BP_LM_VAL_FAIL, BP_LM_CALLBACK]

  integer(c_int) :: theirs(size(mine) + 8), n, i
  integer(c_size_t) :: sizes(40)
  type(bp_allocator) :: a
  type(bp_layer_spec) :: spec, specs(3)
  type(bp_layer_view), target :: view
  type(bp_optim_config), target :: oc
  type(bp_epoch_report), target :: er
  type(bp_train_config), target :: tc
  type(bp_lm_config), target :: lc
  type(bp_lm_report), target :: lr
  type(bp_dataset), target :: ds
  character(len=16) :: expect

  theirs = -1
  n = bpt_constants(theirs, int(size(theirs), c_int))
  call check(n == size(mine), 'as many constants as C has')
  do i = 1, min(int(n), size(mine))
    call check(theirs(i) == mine(i), 'constant number ' // achar(48 + i / 10) // achar(48 + mod(i, 10)))
  end do

  n = bpt_struct_sizes(sizes, int(size(sizes), c_int))
  call check(n == 25, 'struct table length')
  call check(sizes(1) == c_sizeof(a), 'sizeof(bp_allocator)')
  call check(sizes(2) == c_sizeof(spec), 'sizeof(bp_layer_spec)')
  call check(sizes(3) == c_sizeof(view), 'sizeof(bp_layer_view)')
  call check(sizes(4) == c_sizeof(oc), 'sizeof(bp_optim_config)')
  call check(sizes(5) == c_sizeof(er), 'sizeof(bp_epoch_report)')
  call check(sizes(6) == c_sizeof(tc), 'sizeof(bp_train_config)')
  call check(sizes(7) == c_sizeof(ds), 'sizeof(bp_dataset)')
  call check(sizes(8) == offset(c_loc(view%offset), c_loc(view)), 'offsetof(bp_layer_view, offset)')
  call check(sizes(9) == offset(c_loc(view%db), c_loc(view)), 'offsetof(bp_layer_view, db)')
  call check(sizes(10) == offset(c_loc(oc%schedule), c_loc(oc)), 'offsetof(bp_optim_config, schedule)')
  call check(sizes(11) == offset(c_loc(oc%lr_min), c_loc(oc)), 'offsetof(bp_optim_config, lr_min)')
  call check(sizes(12) == offset(c_loc(tc%seed), c_loc(tc)), 'offsetof(bp_train_config, seed)')
  call check(sizes(13) == offset(c_loc(tc%ctx), c_loc(tc)), 'offsetof(bp_train_config, ctx)')
  call check(sizes(14) == offset(c_loc(ds%X), c_loc(ds)), 'offsetof(bp_dataset, X)')
  call check(sizes(15) == offset(c_loc(ds%n_classes), c_loc(ds)), 'offsetof(bp_dataset, n_classes)')
  call check(sizes(16) == offset(c_loc(ds%alloc), c_loc(ds)), 'offsetof(bp_dataset, alloc)')
  call check(sizes(17) == offset(c_loc(er%best), c_loc(er)), 'offsetof(bp_epoch_report, best)')
  call check(sizes(18) == offset(c_loc(tc%state), c_loc(tc)), 'offsetof(bp_train_config, state)')
  call check(sizes(19) == offset(c_loc(tc%early_stop), c_loc(tc)), 'offsetof(bp_train_config, early_stop)')
  call check(sizes(20) == offset(c_loc(ds%targets), c_loc(ds)), 'offsetof(bp_dataset, targets)')
  call check(sizes(21) == offset(c_loc(ds%n_targets), c_loc(ds)), 'offsetof(bp_dataset, n_targets)')
  call check(sizes(22) == c_sizeof(lc), 'sizeof(bp_lm_config)')
  call check(sizes(23) == c_sizeof(lr), 'sizeof(bp_lm_report)')
  call check(sizes(24) == offset(c_loc(lc%max_bytes), c_loc(lc)), 'offsetof(bp_lm_config, max_bytes)')
  call check(sizes(25) == offset(c_loc(lr%seconds), c_loc(lr)), 'offsetof(bp_lm_report, seconds)')

  ! Strings.
  write (expect, '(i0, ".", i0, ".", i0)') BP_VERSION_MAJOR, BP_VERSION_MINOR, BP_VERSION_PATCH
  call check(bp_version() == trim(expect), 'bp_version() is ' // trim(expect))
  call check(bp_strerror(BP_OK) == 'success', 'bp_strerror(BP_OK)')
  call check(bp_strerror(BP_ERR_IO) == 'input/output error', 'bp_strerror(BP_ERR_IO)')
  call check(bp_strerror(99_c_int) == 'unknown status', 'bp_strerror(99)')

  ! bp_layer_spec's defaults and the optimizer's defaults from C (a struct returned by value).
  specs = [bp_layer_spec(8, BP_ACT_RELU), bp_layer_spec(4, BP_ACT_ELU, 1d0), bp_layer_spec(n_out=2)]
  call check(specs(1)%act == BP_ACT_RELU .and. abs(specs(1)%alpha) <= 0, 'bp_layer_spec default alpha')
  call check(specs(3)%act == BP_ACT_IDENTITY, 'bp_layer_spec default act')
  oc = bp_optim_defaults(BP_OPT_ADAMW, 0.5d0)
  call check(oc%kind == BP_OPT_ADAMW .and. abs(oc%lr - 0.5d0) <= 0 .and. abs(oc%beta2 - 0.999d0) <= 0 .and. &
      abs(oc%weight_decay - 0.01d0) <= 0 .and. oc%schedule == BP_SCHED_CONSTANT, 'bp_optim_defaults(ADAMW)')
  call check(bp_act_needs_z(BP_ACT_GELU) /= 0 .and. bp_act_needs_z(BP_ACT_TANH) == 0, 'bp_act_needs_z')

  call tests_done('api')

contains

  integer(c_size_t) function offset(field, base)
    type(c_ptr), intent(in) :: field, base
    offset = int(transfer(field, 0_c_intptr_t) - transfer(base, 0_c_intptr_t), c_size_t)
  end function
end program test_api
