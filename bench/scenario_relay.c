/*
 * relay: N identified sessions send requests up to the backends at a total
 * rate, round robin; gatewayd publishes each to RabbitMQ, the echo backend
 * (echo.h) answers it to its session, and each client times the round trip
 * from its send to the answer's dispatch (relay.h). The run ends with a
 * drain window: what has no answer or error by then is lost.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "echo.h"
#include "relay.h"
#include "run.h"
#include "scenario.h"
#include "util.h"

#define RELAY_DEFAULT_RATE 2000.0 /* --rate 0 */
#define RELAY_READY_S 10.0        /* the backend's connect and declarations */
#define RELAY_SETTLE_S 1.0
/* The clients hand over their figures every 100 ms and their processes
 * report every 250 ms: after this long every request sent before the stop
 * has been reported. */
#define RELAY_REPORT_LAG_S 0.5
/* A request's slot in its client's table outlives the run by this much. */
#define RELAY_SPAN_MARGIN_S 10.0
#define RELAY_STATS_MAX 65536

/* What the coordinator knows of the run beyond run_t. */
typedef struct relay_run {
    run_t r;
    echo_t *echo;
    double rate;
    uint64_t t_start;   /* first request, us */
    uint64_t t_quiet;   /* requests stopped, us */
    proc_sample_t mq_a; /* the RabbitMQ node we started, at a and b */
    proc_sample_t mq_b;
    int mq_ok;
    cJSON *gw_a; /* gatewayd's /stats totals at a and b, or NULL */
    cJSON *gw_b;
} relay_run_t;

static uint64_t relay_errors(const stats_counters_t *c)
{
    return c->relay_unavailable + c->relay_overloaded + c->relay_rate_limited +
           c->relay_other_error;
}

/* The "totals" of gatewayd's /stats, when it has an HTTP port. */
static cJSON *relay_gw_stats(const run_t *r)
{
    static char body[RELAY_STATS_MAX];
    cJSON *doc, *totals;

    if (r->tgt.http_port == 0 || r->o->target.n > 0 ||
        target_http_get(&r->tgt, "/stats", body, sizeof(body), 1000) != 200)
        return NULL;
    doc = cJSON_Parse(body);
    totals = cJSON_DetachItemFromObjectCaseSensitive(doc, "totals");
    cJSON_Delete(doc);
    return totals;
}

static void relay_mark(relay_run_t *x, run_mark_t *m, int end)
{
    run_mark(&x->r, m);
    if (x->r.tgt.rabbit_pid > 0) {
        proc_sample_t *s = end ? &x->mq_b : &x->mq_a;
        int ok = proc_read_tree(x->r.tgt.rabbit_pid, s) == 0;

        x->mq_ok = end ? x->mq_ok && ok : ok;
    }
    if (end)
        x->gw_b = relay_gw_stats(&x->r);
    else
        x->gw_a = relay_gw_stats(&x->r);
}

/* The counters of /stats that moved in the window. */
static cJSON *relay_gw_delta(const cJSON *a, const cJSON *b)
{
    cJSON *d = cJSON_CreateObject();
    const cJSON *it;

    cJSON_ArrayForEach(it, b)
    {
        const cJSON *was = cJSON_GetObjectItemCaseSensitive(a, it->string);
        double v;

        if (!cJSON_IsNumber(it) || !cJSON_IsNumber(was))
            continue;
        v = it->valuedouble - was->valuedouble;
        if (v != 0)
            cJSON_AddNumberToObject(d, it->string, v);
    }
    return d;
}

static cJSON *relay_errors_json(const stats_counters_t *c)
{
    cJSON *e = cJSON_CreateObject();

    cJSON_AddNumberToObject(e, "unavailable", (double)c->relay_unavailable);
    cJSON_AddNumberToObject(e, "overloaded", (double)c->relay_overloaded);
    cJSON_AddNumberToObject(e, "rate_limited", (double)c->relay_rate_limited);
    cJSON_AddNumberToObject(e, "other", (double)c->relay_other_error);
    return e;
}

static cJSON *relay_backend_json(const echo_stats_t *es)
{
    cJSON *b = cJSON_CreateObject();

    cJSON_AddNumberToObject(b, "received", (double)es->received);
    cJSON_AddNumberToObject(b, "answered", (double)es->answered);
    cJSON_AddNumberToObject(b, "bad", (double)es->bad);
    cJSON_AddNumberToObject(b, "returned", (double)es->returned);
    cJSON_AddNumberToObject(b, "cpu_s", es->cpu_s);
    cJSON_AddBoolToObject(b, "broken", es->broken);
    return b;
}

/* The requests' fate: answered, refused by code, lost; and what should
 * never happen (answers to no pending request, or to another session). */
static void relay_requests_json(const relay_run_t *x, cJSON *res)
{
    const stats_counters_t *c = &x->r.win.c;
    uint64_t done = c->relay_answered + relay_errors(c);
    uint64_t lost = c->relay_sent > done ? c->relay_sent - done : 0;
    double secs = x->r.win.t_last_deliv > x->t_start
                      ? (double)(x->r.win.t_last_deliv - x->t_start) / 1e6
                      : 0;

    cJSON_AddNumberToObject(res, "sent", (double)c->relay_sent);
    cJSON_AddNumberToObject(res, "answered", (double)c->relay_answered);
    cJSON_AddItemToObject(res, "errors", relay_errors_json(c));
    cJSON_AddNumberToObject(res, "lost", (double)lost);
    cJSON_AddNumberToObject(
        res, "answered_share",
        c->relay_sent ? (double)c->relay_answered / (double)c->relay_sent : 0);
    cJSON_AddNumberToObject(res, "unmatched", (double)c->relay_unmatched);
    cJSON_AddNumberToObject(res, "misrouted", (double)c->relay_misrouted);
    cJSON_AddNumberToObject(res, "expired", (double)c->relay_expired);
    cJSON_AddNumberToObject(res, "answers_per_s",
                            secs > 0 ? (double)c->relay_answered / secs : 0);
}

/* CPU: gatewayd (run_window_json), per relay; the RabbitMQ node we
 * started and the echo backend, apart. */
static void relay_cpu_json(const relay_run_t *x, const run_mark_t *a,
                           const run_mark_t *b, const echo_stats_t *es,
                           cJSON *res)
{
    double srv = run_window_json(a, b, res);
    uint64_t answered = x->r.win.c.relay_answered;

    if (srv > 0 && answered > 0) {
        cJSON_AddNumberToObject(res, "relays_per_server_cpu_s",
                                (double)answered / srv);
        cJSON_AddNumberToObject(res, "server_us_per_relay",
                                srv * 1e6 / (double)answered);
    }
    if (x->mq_ok)
        cJSON_AddNumberToObject(res, "rabbitmq_cpu_s",
                                proc_cpu_between(&x->mq_a, &x->mq_b));
    cJSON_AddNumberToObject(res, "backend_cpu_s", es->cpu_s);
}

static void relay_results(relay_run_t *x, const run_mark_t *a,
                          const run_mark_t *b)
{
    static echo_stats_t es; /* a histogram: not on the stack */
    cJSON *res = x->r.results;

    echo_stats(x->echo, &es);
    cJSON_AddNumberToObject(res, "sessions", x->r.sessions);
    cJSON_AddNumberToObject(res, "identified", (double)x->r.total.c.identified);
    cJSON_AddNumberToObject(res, "offered_per_s", x->rate);
    relay_requests_json(x, res);
    cJSON_AddItemToObject(res, "latency", run_latency_json(&x->r.win.lat));
    cJSON_AddItemToObject(res, "latency_up", run_latency_json(&es.up));
    cJSON_AddItemToObject(res, "latency_down",
                          run_latency_json(&x->r.win.down));
    cJSON_AddItemToObject(res, "backend", relay_backend_json(&es));
    relay_cpu_json(x, a, b, &es, res);
    if (x->gw_a != NULL && x->gw_b != NULL)
        cJSON_AddItemToObject(res, "gatewayd_stats",
                              relay_gw_delta(x->gw_a, x->gw_b));
    cJSON_AddItemToObject(res, "window_counters",
                          run_counters_json(&a->c, &b->c));
    if (es.broken || x->r.win.c.relay_answered == 0) {
        util_warn("no request was answered%s",
                  es.broken ? " (the echo backend failed)" : "");
        x->r.failed = 1;
    }
}

static int relay_backend_ready(run_t *r, void *ud)
{
    (void)r;
    return echo_ready(ud) != 0;
}

/* Every request sent has its answer or error, and every request sent
 * before the stop has been reported. */
static int relay_drained(run_t *r, void *ud)
{
    const relay_run_t *x = ud;
    const stats_counters_t *c = &r->win.c;

    return util_now_us() - x->t_quiet >= RELAY_REPORT_LAG_S * 1e6 &&
           c->relay_answered + relay_errors(c) >= c->relay_sent;
}

static void relay_measure(relay_run_t *x)
{
    const opts_t *o = x->r.o;
    client_cmd_t cmd = {.op = CLIENT_CMD_RELAY, .rate = x->rate};
    run_mark_t a, b;

    cmd.span_s = o->duration + o->drain + RELAY_SPAN_MARGIN_S;
    x->r.phase = "settle";
    run_sleep(&x->r, RELAY_SETTLE_S);
    run_window_begin(&x->r, &a);
    relay_mark(x, &a, 0);
    x->r.phase = "relay";
    x->t_start = util_now_us();
    pool_command(x->r.pool, &cmd);
    run_sleep(&x->r, o->duration);
    run_command(&x->r, CLIENT_CMD_QUIET, 0);
    x->t_quiet = util_now_us();
    x->r.phase = "drain";
    run_until(&x->r, relay_drained, x, o->drain + RELAY_REPORT_LAG_S);
    relay_mark(x, &b, 1);
    relay_results(x, &a, &b);
}

/* The backend consumes what gatewayd publishes upstream and answers on
 * the exchange gatewayd consumes. */
static echo_t *relay_backend(relay_run_t *x)
{
    const opts_t *o = x->r.o;
    echo_conf_t ec = {.upstream = o->upstream,
                      .binding = RELAY_REQUEST_EVENT,
                      .exchange = o->exchange,
                      .routing_key = o->routing_key};
    echo_t *e;

    snprintf(ec.host, sizeof(ec.host), "%s", x->r.tgt.amqp_host);
    ec.port = x->r.tgt.amqp_port;
    e = echo_new(&ec);
    if (run_until(&x->r, relay_backend_ready, e, RELAY_READY_S) != 0 ||
        echo_ready(e) < 0) {
        util_warn("the echo backend could not consume from %s:%d", ec.host,
                  ec.port);
        echo_free(e);
        return NULL;
    }
    return e;
}

int scenario_relay(const opts_t *o)
{
    relay_run_t x;

    memset(&x, 0, sizeof(x));
    x.rate = o->rate > 0 ? o->rate : RELAY_DEFAULT_RATE;
    if (o->duration <= 0) {
        util_warn("relay needs --duration > 0");
        return 2;
    }
    if (run_open(&x.r, o, "relay", (uint32_t)o->sessions, 0, 0,
                 TARGET_BROKER_AMQP) == 0) {
        /* The clients are forked: the backend's thread may start. */
        if (run_connect_all(&x.r, 0) != 0)
            x.r.failed = 1;
        x.echo = relay_backend(&x);
        if (x.echo != NULL) {
            relay_measure(&x);
            echo_free(x.echo);
        } else {
            x.r.failed = 1;
        }
    }
    cJSON_Delete(x.gw_a);
    cJSON_Delete(x.gw_b);
    return run_close(&x.r);
}
