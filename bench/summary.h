/*
 * `gwbench summary FILE...`: one line of headline figures per JSON report,
 * so that a suite of runs ends with a table a person can read.
 */
#ifndef BENCH_SUMMARY_H
#define BENCH_SUMMARY_H

/* Prints the headline of each report. Returns 0, or 1 when a file is
 * unreadable or a run failed. */
int summary_main(int argc, char **argv);

#endif
