/*
 * Several gatewayd instances on one Redis, all on loopback ports of their
 * own, optionally behind HAProxy with the deployment's own
 * deploy/haproxy.cfg: what the drain scenario (two instances and the
 * proxy) and fanout --instances (up to eight, no proxy) measure. Each
 * instance gets a generated config (its own broker.instance_id, the same
 * Redis and channel, presence and RabbitMQ off, log level warn), then the
 * scenario's own settings and --gw-set as -s options, in that order (the
 * drain's: its drain and handoff settings, log level info so that a failed
 * handoff says why in its log). HAProxy gets the instances' addresses
 * through the environment its config reads (GW_LISTEN, GW1_ADDR,
 * GW1_HEALTH, ...; test/e2e/test_haproxy.py's fixture does the same).
 *
 * Everything started dies with gwbench (PR_SET_PDEATHSIG) and is stopped
 * by cluster_stop(): HAProxy with SIGTERM (it stops at once), an instance
 * still running with SIGINT (it stops at once, without a drain of its
 * own), SIGKILL after 5 s. The config files and logs stay in the directory
 * given (the run's: kept when the run fails).
 */
#ifndef BENCH_CLUSTER_H
#define BENCH_CLUSTER_H

#include <stddef.h>
#include <sys/types.h>

#include "opts.h"
#include "proc.h"

#define CLUSTER_MAX_INST 8 /* as many as a run's clients know (client.h) */
#define CLUSTER_MAX_SETS 8 /* a scenario's own -s settings */

typedef struct cluster_inst {
    char id[32];           /* broker.instance_id */
    int ws_port;           /* WebSocket */
    int http_port;         /* HTTP API: /health, /stats */
    pid_t pid;             /* 0 before the start, and once reaped */
    int status;            /* wait status once it exited; -1 before */
    proc_sample_t at_exit; /* its CPU as it exited, when exit_ok */
    int exit_ok;
} cluster_inst_t;

/* What the instances and the proxy are started with. */
typedef struct cluster_conf {
    const opts_t *o;         /* --gatewayd, --workers, --heartbeat-ms,
                                --jwt-secret, --api-key, --gw-set */
    const char *haproxy_cfg; /* deploy/haproxy.cfg, whose servers are the
                                instances; NULL = no proxy */
    const char *dir;         /* config files and logs */
    const char *id_prefix;   /* broker.instance_id: this, then 1 .. n */
    const char *redis_host;  /* the Redis the instances share */
    int redis_port;
    const char *channel;     /* redis.channel */
    const char *const *sets; /* the scenario's own key=value for -s,
                                before --gw-set's; NULL-ended (at most
                                CLUSTER_MAX_SETS), or NULL */
    unsigned long maxconn;   /* HAProxy's GW_MAXCONN */
    unsigned long per_ip;    /* GW_CONN_PER_IP and GW_CONN_RATE_PER_IP */
} cluster_conf_t;

typedef struct cluster {
    cluster_inst_t gw[CLUSTER_MAX_INST];
    unsigned n;     /* instances */
    int proxy_port; /* where clients connect through the proxy */
    pid_t proxy_pid;
} cluster_t;

/* Empties c for n instances (1 .. CLUSTER_MAX_INST) and picks every port
 * (each instance's and the proxy's), which the clients must know before
 * they are forked. Returns 0, or -1 after a message. */
int cluster_init(cluster_t *c, unsigned n);

/* Starts the instances, waits until each answers /health 200 with Redis
 * up, then starts HAProxy when cc names its config and waits until it
 * accepts connections (each bounded by 15 s). Returns 0, or -1 after a
 * message (call cluster_stop() either way). */
int cluster_start(cluster_t *c, const cluster_conf_t *cc);

/* GET path from instance i's HTTP API into out. Returns the HTTP status,
 * or -1. Blocking, bounded by timeout_ms. */
int cluster_get(const cluster_t *c, unsigned i, const char *path, char *out,
                size_t cap, int timeout_ms);

/* Sends sig to instance i. Returns 0, or -1 when it is not running. */
int cluster_signal(const cluster_t *c, unsigned i, int sig);

/* 1 once instance i has exited (it is then reaped, its wait status in
 * gw[i].status, its CPU time read just before in gw[i].at_exit), 0 while
 * it runs. */
int cluster_exited(cluster_t *c, unsigned i);

/* Stops whatever still runs, HAProxy first. Harmless twice. */
void cluster_stop(cluster_t *c);

#endif
