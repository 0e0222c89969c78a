#include "gw/metrics.h"

#include "gw/acceptor.h"
#include "gw/broker.h"
#include "gw/worker.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

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

/* The close code of slot i as JSON key and Prometheus label. */
static void metrics_close_code(gw_buf_t *out, int i)
{
    if (i < GW_CLOSE_SLOTS - 1)
        gw_buf_printf(out, "%u", gw_close_codes[i]);
    else
        gw_buf_printf(out, "other");
}

/* Closes in slot i: of worker w, or of every worker when w is -1. */
static uint64_t metrics_closes(const gw_server_t *srv, int w, int i)
{
    int from = w < 0 ? 0 : w, to = w < 0 ? srv->nworkers : w + 1;
    uint64_t sum = 0;

    for (int k = from; k < to; k++)
        sum += atomic_load_explicit(&srv->workers[k]->stats.closes_by_code[i],
                                    memory_order_relaxed);
    return sum;
}

/* ,"closes_by_code":{"1000":n,...,"other":n} of worker w, or all (-1). */
static void metrics_json_closes(gw_buf_t *out, const gw_server_t *srv, int w)
{
    gw_buf_printf(out, ",\"closes_by_code\":{");
    for (int i = 0; i < GW_CLOSE_SLOTS; i++) {
        gw_buf_printf(out, "%s\"", i ? "," : "");
        metrics_close_code(out, i);
        gw_buf_printf(out, "\":%" PRIu64, metrics_closes(srv, w, i));
    }
    gw_buf_printf(out, "}");
}

/*
 * ,"fanout_latency":{"le_us":[bounds],"counts":[per bucket]}: the workers'
 * histograms summed, not cumulative; the last count is past the last bound.
 * A reader takes two of these apart to get the percentiles of a window.
 */
static void metrics_json_latency(gw_buf_t *out, const gw_server_t *srv)
{
    gw_buf_printf(out, ",\"fanout_latency\":{\"le_us\":[");
    for (int b = 0; b < GW_LAT_BUCKETS - 1; b++)
        gw_buf_printf(out, "%s%" PRIu32, b ? "," : "", gw_lat_bounds_us[b]);
    gw_buf_printf(out, "],\"counts\":[");
    for (int b = 0; b < GW_LAT_BUCKETS; b++) {
        uint64_t sum = 0;
        for (int i = 0; i < srv->nworkers; i++)
            sum += atomic_load_explicit(&srv->workers[i]->stats.lat[b],
                                        memory_order_relaxed);
        gw_buf_printf(out, "%s%" PRIu64, b ? "," : "", sum);
    }
    gw_buf_printf(out, "]}");
}

void gw_metrics_json(const gw_server_t *srv, gw_buf_t *out)
{
    metrics_thread_t t[GW_MAX_WORKERS + 2];
    int n = metrics_threads(srv, t);

    gw_buf_printf(out, "{\"workers\":[");
    for (int i = 0; i < srv->nworkers; i++) {
        gw_buf_printf(out, "%s{\"id\":%d", i ? "," : "", i);
        metrics_json_fields(out, srv, &t[i]);
        metrics_json_closes(out, srv, i);
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
    metrics_json_closes(out, srv, -1);
    gw_buf_printf(out, "}");
    metrics_json_latency(out, srv);
    gw_buf_printf(out, "}\n");
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

/* gatewayd_closes_by_code_total{worker,code}: its own family, because
 * gatewayd_closes_total also counts connections that never opened. */
static void metrics_prom_closes(gw_buf_t *out, const gw_server_t *srv)
{
    gw_buf_printf(out, "# HELP gatewayd_closes_by_code_total WebSocket "
                       "connections ended, by the code of the side that "
                       "closed first (1006: no close frame).\n"
                       "# TYPE gatewayd_closes_by_code_total counter\n");
    for (int w = 0; w < srv->nworkers; w++)
        for (int i = 0; i < GW_CLOSE_SLOTS; i++) {
            gw_buf_printf(out,
                          "gatewayd_closes_by_code_total{worker=\"%d\","
                          "code=\"",
                          w);
            metrics_close_code(out, i);
            gw_buf_printf(out, "\"} %" PRIu64 "\n", metrics_closes(srv, w, i));
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

/* A shard's address as a Prometheus label value: "host:port", or
 * "[v6]:port", with what the format escapes escaped. */
static void metrics_shard_label(gw_buf_t *out, const gw_shard_info_t *s)
{
    int v6 = strchr(s->host, ':') != NULL;

    gw_buf_printf(out, "{shard=\"%s", v6 ? "[" : "");
    for (const char *p = s->host; *p != '\0'; p++) {
        if (*p == '\\' || *p == '"')
            gw_buf_append(out, "\\", 1);
        if (*p == '\n')
            gw_buf_append(out, "\\n", 2);
        else
            gw_buf_append(out, p, 1);
    }
    gw_buf_printf(out, "%s:%d\"}", v6 ? "]" : "", s->port);
}

/* The families of the shard gauges, each shard's line appended to its
 * own, so that each family's lines stay together. */
enum { METRICS_SHARD_FAMILIES = 5 };

static const struct {
    const char *name, *type, *help;
} metrics_shard_family[METRICS_SHARD_FAMILIES] = {
    {"gatewayd_redis_shard_up", "gauge",
     "Whether the links to the Redis Cluster shard master are up."},
    {"gatewayd_redis_shard_since_seconds", "gauge",
     "Unix time the shard's links entered their state (up or not)."},
    {"gatewayd_redis_shard_slots", "gauge",
     "Slots the shard master serves, as CLUSTER SLOTS said."},
    {"gatewayd_redis_shard_channels", "gauge",
     "Sharded channels the shard's subscriber holds, as Redis counts them."},
    {"gatewayd_redis_shard_lost_total", "counter",
     "SPUBLISHes lost while the shard was down, or after its slot moved."},
};

static void metrics_prom_shard(void *data, const gw_shard_info_t *s,
                               size_t slots)
{
    gw_buf_t *fam = data;
    uint64_t v[METRICS_SHARD_FAMILIES] = {s->status.state == GW_LINK_UP,
                                          s->status.since_ms / 1000, slots,
                                          s->channels, s->lost};

    for (int i = 0; i < METRICS_SHARD_FAMILIES; i++) {
        gw_buf_printf(&fam[i], "%s", metrics_shard_family[i].name);
        metrics_shard_label(&fam[i], s);
        gw_buf_printf(&fam[i], " %" PRIu64 "\n", v[i]);
    }
}

/* Each shard of a Redis Cluster: its link, slots, channels and losses. */
static void metrics_prom_shards(gw_buf_t *out, const gw_server_t *srv)
{
    gw_buf_t fam[METRICS_SHARD_FAMILIES] = {{0}};

    if (!gw_broker_redis_shards(srv->broker, metrics_prom_shard, fam))
        return;
    for (int i = 0; i < METRICS_SHARD_FAMILIES; i++) {
        gw_buf_printf(
            out, "# HELP %s %s\n# TYPE %s %s\n", metrics_shard_family[i].name,
            metrics_shard_family[i].help, metrics_shard_family[i].name,
            metrics_shard_family[i].type);
        if (fam[i].len > 0)
            gw_buf_append(out, fam[i].data, fam[i].len);
        free(fam[i].data);
    }
}

static void metrics_json_shard(void *data, const gw_shard_info_t *s,
                               size_t slots)
{
    gw_buf_t *list = data, addr = {0};

    gw_buf_printf(&addr, strchr(s->host, ':') ? "[%s]:%d" : "%s:%d", s->host,
                  s->port);
    gw_buf_printf(list, "%s{\"address\":", list->len > 0 ? "," : "");
    gw_buf_json_string(list, addr.data);
    gw_buf_printf(list,
                  ",\"state\":\"%s\",\"since\":%" PRIu64
                  ",\"slots\":%zu,\"channels\":%" PRIu64 ",\"lost\":%" PRIu64
                  "}",
                  gw_link_state_name(s->status.state), s->status.since_ms,
                  slots, s->channels, s->lost);
    free(addr.data);
}

void gw_metrics_shards_json(const gw_server_t *srv, gw_buf_t *out)
{
    gw_buf_t list = {0};

    if (!gw_broker_redis_shards(srv->broker, metrics_json_shard, &list))
        return;
    gw_buf_printf(out, ",\"redis_shards\":[%s]",
                  list.data != NULL ? list.data : "");
    free(list.data);
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
    metrics_prom_closes(out, srv);
    metrics_prom_latency(out, srv, t);
    metrics_prom_shards(out, srv);
}
