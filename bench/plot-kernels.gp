# SPDX-License-Identifier: MIT
# plot-kernels.gp: GFLOP/s against size of the BLAS and naive dense kernels, from bench-kernels --dat.
# usage: gnuplot -c plot-kernels.gp DATFILE OUT.png   (or bench/plot.sh kernels DATFILE OUT.png)

if (ARGC < 2) {
    print "usage: gnuplot -c plot-kernels.gp DATFILE OUT.png"
    exit status 2
}
datafile = ARG1
outfile = ARG2

# Columns (see the file's header): 1 size, 2 precision (s or d), 4 BLAS fwd,
# 6 BLAS bwd, 8 naive fwd, 10 naive bwd, 13 the three bare GEMMs; GFLOP/s.
# Only the precisions present are drawn (a --precision s run has no d rows).
set datafile missing "NaN"
stats datafile using (strcol(2) eq "s" ? 1 : 0) nooutput prefix "S"
stats datafile using (strcol(2) eq "d" ? 1 : 0) nooutput prefix "D"
precs = (S_sum > 0 ? "s " : "") . (D_sum > 0 ? "d" : "")
if (strlen(precs) == 0) {
    print "plot-kernels.gp: no rows in ", datafile
    exit status 1
}
sel(p, c) = strcol(2) eq p ? column(c) : NaN
pname(p) = p eq "s" ? "float" : "double"
dash(p) = p eq "s" ? 1 : 2
filled(p) = p eq "s" ? 1 : 0     # float: filled point symbols, double: open ones

if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 1000,650 enhanced font "sans,10"
} else {
    set terminal png size 1000,650
}
set output outfile

set title "backprop dense layer (row-major, ReLU, bias, n = n\\_in = n\\_out = size)"
set xlabel "size"
set ylabel "GFLOP/s"
set logscale x 2
set logscale y 10
set grid xtics ytics mytics
set key outside right top

plot \
    for [p in precs] datafile using 1:(sel(p, 13)) with lines lc rgb "#888888" lw 1 dt dash(p) \
        title pname(p).": 3 bare GEMMs", \
    for [p in precs] datafile using 1:(sel(p, 4)) with linespoints lc rgb "#1f77b4" lw 2 dt dash(p) \
        pt 6 + filled(p) title pname(p).": BLAS fwd", \
    for [p in precs] datafile using 1:(sel(p, 6)) with linespoints lc rgb "#2ca02c" lw 2 dt dash(p) \
        pt 4 + filled(p) title pname(p).": BLAS bwd", \
    for [p in precs] datafile using 1:(sel(p, 8)) with linespoints lc rgb "#ff7f0e" lw 2 dt dash(p) \
        pt 8 + filled(p) title pname(p).": naive fwd", \
    for [p in precs] datafile using 1:(sel(p, 10)) with linespoints lc rgb "#d62728" lw 2 dt dash(p) \
        pt 10 + filled(p) title pname(p).": naive bwd"
