/*
 * The counters' table and the latency histogram (include/gw/stats.h): what
 * every thread writes, below what /stats and /metrics render (metrics.c).
 */
#include "gw/stats.h"

// clang-format off
#define W GW_OWNER_WORKER
#define A GW_OWNER_ACCEPTOR
#define B GW_OWNER_BROKER
const gw_stat_desc_t gw_stat_desc[GW_STAT_COUNT] = {
    [GW_STAT_CONNECTIONS] = {"connections", "Open client connections.", 1, W},
    [GW_STAT_SESSIONS] = {"sessions", "Identified sessions.", 1, W},
    [GW_STAT_GUILDS] = {"guilds", "Guilds with members on the worker.", 1, W},
    [GW_STAT_CONNECTS] = {"connects",
        "Connections the worker took (a resume handed over from another "
        "worker counts again).", 0, W},
    [GW_STAT_CLOSES] = {"closes", "Connections the worker ended.", 0, W},
    [GW_STAT_FRAMES_IN] = {"frames_in", "Messages received from clients.", 0, W},
    [GW_STAT_FRAMES_OUT] = {"frames_out", "Messages queued to clients.", 0, W},
    [GW_STAT_BYTES_IN] = {"bytes_in", "Bytes read from clients.", 0, W},
    [GW_STAT_BYTES_OUT] = {"bytes_out", "Bytes written to clients.", 0, W},
    [GW_STAT_RING_DROPS] = {"ring_drops",
        "Queued frames dropped when a slow consumer was closed.", 0, W},
    [GW_STAT_SLOW_CONSUMER_CLOSES] = {"slow_consumer_closes",
        "Connections closed with 4010.", 0, W},
    [GW_STAT_RATE_LIMITED_CLOSES] = {"rate_limited_closes",
        "Sessions closed with 4008: over session.event_rate.", 0, W},
    [GW_STAT_ADDRESS_LIMITED] = {"address_limited",
        "Connections refused with 429: over server.max_connections_per_ip.",
        0, W},
    [GW_STAT_SHED_P2] = {"shed_priority_2",
        "Priority-2 events not queued: ring 7/8 full.", 0, W},
    [GW_STAT_SHED_P3] = {"shed_priority_3",
        "Priority-3 events not queued: ring 3/4 full.", 0, W},
    [GW_STAT_SHED_P4] = {"shed_priority_4",
        "Priority-4 events not queued: ring half full.", 0, W},
    [GW_STAT_HANDSHAKE_FAILURES] = {"handshake_failures",
        "Upgrades rejected or timed out.", 0, W},
    [GW_STAT_CAPACITY_REFUSED] = {"capacity_refused",
        "Upgrades answered 503: server.max_connections open.", 0, W},
    [GW_STAT_ORIGIN_REFUSED] = {"origin_refused",
        "Upgrades refused with 403: an Origin not in "
        "websocket.allowed_origins.", 0, W},
    [GW_STAT_TLS_HANDSHAKE_FAILURES] = {"tls_handshake_failures",
        "TLS connections that ended before their handshake was done: "
        "refused, timed out or closed by the peer.", 0, W},
    [GW_STAT_TLS_HANDSHAKES_DEFERRED] = {"tls_handshakes_deferred",
        "TLS handshake steps put off to a later loop turn: "
        "tls.handshake_us_per_turn spent in this one.", 0, W},
    [GW_STAT_TLS_BUFFERS_RELEASED] = {"tls_buffers_released",
        "TLS sessions whose record buffers went back to the kernel, "
        "tls.buffer_release_ms after their handshake.", 0, W},
    [GW_STAT_PROXY_HEADER_FAILURES] = {"proxy_header_failures",
        "Connections closed for their PROXY protocol header: malformed, "
        "too long, or another protocol in its place.", 0, W},
    [GW_STAT_AUTH_FAILURES] = {"auth_failures", "Tokens rejected.", 0, W},
    [GW_STAT_AUTH_LIMITED] = {"auth_rate_limited",
        "identify and resume attempts closed with 4008: over "
        "auth.identify_rate or identify_user_rate, or an address backing "
        "off after failed authentications.", 0, W},
    [GW_STAT_EVENTS_IN] = {"events_in",
        "Events taken from the broker queue.", 0, W},
    [GW_STAT_TYPING_LIMITED] = {"typing_rate_limited",
        "typing.start refused by the per-session limit.", 0, W},
    [GW_STAT_RELAY_LIMITED] = {"relay_rate_limited",
        "Client events for the backends refused by relay.limit.", 0, W},
    [GW_STAT_RELAY_UNAVAILABLE] = {"relay_refused_unavailable",
        "Client events for the backends refused: RabbitMQ not up.", 0, W},
    [GW_STAT_RELAY_OVERLOADED] = {"relay_refused_overloaded",
        "Client events for the backends refused: relay.max_unconfirmed "
        "reached, or the relay queue full.", 0, W},
    [GW_STAT_SYNC_LIMITED] = {"sync_rate_limited",
        "sync_request refused by sync.limit.", 0, W},
    [GW_STAT_PRESENCE_LOST] = {"presence_reports_lost",
        "Presence changes the full relay queue refused; the broker takes a "
        "census instead.", 0, W},
    [GW_STAT_PARKED] = {"parked",
        "Sessions without a connection, waiting for a resume.", 1, W},
    [GW_STAT_RESUMED] = {"resumed", "Resumes served.", 0, W},
    [GW_STAT_RESUME_INVALID] = {"resume_invalid",
        "Resumes answered invalid_session.", 0, W},
    [GW_STAT_REPLAYED] = {"replayed",
        "Dispatches sent again by resumes.", 0, W},
    [GW_STAT_RESUME_OVERFLOWS] = {"resume_overflows",
        "Parked sessions lost because more arrived than they keep.", 0, W},
    [GW_STAT_RESUME_EXPIRED] = {"resume_expired",
        "Parked sessions freed at the end of their resume window.", 0, W},
    [GW_STAT_RESUME_HANDED] = {"resume_handed_over",
        "Resuming connections handed to the worker holding their session.",
        0, W},
    [GW_STAT_RESUME_HAND_OFF_FAILED] = {"resume_hand_off_failures",
        "Resuming connections closed instead of handed to their session's "
        "worker: output not yet written, a TLS session that could not "
        "move, or a full relay queue.", 0, W},
    [GW_STAT_HANDOFFS_WAITING] = {"handoffs_waiting",
        "Drained sessions handed off through Redis, not yet claimed by the "
        "instance their client resumed on.", 1, W},
    [GW_STAT_HANDOFFS_SERVED] = {"handoffs_served",
        "Drained sessions sent to the instance that claimed them.", 0, W},
    [GW_STAT_HANDOFFS_RESTORED] = {"handoffs_restored",
        "Sessions of another instance restored and resumed here.", 0, W},
    [GW_STAT_HANDOFFS_FAILED] = {"handoffs_failed",
        "Resumes of another instance's session answered invalid_session.",
        0, W},
    [GW_STAT_HANDOFF_OVERLAP] = {"handoff_overlap",
        "Dispatches held during a handoff that the old instance had sent "
        "too, dropped.", 0, W},
    [GW_STAT_URING_SUBMITS] = {"uring_submits",
        "io_uring submissions: one per loop turn with output, for every "
        "connection's send (0 on the sendmsg write path).", 0, W},
    [GW_STAT_URING_SENDS] = {"uring_sends",
        "Sends submitted through io_uring, one per connection and turn.", 0, W},
    [GW_STAT_URING_PARTIAL] = {"uring_partial_sends",
        "io_uring sends the kernel completed short, resumed where it "
        "stopped.", 0, W},
    [GW_STAT_QUEUE_HWM] = {"queue_depth_max",
        "Highest depth of the worker's event queue.", 1, W},
    [GW_STAT_ACCEPT_DROPS] = {"accept_drops",
        "Sockets closed because a worker queue was full.", 0, A},
    [GW_STAT_ACCEPT_REFUSED] = {"accept_refused",
        "Sockets closed as accepted: server.max_connections open and 64 "
        "more being refused.", 0, A},
    [GW_STAT_PROXY_UNTRUSTED] = {"proxy_untrusted",
        "Sockets closed as accepted: a port that expects the PROXY protocol, "
        "from outside server.proxy_trusted.", 0, A},
    [GW_STAT_EVENTS_HTTP] = {"events_http", "Events from POST /publish.", 0, B},
    [GW_STAT_EVENTS_REDIS] = {"events_redis", "Events from Redis.", 0, B},
    [GW_STAT_EVENTS_AMQP] = {"events_amqp", "Events from RabbitMQ.", 0, B},
    [GW_STAT_PARSE_FAILURES] = {"parse_failures",
        "Broker events that were not a valid envelope.", 0, B},
    [GW_STAT_DEAD_LETTERED] = {"dead_lettered",
        "RabbitMQ deliveries rejected to the dead-letter exchange.", 0, B},
    [GW_STAT_OWN_ECHOES] = {"own_echoes",
        "Redis events of this instance, already delivered, skipped.", 0, B},
    [GW_STAT_TYPING_RELAYED] = {"typing_relayed",
        "typing.start events relayed from clients.", 0, B},
    [GW_STAT_REDIS_PUBLISH_FAILURES] = {"redis_publish_failures",
        "Events not published to Redis: the link was down or stalled.", 0, B},
    [GW_STAT_RELAY_PUBLISHED] = {"relay_published",
        "Client events published to the upstream exchange.", 0, B},
    [GW_STAT_RELAY_CONFIRMED] = {"relay_confirmed",
        "Upstream publishes confirmed by RabbitMQ.", 0, B},
    [GW_STAT_RELAY_NACKED] = {"relay_nacked",
        "Upstream publishes RabbitMQ refused (nack); the client was told.",
        0, B},
    [GW_STAT_RELAY_LOST] = {"relay_lost",
        "Upstream publishes unconfirmed when the link went down; the client "
        "was told.", 0, B},
    [GW_STAT_RELAY_REFUSED] = {"relay_refused_at_publish",
        "Client events the RabbitMQ link refused when the broker published "
        "them (it went down or filled up after the worker asked); the client "
        "was told.", 0, B},
    [GW_STAT_RELAY_UNCONFIRMED] = {"relay_unconfirmed",
        "Upstream publishes awaiting RabbitMQ's confirm.", 1, B},
    [GW_STAT_SYNC_HITS] = {"sync_hits",
        "sync_request answered with the copy cached in Redis.", 0, B},
    [GW_STAT_SYNC_MISSES] = {"sync_misses",
        "sync_request with no cached copy, sent up to the backends.", 0, B},
    [GW_STAT_SYNC_FAILURES] = {"sync_failures",
        "sync_request answered unavailable: Redis down or failing, or a "
        "cached value that is not a JSON object.", 0, B},
    [GW_STAT_PRESENCE_ONLINE] = {"presence_online",
        "Users announced online (their first session in the cluster).", 0, B},
    [GW_STAT_PRESENCE_OFFLINE] = {"presence_offline",
        "Users announced offline (their last session gone, after the grace)."
        , 0, B},
    [GW_STAT_PRESENCE_REAPED] = {"presence_reaped",
        "Users announced offline because the instance holding them stopped "
        "refreshing its liveness.", 0, B},
    [GW_STAT_PRESENCE_CHANGES] = {"presence_changes",
        "Changes of a user's sessions Redis has applied (many a script "
        "call).", 0, B},
    [GW_STAT_PRESENCE_COMMANDS] = {"presence_commands",
        "Presence scripts run in Redis.", 0, B},
    [GW_STAT_PRESENCE_FAILURES] = {"presence_failures",
        "Presence scripts not run or failed (Redis down or erring).", 0, B},
    [GW_STAT_HANDOFF_REDIS_FAILURES] = {"handoff_redis_failures",
        "Handoff commands that Redis refused or could not run.", 0, B},
    [GW_STAT_PRESENCE_CENSUSES] = {"presence_censuses",
        "Censuses of the workers' users, taken when the Redis link comes up "
        "or goes down.", 0, B},
    [GW_STAT_EVENTS_REDIS_PLAIN] = {"events_redis_plain",
        "Messages received on the plain channel (redis.channel).", 0, B},
    [GW_STAT_EVENTS_REDIS_GUILD] = {"events_redis_guild",
        "Messages received on guild channels.", 0, B},
    [GW_STAT_EVENTS_REDIS_USER] = {"events_redis_user",
        "Messages received on user channels.", 0, B},
    [GW_STAT_EVENTS_REDIS_SESSION] = {"events_redis_session",
        "Messages received on session channels.", 0, B},
    [GW_STAT_REDIS_MISMATCHES] = {"redis_target_mismatches",
        "Envelopes not delivered: not for the target their channel names.",
        0, B},
    [GW_STAT_REDIS_PUBLISHES] = {"redis_publishes",
        "PUBLISH (SPUBLISH on a Redis Cluster) commands sent, one per "
        "channel an envelope went to.", 0, B},
    [GW_STAT_REDIS_SUBSCRIBES] = {"redis_subscribe_commands",
        "SUBSCRIBE (SSUBSCRIBE) commands sent (up to 1024 channels each).",
        0, B},
    [GW_STAT_REDIS_UNSUBSCRIBES] = {"redis_unsubscribe_commands",
        "UNSUBSCRIBE (SUNSUBSCRIBE) commands sent (up to 1024 channels "
        "each).", 0, B},
    [GW_STAT_REDIS_CHANNELS] = {"redis_channels",
        "Channels the subscriber connections hold, as Redis counts them.",
        1, B},
    [GW_STAT_REDIS_CLUSTER_DISCOVERIES] = {"redis_cluster_discoveries",
        "CLUSTER SLOTS answered: the shards and their slots learnt.", 0, B},
    [GW_STAT_REDIS_CLUSTER_MOVED] = {"redis_cluster_moved",
        "Times a shard said a slot was not its own (MOVED, or an unasked "
        "SUNSUBSCRIBE after a migration).", 0, B},
    [GW_STAT_REDIS_CLUSTER_LOST] = {"redis_cluster_lost",
        "SPUBLISHes lost: their shard was down or unknown, or the slot had "
        "moved.", 0, B},
    [GW_STAT_INTEREST_TARGETS] = {"targets_wanted",
        "Guilds, users and sessions whose channels this instance wants, "
        "lingering ones included.", 1, B},
    [GW_STAT_INTEREST_LINGERING] = {"targets_lingering",
        "Of those, targets no session here holds any more, kept for "
        "redis.unsubscribe_linger_ms.", 1, B},
    [GW_STAT_AMQP_BINDS] = {"amqp_binds",
        "Bindings of a target's routing-key pattern RabbitMQ made "
        "(amqp.routing = targeted).", 0, B},
    [GW_STAT_AMQP_UNBINDS] = {"amqp_unbinds",
        "Bindings of a target's pattern RabbitMQ removed.", 0, B},
    [GW_STAT_AMQP_BIND_FAILURES] = {"amqp_bind_failures",
        "Binding changes RabbitMQ refused, and patterns too long to bind.",
        0, B},
    [GW_STAT_AMQP_BIND_PENDING] = {"amqp_bind_pending",
        "Binding changes queued or sent, not yet answered by RabbitMQ.", 1, B},
    [GW_STAT_AMQP_MISMATCHES] = {"amqp_key_mismatches",
        "RabbitMQ deliveries dead-lettered: the envelope is not for the "
        "target its routing key names.", 0, B},
    [GW_STAT_HANDOFF_CONTROL] = {"handoff_control_messages",
        "Drain handoff control messages read (claims, snapshots stored or "
        "lost), for this instance or, without redis.targeted, any.", 0, B},
    [GW_STAT_SUBSCRIBE_HELD] = {"subscribe_waits",
        "identified and guild_subscribed answers held until the channel of "
        "a target new to the instance was confirmed.", 0, W},
    [GW_STAT_SUBSCRIBE_LATE] = {"subscribe_waits_late",
        "Of those, answers sent at redis.subscribe_wait_ms without the "
        "confirmation (link down, subscription lost).", 0, W},
};
#undef W
#undef A
#undef B
// clang-format on

const uint32_t gw_lat_bounds_us[GW_LAT_BUCKETS - 1] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 100000};

/* The standard codes clients see most, then SPEC's own (4006 is unused). */
const uint16_t gw_close_codes[GW_CLOSE_SLOTS - 1] = {
    1000, 1001, 1006, 4000, 4001, 4002, 4003, 4004,
    4005, 4007, 4008, 4009, 4010, 4011, 4012, 4013};

int gw_stats_close_slot(uint16_t code)
{
    int i = 0;

    while (i < GW_CLOSE_SLOTS - 1 && gw_close_codes[i] != code)
        i++;
    return i;
}

void gw_stats_close(gw_stats_t *s, uint16_t sent, uint16_t received)
{
    uint16_t code = sent ? sent : received ? received : 1006;
    _Atomic uint64_t *c = &s->closes_by_code[gw_stats_close_slot(code)];

    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

void gw_stats_latency(gw_stats_t *s, uint64_t us)
{
    int i = 0;

    while (i < GW_LAT_BUCKETS - 1 && us > gw_lat_bounds_us[i])
        i++;
    atomic_store_explicit(
        &s->lat[i], atomic_load_explicit(&s->lat[i], memory_order_relaxed) + 1,
        memory_order_relaxed);
    atomic_store_explicit(
        &s->lat_sum_us,
        atomic_load_explicit(&s->lat_sum_us, memory_order_relaxed) + us,
        memory_order_relaxed);
}
