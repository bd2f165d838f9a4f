#!/bin/sh
# plot-train.sh: draws a bench-train --dat file as a PNG with gnuplot, or skips politely without it.
# usage: plot-train.sh DATFILE OUT.png
set -eu
if [ "$#" -ne 2 ]; then
    echo "usage: $0 DATFILE OUT.png" >&2
    exit 2
fi
if ! command -v gnuplot >/dev/null 2>&1; then
    echo "gnuplot not installed; skipping plot"
    exit 0
fi
if [ ! -r "$1" ]; then
    echo "$0: cannot read $1" >&2
    exit 1
fi
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
gnuplot -c "$here/plot-train.gp" "$1" "$2"
echo "wrote $2"
