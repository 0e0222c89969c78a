/*
 * Client processes. One process holds at most ~19,900 sockets here (the
 * open-file limit of 20,000 cannot be raised), so the run's sessions are
 * split over forked worker processes, each running client loops on threads.
 *
 * The coordinator (the parent) talks to each worker over two pipes: fixed
 * size commands down, fixed size reports up. A worker reports every
 * POOL_REPORT_MS what its loops counted since the last report, stamped with
 * the monotonic clock (system-wide, so the coordinator can place it in
 * time), and a final report when it finishes. A worker whose command pipe
 * closes (the coordinator died) exits at once, and the kernel kills it when
 * its parent dies.
 */
#ifndef BENCH_POOL_H
#define BENCH_POOL_H

#include <sys/types.h>
#include <uv.h>

#include "client.h"
#include "stats.h"

#define POOL_MAX_PROCS 32
#define POOL_REPORT_MS 250

typedef enum { POOL_REPORT_TICK, POOL_REPORT_FINAL } pool_report_type_t;

typedef struct pool_report {
    uint32_t type; /* pool_report_type_t */
    uint32_t worker;
    uint64_t stamp_us;  /* when the worker collected it */
    client_figures_t f; /* since the last report; f.open is a gauge */
} pool_report_t;

typedef struct pool pool_t;

/* Receives each report as it arrives, on the coordinator's loop. */
typedef void (*pool_report_cb)(void *ud, const pool_report_t *r);

/*
 * Forks procs workers with threads client loops each and splits sessions
 * 0 .. n - 1 evenly over all loops; with split (0 < split < n, and procs
 * at least 2), sessions 0 .. split - 1 over the first half of the
 * processes and the rest over the others, so that neither part's work
 * holds up the other's loops (a connect storm beside a measured fan-out).
 * The workers read conf as it is now (a copy-on-write snapshot). Call
 * before the coordinator starts threads of its own. Returns NULL (after a
 * message) on failure.
 */
pool_t *pool_start(uv_loop_t *loop, const client_conf_t *conf, uint32_t n,
                   uint32_t split, unsigned procs, unsigned threads,
                   pool_report_cb cb, void *ud);

/* Sends a command to every loop of every worker; cmd->rate is the total
 * over all loops and is split evenly. */
void pool_command(pool_t *p, const client_cmd_t *cmd);

/* Workers still running (not yet sent their final report). */
unsigned pool_running(const pool_t *p);

/* The PIDs of the workers, for their CPU time. */
unsigned pool_pids(const pool_t *p, pid_t *out);

/* Total client loops. */
unsigned pool_loops(const pool_t *p);

/* Sends FINISH: the workers close every connection and report once more.
 * Run the loop until pool_running() is 0, then pool_free(). */
void pool_finish(pool_t *p);

/* Reaps the workers (killing any still alive) and frees p. */
void pool_free(pool_t *p);

#endif
