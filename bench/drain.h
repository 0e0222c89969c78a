/*
 * The drain scenario's pure parts (docs/continuity.md section 3): how long
 * a moving client waits before it tries again, which instance is drained,
 * the deliveries a run owes, the handoff figures of gatewayd's GET /stats,
 * and the run's verdict from its counters. No I/O and no clock, so that
 * each is unit-tested (test/unit/test_bench_drain.c).
 *
 * What each client received is checked by the resume scenario's
 * accounting (resume.h), across its connections: event n goes to guild
 * n % guilds and is that guild's event number n / guilds, a per-guild
 * counter; a session must receive every one published after it
 * identified, once, in order, with seq going up by one across the move.
 */
#ifndef BENCH_DRAIN_H
#define BENCH_DRAIN_H

#include <stddef.h>
#include <stdint.h>

/* A moving client (closed 4011, on its way to the other instance) tries
 * again this many times at most before it gives up; with the backoff
 * below that takes 12 to 18 s. */
#define DRAIN_MAX_RETRIES 50
#define DRAIN_BACKOFF_MIN_US 20000
#define DRAIN_BACKOFF_MAX_US 250000

/*
 * The wait before retry number attempt (1 for the first) of a moving
 * client: 20 ms doubling up to 250 ms, plus up to half as much again
 * taken from rnd (any 64-bit value), so that clients refused together do
 * not all come back together.
 */
uint64_t drain_backoff_us(unsigned attempt, uint64_t rnd);

/* The instance to drain, of two holding a and b sessions behind a
 * least-connections proxy (each about half): the one holding more, the
 * first on a tie. -1 when neither holds any. */
int drain_pick(double a, double b);

/* Deliveries a run owes once sent events went out round robin to guilds
 * of members sessions each (the last one short: sessions in all). */
uint64_t drain_expected(uint64_t sent, uint32_t sessions, uint32_t guilds,
                        uint32_t members);

/* ---- gatewayd's side -------------------------------------------------- */

/* The handoff and resume figures of GET /stats "totals": counters since
 * the start, except waiting, connections and sessions (gauges). */
typedef struct drain_stats {
    double restored;  /* handoffs_restored */
    double failed;    /* handoffs_failed */
    double overlap;   /* handoff_overlap */
    double served;    /* handoffs_served */
    double waiting;   /* handoffs_waiting */
    double resumed;   /* resumed */
    double invalid;   /* resume_invalid */
    double replayed;  /* replayed */
    double overflows; /* resume_overflows */
    double connections;
    double sessions;
} drain_stats_t;

/* Reads s from a /stats answer. Returns 0, or -1 when a figure is missing
 * or not a number (a gatewayd without the handoff). */
int drain_stats_parse(const char *body, size_t len, drain_stats_t *s);

/* ---- the verdict ------------------------------------------------------ */

/* What a run counted, for its verdict. */
typedef struct drain_tally {
    uint64_t on_drained;      /* sessions the drained instance held */
    uint64_t moved;           /* live sessions closed 4011 */
    uint64_t resumed;         /* resumed received */
    uint64_t gave_up;         /* moving sessions out of retries */
    uint64_t invalid;         /* invalid_session received */
    uint64_t lost;            /* events never received, session live */
    uint64_t lost_not_back;   /* the same, session not back */
    uint64_t lost_at_invalid; /* the same, in a life that ended */
    uint64_t duplicated;
    uint64_t out_of_order;
    uint64_t seq_gaps;
    uint64_t seq_repeats;
    uint64_t foreign;         /* events of another guild */
    uint64_t replay_mismatch; /* replayed count or start wrong */
    uint64_t restored;        /* the survivor's handoffs_restored */
    uint64_t handoffs_failed; /* the survivor's handoffs_failed */
    uint64_t exited;          /* 1: the drained instance exited, status 0 */
} drain_tally_t;

/* A check the run failed: the figure, its value and what it must be. */
typedef struct drain_fault {
    const char *what;
    uint64_t value;
    uint64_t want;
    int at_least; /* value must be want or more; else exactly want */
} drain_fault_t;

#define DRAIN_CHECKS 17

/* Fills out (room for cap) with the checks t fails, in a fixed order;
 * returns how many failed (also those past cap). */
size_t drain_verdict(const drain_tally_t *t, drain_fault_t *out, size_t cap);

#endif
