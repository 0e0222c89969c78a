/*
 * The WebSocket layer: one client connection from its HTTP upgrade to the
 * end of its close handshake, over a transport it embeds, for the layer
 * above that its loop's owner installs (gw_ws_cb_t and a data pointer per
 * connection, as h2o's websocket cb/data). It carries text messages only:
 * the gateway protocol is JSON.
 *
 * wslay does the framing, masking, control frames and close handshake, but
 * one wslay event context costs ~8.7 KB, so a connection borrows one from a
 * per-loop pool only while it has framing state: a partial frame, a
 * fragmented message, queued control frames, or a close in progress. To know
 * when that state is empty, wslay is fed only whole frames: gw_ws_scan finds
 * their boundaries, and the bytes of an incomplete frame wait in the
 * connection's partial buffer.
 */
#ifndef GW_WS_H
#define GW_WS_H

#include "gw/config.h"
#include "gw/handshake.h"
#include "gw/log.h"
#include "gw/peers.h"
#include "gw/slab.h"
#include "gw/stats.h"
#include "gw/transport.h"
#include "gw/wheel.h"

#include <stddef.h>
#include <stdint.h>

typedef struct gw_ws gw_ws_t;
typedef struct gw_ws_ctx gw_ws_ctx_t;

/* RFC 6455 close codes the layer sends itself. */
enum {
    GW_WS_CLOSE_NORMAL = 1000,
    GW_WS_CLOSE_PROTOCOL_ERROR = 1002,
    GW_WS_CLOSE_UNSUPPORTED_DATA = 1003,
    GW_WS_CLOSE_MESSAGE_TOO_BIG = 1009,
};

/* What the layer above is told. */
typedef struct gw_ws_cb {
    /*
     * The upgrade is answered: the connection is open. `token` is the one
     * the request carried (?token= or a bearer header), or NULL. Before it
     * returns the owner names its per-connection data with gw_ws_set_data;
     * a connection left without data is closed.
     */
    void (*on_open)(void *loop_data, gw_ws_t *ws, const char *token);
    /* One complete text message (valid UTF-8, not NUL-terminated). */
    void (*on_message)(void *data, const char *msg, size_t len);
    /* The peer does not read what is sent to it while it sends more: its
     * write ring stayed full, and its `dropped` unsent messages are gone.
     * The owner closes the connection. */
    void (*on_backlog)(void *data, unsigned dropped);
    /* The connection left this loop at the owner's request
     * (gw_ws_hand_off): fd is the socket and state its transport's state
     * (gw_transport_detach), both now the owner's; fd is -1 when it could
     * not be handed over (the connection is dropped). rest is the len
     * bytes read after the requesting message and not run, valid during
     * the call. No on_close follows. */
    void (*on_hand_off)(void *data, int fd, gw_transport_state_t *state,
                        const uint8_t *rest, size_t len);
    /* The connection is gone (data as set): the last callback. Who closed
     * first, with what: `sent` when this side did, `received` when the
     * peer did (1005 for a close frame without a code); both 0 when the
     * connection ended without a close frame (a reset, an end of stream,
     * a timeout). The echo of a close is not counted. */
    void (*on_close)(void *data, uint16_t sent, uint16_t received);
} gw_ws_cb_t;

/* The bytes of an incomplete frame, kept for the next read (ws.c). */
typedef struct gw_ws_partial gw_ws_partial_t;

/* The WebSocket connections of one loop, and what they share. */
typedef struct gw_ws_loop {
    gw_transport_loop_t io; /* the transports beneath */
    const gw_ws_cb_t *cb;   /* the layer above */
    void *data;             /* passed to on_open */
    const gw_config_t *cfg; /* borrowed: the latest snapshot */
    gw_peers_t *peers;      /* borrowed: connections per address */
    gw_stats_t *stats;      /* borrowed */
    gw_wheel_t wheel;       /* upgrade and close deadlines */
    gw_ws_ctx_t **pool;     /* owned: idle wslay contexts */
    gw_slab_t slab;         /* the connections themselves */
    unsigned pool_len;
    int id; /* the worker's, for connection ids */
    uint64_t next_id;
    gw_log_limit_t reject_log; /* refused or timed-out upgrades */
} gw_ws_loop_t;

typedef enum gw_ws_state {
    GW_WS_HANDSHAKE, /* reading the HTTP upgrade */
    GW_WS_OPEN,      /* WebSocket established */
    GW_WS_CLOSING,   /* close frame queued; waiting for the peer's */
    GW_WS_REJECTED,  /* HTTP error queued; closing once written */
} gw_ws_state_t;

struct gw_ws {
    gw_transport_t transport; /* first: its loop is inside ours */
    void *data;               /* the layer above's, or NULL */
    union {
        gw_handshake_t *hs; /* owned, in GW_WS_HANDSHAKE */
        gw_ws_ctx_t *ctx;   /* borrowed from the pool while busy, once
                               open; NULL after a rejection */
    } u;
    /* Owned: the bytes of an incomplete frame, or NULL (most of the time:
     * an idle connection pays one pointer for it, not its lengths). */
    gw_ws_partial_t *partial;
    gw_wheel_node_t timer; /* upgrade or close deadline */
    gw_peer_t *peer;       /* counted in loop->peers, or NULL */
    uint64_t id;           /* for log lines */
    uint8_t state;         /* gw_ws_state_t */
    unsigned frag : 1;     /* inside a fragmented message */
    unsigned handoff : 1;  /* leaving for another loop after this message */
    uint16_t sent_code;    /* the close code we closed with first, or 0 */
    uint16_t recv_code;    /* the peer's, if it closed first, or 0 */
};

/*
 * Pure scanner: sets *complete to the length of the whole frames at the
 * start of buf[0..len), and *need to the total length of the first
 * incomplete frame once its header is readable (0 otherwise). *frag tracks
 * whether a fragmented data message is open after those frames. Returns 0,
 * GW_ETOOBIG when a frame declares a payload over max_payload, or GW_EPARSE
 * for a fragmented or oversized control frame, a length not minimally
 * encoded, or a close frame whose payload is a single byte (*complete then
 * covers the frames before the bad one).
 */
int gw_ws_scan(const uint8_t *buf, size_t len, uint64_t max_payload, int *frag,
               size_t *complete, size_t *need);

/* Prepares a loop's connections; cfg, peers and stats are borrowed. */
void gw_ws_loop_init(gw_ws_loop_t *l, uv_loop_t *loop, const gw_ws_cb_t *cb,
                     void *data, const gw_config_t *cfg, gw_peers_t *peers,
                     gw_stats_t *stats, int id);

/* Frees the pool and the transports' buffers; the connections are gone. */
void gw_ws_loop_free(gw_ws_loop_t *l);

/* Runs the upgrade and close deadlines up to now_ms. */
void gw_ws_loop_tick(gw_ws_loop_t *l, uint64_t now_ms);

/* Calls fn(ws, arg) for every connection not yet closed. */
void gw_ws_loop_each(gw_ws_loop_t *l, void (*fn)(gw_ws_t *, void *), void *arg);

/* Opens the transport of an accepted socket (gw_tcp_open, say). */
typedef int (*gw_ws_transport_open)(gw_transport_t *t, gw_transport_loop_t *l,
                                    int fd);

/*
 * Takes ownership of an accepted socket and starts reading the upgrade.
 * Returns the connection, owned by the loop until its on_close, or NULL
 * (logged) when the socket could not be adopted.
 */
gw_ws_t *gw_ws_accept(gw_ws_loop_t *l, int fd, gw_ws_transport_open open);

/* The loop of a connection: the one its transport's loop is part of. */
static inline gw_ws_loop_t *gw_ws_loop_of(const gw_ws_t *ws)
{
    return (gw_ws_loop_t *)((char *)ws->transport.loop -
                            offsetof(gw_ws_loop_t, io));
}

/* Names the layer above's per-connection data (see on_open). */
static inline void gw_ws_set_data(gw_ws_t *ws, void *data)
{
    ws->data = data;
}

/* Whether the connection still takes messages. */
static inline int gw_ws_is_open(const gw_ws_t *ws)
{
    return ws->state == GW_WS_OPEN;
}

/*
 * Queues a text message (a complete JSON document of len bytes), copied
 * into a private frame. Does nothing unless the connection is open.
 */
void gw_ws_send_text(gw_ws_t *ws, const char *text, size_t len);

/* Bytes the frame header may take in front of a shared message's prefix. */
#define GW_WS_HEADROOM 10

/*
 * Queues a text message made of `prefix` (at most GW_RING_HEAD_MAX -
 * GW_WS_HEADROOM bytes) followed by the shared body; takes one reference on
 * body. The GW_WS_HEADROOM bytes before prefix are the caller's too: the
 * frame header is written there, so that the prefix is not copied once
 * more per recipient. The caller checked that the connection is open and
 * has room (gw_ws_queued, gw_ws_admit).
 */
void gw_ws_send_shared(gw_ws_t *ws, char *prefix, size_t plen,
                       gw_frame_t *body);

/* Messages queued and not yet written: the cheap check before admitting. */
static inline uint32_t gw_ws_queued(const gw_ws_t *ws)
{
    return gw_transport_queued(&ws->transport);
}

/*
 * Whether the write ring can take a message when at most `room` of the
 * configured ring size may be queued: see gw_transport_admit, whose result
 * it returns (0, GW_EAGAIN to shed, GW_EFULL when the owner must close it
 * as a slow consumer; *dropped counts the backlog dropped then).
 */
int gw_ws_admit(gw_ws_t *ws, uint32_t room, unsigned *dropped);

/*
 * From within on_message: once this message is run, the connection leaves
 * this loop (on_hand_off says with what), for another loop to adopt with
 * gw_ws_adopt. Workers never share a connection: it is watched by one
 * loop at a time.
 */
void gw_ws_hand_off(gw_ws_t *ws);

/*
 * Adopts an open WebSocket connection handed off by another loop: no
 * upgrade, no on_open; the caller names its data with gw_ws_set_data,
 * then gives it the bytes that came with it (gw_ws_input). The transport
 * carries on with the state that came with fd (taken), or is opened with
 * `open` when there is none. NULL on failure, with fd closed and state
 * freed.
 */
gw_ws_t *gw_ws_adopt(gw_ws_loop_t *l, int fd, gw_transport_state_t *state,
                     gw_ws_transport_open open);

/* Runs bytes read elsewhere (a hand-off's rest) as if read here. */
void gw_ws_input(gw_ws_t *ws, const uint8_t *buf, size_t len);

/*
 * Starts the close handshake with `code` (RFC 6455 or the protocol's own),
 * or closes at once while the upgrade is still being read. Never frees
 * anything: the connection goes away once the close is written and
 * answered, or its deadline passes. Harmless when already closing.
 */
void gw_ws_close(gw_ws_t *ws, uint16_t code, const char *reason);

/* Closes the socket at once (shutdown). Harmless twice. */
void gw_ws_abort(gw_ws_t *ws);

/* Writes what is queued now (shutdown, before gw_ws_abort). */
void gw_ws_flush(gw_ws_t *ws);

#endif
