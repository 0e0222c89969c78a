/*
 * A backend event on its way to the workers: parsed once, its dispatch body
 * serialised once, and handed by reference to every worker queue.
 */
#ifndef GW_EVENT_H
#define GW_EVENT_H

#include "gw/frame.h"
#include "gw/grant.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* A transport's state in transit (gw/transport.h), carried opaque. */
typedef struct gw_transport_state gw_transport_state_t;

typedef enum gw_target {
    GW_TARGET_GUILD,   /* ids[0] is the guild */
    GW_TARGET_USERS,   /* ids[0..nids) are users ("userId" or "userIds") */
    GW_TARGET_ALL,     /* every identified session */
    GW_TARGET_SESSION, /* the one session whose id is `session` */
} gw_target_t;

/* What an envelope asks of its target sessions. */
typedef enum gw_action {
    GW_ACTION_DISPATCH,    /* deliver the body */
    GW_ACTION_SUBSCRIBE,   /* join guild `arg` */
    GW_ACTION_UNSUBSCRIBE, /* leave guild `arg` */
    GW_ACTION_DISCONNECT,  /* close with `code` and reason `arg` */
    GW_ACTION_SEND,        /* send the body as it is: a private message */
    GW_ACTION_CENSUS,      /* the broker's: report every user (presence) */
    GW_ACTION_ADOPT,       /* a connection resuming the session, handed
                              over from another worker: fd, body = the
                              bytes it read, arg = the token's user */
    /* The drain handoff's steps (docs/continuity.md section 3), each for
     * one session of the worker: */
    GW_ACTION_OPENED,     /* the drained session is offered in Redis (code
                             0), or could not be (code 1) */
    GW_ACTION_CLAIM,      /* the drained session was claimed: arg = the
                             address to answer */
    GW_ACTION_SERVED,     /* the claimed session's snapshot is in Redis, or
                             could not be put there: its worker waits no more */
    GW_ACTION_FOUND,      /* to a resuming session: body = the handed-off
                             session's snapshot without dispatches, or NULL
                             when there is none */
    GW_ACTION_RESTORE,    /* to a resuming session: body = the full
                             snapshot, or NULL when it will not come */
    GW_ACTION_SUBSCRIBED, /* the broker's, for one worker: its +1 of the
                             target `arg`, of gw_interest_kind_t `code`,
                             is answered (gw/subwait.h) */
} gw_action_t;

/* Whether an action is one of the handoff's, which the protocol takes
 * whole rather than per recipient. */
static inline int gw_action_is_handoff(gw_action_t a)
{
    return a == GW_ACTION_OPENED || a == GW_ACTION_CLAIM ||
           a == GW_ACTION_SERVED || a == GW_ACTION_FOUND ||
           a == GW_ACTION_RESTORE;
}

#define GW_SESSION_ID_LEN 16 /* bytes; 32 hex characters on the wire */
#define GW_NONCE_MAX 64      /* bytes in a client's or a reply's nonce */

/* The worker a session id names: its first byte (gw_index_place), so that
 * an envelope for one session goes to one worker's queue. */
static inline unsigned gw_session_id_worker(const uint8_t *id)
{
    return id[0];
}

typedef struct gw_event {
    atomic_uint refs; /* one per queue holding the event */
    gw_target_t target;
    gw_action_t action;
    uint8_t session[GW_SESSION_ID_LEN]; /* GW_TARGET_SESSION's */
    char *arg;       /* owned: an action's guild, or a disconnect's reason */
    uint16_t code;   /* a disconnect's close code */
    uint32_t census; /* a census's number */
    int fd;          /* GW_ACTION_ADOPT's, owned until a worker takes it
                        (-1 then); unused by other actions */
    uint64_t seq;    /* GW_ACTION_ADOPT: the client's last seq */
    uint32_t exp;    /* GW_ACTION_ADOPT: its token's exp, 0 = none */
    char **ids;      /* owned strings; GW_ACTION_ADOPT: its token's guild
                        bound, or NULL for none */
    size_t nids;
    int priority; /* 1 critical .. 4 low */
    int has_exclude;
    uint8_t exclude[GW_SESSION_ID_LEN]; /* session skipped when has_exclude */
    char *exclude_user;  /* owned: every session of this user is skipped */
    char *origin;        /* owned: the gateway that published it, or NULL */
    uint64_t ingress_ns; /* when the broker took it, for fan-out latency */
    gw_frame_t *body;    /* owned reference: the dispatch after {"seq":N,
                            (NULL for an action) */
    /* GW_ACTION_ADOPT's: owned with fd, the transport's state that goes
     * with it (NULL for plain TCP from a direct client, and once a worker
     * took it) */
    gw_transport_state_t *state;
} gw_event_t;

/*
 * Parses a backend envelope (SPEC section 4) of len bytes. On success returns
 * 0 and a new event with one reference in *out. Otherwise returns
 * GW_EPARSE or GW_EINVAL and points *reason at a static description.
 */
int gw_event_parse(const char *json, size_t len, gw_event_t **out,
                   const char **reason);

/*
 * A copy of the envelope json[0..len) (heap, NUL-terminated, *out_len
 * bytes) whose first member is "origin": origin, ahead of any origin the
 * backend set, so that every instance reads this one (a JSON member is
 * found first where it first appears). NULL when json does not begin
 * with '{' (whitespace aside): it is no envelope, and parsing says why.
 */
char *gw_event_stamp_origin(const char *json, size_t len, const char *origin,
                            size_t *out_len);

/*
 * A private message for one session, made by the gateway itself (an
 * answer to a relay): the body is the whole message, sent without a seq.
 * One reference, owned by the caller.
 */
gw_event_t *gw_event_private(const uint8_t session[GW_SESSION_ID_LEN],
                             const char *json, size_t len);

/* The broker's answer to a worker's +1 of target id (copied), of
 * gw_interest_kind_t kind. One reference, owned by the caller. */
gw_event_t *gw_event_subscribed(unsigned kind, const char *id);

/* The broker's request for census number `census`, for every worker.
 * One reference, owned by the caller. */
gw_event_t *gw_event_census(uint32_t census);

/*
 * A connection handed over to resume session `session` from the client's
 * last seq: fd and its transport's state, or NULL (taken: owned by the
 * event until a worker takes them, the last unref closes and frees them
 * otherwise), the len bytes read with it, the user its token names and
 * what the token grants (taken: grant is left empty). One reference, owned
 * by the caller.
 */
gw_event_t *gw_event_adopt(const uint8_t session[GW_SESSION_ID_LEN], int fd,
                           gw_transport_state_t *state, const uint8_t *rest,
                           size_t len, uint64_t seq, const char *user,
                           gw_grant_t *grant);

/*
 * A step of the drain handoff for session `session`: action is one of
 * gw_action_is_handoff's, body the len bytes of blob (none when blob is
 * NULL), arg copied when not NULL, code 0. One reference, owned by
 * the caller.
 */
gw_event_t *gw_event_handoff(gw_action_t action,
                             const uint8_t session[GW_SESSION_ID_LEN],
                             const char *blob, size_t len, const char *arg);

/* Sets the number of references before the event is shared. */
void gw_event_set_refs(gw_event_t *ev, unsigned refs);

/* Drops one reference; the last frees the event. Any thread. */
void gw_event_unref(gw_event_t *ev);

/* One more reference to ev, for a holder that keeps it past its queue's. */
void gw_event_ref(gw_event_t *ev);

#endif
