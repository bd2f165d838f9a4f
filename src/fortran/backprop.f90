! SPDX-License-Identifier: MIT
! backprop.f90: the Fortran 2008 module `backprop`: bind(C) interfaces to the C library and thin wrappers.
!
! Two levels, both public:
!
! * bind(C) interfaces to every C function. A function keeps its C name
!   unless a wrapper takes that name; it is then bound as <name>_c. So the
!   kernels keep theirs (bp_sdense_forward, bp_ddense_forward, ... and the
!   _naive twins), as do bp_soptim_update, bp_doptim_update, bp_optim_defaults
!   and bp_act_needs_z, while bp_net_create is bp_net_create_c, etc. Arrays
!   are explicit-shape, or assumed-size with an explicit leading dimension as
!   in LAPACK; arguments the C library accepts as NULL, and void * data, are
!   type(c_ptr) values.
!
! * Wrappers, for Fortran arrays: kernels under generic names without the
!   precision letter (bp_dense_forward for real(c_float) and real(c_double)),
!   and the network, optimizer, training and I/O calls under their C names,
!   taking type(bp_net) / type(bp_optim) handles, Fortran strings for file
!   names, and sizes read off the arrays' shapes.
!
! Layout. Column-major is the natural case. A batch is X(n_in, n): one column
! per sample, which is the same memory as C's X[n][n_in], the sample-major
! layout the network expects. The kernels' W is Fortran's W(n_out, n_in) with
! BP_COL_MAJOR (the default of the wrappers); with layout = BP_ROW_MAJOR a
! wrapper takes the transposed array Wt(n_in, n_out) instead, which is the
! memory of C's row-major W[n_out][n_in]. A network stores each layer's
! weights row-major (PyTorch's convention), so from Fortran they appear as
! Wt(n_in, n_out) (bp_net_weights), followed by b(n_out). Nothing is ever
! transposed or copied: the wrappers take assumed-shape arrays (not
! `contiguous`, so no temporary is made on the way in either) and pass the
! address of their first element with a leading dimension read off the
! array's strides. A section X(1:m, j0:j1) of a larger array therefore works
! in place; only a first dimension with a stride other than 1 is refused.
!
! Errors. Every wrapper takes an optional `stat`. When it is present it
! receives BP_OK or the error's status, and bp_last_error() the message.
! When it is absent, an error stops the program (error stop) after writing
! "backprop: <bp_strerror>: <message>" to error_unit, as Fortran's own I/O
! does without iostat=. Outputs are untouched on error.
!
! Never pass one array as both an input and an output of a call. Where a C
! kernel may work in place, the wrapper's output is optional instead, and
! when it is absent the result overwrites the input.
!
! Indices the C library defines keep its values: class labels are 0-based
! (in [0, n_classes)), and so are layer numbers. The numeric getters
! (bp_net_n_in, ...) are pure; the functions returning strings are not
! (c_f_pointer is not pure in Fortran 2008).
module backprop
  use, intrinsic :: iso_c_binding, only: c_int, c_int32_t, c_int64_t, c_long, c_size_t, c_intptr_t, &
      c_float, c_double, c_char, c_null_char, c_ptr, c_null_ptr, c_funptr, c_null_funptr, &
      c_loc, c_funloc, c_associated, c_f_pointer, c_sizeof
  use, intrinsic :: iso_fortran_env, only: error_unit
  implicit none
  private

  ! ---------------------------------------------------------------- constants
  ! backprop/core.h
  integer(c_int), parameter, public :: BP_VERSION_MAJOR = 0, BP_VERSION_MINOR = 2, BP_VERSION_PATCH = 0
  ! bp_layout (CBLAS's values)
  integer(c_int), parameter, public :: BP_ROW_MAJOR = 101, BP_COL_MAJOR = 102
  ! bp_dtype
  integer(c_int), parameter, public :: BP_F32 = 1, BP_F64 = 2
  ! bp_status
  integer(c_int), parameter, public :: BP_OK = 0, BP_ERR_ARG = 1, BP_ERR_NOMEM = 2, BP_ERR_OVERFLOW = 3, &
      BP_ERR_NONFINITE = 4, BP_ERR_IO = 5, BP_ERR_FORMAT = 6, BP_ERR_UNSUPPORTED = 7, &
      BP_ERR_COMM = 8, BP_ERR_MISMATCH = 9
  ! bp_act (backprop/kernels.h)
  integer(c_int), parameter, public :: BP_ACT_IDENTITY = 0, BP_ACT_SIGMOID = 1, BP_ACT_TANH = 2, &
      BP_ACT_RELU = 3, BP_ACT_LEAKY_RELU = 4, BP_ACT_ELU = 5, BP_ACT_GELU = 6, BP_ACT_GELU_TANH = 7, &
      BP_ACT_SOFTPLUS = 8, BP_ACT_SOFTMAX = 9
  ! bp_loss, bp_init, bp_backend (backprop/net.h)
  integer(c_int), parameter, public :: BP_LOSS_SOFTMAX_XENT = 1, BP_LOSS_SIGMOID_BCE = 2, BP_LOSS_MSE = 3, &
      BP_LOSS_LEAST_SQUARES = 4
  integer(c_int), parameter, public :: BP_INIT_GLOROT_UNIFORM = 1, BP_INIT_GLOROT_NORMAL = 2, &
      BP_INIT_HE_UNIFORM = 3, BP_INIT_HE_NORMAL = 4, BP_INIT_ORTHOGONAL = 5
  integer(c_int), parameter, public :: BP_BACKEND_BLAS = 0, BP_BACKEND_NAIVE = 1
  integer(c_int), parameter, public :: BP_NET_MAX_LAYERS = 1024, BP_NET_MAX_THREADS = 64
  integer(c_int64_t), parameter, public :: BP_NET_MAX_PARAMS = 2_c_int64_t**33
  ! bp_optimizer, bp_schedule (backprop/optim.h)
  integer(c_int), parameter, public :: BP_OPT_SGD = 1, BP_OPT_MOMENTUM = 2, BP_OPT_NESTEROV = 3, &
      BP_OPT_ADAM = 4, BP_OPT_ADAMW = 5
  integer(c_int), parameter, public :: BP_SCHED_CONSTANT = 0, BP_SCHED_STEP = 1, BP_SCHED_COSINE = 2
  ! backprop/train.h
  integer(c_int), parameter, public :: BP_LOGREG_NEWTON_MAX_PARAMS = 4096
  ! bp_lm_stop (backprop/train.h)
  integer(c_int), parameter, public :: BP_LM_RUNNING = 0, BP_LM_MAX_ITER = 1, BP_LM_GOAL = 2, &
      BP_LM_MIN_GRAD = 3, BP_LM_MU_MAX = 4, BP_LM_VAL_FAIL = 5, BP_LM_CALLBACK = 6
  ! bp_scale and limits (backprop/io.h)
  integer(c_int), parameter, public :: BP_SCALE_NONE = 0, BP_SCALE_UNIT = 1
  integer(c_int64_t), parameter, public :: BP_IO_MAX_VALUES = 2_c_int64_t**31, BP_IO_MAX_SAMPLES = 2_c_int64_t**28
  integer(c_int), parameter, public :: BP_MODEL_FORMAT_VERSION = 2

  ! -------------------------------------------------------------------- types
  ! The C structs, field for field.
  type, bind(C), public :: bp_allocator
    type(c_funptr) :: alloc = c_null_funptr   ! void *(*)(void *ctx, size_t size)
    type(c_funptr) :: free = c_null_funptr    ! void (*)(void *ctx, void *ptr)
    type(c_ptr) :: ctx = c_null_ptr
  end type

  ! One dense layer; bp_layer_spec(32, BP_ACT_RELU) leaves alpha at 0.
  type, bind(C), public :: bp_layer_spec
    integer(c_int) :: n_out = 0
    integer(c_int) :: act = BP_ACT_IDENTITY
    real(c_double) :: alpha = 0
  end type

  ! A layer inside the flat buffers (C pointers; bp_net_weights gives Fortran arrays).
  type, bind(C), public :: bp_layer_view
    integer(c_int) :: n_in = 0, n_out = 0
    integer(c_int) :: act = BP_ACT_IDENTITY
    real(c_double) :: alpha = 0
    integer(c_size_t) :: offset = 0            ! of W in the flat buffers, in elements (0-based)
    type(c_ptr) :: W = c_null_ptr, b = c_null_ptr, dW = c_null_ptr, db = c_null_ptr
  end type

  ! Fill it with bp_optim_defaults(kind, lr) and change what you need.
  type, bind(C), public :: bp_optim_config
    integer(c_int) :: kind
    real(c_double) :: lr, momentum, beta1, beta2, eps, weight_decay
    integer(c_int) :: schedule
    real(c_double) :: gamma
    integer(c_long) :: step_size, t_max
    real(c_double) :: lr_min
  end type

  type, bind(C), public :: bp_epoch_report
    integer(c_long) :: epoch
    real(c_double) :: loss, metric, samples_per_s, seconds
    real(c_double) :: val_loss, val_metric     ! NaN without a validation set
    integer(c_int) :: best                     ! nonzero: the lowest validation loss so far
  end type

  ! For the bind(C) bp_train_c; the wrapper bp_train takes keywords instead.
  type, bind(C), public :: bp_train_config
    integer(c_long) :: epochs = 1
    integer(c_int) :: batch_size = 1
    integer(c_int64_t) :: seed = 0             ! C's uint64_t, bit for bit
    integer(c_int) :: shuffle = 1
    type(c_funptr) :: on_epoch = c_null_funptr
    type(c_funptr) :: on_batch = c_null_funptr
    type(c_ptr) :: ctx = c_null_ptr
    type(c_ptr) :: state = c_null_ptr          ! bp_train_state*, for a resumed run
    integer(c_int) :: n_val = 0                ! validation set: n_val samples (0: none)
    type(c_ptr) :: X_val = c_null_ptr
    integer(c_int) :: ldx_val = 0
    type(c_ptr) :: targets_val = c_null_ptr
    integer(c_int) :: ldt_val = 0
    integer(c_long) :: early_stop = 0
  end type

  ! Levenberg-Marquardt (bp_lm_fit): the configuration, bp_lm_defaults() for
  ! MATLAB trainlm's; the wrapper bp_lm_fit fills the validation fields.
  type, bind(C), public :: bp_lm_config
    integer(c_int) :: max_iter = 1000
    real(c_double) :: goal = 0, min_grad = 1d-7, mu = 1d-3, mu_dec = 0.1d0, mu_inc = 10, mu_max = 1d10
    integer(c_int) :: max_fail = 6
    integer(c_int) :: n_val = 0
    type(c_ptr) :: X_val = c_null_ptr
    integer(c_int) :: ldx_val = 0
    type(c_ptr) :: T_val = c_null_ptr
    integer(c_int) :: ldt_val = 0
    integer(c_int) :: block = 0
    integer(c_size_t) :: max_bytes = 0
    type(c_funptr) :: on_iter = c_null_funptr
    type(c_ptr) :: ctx = c_null_ptr
  end type

  ! Where a Levenberg-Marquardt fit ended (bp_lm_report).
  type, bind(C), public :: bp_lm_report
    integer(c_int) :: iterations = 0
    real(c_double) :: mse = 0, val_mse = 0, grad_norm = 0, mu = 0
    integer(c_int) :: stop = 0
    real(c_double) :: seconds = 0
  end type

  ! A data set read by bp_idx_read / bp_csv_read: bp_dataset_features and
  ! bp_dataset_labels give its arrays; free it with bp_dataset_free.
  type, bind(C), public :: bp_dataset
    integer(c_int) :: dtype = 0
    integer(c_int) :: n = 0, n_features = 0
    type(c_ptr) :: X = c_null_ptr
    type(c_ptr) :: labels = c_null_ptr
    integer(c_int) :: n_classes = 0
    type(bp_allocator) :: alloc
    type(c_ptr) :: targets = c_null_ptr      ! n_targets x n real targets (bp_csv_read_targets)
    integer(c_int) :: n_targets = 0
  end type

  ! Handles. They are plain references, like the C pointers: copying one does
  ! not copy the object, and bp_net_destroy / bp_optim_destroy free it.
  type, public :: bp_net
    type(c_ptr) :: ptr = c_null_ptr
  end type
  type, public :: bp_optim
    type(c_ptr) :: ptr = c_null_ptr
  end type

  ! Training callbacks of the wrapper bp_train. on_epoch returns .true. to stop.
  abstract interface
    function bp_epoch_callback(report) result(stop_training)
      import :: bp_epoch_report
      type(bp_epoch_report), intent(in) :: report
      logical :: stop_training
    end function
    subroutine bp_batch_callback(epoch, batch, n_batches, loss)
      import :: c_long, c_double
      integer(c_long), intent(in) :: epoch, batch, n_batches
      real(c_double), intent(in) :: loss
    end subroutine
  end interface
  public :: bp_epoch_callback, bp_batch_callback

  type :: train_callbacks
    procedure(bp_epoch_callback), pointer, nopass :: on_epoch => null()
    procedure(bp_batch_callback), pointer, nopass :: on_batch => null()
  end type

  ! A batch of n samples checked against a network, as the C calls take it: X
  ! and the labels or targets by address, with leading dimensions (ldt = 0
  ! for labels).
  type :: checked_batch
    integer(c_int) :: n = 0, ldx = 1, ldt = 0
    type(c_ptr) :: px = c_null_ptr, pt = c_null_ptr
  end type

  ! ------------------------------------------------------- bind(C): the kernels
  include 'kernels_iface_s.inc'
  include 'kernels_iface_d.inc'
  include 'kernels_iface_s_naive.inc'
  include 'kernels_iface_d_naive.inc'

  ! ------------------------------------------------------ bind(C): everything else
  public :: bp_strerror_c, bp_last_error_c, bp_version_c, bp_act_needs_z
  public :: bp_net_create_c, bp_net_destroy_c, bp_net_init_c, bp_net_dtype_c, bp_net_n_layers_c, &
      bp_net_n_in_c, bp_net_n_out_c, bp_net_loss_c, bp_net_n_params_c, bp_net_params_c, bp_net_grads_c, &
      bp_net_layer_c, bp_net_plan_c, bp_net_describe_plan_c, bp_net_set_backend_c, &
      bp_net_set_threads_c, bp_net_threads_c, bp_net_set_chunk_min_c, &
      bp_net_set_check_finite_c, bp_net_forward_c, &
      bp_net_loss_and_grad_c, bp_optim_train_step_c, bp_net_accuracy_c, bp_net_rmse_c, bp_net_gradcheck_c, &
      bp_net_predict_proba_c, bp_net_predict_class_c, bp_net_eval_loss_c, bp_net_set_standardization_c, &
      bp_net_fit_standardization_c, bp_net_has_standardization_c, bp_net_standardization_c, &
      bp_net_backward_c, bp_net_loss_and_grad_dx_c, bp_net_jacobian_inputs_c, bp_net_jacobian_params_c, &
      bp_net_sample_losses_c, bp_net_has_reducer_c
  public :: bp_optim_defaults, bp_optim_create_c, bp_optim_destroy_c, bp_optim_step_c, bp_optim_lr_c, &
      bp_optim_steps_c, bp_soptim_update, bp_doptim_update
  public :: bp_train_c, bp_logreg_create_c, bp_logreg_newton_c, bp_lm_defaults, bp_lm_fit_c
  public :: bp_idx_read_c, bp_csv_read_c, bp_dataset_free_c, bp_dataset_standardize_c, bp_model_save_c, &
      bp_model_load_c

  interface
    ! backprop/core.h. The strings are static or thread-local C strings;
    ! bp_strerror, bp_last_error and bp_version return them as Fortran strings.
    function bp_strerror_c(status) bind(C, name='bp_strerror') result(s)
      import :: c_int, c_ptr
      integer(c_int), value :: status
      type(c_ptr) :: s
    end function
    function bp_last_error_c() bind(C, name='bp_last_error') result(s)
      import :: c_ptr
      type(c_ptr) :: s
    end function
    function bp_version_c() bind(C, name='bp_version') result(s)
      import :: c_ptr
      type(c_ptr) :: s
    end function
    pure function bp_act_needs_z(act) bind(C, name='bp_act_needs_z') result(r)
      import :: c_int
      integer(c_int), value :: act
      integer(c_int) :: r
    end function

    ! backprop/net.h
    function bp_net_create_c(out, dtype, n_in, n_layers, layers, loss, alloc) &
        bind(C, name='bp_net_create') result(status)
      import :: c_int, c_ptr, bp_layer_spec
      type(c_ptr), intent(inout) :: out
      integer(c_int), value :: dtype, n_in, n_layers, loss
      type(bp_layer_spec), intent(in) :: layers(n_layers)
      type(c_ptr), value :: alloc
      integer(c_int) :: status
    end function
    subroutine bp_net_destroy_c(net) bind(C, name='bp_net_destroy')
      import :: c_ptr
      type(c_ptr), value :: net
    end subroutine
    function bp_net_init_c(net, scheme, seed, gain) bind(C, name='bp_net_init') result(status)
      import :: c_int, c_int64_t, c_double, c_ptr
      type(c_ptr), value :: net
      integer(c_int), value :: scheme
      integer(c_int64_t), value :: seed
      real(c_double), value :: gain
      integer(c_int) :: status
    end function
    pure function bp_net_dtype_c(net) bind(C, name='bp_net_dtype') result(r)
      import :: c_int, c_ptr
      type(c_ptr), value :: net
      integer(c_int) :: r
    end function
    pure function bp_net_n_layers_c(net) bind(C, name='bp_net_n_layers') result(r)
      import :: c_int, c_ptr
      type(c_ptr), value :: net
      integer(c_int) :: r
    end function
    pure function bp_net_n_in_c(net) bind(C, name='bp_net_n_in') result(r)
      import :: c_int, c_ptr
      type(c_ptr), value :: net
      integer(c_int) :: r
    end function
    pure function bp_net_n_out_c(net) bind(C, name='bp_net_n_out') result(r)
      import :: c_int, c_ptr
      type(c_ptr), value :: net
      integer(c_int) :: r
    end function
    pure function bp_net_loss_c(net) bind(C, name='bp_net_loss') result(r)
      import :: c_int, c_ptr
      type(c_ptr), value :: net
      integer(c_int) :: r
    end function
    pure function bp_net_n_params_c(net) bind(C, name='bp_net_n_params') result(r)
      import :: c_size_t, c_ptr
      type(c_ptr), value :: net
      integer(c_size_t) :: r
    end function
    function bp_net_params_c(net) bind(C, name='bp_net_params') result(r)
      import :: c_ptr
      type(c_ptr), value :: net
      type(c_ptr) :: r
    end function
    function bp_net_grads_c(net) bind(C, name='bp_net_grads') result(r)
      import :: c_ptr
      type(c_ptr), value :: net
      type(c_ptr) :: r
    end function
    function bp_net_layer_c(net, i, view) bind(C, name='bp_net_layer') result(status)
      import :: c_int, c_ptr, bp_layer_view
      type(c_ptr), value :: net
      integer(c_int), value :: i
      type(bp_layer_view), intent(inout) :: view
      integer(c_int) :: status
    end function
    function bp_net_plan_c(net, max_micro_batch) bind(C, name='bp_net_plan') result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: net
      integer(c_int), value :: max_micro_batch
      integer(c_int) :: status
    end function
    function bp_net_describe_plan_c(net, buf, len, needed) bind(C, name='bp_net_describe_plan') result(status)
      import :: c_int, c_size_t, c_ptr
      type(c_ptr), value :: net, buf
      integer(c_size_t), value :: len
      integer(c_size_t), intent(inout) :: needed
      integer(c_int) :: status
    end function
    function bp_net_set_backend_c(net, backend) bind(C, name='bp_net_set_backend') result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: net
      integer(c_int), value :: backend
      integer(c_int) :: status
    end function
    function bp_net_set_threads_c(net, n_threads) bind(C, name='bp_net_set_threads') result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: net
      integer(c_int), value :: n_threads
      integer(c_int) :: status
    end function
    pure function bp_net_threads_c(net) bind(C, name='bp_net_threads') result(r)
      import :: c_int, c_ptr
      type(c_ptr), value :: net
      integer(c_int) :: r
    end function
    function bp_net_set_chunk_min_c(net, min_macs, min_values) bind(C, name='bp_net_set_chunk_min') &
        result(status)
      import :: c_int, c_long, c_ptr
      type(c_ptr), value :: net
      integer(c_long), value :: min_macs, min_values
      integer(c_int) :: status
    end function
    function bp_net_set_check_finite_c(net, on) bind(C, name='bp_net_set_check_finite') result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: net
      integer(c_int), value :: on
      integer(c_int) :: status
    end function
    ! X, Y, targets: the address of X(1, 1) etc. (void * in C: the network's dtype).
    function bp_net_forward_c(net, n, X, ldx, Y, ldy) bind(C, name='bp_net_forward') result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: net, X, Y
      integer(c_int), value :: n, ldx, ldy
      integer(c_int) :: status
    end function
    function bp_net_has_reducer_c(net) bind(C, name='bp_net_has_reducer') result(r)
      import :: c_int, c_ptr
      type(c_ptr), value :: net
      integer(c_int) :: r
    end function
    function bp_net_loss_and_grad_c(net, n, X, ldx, targets, ldt, loss) &
        bind(C, name='bp_net_loss_and_grad') result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: net, X, targets, loss
      integer(c_int), value :: n, ldx, ldt
      integer(c_int) :: status
    end function
    function bp_optim_train_step_c(opt, net, n, X, ldx, targets, ldt, loss) &
        bind(C, name='bp_optim_train_step') result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: opt, net, X, targets, loss
      integer(c_int), value :: n, ldx, ldt
      integer(c_int) :: status
    end function
    function bp_net_accuracy_c(net, n, X, ldx, labels, accuracy, confusion) &
        bind(C, name='bp_net_accuracy') result(status)
      import :: c_int, c_int32_t, c_double, c_ptr
      type(c_ptr), value :: net, X, confusion
      integer(c_int), value :: n, ldx
      integer(c_int32_t), intent(in) :: labels(*)
      real(c_double), intent(inout) :: accuracy
      integer(c_int) :: status
    end function
    function bp_net_rmse_c(net, n, X, ldx, targets, ldt, rmse) bind(C, name='bp_net_rmse') result(status)
      import :: c_int, c_double, c_ptr
      type(c_ptr), value :: net, X, targets
      integer(c_int), value :: n, ldx, ldt
      real(c_double), intent(inout) :: rmse
      integer(c_int) :: status
    end function
    function bp_net_gradcheck_c(net, n, X, ldx, targets, ldt, h, max_rel_err, worst) &
        bind(C, name='bp_net_gradcheck') result(status)
      import :: c_int, c_double, c_ptr
      type(c_ptr), value :: net, X, targets, worst
      integer(c_int), value :: n, ldx, ldt
      real(c_double), value :: h
      real(c_double), intent(inout) :: max_rel_err
      integer(c_int) :: status
    end function
    function bp_net_predict_proba_c(net, n, X, ldx, P, ldp) bind(C, name='bp_net_predict_proba') result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: net, X, P
      integer(c_int), value :: n, ldx, ldp
      integer(c_int) :: status
    end function
    function bp_net_predict_class_c(net, n, X, ldx, classes) bind(C, name='bp_net_predict_class') result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: net, X, classes
      integer(c_int), value :: n, ldx
      integer(c_int) :: status
    end function
    function bp_net_eval_loss_c(net, n, X, ldx, targets, ldt, loss) bind(C, name='bp_net_eval_loss') result(status)
      import :: c_int, c_double, c_ptr
      type(c_ptr), value :: net, X, targets
      integer(c_int), value :: n, ldx, ldt
      real(c_double), intent(inout) :: loss
      integer(c_int) :: status
    end function
    ! mean, std: n_in values each, or both NULL (removes the standardisation).
    function bp_net_set_standardization_c(net, mean, std) bind(C, name='bp_net_set_standardization') &
        result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: net, mean, std
      integer(c_int) :: status
    end function
    function bp_net_fit_standardization_c(net, n, X, ldx) bind(C, name='bp_net_fit_standardization') &
        result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: net, X
      integer(c_int), value :: n, ldx
      integer(c_int) :: status
    end function
    function bp_net_has_standardization_c(net) bind(C, name='bp_net_has_standardization') result(has)
      import :: c_int, c_ptr
      type(c_ptr), value :: net
      integer(c_int) :: has
    end function
    function bp_net_standardization_c(net, mean, std) bind(C, name='bp_net_standardization') result(status)
      import :: c_int, c_double, c_ptr
      type(c_ptr), value :: net
      real(c_double), intent(inout) :: mean(*), std(*)
      integer(c_int) :: status
    end function
    function bp_net_sample_losses_c(net, n, X, ldx, targets, ldt, losses) bind(C, name='bp_net_sample_losses') &
        result(status)
      import :: c_int, c_double, c_ptr
      type(c_ptr), value :: net, X, targets
      integer(c_int), value :: n, ldx, ldt
      real(c_double), intent(inout) :: losses(*)
      integer(c_int) :: status
    end function
    function bp_net_backward_c(net, n, X, ldx, dY, lddy, beta, dX, lddx) bind(C, name='bp_net_backward') &
        result(status)
      import :: c_int, c_double, c_ptr
      type(c_ptr), value :: net, X, dY, dX
      integer(c_int), value :: n, ldx, lddy, lddx
      real(c_double), value :: beta
      integer(c_int) :: status
    end function
    function bp_net_loss_and_grad_dx_c(net, n, X, ldx, targets, ldt, loss, dX, lddx) &
        bind(C, name='bp_net_loss_and_grad_dx') result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: net, X, targets, loss, dX
      integer(c_int), value :: n, ldx, ldt, lddx
      integer(c_int) :: status
    end function
    function bp_net_jacobian_inputs_c(net, n, X, ldx, J) bind(C, name='bp_net_jacobian_inputs') result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: net, X, J
      integer(c_int), value :: n, ldx
      integer(c_int) :: status
    end function
    function bp_net_jacobian_params_c(net, n, X, ldx, J, ldj) bind(C, name='bp_net_jacobian_params') &
        result(status)
      import :: c_int, c_size_t, c_ptr
      type(c_ptr), value :: net, X, J
      integer(c_int), value :: n, ldx
      integer(c_size_t), value :: ldj
      integer(c_int) :: status
    end function

    ! backprop/optim.h
    function bp_optim_defaults(kind, lr) bind(C, name='bp_optim_defaults') result(config)
      import :: c_int, c_double, bp_optim_config
      integer(c_int), value :: kind
      real(c_double), value :: lr
      type(bp_optim_config) :: config
    end function
    function bp_optim_create_c(out, net, config) bind(C, name='bp_optim_create') result(status)
      import :: c_int, c_ptr, bp_optim_config
      type(c_ptr), intent(inout) :: out
      type(c_ptr), value :: net
      type(bp_optim_config), intent(in) :: config
      integer(c_int) :: status
    end function
    subroutine bp_optim_destroy_c(opt) bind(C, name='bp_optim_destroy')
      import :: c_ptr
      type(c_ptr), value :: opt
    end subroutine
    function bp_optim_step_c(opt, net) bind(C, name='bp_optim_step') result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: opt, net
      integer(c_int) :: status
    end function
    pure function bp_optim_lr_c(opt) bind(C, name='bp_optim_lr') result(r)
      import :: c_double, c_ptr
      type(c_ptr), value :: opt
      real(c_double) :: r
    end function
    pure function bp_optim_steps_c(opt) bind(C, name='bp_optim_steps') result(r)
      import :: c_long, c_ptr
      type(c_ptr), value :: opt
      integer(c_long) :: r
    end function
    ! m and v: c_loc of the state arrays, or c_null_ptr where the rule needs none.
    function bp_soptim_update(config, n, p, g, m, v, t, lr) bind(C, name='bp_soptim_update') result(status)
      import :: c_int, c_long, c_size_t, c_float, c_double, c_ptr, bp_optim_config
      type(bp_optim_config), intent(in) :: config
      integer(c_size_t), value :: n
      real(c_float), intent(inout) :: p(n)
      real(c_float), intent(in) :: g(n)
      type(c_ptr), value :: m, v
      integer(c_long), value :: t
      real(c_double), value :: lr
      integer(c_int) :: status
    end function
    function bp_doptim_update(config, n, p, g, m, v, t, lr) bind(C, name='bp_doptim_update') result(status)
      import :: c_int, c_long, c_size_t, c_double, c_ptr, bp_optim_config
      type(bp_optim_config), intent(in) :: config
      integer(c_size_t), value :: n
      real(c_double), intent(inout) :: p(n)
      real(c_double), intent(in) :: g(n)
      type(c_ptr), value :: m, v
      integer(c_long), value :: t
      real(c_double), value :: lr
      integer(c_int) :: status
    end function

    ! backprop/train.h
    function bp_train_c(net, opt, n, X, ldx, targets, ldt, config) bind(C, name='bp_train') result(status)
      import :: c_int, c_ptr, bp_train_config
      type(c_ptr), value :: net, opt, X, targets
      integer(c_int), value :: n, ldx, ldt
      type(bp_train_config), intent(in) :: config
      integer(c_int) :: status
    end function
    function bp_lm_defaults() bind(C, name='bp_lm_defaults') result(config)
      import :: bp_lm_config
      type(bp_lm_config) :: config
    end function
    function bp_lm_fit_c(net, n, X, ldx, T, ldt, config, report) bind(C, name='bp_lm_fit') result(status)
      import :: c_int, c_ptr, bp_lm_config, bp_lm_report
      type(c_ptr), value :: net, X, T
      integer(c_int), value :: n, ldx, ldt
      type(bp_lm_config), intent(in) :: config
      type(bp_lm_report), intent(inout) :: report
      integer(c_int) :: status
    end function
    function bp_logreg_create_c(out, dtype, n_in, n_classes, alloc) bind(C, name='bp_logreg_create') result(status)
      import :: c_int, c_ptr
      type(c_ptr), intent(inout) :: out
      integer(c_int), value :: dtype, n_in, n_classes
      type(c_ptr), value :: alloc
      integer(c_int) :: status
    end function
    function bp_logreg_newton_c(net, n, X, ldx, labels, ridge, max_iter, tol, iters) &
        bind(C, name='bp_logreg_newton') result(status)
      import :: c_int, c_int32_t, c_double, c_ptr
      type(c_ptr), value :: net, X, iters
      integer(c_int), value :: n, ldx, max_iter
      integer(c_int32_t), intent(in) :: labels(*)
      real(c_double), value :: ridge, tol
      integer(c_int) :: status
    end function

    ! backprop/io.h. Paths: NUL-terminated, e.g. 'model.bpm' // c_null_char.
    function bp_idx_read_c(images_path, labels_path, dtype, scale, alloc, out) &
        bind(C, name='bp_idx_read') result(status)
      import :: c_int, c_char, c_ptr, bp_dataset
      character(kind=c_char), intent(in) :: images_path(*)
      type(c_ptr), value :: labels_path, alloc
      integer(c_int), value :: dtype, scale
      type(bp_dataset), intent(inout) :: out
      integer(c_int) :: status
    end function
    function bp_csv_read_c(path, dtype, header, label_col, alloc, out) bind(C, name='bp_csv_read') result(status)
      import :: c_int, c_char, c_ptr, bp_dataset
      character(kind=c_char), intent(in) :: path(*)
      integer(c_int), value :: dtype, header, label_col
      type(c_ptr), value :: alloc
      type(bp_dataset), intent(inout) :: out
      integer(c_int) :: status
    end function
    subroutine bp_dataset_free_c(d) bind(C, name='bp_dataset_free')
      import :: bp_dataset
      type(bp_dataset), intent(inout) :: d
    end subroutine
    function bp_dataset_standardize_c(fit, other, mean, std) bind(C, name='bp_dataset_standardize') result(status)
      import :: c_int, c_ptr, bp_dataset
      type(bp_dataset), intent(inout) :: fit
      type(c_ptr), value :: other, mean, std
      integer(c_int) :: status
    end function
    function bp_model_save_c(net, path) bind(C, name='bp_model_save') result(status)
      import :: c_int, c_char, c_ptr
      type(c_ptr), value :: net
      character(kind=c_char), intent(in) :: path(*)
      integer(c_int) :: status
    end function
    function bp_model_load_c(out, path, alloc) bind(C, name='bp_model_load') result(status)
      import :: c_int, c_char, c_ptr
      type(c_ptr), intent(inout) :: out
      character(kind=c_char), intent(in) :: path(*)
      type(c_ptr), value :: alloc
      integer(c_int) :: status
    end function

    function c_strlen(s) bind(C, name='strlen') result(n)
      import :: c_size_t, c_ptr
      type(c_ptr), value :: s
      integer(c_size_t) :: n
    end function
  end interface

  ! --------------------------------------------------------- wrappers: kernels
  ! Generic over real(c_float) / real(c_double); arguments in the order of
  ! the C functions where they are required, the rest optional by keyword.
  public :: bp_dense_forward, bp_dense_backward, bp_act_forward, bp_act_backward, bp_softmax_xent, &
      bp_softmax_xent_prob, bp_sigmoid_bce, bp_mse, bp_logreg_grad
  public :: bp_dense_forward_naive, bp_dense_backward_naive, bp_act_forward_naive, bp_act_backward_naive, &
      bp_softmax_xent_naive, bp_softmax_xent_prob_naive, bp_sigmoid_bce_naive, bp_mse_naive, &
      bp_logreg_grad_naive

  interface bp_dense_forward
    module procedure bp_sdense_forward_f, bp_ddense_forward_f
  end interface
  interface bp_dense_backward
    module procedure bp_sdense_backward_f, bp_ddense_backward_f
  end interface
  interface bp_act_forward
    module procedure bp_sact_forward_f, bp_dact_forward_f
  end interface
  interface bp_act_backward
    module procedure bp_sact_backward_f, bp_dact_backward_f
  end interface
  interface bp_softmax_xent
    module procedure bp_ssoftmax_xent_f, bp_dsoftmax_xent_f
  end interface
  interface bp_softmax_xent_prob
    module procedure bp_ssoftmax_xent_prob_f, bp_dsoftmax_xent_prob_f
  end interface
  interface bp_sigmoid_bce
    module procedure bp_ssigmoid_bce_f, bp_dsigmoid_bce_f
  end interface
  interface bp_mse
    module procedure bp_smse_f, bp_dmse_f
  end interface
  interface bp_logreg_grad
    module procedure bp_slogreg_grad_f, bp_dlogreg_grad_f
  end interface

  interface bp_dense_forward_naive
    module procedure bp_sdense_forward_naive_f, bp_ddense_forward_naive_f
  end interface
  interface bp_dense_backward_naive
    module procedure bp_sdense_backward_naive_f, bp_ddense_backward_naive_f
  end interface
  interface bp_act_forward_naive
    module procedure bp_sact_forward_naive_f, bp_dact_forward_naive_f
  end interface
  interface bp_act_backward_naive
    module procedure bp_sact_backward_naive_f, bp_dact_backward_naive_f
  end interface
  interface bp_softmax_xent_naive
    module procedure bp_ssoftmax_xent_naive_f, bp_dsoftmax_xent_naive_f
  end interface
  interface bp_softmax_xent_prob_naive
    module procedure bp_ssoftmax_xent_prob_naive_f, bp_dsoftmax_xent_prob_naive_f
  end interface
  interface bp_sigmoid_bce_naive
    module procedure bp_ssigmoid_bce_naive_f, bp_dsigmoid_bce_naive_f
  end interface
  interface bp_mse_naive
    module procedure bp_smse_naive_f, bp_dmse_naive_f
  end interface
  interface bp_logreg_grad_naive
    module procedure bp_slogreg_grad_naive_f, bp_dlogreg_grad_naive_f
  end interface

  ! ------------------------------------------------- wrappers: everything else
  public :: bp_strerror, bp_last_error, bp_version
  public :: bp_net_create, bp_net_destroy, bp_net_init, bp_net_dtype, bp_net_n_layers, bp_net_n_in, &
      bp_net_n_out, bp_net_loss, bp_net_n_params, bp_net_params, bp_net_grads, bp_net_layer, &
      bp_net_weights, bp_net_weight_grads, bp_net_plan, bp_net_describe_plan, bp_net_set_backend, &
      bp_net_set_threads, bp_net_threads, bp_net_set_chunk_min, &
      bp_net_set_check_finite, bp_net_forward, bp_net_loss_and_grad, &
      bp_net_accuracy, bp_net_rmse, bp_net_gradcheck, bp_net_predict_proba, bp_net_predict_class, &
      bp_net_eval_loss, bp_net_set_standardization, bp_net_fit_standardization, bp_net_has_standardization, &
      bp_net_standardization, bp_net_backward, bp_net_loss_and_grad_dx, bp_net_jacobian_inputs, &
      bp_net_jacobian_params, bp_net_sample_losses
  public :: bp_optim_create, bp_optim_destroy, bp_optim_step, bp_optim_train_step, bp_optim_lr, bp_optim_steps, &
      bp_optim_update
  public :: bp_train, bp_logreg_create, bp_logreg_newton, bp_lm_fit
  public :: bp_idx_read, bp_csv_read, bp_dataset_free, bp_dataset_standardize, bp_dataset_features, &
      bp_dataset_labels, bp_model_save, bp_model_load

  interface bp_net_init
    module procedure net_init_i32, net_init_i64
  end interface
  interface bp_net_params
    module procedure bp_snet_params_f, bp_dnet_params_f
  end interface
  interface bp_net_grads
    module procedure bp_snet_grads_f, bp_dnet_grads_f
  end interface
  interface bp_net_weights
    module procedure bp_snet_weights_f, bp_dnet_weights_f
  end interface
  interface bp_net_weight_grads
    module procedure bp_snet_weight_grads_f, bp_dnet_weight_grads_f
  end interface
  interface bp_net_forward
    module procedure bp_snet_forward_f, bp_dnet_forward_f
  end interface
  interface bp_net_loss_and_grad
    module procedure bp_snet_loss_and_grad_labels_f, bp_dnet_loss_and_grad_labels_f, &
        bp_snet_loss_and_grad_targets_f, bp_dnet_loss_and_grad_targets_f
  end interface
  interface bp_optim_train_step
    module procedure bp_soptim_train_step_labels_f, bp_doptim_train_step_labels_f, &
        bp_soptim_train_step_targets_f, bp_doptim_train_step_targets_f
  end interface
  interface bp_net_accuracy
    module procedure bp_snet_accuracy_f, bp_dnet_accuracy_f
  end interface
  interface bp_net_rmse
    module procedure bp_snet_rmse_f, bp_dnet_rmse_f
  end interface
  interface bp_net_gradcheck
    module procedure bp_snet_gradcheck_labels_f, bp_dnet_gradcheck_labels_f, &
        bp_snet_gradcheck_targets_f, bp_dnet_gradcheck_targets_f
  end interface
  interface bp_net_predict_proba
    module procedure bp_snet_predict_proba_f, bp_dnet_predict_proba_f
  end interface
  interface bp_net_predict_class
    module procedure bp_snet_predict_class_f, bp_dnet_predict_class_f
  end interface
  interface bp_net_eval_loss
    module procedure bp_snet_eval_loss_labels_f, bp_dnet_eval_loss_labels_f, &
        bp_snet_eval_loss_targets_f, bp_dnet_eval_loss_targets_f
  end interface
  interface bp_net_sample_losses
    module procedure bp_snet_sample_losses_labels_f, bp_dnet_sample_losses_labels_f, &
        bp_snet_sample_losses_targets_f, bp_dnet_sample_losses_targets_f
  end interface
  interface bp_net_backward
    module procedure bp_snet_backward_f, bp_dnet_backward_f
  end interface
  interface bp_net_loss_and_grad_dx
    module procedure bp_snet_loss_and_grad_dx_labels_f, bp_dnet_loss_and_grad_dx_labels_f, &
        bp_snet_loss_and_grad_dx_targets_f, bp_dnet_loss_and_grad_dx_targets_f
  end interface
  interface bp_net_jacobian_inputs
    module procedure bp_snet_jacobian_inputs_f, bp_dnet_jacobian_inputs_f
  end interface
  interface bp_net_jacobian_params
    module procedure bp_snet_jacobian_params_f, bp_dnet_jacobian_params_f
  end interface
  interface bp_net_fit_standardization
    module procedure bp_snet_fit_standardization_f, bp_dnet_fit_standardization_f
  end interface
  interface bp_optim_update
    module procedure bp_soptim_update_f, bp_doptim_update_f
  end interface
  interface bp_train
    module procedure bp_strain_labels_f, bp_dtrain_labels_f, bp_strain_targets_f, bp_dtrain_targets_f
  end interface
  interface bp_lm_fit
    module procedure bp_slm_fit_f, bp_dlm_fit_f
  end interface
  interface bp_logreg_newton
    module procedure bp_slogreg_newton_f, bp_dlogreg_newton_f
  end interface
  interface bp_dataset_features
    module procedure bp_sdataset_features_f, bp_ddataset_features_f
  end interface

  ! ------------------------------------------------------------------- state
  ! The last error a wrapper raised by its own checks (shapes, kinds, strides),
  ! and the library's message at that moment: bp_last_error returns f_msg
  ! while the library's message is unchanged, i.e. until the C library
  ! reports a newer error (through a bind(C) call; the wrappers clear f_valid
  ! themselves). A newer C error with exactly the old text goes unnoticed.
  ! Per thread under OpenMP, as the C library's message is per thread.
  character(len=1024) :: f_msg = ''
  character(len=1024) :: f_snapshot = ''
  logical :: f_valid = .false.
  !$omp threadprivate(f_msg, f_snapshot, f_valid)

  ! What a zero-size array's view points at; never read or written.
  real(c_float), target, save :: empty_s(1) = 0
  real(c_double), target, save :: empty_d(1) = 0

contains

  ! ============================================================ error handling

  ! A C string as a Fortran string ('' for NULL).
  function c_string(p) result(s)
    type(c_ptr), intent(in) :: p
    character(len=:), allocatable :: s
    character(kind=c_char), pointer :: chars(:)
    integer :: i, n
    if (.not. c_associated(p)) then
      s = ''
      return
    end if
    n = int(c_strlen(p))
    call c_f_pointer(p, chars, [n])
    allocate (character(len=n) :: s)
    do i = 1, n
      s(i:i) = chars(i)
    end do
  end function

  ! A static English sentence for a status ("unknown status" for others).
  function bp_strerror(status) result(s)
    integer(c_int), intent(in) :: status
    character(len=:), allocatable :: s
    s = c_string(bp_strerror_c(status))
  end function

  ! "MAJOR.MINOR.PATCH" of the library linked.
  function bp_version() result(s)
    character(len=:), allocatable :: s
    s = c_string(bp_version_c())
  end function

  ! The message of the last error in the calling thread, raised by the library
  ! or by a wrapper's own check, e.g. "bp_dense_forward: size(Y) is (3, 5),
  ! expected (2, 5)". Read it only after a status other than BP_OK.
  function bp_last_error() result(s)
    character(len=:), allocatable :: s
    s = c_string(bp_last_error_c())
    if (f_valid) then
      if (s == trim(f_snapshot)) s = trim(f_msg)
    end if
  end function

  ! An error found by a wrapper: msg is the whole message, starting with fn.
  subroutine raise(status, msg, stat)
    integer(c_int), intent(in) :: status
    character(len=*), intent(in) :: msg
    integer(c_int), intent(out), optional :: stat
    f_msg = msg
    f_snapshot = c_string(bp_last_error_c())
    f_valid = .true.
    call deliver(status, msg, stat)
  end subroutine

  ! A wrapper refused a data-parallel network's gradient pass (train = .false.) or bp_train
  ! (.true.) by its own checks, on this rank only (stat present: the error is already
  ! delivered): with a reducer (backprop/parallel.h), the C call is made with arguments C
  ! refuses, so that the other ranks learn it and fail instead of waiting for this one. The
  ! wrapper's message stays this rank's last error.
  subroutine tell_ranks(net, train)
    type(bp_net), intent(in) :: net
    logical, intent(in) :: train
    type(bp_train_config) :: config
    integer(c_int) :: st
    if (.not. c_associated(net%ptr)) return
    if (bp_net_has_reducer_c(net%ptr) == 0) return
    if (train) then
      st = bp_train_c(net%ptr, c_null_ptr, -1_c_int, c_null_ptr, 1_c_int, c_null_ptr, 1_c_int, config)
    else
      st = bp_net_loss_and_grad_c(net%ptr, -1_c_int, c_null_ptr, 1_c_int, c_null_ptr, 1_c_int, c_null_ptr)
    end if
    if (f_valid) f_snapshot = c_string(bp_last_error_c())
  end subroutine

  ! The status a C function returned: BP_OK into stat, or the library's error.
  subroutine finish(status, stat)
    integer(c_int), intent(in) :: status
    integer(c_int), intent(out), optional :: stat
    if (status == BP_OK) then
      if (present(stat)) stat = BP_OK
      return
    end if
    f_valid = .false.
    call deliver(status, c_string(bp_last_error_c()), stat)
  end subroutine

  ! ======================================================= shapes and strides
  ! (The checks the module backprop_mpi uses too are in helpers.inc.f90.)

  integer(c_int) function opt_layout(layout)
    integer(c_int), intent(in), optional :: layout
    opt_layout = BP_COL_MAJOR
    if (present(layout)) opt_layout = layout
  end function

  ! The widths of a weight matrix W (or dW) given as a Fortran array of
  ! shape (s1, s2): W(n_out, n_in) with BP_COL_MAJOR, Wt(n_in, n_out) with
  ! BP_ROW_MAJOR. n_in is known from X; n_out is read off W.
  logical function weight_dims(fn, name, layout, s, n_in, n_out, stat) result(ok)
    character(len=*), intent(in) :: fn, name
    integer(c_int), intent(in) :: layout, n_in
    integer, intent(in) :: s(2)
    integer(c_int), intent(out) :: n_out
    integer(c_int), intent(out), optional :: stat
    ok = .false.
    n_out = 0
    if (layout == BP_COL_MAJOR) then
      n_out = int(s(1), c_int)
      ok = s(2) == n_in
      if (.not. ok) call raise(BP_ERR_ARG, fn // ': size(' // name // ', 2) is ' // str(s(2)) // &
          ', expected n_in = ' // str(n_in) // ' (BP_COL_MAJOR: ' // name // '(n_out, n_in))', stat)
    else if (layout == BP_ROW_MAJOR) then
      n_out = int(s(2), c_int)
      ok = s(1) == n_in
      if (.not. ok) call raise(BP_ERR_ARG, fn // ': size(' // name // ', 1) is ' // str(s(1)) // &
          ', expected n_in = ' // str(n_in) // ' (BP_ROW_MAJOR: ' // name // 't(n_in, n_out))', stat)
    else
      call raise(BP_ERR_ARG, fn // ': layout (' // str(layout) // &
          ') is neither BP_ROW_MAJOR (101) nor BP_COL_MAJOR (102)', stat)
    end if
  end function

  ! A file name as a NUL-terminated C string: trailing blanks are ignored, as
  ! by OPEN's FILE=, and a NUL inside the name is an error.
  logical function c_path(fn, name, path, cpath, stat) result(ok)
    character(len=*), intent(in) :: fn, name, path
    character(kind=c_char), allocatable, target, intent(out) :: cpath(:)
    integer(c_int), intent(out), optional :: stat
    integer :: i, n
    n = len_trim(path)
    allocate (cpath(n + 1))
    do i = 1, n
      cpath(i) = path(i:i)
    end do
    cpath(n + 1) = c_null_char
    ok = index(path(1:n), c_null_char) == 0
    if (.not. ok) call raise(BP_ERR_ARG, fn // ': ' // name // ' contains a NUL character', stat)
  end function

  ! ===================================================================== net

  ! Creates a network of dtype BP_F32 or BP_F64 with n_in inputs and the given
  ! layers (bp_layer_spec(n_out, act[, alpha])) and loss; parameters are zero
  ! until bp_net_init. On error net is untouched.
  subroutine bp_net_create(net, dtype, n_in, layers, loss, stat)
    type(bp_net), intent(inout) :: net
    integer(c_int), intent(in) :: dtype, n_in, loss
    type(bp_layer_spec), intent(in) :: layers(:)
    integer(c_int), intent(out), optional :: stat
    type(c_ptr) :: p
    integer(c_int) :: st
    p = c_null_ptr
    st = bp_net_create_c(p, dtype, n_in, int(size(layers), c_int), layers, loss, c_null_ptr)
    if (st == BP_OK) net%ptr = p
    call finish(st, stat)
  end subroutine

  ! Frees the network (a null handle is a no-op) and nulls the handle.
  subroutine bp_net_destroy(net)
    type(bp_net), intent(inout) :: net
    call bp_net_destroy_c(net%ptr)
    net%ptr = c_null_ptr
  end subroutine

  ! Initialises the weights by `scheme` from `seed` (a negative seed is taken
  ! modulo 2**64, as C's uint64_t), biases to zero; gain (default 1) scales
  ! BP_INIT_ORTHOGONAL.
  subroutine net_init_i64(net, scheme, seed, gain, stat)
    type(bp_net), intent(in) :: net
    integer(c_int), intent(in) :: scheme
    integer(c_int64_t), intent(in) :: seed
    real(c_double), intent(in), optional :: gain
    integer(c_int), intent(out), optional :: stat
    real(c_double) :: g
    g = 1
    if (present(gain)) g = gain
    call finish(bp_net_init_c(net%ptr, scheme, seed, g), stat)
  end subroutine

  subroutine net_init_i32(net, scheme, seed, gain, stat)
    type(bp_net), intent(in) :: net
    integer(c_int), intent(in) :: scheme
    integer(c_int32_t), intent(in) :: seed
    real(c_double), intent(in), optional :: gain
    integer(c_int), intent(out), optional :: stat
    call net_init_i64(net, scheme, int(seed, c_int64_t), gain, stat)
  end subroutine

  ! Queries; a null handle gives 0. Pure, like the getters they call.
  pure integer(c_int) function bp_net_dtype(net)
    type(bp_net), intent(in) :: net
    bp_net_dtype = bp_net_dtype_c(net%ptr)
  end function
  pure integer(c_int) function bp_net_n_layers(net)
    type(bp_net), intent(in) :: net
    bp_net_n_layers = bp_net_n_layers_c(net%ptr)
  end function
  pure integer(c_int) function bp_net_n_in(net)
    type(bp_net), intent(in) :: net
    bp_net_n_in = bp_net_n_in_c(net%ptr)
  end function
  pure integer(c_int) function bp_net_n_out(net)
    type(bp_net), intent(in) :: net
    bp_net_n_out = bp_net_n_out_c(net%ptr)
  end function
  pure integer(c_int) function bp_net_loss(net)
    type(bp_net), intent(in) :: net
    bp_net_loss = bp_net_loss_c(net%ptr)
  end function
  pure integer(c_size_t) function bp_net_n_params(net)
    type(bp_net), intent(in) :: net
    bp_net_n_params = bp_net_n_params_c(net%ptr)
  end function

  ! Layer i (0-based, as in C): its sizes, activation and C pointers.
  subroutine bp_net_layer(net, i, view, stat)
    type(bp_net), intent(in) :: net
    integer(c_int), intent(in) :: i
    type(bp_layer_view), intent(inout) :: view
    integer(c_int), intent(out), optional :: stat
    call finish(bp_net_layer_c(net%ptr, i, view), stat)
  end subroutine

  subroutine bp_net_plan(net, max_micro_batch, stat)
    type(bp_net), intent(in) :: net
    integer(c_int), intent(in) :: max_micro_batch
    integer(c_int), intent(out), optional :: stat
    call finish(bp_net_plan_c(net%ptr, max_micro_batch), stat)
  end subroutine

  ! The plan's description (steps, buffers, sizes), lines separated by new_line('a').
  subroutine bp_net_describe_plan(net, text, stat)
    type(bp_net), intent(in) :: net
    character(len=:), allocatable, intent(out) :: text
    integer(c_int), intent(out), optional :: stat
    character(kind=c_char), allocatable, target :: buf(:)
    integer(c_size_t) :: needed
    integer(c_int) :: st
    text = ''
    needed = 0
    st = bp_net_describe_plan_c(net%ptr, c_null_ptr, 0_c_size_t, needed)
    if (st == BP_OK) then
      allocate (buf(needed + 1))
      st = bp_net_describe_plan_c(net%ptr, c_loc(buf(1)), needed + 1, needed)
    end if
    if (st == BP_OK) text = c_string(c_loc(buf(1)))   ! C terminates it
    call finish(st, stat)
  end subroutine

  subroutine bp_net_set_backend(net, backend, stat)
    type(bp_net), intent(in) :: net
    integer(c_int), intent(in) :: backend
    integer(c_int), intent(out), optional :: stat
    call finish(bp_net_set_backend_c(net%ptr, backend), stat)
  end subroutine

  ! The network's threads (0: the default, one per processor of the affinity mask; 1: the
  ! calling thread alone). See backprop/net.h for the thread policy, including what it does
  ! to OpenBLAS's process-wide thread count while a call runs.
  subroutine bp_net_set_threads(net, n_threads, stat)
    type(bp_net), intent(in) :: net
    integer(c_int), intent(in) :: n_threads
    integer(c_int), intent(out), optional :: stat
    call finish(bp_net_set_threads_c(net%ptr, n_threads), stat)
  end subroutine

  pure integer(c_int) function bp_net_threads(net)
    type(bp_net), intent(in) :: net
    bp_net_threads = bp_net_threads_c(net%ptr)
  end function

  ! The least work a chunk of a step keeps before a step is cut (0: the defaults; see
  ! backprop/net.h).
  subroutine bp_net_set_chunk_min(net, min_macs, min_values, stat)
    type(bp_net), intent(in) :: net
    integer(c_long), intent(in) :: min_macs, min_values
    integer(c_int), intent(out), optional :: stat
    call finish(bp_net_set_chunk_min_c(net%ptr, min_macs, min_values), stat)
  end subroutine

  subroutine bp_net_set_check_finite(net, on, stat)
    type(bp_net), intent(in) :: net
    logical, intent(in) :: on
    integer(c_int), intent(out), optional :: stat
    call finish(bp_net_set_check_finite_c(net%ptr, merge(1_c_int, 0_c_int, on)), stat)
  end subroutine

  ! =================================================================== optim

  ! An optimizer for net, from a config made by bp_optim_defaults(kind, lr).
  subroutine bp_optim_create(opt, net, config, stat)
    type(bp_optim), intent(inout) :: opt
    type(bp_net), intent(in) :: net
    type(bp_optim_config), intent(in) :: config
    integer(c_int), intent(out), optional :: stat
    type(c_ptr) :: p
    integer(c_int) :: st
    p = c_null_ptr
    st = bp_optim_create_c(p, net%ptr, config)
    if (st == BP_OK) opt%ptr = p
    call finish(st, stat)
  end subroutine

  subroutine bp_optim_destroy(opt)
    type(bp_optim), intent(inout) :: opt
    call bp_optim_destroy_c(opt%ptr)
    opt%ptr = c_null_ptr
  end subroutine

  ! The C call of a pass over a checked batch: loss_and_grad, or with opt a
  ! training step (bp_optim_train_step); loss (optional) receives the mean loss.
  subroutine run_pass(net, bt, loss, stat, opt)
    type(bp_net), intent(in) :: net
    type(checked_batch), intent(in) :: bt
    real(c_double), intent(inout), target, optional :: loss
    integer(c_int), intent(out), optional :: stat
    type(bp_optim), intent(in), optional :: opt
    type(c_ptr) :: pl
    pl = c_null_ptr
    if (present(loss)) pl = c_loc(loss)
    if (present(opt)) then
      call finish(bp_optim_train_step_c(opt%ptr, net%ptr, bt%n, bt%px, bt%ldx, bt%pt, bt%ldt, pl), stat)
    else
      call finish(bp_net_loss_and_grad_c(net%ptr, bt%n, bt%px, bt%ldx, bt%pt, bt%ldt, pl), stat)
    end if
  end subroutine

  ! The C call of bp_net_gradcheck over a checked batch.
  subroutine run_gradcheck(net, bt, max_rel_err, h, worst, stat)
    type(bp_net), intent(in) :: net
    type(checked_batch), intent(in) :: bt
    real(c_double), intent(inout) :: max_rel_err
    real(c_double), intent(in), optional :: h
    integer(c_size_t), intent(inout), target, optional :: worst
    integer(c_int), intent(out), optional :: stat
    real(c_double) :: hh
    type(c_ptr) :: pw
    hh = 0
    if (present(h)) hh = h
    pw = c_null_ptr
    if (present(worst)) pw = c_loc(worst)
    call finish(bp_net_gradcheck_c(net%ptr, bt%n, bt%px, bt%ldx, bt%pt, bt%ldt, hh, max_rel_err, pw), stat)
  end subroutine

  ! The C call of bp_net_sample_losses over a checked batch, once losses(n) passes its check.
  subroutine run_sample_losses(net, bt, losses, stat)
    type(bp_net), intent(in) :: net
    type(checked_batch), intent(in) :: bt
    real(c_double), intent(inout) :: losses(:)
    integer(c_int), intent(out), optional :: stat
    if (.not. size_is('bp_net_sample_losses', 'losses', size(losses), int(bt%n), stat)) return
    call finish(bp_net_sample_losses_c(net%ptr, bt%n, bt%px, bt%ldx, bt%pt, bt%ldt, losses), stat)
  end subroutine

  ! One update of net's parameters from its gradient buffer.
  subroutine bp_optim_step(opt, net, stat)
    type(bp_optim), intent(in) :: opt
    type(bp_net), intent(in) :: net
    integer(c_int), intent(out), optional :: stat
    call finish(bp_optim_step_c(opt%ptr, net%ptr), stat)
  end subroutine

  pure real(c_double) function bp_optim_lr(opt)
    type(bp_optim), intent(in) :: opt
    bp_optim_lr = bp_optim_lr_c(opt%ptr)
  end function

  pure integer(c_long) function bp_optim_steps(opt)
    type(bp_optim), intent(in) :: opt
    bp_optim_steps = bp_optim_steps_c(opt%ptr)
  end function

  ! ================================================================ training

  ! What bp_train's C callbacks call: the Fortran procedures held in ctx.
  function epoch_trampoline(report, ctx) bind(C, name='') result(r)
    type(bp_epoch_report), intent(in) :: report
    type(c_ptr), value :: ctx
    integer(c_int) :: r
    type(train_callbacks), pointer :: cb
    call c_f_pointer(ctx, cb)
    r = 0
    if (cb%on_epoch(report)) r = 1
  end function

  subroutine batch_trampoline(epoch, batch, n_batches, loss, ctx) bind(C, name='')
    integer(c_long), value :: epoch, batch, n_batches
    real(c_double), value :: loss
    type(c_ptr), value :: ctx
    type(train_callbacks), pointer :: cb
    call c_f_pointer(ctx, cb)
    call cb%on_batch(epoch, batch, n_batches, loss)
  end subroutine

  ! The C call of the wrapper bp_train over a checked batch: its keywords as
  ! the C configuration, the Fortran callbacks reached through the trampolines.
  subroutine run_train(net, opt, bt, epochs, batch_size, seed, shuffle, on_epoch, on_batch, stat)
    type(bp_net), intent(in) :: net
    type(bp_optim), intent(in) :: opt
    type(checked_batch), intent(in) :: bt
    integer, intent(in) :: epochs, batch_size
    integer, intent(in), optional :: seed
    logical, intent(in), optional :: shuffle
    procedure(bp_epoch_callback), optional :: on_epoch
    procedure(bp_batch_callback), optional :: on_batch
    integer(c_int), intent(out), optional :: stat
    type(train_callbacks), target :: cb
    type(bp_train_config) :: config
    config%epochs = int(epochs, c_long)
    config%batch_size = int(batch_size, c_int)
    config%seed = 0
    if (present(seed)) config%seed = int(seed, c_int64_t)
    config%shuffle = 1
    if (present(shuffle)) config%shuffle = merge(1_c_int, 0_c_int, shuffle)
    if (present(on_epoch)) then
      cb%on_epoch => on_epoch
      config%on_epoch = c_funloc(epoch_trampoline)
    end if
    if (present(on_batch)) then
      cb%on_batch => on_batch
      config%on_batch = c_funloc(batch_trampoline)
    end if
    config%ctx = c_loc(cb)
    call finish(bp_train_c(net%ptr, opt%ptr, bt%n, bt%px, bt%ldx, bt%pt, bt%ldt, config), stat)
  end subroutine

  ! The network's input standardisation x' = (x - mean) / std (net.h): mean(n_in)
  ! and std(n_in); with neither present, it is removed.
  subroutine bp_net_set_standardization(net, mean, std, stat)
    type(bp_net), intent(in) :: net
    real(c_double), intent(in), target, optional :: mean(:), std(:)
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_net_set_standardization'
    real(c_double), pointer, contiguous :: vm(:), vs(:)
    type(c_ptr) :: pm, ps
    pm = c_null_ptr
    ps = c_null_ptr
    if (present(mean) .neqv. present(std)) then
      call raise(BP_ERR_ARG, fn // ': mean and std must both be present or both absent', stat)
      return
    end if
    if (present(mean) .and. c_associated(net%ptr)) then
      if (.not. size_is(fn, 'mean', size(mean), int(bp_net_n_in_c(net%ptr)), stat)) return
      if (.not. size_is(fn, 'std', size(std), int(bp_net_n_in_c(net%ptr)), stat)) return
      if (.not. vec_d(fn, 'mean', mean, vm, stat)) return
      if (.not. vec_d(fn, 'std', std, vs, stat)) return
      pm = c_loc(vm(1))
      ps = c_loc(vs(1))
    end if
    call finish(bp_net_set_standardization_c(net%ptr, pm, ps), stat)
  end subroutine

  logical function bp_net_has_standardization(net)
    type(bp_net), intent(in) :: net
    bp_net_has_standardization = bp_net_has_standardization_c(net%ptr) /= 0
  end function

  ! Copies the standardisation into mean(n_in) and std(n_in) (untouched on error: the
  ! library writes them only when the network has one).
  subroutine bp_net_standardization(net, mean, std, stat)
    type(bp_net), intent(in) :: net
    real(c_double), intent(inout) :: mean(:), std(:)
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_net_standardization'
    if (c_associated(net%ptr)) then
      if (.not. size_is(fn, 'mean', size(mean), int(bp_net_n_in_c(net%ptr)), stat)) return
      if (.not. size_is(fn, 'std', size(std), int(bp_net_n_in_c(net%ptr)), stat)) return
    end if
    call finish(bp_net_standardization_c(net%ptr, mean, std), stat)
  end subroutine

  ! Multinomial logistic regression: one identity layer, softmax cross-entropy.
  subroutine bp_logreg_create(net, dtype, n_in, n_classes, stat)
    type(bp_net), intent(inout) :: net
    integer(c_int), intent(in) :: dtype, n_in, n_classes
    integer(c_int), intent(out), optional :: stat
    type(c_ptr) :: p
    integer(c_int) :: st
    p = c_null_ptr
    st = bp_logreg_create_c(p, dtype, n_in, n_classes, c_null_ptr)
    if (st == BP_OK) net%ptr = p
    call finish(st, stat)
  end subroutine

  ! ===================================================================== I/O

  ! Reads an IDX image file (and, with labels_path, its label file), plain or
  ! gzip-compressed, into data; scale BP_SCALE_UNIT divides by 255.
  subroutine bp_idx_read(data, images_path, dtype, scale, labels_path, stat)
    type(bp_dataset), intent(inout) :: data
    character(len=*), intent(in) :: images_path
    integer(c_int), intent(in) :: dtype, scale
    character(len=*), intent(in), optional :: labels_path
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_idx_read'
    character(kind=c_char), allocatable, target :: ci(:), cl(:)
    type(c_ptr) :: pl
    if (.not. c_path(fn, 'images_path', images_path, ci, stat)) return
    pl = c_null_ptr
    if (present(labels_path)) then
      if (.not. c_path(fn, 'labels_path', labels_path, cl, stat)) return
      pl = c_loc(cl(1))
    end if
    call finish(bp_idx_read_c(ci, pl, dtype, scale, c_null_ptr, data), stat)
  end subroutine

  ! Reads a numeric CSV file. header: 1 skip the first line, 0 it is data,
  ! -1 detect (the default). label_col: the 0-based column of an integer class
  ! label, or -1 (the default) for none.
  subroutine bp_csv_read(data, path, dtype, header, label_col, stat)
    type(bp_dataset), intent(inout) :: data
    character(len=*), intent(in) :: path
    integer(c_int), intent(in) :: dtype
    integer(c_int), intent(in), optional :: header, label_col
    integer(c_int), intent(out), optional :: stat
    character(kind=c_char), allocatable, target :: cp(:)
    integer(c_int) :: h, lc
    if (.not. c_path('bp_csv_read', 'path', path, cp, stat)) return
    h = -1
    if (present(header)) h = header
    lc = -1
    if (present(label_col)) lc = label_col
    call finish(bp_csv_read_c(cp, dtype, h, lc, c_null_ptr, data), stat)
  end subroutine

  subroutine bp_dataset_free(data)
    type(bp_dataset), intent(inout) :: data
    call bp_dataset_free_c(data)
  end subroutine

  ! Standardises the features of fit (and other) with fit's statistics;
  ! mean and std (n_features each) may receive them.
  subroutine bp_dataset_standardize(fit, other, mean, std, stat)
    type(bp_dataset), intent(inout) :: fit
    type(bp_dataset), intent(inout), target, optional :: other
    real(c_double), intent(inout), target, optional :: mean(:), std(:)
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: fn = 'bp_dataset_standardize'
    type(c_ptr) :: po, pm, ps
    po = c_null_ptr
    if (present(other)) po = c_loc(other)
    if (.not. opt_vec_d(fn, 'mean', mean, int(fit%n_features), pm, stat)) return
    if (.not. opt_vec_d(fn, 'std', std, int(fit%n_features), ps, stat)) return
    call finish(bp_dataset_standardize_c(fit, po, pm, ps), stat)
  end subroutine

  ! The labels of a data set (0-based class indices), in place.
  subroutine bp_dataset_labels(data, labels, stat)
    type(bp_dataset), intent(in) :: data
    integer(c_int32_t), pointer, intent(out) :: labels(:)
    integer(c_int), intent(out), optional :: stat
    labels => null()
    if (.not. c_associated(data%labels)) then
      call raise(BP_ERR_ARG, 'bp_dataset_labels: the data set has no labels', stat)
      return
    end if
    call c_f_pointer(data%labels, labels, [data%n])
    if (present(stat)) stat = BP_OK
  end subroutine

  ! Saves the network's architecture and parameters, atomically.
  subroutine bp_model_save(net, path, stat)
    type(bp_net), intent(in) :: net
    character(len=*), intent(in) :: path
    integer(c_int), intent(out), optional :: stat
    character(kind=c_char), allocatable, target :: cp(:)
    if (.not. c_path('bp_model_save', 'path', path, cp, stat)) return
    call finish(bp_model_save_c(net%ptr, cp), stat)
  end subroutine

  ! Loads a model file into a new (unplanned) network; on error net is untouched.
  subroutine bp_model_load(net, path, stat)
    type(bp_net), intent(inout) :: net
    character(len=*), intent(in) :: path
    integer(c_int), intent(out), optional :: stat
    character(kind=c_char), allocatable, target :: cp(:)
    type(c_ptr) :: p
    integer(c_int) :: st
    if (.not. c_path('bp_model_load', 'path', path, cp, stat)) return
    p = c_null_ptr
    st = bp_model_load_c(p, cp, c_null_ptr)
    if (st == BP_OK) net%ptr = p
    call finish(st, stat)
  end subroutine

  ! ====================================== shared with the module backprop_mpi
  ! deliver, str and the checks of array arguments (helpers.inc.f90), and the
  ! views of real matrices, mat_s / mat_d and ptr_s / ptr_d (views.tmpl.f90).
  include 'helpers.inc'
  include 'views_s.inc'
  include 'views_d.inc'

  ! ============================================ per precision, from templates
  include 'kernels_wrap_s.inc'
  include 'kernels_wrap_d.inc'
  include 'kernels_wrap_s_naive.inc'
  include 'kernels_wrap_d_naive.inc'
  include 'typed_s.inc'
  include 'typed_d.inc'

end module backprop
