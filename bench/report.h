/*
 * What a run says: one JSON object (stdout or --json FILE) with the
 * parameters, the machine, the scenario's results, every counter and a
 * per-second series; a human summary on stderr; a live progress line while
 * stderr is a terminal; and, with --plot, a PNG drawn by gnuplot.
 */
#ifndef BENCH_REPORT_H
#define BENCH_REPORT_H

#include "run.h"

/* Redraws the progress line (a no-op unless stderr is a terminal). */
void report_progress(run_t *r);

/* Ends the progress line so that what follows starts on a fresh one. */
void report_finish_line(run_t *r);

/* Writes the JSON, the summary and the plot. Returns 0 or -1. */
int report_write(run_t *r);

#endif
