/*
 * park: the server memory a parked session holds (docs/continuity.md),
 * with an empty replay buffer (--fill 0) or after --fill dispatches each
 * (256, session.replay_size, fills it).
 *
 * RSS does not shrink when memory is freed: malloc keeps the pages for
 * later allocations. So RSS once a round of sessions has parked, less RSS
 * before any client, still holds the memory of their connections, freed
 * but kept. The method is rounds. In round r (of PARK_ROUNDS), -n clients
 * of its own (r N .. (r + 1) N - 1) in --guilds guilds of its own connect
 * and identify; with --fill, F events go to each of those guilds at
 * --event-rate, until every session of the round has them all; then every
 * session of the round is reset (TCP RST: the server parks it) and, once
 * /stats counts them all parked and PARK_SETTLE_S more have passed, RSS is
 * read. From round 2 on, a round's connections reuse the memory that the
 * previous round's connections freed, so RSS's growth over the round, per
 * session, is what a parked session keeps: its session, its index
 * entries, its replay buffer, and its share of its worker's log of bodies
 * (each event's body once per worker that sent it).
 *
 * The earlier rounds' sessions stay parked (session.resume_window_ms,
 * 120 s by default, is longer than the run, and resume_expired is
 * reported); their guilds get no more events, so their buffers do not
 * overflow.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "publish.h"
#include "resume.h"
#include "run.h"
#include "scenario.h"
#include "util.h"

#define PARK_ROUNDS 3
#define PARK_SETTLE_S 2.0 /* after the last session parked */
#define PARK_WAIT_S 15.0  /* for the server to count them parked */
#define PARK_READY_S 10.0
#define PARK_HTTP_MS 2000
#define PARK_BODY_MAX 65536

typedef struct park_round {
    uint64_t identified;
    uint64_t deliveries;
    uint64_t connected_kb, filled_kb, parked_kb;
    double parked; /* the server's gauge once settled */
} park_round_t;

typedef struct park_run {
    run_t r;
    uint32_t guilds;  /* per round */
    uint32_t members; /* per guild */
    uint32_t per;     /* sessions per round: guilds x members */
    uint64_t before_kb;
    park_round_t round[PARK_ROUNDS];
    unsigned done; /* rounds measured */
    resume_stats_t end;
    int end_ok;
} park_run_t;

static char park_body[PARK_BODY_MAX];

static int park_stats(park_run_t *x, resume_stats_t *s)
{
    int st = target_http_get(&x->r.tgt, "/stats", park_body, sizeof(park_body),
                             PARK_HTTP_MS);

    if (st != 200)
        return -1;
    return resume_stats_parse(park_body, strlen(park_body), s);
}

/* The server's RSS now, kB; 0 when unreadable. */
static uint64_t park_rss(park_run_t *x)
{
    run_mark_t m;

    run_mark(&x->r, &m);
    return m.srv_ok ? m.srv.rss_kb : 0;
}

/* --fill events to each guild of round k, until each session has them. */
static int park_fill(park_run_t *x, unsigned k)
{
    const opts_t *o = x->r.o;
    uint64_t count = (uint64_t)o->fill * x->guilds;
    publish_conf_t pc;
    publish_t *pub;
    run_mark_t a;
    int rc = -1;

    memset(&pc, 0, sizeof(pc));
    pc.via = PUBLISH_REDIS;
    snprintf(pc.host, sizeof(pc.host), "%s", x->r.tgt.redis_host);
    pc.port = x->r.tgt.redis_port;
    pc.channel = "gateway_events";
    pc.guilds = x->guilds;
    pc.guild0 = k * x->guilds;
    pc.payload = (size_t)o->payload;
    pub = publish_new(&x->r.loop, &pc);
    if (run_until(&x->r, run_publisher_ready, pub, PARK_READY_S) != 0 ||
        publish_ready(pub) < 0) {
        util_warn("cannot connect the publisher to %s:%d", pc.host, pc.port);
        goto Out;
    }
    run_window_begin(&x->r, &a);
    x->r.phase = "fill";
    publish_start(pub, o->event_rate, count);
    if (run_until(&x->r, run_publisher_done, pub,
                  (double)count / o->event_rate * 2 + 10) != 0 ||
        publish_stats(pub)->broken) {
        util_warn("round %u: the publisher did not finish", k + 1);
        goto Out;
    }
    if (run_drain(&x->r, (uint64_t)o->fill * x->per, o->drain) != 0) {
        util_warn("round %u: %llu of %llu dispatches arrived", k + 1,
                  (unsigned long long)x->r.win.c.deliveries,
                  (unsigned long long)o->fill * x->per);
        goto Out;
    }
    rc = 0;
Out:
    x->round[k].deliveries = x->r.win.c.deliveries;
    publish_free(pub);
    return rc;
}

typedef struct park_want {
    park_run_t *x;
    double parked;
} park_want_t;

static int park_all_parked(run_t *r, void *ud)
{
    park_want_t *w = ud;
    resume_stats_t s;

    (void)r;
    return park_stats(w->x, &s) == 0 && s.parked >= w->parked;
}

/* Round k: connect, fill, reset, and the RSS of each step. */
static int park_round(park_run_t *x, unsigned k)
{
    park_round_t *pr = &x->round[k];
    uint64_t ident = x->r.total.c.identified;
    park_want_t want = {x, (double)(k + 1) * x->per};
    resume_stats_t s;

    if (run_connect_range(&x->r, k * x->per, (k + 1) * x->per, x->r.o->rate) !=
        0)
        return -1;
    pr->identified = x->r.total.c.identified - ident;
    if (pr->identified < x->per) {
        util_warn("round %u: %llu of %u identified", k + 1,
                  (unsigned long long)pr->identified, x->per);
        return -1;
    }
    pr->connected_kb = park_rss(x);
    if (x->r.o->fill > 0 && park_fill(x, k) != 0)
        return -1;
    pr->filled_kb = park_rss(x);
    x->r.phase = "park";
    run_command(&x->r, CLIENT_CMD_CUT, 0);
    if (run_until(&x->r, park_all_parked, &want, PARK_WAIT_S) != 0) {
        util_warn("round %u: the server did not count %.0f sessions parked",
                  k + 1, want.parked);
        return -1;
    }
    run_sleep(&x->r, PARK_SETTLE_S);
    pr->parked_kb = park_rss(x);
    pr->parked = park_stats(x, &s) == 0 ? s.parked : -1;
    return 0;
}

/* ---- figures ---------------------------------------------------------- */

/* (b - a) kB over n sessions, in bytes. */
static double park_per(uint64_t a_kb, uint64_t b_kb, double n)
{
    return n > 0 ? ((double)b_kb - (double)a_kb) * 1024 / n : 0;
}

static cJSON *park_round_json(const park_run_t *x, unsigned k)
{
    const park_round_t *pr = &x->round[k];
    uint64_t prev = k == 0 ? x->before_kb : x->round[k - 1].parked_kb;
    cJSON *o = cJSON_CreateObject();

    cJSON_AddNumberToObject(o, "identified", (double)pr->identified);
    cJSON_AddNumberToObject(o, "deliveries", (double)pr->deliveries);
    cJSON_AddNumberToObject(o, "rss_connected_kb", (double)pr->connected_kb);
    cJSON_AddNumberToObject(o, "rss_filled_kb", (double)pr->filled_kb);
    cJSON_AddNumberToObject(o, "rss_parked_kb", (double)pr->parked_kb);
    cJSON_AddNumberToObject(o, "server_parked", pr->parked);
    cJSON_AddNumberToObject(o, "connected_bytes_per_session",
                            park_per(prev, pr->connected_kb, x->per));
    cJSON_AddNumberToObject(o, "parked_bytes_per_session",
                            park_per(prev, pr->parked_kb, x->per));
    return o;
}

static void park_results(park_run_t *x)
{
    cJSON *res = x->r.results, *rounds = cJSON_CreateArray();
    double sum = 0, lo = 0, hi = 0;
    unsigned n = 0;

    cJSON_AddNumberToObject(res, "sessions_per_round", x->per);
    cJSON_AddNumberToObject(res, "guilds_per_round", x->guilds);
    cJSON_AddNumberToObject(res, "members", x->members);
    cJSON_AddNumberToObject(res, "fill", (double)x->r.o->fill);
    cJSON_AddNumberToObject(res, "rss_before_kb", (double)x->before_kb);
    for (unsigned k = 0; k < x->done; k++) {
        double b = park_per(k ? x->round[k - 1].parked_kb : x->before_kb,
                            x->round[k].parked_kb, x->per);

        cJSON_AddItemToArray(rounds, park_round_json(x, k));
        if (k == 0)
            continue;
        lo = n == 0 || b < lo ? b : lo;
        hi = n == 0 || b > hi ? b : hi;
        sum += b;
        n++;
    }
    cJSON_AddItemToObject(res, "rounds", rounds);
    if (n > 0) {
        cJSON_AddNumberToObject(res, "bytes_per_parked_session", sum / n);
        cJSON_AddNumberToObject(res, "bytes_per_parked_session_min", lo);
        cJSON_AddNumberToObject(res, "bytes_per_parked_session_max", hi);
    }
    if (x->done > 0)
        cJSON_AddNumberToObject(
            res, "first_round_bytes_per_session",
            park_per(x->before_kb, x->round[0].parked_kb, x->per));
    if (!x->end_ok)
        return;
    cJSON_AddNumberToObject(res, "server_workers", x->end.workers);
    cJSON_AddNumberToObject(res, "server_parked_at_end", x->end.parked);
    cJSON_AddNumberToObject(res, "resume_overflows", x->end.overflows);
    cJSON_AddNumberToObject(res, "resume_expired", x->end.expired);
    /* The envelopes the workers' logs hold for one round, per session of
     * it: each event's body once per worker, each about --payload bytes. */
    cJSON_AddNumberToObject(res, "log_payload_bytes_per_session",
                            (double)x->r.o->fill * x->guilds *
                                (double)x->r.o->payload * x->end.workers /
                                x->per);
}

int scenario_park(const opts_t *o)
{
    park_run_t x;
    run_spec_t spec;

    memset(&x, 0, sizeof(x));
    if (o->target.n > 0 || (o->fill > 0 && o->event_rate <= 0)) {
        util_warn("park starts its own gatewayd and Redis (no --target), and "
                  "--fill needs --event-rate > 0");
        return 2;
    }
    x.guilds = (uint32_t)o->guilds;
    x.members =
        (uint32_t)(o->sessions / o->guilds > 0 ? o->sessions / o->guilds : 1);
    x.per = x.guilds * x.members;
    spec = (run_spec_t){.scenario = "park",
                        .sessions = PARK_ROUNDS * x.per,
                        .guilds = PARK_ROUNDS * x.guilds,
                        .members = x.members,
                        .broker = TARGET_BROKER_REDIS};
    if (run_open_spec(&x.r, o, &spec) == 0) {
        x.before_kb = park_rss(&x);
        for (x.done = 0; x.done < PARK_ROUNDS; x.done++)
            if (park_round(&x, x.done) != 0) {
                x.r.failed = 1;
                break;
            }
        x.end_ok = park_stats(&x, &x.end) == 0;
        park_results(&x);
    } else {
        x.r.failed = 1;
    }
    return run_close(&x.r);
}
