/*
 * A client connection, owned by one worker. Its fields are touched only by
 * that worker's thread. The struct is kept small because an idle identified
 * session must cost little: the upgrade parser, the wslay context and the
 * partial-frame buffer exist only while they are needed.
 */
#ifndef GW_CONN_H
#define GW_CONN_H

#include "gw/bucket.h"
#include "gw/event.h"
#include "gw/handshake.h"
#include "gw/peers.h"
#include "gw/ring.h"
#include "gw/wheel.h"
#include "gw/worker.h"

#include <stdint.h>
#include <uv.h>
#include <wslay/wslay.h>

typedef struct gw_guild gw_guild_t;
typedef struct gw_user gw_user_t;
typedef struct gw_member gw_member_t;

typedef enum gw_conn_state {
    GW_CONN_HANDSHAKE, /* reading the HTTP upgrade */
    GW_CONN_OPEN,      /* WebSocket established */
    GW_CONN_CLOSING,   /* close frame queued; waiting for the peer's */
    GW_CONN_REJECTED,  /* HTTP error queued; closing once written */
} gw_conn_state_t;

struct gw_conn {
    uv_tcp_t tcp;               /* handle.data = this */
    gw_worker_t *worker;        /* borrowed */
    gw_conn_t *next_pending;    /* worker's list of connections to flush */
    gw_ring_t ring;             /* queued output */
    gw_wheel_node_t timer;      /* handshake, heartbeat or close deadline */
    gw_handshake_t *hs;         /* owned, only during the handshake */
    wslay_event_context_ptr ws; /* borrowed from the worker's pool while busy */
    uint8_t *partial;           /* owned: bytes of an incomplete frame */
    uint32_t partial_len;
    uint32_t partial_cap;
    gw_user_t *user;      /* borrowed from the index once identified */
    gw_conn_t *user_prev; /* the user's other sessions on this worker */
    gw_conn_t *user_next;
    gw_member_t *guilds; /* owned list of memberships */
    char **allowed;      /* owned: the token's "guilds" claim, or NULL */
    uint32_t nallowed;
    uint32_t nguilds;
    uint64_t id;
    uint64_t seq;          /* last dispatch sequence number sent */
    uint64_t last_ack_ms;  /* last heartbeat or heartbeat_ack */
    uint64_t next_hb_ms;   /* when the next server heartbeat is due */
    gw_bucket_t events;    /* client events allowed (session.event_rate) */
    gw_peer_t *peer;       /* counted in the server's gw_peers_t, or NULL */
    uint64_t typing_since; /* start of the typing rate window */
    uint32_t typing_count; /* typing.start relayed in that window */
    uint32_t shed;         /* events shed since the ring was last empty */
    size_t inflight;       /* bytes in the uv_write in progress, or 0 */
    uint8_t session[GW_SESSION_ID_LEN];
    uint8_t state;       /* gw_conn_state_t */
    unsigned queued : 1; /* on the worker's pending list */
    unsigned frag : 1;   /* inside a fragmented message */
    unsigned identified : 1;
    unsigned lingering : 1; /* FIN sent; input discarded until EOF */
    unsigned closed : 1;    /* uv_close called */
    unsigned
        released : 1; /* close callback ran; freed once off the flush list */
};

/* Takes ownership of an accepted socket and starts reading the upgrade. */
void gw_conn_accept(gw_worker_t *w, int fd);

/*
 * Queues a private text message (a complete JSON document of len bytes).
 * Does nothing on a closing connection.
 */
void gw_conn_send_text(gw_conn_t *c, const char *json, size_t len);

/*
 * Whether the ring can take one more frame of the connection's own (a reply,
 * a pong): when it looks full it is written out first, and when it stays
 * full the connection is closed 4010. A client that floods requests without
 * reading the answers is a slow consumer too.
 */
int gw_conn_has_room(gw_conn_t *c);

/* Queues a shared dispatch; takes no reference of the caller's. */
void gw_conn_dispatch(gw_conn_t *c, const gw_event_t *ev);

/*
 * Starts the close handshake with `code` (RFC 6455 or SPEC section 3).
 * Never frees anything: the connection goes away once the close is written
 * and answered, or its deadline passes. Harmless when already closing.
 */
void gw_conn_close(gw_conn_t *c, uint16_t code, const char *reason);

/* Closes the socket at once (peer gone, or shutdown). Harmless twice. */
void gw_conn_abort(gw_conn_t *c);

/* Writes the queued output; called by the worker before it polls. */
void gw_conn_flush(gw_conn_t *c);

/* The deadline in c->timer has passed. */
void gw_conn_timeout(gw_conn_t *c);

/* Writes the session id as 32 lowercase hex characters plus NUL. */
void gw_conn_session_hex(const gw_conn_t *c,
                         char out[2 * GW_SESSION_ID_LEN + 1]);

#endif
