#include "gw/metrics.h"

#include "gw/acceptor.h"
#include "gw/worker.h"

#include <inttypes.h>

const gw_stat_desc_t gw_stat_desc[GW_STAT_COUNT] = {
    [GW_STAT_CONNECTIONS] = {"connections", "Open client connections.", 1},
    [GW_STAT_SESSIONS] = {"sessions", "Identified sessions.", 1},
    [GW_STAT_GUILDS] = {"guilds", "Guilds with members on the worker.", 1},
    [GW_STAT_FRAMES_IN] = {"frames_in", "Messages received from clients.", 0},
    [GW_STAT_FRAMES_OUT] = {"frames_out", "Messages queued to clients.", 0},
    [GW_STAT_BYTES_IN] = {"bytes_in", "Bytes read from clients.", 0},
    [GW_STAT_BYTES_OUT] = {"bytes_out", "Bytes written to clients.", 0},
    [GW_STAT_RING_DROPS] = {"ring_drops", "Queued frames dropped on overflow.",
                            0},
    [GW_STAT_SLOW_CONSUMER_CLOSES] = {"slow_consumer_closes",
                                      "Connections closed with 4010.", 0},
    [GW_STAT_HANDSHAKE_FAILURES] = {"handshake_failures",
                                    "Upgrades rejected or timed out.", 0},
    [GW_STAT_AUTH_FAILURES] = {"auth_failures", "Tokens rejected.", 0},
    [GW_STAT_EVENTS_IN] = {"events_in", "Backend events taken from the queue.",
                           0},
    [GW_STAT_ACCEPT_DROPS] = {"accept_drops",
                              "Sockets closed because a worker queue was full.",
                              0},
};

static const gw_stats_t *metrics_of(const gw_server_t *srv, int i)
{
    return i < srv->nworkers ? &srv->workers[i]->stats
                             : gw_acceptor_stats(srv->acceptor);
}

uint64_t gw_metrics_total(const gw_server_t *srv, gw_stat_t k)
{
    uint64_t sum = 0;

    for (int i = 0; i <= srv->nworkers; i++)
        sum += gw_stat_get(metrics_of(srv, i), k);
    return sum;
}

static void metrics_json_object(gw_buf_t *out, const gw_server_t *srv, int who)
{
    for (int k = 0; k < GW_STAT_COUNT; k++) {
        uint64_t v = who < 0 ? gw_metrics_total(srv, k)
                             : gw_stat_get(metrics_of(srv, who), k);
        gw_buf_printf(out, ",\"%s\":%" PRIu64, gw_stat_desc[k].name, v);
    }
}

void gw_metrics_json(const gw_server_t *srv, gw_buf_t *out)
{
    gw_buf_printf(out, "{\"workers\":[");
    for (int i = 0; i < srv->nworkers; i++) {
        gw_buf_printf(out, "%s{\"id\":%d", i ? "," : "", i);
        metrics_json_object(out, srv, i);
        gw_buf_printf(out, "}");
    }
    gw_buf_printf(out, "],\"acceptor\":{\"id\":\"acceptor\"");
    metrics_json_object(out, srv, srv->nworkers);
    gw_buf_printf(out, "},\"totals\":{\"workers\":%d", srv->nworkers);
    metrics_json_object(out, srv, -1);
    gw_buf_printf(out, "}}\n");
}

void gw_metrics_prometheus(const gw_server_t *srv, gw_buf_t *out)
{
    for (int k = 0; k < GW_STAT_COUNT; k++) {
        const gw_stat_desc_t *d = &gw_stat_desc[k];
        const char *suffix = d->gauge ? "" : "_total";
        gw_buf_printf(out, "# HELP gatewayd_%s%s %s\n# TYPE gatewayd_%s%s %s\n",
                      d->name, suffix, d->help, d->name, suffix,
                      d->gauge ? "gauge" : "counter");
        for (int i = 0; i < srv->nworkers; i++)
            gw_buf_printf(out, "gatewayd_%s%s{worker=\"%d\"} %" PRIu64 "\n",
                          d->name, suffix, i,
                          gw_stat_get(metrics_of(srv, i), k));
        if (k == GW_STAT_ACCEPT_DROPS)
            gw_buf_printf(out,
                          "gatewayd_%s%s{worker=\"acceptor\"} %" PRIu64 "\n",
                          d->name, suffix,
                          gw_stat_get(metrics_of(srv, srv->nworkers), k));
    }
}
