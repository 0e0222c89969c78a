/*
 * A worker thread: one libuv loop that exclusively owns its connections,
 * their WebSocket state, timers and write rings, and the worker-local
 * guild and user indexes. Other threads reach it only through its queues.
 */
#ifndef GW_WORKER_H
#define GW_WORKER_H

#include "gw/jwt.h"
#include "gw/log.h"
#include "gw/queue.h"
#include "gw/ring.h"
#include "gw/server.h"
#include "gw/stats.h"
#include "gw/wheel.h"

#include <ck_hs.h>
#include <stdint.h>
#include <uv.h>
#include <wslay/wslay.h>

typedef struct gw_conn gw_conn_t;

#define GW_READ_BUF                                                            \
    65536 /* one per worker: reads are consumed in the callback */

struct gw_worker {
    int id;
    gw_server_t *srv;       /* borrowed */
    const gw_config_t *cfg; /* borrowed, read-only: the latest snapshot */
    _Atomic(const gw_config_t *) next_cfg; /* from a SIGHUP, not yet taken */
    uv_thread_t thread;
    uv_loop_t loop;
    gw_wake_t wake;      /* new fds, events, stop */
    uv_prepare_t flush;  /* writes pending output before polling */
    uv_timer_t tick;     /* advances the wheel */
    gw_queue_t fds;      /* acceptor -> worker: accepted sockets */
    gw_queue_t events;   /* broker -> worker: gw_event_t */
    gw_queue_t relays;   /* worker -> broker: gw_relay_t */
    atomic_int stopping; /* set by the main thread */
    atomic_int drain;    /* set by the main thread: start draining */
    int draining;        /* the worker's own view, once it has started */
    gw_wheel_t wheel;    /* per-connection deadlines */
    gw_conn_t *pending;  /* connections with output to write */
    ck_hs_t guilds;      /* id -> gw_guild_t */
    ck_hs_t users;       /* id -> gw_user_t */
    unsigned long hs_seed;
    gw_ring_pool_t ring_pool;
    wslay_event_context_ptr *ws_pool; /* idle wslay contexts */
    unsigned ws_pool_len;
    struct wslay_event_callbacks ws_callbacks;
    gw_conn_t *cur;    /* connection wslay is running for */
    const uint8_t *in; /* input wslay has not consumed yet */
    size_t in_len;
    gw_jwt_verifier_t jwt;
    uint64_t next_conn_id;
    gw_log_limit_t slow_log;   /* slow-consumer closes */
    gw_log_limit_t flood_log;  /* rate-limited closes */
    gw_log_limit_t reject_log; /* rejected or timed-out upgrades */
    gw_stats_t stats;
    uint8_t rbuf[GW_READ_BUF];
};

/* Creates worker `id` and starts its thread. */
gw_worker_t *gw_worker_start(gw_server_t *srv, int id);

/*
 * Asks the worker to close every connection with 4011 and stop, then joins
 * its thread. Called from the main thread.
 */
void gw_worker_stop(gw_worker_t *w);

/*
 * Asks the worker to close its connections with 4011, spread evenly over
 * cfg->drain_ms, and to take no new ones. Main thread.
 */
void gw_worker_drain(gw_worker_t *w);

/*
 * Hands the worker a new configuration snapshot (SIGHUP), which it takes at
 * its next wake-up: cfg must outlive the worker. Main thread.
 */
void gw_worker_reconfigure(gw_worker_t *w, const gw_config_t *cfg);

/*
 * Frees a stopped worker, with the relays its queue still holds: called once
 * the broker thread, that queue's consumer, has ended too.
 */
void gw_worker_free(gw_worker_t *w);

/* Milliseconds of the worker loop's cached clock. */
static inline uint64_t gw_worker_now(gw_worker_t *w)
{
    return uv_now(&w->loop);
}

/*
 * Hands a client's typing.start to the broker (copies the strings).
 * Returns 0 or GW_EFULL. Worker thread only.
 */
int gw_worker_relay_typing(gw_worker_t *w, const char *user, const char *guild,
                           const char *channel);

/* Queues conn for a write before the loop next polls. Worker thread only. */
void gw_worker_want_flush(gw_worker_t *w, gw_conn_t *c);

#endif
