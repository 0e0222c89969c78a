/*
 * The guild bound a token sets on a session (its "guilds" claim): which
 * guilds the session may join, and leaving those a new token no longer
 * allows. Shared by the protocol's handlers, resume and the drain
 * handoff, each of which can give a session a new token. Worker thread.
 */
#ifndef GW_BOUND_H
#define GW_BOUND_H

#include "gw/proto.h"

/* Whether s's token allows joining `guild`: no bound, or listed in it. */
int gw_bound_allows(const gw_session_t *s, const char *guild);

/* Leaves each guild s's token no longer allows, telling the client
 * (guild_unsubscribed) and the presence hook. */
void gw_bound_enforce(gw_proto_t *p, gw_session_t *s);

#endif
