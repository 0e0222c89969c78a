/*
 * The resume scenario's pure parts (docs/continuity.md): the messages a
 * client sends and reads to resume its session, what it keeps per session
 * to tell whether a dispatch was lost, repeated or out of order, and the
 * resume figures of gatewayd's GET /stats. No I/O and no clock, so that
 * each is unit-tested (test/unit/test_bench_resume.c).
 *
 * Event n of a run goes to guild guild0 + n % guilds (publish.h), and
 * carries its n in its data; the dispatch a client gets is
 *
 *     {"seq":K,"event":"bench","guildId":"g3","data":{"bts":T,"n":N,...}}
 *
 * The publisher's record says when each event was published (its "bts",
 * the coordinator's CLOCK_MONOTONIC in us; 0: not published yet). A
 * session's life runs from the client's `identified` (or its first) to
 * the end of the run, across any number of resumes; an invalid_session
 * ends it at the cut, and the identify that follows starts a new one. An
 * event is expected in a life when it went to the session's guild and was
 * published inside it: after the life began, before it ended.
 */
#ifndef BENCH_RESUME_H
#define BENCH_RESUME_H

#include <stddef.h>
#include <stdint.h>

#define RESUME_SID_LEN 32 /* a session id: 32 hex characters */

/* ---- messages --------------------------------------------------------- */

/*
 * Writes {"event":"resume","data":{"sessionId":sid,"token":token,
 * "seq":seq}} into out. Returns its length, or 0 when it does not fit in
 * cap (with its NUL).
 */
size_t resume_request(char *out, size_t cap, const char sid[RESUME_SID_LEN],
                      const char *token, size_t token_len, uint64_t seq);

/* The value of "sessionId" in a message (ready, identified, resumed):
 * 0 with its 32 characters in sid, or -1 when there is none of that
 * length. */
int resume_session_id(const uint8_t *data, size_t len,
                      char sid[RESUME_SID_LEN]);

/* The "replayed" count of a `resumed`: 0, or -1 when there is none. */
int resume_replayed(const uint8_t *data, size_t len, uint64_t *count);

/* What the resume scenario reads in a dispatch. */
typedef struct resume_dispatch {
    uint64_t seq; /* the session's sequence number */
    uint64_t bts; /* the publisher's send stamp, us */
    uint64_t n;   /* the event's number in the run */
} resume_dispatch_t;

/* Reads a dispatch that starts {"seq":K, and whose data has "bts" and then
 * "n". Returns 0, or -1 when one of them is missing. */
int resume_dispatch_parse(const uint8_t *data, size_t len,
                          resume_dispatch_t *d);

/* Where the token's characters lie in an identify message (what follows
 * "token":" up to the next quote): 0, or -1 when there is no token. */
int resume_token_span(const char *identify, size_t *off, size_t *len);

/* ---- one session's accounting ----------------------------------------- */

typedef struct resume_track {
    uint64_t last_seq;  /* newest seq of the current session; 0 = none */
    uint64_t next_n;    /* 1 + the newest event number received; 0 = none */
    uint64_t life_from; /* the current life's start, us; 0 = no life */
    uint8_t *seen;      /* a bit per event of the guild, by n / guilds */
    uint32_t nbits;     /* bits of seen; 0 = events are not tracked */
} resume_track_t;

/* What one dispatch showed, as bits. */
enum {
    RESUME_GAP = 1,      /* seq skipped ahead of last + 1 */
    RESUME_REPEAT = 2,   /* seq not above the last */
    RESUME_DUP = 4,      /* the event had been received already */
    RESUME_DISORDER = 8, /* received after a later event, not a dup */
    RESUME_FOREIGN = 16, /* not the guild's, or past the bitmap */
};

/* Sets t up for a guild that gets at most nbits events (0: seq only). */
void resume_track_init(resume_track_t *t, uint32_t nbits);
void resume_track_free(resume_track_t *t);

/* A new session begins its life at from_us (identified): its seq starts
 * over. Events already received stay received. */
void resume_track_begin(resume_track_t *t, uint64_t from_us);

/*
 * Notes a dispatch of seq with event n, for a session of guild `guild`
 * out of events spread over guilds from guild0. Returns the RESUME_* bits
 * it showed (0: in order, first time).
 */
unsigned resume_track_dispatch(resume_track_t *t, uint64_t seq, uint64_t n,
                               uint32_t guild, uint32_t guild0,
                               uint32_t guilds);

/*
 * The events of the session's guild published inside (from_us, to_us)
 * by the record (record[n] for n < sent; 0 is not published and not
 * counted) that t has not received.
 */
uint64_t resume_track_missing(const resume_track_t *t, const uint64_t *record,
                              uint64_t sent, uint32_t guild, uint32_t guild0,
                              uint32_t guilds, uint64_t from_us,
                              uint64_t to_us);

/* ---- gatewayd's side -------------------------------------------------- */

/* The resume figures of GET /stats "totals": counters since the start,
 * except parked, sessions and connections (gauges). */
typedef struct resume_stats {
    double parked;
    double resumed;
    double invalid;   /* resume_invalid */
    double replayed;  /* dispatches replayed */
    double overflows; /* resume_overflows */
    double expired;   /* resume_expired */
    double handed;    /* resume_handed_over */
    double sessions;
    double connections;
    double workers; /* entries of "workers" */
} resume_stats_t;

/* Reads s from a /stats answer. Returns 0, or -1 when a figure is missing
 * or not a number (a gatewayd without resume). */
int resume_stats_parse(const char *body, size_t len, resume_stats_t *s);

#endif
