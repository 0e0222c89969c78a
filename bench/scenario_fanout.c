#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "publish.h"
#include "run.h"
#include "scenario.h"
#include "util.h"

#define FANOUT_READY_S 10.0
#define FANOUT_SETTLE_S 1.0

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
 * --publish-url says). */
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
    pc->nchan = r->cconf.proto == CLIENT_PROTO_NCHAN;
    snprintf(pc->host, sizeof(pc->host), "%s", r->tgt.host);
    pc->port = r->tgt.http_port;
    snprintf(pc->path, sizeof(pc->path), "%s", r->tgt.http_path);
    if (pc->nchan && o->publish_url == NULL) {
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

/* Each event reaches the identified members of its guild; with every
 * session identified that is members per event. */
static uint64_t fanout_expected(const run_t *r, uint64_t events)
{
    uint64_t ident = r->total.c.identified;

    if (ident >= r->sessions)
        return events * (uint64_t)r->o->members;
    return events * ident / (uint64_t)r->o->guilds;
}

static void fanout_results(run_t *r, const publish_stats_t *ps,
                           const run_mark_t *a, const run_mark_t *b)
{
    const client_figures_t *w = &r->win;
    cJSON *res = r->results;
    uint64_t expected = fanout_expected(r, ps->sent);
    double secs = w->t_last_deliv > a->t_us
                      ? (double)(w->t_last_deliv - a->t_us) / 1e6
                      : 0;
    double srv, gen = proc_cpu_between(&a->gen, &b->gen);

    cJSON_AddNumberToObject(res, "sessions", r->sessions);
    cJSON_AddNumberToObject(res, "identified", (double)r->total.c.identified);
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

static void fanout_measure(run_t *r, publish_t *pub)
{
    const opts_t *o = r->o;
    uint64_t count = o->events > 0 ? (uint64_t)o->events
                                   : (uint64_t)(o->event_rate * o->duration);
    run_mark_t a, b;

    r->phase = "settle";
    run_sleep(r, FANOUT_SETTLE_S);
    run_window_begin(r, &a);
    r->phase = "publish";
    publish_start(pub, o->event_rate, count);
    if (run_until(r, run_publisher_done, pub,
                  (double)count / o->event_rate * 2 + 10) != 0)
        util_warn("the publisher did not finish in time");
    run_drain(r, fanout_expected(r, publish_stats(pub)->sent), o->drain);
    run_mark(r, &b);
    if (publish_stats(pub)->broken)
        r->failed = 1;
    if (strcmp(o->via, "redis") == 0 && publish_stats(pub)->receivers == 0) {
        util_warn("no server subscribed to gateway_events on that Redis");
        r->failed = 1;
    }
    fanout_check_returned(r, publish_stats(pub));
    fanout_results(r, publish_stats(pub), &a, &b);
}

int scenario_fanout(const opts_t *o)
{
    uint32_t n = (uint32_t)(o->guilds * o->members);
    int broker = fanout_broker(o->via);
    publish_conf_t pc;
    publish_t *pub = NULL;
    run_t r;

    /* guilds and members are at least 1 (opts.c). */
    if (o->guilds * o->members > 1000000 || o->event_rate <= 0) {
        util_warn("fanout needs --event-rate > 0 and at most 1e6 sessions "
                  "(--guilds x --members)");
        return 2;
    }
    if (broker < 0) {
        util_warn("--via must be redis, http or amqp");
        return 2;
    }
    if (run_open(&r, o, "fanout", n, (uint32_t)o->guilds, (uint32_t)o->members,
                 broker) != 0 ||
        fanout_conf(&r, &pc) != 0)
        goto Out;
    if (run_connect_all(&r, o->rate) != 0)
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
