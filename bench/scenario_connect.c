#include <cjson/cJSON.h>

#include "run.h"
#include "scenario.h"

/* Time the server gets to see the reset sessions go before the resumed
 * storm, and the longest wait for the clients' sockets to close. */
#define CONNECT_RESET_SETTLE_S 1.0
#define CONNECT_RESET_MAX_S 30.0

/* Failures by the stage the connection died in. */
static cJSON *connect_failures(const stats_counters_t *a,
                               const stats_counters_t *b)
{
    cJSON *f = cJSON_CreateObject();

    cJSON_AddNumberToObject(f, "tcp", (double)(b->fail_tcp - a->fail_tcp));
    cJSON_AddNumberToObject(f, "tls", (double)(b->fail_tls - a->fail_tls));
    cJSON_AddNumberToObject(f, "upgrade",
                            (double)(b->fail_upgrade - a->fail_upgrade));
    cJSON_AddNumberToObject(f, "ready",
                            (double)(b->fail_ready - a->fail_ready));
    cJSON_AddNumberToObject(f, "identify",
                            (double)(b->fail_identify - a->fail_identify));
    return f;
}

/* A storm's TLS handshakes: how many of each kind, how many a second from
 * the first attempt to the last handshake done, and the server's CPU per
 * handshake (the upgrade and identify that follow included). */
static cJSON *connect_tls_json(const client_figures_t *w, double srv_cpu_s)
{
    cJSON *t = cJSON_CreateObject();
    uint64_t n = w->c.tls_full + w->c.tls_resumed;
    double span = w->t_last_tls > w->t_first
                      ? (double)(w->t_last_tls - w->t_first) / 1e6
                      : 0;

    cJSON_AddNumberToObject(t, "full", (double)w->c.tls_full);
    cJSON_AddNumberToObject(t, "resumed", (double)w->c.tls_resumed);
    cJSON_AddNumberToObject(t, "resume_refused",
                            (double)w->c.tls_resume_refused);
    cJSON_AddNumberToObject(t, "handshakes_s", span);
    cJSON_AddNumberToObject(t, "handshakes_per_s", span > 0 ? n / span : 0);
    if (n > 0 && srv_cpu_s > 0)
        cJSON_AddNumberToObject(t, "server_cpu_us_per_session",
                                srv_cpu_s * 1e6 / (double)n);
    return t;
}

/* One storm's figures, from the window's counters and the marks around
 * it. */
static void connect_results(run_t *r, const run_mark_t *a, const run_mark_t *b,
                            cJSON *res)
{
    const client_figures_t *w = &r->win;
    double storm_s = w->t_last_ident > w->t_first
                         ? (double)(w->t_last_ident - w->t_first) / 1e6
                         : 0;
    double srv;

    cJSON_AddNumberToObject(res, "sessions", r->sessions);
    cJSON_AddNumberToObject(res, "target_rate_per_s", r->o->rate);
    cJSON_AddNumberToObject(res, "identified", (double)w->c.identified);
    cJSON_AddItemToObject(res, "failures", connect_failures(&a->c, &b->c));
    cJSON_AddNumberToObject(res, "storm_s", storm_s);
    cJSON_AddNumberToObject(res, "identified_per_s",
                            storm_s > 0 ? (double)w->c.identified / storm_s
                                        : 0);
    cJSON_AddItemToObject(res, "connect_to_identified",
                          run_latency_json(&w->conn));
    srv = run_window_json(a, b, res);
    if (r->cconf.tls_hi > r->cconf.tls_lo)
        cJSON_AddItemToObject(res, "tls", connect_tls_json(w, srv));
}

static int connect_all_closed(run_t *r, void *ud)
{
    (void)ud;
    return r->total.open == 0;
}

/* Every session reset, then all connect again, each offering the TLS
 * session of its first connection: a storm of resumed handshakes. */
static void connect_resumed(run_t *r)
{
    cJSON *res = cJSON_CreateObject();
    run_mark_t a, b;

    r->phase = "reset";
    run_command(r, CLIENT_CMD_CUT, 0);
    if (run_until(r, connect_all_closed, NULL, CONNECT_RESET_MAX_S) != 0)
        r->failed = 1;
    run_sleep(r, CONNECT_RESET_SETTLE_S);
    run_window_begin(r, &a);
    if (run_connect_all(r, r->o->rate) != 0)
        r->failed = 1;
    run_mark(r, &b);
    connect_results(r, &a, &b, res);
    cJSON_AddItemToObject(r->results, "resumed_storm", res);
}

int scenario_connect(const opts_t *o)
{
    run_t r;
    run_mark_t a, b;

    if (run_open(&r, o, "connect", (uint32_t)o->sessions, 0, 0, 0) == 0) {
        run_window_begin(&r, &a);
        if (run_connect_all(&r, o->rate) != 0)
            r.failed = 1;
        run_mark(&r, &b);
        connect_results(&r, &a, &b, r.results);
        if (o->tls_resume && r.cconf.tls_hi > r.cconf.tls_lo)
            connect_resumed(&r);
    }
    return run_close(&r);
}
