# SPDX-License-Identifier: MIT
# cli_common.sh: what the backprop-train test scripts share, sourced with the program's path:
#   . "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh" PATH/TO/backprop-train
# It sets bin (that path made absolute, so a test may change directory) and dir (a temporary
# directory, removed on exit), counts with ok and bad (which prints "FAIL message"), and
# defines expect.

bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); printf 'FAIL %s\n' "$*"; }

# expect NAME CODE PATTERN -- ARGS...: backprop-train ARGS exits with CODE and prints (stdout and
# stderr) a line matching the extended regular expression PATTERN.
expect() {
    local name=$1 code=$2 pattern=$3 out rc
    shift 4
    out=$("$bin" "$@" 2>&1)
    rc=$?
    if [ "$rc" -eq "$code" ] && printf '%s\n' "$out" | grep -Eq -- "$pattern"; then ok; else
        bad "$name: exit $rc (want $code), output:"; printf '%s\n' "$out"; fi
}
