/*
 * The subscription window on the protocol's side (README "Targeted
 * channels"): `identified` and `guild_subscribed` go out once the
 * instance's subscription of the targets new to it is confirmed, held in
 * the protocol's gw/subwait.h table meanwhile; the owner (the worker)
 * feeds that table with its index's first and last sessions of a target
 * and the broker's answers.
 */
#ifndef GW_SUBREPLY_H
#define GW_SUBREPLY_H

#include "gw/proto.h"

#include <cjson/cJSON.h>
#include <stdint.h>

/* From now on p holds answers up to wait_ms (p->subwait, owned, freed by
 * gw_proto_free). Without it every answer goes at once. */
void gw_subreply_start(gw_proto_t *p, uint64_t wait_ms);

/*
 * Sends doc (freed) to s, then `then` (a JSON text, or NULL): now, or
 * once no target of the answer is pending: the guild `guild`, or, for
 * NULL (identified), every guild s is in and its user. A session's own
 * channel is not waited for: see README.
 */
void gw_subreply_send(gw_proto_t *p, gw_session_t *s, cJSON *doc,
                      const char *then, const char *guild);

/* Sends, late and counted, the answers held past the bound. */
void gw_subreply_tick(gw_proto_t *p, uint64_t now_ms);

/* s's connection is gone: its held answers go nowhere. */
void gw_subreply_cancel(gw_proto_t *p, const gw_session_t *s);

#endif
