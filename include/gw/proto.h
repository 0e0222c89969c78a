/*
 * The gateway protocol (SPEC section 3) over a WebSocket session: the
 * session state machine from ready through identify, heartbeats and guild
 * subscriptions. It sees whole messages and answers through the connection
 * API; it never touches a socket.
 */
#ifndef GW_PROTO_H
#define GW_PROTO_H

#include "gw/conn.h"

#include <stddef.h>

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
};

/*
 * The WebSocket is open: sends `ready`, then identifies at once with
 * `token` when the upgrade request carried one (NULL otherwise).
 */
void gw_proto_open(gw_conn_t *c, const char *token);

/* One complete message from the client (len bytes, not NUL-terminated). */
void gw_proto_handle(gw_conn_t *c, const char *msg, size_t len);

/* Sends the periodic server heartbeat. */
void gw_proto_heartbeat(gw_conn_t *c);

#endif
