/*
 * Resume on this instance (docs/continuity.md section 2): a new
 * connection takes a parked session over and is sent what it missed, on
 * the worker that holds the session; a connection that reached another
 * worker is handed to it.
 */
#ifndef GW_RESUME_H
#define GW_RESUME_H

#include "gw/json.h"
#include "gw/proto.h"

#include <stdint.h>

/* The fields of a resume's data: 0, or GW_EINVAL when one is missing or
 * bad. A malformed session id becomes one that names no session. */
int gw_resume_fields(const cJSON *data, uint8_t id[GW_SESSION_ID_LEN],
                     const char **token, uint64_t *seq);

/*
 * The connection of fresh session s takes session t over from the
 * client's last seq: an open connection of t is closed 4012 (and does
 * not park), s ends, t is replayed on the connection, then `resumed`.
 * t's token is s's from then on (its exp and guild bound, set on s by the
 * resume): the guilds it no longer allows are left after `resumed`.
 * gw_session_can_resume(t, seq) said yes.
 */
void gw_resume_take_over(gw_proto_t *p, gw_session_t *s, gw_session_t *t,
                         uint64_t seq);

/*
 * The resume of fresh session s, for session id of `user` from seq, on
 * this worker: GW_ENOENT when no session of that id is here (nothing
 * done); otherwise answered (0): invalid_session for another user's or a
 * lost one, 4007 for a seq ahead of what was sent, else taken over.
 */
int gw_resume_here(gw_proto_t *p, gw_session_t *s, const uint8_t *id,
                   const char *user, uint64_t seq);

/* The session lives on another worker of this process: fresh session s
 * ends, and its connection goes there (gw_resume_hand_off_cb). */
void gw_resume_elsewhere(gw_proto_t *p, gw_session_t *s, const uint8_t *id,
                         const char *user, uint64_t seq);

/* The WebSocket layer's on_hand_off for a connection that
 * gw_resume_elsewhere sent away. */
void gw_resume_hand_off_cb(void *data, int fd, gw_transport_state_t *state,
                           const uint8_t *rest, size_t len);

#endif
