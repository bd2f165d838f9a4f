# SPDX-License-Identifier: MIT
# plot-lm.gp: training MSE against wall time per method and problem, from bench-lm --csv.
# usage: gnuplot -c plot-lm.gp FILE.csv OUT.png

if (ARGC < 2) {
    print "usage: gnuplot -c plot-lm.gp FILE.csv OUT.png"
    exit status 2
}
datafile = ARG1
outfile = ARG2

# Columns: 1 problem, 2 method, 3 iteration, 4 seconds, 5 mse (one header line).
set datafile separator ","
set key autotitle columnhead
sel(p, m, c) = (strcol(1) eq p && strcol(2) eq m) ? column(c) : NaN

if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 1200,500 enhanced font "sans,10"
} else {
    set terminal png size 1200,500
}
set output outfile

set multiplot layout 1,2 title "backprop: Levenberg-Marquardt vs Adam vs SGD with momentum (full batch, double)"
set logscale x 10
set logscale y 10
set grid xtics ytics mxtics mytics
set xlabel "wall time (s)"
set ylabel "training MSE"
set key top right
set format y "10^{%L}"
set format x "10^{%L}"
do for [prob in "curve peaks"] {
    set title (prob eq "curve" ? "curve sin(3x) + 0.3 cos(9x), 1-20-1 tanh" : "peaks, 30 x 30 grid, 2-15-15-1 tanh")
    plot datafile using (sel(prob, "lm", 4)):(sel(prob, "lm", 5)) with linespoints pt 7 ps 0.4 lw 2 title "Levenberg-Marquardt", \
         datafile using (sel(prob, "adam", 4)):(sel(prob, "adam", 5)) with lines lw 2 title "Adam", \
         datafile using (sel(prob, "sgd-momentum", 4)):(sel(prob, "sgd-momentum", 5)) with lines lw 2 title "SGD + momentum", \
         1e-4 with lines dt 2 lc "gray" notitle, 1e-6 with lines dt 2 lc "gray" notitle
}
unset multiplot
