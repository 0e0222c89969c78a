/*
 * The cluster's presence view as the presence scenario reads it, its pure
 * parts: the path of a GET /presence for a batch of users, the answer
 * checked against what the run expects (each user online with exactly one
 * session), and the figures of gatewayd's GET /stats that presence moves.
 * No I/O and no clock, so that each is unit-tested
 * (test/unit/test_bench_presence.c).
 *
 * User i of a run is "u<i>" (client.h); a batch is users first ..
 * first + count - 1, at most PRESVIEW_BATCH of them, gatewayd's limit for
 * one GET /presence.
 */
#ifndef BENCH_PRESVIEW_H
#define BENCH_PRESVIEW_H

#include <stddef.h>
#include <stdint.h>

#define PRESVIEW_BATCH 100

/* What one answer said of its batch. right + other + offline + missing is
 * the batch's count; stray is on top. */
typedef struct presview_tally {
    uint32_t right;   /* online with exactly one session */
    uint32_t other;   /* online with another count: 0 in the offline
                         grace, 2 while the old session is still counted */
    uint32_t offline; /* status offline */
    uint32_t missing; /* asked for, absent from the answer */
    uint32_t stray;   /* not asked for, asked twice, or malformed */
} presview_tally_t;

/*
 * Writes "/presence?userIds=u<first>,...,u<first+count-1>" into out.
 * Returns its length, or 0 when count is not 1 .. PRESVIEW_BATCH or the
 * path does not fit in cap (with its NUL).
 */
size_t presview_path(char *out, size_t cap, uint32_t first, uint32_t count);

/*
 * Checks an answer {"users":[{"userId","status","sessions"}...]} to the
 * batch first .. first + count - 1 into t. Returns 0, or -1 when it is not
 * such an answer (t is then left zeroed) or count is out of range.
 */
int presview_check(const char *body, size_t len, uint32_t first, uint32_t count,
                   presview_tally_t *t);

/* The figures of one instance's GET /stats "totals" that a presence run
 * reads: counters since its start, except sessions (a gauge). */
typedef struct presview_stats {
    double commands; /* presence_commands: scripts run in Redis */
    double changes;  /* presence_changes: session changes Redis applied */
    double failures; /* presence_failures */
    double online;   /* presence_online: users announced online */
    double offline;  /* presence_offline */
    double reaped;   /* presence_reaped */
    double lost;     /* presence_reports_lost: the relay queue was full */
    double sessions; /* identified sessions now */
} presview_stats_t;

/* Reads s from a /stats answer. Returns 0, or -1 when a figure is missing
 * or not a number (older gatewayd, presence not built in). */
int presview_stats_parse(const char *body, size_t len, presview_stats_t *s);

/* b - a, figure by figure (sessions: b's). */
presview_stats_t presview_stats_delta(const presview_stats_t *a,
                                      const presview_stats_t *b);

#endif
