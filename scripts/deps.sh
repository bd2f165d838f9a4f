# deps.sh: sourced by scripts/demo and scripts/test. Installs the Debian packages
# that are missing, as root or through sudo; elsewhere says what is needed.

# Packages every build needs; the scripts add their own.
BP_BUILD_PKGS="meson ninja-build pkg-config gcc libc6-dev libopenblas-dev liblapacke-dev zlib1g-dev"

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
