# Draws comparison.png from the tables exobus_compare writes.
# Usage: gnuplot -e "dir='bench/results'" bench/compare/plot.gp
if (!exists("dir")) dir = "bench/results"
set terminal pngcairo size 1400,560 font "sans,11" noenhanced
set output dir."/comparison.png"
subtitle = system("cat '".dir."/plot_title.txt' 2>/dev/null")
set multiplot layout 1,2 title "Transport comparison: two processes pinned to separate CPUs\n".subtitle

set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics mytics
set logscale y
set key top left

set title "One-way throughput by payload (higher is better)"
set ylabel "MB/s of payload (log scale)"
set xlabel "payload"
ncols = system("head -1 '".dir."/throughput.dat' | wc -w") + 0
plot for [c=2:ncols] dir."/throughput.dat" using c:xtic(1) title columnheader(c)

set title "Round trip, 64 B request -> reply (lower is better)"
set ylabel "microseconds (log scale)"
set xlabel "transport"
set xtics rotate by -30
plot for [c=2:4] dir."/latency.dat" using c:xtic(1) title columnheader(c)

unset multiplot
