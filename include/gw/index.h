/*
 * A worker's local routing tables: guild -> member sessions and user ->
 * sessions, so that fan-out is a list walk with no locks and no copies.
 * The entries belong to the sessions, not to their connections. Worker
 * thread only.
 */
#ifndef GW_INDEX_H
#define GW_INDEX_H

#include "gw/interest.h"
#include "gw/session.h"
#include "gw/slab.h"
#include "gw/stats.h"

#include <ck_hs.h>

struct gw_member {
    gw_guild_t *guild;         /* borrowed */
    gw_session_t *session;     /* borrowed */
    gw_member_t *prev, *next;  /* in the guild's member list */
    gw_member_t *session_next; /* in the session's list */
};

struct gw_guild {
    gw_member_t *members;
    uint32_t count;
    char id[];
};

struct gw_user {
    gw_session_t *sessions;
    uint32_t count; /* sessions, parked ones included */
    char id[];
};

/* The user's sessions here that are online (parked ones are not): a walk
 * of a short list, not a count kept beside it. */
static inline uint32_t gw_user_online(const gw_user_t *u)
{
    uint32_t n = 0;

    for (const gw_session_t *s = u->sessions; s != NULL; s = s->user_next)
        n += !s->parked;
    return n;
}

/* What the owner hears of the tables: a guild's or a user's first session
 * here (+1) or its last gone (-1), and each identified session's arrival
 * and end, by its id in hex (gw/interest.h). Never per delivery. */
typedef struct gw_index_hooks {
    void (*interest)(void *data, gw_interest_kind_t kind, const char *id,
                     int delta);
    void *data;
} gw_index_hooks_t;

typedef struct gw_index {
    ck_hs_t guilds;       /* id -> gw_guild_t */
    ck_hs_t users;        /* id -> gw_user_t */
    gw_session_t **slots; /* owned: sessions by the slot their id names;
                             a free slot holds the next free one, tagged */
    uint32_t nslots;      /* slots in use or freed */
    uint32_t cap;
    uint32_t free;          /* first free slot, or UINT32_MAX */
    uint8_t tag;            /* the worker's id: byte 0 of its session ids */
    unsigned long seed;     /* of the hash: clients choose the ids */
    gw_stats_t *stats;      /* borrowed: the guild count */
    gw_index_hooks_t hooks; /* interest is NULL when nobody listens */
    gw_slab_t members;      /* the gw_member_t of every session */
} gw_index_t;

/* tag: the worker's id, which the session ids of this index carry; hooks
 * (copied) may be NULL. */
void gw_index_init(gw_index_t *ix, gw_stats_t *stats, uint8_t tag,
                   const gw_index_hooks_t *hooks);
void gw_index_free(gw_index_t *ix);

/* Adds s to the guild; returns 0, or 1 if it already was a member. */
int gw_index_join(gw_index_t *ix, gw_session_t *s, const char *guild);

/* Removes s from the guild; returns 0, or 1 if it was not a member. */
int gw_index_leave(gw_index_t *ix, gw_session_t *s, const char *guild);

/* Whether s is a member of the guild. */
int gw_index_is_member(const gw_session_t *s, const char *guild);

/*
 * Gives a new session its place: a slot, which its id names (byte 0 the
 * worker's tag, bytes 1-4 the slot, the rest stays random), so that a
 * reply by session id is routed to one worker and found there without a
 * hash table. Undone by gw_index_remove.
 */
void gw_index_place(gw_index_t *ix, gw_session_t *s);

/* Registers s as a session of `user`. */
void gw_index_add_session(gw_index_t *ix, gw_session_t *s, const char *user);

/* Removes every guild membership, the user entry and the slot of s. */
void gw_index_remove(gw_index_t *ix, gw_session_t *s);

gw_guild_t *gw_index_guild(gw_index_t *ix, const char *guild);
gw_user_t *gw_index_user(gw_index_t *ix, const char *user);
/* The identified session of that id on this worker, or NULL. */
gw_session_t *gw_index_session(gw_index_t *ix,
                               const uint8_t id[GW_SESSION_ID_LEN]);
/* The session of that id on this worker, identified or not, or NULL. */
gw_session_t *gw_index_find(gw_index_t *ix,
                            const uint8_t id[GW_SESSION_ID_LEN]);

/* Calls cb for every user with a session here; cb must not change the
 * user table. */
void gw_index_each_user(gw_index_t *ix, void (*cb)(gw_user_t *, void *),
                        void *data);

/* Calls cb for every identified session. */
void gw_index_each_session(gw_index_t *ix, void (*cb)(gw_session_t *, void *),
                           void *data);

#endif
