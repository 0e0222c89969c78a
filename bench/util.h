/*
 * Small helpers shared by the load generator's modules: fatal errors and
 * the clock. Allocation is the daemon's gw_malloc (gw/alloc.h), which
 * aborts on failure: a load generator out of memory cannot continue either.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Prints "gwbench: " and the message to stderr and exits with status 2. */
void util_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)))
__attribute__((noreturn));

/* Prints "gwbench: " and the message to stderr. */
void util_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* CLOCK_MONOTONIC in microseconds. The clock is system-wide, so stamps
 * taken in different processes of one run compare directly. */
uint64_t util_now_us(void);

/* Sets FD_CLOEXEC on fd, so that spawned servers do not inherit it. */
void util_cloexec(int fd);

#endif
