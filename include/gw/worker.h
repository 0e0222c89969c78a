/*
 * A worker thread: one libuv loop that exclusively owns its connections,
 * their WebSocket state, timers and write rings, and the worker-local
 * guild and user indexes. Other threads reach it only through its queues.
 */
#ifndef GW_WORKER_H
#define GW_WORKER_H

#include "gw/index.h"
#include "gw/proto.h"
#include "gw/queue.h"
#include "gw/server.h"
#include "gw/stats.h"
#include "gw/tls.h"
#include "gw/wake.h"
#include "gw/ws.h"

#include <stdint.h>
#include <uv.h>

/*
 * The layers a worker stacks, each the owner of the one beneath's
 * callbacks: proto (sessions) over ws (connections) over transport
 * (sockets and write rings). The worker feeds them sockets and events.
 */
struct gw_worker {
    int id;
    gw_server_t *srv;       /* borrowed */
    const gw_config_t *cfg; /* borrowed, read-only: the latest snapshot */
    _Atomic(const gw_config_t *) next_cfg; /* from a SIGHUP, not yet taken */
    uv_thread_t thread;
    uv_loop_t loop;
    gw_wake_t wake;           /* new fds, events, stop */
    uv_prepare_t flush;       /* writes pending output before polling */
    uv_timer_t tick;          /* advances the deadlines */
    gw_queue_t fds;           /* acceptor -> worker: accepted sockets */
    gw_queue_t events;        /* broker -> worker: gw_event_t */
    gw_queue_t relays;        /* worker -> broker: gw_relay_t */
    atomic_int stopping;      /* set by the main thread */
    atomic_int drain;         /* set by the main thread: start draining */
    atomic_int presence_lost; /* a presence report did not fit the relay
                                 queue: the broker takes a census */
    uint32_t census;          /* the last census the broker asked for */
    int draining;             /* the worker's own view, once it has started */
    gw_ws_loop_t ws;          /* the connections, and their transports */
    gw_tls_loop_t tls;        /* this worker's share of TLS, when enabled */
    gw_proto_t proto;         /* the sessions */
    gw_index_t index;         /* guild and user routing tables */
    gw_stats_t stats;
    /* What the index said this turn of targets begun and ended here, not
     * yet handed to the broker (owned, with the ids). */
    gw_interest_change_t *interest;
    size_t ninterest, interest_cap;
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

#endif
