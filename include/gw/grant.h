/*
 * What a verified token grants a session: its guild bound and its exp. A
 * resume's grant travels from the connection that read the token to the
 * session resumed, through the broker when that session lives on another
 * worker.
 */
#ifndef GW_GRANT_H
#define GW_GRANT_H

#include <stdint.h>
#include <stdlib.h>

typedef struct gw_grant {
    char **allowed;    /* owned: the "guilds" claim, or NULL when none */
    uint16_t nallowed; /* at most GW_JWT_MAX_GUILDS */
    uint32_t exp;      /* Unix seconds, 0 = none */
} gw_grant_t;

/* Frees what g owns and empties it; an empty grant is harmless. */
static inline void gw_grant_free(gw_grant_t *g)
{
    for (uint16_t i = 0; i < g->nallowed; i++)
        free(g->allowed[i]);
    free(g->allowed);
    *g = (gw_grant_t){NULL, 0, 0};
}

#endif
