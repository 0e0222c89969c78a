/*
 * Command-line options of gwbench: one table (opts.c) gives each flag its
 * type, field, default and help, and drives parsing, the usage text and the
 * "params" object of the JSON report.
 */
#ifndef BENCH_OPTS_H
#define BENCH_OPTS_H

#include <stddef.h>

#define OPTS_MAX_LIST 16

/* A repeatable flag's values, in the order given. */
typedef struct opts_list {
    const char *v[OPTS_MAX_LIST];
    size_t n;
} opts_list_t;

typedef struct opts {
    /* sessions */
    long sessions;         /* connect, idle, reconnect: N */
    double rate;           /* connects per second; 0 = as fast as inflight;
                              relay: requests per second, 0 = 2,000 */
    long inflight;         /* unfinished handshakes per client loop */
    double duration;       /* seconds of the measured phase */
    long procs;            /* worker processes; 0 = one per 15,000 sessions */
    long threads;          /* client loops per worker process */
    long src_addrs;        /* source addresses 127.0.0.2 ...; 0 = kernel's */
    long stage_timeout_ms; /* budget of each handshake stage */
    /* server */
    opts_list_t target;   /* ws://127.0.0.1:PORT[/path]; none = start
                             gatewayd; several: presence's instances */
    opts_list_t http_url; /* http://127.0.0.1:PORT of each target's API */
    const char *proto;    /* "gw" or "nchan" */
    opts_list_t pid;      /* each target's PID, for /proc figures */
    const char *gatewayd;
    long workers;
    long heartbeat_ms;
    long typing_limit;
    opts_list_t gw_set; /* extra -s key=value */
    /* TLS (wss://) */
    const char *tls;      /* which clients speak TLS: off, all, storm */
    const char *tls_cert; /* the started daemon's certificate chain */
    const char *tls_key;  /* and its key */
    int tls_resume;       /* reconnects offer the last session's ticket */
    const char *jwt_secret;
    /* fanout and typing */
    long guilds;
    long members;
    double event_rate;
    long events;       /* most events to publish; 0 = rate x duration */
    const char *via;   /* redis, http, amqp */
    const char *redis; /* host:port of a running Redis; NULL = start one */
    const char *amqp;  /* host:port of a running RabbitMQ; NULL = start one */
    const char *exchange;    /* AMQP topic exchange */
    const char *upstream;    /* AMQP exchange client events go up to */
    const char *routing_key; /* AMQP routing key of the events */
    const char *publish_url;
    const char *api_key;
    long payload;
    long publishers;
    double drain;
    double typing_rate;
    double churn;
    long instances;  /* fanout: gatewayd instances on one Redis; 0 = one,
                        the classic run */
    long storm;      /* fanout: sessions that connect during publishing */
    double storm_at; /* seconds into publishing they start */
    long fill;       /* park: dispatches each session gets before its cut */
    /* drain */
    long margin_ms;          /* the instances' session.handoff_margin_ms */
    long drain_ms;           /* the instances' server.drain_ms */
    const char *haproxy_cfg; /* HAProxy's config (deploy/haproxy.cfg) */
    /* presence */
    double settle_timeout; /* most seconds of each step */
    long redis_pid;        /* the instances' redis-server, for its CPU */
    long presence_ttl_ms;  /* the instances' presence.instance_ttl_ms */
    /* output */
    const char *json;
    const char *plot;
    int quiet;
    double timeout;
    int keep;
} opts_t;

/* Fills o with the defaults. */
void opts_defaults(opts_t *o);

/*
 * Parses argv (after the subcommand) into o. Returns 0, 1 when --help was
 * asked, or -1 after printing what was wrong.
 */
int opts_parse(opts_t *o, int argc, char **argv);

/* Prints every option with its default and help. */
void opts_usage(void);

typedef struct cJSON cJSON;

/* The options in effect, as a JSON object. */
cJSON *opts_to_json(const opts_t *o);

#endif
