/*
 * Per-thread counters. Each counter has exactly one writing thread, which
 * updates it with a relaxed load and store; the HTTP thread reads with
 * relaxed loads. One table describes every counter and the kind of thread
 * that owns it, and /stats and /metrics are rendered from it.
 */
#ifndef GW_STATS_H
#define GW_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef enum gw_stat {
    /* worker */
    GW_STAT_CONNECTIONS,
    GW_STAT_SESSIONS,
    GW_STAT_GUILDS,
    GW_STAT_CONNECTS,
    GW_STAT_CLOSES,
    GW_STAT_FRAMES_IN,
    GW_STAT_FRAMES_OUT,
    GW_STAT_BYTES_IN,
    GW_STAT_BYTES_OUT,
    GW_STAT_RING_DROPS,
    GW_STAT_SLOW_CONSUMER_CLOSES,
    GW_STAT_RATE_LIMITED_CLOSES,
    GW_STAT_ADDRESS_LIMITED,
    GW_STAT_SHED_P2,
    GW_STAT_SHED_P3,
    GW_STAT_SHED_P4,
    GW_STAT_HANDSHAKE_FAILURES,
    GW_STAT_CAPACITY_REFUSED,        /* upgrades answered 503: the cap */
    GW_STAT_ORIGIN_REFUSED,          /* upgrades refused by allowed_origins */
    GW_STAT_TLS_HANDSHAKE_FAILURES,  /* TLS connections that never opened */
    GW_STAT_TLS_HANDSHAKES_DEFERRED, /* steps left for a later loop turn */
    GW_STAT_TLS_BUFFERS_RELEASED,    /* sessions whose record buffers'
                                        pages went back to the kernel */
    GW_STAT_PROXY_HEADER_FAILURES,   /* PROXY headers malformed or missing */
    GW_STAT_AUTH_FAILURES,
    GW_STAT_AUTH_LIMITED, /* identify/resume refused by the abuse limits */
    GW_STAT_EVENTS_IN,
    GW_STAT_TYPING_LIMITED,
    GW_STAT_RELAY_LIMITED,     /* upstream events over relay.limit */
    GW_STAT_RELAY_UNAVAILABLE, /* refused at once: RabbitMQ not up */
    GW_STAT_RELAY_OVERLOADED,  /* refused at once: too many unconfirmed */
    GW_STAT_SYNC_LIMITED,      /* sync_request over sync.limit */
    GW_STAT_PRESENCE_LOST,     /* presence reports the relay queue refused */
    GW_STAT_PARKED,            /* gauge: sessions waiting for a resume */
    GW_STAT_RESUMED,           /* resumes served */
    GW_STAT_RESUME_INVALID,    /* resumes answered invalid_session */
    GW_STAT_REPLAYED,          /* dispatches sent again by resumes */
    GW_STAT_RESUME_OVERFLOWS,  /* parked sessions lost: too much arrived */
    GW_STAT_RESUME_EXPIRED,    /* parked sessions past their window */
    GW_STAT_RESUME_HANDED,     /* resuming connections sent to their worker */
    GW_STAT_RESUME_HAND_OFF_FAILED, /* and those closed instead */
    GW_STAT_HANDOFFS_WAITING,  /* gauge: drained sessions not yet claimed */
    GW_STAT_HANDOFFS_SERVED,   /* drained sessions sent to their claimer */
    GW_STAT_HANDOFFS_RESTORED, /* sessions of another instance resumed */
    GW_STAT_HANDOFFS_FAILED,   /* and those answered invalid_session */
    GW_STAT_HANDOFF_OVERLAP,   /* held dispatches the snapshot had too */
    GW_STAT_URING_SUBMITS,     /* io_uring submissions (one per turn) */
    GW_STAT_URING_SENDS,       /* sends submitted through io_uring */
    GW_STAT_URING_PARTIAL,     /* of those, completed short and resumed */
    GW_STAT_QUEUE_HWM,         /* written by the broker, the queue's producer */
    /* acceptor */
    GW_STAT_ACCEPT_DROPS,
    GW_STAT_ACCEPT_REFUSED,  /* closed at accept: past the connection cap */
    GW_STAT_PROXY_UNTRUSTED, /* closed at accept: not a trusted proxy */
    /* broker */
    GW_STAT_EVENTS_HTTP,
    GW_STAT_EVENTS_REDIS,
    GW_STAT_EVENTS_AMQP,
    GW_STAT_PARSE_FAILURES,
    GW_STAT_DEAD_LETTERED,
    GW_STAT_OWN_ECHOES,
    GW_STAT_TYPING_RELAYED,
    GW_STAT_REDIS_PUBLISH_FAILURES,
    GW_STAT_RELAY_PUBLISHED,   /* upstream events published to RabbitMQ */
    GW_STAT_RELAY_CONFIRMED,   /* and confirmed by it (basic.ack) */
    GW_STAT_RELAY_NACKED,      /* refused by it (basic.nack, or returned) */
    GW_STAT_RELAY_LOST,        /* unconfirmed when the link went down */
    GW_STAT_RELAY_REFUSED,     /* not published: the link refused it */
    GW_STAT_RELAY_UNCONFIRMED, /* gauge: published, not yet confirmed */
    GW_STAT_SYNC_HITS,         /* sync_request answered from Redis */
    GW_STAT_SYNC_MISSES,       /* sync_request sent up: no cached copy */
    GW_STAT_SYNC_FAILURES,     /* sync_request answered unavailable */
    GW_STAT_PRESENCE_ONLINE,   /* presence.update online announced */
    GW_STAT_PRESENCE_OFFLINE,  /* presence.update offline announced */
    GW_STAT_PRESENCE_REAPED,   /* offline because their instance died */
    GW_STAT_PRESENCE_CHANGES,  /* session changes Redis has applied */
    GW_STAT_PRESENCE_COMMANDS, /* presence scripts run in Redis */
    GW_STAT_PRESENCE_FAILURES, /* presence scripts that failed */
    GW_STAT_PRESENCE_CENSUSES, /* worker censuses asked for */
    GW_STAT_HANDOFF_REDIS_FAILURES, /* handoff commands Redis failed */
    GW_STAT_EVENTS_REDIS_PLAIN,     /* messages of the plain channel */
    GW_STAT_EVENTS_REDIS_GUILD,     /* of guild channels */
    GW_STAT_EVENTS_REDIS_USER,      /* of user channels */
    GW_STAT_EVENTS_REDIS_SESSION,   /* of session channels */
    GW_STAT_REDIS_MISMATCHES,   /* envelopes not for their channel's target */
    GW_STAT_REDIS_PUBLISHES,    /* PUBLISH commands, one per channel */
    GW_STAT_REDIS_SUBSCRIBES,   /* SUBSCRIBE commands sent */
    GW_STAT_REDIS_UNSUBSCRIBES, /* UNSUBSCRIBE commands sent */
    GW_STAT_REDIS_CHANNELS,     /* gauge: channels Redis says we hold */
    GW_STAT_REDIS_CLUSTER_DISCOVERIES, /* CLUSTER SLOTS answered */
    GW_STAT_REDIS_CLUSTER_MOVED,       /* slots Redis said had moved */
    GW_STAT_REDIS_CLUSTER_LOST, /* SPUBLISHes lost: no shard up for them */
    GW_STAT_INTEREST_TARGETS,   /* gauge: targets wanted, lingering too */
    GW_STAT_INTEREST_LINGERING, /* gauge: of those, lingering */
    GW_STAT_AMQP_BINDS,         /* target bindings RabbitMQ made */
    GW_STAT_AMQP_UNBINDS,       /* and removed */
    GW_STAT_AMQP_BIND_FAILURES, /* refused, or a pattern too long */
    GW_STAT_AMQP_BIND_PENDING,  /* gauge: binding methods not yet answered */
    GW_STAT_AMQP_MISMATCHES,    /* deliveries not for their key's target */
    GW_STAT_HANDOFF_CONTROL,    /* drain handoff control messages read */
    GW_STAT_SUBSCRIBE_HELD,     /* answers held for a new target's channel */
    GW_STAT_SUBSCRIBE_LATE,     /* and those sent at the bound instead */
    GW_STAT_COUNT
} gw_stat_t;

typedef enum gw_stat_owner {
    GW_OWNER_WORKER,
    GW_OWNER_ACCEPTOR,
    GW_OWNER_BROKER,
} gw_stat_owner_t;

typedef struct gw_stat_desc {
    const char *name; /* JSON key; Prometheus name is gatewayd_<name> */
    const char *help;
    int gauge; /* 1 = gauge, 0 = counter (_total) */
    gw_stat_owner_t owner;
} gw_stat_desc_t;

extern const gw_stat_desc_t gw_stat_desc[GW_STAT_COUNT];

/* Fan-out latency buckets (upper bounds in microseconds), then +Inf. */
#define GW_LAT_BUCKETS 10
extern const uint32_t gw_lat_bounds_us[GW_LAT_BUCKETS - 1];

/*
 * WebSocket closes by code: the codes a client acts on have a slot each
 * (gw_close_codes), every other code shares the last slot ("other"). 1006
 * stands for a connection that ended without a close frame, as RFC 6455
 * says a client reports it.
 */
#define GW_CLOSE_SLOTS 17
extern const uint16_t gw_close_codes[GW_CLOSE_SLOTS - 1];

typedef struct gw_stats {
    _Atomic uint64_t v[GW_STAT_COUNT];
    _Atomic uint64_t lat[GW_LAT_BUCKETS]; /* not cumulative */
    _Atomic uint64_t lat_sum_us;
    _Atomic uint64_t closes_by_code[GW_CLOSE_SLOTS]; /* WebSocket closes */
} gw_stats_t;

/* Writer side: only the owning thread calls these. */
static inline void gw_stat_add(gw_stats_t *s, gw_stat_t k, int64_t n)
{
    uint64_t cur = atomic_load_explicit(&s->v[k], memory_order_relaxed);
    atomic_store_explicit(&s->v[k], cur + (uint64_t)n, memory_order_relaxed);
}

static inline void gw_stat_set(gw_stats_t *s, gw_stat_t k, uint64_t v)
{
    atomic_store_explicit(&s->v[k], v, memory_order_relaxed);
}

static inline void gw_stat_max(gw_stats_t *s, gw_stat_t k, uint64_t v)
{
    if (v > atomic_load_explicit(&s->v[k], memory_order_relaxed))
        atomic_store_explicit(&s->v[k], v, memory_order_relaxed);
}

static inline uint64_t gw_stat_get(const gw_stats_t *s, gw_stat_t k)
{
    return atomic_load_explicit(&s->v[k], memory_order_relaxed);
}

/* Records one fan-out latency sample. Writer side. */
void gw_stats_latency(gw_stats_t *s, uint64_t us);

/* The slot of code in closes_by_code: its index in gw_close_codes, or
 * GW_CLOSE_SLOTS - 1 for any other. */
int gw_stats_close_slot(uint16_t code);

/*
 * Counts the end of a WebSocket connection by the code of whoever closed
 * first (as gw_ws_cb_t's on_close says it: sent, else received, both 0
 * without a close frame). Writer side; once per close, never per message.
 */
void gw_stats_close(gw_stats_t *s, uint16_t sent, uint16_t received);

#endif
