#include "opts.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef enum { OPT_LONG, OPT_DOUBLE, OPT_STR, OPT_FLAG, OPT_LIST } opt_type_t;

typedef struct opt {
    const char *name;
    opt_type_t type;
    size_t offset;
    const char *def; /* default, as on the command line; NULL = none */
    double lo, hi;   /* bounds of a number; every load stays bounded */
    const char *help;
} opt_t;

#define OPT(name, type, field, def, help)                                      \
    {                                                                          \
        name, type, offsetof(opts_t, field), def, 0, 0, help                   \
    }
#define OPTN(name, type, field, def, lo, hi, help)                             \
    {                                                                          \
        name, type, offsetof(opts_t, field), def, lo, hi, help                 \
    }

static const opt_t opts_table[] = {
    OPTN("sessions", OPT_LONG, sessions, "5000", 1, 1e6,
         "sessions (connect, idle, reconnect, relay); fanout and typing use "
         "guilds x members"),
    OPTN("rate", OPT_DOUBLE, rate, "0", 0, 1e6,
         "connects per second over all clients; 0 = as fast as --inflight "
         "allows. relay: requests per second over all sessions, 0 = 2000 "
         "(its connects are unpaced)"),
    OPTN("inflight", OPT_LONG, inflight, "256", 1, 1e5,
         "unfinished handshakes per client loop"),
    OPTN("duration", OPT_DOUBLE, duration, "10", 0, 3600,
         "seconds of the measured phase (idle hold, fanout publishing, "
         "typing, reconnect churn; presence: watched after the storm "
         "settled, for late announcements: longer than the offline grace)"),
    OPTN("procs", OPT_LONG, procs, "0", 0, 32,
         "client processes; 0 = one per 15,000 sessions (20,000 open files "
         "each)"),
    OPTN("threads", OPT_LONG, threads, "2", 1, 64,
         "client loops (threads) per process; one per core keeps the "
         "generator from queueing deliveries"),
    OPTN("src-addrs", OPT_LONG, src_addrs, "16", 0, 250,
         "bind clients to 127.0.0.2 .. 127.0.0.(1+N); 0 = let the kernel "
         "choose"),
    OPTN("stage-timeout-ms", OPT_LONG, stage_timeout_ms, "10000", 1, 6e5,
         "time each handshake stage may take before it counts as failed"),
    OPT("target", OPT_LIST, target, NULL,
        "ws:// or wss://127.0.0.1:PORT[/path] of a running server; "
        "default: start --gatewayd. presence: repeat it for each instance "
        "(at most 8)"),
    OPT("http-url", OPT_LIST, http_url, NULL,
        "http://127.0.0.1:PORT of each --target's HTTP API, in the same "
        "order (presence: GET /presence and /stats)"),
    OPT("proto", OPT_STR, proto, "gw",
        "gw (ready/identify/heartbeat) or nchan (/sub/<guild>, no identify)"),
    OPTN("pid", OPT_LIST, pid, NULL, 1, 4194304,
         "PID of the --target server (and its children) for CPU and RSS; "
         "presence: one per --target, their sum is the server's"),
    OPT("gatewayd", OPT_STR, gatewayd, "./gatewayd", "daemon binary to start"),
    OPTN("workers", OPT_LONG, workers, "0", 0, 256,
         "server.workers of the started daemon; 0 = one per core"),
    OPTN("heartbeat-ms", OPT_LONG, heartbeat_ms, "30000", 100, 864e5,
         "session.heartbeat_interval_ms of the started daemon"),
    OPTN("typing-limit", OPT_LONG, typing_limit, "5", 1, 1e9,
         "session.typing_limit of the started daemon"),
    OPT("gw-set", OPT_LIST, gw_set, NULL,
        "extra key=value for the started daemon's -s (repeatable)"),
    OPT("tls", OPT_STR, tls, "off",
        "which clients speak TLS (wss://): off, all, or storm (the --storm "
        "sessions only); a wss:// --target means all"),
    OPT("tls-cert", OPT_STR, tls_cert, NULL,
        "PEM certificate chain the started daemon serves wss:// with, on a "
        "port of its own (tls.port), beside ws://"),
    OPT("tls-key", OPT_STR, tls_key, NULL, "the private key of --tls-cert"),
    OPT("tls-resume", OPT_FLAG, tls_resume, NULL,
        "a TLS client that connects again offers its last session (its "
        "ticket); connect: all sessions are reset and connect once more, "
        "resumed"),
    OPT("jwt-secret", OPT_STR, jwt_secret, "gwbench-secret",
        "HS256 key of the identify tokens"),
    OPTN("guilds", OPT_LONG, guilds, "50", 1, 1e5,
         "guilds (fanout, typing; presence: the sessions share them)"),
    OPTN("members", OPT_LONG, members, "100", 1, 1e6,
         "sessions per guild (fanout, typing)"),
    OPTN("event-rate", OPT_DOUBLE, event_rate, "1000", 0, 1e6,
         "events published per second (fanout)"),
    OPTN("events", OPT_LONG, events, "0", 0, 1e9,
         "most events to publish; 0 = event-rate x duration"),
    OPT("via", OPT_STR, via, "redis",
        "publish path: redis (PUBLISH gateway_events), http (POST "
        "/publish; nchan: /pub/<guild>) or amqp (--exchange, with "
        "publisher confirms)"),
    OPT("redis", OPT_STR, redis, NULL,
        "HOST:PORT of a running Redis; default: start a private "
        "redis-server"),
    OPT("amqp", OPT_STR, amqp, NULL,
        "HOST:PORT of a running RabbitMQ (guest/guest, vhost /); default: "
        "start a private rabbitmq-server (needed with --target)"),
    OPT("exchange", OPT_STR, exchange, "discord_events",
        "AMQP topic exchange (also amqp.exchange of the started daemon)"),
    OPT("routing-key", OPT_STR, routing_key, "gwbench.fanout",
        "AMQP routing key of the events (fanout) and of the echo backend's "
        "answers (relay)"),
    OPT("upstream", OPT_STR, upstream, "gateway_upstream",
        "AMQP exchange client events go up to (relay; also "
        "amqp.upstream_exchange of the started daemon)"),
    OPT("publish-url", OPT_STR, publish_url, NULL,
        "http://127.0.0.1:PORT/publish of a --target server (http path); a "
        "path ending in / takes the guild: POST /pub/g<guild>"),
    OPT("api-key", OPT_STR, api_key, "gwbench-key", "X-API-Key of /publish"),
    OPTN("payload", OPT_LONG, payload, "200", 64, 65000,
         "bytes of each event envelope (fanout) or request (relay)"),
    OPTN("publishers", OPT_LONG, publishers, "4", 1, 64,
         "HTTP connections of the http publish path"),
    OPTN("drain", OPT_DOUBLE, drain, "5", 0, 600,
         "most seconds to wait for the last deliveries (relay: answers; "
         "what has none by then is lost)"),
    OPTN("typing-rate", OPT_DOUBLE, typing_rate, "500", 0, 1e6,
         "typing.start sent per second over all sessions"),
    OPTN("churn", OPT_DOUBLE, churn, "5", 0, 100,
         "percent of the sessions dropped and reconnected (resume: reset "
         "and resumed) per second"),
    OPTN("instances", OPT_LONG, instances, "0", 0, 8,
         "fanout: K gatewayd on one private Redis (each --workers), each "
         "guild on one of them, events PUBLISHed as a backend does: to "
         "the guild's channel, or to the plain one with --gw-set "
         "redis.targeted=false; per instance, events received and "
         "broker-thread CPU; 0 = one daemon, the classic run"),
    OPTN("storm", OPT_LONG, storm, "0", 0, 1e6,
         "fanout: sessions more, in no guild, that connect unpaced (within "
         "--inflight) --storm-at seconds into publishing and stay: a "
         "connect storm beside the fan-out"),
    OPTN("storm-at", OPT_DOUBLE, storm_at, "2", 0, 3600,
         "fanout: seconds into publishing the --storm begins"),
    OPTN("fill", OPT_LONG, fill, "0", 0, 100000,
         "park: dispatches each session receives before it is reset "
         "(256 fills session.replay_size); 0 = an empty replay buffer"),
    OPTN("margin", OPT_LONG, margin_ms, "1000", 0, 60000,
         "drain: session.handoff_margin_ms of both instances (1000 is "
         "gatewayd's default; 0 is exact for events through Redis)"),
    OPTN("drain-ms", OPT_LONG, drain_ms, "5000", 0, 600000,
         "drain: server.drain_ms of both instances, the window the drained "
         "one spreads its 4011 closes over"),
    OPT("haproxy-cfg", OPT_STR, haproxy_cfg, "deploy/haproxy.cfg",
        "drain: HAProxy's config, its addresses from the environment"),
    OPTN("settle-timeout", OPT_DOUBLE, settle_timeout, "30", 1, 600,
         "presence: most seconds each step may take (the connects, the "
         "cluster view settling, the reconnects, the quiet before the "
         "storm)"),
    OPTN("redis-pid", OPT_LONG, redis_pid, "0", 0, 4194304,
         "presence: PID of the redis-server the --target instances share, "
         "for its CPU (the one gwbench starts is measured anyway)"),
    OPTN("presence-ttl-ms", OPT_LONG, presence_ttl_ms, "15000", 1000, 3.6e6,
         "presence: the instances' presence.instance_ttl_ms, from which "
         "their liveness calls in Redis (one per quarter) are estimated"),
    OPT("json", OPT_STR, json, NULL, "write the JSON report here, not stdout"),
    OPT("plot", OPT_STR, plot, NULL,
        "draw latency percentiles and deliveries over time (PNG, gnuplot)"),
    OPT("quiet", OPT_FLAG, quiet, NULL, "no progress line"),
    OPTN("timeout", OPT_DOUBLE, timeout, "280", 1, 3600,
         "hard limit of the whole run, seconds"),
    OPT("keep", OPT_FLAG, keep, NULL,
        "keep the started servers' directory (config and logs)"),
};

#define OPTS_N (sizeof(opts_table) / sizeof(opts_table[0]))

static void *opts_field(opts_t *o, const opt_t *t)
{
    return (char *)o + t->offset;
}

static int opts_in_bounds(opts_t *o, const opt_t *t)
{
    double v = t->type == OPT_LONG ? (double)*(long *)opts_field(o, t)
                                   : *(double *)opts_field(o, t);

    return v >= t->lo && v <= t->hi;
}

/* Appends v to a repeatable flag's list; a list with bounds holds
 * integers within them. */
static int opts_list_add(const opt_t *t, opts_list_t *l, const char *v)
{
    char *end;
    long n;

    if (l->n == OPTS_MAX_LIST)
        return -1;
    if (t->hi > t->lo) {
        errno = 0;
        n = strtol(v, &end, 10);
        if (errno != 0 || end == v || *end != '\0' || n < t->lo || n > t->hi)
            return -1;
    }
    l->v[l->n++] = v;
    return 0;
}

static int opts_set(opts_t *o, const opt_t *t, const char *v)
{
    void *f = opts_field(o, t);
    char *end;

    errno = 0;
    switch (t->type) {
    case OPT_LONG: *(long *)f = strtol(v, &end, 10); break;
    case OPT_DOUBLE: *(double *)f = strtod(v, &end); break;
    case OPT_STR: *(const char **)f = v; return 0;
    case OPT_FLAG: *(int *)f = 1; return 0;
    case OPT_LIST: return opts_list_add(t, f, v);
    }
    if (errno != 0 || end == v || *end != '\0')
        return -1;
    return opts_in_bounds(o, t) ? 0 : -1;
}

void opts_defaults(opts_t *o)
{
    memset(o, 0, sizeof(*o));
    for (size_t i = 0; i < OPTS_N; i++)
        if (opts_table[i].def != NULL)
            opts_set(o, &opts_table[i], opts_table[i].def);
}

static const opt_t *opts_find(const char *name, size_t len)
{
    for (size_t i = 0; i < OPTS_N; i++)
        if (strlen(opts_table[i].name) == len &&
            strncmp(opts_table[i].name, name, len) == 0)
            return &opts_table[i];
    return NULL;
}

int opts_parse(opts_t *o, int argc, char **argv)
{
    const char *a = "";

    for (int i = 0; i < argc; i++) {
        const char *eq, *v;
        const opt_t *t;

        a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return 1;
        if (strcmp(a, "-n") == 0)
            a = "--sessions";
        if (strncmp(a, "--", 2) != 0)
            goto Bad;
        eq = strchr(a + 2, '=');
        t = opts_find(a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2));
        if (t == NULL)
            goto Bad;
        if (t->type == OPT_FLAG) {
            v = "1";
        } else if (eq != NULL) {
            v = eq + 1;
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            goto Bad;
        }
        if (opts_set(o, t, v) != 0) {
            util_warn("bad value for --%s: %s (range %g..%g)", t->name, v,
                      t->lo, t->hi);
            return -1;
        }
    }
    return 0;
Bad:
    util_warn("unknown option or missing value: %s", a);
    return -1;
}

void opts_usage(void)
{
    for (size_t i = 0; i < OPTS_N; i++) {
        const opt_t *t = &opts_table[i];

        fprintf(stderr, "  --%-17s %s", t->name, t->help);
        if (t->def != NULL)
            fprintf(stderr, " [%s]", t->def);
        fputc('\n', stderr);
    }
}

/* A list as a JSON array: numbers when it has bounds, else strings. */
static cJSON *opts_list_json(const opt_t *t, const opts_list_t *l)
{
    cJSON *a = cJSON_CreateArray();

    for (size_t i = 0; i < l->n; i++)
        cJSON_AddItemToArray(a, t->hi > t->lo
                                    ? cJSON_CreateNumber(atof(l->v[i]))
                                    : cJSON_CreateString(l->v[i]));
    return a;
}

static void opts_field_json(cJSON *obj, const opts_t *o, const opt_t *t)
{
    const void *f = (const char *)o + t->offset;

    switch (t->type) {
    case OPT_LONG:
        cJSON_AddNumberToObject(obj, t->name, (double)*(const long *)f);
        break;
    case OPT_DOUBLE:
        cJSON_AddNumberToObject(obj, t->name, *(const double *)f);
        break;
    case OPT_STR:
        if (*(const char *const *)f != NULL)
            cJSON_AddStringToObject(obj, t->name, *(const char *const *)f);
        break;
    case OPT_FLAG: cJSON_AddBoolToObject(obj, t->name, *(const int *)f); break;
    case OPT_LIST:
        cJSON_AddItemToObject(obj, t->name, opts_list_json(t, f));
        break;
    }
}

cJSON *opts_to_json(const opts_t *o)
{
    cJSON *obj = cJSON_CreateObject();

    for (size_t i = 0; i < OPTS_N; i++)
        opts_field_json(obj, o, &opts_table[i]);
    return obj;
}
