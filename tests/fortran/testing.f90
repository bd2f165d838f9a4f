! SPDX-License-Identifier: MIT
! testing.f90: the checks shared by the Fortran tests: counting, normwise errors, bitwise equality, test data.
module bp_testing
  use, intrinsic :: iso_c_binding, only: c_int, c_int32_t, c_int64_t, c_float, c_double
  implicit none
  private
  public :: check, tests_done, test_counts, set_fail_tag, rel_err, same_bits, fill, data_x, data_label, &
      data_target

  integer :: n_pass = 0, n_fail = 0
  ! What a FAILED line says after FAILED, e.g. ' (rank 1)' in a program that runs under MPI.
  character(len=64) :: fail_tag = ''

  ! max|a - b| / max|b| (docs/ARCHITECTURE.md, Testing): normwise, not elementwise.
  interface rel_err
    module procedure rel_err_s1, rel_err_s2, rel_err_d1, rel_err_d2
  end interface
  ! Bit-for-bit equality (the bits, not ==: -0 /= 0 and NaN = NaN here).
  interface same_bits
    module procedure same_bits_s, same_bits_d, same_bits_s1, same_bits_d1
  end interface
  ! Deterministic pseudo-random values in [-1, 1).
  interface fill
    module procedure fill_s2, fill_d2, fill_s1, fill_d1
  end interface

contains

  subroutine check(ok, what)
    logical, intent(in) :: ok
    character(len=*), intent(in) :: what
    if (ok) then
      n_pass = n_pass + 1
    else
      n_fail = n_fail + 1
      write (*, '(a)') 'FAILED' // trim(fail_tag) // ': ' // what
    end if
  end subroutine

  subroutine set_fail_tag(tag)
    character(len=*), intent(in) :: tag
    fail_tag = tag
  end subroutine

  ! The checks so far, for a program that makes its own closing line (e.g. summed over MPI ranks).
  subroutine test_counts(passed, failed)
    integer, intent(out) :: passed, failed
    passed = n_pass
    failed = n_fail
  end subroutine

  ! The closing line; a failure makes the exit status nonzero.
  subroutine tests_done(name)
    character(len=*), intent(in) :: name
    write (*, '(a, i0, a, i0, a)') 'fortran ' // name // ': ', n_pass, ' passed, ', n_fail, ' failed'
    if (n_fail > 0) error stop 1
  end subroutine

  real(c_double) function rel_err_s2(a, b) result(e)
    real(c_float), intent(in) :: a(:, :), b(:, :)
    e = real(maxval(abs(a - b)), c_double) / max(real(maxval(abs(b)), c_double), 1d-30)
  end function
  real(c_double) function rel_err_d2(a, b) result(e)
    real(c_double), intent(in) :: a(:, :), b(:, :)
    e = maxval(abs(a - b)) / max(maxval(abs(b)), 1d-300)
  end function
  real(c_double) function rel_err_s1(a, b) result(e)
    real(c_float), intent(in) :: a(:), b(:)
    e = real(maxval(abs(a - b)), c_double) / max(real(maxval(abs(b)), c_double), 1d-30)
  end function
  real(c_double) function rel_err_d1(a, b) result(e)
    real(c_double), intent(in) :: a(:), b(:)
    e = maxval(abs(a - b)) / max(maxval(abs(b)), 1d-300)
  end function

  logical function same_bits_s(a, b)
    real(c_float), intent(in) :: a(:, :), b(:, :)
    same_bits_s = size(a) == size(b)
    if (same_bits_s) same_bits_s = all(transfer(a, [0_c_int32_t]) == transfer(b, [0_c_int32_t]))
  end function
  logical function same_bits_d(a, b)
    real(c_double), intent(in) :: a(:, :), b(:, :)
    same_bits_d = size(a) == size(b)
    if (same_bits_d) same_bits_d = all(transfer(a, [0_c_int64_t]) == transfer(b, [0_c_int64_t]))
  end function
  logical function same_bits_s1(a, b)
    real(c_float), intent(in) :: a(:), b(:)
    same_bits_s1 = size(a) == size(b)
    if (same_bits_s1) same_bits_s1 = all(transfer(a, [0_c_int32_t]) == transfer(b, [0_c_int32_t]))
  end function
  logical function same_bits_d1(a, b)
    real(c_double), intent(in) :: a(:), b(:)
    same_bits_d1 = size(a) == size(b)
    if (same_bits_d1) same_bits_d1 = all(transfer(a, [0_c_int64_t]) == transfer(b, [0_c_int64_t]))
  end function

  ! Park and Miller's minimal standard generator (no overflow in 64 bits), so
  ! every run sees the same data.
  real(c_double) function next(state)
    integer(c_int64_t), intent(inout) :: state
    state = modulo(state * 48271_c_int64_t, 2147483647_c_int64_t)
    next = real(state, c_double) / 1073741824d0 - 1
  end function

  subroutine fill_d2(a, seed)
    real(c_double), intent(out) :: a(:, :)
    integer, intent(in) :: seed
    integer(c_int64_t) :: s
    integer :: i, j
    s = 1 + modulo(int(seed, c_int64_t), 2147483646_c_int64_t)
    do j = 1, size(a, 2)
      do i = 1, size(a, 1)
        a(i, j) = next(s)
      end do
    end do
  end subroutine
  subroutine fill_s2(a, seed)
    real(c_float), intent(out) :: a(:, :)
    integer, intent(in) :: seed
    real(c_double) :: t(size(a, 1), size(a, 2))
    call fill_d2(t, seed)
    a = real(t, c_float)
  end subroutine
  subroutine fill_d1(a, seed)
    real(c_double), intent(out) :: a(:)
    integer, intent(in) :: seed
    real(c_double) :: t(size(a), 1)
    call fill_d2(t, seed)
    a = t(:, 1)
  end subroutine
  subroutine fill_s1(a, seed)
    real(c_float), intent(out) :: a(:)
    integer, intent(in) :: seed
    real(c_double) :: t(size(a))
    call fill_d1(t, seed)
    a = real(t, c_float)
  end subroutine

  ! The training data the C reference (cref.c) generates too, by the same
  ! formulas in exact arithmetic: feature j (0-based) of sample i (0-based),
  ! its class label, and its two real targets.
  real(c_double) function data_x(i, j)
    integer, intent(in) :: i, j
    data_x = real(modulo(i * 7 + j * 13 + 5, 23) - 11, c_double) / 8
  end function
  integer(c_int32_t) function data_label(i)
    integer, intent(in) :: i
    data_label = 0
    if (data_x(i, 0) + data_x(i, 1) > 0) data_label = data_label + 1
    if (data_x(i, 2) > 0.5d0) data_label = data_label + 1
  end function
  real(c_double) function data_target(i, k)
    integer, intent(in) :: i, k
    if (k == 0) then
      data_target = (data_x(i, 0) - data_x(i, 1)) / 2
    else
      data_target = data_x(i, 2) * data_x(i, 0) / 4
    end if
  end function
end module bp_testing
