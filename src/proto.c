#include "gw/proto.h"

#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/index.h"
#include "gw/log.h"

#include "gw/json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROTO_ID_MAX 128 /* bytes in a user or guild id */

typedef struct proto_handler {
    const char *name;
    int needs_identify;
    void (*fn)(gw_conn_t *c, const cJSON *data);
} proto_handler_t;

static void proto_send_static(gw_conn_t *c, const char *json)
{
    gw_conn_send_text(c, json, strlen(json));
}

/* Sends a cJSON document and frees it. */
static void proto_send_json(gw_conn_t *c, cJSON *doc)
{
    char *text = cJSON_PrintUnformatted(doc);

    if (text == NULL) {
        gw_error("conn %llu: out of memory encoding a reply",
                 (unsigned long long)c->id);
        abort();
    }
    gw_conn_send_text(c, text, strlen(text));
    cJSON_free(text);
    cJSON_Delete(doc);
}

/* A recoverable error: answered, the session stays open. */
static void proto_error(gw_conn_t *c, const char *code, const char *message)
{
    char buf[256];
    int n = snprintf(buf, sizeof(buf),
                     "{\"event\":\"error\",\"data\":{\"code\":\"%s\","
                     "\"message\":\"%s\"}}",
                     code, message);
    gw_conn_send_text(c, buf, (size_t)n);
}

static cJSON *proto_event(const char *name, cJSON **data)
{
    cJSON *doc = cJSON_CreateObject();

    cJSON_AddStringToObject(doc, "event", name);
    *data = cJSON_AddObjectToObject(doc, "data");
    return doc;
}

/* A user or guild id: a non-empty string of bounded length. */
static const char *proto_id(const cJSON *v)
{
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0' ||
        strlen(v->valuestring) > PROTO_ID_MAX)
        return NULL;
    return v->valuestring;
}

/* The connection keeps only the token's "guilds" bound of its claims. */
static int proto_allowed(const gw_conn_t *c, const char *guild)
{
    const gw_jwt_claims_t bound = {.guilds = c->allowed,
                                   .nguilds = c->nallowed};

    return gw_jwt_claims_allow_guild(&bound, guild);
}

static void proto_peer(gw_conn_t *c, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    snprintf(out, outlen, "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&ss, out, outlen);
    else
        uv_ip4_name((struct sockaddr_in *)&ss, out, outlen);
}

/* The audit line of SPEC section 5, and the failure counter. */
static void proto_audit(gw_conn_t *c, const char *user, int rc)
{
    char peer[64];

    if (rc != 0)
        gw_stat_add(&c->worker->stats, GW_STAT_AUTH_FAILURES, 1);
    /* The peer's address costs a system call: only for a line written. */
    if (!gw_log_on(rc == 0 ? GW_LOG_INFO : GW_LOG_WARN))
        return;
    proto_peer(c, peer, sizeof(peer));
    if (rc == 0)
        gw_info("audit: auth ok conn=%llu peer=%s user=%s",
                (unsigned long long)c->id, peer, user);
    else
        gw_warn("audit: auth failed conn=%llu peer=%s user=%s reason=%s",
                (unsigned long long)c->id, peer, user ? user : "-",
                gw_strerror(rc));
}

/* Verifies the token; on success the session belongs to claims.sub. */
static int proto_verify(gw_conn_t *c, const char *token, const char *user,
                        gw_jwt_claims_t *claims)
{
    int rc = gw_jwt_verify(&c->worker->jwt, token, strlen(token),
                           (int64_t)time(NULL), claims);

    if (rc == 0 && user != NULL && strcmp(claims->sub, user) != 0) {
        gw_jwt_claims_free(claims);
        rc = GW_EAUTH;
    }
    proto_audit(c, user ? user : (rc == 0 ? claims->sub : NULL), rc);
    return rc;
}

/*
 * Joins one guild if the token and the limit allow it: 0 when joined, 1 when
 * already a member, or a negative gw_err_t.
 */
static int proto_join(gw_conn_t *c, const char *guild)
{
    if (!proto_allowed(c, guild))
        return GW_EAUTH;
    if (c->nguilds >= c->worker->cfg->max_guilds_per_session)
        return GW_ETOOBIG;
    return gw_index_join(c->worker, c, guild);
}

static void proto_identified(gw_conn_t *c, const cJSON *guilds)
{
    char sid[2 * GW_SESSION_ID_LEN + 1];
    cJSON *data, *doc = proto_event("identified", &data);
    cJSON *joined;
    const cJSON *g;
    int over = 0;

    gw_conn_session_hex(c, sid);
    cJSON_AddStringToObject(data, "userId", c->user->id);
    cJSON_AddStringToObject(data, "sessionId", sid);
    joined = cJSON_AddArrayToObject(data, "guildIds");
    cJSON_ArrayForEach(g, guilds)
    {
        const char *id = proto_id(g);
        int rc = id ? proto_join(c, id) : GW_EINVAL;
        over |= rc == GW_ETOOBIG;
        if (rc == 0)
            cJSON_AddItemToArray(joined, cJSON_CreateString(id));
    }
    proto_send_json(c, doc);
    if (over)
        proto_error(c, "limit_exceeded", "too many guilds for one session");
}

/* Identifies the session as claims->sub, taking the guild bound. */
static void proto_bind(gw_conn_t *c, gw_jwt_claims_t *claims)
{
    gw_index_add_session(c->worker, c, claims->sub);
    c->identified = 1;
    gw_stat_add(&c->worker->stats, GW_STAT_SESSIONS, 1);
    c->allowed = claims->guilds;
    c->nallowed = (uint32_t)claims->nguilds;
    claims->guilds = NULL;
    claims->nguilds = 0;
    gw_jwt_claims_free(claims);
}

static void proto_identify(gw_conn_t *c, const cJSON *data)
{
    const char *user =
        proto_id(cJSON_GetObjectItemCaseSensitive(data, "userId"));
    const cJSON *token = cJSON_GetObjectItemCaseSensitive(data, "token");
    const cJSON *guilds = cJSON_GetObjectItemCaseSensitive(data, "guildIds");
    gw_jwt_claims_t claims;

    if (c->identified) {
        gw_conn_close(c, GW_CLOSE_ALREADY_AUTHENTICATED,
                      "already authenticated");
        return;
    }
    if (user == NULL || !cJSON_IsString(token) ||
        (guilds != NULL && !cJSON_IsArray(guilds))) {
        gw_conn_close(c, GW_CLOSE_BAD_ENVELOPE, "identify needs userId, token");
        return;
    }
    if (proto_verify(c, token->valuestring, user, &claims) != 0) {
        gw_conn_close(c, GW_CLOSE_AUTH_FAILED, "authentication failed");
        return;
    }
    proto_bind(c, &claims);
    proto_identified(c, guilds);
}

static void proto_heartbeat_in(gw_conn_t *c, const cJSON *data)
{
    (void)data;
    c->last_ack_ms = gw_worker_now(c->worker);
    proto_send_static(c, "{\"event\":\"heartbeat_ack\",\"data\":{}}");
}

static void proto_heartbeat_ack(gw_conn_t *c, const cJSON *data)
{
    (void)data;
    c->last_ack_ms = gw_worker_now(c->worker);
}

static void proto_send_guild(gw_conn_t *c, const char *event, const char *guild)
{
    cJSON *data, *doc = proto_event(event, &data);

    cJSON_AddStringToObject(data, "guildId", guild);
    proto_send_json(c, doc);
}

static void proto_subscribe(gw_conn_t *c, const cJSON *data)
{
    const char *guild =
        proto_id(cJSON_GetObjectItemCaseSensitive(data, "guildId"));

    switch (guild ? proto_join(c, guild) : GW_EINVAL) {
    case 0:
    case 1: proto_send_guild(c, "guild_subscribed", guild); break;
    case GW_EAUTH:
        proto_error(c, "forbidden", "the token does not allow this guild");
        break;
    case GW_ETOOBIG:
        proto_error(c, "limit_exceeded", "too many guilds for one session");
        break;
    default:
        proto_error(c, "invalid_request", "guildId must be a non-empty string");
    }
}

static void proto_unsubscribe(gw_conn_t *c, const cJSON *data)
{
    const char *guild =
        proto_id(cJSON_GetObjectItemCaseSensitive(data, "guildId"));

    if (guild == NULL) {
        proto_error(c, "invalid_request", "guildId must be a non-empty string");
        return;
    }
    gw_index_leave(c->worker, c, guild);
    proto_send_guild(c, "guild_unsubscribed", guild);
}

static int proto_member(const gw_conn_t *c, const char *guild)
{
    for (const gw_member_t *m = c->guilds; m != NULL; m = m->conn_next)
        if (strcmp(m->guild->id, guild) == 0)
            return 1;
    return 0;
}

/* A fixed window of session.typing_window_ms holding typing_limit events. */
static int proto_typing_allowed(gw_conn_t *c)
{
    const gw_config_t *cfg = c->worker->cfg;
    uint64_t now = gw_worker_now(c->worker);

    if (now - c->typing_since >= cfg->typing_window_ms) {
        c->typing_since = now;
        c->typing_count = 0;
    }
    return c->typing_count++ < cfg->typing_limit;
}

/* typing.start: relayed through the broker to the guild's members on every
 * instance, the sender's own sessions skipped. */
static void proto_typing(gw_conn_t *c, const cJSON *data)
{
    const char *guild =
        proto_id(cJSON_GetObjectItemCaseSensitive(data, "guildId"));
    const char *channel =
        proto_id(cJSON_GetObjectItemCaseSensitive(data, "channelId"));

    if (guild == NULL || channel == NULL) {
        proto_error(c, "invalid_request",
                    "guildId and channelId must be non-empty strings");
    } else if (!proto_member(c, guild)) {
        proto_error(c, "forbidden", "subscribe to the guild first");
    } else if (!proto_typing_allowed(c)) {
        gw_stat_add(&c->worker->stats, GW_STAT_TYPING_LIMITED, 1);
        proto_error(c, "rate_limited", "too many typing.start events");
    } else if (gw_worker_relay_typing(c->worker, c->user->id, guild, channel) !=
               0) {
        proto_error(c, "overloaded", "typing.start dropped: broker busy");
    }
}

static const proto_handler_t proto_handlers[] = {
    {"identify", 0, proto_identify},
    {"heartbeat", 0, proto_heartbeat_in},
    {"heartbeat_ack", 0, proto_heartbeat_ack},
    {"guild_subscribe", 1, proto_subscribe},
    {"guild_unsubscribe", 1, proto_unsubscribe},
    {"typing.start", 1, proto_typing},
};

static const proto_handler_t *proto_find(const char *name)
{
    for (size_t i = 0; i < sizeof(proto_handlers) / sizeof(proto_handlers[0]);
         i++)
        if (strcmp(proto_handlers[i].name, name) == 0)
            return &proto_handlers[i];
    return NULL;
}

/*
 * Takes one event from the session's bucket (SPEC 5: events per
 * connection); a session past it is closed 4008 before its message is even
 * parsed, so that a flood costs the worker as little as possible.
 */
static int proto_admit(gw_conn_t *c)
{
    gw_worker_t *w = c->worker;
    const gw_config_t *cfg = w->cfg;

    if (cfg->event_rate == 0 ||
        gw_bucket_take(&c->events, gw_worker_now(w), cfg->event_rate,
                       cfg->event_burst))
        return 1;
    gw_stat_add(&w->stats, GW_STAT_RATE_LIMITED_CLOSES, 1);
    gw_log_limited(&w->flood_log, GW_LOG_WARN,
                   "conn %llu: closed 4008: more than %u events at once or "
                   "%u a second",
                   (unsigned long long)c->id, cfg->event_burst,
                   cfg->event_rate);
    gw_conn_close(c, GW_CLOSE_RATE_LIMITED, "rate limited");
    return 0;
}

void gw_proto_handle(gw_conn_t *c, const char *msg, size_t len)
{
    cJSON *doc;
    const cJSON *event, *data;
    const proto_handler_t *h;

    if (!proto_admit(c))
        return;
    if ((doc = gw_json_parse(msg, len)) == NULL) {
        gw_conn_close(c, GW_CLOSE_DECODE, "message is not JSON");
        return;
    }
    event = cJSON_GetObjectItemCaseSensitive(doc, "event");
    data = cJSON_GetObjectItemCaseSensitive(doc, "data");
    if (!cJSON_IsObject(doc) || !cJSON_IsString(event) ||
        (data != NULL && !cJSON_IsObject(data))) {
        gw_conn_close(c, GW_CLOSE_BAD_ENVELOPE,
                      "expected {\"event\",\"data\"}");
        goto Done;
    }
    h = proto_find(event->valuestring);
    if (!c->identified && (h == NULL || h->needs_identify))
        gw_conn_close(c, GW_CLOSE_NOT_AUTHENTICATED, "identify first");
    else if (h == NULL)
        proto_error(c, "unknown_event", "unknown event");
    else
        h->fn(c, data);
Done:
    cJSON_Delete(doc);
}

void gw_proto_open(gw_conn_t *c, const char *token)
{
    char sid[2 * GW_SESSION_ID_LEN + 1], buf[160];
    gw_jwt_claims_t claims;
    int n;

    gw_conn_session_hex(c, sid);
    n = snprintf(buf, sizeof(buf),
                 "{\"event\":\"ready\",\"data\":{\"sessionId\":\"%s\","
                 "\"heartbeatInterval\":%u}}",
                 sid, c->worker->cfg->heartbeat_interval_ms);
    gw_conn_send_text(c, buf, (size_t)n);
    if (token == NULL)
        return;
    if (proto_verify(c, token, NULL, &claims) != 0) {
        gw_conn_close(c, GW_CLOSE_AUTH_FAILED, "authentication failed");
        return;
    }
    /* Identified by the upgrade: join the guilds the token names, if any. */
    cJSON *guilds = cJSON_CreateArray();
    for (size_t i = 0; i < claims.nguilds; i++)
        cJSON_AddItemToArray(guilds, cJSON_CreateString(claims.guilds[i]));
    proto_bind(c, &claims);
    proto_identified(c, guilds);
    cJSON_Delete(guilds);
}

void gw_proto_heartbeat(gw_conn_t *c)
{
    proto_send_static(c, "{\"event\":\"heartbeat\",\"data\":{}}");
}
