#include "gw/proto.h"

#include "gw/alloc.h"
#include "gw/auth.h"
#include "gw/authkeys.h"
#include "gw/bound.h"
#include "gw/error.h"
#include "gw/json.h"
#include "gw/match.h"
#include "gw/reply.h"
#include "gw/resume.h"
#include "gw/subreply.h"
#include "gw/transfer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROTO_ID_MAX 128   /* bytes in a user or guild id */
#define PROTO_SCOPE_MAX 64 /* bytes in a sync_request's scope */

/* One client message, parsed: what a handler may look at. */
typedef struct proto_msg {
    const cJSON *doc;  /* the whole message */
    const cJSON *data; /* its "data", or NULL */
    const char *text;  /* as it arrived (len bytes), for members kept raw */
    size_t len;
} proto_msg_t;

/* When a client event may come: the table says, the dispatch checks. */
typedef enum proto_when {
    PROTO_ANY,        /* before or after identify */
    PROTO_IDENTIFIED, /* after (4003 before) */
    PROTO_FRESH,      /* before (4005 after): identify, resume */
} proto_when_t;

typedef struct proto_handler {
    const char *name;
    proto_when_t when;
    void (*fn)(gw_proto_t *p, gw_session_t *s, const proto_msg_t *m);
} proto_handler_t;

/* Below, with the timer it arms. */
static void proto_deadlines(gw_session_t *s);

/* The protocol a session belongs to: its set is the protocol's. */
static gw_proto_t *proto_of(const gw_session_t *s)
{
    return (gw_proto_t *)((char *)s->set - offsetof(gw_proto_t, sessions));
}

/*
 * The request's optional nonce: a string of at most GW_NONCE_MAX bytes,
 * kept as the JSON text it came in (*echo) for the answers. 0, or -1 when
 * it was refused (answered invalid_request).
 */
static int proto_nonce(gw_session_t *s, const char *msg, size_t len,
                       const cJSON *nonce, gw_reply_nonce_t *echo)
{
    *echo = (gw_reply_nonce_t){NULL, 0};
    if (nonce == NULL)
        return 0;
    if (!cJSON_IsString(nonce) || strlen(nonce->valuestring) > GW_NONCE_MAX) {
        gw_reply_error(s, "invalid_request",
                       "nonce must be a string of at most 64 bytes");
        return -1;
    }
    gw_json_member_raw(msg, len, "nonce", &echo->raw, &echo->len);
    return 0;
}

/* A user or guild id: a non-empty string of bounded length. */
static const char *proto_id(const cJSON *v)
{
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0' ||
        strlen(v->valuestring) > PROTO_ID_MAX)
        return NULL;
    return v->valuestring;
}

/*
 * Joins one guild if the token and the limit allow it: 0 when joined, 1 when
 * already a member, or a negative gw_err_t.
 */
static int proto_join(gw_proto_t *p, gw_session_t *s, const char *guild)
{
    if (!gw_bound_allows(s, guild))
        return GW_EAUTH;
    if (s->nguilds >= s->set->cfg->max_guilds_per_session)
        return GW_ETOOBIG;
    return gw_index_join(p->index, s, guild);
}

#define PROTO_TOO_MANY_GUILDS                                                  \
    "{\"event\":\"error\",\"data\":{\"code\":\"limit_exceeded\","              \
    "\"message\":\"too many guilds for one session\"}}"

/* `guild_subscribed`, once the guild's channel is (gw/subreply.h). */
static void proto_guild_subscribed(gw_proto_t *p, gw_session_t *s,
                                   const char *guild)
{
    cJSON *data, *doc = gw_reply_event("guild_subscribed", &data);

    cJSON_AddStringToObject(data, "guildId", guild);
    gw_subreply_send(p, s, doc, NULL, guild);
}

static void proto_identified(gw_proto_t *p, gw_session_t *s,
                             const cJSON *guilds)
{
    char sid[2 * GW_SESSION_ID_LEN + 1];
    cJSON *data, *doc = gw_reply_event("identified", &data);
    cJSON *joined;
    const cJSON *g;
    int over = 0;

    gw_session_id_hex(s, sid);
    cJSON_AddStringToObject(data, "userId", s->user->id);
    cJSON_AddStringToObject(data, "sessionId", sid);
    joined = cJSON_AddArrayToObject(data, "guildIds");
    cJSON_ArrayForEach(g, guilds)
    {
        const char *id = proto_id(g);
        int rc = id ? proto_join(p, s, id) : GW_EINVAL;
        over |= rc == GW_ETOOBIG;
        if (rc == 0)
            cJSON_AddItemToArray(joined, cJSON_CreateString(id));
    }
    gw_subreply_send(p, s, doc, over ? PROTO_TOO_MANY_GUILDS : NULL, NULL);
    gw_proto_presence(p, s, 1);
    /* After `identified`: a short token is warned at once. */
    proto_deadlines(s);
}

uint32_t gw_proto_exp(int64_t exp)
{
    if (exp <= 0)
        return 0;
    return exp > UINT32_MAX ? UINT32_MAX : (uint32_t)exp;
}

/* The session takes the token's guild bound and exp; claims are freed. */
/* Gives s what the claims grant, taken out of them (their sub stays). */
static void proto_grant(gw_session_t *s, gw_jwt_claims_t *claims)
{
    gw_grant_t g = {claims->guilds, (uint16_t)claims->nguilds,
                    gw_proto_exp(claims->exp)};

    claims->guilds = NULL;
    claims->nguilds = 0;
    gw_session_grant(s, &g);
}

static void proto_take_token(gw_session_t *s, gw_jwt_claims_t *claims)
{
    proto_grant(s, claims);
    gw_jwt_claims_free(claims);
}

/* Identifies the session as claims->sub, taking the guild bound and exp. */
static void proto_bind(gw_proto_t *p, gw_session_t *s, gw_jwt_claims_t *claims)
{
    gw_index_add_session(p->index, s, claims->sub);
    s->identified = 1;
    gw_stat_add(s->set->stats, GW_STAT_SESSIONS, 1);
    proto_take_token(s, claims);
}

/* A token refused (4004), or an attempt the abuse limits did not hear
 * (4008: the client may try again later). */
static void proto_auth_close(gw_session_t *s, int rc)
{
    if (rc == GW_ELIMITED)
        gw_session_close(s, GW_CLOSE_RATE_LIMITED,
                         "too many authentication attempts");
    else
        gw_session_close(s, GW_CLOSE_AUTH_FAILED, "authentication failed");
}

static void proto_identify(gw_proto_t *p, gw_session_t *s, const proto_msg_t *m)
{
    const cJSON *data = m->data;
    const char *user =
        proto_id(cJSON_GetObjectItemCaseSensitive(data, "userId"));
    const cJSON *token = cJSON_GetObjectItemCaseSensitive(data, "token");
    const cJSON *guilds = cJSON_GetObjectItemCaseSensitive(data, "guildIds");
    gw_jwt_claims_t claims;
    int rc;

    if (user == NULL || !cJSON_IsString(token) ||
        (guilds != NULL && !cJSON_IsArray(guilds))) {
        gw_session_close(s, GW_CLOSE_BAD_ENVELOPE,
                         "identify needs userId, token");
        return;
    }
    if ((rc = gw_auth_verify(&p->jwt, s, token->valuestring, user, &claims)) !=
        0) {
        proto_auth_close(s, rc);
        return;
    }
    proto_bind(p, s, &claims);
    proto_identified(p, s, guilds);
}

/*
 * refresh {"token"}: a new token for the session's own user replaces the
 * old one at once, its guild bound and its exp; the session is answered
 * `refreshed` with the new exp (null: none). A token that does not verify
 * for this user is answered invalid_token, and the old one holds until
 * its own exp. Answers carry the request's nonce.
 */
static void proto_refresh(gw_proto_t *p, gw_session_t *s, const proto_msg_t *m)
{
    const cJSON *token = cJSON_GetObjectItemCaseSensitive(m->data, "token");
    const cJSON *nonce = cJSON_GetObjectItemCaseSensitive(m->doc, "nonce");
    gw_reply_nonce_t echo;
    gw_jwt_claims_t claims;
    cJSON *data, *doc;

    if (proto_nonce(s, m->text, m->len, nonce, &echo) != 0)
        return;
    if (!cJSON_IsString(token)) {
        gw_reply_error_to(s, &echo, "invalid_request", "refresh needs a token");
        return;
    }
    if (gw_auth_verify(&p->jwt, s, token->valuestring, s->user->id, &claims) !=
        0) {
        gw_reply_error_to(s, &echo, "invalid_token",
                          "the token does not verify for this user");
        return;
    }
    proto_take_token(s, &claims);
    doc = gw_reply_event("refreshed", &data);
    if (nonce != NULL)
        cJSON_AddStringToObject(doc, "nonce", nonce->valuestring);
    if (s->exp != 0)
        cJSON_AddNumberToObject(data, "exp", s->exp);
    else
        cJSON_AddNullToObject(data, "exp");
    gw_reply_json(s, doc);
    gw_bound_enforce(p, s);
    proto_deadlines(s);
}

static void proto_heartbeat_in(gw_proto_t *p, gw_session_t *s,
                               const proto_msg_t *m)
{
    const cJSON *data = m->data;
    (void)p;
    (void)data;
    s->last_ack_ms = (uint32_t)gw_sessions_now(s->set);
    gw_reply_static(s, "{\"event\":\"heartbeat_ack\",\"data\":{}}");
}

static void proto_heartbeat_ack(gw_proto_t *p, gw_session_t *s,
                                const proto_msg_t *m)
{
    const cJSON *data = m->data;
    (void)p;
    (void)data;
    s->last_ack_ms = (uint32_t)gw_sessions_now(s->set);
}

static void proto_subscribe(gw_proto_t *p, gw_session_t *s,
                            const proto_msg_t *m)
{
    const cJSON *data = m->data;
    const char *guild =
        proto_id(cJSON_GetObjectItemCaseSensitive(data, "guildId"));

    switch (guild ? proto_join(p, s, guild) : GW_EINVAL) {
    case 0:
        proto_guild_subscribed(p, s, guild);
        gw_proto_presence_guild(p, s, guild);
        break;
    case 1: proto_guild_subscribed(p, s, guild); break;
    case GW_EAUTH:
        gw_reply_error(s, "forbidden", "the token does not allow this guild");
        break;
    case GW_ETOOBIG:
        gw_reply_error(s, "limit_exceeded", "too many guilds for one session");
        break;
    default:
        gw_reply_error(s, "invalid_request",
                       "guildId must be a non-empty string");
    }
}

static void proto_unsubscribe(gw_proto_t *p, gw_session_t *s,
                              const proto_msg_t *m)
{
    const cJSON *data = m->data;
    const char *guild =
        proto_id(cJSON_GetObjectItemCaseSensitive(data, "guildId"));

    if (guild == NULL) {
        gw_reply_error(s, "invalid_request",
                       "guildId must be a non-empty string");
        return;
    }
    if (gw_index_leave(p->index, s, guild) == 0)
        gw_proto_presence_guild(p, s, guild);
    gw_reply_guild(s, "guild_unsubscribed", guild);
}

/*
 * A backend's action on one of its sessions. A backend speaks with
 * authority: its subscribe is not bound by the token's guilds claim, only
 * by max_guilds_per_session.
 */
void gw_proto_apply(gw_proto_t *p, gw_session_t *s, const gw_event_t *ev)
{
    switch (ev->action) {
    case GW_ACTION_SUBSCRIBE:
        if (s->nguilds >= s->set->cfg->max_guilds_per_session &&
            !gw_index_is_member(s, ev->arg))
            gw_reply_error(s, "limit_exceeded",
                           "too many guilds for one session");
        else if (gw_index_join(p->index, s, ev->arg) == 0) {
            proto_guild_subscribed(p, s, ev->arg);
            gw_proto_presence_guild(p, s, ev->arg);
        }
        break;
    case GW_ACTION_UNSUBSCRIBE:
        if (gw_index_leave(p->index, s, ev->arg) == 0) {
            gw_reply_guild(s, "guild_unsubscribed", ev->arg);
            gw_proto_presence_guild(p, s, ev->arg);
        }
        break;
    case GW_ACTION_DISCONNECT:
        /* A parked session is ended too: it must not come back. */
        if (s->parked)
            gw_session_forget(s);
        else
            gw_session_close(s, ev->code, ev->arg);
        break;
    case GW_ACTION_DISPATCH: gw_session_dispatch(s, ev); break;
    case GW_ACTION_SEND:
        gw_session_send(s, ev->body->data, ev->body->len);
        break;
    case GW_ACTION_CENSUS: /* the worker's own, never a session's */
    case GW_ACTION_SUBSCRIBED:
    case GW_ACTION_ADOPT:
    case GW_ACTION_OPENED: /* gw_transfer_event's */
    case GW_ACTION_CLAIM:
    case GW_ACTION_SERVED:
    case GW_ACTION_FOUND:
    case GW_ACTION_RESTORE: break;
    }
}

/* A fixed window of session.typing_window_ms holding typing_limit events. */
/* Takes one event of a per-session window, or answers rate_limited with
 * the request's nonce, counted under stat: whether it was taken. */
static int proto_window_admit(gw_session_t *s, uint32_t *since, uint32_t *count,
                              uint32_t window_ms, uint32_t limit,
                              gw_stat_t stat, const gw_reply_nonce_t *echo,
                              const char *message)
{
    if (gw_window_take(since, count, (uint32_t)gw_sessions_now(s->set),
                       window_ms, limit))
        return 1;
    gw_stat_add(s->set->stats, stat, 1);
    gw_reply_error_to(s, echo, "rate_limited", message);
    return 0;
}

static int proto_typing_allowed(gw_session_t *s)
{
    const gw_config_t *cfg = s->set->cfg;
    gw_session_windows_t *w = gw_session_windows(s);

    return gw_window_take(&w->typing_since, &w->typing_count,
                          (uint32_t)gw_sessions_now(s->set),
                          cfg->typing_window_ms, cfg->typing_limit);
}

/* typing.start: relayed through the broker to the guild's members on every
 * instance, the sender's own sessions skipped. */
static void proto_typing(gw_proto_t *p, gw_session_t *s, const proto_msg_t *m)
{
    const cJSON *data = m->data;
    const char *guild =
        proto_id(cJSON_GetObjectItemCaseSensitive(data, "guildId"));
    const char *channel =
        proto_id(cJSON_GetObjectItemCaseSensitive(data, "channelId"));

    if (guild == NULL || channel == NULL) {
        gw_reply_error(s, "invalid_request",
                       "guildId and channelId must be non-empty strings");
    } else if (!gw_index_is_member(s, guild)) {
        gw_reply_error(s, "forbidden", "subscribe to the guild first");
    } else if (!proto_typing_allowed(s)) {
        gw_stat_add(s->set->stats, GW_STAT_TYPING_LIMITED, 1);
        gw_reply_error(s, "rate_limited", "too many typing.start events");
    } else if (p->hooks.relay_typing(p->hooks.data, s->user->id, guild,
                                     channel) != 0) {
        gw_reply_error(s, "overloaded", "typing.start dropped: broker busy");
    }
}

/* A sync scope: what the key template's {scope} becomes. */
static int proto_scope_ok(const char *v)
{
    size_t n = strlen(v);

    return n > 0 && n <= PROTO_SCOPE_MAX &&
           strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789_.:-") == n;
}

/*
 * sync_request (seed 000): the cached copy from Redis, as a sync-data
 * dispatch carrying the nonce; a miss goes up to the sync service, which
 * answers through the reply path. The broker does both and answers what
 * fails; here only the request is checked and limited.
 */
static void proto_sync(gw_proto_t *p, gw_session_t *s, const proto_msg_t *m)
{
    const gw_config_t *cfg = s->set->cfg;
    const cJSON *scope = cJSON_GetObjectItemCaseSensitive(m->data, "scope");
    const cJSON *nonce = cJSON_GetObjectItemCaseSensitive(m->doc, "nonce");
    const char *data = "{}";
    size_t dlen = 2;
    gw_reply_nonce_t echo;
    gw_session_windows_t *w;

    if (proto_nonce(s, m->text, m->len, nonce, &echo) != 0)
        return;
    if (scope != NULL &&
        (!cJSON_IsString(scope) || !proto_scope_ok(scope->valuestring))) {
        gw_reply_error_to(s, &echo, "invalid_request",
                          "scope must be 1 to 64 of [A-Za-z0-9_.:-]");
        return;
    }
    w = gw_session_windows(s);
    if (!proto_window_admit(s, &w->sync_since, &w->sync_count,
                            cfg->sync_window_ms, cfg->sync_limit,
                            GW_STAT_SYNC_LIMITED, &echo,
                            "too many sync requests"))
        return;
    gw_json_member_raw(m->text, m->len, "data", &data, &dlen);
    if (p->hooks.relay_sync(p->hooks.data, s, scope ? scope->valuestring : NULL,
                            data, dlen,
                            nonce ? nonce->valuestring : NULL) != 0) {
        gw_stat_add(s->set->stats, GW_STAT_RELAY_OVERLOADED, 1);
        gw_reply_error_to(s, &echo, "overloaded", "sync request dropped: busy");
    }
}

/* ---- resume (docs/continuity.md) ---------------------------------- */

/* The resume of fresh session s for session id of `user`, here: by the
 * worker that holds it, or as a session another instance drained. */
static void proto_resume_at(gw_proto_t *p, gw_session_t *s, const uint8_t *id,
                            const char *user, uint64_t seq)
{
    if (gw_resume_here(p, s, id, user, seq) != GW_ENOENT)
        return;
    if (gw_transfer_on(p))
        gw_transfer_restore(p, s, id, user, seq);
    else
        gw_reply_invalid_session(s);
}

/*
 * resume {"sessionId","token","seq"} instead of identify. The token must
 * verify (4004 if not); then the session's worker decides.
 */
static void proto_resume(gw_proto_t *p, gw_session_t *s, const proto_msg_t *m)
{
    uint8_t id[GW_SESSION_ID_LEN];
    gw_jwt_claims_t claims;
    const char *token;
    uint64_t seq;
    int rc;

    if (gw_resume_fields(m->data, id, &token, &seq) != 0) {
        gw_session_close(s, GW_CLOSE_BAD_ENVELOPE,
                         "resume needs sessionId, token and seq");
        return;
    }
    if ((rc = gw_auth_verify(&p->jwt, s, token, NULL, &claims)) != 0) {
        proto_auth_close(s, rc);
        return;
    }
    /* Carried to the session resumed, whose token this becomes. */
    proto_grant(s, &claims);
    /* An id of no worker (or no id at all) is looked up here, in vain. */
    if (gw_session_id_worker(id) == p->index->tag ||
        gw_session_id_worker(id) >= p->workers || p->hooks.hand_over == NULL)
        proto_resume_at(p, s, id, claims.sub, seq);
    else
        gw_resume_elsewhere(p, s, id, claims.sub, seq);
    gw_jwt_claims_free(&claims);
}

void gw_proto_adopt(gw_proto_t *p, gw_ws_t *ws,
                    const uint8_t id[GW_SESSION_ID_LEN], uint64_t seq,
                    const char *user, gw_grant_t *grant)
{
    gw_session_t *s = gw_session_new(&p->sessions, ws);

    gw_session_grant(s, grant);
    gw_index_place(p->index, s);
    gw_ws_set_data(ws, s);
    if (p->draining)
        gw_session_close(s, GW_CLOSE_DRAINING, "server draining");
    else
        proto_resume_at(p, s, id, user, seq);
}

static const proto_handler_t proto_handlers[] = {
    {"identify", PROTO_FRESH, proto_identify},
    {"resume", PROTO_FRESH, proto_resume},
    {"heartbeat", PROTO_ANY, proto_heartbeat_in},
    {"heartbeat_ack", PROTO_ANY, proto_heartbeat_ack},
    {"refresh", PROTO_IDENTIFIED, proto_refresh},
    {"guild_subscribe", PROTO_IDENTIFIED, proto_subscribe},
    {"guild_unsubscribe", PROTO_IDENTIFIED, proto_unsubscribe},
    {"typing.start", PROTO_IDENTIFIED, proto_typing},
    {"sync_request", PROTO_IDENTIFIED, proto_sync},
};

/*
 * A client event for the backends (seed 004): limited per session, then
 * handed over with the client's data as it sent it; the backend answers
 * through the reply path (an envelope to its sessionId, echoing the
 * nonce). What cannot go up is answered at once, never dropped silently.
 */
static void proto_relay(gw_proto_t *p, gw_session_t *s, const char *name,
                        const char *msg, size_t len, const cJSON *doc)
{
    const gw_config_t *cfg = s->set->cfg;
    const cJSON *nonce = cJSON_GetObjectItemCaseSensitive(doc, "nonce");
    gw_reply_nonce_t echo;
    const char *data = "{}";
    size_t dlen = 2;
    gw_session_windows_t *w;

    if (proto_nonce(s, msg, len, nonce, &echo) != 0)
        return;
    w = gw_session_windows(s);
    if (!proto_window_admit(s, &w->relay_since, &w->relay_count,
                            cfg->relay_window_ms, cfg->relay_limit,
                            GW_STAT_RELAY_LIMITED, &echo,
                            "too many events relayed"))
        return;
    gw_json_member_raw(msg, len, "data", &data, &dlen);
    switch (p->hooks.relay_upstream(p->hooks.data, s, name, data, dlen,
                                    nonce ? nonce->valuestring : NULL)) {
    case 0: break;
    case GW_EFULL:
        gw_stat_add(s->set->stats, GW_STAT_RELAY_OVERLOADED, 1);
        gw_reply_error_to(s, &echo, "overloaded",
                          "too many events on their way to the backends");
        break;
    default:
        gw_stat_add(s->set->stats, GW_STAT_RELAY_UNAVAILABLE, 1);
        gw_reply_error_to(s, &echo, "unavailable",
                          "the backends cannot be reached");
    }
}

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
static int proto_admit(gw_proto_t *p, gw_session_t *s)
{
    const gw_config_t *cfg = s->set->cfg;

    if (cfg->event_rate == 0 ||
        gw_bucket_take(&s->events, gw_sessions_now(s->set), cfg->event_rate,
                       cfg->event_burst))
        return 1;
    gw_stat_add(s->set->stats, GW_STAT_RATE_LIMITED_CLOSES, 1);
    gw_log_limited(&p->flood_log, GW_LOG_WARN,
                   "conn %" PRIu64 ": closed 4008: more than %u events at "
                   "once or %u a second",
                   gw_session_conn_id(s), cfg->event_burst, cfg->event_rate);
    gw_session_close(s, GW_CLOSE_RATE_LIMITED, "rate limited");
    return 0;
}

/* An event that is not a built-in: up to the backends, or unknown. */
static void proto_other(gw_proto_t *p, gw_session_t *s, const char *name,
                        const char *msg, size_t len, const cJSON *doc)
{
    if (gw_match_event(s->set->cfg->relay_events, name))
        proto_relay(p, s, name, msg, len, doc);
    else
        gw_reply_error(s, "unknown_event", "unknown event");
}

/* One complete message from the client (len bytes, not NUL-terminated). */
static void proto_message_cb(void *data, const char *msg, size_t len)
{
    gw_session_t *s = data;
    gw_proto_t *p = proto_of(s);
    cJSON *doc;
    const cJSON *event, *body;
    const proto_handler_t *h;

    if (!proto_admit(p, s))
        return;
    if ((doc = gw_json_parse(msg, len)) == NULL) {
        gw_session_close(s, GW_CLOSE_DECODE, "message is not JSON");
        return;
    }
    event = cJSON_GetObjectItemCaseSensitive(doc, "event");
    body = cJSON_GetObjectItemCaseSensitive(doc, "data");
    if (!cJSON_IsObject(doc) || !cJSON_IsString(event) ||
        (body != NULL && !cJSON_IsObject(body))) {
        gw_session_close(s, GW_CLOSE_BAD_ENVELOPE,
                         "expected {\"event\",\"data\"}");
        goto Done;
    }
    h = proto_find(event->valuestring);
    if (!s->identified && (h == NULL || h->when == PROTO_IDENTIFIED))
        gw_session_close(s, GW_CLOSE_NOT_AUTHENTICATED, "identify first");
    else if (s->identified && h != NULL && h->when == PROTO_FRESH)
        gw_session_close(s, GW_CLOSE_ALREADY_AUTHENTICATED,
                         "already authenticated");
    else if (h == NULL)
        proto_other(p, s, event->valuestring, msg, len, doc);
    else
        h->fn(p, s, &(proto_msg_t){doc, body, msg, len});
Done:
    cJSON_Delete(doc);
}

/* Identified by the upgrade: join the guilds the token names, if any. */
static void proto_identify_by_upgrade(gw_proto_t *p, gw_session_t *s,
                                      const char *token)
{
    gw_jwt_claims_t claims;
    cJSON *guilds;
    int rc;

    if ((rc = gw_auth_verify(&p->jwt, s, token, NULL, &claims)) != 0) {
        proto_auth_close(s, rc);
        return;
    }
    guilds = cJSON_CreateArray();
    for (size_t i = 0; i < claims.nguilds; i++)
        cJSON_AddItemToArray(guilds, cJSON_CreateString(claims.guilds[i]));
    proto_bind(p, s, &claims);
    proto_identified(p, s, guilds);
    cJSON_Delete(guilds);
}

/*
 * The WebSocket is open: a session starts, sends `ready`, then identifies
 * at once with `token` when the upgrade request carried one.
 */
static void proto_open_cb(void *data, gw_ws_t *ws, const char *token)
{
    gw_proto_t *p = data;
    gw_session_t *s;

    if (p->draining) {
        gw_ws_close(ws, GW_CLOSE_DRAINING, "server draining");
        return;
    }
    s = gw_session_new(&p->sessions, ws);
    gw_index_place(p->index, s);
    gw_ws_set_data(ws, s);
    gw_reply_ready(s);
    if (token != NULL)
        proto_identify_by_upgrade(p, s, token);
}

static void proto_backlog_cb(void *data, unsigned dropped)
{
    gw_session_slow_consumer(data, dropped);
}

/*
 * Whether a session whose connection ended may wait for a resume
 * (docs/continuity.md): an identified one, unless the client closed it
 * as done (1000, 1001) or the server closed it for a cause a resume would
 * not mend; a connection lost without a close frame, a heartbeat timeout
 * and a drain park.
 */
static int proto_parks(const gw_proto_t *p, const gw_session_t *s,
                       uint16_t sent, uint16_t received)
{
    if (!s->identified || p->stopping || s->set->cfg->resume_window_ms == 0)
        return 0;
    if (received != 0)
        return received != GW_WS_CLOSE_NORMAL && received != 1001;
    return sent == 0 || sent == GW_CLOSE_SESSION_TIMEOUT ||
           sent == GW_CLOSE_DRAINING;
}

/* The connection is gone: the session is parked for a resume, or ends. */
static void proto_close_cb(void *data, uint16_t sent, uint16_t received)
{
    gw_session_t *s = data;
    gw_proto_t *p = proto_of(s);

    s->ws = NULL;
    gw_subreply_cancel(p, s);
    if (s->user != NULL)
        gw_proto_presence(p, s, -1);
    if (!proto_parks(p, s, sent, received)) {
        gw_proto_end(p, s);
        return;
    }
    gw_session_park(s, gw_sessions_now(s->set) + s->set->cfg->resume_window_ms);
}

const gw_ws_cb_t gw_proto_ws_cb = {
    .on_open = proto_open_cb,
    .on_message = proto_message_cb,
    .on_hand_off = gw_resume_hand_off_cb,
    .on_backlog = proto_backlog_cb,
    .on_close = proto_close_cb,
};

/*
 * Heartbeat bookkeeping of an open session (SPEC 3, step 5): 0 with *next
 * the milliseconds until its next deadline, or -1 once closed. Its times
 * are kept in 32 bits of milliseconds, 8 bytes a session: differences are
 * right across the wrap while under 2^31 ms, and two intervals are at most
 * 2^30 (the config's bound).
 */
static int proto_heartbeat(gw_session_t *s, uint64_t now, uint64_t *next)
{
    uint32_t interval = s->set->cfg->heartbeat_interval_ms;
    uint32_t since_ack = (uint32_t)now - s->last_ack_ms;
    int32_t to_beat = (int32_t)(s->next_hb_ms - (uint32_t)now);

    if (since_ack >= 2 * interval) {
        gw_session_close(s, GW_CLOSE_SESSION_TIMEOUT, "session timed out");
        return -1;
    }
    if (to_beat <= 0) {
        gw_reply_static(s, "{\"event\":\"heartbeat\",\"data\":{}}");
        s->next_hb_ms = (uint32_t)now + interval;
        to_beat = (int32_t)interval;
    }
    *next = 2 * interval - since_ack;
    if ((uint64_t)to_beat < *next)
        *next = (uint64_t)to_beat;
    return 0;
}

/* Milliseconds of the wall clock: a token's exp is a Unix time. */
static int64_t proto_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void proto_token_expiring(gw_session_t *s)
{
    char buf[80];
    int n = snprintf(buf, sizeof(buf),
                     "{\"event\":\"token_expiring\",\"data\":{\"exp\":%" PRIu32
                     "}}",
                     s->exp);

    gw_session_send(s, buf, (size_t)n);
    s->warned = 1;
}

/*
 * The token's deadlines, carried by the heartbeat's timer rather than a
 * timer of their own: -1 once the session is closed 4013 (gw_jwt_verify
 * refuses a token from the second after exp plus the leeway, and so does
 * this), else 0 with *next lowered to the next of them.
 */
static int proto_token(gw_session_t *s, uint64_t *next)
{
    const gw_config_t *cfg = s->set->cfg;
    int64_t now = proto_wall_ms();
    int64_t end = ((int64_t)s->exp + cfg->leeway_s + 1) * 1000;
    int64_t warn = ((int64_t)s->exp - cfg->expiry_warning_s) * 1000;
    int64_t due;

    if (now >= end) {
        gw_session_close(s, GW_CLOSE_TOKEN_EXPIRED, "token expired");
        return -1;
    }
    if (!s->warned && cfg->expiry_warning_s > 0 && now >= warn)
        proto_token_expiring(s);
    due = !s->warned && cfg->expiry_warning_s > 0 ? warn : end;
    if ((uint64_t)(due - now) < *next)
        *next = (uint64_t)(due - now);
    return 0;
}

/*
 * Runs the deadlines of an open session now and arms its timer for the
 * next one: the heartbeat's (SPEC 3, step 5) and its token's (warned
 * token_expiring before exp, closed 4013 after exp and the leeway). Not
 * while draining: the timer holds the session's drain slot then.
 */
static void proto_deadlines(gw_session_t *s)
{
    uint64_t now = gw_sessions_now(s->set), next;

    /* A session that appears while draining gets its drain slot now. */
    if (proto_of(s)->draining) {
        if (!gw_wheel_armed(&s->timer))
            gw_wheel_add(&s->set->wheel, &s->timer, now);
        return;
    }
    if (proto_heartbeat(s, now, &next) != 0 ||
        (s->identified && s->exp != 0 && proto_token(s, &next) != 0))
        return;
    gw_wheel_add(&s->set->wheel, &s->timer, now + next);
}

static void proto_timer_fire(gw_wheel_node_t *node, void *data)
{
    gw_session_t *s =
        (gw_session_t *)((char *)node - offsetof(gw_session_t, timer));
    gw_proto_t *p = data;

    /* A parked session's deadline is the end of its window, or now once
     * it could keep no more. */
    if (s->serving || s->restoring) {
        gw_transfer_timer(p, s);
        return;
    }
    if (s->parked) {
        if (!s->lost)
            gw_stat_add(s->set->stats, GW_STAT_RESUME_EXPIRED, 1);
        gw_proto_end(p, s);
        return;
    }
    /* While draining, the deadline is this session's drain slot. */
    if (p->draining)
        gw_transfer_offer(p, s);
    else
        proto_deadlines(s);
}

void gw_proto_tick(gw_proto_t *p, uint64_t now_ms)
{
    gw_wheel_advance(&p->sessions.wheel, now_ms, proto_timer_fire, p);
    gw_transfer_due(p, now_ms);
    gw_subreply_tick(p, now_ms);
}

typedef struct proto_drain {
    uint64_t now, window;
    unsigned n, i;
} proto_drain_t;

static void proto_count_session(gw_ws_t *ws, void *arg)
{
    proto_drain_t *d = arg;

    d->n += ws->data != NULL && gw_ws_is_open(ws);
}

/* Gives each session its slot in the window; an upgrade still being read
 * keeps its own deadline and is closed 4011 if it completes. */
static void proto_drain_session(gw_ws_t *ws, void *arg)
{
    proto_drain_t *d = arg;
    gw_session_t *s = ws->data;

    if (s == NULL || !gw_ws_is_open(ws))
        return;
    gw_wheel_add(&s->set->wheel, &s->timer,
                 d->now + d->window * d->i++ / (d->n ? d->n : 1));
}

void gw_proto_drain(gw_proto_t *p, uint64_t window_ms)
{
    proto_drain_t d = {gw_sessions_now(&p->sessions), window_ms, 0, 0};

    p->draining = 1;
    gw_ws_loop_each(p->ws, proto_count_session, &d);
    gw_ws_loop_each(p->ws, proto_drain_session, &d);
}

static void proto_shutdown_one(gw_ws_t *ws, void *arg)
{
    (void)arg;
    gw_ws_close(ws, GW_CLOSE_DRAINING, "server shutting down");
    gw_ws_flush(ws);
    gw_ws_abort(ws);
}

/* The parked sessions of one user, gathered to be ended. */
typedef struct proto_parked {
    gw_session_t **v;
    size_t n, cap;
} proto_parked_t;

static void proto_gather_parked(gw_user_t *u, void *arg)
{
    proto_parked_t *g = arg;

    for (gw_session_t *s = u->sessions; s != NULL; s = s->user_next) {
        if (!s->parked)
            continue;
        if (g->n == g->cap) {
            g->cap = g->cap ? 2 * g->cap : 64;
            g->v = gw_realloc(g->v, g->cap * sizeof(*g->v));
        }
        g->v[g->n++] = s;
    }
}

void gw_proto_shutdown(gw_proto_t *p)
{
    proto_parked_t g = {0};

    p->stopping = 1;
    gw_transfer_drop(p);
    gw_ws_loop_each(p->ws, proto_shutdown_one, NULL);
    /* Gathered first: ending one changes the table being walked. */
    gw_index_each_user(p->index, proto_gather_parked, &g);
    for (size_t i = 0; i < g.n; i++)
        gw_proto_end(p, g.v[i]);
    free(g.v);
}

void gw_proto_init(gw_proto_t *p, gw_ws_loop_t *ws, gw_index_t *index,
                   const gw_config_t *cfg, gw_stats_t *stats,
                   const gw_proto_hooks_t *hooks)
{
    *p = (gw_proto_t){.index = index, .ws = ws, .hooks = *hooks};
    gw_sessions_init(&p->sessions, hooks->now, hooks->data, cfg, stats);
    gw_authkeys_verifier_init(&p->jwt, p->sessions.cfg);
}

void gw_proto_free(gw_proto_t *p)
{
    gw_subreply_free(p);
    gw_jwt_verifier_free(&p->jwt);
    gw_sessions_free(&p->sessions);
}

/* Everything reads the snapshot at its next use, so only the verifier,
 * prepared from the secret, is made again. */
void gw_proto_reconfigure(gw_proto_t *p, const gw_config_t *cfg)
{
    p->sessions.cfg = cfg;
    gw_jwt_verifier_free(&p->jwt);
    gw_authkeys_verifier_init(&p->jwt, p->sessions.cfg);
}
