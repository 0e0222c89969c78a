/*
 * Per-thread counters. Each counter has exactly one writing thread (its
 * worker), which updates it with relaxed load+store; the HTTP thread reads
 * with relaxed loads. One table describes every counter, and /stats and
 * /metrics are rendered from it.
 */
#ifndef GW_STATS_H
#define GW_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef enum gw_stat {
    GW_STAT_CONNECTIONS,
    GW_STAT_SESSIONS,
    GW_STAT_GUILDS,
    GW_STAT_FRAMES_IN,
    GW_STAT_FRAMES_OUT,
    GW_STAT_BYTES_IN,
    GW_STAT_BYTES_OUT,
    GW_STAT_RING_DROPS,
    GW_STAT_SLOW_CONSUMER_CLOSES,
    GW_STAT_HANDSHAKE_FAILURES,
    GW_STAT_AUTH_FAILURES,
    GW_STAT_EVENTS_IN,
    GW_STAT_ACCEPT_DROPS,
    GW_STAT_COUNT
} gw_stat_t;

typedef struct gw_stat_desc {
    const char *name; /* JSON key; Prometheus name is gatewayd_<name> */
    const char *help;
    int gauge; /* 1 = gauge, 0 = counter (_total) */
} gw_stat_desc_t;

extern const gw_stat_desc_t gw_stat_desc[GW_STAT_COUNT];

typedef struct gw_stats {
    _Atomic uint64_t v[GW_STAT_COUNT];
} gw_stats_t;

/* Writer side: only the owning thread calls these. */
static inline void gw_stat_add(gw_stats_t *s, gw_stat_t k, int64_t n)
{
    uint64_t cur = atomic_load_explicit(&s->v[k], memory_order_relaxed);
    atomic_store_explicit(&s->v[k], cur + (uint64_t)n, memory_order_relaxed);
}

static inline uint64_t gw_stat_get(const gw_stats_t *s, gw_stat_t k)
{
    return atomic_load_explicit(&s->v[k], memory_order_relaxed);
}

#endif
