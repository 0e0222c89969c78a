/*
 * A client session of the gateway protocol: who the client is, what it
 * receives, its sequence numbers and limits. A session belongs to the
 * protocol layer of one worker and is a struct of its own, apart from the
 * connection that carries it, so that it can outlive that connection: it
 * points to its current WebSocket connection, or to none.
 *
 * The dispatch path lives here: an event fanned out to a session costs the
 * `{"seq":N,` prefix and a reference to the shared body, nothing more.
 */
#ifndef GW_SESSION_H
#define GW_SESSION_H

#include "gw/bucket.h"
#include "gw/config.h"
#include "gw/event.h"
#include "gw/grant.h"
#include "gw/guard.h"
#include "gw/log.h"
#include "gw/replay.h"
#include "gw/slab.h"
#include "gw/snapshot.h"
#include "gw/stats.h"
#include "gw/wheel.h"
#include "gw/ws.h"

#include <stdint.h>

/* Close codes of SPEC section 3. */
enum {
    GW_CLOSE_UNKNOWN = 4000,
    GW_CLOSE_BAD_ENVELOPE = 4001,
    GW_CLOSE_DECODE = 4002,
    GW_CLOSE_NOT_AUTHENTICATED = 4003,
    GW_CLOSE_AUTH_FAILED = 4004,
    GW_CLOSE_ALREADY_AUTHENTICATED = 4005,
    GW_CLOSE_INVALID_SEQ = 4007,
    GW_CLOSE_RATE_LIMITED = 4008,
    GW_CLOSE_SESSION_TIMEOUT = 4009,
    GW_CLOSE_SLOW_CONSUMER = 4010,
    GW_CLOSE_DRAINING = 4011,
    GW_CLOSE_TAKEN_OVER = 4012,    /* the session was resumed elsewhere */
    GW_CLOSE_TOKEN_EXPIRED = 4013, /* exp passed without a refresh */
};

typedef struct gw_session gw_session_t;
typedef struct gw_guild gw_guild_t;
typedef struct gw_user gw_user_t;
typedef struct gw_member gw_member_t;

/* Milliseconds of the owner's clock (the loop's, or a test's). */
typedef uint64_t (*gw_clock_cb)(void *data);

/*
 * The per-session windows of the client events limited by count (typing,
 * relays upstream, sync requests), in ms mod 2^32. Most sessions never send
 * one: a session allocates its windows at the first, and until then pays a
 * pointer for them instead of 24 bytes.
 */
typedef struct gw_session_windows {
    uint32_t typing_since; /* start of the typing rate window */
    uint32_t typing_count; /* typing.start relayed in that window */
    uint32_t relay_since;  /* start of the relay window */
    uint32_t relay_count;  /* events relayed upstream in that window */
    uint32_t sync_since;   /* start of the sync_request window */
    uint32_t sync_count;   /* sync_request events in that window */
} gw_session_windows_t;

/* What the sessions of one worker share. */
/* Random bytes read from the kernel at once for session ids. */
#define GW_SESSION_RANDOM (256 * GW_SESSION_ID_LEN)

typedef struct gw_sessions {
    const gw_config_t *cfg;  /* borrowed: the latest snapshot */
    gw_stats_t *stats;       /* borrowed */
    gw_wheel_t wheel;        /* heartbeat deadlines and drain slots */
    gw_log_limit_t slow_log; /* slow-consumer closes */
    gw_clock_cb now;         /* the time deadlines are measured in */
    void *now_data;
    gw_replay_log_t log; /* the bodies the sessions were sent */
    gw_slab_t slab;      /* the sessions themselves */
    gw_guard_t *guard;   /* borrowed, shared: the abuse limits of
                            authentication (auth.c), or NULL for none */
    /* The kernel's random bytes, read GW_SESSION_RANDOM at a time: new
     * session ids take theirs from here, one getrandom per 256 sessions
     * instead of one each (a connect storm's system calls). */
    uint16_t random_left; /* unused bytes at the end of random */
    uint8_t random[GW_SESSION_RANDOM];
} gw_sessions_t;

struct gw_session {
    gw_ws_t *ws;             /* the current connection, or NULL */
    gw_sessions_t *set;      /* borrowed */
    gw_wheel_node_t timer;   /* heartbeat deadline, or drain slot */
    gw_user_t *user;         /* borrowed from the index once identified */
    gw_session_t *user_prev; /* the user's other sessions on this worker */
    gw_session_t *user_next;
    gw_member_t *guilds; /* owned list of memberships (index.c) */
    char **allowed;      /* owned: the token's "guilds" claim, or NULL */
    uint16_t nallowed;   /* at most GW_JWT_MAX_GUILDS */
    uint16_t nguilds;    /* at most session.max_guilds_per_session */
    unsigned identified : 1;
    unsigned parked : 1; /* no connection; resumable until its deadline */
    unsigned lost : 1;   /* parked, and more arrived than it could keep */
    /* The drain handoff (docs/continuity.md section 3): */
    unsigned handing : 1;   /* drained; offered in Redis, not yet claimed */
    unsigned serving : 1;   /* claimed: sent once the margin is over */
    unsigned restoring : 1; /* another instance's, held until it comes */
    unsigned warned : 1;    /* told token_expiring for the current exp */
    unsigned held : 1;      /* its answer waits for a subscription, and its
                               dispatches behind it (subreply.c) */
    uint64_t seq;           /* last dispatch sequence number sent */
    union {
        struct {                  /* while connected */
            uint32_t last_ack_ms; /* last heartbeat or its ack (mod 2^32) */
            uint32_t next_hb_ms;  /* next server heartbeat due (mod 2^32) */
        };
        uint64_t park_seq; /* while parked: seq when the connection went */
    };
    gw_bucket_t events; /* client events allowed (session.event_rate) */
    /* Owned: the windows of typing, relays and sync requests, or NULL until
     * the first of them (gw_session_windows). */
    gw_session_windows_t *windows;
    /* The token's exp in Unix seconds (32 bits last until 2106), 0 when it
     * has none: the session is warned before it and closed 4013 after it
     * unless a refresh moves it (SPEC section 5). It costs the session 8
     * bytes, 4 of them padding. */
    uint32_t exp;
    gw_replay_t *replay; /* owned: the dispatches sent, for resume */
    uint8_t id[GW_SESSION_ID_LEN];
};

void gw_sessions_init(gw_sessions_t *set, gw_clock_cb now, void *now_data,
                      const gw_config_t *cfg, gw_stats_t *stats);

/* Frees what the sessions share; they are gone. */
void gw_sessions_free(gw_sessions_t *set);

static inline uint64_t gw_sessions_now(const gw_sessions_t *set)
{
    return set->now(set->now_data);
}

/*
 * A new session carried by ws, with a random id and the heartbeat armed;
 * the caller owns it and frees it with gw_session_free.
 */
gw_session_t *gw_session_new(gw_sessions_t *set, gw_ws_t *ws);

/* Gives s the grant g, replacing its bound and exp, and empties g. */
void gw_session_grant(gw_session_t *s, gw_grant_t *g);

/* Moves s's bound and exp into g, leaving s with neither. */
void gw_session_ungrant(gw_session_t *s, gw_grant_t *g);

/* Frees a session whose index entries are gone (gw_index_remove). */
void gw_session_free(gw_session_t *s);

/* The session's windows, allocated (all zero, as a new session's were) at
 * the first call. */
gw_session_windows_t *gw_session_windows(gw_session_t *s);

/* The id of the session's connection, for log lines; 0 without one. */
static inline uint64_t gw_session_conn_id(const gw_session_t *s)
{
    return s->ws != NULL ? s->ws->id : 0;
}

/* Writes the session id as 32 lowercase hex characters plus NUL. */
void gw_session_id_hex(const gw_session_t *s,
                       char out[2 * GW_SESSION_ID_LEN + 1]);

/*
 * Queues a private message (a complete JSON document) on the session's
 * connection; a full write ring closes it 4010 instead. Does nothing
 * without an open connection.
 */
void gw_session_send(gw_session_t *s, const char *json, size_t len);

/* Queues a shared dispatch with the next seq, and keeps it for resume;
 * takes no reference of the caller's. Only identified sessions receive: a
 * parked one only keeps it (not a priority 4 one), and one to which more
 * came while it was away than it keeps is lost: its deadline is moved to
 * now. */
void gw_session_dispatch(gw_session_t *s, const gw_event_t *ev);

/* The connection is gone: the session waits for a resume until deadline
 * (loop milliseconds), receiving into its buffer only. */
void gw_session_park(gw_session_t *s, uint64_t deadline);

/* A parked session that must not be resumed (a backend disconnected it,
 * or it could keep no more) ends at the next tick, not now: it may be in
 * the middle of a fan-out walk. */
void gw_session_forget(gw_session_t *s);

/*
 * Whether a resume from the client's last seq can be served: 0; GW_EINVAL
 * when seq is ahead of what was sent (close 4007); GW_ECLOSED when what
 * came after seq is no longer all kept (invalid_session).
 */
int gw_session_can_resume(const gw_session_t *s, uint64_t seq);

/* Carries the session on ws from now on (it was parked, or ws replaces
 * its connection), sends the dispatches after seq again with their own
 * seq, and returns how many. gw_session_can_resume said yes. */
uint32_t gw_session_resume(gw_session_t *s, gw_ws_t *ws, uint64_t seq);

/*
 * Makes held session s (parked since it was made, its buffer holding
 * every dispatch that reached it) the continuation of a handed-off
 * session: its buffer becomes the snapshot's dispatches, then those it
 * held whose identity the snapshot lacks, and its seq goes on from the
 * snapshot's. *overlap counts the held ones dropped. 0, or GW_ECLOSED
 * when s lost some of what it held.
 */
int gw_session_restore(gw_session_t *s, const gw_snapshot_t *snap,
                       uint32_t *overlap);

/* Closes the session's connection with `code` (SPEC section 3). */
void gw_session_close(gw_session_t *s, uint16_t code, const char *reason);

/* Closes 4010: the client does not read; `dropped` messages were lost. */
void gw_session_slow_consumer(gw_session_t *s, unsigned dropped);

#endif
