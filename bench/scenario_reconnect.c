#include <cjson/cJSON.h>

#include "run.h"
#include "scenario.h"

/* Time the last dropped sessions get to come back. */
#define RECONNECT_SETTLE_S 15.0

static int reconnect_all_back(run_t *r, void *ud)
{
    const run_mark_t *a = ud;

    /* Every drop either came back or failed at some stage. */
    return run_concluded(&r->total.c) - run_concluded(&a->c) >=
           r->total.c.drops - a->c.drops;
}

static void reconnect_results(run_t *r, const run_mark_t *a,
                              const run_mark_t *b)
{
    const client_figures_t *w = &r->win;
    cJSON *res = r->results;
    double churn_s = r->o->duration;

    cJSON_AddNumberToObject(res, "sessions", r->sessions);
    cJSON_AddNumberToObject(res, "churn_pct_per_s", r->o->churn);
    cJSON_AddNumberToObject(res, "dropped", (double)w->c.drops);
    cJSON_AddNumberToObject(res, "reconnected", (double)w->c.identified);
    cJSON_AddNumberToObject(res, "reconnects_per_s",
                            churn_s > 0 ? (double)w->c.identified / churn_s
                                        : 0);
    cJSON_AddNumberToObject(res, "open_at_end", (double)r->total.open);
    cJSON_AddItemToObject(res, "drop_to_identified",
                          run_latency_json(&w->conn));
    run_window_json(a, b, res);
    cJSON_AddItemToObject(res, "window_counters",
                          run_counters_json(&a->c, &b->c));
}

int scenario_reconnect(const opts_t *o)
{
    run_mark_t a, b;
    run_t r;

    if (run_open(&r, o, "reconnect", (uint32_t)o->sessions, 0, 0, 0) == 0) {
        if (run_connect_all(&r, o->rate) != 0)
            r.failed = 1;
        run_window_begin(&r, &a);
        r.phase = "churn";
        run_command(&r, CLIENT_CMD_CHURN, o->churn / 100);
        run_sleep(&r, o->duration);
        run_command(&r, CLIENT_CMD_QUIET, 0);
        r.phase = "settle";
        run_until(&r, reconnect_all_back, &a, RECONNECT_SETTLE_S);
        run_mark(&r, &b);
        reconnect_results(&r, &a, &b);
    }
    return run_close(&r);
}
