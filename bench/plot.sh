#!/bin/sh
# SPDX-License-Identifier: MIT
# plot.sh: draws a bench-kernels or bench-train --dat file as a PNG with gnuplot, or skips politely without it.
# usage: plot.sh kernels|train DATFILE OUT.png
set -eu
if [ "$#" -ne 3 ] || { [ "$1" != kernels ] && [ "$1" != train ]; }; then
    echo "usage: $0 kernels|train DATFILE OUT.png" >&2
    exit 2
fi
if ! command -v gnuplot >/dev/null 2>&1; then
    echo "gnuplot not installed; skipping plot"
    exit 0
fi
if [ ! -r "$2" ]; then
    echo "$0: cannot read $2" >&2
    exit 1
fi
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
gnuplot -c "$here/plot-$1.gp" "$2" "$3"
echo "wrote $3"
