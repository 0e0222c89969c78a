/*
 * The gateway protocol (SPEC section 3) over WebSocket connections: a
 * session from `ready` through identify, heartbeats and guild
 * subscriptions, and its close codes. It sees whole text messages through
 * the WebSocket layer's callbacks (gw_proto_ws_cb) and answers through its
 * sessions; it never touches a socket, and reaches the rest of the worker
 * only through what its owner installed here.
 */
#ifndef GW_PROTO_H
#define GW_PROTO_H

#include "gw/handoff.h"
#include "gw/index.h"
#include "gw/jwt.h"
#include "gw/log.h"
#include "gw/session.h"
#include "gw/ws.h"

#include <stddef.h>

/* What the owner installs: the rest of the worker, as the protocol sees it. */
typedef struct gw_proto_hooks {
    gw_clock_cb now; /* milliseconds of the loop's clock */
    /* Hands a client's typing.start on (copying the strings): 0 or
     * GW_EFULL. */
    int (*relay_typing)(void *data, const char *user, const char *guild,
                        const char *channel);
    /* Hands a client's event to the backends (copying what it keeps):
     * `json` is its data as sent (len bytes), nonce its nonce or NULL.
     * 0, GW_ECLOSED while the way up is closed, or GW_EFULL while it is
     * full: the client is answered unavailable / overloaded at once. */
    int (*relay_upstream)(void *data, const gw_session_t *s, const char *event,
                          const char *json, size_t len, const char *nonce);
    /* Hands a client's sync_request to the broker (copying what it
     * keeps): scope or NULL, its data as sent, nonce or NULL. 0 or
     * GW_EFULL. */
    int (*relay_sync)(void *data, const gw_session_t *s, const char *scope,
                      const char *json, size_t len, const char *nonce);
    /* The online sessions of user u here changed (presence) from before
     * to after: one identified or resumed, one is `leaving` (closed or
     * parked; u still lists it), or one joined or left a guild. NULL when
     * unwanted. */
    void (*presence)(void *data, const gw_user_t *u,
                     const gw_session_t *leaving, uint32_t before,
                     uint32_t after);
    /* Hands a connection resuming a session of worker id[0] to that
     * worker: fd and its transport's state (gw_transport_detach) are the
     * hook's (closed and freed if they cannot go), rest the len bytes
     * read after the resume, user the token's and grant what it grants
     * (the hook takes it: left empty). */
    void (*hand_over)(void *data, int fd, gw_transport_state_t *state,
                      const uint8_t *rest, size_t len,
                      const uint8_t id[GW_SESSION_ID_LEN], uint64_t seq,
                      const char *user, gw_grant_t *grant);
    /* Asks the broker for a step of a drain handoff (docs/continuity.md
     * section 3), copying m's strings and blob: 0, or GW_EFULL. NULL
     * when there are no handoffs (no Redis). */
    int (*handoff)(void *data, const gw_handoff_msg_t *m);
    void *data; /* passed to each */
} gw_proto_hooks_t;

typedef struct gw_transfer gw_transfer_t;
typedef struct gw_subreply gw_subreply_t;

/* The protocol of one worker. */
typedef struct gw_proto {
    gw_sessions_t sessions;   /* every session of the worker */
    gw_index_t *index;        /* borrowed: the worker's routing tables */
    gw_ws_loop_t *ws;         /* borrowed: the connections beneath */
    gw_jwt_verifier_t jwt;    /* of the current configuration */
    gw_proto_hooks_t hooks;   /* the owner's */
    gw_log_limit_t flood_log; /* rate-limited closes */
    int draining;             /* closing everyone with 4011 */
    int stopping;             /* shutting down: nothing parks */
    unsigned workers;         /* workers of the process: a session id
                                 naming another one is handed over */
    const char *instance;     /* borrowed: this instance's id, which a drained
                                 session's snapshot names as its owner */
    gw_transfer_t *transfers; /* owned list: the drain handoffs in progress
                                 on this worker (transfer.c) */
    gw_subreply_t *subreply;  /* owned: answers held for a subscription
                                 (subreply.c), or NULL: none are */
} gw_proto_t;

/* Frees a session and its index entries. A session in a drain handoff
 * ends through gw_transfer_* only, which keeps track of it. */
static inline void gw_proto_end(gw_proto_t *p, gw_session_t *s)
{
    gw_index_remove(p->index, s);
    gw_session_free(s);
}

/* Tells the owner that the online sessions of s's user here went from
 * before to one more (delta 1), one fewer (-1: s is leaving) or as many
 * (0: a guild changed). */
static inline void gw_proto_presence(gw_proto_t *p, gw_session_t *s, int delta)
{
    uint32_t now = gw_user_online(s->user);
    uint32_t before = delta > 0 ? now - 1 : now;

    if (p->hooks.presence != NULL)
        p->hooks.presence(p->hooks.data, s->user, delta < 0 ? s : NULL, before,
                          before + (uint32_t)delta);
}

/* After s joined or left `guild`: the guilds of its user here changed
 * unless another of the user's online sessions is a member too. */
static inline void gw_proto_presence_guild(gw_proto_t *p, gw_session_t *s,
                                           const char *guild)
{
    if (!s->identified)
        return;
    for (const gw_session_t *o = s->user->sessions; o != NULL; o = o->user_next)
        if (o != s && !o->parked && gw_index_is_member(o, guild))
            return;
    gw_proto_presence(p, s, 0);
}

/* The callbacks to install on the WebSocket loop, with the gw_proto_t as
 * its data. */
extern const gw_ws_cb_t gw_proto_ws_cb;

void gw_proto_init(gw_proto_t *p, gw_ws_loop_t *ws, gw_index_t *index,
                   const gw_config_t *cfg, gw_stats_t *stats,
                   const gw_proto_hooks_t *hooks);
void gw_proto_free(gw_proto_t *p);

/* Takes a new configuration snapshot (SIGHUP): cfg must outlive p. */
void gw_proto_reconfigure(gw_proto_t *p, const gw_config_t *cfg);

/*
 * Applies an envelope to one of its target sessions: a dispatch, or a
 * backend's subscribe, unsubscribe or disconnect (the client hears
 * guild_subscribed / guild_unsubscribed, or the close).
 */
void gw_proto_apply(gw_proto_t *p, gw_session_t *s, const gw_event_t *ev);

/*
 * A connection handed over by another worker to resume session id from
 * seq, for the user its token named, with what the token grants (taken)
 * (gw_proto_hooks_t.hand_over): it resumes here as if the resume had been
 * read here, or is answered invalid_session and may identify afresh.
 */
void gw_proto_adopt(gw_proto_t *p, gw_ws_t *ws,
                    const uint8_t id[GW_SESSION_ID_LEN], uint64_t seq,
                    const char *user, gw_grant_t *grant);

/* A claim's exp as a session keeps it: 0 for none, else within 32 bits. */
uint32_t gw_proto_exp(int64_t exp);

/* Runs the heartbeat deadlines and drain slots up to now_ms. */
void gw_proto_tick(gw_proto_t *p, uint64_t now_ms);

/*
 * Closes every session with 4011, spread evenly over window_ms so that the
 * clients reconnect elsewhere without a thundering herd; a connection
 * that opens from now on is closed 4011 at once.
 */
void gw_proto_drain(gw_proto_t *p, uint64_t window_ms);

/* Closes every connection now: 4011 written if it can be, then the socket. */
void gw_proto_shutdown(gw_proto_t *p);

#endif
