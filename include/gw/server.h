/*
 * The process: configuration and the threads that share it. Threads meet
 * only at SPSC queues and atomics; everything else here is read-only once
 * the threads run.
 */
#ifndef GW_SERVER_H
#define GW_SERVER_H

#include "gw/config.h"

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#define GW_MAX_WORKERS 256 /* the bound of server.workers */

typedef struct gw_worker gw_worker_t;
typedef struct gw_acceptor gw_acceptor_t;
typedef struct gw_broker gw_broker_t;
typedef struct gw_peers gw_peers_t;
typedef struct gw_guard gw_guard_t;
typedef struct gw_tls gw_tls_t;

typedef struct gw_server {
    const gw_config_t *cfg; /* borrowed; outlives the server. The startup
                               configuration: what only a restart changes */
    int nworkers;
    gw_worker_t **workers;   /* owned */
    gw_acceptor_t *acceptor; /* owned */
    gw_broker_t *broker;     /* owned */
    gw_peers_t *peers;       /* owned: server.max_connections(_per_ip) */
    gw_guard_t *guard;       /* owned: auth.identify_* and auth.fail_* */
    gw_tls_t *tls;           /* owned: wss:// (tls.enabled), or NULL */
    uint64_t start_ms;       /* uv_hrtime at start, in ms */
    atomic_int draining;     /* set once on SIGTERM */
    int io_uring; /* workers write plain TCP through io_uring (probed at
                     start, server.io_uring), else with sendmsg */
} gw_server_t;

/* Starts every thread. Returns 0 or a negative gw_err_t (logged). */
int gw_server_start(gw_server_t *srv, const gw_config_t *cfg);

/*
 * Hands every worker and the broker a new configuration snapshot (SIGHUP);
 * each takes it at its next wake-up. The TLS certificate and key are
 * loaded again here: a pair that does not load is logged and the old one
 * stays. cfg must outlive the server, and may
 * differ from srv->cfg only in options gw_config_keep_restart_only lets
 * through. Main thread.
 */
void gw_server_reconfigure(gw_server_t *srv, const gw_config_t *cfg);

/*
 * Starts a drain (SIGTERM): /health answers 503, the listening socket
 * closes, and every worker closes its clients with 4011 spread over
 * cfg->drain_ms. The caller waits, then calls gw_server_stop.
 */
void gw_server_drain(gw_server_t *srv);

/* Open client connections, all workers together. Any thread. */
uint64_t gw_server_connections(const gw_server_t *srv);

/* Drained sessions offered to other instances and not yet claimed, all
 * workers together (docs/continuity.md section 3). Any thread. */
uint64_t gw_server_handoffs_waiting(const gw_server_t *srv);

/* Stops accepting, closes every client with 4011, joins the threads. */
void gw_server_stop(gw_server_t *srv);

/* Milliseconds of a monotonic clock. */
static inline uint64_t gw_now_ms(void)
{
    return uv_hrtime() / 1000000;
}

#endif
