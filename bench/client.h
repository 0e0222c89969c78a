/*
 * Simulated gateway clients: one libuv loop on its own thread drives a slice
 * of the run's sessions through TCP connect, the WebSocket upgrade, ready,
 * identify (an HS256 JWT) and then the session's life: heartbeats answered,
 * dispatches timed, typing.start sent, drops and reconnects (with resume:
 * the session resumed, and what it receives checked, resume.h), requests
 * sent up to the backends and their answers timed (relay.h).
 *
 * Client i (a global index) is user "u<i>" and, when the run has guilds,
 * member of guild "g<i / members>". With several targets (presence's
 * instances) client i connects to target i % n first, and each storm
 * moves it to the next; with by_guild (fanout --instances) to the target
 * of its guild, so that each guild lives on one instance (scale.h). Every
 * figure is kept in the loop's own counters and histograms; another thread
 * takes them with client_loop_collect(), which is the only lock on the path.
 */
#ifndef BENCH_CLIENT_H
#define BENCH_CLIENT_H

#include <netinet/in.h>
#include <stdint.h>

#include "stats.h"

typedef enum {
    CLIENT_PROTO_GW,    /* gatewayd's protocol (ready, identify, ...) */
    CLIENT_PROTO_NCHAN, /* nchan: subscribed once upgraded to /sub/<guild> */
} client_proto_t;

#define CLIENT_MAX_TARGETS 8

/* A server the clients connect to: its plain port, its TLS port, or
 * both. */
typedef struct client_target {
    struct sockaddr_in addr;
    char host[64];  /* Host header, "127.0.0.1:PORT" */
    char path[128]; /* request path; nchan: prefix the guild id follows */
    struct sockaddr_in tls_addr; /* wss://: the same server's TLS port */
    char tls_host[64];           /* its Host header */
    int plain;                   /* addr is served (ws://) */
    int tls;                     /* tls_addr is served (wss://) */
} client_target_t;

/* What every client of a run shares; read-only once the loops start. */
typedef struct client_conf {
    client_target_t target[CLIENT_MAX_TARGETS];
    uint32_t ntargets; /* at least 1 */
    client_proto_t proto;
    const char *jwt_secret;
    uint32_t guilds;           /* 0 = sessions join no guild */
    uint32_t members;          /* sessions per guild */
    uint32_t src_addrs;        /* 127.0.0.2 .. 127.0.0.(1+N); 0 = any */
    uint32_t stage_timeout_ms; /* each handshake stage's budget */
    uint32_t max_msg;          /* largest message accepted from the server */
    uint32_t payload;          /* bytes of a relay request */
    int by_guild;              /* client i's first target is its
                                  guild's (scale_instance), not i % n */
    int resume;                /* a session cut resumes on its next
                                  connection, and its dispatches are
                                  checked (resume.h) */
    const uint64_t *record;    /* resume: the publisher's record, shared
                                  with the coordinator (publish time of
                                  event n, 0 = not yet); NULL = none */
    uint64_t record_cap;       /* events it has room for */
    uint32_t tls_lo, tls_hi;   /* clients tls_lo .. tls_hi - 1 speak
                                  TLS to the targets' TLS ports (with a
                                  certificate nobody checks), the others
                                  plain WebSocket */
    int tls_resume;            /* a TLS client offers the session of its
                                  last connection (its ticket) when it
                                  connects again */
    int follow_drain;          /* a live session closed 4011 (its server
                                  drains) connects again at once and
                                  resumes; until it is live again each
                                  failed connection is retried after a
                                  backoff, a bounded number of times
                                  (drain.h). QUIET ends it */
} client_conf_t;

typedef enum {
    CLIENT_CMD_CONNECT, /* connect every idle client at rate, inflight cap */
    CLIENT_CMD_TYPING,  /* send typing.start at rate per second */
    CLIENT_CMD_CHURN,   /* drop and reconnect rate x sessions per second
                           (resume: a reset, and the session resumed) */
    CLIENT_CMD_RELAY,   /* send relay requests at rate per second */
    CLIENT_CMD_QUIET,   /* stop typing, churn, requests and following
                           drains */
    CLIENT_CMD_STORM,   /* abort every identified session (a reset, as a
                           network loss would) and reconnect it at once to
                           the next target */
    CLIENT_CMD_CUT,     /* reset every identified session, no reconnect:
                           the server parks them */
    CLIENT_CMD_TALLY,   /* count each session's lost events, of the
                           first count published (resume) */
    CLIENT_CMD_FINISH,  /* close every connection and end the thread */
} client_op_t;

typedef struct client_cmd {
    uint32_t op;
    uint32_t inflight;
    double rate;     /* per loop; 0 with CONNECT = no pacing */
    double span_s;   /* RELAY: how long a request may await its answer
                        before it is given up, at least */
    uint32_t lo, hi; /* CONNECT: only clients lo .. hi - 1; hi 0 = all */
    uint64_t count;  /* TALLY: events published */
} client_cmd_t;

/* What client loops count; additive except where said. */
typedef struct client_figures {
    stats_counters_t c;
    stats_hist_t lat;        /* delivery latency (relay: round trip), us */
    stats_hist_t down;       /* relay: backend's answer -> received, us */
    stats_hist_t conn;       /* attempt start (or drop) to identified, us */
    uint64_t open;           /* sessions identified now (a gauge: summed) */
    uint64_t t_first;        /* earliest attempt start, us; 0 = none */
    uint64_t t_last_ident;   /* latest identified, us; 0 = none */
    uint64_t t_last_tls;     /* latest TLS handshake done, us; 0 = none */
    uint64_t t_last_deliv;   /* latest delivery, us; 0 = none */
    uint64_t t_first_4011;   /* earliest live session closed 4011, us */
    uint64_t t_last_4011;    /* latest of those, us; 0 = none */
    uint64_t t_last_resumed; /* latest resumed, us; 0 = none */
} client_figures_t;

/* Empties f. */
void client_figures_reset(client_figures_t *f);

/* Adds src into dst (earliest and latest times for the stamps). */
void client_figures_add(client_figures_t *dst, const client_figures_t *src);

typedef struct client_loop client_loop_t;

/* A loop for clients first .. first + count - 1, their identify messages
 * signed up front (that is the backend's work, not the client's). */
client_loop_t *client_loop_new(const client_conf_t *conf, uint32_t first,
                               uint32_t count, uint64_t seed);

/* Runs the loop on a new thread. Returns 0 or a libuv error. */
int client_loop_start(client_loop_t *l);

/* Queues a command for the loop; safe from any thread. */
void client_loop_command(client_loop_t *l, const client_cmd_t *cmd);

/* Adds what the loop counted since the last call into f. Safe from any
 * thread. */
void client_loop_collect(client_loop_t *l, client_figures_t *f);

/* Waits for the thread to end (after CLIENT_CMD_FINISH); its last figures
 * are then ready for client_loop_collect(). */
void client_loop_join(client_loop_t *l);

/* Frees a joined loop. */
void client_loop_free(client_loop_t *l);

#endif
