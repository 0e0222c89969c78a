#include "gw/metrics.h"

#include "gw/acceptor.h"
#include "gw/broker.h"
#include "gw/worker.h"

#include <inttypes.h>

// clang-format off
#define W GW_OWNER_WORKER
#define A GW_OWNER_ACCEPTOR
#define B GW_OWNER_BROKER
const gw_stat_desc_t gw_stat_desc[GW_STAT_COUNT] = {
    [GW_STAT_CONNECTIONS] = {"connections", "Open client connections.", 1, W},
    [GW_STAT_SESSIONS] = {"sessions", "Identified sessions.", 1, W},
    [GW_STAT_GUILDS] = {"guilds", "Guilds with members on the worker.", 1, W},
    [GW_STAT_FRAMES_IN] = {"frames_in", "Messages received from clients.", 0, W},
    [GW_STAT_FRAMES_OUT] = {"frames_out", "Messages queued to clients.", 0, W},
    [GW_STAT_BYTES_IN] = {"bytes_in", "Bytes read from clients.", 0, W},
    [GW_STAT_BYTES_OUT] = {"bytes_out", "Bytes written to clients.", 0, W},
    [GW_STAT_RING_DROPS] = {"ring_drops",
        "Queued frames dropped when a slow consumer was closed.", 0, W},
    [GW_STAT_SLOW_CONSUMER_CLOSES] = {"slow_consumer_closes",
        "Connections closed with 4010.", 0, W},
    [GW_STAT_RATE_LIMITED_CLOSES] = {"rate_limited_closes",
        "Sessions closed with 4008: over session.event_rate.", 0, W},
    [GW_STAT_ADDRESS_LIMITED] = {"address_limited",
        "Connections refused with 429: over server.max_connections_per_ip.",
        0, W},
    [GW_STAT_SHED_P2] = {"shed_priority_2",
        "Priority-2 events not queued: ring 7/8 full.", 0, W},
    [GW_STAT_SHED_P3] = {"shed_priority_3",
        "Priority-3 events not queued: ring 3/4 full.", 0, W},
    [GW_STAT_SHED_P4] = {"shed_priority_4",
        "Priority-4 events not queued: ring half full.", 0, W},
    [GW_STAT_HANDSHAKE_FAILURES] = {"handshake_failures",
        "Upgrades rejected or timed out.", 0, W},
    [GW_STAT_AUTH_FAILURES] = {"auth_failures", "Tokens rejected.", 0, W},
    [GW_STAT_EVENTS_IN] = {"events_in",
        "Events taken from the broker queue.", 0, W},
    [GW_STAT_TYPING_LIMITED] = {"typing_rate_limited",
        "typing.start refused by the per-session limit.", 0, W},
    [GW_STAT_RELAY_LIMITED] = {"relay_rate_limited",
        "Client events for the backends refused by relay.limit.", 0, W},
    [GW_STAT_RELAY_UNAVAILABLE] = {"relay_refused_unavailable",
        "Client events for the backends refused: RabbitMQ not up.", 0, W},
    [GW_STAT_RELAY_OVERLOADED] = {"relay_refused_overloaded",
        "Client events for the backends refused: relay.max_unconfirmed "
        "reached, or the relay queue full.", 0, W},
    [GW_STAT_SYNC_LIMITED] = {"sync_rate_limited",
        "sync_request refused by sync.limit.", 0, W},
    [GW_STAT_QUEUE_HWM] = {"queue_depth_max",
        "Highest depth of the worker's event queue.", 1, W},
    [GW_STAT_ACCEPT_DROPS] = {"accept_drops",
        "Sockets closed because a worker queue was full.", 0, A},
    [GW_STAT_EVENTS_HTTP] = {"events_http", "Events from POST /publish.", 0, B},
    [GW_STAT_EVENTS_REDIS] = {"events_redis", "Events from Redis.", 0, B},
    [GW_STAT_EVENTS_AMQP] = {"events_amqp", "Events from RabbitMQ.", 0, B},
    [GW_STAT_PARSE_FAILURES] = {"parse_failures",
        "Broker events that were not a valid envelope.", 0, B},
    [GW_STAT_DEAD_LETTERED] = {"dead_lettered",
        "RabbitMQ deliveries rejected to the dead-letter exchange.", 0, B},
    [GW_STAT_OWN_ECHOES] = {"own_echoes",
        "Redis events of this instance, already delivered, skipped.", 0, B},
    [GW_STAT_TYPING_RELAYED] = {"typing_relayed",
        "typing.start events relayed from clients.", 0, B},
    [GW_STAT_REDIS_PUBLISH_FAILURES] = {"redis_publish_failures",
        "Events not published to Redis: the link was down or stalled.", 0, B},
    [GW_STAT_RELAY_PUBLISHED] = {"relay_published",
        "Client events published to the upstream exchange.", 0, B},
    [GW_STAT_RELAY_CONFIRMED] = {"relay_confirmed",
        "Upstream publishes confirmed by RabbitMQ.", 0, B},
    [GW_STAT_RELAY_NACKED] = {"relay_nacked",
        "Upstream publishes RabbitMQ refused (nack); the client was told.",
        0, B},
    [GW_STAT_RELAY_LOST] = {"relay_lost",
        "Upstream publishes unconfirmed when the link went down; the client "
        "was told.", 0, B},
    [GW_STAT_RELAY_REFUSED] = {"relay_refused_at_publish",
        "Client events the RabbitMQ link refused when the broker published "
        "them (it went down or filled up after the worker asked); the client "
        "was told.", 0, B},
    [GW_STAT_RELAY_UNCONFIRMED] = {"relay_unconfirmed",
        "Upstream publishes awaiting RabbitMQ's confirm.", 1, B},
    [GW_STAT_SYNC_HITS] = {"sync_hits",
        "sync_request answered with the copy cached in Redis.", 0, B},
    [GW_STAT_SYNC_MISSES] = {"sync_misses",
        "sync_request with no cached copy, sent up to the backends.", 0, B},
    [GW_STAT_SYNC_FAILURES] = {"sync_failures",
        "sync_request answered unavailable: Redis down or failing, or a "
        "cached value that is not a JSON object.", 0, B},
};
#undef W
#undef A
#undef B
// clang-format on

const uint32_t gw_lat_bounds_us[GW_LAT_BUCKETS - 1] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 100000};

void gw_stats_latency(gw_stats_t *s, uint64_t us)
{
    int i = 0;

    while (i < GW_LAT_BUCKETS - 1 && us > gw_lat_bounds_us[i])
        i++;
    atomic_store_explicit(
        &s->lat[i], atomic_load_explicit(&s->lat[i], memory_order_relaxed) + 1,
        memory_order_relaxed);
    atomic_store_explicit(
        &s->lat_sum_us,
        atomic_load_explicit(&s->lat_sum_us, memory_order_relaxed) + us,
        memory_order_relaxed);
}

/* Every thread with counters: the workers, then the acceptor and broker. */
typedef struct metrics_thread {
    const char *label;
    int id;
    gw_stat_owner_t owner;
    const gw_stats_t *stats;
} metrics_thread_t;

static int metrics_threads(const gw_server_t *srv, metrics_thread_t *t)
{
    int n = 0;

    for (int i = 0; i < srv->nworkers; i++)
        t[n++] = (metrics_thread_t){NULL, i, GW_OWNER_WORKER,
                                    &srv->workers[i]->stats};
    t[n++] = (metrics_thread_t){"acceptor", -1, GW_OWNER_ACCEPTOR,
                                gw_acceptor_stats(srv->acceptor)};
    t[n++] = (metrics_thread_t){"broker", -1, GW_OWNER_BROKER,
                                gw_broker_stats(srv->broker)};
    return n;
}

uint64_t gw_metrics_total(const gw_server_t *srv, gw_stat_t k)
{
    metrics_thread_t t[GW_MAX_WORKERS + 2];
    int n = metrics_threads(srv, t);
    uint64_t sum = 0;

    for (int i = 0; i < n; i++)
        if (t[i].owner == gw_stat_desc[k].owner)
            sum += gw_stat_get(t[i].stats, k);
    return sum;
}

/* ,"name":value for each counter of t, or every total when t is NULL. */
static void metrics_json_fields(gw_buf_t *out, const gw_server_t *srv,
                                const metrics_thread_t *t)
{
    for (int k = 0; k < GW_STAT_COUNT; k++) {
        if (t != NULL && gw_stat_desc[k].owner != t->owner)
            continue;
        gw_buf_printf(out, ",\"%s\":%" PRIu64, gw_stat_desc[k].name,
                      t ? gw_stat_get(t->stats, k) : gw_metrics_total(srv, k));
    }
}

void gw_metrics_json(const gw_server_t *srv, gw_buf_t *out)
{
    metrics_thread_t t[GW_MAX_WORKERS + 2];
    int n = metrics_threads(srv, t);

    gw_buf_printf(out, "{\"workers\":[");
    for (int i = 0; i < srv->nworkers; i++) {
        gw_buf_printf(out, "%s{\"id\":%d", i ? "," : "", i);
        metrics_json_fields(out, srv, &t[i]);
        gw_buf_printf(out, ",\"queue_depth\":%u}",
                      gw_queue_depth(&srv->workers[i]->events));
    }
    gw_buf_printf(out, "]");
    for (int i = srv->nworkers; i < n; i++) {
        gw_buf_printf(out, ",\"%s\":{\"thread\":\"%s\"", t[i].label,
                      t[i].label);
        metrics_json_fields(out, srv, &t[i]);
        gw_buf_printf(out, "}");
    }
    gw_buf_printf(out, ",\"totals\":{\"workers\":%d", srv->nworkers);
    metrics_json_fields(out, srv, NULL);
    gw_buf_printf(out, "}}\n");
}

static void metrics_label(gw_buf_t *out, const metrics_thread_t *t)
{
    if (t->label == NULL)
        gw_buf_printf(out, "worker=\"%d\"", t->id);
    else
        gw_buf_printf(out, "thread=\"%s\"", t->label);
}

static void metrics_prom_counter(gw_buf_t *out, const metrics_thread_t *t,
                                 int n, int k)
{
    const gw_stat_desc_t *d = &gw_stat_desc[k];
    const char *suffix = d->gauge ? "" : "_total";

    gw_buf_printf(out, "# HELP gatewayd_%s%s %s\n# TYPE gatewayd_%s%s %s\n",
                  d->name, suffix, d->help, d->name, suffix,
                  d->gauge ? "gauge" : "counter");
    for (int i = 0; i < n; i++) {
        if (t[i].owner != d->owner)
            continue;
        gw_buf_printf(out, "gatewayd_%s%s{", d->name, suffix);
        metrics_label(out, &t[i]);
        gw_buf_printf(out, "} %" PRIu64 "\n", gw_stat_get(t[i].stats, k));
    }
}

/* The fan-out latency of each worker as a Prometheus histogram. */
static void metrics_prom_latency(gw_buf_t *out, const gw_server_t *srv,
                                 const metrics_thread_t *t)
{
    gw_buf_printf(out, "# HELP gatewayd_fanout_latency_seconds Broker "
                       "ingress to the last write queued, per worker.\n"
                       "# TYPE gatewayd_fanout_latency_seconds histogram\n");
    for (int i = 0; i < srv->nworkers; i++) {
        const gw_stats_t *s = t[i].stats;
        uint64_t cum = 0;
        for (int b = 0; b < GW_LAT_BUCKETS; b++) {
            cum += atomic_load_explicit(&s->lat[b], memory_order_relaxed);
            if (b < GW_LAT_BUCKETS - 1)
                gw_buf_printf(out,
                              "gatewayd_fanout_latency_seconds_bucket{worker="
                              "\"%d\",le=\"%g\"} %" PRIu64 "\n",
                              i, gw_lat_bounds_us[b] / 1e6, cum);
            else
                gw_buf_printf(out,
                              "gatewayd_fanout_latency_seconds_bucket{worker="
                              "\"%d\",le=\"+Inf\"} %" PRIu64 "\n",
                              i, cum);
        }
        gw_buf_printf(
            out,
            "gatewayd_fanout_latency_seconds_sum{worker=\"%d\"} %g\n"
            "gatewayd_fanout_latency_seconds_count{worker=\"%d\"} %" PRIu64
            "\n",
            i, atomic_load_explicit(&s->lat_sum_us, memory_order_relaxed) / 1e6,
            i, cum);
    }
}

void gw_metrics_prometheus(const gw_server_t *srv, gw_buf_t *out)
{
    metrics_thread_t t[GW_MAX_WORKERS + 2];
    int n = metrics_threads(srv, t);

    for (int k = 0; k < GW_STAT_COUNT; k++)
        metrics_prom_counter(out, t, n, k);
    gw_buf_printf(out, "# HELP gatewayd_queue_depth Events waiting in the "
                       "worker's queue.\n# TYPE gatewayd_queue_depth gauge\n");
    for (int i = 0; i < srv->nworkers; i++)
        gw_buf_printf(out, "gatewayd_queue_depth{worker=\"%d\"} %u\n", i,
                      gw_queue_depth(&srv->workers[i]->events));
    metrics_prom_latency(out, srv, t);
}
