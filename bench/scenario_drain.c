/*
 * drain: gatewayd's drain handoff under load (docs/continuity.md section
 * 3). A private redis-server, two gatewayd instances sharing it and HAProxy
 * with deploy/haproxy.cfg in front of them (cluster.h), all on loopback
 * ports of their own. N sessions (-n) connect through the proxy in
 * --guilds guilds; events are published through Redis at --event-rate,
 * event n to guild n % guilds, carrying n (its guild's counter is
 * n / guilds). After DRAIN_WARMUP_S of events, the instance holding more
 * of the sessions (about half: the proxy balances by least connections)
 * gets SIGTERM: it closes them 4011 over --drain-ms,
 * each client connects again through the proxy at once and resumes with
 * the last seq it received, retrying after a short backoff when it is
 * refused or closed before it is live (drain.h), and the other instance
 * restores the session from Redis. The run goes on DRAIN_AFTER_S after
 * the drained instance exited; then publishing stops, the last deliveries
 * come in (at most --drain s) and each client tallies what it received.
 *
 * Each client checks what it got as the resume scenario's do (resume.h):
 * seq up by one from dispatch to dispatch across the move, no event twice
 * or after a later one, and none of its guild published after it
 * identified left out. The times: from SIGTERM to the first and the last
 * 4011, to the last moved client's `resumed` and to the drained process's
 * exit; per client, the 4011 to `resumed` (its retries included). And
 * what moved in the survivor's /stats: the handoffs restored, failed and
 * the held dispatches dropped as overlap.
 */
#include <cjson/cJSON.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "cluster.h"
#include "drain.h"
#include "publish.h"
#include "resume.h"
#include "run.h"
#include "scenario.h"
#include "util.h"

#define DRAIN_WARMUP_S 3.0 /* events before the SIGTERM */
#define DRAIN_AFTER_S 3.0  /* events after the drained instance exited */
#define DRAIN_READY_S 10.0 /* the publisher's connection */
/* The drained instance exits after its drain window, once its handed-off
 * sessions are claimed (at most session.handoff_wait_ms, 10 s, later). */
#define DRAIN_EXIT_S 25.0 /* past --drain-ms */
#define DRAIN_BACK_S 15.0 /* after that, for the last moved clients */
#define DRAIN_TALLY_S 5.0
#define DRAIN_POLL_US 500000 /* the drained instance's /stats, meanwhile */
#define DRAIN_HTTP_MS 1000
#define DRAIN_MAX_EVENTS 10000000
#define DRAIN_BODY_MAX 65536
#define DRAIN_CHANNEL "gateway_events"
#define DRAIN_INST 2 /* behind deploy/haproxy.cfg's two servers */
#define DRAIN_CPUS (DRAIN_INST + 2) /* the instances, HAProxy, Redis */
#define DRAIN_SETS 5                /* the instances' own settings */
#define DRAIN_PROXY_SPARE 1000 /* HAProxy connections beyond the sessions */
#define DRAIN_PROXY_FDS 100    /* its descriptors beyond two a connection */

typedef struct drainrun {
    run_t r;
    opts_t o; /* the options, with --target the proxy */
    char url[64];
    cluster_t cl;
    int cl_started;
    char set_buf[DRAIN_SETS][64];     /* the instances' -s settings */
    const char *sets[DRAIN_SETS + 1]; /* those, NULL-ended */
    uint32_t members;
    unsigned long maxconn; /* HAProxy's */
    uint64_t *record;      /* shared with the client processes */
    uint64_t count;        /* events the record has room for */
    publish_t *pub;
    unsigned victim, survivor;
    drain_stats_t at_term[DRAIN_INST]; /* each instance's at SIGTERM */
    drain_stats_t end;                 /* the survivor's at the end */
    drain_stats_t last;                /* the drained instance's, last read */
    int term_ok, end_ok, last_ok;
    uint64_t t_last_read; /* of last */
    uint64_t t_term;      /* SIGTERM sent */
    uint64_t t_exit;      /* its exit seen; 0 = not (yet) */
    uint64_t t_quiet;     /* publishing stopped */
    run_mark_t a, b;      /* publishing began; the tail is in */
    /* CPU over a .. b: each instance (the drained one to its exit), the
     * proxy, Redis. */
    proc_sample_t cpu_a[DRAIN_CPUS], cpu_b[DRAIN_CPUS];
    int cpu_ok[DRAIN_CPUS];
} drainrun_t;

static char drain_body[DRAIN_BODY_MAX];

static int drainrun_stats(drainrun_t *x, unsigned i, drain_stats_t *s)
{
    if (cluster_get(&x->cl, i, "/stats", drain_body, sizeof(drain_body),
                    DRAIN_HTTP_MS) != 200)
        return -1;
    return drain_stats_parse(drain_body, strlen(drain_body), s);
}

/* ---- waiting ---------------------------------------------------------- */

/* The drained instance has exited; meanwhile its /stats is read now and
 * then (its handoffs served and still waiting, should it not exit). */
static int drainrun_exited(run_t *r, void *ud)
{
    drainrun_t *x = ud;
    uint64_t now = util_now_us();

    (void)r;
    if (cluster_exited(&x->cl, x->victim)) {
        x->t_exit = now;
        return 1;
    }
    if (now - x->t_last_read >= DRAIN_POLL_US) {
        x->t_last_read = now;
        if (drainrun_stats(x, x->victim, &x->last) == 0)
            x->last_ok = 1;
    }
    return 0;
}

/* Every moved client is live again or done: resumed, given up, or told
 * invalid_session (it then identifies afresh). */
static int drainrun_all_back(run_t *r, void *ud)
{
    const stats_counters_t *w = &r->win.c;

    (void)ud;
    return w->resumed + w->drain_gave_up + w->resume_invalid >= w->drain_moved;
}

/* ---- the steps -------------------------------------------------------- */

/* The drain's settings of both instances: the drain window, the handoff
 * and its margin, a resume window longer than the run, and info logs, so
 * that a failed handoff says why. */
static const char *const *drainrun_sets(drainrun_t *x)
{
    snprintf(x->set_buf[0], sizeof(x->set_buf[0]), "server.drain_ms=%ld",
             x->o.drain_ms);
    snprintf(x->set_buf[1], sizeof(x->set_buf[1]),
             "session.handoff_margin_ms=%ld", x->o.margin_ms);
    snprintf(x->set_buf[2], sizeof(x->set_buf[2]),
             "session.resume_window_ms=120000");
    snprintf(x->set_buf[3], sizeof(x->set_buf[3]), "session.handoff=true");
    snprintf(x->set_buf[4], sizeof(x->set_buf[4]), "log.level=info");
    for (unsigned i = 0; i < DRAIN_SETS; i++)
        x->sets[i] = x->set_buf[i];
    x->sets[DRAIN_SETS] = NULL;
    return x->sets;
}

static int drainrun_cluster(drainrun_t *x)
{
    cluster_conf_t cc = {
        .o = &x->o,
        .haproxy_cfg = x->o.haproxy_cfg,
        .dir = x->r.tgt.dir,
        .id_prefix = "gwdrain",
        .redis_host = x->r.tgt.redis_host,
        .redis_port = x->r.tgt.redis_port,
        .channel = DRAIN_CHANNEL,
        .sets = drainrun_sets(x),
        .maxconn = x->maxconn,
        /* All clients come from 16 addresses: no per-address limit. */
        .per_ip = 100 * (unsigned long)x->r.sessions + 1000,
    };

    x->cl_started = 1;
    return cluster_start(&x->cl, &cc);
}

static int drainrun_publisher(drainrun_t *x)
{
    publish_conf_t pc;

    memset(&pc, 0, sizeof(pc));
    pc.via = PUBLISH_REDIS;
    snprintf(pc.host, sizeof(pc.host), "%s", x->r.tgt.redis_host);
    pc.port = x->r.tgt.redis_port;
    pc.channel = DRAIN_CHANNEL;
    pc.guilds = (uint32_t)x->o.guilds;
    pc.payload = (size_t)x->o.payload;
    pc.record = x->record;
    pc.record_cap = x->count;
    x->pub = publish_new(&x->r.loop, &pc);
    if (run_until(&x->r, run_publisher_ready, x->pub, DRAIN_READY_S) != 0 ||
        publish_ready(x->pub) < 0) {
        util_warn("cannot connect the publisher to %s:%d", pc.host, pc.port);
        return -1;
    }
    return 0;
}

/* CPU of the instances, the proxy and Redis into s[] (ok[i] stays set
 * for those read); an instance that exited, as it exited. */
static void drainrun_cpu(drainrun_t *x, proc_sample_t s[DRAIN_CPUS],
                         int ok[DRAIN_CPUS])
{
    pid_t pids[DRAIN_CPUS] = {0};

    for (unsigned i = 0; i < DRAIN_INST; i++) {
        const cluster_inst_t *in = &x->cl.gw[i];

        pids[i] = in->pid;
        if (in->pid <= 0) {
            ok[i] = ok[i] && in->exit_ok;
            s[i] = in->at_exit;
        }
    }
    pids[DRAIN_INST] = x->cl.proxy_pid;
    pids[DRAIN_INST + 1] = x->r.tgt.redis_pid;
    for (unsigned i = 0; i < DRAIN_CPUS; i++)
        if (pids[i] > 0)
            ok[i] = ok[i] && proc_read(pids[i], &s[i]) == 0;
}

/* Which instance to drain (drain_pick). */
static int drainrun_pick(drainrun_t *x)
{
    int v;

    for (unsigned i = 0; i < DRAIN_INST; i++)
        if (drainrun_stats(x, i, &x->at_term[i]) != 0) {
            util_warn("cannot read %s's /stats handoff figures",
                      x->cl.gw[i].id);
            return -1;
        }
    x->term_ok = 1;
    v = drain_pick(x->at_term[0].connections, x->at_term[1].connections);
    if (v < 0) {
        util_warn("neither instance holds a session");
        return -1;
    }
    x->victim = (unsigned)v;
    x->survivor = 1 - x->victim;
    return 0;
}

/* Events flow; after the warm-up the SIGTERM, then until the drained
 * instance exited and DRAIN_AFTER_S more. */
static int drainrun_drain(drainrun_t *x)
{
    double exit_s = (double)x->o.drain_ms / 1000 + DRAIN_EXIT_S;

    run_window_begin(&x->r, &x->a);
    for (unsigned i = 0; i < DRAIN_CPUS; i++)
        x->cpu_ok[i] = 1;
    drainrun_cpu(x, x->cpu_a, x->cpu_ok);
    x->r.phase = "warm-up";
    publish_start(x->pub, x->o.event_rate, x->count);
    run_sleep(&x->r, DRAIN_WARMUP_S);
    if (drainrun_pick(x) != 0)
        return -1;
    x->r.phase = "drain";
    x->t_term = x->t_last_read = util_now_us();
    if (cluster_signal(&x->cl, x->victim, SIGTERM) != 0) {
        util_warn("cannot signal %s", x->cl.gw[x->victim].id);
        return -1;
    }
    if (run_until(&x->r, drainrun_exited, x, exit_s) != 0) {
        util_warn("%s did not exit within %.0f s of its SIGTERM",
                  x->cl.gw[x->victim].id, exit_s);
        x->r.failed = 1;
    }
    x->r.phase = "after";
    run_sleep(&x->r, DRAIN_AFTER_S);
    return 0;
}

/* Publishing stops, the moved clients are all back, the last deliveries
 * come in (at least half a second, for the clients' last reports); the
 * figures, then the clients' tally. */
static void drainrun_finish(drainrun_t *x)
{
    uint64_t sent;

    publish_stop(x->pub);
    x->t_quiet = util_now_us();
    x->r.phase = "back";
    if (run_until(&x->r, drainrun_all_back, NULL, DRAIN_BACK_S) != 0)
        util_warn("not every moved session came back in %.0f s", DRAIN_BACK_S);
    if (run_until(&x->r, run_publisher_done, x->pub, 10) != 0)
        util_warn("the publisher's last events were not answered");
    sent = publish_stats(x->pub)->sent;
    x->r.phase = "tail";
    run_drain_distinct(
        &x->r,
        drain_expected(sent, x->r.sessions, (uint32_t)x->o.guilds, x->members),
        0.5, x->o.drain);
    run_mark(&x->r, &x->b);
    drainrun_cpu(x, x->cpu_b, x->cpu_ok);
    x->end_ok = drainrun_stats(x, x->survivor, &x->end) == 0;
    if (run_tally(&x->r, sent, DRAIN_TALLY_S) != 0)
        x->r.failed = 1;
}

/* ---- figures ---------------------------------------------------------- */

/* Seconds from the SIGTERM to stamp; -1 when there is none. */
static double drainrun_since_term(const drainrun_t *x, uint64_t stamp)
{
    return stamp > x->t_term && x->t_term > 0
               ? (double)(stamp - x->t_term) / 1e6
               : -1;
}

static cJSON *drainrun_events_json(const publish_stats_t *ps)
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

/* The instances: their ids, sessions at the SIGTERM, which was drained. */
static cJSON *drainrun_instances_json(const drainrun_t *x)
{
    cJSON *a = cJSON_CreateArray();

    for (unsigned i = 0; i < DRAIN_INST; i++) {
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "instance_id", x->cl.gw[i].id);
        cJSON_AddBoolToObject(o, "drained", i == x->victim);
        cJSON_AddNumberToObject(o, "connections_at_sigterm",
                                x->at_term[i].connections);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

/* What moved in the survivor's /stats from the SIGTERM to the end. */
static cJSON *drainrun_survivor_json(const drainrun_t *x)
{
    const drain_stats_t *a = &x->at_term[x->survivor], *b = &x->end;
    cJSON *g = cJSON_CreateObject();

    cJSON_AddStringToObject(g, "instance_id", x->cl.gw[x->survivor].id);
    cJSON_AddNumberToObject(g, "handoffs_restored", b->restored - a->restored);
    cJSON_AddNumberToObject(g, "handoffs_failed", b->failed - a->failed);
    cJSON_AddNumberToObject(g, "handoff_overlap", b->overlap - a->overlap);
    cJSON_AddNumberToObject(g, "handoffs_served", b->served - a->served);
    cJSON_AddNumberToObject(g, "handoffs_waiting", b->waiting);
    cJSON_AddNumberToObject(g, "resumed", b->resumed - a->resumed);
    cJSON_AddNumberToObject(g, "resume_invalid", b->invalid - a->invalid);
    cJSON_AddNumberToObject(g, "replayed", b->replayed - a->replayed);
    cJSON_AddNumberToObject(g, "resume_overflows", b->overflows - a->overflows);
    cJSON_AddNumberToObject(g, "connections_at_end", b->connections);
    return g;
}

/* The drained instance's /stats as last read while it drained. */
static cJSON *drainrun_drained_json(const drainrun_t *x)
{
    cJSON *g = cJSON_CreateObject();

    cJSON_AddNumberToObject(g, "read_at_s",
                            drainrun_since_term(x, x->t_last_read));
    cJSON_AddNumberToObject(g, "handoffs_served", x->last.served);
    cJSON_AddNumberToObject(g, "handoffs_waiting", x->last.waiting);
    cJSON_AddNumberToObject(g, "connections", x->last.connections);
    return g;
}

/* The times of the move, seconds from the SIGTERM. */
static void drainrun_times_json(const drainrun_t *x, cJSON *res)
{
    const client_figures_t *w = &x->r.win;
    const cluster_inst_t *v = &x->cl.gw[x->victim];

    cJSON_AddNumberToObject(res, "first_4011_s",
                            drainrun_since_term(x, w->t_first_4011));
    cJSON_AddNumberToObject(res, "last_4011_s",
                            drainrun_since_term(x, w->t_last_4011));
    cJSON_AddNumberToObject(res, "all_resumed_s",
                            w->c.resumed >= w->c.drain_moved
                                ? drainrun_since_term(x, w->t_last_resumed)
                                : -1);
    cJSON_AddNumberToObject(res, "drained_exit_s",
                            drainrun_since_term(x, x->t_exit));
    if (x->t_exit > 0)
        cJSON_AddNumberToObject(res, "drained_exit_status",
                                WIFEXITED(v->status) ? WEXITSTATUS(v->status)
                                                     : -WTERMSIG(v->status));
}

/* The clients' account of what they received. */
static void drainrun_account_json(const drainrun_t *x, cJSON *res)
{
    const stats_counters_t *w = &x->r.win.c, *t = &x->r.total.c;

    cJSON_AddNumberToObject(res, "deliveries", (double)w->deliveries);
    cJSON_AddNumberToObject(
        res, "expected",
        (double)drain_expected(publish_stats(x->pub)->sent, x->r.sessions,
                               (uint32_t)x->o.guilds, x->members));
    cJSON_AddNumberToObject(
        res, "received_distinct",
        (double)(w->deliveries - w->event_dups - w->event_foreign));
    cJSON_AddNumberToObject(res, "lost", (double)t->lost);
    cJSON_AddNumberToObject(res, "lost_not_back", (double)t->lost_not_back);
    cJSON_AddNumberToObject(res, "lost_at_invalid", (double)t->lost_at_invalid);
    cJSON_AddNumberToObject(res, "duplicated", (double)t->event_dups);
    cJSON_AddNumberToObject(res, "out_of_order", (double)t->event_disorder);
    cJSON_AddNumberToObject(res, "seq_gaps", (double)t->seq_gaps);
    cJSON_AddNumberToObject(res, "seq_repeats", (double)t->seq_repeats);
    cJSON_AddNumberToObject(res, "foreign", (double)t->event_foreign);
    cJSON_AddNumberToObject(res, "replay_mismatch", (double)t->replay_mismatch);
}

/* CPU seconds over the window (publishing to the tail): each instance,
 * HAProxy, Redis, and what else the machine ran besides them and
 * gwbench (another measurement, a build: noise). */
static void drainrun_cpu_json(const drainrun_t *x, cJSON *res)
{
    const char *names[DRAIN_CPUS] = {NULL};
    double sum = proc_cpu_between(&x->a.gen, &x->b.gen);
    int all = 1;

    names[x->victim] = "drained_cpu_s";
    names[x->survivor] = "survivor_cpu_s";
    names[DRAIN_INST] = "haproxy_cpu_s";
    names[DRAIN_INST + 1] = "redis_cpu_s";
    for (unsigned i = 0; i < DRAIN_CPUS; i++) {
        double v = proc_cpu_between(&x->cpu_a[i], &x->cpu_b[i]);

        all = all && x->cpu_ok[i];
        if (!x->cpu_ok[i])
            continue;
        cJSON_AddNumberToObject(res, names[i], v);
        sum += v;
    }
    if (all && x->a.busy_s >= 0 && x->b.busy_s >= 0)
        cJSON_AddNumberToObject(res, "machine_other_cpu_s",
                                x->b.busy_s - x->a.busy_s - sum);
}

static void drainrun_results(drainrun_t *x)
{
    const client_figures_t *w = &x->r.win;
    cJSON *res = x->r.results;

    cJSON_AddNumberToObject(res, "sessions", x->r.sessions);
    cJSON_AddNumberToObject(res, "identified", (double)x->a.c.identified);
    cJSON_AddNumberToObject(res, "guilds", (double)x->o.guilds);
    cJSON_AddNumberToObject(res, "members", x->members);
    cJSON_AddNumberToObject(res, "margin_ms", (double)x->o.margin_ms);
    cJSON_AddNumberToObject(res, "drain_ms", (double)x->o.drain_ms);
    cJSON_AddItemToObject(res, "events",
                          drainrun_events_json(publish_stats(x->pub)));
    if (x->term_ok) {
        cJSON_AddItemToObject(res, "instances", drainrun_instances_json(x));
        cJSON_AddNumberToObject(res, "on_drained",
                                x->at_term[x->victim].connections);
    }
    cJSON_AddNumberToObject(res, "moved", (double)w->c.drain_moved);
    cJSON_AddNumberToObject(res, "resumes_sent", (double)w->c.resumes_sent);
    cJSON_AddNumberToObject(res, "resumed", (double)w->c.resumed);
    cJSON_AddNumberToObject(res, "retries", (double)w->c.drain_retries);
    cJSON_AddNumberToObject(res, "gave_up", (double)w->c.drain_gave_up);
    cJSON_AddNumberToObject(res, "invalid_session",
                            (double)w->c.resume_invalid);
    cJSON_AddNumberToObject(res, "closes_4011", (double)w->c.close_4011);
    cJSON_AddNumberToObject(res, "replayed", (double)w->c.replayed);
    cJSON_AddNumberToObject(res, "open_at_end", (double)x->r.total.open);
    drainrun_times_json(x, res);
    cJSON_AddItemToObject(res, "resume_latency", run_latency_json(&w->conn));
    drainrun_account_json(x, res);
    cJSON_AddItemToObject(res, "delivery_latency", run_latency_json(&w->lat));
    if (x->term_ok && x->end_ok)
        cJSON_AddItemToObject(res, "survivor", drainrun_survivor_json(x));
    if (x->last_ok)
        cJSON_AddItemToObject(res, "drained_last_read",
                              drainrun_drained_json(x));
    run_window_json(&x->a, &x->b, res);
    drainrun_cpu_json(x, res);
    cJSON_AddItemToObject(res, "window_counters",
                          run_counters_json(&x->a.c, &x->b.c));
}

/* ---- the verdict ------------------------------------------------------ */

static void drainrun_tally(const drainrun_t *x, drain_tally_t *t)
{
    const stats_counters_t *w = &x->r.win.c, *c = &x->r.total.c;
    const cluster_inst_t *v = &x->cl.gw[x->victim];

    memset(t, 0, sizeof(*t));
    t->on_drained =
        x->term_ok ? (uint64_t)x->at_term[x->victim].connections : 0;
    t->moved = w->drain_moved;
    t->resumed = w->resumed;
    t->gave_up = w->drain_gave_up;
    t->invalid = c->resume_invalid;
    t->lost = c->lost;
    t->lost_not_back = c->lost_not_back;
    t->lost_at_invalid = c->lost_at_invalid;
    t->duplicated = c->event_dups;
    t->out_of_order = c->event_disorder;
    t->seq_gaps = c->seq_gaps;
    t->seq_repeats = c->seq_repeats;
    t->foreign = c->event_foreign;
    t->replay_mismatch = c->replay_mismatch;
    if (x->term_ok && x->end_ok) {
        t->restored =
            (uint64_t)(x->end.restored - x->at_term[x->survivor].restored);
        t->handoffs_failed =
            (uint64_t)(x->end.failed - x->at_term[x->survivor].failed);
    }
    t->exited =
        x->t_exit > 0 && WIFEXITED(v->status) && WEXITSTATUS(v->status) == 0;
}

static void drainrun_verdict(drainrun_t *x)
{
    drain_fault_t f[DRAIN_CHECKS];
    drain_tally_t t;
    size_t n;

    if (x->a.c.identified < x->r.sessions) {
        util_warn("only %llu of %u sessions identified",
                  (unsigned long long)x->a.c.identified, x->r.sessions);
        x->r.failed = 1;
    }
    drainrun_tally(x, &t);
    n = drain_verdict(&t, f, DRAIN_CHECKS);
    for (size_t i = 0; i < n && i < DRAIN_CHECKS; i++)
        util_warn("%s: %llu (must be %s%llu)", f[i].what,
                  (unsigned long long)f[i].value,
                  f[i].at_least ? "at least " : "",
                  (unsigned long long)f[i].want);
    if (n > 0)
        x->r.failed = 1;
    if (publish_stats(x->pub)->broken ||
        publish_stats(x->pub)->receivers == 0) {
        util_warn("the publisher broke or reached no subscriber");
        x->r.failed = 1;
    }
}

/* ---- the run ---------------------------------------------------------- */

static void drainrun_steps(drainrun_t *x)
{
    if (drainrun_cluster(x) != 0 || run_connect_all(&x->r, x->o.rate) != 0 ||
        drainrun_publisher(x) != 0) {
        x->r.failed = 1;
        return;
    }
    if (drainrun_drain(x) != 0) {
        x->r.failed = 1;
        return;
    }
    drainrun_finish(x);
    drainrun_results(x);
    drainrun_verdict(x);
}

/* HAProxy's maxconn: a client holds one connection at a time (its
 * retries too), and HAProxy two descriptors for each, which the open-file
 * limit bounds. Returns 0, or -1 when the sessions do not fit. */
static int drainrun_maxconn(drainrun_t *x, const opts_t *o)
{
    struct rlimit rl;
    unsigned long cap = ULONG_MAX;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY)
        cap = ((unsigned long)rl.rlim_max - DRAIN_PROXY_FDS) / 2;
    x->maxconn = (unsigned long)o->sessions + DRAIN_PROXY_SPARE;
    if (x->maxconn > cap)
        x->maxconn = cap;
    if ((unsigned long)o->sessions + DRAIN_PROXY_SPARE / 10 <= x->maxconn)
        return 0;
    util_warn("HAProxy holds at most %lu connections here (two descriptors "
              "each, under the open-file limit): lower -n",
              cap);
    return -1;
}

/* The options of the run: the clients' --target is the proxy. */
static int drainrun_options(drainrun_t *x, const opts_t *o)
{
    if (o->event_rate <= 0 || o->target.n > 0 || o->redis != NULL) {
        util_warn("drain needs --event-rate > 0, and starts its own "
                  "instances, HAProxy and Redis (no --target, no --redis)");
        return -1;
    }
    if (drainrun_maxconn(x, o) != 0 || cluster_init(&x->cl, DRAIN_INST) != 0)
        return -1;
    x->o = *o;
    snprintf(x->url, sizeof(x->url), "ws://127.0.0.1:%d/", x->cl.proxy_port);
    x->o.target.v[0] = x->url;
    x->o.target.n = 1;
    x->members = (uint32_t)((o->sessions + o->guilds - 1) / o->guilds);
    x->count = (uint64_t)(o->event_rate *
                          (DRAIN_WARMUP_S + (double)o->drain_ms / 1000 +
                           DRAIN_EXIT_S + DRAIN_AFTER_S + DRAIN_BACK_S + 10));
    if (x->count == 0 || x->count > DRAIN_MAX_EVENTS) {
        util_warn("drain publishes at most %d events in a run: lower "
                  "--event-rate",
                  DRAIN_MAX_EVENTS);
        return -1;
    }
    return 0;
}

int scenario_drain(const opts_t *o)
{
    drainrun_t x;
    run_spec_t spec;
    int rc;

    memset(&x, 0, sizeof(x));
    if (drainrun_options(&x, o) != 0)
        return 2;
    /* Shared with the client processes forked by run_open_spec. */
    x.record = mmap(NULL, (x.count + 1) * sizeof(uint64_t),
                    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (x.record == MAP_FAILED)
        util_die("cannot map the publisher's record");
    spec = (run_spec_t){.scenario = "drain",
                        .sessions = (uint32_t)o->sessions,
                        .guilds = (uint32_t)o->guilds,
                        .members = x.members,
                        .broker = TARGET_BROKER_REDIS,
                        .resume = 1,
                        .record = x.record,
                        .record_cap = x.count,
                        .follow_drain = 1};
    if (run_open_spec(&x.r, &x.o, &spec) == 0)
        drainrun_steps(&x);
    else
        x.r.failed = 1;
    /* The clients stop following before their servers go. */
    if (x.r.pool != NULL)
        run_command(&x.r, CLIENT_CMD_QUIET, 0);
    if (x.pub != NULL)
        publish_free(x.pub);
    if (x.cl_started)
        cluster_stop(&x.cl);
    rc = run_close(&x.r);
    munmap(x.record, (x.count + 1) * sizeof(uint64_t));
    return rc;
}
