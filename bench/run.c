#include "run.h"

#include "publish.h"

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw/alloc.h"
#include "report.h"
#include "util.h"

#define RUN_POLL_MS 20
#define RUN_SESSIONS_PER_PROC 15000
#define RUN_FINISH_TIMEOUT_S 15

/* Set by SIGINT or SIGTERM: the run stops waiting and cleans up, so that
 * the servers it started are stopped and their directory removed. */
static volatile sig_atomic_t run_interrupted;

static void run_signal(int sig)
{
    (void)sig;
    run_interrupted = 1;
}

static void run_catch_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = run_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Places a report's figures in the second its stamp falls in. */
static run_second_t *run_second(run_t *r, uint64_t stamp)
{
    size_t i = stamp > r->t0 ? (size_t)((stamp - r->t0) / 1000000) : 0;

    if (i >= r->nsec) {
        size_t n = i + 16;

        r->sec = gw_realloc(r->sec, n * sizeof(*r->sec));
        for (size_t k = r->nsec; k < n; k++) {
            memset(&r->sec[k], 0, sizeof(r->sec[k]));
            client_figures_reset(&r->sec[k].f);
        }
        r->nsec = n;
    }
    return &r->sec[i];
}

static void run_report_cb(void *ud, const pool_report_t *rep)
{
    run_t *r = ud;
    client_figures_t f = rep->f;

    /* open is a gauge per worker: keep each worker's latest, sum them. */
    r->open_by_worker[rep->worker] = rep->f.open;
    f.open = 0;
    client_figures_add(&r->total, &f);
    client_figures_add(&r->win, &f);
    client_figures_add(&run_second(r, rep->stamp_us)->f, &f);
    r->total.open = 0;
    for (unsigned i = 0; i < POOL_MAX_PROCS; i++)
        r->total.open += r->open_by_worker[i];
    r->win.open = r->total.open;
}

/* The servers' CPU and memory: every instance with a known PID, each
 * with its descendants, summed. Returns 0, or -1 when one is unknown or
 * unreadable. */
static int run_srv_sample(const run_t *r, proc_sample_t *s)
{
    proc_sample_t one;

    memset(s, 0, sizeof(*s));
    if (r->tgt.ninst == 0)
        return r->tgt.pid > 0 ? proc_read_tree(r->tgt.pid, s) : -1;
    for (unsigned i = 0; i < r->tgt.ninst; i++) {
        if (r->tgt.inst[i].pid <= 0 ||
            proc_read_tree(r->tgt.inst[i].pid, &one) != 0)
            return -1;
        proc_add(s, &one);
    }
    return 0;
}

static void run_tick_cb(uv_timer_t *t)
{
    run_t *r = t->data;
    uint64_t now = util_now_us();
    proc_sample_t s;
    run_second_t *sec;

    if (now < r->t0 + 1000000 || run_srv_sample(r, &s) != 0) {
        report_progress(r);
        return;
    }
    /* The second that just ended. */
    sec = run_second(r, now - 500000);
    if (r->srv_prev_ok)
        sec->srv_cpu_s = proc_cpu_between(&r->srv_prev, &s);
    sec->srv_rss_kb = s.rss_kb;
    sec->sampled = r->srv_prev_ok;
    r->srv_prev = s;
    r->srv_prev_ok = 1;
    report_progress(r);
}

static void run_poll_cb(uv_timer_t *t)
{
    (void)t; /* only wakes run_until() */
}

int run_until(run_t *r, int (*done)(run_t *, void *), void *ud, double max_s)
{
    uint64_t end = util_now_us() + (uint64_t)(max_s * 1e6);

    while (!done(r, ud)) {
        uint64_t now = util_now_us();

        if (run_interrupted || now >= r->deadline) {
            if (!r->failed)
                util_warn(run_interrupted ? "interrupted"
                                          : "run exceeded --timeout");
            r->failed = 1;
            return -1;
        }
        if (now >= end)
            return -1;
        uv_run(&r->loop, UV_RUN_ONCE);
    }
    return 0;
}

static int run_never(run_t *r, void *ud)
{
    (void)r;
    (void)ud;
    return 0;
}

void run_sleep(run_t *r, double s)
{
    run_until(r, run_never, NULL, s);
}

void run_command_full(run_t *r, const client_cmd_t *cmd)
{
    client_cmd_t c = *cmd;

    c.inflight = (uint32_t)r->o->inflight;
    pool_command(r->pool, &c);
}

void run_command(run_t *r, uint32_t op, double rate)
{
    client_cmd_t cmd = {.op = op, .rate = rate};

    run_command_full(r, &cmd);
}

uint64_t run_concluded(const stats_counters_t *c)
{
    return c->identified + c->fail_tcp + c->fail_upgrade + c->fail_ready +
           c->fail_identify + c->fail_resume;
}

static int run_all_concluded(run_t *r, void *ud)
{
    const uint64_t *want = ud;

    return run_concluded(&r->total.c) >= *want;
}

int run_connect_range(run_t *r, uint32_t lo, uint32_t hi, double rate)
{
    uint32_t n = hi - lo;
    /* Paced: the schedule plus the stage budget; unpaced: generous. */
    double max_s = (rate > 0 ? n / rate : n / 1000.0) +
                   3 * r->o->stage_timeout_ms / 1000.0 + 5;
    client_cmd_t cmd = {.op = CLIENT_CMD_CONNECT, .rate = rate};
    uint64_t want = run_concluded(&r->total.c) + n;

    r->phase = "connect";
    cmd.lo = lo;
    cmd.hi = hi;
    run_command_full(r, &cmd);
    if (run_until(r, run_all_concluded, &want, max_s) != 0) {
        util_warn("only %llu of %u sessions concluded their handshake",
                  (unsigned long long)(run_concluded(&r->total.c) + n - want),
                  n);
        return -1;
    }
    return 0;
}

int run_connect_all(run_t *r, double rate)
{
    return run_connect_range(r, 0, r->sessions, rate);
}

typedef struct run_drain_state {
    uint64_t expected, last;
    uint64_t last_change_us;
    uint64_t not_before_us; /* no verdict before this */
    int distinct;           /* count deliveries less repeats and strays */
} run_drain_state_t;

/* The window's deliveries, or those a checking scenario counts: each
 * expected event once. */
static uint64_t run_delivered(const run_t *r, int distinct)
{
    const stats_counters_t *w = &r->win.c;

    return distinct ? w->deliveries - w->event_dups - w->event_foreign
                    : w->deliveries;
}

static int run_drained(run_t *r, void *ud)
{
    run_drain_state_t *d = ud;
    uint64_t now = util_now_us();

    if (now < d->not_before_us)
        return 0;
    if (run_delivered(r, d->distinct) >= d->expected)
        return 1;
    if (r->win.c.deliveries != d->last) {
        d->last = r->win.c.deliveries;
        d->last_change_us = now;
    }
    return now - d->last_change_us > 1000000;
}

int run_publisher_ready(run_t *r, void *pub)
{
    (void)r;
    return publish_ready(pub) != 0;
}

int run_publisher_done(run_t *r, void *pub)
{
    (void)r;
    return publish_done(pub);
}

int run_drain(run_t *r, uint64_t expected, double max_s)
{
    uint64_t now = util_now_us();
    run_drain_state_t d = {expected, r->win.c.deliveries, now, now, 0};

    r->phase = "drain";
    run_until(r, run_drained, &d, max_s);
    return r->win.c.deliveries >= expected ? 0 : -1;
}

int run_drain_distinct(run_t *r, uint64_t expected, double min_s, double max_s)
{
    uint64_t now = util_now_us();
    run_drain_state_t d = {expected, r->win.c.deliveries, now,
                           now + (uint64_t)(min_s * 1e6), 1};

    run_until(r, run_drained, &d, max_s);
    return run_delivered(r, 1) >= expected ? 0 : -1;
}

static int run_all_tallied(run_t *r, void *ud)
{
    (void)ud;
    return r->total.c.tallied >= r->sessions;
}

int run_tally(run_t *r, uint64_t sent, double max_s)
{
    client_cmd_t tally = {.op = CLIENT_CMD_TALLY, .count = sent};

    r->phase = "tally";
    run_command_full(r, &tally);
    if (run_until(r, run_all_tallied, NULL, max_s) == 0)
        return 0;
    util_warn("only %llu of %u sessions tallied",
              (unsigned long long)r->total.c.tallied, r->sessions);
    return -1;
}

static void run_gen_sample(const run_t *r, proc_sample_t *s)
{
    pid_t pids[POOL_MAX_PROCS];
    unsigned n = r->pool ? pool_pids(r->pool, pids) : 0;
    proc_sample_t w;

    proc_read(getpid(), s);
    for (unsigned i = 0; i < n; i++)
        if (proc_read(pids[i], &w) == 0)
            proc_add(s, &w);
}

void run_mark(run_t *r, run_mark_t *m)
{
    memset(m, 0, sizeof(*m));
    m->t_us = util_now_us();
    m->c = r->total.c;
    m->srv_ok = run_srv_sample(r, &m->srv) == 0;
    run_gen_sample(r, &m->gen);
    m->steal_s = proc_steal_s();
    m->busy_s = proc_busy_s();
}

void run_window_begin(run_t *r, run_mark_t *m)
{
    uint64_t open = r->total.open;

    client_figures_reset(&r->win);
    r->win.open = open;
    run_mark(r, m);
}

double run_window_json(const run_mark_t *a, const run_mark_t *b, cJSON *obj)
{
    double secs = (double)(b->t_us - a->t_us) / 1e6;
    double gen = proc_cpu_between(&a->gen, &b->gen), srv = 0;

    cJSON_AddNumberToObject(obj, "window_s", secs);
    if (a->srv_ok && b->srv_ok) {
        srv = proc_cpu_between(&a->srv, &b->srv);
        cJSON_AddNumberToObject(obj, "server_cpu_s", srv);
        cJSON_AddNumberToObject(obj, "server_user_s",
                                b->srv.user_s - a->srv.user_s);
        cJSON_AddNumberToObject(obj, "server_sys_s",
                                b->srv.sys_s - a->srv.sys_s);
        cJSON_AddNumberToObject(obj, "server_cpu_pct",
                                secs > 0 ? 100 * srv / secs : 0);
        cJSON_AddNumberToObject(obj, "server_rss_kb", (double)b->srv.rss_kb);
    }
    cJSON_AddNumberToObject(obj, "gwbench_cpu_s", gen);
    cJSON_AddNumberToObject(obj, "gwbench_cpu_pct",
                            secs > 0 ? 100 * gen / secs : 0);
    if (a->steal_s >= 0 && b->steal_s >= 0)
        cJSON_AddNumberToObject(obj, "machine_steal_s",
                                b->steal_s - a->steal_s);
    /* What else kept the machine busy: other work on a shared machine,
     * and any broker the run started. */
    if (a->busy_s >= 0 && b->busy_s >= 0 && a->srv_ok && b->srv_ok)
        cJSON_AddNumberToObject(obj, "machine_other_cpu_s",
                                b->busy_s - a->busy_s - srv - gen);
    return srv;
}

static double run_ms(uint64_t us)
{
    return (double)us / 1000.0;
}

cJSON *run_latency_json(const stats_hist_t *h)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddNumberToObject(o, "count", (double)h->count);
    if (h->count == 0)
        return o;
    cJSON_AddNumberToObject(o, "min_ms", run_ms(h->min));
    cJSON_AddNumberToObject(o, "mean_ms", stats_hist_mean(h) / 1000.0);
    cJSON_AddNumberToObject(o, "p50_ms", run_ms(stats_hist_quantile(h, .5)));
    cJSON_AddNumberToObject(o, "p90_ms", run_ms(stats_hist_quantile(h, .9)));
    cJSON_AddNumberToObject(o, "p99_ms", run_ms(stats_hist_quantile(h, .99)));
    cJSON_AddNumberToObject(o, "p999_ms", run_ms(stats_hist_quantile(h, .999)));
    cJSON_AddNumberToObject(o, "max_ms", run_ms(h->max));
    return o;
}

cJSON *run_counters_json(const stats_counters_t *a, const stats_counters_t *b)
{
    cJSON *o = cJSON_CreateObject();

    for (size_t i = 0; i < stats_ncounters; i++) {
        uint64_t d = stats_counter_get(b, i) - stats_counter_get(a, i);

        if (d != 0)
            cJSON_AddNumberToObject(o, stats_counter_table[i].name, (double)d);
    }
    return o;
}

/* The clients' view of one server. */
static void run_client_target(client_target_t *ct, const target_inst_t *in,
                              client_proto_t proto)
{
    ct->plain = in->ws_port != 0;
    ct->tls = in->tls_port != 0;
    uv_ip4_addr(in->host, in->ws_port, &ct->addr);
    snprintf(ct->host, sizeof(ct->host), "%s:%d", in->host, in->ws_port);
    uv_ip4_addr(in->host, in->tls_port, &ct->tls_addr);
    snprintf(ct->tls_host, sizeof(ct->tls_host), "%s:%d", in->host,
             in->tls_port);
    snprintf(ct->path, sizeof(ct->path), "%s", in->path);
    if (proto == CLIENT_PROTO_NCHAN && strcmp(ct->path, "/") == 0)
        snprintf(ct->path, sizeof(ct->path), "/sub/");
}

/* --tls, before any server starts: a mode the run has, and a certificate
 * for the daemon gwbench starts. Returns 0, or -1 after a message. */
static int run_tls_usage(const opts_t *o, const run_spec_t *spec)
{
    int off = strcmp(o->tls, "off") == 0;

    if (!off && strcmp(o->tls, "all") != 0 &&
        (strcmp(o->tls, "storm") != 0 || spec->storm_lo == 0)) {
        util_warn("--tls must be off, all, or storm (with --storm)");
        return -1;
    }
    if (!off && o->target.n == 0 &&
        (o->tls_cert == NULL || o->tls_key == NULL)) {
        util_warn("--tls %s needs --tls-cert and --tls-key for the daemon "
                  "gwbench starts",
                  o->tls);
        return -1;
    }
    return 0;
}

/* Which clients speak TLS (--tls; all of them against a wss:// target),
 * checked against what the targets serve. Returns 0, or -1 after a
 * message. */
static int run_client_tls(run_t *r, const run_spec_t *spec)
{
    client_conf_t *c = &r->cconf;
    const char *mode = r->o->tls;
    int plain = 1, tls = 1;

    if (r->tgt.ws_port == 0 && r->tgt.tls_port != 0)
        mode = "all";
    if (strcmp(mode, "all") == 0) {
        c->tls_hi = UINT32_MAX;
    } else if (strcmp(mode, "storm") == 0) {
        c->tls_lo = spec->storm_lo;
        c->tls_hi = UINT32_MAX;
    }
    c->tls_resume = r->o->tls_resume;
    for (uint32_t i = 0; i < c->ntargets; i++) {
        plain &= c->target[i].plain;
        tls &= c->target[i].tls;
    }
    if (c->tls_hi > c->tls_lo && !tls) {
        util_warn("the server serves no wss://: give --tls-cert and "
                  "--tls-key, or a wss:// --target");
        return -1;
    }
    if (c->tls_lo > 0 && !plain) {
        util_warn("the server serves no ws:// for the plain clients");
        return -1;
    }
    return 0;
}

/* Fills the clients' view of the targets. */
static int run_client_conf(run_t *r, const run_spec_t *spec)
{
    client_conf_t *c = &r->cconf;
    const opts_t *o = r->o;

    memset(c, 0, sizeof(*c));
    c->proto =
        strcmp(o->proto, "nchan") == 0 ? CLIENT_PROTO_NCHAN : CLIENT_PROTO_GW;
    c->ntargets =
        r->tgt.ninst < CLIENT_MAX_TARGETS ? r->tgt.ninst : CLIENT_MAX_TARGETS;
    for (uint32_t i = 0; i < c->ntargets; i++)
        run_client_target(&c->target[i], &r->tgt.inst[i], c->proto);
    c->jwt_secret = o->jwt_secret;
    c->guilds = spec->guilds;
    c->members = spec->members;
    c->resume = spec->resume;
    c->record = spec->record;
    c->record_cap = spec->record_cap;
    c->follow_drain = spec->follow_drain;
    c->by_guild = spec->by_guild;
    c->src_addrs = (uint32_t)(o->src_addrs > 250 ? 250 : o->src_addrs);
    c->stage_timeout_ms = (uint32_t)o->stage_timeout_ms;
    c->max_msg = 1u << 20;
    c->payload = (uint32_t)o->payload;
    return run_client_tls(r, spec);
}

/* Client processes: --procs, or enough for the open-file limit; a storm's
 * sessions get the second half of them (pool_start), as many as the
 * others. */
static unsigned run_procs(const opts_t *o, const run_spec_t *spec)
{
    uint32_t split = spec->storm_lo, rest = spec->sessions - split;

    if (o->procs > 0)
        return split > 0 && o->procs < 2 ? 2 : (unsigned)o->procs;
    if (split > 0)
        return 2 * ((split > rest ? split : rest) / RUN_SESSIONS_PER_PROC + 1);
    return spec->sessions / RUN_SESSIONS_PER_PROC + 1;
}

int run_open(run_t *r, const opts_t *o, const char *scenario, uint32_t sessions,
             uint32_t guilds, uint32_t members, int broker)
{
    run_spec_t spec = {.scenario = scenario,
                       .sessions = sessions,
                       .guilds = guilds,
                       .members = members,
                       .broker = broker};

    return run_open_spec(r, o, &spec);
}

int run_open_spec(run_t *r, const opts_t *o, const run_spec_t *spec)
{
    uint32_t sessions = spec->sessions;

    memset(r, 0, sizeof(*r));
    r->o = o;
    r->scenario = spec->scenario;
    r->sessions = sessions;
    r->t0 = util_now_us();
    r->deadline = r->t0 + (uint64_t)(o->timeout * 1e6);
    r->tty = !o->quiet && isatty(2);
    r->phase = "start";
    r->results = cJSON_CreateObject();
    run_catch_signals();
    client_figures_reset(&r->total);
    client_figures_reset(&r->win);
    uv_loop_init(&r->loop);
    if (run_tls_usage(o, spec) != 0 ||
        target_open(&r->tgt, o, spec->broker) != 0)
        goto Error;
    if (run_client_conf(r, spec) != 0)
        goto Error;
    /* Fork the clients before the coordinator's loop has threads. */
    r->pool =
        pool_start(&r->loop, &r->cconf, sessions, spec->storm_lo,
                   run_procs(o, spec), (unsigned)o->threads, run_report_cb, r);
    if (r->pool == NULL)
        goto Error;
    uv_timer_init(&r->loop, &r->tick);
    r->tick.data = r;
    uv_timer_start(&r->tick, run_tick_cb, 1000, 1000);
    uv_timer_init(&r->loop, &r->poll);
    uv_timer_start(&r->poll, run_poll_cb, RUN_POLL_MS, RUN_POLL_MS);
    return 0;
Error:
    r->failed = 1;
    return -1;
}

static int run_pool_done(run_t *r, void *ud)
{
    (void)ud;
    return pool_running(r->pool) == 0;
}

int run_close(run_t *r)
{
    r->phase = "finish";
    if (r->pool != NULL) {
        uint64_t deadline = r->deadline;

        pool_finish(r->pool);
        /* Past the run's deadline the clients still get a moment to say
         * what they counted. */
        r->deadline = util_now_us() + RUN_FINISH_TIMEOUT_S * 1000000ull;
        if (run_until(r, run_pool_done, NULL, RUN_FINISH_TIMEOUT_S) != 0)
            util_warn("client processes did not finish in time");
        r->deadline = deadline;
        pool_free(r->pool);
        r->pool = NULL;
    }
    report_finish_line(r);
    if (r->tgt.gw_pid > 0 && !target_alive(&r->tgt)) {
        util_warn("gatewayd exited during the run (status %d)",
                  r->tgt.gw_status);
        r->failed = 1;
    }
    /* A failed run keeps the servers' config and logs for a look; the
     * report names the directory, so that a script can find it. */
    if (r->failed && r->tgt.dir[0] != '\0' && !r->tgt.keep) {
        r->tgt.keep = 1;
        util_warn("kept %s (config and logs)", r->tgt.dir);
    }
    if (report_write(r) != 0)
        r->failed = 1;
    target_close(&r->tgt);
    if (r->tick.type == UV_TIMER) {
        uv_close((uv_handle_t *)&r->tick, NULL);
        uv_close((uv_handle_t *)&r->poll, NULL);
    }
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_loop_close(&r->loop);
    cJSON_Delete(r->results);
    free(r->sec);
    return r->failed;
}
