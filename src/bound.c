#include "gw/bound.h"

#include "gw/alloc.h"
#include "gw/jwt.h"
#include "gw/reply.h"

#include <stdlib.h>

/* The session keeps only the "guilds" bound of its token's claims. */
int gw_bound_allows(const gw_session_t *s, const char *guild)
{
    const gw_jwt_claims_t bound = {.guilds = s->allowed,
                                   .nguilds = s->nallowed};

    return gw_jwt_claims_allow_guild(&bound, guild);
}

/* A guild's id is copied first, since leaving may free it. */
void gw_bound_enforce(gw_proto_t *p, gw_session_t *s)
{
    gw_member_t *m = s->guilds, *next;
    char *guild;

    for (; m != NULL; m = next) {
        next = m->session_next;
        if (gw_bound_allows(s, m->guild->id))
            continue;
        guild = gw_strdup(m->guild->id);
        if (gw_index_leave(p->index, s, guild) == 0) {
            gw_reply_guild(s, "guild_unsubscribed", guild);
            gw_proto_presence_guild(p, s, guild);
        }
        free(guild);
    }
}
