# plot-kernels.gp: GFLOP/s against size of the BLAS and naive dense kernels, from bench-kernels --dat.
# usage: gnuplot -c plot-kernels.gp DATFILE OUT.png   (or bench/plot-kernels.sh DATFILE OUT.png)

if (ARGC < 2) {
    print "usage: gnuplot -c plot-kernels.gp DATFILE OUT.png"
    exit status 2
}
datafile = ARG1
outfile = ARG2

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
set datafile missing "NaN"

# Columns (see the file's header): 1 size, 2 precision (s or d), 4 BLAS fwd,
# 6 BLAS bwd, 8 naive fwd, 10 naive bwd, 13 the three bare GEMMs; GFLOP/s.
sel(p, c) = strcol(2) eq p ? column(c) : NaN

plot \
    datafile using 1:(sel("s", 13)) with lines  lc rgb "#888888" lw 1 dt 1 title "float: 3 bare GEMMs", \
    datafile using 1:(sel("s", 4))  with linespoints lc rgb "#1f77b4" lw 2 pt 7 dt 1 title "float: BLAS fwd", \
    datafile using 1:(sel("s", 6))  with linespoints lc rgb "#2ca02c" lw 2 pt 5 dt 1 title "float: BLAS bwd", \
    datafile using 1:(sel("s", 8))  with linespoints lc rgb "#ff7f0e" lw 2 pt 9 dt 1 title "float: naive fwd", \
    datafile using 1:(sel("s", 10)) with linespoints lc rgb "#d62728" lw 2 pt 11 dt 1 title "float: naive bwd", \
    datafile using 1:(sel("d", 13)) with lines  lc rgb "#888888" lw 1 dt 2 title "double: 3 bare GEMMs", \
    datafile using 1:(sel("d", 4))  with linespoints lc rgb "#1f77b4" lw 2 pt 6 dt 2 title "double: BLAS fwd", \
    datafile using 1:(sel("d", 6))  with linespoints lc rgb "#2ca02c" lw 2 pt 4 dt 2 title "double: BLAS bwd", \
    datafile using 1:(sel("d", 8))  with linespoints lc rgb "#ff7f0e" lw 2 pt 8 dt 2 title "double: naive fwd", \
    datafile using 1:(sel("d", 10)) with linespoints lc rgb "#d62728" lw 2 pt 10 dt 2 title "double: naive bwd"
