#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_man.sh: the manual page describes every option `backprop-train --help` lists, and renders
# without a warning. Usage: test_man.sh PATH/TO/backprop-train PATH/TO/backprop-train.1
set -u
bin=$1 page=$2
pass=0 fail=0

opts=$("$bin" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
if [ "$(printf '%s\n' "$opts" | wc -l)" -lt 40 ]; then
    echo "FAIL --help lists only: $opts"; fail=$((fail + 1))
fi
for o in $opts; do
    # --raw-pixels is written \-\-raw\-pixels (or --raw-pixels) in roff, and must not be only
    # the start of a longer name (--val in --val-split).
    re='(\\-\\-|--)'$(printf '%s' "${o#--}" | sed 's/-/(\\\\-|-)/g')'([^-a-z0-9\\]|\\[^-]|$)'
    if grep -Eq -- "$re" "$page"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL $o is not in $page"; fi
done

# Rendering: groff's warnings (-ww) and man's, each when installed.
if command -v groff >/dev/null 2>&1; then
    out=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
    if [ -z "$out" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); printf 'FAIL groff warns:\n%s\n' "$out"; fi
else
    echo "groff is not installed: its rendering check skipped"
fi
if command -v man >/dev/null 2>&1; then
    out=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
    text=$(MANWIDTH=80 man -l "$page" 2>/dev/null)
    if [ -z "$out" ] && printf '%s\n' "$text" | grep -q 'EXIT STATUS'; then pass=$((pass + 1)); else
        fail=$((fail + 1)); printf 'FAIL man -l: warnings:\n%s\n' "$out"; fi
else
    echo "man is not installed: its rendering check skipped"
fi

echo "man: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
