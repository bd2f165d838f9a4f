! SPDX-License-Identifier: MIT
  ! helpers.inc.f90: the private helpers that the modules `backprop` (backprop.f90) and
  ! `backprop_mpi` (backprop_mpi.f90) share: delivering an error, and checking array arguments
  ! (shapes, strides, contiguity, the network's dtype). Not a unit of its own: Meson copies it
  ! to helpers.inc, which each module includes after `contains`, so that each has its own
  ! private copy, compiled from this one source.
  !
  ! The including module provides, besides the names from iso_c_binding and iso_fortran_env it
  ! uses: bp_net, bp_net_dtype_c, bp_net_n_out_c, bp_strerror, the constants BP_ERR_ARG, BP_F32,
  ! and raise(status, msg, stat), which records msg ("fn: ...", the whole message) as the last
  ! error and then calls deliver.

  ! ============================================================ error handling

  ! Reports an error: into stat if present, otherwise to error_unit and stop.
  subroutine deliver(status, msg, stat)
    integer(c_int), intent(in) :: status
    character(len=*), intent(in) :: msg
    integer(c_int), intent(out), optional :: stat
    if (present(stat)) then
      stat = status
      return
    end if
    write (error_unit, '(a)') 'backprop: ' // bp_strerror(status) // ': ' // msg
    error stop
  end subroutine

  function str(i) result(s)
    integer, intent(in) :: i
    character(len=:), allocatable :: s
    character(len=24) :: buf
    write (buf, '(i0)') i
    s = trim(buf)
  end function

  ! ======================================================= shapes and strides

  integer(c_intptr_t) function addr(p)
    type(c_ptr), intent(in) :: p
    addr = transfer(p, 0_c_intptr_t)
  end function

  ! Leading dimension from the byte strides of a matrix section with m rows
  ! (s1: between rows, s2: between columns) of elements of es bytes.
  logical function leading_dim(fn, name, m, es, s1, s2, ld, stat) result(ok)
    character(len=*), intent(in) :: fn, name
    integer, intent(in) :: m
    integer(c_intptr_t), intent(in) :: es, s1, s2
    integer(c_int), intent(out) :: ld
    integer(c_int), intent(out), optional :: stat
    ld = int(max(m, 1), c_int)
    ok = .false.
    if (s1 /= es) then
      call raise(BP_ERR_ARG, fn // ': ' // name // ' has a stride other than 1 in its first dimension' // &
          ' (each sample must be contiguous; it is not copied. An expression such as transpose(A) may' // &
          ' arrive as a strided view: assign it to an array first)', stat)
    else if (s2 < es * m .or. mod(s2, es) /= 0 .or. s2 / es > huge(ld)) then
      call raise(BP_ERR_ARG, fn // ': the columns of ' // name // ' are not laid out as in an array ' // &
          name // '(ld, n) with ld >= size(' // name // ', 1)', stat)
    else
      ld = int(s2 / es, c_int)
      ok = .true.
    end if
  end function

  logical function shape_is(fn, name, got, want, stat) result(ok)
    character(len=*), intent(in) :: fn, name
    integer, intent(in) :: got(2), want(2)
    integer(c_int), intent(out), optional :: stat
    ok = all(got == want)
    if (.not. ok) call raise(BP_ERR_ARG, fn // ': shape(' // name // ') is (' // str(got(1)) // ', ' // &
        str(got(2)) // '), expected (' // str(want(1)) // ', ' // str(want(2)) // ')', stat)
  end function

  logical function size_is(fn, name, got, want, stat) result(ok)
    character(len=*), intent(in) :: fn, name
    integer, intent(in) :: got, want
    integer(c_int), intent(out), optional :: stat
    ok = got == want
    if (.not. ok) call raise(BP_ERR_ARG, fn // ': size(' // name // ') is ' // str(got) // ', expected ' // &
        str(want), stat)
  end function

  ! Whether the n elements (of es bytes) of an array, from the one at first to
  ! the one at last, are contiguous: arrays are passed in place, never copied.
  logical function contiguous_at(fn, name, first, last, n, es, stat) result(ok)
    character(len=*), intent(in) :: fn, name
    type(c_ptr), intent(in) :: first, last
    integer, intent(in) :: n
    integer(c_size_t), intent(in) :: es
    integer(c_int), intent(out), optional :: stat
    ok = addr(last) - addr(first) == int(n - 1, c_intptr_t) * int(es, c_intptr_t)
    if (.not. ok) call raise(BP_ERR_ARG, fn // ': ' // name // ' is not contiguous', stat)
  end function

  ! A label vector: contiguous, passed in place (v views it).
  logical function vec_i32(fn, name, a, v, stat) result(ok)
    character(len=*), intent(in) :: fn, name
    integer(c_int32_t), intent(in), target :: a(:)
    integer(c_int32_t), pointer, contiguous, intent(out) :: v(:)
    integer(c_int), intent(out), optional :: stat
    integer(c_int32_t), target, save :: empty(1) = 0
    ok = .true.
    v => empty(1:0)
    if (size(a) == 0) return
    ok = contiguous_at(fn, name, c_loc(a(1)), c_loc(a(size(a))), size(a), c_sizeof(a(1)), stat)
    if (ok) call c_f_pointer(c_loc(a(1)), v, [size(a)])
  end function

  ! The labels(n) of a batch of n samples: 0-based class indices, in place.
  logical function labels_view(fn, n, labels, v, stat) result(ok)
    character(len=*), intent(in) :: fn
    integer, intent(in) :: n
    integer(c_int32_t), intent(in), target :: labels(:)
    integer(c_int32_t), pointer, contiguous, intent(out) :: v(:)
    integer(c_int), intent(out), optional :: stat
    ok = size_is(fn, 'labels', size(labels), n, stat)
    if (ok) ok = vec_i32(fn, 'labels', labels, v, stat)
  end function

  ! The network's dtype must match the kind of the arrays (no conversion is
  ! made). A NULL handle passes: the library then reports it.
  logical function dtype_is(fn, net, dtype, stat) result(ok)
    character(len=*), intent(in) :: fn
    type(bp_net), intent(in) :: net
    integer(c_int), intent(in) :: dtype
    integer(c_int), intent(out), optional :: stat
    character(len=*), parameter :: names(2) = ['real(c_float) ', 'real(c_double)']
    integer(c_int) :: have
    ok = .true.
    if (.not. c_associated(net%ptr)) return
    have = bp_net_dtype_c(net%ptr)
    ok = have == dtype
    if (.not. ok) call raise(BP_ERR_ARG, fn // ': the arrays are ' // trim(names(dtype)) // &
        ' but the network''s dtype is ' // merge('BP_F32', 'BP_F64', have == BP_F32), stat)
  end function

  ! The confusion matrix (n_out, n_out) of an accuracy call, when the network is known: its
  ! address (c_null_ptr otherwise, or when empty). Call it only with a confusion that is
  ! present: to pass an absent optional array on, gfortran builds a descriptor from undefined
  ! bounds, which the sanitizer may report as an overflow.
  logical function confusion_at(fn, net, confusion, pc, stat) result(ok)
    character(len=*), intent(in) :: fn
    type(bp_net), intent(in) :: net
    integer(c_int64_t), intent(in), target :: confusion(:, :)
    type(c_ptr), intent(out) :: pc
    integer(c_int), intent(out), optional :: stat
    integer :: k
    pc = c_null_ptr
    ok = .true.
    if (.not. c_associated(net%ptr)) return
    k = int(bp_net_n_out_c(net%ptr))
    ok = shape_is(fn, 'confusion', shape(confusion), [k, k], stat)
    if (.not. ok .or. size(confusion) == 0) return
    ok = contiguous_at(fn, 'confusion', c_loc(confusion(1, 1)), c_loc(confusion(k, k)), size(confusion), &
        c_sizeof(confusion(1, 1)), stat)
    if (ok) pc = c_loc(confusion(1, 1))
  end function
