# SPDX-License-Identifier: MIT
# deps.sh: sourced by scripts/demo, scripts/test and scripts/fuzz. Installs the Debian packages
# that are missing, as root or through sudo; elsewhere says what is needed.

# Packages every build needs; the scripts add their own.
BP_BUILD_PKGS="meson ninja-build pkg-config gcc libc6-dev libopenblas-dev liblapacke-dev zlib1g-dev"

# Open MPI, for libbackprop-mpi and its tests under mpiexec (scripts/test).
BP_MPI_PKGS="openmpi-bin libopenmpi-dev"

# The Debian packages of a CBLAS that meson's -Dblas can name (scripts/test BLAS). libblis-dev
# alone may bring BLIS's OpenMP variant; meson looks for the pthread one first.
bp_blas_pkgs() {
    case "$1" in
        openblas) echo libopenblas-dev ;;
        blis) echo libblis-dev libblis-pthread-dev ;;
        *) echo "scripts: unknown BLAS '$1' (known here: openblas, blis)" >&2; return 1 ;;
    esac
}

bp_install_deps() {
    local missing=() p
    if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
        if command -v meson >/dev/null 2>&1 && pkg-config --exists openblas 2>/dev/null; then
            echo "scripts: not a Debian system; using the meson and OpenBLAS found here." >&2
            return 0
        fi
        cat >&2 <<MSG
scripts: this is not a Debian system, so nothing was installed.
Install these (names as in Debian) with your package manager, then rerun:
  $*
that is: Meson >= 0.63, Ninja, pkg-config, a C11 compiler, OpenBLAS with its
CBLAS header, LAPACKE, and Check (for the tests).
MSG
        exit 1
    fi
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "scripts: installing missing Debian packages: ${missing[*]}"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            echo "scripts: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2
            exit 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq || { echo "scripts: apt-get update failed" >&2; exit 1; }
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        || { echo "scripts: apt-get install ${missing[*]} failed" >&2; exit 1; }
}

# meson setup, or reconfigure when the directory already holds a build (meson
# ignores new -D options on an existing directory otherwise).
bp_meson_setup() {
    local dir=$1; shift
    if [ -f "$dir/build.ninja" ]; then
        meson setup --reconfigure "$dir" "$@"
    else
        rm -rf "$dir"
        meson setup "$dir" "$@"
    fi
}

# The fuzz targets (tests/fuzz): clang with libFuzzer, in their own build directory.
BP_FUZZ_PKGS="clang libclang-rt-14-dev"
BP_FUZZ_BUILD=build-fuzz
BP_FUZZ_TARGETS="idx csv model"

# True when clang can link a libFuzzer target.
bp_have_libfuzzer() {
    command -v clang >/dev/null 2>&1 || return 1
    local probe
    probe=$(mktemp -d) || return 1
    printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' >"$probe/p.c"
    clang -fsanitize=fuzzer "$probe/p.c" -o "$probe/p" >/dev/null 2>&1
    local rc=$?
    rm -rf "$probe"
    return $rc
}

# Configures build-fuzz (clang, ASan + UBSan, the library instrumented for coverage with
# -fsanitize=fuzzer-no-link so libFuzzer sees into the readers) and builds the fuzz targets only:
# not the suites, tools or examples, which build-test covers. Used by scripts/fuzz and scripts/test.
bp_fuzz_setup() {
    CC=clang bp_meson_setup "$BP_FUZZ_BUILD" --buildtype=debugoptimized -Dfuzz=enabled -Dtests=enabled \
        -Dfortran=disabled -Dbenchmarks=false -Db_sanitize=address,undefined -Db_lundef=false \
        -Dc_args=-fsanitize=fuzzer-no-link --wrap-mode=nodownload >/dev/null || return 1
    local t targets=()
    for t in $BP_FUZZ_TARGETS; do
        targets+=("tests/fuzz/fuzz_$t")
    done
    ninja -C "$BP_FUZZ_BUILD" "${targets[@]}"
}
