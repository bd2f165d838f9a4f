! SPDX-License-Identifier: MIT
! test_train.f90: networks trained from Fortran equal the same trainings written in C (cref.c), bit for bit.
module train_callbacks
  use, intrinsic :: iso_c_binding, only: c_long, c_double
  use backprop, only: bp_epoch_report
  implicit none
  integer :: epochs_seen = 0, batches_seen = 0, stop_after = huge(0)
  real(c_double) :: first_loss = -1, last_loss = -1
contains
  logical function on_epoch(report) result(stop_training)
    type(bp_epoch_report), intent(in) :: report
    epochs_seen = epochs_seen + 1
    if (epochs_seen == 1) first_loss = report%loss
    last_loss = report%loss
    stop_training = report%epoch >= stop_after
  end function
  subroutine on_batch(epoch, batch, n_batches, loss)
    integer(c_long), intent(in) :: epoch, batch, n_batches
    real(c_double), intent(in) :: loss
    if (epoch >= 1 .and. batch >= 0 .and. n_batches >= 1 .and. loss >= 0) batches_seen = batches_seen + 1
  end subroutine
end module train_callbacks

program test_train
  use, intrinsic :: iso_c_binding
  use backprop
  use bp_testing
  use train_callbacks
  implicit none

  interface
    function bpt_train_ref(which, path) bind(C) result(r)
      import :: c_int, c_char
      integer(c_int), value :: which
      character(kind=c_char), intent(in) :: path(*)
      integer(c_int) :: r
    end function
  end interface

  integer, parameter :: N = 96, D = 3
  real(c_float), target :: Xf(D, N)
  real(c_double), target :: Xd(D, N), T(2, N)
  integer(c_int32_t) :: labels(N)
  character(len=512) :: dir
  integer :: i, j

  call get_command_argument(1, dir)
  if (len_trim(dir) == 0) dir = '.'
  ! Sample i is column i: the memory of C's X[i][j].
  do i = 1, N
    do j = 1, D
      Xd(j, i) = data_x(i - 1, j - 1)
    end do
    labels(i) = data_label(i - 1)
    T(1, i) = data_target(i - 1, 0)
    T(2, i) = data_target(i - 1, 1)
  end do
  Xf = real(Xd, c_float)

  call classifier()
  call regression_loop()
  call regression_train()
  call fused_sgd()
  call early_stop()
  call logreg()
  call optim_kernel()
  call predict_standardized()
  call differentiable()
  call levenberg_marquardt()
  call tests_done('train')

contains

  function path(name)
    character(len=*), intent(in) :: name
    character(len=:), allocatable :: path
    path = trim(dir) // '/fortran_train_' // name // '.bpm'
  end function

  ! The parameters of the network C trained and saved as `name`.
  logical function same_as_c(net, which, name)
    type(bp_net), intent(in) :: net
    integer(c_int), intent(in) :: which
    character(len=*), intent(in) :: name
    type(bp_net) :: cnet
    real(c_float), pointer :: pf(:), cf(:)
    real(c_double), pointer :: pd(:), cd(:)
    integer(c_int) :: st
    same_as_c = .false.
    call check(bpt_train_ref(which, path(name) // c_null_char) == 0, 'C reference ' // name // ' trained')
    call bp_model_load(cnet, path(name), stat=st)
    call check(st == BP_OK, 'load the C reference ' // name)
    if (st /= BP_OK) return
    call check(bp_net_n_params(cnet) == bp_net_n_params(net) .and. bp_net_dtype(cnet) == bp_net_dtype(net), &
        'C reference ' // name // ' has the same architecture')
    if (bp_net_dtype(net) == BP_F32) then
      call bp_net_params(net, pf)
      call bp_net_params(cnet, cf)
      same_as_c = same_bits(pf, cf)
    else
      call bp_net_params(net, pd)
      call bp_net_params(cnet, cd)
      same_as_c = same_bits(pd, cd)
    end if
    call bp_net_destroy(cnet)
  end function

  ! 1 in cref.c: float, tanh hidden layer, softmax cross-entropy, Adam, bp_train with shuffling.
  subroutine classifier()
    type(bp_net) :: net, init
    type(bp_optim) :: opt
    real(c_float), pointer :: p(:), p0(:), Wt(:, :), b(:), Wt2(:, :), b2(:)
    real(c_float), target :: Y(3, N), H(8, N), Y2(3, N), Ys(3, N / 2)
    real(c_double) :: acc
    integer(c_int64_t) :: confusion(3, 3)
    character(len=:), allocatable :: plan
    integer(c_int) :: st

    call bp_net_create(net, BP_F32, D, [bp_layer_spec(8, BP_ACT_TANH), bp_layer_spec(3, BP_ACT_IDENTITY)], &
        BP_LOSS_SOFTMAX_XENT)
    call bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 42)
    call bp_net_plan(net, 16)
    call bp_net_describe_plan(net, plan)
    call check(len(plan) > 0, 'bp_net_describe_plan gives text')
    call bp_optim_create(opt, net, bp_optim_defaults(BP_OPT_ADAM, 0.01d0))
    call bp_net_create(init, BP_F32, D, [bp_layer_spec(8, BP_ACT_TANH), bp_layer_spec(3)], BP_LOSS_SOFTMAX_XENT)
    call bp_net_init(init, BP_INIT_GLOROT_UNIFORM, 42_c_int64_t)

    call bp_train(net, opt, Xf, labels, epochs=5, batch_size=16, seed=11, stat=st)
    call check(st == BP_OK, 'bp_train (labels) from Fortran arrays')
    call check(bp_optim_steps(opt) == 5 * (N / 16), 'one optimizer step per batch')
    call bp_net_params(net, p)
    call bp_net_params(init, p0)
    call check(size(p) == 3 * 8 + 8 + 8 * 3 + 3 .and. .not. same_bits(p, p0), 'training moved the parameters')
    call check(same_as_c(net, 1_c_int, 'c1'), 'classifier trained from Fortran = from C, bitwise')

    call bp_net_accuracy(net, Xf, labels, acc, confusion)
    call check(acc > 0.6d0 .and. sum(confusion) == N, 'accuracy and confusion counts')
    call check(all([(sum(confusion(:, i)) == count(labels == i - 1), i = 1, 3)]), &
        'confusion(p + 1, t + 1): column t holds the samples of class t')

    ! The network's layers seen from Fortran: Wt(n_in, n_out), used with BP_ROW_MAJOR.
    call bp_net_weights(net, 0_c_int, Wt, b)
    call bp_net_weights(net, 1_c_int, Wt2, b2)
    call check(all(shape(Wt) == [D, 8]) .and. size(b) == 8 .and. all(shape(Wt2) == [8, 3]), &
        'bp_net_weights: Wt(n_in, n_out)')
    call check(same_bits(Wt(:, 1), p(1:D)) .and. same_bits(b, p(D * 8 + 1:D * 8 + 8)), &
        'Wt(:, o) is row o of the row-major W in the flat buffer, b follows')
    call bp_net_forward(net, Xf, Y)
    call bp_dense_forward(Xf, Wt, H, BP_ACT_TANH, b=b, layout=BP_ROW_MAJOR)
    call bp_dense_forward(H, Wt2, Y2, BP_ACT_IDENTITY, b=b2, layout=BP_ROW_MAJOR)
    call check(rel_err(Y2, Y) <= 1d-5, 'the kernels on Wt with BP_ROW_MAJOR reproduce bp_net_forward')
    Y2 = real(matmul(transpose(Wt2), tanh(matmul(transpose(Wt), Xf) + spread(b, 2, N))) + spread(b2, 2, N), &
        c_float)
    call check(rel_err(Y2, Y) <= 1d-5, 'Y = Wt2^T tanh(Wt^T X + b) + b2 by matmul')
    ! Every other sample, in place (a leading dimension of 2 D).
    call bp_net_forward(net, Xf(:, 2:N:2), Ys)
    call check(rel_err(Ys, Y(:, 2:N:2)) <= 1d-6, 'bp_net_forward on a strided section of X')

    call bp_optim_destroy(opt)
    call bp_net_destroy(net)
    call bp_net_destroy(init)
    call check(.not. c_associated(net%ptr), 'bp_net_destroy nulls the handle')
  end subroutine

  ! 2 in cref.c: double, MSE, momentum, a hand-written loop over column
  ! sections X(:, i0:i1) in micro-batches of 8.
  subroutine regression_loop()
    type(bp_net) :: net
    type(bp_optim) :: opt
    real(c_double) :: loss, first, err, rmse
    integer :: epoch, i0
    call bp_net_create(net, BP_F64, D, [bp_layer_spec(6, BP_ACT_LEAKY_RELU, 0.1d0), bp_layer_spec(2)], &
        BP_LOSS_MSE)
    call bp_net_init(net, BP_INIT_HE_NORMAL, 7)
    call bp_net_plan(net, 8)
    call bp_optim_create(opt, net, bp_optim_defaults(BP_OPT_MOMENTUM, 0.05d0))
    first = -1
    do epoch = 1, 3
      do i0 = 1, N, 32
        call bp_net_loss_and_grad(net, Xd(:, i0:i0 + 31), T(:, i0:i0 + 31), loss)
        if (first < 0) first = loss
        call bp_optim_step(opt, net)
      end do
    end do
    call bp_net_rmse(net, Xd, T, rmse)
    call check(rmse**2 < first, 'the hand-written loop lowered the loss')
    call check(same_as_c(net, 2_c_int, 'c2'), 'loss_and_grad + optim_step loop from Fortran = from C, bitwise')
    call bp_net_gradcheck(net, Xd(:, 1:10), T(:, 1:10), err)
    call check(err < 1d-6, 'bp_net_gradcheck from Fortran')
    call bp_optim_destroy(opt)
    call bp_net_destroy(net)
  end subroutine

  ! 4 in cref.c: float, ReLU, softmax cross-entropy, SGD with weight decay, trained by
  ! bp_optim_train_step (the fused step); against C bitwise, and against the same
  ! training by loss_and_grad + optim_step (unfused) up to rounding.
  subroutine fused_sgd()
    type(bp_net) :: net, ref
    type(bp_optim) :: opt, opt_ref
    type(bp_optim_config) :: cfg
    real(c_float), pointer :: p(:), pr(:)
    real(c_double) :: loss, loss_ref
    integer :: epoch, i0
    integer(c_int) :: st
    cfg = bp_optim_defaults(BP_OPT_SGD, 0.1d0)
    cfg%weight_decay = 0.001d0
    call bp_net_create(net, BP_F32, D, [bp_layer_spec(8, BP_ACT_RELU), bp_layer_spec(3)], BP_LOSS_SOFTMAX_XENT)
    call bp_net_create(ref, BP_F32, D, [bp_layer_spec(8, BP_ACT_RELU), bp_layer_spec(3)], BP_LOSS_SOFTMAX_XENT)
    call bp_net_init(net, BP_INIT_HE_UNIFORM, 3)
    call bp_net_init(ref, BP_INIT_HE_UNIFORM, 3)
    call bp_net_plan(net, 32)
    call bp_net_plan(ref, 32)
    call bp_optim_create(opt, net, cfg)
    call bp_optim_create(opt_ref, ref, cfg)
    do epoch = 1, 3
      do i0 = 1, N, 32
        call bp_optim_train_step(opt, net, Xf(:, i0:i0 + 31), labels(i0:i0 + 31), loss, stat=st)
        call bp_net_loss_and_grad(ref, Xf(:, i0:i0 + 31), labels(i0:i0 + 31), loss_ref)
        call bp_optim_step(opt_ref, ref)
        if (epoch == 1 .and. i0 == 1) call check(st == BP_OK .and. &
            transfer(loss, 0_c_int64_t) == transfer(loss_ref, 0_c_int64_t), &
            'bp_optim_train_step: the loss of the first step is loss_and_grad''s')
      end do
    end do
    call check(bp_optim_steps(opt) == 9, 'bp_optim_train_step: one optimizer step per call')
    call bp_net_params(net, p)
    call bp_net_params(ref, pr)
    call check(rel_err(p, pr) <= 1d-5, 'fused SGD steps = loss_and_grad + optim_step up to rounding')
    call check(same_as_c(net, 4_c_int, 'c4'), 'bp_optim_train_step from Fortran = from C, bitwise')
    call bp_optim_train_step(opt, net, Xf(:, 1:4), labels(1:5), stat=st)
    call check(st == BP_ERR_ARG, 'bp_optim_train_step: labels of another length than X''s columns')
    call bp_optim_destroy(opt)
    call bp_optim_destroy(opt_ref)
    call bp_net_destroy(net)
    call bp_net_destroy(ref)
  end subroutine

  ! 3 in cref.c: as 2, trained by bp_train on real targets, not shuffled, with callbacks.
  subroutine regression_train()
    type(bp_net) :: net
    type(bp_optim) :: opt
    call bp_net_create(net, BP_F64, D, [bp_layer_spec(6, BP_ACT_LEAKY_RELU, 0.1d0), bp_layer_spec(2)], &
        BP_LOSS_MSE)
    call bp_net_init(net, BP_INIT_HE_NORMAL, 7)
    call bp_net_plan(net, 8)
    call bp_optim_create(opt, net, bp_optim_defaults(BP_OPT_MOMENTUM, 0.05d0))
    epochs_seen = 0
    batches_seen = 0
    call bp_train(net, opt, Xd, T, epochs=4, batch_size=24, seed=5, shuffle=.false., on_epoch=on_epoch, &
        on_batch=on_batch)
    call check(epochs_seen == 4 .and. batches_seen == 4 * (N / 24), 'callbacks: every epoch and batch')
    call check(last_loss < first_loss, 'the epoch reports show the loss falling')
    call check(same_as_c(net, 3_c_int, 'c3'), 'bp_train (targets) from Fortran = from C, bitwise')
    call bp_optim_destroy(opt)
    call bp_net_destroy(net)
  end subroutine

  ! on_epoch returning .true. stops training.
  subroutine early_stop()
    type(bp_net) :: net
    type(bp_optim) :: opt
    integer(c_int) :: st
    call bp_net_create(net, BP_F32, D, [bp_layer_spec(3)], BP_LOSS_SOFTMAX_XENT)
    call bp_net_init(net, BP_INIT_GLOROT_NORMAL, 1)
    call bp_net_plan(net, 32)
    call bp_optim_create(opt, net, bp_optim_defaults(BP_OPT_SGD, 0.1d0))
    epochs_seen = 0
    stop_after = 2
    call bp_train(net, opt, Xf, labels, epochs=10, batch_size=32, on_epoch=on_epoch, stat=st)
    stop_after = huge(0)
    call check(st == BP_OK .and. epochs_seen == 2 .and. bp_optim_steps(opt) == 2 * (N / 32), &
        'on_epoch returning .true. stops after that epoch')
    call bp_optim_destroy(opt)
    call bp_net_destroy(net)
  end subroutine

  subroutine logreg()
    type(bp_net) :: net
    real(c_double) :: acc
    integer(c_int) :: iters
    call bp_logreg_create(net, BP_F64, D, 3_c_int)
    call bp_logreg_newton(net, Xd, labels, 1d-3, 50_c_int, 1d-10, iters)
    call bp_net_plan(net, N)
    call bp_net_accuracy(net, Xd, labels, acc)
    call check(iters >= 1 .and. acc > 0.8d0, 'bp_logreg_newton from Fortran')
    call bp_net_destroy(net)
  end subroutine

  ! The stateless update on Fortran arrays: SGD is p - lr g.
  subroutine optim_kernel()
    real(c_float) :: p(7), g(7), p0(7)
    real(c_double) :: m(5), v(5), q(5), h(5)
    call fill(p, 3)
    call fill(g, 4)
    p0 = p
    call bp_optim_update(bp_optim_defaults(BP_OPT_SGD, 0.5d0), p, g, 1, 0.5d0)
    call check(rel_err(p, p0 - 0.5 * g) <= 1d-6, 'bp_optim_update (SGD, float)')
    call fill(q, 5)
    call fill(h, 6)
    m = 0
    v = 0
    call bp_optim_update(bp_optim_defaults(BP_OPT_ADAM, 1d-2), q, h, 1, 1d-2, m=m, v=v)
    call check(rel_err(m, 0.1d0 * h) <= 1d-15 .and. rel_err(v, 0.001d0 * h**2) <= 1d-15, &
        'bp_optim_update (Adam, double) keeps its state in m and v')
  end subroutine

  ! The network's standardisation, probabilities, classes and forward-only loss from Fortran:
  ! fitted statistics are the population mean and deviation of the samples (1e-13); a standardising
  ! network on X gives bitwise the outputs of a plain copy on (X - mean) / std; probabilities are
  ! the softmax of the outputs, classes their arg-max (0-based), the loss that of loss_and_grad.
  subroutine predict_standardized()
    type(bp_net) :: net, plain
    real(c_double), pointer :: p(:), q(:)
    real(c_double), target :: Y(3, N), Y2(3, N), P3(3, N), Xs(D, N)
    real(c_double) :: mean(D), sd(D), l1, l2
    integer(c_int32_t) :: cls(N)
    integer(c_int) :: st
    type(bp_layer_spec) :: layers(2)
    layers = [bp_layer_spec(8, BP_ACT_TANH), bp_layer_spec(3, BP_ACT_IDENTITY)]
    call bp_net_create(net, BP_F64, D, layers, BP_LOSS_SOFTMAX_XENT)
    call bp_net_create(plain, BP_F64, D, layers, BP_LOSS_SOFTMAX_XENT)
    call bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 7)
    call bp_net_params(net, p)
    call bp_net_params(plain, q)
    q = p
    call bp_net_plan(net, 16)
    call bp_net_plan(plain, 16)
    call check(.not. bp_net_has_standardization(net), 'a new network does not standardise')
    call bp_net_fit_standardization(net, Xd, stat=st)
    call check(st == BP_OK .and. bp_net_has_standardization(net), 'bp_net_fit_standardization')
    call bp_net_standardization(net, mean, sd)
    call check(rel_err(mean, sum(Xd, 2) / N) <= 1d-13, 'the fitted means')
    call check(rel_err(sd, sqrt(sum((Xd - spread(mean, 2, N))**2, 2) / N)) <= 1d-13, 'the fitted deviations')
    do i = 1, N
      Xs(:, i) = (Xd(:, i) - mean) / sd
    end do
    call bp_net_forward(net, Xd, Y)
    call bp_net_forward(plain, Xs, Y2)
    call check(same_bits(Y, Y2), 'standardising network on X = plain network on (X - mean) / std, bitwise')
    call bp_net_predict_proba(net, Xd, P3)
    call check(rel_err(P3, exp(Y) / spread(sum(exp(Y), 1), 1, 3)) <= 1d-14, 'probabilities = softmax(outputs)')
    call bp_net_predict_class(net, Xd, cls)
    call check(all([(cls(i) == maxloc(Y(:, i), 1) - 1, i = 1, N)]), 'classes = arg-max - 1')
    call bp_net_loss_and_grad(net, Xd, labels, l1)
    call bp_net_eval_loss(net, Xd, labels, l2)
    call check(abs(l2 - l1) <= 1d-15 * abs(l1), 'bp_net_eval_loss = the loss of loss_and_grad')
    call bp_net_set_standardization(net, mean, stat=st)
    call check(st == BP_ERR_ARG, 'mean without std is refused')
    call bp_net_set_standardization(net, mean, sd, stat=st)
    call check(st == BP_OK .and. bp_net_has_standardization(net), 'bp_net_set_standardization')
    call bp_net_set_standardization(net)
    call check(.not. bp_net_has_standardization(net), 'no arguments remove it')
    call bp_net_forward(net, Xs, Y)
    call check(same_bits(Y, Y2), 'without it the network takes its inputs as given')
    call bp_net_destroy(net)
    call bp_net_destroy(plain)
  end subroutine

  ! The differentiable-function calls from Fortran arrays: the parameter Jacobian's column
  ! (i - 1) n_out + k and the input Jacobian's J(:, k, i) equal bp_net_backward's gradient and dX
  ! for dY = e_k on sample i alone; beta = 1 accumulates; loss_and_grad_dx's gradient is
  ! loss_and_grad's.
  subroutine differentiable()
    type(bp_net) :: net
    real(c_double), pointer :: g(:)
    real(c_double), target :: Jt(32, 2 * 4), Jx(D, 2, 4), dY(2, 1), dX(D, 1), dX4(D, 4), g1(32)
    real(c_double) :: l1, l2, worst_p, worst_x, per(4)
    integer :: i, k
    call bp_net_create(net, BP_F64, D, [bp_layer_spec(5, BP_ACT_TANH), bp_layer_spec(2)], BP_LOSS_MSE)
    call bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 3)
    call bp_net_plan(net, 3)
    call check(bp_net_n_params(net) == 32, 'differentiable: 32 parameters')
    call bp_net_jacobian_params(net, Xd(:, 1:4), Jt)
    call bp_net_jacobian_inputs(net, Xd(:, 1:4), Jx)
    call bp_net_grads(net, g)
    worst_p = 0
    worst_x = 0
    do i = 1, 4
      do k = 1, 2
        dY = 0
        dY(k, 1) = 1
        call bp_net_backward(net, Xd(:, i:i), dY, dX)
        worst_p = max(worst_p, maxval(abs(g - Jt(:, (i - 1) * 2 + k))))
        worst_x = max(worst_x, maxval(abs(dX(:, 1) - Jx(:, k, i))))
      end do
    end do
    call check(worst_p <= 1d-14 .and. worst_x <= 1d-14, 'Jacobians = backward with dY = e_k, sample by sample')
    dY(:, 1) = [1d0, 0d0]
    call bp_net_backward(net, Xd(:, 1:1), dY)
    g1 = g
    dY(:, 1) = [0d0, 1d0]
    call bp_net_backward(net, Xd(:, 1:1), dY, beta=1d0)
    call check(maxval(abs(g - (Jt(:, 1) + Jt(:, 2)))) <= 1d-14 .and. maxval(abs(g1 - Jt(:, 1))) <= 1d-14, &
        'bp_net_backward: beta = 1 accumulates')
    call bp_net_loss_and_grad_dx(net, Xd(:, 1:4), T(:, 1:4), dX4, l2)
    g1 = g
    call bp_net_loss_and_grad(net, Xd(:, 1:4), T(:, 1:4), l1)
    call check(same_bits(g, g1) .and. same_bits([l1], [l2]), 'loss_and_grad_dx: the loss and gradient of loss_and_grad')
    call check(maxval(abs(dX4)) > 1d-3, 'loss_and_grad_dx: dX written')
    call bp_net_sample_losses(net, Xd(:, 1:4), T(:, 1:4), per)
    call check(abs(sum(per) / 4 - l1) <= 1d-15 * abs(l1), 'bp_net_sample_losses: their mean is the loss')
    call bp_net_destroy(net)
  end subroutine

  ! bp_lm_fit from Fortran arrays: the defaults are trainlm's, the fit of T(1, :) reaches a
  ! tenth of its starting MSE and says why it stopped; a validation set is taken; a non-MSE
  ! network is refused.
  subroutine levenberg_marquardt()
    use, intrinsic :: ieee_arithmetic, only: ieee_is_nan
    type(bp_net) :: net
    type(bp_lm_config) :: c
    type(bp_lm_report) :: r
    real(c_double) :: Y(1, N), mse0
    integer(c_int) :: st
    c = bp_lm_defaults()
    call check(c%max_iter == 1000 .and. c%max_fail == 6 .and. abs(c%mu - 1d-3) < 1d-18 .and. &
        abs(c%mu_max - 1d10) < 1, 'bp_lm_defaults: trainlm''s')
    call bp_net_create(net, BP_F64, D, [bp_layer_spec(6, BP_ACT_TANH), bp_layer_spec(1)], BP_LOSS_MSE)
    call bp_net_init(net, BP_INIT_GLOROT_UNIFORM, 5)
    call bp_net_plan(net, 32)
    call bp_net_forward(net, Xd, Y)
    mse0 = sum((Y - T(1:1, :))**2) / N
    c%max_iter = 20
    call bp_lm_fit(net, Xd(:, 1:80), T(1:1, 1:80), r, c, X_val=Xd(:, 81:N), T_val=T(1:1, 81:N), stat=st)
    call check(st == BP_OK .and. r%mse < mse0 / 10 .and. r%stop >= BP_LM_MAX_ITER .and. r%stop <= BP_LM_VAL_FAIL, &
        'bp_lm_fit: MSE down tenfold, a stop reason')
    call check(r%iterations >= 1 .and. .not. ieee_is_nan(r%val_mse), 'bp_lm_fit: iterations and a validation MSE')
    call bp_net_destroy(net)
    call bp_net_create(net, BP_F64, D, [bp_layer_spec(2)], BP_LOSS_SOFTMAX_XENT)
    call bp_net_plan(net, 8)
    call bp_lm_fit(net, Xd, T, r, stat=st)
    call check(st == BP_ERR_ARG, 'bp_lm_fit: a softmax network is refused')
    call bp_net_destroy(net)
  end subroutine
end program test_train
