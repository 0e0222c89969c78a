/*
 * The drain handoff on a worker (docs/continuity.md section 3), both
 * ends of it. On the draining instance, a session's drain slot offers it
 * in Redis before its connection closes 4011, and a claim is served, once
 * the margin is over, with everything the parked session buffered. On
 * the instance the client resumes on, a resume for a session that is not
 * here looks for such an offer, holds live events for the session in a
 * session of its own, claims it, and restores it from the snapshot.
 *
 * The steps that need Redis go to the broker through the protocol's
 * `handoff` hook; its answers come back as events (gw_transfer_event).
 */
#ifndef GW_TRANSFER_H
#define GW_TRANSFER_H

#include "gw/event.h"
#include "gw/proto.h"

#include <stdint.h>

/* Whether this worker hands drained sessions off (Redis and resume on). */
int gw_transfer_on(const gw_proto_t *p);

/* Session s's drain slot came: offered first and closed 4011 once the
 * offer is in Redis; closed 4011 at once when it cannot be offered. */
void gw_transfer_offer(gw_proto_t *p, gw_session_t *s);

/* The resume of fresh session s, for session id of `user` from seq, when
 * no worker here holds it: its offer is looked up while the connection
 * waits. gw_transfer_on(p). */
void gw_transfer_restore(gw_proto_t *p, gw_session_t *s, const uint8_t *id,
                         const char *user, uint64_t seq);

/* A handoff event for this worker (gw_action_is_handoff(ev->action)); the
 * event stays the caller's. */
void gw_transfer_event(gw_proto_t *p, const gw_event_t *ev);

/* The deadline of session s, serving or restoring, came: it was lost
 * (more came than it keeps) or its window is over. */
void gw_transfer_timer(gw_proto_t *p, gw_session_t *s);

/* Serves what the margin held and gives up what waited too long, up to
 * now (loop milliseconds). */
void gw_transfer_due(gw_proto_t *p, uint64_t now);

/* Shutting down: every transfer ends; held sessions end with it. */
void gw_transfer_drop(gw_proto_t *p);

#endif
