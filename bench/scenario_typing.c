#include <cjson/cJSON.h>

#include "run.h"
#include "scenario.h"
#include "util.h"

static void typing_results(run_t *r, const run_mark_t *a, const run_mark_t *b)
{
    const client_figures_t *w = &r->win;
    cJSON *res = r->results;
    uint64_t accepted = w->c.typing_sent - w->c.typing_limited;
    /* Each sender is its user's only session, and only the sender's
     * sessions are skipped: the other members - 1 receive it. */
    uint64_t expected = accepted * (uint64_t)(r->o->members - 1);
    double srv;

    cJSON_AddNumberToObject(res, "sessions", r->sessions);
    cJSON_AddNumberToObject(res, "identified", (double)r->total.c.identified);
    cJSON_AddNumberToObject(res, "typing_sent", (double)w->c.typing_sent);
    cJSON_AddNumberToObject(res, "rate_limited", (double)w->c.typing_limited);
    cJSON_AddNumberToObject(res, "relays_received", (double)w->c.deliveries);
    cJSON_AddNumberToObject(res, "expected", (double)expected);
    cJSON_AddNumberToObject(res, "delivered_share",
                            expected ? (double)w->c.deliveries / expected : 0);
    cJSON_AddItemToObject(res, "latency", run_latency_json(&w->lat));
    srv = run_window_json(a, b, res);
    if (srv > 0)
        cJSON_AddNumberToObject(res, "relays_per_server_cpu_s",
                                (double)w->c.deliveries / srv);
    cJSON_AddItemToObject(res, "window_counters",
                          run_counters_json(&a->c, &b->c));
}

int scenario_typing(const opts_t *o)
{
    uint32_t n = (uint32_t)(o->guilds * o->members);
    run_mark_t a, b;
    run_t r;

    if (o->guilds * o->members > 1000000 || o->members < 2 ||
        o->typing_rate <= 0) {
        util_warn("typing needs --typing-rate > 0, --members >= 2 and at "
                  "most 1e6 sessions (--guilds x --members)");
        return 2;
    }
    if (run_open(&r, o, "typing", n, (uint32_t)o->guilds, (uint32_t)o->members,
                 0) == 0) {
        if (run_connect_all(&r, o->rate) != 0)
            r.failed = 1;
        run_window_begin(&r, &a);
        r.phase = "typing";
        run_command(&r, CLIENT_CMD_TYPING, o->typing_rate);
        run_sleep(&r, o->duration);
        run_command(&r, CLIENT_CMD_QUIET, 0);
        run_drain(&r, UINT64_MAX, o->drain);
        run_mark(&r, &b);
        typing_results(&r, &a, &b);
    }
    return run_close(&r);
}
