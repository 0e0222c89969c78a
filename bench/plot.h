/*
 * --plot FILE.png: latency percentiles and throughput per second of the
 * run, drawn by gnuplot (Debian's gnuplot-nox; `make bench` installs it).
 */
#ifndef BENCH_PLOT_H
#define BENCH_PLOT_H

#include "run.h"

/* Draws r's series into png. Returns 0, or -1 after a message. */
int plot_png(const run_t *r, const char *png);

#endif
