/*
 * The servers a run measures: gatewayd started by gwbench with a generated
 * config on free loopback ports (or a server already running, given by
 * --target), and a private redis-server when events go through Redis and
 * none was given. Started servers die with gwbench (PR_SET_PDEATHSIG) and
 * are stopped with SIGTERM, then SIGKILL, at the end.
 */
#ifndef BENCH_TARGET_H
#define BENCH_TARGET_H

#include <stddef.h>
#include <sys/types.h>

#include "opts.h"

typedef struct target {
    char host[64];  /* server address, always loopback */
    int ws_port;    /* WebSocket port */
    char path[128]; /* WebSocket path (or nchan prefix) */
    int http_port;  /* HTTP API / publish port; 0 = none */
    char http_path[128];
    pid_t pid;     /* server PID for /proc; 0 = unknown */
    pid_t gw_pid;  /* gatewayd started by us, or 0 */
    int gw_status; /* its wait status once reaped; -1 before */
    char redis_host[64];
    int redis_port;  /* 0 = no Redis */
    pid_t redis_pid; /* redis-server started by us, or 0 */
    char dir[64];    /* config and logs of what we started */
    int keep;        /* leave dir behind */
} target_t;

/* Sets up t from the options: parses --target, --redis and --publish-url,
 * or starts gatewayd (and redis-server when with_redis) on free ports.
 * Returns 0, or -1 after a message. */
int target_open(target_t *t, const opts_t *o, int with_redis);

/* 1 while the server we started (or the --pid given) is alive. */
int target_alive(target_t *t);

/* GET path from the server's HTTP port into out (NUL-terminated). Returns
 * the HTTP status, or -1. Blocking, bounded by timeout_ms. */
int target_http_get(const target_t *t, const char *path, char *out, size_t cap,
                    int timeout_ms);

/* Stops what target_open() started and removes its directory. */
void target_close(target_t *t);

#endif
