/*
 * The servers a run measures: gatewayd started by gwbench with a generated
 * config on free loopback ports (or a server already running, given by
 * --target), and a private redis-server or RabbitMQ node when events go
 * through one and none was given. Started servers die with gwbench
 * (PR_SET_PDEATHSIG) and are stopped with SIGTERM, then SIGKILL, at the
 * end.
 *
 * The RabbitMQ node is test/e2e/rabbitserver.py's idea in C: Debian's
 * rabbitmq-server script in the foreground, in a process group of its own,
 * with everything private under dir/rabbitmq (node name, AMQP and
 * distribution ports on 127.0.0.1, data, logs, config with no plugins, and
 * HOME, hence the Erlang cookie) and a private epmd on a free port. The
 * script runs the VM as its child, so PR_SET_PDEATHSIG reaches the script
 * only: a gwbench killed with SIGKILL can leave the node behind (SIGINT and
 * SIGTERM are caught and stop it). It is stopped by SIGTERM to the script
 * (a clean shutdown), then SIGKILL to its whole group after a bound.
 */
#ifndef BENCH_TARGET_H
#define BENCH_TARGET_H

#include <stddef.h>
#include <sys/types.h>

#include "opts.h"

/* The broker a run publishes through, when gwbench may start one. */
#define TARGET_BROKER_NONE 0
#define TARGET_BROKER_REDIS 1
#define TARGET_BROKER_AMQP 2

#define TARGET_MAX_INST 8 /* instances of one run (presence) */

/* One server of a run: the first is also in target_t's own fields. */
typedef struct target_inst {
    char host[64];  /* always loopback */
    int ws_port;    /* WebSocket port; 0 = none (a wss:// --target) */
    int tls_port;   /* its wss:// port; 0 = none */
    char path[128]; /* WebSocket path */
    int http_port;  /* HTTP API port; 0 = none */
    pid_t pid;      /* for /proc; 0 = unknown */
} target_inst_t;

typedef struct target {
    char host[64];  /* server address, always loopback */
    int ws_port;    /* WebSocket port; 0 = none */
    int tls_port;   /* wss:// port; 0 = none */
    char path[128]; /* WebSocket path (or nchan prefix) */
    int http_port;  /* HTTP API / publish port; 0 = none */
    char http_path[128];
    pid_t pid;     /* server PID for /proc; 0 = unknown */
    pid_t gw_pid;  /* gatewayd started by us, or 0 */
    int gw_status; /* its wait status once reaped; -1 before */
    char redis_host[64];
    int redis_port;  /* 0 = no Redis */
    pid_t redis_pid; /* redis-server started by us, or 0 */
    char amqp_host[64];
    int amqp_port;    /* 0 = no RabbitMQ */
    pid_t rabbit_pid; /* rabbitmq-server script (and group) of ours, or 0 */
    pid_t epmd_pid;   /* its private epmd, or 0 */
    char dir[64];     /* config and logs of what we started */
    int keep;         /* leave dir behind */
    target_inst_t inst[TARGET_MAX_INST]; /* every --target, or ours */
    unsigned ninst;
} target_t;

/* Sets up t from the options: parses --target (each one an instance, with
 * its --http-url and --pid), --redis, --amqp and --publish-url, or starts
 * gatewayd (serving wss:// too with --tls-cert and --tls-key) and
 * redis-server or rabbitmq-server (after broker, a TARGET_BROKER_*) on
 * free ports. Returns 0, or -1 after a
 * message (call target_close() either way). */
int target_open(target_t *t, const opts_t *o, int broker);

/* 1 while the server we started (or the --pid given) is alive. */
int target_alive(target_t *t);

/* GET path from the server's HTTP port into out (NUL-terminated). Returns
 * the HTTP status, or -1. Blocking, bounded by timeout_ms. */
int target_http_get(const target_t *t, const char *path, char *out, size_t cap,
                    int timeout_ms);

/* The same from instance i's HTTP API, with X-API-Key: api_key unless it
 * is NULL. */
int target_http_get_inst(const target_t *t, unsigned i, const char *path,
                         const char *api_key, char *out, size_t cap,
                         int timeout_ms);

/* The answer of Redis's INFO section (the bulk string: "name:value"
 * lines) into out (NUL-terminated). Returns 0, or -1 when the run has no
 * Redis or it did not answer. Blocking, bounded by 1 s. */
int target_redis_info(const target_t *t, const char *section, char *out,
                      size_t cap);

/* Stops what target_open() started and removes its directory. */
void target_close(target_t *t);

/* ---- what other modules start with the same means (cluster.h) -------- */

/* A port nobody listens on now, from the kernel's ephemeral range. Another
 * process may take it before the server binds; the start then fails
 * loudly. -1 when none could be had. */
int target_free_port(void);

/* GET path from host:port (with X-API-Key unless api_key is NULL); the
 * body replaces the response in out (NUL-terminated). Returns the HTTP
 * status, or -1. Blocking, bounded by timeout_ms. */
int target_get(const char *host, int port, const char *path,
               const char *api_key, char *out, size_t cap, int timeout_ms);

/* Forks and execs argv with its output in dir/log; the child dies with
 * us (PR_SET_PDEATHSIG). envp: its whole environment (argv[0] is then a
 * path), or NULL for ours. group: the child leads a new session and
 * process group, so that what it starts can be stopped with it. Returns
 * the child's PID, or -1. */
pid_t target_spawn(char *const argv[], char *const envp[], int group,
                   const char *dir, const char *log);

/* Sends sig to pid, waits a bounded time (5 s) for it to exit, then
 * SIGKILL. Reaps it and returns its wait status. */
int target_stop_pid(pid_t pid, int sig);

#endif
