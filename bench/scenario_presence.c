/*
 * presence: N users, each one session in one of --guilds guilds, spread
 * round robin over the --target instances (K of them; without --target,
 * one gatewayd of ours on a private Redis), and the cluster's presence
 * view as the first instance's GET /presence tells it. Steps, each bounded
 * by --settle-timeout:
 *
 *   1. connect: every user connects and identifies (user i on instance
 *      i % K); then the time until the view is right: every user online
 *      with exactly one session;
 *   2. quiet: until no presence.update has come for a second, so that the
 *      connects' online announcements are not counted as the storm's;
 *   3. storm: every session dropped at once with a TCP reset (a network
 *      loss the server notices), each user back at once on the next
 *      instance (i + 1) % K; the time until all identified again, and
 *      until the view is right again;
 *   4. watch: --duration s more, past the offline grace, counting the
 *      presence.update the clients receive; then the view is read once
 *      more.
 *
 * "Right" is read in two parts, because a view taken too early shows the
 * old state (one session each) as right too. First the gate: each
 * instance's /stats shows the sessions it should hold (so every close and
 * identify of the step has happened on the workers) and presence_changes
 * (the session changes Redis has applied, many a script call) have grown,
 * over all instances, by the step's session changes. Then batches of
 * PRESVIEW_BATCH users are asked until each batch has answered all right
 * once.
 *
 * Redis calls per session change = presence_commands grown over all
 * instances, less our GET /presence and the liveness calls estimated from
 * --presence-ttl-ms, over the step's changes (N identifies; N closes and
 * N identifies in the storm). Given to the view's settling, and over the
 * watch too, where the offline graces the closes began are settled (one
 * call each, whether or not the user came back).
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw/alloc.h"
#include "presview.h"
#include "run.h"
#include "scenario.h"
#include "util.h"

#define PRESENCE_HTTP_TIMEOUT_MS 2000
#define PRESENCE_QUIET_S 1.0        /* no presence.update for this long */
#define PRESENCE_BATCHES_PER_TURN 8 /* the loop turns between them */
#define PRESENCE_BODY_MAX 65536

/* A step's accounting of Redis calls: the instances' figures and our
 * queries at its start. */
typedef struct presence_base {
    presview_stats_t s[TARGET_MAX_INST];
    uint64_t queries;
    uint64_t t_us;
    proc_sample_t redis; /* when redis_ok */
    int redis_ok;
} presence_base_t;

typedef struct presence_run {
    run_t r;
    uint32_t k;           /* instances */
    pid_t redis_pid;      /* the shared redis-server, or 0 */
    uint32_t nbatch;      /* batches of users */
    uint32_t shift;       /* user i is on instance (i + shift) % k */
    int storm;            /* the step under way is the storm */
    double changes;       /* session changes of the step under way */
    presence_base_t base; /* the step's start */
    uint64_t queries;     /* GET /presence answered (script calls we caused) */
    uint8_t *right;       /* per batch: answered all right in this step */
    uint32_t confirmed, next;
    int gated;
    uint64_t t_gate;        /* when the gate opened */
    uint64_t t_right;       /* when the last batch answered all right */
    presview_tally_t wrong; /* the latest batch that did not */
    uint32_t ask_failures;  /* GET /presence of the step that failed */
    int ask_status;         /* the last one's HTTP status (200: not an
                               answer; -1: no answer at all) */
    const char *failed_step;
} presence_run_t;

static char presence_body[PRESENCE_BODY_MAX];

/* ---- asking the instances --------------------------------------------- */

static int presence_stats(presence_run_t *x, unsigned i, presview_stats_t *s)
{
    int st =
        target_http_get_inst(&x->r.tgt, i, "/stats", NULL, presence_body,
                             sizeof(presence_body), PRESENCE_HTTP_TIMEOUT_MS);

    if (st != 200)
        return -1;
    return presview_stats_parse(presence_body, strlen(presence_body), s);
}

static int presence_stats_all(presence_run_t *x, presview_stats_t *s)
{
    for (unsigned i = 0; i < x->k; i++)
        if (presence_stats(x, i, &s[i]) != 0)
            return -1;
    return 0;
}

/* Asks instance 0 for batch b into t. Returns 0, or -1. */
static int presence_ask(presence_run_t *x, uint32_t b, presview_tally_t *t)
{
    char path[PRESVIEW_BATCH * 12 + 32];
    uint32_t first = b * PRESVIEW_BATCH;
    uint32_t n = x->r.sessions - first < PRESVIEW_BATCH ? x->r.sessions - first
                                                        : PRESVIEW_BATCH;
    int st;

    if (presview_path(path, sizeof(path), first, n) == 0)
        return -1;
    st =
        target_http_get_inst(&x->r.tgt, 0, path, x->r.o->api_key, presence_body,
                             sizeof(presence_body), PRESENCE_HTTP_TIMEOUT_MS);
    if (st == 200) {
        x->queries++;
        if (presview_check(presence_body, strlen(presence_body), first, n, t) ==
            0)
            return 0;
    }
    x->ask_failures++;
    x->ask_status = st;
    return -1;
}

/* ---- the view settling ------------------------------------------------ */

/* Sessions instance i holds once the step is over. */
static double presence_expected(const presence_run_t *x, unsigned i)
{
    uint32_t n = x->r.sessions, rest = (i + x->k - x->shift % x->k) % x->k;

    return (double)(n / x->k + (rest < n % x->k ? 1 : 0));
}

/* Begins a step of changes: the figures at its start. */
static int presence_begin(presence_run_t *x, double changes)
{
    x->changes = changes;
    x->gated = 0;
    x->confirmed = x->next = 0;
    x->t_gate = x->t_right = 0;
    x->ask_failures = 0;
    memset(x->right, 0, x->nbatch);
    memset(&x->wrong, 0, sizeof(x->wrong));
    x->base.queries = x->queries;
    x->base.t_us = util_now_us();
    x->base.redis_ok =
        x->redis_pid > 0 && proc_read(x->redis_pid, &x->base.redis) == 0;
    return presence_stats_all(x, x->base.s);
}

/* Every instance holds what it should, and the changes have been sent to
 * Redis (see the file's comment). */
static int presence_gate(presence_run_t *x)
{
    presview_stats_t now[TARGET_MAX_INST];
    double changes = 0;

    if (presence_stats_all(x, now) != 0)
        return 0;
    for (unsigned i = 0; i < x->k; i++) {
        if (now[i].sessions != presence_expected(x, i))
            return 0;
        changes += now[i].changes - x->base.s[i].changes;
    }
    return changes >= x->changes;
}

/* Asks the next batch not yet right. */
static void presence_poll_one(presence_run_t *x)
{
    presview_tally_t t;
    uint32_t b = x->next;

    for (uint32_t tries = 0; x->right[b] && tries < x->nbatch; tries++)
        b = (b + 1) % x->nbatch;
    x->next = (b + 1) % x->nbatch;
    if (x->right[b] || presence_ask(x, b, &t) != 0)
        return;
    if (t.other + t.offline + t.missing + t.stray == 0) {
        x->right[b] = 1;
        x->confirmed++;
        x->t_right = util_now_us();
    } else {
        x->wrong = t;
    }
}

/* A few batches per loop turn, so that the clients' reports keep being
 * read. Returns 1 once every batch has answered right. */
static int presence_view_right(presence_run_t *x)
{
    if (!x->gated) {
        if (!(x->gated = presence_gate(x)))
            return 0;
        x->t_gate = util_now_us();
    }
    for (int i = 0; i < PRESENCE_BATCHES_PER_TURN && x->confirmed < x->nbatch;
         i++)
        presence_poll_one(x);
    return x->confirmed == x->nbatch;
}

/* The clients have reported the step done: every session identified or
 * failed (in the storm: every one dropped first). */
static int presence_clients_done(const presence_run_t *x)
{
    const stats_counters_t *c = &x->r.win.c;

    if (x->storm)
        return c->drops >= x->r.sessions && run_concluded(c) >= c->drops;
    return run_concluded(c) >= x->r.sessions;
}

/* run_until's condition of a step. The view is read from the start, not
 * once the clients' reports are in: those come up to a report period
 * late, the instances' figures do not. */
static int presence_step_done(run_t *r, void *ud)
{
    presence_run_t *x = ud;

    (void)r;
    return presence_view_right(x) && presence_clients_done(x);
}

/* ---- failing a step --------------------------------------------------- */

static void presence_fail(presence_run_t *x, const char *step)
{
    x->r.failed = 1;
    if (x->failed_step == NULL)
        x->failed_step = step;
}

/* Says why a step did not end in time: the clients' side, then the
 * instances' or the view's. */
static void presence_fail_step(presence_run_t *x, const char *step)
{
    const stats_counters_t *c = &x->r.win.c;
    presview_stats_t now;

    util_warn(
        "%s: clients: %llu dropped, %llu identified, failed at tcp "
        "%llu, upgrade %llu, ready %llu, identify %llu",
        step, (unsigned long long)c->drops, (unsigned long long)c->identified,
        (unsigned long long)c->fail_tcp, (unsigned long long)c->fail_upgrade,
        (unsigned long long)c->fail_ready,
        (unsigned long long)c->fail_identify);
    if (!x->gated) {
        util_warn("%s: timed out before every instance held its sessions "
                  "and the changes reached Redis",
                  step);
        for (unsigned i = 0; i < x->k; i++)
            if (presence_stats(x, i, &now) == 0)
                util_warn("  instance %u: %.0f sessions (%.0f expected), "
                          "%.0f changes applied in %.0f commands, "
                          "%.0f failures, %.0f reports lost",
                          i, now.sessions, presence_expected(x, i),
                          now.changes - x->base.s[i].changes,
                          now.commands - x->base.s[i].commands,
                          now.failures - x->base.s[i].failures,
                          now.lost - x->base.s[i].lost);
    } else {
        util_warn("%s: timed out with %u of %u batches right; the last "
                  "wrong one had %u online with other counts, %u offline, "
                  "%u missing, %u stray",
                  step, x->confirmed, x->nbatch, x->wrong.other,
                  x->wrong.offline, x->wrong.missing, x->wrong.stray);
    }
    if (x->ask_failures > 0)
        util_warn("%s: %u GET /presence failed, the last with HTTP status "
                  "%d (200: not an answer, -1: none)",
                  step, x->ask_failures, x->ask_status);
    presence_fail(x, step);
}

/* ---- figures ---------------------------------------------------------- */

static double presence_s(uint64_t from_us, uint64_t to_us)
{
    return to_us > from_us ? (double)(to_us - from_us) / 1e6 : 0;
}

/* The shared redis-server's CPU since the step's start, and per script
 * call (ours and the liveness calls included). */
static void presence_redis_cpu_json(const presence_run_t *x, double calls,
                                    cJSON *o)
{
    proc_sample_t now;
    double cpu;

    if (!x->base.redis_ok || proc_read(x->redis_pid, &now) != 0)
        return;
    cpu = proc_cpu_between(&x->base.redis, &now);
    cJSON_AddNumberToObject(o, "redis_cpu_s", cpu);
    if (calls > 0)
        cJSON_AddNumberToObject(o, "redis_cpu_us_per_command",
                                cpu * 1e6 / calls);
}

/* Redis calls from the step's start to now, per change. */
static cJSON *presence_redis_json(presence_run_t *x)
{
    presview_stats_t now;
    double raw = 0, q = (double)(x->queries - x->base.queries);
    double secs = presence_s(x->base.t_us, util_now_us());
    double beats = x->k * secs / (x->r.o->presence_ttl_ms / 4000.0);
    cJSON *o = cJSON_CreateObject();

    for (unsigned i = 0; i < x->k; i++) {
        if (presence_stats(x, i, &now) != 0) {
            cJSON_AddBoolToObject(o, "stats_unreadable", 1);
            return o;
        }
        raw += now.commands - x->base.s[i].commands;
    }
    cJSON_AddNumberToObject(o, "window_s", secs);
    cJSON_AddNumberToObject(o, "changes", x->changes);
    cJSON_AddNumberToObject(o, "commands", raw);
    cJSON_AddNumberToObject(o, "our_queries", q);
    cJSON_AddNumberToObject(o, "liveness_estimated", beats);
    cJSON_AddNumberToObject(o, "commands_per_change_raw", raw / x->changes);
    cJSON_AddNumberToObject(o, "commands_per_change",
                            (raw - q - beats) / x->changes);
    presence_redis_cpu_json(x, raw, o);
    return o;
}

/* What the instances announced and lost since the step's start. */
static cJSON *presence_gatewayd_json(presence_run_t *x)
{
    presview_stats_t now, sum = {0};
    cJSON *o = cJSON_CreateObject();

    for (unsigned i = 0; i < x->k; i++) {
        presview_stats_t d;

        if (presence_stats(x, i, &now) != 0)
            return o;
        d = presview_stats_delta(&x->base.s[i], &now);
        sum.online += d.online;
        sum.offline += d.offline;
        sum.reaped += d.reaped;
        sum.failures += d.failures;
        sum.lost += d.lost;
    }
    cJSON_AddNumberToObject(o, "announced_online", sum.online);
    cJSON_AddNumberToObject(o, "announced_offline", sum.offline);
    cJSON_AddNumberToObject(o, "reaped", sum.reaped);
    cJSON_AddNumberToObject(o, "script_failures", sum.failures);
    cJSON_AddNumberToObject(o, "reports_lost", sum.lost);
    return o;
}

/* The view read once more, every batch: the sums of its answers. */
static cJSON *presence_final_json(presence_run_t *x, int *all_right)
{
    presview_tally_t sum = {0}, t;
    uint32_t unanswered = 0;
    cJSON *o = cJSON_CreateObject();
    uint64_t t0 = util_now_us();

    for (uint32_t b = 0; b < x->nbatch; b++) {
        if (presence_ask(x, b, &t) != 0) {
            unanswered++;
            continue;
        }
        sum.right += t.right;
        sum.other += t.other;
        sum.offline += t.offline;
        sum.missing += t.missing;
        sum.stray += t.stray;
    }
    cJSON_AddNumberToObject(o, "right", sum.right);
    cJSON_AddNumberToObject(o, "online_other_count", sum.other);
    cJSON_AddNumberToObject(o, "offline", sum.offline);
    cJSON_AddNumberToObject(o, "missing", sum.missing);
    cJSON_AddNumberToObject(o, "batches_unanswered", unanswered);
    cJSON_AddNumberToObject(o, "read_s", presence_s(t0, util_now_us()));
    *all_right = sum.right == x->r.sessions && unanswered == 0;
    return o;
}

/* ---- the steps -------------------------------------------------------- */

static int presence_connect(presence_run_t *x, cJSON *res)
{
    const opts_t *o = x->r.o;
    cJSON *c = cJSON_AddObjectToObject(res, "connect");
    double max_s =
        (o->rate > 0 ? x->r.sessions / o->rate : 0) + o->settle_timeout;
    run_mark_t a, b;

    run_window_begin(&x->r, &a);
    if (presence_begin(x, x->r.sessions) != 0) {
        util_warn("connect: GET /stats failed on an instance");
        presence_fail(x, "connect");
        return -1;
    }
    x->r.phase = "connect";
    run_command(&x->r, CLIENT_CMD_CONNECT, o->rate);
    if (run_until(&x->r, presence_step_done, x, max_s) != 0 ||
        x->r.win.c.identified < x->r.sessions) {
        presence_fail_step(x, "connect and settle");
        return -1;
    }
    run_mark(&x->r, &b);
    cJSON_AddNumberToObject(c, "identified", (double)x->r.win.c.identified);
    cJSON_AddNumberToObject(
        c, "identify_s", presence_s(x->r.win.t_first, x->r.win.t_last_ident));
    cJSON_AddNumberToObject(c, "settle_s",
                            presence_s(x->r.win.t_last_ident, x->t_right));
    cJSON_AddNumberToObject(c, "gate_s",
                            presence_s(x->r.win.t_last_ident, x->t_gate));
    cJSON_AddItemToObject(c, "redis", presence_redis_json(x));
    run_window_json(&a, &b, c);
    return 0;
}

typedef struct presence_quiet {
    uint64_t seen, since;
} presence_quiet_t;

static int presence_is_quiet(run_t *r, void *ud)
{
    presence_quiet_t *q = ud;
    uint64_t n = r->total.c.presence_online + r->total.c.presence_offline;
    uint64_t now = util_now_us();

    if (n != q->seen) {
        q->seen = n;
        q->since = now;
    }
    return now - q->since >= PRESENCE_QUIET_S * 1e6;
}

/* Waits out the connects' announcements; counts them. */
static int presence_quiet(presence_run_t *x, cJSON *res)
{
    cJSON *c = cJSON_GetObjectItemCaseSensitive(res, "connect");
    presence_quiet_t q = {0, util_now_us()};

    x->r.phase = "quiet";
    if (run_until(&x->r, presence_is_quiet, &q, x->r.o->settle_timeout) != 0) {
        util_warn("quiet: presence.update still arriving after %.0f s",
                  x->r.o->settle_timeout);
        presence_fail(x, "quiet before the storm");
        return -1;
    }
    cJSON_AddNumberToObject(c, "online_received",
                            (double)x->r.win.c.presence_online);
    cJSON_AddNumberToObject(c, "offline_received",
                            (double)x->r.win.c.presence_offline);
    cJSON_AddItemToObject(c, "gatewayd", presence_gatewayd_json(x));
    return 0;
}

/* The drop and the reconnects, up to the view right again. */
static int presence_storm(presence_run_t *x, cJSON *s, run_mark_t *a,
                          uint64_t *t_drop)
{
    run_mark_t b;

    run_window_begin(&x->r, a);
    x->shift = 1;
    x->storm = 1;
    if (presence_begin(x, 2.0 * x->r.sessions) != 0) {
        util_warn("storm: GET /stats failed on an instance");
        presence_fail(x, "storm");
        return -1;
    }
    x->r.phase = "storm";
    *t_drop = util_now_us();
    run_command(&x->r, CLIENT_CMD_STORM, 0);
    if (run_until(&x->r, presence_step_done, x, x->r.o->settle_timeout) != 0 ||
        x->r.win.c.identified < x->r.sessions) {
        presence_fail_step(x, "storm and settle");
        return -1;
    }
    run_mark(&x->r, &b);
    cJSON_AddNumberToObject(s, "dropped", (double)x->r.win.c.drops);
    cJSON_AddNumberToObject(s, "identified", (double)x->r.win.c.identified);
    cJSON_AddNumberToObject(s, "identify_s",
                            presence_s(*t_drop, x->r.win.t_last_ident));
    cJSON_AddItemToObject(s, "drop_to_identified",
                          run_latency_json(&x->r.win.conn));
    cJSON_AddNumberToObject(s, "settle_s", presence_s(*t_drop, x->t_right));
    cJSON_AddNumberToObject(s, "gate_s", presence_s(*t_drop, x->t_gate));
    cJSON_AddNumberToObject(s, "settle_after_identify_s",
                            presence_s(x->r.win.t_last_ident, x->t_right));
    cJSON_AddItemToObject(s, "redis_to_settle", presence_redis_json(x));
    run_window_json(a, &b, cJSON_AddObjectToObject(s, "cpu_to_settle"));
    return 0;
}

/* --duration s more: the announcements the storm caused, late ones
 * included, then the view once more. */
static void presence_watch(presence_run_t *x, cJSON *s, const run_mark_t *a,
                           uint64_t t_drop)
{
    run_mark_t b;
    int all_right;

    x->r.phase = "watch";
    run_sleep(&x->r, x->r.o->duration);
    run_mark(&x->r, &b);
    cJSON_AddNumberToObject(s, "watched_s", presence_s(t_drop, b.t_us));
    cJSON_AddNumberToObject(s, "offline_received",
                            (double)x->r.win.c.presence_offline);
    cJSON_AddNumberToObject(s, "online_received",
                            (double)x->r.win.c.presence_online);
    cJSON_AddItemToObject(s, "redis_with_grace", presence_redis_json(x));
    cJSON_AddItemToObject(s, "gatewayd", presence_gatewayd_json(x));
    run_window_json(a, &b, cJSON_AddObjectToObject(s, "cpu_with_grace"));
    cJSON_AddItemToObject(s, "view_after_watch",
                          presence_final_json(x, &all_right));
    cJSON_AddItemToObject(s, "window_counters", run_counters_json(&a->c, &b.c));
    if (!all_right) {
        util_warn("watch: the view is no longer right after the grace");
        presence_fail(x, "view after the watch");
    }
}

static void presence_steps(presence_run_t *x)
{
    cJSON *res = x->r.results, *storm;
    run_mark_t a;
    uint64_t t_drop = 0;

    cJSON_AddNumberToObject(res, "sessions", x->r.sessions);
    cJSON_AddNumberToObject(res, "instances", x->k);
    cJSON_AddNumberToObject(res, "guilds", (double)x->r.o->guilds);
    if (presence_connect(x, res) != 0 || presence_quiet(x, res) != 0)
        return;
    storm = cJSON_AddObjectToObject(res, "storm");
    if (presence_storm(x, storm, &a, &t_drop) == 0)
        presence_watch(x, storm, &a, t_drop);
}

/* Every instance needs its HTTP API: the view and the counters. */
static int presence_check_targets(presence_run_t *x)
{
    for (unsigned i = 0; i < x->r.tgt.ninst; i++)
        if (x->r.tgt.inst[i].http_port == 0) {
            util_warn("presence needs --http-url for each --target");
            return -1;
        }
    return 0;
}

int scenario_presence(const opts_t *o)
{
    presence_run_t x;
    uint32_t n = (uint32_t)o->sessions;
    uint32_t members = (uint32_t)((n + o->guilds - 1) / o->guilds);
    int broker = o->target.n > 0 ? TARGET_BROKER_NONE : TARGET_BROKER_REDIS;

    memset(&x, 0, sizeof(x));
    if (run_open(&x.r, o, "presence", n, (uint32_t)o->guilds, members,
                 broker) == 0 &&
        presence_check_targets(&x) == 0) {
        x.k = x.r.tgt.ninst;
        x.redis_pid =
            o->redis_pid > 0 ? (pid_t)o->redis_pid : x.r.tgt.redis_pid;
        x.nbatch = (n + PRESVIEW_BATCH - 1) / PRESVIEW_BATCH;
        x.right = gw_calloc(x.nbatch, 1);
        presence_steps(&x);
    } else {
        presence_fail(&x, "start");
    }
    if (x.failed_step != NULL)
        cJSON_AddStringToObject(x.r.results, "failed_step", x.failed_step);
    free(x.right);
    return run_close(&x.r);
}
