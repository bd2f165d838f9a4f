# SPDX-License-Identifier: MIT
# plot-train.gp: time per training step against batch size (log-log), from bench-train --dat.
# usage: gnuplot -c plot-train.gp DATFILE OUT.png   (or bench/plot.sh train DATFILE OUT.png)

if (ARGC < 2) {
    print "usage: gnuplot -c plot-train.gp DATFILE OUT.png"
    exit status 2
}
datafile = ARG1
outfile = ARG2

# Columns (see the file's header): 1 batch, 2 precision (s or d), 3 BLAS step,
# 7 the step's GEMMs alone, 10 naive step; ms (medians), NaN where not measured.
# Only the precisions present are drawn (a --precision s run has no d rows).
set datafile missing "NaN"
stats datafile using (strcol(2) eq "s" ? 1 : 0) nooutput prefix "S"
stats datafile using (strcol(2) eq "d" ? 1 : 0) nooutput prefix "D"
precs = (S_sum > 0 ? "s " : "") . (D_sum > 0 ? "d" : "")
if (strlen(precs) == 0) {
    print "plot-train.gp: no rows in ", datafile
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

set title "backprop training step (fused SGD), MLP 784-512-512-10, softmax cross-entropy"
set xlabel "batch size"
set ylabel "ms per step (median)"
set logscale x 2
set logscale y 10
set grid xtics ytics mytics
set key outside right top

plot \
    for [p in precs] datafile using 1:(sel(p, 7)) with linespoints lc rgb "#888888" lw 1 dt dash(p) \
        pt 4 + filled(p) title pname(p).": GEMMs alone", \
    for [p in precs] datafile using 1:(sel(p, 3)) with linespoints lc rgb "#1f77b4" lw 2 dt dash(p) \
        pt 6 + filled(p) title pname(p).": BLAS step", \
    for [p in precs] datafile using 1:(sel(p, 10)) with linespoints lc rgb "#d62728" lw 2 dt dash(p) \
        pt 8 + filled(p) title pname(p).": naive step"
