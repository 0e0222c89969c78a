/*
 * resume: N sessions (-n) in --guilds guilds, one each; after 1 s, events
 * published through Redis at --event-rate, event n to guild n % guilds
 * (the fanout publisher), and while they are published --churn % of the
 * sessions a second are cut with a TCP reset; each cut client connects at
 * once and, after `ready`, resumes its session with the last seq it
 * received (docs/continuity.md). Then until every cut client is back, the
 * last deliveries in (at most --drain s), and the tally.
 *
 * What each client checks (resume.h), across all its connections: that
 * seq goes up by one from dispatch to dispatch (a gap or a repeat is
 * counted), that no event comes twice or after a later one, and at the
 * end, against the publisher's record of when it published each event
 * (memory shared with the client processes, written before each event is
 * sent), which events of its guild published in its session's life it
 * never received: lost. A life begins at `identified` and lasts to the
 * end of the run; an invalid_session ends it at the cut (what was not
 * received of it is counted apart, lost_at_invalid) and the identify that
 * follows begins a new one. Resume latency is the cut to `resumed`.
 *
 * Server CPU is gatewayd's from the first event to the last delivery
 * (drain included), and what moved in its /stats resume counters over the
 * same window is given beside the clients' figures.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "publish.h"
#include "resume.h"
#include "run.h"
#include "scenario.h"
#include "util.h"

#define RESRUN_READY_S 10.0    /* the publisher's connection */
#define RESRUN_SETTLE_S 1.0    /* after the connects, before the events */
#define RESRUN_BACK_S 15.0     /* for the last cut clients to be back */
#define RESRUN_TALLY_S 5.0     /* for every client loop's tally */
#define RESRUN_MIN_DRAIN_S 0.5 /* the clients' last reports */
#define RESRUN_HTTP_MS 2000
/* Events a run may publish: the record takes 8 bytes each, and each
 * session a bit per event of its guild. */
#define RESRUN_MAX_EVENTS 10000000
#define RESRUN_BODY_MAX 65536

typedef struct resrun {
    run_t r;
    uint32_t members;
    uint64_t *record; /* shared with the client processes */
    uint64_t count;   /* events to publish, the record's room */
    publish_t *pub;
    resume_stats_t before, after;
    int stats_ok;
    run_mark_t a, b;
    proc_sample_t redis_a, redis_b; /* the private redis-server's, when */
    int redis_ok;                   /* both were read */
    uint64_t t_quiet;               /* when the churn stopped */
} resrun_t;

static char resrun_body[RESRUN_BODY_MAX];

static int resrun_stats(resrun_t *x, resume_stats_t *s)
{
    int st = target_http_get(&x->r.tgt, "/stats", resrun_body,
                             sizeof(resrun_body), RESRUN_HTTP_MS);

    if (st != 200)
        return -1;
    return resume_stats_parse(resrun_body, strlen(resrun_body), s);
}

/* Deliveries the run owes: each guild's members times the events sent
 * to it, with every session identified. */
static uint64_t resrun_expected(const resrun_t *x, uint64_t sent)
{
    uint32_t guilds = (uint32_t)x->r.o->guilds, n = x->r.sessions;
    uint64_t total = 0;

    for (uint32_t g = 0; g < guilds; g++) {
        uint64_t lo = (uint64_t)g * x->members, hi = lo + x->members;
        uint64_t members = lo >= n ? 0 : (hi > n ? n : hi) - lo;
        uint64_t events = sent / guilds + (g < sent % guilds ? 1 : 0);

        total += members * events;
    }
    return total;
}

/* ---- waiting ---------------------------------------------------------- */

/* Every cut client is back: resumed, identified afresh after an
 * invalid_session, or failed at some stage. */
static int resrun_all_back(run_t *r, void *ud)
{
    const run_mark_t *a = ud;
    const stats_counters_t *c = &r->total.c;

    return c->resumed - a->c.resumed + run_concluded(c) -
               run_concluded(&a->c) >=
           c->drops - a->c.drops;
}

/* ---- the steps -------------------------------------------------------- */

static int resrun_publisher(resrun_t *x)
{
    publish_conf_t pc;

    memset(&pc, 0, sizeof(pc));
    pc.via = PUBLISH_REDIS;
    snprintf(pc.host, sizeof(pc.host), "%s", x->r.tgt.redis_host);
    pc.port = x->r.tgt.redis_port;
    pc.channel = "gateway_events";
    pc.guilds = (uint32_t)x->r.o->guilds;
    pc.payload = (size_t)x->r.o->payload;
    pc.record = x->record;
    pc.record_cap = x->count;
    x->pub = publish_new(&x->r.loop, &pc);
    if (run_until(&x->r, run_publisher_ready, x->pub, RESRUN_READY_S) != 0 ||
        publish_ready(x->pub) < 0) {
        util_warn("cannot connect the publisher to %s:%d", pc.host, pc.port);
        return -1;
    }
    return 0;
}

/* Events and churn together, then the churn stops and the cut clients
 * come back. */
static void resrun_churn(resrun_t *x)
{
    const opts_t *o = x->r.o;

    x->r.phase = "settle";
    run_sleep(&x->r, RESRUN_SETTLE_S);
    x->stats_ok = resrun_stats(x, &x->before) == 0;
    x->redis_ok = proc_read(x->r.tgt.redis_pid, &x->redis_a) == 0;
    run_window_begin(&x->r, &x->a);
    x->r.phase = "churn";
    publish_start(x->pub, o->event_rate, x->count);
    run_command(&x->r, CLIENT_CMD_CHURN, o->churn / 100);
    if (run_until(&x->r, run_publisher_done, x->pub,
                  (double)x->count / o->event_rate * 2 + 10) != 0)
        util_warn("the publisher did not finish in time");
    run_command(&x->r, CLIENT_CMD_QUIET, 0);
    x->t_quiet = util_now_us();
    x->r.phase = "back";
    if (run_until(&x->r, resrun_all_back, &x->a, RESRUN_BACK_S) != 0)
        util_warn("not every cut session came back in %.0f s", RESRUN_BACK_S);
}

/* The last deliveries, the server's figures, then the clients' tally. */
static void resrun_finish(resrun_t *x)
{
    uint64_t sent = publish_stats(x->pub)->sent;

    x->r.phase = "drain";
    run_drain_distinct(&x->r, resrun_expected(x, sent), RESRUN_MIN_DRAIN_S,
                       x->r.o->drain);
    run_mark(&x->r, &x->b);
    x->redis_ok =
        x->redis_ok && proc_read(x->r.tgt.redis_pid, &x->redis_b) == 0;
    if (x->stats_ok)
        x->stats_ok = resrun_stats(x, &x->after) == 0;
    if (run_tally(&x->r, sent, RESRUN_TALLY_S) != 0)
        x->r.failed = 1;
}

/* ---- figures ---------------------------------------------------------- */

static cJSON *resrun_events_json(const publish_stats_t *ps)
{
    cJSON *e = cJSON_CreateObject();

    cJSON_AddNumberToObject(e, "sent", (double)ps->sent);
    cJSON_AddNumberToObject(e, "acked", (double)ps->acked);
    cJSON_AddNumberToObject(e, "failed", (double)ps->failed);
    cJSON_AddNumberToObject(e, "redis_receivers", (double)ps->receivers);
    cJSON_AddNumberToObject(e, "max_publish_lag_ms",
                            (double)ps->max_lag_us / 1e3);
    return e;
}

/* What moved in gatewayd's /stats over the window (the gauges: at its
 * end). */
static cJSON *resrun_server_json(const resrun_t *x)
{
    const resume_stats_t *a = &x->before, *b = &x->after;
    cJSON *g = cJSON_CreateObject();

    cJSON_AddNumberToObject(g, "resumed", b->resumed - a->resumed);
    cJSON_AddNumberToObject(g, "resume_invalid", b->invalid - a->invalid);
    cJSON_AddNumberToObject(g, "replayed", b->replayed - a->replayed);
    cJSON_AddNumberToObject(g, "resume_overflows", b->overflows - a->overflows);
    cJSON_AddNumberToObject(g, "resume_expired", b->expired - a->expired);
    cJSON_AddNumberToObject(g, "resume_handed_over", b->handed - a->handed);
    cJSON_AddNumberToObject(g, "parked_at_end", b->parked);
    cJSON_AddNumberToObject(g, "sessions_at_end", b->sessions);
    cJSON_AddNumberToObject(g, "connections_at_end", b->connections);
    return g;
}

/* The clients' account of what they received. */
static void resrun_account_json(const resrun_t *x, cJSON *res)
{
    const stats_counters_t *w = &x->r.win.c, *t = &x->r.total.c;
    uint64_t expected = resrun_expected(x, publish_stats(x->pub)->sent);

    cJSON_AddNumberToObject(res, "deliveries", (double)w->deliveries);
    cJSON_AddNumberToObject(res, "expected", (double)expected);
    cJSON_AddNumberToObject(
        res, "received_distinct",
        (double)(w->deliveries - w->event_dups - w->event_foreign));
    cJSON_AddNumberToObject(res, "lost", (double)t->lost);
    cJSON_AddNumberToObject(res, "lost_at_invalid", (double)t->lost_at_invalid);
    cJSON_AddNumberToObject(res, "lost_not_back", (double)t->lost_not_back);
    cJSON_AddNumberToObject(res, "duplicated", (double)t->event_dups);
    cJSON_AddNumberToObject(res, "seq_gaps", (double)t->seq_gaps);
    cJSON_AddNumberToObject(res, "seq_repeats", (double)t->seq_repeats);
    cJSON_AddNumberToObject(res, "out_of_order", (double)t->event_disorder);
    cJSON_AddNumberToObject(res, "foreign", (double)t->event_foreign);
}

static void resrun_results(resrun_t *x)
{
    const client_figures_t *w = &x->r.win;
    cJSON *res = x->r.results;
    double churn_s = (double)(x->t_quiet - x->a.t_us) / 1e6;

    cJSON_AddNumberToObject(res, "sessions", x->r.sessions);
    cJSON_AddNumberToObject(res, "identified", (double)x->a.c.identified);
    cJSON_AddNumberToObject(res, "guilds", (double)x->r.o->guilds);
    cJSON_AddNumberToObject(res, "members", x->members);
    cJSON_AddItemToObject(res, "events",
                          resrun_events_json(publish_stats(x->pub)));
    cJSON_AddNumberToObject(res, "churn_pct_per_s", x->r.o->churn);
    cJSON_AddNumberToObject(res, "churn_s", churn_s);
    cJSON_AddNumberToObject(res, "cuts", (double)w->c.drops);
    cJSON_AddNumberToObject(res, "resumes_sent", (double)w->c.resumes_sent);
    cJSON_AddNumberToObject(res, "resumed", (double)w->c.resumed);
    cJSON_AddNumberToObject(res, "resumes_per_s",
                            churn_s > 0 ? (double)w->c.resumed / churn_s : 0);
    cJSON_AddNumberToObject(res, "invalid_session",
                            (double)w->c.resume_invalid);
    cJSON_AddNumberToObject(res, "close_4007", (double)w->c.close_4007);
    cJSON_AddNumberToObject(res, "replayed", (double)w->c.replayed);
    cJSON_AddNumberToObject(res, "open_at_end", (double)x->r.total.open);
    resrun_account_json(x, res);
    cJSON_AddItemToObject(res, "resume_latency", run_latency_json(&w->conn));
    cJSON_AddItemToObject(res, "delivery_latency", run_latency_json(&w->lat));
    run_window_json(&x->a, &x->b, res);
    if (x->redis_ok)
        cJSON_AddNumberToObject(res, "redis_cpu_s",
                                proc_cpu_between(&x->redis_a, &x->redis_b));
    if (x->stats_ok)
        cJSON_AddItemToObject(res, "gatewayd", resrun_server_json(x));
    cJSON_AddItemToObject(res, "window_counters",
                          run_counters_json(&x->a.c, &x->b.c));
}

/* A figure that must be 0 and is not fails the run. */
static void resrun_must_be_zero(resrun_t *x, const char *what, uint64_t v)
{
    if (v == 0)
        return;
    util_warn("%s: %llu (must be 0)", what, (unsigned long long)v);
    x->r.failed = 1;
}

static void resrun_verdict(resrun_t *x)
{
    const stats_counters_t *t = &x->r.total.c, *w = &x->r.win.c;

    if (x->a.c.identified < x->r.sessions) {
        util_warn("only %llu of %u sessions identified",
                  (unsigned long long)x->a.c.identified, x->r.sessions);
        x->r.failed = 1;
    }
    resrun_must_be_zero(x, "lost", t->lost);
    resrun_must_be_zero(x, "lost at invalid_session", t->lost_at_invalid);
    resrun_must_be_zero(x, "lost, not back", t->lost_not_back);
    resrun_must_be_zero(x, "duplicated", t->event_dups);
    resrun_must_be_zero(x, "seq gaps", t->seq_gaps);
    resrun_must_be_zero(x, "seq repeats", t->seq_repeats);
    resrun_must_be_zero(x, "out of order", t->event_disorder);
    resrun_must_be_zero(x, "foreign events", t->event_foreign);
    resrun_must_be_zero(x, "invalid_session", t->resume_invalid);
    resrun_must_be_zero(x, "closes 4007", t->close_4007);
    resrun_must_be_zero(x, "cut sessions not resumed",
                        w->drops > w->resumed ? w->drops - w->resumed : 0);
    if (publish_stats(x->pub)->broken ||
        publish_stats(x->pub)->receivers == 0) {
        util_warn("the publisher broke or reached no subscriber");
        x->r.failed = 1;
    }
}

static void resrun_steps(resrun_t *x)
{
    if (run_connect_all(&x->r, x->r.o->rate) != 0 || resrun_publisher(x) != 0) {
        x->r.failed = 1;
        return;
    }
    resrun_churn(x);
    resrun_finish(x);
    resrun_results(x);
    resrun_verdict(x);
}

int scenario_resume(const opts_t *o)
{
    resrun_t x;
    uint32_t n = (uint32_t)o->sessions;
    run_spec_t spec;
    int rc;

    memset(&x, 0, sizeof(x));
    if (o->event_rate <= 0 || o->target.n > 0) {
        util_warn("resume needs --event-rate > 0, and starts its own "
                  "gatewayd and Redis (no --target)");
        return 2;
    }
    x.members = (uint32_t)((n + o->guilds - 1) / o->guilds);
    x.count = o->events > 0 ? (uint64_t)o->events
                            : (uint64_t)(o->event_rate * o->duration);
    if (x.count == 0 || x.count > RESRUN_MAX_EVENTS) {
        util_warn("resume publishes 1 to %d events (--events, or "
                  "--event-rate x --duration)",
                  RESRUN_MAX_EVENTS);
        return 2;
    }
    /* Shared with the client processes forked by run_open_spec. */
    x.record = mmap(NULL, (x.count + 1) * sizeof(uint64_t),
                    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (x.record == MAP_FAILED)
        util_die("cannot map the publisher's record");
    spec = (run_spec_t){.scenario = "resume",
                        .sessions = n,
                        .guilds = (uint32_t)o->guilds,
                        .members = x.members,
                        .broker = TARGET_BROKER_REDIS,
                        .resume = 1,
                        .record = x.record,
                        .record_cap = x.count};
    if (run_open_spec(&x.r, o, &spec) == 0)
        resrun_steps(&x);
    else
        x.r.failed = 1;
    if (x.pub != NULL)
        publish_free(x.pub);
    rc = run_close(&x.r);
    munmap(x.record, (x.count + 1) * sizeof(uint64_t));
    return rc;
}
