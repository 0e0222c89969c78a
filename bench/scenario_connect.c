#include <cjson/cJSON.h>

#include "run.h"
#include "scenario.h"

/* Failures by the stage the connection died in. */
static cJSON *connect_failures(const stats_counters_t *a,
                               const stats_counters_t *b)
{
    cJSON *f = cJSON_CreateObject();

    cJSON_AddNumberToObject(f, "tcp", (double)(b->fail_tcp - a->fail_tcp));
    cJSON_AddNumberToObject(f, "upgrade",
                            (double)(b->fail_upgrade - a->fail_upgrade));
    cJSON_AddNumberToObject(f, "ready",
                            (double)(b->fail_ready - a->fail_ready));
    cJSON_AddNumberToObject(f, "identify",
                            (double)(b->fail_identify - a->fail_identify));
    return f;
}

static void connect_results(run_t *r, const run_mark_t *a, const run_mark_t *b)
{
    const client_figures_t *w = &r->win;
    double storm_s = w->t_last_ident > w->t_first
                         ? (double)(w->t_last_ident - w->t_first) / 1e6
                         : 0;
    cJSON *res = r->results;

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
    run_window_json(a, b, res);
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
        connect_results(&r, &a, &b);
    }
    return run_close(&r);
}
