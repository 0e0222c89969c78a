/*
 * The WebSocket layer between the transport and the gateway protocol.
 *
 * wslay does the framing, masking, control frames and close handshake, but
 * one wslay event context costs ~8.7 KB, so a connection borrows one from a
 * per-worker pool only while it has framing state: a partial frame, a
 * fragmented message, queued control frames, or a close in progress. To know
 * when that state is empty, wslay is fed only whole frames: gw_ws_scan finds
 * their boundaries, and the bytes of an incomplete frame wait in the
 * connection's partial buffer.
 */
#ifndef GW_WS_H
#define GW_WS_H

#include "gw/conn.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Pure scanner: sets *complete to the length of the whole frames at the
 * start of buf[0..len), and *need to the total length of the first
 * incomplete frame once its header is readable (0 otherwise). *frag tracks
 * whether a fragmented data message is open after those frames. Returns 0,
 * GW_ETOOBIG when a frame declares a payload over max_payload, or GW_EPARSE
 * for a fragmented or oversized control frame or a length not minimally
 * encoded (*complete then covers the frames before the bad one).
 */
int gw_ws_scan(const uint8_t *buf, size_t len, uint64_t max_payload, int *frag,
               size_t *complete, size_t *need);

/* Prepares the worker's wslay callbacks and context pool. */
void gw_ws_worker_init(gw_worker_t *w);
void gw_ws_worker_free(gw_worker_t *w);

/* Takes WebSocket bytes read from the peer (any split). */
void gw_ws_feed(gw_conn_t *c, const uint8_t *buf, size_t len);

/* Queues a close frame through wslay; see gw_conn_close. */
void gw_ws_close(gw_conn_t *c, uint16_t code, const char *reason);

/* True once our close frame is sent and either the peer's arrived or we
 * no longer read (a failed connection). */
int gw_ws_close_done(const gw_conn_t *c);

/* Gives the wslay context back (to the pool when clean) and drops the
 * partial buffer; called when the connection goes away. */
void gw_ws_release(gw_conn_t *c);

#endif
