/*
 * The subscription window on the protocol's side (README "Targeted
 * channels"): `identified` and `guild_subscribed` go out once the
 * instance's subscription of the targets new to it is confirmed, held in a
 * gw/subwait.h table meanwhile, and the dispatches that reach a session
 * whose answer is held wait behind it, so that nothing comes before its
 * `identified`. The owner (the worker) feeds the table with its index's
 * first and last sessions of a target and the broker's answers.
 */
#ifndef GW_SUBREPLY_H
#define GW_SUBREPLY_H

#include "gw/event.h"
#include "gw/interest.h"
#include "gw/proto.h"

#include <cjson/cJSON.h>
#include <stdint.h>

/* From now on p holds answers up to wait_ms (p->subreply, owned, freed by
 * gw_subreply_free). Without it every answer goes at once. */
void gw_subreply_start(gw_proto_t *p, uint64_t wait_ms);

/* Frees what p holds, telling no one. */
void gw_subreply_free(gw_proto_t *p);

/*
 * Sends doc (freed) to s, then `then` (a JSON text, or NULL): now, or
 * once no target of the answer is pending: the guild `guild`, or, for
 * NULL (identified), every guild s is in and its user. A session's own
 * channel is not waited for: see README.
 */
void gw_subreply_send(gw_proto_t *p, gw_session_t *s, cJSON *doc,
                      const char *then, const char *guild);

/* A dispatch (or a private message) for s, whose answer is held (s->held):
 * kept, its reference taken, and delivered right after the answer; or at
 * once, out of order, past GW_SUBREPLY_LATER of them on the worker. */
void gw_subreply_later(gw_proto_t *p, gw_session_t *s, gw_event_t *ev);

#define GW_SUBREPLY_LATER 4096

/* The owner's word: its first session of a target (+1), its last gone
 * (-1), or the broker's answer to a +1 (gw/subwait.h). */
void gw_subreply_asked(gw_proto_t *p, gw_interest_kind_t kind, const char *id,
                       int delta);
void gw_subreply_confirmed(gw_proto_t *p, gw_interest_kind_t kind,
                           const char *id);

/* Sends, late and counted, the answers held past the bound. */
void gw_subreply_tick(gw_proto_t *p, uint64_t now_ms);

/* s's connection is gone: its held answers and dispatches go nowhere. */
void gw_subreply_cancel(gw_proto_t *p, gw_session_t *s);

#endif
