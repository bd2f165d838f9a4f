! SPDX-License-Identifier: MIT
! test_errors.f90: status codes and messages for bad arguments, wrong sizes and bad files; stopping without stat=.
program test_errors
  use, intrinsic :: iso_c_binding
  use, intrinsic :: ieee_arithmetic, only: ieee_value, ieee_positive_inf
  use backprop
  use bp_testing
  implicit none

  character(len=512) :: helper, dir
  real(c_double), target :: X(4, 6), W(3, 4), Wt_(4, 3), Wbad(3, 5), Y(3, 6), Ysave(3, 6), b(3), dW(3, 4)
  real(c_float), target :: Xf(4, 6), Yf(2, 6)
  integer(c_int32_t) :: labels(6)
  real(c_double) :: loss
  type(bp_net) :: net, none
  type(bp_optim) :: opt
  type(bp_dataset) :: data
  real(c_double), pointer :: params(:), Wt(:, :)
  integer(c_int) :: st
  integer :: u

  call get_command_argument(1, helper)
  call get_command_argument(2, dir)
  ! Run by hand without a directory, the files go to $TMPDIR (or /tmp), never into the
  ! working directory, which may be the source tree.
  if (len_trim(dir) == 0) call get_environment_variable('TMPDIR', dir)
  if (len_trim(dir) == 0) dir = '/tmp'
  call fill(X, 1)
  call fill(W, 2)
  call fill(Y, 3)
  b = 0
  Ysave = Y

  ! --- kernels: wrong sizes, found by the wrappers ---
  call bp_dense_forward(X, Wbad, Y, BP_ACT_RELU, stat=st)
  call check(st == BP_ERR_ARG, 'W(3, 5) with X(4, n): BP_ERR_ARG')
  call expect(st, BP_ERR_ARG, 'bp_dense_forward: size(W, 2) is 5, expected n_in = 4 (BP_COL_MAJOR: W(n_out, n_in))', &
      'the message names the function and the array', exact=.true.)
  call check(same_bits(Y, Ysave), 'outputs untouched on error')
  call bp_dense_forward(X, W, Y(1:2, :), BP_ACT_RELU, stat=st)
  call expect(st, BP_ERR_ARG, 'shape(Y) is (2, 6), expected (3, 6)', 'wrong shape of Y')
  call bp_dense_forward(X, W, Y, BP_ACT_RELU, b=b(1:2), stat=st)
  call expect(st, BP_ERR_ARG, 'size(b) is 2, expected 3', 'wrong size of b')
  Wt_ = transpose(W)
  call bp_dense_forward(X, Wt_, Y, BP_ACT_RELU, layout=BP_ROW_MAJOR, stat=st)
  call check(st == BP_OK, 'the same W transposed (an array Wt(n_in, n_out)) with BP_ROW_MAJOR is right')
  call bp_dense_forward(X, W, Y, BP_ACT_RELU, layout=BP_ROW_MAJOR, stat=st)
  call expect(st, BP_ERR_ARG, 'BP_ROW_MAJOR: Wt(n_in, n_out)', 'W(n_out, n_in) passed as BP_ROW_MAJOR')
  call bp_dense_forward(X, W, Y, BP_ACT_RELU, layout=7_c_int, stat=st)
  call expect(st, BP_ERR_ARG, 'layout (7)', 'bad layout')
  call bp_dense_forward(X(1:4:2, :), W(:, 1:2), Y, BP_ACT_RELU, stat=st)
  call expect(st, BP_ERR_ARG, 'X has a stride other than 1', 'a first dimension with a stride is refused, not copied')
  call bp_dense_backward(X, W, Y, dW(:, 1:3), BP_ACT_IDENTITY, stat=st)
  call expect(st, BP_ERR_ARG, 'shape(dW) is (3, 3), expected (3, 4)', 'dW of the wrong shape')

  ! --- kernels: bad values, found by the C library ---
  Ysave = Y
  call bp_dense_forward(X, W, Y, 99_c_int, stat=st)
  call expect(st, BP_ERR_ARG, 'bp_ddense_forward: act (99) is not a bp_act', &
      'bad activation: C''s message', exact=.true.)
  call bp_dense_forward(X, W, Y, BP_ACT_ELU, alpha=-1d0, stat=st)
  call expect(st, BP_ERR_ARG, 'alpha (-1) <= 0 for BP_ACT_ELU', 'ELU with alpha < 0')
  call check(same_bits(Y, Ysave), 'outputs untouched after C errors')
  labels = [0, 1, 2, 3, 1, 0]
  call bp_softmax_xent(Y, labels, loss=loss, stat=st)
  call expect(st, BP_ERR_ARG, 'label', 'label 3 of 3 classes')
  call bp_softmax_xent(Y, labels(1:5), loss=loss, stat=st)
  call expect(st, BP_ERR_ARG, 'size(labels) is 5, expected 6', 'labels of the wrong size')
  call bp_mse(Y, Y, loss=loss, divisor=0d0, stat=st)
  call expect(st, BP_ERR_ARG, 'divisor', 'divisor 0')
  call bp_dense_forward(X, W, Y, BP_ACT_RELU, stat=st)
  call check(st == BP_OK, 'stat = BP_OK on success')

  ! Which message is last: a wrapper's, then a newer one from C through a bind(C) call.
  call bp_dense_forward(X, Wbad, Y, BP_ACT_RELU, stat=st)
  st = bp_ddense_forward(BP_COL_MAJOR, 6, 4, 3, X, 4, W, 2, c_null_ptr, BP_ACT_RELU, 0d0, c_null_ptr, 3, Y, 3)
  call expect(st, BP_ERR_ARG, 'bp_ddense_forward: ldw (2) < n_out (3)', &
      'bp_last_error after a bind(C) call reports C''s newer error')

  ! --- networks ---
  call bp_net_create(net, BP_F64, 0_c_int, [bp_layer_spec(3)], BP_LOSS_MSE, stat=st)
  call expect(st, BP_ERR_ARG, 'n_in', 'bp_net_create with n_in = 0', .not. c_associated(net%ptr))
  call bp_net_create(net, BP_F64, 4_c_int, [bp_layer_spec(3, BP_ACT_TANH), bp_layer_spec(2)], &
      BP_LOSS_SOFTMAX_XENT, stat=st)
  call check(st == BP_OK .and. c_associated(net%ptr), 'bp_net_create')
  call bp_net_forward(net, X, Y(1:2, :), stat=st)
  call expect(st, BP_ERR_ARG, 'plan', 'forward without a plan')
  call bp_net_plan(net, 0_c_int, stat=st)
  call expect(st, BP_ERR_ARG, 'bp_net_plan', 'plan of 0 samples')
  call bp_net_plan(net, 8_c_int)
  call bp_net_set_threads(net, -1_c_int, stat=st)
  call expect(st, BP_ERR_ARG, 'bp_net_set_threads', 'a negative thread count')
  call bp_net_set_threads(net, 2_c_int, stat=st)
  call check(st == BP_OK .and. bp_net_threads(net) == 2, 'bp_net_set_threads(2)')
  call bp_net_set_threads(net, 1_c_int)
  call bp_net_set_threads(net, 65_c_int, stat=st)
  call expect(st, BP_ERR_ARG, 'bp_net_set_threads', 'a thread count above 64')
  call bp_net_set_chunk_min(net, -1_c_long, 0_c_long, stat=st)
  call expect(st, BP_ERR_ARG, 'bp_net_set_chunk_min', 'a negative least work per chunk')
  call bp_net_set_chunk_min(net, 1_c_long, 1_c_long, stat=st)
  call check(st == BP_OK, 'bp_net_set_chunk_min(1, 1)')
  Xf = 0
  call bp_net_forward(net, Xf, Yf, stat=st)
  call expect(st, BP_ERR_ARG, 'real(c_float) but the network''s dtype is BP_F64', 'float arrays for a double network')
  call bp_net_forward(net, X(1:3, :), Y(1:2, :), stat=st)
  call expect(st, BP_ERR_ARG, 'size(X, 1) is 3, expected 4', 'X with too few features')
  call bp_net_forward(net, X, Y, stat=st)
  call expect(st, BP_ERR_ARG, 'shape(Y) is (3, 6), expected (2, 6)', 'Y with too many outputs')
  call bp_net_loss_and_grad(net, X, [0, 1, 2, 0, 1, 0], loss, stat=st)
  call expect(st, BP_ERR_ARG, 'label', 'label 2 of 2 classes')
  call bp_net_loss_and_grad(net, X, Y(1:2, :), loss, stat=st)
  call expect(st, BP_ERR_ARG, 'bp_net_loss_and_grad', 'real targets for a softmax network')
  call bp_net_weights(net, 2_c_int, Wt, stat=st)
  call expect(st, BP_ERR_ARG, 'i (2)', 'layer 2 of 2 (0-based)')
  call bp_net_set_check_finite(net, .true.)
  X(2, 3) = ieee_value(X(2, 3), ieee_positive_inf)
  call bp_net_loss_and_grad(net, X, [0, 1, 1, 0, 1, 0], loss, stat=st)
  call expect(st, BP_ERR_NONFINITE, 'bp_net_loss_and_grad', 'Inf in X with the finite check on')
  call fill(X, 1)
  call bp_net_gradcheck(net, X, [0, 1, 1, 0, 1, 0], loss, stat=st)
  call check(st == BP_OK, 'gradcheck on a double network')
  call bp_optim_create(opt, net, bp_optim_defaults(BP_OPT_ADAM, -1d0), stat=st)
  call expect(st, BP_ERR_ARG, 'lr', 'negative learning rate', .not. c_associated(opt%ptr))
  call bp_net_forward(none, X, Y(1:2, :), stat=st)
  call expect(st, BP_ERR_ARG, 'net is NULL', 'a handle never created')
  call bp_net_params(none, params, stat=st)
  call check(st == BP_ERR_ARG .and. .not. associated(params), 'bp_net_params of a null handle')

  ! --- files ---
  call bp_model_load(none, '/nonexistent/dir/model.bpm', stat=st)
  call expect(st, BP_ERR_IO, '/nonexistent/dir/model.bpm', &
      'loading a missing file: BP_ERR_IO naming it', .not. c_associated(none%ptr))
  call bp_model_save(net, '/nonexistent/dir/model.bpm', stat=st)
  call expect(st, BP_ERR_IO, '/nonexistent/dir', 'saving into a missing directory')
  call bp_model_save(net, 'model' // c_null_char // '.bpm', stat=st)
  call expect(st, BP_ERR_ARG, 'NUL', 'a NUL in a file name')
  open (newunit=u, file=trim(dir) // '/fortran_errors_garbage.bpm', status='replace', action='write')
  write (u, '(a)') 'this is not a model file, but it is long enough to have a header of sorts'
  close (u)
  call bp_model_load(none, trim(dir) // '/fortran_errors_garbage.bpm', stat=st)
  call expect(st, BP_ERR_FORMAT, 'fortran_errors_garbage.bpm', 'a file that is not a model: BP_ERR_FORMAT')
  call bp_model_save(net, trim(dir) // '/fortran_errors_ok.bpm   ', stat=st)
  call bp_model_load(none, trim(dir) // '/fortran_errors_ok.bpm', stat=st)
  call check(st == BP_OK, 'trailing blanks of a file name are ignored, as by OPEN')
  call bp_net_destroy(none)
  call bp_csv_read(data, '/nonexistent/data.csv', BP_F64, stat=st)
  call expect(st, BP_ERR_IO, '/nonexistent/data.csv', 'a missing CSV file')
  call bp_idx_read(data, '/nonexistent/images.idx', BP_F32, BP_SCALE_UNIT, labels_path='/nonexistent/labels.idx', &
      stat=st)
  call expect(st, BP_ERR_IO, '/nonexistent/', 'a missing IDX file')

  ! A CSV read back, in place as X(n_features, n).
  call csv_round_trip()

  ! --- without stat=, an error stops the program with the message ---
  call stops('shape', 'backprop: invalid argument: bp_dense_forward: size(W, 2) is 5, expected n_in = 4')
  call stops('act', 'backprop: invalid argument: bp_ddense_forward: act (99) is not a bp_act')
  call stops('file', 'backprop: input/output error: bp_model_load: ')

  call bp_net_destroy(net)
  call tests_done('errors')

contains

  ! The status is `want` and bp_last_error() contains `text` (or is it, with
  ! exact = .true.); `also` is a further condition.
  subroutine expect(st, want, text, what, also, exact)
    integer(c_int), intent(in) :: st, want
    character(len=*), intent(in) :: text, what
    logical, intent(in), optional :: also, exact
    character(len=:), allocatable :: msg
    logical :: ok
    msg = bp_last_error()
    ok = st == want
    if (present(exact)) then
      if (exact) ok = ok .and. msg == text
    end if
    ok = ok .and. index(msg, text) > 0
    if (present(also)) ok = ok .and. also
    call check(ok, what // ' [' // bp_strerror(st) // ': ' // msg // ']')
  end subroutine

  subroutine csv_round_trip()
    real(c_double), pointer :: F(:, :)
    integer(c_int32_t), pointer :: lab(:)
    character(len=:), allocatable :: path
    path = trim(dir) // '/fortran_errors.csv'
    open (newunit=u, file=path, status='replace', action='write')
    write (u, '(a)') 'a,b,label', '1.5,2,0', '-3,4.25,2', '5,6,1'
    close (u)
    call bp_csv_read(data, path, BP_F64, header=1_c_int, label_col=2_c_int, stat=st)
    call check(st == BP_OK .and. data%n == 3 .and. data%n_features == 2 .and. data%n_classes == 3, 'bp_csv_read')
    if (st /= BP_OK) return
    call bp_dataset_features(data, F)
    call bp_dataset_labels(data, lab)
    call check(all(shape(F) == [2, 3]), 'bp_dataset_features: X(n_features, n)')
    call check(rel_err(F, reshape([1.5d0, 2d0, -3d0, 4.25d0, 5d0, 6d0], [2, 3])) <= 0 .and. all(lab == [0, 2, 1]), &
        'the CSV rows are the columns of X')
    call bp_dataset_free(data)
    call check(.not. c_associated(data%X), 'bp_dataset_free')
  end subroutine

  ! Runs error_stop with `mode`: it must fail, and its output contain `expect`.
  subroutine stops(mode, expect)
    character(len=*), intent(in) :: mode, expect
    character(len=:), allocatable :: out
    character(len=1024) :: line
    integer :: es, cs, ios
    logical :: found
    out = trim(dir) // '/fortran_errors_stop_' // mode // '.txt'
    es = 0
    cs = 0
    call execute_command_line('"' // trim(helper) // '" ' // mode // ' > "' // out // '" 2>&1', &
        exitstat=es, cmdstat=cs)
    call check(cs == 0 .and. es /= 0, 'without stat=, a ' // mode // ' error stops the program')
    found = .false.
    open (newunit=u, file=out, status='old', action='read', iostat=ios)
    do while (ios == 0)
      read (u, '(a)', iostat=ios) line
      if (ios == 0) found = found .or. index(line, expect) > 0
    end do
    close (u)
    call check(found, 'the stop message: ' // expect)
  end subroutine
end program test_errors
