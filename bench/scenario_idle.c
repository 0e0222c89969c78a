#include <cjson/cJSON.h>

#include "run.h"
#include "scenario.h"

/* Time for the server's allocator to settle after the last identify. */
#define IDLE_SETTLE_S 2.0

static double idle_per_session(uint64_t kb_after, uint64_t kb_before,
                               uint64_t sessions)
{
    if (sessions == 0)
        return 0;
    return ((double)kb_after - (double)kb_before) * 1024 / (double)sessions;
}

static void idle_results(run_t *r, const run_mark_t *before,
                         const run_mark_t *a, const run_mark_t *b)
{
    cJSON *res = r->results, *hold = cJSON_CreateObject();
    uint64_t ident = r->total.c.identified;

    cJSON_AddNumberToObject(res, "sessions", r->sessions);
    cJSON_AddNumberToObject(res, "identified", (double)ident);
    cJSON_AddNumberToObject(res, "open_at_end", (double)r->total.open);
    if (before->srv_ok && a->srv_ok && b->srv_ok) {
        cJSON_AddNumberToObject(res, "rss_before_kb",
                                (double)before->srv.rss_kb);
        cJSON_AddNumberToObject(res, "rss_connected_kb", (double)a->srv.rss_kb);
        cJSON_AddNumberToObject(res, "rss_end_kb", (double)b->srv.rss_kb);
        cJSON_AddNumberToObject(
            res, "rss_per_session_bytes",
            idle_per_session(a->srv.rss_kb, before->srv.rss_kb, ident));
        cJSON_AddNumberToObject(
            res, "rss_per_session_end_bytes",
            idle_per_session(b->srv.rss_kb, before->srv.rss_kb, ident));
    }
    run_window_json(a, b, hold);
    cJSON_AddItemToObject(hold, "counters", run_counters_json(&a->c, &b->c));
    cJSON_AddItemToObject(res, "hold", hold);
    cJSON_AddItemToObject(res, "connect_to_identified",
                          run_latency_json(&r->total.conn));
}

int scenario_idle(const opts_t *o)
{
    run_t r;
    run_mark_t before, a, b;

    if (run_open(&r, o, "idle", (uint32_t)o->sessions, 0, 0, 0) == 0) {
        run_mark(&r, &before);
        if (run_connect_all(&r, o->rate) != 0)
            r.failed = 1;
        r.phase = "settle";
        run_sleep(&r, IDLE_SETTLE_S);
        run_window_begin(&r, &a);
        r.phase = "hold";
        run_sleep(&r, o->duration);
        run_mark(&r, &b);
        idle_results(&r, &before, &a, &b);
    }
    return run_close(&r);
}
