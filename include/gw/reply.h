/*
 * What the gateway protocol says to one client besides dispatches (SPEC
 * section 3): `ready`, errors, the answers to its requests. Each is
 * queued on the session's connection (gw_session_send): nothing is sent
 * without an open one.
 */
#ifndef GW_REPLY_H
#define GW_REPLY_H

#include "gw/json.h"
#include "gw/session.h"

#include <stddef.h>

/* A request's nonce as the JSON text the client sent, echoed in its
 * answers. */
typedef struct gw_reply_nonce {
    const char *raw; /* a JSON string literal, or NULL when none was sent */
    size_t len;
} gw_reply_nonce_t;

/* A message that is a constant JSON document. */
void gw_reply_static(gw_session_t *s, const char *json);

/* `ready`: the session's id and the heartbeat interval. */
void gw_reply_ready(gw_session_t *s);

/* Sends a cJSON document and frees it. */
void gw_reply_json(gw_session_t *s, cJSON *doc);

/* A new {"event": name, "data": {}} document; *data is its data. The
 * caller owns it (gw_reply_json sends and frees it). */
cJSON *gw_reply_event(const char *name, cJSON **data);

/* A recoverable error: answered, the session stays open. code and
 * message are JSON-safe literals. */
void gw_reply_error(gw_session_t *s, const char *code, const char *message);

/* An error that answers one request: it carries the request's nonce. */
void gw_reply_error_to(gw_session_t *s, const gw_reply_nonce_t *nonce,
                       const char *code, const char *message);

/* {"event": event, "data": {"guildId": guild}}. */
void gw_reply_guild(gw_session_t *s, const char *event, const char *guild);

/* The session cannot be resumed: invalid_session, then a new `ready`
 * naming this connection's session, which the client identifies. */
void gw_reply_invalid_session(gw_session_t *s);

#endif
