#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/alloc.h"
#include "publish.h"
#include "run.h"
#include "scenario.h"
#include "totals.h"
#include "util.h"

#define FANOUT_READY_S 10.0
#define FANOUT_SETTLE_S 1.0
#define FANOUT_STATS_MAX (1 << 17) /* bytes of a /stats answer */

/* What the server said of itself when the storm began and when publishing
 * ended: its workers' fan-out latency, the handshake steps its TLS cap
 * put off. */
typedef struct fanout_srv {
    totals_lat_t lat;
    double deferred; /* tls_handshakes_deferred */
    int ok;
} fanout_srv_t;

/* The broker --via names, for run_open(); -1 when --via is none of ours. */
static int fanout_broker(const char *via)
{
    if (strcmp(via, "redis") == 0)
        return TARGET_BROKER_REDIS;
    if (strcmp(via, "amqp") == 0)
        return TARGET_BROKER_AMQP;
    if (strcmp(via, "http") == 0)
        return TARGET_BROKER_NONE;
    return -1;
}

/* Where events go: the Redis channel, the AMQP exchange, or the server's
 * HTTP publish path (nchan: /pub/<guild> on its own port unless
 * --publish-url says). A --publish-url path ending in '/' is a prefix the
 * guild is appended to, as nchan and the uWebSockets peer take events. */
static int fanout_conf(const run_t *r, publish_conf_t *pc)
{
    const opts_t *o = r->o;

    memset(pc, 0, sizeof(*pc));
    pc->guilds = (uint32_t)o->guilds;
    pc->payload = (size_t)o->payload;
    pc->conns = (unsigned)o->publishers;
    pc->api_key = o->api_key;
    pc->channel = "gateway_events";
    pc->exchange = o->exchange;
    pc->routing_key = o->routing_key;
    if (strcmp(o->via, "redis") == 0) {
        pc->via = PUBLISH_REDIS;
        snprintf(pc->host, sizeof(pc->host), "%s", r->tgt.redis_host);
        pc->port = r->tgt.redis_port;
        return 0;
    }
    if (strcmp(o->via, "amqp") == 0) {
        pc->via = PUBLISH_AMQP;
        snprintf(pc->host, sizeof(pc->host), "%s", r->tgt.amqp_host);
        pc->port = r->tgt.amqp_port;
        return 0;
    }
    pc->via = PUBLISH_HTTP;
    snprintf(pc->host, sizeof(pc->host), "%s", r->tgt.host);
    pc->port = r->tgt.http_port;
    snprintf(pc->path, sizeof(pc->path), "%s", r->tgt.http_path);
    pc->by_guild =
        r->cconf.proto == CLIENT_PROTO_NCHAN ||
        (pc->path[0] != '\0' && pc->path[strlen(pc->path) - 1] == '/');
    if (r->cconf.proto == CLIENT_PROTO_NCHAN && o->publish_url == NULL) {
        pc->port = r->tgt.ws_port;
        snprintf(pc->path, sizeof(pc->path), "/pub/");
    }
    if (pc->port == 0) {
        util_warn("--via http against --target needs --publish-url");
        return -1;
    }
    return 0;
}

static cJSON *fanout_events_json(const publish_stats_t *ps)
{
    cJSON *e = cJSON_CreateObject();

    cJSON_AddNumberToObject(e, "sent", (double)ps->sent);
    cJSON_AddNumberToObject(e, "acked", (double)ps->acked);
    cJSON_AddNumberToObject(e, "failed", (double)ps->failed);
    cJSON_AddNumberToObject(e, "redis_receivers", (double)ps->receivers);
    cJSON_AddNumberToObject(e, "amqp_returned", (double)ps->returned);
    cJSON_AddNumberToObject(e, "max_publish_lag_ms",
                            (double)ps->max_lag_us / 1e3);
    cJSON_AddBoolToObject(e, "publisher_broken", ps->broken);
    return e;
}

/* The sessions of the guilds (a --storm's come after them, in none). */
static uint64_t fanout_members(const opts_t *o)
{
    return (uint64_t)o->guilds * (uint64_t)o->members;
}

/* Each event reaches the identified members of its guild; with every
 * session identified that is members per event. ident: the guilds'
 * sessions identified before publishing began. */
static uint64_t fanout_expected(const run_t *r, uint64_t events, uint64_t ident)
{
    if (ident >= fanout_members(r->o))
        return events * (uint64_t)r->o->members;
    return events * ident / (uint64_t)r->o->guilds;
}

/* The deliveries' latency in the seconds of the run from t0 to t1 (us):
 * the fan-out while the storm lasted. */
static cJSON *fanout_latency_between(const run_t *r, uint64_t t0, uint64_t t1)
{
    stats_hist_t *h = gw_calloc(1, sizeof(*h));
    size_t from = t0 > r->t0 ? (size_t)((t0 - r->t0) / 1000000) : 0;
    size_t to = t1 > r->t0 ? (size_t)((t1 - r->t0) / 1000000) : 0;
    cJSON *o;

    stats_hist_reset(h);
    for (size_t i = from; i <= to && i < r->nsec; i++)
        stats_hist_merge(h, &r->sec[i].f.lat);
    o = run_latency_json(h);
    free(h);
    return o;
}

/* The server's own figures from its /stats (gatewayd: --target servers
 * without an HTTP API have none). */
static void fanout_srv_read(run_t *r, fanout_srv_t *s)
{
    static const totals_field_t fields[] = {{"tls_handshakes_deferred", 0}};
    char *body = gw_malloc(FANOUT_STATS_MAX);
    cJSON *doc = NULL;

    memset(s, 0, sizeof(*s));
    if (r->tgt.http_port != 0 &&
        target_http_get(&r->tgt, "/stats", body, FANOUT_STATS_MAX, 1000) ==
            200 &&
        (doc = cJSON_Parse(body)) != NULL)
        s->ok =
            totals_lat_read(doc, &s->lat) == 0 &&
            totals_read(doc, fields, 1, &s->deferred, sizeof(s->deferred)) == 0;
    cJSON_Delete(doc);
    free(body);
}

/* The workers' fan-out latency between the two readings: how many events
 * took longer than 10 ms and 100 ms from the broker to the last write
 * queued, where the storm's handshakes would hold them up. */
static cJSON *fanout_srv_json(const fanout_srv_t *a, const fanout_srv_t *b)
{
    cJSON *o = cJSON_CreateObject();
    double n = 0, over10 = 0, over100 = 0, p99;

    if (!a->ok || !b->ok ||
        totals_lat_over(&a->lat, &b->lat, 10000, &n, &over10) != 0 ||
        totals_lat_over(&a->lat, &b->lat, 100000, &n, &over100) != 0)
        return o;
    p99 = totals_lat_quantile(&a->lat, &b->lat, .99);
    cJSON_AddNumberToObject(o, "events", n);
    cJSON_AddNumberToObject(o, "over_10ms", over10);
    cJSON_AddNumberToObject(o, "over_100ms", over100);
    if (p99 >= 0)
        cJSON_AddNumberToObject(o, "p99_at_most_ms", p99 / 1000);
    cJSON_AddNumberToObject(o, "tls_handshakes_deferred",
                            b->deferred - a->deferred);
    return o;
}

/* The storm beside the fan-out: its sessions, how fast their handshakes
 * went, and the deliveries' latency while it lasted, as the clients saw it
 * and as the server's workers did. */
static void fanout_storm_json(run_t *r, uint64_t t_start,
                              const fanout_srv_t *sa, const fanout_srv_t *sb,
                              cJSON *res)
{
    const client_figures_t *w = &r->win;
    cJSON *s = cJSON_CreateObject();
    uint64_t end = w->t_last_ident > t_start ? w->t_last_ident : t_start;
    double secs = (double)(end - t_start) / 1e6;

    cJSON_AddNumberToObject(s, "sessions", (double)r->o->storm);
    cJSON_AddBoolToObject(s, "tls", r->cconf.tls_hi > r->cconf.tls_lo);
    cJSON_AddNumberToObject(s, "start_s", (double)(t_start - r->t0) / 1e6);
    cJSON_AddNumberToObject(s, "identified", (double)w->c.identified);
    cJSON_AddNumberToObject(s, "failed",
                            (double)(w->c.fail_tcp + w->c.fail_tls +
                                     w->c.fail_upgrade + w->c.fail_ready +
                                     w->c.fail_identify));
    cJSON_AddNumberToObject(s, "tls_full", (double)w->c.tls_full);
    cJSON_AddNumberToObject(s, "storm_s", secs);
    cJSON_AddNumberToObject(s, "identified_per_s",
                            secs > 0 ? (double)w->c.identified / secs : 0);
    cJSON_AddItemToObject(s, "delivery_latency_in_storm",
                          fanout_latency_between(r, t_start, end));
    cJSON_AddItemToObject(s, "server_fanout", fanout_srv_json(sa, sb));
    cJSON_AddItemToObject(res, "storm", s);
}

static void fanout_results(run_t *r, const publish_stats_t *ps,
                           const run_mark_t *a, const run_mark_t *b)
{
    const client_figures_t *w = &r->win;
    cJSON *res = r->results;
    uint64_t expected = fanout_expected(r, ps->sent, a->c.identified);
    double secs = w->t_last_deliv > a->t_us
                      ? (double)(w->t_last_deliv - a->t_us) / 1e6
                      : 0;
    double srv, gen = proc_cpu_between(&a->gen, &b->gen);

    cJSON_AddNumberToObject(res, "sessions", (double)fanout_members(r->o));
    cJSON_AddNumberToObject(res, "identified", (double)a->c.identified);
    cJSON_AddStringToObject(res, "via", r->o->via);
    cJSON_AddNumberToObject(res, "offered_deliveries_per_s",
                            r->o->event_rate * (double)r->o->members);
    cJSON_AddItemToObject(res, "events", fanout_events_json(ps));
    cJSON_AddNumberToObject(res, "deliveries", (double)w->c.deliveries);
    cJSON_AddNumberToObject(res, "expected", (double)expected);
    cJSON_AddNumberToObject(res, "delivered_share",
                            expected ? (double)w->c.deliveries / expected : 0);
    cJSON_AddNumberToObject(res, "deliveries_per_s",
                            secs > 0 ? (double)w->c.deliveries / secs : 0);
    cJSON_AddItemToObject(res, "latency", run_latency_json(&w->lat));
    srv = run_window_json(a, b, res);
    if (srv > 0)
        cJSON_AddNumberToObject(res, "deliveries_per_server_cpu_s",
                                (double)w->c.deliveries / srv);
    if (w->c.deliveries > 0)
        cJSON_AddNumberToObject(res, "gwbench_us_per_delivery",
                                gen * 1e6 / (double)w->c.deliveries);
    cJSON_AddItemToObject(res, "window_counters",
                          run_counters_json(&a->c, &b->c));
}

/* AMQP: events no queue took came back; all of them means no server
 * consumes from that exchange with that routing key. */
static void fanout_check_returned(run_t *r, const publish_stats_t *ps)
{
    if (ps->returned == 0)
        return;
    util_warn("%llu of %llu events reached no queue (exchange %s, routing "
              "key %s)",
              (unsigned long long)ps->returned, (unsigned long long)ps->sent,
              r->o->exchange, r->o->routing_key);
    if (ps->returned >= ps->sent)
        r->failed = 1;
}

/* The storm's sessions connect, unpaced (within --inflight), and stay;
 * returns when they were told to, with the server's figures then. */
static uint64_t fanout_storm(run_t *r, fanout_srv_t *srv)
{
    client_cmd_t cmd = {.op = CLIENT_CMD_CONNECT};

    fanout_srv_read(r, srv);
    r->phase = "publish+storm";
    cmd.lo = (uint32_t)fanout_members(r->o);
    cmd.hi = r->sessions;
    run_command_full(r, &cmd);
    return util_now_us();
}

static void fanout_measure(run_t *r, publish_t *pub)
{
    const opts_t *o = r->o;
    uint64_t count = o->events > 0 ? (uint64_t)o->events
                                   : (uint64_t)(o->event_rate * o->duration);
    double max_s = (double)count / o->event_rate * 2 + 10;
    uint64_t storm_at = 0;
    fanout_srv_t sa, sb;
    run_mark_t a, b;

    r->phase = "settle";
    run_sleep(r, FANOUT_SETTLE_S);
    run_window_begin(r, &a);
    r->phase = "publish";
    publish_start(pub, o->event_rate, count);
    if (o->storm > 0) {
        run_sleep(r, o->storm_at);
        storm_at = fanout_storm(r, &sa);
    }
    if (run_until(r, run_publisher_done, pub, max_s) != 0)
        util_warn("the publisher did not finish in time");
    run_drain(r, fanout_expected(r, publish_stats(pub)->sent, a.c.identified),
              o->drain);
    run_mark(r, &b);
    if (storm_at != 0)
        fanout_srv_read(r, &sb);
    if (publish_stats(pub)->broken)
        r->failed = 1;
    if (strcmp(o->via, "redis") == 0 && publish_stats(pub)->receivers == 0) {
        util_warn("no server subscribed to gateway_events on that Redis");
        r->failed = 1;
    }
    fanout_check_returned(r, publish_stats(pub));
    fanout_results(r, publish_stats(pub), &a, &b);
    if (storm_at != 0)
        fanout_storm_json(r, storm_at, &sa, &sb, r->results);
}

int scenario_fanout(const opts_t *o)
{
    uint32_t n = (uint32_t)(o->guilds * o->members);
    int broker = fanout_broker(o->via);
    publish_conf_t pc;
    publish_t *pub = NULL;
    run_spec_t spec;
    run_t r;

    if (o->instances > 0)
        return scenario_fanout_instances(o);
    /* guilds and members are at least 1 (opts.c). */
    if (o->guilds * o->members + o->storm > 1000000 || o->event_rate <= 0) {
        util_warn("fanout needs --event-rate > 0 and at most 1e6 sessions "
                  "(--guilds x --members + --storm)");
        return 2;
    }
    if (broker < 0) {
        util_warn("--via must be redis, http or amqp");
        return 2;
    }
    spec = (run_spec_t){.scenario = "fanout",
                        .sessions = n + (uint32_t)o->storm,
                        .guilds = (uint32_t)o->guilds,
                        .members = (uint32_t)o->members,
                        .broker = broker,
                        .storm_lo = o->storm > 0 ? n : 0};
    if (run_open_spec(&r, o, &spec) != 0 || fanout_conf(&r, &pc) != 0)
        goto Out;
    if (run_connect_range(&r, 0, n, o->rate) != 0)
        r.failed = 1;
    pub = publish_new(&r.loop, &pc);
    if (run_until(&r, run_publisher_ready, pub, FANOUT_READY_S) != 0 ||
        publish_ready(pub) < 0) {
        util_warn("cannot connect the publisher to %s:%d", pc.host, pc.port);
        goto Out;
    }
    fanout_measure(&r, pub);
    publish_free(pub);
    return run_close(&r);
Out:
    r.failed = 1;
    if (pub != NULL)
        publish_free(pub);
    return run_close(&r);
}
