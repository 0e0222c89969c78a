/*
 * fanout --instances K: what an event costs a cluster of K gatewayd
 * sharing one Redis, in the targeted design (redis.targeted = true, the
 * default: each instance subscribes the channels of the guilds, users and
 * sessions it holds) or the old one (--gw-set redis.targeted=false: every
 * instance reads every event on the plain channel). A private
 * redis-server, K instances of --workers each (cluster.h, no proxy),
 * --guilds x --members sessions, guild g and all its members on instance
 * g % K (scale.h). Events go out as a backend publishes them, at
 * --event-rate for --duration s, event n to guild n % guilds: PUBLISH on
 * the guild's channel gateway_events:guild:g<g> when targeted, on
 * gateway_events otherwise.
 *
 * Readings: with the instances up and no session; once every session has
 * identified and each instance holds a channel for every target it wants;
 * after SCALE_QUIET_S of quiet (what K idle instances cost); after
 * publishing and the last deliveries. CPU comes from schedstat (proc.h,
 * nanoseconds): each instance's broker thread (gw-broker) and all its
 * threads, and redis-server's. /stats is read outside the CPU windows
 * where it can be (it costs the broker thread a little), never inside
 * the quiet one.
 *
 * Figures: per instance the events received by channel kind, checked
 * against what it owes (scale_check), and its broker's CPU; over all
 * instances the broker CPU per published event (issue 13's target: at
 * K = 8 within 1.5x of K = 1 when targeted) and the daemons' CPU per
 * event; Redis's CPU per event; delivery latency; from the connects, what
 * a subscription costs Redis (used_memory, CPU) and the brokers (CPU).
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "cluster.h"
#include "publish.h"
#include "run.h"
#include "scale.h"
#include "scenario.h"
#include "util.h"

#define SCALE_READY_S 10.0   /* the publisher's connection */
#define SCALE_SETTLE_S 15.0  /* every channel subscribed, after the connects */
#define SCALE_QUIET_S 2.0    /* the idle instances' own cost */
#define SCALE_POLL_US 100000 /* /stats while waiting for the channels */
#define SCALE_HTTP_MS 1000
#define SCALE_BODY_MAX (1 << 17) /* a /stats answer */
#define SCALE_INFO_MAX 16384     /* Redis's INFO memory */
#define SCALE_CHANNEL "gateway_events"
#define SCALE_BROKER "gw-broker" /* the broker thread's name */

/* CPU seconds at one moment: each instance's broker thread and all its
 * threads, and Redis. */
typedef struct scale_cpu {
    double broker_s[CLUSTER_MAX_INST];
    double proc_s[CLUSTER_MAX_INST];
    double redis_s;
    uint64_t t_us;
    int ok;
} scale_cpu_t;

typedef struct scalerun {
    run_t r;
    opts_t o; /* the options, with --target and --http-url the instances */
    char url[CLUSTER_MAX_INST][48];
    cluster_t cl;
    int cl_started;
    unsigned k;
    int targeted;
    uint32_t sessions;
    publish_t *pub;
    uint64_t polled_us; /* the last /stats poll while settling */
    /* /stats: instances up, sessions subscribed, the tail in */
    scale_stats_t st_up[CLUSTER_MAX_INST], st_sub[CLUSTER_MAX_INST],
        st_end[CLUSTER_MAX_INST];
    int st_ok;
    /* CPU: instances up, sessions subscribed, the quiet's start and end
     * (publishing begins), the tail in */
    scale_cpu_t c_up, c_sub, c_idle, c_quiet, c_end;
    double mem_up, mem_sub; /* Redis's used_memory; -1 unknown */
    run_mark_t a, b;        /* the clients' window: publishing, tail */
} scalerun_t;

static char scale_body[SCALE_BODY_MAX];

/* ---- readings --------------------------------------------------------- */

static int scalerun_stats(scalerun_t *x, unsigned i, scale_stats_t *s)
{
    if (cluster_get(&x->cl, i, "/stats", scale_body, sizeof(scale_body),
                    SCALE_HTTP_MS) != 200)
        return -1;
    return scale_stats_parse(scale_body, strlen(scale_body), s);
}

/* Every instance's /stats into st; clears st_ok when one fails. */
static void scalerun_stats_all(scalerun_t *x, scale_stats_t *st)
{
    for (unsigned i = 0; i < x->k; i++)
        if (scalerun_stats(x, i, &st[i]) != 0) {
            util_warn("cannot read %s's /stats broker figures", x->cl.gw[i].id);
            x->st_ok = 0;
        }
}

/* Reads c: Redis's threads, and each instance's broker thread (found by
 * its name: exactly one) and all its threads; c->ok when all were read. */
static void scalerun_cpu(scalerun_t *x, scale_cpu_t *c)
{
    c->ok = proc_threads_cpu(x->r.tgt.redis_pid, NULL, &c->redis_s) > 0;
    for (unsigned i = 0; i < x->k; i++) {
        int n =
            proc_threads_cpu(x->cl.gw[i].pid, SCALE_BROKER, &c->broker_s[i]);

        if (n != 1)
            util_warn("%s has %d threads named %s (a gatewayd that does "
                      "not name its threads?)",
                      x->cl.gw[i].id, n, SCALE_BROKER);
        c->ok = c->ok && n == 1 &&
                proc_threads_cpu(x->cl.gw[i].pid, NULL, &c->proc_s[i]) > 0;
    }
    c->t_us = util_now_us();
}

static double scalerun_redis_mem(scalerun_t *x)
{
    char info[SCALE_INFO_MAX];
    double v;

    if (target_redis_info(&x->r.tgt, "memory", info, sizeof(info)) != 0 ||
        scale_info_field(info, "used_memory", &v) != 0)
        return -1;
    return v;
}

/* ---- the steps -------------------------------------------------------- */

static int scalerun_cluster(scalerun_t *x)
{
    cluster_conf_t cc = {
        .o = &x->o,
        .dir = x->r.tgt.dir,
        .id_prefix = "gwscale",
        .redis_host = x->r.tgt.redis_host,
        .redis_port = x->r.tgt.redis_port,
        .channel = SCALE_CHANNEL,
    };

    x->cl_started = 1;
    if (cluster_start(&x->cl, &cc) != 0)
        return -1;
    /* The run's server figures (its series, server_cpu_s) are theirs. */
    for (unsigned i = 0; i < x->k; i++)
        x->r.tgt.inst[i].pid = x->cl.gw[i].pid;
    x->r.tgt.pid = x->cl.gw[0].pid;
    return 0;
}

/* Every instance holds its sessions and, targeted, their channels. */
static int scalerun_settled(run_t *r, void *ud)
{
    scalerun_t *x = ud;
    uint64_t now = util_now_us();
    scale_stats_t s;

    (void)r;
    if (now - x->polled_us < SCALE_POLL_US)
        return 0;
    x->polled_us = now;
    for (unsigned i = 0; i < x->k; i++) {
        double want = (double)scale_guilds_on((uint32_t)x->o.guilds, x->k, i) *
                      (double)x->o.members;

        if (scalerun_stats(x, i, &s) != 0 ||
            !scale_settled(&x->st_up[i], &s, want, x->targeted))
            return 0;
    }
    return 1;
}

static int scalerun_publisher(scalerun_t *x)
{
    publish_conf_t pc;

    memset(&pc, 0, sizeof(pc));
    pc.via = PUBLISH_REDIS;
    snprintf(pc.host, sizeof(pc.host), "%s", x->r.tgt.redis_host);
    pc.port = x->r.tgt.redis_port;
    pc.channel = SCALE_CHANNEL;
    pc.targeted = x->targeted;
    pc.guilds = (uint32_t)x->o.guilds;
    pc.payload = (size_t)x->o.payload;
    x->pub = publish_new(&x->r.loop, &pc);
    if (run_until(&x->r, run_publisher_ready, x->pub, SCALE_READY_S) != 0 ||
        publish_ready(x->pub) < 0) {
        util_warn("cannot connect the publisher to %s:%d", pc.host, pc.port);
        return -1;
    }
    return 0;
}

/* The instances up: the baseline; the sessions connect and the
 * instances subscribe what they want. */
static int scalerun_connect(scalerun_t *x)
{
    scalerun_stats_all(x, x->st_up);
    x->mem_up = scalerun_redis_mem(x);
    scalerun_cpu(x, &x->c_up);
    if (run_connect_all(&x->r, x->o.rate) != 0)
        return -1;
    x->r.phase = "subscribe";
    if (run_until(&x->r, scalerun_settled, x, SCALE_SETTLE_S) != 0) {
        util_warn("the instances did not hold their sessions and channels "
                  "within %.0f s",
                  SCALE_SETTLE_S);
        return -1;
    }
    scalerun_stats_all(x, x->st_sub);
    scalerun_cpu(x, &x->c_sub);
    x->mem_sub = scalerun_redis_mem(x);
    return 0;
}

/* Quiet, then events; until the last deliveries are in. */
static void scalerun_measure(scalerun_t *x)
{
    const opts_t *o = &x->o;
    uint64_t count = o->events > 0 ? (uint64_t)o->events
                                   : (uint64_t)(o->event_rate * o->duration);
    double max_s = (double)count / o->event_rate * 2 + 10;

    x->r.phase = "quiet";
    scalerun_cpu(x, &x->c_idle);
    run_sleep(&x->r, SCALE_QUIET_S);
    scalerun_cpu(x, &x->c_quiet);
    run_window_begin(&x->r, &x->a);
    x->r.phase = "publish";
    publish_start(x->pub, o->event_rate, count);
    if (run_until(&x->r, run_publisher_done, x->pub, max_s) != 0)
        util_warn("the publisher did not finish in time");
    run_drain(&x->r, publish_stats(x->pub)->sent * (uint64_t)o->members,
              o->drain);
    scalerun_cpu(x, &x->c_end);
    run_mark(&x->r, &x->b);
    scalerun_stats_all(x, x->st_end);
}

/* ---- figures ---------------------------------------------------------- */

static double scalerun_sum(const double *v, unsigned k)
{
    double s = 0;

    for (unsigned i = 0; i < k; i++)
        s += v[i];
    return s;
}

/* b - a per instance into d; their sum. */
static double scalerun_diff(const double *a, const double *b, double *d,
                            unsigned k)
{
    for (unsigned i = 0; i < k; i++)
        d[i] = b[i] - a[i];
    return scalerun_sum(d, k);
}

/* What an instance's /stats counted between readings a and b. */
static void scalerun_received_json(const scale_stats_t *a,
                                   const scale_stats_t *b, cJSON *o)
{
    cJSON_AddNumberToObject(o, "events_redis", b->events - a->events);
    cJSON_AddNumberToObject(o, "events_redis_plain", b->plain - a->plain);
    cJSON_AddNumberToObject(o, "events_redis_guild", b->guild - a->guild);
    cJSON_AddNumberToObject(o, "events_redis_user", b->user - a->user);
    cJSON_AddNumberToObject(o, "events_redis_session", b->session - a->session);
    cJSON_AddNumberToObject(o, "redis_target_mismatches",
                            b->mismatches - a->mismatches);
}

static cJSON *scalerun_instance_json(const scalerun_t *x, unsigned i,
                                     uint64_t sent, double broker_s,
                                     double idle_s)
{
    const scale_stats_t *a = &x->st_sub[i], *b = &x->st_end[i];
    uint64_t owed =
        scale_received(sent, (uint32_t)x->o.guilds, x->k, i, x->targeted);
    const char *fault = scale_check(a, b, owed, x->targeted);
    double quiet = (double)(x->c_quiet.t_us - x->c_idle.t_us) / 1e6;
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "instance_id", x->cl.gw[i].id);
    cJSON_AddNumberToObject(o, "guilds",
                            scale_guilds_on((uint32_t)x->o.guilds, x->k, i));
    cJSON_AddNumberToObject(o, "sessions", b->sessions);
    cJSON_AddNumberToObject(o, "redis_channels", a->channels);
    cJSON_AddNumberToObject(o, "targets_wanted", a->wanted);
    cJSON_AddNumberToObject(o, "events_owed", (double)owed);
    scalerun_received_json(a, b, o);
    cJSON_AddStringToObject(o, "check", fault != NULL ? fault : "ok");
    cJSON_AddNumberToObject(o, "broker_cpu_s", broker_s);
    cJSON_AddNumberToObject(o, "cpu_s",
                            x->c_end.proc_s[i] - x->c_quiet.proc_s[i]);
    if (b->events > a->events)
        cJSON_AddNumberToObject(o, "broker_us_per_received",
                                broker_s * 1e6 / (b->events - a->events));
    if (quiet > 0)
        cJSON_AddNumberToObject(o, "broker_idle_ms_per_s",
                                idle_s * 1e3 / quiet);
    return o;
}

/* Per instance, and the broker threads' sum per published event: as
 * measured, and less what they cost idle over as long a window. */
static void scalerun_broker_json(const scalerun_t *x, uint64_t sent, cJSON *res)
{
    double busy[CLUSTER_MAX_INST], idle[CLUSTER_MAX_INST];
    double quiet = (double)(x->c_quiet.t_us - x->c_idle.t_us) / 1e6;
    double window = (double)(x->c_end.t_us - x->c_quiet.t_us) / 1e6;
    double sum =
        scalerun_diff(x->c_quiet.broker_s, x->c_end.broker_s, busy, x->k);
    double isum =
        scalerun_diff(x->c_idle.broker_s, x->c_quiet.broker_s, idle, x->k);
    cJSON *arr = cJSON_CreateArray();

    for (unsigned i = 0; i < x->k; i++)
        cJSON_AddItemToArray(
            arr, scalerun_instance_json(x, i, sent, busy[i], idle[i]));
    cJSON_AddItemToObject(res, "per_instance", arr);
    cJSON_AddNumberToObject(res, "broker_cpu_s", sum);
    if (sent == 0 || quiet <= 0)
        return;
    cJSON_AddNumberToObject(res, "broker_us_per_event",
                            sum * 1e6 / (double)sent);
    cJSON_AddNumberToObject(res, "broker_idle_ms_per_s", isum * 1e3 / quiet);
    cJSON_AddNumberToObject(res, "broker_us_per_event_less_idle",
                            (sum - isum / quiet * window) * 1e6 / (double)sent);
}

/* The daemons' CPU (all threads: the fan-out's writes too) and Redis's
 * per published event; Redis's idle rate. */
static void scalerun_cost_json(const scalerun_t *x, uint64_t sent, cJSON *res)
{
    double d[CLUSTER_MAX_INST];
    double quiet = (double)(x->c_quiet.t_us - x->c_idle.t_us) / 1e6;
    double window = (double)(x->c_end.t_us - x->c_quiet.t_us) / 1e6;
    double proc = scalerun_diff(x->c_quiet.proc_s, x->c_end.proc_s, d, x->k);
    double redis = x->c_end.redis_s - x->c_quiet.redis_s;
    double ridle = x->c_quiet.redis_s - x->c_idle.redis_s;

    cJSON_AddNumberToObject(res, "daemon_cpu_s", proc);
    cJSON_AddNumberToObject(res, "redis_cpu_s", redis);
    if (sent == 0 || quiet <= 0)
        return;
    cJSON_AddNumberToObject(res, "daemon_us_per_event",
                            proc * 1e6 / (double)sent);
    cJSON_AddNumberToObject(res, "redis_us_per_event",
                            redis * 1e6 / (double)sent);
    cJSON_AddNumberToObject(res, "redis_idle_ms_per_s", ridle * 1e3 / quiet);
    cJSON_AddNumberToObject(res, "redis_us_per_event_less_idle",
                            (redis - ridle / quiet * window) * 1e6 /
                                (double)sent);
}

/* From the instances up to every session subscribed: the channels Redis
 * took, and what they cost it (memory, CPU) and the brokers (CPU, with
 * the identifies' traffic on the broker thread and the settle's /stats
 * polls: an upper bound). */
static cJSON *scalerun_subs_json(const scalerun_t *x)
{
    double d[CLUSTER_MAX_INST], ch = 0, cmds = 0;
    double broker = scalerun_diff(x->c_up.broker_s, x->c_sub.broker_s, d, x->k);
    double redis = x->c_sub.redis_s - x->c_up.redis_s;
    cJSON *o = cJSON_CreateObject();

    for (unsigned i = 0; i < x->k; i++) {
        ch += x->st_sub[i].channels - x->st_up[i].channels;
        cmds += x->st_sub[i].subscribes - x->st_up[i].subscribes;
    }
    cJSON_AddNumberToObject(o, "channels", ch);
    cJSON_AddNumberToObject(o, "subscribe_commands", cmds);
    cJSON_AddNumberToObject(o, "seconds",
                            (double)(x->c_sub.t_us - x->c_up.t_us) / 1e6);
    cJSON_AddNumberToObject(o, "redis_cpu_s", redis);
    cJSON_AddNumberToObject(o, "broker_cpu_s", broker);
    if (x->mem_up >= 0 && x->mem_sub >= 0) {
        cJSON_AddNumberToObject(o, "redis_used_memory_before", x->mem_up);
        cJSON_AddNumberToObject(o, "redis_used_memory_after", x->mem_sub);
    }
    if (ch <= 0)
        return o;
    cJSON_AddNumberToObject(o, "redis_us_per_channel", redis * 1e6 / ch);
    cJSON_AddNumberToObject(o, "broker_us_per_channel", broker * 1e6 / ch);
    if (x->mem_up >= 0 && x->mem_sub >= 0)
        cJSON_AddNumberToObject(o, "redis_bytes_per_channel",
                                (x->mem_sub - x->mem_up) / ch);
    return o;
}

static cJSON *scalerun_events_json(const publish_stats_t *ps)
{
    cJSON *e = cJSON_CreateObject();

    cJSON_AddNumberToObject(e, "sent", (double)ps->sent);
    cJSON_AddNumberToObject(e, "acked", (double)ps->acked);
    cJSON_AddNumberToObject(e, "failed", (double)ps->failed);
    cJSON_AddNumberToObject(e, "redis_receivers", (double)ps->receivers);
    if (ps->acked > 0)
        cJSON_AddNumberToObject(e, "receivers_per_event",
                                (double)ps->receivers / (double)ps->acked);
    cJSON_AddNumberToObject(e, "max_publish_lag_ms",
                            (double)ps->max_lag_us / 1e3);
    return e;
}

static void scalerun_results(scalerun_t *x)
{
    const publish_stats_t *ps = publish_stats(x->pub);
    const client_figures_t *w = &x->r.win;
    uint64_t expected = ps->sent * (uint64_t)x->o.members;
    cJSON *res = x->r.results;
    double srv;

    cJSON_AddNumberToObject(res, "instances", x->k);
    cJSON_AddStringToObject(res, "design", x->targeted ? "targeted" : "plain");
    cJSON_AddNumberToObject(res, "sessions", x->sessions);
    cJSON_AddNumberToObject(res, "identified", (double)x->a.c.identified);
    cJSON_AddStringToObject(res, "via", "redis");
    cJSON_AddItemToObject(res, "events", scalerun_events_json(ps));
    cJSON_AddNumberToObject(res, "deliveries", (double)w->c.deliveries);
    cJSON_AddNumberToObject(res, "expected", (double)expected);
    cJSON_AddNumberToObject(res, "delivered_share",
                            expected ? (double)w->c.deliveries / expected : 0);
    cJSON_AddBoolToObject(res, "all_delivered",
                          expected > 0 && w->c.deliveries == expected);
    cJSON_AddItemToObject(res, "latency", run_latency_json(&w->lat));
    if (x->st_ok && x->c_up.ok && x->c_sub.ok && x->c_idle.ok &&
        x->c_quiet.ok && x->c_end.ok) {
        scalerun_broker_json(x, ps->sent, res);
        scalerun_cost_json(x, ps->sent, res);
        cJSON_AddItemToObject(res, "subscriptions", scalerun_subs_json(x));
    }
    srv = run_window_json(&x->a, &x->b, res);
    if (srv > 0)
        cJSON_AddNumberToObject(res, "deliveries_per_server_cpu_s",
                                (double)w->c.deliveries / srv);
    cJSON_AddItemToObject(res, "window_counters",
                          run_counters_json(&x->a.c, &x->b.c));
}

/* Not ok: a session not identified, an instance that received other
 * events than it owes, a delivery missing, figures not read. */
static void scalerun_verdict(scalerun_t *x)
{
    const publish_stats_t *ps = publish_stats(x->pub);
    uint64_t expected = ps->sent * (uint64_t)x->o.members;

    if (x->a.c.identified < x->sessions) {
        util_warn("only %llu of %u sessions identified",
                  (unsigned long long)x->a.c.identified, x->sessions);
        x->r.failed = 1;
    }
    for (unsigned i = 0; x->st_ok && i < x->k; i++) {
        uint64_t owed = scale_received(ps->sent, (uint32_t)x->o.guilds, x->k, i,
                                       x->targeted);
        const char *f =
            scale_check(&x->st_sub[i], &x->st_end[i], owed, x->targeted);

        if (f != NULL) {
            util_warn("%s: %s is not what it owes (%llu events)",
                      x->cl.gw[i].id, f, (unsigned long long)owed);
            x->r.failed = 1;
        }
    }
    if (x->r.win.c.deliveries != expected) {
        util_warn("%llu deliveries of %llu",
                  (unsigned long long)x->r.win.c.deliveries,
                  (unsigned long long)expected);
        x->r.failed = 1;
    }
    if (ps->broken || ps->receivers == 0 || !x->st_ok || !x->c_end.ok) {
        util_warn("the publisher broke or reached no subscriber, or a "
                  "figure could not be read");
        x->r.failed = 1;
    }
}

/* ---- the run ---------------------------------------------------------- */

static void scalerun_steps(scalerun_t *x)
{
    if (scalerun_cluster(x) != 0 || scalerun_connect(x) != 0 ||
        scalerun_publisher(x) != 0) {
        x->r.failed = 1;
        return;
    }
    scalerun_measure(x);
    scalerun_results(x);
    scalerun_verdict(x);
}

/* The options of the run: the clients' --target are the instances. */
static int scalerun_options(scalerun_t *x, const opts_t *o)
{
    if (strcmp(o->via, "redis") != 0 || o->target.n > 0 || o->redis != NULL ||
        o->storm > 0 || strcmp(o->tls, "off") != 0 || o->event_rate <= 0) {
        util_warn("fanout --instances publishes through a Redis of its own "
                  "(--via redis, no --target, --redis, --storm or --tls) at "
                  "an --event-rate > 0");
        return -1;
    }
    if (o->guilds < o->instances || o->guilds * o->members > 1000000) {
        util_warn("fanout --instances needs a guild for each instance, and "
                  "at most 1e6 sessions");
        return -1;
    }
    x->targeted = scale_targeted(o->gw_set.v, o->gw_set.n);
    if (x->targeted < 0) {
        util_warn("--gw-set redis.targeted must be true or false");
        return -1;
    }
    x->k = (unsigned)o->instances;
    x->sessions = (uint32_t)(o->guilds * o->members);
    if (cluster_init(&x->cl, x->k) != 0)
        return -1;
    x->o = *o;
    for (unsigned i = 0; i < x->k; i++) {
        snprintf(x->url[i], sizeof(x->url[i]), "ws://127.0.0.1:%d/",
                 x->cl.gw[i].ws_port);
        x->o.target.v[i] = x->url[i];
    }
    x->o.target.n = x->k;
    x->st_ok = 1;
    return 0;
}

int scenario_fanout_instances(const opts_t *o)
{
    scalerun_t x;
    run_spec_t spec;

    memset(&x, 0, sizeof(x));
    if (scalerun_options(&x, o) != 0)
        return 2;
    spec = (run_spec_t){.scenario = "fanout",
                        .sessions = x.sessions,
                        .guilds = (uint32_t)o->guilds,
                        .members = (uint32_t)o->members,
                        .broker = TARGET_BROKER_REDIS,
                        .by_guild = 1};
    if (run_open_spec(&x.r, &x.o, &spec) == 0)
        scalerun_steps(&x);
    else
        x.r.failed = 1;
    if (x.pub != NULL)
        publish_free(x.pub);
    if (x.cl_started)
        cluster_stop(&x.cl);
    return run_close(&x.r);
}
