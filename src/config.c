/*
 * Configuration. Like Redis's config.c and nginx's command tables, one
 * table of options drives everything: defaults, the file, -s overrides,
 * environment overrides, validation, what a SIGHUP reload applies and the
 * dump that documents them.
 * Adding an option means adding a field to gw_config_t and a row here.
 *
 * Precedence, lowest first: table default, file, environment, -s (the
 * caller applies -s after gw_config_load).
 */
#include "gw/config.h"

#include "gw/alloc.h"
#include "gw/bucket.h"
#include "gw/cidr.h"
#include "gw/error.h"
#include "gw/jwt.h"
#include "gw/log.h"
#include "gw/origin.h"
#include "gw/slotmap.h"
#include "gw/sni.h"
#include "gw/toml.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef enum config_type {
    CONFIG_STRING, /* char * field, heap copy owned by the config */
    CONFIG_SECRET, /* a string that gw_config_dump does not print */
    CONFIG_INT,    /* int field */
    CONFIG_UINT32, /* uint32_t field */
    CONFIG_BOOL,   /* int field, 0 or 1 */
} config_type_t;

/*
 * Validation beyond type and bounds. Returns NULL if the value is fine,
 * else what is wrong with it, to follow the value in the error message.
 * Numbers arrive in i, strings in s.
 */
typedef const char *config_check_fn(int64_t i, const char *s);

/*
 * Flags of an option, or-ed in its row. A SIGHUP reload applies only the
 * options flagged CONFIG_RELOADABLE; each of those is read where it is
 * used, so a new value takes effect at its next use: secrets for the next
 * identify or publish, sizes and timeouts for the next connection or
 * message, and limits at their next check. Any other option (ports,
 * workers, broker links, queue sizes, the heartbeat interval clients were
 * told...) changes with a restart only, which is the default: a row has to
 * say that it reloads.
 */
enum config_flag {
    CONFIG_RESTART_ONLY = 0,    /* no flag: only a restart changes it */
    CONFIG_RELOADABLE = 1 << 0, /* a SIGHUP reload applies it */
};

typedef struct config_option {
    const char *name; /* "section.key" as written in the file */
    unsigned flags;   /* enum config_flag bits */
    config_type_t type;
    size_t offset;          /* of the field in gw_config_t */
    const char *def;        /* default, as text read like a -s value */
    int64_t min, max;       /* bounds of a number, inclusive */
    config_check_fn *check; /* NULL when type and bounds say it all */
    const char *env;        /* environment variable that overrides, or NULL */
    const char *doc;        /* one line for the dump, without the default */
} config_option_t;

static const char *config_check_pow2(int64_t i, const char *s)
{
    (void)s;
    return (i & (i - 1)) == 0 ? NULL : "is not a power of two";
}

static const char *config_check_log_level(int64_t i, const char *s)
{
    (void)i;
    return gw_log_parse_level(s) >= 0
               ? NULL
               : "is not one of debug, info, warn, error";
}

static const char *config_check_log_format(int64_t i, const char *s)
{
    (void)i;
    return gw_log_parse_format(s) >= 0 ? NULL : "is not one of text, json";
}

static const char *config_check_amqp_routing(int64_t i, const char *s)
{
    (void)i;
    return strcmp(s, "all") == 0 || strcmp(s, "targeted") == 0
               ? NULL
               : "is not one of all, targeted";
}

static const char *config_check_io_uring(int64_t i, const char *s)
{
    (void)i;
    return strcmp(s, "auto") == 0 || strcmp(s, "on") == 0 ||
                   strcmp(s, "off") == 0
               ? NULL
               : "is not one of auto, on, off";
}

static const char *config_check_origins(int64_t i, const char *s)
{
    (void)i;
    return gw_origin_check_list(s);
}

static const char *config_check_instance_id(int64_t i, const char *s)
{
    (void)i;
    /* It names a queue and appears in JSON and logs: keep it plain. */
    return s[strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                       "0123456789._-")] == '\0'
               ? NULL
               : "may hold only letters, digits, '.', '_' and '-'";
}

static const char *config_check_jwt_algorithms(int64_t i, const char *s)
{
    unsigned algs;

    (void)i;
    return gw_jwt_algs_parse(s, &algs) == 0
               ? NULL
               : "is not a list of HS256, HS384, HS512, RS256, RS384, "
                 "RS512, ES256, ES384";
}

static const char *config_check_sni_certs(int64_t i, const char *s)
{
    gw_sni_entry_t e;
    int rc;

    (void)i;
    while ((rc = gw_sni_next(&s, &e)) == 1)
        ;
    return rc == 0 ? NULL : "is not a list of cert_file:key_file pairs";
}

static const char *config_check_nodes(int64_t i, const char *s)
{
    gw_slot_node_t n;
    int rc;

    (void)i;
    while ((rc = gw_slot_node_next(&s, &n)) == 1)
        ;
    return rc == 0 ? NULL
                   : "is not a list of host:port ([v6]:port for an IPv6 "
                     "address)";
}

static const char *config_check_cidrs(int64_t i, const char *s)
{
    (void)i;
    switch (gw_cidr_parse(s, NULL, 0, NULL)) {
    case GW_EPARSE:
        return "is not a list of networks such as 10.0.0.0/8, ::1/128 (an "
               "address's bits past its prefix must be 0)";
    case 0: return "names no network";
    default: return NULL;
    }
}

/* Rows of config_options, one per type. */
// clang-format off
#define OPT_STR(name, flags, field, def, check, doc) \
    {name, flags, CONFIG_STRING, offsetof(gw_config_t, field), def, 0, 0, \
     check, NULL, doc}
#define OPT_SECRET(name, flags, field, env, doc) \
    {name, flags, CONFIG_SECRET, offsetof(gw_config_t, field), "", 0, 0, \
     NULL, env, doc}
#define OPT_INT(name, flags, field, def, min, max, doc) \
    {name, flags, CONFIG_INT, offsetof(gw_config_t, field), def, min, max, \
     NULL, NULL, doc}
#define OPT_U32(name, flags, field, def, min, max, check, doc) \
    {name, flags, CONFIG_UINT32, offsetof(gw_config_t, field), def, min, max, \
     check, NULL, doc}
#define OPT_BOOL(name, flags, field, def, doc) \
    {name, flags, CONFIG_BOOL, offsetof(gw_config_t, field), def, 0, 1, \
     NULL, NULL, doc}
#define OPT_SECRET_DEF(name, flags, field, def, env, doc) \
    {name, flags, CONFIG_SECRET, offsetof(gw_config_t, field), def, 0, 0, \
     NULL, env, doc}
// clang-format on

/*
 * Grouped by section, in the order of gw_config_t, which is also the order
 * of the dump. Where the design sets no bound, the type's own applies,
 * except where zero cannot work (a zero timeout, queue or body limit).
 */
static const config_option_t config_options[] = {
    OPT_STR("server.bind", CONFIG_RESTART_ONLY, bind, "0.0.0.0", NULL,
            "Listen address of both ports"),
    OPT_INT("server.ws_port", CONFIG_RESTART_ONLY, ws_port, "3005", 1, 65535,
            "WebSocket port"),
    OPT_INT("server.http_port", CONFIG_RESTART_ONLY, http_port, "3006", 1,
            65535, "HTTP API port (POST /publish, GET /health)"),
    OPT_INT("server.workers", CONFIG_RESTART_ONLY, workers, "0", 0, 256,
            "Worker threads; 0 = one per CPU core"),
    OPT_U32("server.drain_ms", CONFIG_RESTART_ONLY, drain_ms, "10000", 0,
            UINT32_MAX, NULL,
            "On SIGTERM: /health answers 503, listening stops, and clients "
            "are closed with 4011 spread over this window"),
    OPT_U32("server.max_connections", CONFIG_RESTART_ONLY, max_connections, "0",
            0, UINT32_MAX, NULL,
            "Client connections open at once; one more is answered 503, and "
            "past 64 such refusals a new socket is closed as it is "
            "accepted. 0 = the descriptor limit (ulimit -n) less a reserve "
            "for everything else (logged at start; README)"),
    OPT_U32("server.max_connections_per_ip", CONFIG_RELOADABLE,
            max_connections_per_ip, "0", 0, UINT32_MAX, NULL,
            "Connections one client address may hold open (an IPv6 client: "
            "its /64); one more is answered 429 and closed. 0 = no limit. "
            "Behind a proxy every client has the proxy's address: limit "
            "there instead (deploy/haproxy.cfg does), or have it send the "
            "PROXY protocol (proxy_protocol)"),
    OPT_BOOL("server.proxy_protocol", CONFIG_RESTART_ONLY, proxy_protocol,
             "false",
             "Connections to ws_port begin with a PROXY protocol header, v1 "
             "or v2 (HAProxy's send-proxy, send-proxy-v2), naming the client "
             "the proxy relays: its address is then the one the per-address "
             "limits, audit lines and logs use. A connection from outside "
             "proxy_trusted is closed as accepted, and one whose header is "
             "missing or malformed once it is read"),
    OPT_STR("server.proxy_trusted", CONFIG_RESTART_ONLY, proxy_trusted,
            "127.0.0.1/32, ::1/128", config_check_cidrs,
            "The proxies' networks, comma-separated CIDR (10.0.0.0/8, "
            "2001:db8::/32, a bare address for itself): the only sources "
            "taken on a port that expects the PROXY protocol"),
    OPT_STR("server.io_uring", CONFIG_RESTART_ONLY, io_uring, "auto",
            config_check_io_uring,
            "How plain TCP output is written: auto = through one io_uring "
            "per worker (a send per connection, one submission per loop "
            "turn) where the kernel allows it, else one sendmsg per "
            "connection, said in one log line at start; on = io_uring or "
            "refuse to start; off = sendmsg. TLS records take the same path "
            "once the handshake is done"),
    OPT_BOOL("tls.enabled", CONFIG_RESTART_ONLY, tls_enabled, "false",
             "Serve wss:// on tls.port as well (TLS 1.2 with ECDHE and AEAD "
             "suites; mbedtls 2.28 has no TLS 1.3)"),
    OPT_INT("tls.port", CONFIG_RESTART_ONLY, tls_port, "3443", 1, 65535,
            "TLS WebSocket port, beside the plain server.ws_port"),
    OPT_BOOL("tls.proxy_protocol", CONFIG_RESTART_ONLY, tls_proxy_protocol,
             "false",
             "Connections to tls.port begin with a PROXY protocol header, "
             "before the ClientHello (a proxy that passes TLS through, as "
             "HAProxy in TCP mode with send-proxy-v2): as "
             "server.proxy_protocol, from the same server.proxy_trusted"),
    OPT_STR("tls.cert_file", CONFIG_RELOADABLE, tls_cert_file, "", NULL,
            "PEM certificate chain, the server's own first (ECDSA or RSA); "
            "SIGHUP loads it again"),
    OPT_STR("tls.key_file", CONFIG_RELOADABLE, tls_key_file, "", NULL,
            "Its private key, PEM or DER; a pair that does not load is "
            "refused at start, and at a reload changes nothing"),
    OPT_SECRET("tls.key_password", CONFIG_RELOADABLE, tls_key_password,
               "GATEWAYD_TLS_KEY_PASSWORD",
               "Password of an encrypted key; empty = the key is not "
               "encrypted"),
    OPT_STR("tls.sni_certs", CONFIG_RELOADABLE, tls_sni_certs, "",
            config_check_sni_certs,
            "More certificates, chosen by the host a client names (SNI): "
            "comma-separated cert_file:key_file pairs, each certificate "
            "serving the DNS names of its subjectAltName (*.example.com "
            "included), the first that matches winning; other hosts and "
            "clients without SNI get tls.cert_file. Keys are decrypted with "
            "tls.key_password. SIGHUP loads them again with the default pair"),
    OPT_U32("tls.handshake_us_per_turn", CONFIG_RESTART_ONLY,
            tls_handshake_us_per_turn, "2000", 0, 1000000, NULL,
            "Microseconds of TLS handshake work a worker does per loop turn "
            "(a full handshake is two steps of public-key work, about a "
            "millisecond each with ECDSA here, more with RSA); once spent, "
            "handshakes wait for the next turn, so that a connect storm "
            "over TLS cannot hold up the worker's fan-out. 0 = no cap"),
    OPT_U32("tls.buffer_release_ms", CONFIG_RESTART_ONLY, tls_buffer_release_ms,
            "2000", 0, 3600000, NULL,
            "Milliseconds a TLS session stays open before the pages of its "
            "two 16 KiB record buffers go back to the kernel (checked every "
            "100 ms, and put off while a record is half read or written): an "
            "idle session then keeps about 11 KB instead of 30, and a "
            "connection that closes sooner does not pay for the release and "
            "the page faults after it (about 200 us). 0 = at the end of the "
            "handshake"),
    OPT_U32("websocket.max_message_size", CONFIG_RELOADABLE, max_message_size,
            "65536", 125, UINT32_MAX, NULL,
            "Largest incoming message in bytes; a larger one closes the "
            "connection with 1009"),
    OPT_U32("websocket.max_header_size", CONFIG_RELOADABLE, max_header_size,
            "8192", 1024, 65536, NULL,
            "Largest header block of an upgrade request, bytes"),
    OPT_U32("websocket.handshake_timeout_ms", CONFIG_RELOADABLE,
            handshake_timeout_ms, "10000", 1, UINT32_MAX, NULL,
            "Time a client has to complete the upgrade (slowloris guard)"),
    OPT_STR("websocket.allowed_origins", CONFIG_RELOADABLE, allowed_origins, "",
            config_check_origins,
            "Web origins whose pages may connect, comma-separated: "
            "https://app.example.com, or https://*.example.com for its "
            "subdomains; an upgrade whose Origin is not listed gets 403. An "
            "upgrade without Origin (not a browser) passes. Empty = no check"),
    OPT_U32("websocket.write_ring_size", CONFIG_RELOADABLE, write_ring_size,
            "1024", 8, UINT32_MAX, NULL,
            "Frames queued per connection; a client further behind is "
            "closed with 4010"),
    OPT_U32("session.heartbeat_interval_ms", CONFIG_RESTART_ONLY,
            heartbeat_interval_ms, "30000", 100, UINT32_C(1) << 29, NULL,
            "Heartbeat interval announced to clients, milliseconds"),
    OPT_U32("session.max_guilds_per_session", CONFIG_RELOADABLE,
            max_guilds_per_session, "100", 0, 65535, NULL,
            "Most guilds one session may subscribe to"),
    OPT_U32("session.event_rate", CONFIG_RELOADABLE, event_rate, "50", 0,
            GW_BUCKET_MAX_BURST, NULL,
            "Client events a session may send per second, sustained (a token "
            "bucket of event_burst); past it the session is closed with 4008. "
            "0 = no limit"),
    OPT_U32("session.event_burst", CONFIG_RELOADABLE, event_burst, "200", 1,
            GW_BUCKET_MAX_BURST, NULL,
            "Client events a session may send at once, at most"),
    OPT_U32("session.typing_limit", CONFIG_RELOADABLE, typing_limit, "5", 1,
            UINT32_MAX, NULL,
            "typing.start events a session may send per typing window"),
    OPT_U32("session.typing_window_ms", CONFIG_RELOADABLE, typing_window_ms,
            "10000", 1, UINT32_C(1) << 30, NULL,
            "The window of typing_limit, milliseconds"),
    OPT_U32("session.resume_window_ms", CONFIG_RELOADABLE, resume_window_ms,
            "120000", 0, 3600000, NULL,
            "A session whose connection drops waits this long for a resume "
            "(docs/continuity.md); 0 = no resume, nothing kept"),
    OPT_U32("session.replay_size", CONFIG_RELOADABLE, replay_size, "256", 1,
            65536, NULL,
            "Dispatches each session keeps for a resume; a parked session "
            "that receives more cannot resume. A resume sends them at once: "
            "keep it within websocket.write_ring_size"),
    OPT_U32("session.replay_log_bytes", CONFIG_RELOADABLE, replay_log_bytes,
            "33554432", 65536, UINT32_MAX, NULL,
            "Bytes of dispatch bodies each worker keeps for resumes, each "
            "body once however many sessions received it; a resume whose "
            "dispatches have left is invalid_session"),
    OPT_BOOL("session.handoff", CONFIG_RESTART_ONLY, handoff, "true",
             "Hand drained sessions to the instance their clients resume "
             "on, through Redis (docs/continuity.md section 3)"),
    OPT_U32("session.handoff_margin_ms", CONFIG_RELOADABLE, handoff_margin_ms,
            "1000", 0, 60000, NULL,
            "A drained session keeps buffering this long after it was "
            "claimed, for events that reach the instances at different "
            "times (RabbitMQ); 0 is exact when events come through Redis"),
    OPT_U32("session.handoff_timeout_ms", CONFIG_RELOADABLE, handoff_timeout_ms,
            "3000", 100, 60000, NULL,
            "How long past the margin a resuming client waits for the old "
            "instance's answer before invalid_session"),
    OPT_U32("session.handoff_wait_ms", CONFIG_RESTART_ONLY, handoff_wait_ms,
            "10000", 0, 3600000, NULL,
            "After the drain window, how long a draining instance waits for "
            "its handed-off sessions to be claimed before it exits"),
    OPT_SECRET("auth.jwt_secret", CONFIG_RELOADABLE, jwt_secret,
               "GATEWAYD_JWT_SECRET", "HMAC key that signs client tokens"),
    OPT_STR("auth.jwt_algorithms", CONFIG_RELOADABLE, jwt_algorithms,
            "HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384",
            config_check_jwt_algorithms,
            "Accepted JWT algorithms, comma-separated; each also needs a key: "
            "jwt_secret for HS*, a public key file or jwks_file for RS* and "
            "ES*. \"none\" is never accepted"),
    OPT_STR("auth.jwt_public_keys", CONFIG_RELOADABLE, jwt_public_keys, "",
            NULL,
            "PEM public key files (RSA 2048-4096 bits, EC P-256 or P-384), "
            "comma-separated; a key's kid is its file name without the "
            "directory and a .pem suffix. Reloaded on SIGHUP"),
    OPT_STR("auth.jwks_file", CONFIG_RELOADABLE, jwks_file, "", NULL,
            "JSON Web Key Set file (RSA and EC P-256/P-384 signing keys, "
            "each with its kid); empty = none. Reloaded on SIGHUP: refresh "
            "it from the identity provider, then kill -HUP"),
    OPT_U32("auth.leeway_s", CONFIG_RELOADABLE, leeway_s, "0", 0, 3600, NULL,
            "Clock skew allowed on a token's exp and nbf, seconds: a "
            "session is closed with 4013 this long after its exp"),
    OPT_U32("auth.expiry_warning_s", CONFIG_RELOADABLE, expiry_warning_s, "60",
            0, 86400, NULL,
            "A session is sent token_expiring this many seconds before its "
            "token's exp, to refresh it in time; 0 = no warning"),
    OPT_STR("auth.jwt_audience", CONFIG_RELOADABLE, jwt_audience, "", NULL,
            "Required \"aud\" claim; empty = not checked"),
    OPT_STR("auth.jwt_issuer", CONFIG_RELOADABLE, jwt_issuer, "", NULL,
            "Required \"iss\" claim; empty = not checked"),
    OPT_U32("auth.identify_rate", CONFIG_RELOADABLE, auth_identify_rate, "0", 0,
            GW_BUCKET_MAX_BURST, NULL,
            "identify and resume attempts one client address may make per "
            "second, sustained (a token bucket of identify_burst); one more "
            "is closed with 4008. 0 = no limit. Off by default: behind a "
            "proxy every client has the proxy's address (set it when "
            "clients reach gatewayd directly, or through a proxy that sends "
            "the PROXY protocol: server.proxy_protocol; 10 is a start)"),
    OPT_U32("auth.identify_burst", CONFIG_RELOADABLE, auth_identify_burst, "50",
            1, GW_BUCKET_MAX_BURST, NULL,
            "identify and resume attempts one address may make at once"),
    OPT_U32("auth.identify_user_rate", CONFIG_RELOADABLE,
            auth_identify_user_rate, "2", 0, GW_BUCKET_MAX_BURST, NULL,
            "Successful identifies and resumes per user per second, "
            "sustained; one more is closed with 4008. Only verified tokens "
            "count, so bad tokens cannot lock a user out. 0 = no limit"),
    OPT_U32("auth.identify_user_burst", CONFIG_RELOADABLE,
            auth_identify_user_burst, "10", 1, GW_BUCKET_MAX_BURST, NULL,
            "Successful identifies and resumes per user at once"),
    OPT_U32("auth.fail_delay_ms", CONFIG_RELOADABLE, auth_fail_delay_ms, "0", 0,
            3600000, NULL,
            "After 2 failed authentications from an address, it waits this "
            "long before its next attempt is heard, twice as long after each "
            "further failure; sooner attempts are closed with 4008. "
            "0 = no delay (the default, for the reason of identify_rate; "
            "1000 is a start)"),
    OPT_U32("auth.fail_limit", CONFIG_RELOADABLE, auth_fail_limit, "0", 0,
            UINT32_MAX, NULL,
            "Failed authentications after which an address is refused for "
            "fail_block_ms; 0 = never refused (the default, for the reason "
            "of identify_rate; 10 is a start)"),
    OPT_U32("auth.fail_block_ms", CONFIG_RELOADABLE, auth_fail_block_ms,
            "60000", 1, 86400000, NULL,
            "How long an address at fail_limit is refused; an address's "
            "failures are forgotten this long after its latest one"),
    OPT_SECRET("http.publish_api_key", CONFIG_RELOADABLE, publish_api_key,
               "GATEWAYD_API_KEY",
               "Key POST /publish must present; empty disables /publish"),
    OPT_U32("http.max_body_size", CONFIG_RESTART_ONLY, max_body_size, "1048576",
            1, UINT32_MAX, NULL, "Largest POST /publish body, bytes"),
    OPT_BOOL("http.dashboard_auth", CONFIG_RELOADABLE, dashboard_auth, "false",
             "GET /dashboard asks for publish_api_key (HTTP Basic, any user "
             "name, the key as password); /stats and /health, which the page "
             "reads, stay open as before"),
    OPT_STR("broker.instance_id", CONFIG_RESTART_ONLY, instance_id, "",
            config_check_instance_id,
            "This instance's id: names its AMQP queue and tags the events it "
            "publishes to Redis; empty = the host name"),
    OPT_U32("broker.reconnect_min_ms", CONFIG_RESTART_ONLY, reconnect_min_ms,
            "100", 1, UINT32_MAX, NULL,
            "First delay before a broker link reconnects"),
    OPT_U32("broker.reconnect_max_ms", CONFIG_RESTART_ONLY, reconnect_max_ms,
            "10000", 1, UINT32_MAX, NULL,
            "Cap of the exponential reconnect backoff (jittered)"),
    OPT_BOOL("redis.enabled", CONFIG_RESTART_ONLY, redis_enabled, "true",
             "Connect to Redis for inter-gateway events"),
    OPT_STR("redis.host", CONFIG_RESTART_ONLY, redis_host, "127.0.0.1", NULL,
            "Redis address"),
    OPT_INT("redis.port", CONFIG_RESTART_ONLY, redis_port, "6379", 1, 65535,
            "Redis port"),
    OPT_SECRET_DEF("redis.password", CONFIG_RESTART_ONLY, redis_password, "",
                   "GATEWAYD_REDIS_PASSWORD",
                   "Redis AUTH password; empty = no AUTH"),
    OPT_STR("redis.channel", CONFIG_RESTART_ONLY, redis_channel,
            "gateway_events", NULL,
            "Pub/sub channel shared by all gateway instances; the targeted "
            "channels are named after it (<channel>:guild:<id>...)"),
    OPT_BOOL("redis.targeted", CONFIG_RESTART_ONLY, redis_targeted, "true",
             "Subscribe to a channel per guild, user and session held here, "
             "and publish to the channels of an envelope's targets, so that "
             "an event reaches only the instances of its recipients; false = "
             "the plain channel alone and POST /publish local, as before "
             "(while instances of older versions share the channel)"),
    OPT_U32("redis.unsubscribe_linger_ms", CONFIG_RESTART_ONLY,
            redis_unsubscribe_linger_ms, "3000", 0, 3600000, NULL,
            "A guild's or user's channel stays subscribed this long after "
            "its last session here left, for a session that comes back"),
    OPT_U32("redis.subscribe_wait_ms", CONFIG_RESTART_ONLY,
            redis_subscribe_wait_ms, "1000", 0, 60000, NULL,
            "identified and guild_subscribed for a guild or user new to "
            "the instance wait for Redis to confirm its channel (and "
            "RabbitMQ its keyed binding), at most this long (then they go "
            "anyway, counted); 0 = never wait"),
    OPT_U32("redis.max_user_channels", CONFIG_RESTART_ONLY,
            redis_max_user_channels, "64", 1, 1024, NULL,
            "An envelope for at most this many users is published to each "
            "user's channel; one for more goes on the plain channel, which "
            "every instance reads"),
    OPT_BOOL("redis.cluster", CONFIG_RESTART_ONLY, redis_cluster, "false",
             "Redis is a Redis Cluster (7.0 or later): the shards are "
             "discovered from cluster_nodes, and every channel is a sharded "
             "one (SSUBSCRIBE, SPUBLISH) on the master of its slot; presence "
             "and session.handoff are not served then"),
    OPT_STR("redis.cluster_nodes", CONFIG_RESTART_ONLY, redis_cluster_nodes, "",
            config_check_nodes,
            "Nodes of the cluster to ask for its shards, comma-separated "
            "host:port ([v6]:port); any few of them will do; empty = "
            "redis.host:redis.port"),
    OPT_BOOL("amqp.enabled", CONFIG_RESTART_ONLY, amqp_enabled, "true",
             "Consume backend events from RabbitMQ"),
    OPT_STR("amqp.host", CONFIG_RESTART_ONLY, amqp_host, "127.0.0.1", NULL,
            "RabbitMQ address"),
    OPT_INT("amqp.port", CONFIG_RESTART_ONLY, amqp_port, "5672", 1, 65535,
            "RabbitMQ port"),
    OPT_STR("amqp.user", CONFIG_RESTART_ONLY, amqp_user, "guest", NULL,
            "RabbitMQ user"),
    OPT_SECRET_DEF("amqp.password", CONFIG_RESTART_ONLY, amqp_password, "guest",
                   "GATEWAYD_AMQP_PASSWORD", "RabbitMQ password"),
    OPT_STR("amqp.vhost", CONFIG_RESTART_ONLY, amqp_vhost, "/", NULL,
            "RabbitMQ virtual host"),
    OPT_STR("amqp.exchange", CONFIG_RESTART_ONLY, amqp_exchange,
            "discord_events", NULL,
            "Topic exchange the backends publish events to"),
    OPT_STR("amqp.binding_keys", CONFIG_RESTART_ONLY, amqp_binding_keys, "#",
            NULL,
            "Comma-separated routing-key patterns bound to this instance's "
            "queue (amqp.routing = all)"),
    OPT_STR("amqp.routing", CONFIG_RESTART_ONLY, amqp_routing, "all",
            config_check_amqp_routing,
            "all = bind the queue with amqp.binding_keys; targeted = bind it "
            "with the keys of the guilds, users and sessions held here "
            "(guild.<id>.#...) and broadcast.#, following the sessions"),
    OPT_STR("amqp.queue_prefix", CONFIG_RESTART_ONLY, amqp_queue_prefix,
            "gatewayd.", NULL, "The queue is named prefix + instance_id"),
    OPT_BOOL("amqp.durable", CONFIG_RESTART_ONLY, amqp_durable, "true",
             "Durable named queue that keeps events while this instance is "
             "down; false = an exclusive queue that dies with the connection"),
    OPT_U32("amqp.prefetch", CONFIG_RESTART_ONLY, amqp_prefetch, "256", 1,
            65535, NULL, "Unacknowledged deliveries RabbitMQ may send ahead"),
    OPT_STR("amqp.upstream_exchange", CONFIG_RESTART_ONLY,
            amqp_upstream_exchange, "gateway_upstream", NULL,
            "Topic exchange (durable, declared by gatewayd) that client "
            "events go up to, routed by their name"),
    OPT_STR("relay.events", CONFIG_RELOADABLE, relay_events, "", NULL,
            "Client events relayed to the backends: comma-separated glob "
            "patterns (chat.*, location.update); empty = every name of "
            "[a-z][a-z0-9_.-]{0,63} that is not a built-in"),
    OPT_U32("relay.limit", CONFIG_RELOADABLE, relay_limit, "20", 1, UINT32_MAX,
            NULL,
            "Client events relayed per window per session; more are "
            "answered rate_limited"),
    OPT_U32("relay.window_ms", CONFIG_RELOADABLE, relay_window_ms, "1000", 1,
            UINT32_C(1) << 30, NULL, "The window of relay.limit"),
    OPT_U32("relay.max_unconfirmed", CONFIG_RESTART_ONLY, relay_max_unconfirmed,
            "1000", 1, 1000000, NULL,
            "Upstream publishes that may await RabbitMQ's confirm; past it, "
            "clients are answered overloaded"),
    OPT_STR("sync.key_template", CONFIG_RELOADABLE, sync_key_template,
            "sync:{userId}", NULL,
            "Redis key of a user's sync-data; {userId} and {scope} (the "
            "request's, or empty) are replaced"),
    OPT_U32("sync.limit", CONFIG_RELOADABLE, sync_limit, "5", 1, UINT32_MAX,
            NULL, "sync_request a session may send per window"),
    OPT_U32("sync.window_ms", CONFIG_RELOADABLE, sync_window_ms, "10000", 1,
            UINT32_C(1) << 30, NULL, "The window of sync.limit"),
    OPT_BOOL("presence.enabled", CONFIG_RESTART_ONLY, presence_enabled, "true",
             "Announce presence.update online/offline to a user's guilds, "
             "counted across the instances in Redis"),
    OPT_U32("presence.offline_grace_ms", CONFIG_RESTART_ONLY,
            presence_offline_grace_ms, "5000", 0, 3600000, NULL,
            "After a user's last session closes, offline is announced this "
            "long later; a reconnect inside it announces nothing"),
    OPT_U32("presence.instance_ttl_ms", CONFIG_RESTART_ONLY,
            presence_instance_ttl_ms, "15000", 1000, 3600000, NULL,
            "An instance that stops refreshing its liveness in Redis (one "
            "that died without a word) has its users marked offline by the "
            "others within this time"),
    OPT_STR("presence.key_prefix", CONFIG_RESTART_ONLY, presence_key_prefix,
            "presence:", NULL, "Prefix of every Redis key presence uses"),
    OPT_U32("presence.guild_limit", CONFIG_RELOADABLE, presence_guild_limit,
            "100", 0, 10000, NULL,
            "Online members GET /guilds/{id}/presence lists at most (it "
            "always counts them all)"),
    OPT_U32("queues.queue_size", CONFIG_RESTART_ONLY, queue_size, "65536", 2,
            UINT32_C(1) << 31, config_check_pow2,
            "Entries of each inter-thread queue; a power of two"),
    OPT_STR("log.level", CONFIG_RELOADABLE, log_level, "info",
            config_check_log_level,
            "Least severe level logged: debug, info, warn or error"),
    OPT_STR("log.format", CONFIG_RELOADABLE, log_format, "text",
            config_check_log_format,
            "text, or json: one object per line with ts, level, msg and an "
            "audit line's fields, for log shippers"),
    OPT_BOOL("log.audit", CONFIG_RELOADABLE, log_audit, "true",
             "Write audit lines (authentications, refusals for abuse, "
             "refused origins) whatever log.level says"),
};

#define CONFIG_NOPTIONS (sizeof(config_options) / sizeof(config_options[0]))

/* A config file larger than this is a mistake, not a config. */
#define CONFIG_FILE_MAX (1 << 20)

/* Where a value comes from, for the "where:line: what" error prefix. */
typedef struct config_src {
    const char *name; /* file path, "-s", an environment variable, "default" */
    unsigned line;    /* 0 when the source has no lines */
    char *err;
    size_t errlen;
} config_src_t;

static int config_fail(const config_src_t *src, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int config_fail(const config_src_t *src, int code, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (src->errlen == 0)
        return code;
    if (src->line > 0)
        n = snprintf(src->err, src->errlen, "%s:%u: ", src->name, src->line);
    else
        n = snprintf(src->err, src->errlen, "%s: ", src->name);
    if (n < 0 || (size_t)n >= src->errlen)
        return code;
    va_start(ap, fmt);
    vsnprintf(src->err + n, src->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return code;
}

static bool config_is_string(const config_option_t *opt)
{
    return opt->type == CONFIG_STRING || opt->type == CONFIG_SECRET;
}

/* The field of cfg that opt describes. */
static void *config_field(gw_config_t *cfg, const config_option_t *opt)
{
    return (char *)cfg + opt->offset;
}

/* Options that were renamed: a file that still says the old name is
 * told the new one rather than "unknown". */
static const struct {
    const char *old, *now;
} config_renamed[] = {
    {"auth.jwt_algorithm", "auth.jwt_algorithms"},
};

/* The new name of a renamed option, or NULL. */
static const char *config_renamed_to(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(config_renamed) / sizeof(config_renamed[0]);
         i++)
        if (strlen(config_renamed[i].old) == len &&
            strncmp(config_renamed[i].old, name, len) == 0)
            return config_renamed[i].now;
    return NULL;
}

static const config_option_t *config_find(const char *name, size_t len)
{
    for (size_t i = 0; i < CONFIG_NOPTIONS; i++)
        if (strncmp(config_options[i].name, name, len) == 0 &&
            config_options[i].name[len] == '\0')
            return &config_options[i];
    return NULL;
}

/* True if `name` is the [section] of some option. */
static bool config_is_section(const char *name)
{
    size_t len = strlen(name);

    for (size_t i = 0; i < CONFIG_NOPTIONS; i++)
        if (strncmp(config_options[i].name, name, len) == 0 &&
            config_options[i].name[len] == '.')
            return true;
    return false;
}

static int config_out_of_range(const config_src_t *src,
                               const config_option_t *opt, const char *value)
{
    return config_fail(src, GW_EINVAL,
                       "%s: %s is out of range %" PRId64 "..%" PRId64,
                       opt->name, value, opt->min, opt->max);
}

static int config_set_number(gw_config_t *cfg, const config_option_t *opt,
                             int64_t v, const config_src_t *src)
{
    char text[24];
    const char *why;

    if (v < opt->min || v > opt->max) {
        snprintf(text, sizeof(text), "%" PRId64, v);
        return config_out_of_range(src, opt, text);
    }
    if (opt->check != NULL && (why = opt->check(v, NULL)) != NULL)
        return config_fail(src, GW_EINVAL, "%s: %" PRId64 " %s", opt->name, v,
                           why);
    if (opt->type == CONFIG_INT || opt->type == CONFIG_BOOL)
        *(int *)config_field(cfg, opt) = (int)v;
    else
        *(uint32_t *)config_field(cfg, opt) = (uint32_t)v;
    return 0;
}

static int config_set_string(gw_config_t *cfg, const config_option_t *opt,
                             const char *s, size_t len, const config_src_t *src)
{
    char **field = config_field(cfg, opt);
    const char *why;

    /* A \u0000 escape would silently cut the string short in C. */
    if (strlen(s) != len)
        return config_fail(src, GW_EINVAL, "%s: string contains a NUL byte",
                           opt->name);
    if (opt->check != NULL && (why = opt->check(0, s)) != NULL)
        return config_fail(src, GW_EINVAL, "%s: '%s' %s", opt->name, s, why);
    free(*field);
    *field = gw_strndup(s, len);
    return 0;
}

/* Sets opt from text: a default, an environment variable or a -s value. */
static int config_set_text(gw_config_t *cfg, const config_option_t *opt,
                           const char *text, const config_src_t *src)
{
    int64_t v;
    int rc;

    if (config_is_string(opt))
        return config_set_string(cfg, opt, text, strlen(text), src);
    if (opt->type == CONFIG_BOOL) {
        if (strcmp(text, "true") != 0 && strcmp(text, "false") != 0)
            return config_fail(src, GW_EINVAL, "%s: '%s' is not true or false",
                               opt->name, text);
        return config_set_number(cfg, opt, text[0] == 't', src);
    }
    rc = gw_toml_parse_int(text, strlen(text), &v);
    if (rc == GW_ETOOBIG)
        return config_out_of_range(src, opt, text);
    if (rc != 0)
        return config_fail(src, GW_EINVAL, "%s: '%s' is not an integer",
                           opt->name, text);
    return config_set_number(cfg, opt, v, src);
}

static const char *config_toml_type_name(gw_toml_type_t type)
{
    switch (type) {
    case GW_TOML_STRING: return "a string";
    case GW_TOML_INT: return "an integer";
    case GW_TOML_BOOL: return "a boolean";
    case GW_TOML_TABLE: break;
    }
    return "a table";
}

static int config_apply_entry(gw_config_t *cfg, const gw_toml_entry_t *e,
                              config_src_t *src)
{
    const config_option_t *opt;

    src->line = e->line;
    if (e->type == GW_TOML_TABLE)
        return config_is_section(e->key)
                   ? 0
                   : config_fail(src, GW_EINVAL, "[%s]: unknown table", e->key);
    opt = config_find(e->key, strlen(e->key));
    if (opt == NULL && config_renamed_to(e->key, strlen(e->key)) != NULL)
        return config_fail(src, GW_EINVAL, "%s: renamed %s", e->key,
                           config_renamed_to(e->key, strlen(e->key)));
    if (opt == NULL)
        return config_fail(src, GW_EINVAL, "%s: unknown option", e->key);
    if (config_is_string(opt) && e->type == GW_TOML_STRING)
        return config_set_string(cfg, opt, e->v.s.ptr, e->v.s.len, src);
    if (opt->type == CONFIG_BOOL && e->type == GW_TOML_BOOL)
        return config_set_number(cfg, opt, e->v.b, src);
    if (!config_is_string(opt) && opt->type != CONFIG_BOOL &&
        e->type == GW_TOML_INT)
        return config_set_number(cfg, opt, e->v.i, src);
    return config_fail(src, GW_EINVAL, "%s: expected %s, got %s", opt->name,
                       config_is_string(opt)      ? "a string"
                       : opt->type == CONFIG_BOOL ? "a boolean"
                                                  : "an integer",
                       config_toml_type_name(e->type));
}

static int config_apply_env(gw_config_t *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < CONFIG_NOPTIONS; i++) {
        const config_option_t *opt = &config_options[i];
        config_src_t src = {opt->env, 0, err, errlen};
        const char *value = opt->env ? getenv(opt->env) : NULL;
        int rc;

        if (value != NULL && (rc = config_set_text(cfg, opt, value, &src)))
            return rc;
    }
    return 0;
}

/* Reads the whole file at src->name into a heap buffer. */
static int config_read_file(const config_src_t *src, char **buf, size_t *len)
{
    FILE *f = fopen(src->name, "rb");
    size_t cap = 4096;
    int rc;

    *buf = NULL;
    *len = 0;
    if (f == NULL)
        return config_fail(src, GW_EIO, "cannot open: %s", strerror(errno));
    *buf = gw_malloc(cap);
    for (;;) {
        *len += fread(*buf + *len, 1, cap - *len, f);
        if (*len < cap)
            break;
        if (cap == CONFIG_FILE_MAX) {
            rc = config_fail(src, GW_ETOOBIG,
                             "%d bytes or more; too large for a config",
                             CONFIG_FILE_MAX);
            goto Error;
        }
        cap *= 2;
        *buf = gw_realloc(*buf, cap);
    }
    if (ferror(f)) {
        rc = config_fail(src, GW_EIO, "cannot read: %s", strerror(errno));
        goto Error;
    }
    fclose(f);
    return 0;

Error:
    fclose(f);
    free(*buf);
    *buf = NULL;
    return rc;
}

/* dst becomes a deep copy of src. */
static void config_copy(gw_config_t *dst, const gw_config_t *src)
{
    *dst = *src;
    /* Not an option: the keys are loaded again after the options. */
    dst->jwt_keys = NULL;
    for (size_t i = 0; i < CONFIG_NOPTIONS; i++) {
        char **field = config_field(dst, &config_options[i]);
        if (config_is_string(&config_options[i]))
            *field = gw_strdup(*field);
    }
}

static bool config_same(const gw_config_t *a, const gw_config_t *b,
                        const config_option_t *opt)
{
    /* Read only; config_field takes a mutable config for the setters. */
    void *fa = config_field((gw_config_t *)a, opt);
    void *fb = config_field((gw_config_t *)b, opt);

    if (config_is_string(opt))
        return strcmp(*(char **)fa, *(char **)fb) == 0;
    if (opt->type == CONFIG_UINT32)
        return *(uint32_t *)fa == *(uint32_t *)fb;
    return *(int *)fa == *(int *)fb;
}

void gw_config_keep_restart_only(gw_config_t *next, const gw_config_t *cur,
                                 char *held, size_t heldlen)
{
    size_t n = 0;

    if (heldlen > 0)
        held[0] = '\0';
    for (size_t i = 0; i < CONFIG_NOPTIONS; i++) {
        const config_option_t *opt = &config_options[i];
        void *field = config_field(next, opt);
        if ((opt->flags & CONFIG_RELOADABLE) || config_same(next, cur, opt))
            continue;
        if (n < heldlen)
            n += (size_t)snprintf(held + n, heldlen - n, "%s%s",
                                  n > 0 ? ", " : "", opt->name);
        if (config_is_string(opt)) {
            free(*(char **)field);
            *(char **)field =
                gw_strdup(*(char **)config_field((gw_config_t *)cur, opt));
        } else if (opt->type == CONFIG_UINT32) {
            *(uint32_t *)field =
                *(uint32_t *)config_field((gw_config_t *)cur, opt);
        } else {
            *(int *)field = *(int *)config_field((gw_config_t *)cur, opt);
        }
    }
}

void gw_config_init(gw_config_t *cfg)
{
    config_src_t src = {"default", 0, NULL, 0};

    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < CONFIG_NOPTIONS; i++) {
        int rc = config_set_text(cfg, &config_options[i], config_options[i].def,
                                 &src);
        assert(rc == 0 && "a default in config_options fails its own check");
        (void)rc;
    }
}

/*
 * The file is applied to a copy that replaces cfg only once everything
 * passed, so a SIGHUP reload of a broken file leaves the running
 * configuration whole.
 */
int gw_config_load(gw_config_t *cfg, const char *path, char *err, size_t errlen)
{
    config_src_t src = {path, 0, err, errlen};
    gw_toml_doc_t doc = {0};
    gw_toml_error_t terr;
    gw_config_t next;
    char *buf;
    size_t len;
    int rc;

    if (errlen > 0)
        err[0] = '\0';
    if ((rc = config_read_file(&src, &buf, &len)) != 0)
        return rc;
    config_copy(&next, cfg);
    if ((rc = gw_toml_parse(buf, len, &doc, &terr)) != 0) {
        src.line = terr.line;
        rc = config_fail(&src, rc, "%s", terr.msg);
        goto Error;
    }
    for (size_t i = 0; i < doc.n; i++)
        if ((rc = config_apply_entry(&next, &doc.entries[i], &src)) != 0)
            goto Error;
    if ((rc = config_apply_env(&next, err, errlen)) != 0)
        goto Error;
    gw_config_free(cfg);
    *cfg = next;
    gw_toml_free(&doc);
    free(buf);
    return 0;

Error:
    gw_config_free(&next);
    gw_toml_free(&doc);
    free(buf);
    return rc;
}

int gw_config_load_env(gw_config_t *cfg, char *err, size_t errlen)
{
    if (errlen > 0)
        err[0] = '\0';
    return config_apply_env(cfg, err, errlen);
}

int gw_config_set(gw_config_t *cfg, const char *assignment, char *err,
                  size_t errlen)
{
    config_src_t src = {"-s", 1, err, errlen};
    const char *eq = strchr(assignment, '=');
    const config_option_t *opt;

    if (errlen > 0)
        err[0] = '\0';
    if (eq == NULL)
        return config_fail(&src, GW_EPARSE,
                           "expected section.key=value, got '%s'", assignment);
    opt = config_find(assignment, (size_t)(eq - assignment));
    if (opt == NULL)
        return config_fail(&src, GW_EINVAL, "%.*s: unknown option",
                           (int)(eq - assignment), assignment);
    return config_set_text(cfg, opt, eq + 1, &src);
}

int gw_config_check(const gw_config_t *cfg, char *err, size_t errlen)
{
    config_src_t src = {"configuration", 0, err, errlen};

    if (errlen > 0)
        err[0] = '\0';
    if (!cfg->redis_enabled || !cfg->redis_cluster)
        return 0;
    /* Their Lua scripts touch keys of many slots, named in ARGV (and the
     * handoff's publish on a classic channel): on a Redis Cluster they
     * would fail, or worse, half-work. */
    if (cfg->presence_enabled || cfg->handoff)
        return config_fail(
            &src, GW_EINVAL,
            "redis.cluster: presence (presence.enabled) and the drain "
            "handoff (session.handoff) need a single Redis node; set "
            "%s to false to run on a Redis Cluster",
            cfg->presence_enabled && cfg->handoff ? "both"
            : cfg->presence_enabled               ? "presence.enabled"
                                                  : "session.handoff");
    return 0;
}

/* Writes s as a TOML basic string, escaping what TOML requires. */
static void config_dump_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static void config_dump_value(FILE *out, const gw_config_t *cfg,
                              const config_option_t *opt)
{
    /* Read only; config_field takes a mutable config for the setters. */
    void *field = config_field((gw_config_t *)cfg, opt);

    switch (opt->type) {
    case CONFIG_INT: fprintf(out, "%d", *(int *)field); break;
    case CONFIG_UINT32: fprintf(out, "%" PRIu32, *(uint32_t *)field); break;
    case CONFIG_BOOL: fputs(*(int *)field ? "true" : "false", out); break;
    case CONFIG_STRING: config_dump_string(out, *(char **)field); break;
    case CONFIG_SECRET:
        /* A dump ends up in terminals and CI logs; secrets stay out. */
        fputs(**(char **)field ? "\"<redacted>\"" : "\"\"", out);
        break;
    }
}

/* Prints "[section]" when opt opens a section the previous one did not. */
static void config_dump_section(FILE *out, const config_option_t *opt,
                                const config_option_t *prev)
{
    size_t len = (size_t)(strchr(opt->name, '.') - opt->name);

    if (prev != NULL && strncmp(prev->name, opt->name, len + 1) == 0)
        return;
    fprintf(out, "%s[%.*s]\n", prev ? "\n" : "", (int)len, opt->name);
}

/* The comment above an option: what it does, its default and limits. */
static void config_dump_doc(FILE *out, const config_option_t *opt)
{
    fprintf(out, "# %s.\n", opt->doc);
    if (config_is_string(opt))
        fprintf(out, "# Default: \"%s\".", opt->def);
    else if (opt->type == CONFIG_BOOL)
        fprintf(out, "# Default: %s.", opt->def);
    else
        fprintf(out, "# Default: %s; range %" PRId64 "..%" PRId64 ".", opt->def,
                opt->min, opt->max);
    if (opt->env != NULL)
        fprintf(out, " The environment variable %s overrides it.", opt->env);
    fputc('\n', out);
}

void gw_config_dump(const gw_config_t *cfg, FILE *out)
{
    for (size_t i = 0; i < CONFIG_NOPTIONS; i++) {
        const config_option_t *opt = &config_options[i];

        config_dump_section(out, opt, i > 0 ? opt - 1 : NULL);
        config_dump_doc(out, opt);
        fprintf(out, "%s = ", strchr(opt->name, '.') + 1);
        config_dump_value(out, cfg, opt);
        fputc('\n', out);
    }
}

void gw_config_free(gw_config_t *cfg)
{
    if (cfg->jwt_keys != NULL) {
        gw_jwks_free(cfg->jwt_keys);
        free(cfg->jwt_keys);
        cfg->jwt_keys = NULL;
    }
    for (size_t i = 0; i < CONFIG_NOPTIONS; i++) {
        char **field = config_field(cfg, &config_options[i]);
        if (config_is_string(&config_options[i])) {
            free(*field);
            *field = NULL;
        }
    }
}
