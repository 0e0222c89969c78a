#include "gw/server.h"

#include "gw/acceptor.h"
#include "gw/alloc.h"
#include "gw/broker.h"
#include "gw/error.h"
#include "gw/log.h"
#include "gw/worker.h"

#include <stdlib.h>
#include <unistd.h>

uint64_t gw_now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static int server_nworkers(const gw_config_t *cfg)
{
    long n = cfg->workers;

    if (n == 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/*
 * Order matters: workers first (the others push into their queues), then
 * the acceptor, then the broker (its HTTP API reads everyone's counters).
 */
int gw_server_start(gw_server_t *srv, const gw_config_t *cfg)
{
    srv->cfg = cfg;
    srv->start_ms = gw_now_ms();
    atomic_init(&srv->draining, 0);
    srv->nworkers = server_nworkers(cfg);
    srv->workers = gw_calloc((size_t)srv->nworkers, sizeof(*srv->workers));
    for (int i = 0; i < srv->nworkers; i++)
        srv->workers[i] = gw_worker_start(srv, i);
    srv->acceptor = gw_acceptor_start(srv);
    if (srv->acceptor == NULL)
        goto Error;
    srv->broker = gw_broker_start(srv);
    if (srv->broker == NULL)
        goto Error;
    gw_info("gatewayd listening: websocket %s:%d, http %s:%d, %d workers",
            cfg->bind, cfg->ws_port, cfg->bind, cfg->http_port, srv->nworkers);
    return 0;
Error:
    gw_server_stop(srv);
    return GW_EIO;
}

/* The reverse order: producers stop before the queues they feed. */
void gw_server_stop(gw_server_t *srv)
{
    atomic_store(&srv->draining, 1);
    if (srv->broker != NULL)
        gw_broker_stop(srv->broker);
    if (srv->acceptor != NULL)
        gw_acceptor_stop(srv->acceptor);
    for (int i = 0; i < srv->nworkers; i++)
        gw_worker_stop(srv->workers[i]);
    free(srv->workers);
    srv->workers = NULL;
    srv->broker = NULL;
    srv->acceptor = NULL;
    srv->nworkers = 0;
}
