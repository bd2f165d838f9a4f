! SPDX-License-Identifier: MIT
  ! views.tmpl.f90: the views of real(@WP@) matrix arguments that the modules `backprop` and
  ! `backprop_mpi` share (Meson configures this template once per precision; each module
  ! includes the results). Besides iso_c_binding, they need addr and leading_dim
  ! (helpers.inc.f90).

  ! A matrix argument as the library takes it: its first element and a leading
  ! dimension, read off the array's strides, so that a section A(1:m, j0:j1)
  ! of a larger A(ld, n) is passed in place, never copied. v views the
  ! elements from A(1, 1) to A(m, n), all inside A's storage (zero-size for an
  ! empty A).
  logical function mat_@P@(fn, name, A, v, ld, stat) result(ok)
    character(len=*), intent(in) :: fn, name
    real(@WP@), intent(in), target :: A(:, :)
    real(@WP@), pointer, contiguous, intent(out) :: v(:)
    integer(c_int), intent(out) :: ld
    integer(c_int), intent(out), optional :: stat
    type(c_ptr) :: base
    integer(c_intptr_t) :: es, s1, s2
    integer(c_size_t) :: count
    real(@WP@), target, save :: empty(1) = 0
    ok = .true.
    ld = int(max(size(A, 1), 1), c_int)
    v => empty(1:0)
    if (size(A) == 0) return
    base = c_loc(A(1, 1))
    es = int(c_sizeof(A(1, 1)), c_intptr_t)
    s1 = es
    s2 = es * size(A, 1)
    if (size(A, 1) > 1) s1 = addr(c_loc(A(2, 1))) - addr(base)
    if (size(A, 2) > 1) s2 = addr(c_loc(A(1, 2))) - addr(base)
    ok = leading_dim(fn, name, size(A, 1), es, s1, s2, ld, stat)
    if (.not. ok) return
    count = int(ld, c_size_t) * int(size(A, 2) - 1, c_size_t) + int(size(A, 1), c_size_t)
    call c_f_pointer(base, v, [count])
  end function

  ! The C pointer of a view: NULL for an empty one (the library accepts NULL
  ! for a batch of 0 samples).
  type(c_ptr) function ptr_@P@(v)
    real(@WP@), pointer, contiguous, intent(in) :: v(:)
    ptr_@P@ = c_null_ptr
    if (size(v) > 0) ptr_@P@ = c_loc(v(1))
  end function

