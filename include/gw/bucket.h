/*
 * A token bucket: at most `burst` tokens, refilled at `rate` tokens a
 * second; each event takes one. The level is kept in thousandths of a
 * token, so that any rate refills smoothly in integer arithmetic. Pure:
 * the caller passes the time.
 */
#ifndef GW_BUCKET_H
#define GW_BUCKET_H

#include <stdint.h>

/* The most tokens a bucket can hold (its level must fit 32 bits). */
#define GW_BUCKET_MAX_BURST 1000000

typedef struct gw_bucket {
    uint64_t last_ms; /* when the level was last brought up to date */
    uint32_t level;   /* thousandths of a token */
} gw_bucket_t;

/* A full bucket at now_ms; burst at most GW_BUCKET_MAX_BURST. */
void gw_bucket_init(gw_bucket_t *b, uint64_t now_ms, uint32_t burst);

/* Refills for the time since the last call at rate (at least 1) tokens a
 * second, then takes one token: returns 1, or 0 when less than one token
 * is left (nothing is taken). */
int gw_bucket_take(gw_bucket_t *b, uint64_t now_ms, uint32_t rate,
                   uint32_t burst);

/*
 * A fixed window: at most `limit` events per window_ms, for limits that
 * must cost a session little (8 bytes: the window's start and its count,
 * in 32 bits of milliseconds; the unsigned difference is right across the
 * wrap for any window under 2^31 ms). Takes one event at now_ms: 1, or 0
 * when the window is full (nothing taken).
 */
int gw_window_take(uint32_t *since, uint32_t *count, uint32_t now_ms,
                   uint32_t window_ms, uint32_t limit);

#endif
