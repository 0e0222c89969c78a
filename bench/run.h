/*
 * One run of a scenario, seen from the coordinator: the target servers, the
 * client processes, the figures they report (in total, in the current
 * measurement window, and per second of the run), /proc samples of the
 * server and of the load generator itself, and the JSON report being built.
 *
 * Scenarios are written as straight-line code: each step starts something
 * and then waits with run_until(), which turns the coordinator's loop until
 * a condition holds or a bounded time has passed.
 */
#ifndef BENCH_RUN_H
#define BENCH_RUN_H

#include <stdint.h>
#include <uv.h>

#include "client.h"
#include "opts.h"
#include "pool.h"
#include "proc.h"
#include "target.h"

typedef struct cJSON cJSON;

/* One second of the run: what the clients reported with stamps in it, and
 * the server's CPU and memory sampled at its end. */
typedef struct run_second {
    client_figures_t f;
    double srv_cpu_s;
    uint64_t srv_rss_kb;
    int sampled;
} run_second_t;

/* A point in time to measure from or to. */
typedef struct run_mark {
    uint64_t t_us;
    stats_counters_t c; /* totals so far */
    proc_sample_t srv;  /* the server, when srv_ok */
    proc_sample_t gen;  /* gwbench: coordinator plus client processes */
    double steal_s;     /* the machine's stolen CPU time; -1 unknown */
    double busy_s;      /* the machine's busy CPU time; -1 unknown */
    int srv_ok;
} run_mark_t;

typedef struct run {
    const opts_t *o;
    const char *scenario;
    uint32_t sessions;
    uv_loop_t loop;
    uv_timer_t tick; /* every second: series, progress line */
    uv_timer_t poll; /* keeps run_until() checking its condition */
    target_t tgt;
    client_conf_t cconf;
    pool_t *pool;
    uint64_t t0;       /* start of the run, us */
    uint64_t deadline; /* --timeout, us */
    client_figures_t total;
    client_figures_t win; /* since run_window_begin() */
    uint64_t open_by_worker[POOL_MAX_PROCS];
    run_second_t *sec;
    size_t nsec;
    proc_sample_t srv_prev;
    int srv_prev_ok;
    int tty; /* draw a progress line */
    const char *phase;
    cJSON *results; /* what the scenario measured */
    int failed;     /* a step failed: the exit status is 1 */
} run_t;

/*
 * Starts the servers (and broker, a TARGET_BROKER_*) and the client
 * processes for sessions clients, in guilds of members when guilds > 0. Returns
 * 0, or -1 after a message (call run_close() either way).
 */
int run_open(run_t *r, const opts_t *o, const char *scenario, uint32_t sessions,
             uint32_t guilds, uint32_t members, int broker);

/* What run_open() takes, and what only some scenarios need. */
typedef struct run_spec {
    const char *scenario;
    uint32_t sessions, guilds, members;
    int broker;
    int resume;             /* client_conf_t's resume */
    const uint64_t *record; /* client_conf_t's record: memory shared with
                               the client processes (MAP_SHARED), made
                               before the run opens */
    uint64_t record_cap;
    int follow_drain;  /* client_conf_t's follow_drain */
    int by_guild;      /* client_conf_t's by_guild */
    uint32_t storm_lo; /* the first of the sessions of a --storm, which
                          --tls storm makes TLS clients; 0 = no storm */
} run_spec_t;

/* run_open() with a spec. */
int run_open_spec(run_t *r, const opts_t *o, const run_spec_t *spec);

/* Turns the loop until done(r, ud) is true (0), max_s seconds pass or the
 * run's deadline comes (-1). */
int run_until(run_t *r, int (*done)(run_t *, void *), void *ud, double max_s);

/* run_until() conditions on a publisher (publish_t *, as ud): it is
 * connected (or failed: publish_ready says which), and it has sent and
 * had answered every event it was given. */
int run_publisher_ready(run_t *r, void *pub);
int run_publisher_done(run_t *r, void *pub);

/* Turns the loop for s seconds. */
void run_sleep(run_t *r, double s);

/* Sends a command to every client loop. */
void run_command(run_t *r, uint32_t op, double rate);

/* Sends a command with all its fields (rate is a total, as above). */
void run_command_full(run_t *r, const client_cmd_t *cmd);

/* Connects every client at rate (0 = unpaced) and waits until each has
 * identified or failed. Returns 0, or -1 when that took too long. */
int run_connect_all(run_t *r, double rate);

/* The same for clients lo .. hi - 1 alone. */
int run_connect_range(run_t *r, uint32_t lo, uint32_t hi, double rate);

/* Attempts concluded (identified or failed at some stage). */
uint64_t run_concluded(const stats_counters_t *c);

/* Waits until the window's deliveries reach expected, or none came for a
 * second, at most max_s. Returns 0 when all came. */
int run_drain(run_t *r, uint64_t expected, double max_s);

/* The same counting each expected event once (repeats and strays left
 * out), and deciding nothing before min_s (the clients' last reports);
 * the phase is the caller's. */
int run_drain_distinct(run_t *r, uint64_t expected, double min_s, double max_s);

/* Asks every client for its tally of the sent events and waits until all
 * have given it, at most max_s: 0, or -1 (warned) when some did not. */
int run_tally(run_t *r, uint64_t sent, double max_s);

/* Samples now. */
void run_mark(run_t *r, run_mark_t *m);

/* Empties the window figures and samples its start. */
void run_window_begin(run_t *r, run_mark_t *m);

/* Adds to obj the server's and gwbench's CPU between a and b, and the
 * window's length. Returns the server CPU seconds (0 when unknown). */
double run_window_json(const run_mark_t *a, const run_mark_t *b, cJSON *obj);

/* Latency figures (ms) of h as a JSON object. */
cJSON *run_latency_json(const stats_hist_t *h);

/* The counters that differ between a and b, as a JSON object. */
cJSON *run_counters_json(const stats_counters_t *a, const stats_counters_t *b);

/* Stops the clients (bounded), writes the report, stops the servers.
 * Returns the exit status: 0, or 1 when a step failed. */
int run_close(run_t *r);

#endif
