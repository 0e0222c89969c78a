#include "gw/proto.h"

#include "gw/addr.h"
#include "gw/alloc.h"
#include "gw/error.h"
#include "gw/hex.h"
#include "gw/json.h"
#include "gw/match.h"

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

typedef struct proto_handler {
    const char *name;
    int needs_identify;
    void (*fn)(gw_proto_t *p, gw_session_t *s, const proto_msg_t *m);
} proto_handler_t;

/* The protocol a session belongs to: its set is the protocol's. */
static gw_proto_t *proto_of(const gw_session_t *s)
{
    return (gw_proto_t *)((char *)s->set - offsetof(gw_proto_t, sessions));
}

/* The session's connection id, for log lines. */
static uint64_t proto_conn_id(const gw_session_t *s)
{
    return s->ws != NULL ? s->ws->id : 0;
}

static void proto_send_static(gw_session_t *s, const char *json)
{
    gw_session_send(s, json, strlen(json));
}

/* `ready`: the session's id and the heartbeat interval. */
static void proto_ready(gw_session_t *s)
{
    char sid[2 * GW_SESSION_ID_LEN + 1], buf[160];
    int n;

    gw_session_id_hex(s, sid);
    n = snprintf(buf, sizeof(buf),
                 "{\"event\":\"ready\",\"data\":{\"sessionId\":\"%s\","
                 "\"heartbeatInterval\":%u}}",
                 sid, s->set->cfg->heartbeat_interval_ms);
    gw_session_send(s, buf, (size_t)n);
}

/* Sends a cJSON document and frees it. */
static void proto_send_json(gw_session_t *s, cJSON *doc)
{
    char *text = cJSON_PrintUnformatted(doc);

    if (text == NULL) {
        gw_error("conn %" PRIu64 ": out of memory encoding a reply",
                 proto_conn_id(s));
        abort();
    }
    gw_session_send(s, text, strlen(text));
    cJSON_free(text);
    cJSON_Delete(doc);
}

/* A recoverable error: answered, the session stays open. */
static void proto_error(gw_session_t *s, const char *code, const char *message)
{
    char buf[256];
    int n = snprintf(buf, sizeof(buf),
                     "{\"event\":\"error\",\"data\":{\"code\":\"%s\","
                     "\"message\":\"%s\"}}",
                     code, message);
    gw_session_send(s, buf, (size_t)n);
}

/* The client's nonce, as the JSON text it sent, echoed in an answer. */
typedef struct proto_nonce {
    const char *raw; /* a JSON string literal, or NULL when none was sent */
    size_t len;
} proto_nonce_t;

/* An error that answers one request: it carries the request's nonce. */
static void proto_error_to(gw_session_t *s, const proto_nonce_t *nonce,
                           const char *code, const char *message)
{
    char buf[384];
    int n;

    if (nonce->raw == NULL) {
        proto_error(s, code, message);
        return;
    }
    n = snprintf(buf, sizeof(buf),
                 "{\"event\":\"error\",\"nonce\":%.*s,\"data\":{\"code\":"
                 "\"%s\",\"message\":\"%s\"}}",
                 (int)nonce->len, nonce->raw, code, message);
    gw_session_send(s, buf, (size_t)n);
}

/*
 * The request's optional nonce: a string of at most GW_NONCE_MAX bytes,
 * kept as the JSON text it came in (*echo) for the answers. 0, or -1 when
 * it was refused (answered invalid_request).
 */
static int proto_nonce(gw_session_t *s, const char *msg, size_t len,
                       const cJSON *nonce, proto_nonce_t *echo)
{
    *echo = (proto_nonce_t){NULL, 0};
    if (nonce == NULL)
        return 0;
    if (!cJSON_IsString(nonce) || strlen(nonce->valuestring) > GW_NONCE_MAX) {
        proto_error(s, "invalid_request",
                    "nonce must be a string of at most 64 bytes");
        return -1;
    }
    gw_json_member_raw(msg, len, "nonce", &echo->raw, &echo->len);
    return 0;
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

/* The session keeps only the token's "guilds" bound of its claims. */
static int proto_allowed(const gw_session_t *s, const char *guild)
{
    const gw_jwt_claims_t bound = {.guilds = s->allowed,
                                   .nguilds = s->nallowed};

    return gw_jwt_claims_allow_guild(&bound, guild);
}

/* The audit line of SPEC section 5, and the failure counter. */
static void proto_audit(gw_session_t *s, const char *user, int rc)
{
    char peer[GW_ADDR_NAME_MAX] = "?";

    if (rc != 0)
        gw_stat_add(s->set->stats, GW_STAT_AUTH_FAILURES, 1);
    /* The peer's address costs a system call: only for a line written. */
    if (!gw_log_on(rc == 0 ? GW_LOG_INFO : GW_LOG_WARN))
        return;
    if (s->ws != NULL)
        gw_ws_peer_name(s->ws, peer, sizeof(peer));
    if (rc == 0)
        gw_info("audit: auth ok conn=%" PRIu64 " peer=%s user=%s",
                proto_conn_id(s), peer, user);
    else
        gw_warn("audit: auth failed conn=%" PRIu64 " peer=%s user=%s reason=%s",
                proto_conn_id(s), peer, user ? user : "-", gw_strerror(rc));
}

/* Verifies the token; on success the session belongs to claims.sub. */
static int proto_verify(gw_proto_t *p, gw_session_t *s, const char *token,
                        const char *user, gw_jwt_claims_t *claims)
{
    int rc = gw_jwt_verify(&p->jwt, token, strlen(token), (int64_t)time(NULL),
                           claims);

    if (rc == 0 && user != NULL && strcmp(claims->sub, user) != 0) {
        gw_jwt_claims_free(claims);
        rc = GW_EAUTH;
    }
    proto_audit(s, user ? user : (rc == 0 ? claims->sub : NULL), rc);
    return rc;
}

/*
 * Joins one guild if the token and the limit allow it: 0 when joined, 1 when
 * already a member, or a negative gw_err_t.
 */
static int proto_join(gw_proto_t *p, gw_session_t *s, const char *guild)
{
    if (!proto_allowed(s, guild))
        return GW_EAUTH;
    if (s->nguilds >= s->set->cfg->max_guilds_per_session)
        return GW_ETOOBIG;
    return gw_index_join(p->index, s, guild);
}

/* Tells the owner that the online sessions of s's user here went from
 * before to one more (delta 1), one fewer (-1: s is leaving) or as many
 * (0: a guild changed). */
static void proto_presence(gw_proto_t *p, gw_session_t *s, int delta)
{
    uint32_t now = gw_user_online(s->user);
    uint32_t before = delta > 0 ? now - 1 : now;

    if (p->hooks.presence != NULL)
        p->hooks.presence(p->hooks.data, s->user, delta < 0 ? s : NULL, before,
                          before + (uint32_t)delta);
}

/* After s joined or left `guild`: the guilds of its user here changed
 * unless another of the user's online sessions is a member too. */
static void proto_presence_guild(gw_proto_t *p, gw_session_t *s,
                                 const char *guild)
{
    if (!s->identified)
        return;
    for (const gw_session_t *o = s->user->sessions; o != NULL; o = o->user_next)
        if (o != s && !o->parked && gw_index_is_member(o, guild))
            return;
    proto_presence(p, s, 0);
}

static void proto_identified(gw_proto_t *p, gw_session_t *s,
                             const cJSON *guilds)
{
    char sid[2 * GW_SESSION_ID_LEN + 1];
    cJSON *data, *doc = proto_event("identified", &data);
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
    proto_send_json(s, doc);
    if (over)
        proto_error(s, "limit_exceeded", "too many guilds for one session");
    proto_presence(p, s, 1);
}

/* Identifies the session as claims->sub, taking the guild bound. */
static void proto_bind(gw_proto_t *p, gw_session_t *s, gw_jwt_claims_t *claims)
{
    gw_index_add_session(p->index, s, claims->sub);
    s->identified = 1;
    gw_stat_add(s->set->stats, GW_STAT_SESSIONS, 1);
    s->allowed = claims->guilds;
    s->nallowed = (uint16_t)claims->nguilds;
    claims->guilds = NULL;
    claims->nguilds = 0;
    gw_jwt_claims_free(claims);
}

static void proto_identify(gw_proto_t *p, gw_session_t *s, const proto_msg_t *m)
{
    const cJSON *data = m->data;
    const char *user =
        proto_id(cJSON_GetObjectItemCaseSensitive(data, "userId"));
    const cJSON *token = cJSON_GetObjectItemCaseSensitive(data, "token");
    const cJSON *guilds = cJSON_GetObjectItemCaseSensitive(data, "guildIds");
    gw_jwt_claims_t claims;

    if (s->identified) {
        gw_session_close(s, GW_CLOSE_ALREADY_AUTHENTICATED,
                         "already authenticated");
        return;
    }
    if (user == NULL || !cJSON_IsString(token) ||
        (guilds != NULL && !cJSON_IsArray(guilds))) {
        gw_session_close(s, GW_CLOSE_BAD_ENVELOPE,
                         "identify needs userId, token");
        return;
    }
    if (proto_verify(p, s, token->valuestring, user, &claims) != 0) {
        gw_session_close(s, GW_CLOSE_AUTH_FAILED, "authentication failed");
        return;
    }
    proto_bind(p, s, &claims);
    proto_identified(p, s, guilds);
}

static void proto_heartbeat_in(gw_proto_t *p, gw_session_t *s,
                               const proto_msg_t *m)
{
    const cJSON *data = m->data;
    (void)p;
    (void)data;
    s->last_ack_ms = (uint32_t)gw_sessions_now(s->set);
    proto_send_static(s, "{\"event\":\"heartbeat_ack\",\"data\":{}}");
}

static void proto_heartbeat_ack(gw_proto_t *p, gw_session_t *s,
                                const proto_msg_t *m)
{
    const cJSON *data = m->data;
    (void)p;
    (void)data;
    s->last_ack_ms = (uint32_t)gw_sessions_now(s->set);
}

static void proto_send_guild(gw_session_t *s, const char *event,
                             const char *guild)
{
    cJSON *data, *doc = proto_event(event, &data);

    cJSON_AddStringToObject(data, "guildId", guild);
    proto_send_json(s, doc);
}

static void proto_subscribe(gw_proto_t *p, gw_session_t *s,
                            const proto_msg_t *m)
{
    const cJSON *data = m->data;
    const char *guild =
        proto_id(cJSON_GetObjectItemCaseSensitive(data, "guildId"));

    switch (guild ? proto_join(p, s, guild) : GW_EINVAL) {
    case 0:
        proto_send_guild(s, "guild_subscribed", guild);
        proto_presence_guild(p, s, guild);
        break;
    case 1: proto_send_guild(s, "guild_subscribed", guild); break;
    case GW_EAUTH:
        proto_error(s, "forbidden", "the token does not allow this guild");
        break;
    case GW_ETOOBIG:
        proto_error(s, "limit_exceeded", "too many guilds for one session");
        break;
    default:
        proto_error(s, "invalid_request", "guildId must be a non-empty string");
    }
}

static void proto_unsubscribe(gw_proto_t *p, gw_session_t *s,
                              const proto_msg_t *m)
{
    const cJSON *data = m->data;
    const char *guild =
        proto_id(cJSON_GetObjectItemCaseSensitive(data, "guildId"));

    if (guild == NULL) {
        proto_error(s, "invalid_request", "guildId must be a non-empty string");
        return;
    }
    if (gw_index_leave(p->index, s, guild) == 0)
        proto_presence_guild(p, s, guild);
    proto_send_guild(s, "guild_unsubscribed", guild);
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
            proto_error(s, "limit_exceeded", "too many guilds for one session");
        else if (gw_index_join(p->index, s, ev->arg) == 0) {
            proto_send_guild(s, "guild_subscribed", ev->arg);
            proto_presence_guild(p, s, ev->arg);
        }
        break;
    case GW_ACTION_UNSUBSCRIBE:
        if (gw_index_leave(p->index, s, ev->arg) == 0) {
            proto_send_guild(s, "guild_unsubscribed", ev->arg);
            proto_presence_guild(p, s, ev->arg);
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
    case GW_ACTION_ADOPT:
    case GW_ACTION_OPENED: /* gw_proto_handoff's */
    case GW_ACTION_CLAIM:
    case GW_ACTION_FOUND:
    case GW_ACTION_RESTORE: break;
    }
}

/* A fixed window of session.typing_window_ms holding typing_limit events. */
/* Takes one event of a per-session window, or answers rate_limited with
 * the request's nonce, counted under stat: whether it was taken. */
static int proto_window_admit(gw_session_t *s, uint32_t *since, uint32_t *count,
                              uint32_t window_ms, uint32_t limit,
                              gw_stat_t stat, const proto_nonce_t *echo,
                              const char *message)
{
    if (gw_window_take(since, count, (uint32_t)gw_sessions_now(s->set),
                       window_ms, limit))
        return 1;
    gw_stat_add(s->set->stats, stat, 1);
    proto_error_to(s, echo, "rate_limited", message);
    return 0;
}

static int proto_typing_allowed(gw_session_t *s)
{
    const gw_config_t *cfg = s->set->cfg;

    return gw_window_take(&s->typing_since, &s->typing_count,
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
        proto_error(s, "invalid_request",
                    "guildId and channelId must be non-empty strings");
    } else if (!gw_index_is_member(s, guild)) {
        proto_error(s, "forbidden", "subscribe to the guild first");
    } else if (!proto_typing_allowed(s)) {
        gw_stat_add(s->set->stats, GW_STAT_TYPING_LIMITED, 1);
        proto_error(s, "rate_limited", "too many typing.start events");
    } else if (p->hooks.relay_typing(p->hooks.data, s->user->id, guild,
                                     channel) != 0) {
        proto_error(s, "overloaded", "typing.start dropped: broker busy");
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
    proto_nonce_t echo;

    if (proto_nonce(s, m->text, m->len, nonce, &echo) != 0)
        return;
    if (scope != NULL &&
        (!cJSON_IsString(scope) || !proto_scope_ok(scope->valuestring))) {
        proto_error_to(s, &echo, "invalid_request",
                       "scope must be 1 to 64 of [A-Za-z0-9_.:-]");
        return;
    }
    if (!proto_window_admit(s, &s->sync_since, &s->sync_count,
                            cfg->sync_window_ms, cfg->sync_limit,
                            GW_STAT_SYNC_LIMITED, &echo,
                            "too many sync requests"))
        return;
    gw_json_member_raw(m->text, m->len, "data", &data, &dlen);
    if (p->hooks.relay_sync(p->hooks.data, s, scope ? scope->valuestring : NULL,
                            data, dlen,
                            nonce ? nonce->valuestring : NULL) != 0) {
        gw_stat_add(s->set->stats, GW_STAT_RELAY_OVERLOADED, 1);
        proto_error_to(s, &echo, "overloaded", "sync request dropped: busy");
    }
}

/* ---- resume (docs/continuity.md) ---------------------------------- */

static void proto_transfer_end(gw_proto_t *p, gw_session_t *s);

/* Frees a session and its index entries, and any handoff it was in. */
static void proto_end(gw_proto_t *p, gw_session_t *s)
{
    if (s->handing || s->serving || s->waiting || s->restoring)
        proto_transfer_end(p, s);
    gw_index_remove(p->index, s);
    gw_session_free(s);
}

/* The session cannot be resumed: the client identifies afresh, on this
 * connection's session, which a new `ready` names (a connection handed
 * to another worker has a new one there). */
static void proto_invalid_session(gw_session_t *s)
{
    gw_stat_add(s->set->stats, GW_STAT_RESUME_INVALID, 1);
    proto_send_static(
        s, "{\"event\":\"invalid_session\",\"data\":{\"resumable\":false}}");
    proto_ready(s);
}

/* Re-arms a resumed session's heartbeat: it starts again from now. */
static void proto_rearm(gw_session_t *t)
{
    uint64_t now = gw_sessions_now(t->set);
    uint32_t interval = t->set->cfg->heartbeat_interval_ms;

    t->last_ack_ms = (uint32_t)now;
    t->next_hb_ms = (uint32_t)(now + interval);
    gw_wheel_del(&t->timer);
    gw_wheel_add(&t->set->wheel, &t->timer, now + interval);
}

/*
 * The connection of fresh session s takes session t over from the
 * client's last seq: an open connection of t is closed 4012 (and does not
 * park), s ends, t is replayed on the connection, then `resumed`.
 */
static void proto_take_over(gw_proto_t *p, gw_session_t *s, gw_session_t *t,
                            uint64_t seq)
{
    gw_ws_t *ws = s->ws, *old = t->ws;
    char sid[2 * GW_SESSION_ID_LEN + 1], buf[128];
    uint32_t n;
    int was_parked = t->parked;

    if (old != NULL) {
        gw_ws_set_data(old, NULL);
        gw_ws_close(old, GW_CLOSE_TAKEN_OVER, "session resumed elsewhere");
    }
    gw_ws_set_data(ws, t);
    s->ws = NULL;
    proto_end(p, s);
    n = gw_session_resume(t, ws, seq);
    gw_session_id_hex(t, sid);
    snprintf(buf, sizeof(buf),
             "{\"event\":\"resumed\",\"data\":{\"sessionId\":\"%s\","
             "\"replayed\":%" PRIu32 "}}",
             sid, n);
    gw_session_send(t, buf, strlen(buf));
    proto_rearm(t);
    gw_stat_add(t->set->stats, GW_STAT_RESUMED, 1);
    if (was_parked)
        proto_presence(p, t, 1);
}

/* ---- drain handoff (docs/continuity.md section 3) ------------------- */

/* Time a drained session's connection stays open waiting for its offer to
 * be in Redis: past it the connection closes anyway. */
#define PROTO_OFFER_WAIT_MS 2000

/* A handoff in progress on this worker: on the old instance, a claimed
 * session served once the margin is over; on the new one, a resuming
 * connection's session waiting for the session it restores. */
struct gw_proto_transfer {
    gw_proto_transfer_t *next;
    gw_session_t *s;    /* old: the claimed session; new: the resuming
                           connection's (waiting) */
    gw_session_t *held; /* new: holding live events (restoring) since the
                           header came, or NULL before */
    uint8_t id[GW_SESSION_ID_LEN]; /* the handed-off session's id */
    uint64_t seq;                  /* new: the client's last seq */
    uint64_t deadline; /* loop ms: old: serve then; new: give up then */
    char *user;        /* new, owned: the token's user */
    char *reply;       /* old, owned: the claim's answer address */
};

static int proto_handoffs_on(const gw_proto_t *p)
{
    const gw_config_t *cfg = p->sessions.cfg;

    return p->hooks.handoff != NULL && cfg->handoff &&
           cfg->resume_window_ms > 0;
}

static gw_proto_transfer_t *proto_transfer_add(gw_proto_t *p, gw_session_t *s,
                                               const uint8_t *id,
                                               uint64_t deadline)
{
    gw_proto_transfer_t *t = gw_calloc(1, sizeof(*t));

    t->s = s;
    memcpy(t->id, id, GW_SESSION_ID_LEN);
    t->deadline = deadline;
    t->next = p->transfers;
    p->transfers = t;
    return t;
}

static gw_proto_transfer_t *proto_transfer_of(const gw_proto_t *p,
                                              const gw_session_t *s)
{
    gw_proto_transfer_t *t = p->transfers;

    while (t != NULL && t->s != s && t->held != s)
        t = t->next;
    return t;
}

static void proto_transfer_free(gw_proto_t *p, gw_proto_transfer_t *t)
{
    gw_proto_transfer_t **pp = &p->transfers;

    while (*pp != t)
        pp = &(*pp)->next;
    *pp = t->next;
    free(t->user);
    free(t->reply);
    free(t);
}

/* Session s ends while in a handoff: what it was in ends with it. A
 * waiting connection's held session ends too; a held session's
 * connection is answered by proto_restore_fail, never here. */
static void proto_transfer_end(gw_proto_t *p, gw_session_t *s)
{
    gw_proto_transfer_t *t = proto_transfer_of(p, s);
    gw_session_t *held = NULL;

    if (s->handing || s->serving)
        gw_stat_add(s->set->stats, GW_STAT_HANDOFFS_WAITING, -1);
    s->handing = s->serving = s->waiting = s->restoring = 0;
    if (t == NULL)
        return;
    if (t->s == s)
        held = t->held;
    else
        t->s->waiting = 0;
    proto_transfer_free(p, t);
    if (held != NULL) {
        held->restoring = 0;
        proto_end(p, held);
    }
}

/* Asks the broker for one step of a handoff: 0, or GW_EFULL. */
static int proto_ask(gw_proto_t *p, gw_handoff_step_t step, const uint8_t *id,
                     const uint8_t *requester, const char *text,
                     const gw_buf_t *blob)
{
    gw_handoff_msg_t m = {
        .step = step,
        .text = text,
        .blob = blob != NULL ? blob->data : NULL,
        .len = blob != NULL ? blob->len : 0,
        .ttl_ms = p->sessions.cfg->resume_window_ms,
    };

    memcpy(m.session, id, GW_SESSION_ID_LEN);
    if (requester != NULL)
        memcpy(m.requester, requester, GW_SESSION_ID_LEN);
    return p->hooks.handoff(p->hooks.data, &m);
}

/*
 * Encodes s into out: who it is and what it joined, and when full its
 * buffered dispatches too (those whose body is still in the log: the log
 * drops the oldest first, so they are the newest). The snapshot borrows
 * s's strings and bodies.
 */
static void proto_snapshot(const gw_proto_t *p, const gw_session_t *s, int full,
                           gw_buf_t *out)
{
    uint32_t count = full ? gw_replay_count(s->replay) : 0, first = 0;
    gw_snapshot_t snap = {
        .owner = (char *)p->instance,
        .user = (char *)s->user->id,
        .bounded = s->allowed != NULL,
        .allowed = s->allowed,
        .nallowed = s->nallowed,
        .seq = s->seq,
    };
    const gw_member_t *m = s->guilds;

    snap.guilds = gw_malloc((s->nguilds ? s->nguilds : 1) * sizeof(char *));
    for (; m != NULL; m = m->session_next)
        snap.guilds[snap.nguilds++] = m->guild->id;
    while (first < count &&
           gw_replay_log_get(&s->set->log, gw_replay_get(s->replay, first)) ==
               NULL)
        first++;
    snap.entries = gw_malloc((count - first + 1) * sizeof(*snap.entries));
    for (uint32_t i = first; i < count; i++)
        snap.entries[snap.nentries++].body =
            gw_replay_log_get(&s->set->log, gw_replay_get(s->replay, i));
    gw_snapshot_encode(&snap, out);
    free(snap.guilds);
    free(snap.entries);
}

/*
 * A drained session's slot came: it is offered in Redis first, and its
 * connection closed 4011 once the offer is there (GW_ACTION_OPENED), so
 * that the client cannot ask the next instance before it can be
 * answered. Without handoffs, or when the offer cannot be asked for, it
 * closes now.
 */
static void proto_drain_one(gw_proto_t *p, gw_session_t *s)
{
    gw_buf_t blob = {0};

    if (!s->identified || s->handing || !proto_handoffs_on(p)) {
        gw_session_close(s, GW_CLOSE_DRAINING, "server draining");
        return;
    }
    proto_snapshot(p, s, 0, &blob);
    if (proto_ask(p, GW_HANDOFF_OPEN, s->id, NULL, NULL, &blob) != 0) {
        gw_session_close(s, GW_CLOSE_DRAINING, "server draining");
    } else {
        s->handing = 1;
        gw_stat_add(s->set->stats, GW_STAT_HANDOFFS_WAITING, 1);
        gw_wheel_add(&s->set->wheel, &s->timer,
                     gw_sessions_now(s->set) + PROTO_OFFER_WAIT_MS);
    }
    free(blob.data);
}

/* The offer of drained session s is in Redis (ok) or could not be made:
 * its connection closes now. */
static void proto_opened(gw_session_t *s, int ok)
{
    if (s == NULL || !s->handing)
        return;
    if (!ok) {
        s->handing = 0;
        gw_stat_add(s->set->stats, GW_STAT_HANDOFFS_WAITING, -1);
    }
    gw_session_close(s, GW_CLOSE_DRAINING, "server draining");
}

/* Another instance claimed session id (s here, or no longer): it is
 * served once the margin is over, or answered lost now. */
static void proto_claimed(gw_proto_t *p, gw_session_t *s, const uint8_t *id,
                          const char *reply)
{
    const gw_config_t *cfg = p->sessions.cfg;
    gw_proto_transfer_t *t;

    if (s == NULL || !s->handing || s->lost) {
        proto_ask(p, GW_HANDOFF_SERVE, id, NULL, reply, NULL);
        return;
    }
    s->handing = 0;
    s->serving = 1;
    t = proto_transfer_add(p, s, id,
                           gw_sessions_now(s->set) + cfg->handoff_margin_ms);
    t->reply = gw_strdup(reply);
}

/* The margin is over: the claimed session goes, whole, and ends here. */
static void proto_serve(gw_proto_t *p, gw_proto_transfer_t *t)
{
    gw_session_t *s = t->s;
    gw_buf_t blob = {0};

    if (!s->lost)
        proto_snapshot(p, s, 1, &blob);
    if (proto_ask(p, GW_HANDOFF_SERVE, s->id, NULL, t->reply,
                  s->lost ? NULL : &blob) == 0)
        gw_stat_add(s->set->stats, GW_STAT_HANDOFFS_SERVED, 1);
    free(blob.data);
    /* Claimed before its close completed: the client is elsewhere. */
    if (s->ws != NULL) {
        gw_ws_set_data(s->ws, NULL);
        gw_ws_close(s->ws, GW_CLOSE_TAKEN_OVER, "session resumed elsewhere");
        s->ws = NULL;
        proto_presence(p, s, -1);
    }
    proto_end(p, s);
}

/* The resume of a handed-off session cannot be served (`why`): the
 * connection identifies afresh, the held session ends. */
static void proto_restore_fail(gw_proto_t *p, gw_proto_transfer_t *t,
                               const char *why)
{
    gw_session_t *s = t->s, *held = t->held;

    gw_stat_add(s->set->stats, GW_STAT_HANDOFFS_FAILED, 1);
    if (gw_log_on(GW_LOG_INFO)) {
        char sid[2 * GW_SESSION_ID_LEN + 1];
        gw_hex_encode(t->id, GW_SESSION_ID_LEN, sid);
        sid[2 * GW_SESSION_ID_LEN] = '\0';
        gw_info("conn %" PRIu64 ": session %s of another instance cannot be "
                "restored: %s",
                proto_conn_id(s), sid, why);
    }
    s->waiting = 0;
    proto_transfer_free(p, t);
    if (held != NULL) {
        held->restoring = 0;
        proto_end(p, held);
    }
    proto_invalid_session(s);
}

/* The session to resume is not here: perhaps another instance drained
 * it. Its offer is looked up while the connection waits. */
static void proto_restore_begin(gw_proto_t *p, gw_session_t *s,
                                const uint8_t *id, const char *user,
                                uint64_t seq)
{
    const gw_config_t *cfg = p->sessions.cfg;
    gw_proto_transfer_t *t =
        proto_transfer_add(p, s, id,
                           gw_sessions_now(s->set) + cfg->handoff_margin_ms +
                               cfg->handoff_timeout_ms);

    t->user = gw_strdup(user);
    t->seq = seq;
    s->waiting = 1;
    if (proto_ask(p, GW_HANDOFF_LOOKUP, id, s->id, NULL, NULL) != 0)
        proto_restore_fail(p, t, "the broker is busy");
}

/* A session of snap's user, bound and joined as snap says, parked: from
 * now on it holds every dispatch that reaches it. Takes snap's allowed. */
static gw_session_t *proto_hold(gw_proto_t *p, gw_snapshot_t *snap)
{
    const gw_config_t *cfg = p->sessions.cfg;
    gw_session_t *h = gw_session_new(&p->sessions, NULL);

    gw_index_place(p->index, h);
    gw_index_add_session(p->index, h, snap->user);
    h->identified = 1;
    gw_stat_add(h->set->stats, GW_STAT_SESSIONS, 1);
    if (snap->bounded) {
        h->allowed = snap->allowed ? snap->allowed : gw_calloc(1, 1);
        h->nallowed = snap->nallowed;
        snap->allowed = NULL;
        snap->nallowed = 0;
    }
    for (uint16_t i = 0; i < snap->nguilds; i++)
        if (h->nguilds < cfg->max_guilds_per_session)
            gw_index_join(p->index, h, snap->guilds[i]);
    gw_session_park(h, gw_sessions_now(h->set) + cfg->resume_window_ms);
    h->restoring = 1;
    return h;
}

/* The offer came (or none): a session holds live events first, then the
 * claim goes, so that nothing falls between the two instances. */
static void proto_found(gw_proto_t *p, gw_proto_transfer_t *t,
                        const gw_frame_t *body)
{
    gw_snapshot_t snap;

    if (body == NULL || gw_snapshot_decode(body->data, body->len, &snap) != 0) {
        proto_restore_fail(p, t,
                           body ? "its offer is not a snapshot"
                                : "no instance offers it");
        return;
    }
    if (strcmp(snap.user, t->user) != 0) {
        proto_restore_fail(p, t, "it is another user's");
        goto Done;
    }
    t->held = proto_hold(p, &snap);
    if (proto_ask(p, GW_HANDOFF_CLAIM, t->id, t->s->id, snap.owner, NULL) != 0)
        proto_restore_fail(p, t, "the broker is busy");
Done:
    gw_snapshot_free(&snap);
}

/* The old instance's snapshot came (or will not): the held session
 * becomes the one resumed, and the connection takes it over. */
static void proto_restore(gw_proto_t *p, gw_proto_transfer_t *t,
                          const gw_frame_t *body)
{
    gw_session_t *s = t->s, *held = t->held;
    uint64_t seq = t->seq;
    gw_snapshot_t snap = {0};
    uint32_t overlap;

    if (held == NULL || body == NULL ||
        gw_snapshot_decode(body->data, body->len, &snap) != 0) {
        proto_restore_fail(p, t,
                           body ? "its snapshot does not decode"
                                : "claimed before, or lost");
        return;
    }
    if (strcmp(snap.user, t->user) != 0 || seq + snap.nentries < snap.seq ||
        gw_session_restore(held, &snap, &overlap) != 0 ||
        (seq <= snap.seq && gw_session_can_resume(held, seq) != 0)) {
        proto_restore_fail(p, t, "it no longer holds what the client missed");
        goto Done;
    }
    s->waiting = held->restoring = 0;
    proto_transfer_free(p, t);
    if (seq > snap.seq) {
        proto_end(p, held);
        gw_session_close(s, GW_CLOSE_INVALID_SEQ, "seq ahead of the session");
        goto Done;
    }
    gw_stat_add(s->set->stats, GW_STAT_HANDOFFS_RESTORED, 1);
    gw_stat_add(s->set->stats, GW_STAT_HANDOFF_OVERLAP, overlap);
    proto_take_over(p, s, held, seq);
Done:
    gw_snapshot_free(&snap);
}

void gw_proto_handoff(gw_proto_t *p, const gw_event_t *ev)
{
    /* A resuming connection's session is not identified yet. */
    gw_session_t *s = gw_index_find(p->index, ev->session);
    gw_proto_transfer_t *t;

    if (ev->action == GW_ACTION_OPENED) {
        proto_opened(s, ev->code == 0);
        return;
    }
    if (ev->action == GW_ACTION_CLAIM) {
        proto_claimed(p, s, ev->session, ev->arg);
        return;
    }
    /* The connection may have gone meanwhile, and its transfer with it. */
    if (s == NULL || !s->waiting || (t = proto_transfer_of(p, s)) == NULL)
        return;
    if (ev->action == GW_ACTION_FOUND && t->held == NULL)
        proto_found(p, t, ev->body);
    else if (ev->action == GW_ACTION_RESTORE)
        proto_restore(p, t, ev->body);
}

/* Shutting down: no handoff goes on. Held sessions end; the others end
 * with their connection or as parked sessions. */
static void proto_transfers_drop(gw_proto_t *p)
{
    while (p->transfers != NULL) {
        gw_proto_transfer_t *t = p->transfers;
        gw_session_t *held = t->held;

        if (t->s->serving)
            gw_stat_add(p->sessions.stats, GW_STAT_HANDOFFS_WAITING, -1);
        t->s->serving = t->s->waiting = 0;
        proto_transfer_free(p, t);
        if (held != NULL) {
            held->restoring = 0;
            proto_end(p, held);
        }
    }
}

/* Serves what the margin held, gives up what waited too long. */
static void proto_transfers_due(gw_proto_t *p, uint64_t now)
{
    gw_proto_transfer_t *t, *next;

    for (t = p->transfers; t != NULL; t = next) {
        next = t->next;
        if (now < t->deadline)
            continue;
        if (t->s->serving)
            proto_serve(p, t);
        else
            proto_restore_fail(p, t, "its instance did not answer in time");
    }
}

/* The fields of a resume: 0, or GW_EINVAL when one is missing or bad. */
static int proto_resume_fields(const cJSON *data, uint8_t id[GW_SESSION_ID_LEN],
                               const char **token, uint64_t *seq)
{
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(data, "sessionId");
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(data, "token");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(data, "seq");

    if (!cJSON_IsString(sid) || !cJSON_IsString(tok) || !cJSON_IsNumber(n) ||
        n->valuedouble < 0 || n->valuedouble > 9007199254740992.0 ||
        n->valuedouble != (double)(uint64_t)n->valuedouble)
        return GW_EINVAL;
    *token = tok->valuestring;
    *seq = (uint64_t)n->valuedouble;
    /* A malformed id names no session: invalid, not a protocol error. */
    if (strlen(sid->valuestring) != 2 * GW_SESSION_ID_LEN ||
        gw_hex_decode(sid->valuestring, GW_SESSION_ID_LEN, id) != 0)
        memset(id, 0xff, GW_SESSION_ID_LEN);
    return 0;
}

/*
 * The resume of fresh session s, for session id of `user` from seq, here:
 * a session that is not here, ended, lost or of another user is
 * invalid_session; a seq ahead of what was sent closes 4007; otherwise
 * the connection takes the session over.
 */
static void proto_resume_here(gw_proto_t *p, gw_session_t *s, const uint8_t *id,
                              const char *user, uint64_t seq)
{
    gw_session_t *t = gw_index_session(p->index, id);
    int rc = t == NULL || strcmp(t->user->id, user) != 0
                 ? GW_ECLOSED
                 : gw_session_can_resume(t, seq);

    if (t == NULL && proto_handoffs_on(p))
        proto_restore_begin(p, s, id, user, seq);
    else if (rc == GW_EINVAL)
        gw_session_close(s, GW_CLOSE_INVALID_SEQ, "seq ahead of the session");
    else if (rc != 0)
        proto_invalid_session(s);
    else
        proto_take_over(p, s, t, seq);
}

/* A resume on its way to the worker that holds the session: the
 * connection's data while it leaves this loop. */
typedef struct proto_moving {
    gw_proto_t *p;
    uint8_t id[GW_SESSION_ID_LEN];
    uint64_t seq;
    char *user; /* owned */
} proto_moving_t;

/* The session lives on another worker: fresh session s ends, and its
 * connection goes there once this message is run (proto_hand_off_cb). */
static void proto_resume_elsewhere(gw_proto_t *p, gw_session_t *s,
                                   const uint8_t *id, const char *user,
                                   uint64_t seq)
{
    proto_moving_t *h = gw_malloc(sizeof(*h));
    gw_ws_t *ws = s->ws;

    gw_stat_add(s->set->stats, GW_STAT_RESUME_HANDED, 1);
    *h = (proto_moving_t){p, {0}, seq, gw_strdup(user)};
    memcpy(h->id, id, GW_SESSION_ID_LEN);
    gw_ws_set_data(ws, h);
    s->ws = NULL;
    proto_end(p, s);
    gw_ws_hand_off(ws);
}

static void proto_hand_off_cb(void *data, int fd, const uint8_t *rest,
                              size_t len)
{
    proto_moving_t *h = data;
    gw_proto_t *p = h->p;

    if (fd >= 0)
        p->hooks.hand_over(p->hooks.data, fd, rest, len, h->id, h->seq,
                           h->user);
    free(h->user);
    free(h);
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

    if (s->identified) {
        gw_session_close(s, GW_CLOSE_ALREADY_AUTHENTICATED,
                         "already authenticated");
        return;
    }
    if (proto_resume_fields(m->data, id, &token, &seq) != 0) {
        gw_session_close(s, GW_CLOSE_BAD_ENVELOPE,
                         "resume needs sessionId, token and seq");
        return;
    }
    if (proto_verify(p, s, token, NULL, &claims) != 0) {
        gw_session_close(s, GW_CLOSE_AUTH_FAILED, "authentication failed");
        return;
    }
    /* An id of no worker (or no id at all) is looked up here, in vain. */
    if (gw_session_id_worker(id) == p->index->tag ||
        gw_session_id_worker(id) >= p->workers || p->hooks.hand_over == NULL)
        proto_resume_here(p, s, id, claims.sub, seq);
    else
        proto_resume_elsewhere(p, s, id, claims.sub, seq);
    gw_jwt_claims_free(&claims);
}

void gw_proto_adopt(gw_proto_t *p, gw_ws_t *ws,
                    const uint8_t id[GW_SESSION_ID_LEN], uint64_t seq,
                    const char *user)
{
    gw_session_t *s = gw_session_new(&p->sessions, ws);

    gw_index_place(p->index, s);
    gw_ws_set_data(ws, s);
    if (p->draining)
        gw_session_close(s, GW_CLOSE_DRAINING, "server draining");
    else
        proto_resume_here(p, s, id, user, seq);
}

static const proto_handler_t proto_handlers[] = {
    {"identify", 0, proto_identify},
    {"resume", 0, proto_resume},
    {"heartbeat", 0, proto_heartbeat_in},
    {"heartbeat_ack", 0, proto_heartbeat_ack},
    {"guild_subscribe", 1, proto_subscribe},
    {"guild_unsubscribe", 1, proto_unsubscribe},
    {"typing.start", 1, proto_typing},
    {"sync_request", 1, proto_sync},
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
    proto_nonce_t echo;
    const char *data = "{}";
    size_t dlen = 2;

    if (proto_nonce(s, msg, len, nonce, &echo) != 0)
        return;
    if (!proto_window_admit(s, &s->relay_since, &s->relay_count,
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
        proto_error_to(s, &echo, "overloaded",
                       "too many events on their way to the backends");
        break;
    default:
        gw_stat_add(s->set->stats, GW_STAT_RELAY_UNAVAILABLE, 1);
        proto_error_to(s, &echo, "unavailable",
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
                   proto_conn_id(s), cfg->event_burst, cfg->event_rate);
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
        proto_error(s, "unknown_event", "unknown event");
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
    if (!s->identified && (h == NULL || h->needs_identify))
        gw_session_close(s, GW_CLOSE_NOT_AUTHENTICATED, "identify first");
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

    if (proto_verify(p, s, token, NULL, &claims) != 0) {
        gw_session_close(s, GW_CLOSE_AUTH_FAILED, "authentication failed");
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
    proto_ready(s);
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
    if (s->user != NULL)
        proto_presence(p, s, -1);
    if (!proto_parks(p, s, sent, received)) {
        proto_end(p, s);
        return;
    }
    gw_session_park(s, gw_sessions_now(s->set) + s->set->cfg->resume_window_ms);
}

const gw_ws_cb_t gw_proto_ws_cb = {
    .on_open = proto_open_cb,
    .on_message = proto_message_cb,
    .on_hand_off = proto_hand_off_cb,
    .on_backlog = proto_backlog_cb,
    .on_close = proto_close_cb,
};

/*
 * Heartbeat bookkeeping of an open session (SPEC 3, step 5). Its times are
 * kept in 32 bits of milliseconds, 8 bytes a session: differences are
 * right across the wrap while under 2^31 ms, and two intervals are at most
 * 2^30 (the config's bound).
 */
static void proto_heartbeat(gw_session_t *s, uint64_t now)
{
    uint32_t interval = s->set->cfg->heartbeat_interval_ms;
    uint32_t since_ack = (uint32_t)now - s->last_ack_ms;
    int32_t to_beat = (int32_t)(s->next_hb_ms - (uint32_t)now);
    uint64_t dead;

    if (since_ack >= 2 * interval) {
        gw_session_close(s, GW_CLOSE_SESSION_TIMEOUT, "session timed out");
        return;
    }
    if (to_beat <= 0) {
        proto_send_static(s, "{\"event\":\"heartbeat\",\"data\":{}}");
        s->next_hb_ms = (uint32_t)now + interval;
        to_beat = (int32_t)interval;
    }
    dead = now + (2 * interval - since_ack);
    gw_wheel_add(&s->set->wheel, &s->timer,
                 now + (uint64_t)to_beat < dead ? now + (uint64_t)to_beat
                                                : dead);
}

static void proto_timer_fire(gw_wheel_node_t *node, void *data)
{
    gw_session_t *s =
        (gw_session_t *)((char *)node - offsetof(gw_session_t, timer));
    gw_proto_t *p = data;

    /* A parked session's deadline is the end of its window, or now once
     * it could keep no more. */
    if (s->serving || s->restoring) {
        /* Lost while claimed: answered now; lost while held: given up. */
        gw_proto_transfer_t *t = proto_transfer_of(p, s);
        if (s->serving)
            proto_serve(p, t);
        else
            proto_restore_fail(p, t, "more came than it could hold");
        return;
    }
    if (s->parked) {
        if (!s->lost)
            gw_stat_add(s->set->stats, GW_STAT_RESUME_EXPIRED, 1);
        proto_end(p, s);
        return;
    }
    /* While draining, the deadline is this session's drain slot. */
    if (p->draining)
        proto_drain_one(p, s);
    else
        proto_heartbeat(s, gw_sessions_now(s->set));
}

void gw_proto_tick(gw_proto_t *p, uint64_t now_ms)
{
    gw_wheel_advance(&p->sessions.wheel, now_ms, proto_timer_fire, p);
    proto_transfers_due(p, now_ms);
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
    proto_transfers_drop(p);
    gw_ws_loop_each(p->ws, proto_shutdown_one, NULL);
    /* Gathered first: ending one changes the table being walked. */
    gw_index_each_user(p->index, proto_gather_parked, &g);
    for (size_t i = 0; i < g.n; i++)
        proto_end(p, g.v[i]);
    free(g.v);
}

/* The token verifier of the current configuration. */
static void proto_jwt_init(gw_proto_t *p)
{
    const gw_config_t *cfg = p->sessions.cfg;

    p->jwt = (gw_jwt_verifier_t){
        .alg = cfg->jwt_algorithm,
        .secret = (const uint8_t *)cfg->jwt_secret,
        .secret_len = strlen(cfg->jwt_secret),
        .audience = cfg->jwt_audience,
        .issuer = cfg->jwt_issuer,
        .leeway_s = 0,
    };
    gw_jwt_verifier_init(&p->jwt);
}

void gw_proto_init(gw_proto_t *p, gw_ws_loop_t *ws, gw_index_t *index,
                   const gw_config_t *cfg, gw_stats_t *stats,
                   const gw_proto_hooks_t *hooks)
{
    *p = (gw_proto_t){.index = index, .ws = ws, .hooks = *hooks};
    gw_sessions_init(&p->sessions, hooks->now, hooks->data, cfg, stats);
    proto_jwt_init(p);
}

void gw_proto_free(gw_proto_t *p)
{
    gw_jwt_verifier_free(&p->jwt);
    gw_sessions_free(&p->sessions);
}

/* Everything reads the snapshot at its next use, so only the verifier,
 * prepared from the secret, is made again. */
void gw_proto_reconfigure(gw_proto_t *p, const gw_config_t *cfg)
{
    p->sessions.cfg = cfg;
    gw_jwt_verifier_free(&p->jwt);
    proto_jwt_init(p);
}
