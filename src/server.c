#include "gw/server.h"

#include "gw/acceptor.h"
#include "gw/alloc.h"
#include "gw/api.h"
#include "gw/broker.h"
#include "gw/error.h"
#include "gw/guard.h"
#include "gw/http.h"
#include "gw/log.h"
#include "gw/metrics.h"
#include "gw/peers.h"
#include "gw/tls.h"
#include "gw/uring.h"
#include "gw/worker.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* server.max_connections, or what the descriptor limit leaves for
 * clients; a cap over that is kept, with a warning. */
static uint32_t server_max_connections(const gw_config_t *cfg, int nworkers)
{
    uint32_t reserve,
        fit = gw_peers_default_cap(nworkers, GW_HTTP_MAX_CONNS, &reserve);

    if (cfg->max_connections == 0) {
        gw_info("server.max_connections: %u (the descriptor limit less %u "
                "reserved)",
                fit, reserve);
        return fit;
    }
    if (cfg->max_connections > fit)
        gw_warn("server.max_connections %u is over the %u the descriptor "
                "limit leaves after %u reserved: the process may run out of "
                "descriptors",
                cfg->max_connections, fit, reserve);
    return cfg->max_connections;
}

static int server_nworkers(const gw_config_t *cfg)
{
    long n = cfg->workers;

    if (n == 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n > GW_MAX_WORKERS)
        n = GW_MAX_WORKERS;
    return n > 0 ? (int)n : 1;
}

/* Loads the TLS pair before any thread starts: one that does not load
 * stops the start, with mbedtls's reason. */
static int server_tls(gw_server_t *srv, const gw_config_t *cfg)
{
    char err[512];

    if (!cfg->tls_enabled)
        return 0;
    srv->tls = gw_tls_new(cfg, (unsigned)srv->nworkers, err, sizeof(err));
    if (srv->tls != NULL)
        return 0;
    gw_error("%s", err);
    return GW_EINVAL;
}

/*
 * Which write path the workers take (server.io_uring), said in one line:
 * io_uring where the kernel lets the process have a ring (auto, on), else
 * sendmsg; "on" refuses to start without it. 0 or GW_EINVAL (logged).
 */
static int server_write_path(gw_server_t *srv, const gw_config_t *cfg)
{
    char why[128];

    srv->io_uring = 0;
    if (strcmp(cfg->io_uring, "off") == 0) {
        gw_info("write path: sendmsg (server.io_uring = off)");
        return 0;
    }
    if (gw_uring_probe(why, sizeof(why)) == 0) {
        srv->io_uring = 1;
        gw_info("write path: io_uring (server.io_uring = %s)", cfg->io_uring);
        return 0;
    }
    if (strcmp(cfg->io_uring, "on") == 0) {
        gw_error("server.io_uring = on, but io_uring is unusable here: %s; "
                 "set it to auto or off to write with sendmsg",
                 why);
        return GW_EINVAL;
    }
    gw_info("write path: sendmsg (io_uring is unusable here: %s)", why);
    return 0;
}

/*
 * Order matters: TLS is loaded first (nothing is started if it cannot
 * be), then the broker is created (the workers' relay queues wake
 * it), then the workers (the acceptor and the broker push into their
 * queues), then the acceptor; the broker's thread and links start last.
 */
int gw_server_start(gw_server_t *srv, const gw_config_t *cfg)
{
    int rc = 0;

    srv->cfg = cfg;
    srv->start_ms = gw_now_ms();
    atomic_init(&srv->draining, 0);
    srv->nworkers = server_nworkers(cfg);
    if ((rc = server_write_path(srv, cfg)) != 0)
        return rc;
    if ((rc = server_tls(srv, cfg)) != 0)
        return rc;
    srv->broker = gw_broker_create(srv, gw_api_handle);
    if (srv->broker == NULL) {
        if (srv->tls != NULL)
            gw_tls_free(srv->tls);
        srv->tls = NULL;
        return GW_EIO;
    }
    /* Always there: a SIGHUP may turn the limit on. */
    srv->peers = gw_peers_new(server_max_connections(cfg, srv->nworkers));
    srv->guard = gw_guard_new();
    srv->workers = gw_calloc((size_t)srv->nworkers, sizeof(*srv->workers));
    for (int i = 0; i < srv->nworkers; i++)
        srv->workers[i] = gw_worker_start(srv, i);
    srv->acceptor = gw_acceptor_start(srv);
    gw_broker_run(srv->broker);
    if (srv->acceptor == NULL) {
        gw_server_stop(srv);
        return GW_EIO;
    }
    if (srv->tls != NULL)
        gw_info("gatewayd listening: tls websocket %s:%d", cfg->bind,
                cfg->tls_port);
    gw_info("gatewayd listening: websocket %s:%d, http %s:%d, %d workers",
            cfg->bind, cfg->ws_port, cfg->bind, cfg->http_port, srv->nworkers);
    return rc;
}

void gw_server_reconfigure(gw_server_t *srv, const gw_config_t *cfg)
{
    char err[512];

    if (srv->tls != NULL) {
        if (gw_tls_reload(srv->tls, cfg, err, sizeof(err)) == 0)
            gw_info("SIGHUP: TLS certificate %s loaded", cfg->tls_cert_file);
        else
            gw_error("SIGHUP: %s; the TLS certificate and key are unchanged",
                     err);
    }
    for (int i = 0; i < srv->nworkers; i++)
        gw_worker_reconfigure(srv->workers[i], cfg);
    gw_broker_reconfigure(srv->broker, cfg);
}

void gw_server_drain(gw_server_t *srv)
{
    gw_acceptor_pause(srv->acceptor);
    atomic_store(&srv->draining, 1);
    for (int i = 0; i < srv->nworkers; i++)
        gw_worker_drain(srv->workers[i]);
    gw_info("draining %llu connections over %u ms",
            (unsigned long long)gw_server_connections(srv), srv->cfg->drain_ms);
}

uint64_t gw_server_connections(const gw_server_t *srv)
{
    return gw_metrics_total(srv, GW_STAT_CONNECTIONS);
}

uint64_t gw_server_handoffs_waiting(const gw_server_t *srv)
{
    return gw_metrics_total(srv, GW_STAT_HANDOFFS_WAITING);
}

/*
 * Producers stop before the queues they feed: the acceptor, then the
 * broker's ingress (quiesce), then the workers, and the broker last, as it
 * consumes the workers' relay queues.
 */
void gw_server_stop(gw_server_t *srv)
{
    atomic_store(&srv->draining, 1);
    if (srv->acceptor != NULL)
        gw_acceptor_stop(srv->acceptor);
    gw_broker_quiesce(srv->broker);
    for (int i = 0; i < srv->nworkers; i++)
        gw_worker_stop(srv->workers[i]);
    gw_broker_stop(srv->broker);
    for (int i = 0; i < srv->nworkers; i++)
        gw_worker_free(srv->workers[i]);
    free(srv->workers);
    if (srv->tls != NULL)
        gw_tls_free(srv->tls);
    srv->tls = NULL;
    srv->workers = NULL;
    gw_peers_free(srv->peers);
    srv->peers = NULL;
    gw_guard_free(srv->guard);
    srv->guard = NULL;
    srv->broker = NULL;
    srv->acceptor = NULL;
    srv->nworkers = 0;
}
