/*
 * Runtime configuration. One table in config.c (name, type, offset, default,
 * bounds) drives parsing, validation, `-t`, `-s key=value` overrides and the
 * documentation; no default lives anywhere else.
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * The development secret conf/gateway.toml ships so that `make run` works
 * out of the box. It is public: with it, gatewayd's start-up ends with a
 * hint for trying it out, and gwctl signs with it only when told --dev.
 */
#define GW_CONFIG_DEV_JWT_SECRET "dev-secret-change-me"

typedef struct gw_config {
    /* [server] */
    char *bind;               /* listen address of both ports */
    int ws_port;              /* WebSocket port */
    int http_port;            /* HTTP API port */
    int workers;              /* worker threads; 0 = one per core */
    uint32_t drain_ms;        /* SIGTERM spreads the 4011 closes over it */
    uint32_t max_connections; /* open in all; 0 = the fd limit's */
    uint32_t max_connections_per_ip; /* open per address; 0 = no limit */
    int proxy_protocol;  /* ws_port's connections begin with a PROXY header */
    char *proxy_trusted; /* CIDR networks the headers are taken from */
    char *io_uring;      /* write path: "auto", "on" or "off" */
    /* [tls] */
    int tls_enabled;        /* serve wss:// on tls_port */
    int tls_port;           /* the TLS WebSocket port */
    int tls_proxy_protocol; /* a PROXY header before the ClientHello */
    char *tls_cert_file;    /* PEM chain, the server's certificate first */
    char *tls_key_file;     /* PEM or DER private key */
    char *tls_key_password; /* of an encrypted key; "" = none */
    char *tls_sni_certs;    /* "cert:key" pairs chosen by SNI, comma-
                               separated; "" = the one pair for all */
    uint32_t tls_handshake_us_per_turn; /* handshake work a worker does a
                                           loop turn; 0 = no cap */
    uint32_t tls_buffer_release_ms;     /* a session's age when its record
                                           buffers are released; 0 = at once */
    /* [websocket] */
    uint32_t max_message_size;     /* bytes; larger messages close 1009 */
    uint32_t max_header_size;      /* bytes of upgrade request headers */
    uint32_t handshake_timeout_ms; /* slowloris guard for the upgrade */
    char *allowed_origins;         /* browser origins let in; empty = any */
    uint32_t write_ring_size; /* queued frames per connection; 4010 past it */
    /* [session] */
    uint32_t heartbeat_interval_ms;
    uint32_t max_guilds_per_session;
    uint32_t event_rate;   /* client events per second; 0 = no limit */
    uint32_t event_burst;  /* client events at once */
    uint32_t typing_limit; /* typing.start events per window */
    uint32_t typing_window_ms;
    uint32_t resume_window_ms;   /* a parked session waits this long */
    uint32_t replay_size;        /* dispatches kept per session, for resume */
    uint32_t replay_log_bytes;   /* bodies a worker keeps for resumes */
    int handoff;                 /* drained sessions go through Redis */
    uint32_t handoff_margin_ms;  /* buffering past a claim */
    uint32_t handoff_timeout_ms; /* a claim's answer, past the margin */
    uint32_t handoff_wait_ms;    /* a drain waits for claims this long */
    /* [auth] */
    char *jwt_secret;             /* HMAC key; env GATEWAYD_JWT_SECRET wins */
    char *jwt_algorithms;         /* accepted, comma-separated */
    char *jwt_public_keys;        /* PEM files, comma-separated */
    char *jwks_file;              /* "" = none */
    uint32_t leeway_s;            /* clock skew on exp and nbf */
    uint32_t expiry_warning_s;    /* token_expiring this long before exp */
    char *jwt_audience;           /* "" = not checked */
    char *jwt_issuer;             /* "" = not checked */
    uint32_t auth_identify_rate;  /* attempts per address a second */
    uint32_t auth_identify_burst; /* and at once */
    uint32_t auth_identify_user_rate;  /* verified identifies per user */
    uint32_t auth_identify_user_burst; /* and at once */
    uint32_t auth_fail_delay_ms;       /* first backoff after failures */
    uint32_t auth_fail_limit;          /* failures until the refusal */
    uint32_t auth_fail_block_ms;       /* the refusal, and the memory */
    /* [http] */
    char *publish_api_key; /* env GATEWAYD_API_KEY wins; "" disables /publish */
    uint32_t max_body_size; /* bytes of a POST /publish body */
    int dashboard_auth;     /* GET /dashboard needs publish_api_key */
    /* [broker] */
    char *instance_id;         /* names the AMQP queue and tags Redis events;
                                  "" = the host name */
    uint32_t reconnect_min_ms; /* first broker reconnect delay */
    uint32_t reconnect_max_ms; /* backoff cap */
    /* [redis] */
    int redis_enabled;
    char *redis_host;
    int redis_port;
    char *redis_password; /* env GATEWAYD_REDIS_PASSWORD wins */
    char *redis_channel;  /* inter-gateway pub/sub channel */
    int redis_targeted;   /* channels per guild, user and session too */
    uint32_t redis_unsubscribe_linger_ms;
    uint32_t redis_subscribe_wait_ms;
    uint32_t redis_max_user_channels;
    int redis_cluster;         /* a Redis Cluster: sharded pub/sub */
    char *redis_cluster_nodes; /* seeds, "host:port,..."; "" = host:port */
    /* [amqp] */
    int amqp_enabled;
    char *amqp_host;
    int amqp_port;
    char *amqp_user;
    char *amqp_password; /* env GATEWAYD_AMQP_PASSWORD wins */
    char *amqp_vhost;
    char *amqp_exchange;          /* topic exchange the backends publish to */
    char *amqp_binding_keys;      /* comma-separated routing-key patterns */
    char *amqp_routing;           /* "all" (binding_keys) or "targeted" */
    char *amqp_queue_prefix;      /* queue = prefix + instance_id */
    int amqp_durable;             /* durable named queue, or exclusive one */
    uint32_t amqp_prefetch;       /* unacknowledged deliveries in flight */
    char *amqp_upstream_exchange; /* topic exchange of client events */
    /* [relay] */
    char *relay_events;             /* glob patterns, comma-separated; "" =
                                       every well-formed non-built-in name */
    uint32_t relay_limit;           /* upstream events per window per session */
    uint32_t relay_window_ms;       /* the window of relay_limit */
    uint32_t relay_max_unconfirmed; /* publishes awaiting a confirm */
    /* [sync] */
    char *sync_key_template; /* Redis key: {userId}, {scope} replaced */
    uint32_t sync_limit;     /* sync_request per window per session */
    uint32_t sync_window_ms; /* the window of sync_limit */
    /* [presence] */
    int presence_enabled; /* online/offline tracked and announced */
    uint32_t presence_offline_grace_ms; /* a reconnect inside it is silent */
    uint32_t presence_instance_ttl_ms;  /* a silent instance is reaped */
    char *presence_key_prefix;          /* of every Redis key presence uses */
    uint32_t presence_guild_limit;      /* members listed by guild presence */
    /* [queues] */
    uint32_t queue_size; /* entries of each SPSC queue, power of two */
    /* [log] */
    char *log_level;  /* debug | info | warn | error */
    char *log_format; /* text | json */
    int log_audit;    /* audit lines whatever log_level says */

    /* Not an option: the keys of jwt_public_keys and jwks_file, loaded
     * after the options by gw_auth_load_keys; owned, NULL before. */
    struct gw_jwks *jwt_keys;
} gw_config_t;

/* Fills `cfg` with every default. Strings are heap copies owned by cfg. */
void gw_config_init(gw_config_t *cfg);

/*
 * Loads the TOML file at `path` over the current values, then applies the
 * environment overrides. On error returns a negative gw_err_t and writes
 * "file:line: what is wrong" into `err` (NUL-terminated, truncated to
 * errlen).
 */
int gw_config_load(gw_config_t *cfg, const char *path, char *err,
                   size_t errlen);

/*
 * Applies the environment's overrides alone (GATEWAYD_JWT_SECRET, ...), as
 * gw_config_load does after the file: for a program with no file to read
 * (gwctl away from the daemon's config). Same error format; on error cfg
 * keeps the variables applied before the bad one.
 */
int gw_config_load_env(gw_config_t *cfg, char *err, size_t errlen);

/*
 * Sets one option from its dotted name and textual value, as given on the
 * command line ("-s session.heartbeat_interval_ms=5000"). Same validation
 * and error format as the file ("-s:1: ...").
 */
int gw_config_set(gw_config_t *cfg, const char *assignment, char *err,
                  size_t errlen);

/*
 * Checks the options that are each valid alone but not together (what a
 * Redis Cluster cannot serve), once every source is applied. Returns 0,
 * or GW_EINVAL with the reason in err.
 */
int gw_config_check(const gw_config_t *cfg, char *err, size_t errlen);

/* Writes every option with its current value as TOML (used by `-t -v`). */
void gw_config_dump(const gw_config_t *cfg, FILE *out);

/*
 * For a SIGHUP reload: gives next the value cur has of every option that
 * only a restart can change (ports, workers, broker links, queue sizes,
 * the heartbeat interval clients were told...), so that next differs from
 * cur only where the running daemon can follow. Writes the names of the
 * options whose change is thus held back, comma-separated, into `held`
 * ("" when none).
 */
void gw_config_keep_restart_only(gw_config_t *next, const gw_config_t *cur,
                                 char *held, size_t heldlen);

/* Frees the strings owned by cfg. */
void gw_config_free(gw_config_t *cfg);

#endif
